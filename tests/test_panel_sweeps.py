"""The panel's sweep row as a person uses it, through ``%ltx panel`` in a real shell against the
local server: fields of the chosen endpoint offered, values typed as a comma list, the job
count and total priced live, invalid values and ``max_cost`` turning "Run sweep" off with the
reason, the grid under the panel, and the concurrency cap shared with the magic's sweeps."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from ltx_jupyter import JobStatus
from ltx_jupyter._grid import VideoGrid
from ltx_jupyter._panel import Panel
from ltx_jupyter._pricing import format_money, load_table
from ltx_jupyter._sweeps import Sweep
from tests.shells import eventually, magics_of
from tests.test_magics import server_state, submits
from tests.test_panel import LTX2, env, text_of
from tests.test_sweeps import _peak_overlap

__all__ = ["env"]  # a fixture, used by name

SEED_ENDPOINT = "fal-ai/ltx-video"


def open_gallery(shell: Any) -> Any:
    """``%ltx gallery`` as in a kernel where a person works: the widget."""
    shell.kernel = object()
    try:
        return shell.run_line_magic("ltx", "gallery")
    finally:
        del shell.kernel


def open_panel(shell: Any) -> Panel:
    panel: Panel = shell.run_line_magic("ltx", "panel")
    return panel


def finished_sweep(sweep: Sweep, timeout: float = 60.0) -> Sweep:
    eventually(lambda: sweep.done, timeout)
    return sweep


def run_text(panel: Panel) -> tuple[bool, str, str]:
    """Whether "Run sweep" is on, the count and total beside it, and the line under it."""
    row = panel.sweep_row
    assert row is not None
    return (not row.run_button.disabled, text_of(row.summary), text_of(row.message))


def test_a_sweep_row_runs_one_job_per_combination_over_the_panels_input(make_shell, env):
    shell = make_shell(env)
    panel = open_panel(shell)
    row = panel.sweep_row
    assert row is not None and panel.section("sweep") is row
    assert row.section.selected_index is None, "folded until a person opens it"
    offered = [value for _label, value in row.axes[0].field.options]
    assert offered[:3] == [None, "endpoint", "negative_prompt"]
    assert {"guidance_scale", "num_inference_steps", "seed"} <= set(offered)
    assert "prompt" not in offered, "the prompt is the input every job shares"
    assert run_text(panel) == (False, "", "Pick a field and type its values to sweep.")

    axis = row.axes[0]
    axis.field.value = "guidance_scale"
    assert text_of(axis.hint) == "a number of at most 10", "what the field takes"
    axis.values.value = "3, 5, 7"
    assert run_text(panel)[2] == "Write a prompt to sweep."
    panel.control("prompt").text.value = "A paper boat drifts down a rain-soaked gutter"
    panel.control("num_inference_steps").box.value = 4
    second = row.add_axis("seed", "1, 2")
    assert "random:N" in text_of(second.hint)
    on, summary, message = run_text(panel)
    assert on and summary.startswith("6 jobs ≈ price unknown for 6 jobs"), summary
    assert message == ""

    before = submits(env)
    row.run_button.click()
    (sweep,) = row.sweeps
    assert len(sweep) == 6 and sweep.keys[0] == (3, 1) and sweep.keys[-1] == (7, 2)
    grid = panel.section("sweeps").children[0]
    assert isinstance(grid, VideoGrid) and grid is row.grids[0]
    children = list(panel.children)
    assert children.index(panel.section("sweeps")) > children.index(row), "under the controls"
    assert (grid.row_labels, grid.col_labels) == (["3", "5", "7"], ["1", "2"])
    finished_sweep(sweep)
    assert all(job.status == JobStatus.COMPLETED for job in sweep.jobs.values())
    assert submits(env) == before + 6
    sent = {
        (state["input"]["guidance_scale"], state["input"]["seed"]): state["input"]
        for job in sweep.jobs.values()
        if (state := server_state(env, job.request_id))
    }
    assert set(sent) == {(g, s) for g in (3, 5, 7) for s in (1, 2)}
    for inputs in sent.values():
        assert inputs["prompt"] == "A paper boat drifts down a rain-soaked gutter"
        assert inputs["num_inference_steps"] == 4, "the panel's other fields go to every job"
    eventually(lambda: "1 sweep (6 of 6 jobs ended)" in panel.status_line())
    history = magics_of(shell).session.history
    assert history.get_sweep(sweep.id) is not None, "recorded as a group, as the magic's are"


def test_invalid_values_and_max_cost_turn_run_sweep_off_with_the_reason(make_shell, env):
    price = load_table().price(LTX2)
    assert price is not None and price.unit == "second"
    shell = make_shell(env, max_cost=1.0)
    panel = open_panel(shell)
    row = panel.sweep_row
    assert row is not None
    panel.control("prompt").text.value = "A lighthouse in a storm"

    row.set_axes(guidance_scale="3, 50")
    on, _summary, message = run_text(panel)
    assert not on
    assert message.startswith("Run sweep is off: cell guidance_scale = 50: guidance_scale: ")
    assert "must be a number of at most 10, got 50" in message and "--" not in message, message
    assert row.run() is None and row.sweeps == []

    row.set_axes(guidance_scale="3, 5, 5")
    assert run_text(panel)[2] == "Run sweep is off: guidance_scale: the value 5 is given twice"
    row.set_axes(seed="1, two")
    assert "seed: 'two'" in run_text(panel)[2]
    row.axes[0].field.value = None
    assert run_text(panel)[2] == "Run sweep is off: pick the field that '1, two' are values of"

    # On LTX-2: every duration of the axis priced, the total over max_cost refused.
    panel.endpoint_choice.value = LTX2
    row.set_axes(duration="6, 8, 10", resolution="1080p, 1440p")
    factor = next(m.factors["1440p"] for m in price.multipliers if m.field == "resolution")
    total = sum(price.unit_price * d * f for d in (6, 8, 10) for f in (1.0, factor))
    on, summary, message = run_text(panel)
    assert summary == f"6 jobs ≈ {format_money(total, 'USD')} for 6 jobs"
    assert not on and total > 1.0
    assert message.startswith(
        f"Run sweep is off: the sweep's total estimate is {format_money(total, 'USD')} for 6 "
        "jobs, over LtxMagics.max_cost ($1.00)"
    )
    row.set_axes(duration="6, 8")
    on, summary, message = run_text(panel)
    assert on and summary == f"2 jobs ≈ {format_money(price.unit_price * 14, 'USD')} for 2 jobs"

    # A control's own refusal (an upload of the wrong kind) also stops it.
    panel.endpoint_choice.value = "fal-ai/ltx-2/image-to-video"
    from tests.picker_frontend import send_file

    send_file(panel.control("image_url"), "notes.txt", b"just some text here")
    assert not run_text(panel)[0]
    assert "notes.txt is not an image" in run_text(panel)[2]


def test_random_seeds_stay_put_while_the_text_does_and_are_drawn_again_after_a_run(make_shell, env):
    shell = make_shell(env)
    panel = open_panel(shell)
    row = panel.sweep_row
    assert row is not None
    panel.control("prompt").text.value = "Rain on a tin roof"
    panel.control("num_inference_steps").box.value = 2
    row.set_axes(seed="random:3")
    planned = [cell.key for cell in row.plan.cells]
    assert len({key[0] for key in planned}) == 3
    panel.control("guidance_scale").box.value = 4.5  # the plan is made again...
    assert [cell.key for cell in row.plan.cells] == planned  # ...with the same seeds
    sweep = row.run()
    assert sweep is not None and sweep.keys == planned
    assert [cell.key for cell in row.plan.cells] != planned, "the next run draws new seeds"
    finished_sweep(sweep)
    assert {job.result.seed for job in sweep.jobs.values()} == {key[0] for key in planned}


def test_an_endpoint_axis_and_a_switch_of_endpoint(make_shell, env):
    shell = make_shell(env)
    panel = open_panel(shell)
    row = panel.sweep_row
    assert row is not None
    panel.control("prompt").text.value = "A red kite over a hill"
    row.set_axes(guidance_scale="3, 4")
    panel.endpoint_choice.value = LTX2
    assert row.axes[0].field.value is None, "LTX-2 has no guidance_scale"
    assert "guidance_scale" not in [v for _l, v in row.axes[0].field.options]
    assert "duration" in [v for _l, v in row.axes[0].field.options]
    panel.endpoint_choice.value = SEED_ENDPOINT
    row.set_axes(endpoint="ltx-video, ltx-2/text-to-video")
    on, summary, message = run_text(panel)
    assert on and summary.startswith("2 jobs"), (summary, message)
    assert "ltx-2/text-to-video has no negative_prompt: not sent" in message
    assert [cell.endpoint for cell in row.plan.cells] == [SEED_ENDPOINT, LTX2]


def test_panel_and_magic_sweeps_share_one_concurrency_cap(make_shell, server_factory, env):
    server = server_factory(step_seconds=0.05, concurrency=8)
    shell = make_shell(server, max_concurrent=3)
    magics = magics_of(shell)
    panel = open_panel(shell)
    row = panel.sweep_row
    assert row is not None and row.limit is magics.limit
    shell.run_line_magic("config", "LtxMagics.max_concurrent = 2")
    assert row.limit is magics.limit and row.limit.size == 2, "a changed cap applies to both"

    panel.control("prompt").text.value = "Leaves falling in a courtyard"
    panel.control("num_inference_steps").box.value = 8
    shell.run_cell_magic("ltx", "--sweep seed=1,2,3 --steps 8 -o magic_sweep", "x")
    panel_sweep = panel.run_sweep(seed="11, 12, 13")
    assert panel_sweep is not None
    magic_sweep: Sweep = shell.user_ns["magic_sweep"]
    seen = []
    while not (panel_sweep.done and magic_sweep.done):
        counts = httpx.get(f"{server.url}/health").json()["requests"]
        seen.append(counts["IN_QUEUE"] + counts["IN_PROGRESS"])
        time.sleep(0.01)
    assert max(seen) <= 2
    jobs = [*magic_sweep.jobs.values(), *panel_sweep.jobs.values()]
    assert all(job.status == JobStatus.COMPLETED for job in jobs)
    assert _peak_overlap(server, [job.request_id for job in jobs]) == 2


def test_cancel_and_close_reach_the_sweeps(make_shell, server_factory, env):
    server = server_factory(step_seconds=0.1, concurrency=8)
    shell = make_shell(server, max_concurrent=1)
    panel = open_panel(shell)
    panel.control("prompt").text.value = "A slow tide"
    panel.control("num_inference_steps").box.value = 40
    sweep = panel.run_sweep(seed="1, 2, 3")
    assert sweep is not None
    eventually(lambda: not panel.cancel_button.disabled)
    eventually(lambda: any(j.status == JobStatus.RUNNING for j in sweep.jobs.values()))
    panel.cancel_button.click()
    finished_sweep(sweep)
    assert all(job.status == JobStatus.CANCELLED for job in sweep.jobs.values())
    assert submits(server) == 1, "the waiting ones were never sent"
    eventually(lambda: panel.cancel_button.disabled)
    grid = panel.sweep_row.grids[0]
    panel.close()
    assert grid.comm is None and panel.sweep_row.grids_box.comm is None


@pytest.mark.parametrize("closed", [False, True])
def test_the_gallery_loads_a_run_into_the_open_panel(make_shell, env, closed):
    shell = make_shell(env)
    job = shell.run_line_magic(
        "ltx", "--endpoint ltx-2/text-to-video --duration 8 --resolution 1440p a fox at dawn"
    )
    eventually(lambda: job.done)
    gallery_without = open_gallery(shell)
    assert gallery_without.tiles[0].load_button.layout.display == "none", "no panel yet"

    panel = open_panel(shell)
    if closed:
        panel.close()
    gallery = open_gallery(shell)
    load = gallery.tiles[0].load_button
    if closed:
        assert load.layout.display == "none", "a closed panel takes nothing"
        return
    assert load.layout.display is None
    assert panel.endpoint == SEED_ENDPOINT
    load.click()
    assert panel.endpoint == LTX2 and panel.endpoint_choice.value == LTX2
    assert panel.arguments() == {**panel.form.defaults, **job.input}
    assert panel.control("duration").value == 8
    assert not panel.generate_button.disabled
