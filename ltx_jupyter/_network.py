"""The sockets under httpx's own transport: httpcore's network backend, on asyncio directly.

httpx's transport is httpcore's connection pool; httpcore moves the bytes through a "network
backend", by default anyio's. Following a job reads one server-sent event per log line, and on
anyio each read costs a cancel scope, a deadline object and a library lookup: about a quarter of
the client's CPU per followed job. This module is an ``httpcore.AsyncNetworkBackend`` (httpcore's
public extension point) over asyncio's own streams, with ``asyncio.timeout`` for deadlines: the
same HTTP/1.1 code (httpcore's, and h11's parser) on cheaper sockets. Measured with
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
import contextlib
import ssl
import sys
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

__all__ = ["AsyncioBackend", "AsyncioStream", "use_asyncio_network"]

_READ_ERRORS = (OSError, EOFError)


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection: an asyncio stream reader and writer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            if timeout is None:
                return await self._reader.read(max_bytes)
            async with asyncio.timeout(timeout):  # type: ignore[attr-defined]
                return await self._reader.read(max_bytes)
        except TimeoutError:
            raise httpcore.ReadTimeout() from None
        except _READ_ERRORS as error:
            raise httpcore.ReadError(str(error) or type(error).__name__) from None

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            self._writer.write(buffer)
            if timeout is None:
                await self._writer.drain()
            else:
                async with asyncio.timeout(timeout):  # type: ignore[attr-defined]
                    await self._writer.drain()
        except TimeoutError:
            raise httpcore.WriteTimeout() from None
        except OSError as error:
            raise httpcore.WriteError(str(error) or type(error).__name__) from None

    async def aclose(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):  # the peer reset it: closed all the same
            await self._writer.wait_closed()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            await self._writer.start_tls(  # type: ignore[attr-defined]
                ssl_context, server_hostname=server_hostname, ssl_handshake_timeout=timeout
            )
        except TimeoutError:
            await self.aclose()
            raise httpcore.ConnectTimeout() from None
        except (OSError, ssl.SSLError) as error:
            await self.aclose()
            raise httpcore.ConnectError(str(error) or type(error).__name__) from None
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self._writer.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._writer.get_extra_info("sockname")
        if info == "server_addr":
            return self._writer.get_extra_info("peername")
        if info == "socket":
            return self._writer.get_extra_info("socket")
        if info == "is_readable":
            # Asked of an idle kept-alive connection: readable means the server closed it.
            return self._reader.at_eof() or self._writer.transport.is_closing()
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend on asyncio's streams."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        local = (local_address, 0) if local_address else None
        connecting = asyncio.open_connection(host, port, local_addr=local)
        reader, writer = await _connect(connecting, timeout)
        _apply(writer, socket_options)
        return AsyncioStream(reader, writer)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        reader, writer = await _connect(asyncio.open_unix_connection(path), timeout)
        _apply(writer, socket_options)
        return AsyncioStream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def _connect(
    connecting: Any, timeout: float | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        if timeout is None:
            return await connecting  # type: ignore[no-any-return]
        async with asyncio.timeout(timeout):  # type: ignore[attr-defined]
            return await connecting  # type: ignore[no-any-return]
    except TimeoutError:
        raise httpcore.ConnectTimeout() from None
    except OSError as error:
        raise httpcore.ConnectError(str(error) or type(error).__name__) from None


def _apply(writer: asyncio.StreamWriter, options: Iterable[Any] | None) -> None:
    sock = writer.get_extra_info("socket")
    for option in options or ():
        sock.setsockopt(*option)


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
