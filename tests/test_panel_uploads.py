"""The panel's upload path, kernel side, through ``%ltx panel`` in a real shell against the
local server: a file chosen in the browser arrives in acknowledged chunks (the front end
played by :mod:`tests.picker_frontend`; the browser tests drive the real one), is refused
after its first bytes when it is not the kind the field wants, and a 20 MB photo goes to
storage when the job starts, as ``--image PATH`` does, never as a data URI."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from ltx_jupyter import JobStatus
from ltx_jupyter._client import DEFAULT_DATA_URI_LIMIT
from ltx_jupyter._file_picker import CHUNK_BYTES, upload_folder
from ltx_jupyter._panel import Panel
from ltx_jupyter._schema import IMAGE_TO_VIDEO
from tests.faultproxy import FaultProxy
from tests.picker_frontend import PickerFrontEnd, send_file
from tests.shells import eventually
from tests.test_magics import server_state, submits
from tests.test_panel import env, png_bytes, text_of

__all__ = ["env"]  # a fixture, used by name

UPLOADING = re.compile(r"uploading (\d+\.\d) / (\d+\.\d) MB")
EXTEND = "fal-ai/ltxv-13b-098-distilled/extend"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    import numpy as np

    from ltx_jupyter.server.video import write_mp4

    path = tmp_path_factory.mktemp("clips") / "clip.mp4"
    write_mp4((np.zeros((16, 16, 3), np.uint8) for _ in range(3)), path, 8)
    return path.read_bytes()


def image_panel(shell: Any, endpoint: str = IMAGE_TO_VIDEO) -> Panel:
    panel: Panel = shell.run_line_magic("ltx", "panel")
    panel.endpoint_choice.value = endpoint
    panel.control("prompt").text.value = "The photo comes alive"
    if panel.form.has("num_inference_steps"):
        panel.control("num_inference_steps").box.value = 2
    return panel


@pytest.mark.timeout(120)
def test_a_20_mb_photo_arrives_in_chunks_then_goes_to_storage_when_the_job_starts(
    make_shell, env, photo
):
    # Storage behind a 10 MB/s uplink, so the upload lasts as long as a person can see.
    storage = FaultProxy(env.url).start()
    storage.add("throttle", path=r"^/storage/upload/", method="PUT", size=10_000_000, times=9)
    shell = make_shell(env, storage_url=storage.url)
    panel = image_panel(shell)
    image = panel.control("image_url")
    content = photo.read_bytes()
    front = PickerFrontEnd(image.upload)

    transfer = front.start(photo.name, len(content), "image/jpeg")
    replies = front.send_chunks(transfer, content, count=3)
    assert [r["received"] for r in replies] == [0, CHUNK_BYTES, 2 * CHUNK_BYTES, 3 * CHUNK_BYTES]
    assert image.upload.receiving == (photo.name, 3 * CHUNK_BYTES, len(content))
    reason = f"image_url: {photo.name} is still arriving from the browser; wait for it"
    assert image.error_text == reason
    assert panel.generate_button.disabled and reason in text_of(panel.message)

    replies = front.send_chunks(transfer, content)
    acks = [r["received"] for r in replies if r["event"] == "ack"]
    assert len(acks) == 1 + -(-len(content) // CHUNK_BYTES) and acks == sorted(acks)
    assert replies[-1] == {"event": "done", "id": transfer}
    assert image.upload.receiving is None and not image.invalid
    kept = Path(panel.arguments()["image_url"])
    assert kept.name == photo.name and kept.read_bytes() == content
    megabytes = f"{len(content) / 1e6:.1f}"
    assert text_of(image.preview) == f"{photo.name} ({megabytes} MB): uploaded when the job starts"
    assert "<img" not in image.preview.value, "too large to preview: named instead"

    job = panel.generate()
    assert job is not None
    view = panel.runs[0].view
    statuses: list[str] = []
    view.status_html.observe(lambda change: statuses.append(change["new"]), "value")
    try:
        eventually(lambda: job.done, 90)
    finally:
        storage.stop()
    assert job.status == JobStatus.COMPLETED, job.error
    # The panel's job view showed the upload going up, of the whole file.
    shown = [(m.group(1), m.group(2)) for line in statuses if (m := UPLOADING.search(line))]
    assert len(shown) >= 3 and {total for _sent, total in shown} == {megabytes}, statuses
    sent_mb = [float(sent) for sent, _total in shown]
    assert sent_mb == sorted(sent_mb)

    sent = server_state(env, job.request_id)["input"]["image_url"]
    assert sent.startswith(f"{storage.url}/files/"), sent[:80]
    stored = httpx.get(env.url + sent.removeprefix(storage.url), timeout=30).content
    assert hashlib.sha256(stored).digest() == hashlib.sha256(content).digest()


def test_a_small_upload_is_sent_inline_as_the_client_sends_a_small_file(make_shell, env):
    shell = make_shell(env)
    panel = image_panel(shell)
    image = panel.control("image_url")
    picture = png_bytes(64, 64)
    assert len(picture) <= DEFAULT_DATA_URI_LIMIT
    send_file(image, "frame.png", picture)
    assert "frame.png (0.0 MB): sent inline when the job starts" in text_of(image.preview)
    assert '<img src="data:image/png;base64,' in image.preview.value
    job = panel.generate()
    assert job is not None
    eventually(lambda: job.done)
    assert job.status == JobStatus.COMPLETED, job.error
    assert server_state(env, job.request_id)["input"]["image_url"].startswith(
        "data:image/png;base64,"
    )


@pytest.mark.parametrize(
    ("endpoint", "field", "name", "content", "message"),
    [
        (
            IMAGE_TO_VIDEO,
            "image_url",
            "photo.jpg",
            b"notes, not a photo\n" * 200_000,  # 3.8 MB of text
            "photo.jpg is not an image: it is text; give a JPEG, PNG, WebP, GIF, BMP, TIFF, "
            "HEIC or AVIF file",
        ),
        (
            IMAGE_TO_VIDEO,
            "image_url",
            "frame.png",
            "clip",
            "frame.png is not an image: it is an MP4",
        ),
        (
            IMAGE_TO_VIDEO,
            "image_url",
            "scan.jpg",
            b"%PDF-1.7\n" + bytes(5000),
            "it is a PDF document",
        ),
        (EXTEND, "video_url", "clip.mp4", "png", "clip.mp4 is not a video: it is a PNG image"),
    ],
)
def test_a_file_of_the_wrong_kind_is_refused_after_its_first_chunk(
    make_shell, env, clip, endpoint, field, name, content, message
):
    content = {"clip": clip, "png": png_bytes()}.get(content, content)  # type: ignore[arg-type]
    shell = make_shell(env)
    panel = image_panel(shell, endpoint)
    control = panel.control(field) if field == "image_url" else panel.control("video")
    target = control if field == "image_url" else control.children_controls["video_url"]
    before, kept = submits(env), _kept_files()
    replies = send_file(target, name, content, chunk=64 * 1024)
    chunks = sum(1 for r in replies if r["event"] == "ack") - 1
    assert replies[-1]["event"] == "refused" and chunks == 0, "refused on its first chunk"
    assert message in replies[-1]["reason"]
    assert message in target.error_text and target.invalid
    assert panel.generate_button.disabled and message in text_of(panel.message)
    assert _kept_files() == kept, "what arrived of it is removed"
    assert panel.generate() is None and submits(env) == before


def _kept_files() -> set[Path]:
    return set(upload_folder().glob("*/*"))


def test_empty_garbled_replaced_and_abandoned_transfers(make_shell, env):
    shell = make_shell(env)
    panel = image_panel(shell)
    image = panel.control("image_url")
    front = PickerFrontEnd(image.upload)

    replies = front.send_file("empty.png", b"")
    assert replies[-1]["event"] == "refused"
    assert image.error_text == "image_url: empty.png is empty; choose a file with something in it"

    picture = png_bytes(300, 300) + bytes(200_000)
    transfer = front.start("first.png", len(picture))
    front.send_chunks(transfer, picture, chunk=50_000, count=2)
    partial = image.upload._transfer.path
    assert partial.exists()
    # A second choice while the first arrives replaces it: the first's bytes are dropped.
    replies = front.send_file("second.png", picture, chunk=50_000)
    assert replies[-1]["event"] == "done" and not partial.exists()
    assert Path(image.value).name == "second.png" and not image.invalid
    front.message({"event": "chunk", "id": transfer, "offset": 100_000}, b"late")  # ignored
    assert Path(image.value).read_bytes() == picture

    transfer = front.start("third.png", len(picture))
    front.message({"event": "chunk", "id": transfer, "offset": 7}, picture[:10])
    assert front.replies[-1] == {
        "event": "refused",
        "id": transfer,
        "reason": "third.png arrived garbled; choose it again",
    }
    transfer = front.start("fourth.png", len(picture))
    front.send_chunks(transfer, picture, chunk=50_000, count=1)
    front.message({"event": "abort", "id": transfer})  # the page went away mid-way
    assert image.upload.receiving is None
    assert image.error_text == (
        "image_url: sending fourth.png stopped in the browser; choose it again"
    )
    image.url.value = "https://example.com/frame.png"
    assert not image.invalid and not panel.generate_button.disabled
