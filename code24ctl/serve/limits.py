"""What serve accepts from a client, and the JSON answers it gives past a limit.

These answers are serve's own (the deployed dispatcher sits behind Cloudflare's edge, which
enforces its own limits): each is a JSON error envelope like every other answer, and no
request refused here reaches a worker.
"""

from __future__ import annotations

import resource
from collections.abc import Mapping
from dataclasses import dataclass

from code24ctl.dispatch.answers import json_bytes

DEFAULT_MAX_HEADER_BYTES = 64 * 1024
DEFAULT_MAX_URL_BYTES = 16 * 1024
DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_IDLE_TIMEOUT_S = 5.0
DEFAULT_MAX_CONNECTIONS = 1024
# File descriptors kept free for the listening socket, logs, the metrics port and the like.
_RESERVED_FDS = 64


def default_max_connections() -> int:
    """1024, or fewer when the process's file-descriptor limit could not hold that many
    clients plus one upstream connection each (at the limit, a connect to a worker fails)."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return DEFAULT_MAX_CONNECTIONS
    if soft == resource.RLIM_INFINITY:
        return DEFAULT_MAX_CONNECTIONS
    return max(16, min(DEFAULT_MAX_CONNECTIONS, (soft - _RESERVED_FDS) // 2))


@dataclass(frozen=True)
class ClientLimits:
    """Limits on what a client may send and hold.

    - ``max_header_bytes``: the request line and headers together (431 past it);
    - ``max_url_bytes``: the request target (414 past it);
    - ``header_timeout_s``: from connecting (or a request's first byte) to the end of its
      headers (408, or a silent close when nothing was sent);
    - ``idle_timeout_s``: a keep-alive connection with no request is closed after it;
    - ``max_connections``: open client connections; past it, a new one gets 503 and is closed.
    """

    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    max_url_bytes: int = DEFAULT_MAX_URL_BYTES
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S
    max_connections: int = DEFAULT_MAX_CONNECTIONS


# code -> (status, message) of serve's own refusals.
SERVE_REFUSALS: Mapping[str, tuple[int, str]] = {
    "bad_request": (400, "The request is not valid HTTP."),
    "bad_host": (400, "An HTTP/1.1 request needs exactly one Host header."),
    "method_not_allowed": (405, "The dispatcher does not forward this method."),
    "request_timeout": (408, "The request headers did not arrive in time."),
    "uri_too_long": (414, "The request target is longer than the dispatcher accepts."),
    "headers_too_large": (431, "The request headers are larger than the dispatcher accepts."),
    "over_capacity": (503, "The dispatcher is at its connection limit; try again."),
}


def refusal_envelope(code: str, worker: str | None, request_id: str) -> tuple[int, bytes]:
    """Status and JSON body of one of :data:`SERVE_REFUSALS`."""
    status, message = SERVE_REFUSALS[code]
    body = json_bytes(
        {
            "error": {
                "code": code,
                "message": message,
                "worker": worker,
                "request_id": request_id,
            }
        }
    )
    return status, body
