"""The one rule for a write whose outcome is unknown (code24ctl/cloudflare/outcome.py)."""

from __future__ import annotations

import pytest

from code24ctl.cloudflare.outcome import write_checked
from code24ctl.errors import CloudflareAPIError, NetworkError


class Api:
    """A write that fails as scripted, and a state the read back sees."""

    def __init__(self, *failures: Exception | None, applied_on_failure: bool = False) -> None:
        self.failures = list(failures)
        self.applied_on_failure = applied_on_failure
        self.done = False
        self.writes = 0
        self.reads = 0
        self.read_fails = False

    def write(self) -> str:
        self.writes += 1
        failure = self.failures.pop(0) if self.failures else None
        if failure is None:
            self.done = True
            return "written"
        if self.applied_on_failure:
            self.done = True
        raise failure

    def read_back(self) -> str | None:
        self.reads += 1
        if self.read_fails:
            raise NetworkError("list things: cannot reach the Cloudflare API (ReadTimeout)")
        return "found" if self.done else None


LOST = NetworkError("create thing: cannot reach the Cloudflare API", unknown_outcome=True)
FIVE_HUNDRED = CloudflareAPIError("create thing: HTTP 500", status=500, unknown_outcome=True)
REFUSED = CloudflareAPIError("create thing: HTTP 400", status=400)


def run(api: Api, repeat: bool = True) -> str:
    return write_checked(
        "create thing", api.write, api.read_back, shows="code24ctl things", repeat=repeat
    )


def test_a_known_failure_is_raised_without_a_read() -> None:
    api = Api(REFUSED)
    with pytest.raises(CloudflareAPIError, match="HTTP 400"):
        run(api)
    assert (api.writes, api.reads) == (1, 0)


@pytest.mark.parametrize("lost", [LOST, FIVE_HUNDRED])
def test_applied_after_all_carries_on_with_what_the_read_found(lost: Exception) -> None:
    api = Api(lost, applied_on_failure=True)
    assert run(api) == "found"
    assert (api.writes, api.reads) == (1, 1)


def test_not_applied_is_sent_again_once() -> None:
    api = Api(LOST)
    assert run(api) == "written"
    assert (api.writes, api.reads) == (2, 1)


def test_never_a_third_time_and_the_error_says_it_was_not_done() -> None:
    api = Api(LOST, LOST)
    with pytest.raises(CloudflareAPIError) as raised:
        run(api)
    assert raised.value.message.endswith("; reading the state back shows it was not done")
    assert not raised.value.unknown_outcome
    assert (api.writes, api.reads) == (2, 2)


def test_a_write_not_safe_to_repeat_is_not_sent_again() -> None:
    api = Api(LOST)
    with pytest.raises(CloudflareAPIError, match="it was not done"):
        run(api, repeat=False)
    assert api.writes == 1


def test_a_failing_read_stops_naming_the_command_that_shows_it() -> None:
    api = Api(LOST)
    api.read_fails = True
    with pytest.raises(CloudflareAPIError) as raised:
        run(api)
    assert raised.value.message == (
        "create thing: cannot tell whether it was done: the answer was lost (create thing: "
        "cannot reach the Cloudflare API) and reading the state back failed (list things: "
        "cannot reach the Cloudflare API (ReadTimeout))"
    )
    assert raised.value.hint == "`code24ctl things` shows whether it was; rerun once it answers"
    assert raised.value.unknown_outcome
    assert api.writes == 1
