"""Run the CLI as a subprocess on a pseudo-terminal, as a person at a terminal would."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from tests.support.cli import REPO_ROOT

#: Called once, the first time a ``[y/N]`` prompt appears: (the process, the terminal's fd).
OnPrompt = Callable[["subprocess.Popen[bytes]", int], None]


def run_on_terminal(
    args: list[str],
    config: Path,
    *,
    env: Mapping[str, str] | None = None,
    columns: int = 200,
    stdin_on_terminal: bool = False,
    on_prompt: OnPrompt | None = None,
) -> tuple[int, str]:
    """``python -m code24ctl ARGS`` with stdout and stderr (and, if asked, stdin) on a
    pseudo-terminal; returns the exit status and everything it printed."""
    leader, follower = pty.openpty()
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CODE24_", "CLOUDFLARE_"))},
        **(env or {}),
        "CODE24_CONFIG": str(config),
        "TERM": "xterm",
        "COLUMNS": str(columns),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "code24ctl", *args],
        stdin=follower if stdin_on_terminal else subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        env=environment,
        cwd=REPO_ROOT,
    )
    os.close(follower)
    seen = b""
    asked = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the other side is closed
                break
            if not chunk:
                break
            seen += chunk
            if on_prompt is not None and not asked and b"[y/N]" in seen:
                asked = True
                on_prompt(process, leader)
        elif process.poll() is not None:
            break
    os.close(leader)
    return process.wait(10), seen.decode("utf-8", errors="replace")
