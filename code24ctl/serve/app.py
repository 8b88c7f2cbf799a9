"""The dispatcher as a raw ASGI application (no framework in between: Starlette in front
measured 15-32% slower when this design was chosen).

Every rule comes from :mod:`code24ctl.dispatch.routing`; this module only moves bytes: it
streams the request body to the worker and the worker's body back, buffering no more than the
JSON-or-not decision needs, and turns every failure into a JSON answer.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from code24ctl.dispatch.routing import (
    Judgement,
    Reason,
    Route,
    RouteTable,
    WorkerPolicy,
    body_too_large,
    bytes_to_judge,
    choose_request_id,
    dispatch_headers,
    fallback_answer,
    forward_request_headers,
    forward_response_headers,
    forwarded_target,
    is_bad_path,
    judge_answer,
    match_route,
    new_request_id,
    refusal_answer,
    refusal_headers,
    split_target,
)
from code24ctl.serve.access_log import AccessLog
from code24ctl.serve.http.protocol import (
    ABORT_SCOPE_KEY,
    ANSWERED_SCOPE_KEY,
    FLUSH_SCOPE_KEY,
    GONE_SCOPE_KEY,
    HOLD_SCOPE_KEY,
    ON_GONE_SCOPE_KEY,
    TARGET_SCOPE_KEY,
)
from code24ctl.serve.http.upstream import (
    UpstreamBroken,
    UpstreamConnectError,
    UpstreamOverloaded,
    UpstreamPool,
    UpstreamResponse,
)
from code24ctl.serve.limits import refusal_envelope
from code24ctl.serve.metrics import DispatchMetrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Request headers that belong to the hop between client and serve, beyond the hop-by-hop set:
# the worker gets its own Host (the upstream's), and serve already answered any 100-continue.
_TRANSPORT_REQUEST_HEADERS = frozenset({"host", "expect"})
# uvicorn writes its own Date; a worker's would be a duplicate.
_TRANSPORT_RESPONSE_HEADERS = frozenset({"date"})
_DEFAULT_POLICY = WorkerPolicy()
# RFC 9110 section 9.3.6/9.3.8: a tunnel and a loop-back are not a JSON API's to forward.
_REFUSED_METHODS = frozenset({"CONNECT", "TRACE"})


@dataclass(frozen=True)
class ServeSettings:
    """What one serve instance dispatches: the route table, the environment name it reports
    in ``X-Code24-Environment``, and the upstream base URL of each worker alias (an alias
    without one is "not in the namespace")."""

    table: RouteTable
    environment: str
    upstreams: Mapping[str, str]
    # The port the environment's base_url names (a reload that changes it cannot move serve).
    base_port: int | None = None


class _UploadState:
    """What happened to the request body while it streamed to the worker."""

    __slots__ = ("client_gone", "too_large")

    def __init__(self) -> None:
        self.too_large = False
        self.client_gone = False


class _UploadStopped(Exception):
    """Raised inside the body stream to abort the upload (too large, client gone)."""


class DispatchApp:
    """The ASGI application behind ``code24ctl serve``.

    ``pool_factory`` builds the one shared upstream pool (see
    :func:`code24ctl.serve.http.upstream.new_pool`); it is called at lifespan startup and the
    pool is closed at shutdown. ``settings`` may be replaced between requests.
    """

    def __init__(
        self,
        settings: ServeSettings,
        *,
        pool_factory: Callable[[], UpstreamPool],
        access_log: AccessLog | None = None,
        metrics: DispatchMetrics | None = None,
    ) -> None:
        self.settings = settings
        self._pool_factory = pool_factory
        # An "off" log writes nothing: not even its line's fields are worked out per request.
        self._access_log = access_log if access_log is None or access_log.form != "off" else None
        # serve's own notes go to the log's stream whatever its form (even "off").
        self._notes = access_log
        self._refused_noted: set[str] = set()
        self.metrics = metrics
        self.pool: UpstreamPool | None = None

    def _note_refused(self, alias: str, base: str) -> None:
        """Once per worker: the client gets worker_not_found (the dispatcher's contract), the
        operator gets the local cause, the upstream that refused and the key that names it."""
        if self._notes is None or alias in self._refused_noted:
            return
        self._refused_noted.add(alias)
        self._notes.message(
            f"warning: upstream {alias} at {base} refused the connection (is it running?); "
            f"answered worker_not_found. Start it, or fix environments."
            f"{self.settings.environment}.upstreams.{alias}"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    # --------------------------------------------------------------------------------------
    # Lifespan: the pool lives exactly as long as the server

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.start()
                except Exception as exc:  # reported by uvicorn, which then exits
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def start(self) -> None:
        """Create the shared upstream pool (idempotent)."""
        if self.pool is None:
            self.pool = self._pool_factory()

    async def close(self) -> None:
        """Close the shared upstream pool."""
        if self.pool is not None:
            pool, self.pool = self.pool, None
            await pool.close()

    # --------------------------------------------------------------------------------------
    # One request, in named steps: read the head, refuse what serve never forwards, route,
    # take the body, forward, judge, answer. Each step either answers (and the request is
    # done) or hands on what the next one needs.

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = _Exchange(scope, send, self.settings)
        try:
            await self._dispatch(exchange, receive)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The catch-all: nothing may escape as anything but JSON.
            if not exchange.response_started:
                await exchange.refuse("internal_error", None)
            else:
                exchange.reason = "internal_error"
                await _abort(scope)
        finally:
            exchange.flush()
            if (self.metrics is not None or self._access_log is not None) and not scope.get(
                ANSWERED_SCOPE_KEY  # else the protocol answered and counted it
            ):
                self._record(exchange)

    def _record(self, exchange: _Exchange) -> None:
        elapsed_ms = exchange.elapsed_ms()
        if self.metrics is not None:
            self.metrics.record(
                exchange.worker,
                exchange.route_prefix,
                exchange.status,
                exchange.reason,
                elapsed_ms / 1000,
            )
        if self._access_log is not None:
            scope = exchange.scope
            self._access_log.record(
                method=scope["method"],
                path=target_path(scope),
                worker=exchange.worker,
                status=exchange.status,
                reason=exchange.reason,
                ms=elapsed_ms,
                request_id=exchange.request_id,
            )

    def protocol_refused(self, code: str, status: int) -> None:
        """Count an answer serve's protocol gave by itself (a limit, invalid HTTP)."""
        if self.metrics is not None:
            self.metrics.record(None, None, status, code, 0.0)

    async def _dispatch(self, exchange: _Exchange, receive: Receive) -> None:
        # The steps before the body are plain functions (a coroutine each would cost a frame
        # on every request); they name what to refuse, and the refusal is awaited here.
        head = _read_head(exchange)
        refusal = _unforwardable(exchange, head)
        if refusal is not None:
            await exchange.refuse_own(refusal, None)
            return
        route = _route(exchange, head)
        if not isinstance(route, Route):
            await exchange.refuse(route, None)
            return
        alias = exchange.worker = route.worker
        table = exchange.settings.table
        if body_too_large(head.content_length, table.max_body_bytes):
            await exchange.refuse("payload_too_large", alias)
            return
        exchange.policy = table.policy(alias)
        base = exchange.settings.upstreams.get(alias)
        pool = self.pool
        if base is None:
            await exchange.fall_back("worker_not_found")
            return
        if pool is None:
            raise RuntimeError("serve's upstream pool is not started")

        upload = _UploadState()
        data = await _request_body(
            receive, head.content_length, head.chunked, table.max_body_bytes, upload
        )
        if upload.too_large:
            await exchange.refuse("payload_too_large", alias)
            return
        if upload.client_gone or exchange.client_gone():
            # Nothing is forwarded for a client that is gone (or whose body was refused).
            exchange.status, exchange.reason = 499, "client_closed"
            return

        # Forward: in this coroutine, not one more per request.
        forwarded = [
            (name, value)
            for name, value in forward_request_headers(head.headers, exchange.request_id)
            if name not in _TRANSPORT_REQUEST_HEADERS
            and not (head.chunked and name == "content-length")
        ]
        target = forwarded_target(route, head.path, head.query)
        method = exchange.scope["method"]
        timeout_s = exchange.policy.timeout_ms / 1000
        response: UpstreamResponse | None = None
        scope = exchange.scope
        task = asyncio.current_task(pool.loop)  # with the loop: no running-loop lookup
        left: list[bool] = []

        def client_left() -> None:
            # The client went while the worker was answering: stop waiting, so a flood of
            # clients that leave cannot hold the pool's connections for the worker timeout.
            left.append(True)
            if task is not None:
                task.cancel()

        scope[ON_GONE_SCOPE_KEY] = client_left
        try:
            try:
                response = await pool.request(
                    base, method, target, forwarded, data, timeout_s=timeout_s
                )
                exchange.upstream_status = response.status
                judgement, body, complete = await _judge(
                    response, method, table.max_json_check_bytes
                )
                response.set_timeout(None)  # from here on, the idle timeout per piece
            except asyncio.CancelledError:
                if not left or task is None:
                    raise
                task.uncancel()
                exchange.status, exchange.reason = 499, "client_closed"
                return
            except TimeoutError:
                exchange.upstream_status = None  # it never finished answering
                await exchange.fall_back("worker_timeout")
                return
            except UpstreamOverloaded:
                # serve itself is out of sockets: not the worker's fault.
                await exchange.refuse_own("over_capacity", alias)
                return
            except UpstreamConnectError:
                self._note_refused(alias, base)
                await exchange.fall_back("worker_not_found")
                return
            except (UpstreamBroken, OSError, _UploadStopped):
                if upload.too_large:
                    await exchange.refuse("payload_too_large", alias)
                elif upload.client_gone:
                    exchange.status, exchange.reason = 499, "client_closed"
                else:
                    exchange.upstream_status = None
                    await exchange.fall_back("worker_error")
                return
            finally:
                scope.pop(ON_GONE_SCOPE_KEY, None)
            if left:  # it left just as the answer came: there is nobody to answer
                exchange.status, exchange.reason = 499, "client_closed"
                return
            if judgement.reason is not None:
                await exchange.fall_back(judgement.reason)
                return
            await exchange.pass_through(response, body, complete, idle_timeout_s=timeout_s)
        finally:
            if response is not None:
                response.release()


@dataclass(slots=True)
class _Head:
    """What the request's head says, read once."""

    target: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    content_length: str | None
    chunked: bool
    hosts: int


def _read_head(exchange: _Exchange) -> _Head:
    scope = exchange.scope
    raw_target = scope.get(TARGET_SCOPE_KEY)
    if raw_target is None:  # another ASGI server: rebuild the target
        raw_target = scope["raw_path"]
        if scope.get("query_string"):
            raw_target += b"?" + scope["query_string"]
    target: str = raw_target.decode("latin-1")
    headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in scope["headers"]]
    client_id = content_length = None
    chunked = False
    hosts = 0
    for name, value in headers:  # uvicorn lowercases names
        if name == "x-request-id":
            client_id = value
        elif name == "content-length":
            content_length = value
        elif name == "transfer-encoding":
            chunked = True
        elif name == "host":
            hosts += 1
    exchange.request_id = choose_request_id(client_id)
    path, query = split_target(target)
    return _Head(target, path, query, headers, content_length, chunked, hosts)


