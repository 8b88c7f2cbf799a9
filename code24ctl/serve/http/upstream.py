"""The one place serve's upstream HTTP client is built: a small keep-alive HTTP/1.1 pool.

Measured on the serve benchmark machine (benchmarks/README.md, "serve"), one exchange through a
shared aiohttp session cost ~80-120 us of CPU against ~10-25 us for a bare httptools client, and
the client leg was the largest single cost of a dispatch. serve needs little of what a general
client does (no redirects, cookies, decompression, proxies, auto headers), so this is the
bare client made complete enough to be a transparent hop:

- one pool of idle connections per upstream origin (most recently used first), closed by a
  timer within :data:`IDLE_SWEEP_S` of :data:`KEEPALIVE_TIMEOUT_S` idle, at most
  :data:`MAX_CONNECTIONS` open at once;
- request bodies as bytes (one write with the head) or a stream (``Content-Length`` as the
  client declared it, else chunked), written alongside reading the answer;
- answers framed by ``Content-Length``, chunked, or the end of the connection; 1xx answers
  skipped; a HEAD answer has no body;
- errors as :class:`UpstreamConnectError` (could not connect: "not in the namespace"),
  :class:`UpstreamBroken` (reset, closed or garbled before or while answering) and
  :class:`TimeoutError` (the deadline the caller set passed);
- a reused connection the worker closed just before the request went out is retried once on a
  fresh one, for idempotent methods with a body in hand (RFC 9112 section 9.3.1).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import errno
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httptools

from code24ctl.dispatch.classify import NO_BODY_STATUSES

# Below the 5 s idle timeout of uvicorn, Node and workerd servers, so a pooled connection is
# dropped here before the worker drops it under a request.
KEEPALIVE_TIMEOUT_S = 4.0
# How often idle connections past KEEPALIVE_TIMEOUT_S are looked for and closed (a timer, so
# an idle pool closes them too, not only when it is next used).
IDLE_SWEEP_S = 0.5
MAX_CONNECTIONS = 512
# A connection opened ahead (UpstreamPool.prewarm) that takes longer than this is given up.
SPARE_CONNECT_TIMEOUT_S = 5.0
# Stop reading from a worker while this much of its answer waits for the client.
READ_BUFFER_LIMIT = 256 * 1024

# Linux only. Without it, a worker that writes its head and body in two sends (Python's
# http.server, Werkzeug, Flask's dev server) waits ~40 ms per answer on a pooled connection:
# Nagle holds its second write until the first is ACKed, and Linux delays that ACK on a
# connection that looks interactive (benchmarks/README.md, "Upstreams that write twice").
_TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)

# Errors that say this process ran out of something, not that the worker is missing.
_LOCAL_EXHAUSTION = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
# Methods that send "Content-Length: 0" without a body (as aiohttp and browsers do).
_BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "CONNECT", "TRACE"})

RequestBody = bytes | AsyncIterator[bytes] | None


class UpstreamError(Exception):
    """The worker could not be reached or did not answer properly."""


class UpstreamConnectError(UpstreamError):
    """No connection to the worker (refused, unknown host, unreachable)."""


class UpstreamBroken(UpstreamError):
    """The connection broke (reset, closed, not HTTP) before or while the worker answered."""


class UpstreamOverloaded(UpstreamError):
    """serve itself could not open a connection (out of file descriptors or buffers)."""


class _RetryOnFresh(UpstreamBroken):
    """A reused connection closed before a single byte of the answer."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a worker listens, parsed once from its upstream base URL."""

    host: str
    port: int
    tls: bool
    host_header: bytes
    path: str  # the base URL's own path ("" for none), put in front of every target

    @classmethod
    def parse(cls, base: str) -> Origin:
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream {base!r} is not an http(s) URL")
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        host = parts.hostname
        shown = f"[{host}]" if ":" in host else host
        default = port == (443 if tls else 80)
        header = shown if default else f"{shown}:{port}"
        return cls(host, port, tls, header.encode("idna"), parts.path.rstrip("/"))


