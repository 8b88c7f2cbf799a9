"""What a command has changed so far, carried by the error (or the interruption) that ends it.

A command that writes keeps a :class:`ChangeLog`, records each write as it lands, and runs
inside :meth:`ChangeLog.carried`: whatever ends the block early (a :class:`Code24Error`, Ctrl-C,
SIGTERM, SIGHUP) leaves with ``changes`` naming what was already done, so the report of a
failure says what is live (``code24ctl.cli`` renders them, in text and in the error document).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from code24ctl.errors import Change, Code24Error


class ChangeLog:
    """The changes one command made, in order (thread-safe: bind writes from a pool)."""

    def __init__(self) -> None:
        self._changes: list[Change] = []
        self._lock = threading.Lock()

    def record(self, kind: str, name: str, action: str, detail: str | None = None) -> None:
        """One write landed."""
        with self._lock:
            self._changes.append(Change(kind, name, action, detail))

    @property
    def changes(self) -> tuple[Change, ...]:
        """Every change so far."""
        with self._lock:
            return tuple(self._changes)

    @contextmanager
    def carried(self) -> Iterator[ChangeLog]:
        """Attach the changes to an error or interruption that leaves the block (after any
        it already carries from an inner log)."""
        try:
            yield self
        except (Code24Error, KeyboardInterrupt) as exc:
            attach(exc, self.changes)
            raise


def attach(exc: BaseException, changes: tuple[Change, ...]) -> None:
    """Add ``changes`` to what ``exc`` says was changed (no change twice)."""
    held: tuple[Change, ...] = getattr(exc, "changes", ())
    merged = tuple(dict.fromkeys((*changes, *held)))
    if merged:
        exc.changes = merged  # type: ignore[attr-defined]  # KeyboardInterrupt too


def changes_of(exc: BaseException) -> tuple[Change, ...]:
    """What ``exc`` says was changed before it."""
    held = getattr(exc, "changes", ())
    return tuple(held) if isinstance(held, tuple) else ()
