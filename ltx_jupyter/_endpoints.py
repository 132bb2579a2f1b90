"""The endpoints the package knows, and where each one's schema comes from.

:func:`get_schema` looks an endpoint's OpenAPI document up in this order:

1. the documents shipped with the package (``ltx_jupyter/data/openapi/``) for the LTX family,
   each read once per process;
2. the user's cache (``platformdirs.user_cache_dir("ltx-jupyter")/openapi/``), where every
   document fetched is kept with the time it was fetched, while younger than ``max_age``;
3. fal's OpenAPI URL (``{url}?endpoint_id=<id>``, :func:`openapi_url`), fetched once and cached.

When a document cannot be fetched the cached copy is used however old it is; with nothing
cached the answer holds no schema and a one-line warning that the job goes unvalidated. A
fetched document that is not a valid fal document raises :class:`SchemaDocumentError` and is not
cached. No API key is needed for these documents and none is ever sent.

:func:`get_schema` (httpx.Client) and :func:`get_schema_async` (httpx.AsyncClient) share every
step but the request itself. Nothing here is imported by ``import ltx_jupyter``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ._errors import SchemaDocumentError
from ._failures import RecentFailures
from ._openapi import EndpointSchema, parse_document
from ._text import shorten

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEFAULT_MAX_AGE",
    "DEFAULT_TIMEOUT",
    "FAMILIES",
    "EndpointInfo",
    "SchemaLookup",
    "cached_endpoints",
    "family_of",
    "forget_unreachable",
    "get_schema",
    "get_schema_async",
    "is_known",
    "is_shipped",
    "known_endpoints",
    "local_schema",
    "openapi_url",
    "refresh_schema",
    "refresh_schema_async",
    "schema_cache_dir",
    "shipped_document",
]

#: A cached document older than this (seconds) is fetched again (the old copy is kept if the
#: fetch fails).
DEFAULT_MAX_AGE = 7 * 24 * 3600.0
#: Seconds to wait for fal's OpenAPI URL; a schema is a convenience, not worth a long stall.
DEFAULT_TIMEOUT = 5.0
#: fal's documents are tens of kilobytes; anything this large is not one.
MAX_DOCUMENT_BYTES = 8 * 1024 * 1024

#: Endpoint id prefixes and the family they belong to, most specific first. A prefix ending in
#: ``/`` or ``-`` matches any id that starts with it; any other matches the id itself and the
#: ids under it (``fal-ai/ltx-video`` and ``fal-ai/ltx-video/image-to-video``).
FAMILIES: tuple[tuple[str, str], ...] = (
    ("fal-ai/ltx-2.3-22b/", "LTX-2.3 22B"),
    ("fal-ai/ltx-2-19b/", "LTX-2 19B"),
    ("fal-ai/ltx-2.3/", "LTX-2.3"),
    ("fal-ai/ltx-2/", "LTX-2"),
    ("fal-ai/ltxv-13b-098-distilled", "LTX-Video 13B 0.9.8"),
    ("fal-ai/ltx-video-13b-", "LTX-Video 13B 0.9.7"),
    ("fal-ai/ltx-video", "LTX-Video 0.9.1"),
)

_FAMILY_ORDER = (
    "LTX-Video 0.9.1",
    "LTX-Video 13B 0.9.7",
    "LTX-Video 13B 0.9.8",
    "LTX-2",
    "LTX-2.3",
    "LTX-2 19B",
    "LTX-2.3 22B",
)

Source = Literal["shipped", "cache", "fetched", "stale-cache", "none"]


def openapi_url() -> str:
    """fal's per-endpoint OpenAPI URL: ``LTX_OPENAPI_URL``; else fal's own, or the queue
    server's for a queue that is not fal's (see :func:`._fal.default_openapi_url`)."""
    from ._fal import default_openapi_url

    return default_openapi_url()


def family_of(endpoint_id: str) -> str | None:
    """The LTX family an endpoint id belongs to (``"LTX-2 19B"``), or None."""
    endpoint_id = _normal(endpoint_id)
    for prefix, family in FAMILIES:
        if prefix.endswith(("/", "-")):
            if endpoint_id.startswith(prefix):
                return family
        elif endpoint_id == prefix or endpoint_id.startswith(prefix + "/"):
            return family
    return None


@dataclass(frozen=True)
class EndpointInfo:
    """A shipped endpoint: its id, family, category (``text-to-video``...) and a title."""

    endpoint_id: str
    family: str | None
    category: str | None
    title: str


@dataclass(frozen=True)
class SchemaLookup:
    """What :func:`get_schema` found for an endpoint.

    ``schema`` is None when no document could be had; ``warning`` is then a one-line text
    saying the job will be sent unvalidated. A warning also notes a cached copy used because
    a refresh failed, or a fetched document that could not be cached. ``source`` says where
    the schema came from; ``fetched_at`` is when a fetched or cached document was fetched
    (seconds since the epoch).
    """

    endpoint_id: str
    schema: EndpointSchema | None
    source: Source
    warning: str | None = None
    fetched_at: float | None = None


# ---- shipped documents ----------------------------------------------------------------------


def _shipped_dir() -> Any:
    from importlib import resources

    return resources.files(__package__) / "data" / "openapi"


def _shipped_name(endpoint_id: str) -> str | None:
    parts = endpoint_id.split("/")
    if not all(p and p not in (".", "..") and "\\" not in p for p in parts):
        return None
    return "__".join(parts) + ".json"


def _shipped_bytes(endpoint_id: str) -> bytes | None:
    name = _shipped_name(endpoint_id)
    if name is None:
        return None
    resource = _shipped_dir() / name
    return resource.read_bytes() if resource.is_file() else None


def is_shipped(endpoint_id: str) -> bool:
    """Whether the package ships this endpoint's document."""
    name = _shipped_name(_normal(endpoint_id))
    return name is not None and (_shipped_dir() / name).is_file()


