"""fal's conventions, in one place: the client and the local server both ask this module.

It holds endpoint ids, base URLs and credentials from the environment, the ``Authorization``
scheme, the submit headers, what a request id may look like, and the webhook URL rule. It uses
the standard library only, so the server needs nothing of the client to import it.

Endpoint ids (``[namespace/]owner/alias[/sub/path]``; the app path, the prefix of per-request
URLs, drops the sub-path):

- Surrounding whitespace and slashes are dropped: ``/fal-ai/ltx-video/`` is
  ``fal-ai/ltx-video``.
- A one-segment id is invalid, except the legacy ``1234-myapp``, which means ``1234/myapp``.
  As in fal's own clients the legacy form is digits, a dash, then letters, digits and dashes:
  ``1234-my_app`` is refused rather than guessed at.
- Under the ``workflows`` and ``comfy`` namespaces the app path keeps three segments
  (``workflows/owner/alias``); ``workflows/me`` is refused.
- Each segment is ASCII letters, digits, ``-``, ``_`` and ``.``, and is neither empty nor
  ``.`` or ``..``. An empty segment (``fal-ai//ltx-video``) or a dot segment
  (``fal-ai/ltx-video/./x``) would be rewritten or misread on its way through URL handling,
  and spaces, ``?``, ``#``, ``%`` or non-ASCII letters would change or encode the URL: each
  could send a paid request somewhere other than where the id says, so they are refused, not
  repaired. Dots inside a segment are fine (``fal-ai/flux-pro/v1.1-ultra``).
- The first segment may not be one the local server keeps for its own routes
  (:data:`RESERVED_SEGMENTS`: ``storage``, ``files``, ``health``, ``_local``, ``api``,
  ``v1``): ``POST /storage/...`` there is an upload, not a submit. The client refuses such an
  id whichever server it talks to: one rule, not one per host.

Webhook URLs (``?fal_webhook=``): an absolute ``http`` or ``https`` URL with a host, and a
valid port if it names one. The scheme is case-insensitive (RFC 3986), so ``HTTPS://host/x`` is
accepted. Spaces and control characters are refused (percent-encode them).

Submit headers: ``X-Fal-Queue-Priority`` is exactly ``normal`` or ``low``;
``X-Fal-Request-Timeout`` is a finite number of seconds above 1 (the client sends it as
``60.0``, as fal-client does; the server also reads ``60``); ``X-Fal-Runner-Hint`` is visible
ASCII text. Bad values are refused by the client before anything is sent
(:class:`InputError`) and by the server with 400, in the same words.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import urlsplit

from . import __version__
from ._errors import FieldError, InputError
from ._text import value_repr

__all__ = [
    "DEFAULT_OPENAPI_URL",
    "DEFAULT_PLATFORM_URL",
    "DEFAULT_QUEUE_URL",
    "DEFAULT_STORAGE_URL",
    "ERROR_TYPE_HEADER",
    "LIFECYCLE_HEADER",
    "NAMESPACES",
    "OPENAPI_PATH",
    "PLATFORM_PATH",
    "PRIORITIES",
    "PRIORITY_HEADER",
    "REQUEST_ID_HEADER",
    "RESERVED_SEGMENTS",
    "RUNNER_HINT_HEADER",
    "TIMEOUT_HEADER",
    "TIMEOUT_TYPE_HEADER",
    "USER_AGENT",
    "WEBHOOK_PARAM",
    "SubmitOptions",
    "authorization",
    "credentials_from_env",
    "default_openapi_url",
    "default_platform_url",
    "default_queue_url",
    "default_storage_url",
    "is_fal_url",
    "is_request_id",
    "parse_authorization",
    "read_submit_options",
    "split_endpoint_id",
    "submit_headers",
]

# -- hosts and base URLs -------------------------------------------------------------------------

DEFAULT_QUEUE_URL = "https://queue.fal.run"
DEFAULT_STORAGE_URL = "https://rest.fal.ai"
DEFAULT_OPENAPI_URL = "https://fal.ai/api/openapi/queue/openapi.json"
DEFAULT_PLATFORM_URL = "https://api.fal.ai/v1"
#: Where a server that is not fal's (the local one) serves the OpenAPI document and the
#: platform API, under its queue URL.
OPENAPI_PATH = "/api/openapi/queue/openapi.json"
PLATFORM_PATH = "/v1"
_FAL_DOMAINS = ("fal.run", "fal.ai", "fal.media")

# -- endpoint ids --------------------------------------------------------------------------------

#: First segments after which the app path has three segments, not two.
NAMESPACES = frozenset({"workflows", "comfy"})
#: First path segments that are the local server's own routes, never endpoint owners.
RESERVED_SEGMENTS = frozenset({"storage", "files", "health", "_local", "api", "v1"})
_LEGACY_ID = re.compile(r"([0-9]+)-([A-Za-z0-9-]+)")
_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")

# -- headers, ids and webhooks -------------------------------------------------------------------

PRIORITY_HEADER = "X-Fal-Queue-Priority"
TIMEOUT_HEADER = "X-Fal-Request-Timeout"
TIMEOUT_TYPE_HEADER = "X-Fal-Request-Timeout-Type"
RUNNER_HINT_HEADER = "X-Fal-Runner-Hint"
LIFECYCLE_HEADER = "X-Fal-Object-Lifecycle-Preference"
REQUEST_ID_HEADER = "x-fal-request-id"
ERROR_TYPE_HEADER = "x-fal-error-type"
WEBHOOK_PARAM = "fal_webhook"
USER_AGENT = f"ltx-jupyter/{__version__}"
PRIORITIES = ("normal", "low")
#: What a request id may look like (fal's are UUIDs); it goes into URLs and file names.
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_DECIMAL = re.compile(r"\+?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_HINT = re.compile(r"[\x20-\x7e]+")


# -- base URLs -----------------------------------------------------------------------------------


def is_fal_url(url: str) -> bool:
    """Whether ``url`` is on one of fal's own hosts (which require credentials)."""
    host = (urlsplit(url).hostname or "").lower()
    return any(host == d or host.endswith("." + d) for d in _FAL_DOMAINS)


