"""Rendering: data on stdout, everything else on stderr; ``--json`` is one document.

The only module besides the command modules that knows about rich.
"""

from __future__ import annotations

import json
import os
import re
import select
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any, cast

from code24ctl.cli import typer_compat
from code24ctl.cli.invocation import Invocation, invocation
from code24ctl.errors import (
    Failure,
    Interrupted,
    UsageError,
    interruption_status,
    interruption_word,
)
from code24ctl.redact import scrub

if TYPE_CHECKING:
    from pathlib import Path

    from pydantic import BaseModel
    from rich.console import Console
    from rich.table import Table

    from code24ctl.cli.documents import Document


def stdout() -> Console:
    """A console for data (stdout). Built per call so test runners' stream swaps are honoured."""
    from rich.console import Console

    # Piped or redirected, tables get room (unless COLUMNS says otherwise) instead of being cut
    # to 80 columns.
    width = None if sys.stdout.isatty() else (_columns() or PIPE_WIDTH)
    plain = _no_color()
    return Console(
        file=cast("IO[str]", TrimmedLines(sys.stdout)),
        highlight=False,
        soft_wrap=True,
        width=width,
        no_color=plain,
        # no_color alone keeps bold and dim: without a colour system there are no escapes.
        color_system=None if plain else "auto",
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
    plain = _no_color()
    return Console(
        file=cast("IO[str]", Scrubbed(sys.stderr)),
        highlight=False,
        soft_wrap=True,
        markup=False,
        no_color=plain,
        color_system=None if plain else "auto",
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


class TrimmedLines(Scrubbed):
    """Stdout for rich: a table pads its last column with spaces, which end up in files and
    diffs; each line loses its trailing spaces (before any closing escape code)."""

    def write(self, text: str) -> int:
        """Write ``text`` with trailing spaces removed from every line."""
        return super().write(_TRAILING_SPACES.sub(r"\1\n", text))


_TRAILING_SPACES = re.compile(r" +((?:\x1b\[[0-9;]*m)*)\n")


def write_file(path: Path, text: str) -> None:
    """Write a file we produce (wrangler.toml, a JUnit report) with secrets masked."""
    path.write_text(scrub(text), encoding="utf-8")


def _no_color() -> bool | None:
    # NO_COLOR (any value, https://no-color.org) means what --no-color means.
    return True if invocation().no_color or os.environ.get("NO_COLOR") else None


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


def emit_json(
    document: BaseModel | Sequence[BaseModel] | dict[str, Any] | list[Any],
    *,
    indent: int | None = 2,
    run: Invocation | None = None,
) -> None:
    """Print one JSON document on stdout (``indent=None``: on one line, for line readers);
    ``run`` (default: the running command's) remembers that it was printed."""
    _write_json(document, indent=indent)
    (run or invocation()).emitted = True


def emit_json_line(document: BaseModel | dict[str, Any]) -> None:
    """Print one item of a stream (``tail --format json``) as one compact JSON line.

    Masked like every document, but not the command's one document: an error after it still
    gets its own error document.
    """
    _write_json(document, indent=None, separators=(",", ":"))


def _write_json(
    document: BaseModel | Sequence[BaseModel] | dict[str, Any] | list[Any],
    *,
    indent: int | None,
    separators: tuple[str, str] | None = None,
) -> None:
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
    text = json.dumps(payload, indent=indent, separators=separators, sort_keys=False)
    sys.stdout.write(scrub(text) + "\n")
    sys.stdout.flush()


def show_failure(subject: str, failure: Failure) -> None:
    """A failed row on stderr: ``failed: SUBJECT (API error N): message``, then its hint.

    The API code is left out when the message says it already.
    """
    code = (
        ""
        if failure.api_code is None or failure.names_api_code
        else f" (API error {failure.api_code})"
    )
    note(f"failed: {subject}{code}: {failure.message}")
    if failure.hint:
        note(f"  hint: {failure.hint}")


def note(message: str) -> None:
    """A human message on stderr (never on stdout, which is for data)."""
    stderr().print(message)


def is_terminal() -> bool:
    """Whether a person is watching stderr (progress bars, prompts)."""
    return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


def confirm(question: str, *, yes: bool, nothing_done: str = "nothing was changed") -> bool:
    """Ask before a destructive step. Without a terminal and without --yes, refuse (exit 2).

    Ctrl-C at the question is an interruption like any other (exit 130; SIGTERM 143, SIGHUP
    129), saying ``nothing_done``, whenever it lands (see :func:`_typed_line`); answering no
    is the caller's refusal.
    """
    if yes:
        return True
    if not sys.stdin.isatty():
        raise UsageError(
            "refusing to continue without confirmation: no terminal to ask on",
            hint="rerun with --yes if you are sure",
        )

    try:
        while True:
            answer = _typed_line(f"{question} [y/N]: ").strip().lower()
            if answer in ("y", "yes"):
                return True
            if answer in ("", "n", "no"):
                return False
            sys.stderr.write("Error: invalid input\n")
    except (KeyboardInterrupt, EOFError) as exc:  # Ctrl-C (SIGTERM...), or Ctrl-D
        sys.stderr.write("\n")  # the error goes below the prompt, not after it
        raise Interrupted(
            f"{interruption_word(exc)} at the prompt: {nothing_done}",
            exit_code=interruption_status(exc),
        ) from None


#: How often the wait for an answer looks at a signal that came before it began.
PROMPT_POLL_S = 0.1


def _typed_line(prompt: str) -> str:
    """Show ``prompt`` on stderr and return the line typed on stdin (EOFError: none will come).

    Not ``input()`` (what Typer's prompts use): a Ctrl-C landing after the prompt is shown but
    before ``input()`` blocks in ``read()`` sets Python's flag and interrupts nothing, and
    ``read()`` then waits for a line that never comes; the Ctrl-C is lost. Waiting in
    ``select()`` with a timeout instead returns to Python at least every
    :data:`PROMPT_POLL_S`, where that Ctrl-C raises; one during the wait interrupts it at once.
    """
    sys.stderr.write(prompt)
    sys.stderr.flush()
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):  # not a real stream: nothing to wait on
        fd = None
    if fd is not None:
        while not select.select([fd], [], [], PROMPT_POLL_S)[0]:
            pass
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line


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
    except KeyboardInterrupt as exc:
        done = progress() if progress is not None else f"during {what}"
        interrupted = Interrupted(
            f"{interruption_word(exc)} {done}; rerun {rerun} to finish, nothing is half-written",
            exit_code=interruption_status(exc),
        )
        # What was written before the signal, as the ops' change log left it on ``exc``.
        interrupted.changes = tuple(getattr(exc, "changes", ()))
        raise interrupted from None


def current_command() -> str:
    """The command being run, as typed after the program name: ``"namespace list"``."""
    ctx = typer_compat.get_current_context()
    if ctx is None:
        return ""
    return " ".join(ctx.command_path.split()[1:])


def emit(document: Document, *, indent: int | None = 2) -> None:
    """Print the command's one ``--json`` document, built by its model.

    The house shape, ``{"command", "environment", "namespace", ...fields..., "summary"}``,
    is the model's (:meth:`~code24ctl.cli.documents.Document.printed`); this only prints it.
    """
    emit_json(document.printed(), indent=indent)


# Between two columns of a borderless table.
_GAP = 2


def print_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    drop_order: Sequence[str] = (),
) -> None:
    """Print rows on stdout so that no cell is ever split: ids, names and prefixes stay whole.

    When the table is wider than the terminal, the columns in ``drop_order`` are left out, in
    that order, and a line on stderr says which; when it still does not fit, each row is
    printed as a block of ``header: value`` lines instead. Cells may carry rich markup.
    """
    from rich.text import Text

    console = stdout()
    texts = [[Text.from_markup(cell) for cell in row] for row in rows]
    widths = {
        header: max([len(header), *(row[i].cell_len for row in texts)])
        for i, header in enumerate(headers)
    }
    shown = list(headers)
    dropped: list[str] = []

    def total() -> int:
        return sum(widths[h] for h in shown) + _GAP * (len(shown) - 1)

    for header in drop_order:
        if total() <= console.width:
            break
        if header in shown:
            shown.remove(header)
            dropped.append(header)
    if total() > console.width:
        _print_blocks(console, headers, texts)
        return
    grid = table(*shown)
    for column in grid.columns:
        column.no_wrap = True
        column.overflow = "ignore"
    keep = [headers.index(h) for h in shown]
    for row in texts:
        grid.add_row(*(row[i] for i in keep))
    console.print(grid)
    if dropped:
        note(f"(left out to fit: {', '.join(dropped)}; see --json)")


