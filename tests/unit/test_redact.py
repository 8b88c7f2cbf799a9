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


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # tail's create answer: its WebSocket address is the only credential the socket needs.
        (
            '{"result":{"id":"t1","url":"wss://tail.example/abc123","expires_at":"x"}}',
            '{"result":{"id":"t1","url":"***","expires_at":"x"}}',
        ),
        ('{"result":{"wsUrl":"wss://live.example/xyz"}}', '{"result":{"wsUrl":"***"}}'),
        # Other URLs stay: -vv is for debugging, and they carry no credential.
        ('{"url":"https://example.com/x"}', '{"url":"https://example.com/x"}'),
    ],
)
def test_scrub_body_masks_socket_addresses(body: str, expected: str) -> None:
    from code24ctl.redact import scrub_body

    assert scrub_body(body, 10_000) == expected
