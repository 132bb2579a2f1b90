"""The whole magic path against bare ``fal_client.subscribe``: ``%%ltx --wait`` in a plain
IPython shell (text output, as in a terminal) and ``fal_client.subscribe(with_logs=True)``,
each in its own worker process, on the same jobs of the same local server.

Per job: the latency from the server's completion to the cell's (or the call's) return, and the
worker process's CPU time for the whole job (submit to return, every thread). The jobs are 1 s
long with 30 log lines by default (30 steps of 1/30 s), alternated between the two workers.
Each pair of jobs takes 27 to 33 steps (the same for both workers), so the moment a job ends
falls anywhere within fal-client's 0.1 s polling period, as a real job's does, instead of at
one fixed phase of it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
from collections.abc import Callable
from typing import Any

import httpx

from ._common import ServerProcess, summary
from .clients import _Worker

__all__ = ["MagicPathSettings", "run_magic_path"]

PROMPT = "A red fox trots through fresh snow at dawn, the camera tracking low beside it."


class MagicPathSettings:
    """How many jobs of what length: the full run's defaults, or the CI smoke's."""

    def __init__(
        self, *, jobs: int = 40, warmup: int = 3, steps: int = 30, job_seconds: float = 1.0
    ) -> None:
        self.jobs = jobs
        self.warmup = warmup
        self.steps = steps
        self.job_seconds = job_seconds

    @classmethod
    def quick(cls) -> MagicPathSettings:
        return cls(jobs=2, warmup=1, steps=5, job_seconds=0.1)

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


class MagicWorker:
    """Runs jobs as a user of terminal IPython does: ``%%ltx --wait`` in an InteractiveShell,
    its text status lines and log going to stdout (captured here, so the driver's pipe stays
    clean)."""

    def __init__(self, url: str) -> None:
        from IPython.core.interactiveshell import InteractiveShell

        os.environ["LTX_QUEUE_URL"] = url
        self.url = url
        self.shell = InteractiveShell.instance()
        self.shell.history_manager.enabled = False
        self.shell.run_line_magic("load_ext", "ltx_jupyter")
        self.sink = io.StringIO()

    def rtt(self, count: int) -> list[float]:
        return []

    def job(self, steps: int, seed: int) -> dict[str, Any]:
        self.sink.seek(0)
        self.sink.truncate()
        with contextlib.redirect_stdout(self.sink):
            self.shell.run_cell_magic(
                "ltx", f"--wait --seed {seed} --steps {steps} -o bench_job", f"{PROMPT} {seed}"
            )
        held_at = time.time()
        job = self.shell.user_ns["bench_job"]
        assert job.result is not None and job.result.seed == seed, self.sink.getvalue()
        return {"request_id": job.request_id, "held_at": held_at, "updates": len(job.logs)}

    def burst(self, count: int, steps: int, first_seed: int) -> list[Any]:
        raise NotImplementedError("the magic path is measured one job at a time")

    def close(self) -> None:
        self.shell.run_line_magic("unload_ext", "ltx_jupyter")


def run_magic_path(
    settings: MagicPathSettings, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run both workers on the same jobs and return the figures (JSON-ready)."""
    step_seconds = settings.job_seconds / settings.steps
    names = ("magic", "fal-client")
    with ServerProcess("--step-seconds", f"{step_seconds:.6f}", "--concurrency", "4") as server:
        log(f"server {server.url}: {settings.steps} steps of {step_seconds * 1000:.1f} ms")
        workers = {name: _Worker(name, server.url) for name in names}
        answers: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        try:
            seed = 5000
            for index in range(settings.warmup + settings.jobs):
                order = names if index % 2 == 0 else names[::-1]
                steps = settings.steps + index % 7 - 3
                for name in order:
                    seed += 1
                    answer = workers[name].call(op="job", steps=steps, seed=seed)
                    if index >= settings.warmup:
                        answers[name].append(answer)
                if (index + 1) % 10 == 0:
                    log(f"  {index + 1}/{settings.warmup + settings.jobs} jobs per worker")
        finally:
            for worker in workers.values():
                worker.close()
        figures: dict[str, Any] = {}
        with httpx.Client() as http:
            for name in names:
                done = [a for a in answers[name] if "error" not in a]
                latencies = [
                    a["held_at"] - server.record(a["request_id"], http)["completed_at"]
                    for a in done
                ]
                figures[name] = {
                    "jobs": len(answers[name]),
                    "errors": [a["error"] for a in answers[name] if "error" in a][:3],
                    "completion_to_return_ms": summary(latencies, 1000, 2),
                    "cpu_ms_per_job": summary([a["cpu"] for a in done], 1000, 2),
                }
    magic, fal = figures["magic"], figures["fal-client"]
    lat = (magic["completion_to_return_ms"]["median"], fal["completion_to_return_ms"]["median"])
    cpu = (magic["cpu_ms_per_job"]["median"], fal["cpu_ms_per_job"]["median"])
    return {
        "settings": settings.to_json(),
        "workers": figures,
        "targets": {
            "latency_at_most_tenth_of_fal": {
                "magic_ms": lat[0],
                "fal_ms": lat[1],
                "ratio": round(lat[0] / lat[1], 3) if lat[1] else None,
                "met": lat[0] <= lat[1] / 10,
            },
            "cpu_at_most_fal": {
                "magic_ms": cpu[0],
                "fal_ms": cpu[1],
                "ratio": round(cpu[0] / cpu[1], 3) if cpu[1] else None,
                "met": cpu[0] <= cpu[1],
            },
        },
    }


def magic_path_table(result: dict[str, Any]) -> str:
    """The figures as text."""
    lines = ["Magic path (%%ltx --wait in IPython, text output) vs fal_client.subscribe:"]
    for name, f in result["workers"].items():
        lat, cpu = f["completion_to_return_ms"], f["cpu_ms_per_job"]
        lines.append(
            f"  {name}: completion to return median {lat['median']} ms (p95 {lat['p95']}), "
            f"CPU per job median {cpu['median']} ms over {f['jobs']} jobs"
        )
    lines.append(f"  targets: {json.dumps(result['targets'])}")
    return "\n".join(lines)
