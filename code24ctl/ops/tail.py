"""``code24ctl tail``: the dispatcher's requests, log lines and exceptions, live.

A tail session (:mod:`code24ctl.cloudflare.tail`) hands out a WebSocket address; the socket
speaks ``trace-v1`` (wrangler's protocol): the client sends ``{"debug": false}`` once, then
receives one JSON ``TailEventMessage`` per Worker invocation, with the invocation's
``console.*`` lines in ``logs`` and uncaught errors in ``exceptions``.

``dispatcher.js`` logs one structured line per request (``{"code24": "request", ...}``: request
id, method, path, worker, status, fallback reason, dispatch ms), which is where each shown
request's figures come from; the event's own ``request`` fills in when that line is missing.
The API has no filter for those figures, so ``--worker`` and ``--fallbacks-only`` apply here.
"""

from __future__ import annotations

import datetime
import json
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from code24ctl import __version__
from code24ctl.cloudflare.tail import TailSession, close_tail, open_tail
from code24ctl.errors import Code24Error, NetworkError

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession

log = logging.getLogger(__name__)

TRACE_PROTOCOL = "trace-v1"
#: How often a waiting receive wakes up, so Ctrl-C is seen promptly on every platform.
RECEIVE_SLICE_S = 0.5
#: wrangler's keep-alive (workers-sdk packages/wrangler/src/tail/index.ts): a ping every 10 s,
#: and no pong before the next one means the connection is lost.
PING_INTERVAL_S = 10.0
PING_PAYLOAD = b"code24ctl tail ping"
#: wrangler's reconnect backoff (same file): 1, 2, 4, 8, 16 s, then it gives up.
RECONNECT_BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0)


class TailRequest(BaseModel):
    """One request as the dispatcher logged it."""

    request_id: str = ""
    method: str = ""
    path: str = ""
    worker: str = ""
    route: str = ""
    status: int | None = None
    upstream_status: int | None = None
    fallback_reason: str = ""
    dispatch_ms: float | None = None


class TailLog(BaseModel):
    """One of the dispatcher's own log lines."""

    level: str
    message: str


class TailException(BaseModel):
    """An exception the invocation raised."""

    name: str
    message: str


class TailEvent(BaseModel):
    """One invocation of the dispatcher, as ``tail --format json`` prints it (one per line)."""

    time: str
    outcome: str
    request: TailRequest | None
    logs: list[TailLog]
    exceptions: list[TailException]


