"""Malformed server answers: every one gives a clear error (or the client falls back to
polling and finishes), always within a bounded time, never a hang, on each HTTP transport the
package ships (the ``transport`` fixture).

The faults come from the loopback proxy in front of a real local server: the proxy answers the
chosen call itself (non-JSON, missing fields, invalid UTF-8, truncated, many megabytes, wrong
content type on the stream) and forwards every other one.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from ltx_jupyter import (
    Completed,
    HTTPError,
    JobSession,
    JobStatus,
    LtxError,
    ProtocolError,
    QueueClient,
    RetryPolicy,
    RunFailedError,
)
from ltx_jupyter._display import job_mimebundle
from ltx_jupyter._history import HistoryStore
from ltx_jupyter._schema import TEXT_TO_VIDEO, parse_output
from ltx_jupyter.server import LocalServer

from .faultproxy import FaultProxy

pytestmark = pytest.mark.timeout(90)

#: Every case must end within this many seconds.
BOUND = 30.0
MANY = 1000
SUBMIT = r"^/fal-ai/ltx-video$"
STATUS = r"/requests/[^/]+/status(\?|$)"
STREAM = r"/status/stream"
RESULT = r"/requests/[^/?]+(\?|$)"
HUGE = 24 * 1024 * 1024
ARGS = {"prompt": "malformed", "num_inference_steps": 2}


def client_for(url: str, *, stream: bool) -> QueueClient:
    return QueueClient(
        queue_url=url,
        stream=stream,
        poll_interval=0.05,
        request_timeout=2.0,
        stream_idle_timeout=2.0,
        retry=RetryPolicy(max_attempts=3, base=0.01, cap=0.05),
    )


def run_through(
    server: LocalServer, rule: dict[str, Any], *, stream: bool = False
) -> tuple[Any, dict[str, int], float]:
    """Run one job through a proxy holding ``rule``: (output or error, client stats, seconds)."""
    with FaultProxy(server.url) as proxy:
        proxy.add(**rule)

        async def main() -> tuple[Any, dict[str, int]]:
            async with client_for(proxy.url, stream=stream) as client:
                try:
                    outcome: Any = await asyncio.wait_for(
                        client.run(TEXT_TO_VIDEO, ARGS, timeout=BOUND), BOUND + 5
                    )
                except Exception as error:
                    outcome = error
                return outcome, dict(client.stats)

        started = time.monotonic()
        outcome, stats = asyncio.run(main())
        elapsed = time.monotonic() - started
    assert proxy.injected, "the fault was not injected"
    return outcome, stats, elapsed


NOT_JSON = b"<html><body><h1>It works!</h1></body></html>"

CLEAR_ERRORS: list[tuple[str, dict[str, Any], type, str | tuple[str, ...]]] = [
    # (case, rule, expected error type, words the message must hold)
    (
        "submit: HTML instead of JSON",
        {"action": "garbage", "path": SUBMIT, "status": 200, "body": NOT_JSON},
        ProtocolError,
        "not JSON",
    ),
    (
        "submit: a JSON list",
        {"action": "garbage", "path": SUBMIT, "status": 200, "body": b"[1, 2]"},
        ProtocolError,
        "request_id",
    ),
    (
        "submit: no request_id",
        {"action": "garbage", "path": SUBMIT, "status": 200, "body": b'{"status": "IN_QUEUE"}'},
        ProtocolError,
        "request_id",
    ),
    (
        "submit: a request_id that is a path",
        {
            "action": "garbage",
            "path": SUBMIT,
            "status": 200,
            "body": b'{"request_id": "../../../etc/passwd", "status": "IN_QUEUE"}',
        },
        ProtocolError,
        "not an id",
    ),
    (
        "submit: invalid UTF-8",
        {"action": "invalid_utf8", "path": SUBMIT, "status": 200},
        ProtocolError,
        "not JSON",
    ),
    (
        "submit: 24 MiB of non-JSON",
        {"action": "huge", "path": SUBMIT, "status": 200, "size": HUGE, "body": b"x"},
        ProtocolError,
        f"{HUGE} bytes",
    ),
    (
        "submit: 502 with an HTML page",
        {"action": "garbage", "path": SUBMIT, "status": 502, "body": NOT_JSON},
        HTTPError,
        "HTTP 502",
    ),
    (
        "status: HTML instead of JSON",
        {"action": "garbage", "path": STATUS, "status": 200, "body": NOT_JSON, "times": MANY},
        ProtocolError,
        "not JSON",
    ),
    (
        "status: an empty object",
        {"action": "garbage", "path": STATUS, "status": 200, "body": b"{}", "times": MANY},
        ProtocolError,
        "malformed",
    ),
    (
        "status: an unknown status",
        {
            "action": "garbage",
            "path": STATUS,
            "status": 200,
            "body": b'{"status": "FAILED"}',
            "times": MANY,
        },
        ProtocolError,
        "FAILED",
    ),
    (
        "status: invalid UTF-8",
        {"action": "invalid_utf8", "path": STATUS, "status": 200, "times": MANY},
        ProtocolError,
        "not JSON",
    ),
    (
        "status: 24 MiB of non-JSON",
        {"action": "huge", "path": STATUS, "status": 200, "size": HUGE, "body": b"{"},
        ProtocolError,
        "not JSON",
    ),
    (
        "status: truncated every time",
        {"action": "truncated", "path": STATUS, "status": 200, "size": 500, "times": MANY},
        httpx.RemoteProtocolError,
        ("closed", "connection", "complete", "body"),
    ),
    (
        "status: never answers",
        {"action": "stall", "path": STATUS, "seconds": 60.0, "times": MANY},
        httpx.ReadTimeout,
        "timed out waiting for 127.0.0.1 to answer",
    ),
    (
        "result: HTML instead of JSON",
        {"action": "garbage", "path": RESULT, "method": "GET", "status": 200, "body": NOT_JSON},
        ProtocolError,
        "not JSON",
    ),
    (
        "result: a JSON list",
        {"action": "garbage", "path": RESULT, "method": "GET", "status": 200, "body": b"[]"},
        ProtocolError,
        "not a JSON object",
    ),
    (
        "result: 24 MiB of non-JSON",
        {
            "action": "huge",
            "path": RESULT,
            "method": "GET",
            "status": 200,
            "size": HUGE,
            "body": b"\xff",
        },
        ProtocolError,
        "not JSON",
    ),
    (
        "result: truncated every time",
        {
            "action": "truncated",
            "path": RESULT,
            "method": "GET",
            "status": 200,
            "size": 10,
            "times": MANY,
        },
        httpx.RemoteProtocolError,
        ("closed", "connection", "complete", "body"),
    ),
    (
        "result: a 500 with an HTML page",
        {"action": "garbage", "path": RESULT, "method": "GET", "status": 500, "body": NOT_JSON},
        RunFailedError,
        "It works!",
    ),
]


@pytest.mark.parametrize(
    ("rule", "error_type", "words"),
    [pytest.param(rule, kind, words, id=case) for case, rule, kind, words in CLEAR_ERRORS],
)
def test_a_malformed_answer_is_a_clear_error_in_bounded_time(
    local_server: LocalServer,
    transport: str,
    rule: dict[str, Any],
    error_type: type,
    words: str | tuple[str, ...],
) -> None:
    outcome, _, elapsed = run_through(local_server, rule)
    assert isinstance(outcome, error_type), repr(outcome)
    message = str(outcome)
    for word in (words,) if isinstance(words, str) else words:
        assert word.lower() in message.lower(), message
    assert elapsed < BOUND
    # The message is one readable line of bounded size, however large the body was.
    assert len(message) < 2000 and "\n" not in message.strip()


STREAM_FALLBACKS = [
    (
        "stream: answered as application/json",
        {"action": "wrong_type", "path": STREAM, "status": 200},
    ),
    (
        "stream: events that are not JSON",
        {
            "action": "garbage",
            "path": STREAM,
            "status": 200,
            "content_type": "text/event-stream",
            "body": b"data: {not json\n\ndata: <html>\n\n",
        },
    ),
    (
        "stream: closes before completion",
        {
            "action": "garbage",
            "path": STREAM,
            "status": 200,
            "content_type": "text/event-stream",
            "body": b'data: {"status": "IN_PROGRESS", "logs": []}\n\n',
        },
    ),
    (
        "stream: invalid UTF-8",
        {
            "action": "garbage",
            "path": STREAM,
            "status": 200,
            "content_type": "text/event-stream",
            "body": b'data: {"status": "IN_PROGRESS", "logs": [{"message": "\xff\xfe"}]}\n\n',
        },
    ),
    (
        "stream: 24 MiB on one line",
        {
            "action": "huge",
            "path": STREAM,
            "status": 200,
            "content_type": "text/event-stream",
            "size": HUGE,
            "body": b"data: x",
        },
    ),
    (
        "stream: truncated",
        {
            "action": "truncated",
            "path": STREAM,
            "status": 200,
            "content_type": "text/event-stream",
            "size": 100,
            "body": b'data: {"status": "IN_QUEUE", "queue_position": 0}\n\n',
        },
    ),
    ("stream: 404", {"action": "status", "path": STREAM, "status": 404}),
    ("stream: 500", {"action": "status", "path": STREAM, "status": 500}),
]


@pytest.mark.parametrize("rule", [pytest.param(rule, id=case) for case, rule in STREAM_FALLBACKS])
def test_a_malformed_stream_falls_back_to_polling_and_finishes(
    local_server: LocalServer, transport: str, rule: dict[str, Any]
) -> None:
    outcome, stats, elapsed = run_through(local_server, rule, stream=True)
    if rule.get("status") == 404:
        # A 404 on the stream means the request is unknown: that is an answer, not a glitch.
        assert isinstance(outcome, HTTPError) and outcome.status_code == 404
        return
    assert isinstance(outcome, dict), repr(outcome)
    assert outcome["video"]["url"]
    assert stats["stream_fallbacks"] == 1
    assert elapsed < BOUND


def test_a_result_whose_video_url_is_not_http_fails_the_job_clearly(
    local_server: LocalServer, transport: str, tmp_path: Path
) -> None:
    session = JobSession(history=HistoryStore(tmp_path / "history.jsonl"))
    try:
        with FaultProxy(local_server.url) as proxy:
            proxy.add(
                "garbage",
                path=RESULT,
                method="GET",
                status=200,
                body=b'{"video": {"url": "javascript:alert(document.cookie)"}, "seed": 1}',
            )
            job = session.start(TEXT_TO_VIDEO, ARGS, queue_url=proxy.url)
            with pytest.raises(ProtocolError, match="not an http"):
                job.wait(BOUND)
        assert job.status == JobStatus.FAILED
        assert job.request_id is not None
        assert job.request_id in (tmp_path / "history.jsonl").read_text()
        data, _ = job_mimebundle(job)
        assert "text/html" not in data  # no player for that URL
    finally:
        session.close()


@pytest.mark.parametrize(
    "output",
    [
        [],
        {},
        {"video": None},
        {"video": {"url": 3}},
        {"video": {"url": "javascript:alert(1)"}},
        {"video": {"url": "file:///etc/passwd"}},
        {"video": {"url": " https://x.example/a.mp4"}},
        {"video": {"url": "https://x.example/a\n.mp4"}},
        {"video": {"url": "data:text/html,<script>alert(1)</script>"}},
        {"video": {"url": "//evil.example/a.mp4"}},
    ],
)
def test_parse_output_refuses_malformed_results(output: Any) -> None:
    with pytest.raises(ProtocolError):
        parse_output(output, request_id="r1")


def test_well_formed_results_parse() -> None:
    for url in ("https://v3.fal.media/files/a/b.mp4", "http://127.0.0.1:8000/files/x/video.mp4"):
        assert parse_output({"video": {"url": url}, "seed": "not an int"}).seed is None
    assert parse_output({"video": {"url": "data:video/mp4;base64,AAAA"}}).url.startswith("data:")


def test_the_error_of_a_malformed_answer_is_an_ltx_error_with_the_request(
    local_server: LocalServer, transport: str
) -> None:
    rule = {"action": "garbage", "path": STATUS, "status": 200, "body": b"{}", "times": MANY}
    outcome, _, _ = run_through(local_server, rule)
    assert isinstance(outcome, LtxError) and isinstance(outcome, ProtocolError)
    assert outcome.request_id and outcome.request_id in str(outcome)


def test_a_well_formed_run_still_completes(local_server: LocalServer, transport: str) -> None:
    async def main() -> Any:
        async with client_for(local_server.url, stream=True) as client:
            return [u async for u in client.subscribe(TEXT_TO_VIDEO, ARGS, timeout=BOUND)]

    assert isinstance(asyncio.run(main())[-1], Completed)
