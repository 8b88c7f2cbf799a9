"""Does `probe` run routes in parallel for real? 1,000 routes against a 50 ms worker.

Run: .venv/bin/python benchmarks/bench_probe.py [--routes 1000] [--delay-ms 50] [--runs 3]

A local worker (tests/support/http_servers.py, in its own process so it does not share our event
loop or GIL) answers every request with JSON after --delay-ms. The probe engine
(code24ctl.probe.runner, with the client from make_client, exactly as the CLI runs it) probes a
config of --routes routes
at concurrency 64 and at concurrency 1, in this one run. Printed: both wall times, their ratio,
and each next to its ideal (routes x delay / concurrency). The goal: concurrency 64 within 1.5x
of its ideal. Concurrency 64 is measured --runs times (median shown); concurrency 1 once (it takes
routes x delay, 50 s by default; --skip-serial leaves it out).

For the record of why the engine uses aiohttp rather than httpx, the same requests also go through
a bare httpx.AsyncClient (one pool of 64, the same semaphore pattern, no probe logic at all) at
concurrency 64; --skip-httpx leaves it out.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from code24ctl.config import Config, ResolvedConfig  # noqa: E402
from code24ctl.probe.plan import ProbeOptions  # noqa: E402
from code24ctl.probe.runner import run_probe  # noqa: E402
from code24ctl.probe.send import make_client  # noqa: E402


def _config(base_url: str, routes: int) -> ResolvedConfig:
    document = {
        "platform": "Bench",
        "compatibility_date": "2025-06-01",
        "workers": {"bench": {"script": "bench-worker"}},
        "routes": [
            {"prefix": f"/r{i}", "worker": "bench", "probe": {"method": "GET", "path": f"/r{i}/x"}}
            for i in range(routes)
        ],
        "environments": {
            "bench": {"namespace": "bench", "dispatcher": "bench", "base_url": base_url}
        },
    }
    return ResolvedConfig("<bench>", "bench", Config.model_validate(document))


async def _probe(resolved: ResolvedConfig, concurrency: int) -> float:
    options = ProbeOptions(concurrency=concurrency, timeout_s=30, max_latency_ms=10_000)
    async with make_client(concurrency, 30) as client:
        started = time.perf_counter()
        report = await run_probe(resolved, client, options)
        elapsed = time.perf_counter() - started
    if not report.ok:
        bad = [row for row in report.routes if row.outcome != "pass"]
        raise SystemExit(f"{len(bad)} routes failed, e.g. {bad[0].problems}")
    return elapsed


async def _bare_httpx(base_url: str, routes: int, concurrency: int) -> float:
    import httpx

    semaphore = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def one(i: int) -> None:
            async with semaphore:
                response = await client.get(f"{base_url}/r{i}/x")
                await response.aread()
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(routes)))
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--routes", type=int, default=1000)
    parser.add_argument("--delay-ms", type=float, default=50.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-serial", action="store_true")
    parser.add_argument("--skip-httpx", action="store_true")
    args = parser.parse_args()

    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.http_servers",
            "--delay-ms",
            str(args.delay_ms),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[1])
        base_url = f"http://127.0.0.1:{port}"
        resolved = _config(base_url, args.routes)
        asyncio.run(_probe(resolved, 64))  # warm-up: imports, connection setup paths
        parallel = statistics.median(asyncio.run(_probe(resolved, 64)) for _ in range(args.runs))
        bare = None if args.skip_httpx else asyncio.run(_bare_httpx(base_url, args.routes, 64))
        serial = None if args.skip_serial else asyncio.run(_probe(resolved, 1))
    finally:
        server.terminate()
        server.wait()

    delay = args.delay_ms / 1000
    ideal64 = args.routes * delay / 64
    ideal1 = args.routes * delay
    print(f"{args.routes} routes, worker answers after {args.delay_ms:g} ms")
    print(f"{'client':<28} {'concurrency':>11} {'wall s':>8} {'ideal s':>8} {'x ideal':>8}")
    rows = [("probe engine (aiohttp)", 64, parallel, ideal64)]
    if bare is not None:
        rows.append(("bare httpx.AsyncClient", 64, bare, ideal64))
    if serial is not None:
        rows.append(("probe engine (aiohttp)", 1, serial, ideal1))
    for name, concurrency, wall, ideal in rows:
        print(f"{name:<28} {concurrency:>11} {wall:8.3f} {ideal:8.3f} {wall / ideal:8.2f}")
    print()
    if serial is not None:
        print(f"speed-up c1/c64: {serial / parallel:.1f}x (ideal 64x)")
    if bare is not None:
        print(f"bare httpx / probe engine at c64: {bare / parallel:.1f}x")
    verdict = "met" if parallel <= 1.5 * ideal64 else "NOT met"
    print(f"goal (concurrency 64 within 1.5x of ideal): {verdict}")


if __name__ == "__main__":
    main()
