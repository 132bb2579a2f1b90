"""Servers that answer like fal but mean harm, or simply break, for the reliability tests.

:class:`HostileServer` speaks fal's queue protocol (submit, status, status stream, result,
cancel, storage) and answers what its test scripts: an account error for every submit, or, per
request, a scenario picked by a word in the prompt (``logs``, ``error``, ``js-url``,
``data-url``, ``attr-url``, ``http-error``) whose logs, errors, file names and video URLs carry
script. Its storage and its submit answers point at another server (``elsewhere``), as a
compromised or confused server could. :class:`RecordingServer` is that other server: it answers
anything (a real MP4 for GETs) and records every request it gets, headers included.

Both run uvicorn on a loopback port in a thread, like the local server.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ltx_jupyter.server.local import bind_socket

__all__ = ["PAYLOADS", "XSS_MARK", "HostileServer", "Recorded", "RecordingServer", "tiny_mp4"]

#: What an injected script would do if it ran: a dialog the browser tests catch.
XSS_MARK = "ltx-xss"
#: Script in the shapes a server could send it: element, script, attribute-context, SVG, and
#: a tag that closes the markup around it first.
PAYLOADS = {
    "tag": f"<img src=x onerror=alert('{XSS_MARK}')>",
    "script": f"<script>alert('{XSS_MARK}')</script>",
    "attr": f'" onmouseover="alert(\'{XSS_MARK}\')" x="',
    "svg": f"<svg/onload=alert('{XSS_MARK}')>",
    "close": f"</pre></div><iframe src=javascript:alert('{XSS_MARK}')></iframe>",
}


def tiny_mp4() -> bytes:
    """A real, playable 32x32 H.264 MP4 of a few frames."""
    import tempfile

    import numpy as np

    from ltx_jupyter.server.video import write_mp4

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.mp4"
        frames = (np.full((32, 32, 3), 40 * i, np.uint8) for i in range(6))
        write_mp4(frames, path, 6)
        return path.read_bytes()


@dataclass
class Recorded:
    """One request a server received."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


