"""The panel's sweep row in JupyterLab, in Chromium: a field picked and its values typed, the
job count and total shown live, an out-of-range value turning "Run sweep" off with the reason,
then the sweep run and its grid filling in under the panel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._jupyter import JupyterServer, NotebookDriver, wait_until, write_notebook
from .conftest import REPO, save_screenshot
from .panel_driver import PanelDriver

SCREENSHOTS = REPO / "docs" / "screenshots"
NOTEBOOK = "panel-sweep.ipynb"
CELLS = [
    "%load_ext ltx_jupyter",
    "panel = %ltx panel\n"
    'panel.set(prompt="A paper boat drifts down a rain-soaked gutter.", num_inference_steps=3)\n'
    "panel",
    "print([r['status'] for s in panel.sweep_row.sweeps for r in s.records()])",
]


def test_a_sweep_typed_in_the_panel_runs_and_its_grid_appears_under_it(
    page: Any, lab: JupyterServer, jupyter_root: Path
) -> None:
    write_notebook(jupyter_root / NOTEBOOK, CELLS)
    notebook = NotebookDriver(page, lab, NOTEBOOK).open()
    notebook.run_cells(0, 1)
    panel = PanelDriver(notebook, cell=1)
    sweep = panel.root.locator(".ltx-sweep")
    sweep.wait_for()
    sweep.get_by_text("Sweep: one job per value").click()
    field = sweep.locator(".ltx-sweep-field select").first
    field.wait_for()
    field.select_option(value=field.evaluate(
        "s => [...s.options].find(o => o.textContent.includes('(guidance_scale)')).value"
    ))  # fmt: skip
    values = sweep.locator(".ltx-sweep-values input").first
    run = sweep.locator("button.ltx-run-sweep")
    message = sweep.locator(".ltx-sweep-message")
    summary = sweep.locator(".ltx-sweep-summary")

    values.fill("3, 60")
    reason = "guidance_scale = 60: guidance_scale: must be a number of at most 10, got 60"
    wait_until(lambda: reason in message.inner_text(), 15, f"no reason: {message.inner_text()!r}")
    assert run.is_disabled()

    values.fill("3, 6, 9")
    wait_until(lambda: run.is_enabled(), 15, f"Run sweep stayed off: {message.inner_text()!r}")
    assert summary.inner_text().startswith("3 jobs")
    run.click()
    grid = panel.root.locator(".ltx-sweep-grids .ltx-grid")
    grid.wait_for(timeout=30_000)
    assert [t.strip() for t in grid.locator("th.ltx-col").all_inner_texts()] == ["3", "6", "9"]
    wait_until(
        lambda: grid.evaluate(
            "g => [...g.querySelectorAll('.ltx-cell')].every(c => c.dataset.status === 'completed')"
        ),
        90,
        "the sweep's cells never all completed",
    )
    wait_until(lambda: grid.locator("video").count() == 3, 30, "the grid shows no videos")
    # The grid sits under the panel's controls and status line.
    above = panel.root.locator(".ltx-generate").bounding_box()
    below = grid.bounding_box()
    assert above is not None and below is not None and below["y"] > above["y"]
    output = notebook.run_cell(2).locator(".jp-OutputArea").inner_text()
    assert output.count("'completed'") == 3, output
    save_screenshot(panel.root, SCREENSHOTS / "panel-sweep.png")  # the README shows it
