"""``code24ctl deploy`` end to end: the CLI over real HTTP to the Cloudflare emulator."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from code24ctl import __version__
from code24ctl.cloudflare.versions import config_hash
from code24ctl.config import resolve_config
from code24ctl.dispatch.table import compile_route_table
from code24ctl.ops.deploy_routes import route_host, zone_candidates
from code24ctl.ops.dispatcher_worker import dispatcher_module
from tests.emulator.seeds import Code24Seed
from tests.emulator.site import VersionSite
from tests.emulator.state import EmulatorState
from tests.support.cli import REPO_CONFIG, RunCli
from tests.support.http_servers import refused_port
from tests.support.staging import (
    API_PATTERN,
    DISPATCHER,
    ELITE_PATTERN,
    KV_TITLE,
    NAMESPACE,
    add_other_worker,
    route_owners,
    staging_config,
    write_config,
    writes,
)

if TYPE_CHECKING:
    from cloudflare import Cloudflare


# Every Worker code24ctl writes carries its platform, environment and role.
DISPATCHER_TAGS = [
    "code24ctl-platform:code24",
    "code24ctl-environment:staging",
    "code24ctl-role:dispatcher",
]
# The repo config's platform-wide Workers Logs, which deploy gives the dispatcher too.
LOGS_ON = {"enabled": True, "head_sampling_rate": 1.0}
# How a changed dispatcher over a serving one reaches traffic (the plan's dispatcher line).
PROBED_NOTE = "a new version, probed at 0% through the version override before 100%"


def staging_route_table() -> dict[str, Any]:
    return compile_route_table(resolve_config(REPO_CONFIG, "staging").config)


def expected_bindings(kv_id: str, dispatcher: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The staging dispatcher's bindings, exactly as deploy must upload them."""
    return [
        dispatcher or {"type": "dispatch_namespace", "name": "DISPATCHER", "namespace": NAMESPACE},
        {"type": "kv_namespace", "name": "METADATA", "namespace_id": kv_id},
        {"type": "plain_text", "name": "ENVIRONMENT", "text": "staging"},
        {"type": "plain_text", "name": "PLATFORM_NAME", "text": "Code24"},
        {"type": "json", "name": "ROUTE_TABLE", "json": staging_route_table()},
        {"type": "version_metadata", "name": "CF_VERSION_METADATA"},
    ]


def kv_id(state: EmulatorState, account_id: str, title: str = KV_TITLE) -> str:
    found = [kv.id for kv in state.kv_namespaces(account_id) if kv.title == title]
    assert len(found) == 1, f"expected one KV namespace titled {title}, found {found}"
    return found[0]


def split_of(state: EmulatorState, seed: Code24Seed) -> dict[str, float]:
    """The dispatcher's serving deployment as {version id: percentage}."""
    return state.versions.split(seed.account_id, DISPATCHER)


@pytest.fixture
def with_namespace(cf_state: EmulatorState, cf_seed: Code24Seed) -> None:
    cf_state.add_namespace(cf_seed.account_id, NAMESPACE)


# --------------------------------------------------------------------------------------------
# Pre-flight


def test_deploy_before_the_namespace_exists_names_the_fix_and_uploads_nothing(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState
) -> None:
    result = run_cli("deploy", "--env", "staging", env=cf_env)

    assert result.exit_code == 3
    assert result.stdout == ""
    assert "dispatch namespace code24-workers-staging does not exist" in result.stderr
    assert "run `code24ctl namespace create --env staging` first" in result.stderr
    assert writes(cf_state) == []
    # The plan reads (it is the dry run's too); nothing under the scripts is written.
    assert {r.method for r in cf_state.requests(path_contains="/workers/scripts/")} <= {"GET"}


def test_dry_run_previews_a_new_environment_and_names_the_missing_namespace(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState
) -> None:
    result = run_cli("deploy", "--env", "staging", "--dry-run", "--show-metadata", env=cf_env)

    assert result.exit_code == 3
    metadata = json.loads(result.stdout)  # stdout is the metadata alone: `| jq` works
    assert metadata["main_module"] == "dispatcher.js"
    assert [b["name"] for b in metadata["bindings"]][:2] == ["DISPATCHER", "METADATA"]
    assert "+ route staging.code24.dev/api/* (code24.dev)" in result.stderr.splitlines()
    assert "dispatch namespace code24-workers-staging does not exist" in result.stderr
    assert "run `code24ctl namespace create --env staging` first" in result.stderr
    assert writes(cf_state) == []


