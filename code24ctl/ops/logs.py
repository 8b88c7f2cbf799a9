"""``code24ctl logs``: the AI workers' own log lines and exceptions from Workers Logs, next to
the dispatcher's record of each request.

The Workers Observability API (:mod:`code24ctl.cloudflare.observability`) is asked for the
events of the namespace's copies (their script names are the worker aliases) and, where the
dispatcher's view matters (``--errors-only``, ``--request-id``), of the dispatcher: its one
structured line per request (``{"code24": "request", ...}``, dispatcher.js ``record``) says
which answers it judged not JSON and carries the ``X-Code24-Request-Id``.

Joining one request: the API filters on event fields, and whether the invocation event keeps
the request's headers is not documented, so no server-side filter can name the
``X-Code24-Request-Id`` a worker received. The dispatcher's line is found by a full-text
search for the id; the workers' events are then read from a bounded window around it
(:data:`JOIN_BEFORE_MS`, :data:`JOIN_AFTER_MS`, at most :data:`JOIN_LIMIT` events) and kept
here when they carry the id (the request header, a log line naming it) or share Cloudflare's
``$metadata.requestId`` with an event that does (every line of that invocation).
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from code24ctl.cloudflare.analytics import parse_since
from code24ctl.cloudflare.observability import Filter, leaf, query_events, service_filter
from code24ctl.cloudflare.session import CloudflareSession
from code24ctl.config import ResolvedConfig
from code24ctl.errors import NetworkError, UsageError

__all__ = [
    "JOIN_AFTER_MS",
    "JOIN_BEFORE_MS",
    "JOIN_LIMIT",
    "LogLine",
    "LogsQuery",
    "LogsReport",
    "logs_command",
    "parse_event",
    "query_logs",
    "resolve_window",
]

#: Workers Logs keeps events 7 days on the paid plan (3 on the free one): docs
#: workers/observability/logs/workers-logs, "Limits".
MAX_WINDOW_S = 7 * 86_400
#: The window searched for a worker's lines of one request, around the dispatcher's line
#: (which is written after the answer, so the worker's lines come first).
JOIN_BEFORE_MS = 120_000
JOIN_AFTER_MS = 10_000
JOIN_LIMIT = 1_000
#: The dispatcher's fallback reasons for an answer it judged not JSON, or a worker that failed.
ERROR_REASONS = frozenset(
    {"upstream_html", "upstream_not_json", "worker_error", "worker_timeout", "worker_over_limit"}
)
HEADER = "x-code24-request-id"


class LogLine(BaseModel):
    """One event: a worker's log line, exception or invocation, or the dispatcher's record of a
    request."""

    time: str
    timestamp_ms: int
    source: Literal["worker", "dispatcher"]
    worker: str
    outcome: str | None = None
    status: int | None = None
    level: str | None = None
    message: str = ""
    exception: str | None = None
    stack: str | None = None
    request_id: str | None = None
    fallback_reason: str | None = None
    cloudflare_request_id: str | None = None


class LogsReport(BaseModel):
    """What ``logs`` found, oldest first."""

    environment: str
    dispatcher: str
    workers: list[str]
    start: str
    end: str
    errors_only: bool
    search: str | None
    request_id: str | None
    lines: list[LogLine]
    #: True when the API gave as many events as asked for: there may be more.
    truncated: bool
    notes: list[str]


@dataclass(frozen=True)
class LogsQuery:
    """What to look for: which workers (empty: all), when, and which lines."""

    workers: tuple[str, ...] = ()
    since: str | None = None
    start: str | None = None
    end: str | None = None
    errors_only: bool = False
    search: str | None = None
    request_id: str | None = None
    limit: int = 100


def logs_command(env: str, workers: Sequence[str] = (), **flags: str | bool | None) -> str:
    """The exact ``code24ctl logs ...`` command line (for hints from probe, stats, doctor)."""
    parts = ["code24ctl", "logs", "--env", env]
    for worker in workers:
        parts += ["--worker", worker]
    for name, value in flags.items():
        option = "--" + name.replace("_", "-")
        if value is True:
            parts.append(option)
        elif value not in (None, False):
            parts += [option, str(value)]
    return " ".join(parts)


# ------------------------------------------------------------------------------ the window
def _parse_time(text: str, option: str) -> int:
    raw = text.strip()
    try:
        stamp = datetime.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"{option} {text!r} is not a time",
            hint="use ISO 8601: 2026-12-06T17:30:00Z (a time without a zone is UTC)",
        ) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.UTC)
    return int(stamp.timestamp() * 1000)


def resolve_window(query: LogsQuery, now_ms: int) -> tuple[int, int]:
    """``(start_ms, end_ms)``: ``--from``/``--to``, else the last ``--since`` (15m)."""
    if query.since is not None and query.start is not None:
        raise UsageError("give --since or --from, not both")
    end = _parse_time(query.end, "--to") if query.end is not None else now_ms
    if query.start is not None:
        start = _parse_time(query.start, "--from")
    else:
        start = end - parse_since(query.since or "15m") * 1000
    if start >= end:
        raise UsageError("--from must be earlier than --to")
    if end - start > MAX_WINDOW_S * 1000:
        raise UsageError(
            "the window is longer than Workers Logs keeps events (7 days)",
            hint="use at most --since 7d",
        )
    return start, end


def _iso(ms: int) -> str:
    stamp = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ------------------------------------------------------------------------------ events
def _get(node: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _request_line(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The dispatcher's structured request line in an event, if it is one."""
    for candidate in (event.get("source"), _get(event, "$metadata", "message")):
        if isinstance(candidate, str):
            try:
                candidate = json.loads(candidate)
            except ValueError:
                continue
        if isinstance(candidate, Mapping) and candidate.get("code24") == "request":
            return dict(candidate)
    return None


