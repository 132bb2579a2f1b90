"""The fal-compatible queue API as a Starlette app: :func:`create_app`.

Routes, following fal's queue protocol (the ``fal-client`` and ``@fal-ai/client`` wire format)::

    POST /{endpoint_id}                              submit (any depth of endpoint id)
    GET  /{app}/requests/{id}/status                 status (202 pending, 200 completed)
    GET  /{app}/requests/{id}/status/stream          server-sent status events
    GET  /{app}/requests/{id}                        result
    PUT  /{app}/requests/{id}/cancel                 cancel
    POST /storage/upload/initiate                    start an upload
    PUT  /storage/upload/{upload_id}                 the upload's bytes
    GET  /files/{request_or_upload_id}/{name}        outputs and uploads (HTTP Range works)
    GET  /health, /_local/stats, /_local/requests/{id}

``{app}`` is ``[namespace/]owner/alias``: the endpoint id without its sub-path. Endpoint ids,
submit headers and webhook URLs follow :mod:`ltx_jupyter._fal`, the rules the client uses too.

Browser safety: a request carrying an ``Origin`` header that is neither the server's own nor
in ``ServerConfig.allowed_origins`` is refused with 403 (a web page the user visits cannot
drive the server), except plain media loads of ``/files/...``; that check, the key check and
the request counts are the middlewares of :mod:`.middleware`. Submit bodies are bounded by
``max_body_bytes`` (413 beyond), uploads by ``max_upload_bytes``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .._errors import FieldError, InputError
from .._fal import (
    ERROR_TYPE_HEADER,
    OPENAPI_PATH,
    REQUEST_ID_HEADER,
    TIMEOUT_TYPE_HEADER,
    read_submit_options,
    split_endpoint_id,
)
from .._schema import check_input
from .config import ServerConfig
from .documents import EndpointDocuments
from .engines import Engine, get_engine
from .engines.base import shared_field_errors
from .middleware import (
    AuthMiddleware,
    BodyTooLarge,
    OriginMiddleware,
    Stats,
    StatsMiddleware,
    error_response,
    read_body,
)
from .platform import platform_routes
from .queue import CANCELLED, COMPLETED, IN_QUEUE, TIMED_OUT, RequestQueue, RequestRecord
from .storage import Storage

__all__ = ["create_app"]

logger = logging.getLogger(__name__)

_TRUE = frozenset({"1", "true", "yes", "on"})


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in _TRUE


def _too_large(limit: int) -> JSONResponse:
    return error_response(
        413,
        f"Request body too large: the limit is {limit} bytes; send large files as uploads "
        "(POST /storage/upload/initiate) and pass their URL",
        error_type="bad_request",
    )


class _Server:
    """The app's shared state: config, storage, engine, queue, stats and webhook sender."""

    def __init__(self, config: ServerConfig, engine: Engine) -> None:
        self.config = config
        self.engine = engine
        self.storage = Storage(config.data_dir)
        self.documents = EndpointDocuments(config.documents)
        self.queue = RequestQueue(
            engine,
            self.storage,
            concurrency=config.concurrency,
            on_complete=self._completed,
            defaults=self.documents.defaults,
        )
        self.stats = Stats()
        self._webhooks: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._http = httpx.AsyncClient(timeout=10.0)
        await self.queue.start()

    async def stop(self) -> None:
        await self.queue.stop()
        if self._webhooks:
            await asyncio.wait(self._webhooks, timeout=5.0)
            for task in self._webhooks:
                task.cancel()
        if self._http is not None:
            await self._http.aclose()

    def base_url(self, request: Request) -> str:
        return self.config.public_url or str(request.base_url).rstrip("/")

    def _completed(self, record: RequestRecord) -> None:
        if record.webhook_url:
            task = asyncio.get_running_loop().create_task(self._send_webhook(record))
            self._webhooks.add(task)
            task.add_done_callback(self._webhooks.discard)

    async def _send_webhook(self, record: RequestRecord) -> None:
        assert record.webhook_url is not None and self._http is not None
        payload = {
            "request_id": record.request_id,
            "status": "ERROR" if record.error else "OK",
            "payload": record.output,
            "error": record.error,
        }
        try:
            response = await self._http.post(record.webhook_url, json=payload)
            if response.status_code >= 400:
                logger.warning(
                    "webhook for request %s answered HTTP %s",
                    record.request_id,
                    response.status_code,
                )
        except httpx.HTTPError as exc:
            logger.warning("webhook for request %s failed: %s", record.request_id, exc)


