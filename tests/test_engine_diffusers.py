"""The ``diffusers`` engine on a tiny, randomly initialised LTX pipeline, through the server.

The pipeline is built here (small transformer, VAE and T5 encoder, a tokenizer made in code),
saved with ``save_pretrained`` and loaded by the engine's real loading code, so nothing is
downloaded and no GPU is needed. Jobs go through the real server and our ``QueueClient``.
Skipped only when the ``diffusers`` extra (torch, diffusers, transformers) is not installed.
"""

from __future__ import annotations

import asyncio
import base64
import http.server
import io
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest

from ltx_jupyter._errors import HTTPError
from ltx_jupyter._models import Completed, InProgress
from ltx_jupyter.server import LocalServer, ServerConfig

T2V = "fal-ai/ltx-video"
I2V = "fal-ai/ltx-video/image-to-video"
SIZE = {"width": 32, "height": 32, "num_frames": 9}


def test_registry_and_synthetic_server_never_import_torch() -> None:
    code = (
        "import sys\n"
        "from ltx_jupyter.server import ServerConfig, create_app\n"
        "from ltx_jupyter.server.cli import build_parser\n"
        "from ltx_jupyter.server.engines import available_engines\n"
        "assert 'diffusers' in available_engines()\n"
        "build_parser()\n"
        "create_app(ServerConfig(port=0))\n"
        "heavy = sorted({'torch', 'diffusers', 'transformers'} & set(sys.modules))\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- the tiny model ----------------------------------------------------------------------------

NOT_INSTALLED = "the diffusers extra is not installed: pip install -e '.[test,diffusers]'"


def _torch() -> Any:
    """torch, or a skip when the ``diffusers`` extra is not installed."""
    for name in ("diffusers", "transformers"):
        pytest.importorskip(name, reason=f"{NOT_INSTALLED} ({name} missing)")
    return pytest.importorskip("torch", reason=f"{NOT_INSTALLED} (torch missing)")


WORDS = ("a", "red", "fox", "runs", "through", "snow", "lighthouse", "at", "dusk", "low", "quality")


def _tokenizer() -> Any:
    """A T5 tokenizer over a few words, made in code (a Unigram vocabulary, no download)."""
    import transformers

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    pieces += [("\u2581" + word, -3.0) for word in WORDS]
    if int(transformers.__version__.split(".")[0]) >= 5:
        return transformers.T5Tokenizer(vocab=pieces, extra_ids=0)
    from tokenizers import Tokenizer, models  # transformers 4: wrap a tokenizers model

    return transformers.T5TokenizerFast(
        tokenizer_object=Tokenizer(models.Unigram(pieces, unk_id=2)), extra_ids=0
    )


def build_tiny_ltx(directory: Path) -> Path:
    """Save a tiny random LTX-Video pipeline (diffusers format) to ``directory``."""
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXPipeline,
        LTXVideoTransformer3DModel,
    )
    from transformers import T5Config, T5EncoderModel

    _torch().manual_seed(0)
    text_encoder = T5EncoderModel(
        T5Config(
            vocab_size=len(WORDS) + 8,
            d_model=32,
            d_kv=8,
            d_ff=37,
            num_layers=1,
            num_heads=4,
            relative_attention_num_buckets=8,
        )
    )
    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=1,
        caption_channels=32,
    )
    vae = AutoencoderKLLTXVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=False,
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    pipe = LTXPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=_tokenizer(),
        transformer=transformer,
    )
    pipe.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _torch()
    return build_tiny_ltx(tmp_path_factory.mktemp("tiny-ltx") / "model")


@pytest.fixture(scope="module")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    # One thread: on a busy 2-core machine, torch's thread pool thrashes.
    torch = _torch()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    config = ServerConfig(
        port=0,
        engine="diffusers",
        concurrency=1,
        data_dir=tmp_path_factory.mktemp("diffusers-server"),
        engine_settings={"model": str(tiny_model), "device": "cpu"},
        **SIZE,
    )
    with LocalServer(config) as started:
        yield started
    torch.set_num_threads(threads)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _collect(server: LocalServer, endpoint: str, arguments: dict[str, Any]) -> list[Any]:
    from ltx_jupyter._client import QueueClient

    async with QueueClient(queue_url=server.url, strict_fields=False) as client:
        return [u async for u in client.subscribe(endpoint, arguments)]


def collect(server: LocalServer, arguments: dict[str, Any], endpoint: str = T2V) -> list[Any]:
    arguments = {"prompt": "a red fox runs through snow", **arguments}
    return run(_collect(server, endpoint, arguments))  # type: ignore[no-any-return]


def log_lines(updates: list[Any]) -> list[str]:
    return [
        entry.message for u in updates if isinstance(u, (InProgress, Completed)) for entry in u.logs
    ]


def video_of(updates: list[Any]) -> tuple[dict[str, Any], bytes]:
    output = updates[-1].output
    response = httpx.get(output["video"]["url"], timeout=10)
    assert response.status_code == 200
    return output, response.content


def decode(data: bytes) -> np.ndarray:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])


