"""EmulatorServer: the emulator on a real port (uvicorn in a background thread)."""

from __future__ import annotations

import threading
import time
from types import TracebackType

from .app import API_PREFIX, create_app
from .state import EmulatorState

__all__ = ["EmulatorServer"]


class EmulatorServer:
    """Serve an :class:`EmulatorState` over HTTP on ``127.0.0.1`` (port 0 = any free port).

    Use as a context manager, or call :meth:`start` / :meth:`stop`. ``url`` is
    ``http://127.0.0.1:PORT`` and ``api_base`` is ``url + "/client/v4"`` (what
    ``CLOUDFLARE_BASE_URL`` should be).
    """

    def __init__(
        self, state: EmulatorState | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.state = state if state is not None else EmulatorState()
        self.host = host
        self._requested_port = port
        self.port: int | None = None
        self._server: object | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` of the running server."""
        if self.port is None:
            raise RuntimeError("the emulator server is not running")
        return f"http://{self.host}:{self.port}"

    @property
    def api_base(self) -> str:
        """The SDK base URL: ``<url>/client/v4``."""
        return self.url + API_PREFIX

    def start(self, timeout: float = 10.0) -> EmulatorServer:
        """Start serving and wait until the socket is bound."""
        import uvicorn

        if self._thread is not None:
            raise RuntimeError("already started")
        config = uvicorn.Config(
            create_app(self.state),
            host=self.host,
            port=self._requested_port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        self._server = server
        thread = threading.Thread(target=server.run, name="cf-emulator", daemon=True)
        self._thread = thread
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the emulator server failed to start")
            if time.monotonic() > deadline:
                server.should_exit = True
                raise RuntimeError("the emulator server did not start in time")
            time.sleep(0.002)
        sockets = server.servers[0].sockets
        self.port = int(sockets[0].getsockname()[1])
        return self

    def stop(self, wait: bool = True, timeout: float = 5.0) -> None:
        """Stop serving; with ``wait`` False, return at once and let the thread wind down.

        uvicorn polls its exit flag every 0.1 s and pauses 0.1 s while closing connections, so
        fixtures stop without waiting (the port is ephemeral and the thread is a daemon).
        """
        import uvicorn

        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        assert isinstance(server, uvicorn.Server)
        server.should_exit = True
        self._server = None
        self._thread = None
        if not wait:
            return
        thread.join(timeout)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout)

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
