"""``code24ctl probe``: send every route's sample request and say which routes answer JSON."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from code24ctl.cli import output
from code24ctl.cli.completion import route_prefixes as complete_route_prefixes
from code24ctl.cli.options import ConfigOption, EnvOption, JsonOption, load
from code24ctl.constants import DEFAULT_PROBE_CONCURRENCY, DEFAULT_VERSION_WAIT_S
from code24ctl.errors import CheckFailed, UsageError

if TYPE_CHECKING:
    from code24ctl.config import ResolvedConfig
    from code24ctl.probe.plan import ProbePlan
    from code24ctl.probe.report import Observation, ProbeReport, RouteResult
    from code24ctl.probe.runner import ProgressCallback

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
        typer.Option(
            "--route",
            metavar="PREFIX",
            help="only routes under PREFIX (repeatable)",
            autocompletion=complete_route_prefixes,
        ),
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
    version: Annotated[
        str | None,
        typer.Option(
            "--version",
            metavar="VERSION_ID",
            help="send every request to this dispatcher version (Cloudflare-Workers-Version-"
            "Overrides); 'new' for the newest version. An answer from any other version "
            "fails its route (version_not_applied)",
        ),
    ] = None,
    wait: Annotated[
        float,
        typer.Option(
            "--wait",
            min=0,
            metavar="S",
            help="with --version: wait up to S seconds for the override to take effect",
        ),
    ] = DEFAULT_VERSION_WAIT_S,
) -> None:
    """Send every route's probe request and say which answer JSON.

    Verdicts: json, html, not-json, empty, error (no answer); routes without a probe sample
    are skipped. A route fails when its answer is not JSON, is slow, comes from a fallback for
    a worker that is not serving (worker_not_found, worker_error, worker_timeout), or is the
    dispatcher's own route_not_found. A fallback for a worker that answered HTML or non-JSON
    is a warning (a failure with --fail-on-fallback). Every answer names the dispatcher
    version that made it: --version first waits (--wait) for that version to answer, then
    fails any route answered by another (version_not_applied); without --version the answers
    are counted per version. Exit status 0 when no route failed; 1
    otherwise; 2 for bad usage or config; 3 when no route answered at all.
    """
    from code24ctl.probe.plan import ProbeOptions, plan_probe
    from code24ctl.probe.report import no_answer_error
    from code24ctl.probe.runner import run_plan
    from code24ctl.probe.send import wait_lines

    if timeout is not None and timeout <= 0:
        raise UsageError(f"--timeout must be more than 0 seconds, not {timeout:g}")
    resolved = load(config, env)
    headers: tuple[tuple[str, str], ...] = ()
    if version is not None:
        version, header = _version_override(resolved, version)
        headers = (header,)
    options = ProbeOptions(
        headers=headers,
        version=version,
        version_wait_s=wait,
        base_url=base_url,
        repeat=repeat,
        concurrency=concurrency,
        timeout_s=timeout,
        max_latency_ms=max_latency_ms,
        fail_on_fallback=fail_on_fallback,
        routes=tuple(route or ()),
        direct=direct,
    )
    plan = plan_probe(resolved, options)
    on_wait = wait_lines(output.note, version, wait) if version is not None else None
    with _progress(plan, enabled=not json_output) as on_progress:
        report = run_plan(plan, on_progress, on_wait)
    if junit is not None:
        _write_junit(junit, report)
    if json_output:
        from code24ctl.cli.schemas import ProbeDocument

        output.emit(ProbeDocument(**dict(report), namespace=None))
    else:
        render_report(report, logs_hints=not resolved.is_local)
    for message in report.notes:
        output.note(message)
    unreachable = no_answer_error(report, from_flag=base_url is not None, local=resolved.is_local)
    if unreachable is not None:
        raise unreachable
    if not report.ok:
        failed = report.summary.failed
        raise CheckFailed(
            f"{failed} of {report.summary.routes} route{'s' if report.summary.routes != 1 else ''} "
            "failed the probe"
        )


def _version_override(resolved: ResolvedConfig, version: str) -> tuple[str, tuple[str, str]]:
    """The version id (``new``: the newest, asked of the API) and its override header."""
    from code24ctl.cloudflare.versions import override_header
    from code24ctl.ops.release import require_versions

    require_versions(resolved)
    if version == "new":
        from code24ctl.cli.session import cloudflare_session
        from code24ctl.cloudflare.versions import list_versions

        session = cloudflare_session(resolved)
        newest = list_versions(session, resolved.dispatcher(), 1)
        if not newest:
            raise UsageError(f"the dispatcher {resolved.dispatcher()} has no versions")
        version = newest[0].id
    return version, override_header(resolved.dispatcher(), version)


# Without a terminal, at most one progress line this often (seconds), so CI logs show life.
PROGRESS_LINE_S = 5.0


@contextmanager
def _progress(plan: ProbePlan, *, enabled: bool) -> Iterator[ProgressCallback | None]:
    if not enabled or len(plan.targets) <= HANDFUL:
        yield None
        return
    if not (output.is_terminal() and sys.stdout.isatty()):
        lines = output.StepLines(
            f"probe: {len(plan.targets)} routes", plan_total(plan), min_interval_s=PROGRESS_LINE_S
        )

        def line(done: int, total: int) -> None:
            lines.total = total
            lines.step("requests done", done=done)

        yield line
        return
    from rich.progress import Progress

    with Progress(console=output.stderr(), transient=True) as progress:
        task = progress.add_task(f"probing {len(plan.targets)} routes", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield advance


def plan_total(plan: ProbePlan) -> int:
    """How many requests the plan sends (the progress callback counts these)."""
    return len(plan.targets)


def _write_junit(path: Path, report: ProbeReport) -> None:
    from code24ctl.probe.junit import probe_junit

    try:
        output.write_file(path, probe_junit(report))
    except OSError as exc:
        raise UsageError(f"cannot write the JUnit report {path}: {exc.strerror or exc}") from None


# Left out in this order when the table is wider than the terminal (a footer line says so;
# --json has them all, and the route names its worker). Route and verdict always stay.
DROP_ORDER = ("X-Code24-Worker", "content type", "worker", "direct", "latency", "fallback")


def render_report(report: ProbeReport, *, logs_hints: bool = False) -> None:
    """The probe table, the failing routes' details and the summary line, on stdout
    (``logs_hints``: each failing or warning row ends with the `code24ctl logs` command that
    shows its worker's lines for the requests the probe sent)."""
    console = output.stdout()
    direct = report.settings.direct
    columns = ["result", "route", "worker", "status", "content type", "verdict"]
    if direct:
        columns.append("direct")
    columns += ["X-Code24-Worker", "fallback", "latency"]
    rows = []
    for row in report.routes:
        cells = [_result(row), row.route, row.worker]
        cells.append("-" if row.status is None else str(row.status))
        cells.append(_media_type(row.content_type))
        cells.append(_verdict(row))
        if direct:
            cells.append(_verdict(row.direct) if row.direct is not None else "-")
        cells.append(row.x_code24_worker or "-")
        cells += [_fallback(row), _latency(row)]
        rows.append([_escape(cell) for cell in cells])
    output.print_table(columns, rows, drop_order=DROP_ORDER)
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
            if logs_hints:
                _logs_hint(console, report, row)
    warned = [row for row in report.routes if row.outcome == "pass" and row.warnings]
    if warned:
        console.print()
        for row in warned:
            console.print(f"{row.route}: warning: {'; '.join(row.warnings)}", markup=False)
            if logs_hints:
                _logs_hint(console, report, row)
    summary = report.summary
    flagged = f" ({summary.warned} with a warning)" if summary.warned else ""
    counts = f"{summary.passed} passed{flagged}, {summary.failed} failed"
    if summary.skipped:
        counts += f", {summary.skipped} skipped"
    console.print()
    through = f", version {report.version}" if report.version else ""
    console.print(
        f"probed {summary.routes - summary.skipped} of {summary.routes} routes on "
        f"{report.base_url} ({report.environment}{through}): {counts}",
        markup=False,
    )


def _logs_hint(console: Any, report: ProbeReport, row: RouteResult) -> None:
    from code24ctl.ops.logs import logs_command

    ids = list(dict.fromkeys(row.request_ids))
    if not ids:
        return
    if len(ids) > 1:
        console.print(f"  request ids: {', '.join(ids)}", markup=False)
    command = logs_command(report.environment, [row.worker], request_id=ids[0])
    console.print(f"  logs: {command}", markup=False)


def _result(row: RouteResult) -> str:
    if row.outcome == "pass" and row.warnings:
        return "warn"
    return {"pass": "ok", "fail": "FAIL", "skip": "skip"}[row.outcome]


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


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
