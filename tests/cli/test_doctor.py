"""``code24ctl doctor`` end to end: the CLI over HTTP to the emulator and a local JSON server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from code24ctl.cli.schemas import COMMAND_MODELS
from code24ctl.cloudflare.client import API_ERROR_HINTS
from tests.emulator.seeds import ACCOUNT_TOKEN, MULTI_MODULE_SECRET, Code24Seed
from tests.emulator.site import VersionSite
from tests.emulator.state import EmulatorState
from tests.support.cli import REPO_CONFIG, RunCli
from tests.support.http_servers import Answer, LocalServer, refused_port
from tests.support.staging import (
    ALIASES,
    API_PATTERN,
    DISPATCHER,
    ELITE_PATTERN,
    NAMESPACE,
    add_other_worker,
    staging_config,
    write_config,
)

HTML_PAGE = Answer(
    200, b"<!doctype html><html><body>Bad gateway</body></html>", content_type="text/html"
)


@pytest.fixture
def json_site() -> Iterator[str]:
    """A tiny server on 127.0.0.1 answering JSON on every path (a healthy dispatcher)."""
    with LocalServer({}, default=Answer(200, b'{"ok": true}')) as server:
        yield server.url


@pytest.fixture
def html_site() -> Iterator[str]:
    """A server on 127.0.0.1 answering an HTML error page on every path."""
    with LocalServer({}, default=HTML_PAGE) as server:
        yield server.url


def bind_directly(
    state: EmulatorState,
    account_id: str,
    aliases: tuple[str, ...] = ALIASES,
    *,
    secrets: bool = True,
    logs: bool = True,
) -> None:
    """Put workers into the namespace without going through code24ctl (with the secret the
    developer-worker's source declares, unless ``secrets`` is False; with Workers Logs on, as
    the repo's config has it, unless ``logs`` is False)."""
    for alias in aliases:
        state.add_namespace_script(
            account_id,
            NAMESPACE,
            alias,
            {
                "worker.js": (
                    "export default {fetch() { return Response.json({}) }}",
                    "application/javascript+module",
                )
            },
            main_module="worker.js",
            secrets={MULTI_MODULE_SECRET: "sk-test"}
            if secrets and alias == "developer-worker"
            else None,
            observability={"enabled": True, "head_sampling_rate": 1} if logs else None,
        )


@pytest.fixture
def set_up(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    """A fully set up staging: namespace, every worker bound, dispatcher deployed with routes."""
    cf_state.add_namespace(cf_seed.account_id, NAMESPACE)
    bind_directly(cf_state, cf_seed.account_id)
    deployed = run_cli("deploy", "--env", "staging", env=cf_env)
    assert deployed.exit_code == 0, deployed.stderr
    cf_state.clear_requests()


def checks(stdout: str) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in json.loads(stdout)["checks"]}


def test_a_fully_set_up_environment_is_all_ok(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, set_up: None, json_site: str
) -> None:
    result = run_cli("doctor", "--env", "staging", "--base-url", json_site, env=cf_env)

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "ok    token: user token, active",
        "ok    account: Code24 Platform (0123456789abcdef0123456789abcdef)",
        "ok    workers for platforms: available (1 namespace(s))",
        f"ok    namespace: {NAMESPACE} exists",
        *[f"ok    worker {alias}: bound in {NAMESPACE}" for alias in ALIASES],
        f"ok    dispatcher: {DISPATCHER} deployed with the expected bindings",
        f"ok    route {API_PATTERN}: routed to {DISPATCHER}",
        f"ok    route {ELITE_PATTERN}: routed to {DISPATCHER}",
        "ok    outbound: no outbound Worker configured",
        f"ok    probe: 5 route(s) answer JSON at {json_site}",
    ]
    assert result.stderr.strip() == "14 ok, 0 warn, 0 fail, 0 skipped"
    assert {r.method for r in cf_state.requests()} == {"GET"}


def test_doctor_json_is_one_document_of_rows(
    run_cli: RunCli, cf_env: dict[str, str], set_up: None, json_site: str
) -> None:
    result = run_cli("doctor", "--env", "staging", "--base-url", json_site, "--json", env=cf_env)

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["environment"] == "staging"
    assert document["ok"] is True
    assert document["command"] == "doctor"
    assert document["namespace"] == NAMESPACE
    assert document["summary"] == {"ok": 14, "warn": 0, "fail": 0, "skip": 0}
    assert document["checks"][0] == {
        "name": "token",
        "status": "ok",
        "detail": "user token, active",
        "fix": None,
        "differences": [],
    }