def test_deploy_fails_when_no_zone_holds_a_route_host(
    tmp_path: Path,
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    with_namespace: None,
) -> None:
    def change(data: dict[str, Any]) -> None:
        data["environments"]["staging"]["zone"] = None
        data["environments"]["staging"]["routes"] = ["api.example.org/*"]

    config = write_config(tmp_path, change)

    result = run_cli("deploy", "--env", "staging", env=cf_env, config=config)

    assert result.exit_code == 3
    assert (
        "no zone on this account for route api.example.org/* (tried api.example.org, example.org)"
        in (result.stderr)
    )
    assert writes(cf_state) == []
    zone_queries = [r.query_value("name") for r in cf_state.requests(path_contains="/zones")]
    assert zone_queries == ["api.example.org", "example.org"]


# --------------------------------------------------------------------------------------------
# The upload


def test_deploy_creates_kv_uploads_the_dispatcher_part_by_part_and_creates_routes(
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    with_namespace: None,
) -> None:
    assert [kv.title for kv in cf_state.kv_namespaces(cf_seed.account_id)] == [
        "code24-cache-staging"
    ]

    result = run_cli("deploy", "--env", "staging", env=cf_env)

    assert result.exit_code == 0, result.stderr
    created_kv = kv_id(cf_state, cf_seed.account_id)
    module = dispatcher_module()
    (version,) = cf_state.versions.versions(cf_seed.account_id, DISPATCHER)
    version_id = version.id
    assert result.stdout.splitlines() == [
        f"KV namespace {KV_TITLE}: created (id {created_kv})",
        f"uploaded dispatcher {DISPATCHER} (dispatcher.js {len(module.content)} bytes); "
        "bindings: DISPATCHER, METADATA, ENVIRONMENT, PLATFORM_NAME, ROUTE_TABLE, "
        "CF_VERSION_METADATA",
        # Nothing served before: the override would reach nothing, so nothing is probed.
        f"version {version_id} deployed at 100% (nothing served before: not probed)",
        f"route {API_PATTERN}: created (code24.dev)",
        f"route {ELITE_PATTERN}: created (code24.dev)",
    ]
    kv_creates = cf_state.requests(method="POST", path_contains="/storage/kv/namespaces")
    assert [r.json for r in kv_creates] == [{"title": KV_TITLE}]

    (upload,) = cf_state.requests(method="PUT")
    assert upload.path == f"/accounts/{cf_seed.account_id}/workers/scripts/{DISPATCHER}"
    assert upload.content_type is not None
    assert upload.content_type.startswith("multipart/form-data; boundary=")
    parts = upload.parts or []
    assert [(p.name, p.filename, p.content_type) for p in parts] == [
        ("files", "dispatcher.js", "application/javascript+module"),
        ("metadata", None, "application/json"),
    ]
    assert parts[0].data == module.content
    metadata = json.loads(parts[1].data)
    bindings = expected_bindings(created_kv)
    assert metadata == {
        "main_module": "dispatcher.js",
        "compatibility_date": "2025-06-01",
        "bindings": bindings,
        "keep_bindings": ["secret_text", "secret_key"],
        "observability": LOGS_ON,
        "tags": DISPATCHER_TAGS,
        # Every upload is a version that says which code24ctl and which config it carries.
        "annotations": {
            "workers/tag": f"code24ctl/{__version__} config/{config_hash(bindings)}",
            "workers/message": f"uploaded by code24ctl {__version__}",
        },
    }
    assert split_of(cf_state, cf_seed) == {version_id: 100.0}

    deployed = cf_state.account_script(cf_seed.account_id, DISPATCHER)
    assert deployed is not None
    assert deployed.main_module == "dispatcher.js"
    assert deployed.modules["dispatcher.js"].content == module.content
    assert route_owners(cf_state, cf_seed.zone_id) == {
        API_PATTERN: DISPATCHER,
        ELITE_PATTERN: DISPATCHER,
    }


def test_deploy_resolves_an_existing_kv_namespace_by_title(
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    with_namespace: None,
) -> None:
    existing = cf_state.add_kv_namespace(cf_seed.account_id, KV_TITLE, id="ab" * 16)

    result = run_cli("deploy", "--env", "staging", "--json", env=cf_env)

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["kv"] == {"title": KV_TITLE, "id": existing, "action": "found"}
    assert cf_state.requests(method="POST", path_contains="/storage/kv") == []
    (upload,) = cf_state.requests(method="PUT")
    metadata = json.loads((upload.part("metadata") or pytest.fail("no metadata part")).data)
    assert metadata["bindings"][1] == {
        "type": "kv_namespace",
        "name": "METADATA",
        "namespace_id": existing,
    }


