"""Rendering: data on stdout, everything else on stderr; ``--json`` is one document.

The only module besides the command modules that knows about rich.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any, cast

from code24ctl.errors import Interrupted, UsageError
from code24ctl.redact import scrub

if TYPE_CHECKING:
    from pathlib import Path

    from pydantic import BaseModel
    from rich.console import Console
    from rich.table import Table


def stdout() -> Console:
    """A console for data (stdout). Built per call so test runners' stream swaps are honoured."""
    from rich.console import Console

    # Piped or redirected, tables get room instead of being cut to 80 columns with "…".
    width = None if sys.stdout.isatty() else max(_columns(), PIPE_WIDTH)
    return Console(
        file=cast("IO[str]", Scrubbed(sys.stdout)), highlight=False, soft_wrap=True, width=width
    )


PIPE_WIDTH = 200


def _columns() -> int:
    try:
        return int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        return 0


def stderr() -> Console:
    """A console for messages, progress and errors (stderr)."""
    from rich.console import Console

    # markup=False: messages carry API text and paths whose "[...]" rich would eat as markup.
    return Console(
        file=cast("IO[str]", Scrubbed(sys.stderr)), highlight=False, soft_wrap=True, markup=False
    )


class Scrubbed:
    """A text stream that masks the API token (and registered secrets) in whatever passes.

    The last line of defence: config values holding the token are refused when loading, but
    every printed line goes through here anyway.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        """Write ``text`` with secrets masked."""
        return int(self._stream.write(scrub(text)) or 0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def write_file(path: Path, text: str) -> None:
    """Write a file we produce (wrangler.toml, a JUnit report) with secrets masked."""
    path.write_text(scrub(text), encoding="utf-8")


def table(*headers: str) -> Table:
    """A borderless table whose cells fold instead of being cut with "…".

    Names and ids in these tables are meant to be copied; on a narrow terminal a folded cell
    still holds the whole value.
    """
    from rich.table import Table

    grid = Table(box=None, pad_edge=False)
    for header in headers:
        grid.add_column(header, overflow="fold")
    return grid


def emit_json(document: BaseModel | Sequence[BaseModel] | dict[str, Any] | list[Any]) -> None:
    """Print one JSON document on stdout."""
    # Duck-typed on model_dump so that importing this module does not import pydantic.
    if hasattr(document, "model_dump"):
        payload: Any = document.model_dump(mode="json", by_alias=True)
    elif isinstance(document, Sequence) and not isinstance(document, str | bytes):
        payload = [
            item.model_dump(mode="json", by_alias=True) if hasattr(item, "model_dump") else item
            for item in document
        ]
    else:
        payload = document
    sys.stdout.write(scrub(json.dumps(payload, indent=2, sort_keys=False)) + "\n")
    sys.stdout.flush()


def note(message: str) -> None:
    """A human message on stderr (never on stdout, which is for data)."""
    stderr().print(message)


def is_terminal() -> bool:
    """Whether a person is watching stderr (progress bars, prompts)."""
    return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


def confirm(question: str, *, yes: bool, nothing_done: str = "nothing was changed") -> bool:
    """Ask before a destructive step. Without a terminal and without --yes, refuse (exit 2).

    Ctrl-C at the question is an interruption like any other (exit 130), saying
    ``nothing_done``; answering no is the caller's refusal.
    """
    if yes:
        return True
    if not sys.stdin.isatty():
        raise UsageError(
            "refusing to continue without confirmation: no terminal to ask on",
            hint="rerun with --yes if you are sure",
        )
    import typer

    try:
        return typer.confirm(question, default=False, err=True)
    except typer.Abort:  # what Typer raises for Ctrl-C (and a closed stdin) at a prompt
        raise Interrupted(f"interrupted at the prompt: {nothing_done}") from None


@contextmanager
def interruptible(
    what: str, rerun: str, progress: Callable[[], str] | None = None
) -> Iterator[None]:
    """Turn Ctrl-C inside the block into one report of how far it got (exit 130).

    ``progress()`` says what was done (``after 15 of 80 workers``); every write is whole
    (an upload or a route is one API call, and calls in flight finish), so a rerun finishes.
    """
    try:
        yield
    except KeyboardInterrupt:
        done = progress() if progress is not None else f"during {what}"
        raise Interrupted(
            f"interrupted {done}; rerun {rerun} to finish, nothing is half-written"
        ) from None
