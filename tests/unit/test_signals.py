"""SIGTERM and SIGHUP take Ctrl-C's path (code24ctl.cli.signals), and only inside a command."""

from __future__ import annotations

import os
import signal

import pytest

from code24ctl.cli.signals import terminating_signals
from code24ctl.errors import Terminated, interruption_status, interruption_word


@pytest.mark.parametrize(
    ("signum", "word", "status"),
    [(signal.SIGTERM, "terminated by SIGTERM", 143), (signal.SIGHUP, "terminated by SIGHUP", 129)],
)
def test_a_signal_inside_a_command_raises_terminated(
    signum: signal.Signals, word: str, status: int
) -> None:
    with pytest.raises(Terminated) as caught, terminating_signals():
        os.kill(os.getpid(), signum)
        signal.sigtimedwait([], 0)  # let the handler run before the block ends

    assert isinstance(caught.value, KeyboardInterrupt)
    assert interruption_word(caught.value) == word
    assert interruption_status(caught.value) == status


def test_the_previous_handlers_come_back_after_the_command() -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)
    with terminating_signals():
        assert signal.getsignal(signal.SIGTERM) not in before
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)) == before


def test_ctrl_c_keeps_its_own_word_and_status() -> None:
    assert interruption_word(KeyboardInterrupt()) == "interrupted"
    assert interruption_status(KeyboardInterrupt()) == 130
