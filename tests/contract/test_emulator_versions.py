"""The emulator's Worker Versions and Deployments, held to the official SDK's types.

Every answer is validated with the SDK's own pydantic models (``model_validate``: the SDK
itself only *constructs* its models, which checks nothing). Two SDK 5.x quirks are pinned here
too, so a fixed SDK shows up as a failing test and code24ctl's workarounds can go:
``resources.bindings`` is typed as a class that is not a model (parsing a version answer that has
bindings fails), and ``deployments.list`` reads ``result.items`` where the API answers
``result.deployments``.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from cloudflare import BadRequestError, Cloudflare, NotFoundError
from cloudflare.types.workers.script_update_response import ScriptUpdateResponse
from cloudflare.types.workers.scripts import version_create_response, version_get_response
from cloudflare.types.workers.scripts.deployment import Deployment
from cloudflare.types.workers.scripts.deployment_list_response import DeploymentListResponse
from cloudflare.types.workers.scripts.version_list_response import VersionListResponse
from pydantic import BaseModel

from tests.emulator import EmulatorServer, EmulatorState
from tests.emulator.seeds import Code24Seed
from tests.emulator.versions import OVERRIDE_HEADER

SCRIPT = "release-me"
MODULE = "export default { fetch() { return new Response('{}') } }"


class _Resources(version_get_response.Resources):
    # The one field the SDK cannot validate: the docs describe a list of binding objects.
    bindings: list[dict[str, Any]] | None = None  # type: ignore[assignment]


class VersionGet(version_get_response.VersionGetResponse):
    """The SDK's VersionGetResponse, with ``resources.bindings`` as a list of objects."""

    resources: _Resources


class _CreateResources(version_create_response.Resources):
    bindings: list[dict[str, Any]] | None = None  # type: ignore[assignment]


class VersionCreate(version_create_response.VersionCreateResponse):
    """The SDK's VersionCreateResponse, with ``resources.bindings`` as a list of objects."""

    resources: _CreateResources


def strict(model: type[BaseModel], data: Any) -> BaseModel:
    """Validate ``data`` with ``model`` (raises on a missing field or a wrong type)."""
    return model.model_validate(data)


@pytest.fixture
def client(cf_inprocess_client: Cloudflare) -> Cloudflare:
    return cf_inprocess_client


@pytest.fixture
def account(cf_seed: Code24Seed) -> str:
    return cf_seed.account_id


@pytest.fixture
def v1(cf_state: EmulatorState, account: str) -> str:
    """An account Worker uploaded once: version 1 at 100%."""
    cf_state.add_account_script(
        account,
        SCRIPT,
        {"index.js": (MODULE, "application/javascript+module")},
        main_module="index.js",
        bindings=[{"type": "plain_text", "name": "COLOUR", "text": "blue"}],
    )
    return cf_state.versions.versions(account, SCRIPT)[0].id


def upload(client: Cloudflare, account: str, colour: str, **annotations: str) -> dict[str, Any]:
    raw = client.workers.scripts.versions.with_raw_response.create(
        SCRIPT,
        account_id=account,
        metadata={  # type: ignore[typeddict-unknown-key]
            "main_module": "index.js",
            "bindings": [{"type": "plain_text", "name": "COLOUR", "text": colour}],
            "annotations": annotations,
        },
        files=[("index.js", MODULE.encode(), "application/javascript+module")],
        bindings_inherit="strict",
    )
    envelope = raw.json()
    assert isinstance(envelope, dict)
    result: dict[str, Any] = envelope["result"]
    return result


def deploy(client: Cloudflare, account: str, *shares: tuple[str, float]) -> Deployment:
    return client.workers.scripts.deployments.create(
        SCRIPT,
        account_id=account,
        strategy="percentage",
        versions=[{"version_id": v, "percentage": p} for v, p in shares],
        annotations={"workers_message": "test"},
    )


def raw_deployments(client: Cloudflare, account: str) -> dict[str, Any]:
    envelope = client.get(
        f"/accounts/{account}/workers/scripts/{SCRIPT}/deployments", cast_to=object
    )
    assert isinstance(envelope, dict)
    result: dict[str, Any] = envelope["result"]
    return result


def test_a_script_put_is_a_version_deployed_at_100_and_names_it(
    client: Cloudflare, cf_state: EmulatorState, account: str, v1: str
) -> None:
    answer = client.workers.scripts.with_raw_response.update(
        SCRIPT,
        account_id=account,
        metadata={"main_module": "index.js"},
        files=[("index.js", MODULE.encode(), "application/javascript+module")],
    ).json()
    assert isinstance(answer, dict)

    strict(ScriptUpdateResponse, answer["result"])
    v2 = cf_state.versions.versions(account, SCRIPT)[0]
    assert answer["result"]["deployment_id"] == v2.id
    assert v2.number == 2
    assert cf_state.versions.split(account, SCRIPT) == {v2.id: 100.0}


