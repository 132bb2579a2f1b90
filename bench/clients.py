"""Our ``QueueClient`` against the official ``fal-client``, on the same local server.

Each client runs in its own worker process (``python -m bench.clients worker --client ours``),
so CPU time and peak memory are that client's alone. The driver (:func:`run_clients`) starts
the server in a third process with a fixed job length, then:

1. measures the loopback round trip (the physical floor of completion-to-result latency);
2. runs the same jobs through both workers one at a time, alternating, for the latency,
   request-count and CPU figures (the server's clock stamps completion, the worker's
   ``time.time()`` stamps the result in hand: the same machine clock);
3. submits 200 jobs at once from a fresh worker per client: wall time against the ideal the
   server allows, errors, and the worker's peak memory growth.

The workers speak JSON lines on stdin/stdout: ``{"op": "rtt" | "job" | "burst" | "quit"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import httpx

from ._common import (
    ENDPOINT,
    REPO_ROOT,
    ServerProcess,
    child_env,
    current_rss_mb,
    peak_rss_mb,
    summary,
)

__all__ = ["CLIENTS", "ClientSettings", "run_clients"]

CLIENTS = ("ours", "fal-client")
#: Our client on the opt-in aiohttp transport instead of the default (httpx's own): run with
#: ``--with-aiohttp-transport`` to see what the opt-in is worth.
OURS_ON_AIOHTTP = "ours-aiohttp-transport"
FAKE_KEY = "bench-key"


# -- the workers -------------------------------------------------------------------------------


def _job_input(steps: int, seed: int) -> dict[str, Any]:
    return {"prompt": f"benchmark job {seed}", "seed": seed, "num_inference_steps": steps}


class _OursWorker:
    """Runs jobs through :class:`ltx_jupyter.QueueClient` on one persistent event loop."""

    def __init__(self, url: str, *, aiohttp_transport: bool = False) -> None:
        from ltx_jupyter import QueueClient
        from ltx_jupyter._transport import AiohttpTransport

        self.url = url
        self.loop = asyncio.new_event_loop()
        self.client = self.loop.run_until_complete(
            self._make(QueueClient, url, AiohttpTransport() if aiohttp_transport else None)
        )

    @staticmethod
    async def _make(factory: Callable[..., Any], url: str, transport: Any) -> Any:
        return factory(queue_url=url, transport=transport)

    def rtt(self, count: int) -> list[float]:
        async def measure() -> list[float]:
            times = []
            for _ in range(count):
                start = time.perf_counter()
                await self.client._http.get(f"{self.url}/health")
                times.append(time.perf_counter() - start)
            return times

        return self.loop.run_until_complete(measure())

    async def _one(self, steps: int, seed: int) -> dict[str, Any]:
        from ltx_jupyter import Completed

        updates = 0
        subscription = self.client.subscribe(ENDPOINT, _job_input(steps, seed))
        async with contextlib.aclosing(subscription):
            async for update in subscription:
                updates += 1
                if isinstance(update, Completed):
                    held_at = time.time()
                    assert update.output["seed"] == seed
                    return {"request_id": update.request_id, "held_at": held_at, "updates": updates}
        raise RuntimeError("the run ended without a result")

    def job(self, steps: int, seed: int) -> dict[str, Any]:
        return self.loop.run_until_complete(self._one(steps, seed))

    def burst(self, count: int, steps: int, first_seed: int) -> list[Any]:
        async def all_at_once() -> list[Any]:
            jobs = [self._one(steps, first_seed + i) for i in range(count)]
            return await asyncio.gather(*jobs, return_exceptions=True)

        return self.loop.run_until_complete(all_at_once())

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


class _FalWorker:
    """Runs jobs through ``fal_client``: sync ``subscribe(with_logs=True, on_queue_update=cb)``
    one at a time; ``AsyncClient.subscribe`` with the same options for 200 at once."""

    def __init__(self, url: str) -> None:
        import fal_client
        import fal_client.client as fal_module

        # fal-client takes no base URL: point its module-level URLs at the local server.
        fal_module.QUEUE_URL_FORMAT = url + "/"
        fal_module.REST_URL = url
        self.url = url
        self.fal = fal_client
        self.client = fal_client.SyncClient(key=FAKE_KEY)

    def rtt(self, count: int) -> list[float]:
        times = []
        with httpx.Client() as http:
            for _ in range(count):
                start = time.perf_counter()
                http.get(f"{self.url}/health")
                times.append(time.perf_counter() - start)
        return times

    def job(self, steps: int, seed: int) -> dict[str, Any]:
        updates = 0
        request_ids: list[str] = []

        def on_update(_status: Any) -> None:
            nonlocal updates
            updates += 1

        output = self.client.subscribe(
            ENDPOINT,
            _job_input(steps, seed),
            with_logs=True,
            on_enqueue=request_ids.append,
            on_queue_update=on_update,
        )
        held_at = time.time()
        assert output["seed"] == seed
        return {"request_id": request_ids[0], "held_at": held_at, "updates": updates}

    def burst(self, count: int, steps: int, first_seed: int) -> list[Any]:
        async def all_at_once() -> list[Any]:
            client = self.fal.AsyncClient(key=FAKE_KEY)

            async def one(seed: int) -> dict[str, Any]:
                updates = 0
                request_ids: list[str] = []

                def on_update(_status: Any) -> None:
                    nonlocal updates
                    updates += 1

                output = await client.subscribe(
                    ENDPOINT,
                    _job_input(steps, seed),
                    with_logs=True,
                    on_enqueue=request_ids.append,
                    on_queue_update=on_update,
                )
                assert output["seed"] == seed
                return {"request_id": request_ids[0], "held_at": time.time(), "updates": updates}

            return await asyncio.gather(
                *(one(first_seed + i) for i in range(count)), return_exceptions=True
            )

        return asyncio.run(all_at_once())

    def close(self) -> None:
        self.client._client.close()


def _worker_main(client_name: str, url: str) -> int:
    """Serve the driver's commands on stdin, one JSON answer per line on stdout."""
    worker: Any
    if client_name == "fal-client":
        worker = _FalWorker(url)
    elif client_name == "magic":
        from .magic_path import MagicWorker

        worker = MagicWorker(url)
    else:
        worker = _OursWorker(url, aiohttp_transport=client_name == OURS_ON_AIOHTTP)
    out = sys.stdout

    def answer(data: dict[str, Any]) -> None:
        out.write(json.dumps(data) + "\n")
        out.flush()

    answer({"ready": True, "rss_mb": current_rss_mb()})
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        if op == "quit":
            break
        if op == "rtt":
            answer({"rtt": worker.rtt(command["count"])})
        elif op == "job":
            cpu_before = time.process_time()
            try:
                result = worker.job(command["steps"], command["seed"])
            except Exception as error:
                result = {"error": f"{type(error).__name__}: {error}"}
            result["cpu"] = time.process_time() - cpu_before
            answer(result)
        elif op == "burst":
            rss_before = current_rss_mb()
            peak_before = peak_rss_mb()
            cpu_before = time.process_time()
            started = time.monotonic()
            outcomes = worker.burst(command["count"], command["steps"], command["seed"])
            wall = time.monotonic() - started
            cpu = time.process_time() - cpu_before
            done = [o for o in outcomes if isinstance(o, dict)]
            errors = [f"{type(o).__name__}: {o}" for o in outcomes if not isinstance(o, dict)]
            answer(
                {
                    "wall": wall,
                    "cpu": cpu,
                    "results": done,
                    "errors": errors,
                    "rss_before_mb": rss_before,
                    "peak_before_mb": peak_before,
                    "peak_after_mb": peak_rss_mb(),
                }
            )
    worker.close()
    return 0


