"""Is an HTTP answer JSON? The one classifier behind ``probe`` verdicts and ``serve`` fallbacks.

The JavaScript dispatcher implements the same rules; the conformance corpus holds both to them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

Verdict = Literal["json", "html", "not-json", "empty"]

# How much of the start of a body the HTML sniff looks at: enough for a BOM, whitespace and
# "<!doctype html" with some leading comment-free padding.
SNIFF_BYTES = 1024
_HTML_START = (b"<!doctype html", b"<html")
_CF_STUB = re.compile(rb"^\s*error code:\s*(\d+)\s*$", re.IGNORECASE)
# Statuses whose answers never carry a body (RFC 9110 sections 15.3.5 and 15.4.5).
NO_BODY_STATUSES = frozenset({204, 304})


@dataclass(frozen=True)
class Classification:
    """What an answer is, and why."""

    verdict: Verdict
    reason: str
    cloudflare_error: int | None = None


def media_type(content_type: str | None) -> str:
    """The bare lowercase media type of a Content-Type value (no parameters)."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def is_json_media_type(content_type: str | None) -> bool:
    """``application/json`` or any ``+json`` type."""
    kind = media_type(content_type)
    return kind == "application/json" or kind.endswith("+json")


def is_html_media_type(content_type: str | None) -> bool:
    """``text/html`` or XHTML."""
    return media_type(content_type) in ("text/html", "application/xhtml+xml")


def looks_like_html(start: bytes) -> bool:
    """Whether a body's first bytes open an HTML document, whatever the header says."""
    head = start[:SNIFF_BYTES].lstrip(b"\xef\xbb\xbf").lstrip().lower()
    return head.startswith(_HTML_START)


def cloudflare_error_code(body: bytes) -> int | None:
    """The code of a Cloudflare text stub such as ``error code: 1042``, if the body is one."""
    match = _CF_STUB.match(body[:64])
    return int(match.group(1)) if match else None


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


# Built once: json.loads with any keyword builds a new decoder per call (half the JSON check's
# cost on serve's hot path).
_STRICT_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _parse_strict_json(body: bytes) -> None:
    # RFC 8259 JSON, as JSON.parse in the JavaScript dispatcher reads it: UTF-8 only (no BOM,
    # no UTF-16/32 guessing), no NaN/Infinity.
    text = body.decode("utf-8")
    _STRICT_DECODER.decode(text)


def classify_answer(status: int, content_type: str | None, body: bytes) -> Classification:
    """Classify a complete answer as ``json``, ``html``, ``not-json`` or ``empty``.

    HTML wins over every header (a worker that labels its status page ``application/json`` is
    still answering HTML). A JSON content type is only ``json`` when the body parses.
    """
    if looks_like_html(body):
        return Classification("html", "the body is an HTML document")
    if is_html_media_type(content_type):
        return Classification("html", f"content type {media_type(content_type)}")
    if not body.strip():
        if status in NO_BODY_STATUSES:
            return Classification("empty", f"status {status} carries no body")
        return Classification("empty", "no body")
    if is_json_media_type(content_type):
        try:
            _parse_strict_json(body)
        except (ValueError, UnicodeDecodeError) as exc:
            reason = f"JSON content type but the body does not parse: {exc}"
            return Classification("not-json", reason)
        return Classification("json", "JSON content type and the body parses")
    stub = cloudflare_error_code(body)
    if stub is not None:
        return Classification("not-json", f"Cloudflare error stub 'error code: {stub}'", stub)
    kind = media_type(content_type) or "no content type"
    return Classification("not-json", f"{kind}, not JSON")
