"""The dispatch rules of docs/dispatch.md (D1-D7) as pure functions (no I/O, no clock, no randomness
unless asked for).

``code24ctl serve`` is built on these; the JavaScript dispatcher implements the same rules and the
conformance corpus (tests/contract/conformance/cases.yaml) holds both to them. Each rule lives in
one place: the route table and its lookup (D1) in :mod:`code24ctl.dispatch.route_table`, the
answers the dispatcher makes itself (D5, D7) in :mod:`code24ctl.dispatch.answers`, the answer
classifier (D4) in :mod:`code24ctl.dispatch.classify`, the rest here. The order a dispatcher
applies them in:

1. :func:`is_bad_path` on the raw request target (D2, 400 ``bad_path``);
2. :func:`~code24ctl.dispatch.route_table.match_route` on the raw path (D1, 404
   ``route_not_found``);
3. the body limit, :func:`body_too_large` (D2, 413 ``payload_too_large``);
4. forward (D3) to :func:`forwarded_target` with :func:`forward_request_headers` and the id from
   :func:`choose_request_id` (the JavaScript dispatcher also passes :func:`dispatch_options`);
5. judge the answer (D4): :func:`bytes_to_judge` says how much of the body to read first,
   :func:`judge_answer` says pass through or fall back (and why);
6. answer: :func:`~code24ctl.dispatch.answers.fallback_answer` /
   :func:`~code24ctl.dispatch.answers.refusal_answer` (D5, D7), with :func:`dispatch_headers`
   (D6) or :func:`refusal_headers`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from code24ctl.dispatch.answers import Reason
from code24ctl.dispatch.classify import (
    NO_BODY_STATUSES,
    SNIFF_BYTES,
    classify_answer,
    is_html_media_type,
    is_json_media_type,
)
from code24ctl.dispatch.route_table import Route, RouteTable

# Re-exported: the route table's defaults and the prefix rule are part of these rules (the
# tests hold dispatcher.js to routing.DEFAULT_*); they live in route_defaults.py so config can
# share them.
from code24ctl.route_defaults import DEFAULT_FALLBACK_STATUS as DEFAULT_FALLBACK_STATUS
from code24ctl.route_defaults import DEFAULT_MAX_BODY_BYTES as DEFAULT_MAX_BODY_BYTES
from code24ctl.route_defaults import DEFAULT_MAX_JSON_CHECK_BYTES as DEFAULT_MAX_JSON_CHECK_BYTES
from code24ctl.route_defaults import DEFAULT_TIMEOUT_MS as DEFAULT_TIMEOUT_MS
from code24ctl.route_defaults import prefix_matches as prefix_matches

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

# RFC 9110 section 7.6.1: these describe one connection and are never forwarded (the names
# listed in a Connection header are hop-by-hop too).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
METADATA_PREFIX = "x-code24-"
# A client must not pick a user Worker's version (versioning/version-affinity: "Delete any
# Cloudflare-Workers-Version-Overrides and Cloudflare-Workers-Version-Key headers from the
# incoming request before doing anything else").
VERSION_HEADERS = frozenset(
    {"cloudflare-workers-version-overrides", "cloudflare-workers-version-key"}
)
# A Worker reached over HTTP reports an exceeded CPU or memory limit as Cloudflare error 1102
# (support/troubleshooting/http-status-codes/cloudflare-1xxx-errors/error-1102); to a client
# that is not a browser the answer is the plain text "error code: 1102".
OVER_LIMIT_BODY = b"error code: 1102"
REQUEST_ID_HEADER = "X-Code24-Request-Id"
# Dropped from every forwarded request (built once, not per request).
_NEVER_FORWARDED = HOP_BY_HOP | VERSION_HEADERS

_DOT_SEGMENT = re.compile(r"^(?:\.|%2e){1,2}$", re.IGNORECASE)
_ENCODED_SEPARATOR = re.compile(r"%2f|%5c", re.IGNORECASE)


# ------------------------------------------------------------------------------------------
# Paths (D1 and D2), always on the raw, still percent-encoded request target


def split_target(target: str) -> tuple[str, str]:
    """Split a raw request target into (path, query); the query has no ``?``, the fragment
    (never sent by a conforming client) is dropped."""
    target = target.split("#", 1)[0]
    path, _, query = target.partition("?")
    return path, query


def is_bad_path(target: str) -> bool:
    """Whether a raw request target must be refused with 400 ``bad_path``.

    Refused: a target that does not start with ``/`` (absolute form, ``*``), a backslash, an
    encoded ``/`` or ``\\`` (``%2F``, ``%5C``, any case), or a ``.``/``..`` segment, plain or
    percent-encoded. Only the path counts; the query string is the worker's business.
    """
    path, _ = split_target(target)
    if not path.startswith("/"):
        return True
    if "\\" in path:
        return True
    if "%" not in path:
        if "." not in path:
            return False  # the common case, decided without a regex
    elif _ENCODED_SEPARATOR.search(path):
        return True
    return any(_DOT_SEGMENT.fullmatch(segment) for segment in path.split("/"))


def strip_path(path: str, strip: str) -> str:
    """``path`` without the leading ``strip`` part; never empty (``/`` at least)."""
    rest = path[len(strip) :] if strip and prefix_matches(path, strip) else path
    return rest if rest.startswith("/") else "/" + rest


def forwarded_target(route: Route, path: str, query: str) -> str:
    """The request target the worker sees: stripped path, query string unchanged."""
    stripped = strip_path(path, route.strip)
    return f"{stripped}?{query}" if query else stripped


def body_too_large(content_length: str | None, max_body_bytes: int) -> bool:
    """Whether a declared Content-Length is over the limit (a streamed body is counted as it
    arrives by the caller)."""
    if content_length is None:
        return False
    try:
        return int(content_length.strip()) > max_body_bytes
    except ValueError:
        return False


# ------------------------------------------------------------------------------------------
# Headers (D3 and D6)


def connection_named(headers: Iterable[tuple[str, str]]) -> frozenset[str]:
    """The header names a Connection header lists (lowercased): hop-by-hop for this hop."""
    names: set[str] = set()
    for name, value in headers:
        if name.lower() == "connection":
            names.update(part.strip().lower() for part in value.split(",") if part.strip())
    return frozenset(names)


def forward_request_headers(
    headers: Iterable[tuple[str, str]], request_id: str
) -> list[tuple[str, str]]:
    """The client's headers as the worker gets them.

    Drops hop-by-hop headers (and the ones Connection names), every ``X-Code24-*`` header
    (clients cannot forge dispatcher metadata) and the version headers (clients cannot pick a
    Worker's version); adds ``X-Code24-Request-Id``. Order and repeated headers are kept.
    """
    headers = list(headers)
    named = connection_named(headers)
    dropped = _NEVER_FORWARDED | named if named else _NEVER_FORWARDED
    kept = [
        (name, value)
        for name, value in headers
        if (lower := name.lower()) not in dropped and not lower.startswith(METADATA_PREFIX)
    ]
    kept.append((REQUEST_ID_HEADER, request_id))
    return kept


def forward_response_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The worker's headers as the client gets them on a pass-through: without hop-by-hop
    headers and without any ``X-Code24-*`` header (only the dispatcher sets those)."""
    headers = list(headers)
    dropped = HOP_BY_HOP | connection_named(headers)
    return [
        (name, value)
        for name, value in headers
        if (lower := name.lower()) not in dropped and not lower.startswith(METADATA_PREFIX)
    ]


# uuid4's fixed bits: version 4 (bits 76-79) and the RFC 4122 variant (bits 62-63).
_UUID4_CLEAR = ~((0xF << 76) | (0x3 << 62))
_UUID4_SET = (0x4 << 76) | (0x2 << 62)


def new_request_id() -> str:
    """A fresh request id: uuid4 as 32 lowercase hex characters.

    The same value ``uuid.uuid4().hex`` gives, without building a UUID object (a measurable
    share of a request in serve).
    """
    value = int.from_bytes(os.urandom(16), "big") & _UUID4_CLEAR | _UUID4_SET
    return f"{value:032x}"


def choose_request_id(client_value: str | None, new_id: Callable[[], str] = new_request_id) -> str:
    """The client's ``X-Request-Id`` when it is sane (``^[A-Za-z0-9._:-]{1,128}$``), else a new
    id."""
    if client_value is not None and REQUEST_ID_RE.fullmatch(client_value):
        return client_value
    return new_id()


# D6: every answer names the dispatcher version that made it, so a probe can tell whether a
# version override was applied. ``serve`` is no uploaded version: it answers ``local``.
DISPATCHER_VERSION_HEADER = "X-Code24-Dispatcher-Version"
LOCAL_DISPATCHER_VERSION = "local"


def format_dispatch_ms(elapsed_ms: float) -> str:
    """``X-Code24-Dispatch-Ms``: milliseconds with at most two decimals, never negative."""
    value = round(max(0.0, elapsed_ms), 2)
    return f"{value:.2f}".rstrip("0").rstrip(".")


def dispatch_headers(
    *,
    worker: str,
    environment: str,
    request_id: str,
    fallback_reason: Reason | None,
    upstream_status: int | None,
    dispatch_ms: float,
) -> list[tuple[str, str]]:
    """The metadata headers on every dispatched answer (a route matched)."""
    headers = [
        ("X-Code24-Worker", worker),
        ("X-Code24-Environment", environment),
        (REQUEST_ID_HEADER, request_id),
        ("X-Code24-Fallback", "false" if fallback_reason is None else "true"),
        (DISPATCHER_VERSION_HEADER, LOCAL_DISPATCHER_VERSION),
    ]
    if fallback_reason is not None:
        headers.append(("X-Code24-Fallback-Reason", fallback_reason))
    if upstream_status is not None:
        headers.append(("X-Code24-Upstream-Status", str(upstream_status)))
    headers.append(("X-Code24-Dispatch-Ms", format_dispatch_ms(dispatch_ms)))
    return headers


def dispatch_options(
    table: RouteTable, route: Route, *, environment: str, request_id: str
) -> dict[str, Any]:
    """The third argument of ``DISPATCHER.get(alias, {}, options)`` for this call.

    ``limits`` (workerd ``DynamicDispatchLimits``: ``cpuMs``, ``subRequests``) when the worker
    has any; ``outbound`` with the value of each parameter the table names. ``serve`` has no
    namespace to pass them to; the JavaScript dispatcher builds the very same object.
    """
    options: dict[str, Any] = {}
    limits = table.policy(route.worker).limits
    if limits:
        names = {"cpu_ms": "cpuMs", "subrequests": "subRequests"}
        options["limits"] = {names[name]: value for name, value in limits.items()}
    if table.outbound_params:
        values = {
            "worker": route.worker,
            "environment": environment,
            "request_id": request_id,
            "route": route.prefix or "/",
        }
        options["outbound"] = {name: values[name] for name in table.outbound_params}
    return options


# ------------------------------------------------------------------------------------------
# Judging the worker's answer (D4)


@dataclass(frozen=True)
class Judgement:
    """Pass the worker's answer through, or fall back for ``reason``."""

    reason: Reason | None
    detail: str

    @property
    def passes(self) -> bool:
        return self.reason is None


def bytes_to_judge(
    status: int,
    content_type: str | None,
    content_length: int | None,
    *,
    method: str,
    max_json_check_bytes: int,
) -> int | None:
    """How many body bytes to read before :func:`judge_answer` can decide.

    ``None``: pass through without reading a byte (204/304, a HEAD answer with a JSON type, a
    JSON body declared larger than ``max_json_check_bytes``). ``0``: the headers decide
    (``text/html``). Otherwise read until the body ends or more than this many bytes are in
    hand: ``max_json_check_bytes`` for a JSON type, the sniff window for anything else.
    """
    if status in NO_BODY_STATUSES:
        return None
    if is_json_media_type(content_type):
        if method == "HEAD":
            return None
        if content_length is not None and content_length > max_json_check_bytes:
            return None
        return max_json_check_bytes
    if is_html_media_type(content_type):
        return 0
    return SNIFF_BYTES


def judge_answer(
    status: int, content_type: str | None, body: bytes, *, complete: bool, method: str = "GET"
) -> Judgement:
    """Pass through or fall back, for an answer whose first bytes are ``body``.

    ``complete`` says ``body`` is the whole body; a JSON answer read only in part (it went over
    the check limit) passes unchecked. The verdict itself is :func:`classify_answer`'s, the
    one ``probe`` uses: html -> ``upstream_html``; not-json and empty -> ``upstream_not_json``.
    """
    if status in NO_BODY_STATUSES:
        return Judgement(None, f"status {status} passes through")
    json_type = is_json_media_type(content_type)
    if json_type and method == "HEAD":
        return Judgement(None, "HEAD answer with a JSON content type")
    if json_type and not complete:
        return Judgement(None, "JSON body larger than the check limit streams through unchecked")
    if is_html_media_type(content_type):
        return Judgement("upstream_html", f"content type {content_type}")
    if not json_type and body.lstrip().startswith(OVER_LIMIT_BODY):
        return Judgement("worker_over_limit", "Cloudflare error 1102: the worker exceeded a limit")
    verdict = classify_answer(status, content_type, body)
    if verdict.verdict == "json":
        return Judgement(None, verdict.reason)
    if verdict.verdict == "html":
        return Judgement("upstream_html", verdict.reason)
    return Judgement("upstream_not_json", verdict.reason)


# ------------------------------------------------------------------------------------------
# Headers of the answers the dispatcher makes itself (D5, D7; the bodies: answers.py)


def refusal_headers(environment: str, request_id: str) -> list[tuple[str, str]]:
    """Headers on a refusal: JSON, the request id and the environment."""
    return [
        ("Content-Type", "application/json"),
        (REQUEST_ID_HEADER, request_id),
        ("X-Code24-Environment", environment),
        (DISPATCHER_VERSION_HEADER, LOCAL_DISPATCHER_VERSION),
    ]
