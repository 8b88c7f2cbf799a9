"""Dispatcher releases end to end: versions, deploy --gradual/--canary, probe --version,
promote, rollback, and what doctor and apply say about a split deployment.

The CLI runs in-process against the Cloudflare emulator over HTTP; probes go to the test site
(tests/emulator/site.py), a real HTTP server on 127.0.0.1 that answers each request as the
dispatcher version the emulator's deployment routes it to (overrides only for a version in the
deployment, after the propagation delay), names that version in X-Code24-Dispatcher-Version,
and records every request it received.
"""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from code24ctl import __version__
from tests.emulator.seeds import Code24Seed
from tests.emulator.site import VersionSite
from tests.emulator.state import EmulatorState
from tests.support.cli import RunCli
from tests.support.http_servers import Answer, Behaviour
from tests.support.staging import (
    DISPATCHER,
    NAMESPACE,
    staging_config,
    write_config,
    writes,
)

OVERRIDE = "cloudflare-workers-version-overrides"
JSON_OK = Answer(200, b'{"ok": true}')
HTML_PAGE = Answer(502, b"<!DOCTYPE html><html><body>Bad gateway</body></html>", "text/html")
PROBED_ROUTES = 5  # the routes of the repo's config that have a probe sample


def broken_except(good: str) -> Callable[[str], Behaviour | None]:
    """Every dispatcher version but ``good`` answers an HTML page."""
    return lambda version: None if version == good else HTML_PAGE


@pytest.fixture
def zone(cf_site: VersionSite) -> VersionSite:
    """The site the probes go to: every version answers JSON on every path."""
    return cf_site


@pytest.fixture
def config(tmp_path: Path, zone: VersionSite) -> Path:
    return staging_config(tmp_path, zone.url)


@pytest.fixture
def cli(run_cli: RunCli, cf_env: dict[str, str], config: Path) -> RunCli:
    """``run_cli`` pointed at the emulator and the staging config of these tests."""

    def run(*args: str, **kwargs: Any) -> Any:
        kwargs.setdefault("config", config)
        return run_cli(*args, env=cf_env, **kwargs)

    return run


@pytest.fixture
def v1(cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed, zone: VersionSite) -> str:
    """The staging dispatcher deployed with plain ``deploy``; returns that version's id."""
    cf_state.add_namespace(cf_seed.account_id, NAMESPACE)
    result = cli("deploy", "--env", "staging", "--json")
    assert result.exit_code == 0, result.stderr
    cf_state.clear_requests()
    zone.requests.clear()
    version_id: str = json.loads(result.stdout)["version_id"]
    return version_id


def split(state: EmulatorState, seed: Code24Seed) -> dict[str, float]:
    return state.versions.split(seed.account_id, DISPATCHER)


def newest(state: EmulatorState, seed: Code24Seed) -> str:
    return state.versions.versions(seed.account_id, DISPATCHER)[0].id


def tag(state: EmulatorState, seed: Code24Seed, version_id: str) -> str:
    found = {v.id: v for v in state.versions.versions(seed.account_id, DISPATCHER)}
    return found[version_id].annotations["workers/tag"]


def deployment_writes(state: EmulatorState, seed: Code24Seed) -> list[Any]:
    """The bodies of every deployment created, in order."""
    return [
        r.json
        for r in state.requests(method="POST")
        if r.path == f"/accounts/{seed.account_id}/workers/scripts/{DISPATCHER}/deployments"
    ]


# --------------------------------------------------------------------------------------------
# The local environment


@pytest.mark.parametrize(
    "args",
    [
        ("versions",),
        ("promote",),
        ("rollback", "--yes"),
        ("deploy", "--gradual", "10"),
        ("deploy", "--canary", "10"),
        ("probe", "--version", "new"),
    ],
)
def test_the_local_environment_has_no_versions(run_cli: RunCli, args: tuple[str, ...]) -> None:
    result = run_cli(*args, "--env", "local")

    assert result.exit_code == 2
    assert result.stdout == ""
    assert (
        "environment 'local' is local: it has no Worker versions or deployments (those exist "
        "only on Cloudflare; `code24ctl serve` runs the config as it is)"
    ) in result.stderr
    assert "hint: choose one of: staging, production" in result.stderr


# --------------------------------------------------------------------------------------------
# Plain deploy


