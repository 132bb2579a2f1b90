"""The local server under load: concurrent status streams, status-poll rate, a long log.

- ``streams``: N status streams (``logs=0``) held open at once on running jobs, every one of
  them receiving its job's ``COMPLETED`` event; the server's memory before and after.
- ``polls``: status polls (``logs=1``, a finished job) from concurrent pollers for a fixed
  time: the rate the server answers (the pollers share the machine's cores with it), and the
  server's CPU per poll, which bounds the rate it could answer with a core to itself.
- ``long_log``: a job logging 10,000 lines (``--log-lines-per-step 200``, 50 steps, no step
  delay) followed live over the status stream by our client, and replayed after completion.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from ._common import ENDPOINT, ServerProcess, percentile, process_rss_mb, summary

__all__ = ["ServerSettings", "run_server_side"]


class ServerSettings:
    """Sizes of the server-side runs: the full run's defaults, or the CI smoke's."""

    def __init__(
        self,
        *,
        streams: int = 500,
        stream_jobs: int = 5,
        poll_seconds: float = 5.0,
        pollers: int = 4,
        log_lines_per_step: int = 200,
        log_steps: int = 50,
    ) -> None:
        self.streams = streams
        self.stream_jobs = stream_jobs
        self.poll_seconds = poll_seconds
        self.pollers = pollers
        self.log_lines_per_step = log_lines_per_step
        self.log_steps = log_steps

    @classmethod
    def quick(cls) -> ServerSettings:
        return cls(streams=20, stream_jobs=2, poll_seconds=0.5, pollers=2, log_lines_per_step=20)

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


async def _submit(http: httpx.AsyncClient, url: str, steps: int, seed: int) -> str:
    response = await http.post(
        f"{url}/{ENDPOINT}",
        json={"prompt": "server benchmark", "seed": seed, "num_inference_steps": steps},
    )
    response.raise_for_status()
    return str(response.json()["request_id"])


async def _hold_streams(url: str, settings: ServerSettings, server_pid: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    timeout = httpx.Timeout(120.0, connect=30.0)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as http:
        # Jobs long enough to open every stream while they run.
        ids = [await _submit(http, url, 50, seed) for seed in range(settings.stream_jobs)]
        rss_before = process_rss_mb(server_pid)
        opened = asyncio.Event()
        open_count = 0
        started = time.monotonic()
        open_times: list[float] = []

        async def follow(request_id: str) -> dict[str, Any]:
            nonlocal open_count
            stream_url = f"{url}/{ENDPOINT}/requests/{request_id}/status/stream"
            events = 0
            async with http.stream("GET", stream_url, params={"logs": "0"}) as response:
                response.raise_for_status()
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    events += 1
                    if events == 1:
                        open_count += 1
                        open_times.append(time.monotonic() - started)
                        if open_count == settings.streams:
                            opened.set()
                    if json.loads(line[5:])["status"] == "COMPLETED":
                        return {"request_id": request_id, "at": time.time(), "events": events}
            raise RuntimeError("the stream closed before COMPLETED")

        tasks = [asyncio.create_task(follow(ids[i % len(ids)])) for i in range(settings.streams)]
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(opened.wait(), 60)
        all_open_s = time.monotonic() - started
        rss_open = process_rss_mb(server_pid)
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        done = [o for o in outcomes if isinstance(o, dict)]
        errors = [f"{type(o).__name__}: {o}" for o in outcomes if not isinstance(o, dict)]
        completed_at = {
            rid: (await http.get(f"{url}/_local/requests/{rid}")).json()["completed_at"]
            for rid in ids
        }
    fan_out = [d["at"] - completed_at[d["request_id"]] for d in done]
    return {
        "streams": settings.streams,
        "jobs": len(ids),
        "opened": len(open_times),
        "completed": len(done),
        "errors": len(errors),
        "error_samples": errors[:3],
        "all_open_s": round(all_open_s, 3),
        "completion_fan_out_ms": summary(fan_out, 1000, 1),
        "server_rss_mb": {
            "before": rss_before and round(rss_before, 1),
            "with_streams_open": rss_open and round(rss_open, 1),
        },
    }


def _process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (Linux ``/proc``; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _poll_rate(url: str, settings: ServerSettings, server_pid: int) -> dict[str, Any]:
    """Pollers are threads with one kept-alive sync httpx client each (httpx's async stack
    costs the client several times more CPU per request, which would measure the client)."""
    with httpx.Client() as http:
        request_id = http.post(
            f"{url}/{ENDPOINT}", json={"prompt": "polled", "seed": 7, "num_inference_steps": 5}
        ).json()["request_id"]
        status_url = f"{url}/{ENDPOINT}/requests/{request_id}/status"
        while http.get(status_url).status_code != 200:
            time.sleep(0.05)
        log_lines = len(http.get(status_url, params={"logs": "1"}).json()["logs"])
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    stop_at = time.monotonic() + settings.poll_seconds

    def poller() -> None:
        nonlocal errors
        mine, failed = [], 0
        with httpx.Client() as client:
            while time.monotonic() < stop_at:
                start = time.perf_counter()
                response = client.get(status_url, params={"logs": "1"})
                mine.append(time.perf_counter() - start)
                failed += response.status_code != 200
        with lock:
            latencies.extend(mine)
            errors += failed

    cpu_before = _process_cpu_seconds(server_pid)
    started = time.monotonic()
    threads = [threading.Thread(target=poller) for _ in range(settings.pollers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    cpu_after = _process_cpu_seconds(server_pid)
    server_cpu = (
        cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
    )
    per_poll = server_cpu / len(latencies) if server_cpu and latencies else None
    return {
        "pollers": settings.pollers,
        "seconds": round(elapsed, 2),
        "polls": len(latencies),
        "errors": errors,
        "log_lines_per_answer": log_lines,
        "polls_per_second": round(len(latencies) / elapsed, 1),
        "latency_ms": {
            "median": round(percentile(latencies, 0.5) * 1000, 2),
            "p95": round(percentile(latencies, 0.95) * 1000, 2),
        },
        "server_cpu_ms_per_poll": round(per_poll * 1000, 3) if per_poll else None,
        "server_polls_per_cpu_second": round(1 / per_poll, 1) if per_poll else None,
    }


async def _long_log(url: str, settings: ServerSettings) -> dict[str, Any]:
    from ltx_jupyter import QueueClient

    async with QueueClient(queue_url=url) as client:
        started = time.monotonic()
        handle = await client.submit(
            ENDPOINT, {"prompt": "a long log", "num_inference_steps": settings.log_steps}
        )
        live_lines = 0
        events = 0
        async for status in client.stream_status(ENDPOINT, handle.request_id, logs=True):
            events += 1
            live_lines += len(status.logs or ())
        live_s = time.monotonic() - started
        record = (await client._http.get(f"{url}/_local/requests/{handle.request_id}")).json()
        replay_started = time.monotonic()
        replay_lines = 0
        async for status in client.stream_status(ENDPOINT, handle.request_id, logs=True):
            replay_lines += len(status.logs or ())
        replay_s = time.monotonic() - replay_started
        poll_started = time.monotonic()
        polled = await client.status(ENDPOINT, handle.request_id, logs=True)
        poll_s = time.monotonic() - poll_started
    return {
        "log_lines": record["log_count"],
        "live": {
            "lines": live_lines,
            "events": events,
            "submit_to_all_lines_s": round(live_s, 3),
            "engine_run_s": round(record["inference_time"], 3),
        },
        "replay_after_completion": {"lines": replay_lines, "seconds": round(replay_s, 3)},
        "one_status_poll_with_all_lines": {
            "lines": len(polled.logs or ()),
            "seconds": round(poll_s, 3),
        },
        "under_one_second": live_s < 1.0 and replay_s < 1.0,
    }


def run_server_side(settings: ServerSettings, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the server-side measurements and return their figures (JSON-ready)."""
    results: dict[str, Any] = {"settings": settings.to_json()}
    with ServerProcess("--step-seconds", "0.1", "--concurrency", "16") as server:
        log(f"server {server.url}: {settings.streams} status streams")
        results["streams"] = asyncio.run(_hold_streams(server.url, settings, server.pid))
        log(f"  status polls for {settings.poll_seconds} s")
        results["polls"] = _poll_rate(server.url, settings, server.pid)
    options = ["--step-seconds", "0", "--log-lines-per-step", str(settings.log_lines_per_step)]
    with ServerProcess(*options) as server:
        log(f"server {server.url}: one job's long log")
        results["long_log"] = asyncio.run(_long_log(server.url, settings))
    return results
