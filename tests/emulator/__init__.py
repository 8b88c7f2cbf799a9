"""A stateful emulator of the Cloudflare v4 API slice code24ctl uses (test infrastructure).

- :class:`EmulatorState` holds the model (seed it, inspect it, inject faults);
- :func:`create_app` builds the ASGI app (API at ``/client/v4``, controls at ``/__emulator``);
- :class:`EmulatorServer` serves it on 127.0.0.1 in a thread;
- :func:`sync_client` gives an in-process ``httpx.Client`` for the SDK's ``http_client``
  (no socket, no thread: requests go straight into the ASGI app).
"""

from __future__ import annotations

import httpx

from .app import API_PREFIX, CONTROL_PREFIX, create_app
from .errors import ApiError
from .models import RequestRecord, Script
from .multipart import Part
from .seeds import Code24Seed, seed_code24
from .server import EmulatorServer
from .state import FAMILIES, EmulatorState

__all__ = [
    "API_PREFIX",
    "CONTROL_PREFIX",
    "FAMILIES",
    "IN_PROCESS_API_BASE",
    "ApiError",
    "Code24Seed",
    "EmulatorServer",
    "EmulatorState",
    "Part",
    "RequestRecord",
    "Script",
    "create_app",
    "seed_code24",
    "sync_client",
]

#: The base URL to give the SDK together with :func:`sync_client`.
IN_PROCESS_API_BASE = "http://cf.test" + API_PREFIX


def sync_client(state: EmulatorState) -> httpx.Client:
    """An in-process ``httpx.Client`` talking to the emulator over ``state``.

    Use it as ``Cloudflare(api_token=..., base_url=IN_PROCESS_API_BASE, http_client=...)``.
    """
    from .inprocess import InProcessTransport

    return httpx.Client(
        transport=InProcessTransport(create_app(state)), base_url=IN_PROCESS_API_BASE
    )
