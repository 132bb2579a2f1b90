"""An async client for fal's queue protocol, on one pooled ``httpx.AsyncClient``.

It submits requests, reads their status (polled, or streamed over server-sent events with a
fallback to polling), fetches results, cancels, and uploads files to storage. It knows nothing
of IPython: scripts and the local server's tests use it as it is.

>>> async with QueueClient() as client:                       # doctest: +SKIP
...     async for update in client.subscribe("fal-ai/ltx-video", {"prompt": "a red fox"}):
...         print(update)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import inspect
import json
import mimetypes
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx

from ._errors import (
    AccountError,
    AuthenticationError,
    FieldError,
    HTTPError,
    MissingCredentialsError,
    ProtocolError,
    RateLimitError,
    RequestCancelledError,
    RequestTimeoutError,
    RunFailedError,
    UploadError,
    ValidationError,
)
from ._fal import (
    ERROR_TYPE_HEADER,
    REQUEST_ID_HEADER,
    USER_AGENT,
    WEBHOOK_PARAM,
    authorization,
    credentials_from_env,
    default_openapi_url,
    default_queue_url,
    default_storage_url,
    is_fal_url,
    is_request_id,
    split_endpoint_id,
    submit_headers,
)
from ._files import HEAD_BYTES, FileKind, check_kind, local_files, sniff
from ._models import (
    Completed,
    InProgress,
    Queued,
    QueueStatus,
    RequestHandle,
    Update,
    UploadProgress,
)
from ._retries import CallKind, RetryPolicy, parse_retry_after
from ._schema import ValidatedInput, validate_with
from ._text import value_repr
from ._transport import DEFAULT_LIMITS, transport_from_env, with_message

if TYPE_CHECKING:
    from ._endpoints import SchemaLookup

__all__ = ["QueueClient"]

#: Local files up to this size go inline as data: URIs; larger ones are uploaded to storage.
#: fal gives no size: its documentation recommends its CDN for file inputs and says only that
#: some models also accept data URIs (https://docs.fal.ai/documentation/model-apis/fal-cdn),
#: and fal's maintainers saw data URIs fail above 3 to 10 MB (review of fal-ai/fal PR #178,
#: "feat: add encode APIs"). 256 KiB keeps the submit body small, far under both.
DEFAULT_DATA_URI_LIMIT = 256 * 1024
#: The largest ``data_uri_limit`` a client accepts: the lowest size fal users saw fail.
MAX_DATA_URI_LIMIT = 3 * 1024 * 1024
#: Bytes handed to the connection at a time during an upload (one progress report each).
UPLOAD_CHUNK = 256 * 1024
_OUTAGE_STATUS = frozenset({502, 503, 504})
_CANCELLED_ERROR_TYPES = frozenset({"request_cancelled", "cancelled", "canceled"})
Priority = Literal["normal", "low"]
OnSubmit = Callable[[RequestHandle], Awaitable[None] | None]
OnUpload = Callable[[UploadProgress], None]


class _Secret:
    """Holds the API key so that no repr, log line or traceback shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None) -> None:
        self._value = value

    def reveal(self) -> str | None:
        return self._value

    def __repr__(self) -> str:
        return "<set>" if self._value else "<none>"

    __str__ = __repr__


class _KeyAuth(httpx.Auth):
    """Adds ``Authorization: Key <key>`` to each request as it is sent.

    With ``origins`` (``scheme://host:port`` of the configured hosts), only requests to those
    get the key: a URL a server answered with (an upload URL, a status URL, a redirect) that
    points elsewhere never carries it, whichever code path sends it.
    """

    def __init__(self, secret: _Secret, origins: frozenset[str] | None = None) -> None:
        self._secret = secret
        self._origins = origins

    def __repr__(self) -> str:
        return f"<fal key auth: credentials {self._secret!r}>"

    def auth_flow(self, request: httpx.Request) -> Any:
        if self._origins is None or _origin(request.url) in self._origins:
            request.headers["Authorization"] = authorization(self._secret.reveal() or "")
        yield request


def _origin(url: httpx.URL | str) -> str:
    """``scheme://host:port`` of ``url``, the port made explicit."""
    parsed = httpx.URL(url)
    port = parsed.port or {"http": 80, "https": 443}.get(parsed.scheme, 0)
    return f"{parsed.scheme}://{parsed.host}:{port}"


