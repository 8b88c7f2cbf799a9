"""The route table both dispatchers read (D1 of docs/dispatch.md), checked and typed, and the
one route lookup: :func:`match_route` over the table's prefix index (:func:`route_index`).

The document comes from :func:`code24ctl.dispatch.table.compile_route_table`; pure, like every
dispatch rule (:mod:`code24ctl.dispatch.routing` gives their order).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from code24ctl.route_defaults import (
    DEFAULT_FALLBACK_STATUS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_JSON_CHECK_BYTES,
    DEFAULT_TIMEOUT_MS,
)

# What an outbound Worker may be told about each call, as ``env.<name>``
# (``get(alias, {}, {outbound: {...}})``); namespaces.yaml names a subset.
OUTBOUND_PARAMS = ("worker", "environment", "request_id", "route")


@dataclass(frozen=True)
class Route:
    """One row of the route table: raw-path prefix, worker alias, leading part to strip."""

    prefix: str
    worker: str
    strip: str


@dataclass(frozen=True)
class WorkerPolicy:
    """How long to wait for a worker and what to answer when it fails."""

    timeout_ms: int = DEFAULT_TIMEOUT_MS
    fallback: Any = None
    fallback_status: int = DEFAULT_FALLBACK_STATUS
    # Custom limits as the table holds them: {"cpu_ms": int, "subrequests": int}, either absent.
    limits: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RouteTable:
    """The compiled route table (``compile_route_table``'s document), checked and typed.

    ``routes`` is kept longest prefix first so the first match is the longest one.
    """

    routes: tuple[Route, ...]
    workers: Mapping[str, WorkerPolicy] = field(default_factory=dict)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_json_check_bytes: int = DEFAULT_MAX_JSON_CHECK_BYTES
    outbound_params: tuple[str, ...] = ()
    # The routes by prefix, for match_route: built once, so a lookup never scans the table.
    index: Mapping[str, Route] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", route_index(self.routes))

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> RouteTable:
        """Check and type a route table document; raises ``ValueError`` naming the problem."""
        if document.get("version") != 1:
            raise ValueError(f"route table version {document.get('version')!r} is not 1")
        raw_routes = document.get("routes")
        if not isinstance(raw_routes, list):
            raise ValueError("route table 'routes' is not a list")
        routes: list[Route] = []
        for index, raw in enumerate(raw_routes):
            if not isinstance(raw, Mapping):
                raise ValueError(f"route {index} is not a mapping")
            prefix, worker = raw.get("prefix"), raw.get("worker")
            strip = raw.get("strip", prefix)
            # "" is the catch-all ("/" in namespaces.yaml, compiled to the empty prefix).
            if not isinstance(prefix, str) or not (prefix == "" or prefix.startswith("/")):
                raise ValueError(f"route {index}: prefix must be '' or start with '/'")
            if not isinstance(worker, str) or not worker:
                raise ValueError(f"route {index}: worker must be a name")
            if strip is None:
                strip = prefix
            if not isinstance(strip, str):
                raise ValueError(f"route {index}: strip must be a string")
            # "/api/" and "/api" are the same prefix; "/" (stored as "") matches every path.
            routes.append(Route(prefix.rstrip("/"), worker, strip.rstrip("/")))
        routes.sort(key=lambda route: -len(route.prefix))
        raw_workers = document.get("workers") or {}
        if not isinstance(raw_workers, Mapping):
            raise ValueError("route table 'workers' is not a mapping")
        workers = {alias: _policy(alias, raw) for alias, raw in raw_workers.items()}
        return cls(
            routes=tuple(routes),
            workers=workers,
            max_body_bytes=_limit(document, "max_body_bytes", DEFAULT_MAX_BODY_BYTES),
            max_json_check_bytes=_limit(
                document, "max_json_check_bytes", DEFAULT_MAX_JSON_CHECK_BYTES
            ),
            outbound_params=_outbound_params(document.get("outbound_params")),
        )

    def policy(self, alias: str) -> WorkerPolicy:
        """The worker's policy (defaults when the table does not list it)."""
        return self.workers.get(alias) or WorkerPolicy()


def _policy(alias: str, raw: Any) -> WorkerPolicy:
    if raw is None:
        return WorkerPolicy()
    if not isinstance(raw, Mapping):
        raise ValueError(f"worker {alias!r}: settings are not a mapping")
    timeout_ms = raw.get("timeout_ms", DEFAULT_TIMEOUT_MS)
    status = raw.get("fallback_status", DEFAULT_FALLBACK_STATUS)
    if timeout_ms is None:
        timeout_ms = DEFAULT_TIMEOUT_MS
    if status is None:
        status = DEFAULT_FALLBACK_STATUS
    if not _is_int(timeout_ms) or timeout_ms <= 0:
        raise ValueError(f"worker {alias!r}: timeout_ms must be a positive integer")
    if not _is_int(status) or not 200 <= status <= 599:
        raise ValueError(f"worker {alias!r}: fallback_status must be an HTTP status 200-599")
    return WorkerPolicy(timeout_ms, raw.get("fallback"), status, _limits(alias, raw.get("limits")))


def _limits(alias: str, raw: Any) -> dict[str, int]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not set(raw) <= {"cpu_ms", "subrequests"}:
        raise ValueError(f"worker {alias!r}: limits must be a mapping of cpu_ms, subrequests")
    limits: dict[str, int] = {}
    for name in ("cpu_ms", "subrequests"):
        value = raw.get(name)
        if value is None:
            continue
        if not _is_int(value) or value <= 0:
            raise ValueError(f"worker {alias!r}: limits.{name} must be a positive integer")
        limits[name] = int(value)
    return limits


def _outbound_params(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(name in OUTBOUND_PARAMS for name in raw):
        raise ValueError(
            f"route table 'outbound_params' must list names from {', '.join(OUTBOUND_PARAMS)}"
        )
    return tuple(raw)


def _limit(document: Mapping[str, Any], name: str, default: int) -> int:
    value = document.get(name)
    if value is None:
        return default
    if not _is_int(value) or value < 0:
        raise ValueError(f"route table {name!r} must be a non-negative integer")
    return int(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def route_index(routes: Iterable[Route]) -> dict[str, Route]:
    """Routes by prefix, for :func:`match_route`. Of two routes with one prefix, the first
    longest-first (stable) wins, as in a scan of the table sorted longest first."""
    index: dict[str, Route] = {}
    for route in sorted(routes, key=lambda route: -len(route.prefix)):
        index.setdefault("" if route.prefix == "/" else route.prefix, route)
    return index


def match_route(routes: Sequence[Route] | Mapping[str, Route], path: str) -> Route | None:
    """The route with the longest prefix matching ``path`` on a segment boundary, or None.

    Looks up each segment boundary of ``path`` from the longest candidate down, so the cost
    depends on the path, not on the size of the table. Pass the table's ``index`` (a
    sequence of routes is indexed first, in any order).
    """
    # dict first: the table's index is one, and an ABC check costs more than the lookup.
    index = routes if isinstance(routes, (dict, Mapping)) else route_index(routes)
    route = index.get(path)
    end = len(path)
    while route is None and end > 0:
        end = path.rfind("/", 0, end)
        if end < 0:
            return None
        route = index.get(path[:end])  # path[:0] is "", the catch-all
    return route
