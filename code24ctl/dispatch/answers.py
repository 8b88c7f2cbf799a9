"""The answers the dispatcher makes itself (D5, D7 of docs/dispatch.md): the reasons, the
error envelope and its statuses, and a worker's configured fallback.

Pure, like every dispatch rule (:mod:`code24ctl.dispatch.routing` gives their order); the
JavaScript dispatcher writes the same bytes (``json_bytes`` is ``JSON.stringify``'s output).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from code24ctl.dispatch.route_table import WorkerPolicy

Reason = Literal[
    "route_not_found",
    "bad_path",
    "payload_too_large",
    "worker_not_found",
    "worker_error",
    "worker_timeout",
    "worker_over_limit",
    "upstream_html",
    "upstream_not_json",
    "internal_error",
]


ERROR_MESSAGES: Mapping[Reason, str] = {
    "route_not_found": "No route matches this path.",
    "bad_path": "The request path is not allowed.",
    "payload_too_large": "The request body is larger than the dispatcher accepts.",
    "worker_not_found": "The worker is not deployed in the namespace.",
    "worker_error": "The worker failed before answering.",
    "worker_timeout": "The worker did not answer in time.",
    "worker_over_limit": "The worker exceeded its CPU or subrequest limit.",
    "upstream_html": "The worker answered with an HTML page instead of JSON.",
    "upstream_not_json": "The worker answered with something other than JSON.",
    "internal_error": "The dispatcher failed unexpectedly.",
}


# Status of the error envelope for each reason. Worker failures use it only when the worker has
# no configured fallback.
ERROR_STATUS: Mapping[Reason, int] = {
    "route_not_found": 404,
    "bad_path": 400,
    "payload_too_large": 413,
    "worker_not_found": 502,
    "worker_error": 502,
    "worker_timeout": 504,
    # Cloudflare's custom-limits example (workers-for-platforms/configuration/custom-limits)
    # answers a user Worker's limit exception with 500.
    "worker_over_limit": 500,
    "upstream_html": 502,
    "upstream_not_json": 502,
    "internal_error": 500,
}


def error_envelope(reason: Reason, worker: str | None, request_id: str) -> dict[str, Any]:
    """``{"error": {"code", "message", "worker", "request_id"}}``."""
    return {
        "error": {
            "code": reason,
            "message": ERROR_MESSAGES[reason],
            "worker": worker,
            "request_id": request_id,
        }
    }


def json_bytes(value: Any) -> bytes:
    """Compact UTF-8 JSON, as ``JSON.stringify`` writes it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def fallback_answer(
    policy: WorkerPolicy, reason: Reason, worker: str, request_id: str
) -> tuple[int, bytes]:
    """(status, JSON body) for a worker failure: its configured fallback with
    ``fallback_status``, else the error envelope with 502 (504 for ``worker_timeout``)."""
    if policy.fallback is not None:
        return policy.fallback_status, json_bytes(policy.fallback)
    return ERROR_STATUS[reason], json_bytes(error_envelope(reason, worker, request_id))


def refusal_answer(reason: Reason, worker: str | None, request_id: str) -> tuple[int, bytes]:
    """(status, JSON body) for an answer made without the worker: 400, 404, 413, 500."""
    return ERROR_STATUS[reason], json_bytes(error_envelope(reason, worker, request_id))
