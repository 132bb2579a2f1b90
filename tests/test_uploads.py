"""Big and bad local files for ``--image`` (and the video and audio fields of newer endpoints),
through a real shell against the local server over loopback: a 20 MB photo goes to storage
with its progress shown, and a file of the wrong kind, a file that vanishes before its upload
and a storage server that drops the upload midway each give one line naming the file, with no
paid submit."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from IPython.core.error import UsageError

from ltx_jupyter import JobStatus, QueueClient, RetryPolicy
from ltx_jupyter._errors import InputError, UploadError
from ltx_jupyter._files import check_local_files, sniff
from ltx_jupyter.server.video import write_mp4

from .faultproxy import FaultProxy
from .photos import write_photo
from .shells import eventually, magics_of

FAST_RETRY = RetryPolicy(max_attempts=3, base=0.01, cap=0.05)
UPLOADING = re.compile(r"uploading (\d+\.\d) / (\d+\.\d) MB")


@pytest.fixture(scope="module")
def small_photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real JPEG of about 1.3 MB: over the data URI limit, so it is uploaded too."""
    return write_photo(tmp_path_factory.mktemp("photos") / "small.jpg", 1024, 768)


@contextlib.contextmanager
def runner_paused(shell: Any) -> Iterator[None]:
    """Hold the shell's runner (its event loop waits) until the block ends: what a cell
    starts meanwhile is validated on the kernel thread but not yet run."""
    gate = threading.Event()
    magics_of(shell).session.runner.call_soon(gate.wait)
    try:
        yield
    finally:
        gate.set()


def counts(server: Any) -> dict[str, int]:
    return dict(httpx.get(f"{server.url}/_local/stats").json()["by_kind"])


def submitted_input(server: Any, request_id: str) -> dict[str, Any]:
    """The input the server queued for ``request_id``, from its own record."""
    record = json.loads((server.config.data_dir / "requests" / f"{request_id}.json").read_text())
    return dict(record["input"])


def view_statuses(view: Any) -> list[str]:
    """Start recording every status line the view's widget is assigned."""
    seen: list[str] = []
    view.status_html.observe(lambda change: seen.append(change["new"]), "value")
    return seen


@pytest.mark.timeout(120)
def test_a_20_mb_photo_goes_to_storage_with_its_progress_shown_and_the_job_runs(
    make_shell: Callable[..., Any], server_factory: Callable[..., Any], photo: Path
) -> None:
    server = server_factory()
    # Storage behind a 10 MB/s uplink, so the upload lasts as long as a person can see.
    storage = FaultProxy(server.url).start()
    storage.add("throttle", path=r"^/storage/upload/", method="PUT", size=10_000_000, times=9)
    shell = make_shell(server, storage_url=storage.url)
    magics = magics_of(shell)
    with runner_paused(shell):
        shell.run_cell_magic("ltx", f"-o job --steps 2 --image '{photo}'", "the photo comes alive")
        job = shell.user_ns["job"]
        view = magics.views[job.local_id]
        statuses = view_statuses(view)
        bars: list[tuple[str, float]] = []
        view.progress.observe(
            lambda _: bars.append((view.progress.description, view.progress.value)), "value"
        )
        lines: list[str] = []
        job.add_listener(lambda j: lines.append(j.status_line()))
    try:
        job.wait(90)
    finally:
        storage.stop()
    assert job.status == JobStatus.COMPLETED, job.error

    # The text status and the widget both showed the upload going up to the whole file.
    sent = [float(m.group(1)) for line in lines if (m := UPLOADING.search(line))]
    totals = {m.group(2) for line in lines if (m := UPLOADING.search(line))}
    assert totals == {f"{photo.stat().st_size / 1e6:.1f}"}, lines
    assert len(set(sent)) >= 5 and sent == sorted(sent), sent
    shown = [float(m.group(1)) for status in statuses if (m := UPLOADING.search(status))]
    assert len(shown) >= 3 and shown == sorted(shown), statuses
    uploaded = [value for name, value in bars if name == "upload"]
    assert len(uploaded) >= 3 and uploaded == sorted(uploaded) and uploaded[-1] > 0.5, bars
    assert "uploading" not in view.status_html.value  # the view moved on

    # Storage got the bytes; the submit carried their URL, not a data URI.
    image_url = submitted_input(server, job.request_id)["image_url"]
    assert image_url.startswith(f"{storage.url}/files/"), image_url[:80]
    stored = httpx.get(server.url + image_url.removeprefix(storage.url), timeout=30).content
    assert hashlib.sha256(stored).digest() == hashlib.sha256(photo.read_bytes()).digest()
    assert counts(server)["submit"] == 1
    assert job.result is not None and httpx.get(job.result.url).content[4:8] == b"ftyp"


def test_the_data_uri_limit_stays_under_the_size_fal_users_saw_fail() -> None:
    with pytest.raises(ValueError, match="data_uri_limit must be 0 to 3145728 bytes"):
        QueueClient(queue_url="http://127.0.0.1:9", data_uri_limit=20_000_000)


# -- files of the wrong kind: refused in the cell, before any request ------------------------------


def _png() -> bytes:
    return bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c63f8cfc0f00f0004850180848a9321"
        "0000000049454e44ae426082"
    )


