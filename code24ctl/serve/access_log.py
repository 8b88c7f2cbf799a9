"""One line per request on stderr: method, path, worker, status, fallback reason, time.

Writing never blocks dispatch: lines go to a bounded buffer that a writer thread drains to the
stream. When the stream does not keep up (a pipe nobody reads, a stopped terminal), lines past
the buffer are dropped and counted (:attr:`AccessLog.dropped`) instead of stalling requests.
A stream with a file descriptor is written with ``os.write`` on it, so a writer stuck on a full
pipe holds no lock that the rest of the process (or its exit) needs.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable
from typing import Literal, TextIO

from code24ctl.redact import scrub

AccessLogFormat = Literal["text", "json", "off"]
ACCESS_LOG_FORMATS: tuple[AccessLogFormat, ...] = ("text", "json", "off")
# Lines held for the writer at most; beyond that they are dropped (and counted).
MAX_PENDING_LINES = 10_000


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

    def __init__(
        self, form: AccessLogFormat, stream: TextIO, *, max_pending: int = MAX_PENDING_LINES
    ) -> None:
        self.form = form
        self.stream = stream
        self.max_pending = max_pending
        self.dropped = 0
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._writer: threading.Thread | None = None
        self._write = _sink(stream)

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
        """Queue one line for a finished request (dropped and counted when the queue is full)."""
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
        self._queue(line)

    def message(self, text: str) -> None:
        """Queue a line that is not a request's (serve's own notes, what workerd's Workers log),
        whatever the form; the API token masked (a worker may hold it as a .dev.vars secret)."""
        self._queue(scrub(text))

    def runtime_output(self, text: str) -> None:
        """Queue a line workerd printed (a Worker's console output, miniflare's warnings),
        marked as such: a Worker can print anything, an access line's shape included, so its
        lines never pass for serve's own (``workerd: ...``; in json form ``{"time", "workerd"}``,
        which no access line has)."""
        if self.form == "json":
            line = json.dumps({"time": _timestamp(), "workerd": text}, separators=(",", ":"))
        else:
            line = f"workerd: {text}"
        self._queue(scrub(line))

    def _queue(self, line: str) -> None:
        with self._lock:
            pending = self._pending
            if len(pending) >= self.max_pending:
                self.dropped += 1
                return
            pending.append(line)
            if len(pending) > 1:
                return  # the writer has been woken for this batch already
            self._idle.clear()
        if self._writer is None:
            self._writer = threading.Thread(target=self._drain, name="access-log", daemon=True)
            self._writer.start()
        self._wake.set()

    def flush(self, timeout: float = 1.0) -> bool:
        """Wait (at most ``timeout``) until every queued line is written; whether it was."""
        return self._idle.wait(timeout)

    def _drain(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            while True:  # until nothing is left: a line queued meanwhile did not wake us
                with self._lock:
                    lines, self._pending = self._pending, []
                    if not lines:
                        self._idle.set()
                        break
                with contextlib.suppress(OSError, ValueError):  # a closed stderr: nothing to do
                    self._write("\n".join(lines) + "\n")


def _sink(stream: TextIO) -> Callable[[str], None]:
    """How the writer thread puts text on ``stream``."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        fd = None
    if fd is None:

        def write_text(text: str) -> None:
            stream.write(text)
            stream.flush()

        return write_text
    encoding = getattr(stream, "encoding", None) or "utf-8"

    def write_fd(text: str) -> None:
        data = memoryview(text.encode(encoding, errors="replace"))
        while data:
            data = data[os.write(fd, data) :]

    return write_fd
