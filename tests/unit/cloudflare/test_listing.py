"""Page-numbered listings stop: at total_pages, on a repeated page, at a hard cap."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from code24ctl.cloudflare.listing import numbered_pages, single_page
from code24ctl.cloudflare.session import CloudflareSession
from code24ctl.errors import CloudflareAPIError
from tests.emulator.seeds import OTHER_ACCOUNT_ID, Code24Seed
from tests.emulator.state import EmulatorState
from tests.support.cli import RunCli
from tests.support.staging import KV_TITLE, NAMESPACE, writes

if TYPE_CHECKING:
    from cloudflare import Cloudflare


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


# --------------------------------------------------------------------------------------------
# The zone lookup and the route listing


def test_the_zone_lookup_asks_for_this_accounts_zone_only(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    # A token that reaches two accounts, each with a zone called code24.dev; the other one
    # sorts first, so an unfiltered lookup would route into the other account's zone.
    cf_state.add_token("two-accounts-token", account_id=None, kind="user")
    other_zone = cf_state.add_zone(cf_seed.zone_name, OTHER_ACCOUNT_ID, zone_id="0" * 32)
    env = {**cf_env, "CLOUDFLARE_API_TOKEN": "two-accounts-token"}
    cf_state.add_namespace(cf_seed.account_id, NAMESPACE)

    result = run_cli("deploy", "--env", "staging", "--dry-run", "--json", env=env)

    assert result.exit_code == 0, result.stderr
    zones = {route["zone_id"] for route in json.loads(result.stdout)["routes"]}
    assert zones == {cf_seed.zone_id} != {other_zone}
    lookups = cf_state.requests(method="GET", path_contains="/zones")
    lookups = [r for r in lookups if r.path == "/zones"]
    assert lookups
    for lookup in lookups:
        assert ("account.id", cf_seed.account_id) in lookup.query


def test_a_server_ignoring_page_reads_each_zone_name_once(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    cf_state.add_namespace(cf_seed.account_id, NAMESPACE)
    cf_state.ignore_page = True

    result = run_cli("deploy", "--env", "staging", "--dry-run", "--json", env=cf_env)

    assert result.exit_code == 0, result.stderr
    lookups = [r for r in cf_state.requests(method="GET") if r.path == "/zones"]
    names = [dict(r.query)["name"] for r in lookups]
    assert names == ["code24.dev"]  # one lookup, one page: the preferred zone answers


def test_a_paged_route_listing_is_refused_not_truncated(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    cf_state.add_route(cf_seed.zone_id, "staging.code24.dev/other/*", None)
    cf_state.add_route(cf_seed.zone_id, "staging.code24.dev/more/*", None)
    cf_state.routes_per_page = 1
    cf_state.ignore_page = True

    result = run_cli("deploy", "--env", "staging", "--dry-run", env=cf_env)

    assert result.exit_code == 3
    assert (
        "list Worker routes of zone code24.dev: the answer holds 1 of 2 and says there is "
        "more, but this listing is one page; stopped rather than work from a partial list"
    ) in result.stderr
    listed = [r for r in cf_state.requests(method="GET") if r.path.endswith("/workers/routes")]
    assert len(listed) == 1
    assert writes(cf_state) == []


def test_a_single_page_with_no_result_info_is_the_whole_listing() -> None:
    assert single_page(_Page(["a", "b"]), "list things") == ["a", "b"]

    @dataclass
    class _SdkPage:  # the SDK keeps an unexpected result_info as a plain dict
        result: list[Any]
        result_info: dict[str, Any]

    assert single_page(_SdkPage(["a"], {"total_count": 1, "total_pages": 1}), "x") == ["a"]
    with pytest.raises(CloudflareAPIError) as raised:
        single_page(_SdkPage(["a"], {"cursor": "next"}), "list things")
    assert raised.value.message.startswith("list things: the answer holds 1 and says there is")


# --------------------------------------------------------------------------------------------
# Progress of long listings


def test_planning_through_thirty_pages_of_kv_says_how_far_it_got(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    for number in range(2950):
        cf_state.add_kv_namespace(cf_seed.account_id, f"other-{number:04}")

    result = run_cli("plan", "--env", "staging", env=cf_env)  # no terminal: the runner's pipe

    assert result.exit_code == 0, result.stderr
    progress = [line for line in result.stderr.splitlines() if "pages read" in line]
    assert progress == [
        "list KV namespaces: 10 of 30 pages read",
        "list KV namespaces: 20 of 30 pages read",
        "list KV namespaces: 30 of 30 pages read",
    ]
    assert "pages read" not in result.stdout


def test_a_short_listing_says_nothing(run_cli: RunCli, cf_env: dict[str, str]) -> None:
    result = run_cli("plan", "--env", "staging", env=cf_env)

    assert result.exit_code == 0, result.stderr
    assert "pages read" not in result.stderr


def test_a_cursor_listing_has_a_hard_cap_and_reports_its_pages(
    monkeypatch: pytest.MonkeyPatch,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    cf_inprocess_client: Cloudflare,
) -> None:
    from code24ctl.cloudflare import namespaces

    cf_state.add_namespace(cf_seed.account_id, NAMESPACE)
    module = {"worker.js": ("export default {}", "application/javascript+module")}
    for number in range(250):
        cf_state.add_namespace_script(
            cf_seed.account_id, NAMESPACE, f"w{number:03}", module, main_module="worker.js"
        )
    pages: list[tuple[str, int, int | None]] = []
    session = CloudflareSession.over(cf_inprocess_client, cf_seed.account_id).with_pages(
        lambda *page: pages.append(page)
    )
    listed = list(namespaces.iter_namespace_scripts(session, NAMESPACE))
    assert len(listed) == 250
    what = f"list Workers in dispatch namespace {NAMESPACE}"
    assert pages == [(what, 1, None), (what, 2, None), (what, 3, None)]

    monkeypatch.setattr(namespaces, "MAX_CURSOR_PAGES", 2)
    with pytest.raises(CloudflareAPIError) as raised:
        list(namespaces.iter_namespace_scripts(session, NAMESPACE))
    assert raised.value.message == (
        f"{what}: more than 2 pages of 100; stopped (is the API paging correctly?)"
    )