def test_version_upload_list_and_get_match_the_sdk_types(
    client: Cloudflare, cf_state: EmulatorState, account: str, v1: str
) -> None:
    created = upload(client, account, "green", **{"workers/tag": "t1", "workers/message": "m"})

    strict(VersionCreate, created)
    assert created["annotations"] == {
        "workers/tag": "t1",
        "workers/message": "m",
        "workers/triggered_by": "version_upload",
    }
    assert created["number"] == 2
    assert created["resources"]["bindings"] == [
        {"type": "plain_text", "name": "COLOUR", "text": "green"}
    ]
    # Uploaded, not deployed: the Worker still serves version 1.
    assert cf_state.versions.split(account, SCRIPT) == {v1: 100.0}
    served = cf_state.account_script(account, SCRIPT)
    assert served is not None and served.binding("COLOUR") == {
        "type": "plain_text",
        "name": "COLOUR",
        "text": "blue",
    }

    page = client.workers.scripts.versions.list(SCRIPT, account_id=account, per_page=10)
    assert page.result is not None and page.result.items is not None
    items = [item.to_dict() for item in page.result.items]
    for item in items:
        strict(VersionListResponse, item)
    assert [(i["id"], i["number"]) for i in items] == [(created["id"], 2), (v1, 1)]
    assert page.result_info is not None and page.result_info.page == 1

    got = client.workers.scripts.versions.with_raw_response.get(
        created["id"], account_id=account, script_name=SCRIPT
    ).json()
    assert isinstance(got, dict)
    strict(VersionGet, got["result"])
    assert got["result"]["id"] == created["id"]


def test_the_sdk_cannot_parse_a_version_with_bindings(
    client: Cloudflare, account: str, v1: str
) -> None:
    # SDK 5.x: Resources.bindings is a plain class; code24ctl reads these answers raw.
    from pydantic import PydanticSchemaGenerationError

    with pytest.raises(PydanticSchemaGenerationError):
        client.workers.scripts.versions.get(v1, account_id=account, script_name=SCRIPT)


def test_deployments_match_the_sdk_types_and_list_newest_first(
    client: Cloudflare, cf_state: EmulatorState, account: str, v1: str
) -> None:
    v2 = upload(client, account, "green")["id"]

    created = deploy(client, account, (v2, 10), (v1, 90))

    strict(Deployment, created.to_dict())
    assert [(v.version_id, v.percentage) for v in created.versions] == [(v2, 10.0), (v1, 90.0)]
    listed = raw_deployments(client, account)
    strict(DeploymentListResponse, listed)
    assert [d["versions"] for d in listed["deployments"]] == [
        [{"version_id": v2, "percentage": 10.0}, {"version_id": v1, "percentage": 90.0}],
        [{"version_id": v1, "percentage": 100.0}],
    ]
    assert listed["deployments"][0]["annotations"] == {"workers/message": "test"}
    assert listed["deployments"][1]["annotations"] == {"workers/triggered_by": "upload"}
    # SDK 5.x: the typed list looks for result.items and finds nothing.
    assert list(client.workers.scripts.deployments.list(SCRIPT, account_id=account)) == []


def test_the_served_worker_follows_the_version_with_the_most_traffic(
    client: Cloudflare, cf_state: EmulatorState, account: str, v1: str
) -> None:
    v2 = upload(client, account, "green")["id"]

    deploy(client, account, (v2, 60), (v1, 40))
    served = cf_state.account_script(account, SCRIPT)
    assert served is not None and served.binding("COLOUR") == {
        "type": "plain_text",
        "name": "COLOUR",
        "text": "green",
    }
    deploy(client, account, (v1, 100))
    served = cf_state.account_script(account, SCRIPT)
    assert served is not None and (served.binding("COLOUR") or {})["text"] == "blue"


@pytest.mark.parametrize(
    ("shares", "message"),
    [
        ([("v2", 10), ("v1", 80)], "Percentages add up to 90, but must total exactly 100."),
        ([("v2", 120), ("v1", -20)], "Percentages must be between 0 and 100."),
        ([("v2", 50), ("v1", 50), ("v2", 0)], "A deployment must name one or two versions."),
        ([("nope", 100)], "Version nope does not exist for Worker release-me."),
        ([("v1", 50), ("v1", 50)], "is named twice."),
    ],
)
def test_deployments_that_do_not_total_100_of_known_versions_are_refused(
    client: Cloudflare,
    cf_state: EmulatorState,
    account: str,
    v1: str,
    shares: list[tuple[str, float]],
    message: str,
) -> None:
    v2 = upload(client, account, "green")["id"]
    ids = {"v1": v1, "v2": v2}

    with pytest.raises(BadRequestError) as caught:
        deploy(client, account, *((ids.get(v, v), p) for v, p in shares))

    assert message in str(caught.value)
    assert cf_state.versions.split(account, SCRIPT) == {v1: 100.0}


def test_a_version_at_0_percent_is_allowed(
    client: Cloudflare, cf_state: EmulatorState, account: str, v1: str
) -> None:
    v2 = upload(client, account, "green")["id"]

    deploy(client, account, (v1, 100), (v2, 0))

    assert cf_state.versions.split(account, SCRIPT) == {v1: 100.0, v2: 0.0}


