"""``code24ctl probe`` end to end, against real HTTP servers on 127.0.0.1.

Every kind of answer a worker (or Cloudflare in front of it) gives has a route here; the probe
runs through the CLI, and the tests check the verdict of each route, the exit status, the JSON
rows, the human table and the JUnit file.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from code24ctl import __version__
from code24ctl.config import RouteConfig
from code24ctl.dispatch import classify
from code24ctl.probe.plan import forwarded_path
from code24ctl.probe.runner import excerpt
from tests.support import staging
from tests.support.builders import argv
from tests.support.cli import AMBIENT_VARIABLES, CliResult, RunCli, cli_runner
from tests.support.clock import FakeClock
from tests.support.http_servers import Answer, Cycle, LocalServer, Reset, refused_port
from tests.support.terminal import run_on_terminal

WIDE = {"COLUMNS": "200"}
FALLBACK_BODY = b'{"status": "degraded", "message": "Brand creation is temporarily unavailable"}'

# What each kind of route answers. The bytes are exact: the test servers do not "fix" anything.
ANSWERS: dict[str, Answer | Reset] = {
    "json": Answer(
        200,
        b'{"ok": true, "analysis": []}',
        "application/json",
        headers=(
            ("X-Code24-Worker", "json-worker"),
            ("X-Code24-Fallback", "false"),
            ("cf-ray", "8f1d2c3b4a596877-AMS"),
        ),
    ),
    "html": Answer(
        200,
        b"<!DOCTYPE html>\n<html><head><title>Worker threw exception</title></head></html>",
        "text/html; charset=utf-8",
    ),
    "plain-html": Answer(
        200, b"  <html><body>Service unavailable</body></html>", "text/plain; charset=utf-8"
    ),
    "html-500": Answer(
        500, b"<!doctype html><html><body><h1>500 Internal Server Error</h1></body></html>", None
    ),
    "stub": Answer(
        404,
        b"error code: 1042",
        "text/plain; charset=UTF-8",
        headers=(("cf-ray", "8f1d2c3b4a596878-FRA"),),
    ),
    "empty": Answer(200, b"", "application/json"),
    "broken": Answer(200, b'{"ok": tru', "application/json"),
    "slow": Answer(200, b'{"ok": true}', "application/json", delay_s=0.6),
    "reset": Reset(),
    "timeout": Answer(200, b'{"ok": true}', "application/json", delay_s=5),
    "fallback": Answer(
        200,
        FALLBACK_BODY,
        "application/json",
        headers=(
            ("X-Code24-Worker", "fallback-worker"),
            ("X-Code24-Fallback", "true"),
            ("X-Code24-Fallback-Reason", "upstream_html"),
        ),
    ),
}
KINDS = list(ANSWERS)
PROBE_TIMEOUT = "1.5"
MAX_LATENCY = "400"


def _probe_path(kind: str) -> str:
    return f"/k/{kind}/probe"


def write_config(
    path: Path,
    base_url: str,
    routes: list[dict[str, Any]],
    *,
    direct: dict[str, str] | None = None,
    upstreams: dict[str, str] | None = None,
) -> Path:
    """A namespaces.yaml with one worker per route and one environment named ``test``."""
    workers = {route["worker"]: {"script": f"{route['worker']}-script"} for route in routes}
    environment: dict[str, Any] = {"base_url": base_url}
    if upstreams is not None:
        environment["upstreams"] = upstreams
    else:
        environment.update(namespace="test-ns", dispatcher="test-dispatcher")
    if direct:
        environment["direct"] = direct
    document = {
        "platform": "Test",
        "compatibility_date": "2025-06-01",
        "probe": {"max_latency_ms": 500, "timeout_s": 10},
        "workers": workers,
        "routes": routes,
        "environments": {"test": environment},
    }
    return staging.write_config(path.parent, data=document, name=path.name)


def _kind_routes() -> list[dict[str, Any]]:
    routes: list[dict[str, Any]] = [
        {"prefix": f"/k/{kind}", "worker": f"{kind}-worker", "probe": {"path": _probe_path(kind)}}
        for kind in KINDS
    ]
    routes.append({"prefix": "/k/unprobed", "worker": "unprobed-worker"})
    return routes


def kinds_server() -> LocalServer:
    """A server with a route for every kind of answer in :data:`ANSWERS`."""
    return LocalServer({_probe_path(kind): answer for kind, answer in ANSWERS.items()})


@pytest.fixture
def kinds() -> Iterator[LocalServer]:
    with kinds_server() as server:
        yield server


@pytest.fixture
def kinds_config(tmp_path: Path, kinds: LocalServer) -> Path:
    return write_config(tmp_path / "namespaces.yaml", kinds.url, _kind_routes())


def _rows(stdout: str) -> dict[str, dict[str, Any]]:
    document = json.loads(stdout)  # exactly one document: json.loads rejects trailing text
    return {row["route"]: row for row in document["routes"]}


def _mask_latency(text: str) -> str:
    text = re.sub(r"\d+ ms", "N ms", text)
    text = re.sub(r"probe-[0-9a-f]{16}", "probe-ID", text)
    return "\n".join(line.rstrip() for line in text.splitlines())


# --------------------------------------------------------------------------------------------
# Every kind of answer, one run (shared by the tests below: the reset and timeout routes make
# a run take seconds)


@dataclass(frozen=True)
class KindsRun:
    """One ``probe --json --junit`` of every kind of route, and what it left behind."""

    result: CliResult
    rows: dict[str, dict[str, Any]]
    junit: Path

    @property
    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.result.stdout)
        return document


@pytest.fixture(scope="module")
def every_kind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KindsRun]:
    tmp_path = tmp_path_factory.mktemp("every-kind")
    junit = tmp_path / "probe.xml"
    with pytest.MonkeyPatch.context() as monkeypatch, kinds_server() as server:
        for name in AMBIENT_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        config = write_config(tmp_path / "namespaces.yaml", server.url, _kind_routes())
        result = cli_runner(FakeClock())(
            *argv(f"probe --env test --json --timeout {PROBE_TIMEOUT}"),
            *argv(f"--max-latency-ms {MAX_LATENCY}"),
            *("--junit", str(junit)),
            config=config,
        )
        yield KindsRun(result, _rows(result.stdout), junit)


# kind: (verdict, outcome, status, error kind, cloudflare error)
VERDICTS = {
    "json": ("json", "pass", 200, None, None),
    "html": ("html", "fail", 200, None, None),
    "plain-html": ("html", "fail", 200, None, None),
    "html-500": ("html", "fail", 500, None, None),
    "stub": ("not-json", "fail", 404, None, 1042),
    "empty": ("empty", "fail", 200, None, None),
    "broken": ("not-json", "fail", 200, None, None),
    "slow": ("json", "fail", 200, None, None),
    "reset": ("error", "fail", None, "reset", None),
    "timeout": ("error", "fail", None, "timeout", None),
    "fallback": ("json", "pass", 200, None, None),
}


def test_every_route_is_reported_in_config_order_and_the_probe_fails(every_kind: KindsRun) -> None:
    assert every_kind.result.exit_code == 1
    assert list(every_kind.rows) == [f"/k/{kind}" for kind in KINDS] + ["/k/unprobed"]
    assert set(VERDICTS) == set(KINDS)


@pytest.mark.parametrize(("kind", "expected"), VERDICTS.items(), ids=list(VERDICTS))
def test_every_kind_of_answer_gets_its_verdict(
    every_kind: KindsRun, kind: str, expected: tuple[Any, ...]
) -> None:
    row = every_kind.rows[f"/k/{kind}"]
    got = (row["verdict"], row["outcome"], row["status"], row["error"], row["cloudflare_error"])
    assert got == expected


def test_each_failure_says_why(every_kind: KindsRun) -> None:
    rows = every_kind.rows
    assert rows["/k/html"]["reason"] == "the body is an HTML document"
    assert rows["/k/plain-html"]["reason"] == "the body is an HTML document"
    assert rows["/k/plain-html"]["content_type"] == "text/plain; charset=utf-8"
    assert rows["/k/stub"]["reason"] == "Cloudflare error stub 'error code: 1042'"
    assert rows["/k/stub"]["cf_ray"] == "8f1d2c3b4a596878-FRA"
    assert rows["/k/stub"]["body_excerpt"] == "error code: 1042"
    assert rows["/k/empty"]["reason"] == "no body"
    assert rows["/k/broken"]["reason"].startswith("JSON content type but the body does not parse: ")
    assert rows["/k/broken"]["problems"] == [f"not-json: {rows['/k/broken']['reason']}"]
    assert rows["/k/reset"]["reason"] == f"connection reset by {kinds_config_host(rows)}"
    assert rows["/k/timeout"]["reason"] == f"no complete answer within {PROBE_TIMEOUT} s"
    assert rows["/k/timeout"]["latency_p50_ms"] is None
    assert rows["/k/reset"]["body_excerpt"] is None


def test_a_slow_json_answer_fails_by_the_latency_limit(every_kind: KindsRun) -> None:
    slow = every_kind.rows["/k/slow"]
    assert slow["slow"] is True
    assert slow["latency_p50_ms"] >= 600
    assert slow["problems"] == [
        f"latency {slow['latency_p95_ms']:.0f} ms is over the {MAX_LATENCY} ms limit"
    ]
    assert every_kind.rows["/k/json"]["slow"] is False
    assert every_kind.rows["/k/json"]["problems"] == []


def test_the_dispatcher_headers_are_reported(every_kind: KindsRun) -> None:
    rows = every_kind.rows
    dispatched = rows["/k/json"]
    assert dispatched["x_code24_worker"] == "json-worker"
    assert dispatched["fallback"] is False
    assert dispatched["fallback_reason"] is None
    assert dispatched["cf_ray"] == "8f1d2c3b4a596877-AMS"
    assert dispatched["body_excerpt"] == '{"ok": true, "analysis": []}'
    fallback = rows["/k/fallback"]
    assert (fallback["fallback"], fallback["fallback_reason"]) == (True, "upstream_html")
    assert fallback["x_code24_worker"] == "fallback-worker"
    # Not through a dispatcher: no X-Code24-* headers, so "fallback" is unknown, not false.
    assert rows["/k/html"]["fallback"] is None
    assert rows["/k/html"]["x_code24_worker"] is None


def test_a_route_without_a_probe_sample_is_skipped(every_kind: KindsRun) -> None:
    skipped = every_kind.rows["/k/unprobed"]
    assert (skipped["verdict"], skipped["outcome"]) == ("skipped", "skip")
    assert skipped["reason"] == "no probe sample in the config"
    assert skipped["url"] is None


def test_the_document_sums_up_with_its_settings_and_notes(every_kind: KindsRun) -> None:
    document = every_kind.document
    assert document["ok"] is False
    assert document["summary"] == {
        "routes": 12,
        "passed": 2,
        "failed": 9,
        "skipped": 1,
        "warned": 1,
        "fallbacks": 1,
        "version_not_applied": 0,
    }
    assert document["settings"] == {
        "repeat": 1,
        "concurrency": 16,
        "timeout_s": 1.5,
        "max_latency_ms": 400,
        "fail_on_fallback": False,
        "direct": False,
    }
    assert document["notes"] == [
        "/k/unprobed: skipped, no probe sample in the config",
        "1 of 11 answered by fallback: upstream_html",
    ]


def test_stderr_carries_the_notes_and_the_error_and_no_progress(every_kind: KindsRun) -> None:
    stderr = every_kind.result.stderr
    assert stderr == (
        "/k/unprobed: skipped, no probe sample in the config\n"
        "1 of 11 answered by fallback: upstream_html\n"
        "error: 9 of 12 routes failed the probe\n"
    )
    # More than a handful of routes, but stderr is not a terminal: no progress output.
    assert "probing" not in stderr


def kinds_config_host(rows: dict[str, dict[str, Any]]) -> str:
    """host:port of the test server, from a row's URL."""
    url = rows["/k/json"]["url"]
    return str(url).split("/")[2]


