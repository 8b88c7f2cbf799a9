"""``code24ctl serve`` as a real subprocess, and configs that point its local env somewhere.

``python -m code24ctl serve --port 0 --json``: the JSON line on stdout says where it listens.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from tests.support.cli import REPO_CONFIG, REPO_ROOT
from tests.support.staging import write_config

START_TIMEOUT_S = 30


class ServeProcess:
    """``python -m code24ctl serve ... --port 0 --json`` and what it said when ready."""

    def __init__(self, tmp_path: Path, *args: str, config: Path = REPO_CONFIG) -> None:
        self.stderr_path = tmp_path / f"serve-stderr-{time.monotonic_ns()}.txt"
        self._stderr = self.stderr_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "code24ctl", "serve", "--config", str(config), "--json"]
            + (["--port", "0"] if "--port" not in args else [])
            + list(args),
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.info = self._ready()
        self.port: int = self.info["port"]

    def _ready(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        import selectors

        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if selector.select(timeout=0.2):
                    line = self.proc.stdout.readline()
                    if line:
                        info: dict[str, Any] = json.loads(line)
                        return info
                if self.proc.poll() is not None:
                    break
        self.proc.kill()
        raise AssertionError(f"serve did not start:\n{self.stderr()}")

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` and wait for the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(20)
        finally:
            self._stderr.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._stderr.close()


def repo_config() -> dict[str, Any]:
    """The repo's shipped namespaces.yaml, as data."""
    data: dict[str, Any] = yaml.safe_load(REPO_CONFIG.read_text(encoding="utf-8"))
    return data


def local_config(
    tmp_path: Path,
    upstreams: dict[str, str],
    *,
    timeouts: dict[str, int] | None = None,
    without_fallback: tuple[str, ...] = (),
) -> Path:
    """The repo's config with the local environment pointed at ``upstreams``."""

    def change(data: dict[str, Any]) -> None:
        data["environments"]["local"]["upstreams"] = upstreams
        for alias, timeout_ms in (timeouts or {}).items():
            data["workers"][alias]["timeout_ms"] = timeout_ms
        for alias in without_fallback:
            del data["workers"][alias]["fallback"]

    return write_config(tmp_path, change)
