"""The HTTP transport under the client's ``httpx.AsyncClient``: aiohttp moves the bytes.

Why not httpx's default transport: following a job reads one server-sent event per log line,
and through httpcore on anyio each event cost about as much CPU as the rest of the job put
together. aiohttp parses HTTP in C; with it a followed job costs about 40% less CPU
(``python -m bench.run --with-httpx-transport``, BENCHMARKS.md). The client's API, auth, retries and
errors stay httpx's: this is an ``httpx.AsyncBaseTransport``, httpx's own extension point.
httpx reads proxy settings from the environment only for its own transport, so when the
environment names a proxy (``HTTPS_PROXY`` and friends) :func:`default_transport` leaves the
choice to httpx and the proxy is honoured.

Why not the ``httpx-aiohttp`` package: it maps every aiohttp connection error, a server that
hangs up after reading a request included, to ``httpx.ConnectTimeout``, which says "nothing was
sent". The client retries a submit only on that (see ``_retries``), so that mapping could pay for
a request twice. Here only a connection that was never made is a connect error.

aiohttp is imported when the first request is sent, on the loop that sends it: importing it
takes about half a second, which ``%load_ext`` and the kernel's thread should not wait for.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    import aiohttp

__all__ = ["AiohttpTransport", "default_transport"]

#: The request headers aiohttp sets itself from the body it is given.
_BODY_FRAMING_HEADERS = frozenset({"transfer-encoding"})


def default_transport() -> httpx.AsyncBaseTransport | None:
    """The client's transport: aiohttp's, or None (httpx's own, which honours the proxy) when
    the environment names a proxy for http or https."""
    proxies = urllib.request.getproxies()
    if any(proxies.get(scheme) for scheme in ("http", "https", "all")):
        return None
    return AiohttpTransport()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport over one pooled ``aiohttp.ClientSession`` (HTTP/1.1).

    ``max_connections`` caps open connections (None: no cap); idle connections are kept for
    ``keepalive_expiry`` seconds. Timeouts come from each request (``httpx.Timeout``): connect
    and pool bound the connection, read bounds each wait for bytes, so a status stream with
    keep-alive pings stays open however long the job runs.
    """

    def __init__(
        self, *, max_connections: int | None = None, keepalive_expiry: float = 5.0
    ) -> None:
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        import aiohttp

        connector = aiohttp.TCPConnector(
            limit=self._max_connections or 0,
            keepalive_timeout=self._keepalive_expiry,
            ssl=httpx.create_ssl_context(),
        )
        # httpx keeps the cookies, sets the headers and decodes the bodies; aiohttp only moves
        # the bytes (it would add a Content-Type to a PUT without a body).
        return aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("Content-Type",),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = self._open()
        timeout = request.extensions.get("timeout", {})
        try:
            body: Any = request.content or None
        except httpx.RequestNotRead:
            body = _request_chunks(request)
        headers = [
            (name, value)
            for name, value in request.headers.multi_items()
            if name.lower() not in _BODY_FRAMING_HEADERS
        ]
        sending = self._session.request(
            request.method,
            str(request.url),
            headers=headers,
            data=body,
            allow_redirects=False,
            compress=None,
            timeout=aiohttp.ClientTimeout(
                total=None,
                connect=timeout.get("pool"),
                sock_connect=timeout.get("connect"),
                sock_read=timeout.get("read"),
            ),
        )
        # aiohttp has no write timeout and starts its read timeout only once the body is
        # written: bound the whole exchange up to the answer's headers instead, so a server
        # that stops reading an upload cannot hang the call.
        bound = _sum_or_none(timeout.get("connect"), timeout.get("write"), timeout.get("read"))
        failure: httpx.TransportError | None = None
        try:
            if body is None or bound is None:
                response = await sending
            else:
                response = await asyncio.wait_for(sending, bound)
        except Exception as error:  # every failure, so none escapes with aiohttp's frames
            failure = as_httpx_error(error, request)
        if failure is not None:
            # Raised outside the except block, so it carries no aiohttp traceback: aiohttp's
            # frames hold the request headers, the key among them, as plain values.
            raise failure
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_ResponseStream(response, request),
            request=request,
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": (response.reason or "").encode("latin-1", "replace"),
            },
        )

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


class _ResponseStream(httpx.AsyncByteStream):
    """A response body as aiohttp receives it, chunk by chunk, with httpx's errors."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        failure: httpx.TransportError | None = None
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except Exception as error:  # every failure, so none escapes with aiohttp's frames
            failure = as_httpx_error(error, self._request)
        if failure is not None:
            raise failure

    async def aclose(self) -> None:
        # A body read to its end gives the connection back to the pool; a partly read one
        # closes it (aiohttp decides).
        self._response.release()


def _sum_or_none(*seconds: float | None) -> float | None:
    return None if any(s is None for s in seconds) else sum(s for s in seconds if s is not None)


async def _request_chunks(request: httpx.Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream:  # type: ignore[union-attr]
        yield chunk


def as_httpx_error(error: BaseException, request: httpx.Request) -> httpx.TransportError:
    """The httpx error for an aiohttp one, with a message that says what happened. Only a
    connection that was never made (or never got a pool slot) is a connect error: the retry
    rule for submits depends on it."""
    import aiohttp

    detail = str(error) or type(error).__name__
    kind: type[httpx.TransportError]
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        kind, detail = httpx.ConnectTimeout, f"timed out connecting to {request.url.host}"
    elif isinstance(error, (aiohttp.ClientProxyConnectionError, aiohttp.ClientHttpProxyError)):
        kind = httpx.ProxyError
    elif isinstance(error, aiohttp.ClientConnectorError):
        kind = httpx.ConnectError
    elif isinstance(error, (aiohttp.ServerTimeoutError, asyncio.TimeoutError)):
        kind, detail = httpx.ReadTimeout, f"timed out waiting for {request.url.host} to answer"
    elif isinstance(error, aiohttp.InvalidURL):
        kind = httpx.UnsupportedProtocol
    elif isinstance(error, aiohttp.ServerDisconnectedError):
        kind = httpx.RemoteProtocolError
        detail = "the server closed the connection without a complete answer"
    elif isinstance(error, aiohttp.ClientPayloadError):
        kind = httpx.RemoteProtocolError
        cause = getattr(error.__cause__, "message", None) or detail
        detail = f"the server closed the connection before the whole body arrived: {cause}"
    elif isinstance(error, aiohttp.ClientResponseError):
        kind, detail = httpx.RemoteProtocolError, f"malformed HTTP answer: {error.message}"
    elif isinstance(error, (aiohttp.ClientError, OSError)):
        kind = httpx.ReadError
    else:
        kind, detail = httpx.TransportError, f"{type(error).__name__}: {detail}"
    return kind(" ".join(detail.split()), request=request)
