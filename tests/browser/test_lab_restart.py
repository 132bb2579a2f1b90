"""A kernel restart in JupyterLab, in Chromium: a person starts a long job, picks Kernel →
Restart Kernel… while it runs, loads the extension again, finds the job in ``%ltx jobs``
(still running, with the command that resumes it), types that command into a cell, and gets
the live view back and then a video that plays."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ._jupyter import JupyterServer, NotebookDriver, wait_until, write_notebook
from .checks import assert_video_plays, watch_log
from .conftest import _jupyter, save_screenshot

CELLS = [
    "%load_ext ltx_jupyter",
    "%%ltx --seed 9 --steps 50 -o long\nA lantern drifts down a dark river, outliving its kernel.",
    "%load_ext ltx_jupyter",
    "%ltx jobs",
    "",  # the person types the resume command here
]


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One worker and slow steps: 50 steps take 20 s, longer than a restart."""
    from ltx_jupyter.server import LocalServer, ServerConfig

    config = ServerConfig(
        port=0,
        data_dir=tmp_path_factory.mktemp("restart-server"),
        step_seconds=0.4,
        concurrency=1,
        width=128,
        height=96,
        num_frames=25,
    )
    with LocalServer(config) as server:
        yield server


@pytest.fixture(scope="module")
def restart_lab(
    slow_server: Any, tmp_path_factory: pytest.TempPathFactory, artifacts: Path
) -> Iterator[JupyterServer]:
    root = tmp_path_factory.mktemp("restart-root")
    write_notebook(root / "restart.ipynb", CELLS)
    yield from _jupyter("lab", root, slow_server, tmp_path_factory, artifacts)


def restart_kernel(page: Any) -> None:
    """Kernel → Restart Kernel…, then Restart in the dialog, as a person does."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Kernel$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Restart Kernel…$")).click()
    page.locator(".jp-Dialog").get_by_role("button", name="Confirm Kernel Restart").click()


def test_after_kernel_restart_resume_brings_back_the_view_and_the_video(
    page: Any, restart_lab: JupyterServer, slow_server: Any, artifacts: Path
) -> None:
    notebook = NotebookDriver(page, restart_lab, "restart.ipynb").open()
    notebook.run_cells(0, 1)
    old_view = notebook.cell(1).locator(".ltx-job-view")
    wait_until(
        lambda: "step 3/50" in old_view.locator("pre.ltx-log").inner_text(), 60, "no log lines"
    )

    restart_kernel(page)
    notebook.wait_idle()
    # A fresh kernel: the next cell run is its first.
    prompt = notebook.run_cell(2).locator(".jp-InputArea-prompt")
    assert prompt.inner_text().strip() == "[1]:", prompt.inner_text()

    table = notebook.run_cell(3).locator(".jp-OutputArea")
    wait_until(lambda: "%ltx resume" in table.inner_text(), 30, "no resume command shown")
    row = table.locator("tr", has_text="%ltx resume")
    assert row.count() == 1
    cells = [c.strip() for c in row.locator("td").all_inner_texts()]
    request_id, status, command = cells[0], cells[1], cells[-1]
    assert status == "running", cells
    assert command == f"%ltx resume {request_id}", cells
    save_screenshot(notebook.cell(3), artifacts / "jobs-after-restart.png")

    # The person copies the command into the empty cell and runs it.
    notebook.cell(4).locator(".jp-InputArea-editor").click()
    page.keyboard.type(command)
    notebook.run_cell(4)
    view = notebook.cell(4).locator(".ltx-job-view")
    view.wait_for()
    steps = [s for s in watch_log(view, timeout=90) if s > 0]
    assert len(steps) >= 2 and steps[-1] == 50, steps  # live, up to the last step
    assert "completed" in view.locator(".ltx-status").inner_text()
    video = view.locator("figure.ltx-video video")
    state = assert_video_plays(video)
    assert state["src"].startswith(slow_server.url), state
    caption = view.locator("figure.ltx-video figcaption").inner_text()
    assert "seed 9" in caption and request_id in caption, caption
    save_screenshot(view, artifacts / "job-view-resumed.png")
