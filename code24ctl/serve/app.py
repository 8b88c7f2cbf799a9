"""The dispatcher as a raw ASGI application (no framework in between: Starlette in front
measured 15-32% slower when this design was chosen).

Every rule comes from :mod:`code24ctl.dispatch.routing`; this module only moves bytes: it
streams the request body to the worker and the worker's body back, buffering no more than the
JSON-or-not decision needs, and turns every failure into a JSON answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from code24ctl.dispatch.answers import Reason
from code24ctl.dispatch.route_table import Route, RouteTable, match_route
from code24ctl.dispatch.routing import (
    body_too_large,
    choose_request_id,
    forward_request_headers,
    forwarded_target,
    is_bad_path,
    split_target,
)
from code24ctl.serve.access_log import AccessLog
from code24ctl.serve.exchange import (
    Exchange,
    Receive,
    Scope,
    Send,
    UploadState,
    UploadStopped,
    abort_connection,
    judge_upstream,
    read_request_body,
)
from code24ctl.serve.http.protocol import (
    ANSWERED_SCOPE_KEY,
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
from code24ctl.serve.metrics import DispatchMetrics

# Request headers that belong to the hop between client and serve, beyond the hop-by-hop set:
# the worker gets its own Host (the upstream's), and serve already answered any 100-continue.
_TRANSPORT_REQUEST_HEADERS = frozenset({"host", "expect"})
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
        exchange = Exchange(scope, send, self.settings)
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
                await abort_connection(scope)
        finally:
            exchange.flush()
            if (self.metrics is not None or self._access_log is not None) and not scope.get(
                ANSWERED_SCOPE_KEY  # else the protocol answered and counted it
            ):
                self._record(exchange)

    def _record(self, exchange: Exchange) -> None:
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

    async def _dispatch(self, exchange: Exchange, receive: Receive) -> None:
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

        upload = UploadState()
        data = await read_request_body(
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
                judgement, body, complete = await judge_upstream(
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
            except (UpstreamBroken, OSError, UploadStopped):
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


def _read_head(exchange: Exchange) -> _Head:
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


def _unforwardable(exchange: Exchange, head: _Head) -> str | None:
    """What serve never forwards, whatever the route: CONNECT and TRACE, and an HTTP/1.1
    request without exactly one Host (RFC 9112 section 3.2). The refusal's code, or None."""
    if exchange.scope["method"] in _REFUSED_METHODS:
        return "method_not_allowed"
    if head.hosts != 1 and exchange.scope.get("http_version", "1.1") == "1.1":
        return "bad_host"
    return None


def _route(exchange: Exchange, head: _Head) -> Route | Reason:
    """D2's path check first, then D1 (the order of docs/dispatch.md): the route, or the
    reason to refuse."""
    if is_bad_path(head.target):
        return "bad_path"
    route = match_route(exchange.settings.table.index, head.path)
    if route is None:
        return "route_not_found"
    exchange.route_prefix = route.prefix or "/"
    return route


def target_path(scope: Scope) -> str:
    """The raw path of a request for logs (no query string: it may carry secrets)."""
    raw = scope.get(TARGET_SCOPE_KEY) or scope.get("raw_path") or b""
    text: str = raw.decode("latin-1")
    return split_target(text)[0]