class UpstreamResponse:
    """A worker's answer: status and raw headers at once, the body as it arrives."""

    __slots__ = (
        "_buffered",
        "_chunks",
        "_conn",
        "_error",
        "_waiter",
        "complete",
        "content_encoding",
        "content_length",
        "content_type",
        "framed",
        "raw_headers",
        "status",
    )

    def __init__(self, conn: _Connection) -> None:
        self._conn = conn
        self.status = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.content_type: str | None = None
        self.content_length: int | None = None
        self.content_encoding: str | None = None
        # Whether the body's end is marked (length, chunked, no body) rather than the close.
        self.framed = False
        self.complete = False
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None

    def read_buffered(self) -> bytes:
        """Everything that arrived and was not read yet (maybe b"")."""
        chunks = self._chunks
        if not chunks:
            return b""
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._buffered = 0
        self._conn.resume()
        return data

    async def read_chunk(self) -> bytes:
        """The next piece of the body; b"" at its end. Raises :class:`UpstreamBroken` or
        :class:`TimeoutError` (see :meth:`UpstreamPool.set_timeout`)."""
        while not self._chunks:
            if self.complete:
                return b""
            if self._error is not None:
                raise self._error
            self._waiter = self._conn.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self.read_buffered()

    async def read_up_to(self, limit: int) -> tuple[bytes, bool]:
        """Read until the body ends (``True``) or more than ``limit`` bytes are in hand."""
        parts: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = await self.read_chunk()
            if not chunk:
                return (parts[0] if len(parts) == 1 else b"".join(parts)), True
            parts.append(chunk)
            size += len(chunk)
        return b"".join(parts), False

    def set_timeout(self, seconds: float | None) -> None:
        """From now, fail the exchange with TimeoutError unless it finishes in ``seconds``."""
        self._conn.arm(seconds)

    @property
    def has_unread(self) -> bool:
        """Whether body bytes arrived that nobody read (the connection cannot be reused)."""
        return bool(self._chunks)

    def release(self) -> None:
        """Done with the answer: the connection goes back to the pool if it can."""
        self._conn.release(self)

    # Called by the connection
    def feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > READ_BUFFER_LIMIT:
            self._conn.pause()
        self._wake()

    def end(self) -> None:
        self.complete = True
        self._wake()

    def fail(self, error: BaseException) -> None:
        if self._error is None and not self.complete:
            self._error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class ConnState(enum.Enum):
    """Where an upstream connection is in its life; one exchange at a time.

    IDLE -> SENT (a request went out) -> HEAD (the answer's first bytes) -> BODY (the head is
    handed to the caller) -> DONE (the answer ended) -> IDLE (released, back in the pool).
    Any state -> CLOSED (closed, broken, timed out, or not reusable), for good.
    """

    IDLE = "idle"
    SENT = "sent"
    HEAD = "head"
    BODY = "body"
    DONE = "done"
    CLOSED = "closed"

    # Members are singletons: hash them by identity in C, not with Enum's Python __hash__
    # (a state is looked up in _EXCHANGING on every read from a worker).
    __hash__ = object.__hash__


# The states in which the worker owes an answer (bytes arriving are expected).
_EXCHANGING = frozenset({ConnState.SENT, ConnState.HEAD, ConnState.BODY})


