"""A server that answers with script, in JupyterLab and Notebook 7, in Chromium: log lines,
error messages, error types, file names, field names of a refusal, ``javascript:`` and
``data:text/html`` video URLs and a video URL that tries to leave its attribute all render as
inert text. No dialog opens when the page shows them or when the mouse passes over them, and
no element or handler the server wrote exists in the page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..hostile import PAYLOADS, XSS_MARK, HostileServer
from ._jupyter import JupyterServer, NotebookDriver, wait_until, write_notebook
from .conftest import BrowserProblems, _jupyter, save_screenshot
from .test_notebook7 import NOTEBOOK7_SHORTCUTS_ERROR

#: Each cell's prompt picks what the hostile server answers (see tests/hostile.py).
CELLS = [
    "%load_ext ltx_jupyter",
    "%%ltx -o logs\nlogs: a clip whose log lines carry script",
    "%%ltx -o error\nerror: a clip whose failure carries script",
    "%%ltx -o js\njs-url: a clip whose video URL is javascript:",
    "%%ltx -o data\ndata-url: a clip whose video URL is an HTML page",
    "%%ltx -o attr\nattr-url: a clip whose video URL leaves its attribute",
    "%%ltx -o refused\nhttp-error: a refusal whose field names carry script",
    "%%ltx --wait -o waited\nattr-url: the same URL, as a plain output",
    "%ltx jobs",
]
VIEW_CELLS = range(1, 7)

# Everything a script the server sent could have become in the page.
INJECTED = """
() => {
  const outputs = [...document.querySelectorAll('.jp-OutputArea-output')];
  const all = outputs.flatMap(o => [...o.querySelectorAll('*')]);
  const tags = 'script, iframe, object, embed, img[src="x"], svg:not([data-icon])';
  return {
    elements: all.filter(el => el.matches(tags)).map(el => el.outerHTML.slice(0, 120)),
    handlers: all.filter(el => [...el.attributes].some(a => a.name.startsWith('on')))
      .map(el => el.outerHTML.slice(0, 120)),
    videos: all.filter(el => el.matches('video')).map(v => v.getAttribute('src')),
    links: all.filter(el => el.matches('a[href]')).map(a => a.getAttribute('href')),
    text: outputs.map(o => o.innerText).join('\\n'),
  };
}
"""


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileServer]:
    with HostileServer() as server:
        yield server  # type: ignore[misc]


def _app(
    app: str,
    hostile: HostileServer,
    tmp_path_factory: pytest.TempPathFactory,
    artifacts: Path,
) -> Iterator[JupyterServer]:
    root = tmp_path_factory.mktemp(f"hostile-{app}")
    write_notebook(root / "hostile.ipynb", CELLS)
    yield from _jupyter(app, root, hostile, tmp_path_factory, artifacts)


@pytest.fixture(scope="module")
def hostile_lab(
    hostile: HostileServer, tmp_path_factory: pytest.TempPathFactory, artifacts: Path
) -> Iterator[JupyterServer]:
    yield from _app("lab", hostile, tmp_path_factory, artifacts)


@pytest.fixture(scope="module")
def hostile_notebook7(
    hostile: HostileServer, tmp_path_factory: pytest.TempPathFactory, artifacts: Path
) -> Iterator[JupyterServer]:
    yield from _app("notebook", hostile, tmp_path_factory, artifacts)


@pytest.mark.parametrize("app", ["lab", "notebook7"])
def test_script_from_the_server_renders_inert(
    app: str,
    request: pytest.FixtureRequest,
    page: Any,
    problems: BrowserProblems,
    artifacts: Path,
) -> None:
    server = request.getfixturevalue(f"hostile_{app}")
    if app == "notebook7":
        problems.expect(NOTEBOOK7_SHORTCUTS_ERROR)
    notebook = NotebookDriver(page, server, "hostile.ipynb").open()
    notebook.run_cells(*range(len(CELLS)))
    for index in VIEW_CELLS:
        # Notebook 7 renders only the cells in view: bring each one in before reading it.
        notebook.cell(index).scroll_into_view_if_needed()
        status = notebook.cell(index).locator(".ltx-status")
        wait_until(
            lambda status=status: any(w in status.inner_text() for w in ("completed", "failed")),
            60,
            f"cell {index}'s job never ended",
        )
    # The mouse passes over everything the outputs show (an onmouseover would fire).
    for element in page.locator(".jp-OutputArea video, .jp-OutputArea a, .ltx-status").all():
        element.scroll_into_view_if_needed()
        element.hover()
    page.wait_for_timeout(500)

    found = page.evaluate(INJECTED)
    assert not problems.dialogs, problems.dialogs
    assert found["elements"] == [], found["elements"]
    assert found["handlers"] == [], found["handlers"]
    assert all(src.startswith("http://") for src in found["videos"]), found["videos"]
    assert len(found["videos"]) == 3, found["videos"]  # logs, attr-url and the waited one
    assert all(href.startswith("http://") for href in found["links"]), found["links"]
    # The server's text is on the page, as text.
    text = found["text"]
    for payload in (PAYLOADS["tag"], PAYLOADS["script"], PAYLOADS["close"]):
        assert payload in text, payload
    assert f"javascript:alert('{XSS_MARK}')" in notebook.outputs_text(3)
    assert "data:text/html" in notebook.outputs_text(4)
    assert "HTTP 422" in notebook.outputs_text(6)
    save_screenshot(notebook.cell(1), artifacts / f"hostile-logs-{app}.png")
    save_screenshot(notebook.cell(2), artifacts / f"hostile-error-{app}.png")
