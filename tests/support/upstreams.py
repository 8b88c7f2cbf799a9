"""Real HTTP workers on 127.0.0.1 that behave as the conformance corpus says (Python side).

One raw asyncio + httptools server, listening on one port per alias; what each alias does is
set per case with :meth:`BehaviourServers.set` (a behaviour dict as in cases.yaml:
``{"behaviour": "echo"}``, ``{"behaviour": "raw", "status": 404, "body": "..."}``...). Raw
asyncio rather than a framework, because the corpus needs answers a framework will not give
(no Content-Type at all) and a worker that dies mid-request (``throw``: the connection is
reset, nothing is answered).

Behaviours beyond the corpus, for tests/cli/test_serve.py and the benchmark:
``digest`` answers ``{"sha256", "length"}`` of the body received; ``stall`` never answers;
``chunks`` streams ``[[delay_ms, text], ...]`` chunked (optionally resetting the connection
after them: ``reset_after``); ``gzip`` answers ``body`` gzip-compressed.

:class:`ServeHarness` runs ``serve`` and these workers in one background event loop (uvloop);
:func:`send` talks to it through ``http.client``, which puts the request target on the wire
exactly as given (dot segments, absolute form, backslashes).

Also runnable, for the benchmark's worker: ``python -m tests.support.upstreams --port N
--behaviour '{"behaviour": "json", "json": {...}}'``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import hashlib
import http.client
import json
import socket
import struct
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, TypeVar

import httptools

from code24ctl.dispatch.classify import NO_BODY_STATUSES
from code24ctl.dispatch.route_table import RouteTable
from code24ctl.serve.access_log import AccessLog
from code24ctl.serve.app import ServeSettings
from code24ctl.serve.limits import ClientLimits
from code24ctl.serve.metrics import DispatchMetrics
from code24ctl.serve.server import RunningServe, bind_socket, running_serve

T = TypeVar("T")


@dataclass
class Received:
    """One request as a worker saw it."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes = b""

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""


@dataclass
class Reply:
    """What a worker sends back."""

    status: int
    content_type: str | None
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    # A streamed answer (chunked, no Content-Length): (delay before it in s, bytes) pieces,
    # then the end of the body, or a reset when ``reset_after``.
    chunks: list[tuple[float, bytes]] | None = None
    reset_after: bool = False


class ResetConnection(Exception):
    """The behaviour wants the connection reset without an answer."""


def _echo(request: Received) -> Reply:
    headers: dict[str, str] = {}
    for name, value in request.headers:
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    document = {
        "method": request.method,
        "path": request.path,
        "query": request.query,
        "headers": headers,
        "body": request.body.decode("utf-8", errors="replace"),
        "body_length": len(request.body),
    }
    return Reply(200, "application/json", json.dumps(document).encode())


async def answer_for(behaviour: Mapping[str, Any], request: Received) -> Reply:
    """What a worker with ``behaviour`` answers to ``request`` (``throw``: ResetConnection)."""
    kind = behaviour["behaviour"]
    if kind == "echo":
        return _echo(request)
    if kind == "json":
        body = json.dumps(behaviour.get("json")).encode()
        extra = list((behaviour.get("headers") or {}).items())
        content_type = behaviour.get("content_type", "application/json")
        return Reply(int(behaviour.get("status", 200)), content_type, body, extra)
    if kind == "raw":
        body = str(behaviour.get("body") or "").encode()
        return Reply(int(behaviour.get("status", 200)), behaviour.get("content_type"), body)
    if kind == "big_json":
        size = int(behaviour["bytes"])
        body = b'{"pad":"' + b"a" * (size - 10) + b'"}'
        return Reply(200, "application/json", body)
    if kind == "slow":
        await asyncio.sleep(int(behaviour["delay_ms"]) / 1000)
        return await answer_for(behaviour["then"], request)
    if kind == "throw":
        raise ResetConnection
    if kind == "over_limit":
        # A Worker over its CPU limit, reached over HTTP: Cloudflare's error 1102 in plain text.
        return Reply(503, "text/plain; charset=UTF-8", b"error code: 1102")
    if kind == "digest":
        document = {"sha256": hashlib.sha256(request.body).hexdigest(), "length": len(request.body)}
        return Reply(200, "application/json", json.dumps(document).encode())
    if kind == "chunks":
        pieces = [(float(delay_ms) / 1000, text.encode()) for delay_ms, text in behaviour["chunks"]]
        return Reply(
            int(behaviour.get("status", 200)),
            behaviour.get("content_type"),
            b"",
            list((behaviour.get("headers") or {}).items()),
            chunks=pieces,
            reset_after=bool(behaviour.get("reset_after", False)),
        )
    if kind == "gzip":
        body = gzip.compress(str(behaviour["body"]).encode())
        return Reply(200, behaviour.get("content_type"), body, [("Content-Encoding", "gzip")])
    if kind == "stall":
        await asyncio.Event().wait()
    raise ValueError(f"unknown behaviour {kind!r}")


