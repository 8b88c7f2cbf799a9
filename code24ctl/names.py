"""Near-miss suggestions for names the user typed ("did you mean ...?")."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate nearest to ``name``, if any is close enough to be a likely typo."""
    others = [candidate for candidate in candidates if candidate != name]
    found = difflib.get_close_matches(name, others, n=1, cutoff=0.6)
    return found[0] if found else None


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for a near miss, else an empty string (append to a message)."""
    return suggestion(closest(name, candidates))


def suggestion(match: str | None) -> str:
    """``"; did you mean 'x'?"`` for a near miss already found, else an empty string."""
    return f"; did you mean {match!r}?" if match is not None else ""
