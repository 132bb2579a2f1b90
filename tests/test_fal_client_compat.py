"""The official ``fal_client`` package works against the local server unchanged."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import fal_client
import fal_client.client as fal_module
import httpx
import pytest

from ltx_jupyter.server import LocalServer

from .media import decode

T2V = "fal-ai/ltx-video"
LTX2 = "fal-ai/ltx-2/text-to-video"
KEY = "compat-test-key"


@pytest.fixture
def server(
    server_factory: Callable[..., LocalServer], monkeypatch: pytest.MonkeyPatch
) -> Iterator[LocalServer]:
    """A keyed local server with fal_client's module URLs pointing at it (LTX-2's clips drawn
    small: 1080p at 1/12 of its size, 30 frames at most)."""
    local = server_factory(key=KEY, scale=1 / 12, max_frames=30)
    monkeypatch.setattr(fal_module, "QUEUE_URL_FORMAT", local.url + "/")
    monkeypatch.setattr(fal_module, "REST_URL", local.url)
    monkeypatch.setenv("FAL_KEY", KEY)
    yield local


def test_submit_status_result(server: LocalServer) -> None:
    client = fal_client.SyncClient()  # the key comes from FAL_KEY
    handle = client.submit(T2V, {"prompt": "a paper boat on a pond", "seed": 9})
    assert handle.status_url.startswith(server.url)
    first = handle.status(with_logs=True)
    assert isinstance(first, (fal_client.Queued, fal_client.InProgress, fal_client.Completed))

    output = handle.get()
    assert output["seed"] == 9
    assert output["video"]["content_type"] == "video/mp4"

    done = client.status(T2V, handle.request_id, with_logs=True)
    assert isinstance(done, fal_client.Completed)
    assert done.error is None
    assert done.metrics["inference_time"] > 0
    assert done.logs is not None and done.logs[0]["message"].startswith("synthetic engine")
    assert client.result(T2V, handle.request_id) == output
    video = httpx.get(output["video"]["url"])
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"


def test_subscribe_with_logs_and_queue_updates(server: LocalServer) -> None:
    client = fal_client.SyncClient(key=KEY)
    updates: list[fal_client.Status] = []
    enqueued: list[str] = []
    output = client.subscribe(
        "fal-ai/ltx-video/image-to-video",
        {"prompt": "a kite", "image_url": "https://example.com/kite.png", "seed": 4},
        with_logs=True,
        on_enqueue=enqueued.append,
        on_queue_update=updates.append,
        priority="low",
        hint="local",
        start_timeout=30,
    )
    assert output["seed"] == 4
    assert len(enqueued) == 1
    assert isinstance(updates[-1], fal_client.Completed)
    progress = [u for u in updates if isinstance(u, fal_client.InProgress)]
    assert progress and all(isinstance(u.logs, list) for u in progress)
    assert any(entry["message"].startswith("step ") for entry in updates[-1].logs or []), (
        "polled logs are the whole log so far"
    )


def test_cancel_and_errors(server: LocalServer) -> None:
    client = fal_client.SyncClient(key=KEY)
    handle = client.submit(T2V, {"prompt": "never finished", "num_inference_steps": 50})
    client.cancel(T2V, handle.request_id)
    final = list(handle.iter_events(with_logs=True, interval=0.02))[-1]
    assert isinstance(final, fal_client.Completed)
    assert final.error == "Request was cancelled"
    assert final.error_type == "request_cancelled"
    with pytest.raises(fal_client.FalClientHTTPError) as cancelled:
        client.result(T2V, handle.request_id)
    assert cancelled.value.status_code == 400
    assert cancelled.value.error_type == "request_cancelled"
    with pytest.raises(fal_client.FalClientHTTPError) as again:
        handle.cancel()
    assert again.value.status_code == 400

    with pytest.raises(fal_client.FalClientHTTPError) as invalid:
        client.submit(T2V, {"prompt": "x", "guidance_scale": 11})
    assert invalid.value.status_code == 422
    assert invalid.value.message[0]["loc"] == ["body", "guidance_scale"]

    with pytest.raises(fal_client.FalClientHTTPError) as refused:
        fal_client.SyncClient(key="wrong").submit(T2V, {"prompt": "x"})
    assert refused.value.status_code == 401


def test_upload_through_the_storage_protocol(server: LocalServer) -> None:
    client = fal_client.SyncClient(key=KEY)
    url = client.upload(b"hello bytes", "text/plain", file_name="hello.txt", repository="fal")
    assert url.startswith(server.url + "/files/")
    response = httpx.get(url)
    assert response.content == b"hello bytes"
    assert response.headers["content-type"].startswith("text/plain")


def test_async_client(server: LocalServer) -> None:
    async def scenario() -> tuple[Any, Any, list[Any]]:
        client = fal_client.AsyncClient(key=KEY)
        handle = await client.submit(T2V, {"prompt": "async", "seed": 3})
        events = [event async for event in handle.iter_events(with_logs=True, interval=0.05)]
        output = await handle.get()
        updates: list[Any] = []
        subscribed = await client.subscribe(
            T2V, {"prompt": "async 2", "seed": 5}, with_logs=True, on_queue_update=updates.append
        )
        return output, subscribed, events + updates

    output, subscribed, events = asyncio.run(scenario())
    assert output["seed"] == 3
    assert subscribed["seed"] == 5
    assert isinstance(events[-1], fal_client.Completed)


def test_an_ltx2_endpoint_with_its_own_shape(server: LocalServer) -> None:
    client = fal_client.SyncClient(key=KEY)
    updates: list[fal_client.Status] = []
    output = client.subscribe(
        LTX2,
        {"prompt": "surf on a pebble beach", "duration": 8, "resolution": "1440p"},
        with_logs=True,
        on_queue_update=updates.append,
    )
    # LTX-2's output is a VideoFile and nothing else: no seed, no prompt.
    assert set(output) == {"video"}
    video = output["video"]
    assert video["content_type"] == "video/mp4"
    # 1440p 16:9 (2560x1440) drawn at 1/12 of its size, 8 s in the 30 frames allowed.
    assert (video["width"], video["height"], video["duration"]) == (214, 120, 8)
    assert video["num_frames"] == 30 and video["fps"] == pytest.approx(30 / 8)
    clip = decode(httpx.get(video["url"]).content)
    assert (clip.width, clip.height, len(clip.frames)) == (214, 120, 30)
    assert clip.audio_codec == "aac"  # generate_audio defaults to true
    assert isinstance(updates[-1], fal_client.Completed)
    assert any(entry["message"] == "step 30/30" for entry in updates[-1].logs or [])

    silent = client.subscribe(LTX2, {"prompt": "surf", "generate_audio": False})
    assert decode(httpx.get(silent["video"]["url"]).content).audio_codec is None

    with pytest.raises(fal_client.FalClientHTTPError) as invalid:
        client.submit(LTX2, {"prompt": "x", "duration": 7})
    assert invalid.value.status_code == 422
    assert invalid.value.message[0]["loc"] == ["body", "duration"]
