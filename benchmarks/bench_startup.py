"""How fast does `code24ctl --help` start, next to bare Python and to importing the SDK?

Run: .venv/bin/python benchmarks/bench_startup.py [--runs 15] [--before TREE]

``--before TREE`` adds two rows, ``--help`` from TREE's ``code24ctl/`` (an earlier commit, e.g.
``git archive COMMIT code24ctl | tar -x -C TREE``) and from this one, each started the same way
(this venv's packages, the package from that tree), so a change is measured side by side too.

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
REPO = Path(__file__).resolve().parent.parent
# The editable install's finder would answer for code24ctl whatever sys.path says: dropped, so
# the package comes from the tree put first on sys.path.
_FROM_TREE = (
    "import sys; sys.meta_path[:] = [f for f in sys.meta_path "
    "if 'editable' not in type(f).__module__ and 'editable' not in getattr(f, '__name__', '')]; "
    "sys.path.insert(0, {tree!r}); sys.argv = ['code24ctl', '--help']; "
    "from code24ctl.cli import main; main()"
)


def _time(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--before", type=Path, help="a tree holding an earlier code24ctl/")
    args = parser.parse_args()
    code24ctl = BIN / "code24ctl"
    if not code24ctl.exists():
        sys.exit(f"{code24ctl} not found: pip install -e . first")
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import cloudflare'": [sys.executable, "-c", "import cloudflare"],
        "code24ctl --help": [str(code24ctl), "--help"],
    }
    if args.before is not None:
        for label, tree in (("before", args.before), ("this tree", REPO)):
            script = _FROM_TREE.format(tree=str(tree.resolve()))
            commands[f"--help ({label})"] = [sys.executable, "-c", script]
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
    if args.before is not None:
        before, after = median["--help (before)"], median["--help (this tree)"]
        print(
            f"--help from {args.before}: {before / sdk:.2f} of import cloudflare; "
            f"from this tree: {after / sdk:.2f}"
        )


if __name__ == "__main__":
    main()
