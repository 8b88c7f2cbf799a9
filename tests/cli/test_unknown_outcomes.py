"""Writes whose outcome is unknown (applied then 500, applied then cut mid-body, not applied
then reset), per write kind, against the emulator's fault switches (tests/emulator/faults.py).

Each case: the command states the true state, and the next run converges (changes nothing).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.emulator import EmulatorState
from tests.emulator.seeds import ACCOUNT_ID, ZONE_NAME
from tests.emulator.site import VersionSite
from tests.support.cli import RunCli
from tests.support.staging import (
    ALIASES,
    API_PATTERN,
    DISPATCHER,
    ELITE_PATTERN,
    KV_TITLE,
    NAMESPACE,
    route_owners,
    staging_config,
    write_config,
    writes,
)

FAULTS = ("applied_500", "applied_cut", "reset")
OLD_PATTERN = "staging.code24.dev/old/*"


@pytest.mark.parametrize("kind", ["applied_cut", "reset"])
def test_a_read_whose_answer_is_cut_or_reset_is_retried(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, kind: str
) -> None:
    cf_state.faults.add("GET", "*/workers/dispatch/namespaces", kind)
    result = run_cli("namespace", "list", "--json", env=cf_env)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["namespaces"] == []
    assert [k for k, _, _ in cf_state.faults.served] == [kind]


def _converged(run_cli: RunCli, cf_env: dict[str, str], state: EmulatorState) -> None:
    """A second deploy writes nothing: the first left the true, whole state."""
    before = len(writes(state))
    again = run_cli("deploy", "--env", "staging", env=cf_env)
    assert again.exit_code == 0, again.stderr
    assert writes(state)[before:] == []
    assert f"dispatcher {DISPATCHER} unchanged" in again.stdout


@pytest.mark.parametrize("kind", FAULTS)
def test_namespace_create(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, kind: str
) -> None:
    cf_state.faults.add("POST", "*/workers/dispatch/namespaces", kind)
    result = run_cli("namespace", "create", "--env", "staging", env=cf_env)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"created dispatch namespace {NAMESPACE}")
    assert [ns.name for ns in cf_state.namespaces(ACCOUNT_ID)] == [NAMESPACE]
    again = run_cli("namespace", "create", "--env", "staging", env=cf_env)
    assert again.exit_code == 0, again.stderr
    assert "already exists" in again.stdout + again.stderr
    assert [ns.name for ns in cf_state.namespaces(ACCOUNT_ID)] == [NAMESPACE]


@pytest.mark.parametrize(
    ("method", "path", "line"),
    [
        ("POST", "*/storage/kv/namespaces", f"KV namespace {KV_TITLE}: created"),
        ("POST", "*/workers/routes", f"route {API_PATTERN}: created (code24.dev)"),
        ("PUT", f"*/workers/scripts/{DISPATCHER}", f"uploaded dispatcher {DISPATCHER}"),
    ],
    ids=["kv-namespace", "route-create", "dispatcher-upload"],
)
@pytest.mark.parametrize("kind", FAULTS)
def test_deploy_writes(
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    kind: str,
    method: str,
    path: str,
    line: str,
) -> None:
    cf_state.add_namespace(ACCOUNT_ID, NAMESPACE)
    cf_state.faults.add(method, path, kind)
    result = run_cli("deploy", "--env", "staging", env=cf_env)
    assert result.exit_code == 0, result.stderr
    assert [k for k, _, _ in cf_state.faults.served] == [kind]
    assert any(out.startswith(line) for out in result.stdout.splitlines()), result.stdout
    assert [kv.title for kv in cf_state.kv_namespaces(ACCOUNT_ID)].count(KV_TITLE) == 1
    zone = cf_state.zone_id(ZONE_NAME)
    assert route_owners(cf_state, zone) == {API_PATTERN: DISPATCHER, ELITE_PATTERN: DISPATCHER}
    _converged(run_cli, cf_env, cf_state)


@pytest.mark.parametrize("kind", FAULTS)
def test_route_delete(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, kind: str
) -> None:
    cf_state.add_namespace(ACCOUNT_ID, NAMESPACE)
    assert run_cli("deploy", "--env", "staging", env=cf_env).exit_code == 0
    zone = cf_state.zone_id(ZONE_NAME)
    cf_state.add_route(zone, OLD_PATTERN, DISPATCHER)
    cf_state.faults.add("DELETE", "*/workers/routes/*", kind)
    result = run_cli("deploy", "--env", "staging", env=cf_env)
    assert result.exit_code == 0, result.stderr
    assert f"route {OLD_PATTERN}: deleted (no longer configured, code24.dev)" in result.stdout
    assert OLD_PATTERN not in route_owners(cf_state, zone)
    _converged(run_cli, cf_env, cf_state)


# --------------------------------------------------------------------- what changed, on failure


def test_a_partial_deploy_says_what_is_live(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState
) -> None:
    cf_state.add_namespace(ACCOUNT_ID, NAMESPACE)
    cf_state.faults.add("POST", "*/workers/routes", "json403", nth=2)
    result = run_cli("deploy", "--env", "staging", env=cf_env)
    assert result.exit_code == 3
    kv = next(kv.id for kv in cf_state.kv_namespaces(ACCOUNT_ID) if kv.title == KV_TITLE)
    (version,) = cf_state.versions.versions(ACCOUNT_ID, DISPATCHER)
    assert result.stderr.splitlines()[-4:] == [
        "changes already made:",
        f"  KV namespace {KV_TITLE}: created (id {kv})",
        f"  dispatcher {DISPATCHER}: uploaded (version {version.id} live at 100%, not probed)",
        f"  route {API_PATTERN}: created (code24.dev)",
    ]
    assert result.stderr.startswith(f"error: create route {ELITE_PATTERN}: Cloudflare API error")


def test_a_partial_deploy_json_error_document_lists_the_changes(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState
) -> None:
    cf_state.add_namespace(ACCOUNT_ID, NAMESPACE)
    cf_state.faults.add("POST", "*/workers/routes", "json403", nth=2)
    result = run_cli("deploy", "--env", "staging", "--json", env=cf_env)
    assert result.exit_code == 3
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "cloudflare_api"
    (version,) = cf_state.versions.versions(ACCOUNT_ID, DISPATCHER)
    assert [(c["kind"], c["name"], c["action"]) for c in error["changes"]] == [
        ("KV namespace", KV_TITLE, "created"),
        ("dispatcher", DISPATCHER, "uploaded"),
        ("route", API_PATTERN, "created"),
    ]
    assert error["changes"][1]["detail"] == f"version {version.id} live at 100%, not probed"
    rerun = run_cli("deploy", "--env", "staging", env=cf_env)
    assert rerun.exit_code == 0, rerun.stderr
    assert f"route {ELITE_PATTERN}: created (code24.dev)" in rerun.stdout
    assert f"route {API_PATTERN}: unchanged" in rerun.stdout


# ------------------------------------------------------------------------------------- bind

ROOMS = """export class Room {}
export class Lobby {}
export default { fetch() { return Response.json({ok: true}); } };
"""


def _source(state: EmulatorState, name: str, classes: list[str]) -> None:
    state.add_account_script(
        ACCOUNT_ID,
        name,
        {"index.js": (ROOMS, "application/javascript+module")},
        main_module="index.js",
        bindings=[
            {"type": "durable_object_namespace", "name": c.upper(), "class_name": c}
            for c in classes
        ],
        extra_metadata={"migrations": {"new_tag": "v1", "new_classes": classes}}
        if classes
        else None,
    )


def _bind_brand(run_cli: RunCli, env: dict[str, str], tmp_path: Path, script: str) -> Any:
    def change(data: dict[str, Any]) -> None:
        data["workers"]["brand-worker"]["script"] = script

    config = write_config(tmp_path, change)
    return run_cli("bind", "--env", "staging", "--json", "brand-worker", env=env, config=config)


@pytest.mark.parametrize("kind", FAULTS)
def test_worker_upload(
    tmp_path: Path, run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, kind: str
) -> None:
    cf_state.add_namespace(ACCOUNT_ID, NAMESPACE)
    cf_state.faults.add("PUT", "*/dispatch/namespaces/*/scripts/brand-worker", kind)
    result = _bind_brand(run_cli, cf_env, tmp_path, "brand-worker-{env}")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["workers"][0]["action"] == "created"
    assert [k for k, _, _ in cf_state.faults.served] == [kind]
    assert cf_state.namespace_script(ACCOUNT_ID, NAMESPACE, "brand-worker") is not None
    again = _bind_brand(run_cli, cf_env, tmp_path, "brand-worker-{env}")
    assert json.loads(again.stdout)["workers"][0]["action"] == "unchanged"


@pytest.mark.parametrize("kind", FAULTS)
def test_upload_with_a_durable_object_migration(
    tmp_path: Path, run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, kind: str
) -> None:
    cf_state.add_namespace(ACCOUNT_ID, NAMESPACE)
    _source(cf_state, "rooms-staging", ["Room"])
    _source(cf_state, "lobby-staging", ["Lobby", "Room"])
    assert _bind_brand(run_cli, cf_env, tmp_path, "rooms-{env}").exit_code == 0
    cf_state.faults.add("PUT", "*/dispatch/namespaces/*/scripts/brand-worker", kind)

    result = _bind_brand(run_cli, cf_env, tmp_path, "lobby-{env}")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["workers"][0]["action"] == "updated"
    assert [k for k, _, _ in cf_state.faults.served] == [kind]
    copy = cf_state.namespace_script(ACCOUNT_ID, NAMESPACE, "brand-worker")
    assert copy is not None
    assert copy.migration_tag == "code24ctl-v2"
    uploads = cf_state.requests(method="PUT", path_contains="/scripts/brand-worker")
    # Sent twice only when the first did not land (the reset); never refused on old_tag.
    assert len(uploads) == (3 if kind == "reset" else 2)
    assert "reading the state back" in result.stderr
    again = _bind_brand(run_cli, cf_env, tmp_path, "lobby-{env}")
    assert json.loads(again.stdout)["workers"][0]["action"] == "unchanged"


@pytest.mark.parametrize("kind", FAULTS)
def test_unbind_after_a_lost_delete_answer_says_deleted(
    tmp_path: Path, run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, kind: str
) -> None:
    cf_state.add_namespace(ACCOUNT_ID, NAMESPACE)
    assert _bind_brand(run_cli, cf_env, tmp_path, "brand-worker-{env}").exit_code == 0
    cf_state.faults.add("DELETE", "*/dispatch/namespaces/*/scripts/brand-worker", kind)
    config = tmp_path / "namespaces.yaml"
    unbind = ("unbind", "brand-worker", "--yes", "--json", "--env", "staging")

    result = run_cli(*unbind, env=cf_env, config=config)

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert [(row["alias"], row["action"]) for row in document["workers"]] == [
        ("brand-worker", "deleted")
    ]
    assert document["summary"] == {"deleted": 1, "would_delete": 0, "not_bound": 0, "failed": 0}
    assert [k for k, _, _ in cf_state.faults.served] == [kind]
    assert cf_state.namespace_script(ACCOUNT_ID, NAMESPACE, "brand-worker") is None
    deletes = cf_state.requests(method="DELETE", path_contains="/scripts/brand-worker")
    # Sent again only when the read back found the Worker still there (the reset).
    assert len(deletes) == (2 if kind == "reset" else 1)
    assert "reading the state back" in result.stderr
    again = run_cli(*unbind, env=cf_env, config=config)
    assert again.exit_code == 0, again.stderr
    assert [row["action"] for row in json.loads(again.stdout)["workers"]] == ["not-bound"]


# ------------------------------------------------------------------ deployments and settings


@pytest.fixture
def released(tmp_path: Path, cf_site: VersionSite) -> Path:
    """The config a release runs with: it probes its new version on the test site."""
    (tmp_path / "released").mkdir()
    return staging_config(tmp_path / "released", cf_site.url)


def _deployed_once(run_cli: RunCli, cf_env: dict[str, str], state: EmulatorState) -> str:
    state.add_namespace(ACCOUNT_ID, NAMESPACE)
    first = run_cli("deploy", "--env", "staging", "--json", env=cf_env)
    assert first.exit_code == 0, first.stderr
    version_id: str = json.loads(first.stdout)["version_id"]
    return version_id


@pytest.mark.parametrize("kind", FAULTS)
@pytest.mark.parametrize("nth", [1, 2], ids=["the 0% stage", "the split"])
def test_deployment_create(
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    released: Path,
    kind: str,
    nth: int,
) -> None:
    old = _deployed_once(run_cli, cf_env, cf_state)
    # A gradual creates two deployments: the new version at 0% (probed), then the split.
    cf_state.faults.add("POST", f"*/workers/scripts/{DISPATCHER}/deployments", kind, nth=nth)
    args = ("deploy", "--env", "staging", "--gradual", "10", "--json")
    result = run_cli(*args, env=cf_env, config=released)
    assert result.exit_code == 0, result.stderr
    new = json.loads(result.stdout)["version"]["id"]
    assert cf_state.versions.split(ACCOUNT_ID, DISPATCHER) == {new: 10.0, old: 90.0}
    posts = cf_state.requests(method="POST", path_contains="/deployments")
    assert len(posts) == (3 if kind == "reset" else 2)
    assert [k for k, _, _ in cf_state.faults.served] == [kind]
    # The true state is what `versions` shows, and what promote and rollback start from.
    shown = json.loads(run_cli("versions", "--env", "staging", "--json", env=cf_env).stdout)
    assert {row["id"]: row["percentage"] for row in shown["versions"]} == {new: 10.0, old: 90.0}


@pytest.mark.parametrize("kind", FAULTS)
def test_script_settings(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, released: Path, kind: str
) -> None:
    _deployed_once(run_cli, cf_env, cf_state)
    script = cf_state.account_script(ACCOUNT_ID, DISPATCHER)
    assert script is not None
    wanted = list(script.tags)
    with cf_state.lock:  # someone changed the script's tags by hand since
        cf_state._scripts[ACCOUNT_ID][DISPATCHER].tags = ["someone-else"]
    cf_state.faults.add("PATCH", f"*/workers/scripts/{DISPATCHER}/script-settings", kind)
    result = run_cli("deploy", "--env", "staging", "--gradual", "10", env=cf_env, config=released)
    assert result.exit_code == 0, result.stderr
    now = cf_state.account_script(ACCOUNT_ID, DISPATCHER)
    assert now is not None
    assert now.tags == wanted
    assert [k for k, _, _ in cf_state.faults.served] == [kind]
    patches = cf_state.requests(method="PATCH", path_contains="/script-settings")
    assert len(patches) == (2 if kind == "reset" else 1)


@pytest.mark.parametrize("kind", FAULTS)
def test_secret_put(
    tmp_path: Path, run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, kind: str
) -> None:
    cf_state.add_namespace(ACCOUNT_ID, NAMESPACE)
    assert _bind_brand(run_cli, cf_env, tmp_path, "brand-worker-{env}").exit_code == 0
    cf_state.faults.add("PUT", "*/scripts/brand-worker/secrets", kind)
    config = tmp_path / "namespaces.yaml"
    args = ("secret", "put", "brand-worker", "API_KEY", "--env", "staging")
    result = run_cli(*args, env=cf_env, config=config, input="s3cret")
    assert result.exit_code == 0, result.stderr
    assert [k for k, _, _ in cf_state.faults.served] == [kind]
    copy = cf_state.namespace_script(ACCOUNT_ID, NAMESPACE, "brand-worker")
    assert copy is not None
    assert copy.secrets == {"API_KEY": "s3cret"}
    assert "API_KEY" in result.stdout + result.stderr
    again = run_cli(*args, env=cf_env, config=config, input="s3cret")
    assert again.exit_code == 0, again.stderr
    copy = cf_state.namespace_script(ACCOUNT_ID, NAMESPACE, "brand-worker")
    assert copy is not None
    assert copy.secrets == {"API_KEY": "s3cret"}


def test_a_failed_apply_lists_every_change_it_made_in_text_and_json(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState
) -> None:
    cf_state.faults.add("POST", "*/workers/routes", "json403", nth=2)
    result = run_cli("apply", "--env", "staging", "--yes", "--json", env=cf_env)
    assert result.exit_code == 3
    document = json.loads(result.stdout)
    assert document["ok"] is False
    made = [(c["kind"], c["name"], c["action"]) for c in document["changes"]]
    assert made[0] == ("dispatch namespace", NAMESPACE, "created")
    assert sorted(name for kind, name, _ in made if kind == "worker") == sorted(ALIASES)
    assert made[-3:] == [
        ("KV namespace", KV_TITLE, "created"),
        ("dispatcher", DISPATCHER, "uploaded"),
        ("route", API_PATTERN, "created"),
    ]
    text = run_cli("apply", "--env", "staging", "--yes", env=cf_env)
    assert text.exit_code == 0, text.stderr  # the rerun finishes: one route left to create
    assert f"route {ELITE_PATTERN}" in text.stdout + text.stderr


def test_a_failed_apply_in_text_ends_with_the_changes(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState
) -> None:
    cf_state.add_namespace(ACCOUNT_ID, NAMESPACE)
    cf_state.faults.add("POST", "*/workers/routes", "json403", nth=2)
    result = run_cli("apply", "--env", "staging", "--yes", env=cf_env)
    assert result.exit_code == 3
    tail = result.stderr.split("changes already made:\n")[1].splitlines()
    assert tail[-1] == f"  route {API_PATTERN}: created (code24.dev)"
    assert len(tail) == len(ALIASES) + 3  # workers, KV, dispatcher, one route


# -------------------------------------------------------------- nothing lost: secret → plain


def test_a_secret_on_the_copy_is_never_replaced_by_the_sources_plain_value(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState
) -> None:
    cf_state.add_namespace(ACCOUNT_ID, NAMESPACE)
    # The copy holds ENVIRONMENT as a secret (set with `secret put` before the source
    # gained a plain ENVIRONMENT).
    source = cf_state.account_script(ACCOUNT_ID, "designer-worker-staging")
    assert source is not None
    modules = {m.name: (m.content, m.content_type) for m in source.modules.values()}
    cf_state.add_namespace_script(
        ACCOUNT_ID, NAMESPACE, "designer-worker", modules, source.main_module or "",
        secrets={"ENVIRONMENT": "kept"},
    )  # fmt: skip
    bind = ("bind", "designer-worker", "--env", "staging")
    uploads = 0

    dry = run_cli(*bind, "--dry-run", env=cf_env)
    refused = run_cli(*bind, env=cf_env)

    said = (
        "script designer-worker-staging binds ENVIRONMENT (secret → plain_text) where the "
        f"copy in {NAMESPACE} holds a secret: uploading would replace the secret with the "
        "plain value"
    )
    for result in (dry, refused):
        # The user's to decide (--force), like a route another Worker holds: exit 2.
        assert result.exit_code == 2
        assert said in result.stderr
        assert "rerun with --force to replace it" in result.stderr
    copy = cf_state.namespace_script(ACCOUNT_ID, NAMESPACE, "designer-worker")
    assert copy is not None
    assert copy.secrets == {"ENVIRONMENT": "kept"}
    assert len(cf_state.requests(method="PUT", path_contains="/scripts/designer-worker")) == (
        uploads
    )

    doctor = run_cli("doctor", "--env", "staging", "--json", env=cf_env)
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    check = checks["secret designer-worker ENVIRONMENT"]
    assert check["status"] == "warn"
    assert check["detail"].startswith("secret → plain_text: the copy in")

    forced = run_cli(*bind, "--force", env=cf_env)
    assert forced.exit_code == 0, forced.stderr
    copy = cf_state.namespace_script(ACCOUNT_ID, NAMESPACE, "designer-worker")
    assert copy is not None
    assert copy.secrets == {}
    assert copy.binding("ENVIRONMENT")["type"] == "plain_text"


def test_when_even_the_read_back_fails_it_stops_naming_the_command_that_shows_it(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState
) -> None:
    cf_state.faults.add("POST", "*/workers/dispatch/namespaces", "applied_cut")
    # The look before the create passes; the read back after the lost answer fails.
    cf_state.faults.add("GET", "*/workers/dispatch/namespaces*", "json500", nth=2, times=10)
    result = run_cli("namespace", "create", "--env", "staging", env=cf_env)
    assert result.exit_code == 3
    assert (
        f"error: create dispatch namespace {NAMESPACE}: cannot tell whether it was done: "
        "the answer was lost"
    ) in result.stderr
    assert "  hint: `code24ctl namespace list` shows whether it was; rerun once it answers\n" in (
        result.stderr
    )
    cf_state.clear_faults()
    again = run_cli("namespace", "create", "--env", "staging", env=cf_env)
    assert again.exit_code == 0, again.stderr
    assert [ns.name for ns in cf_state.namespaces(ACCOUNT_ID)] == [NAMESPACE]


def test_a_lost_0_percent_stage_that_cannot_be_read_back_claims_nothing_it_does_not_know(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, released: Path
) -> None:
    old = _deployed_once(run_cli, cf_env, cf_state)
    # The gradual reads the deployment once, then stages its version at 0%: that answer is
    # lost after the stage was made, and every read after it fails.
    cf_state.faults.add("POST", f"*/workers/scripts/{DISPATCHER}/deployments", "applied_cut")
    cf_state.faults.add(
        "GET", f"*/workers/scripts/{DISPATCHER}/deployments", "json500", nth=2, times=50
    )
    result = run_cli("deploy", "--env", "staging", "--gradual", "10", env=cf_env, config=released)
    assert result.exit_code == 3
    error = next(line for line in result.stderr.splitlines() if line.startswith("error: "))
    new = cf_state.versions.versions(ACCOUNT_ID, DISPATCHER)[0].id
    assert (
        f"the deployment is unchanged ({old} 100%) or is now {old} 100%, {new} 0%; "
        f"version {new} was uploaded and takes no traffic"
    ) in error
    # It was made, at 0%: nothing but the old version takes traffic, as the message says.
    assert cf_state.versions.split(ACCOUNT_ID, DISPATCHER) == {old: 100.0, new: 0.0}


def test_a_network_failure_mid_release_reads_and_says_what_serves(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, released: Path
) -> None:
    old = _deployed_once(run_cli, cf_env, cf_state)
    cf_state.faults.add("POST", f"*/workers/scripts/{DISPATCHER}/versions", "reset", times=10)
    result = run_cli("deploy", "--env", "staging", "--canary", "10", env=cf_env, config=released)
    assert result.exit_code == 3
    error = next(line for line in result.stderr.splitlines() if line.startswith("error: "))
    assert error.startswith("error: the network failed (")
    assert f"while uploading a new version of {DISPATCHER}" in error
    assert "; the upload was under way (any version it made takes no traffic)" in error
    assert error.endswith(f"; the deployment is unchanged ({old} 100%)")
    assert cf_state.versions.split(ACCOUNT_ID, DISPATCHER) == {old: 100.0}


@pytest.mark.parametrize("kind", ["applied_500", "applied_cut"])
def test_an_unprobed_upload_whose_answer_is_lost_is_read_back_not_sent_again(
    tmp_path: Path, run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, kind: str
) -> None:
    old = _deployed_once(run_cli, cf_env, cf_state)
    (tmp_path / "changed").mkdir()
    changed = staging_config(tmp_path / "changed", "http://127.0.0.1:9", FEATURE="on")
    cf_state.clear_requests()
    # Every answer to the upload is lost, after the upload was carried out.
    cf_state.faults.add("PUT", f"*/workers/scripts/{DISPATCHER}", kind, times=10)
    result = run_cli("deploy", "--env", "staging", "--unprobed", env=cf_env, config=changed)
    assert result.exit_code == 0, result.stderr
    versions = cf_state.versions.versions(ACCOUNT_ID, DISPATCHER)
    new = versions[0].id
    assert len(versions) == 2 and new != old  # sent once: one version, not one per retry
    assert cf_state.versions.split(ACCOUNT_ID, DISPATCHER) == {new: 100.0}
    assert len(cf_state.requests(method="PUT", path_contains=f"/scripts/{DISPATCHER}")) == 1
    assert "done after all (read back)" in result.stderr


def test_a_release_whose_settings_are_refused_names_the_version_it_uploaded(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, released: Path
) -> None:
    old = _deployed_once(run_cli, cf_env, cf_state)
    with cf_state.lock:  # someone changed the script's tags by hand: the release sets them
        cf_state._scripts[ACCOUNT_ID][DISPATCHER].tags = ["someone-else"]
    cf_state.faults.add("PATCH", f"*/workers/scripts/{DISPATCHER}/script-settings", "403")
    result = run_cli("deploy", "--env", "staging", "--canary", "10", env=cf_env, config=released)
    assert result.exit_code == 3
    new = cf_state.versions.versions(ACCOUNT_ID, DISPATCHER)[0].id
    assert new != old
    assert (
        f"; version {new} was uploaded before and takes no traffic (the deployment is unchanged)"
    ) in result.stderr
    assert cf_state.versions.split(ACCOUNT_ID, DISPATCHER) == {old: 100.0}


def test_a_release_whose_settings_read_loses_the_network_names_the_version_once(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, released: Path
) -> None:
    old = _deployed_once(run_cli, cf_env, cf_state)
    with cf_state.lock:  # someone changed the script's tags by hand: the release sets them
        cf_state._scripts[ACCOUNT_ID][DISPATCHER].tags = ["someone-else"]
    cf_state.faults.add("GET", f"*/workers/scripts/{DISPATCHER}/script-settings", "reset", times=50)
    result = run_cli("deploy", "--env", "staging", "--canary", "10", env=cf_env, config=released)
    assert result.exit_code == 3
    new = cf_state.versions.versions(ACCOUNT_ID, DISPATCHER)[0].id
    error = result.stderr.splitlines()[-1]
    assert error.startswith("error: the network failed (read the script settings of ")
    assert error.endswith(
        f"; uploaded version {new} (it takes no traffic); the deployment is unchanged ({old} 100%)"
    )
    assert error.count(new) == 1
