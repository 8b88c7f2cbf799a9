"""``code24ctl serve``: the command, the demo, faults under load, streaming, the access log.

The conformance corpus (tests/contract/test_conformance_serve.py) pins the dispatch rules; this file
covers what only a running server has. The command runs as a real subprocess
(``python -m code24ctl serve --port 0 --json``: the JSON line on stdout says where it
listens); the finer streaming checks use the in-process harness, still over real HTTP.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import http.client
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from code24ctl.serve.access_log import AccessLog
from tests.support.builders import argv
from tests.support.cli import REPO_CONFIG, REPO_ROOT, RunCli
from tests.support.http_servers import refused_port
from tests.support.serve_process import ServeProcess, local_config, repo_config
from tests.support.staging import ALIASES, write_config
from tests.support.upstreams import ServeHarness, send

# --- The command ----------------------------------------------------------------------------


def test_serve_refuses_a_cloudflare_environment(run_cli: RunCli) -> None:
    result = run_cli("serve", "--env", "staging")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert (
        "error: `serve` runs a local environment (one with 'upstreams'); 'staging' (from --env) "
        "is a Cloudflare environment\n  hint: use --env local\n"
    ) in result.stderr


def test_serve_refuses_an_unknown_access_log_format(run_cli: RunCli) -> None:
    result = run_cli("serve", "--access-log", "xml")
    assert result.exit_code == 2
    assert "error: --access-log 'xml' is not one of text, json, off" in result.stderr


def test_serve_refuses_a_busy_port(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = subprocess.run(
            [sys.executable, "-m", "code24ctl", "serve", "-c", str(REPO_CONFIG), "-p", str(port)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert run.returncode == 2
    assert f"error: cannot listen on 127.0.0.1:{port}: Address already in use" in run.stderr


def test_serve_defaults_to_the_local_base_url_port() -> None:
    from code24ctl.config import resolve_config
    from code24ctl.serve.server import default_port, is_loopback

    assert default_port(resolve_config(REPO_CONFIG, "local")) == 8787
    assert [is_loopback(h) for h in ("127.0.0.1", "127.8.0.1", "::1", "localhost")] == [True] * 4
    assert [is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "example.com")] == [False] * 4


def test_serve_starts_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    serve = ServeProcess(tmp_path)
    try:
        assert serve.info["url"] == f"http://127.0.0.1:{serve.port}"
        assert serve.info["environment"] == "local"
        assert serve.info["demo"] is False
        assert serve.info["upstreams"]["competitive-analysis"] == "http://127.0.0.1:8788"
        got = send(serve.port, "GET", "/nowhere")
        assert got["status"] == 404
        assert json.loads(got["body"])["error"]["code"] == "route_not_found"
    finally:
        status = serve.stop(signal.SIGTERM)
    assert status == 0
    assert serve.stderr().rstrip().endswith("serve stopped")


def test_serve_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    serve = ServeProcess(tmp_path)
    assert send(serve.port, "GET", "/")["status"] == 404
    assert serve.stop(signal.SIGINT) == 0


def test_serve_warns_when_not_bound_to_loopback(tmp_path: Path) -> None:
    serve = ServeProcess(tmp_path, "--host", "0.0.0.0")
    try:
        assert send(serve.port, "GET", "/")["status"] == 404  # still only talked to via 127.0.0.1
    finally:
        assert serve.stop() == 0
    assert re.search(r"warning: listening on 0\.0\.0\.0, not loopback", serve.stderr())


def test_loopback_bind_has_no_warning(tmp_path: Path) -> None:
    serve = ServeProcess(tmp_path)
    assert serve.stop() == 0
    assert "not loopback" not in serve.stderr()
    assert "cannot measure" not in serve.stderr()  # no limits configured, no note


def test_serve_says_once_that_it_cannot_enforce_custom_limits(tmp_path: Path) -> None:
    def limits(data: dict[str, Any]) -> None:
        data["workers"]["brand-worker"]["limits"] = {"cpu_ms": 50, "subrequests": 5}
        data["workers"]["market-research"]["limits"] = {"cpu_ms": 20}

    serve = ServeProcess(tmp_path, config=write_config(tmp_path, limits))
    try:
        assert send(serve.port, "GET", "/")["status"] == 404
    finally:
        assert serve.stop() == 0
    note = (
        "note: serve cannot measure CPU time or count subrequests; the limits of brand-worker, "
        "market-research apply on Cloudflare only (a worker answering 'error code: 1102' still "
        "gets worker_over_limit)"
    )
    assert " ".join(serve.stderr().split()).count(note) == 1


def test_start_up_names_unreachable_upstreams_as_a_warning(tmp_path: Path) -> None:
    with refused_port() as port:
        config = local_config(tmp_path, {alias: f"http://127.0.0.1:{port}" for alias in ALIASES})
        serve = ServeProcess(tmp_path, config=config)
        try:
            assert serve.info["unreachable"] == sorted(ALIASES)
            got = send(serve.port, "POST", "/api/market/x", [], b"{}")
            assert got["headers"]["x-code24-fallback-reason"] == "worker_not_found"
        finally:
            assert serve.stop() == 0
    assert (
        "warning: no answer at the upstream of brand-worker "
        f"(http://127.0.0.1:{port}), competitive-analysis" in serve.stderr()
    )


# --- The demo -------------------------------------------------------------------------------


def test_demo_answers_json_on_every_route(tmp_path: Path) -> None:
    serve = ServeProcess(tmp_path, "--demo")
    config = repo_config()
    try:
        assert serve.info["demo"] is True
        for route in config["routes"]:
            probe = route["probe"]
            body = json.dumps(probe["json"]).encode()
            got = send(
                serve.port,
                probe["method"],
                probe["path"],
                [("Content-Type", "application/json"), ("X-Request-Id", f"demo-{route['worker']}")],
                body,
            )
            alias = route["worker"]
            assert got["headers"]["x-code24-worker"] == alias
            assert got["headers"]["x-code24-environment"] == "local"
            assert got["headers"]["x-code24-request-id"] == f"demo-{alias}"
            assert got["headers"]["content-type"].startswith("application/json")
            document = json.loads(got["body"])
            if alias == "designer-worker":
                # The demo designer answers an HTML 502 page; the caller gets its JSON fallback.
                assert got["status"] == 200
                assert got["headers"]["x-code24-fallback"] == "true"
                assert got["headers"]["x-code24-fallback-reason"] == "upstream_html"
                assert got["headers"]["x-code24-upstream-status"] == "502"
                assert document == config["workers"]["designer-worker"]["fallback"]
            else:
                assert got["status"] == 200
                assert got["headers"]["x-code24-fallback"] == "false"
                assert got["headers"]["x-code24-upstream-status"] == "200"
                strip = route.get("strip", route["prefix"])
                assert document["worker"] == alias
                assert document["path"] == probe["path"][len(strip) :]
    finally:
        assert serve.stop() == 0
    text = serve.stderr()
    assert "designer-worker answers an HTML '502 Bad Gateway' page" in text
    # The examples come from the loaded config's routes and their probe samples.
    assert (
        f"  curl -si -X POST http://127.0.0.1:{serve.port}/api/competitive/analyze-industry "
        '-H \'content-type: application/json\' -d \'{"industry": "saas", "competitors": '
        '["acme"]}\'\n' in text
    )
    assert f"  curl -si -X POST http://127.0.0.1:{serve.port}/elite/design/" in text
    assert f"code24ctl probe --env local --base-url http://127.0.0.1:{serve.port}" in text
    lines = [line for line in text.splitlines() if " worker=" in line]
    assert len(lines) == 5
    assert re.search(
        r"POST /elite/design/enhanced worker=designer-worker status=200 "
        r"reason=upstream_html ms=[0-9]+\.[0-9]{2} id=demo-designer-worker$",
        text,
        re.MULTILINE,
    )


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def test_demo_workers_take_the_configured_ports_so_probe_direct_shows_the_bug(
    tmp_path: Path, run_cli: RunCli
) -> None:
    ports = _free_ports(len(ALIASES))
    upstreams = {
        alias: f"http://127.0.0.1:{port}" for alias, port in zip(ALIASES, ports, strict=True)
    }
    config = local_config(tmp_path, upstreams)
    serve = ServeProcess(tmp_path, "--demo", config=config)
    try:
        assert serve.info["upstreams"] == upstreams
        result = run_cli(
            *argv(f"probe --env local --base-url http://127.0.0.1:{serve.port} --direct --json"),
            config=config,
        )
    finally:
        assert serve.stop() == 0
    assert result.exit_code == 0, result.stderr
    rows = {row["worker"]: row for row in json.loads(result.stdout)["routes"]}
    designer = rows["designer-worker"]
    # The original bug, diagnosed: the worker itself answers HTML, the dispatcher JSON.
    assert designer["direct"]["verdict"] == "html"
    assert (designer["verdict"], designer["fallback"]) == ("json", True)
    assert designer["direct"]["url"] == upstreams["designer-worker"] + "/design/enhanced"
    assert {
        rows[alias]["direct"]["verdict"] for alias in ALIASES if alias != "designer-worker"
    } == {"json"}


# --- Faults under load ----------------------------------------------------------------------

FAULTS: dict[str, tuple[str, dict[str, Any] | None]] = {
    # route target -> (alias, behaviour or None for a refused port, status, fallback reason)
    "/api/competitive/x": ("competitive-analysis", {"behaviour": "json", "json": {"ok": 1}}),
    "/api/market/x": (
        "market-research",
        {"behaviour": "raw", "status": 502, "content_type": "text/html", "body": "<html>x</html>"},
    ),
    "/elite/brand/x": ("brand-worker", {"behaviour": "throw"}),
    "/elite/design/x": (
        "designer-worker",
        {"behaviour": "slow", "delay_ms": 1000, "then": {"behaviour": "json", "json": {}}},
    ),
    "/elite/develop/x": ("developer-worker", None),
}
EXPECTED = {
    "/api/competitive/x": (200, None),
    "/api/market/x": (200, "upstream_html"),  # market-research has a configured fallback
    "/elite/brand/x": (502, "worker_error"),  # no fallback: the envelope
    "/elite/design/x": (504, "worker_timeout"),
    "/elite/develop/x": (200, "worker_not_found"),
}


@pytest.fixture
def faulty_serve(tmp_path: Path) -> Iterator[tuple[ServeProcess, ServeHarness]]:
    """serve (subprocess) in front of one healthy worker and four failing ones."""
    # The refused port stays bound (never listening) for as long as serve runs.
    with refused_port() as refused:
        workers = ServeHarness(ALIASES, with_serve=False)
        workers.workers.set({alias: b for alias, b in FAULTS.values() if b is not None})
        upstreams = {alias: workers.workers.urls[alias] for alias in ALIASES}
        upstreams["developer-worker"] = f"http://127.0.0.1:{refused}"
        config = local_config(
            tmp_path,
            upstreams,
            timeouts={"designer-worker": 300},
            without_fallback=("brand-worker", "designer-worker"),
        )
        serve = ServeProcess(tmp_path, "--access-log", "json", config=config)
        try:
            yield serve, workers
        finally:
            serve.kill()
            workers.close()


async def _burst(port: int, targets: list[str]) -> list[tuple[str, int, dict[str, str], bytes]]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(target: str) -> tuple[str, int, dict[str, str], bytes]:
            async with session.get(f"http://127.0.0.1:{port}{target}") as response:
                headers = {k.lower(): v for k, v in response.headers.items()}
                return target, response.status, headers, await response.read()

        return await asyncio.wait_for(asyncio.gather(*(one(t) for t in targets)), 60)


def test_a_burst_of_faults_is_answered_in_json_and_serve_stays_up(
    faulty_serve: tuple[ServeProcess, ServeHarness],
) -> None:
    serve, _ = faulty_serve
    targets = list(FAULTS) * 40  # 200 requests, all in flight at once
    answers = asyncio.run(_burst(serve.port, targets))
    assert len(answers) == 200
    seen: dict[str, int] = {}
    for target, status, headers, body in answers:
        want_status, want_reason = EXPECTED[target]
        assert (status, headers.get("x-code24-fallback-reason")) == (want_status, want_reason), (
            target,
            status,
            headers,
            body[:200],
        )
        assert headers["content-type"].startswith("application/json")
        json.loads(body)  # every answer parses
        seen[target] = seen.get(target, 0) + 1
    assert seen == dict.fromkeys(FAULTS, 40)
    assert serve.proc.poll() is None
    after = send(serve.port, "GET", "/api/competitive/after")
    assert (after["status"], json.loads(after["body"])) == (200, {"ok": 1})
    assert serve.stop() == 0
    log = [json.loads(line) for line in serve.stderr().splitlines() if line.startswith("{")]
    assert len(log) == 201
    reasons = {entry["reason"] for entry in log}
    assert reasons == {None, "upstream_html", "worker_error", "worker_timeout", "worker_not_found"}


def test_sigterm_lets_a_request_in_flight_finish(
    faulty_serve: tuple[ServeProcess, ServeHarness],
) -> None:
    serve, workers = faulty_serve
    workers.workers.set(
        {
            "competitive-analysis": {
                "behaviour": "slow",
                "delay_ms": 700,
                "then": {"behaviour": "json", "json": {"finished": True}},
            }
        }
    )
    conn = http.client.HTTPConnection("127.0.0.1", serve.port, timeout=20)
    conn.request("GET", "/api/competitive/slow")
    time.sleep(0.2)  # the request is now waiting on the worker
    serve.proc.send_signal(signal.SIGTERM)
    response = conn.getresponse()
    assert (response.status, json.loads(response.read())) == (200, {"finished": True})
    conn.close()
    assert serve.proc.wait(20) == 0


# --- Streaming, in-process (real HTTP, one event loop) --------------------------------------

TABLE: dict[str, Any] = {
    "version": 1,
    "max_body_bytes": 16 * 1024 * 1024,
    "max_json_check_bytes": 1024 * 1024,
    "routes": [{"prefix": "/w", "worker": "w", "strip": "/w"}],
    "workers": {"w": {"timeout_ms": 2000, "fallback": None, "fallback_status": 200}},
}


@pytest.fixture(scope="module")
def harness() -> Iterator[ServeHarness]:
    log = io.StringIO()
    running = ServeHarness(["w"], access_log=AccessLog("text", log))
    running.log = log  # type: ignore[attr-defined]
    try:
        yield running
    finally:
        running.close()


def _use(harness: ServeHarness, behaviour: dict[str, Any], **table: Any) -> None:
    harness.configure({**TABLE, **table}, "test", {"w": behaviour})


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_request_body_of_several_mb_arrives_byte_for_byte(
    harness: ServeHarness, chunked: bool
) -> None:
    _use(harness, {"behaviour": "digest"})
    body = os.urandom(8 * 1024 * 1024 + 7)
    got = send(harness.port, "POST", "/w/upload", [], body, chunked=chunked)
    assert got["status"] == 200
    assert json.loads(got["body"]) == {
        "sha256": hashlib.sha256(body).hexdigest(),
        "length": len(body),
    }
    [received] = harness.workers.received["w"]
    has_length = any(name.lower() == "content-length" for name, _ in received.headers)
    # A chunked upload is read whole (up to the limit) before it is forwarded, as the JS
    # dispatcher does, so the worker gets it with its length.
    assert has_length


def test_streamed_body_over_the_limit_is_413(harness: ServeHarness) -> None:
    _use(harness, {"behaviour": "digest"}, max_body_bytes=1024 * 1024)
    got = send(harness.port, "POST", "/w/upload", [], b"x" * (3 * 1024 * 1024), chunked=True)
    assert got["status"] == 413
    assert json.loads(got["body"])["error"]["code"] == "payload_too_large"


def test_big_json_answer_streams_through_unchanged(harness: ServeHarness) -> None:
    size = 6 * 1024 * 1024
    _use(harness, {"behaviour": "big_json", "bytes": size})
    got = send(harness.port, "GET", "/w/big")
    assert got["status"] == 200
    assert got["headers"]["content-length"] == str(size)
    assert got["raw"] == b'{"pad":"' + b"a" * (size - 10) + b'"}'


def test_json_without_length_over_the_check_limit_streams_through(harness: ServeHarness) -> None:
    pieces: list[tuple[int, str]] = [(0, '{"pad":"' + "a" * 700), (20, "b" * 700), (20, '"}')]
    _use(
        harness,
        {"behaviour": "chunks", "content_type": "application/json", "chunks": pieces},
        max_json_check_bytes=1024,
    )
    got = send(harness.port, "GET", "/w/stream")
    assert got["status"] == 200
    assert got["headers"]["x-code24-fallback"] == "false"
    assert got["body"] == "".join(text for _, text in pieces)


def test_json_without_length_under_the_check_limit_is_checked(harness: ServeHarness) -> None:
    pieces = [[0, '{"a": '], [20, "tru"], [20, "e}"]]
    _use(harness, {"behaviour": "chunks", "content_type": "application/json", "chunks": pieces})
    got = send(harness.port, "GET", "/w/stream")
    assert (got["status"], got["body"]) == (200, '{"a": true}')
    assert got["headers"]["content-length"] == "11"

    broken = [[0, '{"a": '], [20, "tru"]]
    _use(harness, {"behaviour": "chunks", "content_type": "application/json", "chunks": broken})
    got = send(harness.port, "GET", "/w/stream")
    assert got["status"] == 502
    assert got["headers"]["x-code24-fallback-reason"] == "upstream_not_json"


@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
def test_worker_stalling_mid_body_times_out(harness: ServeHarness, content_type: str) -> None:
    pieces = [[0, '{"late": '], [1500, "true}"]]
    _use(
        harness,
        {"behaviour": "chunks", "content_type": content_type, "chunks": pieces},
        workers={"w": {"timeout_ms": 300}},
    )
    started = time.monotonic()
    got = send(harness.port, "GET", "/w/stall")
    assert time.monotonic() - started < 1.4
    assert got["status"] == 504
    assert got["headers"]["x-code24-fallback-reason"] == "worker_timeout"
    assert "x-code24-upstream-status" not in got["headers"]


def test_worker_breaking_mid_stream_cuts_the_connection(harness: ServeHarness) -> None:
    pieces = [[0, '{"pad":"' + "a" * 5000]]
    _use(
        harness,
        {
            "behaviour": "chunks",
            "content_type": "application/json",
            "chunks": pieces,
            "reset_after": True,
        },
        max_json_check_bytes=1024,
    )
    with pytest.raises(http.client.IncompleteRead):
        send(harness.port, "GET", "/w/broken")
    _use(harness, {"behaviour": "json", "json": {"still": "up"}})
    assert json.loads(send(harness.port, "GET", "/w/next")["body"]) == {"still": "up"}


def test_gzip_json_is_checked_after_decoding_and_passed_as_is(harness: ServeHarness) -> None:
    _use(harness, {"behaviour": "gzip", "content_type": "application/json", "body": '{"z": 1}'})
    got = send(harness.port, "GET", "/w/gz", [("Accept-Encoding", "gzip")])
    assert got["status"] == 200
    assert got["headers"]["content-encoding"] == "gzip"
    assert json.loads(gzip.decompress(got["raw"])) == {"z": 1}

    page = "<!DOCTYPE html><html>oops</html>"
    _use(harness, {"behaviour": "gzip", "content_type": "application/json", "body": page})
    got = send(harness.port, "GET", "/w/gz", [("Accept-Encoding", "gzip")])
    assert got["status"] == 502
    assert got["headers"]["x-code24-fallback-reason"] == "upstream_html"


def test_head_passes_through(harness: ServeHarness) -> None:
    _use(harness, {"behaviour": "json", "json": {"ok": True}})
    got = send(harness.port, "HEAD", "/w/x")
    assert (got["status"], got["raw"]) == (200, b"")
    assert got["headers"]["x-code24-fallback"] == "false"
    assert got["headers"]["content-length"] == "12"


def test_malformed_request_gets_a_json_400(harness: ServeHarness) -> None:
    with socket.create_connection(("127.0.0.1", harness.port), timeout=5) as sock:
        sock.sendall(b"GET /w/a b c HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"content-type: application/json" in head
    assert json.loads(body)["error"]["code"] == "bad_request"


def test_unexpected_error_is_a_json_500(harness: ServeHarness) -> None:
    # A fallback that cannot be serialised cannot come from a validated config; it stands in
    # for any bug below the catch-all.
    harness.configure(
        {**TABLE, "workers": {"w": {"fallback": {"bad": {1, 2}}}}},
        "test",
        {},
    )
    got = send(harness.port, "GET", "/w/x", [("X-Request-Id", "boom")])
    assert got["status"] == 500
    assert got["headers"]["content-type"] == "application/json"
    assert json.loads(got["body"]) == {
        "error": {
            "code": "internal_error",
            "message": "The dispatcher failed unexpectedly.",
            "worker": None,
            "request_id": "boom",
        }
    }


def _log_lines(harness: ServeHarness, count: int) -> list[str]:
    log: io.StringIO = harness.log  # type: ignore[attr-defined]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = log.getvalue().splitlines()
        if len(lines) >= count:
            return lines
        time.sleep(0.01)
    return log.getvalue().splitlines()


def test_access_log_text_line(harness: ServeHarness) -> None:
    before = len(_log_lines(harness, 0))
    _use(harness, {"behaviour": "raw", "content_type": "text/html", "body": "<html></html>"})
    send(harness.port, "POST", "/w/page?token=secret", [("X-Request-Id", "log-1")], b"{}")
    send(harness.port, "GET", "/nowhere", [("X-Request-Id", "log-2")])
    lines = _log_lines(harness, before + 2)[before:]
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z POST /w/page worker=w status=502 "
        r"reason=upstream_html ms=\d+\.\d\d id=log-1",
        lines[0],
    )
    assert re.fullmatch(
        r"\S+ GET /nowhere worker=- status=404 reason=route_not_found ms=\d+\.\d\d id=log-2",
        lines[1],
    )
    assert "secret" not in "\n".join(lines)  # the query string is never logged


def test_access_log_json_line() -> None:
    stream = io.StringIO()
    log = AccessLog("json", stream)
    log.record(
        method="GET",
        path="/api/x",
        worker="w",
        status=200,
        reason=None,
        ms=1.23456,
        request_id="r1",
    )
    assert log.flush()
    entry = json.loads(stream.getvalue())
    assert set(entry) == {
        "time",
        "method",
        "path",
        "worker",
        "status",
        "reason",
        "ms",
        "request_id",
    }
    assert {k: v for k, v in entry.items() if k != "time"} == {
        "method": "GET",
        "path": "/api/x",
        "worker": "w",
        "status": 200,
        "reason": None,
        "ms": 1.23,
        "request_id": "r1",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])
    silent = io.StringIO()
    AccessLog("off", silent).record(
        method="GET", path="/", worker=None, status=404, reason=None, ms=0, request_id="r"
    )
    assert silent.getvalue() == ""


def test_pool_is_shared_and_closed_at_shutdown() -> None:
    running = ServeHarness(["w"])
    app = running.serve.app
    pool = app.pool
    assert pool is not None and not pool.closed
    running.configure(TABLE, "test", {"w": {"behaviour": "json", "json": {}}})
    for _ in range(3):
        send(running.port, "GET", "/w/x")
    assert app.pool is pool  # one pool for every request
    running.close()
    assert app.pool is None
    assert pool.closed


def test_demo_runs_anywhere_on_the_built_in_config(tmp_path: Path) -> None:
    # A fresh install, run from a folder with no namespaces.yaml and no CODE24_CONFIG.
    env = {k: v for k, v in os.environ.items() if k != "CODE24_CONFIG"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "code24ctl", "serve", "--demo", "--port", "0", "--json"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        got = send(info["port"], "POST", "/elite/design/enhanced", [], b"{}")
        assert got["headers"]["x-code24-fallback-reason"] == "upstream_html"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "no ./namespaces.yaml here: using the built-in Code24 config (" in stderr
    assert (REPO_ROOT / "namespaces.yaml").resolve() == (
        REPO_ROOT / "code24ctl" / "config" / "namespaces.yaml"
    )


# --- A blocked stderr, reload, the admin port ---------------------------------------------


def test_a_blocked_stderr_never_freezes_serve(tmp_path: Path) -> None:
    # stderr is a pipe nobody reads: it fills after a few hundred access lines.
    with ServeHarness(ALIASES, with_serve=False) as workers:
        workers.workers.set({"market-research": {"behaviour": "json", "json": {"ok": 1}}})
        config = local_config(
            tmp_path, {"market-research": workers.workers.urls["market-research"]}
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "code24ctl", "serve", "-c", str(config), "--json", "-p", "0"],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            port = json.loads(proc.stdout.readline())["port"]
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            for number in range(1500):  # ~150 KB of access log: well past a pipe's 64 KiB
                conn.request("GET", f"/api/market/{number}")
                response = conn.getresponse()
                assert (response.status, response.read()) == (200, b'{"ok": 1}')
            conn.close()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0  # SIGTERM still works
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=10)


def _wait_for(serve: ServeProcess, text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while text not in serve.stderr():
        assert time.monotonic() < deadline, f"never saw {text!r} in:\n{serve.stderr()}"
        time.sleep(0.05)


def test_sighup_with_a_broken_config_keeps_the_old_routes(tmp_path: Path) -> None:
    with ServeHarness(ALIASES, with_serve=False) as workers:
        workers.workers.set({"market-research": {"behaviour": "json", "json": {"ok": 1}}})
        config = local_config(
            tmp_path, {"market-research": workers.workers.urls["market-research"]}
        )
        serve = ServeProcess(tmp_path, config=config)
        try:
            config.write_text("routes: [this is not\n", encoding="utf-8")
            serve.proc.send_signal(signal.SIGHUP)
            _wait_for(serve, "warning: reload of ")
            assert "failed, still serving the previous config (5 routes)" in serve.stderr()
            got = send(serve.port, "GET", "/api/market/x")
            assert (got["status"], json.loads(got["body"])) == (200, {"ok": 1})
        finally:
            assert serve.stop() == 0


def test_sighup_with_a_good_config_serves_new_routes_without_dropping_in_flight(
    tmp_path: Path,
) -> None:
    with ServeHarness(ALIASES, with_serve=False) as workers:
        workers.workers.set(
            {
                "market-research": {
                    "behaviour": "slow",
                    "delay_ms": 800,
                    "then": {"behaviour": "json", "json": {"finished": True}},
                },
                "brand-worker": {"behaviour": "json", "json": {"new": True}},
            }
        )
        urls = {alias: workers.workers.urls[alias] for alias in ("market-research", "brand-worker")}
        config = local_config(tmp_path, urls)
        serve = ServeProcess(tmp_path, config=config)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", serve.port, timeout=20)
            conn.request("GET", "/api/market/slow")
            data = repo_config()
            data["environments"]["local"]["upstreams"] = urls
            data["routes"].append({"prefix": "/fresh", "worker": "brand-worker"})
            config.write_text(yaml.safe_dump(data), encoding="utf-8")
            serve.proc.send_signal(signal.SIGHUP)
            _wait_for(serve, "reloaded ")
            assert f"reloaded {config}: 6 routes" in serve.stderr()
            got = send(serve.port, "GET", "/fresh/x")
            assert (got["status"], json.loads(got["body"])) == (200, {"new": True})
            response = conn.getresponse()  # the request in flight across the reload
            assert (response.status, json.loads(response.read())) == (200, {"finished": True})
            conn.close()
        finally:
            assert serve.stop() == 0


def test_watch_reloads_when_the_config_file_changes(tmp_path: Path) -> None:
    with ServeHarness(ALIASES, with_serve=False) as workers:
        workers.workers.set({"brand-worker": {"behaviour": "json", "json": {"new": True}}})
        urls = {"brand-worker": workers.workers.urls["brand-worker"]}
        config = local_config(tmp_path, urls)
        serve = ServeProcess(tmp_path, "--watch", config=config)
        try:
            assert send(serve.port, "GET", "/fresh/x")["status"] == 404
            data = repo_config()
            data["environments"]["local"]["upstreams"] = urls
            data["routes"].append({"prefix": "/fresh", "worker": "brand-worker"})
            config.write_text(yaml.safe_dump(data), encoding="utf-8")
            _wait_for(serve, "reloaded ")
            assert send(serve.port, "GET", "/fresh/x")["status"] == 200
        finally:
            assert serve.stop() == 0


def test_admin_port_has_health_and_metrics_outside_the_routed_space(tmp_path: Path) -> None:
    with ServeHarness(ALIASES, with_serve=False) as workers:
        workers.workers.set(
            {
                "market-research": {"behaviour": "json", "json": {"ok": 1}},
                "designer-worker": {"behaviour": "raw", "content_type": "text/html", "body": "<p>"},
            }
        )
        urls = {a: workers.workers.urls[a] for a in ("market-research", "designer-worker")}
        serve = ServeProcess(tmp_path, "--metrics-port", "0", config=local_config(tmp_path, urls))
        try:
            admin = serve.info["admin_url"]
            admin_port = int(admin.rsplit(":", 1)[1])
            for _ in range(3):
                send(serve.port, "POST", "/api/market/x", [], b"{}")
            send(serve.port, "POST", "/elite/design/x", [], b"{}")
            send(serve.port, "GET", "/nowhere")
            # The routed space has no health endpoint: /healthz is just an unrouted path.
            assert send(serve.port, "GET", "/healthz")["status"] == 404
            health = send(admin_port, "GET", "/healthz")
            assert (health["status"], json.loads(health["body"])) == (
                200,
                {
                    "status": "ok",
                    "environment": "local",
                    "routes": 5,
                    "reloads": 0,
                    "last_reload_error": None,
                },
            )
            text = send(admin_port, "GET", "/metrics")["body"]
        finally:
            assert serve.stop() == 0
    from prometheus_client.parser import text_string_to_metric_families

    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }

    def requests(worker: str, route: str, status: str, reason: str) -> float:
        key = (
            ("fallback_reason", reason),
            ("route", route),
            ("status", status),
            ("worker", worker),
        )
        return samples[("code24_dispatch_requests_total", key)]

    assert requests("market-research", "/api/market", "200", "") == 3
    assert requests("designer-worker", "/elite/design", "200", "upstream_html") == 1
    assert requests("", "", "404", "route_not_found") == 2
    total = sum(v for (name, _), v in samples.items() if name == "code24_dispatch_requests_total")
    assert total == 6  # every answer counted once
    bucket = (
        "code24_dispatch_duration_seconds_bucket",
        (("le", "60.0"), ("route", "/api/market"), ("worker", "market-research")),
    )
    assert samples[bucket] == 3


def test_demo_ports_moves_the_sample_workers(tmp_path: Path, run_cli: RunCli) -> None:
    serve = ServeProcess(tmp_path, "--demo", "--demo-ports", "auto")
    try:
        ports = {int(url.rsplit(":", 1)[1]) for url in serve.info["upstreams"].values()}
        assert len(ports) == 5
        assert not ports & {8788, 8789, 8790, 8791, 8792}
        got = send(serve.port, "POST", "/api/market/research", [], b"{}")
        assert json.loads(got["body"])["worker"] == "market-research"
    finally:
        assert serve.stop() == 0
    result = run_cli("serve", "--demo-ports", "9000")
    assert result.exit_code == 2
    assert "--demo-ports only applies with --demo" in result.stderr


def test_client_limits_are_flags(tmp_path: Path) -> None:
    serve = ServeProcess(tmp_path, "--max-url-bytes", "1024", "--max-header-bytes", "4096")
    try:
        long_url = send(serve.port, "GET", "/api/market/" + "a" * 2000)
        assert (long_url["status"], json.loads(long_url["body"])["error"]["code"]) == (
            414,
            "uri_too_long",
        )
        big = send(serve.port, "GET", "/api/market/x", [("X-Big", "b" * 8000)])
        assert (big["status"], json.loads(big["body"])["error"]["code"]) == (
            431,
            "headers_too_large",
        )
    finally:
        assert serve.stop() == 0