def _header(event: Mapping[str, Any]) -> str | None:
    headers = _get(event, "$workers", "event", "request", "headers")
    if isinstance(headers, Mapping):
        for name, value in headers.items():
            if str(name).lower() == HEADER and isinstance(value, str):
                return value
    return None


def parse_event(event: Mapping[str, Any], dispatcher: str) -> LogLine:
    """One ``EventsEvent`` (by alias) as a :class:`LogLine`."""
    metadata = event.get("$metadata") or {}
    workers = event.get("$workers") or {}
    stamp = int(event.get("timestamp") or 0)
    script = str(metadata.get("service") or workers.get("scriptName") or "")
    status = metadata.get("statusCode")
    if status is None:
        status = _get(workers, "event", "response", "status")
    line = LogLine(
        time=_iso(stamp),
        timestamp_ms=stamp,
        source="worker",
        worker=script,
        outcome=workers.get("outcome"),
        status=status if isinstance(status, int) else None,
        level=metadata.get("level"),
        message=str(metadata.get("message") or ""),
        request_id=_header(event),
        cloudflare_request_id=metadata.get("requestId") or workers.get("requestId"),
    )
    record = _request_line(event) if script == dispatcher else None
    if record is not None:
        line.source = "dispatcher"
        line.worker = str(record.get("worker") or "")
        status = record.get("status")
        line.status = status if isinstance(status, int) else line.status
        line.request_id = str(record.get("request_id") or "") or None
        line.fallback_reason = str(record.get("fallback_reason") or "") or None
        line.message = (
            f"{record.get('method', '?')} {record.get('path', '?')} -> "
            f"{record.get('status', '?')}"
            + (f" fallback {line.fallback_reason}" if line.fallback_reason else "")
        )
        return line
    error = metadata.get("error")
    source = event.get("source")
    exception = source.get("exception") if isinstance(source, Mapping) else None
    if isinstance(exception, Mapping):
        name = exception.get("name")
        line.exception = str(name) if name else (str(error) if error else "Error")
        if exception.get("message"):
            line.message = str(exception["message"])
        stack = exception.get("stack")
        line.stack = str(stack) if stack else None
    elif error:
        line.exception = str(error)
    if not line.message and isinstance(source, str):
        line.message = source
    if not line.message and metadata.get("trigger"):
        # The invocation itself (no log text): what triggered it, e.g. "POST /design/enhanced".
        line.message = str(metadata["trigger"])
    return line


