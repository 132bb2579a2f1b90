"""The key goes to the configured hosts only. A server whose answers point elsewhere (its
storage's upload URL, its submit's status, result and cancel URLs, its video URL) gets the key
itself, and the other server, a second one on loopback, receives every request the job makes
there without it, in no form (header, URL or body; plain, URL-encoded or base64)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from ltx_jupyter import JobStatus, QueueClient

from .hostile import HostileServer, RecordingServer
from .photos import write_photo
from .test_secrets import CANARY, assert_clean


@pytest.mark.timeout(120)
def test_no_request_to_another_host_carries_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ltx_shell: Callable[..., Any]
) -> None:
    monkeypatch.setenv("FAL_KEY", CANARY)
    monkeypatch.setenv("LTX_HISTORY_FILE", str(tmp_path / "history.jsonl"))
    monkeypatch.chdir(tmp_path)
    photo = write_photo(tmp_path / "photo.jpg", 1024, 768)  # over the data URI limit
    with RecordingServer() as elsewhere, HostileServer(elsewhere=elsewhere.url) as queue:
        shell = ltx_shell(queue.url)
        shell.run_cell_magic(
            "ltx", f"-o job --wait --save videos --embed --image {photo}", "a plain clip"
        )
        job = shell.user_ns["job"]
        assert job.status == JobStatus.COMPLETED
        assert job.fetch_bytes() == elsewhere.video
        shell.run_line_magic("ltx", f"cancel {job.request_id}")

    # The configured host got the key; the other one got the upload and the video reads.
    assert {r.headers.get("authorization") for r in queue.requests} == {f"Key {CANARY}"}
    received = {(r.method, r.path.split("/")[1]) for r in elsewhere.requests}
    assert {("PUT", "upload"), ("GET", "files")} <= received, received
    assert job.saved_path is not None and job.saved_path.read_bytes() == elsewhere.video
    for request in elsewhere.requests:
        assert "authorization" not in request.headers, request
        seen = [request.path, request.query, *request.headers.values()]
        assert_clean("\n".join(seen), f"{request.method} {request.path} on another host")
        assert_clean(request.body.decode("latin-1"), f"the body of {request.method} elsewhere")


def test_the_key_is_added_only_for_the_configured_hosts() -> None:
    """Whatever code path sends a request with the client's auth, the key goes only to the
    queue and storage hosts (the same host on another port is another host)."""
    client = QueueClient(
        CANARY, queue_url="http://127.0.0.1:8000", storage_url="https://storage.example"
    )
    for url, keyed in [
        ("http://127.0.0.1:8000/fal-ai/ltx-video", True),
        ("https://storage.example/storage/upload/initiate", True),
        ("https://storage.example:443/x", True),
        ("http://127.0.0.1:8001/fal-ai/ltx-video", False),
        ("http://storage.example/storage/upload/initiate", False),
        ("https://v3-uploads.fal.media/files/upload?signature=x", False),
    ]:
        request = next(client._auth.sync_auth_flow(httpx.Request("GET", url)))
        assert ("authorization" in request.headers) is keyed, url
