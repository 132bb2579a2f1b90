"""The queue client against the local server, over real loopback HTTP."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import httpx
import pytest

from ltx_jupyter import (
    AuthenticationError,
    Completed,
    HTTPError,
    InProgress,
    InputError,
    MissingCredentialsError,
    QueueClient,
    Queued,
    RequestCancelledError,
    RequestTimeoutError,
    RetryPolicy,
    ValidationError,
)
from ltx_jupyter._schema import IMAGE_TO_VIDEO, TEXT_TO_VIDEO, parse_output

from .faultproxy import FaultProxy

FAST_RETRY = RetryPolicy(max_attempts=5, base=0.01, cap=0.05)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def server_stats(url: str) -> dict[str, Any]:
    return httpx.get(f"{url}/_local/stats").json()


def server_request(url: str, request_id: str) -> dict[str, Any]:
    return httpx.get(f"{url}/_local/requests/{request_id}").json()


async def collect(client: QueueClient, arguments: dict[str, Any], **options: Any) -> list[Any]:
    return [u async for u in client.subscribe(TEXT_TO_VIDEO, arguments, **options)]


def step_lines(updates: list[Any]) -> list[str]:
    lines = [
        entry.message for u in updates if isinstance(u, (InProgress, Completed)) for entry in u.logs
    ]
    return [line for line in lines if line.startswith("step ")]


def test_whole_lifecycle_streams_logs_once_in_order_and_ends_with_the_video(
    local_server, transport
):
    async def main() -> tuple[list[Any], dict[str, int]]:
        async with QueueClient(queue_url=local_server.url) as client:
            updates = await collect(
                client, {"prompt": "a red fox", "seed": 7, "num_inference_steps": 12}
            )
            return updates, dict(client.stats)

    updates, stats = run(main())
    assert isinstance(updates[0], Queued)
    assert isinstance(updates[-1], Completed)
    assert step_lines(updates) == [f"step {i}/12" for i in range(1, 13)]
    result = parse_output(updates[-1].output)
    assert result.seed == 7
    assert result.video.content_type == "video/mp4"
    video = httpx.get(result.url)
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    # submit, one status stream, the result: nothing polled.
    assert stats["requests"] == 3
    per_request = server_stats(local_server.url)["by_request"][updates[0].request_id]
    assert per_request["submit"] == 1 and per_request["stream"] == 1 and per_request["result"] == 1


def test_submit_status_result_and_urls_point_at_the_server(local_server):
    async def main() -> None:
        async with QueueClient(queue_url=local_server.url) as client:
            handle = await client.submit(
                IMAGE_TO_VIDEO, {"prompt": "x", "image_url": "https://example.com/a.png"}
            )
            assert handle.status_url == (
                f"{local_server.url}/fal-ai/ltx-video/requests/{handle.request_id}/status"
            )
            status = await client.status(IMAGE_TO_VIDEO, handle.request_id, logs=False)
            assert status.state in ("IN_QUEUE", "IN_PROGRESS", "COMPLETED")
            statuses = [s async for s in client.watch(IMAGE_TO_VIDEO, handle.request_id)]
            status = statuses[-1]
            assert status.done and status.metrics["inference_time"] > 0
            full = await client.status(IMAGE_TO_VIDEO, handle.request_id, logs=True)
            assert [e.message for e in full.logs or ()][-1].startswith("done")
            output = await client.result(IMAGE_TO_VIDEO, handle.request_id)
            assert output["video"]["url"].startswith(local_server.url)

    run(main())


def test_queue_positions_count_down_with_one_worker(server_factory):
    server = server_factory(concurrency=1, step_seconds=0.05)

    async def main() -> list[int | None]:
        async with QueueClient(queue_url=server.url) as client:
            first = await client.submit(TEXT_TO_VIDEO, {"prompt": "one", "num_inference_steps": 5})
            second = await client.submit(TEXT_TO_VIDEO, {"prompt": "two", "num_inference_steps": 5})
            assert second.queue_position == 0
            updates = await collect(client, {"prompt": "three", "num_inference_steps": 5})
            del first
            return [u.position for u in updates if isinstance(u, Queued)]

    positions = run(main())
    assert positions[0] == 1
    assert positions == sorted(positions, reverse=True) and 0 in positions


def test_cancel_queued_never_runs_and_cancel_running_stops_early(server_factory):
    server = server_factory(concurrency=1, step_seconds=0.05)

    async def main() -> None:
        async with QueueClient(queue_url=server.url) as client:
            running = await client.submit(
                TEXT_TO_VIDEO, {"prompt": "long", "num_inference_steps": 50}
            )
            queued = await client.submit(
                TEXT_TO_VIDEO, {"prompt": "never", "num_inference_steps": 5}
            )
            assert await client.cancel(TEXT_TO_VIDEO, queued.request_id) == "CANCELLATION_REQUESTED"
            with pytest.raises(RequestCancelledError) as caught:
                async for _ in client.follow(TEXT_TO_VIDEO, queued.request_id):
                    pass
            assert caught.value.request_id == queued.request_id
            assert server_request(server.url, queued.request_id)["started_at"] is None

            seen: list[str] = []
            with pytest.raises(RequestCancelledError):
                async for update in client.follow(TEXT_TO_VIDEO, running.request_id):
                    if isinstance(update, InProgress):
                        seen += [e.message for e in update.logs]
                        if "step 3/50" in seen:
                            await client.cancel(TEXT_TO_VIDEO, running.request_id)
            steps = [m for m in seen if m.startswith("step ")]
            assert 3 <= len(steps) < 50
            assert await client.cancel(TEXT_TO_VIDEO, running.request_id) == "ALREADY_COMPLETED"
            with pytest.raises(HTTPError) as missing:
                await client.cancel(TEXT_TO_VIDEO, "no-such-request")
            assert missing.value.status_code == 404

    run(main())


def test_invalid_input_is_refused_before_any_request(local_server):
    async def main() -> None:
        async with QueueClient(queue_url=local_server.url) as client:
            with pytest.raises(InputError) as caught:
                await client.submit(
                    TEXT_TO_VIDEO,
                    {"prompt": " ", "num_inference_steps": 0, "guidance_scale": 11, "seed": "x"},
                )
            assert caught.value.fields == [
                "prompt",
                "num_inference_steps",
                "guidance_scale",
                "seed",
            ]
            assert "from 1 to 50" in str(caught.value)
            assert client.stats["requests"] == 0

    run(main())


def test_server_422_lists_every_field_error(local_server):
    async def main() -> None:
        async with QueueClient(queue_url=local_server.url) as client:
            # An endpoint the client does not know passes through unchecked; the server checks.
            with pytest.raises(ValidationError) as caught:
                await client.submit("fal-ai/ltx-video-v2", {"negative_prompt": 3})
            assert caught.value.status_code == 422
            assert "prompt" in [e.field for e in caught.value.errors]
            assert "prompt" in str(caught.value)

    run(main())


def test_key_is_required_by_a_keyed_server_and_never_shown(server_factory):
    secret = "canary-key-5b1f0c"
    server = server_factory(key=secret)

    async def main() -> None:
        async with QueueClient(queue_url=server.url, key=None) as anonymous:
            with pytest.raises(AuthenticationError) as caught:
                await anonymous.submit(TEXT_TO_VIDEO, {"prompt": "x"})
            assert caught.value.status_code == 401 and "FAL_KEY" in str(caught.value)
        async with QueueClient(queue_url=server.url, key=secret) as client:
            updates = await collect(client, {"prompt": "x", "num_inference_steps": 2})
            assert isinstance(updates[-1], Completed)
            assert secret not in repr(client)

    run(main())


def test_fal_hosts_without_credentials_fail_before_any_request(monkeypatch):
    for name in ("FAL_KEY", "FAL_KEY_ID", "FAL_KEY_SECRET", "LTX_QUEUE_URL"):
        monkeypatch.delenv(name, raising=False)
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(500)

    async def main() -> None:
        async with QueueClient(transport=httpx.MockTransport(record)) as client:
            assert client.queue_url == "https://queue.fal.run"
            with pytest.raises(MissingCredentialsError, match="FAL_KEY"):
                await client.submit(TEXT_TO_VIDEO, {"prompt": "x"})

    run(main())
    assert sent == []


def test_credentials_from_key_id_and_secret(monkeypatch):
    monkeypatch.delenv("FAL_KEY", raising=False)
    monkeypatch.setenv("FAL_KEY_ID", "id1")
    monkeypatch.setenv("FAL_KEY_SECRET", "sec2")
    seen: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(200, json={"request_id": "r1"})

    async def main() -> None:
        async with QueueClient(transport=httpx.MockTransport(record)) as client:
            handle = await client.submit(TEXT_TO_VIDEO, {"prompt": "x"})
            assert handle.status_url.endswith("/fal-ai/ltx-video/requests/r1/status")
            assert "sec2" not in repr(client)

    run(main())
    assert seen == ["Key id1:sec2"]


# The submit-retry rule (_retries.py), on each transport: a submit is sent again only when the
# server cannot have queued it.


def test_retries_429_and_503_on_submit_without_a_second_request(local_server, transport):
    with FaultProxy(local_server.url) as proxy:
        proxy.add("status", method="POST", status=429, headers={"Retry-After": "0"})
        proxy.add("status", method="POST", status=503)

        async def main() -> tuple[Any, dict[str, int]]:
            async with QueueClient(queue_url=proxy.url, retry=FAST_RETRY) as client:
                updates = await collect(client, {"prompt": "retry", "num_inference_steps": 2})
                return updates, dict(client.stats)

        updates, stats = run(main())
    assert isinstance(updates[-1], Completed)
    assert stats["retries"] == 2
    assert proxy.injected == {"429": 1, "503": 1}
    request_id = updates[0].request_id
    assert server_stats(local_server.url)["by_request"][request_id]["submit"] == 1


def test_reads_retry_dropped_connections_and_500s(local_server, transport):
    with FaultProxy(local_server.url) as proxy:
        proxy.add("reset", path=r"/status", times=2)
        proxy.add("status", path=r"/status", status=500)
        proxy.add("status", path=r"/requests/[^/]+$", method="GET", status=502)

        async def main() -> tuple[Any, dict[str, int]]:
            async with QueueClient(
                queue_url=proxy.url, retry=FAST_RETRY, stream=False, poll_interval=0.05
            ) as client:
                updates = await collect(client, {"prompt": "drops", "num_inference_steps": 4})
                return updates, dict(client.stats)

        updates, stats = run(main())
    assert isinstance(updates[-1], Completed)
    assert step_lines(updates) == [f"step {i}/4" for i in range(1, 5)]
    assert proxy.injected == {"reset": 2, "500": 1, "502": 1}
    # Every fault is retried by the client, except that aiohttp itself resends an idempotent
    # request once when its kept-alive connection was reset, so one reset may not reach us.
    assert stats["retries"] in ((4,) if transport == "httpx" else (3, 4)), stats


def test_submit_is_not_resent_after_a_drop_or_a_502(local_server, transport):
    with FaultProxy(local_server.url) as proxy:
        proxy.add("reset", method="POST")
        proxy.add("status", method="POST", status=502)

        async def main() -> None:
            async with QueueClient(queue_url=proxy.url, retry=FAST_RETRY) as client:
                # The connection was made and the request sent: not a connect error.
                with pytest.raises(httpx.TransportError) as dropped:
                    await client.submit(TEXT_TO_VIDEO, {"prompt": "once"})
                assert not isinstance(dropped.value, (httpx.ConnectError, httpx.ConnectTimeout))
                with pytest.raises(HTTPError) as caught:
                    await client.submit(TEXT_TO_VIDEO, {"prompt": "once"})
                assert caught.value.status_code == 502
                assert client.stats["retries"] == 0

        run(main())
    assert proxy.requests["POST /fal-ai/ltx-video"] == 2


def test_connection_refused_submit_is_retried_then_raised(transport):
    async def main() -> int:
        policy = RetryPolicy(max_attempts=3, base=0.01, cap=0.02)
        async with QueueClient(queue_url="http://127.0.0.1:9", retry=policy) as client:
            with pytest.raises(httpx.ConnectError):
                await client.submit(TEXT_TO_VIDEO, {"prompt": "x"})
            return client.stats["requests"]

    assert run(main()) == 3


def test_a_stream_cut_mid_job_falls_back_to_polling_without_losing_a_line(local_server):
    with FaultProxy(local_server.url) as proxy:
        proxy.add("cut_stream", path=r"/status/stream", events=4)

        async def main() -> tuple[Any, dict[str, int]]:
            async with QueueClient(queue_url=proxy.url, poll_interval=0.05) as client:
                updates = await collect(client, {"prompt": "cut", "num_inference_steps": 20})
                return updates, dict(client.stats)

        updates, stats = run(main())
    assert proxy.injected["cut_stream"] == 1
    assert stats["stream_fallbacks"] == 1
    assert step_lines(updates) == [f"step {i}/20" for i in range(1, 21)]
    all_lines = [
        e.message for u in updates if isinstance(u, (InProgress, Completed)) for e in u.logs
    ]
    assert len(all_lines) == len(set(all_lines))


def test_the_client_deadline_cancels_the_remote_request(server_factory):
    server = server_factory(step_seconds=0.2)

    async def main() -> str:
        async with QueueClient(queue_url=server.url) as client:
            with pytest.raises(RequestTimeoutError) as caught:
                await collect(client, {"prompt": "slow", "num_inference_steps": 50}, timeout=0.6)
            assert caught.value.request_id
            return caught.value.request_id

    request_id = run(main())
    for _ in range(50):
        record = server_request(server.url, request_id)
        if record["state"] == "COMPLETED":
            break
        asyncio.run(asyncio.sleep(0.05))
    assert record["state"] == "COMPLETED" and "cancel" in record["error"].lower()


def _png(path: Path, size: int = 0) -> Path:
    # A 1x1 PNG, padded with a trailing chunk to the size asked for.
    data = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    )
    path.write_bytes(data + b"\0" * max(size - len(data), 0))
    return path


def test_image_to_video_uploads_a_local_file_through_storage(local_server, tmp_path):
    image = _png(tmp_path / "first frame.png", size=4096)

    async def main() -> tuple[Any, Any]:
        async with QueueClient(queue_url=local_server.url, data_uri_limit=1024) as client:
            arguments = await client.prepare_arguments(IMAGE_TO_VIDEO, {"image_url": str(image)})
            updates = [
                u
                async for u in client.subscribe(
                    IMAGE_TO_VIDEO,
                    {
                        "prompt": "the frame moves",
                        "image_url": str(image),
                        "num_inference_steps": 2,
                    },
                )
            ]
            return arguments, updates

    before = server_stats(local_server.url)["by_kind"]["upload"]
    arguments, updates = run(main())
    assert arguments["image_url"].startswith(local_server.url + "/files/")
    assert httpx.get(arguments["image_url"]).content == image.read_bytes()
    assert isinstance(updates[-1], Completed)
    # initiate + PUT, once for prepare_arguments and once for the run
    assert server_stats(local_server.url)["by_kind"]["upload"] - before == 4


def test_small_local_files_are_inlined_as_data_uris(local_server, tmp_path):
    image = _png(tmp_path / "tiny.png")

    async def main() -> dict[str, Any]:
        async with QueueClient(queue_url=local_server.url) as client:
            return await client.prepare_arguments(IMAGE_TO_VIDEO, {"image_url": image})

    arguments = run(main())
    assert arguments["image_url"].startswith("data:image/png;base64,")
    assert base64.b64decode(arguments["image_url"].split(",", 1)[1]) == image.read_bytes()


def test_unknown_result_is_a_404_with_the_reason(local_server):
    async def main() -> None:
        async with QueueClient(queue_url=local_server.url) as client:
            with pytest.raises(HTTPError) as caught:
                await client.result(TEXT_TO_VIDEO, "nope")
            assert caught.value.status_code == 404
            assert "not found" in str(caught.value).lower()

    run(main())


def test_following_a_request_rides_out_an_outage_longer_than_one_reads_retries(local_server):
    with FaultProxy(local_server.url) as proxy:
        proxy.add("status", path=r"/status", status=503, times=6)
        policy = RetryPolicy(max_attempts=2, base=0.01, cap=0.05)

        async def main() -> tuple[list[Any], dict[str, int]]:
            async with QueueClient(
                queue_url=proxy.url, retry=policy, stream=False, poll_interval=0.05
            ) as client:
                return await collect(client, {"prompt": "outage", "num_inference_steps": 3}), dict(
                    client.stats
                )

        updates, stats = run(main())
    assert isinstance(updates[-1], Completed)
    assert step_lines(updates) == ["step 1/3", "step 2/3", "step 3/3"]
    assert stats["outage_waits"] == 3


def test_an_outage_past_the_tolerance_is_raised(local_server):
    with FaultProxy(local_server.url) as proxy:
        proxy.add("status", path=r"/status", status=503, times=1000)
        policy = RetryPolicy(max_attempts=2, base=0.01, cap=0.05)

        async def main() -> None:
            async with QueueClient(
                queue_url=proxy.url, retry=policy, stream=False, outage_tolerance=0.3
            ) as client:
                with pytest.raises(HTTPError) as caught:
                    await collect(client, {"prompt": "gone", "num_inference_steps": 2})
                assert caught.value.status_code == 503

        run(main())
