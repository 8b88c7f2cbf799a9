"""The JavaScript dispatcher (code24ctl/dispatch/dispatcher.js) inside workerd, via miniflare.

Every conformance case that applies to JS runs against the real Workers runtime; a few more
checks cover what only this implementation has (a broken ROUTE_TABLE binding, streamed answers
without a declared length, a worker that stalls mid-body). All requests of the module go through
ONE harness run (tests/js/run_corpus.mjs), so workerd starts once.

Needs node and the pinned packages: ``npm ci --prefix tests/js``. Missing either is a failure,
never a skip.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.contract.conformance.checker import Actual, check
from tests.contract.conformance.corpus import Case, HttpRequest, behaviour_config, load_cases

REPO = Path(__file__).resolve().parents[2]
JS_DIR = REPO / "tests" / "js"
HARNESS = JS_DIR / "run_corpus.mjs"
HARNESS_TIMEOUT_S = 100
PLATFORM_NAME = "Code24"

CASES = [case for case in load_cases() if case.runs_on("js")]


def _compatibility_date() -> str:
    """The date the dispatcher is deployed with: the repo config's, so tests run the same runtime
    semantics as production."""
    config = yaml.safe_load((REPO / "namespaces.yaml").read_text(encoding="utf-8"))
    return str(config["compatibility_date"])


# --- JS-only checks (not conformance: the Python serve has no equivalent) ---------------------

_TABLE: dict[str, Any] = {
    "version": 1,
    "max_body_bytes": 10485760,
    "max_json_check_bytes": 1024,
    "routes": [{"prefix": "/api/w", "worker": "w", "strip": "/api/w"}],
    "workers": {"w": {"timeout_ms": 300, "fallback": None, "fallback_status": 200}},
}


_DEFAULT_TABLE = object()


def _extra(
    name: str,
    *,
    table: Any = _DEFAULT_TABLE,
    worker: Mapping[str, Any] | None = None,
    body: bytes = b"",
    chunked: bool = False,
) -> dict[str, Any]:
    return {
        "name": name,
        "route_table": _TABLE if table is _DEFAULT_TABLE else table,
        "workers": {} if worker is None else {"w": dict(worker)},
        "request": HttpRequest(
            method="GET",
            target="/api/w/x",
            headers=[("X-Request-Id", name)],
            body=body,
            chunked=chunked,
        ),
    }


EXTRAS = [
    _extra("js_get_with_body", worker={"behaviour": "echo"}, body=b"hello"),
    _extra("js_get_with_chunked_body", worker={"behaviour": "echo"}, body=b"hello", chunked=True),
    _extra("js_table_routes_not_a_list", table={**_TABLE, "routes": "nope"}),
    _extra("js_table_wrong_version", table={**_TABLE, "version": 2}),
    _extra("js_table_null", table=None),
    _extra("js_table_bad_limit", table={**_TABLE, "max_body_bytes": -1}),
    _extra("js_table_text_json", table=json.dumps(_TABLE), worker={"behaviour": "echo"}),
    _extra(
        "js_table_bad_worker_settings",
        table={**_TABLE, "workers": {"w": {"timeout_ms": "soon"}}},
        worker={"behaviour": "echo"},
    ),
    _extra(
        "js_table_unknown_outbound_param",
        table={**_TABLE, "outbound_params": ["customer_id"]},
        worker={"behaviour": "echo"},
    ),
    _extra(
        "js_table_bad_limits",
        table={**_TABLE, "workers": {"w": {"limits": {"cpu_ms": 0}}}},
        worker={"behaviour": "echo"},
    ),
    _extra(
        "js_stream_over_check_limit",
        worker={"behaviour": "big_json", "bytes": 300000, "stream": True},
    ),
    _extra(
        "js_stream_under_check_limit",
        worker={"behaviour": "big_json", "bytes": 1000, "stream": True},
    ),
    _extra(
        "js_stall_mid_body",
        worker={
            "behaviour": "stall_body",
            "delay_ms": 1500,
            "content_type": "application/json",
            "body": '{"late":true}',
        },
    ),
    _extra(
        "js_stall_mid_body_html_sniff",
        worker={
            "behaviour": "stall_body",
            "delay_ms": 1500,
            "content_type": "text/plain",
            "body": "<html></html>",
        },
    ),
]


# --- Running the harness --------------------------------------------------------------------


def _require_node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "node is not installed: the dispatcher is tested inside workerd via miniflare. "
            "Install Node.js 20+, then run: npm ci --prefix tests/js"
        )
    if not (JS_DIR / "node_modules" / "miniflare").is_dir():
        pytest.fail("tests/js/node_modules is missing. Run: npm ci --prefix tests/js")
    return node


def _wire(request: HttpRequest, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "method": request.method,
        "target": request.target,
        "headers": [list(pair) for pair in request.headers],
        "body_b64": base64.b64encode(request.body).decode("ascii"),
        "chunked": request.chunked,
    }


def _setups(cases: list[Case]) -> list[dict[str, Any]]:
    """One setup per distinct (environment, table, workers); cases sharing one share a
    dispatcher."""
    setups: dict[str, dict[str, Any]] = {}

    def add(
        environment: str,
        table: Any,
        workers: dict[str, Any],
        request: dict[str, Any],
        analytics: str | None = None,
    ) -> None:
        # A recording case gets a dispatcher of its own: its data points are then its own.
        alone = request["name"] if analytics else None
        key = json.dumps([environment, table, workers, analytics, alone], sort_keys=True)
        setup = setups.setdefault(
            key,
            {
                "environment": environment,
                "platform_name": PLATFORM_NAME,
                "route_table": table,
                "workers": workers,
                "analytics": analytics,
                "requests": [],
            },
        )
        setup["requests"].append(request)

    for case in cases:
        workers = {alias: behaviour_config(b) for alias, b in case.workers.items()}
        wire = _wire(case.http_request(), case.name)
        add(case.environment, case.table_for(), workers, wire, case.analytics)
    for extra in EXTRAS:
        add(
            "js-only",
            extra["route_table"],
            extra["workers"],
            _wire(extra["request"], extra["name"]),
        )
    return list(setups.values())


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Actual]:
    """Every request of this module, answered by the dispatcher in workerd, by name."""
    node = _require_node()
    work = tmp_path_factory.mktemp("dispatcher-js")
    source, sink = work / "input.json", work / "output.json"
    source.write_text(
        json.dumps({"compatibility_date": _compatibility_date(), "setups": _setups(CASES)}),
        encoding="utf-8",
    )
    try:
        run = subprocess.run(
            [node, str(HARNESS), str(source), str(sink)],
            cwd=JS_DIR,
            capture_output=True,
            text=True,
            timeout=HARNESS_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the workerd harness did not finish in {HARNESS_TIMEOUT_S} s: {exc.stderr!r}")
    if run.returncode != 0:
        pytest.fail(f"the workerd harness failed ({run.returncode}):\n{run.stderr}")
    results = [Actual.model_validate(item) for item in json.loads(sink.read_text("utf-8"))]
    return {result.name: result for result in results}


# --- The corpus -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_conformance(case: Case, answers: dict[str, Actual]) -> None:
    problems = check(case, answers[case.name])
    assert not problems, f"{case.name} (docs/dispatch.md {case.rule}):\n  " + "\n  ".join(problems)


OPTIONS_CASES = [case for case in CASES if case.expect.dispatch_options is not None]


@pytest.mark.parametrize("case", OPTIONS_CASES, ids=[case.name for case in OPTIONS_CASES])
def test_dispatcher_passes_options_to_get(case: Case, answers: dict[str, Actual]) -> None:
    """What DISPATCHER.get() received, as the namespace shim recorded it (tests/js/shim.mjs):
    the user Worker's limits and the outbound Worker's parameter values."""
    got = answers[case.name]
    recorded = json.loads(got.headers["x-shim-dispatch-options"])
    assert recorded == case.expected_dispatch_options(got.headers["x-code24-request-id"])


def test_every_js_case_was_answered(answers: dict[str, Actual]) -> None:
    expected = {case.name for case in CASES} | {extra["name"] for extra in EXTRAS}
    assert set(answers) == expected


# --- Nothing escapes: a broken ROUTE_TABLE is a JSON 500, never Cloudflare's HTML 1101 ----------


@pytest.mark.parametrize(
    "name",
    [
        "js_table_routes_not_a_list",
        "js_table_wrong_version",
        "js_table_null",
        "js_table_bad_limit",
        "js_table_bad_worker_settings",
        "js_table_unknown_outbound_param",
        "js_table_bad_limits",
    ],
)
def test_broken_route_table_answers_json_500(name: str, answers: dict[str, Actual]) -> None:
    got = answers[name]
    assert got.status == 500
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-code24-request-id"] == name
    assert got.headers["x-code24-environment"] == "js-only"
    assert json.loads(got.body) == {
        "error": {
            "code": "internal_error",
            "message": "The dispatcher failed unexpectedly.",
            "worker": None,
            "request_id": name,
        }
    }


def test_route_table_given_as_json_text_still_works(answers: dict[str, Actual]) -> None:
    got = answers["js_table_text_json"]
    assert got.status == 200
    assert json.loads(got.body)["path"] == "/x"


# --- A GET body cannot be forwarded in workerd (Request refuses it): it is dropped, not a 500 ---


@pytest.mark.parametrize("name", ["js_get_with_body", "js_get_with_chunked_body"])
def test_get_body_is_dropped_not_fatal(name: str, answers: dict[str, Actual]) -> None:
    got = answers[name]
    assert got.status == 200, got.body
    echoed = json.loads(got.body)
    assert (echoed["method"], echoed["body"]) == ("GET", "")
    assert "content-length" not in echoed["headers"]


# --- Streaming and deadlines on answers without a declared length ---------------------------


def test_json_over_check_limit_without_length_streams_through(answers: dict[str, Actual]) -> None:
    got = answers["js_stream_over_check_limit"]
    assert got.status == 200
    assert got.headers["x-code24-fallback"] == "false"
    assert len(got.body) == 300000
    assert json.loads(got.body) == {"pad": "a" * (300000 - len('{"pad":""}'))}


def test_json_under_check_limit_without_length_is_checked(answers: dict[str, Actual]) -> None:
    got = answers["js_stream_under_check_limit"]
    assert got.status == 200
    assert got.headers["x-code24-fallback"] == "false"
    assert len(got.body) == 1000


@pytest.mark.parametrize("name", ["js_stall_mid_body", "js_stall_mid_body_html_sniff"])
def test_worker_stalling_mid_body_times_out(name: str, answers: dict[str, Actual]) -> None:
    """The deadline covers reading the part of the body the dispatcher judges, not just the
    headers."""
    got = answers[name]
    assert got.status == 504
    assert got.headers["x-code24-fallback-reason"] == "worker_timeout"
    assert json.loads(got.body)["error"]["code"] == "worker_timeout"


# --- Every request leaves one structured log line (what `code24ctl tail` shows) ----------------


def _request_lines(got: Actual) -> list[dict[str, Any]]:
    lines = [
        json.loads(line[line.index("{") :]) for line in got.logs if '"code24":"request"' in line
    ]
    return [fields for fields in lines if fields.get("code24") == "request"]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_every_answer_is_logged_once_as_sent(case: Case, answers: dict[str, Actual]) -> None:
    got = answers[case.name]
    lines = _request_lines(got)
    assert len(lines) == 1, got.logs
    fields = lines[0]
    reason = got.headers.get("x-code24-fallback-reason")
    if reason is None and "x-code24-worker" not in got.headers:
        reason = json.loads(got.body)["error"]["code"]  # a refusal: its code is the reason
    assert fields["request_id"] == got.headers["x-code24-request-id"]
    assert fields["method"] == case.request.method
    assert fields["path"] == case.request.target.split("?", 1)[0]
    assert fields["environment"] == case.environment
    assert fields["status"] == got.status
    assert fields["worker"] == got.headers.get("x-code24-worker", fields["worker"])
    assert fields["fallback_reason"] == (reason or "")
    assert fields["upstream_status"] == int(got.headers.get("x-code24-upstream-status", "0"))
    assert isinstance(fields["dispatch_ms"], int | float) and fields["dispatch_ms"] >= 0
