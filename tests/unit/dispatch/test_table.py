"""Unit tests of :mod:`code24ctl.dispatch.table`: namespaces.yaml compiled into the route table
both dispatchers read (docs/dispatch.md, "The route table")."""

from __future__ import annotations

import json
from pathlib import Path

from code24ctl.config import resolve_config
from code24ctl.dispatch.table import compile_route_table
from tests.support.cli import REPO_CONFIG
from tests.support.staging import write_config


def test_route_table_is_what_both_dispatchers_read() -> None:
    table = compile_route_table(resolve_config(REPO_CONFIG, "staging").config)
    assert table["version"] == 1
    assert table["max_body_bytes"] == 10 * 1024 * 1024
    assert table["max_json_check_bytes"] == 1024 * 1024
    prefixes = [route["prefix"] for route in table["routes"]]
    assert prefixes == sorted(prefixes, key=lambda p: (-len(p), p))
    assert {r["prefix"]: r["strip"] for r in table["routes"]}["/elite/brand"] == "/elite"
    assert table["workers"]["designer-worker"]["timeout_ms"] == 30000
    assert table["workers"]["designer-worker"]["fallback"]["status"] == "degraded"
    json.dumps(table)  # the json binding must serialise


def test_catch_all_route_compiles_to_the_empty_prefix(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        lambda data: data["routes"].insert(0, {"prefix": "/", "worker": "brand-worker"}),
    )
    table = compile_route_table(resolve_config(path, "staging").config)
    catch_all = [route for route in table["routes"] if route["worker"] == "brand-worker"]
    assert catch_all[-1] == {"prefix": "", "worker": "brand-worker", "strip": ""}
    assert table["routes"][-1]["prefix"] == ""
