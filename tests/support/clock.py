"""A fake clock for the pacer and the paced transport: sleeping advances it, instantly."""

from __future__ import annotations

import threading


class FakeClock:
    """``monotonic()`` reads the fake time; ``sleep(s)`` adds ``s`` to it and returns at once.

    Every sleep is recorded in ``sleeps`` so a test can assert what would have been waited.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        """The fake time."""
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        """Advance the fake time by ``seconds`` without waiting."""
        with self._lock:
            self.sleeps.append(seconds)
            self.now += max(0.0, seconds)

    @property
    def slept(self) -> float:
        """Everything slept so far, in fake seconds."""
        with self._lock:
            return sum(self.sleeps)
