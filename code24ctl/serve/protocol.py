"""uvicorn's httptools protocol with the two changes a JSON-always dispatcher needs.

1. The raw request target goes into the ASGI scope (``code24.target``). uvicorn hands the app a
   parsed path, which has already lost an absolute-form target (``GET http://host/x``) that
   rule 4.2 must refuse. ``code24.abort`` lets the app cut a connection whose streamed answer
   broke halfway (there is no ASGI message for that).
2. A request that is not valid HTTP gets a JSON envelope, not uvicorn's ``text/plain`` 400.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from code24ctl.dispatch.routing import json_bytes, new_request_id

TARGET_SCOPE_KEY = "code24.target"
# A callable that cuts the connection: the only signal left when a streamed answer breaks
# after its status line went out.
ABORT_SCOPE_KEY = "code24.abort"

BAD_REQUEST_CODE = "bad_request"
BAD_REQUEST_MESSAGE = "The request is not valid HTTP."


class DispatchHttpProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that records the raw target and refuses bad requests in JSON."""

    def on_headers_complete(self) -> None:
        scope: dict[str, Any] = self.scope  # type: ignore[assignment]
        scope[TARGET_SCOPE_KEY] = self.url
        scope[ABORT_SCOPE_KEY] = self.transport.abort
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
