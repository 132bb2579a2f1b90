"""Shared fixtures, and the guard against silent skips.

Every skip must be one the suite explains below (:data:`EXPLAINED_SKIPS`) and that the README's
test command (``bash scripts/test.sh``, which CI runs) sets up, so none happens there. Any other
skip fails the run, naming the test and its reason: a module that stops running cannot go
unnoticed. ``LTX_ALLOW_SKIPS=1`` lets a developer with a partial set-up run the rest.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ltx_jupyter.server import LocalServer

#: Skip reasons the suite explains: a pattern of the reason, and why CI never meets it.
EXPLAINED_SKIPS = {
    r"^the diffusers extra is not installed": (
        "the diffusers engine's tests need torch, diffusers and transformers: scripts/test.sh "
        "installs the CPU build of torch and the [diffusers] extra before running the suite"
    ),
}

_skips: list[tuple[str, str]] = []


def pytest_configure(config: pytest.Config) -> None:
    # Fetched schemas and prices are cached in the user cache directory: the suite keeps its
    # own, so it neither reads a developer's cache nor leaves anything in it.
    import tempfile

    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="ltx-test-cache-")


@pytest.fixture(autouse=True)
def _no_failed_lookups_from_earlier_tests() -> None:
    """A failed price or schema lookup is remembered by address for 10 minutes in the
    process; a test whose server gets a port an earlier test used must not inherit it."""
    from ltx_jupyter import _endpoints, _pricing

    _endpoints.forget_unreachable()
    _pricing._unreachable.clear()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _skips.append((report.nodeid, _skip_reason(report)))


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.skipped:
        _skips.append((report.nodeid, _skip_reason(report)))


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def unexplained_skips() -> list[tuple[str, str]]:
    """The skips of this run whose reason :data:`EXPLAINED_SKIPS` does not explain."""
    return [
        (nodeid, reason)
        for nodeid, reason in _skips
        if not any(re.search(pattern, reason) for pattern in EXPLAINED_SKIPS)
    ]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    unexplained = unexplained_skips()
    passed = exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
    if unexplained and os.environ.get("LTX_ALLOW_SKIPS") != "1" and passed:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    unexplained = unexplained_skips()
    if unexplained and os.environ.get("LTX_ALLOW_SKIPS") != "1":
        terminalreporter.section("unexplained skips (they fail the run)", red=True)
        for nodeid, reason in unexplained:
            terminalreporter.write_line(f"{nodeid}: {reason}")
        terminalreporter.write_line(
            "Explain a skip in tests/conftest.py EXPLAINED_SKIPS (and make CI set it up), or "
            "fix what made the test skip; LTX_ALLOW_SKIPS=1 runs a partial set-up anyway."
        )


# Small, quick clips: a default job (30 steps) takes about 0.7 s.
FAST_SERVER = {"step_seconds": 0.02, "width": 64, "height": 64, "num_frames": 9}


@pytest.fixture(params=["httpx", "aiohttp"])
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each HTTP transport the package ships, chosen as a user chooses it
    (``LTX_HTTP_TRANSPORT``): a test using this runs once per transport, and every
    ``QueueClient`` it builds without ``transport=`` runs on that one."""
    monkeypatch.setenv("LTX_HTTP_TRANSPORT", request.param)
    return str(request.param)


@pytest.fixture(scope="session")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """A started local server (synthetic engine, small clips) shared by the session."""
    from ltx_jupyter.server import LocalServer, ServerConfig

    config = ServerConfig(port=0, data_dir=tmp_path_factory.mktemp("server"), **FAST_SERVER)
    with LocalServer(config) as server:
        yield server


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., LocalServer]]:
    """Start a local server with custom :class:`ServerConfig` options; stopped after the test."""
    from ltx_jupyter.server import LocalServer, ServerConfig

    started: list[LocalServer] = []

    def start(**options: Any) -> LocalServer:
        settings = {
            **FAST_SERVER,
            "port": 0,
            "data_dir": tmp_path / f"server-{len(started)}",
            **options,
        }
        server = LocalServer(ServerConfig(**settings)).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def ltx_shell(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """Make a fresh ``InteractiveShell`` with ltx_jupyter loaded, talking to the queue at
    ``url`` (``LtxMagics`` config as keywords); the extension is unloaded after the test.
    The test prepares the rest of the environment (history file, credentials)."""
    from IPython.core.interactiveshell import InteractiveShell

    shells: list[Any] = []

    def make(url: str, **config: Any) -> Any:
        monkeypatch.setenv("LTX_QUEUE_URL", url)
        InteractiveShell.clear_instance()
        shell = InteractiveShell.instance()
        shell.history_manager.enabled = False
        for name, value in config.items():
            setattr(shell.config.LtxMagics, name, value)
        shell.run_line_magic("load_ext", "ltx_jupyter")
        shells.append(shell)
        return shell

    yield make
    for shell in shells:
        shell.run_line_magic("unload_ext", "ltx_jupyter")
    InteractiveShell.clear_instance()


@pytest.fixture
def make_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ltx_shell: Callable[..., Any]
) -> Callable[..., Any]:
    """A fresh InteractiveShell with the extension loaded, pointed at a server (``LtxMagics``
    config as keywords), working in a temporary folder with its own history and no
    credentials."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LTX_HISTORY_FILE", str(tmp_path / "history.jsonl"))
    for name in ("FAL_KEY", "FAL_KEY_ID", "FAL_KEY_SECRET"):
        monkeypatch.delenv(name, raising=False)

    def make(server: Any, **config: Any) -> Any:
        return ltx_shell(server.url, **config)

    return make


@pytest.fixture
def start_kernel(tmp_path: Path) -> Iterator[Callable[..., tuple[Any, Any]]]:
    """Start real IPython kernels (jupyter_client) whose ltx-jupyter talks to the queue at
    ``queue_url``, in ``tmp_path`` with its history there and no ``FAL_KEY`` (``env``: more
    variables); each is ``(manager, client)``, shut down after the test."""
    from jupyter_client.manager import start_new_kernel

    started = []

    def start(queue_url: str, **env: str) -> tuple[Any, Any]:
        environ = {
            **os.environ,
            "LTX_QUEUE_URL": queue_url,
            "LTX_HISTORY_FILE": str(tmp_path / "history.jsonl"),
            **env,
        }
        environ.pop("FAL_KEY", None)
        km, kc = start_new_kernel(kernel_name="python3", env=environ, cwd=str(tmp_path))
        started.append((km, kc))
        return km, kc

    yield start
    for km, kc in started:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


@pytest.fixture(scope="session")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 20 MB JPEG (``tests/photos.py``), as a phone takes them: the upload tests send it."""
    from .photos import PHOTO_BYTES, write_photo

    path = write_photo(tmp_path_factory.mktemp("photos") / "phone photo.jpg")
    assert path.stat().st_size >= PHOTO_BYTES
    return path
