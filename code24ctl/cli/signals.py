"""SIGTERM and SIGHUP end a command the way Ctrl-C does.

CI cancels a job with SIGTERM and a closed terminal sends SIGHUP; without a handler Python
dies at once, printing nothing and skipping every cleanup. Raised as
:class:`~code24ctl.errors.Terminated` (a ``KeyboardInterrupt``), they take Ctrl-C's path: the
same summary of what was written, the same put-back of a canary, and exit 143 or 129.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from code24ctl.errors import Terminated

HANDLED = (signal.SIGTERM, signal.SIGHUP)


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


@contextmanager
def terminating_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Terminated` in the main thread;
    the previous handlers come back afterwards (tests run many commands in one process)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _raise_terminated) for signum in HANDLED}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