def test_missing_namespace_fails_with_its_fix_and_skips_the_workers(
    run_cli: RunCli, cf_env: dict[str, str], json_site: str
) -> None:
    result = run_cli("doctor", "--env", "staging", "--base-url", json_site, "--json", env=cf_env)

    assert result.exit_code == 1
    rows = checks(result.stdout)
    assert rows["namespace"] == {
        "name": "namespace",
        "status": "fail",
        "detail": f"dispatch namespace {NAMESPACE} does not exist",
        "fix": "code24ctl namespace create --env staging",
        "differences": [],
    }
    assert {rows[f"worker {a}"]["status"] for a in ALIASES} == {"skip"}
    assert rows["dispatcher"]["status"] == "fail"
    assert rows["dispatcher"]["fix"] == "code24ctl deploy --env staging"
    assert rows[f"route {API_PATTERN}"]["detail"] == "missing on zone code24.dev"
    assert rows["probe"]["status"] == "ok"
    assert "check(s) failed: namespace, dispatcher" in result.stderr


def test_a_missing_worker_fails_with_the_bind_command(
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    json_site: str,
) -> None:
    cf_state.add_namespace(cf_seed.account_id, NAMESPACE)
    bind_directly(cf_state, cf_seed.account_id, tuple(a for a in ALIASES if a != "brand-worker"))
    bind_directly(cf_state, cf_seed.account_id, ("old-experiment",))
    assert run_cli("deploy", "--env", "staging", env=cf_env).exit_code == 0

    result = run_cli("doctor", "--env", "staging", "--base-url", json_site, env=cf_env)

    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert f"FAIL  worker brand-worker: not in {NAMESPACE} (script brand-worker-staging)" in lines
    assert "      fix: code24ctl bind brand-worker --env staging" in lines
    assert f"warn  workers not in config: {NAMESPACE} also holds old-experiment" in lines
    assert f"ok    worker market-research: bound in {NAMESPACE}" in lines
    assert "check(s) failed: worker brand-worker" in result.stderr


def test_outbound_worker_that_is_the_dispatcher_itself_is_refused_by_the_config(
    tmp_path: Path, run_cli: RunCli, cf_env: dict[str, str]
) -> None:
    def change(data: dict[str, Any]) -> None:
        data["environments"]["staging"]["outbound"] = {"worker": DISPATCHER, "params": []}

    config = write_config(tmp_path, change)
    for command in (["doctor"], ["deploy", "--dry-run"]):
        result = run_cli(*command, "--env", "staging", "--json", env=cf_env, config=config)
        assert result.exit_code == 2, command
        assert json.loads(result.stdout)["error"]["code"] == "config"
        assert (
            f"environments.staging: outbound worker '{DISPATCHER}' is the dispatcher itself"
            in result.stderr
        )


def test_a_deployed_outbound_loop_is_found_from_the_dispatcher_settings(
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    set_up: None,
    json_site: str,
) -> None:
    # Someone deployed the dispatcher by hand with itself as the outbound Worker.
    deployed = cf_state.account_script(cf_seed.account_id, DISPATCHER)
    assert deployed is not None
    bindings = [dict(b) for b in deployed.bindings]
    for binding in bindings:
        if binding["type"] == "dispatch_namespace":
            binding["outbound"] = {"worker": {"service": DISPATCHER}}
    cf_state.add_account_script(
        cf_seed.account_id,
        DISPATCHER,
        {name: (m.content, m.content_type) for name, m in deployed.modules.items()},
        deployed.main_module or "dispatcher.js",
        bindings,
        deployed.compatibility_date,
    )

    result = run_cli("doctor", "--env", "staging", "--base-url", json_site, "--json", env=cf_env)

    assert result.exit_code == 1
    rows = checks(result.stdout)
    assert rows["outbound"] == {
        "name": "outbound",
        "status": "fail",
        "detail": f"the deployed DISPATCHER binding sends outbound traffic to {DISPATCHER} itself",
        "fix": "code24ctl deploy --env staging",
        "differences": [],
    }