def _worker_error(line: LogLine) -> bool:
    return (
        line.exception is not None
        or (line.outcome not in (None, "ok"))
        or line.level == "error"
        or (line.status is not None and line.status >= 500)
    )


# ------------------------------------------------------------------------------ the query
def query_logs(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    query: LogsQuery,
    *,
    now_ms: int | None = None,
) -> LogsReport:
    """Read the lines ``query`` asks for from Workers Logs, oldest first."""
    aliases = resolved.chosen_workers(query.workers)
    dispatcher = resolved.dispatcher()
    start, end = resolve_window(query, int(time.time() * 1000) if now_ms is None else now_ms)
    notes: list[str] = []
    if query.request_id is not None:
        lines, truncated = _one_request(session, dispatcher, aliases, query, start, end, notes)
    else:
        lines, truncated = _many(session, dispatcher, aliases, query, start, end)
    lines.sort(key=lambda line: (line.timestamp_ms, line.source != "dispatcher"))
    return LogsReport(
        environment=resolved.env_name,
        dispatcher=dispatcher,
        workers=list(aliases),
        start=_iso(start),
        end=_iso(end),
        errors_only=query.errors_only,
        search=query.search,
        request_id=query.request_id,
        lines=lines,
        truncated=truncated,
        notes=notes,
    )


def _many(
    session: CloudflareSession,
    dispatcher: str,
    aliases: Sequence[str],
    query: LogsQuery,
    start: int,
    end: int,
) -> tuple[list[LogLine], bool]:
    filters: list[Filter] = [service_filter(aliases)]
    if query.errors_only:
        filters.append(
            {
                "kind": "group",
                "filterCombination": "or",
                "filters": [
                    leaf("$metadata.error", "exists"),
                    leaf("$metadata.level", "eq", "error"),
                    leaf("$workers.outcome", "neq", "ok"),
                ],
            }
        )
    raw = query_events(
        session, start_ms=start, end_ms=end, filters=filters, needle=query.search, limit=query.limit
    )
    truncated = len(raw) >= query.limit
    lines = [parse_event(event, dispatcher) for event in raw]
    if query.errors_only:
        # The dispatcher's judgement of each answer: only its line says "not JSON".
        found = query_events(
            session,
            start_ms=start,
            end_ms=end,
            filters=[service_filter([dispatcher])],
            needle=query.search,
            limit=query.limit,
        )
        truncated = truncated or len(found) >= query.limit
        for event in found:
            line = parse_event(event, dispatcher)
            if (
                line.source == "dispatcher"
                and line.worker in aliases
                and (line.fallback_reason in ERROR_REASONS)
            ):
                lines.append(line)
        lines = [line for line in lines if line.source == "dispatcher" or _worker_error(line)]
    lines.sort(key=lambda line: line.timestamp_ms)
    return lines[-query.limit :], truncated


