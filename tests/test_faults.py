"""200 jobs through a fault-injecting proxy: every result in hand, no duplicate submit, every
log line exactly once. The same fault plan against the official ``fal-client``, for comparison.

The table of the run is printed and written to ``test-artifacts/fault-run.txt`` (BENCHMARKS.md
records it under "Fault run")::

    python -m pytest -q -s tests/test_faults.py
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fal_client
import fal_client.client as fal_module
import httpx
import pytest

from ltx_jupyter import Completed, InProgress, QueueClient
from ltx_jupyter._schema import TEXT_TO_VIDEO, parse_output
from ltx_jupyter.server import LocalServer

from .faultproxy import FaultProxy, Rule, fault

JOBS = 200
#: Share of the requests of each kind that the plan answers with a fault.
FAULT_RATE = 0.2
SEED = 20240611
STEPS = 8
#: Jobs in flight at once (each holds a status stream or polls).
IN_FLIGHT = 50
ARTIFACT = Path(__file__).resolve().parent.parent / "test-artifacts" / "fault-run.txt"

# A fast server: 8 steps of 10 ms and a 9-frame 64x64 clip, 8 jobs at a time; frequent pings.
FAST = {"step_seconds": 0.01, "concurrency": 8, "ping_interval": 0.5}

_NGINX = (
    "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{code} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def _nginx(code: int, reason: str) -> Rule:
    body = _NGINX.format(code=code, reason=reason).encode()
    return fault(
        "status", status=code, body=body, content_type="text/html", label=f"{code} (nginx page)"
    )


def install_plan(proxy: FaultProxy) -> None:
    """The mixed plan: about a fifth of the requests of every kind fail.

    Submits only get the refusals an ingress sends before queueing (429 with Retry-After,
    503): a drop after a submit was sent is ambiguous, and no client may resend it (that
    case has its own test in test_client.py). Status streams, polls and result reads get
    everything: 429, 500, 502, 503, 504, resets, stalls past the client's timeout, cut
    streams, truncated bodies and a stream answered with the wrong content type.
    """
    proxy.mix(
        FAULT_RATE,
        [
            (3, fault("status", status=429, headers={"Retry-After": "0"}, label="429")),
            (1, fault("status", status=429, headers={"Retry-After": "1"}, label="429")),
            (2, fault("status", status=503, label="503")),
            (1, _nginx(503, "Service Temporarily Unavailable")),
        ],
        path=r"^/fal-ai/ltx-video$",
        method="POST",
    )
    proxy.mix(
        FAULT_RATE,
        [
            (2, fault("cut_stream", events=1, label="stream cut")),
            (2, fault("cut_stream", events=2, label="stream cut")),
            (1, fault("cut_stream", events=3, label="stream cut")),
            (1, fault("reset")),
            (1, fault("status", status=503, label="503")),
            (1, _nginx(502, "Bad Gateway")),
            (1, fault("status", status=429, headers={"Retry-After": "0"}, label="429")),
            (1, fault("wrong_type", status=200, label="stream wrong content type")),
            (1, fault("stall", seconds=2.5, label="stall")),
        ],
        path=r"/status/stream",
    )
    read_faults: list[tuple[float, Rule]] = [
        (2, fault("reset")),
        (1, fault("status", status=500, label="500")),
        (1, _nginx(502, "Bad Gateway")),
        (1, fault("status", status=503, label="503")),
        (1, _nginx(504, "Gateway Time-out")),
        (1, fault("status", status=429, headers={"Retry-After": "0"}, label="429")),
        (1, fault("truncated", status=200, size=200, label="truncated body")),
        (1, fault("stall", seconds=2.5, label="stall")),
    ]
    proxy.mix(FAULT_RATE, read_faults, path=r"/requests/[^/]+/status(\?|$)", method="GET")
    # A 500 on a result read is a failed run in fal's protocol, so result reads get the others.
    result_faults = [(w, r) for w, r in read_faults if r.status != 500 or r.action != "status"]
    proxy.mix(FAULT_RATE, result_faults, path=r"/requests/[^/?]+(\?|$)", method="GET")


def arguments(i: int) -> dict[str, Any]:
    return {"prompt": f"fault run job {i}", "seed": i, "num_inference_steps": STEPS}


def server_logs(server: LocalServer, request_id: str) -> list[str]:
    body = httpx.get(
        f"{server.url}/fal-ai/ltx-video/requests/{request_id}/status", params={"logs": 1}
    ).json()
    return [entry["message"] for entry in body["logs"]]


def server_submits(server: LocalServer) -> int:
    return int(httpx.get(f"{server.url}/_local/stats").json()["by_kind"]["submit"])


async def run_ours(proxy_url: str) -> tuple[list[Any], dict[str, int]]:
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

        results = await asyncio.gather(*(one(i) for i in range(JOBS)))
        return results, dict(client.stats)


async def run_fal_client(key: str) -> list[Any]:
    """Every job through fal-client's AsyncClient.subscribe (it polls every 0.1 s)."""
    gate = asyncio.Semaphore(IN_FLIGHT)
    client = fal_client.AsyncClient(key=key)

    async def one(i: int) -> Any:
        async with gate:
            try:
                return await asyncio.wait_for(
                    client.subscribe(TEXT_TO_VIDEO, arguments(i), with_logs=True), 120
                )
            except Exception as error:
                return error

    return await asyncio.gather(*(one(i) for i in range(JOBS)))


