"""The pure dispatch rules (code24ctl/dispatch/routing.py, route_table.py, answers.py), one
value at a time."""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path
from typing import Any

import pytest

from code24ctl.config import resolve_config
from code24ctl.dispatch import classify, routing
from code24ctl.dispatch.answers import (
    ERROR_MESSAGES,
    ERROR_STATUS,
    Reason,
    error_envelope,
    fallback_answer,
    refusal_answer,
)
from code24ctl.dispatch.route_table import Route, RouteTable, WorkerPolicy, match_route
from code24ctl.dispatch.routing import (
    body_too_large,
    bytes_to_judge,
    choose_request_id,
    dispatch_headers,
    dispatch_options,
    format_dispatch_ms,
    forward_request_headers,
    forward_response_headers,
    forwarded_target,
    is_bad_path,
    judge_answer,
    new_request_id,
    prefix_matches,
    refusal_headers,
    split_target,
    strip_path,
)
from code24ctl.dispatch.table import compile_route_table
from tests.support.cli import REPO_CONFIG, REPO_ROOT
from tests.support.staging import write_config

ROUTES = (
    Route("/api/competitive/deep", "deep", "/api/competitive/deep"),
    Route("/api/competitive", "competitive-analysis", "/api/competitive"),
    Route("/elite/brand", "brand-worker", "/elite"),
    Route("/api", "api-root", "/api"),
)


# --- The table ------------------------------------------------------------------------------


def test_table_from_the_repo_config() -> None:
    resolved = resolve_config(REPO_CONFIG, "local")
    table = RouteTable.from_document(compile_route_table(resolved.config))
    assert [(r.prefix, r.worker, r.strip) for r in table.routes] == [
        ("/api/competitive", "competitive-analysis", "/api/competitive"),
        ("/elite/develop", "developer-worker", "/elite"),
        ("/elite/design", "designer-worker", "/elite"),
        ("/elite/brand", "brand-worker", "/elite"),
        ("/api/market", "market-research", "/api/market"),
    ]
    assert table.max_body_bytes == 10485760
    assert table.max_json_check_bytes == 1048576
    designer = table.policy("designer-worker")
    assert designer.timeout_ms == 30000
    assert designer.fallback_status == 200
    assert designer.fallback == {
        "status": "degraded",
        "worker": "designer-worker",
        "design": None,
        "message": "Design generation is temporarily unavailable; retry later.",
    }


def test_table_normalises_and_sorts_routes() -> None:
    table = RouteTable.from_document(
        {
            "version": 1,
            "routes": [
                {"prefix": "/api/", "worker": "a", "strip": "/api/"},
                {"prefix": "/api/x", "worker": "b"},
                {"prefix": "/", "worker": "root", "strip": "/"},
            ],
            "workers": {"a": {"timeout_ms": 5}, "b": None},
        }
    )
    assert table.routes == (
        Route("/api/x", "b", "/api/x"),
        Route("/api", "a", "/api"),
        Route("", "root", ""),
    )
    assert table.policy("a") == WorkerPolicy(timeout_ms=5, fallback=None, fallback_status=200)
    assert table.policy("b") == WorkerPolicy()
    assert table.policy("unlisted") == WorkerPolicy(30000, None, 200)
    assert (table.max_body_bytes, table.max_json_check_bytes) == (10485760, 1048576)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"version": 2, "routes": []}, "route table version 2 is not 1"),
        ({"version": 1, "routes": "x"}, "route table 'routes' is not a list"),
        ({"version": 1, "routes": [{"prefix": "api", "worker": "w"}]}, "route 0: prefix must"),
        ({"version": 1, "routes": [{"prefix": None, "worker": "w"}]}, "route 0: prefix must"),
        ({"version": 1, "routes": [{"prefix": "/a", "worker": ""}]}, "route 0: worker must"),
        ({"version": 1, "routes": [], "workers": {"w": {"timeout_ms": 0}}}, "timeout_ms must"),
        ({"version": 1, "routes": [], "workers": {"w": {"fallback_status": 700}}}, "200-599"),
        ({"version": 1, "routes": [], "max_body_bytes": -1}, "'max_body_bytes' must be"),
        ({"version": 1, "routes": [], "max_body_bytes": True}, "'max_body_bytes' must be"),
    ],
)
def test_table_problems_are_named(document: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RouteTable.from_document(document)


# --- Paths ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/a/b?x=1&y", ("/a/b", "x=1&y")),
        ("/a/b", ("/a/b", "")),
        ("/a/b?", ("/a/b", "")),
        ("/a?x=?y", ("/a", "x=?y")),
        ("/a#frag?x", ("/a", "")),
    ],
)
def test_split_target(target: str, expected: tuple[str, str]) -> None:
    assert split_target(target) == expected


