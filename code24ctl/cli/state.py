"""The global options of one invocation (``-c``, ``-e``, ``--json``, ``-v``, ``--no-color``).

They are accepted before the command (the root callback sets them here) and after it (each
command's own option falls back to the value here), so both spellings reach the same place.
Reset at the start of every invocation: tests run many in one process.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class GlobalOptions:
    """What the user gave as global options, wherever on the command line."""

    config: str | None = None
    env: str | None = None
    json: bool = False
    verbose: int = 0
    no_color: bool = False
    # Whether a --json document was already printed: a failure after it prints no second one.
    emitted: bool = False


GLOBAL = GlobalOptions()


def reset() -> None:
    """Forget the previous invocation's options."""
    fresh = GlobalOptions()
    for name in vars(fresh):
        setattr(GLOBAL, name, getattr(fresh, name))
