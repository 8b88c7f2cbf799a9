"""How fast does `code24ctl --help` start, next to bare Python and to importing the SDK?

Run: .venv/bin/python benchmarks/bench_startup.py [--runs 15]

The three commands run interleaved (one of each per round) so machine noise hits all alike; the
figures are medians, and the ratios are measured side by side in this one run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def _time(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    code24ctl = BIN / "code24ctl"
    if not code24ctl.exists():
        sys.exit(f"{code24ctl} not found: pip install -e . first")
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import cloudflare'": [sys.executable, "-c", "import cloudflare"],
        "code24ctl --help": [str(code24ctl), "--help"],
    }
    for argv in commands.values():  # warm the page cache and .pyc files
        _time(argv)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, argv in commands.items():
            samples[name].append(_time(argv))
    median = {name: statistics.median(values) * 1000 for name, values in samples.items()}
    base = median["python -c pass"]
    sdk = median["python -c 'import cloudflare'"]
    print(f"{'command':34} {'median ms':>10} {'x python':>9}")
    for name, ms in median.items():
        print(f"{name:34} {ms:10.1f} {ms / base:9.2f}")
    help_ms = median["code24ctl --help"]
    print(
        f"\ncode24ctl --help costs {help_ms - base:.0f} ms over bare Python; "
        f"importing the SDK alone costs {sdk - base:.0f} ms "
        f"(help / import cloudflare = {help_ms / sdk:.2f})"
    )


if __name__ == "__main__":
    main()
