"""uvicorn's httptools protocol with the three changes a JSON-always dispatcher needs.

1. The raw request target goes into the ASGI scope (``code24.target``). uvicorn hands the app a
   parsed path, which has already lost an absolute-form target (``GET http://host/x``) that
   D2 of docs/dispatch.md refuses. ``code24.abort`` lets the app cut a connection whose
   streamed answer broke halfway (there is no ASGI message for that).
2. A request that is not valid HTTP gets a JSON envelope, not uvicorn's ``text/plain`` 400.
3. The app can have an answer's head and body leave in one write (``code24.hold`` /
   ``code24.flush``): uvicorn writes them separately, two ``send`` syscalls per answer, and the
   profile under load showed the head's write as the largest single line of serve's time.
4. The client limits of :class:`code24ctl.serve.limits.ClientLimits`: header size (431), target
   length (414), the time to send the headers (408), open connections (503), each answered in
   JSON before anything reaches the app.
5. A request with ``Upgrade`` is served as plain HTTP/1.1 (serve switches to no other
   protocol): the parser stops at such a request's head, so its body and whatever follows are
   fed to a fresh parser.
6. Garbage after a valid request in the same read gets its 400 after the valid request's
   answer, not instead of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from code24ctl.dispatch.routing import (
    DISPATCHER_VERSION_HEADER,
    LOCAL_DISPATCHER_VERSION,
    new_request_id,
)
from code24ctl.serve.limits import ClientLimits, refusal_envelope

TARGET_SCOPE_KEY = "code24.target"
# A callable that cuts the connection: the only signal left when a streamed answer breaks
# after its status line went out.
ABORT_SCOPE_KEY = "code24.abort"
# Callables that hold the connection's writes and send them gathered (see _GatheringTransport).
HOLD_SCOPE_KEY = "code24.hold"
FLUSH_SCOPE_KEY = "code24.flush"

# A callable: whether the client has gone (its connection is closed or closing).
GONE_SCOPE_KEY = "code24.gone"
# A callable the app puts in the scope while it waits on the worker; called when the client's
# connection is lost, so the app stops waiting for an answer nobody will read.
ON_GONE_SCOPE_KEY = "code24.on_gone"
# Set once serve's protocol has answered the request itself (a 400 while its body was coming):
# the app then neither forwards it nor records a second answer.
ANSWERED_SCOPE_KEY = "code24.answered"

# Told of every answer the protocol gives by itself: (code, status). Set by the app's owner.
RefusalHook = Callable[[str, int], None]


# Writes bigger than this go out at once (after what is pending) instead of being gathered.
_GATHER_LIMIT = 64 * 1024


class _GatheringTransport:
    """The connection's transport, able to hold writes until the app says it is done.

    While held (``code24.hold`` in the scope), writes are gathered and go out in one write at
    ``code24.flush``: the head and the whole body of an answer leave in one ``send``. Unheld,
    writes pass straight through; closing or aborting hands what is held to the transport first.
    """

    __slots__ = ("_pending", "held", "transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self._pending: list[bytes] = []
        self.held = False

    def hold(self) -> None:
        self.held = True

    def write(self, data: bytes) -> None:
        if self.held and len(data) <= _GATHER_LIMIT:
            self._pending.append(data)
        else:
            self.flush()
            self.transport.write(data)

    def flush(self) -> None:
        self.held = False
        pending = self._pending
        if pending:
            data = pending[0] if len(pending) == 1 else b"".join(pending)
            pending.clear()
            if not self.transport.is_closing():
                self.transport.write(data)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def abort(self) -> None:
        self.flush()  # what was already said goes out as it would have unheld
        self.transport.abort()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


@dataclass(frozen=True)
class ProtocolPolicy:
    """The client limits, and who hears of the protocol's own answers."""

    limits: ClientLimits = field(default_factory=ClientLimits)
    on_refusal: RefusalHook | None = None


class _OverLimit(Exception):
    """Raised in a parser callback to stop parsing a head that is over a limit."""


# Servers whose connections a sweep is checking for the header timeout.
_SWEPT: weakref.WeakSet[Any] = weakref.WeakSet()


def _sweep(loop: asyncio.AbstractEventLoop, state: Any, interval: float) -> None:
    """Time out the connections of one server that waited too long for a head."""
    now = loop.time()
    for conn in list(state.connections):
        since = getattr(conn, "head_since", None)
        if since is not None and now - since >= conn.policy.limits.header_timeout_s:
            conn.head_timed_out()
    if state.connections:
        loop.call_later(interval, _sweep, loop, state, interval)
    else:
        _SWEPT.discard(state)  # the next connection starts it again


def protocol_class(policy: ProtocolPolicy) -> type[DispatchHttpProtocol]:
    """The protocol class uvicorn builds per connection, with ``policy``."""
    return type("DispatchHttpProtocol", (DispatchHttpProtocol,), {"policy": policy})


class DispatchHttpProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that records the raw target, refuses bad requests in JSON, enforces
    the client limits and gathers each answer's writes into one."""

    # Set per server on a subclass (see protocol_class).
    policy: ProtocolPolicy = ProtocolPolicy()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Flow control keeps the real transport; the cycles write through the gatherer.
        self.transport = _GatheringTransport(transport)  # type: ignore[assignment]
        # The real transport's, called per request: no detour through the gatherer.
        self._is_closing = transport.is_closing
        self._head_bytes = 0
        # Bytes in the piece being fed, and in the piece the head in progress began in:
        # with _head_bytes, an upper bound on the head's size (see on_headers_complete).
        self._fed = 0
        self._begin_fed = 0
        self._in_head = False
        self._began_here = False
        self._upgrading = False
        self._replaying = False
        self._over_limit: str | None = None
        self.head_since: float | None = None
        if len(self.connections) > self.policy.limits.max_connections:
            self._refuse("over_capacity")
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        cycle = self.cycle
        super().connection_lost(exc)
        if cycle is not None and not cycle.response_complete:
            scope: dict[str, Any] = cycle.scope  # type: ignore[assignment]
            on_gone = scope.get(ON_GONE_SCOPE_KEY)
            if on_gone is not None:
                on_gone()

    # Reading, within the limits ----------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        limit = self.policy.limits.max_header_bytes
        while data:
            if self._is_closing():
                return
            piece = data
            cycle = self.cycle
            if self._in_head or not cycle or cycle.response_complete or not cycle.more_body:
                # A head may be coming: feed no more than it may still take (+1 to see it go
                # over), so the parser never holds much more than the limit.
                room = limit - self._head_bytes + 1
                if len(piece) > room:
                    piece = data[:room]
            data = data[len(piece) :]
            self._began_here = False
            self._fed = len(piece)
            try:
                self.parser.feed_data(piece)
            except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
                if not self._feed_stopped(exc, piece):
                    return
            if self._in_head:
                if not self._began_here:
                    self._head_bytes += len(piece)  # all of it is the head
                if len(self.url) > self.policy.limits.max_url_bytes:
                    self._refuse("uri_too_long")
                    return
                if self._head_bytes > limit:
                    self._refuse("headers_too_large")
                    return

    def _feed(self, data: bytes) -> bool:
        """Feed the parser; False when the connection is done with."""
        self._fed = len(data)
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            return self._feed_stopped(exc, data)
        return True

    def _feed_stopped(self, exc: Exception, data: bytes) -> bool:
        """The parser stopped feeding ``data`` with ``exc``; False when the connection is
        done with."""
        if isinstance(exc, httptools.HttpParserUpgrade):
            rest = data[exc.args[0] :] if exc.args else b""
            return self._after_upgrade_head(rest)
        if self._over_limit is not None:
            self._refuse(self._over_limit)
        else:
            self.send_400_response("Invalid HTTP request received.")
        return False

    def _after_upgrade_head(self, rest: bytes) -> bool:
        """The parser stopped after a head asking for another protocol: go on in HTTP/1.1
        with a fresh parser, its body framed as the head declared."""
        self._upgrading = False
        # The parser calls back the object it is made with, bound once: a guard that drops
        # the replayed head's callbacks (below) rather than a check in every request's.
        self.parser = httptools.HttpRequestParser(_ReplayGuard(self))
        with contextlib.suppress(AttributeError):  # as uvicorn sets up its own (httptools 0.6.3+)
            self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        framing = b""
        cycle = self.cycle
        if cycle is not None and cycle.more_body:
            for name, value in self.headers:
                if name == b"content-length":
                    framing = b"Content-Length: " + value + b"\r\n"
                elif name == b"transfer-encoding":
                    framing = b"Transfer-Encoding: " + value + b"\r\n"
        if framing:
            # Replay a head with the same framing (its callbacks are ignored) so the body
            # that follows is parsed exactly as the client framed it.
            self._replaying = True
            try:
                self.parser.feed_data(b"POST / HTTP/1.1\r\n" + framing + b"\r\n")
            finally:
                self._replaying = False
        return self._feed(rest) if rest else True

    # Parser callbacks ----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._in_head = True
        self._began_here = True
        self._head_bytes = 0
        self._begin_fed = self._fed
        if self.head_since is None:
            # The sweep runs while this connection is open (it was started for it in
            # connection_made): noting the time is enough.
            self.head_since = self.loop.time()
        HttpToolsProtocol.on_message_begin(self)

    def on_headers_complete(self) -> None:
        # The exact size of the head, now that it is whole (data_received only guards the
        # memory an unfinished one may take). Counted only when the bytes fed since the head
        # began could hold more than the limit: the size counted is never more than those.
        limits = self.policy.limits
        url = self.url
        if len(url) > limits.max_url_bytes:
            self._over_limit = "uri_too_long"
        elif self._head_bytes + self._begin_fed + self._fed > limits.max_header_bytes:
            size = len(url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
            if size > limits.max_header_bytes:
                self._over_limit = "headers_too_large"
        if self._over_limit is not None:
            raise _OverLimit(self._over_limit)  # stops the parser; _feed answers
        self._in_head = False
        self.head_since = None
        scope: dict[str, Any] = self.scope  # type: ignore[assignment]
        scope[TARGET_SCOPE_KEY] = url
        gatherer: _GatheringTransport = self.transport  # type: ignore[assignment]
        scope[ABORT_SCOPE_KEY] = gatherer.abort
        scope[GONE_SCOPE_KEY] = self._is_closing
        scope[HOLD_SCOPE_KEY] = gatherer.hold
        scope[FLUSH_SCOPE_KEY] = gatherer.flush
        # The parser treats a head with Upgrade as the last HTTP bytes on the connection
        # and ends its message there; serve answers it in HTTP/1.1, body included.
        self._upgrading = self.parser.should_upgrade()
        HttpToolsProtocol.on_headers_complete(self)
        if self._upgrading and self.cycle is not None:
            self.cycle.keep_alive = False  # the client expects the connection to change

    def on_message_complete(self) -> None:
        if self._upgrading and self._declares_body():
            return  # not the end: the body comes after the parser's stop (see above)
        HttpToolsProtocol.on_message_complete(self)

    def _declares_body(self) -> bool:
        for name, value in self.headers:
            if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
                return True
        return False

    def _answer_deferred_400(self) -> None:
        # The valid request before the garbage has its answer; now the garbage's.
        self.server_state.total_requests += 1
        self._refuse("bad_request")

    # The header timeout --------------------------------------------------------------------
    # Not a timer per request: creating and cancelling one measured ~15% of a 404's cost.
    # Each connection notes when it started waiting for a head; one sweep per server checks.

    def _arm_head_timer(self) -> None:
        self.head_since = self.loop.time()
        if self.server_state not in _SWEPT:
            _SWEPT.add(self.server_state)
            interval = min(1.0, self.policy.limits.header_timeout_s / 4)
            self.loop.call_later(interval, _sweep, self.loop, self.server_state, interval)

    def _disarm_head_timer(self) -> None:
        self.head_since = None

    def head_timed_out(self) -> None:
        self.head_since = None
        if self.transport.is_closing():
            return
        if self._in_head:
            self._refuse("request_timeout")
        elif not self.cycle or self.cycle.response_complete:
            self.transport.close()  # connected and said nothing

    # Answers of its own ------------------------------------------------------------------------

    def send_400_response(self, msg: str) -> None:
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete and not cycle.more_body:
            # Garbage after a whole valid request: answer that one first (when the cycle
            # calls back its end); read nothing more meanwhile.
            if cycle.on_response == self.on_response_complete:
                cycle.on_response = self._answer_deferred_400
            self.flow.pause_reading()
            return
        if cycle is not None and not cycle.response_complete:
            # The body of the request in progress is broken: this 400 is its answer, and
            # the app must not forward what it has.
            cycle.scope[ANSWERED_SCOPE_KEY] = True  # type: ignore[literal-required]
        self._refuse("bad_request")

    def _refuse(self, code: str) -> None:
        """Answer ``code`` (one of serve's own refusals) in JSON and close the connection."""
        self._disarm_head_timer()
        request_id = new_request_id()
        status, body = refusal_envelope(code, None, request_id)
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"x-code24-request-id: " + request_id.encode("ascii") + b"\r\n",
                _VERSION_LINE,
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
        hook = self.policy.on_refusal
        if hook is not None:
            hook(code, status)


# D6: serve's own refusals name the version too, as every other answer does.
_VERSION_LINE = f"{DISPATCHER_VERSION_HEADER.lower()}: {LOCAL_DISPATCHER_VERSION}\r\n".encode()


class _ReplayGuard:
    """The callbacks of a parser that takes over after an Upgrade head: the protocol's, except
    that those of the head replayed to set up the body's framing are dropped."""

    __slots__ = ("protocol",)

    def __init__(self, protocol: DispatchHttpProtocol) -> None:
        self.protocol = protocol

    def on_message_begin(self) -> None:
        if not self.protocol._replaying:
            self.protocol.on_message_begin()

    def on_url(self, url: bytes) -> None:
        if not self.protocol._replaying:
            self.protocol.on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.protocol._replaying:
            self.protocol.on_header(name, value)

    def on_headers_complete(self) -> None:
        if not self.protocol._replaying:
            self.protocol.on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self.protocol.on_body(body)

    def on_message_complete(self) -> None:
        if not self.protocol._replaying:
            self.protocol.on_message_complete()
