"""Helpers shared by the tests that drive ltx-jupyter through a real IPython shell."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from IPython.core.interactiveshell import InteractiveShell


def eventually(condition: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll ``condition`` until it is truthy (returning its value) or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def magics_of(shell: InteractiveShell) -> Any:
    """The ``LtxMagics`` instance loaded into ``shell``."""
    from ltx_jupyter.magics import LtxMagics

    return next(c for c in shell.configurables if isinstance(c, LtxMagics))
