"""The ``%ltx panel`` form in JupyterLab, in Chromium: an LTX-2 endpoint picked, set and run to
a clip that plays with its sound (with the re-render and opening times measured); a 13B
endpoint with a LoRA row that the server receives, and an out-of-range value that turns
Generate off with the reason; markup shown as text; Cancel. The screenshots of the panel on
two families go to ``docs/screenshots/`` for the README."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._jupyter import JupyterServer, NotebookDriver, wait_until
from .conftest import REPO, BrowserProblems, save_screenshot
from .notebooks import XSS_PROMPT
from .panel_driver import PanelDriver, ltx2_main_path
from .test_lab_magic import server_request

# Chromium allowed to play sound without a click, its audio tracks exposed (this module's
# ``browser``), and the page-side sound checks, as the LTX-2 sound test uses them.
from .test_lab_sound import PLAY_WITH_SOUND, SOUND_STATE, browser

__all__ = ["browser"]  # a fixture, used by name

SCREENSHOTS = REPO / "docs" / "screenshots"
LTX13B = "fal-ai/ltx-video-13b-distilled"
LORA = "https://example.com/loras/clay-style.safetensors"


def test_an_ltx2_endpoint_picked_and_set_in_the_panel_plays_its_clip(
    page: Any, lab: JupyterServer, artifacts: Path
) -> None:
    panel, video = ltx2_main_path(page, lab, "panel.ipynb", artifacts, "lab")
    # The clip plays with its sound: unmuted, audio decoded, one audio track, time moving.
    video.evaluate(PLAY_WITH_SOUND)
    state = wait_until(
        lambda: s if (s := video.evaluate(SOUND_STATE))["audioBytes"] > 0 else None,
        20,
        "the panel's LTX-2 clip decoded no sound",
    )
    state = wait_until(
        lambda: (
            s if (s := video.evaluate(SOUND_STATE))["currentTime"] > state["currentTime"] else None
        ),
        20,
        "the clip did not play on with its sound on",
    )
    assert state["error"] is None and not state["muted"] and not state["paused"], state
    assert state["audioTracks"] == 1, state
    history = panel.root.locator(".ltx-history-entry").first
    history.locator("video").wait_for()
    assert "duration: 8" in history.inner_text() and "resolution: 1440p" in history.inner_text()
    save_screenshot(panel.root, SCREENSHOTS / "panel-ltx2.png")


def test_a_13b_lora_row_reaches_the_server_and_an_out_of_range_value_turns_generate_off(
    page: Any, lab: JupyterServer, ltx_server: Any, artifacts: Path
) -> None:
    panel = PanelDriver.open(page, lab, "panel-13b.ipynb")
    panel.choose_endpoint(
        "LTX-Video 13B 0.9.7 distilled text to video ·", "loras", search="13b distilled"
    )
    panel.type_prompt("A clay fox waves at the camera from a sunlit windowsill.")
    loras = panel.field("loras")
    loras.locator("button.ltx-add-row").click()
    row = loras.locator(".ltx-field-path")
    row.wait_for()
    row.locator("input").fill(LORA)
    scale = loras.locator(".ltx-field-scale .ltx-input input")
    scale.last.fill("7")
    scale.last.press("Tab")

    generate = panel.button("Generate")
    reason = "must be a number from 0 to 4, got 7"
    wait_until(lambda: reason in panel.message(), 15, f"no reason shown: {panel.message()!r}")
    assert generate.is_disabled()
    assert panel.message().startswith("Generate is off: loras.0.scale:")
    marked = loras.locator(".ltx-field-scale.ltx-invalid")
    assert reason in marked.inner_text(), "the control says why under it"
    save_screenshot(panel.root, artifacts / "panel-out-of-range.png")

    scale.last.fill("0.8")
    scale.last.press("Tab")
    wait_until(lambda: generate.is_enabled(), 15, f"Generate stayed off: {panel.message()!r}")
    view = panel.generate()
    view.locator("figure.ltx-video video").wait_for(timeout=60_000)
    request_id = panel.notebook.run_cell(3).locator(".jp-OutputArea").inner_text().strip()
    record = server_request(ltx_server, request_id)
    assert record["endpoint"] == LTX13B
    assert record["input"]["loras"] == [{"path": LORA, "scale": 0.8}]
    panel.root.locator(".ltx-history-entry video").first.wait_for()
    save_screenshot(panel.root, SCREENSHOTS / "panel-13b.png")


def test_panel_shows_a_prompt_with_markup_as_text_and_cancels(
    page: Any, lab: JupyterServer, problems: BrowserProblems, artifacts: Path
) -> None:
    notebook = NotebookDriver(page, lab, "panel-markup.ipynb").open()
    notebook.run_cells(0, 1)
    panel = PanelDriver(notebook, cell=1)
    panel.root.wait_for()
    panel.type_prompt(XSS_PROMPT)
    view = panel.generate()
    wait_until(lambda: "running" in view.locator(".ltx-status").inner_text(), 30, "never ran")

    entry = panel.root.locator(".ltx-history-entry").first
    wait_until(lambda: XSS_PROMPT in entry.inner_text(), 10, "prompt not shown as text")
    assert not page.locator('img[src="x"]').count(), "the prompt became an <img> element"

    panel.button("Cancel").click()  # the panel's own Cancel: every run of the panel
    wait_until(lambda: "cancelled" in view.locator(".ltx-status").inner_text(), 30, "not cancelled")
    assert not problems.dialogs, problems.dialogs
    save_screenshot(panel.root, artifacts / "panel-markup-cancelled.png")