class _Connection(asyncio.Protocol):
    """One keep-alive connection to one origin; one exchange at a time (see ConnState)."""

    def __init__(self, pool: UpstreamPool, origin: Origin) -> None:
        self.pool = pool
        self.origin = origin
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.sock: Any = None  # for TCP_QUICKACK (None: not TCP, or not Linux)
        self.parser = httptools.HttpResponseParser(self)
        self.response: UpstreamResponse | None = None
        self.head_waiter: asyncio.Future[UpstreamResponse] | None = None
        self.state = ConnState.IDLE
        # Of the exchange in progress: a HEAD request (its answer has no body), and whether
        # the answer lets the connection serve another one (keep-alive, fully read).
        self.head_method = False
        self.reusable = True
        # Of the connection: it served an exchange before (a close under it may be retried);
        # the worker said it closes it after this answer (the pool opens the next one ahead).
        self.reused = False
        self.closes_after = False
        self.paused = False
        self.idle_since = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.upload: asyncio.Task[None] | None = None
        self.write_ready: asyncio.Future[None] | None = None
        self.writing_paused = False

    @property
    def closed(self) -> bool:
        return self.state is ConnState.CLOSED

    # asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        if _TCP_QUICKACK is not None and not self.origin.tls:
            self.sock = transport.get_extra_info("socket")

    def data_received(self, data: bytes) -> None:
        state = self.state
        if state not in _EXCHANGING:  # idle in the pool or done: nobody asked
            self.close()
            return
        if state is ConnState.SENT:
            self.state = ConnState.HEAD
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.fail(UpstreamBroken(f"the worker's answer is not valid HTTP: {exc}"))
            self.close()
            return
        if self.sock is not None and self.state in _EXCHANGING:
            # More is coming: ACK what came at once (re-armed each time; the kernel drops
            # back to delayed ACKs by itself), so a worker's Nagle never waits on us.
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)

    def eof_received(self) -> bool | None:
        # A body that runs until the close ends with the worker's FIN: answer now, not a
        # loop iteration later in connection_lost.
        self._end_unframed()
        return None  # close the transport: connection_lost follows

    def _end_unframed(self) -> bool:
        """End a body delimited by the close; whether there was one to end."""
        response = self.response
        if (
            response is not None
            and response.status
            and not response.complete
            and not response.framed
        ):
            self.reusable = False
            response.end()  # the body ran until the close
            self.disarm()
            return True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        before, self.state = self.state, ConnState.CLOSED
        self.reusable = False
        self.disarm()
        self.pool.forget(self)
        if exc is None and self._end_unframed():
            return
        response = self.response
        if response is not None and response.complete and not response.framed:
            return  # ended at the worker's FIN (eof_received)
        if before is ConnState.SENT and self.reused:
            self.fail(_RetryOnFresh("the pooled connection was closed"))
            return
        reason = f": {exc}" if exc else ""
        self.fail(UpstreamBroken(f"the worker closed the connection{reason}"))
        if self.write_ready is not None and not self.write_ready.done():
            self.write_ready.set_exception(UpstreamBroken("the worker closed the connection"))

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.write_ready is not None and not self.write_ready.done():
            self.write_ready.set_result(None)

    # httptools callbacks ---------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.response is None:
            self.response = UpstreamResponse(self)
        elif self.response.status:  # a second answer to one request
            raise UpstreamBroken("the worker sent more than one answer")

    def on_header(self, name: bytes, value: bytes) -> None:
        response = self.response
        assert response is not None
        response.raw_headers.append((name, value))
        lower = name.lower()
        if lower == b"content-type":
            response.content_type = value.decode("latin-1")
        elif lower == b"content-length":
            try:
                response.content_length = int(value)
            except ValueError:
                response.content_length = None
        elif lower == b"content-encoding":
            response.content_encoding = value.decode("latin-1")
        elif lower == b"transfer-encoding":
            response.framed = True

    def on_headers_complete(self) -> None:
        response = self.response
        assert response is not None
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            response.raw_headers = []  # informational: the real answer follows
            response.content_type = response.content_encoding = None
            response.content_length = None
            response.framed = False
            return
        if not 100 <= status <= 599:
            raise UpstreamBroken(f"the worker answered status {status}, outside 100-599")
        response.status = status
        if not self.parser.should_keep_alive() or status == 101:
            self.reusable = False
            self.closes_after = True
        if response.content_length is not None or status in NO_BODY_STATUSES or self.head_method:
            response.framed = True
        self.state = ConnState.BODY
        if self.head_method:
            # The parser cannot know a HEAD answer has no body; the connection cannot be
            # trusted with the next answer, so it is not reused.
            self.reusable = False
            self.state = ConnState.DONE
            response.end()
        waiter = self.head_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    def on_body(self, body: bytes) -> None:
        response = self.response
        if response is not None and response.status and not response.complete:
            response.feed(body)

    def on_message_complete(self) -> None:
        response = self.response
        if response is None or not response.status:
            return  # the end of a 1xx
        if not response.complete:
            if self.state is ConnState.BODY:
                self.state = ConnState.DONE
            response.end()
        self.disarm()

    # The exchange ----------------------------------------------------------------------------

    def send(self, head: bytes, body: RequestBody, chunked: bool, method_is_head: bool) -> None:
        assert self.transport is not None
        self.head_method = method_is_head
        self.state = ConnState.SENT
        self.response = None
        self.head_waiter = self.loop.create_future()
        if body is None:
            self.transport.write(head)
        elif isinstance(body, bytes):
            self.transport.write(head + body if len(body) < 65536 else head)
            if len(body) >= 65536:
                self.transport.write(body)
        else:
            self.transport.write(head)
            self.upload = self.loop.create_task(self._upload(body, chunked))

    async def _upload(self, body: AsyncIterator[bytes], chunked: bool) -> None:
        transport = self.transport
        assert transport is not None
        try:
            async for chunk in body:
                if self.closed:
                    return
                if chunked:
                    transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                else:
                    transport.write(chunk)
                if self.writing_paused:
                    self.write_ready = self.loop.create_future()
                    await self.write_ready
            if chunked and not self.closed:
                transport.write(b"0\r\n\r\n")
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the body stream stopped: the exchange is over
            self.fail(exc)
            self.close()

    def arm(self, seconds: float | None) -> None:
        self.disarm()
        if seconds is not None:
            self.timer = self.loop.call_later(seconds, self._timed_out)

    def disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _timed_out(self) -> None:
        self.timer = None
        self.fail(TimeoutError("the worker did not answer in time"))
        self.close()

    def fail(self, error: BaseException) -> None:
        self.reusable = False
        waiter = self.head_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        elif self.response is not None:
            self.response.fail(error)

    def pause(self) -> None:
        if not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused and self.transport is not None and not self.closed:
            self.paused = False
            self.transport.resume_reading()

    def release(self, response: UpstreamResponse) -> None:
        self.disarm()
        if self.response is not response:
            return
        upload = self.upload
        if upload is not None and not upload.done():
            upload.cancel()
            self.reusable = False
        self.upload = None
        if (
            not response.complete
            or not self.reusable
            or self.state is ConnState.CLOSED
            or response.has_unread
        ):
            self.close()
            self.pool.forget(self)
            if self.closes_after:
                # Now, not when the answer's head came: opening it then had the worker
                # accept a connection while it was still answering on this one.
                self.pool.prewarm(self.origin)
            return
        self.response = None
        self.head_waiter = None
        self.state = ConnState.IDLE
        self.pool.give_back(self)

    def close(self) -> None:
        self.reusable = False
        if not self.closed:
            self.state = ConnState.CLOSED
            if self.transport is not None:
                self.transport.abort()


