"""Tail sessions for the emulator: ``POST/GET/DELETE /accounts/{a}/workers/scripts/{s}/tails``
and the WebSocket each session's ``url`` points at (``ws://<emulator>/tail/{id}``, protocol
``trace-v1``), streaming events shaped like Cloudflare's ``TailEventMessage``.

What is emulated, and how far it is known to be right:

- create answers ``{id, url, expires_at}`` (SDK ``TailCreateResponse``; wrangler reads the same
  three keys). The real ``url`` is a ``wss://`` address on Cloudflare's tail host; here it is this
  emulator's ``ws://`` address. Filters in the POST body are accepted and ignored.
- the socket insists on the ``trace-v1`` subprotocol (wrangler: "needs to be `trace-v1` to be
  accepted"); the client's first message (wrangler sends ``{"debug": false}``) is read and
  ignored. A deleted or unknown session closes the socket with code 1008 (the real code is not
  documented).
- events: every event pushed for the script (``state.tails.push``), those pushed before the
  session opened included, so tests need no timing; a later session of the same script goes on
  from where the earlier ones stopped delivering (nothing twice). Cloudflare streams only events
  that happen while the session is open.
- expiry: at ``expires_at`` the session stops delivering and the socket stays open, as
  wrangler's ``packages/wrangler/src/tail/index.ts`` says of the real backend ("does not
  actively close this WebSocket when the expiration time is reached — log delivery just
  stops"). ``TailHub.session_s`` sets the lifetime (the real one is not documented).
- ``TailHub.next_urls``: a fault for tests, the ``url`` the next sessions hand out instead of
  the emulator's own (a socket that never answers a ping, say).
- the event shape follows wrangler's ``TailEventMessage`` type (``outcome``, ``scriptName``,
  ``exceptions``, ``logs``, ``eventTimestamp``, ``event.request``). ``event.response.status`` is
  added the way workerd's Tail Worker type has it; no public source confirms the trace-v1 socket
  sends it, so code24ctl reads the status from the dispatcher's own log line instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket, WebSocketDisconnect

if TYPE_CHECKING:
    from .state import EmulatorState

__all__ = ["TRACE_PROTOCOL", "TailHub", "TailSession", "dispatcher_event", "serve_tail_socket"]

TRACE_PROTOCOL = "trace-v1"
SESSION_S = 6 * 3600  # how long a session lives (the real lifetime is not documented)
_POLL_S = 0.02


@dataclass
class TailSession:
    """One tail on one script."""

    id: str
    account_id: str
    script: str
    expires_at: float
    deleted: bool = False
    connections: int = 0

    #: Events of the script this session starts after (those earlier sessions delivered).
    start: int = 0
    #: Events of the script delivered so far (an index into the script's events).
    delivered: int = 0
    url: str | None = None

    @property
    def expired(self) -> bool:
        """Whether ``expires_at`` has passed (the session delivers nothing more)."""
        return time.time() >= self.expires_at

    def to_api(self, host: str) -> dict[str, Any]:
        stamp = datetime.datetime.fromtimestamp(self.expires_at, tz=datetime.UTC)
        expires = stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        url = self.url or f"ws://{host}/tail/{self.id}"
        return {"id": self.id, "url": url, "expires_at": expires}


@dataclass
class TailHub:
    """Tail sessions and the events the scripts produce (pushed by tests)."""

    _sessions: dict[str, TailSession] = field(default_factory=dict)
    _events: dict[tuple[str, str], list[dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)
    #: How long a session lives, in seconds (the real lifetime is not documented).
    session_s: float = SESSION_S
    #: Fault: the ``url`` the next sessions hand out instead of the emulator's own.
    next_urls: list[str] = field(default_factory=list)

    def push(self, account_id: str, script: str, event: Mapping[str, Any]) -> None:
        """Test hook: ``script`` produced ``event`` (a ``TailEventMessage``)."""
        with self._lock:
            self._events[(account_id, script)].append(dict(event))

    def create(self, account_id: str, script: str) -> TailSession:
        with self._lock:
            earlier = [
                s.delivered
                for s in self._sessions.values()
                if (s.account_id, s.script) == (account_id, script)
            ]
            start = max(earlier, default=0)
            session = TailSession(
                id=secrets.token_hex(16),
                account_id=account_id,
                script=script,
                expires_at=time.time() + self.session_s,
                start=start,
                delivered=start,
                url=self.next_urls.pop(0) if self.next_urls else None,
            )
            self._sessions[session.id] = session
            return session

    def delete(self, account_id: str, script: str, tail_id: str) -> bool:
        """Whether a live session of that script was deleted."""
        with self._lock:
            session = self._sessions.get(tail_id)
            if session is None or session.deleted:
                return False
            if (session.account_id, session.script) != (account_id, script):
                return False
            session.deleted = True
            return True

    def sessions(
        self, account_id: str | None = None, script: str | None = None
    ) -> list[TailSession]:
        """Sessions (deleted ones included), oldest first."""
        with self._lock:
            return [
                s
                for s in self._sessions.values()
                if (account_id is None or s.account_id == account_id)
                and (script is None or s.script == script)
            ]

    def live(self, account_id: str, script: str) -> list[TailSession]:
        return [s for s in self.sessions(account_id, script) if not s.deleted]

    def session(self, tail_id: str) -> TailSession | None:
        with self._lock:
            return self._sessions.get(tail_id)

    def undelivered(self, session: TailSession) -> list[dict[str, Any]]:
        """The script's events this session has not sent yet (none once it expired)."""
        with self._lock:
            if session.expired:
                return []
            events = self._events.get((session.account_id, session.script), [])
            return list(events[session.delivered :])


