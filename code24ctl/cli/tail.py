"""``code24ctl tail``: the dispatcher's requests, log lines and exceptions, live."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from code24ctl.cli import output
from code24ctl.cli.options import ConfigOption, EnvOption, JsonOption, load
from code24ctl.errors import UsageError

if TYPE_CHECKING:
    from code24ctl.ops.tail import TailEvent


def tail(
    config: ConfigOption = None,
    env: EnvOption = None,
    worker: Annotated[
        str | None,
        typer.Option("--worker", metavar="ALIAS", help="only requests routed to this worker"),
    ] = None,
    fallbacks_only: Annotated[
        bool,
        typer.Option(
            "--fallbacks-only",
            metavar="",
            help="only requests answered by a fallback or refused by the dispatcher",
        ),
    ] = False,
    output_format: Annotated[
        str,
        typer.Option(
            "--format", metavar="pretty|json", help="pretty lines, or one JSON object per line"
        ),
    ] = "pretty",
    max_events: Annotated[
        int | None,
        typer.Option("--max-events", min=1, metavar="N", help="stop after showing N requests"),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Stream the dispatcher's traffic as it happens: one line per request (time, method, path,
    worker, status, fallback reason, dispatch ms, request id), with the dispatcher's own log
    lines and exceptions under it.

    It shows the dispatcher's events only: the AI workers' own console lines and exceptions
    are not in the dispatcher's tail; `code24ctl logs` shows those (Workers Logs).

    Opens a tail session on the environment's dispatcher (what `wrangler tail` does); Ctrl-C
    closes and deletes it. Like wrangler it pings the socket every 10 s and reconnects with
    backoff when a ping goes unanswered, and opens a new session when one expires (saying so on
    stderr). `--worker` and `--fallbacks-only` filter here, as the API cannot.
    The global --json means `--format json`: a stream has one document per line.
    """
    from code24ctl.cli.invocation import invocation
    from code24ctl.cli.session import cloudflare_session
    from code24ctl.ops.tail import TailFilter, run_tail

    if json_output or invocation().json:
        output_format = "json"

    if output_format not in ("pretty", "json"):
        raise UsageError(f"--format {output_format!r} is not one of pretty, json")
    resolved = load(config, env)
    if worker is not None:
        resolved.chosen_workers([worker])
    session = cloudflare_session(resolved)
    show = _print_json if output_format == "json" else _print_pretty
    run_tail(
        session,
        resolved.dispatcher(),
        show,
        keep=TailFilter(worker=worker, fallbacks_only=fallbacks_only),
        max_events=max_events,
        on_open=lambda s: output.note(f"tailing {s.script} (session {s.id}); Ctrl-C to stop"),
        on_note=output.note,
        on_close=lambda s, deleted: output.note(
            f"tail session {s.id} deleted" if deleted else f"tail session {s.id} had ended"
        ),
    )


def _print_json(event: TailEvent) -> None:
    output.emit_json_line(event)


def _print_pretty(event: TailEvent) -> None:
    request = event.request
    if request is not None:
        columns = [
            event.time,
            request.method or "-",
            request.path or "-",
            request.worker or "-",
            "-" if request.status is None else str(request.status),
            request.fallback_reason or "-",
            "-" if request.dispatch_ms is None else f"{request.dispatch_ms:g}ms",
            request.request_id or "-",
        ]
    else:
        columns = [event.time, f"({event.outcome or 'event'})"]
    lines = ["  ".join(columns)]
    lines += [f"    ({entry.level}) {entry.message}" for entry in event.logs]
    lines += [f"    exception {e.name}: {e.message}" for e in event.exceptions]
    # Log lines are the Workers' own text: masked like every other line on stdout.
    stream = output.Scrubbed(sys.stdout)
    stream.write("\n".join(lines) + "\n")
    stream.flush()
