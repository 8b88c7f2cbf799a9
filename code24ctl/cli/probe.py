"""``code24ctl probe``: send every route's sample request and say which routes answer JSON."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from code24ctl.cli import output
from code24ctl.cli.options import ConfigOption, EnvOption, JsonOption, load
from code24ctl.constants import DEFAULT_PROBE_CONCURRENCY
from code24ctl.errors import CheckFailed, UsageError

if TYPE_CHECKING:
    from code24ctl.probe.runner import (
        Observation,
        ProbePlan,
        ProbeReport,
        ProgressCallback,
        RouteResult,
    )

# More routes than this and a person at a terminal gets a progress bar.
HANDFUL = 5


def probe(
    config: ConfigOption = None,
    env: EnvOption = None,
    json_output: JsonOption = False,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url", metavar="URL", help="probe this URL instead of the env's base_url"
        ),
    ] = None,
    repeat: Annotated[
        int,
        typer.Option("--repeat", min=1, metavar="N", help="send each request N times (p50/p95)"),
    ] = 1,
    concurrency: Annotated[
        int,
        typer.Option("--concurrency", min=1, metavar="N", help="requests in flight at once"),
    ] = DEFAULT_PROBE_CONCURRENCY,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout", metavar="S", help="seconds per request [default: probe.timeout_s]"
        ),
    ] = None,
    max_latency_ms: Annotated[
        int | None,
        typer.Option(
            "--max-latency-ms",
            min=1,
            metavar="MS",
            help="fail routes whose p95 latency is over MS [default: probe.max_latency_ms]",
        ),
    ] = None,
    route: Annotated[
        list[str] | None,
        typer.Option("--route", metavar="PREFIX", help="only routes under PREFIX (repeatable)"),
    ] = None,
    direct: Annotated[
        bool,
        typer.Option(
            "--direct",
            metavar="",
            help="also probe each worker at its own URL (env 'direct', or a local env's "
            "'upstreams') and show both verdicts",
        ),
    ] = False,
    fail_on_fallback: Annotated[
        bool,
        typer.Option(
            "--fail-on-fallback", metavar="", help="also fail routes answered by a fallback"
        ),
    ] = False,
    junit: Annotated[
        Path | None,
        typer.Option("--junit", metavar="FILE", help="also write a JUnit XML report to FILE"),
    ] = None,
) -> None:
    """Send every route's probe request and say which answer JSON.

    Verdicts: json, html, not-json, empty, error (no answer); routes without a probe sample
    are skipped. Exit status 0 only when every probed route answered JSON within the latency
    limit; 1 otherwise; 2 for bad usage or config.
    """
    from code24ctl.probe.runner import ProbeOptions, plan_probe, run_plan

    if timeout is not None and timeout <= 0:
        raise UsageError(f"--timeout must be more than 0 seconds, not {timeout:g}")
    options = ProbeOptions(
        base_url=base_url,
        repeat=repeat,
        concurrency=concurrency,
        timeout_s=timeout,
        max_latency_ms=max_latency_ms,
        fail_on_fallback=fail_on_fallback,
        routes=tuple(route or ()),
        direct=direct,
    )
    plan = plan_probe(load(config, env), options)
    with _progress(plan, enabled=not json_output) as on_progress:
        report = run_plan(plan, on_progress)
    if junit is not None:
        _write_junit(junit, report)
    if json_output:
        output.emit_json(report)
    else:
        _render(report)
    for message in report.notes:
        output.note(message)
    if not report.ok:
        failed = report.summary.failed
        raise CheckFailed(
            f"{failed} of {report.summary.routes} route{'s' if failed != 1 else ''} "
            "failed the probe"
        )


@contextmanager
def _progress(plan: ProbePlan, *, enabled: bool) -> Iterator[ProgressCallback | None]:
    if not (
        enabled and len(plan.targets) > HANDFUL and output.is_terminal() and sys.stdout.isatty()
    ):
        yield None
        return
    from rich.progress import Progress

    with Progress(console=output.stderr(), transient=True) as progress:
        task = progress.add_task(f"probing {len(plan.targets)} routes", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield advance


def _write_junit(path: Path, report: ProbeReport) -> None:
    from code24ctl.probe.junit import probe_junit

    try:
        path.write_text(probe_junit(report), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write the JUnit report {path}: {exc.strerror or exc}") from None


# Below this width the worker, content type and X-Code24-Worker columns are left out (--json
# has them; the route names its worker): ten columns squeezed into 80 make every cell unreadable.
WIDE_TABLE_COLUMNS = 120


def _render(report: ProbeReport) -> None:
    console = output.stdout()
    direct = report.settings.direct
    wide = console.width >= WIDE_TABLE_COLUMNS
    columns = ["result", "route", "worker", "status"] if wide else ["result", "route", "status"]
    columns += ["content type", "verdict"] if wide else ["verdict"]
    if direct:
        columns.append("direct")
    columns += ["X-Code24-Worker", "fallback", "latency"] if wide else ["fallback", "latency"]
    table = output.table(*columns)
    for row in report.routes:
        cells = [{"pass": "ok", "fail": "FAIL", "skip": "skip"}[row.outcome], row.route]
        if wide:
            cells.append(row.worker)
        cells.append("-" if row.status is None else str(row.status))
        if wide:
            cells.append(_media_type(row.content_type))
        cells.append(_verdict(row))
        if direct:
            cells.append(_verdict(row.direct) if row.direct is not None else "-")
        if wide:
            cells.append(row.x_code24_worker or "-")
        cells += [_fallback(row), _latency(row)]
        table.add_row(*cells)
    console.print(table)
    failing = [row for row in report.routes if row.outcome == "fail"]
    if failing:
        console.print()
        for row in failing:
            console.print(f"{row.route}: {'; '.join(row.problems)}", markup=False)
            if row.direct is not None:
                answer = row.direct
                console.print(
                    f"  direct {answer.url}: {answer.verdict} ({answer.reason})", markup=False
                )
            if row.cf_ray:
                console.print(f"  cf-ray: {row.cf_ray}", markup=False)
            if row.body_excerpt and row.verdict != "json":
                console.print(f"  body: {row.body_excerpt}", markup=False)
    summary = report.summary
    counts = f"{summary.passed} passed, {summary.failed} failed"
    if summary.skipped:
        counts += f", {summary.skipped} skipped"
    console.print()
    console.print(
        f"probed {summary.routes - summary.skipped} of {summary.routes} routes on "
        f"{report.base_url} ({report.environment}): {counts}",
        markup=False,
    )


def _media_type(content_type: str | None) -> str:
    from code24ctl.dispatch.classify import media_type

    return media_type(content_type) or "-"


def _verdict(seen: Observation) -> str:
    text: str = seen.verdict
    if seen.cloudflare_error is not None:
        text += f" (error code {seen.cloudflare_error})"
    elif seen.error is not None:
        text += f" ({seen.error})"
    count = seen.verdict_counts.get(seen.verdict, 0)
    if seen.attempts > 1 and count != seen.attempts:
        text += f" ({count} of {seen.attempts})"
    return text


def _fallback(row: RouteResult) -> str:
    if row.fallback is None:
        return "-"
    if not row.fallback:
        return "no"
    text = f"yes ({row.fallback_reason})" if row.fallback_reason else "yes"
    if row.attempts > 1 and row.fallback_count != row.attempts:
        text += f" ({row.fallback_count} of {row.attempts})"
    return text


def _latency(row: RouteResult) -> str:
    if row.latency_p50_ms is None or row.latency_p95_ms is None:
        return "-"
    if row.attempts == 1:
        text = f"{row.latency_p50_ms:.0f} ms"
    else:
        text = f"p50 {row.latency_p50_ms:.0f} ms, p95 {row.latency_p95_ms:.0f} ms"
    return text + " (slow)" if row.slow else text
