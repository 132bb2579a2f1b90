"""The client's HTTP transports over real loopback sockets, each one the package ships (httpx's
own by default, aiohttp's on request): how one is chosen, what goes on the wire, the pool
limits, the proxy the environment names, and the same one-line httpx error for each failure.
And that the default needs no aiohttp: not installed, not imported."""

from __future__ import annotations

import asyncio
import importlib.metadata
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ltx_jupyter import Completed, QueueClient, RetryPolicy
from ltx_jupyter._schema import TEXT_TO_VIDEO
from ltx_jupyter._transport import AiohttpTransport, transport_from_env
from ltx_jupyter.server import LocalServer

from .faultproxy import FaultProxy

NO_RETRY = RetryPolicy(max_attempts=1)
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


class RawServer:
    """A loopback socket that answers every request with fixed bytes (or never reads), then
    closes the connection or keeps it open, and keeps what each request sent."""

    def __init__(self, answer: bytes | None, *, close: bool = False) -> None:
        self.answer = answer
        self.close_after = close
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
            if self.close_after:
                connection.close()

    def close(self) -> None:
        self.listener.close()
        for connection in self._connections:
            connection.close()


@pytest.fixture
def raw_server() -> Iterator[Any]:
    servers: list[RawServer] = []

    def make(answer: bytes | None, *, close: bool = False) -> RawServer:
        servers.append(RawServer(answer, close=close))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No proxy variable from the machine's environment, in either case."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


async def _send(method: str, url: str, timeout: float = 5.0, **kwargs: Any) -> httpx.Response:
    """One request on the transport ``LTX_HTTP_TRANSPORT`` names, as the client builds it."""
    async with httpx.AsyncClient(transport=transport_from_env(), timeout=timeout) as http:
        return await http.request(method, url, **kwargs)


# -- choosing a transport ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (None, httpx.AsyncHTTPTransport),
        ("httpx", httpx.AsyncHTTPTransport),
        (" AIOHTTP ", AiohttpTransport),
        ("aiohttp", AiohttpTransport),
    ],
)
def test_the_environment_picks_the_transport_and_httpx_s_is_the_default(
    monkeypatch: pytest.MonkeyPatch, value: str | None, kind: type
) -> None:
    if value is None:
        monkeypatch.delenv("LTX_HTTP_TRANSPORT", raising=False)
    else:
        monkeypatch.setenv("LTX_HTTP_TRANSPORT", value)
    client = QueueClient(queue_url="http://127.0.0.1:9")
    assert type(client._http._transport) is kind


def test_an_unknown_transport_is_a_one_line_error_naming_the_choices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LTX_HTTP_TRANSPORT", "curl")
    with pytest.raises(ValueError) as caught:
        QueueClient(queue_url="http://127.0.0.1:9")
    message = str(caught.value)
    assert "\n" not in message
    assert "LTX_HTTP_TRANSPORT='curl'" in message
    assert "'httpx'" in message and "'aiohttp'" in message


def test_asking_for_aiohttp_without_it_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aiohttp", None)  # what an install without it looks like
    monkeypatch.setenv("LTX_HTTP_TRANSPORT", "aiohttp")
    for make in (lambda: QueueClient(queue_url="http://127.0.0.1:9"), AiohttpTransport):
        with pytest.raises(ImportError) as caught:
            make()
        message = str(caught.value)
        assert "pip install 'ltx-jupyter[aiohttp]'" in message and "\n" not in message
    # httpx's transport needs nothing of it.
    monkeypatch.setenv("LTX_HTTP_TRANSPORT", "httpx")
    QueueClient(queue_url="http://127.0.0.1:9")


def test_limits_with_a_transport_of_your_own_is_an_error() -> None:
    with pytest.raises(ValueError, match="give it to the transport you pass"):
        QueueClient(
            queue_url="http://127.0.0.1:9",
            transport=httpx.AsyncHTTPTransport(),
            limits=httpx.Limits(max_connections=2),
        )