def shipped_document(endpoint_id: str) -> dict[str, Any] | None:
    """A shipped endpoint's OpenAPI document as decoded JSON (a fresh copy), or None."""
    data = _shipped_bytes(_normal(endpoint_id))
    return json.loads(data) if data is not None else None


@functools.cache
def _shipped_schema(endpoint_id: str) -> EndpointSchema | None:
    data = _shipped_bytes(endpoint_id)
    if data is None:
        return None
    return parse_document(json.loads(data), endpoint_id)


@functools.lru_cache(maxsize=1)
def _shipped_index() -> tuple[EndpointInfo, ...]:
    found = []
    for resource in _shipped_dir().iterdir():
        if not resource.name.endswith(".json"):
            continue
        info = json.loads(resource.read_bytes()).get("info", {})
        metadata = info.get("x-fal-metadata", {})
        endpoint_id = metadata.get("endpointId")
        if not isinstance(endpoint_id, str):
            continue
        category = metadata.get("category")
        found.append(
            EndpointInfo(
                endpoint_id=endpoint_id,
                family=family_of(endpoint_id),
                category=category if isinstance(category, str) else None,
                title=_title(endpoint_id, category if isinstance(category, str) else None),
            )
        )

    def order(info: EndpointInfo) -> tuple[int, str]:
        rank = _FAMILY_ORDER.index(info.family) if info.family in _FAMILY_ORDER else 99
        return rank, info.endpoint_id

    return tuple(sorted(found, key=order))


def known_endpoints() -> tuple[EndpointInfo, ...]:
    """Every shipped endpoint, by family (oldest first) then id."""
    return _shipped_index()


def _title(endpoint_id: str, category: str | None) -> str:
    """A readable title: the family, then what the rest of the id says."""
    family = family_of(endpoint_id)
    if family is None:
        return endpoint_id
    prefix = next(p for p, name in FAMILIES if name == family)
    words = endpoint_id[len(prefix) :].strip("/-").replace("/", " ").replace("-", " ").split()
    if family == "LTX-Video 13B 0.9.8":
        words.insert(0, "distilled")
    if not words or words == ["distilled"]:
        words += (category or "text-to-video").split("-")
    return f"{family} {' '.join(words)}"


# ---- the user cache -------------------------------------------------------------------------