def test_plain_deploy_prints_the_version_it_created_and_annotates_it(
    cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    cf_state.add_namespace(cf_seed.account_id, NAMESPACE)

    result = cli("deploy", "--env", "staging")

    assert result.exit_code == 0, result.stderr
    (version,) = cf_state.versions.versions(cf_seed.account_id, DISPATCHER)
    assert f"version {version.id} deployed at 100% (nothing served before: not probed)\n" in (
        result.stdout
    )
    assert split(cf_state, cf_seed) == {version.id: 100.0}
    assert version.annotations["workers/tag"].startswith(f"code24ctl/{__version__} config/")
    assert version.annotations["workers/message"] == f"uploaded by code24ctl {__version__}"


def test_plain_deploy_says_so_when_the_api_names_no_version(
    cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed, monkeypatch: pytest.MonkeyPatch
) -> None:
    cf_state.add_namespace(cf_seed.account_id, NAMESPACE)
    monkeypatch.setattr(type(cf_state.versions), "latest_version_id", lambda *_: None)

    result = cli("deploy", "--env", "staging")

    assert result.exit_code == 0, result.stderr
    assert (
        "version not reported by the API deployed at 100% (nothing served before: not probed)\n"
        in result.stdout
    )


# --------------------------------------------------------------------------------------------
# deploy --gradual


def test_gradual_probes_the_new_version_at_0_then_deploys_it_at_the_percentage(
    cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed, v1: str, zone: VersionSite
) -> None:
    result = cli("deploy", "--env", "staging", "--gradual", "10", "-m", "new timeouts")

    assert result.exit_code == 0, result.stderr
    v2 = newest(cf_state, cf_seed)
    assert v2 != v1
    assert split(cf_state, cf_seed) == {v2: 10.0, v1: 90.0}
    config = tag(cf_state, cf_seed, v2).split("config/")[1]
    lines = result.stdout.splitlines()
    assert lines[:5] == [
        f"dispatcher {DISPATCHER} (staging)",
        f"before: {v1} at 100%",
        f"uploaded: {v2} #2 (code24ctl {__version__}, config {config}, 'new timeouts')",
        "",
        f"probe of version {v2} through the version override header:",
    ]
    assert [line.split()[:2] for line in lines[6:11]] == [
        ["ok", "/api/competitive"],
        ["ok", "/api/market"],
        ["ok", "/elite/brand"],
        ["ok", "/elite/design"],
        ["ok", "/elite/develop"],
    ]
    assert lines[11:] == [
        "",
        f"probed 5 of 5 routes on {zone.url} (staging, version {v2}): 5 passed, 0 failed",
        "",
        f"after: {v2} at 10%, {v1} at 90%",
        f"state: split: stable {v1} at 90%, candidate {v2} at 10%",
        f"gradual done: version {v2} serves 10%; `code24ctl promote --env staging` takes it "
        "to 100%, `code24ctl rollback --env staging` takes it back",
    ]
    # Every step says a line as it starts, the wait for v2 included.
    assert result.stderr.splitlines() == [
        f"gradual: uploading a new version of {DISPATCHER}",
        f"gradual: deploying version {v2} at 0% beside {v1} (100%), so that the version "
        "override reaches it",
        f"gradual: probing version {v2} through the version override",
        f"waiting up to 10 s for version {v2} to answer through the version override",
        f"version {v2} answered after 0.0 s (1 requests)",
        f"gradual: deploying version {v2} at 10%, {v1} at 90%",
        f"answers by dispatcher version: {v2} {PROBED_ROUTES}",
    ]
    # The probe went through the override only, to v2 alone: nothing else took traffic.
    assert len(zone.requests) == 1 + PROBED_ROUTES
    assert {r.headers[OVERRIDE] for r in zone.requests} == {f'{DISPATCHER}="{v2}"'}
    assert set(zone.served) == {v2}
    base = f"/accounts/{cf_seed.account_id}/workers/scripts/{DISPATCHER}"
    assert writes(cf_state) == [
        f"POST {base}/versions",
        f"POST {base}/deployments",
        f"POST {base}/deployments",
    ]
    (upload,) = cf_state.requests(method="POST", path_contains="/versions")
    assert upload.query_value("bindings_inherit") == "strict"
    metadata = json.loads((upload.part("metadata") or pytest.fail("no metadata")).data)
    assert metadata["annotations"] == {
        "workers/tag": f"code24ctl/{__version__} config/{config}",
        "workers/message": "new timeouts",
    }
    assert deployment_writes(cf_state, cf_seed) == [
        {
            "strategy": "percentage",
            "versions": [
                {"version_id": v1, "percentage": 100.0},
                {"version_id": v2, "percentage": 0.0},
            ],
            "annotations": {"workers/message": "new timeouts (probe)"},
        },
        {
            "strategy": "percentage",
            "versions": [
                {"version_id": v2, "percentage": 10.0},
                {"version_id": v1, "percentage": 90.0},
            ],
            "annotations": {"workers/message": "new timeouts"},
        },
    ]


def test_a_version_upload_carries_versioned_metadata_only_and_settings_go_to_script_settings(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    cf_inprocess_client: Any,
    v1: str,
) -> None:
    # The SDK's version-upload Metadata has no tags: they are the script's, not the version's.
    # Nor Workers Logs (observability), which the config turns on for the dispatcher. Here
    # someone cleared both since the deploy, so the release puts them back through
    # script-settings (as wrangler's versions upload does), and the split keeps them.
    base = f"/accounts/{cf_seed.account_id}/workers/scripts/{DISPATCHER}"
    cf_inprocess_client.workers.scripts.settings.edit(
        DISPATCHER, account_id=cf_seed.account_id, tags=[], observability={"enabled": False}
    )
    cf_state.clear_requests()

    result = cli("deploy", "--env", "staging", "--gradual", "10")

    assert result.exit_code == 0, result.stderr
    (upload,) = cf_state.requests(method="POST", path_contains="/versions")
    metadata = json.loads((upload.part("metadata") or pytest.fail("no metadata")).data)
    assert sorted(metadata) == [
        "annotations",
        "bindings",
        "compatibility_date",
        "keep_bindings",
        "main_module",
    ]
    assert writes(cf_state) == [
        f"POST {base}/versions",
        f"PATCH {base}/script-settings",
        f"POST {base}/deployments",
        f"POST {base}/deployments",
    ]
    (patch,) = cf_state.requests(method="PATCH")
    assert patch.json == {
        "observability": {"enabled": True, "head_sampling_rate": 1.0},
        "tags": [
            "code24ctl-platform:code24",
            "code24ctl-environment:staging",
            "code24ctl-role:dispatcher",
        ],
    }
    served = cf_state.account_script(cf_seed.account_id, DISPATCHER)
    assert served is not None and served.tags == patch.json["tags"]


def test_unchanged_tags_are_not_patched(
    cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed, v1: str
) -> None:
    result = cli("deploy", "--env", "staging", "--gradual", "10")

    assert result.exit_code == 0, result.stderr
    assert cf_state.requests(method="PATCH") == []
    assert [r.route for r in cf_state.requests(path_contains="/script-settings")] == [
        "GET /accounts/{account_id}/workers/scripts/{script}/script-settings"
    ]


def test_gradual_json_follows_the_house_shape(
    cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed, v1: str
) -> None:
    result = cli("deploy", "--env", "staging", "--gradual", "25", "--json")

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    v2 = newest(cf_state, cf_seed)
    assert document["command"] == "deploy"
    assert document["environment"] == "staging"
    assert document["namespace"] == NAMESPACE
    assert document["strategy"] == "gradual"
    assert document["ok"] is True
    assert document["version"]["id"] == v2
    assert document["before"]["versions"] == [{"version_id": v1, "percentage": 100.0}]
    assert document["after"]["versions"] == [
        {"version_id": v2, "percentage": 25.0},
        {"version_id": v1, "percentage": 75.0},
    ]
    assert [run["stage"] for run in document["probes"]] == ["override"]
    assert document["probes"][0]["report"]["version"] == v2
    assert document["summary"] == {"probes": 1, "probes_failed": 0}


def test_gradual_whose_version_never_answers_through_the_override_changes_nothing(
    cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed, v1: str, zone: VersionSite
) -> None:
    # The override never takes effect: v1 answers every request. Before, gradual deployed v2
    # at 10% unprobed; now it never takes a request.
    zone.propagation_delay_s = 3600

    result = cli("deploy", "--env", "staging", "--gradual", "10", "--wait", "1")

    assert result.exit_code == 1
    v2 = newest(cf_state, cf_seed)
    assert split(cf_state, cf_seed) == {v1: 100.0}
    assert zone.served and set(zone.served) == {v1}
    assert {r.headers[OVERRIDE] for r in zone.requests} == {f'{DISPATCHER}="{v2}"'}
    # The write log: the 0% deployment the override needs, then the old one back; v2 never
    # had a share above 0.
    assert [d["versions"] for d in deployment_writes(cf_state, cf_seed)] == [
        [{"version_id": v1, "percentage": 100.0}, {"version_id": v2, "percentage": 0.0}],
        [{"version_id": v1, "percentage": 100.0}],
    ]
    message = (
        f"the probe through the override (version_not_applied: version {v2} never answered "
        f"within 1 s) failed; the deployment is back as it was ({v1} 100%); version {v2} "
        "takes no traffic"
    )
    assert result.stdout.splitlines()[-3:] == [
        f"after: {v1} at 100%",
        f"state: one version: {v1} at 100%",
        f"gradual failed: {message}",
    ]
    assert f"gradual: deploying version {v2} at 10%" not in result.stderr
    assert f"gradual: {message.split(' failed;')[0]} failed: putting back {v1} 100%" in (
        result.stderr
    )
    assert result.stderr.endswith(f"error: {message}\n")


def test_gradual_with_a_failing_probe_puts_the_deployment_back_json(
    cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed, v1: str, zone: VersionSite
) -> None:
    zone.choose = broken_except(v1)

    result = cli("deploy", "--env", "staging", "--gradual", "10", "--json")

    assert result.exit_code == 1
    document = json.loads(result.stdout)
    v2 = newest(cf_state, cf_seed)
    assert split(cf_state, cf_seed) == {v1: 100.0}
    assert set(zone.served) == {v2}  # through the override only
    assert len(zone.requests) == 1 + PROBED_ROUTES
    assert document["strategy"] == "gradual"
    assert document["ok"] is False
    assert document["restored"] is True
    assert document["put_back_failed"] is False
    assert [run["stage"] for run in document["probes"]] == ["override"]
    assert document["summary"] == {"probes": 1, "probes_failed": 1}
    assert document["after"]["versions"] == [{"version_id": v1, "percentage": 100.0}]
    assert document["error"] == (
        "the probe through the override failed; the deployment is back as it was "
        f"({v1} 100%); version {v2} takes no traffic"
    )
    assert result.stderr.endswith(f"error: {document['error']}\n")


@pytest.mark.parametrize("percent", ["0", "101", "-5"])
def test_gradual_refuses_a_percentage_out_of_range(
    cli: RunCli, cf_state: EmulatorState, v1: str, percent: str
) -> None:
    result = cli("deploy", "--env", "staging", "--gradual", percent)

    assert result.exit_code == 2
    assert "the percentage must be more than 0 and at most 100" in result.stderr
    assert writes(cf_state) == []


def test_gradual_before_any_deploy_names_plain_deploy(
    cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    cf_state.add_namespace(cf_seed.account_id, NAMESPACE)

    result = cli("deploy", "--env", "staging", "--gradual", "10")

    assert result.exit_code == 2
    assert f"the dispatcher {DISPATCHER} has no deployment yet" in result.stderr
    assert "hint: run `code24ctl deploy --env staging` first" in result.stderr
    assert writes(cf_state) == []


def test_gradual_over_an_unfinished_rollout_is_refused(
    cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed, v1: str
) -> None:
    assert cli("deploy", "--env", "staging", "--gradual", "10").exit_code == 0
    before = split(cf_state, cf_seed)
    cf_state.clear_requests()

    result = cli("deploy", "--env", "staging", "--gradual", "20")

    assert result.exit_code == 2
    assert "is in an unfinished gradual rollout" in result.stderr
    assert "`code24ctl promote --env staging` or `code24ctl rollback --env staging`" in (
        result.stderr
    )
    assert writes(cf_state) == []
    assert split(cf_state, cf_seed) == before


def test_a_refused_version_upload_changes_nothing_and_names_deploy_unprobed(
    cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed, v1: str
) -> None:
    cf_state.versions.refuse_dispatch_namespace_uploads = True

    for release in ("--gradual", "--canary"):
        cf_state.clear_requests()
        result = cli("deploy", "--env", "staging", release, "10")

        assert result.exit_code == 3
        assert result.stdout == ""
        assert (
            f"the Versions API refused the upload of {DISPATCHER} (upload a version of "
            f"{DISPATCHER}: Cloudflare API error 10002: An unknown error has occurred "
            "(HTTP 500)); nothing was changed"
        ) in result.stderr
        assert (
            "hint: retry; if it keeps failing, `code24ctl deploy --env staging --unprobed` "
            "uploads and deploys the dispatcher in one step, live at 100% without a probe"
        ) in result.stderr
        assert "cloudflare/workers-sdk/issues/10712" in result.stderr
        assert deployment_writes(cf_state, cf_seed) == []
        assert split(cf_state, cf_seed) == {v1: 100.0}
    assert len(cf_state.versions.versions(cf_seed.account_id, DISPATCHER)) == 1


# --------------------------------------------------------------------------------------------
# deploy --canary


def test_canary_with_a_failing_probe_puts_the_deployment_back_and_exits_1(
    cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed, v1: str, zone: VersionSite
) -> None:
    zone.choose = broken_except(v1)

    result = cli("deploy", "--env", "staging", "--canary", "10")

    assert result.exit_code == 1
    v2 = newest(cf_state, cf_seed)
    assert split(cf_state, cf_seed) == {v1: 100.0}
    # The write log: the version, the 0% deployment the override needs, the old one back.
    assert [d["versions"] for d in deployment_writes(cf_state, cf_seed)] == [
        [{"version_id": v1, "percentage": 100.0}, {"version_id": v2, "percentage": 0.0}],
        [{"version_id": v1, "percentage": 100.0}],
    ]
    # Only the probe through the override ran (after one request that waited for v2), and
    # every request carried the override.
    assert len(zone.requests) == 1 + PROBED_ROUTES
    assert {r.headers[OVERRIDE] for r in zone.requests} == {f'{DISPATCHER}="{v2}"'}
    assert set(zone.served) == {v2}
    lines = result.stdout.splitlines()
    assert lines[4] == f"probe of version {v2} through the version override header:"
    assert lines[-5:-3] == [
        f"probed 5 of 5 routes on {zone.url} (staging, version {v2}): 0 passed, 5 failed",
        "",
    ]
    assert lines[-3:] == [
        f"after: {v1} at 100%",
        f"state: one version: {v1} at 100%",
        "canary failed: the probe through the override failed; the deployment is back as it "
        f"was ({v1} 100%); version {v2} takes no traffic",
    ]
    assert "/api/competitive: html: " in result.stdout
    # Every step said a line as it started, the wait for v2 included.
    assert result.stderr.splitlines() == [
        f"canary: uploading a new version of {DISPATCHER}",
        f"canary: deploying version {v2} at 0% beside {v1} (100%), so that the version "
        "override reaches it",
        f"canary: probing version {v2} through the version override",
        f"waiting up to 10 s for version {v2} to answer through the version override",
        f"version {v2} answered after 0.0 s (1 requests)",
        f"canary: the probe through the override failed: putting back {v1} 100%",
        f"answers by dispatcher version: {v2} {PROBED_ROUTES}",
        "error: the probe through the override failed; the deployment is back as it was "
        f"({v1} 100%); version {v2} takes no traffic",
    ]
    assert result.stderr.endswith(
        "error: the probe through the override failed; the deployment is back as it was "
        f"({v1} 100%); version {v2} takes no traffic\n"
    )


def test_canary_failing_after_the_split_puts_the_deployment_back(
    cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed, v1: str, zone: VersionSite
) -> None:
    # The new version is fine through the override, but after the split an answer is broken
    # (here the old version's: 90% of the traffic).
    zone.choose = lambda version: HTML_PAGE if version == v1 else None

    result = cli("deploy", "--env", "staging", "--canary", "10", "--json")

    assert result.exit_code == 1
    document = json.loads(result.stdout)
    v2 = newest(cf_state, cf_seed)
    assert split(cf_state, cf_seed) == {v1: 100.0}
    assert [run["stage"] for run in document["probes"]] == ["override", "split"]
    assert [run["report"]["ok"] for run in document["probes"]] == [True, False]
    assert document["restored"] is True
    assert document["ok"] is False
    assert document["summary"] == {"probes": 2, "probes_failed": 1}
    assert [d["versions"] for d in deployment_writes(cf_state, cf_seed)] == [
        [{"version_id": v1, "percentage": 100.0}, {"version_id": v2, "percentage": 0.0}],
        [{"version_id": v2, "percentage": 10.0}, {"version_id": v1, "percentage": 90.0}],
        [{"version_id": v1, "percentage": 100.0}],
    ]
    assert "error: the probe at 10% failed; the deployment is back as it was" in result.stderr


def test_canary_whose_version_never_answers_puts_the_deployment_back(
    cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed, v1: str, zone: VersionSite
) -> None:
    # The override never takes effect: every request is answered by v1. Before, this passed
    # the probe "through the override" on v1's answers and went on to the split.
    zone.propagation_delay_s = 3600

    result = cli("deploy", "--env", "staging", "--canary", "10", "--wait", "1", "--json")

    assert result.exit_code == 1
    v2 = newest(cf_state, cf_seed)
    assert set(zone.served) == {v1}
    assert split(cf_state, cf_seed) == {v1: 100.0}
    assert [d["versions"] for d in deployment_writes(cf_state, cf_seed)] == [
        [{"version_id": v1, "percentage": 100.0}, {"version_id": v2, "percentage": 0.0}],
        [{"version_id": v1, "percentage": 100.0}],
    ]
    document = json.loads(result.stdout)
    assert [run["stage"] for run in document["probes"]] == ["override"]
    probe = document["probes"][0]["report"]
    assert probe["version_wait"]["applied"] is False
    assert probe["summary"]["version_not_applied"] == PROBED_ROUTES
    assert document["restored"] is True
    assert document["state"]["words"] == f"one version: {v1} at 100%"
    message = (
        f"the probe through the override (version_not_applied: version {v2} never answered "
        f"within 1 s) failed; the deployment is back as it was ({v1} 100%); version {v2} "
        "takes no traffic"
    )
    assert document["error"] == message
    assert result.stderr.endswith(f"error: {message}\n")


def test_canary_waits_for_the_override_to_apply_and_ends_at_the_percentage(
    cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed, v1: str, zone: VersionSite
) -> None:
    # Cloudflare applies the override a moment after the deployment change; until then the
    # requests that carry it are answered by v1, which must not count as v2 passing.
    zone.propagation_delay_s = 1.2

    result = cli("deploy", "--env", "staging", "--canary", "10", "--repeat", "4")

    assert result.exit_code == 0, result.stderr
    v2 = newest(cf_state, cf_seed)
    assert split(cf_state, cf_seed) == {v2: 10.0, v1: 90.0}
    overridden = [r for r in zone.requests if OVERRIDE in r.headers]
    plain = [r for r in zone.requests if OVERRIDE not in r.headers]
    waited = len(overridden) - PROBED_ROUTES
    assert waited >= 3  # 0.5 s apart over 1.2 s: v1 answered the first ones
    assert zone.served[: waited - 1] == [v1] * (waited - 1)
    # Once v2 answered, the probe proper: every route through the override, all from v2.
    assert zone.served[waited - 1 : len(overridden)] == [v2] * (PROBED_ROUTES + 1)
    assert {r.headers[OVERRIDE] for r in overridden} == {f'{DISPATCHER}="{v2}"'}
    # --repeat is for the probe after the split; the one through the override sends one each.
    assert len(plain) == PROBED_ROUTES * 4
    assert zone.requests[: len(overridden)] == overridden
    assert f"  0.0 s: still answered by version {v1}" not in result.stderr
    assert f"version {v2} answered after 1." in result.stderr
    assert "probe after the split (4 requests per route):" in result.stdout
    # The split is visible: the answers after it are counted per version.
    after_split = zone.served[len(overridden) :]
    counted = {v: after_split.count(v) for v in (v1, v2)}
    assert counted[v2] >= 1 and counted[v1] >= 15
    assert f"answers by dispatcher version: {v1} {counted[v1]}, {v2} {counted[v2]}" in (
        result.stderr
    )
    assert result.stdout.splitlines()[-3:] == [
        f"after: {v2} at 10%, {v1} at 90%",
        f"state: split: stable {v1} at 90%, candidate {v2} at 10%",
        f"canary done: version {v2} serves 10%; `code24ctl promote --env staging` takes it "
        "to 100%, `code24ctl rollback --env staging` takes it back",
    ]


@pytest.mark.parametrize("strategy", ["canary", "gradual"])
def test_a_release_without_a_base_url_stops_before_writing(
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    v1: str,
    tmp_path: Path,
    strategy: str,
) -> None:
    def change(data: dict[str, Any]) -> None:
        del data["environments"]["staging"]["base_url"]

    (tmp_path / "nb").mkdir()
    bare = write_config(tmp_path / "nb", change)

    result = run_cli("deploy", "--env", "staging", f"--{strategy}", "10", env=cf_env, config=bare)

    assert result.exit_code == 2
    assert "environment 'staging' (from --env) has no base_url to probe" in result.stderr
    assert writes(cf_state) == []


# --------------------------------------------------------------------------------------------
# probe --version


def test_probe_version_sends_the_override_on_every_request(
    cli: RunCli, cf_state: EmulatorState, v1: str, zone: VersionSite
) -> None:
    result = cli("probe", "--env", "staging", "--version", v1, "--repeat", "3", "--json")

    assert result.exit_code == 0, result.stderr
    # One request found v1 answering, then the probe proper.
    assert len(zone.requests) == 1 + PROBED_ROUTES * 3
    assert [r.headers.get(OVERRIDE) for r in zone.requests] == [f'{DISPATCHER}="{v1}"'] * len(
        zone.requests
    )
    document = json.loads(result.stdout)
    assert document["version"] == v1
    assert document["version_wait"] == {
        "version": v1,
        "applied": True,
        "attempts": 1,
        "waited_ms": document["version_wait"]["waited_ms"],
        "limit_s": 10.0,
    }
    assert document["dispatcher_versions"] == {v1: PROBED_ROUTES * 3}
    assert {row["dispatcher_version"] for row in document["routes"]} == {v1}
    assert cf_state.requests() == []  # an explicit id needs no API call


def test_probe_version_fails_with_version_not_applied_when_the_override_is_ignored(
    cli: RunCli, cf_state: EmulatorState, v1: str, zone: VersionSite
) -> None:
    # A version that is not in the deployment: Cloudflare ignores the override and routes the
    # requests by the percentages, to v1, without an error.
    other = "0b9f3a1e-6c55-4c7e-9d4e-2f1a7b3c5d60"

    result = cli("probe", "--env", "staging", "--version", other, "--wait", "1")

    assert result.exit_code == 1
    assert set(zone.served) == {v1}
    assert {r.headers.get(OVERRIDE) for r in zone.requests} == {f'{DISPATCHER}="{other}"'}
    waits = len(zone.requests) - PROBED_ROUTES
    assert waits == 2  # at 0 s and 0.5 s; another 0.5 s would pass the 1 s bound
    lines = result.stdout.splitlines()
    assert lines[-1] == (
        f"probed 5 of 5 routes on {zone.url} (staging, version {other}): 0 passed, 5 failed"
    )
    assert (
        f"/api/competitive: version_not_applied: 1 of 1 answers came from another dispatcher "
        f"version ({v1}), not {other}"
    ) in lines
    assert result.stderr.splitlines() == [
        f"waiting up to 1 s for version {other} to answer through the version override",
        f"answers by dispatcher version: {v1} {PROBED_ROUTES}",
        f"version {other} did not answer within 1 s ({waits} requests): the override was not "
        "applied (is the version in the current deployment?)",
        "error: 5 of 5 routes failed the probe",
    ]
    assert cf_state.requests() == []


def test_probe_version_json_names_the_failure_reason(
    cli: RunCli, v1: str, zone: VersionSite
) -> None:
    other = "0b9f3a1e-6c55-4c7e-9d4e-2f1a7b3c5d60"

    result = cli("probe", "--env", "staging", "--version", other, "--wait", "0", "--json")

    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["version_wait"]["applied"] is False
    assert document["version_wait"]["attempts"] == 1
    assert document["summary"]["version_not_applied"] == PROBED_ROUTES
    assert {row["version_not_applied"] for row in document["routes"]} == {True}
    assert {row["outcome"] for row in document["routes"]} == {"fail"}
    assert document["dispatcher_versions"] == {v1: PROBED_ROUTES}


def test_probe_version_new_asks_the_api_for_the_newest_version(
    cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed, v1: str, zone: VersionSite
) -> None:
    assert cli("deploy", "--env", "staging", "--gradual", "5").exit_code == 0
    v2 = newest(cf_state, cf_seed)
    zone.requests.clear()

    result = cli("probe", "--env", "staging", "--version", "new", "--json")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["version"] == v2
    assert {r.headers.get(OVERRIDE) for r in zone.requests} == {f'{DISPATCHER}="{v2}"'}


def test_probe_without_version_sends_no_override_and_counts_answers_per_version(
    cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed, v1: str, zone: VersionSite
) -> None:
    assert cli("deploy", "--env", "staging", "--gradual", "10").exit_code == 0
    v2 = newest(cf_state, cf_seed)
    zone.clear()

    result = cli("probe", "--env", "staging", "--repeat", "10", "--json")

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["version"] is None
    assert document["version_wait"] is None
    assert all(OVERRIDE not in r.headers for r in zone.requests)
    # A 90/10 split is visible: each version's answers, as the site served them.
    assert document["dispatcher_versions"] == {v1: zone.served.count(v1), v2: zone.served.count(v2)}
    assert zone.served.count(v2) >= 3
    assert (
        f"answers by dispatcher version: {v1} {zone.served.count(v1)}, {v2} {zone.served.count(v2)}"
    ) in result.stderr


# --------------------------------------------------------------------------------------------
# promote, rollback, versions


def test_promote_then_rollback_then_versions(
    cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed, v1: str, zone: VersionSite
) -> None:
    assert cli("deploy", "--env", "staging", "--gradual", "10").exit_code == 0
    v2 = newest(cf_state, cf_seed)
    zone.clear()

    promoted = cli("promote", "--env", "staging", "--yes")

    assert promoted.exit_code == 0, promoted.stderr
    assert split(cf_state, cf_seed) == {v2: 100.0}
    # The candidate was probed through the override before it took the traffic.
    assert {r.headers.get(OVERRIDE) for r in zone.requests} == {f'{DISPATCHER}="{v2}"'}
    assert set(zone.served) == {v2}
    assert promoted.stdout.splitlines()[-2:] == [
        f"state: one version: {v2} at 100%",
        f"promote done: version {v2} serves 100%",
    ]
    assert promoted.stderr.splitlines()[:3] == [
        f"promote of {DISPATCHER} (staging)",
        f"  now: split: stable {v1} at 90%, candidate {v2} at 10%",
        f"  to:  {v2} at 100%",
    ]

    cf_state.clear_requests()
    again = cli("promote", "--env", "staging", "--yes")
    assert again.exit_code == 2
    assert again.stdout == ""
    assert (
        f"error: nothing to promote: the dispatcher {DISPATCHER} is not split (one version: "
        f"{v2} at 100%)"
    ) in again.stderr
    assert writes(cf_state) == []

    refused = cli("rollback", "--env", "staging")  # no terminal, no --yes
    assert refused.exit_code == 2
    assert "refusing to continue without confirmation" in refused.stderr
    assert split(cf_state, cf_seed) == {v2: 100.0}
    assert f"  now: one version: {v2} at 100%" in refused.stderr
    assert f"  to:  {v1} at 100% (the previous version that served 100%)" in refused.stderr

    zone.clear()
    rolled = cli("rollback", "--env", "staging", "--yes")

    assert rolled.exit_code == 0, rolled.stderr
    assert split(cf_state, cf_seed) == {v1: 100.0}
    assert "probe after the rollback:" in rolled.stdout
    assert len(zone.requests) == PROBED_ROUTES
    assert rolled.stdout.splitlines()[-1] == f"rollback done: version {v1} serves 100%"

    listed = cli("versions", "--env", "staging", "--json")

    assert listed.exit_code == 0, listed.stderr
    document = json.loads(listed.stdout)
    assert document["command"] == "versions"
    assert document["namespace"] == NAMESPACE
    assert [(v["id"], v["number"], v["percentage"]) for v in document["versions"]] == [
        (v2, 2, None),
        (v1, 1, 100.0),
    ]
    assert {v["code24ctl_version"] for v in document["versions"]} == {__version__}
    assert {v["config_hash"] for v in document["versions"]} == {document["config_hash"]}
    assert document["deployment"]["versions"] == [{"version_id": v1, "percentage": 100.0}]
    assert document["state"]["words"] == f"one version: {v1} at 100%"
    assert document["summary"] == {"versions": 2, "serving": 1, "split": False}


def test_promote_with_no_split_changes_nothing(
    cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed, v1: str
) -> None:
    # An upload that never passed its probe (an interrupted canary left it) is not promoted.
    assert cli("deploy", "--env", "staging", "--gradual", "10").exit_code == 0
    assert cli("rollback", "--env", "staging", "--yes").exit_code == 0
    cf_state.clear_requests()

    result = cli("promote", "--env", "staging", "--yes")

    assert result.exit_code == 2
    assert writes(cf_state) == []
    assert split(cf_state, cf_seed) == {v1: 100.0}
    assert "nothing to promote" in result.stderr
    assert (
        "hint: `code24ctl deploy --env staging --canary PERCENT` starts a release; "
        "`code24ctl promote --env staging VERSION_ID` takes a named version to 100%"
    ) in result.stderr


def test_promote_refuses_a_candidate_whose_probe_fails(
    cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed, v1: str, zone: VersionSite
) -> None:
    assert cli("deploy", "--env", "staging", "--gradual", "10").exit_code == 0
    v2 = newest(cf_state, cf_seed)
    zone.choose = broken_except(v1)
    cf_state.clear_requests()

    result = cli("promote", "--env", "staging", "--yes")

    assert result.exit_code == 1
    assert writes(cf_state) == []
    assert split(cf_state, cf_seed) == {v2: 10.0, v1: 90.0}
    assert result.stderr.endswith(
        f"error: the probe through the override failed; nothing was changed ({v2} 10%, {v1} 90%)\n"
    )


def test_promote_a_named_version_by_prefix(
    cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed, v1: str
) -> None:
    assert cli("deploy", "--env", "staging", "--gradual", "10").exit_code == 0
    assert cli("promote", "--env", "staging", "--yes").exit_code == 0

    result = cli("promote", "--env", "staging", v1[:8], "--yes", "--json")

    assert result.exit_code == 0, result.stderr
    assert split(cf_state, cf_seed) == {v1: 100.0}
    assert json.loads(result.stdout)["version"]["id"] == v1


def test_rollback_during_a_split_returns_to_the_stable_version(
    cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed, v1: str
) -> None:
    # Three versions: v1, then v2 promoted, then v3 at 10%. The stable version of the split is
    # v2 (it served 100% before), not v1 (the last one at 100% before v2).
    assert cli("deploy", "--env", "staging", "--gradual", "50").exit_code == 0
    v2 = newest(cf_state, cf_seed)
    assert cli("promote", "--env", "staging", "--yes").exit_code == 0
    assert cli("deploy", "--env", "staging", "--gradual", "10").exit_code == 0
    v3 = newest(cf_state, cf_seed)

    result = cli("rollback", "--env", "staging", "--yes")

    assert result.exit_code == 0, result.stderr
    assert split(cf_state, cf_seed) == {v2: 100.0}
    assert f"  now: split: stable {v2} at 90%, candidate {v3} at 10%" in result.stderr
    assert f"  to:  {v2} at 100% (the stable version of the split)" in result.stderr


def test_rollback_to_a_named_version(
    cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed, v1: str
) -> None:
    assert cli("deploy", "--env", "staging", "--gradual", "50").exit_code == 0
    assert cli("promote", "--env", "staging", "--yes").exit_code == 0

    result = cli("rollback", "--env", "staging", v1, "--yes", "--json")

    assert result.exit_code == 0, result.stderr
    assert split(cf_state, cf_seed) == {v1: 100.0}
    document = json.loads(result.stdout)
    assert document["command"] == "rollback"
    assert document["version"]["id"] == v1
    assert [run["stage"] for run in document["probes"]] == ["after"]


def test_rollback_to_a_unique_prefix(
    cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed, v1: str
) -> None:
    assert cli("deploy", "--env", "staging", "--gradual", "50").exit_code == 0
    assert cli("promote", "--env", "staging", "--yes").exit_code == 0

    result = cli("rollback", "--env", "staging", v1[:4], "--yes")

    assert result.exit_code == 0, result.stderr
    assert split(cf_state, cf_seed) == {v1: 100.0}


@pytest.mark.parametrize("given", ["zzzz", "0b9f3a1e-6c55-4c7e-9d4e-2f1a7b3c5d60"])
def test_rollback_to_an_unknown_version_is_exit_2_with_the_recent_versions(
    cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed, v1: str, given: str
) -> None:
    assert cli("deploy", "--env", "staging", "--gradual", "50").exit_code == 0
    v2 = newest(cf_state, cf_seed)
    cf_state.clear_requests()

    result = cli("rollback", "--env", "staging", given, "--yes")

    assert result.exit_code == 2
    assert writes(cf_state) == []
    assert f"error: no version of {DISPATCHER} has an id starting with {given!r}" in result.stderr
    assert (
        f"hint: recent versions: {v2} #2, {v1} #1 (`code24ctl versions --env staging` lists them)"
    ) in result.stderr
    assert "run bind" not in result.stderr


def test_rollback_across_a_changed_secret_explains_and_forces_once_confirmed(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    cf_inprocess_client: Any,
    v1: str,
) -> None:
    assert cli("deploy", "--env", "staging", "--gradual", "50").exit_code == 0
    v2 = newest(cf_state, cf_seed)
    assert cli("promote", "--env", "staging", "--yes").exit_code == 0
    cf_inprocess_client.workers.scripts.secrets.update(
        DISPATCHER, account_id=cf_seed.account_id, name="API_KEY", text="new", type="secret_text"
    )
    cf_state.clear_requests()

    result = cli("rollback", "--env", "staging", "--yes")

    assert result.exit_code == 0, result.stderr
    assert split(cf_state, cf_seed) == {v1: 100.0}
    creates = cf_state.requests(method="POST", path_contains="/deployments")
    assert [r.query_value("force") for r in creates] == [None, "true"]
    assert (
        f"the API refused: secrets changed since version {v1} was deployed (API_KEY); rolling "
        "back anyway runs that version with the secrets as they are now"
    ) in result.stderr
    assert v2 != v1


def test_rollback_with_no_earlier_stable_version_asks_for_one(
    cli: RunCli, cf_state: EmulatorState, v1: str
) -> None:
    result = cli("rollback", "--env", "staging", "--yes")

    assert result.exit_code == 2
    assert f"no earlier version of {DISPATCHER} served 100% of the traffic" in result.stderr
    assert writes(cf_state) == []


def messages(state: EmulatorState, seed: Code24Seed) -> list[Any]:
    """The workers/message of every deployment created, in order (None: none sent)."""
    return [
        (body.get("annotations") or {}).get("workers/message")
        for body in deployment_writes(state, seed)
    ]


def test_promote_and_rollback_message_is_the_deployments(
    cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed, v1: str
) -> None:
    assert cli("deploy", "--env", "staging", "--gradual", "50").exit_code == 0
    v2 = newest(cf_state, cf_seed)
    cf_state.clear_requests()

    promoted = cli("promote", "--env", "staging", "--yes", "--message", "v2 passed review")
    assert promoted.exit_code == 0, promoted.stderr
    rolled = cli("rollback", "--env", "staging", "--yes", "-m", "incident 42: back to v1", "--json")

    assert rolled.exit_code == 0, rolled.stderr
    assert split(cf_state, cf_seed) == {v1: 100.0}
    # Sent as the SDK's deployments.create annotations (workers/message), kept by the API.
    assert messages(cf_state, cf_seed) == ["v2 passed review", "incident 42: back to v1"]
    serving = cf_state.versions.deployments(cf_seed.account_id, DISPATCHER)[0]
    assert serving.annotations == {"workers/message": "incident 42: back to v1"}
    assert json.loads(rolled.stdout)["after"]["message"] == "incident 42: back to v1"
    listed = cli("versions", "--env", "staging", "--json")
    assert json.loads(listed.stdout)["deployment"]["message"] == "incident 42: back to v1"
    first = cli("versions", "--env", "staging").stdout.splitlines()[0]
    assert first.startswith(f"deployment of {DISPATCHER} (staging): {v1} 100% (since ")
    assert first.endswith(", message 'incident 42: back to v1')")

    # Without --message, the deployment is named after the command, as before.
    cf_state.clear_requests()
    assert cli("rollback", "--env", "staging", v2, "--yes").exit_code == 0
    assert cli("deploy", "--env", "staging", "--gradual", "50").exit_code == 0
    assert cli("promote", "--env", "staging", "--yes").exit_code == 0
    assert messages(cf_state, cf_seed) == [
        "code24ctl rollback",
        "code24ctl deploy --gradual 50 (probe)",  # the 0% stage its probe goes through
        "code24ctl deploy --gradual 50",
        "code24ctl promote",
    ]


@pytest.mark.parametrize("command", ["promote", "rollback"])
@pytest.mark.parametrize("given", ["", "  "])
def test_an_empty_message_is_refused_before_anything_is_read(
    cli: RunCli, cf_state: EmulatorState, v1: str, command: str, given: str
) -> None:
    result = cli(command, "--env", "staging", "--yes", "--message", given)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        "error: --message is empty\n  hint: give the message, or leave --message out\n"
    )
    assert cf_state.requests() == []


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ("--gradual", "10", "--repeat", "3"),
            "--repeat goes with --canary: a gradual rollout probes once, before its split",
        ),
        (("--repeat", "3"), "--repeat goes with --canary"),
        (("--message", "x"), "--message goes with --gradual or --canary"),
    ],
)
def test_an_option_of_another_strategy_is_refused_before_anything_is_read(
    cli: RunCli, cf_state: EmulatorState, v1: str, args: tuple[str, ...], said: str
) -> None:
    cf_state.clear_requests()
    result = cli("deploy", "--env", "staging", *args)

    assert result.exit_code == 2
    assert result.stderr == f"error: {said}\n"
    assert cf_state.requests() == []


