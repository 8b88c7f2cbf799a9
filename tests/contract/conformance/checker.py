"""Compare an actual dispatcher answer with a conformance case.

``check(case, actual)`` returns a list of problems (empty = pass). ``actual`` is what a harness
saw: ``{name, status, headers (names lowercased), body (text)}`` (extra keys such as
``elapsed_ms`` or ``error`` are allowed and ignored, except that ``error`` is reported).

Besides the case's own ``expect``, every answer is held to invariants of docs/dispatch.md (D6,
D7) that no case should have to repeat:

- ``X-Code24-Request-Id`` and ``X-Code24-Environment`` are on every answer; the id is the
  client's ``X-Request-Id`` when that was sane, else 32 lowercase hex digits.
- ``X-Code24-Dispatcher-Version`` is ``local`` on every answer (serve's value, and the id of the
  version metadata binding the JS harness gives the dispatcher).
- A dispatched answer (``X-Code24-Worker`` present) has ``X-Code24-Fallback: true|false``,
  ``X-Code24-Fallback-Reason`` exactly when true, and a numeric ``X-Code24-Dispatch-Ms``.
  Refusals (no worker header) have none of the fallback or upstream headers.
- Answers the dispatcher makes itself (refusals and fallbacks) are ``application/json``; when
  they are the error envelope, its message is the fixed sentence for its code and its
  ``request_id`` equals the header.
- An echo worker's view of ``X-Code24-Request-Id`` equals the answer's header (D3).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from code24ctl.dispatch.routing import LOCAL_DISPATCHER_VERSION
from tests.contract.conformance.corpus import SANE_REQUEST_ID, Case

MESSAGES = {
    "route_not_found": "No route matches this path.",
    "bad_path": "The request path is not allowed.",
    "payload_too_large": "The request body is larger than the dispatcher accepts.",
    "worker_not_found": "The worker is not deployed in the namespace.",
    "worker_error": "The worker failed before answering.",
    "worker_timeout": "The worker did not answer in time.",
    "worker_over_limit": "The worker exceeded its CPU or subrequest limit.",
    "upstream_html": "The worker answered with an HTML page instead of JSON.",
    "upstream_not_json": "The worker answered with something other than JSON.",
    "internal_error": "The dispatcher failed unexpectedly.",
}
GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")
DISPATCH_MS = re.compile(r"^[0-9]+(\.[0-9]+)?$")
_MISSING = object()


class Actual(BaseModel):
    """One answer as a harness saw it."""

    model_config = ConfigDict(extra="allow")

    name: str
    status: int
    headers: dict[str, str]
    body: str
    error: str | None = None


def check(case: Case, actual: Actual | Mapping[str, Any]) -> list[str]:
    """Every way ``actual`` differs from what ``case`` expects (empty list = pass)."""
    got = actual if isinstance(actual, Actual) else Actual.model_validate(dict(actual))
    headers = {k.lower(): v for k, v in got.headers.items()}
    problems: list[str] = []
    if got.error:
        problems.append(f"the harness got no answer: {got.error}")
        return problems

    exp = case.expect
    if got.status != exp.status:
        problems.append(f"status {got.status}, expected {exp.status}")
    for name, want in exp.headers.items():
        have = headers.get(name.lower())
        if have != want:
            problems.append(f"header {name}: {have!r}, expected {want!r}")
    for name in exp.headers_absent:
        if name.lower() in headers:
            problems.append(f"header {name} should be absent, is {headers[name.lower()]!r}")
    for name, pattern in exp.headers_match.items():
        have = headers.get(name.lower())
        if have is None or not re.search(pattern, have):
            problems.append(f"header {name}: {have!r} does not match {pattern!r}")
    if exp.body is not None and got.body != exp.body:
        problems.append(f"body {_short(got.body)!r}, expected {_short(exp.body)!r}")
    if exp.body_length is not None and len(got.body.encode()) != exp.body_length:
        problems.append(f"body is {len(got.body.encode())} bytes, expected {exp.body_length}")

    body_json = _parse(got.body)
    wants_json = exp.has_json or exp.json_subset is not None or bool(exp.json_absent)
    if wants_json and body_json is _MISSING:
        problems.append(f"body is not JSON: {_short(got.body)!r}")
    elif wants_json:
        if exp.has_json and body_json != exp.json_value:
            problems.append(f"JSON body {_short(got.body)!r}, expected {exp.json_value!r}")
        if exp.json_subset is not None:
            problems.extend(_subset(exp.json_subset, body_json, "body"))
        for path in exp.json_absent:
            if _lookup(body_json, path) is not _MISSING:
                problems.append(f"JSON body has {path!r}, which should be absent")

    problems.extend(_invariants(case, got.status, headers, body_json))
    problems.extend(_recording(case, got))
    return problems


def _recording(case: Case, got: Actual) -> list[str]:
    """The data points and log lines a recording case expects (JS harness output)."""
    exp = case.expect
    problems: list[str] = []
    if exp.data_points is not None:
        have = getattr(got, "data_points", None)
        if not isinstance(have, list):
            return ["the harness reported no data points"]
        if len(have) != len(exp.data_points):
            problems.append(f"{len(have)} data points written, expected {len(exp.data_points)}")
        for i, (want, point) in enumerate(zip(exp.data_points, have, strict=False)):
            if not isinstance(point, dict):
                problems.append(f"data point {i}: {point!r} is not an object")
                continue
            for key in ("indexes", "blobs"):
                if point.get(key) != getattr(want, key):
                    problems.append(
                        f"data point {i} {key} {point.get(key)!r}, expected {getattr(want, key)!r}"
                    )
            doubles = point.get("doubles")
            if not isinstance(doubles, list) or len(doubles) != len(want.doubles):
                problems.append(f"data point {i} doubles {doubles!r}, expected {want.doubles!r}")
                continue
            for k, (w, h) in enumerate(zip(want.doubles, doubles, strict=True)):
                if w is None and not (isinstance(h, int | float) and h >= 0):
                    problems.append(f"data point {i} double{k + 1} {h!r} is not a number >= 0")
                elif w is not None and h != w:
                    problems.append(f"data point {i} double{k + 1} {h!r}, expected {w!r}")
    logs = getattr(got, "logs", None) or []
    for pattern in exp.logs_match:
        if not any(re.search(pattern, line) for line in logs):
            problems.append(f"no log line matches {pattern!r} (lines: {logs!r})")
    return problems


def _invariants(case: Case, status: int, headers: dict[str, str], body: Any) -> list[str]:
    problems: list[str] = []
    rid = headers.get("x-code24-request-id")
    sent = case.http_request().header("x-request-id")
    if rid is None:
        problems.append("x-code24-request-id is missing")
    elif sent is not None and SANE_REQUEST_ID.match(sent):
        if rid != sent:
            problems.append(f"x-code24-request-id {rid!r}, expected the client's {sent!r}")
    elif not GENERATED_ID.match(rid):
        problems.append(f"x-code24-request-id {rid!r} is not a new id (32 lowercase hex)")
    version = headers.get("x-code24-dispatcher-version")
    if version != LOCAL_DISPATCHER_VERSION:
        problems.append(
            f"x-code24-dispatcher-version {version!r}, expected {LOCAL_DISPATCHER_VERSION!r}"
        )
    env = headers.get("x-code24-environment")
    if env != case.environment:
        problems.append(f"x-code24-environment {env!r}, expected {case.environment!r}")

    dispatched = "x-code24-worker" in headers
    fallback = headers.get("x-code24-fallback")
    if dispatched:
        if fallback not in ("true", "false"):
            problems.append(f"x-code24-fallback {fallback!r}, expected 'true' or 'false'")
        reason = headers.get("x-code24-fallback-reason")
        if (fallback == "true") != (reason is not None):
            problems.append(
                f"x-code24-fallback-reason {reason!r} with x-code24-fallback {fallback!r}"
            )
        ms = headers.get("x-code24-dispatch-ms")
        if ms is None or not DISPATCH_MS.match(ms):
            problems.append(f"x-code24-dispatch-ms {ms!r} is not a number of milliseconds")
    else:
        for name in ("x-code24-fallback", "x-code24-fallback-reason", "x-code24-upstream-status"):
            if name in headers:
                problems.append(f"{name} on an answer no worker was asked for")

    made_here = not dispatched or fallback == "true"
    if made_here:
        ctype = headers.get("content-type")
        if ctype != "application/json":
            problems.append(f"content-type {ctype!r} on an answer the dispatcher made itself")
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and "code" in error:
            want = MESSAGES.get(error["code"])
            if want is None:
                problems.append(f"unknown error code {error['code']!r}")
            elif error.get("message") != want:
                problems.append(f"message {error.get('message')!r} for {error['code']}")
            if error.get("request_id") != rid:
                problems.append(
                    f"envelope request_id {error.get('request_id')!r} != header {rid!r}"
                )

    echoed = body.get("headers") if isinstance(body, dict) and "method" in body else None
    if isinstance(echoed, dict) and not made_here:
        seen = echoed.get("x-code24-request-id")
        if seen != rid:
            problems.append(f"the worker got x-code24-request-id {seen!r}, the answer says {rid!r}")
    return problems


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return _MISSING


def _subset(want: Any, have: Any, where: str) -> list[str]:
    """Every key of ``want`` (recursively, for dicts) is in ``have`` with an equal value."""
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return [f"{where}: {have!r} is not an object"]
        problems: list[str] = []
        for key, value in want.items():
            if key not in have:
                problems.append(f"{where}/{key} is missing")
            else:
                problems.extend(_subset(value, have[key], f"{where}/{key}"))
        return problems
    if want != have or type(want) is not type(have):
        return [f"{where}: {_short(repr(have))}, expected {want!r}"]
    return []


def _lookup(doc: Any, path: str) -> Any:
    node = doc
    for part in path.split("/"):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"
