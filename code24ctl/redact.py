"""Keep the API token out of every message, log line and traceback we print."""

from __future__ import annotations

import logging
import os

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