def test_versions_of_a_missing_worker_are_not_found(client: Cloudflare, account: str) -> None:
    with pytest.raises(NotFoundError):
        client.workers.scripts.versions.list("no-such-worker", account_id=account)


def test_a_tag_over_100_bytes_is_refused(client: Cloudflare, account: str, v1: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        upload(client, account, "green", **{"workers/tag": "x" * 101})

    assert "workers/tag is longer than 100 bytes" in str(caught.value)


def test_a_dispatch_namespace_binding_can_be_refused_like_workers_sdk_10712(
    client: Cloudflare, cf_state: EmulatorState, account: str, v1: str
) -> None:
    from cloudflare import InternalServerError

    cf_state.add_namespace(account, "ns")
    cf_state.versions.refuse_dispatch_namespace_uploads = True
    raw = client.with_options(max_retries=0).workers.scripts.versions.with_raw_response

    with pytest.raises(InternalServerError):
        raw.create(
            SCRIPT,
            account_id=account,
            metadata={
                "main_module": "index.js",
                "bindings": [{"type": "dispatch_namespace", "name": "D", "namespace": "ns"}],
            },
            files=[("index.js", MODULE.encode(), "application/javascript+module")],
        )
    assert len(cf_state.versions.versions(account, SCRIPT)) == 1


def test_the_override_header_is_recorded(
    cf_server: EmulatorServer, cf_seed: Code24Seed, cf_state: EmulatorState
) -> None:
    header = 'release-me="0b9f3a1e-6c55-4c7e-9d4e-2f1a7b3c5d60"'
    with httpx.Client(base_url=cf_server.url) as http:
        http.get(
            f"/client/v4/accounts/{cf_seed.account_id}/workers/scripts",
            headers={
                "Authorization": f"Bearer {cf_seed.user_token}",
                "Cloudflare-Workers-Version-Overrides": header,
            },
        )
        recorded = http.get("/__emulator/requests").json()

    assert recorded[-1]["version_override"] == header
    assert cf_state.requests()[-1].headers[OVERRIDE_HEADER] == header
    assert json.dumps(recorded)  # the control answer stays plain JSON


# --------------------------------------------------------------------------------------------
# The test site (site.py): which version answers a request


def _ask(site: Any, override: str | None = None) -> str:
    headers = {"Cloudflare-Workers-Version-Overrides": override} if override else {}
    answer = httpx.get(site.url + "/x", headers=headers)
    assert answer.json() == {"ok": True}
    version: str = answer.headers["x-code24-dispatcher-version"]
    return version


def test_the_site_honours_an_override_only_for_a_deployed_version_after_the_delay(
    cf_state: EmulatorState, client: Cloudflare, account: str, v1: str
) -> None:
    import time

    from tests.emulator.site import VersionSite

    v2 = upload(client, account, "green")["id"]
    v3 = upload(client, account, "red")["id"]
    site = VersionSite(cf_state, account, SCRIPT, propagation_delay_s=0.5)
    with site.running():
        deploy(client, account, (v1, 100), (v2, 0))
        # Too soon after the deployment change: routed by the percentages, without an error.
        assert _ask(site, f'{SCRIPT}="{v2}"') == v1
        time.sleep(0.6)
        assert _ask(site, f'{SCRIPT}="{v2}"') == v2
        # Not in the deployment, another Worker's key, or not a valid dictionary: ignored.
        assert _ask(site, f'{SCRIPT}="{v3}"') == v1
        assert _ask(site, f'other-worker="{v2}"') == v1
        assert _ask(site, f"{SCRIPT}={v2}") == v1
        assert _ask(site) == v1
    assert site.served == [v1, v2, v1, v1, v1, v1]


def test_the_site_splits_by_the_percentages(
    cf_state: EmulatorState, client: Cloudflare, account: str, v1: str
) -> None:
    from tests.emulator.site import VersionSite

    v2 = upload(client, account, "green")["id"]
    site = VersionSite(cf_state, account, SCRIPT)
    with site.running():
        deploy(client, account, (v2, 10), (v1, 90))
        seen = [_ask(site) for _ in range(100)]
    assert seen.count(v2) == 10
    assert seen.count(v1) == 90


def test_a_rollback_across_a_changed_secret_is_refused_unless_forced(
    cf_state: EmulatorState, client: Cloudflare, account: str, v1: str
) -> None:
    v2 = upload(client, account, "green")["id"]
    deploy(client, account, (v2, 100))
    client.workers.scripts.secrets.update(
        SCRIPT, account_id=account, name="API_KEY", text="s3cret", type="secret_text"
    )

    with pytest.raises(BadRequestError) as refused:
        deploy(client, account, (v1, 100))
    assert refused.value.status_code == 400
    assert "10220" in str(refused.value)
    assert "The following secrets have changed: API_KEY" in str(refused.value)
    assert cf_state.versions.split(account, SCRIPT) == {v2: 100.0}

    client.workers.scripts.deployments.create(
        SCRIPT,
        account_id=account,
        strategy="percentage",
        versions=[{"version_id": v1, "percentage": 100}],
        force=True,
    )
    assert cf_state.versions.split(account, SCRIPT) == {v1: 100.0}
