"""Real HTTP servers on 127.0.0.1 that answer every kind of thing ``probe`` must classify.

A :class:`LocalServer` is a small HTTP/1.1 server (keep-alive, Content-Length bodies) running its
own asyncio loop in a background thread. Each path gets a behaviour: an :class:`Answer` (status,
content type, raw body bytes, extra headers, an optional delay), :class:`Reset` (read the
request, then drop the connection with a TCP RST) or a :class:`Cycle` of those. It records every
request it receives, so a test can check what was sent, not only what came back.

It is written on raw streams on purpose: the point is to answer exactly the bytes a broken worker
answers (HTML labelled ``text/plain``, a JSON content type over a body that does not parse, a
reset), which a framework would "helpfully" fix.

``refused_port()`` gives a port on which connections are refused (bound, never listening).

Run as a script it serves one answer on every path until killed, for the probe benchmark::

    python tests/support/http_servers.py --delay-ms 50    # prints "PORT <n>" once listening
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import struct
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Answer:
    """Answer with these exact bytes, after ``delay_s``."""

    status: int = 200
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    delay_s: float = 0.0


@dataclass(frozen=True)
class Reset:
    """Read the request, then reset the connection without answering."""


@dataclass
class Cycle:
    """Answer with each of ``answers`` in turn, starting over after the last."""

    answers: tuple[Answer | Reset, ...]
    _next: int = 0

    def take(self) -> Answer | Reset:
        answer = self.answers[self._next % len(self.answers)]
        self._next += 1
        return answer


Behaviour = Answer | Reset | Cycle


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as it arrived on the wire."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes


_REASONS = {200: "OK", 204: "No Content", 404: "Not Found", 500: "Internal Server Error"}
NOT_FOUND = Answer(404, b'{"error": "no such path on the test server"}')


@dataclass
class LocalServer:
    """An HTTP server on 127.0.0.1 with a fixed behaviour per path (query string ignored)."""

    behaviours: Mapping[str, Behaviour]
    default: Behaviour = NOT_FOUND
    # Picks the behaviour from the whole request when it returns one (headers, not only path).
    choose: Callable[[ReceivedRequest], Behaviour | None] | None = None
    requests: list[ReceivedRequest] = field(default_factory=list)
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _stopped: asyncio.Event | None = None
    _open: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LocalServer:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("test server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(10)

    def _run(self, ready: threading.Event) -> None:
        asyncio.run(self._main(ready))

    async def _main(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, backlog=1024)
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        async with server:
            await self._stopped.wait()
            server.close()
            # Kept-alive connections would hold wait_closed() forever.
            for writer in list(self._open):
                writer.transport.abort()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open.add(writer)
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            pass  # the server is stopping; a delayed answer is simply never sent
        finally:
            self._open.discard(writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                self.requests.append(request)
                chosen = self.choose(request) if self.choose is not None else None
                behaviour = chosen or self.behaviours.get(
                    request.target.split("?", 1)[0], self.default
                )
                if isinstance(behaviour, Cycle):
                    behaviour = behaviour.take()
                if isinstance(behaviour, Reset):
                    _reset(writer)
                    return
                if behaviour.delay_s:
                    await asyncio.sleep(behaviour.delay_s)
                writer.write(_encode(behaviour))
                await writer.drain()
        writer.close()


async def _read_request(reader: asyncio.StreamReader) -> ReceivedRequest | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None  # the client closed a kept-alive connection
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return ReceivedRequest(method, target, headers, body)


def _encode(answer: Answer) -> bytes:
    reason = _REASONS.get(answer.status, "Status")
    lines = [f"HTTP/1.1 {answer.status} {reason}"]
    if answer.content_type is not None:
        lines.append(f"Content-Type: {answer.content_type}")
    lines.extend(f"{name}: {value}" for name, value in answer.headers)
    lines.append(f"Content-Length: {len(answer.body)}")
    lines.append("Connection: keep-alive")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + answer.body


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections for as long as the context lasts."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))  # bound, so nobody else takes it; never listening
        yield sock.getsockname()[1]
    finally:
        sock.close()


def main(argv: list[str] | None = None) -> None:
    """Serve one JSON answer on every path (after ``--delay-ms``) until killed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    answer = Answer(200, b'{"ok": true}', delay_s=args.delay_ms / 1000)
    server = LocalServer({}, default=answer, port=args.port)
    with server:
        # The benchmark records nothing; do not grow a list of a million requests.
        server.requests = _Discard()
        sys.stdout.write(f"PORT {server.port}\n")
        sys.stdout.flush()
        threading.Event().wait()


class _Discard(list[ReceivedRequest]):
    def append(self, item: ReceivedRequest) -> None:
        pass


if __name__ == "__main__":
    main()
