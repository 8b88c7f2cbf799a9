"""Running the CLI in-process through Typer's runner, with the two streams kept apart."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest.mock import patch

from tests.support.clock import FakeClock

REPO_ROOT = Path(__file__).resolve().parents[2]
REPO_CONFIG = REPO_ROOT / "namespaces.yaml"

# Variables that would make a test depend on the developer's shell.
AMBIENT_VARIABLES = (
    "CLOUDFLARE_API_TOKEN",
    "CLOUDFLARE_ACCOUNT_ID",
    "CLOUDFLARE_BASE_URL",
    "CODE24_CONFIG",
    "CODE24_ENV",
    "CODE24_DEBUG",
    # The width of tables: pytest-xdist's workers inherit one, a developer's shell another.
    "COLUMNS",
)


@dataclass(frozen=True)
class CliResult:
    """What a CLI run produced: exit status and the two streams, separately."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


RunCli = Callable[..., CliResult]


@functools.cache
def _built_once(app: Any) -> Any:
    """The click command tree Typer builds from ``app``, built once per test process.

    A real run builds it once and runs one command; Typer's runner would build it again for
    every run (~17 ms, a tenth of the suite's time). Nothing in the tree holds a run's state:
    the run's options live on the click context (:class:`Invocation`), and help puts back the
    texts it adapts (``code24ctl.cli.help_text.markup_help``).
    """
    import typer

    return typer.main.get_command(app)


def cli_runner(clock: FakeClock) -> RunCli:
    """Run ``code24ctl ARGS`` in-process (the ``run_cli`` fixture; a module-scoped fixture may
    build its own): ``env`` adds variables, ``input`` feeds stdin, ``config`` is the config.

    Each run gets a fresh :class:`~code24ctl.cli.invocation.Invocation` whose Cloudflare
    sessions wait on ``clock``, as a real run would on the system clock.
    """
    from typer.testing import CliRunner

    from code24ctl.cli import app
    from code24ctl.cli.invocation import Invocation

    def run(
        *args: str,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        config: str | os.PathLike[str] | None = REPO_CONFIG,
    ) -> CliResult:
        argv = list(args)
        variables = dict(env or {})
        if config is not None and "CODE24_CONFIG" not in variables:
            variables["CODE24_CONFIG"] = str(config)
        invocation = Invocation(clock=clock)
        with patch("typer.testing._get_command", _built_once):
            result = CliRunner().invoke(app, argv, env=variables, input=input, obj=invocation)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return CliResult(result.exit_code, result.stdout, result.stderr)

    return run


def run_subprocess(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | str | None = None,
    timeout: float = 60,
) -> CliResult:
    """Run ``python -m code24ctl ARGS`` as a subprocess without a terminal (stdin closed, both
    streams piped), with only ``env`` and PATH in its environment: what CI and pipes see."""
    import os
    import subprocess
    import sys

    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO_ROOT)}
    environment.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "code24ctl", *args],
        env=environment,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)
