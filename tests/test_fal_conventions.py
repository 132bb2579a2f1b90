"""fal's conventions give one verdict on both sides: the client and the local server.

Each row of a table goes to the client (``QueueClient.submit`` against a real local server)
and, as a raw HTTP request, to the same server over loopback. Both must accept it (and agree
on where it went) or both refuse it, in the same words; a client that refuses sends nothing.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple
from urllib.parse import quote, urlencode

import httpx
import pytest

from ltx_jupyter import InputError, QueueClient
from ltx_jupyter._fal import (
    PRIORITY_HEADER,
    TIMEOUT_HEADER,
    WEBHOOK_PARAM,
    default_openapi_url,
    default_platform_url,
    default_queue_url,
    default_storage_url,
)
from ltx_jupyter.server import LocalServer, ServerConfig
from ltx_jupyter.server.queue import RequestRecord

from .conftest import FAST_SERVER

T2V = "fal-ai/ltx-video"
KEY = "conventions-key"
INPUT = {"prompt": "a lighthouse at dusk", "num_inference_steps": 1}

#: (endpoint id as typed, (submit path, app path) when it is valid, else None).
ENDPOINT_IDS: list[tuple[str, tuple[str, str] | None]] = [
    ("fal-ai/ltx-video", ("fal-ai/ltx-video", "fal-ai/ltx-video")),
    ("/fal-ai/ltx-video/", ("fal-ai/ltx-video", "fal-ai/ltx-video")),
    (" fal-ai/ltx-video ", ("fal-ai/ltx-video", "fal-ai/ltx-video")),
    ("someone/new-model/fast/v2", ("someone/new-model/fast/v2", "someone/new-model")),
    ("fal-ai/flux-pro/v1.1-ultra", ("fal-ai/flux-pro/v1.1-ultra", "fal-ai/flux-pro")),
    ("Some_Owner/My.Model", ("Some_Owner/My.Model", "Some_Owner/My.Model")),
    ("workflows/me/my-flow", ("workflows/me/my-flow", "workflows/me/my-flow")),
    ("comfy/me/flow/run", ("comfy/me/flow/run", "comfy/me/flow")),
    ("1234-my-app", ("1234/my-app", "1234/my-app")),
    ("1234-my-app/sub", ("1234-my-app/sub", "1234-my-app/sub")),
    ("1234-my_app", None),
    ("fal-ai//ltx-video", None),
    ("fal-ai/ltx-video/./x", None),
    ("fal-ai/ltx-video/../x", None),
    ("storage/foo", None),
    ("files/abc/video.mp4", None),
    ("health/check", None),
    ("_local/stats", None),
    ("api/openapi", None),
    ("v1/models", None),
    ("", None),
    ("/", None),
    ("ltx-video", None),
    ("workflows/me", None),
    ("fal-ai/ltx video", None),
    ("fal-ai/ltx-vidéo", None),
    ("fal-ai/ltx-video?seed=1", None),
    ("fal-ai/ltx-video#x", None),
    ("fal-ai%2Fltx-video", None),
]

#: (webhook URL, whether it is valid).
WEBHOOKS: list[tuple[str, bool]] = [
    ("http://127.0.0.1:9/hook", True),
    ("https://127.0.0.1:9/hook?x=1&y=2", True),
    ("HTTPS://127.0.0.1:9/hook", True),
    ("Http://localhost:9/hook", True),
    ("http://[::1]:9/hook", True),
    ("http://127.0.0.1:9/ünïcode", True),
    ("", False),
    ("ftp://127.0.0.1/hook", False),
    ("127.0.0.1:9/hook", False),
    ("https://", False),
    ("http:///hook", False),
    ("https://127.0.0.1:99999/hook", False),
    ("http://[::1/hook", False),
    (" https://127.0.0.1:9/hook", False),
    ("https://127.0.0.1:9/a b", False),
    ("javascript:alert(1)", False),
]

#: (priority, whether it is valid).
PRIORITIES: list[tuple[str, bool]] = [
    ("normal", True),
    ("low", True),
    ("high", False),
    ("LOW", False),
    ("", False),
]

#: (start timeout given to the client, the header a caller sends for it, whether valid).
TIMEOUTS: list[tuple[Any, str, bool]] = [
    (60, "60", True),
    (60.0, "60.0", True),
    (1.5, "1.5", True),
    (1e20, "1e+20", True),
    (1, "1", False),
    (0.5, "0.5", False),
    (-3, "-3", False),
    (math.nan, "nan", False),
    (math.inf, "inf", False),
    ("soon", "soon", False),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """One worker, held by a long job: every request the tests queue waits and never runs."""
    config = ServerConfig(
        port=0,
        data_dir=tmp_path_factory.mktemp("conventions"),
        concurrency=1,
        **{**FAST_SERVER, "step_seconds": 1.0},
    )
    with LocalServer(config) as local:
        hold = {"prompt": "hold the worker", "num_inference_steps": 50}
        blocker = httpx.post(f"{local.url}/{T2V}", json=hold).json()
        yield local
        httpx.put(blocker["cancel_url"])


def handled(server: LocalServer) -> int:
    """HTTP requests the server has answered (this one not included)."""
    return int(httpx.get(f"{server.url}/_local/stats").json()["total"])


def record(server: LocalServer, request_id: str) -> RequestRecord:
    assert server.app is not None
    found = server.app.state.server.queue.get(request_id)
    assert found is not None
    return found  # type: ignore[no-any-return]


class Submitted(NamedTuple):
    """What the client did with one submit."""

    outcome: Any  # the handle, or the InputError it raised
    sent: int  # HTTP requests the client counted
    server_saw_it: bool  # whether the server answered any request meanwhile


def client_submit(server: LocalServer, endpoint: str, **options: Any) -> Submitted:
    """Submit through the client (and cancel what it queued)."""

    async def main() -> tuple[Any, int]:
        async with QueueClient(queue_url=server.url) as client:
            try:
                handle = await client.submit(endpoint, INPUT, **options)
            except InputError as error:
                return error, client.stats["requests"]
            await client.cancel(handle.endpoint_id, handle.request_id)
            return handle, client.stats["requests"]

    before = handled(server)
    outcome, sent = asyncio.run(main())
    # The first stats read is counted by the second.
    return Submitted(outcome, sent, handled(server) != before + 1)


def raw_submit(
    server: LocalServer, endpoint: str, headers: dict[str, str] | None = None, **params: str
) -> httpx.Response:
    """POST the endpoint id as written: the target is sent as it is (httpx would otherwise
    remove ``.`` segments from the path), only percent-encoded."""
    target = "/" + quote(endpoint, safe="/")
    if params:
        target += "?" + urlencode(params, quote_via=quote)
    with httpx.Client() as http:
        response = http.post(
            server.url, json=INPUT, headers=headers, extensions={"target": target.encode()}
        )
    if response.status_code == 200:
        httpx.put(response.json()["cancel_url"])
    return response


def refused_by_client(submitted: Submitted, field: str) -> str:
    """The client's refusal message, after checking it names ``field`` and sent nothing."""
    error = submitted.outcome
    assert isinstance(error, InputError), error
    assert error.fields == [field]
    assert "\n" not in str(error)
    assert submitted.sent == 0 and not submitted.server_saw_it
    return error.errors[0].msg


