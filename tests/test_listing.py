"""Page-numbered listings stop: at total_pages, on a repeated page, at a hard cap."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from code24ctl.cloudflare.listing import numbered_pages
from code24ctl.errors import CloudflareAPIError
from tests.emulator.seeds import Code24Seed
from tests.emulator.state import EmulatorState
from tests.support.cli import RunCli
from tests.support.staging import KV_TITLE


@dataclass
class _Info:
    per_page: int | None = None
    total_pages: int | None = None


@dataclass
class _Page:
    result: list[Any]
    result_info: _Info = field(default_factory=_Info)


def test_total_pages_ends_the_listing_even_with_full_pages() -> None:
    asked: list[int] = []

    def fetch(page: int) -> _Page:
        asked.append(page)
        return _Page([f"{page}-{i}" for i in range(2)], _Info(per_page=2, total_pages=2))

    assert list(numbered_pages(fetch, "list things")) == ["1-0", "1-1", "2-0", "2-1"]
    assert asked == [1, 2]


def test_a_server_ignoring_page_is_read_once() -> None:
    asked: list[int] = []

    def fetch(page: int) -> _Page:
        asked.append(page)
        return _Page(["a", "b"], _Info(per_page=2))

    assert list(numbered_pages(fetch, "list things")) == ["a", "b"]
    assert asked == [1, 2]


def test_an_endless_listing_stops_at_the_cap() -> None:
    def fetch(page: int) -> _Page:
        return _Page([page], _Info(per_page=1))

    with pytest.raises(CloudflareAPIError) as raised:
        list(numbered_pages(fetch, "list things", max_pages=3))
    assert raised.value.message == (
        "list things: more than 3 pages; stopped (is the API paging correctly?)"
    )


def test_the_kv_namespace_on_page_three_is_found(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    for number in range(250):
        cf_state.add_kv_namespace(cf_seed.account_id, f"other-{number:03}")
    wanted = cf_state.add_kv_namespace(cf_seed.account_id, KV_TITLE)

    result = run_cli("deploy", "--env", "staging", "--dry-run", "--json", env=cf_env)

    assert result.stdout and '"action": "found"' in result.stdout
    assert wanted in result.stdout
    listed = cf_state.requests(method="GET", path_contains="/storage/kv/namespaces")
    assert len(listed) == 3


def test_a_server_ignoring_page_ends_the_kv_listing(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    for number in range(250):
        cf_state.add_kv_namespace(cf_seed.account_id, f"other-{number:03}")
    cf_state.ignore_page = True

    result = run_cli("deploy", "--env", "staging", "--dry-run", "--json", env=cf_env)

    assert '"action": "would create"' in result.stdout
    listed = cf_state.requests(method="GET", path_contains="/storage/kv/namespaces")
    assert len(listed) == 2  # page 1, then a "page 2" that repeats it
    assert "page 2 repeats page 1; the server ignores paging" in result.stderr
