"""Writes whose outcome is unknown (applied then 500, applied then cut mid-body, not applied
then reset), per write kind, against the emulator's fault switches (tests/emulator/faults.py).

Each case: the command states the true state, and the next run converges (changes nothing).
"""

from __future__ import annotations

import json

import pytest

from tests.emulator import EmulatorState
from tests.support.cli import RunCli

FAULTS = ("applied_500", "applied_cut", "reset")


@pytest.mark.parametrize("kind", ["applied_cut", "reset"])
def test_a_read_whose_answer_is_cut_or_reset_is_retried(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, kind: str
) -> None:
    cf_state.faults.add("GET", "*/workers/dispatch/namespaces", kind)
    result = run_cli("namespace", "list", "--json", env=cf_env)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["namespaces"] == []
    assert [k for k, _, _ in cf_state.faults.served] == [kind]
