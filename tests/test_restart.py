"""The local server killed (SIGKILL) and started again on the same port and data directory
mid-job: no request is lost, the client rides out the outage, and ``%ltx resume`` finishes a
request after a kernel restart."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from ltx_jupyter import Completed, InProgress, JobStatus, QueueClient
from ltx_jupyter._schema import TEXT_TO_VIDEO

T2V = TEXT_TO_VIDEO


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve_command() -> list[str]:
    script = Path(sys.executable).with_name("ltx-jupyter")
    if script.exists():
        return [str(script), "serve"]
    return [sys.executable, "-m", "ltx_jupyter.server", "serve"]


class ServeProcess:
    """``ltx-jupyter serve`` in a subprocess, on a fixed port and data directory."""

    def __init__(self, data_dir: Path, port: int, *options: str) -> None:
        self.data_dir = data_dir
        self.port = port
        self.options = options
        self.process: subprocess.Popen[str] | None = None
        self.url = f"http://127.0.0.1:{port}"

    def start(self, timeout: float = 30.0) -> ServeProcess:
        command = [
            *_serve_command(),
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--log-level",
            "warning",
            "--width",
            "64",
            "--height",
            "64",
            "--frames",
            "9",
            *self.options,
        ]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        assert line == f"LTX_QUEUE_URL={self.url}", line
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not answer /health"
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when the machine or the process dies."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    started: list[ServeProcess] = []

    def make(*options: str) -> ServeProcess:
        server = ServeProcess(tmp_path / "data", _free_port(), *options)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def local_request(url: str, request_id: str) -> dict[str, Any]:
    return httpx.get(f"{url}/_local/requests/{request_id}", timeout=5).json()


def wait_completed(url: str, request_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        state = local_request(url, request_id)
        if state["state"] == "COMPLETED":
            return state
        assert time.monotonic() < deadline, state
        time.sleep(0.05)


@pytest.mark.timeout(180)
def test_a_killed_server_restarts_with_its_queue_and_the_client_finishes_the_job(serve):
    server = serve("--concurrency", "1", "--step-seconds", "0.05").start()
    url = server.url
    done = httpx.post(f"{url}/{T2V}", json={"prompt": "finished before", "num_inference_steps": 2})
    done_id = done.json()["request_id"]
    wait_completed(url, done_id)
    done_output = httpx.get(f"{url}/{T2V}/requests/{done_id}").json()

    async def scenario() -> tuple[list[Any], dict[str, int], str]:
        async with QueueClient(queue_url=url, poll_interval=0.1) as client:
            updates: list[Any] = []
            reached_step_5 = asyncio.Event()

            async def follow() -> None:
                arguments = {"prompt": "outlives its server", "seed": 3, "num_inference_steps": 40}
                async for update in client.subscribe(T2V, arguments, timeout=90):
                    updates.append(update)
                    if isinstance(update, InProgress) and any(
                        e.message == "step 5/40" for e in update.logs
                    ):
                        reached_step_5.set()

            task = asyncio.create_task(follow())
            await asyncio.wait_for(reached_step_5.wait(), 30)
            # A second request waits behind the running one when the server dies.
            queued = await client.submit(T2V, {"prompt": "queued", "num_inference_steps": 2})
            await asyncio.to_thread(server.kill)
            await asyncio.sleep(0.5)  # the outage: connections are refused meanwhile
            await asyncio.to_thread(server.start)
            await asyncio.wait_for(task, 90)
            return updates, dict(client.stats), queued.request_id

    updates, stats, queued_id = asyncio.run(scenario())
    assert isinstance(updates[-1], Completed)
    running_id = updates[-1].request_id
    assert stats["stream_fallbacks"] >= 1 and stats["retries"] >= 1
    # The run started again from the beginning; the job still saw every step exactly once.
    steps = [
        e.message
        for u in updates
        if isinstance(u, (InProgress, Completed))
        for e in u.logs
        if e.message.startswith("step ")
    ]
    assert steps == [f"step {i}/40" for i in range(1, 41)]
    video = httpx.get(updates[-1].output["video"]["url"])
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"

    # The queued request ran after the interrupted one, in its old order.
    queued = wait_completed(url, queued_id)
    running = local_request(url, running_id)
    assert queued["error"] is None and running["error"] is None
    assert queued["started_at"] >= running["started_at"]
    # The request completed before the crash kept its result and its file.
    assert httpx.get(f"{url}/{T2V}/requests/{done_id}").json() == done_output
    assert httpx.get(done_output["video"]["url"]).content[4:8] == b"ftyp"
    assert httpx.get(f"{url}/_local/stats").json()["by_kind"]["submit"] == 0, (
        "the restarted server was sent no submit: nothing was resubmitted"
    )


@pytest.mark.timeout(180)
def test_a_graceful_restart_reruns_the_running_request_instead_of_failing_it(serve):
    server = serve("--concurrency", "1", "--step-seconds", "0.05").start()
    sub = httpx.post(f"{server.url}/{T2V}", json={"prompt": "x", "num_inference_steps": 40})
    request_id = sub.json()["request_id"]
    deadline = time.monotonic() + 20
    while local_request(server.url, request_id)["log_count"] < 5:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    server.stop()  # SIGTERM: uvicorn shuts down, the engine is told to stop
    server.start()
    state = wait_completed(server.url, request_id)
    assert state["error"] is None, state


@pytest.fixture
def fresh_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ltx_shell: Callable[..., Any]
) -> Callable[..., Any]:
    """Shells in a temporary folder with their own history and no credentials."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LTX_HISTORY_FILE", str(tmp_path / "history.jsonl"))
    for name in ("FAL_KEY", "FAL_KEY_ID", "FAL_KEY_SECRET"):
        monkeypatch.delenv(name, raising=False)
    return ltx_shell


@pytest.mark.timeout(180)
def test_resume_after_a_kernel_restart_and_a_server_restart(serve, fresh_shell):
    server = serve("--step-seconds", "0.05").start()
    shell = fresh_shell(server.url)
    job = shell.run_line_magic("ltx", "--no-wait --seed 8 --steps 40 a lighthouse in a storm")
    deadline = time.monotonic() + 20
    while not (job.request_id and len(job.logs) >= 5):
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
    request_id = job.request_id

    # Both die: the server is killed, and the kernel restarts (its extension and worker go).
    server.kill()
    shell.run_line_magic("unload_ext", "ltx_jupyter")
    assert job.status == JobStatus.DETACHED
    InteractiveShell.clear_instance()
    server.start()

    fresh = fresh_shell(server.url)
    with capture_output() as captured:
        resumed = fresh.run_line_magic("ltx", f"resume {request_id[:8]} --wait")
    assert resumed.request_id == request_id
    assert resumed.status == JobStatus.COMPLETED, captured.stdout
    assert resumed.result is not None and resumed.result.seed == 8
    steps = [e.message for e in resumed.logs if e.message.startswith("step ")]
    assert steps == [f"step {i}/40" for i in range(1, 41)]
    assert request_id in (Path(os.getcwd()) / "history.jsonl").read_text()
