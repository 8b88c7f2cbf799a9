"""Run the dispatcher app under uvicorn (uvloop + httptools), with or without demo workers."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import signal
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from code24ctl.config import ResolvedConfig
from code24ctl.dispatch.route_table import RouteTable
from code24ctl.dispatch.table import compile_route_table
from code24ctl.errors import UsageError
from code24ctl.serve.access_log import AccessLog
from code24ctl.serve.app import DispatchApp, ServeSettings
from code24ctl.serve.limits import ClientLimits
from code24ctl.serve.metrics import DROPPED_LOG_LINES_METRIC, DispatchMetrics, running_admin

if TYPE_CHECKING:
    import uvicorn

DEFAULT_PORT = 8787
# In-flight requests get this long to finish after SIGINT/SIGTERM.
GRACEFUL_SHUTDOWN_S = 10


@dataclass(frozen=True)
class ServeInfo:
    """What is running, for the banner and for ``--json``."""

    url: str
    host: str
    port: int
    environment: str
    upstreams: Mapping[str, str]
    routes: list[tuple[str, str]]
    demo_workers: Mapping[str, str] = field(default_factory=dict)
    # Where /healthz (and /metrics) answer; None without an admin port.
    admin_url: str | None = None
    # Aliases whose upstream refused a connection at start-up (a warning, not a refusal).
    unreachable: list[str] = field(default_factory=list)
    # "python" (the rules in Python, in front of upstream URLs) or "workerd" (dispatcher.js and
    # the workers' own code in workerd).
    runtime: str = "python"
    # workerd runtime: per alias, the bindings its local Worker does not get, and why.
    missing_bindings: Mapping[str, list[str]] = field(default_factory=dict)


def settings_from_config(resolved: ResolvedConfig) -> ServeSettings:
    """The table, environment name and upstreams of a local environment.

    A Cloudflare environment is refused (exit 2): serve only ever talks to local upstreams.
    """
    environment = resolved.environment
    if not environment.is_local:
        local = [n for n, e in resolved.config.environments.items() if e.is_local]
        raise UsageError(
            f"`serve` runs a local environment (one with 'upstreams'); "
            f"{resolved.env_name!r} (from {resolved.env_origin}) is a Cloudflare environment",
            hint=f"use --env {local[0]}"
            if local
            else "add a local environment with base_url and upstreams to the config",
        )
    table = RouteTable.from_document(compile_route_table(resolved.config, resolved.env_name))
    return ServeSettings(
        table=table,
        environment=environment.vars.get("ENVIRONMENT", resolved.env_name),
        upstreams=dict(environment.upstreams or {}),
        base_port=default_port(resolved),
    )


def default_port(resolved: ResolvedConfig) -> int:
    """The port of the local environment's ``base_url`` (so ``probe --env local`` finds serve)."""
    base_url = resolved.environment.base_url
    if base_url:
        parts = urlsplit(base_url)
        if parts.port is not None:
            return parts.port
        return 443 if parts.scheme == "https" else 80
    return DEFAULT_PORT


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket, bound before anything starts so a busy port is a clear error."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(f"cannot bind {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        hint = "choose another with --port" if port else None
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}", hint=hint) from None
    sock.setblocking(False)
    return sock


def _uvicorn_config(app: DispatchApp, limits: ClientLimits) -> uvicorn.Config:
    import uvicorn

    from code24ctl.serve.http.protocol import ProtocolPolicy, protocol_class

    return uvicorn.Config(
        app,
        http=protocol_class(ProtocolPolicy(limits, app.protocol_refused)),
        timeout_keep_alive=limits.idle_timeout_s,  # type: ignore[arg-type]
        ws="none",  # an Upgrade request is forwarded like any other (minus hop-by-hop headers)
        lifespan="on",
        interface="asgi3",
        log_config=None,
        access_log=False,  # serve writes its own access line
        proxy_headers=False,
        server_header=False,
        date_header=True,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )


def _server_class(on_hangup: Callable[[], None] | None = None) -> type[uvicorn.Server]:
    import uvicorn

    class DispatchServer(uvicorn.Server):
        """uvicorn's server, except a signal means "shut down and return" (exit 0), and
        SIGHUP means ``on_hangup`` (reload the config) instead of death.

        uvicorn re-raises the signal after shutting down, which kills the process with it.
        """

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            loop = asyncio.get_running_loop()
            handled = (signal.SIGINT, signal.SIGTERM)
            for sig in handled:
                loop.add_signal_handler(sig, self.handle_exit, sig, None)
            if on_hangup is not None:
                loop.add_signal_handler(signal.SIGHUP, on_hangup)
            try:
                yield
            finally:
                for sig in handled:
                    loop.remove_signal_handler(sig)
                if on_hangup is not None:
                    loop.remove_signal_handler(signal.SIGHUP)

    return DispatchServer