@pytest.mark.parametrize(
    "target",
    [
        "/api/../x",
        "/api/./x",
        "/api/x/..",
        "/api/%2e%2e/x",
        "/api/%2E%2E/x",
        "/api/.%2e/x",
        "/api/%2e./x",
        "/api/%2e/x",
        "/api/a%2Fb",
        "/api/a%2fb",
        "/api/a%5Cb",
        "/api/a%5cb",
        "/api/a\\b",
        "http://example.com/api/x",
        "*",
        "",
        "api/x",
    ],
)
def test_bad_paths(target: str) -> None:
    assert is_bad_path(target) is True


@pytest.mark.parametrize(
    "target",
    [
        "/api/x",
        "/",
        "//api",
        "/api/.well-known/x",
        "/api/report..v2/...",
        "/api/%2e%2e%2e",
        "/api/a%20b",
        "/api/x?next=../up&p=%2F%5C",  # the query is the worker's business
    ],
)
def test_good_paths(target: str) -> None:
    assert is_bad_path(target) is False


@pytest.mark.parametrize(
    ("path", "worker"),
    [
        ("/api/competitive", "competitive-analysis"),
        ("/api/competitive/", "competitive-analysis"),
        ("/api/competitive/x/y", "competitive-analysis"),
        ("/api/competitive-x", "api-root"),
        ("/api/competitive/deep", "deep"),
        ("/api/competitive/deeper", "competitive-analysis"),
        ("/api/competitive/deep/x", "deep"),
        ("/api", "api-root"),
        ("/elite/brand/create", "brand-worker"),
        ("/api/compet%69tive/x", "api-root"),
        ("/elite", None),
        ("/elite/brandx", None),
        ("/API/competitive", None),
        ("/", None),
    ],
)
def test_match_route_longest_on_segment_boundary(path: str, worker: str | None) -> None:
    route = match_route(ROUTES, path)
    assert (route.worker if route else None) == worker
    # The order of the table does not matter.
    reverse = match_route(tuple(reversed(ROUTES)), path)
    assert (reverse.worker if reverse else None) == worker


def test_indexed_match_is_the_longest_prefix_scan_on_random_tables() -> None:
    # The index must give what the plain scan over every route gave, on any table and path.
    rng = random.Random(14)
    segments = ["a", "b", "ab", "%41", "", "c.d"]
    for _ in range(300):
        prefixes = {
            "/" + "/".join(rng.choice(segments) for _ in range(rng.randint(1, 3)))
            for _ in range(rng.randint(0, 12))
        }
        routes = [Route(p, f"w{i}", p) for i, p in enumerate(sorted(prefixes))]
        if rng.random() < 0.3:
            routes.append(Route("", "root", ""))
        rng.shuffle(routes)
        table = RouteTable(routes=tuple(routes))
        for _ in range(20):
            path = "/" + "/".join(rng.choice(segments) for _ in range(rng.randint(0, 4)))
            matching = [r for r in routes if prefix_matches(path, r.prefix)]
            expected = max(matching, key=lambda r: len(r.prefix)) if matching else None
            assert match_route(table.index, path) == expected, (path, routes)


def test_root_prefix_matches_everything() -> None:
    assert match_route((Route("", "root", ""),), "/anything/at/all") == Route("", "root", "")
    assert match_route((Route("", "root", ""), *ROUTES), "/elite/x") == Route("", "root", "")
    assert match_route((Route("", "root", ""), *ROUTES), "/api/x") == ROUTES[3]


def test_catch_all_route_from_the_config(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        lambda data: data["routes"].insert(0, {"prefix": "/", "worker": "developer-worker"}),
    )
    table = RouteTable.from_document(compile_route_table(resolve_config(path, "local").config))
    catch_all = table.routes[-1]
    assert catch_all == Route("", "developer-worker", "")
    assert match_route(table.routes, "/anything") == catch_all
    assert forwarded_target(catch_all, "/anything", "q=1") == "/anything?q=1"


@pytest.mark.parametrize(
    ("path", "strip", "expected"),
    [
        ("/api/competitive/analyze-industry", "/api/competitive", "/analyze-industry"),
        ("/api/competitive", "/api/competitive", "/"),
        ("/api/competitive/", "/api/competitive", "/"),
        ("/elite/brand/create", "/elite", "/brand/create"),
        ("/keep/x", "", "/keep/x"),
        ("/elitex/y", "/elite", "/elitex/y"),
    ],
)
def test_strip_path(path: str, strip: str, expected: str) -> None:
    assert strip_path(path, strip) == expected


