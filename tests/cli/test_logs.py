"""``code24ctl logs``: the AI workers' own lines and exceptions from Workers Logs (the emulator's
telemetry endpoints), the dispatcher's line for one request joined with the worker's, and a
live tail that Ctrl-C closes.

The platform in front (dispatcher + user Workers) is a small HTTP double on 127.0.0.1: for
each request it answers what the dispatcher would and stores in the emulator what Workers Logs
would hold for it (the worker's invocation, log line and exception; the dispatcher's
structured request line). ``probe`` goes through it, then ``logs`` reads the emulator.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.emulator.seeds import Code24Seed
from tests.emulator.state import EmulatorState
from tests.emulator.telemetry import worker_event
from tests.support.cli import REPO_CONFIG, REPO_ROOT, RunCli
from tests.support.staging import DISPATCHER, NAMESPACE, writes

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
WINDOW = ("--from", "2026-01-01T00:00:00Z", "--to", "2026-01-01T00:10:00Z")
SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
STACK = (
    "TypeError: Cannot read properties of undefined (reading 'palette')\n"
    "    at design (index.js:12:7)\n"
    "    at fetch (index.js:40:12)"
)
QUERY = "/accounts/{account}/workers/observability/telemetry/query"


class Platform:
    """The dispatcher and the workers behind it: ``designer-worker`` throws on every request,
    every other worker answers JSON. Each request is stamped ``T0 + 1 s * n``."""

    def __init__(self, state: EmulatorState, account_id: str) -> None:
        self.state = state
        self.account_id = account_id
        self.count = 0
        self.lock = threading.Lock()

    def handle(
        self, method: str, path: str, headers: dict[str, str]
    ) -> tuple[int, bytes, dict[str, str]]:
        with self.lock:
            self.count += 1
            at = T0 + 1000 * self.count
        offered = headers.get("x-request-id", "")
        request_id = offered if SANE_ID.match(offered) else secrets.token_hex(8)
        worker = "designer-worker" if path.startswith("/elite/design") else "brand-worker"
        invocation = f"cf-{request_id}"
        push = self.state.telemetry.push
        common: dict[str, Any] = {
            "script": worker,
            "request_id": invocation,
            "namespace": NAMESPACE,
            # The dispatcher strips /elite before the worker sees the path (routes' strip).
            "url": f"https://staging.code24.dev{path.removeprefix('/elite')}",
            "method": method,
        }
        if worker == "designer-worker":
            push(
                self.account_id,
                worker_event(
                    **common,
                    timestamp_ms=at,
                    outcome="exception",
                    status=500,
                    code24_request_id=request_id,
                ),
            )
            push(
                self.account_id,
                worker_event(
                    **common,
                    timestamp_ms=at + 2,
                    outcome="exception",
                    message="designing: landing page",
                ),
            )
            push(
                self.account_id,
                worker_event(
                    **common,
                    timestamp_ms=at + 3,
                    outcome="exception",
                    exception=(
                        "TypeError",
                        "Cannot read properties of undefined (reading 'palette')",
                        STACK,
                    ),
                ),
            )
            status, reason = 502, "worker_error"
            body = b'{"status": "degraded", "worker": "designer-worker"}'
        else:
            push(
                self.account_id,
                worker_event(**common, timestamp_ms=at, status=200, code24_request_id=request_id),
            )
            push(self.account_id, worker_event(**common, timestamp_ms=at + 1, message="brand ok"))
            status, reason, body = 200, "", b'{"ok": true}'
        line = {
            "code24": "request",
            "request_id": request_id,
            "method": method,
            "path": path,
            "environment": "staging",
            "worker": worker,
            "route": "/elite/design" if worker == "designer-worker" else "/elite/brand",
            "status": status,
            "upstream_status": 500 if reason else 200,
            "fallback_reason": reason,
            "dispatch_ms": 4,
            "body_bytes": len(body),
        }
        text = json.dumps(line, separators=(",", ":"))
        push(
            self.account_id,
            worker_event(
                script=DISPATCHER,
                timestamp_ms=at + 10,
                message=text,
                request_id=f"cf-d-{request_id}",
            ),
        )
        answer = {
            "Content-Type": "application/json",
            "X-Code24-Worker": worker,
            "X-Code24-Request-Id": request_id,
            "X-Code24-Fallback": "true" if reason else "false",
        }
        if reason:
            answer["X-Code24-Fallback-Reason"] = reason
        return status, body, answer


@pytest.fixture
def platform(cf_state: EmulatorState, cf_seed: Code24Seed) -> Iterator[tuple[Platform, str]]:
    double = Platform(cf_state, cf_seed.account_id)

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, body, extra = double.handle(self.command, self.path, headers)
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield double, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _probe(run_cli: RunCli, cf_env: dict[str, str], base_url: str) -> dict[str, Any]:
    result = run_cli(
        "probe",
        "--env",
        "staging",
        "--base-url",
        base_url,
        "--route",
        "/elite/design",
        "--route",
        "/elite/brand",
        "--json",
        env=cf_env,
    )
    assert result.exit_code == 1, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_probe_json_carries_each_request_id_and_the_table_ends_with_the_logs_command(
    run_cli: RunCli, cf_env: dict[str, str], platform: tuple[Platform, str]
) -> None:
    _, base_url = platform
    document = _probe(run_cli, cf_env, base_url)
    rows = {row["worker"]: row for row in document["routes"]}
    design = rows["designer-worker"]
    assert design["outcome"] == "fail"
    (request_id,) = design["request_ids"]
    assert request_id.startswith("probe-") and design["request_id"] == request_id
    assert len(rows["brand-worker"]["request_ids"]) == 1

    result = run_cli(
        "probe",
        "--env",
        "staging",
        "--base-url",
        base_url,
        "--route",
        "/elite/design",
        "--repeat",
        "2",
        env={**cf_env, "COLUMNS": "200"},
    )
    assert result.exit_code == 1, result.output
    ids = re.findall(r"probe-[0-9a-f]{16}", result.stdout)
    first, second = ids[:2]
    assert f"  request ids: {first}, {second}\n" in result.stdout
    assert (
        f"  logs: code24ctl logs --env staging --worker designer-worker --request-id {first}\n"
        in result.stdout
    )


def test_errors_only_shows_the_exception_and_the_dispatchers_judgement(
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_seed: Code24Seed,
    cf_state: EmulatorState,
    platform: tuple[Platform, str],
) -> None:
    _, base_url = platform
    _probe(run_cli, cf_env, base_url)
    result = run_cli(
        "logs",
        "--env",
        "staging",
        "--worker",
        "designer-worker",
        "--errors-only",
        *WINDOW,
        env=cf_env,
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].endswith("  designer-worker  exception  500  POST /design/enhanced")
    assert lines[1].endswith("  designer-worker  exception  -  designing: landing page")
    assert lines[2].endswith(
        "  designer-worker  exception  -  Cannot read properties of undefined (reading 'palette')"
    )
    assert lines[3] == "    exception TypeError"
    assert lines[4:7] == ["      " + part for part in STACK.splitlines()]
    assert re.search(
        r"  dispatcher -> designer-worker  ok  502  POST /elite/design/enhanced -> 502 "
        r"fallback worker_error$",
        lines[7],
    )
    assert "brand" not in result.stdout
    # The API was asked for the namespace's worker and for the dispatcher, in the window.
    bodies = [
        r.json for r in cf_state.requests() if r.path == QUERY.format(account=cf_seed.account_id)
    ]
    assert [b["parameters"]["filters"][0] for b in bodies] == [
        {
            "key": "$metadata.service",
            "operation": "eq",
            "type": "string",
            "value": "designer-worker",
        },
        {"key": "$metadata.service", "operation": "eq", "type": "string", "value": DISPATCHER},
    ]
    assert bodies[0]["timeframe"] == {"from": T0, "to": T0 + 600_000}


def test_request_id_joins_the_dispatchers_line_and_the_workers_lines_in_time_order(
    run_cli: RunCli, cf_env: dict[str, str], platform: tuple[Platform, str]
) -> None:
    _, base_url = platform
    document = _probe(run_cli, cf_env, base_url)
    rows = {row["worker"]: row for row in document["routes"]}
    (request_id,) = rows["designer-worker"]["request_ids"]
    result = run_cli(
        "logs", "--env", "staging", "--request-id", request_id, *WINDOW, "--json", env=cf_env
    )
    assert result.exit_code == 0, result.output
    logs = json.loads(result.stdout)
    assert logs["command"] == "logs" and logs["namespace"] == NAMESPACE
    assert [(line["source"], line["worker"], line["request_id"]) for line in logs["lines"]] == [
        ("worker", "designer-worker", request_id),
        ("worker", "designer-worker", request_id),
        ("worker", "designer-worker", request_id),
        ("dispatcher", "designer-worker", request_id),
    ]
    stamps = [line["timestamp_ms"] for line in logs["lines"]]
    assert stamps == sorted(stamps)
    assert logs["lines"][2]["exception"] == "TypeError"
    assert logs["lines"][2]["stack"] == STACK
    assert logs["lines"][3]["fallback_reason"] == "worker_error"
    # The brand worker's request is not part of it.
    assert all(line["worker"] == "designer-worker" for line in logs["lines"])


def test_search_and_limit_and_every_worker_by_default(
    run_cli: RunCli, cf_env: dict[str, str], platform: tuple[Platform, str]
) -> None:
    _, base_url = platform
    _probe(run_cli, cf_env, base_url)
    result = run_cli("logs", "--env", "staging", "--search", "BRAND OK", *WINDOW, env=cf_env)
    assert result.exit_code == 0, result.output
    (line,) = result.stdout.splitlines()
    assert line.endswith("  brand-worker  ok  -  brand ok")
    result = run_cli("logs", "--env", "staging", "--limit", "2", *WINDOW, env=cf_env)
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) >= 2
    assert "there may be more: narrow the window or raise --limit" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--worker", "nope"), "--worker 'nope' is not a worker of the config"),
        (("--since", "soon"), "--since 'soon' is not a duration"),
        (("--since", "8d"), "the window is longer than Workers Logs keeps events (7 days)"),
        (("--from", "yesterday"), "--from 'yesterday' is not a time"),
        (
            ("--from", "2026-01-02T00:00:00Z", "--to", "2026-01-01T00:00:00Z"),
            "--from must be earlier than --to",
        ),
        (("--since", "1h", "--from", "2026-01-01T00:00:00Z"), "give --since or --from, not both"),
        (("--follow", "--request-id", "x"), "--follow streams what happens next"),
    ],
)
def test_bad_options_are_usage_errors(
    run_cli: RunCli, cf_env: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    result = run_cli("logs", "--env", "staging", *args, env=cf_env)
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_a_local_environment_has_no_workers_logs(run_cli: RunCli, cf_env: dict[str, str]) -> None:
    result = run_cli("logs", "--env", "local", env=cf_env)
    assert result.exit_code == 2, result.output
    assert "is local (it has upstreams); this command needs a Cloudflare environment" in (
        result.stderr
    )


def test_a_token_without_the_observability_permission_gets_a_hint_naming_it(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    cf_state.add_token("no-observability", deny=["observability"])
    env = {**cf_env, "CLOUDFLARE_API_TOKEN": "no-observability"}
    result = run_cli("logs", "--env", "staging", env=env)
    assert result.exit_code == 3, result.output
    assert "error: query Workers Logs: Cloudflare API error 10000" in result.stderr
    assert "Workers Observability" in result.stderr


def test_follow_streams_with_a_heartbeat_and_ctrl_c_closes_the_live_tail(
    cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed, tmp_path: Path
) -> None:
    env = {**os.environ, **cf_env, "CODE24_CONFIG": str(REPO_CONFIG), "COLUMNS": "200"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "code24ctl",
            "logs",
            "--env",
            "staging",
            "--follow",
            "--worker",
            "designer-worker",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not cf_state.telemetry.heartbeats and time.monotonic() < deadline:
            time.sleep(0.02)
        assert cf_state.telemetry.heartbeats, "no heartbeat came"
        now = int(time.time() * 1000)
        cf_state.telemetry.push(
            cf_seed.account_id,
            worker_event(script="brand-worker", timestamp_ms=now, message="not this one"),
        )
        cf_state.telemetry.push(
            cf_seed.account_id,
            worker_event(
                script="designer-worker", timestamp_ms=now, message="live line", outcome="ok"
            ),
        )
        (shown,) = _read_lines(process, 1, timeout_s=60)
        assert shown.endswith("  designer-worker  ok  -  live line")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err.decode()
    assert out.decode() == ""
    base = f"/accounts/{cf_seed.account_id}/workers/observability/telemetry"
    assert writes(cf_state)[:2] == [f"POST {base}/live-tail", f"POST {base}/live-tail/heartbeat"]
    (tail,) = cf_state.telemetry.tails()
    assert tail.filters == [
        {
            "key": "$metadata.service",
            "operation": "eq",
            "type": "string",
            "value": "designer-worker",
        }
    ]
    deadline = time.monotonic() + 10
    while not tail.closed and time.monotonic() < deadline:
        time.sleep(0.02)
    assert tail.closed
    assert err.decode().endswith("live tail closed\ninterrupted\n")


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
            pytest.fail(f"logs printed {buffer!r} before ending or timing out")
        if selector.select(left):
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                break
            buffer += chunk
    return buffer.decode().splitlines()


def test_follow_errors_only_as_json_lines_stops_after_max_events(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    def push_when_open() -> None:
        deadline = time.monotonic() + 30
        while not cf_state.telemetry.heartbeats and time.monotonic() < deadline:
            time.sleep(0.01)
        push = cf_state.telemetry.push
        push(
            cf_seed.account_id, worker_event(script="brand-worker", timestamp_ms=T0, message="fine")
        )
        push(cf_seed.account_id, worker_event(
            script="brand-worker", timestamp_ms=T0 + 1, outcome="exception",
            exception=("RangeError", "too far", "RangeError: too far"),
        ))  # fmt: skip

    pusher = threading.Thread(target=push_when_open)
    pusher.start()
    result = run_cli(
        "logs", "--env", "staging", "--follow", "--errors-only", "--json", "--max-events", "1",
        env=cf_env,
    )  # fmt: skip
    pusher.join()
    assert result.exit_code == 0, result.output
    (line,) = [json.loads(text) for text in result.stdout.splitlines()]
    assert (line["worker"], line["exception"], line["message"]) == (
        "brand-worker", "RangeError", "too far",
    )  # fmt: skip
    (tail,) = cf_state.telemetry.tails()
    assert tail.filters[0]["operation"] == "in"  # every worker of the config
    assert result.stderr.endswith("live tail closed\n")


def test_vv_masks_the_live_tail_address_and_the_token(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    # The live tail socket is opened with its address alone: -vv must not hand it out.
    def push_when_open() -> None:
        deadline = time.monotonic() + 30
        while not cf_state.telemetry.heartbeats and time.monotonic() < deadline:
            time.sleep(0.01)
        cf_state.telemetry.push(
            cf_seed.account_id, worker_event(script="brand-worker", timestamp_ms=T0, message="x")
        )

    pusher = threading.Thread(target=push_when_open)
    pusher.start()
    result = run_cli("-vv", "logs", "--env", "staging", "--follow", "--max-events", "1", env=cf_env)
    pusher.join()
    assert result.exit_code == 0, result.output
    assert '"result":{"wsUrl":"***"}' in result.stderr
    assert "/observability/live-tail/" not in result.output
    assert cf_env["CLOUDFLARE_API_TOKEN"] not in result.output


def test_a_refused_live_tail_socket_is_a_network_error_without_its_address(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState
) -> None:
    cf_state.telemetry.refuse_sockets = True
    result = run_cli("logs", "--env", "staging", "--follow", env=cf_env)
    assert result.exit_code == 3, result.output
    assert result.stdout == ""
    assert result.stderr.endswith(
        "error: cannot open the Workers Logs live tail (InvalidStatus: server rejected "
        "WebSocket connection: HTTP 403)\n"
        "  hint: check your network; the live tail host must be reachable over wss://\n"
    )
    assert "/observability/live-tail/" not in result.stderr