def schema_cache_dir() -> Path:
    """Where fetched documents are cached: ``user_cache_dir("ltx-jupyter")/openapi``."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("ltx-jupyter")) / "openapi"


def _cache_file(cache_dir: Path, endpoint_id: str) -> Path:
    return cache_dir / (urllib.parse.quote(endpoint_id, safe="") + ".json")


@dataclass(frozen=True)
class _Cached:
    schema: EndpointSchema
    fetched_at: float


#: Parsed cache files by path: (mtime_ns, size, entry), so a file is parsed once per change.
_parsed_cache: dict[Path, tuple[int, int, _Cached]] = {}


def _read_cache(cache_dir: Path, endpoint_id: str) -> _Cached | None:
    """The cached document of ``endpoint_id``; None when absent, unreadable or corrupt."""
    path = _cache_file(cache_dir, endpoint_id)
    try:
        stat = path.stat()
    except OSError:
        return None
    known = _parsed_cache.get(path)
    if known is not None and known[:2] == (stat.st_mtime_ns, stat.st_size):
        return known[2]
    try:
        entry = json.loads(path.read_bytes())
        fetched_at = entry["fetched_at"]
        if entry.get("endpoint_id") != endpoint_id or not isinstance(fetched_at, (int, float)):
            return None
        cached = _Cached(parse_document(entry["document"], endpoint_id), float(fetched_at))
    except (OSError, ValueError, TypeError, KeyError, AttributeError, SchemaDocumentError):
        return None
    _parsed_cache[path] = (stat.st_mtime_ns, stat.st_size, cached)
    return cached


def _write_cache(
    cache_dir: Path, endpoint_id: str, document: Any, fetched_at: float, url: str
) -> str | None:
    """Store a fetched document; the reason it could not be stored, or None."""
    entry = {
        "endpoint_id": endpoint_id,
        "fetched_at": fetched_at,
        "url": _shown_url(url),
        "document": document,
    }
    path = _cache_file(cache_dir, endpoint_id)
    temporary: str | None = None
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", dir=cache_dir, prefix=".tmp-", suffix=".json", delete=False, encoding="utf-8"
        ) as handle:
            temporary = handle.name
            json.dump(entry, handle)
        os.replace(temporary, path)
    except OSError as exc:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        return f"{type(exc).__name__}: {exc}"
    return None


def cached_endpoints(cache_dir: str | os.PathLike[str] | None = None) -> tuple[str, ...]:
    """The ids of every endpoint whose document is in the user cache."""
    directory = Path(cache_dir) if cache_dir is not None else schema_cache_dir()
    try:
        names = sorted(p.name for p in directory.glob("*.json") if not p.name.startswith("."))
    except OSError:
        return ()
    return tuple(urllib.parse.unquote(name[: -len(".json")]) for name in names)


# ---- lookup ---------------------------------------------------------------------------------


class _Unreachable(Exception):
    """The document could not be fetched (network, timeout, an HTTP error status)."""


def _local(
    endpoint_id: str, cache_dir: Path, max_age: float | None
) -> tuple[SchemaLookup | None, _Cached | None]:
    """A lookup answered without the network, else the stale cached copy (if any)."""
    shipped = _shipped_schema(endpoint_id)
    if shipped is not None:
        return SchemaLookup(endpoint_id, shipped, "shipped"), None
    cached = _read_cache(cache_dir, endpoint_id)
    if cached is not None and (max_age is None or time.time() - cached.fetched_at <= max_age):
        return SchemaLookup(endpoint_id, cached.schema, "cache", fetched_at=cached.fetched_at), None
    return None, cached


def _fetched(endpoint_id: str, body: bytes, url: str, cache_dir: Path) -> SchemaLookup:
    """Parse a fetched document (raising if it is not valid), cache it, answer it."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SchemaDocumentError(
            f"the answer of {_shown_url(url)} is not JSON ({exc})", endpoint_id=endpoint_id
        ) from None
    schema = parse_document(document, endpoint_id)
    fetched_at = time.time()
    problem = _write_cache(cache_dir, endpoint_id, document, fetched_at, url)
    warning = None
    if problem is not None:
        warning = f"Could not cache the schema of {endpoint_id} in {cache_dir} ({problem})."
    return SchemaLookup(endpoint_id, schema, "fetched", warning, fetched_at)


def _unfetched(endpoint_id: str, stale: _Cached | None, url: str, reason: str) -> SchemaLookup:
    """The answer when the document could not be fetched."""
    where = _shown_url(url)
    if stale is not None:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(stale.fetched_at))
        return SchemaLookup(
            endpoint_id,
            stale.schema,
            "stale-cache",
            f"Could not refresh the schema of {endpoint_id} from {where} ({reason}); "
            f"using the copy fetched {when}.",
            stale.fetched_at,
        )
    return SchemaLookup(
        endpoint_id,
        None,
        "none",
        f"No schema for {endpoint_id}: could not fetch it from {where} ({reason}); "
        "the job will be sent unvalidated.",
    )


