"""The gallery's "load" fills the panel, in JupyterLab, in Chromium: a run made by the magic on
LTX-2 (8 s, 1440p), a panel opened on the default endpoint, then ``%ltx gallery``; a click on
the run's tile switches the panel to LTX-2 with the run's prompt, duration and resolution."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._jupyter import JupyterServer, NotebookDriver, wait_until, write_notebook
from .conftest import save_screenshot
from .panel_driver import PanelDriver, option_labels

NOTEBOOK = "gallery-load.ipynb"
PROMPT = "A heron lands on a misty lake at sunrise, ripples spreading across the water."
CELLS = [
    "%load_ext ltx_jupyter",
    f"%%ltx --wait --endpoint ltx-2/text-to-video --duration 8 --resolution 1440p\n{PROMPT}",
    "panel = %ltx panel\npanel",
    "%ltx gallery --page-size 4",
    "print(panel.endpoint, panel.arguments()['duration'], panel.arguments()['resolution'])",
]


def test_the_gallerys_load_fills_the_panel(
    page: Any, lab: JupyterServer, jupyter_root: Path, artifacts: Path
) -> None:
    write_notebook(jupyter_root / NOTEBOOK, CELLS)
    notebook = NotebookDriver(page, lab, NOTEBOOK).open()
    notebook.run_cell(0)
    notebook.run_cell(1, timeout=120_000)
    notebook.run_cells(2, 3)
    panel = PanelDriver(notebook, cell=2)
    panel.root.wait_for()
    select = panel.root.locator(".ltx-endpoint-choice select")
    assert select.evaluate("s => s.value") != "", "an endpoint is chosen"
    assert panel.field("duration").count() == 0, "the default endpoint has no duration"

    gallery = notebook.cell(3).locator(".ltx-gallery")
    gallery.wait_for()
    tile = next(t for t in gallery.locator(".ltx-tile").all() if t.is_visible())
    assert PROMPT[:40] in tile.inner_text()
    load = tile.get_by_role("button", name="load")
    assert load.is_visible(), "with a panel open, each tile can load into it"
    load.click()

    panel.field("duration").wait_for(timeout=30_000)
    chosen = select.evaluate("s => s.options[s.selectedIndex].textContent").replace("\xa0", " ")
    assert chosen.startswith("LTX-2 text to video ·"), (chosen, option_labels(select)[:3])
    prompt = panel.field("prompt").locator("textarea")
    wait_until(lambda: prompt.input_value() == PROMPT, 10, f"prompt: {prompt.input_value()!r}")
    for field, label in (("duration", "8"), ("resolution", "1440p")):
        active = panel.field(field).locator("button.mod-active")
        wait_until(lambda a=active, v=label: a.inner_text().strip() == v, 10, f"{field} not set")
    assert panel.button("Generate").is_enabled()

    output = notebook.run_cell(4).locator(".jp-OutputArea").inner_text().strip()
    assert output == "fal-ai/ltx-2/text-to-video 8 1440p", output
    save_screenshot(panel.root, artifacts / "gallery-load-panel.png")