def _wav() -> bytes:
    data = b"\x00\x00" * 800
    header = b"RIFF" + (36 + len(data)).to_bytes(4, "little") + b"WAVEfmt "
    header += (16).to_bytes(4, "little") + (1).to_bytes(2, "little") * 2
    header += (8000).to_bytes(4, "little") + (16000).to_bytes(4, "little")
    header += (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
    return header + b"data" + len(data).to_bytes(4, "little") + data


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import numpy as np

    path = tmp_path_factory.mktemp("clips") / "clip.mp4"
    write_mp4((np.zeros((16, 16, 3), np.uint8) for _ in range(3)), path, 8)
    return path


@pytest.mark.parametrize(
    ("options", "name", "content", "message"),
    [
        ("--image {path}", "photo.jpg", b"just some notes\n", "is not an image: it is text"),
        ("--image {path}", "frame.png", "clip", "is not an image: it is an MP4 video"),
        ("--image {path}", "empty.png", b"", "is not an image: it is empty"),
        ("--image {path}", "scan.jpg", b"%PDF-1.7\n", "is not an image: it is a PDF document"),
        (
            "--endpoint fal-ai/ltxv-13b-098-distilled/extend --video {path}",
            "clip.mp4",
            "png",
            "is not a video: it is a PNG image",
        ),
        (
            # No shipped endpoint takes sound: a field let through (strict_fields off) by name.
            "--param audio_url={path}",
            "voice.wav",
            "clip",
            "is not a sound file: it is an MP4 video",
        ),
    ],
)
def test_a_file_of_the_wrong_kind_is_a_one_line_error_naming_it_before_any_request(
    make_shell: Callable[..., Any],
    server_factory: Callable[..., Any],
    tmp_path: Path,
    clip: Path,
    options: str,
    name: str,
    content: bytes | str,
    message: str,
) -> None:
    server = server_factory()
    shell = make_shell(server)
    path = tmp_path / name
    data = (
        {"clip": clip.read_bytes(), "png": _png()}.get(content)
        if isinstance(content, str)
        else content
    )
    path.write_bytes(data or b"")
    shell.run_line_magic("config", "LtxMagics.strict_fields = False")
    with pytest.raises(UsageError) as caught:
        shell.run_cell_magic("ltx", options.format(path=path), "a prompt")
    text = str(caught.value)
    assert "\n" not in text
    assert str(path) in text and message in text, text
    assert text.startswith(
        ("%ltx: --image (image_url): ", "%ltx: --video (video.video_url): ", "%ltx: --audio-file ")
    ), text
    assert sum(counts(server).values()) == 0, "no request may be sent"


def test_files_of_the_declared_kind_pass(tmp_path: Path, clip: Path, small_photo: Path) -> None:
    sound = tmp_path / "voice.bin"  # the name says nothing: the bytes do
    sound.write_bytes(_wav())
    picture = tmp_path / "picture.data"
    picture.write_bytes(_png())
    check_local_files(
        "fal-ai/some-future-ltx",
        {"image_url": str(picture), "video_url": str(clip), "audio_url": str(sound)},
    )
    check_local_files("fal-ai/ltx-video/image-to-video", {"image_url": str(small_photo)})
    assert sniff(_wav()[:64]).content_type == "audio/wav"
    assert sniff(clip.read_bytes()[:64]).content_type == "video/mp4"
    with pytest.raises(InputError) as caught:
        check_local_files("fal-ai/x/y", {"image_url": str(sound), "video_url": str(picture)})
    assert caught.value.fields == ["image_url", "video_url"]


# -- failures between validation and the submit: the job fails naming the file, nothing paid -------


@pytest.mark.timeout(60)
def test_a_file_that_vanishes_before_its_upload_fails_the_job_naming_it_without_a_submit(
    make_shell: Callable[..., Any], server_factory: Callable[..., Any], tmp_path: Path
) -> None:
    server = server_factory()
    shell = make_shell(server)
    path = write_photo(tmp_path / "vanishing photo.jpg", 1024, 768)
    with runner_paused(shell):
        shell.run_cell_magic("ltx", f"-o job --image '{path}'", "the photo comes alive")
        path.unlink()  # validated in the cell, gone before the runner reads it
    job = shell.user_ns["job"]
    with pytest.raises(UploadError) as caught:
        job.wait(30)
    assert str(caught.value) == (
        f"image_url: {path}: the file is gone (deleted or moved); nothing was submitted"
    )
    assert job.status == JobStatus.FAILED and job.request_id is None
    view = magics_of(shell).views[job.local_id]
    eventually(lambda: "the file is gone" in view.status_html.value)
    stats = counts(server)
    assert stats["submit"] == 0 and stats["upload"] == 0, stats


@pytest.mark.timeout(60)
def test_a_storage_server_that_drops_the_upload_midway_fails_the_job_without_a_submit(
    make_shell: Callable[..., Any], server_factory: Callable[..., Any], small_photo: Path
) -> None:
    server = server_factory()
    with FaultProxy(server.url) as storage:
        # Every PUT of the bytes is cut once 300 kB of it reached the server.
        storage.add("cut_request", path=r"^/storage/upload/", method="PUT", size=300_000, times=99)
        shell = make_shell(server, storage_url=storage.url)
        magics = magics_of(shell)
        magics.session.client(server.url, storage.url).retry = FAST_RETRY
        shell.run_cell_magic("ltx", f"-o job --image {small_photo}", "the photo comes alive")
        job = shell.user_ns["job"]
        with pytest.raises(UploadError) as caught:
            job.wait(30)
        text = str(caught.value)
        assert text.startswith(f"image_url: {small_photo}: the upload failed: "), text
        assert text.endswith("; nothing was submitted") and "\n" not in text, text
        assert storage.injected["cut_request"] == FAST_RETRY.max_attempts
    assert job.status == JobStatus.FAILED and job.request_id is None
    assert counts(server)["submit"] == 0
