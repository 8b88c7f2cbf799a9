"""``code24ctl apply`` end to end: namespace, bind, deploy through the emulator over HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from code24ctl.cloudflare.session import CloudflareSession
from code24ctl.config import resolve_config
from code24ctl.ops.apply import execute_apply, failure, plan_apply
from code24ctl.ops.bind import BindOptions
from tests.emulator.seeds import MULTI_MODULE_SECRET, MULTI_MODULE_SECRET_VALUE, Code24Seed
from tests.emulator.state import EmulatorState
from tests.support.cli import REPO_CONFIG, RunCli
from tests.support.http_servers import refused_port
from tests.support.staging import (
    ALIASES,
    API_PATTERN,
    DISPATCHER,
    ELITE_PATTERN,
    KV_TITLE,
    NAMESPACE,
    STAGING_SCRIPTS,
    add_other_worker,
    route_owners,
    write_config,
    writes,
)

if TYPE_CHECKING:
    from cloudflare import Cloudflare

FULL_PLAN = [
    "plan for staging:",
    "  1. namespace:",
    f"       + dispatch namespace {NAMESPACE}",
    "  2. bind:",
    *[
        f"       + worker {alias} (script {STAGING_SCRIPTS[alias]}, observability (Workers Logs "
        "on, head_sampling_rate 1))"
        for alias in ALIASES
    ],
    "  3. deploy:",
    f"       + KV namespace {KV_TITLE}",
    f"       + dispatcher {DISPATCHER} (observability (Workers Logs on, head_sampling_rate 1), "
    "nothing serves yet: live at 100%, not probed)",
    f"       + route {API_PATTERN} (code24.dev)",
    f"       + route {ELITE_PATTERN} (code24.dev)",
]


def write_kinds(state: EmulatorState, account_id: str) -> list[str]:
    """The write requests, each reduced to what it wrote."""
    base = f"/accounts/{account_id}"
    kinds = []
    for line in writes(state):
        _method, path = line.split(" ", 1)
        if path == f"{base}/workers/dispatch/namespaces":
            kinds.append("namespace")
        elif path.startswith(f"{base}/workers/dispatch/namespaces/{NAMESPACE}/scripts/"):
            kinds.append("worker " + path.rsplit("/", 1)[1])
        elif path == f"{base}/storage/kv/namespaces":
            kinds.append("kv")
        elif path == f"{base}/workers/scripts/{DISPATCHER}":
            kinds.append("dispatcher")
        elif path.endswith("/workers/routes"):
            kinds.append("route")
        else:
            kinds.append(line)
    return kinds


def test_apply_sets_up_an_empty_account_in_order(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    result = run_cli("apply", "--env", "staging", "--yes", env=cf_env)

    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[: len(FULL_PLAN)] == FULL_PLAN
    assert lines[len(FULL_PLAN) :] == [
        f"namespace: done: created dispatch namespace {NAMESPACE}",
        f"bind: done: 5 created, 0 updated, 0 unchanged in {NAMESPACE}",
        f"deploy: done: dispatcher {DISPATCHER} uploaded (nothing served before: not probed), "
        "2 route(s) written, 0 unchanged",
        "1 secret(s) still to set (values cannot be copied): "
        "`code24ctl workers --env staging` lists them",
    ]
    assert result.stdout == "staging is set up: namespace, workers and dispatcher\n"

    kinds = write_kinds(cf_state, cf_seed.account_id)
    assert kinds[0] == "namespace"
    assert sorted(kinds[1:6]) == sorted(f"worker {alias}" for alias in ALIASES)
    assert kinds[6:] == ["kv", "dispatcher", "route", "route"]
    assert cf_state.namespace_script_names(cf_seed.account_id, NAMESPACE) == sorted(ALIASES)
    assert cf_state.account_script(cf_seed.account_id, DISPATCHER) is not None
    assert route_owners(cf_state, cf_seed.zone_id) == {
        API_PATTERN: DISPATCHER,
        ELITE_PATTERN: DISPATCHER,
    }
    assert MULTI_MODULE_SECRET_VALUE not in result.output


def test_a_second_apply_changes_nothing_and_needs_no_confirmation(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState
) -> None:
    assert run_cli("apply", "--env", "staging", "--yes", env=cf_env).exit_code == 0
    cf_state.clear_requests()

    # No --yes and no terminal: fine, because there is nothing to confirm.
    result = run_cli("apply", "--env", "staging", env=cf_env)

    assert result.exit_code == 0, result.output
    assert writes(cf_state) == []
    assert result.stderr.splitlines()[:5] == [
        "plan for staging:",
        "  1. namespace: nothing to change",
        "  2. bind: nothing to change",
        "  3. deploy: nothing to change",
        "nothing to change: every step is already in place",
    ]
    assert f"namespace: unchanged: dispatch namespace {NAMESPACE} exists" in result.stderr
    assert f"bind: unchanged: 0 created, 0 updated, 5 unchanged in {NAMESPACE}" in result.stderr
    assert (
        f"deploy: unchanged: dispatcher {DISPATCHER} unchanged, 0 route(s) written, 2 unchanged"
        in result.stderr
    )


def worker_reads(state: EmulatorState, account_id: str) -> dict[str, list[str]]:
    """Each alias's reads: its source Worker's (content, settings) and its namespace copy's."""
    base = f"/accounts/{account_id}/workers"
    reads: dict[str, list[str]] = {alias: [] for alias in ALIASES}
    for alias, script in STAGING_SCRIPTS.items():
        for request in state.requests(method="GET"):
            if request.path.startswith(f"{base}/scripts/{script}/"):
                reads[alias].append("source " + request.path.rsplit("/", 1)[1])
            elif request.path.startswith(
                f"{base}/dispatch/namespaces/{NAMESPACE}/scripts/{alias}/"
            ):
                reads[alias].append("copy " + request.path.rsplit("/", 1)[1])
    return reads


