"""Unit tests of :mod:`code24ctl.errors`: the one error tree."""

from __future__ import annotations

import pytest

TOKEN = "tok_SECRET_never_print_me_0123456789"


def test_errors_are_scrubbed_at_the_source(monkeypatch: pytest.MonkeyPatch) -> None:
    from code24ctl.errors import CloudflareAPIError

    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    error = CloudflareAPIError(f"refused {TOKEN}", code=10000, hint=f"not {TOKEN}")
    # Rows (bind --json, doctor details) carry .message and .hint, not main's report.
    assert (error.message, error.hint) == ("refused ***", "not ***")