def _junit_cases(run: KindsRun) -> dict[str, ET.Element]:
    root = ET.parse(run.junit).getroot()
    assert root.tag == "testsuites"
    (suite,) = list(root)
    return {str(case.get("name")): case for case in suite.iter("testcase")}


def _junit_failures(run: KindsRun) -> dict[str, ET.Element]:
    failures: dict[str, ET.Element] = {}
    for name, case in _junit_cases(run).items():
        failure = case.find("failure")
        if failure is not None:
            failures[name] = failure
    return failures


def test_junit_counts_every_route_as_a_test_case(every_kind: KindsRun) -> None:
    root = ET.parse(every_kind.junit).getroot()
    assert root.tag == "testsuites"
    (suite,) = list(root)
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("12", "9", "1")
    assert suite.get("errors") == "0"
    cases = _junit_cases(every_kind)
    assert len(cases) == 12
    assert {case.get("classname") for case in cases.values()} == {"code24ctl.probe.test"}


def test_junit_failures_carry_their_verdict_and_the_answer(every_kind: KindsRun) -> None:
    failures = _junit_failures(every_kind)
    assert len(failures) == 9
    types = {name.split(" ")[0]: failure.get("type") for name, failure in failures.items()}
    assert types == {
        "/k/html": "html",
        "/k/plain-html": "html",
        "/k/html-500": "html",
        "/k/stub": "not-json",
        "/k/empty": "empty",
        "/k/broken": "not-json",
        "/k/slow": "slow",
        "/k/reset": "error",
        "/k/timeout": "error",
    }
    stub = failures["/k/stub (GET /k/stub/probe)"]
    assert stub.get("message") == "not-json: Cloudflare error stub 'error code: 1042'"
    assert stub.text is not None
    assert "body: error code: 1042" in stub.text.splitlines()
    assert "cf-ray: 8f1d2c3b4a596878-FRA" in stub.text.splitlines()
    html = failures["/k/html (GET /k/html/probe)"]
    assert html.text is not None
    assert html.text.splitlines()[-1] == (
        "body: <!DOCTYPE html> <html><head><title>Worker threw exception</title></head></html>"
    )


