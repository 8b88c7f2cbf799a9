"""Unit tests of :mod:`code24ctl.redact`: the API token never shows."""

from __future__ import annotations

import pytest

from code24ctl.redact import scrub

TOKEN = "tok_SECRET_never_print_me_0123456789"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"token {TOKEN} here", "token *** here"),
        ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer ***"),
        ("{'Authorization': 'Bearer xyz'}", "{'Authorization': 'Bearer ***'}"),
        ("nothing secret", "nothing secret"),
    ],
)
def test_scrub(monkeypatch: pytest.MonkeyPatch, text: str, expected: str) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    assert scrub(text) == expected
