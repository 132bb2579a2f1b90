"""``python -m bench.schema``: loading and validating against an endpoint's OpenAPI document.

Prints, for a large document (LTX-2.3 22B text to video) and a small one (LTX-2 text to video):

- ``cached, cold``: :func:`get_schema` reading the user cache file and parsing it (what the
  first job of a session pays for an endpoint the package does not ship), then validating;
- ``cached, warm``: the same once the file is parsed (a stat of the file, then validating);
- ``shipped, cold``: reading and parsing the shipped document (once per process);
- ``validate``: validating a typical input alone.

The target is under 2 ms for load + validate once cached. Figures only; nothing is asserted.
Also prints ``import ltx_jupyter``'s time in a fresh interpreter and whether it loaded any of
the schema modules (it should not).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._common import REPO_ROOT, summary

ENDPOINTS = {
    "fal-ai/ltx-2.3-22b/text-to-video": {
        "prompt": "A red fox trots through fresh snow at dawn.",
        "num_frames": 97,
        "video_size": {"width": 768, "height": 512},
        "fps": 24,
        "camera_lora": "dolly_in",
        "seed": 7,
    },
    "fal-ai/ltx-2/text-to-video": {
        "prompt": "A red fox trots through fresh snow at dawn.",
        "duration": 8,
        "resolution": "1080p",
        "generate_audio": True,
    },
}
REPEATS = 300


def timed(action: Callable[[], Any], repeats: int = REPEATS) -> dict[str, float]:
    """Microseconds per call of ``action``: median, p95, min, max, mean."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return summary(samples, scale=1e6, digits=1)


def measure(endpoint_id: str, data: dict[str, Any], cache: Path) -> dict[str, dict[str, float]]:
    from ltx_jupyter import _endpoints
    from ltx_jupyter._openapi import parse_document

    document = _endpoints.shipped_document(endpoint_id)
    # Store it in the cache under another id, as a fetched document would be.
    other = endpoint_id.replace("fal-ai/", "bench-org/")
    text = json.dumps(document).replace(endpoint_id, other)
    cache.mkdir(parents=True, exist_ok=True)
    entry = {"endpoint_id": other, "fetched_at": time.time(), "document": json.loads(text)}
    _endpoints._cache_file(cache, other).write_text(json.dumps(entry))

    def cached_cold() -> None:
        _endpoints._parsed_cache.clear()
        lookup = _endpoints.get_schema(other, cache_dir=cache, url="http://127.0.0.1:9/")
        assert lookup.source == "cache"
        assert lookup.schema.validate(data).ok

    def cached_warm() -> None:
        lookup = _endpoints.get_schema(other, cache_dir=cache, url="http://127.0.0.1:9/")
        assert lookup.schema.validate(data).ok

    def shipped_cold() -> None:
        parse_document(json.loads(_endpoints._shipped_bytes(endpoint_id)), endpoint_id)

    schema = _endpoints.get_schema(endpoint_id).schema
    return {
        "cached, cold (read + parse + validate)": timed(cached_cold),
        "cached, warm (stat + validate)": timed(cached_warm),
        "shipped, cold (read + parse)": timed(shipped_cold),
        "validate": timed(lambda: schema.validate(data)),
    }


def import_cost() -> tuple[float, list[str]]:
    """Seconds to ``import ltx_jupyter`` in a fresh interpreter, and schema modules loaded."""
    probe = (
        "import sys, time\n"
        "start = time.perf_counter()\n"
        "import ltx_jupyter\n"
        "print(time.perf_counter() - start)\n"
        "print(' '.join(m for m in sys.modules if m.split('.')[-1] in "
        "('_openapi', '_endpoints')))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    times, loaded = [], ""
    for _ in range(5):
        out = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
        ).stdout.splitlines()
        times.append(float(out[0]))
        loaded = out[1] if len(out) > 1 else ""
    return sorted(times)[len(times) // 2], loaded.split()


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        for endpoint_id, data in ENDPOINTS.items():
            fields = len(data)
            print(f"{endpoint_id} ({fields} fields given), microseconds over {REPEATS} calls:")
            for label, figures in measure(endpoint_id, data, Path(directory)).items():
                print(
                    f"  {label:42} median {figures['median']:8.1f}   p95 {figures['p95']:8.1f}"
                    f"   max {figures['max']:8.1f}"
                )
    seconds, loaded = import_cost()
    print(f"import ltx_jupyter: {seconds * 1000:.1f} ms (median of 5 fresh interpreters)")
    print(f"schema modules loaded by the import: {loaded or 'none'}")


if __name__ == "__main__":
    main()
