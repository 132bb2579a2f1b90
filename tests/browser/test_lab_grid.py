"""The sweep grid and the gallery in JupyterLab, in Chromium: a 3×2 sweep's grid fills in live,
one play button plays all six videos in step (within 0.1 s of each other while playing and
after a scrub), and the gallery shows the history's runs with their posters."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from ._jupyter import JupyterServer, NotebookDriver, wait_until
from .conftest import REPO, save_screenshot

SCREENSHOTS = REPO / "docs" / "screenshots"
#: How far apart the grid's videos may be, in seconds.
SYNC_TOLERANCE = 0.1

VIDEO_STATES = """
grid => [...grid.querySelectorAll('video.ltx-cell-video')].map(v => ({
  t: v.currentTime, paused: v.paused, ready: v.readyState, src: v.currentSrc,
  duration: v.duration, error: v.error && v.error.message}))
"""

SCRUB = """
(grid, time) => {
  const scrubber = grid.querySelector('input.ltx-sync-scrubber');
  scrubber.value = String(time);
  scrubber.dispatchEvent(new Event('input', {bubbles: true}));
  scrubber.dispatchEvent(new Event('change', {bubbles: true}));
}
"""


def cell_statuses(grid: Any) -> list[str]:
    return list(
        grid.evaluate("g => [...g.querySelectorAll('.ltx-cell')].map(c => c.dataset.status)")
    )


def videos(grid: Any) -> list[dict[str, Any]]:
    return list(grid.evaluate(VIDEO_STATES))


def spread(states: list[dict[str, Any]]) -> float:
    times = [s["t"] for s in states]
    return max(times) - min(times)


def keep(path: Path, name: str) -> None:
    """Copy a screenshot into docs/screenshots (the README shows them)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, SCREENSHOTS / name)


def test_a_sweep_grid_fills_in_live_and_plays_every_video_in_step(
    page: Any, lab: JupyterServer, artifacts: Path
) -> None:
    notebook = NotebookDriver(page, lab, "grid.ipynb").open()
    notebook.run_cells(0, 1)
    grid = notebook.cell(1).locator(".ltx-grid")
    grid.wait_for()
    assert [t.strip() for t in grid.locator("th.ltx-row").all_inner_texts()] == [
        "3.0",
        "5.0",
        "7.0",
    ]
    assert [t.strip() for t in grid.locator("th.ltx-col").all_inner_texts()] == ["1", "2"]
    assert grid.locator(".ltx-cell").count() == 6

    # The one-worker server runs the six jobs one after another: sample the grid meanwhile.
    seen: list[list[str]] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        statuses = cell_statuses(grid)
        if not seen or statuses != seen[-1]:
            seen.append(statuses)
        if statuses == ["completed"] * 6 and len(videos(grid)) == 6:
            break
        time.sleep(0.1)
    assert seen[-1] == ["completed"] * 6, seen
    partial = [s for s in seen if 0 < s.count("completed") < 6]
    assert len(partial) >= 3, seen  # cells completed one by one, live
    assert any("running" in s for s in seen) and any("queued" in s or "waiting" in s for s in seen)
    output = notebook.run_cell(2).locator(".jp-OutputArea").inner_text()
    assert output.count("'completed'") == 6, output

    wait_until(
        lambda: all(v["ready"] >= 2 for v in videos(grid)) and len(videos(grid)) == 6,
        30,
        "the six videos never loaded",
    )
    assert all(v["error"] is None and v["duration"] > 1 for v in videos(grid))
    grid.locator("button.ltx-sync-play").click()
    samples = []
    for _ in range(12):
        time.sleep(0.12)
        samples.append(videos(grid))
    playing = [s for s in samples if not any(v["paused"] for v in s)]
    assert len(playing) >= 8, [[(v["t"], v["paused"]) for v in s] for s in samples]
    assert all(spread(s) < SYNC_TOLERANCE for s in playing), [spread(s) for s in samples]
    times = [s[0]["t"] for s in playing]
    assert len(set(times)) > 3, times  # the clock moved: they play

    grid.evaluate(SCRUB, 1.0)
    wait_until(lambda: not any(v["paused"] for v in videos(grid)), 10, "did not resume after scrub")
    after = []
    for _ in range(8):
        time.sleep(0.1)
        after.append(videos(grid))
    assert all(spread(s) < SYNC_TOLERANCE for s in after), [spread(s) for s in after]
    assert all(not any(v["paused"] for v in s) for s in after[:3])
    assert 0.95 <= after[0][0]["t"] <= 1.6, after[0]  # the scrub moved them all to 1.0 s

    grid.locator("button.ltx-sync-play").click()  # pause all
    wait_until(lambda: all(v["paused"] for v in videos(grid)), 10, "pause did not pause all")
    time.sleep(0.3)
    assert spread(videos(grid)) < SYNC_TOLERANCE
    grid.evaluate(SCRUB, 0.5)
    time.sleep(0.5)
    paused = videos(grid)
    assert all(v["paused"] for v in paused) and spread(paused) < SYNC_TOLERANCE
    assert all(abs(v["t"] - 0.5) < SYNC_TOLERANCE for v in paused), paused
    shot = save_screenshot(grid, artifacts / "sweep-grid.png")
    keep(shot, "sweep-grid.png")


def test_the_gallery_shows_every_run_with_its_poster(
    page: Any, lab: JupyterServer, artifacts: Path
) -> None:
    notebook = NotebookDriver(page, lab, "gallery.ipynb").open()
    notebook.run_cell(0)
    notebook.run_cell(1, timeout=120_000)
    notebook.run_cell(2)
    gallery = notebook.cell(2).locator(".ltx-gallery")
    gallery.wait_for()
    tiles = gallery.locator(".ltx-tile")
    wait_until(lambda: tiles.count() >= 6, 20, "no tiles")
    visible = [t for t in tiles.all() if t.is_visible()]
    assert len(visible) == 6
    assert "lighthouse beam" in visible[0].inner_text()
    wait_until(lambda: gallery.locator(".ltx-tile img").count() >= 6, 60, "the posters never came")
    natural = gallery.locator(".ltx-tile img").first.evaluate("i => i.naturalWidth")
    assert natural > 0
    assert "page 1 of" in gallery.inner_text()
    visible[0].get_by_role("button", name="play").click()
    video = visible[0].locator("video")
    video.wait_for()
    shot = save_screenshot(gallery, artifacts / "gallery.png")
    keep(shot, "gallery.png")
