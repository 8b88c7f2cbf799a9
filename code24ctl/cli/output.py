"""Rendering: data on stdout, everything else on stderr; ``--json`` is one document.

The only module besides the command modules that knows about rich.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from code24ctl.cli.state import GLOBAL
from code24ctl.errors import UsageError

if TYPE_CHECKING:
    from pydantic import BaseModel
    from rich.console import Console
    from rich.table import Table


def stdout() -> Console:
    """A console for data (stdout). Built per call so test runners' stream swaps are honoured."""
    from rich.console import Console

    # Piped or redirected, tables get room (unless COLUMNS says otherwise) instead of being cut
    # to 80 columns.
    width = None if sys.stdout.isatty() else (_columns() or PIPE_WIDTH)
    return Console(
        file=sys.stdout, highlight=False, soft_wrap=True, width=width, no_color=_no_color()
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
        file=sys.stderr, highlight=False, soft_wrap=True, markup=False, no_color=_no_color()
    )


def _no_color() -> bool | None:
    return True if GLOBAL.no_color else None


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
    sys.stdout.write(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()
    GLOBAL.emitted = True


def note(message: str) -> None:
    """A human message on stderr (never on stdout, which is for data)."""
    stderr().print(message)


def is_terminal() -> bool:
    """Whether a person is watching stderr (progress bars, prompts)."""
    return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


def confirm(question: str, *, yes: bool) -> bool:
    """Ask before a destructive step. Without a terminal and without --yes, refuse (exit 2)."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise UsageError(
            "refusing to continue without confirmation: no terminal to ask on",
            hint="rerun with --yes if you are sure",
        )
    import typer

    return typer.confirm(question, default=False, err=True)


def current_command() -> str:
    """The command being run, as typed after the program name: ``"namespace list"``."""
    from typer._click.globals import get_current_context

    ctx = get_current_context(silent=True)
    if ctx is None:
        return ""
    return " ".join(ctx.command_path.split()[1:])


def emit_document(
    payload: BaseModel | Mapping[str, Any],
    *,
    environment: str | None,
    namespace: str | None = None,
    summary: Mapping[str, int] | None = None,
    command: str | None = None,
) -> None:
    """Print the command's one ``--json`` document in the house shape.

    ``{"command", "environment", "namespace", ...payload's fields..., "summary"}``: the
    envelope keys come first and win over payload fields of the same name; ``summary`` (counts)
    replaces the payload's own when given. ``command`` defaults to the command being run.
    """
    body: dict[str, Any] = (
        payload.model_dump(mode="json", by_alias=True)
        if hasattr(payload, "model_dump")
        else dict(payload)  # type: ignore[arg-type]
    )
    document: dict[str, Any] = {
        "command": command if command is not None else current_command(),
        "environment": environment,
        "namespace": namespace,
    }
    document.update((key, value) for key, value in body.items() if key not in document)
    if summary is not None:
        document["summary"] = dict(summary)
    emit_json(document)