def _encode(answer: Reply, head_only: bool) -> bytes:
    try:
        phrase = HTTPStatus(answer.status).phrase
    except ValueError:
        phrase = "Status"
    lines = [f"HTTP/1.1 {answer.status} {phrase}"]
    if answer.content_type is not None:
        lines.append(f"Content-Type: {answer.content_type}")
    lines += [f"{name}: {value}" for name, value in answer.headers]
    body = answer.body
    if answer.status in NO_BODY_STATUSES:
        body = b""
    else:
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
    return head if head_only else head + body


class _WorkerProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive, one request at a time, answering per the alias's behaviour."""

    def __init__(self, servers: BehaviourServers, alias: str) -> None:
        self.servers = servers
        self.alias = alias
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.queue: asyncio.Queue[Received | None] = asyncio.Queue()
        self.current: Received | None = None
        self.url = b""
        self._chunks: list[bytes] = []
        self.task: asyncio.Task[None] | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        self.task = asyncio.get_running_loop().create_task(self._serve())
        self.servers.connections.add(self)
        self.servers.tasks.add(self.task)
        self.task.add_done_callback(self.servers.tasks.discard)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.queue.put_nowait(None)
        self.servers.connections.discard(self)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.current = Received(method="", target="", headers=[])

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.current is not None
        self.current.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        assert self.current is not None
        self.current.method = self.parser.get_method().decode("ascii")
        self.current.target = self.url.decode("latin-1")
        self._chunks = []

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        assert self.current is not None
        self.current.body = b"".join(self._chunks)
        self.queue.put_nowait(self.current)

    async def _serve(self) -> None:
        while True:
            request = await self.queue.get()
            if request is None or self.transport is None or self.transport.is_closing():
                return
            try:
                answer = await self.servers.respond(self.alias, request)
            except ResetConnection:
                self._reset()
                return
            if self.transport.is_closing():
                return
            if answer.chunks is not None:
                if not await self._stream(answer):
                    return
                continue
            self.transport.write(_encode(answer, head_only=request.method == "HEAD"))

    async def _stream(self, answer: Reply) -> bool:
        """Send a chunked answer piece by piece; False when the connection is gone."""
        assert self.transport is not None and answer.chunks is not None
        head = [f"HTTP/1.1 {answer.status} {HTTPStatus(answer.status).phrase}"]
        if answer.content_type is not None:
            head.append(f"Content-Type: {answer.content_type}")
        head += [f"{name}: {value}" for name, value in answer.headers]
        head.append("Transfer-Encoding: chunked")
        self.transport.write(("\r\n".join(head) + "\r\n\r\n").encode())
        for delay, piece in answer.chunks:
            if delay:
                await asyncio.sleep(delay)
            if self.transport.is_closing():
                return False
            self.transport.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        if answer.reset_after:
            self._reset()
            return False
        self.transport.write(b"0\r\n\r\n")
        return True

    def _reset(self) -> None:
        """Fail like a crashed worker: RST, no answer."""
        if self.transport is None:
            return
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()


Responder = Callable[[str, Received], Awaitable[Reply]]


class BehaviourServers:
    """One listening port per alias on 127.0.0.1, all in the running event loop.

    Each alias answers as its corpus behaviour says (:meth:`set`), unless a ``responder``
    decides instead (``http_servers.LocalServer`` answers by path that way).
    """

    def __init__(self, *, record: bool = True, responder: Responder | None = None) -> None:
        self.record = record
        self.responder = responder
        self.behaviours: dict[str, dict[str, Any]] = {}
        self.urls: dict[str, str] = {}
        self.received: dict[str, list[Received]] = {}
        self.connections: set[_WorkerProtocol] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self._servers: list[asyncio.AbstractServer] = []

    async def add(self, alias: str, port: int = 0) -> str:
        """Listen for ``alias`` (on ``port``, default ephemeral); returns its base URL."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _WorkerProtocol(self, alias), "127.0.0.1", port, backlog=1024
        )
        self._servers.append(server)
        bound = server.sockets[0].getsockname()[1]
        self.urls[alias] = f"http://127.0.0.1:{bound}"
        return self.urls[alias]

    def set(self, behaviours: Mapping[str, Mapping[str, Any]]) -> None:
        """Replace every alias's behaviour (an alias left out resets connections)."""
        self.behaviours = {alias: dict(b) for alias, b in behaviours.items()}
        self.received.clear()

    async def respond(self, alias: str, request: Received) -> Reply:
        """What ``alias`` answers to ``request``; raises :class:`ResetConnection` to drop the
        connection without an answer (an alias without a behaviour does that)."""
        if self.responder is not None:
            return await self.responder(alias, request)
        if self.record:
            self.received.setdefault(alias, []).append(request)
        behaviour = self.behaviours.get(alias)
        if behaviour is None:
            raise ResetConnection
        return await answer_for(behaviour, request)

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        tasks = list(self.tasks)
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.abort()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1)
        self._servers.clear()


