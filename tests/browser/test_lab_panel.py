"""The ``%ltx panel`` form in JupyterLab, in Chromium: word count, presets, Generate, history."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ._jupyter import JupyterServer, NotebookDriver, wait_until
from .checks import assert_video_plays
from .conftest import BrowserProblems, save_screenshot
from .notebooks import XSS_PROMPT

PROMPT = (
    "A paper boat drifts down a rain-soaked gutter, spinning slowly past fallen leaves, "
    "as neon reflections ripple in the water."
)


def control(panel: Any, kind: str, label: str) -> Any:
    """The ipywidgets control of class ``widget-{kind}`` whose description is ``label``."""
    return panel.locator(f".widget-{kind}").filter(
        has=panel.page.locator("label", has_text=re.compile(f"^{re.escape(label)}$"))
    )


def slider_value(panel: Any, label: str) -> str:
    """The readout a person sees next to the slider ``label``."""
    return str(control(panel, "slider", label).locator(".widget-readout").inner_text()).strip()


def handle_position(panel: Any, label: str) -> float:
    """Where the slider's handle is drawn, in pixels from the page's left edge."""
    box = control(panel, "slider", label).locator(".noUi-handle").bounding_box()
    assert box is not None
    return float(box["x"])


def button(panel: Any, name: str) -> Any:
    """The panel's first button whose text is ``name`` (its icon aside)."""
    return panel.locator("button", has_text=_text(name)).first


def history_entry(panel: Any) -> Any:
    """The newest history entry: the first box holding a "load" button."""
    has_load = panel.page.locator("button", has_text=_text("load"))
    return panel.locator(".widget-hbox").filter(has=has_load).first


def _text(name: str) -> re.Pattern[str]:
    return re.compile(rf"^\s*{re.escape(name)}\s*$")


def open_panel(page: Any, lab: JupyterServer, name: str) -> Any:
    """Open ``name`` (a notebook showing ``%ltx panel``), run it, and return the panel."""
    notebook = NotebookDriver(page, lab, name).open()
    notebook.run_cells(0, 1)
    panel = notebook.cell(1).locator(".ltx-panel")
    panel.wait_for()
    return panel


def test_panel_counts_words_applies_presets_generates_and_restores_a_run(
    page: Any, lab: JupyterServer, artifacts: Path
) -> None:
    panel = open_panel(page, lab, "panel.ipynb")
    word_count = panel.get_by_text(re.compile(r"^\d+ / 200 words"))
    generate = button(panel, "Generate")
    assert word_count.inner_text().startswith("0 / 200"), word_count.inner_text()
    assert generate.is_disabled()

    prompt = control(panel, "textarea", "Prompt").locator("textarea")
    prompt.click()
    prompt.press_sequentially(PROMPT, delay=5)
    words = len(PROMPT.split())
    wait_until(
        lambda: word_count.inner_text().startswith(f"{words} / 200"),
        10,
        f"the word count never read {words}",
    )

    assert slider_value(panel, "Steps") == "30"
    before = handle_position(panel, "Steps")
    button(panel, "fast").click()
    wait_until(lambda: slider_value(panel, "Steps") == "25", 10, "fast did not set 25 steps")
    assert handle_position(panel, "Steps") < before, "the Steps handle did not move"
    button(panel, "creative").click()
    wait_until(lambda: float(slider_value(panel, "Guidance")) == 4.0, 10, "creative: guidance 4")

    button(panel, "random").click()  # off: the seed field is used
    seed = control(panel, "text", "Seed").locator("input")
    wait_until(lambda: seed.is_enabled(), 10, "the seed field stayed disabled")
    seed.fill("77")
    seed.press("Tab")

    wait_until(lambda: generate.is_enabled(), 10, "Generate stayed disabled")
    generate.click()
    view = panel.locator(".ltx-job-view")
    video = view.locator("figure.ltx-video video")
    video.wait_for(timeout=60_000)
    assert "completed" in view.locator(".ltx-status").inner_text()
    assert_video_plays(video)
    caption = view.locator("figure.ltx-video figcaption").inner_text()
    assert "seed 77" in caption and "25 steps" in caption and "guidance 4" in caption, caption

    # Change everything, then load the run back from the history.
    button(panel, "quality").click()
    button(panel, "faithful").click()
    prompt.fill("Something else entirely")
    wait_until(lambda: slider_value(panel, "Steps") == "40", 10, "quality did not set 40 steps")
    wait_until(lambda: word_count.inner_text().startswith("3 / 200"), 10, "no word count")
    entry = history_entry(panel)
    entry.locator("video").wait_for()
    assert PROMPT[:40] in entry.inner_text()
    button(panel, "load").click()
    wait_until(lambda: prompt.input_value() == PROMPT, 10, "load did not restore the prompt")
    wait_until(lambda: slider_value(panel, "Steps") == "25", 10, "load: steps not restored")
    assert float(slider_value(panel, "Guidance")) == 4.0
    assert seed.input_value() == "77"
    assert word_count.inner_text().startswith(f"{words} / 200")

    save_screenshot(panel, artifacts / "panel.png")


def test_panel_shows_a_prompt_with_markup_as_text_and_cancels(
    page: Any, lab: JupyterServer, problems: BrowserProblems, artifacts: Path
) -> None:
    panel = open_panel(page, lab, "panel-markup.ipynb")
    prompt = control(panel, "textarea", "Prompt").locator("textarea")
    prompt.fill(XSS_PROMPT)
    generate = button(panel, "Generate")
    wait_until(lambda: generate.is_enabled(), 10, "Generate stayed disabled")
    generate.click()
    view = panel.locator(".ltx-job-view")
    wait_until(lambda: "running" in view.locator(".ltx-status").inner_text(), 30, "never ran")

    entry = history_entry(panel)
    wait_until(lambda: XSS_PROMPT in entry.inner_text(), 10, "prompt not shown as text")
    assert not page.locator('img[src="x"]').count(), "the prompt became an <img> element"

    button(panel, "Cancel").click()  # the panel's own Cancel: every run of the panel
    wait_until(lambda: "cancelled" in view.locator(".ltx-status").inner_text(), 30, "not cancelled")
    assert not problems.dialogs, problems.dialogs
    save_screenshot(panel, artifacts / "panel-markup-cancelled.png")
