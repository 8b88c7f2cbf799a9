"""``code24ctl logs``: the AI workers' own log lines and exceptions (Workers Logs), next to the
dispatcher's record of each request."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from code24ctl.cli import output
from code24ctl.cli.options import ConfigOption, EnvOption, JsonOption, load
from code24ctl.errors import UsageError

if TYPE_CHECKING:
    from code24ctl.ops.logs import LogLine, LogsReport


def logs(
    config: ConfigOption = None,
    env: EnvOption = None,
    worker: Annotated[
        list[str] | None,
        typer.Option("--worker", metavar="ALIAS", help="only this worker (repeatable) [all]"),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="DURATION", help="the last 90s, 15m, 1h, 7d [15m]"),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option("--from", metavar="TIME", help="from this time (ISO 8601, UTC by default)"),
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", metavar="TIME", help="up to this time [now]")
    ] = None,
    errors_only: Annotated[
        bool,
        typer.Option(
            "--errors-only",
            metavar="",
            help="only exceptions, errors, and answers the dispatcher judged not JSON",
        ),
    ] = False,
    search: Annotated[
        str | None,
        typer.Option("--search", metavar="TEXT", help="only events containing TEXT (any case)"),
    ] = None,
    request_id: Annotated[
        str | None,
        typer.Option(
            "--request-id",
            metavar="ID",
            help="one request (X-Code24-Request-Id): the dispatcher's line and the worker's "
            "lines, in time order",
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=1000, metavar="N", help="at most N events")
    ] = 100,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", "-f", metavar="", help="stream new events as they happen (Ctrl-C stops)"
        ),
    ] = False,
    max_events: Annotated[
        int | None,
        typer.Option("--max-events", min=1, metavar="N", help="with --follow: stop after N"),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Show the AI workers' own logs and exceptions from Workers Logs: time, worker, outcome,
    status, message, and the exception's name and stack where there is one.

    `tail` shows the dispatcher's traffic live; `logs` shows what the workers in the namespace
    logged and threw (Workers Logs must be on for them: `observability` in the config, then
    `bind`). `--request-id` follows one request: the dispatcher's line for it and the worker's
    lines, in time order. `--follow` streams through a Workers Logs live tail (with its
    heartbeat) until Ctrl-C; with --json it prints one JSON object per line.
    """
    from code24ctl.cli.invocation import invocation
    from code24ctl.cli.session import cloudflare_session
    from code24ctl.ops.logs import LogsQuery, follow_logs, query_logs

    as_json = json_output or invocation().json
    if follow and (request_id is not None or start is not None or end is not None):
        raise UsageError("--follow streams what happens next: it takes no --request-id/--from/--to")
    resolved = load(config, env)
    resolved.require_cloudflare()
    query = LogsQuery(
        workers=tuple(worker or ()),
        since=since,
        start=start,
        end=end,
        errors_only=errors_only,
        search=search,
        request_id=request_id,
        limit=limit,
    )
    session = cloudflare_session(resolved)
    if follow:
        show = _print_json_line if as_json else _print_line
        try:
            follow_logs(
                session,
                resolved,
                query,
                show,
                max_lines=max_events,
                on_open=lambda: output.note(
                    f"following Workers Logs of {resolved.namespace()} ({resolved.env_name}); "
                    "Ctrl-C to stop"
                ),
            )
        finally:
            output.note("live tail closed")
        return
    report = query_logs(session, resolved, query)
    if as_json:
        from code24ctl.cli.schemas import LogsDocument

        output.emit(LogsDocument(**dict(report), namespace=resolved.namespace()))
    else:
        render_report(report)
    for message in report.notes:
        output.note(message)


def render_report(report: LogsReport) -> None:
    """The lines, oldest first, on stdout; what was searched on stderr."""
    what = f"request {report.request_id}" if report.request_id else ", ".join(report.workers)
    output.note(f"Workers Logs {report.start} .. {report.end}: {what}")
    if not report.lines:
        output.note("no events found")
        return
    for line in report.lines:
        _print_line(line)
    if report.truncated:
        output.note("there may be more: narrow the window or raise --limit")


def _print_line(line: LogLine) -> None:
    who = line.worker or "-"
    if line.source == "dispatcher":
        who = f"dispatcher -> {who}"
    status = "-" if line.status is None else str(line.status)
    columns = [line.time, who, line.outcome or "-", status, line.message or "-"]
    lines = ["  ".join(columns)]
    if line.exception:
        lines.append(f"    exception {line.exception}")
    if line.stack:
        lines += [f"      {part}" for part in line.stack.splitlines()]
    if line.request_id and line.source == "dispatcher":
        lines.append(f"    request id {line.request_id}")
    # Log lines are the Workers' own text: masked like every other line on stdout.
    stream = output.Scrubbed(sys.stdout)
    stream.write("\n".join(lines) + "\n")
    stream.flush()


def _print_json_line(line: LogLine) -> None:
    output.emit_json_line(line)
