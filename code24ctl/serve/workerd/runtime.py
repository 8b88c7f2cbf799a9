"""Run ``serve --runtime workerd``: one Node.js process (runner.mjs) holding one workerd.

This process supervises it. workerd listens on the serve port itself (no proxy in between);
what the runner reports on stdout becomes serve's access log and metrics (from the dispatcher's
own line per request), and the admin port (``/healthz``, ``/metrics``) answers here, as in the
Python runtime. SIGINT/SIGTERM stop workerd and return (exit 0); SIGHUP and ``--watch``
rebuild the plan and hand it over, keeping the running one when the new one fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from code24ctl.errors import Code24Error, UsageError
from code24ctl.serve.access_log import AccessLog
from code24ctl.serve.metrics import DROPPED_LOG_LINES_METRIC, DispatchMetrics, running_admin
from code24ctl.serve.server import (
    ReloadOutcome,
    ServeInfo,
    bind_socket,
    unreachable_upstreams,
)
from code24ctl.serve.workerd.node import NodeRuntime, child_environment, runner_script
from code24ctl.serve.workerd.plan import WorkerdPlan

START_TIMEOUT_S = 90
STOP_TIMEOUT_S = 15
RELOAD_TIMEOUT_S = 90


class WorkerdStopped(Code24Error):
    """workerd (or the Node.js runner) stopped on its own while serving (exit 1)."""

    exit_code = 1


@dataclass(frozen=True)
class WorkerdOptions:
    """How to run the workerd runtime beyond its plan."""

    node: NodeRuntime
    admin_port: int | None = None
    metrics: bool = False
    reload: Callable[[], WorkerdPlan] | None = None
    watch: bool = False
    #: Where KV, R2, D1 and Durable Object data live; None: a temporary folder for this run
    #: (kept across reloads, removed at exit).
    persist: Path | None = None


def run_workerd_serve(
    plan: WorkerdPlan,
    *,
    host: str,
    port: int,
    access_log: AccessLog | None,
    on_ready: Callable[[ServeInfo], None],
    options: WorkerdOptions,
    on_reload: Callable[[ReloadOutcome], None] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM, then stop workerd and return."""
    # The port is checked here, so a busy one is the same clear error as in the Python runtime;
    # workerd binds it again right after.
    bind_socket(host, port).close()
    with contextlib.ExitStack() as stack:
        persist = options.persist
        if persist is None:
            persist = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="code24-serve-")))
        supervisor = _Supervisor(plan, host, port, access_log, options, persist)
        asyncio.run(supervisor.run(on_ready, on_reload))


