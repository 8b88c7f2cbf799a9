"""Shared fixtures: run the CLI through Typer's runner with a clean, explicit environment."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

REPO_ROOT = Path(__file__).resolve().parent.parent
REPO_CONFIG = REPO_ROOT / "namespaces.yaml"

# Variables that would make a test depend on the developer's shell.
_AMBIENT = (
    "CLOUDFLARE_API_TOKEN",
    "CLOUDFLARE_ACCOUNT_ID",
    "CLOUDFLARE_BASE_URL",
    "CODE24_CONFIG",
    "CODE24_ENV",
    "CODE24_DEBUG",
)

pytest_plugins = ["tests.emulator.fixtures"]


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


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _AMBIENT:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch) -> RunCli:
    """Run ``code24ctl ARGS`` in-process; ``env`` adds variables, ``input`` feeds stdin."""
    from code24ctl.cli import app

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
        result = CliRunner().invoke(app, argv, env=variables, input=input)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return CliResult(result.exit_code, result.stdout, result.stderr)

    return run