def test_forwarded_target_keeps_the_query_byte_for_byte() -> None:
    route = Route("/api/market", "market-research", "/api/market")
    assert forwarded_target(route, "/api/market", "q=a%20b&x=../y") == "/?q=a%20b&x=../y"
    assert forwarded_target(route, "/api/market/r", "") == "/r"


@pytest.mark.parametrize(
    ("declared", "expected"),
    [(None, False), ("1024", False), ("1025", True), (" 2048 ", True), ("nope", False)],
)
def test_body_too_large(declared: str | None, expected: bool) -> None:
    assert body_too_large(declared, 1024) is expected


# --- Headers --------------------------------------------------------------------------------


def test_forward_request_headers() -> None:
    incoming = [
        ("Host", "127.0.0.1:8787"),
        ("Connection", "keep-alive, X-Hop"),
        ("Keep-Alive", "timeout=5"),
        ("X-Hop", "secret"),
        ("TE", "trailers"),
        ("Transfer-Encoding", "chunked"),
        ("Upgrade", "h2c"),
        ("Proxy-Authorization", "Basic eDp5"),
        ("X-Code24-Worker", "forged"),
        ("x-code24-request-id", "forged"),
        ("Cloudflare-Workers-Version-Overrides", 'w="dc8dcd28-271b-4367-9840-6c244f84cb40"'),
        ("cloudflare-workers-version-key", "pinned"),
        ("Accept", "application/json"),
        ("Cookie", "a=1"),
        ("Cookie", "b=2"),
        ("X-Request-Id", "req-1"),
    ]
    assert forward_request_headers(incoming, "req-1") == [
        ("Host", "127.0.0.1:8787"),
        ("Accept", "application/json"),
        ("Cookie", "a=1"),
        ("Cookie", "b=2"),
        ("X-Request-Id", "req-1"),
        ("X-Code24-Request-Id", "req-1"),
    ]


def test_forward_response_headers() -> None:
    answer = [
        ("Content-Type", "application/json"),
        ("Transfer-Encoding", "chunked"),
        ("Connection", "close"),
        ("X-Code24-Worker", "impostor"),
        ("X-Code24-Extra", "x"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("Cache-Control", "no-store"),
    ]
    assert forward_response_headers(answer) == [
        ("Content-Type", "application/json"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("Cache-Control", "no-store"),
    ]


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        ("run-7f3a:step.2", "run-7f3a:step.2"),
        ("Req.42:abc_DEF-9", "Req.42:abc_DEF-9"),
        ("a" * 128, "a" * 128),
        ("a" * 129, "fresh"),
        ("bad id", "fresh"),
        ("x/y", "fresh"),
        ("", "fresh"),
        (None, "fresh"),
        ("ok\n", "fresh"),
    ],
)
def test_choose_request_id(client: str | None, expected: str) -> None:
    assert choose_request_id(client, new_id=lambda: "fresh") == expected


def test_new_request_id_is_32_lowercase_hex() -> None:
    first, second = new_request_id(), new_request_id()
    assert len(first) == 32
    assert set(first) <= set("0123456789abcdef")
    assert first != second


@pytest.mark.parametrize(
    ("ms", "text"), [(0.0, "0"), (1.0, "1"), (1.234, "1.23"), (12.5, "12.5"), (-3.0, "0")]
)
def test_format_dispatch_ms(ms: float, text: str) -> None:
    assert format_dispatch_ms(ms) == text


def test_dispatch_headers_pass_through() -> None:
    assert dispatch_headers(
        worker="competitive-analysis",
        environment="local",
        request_id="r1",
        fallback_reason=None,
        upstream_status=200,
        dispatch_ms=1.5,
    ) == [
        ("X-Code24-Worker", "competitive-analysis"),
        ("X-Code24-Environment", "local"),
        ("X-Code24-Request-Id", "r1"),
        ("X-Code24-Fallback", "false"),
        ("X-Code24-Dispatcher-Version", "local"),
        ("X-Code24-Upstream-Status", "200"),
        ("X-Code24-Dispatch-Ms", "1.5"),
    ]


