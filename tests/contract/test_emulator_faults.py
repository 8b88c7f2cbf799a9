"""The emulator's fault switches (tests/emulator/faults.py): each kind does what it says, over
HTTP, to the request it names and no other."""

from __future__ import annotations

import httpx
import pytest

from tests.emulator import EmulatorServer, EmulatorState
from tests.emulator.seeds import ACCOUNT_ID, USER_TOKEN

HEADERS = {"Authorization": f"Bearer {USER_TOKEN}"}


def _create(server: EmulatorServer, name: str) -> httpx.Response:
    url = f"{server.api_base}/accounts/{ACCOUNT_ID}/workers/dispatch/namespaces"
    return httpx.post(url, json={"name": name}, headers=HEADERS, timeout=5)


def _names(state: EmulatorState) -> set[str]:
    return {ns.name for ns in state.namespaces(ACCOUNT_ID)}


@pytest.mark.parametrize(
    ("kind", "applied", "failure"),
    [
        ("applied_500", True, None),
        ("applied_cut", True, "peer closed connection without sending complete message body"),
        ("reset", False, "Server disconnected without sending a response"),
        ("json500", False, None),
    ],
)
def test_each_kind_is_applied_or_not_and_fails_as_named(
    cf_state: EmulatorState,
    cf_server: EmulatorServer,
    kind: str,
    applied: bool,
    failure: str | None,
) -> None:
    cf_state.faults.add("POST", "*/dispatch/namespaces", kind)
    if failure is None:
        answer = _create(cf_server, "faulted")
        assert answer.status_code == 500
        assert answer.json()["errors"][0]["code"] == 10013
    else:
        with pytest.raises(httpx.RemoteProtocolError, match=failure):
            _create(cf_server, "faulted")
    assert ("faulted" in _names(cf_state)) is applied
    assert cf_state.faults.served == [
        (kind, "POST", f"/accounts/{ACCOUNT_ID}/workers/dispatch/namespaces")
    ]
    # Spent: the next request is served normally.
    assert _create(cf_server, "after").status_code == 200


def test_the_nth_matching_request_is_hit_and_others_pass(
    cf_state: EmulatorState, cf_server: EmulatorServer
) -> None:
    cf_state.faults.add("POST", "*/dispatch/namespaces", "json500", nth=2, times=2)
    listing = f"{cf_server.api_base}/accounts/{ACCOUNT_ID}/workers/dispatch/namespaces"
    assert httpx.get(listing, headers=HEADERS).status_code == 200  # a GET is not counted
    statuses = [_create(cf_server, f"ns-{i}").status_code for i in range(4)]
    assert statuses == [200, 500, 500, 200]
    assert _names(cf_state) >= {"ns-0", "ns-3"}
    assert not _names(cf_state) & {"ns-1", "ns-2"}


def test_hang_answers_nothing_until_the_client_leaves(
    cf_state: EmulatorState, cf_server: EmulatorServer
) -> None:
    cf_state.faults.add("*", "*/dispatch/namespaces", "applied_hang")
    url = f"{cf_server.api_base}/accounts/{ACCOUNT_ID}/workers/dispatch/namespaces"
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(url, json={"name": "hung"}, headers=HEADERS, timeout=0.5)
    assert "hung" in _names(cf_state)


def test_a_switch_over_http_and_an_unknown_kind(cf_server: EmulatorServer) -> None:
    control = f"{cf_server.url}/__emulator/faults"
    body = {"method": "POST", "path": "*/dispatch/namespaces", "kind": "reset"}
    assert httpx.post(control, json=body).status_code == 200
    with pytest.raises(httpx.RemoteProtocolError):
        _create(cf_server, "over-http")
    refused = httpx.post(control, json={**body, "kind": "sometimes"})
    assert refused.status_code == 400
    assert "unknown fault kind" in refused.json()["error"]
