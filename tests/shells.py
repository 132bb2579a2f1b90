"""Helpers shared by the tests that drive ltx-jupyter through a real IPython shell."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from IPython.core.interactiveshell import InteractiveShell


def eventually(condition: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    """Poll ``condition`` until it is truthy (returning its value) or fail after ``timeout``,
    saying ``what`` did not happen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"never happened: {what}" if what else "condition not reached in time")


def magics_of(shell: InteractiveShell) -> Any:
    """The ``LtxMagics`` instance loaded into ``shell``."""
    from ltx_jupyter.magics import LtxMagics

    return next(c for c in shell.configurables if isinstance(c, LtxMagics))
