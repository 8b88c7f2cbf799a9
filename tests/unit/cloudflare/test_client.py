"""Unit tests of :mod:`code24ctl.cloudflare.client`: API calls, their codes and hints."""

from __future__ import annotations

import json

import pytest


def test_an_unexpected_api_answer_is_an_api_error_not_a_traceback() -> None:
    from code24ctl.cloudflare.client import api_call
    from code24ctl.errors import CloudflareAPIError

    with pytest.raises(CloudflareAPIError) as caught, api_call("read settings of Worker w"):
        json.loads("<html>not json</html>")
    assert caught.value.exit_code == 3
    assert caught.value.message == (
        "read settings of Worker w: the Cloudflare API answered something unexpected "
        "(JSONDecodeError)"
    )
