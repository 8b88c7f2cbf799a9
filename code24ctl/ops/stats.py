"""``code24ctl stats``: real traffic against the platform's promises (the config's ``kpi``).

Two sources, one report:

- a Cloudflare environment: the dispatcher's Analytics Engine data points, read through the SQL
  API (:mod:`code24ctl.cloudflare.analytics`), every figure weighted by ``_sample_interval``;
- the local environment: the Prometheus metrics ``serve --metrics-port`` publishes
  (``code24_dispatch_requests_total`` and ``code24_dispatch_duration_seconds``), parsed with the
  ``prometheus_client`` library's own parser.

Definitions (the same for both sources):

- *requests*: every request the dispatcher answered, refusals included;
- *JSON share*: the share of requests answered by the worker's own JSON (no fallback reason);
- *fallback share*: the share answered by anything else: a fallback (``upstream_html``,
  ``worker_timeout``, ``worker_not_found``, ...) or a dispatcher refusal (``route_not_found``,
  ``bad_path``, ...), broken down by reason. The two shares add up to 100%;
- *p50/p95/p99 dispatch*: quantiles of the dispatcher's own time per request, in milliseconds.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel

from code24ctl.cloudflare.analytics import (
    QUANTILES,
    GroupBy,
    counts_query,
    latency_query,
    number,
    parse_since,
    run_sql,
)
from code24ctl.errors import NetworkError, UsageError
from code24ctl.ops.dispatcher_worker import plain_text_vars

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession
    from code24ctl.config import KpiTargets, ResolvedConfig

#: The metric names serve publishes (the contract with code24ctl.serve's metrics).
REQUESTS_METRIC = "code24_dispatch_requests"
DURATION_METRIC = "code24_dispatch_duration_seconds"

Source = Literal["analytics_engine", "prometheus"]


@dataclass(frozen=True)
class Cell:
    """Requests of one (worker, route, fallback reason)."""

    worker: str
    route: str
    reason: str
    requests: float


@dataclass(frozen=True)
class Latency:
    """Dispatch-time quantiles in milliseconds (None: no requests to measure)."""

    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None


class KpiCheck(BaseModel):
    """One promise and whether traffic kept it (``ok`` None: no traffic to judge)."""

    name: Literal["json_share", "fallback_share", "p95_dispatch_ms"]
    value: float | None
    target: float
    comparison: Literal[">=", "<="]
    ok: bool | None


class ReasonRow(BaseModel):
    """Fallbacks of one reason."""

    reason: str
    requests: float
    share: float


class GroupRow(BaseModel):
    """The figures of one worker, route or reason (``--by``)."""

    key: str
    requests: float
    json_share: float
    fallback_share: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


class StatsSummary(BaseModel):
    """The totals."""

    requests: float
    json_answers: float
    fallbacks: float
    json_share: float | None
    fallback_share: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    failed_checks: int


class StatsReport(BaseModel):
    """What ``stats --json`` prints."""

    command: Literal["stats"] = "stats"
    environment: str
    namespace: str | None
    source: Source
    dataset: str | None = None
    metrics_url: str | None = None
    since: str | None = None
    by: GroupBy | None = None
    checks: list[KpiCheck]
    reasons: list[ReasonRow]
    groups: list[GroupRow]
    summary: StatsSummary
    #: No promise was broken (no traffic breaks none).
    ok: bool


# --- Building the report ---------------------------------------------------------------------


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _checks(
    kpi: KpiTargets, json_share: float | None, fallback_share: float | None, p95: float | None
) -> list[KpiCheck]:
    def at_least(value: float | None, target: float) -> bool | None:
        return None if value is None else value >= target

    def at_most(value: float | None, target: float) -> bool | None:
        return None if value is None else value <= target

    return [
        KpiCheck(
            name="json_share",
            value=json_share,
            target=kpi.json_share,
            comparison=">=",
            ok=at_least(json_share, kpi.json_share),
        ),
        KpiCheck(
            name="fallback_share",
            value=fallback_share,
            target=kpi.max_fallback_share,
            comparison="<=",
            ok=at_most(fallback_share, kpi.max_fallback_share),
        ),
        KpiCheck(
            name="p95_dispatch_ms",
            value=p95,
            target=kpi.p95_dispatch_ms,
            comparison="<=",
            ok=at_most(p95, kpi.p95_dispatch_ms),
        ),
    ]


def build_report(
    *,
    environment: str,
    namespace: str | None,
    source: Source,
    kpi: KpiTargets,
    cells: Iterable[Cell],
    latency: Latency,
    by: GroupBy | None = None,
    group_latency: dict[str, Latency] | None = None,
    dataset: str | None = None,
    metrics_url: str | None = None,
    since: str | None = None,
) -> StatsReport:
    """Totals, shares, the breakdown by reason (and by ``by``), and the checks against ``kpi``."""
    cells = [cell for cell in cells if cell.requests > 0]
    total = sum(cell.requests for cell in cells)
    own_json = sum(cell.requests for cell in cells if cell.reason == "")
    fallbacks = total - own_json
    json_share = _share(own_json, total)
    fallback_share = _share(fallbacks, total)

    by_reason: dict[str, float] = defaultdict(float)
    for cell in cells:
        if cell.reason:
            by_reason[cell.reason] += cell.requests
    reasons = [
        ReasonRow(reason=reason, requests=count, share=count / total)
        for reason, count in sorted(by_reason.items(), key=lambda item: (-item[1], item[0]))
    ]

    groups: list[GroupRow] = []
    if by is not None:
        grouped: dict[str, list[Cell]] = defaultdict(list)
        for cell in cells:
            grouped[getattr(cell, by)].append(cell)
        for key in sorted(grouped):
            members = grouped[key]
            count = sum(cell.requests for cell in members)
            own = sum(cell.requests for cell in members if cell.reason == "")
            lat = (group_latency or {}).get(key, Latency())
            groups.append(
                GroupRow(
                    key=key,
                    requests=count,
                    json_share=own / count,
                    fallback_share=(count - own) / count,
                    p50_ms=lat.p50_ms,
                    p95_ms=lat.p95_ms,
                    p99_ms=lat.p99_ms,
                )
            )

    checks = _checks(kpi, json_share, fallback_share, latency.p95_ms if total else None)
    return StatsReport(
        environment=environment,
        namespace=namespace,
        source=source,
        dataset=dataset,
        metrics_url=metrics_url,
        since=since,
        by=by,
        checks=checks,
        reasons=reasons,
        groups=groups,
        summary=StatsSummary(
            requests=total,
            json_answers=own_json,
            fallbacks=fallbacks,
            json_share=json_share,
            fallback_share=fallback_share,
            p50_ms=latency.p50_ms if total else None,
            p95_ms=latency.p95_ms if total else None,
            p99_ms=latency.p99_ms if total else None,
            failed_checks=sum(1 for check in checks if check.ok is False),
        ),
        ok=all(check.ok is not False for check in checks),
    )


# --- Cloudflare: Analytics Engine ------------------------------------------------------------


def _latency_of(row: dict[str, object]) -> Latency:
    values = {}
    for name, _ in QUANTILES:
        raw = row.get(name)
        value = None if raw is None else number(raw)
        values[f"{name}_ms"] = None if value is None or math.isnan(value) else value
    return Latency(**values)


def cloudflare_stats(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    *,
    since: str = "1h",
    by: GroupBy | None = None,
) -> StatsReport:
    """Query the environment's dataset and judge it against the config's ``kpi``."""

    environment = resolved.require_cloudflare()
    if environment.analytics is None:
        raise UsageError(
            f"environment {resolved.env_name!r} records no analytics",
            hint=f"add `analytics: {{dataset: NAME}}` to environments.{resolved.env_name} in "
            f"{resolved.path}, then run `code24ctl deploy --env {resolved.env_name}`",
        )
    dataset = environment.analytics.dataset
    since_s = parse_since(since)
    # The dispatcher writes its ENVIRONMENT var, which deploy sets from the config.
    written_as = plain_text_vars(resolved)["ENVIRONMENT"]

    counts = run_sql(session, counts_query(dataset, written_as, since_s))
    cells = [
        Cell(
            worker=str(row.get("worker") or ""),
            route=str(row.get("route") or ""),
            reason=str(row.get("reason") or ""),
            requests=number(row.get("requests", 0)),
        )
        for row in counts.data
    ]
    latency = Latency()
    group_latency: dict[str, Latency] = {}
    if cells:
        overall = run_sql(session, latency_query(dataset, written_as, since_s))
        if overall.data:
            latency = _latency_of(overall.data[0])
        if by is not None:
            per = run_sql(session, latency_query(dataset, written_as, since_s, by))
            group_latency = {str(row.get(by) or ""): _latency_of(row) for row in per.data}
    return build_report(
        environment=resolved.env_name,
        namespace=resolved.namespace(),
        source="analytics_engine",
        kpi=resolved.config.kpi,
        cells=cells,
        latency=latency,
        by=by,
        group_latency=group_latency,
        dataset=dataset,
        since=since,
    )


# --- Local: serve's Prometheus metrics -------------------------------------------------------


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    """The ``q`` quantile of a cumulative histogram, as Prometheus' ``histogram_quantile``
    computes it: linear interpolation inside the bucket the rank falls in (the lowest bucket
    starts at 0; a rank in the ``+Inf`` bucket answers the highest finite bound)."""
    ordered = sorted(buckets)
    if not ordered or not math.isinf(ordered[-1][0]):
        return None
    total = ordered[-1][1]
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return lower_bound


def _latency_from_buckets(buckets: dict[float, float]) -> Latency:
    values: dict[str, float | None] = {}
    for name, q in QUANTILES:
        seconds = histogram_quantile(q, buckets.items())
        values[f"{name}_ms"] = None if seconds is None else seconds * 1000
    return Latency(**values)


def parse_serve_metrics(
    text: str, by: GroupBy | None = None
) -> tuple[list[Cell], Latency, dict[str, Latency]]:
    """Cells, overall latency and per-``by`` latency from serve's Prometheus text."""
    from prometheus_client.parser import text_string_to_metric_families

    cells: list[Cell] = []
    overall: dict[float, float] = defaultdict(float)
    per_group: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    seen_requests = False
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as exc:
        raise UsageError(
            f"the metrics are not in the Prometheus text format: {exc}",
            hint="point --metrics-url at `code24ctl serve --metrics-port PORT`'s /metrics",
        ) from None
    for family in families:
        if family.name == REQUESTS_METRIC:
            seen_requests = True
            for sample in family.samples:
                if sample.name != REQUESTS_METRIC + "_total":
                    continue
                cells.append(
                    Cell(
                        worker=sample.labels.get("worker", ""),
                        route=sample.labels.get("route", ""),
                        reason=sample.labels.get("fallback_reason", ""),
                        requests=float(sample.value),
                    )
                )
        elif family.name == DURATION_METRIC:
            for sample in family.samples:
                if sample.name != DURATION_METRIC + "_bucket":
                    continue
                bound = float(sample.labels["le"])
                overall[bound] += sample.value
                if by in ("worker", "route"):
                    per_group[sample.labels.get(by, "")][bound] += sample.value
    if not seen_requests:
        raise UsageError(
            f"the metrics have no {REQUESTS_METRIC}_total counter",
            hint="is this `code24ctl serve --metrics-port`'s endpoint?",
        )
    group_latency = {key: _latency_from_buckets(b) for key, b in per_group.items()}
    return cells, _latency_from_buckets(overall), group_latency


