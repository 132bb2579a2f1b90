"""``%%ltx --sweep``: axes, every combination validated and priced before anything is sent,
``max_cost`` on the total, the concurrency cap as the server sees it, cancel, records, the
history's group record and resume; through a real shell against the local server."""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from ltx_jupyter import JobStatus
from ltx_jupyter._history import HistoryStore
from ltx_jupyter._sweeps import Sweep, parse_axis

from .shells import eventually, magics_of

LTX2 = "ltx-2/text-to-video"


@pytest.fixture
def make_shell(
    make_shell: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Any]:
    """The suite's ``make_shell``, with caches of the test's own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return make_shell


def submits(server: Any) -> int:
    return int(httpx.get(f"{server.url}/_local/stats").json()["by_kind"]["submit"])


def dry_run(shell: InteractiveShell, line: str, prompt: str = "a red fox") -> str:
    """The text a ``--dry-run`` sweep shows."""
    with capture_output() as captured:
        shell.run_cell_magic("ltx", f"{line} --dry-run", prompt)
    return str(captured.outputs[-1].data["text/plain"])


def cell_lines(text: str) -> dict[str, str]:
    """A dry run's cells: ``{"guidance = 3.0 · seed = 1": "seed: 1; ..."}``."""
    lines = [line for line in text.splitlines() if " = " in line and ": " in line]
    return dict(line.split(": ", 1) for line in lines)


# -- axes ----------------------------------------------------------------------------------------