def _iso(timestamp_ms: Any) -> str:
    try:
        moment = datetime.datetime.fromtimestamp(float(timestamp_ms) / 1000, tz=datetime.UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return ""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _text(part: Any) -> str:
    return part if isinstance(part, str) else json.dumps(part, separators=(",", ":"))


def _request_line(message: Any) -> dict[str, Any] | None:
    if not (isinstance(message, list) and len(message) == 1 and isinstance(message[0], str)):
        return None
    text = message[0]
    if '"code24"' not in text:
        return None
    try:
        fields = json.loads(text)
    except ValueError:
        return None
    return fields if isinstance(fields, dict) and fields.get("code24") == "request" else None


def _path_of(url: str) -> str:
    rest = url.split("://", 1)[-1]
    slash = rest.find("/")
    return rest[slash:].split("?", 1)[0] if slash >= 0 else "/"


def parse_event(raw: Any) -> TailEvent:
    """A ``TailEventMessage`` as a :class:`TailEvent` (tolerant: unknown shapes become empty)."""
    data = raw if isinstance(raw, dict) else {}
    request: TailRequest | None = None
    logs: list[TailLog] = []
    for entry in data.get("logs") or []:
        if not isinstance(entry, dict):
            continue
        fields = _request_line(entry.get("message"))
        if fields is not None and request is None:
            request = TailRequest.model_validate(
                {k: v for k, v in fields.items() if k in TailRequest.model_fields}
            )
            continue
        message = entry.get("message")
        parts = message if isinstance(message, list) else [message]
        logs.append(
            TailLog(level=str(entry.get("level", "log")), message=" ".join(map(_text, parts)))
        )
    event = data.get("event")
    seen = event.get("request") if isinstance(event, dict) else None
    if request is None and isinstance(seen, dict):
        response = event.get("response") if isinstance(event, dict) else None
        status = response.get("status") if isinstance(response, dict) else None
        request = TailRequest(
            method=str(seen.get("method", "")),
            path=_path_of(str(seen.get("url", ""))),
            status=status if isinstance(status, int) else None,
        )
    exceptions = [
        TailException(name=str(e.get("name", "Error")), message=_text(e.get("message", "")))
        for e in data.get("exceptions") or []
        if isinstance(e, dict)
    ]
    return TailEvent(
        time=_iso(data.get("eventTimestamp")),
        outcome=str(data.get("outcome", "")),
        request=request,
        logs=logs,
        exceptions=exceptions,
    )


@dataclass(frozen=True)
class TailFilter:
    """What to show (the API cannot filter on the dispatcher's own figures)."""

    worker: str | None = None
    fallbacks_only: bool = False

    def keeps(self, event: TailEvent) -> bool:
        """Whether ``event`` passes every filter given."""
        if self.worker is None and not self.fallbacks_only:
            return True
        request = event.request
        if request is None:
            return False
        if self.worker is not None and request.worker != self.worker:
            return False
        return not (self.fallbacks_only and not request.fallback_reason)


class Pong(Protocol):
    """What a ping hands back: set once the matching pong arrived."""

    def is_set(self) -> bool: ...


class Socket(Protocol):
    """The part of a ``websockets`` sync connection tail uses."""

    def send(self, message: str) -> None: ...

    def recv(self, timeout: float | None = None) -> str | bytes: ...

    def ping(self, data: bytes) -> Pong: ...


Connect = Callable[[str], AbstractContextManager[Socket]]


def connect_trace(url: str) -> AbstractContextManager[Socket]:
    """Open the session's WebSocket with the ``trace-v1`` subprotocol, as wrangler does."""
    from websockets.sync.client import connect
    from websockets.typing import Subprotocol

    # The address is the session's credential: the API token is never sent on the socket.
    return connect(
        url,
        subprotocols=[Subprotocol(TRACE_PROTOCOL)],
        user_agent_header=f"code24ctl/{__version__}",
        open_timeout=30,
        # A connection given up as silent would otherwise hold the reconnect for websockets'
        # default 10 s, waiting for a closing handshake that never comes.
        close_timeout=2,
        max_size=None,
    )


def expiry(expires_at: str) -> float | None:
    """``expires_at`` of a session as a POSIX time (None: not a time we can read)."""
    try:
        moment = datetime.datetime.fromisoformat(expires_at)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


@dataclass
class _Stream:
    """Reading one socket: why it stopped, and whether it got anything (message or pong)."""

    why: str = ""  # "closed" | "expired" | "silent" | "done"
    alive: bool = False
    #: Why the connection counts as lost, in words (for "silent").
    lost: str = ""


def _stream(
    socket: Socket,
    expires: float | None,
    on_raw: Callable[[Any], bool],
    ping_interval_s: float,
) -> _Stream:
    """Read events until the socket closes, the session expires, a ping goes unanswered until
    the next one is due, or ``on_raw`` says it has shown enough (True)."""
    from websockets.exceptions import ConnectionClosed

    state = _Stream()
    socket.send(json.dumps({"debug": False}))
    next_ping = time.monotonic() + ping_interval_s
    pong: Pong | None = None
    while True:
        if expires is not None and time.time() >= expires:
            state.why = "expired"
            return state
        now = time.monotonic()
        if now >= next_ping:
            if pong is not None and not pong.is_set():
                state.why = "silent"
                state.lost = f"no answer to a keep-alive ping within {ping_interval_s:g}s"
                return state
            state.alive = state.alive or pong is not None
            pong = socket.ping(PING_PAYLOAD)
            next_ping = now + ping_interval_s
        wait = min(RECEIVE_SLICE_S, next_ping - now)
        if expires is not None:
            wait = min(wait, expires - time.time())
        try:
            raw = socket.recv(timeout=max(wait, 0.001))
        except TimeoutError:
            continue
        except ConnectionClosed:
            state.why = "closed"
            return state
        state.alive = True
        try:
            message = json.loads(raw)
        except ValueError:
            log.warning("tail: skipped a message that is not JSON")
            continue
        if on_raw(message):
            state.why = "done"
            return state


@dataclass(frozen=True)
class TailOutcome:
    """How a tail ended."""

    session: TailSession
    shown: int
    deleted: bool


def run_tail(
    session: CloudflareSession,
    script: str,
    on_event: Callable[[TailEvent], None],
    *,
    keep: TailFilter = TailFilter(),
    max_events: int | None = None,
    on_open: Callable[[TailSession], None] | None = None,
    on_close: Callable[[TailSession, bool], None] | None = None,
    on_note: Callable[[str], None] | None = None,
    connect: Connect = connect_trace,
    ping_interval_s: float = PING_INTERVAL_S,
    backoff_s: tuple[float, ...] = RECONNECT_BACKOFF_S,
    sleep: Callable[[float], None] = time.sleep,
) -> TailOutcome:
    """Tail ``script`` until ``max_events`` were shown, the socket closes, or the user
    interrupts (KeyboardInterrupt propagates).

    Like wrangler: the socket is pinged every ``ping_interval_s``; a ping unanswered when the
    next is due means the connection is lost, and a new session is opened after each of the
    ``backoff_s`` delays in turn before giving up (NetworkError). The backend stops delivering at
    the session's ``expires_at`` without closing the socket, so at that moment a new session is
    opened. ``on_note`` hears both, in a sentence. Every session is deleted once left; the last
    on every way out, and ``on_close`` hears whether it was (``False``: it had already ended).
    """
    from websockets.exceptions import InvalidHandshake, InvalidURI

    tail = open_tail(session, script)
    shown = 0
    failures = 0
    note = on_note or (lambda _text: None)

    def on_raw(raw: Any) -> bool:
        nonlocal shown
        event = parse_event(raw)
        if keep.keeps(event):
            on_event(event)
            shown += 1
        return max_events is not None and shown >= max_events

    def replace(old: TailSession) -> TailSession:
        new = open_tail(session, script)
        _close(session, old)
        return new

    try:
        if on_open is not None:
            on_open(tail)
        while True:
            expires = expiry(tail.expires_at)
            if expires is not None and expires <= time.time():
                # Already past on our clock: a clock that disagrees with the API's must not
                # make every new session look expired (and open sessions without end).
                expires = None
            try:
                with connect(tail.url) as socket:
                    stream = _stream(socket, expires, on_raw, ping_interval_s)
            except (OSError, InvalidHandshake, InvalidURI) as exc:
                if failures == 0:
                    raise NetworkError(
                        f"cannot open the tail WebSocket for {script} "
                        f"({type(exc).__name__}: {exc})",
                        hint="check your network; the tail host must be reachable over wss://",
                    ) from None
                stream = _Stream(why="silent", lost=f"cannot connect ({type(exc).__name__})")
            if stream.why in ("closed", "done"):
                break
            if stream.why == "expired":
                old = tail
                tail = replace(old)
                note(f"tail session {old.id} expired at {old.expires_at}; opened session {tail.id}")
                continue
            failures = 0 if stream.alive else failures
            failures += 1
            if failures > len(backoff_s):
                raise NetworkError(
                    f"the tail connection for {script} is lost: {len(backoff_s)} reconnect "
                    "attempts failed",
                    hint="check your network, then run `code24ctl tail` again",
                )
            delay = backoff_s[failures - 1]
            note(
                f"tail connection lost: {stream.lost}; reconnecting "
                f"(attempt {failures} of {len(backoff_s)}) in {delay:g}s"
            )
            sleep(delay)
            tail = replace(tail)
            note(f"reconnected: tail session {tail.id}")
    finally:
        deleted = _close(session, tail)
        if on_close is not None:
            on_close(tail, deleted)
    return TailOutcome(session=tail, shown=shown, deleted=deleted)


def _close(session: CloudflareSession, tail: TailSession) -> bool:
    try:
        return close_tail(session, tail)
    except Code24Error as exc:
        # Never mask why the tail stopped; the tail session expires on its own anyway.
        log.warning("could not delete tail session %s: %s", tail.id, exc.message)
        return False