def test_junit_skips_the_unprobed_route_and_times_the_passed_ones(every_kind: KindsRun) -> None:
    cases = _junit_cases(every_kind)
    (unprobed,) = [case for name, case in cases.items() if name.startswith("/k/unprobed")]
    skipped = unprobed.find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "no probe sample in the config"
    passed = cases["/k/json (GET /k/json/probe)"]
    assert list(passed) == []
    assert passed.get("time") == f"{every_kind.rows['/k/json']['latency_p50_ms'] / 1000:.3f}"


def test_verdicts_come_from_the_dispatch_classifier(run_cli: RunCli, kinds_config: Path) -> None:
    """Each answered row says exactly what the dispatcher's classifier says of the same bytes."""
    import code24ctl.probe.send

    assert vars(code24ctl.probe.send)["classify_answer"] is classify.classify_answer
    answered = [k for k, a in ANSWERS.items() if isinstance(a, Answer) and k != "timeout"]
    args = [arg for kind in answered for arg in ("--route", f"/k/{kind}")]
    result = run_cli("probe", "--env", "test", "--json", *args, config=kinds_config)
    rows = _rows(result.stdout)
    for kind in answered:
        answer = ANSWERS[kind]
        assert isinstance(answer, Answer)
        expected = classify.classify_answer(answer.status, answer.content_type, answer.body)
        row = rows[f"/k/{kind}"]
        assert (row["verdict"], row["reason"], row["cloudflare_error"]) == (
            expected.verdict,
            expected.reason,
            expected.cloudflare_error,
        ), kind