def test_a_route_owned_by_another_worker_fails_with_deploy_force(
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    json_site: str,
) -> None:
    cf_state.add_namespace(cf_seed.account_id, NAMESPACE)
    bind_directly(cf_state, cf_seed.account_id)
    add_other_worker(cf_state, cf_seed.account_id)
    cf_state.add_route(cf_seed.zone_id, ELITE_PATTERN, "legacy-router")
    assert run_cli("deploy", "--env", "staging", env=cf_env).exit_code == 2

    result = run_cli("doctor", "--env", "staging", "--base-url", json_site, "--json", env=cf_env)

    assert result.exit_code == 1
    rows = checks(result.stdout)
    assert rows[f"route {ELITE_PATTERN}"] == {
        "name": f"route {ELITE_PATTERN}",
        "status": "fail",
        "detail": f"routed to legacy-router, not {DISPATCHER}",
        "fix": "code24ctl deploy --force --env staging",
        "differences": [],
    }


def test_a_changed_config_makes_the_dispatcher_bindings_stale(
    tmp_path: Path, run_cli: RunCli, cf_env: dict[str, str], set_up: None, json_site: str
) -> None:
    def change(data: dict[str, Any]) -> None:
        data["workers"]["market-research"]["timeout_ms"] = 1000
        data["environments"]["staging"]["vars"]["FEATURE"] = "on"

    config = write_config(tmp_path, change)

    result = run_cli(
        "doctor", "--env", "staging", "--base-url", json_site, "--json", env=cf_env, config=config
    )

    assert result.exit_code == 1
    dispatcher = checks(result.stdout)["dispatcher"]
    assert dispatcher["detail"] == f"{DISPATCHER}: 2 differences from what deploy would upload"
    assert [(d["action"], d["path"], d["old"], d["new"]) for d in dispatcher["differences"]] == [
        (
            "create",
            "binding FEATURE",
            None,
            {"type": "plain_text", "name": "FEATURE", "text": "on"},
        ),
        ("update", "ROUTE_TABLE.workers.market-research.timeout_ms", 30000, 1000),
    ]


def test_an_account_owned_token_is_verified_on_the_account_endpoint(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, set_up: None, json_site: str
) -> None:
    env = dict(cf_env, CLOUDFLARE_API_TOKEN=ACCOUNT_TOKEN)

    result = run_cli("doctor", "--env", "staging", "--base-url", json_site, "--json", env=env)

    assert result.exit_code == 0, result.output
    assert checks(result.stdout)["token"]["detail"] == "account-owned token, active"
    verifies = [(r.path, r.status) for r in cf_state.requests(path_contains="tokens/verify")]
    assert verifies == [
        ("/user/tokens/verify", 401),
        (f"/accounts/{cf_env['CLOUDFLARE_ACCOUNT_ID']}/tokens/verify", 200),
    ]
    assert ACCOUNT_TOKEN not in result.output


def test_a_refused_token_fails_and_skips_every_api_check(
    run_cli: RunCli, cf_env: dict[str, str], json_site: str
) -> None:
    wrong = "tok_wrong_SECRET_aaaabbbbccccdddd"
    env = dict(cf_env, CLOUDFLARE_API_TOKEN=wrong)

    result = run_cli("doctor", "--env", "staging", "--base-url", json_site, env=env)

    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "FAIL  token: Cloudflare refused the token (HTTP 401)"
    assert lines[1] == "      fix: export CLOUDFLARE_API_TOKEN=<a valid API token for this account>"
    assert "skip  namespace: needs a valid token and a reachable account" in lines
    assert wrong not in result.output
    assert "SECRET" not in result.output


def test_an_account_without_workers_for_platforms(
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    json_site: str,
) -> None:
    cf_state.set_wfp(cf_seed.account_id, False)

    result = run_cli("doctor", "--env", "staging", "--base-url", json_site, "--json", env=cf_env)

    assert result.exit_code == 1
    rows = checks(result.stdout)
    assert rows["workers for platforms"] == {
        "name": "workers for platforms",
        "status": "fail",
        "detail": "this account does not have Workers for Platforms (API code 10121)",
        "fix": "enable it in the dashboard: Workers & Pages > Workers for Platforms",
        "differences": [],
    }
    assert rows["namespace"]["status"] == "skip"


def test_routes_answering_html_fail_the_probe(
    run_cli: RunCli, cf_env: dict[str, str], set_up: None, html_site: str
) -> None:
    result = run_cli("doctor", "--env", "staging", "--base-url", html_site, "--json", env=cf_env)

    assert result.exit_code == 1
    probe = checks(result.stdout)["probe"]
    assert probe["status"] == "fail"
    assert probe["detail"].startswith(
        f"5 of 5 route(s) failing at {html_site}: /api/competitive html"
    )
    workers = " ".join(f"--worker {alias}" for alias in ALIASES)
    assert probe["fix"] == (
        f"code24ctl probe --env staging --base-url {html_site}; see why: code24ctl logs --env "
        f"staging {workers} --errors-only --since 15m"
    )


