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


@pytest.fixture(autouse=True)
def api_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The clock every in-process CLI command's pacer sleeps on: retries, backoff and
    ``Retry-After`` cost no real time (assert on ``api_clock.sleeps`` instead)."""
    import code24ctl.cli.session

    clock = FakeClock()
    monkeypatch.setattr(code24ctl.cli.session, "session_clock", clock)
    return clock


@pytest.fixture(autouse=True)
def _fresh_api_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each CLI run is its own process in real use, with the whole API budget; in one test
    # process the process-wide pacer (used by clients built outside a CLI session, which makes
    # its own) would otherwise carry every earlier test's requests, and a late test would wait
    # out a 1,200-per-5-minutes budget it never used. default_pacer() builds a fresh one.
    from code24ctl.cloudflare import pacing

    monkeypatch.setattr(pacing, "_default", None)


@pytest.fixture
def run_cli() -> RunCli:
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
