"""The client's sockets: httpx's own transport with httpcore's network backend on asyncio
(``ltx_jupyter/_network.py``), over real loopback connections, plain and TLS."""

from __future__ import annotations

import asyncio
import socket
import ssl
import sys
import threading
from collections.abc import Iterator
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


@pytest.fixture
def tls_server() -> Iterator[tuple[str, ssl.SSLContext]]:
    """A one-answer-per-connection HTTPS server on loopback, and a context that trusts it."""
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
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
            with server_context.wrap_socket(raw, server_side=True) as conn:
                conn.recv(65536)
                body = b'{"over": "tls"}'
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
                )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{listener.getsockname()[1]}", client_context
    stop.set()
    thread.join(2)
    listener.close()


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
