"""Real HTTP servers on 127.0.0.1 that answer every kind of thing ``probe`` must classify.

A :class:`LocalServer` is the one fake worker of :mod:`tests.support.upstreams` (raw httptools,
HTTP/1.1 keep-alive) on one port, in its own event loop on a background thread. Each path gets
a behaviour: an :class:`Answer` (status, content type, raw body bytes, extra headers, an
optional delay), :class:`Reset` (read the request, then drop the connection with a TCP RST) or
a :class:`Cycle` of those. It records every request it receives, so a test can check what was
sent, not only what came back.

It is raw HTTP on purpose: the point is to answer exactly the bytes a broken worker answers
(HTML labelled ``text/plain``, a JSON content type over a body that does not parse, a reset),
which a framework would "helpfully" fix.

``refused_port()`` gives a port on which connections are refused (bound, never listening).

Run as a script it serves one answer on every path until killed, for the probe benchmark::

    python -m tests.support.http_servers --delay-ms 50    # prints "PORT <n>" once listening
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tests.support.upstreams import BehaviourServers, Received, Reply, ResetConnection

T = TypeVar("T")


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
    record: bool = True
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _workers: BehaviourServers | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LocalServer:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._workers = BehaviourServers(record=False, responder=self._respond)
        url = self._run(self._workers.add("local", self.port))
        self.port = int(url.rsplit(":", 1)[1])
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is None or self._thread is None or self._workers is None:
            return
        self._run(self._workers.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    async def _respond(self, _alias: str, request: Received) -> Reply:
        headers = {name.lower(): value for name, value in request.headers}
        received = ReceivedRequest(request.method, request.target, headers, request.body)
        if self.record:
            self.requests.append(received)
        chosen = self.choose(received) if self.choose is not None else None
        behaviour = chosen or self.behaviours.get(request.path, self.default)
        if isinstance(behaviour, Cycle):
            behaviour = behaviour.take()
        if isinstance(behaviour, Reset):
            raise ResetConnection
        if behaviour.delay_s:
            await asyncio.sleep(behaviour.delay_s)
        return Reply(behaviour.status, behaviour.content_type, behaviour.body, [*behaviour.headers])


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
    # The benchmark records nothing: no list of a million requests.
    with LocalServer({}, default=answer, port=args.port, record=False) as server:
        sys.stdout.write(f"PORT {server.port}\n")
        sys.stdout.flush()
        threading.Event().wait()


if __name__ == "__main__":
    main()