# -- the pool ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("max_connections", "peak"), [(3, 3), (None, 12)])
def test_the_pool_limit_caps_the_connections_the_server_sees(
    local_server: LocalServer, transport: str, max_connections: int | None, peak: int
) -> None:
    with FaultProxy(local_server.url) as proxy:

        async def main() -> None:
            limits = httpx.Limits(max_connections=max_connections)
            async with QueueClient(queue_url=proxy.url, limits=limits, stream=False) as client:
                handle = await client.submit(TEXT_TO_VIDEO, {"prompt": "pool"})
                # Each read is held 0.3 s by the proxy, so all twelve want a connection at once.
                proxy.add("stall", path=r"/status", seconds=0.3, times=12)
                reads = [client.status(TEXT_TO_VIDEO, handle.request_id) for _ in range(12)]
                await asyncio.gather(*reads)

        asyncio.run(main())
    assert proxy.injected["stall"] == 12
    assert proxy.peak_connections == peak


@pytest.mark.parametrize(("keepalive_expiry", "connections"), [(0.1, 2), (30.0, 1)])
def test_idle_connections_are_kept_for_keepalive_expiry(
    local_server: LocalServer, transport: str, keepalive_expiry: float, connections: int
) -> None:
    with FaultProxy(local_server.url) as proxy:

        async def main() -> None:
            limits = httpx.Limits(keepalive_expiry=keepalive_expiry)
            async with QueueClient(queue_url=proxy.url, limits=limits) as client:
                handle = await client.submit(TEXT_TO_VIDEO, {"prompt": "keep-alive"})
                await asyncio.sleep(0.6)
                await client.status(TEXT_TO_VIDEO, handle.request_id)

        asyncio.run(main())
    assert proxy.accepted == connections


# -- proxies -----------------------------------------------------------------------------------


def test_the_proxy_the_environment_names_carries_every_call(
    local_server: LocalServer, transport: str, no_proxy_env: pytest.MonkeyPatch
) -> None:
    with FaultProxy(local_server.url) as proxy:
        no_proxy_env.setenv("HTTP_PROXY", proxy.url)

        async def main() -> Completed:
            async with QueueClient(queue_url=local_server.url, retry=NO_RETRY) as client:
                arguments = {"prompt": "via the proxy", "num_inference_steps": 2}
                updates = [u async for u in client.subscribe(TEXT_TO_VIDEO, arguments)]
            assert isinstance(updates[-1], Completed)
            return updates[-1]

        completed = asyncio.run(main())
    job = f"/fal-ai/ltx-video/requests/{completed.request_id}"
    # Each call reached the proxy as a proxy request (its whole URL), and nothing else did.
    assert set(proxy.proxied) == {
        "POST /fal-ai/ltx-video",
        f"GET {job}/status/stream",
        f"GET {job}",
    }
    assert proxy.proxied.total() == proxy.requests.total() == 3


def test_no_proxy_sends_around_the_proxy(
    local_server: LocalServer, transport: str, no_proxy_env: pytest.MonkeyPatch
) -> None:
    no_proxy_env.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    no_proxy_env.setenv("NO_PROXY", "127.0.0.1")

    async def main() -> dict[str, Any]:
        async with QueueClient(queue_url=local_server.url, retry=NO_RETRY) as client:
            return await client.run(TEXT_TO_VIDEO, {"prompt": "direct", "num_inference_steps": 2})

    assert asyncio.run(main())["video"]["url"]


# -- the wire ----------------------------------------------------------------------------------


def test_an_upload_to_a_server_that_stops_reading_times_out(raw_server, transport):
    # The server accepts (the kernel's backlog) and never reads: the body fills the socket
    # buffers and the write stalls. aiohttp alone has no write timeout; ours bounds it.
    server = raw_server(None)
    started = time.monotonic()
    with pytest.raises(httpx.TimeoutException):
        asyncio.run(_send("PUT", server.url + "/upload", timeout=1.0, content=b"x" * 64_000_000))
    assert time.monotonic() - started < 10


def test_headers_on_the_wire_are_httpx_s_without_additions(raw_server, transport):
    server = raw_server(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}")
    response = asyncio.run(_send("PUT", server.url + "/cancel", headers={"X-Test": "1"}))
    assert response.status_code == 202 and response.json() == {}
    head = server.received[0].decode("latin-1").lower()
    # A PUT without a body goes without a Content-Type (aiohttp would add one) and each
    # header once.
    assert "content-type" not in head, head
    assert head.count("\r\nhost:") == 1 and head.count("\r\nuser-agent:") == 1, head
    assert "x-test: 1" in head