def test_dispatch_headers_fallback_without_answer() -> None:
    assert dispatch_headers(
        worker="w",
        environment="staging",
        request_id="r2",
        fallback_reason="worker_timeout",
        upstream_status=None,
        dispatch_ms=300.0,
    ) == [
        ("X-Code24-Worker", "w"),
        ("X-Code24-Environment", "staging"),
        ("X-Code24-Request-Id", "r2"),
        ("X-Code24-Fallback", "true"),
        ("X-Code24-Dispatcher-Version", "local"),
        ("X-Code24-Fallback-Reason", "worker_timeout"),
        ("X-Code24-Dispatch-Ms", "300"),
    ]


def test_refusal_headers() -> None:
    assert refusal_headers("local", "r3") == [
        ("Content-Type", "application/json"),
        ("X-Code24-Request-Id", "r3"),
        ("X-Code24-Environment", "local"),
        ("X-Code24-Dispatcher-Version", "local"),
    ]


# --- Judging the answer ---------------------------------------------------------------------

LIMIT = 1024


@pytest.mark.parametrize(
    ("status", "content_type", "length", "method", "need"),
    [
        (204, None, None, "GET", None),
        (304, "application/json", None, "GET", None),
        (200, "application/json", None, "HEAD", None),
        (200, "application/json", 1025, "GET", None),
        (200, "application/json", 1024, "GET", 1024),
        (200, "application/problem+json; charset=utf-8", None, "GET", 1024),
        (200, "text/html", None, "GET", 0),
        (200, "application/xhtml+xml", 10, "GET", 0),
        (200, "text/plain", None, "GET", 1024),
        (200, None, 5, "GET", 1024),
    ],
)
def test_bytes_to_judge(
    status: int, content_type: str | None, length: int | None, method: str, need: int | None
) -> None:
    got = bytes_to_judge(status, content_type, length, method=method, max_json_check_bytes=LIMIT)
    assert got == need


@pytest.mark.parametrize(
    ("status", "content_type", "body", "complete", "method", "reason"),
    [
        (200, "application/json", b'{"ok": true}', True, "GET", None),
        (500, "application/json", b'{"error": "x"}', True, "GET", None),
        (422, "application/problem+json", b"{}", True, "GET", None),
        (200, "application/json; charset=utf-8", b" [1] ", True, "GET", None),
        (204, None, b"", True, "GET", None),
        (304, "text/html", b"", True, "GET", None),
        (200, "application/json", b"", False, "HEAD", None),
        (200, "application/json", b'{"broken": tr', False, "GET", None),
        (200, "application/json", b'{"broken": tr', True, "GET", "upstream_not_json"),
        (200, "application/json", b"", True, "GET", "upstream_not_json"),
        (200, "application/json", b'{"a": NaN}', True, "GET", "upstream_not_json"),
        (200, "application/json", b"<!doctype html><p>x", True, "GET", "upstream_html"),
        (200, "text/html", b"", False, "GET", "upstream_html"),
        (502, "application/xhtml+xml", b"<?xml?>", False, "GET", "upstream_html"),
        (200, "text/plain", b"\n  <HTML><body>", False, "GET", "upstream_html"),
        (200, None, b"<!DOCTYPE html>", True, "GET", "upstream_html"),
        (404, "text/plain", b"error code: 1042", True, "GET", "upstream_not_json"),
        (503, "text/plain", b"error code: 1102", True, "GET", "worker_over_limit"),
        (503, None, b"\n error code: 1102\n", True, "GET", "worker_over_limit"),
        (503, "application/json", b"error code: 1102", True, "GET", "upstream_not_json"),
        (503, "text/html", b"", False, "GET", "upstream_html"),
        (200, "text/plain", b'{"ok": true}', True, "GET", "upstream_not_json"),
        (200, None, b'{"ok": true}', True, "GET", "upstream_not_json"),
        (200, None, b"", True, "GET", "upstream_not_json"),
        (200, "text/plain", b"", True, "HEAD", "upstream_not_json"),
    ],
)
def test_judge_answer(
    status: int,
    content_type: str | None,
    body: bytes,
    complete: bool,
    method: str,
    reason: str | None,
) -> None:
    judgement = judge_answer(status, content_type, body, complete=complete, method=method)
    assert judgement.reason == reason
    assert judgement.passes is (reason is None)


# --- Answers the dispatcher makes -----------------------------------------------------------


