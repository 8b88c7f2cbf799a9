"""Shared fixtures: run the CLI through Typer's runner with a clean, explicit environment."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from tests.support import loopback_only
from tests.support.cli import AMBIENT_VARIABLES, RunCli, cli_runner
from tests.support.clock import FakeClock

pytest_plugins = ["tests.emulator.fixtures"]

loopback_only.install()

# A shell starts a background job with SIGINT ignored, and Python then leaves it ignored (and
# every child inherits that): the Ctrl-C tests would see no KeyboardInterrupt and prompts that
# never end. The suite tests Ctrl-C, so it takes SIGINT back however it was started.
signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _loopback_only() -> Iterator[None]:
    """Fail any test that tried to connect beyond this machine, even if the code under test
    handled the refusal."""
    before = len(loopback_only.REFUSED)
    yield
    tried = loopback_only.REFUSED[before:]
    if tried:
        pytest.fail(f"the test tried to reach {', '.join(tried)}: only 127.0.0.1 is allowed")


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
    return cli_runner(api_clock)
