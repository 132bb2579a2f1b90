"""The local server's middlewares and request counts, around the routes of :mod:`.app`.

- :class:`AuthMiddleware`: ``Authorization: Key <key>`` on every route but ``/health`` and
  ``/files/...`` when the server has a key.
- :class:`OriginMiddleware`: cross-origin browser requests are refused (403) unless their
  origin is allowed, so a web page the user visits cannot drive the server.
- :class:`StatsMiddleware`: counts each response by kind and request id into :class:`Stats`
  (served at ``/_local/stats``).

:func:`error_response` is the one way the server answers an error, in fal's shape
(``{"detail": ...}`` plus extras such as ``error_type``); :func:`read_body` the one way a route
reads a body bounded in size.
"""

from __future__ import annotations

import hmac
import json
from collections import defaultdict
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._fal import (
    ERROR_TYPE_HEADER,
    LIFECYCLE_HEADER,
    PRIORITY_HEADER,
    REQUEST_ID_HEADER,
    RUNNER_HINT_HEADER,
    TIMEOUT_HEADER,
    parse_authorization,
)

__all__ = [
    "AUTH_DETAIL",
    "KINDS",
    "ORIGIN_DETAIL",
    "AuthMiddleware",
    "BodyTooLarge",
    "OriginMiddleware",
    "Stats",
    "StatsMiddleware",
    "classify",
    "error_response",
    "read_body",
]

AUTH_DETAIL = (
    "Missing or invalid credentials: send 'Authorization: Key <key>' with the key this "
    "server was started with (--key or LTX_SERVER_KEY)."
)
ORIGIN_DETAIL = (
    "Cross-origin request from {origin} refused: start the server with "
    "--allow-origin {origin} (ServerConfig.allowed_origins) to allow that page."
)
#: The kinds of HTTP request :class:`Stats` counts.
KINDS = ("submit", "status", "stream", "result", "cancel", "upload", "file", "other")
_CORS_HEADERS = ", ".join(
    h.lower()
    for h in (
        "Authorization",
        "Content-Type",
        PRIORITY_HEADER,
        TIMEOUT_HEADER,
        RUNNER_HINT_HEADER,
        LIFECYCLE_HEADER,
    )
)
_EXPOSED_HEADERS = f"{REQUEST_ID_HEADER}, {ERROR_TYPE_HEADER}".encode()


def error_response(status_code: int, detail: Any, **extra: Any) -> JSONResponse:
    """An error answer as fal's servers give it: ``{"detail": detail, **extra}``.

    ``headers=`` sets response headers; other keywords (``error_type``) join the body.
    """
    headers = extra.pop("headers", None)
    return JSONResponse({"detail": detail, **extra}, status_code=status_code, headers=headers)


class BodyTooLarge(Exception):
    """A request body went past its limit."""


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body, or :class:`BodyTooLarge` as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class Stats:
    """Counts of handled HTTP requests, by kind and by request id."""

    def __init__(self) -> None:
        self.total = 0
        self.by_kind: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.by_request: dict[str, dict[str, int]] = defaultdict(lambda: {"total": 0})

    def record(self, kind: str, request_id: str | None) -> None:
        """Count one response of ``kind``, for ``request_id`` when it names one."""
        self.total += 1
        self.by_kind[kind] += 1
        if request_id:
            counts = self.by_request[request_id]
            counts[kind] = counts.get(kind, 0) + 1
            counts["total"] += 1

    def to_json(self) -> dict[str, Any]:
        """The counts as ``/_local/stats`` serves them."""
        return {
            "total": self.total,
            "by_kind": dict(self.by_kind),
            "by_request": {k: dict(v) for k, v in self.by_request.items()},
        }


def classify(method: str, path: str) -> str:
    """The kind (one of :data:`KINDS`) of a request to ``path``."""
    if path.startswith("/storage/upload"):
        return "upload"
    if path.startswith("/files/"):
        return "file"
    if "/requests/" in path and not path.startswith("/_local/"):
        if path.endswith("/status/stream"):
            return "stream"
        if path.endswith("/status"):
            return "status"
        if path.endswith("/cancel"):
            return "cancel"
        if method in ("GET", "HEAD"):
            return "result"
    if method == "POST" and not path.startswith("/_local/"):
        return "submit"
    return "other"


class StatsMiddleware:
    """Counts each response by kind, and by the request id its ``x-fal-request-id`` names."""

    def __init__(self, app: ASGIApp, stats: Stats) -> None:
        self.app = app
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        kind = classify(scope["method"], scope["path"])

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                request_id = Headers(raw=message.get("headers", [])).get(REQUEST_ID_HEADER)
                self.stats.record(kind, request_id)
            await send(message)

        await self.app(scope, receive, counting_send)


class AuthMiddleware:
    """Requires ``Authorization: Key <key>`` on every route but ``/health`` and ``/files/``."""

    def __init__(self, app: ASGIApp, key: str | None) -> None:
        self.app = app
        self.key = key.encode() if key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or self.key is None
            or path == "/health"
            or path.startswith("/files/")
        ):
            await self.app(scope, receive, send)
            return
        credentials = parse_authorization(Headers(scope=scope).get("authorization"))
        if credentials is None or not hmac.compare_digest(credentials.encode(), self.key):
            response = error_response(401, AUTH_DETAIL, headers={"WWW-Authenticate": "Key"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class OriginMiddleware:
    """Refuses cross-origin browser requests (403) unless their origin is allowed.

    Requests without an ``Origin`` header (scripts, notebooks' kernels, ``<video src>``
    loads, which browsers send as no-cors GETs without one) and same-origin requests pass.
    ``GET``/``HEAD`` of ``/files/...`` always pass: those files are public by URL already, and
    a ``<video crossorigin>`` load sends an ``Origin``. Allowed origins get CORS headers and
    their preflight ``OPTIONS`` requests are answered.
    """

    def __init__(self, app: ASGIApp, allowed_origins: tuple[str, ...]) -> None:
        self.app = app
        self.allowed = frozenset(o.lower() for o in allowed_origins)

    def _allowed(self, scope: Scope, headers: Headers, origin: str) -> bool:
        lowered = origin.lower()
        if "*" in self.allowed or lowered in self.allowed:
            return True
        host = headers.get("host")
        return host is not None and lowered == f"{scope.get('scheme', 'http')}://{host}".lower()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        method, path = scope["method"], scope.get("path", "")
        if origin is None or (method in ("GET", "HEAD") and path.startswith("/files/")):
            await self.app(scope, receive, send)
            return
        if not self._allowed(scope, headers, origin):
            shown = json.dumps(origin[:200])
            response = error_response(
                403, ORIGIN_DETAIL.format(origin=shown), error_type="bad_request"
            )
            await response(scope, receive, send)
            return
        cors = [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"vary", b"Origin"),
            (b"access-control-expose-headers", _EXPOSED_HEADERS),
        ]
        if method == "OPTIONS" and "access-control-request-method" in headers:
            preflight = Response(
                status_code=204,
                headers={
                    "Access-Control-Allow-Origin": origin,
                    "Vary": "Origin",
                    "Access-Control-Allow-Methods": "GET, HEAD, POST, PUT",
                    "Access-Control-Allow-Headers": _CORS_HEADERS,
                    "Access-Control-Max-Age": "600",
                },
            )
            await preflight(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *cors]}
            await send(message)

        await self.app(scope, receive, send_with_cors)
