"""The HTTP transports under the client's ``httpx.AsyncClient``: httpx's own by default,
aiohttp's on request.

Why httpx's own transport is the default: it is the well-kept stack the client's API, auth,
retries and errors are written for, it honours the proxy settings of the environment
(``HTTPS_PROXY``, ``NO_PROXY`` and friends, through httpx's ``trust_env``), and it needs
nothing beyond httpx. The client leaves it to ``httpx.AsyncClient`` to build it: httpx reads
proxy settings from the environment only when it builds the transport itself.

Why aiohttp's is kept, as an opt-in (``pip install 'ltx-jupyter[aiohttp]'``, then
``LTX_HTTP_TRANSPORT=aiohttp`` or ``QueueClient(transport=AiohttpTransport(...))``): following a
job reads one server-sent event per log line, and aiohttp parses HTTP in C where httpcore goes
through h11 for each event. With :mod:`._network` under httpx's transport the gap is smaller
than it was on anyio (BENCHMARKS.md, 2026-12-02 12:50, ``python -m bench.run
--with-aiohttp-transport``): a followed 3 s job cost 19.4 ms of client CPU on aiohttp against
21.7 ms on httpx's transport (41.6 ms on anyio on 2026-12-01), and 200 jobs at once held
their results 0.21 s after completion against 0.30 s. It is an
``httpx.AsyncBaseTransport``, httpx's own extension point, so the API, auth, retries and errors
stay httpx's; it honours the same proxy variables (read as ``urllib.request`` reads them).

Why not the ``httpx-aiohttp`` package: it maps every aiohttp connection error, a server that
hangs up after reading a request included, to ``httpx.ConnectTimeout``, which says "nothing was
sent". The client retries a submit only on that (see ``_retries``), so that mapping could pay for
a request twice. Here the mapping is a table (:func:`error_table`), the most specific match
wins, and only a connection that was never made is a connect error.

aiohttp is imported when the first request is sent, on the loop that sends it: importing it
takes about half a second, which ``%load_ext`` and the kernel's thread should not wait for.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import os
import urllib.request
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "DEFAULT_LIMITS",
    "TRANSPORT_VARIABLE",
    "AiohttpTransport",
    "as_httpx_error",
    "error_table",
    "transport_from_env",
    "with_message",
]

#: The environment variable that picks the transport: ``httpx`` (the default) or ``aiohttp``.
TRANSPORT_VARIABLE = "LTX_HTTP_TRANSPORT"
#: The client's pool: no cap on open connections (200 jobs at once each hold a status stream),
#: 64 kept alive, idle ones closed after 5 s.
DEFAULT_LIMITS = httpx.Limits(max_connections=None, max_keepalive_connections=64)
_AIOHTTP_MISSING = (
    "the aiohttp transport needs aiohttp, which is an extra: pip install 'ltx-jupyter[aiohttp]'"
)

#: The request headers aiohttp sets itself from the body it is given.
_BODY_FRAMING_HEADERS = frozenset({"transfer-encoding"})

# One wording for each timeout, whichever transport raised it.
_CONNECT_TIMEOUT = "timed out connecting to {host}"
_POOL_TIMEOUT = "timed out waiting for a free connection to {host} (every one allowed is in use)"
_WRITE_TIMEOUT = "timed out sending the request to {host}"
_READ_TIMEOUT = "timed out waiting for {host} to answer"
#: Messages for httpx's own errors that carry none (httpcore raises its timeouts empty).
_SILENT_ERRORS: tuple[tuple[type[httpx.TransportError], str], ...] = (
    (httpx.ConnectTimeout, _CONNECT_TIMEOUT),
    (httpx.PoolTimeout, _POOL_TIMEOUT),
    (httpx.WriteTimeout, _WRITE_TIMEOUT),
    (httpx.ReadTimeout, _READ_TIMEOUT),
    (httpx.TimeoutException, "timed out talking to {host}"),
)


def transport_from_env(
    limits: httpx.Limits = DEFAULT_LIMITS,
) -> httpx.AsyncBaseTransport | None:
    """The transport ``LTX_HTTP_TRANSPORT`` names, with ``limits``: None for ``httpx`` (the
    default: ``httpx.AsyncClient`` builds its own, with the environment's proxies), an
    :class:`AiohttpTransport` for ``aiohttp``. Any other value is a ValueError naming the two."""
    raw = os.environ.get(TRANSPORT_VARIABLE, "")
    name = raw.strip().lower() or "httpx"
    if name == "httpx":
        return None
    if name == "aiohttp":
        return AiohttpTransport(limits=limits)
    raise ValueError(
        f"{TRANSPORT_VARIABLE}={raw!r} names no transport: use 'httpx' (the default) or 'aiohttp'"
    )


def with_message(error: httpx.TransportError) -> httpx.TransportError:
    """``error`` itself when its message says what happened, else the same kind of error with a
    one-line message that does (httpx's own transport raises its timeouts without one)."""
    if str(error).strip():
        return error
    try:
        request: httpx.Request | None = error.request
    except RuntimeError:  # raised outside a request
        request = None
    host = request.url.host if request is not None else "the server"
    message = next(
        (text for kind, text in _SILENT_ERRORS if isinstance(error, kind)),
        f"{type(error).__name__} talking to {{host}}",
    )
    return type(error)(message.format(host=host), request=request)


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport over one pooled ``aiohttp.ClientSession`` (HTTP/1.1).

    ``limits`` (httpx's pool settings, default :data:`DEFAULT_LIMITS`): ``max_connections``
    caps the open connections (None: no cap) and idle ones are closed after
    ``keepalive_expiry`` seconds; aiohttp keeps every idle connection up to that cap, so
    ``max_keepalive_connections`` has no counterpart here. Timeouts come from each request
    (``httpx.Timeout``): pool bounds getting a connection, connect bounds making one, read
    bounds each wait for bytes, so a status stream with keep-alive pings stays open however
    long the job runs. Proxies come from the environment, as for httpx's own transport.

    Needs the ``aiohttp`` extra; without it, an ImportError naming the extra.
    """

    def __init__(self, *, limits: httpx.Limits | None = None) -> None:
        if importlib.util.find_spec("aiohttp") is None:
            raise ImportError(_AIOHTTP_MISSING, name="aiohttp")
        self._limits = limits or DEFAULT_LIMITS
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[str, str] = {}

    def _open(self) -> aiohttp.ClientSession:
        import aiohttp

        # Read once per session, as httpx reads them once per client.
        self._proxies = urllib.request.getproxies()
        connector = aiohttp.TCPConnector(
            limit=self._limits.max_connections or 0,
            keepalive_timeout=self._limits.keepalive_expiry,
            ssl=httpx.create_ssl_context(),
        )
        # httpx keeps the cookies, sets the headers and decodes the bodies; aiohttp only moves
        # the bytes (it would add a Content-Type to a PUT without a body). No trust_env: it
        # would also add credentials from ~/.netrc, which httpx does not.
        return aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("Content-Type",),
        )

    def _proxy_for(self, url: httpx.URL) -> str | None:
        proxy = self._proxies.get(url.scheme) or self._proxies.get("all")
        if not proxy or urllib.request.proxy_bypass_environment(url.host, self._proxies):
            return None
        return proxy if "://" in proxy else f"http://{proxy}"

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
            proxy=self._proxy_for(request.url),
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


ErrorRow = tuple[type[BaseException], type[httpx.TransportError], str]


@functools.cache
def error_table() -> tuple[ErrorRow, ...]:
    """aiohttp's errors as httpx's: (aiohttp error, httpx error, message), most specific first.

    Only a connection that was never made (or never got a pool slot) is a connect error: the
    retry rule for submits depends on it. Messages are templates: ``{host}`` is the request's
    host, ``{detail}`` the aiohttp error as text, ``{message}`` its own message (an answer's
    error without its URL), ``{cause}`` what a body error was caused by.
    """
    import aiohttp

    return (
        # Never connected: nothing was sent.
        (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout, _CONNECT_TIMEOUT),
        (
            aiohttp.ClientProxyConnectionError,
            httpx.ConnectError,
            "could not connect to the proxy: {detail}",
        ),
        (aiohttp.ClientConnectorError, httpx.ConnectError, "{detail}"),
        # Connected: the request may have arrived.
        (aiohttp.ClientHttpProxyError, httpx.ProxyError, "the proxy refused: {detail}"),
        (aiohttp.ServerTimeoutError, httpx.ReadTimeout, _READ_TIMEOUT),
        (
            aiohttp.ServerDisconnectedError,
            httpx.RemoteProtocolError,
            "the server closed the connection without a complete answer",
        ),
        (
            aiohttp.ClientPayloadError,
            httpx.RemoteProtocolError,
            "the server closed the connection without sending the complete body ({cause})",
        ),
        (
            aiohttp.ClientResponseError,
            httpx.RemoteProtocolError,
            "malformed HTTP answer: {message}",
        ),
        (
            aiohttp.ClientConnectionResetError,
            httpx.WriteError,
            "the connection closed while the request was being sent",
        ),
        (aiohttp.InvalidURL, httpx.UnsupportedProtocol, "not a URL aiohttp can send to: {detail}"),
        (aiohttp.NonHttpUrlClientError, httpx.UnsupportedProtocol, "not an http(s) URL: {detail}"),
        (aiohttp.ClientError, httpx.ReadError, "{detail}"),
        # The bound on a whole upload (asyncio.wait_for): the server stopped reading or answering.
        (asyncio.TimeoutError, httpx.ReadTimeout, _READ_TIMEOUT),
        (OSError, httpx.ReadError, "{detail}"),
    )


def _row_for(error: BaseException) -> ErrorRow | None:
    """The most specific row for ``error``: the one whose type comes first in its class's
    ancestry (as httpx maps httpcore's errors to the most specific of its own)."""
    ancestry = type(error).__mro__
    rows = [row for row in error_table() if isinstance(error, row[0])]
    return min(rows, key=lambda row: ancestry.index(row[0]), default=None)


def as_httpx_error(error: BaseException, request: httpx.Request) -> httpx.TransportError:
    """The httpx error for an aiohttp one (see :func:`error_table`), with a one-line message
    that says what happened."""
    detail = str(error) or type(error).__name__
    fields = {
        "host": request.url.host,
        "detail": detail,
        "message": str(getattr(error, "message", "") or detail),
        "cause": getattr(error.__cause__, "message", None) or str(error.__cause__ or detail),
    }
    row = _row_for(error)
    if row is None:
        kind, text = httpx.TransportError, f"{type(error).__name__}: {detail}"
    else:
        kind, text = row[1], row[2].format(**fields)
    return kind(" ".join(text.split()), request=request)
