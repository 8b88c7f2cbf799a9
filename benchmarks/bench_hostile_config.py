"""How long and how much memory does `code24ctl config validate` take to refuse a hostile config?

Run: .venv/bin/python benchmarks/bench_hostile_config.py [--runs 5]

Each file (an alias bomb, a self-referencing alias, deep nesting, a 5,000-digit number, a 50 MiB
file, plus the repo's own config for scale) is validated in a fresh process; the figures are the
median wall time and the largest peak RSS over the runs. The goal (issue 15): every hostile file
refused, exit 2, in under a second of wall time and without growing memory past a plain run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_CONFIG = Path(__file__).resolve().parents[1] / "namespaces.yaml"

BOMB = "\n".join(
    ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    + ["platform: *a8", ""]
)


def files(folder: Path) -> dict[str, Path]:
    """Write each hostile config into ``folder``."""
    texts = {
        "repo config (ok)": REPO_CONFIG.read_text(encoding="utf-8"),
        "alias bomb (1 KB, 9**9 values)": BOMB,
        "alias that contains itself": "platform: &loop [1, *loop]\n",
        "5,000 nested lists": "platform: " + "[" * 5000 + "]" * 5000 + "\n",
        "5,000-digit integer": "platform: x\nmax_body_bytes: " + "9" * 5000 + "\n",
        "50 MiB of comments": ("# " + "x" * 98 + "\n") * (50 * 1024 * 1024 // 100),
    }
    out = {}
    for index, (name, text) in enumerate(texts.items()):
        path = folder / f"config{index}.yaml"
        path.write_text(text, encoding="utf-8")
        out[name] = path
    return out


#: Runs the CLI in a child and writes that child's own peak RSS (KiB) to the file in argv[2].
DRIVER = """
import resource, sys
from pathlib import Path
from code24ctl.cli import main
sys.argv = ["code24ctl", "config", "validate", "--config", sys.argv[1]]
try:
    main()
finally:
    Path(sys.argv_rss).write_text(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
"""


def run(path: Path, rss_file: Path) -> tuple[float, int, int]:
    """Wall seconds, exit status and the child's peak RSS in KiB."""
    driver = DRIVER.replace("sys.argv_rss", repr(str(rss_file)))
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", driver, str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    elapsed = time.perf_counter() - start
    return elapsed, proc.returncode, int(rss_file.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cases = files(Path(tmp))
        print(f"{'config':34} {'exit':>4} {'median s':>9} {'peak RSS MiB':>13}")
        for name, path in cases.items():
            results = [run(path, Path(tmp) / "rss") for _ in range(args.runs)]
            median = statistics.median(r[0] for r in results)
            codes = {r[1] for r in results}
            peak = max(r[2] for r in results) / 1024
            print(f"{name:34} {'/'.join(map(str, sorted(codes))):>4} {median:9.3f} {peak:13.1f}")


if __name__ == "__main__":
    main()