def _unforwardable(exchange: _Exchange, head: _Head) -> str | None:
    """What serve never forwards, whatever the route: CONNECT and TRACE, and an HTTP/1.1
    request without exactly one Host (RFC 9112 section 3.2). The refusal's code, or None."""
    if exchange.scope["method"] in _REFUSED_METHODS:
        return "method_not_allowed"
    if head.hosts != 1 and exchange.scope.get("http_version", "1.1") == "1.1":
        return "bad_host"
    return None


def _route(exchange: _Exchange, head: _Head) -> Route | Reason:
    """D2's path check first, then D1 (the order of docs/dispatch.md): the route, or the
    reason to refuse."""
    if is_bad_path(head.target):
        return "bad_path"
    route = match_route(exchange.settings.table.index, head.path)
    if route is None:
        return "route_not_found"
    exchange.route_prefix = route.prefix or "/"
    return route


class _Exchange:
    """One request on its way through: what is known so far, and how to answer."""

    __slots__ = (
        "policy",
        "reason",
        "request_id",
        "response_started",
        "route_prefix",
        "scope",
        "send",
        "settings",
        "started",
        "status",
        "upstream_status",
        "worker",
    )

    def __init__(self, scope: Scope, send: Send, settings: ServeSettings) -> None:
        self.started = time.perf_counter()
        self.scope = scope
        self.send = send
        self.settings = settings
        self.request_id = ""
        self.worker: str | None = None
        self.route_prefix: str | None = None
        self.policy = _DEFAULT_POLICY
        self.upstream_status: int | None = None
        self.response_started = False
        self.status = 0
        self.reason: str | None = None

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    async def start(self, status: int, headers: list[tuple[str, str]], length: int | None) -> None:
        """Send the head; under serve's own protocol it waits for :meth:`flush` (or the whole
        body) so head and body leave the process in one write."""
        self.response_started = True
        self.status = status
        encoded = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers]
        if length is not None:
            encoded.append((b"content-length", str(length).encode("ascii")))
        hold = self.scope.get(HOLD_SCOPE_KEY)
        if hold is not None:
            hold()
        await self.send({"type": "http.response.start", "status": status, "headers": encoded})

    def flush(self) -> None:
        """Let what was held go out (a no-op when nothing is held)."""
        flush = self.scope.get(FLUSH_SCOPE_KEY)
        if flush is not None:
            flush()

    async def whole_body(self, body: bytes) -> None:
        await self.send({"type": "http.response.body", "body": body})
        self.flush()

    async def refuse(self, reason: Reason, worker: str | None) -> None:
        """An answer made without the worker: 400, 404, 413, 500."""
        self.reason = reason
        self.request_id = self.request_id or new_request_id()
        status, body = refusal_answer(reason, worker, self.request_id)
        await self.start(
            status, refusal_headers(self.settings.environment, self.request_id), len(body)
        )
        await self.whole_body(body)

    async def refuse_own(self, code: str, worker: str | None) -> None:
        """One of serve's own refusals (code24ctl.serve.limits.SERVE_REFUSALS)."""
        self.reason = code
        self.request_id = self.request_id or new_request_id()
        status, body = refusal_envelope(code, worker, self.request_id)
        await self.start(
            status, refusal_headers(self.settings.environment, self.request_id), len(body)
        )
        await self.whole_body(body)

    def client_gone(self) -> bool:
        """Whether the client's connection is closed or closing."""
        gone = self.scope.get(GONE_SCOPE_KEY)
        return bool(gone is not None and gone())

    def _meta(self, reason: Reason | None) -> list[tuple[str, str]]:
        assert self.worker is not None
        return dispatch_headers(
            worker=self.worker,
            environment=self.settings.environment,
            request_id=self.request_id,
            fallback_reason=reason,
            upstream_status=self.upstream_status,
            dispatch_ms=self.elapsed_ms(),
        )

    async def fall_back(self, reason: Reason) -> None:
        """The worker's fallback (or the envelope) instead of its answer."""
        assert self.worker is not None
        self.reason = reason
        status, body = fallback_answer(self.policy, reason, self.worker, self.request_id)
        await self.start(
            status, [("Content-Type", "application/json"), *self._meta(reason)], len(body)
        )
        await self.whole_body(body)

    async def pass_through(
        self,
        response: UpstreamResponse,
        body: bytes,
        complete: bool,
        *,
        idle_timeout_s: float,
    ) -> None:
        """The worker's answer as it is: status, headers (minus hop-by-hop and X-Code24-*),
        the bytes already read, then the rest as it comes."""
        raw = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in response.raw_headers]
        kept = [
            (name, value)
            for name, value in forward_response_headers(raw)
            if name.lower() not in _TRANSPORT_RESPONSE_HEADERS
            and not (complete and name.lower() == "content-length")
        ]
        kept += self._meta(None)
        if complete:
            # The whole body is in hand: its length is known whatever framing the worker used.
            await self.start(response.status, kept, len(body))
            await self.whole_body(body)
            return
        await self.start(response.status, kept, None)
        send = self.send
        try:
            if body:
                await send({"type": "http.response.body", "body": body, "more_body": True})
            self.flush()  # the head (and first bytes) go out before waiting for the rest
            while True:
                response.set_timeout(idle_timeout_s)
                chunk = await response.read_chunk()
                if not chunk:
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except Exception:
            # The status line is gone already; the only honest signal left is a cut connection.
            self.reason = "upstream_broke_mid_body"
            await _abort(self.scope)
            return
        await send({"type": "http.response.body", "body": b""})


