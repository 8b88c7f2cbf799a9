"""``code24ctl plan`` for CI, ``apply --plan-file``, and one diff (old -> new) everywhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.emulator.seeds import Code24Seed
from tests.emulator.site import VersionSite
from tests.emulator.state import EmulatorState
from tests.support.cli import REPO_CONFIG, RunCli
from tests.support.staging import (
    ALIASES,
    API_PATTERN,
    DISPATCHER,
    NAMESPACE,
    add_other_worker,
    staging_config,
    write_config,
    writes,
)

FALLBACK = "workers.designer-worker.fallback.message"


def _changed_fallback(tmp_path: Path, base_url: str | None = None) -> tuple[Path, str]:
    old = yaml.safe_load(REPO_CONFIG.read_text(encoding="utf-8"))["workers"]["designer-worker"]
    message: str = old["fallback"]["message"]

    def change(data: dict[str, Any]) -> None:
        data["workers"]["designer-worker"]["fallback"]["message"] = "Back soon"
        if base_url is not None:
            data["environments"]["staging"]["base_url"] = base_url

    return write_config(tmp_path, change), message


def test_plan_exit_code_says_whether_changes_are_pending(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState
) -> None:
    pending = run_cli("plan", "--env", "staging", "--exit-code", env=cf_env)

    assert pending.exit_code == 1, pending.output
    assert pending.stdout.splitlines()[0] == "plan for staging:"
    assert pending.stdout.splitlines()[-1] == "10 to create, 0 to update, 0 to delete"
    assert pending.stderr == "error: 10 change(s) pending in staging\n"
    assert writes(cf_state) == []

    assert run_cli("apply", "--env", "staging", "--yes", env=cf_env).exit_code == 0
    cf_state.clear_requests()

    clean = run_cli("plan", "--env", "staging", "--exit-code", env=cf_env)

    assert clean.exit_code == 0, clean.output
    assert clean.stdout.splitlines()[-1] == "0 to create, 0 to update, 0 to delete"
    assert writes(cf_state) == []
    # Without --exit-code, pending changes are not a failure.
    assert run_cli("plan", "--env", "staging", env=cf_env).exit_code == 0


def test_plan_json_is_one_document_in_the_house_shape(
    run_cli: RunCli, cf_env: dict[str, str]
) -> None:
    result = run_cli("plan", "--env", "staging", "--json", env=cf_env)

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["command"], document["environment"], document["namespace"]) == (
        "plan",
        "staging",
        NAMESPACE,
    )
    assert document["summary"] == {"create": 10, "update": 0, "delete": 0, "problems": 0}
    assert [step["step"] for step in document["steps"]] == ["namespace", "bind", "deploy"]
    assert result.stderr == ""


def test_one_changed_fallback_message_is_that_field_in_plan_apply_and_doctor(
    tmp_path: Path, run_cli: RunCli, cf_env: dict[str, str], cf_site: VersionSite
) -> None:
    # A changed dispatcher is probed through the override before 100%: on the test site.
    (tmp_path / "shipped").mkdir()
    shipped = staging_config(tmp_path / "shipped", cf_site.url)
    assert run_cli("apply", "--env", "staging", "--yes", env=cf_env, config=shipped).exit_code == 0
    config, old = _changed_fallback(tmp_path, cf_site.url)
    field = f'~ ROUTE_TABLE.{FALLBACK}: "{old}" -> "Back soon"'

    plan = run_cli("plan", "--env", "staging", env=cf_env, config=config)
    applied = run_cli("apply", "--env", "staging", "--yes", env=cf_env, config=config)

    assert plan.stdout.splitlines() == [
        "plan for staging:",
        "  1. namespace: nothing to change",
        "  2. bind: nothing to change",
        "  3. deploy:",
        f"       ~ dispatcher {DISPATCHER} (a new version, probed at 0% through the version "
        "override before 100%)",
        f"           {field}",
        "       (3 unchanged)",
        "0 to create, 1 to update, 0 to delete",
    ]
    assert applied.exit_code == 0, applied.output
    assert f"           {field}" in applied.stderr.splitlines()

    # Back to the shipped config deployed: doctor over the changed one names the same field.
    back = run_cli("apply", "--env", "staging", "--yes", env=cf_env, config=shipped)
    assert back.exit_code == 0, back.output
    doctor = run_cli("doctor", "--env", "staging", "--json", env=cf_env, config=config)
    dispatcher = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}["dispatcher"]
    assert dispatcher["detail"] == f"{DISPATCHER}: 1 difference from what deploy would upload"
    assert [(d["action"], d["path"], d["old"], d["new"]) for d in dispatcher["differences"]] == [
        ("update", f"ROUTE_TABLE.{FALLBACK}", old, "Back soon")
    ]
    human = run_cli("doctor", "--env", "staging", env=cf_env, config=config)
    assert f"      {field}" in human.stdout.splitlines()


def test_a_saved_plan_applies_and_is_refused_once_the_account_changed(
    tmp_path: Path,
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
) -> None:
    saved = tmp_path / "plan.json"
    made = run_cli("plan", "--env", "staging", "--out", str(saved), env=cf_env)
    assert made.exit_code == 0, made.output
    assert made.stderr == f"saved the plan to {saved}\n"
    assert json.loads(saved.read_text())["command"] == "plan"

    applied = run_cli("apply", "--env", "staging", "--plan-file", str(saved), env=cf_env)

    # No --yes and no terminal: the saved plan was the review.
    assert applied.exit_code == 0, applied.output
    assert cf_state.namespace_script_names(cf_seed.account_id, NAMESPACE) == sorted(ALIASES)

    stale = tmp_path / "stale.json"
    assert run_cli("plan", "--env", "staging", "--out", str(stale), env=cf_env).exit_code == 0
    cf_state.clear_requests()
    # Someone changes a bound worker under the saved plan.
    cf_state.add_namespace_script(
        cf_seed.account_id,
        NAMESPACE,
        "brand-worker",
        {"worker.js": ("export default {}", "application/javascript+module")},
        main_module="worker.js",
    )
    refused = run_cli("apply", "--env", "staging", "--plan-file", str(stale), env=cf_env)

    assert refused.exit_code == 2
    assert (
        "error: the account or the config changed since the plan was made: staging now plans "
        "differently; nothing was written"
    ) in refused.stderr
    assert "code24ctl plan --env staging --out FILE" in refused.stderr
    assert writes(cf_state) == []


def test_a_plan_with_a_conflict_exits_with_its_cause(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    add_other_worker(cf_state, cf_seed.account_id)
    cf_state.add_route(cf_seed.zone_id, API_PATTERN, "legacy-router")

    result = run_cli("plan", "--env", "staging", "--exit-code", env=cf_env)

    assert result.exit_code == 2
    assert f"       ! route {API_PATTERN} is routed to legacy-router" in result.stdout
    assert result.stdout.splitlines()[-1] == "9 to create, 0 to update, 0 to delete, 1 problem(s)"
    assert result.stderr.startswith(
        "error: the plan for staging holds 1 problem (listed with the plan); "
        "apply would stop before writing anything\n"
    )


@pytest.mark.parametrize("flag", ["--unprobed", "--force"])
def test_a_flag_the_saved_plan_was_not_made_with_is_refused_not_dropped(
    tmp_path: Path, run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, flag: str
) -> None:
    saved = tmp_path / "plan.json"
    assert run_cli("plan", "--env", "staging", "--out", str(saved), env=cf_env).exit_code == 0
    cf_state.clear_requests()

    refused = run_cli("apply", "--env", "staging", "--plan-file", str(saved), flag, env=cf_env)

    assert refused.exit_code == 2
    assert refused.stderr == (
        f"error: {flag} was not given to the plan saved in {saved}: a saved plan is applied as "
        f"it was made\n  hint: make the plan again with `code24ctl plan --env ENV --out FILE "
        f"{flag}`, or leave {flag} out\n"
    )
    assert cf_state.requests() == []
