"""Plans as people read them: ``+`` create, ``~`` update (each field ``old -> new``), ``-`` delete.

The one renderer of :class:`~code24ctl.ops.plan.PlannedChange` for apply, plan, deploy
--dry-run, bind --dry-run and doctor, so they all say a change the same way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from code24ctl.cloudflare.worker_diff import Difference
    from code24ctl.ops.plan import PlannedChange

MARKS = {"create": "+", "update": "~", "delete": "-"}
VALUE_CHARS = 80


def value(item: Any, limit: int = VALUE_CHARS) -> str:
    """A value in a diff line: JSON (strings quoted), cut to ``limit`` characters."""
    if item is None:
        return "(none)"
    text = json.dumps(item, ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def field_line(found: Difference) -> str:
    """``~ path: old -> new`` (``+ path: new`` / ``- path: old``)."""
    mark = MARKS[found.action]
    if found.action == "create":
        return f"{mark} {found.path}: {value(found.new)}"
    if found.action == "delete":
        return f"{mark} {found.path}: {value(found.old)}"
    return f"{mark} {found.path}: {value(found.old)} -> {value(found.new)}"


def change_line(change: PlannedChange) -> str:
    """``+ worker brand-worker (copy of X)``: one change without its fields."""
    note = f" ({change.note})" if change.note else ""
    return f"{MARKS[change.action]} {change.kind} {change.name}{note}"


def plan_lines(changes: Sequence[PlannedChange], indent: str = "") -> list[str]:
    """Every change, each update followed by its fields, indented under it."""
    lines: list[str] = []
    for change in changes:
        lines.append(indent + change_line(change))
        lines += [f"{indent}    {field_line(found)}" for found in change.fields]
    return lines
