"""How close does `bind` of 1,000 workers get to what the API budget allows, without a 429?

Run: .venv/bin/python benchmarks/bench_bind.py [--workers 1000] [--mode script|path]
     [--budget 1200] [--window 10] [--latency-ms 20] [--concurrency 4] [--rerun]

The Cloudflare emulator runs in a subprocess on 127.0.0.1 with a per-call latency and its rate
limit switched on, scaled down in time (default 1,200 requests per 10 s instead of per 300 s);
the pacer is told the same budget. `script` mode copies 1,000 account Workers (download content
+ settings, upload: 3 calls each); `path` mode uploads 1,000 local modules (1 call each). The
script prints the wall time, the 429s met (the goal is none), the API calls made, and the time
against two floors measured in the same run: the budget floor (calls / budget rate) and the
latency floor (calls x mean call time / concurrency), and the most requests the emulator saw in
any one second beside the per-IP cap of 200 (the pacer keeps 10% headroom: 180). `--rerun`
also times a second bind, which must upload nothing.
"""

from __future__ import annotations

import argparse
import json
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from code24ctl.cloudflare.pacing import API_PER_IP_REQUESTS, Pacer  # noqa: E402
from code24ctl.cloudflare.session import CloudflareSession  # noqa: E402
from code24ctl.config import resolve_config  # noqa: E402
from code24ctl.ops.bind import BindOptions, BindReport, bind_workers  # noqa: E402
from tests.emulator.seeds import ACCOUNT_ID  # noqa: E402

NAMESPACE = "bench-workers"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def start_emulator(port: int, token: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.emulator", "--port", str(port), "--seed", "demo",
         "--token", token],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/__emulator/health").status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    sys.exit("the emulator did not start")


def control(port: int, action: str, body: dict[str, Any] | None = None) -> Any:
    url = f"http://127.0.0.1:{port}/__emulator/{action}"
    response = httpx.post(url, json=body or {}) if body is not None else httpx.get(url)
    response.raise_for_status()
    return response.json()


def module_source(i: int) -> str:
    return (
        "export default {\n  async fetch(request, env) {\n"
        f'    return Response.json({{worker: "bench-{i:04d}", env: env.ENVIRONMENT}});\n'
        "  },\n};\n"
    )


def write_config(folder: Path, count: int, mode: str) -> Path:
    workers: dict[str, Any] = {}
    for i in range(count):
        alias = f"w{i:04d}"
        if mode == "script":
            workers[alias] = {"script": f"bench-src-{i:04d}"}
        else:
            (folder / "src").mkdir(exist_ok=True)
            (folder / "src" / f"{alias}.js").write_text(module_source(i), encoding="utf-8")
            workers[alias] = {"path": f"src/{alias}.js"}
    config = {
        "platform": "Bench",
        "account_id": ACCOUNT_ID,
        "compatibility_date": "2025-06-01",
        "workers": workers,
        "routes": [{"prefix": "/api", "worker": "w0000"}],
        "environments": {
            "bench": {"namespace": NAMESPACE, "dispatcher": "bench-dispatcher"},
        },
    }
    path = folder / "namespaces.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def seed(client: Any, count: int, mode: str) -> None:
    """The namespace, and (script mode) the account Workers to copy; before the rate limit."""
    client.workers_for_platforms.dispatch.namespaces.create(account_id=ACCOUNT_ID, name=NAMESPACE)
    if mode != "script":
        return

    def upload(i: int) -> None:
        client.workers.scripts.update(
            f"bench-src-{i:04d}",
            account_id=ACCOUNT_ID,
            metadata={
                "main_module": "worker.js",
                "compatibility_date": "2025-01-01",
                "bindings": [{"type": "plain_text", "name": "ENVIRONMENT", "text": "bench"}],
            },
            files=[("worker.js", module_source(i).encode(), "application/javascript+module")],
        )

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(upload, range(count)))