def test_error_envelope_and_statuses() -> None:
    assert error_envelope("worker_error", "brand-worker", "r4") == {
        "error": {
            "code": "worker_error",
            "message": "The worker failed before answering.",
            "worker": "brand-worker",
            "request_id": "r4",
        }
    }
    assert dict(ERROR_STATUS) == {
        "route_not_found": 404,
        "bad_path": 400,
        "payload_too_large": 413,
        "worker_not_found": 502,
        "worker_error": 502,
        "worker_timeout": 504,
        "worker_over_limit": 500,
        "upstream_html": 502,
        "upstream_not_json": 502,
        "internal_error": 500,
    }
    assert set(ERROR_MESSAGES) == set(ERROR_STATUS)


def test_fallback_answer_uses_the_configured_fallback() -> None:
    policy = WorkerPolicy(30000, {"brand": None, "note": "café"}, 503)
    status, body = fallback_answer(policy, "upstream_html", "brand-worker", "r5")
    assert status == 503
    assert body == '{"brand":null,"note":"café"}'.encode()


@pytest.mark.parametrize(("reason", "status"), [("worker_timeout", 504), ("upstream_html", 502)])
def test_fallback_answer_without_fallback_is_the_envelope(reason: Reason, status: int) -> None:
    got_status, body = fallback_answer(WorkerPolicy(), reason, "w", "r6")
    assert got_status == status
    envelope = {
        "code": reason,
        "message": ERROR_MESSAGES[reason],
        "worker": "w",
        "request_id": "r6",
    }
    assert json.loads(body) == {"error": envelope}


def test_refusal_answer() -> None:
    status, body = refusal_answer("route_not_found", None, "r7")
    assert status == 404
    assert body == (
        b'{"error":{"code":"route_not_found","message":"No route matches this path.",'
        b'"worker":null,"request_id":"r7"}}'
    )


# --- Dispatch options (what the JavaScript dispatcher passes to DISPATCHER.get) -------------

_OPTIONS_TABLE: dict[str, Any] = {
    "version": 1,
    "routes": [{"prefix": "", "worker": "w"}, {"prefix": "/api/x", "worker": "x"}],
    "workers": {"w": {"limits": {"subrequests": 3}}},
    "outbound_params": ["environment", "worker", "route"],
}


def test_dispatch_options_carry_limits_and_the_named_outbound_values() -> None:
    table = RouteTable.from_document(_OPTIONS_TABLE)
    catch_all, api = sorted(table.routes, key=lambda r: r.prefix)
    assert dispatch_options(table, catch_all, environment="prod", request_id="r1") == {
        "limits": {"subRequests": 3},
        "outbound": {"environment": "prod", "worker": "w", "route": "/"},
    }
    assert dispatch_options(table, api, environment="prod", request_id="r1") == {
        "outbound": {"environment": "prod", "worker": "x", "route": "/api/x"},
    }
    plain = RouteTable.from_document({"version": 1, "routes": _OPTIONS_TABLE["routes"]})
    assert dispatch_options(plain, api, environment="prod", request_id="r1") == {}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"outbound_params": ["customer"]}, "'outbound_params' must list names from"),
        ({"workers": {"w": {"limits": {"cpu_ms": 0}}}}, "limits.cpu_ms must be a positive"),
        ({"workers": {"w": {"limits": {"memory": 1}}}}, "limits must be a mapping of cpu_ms"),
    ],
)
def test_bad_dispatch_options_in_the_table_are_refused(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        RouteTable.from_document({**_OPTIONS_TABLE, **change})


# --- The JavaScript dispatcher's copy -------------------------------------------------------


def test_the_javascript_dispatcher_has_the_same_defaults_and_sniff_window() -> None:
    """dispatcher.js cannot import them: its constants are held to the Python ones here."""
    source = (REPO_ROOT / "code24ctl" / "dispatch" / "dispatcher.js").read_text(encoding="utf-8")
    expected = {
        "DEFAULT_MAX_BODY_BYTES": routing.DEFAULT_MAX_BODY_BYTES,
        "DEFAULT_MAX_JSON_CHECK_BYTES": routing.DEFAULT_MAX_JSON_CHECK_BYTES,
        "DEFAULT_TIMEOUT_MS": routing.DEFAULT_TIMEOUT_MS,
        "DEFAULT_FALLBACK_STATUS": routing.DEFAULT_FALLBACK_STATUS,
        "SNIFF_BYTES": classify.SNIFF_BYTES,
    }
    found = {}
    for name in expected:
        match = re.search(rf"^const {name} = ([0-9 *]+);$", source, re.MULTILINE)
        assert match is not None, f"dispatcher.js has no plain 'const {name} = ...;'"
        found[name] = math.prod(int(factor) for factor in match.group(1).split("*"))
    assert found == expected
