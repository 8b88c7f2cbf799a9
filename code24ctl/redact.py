"""Keep the API token out of every message, log line and traceback we print."""

from __future__ import annotations

import logging
import os

from code24ctl.constants import TOKEN_ENV_VAR

MASK = "***"


def scrub(text: str) -> str:
    """Replace the API token (and any bearer credential) in ``text`` with a mask."""
    token = os.environ.get(TOKEN_ENV_VAR, "").strip()
    if len(token) >= 4 and token in text:
        text = text.replace(token, MASK)
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
        return True