class _StreamBroken(Exception):
    """The status stream ended or failed before the request completed."""


class QueueClient:
    """fal's queue protocol, async, over one pooled HTTP client.

    ``key`` defaults to ``FAL_KEY`` (or ``FAL_KEY_ID``/``FAL_KEY_SECRET``); ``queue_url`` and
    ``storage_url`` default to ``LTX_QUEUE_URL`` / ``LTX_STORAGE_URL``, else fal's hosts.
    Against fal's own hosts a key is required (checked before any request); against another
    server, such as ``ltx-jupyter serve``, it is optional. ``poll_interval`` is the polling
    period when a stream is not used. While following a request, status reads ride out a
    server outage for up to ``outage_tolerance`` seconds (the overall deadline, when given,
    still applies).

    The HTTP transport is httpx's own, which honours the environment's proxy settings, unless
    ``LTX_HTTP_TRANSPORT=aiohttp`` picks aiohttp's (the ``aiohttp`` extra; see ``_transport``).
    ``limits`` (``httpx.Limits``, default: no cap on connections, 64 kept alive for 5 s) is the
    pool of whichever of the two the client builds. ``transport`` passes a transport of your
    own instead, with its own pool settings, so ``limits`` cannot be given with it.
    ``strict_fields=False`` lets a field the endpoint's schema does not have through (with a
    warning) instead of refusing it: for a server whose engine reads extra fields.
    """

    def __init__(
        self,
        key: str | None = None,
        *,
        queue_url: str | None = None,
        storage_url: str | None = None,
        retry: RetryPolicy | None = None,
        poll_interval: float = 0.5,
        stream: bool = True,
        data_uri_limit: int = DEFAULT_DATA_URI_LIMIT,
        request_timeout: float = 60.0,
        stream_idle_timeout: float = 60.0,
        outage_tolerance: float = 120.0,
        limits: httpx.Limits | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        strict_fields: bool = True,
    ) -> None:
        if transport is not None and limits is not None:
            raise ValueError(
                "limits= sets the pool of the transports QueueClient builds: give it to the "
                "transport you pass instead (e.g. AiohttpTransport(limits=...))"
            )
        limits = limits or DEFAULT_LIMITS
        if transport is None:
            # None leaves httpx's own transport to httpx.AsyncClient, the only way httpx
            # applies the environment's proxy settings to it.
            transport = transport_from_env(limits)
        self.queue_url = (queue_url or default_queue_url()).rstrip("/")
        self.storage_url = (storage_url or default_storage_url(self.queue_url)).rstrip("/")
        self._key = _Secret(key or credentials_from_env())
        # The key goes only to the configured hosts (see _KeyAuth).
        hosts = frozenset({_origin(self.queue_url), _origin(self.storage_url)})
        self._auth = _KeyAuth(self._key, hosts)
        self.retry = retry or RetryPolicy()
        self.poll_interval = poll_interval
        self.stream = stream
        if not 0 <= data_uri_limit <= MAX_DATA_URI_LIMIT:
            raise ValueError(
                f"data_uri_limit must be 0 to {MAX_DATA_URI_LIMIT} bytes (larger files go to "
                f"storage: fal's users saw data URIs fail above 3 MB), got {data_uri_limit}"
            )
        self.data_uri_limit = data_uri_limit
        self.stream_idle_timeout = stream_idle_timeout
        self.outage_tolerance = outage_tolerance
        self.strict_fields = strict_fields
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(request_timeout, connect=10.0),
            limits=limits,
            headers={"User-Agent": USER_AGENT},
        )
        if transport is None:
            # httpx's own transport, its sockets on asyncio instead of anyio (see _network; it
            # imports httpcore, which httpx itself imports only when a transport is built).
            from ._network import use_asyncio_network

            use_asyncio_network(self._http)
        #: Counters a user or benchmark can read: requests sent, retries, stream fallbacks.
        self.stats: dict[str, int] = {
            "requests": 0,
            "retries": 0,
            "stream_fallbacks": 0,
            "outage_waits": 0,
        }

    def __repr__(self) -> str:
        return (
            f"QueueClient(queue_url={self.queue_url!r}, storage_url={self.storage_url!r}, "
            f"credentials={self._key!r})"
        )

    @property
    def has_credentials(self) -> bool:
        return bool(self._key.reveal())

    async def __aenter__(self) -> QueueClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._http.aclose()

    # -- plumbing ------------------------------------------------------------------------

    def _auth_for(self, url: str) -> httpx.Auth | None:
        """The auth that adds the key to a request to ``url`` (None when there is no key).

        The header is added by :class:`_KeyAuth` as the request leaves, so no frame of ours
        holds the key in a local variable: ``%xmode Verbose`` tracebacks print locals.
        """
        if self._key.reveal():
            return self._auth
        if is_fal_url(url):
            raise MissingCredentialsError()
        return None

    async def _send(
        self,
        kind: CallKind,
        method: str,
        url: str,
        *,
        request_id: str | None = None,
        authenticate: bool = True,
        ok_statuses: frozenset[int] = frozenset(),
        **kwargs: Any,
    ) -> httpx.Response:
        """Send one call with the retry policy; raise the typed error of a failed answer."""
        headers = dict(kwargs.pop("headers", None) or {})
        auth = self._auth_for(url) if authenticate else None
        attempt = 0
        while True:
            attempt += 1
            self.stats["requests"] += 1
            try:
                response = await self._http.request(
                    method, url, headers=headers, auth=auth, **kwargs
                )
            except httpx.TransportError as error:
                if attempt < self.retry.max_attempts and self.retry.retries_error(kind, error):
                    self.stats["retries"] += 1
                    await asyncio.sleep(self.retry.backoff(attempt))
                    continue
                described = with_message(error)
                if described is error:
                    raise
                raise described from error
            if response.is_success or response.status_code in ok_statuses:
                return response
            if attempt < self.retry.max_attempts and self.retry.retries_status(
                kind, response.status_code
            ):
                delay = self.retry.delay_for(attempt, response)
                if delay is not None:
                    self.stats["retries"] += 1
                    await asyncio.sleep(delay)
                    continue
            raise self._error_from(response, request_id, attempts=attempt)

    @staticmethod
    def _json(response: httpx.Response, request_id: str | None = None) -> Any:
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ProtocolError(
                f"the server answered {response.status_code} with a body that is not JSON "
                f"({response.headers.get('content-type', 'no content type')}, "
                f"{len(response.content)} bytes)",
                request_id=request_id,
            ) from error

    def _error_from(
        self, response: httpx.Response, request_id: str | None, *, attempts: int = 1
    ) -> HTTPError:
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        detail: Any = None
        error_type = response.headers.get(ERROR_TYPE_HEADER)
        if isinstance(body, Mapping):
            detail = body.get("detail", body.get("status"))
            error_type = error_type or body.get("error_type")
        if detail is None:
            detail = response.text[:300].strip() or response.reason_phrase
        detail = self._redacted(detail)
        kwargs = {
            "error_type": self._redacted(error_type),
            "request_id": response.headers.get(REQUEST_ID_HEADER) or request_id,
            "url": str(response.request.url) if response.request else None,
        }
        status = response.status_code
        if status == 422:
            items = detail if isinstance(detail, list) else []
            errors = [FieldError.from_detail(i) for i in items if isinstance(i, Mapping)]
            return ValidationError(errors, detail=detail, **kwargs)
        if status == 402 or (status == 403 and "locked" in str(detail).lower()):
            return AccountError(status, detail, **kwargs)
        if status in (401, 403):
            return AuthenticationError(status, detail, **kwargs)
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            return RateLimitError(detail, retry_after=retry_after, attempts=attempts, **kwargs)
        return HTTPError(status, detail, **kwargs)

    def _redacted(self, value: Any) -> Any:
        """``value`` (a server's error text) with the key put out of sight, should a server
        echo the credentials it was sent."""
        key = self._key.reveal()
        if not key or value is None:
            return value
        text = json.dumps(value) if not isinstance(value, str) else value
        # The whole key, and each part of an id:secret pair.
        secrets = [key, *(part for part in key.split(":") if len(part) >= 8)]
        if not any(secret in text for secret in secrets):
            return value
        for secret in secrets:
            text = text.replace(secret, "<key>")
        return text if isinstance(value, str) else json.loads(text)

    def _request_url(self, endpoint_id: str, request_id: str, suffix: str = "") -> str:
        _, app_path = split_endpoint_id(endpoint_id)
        return f"{self.queue_url}/{app_path}/requests/{request_id}{suffix}"

    # -- the queue protocol ----------------------------------------------------------------

    async def submit(
        self,
        endpoint_id: str,
        arguments: Mapping[str, Any] | ValidatedInput,
        *,
        webhook_url: str | None = None,
        priority: Priority | None = None,
        start_timeout: float | None = None,
        hint: str | None = None,
        on_upload: OnUpload | None = None,
    ) -> RequestHandle:
        """Queue a request and return its handle as soon as the server answers.

        The input is validated against the endpoint's schema first, and local files in it
        are inlined or uploaded (``on_upload`` hears each upload's progress); nothing is sent
        when it is invalid or a file cannot be uploaded. ``start_timeout`` bounds the wait
        before the request starts (fal's ``X-Fal-Request-Timeout``).
        """
        submit_path, _ = split_endpoint_id(endpoint_id)
        headers = submit_headers(webhook_url, priority, start_timeout, hint)
        # The client is usable alone: unless the caller validated it, it checks the input
        # itself and refuses a bad one before sending anything.
        if isinstance(arguments, ValidatedInput):
            validated = arguments
        else:
            lookup = await self.schema(submit_path)
            validated = validate_with(lookup, arguments, strict=self.strict_fields)
        prepared = await self.prepare_arguments(
            submit_path, validated.arguments, on_upload=on_upload
        )
        params = {WEBHOOK_PARAM: webhook_url} if webhook_url else None
        response = await self._send(
            "submit",
            "POST",
            f"{self.queue_url}/{submit_path}",
            json=prepared,
            params=params,
            headers=headers,
        )
        body = self._json(response)
        request_id = body.get("request_id") if isinstance(body, Mapping) else None
        if not isinstance(request_id, str) or not request_id:
            raise ProtocolError("the submit answer holds no request_id")
        if not is_request_id(request_id):
            # It goes into URLs and file names (``--save``): refuse anything but an id.
            raise ProtocolError(
                f"the submit answer's request_id {value_repr(request_id)} is not an id"
            )
        position = body.get("queue_position")
        return RequestHandle(
            endpoint_id=submit_path,
            request_id=request_id,
            status_url=body.get("status_url")
            or self._request_url(submit_path, request_id, "/status"),
            response_url=body.get("response_url") or self._request_url(submit_path, request_id),
            cancel_url=body.get("cancel_url")
            or self._request_url(submit_path, request_id, "/cancel"),
            queue_position=position if isinstance(position, int) else None,
        )

    async def status(self, endpoint_id: str, request_id: str, *, logs: bool = False) -> QueueStatus:
        """One status read; with ``logs=True`` it carries the whole log so far."""
        response = await self._send(
            "status",
            "GET",
            self._request_url(endpoint_id, request_id, "/status"),
            params={"logs": "1" if logs else "0"},
            request_id=request_id,
        )
        return self._parse_status(self._json(response, request_id), request_id)

    @staticmethod
    def _parse_status(body: Any, request_id: str) -> QueueStatus:
        if not isinstance(body, (dict, Mapping)):  # dict first: cheaper, once per event
            raise ProtocolError("the status answer is not a JSON object", request_id=request_id)
        try:
            return QueueStatus.from_json(body)
        except ValueError as error:
            raise ProtocolError(
                f"the status answer is malformed: {error}", request_id=request_id
            ) from None

    async def stream_status(
        self, endpoint_id: str, request_id: str, *, logs: bool = True
    ) -> AsyncIterator[QueueStatus]:
        """The status stream of one connection: statuses with only their new log lines.

        Ends after ``COMPLETED``. A stream that ends before that, or fails, raises
        :class:`ProtocolError`; :meth:`watch` falls back to polling then.
        """
        try:
            stream = self._stream_once(endpoint_id, request_id, logs=logs)
            async with contextlib.aclosing(stream):
                async for status in stream:
                    yield status
        except _StreamBroken as broken:
            raise ProtocolError(
                f"the status stream broke: {broken}", request_id=request_id
            ) from None

    async def _stream_once(
        self, endpoint_id: str, request_id: str, *, logs: bool
    ) -> AsyncIterator[QueueStatus]:
        from httpx_sse import SSEError, aconnect_sse

        url = self._request_url(endpoint_id, request_id, "/status/stream")
        timeout = httpx.Timeout(self.stream_idle_timeout, connect=10.0)
        self.stats["requests"] += 1
        try:
            async with aconnect_sse(
                self._http,
                "GET",
                url,
                params={"logs": "1" if logs else "0"},
                auth=self._auth_for(url),
                timeout=timeout,
            ) as source:
                response = source.response
                if not response.is_success:
                    await response.aread()
                    error = self._error_from(response, request_id)
                    if response.status_code in (401, 402, 403, 404):
                        raise error
                    raise _StreamBroken(str(error))
                events = source.aiter_sse()
                async for event in events:
                    if not event.data:
                        continue
                    try:
                        status = self._parse_status(json.loads(event.data), request_id)
                    except (json.JSONDecodeError, ProtocolError) as error:
                        raise _StreamBroken(f"malformed event: {error}") from None
                    if status.done:
                        try:
                            yield status  # the caller fetches the result on another connection
                        finally:
                            await _read_to_end(events)
                        return
                    yield status
        except (httpx.TransportError, SSEError, UnicodeDecodeError) as error:
            shown = with_message(error) if isinstance(error, httpx.TransportError) else error
            raise _StreamBroken(f"{type(shown).__name__}: {shown}") from None
        raise _StreamBroken("the stream closed before the request completed")

    async def watch(
        self, endpoint_id: str, request_id: str, *, logs: bool = True
    ) -> AsyncIterator[QueueStatus]:
        """Follow a request until it completes, yielding statuses with only new log lines.

        Uses the status stream (completion is seen at once) and, if the stream breaks or is
        unavailable, polls for the rest of the run. Log lines are counted across both, so none
        is lost or repeated.
        """
        seen = 0
        if self.stream:
            try:
                stream = self._stream_once(endpoint_id, request_id, logs=logs)
                async with contextlib.aclosing(stream):
                    async for status in stream:
                        seen += len(status.logs or ())
                        yield status
                        if status.done:
                            return
            except _StreamBroken:
                self.stats["stream_fallbacks"] += 1
        outage_since: float | None = None
        while True:
            try:
                status = await self.status(endpoint_id, request_id, logs=logs)
            except (httpx.ConnectError, httpx.ConnectTimeout, HTTPError) as error:
                # The request is queued and paid for: while the server cannot be reached (a
                # restart, a gateway saying it is unavailable), keep trying for up to
                # outage_tolerance seconds, beyond the retries of one status read. A server
                # that answers garbage or hangs is not an outage: that error is raised.
                if isinstance(error, HTTPError) and error.status_code not in _OUTAGE_STATUS:
                    raise
                now = asyncio.get_running_loop().time()
                outage_since = outage_since if outage_since is not None else now
                if now - outage_since >= self.outage_tolerance:
                    raise
                self.stats["outage_waits"] += 1
                await asyncio.sleep(min(self.retry.cap, self.outage_tolerance))
                continue
            outage_since = None
            full = status.logs or ()
            new = full[seen:] if len(full) >= seen else ()
            seen = max(seen, len(full))
            yield QueueStatus(
                state=status.state,
                queue_position=status.queue_position,
                logs=tuple(new) if status.logs is not None else None,
                metrics=status.metrics,
                error=status.error,
                error_type=status.error_type,
                response_url=status.response_url,
            )
            if status.done:
                return
            await asyncio.sleep(self.poll_interval)

    async def result(self, endpoint_id: str, request_id: str) -> dict[str, Any]:
        """The output of a completed request (an error for a failed or cancelled one)."""
        response = await self._send(
            "read", "GET", self._request_url(endpoint_id, request_id), request_id=request_id
        )
        body = self._json(response, request_id)
        if not isinstance(body, dict):
            raise ProtocolError("the result is not a JSON object", request_id=request_id)
        return body

    async def cancel(self, endpoint_id: str, request_id: str) -> str:
        """Ask to cancel; returns ``CANCELLATION_REQUESTED`` or ``ALREADY_COMPLETED``."""
        response = await self._send(
            "cancel",
            "PUT",
            self._request_url(endpoint_id, request_id, "/cancel"),
            request_id=request_id,
            ok_statuses=frozenset({400}),
        )
        body = self._json(response, request_id)
        status = body.get("status") if isinstance(body, Mapping) else None
        if response.status_code == 400:
            if status == "ALREADY_COMPLETED":
                return status
            raise self._error_from(response, request_id)
        return str(status or "CANCELLATION_REQUESTED")

    # -- files -------------------------------------------------------------------------------

    async def upload(
        self,
        data: bytes,
        content_type: str = "application/octet-stream",
        file_name: str = "upload.bin",
        *,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> str:
        """Upload bytes to storage (initiate, then PUT) and return the file's URL.

        ``on_progress(sent, total)`` is called as the bytes go out (from 0, again from 0 if
        the PUT is retried). The PUT goes to the URL storage answered with, without the key.
        """
        initiate = await self._send(
            "upload",
            "POST",
            f"{self.storage_url}/storage/upload/initiate",
            params={"storage_type": "fal-cdn-v3"},
            json={"content_type": content_type, "file_name": file_name},
        )
        body = self._json(initiate)
        if not isinstance(body, Mapping) or not body.get("upload_url") or not body.get("file_url"):
            raise ProtocolError("the upload answer holds no upload_url and file_url")
        await self._send(
            "upload",
            "PUT",
            str(body["upload_url"]),
            content=_UploadBody(data, on_progress),
            headers={"Content-Type": content_type, "Content-Length": str(len(data))},
            authenticate=False,
        )
        return str(body["file_url"])

    async def upload_file(
        self,
        path: str | os.PathLike[str],
        *,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> str:
        """Upload a local file to storage and return its URL."""
        file_path = Path(path)
        data = await asyncio.to_thread(file_path.read_bytes)
        return await self.upload(
            data, _content_type(file_path, data), file_path.name, on_progress=on_progress
        )

    async def file_to_input(
        self,
        path: str | os.PathLike[str],
        *,
        field: str = "file",
        kind: FileKind | None = None,
        on_upload: OnUpload | None = None,
    ) -> str:
        """A local file as an input value: a data: URI when small, else an uploaded URL.

        The bytes read are checked to be the ``kind`` of file the field wants
        (:class:`InputError` otherwise). A file that cannot be read, or whose upload fails,
        raises :class:`UploadError` naming ``field`` and the file: nothing is submitted.
        """
        shown = os.fspath(path)
        file_path = Path(path)
        try:
            data = await asyncio.to_thread(file_path.read_bytes)
        except FileNotFoundError:
            raise UploadError(field, shown, "the file is gone (deleted or moved)") from None
        except OSError as error:
            raise UploadError(field, shown, f"cannot be read ({error.strerror or error})") from None
        content_type = check_kind(field, shown, data[:HEAD_BYTES], kind).content_type
        if content_type == "application/octet-stream":
            content_type = _content_type(file_path)
        if len(data) <= self.data_uri_limit:
            encoded = base64.b64encode(data).decode("ascii")
            return f"data:{content_type};base64,{encoded}"

        def progress(sent: int, total: int) -> None:
            if on_upload is not None:
                on_upload(UploadProgress(field, file_path.name, sent, total))

        try:
            return await self.upload(data, content_type, file_path.name, on_progress=progress)
        except (HTTPError, ProtocolError, httpx.HTTPError) as error:
            shown_error = with_message(error) if isinstance(error, httpx.HTTPError) else error
            raise UploadError(field, shown, f"the upload failed: {shown_error}") from error

    async def prepare_arguments(
        self,
        endpoint_id: str,
        arguments: Mapping[str, Any],
        *,
        on_upload: OnUpload | None = None,
    ) -> dict[str, Any]:
        """Replace local file paths in file fields (``image_url`` and every other ``*_url``,
        in conditioning items and nested objects too) by inputs: data URIs or uploads."""
        prepared = copy.deepcopy(dict(arguments))
        for local in local_files(endpoint_id, arguments):
            value = await self.file_to_input(
                local.path, field=local.field, kind=local.kind, on_upload=on_upload
            )
            *parents, last = local.loc
            holder: Any = prepared
            for part in parents:
                holder = holder[part]
            holder[last] = value
        return prepared

    async def schema(self, endpoint_id: str) -> SchemaLookup:
        """The endpoint's schema: shipped, cached or fetched once from the OpenAPI URL that
        goes with this client's queue (fal's, or the local server's)."""
        from ._endpoints import get_schema_async

        return await get_schema_async(endpoint_id, url=default_openapi_url(self.queue_url))

    async def read_file(self, url: str) -> bytes:
        """The bytes of a file (an output video) at ``url``."""
        self.stats["requests"] += 1
        response = await self._http.get(url, follow_redirects=True)
        if not response.is_success:
            raise self._error_from(response, None)
        return response.content

    async def download(self, url: str, destination: str | os.PathLike[str]) -> Path:
        """Stream a file (an output video) to ``destination``, written atomically."""
        target = Path(destination)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        self.stats["requests"] += 1
        async with self._http.stream("GET", url, follow_redirects=True) as response:
            if not response.is_success:
                await response.aread()
                raise self._error_from(response, None)
            with partial.open("wb") as handle:
                async for chunk in response.aiter_bytes():
                    handle.write(chunk)
        partial.replace(target)
        return target

    # -- the whole run -------------------------------------------------------------------------

    async def subscribe(
        self,
        endpoint_id: str,
        arguments: Mapping[str, Any] | ValidatedInput,
        *,
        webhook_url: str | None = None,
        priority: Priority | None = None,
        start_timeout: float | None = None,
        timeout: float | None = None,
        on_submit: OnSubmit | None = None,
        on_upload: OnUpload | None = None,
        logs: bool = True,
    ) -> AsyncIterator[Update]:
        """Submit and follow a request: yields :class:`Queued`, :class:`InProgress` (new log
        lines) and, last, :class:`Completed` with the output.

        ``on_submit`` is called with the handle the moment the submit answers (persist the id
        there); ``on_upload`` with the progress of each local file's upload before it.
        ``timeout`` is an overall deadline: when it passes the remote request is asked to
        cancel and :class:`RequestTimeoutError` carries its id. A run that fails raises
        :class:`RunFailedError` (:class:`RequestCancelledError` when it was cancelled).
        """
        deadline = _Deadline(self, endpoint_id, timeout)
        handle = await deadline.run(
            self.submit(
                endpoint_id,
                arguments,
                webhook_url=webhook_url,
                priority=priority,
                start_timeout=start_timeout,
                on_upload=on_upload,
            )
        )
        if on_submit is not None:
            outcome = on_submit(handle)
            if inspect.isawaitable(outcome):
                await outcome
        yield Queued(handle.request_id, handle.queue_position)
        updates = self._follow(
            endpoint_id, handle.request_id, deadline, logs=logs, position=handle.queue_position
        )
        async with contextlib.aclosing(updates):
            async for update in updates:
                yield update

    async def follow(
        self,
        endpoint_id: str,
        request_id: str,
        *,
        timeout: float | None = None,
        logs: bool = True,
    ) -> AsyncIterator[Update]:
        """Follow a request submitted earlier (by id), like :meth:`subscribe` after its submit.

        Used to resume a request after a kernel restart; the log starts from its beginning.
        """
        deadline = _Deadline(self, endpoint_id, timeout)
        updates = self._follow(endpoint_id, request_id, deadline, logs=logs)
        async with contextlib.aclosing(updates):
            async for update in updates:
                yield update

    async def _follow(
        self,
        endpoint_id: str,
        request_id: str,
        deadline: _Deadline,
        *,
        logs: bool,
        position: int | None = None,
    ) -> AsyncIterator[Update]:
        statuses = self.watch(endpoint_id, request_id, logs=logs)
        last_state = "IN_QUEUE" if position is not None else None
        last_position = position
        try:
            while True:
                try:
                    if deadline.unbounded:
                        status = await statuses.__anext__()
                    else:
                        status = await deadline.run(statuses.__anext__(), request_id)
                except StopAsyncIteration:
                    raise ProtocolError(
                        "the status ended without completion", request_id=request_id
                    ) from None
                if status.state == "IN_QUEUE":
                    if status.queue_position != last_position or last_state != "IN_QUEUE":
                        last_position = status.queue_position
                        yield Queued(request_id, status.queue_position)
                elif status.state == "IN_PROGRESS":
                    if status.logs or last_state != "IN_PROGRESS":
                        yield InProgress(request_id, status.logs or ())
                else:
                    final_logs = status.logs or ()
                    if status.error:
                        if final_logs:
                            yield InProgress(request_id, final_logs)
                        raise self._run_error(status.error, status.error_type, request_id)
                    output = await deadline.run(
                        self._result_of_run(endpoint_id, request_id), request_id
                    )
                    yield Completed(request_id, output, final_logs, status.metrics)
                    return
                last_state = status.state
        finally:
            await statuses.aclose()

    async def _result_of_run(self, endpoint_id: str, request_id: str) -> dict[str, Any]:
        try:
            return await self.result(endpoint_id, request_id)
        except HTTPError as error:
            reason = error.detail if isinstance(error.detail, str) else str(error)
            raise self._run_error(
                reason, error.error_type, request_id, error.status_code
            ) from error

    @staticmethod
    def _run_error(
        error: str, error_type: str | None, request_id: str, status_code: int | None = None
    ) -> RunFailedError:
        cancelled = (
            error_type or ""
        ).lower() in _CANCELLED_ERROR_TYPES or "cancel" in error.lower()
        kind = RequestCancelledError if cancelled else RunFailedError
        return kind(error, error_type=error_type, request_id=request_id, status_code=status_code)

    async def _cancel_quietly(self, endpoint_id: str, request_id: str) -> None:
        with contextlib.suppress(asyncio.TimeoutError, httpx.HTTPError, HTTPError, ProtocolError):
            await asyncio.wait_for(self.cancel(endpoint_id, request_id), 10)

    async def run(
        self, endpoint_id: str, arguments: Mapping[str, Any], **options: Any
    ) -> dict[str, Any]:
        """Submit, wait and return the output (the options of :meth:`subscribe`)."""
        async for update in self.subscribe(endpoint_id, arguments, **options):
            if isinstance(update, Completed):
                return update.output
        raise ProtocolError("the run ended without a result")


def _content_type(path: Path, data: bytes | None = None) -> str:
    """A file's media type: from its first bytes when they tell, else from its name."""
    if data is not None:
        sniffed = sniff(data[:HEAD_BYTES]).content_type
        if sniffed != "application/octet-stream":
            return sniffed
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


class _UploadBody:
    """An upload's bytes as the connection takes them, in chunks, reporting progress.

    Iterable again from the start, so a retried PUT sends the whole file again.
    """

    def __init__(self, data: bytes, on_progress: Callable[[int, int], None] | None) -> None:
        self._data = memoryview(data)
        self._on_progress = on_progress

    async def __aiter__(self) -> AsyncIterator[bytes]:
        total = len(self._data)
        if self._on_progress is not None:
            self._on_progress(0, total)
        for start in range(0, total, UPLOAD_CHUNK):
            chunk = self._data[start : start + UPLOAD_CHUNK]
            yield bytes(chunk)
            if self._on_progress is not None:
                self._on_progress(start + len(chunk), total)


async def _read_to_end(events: AsyncIterator[Any], timeout: float = 1.0) -> None:
    """Read what follows the last event (the server closes the stream right after it), so the
    connection goes back to the pool instead of being closed: a new connection for the next
    request costs more than the whole stream's events."""

    async def exhaust() -> None:
        async for _ in events:
            pass

    with contextlib.suppress(asyncio.TimeoutError, httpx.TransportError):
        await asyncio.wait_for(exhaust(), timeout)


class _Deadline:
    """An overall client deadline: past it, the request is asked to cancel and
    :class:`RequestTimeoutError` is raised with its id."""

    def __init__(self, client: QueueClient, endpoint_id: str, timeout: float | None) -> None:
        self._client = client
        self._endpoint_id = endpoint_id
        self._timeout = timeout
        self._loop = asyncio.get_running_loop()
        self._at = None if timeout is None else self._loop.time() + timeout

    @property
    def unbounded(self) -> bool:
        return self._at is None

    async def run(self, awaitable: Awaitable[Any], request_id: str | None = None) -> Any:
        if self._at is None:
            return await awaitable
        try:
            return await asyncio.wait_for(awaitable, max(self._at - self._loop.time(), 0))
        except asyncio.TimeoutError:
            if request_id is not None:
                await self._client._cancel_quietly(self._endpoint_id, request_id)
            raise RequestTimeoutError(self._timeout or 0, request_id) from None
