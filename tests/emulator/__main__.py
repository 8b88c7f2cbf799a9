"""Run the emulator for manual demos: ``python -m tests.emulator --port 8788 --seed demo``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from .seeds import seed_code24
from .server import EmulatorServer
from .state import EmulatorState

if TYPE_CHECKING:
    from .site import VersionSite


STAGING_DISPATCHER = "code24-dynamic-dispatcher-staging"


@contextmanager
def _running(site: VersionSite | None) -> Iterator[None]:
    if site is None:
        yield
        return
    with site.running():
        yield


def main(argv: list[str] | None = None) -> int:
    """Parse options, seed, serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m tests.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8788)
    parser.add_argument("--seed", choices=["demo", "none"], default="demo")
    parser.add_argument("--rate-limit", type=int, default=None, help="requests per window")
    parser.add_argument("--window", type=float, default=300.0, help="rate limit window (s)")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument(
        "--site-port",
        type=int,
        default=None,
        help="also serve the test site (site.py) for the staging dispatcher on this port",
    )
    parser.add_argument(
        "--propagation-delay",
        type=float,
        default=0.0,
        help="seconds before the site honours a version override after a deployment change",
    )
    parser.add_argument(
        "--token",
        default=None,
        help="also accept this user token for the demo account (never printed)",
    )
    args = parser.parse_args(argv)

    state = EmulatorState()
    seed = seed_code24(state) if args.seed == "demo" else None
    if seed is not None and args.token:
        state.add_token(args.token, account_id=seed.account_id, kind="user")
    if args.rate_limit:
        state.rate_limit(args.rate_limit, args.window)
    if args.latency_ms:
        state.latency(args.latency_ms)
    site = None
    if args.site_port is not None and seed is not None:
        from .site import VersionSite

        site = VersionSite(
            state, seed.account_id, STAGING_DISPATCHER, args.propagation_delay, port=args.site_port
        )
    with EmulatorServer(state, host=args.host, port=args.port) as server, _running(site):
        print(f"Cloudflare emulator on {server.url}", file=sys.stderr)
        print(f"  export CLOUDFLARE_BASE_URL={server.api_base}", file=sys.stderr)
        if seed is not None:
            print(f"  export CLOUDFLARE_ACCOUNT_ID={seed.account_id}", file=sys.stderr)
            # Tokens are never printed: use --token, or USER_TOKEN from tests/emulator/seeds.py.
            print("  CLOUDFLARE_API_TOKEN: the --token value, or seeds.USER_TOKEN", file=sys.stderr)
        print(
            f"  controls: {server.url}/__emulator/{{snapshot,counters,requests}}", file=sys.stderr
        )
        if site is not None:
            print(f"  test site for {STAGING_DISPATCHER} on {site.url}", file=sys.stderr)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
