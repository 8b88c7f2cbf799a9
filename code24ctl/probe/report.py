"""What a probe found: one :class:`RouteResult` per route, counted in a :class:`ProbeReport`.

Also the two sentences made from a whole report: :func:`fallback_summary` (which routes a
fallback answered, and why) and :func:`no_answer_error` (the one cause when nothing answered).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from code24ctl.errors import NetworkError
from code24ctl.probe.plan import ProbeSettings

if TYPE_CHECKING:
    pass


# A row's verdict: the classifier's (classify.Verdict), or no answer at all, or no sample to send
# (docs/dispatch.md, D8).
ProbeVerdict = Literal["json", "html", "not-json", "empty", "error", "skipped"]


ErrorKind = Literal["refused", "reset", "timeout", "protocol", "network"]


Outcome = Literal["pass", "fail", "skip"]


LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]", "0.0.0.0"})


class Observation(BaseModel):
    """What one URL answered, over ``attempts`` requests (the worst answer is shown)."""

    url: str | None = None
    verdict: ProbeVerdict
    reason: str
    cloudflare_error: int | None = None
    error: ErrorKind | None = None
    status: int | None = None
    content_type: str | None = None
    x_code24_worker: str | None = None
    fallback: bool | None = None
    fallback_reason: str | None = None
    cf_ray: str | None = None
    request_id: str | None = None
    #: Every request's id: the dispatcher's ``X-Code24-Request-Id``, else the ``X-Request-Id``
    #: the probe sent (which the dispatcher reuses), for ``code24ctl logs --request-id``.
    request_ids: list[str] = Field(default_factory=list)
    # The dispatcher version that made the shown answer (X-Code24-Dispatcher-Version).
    dispatcher_version: str | None = None
    # Answers per dispatcher version (``none``: an answer without the header).
    dispatcher_versions: dict[str, int] = Field(default_factory=dict)
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    attempts: int = 0
    verdict_counts: dict[str, int] = Field(default_factory=dict)
    fallback_count: int = 0
    body_excerpt: str | None = None


class RouteResult(Observation):
    """One row of the report: a route, probed through the dispatcher (and maybe directly)."""

    route: str
    worker: str
    method: str | None = None
    path: str | None = None
    outcome: Outcome
    slow: bool = False
    problems: list[str] = Field(default_factory=list)
    # Fallbacks for a worker that answered, but not with JSON (failures with fail_on_fallback).
    warnings: list[str] = Field(default_factory=list)
    # Every fallback reason met, with how many answers had it.
    fallback_reasons: dict[str, int] = Field(default_factory=dict)
    # The dispatcher's own refusal (``route_not_found``, ...) when it answered instead of a worker.
    refused: str | None = None
    # Some answers came from another dispatcher version than the one asked for.
    version_not_applied: bool = False
    direct: Observation | None = None


class ProbeSummary(BaseModel):
    """Counts over the rows."""

    routes: int
    passed: int
    failed: int
    skipped: int
    warned: int = 0  # passed with a warning
    fallbacks: int = 0  # probed routes with at least one answer from a fallback
    version_not_applied: int = 0  # routes with an answer from another dispatcher version


class VersionWait(BaseModel):
    """The wait for the asked-for version to answer, before the probe proper."""

    version: str
    applied: bool
    attempts: int
    waited_ms: float
    limit_s: float


class ProbeReport(BaseModel):
    """Everything a probe found; ``ok`` is the exit status (0 only when every route passed)."""

    environment: str
    base_url: str
    ok: bool
    summary: ProbeSummary
    # The dispatcher version every request asked for (``--version``), if any.
    version: str | None = None
    # With ``version``: how the wait for it went.
    version_wait: VersionWait | None = None
    # Answers per dispatcher version, over every route (a split shows both).
    dispatcher_versions: dict[str, int] = Field(default_factory=dict)
    settings: ProbeSettings
    duration_ms: float
    notes: list[str]
    routes: list[RouteResult]


def fallback_summary(rows: Sequence[RouteResult]) -> str:
    """``3 of 5 answered by fallback: worker_not_found`` and each other reason ("" when none).

    A reason met by more than one route carries its count after a multiplication sign.

    Counted by route (a route is counted once per reason it met), over the probed routes.
    """
    probed = [row for row in rows if row.outcome != "skip"]
    reasons: Counter[str] = Counter()
    for row in probed:
        reasons.update(row.fallback_reasons.keys())
    hit = sum(bool(row.fallback_reasons) for row in probed)
    if not hit:
        return ""
    named = ", ".join(
        name if count == 1 else f"{name} \u00d7{count}" for name, count in reasons.most_common()
    )
    return f"{hit} of {len(probed)} answered by fallback: {named}"


def no_answer_error(
    report: ProbeReport, *, from_flag: bool = False, local: bool = True
) -> NetworkError | None:
    """One clear error when no probed route got any answer at all (refused, DNS, timeout).

    None when at least one answer came back, or nothing was probed. The causes are named once
    each, not once per route, with a hint that names where the URL came from (``from_flag``:
    ``--base-url``; else the environment's ``base_url``, ``local`` when it is served by
    ``code24ctl serve``).
    """
    probed = [row for row in report.routes if row.outcome != "skip"]
    if not probed or any(set(row.verdict_counts) != {"error"} for row in probed):
        return None
    causes = list(dict.fromkeys(row.reason for row in probed))
    host = urlsplit(report.base_url).hostname or report.base_url
    kinds = {row.error for row in probed}
    source = "--base-url" if from_flag else f"base_url of environment {report.environment}"
    check = (
        "check --base-url" if from_flag else "check the environment's base_url or pass --base-url"
    )
    if any("TLS certificate" in cause for cause in causes):
        hint = (
            f"{host}'s certificate is not trusted here (self-signed, or from a private CA): "
            f"set SSL_CERT_FILE to a CA bundle that holds its issuer; the URL came from {source}"
        )
    elif host in LOCAL_HOSTS and local:
        hint = f"is code24ctl serve running? (code24ctl serve --env {report.environment})"
    elif host in LOCAL_HOSTS:
        hint = (
            f"nothing answers at {report.base_url} (from {source}): start what should "
            "listen there, or fix the URL"
        )
    elif kinds <= {"network"}:
        hint = f"does {host} resolve? {check}"
    else:
        hint = f"is {host} reachable from here? {check}"
    return NetworkError(
        f"no route answered at {report.base_url} ({len(probed)} probed): {'; '.join(causes)}",
        hint=hint,
    )
