"""``python -m bench.uploads``: a 20 MB phone photo as the first frame, on loopback.

Against ``ltx-jupyter serve`` in its own process (so the server's CPU is not the client's):

- ``upload``: :meth:`QueueClient.upload_file` of the photo (initiate, then the PUT), in seconds
  and MB/s, with the number of progress reports per upload;
- ``job with the photo``: a 2-step image-to-video job through :class:`JobSession`, as
  ``%%ltx --image photo.jpg`` runs it (the kind check, the upload, the submit, the run, the
  result), seconds from start to the video;
- ``job with a small image``: the same job with a 256x192 JPEG inlined (under the data URI
  limit it is not uploaded), so the difference is what the large upload costs.

Figures only; nothing is asserted. Writes ``bench/results/uploads.json`` (``--out DIR``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from ._common import REPO_ROOT, ServerProcess, summary

REPEATS = 5


async def _upload_once(url: str, photo: Path) -> tuple[float, int]:
    from ltx_jupyter import QueueClient

    reports = 0

    def progress(sent: int, total: int) -> None:
        nonlocal reports
        reports += 1

    async with QueueClient(queue_url=url) as client:
        data = photo.read_bytes()
        started = time.perf_counter()
        await client.upload(data, "image/jpeg", photo.name, on_progress=progress)
        return time.perf_counter() - started, reports


def _job_once(url: str, image: Path) -> float:
    from ltx_jupyter import JobSession
    from ltx_jupyter._history import HistoryStore

    with tempfile.TemporaryDirectory() as folder:
        session = JobSession(history=HistoryStore(Path(folder) / "history.jsonl"))
        try:
            started = time.perf_counter()
            job = session.start(
                "fal-ai/ltx-video/image-to-video",
                {
                    "prompt": "the photo comes alive",
                    "image_url": str(image),
                    "num_inference_steps": 2,
                },
                queue_url=url,
            )
            job.wait(300)
            return time.perf_counter() - started
        finally:
            session.close()


def run_uploads(repeats: int = REPEATS) -> dict[str, Any]:
    """Every figure of this benchmark, as JSON-ready data."""
    from tests.photos import write_photo

    with tempfile.TemporaryDirectory() as folder, ServerProcess("--step-seconds", "0.02") as server:
        photo = write_photo(Path(folder) / "photo.jpg")
        small = write_photo(Path(folder) / "small.jpg", 256, 192)
        size_mb = photo.stat().st_size / 1e6
        small_kb = small.stat().st_size / 1e3
        uploads = [asyncio.run(_upload_once(server.url, photo)) for _ in range(repeats)]
        seconds = [s for s, _ in uploads]
        with_photo = [_job_once(server.url, photo) for _ in range(repeats)]
        with_small = [_job_once(server.url, small) for _ in range(repeats)]
    return {
        "photo_mb": round(size_mb, 2),
        "small_image_kb": round(small_kb, 1),
        "upload_s": summary(seconds, digits=3),
        "upload_mb_per_s": summary([size_mb / s for s in seconds], digits=0),
        "progress_reports_per_upload": uploads[0][1],
        "job_with_photo_s": summary(with_photo, digits=3),
        "job_with_small_image_s": summary(with_small, digits=3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO_ROOT / "bench" / "results"))
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = parser.parse_args()
    result = run_uploads(args.repeats)
    result["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    result["cpus"] = os.cpu_count()
    result["load_average"] = os.getloadavg()
    print(f"photo: {result['photo_mb']} MB JPEG, {args.repeats} runs each (median / p95)")
    up, rate = result["upload_s"], result["upload_mb_per_s"]
    print(f"upload:                 {up['median']} / {up['p95']} s  ({rate['median']:.0f} MB/s)")
    for name in ("job_with_photo_s", "job_with_small_image_s"):
        figures, label = result[name], name.removesuffix("_s").replace("_", " ")
        print(f"{label:23} {figures['median']} / {figures['p95']} s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "uploads.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