def test_a_streamed_request_body_arrives_whole(local_server, transport):
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


# -- one error for each failure, whichever transport -------------------------------------------

FAILURES: list[tuple[str, bytes | None, bool, type[httpx.TransportError], str]] = [
    # (case, the server's answer (None: nothing listens), close after it, error, words)
    ("nothing listens", None, False, httpx.ConnectError, ""),
    (
        "hangs up after reading the request",
        b"",
        True,
        httpx.RemoteProtocolError,
        "without",
    ),
    (
        "closes before the whole body",
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{}",
        True,
        httpx.RemoteProtocolError,
        "complete",
    ),
    (
        "a malformed chunked body",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n\r\n",
        False,
        httpx.RemoteProtocolError,
        "",
    ),
    ("never answers", b"", False, httpx.ReadTimeout, "timed out waiting for 127.0.0.1"),
]


@pytest.mark.parametrize(
    ("answer", "close", "error_type", "words"),
    [pytest.param(a, c, e, w, id=case) for case, a, c, e, w in FAILURES],
)
def test_each_failure_is_the_same_one_line_httpx_error_on_every_transport(
    raw_server, transport, answer, close, error_type, words
):
    url = "http://127.0.0.1:9" if answer is None else raw_server(answer, close=close).url

    async def main() -> None:
        async with QueueClient(queue_url=url, retry=NO_RETRY, request_timeout=1.0) as client:
            await client.status(TEXT_TO_VIDEO, "r1")

    with pytest.raises(httpx.TransportError) as caught:
        asyncio.run(main())
    assert type(caught.value) is error_type, repr(caught.value)
    message = str(caught.value)
    assert message.strip() and "\n" not in message, repr(message)
    assert words in message, message


def test_an_unreachable_proxy_is_a_connect_error(transport, no_proxy_env):
    # The connection to the proxy was never made: nothing was sent, so a submit may be retried.
    no_proxy_env.setenv("HTTP_PROXY", "http://127.0.0.1:9")

    async def main() -> None:
        async with QueueClient(queue_url="http://127.0.0.1:8", retry=NO_RETRY) as client:
            await client.submit(TEXT_TO_VIDEO, {"prompt": "through the proxy"})

    with pytest.raises(httpx.ConnectError):
        asyncio.run(main())


# -- the default needs no aiohttp --------------------------------------------------------------


def _required(distribution: str, extra: str = "") -> list[Requirement]:
    requirements = [Requirement(r) for r in importlib.metadata.requires(distribution) or []]
    return [r for r in requirements if r.marker is None or r.marker.evaluate({"extra": extra})]


def test_installing_the_package_pulls_no_aiohttp() -> None:
    extras = importlib.metadata.metadata("ltx-jupyter").get_all("Provides-Extra") or []
    assert "aiohttp" in extras, (
        "the installed metadata of ltx-jupyter predates pyproject.toml's aiohttp extra: "
        "reinstall it (pip install -e .)"
    )
    # Everything `pip install ltx-jupyter` installs, as far as this environment holds it.
    seen: set[str] = set()
    pending = ["ltx-jupyter"]
    while pending:
        name = canonicalize_name(pending.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            pending += [r.name for r in _required(name)]
        except importlib.metadata.PackageNotFoundError:
            continue
    assert "aiohttp" not in seen, f"pip install ltx-jupyter installs aiohttp: {sorted(seen)}"
    assert "httpx" in seen
    # And the extra brings it.
    assert "aiohttp" in {canonicalize_name(r.name) for r in _required("ltx-jupyter", "aiohttp")}


def test_a_job_on_the_default_transport_imports_no_aiohttp(local_server, no_proxy_env):
    no_proxy_env.delenv("LTX_HTTP_TRANSPORT", raising=False)
    script = f"""
import asyncio, sys
import ltx_jupyter
from ltx_jupyter import QueueClient

async def main():
    async with QueueClient(queue_url={local_server.url!r}) as client:
        arguments = {{"prompt": "plain", "num_inference_steps": 2}}
        output = await client.run("fal-ai/ltx-video", arguments)
        assert output["video"]["url"]

asyncio.run(main())
print(sorted(m for m in sys.modules if m.split(".")[0] == "aiohttp"))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]", done.stdout
