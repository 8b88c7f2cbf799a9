"""What a plan says it will change: one typed shape shared by bind, deploy and apply.

Each :class:`PlannedChange` is a ``create``, ``update`` or ``delete`` of one thing (a
namespace, a worker, the KV namespace, the dispatcher, a route), and an update carries the
:class:`~code24ctl.cloudflare.worker_diff.Difference` list of what changes, old and new. The CLI
renders these as ``+`` / ``~`` / ``-`` lines; ``--json`` prints them as they are.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from code24ctl.cloudflare.worker_diff import Difference

ChangeAction = Literal["create", "update", "delete"]


class PlannedChange(BaseModel):
    """One thing a plan creates, updates or deletes; ``fields`` are an update's differences."""

    action: ChangeAction
    kind: str
    name: str
    note: str | None = None
    fields: list[Difference] = Field(default_factory=list)


class PlanSummary(BaseModel):
    """Counts over a plan's changes and problems."""

    create: int = 0
    update: int = 0
    delete: int = 0
    problems: int = 0

    @property
    def changes(self) -> int:
        """How many things the plan would write."""
        return self.create + self.update + self.delete


def summarize(changes: Sequence[PlannedChange], problems: Sequence[str]) -> PlanSummary:
    """The counts of a plan's changes by action, and of its problems."""
    return PlanSummary(
        create=sum(change.action == "create" for change in changes),
        update=sum(change.action == "update" for change in changes),
        delete=sum(change.action == "delete" for change in changes),
        problems=len(problems),
    )


def digest(value: Any) -> str:
    """A stable sha256 of a JSON-able value (what a saved plan compares with a fresh read)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
