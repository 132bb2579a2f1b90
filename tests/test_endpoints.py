"""The endpoint registry: shipped documents, the user cache and fetching over real HTTP.

A tiny ``http.server`` on loopback plays fal's OpenAPI URL and counts what it is asked.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from ltx_jupyter import _endpoints
from ltx_jupyter._endpoints import (
    cached_endpoints,
    family_of,
    forget_unreachable,
    get_schema,
    get_schema_async,
    is_shipped,
    known_endpoints,
    openapi_url,
    refresh_schema,
    shipped_document,
)
from ltx_jupyter._errors import SchemaDocumentError

REPO = Path(__file__).resolve().parent.parent
OTHER = "fal-ai/some-video-model/text-to-video"


def document_for(endpoint_id: str) -> dict[str, Any]:
    """A valid fal document for ``endpoint_id``: a shipped one, renamed."""
    text = json.dumps(shipped_document("fal-ai/ltx-2/text-to-video"))
    return json.loads(text.replace("fal-ai/ltx-2/text-to-video", endpoint_id))


class OpenAPIServer:
    """fal's OpenAPI URL on loopback: answers ``?endpoint_id=`` from ``documents``.

    ``status``/``body`` override the answer; ``delay`` holds it back. Every request's
    endpoint id and headers are recorded.
    """

    def __init__(self) -> None:
        self.documents: dict[str, Any] = {}
        self.status = 200
        self.body: bytes | None = None
        self.delay = 0.0
        self.requests: list[tuple[str, dict[str, str]]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                endpoint_id = query.get("endpoint_id", [""])[0]
                owner.requests.append(
                    (endpoint_id, {k.lower(): v for k, v in self.headers.items()})
                )
                if owner.delay:
                    time.sleep(owner.delay)
                body = owner.body
                status = owner.status
                if body is None:
                    document = owner.documents.get(endpoint_id)
                    if document is None:
                        status, body = 404, b'{"detail": "Not found"}'
                    else:
                        body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/api/openapi/queue/openapi.json"

    def asked(self, endpoint_id: str) -> int:
        return sum(1 for asked, _ in self.requests if asked == endpoint_id)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server() -> Iterator[OpenAPIServer]:
    running = OpenAPIServer()
    running.documents[OTHER] = document_for(OTHER)
    yield running
    running.stop()


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "openapi-cache"


def closed_port_url() -> str:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/openapi/queue/openapi.json"


def forget_parsed_cache() -> None:
    """What a new process would know: nothing parsed yet."""
    _endpoints._parsed_cache.clear()


def age_cache_file(cache: Path, endpoint_id: str, seconds: float) -> None:
    path = _endpoints._cache_file(cache, endpoint_id)
    entry = json.loads(path.read_text())
    entry["fetched_at"] -= seconds
    path.write_text(json.dumps(entry))


# ---- the registry ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint_id", "family"),
    [
        ("fal-ai/ltx-video", "LTX-Video 0.9.1"),
        ("fal-ai/ltx-video/image-to-video", "LTX-Video 0.9.1"),
        ("fal-ai/ltx-video-13b-distilled/extend", "LTX-Video 13B 0.9.7"),
        ("fal-ai/ltx-video-13b-dev", "LTX-Video 13B 0.9.7"),
        ("fal-ai/ltxv-13b-098-distilled/multiconditioning", "LTX-Video 13B 0.9.8"),
        ("fal-ai/ltx-2/text-to-video/fast", "LTX-2"),
        ("fal-ai/ltx-2.3/image-to-video", "LTX-2.3"),
        ("fal-ai/ltx-2-19b/distilled/image-to-video", "LTX-2 19B"),
        ("fal-ai/ltx-2.3-22b/text-to-video", "LTX-2.3 22B"),
        ("fal-ai/ltx-video-v095", None),
        ("fal-ai/kling-video/v2/master/text-to-video", None),
    ],
)
def test_family_comes_from_the_id(endpoint_id, family):
    assert family_of(endpoint_id) == family


def test_known_endpoints_list_every_shipped_document_by_family():
    endpoints = known_endpoints()
    assert len(endpoints) == len(list((REPO / "ltx_jupyter/data/openapi").glob("*.json")))
    assert endpoints[0].endpoint_id == "fal-ai/ltx-video"
    assert endpoints[-1].family == "LTX-2.3 22B"
    by_id = {e.endpoint_id: e for e in endpoints}
    extend = by_id["fal-ai/ltxv-13b-098-distilled/extend"]
    assert (extend.family, extend.category) == ("LTX-Video 13B 0.9.8", "video-to-video")
    assert extend.title == "LTX-Video 13B 0.9.8 distilled extend"
    assert by_id["fal-ai/ltx-2/image-to-video/fast"].category == "image-to-video"
    assert by_id["fal-ai/ltx-video"].title == "LTX-Video 0.9.1 text to video"
    assert all(e.family and e.category and e.title for e in endpoints)


def test_a_shipped_schema_is_read_once_and_needs_no_network(cache):
    first = get_schema("fal-ai/ltx-2-19b/text-to-video", url=closed_port_url(), cache_dir=cache)
    again = get_schema("/fal-ai/ltx-2-19b/text-to-video/ ", url=closed_port_url(), cache_dir=cache)
    assert first.source == "shipped" and first.warning is None
    assert again.schema is first.schema
    assert not cache.exists()
    assert is_shipped("fal-ai/ltx-video") and not is_shipped(OTHER)
    assert not is_shipped("fal-ai/../ltx-video")


def test_importing_the_package_loads_no_schema_module_or_document():
    probe = (
        "import sys\n"
        "opened = []\n"
        "sys.addaudithook(lambda event, args: opened.append(str(args[0]))"
        " if event == 'open' and args and isinstance(args[0], str) else None)\n"
        "import ltx_jupyter\n"
        "print([m for m in sys.modules if m.startswith('ltx_jupyter._')])\n"
        "print([p for p in opened if 'openapi' in p])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", probe],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    modules, documents = result.stdout.splitlines()
    assert "_openapi" not in modules and "_endpoints" not in modules
    assert documents == "[]"
    assert "_openapi" not in result.stderr and "_endpoints" not in result.stderr


# ---- fetching and caching over HTTP ---------------------------------------------------------


def test_another_endpoint_is_fetched_once_then_served_from_the_cache(server, cache):
    first = get_schema(OTHER, url=server.url, cache_dir=cache)
    assert first.source == "fetched" and first.warning is None
    assert first.schema.endpoint_id == OTHER and "duration" in first.schema.field_names
    second = get_schema(OTHER, url=server.url, cache_dir=cache)
    forget_parsed_cache()  # as a new process would
    third = get_schema(OTHER, url=server.url, cache_dir=cache)
    assert (second.source, third.source) == ("cache", "cache")
    assert server.asked(OTHER) == 1
    entry = json.loads(_endpoints._cache_file(cache, OTHER).read_text())
    assert entry["endpoint_id"] == OTHER and abs(entry["fetched_at"] - time.time()) < 60
    assert entry["document"]["info"]["x-fal-metadata"]["endpointId"] == OTHER
    assert third.fetched_at == entry["fetched_at"]
    assert cached_endpoints(cache) == (OTHER,)


def test_a_stale_cached_document_is_fetched_again(server, cache):
    get_schema(OTHER, url=server.url, cache_dir=cache)
    age_cache_file(cache, OTHER, 3600)
    fresh_enough = get_schema(OTHER, url=server.url, cache_dir=cache, max_age=7200)
    assert fresh_enough.source == "cache" and server.asked(OTHER) == 1
    stale = get_schema(OTHER, url=server.url, cache_dir=cache, max_age=1800)
    assert stale.source == "fetched" and server.asked(OTHER) == 2
    assert time.time() - stale.fetched_at < 60
    assert get_schema(OTHER, url=server.url, cache_dir=cache, max_age=1800).source == "cache"
    assert server.asked(OTHER) == 2


def test_when_unreachable_the_cache_is_served_however_old(server, cache):
    get_schema(OTHER, url=server.url, cache_dir=cache)
    age_cache_file(cache, OTHER, 30 * 24 * 3600)
    server.stop()
    lookup = get_schema(OTHER, url=server.url, cache_dir=cache)
    assert lookup.source == "stale-cache" and lookup.schema.endpoint_id == OTHER
    assert lookup.warning.startswith(f"Could not refresh the schema of {OTHER} from http://127")
    assert "\n" not in lookup.warning


@pytest.mark.parametrize("reason", ["closed port", "HTTP 404", "HTTP 503", "timeout"])
def test_nothing_cached_and_unreachable_gives_no_schema_and_a_one_line_warning(
    server, cache, reason
):
    url = server.url
    endpoint_id = OTHER
    if reason == "closed port":
        url = closed_port_url()
    elif reason == "HTTP 404":
        endpoint_id = "fal-ai/not-a-model"
    elif reason == "HTTP 503":
        server.status, server.body = 503, b"{}"
    else:
        server.delay = 1.0
    lookup = get_schema(endpoint_id, url=url, cache_dir=cache, timeout=0.3)
    assert lookup.schema is None and lookup.source == "none"
    assert lookup.warning.startswith(f"No schema for {endpoint_id}: could not fetch it from ")
    assert lookup.warning.endswith("the job will be sent unvalidated.")
    assert "\n" not in lookup.warning and "?" not in lookup.warning  # no query string shown
    if reason.startswith("HTTP"):
        assert f"({reason})" in lookup.warning
    assert cached_endpoints(cache) == ()


def test_a_failed_fetch_stands_in_for_a_while_and_a_refresh_asks_again_at_once(server, cache):
    server.status, server.body = 503, b"{}"
    assert get_schema(OTHER, url=server.url, cache_dir=cache).source == "none"
    server.status, server.body = 200, None  # the URL answers again
    # A job a moment later is not held up by the same fetch: the failure's answer stands in.
    assert get_schema(OTHER, url=server.url, cache_dir=cache).source == "none"
    assert server.asked(OTHER) == 1
    forget_unreachable()  # what %ltx endpoints --refresh does
    lookup = get_schema(OTHER, url=server.url, cache_dir=cache)
    assert lookup.source == "fetched" and lookup.schema is not None
    assert server.asked(OTHER) == 2


def test_a_corrupt_cache_file_is_ignored_and_fetched_again(server, cache):
    cache.mkdir(parents=True)
    path = _endpoints._cache_file(cache, OTHER)
    for garbage in (b"\x00not json", b'{"endpoint_id": 3}', b'{"document": {}, "x": 1}'):
        path.write_bytes(garbage)
        forget_parsed_cache()
        lookup = get_schema(OTHER, url=server.url, cache_dir=cache)
        assert lookup.source == "fetched" and lookup.schema is not None
    assert server.asked(OTHER) == 3
    assert json.loads(path.read_text())["endpoint_id"] == OTHER


def test_an_invalid_document_is_an_error_and_nothing_is_cached(server, cache):
    broken = document_for(OTHER)
    schemas = broken["components"]["schemas"]
    schemas["Ltx2TextToVideoInput"]["properties"]["fps"]["type"] = "int64"
    server.documents[OTHER] = broken
    with pytest.raises(SchemaDocumentError, match="property 'fps' has unknown type 'int64'"):
        get_schema(OTHER, url=server.url, cache_dir=cache)
    server.body = b"<html>maintenance</html>"
    with pytest.raises(SchemaDocumentError, match="is not JSON"):
        get_schema(OTHER, url=server.url, cache_dir=cache)
    server.body = json.dumps(document_for("fal-ai/something-else")).encode()
    with pytest.raises(SchemaDocumentError, match="describes 'fal-ai/something-else'"):
        get_schema(OTHER, url=server.url, cache_dir=cache)
    assert cached_endpoints(cache) == ()


def test_no_credentials_are_ever_sent(server, cache, monkeypatch):
    monkeypatch.setenv("FAL_KEY", "secret-id:secret-key")
    get_schema(OTHER, url=server.url, cache_dir=cache)
    queue_client = httpx.Client(
        headers={"Authorization": "Key secret-id:secret-key"}, auth=("user", "secret-pass")
    )
    with queue_client:
        refresh_schema(OTHER, url=server.url, cache_dir=cache, client=queue_client)
    assert len(server.requests) == 2
    for endpoint_id, headers in server.requests:
        assert endpoint_id == OTHER
        assert "authorization" not in headers and "secret" not in json.dumps(headers)


def test_the_url_defaults_to_ltx_openapi_url(server, cache, monkeypatch):
    monkeypatch.delenv("LTX_OPENAPI_URL", raising=False)
    assert openapi_url() == "https://fal.ai/api/openapi/queue/openapi.json"
    monkeypatch.setenv("LTX_OPENAPI_URL", server.url)
    assert openapi_url() == server.url
    assert get_schema(OTHER, cache_dir=cache).source == "fetched"
    assert server.asked(OTHER) == 1


def test_refresh_fetches_even_a_fresh_document(server, cache):
    get_schema(OTHER, url=server.url, cache_dir=cache)
    changed = document_for(OTHER)
    changed["components"]["schemas"]["Ltx2TextToVideoInput"]["properties"]["fps"]["enum"] = [30]
    server.documents[OTHER] = changed
    refreshed = refresh_schema(OTHER, url=server.url, cache_dir=cache)
    assert refreshed.source == "fetched" and refreshed.schema.field("fps").enum == (30,)
    assert get_schema(OTHER, url=server.url, cache_dir=cache).schema.field("fps").enum == (30,)
    assert server.asked(OTHER) == 2
    server.stop()
    kept = refresh_schema(OTHER, url=server.url, cache_dir=cache)
    assert kept.source == "stale-cache" and kept.schema.field("fps").enum == (30,)


def test_the_async_path_shares_the_cache_with_the_sync_path(server, cache):
    async def both() -> tuple[Any, Any]:
        first = await get_schema_async(OTHER, url=server.url, cache_dir=cache)
        async with httpx.AsyncClient(headers={"Authorization": "Key secret"}) as client:
            second = await get_schema_async(OTHER, url=server.url, cache_dir=cache, client=client)
        return first, second

    first, second = asyncio.run(both())
    assert (first.source, second.source) == ("fetched", "cache")
    assert get_schema(OTHER, url=server.url, cache_dir=cache).source == "cache"
    assert server.asked(OTHER) == 1
    server.stop()
    missing = asyncio.run(
        get_schema_async("fal-ai/never-seen", url=server.url, cache_dir=cache, timeout=0.5)
    )
    assert missing.schema is None and missing.warning.endswith("sent unvalidated.")
