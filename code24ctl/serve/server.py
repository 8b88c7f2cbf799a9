"""Run the dispatcher app under uvicorn (uvloop + httptools), with or without demo workers."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import signal
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from code24ctl.config import ResolvedConfig
from code24ctl.dispatch.routing import RouteTable
from code24ctl.dispatch.table import compile_route_table
from code24ctl.errors import UsageError
from code24ctl.serve.access_log import AccessLog
from code24ctl.serve.app import DispatchApp, ServeSettings

if TYPE_CHECKING:
    import uvicorn

DEFAULT_HOST = "127.0.0.1"
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

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "host": self.host,
            "port": self.port,
            "environment": self.environment,
            "routes": [{"prefix": p or "/", "worker": w} for p, w in self.routes],
            "upstreams": dict(self.upstreams),
            "demo": bool(self.demo_workers),
        }


def settings_from_config(resolved: ResolvedConfig) -> ServeSettings:
    """The table, environment name and upstreams of a local environment.

    A Cloudflare environment is refused (exit 2): serve only ever talks to local upstreams.
    """
    environment = resolved.environment
    if not environment.is_local:
        local = [n for n, e in resolved.config.environments.items() if e.is_local]
        raise UsageError(
            f"`serve` runs a local environment (one with 'upstreams'); "
            f"{resolved.env_name!r} is a Cloudflare environment",
            hint=f"use --env {local[0]}"
            if local
            else "add a local environment with base_url and upstreams to the config",
        )
    table = RouteTable.from_document(compile_route_table(resolved.config))
    return ServeSettings(
        table=table,
        environment=environment.vars.get("ENVIRONMENT", resolved.env_name),
        upstreams=dict(environment.upstreams or {}),
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


def _uvicorn_config(app: DispatchApp) -> uvicorn.Config:
    import uvicorn

    from code24ctl.serve.protocol import DispatchHttpProtocol

    return uvicorn.Config(
        app,
        http=DispatchHttpProtocol,
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


def _server_class() -> type[uvicorn.Server]:
    import uvicorn

    class DispatchServer(uvicorn.Server):
        """uvicorn's server, except a signal means "shut down and return" (exit 0).

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
            try:
                yield
            finally:
                for sig in handled:
                    loop.remove_signal_handler(sig)

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
) -> AsyncIterator[RunningServe]:
    """Start serve on ``sock`` in the running loop; stop it (gracefully) on exit."""
    from code24ctl.serve.upstream import new_pool

    app = DispatchApp(settings, pool_factory=new_pool, access_log=access_log)
    server = _server_class()(_uvicorn_config(app))
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


def run_serve(
    settings: ServeSettings,
    *,
    host: str,
    port: int,
    demo: bool,
    access_log: AccessLog | None,
    on_ready: Callable[[ServeInfo], None],
) -> None:
    """Serve until SIGINT/SIGTERM, then shut down gracefully and return.

    With ``demo``, built-in sample workers start first (ephemeral 127.0.0.1 ports) and every
    alias's upstream points at them.
    """
    sock = bind_socket(host, port)
    try:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(_serve_main(settings, sock, demo, access_log, on_ready))
    finally:
        sock.close()


async def _serve_main(
    settings: ServeSettings,
    sock: socket.socket,
    demo: bool,
    access_log: AccessLog | None,
    on_ready: Callable[[ServeInfo], None],
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        demo_urls: dict[str, str] = {}
        if demo:
            from code24ctl.serve.demo import running_demo_workers

            aliases = sorted({route.worker for route in settings.table.routes})
            demo_urls = await stack.enter_async_context(
                running_demo_workers(aliases, settings.upstreams)
            )
            settings = replace(settings, upstreams=demo_urls)
        serve = await stack.enter_async_context(
            running_serve(settings, sock, access_log=access_log)
        )
        on_ready(
            ServeInfo(
                url=serve.url,
                host=serve.host,
                port=serve.port,
                environment=settings.environment,
                upstreams=settings.upstreams,
                routes=[(r.prefix, r.worker) for r in sorted(settings.table.routes, key=_order)],
                demo_workers=demo_urls,
            )
        )
        await serve.wait()


def _order(route: Any) -> str:
    return str(route.prefix)
