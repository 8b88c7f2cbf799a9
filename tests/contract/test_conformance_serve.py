"""The dispatch conformance corpus against ``code24ctl serve`` (the Python implementation).

serve runs for real (uvicorn + httptools, its one upstream pool) on 127.0.0.1, in front of
real HTTP workers behaving as each case says (tests/support/upstreams.py). Both start once
for the module; each case swaps in its own route table, environment and workers, then its
request goes out over a fresh connection and the answer is judged by the same checker the
JavaScript dispatcher is judged by.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from code24ctl.dispatch.routing import RouteTable, dispatch_options, match_route, split_target
from tests.contract.conformance.checker import Actual, check
from tests.contract.conformance.corpus import Case, OverLimit, behaviour_config, load_cases
from tests.support.upstreams import ServeHarness, send

CASES = [case for case in load_cases() if case.runs_on("python")]


@pytest.fixture(scope="module")
def harness() -> Iterator[ServeHarness]:
    aliases = {route["worker"] for case in CASES for route in case.table_for()["routes"]}
    running = ServeHarness(aliases)
    try:
        yield running
    finally:
        running.close()


def answer(harness: ServeHarness, case: Case) -> Actual:
    """Set the case up in the running serve, send its request, return what came back."""
    harness.configure(
        case.table_for(),
        case.environment,
        {alias: behaviour_config(b) for alias, b in case.workers.items()},
    )
    request = case.http_request()
    got = send(
        harness.port,
        request.method,
        request.target,
        request.headers,
        request.body,
        chunked=request.chunked,
    )
    return Actual(name=case.name, status=got["status"], headers=got["headers"], body=got["body"])


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_conformance(case: Case, harness: ServeHarness) -> None:
    problems = check(case, answer(harness, case))
    assert not problems, f"{case.name} (docs/dispatch.md {case.rule}):\n  " + "\n  ".join(problems)


OPTIONS_CASES = [case for case in CASES if case.expect.dispatch_options is not None]


@pytest.mark.parametrize("case", OPTIONS_CASES, ids=[case.name for case in OPTIONS_CASES])
def test_dispatch_options_rule(case: Case, harness: ServeHarness) -> None:
    """serve has no namespace to hand options to; the rule that builds them
    (routing.dispatch_options) must still give what the JavaScript dispatcher passes."""
    got = answer(harness, case)
    table = RouteTable.from_document(case.table_for())
    path, _ = split_target(case.http_request().target)
    route = match_route(table.routes, path)
    assert route is not None
    request_id = got.headers["x-code24-request-id"]
    options = dispatch_options(table, route, environment=case.environment, request_id=request_id)
    assert options == case.expected_dispatch_options(request_id)


def test_python_runs_every_case_not_limited_to_js() -> None:
    skipped = [case for case in load_cases() if not case.runs_on("python")]
    # Only the recording cases (an Analytics Engine binding serve does not have) and the cases
    # about a thrown message's wording (over HTTP no message travels) are JS-only.
    thrown = [
        case.name
        for case in skipped
        if any(isinstance(b, OverLimit) and b.message for b in case.workers.values())
    ]
    assert [
        case.name for case in skipped if case.analytics is None and case.name not in thrown
    ] == [], "serve must answer every case the corpus has for it"
    assert thrown == ["worker_over_limit_unknown_wording"]
