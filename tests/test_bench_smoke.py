"""The benchmark's CI smoke run: ``python -m bench.run --quick`` completes and writes its JSON.

Only that the benchmark works is checked, never a speed: benchmarks are not timed tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(600)
def test_quick_benchmark_runs_and_writes_json(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert "Clients:" in completed.stdout and "Magic:" in completed.stdout
    assert "Startup (" in completed.stdout

    clients = json.loads((tmp_path / "clients.json").read_text())
    assert {"machine", "loopback_round_trip_ms", "clients", "targets"} <= set(clients)
    for name in ("ours", "fal-client"):
        figures = clients["clients"][name]
        assert figures["jobs"] > 0
        assert {"completion_to_result_ms", "http_requests_per_job", "cpu_ms_per_job"} <= set(
            figures
        )
        assert {"wall_s", "ideal_s", "errors", "peak_growth_mb"} <= set(figures["burst"])

    server = json.loads((tmp_path / "server.json").read_text())
    assert {"streams", "polls", "long_log"} <= set(server)
    assert server["streams"]["completed"] == server["streams"]["streams"]

    magic = json.loads((tmp_path / "magic.json").read_text())
    assert {"return", "headless", "kernel", "targets"} <= set(magic)
    assert magic["return"]["return_ms"]["n"] > 0
    assert magic["headless"]["bytes_added"] > 0
    assert magic["kernel"]["log_job"]["comm_messages"] > 0

    startup = json.loads((tmp_path / "startup.json").read_text())
    (figures,) = startup["trees"].values()
    assert figures["import_ms"]["n"] == figures["load_ext_ms"]["n"] > 0
    assert figures["load_ext_ms"]["median"] > 0

    magic_path = json.loads((tmp_path / "magic_path.json").read_text())
    for worker in magic_path["workers"].values():
        assert worker["jobs"] > 0 and not worker["errors"]
    assert {"latency_at_most_tenth_of_fal", "cpu_at_most_fal"} <= set(magic_path["targets"])


@pytest.mark.timeout(300)
def test_the_thread_split_benchmark_prints_a_row_per_step_count(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bench.magic_threads", "--jobs", "1", "--steps", "1", "3"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state")},
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    rows: dict[int, list[float]] = {}
    for line in completed.stdout.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[0].isdigit():
            rows[int(cells[0])] = [float(cell) for cell in cells[1:]]
    assert sorted(rows) == [1, 3]
    assert all(len(row) == 4 and min(row) > 0 for row in rows.values())
    assert not list(tmp_path.rglob("history.jsonl")), "the jobs went to the user's history"