def png(rgb: tuple[int, int, int], size: tuple[int, int] = (48, 40)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, rgb).save(buffer, format="PNG")
    return buffer.getvalue()


# -- jobs --------------------------------------------------------------------------------------


def test_job_logs_each_step_and_returns_an_h264_mp4(server: LocalServer) -> None:
    updates = collect(server, {"seed": 3, "num_inference_steps": 4})
    assert isinstance(updates[-1], Completed)
    lines = log_lines(updates)
    model = server.config.engine_settings["model"]
    assert lines[0] == f"diffusers engine: LTX-Video from {model} on cpu (float32)"
    assert lines[1] == "seed 3, 4 steps, guidance 3, 32x32, 9 frames at 24 fps"
    assert [line for line in lines if line.startswith("step ")] == [
        f"step {i}/4" for i in range(1, 5)
    ]
    assert lines[-3:-1] == ["decoding 9 frames", "encoding 9 frames"]
    assert lines[-1].startswith("done in ")
    output, data = video_of(updates)
    assert output["seed"] == 3
    video = output["video"]
    assert video["content_type"] == "video/mp4" and video["file_size"] == len(data)
    assert (video["width"], video["height"], video["num_frames"], video["fps"]) == (32, 32, 9, 24)
    assert decode(data).shape == (9, 32, 32, 3)


def test_size_frames_and_fps_come_from_param_fields(server: LocalServer) -> None:
    updates = collect(
        server,
        {
            "seed": 1,
            "num_inference_steps": 2,
            "width": 64,
            "height": 32,
            "num_frames": 17,
            "fps": 12,
        },
    )
    output, data = video_of(updates)
    assert "seed 1, 2 steps, guidance 3, 64x32, 17 frames at 12 fps" in log_lines(updates)
    assert (output["video"]["width"], output["video"]["height"]) == (64, 32)
    assert output["video"]["duration"] == pytest.approx(17 / 12)
    assert decode(data).shape == (17, 32, 64, 3)


def test_same_seed_gives_the_same_video(server: LocalServer) -> None:
    arguments = {"num_inference_steps": 3, "guidance_scale": 4.0}
    _, first = video_of(collect(server, {**arguments, "seed": 11}))
    _, again = video_of(collect(server, {**arguments, "seed": 11}))
    _, other = video_of(collect(server, {**arguments, "seed": 12}))
    assert first == again
    assert first != other


def test_invalid_sizes_are_rejected_with_422(server: LocalServer) -> None:
    from ltx_jupyter._client import QueueClient

    async def main() -> HTTPError:
        async with QueueClient(queue_url=server.url, strict_fields=False) as client:
            with pytest.raises(HTTPError) as caught:
                await client.submit(
                    T2V, {"prompt": "a fox", "width": 100, "height": 48, "num_frames": 10}
                )
            return caught.value

    error = run(main())
    assert error.status_code == 422
    by_field = {tuple(d["loc"]): d["msg"] for d in error.detail}
    assert set(by_field) == {("body", "width"), ("body", "height"), ("body", "num_frames")}
    assert "multiple of 32" in by_field[("body", "width")]
    assert "8k+1" in by_field[("body", "num_frames")]


def test_cancel_mid_run_stops_at_the_next_step_and_the_next_job_runs(server: LocalServer) -> None:
    from ltx_jupyter._client import QueueClient

    assert server.app is not None
    engine = server.app.state.server.engine
    # Slow the real transformer down so the cancel surely lands mid-run.
    hook = engine._t2v.transformer.register_forward_pre_hook(lambda *_: time.sleep(0.05))

    async def main() -> tuple[list[str], str]:
        async with QueueClient(queue_url=server.url) as client:
            handle = await client.submit(
                T2V, {"prompt": "a lighthouse at dusk", "seed": 5, "num_inference_steps": 50}
            )
            async for status in client.watch(T2V, handle.request_id):
                if any(e.message == "step 2/50" for e in status.logs or ()):
                    await client.cancel(T2V, handle.request_id)
                if status.done:
                    break
            with pytest.raises(HTTPError) as caught:
                await client.result(T2V, handle.request_id)
            assert caught.value.error_type == "request_cancelled"
            final = await client.status(T2V, handle.request_id, logs=True)
            assert final.error_type == "request_cancelled"
            return [e.message for e in final.logs or ()], handle.request_id

    try:
        lines, _ = run(main())
    finally:
        hook.remove()
    steps = [line for line in lines if line.startswith("step ")]
    assert 2 <= len(steps) < 50
    assert lines[-1] == f"cancelled after {len(steps)} of 50 steps"
    assert not any(line.startswith(("decoding", "encoding")) for line in lines)
    # The pipeline is free again: the next job runs to the end.
    assert isinstance(collect(server, {"seed": 1, "num_inference_steps": 2})[-1], Completed)