def test_missing_token_is_exit_2(run_cli: RunCli, cf_env: dict[str, str]) -> None:
    result = run_cli("doctor", "--env", "staging", env=dict(cf_env, CLOUDFLARE_API_TOKEN=""))

    assert result.exit_code == 2
    assert "CLOUDFLARE_API_TOKEN is not set" in result.stderr
    assert result.stdout == ""


def test_a_local_environment_checks_what_serve_needs(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState
) -> None:
    """No API call: Node.js and miniflare (--runtime workerd), each alias's source, a probe."""
    modules = Path(__file__).parents[1] / "js" / "node_modules"
    before = len(cf_state.requests())
    with refused_port() as port:
        env = dict(cf_env, CODE24_NODE_MODULES=str(modules))
        base_url = f"http://127.0.0.1:{port}"
        result = run_cli("doctor", "--env", "local", "--base-url", base_url, "--json", env=env)

    assert result.exit_code == 1
    assert statuses(result.stdout) == [
        ("node", "ok"),
        ("miniflare", "ok"),
        ("sources", "ok"),
        ("probe", "fail"),
    ]
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["miniflare"]["detail"] == f"miniflare 4.20260426.0 in {modules / 'miniflare'}"
    assert checks["sources"]["detail"].startswith("brand-worker: http://127.0.0.1:8790; ")
    # No `logs` hint: a local environment has no Workers Logs and `logs --env local` is refused.
    assert checks["probe"]["fix"] == f"code24ctl probe --env local --base-url {base_url}"
    assert "error: doctor: 1 check(s) failed: probe" in result.stderr
    assert len(cf_state.requests()) == before


