"""``LocalServer``: the app served by uvicorn on a background thread, for tests and notebooks."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette

from .app import create_app
from .config import ServerConfig

__all__ = ["LocalServer", "UvicornServer", "bind_socket", "url_for"]


class UvicornServer(uvicorn.Server):
    """A uvicorn server that ends open status streams first when it shuts down.

    Without this, uvicorn's graceful shutdown would wait for every connected stream.
    """

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        app = self.config.app
        server_state = getattr(getattr(app, "state", None), "server", None)
        if server_state is not None:
            server_state.queue.close_streams()
        await super().shutdown(sockets)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port=0``: a free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not the default 0: asyncio turns Nagle off (TCP_NODELAY) only for sockets
    # it sees as TCP, and with Nagle on each request on a kept-alive connection waits ~40 ms.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def url_for(host: str, port: int) -> str:
    """The base URL a client on this machine uses for a server bound to ``host:port``."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


class LocalServer:
    """The local fal-compatible server on a daemon thread with its own event loop.

    ``LocalServer(config)`` or ``LocalServer(port=0, concurrency=1, ...)`` (keywords are
    :class:`ServerConfig` fields). :meth:`start` returns once the server answers; :meth:`stop`
    shuts it down and joins the thread. ``app`` is the served Starlette app once started.
    Use it as a context manager::

        with LocalServer(port=0) as server:
            print(server.url)   # e.g. http://127.0.0.1:54321
    """

    def __init__(self, config: ServerConfig | None = None, **options: Any) -> None:
        if config is not None and options:
            raise TypeError("pass either a ServerConfig or keyword options, not both")
        self.config = config or ServerConfig(**options)
        self.app: Starlette | None = None
        self._server: UvicornServer | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._error: BaseException | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        """The server's base URL; set once :meth:`start` returned."""
        if self.port is None:
            raise RuntimeError("the server is not started")
        return self.config.public_url or url_for(self.config.host, self.port)

    @property
    def running(self) -> bool:
        """True while the server thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 15.0) -> LocalServer:
        """Start serving; return once the server accepts requests (``RuntimeError`` if not)."""
        if self.running:
            return self
        app = self.app = create_app(self.config)
        self._socket = bind_socket(self.config.host, self.config.port)
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(
            app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2
        )
        self._server = UvicornServer(config)
        self._error = None
        self._thread = threading.Thread(target=self._serve, name="ltx-local-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the local server did not start: {self._error!r}")
            time.sleep(0.01)
        return self

    def _serve(self) -> None:
        assert self._server is not None and self._socket is not None
        try:
            asyncio.run(self._server.serve(sockets=[self._socket]))
        except BaseException as exc:
            self._error = exc

    def stop(self, timeout: float = 15.0) -> None:
        """Shut down (running jobs are told to stop) and join the server thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(timeout)
        if self._socket is not None:
            self._socket.close()
        self._thread = None
        self._server = None
        self._socket = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self.port is not None else "not started"
        return f"LocalServer({where}, engine={self.config.engine!r})"