class _ImageHandler(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


def test_image_to_video_from_upload_data_uri_and_url(server: LocalServer) -> None:
    from ltx_jupyter._client import QueueClient

    red, blue = png((220, 30, 30)), png((30, 40, 220))

    async def upload() -> str:
        async with QueueClient(queue_url=server.url) as client:
            return await client.upload(red, "image/png", "red.png")

    uploaded = run(upload())
    data_uri = "data:image/png;base64," + base64.b64encode(red).decode()
    _ImageHandler.body = red
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ImageHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/red.png"
        videos = []
        for image_url in (uploaded, data_uri, url):
            updates = collect(
                server, {"seed": 2, "num_inference_steps": 2, "image_url": image_url}, I2V
            )
            assert isinstance(updates[-1], Completed), updates[-1]
            assert "seed 2, 2 steps, guidance 3, 32x32, 9 frames at 24 fps, from an image" in (
                log_lines(updates)
            )
            videos.append(video_of(updates)[1])
    finally:
        httpd.shutdown()
        httpd.server_close()
    # The same image by three routes gives the same clip; another image another clip.
    assert videos[0] == videos[1] == videos[2]
    blue_uri = "data:image/png;base64," + base64.b64encode(blue).decode()
    other = collect(server, {"seed": 2, "num_inference_steps": 2, "image_url": blue_uri}, I2V)
    assert video_of(other)[1] != videos[0]
    # Text-to-video with the same seed differs too: the image conditions the clip.
    assert video_of(collect(server, {"seed": 2, "num_inference_steps": 2}))[1] != videos[0]


def test_unreadable_image_fails_the_job_with_a_clear_error(server: LocalServer) -> None:
    from ltx_jupyter._errors import RunFailedError

    not_png = "data:image/png;base64," + base64.b64encode(b"not an image").decode()
    with pytest.raises(RunFailedError) as caught:
        collect(server, {"num_inference_steps": 2, "image_url": not_png}, I2V)
    assert "image_url is not an image" in str(caught.value)
    assert caught.value.error_type == "bad_request"


# -- start-up ----------------------------------------------------------------------------------


def _startup_error(tmp_path: Path, **settings: Any) -> str:
    from ltx_jupyter.server import create_app

    config = ServerConfig(port=0, engine="diffusers", data_dir=tmp_path, engine_settings=settings)
    with pytest.raises(ValueError) as caught:
        create_app(config)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_startup_errors_are_one_clear_line(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "needs --model" in _startup_error(tmp_path)
    missing = _startup_error(tmp_path, model=str(tmp_path / "nope"), device="cpu")
    assert "does not exist" in missing
    assert "no model_index.json" in _startup_error(tmp_path, model=str(tmp_path), device="cpu")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    uncached = _startup_error(tmp_path, model="Lightricks/LTX-Video", device="cpu")
    assert "not in the local Hugging Face cache" in uncached and "--allow-download" in uncached
    if not _torch().cuda.is_available():
        for device in ("auto", "cuda"):
            no_gpu = _startup_error(tmp_path, model=str(tiny_model), device=device)
            assert no_gpu.startswith("no CUDA GPU found") and "--device cpu" in no_gpu
    assert "--cpu-offload needs a CUDA device" in _startup_error(
        tmp_path, model=str(tiny_model), device="cpu", cpu_offload=True
    )


def test_serve_prints_one_line_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ltx_jupyter.server.cli import main

    _torch()
    code = main(
        ["serve", "--port", "0", "--engine", "diffusers", "--model", str(tmp_path / "nope")]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("ltx-jupyter serve: model directory") and "does not exist" in err


def test_engine_options_reach_the_engine(tiny_model: Path, tmp_path: Path) -> None:
    from ltx_jupyter.server.cli import build_parser

    args = build_parser().parse_args(
        [
            *("serve", "--engine", "diffusers", "--model", str(tiny_model), "--device", "cpu"),
            *("--dtype", "float32", "--vae-tiling", "--frames", "17"),
        ]
    )
    assert (args.model, args.device, args.dtype, args.vae_tiling) == (
        str(tiny_model),
        "cpu",
        "float32",
        True,
    )
    from ltx_jupyter.server.engines import get_engine

    config = ServerConfig(
        port=0,
        engine="diffusers",
        data_dir=tmp_path,
        num_frames=17,
        engine_settings={"model": str(tiny_model), "device": "cpu", "vae_tiling": True},
    )
    engine = get_engine(config.engine, **config.engine_options())
    assert engine.num_frames == 17  # type: ignore[attr-defined]
    assert engine.describe() == (  # type: ignore[attr-defined]
        f"LTX-Video from {tiny_model} on cpu (float32, VAE tiling)"
    )
    assert json.loads((tiny_model / "model_index.json").read_text())["_class_name"] == (
        "LTXPipeline"
    )


def test_too_little_gpu_memory_is_one_line_before_loading_onto_the_gpu(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch = _torch()
    gib = 1024**3
    # A pretend GPU with 1 GiB free: the check runs before anything is moved to it.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Pretend GPU")
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (1 * gib, 8 * gib))
    message = _startup_error(tmp_path, model=str(tiny_model), device="cuda")
    assert message.startswith("not enough GPU memory: the model needs about 2.0 GiB")
    assert "Pretend GPU has 1.0 GiB free of 8.0 GiB" in message and "--cpu-offload" in message
