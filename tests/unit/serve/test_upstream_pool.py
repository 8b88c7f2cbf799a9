"""serve's upstream client (code24ctl/serve/http/upstream.py) against raw local servers that say
exactly what bytes they answer: framing, reuse, retries, timeouts and error mapping.

End to end behaviour through serve (streaming, faults, big bodies) is in tests/cli/test_serve.py
and the conformance corpus; these pin down the pool itself.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field

import pytest
import uvloop

from code24ctl.serve.http.upstream import (
    ConnState,
    UpstreamBroken,
    UpstreamConnectError,
    UpstreamOverloaded,
    UpstreamPool,
    UpstreamResponse,
)
from tests.support.http_servers import refused_port

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


@dataclass
class Seen:
    """What a raw server received: one entry per request, and how many connections."""

    requests: list[bytes] = field(default_factory=list)
    connections: int = 0


Answer = Callable[[int, bytes, asyncio.StreamWriter], Awaitable[bool]]


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    lower = head.lower()
    if b"transfer-encoding: chunked" in lower:
        body = await reader.readuntil(b"0\r\n\r\n")
        return head + body
    for line in lower.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return head + await reader.readexactly(int(line.split(b":")[1]))
    return head


async def raw_server(answer: Answer) -> tuple[str, Seen, asyncio.Server]:
    """A server on 127.0.0.1 calling ``answer(index, request, writer)`` per request; it keeps
    the connection while ``answer`` returns True."""
    seen = Seen()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.connections += 1
        try:
            while True:
                request = await _read_request(reader)
                seen.requests.append(request)
                if not await answer(len(seen.requests) - 1, request, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return f"http://127.0.0.1:{port}", seen, server


def fixed(*answers: bytes, keep: bool = True) -> Answer:
    async def answer(index: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(answers[min(index, len(answers) - 1)])
        await writer.drain()
        return keep

    return answer


async def body_of(response: UpstreamResponse) -> bytes:
    parts = []
    while chunk := await response.read_chunk():
        parts.append(chunk)
    return b"".join(parts)


def run(main: Callable[[], Coroutine[None, None, None]]) -> None:
    """Under asyncio's own loop and under uvloop (serve's)."""
    for factory in (asyncio.new_event_loop, uvloop.new_event_loop):
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(main())


def test_keep_alive_connection_is_reused_and_request_is_exact() -> None:
    async def main() -> None:
        base, seen, server = await raw_server(fixed(OK))
        pool = UpstreamPool()
        for _ in range(3):
            response = await pool.request(
                base + "/base/", "GET", "/x?q=1", [("Accept", "*/*"), ("X-A", "1")]
            )
            assert (response.status, response.content_type, response.content_length) == (
                200,
                "application/json",
                2,
            )
            assert await body_of(response) == b"{}"
            response.release()
        port = base.rsplit(":", 1)[1]
        assert seen.connections == 1
        assert (
            seen.requests[0]
            == (
                f"GET /base/x?q=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                "Accept: */*\r\nX-A: 1\r\n\r\n"
            ).encode()
        )
        assert pool.open_connections() == 1
        await pool.close()
        assert pool.closed and pool.open_connections() == 0
        server.close()

    run(main)


def test_bodies_get_their_length_or_chunked_framing() -> None:
    async def main() -> None:
        base, seen, server = await raw_server(fixed(OK))
        pool = UpstreamPool()

        async def stream() -> AsyncIterator[bytes]:
            yield b"hello "
            yield b"world"

        for method, headers, body in (
            ("POST", [], b"abc"),
            ("POST", [], None),
            ("PUT", [], stream()),
            ("PUT", [("Content-Length", "11")], stream()),
            ("GET", [], None),
        ):
            response = await pool.request(base, method, "/", headers, body)
            await body_of(response)
            response.release()
        tails = [r.split(b"\r\n", 2)[2] for r in seen.requests]
        assert tails == [
            b"Content-Length: 3\r\n\r\nabc",
            b"Content-Length: 0\r\n\r\n",
            b"Transfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n",
            b"Content-Length: 11\r\n\r\nhello world",
            b"\r\n",
        ]
        assert seen.connections == 1
        await pool.close()
        server.close()

    run(main)


def test_chunked_and_close_delimited_answers_are_read_whole() -> None:
    async def main() -> None:
        chunked = (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
        )
        until_close = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nto the end"

        async def answer(index: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
            writer.write(chunked if index == 0 else until_close)
            await writer.drain()
            return index == 0  # the second answer ends when the connection does

        base, seen, server = await raw_server(answer)
        pool = UpstreamPool()
        response = await pool.request(base, "GET", "/", [])
        assert await response.read_up_to(100) == (b"abcdefg", True)
        response.release()
        response = await pool.request(base, "GET", "/", [])
        assert response.content_length is None
        assert await body_of(response) == b"to the end"
        response.release()
        # "Connection: close" is not pooled, but a connection was opened ahead for the next
        # request (a worker that closes after each answer costs no connect on the critical path).
        for spare in list(pool._spares.values()):
            await spare
        assert seen.connections == 2
        assert pool.open_connections() == 1
        await pool.close()
        server.close()

    run(main)


def test_informational_answers_are_skipped_and_head_has_no_body() -> None:
    async def main() -> None:
        early = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" + OK
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n"
        base, _seen, server = await raw_server(fixed(early, head))
        pool = UpstreamPool()
        response = await pool.request(base, "GET", "/", [])
        assert response.status == 200
        assert [name for name, _ in response.raw_headers] == [b"Content-Type", b"Content-Length"]
        assert await body_of(response) == b"{}"
        response.release()
        response = await pool.request(base, "HEAD", "/", [])
        assert (response.status, response.content_length) == (200, 500)
        assert await body_of(response) == b""
        response.release()
        assert pool.open_connections() == 0  # a HEAD answer's connection is not trusted again
        await pool.close()
        server.close()

    run(main)


def test_refused_connection_is_a_connect_error() -> None:
    async def main() -> None:
        pool = UpstreamPool()
        with (
            refused_port() as port,
            pytest.raises(UpstreamConnectError, match=r"cannot connect to 127\.0\.0\.1"),
        ):
            await pool.request(f"http://127.0.0.1:{port}", "GET", "/", [])
        assert pool.open_connections() == 0
        await pool.close()

    run(main)


def test_reset_before_answering_is_broken_and_not_retried_for_a_new_connection() -> None:
    async def main() -> None:
        async def reset(index: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            return False

        base, seen, server = await raw_server(reset)
        pool = UpstreamPool()
        with pytest.raises(UpstreamBroken):
            await pool.request(base, "GET", "/", [])
        assert len(seen.requests) == 1
        await pool.close()
        server.close()

    run(main)


def test_a_pooled_connection_closed_by_the_worker_is_retried_once_for_get_only() -> None:
    async def main() -> None:
        # Answers as if it kept the connection, then closes it after reading the next request.
        async def answer(index: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
            if index % 2 == 1:
                return False
            writer.write(OK)
            await writer.drain()
            return True

        base, seen, server = await raw_server(answer)
        pool = UpstreamPool()
        response = await pool.request(base, "GET", "/", [])
        await body_of(response)
        response.release()
        response = await pool.request(base, "GET", "/", [])  # dropped, then sent again
        assert await body_of(response) == b"{}"
        response.release()
        assert (len(seen.requests), seen.connections) == (3, 2)
        with pytest.raises(UpstreamBroken):
            await pool.request(base, "POST", "/", [], b"x")
        assert len(seen.requests) == 4  # a POST is never sent twice
        await pool.close()
        server.close()

    run(main)


def test_timeout_covers_the_head_and_the_body_and_drops_the_connection() -> None:
    async def main() -> None:
        async def slow(index: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
            if index == 0:
                await asyncio.sleep(1)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab")
            await writer.drain()
            await asyncio.sleep(1)
            return False

        base, _seen, server = await raw_server(slow)
        pool = UpstreamPool()
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TimeoutError):
            await pool.request(base, "GET", "/", [], timeout_s=0.1)
        # Margins wide enough for a loaded machine: the worker answers after 1 s, stalls 1 s.
        assert loop.time() - started < 0.9
        assert pool.open_connections() == 0
        response = await pool.request(base, "GET", "/", [], timeout_s=0.5)
        assert await response.read_chunk() == b"ab"
        with pytest.raises(TimeoutError):
            await response.read_chunk()
        response.release()
        assert pool.open_connections() == 0
        await pool.close()
        server.close()

    run(main)


def test_idle_connections_expire_and_the_limit_queues_requests() -> None:
    async def main() -> None:
        base, seen, server = await raw_server(fixed(OK))
        pool = UpstreamPool(keepalive_timeout_s=0.05, max_connections=1)
        first = await pool.request(base, "GET", "/", [])
        waiting = asyncio.ensure_future(pool.request(base, "GET", "/", []))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # one connection allowed, and it is busy
        await body_of(first)
        first.release()
        second = await waiting
        await body_of(second)
        second.release()
        assert seen.connections == 1
        await asyncio.sleep(0.1)
        third = await pool.request(base, "GET", "/", [])
        await body_of(third)
        third.release()
        assert seen.connections == 2  # the idle one was too old to use
        await pool.close()
        server.close()

    run(main)


def test_garbage_answer_is_broken_and_unread_answer_is_not_pooled() -> None:
    async def main() -> None:
        base, _seen, server = await raw_server(fixed(b"NOT HTTP AT ALL\r\n\r\n"))
        pool = UpstreamPool()
        with pytest.raises(UpstreamBroken, match="not valid HTTP"):
            await pool.request(base, "GET", "/", [])
        server.close()
        big = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345"
        base, _seen, server = await raw_server(fixed(big))
        response = await pool.request(base, "GET", "/", [])
        assert response.read_buffered() in (b"", b"12345")
        response.release()  # body not finished: the connection cannot be reused
        assert pool.open_connections() == 0
        await pool.close()
        server.close()

    run(main)


def test_a_connection_walks_its_states_and_goes_back_idle() -> None:
    async def main() -> None:
        async def answer(index: int, request: bytes, writer: asyncio.StreamWriter) -> bool:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab")
            await writer.drain()
            await asyncio.sleep(0.05)  # the worker is slow with the rest of its body
            writer.write(b"cd")
            await writer.drain()
            return True

        base, _, server = await raw_server(answer)
        pool = UpstreamPool()
        response = await pool.request(base, "GET", "/", [])
        [conn] = pool._open
        assert conn.state is ConnState.BODY  # the head is handed over, the body is coming
        assert await body_of(response) == b"abcd"
        assert conn.state is ConnState.DONE
        response.release()
        assert conn.state is ConnState.IDLE
        assert pool._idle_conns[pool.origin(base)] == [conn]
        await pool.close()
        assert conn.state is ConnState.CLOSED
        server.close()

    run(main)


def test_out_of_file_descriptors_is_not_a_missing_worker() -> None:
    async def main() -> None:
        pool = UpstreamPool()
        real = pool.loop

        class Exhausted:
            def __getattr__(self, name: str) -> object:
                return getattr(real, name)

            async def create_connection(self, *args: object, **kwargs: object) -> object:
                raise OSError(errno.EMFILE, "Too many open files")

        pool.loop = Exhausted()  # type: ignore[assignment]
        with pytest.raises(UpstreamOverloaded):
            await pool.request("http://127.0.0.1:9", "GET", "/", [])
        pool.loop = real
        await pool.close()

    run(main)


def test_idle_connections_are_closed_by_a_timer_within_a_second_of_the_limit() -> None:
    """Not only when the pool is next used: an idle pool closes them too."""

    async def main() -> None:
        base, seen, server = await raw_server(fixed(OK))
        pool = UpstreamPool(keepalive_timeout_s=0.5)
        responses = await asyncio.gather(*(pool.request(base, "GET", "/", []) for _ in range(40)))
        for response in responses:
            await body_of(response)
            response.release()
        conns = [conn for idle in pool._idle_conns.values() for conn in idle]
        assert seen.connections == len(conns) == pool.open_connections() == 40
        await asyncio.sleep(0.4)
        assert pool.open_connections() == 40  # not before the limit
        await asyncio.sleep(0.5 + 1.0 - 0.4)  # the limit, and one second more
        assert pool.open_connections() == 0
        assert all(conn.closed for conn in conns)
        await pool.close()
        server.close()

    run(main)
