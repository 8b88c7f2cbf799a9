"""The emulator's Analytics Engine SQL API and tail sessions, seen from the wire."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from tests.emulator.seeds import Code24Seed
from tests.emulator.server import EmulatorServer
from tests.emulator.state import EmulatorState
from tests.support.builders import any_of, log_filter, timeframe
from tests.support.staging import DISPATCHER, add_other_worker


def sql(server: EmulatorServer, seed: Code24Seed, query: str) -> httpx.Response:
    return httpx.post(
        f"{server.api_base}/accounts/{seed.account_id}/analytics_engine/sql",
        content=query,
        headers={"Authorization": f"Bearer {seed.user_token}"},
    )


def test_sql_answers_the_documented_shape_outside_the_envelope(
    cf_server: EmulatorServer, cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    for worker, interval in (("a", 3), ("b", 1), ("a", 1)):
        cf_state.analytics.write(
            cf_seed.account_id,
            "ds",
            {"indexes": [worker], "blobs": ["staging"], "doubles": [1.5]},
            sample_interval=interval,
        )
    answer = sql(
        cf_server,
        cf_seed,
        "SELECT index1 AS w, SUM(_sample_interval) AS n, count() AS rows_seen FROM ds "
        "WHERE blob1 = 'staging' GROUP BY w ORDER BY w FORMAT JSON",
    )
    assert answer.status_code == 200
    assert answer.json() == {
        "meta": [
            {"name": "w", "type": "String"},
            {"name": "n", "type": "UInt64"},
            {"name": "rows_seen", "type": "UInt64"},
        ],
        "data": [{"w": "a", "n": "4", "rows_seen": "2"}, {"w": "b", "n": "1", "rows_seen": "1"}],
        "rows": 2,
    }


def test_sql_outside_the_emulated_shape_is_a_422_saying_so(
    cf_server: EmulatorServer, cf_seed: Code24Seed
) -> None:
    answer = sql(cf_server, cf_seed, "SELECT a FROM ds UNION SELECT b FROM ds")
    assert answer.status_code == 422
    assert answer.text.startswith("emulated Analytics Engine SQL:")


def test_tail_socket_needs_trace_v1_and_a_live_session(
    cf_server: EmulatorServer, cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    add_other_worker(cf_state, cf_seed.account_id, DISPATCHER)
    base = f"{cf_server.api_base}/accounts/{cf_seed.account_id}/workers/scripts/{DISPATCHER}"
    auth = {"Authorization": f"Bearer {cf_seed.user_token}"}
    created = httpx.post(f"{base}/tails", json={"filters": []}, headers=auth).json()["result"]
    assert set(created) == {"id", "url", "expires_at"}
    assert created["url"] == f"ws://127.0.0.1:{cf_server.port}/tail/{created['id']}"
    cf_state.tails.push(cf_seed.account_id, DISPATCHER, {"outcome": "ok", "logs": []})

    with connect(created["url"], subprotocols=[Subprotocol("trace-v1")]) as socket:
        socket.send(json.dumps({"debug": False}))
        assert json.loads(socket.recv(timeout=10)) == {"outcome": "ok", "logs": []}

    with pytest.raises(InvalidStatus), connect(created["url"]):
        pass  # no trace-v1: refused before the upgrade

    deleted = httpx.delete(f"{base}/tails/{created['id']}", headers=auth)
    assert deleted.status_code == 200
    again = httpx.delete(f"{base}/tails/{created['id']}", headers=auth)
    assert again.status_code == 404
    with (
        pytest.raises(InvalidStatus),
        connect(created["url"], subprotocols=[Subprotocol("trace-v1")]),
    ):
        pass  # a deleted session is refused


# ------------------------------------------------------------------------------------------
# Workers Logs (telemetry): through the SDK's own calls, so its types parse the answers


def test_telemetry_query_keys_and_values_through_the_sdk(
    cf_client: Any, cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    from tests.emulator.telemetry import worker_event

    account = cf_seed.account_id
    t0 = 1_767_225_600_000
    push = cf_state.telemetry.push
    push(account, worker_event(script="a", timestamp_ms=t0, message="hello", status=200))
    push(account, worker_event(script="b", timestamp_ms=t0 + 1, message="Hello again"))
    push(account, worker_event(script="a", timestamp_ms=t0 + 2, exception=("E", "boom", "st")))
    push(account, worker_event(script="a", timestamp_ms=t0 + 10_000, message="later"))
    telemetry = cf_client.workers.observability.telemetry

    answer = telemetry.query(
        account_id=account,
        query_id="q",
        timeframe=timeframe(t0, 5_000),
        view="events",
        limit=10,
        parameters={
            "filters": [
                log_filter("$metadata.service", "in", "a,b"),
                any_of(
                    log_filter("$metadata.error", "exists"),
                    log_filter("$metadata.message", "includes", "again"),
                ),
            ],
        },
    )
    assert answer.events is not None and answer.events.events is not None
    assert [e.metadata.message for e in answer.events.events] == ["boom", "Hello again"]
    assert answer.run.status == "COMPLETED"

    needle = telemetry.query(
        account_id=account,
        query_id="q",
        timeframe=timeframe(t0, 5_000),
        parameters={"needle": {"value": "HELLO"}},
    )
    assert needle.events is not None and needle.events.events is not None
    assert sorted(e.timestamp for e in needle.events.events) == [t0, t0 + 1]

    keys = {k.key: k.type for k in telemetry.keys(account_id=account)}
    assert keys["$metadata.service"] == "string"
    assert keys["$metadata.statusCode"] == "number"
    values = telemetry.values(
        account_id=account,
        datasets=["cloudflare-workers"],
        key="$metadata.service",
        type="string",
        timeframe=timeframe(t0, 20_000),
    )
    assert sorted(v.value for v in values) == ["a", "b"]


def test_a_query_with_from_after_to_or_another_view_is_refused(
    cf_client: Any, cf_seed: Code24Seed
) -> None:
    import cloudflare

    telemetry = cf_client.workers.observability.telemetry
    with pytest.raises(cloudflare.BadRequestError):
        telemetry.query(account_id=cf_seed.account_id, query_id="q", timeframe={"from": 2, "to": 1})
    with pytest.raises(cloudflare.BadRequestError):
        telemetry.query(
            account_id=cf_seed.account_id,
            query_id="q",
            timeframe=timeframe(1, 1),
            view="calculations",
        )
