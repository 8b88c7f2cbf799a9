"""serve against clients that do not play by the rules: each case of the hostile-client review.

Everything runs over real sockets against serve and behaviour workers in one background event
loop (tests/support/upstreams.py). The assertions are on what was answered and what reached a
worker; where time matters (timeouts) serve's limits are set small and the test waits for the
event, never for a fixed time.
"""

from __future__ import annotations

import contextlib
import errno
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from code24ctl.serve.limits import ClientLimits
from code24ctl.serve.metrics import DispatchMetrics
from tests.support.upstreams import ServeHarness, send

TABLE: dict[str, Any] = {
    "version": 1,
    "max_body_bytes": 1024 * 1024,
    "routes": [
        {"prefix": "/w", "worker": "w", "strip": "/w"},
        {"prefix": "/o", "worker": "o", "strip": "/o"},
    ],
    "workers": {
        "w": {"timeout_ms": 5000, "fallback": None, "fallback_status": 200},
        "o": {"timeout_ms": 5000, "fallback": None, "fallback_status": 200},
    },
}
ECHO = {"behaviour": "echo"}
OK = {"behaviour": "json", "json": {"ok": True}}


@contextlib.contextmanager
def serving(limits: ClientLimits | None = None, **behaviours: Any) -> Iterator[ServeHarness]:
    metrics = DispatchMetrics()
    harness = ServeHarness(["w", "o"], limits=limits, metrics=metrics)
    harness.configure(TABLE, "test", behaviours or {"w": ECHO, "o": OK})
    harness.metrics = metrics  # type: ignore[attr-defined]
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture(scope="module")
def harness() -> Iterator[ServeHarness]:
    with serving() as running:
        yield running


@pytest.fixture(autouse=True)
def _reset(request: pytest.FixtureRequest) -> None:
    if "harness" in request.fixturenames:
        running: ServeHarness = request.getfixturevalue("harness")
        running.configure(TABLE, "test", {"w": ECHO, "o": OK})


def exchange(port: int, data: bytes, *, shut: bool = False, timeout: float = 10) -> bytes:
    """Send raw bytes on a new connection; everything the server says until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if shut:
            sock.shutdown(socket.SHUT_WR)
        return read_all(sock)


def read_all(sock: socket.socket) -> bytes:
    out = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            out += chunk
    return out


def answers(raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """The HTTP/1.1 answers in ``raw`` (Content-Length framed), in order."""
    found = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        found.append((status, headers, rest[:length]))
        raw = rest[length:]
    return found


def only_answer(raw: bytes) -> tuple[int, dict[str, Any]]:
    [(status, headers, body)] = answers(raw)
    assert headers["content-type"] == "application/json"
    return status, json.loads(body)


def received(harness: ServeHarness, alias: str = "w") -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in harness.workers.received.get(alias, [])]


def until(condition: Callable[[], bool], timeout: float = 10) -> bool:
    """Poll ``condition`` (the server's own state) until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def counted(harness: ServeHarness, **labels: str) -> float:
    """The requests counter for ``labels`` (summed over the labels not given)."""
    metrics: DispatchMetrics = harness.metrics  # type: ignore[attr-defined]
    total = 0.0
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        if family.name != "code24_dispatch_requests":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total") and all(
                sample.labels.get(k) == v for k, v in labels.items()
            ):
                total += sample.value
    return total


# --- Clients that have gone away --------------------------------------------------------------


def test_orphan_flood_is_not_forwarded_and_other_clients_are_answered() -> None:
    with serving(w=ECHO, o=OK) as running:
        orphans = 300
        for _ in range(orphans):
            # A body is promised and never sent; the client is gone at once.
            with socket.create_connection(("127.0.0.1", running.port)) as sock:
                sock.sendall(b"POST /w/x HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n")
        started = time.monotonic()
        normal = send(running.port, "GET", "/o/ping", timeout=10)
        elapsed = time.monotonic() - started
        assert (normal["status"], json.loads(normal["body"])) == (200, {"ok": True})
        assert elapsed < 5  # generous: before the fix it took the whole worker timeout
        assert until(lambda: counted(running, status="499") == orphans)
        assert received(running) == []  # not one orphan reached the worker


def test_bodyless_upgrade_post_is_not_forwarded_when_the_client_gives_up(
    harness: ServeHarness,
) -> None:
    before = counted(harness, status="499")
    with socket.create_connection(("127.0.0.1", harness.port)) as sock:
        sock.sendall(
            b"POST /w/x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
            b"Content-Length: 5\r\n\r\n{}"
        )
    assert until(lambda: counted(harness, status="499") == before + 1)
    assert received(harness) == []


# --- Broken and oversized requests ----------------------------------------------------------------


