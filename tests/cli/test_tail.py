"""``code24ctl tail``: a tail session on the staging dispatcher in the emulator, its trace-v1
WebSocket, client-side filters, and the session deleted however the command ends."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.emulator.seeds import Code24Seed
from tests.emulator.state import EmulatorState
from tests.emulator.tail import dispatcher_event
from tests.support.cli import REPO_CONFIG, REPO_ROOT, RunCli
from tests.support.staging import DISPATCHER, add_other_worker, writes

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z

EVENTS = [
    dispatcher_event(
        request_id="r1",
        method="POST",
        path="/api/competitive/analyze-industry",
        worker="competitive-analysis",
        route="/api/competitive",
        upstream_status=200,
        dispatch_ms=12,
        timestamp_ms=T0,
    ),
    dispatcher_event(
        request_id="r2",
        path="/api/market/research",
        worker="market-research",
        route="/api/market",
        upstream_status=200,
        fallback_reason="upstream_html",
        dispatch_ms=48,
        timestamp_ms=T0 + 1000,
    ),
    dispatcher_event(
        request_id="r3",
        path="/elite/brand/create",
        worker="brand-worker",
        route="/elite/brand",
        upstream_status=200,
        dispatch_ms=7,
        timestamp_ms=T0 + 2000,
    ),
    dispatcher_event(
        request_id="r4",
        method="POST",
        path="/elite/design/enhanced",
        worker="designer-worker",
        route="/elite/design",
        status=502,
        fallback_reason="worker_error",
        dispatch_ms=3,
        timestamp_ms=T0 + 3000,
        extra_logs=[("error", "[Code24 dispatcher] worker threw (request r4): boom")],
    ),
    dispatcher_event(
        request_id="r5",
        path="/nowhere",
        status=404,
        fallback_reason="route_not_found",
        dispatch_ms=0,
        timestamp_ms=T0 + 4000,
    ),
]

FALLBACK_LINES = [
    "2026-01-01T00:00:01.000Z  GET  /api/market/research  market-research  200  upstream_html  "
    "48ms  r2",
    "2026-01-01T00:00:03.000Z  POST  /elite/design/enhanced  designer-worker  502  worker_error  "
    "3ms  r4",
    "    (error) [Code24 dispatcher] worker threw (request r4): boom",
    "2026-01-01T00:00:04.000Z  GET  /nowhere  -  404  route_not_found  0ms  r5",
]


def push_all(state: EmulatorState, seed: Code24Seed, events: list[dict[str, object]]) -> None:
    for event in events:
        state.tails.push(seed.account_id, DISPATCHER, event)


@pytest.fixture
def dispatcher_deployed(cf_state: EmulatorState, cf_seed: Code24Seed) -> None:
    """The staging dispatcher exists (tails need a script; its code does not matter here)."""
    add_other_worker(cf_state, cf_seed.account_id, DISPATCHER)


def tail_paths(seed: Code24Seed) -> tuple[str, str]:
    base = f"/accounts/{seed.account_id}/workers/scripts/{DISPATCHER}/tails"
    return base, base + "/"


@pytest.mark.usefixtures("dispatcher_deployed")
def test_fallbacks_only_shows_only_fallbacks_and_deletes_the_session(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    push_all(cf_state, cf_seed, EVENTS)
    before = len(writes(cf_state))
    result = run_cli(
        "tail", "--env", "staging", "--fallbacks-only", "--max-events", "3", env=cf_env
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == FALLBACK_LINES
    (session,) = cf_state.tails.sessions(cf_seed.account_id, DISPATCHER)
    assert session.deleted
    create, _ = tail_paths(cf_seed)
    assert writes(cf_state)[before:] == [f"POST {create}", f"DELETE {create}/{session.id}"]
    assert result.stderr == (
        f"tailing {DISPATCHER} (session {session.id}); Ctrl-C to stop\n"
        f"tail session {session.id} deleted\n"
    )


@pytest.mark.usefixtures("dispatcher_deployed")
def test_worker_filter_and_json_lines(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    push_all(cf_state, cf_seed, [*EVENTS, EVENTS[0]])
    result = run_cli(
        "tail",
        "--env",
        "staging",
        "--worker",
        "competitive-analysis",
        "--format",
        "json",
        "--max-events",
        "2",
        env=cf_env,
    )
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(events) == 2
    assert events[0] == {
        "time": "2026-01-01T00:00:00.000Z",
        "outcome": "ok",
        "request": {
            "request_id": "r1",
            "method": "POST",
            "path": "/api/competitive/analyze-industry",
            "worker": "competitive-analysis",
            "route": "/api/competitive",
            "status": 200,
            "upstream_status": 200,
            "fallback_reason": "",
            "dispatch_ms": 12.0,
        },
        "logs": [],
        "exceptions": [],
    }
    assert all(e["request"]["worker"] == "competitive-analysis" for e in events)


@pytest.mark.usefixtures("dispatcher_deployed")
def test_pretty_shows_logs_exceptions_and_events_without_a_request_line(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    crashed = {
        "outcome": "exception",
        "scriptName": None,
        "exceptions": [{"name": "TypeError", "message": "x is undefined", "timestamp": T0}],
        "logs": [{"message": ["starting", {"n": 1}], "level": "warn", "timestamp": T0}],
        "eventTimestamp": T0,
        "event": {"request": {"url": "https://staging.code24.dev/api/x?q=1", "method": "GET"}},
    }
    push_all(cf_state, cf_seed, [crashed])
    result = run_cli("tail", "--env", "staging", "--max-events", "1", env=cf_env)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "2026-01-01T00:00:00.000Z  GET  /api/x  -  -  -  -  -",
        '    (warn) starting {"n":1}',
        "    exception TypeError: x is undefined",
    ]


def test_tail_of_a_dispatcher_never_deployed_is_an_api_error(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState
) -> None:
    result = run_cli("tail", "--env", "staging", "--max-events", "1", env=cf_env)
    assert result.exit_code == 3
    assert f"error: start a tail on {DISPATCHER}: Cloudflare API error 10007" in result.stderr
    assert cf_state.tails.sessions() == []


def test_unknown_worker_is_a_usage_error(run_cli: RunCli, cf_env: dict[str, str]) -> None:
    result = run_cli("tail", "--env", "staging", "--worker", "nope", env=cf_env)
    assert result.exit_code == 2
    assert "--worker 'nope' is not a worker of the config" in result.stderr


@pytest.mark.usefixtures("dispatcher_deployed")
def test_ctrl_c_closes_and_deletes_the_session(
    cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed, tmp_path: Path
) -> None:
    """A real process and a real SIGINT: the fallback lines, then exit 130 and a DELETE."""
    push_all(cf_state, cf_seed, EVENTS)
    env = {**os.environ, **cf_env, "CODE24_CONFIG": str(REPO_CONFIG), "COLUMNS": "200"}
    process = subprocess.Popen(
        [sys.executable, "-m", "code24ctl", "tail", "--env", "staging", "--fallbacks-only"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        shown = _read_lines(process, len(FALLBACK_LINES), timeout_s=60)
        assert shown == FALLBACK_LINES
        # Every event was sent before the last fallback arrived: nothing else may print.
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err.decode()
    assert out.decode() == ""
    (session,) = cf_state.tails.sessions(cf_seed.account_id, DISPATCHER)
    assert session.deleted
    create, _ = tail_paths(cf_seed)
    assert f"DELETE {create}/{session.id}" in writes(cf_state)
    assert err.decode().endswith(f"tail session {session.id} deleted\ninterrupted\n")


def _read_lines(process: subprocess.Popen[bytes], count: int, timeout_s: float) -> list[str]:
    """Read ``count`` stdout lines, failing (not hanging) if they do not come in time."""
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    buffer = b""
    deadline = time.monotonic() + timeout_s
    while buffer.count(b"\n") < count:
        left = deadline - time.monotonic()
        if left <= 0 or process.poll() is not None:
            pytest.fail(f"tail printed {buffer!r} before ending or timing out")
        if selector.select(left):
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                break
            buffer += chunk
    return buffer.decode().splitlines()


# ------------------------------------------------------------------------------------------
# Expiring sessions and silent sockets


@pytest.mark.usefixtures("dispatcher_deployed")
def test_tail_opens_a_new_session_when_one_expires_and_says_so(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    # The emulator's first session lives one second: it then stops delivering without closing
    # the socket, as the real backend does. The second event only exists once a new session
    # is open, so tail shows it only if it noticed the expiry and opened one.
    cf_state.tails.session_s = 1.0

    def push_after_renewal() -> None:
        deadline = time.monotonic() + 30
        while not cf_state.tails.sessions(cf_seed.account_id, DISPATCHER):
            time.sleep(0.01)
        cf_state.tails.session_s = 3600.0  # the first session already has its one second
        cf_state.tails.push(cf_seed.account_id, DISPATCHER, EVENTS[0])
        while len(cf_state.tails.sessions(cf_seed.account_id, DISPATCHER)) < 2:
            if time.monotonic() > deadline:
                return
            time.sleep(0.01)
        cf_state.tails.push(cf_seed.account_id, DISPATCHER, EVENTS[2])

    pusher = threading.Thread(target=push_after_renewal)
    pusher.start()
    result = run_cli("tail", "--env", "staging", "--max-events", "2", env=cf_env)
    pusher.join()

    assert result.exit_code == 0, result.output
    first, second = cf_state.tails.sessions(cf_seed.account_id, DISPATCHER)
    assert first.deleted and second.deleted
    assert [line.split("  ")[-1] for line in result.stdout.splitlines()] == ["r1", "r3"]
    expires = first.to_api("emulator")["expires_at"]
    assert result.stderr == (
        f"tailing {DISPATCHER} (session {first.id}); Ctrl-C to stop\n"
        f"tail session {first.id} expired at {expires}; opened session {second.id}\n"
        f"tail session {second.id} deleted\n"
    )


class SilentSocket:
    """A WebSocket endpoint that completes the trace-v1 handshake and then answers nothing,
    not even a ping: a connection that died without either side closing it."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"ws://127.0.0.1:{self._server.getsockname()[1]}/tail/silent"
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(4096)
            key = re.search(rb"(?i)sec-websocket-key:\s*(\S+)", head)
            assert key is not None
            guid = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
            accept = base64.b64encode(hashlib.sha1(key.group(1) + guid).digest())
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n"
                b"Sec-WebSocket-Protocol: trace-v1\r\n\r\n"
            )
            while True:
                chunk = conn.recv(4096)
                # Gone, or the client's close frame (0x88): hang up without answering it.
                if not chunk or chunk[:1] == b"\x88":
                    return

    def close(self) -> None:
        self._server.close()


