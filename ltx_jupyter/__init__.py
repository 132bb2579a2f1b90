"""ltx-jupyter: generate LTX Video clips on fal.ai from Jupyter.

``%load_ext ltx_jupyter`` registers the ``%%ltx`` magic. The async queue client
(:class:`QueueClient`) works without IPython. Heavy modules load on first use, so
``import ltx_jupyter`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._errors import (
    AuthenticationError,
    FieldError,
    HTTPError,
    InputError,
    LtxError,
    MissingCredentialsError,
    ProtocolError,
    RequestCancelledError,
    RequestTimeoutError,
    RunFailedError,
    ValidationError,
)

__version__ = "0.1.0"

_LAZY = {
    "QueueClient": "._client",
    "RetryPolicy": "._retries",
    "LogEntry": "._models",
    "RequestHandle": "._models",
    "QueueStatus": "._models",
    "Queued": "._models",
    "InProgress": "._models",
    "Completed": "._models",
    "VideoResult": "._schema",
    "VideoFile": "._schema",
    "validate_input": "._schema",
    "Job": "._jobs",
    "JobOptions": "._jobs",
    "JobSession": "._jobs",
    "JobStatus": "._jobs",
    "JobView": "._views",
    "LtxMagics": ".magics",
    "Panel": "._panel",
}

if TYPE_CHECKING:
    from ._client import QueueClient
    from ._jobs import Job, JobOptions, JobSession, JobStatus
    from ._models import Completed, InProgress, LogEntry, Queued, QueueStatus, RequestHandle
    from ._panel import Panel
    from ._retries import RetryPolicy
    from ._schema import VideoFile, VideoResult, validate_input
    from ._views import JobView
    from .magics import LtxMagics

__all__ = [
    "AuthenticationError",
    "Completed",
    "FieldError",
    "HTTPError",
    "InProgress",
    "InputError",
    "Job",
    "JobOptions",
    "JobSession",
    "JobStatus",
    "JobView",
    "LogEntry",
    "LtxError",
    "LtxMagics",
    "MissingCredentialsError",
    "Panel",
    "ProtocolError",
    "QueueClient",
    "QueueStatus",
    "Queued",
    "RequestCancelledError",
    "RequestHandle",
    "RequestTimeoutError",
    "RetryPolicy",
    "RunFailedError",
    "ValidationError",
    "VideoFile",
    "VideoResult",
    "validate_input",
]


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext ltx_jupyter``: register ``%%ltx`` and ``%ltx``."""
    from .magics import load_ipython_extension as load

    load(shell)


def unload_ipython_extension(shell: Any) -> None:
    """``%unload_ext ltx_jupyter``: stop the worker; remote requests are not cancelled."""
    from .magics import unload_ipython_extension as unload

    unload(shell)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ltx_jupyter' has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
