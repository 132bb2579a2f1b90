"""The fal-compatible local queue server and its engines.

``LocalServer(port=0).start()`` serves fal's queue protocol on loopback with the offline
``synthetic`` engine; ``ltx-jupyter serve`` runs it from a shell. It imports neither IPython
nor the client.
"""

from __future__ import annotations

from .app import create_app
from .config import ServerConfig
from .local import LocalServer

__all__ = ["LocalServer", "ServerConfig", "create_app"]
