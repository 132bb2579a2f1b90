"""Shared pieces of the benchmarks: the server process, memory readings, statistics."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

__all__ = [
    "ENDPOINT",
    "REPO_ROOT",
    "ServerProcess",
    "current_rss_mb",
    "peak_rss_mb",
    "percentile",
    "process_rss_mb",
    "summary",
]

ENDPOINT = "fal-ai/ltx-video"
REPO_ROOT = Path(__file__).resolve().parent.parent
#: Tiny clips: encoding costs a few milliseconds, so a job's length is its steps.
CLIP_OPTIONS = ("--width", "64", "--height", "64", "--frames", "9")


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (0..1) of ``values``, linearly interpolated."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(values: Sequence[float], scale: float = 1.0, digits: int = 2) -> dict[str, float]:
    """Median, p95, min, max and mean of ``values`` times ``scale``, rounded."""
    if not values:
        return {"n": 0}
    scaled = [v * scale for v in values]
    return {
        "n": len(scaled),
        "median": round(statistics.median(scaled), digits),
        "p95": round(percentile(scaled, 0.95), digits),
        "min": round(min(scaled), digits),
        "max": round(max(scaled), digits),
        "mean": round(statistics.fmean(scaled), digits),
    }


def process_rss_mb(pid: int | str = "self") -> float | None:
    """Resident memory of a process in MB (Linux ``/proc``; None elsewhere)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


def current_rss_mb() -> float | None:
    """This process's resident memory in MB."""
    return process_rss_mb("self")


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (``ru_maxrss``)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


class ServerProcess:
    """``ltx-jupyter serve --port 0 ...`` in its own process.

    ``url`` is read from the ``LTX_QUEUE_URL=...`` line it prints; :meth:`start` returns once
    ``/health`` answers.
    """

    def __init__(self, *options: str, data_dir: str | os.PathLike[str] | None = None) -> None:
        self.options = [*CLIP_OPTIONS, *options]
        self.data_dir = data_dir
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self, timeout: float = 30.0) -> ServerProcess:
        command = [
            sys.executable,
            "-m",
            "ltx_jupyter.server",
            "serve",
            "--port",
            "0",
            "--log-level",
            "warning",
            *self.options,
        ]
        if self.data_dir is not None:
            command += ["--data-dir", str(self.data_dir)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT, env=_clean_env()
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith("LTX_QUEUE_URL="):
            self.stop()
            raise RuntimeError(f"the server did not start: {line!r}")
        self.url = line.split("=", 1)[1]
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the server never answered /health")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stats(self) -> dict[str, Any]:
        """The server's ``/_local/stats``: HTTP requests by kind and by request id."""
        return httpx.get(f"{self.url}/_local/stats", timeout=30).json()  # type: ignore[no-any-return]

    def record(self, request_id: str, client: httpx.Client | None = None) -> dict[str, Any]:
        """The server's ``/_local/requests/{id}``: state and created/started/completed times."""
        getter = client.get if client is not None else httpx.get
        return getter(f"{self.url}/_local/requests/{request_id}", timeout=30).json()  # type: ignore[no-any-return]

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _clean_env() -> dict[str, str]:
    """The environment for child processes: no fal credentials, the repository importable."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("FAL_KEY", "FAL_KEY_ID", "FAL_KEY_SECRET")
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a benchmark's child process, plus ``extra``."""
    return {**_clean_env(), **extra}
