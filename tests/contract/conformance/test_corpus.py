"""The corpus loader and the checker: the corpus is well formed, and the checker catches every
kind of difference (a checker that passes everything would make both implementations look right).
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests.contract.conformance.checker import check
from tests.contract.conformance.corpus import (
    DOC_PATH,
    PROBE_RULES,
    RULES,
    Case,
    OverLimit,
    documented_rules,
    load_cases,
)

REPO_ROOT = Path(__file__).resolve().parents[3]

# --- The real corpus ------------------------------------------------------------------------


def test_corpus_loads_with_unique_names_and_covers_every_rule() -> None:
    cases = load_cases()
    assert len(cases) >= 45
    assert len({case.name for case in cases}) == len(cases)
    assert {case.rule for case in cases} == set(RULES) - set(PROBE_RULES)


def test_every_case_names_a_section_of_the_dispatch_doc() -> None:
    doc = DOC_PATH.read_text("utf-8")
    sections = re.findall(r"^## (D[0-9]+) \S", doc, re.MULTILINE)
    assert len(set(sections)) == len(sections), "a rule number is used twice"
    assert set(PROBE_RULES) <= set(sections)
    missing = {case.name: case.rule for case in load_cases() if case.rule not in sections}
    assert not missing, f"cases whose rule is not a section of {DOC_PATH}: {missing}"


def test_rules_are_read_from_the_headings_only() -> None:
    text = "# The contract\n## D1 Route\nSee D9.\n### D5 not a rule\n## D2 Refuse\n## Order\n"
    assert documented_rules(text) == ("D1", "D2")


def test_only_python_cases_say_why() -> None:
    limited = [case for case in load_cases() if case.only == ["python"]]
    assert {case.name for case in limited} == {
        "bad_path_dot_dot_segment",
        "bad_path_dot_segment",
        "bad_path_absolute_form",
    }
    for case in limited:
        assert case.note and "workerd" in case.note


def _thrown_messages(case: Any) -> list[str]:
    """The messages a case's over-limit workers throw (JS only: nothing travels over HTTP)."""
    return [
        b.message
        for b in case.workers.values()
        if isinstance(b, OverLimit) and b.message is not None
    ]


def test_only_js_cases_are_the_recording_ones_and_an_unknown_thrown_wording_and_say_why() -> None:
    limited = [case for case in load_cases() if case.only == ["js"]]
    assert limited, "the corpus shows the dispatcher recording each request"
    recording = [case for case in limited if case.analytics is not None]
    for case in limited:
        assert case.note, case.name
        if case not in recording:
            assert _thrown_messages(case), case.name
    for case in recording:
        assert case.analytics in ("record", "throw"), case.name
        assert case.expect.data_points is not None, case.name
    assert {case.analytics for case in recording} == {"record", "throw"}


def test_every_public_over_limit_wording_has_a_case_and_so_has_an_unknown_one() -> None:
    source = (REPO_ROOT / "code24ctl" / "dispatch" / "dispatcher.js").read_text("utf-8")
    listed = re.search(r"^const OVER_LIMIT_WORDINGS = \[(.*)\];$", source, re.MULTILINE)
    assert listed is not None, "dispatcher.js has no one-line OVER_LIMIT_WORDINGS"
    wordings = json.loads(f"[{listed.group(1)}]")
    verdicts: dict[str, str] = {}
    for case in load_cases():
        for message in _thrown_messages(case):
            reason = case.expect.headers.get("x-code24-fallback-reason")
            verdicts[message] = str(reason)
    for wording in wordings:
        assert any(
            wording in message.lower() and reason == "worker_over_limit"
            for message, reason in verdicts.items()
        ), f"no corpus case throws {wording!r}"
    unknown = [m for m in verdicts if not any(w in m.lower() for w in wordings)]
    assert unknown and all(verdicts[m] == "worker_error" for m in unknown)


def test_every_case_sends_its_name_as_request_id_unless_it_tests_ids() -> None:
    for case in load_cases():
        sent = case.http_request().header("x-request-id")
        if not case.name.startswith("request_id_") and case.name != "headers_on_dispatched_answer":
            assert sent == case.name, case.name


# --- Loader behaviour on small corpora ------------------------------------------------------

_DEFAULTS = """
defaults:
  environment: test-env
  table:
    version: 1
    max_body_bytes: 100
    max_json_check_bytes: 50
    routes:
      - {prefix: /a, worker: alpha, strip: /a}
    workers:
      alpha: {timeout_ms: 1000, fallback: null, fallback_status: 200}
"""


def _load(tmp_path: Path, cases_yaml: str) -> list[Case]:
    path = tmp_path / "cases.yaml"
    path.write_text(_DEFAULTS + "cases:\n" + textwrap.indent(textwrap.dedent(cases_yaml), "  "))
    return load_cases(path)


def test_unknown_keys_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="expected_status"):
        _load(
            tmp_path,
            """
            - name: c
              rule: D1
              request: {target: /a}
              expect: {status: 200}
              expected_status: 200
            """,
        )