@dataclass
class RunningServe:
    """A started serve instance: its app (``app.settings`` may be swapped) and address."""

    app: DispatchApp
    server: uvicorn.Server
    host: str
    port: int
    task: asyncio.Task[None]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def wait(self) -> None:
        """Until the server stops (a signal, or :meth:`stop`)."""
        await asyncio.shield(self.task)

    async def stop(self) -> None:
        self.server.should_exit = True
        await self.task


@contextlib.asynccontextmanager
async def running_serve(
    settings: ServeSettings,
    sock: socket.socket,
    *,
    access_log: AccessLog | None = None,
    metrics: DispatchMetrics | None = None,
    limits: ClientLimits | None = None,
    on_hangup: Callable[[], None] | None = None,
) -> AsyncIterator[RunningServe]:
    """Start serve on ``sock`` in the running loop; stop it (gracefully) on exit."""
    from code24ctl.serve.http.upstream import new_pool

    app = DispatchApp(settings, pool_factory=new_pool, access_log=access_log, metrics=metrics)
    server = _server_class(on_hangup)(_uvicorn_config(app, limits or ClientLimits()))
    host, port = sock.getsockname()[:2]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()  # raises what stopped it
            raise UsageError("serve stopped while starting")
        await asyncio.sleep(0.01)
    handle = RunningServe(app, server, host, port, task)
    try:
        yield handle
    finally:
        if not task.done():
            await handle.stop()


@dataclass(frozen=True)
class ServeOptions:
    """How to run serve beyond its settings (all optional)."""

    demo: bool = False
    # None: each sample worker takes its configured upstream port (any free one if busy);
    # 0: any free ports; N: consecutive ports from N.
    demo_ports: int | None = None
    limits: ClientLimits = field(default_factory=ClientLimits)
    # The admin port (health, and metrics when ``metrics``); None: no admin port.
    admin_port: int | None = None
    metrics: bool = False
    # Load the settings again (SIGHUP; and with ``watch``, when ``watch`` changes).
    reload: Callable[[], ServeSettings] | None = None
    watch: str | None = None


@dataclass(frozen=True)
class ReloadOutcome:
    """What a reload did: ``error`` is None when the new config serves; ``dropped`` names the
    route prefixes the previous config served and the new one does not."""

    error: str | None
    routes: int
    dropped: tuple[str, ...] = ()
    # What the reload could not apply (a new base_url port: serve keeps its socket).
    note: str | None = None


