"""The notebooks the browser tests open, as lists of code cells (written to the Jupyter root)."""

from __future__ import annotations

from .panel_driver import PANEL_CELLS

XSS_PROMPT = "<img src=x onerror=alert(1)>"

#: The magic path: a short job takes the single worker, so the main job visibly queues first.
MAGIC = [
    "%load_ext ltx_jupyter",
    "%%ltx --seed 1 --steps 10\nA warm-up clip that keeps the only worker busy for a moment.",
    "%%ltx --seed 42 --steps 40 --guidance 5 -o fox\n"
    "A red fox trots across a snowy meadow at dawn, its breath visible in the cold air.",
    "print(fox.status.value, fox.result.seed, fox.request_id)",
]

CANCEL = [
    "%load_ext ltx_jupyter",
    "%%ltx --seed 5 --steps 40 -o victim\nA slow clip that the person cancels.",
    'print("request", victim.request_id, victim.status.value)',
]

XSS = [
    "%load_ext ltx_jupyter",
    f"%%ltx --seed 3 --steps 4 -o trap\n{XSS_PROMPT}",
    "%ltx jobs",
]

PANEL = [
    "%load_ext ltx_jupyter",
    "panel = %ltx panel\npanel",
]

#: A 3×2 sweep (guidance rows, seed columns) filling in live; then its records.
GRID = [
    "%load_ext ltx_jupyter",
    "%%ltx --steps 6 --sweep guidance=3,5,7 --sweep seed=1,2 -o sweep\n"
    "A paper boat drifts down a rain-soaked gutter past fallen leaves.",
    "print([r['status'] for r in sweep.records()])",
]

#: A few runs (a waiting sweep), then the gallery of the history.
GALLERY = [
    "%load_ext ltx_jupyter",
    "%%ltx --wait --steps 2 --sweep seed=31,32,33 --sweep guidance=4,6\n"
    "A lighthouse beam sweeps across a stormy sea at night.",
    "%ltx gallery --page-size 6",
]

NOTEBOOKS: dict[str, list[str]] = {
    "grid.ipynb": GRID,
    "gallery.ipynb": GALLERY,
    "panel.ipynb": PANEL_CELLS,
    "panel-13b.ipynb": PANEL_CELLS,
    "panel-notebook7.ipynb": PANEL_CELLS,
    "panel-markup.ipynb": PANEL,
    "magic.ipynb": MAGIC,
    "cancel.ipynb": CANCEL,
    "xss.ipynb": XSS,
    "magic-notebook7.ipynb": MAGIC,
}