@pytest.mark.parametrize("command", ["promote", "rollback"])
def test_message_help_names_the_default(run_cli: RunCli, command: str) -> None:
    result = run_cli(command, "--help", env={"COLUMNS": "200"})

    assert result.exit_code == 0
    assert "--message says why, on the deployment it makes (versions shows it)." in result.stdout
    line = next(line for line in result.stdout.splitlines() if "│ --message" in line)
    assert line.split()[1:5] == ["--message", "-m", "TEXT", "the"]
    assert (
        "the message of the deployment it makes (its workers/message annotation, shown by "
        f"versions) [default: code24ctl {command}]"
    ) in line


def test_versions_of_a_dispatcher_never_deployed(cli: RunCli, cf_state: EmulatorState) -> None:
    result = cli("versions", "--env", "staging")

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"dispatcher {DISPATCHER}: no deployment"
    assert result.stdout.splitlines()[1] == "state: not deployed"
    assert result.stdout.splitlines()[2].split()[0] == "traffic"
    assert len(result.stdout.splitlines()) == 3


def test_versions_table_names_the_config_each_version_carries(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    tmp_path: Path,
    zone: VersionSite,
) -> None:
    (tmp_path / "changed").mkdir()
    other = staging_config(tmp_path / "changed", zone.url, FEATURE="on")
    assert cli("deploy", "--env", "staging", "--gradual", "10", config=other).exit_code == 0
    v2 = newest(cf_state, cf_seed)
    old_config = tag(cf_state, cf_seed, v1).split("config/")[1]
    new_config = tag(cf_state, cf_seed, v2).split("config/")[1]
    assert old_config != new_config

    result = cli("versions", "--env", "staging")

    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(
        f"split deployment of {DISPATCHER} (staging): {v2} 10%, {v1} 90% (since "
    )
    assert lines[1] == f"state: split: stable {v1} at 90%, candidate {v2} at 10%"
    lines.pop(1)
    assert lines[1].split() == [
        "traffic",
        "version",
        "#",
        "created",
        "author",
        "code24ctl",
        "config",
        "message",
    ]
    rows = [line.split() for line in lines[2:]]
    assert [(r[0], r[1], r[2], r[5], r[6]) for r in rows] == [
        ("10%", v2, "2", __version__, new_config),
        ("90%", v1, "1", __version__, old_config),
    ]
    # The repo's config (no FEATURE var) is what v1 carries.
    assert rows[1][7] == "(current)"
    assert rows[0][7] != "(current)"