async def _request_body(
    receive: Receive,
    content_length: str | None,
    chunked: bool,
    max_body_bytes: int,
    upload: _UploadState,
) -> bytes | AsyncIterator[bytes] | None:
    """The request body to forward: None (none), bytes (in hand whole) or a stream.

    A body without a declared length (chunked) is read whole, up to the limit, before anything
    is forwarded, as the JS dispatcher does: so one over the limit, broken or abandoned never
    reaches the worker, even one that would answer before reading it. A declared length was
    checked against the limit already and streams through.
    """
    if not chunked and (content_length is None or content_length.strip() == "0"):
        return None
    message = await receive()
    if message["type"] == "http.disconnect":
        upload.client_gone = True
        return None
    first: bytes = message.get("body", b"")
    if len(first) > max_body_bytes:
        upload.too_large = True
        return None
    if chunked:
        parts = [first]
        size = len(first)
        while message.get("more_body", False):
            message = await receive()
            if message["type"] == "http.disconnect":
                upload.client_gone = True
                return None
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > max_body_bytes:
                upload.too_large = True
                return None
            parts.append(chunk)
        return b"".join(parts)
    if not message.get("more_body", False):
        return first

    async def stream() -> AsyncIterator[bytes]:
        size = len(first)
        if first:
            yield first
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                upload.client_gone = True
                raise _UploadStopped("the client went away")
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > max_body_bytes:
                upload.too_large = True
                raise _UploadStopped("the body is over the limit")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return

    return stream()