Fetch = Callable[[str], str]


def fetch_metrics(url: str, timeout_s: float = 10.0) -> str:
    """GET the metrics text (plain HTTP; serve publishes on 127.0.0.1)."""
    import httpx

    try:
        urlsplit(url).port  # noqa: B018 (out of range: ValueError, before a socket sees it)
        answer = httpx.get(url, timeout=timeout_s)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError) as exc:
        raise UsageError(
            f"{url} is not a URL serve's metrics can be read at ({exc})",
            hint="check --metrics-url (or the environment's metrics_url): "
            "http://127.0.0.1:PORT/metrics",
        ) from None
    except httpx.HTTPError as exc:
        raise NetworkError(
            f"cannot read serve's metrics at {url} ({type(exc).__name__})",
            hint="start `code24ctl serve --env local --metrics-port PORT`, or pass --metrics-url",
        ) from None
    if answer.status_code != 200:
        raise NetworkError(
            f"serve's metrics at {url} answered HTTP {answer.status_code}",
            hint="point --metrics-url at the /metrics of `serve --metrics-port`",
        )
    return answer.text


def local_stats(
    resolved: ResolvedConfig,
    *,
    metrics_url: str | None = None,
    by: GroupBy | None = None,
    fetch: Fetch = fetch_metrics,
) -> StatsReport:
    """Read serve's metrics (``--metrics-url`` or the environment's ``metrics_url``) and judge
    them against the config's ``kpi``. Counters run from serve's start: there is no window."""
    url = metrics_url or resolved.environment.metrics_url
    if not url:
        raise UsageError(
            f"environment {resolved.env_name!r} has no metrics_url",
            hint=f"set metrics_url in environments.{resolved.env_name} of {resolved.path} "
            "or pass --metrics-url URL",
        )
    cells, latency, group_latency = parse_serve_metrics(fetch(url), by)
    return build_report(
        environment=resolved.env_name,
        namespace=None,
        source="prometheus",
        kpi=resolved.config.kpi,
        cells=cells,
        latency=latency,
        by=by,
        group_latency=group_latency,
        metrics_url=url,
    )