def test_unknown_behaviour_keys_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="delay"):
        _load(
            tmp_path,
            """
            - name: c
              rule: D4
              workers: {alpha: {behaviour: echo, delay: 5}}
              request: {target: /a}
              expect: {status: 200}
            """,
        )


def test_duplicate_names_are_errors(tmp_path: Path) -> None:
    one = """
    - name: same
      rule: D1
      request: {target: /a}
      expect: {status: 200}
    """
    with pytest.raises(ValueError, match="'same' is used twice"):
        _load(tmp_path, one + one)


def test_workers_must_be_routed(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no route uses: \['beta'\]"):
        _load(
            tmp_path,
            """
            - name: c
              rule: D1
              workers: {beta: {behaviour: echo}}
              request: {target: /a}
              expect: {status: 200}
            """,
        )


def test_rule_and_name_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"rule '5\.1'"):
        _load(tmp_path, "- {name: c, rule: '5.1', request: {target: /a}, expect: {status: 1}}\n")
    with pytest.raises(ValidationError, match="not snake_case"):
        _load(
            tmp_path,
            "- {name: Bad-Name, rule: D1, request: {target: /a}, expect: {status: 1}}\n",
        )


def test_one_body_kind_only(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="at most one of body, json, body_bytes"):
        _load(
            tmp_path,
            """
            - name: c
              rule: D3
              request: {target: /a, body: x, body_bytes: 3}
              expect: {status: 200}
            """,
        )


def test_table_for_replaces_top_level_keys_and_validates(tmp_path: Path) -> None:
    (case,) = _load(
        tmp_path,
        """
        - name: c
          rule: D4
          table: {max_json_check_bytes: 7}
          request: {target: /a}
          expect: {status: 200}
        """,
    )
    table = case.table_for()
    assert table["max_json_check_bytes"] == 7
    assert table["max_body_bytes"] == 100
    assert table["routes"] == [{"prefix": "/a", "worker": "alpha", "strip": "/a"}]
    assert case.environment == "test-env"
    with pytest.raises(ValueError, match="invalid table"):
        _load(
            tmp_path,
            "- {name: c, rule: D1, table: {version: 2}, request: {target: /a}, "
            "expect: {status: 1}}\n",
        )


def test_http_request_bodies_and_headers(tmp_path: Path) -> None:
    json_case, bytes_case, text_case, no_id_case = _load(
        tmp_path,
        """
        - name: j
          rule: D3
          request: {method: POST, target: /a, json: {b: [1, "é"], a: null}}
          expect: {status: 200}
        - name: n
          rule: D3
          request: {method: POST, target: /a, body_bytes: 5, chunked: true}
          expect: {status: 200}
        - name: t
          rule: D3
          request: {target: /a, body: hi, headers: {Content-Type: text/plain, x-request-id: mine}}
          expect: {status: 200}
        - name: none
          rule: D3
          request: {target: /a, headers: {X-Request-Id: null, X-Other: v}}
          expect: {status: 200}
        """,
    )
    req = json_case.http_request()
    assert req.body == '{"b":[1,"é"],"a":null}'.encode()
    assert req.headers == [("X-Request-Id", "j"), ("Content-Type", "application/json")]
    req = bytes_case.http_request()
    assert (req.body, req.chunked, req.method) == (b"aaaaa", True, "POST")
    req = text_case.http_request()
    assert req.headers == [("Content-Type", "text/plain"), ("x-request-id", "mine")]
    assert req.body == b"hi"
    assert no_id_case.http_request().headers == [("X-Other", "v")]


def test_runs_on(tmp_path: Path) -> None:
    limited, everywhere = _load(
        tmp_path,
        """
        - {name: a, rule: D2, only: [python], request: {target: /a}, expect: {status: 400}}
        - {name: b, rule: D2, request: {target: /a}, expect: {status: 400}}
        """,
    )
    assert (limited.runs_on("python"), limited.runs_on("js")) == (True, False)
    assert (everywhere.runs_on("python"), everywhere.runs_on("js")) == (True, True)


# --- The checker ----------------------------------------------------------------------------


def _case(tmp_path: Path, expect: str, request: str = "{target: /a/x}") -> Case:
    (case,) = _load(
        tmp_path,
        f"""
        - name: c
          rule: D4
          request: {request}
          expect: {expect}
        """,
    )
    return case


def _answer(
    status: int = 200, headers: dict[str, str] | None = None, body: Any = None
) -> dict[str, Any]:
    """A well-formed pass-through answer for case ``c``, with overrides."""
    base = {
        "content-type": "application/json",
        "x-code24-worker": "alpha",
        "x-code24-environment": "test-env",
        "x-code24-request-id": "c",
        "x-code24-fallback": "false",
        "x-code24-upstream-status": "200",
        "x-code24-dispatch-ms": "3",
        "x-code24-dispatcher-version": "local",
    }
    base.update(headers or {})
    text = body if isinstance(body, str) else json.dumps({"ok": True} if body is None else body)
    return {"name": "c", "status": status, "headers": base, "body": text}