def test_deploy_json_is_one_document_describing_everything(
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    with_namespace: None,
) -> None:
    result = run_cli("deploy", "--env", "staging", "--json", env=cf_env)

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document.pop("command") == "deploy"
    assert document.pop("summary") == {
        "routes_create": 2,
        "routes_update": 0,
        "routes_delete": 0,
        "routes_unchanged": 0,
        "routes_conflict": 0,
    }
    created_kv = kv_id(cf_state, cf_seed.account_id)
    module = dispatcher_module()
    routes = {r.pattern: r.id for r in cf_state.routes(cf_seed.zone_id)}
    assert document == {
        "environment": "staging",
        "dispatcher": DISPATCHER,
        "namespace": NAMESPACE,
        "dry_run": False,
        "metadata": {
            "main_module": "dispatcher.js",
            "compatibility_date": "2025-06-01",
            "bindings": expected_bindings(created_kv),
            "keep_bindings": ["secret_text", "secret_key"],
            "observability": LOGS_ON,
            "tags": DISPATCHER_TAGS,
        },
        "modules": [
            {
                "name": "dispatcher.js",
                "content_type": "application/javascript+module",
                "size": len(module.content),
                "sha256": module.sha256,
            }
        ],
        "kv": {"title": KV_TITLE, "id": created_kv, "action": "created"},
        "dispatcher_action": "upload",
        "deployed": False,
        "differences": [],
        "uploaded": True,
        "routes": [
            {
                "pattern": pattern,
                "zone": "code24.dev",
                "zone_id": cf_seed.zone_id,
                "action": "create",
                "owner": None,
                "route_id": routes[pattern],
                "applied": True,
            }
            for pattern in (API_PATTERN, ELITE_PATTERN)
        ],
        "namespace_exists": True,
        "version_id": cf_state.versions.versions(cf_seed.account_id, DISPATCHER)[0].id,
        "unprobed_upload": False,
        "reupload": None,
        # A first deploy: nothing served, the override reaches nothing, so no probe.
        "ok": True,
        "probed": False,
        "probe": None,
        "unprobed": "nothing served before: not probed",
        "before": None,
        "after": None,
        "restored": False,
        "put_back_failed": False,
        "error": None,
    }


def test_outbound_worker_and_params_go_into_the_dispatch_namespace_binding(
    tmp_path: Path,
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    with_namespace: None,
) -> None:
    def change(data: dict[str, Any]) -> None:
        data["environments"]["staging"]["outbound"] = {
            "worker": "code24-outbound-staging",
            "params": ["worker", "request_id"],
        }

    config = write_config(tmp_path, change)
    add_other_worker(cf_state, cf_seed.account_id, "code24-outbound-staging")

    result = run_cli("deploy", "--env", "staging", env=cf_env, config=config)

    assert result.exit_code == 0, result.stderr
    (upload,) = cf_state.requests(method="PUT")
    metadata = json.loads((upload.part("metadata") or pytest.fail("no metadata part")).data)
    assert metadata["bindings"][0] == {
        "type": "dispatch_namespace",
        "name": "DISPATCHER",
        "namespace": NAMESPACE,
        "outbound": {
            "worker": {"service": "code24-outbound-staging"},
            "params": [{"name": "worker"}, {"name": "request_id"}],
        },
    }


# --------------------------------------------------------------------------------------------
# Idempotence and routes


def test_second_deploy_with_no_change_writes_nothing(
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    with_namespace: None,
) -> None:
    assert run_cli("deploy", "--env", "staging", env=cf_env).exit_code == 0
    before = {r.pattern: r.id for r in cf_state.routes(cf_seed.zone_id)}
    cf_state.clear_requests()

    result = run_cli("deploy", "--env", "staging", env=cf_env)

    assert result.exit_code == 0, result.stderr
    assert writes(cf_state) == []
    assert result.stdout.splitlines() == [
        f"KV namespace {KV_TITLE}: found (id {kv_id(cf_state, cf_seed.account_id)})",
        f"dispatcher {DISPATCHER} unchanged "
        "(bindings: DISPATCHER, METADATA, ENVIRONMENT, PLATFORM_NAME, ROUTE_TABLE, "
        "CF_VERSION_METADATA)",
        f"route {API_PATTERN}: unchanged",
        f"route {ELITE_PATTERN}: unchanged",
    ]
    assert {r.pattern: r.id for r in cf_state.routes(cf_seed.zone_id)} == before


