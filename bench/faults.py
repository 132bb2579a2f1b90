"""The fault run: the fault test's jobs and mixed fault plan against our client and against the
official ``fal-client``, each on a fresh local server behind its own fault-injecting proxy
(``tests/faultproxy.py``, same seed), for the comparison table in BENCHMARKS.md.

``tests/test_faults.py`` asserts what our client must achieve under the plan; this only counts,
for both clients: faults injected by kind, jobs that failed and how, requests the server
queued (duplicate submits) and wall time. fal-client's ``AsyncClient.subscribe`` polls every
0.1 s and does not retry reads, so its figures are for comparison only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["FaultSettings", "run_faults"]

FAKE_KEY = "fault-run-key"
OURS = "ours"
OURS_ON_AIOHTTP = "ours-aiohttp-transport"
FAL = "fal-client"


class FaultSettings:
    """How many jobs: the full run's (the fault test's 200), or the CI smoke's."""

    def __init__(self, *, jobs: int = 200, with_aiohttp_transport: bool = False) -> None:
        self.jobs = jobs
        self.clients = (OURS, *((OURS_ON_AIOHTTP,) if with_aiohttp_transport else ()), FAL)

    @classmethod
    def quick(cls) -> FaultSettings:
        return cls(jobs=20)

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


@contextlib.contextmanager
def _environment(name: str, value: str | None) -> Iterator[None]:
    before = os.environ.get(name)
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


async def _run_fal_client(proxy_url: str, jobs: int) -> list[Any]:
    """Every job through fal-client's ``AsyncClient.subscribe(with_logs=True)``."""
    import fal_client
    import fal_client.client as fal_module

    from tests.test_faults import IN_FLIGHT, arguments

    from ._common import ENDPOINT

    # fal-client takes no base URL: point its module-level URLs at the proxy.
    fal_module.QUEUE_URL_FORMAT = proxy_url + "/"
    fal_module.REST_URL = proxy_url
    gate = asyncio.Semaphore(IN_FLIGHT)
    client = fal_client.AsyncClient(key=FAKE_KEY)

    async def one(i: int) -> Any:
        async with gate:
            try:
                return await asyncio.wait_for(
                    client.subscribe(ENDPOINT, arguments(i), with_logs=True), 120
                )
            except Exception as error:
                return error

    return await asyncio.gather(*(one(i) for i in range(jobs)))


def _failure_kind(error: BaseException) -> str:
    """How a job failed, for the table: the HTTP status and the call, else the error type."""
    response = getattr(error, "response", None)
    status = getattr(error, "status_code", None) or getattr(response, "status_code", None)
    if status is None:
        return type(error).__name__
    request = getattr(response, "request", None)
    url = str(request.url) if request is not None else str(getattr(error, "url", "") or "")
    where = "status" if "/status" in url else "result" if "/requests/" in url else "submit"
    return f"HTTP {status} on {where}"


def _one_client(name: str, jobs: int, data_dir: Path) -> dict[str, Any]:
    from ltx_jupyter.server import LocalServer, ServerConfig
    from tests.faultproxy import FaultProxy, install_mixed_plan
    from tests.test_faults import FAST, SEED, run_ours, server_logs, server_submits

    config = ServerConfig(port=0, data_dir=data_dir, width=64, height=64, num_frames=9, **FAST)
    with LocalServer(config) as server, FaultProxy(server.url, seed=SEED) as proxy:
        install_mixed_plan(proxy)
        started = time.monotonic()
        stats: dict[str, int] = {}
        if name == FAL:
            outcomes = asyncio.run(_run_fal_client(proxy.url, jobs))
        else:
            transport = "aiohttp" if name == OURS_ON_AIOHTTP else "httpx"
            with _environment("LTX_HTTP_TRANSPORT", transport):
                outcomes, stats = asyncio.run(run_ours(proxy.url, jobs))
        wall = time.monotonic() - started
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        figures: dict[str, Any] = {
            "jobs": jobs,
            "requests_through_proxy": sum(proxy.requests.values()),
            "faults_injected": sum(proxy.injected.values()),
            "faults_by_kind": dict(sorted(proxy.injected.items())),
            "results_in_hand": jobs - len(failed),
            "failed_by_kind": dict(sorted(Counter(_failure_kind(e) for e in failed).items())),
            "requests_queued_by_server": server_submits(server),
            "wall_s": round(wall, 1),
        }
        if name != FAL:
            done = [o for o in outcomes if not isinstance(o, BaseException)]
            figures["duplicate_submits"] = figures["requests_queued_by_server"] - jobs
            figures["jobs_with_lost_or_repeated_log_line"] = sum(
                logs != server_logs(server, request_id) for request_id, logs, _ in done
            )
            figures["retries"] = stats["retries"]
            figures["stream_fallbacks"] = stats["stream_fallbacks"]
    return figures


def run_faults(settings: FaultSettings, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the fault plan for each client and return the figures (JSON-ready)."""
    from tests.test_faults import IN_FLIGHT, SEED, STEPS

    clients: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ltx-bench-faults-") as tmp:
        for name in settings.clients:
            log(f"  fault run: {settings.jobs} jobs through {name}")
            clients[name] = _one_client(name, settings.jobs, Path(tmp) / name)
    return {
        "settings": {**settings.to_json(), "seed": SEED, "steps": STEPS, "in_flight": IN_FLIGHT},
        "clients": clients,
    }
