"""``code24ctl stats``: is real traffic meeting the platform's promises (the config's ``kpi``)?"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, cast

import typer

from code24ctl.cli import output
from code24ctl.cli.options import ConfigOption, EnvOption, JsonOption, load
from code24ctl.errors import CheckFailed, UsageError

if TYPE_CHECKING:
    from code24ctl.cloudflare.analytics import GroupBy
    from code24ctl.ops.stats import KpiCheck, StatsReport

_LABELS = {
    "json_share": "JSON share",
    "fallback_share": "fallback share",
    "p95_dispatch_ms": "p95 dispatch",
}


def stats(
    config: ConfigOption = None,
    env: EnvOption = None,
    json_output: JsonOption = False,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="DURATION",
            help="how far back to look: 15m, 1h, 7d [default: 1h] (Cloudflare environments)",
        ),
    ] = None,
    by: Annotated[
        str | None,
        typer.Option("--by", metavar="worker|route|reason", help="also break the figures down"),
    ] = None,
    metrics_url: Annotated[
        str | None,
        typer.Option(
            "--metrics-url",
            metavar="URL",
            help="local environment: read serve's Prometheus metrics here "
            "[default: the env's metrics_url]",
        ),
    ] = None,
) -> None:
    """Requests, JSON share, fallback share by reason and p50/p95/p99 dispatch latency, checked
    against the config's `kpi` targets.

    A Cloudflare environment is read from the dispatcher's Analytics Engine dataset (the env's
    `analytics.dataset`; the token needs Account Analytics Read); `--env local` from the
    Prometheus metrics of `serve --metrics-port`. Exit 1 if a target is missed, so cron or CI can
    watch the platform. `-vv` shows the SQL sent.
    """
    from code24ctl.ops.stats import cloudflare_stats, local_stats

    if by is not None and by not in ("worker", "route", "reason"):
        raise UsageError(f"--by {by!r} is not one of worker, route, reason")
    group_by = cast("GroupBy | None", by)
    resolved = load(config, env)
    if resolved.is_local:
        if since is not None:
            raise UsageError(
                "--since does not apply to a local environment: serve's counters run from its start"
            )
        report = local_stats(resolved, metrics_url=metrics_url, by=group_by)
    else:
        if metrics_url is not None:
            raise UsageError("--metrics-url applies to a local environment only")
        from code24ctl.cli.session import cloudflare_session

        session = cloudflare_session(resolved)
        report = cloudflare_stats(
            session,
            resolved,
            since=since or "1h",
            by=group_by,
        )
    if json_output:
        from code24ctl.cli.schemas import StatsDocument

        output.emit(StatsDocument(**dict(report)))
    else:
        _render(report)
    if not report.ok:
        missed = [_LABELS[c.name] for c in report.checks if c.ok is False]
        raise CheckFailed(
            f"stats: {len(missed)} target(s) missed: {', '.join(missed)}", hint=_logs_hint(report)
        )


def _logs_hint(report: StatsReport) -> str | None:
    """When answers were not the workers' own JSON: the `code24ctl logs` command that shows
    why (the workers that missed, when the report is by worker), over the same window."""
    from code24ctl.ops.logs import logs_command

    share_missed = any(
        c.ok is False for c in report.checks if c.name in ("json_share", "fallback_share")
    )
    if report.source != "analytics_engine" or not share_missed:
        return None
    target = next(c.target for c in report.checks if c.name == "fallback_share")
    workers = []
    if report.by == "worker":
        workers = [g.key for g in report.groups if g.key and (g.fallback_share or 0) > target]
    command = logs_command(report.environment, workers, errors_only=True, since=report.since)
    return f"see why: {command}"


def _render(report: StatsReport) -> None:
    where = (
        f"Analytics Engine dataset {report.dataset}, last {report.since}"
        if report.source == "analytics_engine"
        else f"serve metrics at {report.metrics_url}, since serve started"
    )
    output.note(f"stats: {report.environment} ({where})")
    console = output.stdout()
    summary = report.summary
    checks = {check.name: check for check in report.checks}

    grid = output.table("figure", "value", "target", "result")
    grid.add_row("requests", _count(summary.requests), "", "")
    grid.add_row("JSON answers", _count(summary.json_answers), "", "")
    grid.add_row("fallbacks", _count(summary.fallbacks), "", "")
    for name in ("json_share", "fallback_share"):
        check = checks[name]
        grid.add_row(_LABELS[name], _percent(check.value), _target(check), _result(check))
    for label, value in (("p50 dispatch", summary.p50_ms),):
        grid.add_row(label, _ms(value), "", "")
    check = checks["p95_dispatch_ms"]
    grid.add_row(_LABELS["p95_dispatch_ms"], _ms(check.value), _target(check), _result(check))
    grid.add_row("p99 dispatch", _ms(summary.p99_ms), "", "")
    console.print(grid)

    if report.reasons:
        console.print()
        reasons = output.table("fallback reason", "requests", "share")
        for row in report.reasons:
            reasons.add_row(row.reason, _count(row.requests), _percent(row.share))
        console.print(reasons)

    if report.by is not None and report.groups:
        from rich.markup import escape

        console.print()
        # Group keys are names and prefixes to copy: columns go before a key is split.
        output.print_table(
            [report.by, "requests", "JSON share", "fallback share", "p50", "p95", "p99"],
            [
                [
                    escape(group.key or "(none)"),
                    _count(group.requests),
                    _percent(group.json_share),
                    _percent(group.fallback_share),
                    _ms(group.p50_ms),
                    _ms(group.p95_ms),
                    _ms(group.p99_ms),
                ]
                for group in report.groups
            ],
            drop_order=["p50", "p99", "fallback share", "JSON share", "p95"],
        )
    if summary.requests == 0:
        output.note("no requests in this window: nothing to judge")


def _count(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def _target(check: KpiCheck) -> str:
    if check.name == "p95_dispatch_ms":
        return f"{check.comparison} {check.target:g} ms"
    return f"{check.comparison} {check.target * 100:g}%"


def _result(check: KpiCheck) -> str:
    return {True: "ok", False: "FAIL", None: "-"}[check.ok]
