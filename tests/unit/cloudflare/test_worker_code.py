"""Unit tests of the multipart reader of downloaded Workers (:mod:`code24ctl.cloudflare.multipart`)
and the one comparator of what is deployed against what would be uploaded, bind and deploy's
(:mod:`code24ctl.cloudflare.worker_diff`)."""

from __future__ import annotations

import hashlib
from typing import Any

from code24ctl.cloudflare.modules import Module
from code24ctl.cloudflare.multipart import parse_multipart
from code24ctl.cloudflare.worker_code import DeployedWorker, WorkerCode
from code24ctl.cloudflare.worker_diff import compare, same_binding
from tests.emulator.multipart import build_multipart
from tests.support.staging import NAMESPACE


def test_parse_multipart_keeps_binary_parts_byte_for_byte() -> None:
    wasm = b"\x00asm\x01\x00\x00\x00\r\n--not-a-boundary\r\n\r\n\xff"
    body, content_type = build_multipart(
        [
            ("index.js", "index.js", "application/javascript+module", b"export default {};\r\n"),
            ("lib/add.wasm", "lib/add.wasm", "application/wasm", wasm),
            ('we"ird.txt', 'we"ird.txt', None, b"text"),
        ]
    )
    assert parse_multipart(body, content_type) == [
        Module("index.js", b"export default {};\r\n", "application/javascript+module"),
        Module("lib/add.wasm", wasm, "application/wasm"),
        Module('we"ird.txt', b"text", "text/plain"),
    ]


# --------------------------------------------------------------------------------------------
# The one comparator of what is deployed against what would be uploaded (bind and deploy)

DISPATCH_BINDING = {
    "type": "dispatch_namespace",
    "name": "DISPATCHER",
    "namespace": NAMESPACE,
    "outbound": {"worker": {"service": "outbound"}, "params": []},
}


def code(**change: Any) -> WorkerCode:
    fields: dict[str, Any] = {
        "source": "script source-worker",
        "modules": (Module("index.js", b"export default {}", "application/javascript+module"),),
        "main_module": "index.js",
        "compatibility_date": "2025-06-01",
        "compatibility_flags": ("nodejs_compat", "url_standard"),
        "bindings": (DISPATCH_BINDING, {"type": "json", "name": "TABLE", "json": {"a": 1}}),
    }
    fields.update(change)
    return WorkerCode(**fields)


def test_same_binding_allows_what_the_api_adds_but_not_a_change_of_ours() -> None:
    # The API reads an outbound Worker with no params back without the key, and may add fields.
    read_back = {
        "type": "dispatch_namespace",
        "name": "DISPATCHER",
        "namespace": NAMESPACE,
        "namespace_id": "0f1e",
        "outbound": {"worker": {"service": "outbound", "environment": "production"}},
    }
    assert same_binding(DISPATCH_BINDING, read_back)
    params = {"worker": {"service": "outbound"}, "params": [{"name": "worker"}]}
    assert not same_binding(DISPATCH_BINDING, {**read_back, "outbound": params})
    assert not same_binding(DISPATCH_BINDING, {**read_back, "namespace": "other"})
    # A json value is the user's data: a key left in the deployed copy is a change.
    wanted = {"type": "json", "name": "TABLE", "json": {"a": 1}}
    assert same_binding(wanted, {**wanted, "id": "x"})
    assert not same_binding(wanted, {**wanted, "json": {"a": 1, "removed": 2}})
    assert not same_binding(wanted, {**wanted, "json": {"a": True}})


def test_compare_names_each_difference_and_ignores_secrets_and_flag_order() -> None:
    wanted = code()
    secret = {"type": "secret_text", "name": "API_KEY"}
    same = code(
        compatibility_flags=("url_standard", "nodejs_compat"),
        bindings=(*wanted.bindings, secret),
    )
    assert compare(wanted, same) == []
    held = DeployedWorker(
        modules=(Module("index.js", b"export default {} // old", "application/javascript+module"),),
        main_module=None,  # an answer without cf-entrypoint: the entry is not called changed
        compatibility_date="2024-01-01",
        compatibility_flags=("nodejs_compat",),
        bindings=(
            {"type": "json", "name": "TABLE", "json": {"a": 2}},
            {"type": "plain_text", "name": "OLD", "text": "x"},
        ),
        secrets=("API_KEY",),
    )
    found = compare(wanted, held)
    module = "application/javascript+module"
    assert [(d.field, d.action, d.path, d.old, d.new) for d in found] == [
        (
            "modules",
            "update",
            "module index.js",
            label(held.modules[0].content, module),
            label(wanted.modules[0].content, module),
        ),
        ("compatibility_date", "update", "compatibility_date", "2024-01-01", "2025-06-01"),
        (
            "compatibility_flags",
            "update",
            "compatibility_flags",
            ["nodejs_compat"],
            ["nodejs_compat", "url_standard"],
        ),
        ("bindings", "create", "binding DISPATCHER", None, dict(wanted.bindings[0])),
        ("bindings", "update", "TABLE.a", 2, 1),
        ("bindings", "delete", "binding OLD", dict(held.bindings[1]), None),
    ]
    assert compare(wanted, code(main_module="main.js"))[0].detail == (
        "main_module main.js (expected index.js)"
    )


def label(content: bytes, content_type: str) -> str:
    """How a diff shows a module: its sha256 prefix and content type."""
    return f"sha256:{hashlib.sha256(content).hexdigest()[:12]} {content_type}"
