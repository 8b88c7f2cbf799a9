"""Compile namespaces.yaml into the route table both dispatchers read.

The deployed JavaScript dispatcher gets this document as its ``ROUTE_TABLE`` json binding;
``code24ctl serve`` reads the very same document, so changing the config never means
generating code, and the two implementations cannot drift on what the table says.
"""

from __future__ import annotations

from typing import Any

from code24ctl.config import Config
from code24ctl.config.models import WorkerConfig

ROUTE_TABLE_VERSION = 1


def compile_route_table(config: Config, env_name: str | None = None) -> dict[str, Any]:
    """The route table for ``config`` (already resolved for its environment ``env_name``,
    whose outbound Worker, if any, decides ``outbound_params``).

    Routes are sorted longest prefix first; readers still pick the longest match themselves.
    A worker without a configured fallback gets ``"fallback": null`` (error envelope, 502/504).
    """
    routes = sorted(config.routes, key=lambda route: (-len(route.prefix), route.prefix))
    used = {route.worker for route in config.routes}
    outbound = config.environments[env_name].outbound if env_name is not None else None
    table: dict[str, Any] = {
        "version": ROUTE_TABLE_VERSION,
        "max_body_bytes": config.max_body_bytes,
        "max_json_check_bytes": config.max_json_check_bytes,
        "routes": [
            # In the config "/" is the catch-all; in the table that is the empty prefix,
            # which both dispatchers match against every path.
            {
                "prefix": "" if route.prefix == "/" else route.prefix,
                "worker": route.worker,
                "strip": route.effective_strip,
            }
            for route in routes
        ],
        "workers": {
            alias: {
                "timeout_ms": worker.timeout_ms,
                "fallback": worker.fallback,
                "fallback_status": worker.fallback_status,
                **_limits(worker),
            }
            for alias, worker in sorted(config.workers.items())
            if alias in used
        },
    }
    if outbound is not None and outbound.params:
        table["outbound_params"] = list(outbound.params)
    return table


def _limits(worker: WorkerConfig) -> dict[str, Any]:
    if worker.limits is None:
        return {}
    limits = worker.limits.model_dump(exclude_none=True)
    return {"limits": limits} if limits else {}