def run(
    client: Any, config: Path, pacer: Pacer, concurrency: int, port: int
) -> tuple[BindReport, float, dict[str, Any]]:
    control(port, "clear_requests", {})
    resolved = resolve_config(config, "bench")
    start = time.perf_counter()
    session = CloudflareSession.over(client, ACCOUNT_ID)
    report = bind_workers(
        session, resolved, options=BindOptions(concurrency=concurrency, pacer=pacer)
    )
    elapsed = time.perf_counter() - start
    return report, elapsed, control(port, "counters")


def busiest_second(port: int) -> int:
    """The most requests the emulator received in any sliding second of the run."""
    stamps = sorted(record["time"] for record in control(port, "requests"))
    most = start = 0
    for end, stamp in enumerate(stamps):
        while stamp - stamps[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


def describe(
    label: str, report: BindReport, elapsed: float, counters: dict[str, Any], args: Any
) -> None:
    calls = counters["requests"]
    rate = args.budget / args.window
    budget_floor = calls / rate
    latency_floor = calls * (args.latency_ms / 1000) / args.concurrency
    actions = {a: report.count(a) for a in ("created", "updated", "unchanged", "failed")}
    print(f"{label}:")
    print(f"  result          {json.dumps({k: v for k, v in actions.items() if v})}")
    print(f"  wall time       {elapsed:.2f} s")
    print(f"  API calls       {calls} (client counted {report.api.requests}, "
          f"{report.api.retries} retries)")  # fmt: skip
    print(f"  429s met        {counters['served_429']}")
    print(f"  budget floor    {budget_floor:.2f} s  ({calls} calls / {rate:.0f} per s)"
          f"  -> time / floor = {elapsed / budget_floor:.2f}")  # fmt: skip
    print(f"  latency floor   {latency_floor:.2f} s  ({calls} x {args.latency_ms:.0f} ms / "
          f"{args.concurrency})  -> time / floor = {elapsed / latency_floor:.2f}")  # fmt: skip
    print(f"  waited for budget {report.api.waited_s:.2f} s (summed over threads)")
    busiest = busiest_second(args.port)
    print(f"  busiest second  {busiest} requests (per-IP cap {API_PER_IP_REQUESTS}; "
          f"{'under' if busiest < API_PER_IP_REQUESTS else 'OVER'} the cap)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=1000)
    parser.add_argument("--mode", choices=["script", "path"], default="script")
    parser.add_argument("--budget", type=int, default=1200, help="requests per window")
    parser.add_argument("--window", type=float, default=10.0, help="window in seconds")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rerun", action="store_true", help="also time a second (no-op) bind")
    args = parser.parse_args()
    args.port = port = free_port()

    from cloudflare import Cloudflare

    token = "bench_" + secrets.token_hex(16)
    proc = start_emulator(port, token)
    try:
        base = f"http://127.0.0.1:{port}/client/v4"
        client = Cloudflare(api_token=token, base_url=base, max_retries=0)
        with tempfile.TemporaryDirectory() as tmp:
            config = write_config(Path(tmp), args.workers, args.mode)
            seed(client, args.workers, args.mode)
            control(port, "latency", {"ms": args.latency_ms})
            control(port, "rate_limit", {"requests": args.budget, "window_s": args.window})
            pacer = Pacer(args.budget, args.window)  # the pacer is told the same budget
            print(
                f"bind {args.workers} `{args.mode}` workers; emulator: {args.latency_ms:.0f} ms "
                f"per call, {args.budget} requests per {args.window:g} s; pacer limit "
                f"{pacer.limit} per {args.window:g} s; concurrency {args.concurrency}"
            )
            report, elapsed, counters = run(client, config, pacer, args.concurrency, port)
            describe("first bind", report, elapsed, counters, args)
            if args.rerun:
                report, elapsed, counters = run(client, config, pacer, args.concurrency, port)
                describe("second bind (must upload nothing)", report, elapsed, counters, args)
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