def test_malformed_chunked_body_is_400_and_nothing_reaches_the_worker(
    harness: ServeHarness,
) -> None:
    raw = exchange(
        harness.port,
        b"POST /w/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"zz\r\nhello\r\n0\r\n\r\n",
    )
    status, document = only_answer(raw)
    assert (status, document["error"]["code"]) == (400, "bad_request")
    send(harness.port, "GET", "/o/after")  # the worker would have had it by now
    assert received(harness) == []


def test_chunked_body_over_the_limit_never_reaches_a_worker_that_answers_early(
    harness: ServeHarness,
) -> None:
    harness.configure(TABLE, "test", {"w": OK, "o": OK})
    got = send(harness.port, "POST", "/w/up", [], b"x" * (3 * 1024 * 1024), chunked=True)
    assert got["status"] == 413
    assert json.loads(got["body"])["error"]["code"] == "payload_too_large"
    assert received(harness) == []


def test_header_flood_is_431_bounded_and_other_clients_are_answered() -> None:
    with serving(w=ECHO, o=OK) as running:
        outcome: dict[str, Any] = {}

        def flood() -> None:
            with socket.create_connection(("127.0.0.1", running.port), timeout=10) as sock:
                sock.sendall(b"GET /w/x HTTP/1.1\r\nHost: a\r\nX-Flood: ")
                piece = b"a" * 65536
                sent = 0
                try:
                    for _ in range(512):  # 32 MiB of one header, if serve took it all
                        sock.sendall(piece)
                        sent += len(piece)
                except OSError:
                    pass
                outcome["sent"] = sent
                outcome["raw"] = read_all(sock)

        thread = threading.Thread(target=flood)
        thread.start()
        normal = send(running.port, "GET", "/o/ping", timeout=10)
        thread.join(30)
        assert (normal["status"], json.loads(normal["body"])) == (200, {"ok": True})
        status, document = only_answer(outcome["raw"])
        assert (status, document["error"]["code"]) == (431, "headers_too_large")
        # Cut off long before the flood was sent: serve did not hold it.
        assert outcome["sent"] < 16 * 1024 * 1024
        assert received(running) == []
        assert counted(running, worker="", status="431", fallback_reason="headers_too_large") == 1


def test_headers_just_under_the_limit_pass(harness: ServeHarness) -> None:
    got = send(harness.port, "GET", "/w/x", [("X-Big", "a" * 60000)])
    assert got["status"] == 200
    assert len(json.loads(got["body"])["headers"]["x-big"]) == 60000


def test_headers_just_over_the_limit_in_one_write_are_431(harness: ServeHarness) -> None:
    head = b"GET /w/x HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n"
    status, document = only_answer(exchange(harness.port, head))
    assert (status, document["error"]["code"]) == (431, "headers_too_large")
    assert received(harness) == []


def test_serves_own_refusals_carry_the_dispatcher_version_and_a_request_id(
    harness: ServeHarness,
) -> None:
    head = (
        b"GET /w/x HTTP/1.1\r\nHost: a\r\nX-Code24-Dispatcher-Version: forged\r\n"
        b"X-Big: " + b"a" * 65536 + b"\r\n\r\n"
    )
    [(status, headers, _)] = answers(exchange(harness.port, head))
    assert status == 431
    assert headers["x-code24-dispatcher-version"] == "local"
    assert re.fullmatch(r"[0-9a-f]{32}", headers["x-code24-request-id"])


