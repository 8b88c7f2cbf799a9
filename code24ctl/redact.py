"""Keep the API token out of every message, log line and traceback we print."""

from __future__ import annotations

import logging
import os
import re

from code24ctl.constants import TOKEN_ENV_VAR

MASK = "***"

# Other values that must never be shown (a secret being set), registered while in use.
_SECRETS: set[str] = set()


def register_secret(value: str) -> None:
    """Scrub ``value`` from everything printed or logged from now on in this process."""
    if len(value) >= 4:
        _SECRETS.add(value)


def scrub(text: str) -> str:
    """Replace the API token, registered secrets and any bearer credential with a mask."""
    token = os.environ.get(TOKEN_ENV_VAR, "").strip()
    for secret in (token, *_SECRETS):
        if len(secret) >= 4 and secret in text:
            text = text.replace(secret, MASK)
    return _scrub_bearer(text)


def _scrub_bearer(text: str) -> str:
    marker = "Bearer "
    start = text.find(marker)
    while start != -1:
        end = start + len(marker)
        stop = end
        while stop < len(text) and not text[stop].isspace() and text[stop] not in "'\",}":
            stop += 1
        text = text[:end] + MASK + text[stop:]
        start = text.find(marker, end + len(MASK))
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs every record before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = scrub(message)
        record.args = None
        # Libraries log handled exceptions with their traceback (the SDK does before retrying);
        # tracebacks are for CODE24_DEBUG=1, which prints its own, scrubbed.
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True


# A secret's value in a request body (secret put: {"name", "text", "type": "secret_text"}).
_SECRET_FIELD_RE = re.compile(r'("(?:text|value|secret)"\s*:\s*")((?:[^"\\]|\\.)*)(")')


# A Workers Logs live tail's address (telemetry live-tail: {"wsUrl"}): the socket is opened
# with no credential but the address itself, so whoever reads it can stream the account's logs.
_LIVE_TAIL_URL_RE = re.compile(r'("wsUrl"\s*:\s*")((?:[^"\\]|\\.)*)(")')
# The dispatcher tail's address (``tail``: the create answer's ``url``) is the same kind of
# bearer address: a WebSocket URL, masked wherever it stands in a body.
_TAIL_SOCKET_URL_RE = re.compile(r'("url"\s*:\s*")(wss?://(?:[^"\\]|\\.)*)(")')


def scrub_body(text: str, limit: int) -> str:
    """An HTTP body fit for -vv: token and registered secrets masked, any secret-looking
    ``text``/``value`` field, a live tail's ``wsUrl`` and a tail's WebSocket ``url`` masked
    too, cut to ``limit`` characters."""
    if "secret" in text:
        text = _SECRET_FIELD_RE.sub(lambda m: m.group(1) + MASK + m.group(3), text)
    if "wsUrl" in text:
        text = _LIVE_TAIL_URL_RE.sub(lambda m: m.group(1) + MASK + m.group(3), text)
    if '"url"' in text:
        text = _TAIL_SOCKET_URL_RE.sub(lambda m: m.group(1) + MASK + m.group(3), text)
    text = scrub(text)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"
