"""Fixtures of the browser suite: the local server, JupyterLab and Notebook 7 on loopback,
Debian's Chromium driven by Playwright, and collectors that fail a test on any console error
or failed request it did not provoke."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ._jupyter import (
    CHROMIUM,
    CHROMIUM_ARGS,
    CHROMIUM_MISSING,
    JupyterServer,
    server_env,
    write_notebook,
)
from .notebooks import NOTEBOOKS

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "browser"

# A slowish synthetic engine (40 steps take 6 s) so the log visibly grows; one worker, so a
# second job waits in the queue while the first runs.
BROWSER_SERVER = {"step_seconds": 0.15, "concurrency": 1}


@pytest.fixture(scope="package")
def artifacts() -> Path:
    """``test-artifacts/browser/`` at the repo root (git-ignored): screenshots and logs."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="package")
def ltx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The local fal-compatible server the kernels' jobs go to."""
    from ltx_jupyter.server import LocalServer, ServerConfig

    config = ServerConfig(port=0, data_dir=tmp_path_factory.mktemp("ltx-server"), **BROWSER_SERVER)
    with LocalServer(config) as server:
        yield server


@pytest.fixture(scope="package")
def jupyter_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Jupyter servers' root directory, holding the test notebooks."""
    root = tmp_path_factory.mktemp("jupyter-root")
    for name, cells in NOTEBOOKS.items():
        write_notebook(root / name, cells)
    return root


def _jupyter(
    app: str, root: Path, server: Any, tmp_path_factory: pytest.TempPathFactory, artifacts: Path
) -> Iterator[JupyterServer]:
    home = tmp_path_factory.mktemp(f"jupyter-{app}-home")
    # The kernels import the package from bytecode, as from an installed wheel: an editable
    # install has none, and where PYTHONDONTWRITEBYTECODE is set nothing writes it, so every
    # kernel would compile the panel's modules anew and the panel's timings would measure that.
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(REPO / "ltx_jupyter")], check=True
    )
    jupyter = JupyterServer(
        app=app,
        root_dir=root,
        home=home,
        env=server_env(server.url, home / "history.jsonl"),
        log_path=artifacts / f"jupyter-{app}.log",
    ).start()
    try:
        yield jupyter
    finally:
        jupyter.stop()


@pytest.fixture(scope="package")
def lab(
    jupyter_root: Path,
    ltx_server: Any,
    tmp_path_factory: pytest.TempPathFactory,
    artifacts: Path,
) -> Iterator[JupyterServer]:
    """``jupyter lab`` on a free loopback port with a token, its kernels using ``ltx_server``."""
    yield from _jupyter("lab", jupyter_root, ltx_server, tmp_path_factory, artifacts)


@pytest.fixture(scope="package")
def notebook7(
    jupyter_root: Path,
    ltx_server: Any,
    tmp_path_factory: pytest.TempPathFactory,
    artifacts: Path,
) -> Iterator[JupyterServer]:
    """``jupyter notebook`` (Notebook 7), like :func:`lab`."""
    yield from _jupyter("notebook", jupyter_root, ltx_server, tmp_path_factory, artifacts)


@pytest.fixture(scope="package")
def playwright() -> Iterator[Any]:
    """One Playwright for the whole browser suite: its sync API runs an event loop of its own,
    so a second one in the same thread fails. Tests that need a differently launched Chromium
    launch it from this one (see :func:`launch_chromium`)."""
    if not CHROMIUM.exists():
        pytest.fail(CHROMIUM_MISSING, pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as started:
        yield started


def launch_chromium(playwright: Any, *extra_args: str) -> Any:
    """Debian's Chromium, headless, launched by Playwright with the suite's flags and more.

    Playwright gives each launch a fresh temporary ``--user-data-dir`` of its own (it refuses
    one in ``args``), and each test gets a fresh context on top of it.
    """
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=[*CHROMIUM_ARGS, *extra_args]
    )


@pytest.fixture(scope="package")
def browser(playwright: Any) -> Iterator[Any]:
    """The suite's Chromium."""
    launched = launch_chromium(playwright)
    try:
        yield launched
    finally:
        launched.close()


@dataclass
class BrowserProblems:
    """Console errors, uncaught exceptions, dialogs and failed requests seen by one page.

    A test that provokes a failure declares it with :meth:`expect`; anything else fails it.
    """

    problems: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    expected: list[re.Pattern[str]] = field(default_factory=list)

    def expect(self, pattern: str) -> None:
        """Allow problems matching the regular expression ``pattern`` (provoked by the test)."""
        self.expected.append(re.compile(pattern))

    def attach(self, page: Any) -> None:
        """Listen to ``page``."""
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("requestfailed", self._on_request_failed)
        page.on("response", self._on_response)
        page.on("dialog", self._on_dialog)

    def _on_console(self, message: Any) -> None:
        if message.type == "error":
            self.problems.append(f"console error: {message.text} ({message.location})")

    def _on_request_failed(self, request: Any) -> None:
        if _aborted_media_read(request):
            return
        self.problems.append(f"request failed: {request.method} {request.url}: {request.failure}")

    def _on_response(self, response: Any) -> None:
        if response.status >= 400:
            self.problems.append(
                f"HTTP {response.status}: {response.request.method} {response.url}"
            )

    def _on_dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        self.problems.append(f"dialog opened: {dialog.type}: {dialog.message}")
        dialog.dismiss()

    def unexpected(self) -> list[str]:
        """The problems no :meth:`expect` pattern allows."""
        return [p for p in self.problems if not any(e.search(p) for e in self.expected)]


def _aborted_media_read(request: Any) -> bool:
    """A ``<video>`` read the browser itself cut short: not a failure a person sees.

    Chromium reads media with range requests and aborts them (``net::ERR_ABORTED``) once it has
    buffered enough or seeks; the video still plays (the tests check that it does).
    """
    return request.resource_type == "media" and "ERR_ABORTED" in str(request.failure or "")


@pytest.fixture
def problems() -> BrowserProblems:
    """The current test's browser problems (see :class:`BrowserProblems`)."""
    return BrowserProblems()


@pytest.fixture
def page(
    browser: Any, problems: BrowserProblems, artifacts: Path, request: pytest.FixtureRequest
) -> Iterator[Any]:
    """A fresh page; after the test, a full screenshot is saved and any unexpected console
    error or failed request fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(30_000)
    page = context.new_page()
    problems.attach(page)
    try:
        yield page
    finally:
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        try:
            page.screenshot(path=str(artifacts / f"{name}.page.png"), full_page=True)
        finally:
            context.close()
    unexpected = problems.unexpected()
    assert not unexpected, "the browser reported problems:\n" + "\n".join(unexpected)


def save_screenshot(locator: Any, path: Path) -> Path:
    """Screenshot one element to ``path``; returns ``path``.

    JupyterLab scrolls the notebook inside its own panel, so an element taller than the window
    would be clipped: the window grows to fit it for the shot.
    """
    page = locator.page
    viewport = page.viewport_size
    box = locator.bounding_box()
    if viewport is not None and box is not None and box["height"] + 200 > viewport["height"]:
        page.set_viewport_size({"width": viewport["width"], "height": int(box["height"]) + 300})
    try:
        locator.scroll_into_view_if_needed()
        locator.screenshot(path=str(path), animations="disabled")
    finally:
        if viewport is not None:
            page.set_viewport_size(viewport)
    return path