def local_schema(
    endpoint_id: str,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
) -> SchemaLookup | None:
    """The schema of ``endpoint_id`` without the network: shipped, else cached however old;
    None when neither has it."""
    endpoint_id = _normal(endpoint_id)
    directory = Path(cache_dir) if cache_dir is not None else schema_cache_dir()
    return _local(endpoint_id, directory, None)[0]


def is_known(endpoint_id: str) -> bool:
    """Whether the endpoint's document is shipped or cached (no network)."""
    return local_schema(endpoint_id) is not None


#: Documents that could not be fetched, by (endpoint id, URL): the answer given instead.
_unreachable: RecentFailures[tuple[str, str], SchemaLookup] = RecentFailures()


def get_schema(
    endpoint_id: str,
    *,
    url: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    max_age: float | None = DEFAULT_MAX_AGE,
    timeout: float = DEFAULT_TIMEOUT,
    client: httpx.Client | None = None,
) -> SchemaLookup:
    """The schema of ``endpoint_id``: shipped, else cached, else fetched once and cached.

    ``url`` is fal's OpenAPI URL (default :func:`openapi_url`), ``cache_dir`` the cache
    (default :func:`schema_cache_dir`), ``max_age`` the seconds a cached document stays fresh
    (None: forever). ``client`` may be any httpx.Client; no credentials are sent with it.
    Raises :class:`SchemaDocumentError` when the fetched document is not a valid fal document.
    """
    found = _answer_or_fetch(endpoint_id, url, cache_dir, max_age)
    return found if isinstance(found, SchemaLookup) else _fetch_and_store(found, timeout, client)


async def get_schema_async(
    endpoint_id: str,
    *,
    url: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    max_age: float | None = DEFAULT_MAX_AGE,
    timeout: float = DEFAULT_TIMEOUT,
    client: httpx.AsyncClient | None = None,
) -> SchemaLookup:
    """:func:`get_schema` on an ``httpx.AsyncClient``."""
    found = _answer_or_fetch(endpoint_id, url, cache_dir, max_age)
    if isinstance(found, SchemaLookup):
        return found
    return await _fetch_and_store_async(found, timeout, client)


def refresh_schema(
    endpoint_id: str,
    *,
    url: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    client: httpx.Client | None = None,
) -> SchemaLookup:
    """Fetch the document of ``endpoint_id`` again now and cache it.

    When the fetch fails the cached copy (if any) is answered with a warning. A shipped
    endpoint is fetched and cached too, but :func:`get_schema` keeps answering the shipped one.
    """
    return _fetch_and_store(_refetch(endpoint_id, url, cache_dir), timeout, client)


async def refresh_schema_async(
    endpoint_id: str,
    *,
    url: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    client: httpx.AsyncClient | None = None,
) -> SchemaLookup:
    """:func:`refresh_schema` on an ``httpx.AsyncClient``."""
    return await _fetch_and_store_async(_refetch(endpoint_id, url, cache_dir), timeout, client)


@dataclass(frozen=True)
class _Fetch:
    """A document to fetch: whose, from where, the cache it goes to, the copy to fall back on."""

    endpoint_id: str
    url: str
    cache_dir: Path
    stale: _Cached | None

    def fetched(self, body: bytes) -> SchemaLookup:
        return _remember(self.url, _fetched(self.endpoint_id, body, self.url, self.cache_dir))

    def failed(self, reason: str) -> SchemaLookup:
        return _remember(self.url, _unfetched(self.endpoint_id, self.stale, self.url, reason))


def _answer_or_fetch(
    endpoint_id: str,
    url: str | None,
    cache_dir: str | os.PathLike[str] | None,
    max_age: float | None,
) -> SchemaLookup | _Fetch:
    """The answer without the network (shipped, cached and fresh, or a fetch that failed a
    moment ago), else the fetch to make."""
    endpoint_id = _normal(endpoint_id)
    shipped = _shipped_schema(endpoint_id)
    if shipped is not None:  # the common case, answered before any path is worked out
        return SchemaLookup(endpoint_id, shipped, "shipped")
    directory = Path(cache_dir) if cache_dir is not None else schema_cache_dir()
    found, stale = _local(endpoint_id, directory, max_age)
    if found is not None:
        return found
    url = url or openapi_url()
    known = _unreachable.recall((endpoint_id, url))
    if known is not None:
        return known
    return _Fetch(endpoint_id, url, directory, stale)


