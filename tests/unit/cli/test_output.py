"""``output.confirm`` at a real terminal: answers, and a Ctrl-C that lands at any moment.

Each case runs the question in a child process on a pseudo-terminal, as a person sees it.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from tests.support.cli import REPO_ROOT

#: Asks once, as a command does; exits 0 (yes), 1 (no) or the interruption's status.
ASK = """
import signal, sys, threading
from code24ctl.cli import output
from code24ctl.cli.signals import terminating_signals
from code24ctl.errors import Interrupted

if sys.argv[1] == "ctrl-c-taken-by-another-thread":
    # The kernel may hand a Ctrl-C to any thread that does not block it. Taken by another
    # thread, it sets Python's flag and interrupts no system call of the main thread: just
    # like one that lands after the prompt is shown but before the wait for a line begins.
    threading.Thread(target=threading.Event().wait, daemon=True).start()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
with terminating_signals():
    try:
        sys.exit(0 if output.confirm("Delete it?", yes=False, nothing_done="kept it") else 1)
    except Interrupted as exc:
        sys.stderr.write(f"error: {exc.message}\\n")
        sys.exit(exc.exit_code)
"""

Respond = Callable[["subprocess.Popen[bytes]", int], None]


def ask_on_terminal(respond: Respond, case: str = "plain") -> tuple[int, str]:
    """Run :data:`ASK` on a pseudo-terminal; ``respond`` once ``[y/N]`` shows."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-c", ASK, case],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        cwd=REPO_ROOT,
    )
    os.close(follower)
    seen = b""
    asked = False
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and process.poll() is None:
        if select.select([leader], [], [], 0.05)[0]:
            try:
                seen += os.read(leader, 65536)
            except OSError:
                break
            if not asked and b"[y/N]" in seen:
                asked = True
                respond(process, leader)
    try:
        status = process.wait(5)
    except subprocess.TimeoutExpired:  # the signal was lost: still waiting for a line
        process.kill()
        status = process.wait()
    while select.select([leader], [], [], 0)[0]:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    return status, seen.decode("utf-8", errors="replace").replace("\r\n", "\n")


def typing(*lines: bytes) -> Respond:
    def respond(process: subprocess.Popen[bytes], terminal: int) -> None:
        for line in lines:
            os.write(terminal, line)

    return respond


def pressing(signum: int, after_s: float = 0.0) -> Respond:
    def respond(process: subprocess.Popen[bytes], terminal: int) -> None:
        time.sleep(after_s)
        process.send_signal(signum)

    return respond


@pytest.mark.parametrize(
    ("answer", "status"), [(b"y\n", 0), (b"yes\n", 0), (b"n\n", 1), (b"\n", 1)]
)
def test_the_answer_typed(answer: bytes, status: int) -> None:
    got, seen = ask_on_terminal(typing(answer))
    assert got == status, seen
    assert "Delete it? [y/N]: " in seen


def test_an_answer_that_is_neither_is_asked_again() -> None:
    status, seen = ask_on_terminal(typing(b"maybe\n", b"y\n"))
    assert status == 0, seen
    assert seen.count("Delete it? [y/N]: ") == 2
    assert "Error: invalid input\n" in seen


@pytest.mark.parametrize(
    ("signum", "status", "said"),
    [
        (signal.SIGINT, 130, "error: interrupted at the prompt: kept it"),
        (signal.SIGTERM, 143, "error: terminated by SIGTERM at the prompt: kept it"),
    ],
)
def test_a_signal_at_the_prompt_is_an_interruption(signum: int, status: int, said: str) -> None:
    got, seen = ask_on_terminal(pressing(signum))
    assert got == status, seen
    assert f"[y/N]: \n{said}\n" in seen.replace("^C", "")


def test_a_ctrl_c_that_interrupts_no_system_call_still_ends_the_prompt() -> None:
    """The race behind a flaky Ctrl-C: Typer's ``input()`` would wait for a line forever."""
    # Pressed once the wait for a line has (almost surely) begun: pressed before it, Python
    # itself would see the flag first and even ``input()`` would end.
    status, seen = ask_on_terminal(
        pressing(signal.SIGINT, after_s=0.5), "ctrl-c-taken-by-another-thread"
    )
    assert status == 130, seen
    assert "error: interrupted at the prompt: kept it" in seen