def test_local_doctor_names_the_miniflare_install(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("doctor", "--env", "local", "--json", env={"CODE24_CACHE_DIR": str(tmp_path)})

    document = json.loads(result.stdout)
    COMMAND_MODELS["doctor"].model_validate(document)
    assert document["namespace"] is None
    checks = {c["name"]: c for c in document["checks"]}
    assert checks["miniflare"]["status"] == "warn"
    assert checks["miniflare"]["fix"] == (
        f"npm install --prefix {tmp_path}/miniflare-4.20260426.0 --no-audit --no-fund "
        "miniflare@4.20260426.0"
    )


def test_api_unreachable_is_exit_3(run_cli: RunCli, cf_env: dict[str, str]) -> None:
    with refused_port() as port:
        env = dict(cf_env, CLOUDFLARE_BASE_URL=f"http://127.0.0.1:{port}/client/v4")
        result = run_cli("doctor", "--env", "staging", env=env)

    assert result.exit_code == 3
    assert "verify the API token: cannot reach the Cloudflare API" in result.stderr
    assert cf_env["CLOUDFLARE_API_TOKEN"] not in result.output


def statuses(stdout: str) -> list[tuple[str, str]]:
    return [(c["name"], c["status"]) for c in json.loads(stdout)["checks"]]


def test_a_token_refused_on_the_zone_routes_read_fails_only_the_routes(
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    set_up: None,
    json_site: str,
) -> None:
    limited = "tok_no_routes_SECRET_aaaabbbbcccc"
    cf_state.add_token(limited, account_id=cf_seed.account_id, deny=["routes"])
    env = dict(cf_env, CLOUDFLARE_API_TOKEN=limited)

    result = run_cli("doctor", "--env", "staging", "--base-url", json_site, "--json", env=env)

    assert result.exit_code == 1, result.output
    assert checks(result.stdout)["routes"] == {
        "name": "routes",
        "status": "fail",
        "detail": "list Worker routes of zone code24.dev: "
        "Cloudflare API error 10000: Authentication error (HTTP 403)",
        "fix": API_ERROR_HINTS[10000],
        "differences": [],
    }
    assert statuses(result.stdout) == [
        ("token", "ok"),
        ("account", "ok"),
        ("workers for platforms", "ok"),
        ("namespace", "ok"),
        *[(f"worker {alias}", "ok") for alias in ALIASES],
        ("dispatcher", "ok"),
        ("routes", "fail"),
        ("outbound", "ok"),
        ("probe", "ok"),
    ]
    assert result.stderr.strip() == "error: doctor: 1 check(s) failed: routes"
    assert "SECRET" not in result.output


def _refused_hint(cf_env: dict[str, str]) -> str:
    """A 403 on an account path: the token hint, and the account the request named."""
    return (
        f"{API_ERROR_HINTS[10000]}; or account {cf_env['CLOUDFLARE_ACCOUNT_ID']} (from "
        "CLOUDFLARE_ACCOUNT_ID) may not be yours: `code24ctl whoami` tells a wrong account "
        "from a wrong token"
    )


def test_a_failed_dispatcher_settings_read_fails_the_dispatcher_and_skips_outbound(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, set_up: None, json_site: str
) -> None:
    cf_state.fail_next(1, status=403, path_contains=f"/workers/scripts/{DISPATCHER}/settings")

    result = run_cli("doctor", "--env", "staging", "--base-url", json_site, "--json", env=cf_env)

    assert result.exit_code == 1, result.output
    rows = checks(result.stdout)
    assert rows["dispatcher"] == {
        "name": "dispatcher",
        "status": "fail",
        "detail": f"read settings of Worker {DISPATCHER}: "
        "Cloudflare API error 10000: Injected fault (HTTP 403)",
        "fix": _refused_hint(cf_env),
        "differences": [],
    }
    assert rows["outbound"] == {
        "name": "outbound",
        "status": "skip",
        "detail": "needs the deployed dispatcher's settings",
        "fix": None,
        "differences": [],
    }
    assert [name for name, status in statuses(result.stdout) if status != "ok"] == [
        "dispatcher",
        "outbound",
    ]


def test_a_failed_namespace_listing_fails_the_workers_row(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, set_up: None, json_site: str
) -> None:
    cf_state.fail_next(1, status=403, path_contains=f"/namespaces/{NAMESPACE}/scripts")

    result = run_cli("doctor", "--env", "staging", "--base-url", json_site, "--json", env=cf_env)

    assert result.exit_code == 1, result.output
    rows = checks(result.stdout)
    assert rows["workers"] == {
        "name": "workers",
        "status": "fail",
        "detail": f"list Workers in dispatch namespace {NAMESPACE}: "
        "Cloudflare API error 10000: Injected fault (HTTP 403)",
        "fix": _refused_hint(cf_env),
        "differences": [],
    }
    assert not any(name.startswith("worker ") for name in rows)
    assert [name for name, status in statuses(result.stdout) if status != "ok"] == ["workers"]


def test_a_failing_token_verification_is_a_failed_row_not_exit_3(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, json_site: str
) -> None:
    # More 500s than the SDK retries: the verification fails for good.
    cf_state.fail_next(5, status="json500", path_contains="/user/tokens/verify")

    result = run_cli("doctor", "--env", "staging", "--base-url", json_site, "--json", env=cf_env)

    assert result.exit_code == 1, result.output
    rows = checks(result.stdout)
    assert rows["token"]["status"] == "fail"
    assert rows["token"]["detail"].startswith("verify the API token: Cloudflare API error ")
    # The seconds spent depend on the backoff's jitter; the attempts and the deadline do not.
    assert "(HTTP 500); gave up after 4 attempts over " in rows["token"]["detail"]
    assert rows["token"]["detail"].endswith(" s (a call may take at most 60 s)")
    assert statuses(result.stdout)[1:] == [
        (name, "skip")
        for name in (
            "workers for platforms",
            "namespace",
            "workers",
            "dispatcher",
            "routes",
            "outbound",
        )
    ] + [("probe", "ok")]


def test_a_worker_missing_a_declared_secret_is_a_warning_naming_the_secret_put(
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    json_site: str,
) -> None:
    cf_state.add_namespace(cf_seed.account_id, NAMESPACE)
    bind_directly(cf_state, cf_seed.account_id, secrets=False)
    assert run_cli("deploy", "--env", "staging", env=cf_env).exit_code == 0

    result = run_cli("doctor", "--env", "staging", "--base-url", json_site, env=cf_env)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    at = lines.index(
        f"warn  secret developer-worker {MULTI_MODULE_SECRET}: script "
        f"advanced-developer-worker-staging declares secret {MULTI_MODULE_SECRET}; the copy in "
        f"{NAMESPACE} does not have it"
    )
    assert lines[at + 1] == (
        f"      fix: code24ctl secret put developer-worker {MULTI_MODULE_SECRET} --env staging"
    )
    assert result.stderr.strip() == "14 ok, 1 warn, 0 fail, 0 skipped"


def test_a_bound_worker_whose_source_runs_on_cron_schedules_is_listed(
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    set_up: None,
    json_site: str,
) -> None:
    # A copy in a dispatch namespace keeps no cron triggers (workers-sdk #13840).
    cf_state.set_schedules(cf_seed.account_id, "brand-worker-staging", ["*/30 * * * *"])

    result = run_cli("doctor", "--env", "staging", "--base-url", json_site, env=cf_env)

    assert result.exit_code == 0, result.output
    assert (
        "warn  schedules brand-worker: script brand-worker-staging runs on cron schedules "
        f"(*/30 * * * *); its copy in {NAMESPACE} keeps none"
    ) in result.stdout.splitlines()
    assert result.stderr.strip() == "14 ok, 1 warn, 0 fail, 0 skipped"


def test_copies_without_workers_logs_are_a_warning_naming_the_config_key(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    cf_state.add_namespace(cf_seed.account_id, NAMESPACE)
    bind_directly(cf_state, cf_seed.account_id, ("brand-worker", "designer-worker"), logs=False)
    bind_directly(cf_state, cf_seed.account_id, ("competitive-analysis",))
    result = run_cli("doctor", "--env", "staging", "--json", env=cf_env)
    (check,) = [c for c in json.loads(result.stdout)["checks"] if c["name"] == "workers logs"]
    assert check == {
        "name": "workers logs",
        "status": "warn",
        "detail": f"Workers Logs is off for brand-worker, designer-worker in {NAMESPACE}: "
        "`code24ctl logs` finds nothing for them",
        "fix": f"set observability: {{enabled: true}} (platform-wide or under workers.<alias>) "
        f"in {REPO_CONFIG}, then code24ctl bind --env staging",
        "differences": [],
    }


def test_a_dispatcher_without_workers_logs_is_a_warning_naming_the_config_key(
    tmp_path: Path,
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    json_site: str,
    cf_site: VersionSite,
) -> None:
    # Without the platform-wide observability, deploy leaves the dispatcher's Workers Logs as
    # they are (off, for a new Worker): `logs --request-id` cannot find its line.
    def change(data: dict[str, Any]) -> None:
        del data["observability"]
        for worker in data["workers"].values():
            worker["observability"] = {"enabled": True}

    config = write_config(tmp_path, change)
    cf_state.add_namespace(cf_seed.account_id, NAMESPACE)
    bind_directly(cf_state, cf_seed.account_id)
    assert run_cli("deploy", "--env", "staging", env=cf_env, config=config).exit_code == 0

    result = run_cli(
        "doctor", "--env", "staging", "--base-url", json_site, "--json", env=cf_env, config=config
    )

    assert result.exit_code == 0, result.output
    assert checks(result.stdout)["dispatcher logs"] == {
        "name": "dispatcher logs",
        "status": "warn",
        "detail": f"Workers Logs is off for the dispatcher {DISPATCHER}: `code24ctl logs "
        "--request-id` cannot show the dispatcher's own line for a request",
        "fix": f"set observability: {{enabled: true}} (platform-wide) in {config}, then "
        "code24ctl deploy --env staging",
        "differences": [],
    }
    assert checks(result.stdout)["dispatcher"]["status"] == "ok"

    # The repo config turns it on: deploy is the fix, and after it the warning is gone. The
    # changed dispatcher is probed through the override on the test site before 100%.
    (tmp_path / "site").mkdir()
    repo = staging_config(tmp_path / "site", cf_site.url)
    stale = run_cli(
        "doctor", "--env", "staging", "--base-url", json_site, "--json", env=cf_env, config=repo
    )
    assert checks(stale.stdout)["dispatcher logs"]["fix"] == (
        "code24ctl deploy --env staging  (the config turns it on)"
    )
    dispatcher = checks(stale.stdout)["dispatcher"]
    assert [(d["path"], d["old"], d["new"]) for d in dispatcher["differences"]] == [
        ("observability", None, {"enabled": True, "head_sampling_rate": 1.0})
    ]
    assert run_cli("deploy", "--env", "staging", env=cf_env, config=repo).exit_code == 0
    fixed = run_cli(
        "doctor", "--env", "staging", "--base-url", json_site, "--json", env=cf_env, config=repo
    )
    assert "dispatcher logs" not in checks(fixed.stdout)
    assert checks(fixed.stdout)["dispatcher"]["status"] == "ok"