def _print_blocks(console: Console, headers: Sequence[str], texts: Sequence[Sequence[Any]]) -> None:
    from rich.text import Text

    label = max(len(h) for h in headers) + 1
    for number, row in enumerate(texts):
        if number:
            console.print()
        for header, cell in zip(headers, row, strict=True):
            line = Text(f"{header + ':':<{label}} ")
            line.append_text(cell)
            console.print(line, soft_wrap=True)


# --------------------------------------------------------------------------------------------
# Progress where no terminal shows a bar (CI logs): plain lines on stderr


HEARTBEAT_S = 10.0
#: A long listing prints a line every this many pages (a short one says nothing).
PAGES_PER_LINE = 10


def page_lines(what: str, pages: int, total_pages: int | None) -> None:
    """A session's page listener: long listings say how far they got on stderr, a line every
    :data:`PAGES_PER_LINE` pages (``list KV namespaces: 20 of 30 pages read``), so planning
    never reads hundreds of pages without a word, at a terminal or in a CI log."""
    if pages % PAGES_PER_LINE == 0:
        of = f" of {total_pages}" if total_pages else ""
        note(f"{what}: {pages}{of} pages read")


class StepLines:
    """One stderr line per finished step (``bind: 3 of 80 brand-worker: created``), or, with
    ``min_interval_s``, at most one line every that many seconds (and always the last)."""

    def __init__(
        self,
        label: str,
        total: int,
        *,
        min_interval_s: float = 0.0,
        clock: Callable[[], float] | None = None,
    ) -> None:

        self.label = label
        self.total = total
        self.done = 0
        self.min_interval_s = min_interval_s
        self._clock = clock or time.monotonic
        self._last: float | None = None
        self._lock = threading.Lock()

    def step(self, detail: str = "", *, done: int | None = None) -> None:
        """Count a finished step (or set the count with ``done``) and maybe print a line."""
        with self._lock:
            self.done = self.done + 1 if done is None else done
            now = self._clock()
            last_one = self.done >= self.total
            if not last_one and self._last is not None and now - self._last < self.min_interval_s:
                return
            self._last = now
            suffix = f" {detail}" if detail else ""
            note(f"{self.label}: {self.done} of {self.total}{suffix}")


@contextmanager
def heartbeat(label: str, *, every_s: float | None = None) -> Iterator[None]:
    """Without a terminal: ``label: still working (Ns)`` on stderr every ``every_s`` seconds
    (default :data:`HEARTBEAT_S`) while the block runs, so a CI log never goes silent for
    minutes; a quick block prints nothing. On a terminal: nothing."""

    if is_terminal():
        yield
        return
    interval = HEARTBEAT_S if every_s is None else every_s
    stop = threading.Event()
    started = time.monotonic()

    def beat() -> None:
        while not stop.wait(interval):
            note(f"{label}: still working ({time.monotonic() - started:.0f}s)")

    thread = threading.Thread(target=beat, name="code24ctl-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
