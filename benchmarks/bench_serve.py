"""``code24ctl serve`` against the alternatives, side by side in one run.

    .venv/bin/python benchmarks/bench_serve.py [--quick] [--rounds N] [--duration S] [--soak S]

One small JSON worker (tests/support/upstreams.py, raw asyncio + httptools + uvloop) on
127.0.0.1, and in front of it, each on its own 127.0.0.1 port:

- direct:  the worker itself (the floor)
- nginx:   nginx as a plain reverse proxy (1 worker process, upstream keep-alive)
- workerd: the JavaScript dispatcher (code24ctl/dispatch/dispatcher.js) in workerd via
           miniflare, its namespace bindings pointing at the worker over HTTP
           (benchmarks/serve_workerd.mjs)
- serve:   ``python -m code24ctl serve`` (uvicorn + httptools + uvloop, its upstream pool),
           access log on (text, to a file)

wrk (1 thread) drives each at concurrency 1 and 32. Runs are interleaved: every round runs every
contender at both concurrencies (the order rotates), and the table shows the median over rounds,
so a noisy neighbour on the machine hits all contenders alike. Then serve alone takes a longer
run at concurrency 32 while its RSS is sampled. Only 127.0.0.1 is ever contacted.

Needs: wrk and nginx (``apt-get install -y wrk nginx``), node 20+ with the test packages
(``npm ci --prefix tests/js``). A missing optional contender is reported and skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
TARGET_PATH = "/api/competitive/analyze-industry"
WORKER_PATH = "/analyze-industry"
WORKER_ANSWER = {
    "worker": "competitive-analysis",
    "industry": "saas",
    "competitors": [{"name": "acme", "threat": "medium"}, {"name": "globex", "threat": "low"}],
    "summary": "Crowded at the top, open in the mid-market.",
}
CONCURRENCIES = (1, 32)
GOAL_THROUGHPUT_RATIO = 2.0
GOAL_P99_MS = 15.0
GOAL_ADDED_P50_MS = 0.25
GOAL_RSS_GROWTH = 0.10


# --------------------------------------------------------------------------------------------
# Processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def wait_http(url: str, path: str, timeout: float = 30) -> None:
    """Until ``url + path`` answers anything."""
    host, port = url.removeprefix("http://").split(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection(host, int(port), timeout=2)
            conn.request("GET", path)
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up in {timeout} s")


def read_json_line(proc: subprocess.Popen[str], timeout: float = 60) -> dict[str, Any]:
    """The first stdout line of ``proc``, as JSON (the process says where it listens)."""
    import selectors

    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(0.2):
                line = proc.stdout.readline()
                if line:
                    document: dict[str, Any] = json.loads(line)
                    return document
            if proc.poll() is not None:
                break
    raise RuntimeError(f"{proc.args!r} did not report ready")


@dataclass
class Contender:
    name: str
    url: str
    path: str
    proc: subprocess.Popen[Any] | None = None
    note: str = ""


def start_worker(work: Path) -> Contender:
    port = free_port()
    proc = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "tests.support.upstreams",
            "--port",
            str(port),
            "--behaviour",
            json.dumps({"behaviour": "json", "json": WORKER_ANSWER}),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=(work / "worker.log").open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url, WORKER_PATH)
    return Contender("direct", url, WORKER_PATH, proc, "the worker itself")


def start_nginx(work: Path, worker_port: int) -> Contender | str:
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if nginx is None:
        return "nginx is not installed (apt-get install -y nginx)"
    port = free_port()
    prefix = work / "nginx"
    prefix.mkdir()
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"""
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {prefix}/body;
  proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi;
  scgi_temp_path {prefix}/scgi;
  upstream worker {{ server 127.0.0.1:{worker_port}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://worker;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
""",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [nginx, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=(work / "nginx.stderr").open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url, TARGET_PATH)
    return Contender("nginx", url, TARGET_PATH, proc, "reverse proxy, 1 worker process")


def route_table_and_config() -> tuple[dict[str, Any], Any]:
    sys.path.insert(0, str(ROOT))
    from code24ctl.config import resolve_config
    from code24ctl.dispatch.table import compile_route_table

    resolved = resolve_config(ROOT / "namespaces.yaml", "local")
    return compile_route_table(resolved.config), resolved.config


def start_workerd(work: Path, worker_port: int) -> Contender | str:
    node = shutil.which("node")
    if node is None:
        return "node is not installed (Node.js 20+, then: npm ci --prefix tests/js)"
    if not (ROOT / "tests/js/node_modules/miniflare").is_dir():
        return "miniflare is not installed (npm ci --prefix tests/js)"
    if not (ROOT / "code24ctl/dispatch/dispatcher.js").exists():
        return "code24ctl/dispatch/dispatcher.js does not exist yet"
    table, config = route_table_and_config()
    spec = work / "workerd.json"
    spec.write_text(
        json.dumps(
            {
                "route_table": table,
                "environment": "bench",
                "compatibility_date": config.compatibility_date,
                "upstreams": {alias: f"127.0.0.1:{worker_port}" for alias in config.workers},
                "port": 0,
            }
        ),
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [node, str(ROOT / "benchmarks/serve_workerd.mjs"), str(spec)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=(work / "workerd.stderr").open("w"),
        text=True,
    )
    url = read_json_line(proc)["url"]
    wait_http(url, TARGET_PATH)
    return Contender("workerd", url, TARGET_PATH, proc, "dispatcher.js in workerd (miniflare)")


def start_serve(work: Path, worker_port: int) -> Contender:
    import yaml

    data = yaml.safe_load((ROOT / "namespaces.yaml").read_text(encoding="utf-8"))
    local = data["environments"]["local"]
    local["upstreams"] = {alias: f"http://127.0.0.1:{worker_port}" for alias in data["workers"]}
    config = work / "namespaces.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    proc = subprocess.Popen(
        [PYTHON, "-m", "code24ctl", "serve", "-c", str(config), "--port", "0", "--json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=(work / "serve.log").open("w"),
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("CODE24_")},
    )
    url = read_json_line(proc)["url"]
    wait_http(url, TARGET_PATH)
    return Contender("serve", url, TARGET_PATH, proc, "code24ctl serve, access log on")


def stop(contender: Contender) -> None:
    proc = contender.proc
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def check_answer(contender: Contender) -> None:
    """Each contender must really answer the worker's JSON (through the dispatcher, if any)."""
    host, port = contender.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("GET", contender.path)
    response = conn.getresponse()
    body = json.loads(response.read())
    conn.close()
    if response.status != 200 or body != WORKER_ANSWER:
        raise RuntimeError(f"{contender.name} answered {response.status} {body!r}")
    if (
        contender.name in ("workerd", "serve")
        and response.getheader("x-code24-fallback") != "false"
    ):
        raise RuntimeError(f"{contender.name} did not dispatch: {response.getheaders()!r}")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


# --------------------------------------------------------------------------------------------
# wrk


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _latency(text: str, percentile: str) -> float:
    match = re.search(rf"^\s+{percentile}%\s+([0-9.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    if not match:
        raise RuntimeError(f"no {percentile}% latency in wrk output:\n{text}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(wrk_path: str, url: str, concurrency: int, seconds: float) -> Run:
    run = subprocess.run(
        [
            wrk_path,
            "-t1",
            f"-c{concurrency}",
            f"-d{seconds:g}s",
            "--latency",
            "--timeout",
            "5s",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    )
    text = run.stdout
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", text).group(1))  # type: ignore[union-attr]
    errors = 0
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", text):
        errors += int(match.group(1))
    if match := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    ):
        errors += sum(int(n) for n in match.groups())
    return Run(rps, _latency(text, "50"), _latency(text, "99"), errors)


# --------------------------------------------------------------------------------------------
# Where serve's time goes: the upstream client, measured alone


class _RawClient(asyncio.Protocol):
    """The least an HTTP/1.1 keep-alive client can do (httptools parser, one connection): a
    yardstick for serve's upstream pool's cost per request, not something serve uses."""

    def __init__(self) -> None:
        import httptools

        self.parser = httptools.HttpResponseParser(self)
        self.transport: Any = None
        self.done: Any = None
        self.body: list[bytes] = []

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    # httptools
    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.done.set_result(b"".join(self.body))
        self.body = []


def client_costs(worker_url: str, requests: int = 2000) -> dict[str, tuple[float, float]]:
    """CPU and wall time per sequential request to the worker: serve's upstream pool (as
    code24ctl.serve.upstream builds it), a shared aiohttp session (serve's client until the
    pool replaced it) and the minimal raw client."""
    import aiohttp
    import uvloop
    from yarl import URL

    sys.path.insert(0, str(ROOT))
    from code24ctl.serve.upstream import new_pool

    host, port = worker_url.removeprefix("http://").split(":")
    raw_request = f"GET {WORKER_PATH} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()

    async def measure(one: Callable[[], Any]) -> tuple[float, float]:
        for _ in range(200):
            await one()
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(requests):
            await one()
        return (
            (time.process_time() - cpu) / requests * 1e6,
            (time.perf_counter() - wall) / requests * 1e6,
        )

    async def main() -> dict[str, tuple[float, float]]:
        pool = new_pool()
        session = aiohttp.ClientSession(
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
        )
        url = URL(worker_url + WORKER_PATH, encoded=True)

        async def with_pool() -> None:
            response = await pool.request(worker_url, "GET", WORKER_PATH, [], timeout_s=30)
            await response.read_up_to(1 << 20)
            response.release()

        async def with_aiohttp() -> None:
            response = await session.request("GET", url, allow_redirects=False)
            await response.read()
            response.release()

        loop = asyncio.get_running_loop()
        _, client = await loop.create_connection(_RawClient, host, int(port))

        async def with_raw() -> None:
            client.done = loop.create_future()
            client.transport.write(raw_request)
            await client.done

        try:
            return {
                "pool": await measure(with_pool),
                "aiohttp": await measure(with_aiohttp),
                "raw": await measure(with_raw),
            }
        finally:
            client.transport.close()
            await session.close()
            await pool.close()

    return uvloop.run(main())


# --------------------------------------------------------------------------------------------
# The run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds of 2 s, a 10 s soak")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (5)")
    parser.add_argument("--duration", type=float, default=None, help="seconds per wrk run (5)")
    parser.add_argument("--soak", type=float, default=None, help="serve RSS run, seconds (60)")
    options = parser.parse_args()
    rounds = options.rounds or (2 if options.quick else 5)
    duration = options.duration or (2.0 if options.quick else 5.0)
    soak = options.soak or (10.0 if options.quick else 60.0)

    wrk_path = shutil.which("wrk")
    if wrk_path is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2

    skipped: dict[str, str] = {}
    started: list[Contender] = []
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    load_before = os.getloadavg()
    try:
        worker = start_worker(work)
        started.append(worker)
        worker_port = int(worker.url.rsplit(":", 1)[1])
        starters: list[tuple[str, Callable[[], Contender | str]]] = [
            ("nginx", lambda: start_nginx(work, worker_port)),
            ("workerd", lambda: start_workerd(work, worker_port)),
            ("serve", lambda: start_serve(work, worker_port)),
        ]
        for name, starter in starters:
            got = starter()
            if isinstance(got, str):
                skipped[name] = got
                print(f"skipping {name}: {got}", file=sys.stderr)
            else:
                started.append(got)
        serve = next(c for c in started if c.name == "serve")
        assert serve.proc is not None
        rss_start = rss_kib(serve.proc.pid)
        for contender in started:
            check_answer(contender)
        plan = len(started) * len(CONCURRENCIES) * rounds * duration + soak + 2 * len(started)
        print(
            f"{len(started)} contenders, {rounds} rounds of {duration:g} s, "
            f"{soak:g} s soak: about {plan / 60:.1f} min",
            file=sys.stderr,
        )
        for contender in started:  # warm up: connection pools, JIT, caches
            wrk(wrk_path, contender.url + contender.path, 32, 2)
        rss_warm = rss_kib(serve.proc.pid)

        runs: dict[tuple[str, int], list[Run]] = {}
        for round_index in range(rounds):
            shift = round_index % len(started)
            order = started[shift:] + started[:shift]
            for contender in order:
                for concurrency in CONCURRENCIES:
                    run = wrk(wrk_path, contender.url + contender.path, concurrency, duration)
                    runs.setdefault((contender.name, concurrency), []).append(run)
            print(f"round {round_index + 1}/{rounds} done", file=sys.stderr)

        samples: list[int] = []
        soak_end = time.monotonic() + soak
        soak_proc = subprocess.Popen(
            [wrk_path, "-t1", "-c32", f"-d{soak:g}s", serve.url + serve.path],
            stdout=subprocess.PIPE,
            text=True,
        )
        while time.monotonic() < soak_end:
            time.sleep(min(10.0, max(0.0, soak_end - time.monotonic())))
            samples.append(rss_kib(serve.proc.pid))
        soak_out, _ = soak_proc.communicate(timeout=60)
        soak_rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", soak_out).group(1))  # type: ignore[union-attr]
        rss_end = rss_kib(serve.proc.pid)
        # serve without the upstream leg: a path no route matches (uvicorn + the request side).
        refusals = statistics.median(
            wrk(wrk_path, serve.url + "/nowhere", 32, duration).rps for _ in range(rounds)
        )
        clients = client_costs(worker.url)
    finally:
        for contender in reversed(started):
            stop(contender)
    load_after = os.getloadavg()

    report(
        runs=runs,
        started=started,
        skipped=skipped,
        rounds=rounds,
        duration=duration,
        soak=soak,
        soak_rps=soak_rps,
        rss=(rss_start, rss_warm, samples, rss_end),
        load=(load_before, load_after),
        refusals=refusals,
        clients=clients,
    )
    return 0


def _median(runs: list[Run]) -> Run:
    return Run(
        statistics.median(r.rps for r in runs),
        statistics.median(r.p50_ms for r in runs),
        statistics.median(r.p99_ms for r in runs),
        sum(r.errors for r in runs),
    )


def report(
    *,
    runs: dict[tuple[str, int], list[Run]],
    started: list[Contender],
    skipped: dict[str, str],
    rounds: int,
    duration: float,
    soak: float,
    soak_rps: float,
    rss: tuple[int, int, list[int], int],
    load: tuple[tuple[float, float, float], tuple[float, float, float]],
    refusals: float,
    clients: dict[str, tuple[float, float]],
) -> None:
    med = {key: _median(value) for key, value in runs.items()}
    names = [c.name for c in started]
    print()
    print(
        f"Machine: {os.cpu_count()} CPUs, {platform.python_implementation()} "
        f"{platform.python_version()}, load average {load[0][0]:.2f} before / "
        f"{load[1][0]:.2f} after. Median of {rounds} interleaved rounds of {duration:g} s "
        "(wrk -t1)."
    )
    print()
    print(
        "| contender | c | req/s | p50 ms | p99 ms | req/s vs direct | serve/workerd req/s |"
        " added p50 vs direct (c1) | errors |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in names:
        for concurrency in CONCURRENCIES:
            run = med[(name, concurrency)]
            floor = med[("direct", concurrency)]
            ratio = f"{run.rps / floor.rps:.2f}x"
            versus = ""
            if name == "serve" and ("workerd", concurrency) in med:
                versus = f"{run.rps / med[('workerd', concurrency)].rps:.2f}x"
            added = ""
            if concurrency == 1 and name != "direct":
                added = f"+{run.p50_ms - floor.p50_ms:.3f} ms"
            print(
                f"| {name} | {concurrency} | {run.rps:,.0f} | {run.p50_ms:.3f} | "
                f"{run.p99_ms:.2f} | {ratio} | {versus} | {added} | {run.errors} |"
            )
    for name, why in skipped.items():
        print(f"| {name} | - | skipped: {why} | | | | | | |")
    rss_start, rss_warm, samples, rss_end = rss
    print()
    print(
        f"serve RSS: {rss_start / 1024:.1f} MiB at start, {rss_warm / 1024:.1f} MiB after "
        f"warm-up, {rss_end / 1024:.1f} MiB after a {soak:g} s run at c32 "
        f"({soak_rps:,.0f} req/s); samples every 10 s: "
        + ", ".join(f"{s / 1024:.1f}" for s in samples)
        + " MiB"
    )

    print()
    print("Where serve's time goes (one core):")
    if ("serve", 32) in med:
        full = med[("serve", 32)].rps
        print(
            f"- serve, whole dispatch at c32: {full:,.0f} req/s = {1e6 / full:.0f} us per request"
        )
    print(
        f"- serve, a 404 (no upstream call) at c32: {refusals:,.0f} req/s = "
        f"{1e6 / refusals:.0f} us per request (uvicorn + the request side)"
    )
    for name, label in (
        ("pool", "serve's upstream pool"),
        ("aiohttp", "a shared aiohttp session (serve's former client)"),
        ("raw", "a minimal raw client"),
    ):
        cpu, wall = clients[name]
        print(
            f"- {label}, one request to the worker, sequential: {cpu:.0f} us CPU, "
            f"{wall:.0f} us wall"
        )
    print()
    print("Goals:")
    serve32 = med.get(("serve", 32))
    work32 = med.get(("workerd", 32))
    if serve32 and work32:
        times = serve32.rps / work32.rps
        verdict = "met" if times >= GOAL_THROUGHPUT_RATIO else "MISSED"
        goal = f"{GOAL_THROUGHPUT_RATIO:g}x workerd"
        print(f"- serve c32 throughput >= {goal}: {times:.2f}x ({verdict})")
    if serve32:
        verdict = "met" if serve32.p99_ms < GOAL_P99_MS else "MISSED"
        print(f"- serve c32 p99 < {GOAL_P99_MS:g} ms: {serve32.p99_ms:.2f} ms ({verdict})")
    serve1, direct1 = med.get(("serve", 1)), med.get(("direct", 1))
    if serve1 and direct1:
        extra = serve1.p50_ms - direct1.p50_ms
        verdict = "met" if extra < GOAL_ADDED_P50_MS else "MISSED"
        print(f"- serve c1 added p50 < {GOAL_ADDED_P50_MS:g} ms: {extra:.3f} ms ({verdict})")
    growth = (rss_end - rss_warm) / rss_warm
    verdict = "met" if growth <= GOAL_RSS_GROWTH else "MISSED"
    print(
        f"- serve memory flat (<= {GOAL_RSS_GROWTH:.0%} growth after warm-up): "
        f"{growth:+.1%} ({verdict})"
    )


if __name__ == "__main__":
    sys.exit(main())
