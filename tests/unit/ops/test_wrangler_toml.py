"""Unit tests of :mod:`code24ctl.ops.wrangler_toml`: deploy's wrangler.toml export."""

from __future__ import annotations

import json
import tomllib

from code24ctl.ops.wrangler_toml import render_wrangler_toml


def test_wrangler_toml_strings_survive_any_text() -> None:
    awkward = 'quote " back \\ tab \t nl \n del \x7f nul \x00 emoji \U0001f600 é'
    metadata = {
        "main_module": "dispatcher.js",
        "compatibility_date": "2025-06-01",
        "compatibility_flags": ["nodejs_compat"],
        "bindings": [
            {"type": "plain_text", "name": "ODD KEY", "text": awkward},
            {"type": "json", "name": "TABLE", "json": {"a": None, "b": [awkward, 1.5, True]}},
            {"type": "r2_bucket", "name": "FILES", "bucket_name": "f"},
        ],
    }

    text = render_wrangler_toml("w", metadata, [("x.example.com/*", "example.com")])

    parsed = tomllib.loads(text)
    assert parsed["compatibility_flags"] == ["nodejs_compat"]
    assert parsed["vars"]["ODD KEY"] == awkward
    assert json.loads(parsed["vars"]["TABLE"]) == {"a": None, "b": [awkward, 1.5, True]}
    assert "# binding FILES of type r2_bucket has no wrangler.toml form here" in text
    assert parsed["routes"] == [{"pattern": "x.example.com/*", "zone_name": "example.com"}]
