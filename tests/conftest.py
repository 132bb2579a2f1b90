"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ltx_jupyter.server import LocalServer

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
