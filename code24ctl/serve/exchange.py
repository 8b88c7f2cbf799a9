"""One exchange through ``serve``: reading the request body, judging the worker's answer, and
writing the answer (pass the worker's through, fall back, or refuse).

:class:`~code24ctl.serve.app.DispatchApp` decides, in the order of docs/dispatch.md, which of
these happens; the rules themselves are :mod:`code24ctl.dispatch.routing`'s. The hot path:
measure with ``benchmarks/bench_serve.py`` before and after a change here.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from code24ctl.dispatch.answers import Reason, fallback_answer, refusal_answer
from code24ctl.dispatch.route_table import WorkerPolicy
from code24ctl.dispatch.routing import (
    Judgement,
    bytes_to_judge,
    dispatch_headers,
    forward_response_headers,
    judge_answer,
    new_request_id,
    refusal_headers,
)
from code24ctl.serve.http.protocol import (
    ABORT_SCOPE_KEY,
    FLUSH_SCOPE_KEY,
    GONE_SCOPE_KEY,
    HOLD_SCOPE_KEY,
)
from code24ctl.serve.http.upstream import (
    UpstreamResponse,
)
from code24ctl.serve.limits import refusal_envelope

if TYPE_CHECKING:
    from code24ctl.serve.app import ServeSettings

Scope = MutableMapping[str, Any]


Message = MutableMapping[str, Any]


Receive = Callable[[], Awaitable[Message]]


Send = Callable[[Message], Awaitable[None]]


# uvicorn writes its own Date; a worker's would be a duplicate.
_TRANSPORT_RESPONSE_HEADERS = frozenset({"date"})


_DEFAULT_POLICY = WorkerPolicy()


class UploadState:
    """What happened to the request body while it streamed to the worker."""

    __slots__ = ("client_gone", "too_large")

    def __init__(self) -> None:
        self.too_large = False
        self.client_gone = False


class UploadStopped(Exception):
    """Raised inside the body stream to abort the upload (too large, client gone)."""


class Exchange:
    """One request on its way through: what is known so far, and how to answer."""

    __slots__ = (
        "policy",
        "reason",
        "request_id",
        "response_started",
        "route_prefix",
        "scope",
        "send",
        "settings",
        "started",
        "status",
        "upstream_status",
        "worker",
    )

    def __init__(self, scope: Scope, send: Send, settings: ServeSettings) -> None:
        self.started = time.perf_counter()
        self.scope = scope
        self.send = send
        self.settings = settings
        self.request_id = ""
        self.worker: str | None = None
        self.route_prefix: str | None = None
        self.policy = _DEFAULT_POLICY
        self.upstream_status: int | None = None
        self.response_started = False
        self.status = 0
        self.reason: str | None = None

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    async def start(self, status: int, headers: list[tuple[str, str]], length: int | None) -> None:
        """Send the head; under serve's own protocol it waits for :meth:`flush` (or the whole
        body) so head and body leave the process in one write."""
        self.response_started = True
        self.status = status
        encoded = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers]
        if length is not None:
            encoded.append((b"content-length", str(length).encode("ascii")))
        hold = self.scope.get(HOLD_SCOPE_KEY)
        if hold is not None:
            hold()
        await self.send({"type": "http.response.start", "status": status, "headers": encoded})

    def flush(self) -> None:
        """Let what was held go out (a no-op when nothing is held)."""
        flush = self.scope.get(FLUSH_SCOPE_KEY)
        if flush is not None:
            flush()

    async def whole_body(self, body: bytes) -> None:
        await self.send({"type": "http.response.body", "body": body})
        self.flush()

    async def refuse(self, reason: Reason, worker: str | None) -> None:
        """An answer made without the worker: 400, 404, 413, 500."""
        self.reason = reason
        self.request_id = self.request_id or new_request_id()
        status, body = refusal_answer(reason, worker, self.request_id)
        await self.start(
            status, refusal_headers(self.settings.environment, self.request_id), len(body)
        )
        await self.whole_body(body)

    async def refuse_own(self, code: str, worker: str | None) -> None:
        """One of serve's own refusals (code24ctl.serve.limits.SERVE_REFUSALS)."""
        self.reason = code
        self.request_id = self.request_id or new_request_id()
        status, body = refusal_envelope(code, worker, self.request_id)
        await self.start(
            status, refusal_headers(self.settings.environment, self.request_id), len(body)
        )
        await self.whole_body(body)

    def client_gone(self) -> bool:
        """Whether the client's connection is closed or closing."""
        gone = self.scope.get(GONE_SCOPE_KEY)
        return bool(gone is not None and gone())

    def _meta(self, reason: Reason | None) -> list[tuple[str, str]]:
        assert self.worker is not None
        return dispatch_headers(
            worker=self.worker,
            environment=self.settings.environment,
            request_id=self.request_id,
            fallback_reason=reason,
            upstream_status=self.upstream_status,
            dispatch_ms=self.elapsed_ms(),
        )

    async def fall_back(self, reason: Reason) -> None:
        """The worker's fallback (or the envelope) instead of its answer."""
        assert self.worker is not None
        self.reason = reason
        status, body = fallback_answer(self.policy, reason, self.worker, self.request_id)
        await self.start(
            status, [("Content-Type", "application/json"), *self._meta(reason)], len(body)
        )
        await self.whole_body(body)

    async def pass_through(
        self,
        response: UpstreamResponse,
        body: bytes,
        complete: bool,
        *,
        idle_timeout_s: float,
    ) -> None:
        """The worker's answer as it is: status, headers (minus hop-by-hop and X-Code24-*),
        the bytes already read, then the rest as it comes."""
        raw = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in response.raw_headers]
        kept = [
            (name, value)
            for name, value in forward_response_headers(raw)
            if name.lower() not in _TRANSPORT_RESPONSE_HEADERS
            and not (complete and name.lower() == "content-length")
        ]
        kept += self._meta(None)
        if complete:
            # The whole body is in hand: its length is known whatever framing the worker used.
            await self.start(response.status, kept, len(body))
            await self.whole_body(body)
            return
        await self.start(response.status, kept, None)
        send = self.send
        try:
            if body:
                await send({"type": "http.response.body", "body": body, "more_body": True})
            self.flush()  # the head (and first bytes) go out before waiting for the rest
            while True:
                response.set_timeout(idle_timeout_s)
                chunk = await response.read_chunk()
                if not chunk:
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except Exception:
            # The status line is gone already; the only honest signal left is a cut connection.
            self.reason = "upstream_broke_mid_body"
            await abort_connection(self.scope)
            return
        await send({"type": "http.response.body", "body": b""})