def test_checker_passes_a_matching_answer(tmp_path: Path) -> None:
    case = _case(
        tmp_path,
        "{status: 200, headers: {X-Code24-Worker: alpha},"
        " headers_absent: [x-code24-fallback-reason],"
        " headers_match: {x-code24-dispatch-ms: '^[0-9]+$'}, json: {ok: true},"
        " json_subset: {ok: true}, json_absent: [missing/key], body_length: 12}",
    )
    assert check(case, _answer()) == []


@pytest.mark.parametrize(
    ("expect", "answer", "problem"),
    [
        ("{status: 201}", _answer(), "status 200, expected 201"),
        ("{status: 200, headers: {x-a: b}}", _answer(), "header x-a: None, expected 'b'"),
        (
            "{status: 200, headers_absent: [X-Code24-Upstream-Status]}",
            _answer(),
            "header X-Code24-Upstream-Status should be absent",
        ),
        (
            "{status: 200, headers_match: {x-code24-dispatch-ms: '^[0-9]{2}$'}}",
            _answer(),
            "does not match",
        ),
        ("{status: 200, json: {ok: false}}", _answer(), "JSON body"),
        ("{status: 200, json: null}", _answer(), "JSON body"),
        ("{status: 200, json_subset: {ok: 1}}", _answer(), "body/ok: True, expected 1"),
        ("{status: 200, json_subset: {nope: 1}}", _answer(), "body/nope is missing"),
        ("{status: 200, json_absent: [ok]}", _answer(), "has 'ok'"),
        ("{status: 200, body: 'x'}", _answer(), "body '{\"ok\": true}', expected 'x'"),
        ("{status: 200, body_length: 3}", _answer(), "body is 12 bytes, expected 3"),
        ("{status: 200, json_subset: {}}", _answer(body="<html>"), "body is not JSON"),
    ],
)
def test_checker_reports_each_expectation(
    tmp_path: Path, expect: str, answer: dict[str, Any], problem: str
) -> None:
    problems = check(_case(tmp_path, expect), answer)
    assert len(problems) == 1, problems
    assert problem in problems[0]


_ENVELOPE = {
    "error": {
        "code": "upstream_html",
        "message": "The worker answered with an HTML page instead of JSON.",
        "worker": "alpha",
        "request_id": "c",
    }
}
_FALLBACK = {"x-code24-fallback": "true", "x-code24-fallback-reason": "upstream_html"}


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (_answer(headers={"x-code24-request-id": "other"}), "expected the client's 'c'"),
        (_answer(headers={"x-code24-environment": "prod"}), "x-code24-environment 'prod'"),
        (
            _answer(headers={"x-code24-dispatcher-version": "forged"}),
            "x-code24-dispatcher-version 'forged', expected 'local'",
        ),
        (_answer(headers={"x-code24-fallback": "yes"}), "expected 'true' or 'false'"),
        (_answer(headers={"x-code24-fallback-reason": "x"}), "x-code24-fallback-reason 'x'"),
        (_answer(headers={"x-code24-dispatch-ms": "3ms"}), "not a number of milliseconds"),
        (
            _answer(502, {**_FALLBACK, "content-type": "text/html"}, _ENVELOPE),
            "content-type 'text/html' on an answer the dispatcher made itself",
        ),
        (
            _answer(502, _FALLBACK, {"error": {**_ENVELOPE["error"], "message": "Oops."}}),
            "message 'Oops.' for upstream_html",
        ),
        (
            _answer(502, _FALLBACK, {"error": {**_ENVELOPE["error"], "request_id": "z"}}),
            "envelope request_id 'z' != header 'c'",
        ),
        (
            _answer(body={"method": "GET", "headers": {"x-code24-request-id": "z"}}),
            "the worker got x-code24-request-id 'z'",
        ),
    ],
)
def test_checker_invariants(tmp_path: Path, answer: dict[str, Any], problem: str) -> None:
    problems = check(_case(tmp_path, "{status: " + str(answer["status"]) + "}"), answer)
    assert len(problems) == 1, problems
    assert problem in problems[0]


def test_checker_invariants_on_refusals(tmp_path: Path) -> None:
    case = _case(tmp_path, "{status: 404}", "{target: /zz, headers: {X-Request-Id: 'not sane!'}}")
    envelope = {
        "error": {
            "code": "route_not_found",
            "message": "No route matches this path.",
            "worker": None,
            "request_id": "0" * 32,
        }
    }
    good = {
        "content-type": "application/json",
        "x-code24-request-id": "0" * 32,
        "x-code24-environment": "test-env",
        "x-code24-dispatcher-version": "local",
    }
    answer = {"name": "c", "status": 404, "headers": good, "body": json.dumps(envelope)}
    assert check(case, answer) == []
    answer["headers"] = {**good, "x-code24-request-id": "not sane!"}
    assert any("is not a new id" in p for p in check(case, answer))
    answer["headers"] = {**good, "x-code24-fallback": "false"}
    assert check(case, answer) == ["x-code24-fallback on an answer no worker was asked for"]


def test_checker_reports_a_harness_error(tmp_path: Path) -> None:
    answer = {"name": "c", "status": 0, "headers": {}, "body": "", "error": "ECONNRESET"}
    assert check(_case(tmp_path, "{status: 200}"), answer) == [
        "the harness got no answer: ECONNRESET"
    ]