def test_a_changed_config_is_uploaded_again_but_routes_are_left_alone(
    tmp_path: Path,
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    cf_site: VersionSite,
    with_namespace: None,
) -> None:
    assert run_cli("deploy", "--env", "staging", env=cf_env).exit_code == 0
    cf_state.clear_requests()

    def change(data: dict[str, Any]) -> None:
        data["environments"]["staging"]["base_url"] = cf_site.url
        data["workers"]["brand-worker"]["timeout_ms"] = 5000

    config = write_config(tmp_path, change)

    result = run_cli("deploy", "--env", "staging", "--json", env=cf_env, config=config)

    assert result.exit_code == 0, result.stderr
    # A version, at 0% for the probe through the override, then at 100%: no route write.
    base = f"/accounts/{cf_seed.account_id}/workers/scripts/{DISPATCHER}"
    assert writes(cf_state) == [
        f"POST {base}/versions",
        f"POST {base}/deployments",
        f"POST {base}/deployments",
    ]
    document = json.loads(result.stdout)
    assert document["uploaded"] is True
    assert [r["action"] for r in document["routes"]] == ["unchanged", "unchanged"]
    table = document["metadata"]["bindings"][-2]["json"]
    assert table["workers"]["brand-worker"]["timeout_ms"] == 5000


def test_a_secret_set_on_the_dispatcher_survives_a_redeploy(
    tmp_path: Path,
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    cf_client: Cloudflare,
    cf_site: VersionSite,
    with_namespace: None,
) -> None:
    assert run_cli("deploy", "--env", "staging", env=cf_env).exit_code == 0
    cf_client.workers.scripts.secrets.update(
        DISPATCHER,
        account_id=cf_seed.account_id,
        name="UPSTREAM_KEY",
        text="s3cret-value",
        type="secret_text",
    )
    cf_state.clear_requests()

    # A secret does not make the dispatcher "changed": nothing is uploaded.
    unchanged = run_cli("deploy", "--env", "staging", "--json", env=cf_env)
    assert unchanged.exit_code == 0, unchanged.stderr
    assert json.loads(unchanged.stdout)["dispatcher_action"] == "unchanged"
    assert writes(cf_state) == []

    def change(data: dict[str, Any]) -> None:
        data["environments"]["staging"]["base_url"] = cf_site.url
        data["environments"]["staging"]["vars"]["PLATFORM_NAME"] = "Code24 Staging"

    config = write_config(tmp_path, change)
    changed = run_cli("deploy", "--env", "staging", env=cf_env, config=config)

    assert changed.exit_code == 0, changed.stderr
    deployed = cf_state.account_script(cf_seed.account_id, DISPATCHER)
    assert deployed is not None
    by_name = {b["name"]: b for b in deployed.bindings}
    assert by_name["UPSTREAM_KEY"]["type"] == "secret_text"
    assert by_name["PLATFORM_NAME"] == {
        "type": "plain_text",
        "name": "PLATFORM_NAME",
        "text": "Code24 Staging",
    }
    assert "s3cret-value" not in changed.output


def test_a_route_owned_by_another_worker_is_a_conflict_until_forced(
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    with_namespace: None,
) -> None:
    add_other_worker(cf_state, cf_seed.account_id)
    taken = cf_state.add_route(cf_seed.zone_id, API_PATTERN, "legacy-router")

    refused = run_cli("deploy", "--env", "staging", env=cf_env)

    assert refused.exit_code == 2  # the user decides: --force or other routes
    assert refused.stdout == ""
    assert (
        f"route conflict on zone code24.dev: {API_PATTERN} (routed to legacy-router)"
        in refused.stderr
    )
    assert "rerun with --force" in refused.stderr
    assert writes(cf_state) == []
    assert route_owners(cf_state, cf_seed.zone_id) == {API_PATTERN: "legacy-router"}

    forced = run_cli("deploy", "--env", "staging", "--force", env=cf_env)

    assert forced.exit_code == 0, forced.stderr
    assert f"route {API_PATTERN}: taken over from legacy-router" in forced.stdout
    assert f"route {ELITE_PATTERN}: created (code24.dev)" in forced.stdout
    assert route_owners(cf_state, cf_seed.zone_id) == {
        API_PATTERN: DISPATCHER,
        ELITE_PATTERN: DISPATCHER,
    }
    updates = cf_state.requests(method="PUT", path_contains="/workers/routes/")
    assert [(r.path, r.json) for r in updates] == [
        (
            f"/zones/{cf_seed.zone_id}/workers/routes/{taken}",
            {"pattern": API_PATTERN, "script": DISPATCHER},
        )
    ]


