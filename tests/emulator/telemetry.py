"""Workers Observability (Workers Logs) for the emulator: ``POST /accounts/{a}/workers/
observability/telemetry/{query,keys,values,live-tail,live-tail/heartbeat}`` and the WebSocket a
live tail's ``wsUrl`` points at (``ws://<emulator>/observability/live-tail/{id}``).

What is emulated, and how far it is known to be right (the README's "Workers Logs" section
cites the sources):

- events are what tests push (``state.telemetry.push``), shaped like the SDK's
  ``TelemetryQueryResponse.events.events[]`` (``EventsEvent``: ``$metadata``, ``$workers``,
  ``dataset``, ``source``, ``timestamp``); :func:`worker_event` builds one. Cloudflare stores
  what a Worker with Workers Logs on logs; here nothing is stored unless a test pushes it.
- ``query`` answers the ``events`` view only (another view is refused with 400: the emulator
  does not compute calculations). ``timeframe`` bounds ``timestamp`` (``from`` inclusive,
  ``to`` inclusive: the docs do not say); ``parameters.filters`` (leaves and ``kind: group``,
  nested, ``filterCombination`` and/or) and ``parameters.needle`` (a case-insensitive
  substring of the event's JSON unless ``matchCase``) select events; ``limit`` (default 50:
  the real default is not documented) keeps the newest. The order of ``events.events`` is
  not documented: newest first here.
- a filter ``key`` is looked up as a dotted path from the event's top (``$metadata.service``,
  ``$workers.outcome``), then inside ``source`` (a structured log's own fields). ``in`` and
  ``not_in`` take comma-separated values, as the SDK's docstring says.
- ``live-tail`` answers ``{wsUrl}``; the socket sends one JSON message per event matching the
  filters (and ``scriptId``, a script name here). The message format of the real socket is
  not in the SDK or the docs (unsettled): the emulator sends the same ``EventsEvent`` shape
  the query answers. ``live-tail/heartbeat`` is recorded (``heartbeats``) and answered
  ``null``; a session whose heartbeat is older than ``heartbeat_s`` stops delivering (the real
  interval is not documented).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.websockets import WebSocket, WebSocketDisconnect

from .errors import ApiError

if TYPE_CHECKING:
    from .state import EmulatorState

__all__ = ["LiveTail", "TelemetryStore", "serve_live_tail_socket", "worker_event"]

DATASET = "cloudflare-workers"
DEFAULT_LIMIT = 50
HEARTBEAT_S = 60.0
_POLL_S = 0.02


@dataclass
class LiveTail:
    """One live tail: its filters, and how far it has delivered."""

    id: str
    account_id: str
    filters: list[Any]
    combination: str
    script: str | None
    delivered: int
    last_heartbeat: float
    closed: bool = False
    connections: int = 0


@dataclass
class TelemetryStore:
    """Workers Logs events of every account, and the live tails reading them."""

    _events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _tails: dict[str, LiveTail] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    #: Every heartbeat, as ``(account_id, scriptId or None)``.
    heartbeats: list[tuple[str, str | None]] = field(default_factory=list)
    #: A live tail whose last heartbeat is older than this stops delivering.
    heartbeat_s: float = HEARTBEAT_S
    #: Fault injection: every live tail socket is refused at its handshake (HTTP 403).
    refuse_sockets: bool = False

    def push(self, account_id: str, event: Mapping[str, Any]) -> None:
        """Test hook: Workers Logs stored ``event`` (an ``EventsEvent``)."""
        with self._lock:
            self._events.setdefault(account_id, []).append(dict(event))

    def events(self, account_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._events.get(account_id, []))

    # ---------------------------------------------------------------- query
    def query(self, account_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """The ``TelemetryQueryResponse`` for an ``events`` query."""
        view = body.get("view", "events")
        if view != "events":
            raise ApiError(400, 10001, f"the emulator answers only the events view, not {view!r}")
        frame = body.get("timeframe") or {}
        start, end = frame.get("from", 0), frame["to"]
        if start > end:
            raise ApiError(400, 10001, "timeframe.from must be earlier than timeframe.to")
        params = body.get("parameters") or {}
        limit = int(body.get("limit") or params.get("limit") or DEFAULT_LIMIT)
        found = [
            e
            for e in self.events(account_id)
            if start <= e["timestamp"] <= end and _selected(e, params)
        ]
        found.sort(key=lambda e: e["timestamp"], reverse=True)
        found = found[:limit]
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return {
            "run": {
                "id": secrets.token_hex(8),
                "accountId": account_id,
                "dry": bool(body.get("dry", False)),
                "granularity": 0,
                "query": {
                    "id": str(body.get("queryId", "")),
                    "adhoc": True,
                    "created": stamp,
                    "createdBy": "emulator",
                    "name": str(body.get("queryId", "")) or "adhoc",
                    # The SDK's answer model types needle.value as an object where its
                    # request type has a string (unsettled): the echo leaves the needle out.
                    "parameters": {k: v for k, v in params.items() if k != "needle"},
                    "updated": stamp,
                    "updatedBy": "emulator",
                },
                "status": "COMPLETED",
                "timeframe": {"from": start, "to": end},
                "userId": "emulator",
            },
            "statistics": {"bytes_read": 0, "elapsed": 0, "rows_read": len(found)},
            "events": {
                "count": len(found),
                "events": found,
                "fields": [{"key": k, "type": t} for k, t in sorted(_keys(found).items())],
            },
        }

    def keys(self, account_id: str, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        """``TelemetryKeysResponse`` for every key of the stored events."""
        start, end = body.get("from", 0), body.get("to", float("inf"))
        events = [
            e
            for e in self.events(account_id)
            if start <= e["timestamp"] <= end and _selected(e, body)
        ]
        seen = _keys(events)
        last = max((e["timestamp"] for e in events), default=0)
        return [{"key": k, "type": t, "lastSeenAt": last} for k, t in sorted(seen.items())]

    def values(self, account_id: str, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        """``TelemetryValuesResponse`` for each distinct value of ``key``."""
        key = body["key"]
        frame = body.get("timeframe") or {}
        start, end = frame.get("from", 0), frame.get("to", float("inf"))
        out: dict[Any, dict[str, Any]] = {}
        for event in self.events(account_id):
            if not start <= event["timestamp"] <= end or not _selected(event, body):
                continue
            value = lookup(event, key)
            if isinstance(value, str | int | float | bool) and value not in out:
                out[value] = {
                    "dataset": event.get("dataset", DATASET),
                    "key": key,
                    "type": _type_of(value),
                    "value": value,
                }
        return list(out.values())

    # ---------------------------------------------------------------- live tail
    def open_tail(self, account_id: str, body: Mapping[str, Any]) -> LiveTail:
        with self._lock:
            tail = LiveTail(
                id=secrets.token_hex(16),
                account_id=account_id,
                filters=list(body.get("filters") or []),
                combination=str(body.get("filterCombination", "and")),
                script=body.get("scriptId"),
                delivered=len(self._events.get(account_id, [])),
                last_heartbeat=time.monotonic(),
            )
            self._tails[tail.id] = tail
            return tail

    def heartbeat(self, account_id: str, script: str | None) -> None:
        with self._lock:
            self.heartbeats.append((account_id, script))
            for tail in self._tails.values():
                if tail.account_id == account_id and (script is None or tail.script == script):
                    tail.last_heartbeat = time.monotonic()

    def tail(self, tail_id: str) -> LiveTail | None:
        with self._lock:
            return self._tails.get(tail_id)

    def tails(self) -> list[LiveTail]:
        with self._lock:
            return list(self._tails.values())

    def undelivered(self, tail: LiveTail) -> list[dict[str, Any]]:
        """Events stored since the tail last delivered that match it (none when its heartbeat
        is stale)."""
        with self._lock:
            events = self._events.get(tail.account_id, [])
            fresh = events[tail.delivered :]
            tail.delivered = len(events)
            if time.monotonic() - tail.last_heartbeat > self.heartbeat_s:
                return []
        params = {"filters": tail.filters, "filterCombination": tail.combination}
        return [
            e
            for e in fresh
            if _selected(e, params)
            and (tail.script is None or lookup(e, "$metadata.service") == tail.script)
        ]


# ------------------------------------------------------------------------------ matching
def lookup(event: Mapping[str, Any], key: str) -> Any:
    """The value of ``key`` in ``event``: a dotted path from the top, else inside ``source``."""
    for root in (event, event.get("source")):
        node: Any = root
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                node = None
                break
            node = node[part]
        if node is not None:
            return node
    return None


def _selected(event: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
    filters = params.get("filters") or []
    combination = str(params.get("filterCombination", "and")).lower()
    if filters and not _combine(event, filters, combination):
        return False
    needle = params.get("needle")
    if needle:
        text = json.dumps(event, separators=(",", ":"))
        value = str(needle.get("value", ""))
        if needle.get("matchCase"):
            return value in text
        return value.lower() in text.lower()
    return True


def _combine(event: Mapping[str, Any], filters: Sequence[Any], combination: str) -> bool:
    results = (_matches(event, f) for f in filters)
    return any(results) if combination == "or" else all(results)


_OPS = {
    "=": "eq",
    "!=": "neq",
    ">": "gt",
    ">=": "gte",
    "<": "lt",
    "<=": "lte",
    "includes": "includes",
    "does_not_include": "not_includes",
    "match_regex": "regex",
    "does_not_exist": "is_null",
}


def _matches(event: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    if node.get("kind") == "group":
        combination = str(node.get("filterCombination", "and")).lower()
        return _combine(event, node.get("filters") or [], combination)
    op = str(node["operation"]).lower()
    op = _OPS.get(op, op)
    have = lookup(event, str(node["key"]))
    want = node.get("value")
    if op == "exists":
        return have is not None
    if op == "is_null":
        return have is None
    if op in ("in", "not_in"):
        options = [v.strip() for v in str(want).split(",")]
        inside = have is not None and str(have) in options
        return inside if op == "in" else not inside
    if have is None:
        return op in ("neq", "not_includes")
    if op == "eq":
        return bool(have == want or str(have) == str(want))
    if op == "neq":
        return not (have == want or str(have) == str(want))
    if op == "includes":
        return str(want) in str(have)
    if op == "not_includes":
        return str(want) not in str(have)
    if op == "starts_with":
        return str(have).startswith(str(want))
    if op == "ends_with":
        return str(have).endswith(str(want))
    if op == "regex":
        import re

        return re.search(str(want), str(have)) is not None
    if op in ("gt", "gte", "lt", "lte"):
        try:
            a, b = float(have), float(want)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False
        return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[op]
    raise ApiError(400, 10001, f"unknown filter operation {node['operation']!r}")


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string"


def _keys(events: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    found: dict[str, str] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(node, str | int | float | bool):
            found.setdefault(prefix, _type_of(node))

    for event in events:
        for top in ("$metadata", "$workers"):
            walk(top, event.get(top))
        source = event.get("source")
        if isinstance(source, Mapping):
            walk("", source)
    return found


# ------------------------------------------------------------------------------ the socket
async def serve_live_tail_socket(state: EmulatorState, websocket: WebSocket) -> None:
    """The live tail's WebSocket: one JSON message per matching event until the client
    closes."""
    store: TelemetryStore = state.telemetry
    tail = store.tail(websocket.path_params.get("tail_id", ""))
    if tail is None or tail.closed or store.refuse_sockets:
        await websocket.close(code=1008)
        return
    await websocket.accept()
    tail.connections += 1
    closed = asyncio.Event()

    async def receive() -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
        closed.set()

    reader = asyncio.create_task(receive())
    try:
        while not closed.is_set():
            for event in store.undelivered(tail):
                await websocket.send_text(json.dumps(event))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closed.wait(), _POLL_S)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        tail.closed = True
        reader.cancel()


# ------------------------------------------------------------------------------ events
def worker_event(
    *,
    script: str,
    timestamp_ms: int,
    message: str | None = None,
    level: str = "log",
    outcome: str = "ok",
    status: int | None = None,
    error: str | None = None,
    exception: tuple[str, str, str] | None = None,
    request_id: str | None = None,
    ray_id: str | None = None,
    code24_request_id: str | None = None,
    namespace: str | None = None,
    url: str = "https://staging.code24.dev/",
    method: str = "GET",
    source: Mapping[str, Any] | str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """One Workers Logs event (the SDK's ``EventsEvent``) of ``script``.

    ``message`` makes it a log line (``$metadata.type`` ``cf-worker-log``, the example value
    in the SDK's docstring); ``exception`` ``(name, message, stack)`` an uncaught exception
    (its ``$metadata.error``; ``source`` carries name, message and stack: where the real API
    puts the stack is not documented, unsettled). Without either it is the invocation event
    (``cf-worker-event``), whose ``$workers.event.request.headers`` carries
    ``X-Code24-Request-Id`` when ``code24_request_id`` is given (whether the real invocation
    log keeps request headers is not documented, unsettled).
    """
    kind = "cf-worker-log" if message is not None or exception is not None else "cf-worker-event"
    metadata: dict[str, Any] = {
        "id": event_id or secrets.token_hex(10),
        "service": script,
        "type": kind,
        "level": "error" if exception is not None else level,
        "origin": "fetch",
        "trigger": f"{method} {urlsplit(url).path or '/'}",
        "url": url,
    }
    if message is not None:
        metadata["message"] = message
    if exception is not None:
        metadata["error"] = f"{exception[0]}: {exception[1]}"
        metadata["message"] = exception[1]
    elif error is not None:
        metadata["error"] = error
    if status is not None:
        metadata["statusCode"] = status
    if request_id is not None:
        metadata["requestId"] = request_id
    if ray_id is not None:
        metadata["rayId"] = ray_id
    event: dict[str, Any] = {"url": url, "method": method}
    if code24_request_id is not None:
        event["request"] = {"headers": {"x-code24-request-id": code24_request_id}}
    if status is not None:
        event["response"] = {"status": status}
    workers: dict[str, Any] = {
        "eventType": "fetch",
        "scriptName": script,
        "outcome": outcome,
        "event": event,
        "cpuTimeMs": 1,
        "wallTimeMs": 2,
    }
    if request_id is not None:
        workers["requestId"] = request_id
    if namespace is not None:
        workers["dispatchNamespace"] = namespace
    if source is None:
        if exception is not None:
            name, text, stack = exception
            source = {"exception": {"name": name, "message": text, "stack": stack}}
        else:
            source = message or ""
    return {
        "$metadata": metadata,
        "$workers": workers,
        "dataset": DATASET,
        "source": source,
        "timestamp": timestamp_ms,
    }
