"""Help text as Typer's rich help renders it: a paragraph's lines joined, brackets kept.

Typer renders help as rich markup (``rich_markup_mode="rich"``), which keeps a docstring's line
breaks after its first paragraph and reads ``[default: ...]`` as a style tag. Docstrings here are
wrapped at 100 columns and written as prose, so while help is written each paragraph is joined
into one line (help rewraps it to the terminal), escaped, and its `code` styled as Markdown would;
completion and ``short_help`` keep the text as written.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_INLINE_CODE = re.compile(r"`([^`]+)`")


def as_markup(text: str) -> str:
    """``text`` (a docstring or an option's help) as rich markup that prints it as written."""
    from rich.markup import escape

    paragraphs = _PARAGRAPH_BREAK.split(inspect.cleandoc(text))
    joined = (escape(" ".join(line.strip() for line in p.splitlines())) for p in paragraphs)
    # `code` styled as Markdown help styled it (rich's own markdown.code style).
    return "\n\n".join(_INLINE_CODE.sub(r"[markdown.code]\1[/]", p) for p in joined)


@contextmanager
def markup_help(
    holders: Iterable[Any], replaced: Mapping[Any, str] | None = None
) -> Iterator[None]:
    """While writing help, each holder's ``help`` (a command or a parameter) as markup, or the
    text ``replaced`` gives for it; put back after, so a command tree built once can write help
    many times (the test runner reuses one)."""
    replaced = replaced or {}
    saved = [(holder, holder.help) for holder in holders if holder in replaced or holder.help]
    try:
        for holder, text in saved:
            holder.help = as_markup(replaced.get(holder, text))
        yield
    finally:
        for holder, text in saved:
            holder.help = text