def default_queue_url() -> str:
    """``LTX_QUEUE_URL`` from the environment, else fal's queue."""
    return (os.environ.get("LTX_QUEUE_URL") or DEFAULT_QUEUE_URL).rstrip("/")


def _beside_queue(variable: str, fal_default: str, path: str, queue_url: str | None) -> str:
    url = os.environ.get(variable)
    if url:
        return url.rstrip("/")
    queue = (queue_url or default_queue_url()).rstrip("/")
    return fal_default if is_fal_url(queue) else queue + path


def default_storage_url(queue_url: str | None = None) -> str:
    """``LTX_STORAGE_URL``; else fal's storage for fal's queue, or the queue server itself
    (the local server serves both)."""
    return _beside_queue("LTX_STORAGE_URL", DEFAULT_STORAGE_URL, "", queue_url)


def default_openapi_url(queue_url: str | None = None) -> str:
    """``LTX_OPENAPI_URL``; else fal's OpenAPI document for fal's queue, or
    ``{queue}/api/openapi/queue/openapi.json`` for another server."""
    return _beside_queue("LTX_OPENAPI_URL", DEFAULT_OPENAPI_URL, OPENAPI_PATH, queue_url)


def default_platform_url(queue_url: str | None = None) -> str:
    """``LTX_PLATFORM_URL``; else fal's platform API (``https://api.fal.ai/v1``) for fal's
    queue, or ``{queue}/v1`` for another server."""
    return _beside_queue("LTX_PLATFORM_URL", DEFAULT_PLATFORM_URL, PLATFORM_PATH, queue_url)


# -- credentials ---------------------------------------------------------------------------------


