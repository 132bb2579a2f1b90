"""The panel's file upload in JupyterLab, in Chromium, on both sides of Jupyter Server's 10 MiB
websocket message limit: a 5 MB and a 20 MB photo chosen in the image control (Playwright
``set_input_files`` on its ``<input type=file>``) arrive in the kernel with their progress
shown, go to the local server's storage when the job starts, and the job's video plays; a text
file named like a photo is refused in the control with the reason.

Why it matters: ipywidgets' own ``FileUpload`` sends a file in one message, and Jupyter Server
closes the websocket on a message over 10 MiB; JupyterLab then reconnects without a word and
the kernel never gets the file. The panel's picker sends 1 MiB chunks instead. The time from
the choice to the file whole in the kernel is measured in the page and kept in
``test-artifacts/browser/upload-timings.json`` (a measurement, not an assertion).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..photos import write_photo
from ._jupyter import JupyterServer, NotebookDriver, wait_until, write_notebook
from .checks import assert_video_plays
from .conftest import save_screenshot
from .panel_driver import PanelDriver
from .test_lab_magic import server_request

#: Jupyter Server's default websocket message limit (tornado's ``websocket_max_message_size``).
WEBSOCKET_LIMIT = 10 * 1024 * 1024

CELLS = [
    "%load_ext ltx_jupyter",
    "%config LtxMagics.endpoint = 'fal-ai/ltx-video/image-to-video'\n"
    "panel = %ltx panel\n"
    'panel.set(prompt="The photo comes alive: leaves stir in a light breeze.",'
    " num_inference_steps=4)\n"
    "panel",
    "import hashlib, pathlib\n"
    "kept = pathlib.Path(panel.arguments()['image_url'])\n"
    "print(kept.name, hashlib.sha256(kept.read_bytes()).hexdigest(), "
    "panel.runs[-1].job.request_id if panel.runs else None)",
]

# Records every text the picker's status shows and when the file's preview line appears.
WATCH_PICKER = """
(root) => {
  const seen = {statuses: [], start: performance.now(), arrived: null};
  window.__ltxPicker = seen;
  const check = () => {
    const status = root.querySelector('.ltx-file-status');
    const text = status ? status.textContent : '';
    if (text && seen.statuses[seen.statuses.length - 1] !== text) seen.statuses.push(text);
    const field = root.querySelector('.ltx-field-image_url');
    if (seen.arrived === null && field && /when the job starts/.test(field.textContent)) {
      seen.arrived = performance.now();
    }
  };
  new MutationObserver(check).observe(root, {subtree: true, childList: true,
                                              characterData: true, attributes: true});
}
"""
_PROGRESS = re.compile(r": (\d+\.\d) / (\d+\.\d) MB$")


def record_timing(artifacts: Path, name: str, values: dict[str, Any]) -> None:
    path = artifacts / "upload-timings.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    known[name] = values
    path.write_text(json.dumps(known, indent=2))
    print(f"upload timing ({name}): {json.dumps(values)}")


@pytest.mark.parametrize(
    ("megabytes", "size"), [(5, (2048, 1536)), (20, (4096, 3072))], ids=["5MB", "20MB"]
)
def test_a_photo_chosen_in_the_panel_reaches_storage_and_the_job_runs(
    page: Any,
    lab: JupyterServer,
    ltx_server: Any,
    jupyter_root: Path,
    artifacts: Path,
    tmp_path: Path,
    megabytes: int,
    size: tuple[int, int],
) -> None:
    photo = write_photo(tmp_path / f"photo {megabytes} MB.jpg", *size)
    content = photo.read_bytes()
    assert (len(content) > WEBSOCKET_LIMIT) == (megabytes == 20), len(content)
    name = f"panel-upload-{megabytes}.ipynb"
    write_notebook(jupyter_root / name, CELLS)
    notebook = NotebookDriver(page, lab, name).open()
    notebook.run_cells(0, 1)
    panel = PanelDriver(notebook, cell=1)
    panel.root.wait_for()
    field = panel.field("image_url")
    field.wait_for()
    assert "is required" in field.inner_text()

    panel.root.evaluate(WATCH_PICKER)
    started = time.monotonic()
    field.locator("input.ltx-file-input").set_input_files(str(photo))
    shown = f"({len(content) / 1e6:.1f} MB): uploaded when the job starts"
    wait_until(lambda: shown in field.inner_text(), 120, f"never arrived: {field.inner_text()!r}")
    seen = page.evaluate("() => window.__ltxPicker")
    progress = [m.groups() for s in seen["statuses"] if (m := _PROGRESS.search(s))]
    received = [float(done) for done, _total in progress]
    assert len(progress) >= min(megabytes, 5), seen["statuses"]
    assert received == sorted(received), seen["statuses"]
    assert {total for _done, total in progress} == {f"{len(content) / 1e6:.1f}"}
    assert not field.locator(".ltx-invalid").count() and "ltx-invalid" not in (
        field.get_attribute("class") or ""
    )
    record_timing(
        artifacts,
        f"{megabytes}MB",
        {
            "bytes": len(content),
            "browser_to_kernel_s": round((seen["arrived"] - seen["start"]) / 1000, 3),
            "wall_s": round(time.monotonic() - started, 3),
            "progress_updates_seen": len(progress),
        },
    )

    view = panel.generate()
    video = view.locator("figure.ltx-video video")
    video.wait_for(timeout=90_000)
    assert "completed" in view.locator(".ltx-status").inner_text()
    assert_video_plays(video)

    output = notebook.run_cell(2).locator(".jp-OutputArea").inner_text().split()
    assert output[-3].endswith(".jpg") and output[-2] == hashlib.sha256(content).hexdigest()
    sent = server_request(ltx_server, output[-1])["input"]["image_url"]
    assert sent.startswith(f"{ltx_server.url}/files/"), sent[:80]
    stored = httpx.get(sent, timeout=30).content
    assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(content).hexdigest()
    save_screenshot(panel.root, artifacts / f"panel-upload-{megabytes}mb.png")


def test_a_file_of_the_wrong_kind_is_refused_in_the_control_with_the_reason(
    page: Any, lab: JupyterServer, jupyter_root: Path, artifacts: Path, tmp_path: Path
) -> None:
    notes = tmp_path / "holiday.jpg"
    notes.write_text("Packing list: sun cream, hat, a good book.\n" * 50_000)  # 2.2 MB of text
    name = "panel-upload-wrong.ipynb"
    write_notebook(jupyter_root / name, CELLS)
    notebook = NotebookDriver(page, lab, name).open()
    notebook.run_cells(0, 1)
    panel = PanelDriver(notebook, cell=1)
    field = panel.field("image_url")
    field.wait_for()
    field.locator("input.ltx-file-input").set_input_files(str(notes))
    reason = "holiday.jpg is not an image: it is text; give a JPEG, PNG, WebP, GIF"
    wait_until(lambda: reason in field.inner_text(), 30, f"no reason: {field.inner_text()!r}")
    assert "ltx-invalid" in (field.get_attribute("class") or "")
    assert field.locator(".ltx-file-status").inner_text().strip() == "refused"
    assert panel.button("Generate").is_disabled()
    assert reason in panel.message()
    save_screenshot(panel.root, artifacts / "panel-upload-wrong-kind.png")