def _request_headers(record: RequestRecord) -> dict[str, str]:
    return {REQUEST_ID_HEADER: record.request_id}


def _status_body(
    server: _Server, record: RequestRecord, logs: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """A status object as fal's queue sends it (its status and stream answers)."""
    body: dict[str, Any] = {"status": record.state, "request_id": record.request_id}
    if record.state == IN_QUEUE:
        body["queue_position"] = server.queue.queue_position(record)
    else:
        body["logs"] = logs
    if record.state == COMPLETED:
        body["metrics"] = {
            "inference_time": record.inference_time,
            "completed_at": record.completed_at,
        }
        if record.error is not None:
            body["error"] = record.error
            body["error_type"] = record.error_type
    body["response_url"] = record.request_url
    return body


def _server(request: Request) -> _Server:
    return request.app.state.server  # type: ignore[no-any-return]


def _find(request: Request) -> RequestRecord | None:
    """The request the URL names, if it exists under this app path."""
    record = _server(request).queue.get(request.path_params["request_id"])
    if record is None or request.path_params["app_path"].strip("/") != record.app_path:
        return None
    return record


# -- queue routes ------------------------------------------------------------------------------


async def submit(request: Request) -> Response:
    """``POST /{endpoint_id}``: validate and queue a request."""
    if request.method != "POST":
        raise HTTPException(404)
    server = _server(request)
    try:
        endpoint_id, app_path = split_endpoint_id(request.path_params["endpoint_id"])
    except InputError as error:
        return error_response(404, error.errors[0].msg)
    try:
        options = read_submit_options(request.headers, request.query_params)
    except InputError as error:
        return error_response(400, str(error), error_type="bad_request")

    try:
        data = json.loads(await read_body(request, server.config.max_body_bytes) or b"null")
    except BodyTooLarge:
        return _too_large(server.config.max_body_bytes)
    except ValueError:
        error = FieldError(("body",), "is not valid JSON", "json_invalid")
        return error_response(422, [error.to_detail()])
    schema = server.documents.schema(endpoint_id)
    # As fal does, a field the document does not have is ignored, not refused (engines may
    # read extra fields); only clients refuse them, to catch typos before a paid run.
    errors = check_input(endpoint_id, data, schema=schema, allow_files=False, strict=False)
    if schema is None and isinstance(data, Mapping):
        errors += shared_field_errors(data)
    if isinstance(data, Mapping):
        seen = {e.loc for e in errors}
        errors += [e for e in server.engine.validate(endpoint_id, data) if e.loc not in seen]
    if errors:
        return error_response(422, [e.to_detail() for e in errors])

    record = server.queue.submit(
        endpoint_id,
        app_path,
        dict(data),
        base_url=server.base_url(request),
        priority=options.priority,
        start_timeout=options.start_timeout,
        webhook_url=options.webhook_url,
        runner_hint=options.runner_hint,
    )
    return JSONResponse(
        {
            "status": IN_QUEUE,
            "request_id": record.request_id,
            "queue_position": server.queue.queue_position(record),
            "response_url": record.request_url,
            "status_url": record.request_url + "/status",
            "cancel_url": record.request_url + "/cancel",
        },
        headers=_request_headers(record),
    )


async def status(request: Request) -> Response:
    """``GET .../requests/{id}/status``: 202 while pending, 200 once completed."""
    record = _find(request)
    if record is None:
        return error_response(404, "Request not found")
    server = _server(request)
    logs = server.queue.logs(record) if _truthy(request.query_params.get("logs")) else None
    return JSONResponse(
        _status_body(server, record, logs),
        status_code=200 if record.state == COMPLETED else 202,
        headers=_request_headers(record),
    )


async def status_stream(request: Request) -> Response:
    """``GET .../requests/{id}/status/stream``: one event per change, until COMPLETED."""
    record = _find(request)
    if record is None:
        return error_response(404, "Request not found")
    server = _server(request)
    with_logs = _truthy(request.query_params.get("logs"))
    return StreamingResponse(
        _events(server, record, with_logs),
        media_type="text/event-stream",
        headers={
            **_request_headers(record),
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        },
    )


async def _events(server: _Server, record: RequestRecord, with_logs: bool) -> AsyncIterator[str]:
    queue = server.queue
    interval = server.config.ping_interval
    loop = asyncio.get_running_loop()
    sent_logs = 0
    last: tuple[str, int | None] | None = None
    last_write = loop.time()
    while True:
        version = queue.version(record)
        state = record.state
        position = queue.queue_position(record)
        new_logs = queue.logs(record, sent_logs) if with_logs and state != IN_QUEUE else []
        if (state, position) != last or new_logs:
            body = _status_body(server, record, new_logs if with_logs else None)
            yield f"data: {json.dumps(body)}\n\n"
            sent_logs += len(new_logs)
            last = (state, position)
            last_write = loop.time()
        if state == COMPLETED:
            return
        # A change of this request (or of its queue position) wakes the stream; a ping goes out
        # after `interval` of silence.
        silence = loop.time() - last_write
        if silence >= interval:
            yield ": ping\n\n"
            last_write = loop.time()
            continue
        if queue.closing:
            return  # the server is shutting down: a stream that ends early is not a result
        await queue.wait_for_change(record, version, interval - silence)


async def result(request: Request) -> Response:
    """``GET .../requests/{id}``: the output, or the error the request ended with."""
    record = _find(request)
    if record is None:
        return error_response(404, "Request not found")
    headers = _request_headers(record)
    if record.state != COMPLETED:
        return error_response(400, "Request is still in progress", headers=headers)
    if record.error is None:
        return JSONResponse(record.output, headers=headers)
    headers[ERROR_TYPE_HEADER] = record.error_type or "internal_error"
    if (record.error, record.error_type) == CANCELLED:
        return error_response(400, record.error, error_type=record.error_type, headers=headers)
    if (record.error, record.error_type) == TIMED_OUT:
        headers[TIMEOUT_TYPE_HEADER] = "user"
        return error_response(504, record.error, error_type=record.error_type, headers=headers)
    return error_response(500, record.error, error_type=record.error_type, headers=headers)


async def cancel(request: Request) -> Response:
    """``PUT .../requests/{id}/cancel``: 202 requested, 400 already completed, 404 unknown."""
    record = _find(request)
    if record is None:
        return JSONResponse({"status": "NOT_FOUND"}, status_code=404)
    outcome = _server(request).queue.cancel(record.request_id)
    if outcome == "already_completed":
        return JSONResponse(
            {"status": "ALREADY_COMPLETED"}, status_code=400, headers=_request_headers(record)
        )
    return JSONResponse(
        {"status": "CANCELLATION_REQUESTED"}, status_code=202, headers=_request_headers(record)
    )


# -- storage and files -------------------------------------------------------------------------


async def upload_initiate(request: Request) -> Response:
    """``POST /storage/upload/initiate``: answer where to PUT the bytes and the file's URL."""
    server = _server(request)
    try:
        body = json.loads(await read_body(request, server.config.max_body_bytes) or b"{}")
    except BodyTooLarge:
        return _too_large(server.config.max_body_bytes)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        error = FieldError(("body",), "must be a JSON object", "dict_type")
        return error_response(422, [error.to_detail()])
    info = server.storage.new_upload(body.get("file_name"), body.get("content_type"))
    base = server.base_url(request)
    return JSONResponse(
        {
            "upload_url": f"{base}/storage/upload/{info.upload_id}",
            "file_url": f"{base}/files/{info.upload_id}/{info.file_name}",
        }
    )


async def upload_put(request: Request) -> Response:
    """``PUT /storage/upload/{upload_id}``: store the bytes (413 beyond the size limit)."""
    server = _server(request)
    info = server.storage.upload_info(request.path_params["upload_id"])
    if info is None:
        return error_response(404, "Upload not found")
    limit = server.config.max_upload_bytes
    too_large = error_response(413, f"File too large: the limit is {limit // (1024 * 1024)} MiB")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return too_large
    path = server.storage.upload_path(info)
    partial = path.with_name(path.name + ".partial")
    size = 0
    with partial.open("wb") as handle:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                break
            handle.write(chunk)
    if size > limit:
        partial.unlink(missing_ok=True)
        return too_large
    partial.replace(path)
    base = server.base_url(request)
    return JSONResponse({"file_url": f"{base}/files/{info.upload_id}/{info.file_name}"})


async def files(request: Request) -> Response:
    """``GET /files/{id}/{name}``: an output or an upload, with HTTP Range support."""
    server = _server(request)
    owner_id, name = request.path_params["owner_id"], request.path_params["name"]
    path = server.storage.resolve(owner_id, name)
    if path is None:
        raise HTTPException(404)
    headers = {"Cache-Control": "public, max-age=3600"}
    if server.queue.get(owner_id) is not None:
        headers[REQUEST_ID_HEADER] = owner_id
    return FileResponse(
        path, media_type=server.storage.content_type(owner_id, name), headers=headers
    )


# -- endpoint documents ------------------------------------------------------------------------


async def openapi_document(request: Request) -> Response:
    """``GET /api/openapi/queue/openapi.json?endpoint_id=ID``: the endpoint's fal OpenAPI
    document, as fal serves it (no key needed), its server URL pointing here."""
    server = _server(request)
    endpoint_id = (request.query_params.get("endpoint_id") or "").strip().strip("/")
    if not endpoint_id:
        return error_response(400, "endpoint_id is required", error_type="bad_request")
    document = server.documents.document(endpoint_id)
    if document is None:
        return error_response(404, f"No OpenAPI document for endpoint {endpoint_id!r}")
    document["servers"] = [{"url": server.base_url(request)}]
    return JSONResponse(document)


# -- local extras ------------------------------------------------------------------------------


async def health(request: Request) -> Response:
    """``GET /health``: liveness, the engine's name and request counts by state."""
    server = _server(request)
    return JSONResponse(
        {
            "status": "ok",
            "engine": server.engine.name,
            "concurrency": server.config.concurrency,
            "requests": server.queue.counts(),
        }
    )


async def local_stats(request: Request) -> Response:
    """``GET /_local/stats``: HTTP requests handled, by kind and by request id."""
    return JSONResponse(_server(request).stats.to_json())


async def local_request(request: Request) -> Response:
    """``GET /_local/requests/{id}``: where a request is, its timings (epoch seconds) and the
    input it received."""
    server = _server(request)
    record = server.queue.get(request.path_params["request_id"])
    if record is None:
        return error_response(404, "Request not found")
    return JSONResponse(
        {
            "request_id": record.request_id,
            "endpoint": record.endpoint_id,
            "app_path": record.app_path,
            "state": record.state,
            "priority": record.priority,
            "queue_position": server.queue.queue_position(record),
            "created_at": record.created_at,
            "started_at": record.started_at,
            "completed_at": record.completed_at,
            "inference_time": record.inference_time,
            "error": record.error,
            "error_type": record.error_type,
            "log_count": len(record.logs),
            "input": record.input,
        },
        headers=_request_headers(record),
    )


# -- errors ------------------------------------------------------------------------------------


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, exc.detail)
    return error_response(exc.status_code, detail, headers=exc.headers)