# --------------------------------------------------------------------------------------------
# Human output and exit status


def test_human_table(run_cli: RunCli, kinds: LocalServer, kinds_config: Path) -> None:
    routes = ["/k/json", "/k/html", "/k/stub", "/k/fallback", "/k/unprobed"]
    args = [arg for route in routes for arg in ("--route", route)]
    result = run_cli("probe", "--env", "test", *args, env=WIDE, config=kinds_config)
    assert result.exit_code == 1
    assert _mask_latency(result.stdout.replace(kinds.url, "URL")) == _mask_latency(
        """\
result  route        worker           status  content type      verdict                     X-Code24-Worker  fallback             latency
ok      /k/json      json-worker      200     application/json  json                        json-worker      no                   1 ms
FAIL    /k/html      html-worker      200     text/html         html                        -                -                    1 ms
FAIL    /k/stub      stub-worker      404     text/plain        not-json (error code 1042)  -                -                    1 ms
warn    /k/fallback  fallback-worker  200     application/json  json                        fallback-worker  yes (upstream_html)  1 ms
skip    /k/unprobed  unprobed-worker  -       -                 skipped                     -                -                    -

/k/html: html: the body is an HTML document
  body: <!DOCTYPE html> <html><head><title>Worker threw exception</title></head></html>
  logs: code24ctl logs --env test --worker html-worker --request-id probe-ID
/k/stub: not-json: Cloudflare error stub 'error code: 1042'
  cf-ray: 8f1d2c3b4a596878-FRA
  body: error code: 1042
  logs: code24ctl logs --env test --worker stub-worker --request-id probe-ID

/k/fallback: warning: answered by the dispatcher's fallback (upstream_html): the worker answered, but not with JSON
  logs: code24ctl logs --env test --worker fallback-worker --request-id probe-ID

probed 4 of 5 routes on URL (test): 2 passed (1 with a warning), 2 failed, 1 skipped
"""  # noqa: E501
    )
    assert result.stderr == (
        "/k/unprobed: skipped, no probe sample in the config\n"
        "1 of 4 answered by fallback: upstream_html\n"
        "error: 2 of 5 routes failed the probe\n"
    )


