"""The change log an error or an interruption carries (code24ctl/ops/changes.py)."""

from __future__ import annotations

import pytest

from code24ctl.errors import Change, CloudflareAPIError, Failure
from code24ctl.ops.changes import ChangeLog, changes_of


def test_an_error_leaving_the_block_carries_what_was_written_before_it() -> None:
    log = ChangeLog()
    with pytest.raises(CloudflareAPIError) as raised, log.carried():
        log.record("route", "x.dev/*", "created", "x.dev")
        raise CloudflareAPIError("create route y.dev/*: refused")
    assert raised.value.changes == (Change("route", "x.dev/*", "created", "x.dev"),)
    assert Failure.of(raised.value).changes == raised.value.changes


def test_an_interruption_carries_them_too_and_nested_logs_merge_once() -> None:
    outer, inner = ChangeLog(), ChangeLog()
    with pytest.raises(KeyboardInterrupt) as raised, outer.carried():
        outer.record("dispatch namespace", "ns", "created")
        with inner.carried():
            inner.record("worker", "a", "created")
            outer.record("worker", "a", "created")  # the same change, seen by both
            raise KeyboardInterrupt
    assert changes_of(raised.value) == (
        Change("dispatch namespace", "ns", "created"),
        Change("worker", "a", "created"),
    )


def test_nothing_written_leaves_the_error_without_changes() -> None:
    with pytest.raises(CloudflareAPIError) as raised, ChangeLog().carried():
        raise CloudflareAPIError("refused")
    assert raised.value.changes == ()
    assert Change("route", "x", "deleted").describe() == "route x: deleted"
