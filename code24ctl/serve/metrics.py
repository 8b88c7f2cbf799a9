"""serve's Prometheus metrics, and the admin port that serves them with a health check.

The contract (``code24ctl stats --env local`` reads it):

- ``code24_dispatch_requests_total`` (counter): labels ``worker`` (the alias, "" when no route
  matched), ``route`` (the prefix, "" when none), ``status`` (the HTTP status answered, as text)
  and ``fallback_reason`` ("" when the worker's own answer passed through; else the reason,
  dispatcher refusals such as ``route_not_found`` included);
- ``code24_dispatch_duration_seconds`` (histogram): labels ``worker`` and ``route``.

Every answer serve gives is counted exactly once. The admin port is separate from the routed
space: ``GET /metrics`` and ``GET /healthz``, nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from code24ctl.errors import UsageError

REQUESTS_METRIC = "code24_dispatch_requests_total"
DURATION_METRIC = "code24_dispatch_duration_seconds"
DROPPED_LOG_LINES_METRIC = "code24_access_log_dropped_lines_total"
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class DispatchMetrics:
    """The counters of one serve. :meth:`record` is on the hot path: label children are
    bound once per label set and cached."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=False)
        self._requests = Counter(
            REQUESTS_METRIC.removesuffix("_total"),
            "Answers given by the dispatcher.",
            ("worker", "route", "status", "fallback_reason"),
            registry=self.registry,
        )
        self._duration = Histogram(
            DURATION_METRIC,
            "Time from a request's head to its answer's end, in seconds.",
            ("worker", "route"),
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self._counters: dict[tuple[str, str, int, str], Any] = {}
        self._histograms: dict[tuple[str, str], Any] = {}

    def record(
        self, worker: str | None, route: str | None, status: int, reason: str | None, seconds: float
    ) -> None:
        """Count one answer."""
        worker = worker or ""
        route = route or ""
        key = (worker, route, status, reason or "")
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = self._requests.labels(
                worker, route, str(status), reason or ""
            )
        counter.inc()
        pair = (worker, route)
        histogram = self._histograms.get(pair)
        if histogram is None:
            histogram = self._histograms[pair] = self._duration.labels(worker, route)
        histogram.observe(seconds)

    def exposition(self) -> bytes:
        """The metrics in the Prometheus text format."""
        return bytes(generate_latest(self.registry))

    def add_counter_callback(self, name: str, documentation: str, read: Callable[[], int]) -> None:
        """Expose a count kept elsewhere (read at each scrape)."""
        self.registry.register(_CallbackCounter(name.removesuffix("_total"), documentation, read))


class _CallbackCounter(Collector):
    """A counter whose value is read from elsewhere when scraped (a custom collector)."""

    def __init__(self, name: str, documentation: str, read: Callable[[], int]) -> None:
        self._name, self._documentation, self._read = name, documentation, read

    def collect(self) -> Iterable[Metric]:
        yield CounterMetricFamily(self._name, self._documentation, value=self._read())


@contextlib.asynccontextmanager
async def running_admin(
    host: str,
    port: int,
    metrics: DispatchMetrics | None,
    health: Callable[[], dict[str, Any]],
) -> AsyncIterator[int]:
    """Serve ``/metrics`` (when ``metrics``) and ``/healthz`` on ``host:port``; yields the port."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            method, target = [*head.split(b"\r\n", 1)[0].split(b" "), b"", b""][:2]
            path = target.split(b"?", 1)[0]
            if method not in (b"GET", b"HEAD"):
                status, kind, body = 405, "application/json", _error("method_not_allowed")
            elif path == b"/healthz":
                status, kind = 200, "application/json"
                body = json.dumps(health()).encode()
            elif path == b"/metrics" and metrics is not None:
                status, kind, body = 200, CONTENT_TYPE_LATEST, metrics.exposition()
            else:
                status, kind, body = 404, "application/json", _error("not_found")
            reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed"}[status]
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + (b"" if method == b"HEAD" else body)
            )
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        finally:
            writer.close()

    try:
        server = await asyncio.start_server(handle, host, port, limit=16 * 1024)
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        raise UsageError(
            f"cannot listen on {host}:{port} for --metrics-port: {why}",
            hint="choose another port with --metrics-port (not the one --port serves on)",
        ) from None
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2)


def _error(code: str) -> bytes:
    return json.dumps({"error": {"code": code}}).encode()
