"""One line per request on stderr: method, path, worker, status, fallback reason, time."""

from __future__ import annotations

import json
import time
from typing import Literal, TextIO

AccessLogFormat = Literal["text", "json", "off"]
ACCESS_LOG_FORMATS: tuple[AccessLogFormat, ...] = ("text", "json", "off")


# The formatted second of the last timestamp (the clock second it is for, and its text).
_second = -1
_second_text = ""


def _timestamp() -> str:
    global _second, _second_text
    now = time.time()
    second = int(now)
    if second != _second:  # strftime once a second, not once a request
        _second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second = second
    return f"{_second_text}.{int((now - second) * 1000):03d}Z"


class AccessLog:
    """Writes access lines to ``stream`` in ``text`` or ``json`` form (``off``: nothing).

    text: ``2026-01-01T12:00:00.000Z POST /api/x worker=competitive-analysis status=200
    reason=- ms=1.25 id=<request id>`` (one line); json: one object per line with the keys
    time, method, path, worker, status, reason, ms, request_id. ``reason`` is the fallback
    reason or the error code of a refusal (``-``/null when the worker's answer passed).
    """

    def __init__(self, form: AccessLogFormat, stream: TextIO) -> None:
        self.form = form
        self.stream = stream

    def record(
        self,
        *,
        method: str,
        path: str,
        worker: str | None,
        status: int,
        reason: str | None,
        ms: float,
        request_id: str,
    ) -> None:
        """Write one line for a finished request."""
        if self.form == "off":
            return
        if self.form == "json":
            line = json.dumps(
                {
                    "time": _timestamp(),
                    "method": method,
                    "path": path,
                    "worker": worker,
                    "status": status,
                    "reason": reason,
                    "ms": round(ms, 2),
                    "request_id": request_id,
                },
                separators=(",", ":"),
            )
        else:
            # The path is shown as received (percent-encoded), so it cannot break the line.
            line = (
                f"{_timestamp()} {method} {path} worker={worker or '-'} status={status} "
                f"reason={reason or '-'} ms={ms:.2f} id={request_id or '-'}"
            )
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed stderr must not fail requests