def credentials_from_env() -> str | None:
    """``FAL_KEY``, else ``FAL_KEY_ID:FAL_KEY_SECRET``, else None."""
    key = os.environ.get("FAL_KEY")
    if key:
        return key
    key_id, secret = os.environ.get("FAL_KEY_ID"), os.environ.get("FAL_KEY_SECRET")
    if key_id and secret:
        return f"{key_id}:{secret}"
    return None


def authorization(credentials: str) -> str:
    """The ``Authorization`` header value for ``credentials``: ``Key <credentials>``."""
    return "Key " + credentials


def parse_authorization(value: str | None) -> str | None:
    """The credentials of an ``Authorization: Key <credentials>`` header value, else None.

    The scheme is case-insensitive (RFC 9110); an empty credential is none.
    """
    scheme, _, credentials = (value or "").strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != "key" or not credentials:
        return None
    return credentials


# -- endpoint ids --------------------------------------------------------------------------------


def _endpoint_problem(parts: list[str]) -> str | None:
    """Why these segments are not an endpoint id (None when they are)."""
    if not parts or parts == [""]:
        return "it is empty"
    if "" in parts:
        return "it has an empty segment ('//')"
    if any(p in (".", "..") for p in parts):
        return "'.' and '..' segments are not allowed"
    bad = next((p for p in parts if not _SEGMENT.fullmatch(p)), None)
    if bad is not None:
        return f"segment {bad!r} may hold only ASCII letters, digits, '-', '_' and '.'"
    if parts[0] in RESERVED_SEGMENTS:
        return f"{parts[0]!r} is reserved for the local server's own routes"
    if parts[0] in NAMESPACES and len(parts) < 3:
        return f"the {parts[0]!r} namespace needs {parts[0]}/owner/alias[/path]"
    if len(parts) < 2 and re.match(r"[0-9]+-", parts[0]):
        return "a legacy id is 1234-alias, the alias of ASCII letters, digits and '-'"
    if len(parts) < 2:
        return "it needs an owner and an alias"
    return None


def split_endpoint_id(endpoint_id: str) -> tuple[str, str]:
    """The normalised id (the submit path) and its app path (status, result and cancel).

    ``fal-ai/ltx-video/image-to-video`` gives ``("fal-ai/ltx-video/image-to-video",
    "fal-ai/ltx-video")``; ``1234-myapp`` gives ``("1234/myapp", "1234/myapp")``. An invalid
    id raises :class:`InputError` on the field ``endpoint`` (the rules are in this module's
    docstring).
    """
    if isinstance(endpoint_id, str):
        text = endpoint_id.strip().strip("/")
        legacy = _LEGACY_ID.fullmatch(text)
        parts = list(legacy.groups()) if legacy else text.split("/")
        problem = _endpoint_problem(parts)
    else:
        parts, problem = [], "it is not text"
    if problem is None:
        app_segments = 3 if parts[0] in NAMESPACES else 2
        return "/".join(parts), "/".join(parts[:app_segments])
    message = (
        f"{value_repr(endpoint_id)} is not an endpoint id ({problem}); "
        "use owner/alias[/path], e.g. 'fal-ai/ltx-video'"
    )
    raise InputError([FieldError(("endpoint",), message)])


# -- request ids and webhooks --------------------------------------------------------------------


def is_request_id(text: str) -> bool:
    """Whether ``text`` may be a request id: letters, digits, ``_``, ``.``, ``-``, at most
    128, starting with a letter or digit, no ``..`` (ids go into URLs and file names)."""
    return bool(_REQUEST_ID.fullmatch(text)) and ".." not in text


def _webhook_problem(url: object) -> str | None:
    """Why ``url`` is not a webhook URL, as a message (None when it is one)."""
    reason = None
    if not isinstance(url, str):
        reason = "it is not text"
    elif any(c.isspace() or not c.isprintable() for c in url):
        reason = "it holds spaces or control characters; percent-encode them"
    else:
        try:
            parts = urlsplit(url)
            _ = parts.port  # reading it checks the port
        except ValueError as error:
            reason = f"it is not a valid URL: {error}"
        else:
            if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
                reason = "it needs http:// or https:// and a host"
    if reason is None:
        return None
    return f"{value_repr(url)} is not a webhook URL ({reason}), e.g. 'https://example.com/hook'"