class _Threaded:
    """A Starlette app served by uvicorn on a loopback port, on a daemon thread."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> Starlette:
        raise NotImplementedError

    async def record(self, request: Request) -> Recorded:
        body = await request.body()
        entry = Recorded(
            request.method,
            request.url.path,
            request.url.query,
            {k.lower(): v for k, v in request.headers.items()},
            body,
        )
        self.requests.append(entry)
        return entry

    def start(self) -> _Threaded:
        sock = bind_socket("127.0.0.1", 0)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app(), log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        server = self._server
        self._thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> _Threaded:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class RecordingServer(_Threaded):
    """Answers every request (a real MP4 for a GET, ``{}`` otherwise) and records it."""

    def __init__(self) -> None:
        super().__init__()
        self.video = tiny_mp4()

    def app(self) -> Starlette:
        async def anything(request: Request) -> Response:
            await self.record(request)
            if request.method == "GET":
                return Response(self.video, media_type="video/mp4")
            return JSONResponse({})

        methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
        return Starlette(routes=[Route("/{path:path}", anything, methods=methods)])


@dataclass
class _Request:
    request_id: str
    scenario: str
    polls: int = 0
    cancelled: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class HostileServer(_Threaded):
    """fal's queue protocol with scripted answers (see the module docstring).

    ``submit_answer``: ``(status, body, headers)`` given to every submit instead of queueing it
    (fal's account errors). ``elsewhere``: the base URL its storage and submit answers point
    at (default: itself). ``steps``: log lines before completion.
    """

    def __init__(
        self,
        *,
        submit_answer: tuple[int, Any, dict[str, str]] | None = None,
        elsewhere: str | None = None,
        steps: int = 3,
    ) -> None:
        super().__init__()
        self.submit_answer = submit_answer
        self.elsewhere = elsewhere
        self.steps = steps
        self.video = tiny_mp4()
        self.jobs: dict[str, _Request] = {}

    @property
    def submits(self) -> int:
        """Submits received (each one a paid request at fal)."""
        return sum(1 for r in self.requests if r.method == "POST" and "/storage/" not in r.path)

    def _other(self) -> str:
        return self.elsewhere or self.url

    # -- what each scenario answers ---------------------------------------------------------

    def _logs(self, job: _Request) -> list[dict[str, Any]]:
        if job.scenario != "logs":
            steps = range(1, self.steps + 1)
            return [{"message": f"step {i}/{self.steps}", "level": "INFO"} for i in steps]
        lines = [f"step 1/{self.steps} {PAYLOADS['tag']}"]
        lines += [f"{name}: {payload}" for name, payload in PAYLOADS.items()]
        lines.append(f"\x1b[31mred {PAYLOADS['script']}\x1b[0m\rredrawn {PAYLOADS['attr']}")
        return [{"message": line, "level": "INFO", "source": PAYLOADS["svg"]} for line in lines]

    def _video_url(self, job: _Request) -> str:
        if job.scenario == "js-url":
            return f"javascript:alert('{XSS_MARK}')"
        if job.scenario == "data-url":
            return f"data:text/html,<script>alert('{XSS_MARK}')</script>"
        if job.scenario == "attr-url":
            # Passes as an http URL (no space): only escaping keeps it in its attribute.
            return f'{self.url}/files/clip.mp4"onmouseover="alert(\'{XSS_MARK}\')"x="'
        return f"{self._other()}/files/{job.request_id}/clip.mp4"

    def _status(self, job: _Request, logs: bool) -> dict[str, Any]:
        done = job.polls >= 1
        body: dict[str, Any] = {
            "status": "COMPLETED" if done else "IN_PROGRESS",
            "request_id": job.request_id,
            "response_url": f"{self._other()}/fal-ai/ltx-video/requests/{job.request_id}",
        }
        if logs:
            body["logs"] = self._logs(job)
        if done and job.scenario == "error":
            body["error"] = f"{PAYLOADS['tag']} {PAYLOADS['attr']} {PAYLOADS['close']}"
            body["error_type"] = PAYLOADS["svg"]
        if done:
            body["metrics"] = {"inference_time": 0.1}
        return body

    # -- routes -----------------------------------------------------------------------------

    def app(self) -> Starlette:
        async def submit(request: Request) -> Response:
            await self.record(request)
            if self.submit_answer is not None:
                status, body, headers = self.submit_answer
                # "{authorization}" in the answer echoes the header back, as a careless
                # server's error might.
                text = json.dumps(body).replace(
                    "{authorization}", request.headers.get("authorization", "")
                )
                return JSONResponse(json.loads(text), status_code=status, headers=headers)
            data = json.loads(self.requests[-1].body or b"{}")
            prompt = str(data.get("prompt", ""))
            scenario = next(
                (
                    s
                    for s in ("http-error", "js-url", "data-url", "attr-url", "logs", "error")
                    if s in prompt
                ),
                "plain",
            )
            if scenario == "http-error":
                detail = [{"loc": ["body", PAYLOADS["tag"]], "msg": PAYLOADS["attr"], "type": "x"}]
                return JSONResponse({"detail": detail}, status_code=422)
            request_id = str(uuid.uuid4())
            self.jobs[request_id] = _Request(request_id, scenario)
            base = f"{self._other()}/fal-ai/ltx-video/requests/{request_id}"
            return JSONResponse(
                {
                    "status": "IN_QUEUE",
                    "request_id": request_id,
                    "queue_position": 0,
                    "response_url": base,
                    "status_url": f"{base}/status",
                    "cancel_url": f"{base}/cancel",
                }
            )

        def find(request: Request) -> _Request | None:
            return self.jobs.get(request.path_params["request_id"])

        async def status(request: Request) -> Response:
            await self.record(request)
            job = find(request)
            if job is None:
                return JSONResponse({"detail": "Request not found"}, status_code=404)
            body = self._status(job, request.query_params.get("logs") == "1")
            job.polls += 1
            return JSONResponse(body, status_code=200 if body["status"] == "COMPLETED" else 202)

        async def stream(request: Request) -> Response:
            await self.record(request)
            job = find(request)
            if job is None:
                return JSONResponse({"detail": "Request not found"}, status_code=404)
            logs = request.query_params.get("logs") == "1"

            async def events() -> Any:
                first = self._status(job, logs)
                job.polls += 1
                yield f"data: {json.dumps(first)}\n\n"
                await asyncio.sleep(0.05)
                last = self._status(job, logs)
                last["logs"] = [] if logs else None
                yield f"data: {json.dumps(last)}\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")

        async def result(request: Request) -> Response:
            await self.record(request)
            job = find(request)
            if job is None:
                return JSONResponse({"detail": "Request not found"}, status_code=404)
            return JSONResponse(
                {
                    "video": {
                        "url": self._video_url(job),
                        "content_type": "video/mp4",
                        "file_name": f"{PAYLOADS['tag']}.mp4",
                        "file_size": len(self.video),
                    },
                    "seed": 7,
                    "prompt": PAYLOADS["script"],
                }
            )

        async def cancel(request: Request) -> Response:
            await self.record(request)
            job = find(request)
            if job is not None:
                job.cancelled = True
            return JSONResponse({"status": "CANCELLATION_REQUESTED"}, status_code=202)

        async def initiate(request: Request) -> Response:
            await self.record(request)
            name = uuid.uuid4().hex
            return JSONResponse(
                {
                    "upload_url": f"{self._other()}/upload/{name}?signature=abc",
                    "file_url": f"{self._other()}/files/{name}/image.jpg",
                }
            )

        async def files(request: Request) -> Response:
            await self.record(request)
            return Response(self.video, media_type="video/mp4")

        requests = "/{owner}/{alias}/requests/{request_id}"
        return Starlette(
            routes=[
                Route("/storage/upload/initiate", initiate, methods=["POST"]),
                Route("/files/{path:path}", files, methods=["GET"]),
                Route(f"{requests}/status/stream", stream, methods=["GET"]),
                Route(f"{requests}/status", status, methods=["GET"]),
                Route(f"{requests}/cancel", cancel, methods=["PUT"]),
                Route(requests, result, methods=["GET"]),
                Route("/{endpoint:path}", submit, methods=["POST"]),
            ]
        )
