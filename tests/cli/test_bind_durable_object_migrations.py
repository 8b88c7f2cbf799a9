"""Durable Object classes a copy gains after its first upload: bind sends the migration that
creates them, after the copy's migration tag (as wrangler does), or refuses naming the class."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from code24ctl.cloudflare.migrations import class_migration
from code24ctl.errors import UsageError
from tests.emulator.errors import ApiError
from tests.emulator.seeds import Code24Seed
from tests.emulator.state import EmulatorState
from tests.support.cli import RunCli
from tests.support.staging import NAMESPACE, write_config

SOURCE = """export class Room {}
export class Lobby {}
export default { fetch() { return Response.json({ok: true}); } };
"""


def _seed(state: EmulatorState, account_id: str, name: str, classes: list[str]) -> None:
    state.add_account_script(
        account_id,
        name,
        {"index.js": (SOURCE, "application/javascript+module")},
        main_module="index.js",
        bindings=[
            {"type": "durable_object_namespace", "name": c.upper(), "class_name": c}
            for c in classes
        ],
        extra_metadata={"migrations": {"new_tag": "v1", "new_classes": classes}}
        if classes
        else None,
    )


def _bind(run_cli: RunCli, env: dict[str, str], tmp_path: Path, script: str) -> Any:
    def change(data: dict[str, Any]) -> None:
        data["workers"]["brand-worker"]["script"] = script

    config = write_config(tmp_path, change)
    return run_cli("bind", "--env", "staging", "--json", "brand-worker", env=env, config=config)


def _last_migrations(state: EmulatorState) -> Any:
    put = state.requests(method="PUT", path_contains="/scripts/brand-worker")[-1]
    metadata = next(p for p in put.parts or [] if p.name == "metadata")
    return json.loads(metadata.data).get("migrations")


def test_a_copy_that_gains_classes_gets_the_migrations_after_its_tag(
    tmp_path: Path,
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
) -> None:
    cf_state.add_namespace(cf_seed.account_id, NAMESPACE)
    _seed(cf_state, cf_seed.account_id, "plain-staging", [])
    _seed(cf_state, cf_seed.account_id, "rooms-staging", ["Room"])
    _seed(cf_state, cf_seed.account_id, "lobby-staging", ["Lobby", "Room"])

    first = _bind(run_cli, cf_env, tmp_path, "plain-{env}")
    assert first.exit_code == 0, first.stderr
    assert _last_migrations(cf_state) is None

    # The copy has no migration yet: the first one creates the class.
    second = _bind(run_cli, cf_env, tmp_path, "rooms-{env}")
    assert second.exit_code == 0, second.stderr
    assert json.loads(second.stdout)["workers"][0]["action"] == "updated"
    assert _last_migrations(cf_state) == {"new_tag": "code24ctl-v1", "new_sqlite_classes": ["Room"]}
    # The tag was read as wrangler reads it, from the namespace script's answer.
    tag_reads = [
        r
        for r in cf_state.requests(method="GET")
        if r.path.endswith(f"/dispatch/namespaces/{NAMESPACE}/scripts/brand-worker")
    ]
    assert len(tag_reads) == 1

    # Another class later: a migration after the copy's tag, creating only the new class.
    third = _bind(run_cli, cf_env, tmp_path, "lobby-{env}")
    assert third.exit_code == 0, third.stderr
    assert _last_migrations(cf_state) == {
        "old_tag": "code24ctl-v1",
        "new_tag": "code24ctl-v2",
        "new_sqlite_classes": ["Lobby"],
    }
    copy = cf_state.namespace_script(cf_seed.account_id, NAMESPACE, "brand-worker")
    assert copy is not None
    assert (copy.migration_tag, copy.durable_object_classes) == ("code24ctl-v2", ["Lobby", "Room"])

    # Nothing new: no migration and no tag read.
    cf_state.clear_requests()
    again = _bind(run_cli, cf_env, tmp_path, "lobby-{env}")
    assert json.loads(again.stdout)["workers"][0]["action"] == "unchanged"
    assert [r for r in cf_state.requests(method="GET") if r.path.endswith("/brand-worker")] == []


def test_without_the_migration_the_emulator_refuses_the_class_binding(
    cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    cf_state.add_namespace(cf_seed.account_id, NAMESPACE)
    _seed(cf_state, cf_seed.account_id, "plain-staging", [])
    with pytest.raises(ApiError, match="10061"):
        cf_state.add_account_script(
            cf_seed.account_id,
            "plain-staging",
            {"index.js": (SOURCE, "application/javascript+module")},
            main_module="index.js",
            bindings=[{"type": "durable_object_namespace", "name": "ROOM", "class_name": "Room"}],
        )


def test_class_migration_after_a_tag_of_someone_else_and_the_refusal() -> None:
    assert class_migration("w", ["Room"], ["Room"], "v9") is None
    assert class_migration("w", ["Lobby", "Room"], ["Room"], "v9") == {
        "old_tag": "v9",
        "new_tag": "code24ctl-v1",
        "new_sqlite_classes": ["Lobby"],
    }
    with pytest.raises(UsageError) as raised:
        class_migration("brand-worker", ["Lobby", "Room"], ["Room"], None)
    assert raised.value.message == (
        "Worker brand-worker gains Durable Object class Lobby, but its copy has classes (Room) "
        "and no migration tag: code24ctl cannot tell which migration to send"
    )
