"""The sockets under httpx's own transport: httpcore's network backend, on asyncio directly.

httpx's transport is httpcore's connection pool; httpcore moves the bytes through a "network
backend", by default anyio's. Following a job reads one server-sent event per log line, and on
anyio each read costs a cancel scope, a deadline object and a library lookup: about a quarter of
the client's CPU per followed job. This module is an ``httpcore.AsyncNetworkBackend`` (httpcore's
public extension point) on an ``asyncio.Protocol`` per connection: received bytes wake the
waiting read from ``data_received``, and read deadlines share one timer per connection (moved
only when it fires early) instead of a timeout object per read. The same HTTP/1.1 code
(httpcore's, and h11's parser) on cheaper sockets. Measured with
``python -m bench.run --only magic_path`` (BENCHMARKS.md). Its errors are httpcore's, which
httpx maps to its own; timeouts carry no message, as anyio's do, so the client words them the
same way on every transport (``_transport.with_message``).

httpx offers no argument to choose its transport's network backend, so :func:`use_asyncio_network`
sets it on the pools of a client's transports (httpx's and httpcore's attributes, checked at run
time): where they are not what this module expects, or before Python 3.11 (no
``asyncio.timeout``), the client keeps anyio's backend and works the same, only a little slower.
Transports a user passes in are left alone.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

__all__ = ["AsyncioBackend", "AsyncioStream", "use_asyncio_network"]

# Received bytes held before the socket stops being read (a slow reader of a large download).
_BUFFER_LIMIT = 1 << 20
# How early the loop may run a timer (its clock's resolution): a deadline this close has passed.
_CLOCK_SLACK = 0.001


class _Connection(asyncio.Protocol):
    """One socket's protocol: bytes received wait in a buffer for the next read.

    A waiting read is woken straight from ``data_received``. Read deadlines share one timer
    that is moved only when it fires early, instead of a timer made and cancelled per read.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.lost: BaseException | None = None
        self.reader: asyncio.Future[None] | None = None
        self.deadline: float | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.writable: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > _BUFFER_LIMIT and self.transport is not None:
            self.transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.lost = exc
        self._wake_reader()
        _resolve(self.writable)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def pause_writing(self) -> None:
        self.writable = self.loop.create_future()

    def resume_writing(self) -> None:
        _resolve(self.writable)
        self.writable = None

    def _wake_reader(self) -> None:
        _resolve(self.reader)

    def take(self, max_bytes: int) -> bytes:
        data = bytes(self.buffer[:max_bytes])
        del self.buffer[:max_bytes]
        if self.transport is not None and len(self.buffer) <= _BUFFER_LIMIT // 4:
            self.transport.resume_reading()
        return data

    async def wait_readable(self, timeout: float | None) -> None:
        self.reader = self.loop.create_future()
        if timeout is not None:
            self.deadline = self.loop.time() + timeout
            if self.timer is None or self.timer.when() > self.deadline:
                if self.timer is not None:
                    self.timer.cancel()
                self.timer = self.loop.call_at(self.deadline, self._deadline_passed)
        try:
            await self.reader
        finally:
            self.reader = None
            self.deadline = None

    def _deadline_passed(self) -> None:
        self.timer = None
        reader, deadline = self.reader, self.deadline
        if reader is None or deadline is None or reader.done():
            return
        if self.loop.time() + _CLOCK_SLACK >= deadline:
            reader.set_exception(TimeoutError())
        else:
            self.timer = self.loop.call_at(deadline, self._deadline_passed)


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection: a :class:`_Connection` protocol and its asyncio transport."""

    def __init__(self, connection: _Connection) -> None:
        self._connection = connection

    @property
    def _transport(self) -> asyncio.Transport:
        # The protocol's own: TLS replaces it (start_tls).
        transport = self._connection.transport
        assert transport is not None, "a connected protocol has its transport"
        return transport

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        connection = self._connection
        if not connection.buffer and not connection.eof:
            try:
                await connection.wait_readable(timeout)
            except TimeoutError:
                raise httpcore.ReadTimeout() from None
        if connection.buffer:
            return connection.take(max_bytes)
        if connection.lost is not None:
            raise httpcore.ReadError(_reason(connection.lost))
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        connection = self._connection
        if connection.lost is not None or self._transport.is_closing():
            lost = connection.lost
            raise httpcore.WriteError(_reason(lost) if lost else "the connection is closed")
        self._transport.write(buffer)
        writable = connection.writable
        if writable is None:
            return
        try:
            if timeout is None:
                await writable
            else:
                async with asyncio.timeout(timeout):  # type: ignore[attr-defined]
                    await writable
        except TimeoutError:
            raise httpcore.WriteTimeout() from None
        if connection.lost is not None:
            raise httpcore.WriteError(_reason(connection.lost))

    async def aclose(self) -> None:
        self._transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = self._connection.loop
        try:
            transport = await loop.start_tls(
                self._transport,
                self._connection,
                ssl_context,
                server_hostname=server_hostname,
                ssl_handshake_timeout=timeout,
            )
        except TimeoutError:
            await self.aclose()
            raise httpcore.ConnectTimeout() from None
        except (OSError, ssl.SSLError) as error:
            await self.aclose()
            raise httpcore.ConnectError(_reason(error)) from None
        if transport is None:
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        self._connection.transport = transport  # type: ignore[assignment]
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self._transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info == "socket":
            return self._transport.get_extra_info("socket")
        if info == "is_readable":
            # Asked of an idle kept-alive connection: readable means the server closed it
            # (or sent what nobody asked for); either way it is not reused.
            connection = self._connection
            return connection.eof or bool(connection.buffer) or self._transport.is_closing()
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend on asyncio's transports and protocols."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        local = (local_address, 0) if local_address else None
        connecting = loop.create_connection(lambda: _Connection(loop), host, port, local_addr=local)
        return await _connect(connecting, timeout, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        connecting = loop.create_unix_connection(lambda: _Connection(loop), path)
        return await _connect(connecting, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def _connect(
    connecting: Any, timeout: float | None, options: Iterable[Any] | None
) -> AsyncioStream:
    try:
        if timeout is None:
            transport, connection = await connecting
        else:
            async with asyncio.timeout(timeout):  # type: ignore[attr-defined]
                transport, connection = await connecting
    except TimeoutError:
        raise httpcore.ConnectTimeout() from None
    except OSError as error:
        raise httpcore.ConnectError(_reason(error)) from None
    sock = transport.get_extra_info("socket")
    for option in options or ():
        sock.setsockopt(*option)
    return AsyncioStream(connection)


def _resolve(future: asyncio.Future[None] | None) -> None:
    """Wake whoever awaits ``future`` (nobody may)."""
    if future is not None and not future.done():
        future.set_result(None)


def _reason(error: BaseException) -> str:
    return str(error) or type(error).__name__


def use_asyncio_network(client: httpx.AsyncClient) -> bool:
    """Give ``client``'s own transports (the default one and those httpx mounted for the
    environment's proxies) :class:`AsyncioBackend`; whether the default one got it."""
    if sys.version_info < (3, 11):
        return False
    backend = AsyncioBackend()
    transports = [getattr(client, "_transport", None)]
    transports += list((getattr(client, "_mounts", None) or {}).values())
    swapped = [_swap(transport, backend) for transport in transports]
    return swapped[0]


def _swap(transport: Any, backend: AsyncioBackend) -> bool:
    if type(transport) is not httpx.AsyncHTTPTransport:
        return False
    pool = getattr(transport, "_pool", None)
    if not isinstance(getattr(pool, "_network_backend", None), httpcore.AsyncNetworkBackend):
        return False
    pool._network_backend = backend  # type: ignore[union-attr]
    return True
