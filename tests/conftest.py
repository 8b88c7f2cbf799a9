"""Shared fixtures: run the CLI through Typer's runner with a clean, explicit environment."""

from __future__ import annotations

import os
from collections.abc import Mapping

import pytest
from typer.testing import CliRunner

from tests.support.cli import AMBIENT_VARIABLES, REPO_CONFIG, CliResult, RunCli
from tests.support.clock import FakeClock

pytest_plugins = ["tests.emulator.fixtures"]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in AMBIENT_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def api_clock() -> FakeClock:
    """The clock the pacer of every command :func:`run_cli` runs sleeps on: retries, backoff and
    ``Retry-After`` cost no real time (assert on ``api_clock.sleeps`` instead)."""
    return FakeClock()


@pytest.fixture
def run_cli(api_clock: FakeClock) -> RunCli:
    """Run ``code24ctl ARGS`` in-process; ``env`` adds variables, ``input`` feeds stdin.

    Each run gets a fresh :class:`~code24ctl.cli.invocation.Invocation` whose Cloudflare
    sessions wait on ``api_clock``, as a real run would on the system clock.
    """
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
        invocation = Invocation(clock=api_clock)
        result = CliRunner().invoke(app, argv, env=variables, input=input, obj=invocation)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return CliResult(result.exit_code, result.stdout, result.stderr)

    return run