# --------------------------------------------------------------------------------------------
# doctor and apply


def test_doctor_warns_about_a_split_deployment(
    cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed, v1: str
) -> None:
    assert cli("deploy", "--env", "staging", "--gradual", "10").exit_code == 0
    v2 = newest(cf_state, cf_seed)

    result = cli("doctor", "--env", "staging", "--json")

    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["deployment"] == {
        "name": "deployment",
        "status": "warn",
        "detail": f"split: stable {v1} at 90%, candidate {v2} at 10% (an unfinished gradual "
        "rollout or canary)",
        "fix": "code24ctl promote --env staging  (or code24ctl rollback --env staging)",
        "differences": [],
    }


def test_doctor_says_nothing_about_a_single_version(cli: RunCli, v1: str) -> None:
    result = cli("doctor", "--env", "staging", "--json")

    assert "deployment" not in {c["name"] for c in json.loads(result.stdout)["checks"]}


def test_apply_refuses_to_deploy_over_an_unfinished_rollout_unless_told(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    tmp_path: Path,
    zone: VersionSite,
) -> None:
    assert cli("deploy", "--env", "staging", "--gradual", "10").exit_code == 0
    (tmp_path / "changed").mkdir()
    changed = staging_config(tmp_path / "changed", zone.url, FEATURE="on")
    cf_state.clear_requests()

    refused = cli("apply", "--env", "staging", "--yes", config=changed)

    assert refused.exit_code == 2
    assert "is in an unfinished gradual rollout" in refused.stderr
    assert "apply would replace it with a new version" in refused.stderr
    assert "or rerun apply with --ignore-rollout" in refused.stderr
    assert writes(cf_state) == []

    forced = cli("apply", "--env", "staging", "--yes", "--ignore-rollout", config=changed)

    assert forced.exit_code == 0, forced.stderr
    assert split(cf_state, cf_seed) == {newest(cf_state, cf_seed): 100.0}


# --------------------------------------------------------------------------------------------
# When the API refuses a deployment


def refuse_deployments(monkeypatch: pytest.MonkeyPatch, state: EmulatorState, *calls: int) -> None:
    """Make the emulator refuse the given (1-based) deployment creates with 400."""
    from tests.emulator.errors import ApiError

    store = state.versions
    real = store.deploy
    seen = [0]

    def deploy(*args: Any, **kwargs: Any) -> Any:
        seen[0] += 1
        if seen[0] in calls:
            raise ApiError(400, 10001, "refused by the test")
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "deploy", deploy)