class _Supervisor:
    def __init__(
        self,
        plan: WorkerdPlan,
        host: str,
        port: int,
        access_log: AccessLog | None,
        options: WorkerdOptions,
        persist: Path,
    ) -> None:
        self.plan = plan
        self.host = host
        self.port = port
        self.access_log = access_log
        self.options = options
        self.persist = persist
        self.metrics = DispatchMetrics() if options.metrics else None
        self.process: asyncio.subprocess.Process | None = None
        self.reloads = 0
        self.last_error: str | None = None
        self.data_points = 0
        self.stop = asyncio.Event()
        self.ready: asyncio.Future[dict[str, Any]] | None = None
        self.reload_results: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.reload_lock = asyncio.Lock()
        self.stderr_tail: list[str] = []
        self.stopping = False
        self.tasks: set[asyncio.Task[Any]] = set()

    async def run(
        self,
        on_ready: Callable[[ServeInfo], None],
        on_reload: Callable[[ReloadOutcome], None] | None,
    ) -> None:
        self.on_reload = on_reload
        self.ready = asyncio.get_running_loop().create_future()
        node = self.options.node
        self.process = await asyncio.create_subprocess_exec(
            node.node,
            str(runner_script()),
            str(node.miniflare_dir),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # Its own session: a terminal's Ctrl+C reaches serve, which stops workerd in order.
            start_new_session=True,
            env=child_environment(),
        )
        readers = [
            asyncio.create_task(self._events()),
            asyncio.create_task(self._logs()),
        ]
        try:
            await self._send(self.plan.runner_plan(self.host, self.port, self.persist))
            try:
                ready = await asyncio.wait_for(asyncio.shield(self.ready), START_TIMEOUT_S)
            except TimeoutError:
                raise UsageError(
                    f"workerd did not start within {START_TIMEOUT_S} s{self._tail()}"
                ) from None
            await self._serve(ready, on_ready)
        finally:
            await self._shutdown()
            for task in readers:
                task.cancel()
            for task in list(self.tasks):
                task.cancel()

    async def _serve(self, ready: Mapping[str, Any], on_ready: Callable[[ServeInfo], None]) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop.set)
        if self.options.reload is not None:
            loop.add_signal_handler(signal.SIGHUP, self._reload_soon)
        try:
            async with contextlib.AsyncExitStack() as stack:
                if self.metrics is not None and self.access_log is not None:
                    log = self.access_log
                    self.metrics.add_counter_callback(
                        DROPPED_LOG_LINES_METRIC,
                        "Access log lines dropped because the log could not keep up.",
                        lambda: log.dropped,
                    )
                admin_url = None
                if self.options.admin_port is not None:
                    admin_port = await stack.enter_async_context(
                        running_admin(
                            self.host, self.options.admin_port, self.metrics, self._health
                        )
                    )
                    shown = f"[{self.host}]" if ":" in self.host else self.host
                    admin_url = f"http://{shown}:{admin_port}"
                if self.options.watch and self.options.reload is not None:
                    # Stamped now, before the banner: a change made right after it counts.
                    watcher = asyncio.create_task(self._watch(self._stamps()))
                    stack.callback(watcher.cancel)
                on_ready(await self._info(ready, admin_url))
                stopped = asyncio.create_task(self.stop.wait())
                assert self.process is not None
                exited = asyncio.create_task(self.process.wait())
                done, _ = await asyncio.wait({stopped, exited}, return_when=asyncio.FIRST_COMPLETED)
                stopped.cancel()
                if exited in done and not self.stop.is_set():
                    raise WorkerdStopped(
                        f"workerd stopped on its own (status {self.process.returncode})"
                        f"{self._tail()}"
                    )
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                loop.remove_signal_handler(sig)

    async def _info(self, ready: Mapping[str, Any], admin_url: str | None) -> ServeInfo:
        plan = self.plan
        upstreams = {alias: source.shown for alias, source in plan.sources.items()}
        urls = {a: s.shown for a, s in plan.sources.items() if s.kind == "upstream"}
        port = int(ready["port"])
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return ServeInfo(
            url=f"http://{shown}:{port}",
            host=self.host,
            port=port,
            environment=plan.environment,
            upstreams=upstreams,
            routes=[(r.prefix, r.worker) for r in sorted(plan.table.routes, key=_prefix)],
            demo_workers={a: s.shown for a, s in plan.sources.items() if s.kind == "demo"},
            admin_url=admin_url,
            unreachable=await unreachable_upstreams(urls),
            runtime="workerd",
            missing_bindings={a: list(s.missing) for a, s in plan.sources.items() if s.missing},
        )

    def _health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "runtime": "workerd",
            "environment": self.plan.environment,
            "routes": len(self.plan.table.routes),
            "reloads": self.reloads,
            "last_reload_error": self.last_error,
            "analytics_data_points": self.data_points,
        }

    async def _send(self, document: Mapping[str, Any]) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(json.dumps(document).encode() + b"\n")
        await self.process.stdin.drain()

    async def _events(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for line in bounded_lines(self.process.stdout, MAX_EVENT_LINE_BYTES):
            try:
                event = json.loads(line)
            except ValueError:
                self._runtime_output(line.decode(errors="replace").rstrip())
                continue
            if not isinstance(event, dict):
                continue
            kind = event.get("event")
            if kind == "request":
                self._request(event)
            elif kind == "data_point":
                self.data_points += 1
            elif kind == "ready":
                if self.ready is not None and not self.ready.done():
                    self.ready.set_result(event)
            elif kind in ("reloaded", "reload_failed"):
                self.reload_results.put_nowait(event)
            elif kind == "fatal":
                error = str(event.get("error"))
                if self.ready is not None and not self.ready.done():
                    self.ready.set_exception(
                        UsageError(f"workerd did not start: {error}{self._tail()}")
                    )
                elif self.access_log is not None:
                    self.access_log.message(f"error: {error}")
        if self.ready is not None and not self.ready.done():
            await asyncio.sleep(0.2)  # let the last stderr lines in
            self.ready.set_exception(
                UsageError(f"workerd stopped before it was ready{self._tail()}")
            )

    def _request(self, event: Mapping[str, Any]) -> None:
        worker = str(event.get("worker") or "") or None
        reason = str(event.get("fallback_reason") or "") or None
        status = int(event.get("status") or 0)
        ms = float(event.get("dispatch_ms") or 0)
        if self.access_log is not None:
            self.access_log.record(
                method=str(event.get("method", "")),
                path=str(event.get("path", "")),
                worker=worker,
                status=status,
                reason=reason,
                ms=ms,
                request_id=str(event.get("request_id", "")),
            )
        if self.metrics is not None:
            self.metrics.record(worker, str(event.get("route") or ""), status, reason, ms / 1000)

    async def _logs(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        stderr = self.process.stderr
        async for line in bounded_lines(stderr, MAX_LOG_LINE_BYTES):
            text = line.decode(errors="replace").rstrip()
            if not text:
                continue
            self.stderr_tail = [*self.stderr_tail[-29:], text]
            if self.ready is not None and self.ready.done():
                self._runtime_output(text)

    def _runtime_output(self, text: str) -> None:
        if self.access_log is not None:
            self.access_log.runtime_output(text)

    def _tail(self) -> str:
        lines = [line for line in self.stderr_tail if line.strip()]
        return (":\n" + "\n".join(lines[-15:])) if lines else ""

    def _reload_soon(self) -> None:
        task = asyncio.get_running_loop().create_task(self._reload())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _reload(self) -> None:
        load = self.options.reload
        if load is None:
            return
        async with self.reload_lock:
            error: str | None = None
            try:
                plan = await asyncio.to_thread(load)
            except Exception as exc:  # any config problem: report it, keep serving the old one
                error = str(exc) or type(exc).__name__
            else:
                await self._send({"reload": plan.runner_plan(self.host, self.port, self.persist)})
                try:
                    result = await asyncio.wait_for(self.reload_results.get(), RELOAD_TIMEOUT_S)
                except TimeoutError:
                    result = {"event": "reload_failed", "error": "workerd did not restart in time"}
                if result.get("event") == "reloaded":
                    self.plan = plan
                    self.reloads += 1
                else:
                    error = str(result.get("error"))
            self.last_error = error
            outcome = ReloadOutcome(error, len(self.plan.table.routes))
        if self.on_reload is not None:
            self.on_reload(outcome)

    def _stamps(self) -> dict[Path, tuple[float, int] | None]:
        found: dict[Path, tuple[float, int] | None] = {}
        for path in self.plan.watched:
            try:
                status = os.stat(path)
            except OSError:
                found[path] = None
            else:
                found[path] = (status.st_mtime_ns, status.st_size)
        return found

    async def _watch(
        self, seen: dict[Path, tuple[float, int] | None], interval_s: float = 1.0
    ) -> None:
        """Reload whenever the config or a worker's file changes (the plan says which)."""
        while True:
            await asyncio.sleep(interval_s)
            now = self._stamps()
            if now != seen:
                await self._reload()
                # What the reload read (or failed on) is the new baseline.
                seen = now if self.last_error else self._stamps()

    async def _shutdown(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(OSError, RuntimeError):
            assert process.stdin is not None
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


def _prefix(route: Any) -> str:
    return str(route.prefix)


#: The longest event line the runner writes is a request's record (its path, a few KiB).
MAX_EVENT_LINE_BYTES = 1024 * 1024
#: The longest log line shown whole; a longer one is shown cut (a Worker logging a large body).
MAX_LOG_LINE_BYTES = 64 * 1024
CUT_MARK = b" [cut: longer than 64 KiB]"


async def bounded_lines(stream: asyncio.StreamReader, limit: int) -> AsyncIterator[bytes]:
    """The lines of ``stream``, each at most ``limit`` bytes: a longer one is cut there and
    marked, and the rest of it skipped, so one long line never ends the reading of the lines
    after it (``readline`` raises past the stream's own limit and leaves its tail behind)."""
    pending = bytearray()
    skipping = False
    while chunk := await stream.read(64 * 1024):
        pending += chunk
        while True:
            end = pending.find(b"\n")
            if end < 0:
                if not skipping and len(pending) > limit:
                    yield bytes(pending[:limit]) + CUT_MARK
                    skipping = True
                if skipping:
                    pending.clear()
                break
            line = bytes(pending[:end])
            del pending[: end + 1]
            if skipping:
                skipping = False
                continue
            yield line[:limit] + CUT_MARK if len(line) > limit else line
    if pending and not skipping:
        yield bytes(pending[:limit])
