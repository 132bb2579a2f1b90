"""Helpers for the browser tests: a Jupyter server subprocess, test notebooks, and a driver
that runs cells in JupyterLab or Notebook 7 the way a person does (click a cell, Shift+Enter).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nbformat

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_MISSING = (
    f"Chromium is missing at {CHROMIUM}: the browser tests drive Debian's Chromium. "
    "Install it with: sudo apt-get update && sudo apt-get install -y chromium"
)
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: JupyterLab user settings written for the test server.
LAB_SETTINGS: dict[str, dict[str, Any]] = {
    # Attach every cell to the DOM: JupyterLab 4 otherwise skips rendering off-screen cells.
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    # No "would you like news?" toast over the notebook, no request to jupyter.org.
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_notebook(path: Path, cells: Sequence[str]) -> Path:
    """Write a Python 3 notebook of code ``cells`` (no outputs) to ``path``."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    notebook.metadata["language_info"] = {"name": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(notebook, path)
    return path


@dataclass
class JupyterServer:
    """``jupyter lab`` or ``jupyter notebook`` as a subprocess on a free loopback port."""

    app: str
    root_dir: Path
    home: Path
    env: dict[str, str]
    log_path: Path
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """The server's root URL."""
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str, query: str = "") -> str:
        """The URL of ``path`` on the server, with the token (and ``query``, if given)."""
        extra = f"&{query}" if query else ""
        return f"{self.base_url}/{path.lstrip('/')}?token={self.token}{extra}"

    def start(self, timeout: float = 90.0) -> JupyterServer:
        """Start the server and return once its API answers (``RuntimeError`` if it never does)."""
        settings = self.home / "lab-settings"
        # Only for JupyterLab: Notebook 7 lacks some of these plugins and throws on their
        # settings.
        for name, values in LAB_SETTINGS.items() if self.app == "lab" else ():
            target = settings / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(values))
        env = {
            **self.env,
            "JUPYTER_CONFIG_DIR": str(self.home / "config"),
            "JUPYTER_DATA_DIR": str(self.home / "data"),
            "JUPYTER_RUNTIME_DIR": str(self.home / "runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(settings),
            "JUPYTERLAB_WORKSPACES_DIR": str(self.home / "workspaces"),
            "IPYTHONDIR": str(self.home / "ipython"),
        }
        command = [
            sys.executable,
            "-m",
            "jupyter",
            self.app,
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={self.root_dir}",
            f"--IdentityProvider.token={self.token}",
            "--ServerApp.terminals_enabled=False",
            # CI containers run as root; Jupyter refuses that unless told.
            "--allow-root",
        ]
        if self.app == "lab":
            # No extension manager querying PyPI from the server.
            command.append("--LabApp.extension_manager=readonly")
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command, cwd=self.root_dir, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"jupyter {self.app} exited with {self.process.returncode}:\n"
                    + self.log_path.read_text(errors="replace")[-4000:]
                )
            try:
                if httpx.get(self.url("api/status"), timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"jupyter {self.app} did not answer within {timeout} s")

    def stop(self) -> None:
        """Stop the server (and so its kernels)."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.process = None


def server_env(queue_url: str, history_file: Path) -> dict[str, str]:
    """The environment for Jupyter and its kernels: the local queue, a private history."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAL_KEY", "JUPYTER"))}
    env.update({"LTX_QUEUE_URL": queue_url, "LTX_HISTORY_FILE": str(history_file)})
    env.pop("LTX_STORAGE_URL", None)
    return env


class NotebookDriver:
    """Drives one open notebook in JupyterLab or Notebook 7 through the page, as a person."""

    def __init__(self, page: Any, server: JupyterServer, name: str) -> None:
        self.page = page
        self.server = server
        self.name = name

    def open(self, timeout: float = 60_000) -> NotebookDriver:
        """Open the notebook and wait until its kernel is connected and idle.

        The execution indicator reads "idle" for a moment before the kernel even starts, so
        wait for the kernel's websocket first.
        """
        if self.server.app == "lab":
            # A workspace of its own, reset: no tab restored from an earlier test.
            workspace = re.sub(r"\W+", "-", self.name)
            url = self.server.url(f"lab/workspaces/{workspace}/tree/{self.name}", "reset")
        else:
            url = self.server.url(f"notebooks/{self.name}")
        with self.page.expect_websocket(
            lambda ws: "/api/kernels/" in ws.url, timeout=timeout
        ) as websocket:
            self.page.goto(url)
        websocket.value.wait_for_event("framereceived", timeout=timeout)
        self.page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=timeout)
        self.wait_idle(timeout)
        return self

    def wait_idle(self, timeout: float = 60_000) -> None:
        """Wait for the notebook's kernel status to read idle."""
        self.page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').first.wait_for(
            timeout=timeout
        )

    def cell(self, index: int) -> Any:
        """The ``index``-th cell."""
        return self.page.locator(".jp-Notebook .jp-Cell").nth(index)

    def run_cell(self, index: int, timeout: float = 60_000) -> Any:
        """Click into cell ``index``, press Shift+Enter, wait until it ran; return the cell."""
        cell = self.cell(index)
        cell.locator(".jp-InputArea-editor").click()
        self.page.keyboard.press("Shift+Enter")
        prompt = cell.locator(".jp-InputArea-prompt")
        self.page.wait_for_function(
            "el => /\\[\\d+\\]/.test(el.textContent)", arg=prompt.element_handle(), timeout=timeout
        )
        return cell

    def run_cells(self, *indices: int) -> None:
        """Run the given cells in order."""
        for index in indices:
            self.run_cell(index)

    def outputs_text(self, index: int) -> str:
        """The visible text of cell ``index``'s outputs."""
        return str(self.cell(index).locator(".jp-OutputArea").inner_text())


def wait_until(
    condition: Callable[[], Any], timeout: float, message: str, period: float = 0.1
) -> Any:
    """Poll ``condition`` until it returns something true; ``AssertionError`` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(period)
    raise AssertionError(f"timed out after {timeout} s: {message}")


STEP = re.compile(r"step (\d+)/(\d+)")


def last_step(log_text: str) -> int:
    """The highest ``step k/n`` number in a log text (0 if none)."""
    return max((int(m.group(1)) for m in STEP.finditer(log_text)), default=0)