@pytest.mark.parametrize(("endpoint", "expected"), ENDPOINT_IDS, ids=repr)
def test_an_endpoint_id_gets_one_verdict(
    server: LocalServer, endpoint: str, expected: tuple[str, str] | None
) -> None:
    submitted = client_submit(server, endpoint)
    response = raw_submit(server, endpoint)
    if expected is None:
        message = refused_by_client(submitted, "endpoint")
        assert "owner/alias" in message and "e.g. 'fal-ai/ltx-video'" in message
        assert response.status_code == 404
        assert response.json()["detail"] == message
        return
    submit_path, app_path = expected
    assert submitted.outcome.endpoint_id == submit_path
    assert submitted.outcome.status_url.startswith(f"{server.url}/{app_path}/requests/")
    assert response.status_code == 200, response.text
    assert response.json()["status_url"].startswith(f"{server.url}/{app_path}/requests/")
    for request_id in (submitted.outcome.request_id, response.json()["request_id"]):
        stored = record(server, request_id)
        assert (stored.endpoint_id, stored.app_path) == (submit_path, app_path)


@pytest.mark.parametrize(("url", "valid"), WEBHOOKS, ids=repr)
def test_a_webhook_url_gets_one_verdict(server: LocalServer, url: str, valid: bool) -> None:
    submitted = client_submit(server, T2V, webhook_url=url)
    response = raw_submit(server, T2V, **{WEBHOOK_PARAM: url})
    if not valid:
        message = refused_by_client(submitted, "webhook")
        assert "e.g. 'https://example.com/hook'" in message
        assert response.status_code == 400
        assert response.json() == {
            "detail": f"{WEBHOOK_PARAM}: {message}",
            "error_type": "bad_request",
        }
        return
    assert response.status_code == 200, response.text
    for request_id in (submitted.outcome.request_id, response.json()["request_id"]):
        assert record(server, request_id).webhook_url == url


