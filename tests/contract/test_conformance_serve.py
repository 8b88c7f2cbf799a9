"""The dispatch conformance corpus against ``code24ctl serve`` (the Python implementation).

serve runs for real (uvicorn + httptools, its one upstream pool) on 127.0.0.1, in front of
real HTTP workers behaving as each case says (tests/support/upstreams.py). Both start once
for the module; each case swaps in its own route table, environment and workers, then its
request goes out over a fresh connection and the answer is judged by the same checker the
JavaScript dispatcher is judged by.
"""

from __future__ import annotations

import json
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from code24ctl.config.environments import resolve_environment
from code24ctl.dispatch.route_table import RouteTable, match_route
from code24ctl.dispatch.routing import dispatch_options, split_target
from code24ctl.dispatch.table import compile_route_table
from code24ctl.route_defaults import DEFAULT_TIMEOUT_MS
from tests.contract.conformance.checker import Actual, check
from tests.contract.conformance.corpus import Case, OverLimit, behaviour_config, load_cases
from tests.support.cli import REPO_ROOT
from tests.support.serve_process import ServeProcess
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


# --- The same corpus through `code24ctl serve --runtime workerd` -------------------------------
#
# The CLI for real: one `python -m code24ctl serve --runtime workerd` process runs dispatcher.js
# and, for each alias of a case, a `path:` Worker (tests/js/behaviour.mjs configured by a json
# var). Each case's setup becomes a namespaces.yaml whose compiled table must equal the case's
# table (checked); a new setup is a rewritten config and a SIGHUP (cases are ordered so equal
# setups follow each other).

NODE_MODULES = REPO_ROOT / "tests" / "js" / "node_modules"
BEHAVIOUR_JS = REPO_ROOT / "tests" / "js" / "behaviour.mjs"
# A user Worker over its limit throws the case's message, else error 1102's wording (as
# tests/js/shim.mjs does).
BEHAVIOUR_ENTRY = """import behaviour from "./behaviour.mjs";

export default {
  async fetch(request, env, ctx) {
    if (env.BEHAVIOUR.behaviour === "over_limit") {
      throw new Error(
        env.BEHAVIOUR.message ?? "Worker exceeded resource limits: exceeded CPU time limit.",
      );
    }
    return behaviour.fetch(request, env, ctx);
  },
};
"""


def _setup_key(case: Case) -> str:
    workers = {alias: behaviour_config(b) for alias, b in case.workers.items()}
    return json.dumps([case.table_for(), case.environment, workers], sort_keys=True)


WORKERD_CASES = sorted(
    (case for case in load_cases() if case.runs_on("js") and case.analytics is None),
    key=_setup_key,
)


