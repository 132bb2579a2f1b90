"""The client's sockets: httpx's own transport with httpcore's network backend on asyncio
(``ltx_jupyter/_network.py``), over real loopback connections, plain and TLS."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import trustme

from ltx_jupyter import QueueClient
from ltx_jupyter._network import AsyncioBackend, use_asyncio_network

pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="the asyncio backend needs asyncio.timeout (3.11)"
)


def test_the_default_client_moves_its_bytes_on_asyncio(local_server: Any) -> None:
    async def main() -> str:
        async with QueueClient(queue_url=local_server.url) as client:
            pool = client._http._transport._pool  # type: ignore[attr-defined]
            assert isinstance(pool._network_backend, AsyncioBackend)
            handle = await client.submit("fal-ai/ltx-video", {"prompt": "a fox", "seed": 1})
            output = await client.run("fal-ai/ltx-video", {"prompt": "a fox", "seed": 2})
            assert output["seed"] == 2
            return handle.request_id

    assert asyncio.run(main())


def test_a_client_given_its_own_transport_keeps_it() -> None:
    async def main() -> None:
        transport = httpx.AsyncHTTPTransport()
        async with QueueClient(queue_url="http://127.0.0.1:9", transport=transport) as client:
            assert client._http._transport is transport
            assert not isinstance(transport._pool._network_backend, AsyncioBackend)

    asyncio.run(main())


def test_an_unknown_transport_shape_is_left_alone() -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    assert use_asyncio_network(client) is False


@contextlib.contextmanager
def _loopback_server(answer: Callable[[socket.socket, threading.Event], None]) -> Iterator[int]:
    """A thread that answers each loopback connection with ``answer(connection, stop)``; the
    port. ``stop`` is set when the block ends."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            with raw:
                answer(raw, stop)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        listener.close()


@pytest.fixture
def tls_server() -> Iterator[tuple[str, ssl.SSLContext]]:
    """A one-answer-per-connection HTTPS server on loopback, and a context that trusts it."""
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)

    def answer(raw: socket.socket, stop: threading.Event) -> None:
        with server_context.wrap_socket(raw, server_side=True) as conn:
            conn.recv(65536)
            body = b'{"over": "tls"}'
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
            )

    with _loopback_server(answer) as port:
        yield f"https://127.0.0.1:{port}", client_context


def test_tls_connections_work_on_the_asyncio_backend(tls_server: tuple[str, Any]) -> None:
    url, context = tls_server

    async def main() -> Any:
        async with httpx.AsyncClient(verify=context) as client:
            assert use_asyncio_network(client)
            response = await client.get(url)
            return response.json()

    assert asyncio.run(main()) == {"over": "tls"}


def test_timeouts_and_refused_connections_are_httpx_errors() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()  # accepts, never answers
    silent = f"http://127.0.0.1:{listener.getsockname()[1]}"
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    refused = f"http://127.0.0.1:{closed.getsockname()[1]}"
    closed.close()

    async def main() -> None:
        async with httpx.AsyncClient(timeout=0.3) as client:
            assert use_asyncio_network(client)
            with pytest.raises(httpx.ReadTimeout):
                await client.get(silent)
            with pytest.raises(httpx.ConnectError):
                await client.get(refused)

    try:
        asyncio.run(main())
    finally:
        listener.close()


@pytest.fixture
def scripted_server() -> Iterator[tuple[str, list[Any]]]:
    """A loopback server that answers each connection by running the next script: a list of
    ``bytes`` to send and ``float`` seconds to wait, in order."""
    scripts: list[Any] = []

    def answer(conn: socket.socket, stop: threading.Event) -> None:
        conn.recv(65536)
        for step in scripts.pop(0) if scripts else ():
            if isinstance(step, float):
                if stop.wait(step):
                    return
            else:
                with contextlib.suppress(OSError):
                    conn.sendall(step)

    with _loopback_server(answer) as port:
        yield f"http://127.0.0.1:{port}", scripts


def _chunked(*parts: bytes) -> list[bytes]:
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    return [head, *(b"%x\r\n%s\r\n" % (len(p), p) for p in parts)]


def test_a_stream_whose_every_chunk_comes_in_time_never_times_out(
    scripted_server: tuple[str, list[Any]],
) -> None:
    # Each read may wait 0.4 s; the whole body takes 1.5 s, in chunks 0.25 s apart.
    url, scripts = scripted_server
    head, *chunks = _chunked(*[b"data: %d\n\n" % i for i in range(6)])
    scripts.append([head, *[part for chunk in chunks for part in (0.25, chunk)], b"0\r\n\r\n"])

    async def main() -> list[str]:
        async with httpx.AsyncClient(timeout=0.4) as client:
            assert use_asyncio_network(client)
            async with client.stream("GET", url) as response:
                return [line async for line in response.aiter_lines() if line]

    assert asyncio.run(main()) == [f"data: {i}" for i in range(6)]


def test_a_stream_that_goes_silent_mid_body_times_out_after_the_read_timeout(
    scripted_server: tuple[str, list[Any]],
) -> None:
    url, scripts = scripted_server
    head, first = _chunked(b"data: 0\n\n")
    scripts.append([head, first, 5.0])

    async def main() -> tuple[list[str], float]:
        seen = []
        loop = asyncio.get_running_loop()
        async with httpx.AsyncClient(timeout=0.3) as client:
            assert use_asyncio_network(client)
            async with client.stream("GET", url) as response:
                started = loop.time()
                with pytest.raises(httpx.ReadTimeout):
                    async for line in response.aiter_lines():
                        seen.append(line)
                        started = loop.time()
                return seen, loop.time() - started

    seen, waited = asyncio.run(main())
    assert seen[0] == "data: 0"
    assert 0.25 <= waited < 3.0, waited


def test_a_large_body_read_slowly_arrives_whole(
    scripted_server: tuple[str, list[Any]],
) -> None:
    # 24 MB, more than the stream holds before it stops reading the socket, read by a consumer
    # that pauses: every byte arrives, in order.
    url, scripts = scripted_server
    body = bytes(range(256)) * (24 * 4096)
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
    scripts.append([head, body])

    async def main() -> bytes:
        received = bytearray()
        async with httpx.AsyncClient(timeout=10) as client:
            assert use_asyncio_network(client)
            async with client.stream("GET", url) as response:
                async for chunk in response.aiter_raw():
                    received += chunk
                    if len(received) < 4 << 20:
                        await asyncio.sleep(0.002)
        return bytes(received)

    assert asyncio.run(main()) == body
