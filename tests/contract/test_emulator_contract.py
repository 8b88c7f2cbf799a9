"""The emulator held to the cloudflare SDK's types (tests/emulator/contract.py): the checks
bite, can be switched off and on, cover every endpoint, and the README's table is the table."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cloudflare import BadRequestError, Cloudflare, InternalServerError

from tests.emulator import EmulatorState
from tests.emulator.app import ROUTES
from tests.emulator.contract import CONTRACTS, markdown_table
from tests.emulator.seeds import CODE24_SEED

ACCOUNT = CODE24_SEED.account_id
WORKER = "brand-worker-staging"
README = Path(__file__).parents[1] / "emulator" / "README.md"
MODULE = ("worker.js", b"export default {async fetch(){return Response.json({})}}")


def _version_upload(client: Cloudflare, metadata: dict[str, Any]) -> Any:
    return client.workers.scripts.versions.with_raw_response.create(
        WORKER,
        account_id=ACCOUNT,
        metadata=metadata,  # type: ignore[arg-type]  # deliberately outside the SDK's type
        files=[(MODULE[0], MODULE[1], "application/javascript+module")],
    )


def _namespace_settings_patch(client: Cloudflare, settings: dict[str, Any]) -> Any:
    return client.workers_for_platforms.dispatch.namespaces.scripts.settings.edit(
        "brand",
        account_id=ACCOUNT,
        dispatch_namespace="code24-workers-staging",
        settings=settings,  # type: ignore[arg-type]
    )


@pytest.fixture
def namespace_worker(cf_state: EmulatorState) -> Iterator[None]:
    cf_state.add_namespace(ACCOUNT, "code24-workers-staging")
    cf_state.add_namespace_script(
        ACCOUNT,
        "code24-workers-staging",
        "brand",
        {MODULE[0]: (MODULE[1], "application/javascript+module")},
        main_module=MODULE[0],
    )
    yield


@pytest.mark.usefixtures("namespace_worker")
def test_checks_bite_and_can_be_switched_off_and_on(
    cf_state: EmulatorState, cf_inprocess_client: Cloudflare
) -> None:
    client = cf_inprocess_client
    tagged = {"main_module": MODULE[0], "tags": ["code24ctl-role:dispatcher"]}
    colour = {"colour": "blue"}

    # Off: the emulator takes what the SDK's types do not define, as before.
    cf_state.type_checks = False
    assert _version_upload(client, tagged).http_response.status_code == 200
    assert _namespace_settings_patch(client, colour) is not None
    assert cf_state.type_violations == []

    # On again: both refused with the 400 envelope, and both recorded against the test.
    cf_state.type_checks = True
    with pytest.raises(BadRequestError) as version:
        _version_upload(client, tagged)
    assert version.value.body == {
        "success": False,
        "errors": [
            {
                "code": 10026,
                "message": "Could not parse request body: metadata.tags: not a field of the "
                "SDK type",
            }
        ],
        "messages": [],
        "result": None,
    }
    with pytest.raises(BadRequestError) as settings:
        _namespace_settings_patch(client, colour)
    assert isinstance(settings.value.body, dict)
    assert settings.value.body["errors"] == [
        {
            "code": 10026,
            "message": "Could not parse request body: settings.colour: not a field of the SDK type",
        }
    ]
    assert cf_state.take_type_violations() == [
        f"request POST /accounts/{ACCOUNT}/workers/scripts/{WORKER}/versions: "
        "metadata.tags: not a field of the SDK type",
        f"request PATCH /accounts/{ACCOUNT}/workers/dispatch/namespaces/code24-workers-staging"
        "/scripts/brand/settings: settings.colour: not a field of the SDK type",
    ]


def test_account_script_settings_patch_with_an_unknown_field_is_refused(
    cf_state: EmulatorState, cf_inprocess_client: Cloudflare
) -> None:
    with pytest.raises(BadRequestError) as refused:
        cf_inprocess_client.workers.scripts.settings.edit(
            WORKER, account_id=ACCOUNT, extra_body={"usage_model": "standard"}
        )
    assert refused.value.status_code == 400
    assert cf_state.take_type_violations() == [
        f"request PATCH /accounts/{ACCOUNT}/workers/scripts/{WORKER}/script-settings: "
        "usage_model: not a field of the SDK type"
    ]


def test_an_answer_the_sdk_model_does_not_describe_is_a_500_and_recorded(
    cf_state: EmulatorState, cf_inprocess_client: Cloudflare
) -> None:
    # A placement neither of the SDK's Placement members describes (both need mode or region).
    cf_state.add_account_script(
        ACCOUNT,
        "placed",
        {MODULE[0]: (MODULE[1], "application/javascript+module")},
        main_module=MODULE[0],
        extra_metadata={"placement": {"hint": "near-user"}},
    )
    with pytest.raises(InternalServerError) as failed:
        cf_inprocess_client.with_options(
            max_retries=0
        ).workers.scripts.script_and_version_settings.get("placed", account_id=ACCOUNT)
    assert failed.value.status_code == 500
    (violation,) = cf_state.take_type_violations()
    assert violation.startswith(f"answer to GET /accounts/{ACCOUNT}/workers/scripts/placed")
    assert "result.placement.hint: not a field of the SDK model" in violation


def test_the_switch_is_also_a_control_endpoint(cf_state: EmulatorState, cf_server: Any) -> None:
    url = cf_server.url + "/__emulator/type_checks"
    assert httpx.post(url, json={"enabled": False}).status_code == 200
    assert cf_state.type_checks is False
    assert httpx.post(url, json={"enabled": True}).status_code == 200
    assert cf_state.type_checks is True


def test_every_endpoint_has_a_type_or_a_written_reason() -> None:
    keys = [route.key for route in ROUTES]
    assert sorted(keys) == sorted(CONTRACTS), "an endpoint without an entry in CONTRACTS"
    for key, contract in CONTRACTS.items():
        assert contract.request is not None or contract.request_reason, key
        assert contract.response is not None or contract.response_reason, key


def test_the_readme_table_is_the_contract_table() -> None:
    text = README.read_text("utf-8").splitlines()
    start = text.index(markdown_table()[0])
    found = text[start : start + len(markdown_table())]
    assert found == markdown_table(), "regenerate it: python -m tests.emulator.contract"


def test_query_and_path_are_checked_too(cf_state: EmulatorState, cf_server: Any) -> None:
    headers = {"Authorization": f"Bearer {CODE24_SEED.user_token}"}
    base = cf_server.api_base
    odd = httpx.get(f"{base}/accounts/{ACCOUNT}/workers/scripts?colour=blue", headers=headers)
    assert odd.status_code == 400
    assert json.loads(odd.content)["errors"][0]["code"] == 10026
    path_only = httpx.get(f"{base}/accounts/{ACCOUNT}?page=2", headers=headers)
    assert path_only.status_code == 400
    assert len(cf_state.take_type_violations()) == 2