# -- submit headers ------------------------------------------------------------------------------


def _priority_problem(priority: object) -> str | None:
    if priority in PRIORITIES:
        return None
    return f"must be 'normal' or 'low', got {value_repr(priority)}"


def _timeout_problem(seconds: float, shown: object) -> str | None:
    if math.isfinite(seconds) and seconds > 1:
        return None
    return f"must be a number of seconds above 1, got {value_repr(shown)}"


def _hint_problem(hint: object) -> str | None:
    if isinstance(hint, str) and _HINT.fullmatch(hint):
        return None
    return f"must be visible ASCII text, got {value_repr(hint)}"


def submit_headers(
    webhook_url: str | None,
    priority: str | None,
    start_timeout: float | None,
    hint: str | None,
) -> dict[str, str]:
    """The submit headers for these options (the client's side of the rules).

    Raises :class:`InputError` naming every bad option (``webhook``, ``priority``,
    ``start_timeout``, ``hint``); the webhook goes in the URL, not in a header.
    """
    errors = []
    headers = {}
    if priority is not None:
        problem = _priority_problem(priority)
        if problem:
            errors.append(FieldError(("priority",), problem))
        else:
            headers[PRIORITY_HEADER] = priority
    if start_timeout is not None:
        seconds = math.nan
        if isinstance(start_timeout, (int, float)) and not isinstance(start_timeout, bool):
            try:
                seconds = float(start_timeout)
            except OverflowError:  # an int too large for a float
                seconds = math.inf
        problem = _timeout_problem(seconds, start_timeout)
        if problem:
            errors.append(FieldError(("start_timeout",), problem))
        else:
            headers[TIMEOUT_HEADER] = str(float(start_timeout))
    if webhook_url is not None:
        problem = _webhook_problem(webhook_url)
        if problem:
            errors.append(FieldError(("webhook",), problem))
    if hint:
        problem = _hint_problem(hint)
        if problem:
            errors.append(FieldError(("hint",), problem))
        else:
            headers[RUNNER_HINT_HEADER] = hint
    if errors:
        raise InputError(errors)
    return headers


class SubmitOptions(NamedTuple):
    """What a submit asks for beyond its input, as the server reads it."""

    priority: str
    start_timeout: float | None
    runner_hint: str | None
    webhook_url: str | None


def read_submit_options(headers: Mapping[str, str], query: Mapping[str, str]) -> SubmitOptions:
    """The options a submit's headers and query carry (the server's side of the rules).

    ``headers`` is looked up by the canonical names, so it should ignore case, as
    Starlette's and httpx's header mappings do. Raises :class:`InputError` naming each bad
    header or query parameter, in the words the client uses for the same mistake.
    """
    errors = []
    priority = headers.get(PRIORITY_HEADER, "normal")
    problem = _priority_problem(priority)
    if problem:
        errors.append(FieldError((PRIORITY_HEADER,), problem))
    start_timeout = None
    raw = headers.get(TIMEOUT_HEADER)
    if raw is not None:
        start_timeout = float(raw) if _DECIMAL.fullmatch(raw) else math.nan
        problem = _timeout_problem(start_timeout, raw)
        if problem:
            errors.append(FieldError((TIMEOUT_HEADER,), problem))
    webhook_url = query.get(WEBHOOK_PARAM)
    if webhook_url is not None:
        problem = _webhook_problem(webhook_url)
        if problem:
            errors.append(FieldError((WEBHOOK_PARAM,), problem))
    if errors:
        raise InputError(errors)
    return SubmitOptions(
        priority, start_timeout, headers.get(RUNNER_HINT_HEADER) or None, webhook_url
    )