# --------------------------------------------------------------------------------------------
# serve + the workers in a background event loop, and a client that sends targets verbatim


class ServeHarness:
    """serve + behaviour workers on 127.0.0.1, in one event loop on a daemon thread.

    ``with_serve=False`` runs only the workers (for a serve started as a subprocess).
    """

    def __init__(
        self,
        aliases: Iterable[str],
        access_log: AccessLog | None = None,
        *,
        with_serve: bool = True,
        limits: ClientLimits | None = None,
        metrics: DispatchMetrics | None = None,
    ) -> None:
        import uvloop

        self.loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.workers = BehaviourServers()
        for alias in sorted(set(aliases)):
            self.run(self.workers.add(alias))
        self._stack_exit: Any = None
        self._serve: RunningServe | None = None
        if with_serve:
            empty = ServeSettings(RouteTable(routes=()), "test", {})
            self._serve = self.run(self._start(empty, access_log, limits, metrics))

    @property
    def serve(self) -> RunningServe:
        assert self._serve is not None, "this harness runs workers only"
        return self._serve

    async def _start(
        self,
        settings: ServeSettings,
        access_log: AccessLog | None,
        limits: ClientLimits | None,
        metrics: DispatchMetrics | None,
    ) -> RunningServe:
        context = running_serve(
            settings,
            bind_socket("127.0.0.1", 0),
            access_log=access_log,
            limits=limits,
            metrics=metrics,
        )
        serve = await context.__aenter__()
        self._stack_exit = context.__aexit__
        return serve

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run a coroutine in the harness loop and wait for its result."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout)

    @property
    def port(self) -> int:
        return self.serve.port

    def configure(
        self,
        table: Mapping[str, Any],
        environment: str,
        behaviours: Mapping[str, Mapping[str, Any]],
        upstreams: Mapping[str, str] | None = None,
    ) -> None:
        """Dispatch with ``table``; aliases in ``behaviours`` get an upstream (``upstreams``
        adds or overrides URLs, e.g. a refused port)."""
        self.workers.set(behaviours)
        urls = {alias: self.workers.urls[alias] for alias in behaviours}
        urls.update(upstreams or {})
        self.serve.app.settings = ServeSettings(RouteTable.from_document(table), environment, urls)

    def __enter__(self) -> ServeHarness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        async def shutdown() -> None:
            if self._stack_exit is not None:
                await self._stack_exit(None, None, None)
            await self.workers.close()

        self.run(shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


def send(
    port: int,
    method: str,
    target: str,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    *,
    chunked: bool = False,
    chunk_size: int = 65536,
    timeout: float = 15,
) -> dict[str, Any]:
    """One request on a fresh connection; the answer as the conformance checker wants it:
    ``{status, headers (lowercased, repeats joined with ", "), body (text), raw (bytes)}``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            for start in range(0, len(body), chunk_size):
                piece = body[start : start + chunk_size]
                conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            conn.send(b"0\r\n\r\n")
        else:
            if body or method in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body if body else None)
        response = conn.getresponse()
        raw = response.read()
        merged: dict[str, str] = {}
        for name, value in response.getheaders():
            key = name.lower()
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        return {
            "status": response.status,
            "headers": merged,
            "body": raw.decode("utf-8", errors="replace"),
            "raw": raw,
        }
    finally:
        conn.close()


async def _main(port: int, behaviour: dict[str, Any]) -> None:
    servers = BehaviourServers(record=False)
    await servers.add("worker", port)
    servers.set({"worker": behaviour})
    print(servers.urls["worker"], flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="a conformance behaviour as a standalone worker")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--behaviour", default='{"behaviour": "json", "json": {"ok": true}}')
    options = parser.parse_args()
    import uvloop

    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(_main(options.port, json.loads(options.behaviour)))
