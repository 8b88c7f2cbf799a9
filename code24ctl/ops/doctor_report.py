"""What ``doctor`` reports: one :class:`Check` per check, in the order of :class:`CheckName`,
counted in a :class:`DoctorReport`."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from code24ctl.cloudflare.worker_diff import Difference

if TYPE_CHECKING:
    pass


CheckStatus = Literal["ok", "warn", "fail", "skip"]


class CheckName(StrEnum):
    """The name of each doctor check, in the order they run (one copy: the checks, the rows
    skipped when the token or account fails, and the report use these)."""

    TOKEN = "token"
    ACCOUNT = "account"
    WORKERS_FOR_PLATFORMS = "workers for platforms"
    NAMESPACE = "namespace"
    WORKERS = "workers"
    DISPATCHER = "dispatcher"
    DEPLOYMENT = "deployment"
    ROUTES = "routes"
    OUTBOUND = "outbound"
    # A local environment (serve): what `serve --runtime workerd` needs, and each alias's source.
    NODE = "node"
    MINIFLARE = "miniflare"
    SOURCES = "sources"
    PROBE = "probe"


class Check(BaseModel):
    """One line of the doctor's report."""

    name: str
    status: CheckStatus
    detail: str
    fix: str | None = None
    # What differs, old -> new, when the check compares something deployed with the config.
    differences: list[Difference] = Field(default_factory=list)


class DoctorReport(BaseModel):
    """Every check, in order; ``ok`` is False when any check failed (exit 1)."""

    environment: str
    ok: bool
    counts: dict[str, int]
    checks: list[Check]

    @classmethod
    def of(cls, environment: str, checks: list[Check]) -> DoctorReport:
        """The report of ``checks``: counted by status, ``ok`` unless one failed."""
        counts = {status: 0 for status in ("ok", "warn", "fail", "skip")}
        for check in checks:
            counts[check.status] += 1
        return cls(environment=environment, ok=counts["fail"] == 0, counts=counts, checks=checks)