async def read_request_body(
    receive: Receive,
    content_length: str | None,
    chunked: bool,
    max_body_bytes: int,
    upload: UploadState,
) -> bytes | AsyncIterator[bytes] | None:
    """The request body to forward: None (none), bytes (in hand whole) or a stream.

    A body without a declared length (chunked) is read whole, up to the limit, before anything
    is forwarded, as the JS dispatcher does: so one over the limit, broken or abandoned never
    reaches the worker, even one that would answer before reading it. A declared length was
    checked against the limit already and streams through.
    """
    if not chunked and (content_length is None or content_length.strip() == "0"):
        return None
    message = await receive()
    if message["type"] == "http.disconnect":
        upload.client_gone = True
        return None
    first: bytes = message.get("body", b"")
    if len(first) > max_body_bytes:
        upload.too_large = True
        return None
    if chunked:
        parts = [first]
        size = len(first)
        while message.get("more_body", False):
            message = await receive()
            if message["type"] == "http.disconnect":
                upload.client_gone = True
                return None
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > max_body_bytes:
                upload.too_large = True
                return None
            parts.append(chunk)
        return b"".join(parts)
    if not message.get("more_body", False):
        return first

    async def stream() -> AsyncIterator[bytes]:
        size = len(first)
        if first:
            yield first
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                upload.client_gone = True
                raise UploadStopped("the client went away")
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > max_body_bytes:
                upload.too_large = True
                raise UploadStopped("the body is over the limit")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return

    return stream()


async def judge_upstream(
    response: UpstreamResponse, method: str, max_json_check_bytes: int
) -> tuple[Judgement, bytes, bool]:
    """Read as much of the answer as the decision needs and decide.

    Returns the judgement, the bytes read (sent first on a pass-through) and whether they are
    the whole body.
    """
    status = response.status
    content_type = response.content_type
    declared = response.content_length
    need = bytes_to_judge(
        status, content_type, declared, method=method, max_json_check_bytes=max_json_check_bytes
    )
    if need is None:
        return judge_answer(status, content_type, b"", complete=False, method=method), b"", False
    if need == 0:
        return judge_answer(status, content_type, b"", complete=False, method=method), b"", False
    body, complete = await response.read_up_to(need)
    encoding = (response.content_encoding or "").strip().lower()
    checked = body
    if encoding not in ("", "identity"):
        decoded = _decode_for_check(body, encoding, need)
        if decoded is None:
            # Cannot look inside (unknown coding, or it decodes past the check limit): a JSON
            # answer passes unchecked like a large one; anything else falls back anyway.
            return (
                judge_answer(status, content_type, b"", complete=False, method=method),
                body,
                complete,
            )
        checked = decoded
    judgement = judge_answer(status, content_type, checked, complete=complete, method=method)
    return judgement, body, complete


def _decode_for_check(body: bytes, encoding: str, limit: int) -> bytes | None:
    """Decompress gzip/deflate content for the JSON check (bounded); None if not possible."""
    if encoding in ("gzip", "x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif encoding == "deflate":
        wbits = zlib.MAX_WBITS
    else:
        return None
    try:
        decoder = zlib.decompressobj(wbits)
        out = decoder.decompress(body, limit + 1)
    except zlib.error:
        return b"\x00"  # corrupt: checks as not JSON
    if len(out) > limit:
        return None
    return out


async def abort_connection(scope: Scope) -> None:
    abort = scope.get(ABORT_SCOPE_KEY)
    if abort is not None:
        abort()
        # Let the server see the connection go before the app returns.
        await asyncio.sleep(0)
        await asyncio.sleep(0)