class UpstreamPool:
    """Keep-alive connections to the workers, shared by every request of one serve.

    Call inside the running event loop; :meth:`close` at shutdown.
    """

    def __init__(
        self,
        *,
        keepalive_timeout_s: float = KEEPALIVE_TIMEOUT_S,
        max_connections: int = MAX_CONNECTIONS,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.keepalive_timeout_s = keepalive_timeout_s
        self.max_connections = max_connections
        self._ssl = ssl_context
        self._origins: dict[str, Origin] = {}
        self._idle_conns: dict[Origin, list[_Connection]] = {}
        self._open: set[_Connection] = set()
        self._slot_waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._spares: dict[Origin, asyncio.Task[None]] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self.closed = False

    def origin(self, base: str) -> Origin:
        """The parsed origin of an upstream base URL (cached)."""
        origin = self._origins.get(base)
        if origin is None:
            origin = self._origins[base] = Origin.parse(base)
        return origin

    async def request(
        self,
        base: str,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: RequestBody = None,
        *,
        timeout_s: float | None = None,
    ) -> UpstreamResponse:
        """Send one request to ``base`` + ``target`` and wait for the answer's head.

        ``headers`` go as given (the client's, already filtered): ``Host`` is the worker's, a
        bytes body gets a ``Content-Length`` if it has none, a stream without one is sent
        chunked. The timeout covers connecting and the answer's head, and stays armed for the
        body until :meth:`UpstreamResponse.set_timeout` changes it or the body ends.
        """
        if self.closed:
            raise RuntimeError("the upstream pool is closed")
        origin = self.origin(base)
        lines = [
            b"%s %s%s HTTP/1.1\r\nHost: %s\r\n"
            % (
                method.encode("latin-1"),
                origin.path.encode("latin-1"),
                target.encode("latin-1"),
                origin.host_header,
            )
        ]
        has_length = False
        chunked = False
        for name, value in headers:
            lines.append(b"%s: %s\r\n" % (name.encode("latin-1"), value.encode("latin-1")))
            if not has_length and name.lower() == "content-length":
                has_length = True
        if not has_length:
            if isinstance(body, bytes):
                lines.append(b"Content-Length: %d\r\n" % len(body))
            elif body is not None:
                lines.append(b"Transfer-Encoding: chunked\r\n")
                chunked = True
            elif method not in _BODYLESS_METHODS:
                lines.append(b"Content-Length: 0\r\n")
        lines.append(b"\r\n")
        head = b"".join(lines)
        is_head = method == "HEAD"
        retry = method in IDEMPOTENT_METHODS and not (
            body is not None and not isinstance(body, bytes)
        )
        deadline = None if timeout_s is None else self.loop.time() + timeout_s
        fresh = False
        while True:
            conn = await self._connection(origin, deadline, fresh=fresh)
            conn.arm(None if deadline is None else max(0.0, deadline - self.loop.time()))
            conn.send(head, body, chunked, is_head)
            waiter = conn.head_waiter
            assert waiter is not None
            try:
                return await waiter
            except _RetryOnFresh:
                conn.disarm()
                if not retry:
                    raise UpstreamBroken("the worker closed the connection") from None
                retry, fresh = False, True  # once, and on a new connection
            except BaseException:
                conn.disarm()
                conn.close()
                self.forget(conn)
                raise

    async def _connection(
        self, origin: Origin, deadline: float | None, *, fresh: bool = False
    ) -> _Connection:
        # (Rarely any spare: the dict is checked before the origin is hashed.)
        spare = None if fresh or not self._spares else self._spares.get(origin)
        if spare is not None and not self._idle_conns.get(origin):
            # A connection is being opened ahead for this worker: it is at least as close to
            # ready as a new one would be. It lands in the idle list.
            with contextlib.suppress(Exception):
                await _until(asyncio.shield(spare), deadline, self.loop)
        idle = None if fresh else self._idle_conns.get(origin)
        if idle:
            cutoff = time.monotonic() - self.keepalive_timeout_s
            while idle:
                conn = idle.pop()
                if conn.state is ConnState.CLOSED or conn.idle_since < cutoff:
                    conn.close()
                    self.forget(conn)
                    continue
                conn.reused = True
                return conn
        while len(self._open) >= self.max_connections:
            slot = self.loop.create_future()
            self._slot_waiters.append(slot)
            try:
                await _until(slot, deadline, self.loop)
            finally:
                if slot in self._slot_waiters:
                    self._slot_waiters.remove(slot)
            return await self._connection(origin, deadline, fresh=fresh)
        conn = _Connection(self, origin)
        self._open.add(conn)
        try:
            await _until(
                self.loop.create_connection(
                    lambda: conn,
                    origin.host,
                    origin.port,
                    ssl=self._tls_context() if origin.tls else None,
                    server_hostname=origin.host if origin.tls else None,
                ),
                deadline,
                self.loop,
            )
        except (OSError, ssl.SSLError) as exc:
            self.forget(conn)
            if isinstance(exc, OSError) and exc.errno in _LOCAL_EXHAUSTION:
                raise UpstreamOverloaded(f"cannot open a connection: {exc}") from exc
            raise UpstreamConnectError(
                f"cannot connect to {origin.host}:{origin.port}: {exc}"
            ) from exc
        except BaseException:
            self.forget(conn)
            raise
        return conn

    def _tls_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    def prewarm(self, origin: Origin) -> None:
        """Open a connection to ``origin`` ahead of the next request, if none is idle.

        For a worker that closes its connection after each answer (HTTP/1.0, or
        ``Connection: close``), so the next request does not wait for a connect: called as
        soon as such an answer is released.
        """
        if (
            self.closed
            or origin in self._spares
            or self._idle_conns.get(origin)
            or len(self._open) >= self.max_connections
        ):
            return
        self._spares[origin] = self.loop.create_task(self._open_spare(origin))

    async def _open_spare(self, origin: Origin) -> None:
        conn = _Connection(self, origin)
        self._open.add(conn)
        try:
            async with asyncio.timeout(SPARE_CONNECT_TIMEOUT_S):
                await self.loop.create_connection(
                    lambda: conn,
                    origin.host,
                    origin.port,
                    ssl=self._tls_context() if origin.tls else None,
                    server_hostname=origin.host if origin.tls else None,
                )
        except (OSError, ssl.SSLError, TimeoutError):
            self.forget(conn)
            return
        except BaseException:
            self.forget(conn)
            raise
        finally:
            self._spares.pop(origin, None)
        # Never used, but the worker may close it before it is: a close then is retried
        # like one under a pooled connection.
        conn.reused = True
        self.give_back(conn)

    def give_back(self, conn: _Connection) -> None:
        if self.closed:
            conn.close()
            self.forget(conn)
            return
        conn.idle_since = time.monotonic()
        self._idle_conns.setdefault(conn.origin, []).append(conn)
        if self._sweeper is None:
            self._sweeper = self.loop.call_later(IDLE_SWEEP_S, self._sweep)
        self._wake_one()

    def _sweep(self) -> None:
        """Close the connections idle longer than the keep-alive timeout; again while any
        are idle. One timer for the pool: a timer a connection would cost every request."""
        self._sweeper = None
        if self.closed:
            return
        cutoff = time.monotonic() - self.keepalive_timeout_s
        waiting = False
        for idle in list(self._idle_conns.values()):
            # Oldest first: connections go back at the end and are reused from the end.
            while idle and (idle[0].idle_since < cutoff or idle[0].state is ConnState.CLOSED):
                conn = idle.pop(0)
                conn.close()
                self.forget(conn)
            waiting = waiting or bool(idle)
        if waiting:
            self._sweeper = self.loop.call_later(IDLE_SWEEP_S, self._sweep)

    def forget(self, conn: _Connection) -> None:
        if conn in self._open:
            self._open.discard(conn)
            idle = self._idle_conns.get(conn.origin)
            if idle and conn in idle:
                idle.remove(conn)
            self._wake_one()

    def _wake_one(self) -> None:
        while self._slot_waiters:
            slot = self._slot_waiters.popleft()
            if not slot.done():
                slot.set_result(None)
                return

    def open_connections(self) -> int:
        """How many connections are open (in use or idle)."""
        return len(self._open)

    async def close(self) -> None:
        """Close every connection; the pool takes no more requests."""
        self.closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for spare in list(self._spares.values()):
            spare.cancel()
        for conn in list(self._open):
            conn.close()
        self._open.clear()
        self._idle_conns.clear()
        await asyncio.sleep(0)


async def _until(awaitable: Any, deadline: float | None, loop: asyncio.AbstractEventLoop) -> Any:
    if deadline is None:
        return await awaitable
    async with asyncio.timeout_at(deadline):
        return await awaitable


def new_pool() -> UpstreamPool:
    """A new upstream pool; call inside the running event loop, close at shutdown."""
    return UpstreamPool()


PoolFactory = Callable[[], UpstreamPool]