def _table(rows: list[tuple[str, str]]) -> list[str]:
    width = max(len(name) for name, _ in rows)
    return [f"| {name.ljust(width)} | {value} |" for name, value in rows]


@pytest.mark.timeout(400)
def test_two_hundred_jobs_under_a_mixed_fault_plan(
    server_factory: Callable[..., LocalServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    ours_server = server_factory(**FAST)
    started = time.monotonic()
    with FaultProxy(ours_server.url, seed=SEED) as proxy:
        install_plan(proxy)
        results, stats = asyncio.run(run_ours(proxy.url))
    ours_seconds = time.monotonic() - started
    ours_faults = Counter(proxy.injected)
    through_proxy = sum(proxy.requests.values())

    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, f"{len(failures)} job(s) failed, first: {failures[0]!r}"
    request_ids = [r[0] for r in results]
    assert len(set(request_ids)) == JOBS
    # Zero duplicate submits: the server queued exactly one request per job.
    assert server_submits(ours_server) == JOBS
    lost_or_repeated = 0
    for request_id, logs, output in results:
        result = parse_output(output, request_id=request_id)
        assert f"/files/{request_id}/" in result.video.url
        # Every log line exactly once, in order: what the job saw is the server's whole log.
        if logs != server_logs(ours_server, request_id):
            lost_or_repeated += 1
    assert lost_or_repeated == 0
    assert stats["retries"] > 0 and stats["stream_fallbacks"] > 0

    # The same plan (same seed) against the official client, on a fresh server.
    key = "fault-run-key"
    fal_server = server_factory(**FAST)
    started = time.monotonic()
    with FaultProxy(fal_server.url, seed=SEED) as fal_proxy:
        install_plan(fal_proxy)
        monkeypatch.setattr(fal_module, "QUEUE_URL_FORMAT", fal_proxy.url + "/")
        monkeypatch.setattr(fal_module, "REST_URL", fal_proxy.url)
        fal_results = asyncio.run(run_fal_client(key))
    fal_seconds = time.monotonic() - started
    fal_failed = [r for r in fal_results if isinstance(r, BaseException)]
    fal_kinds = Counter(_failure_kind(e) for e in fal_failed)
    fal_submits = server_submits(fal_server)

    kinds = sorted(set(ours_faults) | set(fal_proxy.injected))
    rows = [
        ("jobs", f"{JOBS} (8 steps each; {IN_FLIGHT} in flight; fault rate {FAULT_RATE:.0%})"),
        ("requests through the proxy (ltx-jupyter)", str(through_proxy)),
        ("faults injected (ltx-jupyter run)", str(sum(ours_faults.values()))),
        *[(f"  {kind}", str(ours_faults.get(kind, 0))) for kind in kinds],
        ("retries (client.stats)", str(stats["retries"])),
        ("stream fallbacks to polling", str(stats["stream_fallbacks"])),
        ("results in hand", f"{JOBS - len(failures)}/{JOBS}"),
        ("duplicate submits", str(server_submits(ours_server) - JOBS)),
        ("jobs with a lost or repeated log line", str(lost_or_repeated)),
        ("wall time", f"{ours_seconds:.1f} s"),
        ("fal-client: faults injected", str(sum(fal_proxy.injected.values()))),
        ("fal-client: jobs failed", f"{len(fal_failed)}/{JOBS}"),
        *[(f"  {kind}", str(n)) for kind, n in sorted(fal_kinds.items())],
        ("fal-client: requests queued by the server", str(fal_submits)),
        ("fal-client: wall time", f"{fal_seconds:.1f} s"),
    ]
    lines = [
        f"Fault run: seed {SEED}, {JOBS} jobs, mixed fault plan",
        "",
        "| figure | value |",
        "| --- | --- |",
        *_table(rows),
    ]
    text = "\n".join(lines) + "\n"
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(text)
    print("\n" + text)


def _failure_kind(error: BaseException) -> str:
    """How a fal-client job failed, for the table."""
    if isinstance(error, fal_client.FalClientHTTPError):
        request = getattr(error.response, "request", None)
        url = str(request.url) if request is not None else ""
        where = "status" if "/status" in url else "result" if "/requests/" in url else "submit"
        return f"HTTP {error.status_code} on {where}"
    return type(error).__name__