# -- the driver --------------------------------------------------------------------------------


class _Worker:
    """A worker process as the driver sees it: send a command, read its answer."""

    def __init__(self, client_name: str, url: str) -> None:
        self.name = client_name
        # The magic's jobs go to a history of their own, not to the user's.
        self._folder = tempfile.TemporaryDirectory()
        history = os.path.join(self._folder.name, "history.jsonl")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.clients", "worker", "--client", client_name, url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
            env=child_env(LTX_HISTORY_FILE=history),
        )
        self.hello = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.name} worker exited (code {self.process.wait()})")
        return json.loads(line)  # type: ignore[no-any-return]

    def call(self, **command: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(BrokenPipeError, RuntimeError, json.JSONDecodeError):
                self.call(op="quit")
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._folder.cleanup()


class ClientSettings:
    """How many jobs of what length: the full run's defaults, or the CI smoke's."""

    def __init__(
        self,
        *,
        jobs: int = 50,
        warmup: int = 2,
        steps: int = 30,
        step_seconds: float = 0.1,
        burst: int = 200,
        rtt_count: int = 500,
        with_aiohttp_transport: bool = False,
    ) -> None:
        self.jobs = jobs
        self.warmup = warmup
        self.steps = steps
        self.step_seconds = step_seconds
        self.burst = burst
        self.rtt_count = rtt_count
        self.clients = CLIENTS + ((OURS_ON_AIOHTTP,) if with_aiohttp_transport else ())

    @classmethod
    def quick(cls) -> ClientSettings:
        return cls(jobs=3, warmup=1, steps=5, step_seconds=0.02, burst=20, rtt_count=50)

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


def _wait_idle(server: ServerProcess, timeout: float = 60.0) -> None:
    """Wait until the server has nothing queued or running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = httpx.get(f"{server.url}/health", timeout=30).json()["requests"]
        if counts["IN_QUEUE"] == 0 and counts["IN_PROGRESS"] == 0:
            return
        time.sleep(0.1)


def _floor(server: ServerProcess, count: int) -> list[float]:
    """Round trips of ``GET /health`` on one kept-alive sync httpx client (seconds)."""
    with httpx.Client() as http:
        for _ in range(20):
            http.get(f"{server.url}/health")
        times = []
        for _ in range(count):
            start = time.perf_counter()
            http.get(f"{server.url}/health")
            times.append(time.perf_counter() - start)
    return times


def _burst_figures(
    server: ServerProcess, answer: dict[str, Any], count: int, ideal: float
) -> dict[str, Any]:
    stats = server.stats()["by_request"]
    request_counts = [stats[r["request_id"]]["total"] for r in answer["results"]]
    with httpx.Client() as http:
        records = [server.record(r["request_id"], http) for r in answer["results"]]
    latencies = [
        r["held_at"] - rec["completed_at"]
        for r, rec in zip(answer["results"], records, strict=True)
    ]
    peak_growth = answer["peak_after_mb"] - (answer["rss_before_mb"] or answer["peak_before_mb"])
    return {
        "jobs": count,
        "completed": len(answer["results"]),
        "errors": len(answer["errors"]) + (count - len(answer["results"]) - len(answer["errors"])),
        "error_samples": answer["errors"][:3],
        "wall_s": round(answer["wall"], 3),
        "ideal_s": round(ideal, 3),
        "wall_over_ideal": round(answer["wall"] / ideal, 3) if ideal else None,
        "completion_to_result_ms": summary(latencies, 1000, 1),
        "http_requests_per_job": round(statistics.fmean(request_counts), 2)
        if request_counts
        else None,
        "cpu_s_total": round(answer["cpu"], 3),
        "cpu_ms_per_job": round(answer["cpu"] / count * 1000, 2),
        "rss_before_mb": round(answer["rss_before_mb"], 1) if answer["rss_before_mb"] else None,
        "peak_rss_mb": round(answer["peak_after_mb"], 1),
        "peak_growth_mb": round(peak_growth, 1),
    }


def run_clients(settings: ClientSettings, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the client comparison and return its figures (JSON-ready)."""
    job_seconds = settings.steps * settings.step_seconds
    server_options = ["--step-seconds", str(settings.step_seconds)]
    concurrency = max(settings.burst, 1)
    server_options += ["--concurrency", str(concurrency)]
    with ServerProcess(*server_options) as server:
        log(f"server {server.url}, {settings.steps} steps x {settings.step_seconds} s per job")
        floor = _floor(server, settings.rtt_count)
        clients = settings.clients
        workers = {name: _Worker(name, server.url) for name in clients}
        try:
            stack_rtt = {
                name: w.call(op="rtt", count=settings.rtt_count)["rtt"]
                for name, w in workers.items()
            }
            seed = 1000
            for _ in range(settings.warmup):
                for worker in workers.values():
                    seed += 1
                    worker.call(op="job", steps=settings.steps, seed=seed)
            answers: dict[str, list[dict[str, Any]]] = {name: [] for name in clients}
            for index in range(settings.jobs):
                # Alternate, and alternate who goes first, so drift hits both alike.
                order = clients if index % 2 == 0 else clients[::-1]
                for name in order:
                    seed += 1
                    answers[name].append(
                        workers[name].call(op="job", steps=settings.steps, seed=seed)
                    )
                if (index + 1) % 10 == 0:
                    log(f"  {index + 1}/{settings.jobs} jobs per client")
        finally:
            for worker in workers.values():
                worker.close()

        _wait_idle(server)
        stats = server.stats()["by_request"]
        per_client: dict[str, Any] = {}
        inference_times = []
        with httpx.Client() as http:
            for name in clients:
                done = [a for a in answers[name] if "error" not in a]
                latencies, requests, by_kind = [], [], {}
                for answer in done:
                    record = server.record(answer["request_id"], http)
                    inference_times.append(record["inference_time"])
                    latencies.append(answer["held_at"] - record["completed_at"])
                    counts = stats[answer["request_id"]]
                    requests.append(counts["total"])
                    for kind, value in counts.items():
                        if kind != "total":
                            by_kind[kind] = by_kind.get(kind, 0) + value
                per_client[name] = {
                    "jobs": len(answers[name]),
                    "errors": len(answers[name]) - len(done),
                    "completion_to_result_ms": summary(latencies, 1000, 2),
                    "http_requests_per_job": summary(requests, 1, 2),
                    "http_requests_by_kind_per_job": {
                        k: round(v / max(len(done), 1), 2) for k, v in sorted(by_kind.items())
                    },
                    "cpu_ms_per_job": summary([a["cpu"] for a in answers[name]], 1000, 2),
                    "updates_per_job": summary([a.get("updates", 0) for a in done], 1, 1),
                    "stack_round_trip_ms": summary(stack_rtt[name], 1000, 3),
                }
        measured_job = statistics.median(inference_times) if inference_times else job_seconds
        log(f"  burst of {settings.burst} jobs per client")
        for name in clients:
            _wait_idle(server)
            worker = _Worker(name, server.url)
            try:
                worker.call(op="job", steps=settings.steps, seed=1)  # imports, connections
                answer = worker.call(op="burst", count=settings.burst, steps=settings.steps, seed=1)
            finally:
                worker.close()
            waves = math.ceil(settings.burst / concurrency)
            per_client[name]["burst"] = _burst_figures(
                server, answer, settings.burst, waves * measured_job
            )
    floor_ms = summary(floor, 1000, 3)
    return {
        "settings": {**settings.to_json(), "job_seconds": job_seconds},
        "server_job_seconds_median": round(measured_job, 4),
        "loopback_round_trip_ms": floor_ms,
        "clients": per_client,
        "targets": _targets(per_client, floor_ms),
    }


def _targets(per_client: dict[str, Any], floor_ms: dict[str, float]) -> dict[str, Any]:
    """The issue's targets, each with the figures it compares."""
    ours, fal = per_client["ours"], per_client["fal-client"]
    lat_ours = ours["completion_to_result_ms"]["median"]
    lat_fal = fal["completion_to_result_ms"]["median"]
    req_ours = ours["http_requests_per_job"]["median"]
    req_fal = fal["http_requests_per_job"]["median"]
    cpu_ours = ours["cpu_ms_per_job"]["median"]
    cpu_fal = fal["cpu_ms_per_job"]["median"]
    burst = ours["burst"]
    return {
        "latency_at_most_tenth_of_fal": {
            "ours_ms": lat_ours,
            "fal_ms": lat_fal,
            "ratio": round(lat_ours / lat_fal, 3) if lat_fal else None,
            "met": lat_ours <= lat_fal / 10,
        },
        "latency_in_round_trips": round(lat_ours / floor_ms["median"], 2),
        "requests_at_most_half_of_fal": {
            "ours": req_ours,
            "fal": req_fal,
            "met": req_ours <= req_fal / 2,
        },
        "requests_match_js_streaming_3": {"ours": req_ours, "met": req_ours <= 3},
        "cpu_at_most_half_of_fal": {
            "ours_ms": cpu_ours,
            "fal_ms": cpu_fal,
            "ratio": round(cpu_ours / cpu_fal, 3) if cpu_fal else None,
            "met": cpu_ours <= cpu_fal / 2,
        },
        "burst_no_errors_and_growth_under_100mb": {
            "errors": burst["errors"],
            "peak_growth_mb": burst["peak_growth_mb"],
            "met": burst["errors"] == 0 and burst["peak_growth_mb"] < 100,
        },
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.clients worker --client ours|fal-client URL`` (used by the driver)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    worker = commands.add_parser("worker", help="serve the driver's commands on stdin")
    worker.add_argument("--client", choices=(*CLIENTS, OURS_ON_AIOHTTP, "magic"), required=True)
    worker.add_argument("url")
    args = parser.parse_args(argv)
    return _worker_main(args.client, args.url)


if __name__ == "__main__":
    sys.exit(main())
