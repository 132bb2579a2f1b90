"""The local fal-compatible server over real loopback HTTP."""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, ClassVar

import httpx
import pytest

from ltx_jupyter.server import LocalServer, ServerConfig, create_app
from ltx_jupyter.server.engines import EngineError, EngineOutput, register_engine

T2V = "fal-ai/ltx-video"
I2V = "fal-ai/ltx-video/image-to-video"
STEP_LINE = re.compile(r"^step (\d+)/(\d+)$")
LOG_LEVELS = {"STDERR", "STDOUT", "ERROR", "INFO", "WARN", "DEBUG"}

# A job that holds the only worker while a test looks at the queue (1 s at 0.02 s a step).
BLOCKER = {"prompt": "a slow blocker", "num_inference_steps": 50, "seed": 1}


@pytest.fixture
def client(local_server: LocalServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_server.url, timeout=10) as c:
        yield c


def client_for(server: LocalServer, **kwargs: Any) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=10, **kwargs)


def submit(client: httpx.Client, endpoint: str = T2V, **data: Any) -> dict[str, Any]:
    data.setdefault("prompt", "a red fox running through snow")
    response = client.post(f"/{endpoint}", json=data)
    assert response.status_code == 200, response.text
    return response.json()


def wait_for(
    client: httpx.Client,
    sub: dict[str, Any],
    predicate: Callable[[dict[str, Any]], bool],
    timeout: float = 15,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(sub["status_url"], params={"logs": 1}).json()
        if predicate(body):
            return body
        assert time.monotonic() < deadline, f"timed out; last status {body}"
        time.sleep(0.02)


def wait_done(client: httpx.Client, sub: dict[str, Any], timeout: float = 15) -> dict[str, Any]:
    return wait_for(client, sub, lambda b: b["status"] == "COMPLETED", timeout)


def running(body: dict[str, Any]) -> bool:
    return body["status"] == "IN_PROGRESS"


def messages(logs: list[dict[str, Any]]) -> list[str]:
    return [entry["message"] for entry in logs]


def step_lines(logs: list[dict[str, Any]]) -> list[str]:
    return [m for m in messages(logs) if STEP_LINE.match(m)]


def read_stream(
    client: httpx.Client, url: str, **params: Any
) -> tuple[list[dict[str, Any]], list[str]]:
    """All events of a status stream (parsed) and every raw line, reading until it closes."""
    events: list[dict[str, Any]] = []
    lines: list[str] = []
    with client.stream("GET", url, params=params, headers={"Accept": "text/event-stream"}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            lines.append(line)
            if line.startswith("data: "):
                events.append(json.loads(line[len("data: ") :]))
    return events, lines


# -- submit, status, result ------------------------------------------------------------------


def test_health(client: httpx.Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["engine"] == "synthetic"


def test_submit_answers_urls_on_this_server_without_the_sub_path(
    local_server: LocalServer, client: httpx.Client
) -> None:
    response = client.post(
        f"/{I2V}", json={"prompt": "a boat", "image_url": "https://example.com/boat.png"}
    )
    assert response.status_code == 200
    body = response.json()
    rid = body["request_id"]
    assert response.headers["x-fal-request-id"] == rid
    assert body["status"] == "IN_QUEUE"
    assert isinstance(body["queue_position"], int)
    base = f"{local_server.url}/fal-ai/ltx-video/requests/{rid}"
    assert body["response_url"] == base
    assert body["status_url"] == base + "/status"
    assert body["cancel_url"] == base + "/cancel"
    assert wait_done(client, body)["status"] == "COMPLETED"


def test_status_shapes_through_a_job_lifetime(server_factory: Callable[..., LocalServer]) -> None:
    server = server_factory(concurrency=1)
    with client_for(server) as client:
        first = submit(client, **BLOCKER)
        wait_for(client, first, running)
        second = submit(client, seed=2)

        queued = client.get(second["status_url"])
        assert queued.status_code == 202
        assert queued.headers["x-fal-request-id"] == second["request_id"]
        assert queued.json() == {
            "status": "IN_QUEUE",
            "request_id": second["request_id"],
            "queue_position": 0,
            "response_url": second["response_url"],
        }

        for flag in ("1", "true"):
            progress = client.get(first["status_url"], params={"logs": flag})
            assert progress.status_code == 202
            body = progress.json()
            assert body["status"] == "IN_PROGRESS"
            assert body["response_url"] == first["response_url"]
            assert isinstance(body["logs"], list) and body["logs"]
        for params in ({"logs": "0"}, {"logs": "false"}, {}):
            body = client.get(first["status_url"], params=params).json()
            assert body["status"] == "IN_PROGRESS"
            assert "logs" in body and body["logs"] is None

        before = time.time()
        done = wait_done(client, first)
        completed = client.get(first["status_url"], params={"logs": "true"})
        assert completed.status_code == 200
        body = completed.json()
        assert body["status"] == "COMPLETED"
        assert "error" not in body and "error_type" not in body
        assert body["metrics"]["inference_time"] > 0
        assert before - 5 < body["metrics"]["completed_at"] <= time.time()
        assert body["logs"] == done["logs"]
        assert client.get(first["status_url"], params={"logs": "0"}).json()["logs"] is None

        logs = body["logs"]
        for entry in logs:
            assert set(entry) == {"message", "level", "source", "timestamp"}
            assert entry["level"] in LOG_LEVELS
            assert datetime.fromisoformat(entry["timestamp"]).utcoffset().total_seconds() == 0
        assert "not LTX Video output" in logs[0]["message"]
        assert step_lines(logs) == [f"step {i}/50" for i in range(1, 51)]
        assert "encoding 9 frames" in messages(logs)

        result = client.get(first["response_url"])
        assert result.status_code == 200
        assert result.headers["x-fal-request-id"] == first["request_id"]
        output = result.json()
        assert output["seed"] == 1
        video = output["video"]
        assert video["content_type"] == "video/mp4"
        assert video["file_name"] == "video.mp4"
        # The seed endpoint's document gives its video as a File: no size or frame count.
        assert set(video) == {"url", "content_type", "file_name", "file_size"}
        assert video["url"].startswith(server.url + "/files/")
        file = client.get(video["url"])
        assert file.status_code == 200
        assert file.headers["content-type"] == "video/mp4"
        assert len(file.content) == video["file_size"]
        ranged = client.get(video["url"], headers={"Range": "bytes=0-99"})
        assert ranged.status_code == 206 and len(ranged.content) == 100
        wait_done(client, second)


def test_result_before_completion_and_unknown_ids(
    server_factory: Callable[..., LocalServer],
) -> None:
    server = server_factory(concurrency=1)
    with client_for(server) as client:
        sub = submit(client, **BLOCKER)
        early = client.get(sub["response_url"])
        assert early.status_code == 400
        assert early.json() == {"detail": "Request is still in progress"}
        assert early.headers["x-fal-request-id"] == sub["request_id"]

        unknown = "/fal-ai/ltx-video/requests/00000000-0000-0000-0000-000000000000"
        assert client.get(unknown).status_code == 404
        assert client.get(unknown).json() == {"detail": "Request not found"}
        assert client.get(unknown + "/status").status_code == 404
        assert client.get(unknown + "/status/stream").status_code == 404
        missing = client.put(unknown + "/cancel")
        assert missing.status_code == 404 and missing.json() == {"status": "NOT_FOUND"}
        # The per-request URLs live under owner/alias only.
        wrong_app = sub["status_url"].replace("/fal-ai/ltx-video/", "/fal-ai/other/")
        assert client.get(wrong_app).status_code == 404
        client.put(sub["cancel_url"])


# -- the status stream -----------------------------------------------------------------------


def test_stream_delivers_every_log_line_once_in_order(client: httpx.Client) -> None:
    sub = submit(client, seed=5)
    events, lines = read_stream(client, sub["status_url"] + "/stream", logs=1)
    assert events[-1]["status"] == "COMPLETED"
    assert all(e["status"] != "COMPLETED" for e in events[:-1])
    assert lines[-1] == "" or lines[-1].startswith("data: ")
    order = {"IN_QUEUE": 0, "IN_PROGRESS": 1, "COMPLETED": 2}
    ranks = [order[e["status"]] for e in events]
    assert ranks == sorted(ranks)
    streamed = [entry for e in events for entry in (e.get("logs") or [])]
    final = client.get(sub["status_url"], params={"logs": 1}).json()
    assert streamed == final["logs"]
    assert step_lines(streamed) == [f"step {i}/30" for i in range(1, 31)]
    assert events[-1]["metrics"]["inference_time"] > 0
    assert events[-1]["response_url"] == sub["response_url"]


def test_stream_on_a_completed_request_sends_one_event(client: httpx.Client) -> None:
    sub = submit(client)
    final = wait_done(client, sub)
    events, _ = read_stream(client, sub["status_url"] + "/stream", logs="true")
    assert len(events) == 1
    assert events[0]["status"] == "COMPLETED"
    assert events[0]["logs"] == final["logs"]


def test_stream_sends_queue_moves_and_pings(server_factory: Callable[..., LocalServer]) -> None:
    server = server_factory(concurrency=1, ping_interval=0.1)
    with client_for(server) as client:
        first = submit(client, **BLOCKER)
        wait_for(client, first, running)
        second = submit(client, seed=2)
        third = submit(client, seed=3)
        events, lines = read_stream(client, third["status_url"] + "/stream")
    positions = [e.get("queue_position") for e in events if e["status"] == "IN_QUEUE"]
    assert positions == [1, 0]
    assert [e["status"] for e in events][-2:] == ["IN_PROGRESS", "COMPLETED"]
    assert all(e.get("logs") is None for e in events if e["status"] != "IN_QUEUE")
    assert ": ping" in lines
    assert second["request_id"] != third["request_id"]


class _ChattyEngine:
    """Logs many lines at once: the stream must batch them."""

    name = "chatty"

    def __init__(self, lines: int = 10_000, **_: Any) -> None:
        self.lines = lines

    def validate(self, endpoint_id: str, data: Any) -> list[Any]:
        return []

    def run(self, task: Any) -> EngineOutput:
        time.sleep(0.2)
        for i in range(self.lines):
            task.log(f"line {i}")
        return EngineOutput(output={"lines": self.lines})


register_engine("chatty", _ChattyEngine)


class _FailingEngine:
    """Fails after one log line: with an EngineError when the prompt says so, else a crash."""

    name = "failing"

    def __init__(self, **_: Any) -> None:
        pass

    def validate(self, endpoint_id: str, data: Any) -> list[Any]:
        return []

    def run(self, task: Any) -> EngineOutput:
        task.log("about to fail")
        if task.input["prompt"] == "engine error":
            raise EngineError("the image could not be read", error_type="bad_request")
        raise RuntimeError("boom")


register_engine("failing", _FailingEngine)


def test_failed_runs_end_completed_with_an_error(
    server_factory: Callable[..., LocalServer],
) -> None:
    server = server_factory(engine="failing")
    with client_for(server) as client:
        for prompt, error, error_type in (
            ("engine error", "the image could not be read", "bad_request"),
            ("crash", "RuntimeError: boom", "internal_error"),
        ):
            sub = submit(client, prompt=prompt)
            final = wait_done(client, sub)
            assert (final["error"], final["error_type"]) == (error, error_type)
            assert messages(final["logs"])[0] == "about to fail"
            result = client.get(sub["response_url"])
            assert result.status_code == 500
            assert result.json() == {"detail": error, "error_type": error_type}
            assert result.headers["x-fal-request-id"] == sub["request_id"]


def test_stream_batches_ten_thousand_log_lines(server_factory: Callable[..., LocalServer]) -> None:
    server = server_factory(engine="chatty")
    with client_for(server) as client:
        sub = submit(client)
        events, _ = read_stream(client, sub["status_url"] + "/stream", logs=1)
    # Every line once and in order, batched into few events (how fast: bench/server_side.py).
    streamed = [entry["message"] for e in events for entry in (e.get("logs") or [])]
    assert streamed == [f"line {i}" for i in range(10_000)]
    assert len(events) < 100


def test_stream_disconnect_leaves_no_waiter(server_factory: Callable[..., LocalServer]) -> None:
    server = server_factory(concurrency=1, ping_interval=30)
    queue = server.app.state.server.queue
    with client_for(server) as client:
        first = submit(client, **BLOCKER)
        wait_for(client, first, running)
        second = submit(client)
        with client.stream("GET", second["status_url"] + "/stream") as response:
            first_line = next(response.iter_lines())
            assert first_line.startswith("data: ")
        deadline = time.monotonic() + 5
        while queue._waiters and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not queue._waiters
        client.put(second["cancel_url"])


# -- queue order, priority, start timeout ----------------------------------------------------


def test_low_priority_waits_behind_normal(server_factory: Callable[..., LocalServer]) -> None:
    server = server_factory(concurrency=1)
    with client_for(server) as client:
        first = submit(client, **BLOCKER)
        wait_for(client, first, running)
        low = client.post(
            f"/{T2V}", json={"prompt": "low"}, headers={"X-Fal-Queue-Priority": "low"}
        ).json()
        normal = client.post(
            f"/{T2V}", json={"prompt": "normal"}, headers={"X-Fal-Queue-Priority": "normal"}
        ).json()
        assert client.get(normal["status_url"]).json()["queue_position"] == 0
        assert client.get(low["status_url"]).json()["queue_position"] == 1
        wait_done(client, low)
        times = {
            name: client.get(f"/_local/requests/{sub['request_id']}").json()
            for name, sub in (("low", low), ("normal", normal))
        }
        assert times["normal"]["started_at"] < times["low"]["started_at"]
        assert times["low"]["endpoint"] == T2V
        assert times["low"]["created_at"] < times["low"]["started_at"]
        assert times["low"]["started_at"] < times["low"]["completed_at"]

        bad = client.post(f"/{T2V}", json={"prompt": "x"}, headers={"X-Fal-Queue-Priority": "now"})
        assert bad.status_code == 400
        assert "X-Fal-Queue-Priority" in bad.json()["detail"]


def test_start_timeout_ends_a_queued_request(server_factory: Callable[..., LocalServer]) -> None:
    server = server_factory(concurrency=1, step_seconds=0.05)  # the blocker runs 2.5 s
    with client_for(server) as client:
        first = submit(client, **BLOCKER)
        wait_for(client, first, running)
        late = client.post(
            f"/{T2V}", json={"prompt": "late"}, headers={"X-Fal-Request-Timeout": "1.2"}
        ).json()
        final = wait_done(client, late)
        assert final["error"] == "Request timed out"
        assert final["error_type"] == "request_timeout"
        assert final["logs"] == []
        result = client.get(late["response_url"])
        assert result.status_code == 504
        assert result.headers["X-Fal-Request-Timeout-Type"] == "user"
        assert result.headers["x-fal-request-id"] == late["request_id"]
        assert result.json()["error_type"] == "request_timeout"
        assert client.get(f"/_local/requests/{late['request_id']}").json()["started_at"] is None

        for value in ("1", "0.5", "soon", "nan"):
            bad = client.post(
                f"/{T2V}", json={"prompt": "x"}, headers={"X-Fal-Request-Timeout": value}
            )
            assert bad.status_code == 400, value
        accepted = client.post(
            f"/{T2V}",
            json={"prompt": "x"},
            headers={
                "X-Fal-Request-Timeout": "60",
                "X-Fal-Runner-Hint": "gpu-1",
                "X-Fal-Object-Lifecycle-Preference": '{"expiration_duration_seconds": 60}',
            },
        )
        assert accepted.status_code == 200
        client.put(accepted.json()["cancel_url"])


# -- cancel ----------------------------------------------------------------------------------


def test_cancel_queued_request_never_runs(server_factory: Callable[..., LocalServer]) -> None:
    server = server_factory(concurrency=1)
    with client_for(server) as client:
        first = submit(client, **BLOCKER)
        wait_for(client, first, running)
        queued = submit(client)
        response = client.put(queued["cancel_url"])
        assert response.status_code == 202
        assert response.json() == {"status": "CANCELLATION_REQUESTED"}
        assert response.headers["x-fal-request-id"] == queued["request_id"]
        status = client.get(queued["status_url"], params={"logs": 1})
        assert status.status_code == 200
        body = status.json()
        assert body["status"] == "COMPLETED"
        assert body["error"] == "Request was cancelled"
        assert body["error_type"] == "request_cancelled"
        assert body["logs"] == []
        result = client.get(queued["response_url"])
        assert result.status_code == 400
        assert result.json() == {
            "detail": "Request was cancelled",
            "error_type": "request_cancelled",
        }
        again = client.put(queued["cancel_url"])
        assert again.status_code == 400 and again.json() == {"status": "ALREADY_COMPLETED"}
        wait_done(client, first)
        assert client.get(f"/_local/requests/{queued['request_id']}").json()["started_at"] is None


def test_cancel_running_request_stops_early(server_factory: Callable[..., LocalServer]) -> None:
    server = server_factory(step_seconds=0.05)
    with client_for(server) as client:
        sub = submit(client, num_inference_steps=50)
        wait_for(client, sub, lambda b: "step 3/50" in messages(b.get("logs") or []))
        response = client.put(sub["cancel_url"])
        assert response.status_code == 202
        assert response.json() == {"status": "CANCELLATION_REQUESTED"}
        final = wait_done(client, sub, timeout=5)
        assert final["error_type"] == "request_cancelled"
        assert final["error"] == "Request was cancelled"
        assert 3 <= len(step_lines(final["logs"])) < 50
        assert client.get(sub["response_url"]).status_code == 400
        again = client.put(sub["cancel_url"])
        assert again.status_code == 400 and again.json() == {"status": "ALREADY_COMPLETED"}


# -- validation and endpoint ids -------------------------------------------------------------


def test_invalid_input_is_422_with_every_field(client: httpx.Client) -> None:
    before = client.get("/health").json()["requests"]
    response = client.post(
        f"/{T2V}",
        json={"prompt": "", "num_inference_steps": 0, "guidance_scale": 11, "seed": "x"},
    )
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert [tuple(d["loc"]) for d in detail] == [
        ("body", "prompt"),
        ("body", "num_inference_steps"),
        ("body", "guidance_scale"),
        ("body", "seed"),
    ]
    assert all(d["msg"] and d["type"] for d in detail)
    missing = client.post(f"/{I2V}", json={"prompt": "x"}).json()["detail"]
    assert [tuple(d["loc"]) for d in missing] == [("body", "image_url")]
    local_file = client.post(f"/{I2V}", json={"prompt": "x", "image_url": __file__})
    assert local_file.status_code == 422
    not_json = client.post(
        f"/{T2V}", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 422
    assert client.post(f"/{T2V}", json=["a list"]).status_code == 422
    odd = client.post(f"/{T2V}", json={"prompt": "x", "width": 65})
    assert odd.status_code == 422
    assert odd.json()["detail"][0]["loc"] == ["body", "width"]
    assert client.get("/health").json()["requests"] == before


def test_unknown_endpoint_runs_with_its_own_fields(client: httpx.Client) -> None:
    missing = client.post("/someone/new-video-model", json={"num_frames": 5})
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "prompt"]

    sub = submit(client, "someone/new-video-model/fast", width=96, height=64, num_frames=5)
    assert "/someone/new-video-model/requests/" in sub["status_url"]
    assert wait_done(client, sub).get("error") is None
    video = client.get(sub["response_url"]).json()["video"]
    assert (video["width"], video["height"], video["num_frames"]) == (96, 64, 5)


def test_endpoint_id_shapes(local_server: LocalServer, client: httpx.Client) -> None:
    one = client.post("/ltx-video", json={"prompt": "x"})
    assert one.status_code == 404
    assert "owner/alias" in one.json()["detail"]
    short_namespace = client.post("/workflows/me", json={"prompt": "x"})
    assert short_namespace.status_code == 404

    sub = submit(client, "workflows/me/my-flow/run")
    assert sub["status_url"].startswith(f"{local_server.url}/workflows/me/my-flow/requests/")
    legacy = submit(client, "1234-my-app")
    assert legacy["status_url"].startswith(f"{local_server.url}/1234/my-app/requests/")
    for item in (sub, legacy):
        assert client.put(item["cancel_url"]).status_code in (202, 400)


def test_unknown_routes_are_json_404(client: httpx.Client) -> None:
    for method, path in (
        ("GET", "/nope"),
        ("GET", "/fal-ai/ltx-video"),
        ("DELETE", "/fal-ai/ltx-video"),
        ("GET", "/storage/upload/initiate"),
    ):
        response = client.request(method, path)
        assert response.status_code == 404, (method, path)
        assert response.json() == {"detail": "Not found"}


# -- auth ------------------------------------------------------------------------------------


def test_key_is_required_except_for_health_and_files(
    server_factory: Callable[..., LocalServer],
) -> None:
    key = "s3cret-key-value"
    server = server_factory(key=key)
    with client_for(server) as anonymous:
        refused = anonymous.post(f"/{T2V}", json={"prompt": "x"})
        assert refused.status_code == 401
        assert "Authorization: Key" in refused.json()["detail"]
        assert key not in refused.text
        wrong = anonymous.post(
            f"/{T2V}", json={"prompt": "x"}, headers={"Authorization": "Key nope"}
        )
        assert wrong.status_code == 401
        bearer = anonymous.get("/_local/stats", headers={"Authorization": f"Bearer {key}"})
        assert bearer.status_code == 401
        assert anonymous.get("/health").status_code == 200
        with client_for(server, headers={"Authorization": f"Key {key}"}) as client:
            sub = submit(client)
            assert anonymous.get(sub["status_url"]).status_code == 401
            wait_done(client, sub)
            video_url = client.get(sub["response_url"]).json()["video"]["url"]
        assert key not in video_url
        assert anonymous.get(video_url).status_code == 200


# -- storage and files -----------------------------------------------------------------------


def test_upload_round_trip(local_server: LocalServer, client: httpx.Client) -> None:
    data = bytes(range(256)) * 40
    initiate = client.post(
        "/storage/upload/initiate",
        params={"storage_type": "fal-cdn-v3"},
        json={"content_type": "image/png", "file_name": "../../My Image.png"},
    )
    assert initiate.status_code == 200
    urls = initiate.json()
    assert urls["upload_url"].startswith(local_server.url + "/storage/upload/")
    assert urls["file_url"].startswith(local_server.url + "/files/")
    assert ".." not in urls["file_url"]
    assert client.get(urls["file_url"]).status_code == 404

    put = client.put(urls["upload_url"], content=data, headers={"Content-Type": "image/png"})
    assert put.status_code == 200
    got = client.get(urls["file_url"])
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["content-type"] == "image/png"
    assert client.put(local_server.url + "/storage/upload/unknown", content=b"x").status_code == 404


def test_upload_over_the_limit_is_413(server_factory: Callable[..., LocalServer]) -> None:
    server = server_factory(max_upload_bytes=1000)
    with client_for(server) as client:
        urls = client.post(
            "/storage/upload/initiate?storage_type=gcs",
            json={"content_type": "application/octet-stream", "file_name": "big.bin"},
        ).json()
        assert client.put(urls["upload_url"], content=b"x" * 1001).status_code == 413

        def chunks() -> Iterator[bytes]:
            for _ in range(5):
                yield b"y" * 400

        assert client.put(urls["upload_url"], content=chunks()).status_code == 413
        assert client.get(urls["file_url"]).status_code == 404
        assert client.put(urls["upload_url"], content=b"z" * 1000).status_code == 200
        assert client.get(urls["file_url"]).content == b"z" * 1000


def test_image_to_video_reads_its_own_upload(client: httpx.Client) -> None:
    urls = client.post(
        "/storage/upload/initiate", json={"content_type": "image/png", "file_name": "a.png"}
    ).json()
    client.put(urls["upload_url"], content=b"not really a png")
    sub = submit(client, I2V, image_url=urls["file_url"], seed=3)
    assert wait_done(client, sub).get("error") is None


def test_files_refuse_path_traversal(local_server: LocalServer) -> None:
    secret = local_server.config.data_dir / "secret.txt"
    secret.write_text("top secret")
    port = int(local_server.url.rsplit(":", 1)[1])
    for path in (
        "/files/../secret.txt",
        "/files/..%2Fsecret.txt",
        "/files/uploads/..%2F..%2Fsecret.txt",
        "/files/%2e%2e/secret.txt",
        "/files/x/..",
        "/files/x/.hidden",
    ):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        connection.close()
        assert response.status == 404, path
        assert b"top secret" not in body


# -- webhook, stats, CLI ---------------------------------------------------------------------


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_webhook_is_delivered(client: httpx.Client) -> None:
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.received = []
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    try:
        hook = f"http://127.0.0.1:{receiver.server_address[1]}/hook?x=1"
        ok = client.post(f"/{T2V}", params={"fal_webhook": hook}, json={"prompt": "a"}).json()
        unreachable = client.post(
            f"/{T2V}",
            params={"fal_webhook": "http://127.0.0.1:9/nothing"},
            json={"prompt": "b"},
        ).json()
        deadline = time.monotonic() + 15
        while not _Receiver.received and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(_Receiver.received) == 1
        body = _Receiver.received[0]
        assert body["request_id"] == ok["request_id"]
        assert body["status"] == "OK"
        assert body["error"] is None
        assert body["payload"]["video"]["content_type"] == "video/mp4"
        wait_done(client, unreachable)
        assert client.get("/health").status_code == 200
        bad = client.post(f"/{T2V}", params={"fal_webhook": "ftp://x"}, json={"prompt": "c"})
        assert bad.status_code == 400
    finally:
        receiver.shutdown()
        receiver.server_close()
        thread.join(5)


def test_stats_count_requests_per_job(client: httpx.Client) -> None:
    sub = submit(client)
    for _ in range(3):
        client.get(sub["status_url"])
    wait_done(client, sub)
    client.get(sub["response_url"])
    stats = client.get("/_local/stats").json()
    mine = stats["by_request"][sub["request_id"]]
    assert mine["submit"] == 1
    assert mine["status"] >= 4
    assert mine["result"] == 1
    assert mine["total"] == sum(v for k, v in mine.items() if k != "total")
    assert stats["by_kind"]["submit"] >= 1
    assert set(stats["by_kind"]) == {
        "submit",
        "status",
        "stream",
        "result",
        "cancel",
        "upload",
        "file",
        "other",
    }


def test_create_app_rejects_an_unknown_engine(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="synthetic"):
        create_app(ServerConfig(engine="no-such-engine", data_dir=tmp_path))


def test_cli_serve_answers_health(tmp_path: Any) -> None:
    env = {**os.environ, "LTX_SERVER_KEY": "cli-key"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ltx_jupyter.server",
            "serve",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path),
            "--step-seconds",
            "0.01",
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        match = re.fullmatch(r"LTX_QUEUE_URL=(http://127\.0\.0\.1:\d+)", line)
        assert match, line
        url = match.group(1)
        deadline = time.monotonic() + 15
        while True:
            try:
                health = httpx.get(url + "/health", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert health.status_code == 200
        assert health.json()["engine"] == "synthetic"
        assert httpx.get(url + "/_local/stats").status_code == 401
        authorised = httpx.get(url + "/_local/stats", headers={"Authorization": "Key cli-key"})
        assert authorised.status_code == 200
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=15)
    assert "cli-key" not in stderr


def test_local_server_stops_cleanly(tmp_path: Any) -> None:
    before = set(threading.enumerate())
    with LocalServer(port=0, data_dir=tmp_path, step_seconds=0.02) as server:
        assert httpx.get(server.url + "/health").status_code == 200
        sub = httpx.post(server.url + f"/{T2V}", json={"prompt": "x"}).json()
    assert not server.running
    leftover = [t for t in set(threading.enumerate()) - before if t.is_alive()]
    assert leftover == []
    with pytest.raises(httpx.TransportError):
        httpx.get(sub["status_url"], timeout=1)


def test_stop_ends_open_streams_promptly(tmp_path: Any) -> None:
    server = LocalServer(port=0, data_dir=tmp_path, concurrency=1, step_seconds=0.05).start()
    blocker = httpx.post(server.url + f"/{T2V}", json=BLOCKER).json()
    queued = httpx.post(server.url + f"/{T2V}", json={"prompt": "waits"}).json()
    ended = threading.Event()

    def listen() -> None:
        with (
            contextlib.suppress(httpx.HTTPError),
            httpx.stream("GET", queued["status_url"] + "/stream") as response,
        ):
            for _ in response.iter_lines():
                pass
        ended.set()

    listener = threading.Thread(target=listen)
    listener.start()
    time.sleep(0.2)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1.5
    assert ended.wait(2)
    listener.join(2)
    assert blocker["request_id"] != queued["request_id"]
