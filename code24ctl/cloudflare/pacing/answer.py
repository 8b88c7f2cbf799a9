"""The answer check: what the transport raises when a call ran out of time or an answer is not
one the v4 API sends, and the -vv log of each exchange."""

from __future__ import annotations

import json
import logging
import re

import httpx

log = logging.getLogger("code24ctl.cloudflare.pacing")


class DeadlineExceeded(Exception):
    """One API call ran out of time; says what it was waiting for."""

    def __init__(self, request: httpx.Request, seconds: float, waiting_for: str) -> None:
        self.method = request.method
        self.host = request.url.host
        self.path = request.url.path
        self.seconds = seconds
        self.waiting_for = waiting_for
        super().__init__(
            f"no answer from the Cloudflare API at {self.host} within {seconds:g} s "
            f"({waiting_for}; {self.method} {self.path})"
        )


#: The extension a last answer that still asked to retry carries: how many attempts were made
#: and how long they took (``gave up after 12 attempts over 300 s ...``).
GAVE_UP = "code24ctl.gave_up"


def gave_up(response: object) -> str:
    """What a last answer says of the attempts before it ('' when it was the first)."""
    extensions = getattr(response, "extensions", None)
    said = extensions.get(GAVE_UP, "") if isinstance(extensions, dict) else ""
    return said if isinstance(said, str) else ""


class InvalidAnswer(Exception):
    """A 2xx answer that is not what the v4 API sends (an HTML page, an empty body, a 204)."""

    def __init__(self, request: httpx.Request, status: int, content_type: str, what: str) -> None:
        self.method = request.method
        self.host = request.url.host
        self.path = request.url.path
        self.status = status
        self.content_type = content_type
        self.what = what
        shown = content_type or "no content type"
        super().__init__(
            f"the answer from {self.host} is not a Cloudflare API answer: HTTP {status}, "
            f"{shown}, {what}"
        )


class FailedAnswer(Exception):
    """A 2xx whose envelope says ``"success": false``: an API error, whatever the status."""

    def __init__(self, request: httpx.Request, status: int, body: dict[str, object]) -> None:
        self.status = status
        self.body = body
        super().__init__(f"{request.method} {request.url.path}: HTTP {status}, success false")


#: Answers that are a Worker's code, not an envelope (downloads of script content).
_RAW_CONTENT_RE = re.compile(r"/content(?:/v2)?/?$")
#: The Analytics Engine SQL API answers ClickHouse's JSON (``{meta, data, rows}``), no envelope.
_SQL_API_RE = re.compile(r"/analytics_engine/sql/?$")


def check_answer(request: httpx.Request, response: httpx.Response) -> None:
    """Raise :class:`InvalidAnswer` unless a 2xx ``response`` is a v4 API answer, and
    :class:`FailedAnswer` if that answer says it failed.

    The v4 API answers JSON objects (the envelope); a Worker's content comes as multipart or
    as its script. Anything else on a 2xx is a proxy, a captive portal or a wrong base URL.
    """
    status = response.status_code
    if not 200 <= status < 300:
        return
    content_type = response.headers.get("content-type", "")
    kind = content_type.split(";")[0].strip().lower()
    if _RAW_CONTENT_RE.search(request.url.path) and status == 200 and kind and "html" not in kind:
        return
    if status == 204:
        raise InvalidAnswer(request, status, content_type, "no content")
    if kind.startswith("multipart/"):
        return
    body = response.read()
    if not body.strip():
        raise InvalidAnswer(request, status, content_type, "an empty body")
    if not kind.endswith("json"):
        looks = "an HTML page" if body.lstrip()[:1] == b"<" else "not JSON"
        raise InvalidAnswer(request, status, content_type, looks)
    try:
        parsed = json.loads(body)
    except ValueError:
        raise InvalidAnswer(request, status, content_type, "JSON that does not parse") from None
    if _SQL_API_RE.search(request.url.path):
        if isinstance(parsed, dict) and isinstance(parsed.get("data"), list):
            return
        raise InvalidAnswer(request, status, content_type, "JSON without the SQL API's data")
    if not isinstance(parsed, dict) or "success" not in parsed:
        raise InvalidAnswer(request, status, content_type, "JSON without the v4 envelope")
    if parsed.get("success") is False:
        raise FailedAnswer(request, status, parsed)


# -vv shows bodies up to this many characters (a module upload is megabytes).
BODY_LOG_CHARS = 2000


def log_exchange(request: httpx.Request, response: httpx.Response, elapsed_s: float) -> None:
    """-vv: one request and its answer, bodies included, secrets scrubbed, with the timing."""
    from code24ctl.redact import scrub_body

    response.read()
    log.debug(
        "%s %s -> HTTP %d in %.0f ms\n  request body: %s\n  response body: %s",
        request.method,
        request.url.path,
        response.status_code,
        elapsed_s * 1000,
        scrub_body(_body_text(request.headers, request.content), BODY_LOG_CHARS),
        scrub_body(_body_text(response.headers, response.content), BODY_LOG_CHARS),
    )


def _body_text(headers: httpx.Headers, content: bytes) -> str:
    if not content:
        return "(none)"
    kind = headers.get("content-type", "")
    if "json" not in kind and not kind.startswith("text/"):
        return f"({len(content)} bytes of {kind.split(';')[0] or 'data'})"
    return content.decode("utf-8", errors="replace")
