"""Execute notebooks/quickstart.ipynb headlessly against the local server, as a user would.

The executed copy is written next to it (quickstart.executed.ipynb). Exits non-zero unless the
executed notebook holds a finished video output.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def video_outputs(notebook: nbformat.NotebookNode) -> list[str]:
    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            html = output.get("data", {}).get("text/html", "")
            if "<video" in html:
                found.append(html)
    return found


def main(name: str = "quickstart") -> int:
    source = NOTEBOOKS / f"{name}.ipynb"
    notebook = nbformat.read(source, as_version=4)
    started = time.monotonic()
    NotebookClient(
        notebook, timeout=300, resources={"metadata": {"path": str(NOTEBOOKS)}}
    ).execute()
    executed = NOTEBOOKS / f"{name}.executed.ipynb"
    nbformat.write(notebook, executed)
    videos = video_outputs(notebook)
    print(f"executed {source.name} in {time.monotonic() - started:.1f} s -> {executed}")
    print(f"video outputs: {len(videos)}")
    return 0 if videos else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
