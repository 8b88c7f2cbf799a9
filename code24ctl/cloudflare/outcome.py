"""The one rule for a write whose outcome is unknown.

A write that failed in a way that may hide a success (a 5xx, an answer cut mid-body, no
answer) is followed by a read of the state before anything else is decided or reported:

- it was carried out: carry on, with what the read found;
- it was not: send it again (once), when the write is safe to repeat;
- the read fails too: stop, naming the resource and the command that shows it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from code24ctl.errors import CloudflareAPIError, Code24Error, outcome_unknown

log = logging.getLogger("code24ctl.cloudflare.outcome")

_T = TypeVar("_T")


def write_checked(
    what: str,
    write: Callable[[], _T],
    read_back: Callable[[], _T | None],
    *,
    shows: str,
    repeat: bool = True,
) -> _T:
    """Run ``write``; if its outcome is unknown, ``read_back`` decides.

    ``read_back`` returns what the write would have returned when the state shows it was
    carried out, None when it was not. ``shows`` is the command that shows the resource
    (named when even the read fails). ``repeat``: send the write again when it was not carried
    out (a second unknown outcome is read back once more, never sent a third time).
    """
    try:
        return write()
    except Code24Error as exc:
        if not outcome_unknown(exc):
            raise
        lost = exc
    log.warning("%s; the outcome is unknown, reading the state back", lost.message)
    try:
        found = read_back()
    except Code24Error as exc:
        raise CloudflareAPIError(
            f"{what}: cannot tell whether it was done: the answer was lost "
            f"({lost.message}) and reading the state back failed ({exc.message})",
            hint=f"`{shows}` shows whether it was; rerun once it answers",
            unknown_outcome=True,
        ) from None
    if found is not None:
        log.warning("%s: done after all (read back)", what)
        return found
    if not repeat:
        raise CloudflareAPIError(
            f"{lost.message}; reading the state back shows it was not done",
            code=getattr(lost, "code", None),
            status=getattr(lost, "status", None),
            hint=lost.hint,
        ) from None
    log.warning("%s: not done (read back); sending it again", what)
    return write_checked(what, write, read_back, shows=shows, repeat=False)