async def _judge(
    response: UpstreamResponse, method: str, max_json_check_bytes: int
) -> tuple[Judgement, bytes, bool]:
    """Read as much of the answer as the decision needs and decide.

    Returns the judgement, the bytes read (sent first on a pass-through) and whether they are
    the whole body.
    """
    status = response.status
    content_type = response.content_type
    declared = response.content_length
    need = bytes_to_judge(
        status, content_type, declared, method=method, max_json_check_bytes=max_json_check_bytes
    )
    if need is None:
        return judge_answer(status, content_type, b"", complete=False, method=method), b"", False
    if need == 0:
        return judge_answer(status, content_type, b"", complete=False, method=method), b"", False
    body, complete = await response.read_up_to(need)
    encoding = (response.content_encoding or "").strip().lower()
    checked = body
    if encoding not in ("", "identity"):
        decoded = _decode_for_check(body, encoding, need)
        if decoded is None:
            # Cannot look inside (unknown coding, or it decodes past the check limit): a JSON
            # answer passes unchecked like a large one; anything else falls back anyway.
            return (
                judge_answer(status, content_type, b"", complete=False, method=method),
                body,
                complete,
            )
        checked = decoded
    judgement = judge_answer(status, content_type, checked, complete=complete, method=method)
    return judgement, body, complete


def _decode_for_check(body: bytes, encoding: str, limit: int) -> bytes | None:
    """Decompress gzip/deflate content for the JSON check (bounded); None if not possible."""
    if encoding in ("gzip", "x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif encoding == "deflate":
        wbits = zlib.MAX_WBITS
    else:
        return None
    try:
        decoder = zlib.decompressobj(wbits)
        out = decoder.decompress(body, limit + 1)
    except zlib.error:
        return b"\x00"  # corrupt: checks as not JSON
    if len(out) > limit:
        return None
    return out


async def _abort(scope: Scope) -> None:
    abort = scope.get(ABORT_SCOPE_KEY)
    if abort is not None:
        abort()
        # Let the server see the connection go before the app returns.
        await asyncio.sleep(0)
        await asyncio.sleep(0)


def target_path(scope: Scope) -> str:
    """The raw path of a request for logs (no query string: it may carry secrets)."""
    raw = scope.get(TARGET_SCOPE_KEY) or scope.get("raw_path") or b""
    text: str = raw.decode("latin-1")
    return split_target(text)[0]
