"""``code24ctl namespace`` end to end: the CLI over real HTTP against the emulated API."""

from __future__ import annotations

import json

from tests.emulator.seeds import Code24Seed
from tests.emulator.state import EmulatorState
from tests.support.cli import RunCli
from tests.support.clock import FakeClock

STAGING_NS = "code24-workers-staging"


def _writes(state: EmulatorState) -> list[str]:
    return [f"{r.method} {r.path}" for r in state.requests() if r.method != "GET"]


def test_create_then_create_again_is_success(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    first = run_cli("namespace", "create", "--env", "staging", env=cf_env)
    assert first.exit_code == 0, first.stderr
    ns = cf_state.namespace(cf_seed.account_id, STAGING_NS)
    assert ns is not None
    assert first.stdout == f"created dispatch namespace {STAGING_NS} (id {ns.id})\n"

    again = run_cli("namespace", "create", "--env", "staging", env=cf_env)
    assert again.exit_code == 0
    assert again.stdout == f"already exists: dispatch namespace {STAGING_NS} (id {ns.id})\n"
    assert len(cf_state.namespaces(cf_seed.account_id)) == 1

    as_json = json.loads(run_cli("namespace", "create", "--json", env=cf_env).stdout)
    assert as_json["command"] == "namespace create"
    assert as_json["environment"] == "staging"
    assert as_json["created"] is False
    assert as_json["namespace"] == STAGING_NS
    assert as_json["id"] == ns.id


def test_create_named_namespace(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    result = run_cli("namespace", "create", "scratch-ns", env=cf_env)
    assert result.exit_code == 0
    assert cf_state.namespace(cf_seed.account_id, "scratch-ns") is not None


def test_list_shows_name_id_count_created(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    empty = run_cli("namespace", "list", env=cf_env)
    assert empty.exit_code == 0
    assert empty.stdout == ""
    assert "no dispatch namespaces on this account" in empty.stderr

    ns_id = cf_state.add_namespace(cf_seed.account_id, STAGING_NS)
    cf_state.add_namespace(cf_seed.account_id, "another-ns")
    cf_state.add_namespace_script(
        cf_seed.account_id,
        STAGING_NS,
        "brand-worker",
        {"index.js": (b"export default {}", "application/javascript+module")},
        "index.js",
    )
    result = run_cli("namespace", "list", env={**cf_env, "COLUMNS": "200"})
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["name", "id", "scripts", "created"]
    assert lines[1].split()[:3] == ["another-ns", lines[1].split()[1], "0"]
    assert lines[2].split()[:3] == [STAGING_NS, ns_id, "1"]

    doc = json.loads(run_cli("namespace", "list", "--json", env=cf_env).stdout)
    assert (doc["command"], doc["environment"], doc["namespace"]) == ("namespace list", None, None)
    assert doc["summary"] == {"namespaces": 2}
    rows = doc["namespaces"]
    assert [(r["name"], r["script_count"]) for r in rows] == [("another-ns", 0), (STAGING_NS, 1)]
    assert rows[1]["id"] == ns_id


def test_get_missing_namespace_is_exit_3_with_the_fix(
    run_cli: RunCli, cf_env: dict[str, str]
) -> None:
    result = run_cli("namespace", "get", env=cf_env)
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr == (
        f"error: dispatch namespace {STAGING_NS} does not exist on this account "
        "(Cloudflare API error 100119)\n"
        "  hint: run `code24ctl namespace create --env staging` first "
        "(or `code24ctl apply --env staging` for every step)\n"
    )
    named = run_cli("namespace", "get", "other-ns", env=cf_env)
    assert named.exit_code == 3
    assert "hint: run `code24ctl namespace create other-ns` first\n" in named.stderr


def test_get_shows_details(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    ns_id = cf_state.add_namespace(cf_seed.account_id, STAGING_NS)
    result = run_cli("namespace", "get", env=cf_env)
    assert result.exit_code == 0
    assert result.stdout.splitlines()[:3] == [
        f"name:     {STAGING_NS}",
        f"id:       {ns_id}",
        "scripts:  0",
    ]
    doc = json.loads(run_cli("namespace", "get", STAGING_NS, "--json", env=cf_env).stdout)
    assert doc["namespace"] == STAGING_NS
    assert doc["script_count"] == 0


def _with_two_workers(state: EmulatorState, seed: Code24Seed) -> None:
    state.add_namespace(seed.account_id, STAGING_NS)
    for alias in ("brand-worker", "designer-worker"):
        state.add_namespace_script(
            seed.account_id,
            STAGING_NS,
            alias,
            {"index.js": (b"export default {}", "application/javascript+module")},
            "index.js",
        )


def test_delete_without_terminal_or_yes_refuses_and_deletes_nothing(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    _with_two_workers(cf_state, cf_seed)
    result = run_cli("namespace", "delete", STAGING_NS, env=cf_env)
    assert result.exit_code == 2
    assert f"dispatch namespace {STAGING_NS} holds 2 Worker(s)" in result.stderr
    assert "refusing to continue without confirmation" in result.stderr
    assert "hint: rerun with --yes" in result.stderr
    assert _writes(cf_state) == []
    assert cf_state.namespace_script_names(cf_seed.account_id, STAGING_NS) == [
        "brand-worker",
        "designer-worker",
    ]


def test_delete_with_yes(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    _with_two_workers(cf_state, cf_seed)
    result = run_cli("namespace", "delete", STAGING_NS, "--yes", env=cf_env)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        f"deleted dispatch namespace {STAGING_NS}, its 2 Worker(s) and 0 secret(s)\n"
    )
    assert cf_state.namespace(cf_seed.account_id, STAGING_NS) is None


def test_delete_json_and_missing(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    _with_two_workers(cf_state, cf_seed)
    doc = json.loads(run_cli("namespace", "delete", STAGING_NS, "-y", "--json", env=cf_env).stdout)
    assert doc["deleted"] is True
    assert (doc["namespace"], doc["script_count"], doc["secrets"]) == (STAGING_NS, 2, 0)
    missing = run_cli("namespace", "delete", STAGING_NS, "--yes", env=cf_env)
    assert missing.exit_code == 3
    assert missing.stderr == (
        f"error: dispatch namespace {STAGING_NS} does not exist on this account: "
        "nothing to delete (Cloudflare API error 100119)\n"
        "  hint: `code24ctl namespace list` shows the namespaces this account has\n"
    )


def test_names_that_the_api_would_reject_are_exit_2(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState
) -> None:
    for args in (
        ["namespace", "create", "Bad Name!"],
        ["namespace", "get", "../x"],
        ["namespace", "delete", "a/b", "--yes"],
    ):
        result = run_cli(*args, env=cf_env)
        assert result.exit_code == 2, args
        assert "error: not a valid dispatch namespace name: " in result.stderr
    assert _writes(cf_state) == []
    assert cf_state.requests() == []


def test_an_account_id_that_would_change_the_path_is_exit_2(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState
) -> None:
    env = {**cf_env, "CLOUDFLARE_ACCOUNT_ID": "abc/../../user"}
    result = run_cli("namespace", "list", env=env)
    assert result.exit_code == 2
    assert "account id 'abc/../../user' is not a Cloudflare account id" in result.stderr
    assert cf_state.requests() == []


def test_refused_token_is_exit_3_with_permission_hint(
    run_cli: RunCli, cf_env: dict[str, str]
) -> None:
    result = run_cli("namespace", "list", env={**cf_env, "CLOUDFLARE_API_TOKEN": "tok_wrong_123"})
    assert result.exit_code == 3
    assert "Cloudflare API error 10000" in result.stderr
    assert "hint: the token was refused" in result.stderr
    assert "tok_wrong_123" not in result.output


def test_account_without_workers_for_platforms(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    cf_state.set_wfp(cf_seed.account_id, False)
    result = run_cli("namespace", "list", env=cf_env)
    assert result.exit_code == 3
    assert "Cloudflare API error 10121" in result.stderr
    assert "lacks Workers for Platforms" in result.stderr


def test_html_error_page_is_never_dumped(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState
) -> None:
    cf_state.fail_next(5, status="html503")
    result = run_cli("namespace", "list", env=cf_env)
    assert result.exit_code == 3
    assert "the Cloudflare API answered HTTP 503 with an HTML page" in result.stderr
    assert "<" not in result.stderr


def test_a_burst_of_rate_limits_is_ridden_out_visibly(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState
) -> None:
    cf_state.fail_next(3, status=429, retry_after=0.1)
    result = run_cli("namespace", "list", "--json", env=cf_env)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["namespaces"] == []
    assert cf_state.counters()["served_429"] == 3
    assert [line.split(": HTTP ")[1] for line in result.stderr.splitlines()] == [
        "429; retry 2 in 0.1s (60 s left of this call)",
        "429; retry 3 in 0.1s (60 s left of this call)",
    ]


def test_a_long_retry_after_is_said_once_with_its_reason_and_the_time_left(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, api_clock: FakeClock
) -> None:
    cf_state.fail_next(1, status=429, retry_after=30)
    result = run_cli("namespace", "list", "--json", env=cf_env)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["namespaces"] == []
    assert cf_state.counters()["served_429"] == 1
    assert api_clock.sleeps == [30.0]  # the Retry-After, waited once (on the fake clock)
    # One line for the one wait: the transport's, not also the pacer's "waiting for ...".
    assert result.stderr.splitlines() == [
        f"warning: GET /client/v4/accounts/{cf_env['CLOUDFLARE_ACCOUNT_ID']}/workers/dispatch/"
        "namespaces: HTTP 429; retry 1 in 30.0s (60 s left of this call)"
    ]


def test_a_failing_api_is_reported_in_seconds(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState
) -> None:
    cf_state.fail_next(10, status="html503")
    result = run_cli("namespace", "list", env=cf_env)
    assert result.exit_code == 3
    assert "answered HTTP 503 with an HTML page" in result.stderr
    assert cf_state.counters()["requests"] == 4  # the first try and three retries


def test_verbose_logs_never_show_the_token(
    run_cli: RunCli, cf_env: dict[str, str], cf_seed: Code24Seed
) -> None:
    result = run_cli("-vv", "namespace", "create", env=cf_env)
    assert result.exit_code == 0
    assert "HTTP Request: POST" in result.stderr  # the logs are there...
    assert cf_seed.user_token not in result.output  # ...the token is not
