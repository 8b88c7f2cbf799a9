"""Hostile answers from the API side: a 2xx that is not the v4 envelope (a proxy, a captive
portal, a wrong CLOUDFLARE_BASE_URL), an API that accepts the connection and never answers,
and the API's own rate-limit headers. Every read command ends in exit 3 with one located line,
never a traceback and never a false "missing"."""

from __future__ import annotations

import json

import pytest

from tests.emulator.seeds import Code24Seed
from tests.emulator.server import EmulatorServer
from tests.emulator.state import EmulatorState
from tests.support.cli import RunCli
from tests.support.clock import FakeClock
from tests.support.http_servers import Answer, LocalServer

NS = "code24-workers-staging"

READ_COMMANDS = [
    ("namespace", "list"),
    ("namespace", "get", "--env", "staging"),
    ("namespace", "create", "--env", "staging"),
    ("workers", "--env", "staging"),
    ("workers", "--env", "staging", "--json"),
    ("bind", "--env", "staging", "--dry-run"),
    ("deploy", "--env", "staging", "--dry-run"),
]

ANSWERS = {
    "html200": "HTTP 200, text/html; charset=utf-8, an HTML page",
    "plain200": "HTTP 200, text/plain; charset=utf-8, an HTML page",
    "empty200": "HTTP 200, no content type, an empty body",
    "empty204": "HTTP 204, no content type, no content",
}


@pytest.mark.parametrize("kind", sorted(ANSWERS))
@pytest.mark.parametrize("command", READ_COMMANDS, ids=" ".join)
def test_a_2xx_that_is_not_the_api_is_exit_3_and_never_missing(
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    cf_server: EmulatorServer,
    command: tuple[str, ...],
    kind: str,
) -> None:
    cf_state.add_namespace(cf_seed.account_id, NS)
    cf_state.fail_ratio(1.0, kinds=[kind])
    result = run_cli(*command, env=cf_env)
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    assert "missing" not in result.output
    assert "<" not in result.output  # the page is never dumped
    host = cf_server.api_base.split("//")[1].split(":")[0]
    error = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(error) == 1, result.stderr
    assert error[0].endswith(
        f": the answer from {host} is not a Cloudflare API answer: {ANSWERS[kind]}"
    ), error[0]
    assert (
        "hint: a proxy, a captive portal or a wrong CLOUDFLARE_BASE_URL answers like this"
        in result.stderr
    )
    # Nothing read, nothing listed: with --json the one document is the error.
    if "--json" in command:
        document = json.loads(result.stdout)
        assert list(document) == ["error"]
        assert document["error"]["exit_status"] == 3
    else:
        assert result.stdout == ""


@pytest.mark.parametrize("kind", sorted(ANSWERS))
def test_doctor_reports_the_unreadable_api_as_the_failing_check(
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_server: EmulatorServer,
    kind: str,
) -> None:
    # doctor reports checks (exit 1): the token check fails with the reason, the checks that
    # need the API are skipped, none says "missing".
    cf_state.fail_ratio(1.0, kinds=[kind])
    with LocalServer({}, default=Answer(200, b'{"ok": true}')) as site:
        result = run_cli("doctor", "--env", "staging", "--base-url", site.url, env=cf_env)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "missing" not in result.output
    host = cf_server.api_base.split("//")[1].split(":")[0]
    assert result.stdout.splitlines()[0] == (
        f"FAIL  token: verify the API token: the answer from {host} is not a Cloudflare API "
        f"answer: {ANSWERS[kind]}"
    )
    assert result.stderr.splitlines()[-1] == "error: doctor: 1 check(s) failed: token"


def test_an_api_that_never_answers_ends_at_the_deadline_with_progress(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_server: EmulatorServer
) -> None:
    cf_state.fail_next(1, status="hang")
    result = run_cli("namespace", "list", env={**cf_env, "CODE24_API_TIMEOUT": "0.6"})
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    path = f"/client/v4/accounts/{cf_env['CLOUDFLARE_ACCOUNT_ID']}/workers/dispatch/namespaces"
    assert (
        "error: list dispatch namespaces: no answer from the Cloudflare API at 127.0.0.1 "
        f"within 0.6 s (connected, waiting for the answer; GET {path})"
    ) in result.stderr
    assert "still waiting for 127.0.0.1 (GET " in result.stderr
    assert (
        f"hint: check CLOUDFLARE_BASE_URL ({cf_env['CLOUDFLARE_BASE_URL']!r}), then your "
        "network; CODE24_API_TIMEOUT=SECONDS changes how long one call may take"
    ) in result.stderr
    assert [r.fault for r in cf_state.requests()] == ["hang"]


def test_a_bad_api_timeout_is_a_usage_error(run_cli: RunCli, cf_env: dict[str, str]) -> None:
    result = run_cli("namespace", "list", env={**cf_env, "CODE24_API_TIMEOUT": "soon"})
    assert result.exit_code == 2
    assert result.stderr == (
        "error: CODE24_API_TIMEOUT must be a number of seconds between 0 and 86400, not 'soon'\n"
    )


def test_the_pacer_waits_when_the_api_says_the_budget_is_spent(
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    api_clock: FakeClock,
) -> None:
    cf_state.add_namespace(cf_seed.account_id, NS)
    cf_state.ratelimit_headers('"default";r=0;t=17', '"default";q=1200;w=300')
    result = run_cli("bind", "--env", "staging", "--dry-run", "--concurrency", "1", env=cf_env)
    assert result.exit_code == 0, result.output
    # Every answer says nothing is left for 17 s: each next request waited that long (on the
    # injected clock), and the API never had to answer 429.
    assert api_clock.sleeps
    assert api_clock.sleeps == [pytest.approx(17.0)] * len(api_clock.sleeps)
    assert len(api_clock.sleeps) == len(cf_state.requests()) - 1
    assert cf_state.served_429 == 0


def test_the_pacer_adopts_the_policy_the_api_announces(
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    api_clock: FakeClock,
) -> None:
    cf_state.add_namespace(cf_seed.account_id, NS)
    cf_state.ratelimit_headers(None, '"burst";q=3;w=60')
    result = run_cli("bind", "--env", "staging", "--dry-run", "--concurrency", "1", env=cf_env)
    assert result.exit_code == 0, result.output
    sent = len(cf_state.requests())
    assert sent > 4
    # 3 per 60 s less 10% headroom: 2 per minute. The first request goes out before any
    # answer announced the policy and is not counted against it, so the run took
    # (sent - 2) // 2 minutes (the old (sent - 1) // 2 held only for an even count).
    assert api_clock.now - 1000.0 >= ((sent - 2) // 2) * 60 - 1
