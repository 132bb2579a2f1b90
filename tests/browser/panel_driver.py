"""Driving the ``%ltx panel`` form in a browser as a person does, shared by the JupyterLab and
Notebook 7 tests: open it, pick an endpoint (timing the re-render), set fields, generate.

Timings are measured in the page (``performance.now()``: from the ``change`` event of the
endpoint's ``<select>`` to the first frame where the new endpoint's control is in the DOM and
visible) and in the kernel (the notebook's own cell prints how long opening the panel took),
then printed and kept in ``test-artifacts/browser/panel-timings.json``: measurements, not
assertions.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ._jupyter import JupyterServer, NotebookDriver, wait_until

#: Notebook cells: the extension, the panel opened with its kernel-side time, a second
#: opening (warm: modules imported, prices looked up), and the last run's request id.
PANEL_CELLS = [
    "%load_ext ltx_jupyter",
    "import time\n"
    "from IPython.display import display\n"
    "started = time.perf_counter()\n"
    "panel = %ltx panel\n"
    "display(panel)\n"
    'print(f"panel opened in {1000 * (time.perf_counter() - started):.0f} ms kernel-side")',
    "started = time.perf_counter()\n"
    "again = %ltx panel\n"
    "display(again)\n"
    'print(f"panel opened in {1000 * (time.perf_counter() - started):.0f} ms kernel-side")\n'
    "again.close()",
    "print(panel.runs[-1].job.request_id)",
]

_OPENED = re.compile(r"panel opened in (\d+) ms kernel-side")

# Records when the chosen endpoint's control first shows after the endpoint <select> changes.
_WATCH_SWITCH = """
(selector) => {
  const state = {start: null, end: null};
  window.__ltxSwitch = state;
  document.addEventListener('change', (event) => {
    if (window.__ltxSwitch === state && state.start === null
        && event.target.closest('.ltx-endpoint-choice')) {
      state.start = performance.now();
    }
  }, {capture: true});
  const visible = () => [...document.querySelectorAll(selector)]
    .some((el) => el.offsetParent !== null);
  const check = () => {
    if (state.start !== null && state.end === null && visible()) {
      state.end = performance.now();
      observer.disconnect();
    }
  };
  const observer = new MutationObserver(check);
  observer.observe(document.body, {subtree: true, childList: true, attributes: true});
}
"""


class PanelDriver:
    """One panel in an open notebook."""

    def __init__(self, notebook: NotebookDriver, cell: int = 1) -> None:
        self.notebook = notebook
        self.page = notebook.page
        self.root = notebook.cell(cell).locator(".ltx-panel")
        self.switch_ms: dict[str, float] = {}

    @classmethod
    def open(cls, page: Any, server: JupyterServer, name: str) -> PanelDriver:
        """Open notebook ``name`` (:data:`PANEL_CELLS`), run its first two cells, and return
        the panel they show."""
        notebook = NotebookDriver(page, server, name).open()
        notebook.run_cells(0, 1)
        driver = cls(notebook)
        driver.root.wait_for()
        return driver

    def opened_ms(self, cell: int) -> float:
        """The kernel-side time the cell ``cell`` printed for opening a panel."""
        text = wait_until(
            lambda: _OPENED.search(self.notebook.outputs_text(cell)),
            30,
            f"cell {cell} printed no opening time",
        )
        return float(text.group(1))

    def field(self, name: str) -> Any:
        """The control of field ``name``."""
        return self.root.locator(f".ltx-field-{name}").first

    def button(self, name: str) -> Any:
        """The panel's first button whose text is ``name`` (its icon aside)."""
        return self.root.locator("button", has_text=exact(name)).first

    def choose_endpoint(self, label_start: str, field: str, search: str | None = None) -> float:
        """Pick the endpoint whose label starts with ``label_start`` (after typing ``search``
        into the search box) and wait until its control ``field`` shows; the milliseconds
        from the choice to that frame."""
        select = self.root.locator(".ltx-endpoint-choice select")
        words = (search or "").lower().split()
        if search is not None:
            box = self.root.locator(".widget-text input").first
            box.fill(search)

        def offered() -> bool:
            # The dropdown sends the kernel an option's index, which the kernel reads in the
            # list the search made: picking before the page shows that list picks another
            # endpoint, or none. The list has followed the search once every option but the
            # chosen one (shown first) holds each word.
            labels = [_spaced(o) for o in option_labels(select)]
            return any(o.startswith(label_start) for o in labels) and all(
                word in label.lower() for label in labels[1:] for word in words
            )

        wait_until(offered, 10, f"no endpoint {label_start!r} offered for {search!r}")
        label = next(o for o in option_labels(select) if _spaced(o).startswith(label_start))
        self.page.evaluate(_WATCH_SWITCH, f".ltx-panel .ltx-field-{field}")
        select.select_option(label=label)
        self.field(field).wait_for(timeout=30_000)
        timing = wait_until(
            lambda: (
                s
                if (s := self.page.evaluate("() => window.__ltxSwitch"))["end"] is not None
                else None
            ),
            10,
            "the switch was never seen in the page",
        )
        elapsed = float(timing["end"] - timing["start"])
        self.switch_ms[label_start] = elapsed
        return elapsed

    def toggle(self, field: str, label: str) -> None:
        """Click the toggle button ``label`` of field ``field``."""
        self.field(field).locator("button", has_text=exact(label)).click()
        wait_until(
            lambda: (
                "mod-active"
                in (
                    self.field(field)
                    .locator("button", has_text=exact(label))
                    .get_attribute("class")
                    or ""
                )
            ),
            10,
            f"{field}: {label} was not chosen",
        )

    def type_prompt(self, text: str) -> None:
        prompt = self.field("prompt").locator("textarea")
        prompt.fill(text)
        prompt.press("Tab")

    def generate(self) -> Any:
        """Click Generate once it is enabled; the newest job view."""
        generate = self.button("Generate")
        wait_until(lambda: generate.is_enabled(), 15, f"Generate stayed off: {self.message()}")
        before = self.root.locator(".ltx-job-view").count()
        generate.click()
        view = self.root.locator(".ltx-job-view").nth(before)
        view.wait_for()
        return view

    def message(self) -> str:
        """The reason shown under Generate."""
        return str(self.root.locator(".ltx-message").inner_text()).strip()

    def cost(self) -> str:
        return str(self.root.locator(".ltx-cost").inner_text()).strip()