def _one_request(
    session: CloudflareSession,
    dispatcher: str,
    aliases: Sequence[str],
    query: LogsQuery,
    start: int,
    end: int,
    notes: list[str],
) -> tuple[list[LogLine], bool]:
    request_id = query.request_id or ""
    found = query_events(
        session,
        start_ms=start,
        end_ms=end,
        filters=[service_filter([dispatcher])],
        needle=request_id,
        limit=query.limit,
    )
    records = [
        line
        for line in (parse_event(event, dispatcher) for event in found)
        if line.source == "dispatcher" and line.request_id == request_id
    ]
    if records:
        at = min(line.timestamp_ms for line in records)
        last = max(line.timestamp_ms for line in records)
        window = (max(start, at - JOIN_BEFORE_MS), min(end, last + JOIN_AFTER_MS))
        routed = {line.worker for line in records if line.worker}
        scripts = [alias for alias in aliases if alias in routed] or list(aliases)
    else:
        notes.append(
            f"the dispatcher's line for request {request_id} is not in Workers Logs between "
            f"{_iso(start)} and {_iso(end)}: is Workers Logs on for {dispatcher}? (searched "
            "the workers' lines in that window instead)"
        )
        window = (start, end)
        scripts = list(aliases)
    raw = query_events(
        session,
        start_ms=window[0],
        end_ms=window[1],
        filters=[service_filter(scripts)],
        limit=JOIN_LIMIT,
    )
    truncated = len(raw) >= JOIN_LIMIT
    if truncated:
        notes.append(
            f"{JOIN_LIMIT} worker events in {_iso(window[0])}..{_iso(window[1])}: the window "
            "was full, lines of this request may be missing (narrow it with --from/--to)"
        )
    events = [parse_event(event, dispatcher) for event in raw]
    invocations = {
        line.cloudflare_request_id
        for line in events
        if line.cloudflare_request_id
        and (line.request_id == request_id or request_id in line.message)
    }
    mine = [
        line
        for line in events
        if line.request_id == request_id
        or request_id in line.message
        or (line.cloudflare_request_id is not None and line.cloudflare_request_id in invocations)
    ]
    for line in mine:
        line.request_id = request_id
    return records + mine, truncated


# ------------------------------------------------------------------------------ follow
@dataclass
class FollowOutcome:
    """How a ``logs --follow`` ended."""

    shown: int
    heartbeats: int


def follow_logs(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    query: LogsQuery,
    on_line: Callable[[LogLine], None],
    *,
    connect: Callable[[str], Any] | None = None,
    heartbeat_s: float = 30.0,
    max_lines: int | None = None,
    on_open: Callable[[], None] | None = None,
) -> FollowOutcome:
    """Stream the namespace's workers' events as they happen (a live tail) until ``max_lines``
    were shown, the socket closes, or the user interrupts (KeyboardInterrupt propagates after
    the socket is closed). A heartbeat goes out on opening and every ``heartbeat_s``."""
    from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

    from code24ctl.cloudflare.observability import heartbeat, open_live_tail

    aliases = resolved.chosen_workers(query.workers)
    dispatcher = resolved.dispatcher()
    url = open_live_tail(session, [service_filter(aliases)])
    if connect is None:
        from websockets.sync.client import connect as ws_connect

        connect = ws_connect
    shown = beats = 0
    try:
        opened = connect(url)
    except (OSError, InvalidHandshake, InvalidURI) as exc:
        # The address is the live tail's only credential: it stays out of the message.
        why = str(exc).replace(url, "<the live tail address>")
        raise NetworkError(
            f"cannot open the Workers Logs live tail ({type(exc).__name__}: {why})",
            hint="check your network; the live tail host must be reachable over wss://",
        ) from None
    with opened as socket:
        try:
            heartbeat(session)
            beats += 1
            if on_open is not None:
                on_open()
            due = time.monotonic() + heartbeat_s
            while max_lines is None or shown < max_lines:
                if time.monotonic() >= due:
                    heartbeat(session)
                    beats += 1
                    due = time.monotonic() + heartbeat_s
                try:
                    raw = socket.recv(timeout=min(1.0, heartbeat_s))
                except TimeoutError:
                    continue
                except ConnectionClosed:
                    break
                try:
                    event = json.loads(raw)
                except ValueError:
                    continue
                if not isinstance(event, dict):
                    continue
                line = parse_event(event, dispatcher)
                if query.errors_only and not _worker_error(line):
                    continue
                if query.search and query.search.lower() not in json.dumps(event).lower():
                    continue
                on_line(line)
                shown += 1
        finally:
            socket.close()
    return FollowOutcome(shown=shown, heartbeats=beats)
