"""Exploration: a 36-job sweep in a real kernel, and the gallery of a 5,000-run history.

- ``sweep``: a real IPython kernel over jupyter_client (as JupyterLab drives it) against a
  local server whose jobs log 20 lines per step. After a warm-up sweep (schemas, prices and
  the HTTP client ready), a 6×6 sweep (guidance × seed) is started; the time the magic takes
  to return is measured inside the kernel. While the sweep runs, a trivial cell (``1+1``) is
  executed over and over and its round trip timed (send to reply). Every ``comm_open`` and
  ``comm_msg`` the kernel sends from the sweep's cell to the end is counted: widget messages
  per job.
- ``gallery``: a journal of N runs written in the history's line format; the time from
  nothing to the first page of ``%ltx gallery`` drawn (journal read, filtered, 12 tiles,
  posters looked up in an empty cache; nothing fetched), for 5,000 runs and for 50.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ._common import ServerProcess, summary
from .magic import _Kernel

__all__ = ["ExploreSettings", "run_explore"]

PROMPT = "A paper boat drifts down a rain-soaked gutter, spinning past fallen leaves."


class ExploreSettings:
    """Sizes of the exploration runs: the full run's, or the CI smoke's."""

    def __init__(
        self,
        *,
        guidance: int = 6,
        seeds: int = 6,
        steps: int = 20,
        log_lines_per_step: int = 20,
        gallery_runs: int = 5000,
        small_gallery_runs: int = 50,
        repeats: int = 5,
    ) -> None:
        self.guidance = guidance
        self.seeds = seeds
        self.steps = steps
        self.log_lines_per_step = log_lines_per_step
        self.gallery_runs = gallery_runs
        self.small_gallery_runs = small_gallery_runs
        self.repeats = repeats

    @classmethod
    def quick(cls) -> ExploreSettings:
        return cls(guidance=2, seeds=2, steps=4, gallery_runs=200, small_gallery_runs=20, repeats=1)

    @property
    def jobs(self) -> int:
        return self.guidance * self.seeds

    def to_json(self) -> dict[str, Any]:
        return {**vars(self), "jobs": self.jobs}


def _stream_text(messages: list[dict[str, Any]]) -> str:
    return "".join(m["content"].get("text", "") for m in messages if m["msg_type"] == "stream")


def _widget_messages(messages: list[dict[str, Any]]) -> int:
    return sum(1 for m in messages if m["msg_type"] in ("comm_open", "comm_msg"))


def _sweep(url: str, settings: ExploreSettings) -> dict[str, Any]:
    guidance = ",".join(str(2 + i) for i in range(settings.guidance))
    seeds = ",".join(str(1 + i) for i in range(settings.seeds))
    line = f"--steps {settings.steps} --sweep guidance={guidance} --sweep seed={seeds} -o sweep"
    with tempfile.TemporaryDirectory() as folder:
        kernel = _Kernel(url, folder)
        try:
            kernel.execute("%load_ext ltx_jupyter")
            kernel.execute("%%ltx --wait --steps 2 --sweep seed=1,2\nwarm-up")
            code = (
                "import time as _t\n_s = _t.perf_counter()\n"
                f"get_ipython().run_cell_magic('ltx', {line!r}, {PROMPT!r})\n"
                "print(f'{(_t.perf_counter() - _s) * 1000:.3f}')"
            )
            started = time.monotonic()
            messages = kernel.execute(code)
            magic_ms = float(_stream_text(messages).strip().splitlines()[-1])
            latencies = []
            done = False
            while not done:
                sent = time.perf_counter()
                messages += kernel.execute("1+1")
                latencies.append(time.perf_counter() - sent)
                if len(latencies) % 5 == 0:
                    check = kernel.execute("print(sweep.done)")
                    messages += check
                    done = _stream_text(check).strip().endswith("True")
                time.sleep(0.05)
            # The last coalesced update comes within a quarter second of the end.
            time.sleep(1.0)
            messages += kernel.execute("print(sweep.status_line())")
            finished = time.monotonic() - started
            status = _stream_text(messages[-20:]).strip().splitlines()[-1]
        finally:
            kernel.close()
    widget_messages = _widget_messages(messages)
    return {
        "magic_return_ms": magic_ms,
        "trivial_cell_ms": summary(latencies, 1000, 2),
        "widget_messages": widget_messages,
        "widget_messages_per_job": round(widget_messages / settings.jobs, 2),
        "sweep_seconds": round(finished, 2),
        "final_status": status,
    }


def write_history(path: Path, runs: int) -> None:
    """``runs`` completed runs in the journal's line format (submit, then update)."""
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with path.open("w") as out:
        for i in range(runs):
            request_id = f"{i:06d}-bench"
            submit = {
                "event": "submit",
                "request_id": request_id,
                "endpoint": "fal-ai/ltx-video",
                "input": {"prompt": f"a red fox in the snow, take {i}", "seed": i},
                "queue_url": "http://127.0.0.1:9",
                "status": "queued",
                "submitted_at": (start + timedelta(minutes=i)).isoformat(timespec="milliseconds"),
                "cost": 0.04,
                "currency": "USD",
            }
            update = {
                "event": "update",
                "request_id": request_id,
                "status": "completed",
                "video_url": f"http://127.0.0.1:9/files/{request_id}/video.mp4",
                "seed": i,
            }
            out.write(json.dumps(submit) + "\n" + json.dumps(update) + "\n")