def test_dry_run_reports_a_conflict_and_exits_2(
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    with_namespace: None,
) -> None:
    add_other_worker(cf_state, cf_seed.account_id)
    cf_state.add_route(cf_seed.zone_id, ELITE_PATTERN, "legacy-router")

    result = run_cli("deploy", "--env", "staging", "--dry-run", "--json", env=cf_env)

    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert [(r["pattern"], r["action"], r["owner"]) for r in document["routes"]] == [
        (API_PATTERN, "create", None),
        (ELITE_PATTERN, "conflict", "legacy-router"),
    ]
    assert "(routed to legacy-router)" in result.stderr
    assert writes(cf_state) == []
    human = run_cli("deploy", "--env", "staging", "--dry-run", env=cf_env)
    assert human.exit_code == 2
    assert (
        f"! route {ELITE_PATTERN}: conflict, routed to legacy-router "
        "(rerun with --force to take it)" in human.stdout.splitlines()
    )


# --------------------------------------------------------------------------------------------
# Dry run and wrangler.toml


def test_dry_run_prints_the_plan_and_writes_nothing(
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    with_namespace: None,
) -> None:
    result = run_cli("deploy", "--env", "staging", "--dry-run", env=cf_env)

    assert result.exit_code == 0, result.stderr
    assert {r.method for r in cf_state.requests()} == {"GET"}
    # The plan only: the upload metadata needs --show-metadata (or --json).
    assert result.stdout.splitlines() == [
        f"+ KV namespace {KV_TITLE}",
        f"+ dispatcher {DISPATCHER} (observability (Workers Logs on, head_sampling_rate 1), "
        "nothing serves yet: live at 100%, not probed)",
        f"+ route {API_PATTERN} (code24.dev)",
        f"+ route {ELITE_PATTERN} (code24.dev)",
    ]
    assert result.stderr.splitlines() == ["dry run: nothing was written"]
    assert cf_state.account_script(cf_env["CLOUDFLARE_ACCOUNT_ID"], DISPATCHER) is None


def test_show_metadata_prints_the_upload_metadata(
    run_cli: RunCli, cf_env: dict[str, str], with_namespace: None
) -> None:
    result = run_cli("deploy", "--env", "staging", "--dry-run", "--show-metadata", env=cf_env)

    assert result.exit_code == 0, result.stderr
    document = result.stdout[: result.stdout.index("\n}\n") + 2]
    assert json.loads(document) == {
        "main_module": "dispatcher.js",
        "compatibility_date": "2025-06-01",
        "bindings": expected_bindings("<created on deploy>"),
        "keep_bindings": ["secret_text", "secret_key"],
        "observability": LOGS_ON,
        "tags": DISPATCHER_TAGS,
    }


def test_changing_one_fallback_message_shows_exactly_that_field(
    tmp_path: Path,
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    with_namespace: None,
) -> None:
    assert run_cli("deploy", "--env", "staging", env=cf_env).exit_code == 0
    before = yaml.safe_load(REPO_CONFIG.read_text(encoding="utf-8"))
    old = before["workers"]["designer-worker"]["fallback"]["message"]

    def change(data: dict[str, Any]) -> None:
        data["workers"]["designer-worker"]["fallback"]["message"] = "Back soon"

    config = write_config(tmp_path, change)
    cf_state.clear_requests()

    result = run_cli("deploy", "--env", "staging", "--dry-run", env=cf_env, config=config)

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"~ dispatcher {DISPATCHER} ({PROBED_NOTE})",
        f'    ~ ROUTE_TABLE.workers.designer-worker.fallback.message: "{old}" -> "Back soon"',
    ]
    assert {r.method for r in cf_state.requests()} == {"GET"}


def test_dry_run_json_says_nothing_was_uploaded(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, with_namespace: None
) -> None:
    result = run_cli("deploy", "--env", "staging", "--dry-run", "--json", env=cf_env)

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["dry_run"] is True
    assert document["uploaded"] is False
    assert document["kv"] == {"title": KV_TITLE, "id": None, "action": "would create"}
    assert [(r["action"], r["applied"]) for r in document["routes"]] == [
        ("create", False),
        ("create", False),
    ]
    assert {r.method for r in cf_state.requests()} == {"GET"}