def test_exit_0_when_every_route_answers_json(
    run_cli: RunCli, kinds: LocalServer, kinds_config: Path
) -> None:
    result = run_cli(
        *argv("probe --env test --route /k/json --route /k/fallback"),
        env=WIDE,
        config=kinds_config,
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == (
        f"probed 2 of 2 routes on {kinds.url} (test): 2 passed (1 with a warning), 0 failed"
    )
    assert result.stderr == "1 of 2 answered by fallback: upstream_html\n"


def test_fail_on_fallback(run_cli: RunCli, kinds_config: Path) -> None:
    result = run_cli(
        *argv("probe --env test --route /k/fallback --fail-on-fallback --json"),
        config=kinds_config,
    )
    assert result.exit_code == 1
    row = _rows(result.stdout)["/k/fallback"]
    assert (row["verdict"], row["outcome"]) == ("json", "fail")
    assert row["problems"] == ["answered by the dispatcher's fallback (upstream_html)"]
    assert result.stderr == (
        "1 of 1 answered by fallback: upstream_html\nerror: 1 of 1 route failed the probe\n"
    )


def test_slow_route_fails_by_the_configured_limit(run_cli: RunCli, kinds_config: Path) -> None:
    # The config says 500 ms; the slow route answers after 600 ms.
    result = run_cli("probe", "--env", "test", "--route", "/k/slow", "--json", config=kinds_config)
    assert result.exit_code == 1
    row = _rows(result.stdout)["/k/slow"]
    assert row["problems"] == [f"latency {row['latency_p95_ms']:.0f} ms is over the 500 ms limit"]
    relaxed = run_cli(
        *argv("probe --env test --route /k/slow --max-latency-ms 5000"),
        config=kinds_config,
    )
    assert relaxed.exit_code == 0, relaxed.output


def test_refused_connection_is_an_error_with_its_reason(
    run_cli: RunCli, kinds_config: Path
) -> None:
    with refused_port() as port:
        result = run_cli(
            *argv(f"probe --env test --route /k/json --json --base-url http://127.0.0.1:{port}/"),
            config=kinds_config,
        )
    # Nothing answered at all: one cause, with a hint, and the network failure's exit 3.
    assert result.exit_code == 3
    document = json.loads(result.stdout)
    assert document["base_url"] == f"http://127.0.0.1:{port}"
    row = document["routes"][0]
    assert (row["verdict"], row["error"], row["status"]) == ("error", "refused", None)
    assert row["reason"] == f"connection refused by 127.0.0.1:{port}"
    assert row["url"] == f"http://127.0.0.1:{port}/k/json/probe"
    assert row["problems"] == [f"error: connection refused by 127.0.0.1:{port}"]
    assert result.stderr == (
        f"error: no route answered at http://127.0.0.1:{port} (1 probed): connection refused "
        f"by 127.0.0.1:{port}\n  hint: nothing answers at http://127.0.0.1:{port} (from "
        "--base-url): start what should listen there, or fix the URL\n"
    )  # test is a Cloudflare environment: `serve --env test` would be refused


def test_refused_in_the_table(run_cli: RunCli, kinds_config: Path) -> None:
    with refused_port() as port:
        result = run_cli(
            *argv(f"probe --env test --route /k/json --base-url http://127.0.0.1:{port}"),
            env=WIDE,
            config=kinds_config,
        )
    assert result.exit_code == 3
    lines = [line.rstrip() for line in result.stdout.splitlines()]
    assert lines[1] == (
        "FAIL    /k/json  json-worker  -       -             error (refused)  -"
        "                -         -"
    )
    assert lines[3] == f"/k/json: error: connection refused by 127.0.0.1:{port}"


# --------------------------------------------------------------------------------------------
# What is sent


def test_sends_the_configured_request(tmp_path: Path, run_cli: RunCli) -> None:
    ok = Answer(200, b'{"ok": true}')
    with LocalServer({"/api/post/run": ok, "/api/raw/run": ok}) as server:
        routes = [
            {
                "prefix": "/api/post",
                "worker": "post-worker",
                "probe": {
                    "method": "post",
                    "path": "/api/post/run?mode=probe",
                    "json": {"industry": "saas", "competitors": ["acme"]},
                    "headers": {"X-Probe-Token": "sample", "Accept": "application/json"},
                },
            },
            {
                "prefix": "/api/raw",
                "worker": "raw-worker",
                "probe": {"method": "PUT", "path": "/api/raw/run", "body": "plain words"},
            },
        ]
        config = write_config(tmp_path / "c.yaml", server.url, routes)
        result = run_cli("probe", "--env", "test", config=config)
    assert result.exit_code == 0, result.output
    by_target = {request.target: request for request in server.requests}
    posted = by_target["/api/post/run?mode=probe"]
    assert posted.method == "POST"
    assert json.loads(posted.body) == {"industry": "saas", "competitors": ["acme"]}
    assert posted.headers["content-type"] == "application/json"
    assert posted.headers["x-probe-token"] == "sample"
    assert posted.headers["accept"] == "application/json"
    assert posted.headers["user-agent"] == f"code24ctl-probe/{__version__}"
    raw = by_target["/api/raw/run"]
    assert (raw.method, raw.body) == ("PUT", b"plain words")
    assert "content-type" not in raw.headers


def test_repeat_reports_percentiles_and_the_worst_answer(tmp_path: Path, run_cli: RunCli) -> None:
    good = Answer(200, b'{"ok": true}')
    bad = Answer(200, b"busy", "text/html")
    with LocalServer({"/a/x": good, "/b/x": Cycle((good, bad))}) as server:
        routes = [
            {"prefix": "/a", "worker": "a-worker", "probe": {"path": "/a/x"}},
            {"prefix": "/b", "worker": "b-worker", "probe": {"path": "/b/x"}},
        ]
        config = write_config(tmp_path / "c.yaml", server.url, routes)
        result = run_cli("probe", "--env", "test", "--repeat", "4", "--json", config=config)
        table = run_cli("probe", "--env", "test", "--repeat", "4", env=WIDE, config=config)
    assert result.exit_code == 1
    rows = _rows(result.stdout)
    steady, flaky = rows["/a"], rows["/b"]
    assert (steady["attempts"], steady["verdict_counts"]) == (4, {"json": 4})
    assert steady["latency_p50_ms"] <= steady["latency_p95_ms"]
    assert (flaky["verdict"], flaky["verdict_counts"]) == ("html", {"json": 2, "html": 2})
    assert flaky["problems"] == ["html (2 of 4 answers): content type text/html"]
    assert sum(r.target == "/a/x" for r in server.requests) == 8  # two runs of four
    lines = _mask_latency(table.stdout).splitlines()
    steady_row = "ok /a a-worker 200 application/json json - - p50 N ms, p95 N ms"
    assert lines[1].split() == steady_row.split()
    assert lines[2].split()[5:8] == ["html", "(2", "of"]


def test_concurrency_runs_requests_in_parallel(tmp_path: Path, run_cli: RunCli) -> None:
    """Eight routes answering after 0.4 s each finish together at --concurrency 8."""
    with LocalServer({}, default=Answer(200, b"{}", delay_s=0.4)) as server:
        routes = [
            {"prefix": f"/r{i}", "worker": "w", "probe": {"path": f"/r{i}/x"}} for i in range(8)
        ]
        config = write_config(tmp_path / "c.yaml", server.url, routes)
        result = run_cli(
            *argv("probe --env test --concurrency 8 --max-latency-ms 5000 --json"),
            config=config,
        )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    # Serially this takes 3.2 s; the bound is loose on purpose (the benchmark measures speed).
    assert document["duration_ms"] < 1600
    assert document["settings"]["concurrency"] == 8


# --------------------------------------------------------------------------------------------
# --direct


def test_direct_shows_the_worker_answer_beside_the_dispatcher(
    tmp_path: Path, run_cli: RunCli
) -> None:
    """The original bug, diagnosed: the worker answers HTML, the dispatcher its JSON fallback."""
    html = b"<!DOCTYPE html><html><body>Error 1101: Worker threw exception</body></html>"
    worker = LocalServer({"/brand/create": Answer(500, html, "text/html")})
    dispatcher = LocalServer(
        {
            "/elite/brand/create": Answer(
                200,
                FALLBACK_BODY,
                headers=(
                    ("X-Code24-Worker", "brand-worker"),
                    ("X-Code24-Fallback", "true"),
                    ("X-Code24-Fallback-Reason", "upstream_html"),
                ),
            ),
            "/elite/design/enhanced": Answer(200, b'{"design": {}}'),
        }
    )
    with worker, dispatcher:
        routes = [
            {
                "prefix": "/elite/brand",
                "worker": "brand-worker",
                "strip": "/elite",
                "probe": {"method": "POST", "path": "/elite/brand/create", "json": {"a": 1}},
            },
            {
                "prefix": "/elite/design",
                "worker": "designer-worker",
                "strip": "/elite",
                "probe": {"path": "/elite/design/enhanced"},
            },
        ]
        config = write_config(
            tmp_path / "c.yaml", dispatcher.url, routes, direct={"brand-worker": worker.url}
        )
        result = run_cli("probe", "--env", "test", "--direct", env=WIDE, config=config)
        as_json = run_cli(
            "probe", "--env", "test", "--direct", "--fail-on-fallback", "--json", config=config
        )
    assert result.exit_code == 0, result.output
    assert [(r.method, r.target) for r in worker.requests] == [("POST", "/brand/create")] * 2
    assert _mask_latency(result.stdout.replace(dispatcher.url, "URL")) == _mask_latency(
        """\
result  route          worker           status  content type      verdict  direct  X-Code24-Worker  fallback             latency
warn    /elite/brand   brand-worker     200     application/json  json     html    brand-worker     yes (upstream_html)  1 ms
ok      /elite/design  designer-worker  200     application/json  json     -       -                -                    1 ms

/elite/brand: warning: answered by the dispatcher's fallback (upstream_html): the worker answered, but not with JSON
  logs: code24ctl logs --env test --worker brand-worker --request-id probe-ID

probed 2 of 2 routes on URL (test): 2 passed (1 with a warning), 0 failed
"""  # noqa: E501
    )
    assert result.stderr == (
        "/elite/design: no direct URL for worker designer-worker "
        "(set environments.test.direct.designer-worker)\n"
        "1 of 2 answered by fallback: upstream_html\n"
    )
    assert as_json.exit_code == 1
    row = _rows(as_json.stdout)["/elite/brand"]
    assert row["direct"]["url"] == f"{worker.url}/brand/create"
    assert (row["direct"]["verdict"], row["direct"]["status"]) == ("html", 500)
    assert row["direct"]["fallback"] is None
    assert _rows(as_json.stdout)["/elite/design"]["direct"] is None


def test_direct_uses_a_local_envs_upstreams(tmp_path: Path, run_cli: RunCli) -> None:
    worker = LocalServer({"/analyze-industry": Answer(200, b'{"industry": "saas"}')})
    dispatcher = LocalServer({"/api/competitive/analyze-industry": Answer(200, b"{}")})
    with worker, dispatcher:
        routes = [
            {
                "prefix": "/api/competitive",
                "worker": "competitive-analysis",
                "probe": {"path": "/api/competitive/analyze-industry?q=1"},
            }
        ]
        config = write_config(
            tmp_path / "c.yaml",
            dispatcher.url,
            routes,
            upstreams={"competitive-analysis": worker.url},
        )
        result = run_cli("probe", "--env", "test", "--direct", "--json", config=config)
    assert result.exit_code == 0, result.output
    assert [r.target for r in worker.requests] == ["/analyze-industry?q=1"]
    assert _rows(result.stdout)["/api/competitive"]["direct"]["verdict"] == "json"


@pytest.mark.parametrize(
    ("prefix", "strip", "path", "forwarded"),
    [
        ("/api/competitive", None, "/api/competitive/analyze-industry", "/analyze-industry"),
        ("/api/competitive", None, "/api/competitive", "/"),
        ("/api/competitive", None, "/api/competitive/x?a=1&b=2", "/x?a=1&b=2"),
        ("/elite/brand", "/elite", "/elite/brand/create", "/brand/create"),
        ("/elite/brand", "/", "/elite/brand/create", "/elite/brand/create"),
        ("/elite/brand", "", "/elite/brand/create", "/elite/brand/create"),
    ],
)
def test_forwarded_path(prefix: str, strip: str | None, path: str, forwarded: str) -> None:
    route = RouteConfig(prefix=prefix, worker="w", strip=strip)
    assert forwarded_path(route, path) == forwarded


# --------------------------------------------------------------------------------------------
# Bad usage and config: exit 2


def test_bad_usage_exits_2(run_cli: RunCli, kinds_config: Path) -> None:
    cases = {
        ("--route", "/k/js"): "error: no route under '/k/js'; did you mean '/k/json'?\n",
        ("--timeout", "0"): "error: --timeout must be more than 0 seconds, not 0\n",
        ("--base-url", "ftp://example.com"): "error: --base-url 'ftp://example.com' is not "
        "an http(s) URL like https://host\n",
    }
    for args, message in cases.items():
        result = run_cli("probe", "--env", "test", *args, config=kinds_config)
        assert result.exit_code == 2, args
        assert result.stderr.startswith(message), result.stderr
        assert result.stdout == ""
    for args in (("--concurrency", "0"), ("--repeat", "0"), ("--max-latency-ms", "0")):
        result = run_cli("probe", "--env", "test", *args, config=kinds_config)
        assert result.exit_code == 2, args
        assert "Invalid value" in result.stderr


def test_config_problems_exit_2(tmp_path: Path, run_cli: RunCli) -> None:
    unprobed = write_config(
        tmp_path / "none.yaml", "http://127.0.0.1:9", [{"prefix": "/a", "worker": "w"}]
    )
    result = run_cli("probe", "--env", "test", config=unprobed)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: nothing to probe: no selected route has a probe")

    outside = write_config(
        tmp_path / "bad.yaml",
        "http://127.0.0.1:9",
        [{"prefix": "/a", "worker": "w", "probe": {"path": "/b/x"}}],
    )
    result = run_cli("probe", "--env", "test", config=outside)
    assert result.exit_code == 2
    assert "probe path '/b/x' is not under prefix '/a'" in result.stderr

    def without_base(document: dict[str, Any]) -> None:
        del document["environments"]["test"]["base_url"]
        document["routes"][0]["probe"] = {"path": "/a"}

    document = yaml.safe_load(unprobed.read_text())
    no_base = staging.write_config(tmp_path, without_base, data=document, name="nobase.yaml")
    result = run_cli("probe", "--env", "test", config=no_base)
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: environment 'test' (from --env) has no base_url to probe\n"
    )
    # ...and --base-url is the way out.
    with LocalServer({"/a": Answer(200, b"[]")}) as server:
        result = run_cli("probe", "--env", "test", "--base-url", server.url, config=no_base)
    assert result.exit_code == 0, result.output


