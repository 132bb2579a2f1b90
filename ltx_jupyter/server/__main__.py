"""``python -m ltx_jupyter.server``: the same as ``ltx-jupyter serve``."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