def option_labels(select: Any) -> list[str]:
    """The options of a ``<select>`` as the page holds them."""
    return list(select.evaluate("s => [...s.options].map(o => o.textContent)"))


def _spaced(label: str) -> str:
    # ipywidgets writes an option's spaces as no-break spaces.
    return label.replace("\xa0", " ")


def exact(name: str) -> re.Pattern[str]:
    return re.compile(rf"^\s*{re.escape(name)}\s*$")


def record_timings(artifacts: Path, app: str, timings: dict[str, Any]) -> dict[str, Any]:
    """Print ``timings`` and merge them into ``panel-timings.json`` under ``app``."""
    path = artifacts / "panel-timings.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    known[app] = timings
    path.write_text(json.dumps(known, indent=2))
    print(f"panel timings ({app}): {json.dumps(timings)}")
    return known


LTX2_PROMPT = (
    "A red fox trots through fresh snow at dawn, its breath steaming, the camera tracking low "
    "beside it in warm golden light."
)


def ltx2_main_path(
    page: Any, server: JupyterServer, name: str, artifacts: Path, app: str
) -> tuple[PanelDriver, Any]:
    """The main path: open the panel, pick LTX-2 text-to-video by searching, set duration
    and resolution, generate, and the clip plays. Times the opening (kernel-side, cold and
    warm) and three endpoint switches (LTX-2 first, the larger 19B form, LTX-2 again), and
    records them. Returns the panel and the clip's ``<video>``."""
    from .checks import assert_video_plays

    panel = PanelDriver.open(page, server, name)
    cold = panel.opened_ms(1)
    panel.notebook.run_cell(2)
    warm = panel.opened_ms(2)

    first = panel.choose_endpoint("LTX-2 text to video ·", "duration", search="ltx-2 text")
    larger = panel.choose_endpoint("LTX-2 19B text to video ·", "video_size", search="19b")
    back = panel.choose_endpoint("LTX-2 text to video ·", "duration", search="ltx-2 text")
    assert panel.root.locator(".ltx-field-seed").count() == 0, "LTX-2 has no seed field"

    panel.type_prompt(LTX2_PROMPT)
    panel.toggle("duration", "8")
    panel.toggle("resolution", "1440p")
    wait_until(
        lambda: "(8 s ×" in panel.cost() and "1440p" in panel.cost(),
        10,
        f"the estimate did not follow: {panel.cost()!r}",
    )
    view = panel.generate()
    video = view.locator("figure.ltx-video video")
    video.wait_for(timeout=60_000)
    assert "completed" in view.locator(".ltx-status").inner_text()
    state = assert_video_plays(video)
    caption = view.locator("figure.ltx-video figcaption").inner_text()
    assert "with sound" in caption and "est. $" in caption, caption
    audio_bytes = video.evaluate("v => v.webkitAudioDecodedByteCount")
    record_timings(
        artifacts,
        app,
        {
            "open_cold_ms": cold,
            "open_warm_ms": warm,
            "switch_to_ltx2_first_ms": round(first, 1),
            "switch_to_19b_first_ms": round(larger, 1),
            "switch_back_to_ltx2_ms": round(back, 1),
            "video_duration_s": state["duration"],
            "audio_bytes_decoded": audio_bytes,
        },
    )
    return panel, video