def _gallery(settings: ExploreSettings) -> dict[str, Any]:
    from ltx_jupyter._gallery import GalleryFilter, PosterCache, open_gallery
    from ltx_jupyter._history import HistoryStore
    from ltx_jupyter._jobs import JobSession

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        for runs in (settings.small_gallery_runs, settings.gallery_runs):
            path = Path(folder) / f"history-{runs}.jsonl"
            write_history(path, runs)
            session = JobSession(history=HistoryStore(path))
            times = []
            for _ in range(settings.repeats):
                started = time.perf_counter()
                gallery = open_gallery(session, GalleryFilter(), make_posters=False)
                gallery.posters = PosterCache(Path(folder) / "posters")
                times.append(time.perf_counter() - started)
                assert len(gallery.entries) == runs
                gallery.close()
            results[str(runs)] = {
                "first_page_ms": summary(times, 1000, 1),
                "journal_bytes": os.path.getsize(path),
            }
    return results


def run_explore(settings: ExploreSettings, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the exploration measurements and return their figures (JSON-ready)."""
    server = ServerProcess(
        "--step-seconds",
        "0.02",
        "--concurrency",
        "8",
        "--log-lines-per-step",
        str(settings.log_lines_per_step),
    )
    with server:
        log(f"a {settings.guidance}x{settings.seeds} sweep in a real kernel")
        sweep = _sweep(server.url, settings)
    log(f"the gallery of {settings.gallery_runs} and of {settings.small_gallery_runs} runs")
    gallery = _gallery(settings)
    big = gallery[str(settings.gallery_runs)]["first_page_ms"]["median"]
    trivial = sweep["trivial_cell_ms"]
    return {
        "settings": settings.to_json(),
        "sweep": sweep,
        "gallery": gallery,
        "targets": {
            "magic_returns_under_50ms": {
                "ms": sweep["magic_return_ms"],
                "met": sweep["magic_return_ms"] < 50,
            },
            "widget_messages_under_40_per_job": {
                "per_job": sweep["widget_messages_per_job"],
                "met": sweep["widget_messages_per_job"] < 40,
            },
            "trivial_cell_under_50ms_while_streaming": {
                "median_ms": trivial["median"],
                "p95_ms": trivial["p95"],
                "max_ms": trivial["max"],
                "met": trivial["p95"] < 50,
            },
            "gallery_first_page_under_1s": {"median_ms": big, "met": big < 1000},
        },
        "note": "trivial cell: execute request sent to reply received, over jupyter_client",
    }


def explore_table(result: dict[str, Any]) -> str:
    """The exploration figures as text."""
    s, g = result["sweep"], result["gallery"]
    jobs = result["settings"]["jobs"]
    t = s["trivial_cell_ms"]
    lines = [
        "Exploration:",
        f"  {jobs}-job sweep: the magic returned in {s['magic_return_ms']} ms; "
        f"{s['widget_messages']} widget messages ({s['widget_messages_per_job']} per job); "
        f"done in {s['sweep_seconds']} s ({s['final_status']})",
        f"  trivial cell while the sweep streams logs: median {t['median']} ms, p95 {t['p95']} ms, "
        f"max {t['max']} ms over {t['n']}",
    ]
    for runs, figures in g.items():
        ms = figures["first_page_ms"]
        lines.append(
            f"  gallery of {runs} runs: first page in {ms['median']} ms median "
            f"(max {ms['max']} ms; journal {figures['journal_bytes']} bytes)"
        )
    lines.append(f"  targets: {json.dumps(result['targets'])}")
    return "\n".join(lines)


if __name__ == "__main__":
    outcome = run_explore(ExploreSettings())
    print(explore_table(outcome))