# --------------------------------------------------------------------------------------------
# Progress: on a terminal only, never with --json


def test_progress_on_a_terminal_and_never_with_json(tmp_path: Path) -> None:
    with LocalServer({}, default=Answer(200, b"{}", delay_s=0.3)) as server:
        routes = [
            {"prefix": f"/r{i}", "worker": "w", "probe": {"path": f"/r{i}/x"}} for i in range(8)
        ]
        config = write_config(tmp_path / "c.yaml", server.url, routes)
        status, seen = run_on_terminal(
            ["probe", "--env", "test", "--concurrency", "4", "--max-latency-ms", "5000"], config
        )
        json_status, json_seen = run_on_terminal(
            ["probe", "--env", "test", "--concurrency", "4", "--max-latency-ms", "5000", "--json"],
            config,
        )
    assert status == 0, seen
    assert "probing 8 routes" in seen
    assert "probed 8 of 8 routes" in seen
    assert json_status == 0, json_seen
    assert "probing" not in json_seen
    assert json.loads(json_seen)["summary"]["passed"] == 8


def test_an_80_column_terminal_gets_a_table_it_can_read(kinds_config: Path) -> None:
    routes = ["/k/json", "/k/fallback"]
    args = ["probe", "--env", "test", *[a for r in routes for a in ("--route", r)]]
    status, seen = run_on_terminal(args, kinds_config, columns=80)
    assert status == 0, seen
    plain = re.sub(r"\x1b\[[0-9;]*m", "", seen).replace("\r", "")
    lines = [line.rstrip() for line in plain.splitlines()]
    assert lines[0].split() == ["result", "route", "status", "verdict", "fallback", "latency"]
    # Whole cells, one line per route: nothing folded or cut.
    assert lines[1].split()[:4] == ["ok", "/k/json", "200", "json"]
    assert lines[2].split()[:6] == ["warn", "/k/fallback", "200", "json", "yes", "(upstream_html)"]
    assert all(len(line) <= 80 for line in lines[:3])  # the table; notes are prose
    # The columns left out are named, never dropped silently.
    assert "(left out to fit: X-Code24-Worker, content type, worker; see --json)" in lines


# --------------------------------------------------------------------------------------------
# Excerpts


def test_excerpt_is_one_short_line() -> None:
    assert excerpt(b"  <html>\n\n  <body>  hi</body>") == "<html> <body> hi</body>"
    long = excerpt(b"x" * 500)
    assert (len(long), long[-1]) == (200, "…")
    assert excerpt(b"\xff\xfeok") == "\ufffd\ufffdok"
