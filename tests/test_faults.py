"""200 jobs through a fault-injecting proxy, on each HTTP transport the package ships: every
result in hand, no duplicate submit, every log line exactly once, and every kind of fault in
the plan injected and survived.

The same plan against the official ``fal-client`` is a comparison, not a check of this
package: it runs in the benchmark (``python -m bench.run --only faults``, BENCHMARKS.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from ltx_jupyter import Completed, InProgress, QueueClient
from ltx_jupyter._schema import TEXT_TO_VIDEO, parse_output
from ltx_jupyter.server import LocalServer

from .faultproxy import FaultProxy, install_mixed_plan

JOBS = 200
SEED = 20240611
STEPS = 8
#: Jobs in flight at once (each holds a status stream or polls).
IN_FLIGHT = 50
#: A fast server: 8 steps of 10 ms and a 9-frame 64x64 clip, 8 jobs at a time; frequent pings.
FAST = {"step_seconds": 0.01, "concurrency": 8, "ping_interval": 0.5}
#: Stream faults that always break the stream (a cut may come after the last event, and a
#: client may resend a GET whose kept-alive connection was reset before it reached the server).
STREAM_BREAKERS = ("503", "502 (nginx page)", "429", "wrong content type", "stall")


def arguments(i: int) -> dict[str, Any]:
    return {"prompt": f"fault run job {i}", "seed": i, "num_inference_steps": STEPS}


def server_logs(server: LocalServer, request_id: str) -> list[str]:
    body = httpx.get(
        f"{server.url}/fal-ai/ltx-video/requests/{request_id}/status", params={"logs": 1}
    ).json()
    return [entry["message"] for entry in body["logs"]]


def server_submits(server: LocalServer) -> int:
    return int(httpx.get(f"{server.url}/_local/stats").json()["by_kind"]["submit"])


async def run_ours(proxy_url: str, jobs: int = JOBS) -> tuple[list[Any], dict[str, int]]:
    """Every job through our client; returns per job (request id, logs, output) or the error."""
    gate = asyncio.Semaphore(IN_FLIGHT)
    async with QueueClient(
        queue_url=proxy_url,
        request_timeout=2.0,
        stream_idle_timeout=2.0,
        poll_interval=0.1,
    ) as client:

        async def one(i: int) -> Any:
            async with gate:
                logs: list[str] = []
                request_id = None
                try:
                    async for update in client.subscribe(TEXT_TO_VIDEO, arguments(i), timeout=120):
                        request_id = update.request_id
                        if isinstance(update, (InProgress, Completed)):
                            logs += [entry.message for entry in update.logs]
                        if isinstance(update, Completed):
                            return request_id, logs, update.output
                except Exception as error:
                    return error
                return RuntimeError(f"job {i} ({request_id}) ended without a result")

        results = await asyncio.gather(*(one(i) for i in range(jobs)))
        return results, dict(client.stats)


@pytest.mark.timeout(400)
def test_two_hundred_jobs_under_a_mixed_fault_plan(
    server_factory: Callable[..., LocalServer], transport: str
) -> None:
    server = server_factory(**FAST)
    with FaultProxy(server.url, seed=SEED) as proxy:
        install_mixed_plan(proxy)
        results, stats = asyncio.run(run_ours(proxy.url))
    injected = dict(proxy.injected)

    # Every kind of fault in the plan reached the client, on every call it was planned for.
    missing = proxy.plan_kinds() - set(injected)
    assert not missing, f"never injected: {sorted(missing)}; injected: {injected}"

    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, f"{len(failures)} job(s) failed, first: {failures[0]!r}"
    request_ids = [r[0] for r in results]
    assert len(set(request_ids)) == JOBS
    # Zero duplicate submits: the server queued exactly one request per job.
    assert server_submits(server) == JOBS
    lost_or_repeated = []
    for request_id, logs, output in results:
        result = parse_output(output, request_id=request_id)
        assert f"/files/{request_id}/" in result.video.url
        # Every log line exactly once, in order: what the job saw is the server's whole log.
        if logs != server_logs(server, request_id):
            lost_or_repeated.append(request_id)
    assert not lost_or_repeated, f"{len(lost_or_repeated)} job(s) lost or repeated a log line"

    # Each refused submit was sent again (and queued once, above); each broken stream sent
    # its job to polling.
    submit_faults = sum(n for kind, n in injected.items() if kind.startswith("submit: "))
    assert stats["retries"] >= submit_faults, (stats, injected)
    broken_streams = sum(injected.get(f"stream: {kind}", 0) for kind in STREAM_BREAKERS)
    assert stats["stream_fallbacks"] >= broken_streams, (stats, injected)
