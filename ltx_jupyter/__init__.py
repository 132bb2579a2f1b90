"""ltx-jupyter: generate LTX Video clips on fal.ai from Jupyter.

``%load_ext ltx_jupyter`` registers the ``%%ltx`` magic. The async queue client
(:class:`QueueClient`) works without IPython. Heavy modules load on first use, so
``import ltx_jupyter`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import _errors
from ._errors import *  # noqa: F403  (every exception; the module lists them in its __all__)

__version__ = "0.1.0"

#: Everything else the package offers, by name, and the module it is imported from on first use.
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

if TYPE_CHECKING:  # the same names as _LAZY, for type checkers (tests/test_public_api.py)
    from ._client import (
        QueueClient as QueueClient,
    )
    from ._jobs import (
        Job as Job,
    )
    from ._jobs import (
        JobOptions as JobOptions,
    )
    from ._jobs import (
        JobSession as JobSession,
    )
    from ._jobs import (
        JobStatus as JobStatus,
    )
    from ._models import (
        Completed as Completed,
    )
    from ._models import (
        InProgress as InProgress,
    )
    from ._models import (
        LogEntry as LogEntry,
    )
    from ._models import (
        Queued as Queued,
    )
    from ._models import (
        QueueStatus as QueueStatus,
    )
    from ._models import (
        RequestHandle as RequestHandle,
    )
    from ._panel import (
        Panel as Panel,
    )
    from ._retries import (
        RetryPolicy as RetryPolicy,
    )
    from ._schema import (
        VideoFile as VideoFile,
    )
    from ._schema import (
        VideoResult as VideoResult,
    )
    from ._schema import (
        validate_input as validate_input,
    )
    from ._views import (
        JobView as JobView,
    )
    from .magics import (
        LtxMagics as LtxMagics,
    )

#: The public API: every name above, and the one extension hook pair below.
__all__ = sorted([*_errors.__all__, *_LAZY, "load_ipython_extension", "unload_ipython_extension"])


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext ltx_jupyter``: register ``%%ltx`` and ``%ltx``."""
    from .magics import load_ipython_extension as load

    load(shell)


def unload_ipython_extension(shell: Any) -> None:
    """``%unload_ext ltx_jupyter``: stop the worker; remote requests are not cancelled."""
    from .magics import unload_ipython_extension as unload

    unload(shell)


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ltx_jupyter' has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