@pytest.fixture
def silent() -> Iterator[SilentSocket]:
    server = SilentSocket()
    yield server
    server.close()


@pytest.mark.usefixtures("dispatcher_deployed")
def test_a_silent_socket_is_reconnected_with_backoff(
    cf_client: Any, cf_state: EmulatorState, cf_seed: Code24Seed, silent: SilentSocket
) -> None:
    from code24ctl.cloudflare.session import CloudflareSession
    from code24ctl.ops.tail import run_tail

    cf_state.tails.next_urls = [silent.url]
    push_all(cf_state, cf_seed, EVENTS[:2])
    notes: list[str] = []
    slept: list[float] = []
    shown: list[str] = []
    outcome = run_tail(
        CloudflareSession.over(cf_client, cf_seed.account_id),
        DISPATCHER,
        lambda event: shown.append(event.request.request_id if event.request else "?"),
        max_events=2,
        on_note=notes.append,
        ping_interval_s=0.2,
        backoff_s=(0.05, 0.1),
        sleep=slept.append,
    )
    first, second = cf_state.tails.sessions(cf_seed.account_id, DISPATCHER)
    assert silent.connections == 1
    assert shown == ["r1", "r2"]
    assert slept == [0.05]
    assert notes == [
        "tail connection lost: no answer to a keep-alive ping within 0.2s; reconnecting "
        "(attempt 1 of 2) in 0.05s",
        f"reconnected: tail session {second.id}",
    ]
    assert first.deleted and second.deleted
    assert outcome.session.id == second.id and outcome.deleted


@pytest.mark.usefixtures("dispatcher_deployed")
def test_tail_gives_up_after_the_last_backoff(
    cf_client: Any, cf_state: EmulatorState, cf_seed: Code24Seed, silent: SilentSocket
) -> None:
    from code24ctl.cloudflare.session import CloudflareSession
    from code24ctl.errors import NetworkError
    from code24ctl.ops.tail import run_tail

    cf_state.tails.next_urls = [silent.url] * 3
    notes: list[str] = []
    with pytest.raises(NetworkError) as lost:
        run_tail(
            CloudflareSession.over(cf_client, cf_seed.account_id),
            DISPATCHER,
            lambda event: None,
            on_note=notes.append,
            ping_interval_s=0.1,
            backoff_s=(0.0, 0.0),
            sleep=lambda _s: None,
        )
    assert lost.value.message == (
        f"the tail connection for {DISPATCHER} is lost: 2 reconnect attempts failed"
    )
    assert silent.connections == 3
    assert len(notes) == 4
    assert all(s.deleted for s in cf_state.tails.sessions(cf_seed.account_id, DISPATCHER))