def test_gradual_whose_deployment_is_refused_says_nothing_serves_differently(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refuse_deployments(monkeypatch, cf_state, 1)

    result = cli("deploy", "--env", "staging", "--gradual", "10")

    assert result.exit_code == 3
    v2 = newest(cf_state, cf_seed)
    assert (
        f"Cloudflare API error 10001: refused by the test (HTTP 400); the deployment is "
        f"unchanged ({v1} 100%); version {v2} was uploaded and takes no traffic"
    ) in result.stderr
    assert split(cf_state, cf_seed) == {v1: 100.0}


@pytest.mark.parametrize("strategy", ["canary", "gradual"])
def test_a_release_whose_split_is_refused_puts_the_deployment_back(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    monkeypatch: pytest.MonkeyPatch,
    strategy: str,
) -> None:
    refuse_deployments(monkeypatch, cf_state, 2)

    result = cli("deploy", "--env", "staging", f"--{strategy}", "10")

    assert result.exit_code == 1
    assert split(cf_state, cf_seed) == {v1: 100.0}
    assert "error: deploying it at 10% (deploy " in result.stderr
    assert f"failed; the deployment is back as it was ({v1} 100%)" in result.stderr


def test_canary_that_cannot_put_the_deployment_back_says_how(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    zone: VersionSite,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    zone.choose = broken_except(v1)
    refuse_deployments(monkeypatch, cf_state, 2)

    result = cli("deploy", "--env", "staging", "--canary", "10")

    assert result.exit_code == 3
    v2 = newest(cf_state, cf_seed)
    assert split(cf_state, cf_seed) == {v1: 100.0, v2: 0.0}
    assert "the probe through the override failed, and putting the deployment back failed too" in (
        result.stderr
    )
    assert f"hint: put it back with `code24ctl rollback --env staging {v1} --yes`" in result.stderr
    monkeypatch.delattr(cf_state.versions, "deploy")  # the API accepts deployments again

    # The hint works: the 0% version leaves the deployment.
    assert cli("rollback", "--env", "staging", v1, "--yes").exit_code == 0
    assert split(cf_state, cf_seed) == {v1: 100.0}


# --------------------------------------------------------------------------------------------
# Interrupts: a signal at each step of a canary or a gradual leaves the deployment as it was


CANARY_STEPS = [
    "canary: uploading",
    "canary: deploying version {v2} at 0%",
    "canary: probing version {v2} through",
    "waiting up to",
    "canary: deploying version {v2} at 10%",
    "canary: probing after the split",
]
# A gradual takes the canary's steps but the probe after the split.
GRADUAL_STEPS = [step.replace("canary", "gradual") for step in CANARY_STEPS[:-1]]
STEPS = [("canary", i) for i in range(len(CANARY_STEPS))] + [
    ("gradual", i) for i in range(len(GRADUAL_STEPS))
]


def signal_at(
    monkeypatch: pytest.MonkeyPatch, start: str, signum: int = signal.SIGINT
) -> list[str]:
    """Deliver ``signum`` to this process as the step line starting with ``start`` is printed
    (``{v2}`` stands for any version id); returns the lines printed."""
    from code24ctl.cli import output

    real = output.note
    printed: list[str] = []
    pattern = re.compile(re.escape(start).replace(re.escape("{v2}"), "[0-9a-f-]+"))

    def note(message: str) -> None:
        real(message)
        printed.append(message)
        if pattern.match(message) and not any(pattern.match(p) for p in printed[:-1]):
            os.kill(os.getpid(), signum)
            signal.sigtimedwait([], 0)  # delivered here, as the step starts

    monkeypatch.setattr(output, "note", note)
    return printed


@pytest.mark.parametrize(("strategy", "step"), STEPS)
def test_a_sigint_at_each_release_step_leaves_the_deployment_as_it_was(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    monkeypatch: pytest.MonkeyPatch,
    strategy: str,
    step: int,
) -> None:
    before = cf_state.versions.deployments(cf_seed.account_id, DISPATCHER)[0]
    signal_at(monkeypatch, (CANARY_STEPS if strategy == "canary" else GRADUAL_STEPS)[step])

    result = cli("deploy", "--env", "staging", f"--{strategy}", "10")

    assert result.exit_code == 130
    assert split(cf_state, cf_seed) == {v1: 100.0}
    versions = cf_state.versions.versions(cf_seed.account_id, DISPATCHER)
    error = result.stderr.splitlines()[-1]
    if step == 0:
        assert len(versions) == 1
        assert error == (
            f"error: interrupted while uploading a new version of {DISPATCHER}; nothing was "
            f"uploaded; the deployment is unchanged ({v1} 100%)"
        )
        # Nothing was written, so the deployment that serves is still the very same one.
        assert cf_state.versions.deployments(cf_seed.account_id, DISPATCHER)[0].id == before.id
        return
    v2 = versions[0].id
    assert v2 != v1
    if step == 1:
        assert deployment_writes(cf_state, cf_seed) == []
        assert error == (
            f"error: interrupted while deploying version {v2} at 0% beside {v1} (100%), so "
            f"that the version override reaches it; uploaded version {v2} (it takes no "
            f"traffic); the deployment is unchanged ({v1} 100%)"
        )
        return
    deployed = f"{v1} 100%, {v2} 0%" if step < 5 else f"{v2} 10%, {v1} 90%"
    assert [d["versions"] for d in deployment_writes(cf_state, cf_seed)][-1] == [
        {"version_id": v1, "percentage": 100.0}
    ]
    assert f"{strategy}: putting back {v1} 100%" in result.stderr
    assert error.startswith("error: interrupted while ")
    assert error.endswith(
        f"; uploaded version {v2} (it takes no traffic); deployed {deployed}; put back {v1} 100%"
    )


def test_a_sigterm_mid_canary_puts_it_back_and_exits_143(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signal_at(monkeypatch, "canary: probing after the split", signal.SIGTERM)

    result = cli("deploy", "--env", "staging", "--canary", "10")

    assert result.exit_code == 143
    assert split(cf_state, cf_seed) == {v1: 100.0}
    v2 = newest(cf_state, cf_seed)
    assert result.stderr.splitlines()[-1] == (
        "error: terminated by SIGTERM while probing after the split (10 requests per route); "
        f"uploaded version {v2} (it takes no traffic); deployed {v2} 10%, {v1} 90%; put back "
        f"{v1} 100%"
    )


def test_a_sigint_during_gradual_puts_it_back(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signal_at(monkeypatch, "gradual: deploying version")

    result = cli("deploy", "--env", "staging", "--gradual", "10")

    assert result.exit_code == 130
    assert split(cf_state, cf_seed) == {v1: 100.0}
    assert deployment_writes(cf_state, cf_seed) == []
    assert "the deployment is unchanged" in result.stderr.splitlines()[-1]


def test_an_interrupt_that_cannot_put_it_back_names_the_command_that_does(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signal_at(monkeypatch, "canary: probing after the split")
    refuse_deployments(monkeypatch, cf_state, 3)

    result = cli("deploy", "--env", "staging", "--canary", "10")

    assert result.exit_code == 130
    v2 = newest(cf_state, cf_seed)
    assert split(cf_state, cf_seed) == {v2: 10.0, v1: 90.0}
    lines = result.stderr.splitlines()
    assert lines[-2].startswith(
        f"error: interrupted while probing after the split (10 requests per route); uploaded "
        f"version {v2} (it takes no traffic); deployed {v2} 10%, {v1} 90%; putting back "
        f"{v1} 100% failed ("
    )
    assert lines[-2].endswith(f"): the deployment is still {v2} 10%, {v1} 90%")
    assert lines[-1] == f"  hint: put it back with `code24ctl rollback --env staging {v1} --yes`"


# --------------------------------------------------------------------------------------------
# Plain deploy (and apply) of a changed dispatcher: a version probed at 0% before 100%


@pytest.fixture
def changed(tmp_path: Path, zone: VersionSite) -> Path:
    """The staging config with one var more: deploy uploads a new dispatcher version."""
    (tmp_path / "changed").mkdir()
    return staging_config(tmp_path / "changed", zone.url, FEATURE="on")


def test_a_plain_redeploy_probes_the_new_version_at_0_then_deploys_it_at_100(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    zone: VersionSite,
    changed: Path,
) -> None:
    result = cli("deploy", "--env", "staging", config=changed)

    assert result.exit_code == 0, result.stderr
    v2 = newest(cf_state, cf_seed)
    assert v2 != v1
    assert split(cf_state, cf_seed) == {v2: 100.0}
    assert [d["versions"] for d in deployment_writes(cf_state, cf_seed)] == [
        [{"version_id": v1, "percentage": 100.0}, {"version_id": v2, "percentage": 0.0}],
        [{"version_id": v2, "percentage": 100.0}],
    ]
    # Every probe request asked for v2 through the override, and v2 answered it.
    assert len(zone.requests) >= PROBED_ROUTES
    assert {r.headers.get(OVERRIDE) for r in zone.requests} == {f'{DISPATCHER}="{v2}"'}
    assert set(zone.served) == {v2}
    lines = result.stdout.splitlines()
    assert lines[2] == f"before: {v1} at 100%"
    assert lines[3] == f"probe of version {v2} through the version override header: passed"
    assert f"after: {v2} at 100%" in lines
    assert f"version {v2} deployed at 100%, probed through the version override first" in lines
    assert result.stderr.splitlines()[:3] == [
        f"deploy: uploading a new version of {DISPATCHER}",
        f"deploy: deploying version {v2} at 0% beside {v1} (100%), so that the version "
        "override reaches it",
        f"deploy: probing version {v2} through the version override",
    ]
    assert f"deploy: deploying version {v2} at 100%" in result.stderr.splitlines()


def test_a_plain_redeploy_json_names_before_the_probe_and_after(
    cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed, v1: str, changed: Path
) -> None:
    result = cli("deploy", "--env", "staging", "--json", config=changed)

    assert result.exit_code == 0, result.stderr
    v2 = newest(cf_state, cf_seed)
    document = json.loads(result.stdout)
    assert document["version_id"] == v2
    assert (document["uploaded"], document["ok"], document["probed"]) == (True, True, True)
    assert document["unprobed"] is None
    assert [s["version_id"] for s in document["before"]["versions"]] == [v1]
    assert [(s["version_id"], s["percentage"]) for s in document["after"]["versions"]] == [
        (v2, 100.0)
    ]
    assert document["probe"]["ok"] is True
    assert document["probe"]["version"] == v2
    assert document["probe"]["version_wait"]["applied"] is True
    assert (document["restored"], document["put_back_failed"], document["error"]) == (
        False,
        False,
        None,
    )


def test_a_plain_redeploy_whose_version_never_answers_changes_nothing_and_exits_1(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    zone: VersionSite,
    changed: Path,
) -> None:
    # The override never takes effect: v1 answers every request, and v2 never takes traffic.
    zone.propagation_delay_s = 3600

    result = cli("deploy", "--env", "staging", "--wait", "0.5", config=changed)

    assert result.exit_code == 1
    v2 = newest(cf_state, cf_seed)
    assert v2 != v1
    assert split(cf_state, cf_seed) == {v1: 100.0}
    assert set(zone.served) == {v1}
    assert [d["versions"] for d in deployment_writes(cf_state, cf_seed)] == [
        [{"version_id": v1, "percentage": 100.0}, {"version_id": v2, "percentage": 0.0}],
        [{"version_id": v1, "percentage": 100.0}],
    ]
    # The routes are not touched after a failed probe, nor named as if they were.
    assert [w for w in writes(cf_state) if "/workers/routes" in w] == []
    assert [line for line in result.stdout.splitlines() if line.startswith("route ")] == []
    assert "deploy failed: the probe through the override (version_not_applied" in result.stdout
    message = (
        f"the probe through the override (version_not_applied: version {v2} never answered "
        f"within 0.5 s) failed; the deployment is back as it was ({v1} 100%); version {v2} "
        "takes no traffic"
    )
    assert result.stderr.splitlines()[-5:] == [
        f"error: {message}",
        "changes already made:",
        f"  dispatcher {DISPATCHER}: uploaded (version {v2}, taking no traffic)",
        f"  dispatcher {DISPATCHER}: deployed ({v1} 100%, {v2} 0%, to probe)",
        f"  dispatcher {DISPATCHER}: put back ({v1} 100%)",
    ]


def test_a_plain_redeploy_with_a_failing_probe_json_says_it_was_put_back(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    zone: VersionSite,
    changed: Path,
) -> None:
    zone.choose = broken_except(v1)

    result = cli("deploy", "--env", "staging", "--json", config=changed)

    assert result.exit_code == 1
    v2 = newest(cf_state, cf_seed)
    assert split(cf_state, cf_seed) == {v1: 100.0}
    document = json.loads(result.stdout)
    assert (document["ok"], document["probed"], document["restored"]) == (False, False, True)
    assert document["probe"]["ok"] is False
    assert [(s["version_id"], s["percentage"]) for s in document["after"]["versions"]] == [
        (v1, 100.0)
    ]
    assert document["error"] == (
        f"the probe through the override failed; the deployment is back as it was ({v1} "
        f"100%); version {v2} takes no traffic"
    )


@pytest.mark.parametrize("content_shows_newest", [False, True])
def test_a_rerun_after_a_failed_probe_uploads_again_and_passes(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    zone: VersionSite,
    changed: Path,
    content_shows_newest: bool,
) -> None:
    # Whether the content GET shows the deployed version or the newest upload is unsettled:
    # the rerun must upload again either way.
    cf_state.versions.content_shows_newest_upload = content_shows_newest
    zone.choose = broken_except(v1)
    assert cli("deploy", "--env", "staging", config=changed).exit_code == 1
    v2 = newest(cf_state, cf_seed)
    assert split(cf_state, cf_seed) == {v1: 100.0}
    zone.choose = None  # fixed: every version answers JSON

    planned = cli("deploy", "--env", "staging", "--dry-run", config=changed)
    rerun = cli("deploy", "--env", "staging", config=changed)

    assert planned.exit_code == 0, planned.stderr
    probed = "a new version, probed at 0% through the version override before 100%"
    if content_shows_newest:
        # The content is v2's, the same as the upload: only the versions say it does not serve.
        assert planned.stdout.splitlines() == [
            f"~ dispatcher {DISPATCHER} (the newest version {v2} does not serve (version {v1} "
            f"does); {probed})"
        ]
    else:
        assert planned.stdout.splitlines()[0] == f"~ dispatcher {DISPATCHER} ({probed})"
    assert rerun.exit_code == 0, rerun.stderr
    v3 = newest(cf_state, cf_seed)
    assert v3 not in (v1, v2)
    assert split(cf_state, cf_seed) == {v3: 100.0}
    # Once the newest serves 100%, the content comparison is trusted again: nothing to do.
    again = cli("deploy", "--env", "staging", "--json", config=changed)
    assert json.loads(again.stdout)["dispatcher_action"] == "unchanged"


@pytest.mark.parametrize("content_shows_newest", [False, True])
def test_doctor_after_a_failed_probe_says_what_plan_says(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    zone: VersionSite,
    changed: Path,
    content_shows_newest: bool,
) -> None:
    cf_state.versions.content_shows_newest_upload = content_shows_newest
    zone.choose = broken_except(v1)
    assert cli("deploy", "--env", "staging", config=changed).exit_code == 1
    v2 = newest(cf_state, cf_seed)

    doctor = json.loads(cli("doctor", "--env", "staging", "--json", config=changed).stdout)
    planned = cli("deploy", "--env", "staging", "--dry-run", config=changed)

    check = next(c for c in doctor["checks"] if c["name"] == "dispatcher")
    assert planned.stdout.startswith(f"~ dispatcher {DISPATCHER} (")  # plan: upload again
    if content_shows_newest:
        # The content read is v2's, the config's: only the versions say it does not serve.
        assert (check["status"], check["detail"]) == (
            "warn",
            f"{DISPATCHER}: the newest version {v2} does not serve (version {v1} does), so "
            "what serves may not be what the config says",
        )
    else:
        assert check["status"] == "fail"  # the content read is v1's: it differs from the config


def test_after_a_rollback_to_the_configs_own_version_nothing_is_planned_or_uploaded(
    cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed, v1: str, changed: Path
) -> None:
    assert cli("deploy", "--env", "staging", config=changed).exit_code == 0
    v2 = newest(cf_state, cf_seed)
    assert cli("rollback", "--env", "staging", "--yes").exit_code == 0
    assert split(cf_state, cf_seed) == {v1: 100.0}
    cf_state.clear_requests()

    # The config is v1's again: v1 serves, tagged with its bindings; the newest (v2) is not.
    planned = cli("plan", "--env", "staging")
    deployed = cli("deploy", "--env", "staging", "--json")

    assert "  3. deploy: nothing to change" in planned.stdout.splitlines(), planned.stdout
    assert json.loads(deployed.stdout)["dispatcher_action"] == "unchanged"
    assert newest(cf_state, cf_seed) == v2
    assert split(cf_state, cf_seed) == {v1: 100.0}


def test_a_failed_probe_leaves_the_script_settings_as_they_were(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    zone: VersionSite,
    tmp_path: Path,
) -> None:
    # Script settings are not versioned: set before the probe, they would take effect for the
    # version serving now and stay after the deployment is put back.
    def sampled(data: dict[str, Any]) -> None:
        data["environments"]["staging"]["base_url"] = zone.url
        data["observability"] = {"enabled": True, "head_sampling_rate": 0.25}

    (tmp_path / "sampled").mkdir()
    config = write_config(tmp_path / "sampled", sampled)
    before = cf_state.account_script(cf_seed.account_id, DISPATCHER).observability
    zone.choose = broken_except(v1)

    failed = cli("deploy", "--env", "staging", config=config)

    assert failed.exit_code == 1
    assert split(cf_state, cf_seed) == {v1: 100.0}
    assert cf_state.account_script(cf_seed.account_id, DISPATCHER).observability == before
    assert [w for w in writes(cf_state) if w.endswith("/script-settings")] == []
    zone.choose = None

    passed = cli("deploy", "--env", "staging", config=config)

    assert passed.exit_code == 0, passed.stderr
    assert split(cf_state, cf_seed) == {newest(cf_state, cf_seed): 100.0}
    assert cf_state.account_script(cf_seed.account_id, DISPATCHER).observability == {
        "enabled": True,
        "head_sampling_rate": 0.25,
    }


def test_a_dispatcher_whose_deployment_cannot_be_read_is_not_uploaded_unprobed(
    cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed, v1: str, changed: Path
) -> None:
    # The Worker exists but lists no deployment: "nothing served before" would be a guess.
    cf_state.versions._history[(cf_seed.account_id, DISPATCHER)].deployments.clear()
    cf_state.clear_requests()

    result = cli("deploy", "--env", "staging", config=changed)

    assert result.exit_code == 2
    assert result.stderr.splitlines()[-2:] == [
        f"error: the dispatcher {DISPATCHER} exists but no deployment of it could be read, so "
        "its new version cannot be probed through the version override; nothing was uploaded",
        "  hint: check with `code24ctl versions --env staging`; rerun with --unprobed to upload "
        "it live at 100% without a probe",
    ]
    assert writes(cf_state) == []
    assert len(cf_state.versions.versions(cf_seed.account_id, DISPATCHER)) == 1


def test_a_version_upload_whose_answer_is_lost_after_it_was_made_carries_on_with_it(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    zone: VersionSite,
    changed: Path,
) -> None:
    cf_state.faults.add("POST", f"*/workers/scripts/{DISPATCHER}/versions", "applied_500")

    result = cli("deploy", "--env", "staging", config=changed)

    assert result.exit_code == 0, result.stderr
    versions = cf_state.versions.versions(cf_seed.account_id, DISPATCHER)
    assert len(versions) == 2  # the one the lost answer made: read back, not made again
    assert split(cf_state, cf_seed) == {versions[0].id: 100.0}
    assert "nothing was changed" not in result.stderr


def test_a_version_upload_refused_for_the_token_keeps_the_token_hint(
    cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed, v1: str, changed: Path
) -> None:
    cf_state.faults.add("POST", f"*/workers/scripts/{DISPATCHER}/versions", "json403")

    result = cli("deploy", "--env", "staging", config=changed)

    assert result.exit_code == 3
    assert "hint: the token was refused" in result.stderr
    assert "--unprobed" not in result.stderr
    assert split(cf_state, cf_seed) == {v1: 100.0}


def test_deploy_unprobed_puts_the_version_live_at_once_and_says_so(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    zone: VersionSite,
    changed: Path,
) -> None:
    planned = cli("deploy", "--env", "staging", "--unprobed", "--dry-run", config=changed)
    result = cli("deploy", "--env", "staging", "--unprobed", config=changed)
    documented = cli("deploy", "--env", "staging", "--unprobed", "--json", config=changed)

    assert planned.stdout.splitlines()[0] == (
        f"~ dispatcher {DISPATCHER} (--unprobed: live at 100% at once, not probed)"
    )
    assert result.exit_code == 0, result.stderr
    v2 = newest(cf_state, cf_seed)
    assert split(cf_state, cf_seed) == {v2: 100.0}
    assert (
        f"version {v2} deployed at 100% (--unprobed: the version took traffic without a probe)"
        in result.stdout.splitlines()
    )
    assert zone.requests == []
    assert deployment_writes(cf_state, cf_seed) == []
    assert [w for w in writes(cf_state) if "/workers/scripts/" in w] == [
        f"PUT /accounts/{cf_seed.account_id}/workers/scripts/{DISPATCHER}"
    ]
    document = json.loads(documented.stdout)
    assert document["dispatcher_action"] == "unchanged"  # the same config again
    assert document["probe"] is None


def test_deploy_unprobed_json_says_the_version_took_traffic_without_a_probe(
    cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed, v1: str, changed: Path
) -> None:
    result = cli("deploy", "--env", "staging", "--unprobed", "--json", config=changed)

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert (document["probed"], document["probe"]) == (False, None)
    assert document["unprobed"] == "--unprobed: the version took traffic without a probe"
    assert document["unprobed_upload"] is True


def test_a_refused_version_upload_is_got_past_with_unprobed(
    cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed, v1: str, changed: Path
) -> None:
    cf_state.versions.refuse_dispatch_namespace_uploads = True

    refused = cli("deploy", "--env", "staging", config=changed)
    passed = cli("deploy", "--env", "staging", "--unprobed", config=changed)

    assert refused.exit_code == 3
    assert f"the Versions API refused the upload of {DISPATCHER}" in refused.stderr
    assert "if it keeps failing, `code24ctl deploy --env staging --unprobed`" in refused.stderr
    assert passed.exit_code == 0, passed.stderr
    assert split(cf_state, cf_seed) == {newest(cf_state, cf_seed): 100.0}


@pytest.mark.parametrize("command", ["deploy", "apply"])
def test_a_redeploy_without_a_base_url_is_refused_before_anything_is_written(
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    v1: str,
    tmp_path: Path,
    command: str,
) -> None:
    def change(data: dict[str, Any]) -> None:
        del data["environments"]["staging"]["base_url"]
        data["environments"]["staging"]["vars"]["FEATURE"] = "on"

    (tmp_path / "nb").mkdir()
    bare = write_config(tmp_path / "nb", change)
    args = ("--yes",) if command == "apply" else ()

    result = run_cli(command, "--env", "staging", *args, env=cf_env, config=bare)

    assert result.exit_code == 2
    assert (
        "error: environment 'staging' (from --env) has no base_url to probe: a new dispatcher "
        "version is probed through the version override before it takes traffic"
    ) in result.stderr
    assert (
        f"hint: set environments.staging.base_url in {bare}, or rerun with --unprobed to "
        "upload it live at 100% without a probe"
    ) in result.stderr
    assert writes(cf_state) == []


def test_apply_probes_a_changed_dispatcher_and_a_failure_stops_it_at_the_deploy_step(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    zone: VersionSite,
    changed: Path,
) -> None:
    zone.choose = broken_except(v1)

    failed = cli("apply", "--env", "staging", "--yes", "--wait", "0.5", config=changed)

    assert failed.exit_code == 1
    v2 = newest(cf_state, cf_seed)
    assert split(cf_state, cf_seed) == {v1: 100.0}
    assert "apply stopped at step deploy: the probe through the override failed" in (failed.stderr)
    assert f"  dispatcher {DISPATCHER}: put back ({v1} 100%)" in failed.stderr.splitlines()
    zone.choose = None

    passed = cli("apply", "--env", "staging", "--yes", config=changed)

    assert passed.exit_code == 0, passed.stderr
    v3 = newest(cf_state, cf_seed)
    assert v3 not in (v1, v2)
    assert split(cf_state, cf_seed) == {v3: 100.0}
    assert (
        f"deploy: done: dispatcher {DISPATCHER} uploaded, version {v3} probed through the "
        "override, at 100%, 0 route(s) written, 2 unchanged"
    ) in passed.stderr.splitlines()


def test_apply_json_carries_the_deploy_steps_probe(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    zone: VersionSite,
    changed: Path,
) -> None:
    zone.choose = broken_except(v1)
    failed = json.loads(
        cli("apply", "--env", "staging", "--yes", "--wait", "0.5", "--json", config=changed).stdout
    )
    deploy = failed["steps"][2]
    assert (deploy["step"], deploy["status"]) == ("deploy", "failed")
    assert deploy["probe"]["ok"] is False and deploy["unprobed"] is None
    zone.choose = None

    passed = json.loads(cli("apply", "--env", "staging", "--yes", "--json", config=changed).stdout)

    deploy = passed["steps"][2]
    v3 = newest(cf_state, cf_seed)
    assert (deploy["status"], deploy["probe"]["ok"], deploy["unprobed"]) == ("done", True, None)
    assert list(deploy["probe"]["dispatcher_versions"]) == [v3]
    assert deploy["probe"]["summary"]["failed"] == 0
    assert [s["probe"] for s in passed["steps"][:2]] == [None, None]


PLAIN_STEPS = [
    "deploy: uploading",
    "deploy: deploying version {v2} at 0%",
    "deploy: probing version {v2} through",
    "waiting up to",
    "deploy: deploying version {v2} at 100%",
]


@pytest.mark.parametrize("step", range(len(PLAIN_STEPS)))
def test_a_sigint_at_each_plain_deploy_step_leaves_the_deployment_as_it_was(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    changed: Path,
    monkeypatch: pytest.MonkeyPatch,
    step: int,
) -> None:
    before = cf_state.versions.deployments(cf_seed.account_id, DISPATCHER)[0]
    signal_at(monkeypatch, PLAIN_STEPS[step])

    result = cli("deploy", "--env", "staging", config=changed)

    assert result.exit_code == 130
    assert split(cf_state, cf_seed) == {v1: 100.0}
    versions = cf_state.versions.versions(cf_seed.account_id, DISPATCHER)
    lines = result.stderr.splitlines()
    error = next(line for line in lines if line.startswith("error: "))
    if step == 0:
        assert len(versions) == 1
        assert error == (
            f"error: interrupted while uploading a new version of {DISPATCHER}; nothing was "
            f"uploaded; the deployment is unchanged ({v1} 100%)"
        )
        assert cf_state.versions.deployments(cf_seed.account_id, DISPATCHER)[0].id == before.id
        return
    v2 = versions[0].id
    assert v2 != v1
    uploaded = f"  dispatcher {DISPATCHER}: uploaded (version {v2}, taking no traffic)"
    if step == 1:
        assert deployment_writes(cf_state, cf_seed) == []
        assert error == (
            f"error: interrupted while deploying version {v2} at 0% beside {v1} (100%), so "
            f"that the version override reaches it; uploaded version {v2} (it takes no "
            f"traffic); the deployment is unchanged ({v1} 100%)"
        )
        assert lines[lines.index("changes already made:") + 1 :] == [uploaded]
        return
    assert [d["versions"] for d in deployment_writes(cf_state, cf_seed)][-1] == [
        {"version_id": v1, "percentage": 100.0}
    ]
    assert f"deploy: putting back {v1} 100%" in lines
    assert error.startswith("error: interrupted while ")
    assert error.endswith(
        f"; uploaded version {v2} (it takes no traffic); deployed {v1} 100%, {v2} 0%; put back "
        f"{v1} 100%"
    )
    assert lines[lines.index("changes already made:") + 1 :] == [
        uploaded,
        f"  dispatcher {DISPATCHER}: deployed ({v1} 100%, {v2} 0%, to probe)",
        f"  dispatcher {DISPATCHER}: put back ({v1} 100%)",
    ]


def test_a_sigint_while_apply_probes_the_dispatcher_puts_it_back(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    changed: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signal_at(monkeypatch, "deploy: probing version {v2} through")

    result = cli("apply", "--env", "staging", "--yes", config=changed)

    assert result.exit_code == 130
    assert split(cf_state, cf_seed) == {v1: 100.0}
    v2 = newest(cf_state, cf_seed)
    lines = result.stderr.splitlines()
    error = next(line for line in lines if line.startswith("error: "))
    assert error == (
        f"error: interrupted while probing version {v2} through the version override; "
        f"uploaded version {v2} (it takes no traffic); deployed {v1} 100%, {v2} 0%; put back "
        f"{v1} 100%"
    )
    assert lines[-1] == f"  dispatcher {DISPATCHER}: put back ({v1} 100%)"


def test_a_sigterm_during_the_probe_of_a_plain_deploy_puts_it_back_and_exits_143(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    changed: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signal_at(monkeypatch, "deploy: probing version {v2} through", signal.SIGTERM)

    result = cli("deploy", "--env", "staging", config=changed)

    assert result.exit_code == 143
    assert split(cf_state, cf_seed) == {v1: 100.0}
    assert "error: terminated by SIGTERM while probing version " in result.stderr


# --------------------------------------------------------------------------------------------
# Plain deploy and plan during a split


def test_plain_deploy_during_a_split_is_refused_unless_told(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    tmp_path: Path,
    zone: VersionSite,
) -> None:
    assert cli("deploy", "--env", "staging", "--gradual", "10").exit_code == 0
    v2 = newest(cf_state, cf_seed)
    (tmp_path / "changed").mkdir()
    changed = staging_config(tmp_path / "changed", zone.url, FEATURE="on")
    cf_state.clear_requests()

    refused = cli("deploy", "--env", "staging", config=changed)

    assert refused.exit_code == 2
    assert refused.stdout == ""
    assert (
        f"error: the dispatcher {DISPATCHER} is in an unfinished gradual rollout (split: "
        f"stable {v1} at 90%, candidate {v2} at 10%); deploy would replace it with a new version"
    ) in refused.stderr
    assert "or rerun deploy with --ignore-rollout" in refused.stderr
    assert writes(cf_state) == []
    assert split(cf_state, cf_seed) == {v2: 10.0, v1: 90.0}

    # Nothing to upload: the split is not touched, so there is nothing to refuse.
    assert cli("deploy", "--env", "staging").exit_code == 0

    cf_state.clear_requests()
    forced = cli("deploy", "--env", "staging", "--ignore-rollout", config=changed)

    assert forced.exit_code == 0, forced.stderr
    v3 = newest(cf_state, cf_seed)
    assert split(cf_state, cf_seed) == {v3: 100.0}
    # Probed first, at 0% beside the stable version (a deployment holds two versions at most).
    assert [d["versions"] for d in deployment_writes(cf_state, cf_seed)] == [
        [{"version_id": v1, "percentage": 100.0}, {"version_id": v3, "percentage": 0.0}],
        [{"version_id": v3, "percentage": 100.0}],
    ]


def test_a_failed_probe_over_a_split_with_ignore_rollout_puts_the_split_back(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    zone: VersionSite,
    changed: Path,
) -> None:
    assert cli("deploy", "--env", "staging", "--gradual", "10").exit_code == 0
    v2 = newest(cf_state, cf_seed)
    zone.choose = lambda version: None if version in (v1, v2) else HTML_PAGE

    result = cli("deploy", "--env", "staging", "--ignore-rollout", config=changed)

    assert result.exit_code == 1
    assert split(cf_state, cf_seed) == {v2: 10.0, v1: 90.0}
    v3 = newest(cf_state, cf_seed)
    assert f"the deployment is back as it was ({v2} 10%, {v1} 90%); version {v3} takes no " in (
        result.stderr
    )


@pytest.mark.parametrize("changed", [False, True])
def test_plan_during_a_split_shows_the_rollout_with_the_usual_exit_codes(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    tmp_path: Path,
    zone: VersionSite,
    changed: bool,
) -> None:
    assert cli("apply", "--env", "staging", "--yes").exit_code == 0
    assert cli("deploy", "--env", "staging", "--gradual", "10").exit_code == 0
    v2 = newest(cf_state, cf_seed)
    config = None
    if changed:
        (tmp_path / "changed").mkdir()
        config = staging_config(tmp_path / "changed", zone.url, FEATURE="on")

    result = cli(
        "plan", "--env", "staging", "--exit-code", **({"config": config} if config else {})
    )

    assert result.exit_code == (1 if changed else 0), result.stderr
    rollout = f"  rollout in progress (split: stable {v1} at 90%, candidate {v2} at 10%): "
    ends = "the dispatcher upload would end it at 100% of a new version"
    assert (rollout + ends if changed else rollout + "apply leaves it as it is") in (
        result.stdout.splitlines()
    ) or (rollout + ends) in result.stdout


# --------------------------------------------------------------------------------------------
# A dispatcher name must be able to key the override header


@pytest.mark.parametrize("name", ["9dispatcher", "_dispatcher", "-dispatcher"])
def test_config_validate_refuses_a_dispatcher_name_the_override_cannot_key(
    run_cli: RunCli, tmp_path: Path, name: str
) -> None:
    def change(data: dict[str, Any]) -> None:
        data["environments"]["staging"]["dispatcher"] = name

    config = write_config(tmp_path, change)

    result = run_cli("config", "validate", config=config)

    assert result.exit_code == 2
    assert (
        f"environments.staging: dispatcher '{name}' cannot key the Cloudflare-Workers-Version-"
        "Overrides header (an RFC 8941 dictionary key starts with a lowercase letter)"
    ) in result.stderr.replace("\n", " ")


@pytest.mark.parametrize("lost", [1, 2], ids=["the 0% stage", "the split"])
def test_a_deployment_whose_answer_is_lost_is_read_before_anything_is_decided(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    monkeypatch: pytest.MonkeyPatch,
    lost: int,
) -> None:
    from tests.emulator.errors import ApiError

    store = cf_state.versions
    real = store.deploy
    calls = [0]

    def deploy(*args: Any, **kwargs: Any) -> Any:
        # The ``lost``-th create is applied but its answer is a 500; a retry would fail.
        calls[0] += 1
        if calls[0] > lost + 1:
            raise ApiError(500, 10002, "An unknown error has occurred")
        applied = real(*args, **kwargs)
        if calls[0] == lost:
            raise ApiError(500, 10002, "An unknown error has occurred")
        return applied

    monkeypatch.setattr(store, "deploy", deploy)

    result = cli("deploy", "--env", "staging", "--gradual", "10")

    assert result.exit_code == 0, result.stderr
    v2 = newest(cf_state, cf_seed)
    assert split(cf_state, cf_seed) == {v2: 10.0, v1: 90.0}
    assert f"after: {v2} at 10%, {v1} at 90%" in result.stdout
    assert calls[0] == 2  # read back as done, not sent again


# --------------------------------------------------------------------------------------------
# promote / rollback of a version that has not proven itself: probed as a canary's version is


@pytest.fixture
def unproven(cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed, v1: str) -> str:
    """A version that served 10% and was rolled back, so never 100%: v1 serves 100%."""
    assert cli("deploy", "--env", "staging", "--gradual", "10").exit_code == 0
    v2 = newest(cf_state, cf_seed)
    assert cli("rollback", "--env", "staging", "--yes").exit_code == 0
    assert split(cf_state, cf_seed) == {v1: 100.0}
    cf_state.clear_requests()
    return v2


def shares(*pairs: tuple[str, float]) -> list[dict[str, Any]]:
    return [{"version_id": v, "percentage": p} for v, p in pairs]


@pytest.mark.parametrize("command", ["promote", "rollback"])
def test_a_version_outside_the_deployment_goes_in_at_0_and_is_probed_before_100(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    unproven: str,
    zone: VersionSite,
    command: str,
) -> None:
    v2 = unproven
    # The override applies a moment after the 0% deployment: until then v1 answers, which
    # must not count as v2 passing.
    zone.propagation_delay_s = 0.8
    zone.clear()

    result = cli(command, "--env", "staging", v2[:8], "--yes")

    assert result.exit_code == 0, result.stderr
    assert split(cf_state, cf_seed) == {v2: 100.0}
    assert [d["versions"] for d in deployment_writes(cf_state, cf_seed)] == [
        shares((v1, 100.0), (v2, 0.0)),
        shares((v2, 100.0)),
    ]
    # Every probe request went through the override, and v2 answered every one that counted.
    assert {r.headers.get(OVERRIDE) for r in zone.requests} == {f'{DISPATCHER}="{v2}"'}
    assert zone.served[-PROBED_ROUTES:] == [v2] * PROBED_ROUTES
    assert v1 in zone.served  # the wait saw the old version first
    assert f"probe of version {v2} through the version override header:" in result.stdout
    assert "probe after the rollback:" not in result.stdout
    assert result.stdout.splitlines()[-2:] == [
        f"state: one version: {v2} at 100%",
        f"{command} done: version {v2} serves 100%",
    ]
    steps = [line for line in result.stderr.splitlines() if line.startswith(f"{command}: ")]
    assert steps == [
        f"{command}: deploying version {v2} at 0% beside {v1} (100%), so that the version "
        "override reaches it",
        f"{command}: probing version {v2} through the version override",
        f"{command}: deploying version {v2} at 100%",
    ]


@pytest.mark.parametrize("command", ["promote", "rollback"])
def test_a_version_staged_at_0_carries_the_message_with_probe(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    unproven: str,
    command: str,
) -> None:
    result = cli(command, "--env", "staging", unproven, "--yes", "-m", "retry v2 after fix")

    assert result.exit_code == 0, result.stderr
    assert split(cf_state, cf_seed) == {unproven: 100.0}
    assert messages(cf_state, cf_seed) == ["retry v2 after fix (probe)", "retry v2 after fix"]


@pytest.mark.parametrize("command", ["promote", "rollback"])
def test_a_version_outside_the_deployment_whose_probe_fails_puts_it_back(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    unproven: str,
    zone: VersionSite,
    command: str,
) -> None:
    v2 = unproven
    zone.choose = broken_except(v1)

    result = cli(command, "--env", "staging", v2, "--yes", "--json")

    assert result.exit_code == 1
    assert split(cf_state, cf_seed) == {v1: 100.0}
    assert [d["versions"] for d in deployment_writes(cf_state, cf_seed)] == [
        shares((v1, 100.0), (v2, 0.0)),
        shares((v1, 100.0)),
    ]
    document = json.loads(result.stdout)
    assert document["restored"] is True
    assert document["put_back_failed"] is False
    assert [run["stage"] for run in document["probes"]] == ["override"]
    message = (
        f"the probe through the override failed; the deployment is back as it was ({v1} "
        f"100%); version {v2} takes no traffic"
    )
    assert document["error"] == message
    assert result.stderr.endswith(f"error: {message}\n")


def test_promote_of_a_version_whose_override_never_applies_fails_version_not_applied(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    unproven: str,
    zone: VersionSite,
) -> None:
    v2 = unproven
    zone.propagation_delay_s = 3600

    result = cli("promote", "--env", "staging", v2, "--yes", "--wait", "1")

    assert result.exit_code == 1
    assert split(cf_state, cf_seed) == {v1: 100.0}
    assert result.stderr.endswith(
        f"error: the probe through the override (version_not_applied: version {v2} never "
        f"answered within 1 s) failed; the deployment is back as it was ({v1} 100%); version "
        f"{v2} takes no traffic\n"
    )


def test_a_release_that_cannot_be_probed_is_refused_before_anything_is_written(
    cli: RunCli,
    run_cli: RunCli,
    cf_env: dict[str, str],
    tmp_path: Path,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    unproven: str,
) -> None:
    def change(data: dict[str, Any]) -> None:
        data["environments"]["staging"].pop("base_url", None)

    (tmp_path / "bare").mkdir()
    bare = write_config(tmp_path / "bare", change)

    for command in ("promote", "rollback"):
        result = run_cli(command, "--env", "staging", unproven, "--yes", env=cf_env, config=bare)

        assert result.exit_code == 2, result.stderr
        assert f"error: {command} probes the version before it takes traffic, and cannot " in (
            result.stderr
        )
        assert f"  hint: set environments.staging.base_url in {bare}\n" in result.stderr
        assert writes(cf_state) == []
    assert split(cf_state, cf_seed) == {v1: 100.0}

    # Nor the candidate of a split: the override would reach it, but there is nowhere to send.
    assert cli("deploy", "--env", "staging", "--gradual", "10").exit_code == 0
    cf_state.clear_requests()
    refused = run_cli("promote", "--env", "staging", "--yes", env=cf_env, config=bare)
    assert refused.exit_code == 2
    assert writes(cf_state) == []
    # A rollback to a version that served 100% needs no probe first.
    rolled = run_cli("rollback", "--env", "staging", "--yes", env=cf_env, config=bare)
    assert rolled.exit_code == 0, rolled.stderr
    assert split(cf_state, cf_seed) == {v1: 100.0}


def test_promote_of_a_third_version_during_a_split_probes_it_beside_the_stable_one(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    unproven: str,
) -> None:
    # A deployment holds two versions at most: the third goes in beside the stable one.
    v2 = unproven
    assert cli("deploy", "--env", "staging", "--gradual", "10").exit_code == 0
    v3 = newest(cf_state, cf_seed)
    cf_state.clear_requests()

    result = cli("promote", "--env", "staging", v2, "--yes")

    assert result.exit_code == 0, result.stderr
    assert [d["versions"] for d in deployment_writes(cf_state, cf_seed)] == [
        shares((v1, 100.0), (v2, 0.0)),
        shares((v2, 100.0)),
    ]
    assert v3 != v2


def test_rollback_to_a_version_that_served_100_percent_is_not_staged(
    cli: RunCli, cf_state: EmulatorState, cf_seed: Code24Seed, v1: str, zone: VersionSite
) -> None:
    # v1 served 100% before: a rollback to it is the way out, not a release; it goes straight
    # to 100% and is probed afterwards.
    assert cli("deploy", "--env", "staging", "--gradual", "50").exit_code == 0
    v2 = newest(cf_state, cf_seed)
    assert cli("promote", "--env", "staging", "--yes").exit_code == 0
    cf_state.clear_requests()
    zone.clear()

    result = cli("rollback", "--env", "staging", v1, "--yes")

    assert result.exit_code == 0, result.stderr
    assert [d["versions"] for d in deployment_writes(cf_state, cf_seed)] == [shares((v1, 100.0))]
    assert not any(OVERRIDE in r.headers for r in zone.requests)
    assert "probe after the rollback:" in result.stdout
    assert v2 != v1


# --------------------------------------------------------------------------------------------
# Interrupts during promote and rollback


def signal_after_deployment(
    monkeypatch: pytest.MonkeyPatch, state: EmulatorState, call: int, signum: int
) -> None:
    """Deliver ``signum`` to this process once the emulator has applied the ``call``-th
    deployment create (1-based), before its answer: the interrupt comes after the POST."""
    store = state.versions
    real = store.deploy
    seen = [0]

    def deploy(*args: Any, **kwargs: Any) -> Any:
        seen[0] += 1
        answer = real(*args, **kwargs)
        if seen[0] == call:
            os.kill(os.getpid(), signum)
        return answer

    monkeypatch.setattr(store, "deploy", deploy)


@pytest.mark.parametrize(
    ("signum", "status", "word"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated by SIGTERM")],
)
def test_an_interrupt_after_promote_deployed_puts_the_split_back(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    monkeypatch: pytest.MonkeyPatch,
    signum: int,
    status: int,
    word: str,
) -> None:
    assert cli("deploy", "--env", "staging", "--gradual", "10").exit_code == 0
    v2 = newest(cf_state, cf_seed)
    cf_state.clear_requests()
    signal_after_deployment(monkeypatch, cf_state, 1, signum)

    result = cli("promote", "--env", "staging", "--yes")

    assert result.exit_code == status
    assert split(cf_state, cf_seed) == {v2: 10.0, v1: 90.0}
    assert [d["versions"] for d in deployment_writes(cf_state, cf_seed)] == [
        shares((v2, 100.0)),
        shares((v2, 10.0), (v1, 90.0)),
    ]
    assert f"promote: putting back {v2} 10%, {v1} 90%" in result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"error: {word} while deploying version {v2} at 100%; deployed {v2} 100%; put back "
        f"{v2} 10%, {v1} 90%"
    )


def test_an_interrupt_while_promote_probes_an_outside_version_puts_it_back(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    unproven: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    v2 = unproven
    signal_at(monkeypatch, "promote: probing version", signal.SIGTERM)

    result = cli("promote", "--env", "staging", v2, "--yes")

    assert result.exit_code == 143
    assert split(cf_state, cf_seed) == {v1: 100.0}
    assert result.stderr.splitlines()[-1] == (
        f"error: terminated by SIGTERM while probing version {v2} through the version "
        f"override; deployed {v1} 100%, {v2} 0%; put back {v1} 100%"
    )


def test_an_interrupt_after_the_rollback_deployed_leaves_it_and_says_so(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The rollback is the way out of the version it started from: once sent, it is not undone.
    assert cli("deploy", "--env", "staging", "--gradual", "10").exit_code == 0
    cf_state.clear_requests()
    signal_after_deployment(monkeypatch, cf_state, 1, signal.SIGINT)

    result = cli("rollback", "--env", "staging", "--yes")

    assert result.exit_code == 130
    assert split(cf_state, cf_seed) == {v1: 100.0}
    assert len(deployment_writes(cf_state, cf_seed)) == 1
    assert result.stderr.splitlines()[-2:] == [
        f"error: interrupted while deploying version {v1} at 100%; the rollback is in place "
        f"({v1} 100%), but it was not probed afterwards",
        "  hint: probe it with `code24ctl probe --env staging`",
    ]


def test_a_sigterm_during_the_probe_after_a_rollback_leaves_it(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert cli("deploy", "--env", "staging", "--gradual", "10").exit_code == 0
    signal_at(monkeypatch, "rollback: probing", signal.SIGTERM)

    result = cli("rollback", "--env", "staging", "--yes")

    assert result.exit_code == 143
    assert split(cf_state, cf_seed) == {v1: 100.0}
    assert result.stderr.splitlines()[-2] == (
        f"error: terminated by SIGTERM while probing; the rollback is in place ({v1} 100%), "
        "but it was not probed afterwards"
    )


def test_an_interrupt_before_the_rollback_was_sent_names_the_command_that_finishes_it(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert cli("deploy", "--env", "staging", "--gradual", "10").exit_code == 0
    v2 = newest(cf_state, cf_seed)
    cf_state.clear_requests()
    signal_at(monkeypatch, "rollback: deploying version")

    result = cli("rollback", "--env", "staging", "--yes")

    assert result.exit_code == 130
    assert deployment_writes(cf_state, cf_seed) == []
    assert split(cf_state, cf_seed) == {v2: 10.0, v1: 90.0}
    assert result.stderr.splitlines()[-2:] == [
        f"error: interrupted while deploying version {v1} at 100%; the deployment is "
        f"unchanged ({v2} 10%, {v1} 90%)",
        f"  hint: finish it with `code24ctl rollback --env staging {v1} --yes`",
    ]


def test_an_interrupt_while_rollback_probes_an_unproven_version_puts_it_back(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    unproven: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    v2 = unproven
    signal_at(monkeypatch, "rollback: probing version")

    result = cli("rollback", "--env", "staging", v2, "--yes")

    assert result.exit_code == 130
    assert split(cf_state, cf_seed) == {v1: 100.0}
    assert result.stderr.splitlines()[-1] == (
        f"error: interrupted while probing version {v2} through the version override; "
        f"deployed {v1} 100%, {v2} 0%; put back {v1} 100%"
    )


def test_a_newest_version_with_no_code24ctl_tag_does_not_settle_the_content_read(
    cli: RunCli,
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    v1: str,
    zone: VersionSite,
    config: Path,
    tmp_path: Path,
) -> None:
    # The content GET shows the newest upload (an accepted candidate); the newest carries the
    # config's content but not this code24ctl's tag (another code24ctl release, wrangler), so
    # the content read says nothing about v1, which serves the old compatibility date.
    cf_state.versions.content_shows_newest_upload = True
    data = yaml.safe_load(config.read_text())
    data["compatibility_date"] = "2025-07-01"
    (tmp_path / "dated").mkdir()
    dated = tmp_path / "dated" / "namespaces.yaml"
    dated.write_text(yaml.safe_dump(data))
    zone.choose = broken_except(v1)
    assert cli("deploy", "--env", "staging", config=dated).exit_code == 1
    v2 = newest(cf_state, cf_seed)
    for version in cf_state.versions._history[(cf_seed.account_id, DISPATCHER)].versions:
        if version.id == v2:
            version.annotations.pop("workers/tag")

    planned = cli("deploy", "--env", "staging", "--dry-run", config=dated)

    assert planned.stdout.startswith(
        f"~ dispatcher {DISPATCHER} (the newest version {v2} does not serve (version {v1} does)"
    ), planned.stdout