def run_serve(
    settings: ServeSettings,
    *,
    host: str,
    port: int,
    demo: bool,
    access_log: AccessLog | None,
    on_ready: Callable[[ServeInfo], None],
    options: ServeOptions | None = None,
    on_reload: Callable[[ReloadOutcome], None] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM, then shut down gracefully and return.

    With ``demo``, built-in sample workers start first (127.0.0.1) and every alias's upstream
    points at them. SIGHUP (and a change of ``options.watch``) reloads the settings: a config
    that fails to load is reported through ``on_reload`` and the old one keeps serving.
    """
    options = replace(options or ServeOptions(), demo=demo)
    if port and options.admin_port == port:
        raise UsageError(
            f"--metrics-port {port} is also the port serve listens on (--port or base_url)",
            hint="choose another port for --metrics-port",
        )
    sock = bind_socket(host, port)
    try:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(_serve_main(settings, sock, host, access_log, on_ready, options, on_reload))
    finally:
        sock.close()


class _Reloader:
    """Swaps the running app's settings for freshly loaded ones; keeps the old on failure."""

    def __init__(
        self,
        options: ServeOptions,
        demo_urls: Mapping[str, str],
        on_reload: Callable[[ReloadOutcome], None] | None,
    ) -> None:
        self.options = options
        self.demo_urls = demo_urls
        self.on_reload = on_reload
        self.app: DispatchApp | None = None
        self.listening: int | None = None  # the port serve listens on, once it does
        self.reloads = 0
        self.last_error: str | None = None
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    def __call__(self) -> None:
        """Reload in the background: loading a big config must not stall requests."""
        if self.options.reload is None or self.app is None:
            return
        task = asyncio.get_running_loop().create_task(self.reload())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reload(self) -> None:
        """Load the settings again (in a thread) and swap them in, or report why not."""
        load, app = self.options.reload, self.app
        if load is None or app is None:
            return
        async with self._lock:  # one reload at a time, in the order they were asked for
            try:
                settings = await asyncio.to_thread(load)
            except Exception as exc:  # any config problem: report it, keep serving the old one
                self.last_error = str(exc) or type(exc).__name__
                outcome = ReloadOutcome(self.last_error, len(app.settings.table.routes))
            else:
                if self.demo_urls:
                    settings = replace(settings, upstreams=self.demo_urls)
                before = {_order(route) for route in app.settings.table.routes}
                after = {_order(route) for route in settings.table.routes}
                note = _port_note(app.settings.base_port, settings.base_port, self.listening)
                # Requests in flight keep the settings they started with.
                app.settings = settings
                self.reloads += 1
                self.last_error = None
                dropped = tuple(sorted(before - after))
                outcome = ReloadOutcome(None, len(settings.table.routes), dropped, note)
        if self.on_reload is not None:
            self.on_reload(outcome)


#: How often ``--watch`` looks at the config file.
WATCH_INTERVAL_S = 1.0
#: How long the file must stay unchanged after a change before it is reloaded: an editor or a
#: deploy script writing it in several steps is not read half-way (a truncated file can be
#: valid YAML with fewer routes).
WATCH_SETTLE_S = 0.5


def _port_note(old: int | None, new: int | None, listening: int | None) -> str | None:
    """What to say when a reload moves base_url's port: serve cannot follow without a restart."""
    if old is None or new is None or old == new:
        return None
    where = f"serve keeps listening on port {listening}" if listening else "serve keeps its port"
    return (
        f"base_url's port changed from {old} to {new}, but {where}: restart serve to move "
        "(probe --env finds it at the new port only then)"
    )


async def _watch(
    path: str,
    reload: Callable[[], None],
    interval_s: float = WATCH_INTERVAL_S,
    settle_s: float = WATCH_SETTLE_S,
) -> None:
    """Call ``reload`` once ``path``'s modification time or size changed and then stayed the
    same for ``settle_s``, or once the file is gone."""

    def stamp() -> tuple[int, int] | None:
        try:
            status = os.stat(path)
        except OSError:
            return None
        return (status.st_mtime_ns, status.st_size)

    seen = stamp()
    while True:
        await asyncio.sleep(interval_s)
        now = stamp()
        if now == seen:
            continue
        while now is not None:  # settle: a quiet period after the last change
            await asyncio.sleep(settle_s)
            later = stamp()
            if later == now:
                break
            now = later
        # Gone (moved, deleted) reloads too: the failure says the file is missing, and the
        # previous config keeps serving.
        if now != seen:
            seen = now
            reload()


async def unreachable_upstreams(upstreams: Mapping[str, str], timeout_s: float = 1.0) -> list[str]:
    """The aliases whose upstream does not accept a TCP connection (sorted)."""

    async def reachable(url: str) -> bool:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            async with asyncio.timeout(timeout_s):
                _, writer = await asyncio.open_connection(parts.hostname, port)
        except (OSError, TimeoutError, ValueError):
            return False
        writer.close()
        return True

    aliases = sorted(upstreams)
    results = await asyncio.gather(*(reachable(upstreams[a]) for a in aliases))
    return [alias for alias, ok in zip(aliases, results, strict=True) if not ok]


async def _serve_main(
    settings: ServeSettings,
    sock: socket.socket,
    host: str,
    access_log: AccessLog | None,
    on_ready: Callable[[ServeInfo], None],
    options: ServeOptions,
    on_reload: Callable[[ReloadOutcome], None] | None,
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        demo_urls: dict[str, str] = {}
        if options.demo:
            from code24ctl.serve.demo import running_demo_workers

            aliases = sorted({route.worker for route in settings.table.routes})
            demo_urls = await stack.enter_async_context(
                running_demo_workers(aliases, settings.upstreams, base_port=options.demo_ports)
            )
            settings = replace(settings, upstreams=demo_urls)
        reloader = _Reloader(options, demo_urls, on_reload)
        metrics = DispatchMetrics() if options.metrics else None
        if metrics is not None and access_log is not None:
            metrics.add_counter_callback(
                DROPPED_LOG_LINES_METRIC,
                "Access log lines dropped because the log could not keep up.",
                lambda: access_log.dropped,
            )
        serve = await stack.enter_async_context(
            running_serve(
                settings,
                sock,
                access_log=access_log,
                metrics=metrics,
                limits=options.limits,
                on_hangup=reloader if options.reload is not None else None,
            )
        )
        reloader.app = serve.app
        reloader.listening = serve.port
        admin_url = None
        if options.admin_port is not None:

            def health() -> dict[str, Any]:
                current = serve.app.settings
                return {
                    "status": "ok",
                    "environment": current.environment,
                    "routes": len(current.table.routes),
                    "reloads": reloader.reloads,
                    "last_reload_error": reloader.last_error,
                }

            admin_port = await stack.enter_async_context(
                running_admin(host, options.admin_port, metrics, health)
            )
            shown = f"[{host}]" if ":" in host else host
            admin_url = f"http://{shown}:{admin_port}"
        if options.watch is not None and options.reload is not None:
            watcher = asyncio.create_task(_watch(options.watch, reloader))
            stack.callback(watcher.cancel)
        unreachable = [] if options.demo else await unreachable_upstreams(settings.upstreams)
        on_ready(
            ServeInfo(
                url=serve.url,
                host=serve.host,
                port=serve.port,
                environment=settings.environment,
                upstreams=settings.upstreams,
                routes=[(r.prefix, r.worker) for r in sorted(settings.table.routes, key=_order)],
                demo_workers=demo_urls,
                admin_url=admin_url,
                unreachable=unreachable,
            )
        )
        await serve.wait()


def _order(route: Any) -> str:
    return str(route.prefix)
