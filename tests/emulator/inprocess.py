"""A synchronous httpx transport that calls the emulator's ASGI app in-process.

Starlette's TestClient would do, but starlette 1.x deprecates it with httpx (and switches it to
httpx2 when that is installed, which the SDK would reject as ``http_client``). This transport
keeps a plain ``httpx.Client``: each request runs the app on a fresh event loop, so clients can
be used from several threads at once and leave no thread behind.
"""

from __future__ import annotations

import asyncio
import concurrent.futures

import httpx
from starlette.types import ASGIApp

__all__ = ["InProcessTransport"]


class InProcessTransport(httpx.BaseTransport):
    """Send each request straight into an ASGI app."""

    def __init__(self, app: ASGIApp) -> None:
        self._asgi = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Run the app for one request and return the fully read response."""
        request.read()
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._send(request))
        # Called from inside a running loop: the app needs a loop of its own.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, self._send(request)).result()

    async def _send(self, request: httpx.Request) -> httpx.Response:
        response = await self._asgi.handle_async_request(request)
        content = await response.aread()
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=content,
            request=request,
        )
