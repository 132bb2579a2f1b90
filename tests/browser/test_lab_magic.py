"""``%%ltx`` in JupyterLab, in Chromium: the live job view, the video, Cancel, and escaping."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from ._jupyter import JupyterServer, NotebookDriver, wait_until
from .checks import (
    assert_log_scrolled_to_end,
    assert_video_plays,
    record_statuses,
    status_words,
    statuses,
    watch_log,
)
from .conftest import BrowserProblems, save_screenshot
from .notebooks import XSS_PROMPT


def server_request(server: Any, request_id: str) -> dict[str, Any]:
    """The local server's own record of a request."""
    response = httpx.get(f"{server.url}/_local/requests/{request_id}", timeout=10)
    response.raise_for_status()
    return dict(response.json())


def test_job_view_shows_the_live_log_the_statuses_and_a_playing_video(
    page: Any, lab: JupyterServer, ltx_server: Any, artifacts: Path
) -> None:
    notebook = NotebookDriver(page, lab, "magic.ipynb").open()
    record_statuses(page)
    notebook.run_cells(0, 1, 2)
    view = notebook.cell(2).locator(".ltx-job-view")
    view.wait_for()

    steps = watch_log(view)
    # The log grew while the job ran: several different last steps were on screen.
    running = [s for s in steps if s > 0]
    assert len(running) >= 4 and running == sorted(running), steps
    assert running[-1] == 40, steps
    words = status_words(statuses(page, 2))
    assert [w for w in words if w in ("queued", "running", "completed")] == [
        "queued",
        "running",
        "completed",
    ], statuses(page, 2)
    assert_log_scrolled_to_end(view)
    assert "done in" in view.locator("pre.ltx-log").inner_text()

    video = view.locator("figure.ltx-video video")
    state = assert_video_plays(video)
    assert state["src"].startswith(ltx_server.url), state
    caption = view.locator("figure.ltx-video figcaption").inner_text()
    assert "seed 42" in caption and "40 steps" in caption, caption
    # The Cancel button goes once the job is done.
    assert not view.get_by_role("button", name="Cancel").is_visible()

    output = notebook.run_cell(3).locator(".jp-OutputArea").inner_text()
    assert "completed 42" in output, output
    request_id = output.split()[-1]
    assert server_request(ltx_server, request_id)["state"] == "COMPLETED"
    assert request_id in caption
    save_screenshot(view, artifacts / "job-view.png")


def test_cancel_in_the_job_view_cancels_the_request(
    page: Any, lab: JupyterServer, ltx_server: Any, artifacts: Path
) -> None:
    notebook = NotebookDriver(page, lab, "cancel.ipynb").open()
    notebook.run_cells(0, 1)
    view = notebook.cell(1).locator(".ltx-job-view")
    status = view.locator(".ltx-status")
    wait_until(lambda: "running" in status.inner_text(), 30, "the job never ran")
    wait_until(lambda: "step 3/40" in view.locator("pre.ltx-log").inner_text(), 30, "no log lines")

    view.get_by_role("button", name="Cancel").click()
    wait_until(lambda: "cancelled" in status.inner_text(), 30, "the view never said cancelled")
    assert not view.locator("video").count()
    save_screenshot(view, artifacts / "job-view-cancelled.png")

    output = notebook.run_cell(2).locator(".jp-OutputArea").inner_text()
    match = re.search(r"request (\S+) cancelled", output)
    assert match, output
    record = server_request(ltx_server, match.group(1))
    assert record["error_type"] == "request_cancelled", record
    assert record["state"] == "COMPLETED", record


def test_a_prompt_with_markup_shows_as_text_and_runs_no_script(
    page: Any, lab: JupyterServer, problems: BrowserProblems, artifacts: Path
) -> None:
    notebook = NotebookDriver(page, lab, "xss.ipynb").open()
    notebook.run_cells(0, 1)
    view = notebook.cell(1).locator(".ltx-job-view")
    view.locator("figure.ltx-video video").wait_for(timeout=60_000)
    table = notebook.run_cell(2).locator(".jp-OutputArea")
    wait_until(lambda: XSS_PROMPT in table.inner_text(), 10, "the prompt is not shown as text")

    assert not page.locator('img[src="x"]').count(), "the prompt became an <img> element"
    assert not problems.dialogs, problems.dialogs
    save_screenshot(notebook.cell(2), artifacts / "jobs-table-markup.png")