def config_for(case: Case, folder: Path) -> Path:
    """Write the case's setup as a config (and its workers' folders) under ``folder``."""
    table = case.table_for()
    # A routed alias the table has no policy for gets the defaults in both dispatchers; a
    # config must name it, so it is written with them.
    for route in table["routes"]:
        table["workers"].setdefault(
            route["worker"],
            {"timeout_ms": DEFAULT_TIMEOUT_MS, "fallback": None, "fallback_status": 200},
        )
    # A policy no route reaches never matters; a config compiles only the routed ones.
    routed = {route["worker"] for route in table["routes"]}
    table["workers"] = {a: p for a, p in sorted(table["workers"].items()) if a in routed}
    shutil.rmtree(folder / "workers", ignore_errors=True)
    workers: dict[str, Any] = {}
    for alias, policy in table["workers"].items():
        entry: dict[str, Any] = {
            "timeout_ms": policy["timeout_ms"],
            "fallback": policy["fallback"],
            "fallback_status": policy["fallback_status"],
        }
        if "limits" in policy:
            entry["limits"] = policy["limits"]
        if alias in case.workers:
            worker = folder / "workers" / alias
            worker.mkdir(parents=True)
            (worker / "index.js").write_text(BEHAVIOUR_ENTRY)
            shutil.copyfile(BEHAVIOUR_JS, worker / "behaviour.mjs")
            behaviour = behaviour_config(case.workers[alias])
            (worker / "wrangler.json").write_text(json.dumps({"vars": {"BEHAVIOUR": behaviour}}))
            entry["path"] = f"workers/{alias}"
        else:
            entry["script"] = f"{alias}-not-deployed"  # no code here: worker_not_found
        workers[alias] = entry
    local: dict[str, Any] = {
        "base_url": "http://127.0.0.1:8799",
        "upstreams": {},
        "vars": {"ENVIRONMENT": case.environment},
    }
    if table.get("outbound_params"):
        local["outbound"] = {"worker": "conformance-outbound", "params": table["outbound_params"]}
    data = {
        "platform": "Conformance",
        "compatibility_date": "2025-06-01",
        "max_body_bytes": table["max_body_bytes"],
        "max_json_check_bytes": table["max_json_check_bytes"],
        "workers": workers,
        "routes": [
            {
                "prefix": route["prefix"] or "/",
                "worker": route["worker"],
                "strip": route["strip"] or "/",
            }
            for route in table["routes"]
        ],
        "environments": {"local": local},
    }
    path = folder / "namespaces.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    resolved = resolve_environment(str(path), "local")
    compiled = compile_route_table(resolved.config, "local")
    # A config always compiles longest prefix first (a case may hand the dispatcher another
    # order; the answer must not depend on it).
    assert compiled == {**table, "routes": compiled["routes"]}, case.name
    assert sorted(map(str, compiled["routes"])) == sorted(map(str, table["routes"])), case.name
    return path


class WorkerdServe:
    """One `serve --runtime workerd` process, set up for one case at a time."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.current: str | None = None
        self.serve: ServeProcess | None = None
        self.reloads = 0

    def setup(self, case: Case) -> int:
        key = _setup_key(case)
        if key != self.current:
            config = config_for(case, self.folder)
            if self.serve is None:
                self.serve = ServeProcess(
                    self.folder, "--runtime", "workerd", "--access-log", "off", config=config
                )
            else:
                self.serve.proc.send_signal(signal.SIGHUP)
                self.reloads += 1
                self._wait_for_reload()
            self.current = key
        assert self.serve is not None
        return self.serve.port

    def _wait_for_reload(self) -> None:
        assert self.serve is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = self.serve.stderr()
            if text.count("reloaded ") == self.reloads:
                return
            assert "warning: reload of " not in text, text
            time.sleep(0.05)
        raise AssertionError(f"no reload:\n{self.serve.stderr()}")

    def close(self) -> None:
        if self.serve is not None:
            assert self.serve.stop() == 0


@pytest.fixture(scope="module")
def workerd_serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerdServe]:
    if not (NODE_MODULES / "miniflare" / "package.json").is_file():
        pytest.fail("tests/js/node_modules has no miniflare: run `npm ci --prefix tests/js`")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CODE24_NODE_MODULES", str(NODE_MODULES))
        running = WorkerdServe(tmp_path_factory.mktemp("workerd-conformance"))
        try:
            yield running
        finally:
            running.close()


@pytest.mark.parametrize("case", WORKERD_CASES, ids=[case.name for case in WORKERD_CASES])
def test_conformance_workerd_runtime(case: Case, workerd_serve: WorkerdServe) -> None:
    port = workerd_serve.setup(case)
    request = case.http_request()
    got = send(
        port,
        request.method,
        request.target,
        request.headers,
        request.body,
        chunked=request.chunked,
    )
    actual = Actual(name=case.name, status=got["status"], headers=got["headers"], body=got["body"])
    problems = check(case, actual)
    assert not problems, f"{case.name} (docs/dispatch.md {case.rule}):\n  " + "\n  ".join(problems)


def test_workerd_runtime_runs_every_js_case_but_recording() -> None:
    # Recording cases read the data points of a test double; serve's ANALYTICS is recorded
    # locally (counted on /healthz), so they stay with tests/test_dispatcher_js.py.
    left = [c.name for c in load_cases() if c.runs_on("js") and c not in WORKERD_CASES]
    assert left == [c.name for c in load_cases() if c.runs_on("js") and c.analytics is not None]
