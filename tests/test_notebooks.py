"""The shipped notebooks, executed headlessly as nbconvert or papermill would run them."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
CANARY = "fal-canary-key-0f9e8d7c6b5a"


@pytest.mark.parametrize("name", ["quickstart"])
def test_notebook_runs_headless_holds_the_video_and_never_the_key(name, tmp_path, monkeypatch):
    monkeypatch.setenv("FAL_KEY", CANARY)
    history = tmp_path / "history.jsonl"
    monkeypatch.setenv("LTX_HISTORY_FILE", str(history))
    monkeypatch.delenv("LTX_QUEUE_URL", raising=False)
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    NotebookClient(notebook, timeout=180, resources={"metadata": {"path": str(tmp_path)}}).execute()
    executed = tmp_path / f"{name}.executed.ipynb"
    nbformat.write(notebook, executed)

    outputs = [o for cell in notebook.cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    videos = [o for o in outputs if "<video" in o.get("data", {}).get("text/html", "")]
    assert videos, "the executed notebook holds no video"
    metadata = videos[0]["metadata"]["ltx_jupyter"]
    assert metadata["request_id"] and metadata["endpoint"] == "fal-ai/ltx-video"
    assert metadata["parameters"]["seed"] == 42
    # Without widget state the video still shows: it is a plain output, not a widget.
    assert "application/vnd.jupyter.widget-view+json" not in videos[0]["data"]

    assert CANARY not in executed.read_text()
    assert CANARY not in json.dumps(notebook)
    assert metadata["request_id"] in history.read_text()
    assert CANARY not in history.read_text()