async def serve_tail_socket(state: EmulatorState, websocket: WebSocket) -> None:
    """The session's WebSocket: stream the script's events until the client closes or the
    session is deleted."""
    hub: TailHub = state.tails
    session = hub.session(websocket.path_params.get("tail_id", ""))
    protocols = websocket.scope.get("subprotocols") or []
    if TRACE_PROTOCOL not in protocols:
        await websocket.close(code=1002)
        return
    if session is None or session.deleted:
        await websocket.close(code=1008)
        return
    await websocket.accept(subprotocol=TRACE_PROTOCOL)
    session.connections += 1
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
        while not closed.is_set() and not session.deleted:
            for event in hub.undelivered(session):
                await websocket.send_text(json.dumps(event))
                session.delivered += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closed.wait(), _POLL_S)
        if not closed.is_set():
            await websocket.close(code=1000)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        reader.cancel()


def dispatcher_event(
    *,
    request_id: str,
    method: str = "GET",
    path: str = "/",
    host: str = "staging.code24.dev",
    worker: str = "",
    route: str = "",
    status: int = 200,
    upstream_status: int = 0,
    fallback_reason: str = "",
    dispatch_ms: float = 1,
    body_bytes: int = 0,
    environment: str = "staging",
    timestamp_ms: int = 1_767_225_600_000,
    extra_logs: Sequence[tuple[str, str]] = (),
    exceptions: Sequence[tuple[str, str]] = (),
    outcome: str = "ok",
) -> dict[str, Any]:
    """A ``TailEventMessage`` for one request through ``dispatcher.js``: its structured request
    line (what ``record`` logs) first, then ``extra_logs`` (level, text) and ``exceptions``
    (name, message)."""
    line = {
        "code24": "request",
        "request_id": request_id,
        "method": method,
        "path": path,
        "environment": environment,
        "worker": worker,
        "route": route,
        "status": status,
        "upstream_status": upstream_status,
        "fallback_reason": fallback_reason,
        "dispatch_ms": dispatch_ms,
        "body_bytes": body_bytes,
    }
    logs = [
        {"message": [text], "level": level, "timestamp": timestamp_ms} for level, text in extra_logs
    ]
    logs.append(
        {
            "message": [json.dumps(line, separators=(",", ":"))],
            "level": "log",
            "timestamp": timestamp_ms,
        }
    )
    return {
        "outcome": outcome,
        "scriptName": None,
        "exceptions": [
            {"name": name, "message": message, "timestamp": timestamp_ms}
            for name, message in exceptions
        ],
        "logs": logs,
        "eventTimestamp": timestamp_ms,
        "event": {
            "request": {
                "url": f"https://{host}{path}",
                "method": method,
                "headers": {},
                "cf": {},
            },
            "response": {"status": status},
        },
    }