def test_wrangler_toml_is_the_equivalent_configuration(
    tmp_path: Path,
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    with_namespace: None,
) -> None:
    def change(data: dict[str, Any]) -> None:
        data["environments"]["staging"]["outbound"] = {
            "worker": "code24-outbound-staging",
            "params": ["worker"],
        }
        data["environments"]["staging"]["vars"]["QUOTE"] = 'say "hi"\tnow'

    config = write_config(tmp_path, change)
    add_other_worker(cf_state, cf_seed.account_id, "code24-outbound-staging")
    target = tmp_path / "wrangler.toml"

    result = run_cli(
        "deploy", "--env", "staging", "--wrangler-toml", str(target), env=cf_env, config=config
    )

    assert result.exit_code == 0, result.stderr
    assert f"wrote {target}" in result.stderr.replace("\n", "")
    parsed = tomllib.loads(target.read_text(encoding="utf-8"))
    vars_ = parsed.pop("vars")
    # The dispatcher passes the outbound parameters the config names on every get() call.
    assert json.loads(vars_.pop("ROUTE_TABLE")) == {
        **staging_route_table(),
        "outbound_params": ["worker"],
    }
    assert vars_ == {"ENVIRONMENT": "staging", "PLATFORM_NAME": "Code24", "QUOTE": 'say "hi"\tnow'}
    assert parsed == {
        "name": DISPATCHER,
        "main": "dispatcher.js",
        "compatibility_date": "2025-06-01",
        "workers_dev": False,
        "dispatch_namespaces": [
            {
                "binding": "DISPATCHER",
                "namespace": NAMESPACE,
                "outbound": {"service": "code24-outbound-staging", "parameters": ["worker"]},
            }
        ],
        "kv_namespaces": [{"binding": "METADATA", "id": kv_id(cf_state, cf_seed.account_id)}],
        "version_metadata": {"binding": "CF_VERSION_METADATA"},
        "routes": [
            {"pattern": API_PATTERN, "zone_name": "code24.dev"},
            {"pattern": ELITE_PATTERN, "zone_name": "code24.dev"},
        ],
    }


def test_wrangler_toml_with_dry_run_writes_the_file_but_calls_nothing_that_writes(
    tmp_path: Path,
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    with_namespace: None,
) -> None:
    target = tmp_path / "wrangler.toml"

    result = run_cli(
        "deploy", "--env", "staging", "--dry-run", "--wrangler-toml", str(target), env=cf_env
    )

    assert result.exit_code == 0, result.stderr
    parsed = tomllib.loads(target.read_text(encoding="utf-8"))
    assert parsed["kv_namespaces"] == [{"binding": "METADATA", "id": "<created on deploy>"}]
    assert {r.method for r in cf_state.requests()} == {"GET"}


def test_wrangler_toml_writes_the_dispatcher_beside_it(
    tmp_path: Path, run_cli: RunCli, cf_env: dict[str, str], with_namespace: None
) -> None:
    target = tmp_path / "wrangler.toml"

    result = run_cli(
        "deploy", "--env", "staging", "--dry-run", "--wrangler-toml", str(target), env=cf_env
    )

    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "dispatcher.js").read_bytes() == dispatcher_module().content
    assert f"wrote {tmp_path / 'dispatcher.js'}" in result.stderr
    # A file code24ctl wrote is its to overwrite.
    again = run_cli(
        "deploy", "--env", "staging", "--dry-run", "--wrangler-toml", str(target), env=cf_env
    )
    assert again.exit_code == 0, again.stderr


def test_wrangler_toml_refuses_a_hand_written_file_unless_force(
    tmp_path: Path,
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    with_namespace: None,
) -> None:
    target = tmp_path / "wrangler.toml"
    target.write_text('name = "mine"\n', encoding="utf-8")

    refused = run_cli("deploy", "--env", "staging", "--wrangler-toml", str(target), env=cf_env)

    assert refused.exit_code == 2
    assert refused.stderr == (
        f"error: refusing to overwrite {target}: code24ctl did not write it\n"
        "  hint: rerun with --force to overwrite it, or pick another --wrangler-toml PATH; "
        "nothing was deployed\n"
    )
    assert target.read_text(encoding="utf-8") == 'name = "mine"\n'
    assert writes(cf_state) == []

    forced = run_cli(
        "deploy", "--env", "staging", "--force", "--wrangler-toml", str(target), env=cf_env
    )
    assert forced.exit_code == 0, forced.stderr
    assert target.read_text(encoding="utf-8").startswith("# Generated by `code24ctl deploy")


