"""An LTX-2 job in JupyterLab, in Chromium: its video plays, with sound."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ._jupyter import (
    JupyterServer,
    NotebookDriver,
    wait_until,
    write_notebook,
)
from .checks import assert_video_plays
from .conftest import launch_chromium, save_screenshot

NOTEBOOK = "ltx2-sound.ipynb"
CELLS = [
    "%load_ext ltx_jupyter",
    "%%ltx --endpoint ltx-2/text-to-video --duration 6 --audio -o surf\n"
    "Waves roll onto a pebble beach at dusk, foam hissing between the stones.",
    "print(surf.status.value, surf.request_id)",
]

#: Sound may start without a click on the page (a person would click play), and the page
#: exposes the video's audio tracks.
SOUND_ARGS = [
    "--autoplay-policy=no-user-gesture-required",
    "--enable-blink-features=AudioVideoTracks",
]

PLAY_WITH_SOUND = """
async (video) => {
  video.muted = false;
  video.volume = 1;
  await video.play();
}
"""

SOUND_STATE = """
v => ({currentTime: v.currentTime, muted: v.muted, paused: v.paused,
       audioTracks: v.audioTracks ? v.audioTracks.length : null,
       audioBytes: v.webkitAudioDecodedByteCount, videoBytes: v.webkitVideoDecodedByteCount,
       error: v.error && v.error.message})
"""


@pytest.fixture(scope="module")
def browser(playwright: Any) -> Iterator[Any]:
    """Chromium as the suite launches it, allowed to play sound."""
    launched = launch_chromium(playwright, *SOUND_ARGS)
    try:
        yield launched
    finally:
        launched.close()


def test_an_ltx2_video_plays_with_sound(
    page: Any, lab: JupyterServer, jupyter_root: Path, artifacts: Path
) -> None:
    write_notebook(jupyter_root / NOTEBOOK, CELLS)
    notebook = NotebookDriver(page, lab, NOTEBOOK).open()
    notebook.run_cells(0, 1)
    view = notebook.cell(1).locator(".ltx-job-view")
    video = view.locator("figure.ltx-video video")
    video.wait_for(timeout=90_000)
    caption = view.locator("figure.ltx-video figcaption").inner_text()
    assert "with sound" in caption and "6.0 s" in caption, caption

    assert_video_plays(video)  # muted first, as any page may
    video.evaluate(PLAY_WITH_SOUND)
    state = wait_until(
        lambda: s if (s := video.evaluate(SOUND_STATE))["audioBytes"] > 0 else None,
        20,
        "the video decoded no sound",
    )
    state = wait_until(
        lambda: (
            s if (s := video.evaluate(SOUND_STATE))["currentTime"] > state["currentTime"] else None
        ),
        20,
        "the video did not play on with its sound on",
    )
    assert state["error"] is None and not state["muted"], state
    assert state["audioTracks"] == 1, state
    save_screenshot(view, artifacts / "ltx2-with-sound.png")

    output = notebook.run_cell(2).locator(".jp-OutputArea").inner_text()
    assert output.startswith("completed"), output