def forget_unreachable() -> None:
    """Fetch again at the next lookup the documents that could not be fetched a moment ago."""
    _unreachable.clear()


def _refetch(endpoint_id: str, url: str | None, cache_dir: str | os.PathLike[str] | None) -> _Fetch:
    """The fetch that refreshes ``endpoint_id``'s document, whatever is cached."""
    endpoint_id = _normal(endpoint_id)
    directory = Path(cache_dir) if cache_dir is not None else schema_cache_dir()
    return _Fetch(endpoint_id, url or openapi_url(), directory, _read_cache(directory, endpoint_id))


def _remember(url: str, lookup: SchemaLookup) -> SchemaLookup:
    """Keep a failed fetch's answer for a while, so every job is not held up by it."""
    if lookup.source in ("none", "stale-cache"):
        _unreachable.remember((lookup.endpoint_id, url), lookup)
    else:
        _unreachable.forget((lookup.endpoint_id, url))
    return lookup


# ---- fetching -------------------------------------------------------------------------------

_HEADERS = {"Accept": "application/json"}
#: Headers that could carry the user's credentials: never sent for a public document.
_PRIVATE_HEADERS = ("authorization", "cookie", "x-fal-key")


def _fetch_and_store(fetch: _Fetch, timeout: float, client: httpx.Client | None) -> SchemaLookup:
    import httpx

    try:
        if client is None:
            with httpx.Client(timeout=timeout, follow_redirects=True) as own:
                body = _download(own, fetch, timeout)
        else:
            body = _download(client, fetch, timeout)
    except _Unreachable as exc:
        return fetch.failed(str(exc))
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return fetch.failed(_reason(exc))
    return fetch.fetched(body)


async def _fetch_and_store_async(
    fetch: _Fetch, timeout: float, client: httpx.AsyncClient | None
) -> SchemaLookup:
    import httpx

    try:
        if client is None:
            async with httpx.AsyncClient(timeout=timeout, follow_redirects=True) as own:
                body = await _download_async(own, fetch, timeout)
        else:
            body = await _download_async(client, fetch, timeout)
    except _Unreachable as exc:
        return fetch.failed(str(exc))
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return fetch.failed(_reason(exc))
    return fetch.fetched(body)


def _request(client: Any, fetch: _Fetch, timeout: float) -> httpx.Request:
    request = client.build_request(
        "GET",
        fetch.url,
        params={"endpoint_id": fetch.endpoint_id},
        headers=_HEADERS,
        timeout=timeout,
    )
    for name in _PRIVATE_HEADERS:
        request.headers.pop(name, None)
    return request


def _download(client: httpx.Client, fetch: _Fetch, timeout: float) -> bytes:
    # auth=None: a client built for the queue must not lend its key to this request.
    response = client.send(_request(client, fetch, timeout), auth=None, stream=True)
    try:
        _check_status(response)
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            _check_size(body, fetch.endpoint_id)
        return bytes(body)
    finally:
        response.close()


async def _download_async(client: httpx.AsyncClient, fetch: _Fetch, timeout: float) -> bytes:
    response = await client.send(_request(client, fetch, timeout), auth=None, stream=True)
    try:
        _check_status(response)
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            _check_size(body, fetch.endpoint_id)
        return bytes(body)
    finally:
        await response.aclose()


def _check_status(response: httpx.Response) -> None:
    if response.status_code != 200:
        raise _Unreachable(f"HTTP {response.status_code}")


def _check_size(body: bytearray, endpoint_id: str) -> None:
    if len(body) > MAX_DOCUMENT_BYTES:
        raise SchemaDocumentError(
            f"the answer is larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB",
            endpoint_id=endpoint_id,
        )


def _reason(exc: Exception) -> str:
    text = shorten(str(exc), 120)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def _shown_url(url: str) -> str:
    """``url`` without user info or query, for messages and the cache file."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def _normal(endpoint_id: str) -> str:
    return endpoint_id.strip().strip("/")