def test_an_unwritable_wrangler_toml_path_stops_before_deploying(
    tmp_path: Path,
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    with_namespace: None,
) -> None:
    target = tmp_path / "missing" / "wrangler.toml"

    for extra in ((), ("--dry-run",)):
        result = run_cli(
            "deploy", "--env", "staging", *extra, "--wrangler-toml", str(target), env=cf_env
        )
        assert result.exit_code == 2
        assert result.stderr == (
            f"error: cannot write {target}: folder {target.parent} does not exist\n"
            "  hint: create it, or pick another --wrangler-toml PATH; nothing was deployed\n"
        )
    assert writes(cf_state) == []


def test_a_failing_wrangler_toml_write_never_hides_the_deploy(
    tmp_path: Path,
    run_cli: RunCli,
    cf_env: dict[str, str],
    with_namespace: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = tmp_path / "wrangler.toml"
    real = Path.write_bytes

    def full_disk(self: Path, data: bytes) -> int:
        if self == target:
            raise OSError(28, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", full_disk)

    result = run_cli("deploy", "--env", "staging", "--wrangler-toml", str(target), env=cf_env)

    assert result.exit_code == 2
    assert f"uploaded dispatcher {DISPATCHER}" in result.stdout
    assert result.stderr == (
        f"error: cannot write {target}: No space left on device\n"
        "  hint: the deploy itself is done; rerun with --dry-run --wrangler-toml PATH\n"
    )


# --------------------------------------------------------------------------------------------
# Credentials and the network


def test_missing_token_is_exit_2_and_calls_nothing(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState
) -> None:
    env = dict(cf_env, CLOUDFLARE_API_TOKEN="")

    result = run_cli("deploy", "--env", "staging", env=env)

    assert result.exit_code == 2
    assert "CLOUDFLARE_API_TOKEN is not set" in result.stderr
    assert cf_state.requests() == []


def test_a_refused_token_is_exit_3_and_never_printed(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, with_namespace: None
) -> None:
    wrong = "tok_wrong_SECRET_0000111122223333"
    env = dict(cf_env, CLOUDFLARE_API_TOKEN=wrong)

    result = run_cli("deploy", "--env", "staging", env=env)

    assert result.exit_code == 3
    assert "Cloudflare API error" in result.stderr
    assert wrong not in result.output
    assert "SECRET" not in result.output


def test_api_unreachable_is_exit_3_with_a_clear_message(
    run_cli: RunCli, cf_env: dict[str, str]
) -> None:
    with refused_port() as port:
        env = dict(cf_env, CLOUDFLARE_BASE_URL=f"http://127.0.0.1:{port}/client/v4")
        result = run_cli("deploy", "--env", "staging", env=env)

    assert result.exit_code == 3
    assert "cannot reach the Cloudflare API" in result.stderr
    assert "CLOUDFLARE_BASE_URL" in result.stderr
    assert cf_env["CLOUDFLARE_API_TOKEN"] not in result.output
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------------------------
# Pure pieces


@pytest.mark.parametrize(
    ("pattern", "host", "candidates"),
    [
        ("staging.code24.dev/api/*", "staging.code24.dev", ["staging.code24.dev", "code24.dev"]),
        ("*.code24.dev/*", "code24.dev", ["code24.dev"]),
        ("*staging.code24.dev/elite/*", "staging.code24.dev", ["staging.code24.dev", "code24.dev"]),
        (
            "a.b.example.co.uk:8443/x",
            "a.b.example.co.uk",
            [
                "a.b.example.co.uk",
                "b.example.co.uk",
                "example.co.uk",
                "co.uk",
            ],
        ),
    ],
)
def test_route_host_and_zone_candidates(pattern: str, host: str, candidates: list[str]) -> None:
    assert route_host(pattern) == host
    assert zone_candidates(host) == candidates


def test_an_environment_without_kv_gets_no_metadata_binding(
    tmp_path: Path,
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    with_namespace: None,
) -> None:
    def change(data: dict[str, Any]) -> None:
        del data["environments"]["staging"]["kv_namespace"]

    config = write_config(tmp_path, change)

    result = run_cli("deploy", "--env", "staging", "--json", env=cf_env, config=config)

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["kv"] is None
    assert [b["name"] for b in document["metadata"]["bindings"]] == [
        "DISPATCHER",
        "ENVIRONMENT",
        "PLATFORM_NAME",
        "ROUTE_TABLE",
        "CF_VERSION_METADATA",
    ]
    assert cf_state.requests(path_contains="/storage/kv") == []


# --------------------------------------------------------------------------------------------
# Routes both ways: a route of this dispatcher that the config dropped is removed


def test_a_route_no_longer_configured_is_deleted_and_others_are_left_alone(
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    with_namespace: None,
) -> None:
    stale_pattern = "staging.code24.dev/old/*"
    add_other_worker(cf_state, cf_seed.account_id)
    assert run_cli("deploy", "--env", "staging", env=cf_env).exit_code == 0
    stale = cf_state.add_route(cf_seed.zone_id, stale_pattern, DISPATCHER)
    cf_state.add_route(cf_seed.zone_id, "staging.code24.dev/legacy/*", "legacy-router")
    cf_state.clear_requests()

    preview = run_cli("deploy", "--env", "staging", "--dry-run", env=cf_env)

    assert preview.exit_code == 0, preview.stderr
    assert writes(cf_state) == []
    # The plan names only what changes: the stale route goes; the configured ones stay.
    assert preview.stdout.splitlines() == [f"- route {stale_pattern}"]
    assert preview.stderr.splitlines()[-1] == "dry run: nothing was written"

    result = run_cli("deploy", "--env", "staging", "--json", env=cf_env)

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert [(r["pattern"], r["action"], r["applied"]) for r in document["routes"]] == [
        (stale_pattern, "delete", True),
        (API_PATTERN, "unchanged", False),
        (ELITE_PATTERN, "unchanged", False),
    ]
    assert writes(cf_state) == [f"DELETE /zones/{cf_seed.zone_id}/workers/routes/{stale}"]
    assert route_owners(cf_state, cf_seed.zone_id) == {
        API_PATTERN: DISPATCHER,
        ELITE_PATTERN: DISPATCHER,
        "staging.code24.dev/legacy/*": "legacy-router",
    }


def test_removing_every_route_from_the_config_deletes_the_dispatchers_routes(
    tmp_path: Path,
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    with_namespace: None,
) -> None:
    assert run_cli("deploy", "--env", "staging", env=cf_env).exit_code == 0

    def change(data: dict[str, Any]) -> None:
        data["environments"]["staging"]["routes"] = []

    config = write_config(tmp_path, change)

    result = run_cli("deploy", "--env", "staging", env=cf_env, config=config)

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == [
        f"route {API_PATTERN}: deleted (no longer configured, code24.dev)",
        f"route {ELITE_PATTERN}: deleted (no longer configured, code24.dev)",
    ]
    assert route_owners(cf_state, cf_seed.zone_id) == {}


def test_deploy_carries_the_platform_workers_logs_to_the_dispatcher_and_plans_the_change(
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    cf_inprocess_client: Any,
    cf_site: VersionSite,
    tmp_path: Path,
    with_namespace: None,
) -> None:
    # The platform-wide observability is the dispatcher's too: `logs --request-id` shows its
    # line beside the workers'. Someone turned it off since (off is read back as no setting);
    # the plan shows it coming back.
    cf_env = {**cf_env, "CODE24_CONFIG": str(staging_config(tmp_path, cf_site.url))}
    assert run_cli("deploy", "--env", "staging", env=cf_env).exit_code == 0
    cf_inprocess_client.workers.scripts.settings.edit(
        DISPATCHER, account_id=cf_seed.account_id, observability={"enabled": False}
    )
    cf_state.clear_requests()

    planned = run_cli("deploy", "--env", "staging", "--dry-run", env=cf_env)

    assert planned.exit_code == 0, planned.stderr
    assert planned.stdout.splitlines() == [
        f"~ dispatcher {DISPATCHER} ({PROBED_NOTE})",
        '    ~ observability: (none) -> {"enabled": true, "head_sampling_rate": 1.0}',
    ]

    assert run_cli("deploy", "--env", "staging", env=cf_env).exit_code == 0
    # A version upload carries no settings: Workers Logs go back through script-settings.
    (patch,) = cf_state.requests(method="PATCH")
    assert patch.path.endswith(f"/workers/scripts/{DISPATCHER}/script-settings")
    assert patch.json is not None and patch.json["observability"] == LOGS_ON
    again = run_cli("deploy", "--env", "staging", "--dry-run", env=cf_env)
    assert again.stdout.splitlines() == [f"dispatcher {DISPATCHER}: nothing to change"]
