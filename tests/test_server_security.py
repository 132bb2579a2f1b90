"""The local server's defences: loopback bind, constant-time key check, no path traversal,
bounded bodies, no cross-origin browser requests unless configured, 404 for unknown routes."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from ltx_jupyter.server import LocalServer, ServerConfig
from ltx_jupyter.server import middleware as server_middleware
from ltx_jupyter.server.cli import build_parser

T2V = "fal-ai/ltx-video"
FOREIGN = "https://evil.example"


def raw_get(server: LocalServer, path: str, headers: dict[str, str] | None = None) -> Any:
    """A GET with the path sent exactly as written (httpx would normalise dot segments)."""
    port = int(server.url.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def finished_request(server: LocalServer) -> dict[str, Any]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        sub = client.post(f"/{T2V}", json={"prompt": "x", "num_inference_steps": 2}).json()
        deadline = time.monotonic() + 20
        while client.get(sub["status_url"]).json()["status"] != "COMPLETED":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        return {**sub, "output": client.get(sub["response_url"]).json()}


# -- binding and the key ---------------------------------------------------------------------


def test_the_server_binds_loopback_by_default(tmp_path: Any) -> None:
    assert ServerConfig(data_dir=tmp_path).host == "127.0.0.1"
    assert build_parser().parse_args(["serve"]).host == "127.0.0.1"
    with LocalServer(port=0, data_dir=tmp_path) as server:
        assert server._socket is not None
        assert server._socket.getsockname()[0] == "127.0.0.1"
        assert server.url.startswith("http://127.0.0.1:")


def test_the_key_is_compared_in_constant_time(
    server_factory: Callable[..., LocalServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "k" * 32
    calls: list[tuple[bytes, bytes]] = []
    real = server_middleware.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(server_middleware.hmac, "compare_digest", spy)
    server = server_factory(key=key)
    for sent in ("k" * 31 + "x", "k" * 31, key + "k", "K" * 32):
        answer = httpx.get(server.url + "/_local/stats", headers={"Authorization": f"Key {sent}"})
        assert answer.status_code == 401, sent
        assert key not in answer.text
    good = httpx.get(server.url + "/_local/stats", headers={"Authorization": f"Key {key}"})
    assert good.status_code == 200
    assert len(calls) == 5 and all(b == key.encode() for _, b in calls)
    # A non-ASCII header value is refused, not a server error.
    odd = httpx.get(server.url + "/_local/stats", headers={"Authorization": b"Key \xc3\xa9\xff"})
    assert odd.status_code == 401


# -- files -----------------------------------------------------------------------------------


def test_files_refuse_every_traversal_and_symlink(
    server_factory: Callable[..., LocalServer], tmp_path: Any
) -> None:
    server = server_factory()
    done = finished_request(server)
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    files_root = server.config.data_dir / "files"
    (files_root / "linked").mkdir()
    os.symlink(secret, files_root / "linked" / "secret.txt")
    os.symlink(tmp_path, files_root / "dirlink")
    request_id = done["request_id"]
    for path in (
        "/files/../../secret.txt",
        "/files/%2e%2e/%2e%2e/secret.txt",
        "/files/%252e%252e/secret.txt",
        f"/files/{request_id}/..%2f..%2f..%2fsecret.txt",
        f"/files/{request_id}/%2e%2e%2fvideo.mp4",
        "/files/..%5c..%5csecret.txt",
        "/files/linked/secret.txt",
        "/files/dirlink/secret.txt",
        "/files//etc/passwd",
        "/files/%2fetc%2fpasswd/x",
        f"/files/{request_id}/video.mp4%00.txt",
        f"/files/{request_id}",
        "/files/",
    ):
        status, body = raw_get(server, path)
        assert status == 404, path
        assert b"top secret" not in body and b"root:" not in body
    status, body = raw_get(server, f"/files/{request_id}/video.mp4")
    assert status == 200 and body[4:8] == b"ftyp"
    # Requests' records and uploads' metadata are not files to serve.
    status, _ = raw_get(server, f"/files/../requests/{request_id}.json")
    assert status == 404


def test_an_uploads_name_cannot_leave_its_folder(
    server_factory: Callable[..., LocalServer],
) -> None:
    server = server_factory()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for name in ("../../../evil.sh", "/etc/passwd", "..\\..\\x.bat", "\x00.png", "." * 300):
            urls = client.post(
                "/storage/upload/initiate", json={"file_name": name, "content_type": "image/png"}
            ).json()
            assert ".." not in urls["file_url"].split("/files/", 1)[1]
            assert client.put(urls["upload_url"], content=b"data").status_code == 200
            assert client.get(urls["file_url"]).content == b"data"
    root = server.config.data_dir.resolve()
    for path in root.rglob("*"):
        assert path.resolve().is_relative_to(root), path


# -- body limits -----------------------------------------------------------------------------


def test_submit_bodies_are_bounded(server_factory: Callable[..., LocalServer]) -> None:
    server = server_factory(max_body_bytes=4096)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        big = client.post(f"/{T2V}", json={"prompt": "x" * 5000})
        assert big.status_code == 413
        assert "limit is 4096 bytes" in big.json()["detail"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
            yield b'{"prompt": "'
            for _ in range(10):
                yield b"y" * 1000
            yield b'"}'

        assert client.post(f"/{T2V}", content=chunks()).status_code == 413
        initiate = client.post("/storage/upload/initiate", content=b"{" + b" " * 5000 + b"}")
        assert initiate.status_code == 413
        assert client.post(f"/{T2V}", json={"prompt": "x" * 3000}).status_code == 200
        assert client.get("/_local/stats").json()["by_kind"]["submit"] >= 1
        assert client.get("/health").json()["requests"]["IN_QUEUE"] <= 1


def test_the_default_submit_limit_is_ten_mebibytes(tmp_path: Any) -> None:
    assert ServerConfig(data_dir=tmp_path).max_body_bytes == 10 * 1024 * 1024


# -- cross-origin requests -------------------------------------------------------------------


def test_cross_origin_browser_requests_are_refused(
    server_factory: Callable[..., LocalServer],
) -> None:
    server = server_factory()
    done = finished_request(server)
    foreign = {"Origin": FOREIGN}
    with httpx.Client(base_url=server.url, timeout=10) as client:
        before = sum(client.get("/health").json()["requests"].values())
        attempts = [
            client.post(f"/{T2V}", json={"prompt": "from a web page"}, headers=foreign),
            client.post(
                f"/{T2V}",
                content=b'{"prompt": "form post"}',
                headers={**foreign, "Content-Type": "text/plain"},
            ),
            client.post(f"/{T2V}", json={"prompt": "sandboxed"}, headers={"Origin": "null"}),
            client.get(done["status_url"], headers=foreign),
            client.get(done["status_url"] + "/stream", headers=foreign),
            client.get(done["response_url"], headers=foreign),
            client.put(done["cancel_url"], headers=foreign),
            client.post("/storage/upload/initiate", json={}, headers=foreign),
            client.get("/_local/stats", headers=foreign),
            client.request(
                "OPTIONS",
                f"/{T2V}",
                headers={**foreign, "Access-Control-Request-Method": "POST"},
            ),
        ]
        for answer in attempts:
            assert answer.status_code == 403, answer.request
            assert "--allow-origin" in answer.json()["detail"]
            assert "access-control-allow-origin" not in answer.headers
        assert sum(client.get("/health").json()["requests"].values()) == before, "nothing queued"

        # No Origin (scripts, kernels) and the server's own origin pass.
        assert client.get(done["status_url"]).status_code == 200
        same = client.get(done["status_url"], headers={"Origin": server.url})
        assert same.status_code == 200
        # <video src> in a notebook page: Chromium sends a no-cors GET without Origin;
        # <video crossorigin> sends one. Both play.
        video_path = done["output"]["video"]["url"].removeprefix(server.url)
        assert client.get(video_path).status_code == 200
        media = client.get(video_path, headers={**foreign, "Range": "bytes=0-"})
        assert media.status_code == 206 and media.content[4:8] == b"ftyp"


def test_configured_origins_are_served_with_cors_headers(
    server_factory: Callable[..., LocalServer],
) -> None:
    lab = "http://localhost:8888"
    server = server_factory(allowed_origins=(lab,))
    with httpx.Client(base_url=server.url, timeout=10) as client:
        preflight = client.request(
            "OPTIONS",
            f"/{T2V}",
            headers={
                "Origin": lab,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == lab
        assert "authorization" in preflight.headers["access-control-allow-headers"]
        sub = client.post(f"/{T2V}", json={"prompt": "from lab"}, headers={"Origin": lab})
        assert sub.status_code == 200
        assert sub.headers["access-control-allow-origin"] == lab
        assert "x-fal-request-id" in sub.headers["access-control-expose-headers"]
        other = client.post(f"/{T2V}", json={"prompt": "x"}, headers={"Origin": FOREIGN})
        assert other.status_code == 403


def test_cli_allow_origin_reaches_the_server(tmp_path: Any) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ltx_jupyter.server",
            "serve",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path),
            "--allow-origin",
            "http://localhost:8888",
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip().split("=", 1)[1]
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(url + "/health", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        allowed = httpx.get(url + "/health", headers={"Origin": "http://localhost:8888"})
        refused = httpx.get(url + "/health", headers={"Origin": FOREIGN})
        assert allowed.status_code == 200 and refused.status_code == 403
    finally:
        process.terminate()
        process.wait(15)


# -- unknown routes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/admin"),
        ("GET", "/fal-ai"),
        ("PUT", "/fal-ai/ltx-video"),
        ("PATCH", "/fal-ai/ltx-video"),
        ("POST", "/health"),
        ("GET", "/_local"),
        ("GET", "/_local/requests"),
        ("GET", "/storage/upload"),
        ("POST", "/files/x/y"),
        ("GET", "/fal-ai/ltx-video/requests/not-a-request/status"),
        ("GET", "/fal-ai/ltx-video/requests/not-a-request"),
    ],
)
def test_unknown_routes_answer_404(local_server: LocalServer, method: str, path: str) -> None:
    answer = httpx.request(method, local_server.url + path, timeout=10)
    assert answer.status_code == 404, (method, path)
    assert isinstance(json.loads(answer.text)["detail"], str)
