"""``code24ctl workers`` end to end: configured aliases against the emulated namespace."""

from __future__ import annotations

import json
import re

from tests.emulator.seeds import Code24Seed
from tests.emulator.state import EmulatorState
from tests.support.builders import rows_of, words
from tests.support.cli import RunCli

NS = "code24-workers-staging"
MODULE = {"worker.js": (b"export default {};\n", "application/javascript+module")}


def _seed(state: EmulatorState, seed: Code24Seed, names: list[str]) -> None:
    state.add_namespace(seed.account_id, NS)
    for name in names:
        state.add_namespace_script(seed.account_id, NS, name, MODULE, main_module="worker.js")


def worker_row(
    alias: str,
    status: str,
    source: str | None,
    *,
    modified_on: str | None = None,
    secrets_missing: list[str] | None = None,
) -> dict[str, object]:
    """One row of the ``workers --json`` document."""
    return {
        "alias": alias,
        "status": status,
        "source": source,
        "modified_on": modified_on,
        "secrets_missing": secrets_missing or [],
    }


def test_workers_shows_bound_missing_and_not_in_config(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    _seed(cf_state, cf_seed, ["brand-worker", "market-research", "legacy-worker"])

    held = cf_state.namespace(cf_seed.account_id, NS)
    assert held is not None
    when = {
        name: f"{s.modified_on[:10]} {s.modified_on[11:16]}" for name, s in held.scripts.items()
    }

    result = run_cli("workers", "--env", "staging", env={**cf_env, "COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    assert rows_of(result.stdout) == words(
        "alias status secrets missing source modified",
        "competitive-analysis missing - script competitive-analysis-worker-staging -",
        f"market-research bound - script market-research-worker-staging {when['market-research']}",
        f"brand-worker bound - script brand-worker-staging {when['brand-worker']}",
        "designer-worker missing - script designer-worker-staging -",
        "developer-worker missing - script advanced-developer-worker-staging -",
        f"legacy-worker not-in-config - - {when['legacy-worker']}",
    )
    assert result.stderr == (
        f"3 configured worker(s) not in {NS}: run `code24ctl bind`\n"
        f"1 Worker(s) in {NS} are not in the config "
        "(remove with `code24ctl unbind legacy-worker`)\n"
    )
    # One paged listing, then each bound copy's secrets against its source's; nothing written.
    routes = [f"{r.method} {r.route}" for r in cf_state.requests()]
    assert routes[0] == (
        "GET GET /accounts/{account_id}/workers/dispatch/namespaces/{namespace}/scripts"
    )
    assert sorted(routes[1:]) == sorted(
        [
            "GET GET /accounts/{account_id}/workers/scripts/{script}/secrets",
            "GET GET /accounts/{account_id}/workers/dispatch/namespaces/{namespace}/scripts/"
            "{script}/secrets",
        ]
        * 2
    )
    assert all(r.method == "GET" for r in cf_state.requests())


def test_workers_json(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    _seed(cf_state, cf_seed, ["brand-worker", "legacy-worker"])
    held = cf_state.namespace(cf_seed.account_id, NS)
    assert held is not None
    modified = {name: script.modified_on for name, script in held.scripts.items()}

    result = run_cli("workers", "--env", "staging", "--json", env=cf_env)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    document = json.loads(result.stdout)
    assert (document["command"], document["environment"], document["namespace"]) == (
        "workers",
        "staging",
        NS,
    )
    assert document["summary"] == {
        "bound": 1,
        "missing": 4,
        "not_in_config": 1,
        "secrets_missing": 0,
    }
    rows = document["workers"]
    for row in rows:  # the API's timestamps, re-serialised by pydantic
        if row["modified_on"] is not None:
            assert row["modified_on"].replace("Z", "+00:00")[:19] == modified[row["alias"]][:19]
            row["modified_on"] = "set"
    assert rows == [
        worker_row("competitive-analysis", "missing", "script competitive-analysis-worker-staging"),
        worker_row("market-research", "missing", "script market-research-worker-staging"),
        worker_row("brand-worker", "bound", "script brand-worker-staging", modified_on="set"),
        worker_row("designer-worker", "missing", "script designer-worker-staging"),
        worker_row("developer-worker", "missing", "script advanced-developer-worker-staging"),
        worker_row("legacy-worker", "not-in-config", None, modified_on="set"),
    ]


def test_workers_lists_every_page_of_a_large_namespace(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    extra = [f"tenant-{i:03d}" for i in range(250)]
    _seed(cf_state, cf_seed, ["designer-worker", *extra])

    result = run_cli("workers", "--env", "staging", "--json", env=cf_env)
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["workers"]
    assert [r["alias"] for r in rows if r["status"] == "not-in-config"] == extra
    assert [r["alias"] for r in rows if r["status"] == "bound"] == ["designer-worker"]
    # 251 Workers, 100 a page; then the bound copy's secrets and its source's
    assert len(cf_state.requests()) == 3 + 2


def test_workers_without_the_namespace_is_exit_3_with_the_fix(
    run_cli: RunCli, cf_env: dict[str, str]
) -> None:
    result = run_cli("workers", "--env", "staging", env=cf_env)
    assert result.exit_code == 3
    assert result.stdout == ""
    assert "Cloudflare API error 100119" in result.stderr
    assert "run `code24ctl namespace create --env staging` first" in result.stderr


def test_workers_refuses_a_local_environment(run_cli: RunCli, cf_env: dict[str, str]) -> None:
    result = run_cli("workers", "--env", "local", env=cf_env)
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: environment 'local' (from --env) is local (it has upstreams)"
    )


def test_repeated_server_errors_are_retried_visibly(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    cf_state.add_namespace(cf_seed.account_id, "code24-workers-staging")
    cf_state.fail_next(3, status="html503", path_contains="/scripts")
    result = run_cli("workers", "--env", "staging", "--json", env=cf_env)
    assert result.exit_code == 0, result.stderr
    assert [row["status"] for row in json.loads(result.stdout)["workers"]] == ["missing"] * 5
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 2  # the second and third retries; the first is only logged at -v
    assert re.fullmatch(
        r"warning: GET /client/v4/accounts/\w+/workers/dispatch/namespaces/"
        r"code24-workers-staging/scripts: HTTP 503; retry 2 of 9 in 0\.\ds",
        warnings[0],
    ), warnings[0]


def test_workers_is_right_for_2500_workers_in_one_namespace(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    extra = [f"tenant-{i:04d}" for i in range(2499)]
    _seed(cf_state, cf_seed, ["brand-worker", *extra])

    result = run_cli("workers", "--env", "staging", "--json", env=cf_env)
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["workers"]
    assert [r["alias"] for r in rows if r["status"] == "not-in-config"] == extra
    assert [r["alias"] for r in rows if r["status"] == "bound"] == ["brand-worker"]
    # The listing's own requests (the bound alias's secrets are read besides).
    listing = [r for r in cf_state.requests() if r.route.endswith("/{namespace}/scripts")]
    assert len(listing) == 25  # 2,500 Workers, 100 a page, each page's cursor followed
    assert [r.query_value("cursor") is None for r in listing] == [True] + [False] * 24


def test_a_full_page_without_a_cursor_fails_instead_of_truncating(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    _seed(cf_state, cf_seed, [f"tenant-{i:03d}" for i in range(150)])
    cf_state.omit_cursor = True

    result = run_cli("workers", "--env", "staging", "--json", env=cf_env)
    assert result.exit_code == 3
    # --json: the failure is the one document on stdout; no partial list is reported.
    assert json.loads(result.stdout)["error"]["exit_status"] == 3
    assert (
        f"list Workers in dispatch namespace {NS}: a full page of 100 came back without a "
        "cursor for the next one" in " ".join(result.stderr.split())
    )