def test_apply_reads_each_worker_once_and_the_run_reuses_the_plan(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    account = cf_seed.account_id
    namespace_path = f"/accounts/{account}/workers/dispatch/namespaces/{NAMESPACE}"

    assert run_cli("apply", "--env", "staging", "--yes", env=cf_env).exit_code == 0

    # New namespace: nothing to read back from it, each source is read once, then uploaded.
    assert worker_reads(cf_state, account) == {
        alias: ["source v2", "source settings", "source schedules"] for alias in ALIASES
    }
    # Looked up by the plan, and again by the step that creates it.
    assert [r.path for r in cf_state.requests(method="GET") if r.path == namespace_path] == [
        namespace_path,
        namespace_path,
    ]
    dispatcher_reads = cf_state.requests(method="GET", path_contains=f"/scripts/{DISPATCHER}")
    assert [r.status for r in dispatcher_reads] == [404]  # not deployed: one read says so
    cf_state.clear_requests()

    assert run_cli("apply", "--env", "staging", "--yes", env=cf_env).exit_code == 0

    both = ["source v2", "source settings", "source schedules", "copy content", "copy settings"]
    assert {alias: sorted(reads) for alias, reads in worker_reads(cf_state, account).items()} == {
        alias: sorted(both) for alias in ALIASES
    }
    # One listing, then each copy's content and settings: 1 + 2 * 5.
    assert len(cf_state.requests(method="GET", path_contains=f"{namespace_path}/scripts")) == 11
    assert [r.path for r in cf_state.requests(method="GET") if r.path == namespace_path] == [
        namespace_path,
        namespace_path,
    ]
    # Its content and settings; its deployments and newest version (a version uploaded but not
    # serving is uploaded again, whatever the content says); its deployments again (the plan
    # names a split in progress).
    assert len(cf_state.requests(method="GET", path_contains=f"/scripts/{DISPATCHER}/")) == 5
    assert writes(cf_state) == []


def test_without_a_terminal_and_without_yes_it_refuses_and_writes_nothing(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState
) -> None:
    result = run_cli("apply", "--env", "staging", env=cf_env)

    assert result.exit_code == 2
    assert result.stderr.splitlines()[: len(FULL_PLAN)] == FULL_PLAN
    assert "refusing to continue without confirmation" in result.stderr
    assert "--yes" in result.stderr
    assert result.stdout == ""
    assert writes(cf_state) == []
    assert {r.method for r in cf_state.requests()} == {"GET"}


def test_apply_json_is_one_document_with_the_plan_and_the_steps(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState
) -> None:
    result = run_cli("apply", "--env", "staging", "--yes", "--json", env=cf_env)

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["environment"] == "staging"
    assert document["ok"] is True
    assert document["error"] is None
    assert document["next"] is None
    plan = document["plan"]
    assert [s["step"] for s in plan["steps"]] == ["namespace", "bind", "deploy"]
    assert plan["command"] == "plan"
    assert plan["summary"] == {"create": 10, "update": 0, "delete": 0, "problems": 0}
    assert plan["steps"][0]["changes"] == [
        {
            "action": "create",
            "kind": "dispatch namespace",
            "name": NAMESPACE,
            "note": None,
            "fields": [],
        }
    ]
    assert len(plan["steps"][1]["changes"]) == 5
    assert [(c["action"], c["kind"], c["name"]) for c in plan["steps"][2]["changes"]] == [
        ("create", "KV namespace", KV_TITLE),
        ("create", "dispatcher", DISPATCHER),
        ("create", "route", API_PATTERN),
        ("create", "route", ELITE_PATTERN),
    ]
    assert [(s["step"], s["status"]) for s in document["steps"]] == [
        ("namespace", "done"),
        ("bind", "done"),
        ("deploy", "done"),
    ]
    assert document["secrets_to_set"] == {"developer-worker": [MULTI_MODULE_SECRET]}
    assert result.stderr == ""


def test_a_plan_problem_stops_apply_before_it_writes_anything(
    tmp_path: Path,
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
) -> None:
    def change(data: dict[str, Any]) -> None:
        data["workers"]["market-research"]["script"] = "market-research-worker-retired"

    config = write_config(tmp_path, change)

    result = run_cli("apply", "--env", "staging", "--yes", env=cf_env, config=config)
    as_json = run_cli("apply", "--env", "staging", "--yes", "--json", env=cf_env, config=config)

    assert writes(cf_state) == []
    assert result.exit_code == 3
    problem = (
        "       ! worker market-research: the account Worker market-research-worker-retired "
        "to copy does not exist"
    )
    # Each problem once: in the plan, then one error that counts them.
    assert result.stderr.count("market-research-worker-retired") == 1
    assert problem in result.stderr.splitlines()
    assert (
        "error: apply stopped before writing anything: the plan for staging holds 1 problem "
        "(listed with the plan)"
    ) in result.stderr
    assert "hint: check workers.market-research.script" in result.stderr
    assert as_json.exit_code == 3
    document = json.loads(as_json.stdout)
    assert document["ok"] is False
    assert [(s["step"], s["status"]) for s in document["steps"]] == [
        ("namespace", "not run"),
        ("bind", "not run"),
        ("deploy", "not run"),
    ]
    assert document["plan"]["summary"]["problems"] == 1
    assert cf_state.namespace_script_names(cf_seed.account_id, NAMESPACE) == []


def test_a_failing_upload_stops_at_bind_and_says_what_to_do(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    cf_state.fail_next(1, status=403, path_contains=f"/namespaces/{NAMESPACE}/scripts/brand-worker")

    result = run_cli("apply", "--env", "staging", "--yes", "--json", env=cf_env)

    assert result.exit_code == 3
    document = json.loads(result.stdout)
    assert [(s["step"], s["status"]) for s in document["steps"]] == [
        ("namespace", "done"),
        ("bind", "failed"),
        ("deploy", "not run"),
    ]
    assert document["error"].startswith("1 of 5 worker(s) failed to bind: brand-worker: ")
    assert document["next"].endswith(
        "rerun `code24ctl apply --env staging` (workers already bound are left unchanged)"
    )
    assert "apply stopped at step bind: 1 of 5 worker(s) failed to bind" in result.stderr
    assert cf_state.account_script(cf_seed.account_id, DISPATCHER) is None


def test_a_route_conflict_is_a_plan_problem_and_force_takes_it_over(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    add_other_worker(cf_state, cf_seed.account_id)
    cf_state.add_route(cf_seed.zone_id, API_PATTERN, "legacy-router")

    stopped = run_cli("apply", "--env", "staging", "--yes", env=cf_env)

    assert stopped.exit_code == 2  # the user decides: --force or other routes
    assert f"       ! route {API_PATTERN} is routed to legacy-router" in stopped.stderr.splitlines()
    assert "apply stopped before writing anything" in stopped.stderr
    assert "rerun `code24ctl apply --env staging --force`" in stopped.stderr
    assert writes(cf_state) == []
    assert route_owners(cf_state, cf_seed.zone_id) == {API_PATTERN: "legacy-router"}

    forced = run_cli("apply", "--env", "staging", "--yes", "--force", env=cf_env)

    assert forced.exit_code == 0, forced.output
    lines = forced.stderr.splitlines()
    assert f"       ~ route {API_PATTERN}" in lines
    assert f'           ~ script: "legacy-router" -> "{DISPATCHER}"' in lines
    assert route_owners(cf_state, cf_seed.zone_id) == {
        API_PATTERN: DISPATCHER,
        ELITE_PATTERN: DISPATCHER,
    }


def test_missing_token_is_exit_2_without_any_call(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState
) -> None:
    result = run_cli(
        "apply", "--env", "staging", "--yes", env=dict(cf_env, CLOUDFLARE_API_TOKEN="")
    )

    assert result.exit_code == 2
    assert "CLOUDFLARE_API_TOKEN is not set" in result.stderr
    assert cf_state.requests() == []


def test_api_unreachable_is_exit_3(run_cli: RunCli, cf_env: dict[str, str]) -> None:
    with refused_port() as port:
        env = dict(cf_env, CLOUDFLARE_BASE_URL=f"http://127.0.0.1:{port}/client/v4")
        result = run_cli("apply", "--env", "staging", "--yes", env=env)

    assert result.exit_code == 3
    assert "cannot reach the Cloudflare API" in result.stderr
    assert cf_env["CLOUDFLARE_API_TOKEN"] not in result.output


def test_a_step_failing_on_a_usage_error_exits_2_and_an_api_failure_3(
    cf_client: Cloudflare, cf_seed: Code24Seed, cf_state: EmulatorState
) -> None:
    resolved = resolve_config(REPO_CONFIG, "staging")
    session = CloudflareSession.over(cf_client, cf_seed.account_id)
    plan = plan_apply(session, resolved)

    result = execute_apply(session, plan, options=BindOptions(concurrency=0))

    assert [(s.step, s.status) for s in result.steps] == [
        ("namespace", "done"),
        ("bind", "failed"),
        ("deploy", "not run"),
    ]
    error = failure(result)
    assert (error.exit_code, error.message) == (
        2,
        "apply stopped at step bind: --concurrency must be between 1 and 32, not 0",
    )

    cf_state.fail_next(1, status=403, path_contains="/storage/kv/namespaces")
    again = execute_apply(session, plan)

    assert [(s.step, s.status) for s in again.steps][-1] == ("deploy", "failed")
    assert failure(again).exit_code == 3