def test_long_url_is_414(harness: ServeHarness) -> None:
    raw = exchange(harness.port, b"GET /w/" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: a\r\n\r\n")
    status, document = only_answer(raw)
    assert (status, document["error"]["code"]) == (414, "uri_too_long")
    assert received(harness) == []


def test_http11_without_host_or_with_two_is_400(harness: ServeHarness) -> None:
    for head in (b"GET /w/x HTTP/1.1\r\n\r\n", b"GET /w/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"):
        status, document = only_answer(exchange(harness.port, head, shut=True))
        assert (status, document["error"]["code"]) == (400, "bad_host")
    assert received(harness) == []
    # HTTP/1.0 never required Host.
    [(status, _, _)] = answers(exchange(harness.port, b"GET /w/x HTTP/1.0\r\n\r\n"))
    assert status == 200


@pytest.mark.parametrize("method", ["CONNECT", "TRACE"])
def test_connect_and_trace_are_refused(harness: ServeHarness, method: str) -> None:
    raw = exchange(harness.port, f"{method} /w/x HTTP/1.1\r\nHost: a\r\n\r\n".encode(), shut=True)
    status, document = only_answer(raw)
    assert (status, document["error"]["code"]) == (405, "method_not_allowed")
    assert received(harness) == []


def test_valid_request_then_garbage_answers_both_in_order(harness: ServeHarness) -> None:
    raw = exchange(harness.port, b"GET /w/first HTTP/1.1\r\nHost: a\r\n\r\nGARBAGE\x01\r\n\r\n")
    [(first, _, body), (second, headers, error)] = answers(raw)
    assert (first, json.loads(body)["path"]) == (200, "/first")
    assert (second, headers["content-type"]) == (400, "application/json")
    assert json.loads(error)["error"]["code"] == "bad_request"
    assert received(harness) == [("GET", "/first")]


@pytest.mark.parametrize("protocol", ["h2c", "websocket"])
def test_post_with_a_body_and_upgrade_is_answered_in_http11(
    harness: ServeHarness, protocol: str
) -> None:
    raw = exchange(
        harness.port,
        b"POST /w/x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: " + protocol.encode() + b"\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"
        b'Content-Length: 13\r\n\r\n{"hello": 1}\n',
    )
    status, document = only_answer(raw)
    assert status == 200
    assert document["body"] == '{"hello": 1}\n'
    assert "upgrade" not in document["headers"]
    assert received(harness) == [("POST", "/x")]


# --- Timeouts and the connection cap ------------------------------------------------------------


def test_slow_headers_get_408_and_a_silent_connection_is_closed() -> None:
    limits = ClientLimits(header_timeout_s=0.3)
    with serving(limits) as running:
        raw = exchange(running.port, b"GET /w/x HTTP/1.1\r\nHost: a\r\n")
        status, document = only_answer(raw)
        assert (status, document["error"]["code"]) == (408, "request_timeout")
        assert exchange(running.port, b"") == b""  # said nothing: closed without a word
        assert received(running) == []


def test_idle_keep_alive_connection_is_closed() -> None:
    with serving(ClientLimits(idle_timeout_s=0.3)) as running:
        with socket.create_connection(("127.0.0.1", running.port), timeout=10) as sock:
            sock.sendall(b"GET /o/x HTTP/1.1\r\nHost: a\r\n\r\n")
            [(status, _, _)] = answers(read_all(sock))  # ends: serve closed it when idle
        assert status == 200


def test_past_the_connection_cap_a_client_gets_503_not_a_worker_blamed() -> None:
    with serving(ClientLimits(max_connections=3)) as running:
        held = [socket.create_connection(("127.0.0.1", running.port)) for _ in range(3)]
        try:
            assert until(lambda: len(running.serve.server.server_state.connections) == 3)
            status, document = only_answer(exchange(running.port, b"GET /o/x HTTP/1.1\r\n"))
            assert (status, document["error"]["code"]) == (503, "over_capacity")
        finally:
            for sock in held:
                sock.close()
        assert until(lambda: len(running.serve.server.server_state.connections) == 0)
        assert send(running.port, "GET", "/o/x")["status"] == 200


def test_out_of_file_descriptors_is_503_not_worker_not_found(harness: ServeHarness) -> None:
    pool = harness.serve.app.pool
    assert pool is not None
    real_loop = pool.loop

    class Exhausted:
        def __getattr__(self, name: str) -> Any:
            return getattr(real_loop, name)

        async def create_connection(self, *args: Any, **kwargs: Any) -> Any:
            raise OSError(errno.EMFILE, "Too many open files")

    async def close_idle() -> None:
        for conn in list(pool._open):
            conn.close()
            pool.forget(conn)

    harness.run(close_idle())
    pool.loop = Exhausted()  # type: ignore[assignment]
    try:
        got = send(harness.port, "GET", "/w/x")
    finally:
        pool.loop = real_loop
    assert got["status"] == 503
    document = json.loads(got["body"])["error"]
    assert (document["code"], document["worker"]) == ("over_capacity", "w")


# --- A worker outside the rules -------------------------------------------------------------------


@pytest.mark.parametrize("status", [700, 999])
def test_worker_status_outside_100_to_599_is_worker_error(
    harness: ServeHarness, status: int
) -> None:
    harness.configure(TABLE, "test", {"w": {"behaviour": "raw", "status": status, "body": "{}"}})
    got = send(harness.port, "GET", "/w/x")
    assert got["status"] == 502
    assert json.loads(got["body"])["error"]["code"] == "worker_error"


def test_clients_leaving_a_slow_worker_free_its_connections() -> None:
    # Clients that ask a worker that never answers, then leave: serve stops waiting at once
    # (it does not hold a pooled connection per orphan for the worker timeout).
    with serving(w={"behaviour": "stall"}, o=OK) as running:
        pool = running.serve.app.pool
        assert pool is not None
        clients = [socket.create_connection(("127.0.0.1", running.port)) for _ in range(20)]
        for sock in clients:
            sock.sendall(b"GET /w/x HTTP/1.1\r\nHost: a\r\n\r\n")
        assert until(lambda: len(received(running)) == 20)  # all forwarded, all waiting
        assert pool.open_connections() == 20
        for sock in clients:
            sock.close()
        assert until(lambda: counted(running, status="499", fallback_reason="client_closed") == 20)
        assert until(lambda: pool.open_connections() == 0)
        normal = send(running.port, "GET", "/o/ping", timeout=10)
        assert (normal["status"], json.loads(normal["body"])) == (200, {"ok": True})
