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
- serve-workerd: ``serve --runtime workerd``, each alias at the same worker's URL (the
           deployed dispatcher.js in workerd, as `workerd`, but started and logged by serve)
- serve-workerd-code: ``serve --runtime workerd`` with the worker as real JavaScript Worker
           code (``path:``) answering the same JSON inside workerd: no HTTP hop to a worker

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
sys.path.insert(0, str(ROOT / "benchmarks"))
PYTHON = sys.executable
TARGET_PATH = "/api/competitive/analyze-industry"
WORKER_PATH = "/analyze-industry"
WORKER_ANSWER = {
    "worker": "competitive-analysis",
    "industry": "saas",
    "competitors": [{"name": "acme", "threat": "medium"}, {"name": "globex", "threat": "low"}],
    "summary": "Crowded at the top, open in the mid-market.",
}
# The worker's answer as JavaScript Worker code (the serve-workerd-code contender).
WORKER_CODE = (
    "const BODY = JSON.stringify(" + json.dumps(WORKER_ANSWER) + ");\n"
    "export default {\n"
    "  async fetch() {\n"
    '    return new Response(BODY, { headers: { "content-type": "application/json" } });\n'
    "  },\n"
    "};\n"
)
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


def start_nginx(work: Path, worker_port: int, *, keepalive: bool = True) -> Contender | str:
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if nginx is None:
        return "nginx is not installed (apt-get install -y nginx)"
    port = free_port()
    prefix = work / f"nginx-{port}"
    prefix.mkdir()
    conf = prefix / "nginx.conf"
    # Upstream keep-alive needs HTTP/1.1; without it nginx's default is HTTP/1.0, one
    # connection per request.
    keepalive_lines = (
        '\n      proxy_http_version 1.1;\n      proxy_set_header Connection "";'
        if keepalive
        else ""
    )
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
  upstream worker {{ server 127.0.0.1:{worker_port};{" keepalive 64;" if keepalive else ""} }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://worker;{keepalive_lines}
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


def route_table_and_config(source: Path | None = None) -> tuple[dict[str, Any], Any]:
    sys.path.insert(0, str(ROOT))
    from code24ctl.config import resolve_config
    from code24ctl.dispatch.table import compile_route_table

    resolved = resolve_config(source or ROOT / "namespaces.yaml", "local")
    return compile_route_table(resolved.config), resolved.config


def start_workerd(work: Path, worker_port: int, source: Path | None = None) -> Contender | str:
    node = shutil.which("node")
    if node is None:
        return "node is not installed (Node.js 20+, then: npm ci --prefix tests/js)"
    if not (ROOT / "tests/js/node_modules/miniflare").is_dir():
        return "miniflare is not installed (npm ci --prefix tests/js)"
    if not (ROOT / "code24ctl/dispatch/dispatcher.js").exists():
        return "code24ctl/dispatch/dispatcher.js does not exist yet"
    table, config = route_table_and_config(source)
    spec = work / f"workerd-{time.monotonic_ns()}.json"
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


def start_serve(
    work: Path,
    worker_port: int,
    source: Path | None = None,
    extra: tuple[str, ...] = (),
    name: str = "serve",
    *,
    code: bool = False,
) -> Contender:
    """``code24ctl serve`` in front of the worker; ``code``: the aliases run WORKER_CODE as
    ``path:`` Workers instead (workerd runtime)."""
    import yaml

    data = yaml.safe_load((source or ROOT / "namespaces.yaml").read_text(encoding="utf-8"))
    local = data["environments"]["local"]
    local["upstreams"] = {alias: f"http://127.0.0.1:{worker_port}" for alias in data["workers"]}
    if code:
        folder = work / "worker-code"
        folder.mkdir(exist_ok=True)
        (folder / "index.js").write_text(WORKER_CODE, encoding="utf-8")
        local["upstreams"] = {}
        for worker in data["workers"].values():
            worker.pop("script", None)
            worker["path"] = str(folder)
    config = work / f"namespaces-{time.monotonic_ns()}.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODE24_")}
    # The workerd runtime uses the tests' miniflare (nothing installed for the benchmark).
    env["CODE24_NODE_MODULES"] = str(ROOT / "tests" / "js" / "node_modules")
    proc = subprocess.Popen(
        [PYTHON, "-m", "code24ctl", "serve", "-c", str(config), "--port", "0", "--json", *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=(work / f"{name}.log").open("w"),
        text=True,
        env=env,
    )
    url = read_json_line(proc, timeout=120)["url"]
    wait_http(url, TARGET_PATH)
    return Contender(name, url, TARGET_PATH, proc, f"code24ctl serve {' '.join(extra)}".strip())


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
    if (contender.name == "workerd" or contender.name.startswith("serve")) and response.getheader(
        "x-code24-fallback"
    ) != "false":
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
    code24ctl.serve.http.upstream builds it), a shared aiohttp session (serve's client until the
    pool replaced it) and the minimal raw client."""
    import aiohttp
    import uvloop
    from yarl import URL

    sys.path.insert(0, str(ROOT))
    from code24ctl.serve.http.upstream import new_pool

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


# --------------------------------------------------------------------------------------------
# Latency, measured one request at a time by a client that never delays its ACKs


def latency_ms(url: str, path: str, requests: int) -> tuple[float, float]:
    """p50 and p99 of ``requests`` sequential POSTs on a keep-alive connection (a new one when
    the server closes it). The client ACKs at once after every read (TCP_QUICKACK) so its own
    delayed ACKs never stall a server that writes twice; wrk's would, and "direct" would then
    measure the client, not the worker."""
    import httptools

    host, port = url.removeprefix("http://").split(":")
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        "Content-Length: 2\r\n\r\n{}"
    ).encode()
    quickack = getattr(socket, "TCP_QUICKACK", None)

    class Answer:
        done = False
        keep = True

        def on_message_complete(self) -> None:
            self.done = True

    sock: socket.socket | None = None
    times: list[float] = []
    for _ in range(requests):
        if sock is None:
            sock = socket.create_connection((host, int(port)))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        answer = Answer()
        parser = httptools.HttpResponseParser(answer)
        started = time.perf_counter()
        sock.sendall(request)
        while not answer.done:
            data = sock.recv(65536)
            if quickack is not None:
                sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)
            if not data:
                parser.feed_data(b"")  # close-delimited body: its end
                answer.done = True
                break
            parser.feed_data(data)
        times.append((time.perf_counter() - started) * 1000)
        if not parser.should_keep_alive():
            sock.close()
            sock = None
    if sock is not None:
        sock.close()
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]


def upstream_kinds_suite(requests: int, rounds: int, use_nginx: bool) -> int:
    """Added p50/p99 over direct, per upstream kind, through serve (and nginx)."""
    work = Path(tempfile.mkdtemp(prefix="bench-kinds-"))
    rows: list[tuple[str, str, float, float, float, float]] = []
    nginx_missing = use_nginx and shutil.which("nginx") is None
    if nginx_missing:
        print(
            "nginx is not installed (apt-get install -y nginx); run with --no-nginx",
            file=sys.stderr,
        )
        return 2
    from misbehaving_worker import KINDS

    for kind in KINDS:
        port = free_port()
        worker_proc = subprocess.Popen(
            [
                PYTHON,
                str(ROOT / "benchmarks/misbehaving_worker.py"),
                "--kind",
                kind,
                "--port",
                str(port),
            ],
            stdout=subprocess.DEVNULL,
        )
        started: list[Contender] = [
            Contender("direct", f"http://127.0.0.1:{port}", WORKER_PATH, worker_proc)
        ]
        try:
            wait_http(started[0].url, WORKER_PATH)
            started.append(start_serve(work, port, extra=("--access-log", "off")))
            if use_nginx:
                # nginx's defaults toward upstreams: HTTP/1.0, a new connection per request
                # (with upstream keep-alive it meets the delayed-ACK stall on split writes).
                got = start_nginx(work, port, keepalive=False)
                assert not isinstance(got, str), got
                started.append(got)
            results: dict[str, list[tuple[float, float]]] = {}
            for contender in started:  # warm-up
                latency_ms(contender.url, contender.path, 200)
            for _ in range(rounds):
                for contender in started:
                    results.setdefault(contender.name, []).append(
                        latency_ms(contender.url, contender.path, requests)
                    )
            direct = results["direct"]
            d50 = statistics.median(r[0] for r in direct)
            d99 = statistics.median(r[1] for r in direct)
            for contender in started[1:]:
                mine = results[contender.name]
                p50 = statistics.median(r[0] for r in mine)
                p99 = statistics.median(r[1] for r in mine)
                rows.append((kind, contender.name, d50, d99, p50 - d50, p99 - d99))
        finally:
            for contender in reversed(started):
                stop(contender)
    print()
    print(
        f"Upstream kinds (benchmarks/misbehaving_worker.py, http.server), c1, {requests} "
        f"requests x {rounds} rounds, median of rounds; load average {os.getloadavg()[0]:.2f}"
    )
    print()
    print(
        "| upstream | through | direct p50 ms | direct p99 ms | added p50 ms | added p99 ms "
        "| goal |"
    )
    print("|---|---|---|---|---|---|---|")
    for kind, name, d50, d99, a50, a99 in rows:
        goal = "met" if a50 < 0.3 and a99 < 2 else "MISSED"
        if name != "serve":
            goal = ""
        print(f"| {kind} | {name} | {d50:.3f} | {d99:.3f} | {a50:+.3f} | {a99:+.3f} | {goal} |")
    return 0


def write_routes_config(work: Path, count: int) -> Path:
    """The shipped config plus tenant routes up to ``count`` routes, each prefix longer than
    the benchmark's target route, so a scan longest-first would pass all of them first."""
    import yaml

    data = yaml.safe_load((ROOT / "namespaces.yaml").read_text(encoding="utf-8"))
    aliases = list(data["workers"])
    for index in range(count - len(data["routes"])):
        data["routes"].append(
            {"prefix": f"/tenant-{index:05d}/app", "worker": aliases[index % len(aliases)]}
        )
    path = work / f"routes-{count}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def routes_suite(counts: list[int], requests: int, rounds: int) -> int:
    """c1 added latency through serve and workerd with ``counts`` routes."""
    work = Path(tempfile.mkdtemp(prefix="bench-routes-"))
    worker = start_worker(work)
    worker_port = int(worker.url.rsplit(":", 1)[1])
    started: list[Contender] = [worker]
    try:
        for count in counts:
            source = write_routes_config(work, count)
            started.append(
                start_serve(work, worker_port, source, ("--access-log", "off"), f"serve-{count}")
            )
            got = start_workerd(work, worker_port, source)
            if isinstance(got, str):
                print(f"workerd: {got}", file=sys.stderr)
                return 2
            got.name = f"workerd-{count}"
            started.append(got)
        for contender in started:
            latency_ms(contender.url, contender.path, 300)
        results: dict[str, list[float]] = {}
        for _ in range(rounds):
            for contender in started:
                results.setdefault(contender.name, []).append(
                    latency_ms(contender.url, contender.path, requests)[0]
                )
    finally:
        for contender in reversed(started):
            stop(contender)
    direct = statistics.median(results["direct"])
    print()
    print(
        f"Route table size, c1 added p50 over direct ({direct:.3f} ms), {requests} requests x "
        f"{rounds} rounds; target /api/competitive/... is passed last by a longest-first scan; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print()
    print("| routes | serve added p50 ms | workerd added p50 ms |")
    print("|---|---|---|")
    added = {name: statistics.median(values) - direct for name, values in results.items()}
    for count in counts:
        print(f"| {count:,} | {added[f'serve-{count}']:+.3f} | {added[f'workerd-{count}']:+.3f} |")
    first, last = counts[0], counts[-1]
    for impl in ("serve", "workerd"):
        ratio = added[f"{impl}-{last}"] / added[f"{impl}-{first}"]
        verdict = "met" if ratio <= 1.2 else "MISSED"
        print(
            f"- {impl}: {last:,} routes / {first:,} routes = {ratio:.2f}x ({verdict}, goal <= 1.2x)"
        )
    return 0


def metrics_suite(rounds: int, duration: float) -> int:
    """serve's c32 throughput with and without --metrics-port, interleaved."""
    wrk_path = shutil.which("wrk")
    if wrk_path is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench-metrics-"))
    worker = start_worker(work)
    worker_port = int(worker.url.rsplit(":", 1)[1])
    started: list[Contender] = [worker]
    try:
        started.append(start_serve(work, worker_port, name="serve"))
        started.append(
            start_serve(work, worker_port, extra=("--metrics-port", "0"), name="serve+metrics")
        )
        for contender in started[1:]:
            wrk(wrk_path, contender.url + contender.path, 32, 2)
        runs: dict[str, list[Run]] = {}
        for index in range(rounds):
            order = started[1:] if index % 2 == 0 else started[:0:-1]
            for contender in order:
                runs.setdefault(contender.name, []).append(
                    wrk(wrk_path, contender.url + contender.path, 32, duration)
                )
    finally:
        for contender in reversed(started):
            stop(contender)
    plain, measured = _median(runs["serve"]), _median(runs["serve+metrics"])
    cost = (1e6 / measured.rps) - (1e6 / plain.rps)
    share = 1 - measured.rps / plain.rps
    print()
    print(
        f"Metrics on vs off, serve at c32 (wrk -t1), median of {rounds} interleaved rounds of "
        f"{duration:g} s, access log on; load average {os.getloadavg()[0]:.2f}"
    )
    print()
    print("| serve | req/s | p50 ms | p99 ms |")
    print("|---|---|---|---|")
    print(f"| metrics off | {plain.rps:,.0f} | {plain.p50_ms:.3f} | {plain.p99_ms:.2f} |")
    print(
        f"| --metrics-port | {measured.rps:,.0f} | {measured.p50_ms:.3f} | {measured.p99_ms:.2f} |"
    )
    verdict = "met" if share < 0.10 else "MISSED"
    print(
        f"- added cost: {cost:+.1f} us per request, {share:+.1%} of c32 throughput "
        f"({verdict}, goal < 10%)"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds of 2 s, a 10 s soak")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (5)")
    parser.add_argument("--duration", type=float, default=None, help="seconds per wrk run (5)")
    parser.add_argument("--soak", type=float, default=None, help="serve RSS run, seconds (60)")
    parser.add_argument(
        "--suite",
        choices=("main", "upstreams", "routes", "metrics"),
        default="main",
        help="main: the contenders side by side; upstreams: added latency per upstream kind "
        "(needs nginx unless --no-nginx); routes: 5, 1,000 and 10,000 routes in serve and "
        "workerd; metrics: serve with and without --metrics-port",
    )
    parser.add_argument("--no-nginx", action="store_true", help="upstreams suite without nginx")
    parser.add_argument("--requests", type=int, default=2000, help="per latency round (2000)")
    options = parser.parse_args()
    if options.suite == "upstreams":
        return upstream_kinds_suite(options.requests, options.rounds or 3, not options.no_nginx)
    if options.suite == "routes":
        return routes_suite([5, 1000, 10000], options.requests, options.rounds or 3)
    if options.suite == "metrics":
        return metrics_suite(options.rounds or 6, options.duration or 5.0)
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
            (
                "serve-workerd",
                lambda: start_serve(
                    work, worker_port, extra=("--runtime", "workerd"), name="serve-workerd"
                ),
            ),
            (
                "serve-workerd-code",
                lambda: start_serve(
                    work,
                    worker_port,
                    extra=("--runtime", "workerd"),
                    name="serve-workerd-code",
                    code=True,
                ),
            ),
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
        "| contender | c | req/s | p50 ms | p99 ms | req/s vs direct | serve req/s / this |"
        " added p50 vs direct (c1) | errors |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in names:
        for concurrency in CONCURRENCIES:
            run = med[(name, concurrency)]
            floor = med[("direct", concurrency)]
            ratio = f"{run.rps / floor.rps:.2f}x"
            versus = ""
            if name not in ("direct", "serve") and ("serve", concurrency) in med:
                versus = f"{med[('serve', concurrency)].rps / run.rps:.2f}x"
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
    for name, label in (
        ("serve-workerd", "serve --runtime workerd, the worker at its URL"),
        ("serve-workerd-code", "serve --runtime workerd, the worker as JavaScript Worker code"),
    ):
        if (name, 32) in med:
            rps = med[(name, 32)].rps
            print(f"- {label}, at c32: {rps:,.0f} req/s = {1e6 / rps:.0f} us per request")
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
