"""Where a ``%%ltx --wait`` job's CPU goes, thread by thread (``python -m bench.magic_threads``).

The magic path benchmark (``bench/magic_path.py``) gives a job's CPU for the whole worker
process. This one splits it: the kernel thread (``time.thread_time``) and the runner thread
(its CPU clock, ``time.pthread_getcpuclockid``), and runs the same client on the same runner
thread without the magic, on the same jobs, alternating. The difference is the magic's own
work: parsing, validation, the history's lines, the job's bookkeeping, the text view.

POSIX only (``pthread_getcpuclockid``). Prints medians for 1-step and 30-step jobs of 1/30 s
steps, as the magic path benchmark runs them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import threading
import time

from ._common import ServerProcess
from .clients import ENDPOINT, _job_input
from .magic_path import MagicWorker

__all__ = ["run_magic_threads"]


def _cpu_clock_of_runner_thread() -> int:
    """The CPU clock of the runner thread the extension's jobs run on."""
    from ltx_jupyter._runner import get_runner

    async def ident() -> int:
        return threading.get_ident()

    return time.pthread_getcpuclockid(get_runner().submit(ident()).result(timeout=10))


def run_magic_threads(steps: list[int], jobs: int) -> dict[int, dict[str, float]]:
    """Median CPU milliseconds per job, by part, for each step count."""
    from ltx_jupyter import Completed, QueueClient
    from ltx_jupyter._runner import get_runner

    figures: dict[int, dict[str, float]] = {}
    with ServerProcess("--step-seconds", f"{1 / 30:.6f}", "--concurrency", "4") as server:
        magic = MagicWorker(server.url)
        runner = get_runner()

        async def make_client() -> QueueClient:
            return QueueClient(queue_url=server.url)

        client = runner.submit(make_client()).result(timeout=10)

        async def bare_job(count: int, seed: int) -> None:
            updates = client.subscribe(ENDPOINT, _job_input(count, seed))
            async with contextlib.aclosing(updates):
                async for update in updates:
                    if isinstance(update, Completed):
                        return

        for seed in range(3):
            magic.job(steps[0], 100 + seed)
            runner.submit(bare_job(steps[0], 200 + seed)).result(timeout=60)
        runner_clock = _cpu_clock_of_runner_thread()
        seed = 1000
        for count in steps:
            parts: dict[str, list[float]] = {
                "magic: process": [],
                "magic: kernel thread": [],
                "magic: runner thread": [],
                "client alone: runner thread": [],
            }
            for _ in range(jobs):
                seed += 1
                process, kernel = time.process_time(), time.thread_time()
                worker = time.clock_gettime(runner_clock)
                magic.job(count, seed)
                parts["magic: process"].append(time.process_time() - process)
                parts["magic: kernel thread"].append(time.thread_time() - kernel)
                parts["magic: runner thread"].append(time.clock_gettime(runner_clock) - worker)
                seed += 1
                worker = time.clock_gettime(runner_clock)
                runner.submit(bare_job(count, seed)).result(timeout=60)
                parts["client alone: runner thread"].append(
                    time.clock_gettime(runner_clock) - worker
                )
            figures[count] = {
                name: round(statistics.median(values) * 1000, 2) for name, values in parts.items()
            }
        runner.submit(client.aclose()).result(timeout=10)
        magic.close()
    return figures


def main(argv: list[str] | None = None) -> int:
    """Print the table (the jobs go to a history file of their own, not the user's)."""
    parser = argparse.ArgumentParser(prog="python -m bench.magic_threads", description=__doc__)
    parser.add_argument("--jobs", type=int, default=30, help="jobs per step count and part")
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 30])
    args = parser.parse_args(argv)
    for name in ("FAL_KEY", "FAL_KEY_ID", "FAL_KEY_SECRET"):
        os.environ.pop(name, None)
    with tempfile.TemporaryDirectory() as folder:
        os.environ["LTX_HISTORY_FILE"] = os.path.join(folder, "history.jsonl")
        figures = run_magic_threads(args.steps, args.jobs)
    names = list(next(iter(figures.values())))
    print("CPU ms per job, medians of", args.jobs)
    print("| steps | " + " | ".join(names) + " |")
    print("| --- |" + " --- |" * len(names))
    for count, row in figures.items():
        print(f"| {count} | " + " | ".join(f"{row[name]:.2f}" for name in names) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