async def _internal_error(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "Internal server error", error_type="internal_error")


def create_app(config: ServerConfig | None = None) -> Starlette:
    """Build the server app for ``config`` (default :class:`ServerConfig`).

    The engine is built at once (an unknown name raises ``ValueError``); the workers start
    with the app's lifespan.
    """
    config = config or ServerConfig()
    engine = get_engine(config.engine, **config.engine_options())
    server = _Server(config, engine)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await server.start()
        try:
            yield
        finally:
            await server.stop()

    app_path = "/{app_path:path}/requests/{request_id}"
    routes = [
        *platform_routes(config),
        Route(OPENAPI_PATH, openapi_document, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/_local/stats", local_stats, methods=["GET"]),
        Route("/_local/requests/{request_id}", local_request, methods=["GET"]),
        Route("/storage/upload/initiate", upload_initiate, methods=["POST"]),
        Route("/storage/upload/{upload_id}", upload_put, methods=["PUT"]),
        Route("/files/{owner_id}/{name}", files, methods=["GET", "HEAD"]),
        Route(app_path + "/status/stream", status_stream, methods=["GET"]),
        Route(app_path + "/status", status, methods=["GET"]),
        Route(app_path + "/cancel", cancel, methods=["PUT"]),
        Route(app_path, result, methods=["GET"]),
        Route(
            "/{endpoint_id:path}",
            submit,
            methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        ),
    ]
    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        HTTPException: _http_error,
        Exception: _internal_error,
    }
    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)
    app.state.server = server
    app.add_middleware(AuthMiddleware, key=config.key)
    app.add_middleware(OriginMiddleware, allowed_origins=config.allowed_origins)
    app.add_middleware(StatsMiddleware, stats=server.stats)
    return app
