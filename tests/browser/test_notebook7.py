"""The magic and the panel under Notebook 7 (``jupyter notebook``), in Chromium: the same
notebook as in JupyterLab shows the live job view and a video that plays, and the panel's main
path (an LTX-2 endpoint picked and set, its clip playing) works as in JupyterLab."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._jupyter import JupyterServer, NotebookDriver
from .checks import assert_video_plays, watch_log
from .conftest import BrowserProblems, save_screenshot
from .panel_driver import ltx2_main_path

# Notebook 7.6's own keyboard-shortcuts plugin throws this while loading settings in a fresh
# profile (notebook_core.js: ``t.plugins[i].schema`` in its pluginChanged handler), before any
# cell runs and with ltx_jupyter not yet loaded. Allowed exactly, nothing broader.
NOTEBOOK7_SHORTCUTS_ERROR = (
    r"^page error: Cannot read properties of undefined \(reading 'schema'\)$"
)


def test_magic_notebook_runs_under_notebook_7(
    page: Any, notebook7: JupyterServer, problems: BrowserProblems, artifacts: Path
) -> None:
    problems.expect(NOTEBOOK7_SHORTCUTS_ERROR)
    notebook = NotebookDriver(page, notebook7, "magic-notebook7.ipynb").open()
    assert "/notebooks/" in page.url
    notebook.run_cells(0, 1, 2)
    view = notebook.cell(2).locator(".ltx-job-view")
    view.wait_for()
    steps = [s for s in watch_log(view) if s > 0]
    assert len(steps) >= 3 and steps[-1] == 40, steps
    assert "completed" in view.locator(".ltx-status").inner_text()

    video = view.locator("figure.ltx-video video")
    assert_video_plays(video)
    caption = view.locator("figure.ltx-video figcaption").inner_text()
    assert "seed 42" in caption, caption
    output = notebook.run_cell(3).locator(".jp-OutputArea").inner_text()
    assert "completed 42" in output, output
    save_screenshot(view, artifacts / "notebook7-job-view.png")


def test_panel_main_path_runs_under_notebook_7(
    page: Any, notebook7: JupyterServer, problems: BrowserProblems, artifacts: Path
) -> None:
    problems.expect(NOTEBOOK7_SHORTCUTS_ERROR)
    panel, _video = ltx2_main_path(page, notebook7, "panel-notebook7.ipynb", artifacts, "notebook7")
    assert "/notebooks/" in page.url
    save_screenshot(panel.root, artifacts / "notebook7-panel.png")
