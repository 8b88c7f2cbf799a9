"""The diff of a deployed Worker against the code an upload would send
(code24ctl/cloudflare/worker_diff.py), case by case: each case changes one thing on one side
and names every difference it must produce."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from code24ctl.cloudflare.modules import Module
from code24ctl.cloudflare.worker_code import DeployedWorker, WorkerCode
from code24ctl.cloudflare.worker_diff import Difference, compare

ENTRY = Module("index.js", b"export default {}", "application/javascript+module")
LIB = Module("lib.js", b"export const x = 1", "application/javascript+module")
ENTRY_CHANGED = Module(
    "index.js", b"export default { fetch() {} }", "application/javascript+module"
)
KV = {"name": "KV", "type": "kv_namespace", "namespace_id": "abc"}
ROUTES = {
    "name": "ROUTE_TABLE",
    "type": "json",
    "json": {
        "routes": [{"prefix": "/api", "worker": "api"}, {"prefix": "/elite", "worker": "brand"}],
        "max_body_bytes": 10,
    },
}


def label(module: Module) -> str:
    """How a module shows in a difference: its sha256 prefix and content type."""
    return f"sha256:{module.sha256[:12]} {module.content_type}"


def wanted(**changes: Any) -> WorkerCode:
    """The code an upload would send: one module, a date, no bindings, unless changed."""
    base = WorkerCode(
        source="path worker",
        modules=(ENTRY,),
        main_module="index.js",
        compatibility_date="2025-01-01",
    )
    return replace(base, **changes)


def held(**changes: Any) -> DeployedWorker:
    """What the namespace holds: the same as :func:`wanted`, unless changed."""
    base = DeployedWorker(
        modules=(ENTRY,),
        main_module="index.js",
        compatibility_date="2025-01-01",
        compatibility_flags=(),
        bindings=(),
        secrets=(),
    )
    return replace(base, **changes)


def with_json(document: dict[str, Any]) -> dict[str, Any]:
    return {**ROUTES, "json": document}


# (id, what the upload would send, what is deployed, the differences as
#  (field, path, old, new, action))
CASES: list[tuple[str, WorkerCode, DeployedWorker, list[tuple[Any, ...]]]] = [
    ("same", wanted(), held(), []),
    ("entry not named by the answer", wanted(), held(main_module=None), []),
    (
        "entry differs",
        wanted(),
        held(main_module="worker.js"),
        [("main_module", "main_module", "worker.js", "index.js", "update")],
    ),
    (
        "date differs",
        wanted(),
        held(compatibility_date="2024-06-01"),
        [("compatibility_date", "compatibility_date", "2024-06-01", "2025-01-01", "update")],
    ),
    ("no date either side", wanted(compatibility_date=""), held(compatibility_date=None), []),
    (
        "flags in another order",
        wanted(compatibility_flags=("a", "b")),
        held(compatibility_flags=("b", "a")),
        [],
    ),
    (
        "flags differ",
        wanted(compatibility_flags=("nodejs_compat",)),
        held(compatibility_flags=()),
        [("compatibility_flags", "compatibility_flags", [], ["nodejs_compat"], "update")],
    ),
    (
        "module added",
        wanted(modules=(ENTRY, LIB)),
        held(),
        [("modules", "module lib.js", None, label(LIB), "create")],
    ),
    (
        "module removed",
        wanted(),
        held(modules=(ENTRY, LIB)),
        [("modules", "module lib.js", label(LIB), None, "delete")],
    ),
    (
        "module changed",
        wanted(modules=(ENTRY_CHANGED,)),
        held(),
        [("modules", "module index.js", label(ENTRY), label(ENTRY_CHANGED), "update")],
    ),
    (
        "binding to create",
        wanted(bindings=(KV,)),
        held(),
        [("bindings", "binding KV", None, KV, "create")],
    ),
    (
        "binding to delete",
        wanted(),
        held(bindings=(KV,)),
        [("bindings", "binding KV", KV, None, "delete")],
    ),
    (
        "secrets are never compared",
        wanted(),
        held(bindings=({"name": "TOKEN", "type": "secret_text"},)),
        [],
    ),
    (
        "fields the API adds are no change",
        wanted(bindings=(KV,)),
        held(bindings=({**KV, "id": "x"},)),
        [],
    ),
    (
        "an empty value the API leaves out is no change",
        wanted(bindings=({"name": "S", "type": "service", "service": "a", "params": []},)),
        held(bindings=({"name": "S", "type": "service", "service": "a"},)),
        [],
    ),
    (
        "a binding field differs",
        wanted(bindings=(KV,)),
        held(bindings=({**KV, "namespace_id": "def"},)),
        [("bindings", "KV.namespace_id", "def", "abc", "update")],
    ),
    (
        "a json entry differs",
        wanted(bindings=(ROUTES,)),
        held(bindings=(with_json({**ROUTES["json"], "max_body_bytes": 20}),)),
        [("bindings", "ROUTE_TABLE.max_body_bytes", 20, 10, "update")],
    ),
    (
        "one route of a list differs, by prefix",
        wanted(bindings=(ROUTES,)),
        held(
            bindings=(
                with_json(
                    {
                        **ROUTES["json"],
                        "routes": [
                            {"prefix": "/api", "worker": "old-api"},
                            {"prefix": "/elite", "worker": "brand"},
                        ],
                    }
                ),
            )
        ),
        [("bindings", "ROUTE_TABLE.routes[/api].worker", "old-api", "api", "update")],
    ),
    (
        "a route added and a key removed",
        wanted(bindings=(with_json({"routes": [{"prefix": "/api", "worker": "api"}]}),)),
        held(bindings=(with_json({"routes": [], "extra": True}),)),
        [
            ("bindings", "ROUTE_TABLE.routes", [], [{"prefix": "/api", "worker": "api"}], "update"),
            ("bindings", "ROUTE_TABLE.extra", True, None, "delete"),
        ],
    ),
    (
        "json data must be equal exactly: an extra key is a change",
        wanted(bindings=(with_json({"a": 1}),)),
        held(bindings=(with_json({"a": 1, "b": 2}),)),
        [("bindings", "ROUTE_TABLE.b", 2, None, "delete")],
    ),
    (
        "a text binding differs",
        wanted(bindings=({"name": "MSG", "type": "plain_text", "text": "new"},)),
        held(bindings=({"name": "MSG", "type": "plain_text", "text": "old"},)),
        [("bindings", "MSG.text", "old", "new", "update")],
    ),
    (
        "a carried setting differs",
        wanted(settings={"logpush": True}),
        held(settings={"logpush": False}),
        [("settings", "logpush", False, True, "update")],
    ),
    (
        "a setting that holds more is no change",
        wanted(settings={"observability": {"enabled": True}}),
        held(settings={"observability": {"enabled": True, "head_sampling_rate": 1}}),
        [],
    ),
    (
        "tags differ",
        wanted(tags=("code24ctl-b", "code24ctl-a")),
        held(tags=("code24ctl-a",)),
        [("tags", "tags (expected [code24ctl-a, code24ctl-b])", None, None, "update")],
    ),
    ("tags in another order", wanted(tags=("a", "b")), held(tags=("b", "a")), []),
    ("no tags wanted: held tags are no change", wanted(), held(tags=("theirs",)), []),
    (
        "several at once, in field order",
        wanted(compatibility_flags=("x",), bindings=(KV,)),
        held(main_module="worker.js", compatibility_date="2024-01-01"),
        [
            ("main_module", "main_module", "worker.js", "index.js", "update"),
            ("compatibility_date", "compatibility_date", "2024-01-01", "2025-01-01", "update"),
            ("compatibility_flags", "compatibility_flags", [], ["x"], "update"),
            ("bindings", "binding KV", None, KV, "create"),
        ],
    ),
]


@pytest.mark.parametrize(
    ("upload", "deployed", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_compare(
    upload: WorkerCode, deployed: DeployedWorker, expected: list[tuple[Any, ...]]
) -> None:
    found = compare(upload, deployed)
    assert [(d.field, d.path, d.old, d.new, d.action) for d in found] == expected
    # Compared with itself, the upload has nothing to send.
    assert compare(upload, upload) == []


@pytest.mark.parametrize(
    ("difference", "detail"),
    [
        (Difference("bindings", "binding KV", None, KV, "create"), "binding KV missing"),
        (Difference("bindings", "binding KV", KV, None, "delete"), "binding KV not expected"),
        (
            Difference("compatibility_date", "compatibility_date", "2024-01-01", "2025-01-01"),
            "compatibility_date 2024-01-01 (expected 2025-01-01)",
        ),
        (
            Difference("bindings", "ROUTE_TABLE.max_body_bytes", 20, 10),
            "ROUTE_TABLE.max_body_bytes 20 (expected 10)",
        ),
        (
            Difference("bindings", "T.text", "x" * 100, "y"),
            f"T.text {'x' * 79}… (expected y)",
        ),
    ],
)
def test_difference_detail(difference: Difference, detail: str) -> None:
    assert difference.detail == detail
    assert str(difference) == detail