@pytest.mark.parametrize(("priority", "valid"), PRIORITIES, ids=repr)
def test_a_priority_gets_one_verdict(server: LocalServer, priority: str, valid: bool) -> None:
    submitted = client_submit(server, T2V, priority=priority)
    response = raw_submit(server, T2V, headers={PRIORITY_HEADER: priority})
    if not valid:
        message = refused_by_client(submitted, "priority")
        assert response.status_code == 400
        assert response.json()["detail"] == f"{PRIORITY_HEADER}: {message}"
        return
    assert response.status_code == 200, response.text
    for request_id in (submitted.outcome.request_id, response.json()["request_id"]):
        assert record(server, request_id).priority == priority


@pytest.mark.parametrize(("seconds", "header", "valid"), TIMEOUTS, ids=repr)
def test_a_start_timeout_gets_one_verdict(
    server: LocalServer, seconds: Any, header: str, valid: bool
) -> None:
    submitted = client_submit(server, T2V, start_timeout=seconds)
    response = raw_submit(server, T2V, headers={TIMEOUT_HEADER: header})
    if not valid:
        message = refused_by_client(submitted, "start_timeout")
        assert response.status_code == 400
        rule, _, shown = message.partition(", got ")
        assert rule == "must be a number of seconds above 1" and shown == repr(seconds)
        assert response.json()["detail"] == f"{TIMEOUT_HEADER}: {rule}, got {header!r}"
        return
    assert response.status_code == 200, response.text
    for request_id in (submitted.outcome.request_id, response.json()["request_id"]):
        assert record(server, request_id).start_timeout == float(seconds)


def test_every_bad_option_is_named_at_once(server: LocalServer) -> None:
    submitted = client_submit(
        server, T2V, priority="urgent", start_timeout=0, webhook_url="ftp://x"
    )
    error = submitted.outcome
    assert isinstance(error, InputError) and submitted.sent == 0
    assert not submitted.server_saw_it
    assert sorted(error.fields) == ["priority", "start_timeout", "webhook"]
    response = raw_submit(
        server, T2V, headers={PRIORITY_HEADER: "urgent", TIMEOUT_HEADER: "0"}, fal_webhook="ftp://x"
    )
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert all(name in detail for name in (PRIORITY_HEADER, TIMEOUT_HEADER, WEBHOOK_PARAM))


def test_the_key_scheme_is_read_as_the_client_writes_it(
    server_factory: Callable[..., LocalServer],
) -> None:
    keyed = server_factory(key=KEY)

    async def with_client() -> str:
        async with QueueClient(KEY, queue_url=keyed.url) as client:
            handle = await client.submit(T2V, INPUT)
            return await client.cancel(handle.endpoint_id, handle.request_id)

    assert asyncio.run(with_client()) == "CANCELLATION_REQUESTED"
    for header, accepted in [
        (f"Key {KEY}", True),
        (f"key  {KEY}", True),
        (f"KEY {KEY}", True),
        (f"Bearer {KEY}", False),
        (f"Key{KEY}", False),
        ("Key", False),
        (KEY, False),
    ]:
        answer = httpx.get(f"{keyed.url}/_local/stats", headers={"Authorization": header})
        assert answer.status_code == (200 if accepted else 401), header


def test_base_urls_follow_the_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "LTX_QUEUE_URL",
        "LTX_STORAGE_URL",
        "LTX_OPENAPI_URL",
        "LTX_PLATFORM_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    assert default_queue_url() == "https://queue.fal.run"
    assert default_storage_url() == "https://rest.fal.ai"
    assert default_openapi_url() == "https://fal.ai/api/openapi/queue/openapi.json"
    assert default_platform_url() == "https://api.fal.ai/v1"

    monkeypatch.setenv("LTX_QUEUE_URL", "http://127.0.0.1:8000/")
    assert default_queue_url() == "http://127.0.0.1:8000"
    assert default_storage_url() == "http://127.0.0.1:8000"
    assert default_openapi_url() == "http://127.0.0.1:8000/api/openapi/queue/openapi.json"
    assert default_platform_url() == "http://127.0.0.1:8000/v1"

    monkeypatch.setenv("LTX_OPENAPI_URL", "http://docs.local/openapi.json")
    monkeypatch.setenv("LTX_PLATFORM_URL", "http://platform.local/v1/")
    assert default_openapi_url() == "http://docs.local/openapi.json"
    assert default_platform_url() == "http://platform.local/v1"
