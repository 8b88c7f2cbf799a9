"""uvicorn's httptools protocol with the three changes a JSON-always dispatcher needs.

1. The raw request target goes into the ASGI scope (``code24.target``). uvicorn hands the app a
   parsed path, which has already lost an absolute-form target (``GET http://host/x``) that
   D2 of docs/dispatch.md refuses. ``code24.abort`` lets the app cut a connection whose
   streamed answer broke halfway (there is no ASGI message for that).
2. A request that is not valid HTTP gets a JSON envelope, not uvicorn's ``text/plain`` 400.
3. The app can have an answer's head and body leave in one write (``code24.hold`` /
   ``code24.flush``): uvicorn writes them separately, two ``send`` syscalls per answer, and the
   profile under load showed the head's write as the largest single line of serve's time.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from code24ctl.dispatch.routing import json_bytes, new_request_id

TARGET_SCOPE_KEY = "code24.target"
# A callable that cuts the connection: the only signal left when a streamed answer breaks
# after its status line went out.
ABORT_SCOPE_KEY = "code24.abort"
# Callables that hold the connection's writes and send them gathered (see _GatheringTransport).
HOLD_SCOPE_KEY = "code24.hold"
FLUSH_SCOPE_KEY = "code24.flush"

BAD_REQUEST_CODE = "bad_request"
BAD_REQUEST_MESSAGE = "The request is not valid HTTP."


# Writes bigger than this go out at once (after what is pending) instead of being gathered.
_GATHER_LIMIT = 64 * 1024


class _GatheringTransport:
    """The connection's transport, able to hold writes until the app says it is done.

    While held (``code24.hold`` in the scope), writes are gathered and go out in one write at
    ``code24.flush``: the head and the whole body of an answer leave in one ``send``. Unheld,
    writes pass straight through; closing or aborting hands what is held to the transport first.
    """

    __slots__ = ("_pending", "held", "transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self._pending: list[bytes] = []
        self.held = False

    def hold(self) -> None:
        self.held = True

    def write(self, data: bytes) -> None:
        if self.held and len(data) <= _GATHER_LIMIT:
            self._pending.append(data)
        else:
            self.flush()
            self.transport.write(data)

    def flush(self) -> None:
        self.held = False
        pending = self._pending
        if pending:
            data = pending[0] if len(pending) == 1 else b"".join(pending)
            pending.clear()
            if not self.transport.is_closing():
                self.transport.write(data)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def abort(self) -> None:
        self.flush()  # what was already said goes out as it would have unheld
        self.transport.abort()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class DispatchHttpProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that records the raw target, refuses bad requests in JSON and
    gathers each answer's writes into one."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Flow control keeps the real transport; the cycles write through the gatherer.
        self.transport = _GatheringTransport(transport)  # type: ignore[assignment]

    def on_headers_complete(self) -> None:
        scope: dict[str, Any] = self.scope  # type: ignore[assignment]
        scope[TARGET_SCOPE_KEY] = self.url
        scope[ABORT_SCOPE_KEY] = self.transport.abort
        gatherer: _GatheringTransport = self.transport  # type: ignore[assignment]
        scope[HOLD_SCOPE_KEY] = gatherer.hold
        scope[FLUSH_SCOPE_KEY] = gatherer.flush
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        request_id = new_request_id()
        body = json_bytes(
            {
                "error": {
                    "code": BAD_REQUEST_CODE,
                    "message": BAD_REQUEST_MESSAGE,
                    "worker": None,
                    "request_id": request_id,
                }
            }
        )
        content = [STATUS_LINE[400]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"x-code24-request-id: " + request_id.encode("ascii") + b"\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
