"""The client's HTTP transport (aiohttp under httpx) over real loopback sockets: what goes on
the wire, bounded waits, one-line errors, and the proxy the environment names."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from ltx_jupyter import QueueClient, RetryPolicy
from ltx_jupyter._schema import TEXT_TO_VIDEO
from ltx_jupyter._transport import AiohttpTransport, default_transport

NO_RETRY = RetryPolicy(max_attempts=1)


class RawServer:
    """A loopback socket that answers every connection with fixed bytes (or never reads) and
    keeps what each request sent."""

    def __init__(self, answer: bytes | None) -> None:
        self.answer = answer
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.received: list[bytes] = []
        self._connections: list[socket.socket] = []
        if answer is not None:
            threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self._connections.append(connection)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = connection.recv(65536)
                if not chunk:
                    break
                data += chunk
            self.received.append(data)
            connection.sendall(self.answer or b"")

    def close(self) -> None:
        self.listener.close()
        for connection in self._connections:
            connection.close()


@pytest.fixture
def raw_server() -> Iterator[Any]:
    servers: list[RawServer] = []

    def make(answer: bytes | None) -> RawServer:
        servers.append(RawServer(answer))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


async def _send(method: str, url: str, timeout: float = 5.0, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(transport=AiohttpTransport(), timeout=timeout) as http:
        return await http.request(method, url, **kwargs)


def test_an_upload_to_a_server_that_stops_reading_times_out(raw_server):
    # The server accepts (the kernel's backlog) and never reads: the body fills the socket
    # buffers and the write stalls. aiohttp alone has no write timeout; ours bounds it.
    server = raw_server(None)
    started = time.monotonic()
    with pytest.raises(httpx.TimeoutException):
        asyncio.run(_send("PUT", server.url + "/upload", timeout=1.0, content=b"x" * 64_000_000))
    assert time.monotonic() - started < 10


def test_a_malformed_answer_is_one_line_and_a_protocol_error(raw_server):
    server = raw_server(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n\r\n")

    async def main() -> None:
        response = await _send("GET", server.url + "/status")
        await response.aread()

    with pytest.raises(httpx.RemoteProtocolError) as caught:
        asyncio.run(main())
    message = str(caught.value)
    assert message.startswith("malformed HTTP answer") and "\n" not in message, message


def test_headers_on_the_wire_are_httpx_s_without_additions(raw_server):
    server = raw_server(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}")
    response = asyncio.run(_send("PUT", server.url + "/cancel", headers={"X-Test": "1"}))
    assert response.status_code == 202 and response.json() == {}
    head = server.received[0].decode("latin-1").lower()
    # A PUT without a body goes without a Content-Type (aiohttp would add one) and each
    # header once.
    assert "content-type" not in head, head
    assert head.count("\r\nhost:") == 1 and head.count("\r\nuser-agent:") == 1, head
    assert "x-test: 1" in head


def test_a_streamed_request_body_arrives_whole(local_server):
    payload = bytes(range(256)) * 4000

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 100_000):
            yield payload[start : start + 100_000]

    async def main() -> bytes:
        async with QueueClient(queue_url=local_server.url) as client:
            initiate = await client._http.post(
                f"{local_server.url}/storage/upload/initiate",
                json={"content_type": "application/octet-stream", "file_name": "a.bin"},
            )
            urls = initiate.json()
            put = await client._http.put(urls["upload_url"], content=chunks())
            assert put.is_success, put.text
            return await client.read_file(urls["file_url"])

    assert asyncio.run(main()) == payload


def test_a_proxy_named_by_the_environment_is_used(local_server, monkeypatch):
    # Nothing listens on port 9: a client that honours the proxy cannot reach the server.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert default_transport() is None  # httpx's own transport, which reads the proxy

    async def main() -> None:
        async with QueueClient(queue_url=local_server.url, retry=NO_RETRY) as client:
            with pytest.raises((httpx.ConnectError, httpx.ProxyError)):
                await client.submit(TEXT_TO_VIDEO, {"prompt": "through the proxy"})

    def submits() -> int:
        stats = httpx.get(f"{local_server.url}/_local/stats", trust_env=False).json()
        return int(stats["by_kind"].get("submit", 0))

    before = submits()
    asyncio.run(main())
    assert submits() == before
