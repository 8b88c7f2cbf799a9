"""Helpers and staging names shared by the end-to-end test modules.

The worker aliases come from the repo's ``namespaces.yaml`` and the staging script names from the
emulator seed (``tests/emulator/seeds.CODE24_SCRIPTS``), so neither is copied into each test file;
``tests/unit/config/test_config.py`` checks that the two agree with what the config resolves to.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.emulator.seeds import CODE24_SCRIPTS
from tests.emulator.state import EmulatorState
from tests.support.cli import REPO_CONFIG

# What the repo's config creates on staging.
NAMESPACE = "code24-workers-staging"
DISPATCHER = "code24-dynamic-dispatcher-staging"
KV_TITLE = "code24-metadata-staging"
API_PATTERN = "staging.code24.dev/api/*"
ELITE_PATTERN = "staging.code24.dev/elite/*"

#: The worker aliases, in the order namespaces.yaml lists them (the order commands report them).
ALIASES: tuple[str, ...] = tuple(yaml.safe_load(REPO_CONFIG.read_text(encoding="utf-8"))["workers"])
#: Each alias's account-level staging script, as the emulator seeds them.
STAGING_SCRIPTS: dict[str, str] = dict(zip(ALIASES, CODE24_SCRIPTS, strict=True))

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def write_config(
    tmp_path: Path,
    change: Callable[[dict[str, Any]], None] | None = None,
    *,
    data: dict[str, Any] | None = None,
    name: str = "namespaces.yaml",
) -> Path:
    """Write ``tmp_path / name``: the repo's namespaces.yaml (or ``data`` instead), with
    ``change`` applied to it. The one way tests write a config file."""
    if data is None:
        data = yaml.safe_load(REPO_CONFIG.read_text(encoding="utf-8"))
    if change is not None:
        change(data)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def staging_config(tmp_path: Path, base_url: str, **vars: str) -> Path:
    """The repo's config with staging's base_url at ``base_url`` (the test site's url: a
    release probes its new version there) and extra vars."""

    def change(data: dict[str, Any]) -> None:
        data["environments"]["staging"]["base_url"] = base_url
        data["environments"]["staging"].setdefault("vars", {}).update(vars)

    return write_config(tmp_path, change)


def writes(state: EmulatorState) -> list[str]:
    """Every write request the emulator received, as ``METHOD path``."""
    return [f"{r.method} {r.path}" for r in state.requests() if r.method in WRITE_METHODS]


def route_owners(state: EmulatorState, zone_id: str) -> dict[str, str | None]:
    """Each route pattern in the zone and the script it sends to."""
    return {route.pattern: route.script for route in state.routes(zone_id)}


def add_other_worker(state: EmulatorState, account_id: str, name: str = "legacy-router") -> None:
    """An account-level Worker that is not ours (to own a route we want)."""
    state.add_account_script(
        account_id,
        name,
        {
            "index.js": (
                "export default {fetch() { return new Response('hi') }}",
                "application/javascript+module",
            )
        },
        main_module="index.js",
    )