def test_axis_values_are_json_option_values_text_or_drawn_seeds():
    assert parse_axis("guidance_scale=3,5,7").values == (3, 5, 7)
    assert parse_axis("guidance=3,5,7").values == (3.0, 5.0, 7.0)  # as --guidance reads them
    assert parse_axis("resolution=480p,720p").values == ("480p", "720p")
    sizes = parse_axis('video_size={"width": 64, "height": 64},{"width": 128, "height": 64}')
    assert sizes.values == ({"width": 64, "height": 64}, {"width": 128, "height": 64})
    assert parse_axis("size=704x480,landscape_4_3").values == (
        {"width": 704, "height": 480},
        "landscape_4_3",
    )
    assert parse_axis('negative_prompt="blurry, dark",text').values == ("blurry, dark", "text")
    assert parse_axis("endpoint=ltx-video,ltx-2/text-to-video").values == (
        "fal-ai/ltx-video",
        "fal-ai/ltx-2/text-to-video",
    )
    seeds = parse_axis("seed=random:4").values
    assert len(seeds) == 4 and len(set(seeds)) == 4
    assert all(isinstance(s, int) and 0 <= s < 2**31 for s in seeds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("guidance", "takes FIELD=V1,V2"),
        ("guidance=3,,5", "an empty value"),
        ("guidance=3,3", "given twice"),
        ("guidance=loud", "guidance: 'loud'"),
        ("steps=random:3", "only seed takes random values"),
        ("seed=random:0", "draws 1 to 64 seeds"),
        ("seed=random:many", "whole number"),
        ("prompt=a,b", "the prompt is the cell body"),
        ("endpoint=ltx-video,/", "endpoint"),
    ],
)
def test_a_bad_axis_is_a_one_line_error_naming_it(text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_axis(text)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert str(caught.value).startswith("%ltx: --sweep ")


# -- plans ---------------------------------------------------------------------------------------


def test_the_dry_run_shows_every_combination_of_three_axes_and_sends_nothing(
    make_shell, local_server
):
    shell = make_shell(local_server)
    before = submits(local_server)
    text = dry_run(shell, "--sweep guidance=3,5,7 --sweep seed=1,2 --sweep steps=10,20")
    cells = cell_lines(text)
    expected = list(itertools.product((3.0, 5.0, 7.0), (1, 2), (10, 20)))
    assert list(cells) == [f"guidance = {g} · seed = {s} · steps = {n}" for g, s, n in expected]
    for (guidance, seed, steps), shown in zip(expected, cells.values(), strict=True):
        assert f"guidance_scale: {guidance}" in shown
        assert f"seed: {seed}" in shown and f"num_inference_steps: {steps}" in shown
    assert "ltx sweep dry run · 3 guidance × 2 seed × 2 steps · nothing sent" in text
    assert '"prompt": "a red fox"' in text  # the shared input, once
    assert submits(local_server) == before


def test_option_names_map_to_fields_by_meaning_and_field_names_work_as_they_are(
    make_shell, local_server
):
    shell = make_shell(local_server)
    by_option = cell_lines(dry_run(shell, "--endpoint ltxv-13b-098-distilled --sweep fps=24,30"))
    assert [v.split(";")[0] for v in by_option.values()] == ["frame_rate: 24", "frame_rate: 30"]
    by_field = cell_lines(dry_run(shell, "--sweep guidance_scale=3,5"))
    assert [v.split(";")[0] for v in by_field.values()] == [
        "guidance_scale: 3",
        "guidance_scale: 5",
    ]
    by_size = cell_lines(
        dry_run(shell, "--endpoint ltx-2-19b/text-to-video --sweep size=64x64,square_hd")
    )
    assert [v.split("; ")[0] for v in by_size.values()] == [
        'video_size: {"width": 64, "height": 64}',
        'video_size: "square_hd"',
    ]


def test_every_combination_is_validated_first_and_a_bad_one_is_named(make_shell, local_server):
    shell = make_shell(local_server)
    before = submits(local_server)
    with pytest.raises(UsageError) as caught:
        shell.run_cell_magic("ltx", "--sweep seed=1,2 --sweep guidance=3,12", "a fox")
    message = str(caught.value)
    assert message.startswith("%ltx: --sweep cell seed = 1, guidance = 12.0: --guidance")
    assert "guidance_scale" in message and "\n" not in message
    with pytest.raises(UsageError, match=r"resolution = 4K: --resolution \(resolution\)"):
        shell.run_cell_magic("ltx", f"--endpoint {LTX2} --sweep resolution=1080p,4K", "a fox")
    with pytest.raises(UsageError, match="swept and also given by --guidance"):
        shell.run_cell_magic("ltx", "--guidance 4 --sweep guidance=3,5", "a fox")
    with pytest.raises(UsageError, match="swept twice"):
        shell.run_cell_magic("ltx", "--sweep guidance=3,5 --sweep guidance_scale=4", "a fox")
    with pytest.raises(UsageError, match="up to 3 axes"):
        shell.run_cell_magic(
            "ltx", "--sweep seed=1,2 --sweep steps=2,3 --sweep guidance=3,4 --sweep negative=a", "x"
        )
    assert not magics_of(shell).session.jobs
    assert submits(local_server) == before


def test_every_combination_is_priced_and_the_total_is_their_sum(make_shell, local_server):
    shell = make_shell(local_server)
    singles = []
    for seconds in (6, 8, 10):
        text = dry_run(shell, f"--endpoint {LTX2} --duration {seconds}").replace("--dry-run", "")
        with capture_output() as captured:
            shell.run_cell_magic("ltx", f"--endpoint {LTX2} --duration {seconds} --dry-run", "x")
        amount = re.search(r"estimated cost: \$(\d+\.\d+)", captured.outputs[-1].data["text/plain"])
        assert amount, text
        singles.append(float(amount.group(1)))
    text = dry_run(shell, f"--endpoint {LTX2} --sweep duration=6,8,10")
    shown = [float(m) for m in re.findall(r"est\. \$(\d+\.\d+)", text)]
    assert shown == singles
    total = re.search(r"estimated total: \$(\d+\.\d+) for 3 jobs", text)
    assert total and float(total.group(1)) == pytest.approx(sum(singles), abs=0.006)


def test_max_cost_counts_the_sweeps_total_and_refuses_before_any_request(make_shell, local_server):
    shell = make_shell(local_server, max_cost=1.0)
    before = submits(local_server)
    # One job of 10 s fits under $1; three of them do not.
    with capture_output():
        shell.run_cell_magic("ltx", f"--endpoint {LTX2} --duration 10 --dry-run", "x")
    with pytest.raises(UsageError) as caught:
        shell.run_cell_magic("ltx", f"--endpoint {LTX2} --sweep duration=6,8,10", "x")
    message = str(caught.value)
    assert "total estimate is $" in message and "for 3 jobs" in message
    assert "LtxMagics.max_cost ($1.00)" in message
    # A sweep whose price is unknown cannot be shown to fit a limit.
    with pytest.raises(UsageError, match="price unknown for 2 jobs"):
        shell.run_cell_magic("ltx", "--sweep seed=1,2 --steps 2", "x")
    assert submits(local_server) == before and not magics_of(shell).session.jobs


def test_an_endpoint_axis_sends_each_endpoint_only_the_fields_it_has(make_shell, local_server):
    shell = make_shell(local_server)
    with capture_output() as captured:
        shell.run_cell_magic(
            "ltx", f"--sweep endpoint=ltx-video,{LTX2} --seed 3 --steps 4 -o sweep", "a heron"
        )
    assert "ltx-2/text-to-video has no seed: --seed not sent" in captured.stderr
    sweep: Sweep = shell.user_ns["sweep"]
    sweep.wait(60)
    old, new = sweep["fal-ai/ltx-video"], sweep[f"fal-ai/{LTX2}"]
    assert old is not None and new is not None
    assert old.input["seed"] == 3 and old.input["num_inference_steps"] == 4
    assert "seed" not in new.input and "num_inference_steps" not in new.input
    # The local server refuses fields an endpoint lacks (422): both ran.
    assert old.status == new.status == JobStatus.COMPLETED, (old.error, new.error)


# -- running -------------------------------------------------------------------------------------


def test_a_sweep_returns_at_once_and_its_records_describe_every_job(make_shell, local_server):
    shell = make_shell(local_server)
    shell.run_cell_magic("ltx", "--sweep guidance=3,5 --sweep seed=11,12 --steps 3 -o s", "x")
    sweep: Sweep = shell.user_ns["s"]
    assert not sweep.done, "an interactive sweep must not wait"
    assert sweep.keys == [(3.0, 11), (3.0, 12), (5.0, 11), (5.0, 12)]
    assert sweep.job(guidance=5.0, seed=12) is sweep[5.0, 12]
    results = sweep.wait(60)
    assert all(r is not None for r in results.values())
    records = sweep.records()
    assert [(r["guidance"], r["seed"]) for r in records] == sweep.keys
    for record in records:
        assert record["status"] == "completed" and record["url"].startswith(local_server.url)
        assert record["duration"] > 0 and record["request_id"]
        assert {"cost", "currency", "endpoint", "error"} <= set(record)
    # Seeds come back from the results.
    assert [r["seed"] for r in records] == [11, 12, 11, 12]
    # A sweep as a cell's value is the plain grid.
    data, metadata = shell.display_formatter.format(sweep)
    assert data["text/html"].count("<video") == 4 and data["text/plain"].startswith("ltx sweep-")
    assert metadata["ltx_jupyter"]["sweep_id"] == sweep.id


def test_await_sweep_gives_the_results(make_shell, local_server):
    shell = make_shell(local_server)
    shell.run_cell_magic("ltx", "--sweep seed=1,2 --steps 2 -o s", "x")
    shell.run_cell("results = await s")
    results = shell.user_ns["results"]
    assert set(results) == {(1,), (2,)} and all(r is not None for r in results.values())


def _peak_overlap(server: Any, request_ids: list[str]) -> int:
    """The most requests the server held at once (queued or running), from its own records."""
    events = []
    for request_id in request_ids:
        state = httpx.get(f"{server.url}/_local/requests/{request_id}").json()
        events += [(state["created_at"], 1), (state["completed_at"], -1)]
    peak = current = 0
    for _moment, change in sorted(events, key=lambda e: (e[0], e[1])):
        current += change
        peak = max(peak, current)
    return peak


def test_the_server_never_sees_more_jobs_than_max_concurrent(make_shell, server_factory):
    server = server_factory(step_seconds=0.03, concurrency=8)
    shell = make_shell(server, max_concurrent=2)
    shell.run_cell_magic("ltx", "--sweep seed=1,2,3,4,5,6 --steps 6 -o s", "x")
    sweep: Sweep = shell.user_ns["s"]
    seen = []
    while not sweep.done:
        counts = httpx.get(f"{server.url}/health").json()["requests"]
        seen.append(counts["IN_QUEUE"] + counts["IN_PROGRESS"])
        time.sleep(0.01)
    assert max(seen) <= 2
    request_ids = [job.request_id for job in sweep.jobs.values()]
    assert all(request_ids) and len(set(request_ids)) == 6
    assert _peak_overlap(server, request_ids) == 2  # the cap, and used
    assert all(job.status == JobStatus.COMPLETED for job in sweep.jobs.values())


def test_cancel_stops_the_running_jobs_and_never_sends_the_waiting_ones(make_shell, server_factory):
    server = server_factory(step_seconds=0.1, concurrency=8)
    shell = make_shell(server, max_concurrent=2)
    shell.run_cell_magic("ltx", "--sweep seed=1,2,3,4,5 --steps 40 -o s", "x")
    sweep: Sweep = shell.user_ns["s"]
    eventually(lambda: sum(j.status == JobStatus.RUNNING for j in sweep.jobs.values()) == 2)
    assert sum(j.status == JobStatus.WAITING for j in sweep.jobs.values()) == 3
    assert len(sweep.cancel()) == 5
    eventually(lambda: sweep.done)
    assert all(j.status == JobStatus.CANCELLED for j in sweep.jobs.values())
    assert submits(server) == 2
    assert sum(r["request_id"] is None for r in sweep.records()) == 3
    for job in sweep.jobs.values():
        if job.request_id:
            state = httpx.get(f"{server.url}/_local/requests/{job.request_id}").json()
            assert "cancel" in state["error"].lower()


def test_the_history_records_the_sweep_as_a_group(make_shell, local_server, tmp_path):
    shell = make_shell(local_server)
    shell.run_cell_magic("ltx", "--sweep guidance=3,5 --sweep seed=1,2 --steps 2 -o s", "x")
    sweep: Sweep = shell.user_ns["s"]
    sweep.wait(60)
    history = HistoryStore(tmp_path / "history.jsonl")
    eventually(lambda: len(history.get_sweep(sweep.id).request_ids) == 4)
    record = history.get_sweep(sweep.id[:10])
    assert record is not None and record.sweep_id == sweep.id
    assert record.axes == [
        {"name": "guidance", "values": [3.0, 5.0]},
        {"name": "seed", "values": [1, 2]},
    ]
    assert [tuple(c["key"]) for c in record.cells] == sweep.keys
    by_cell = [record.request_ids[i] for i in range(4)]
    assert by_cell == [sweep[key].request_id for key in sweep.keys]
    # The group lines are their own kind: the journal's requests are the four jobs.
    assert len(history.entries()) == 4
    lines = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert [line["event"] for line in lines].count("sweep") == 1


def test_resume_brings_the_whole_sweep_back_in_a_new_shell(make_shell, server_factory):
    server = server_factory(step_seconds=0.05, concurrency=8)
    shell = make_shell(server, max_concurrent=4)
    shell.run_cell_magic("ltx", "--sweep seed=1,2,3 --sweep steps=20,30 -o s", "x")
    sweep: Sweep = shell.user_ns["s"]
    eventually(lambda: sum(bool(j.request_id) for j in sweep.jobs.values()) == 4)
    sent_before = {key: job.request_id for key, job in sweep.jobs.items() if job.request_id}
    shell.run_line_magic("unload_ext", "ltx_jupyter")  # the kernel goes: local following stops
    fresh = make_shell(server)
    with capture_output():
        resumed = fresh.run_line_magic("ltx", f"resume {sweep.id} --wait")
    assert isinstance(resumed, Sweep) and resumed.keys == sweep.keys
    for key, request_id in sent_before.items():
        assert resumed[key] is not None and resumed[key].request_id == request_id
        assert resumed[key].status == JobStatus.COMPLETED
    # The two never sent come back as such, not sent now.
    unsent = [r for r in resumed.records() if r["status"] == "not sent"]
    assert len(unsent) == 2 and submits(server) == 4
    with pytest.raises(UsageError, match="no sweep 'sweep-000000'"):
        fresh.run_line_magic("ltx", "resume sweep-000000")
