"""The synthetic engine and the MP4 writer, without HTTP."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from ltx_jupyter.server.engines import EngineCancelled, get_engine
from ltx_jupyter.server.engines.base import shared_field_errors
from ltx_jupyter.server.engines.synthetic import SyntheticEngine
from ltx_jupyter.server.video import write_mp4

from .media import png

T2V = "fal-ai/ltx-video"
SIZE = {"width": 96, "height": 64, "num_frames": 8}


class FakeTask:
    """An EngineTask that records logs and can cancel after a number of step lines."""

    def __init__(
        self,
        data: dict[str, Any],
        output_dir: Path,
        cancel_after_steps: int | None = None,
        endpoint_id: str = T2V,
    ) -> None:
        self.request_id = "req"
        self.endpoint_id = endpoint_id
        self.input = data
        self.output_dir = output_dir
        self.lines: list[tuple[str, str]] = []
        self.cancel_after_steps = cancel_after_steps
        self.local_files: dict[str, bytes] = {}

    def log(self, message: str, level: str = "INFO") -> None:
        self.lines.append((level, message))

    def cancelled(self) -> bool:
        steps = sum(1 for _, m in self.lines if m.startswith("step "))
        return self.cancel_after_steps is not None and steps >= self.cancel_after_steps

    def file_url(self, name: str) -> str:
        return f"http://server/files/{self.request_id}/{name}"

    def read_local_file(self, url: str) -> bytes | None:
        return self.local_files.get(url)


@pytest.fixture
def engine() -> SyntheticEngine:
    return SyntheticEngine(step_seconds=0, **SIZE)


def run(
    engine: SyntheticEngine, tmp_path: Path, endpoint_id: str = T2V, **data: Any
) -> tuple[dict[str, Any], bytes]:
    data.setdefault("prompt", "a lighthouse at dusk")
    out = tmp_path / f"run-{len(list(tmp_path.iterdir()))}"
    out.mkdir()
    result = engine.run(FakeTask(data, out, endpoint_id=endpoint_id))
    return result.output, (out / "video.mp4").read_bytes()


def decode(data: bytes, tmp_path: Path) -> np.ndarray:
    path = tmp_path / "decode.mp4"
    path.write_bytes(data)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])


def test_output_is_a_real_h264_mp4(engine: SyntheticEngine, tmp_path: Path) -> None:
    output, data = run(engine, tmp_path, seed=7)
    frames = decode(data, tmp_path)
    assert frames.shape == (8, 64, 96, 3)
    # The seed endpoint's output is {video: File, seed}, as its document says.
    assert output == {
        "video": {
            "url": "http://server/files/req/video.mp4",
            "content_type": "video/mp4",
            "file_name": "video.mp4",
            "file_size": len(data),
        },
        "seed": 7,
    }
    # +faststart: the index comes before the media data, so browsers play while loading.
    assert data.index(b"moov") < data.index(b"mdat")
    with av.open(io.BytesIO(data)) as container:
        assert not container.streams.audio


def test_an_endpoint_without_a_document_gets_a_video_file(
    engine: SyntheticEngine, tmp_path: Path
) -> None:
    output, data = run(engine, tmp_path, "someone/new-model", seed=7)
    assert output == {
        "video": {
            "url": "http://server/files/req/video.mp4",
            "content_type": "video/mp4",
            "file_name": "video.mp4",
            "file_size": len(data),
            "width": 96,
            "height": 64,
            "fps": 24.0,
            "duration": pytest.approx(8 / 24),
            "num_frames": 8,
        },
        "seed": 7,
    }


def test_same_input_gives_the_same_bytes(engine: SyntheticEngine, tmp_path: Path) -> None:
    _, first = run(engine, tmp_path, seed=11, num_inference_steps=12, guidance_scale=4.5)
    _, second = run(engine, tmp_path, seed=11, num_inference_steps=12, guidance_scale=4.5)
    assert first == second


def _difference(a: bytes, b: bytes, tmp_path: Path) -> float:
    return float(np.abs(decode(a, tmp_path).astype(float) - decode(b, tmp_path)).mean())


@pytest.mark.parametrize(
    "change",
    [
        {"seed": 2},
        {"num_inference_steps": 2},
        {"guidance_scale": 9},
        {"prompt": "a completely different prompt"},
    ],
)
def test_each_parameter_changes_the_frames(
    engine: SyntheticEngine, tmp_path: Path, change: dict[str, Any]
) -> None:
    base = {"seed": 1, "num_inference_steps": 30, "guidance_scale": 3}
    _, reference = run(engine, tmp_path, **base)
    _, changed = run(engine, tmp_path, **{**base, **change})
    assert _difference(reference, changed, tmp_path) > 3


def _grain(frames: np.ndarray) -> float:
    return float(np.abs(np.diff(frames.astype(float), axis=2)).mean())


def _saturation(frames: np.ndarray) -> float:
    as_float = frames.astype(float)
    return float((as_float.max(axis=3) - as_float.min(axis=3)).mean())


def test_few_steps_are_grainy_and_guidance_saturates(
    engine: SyntheticEngine, tmp_path: Path
) -> None:
    _, few = run(engine, tmp_path, seed=1, num_inference_steps=2)
    _, many = run(engine, tmp_path, seed=1, num_inference_steps=50)
    assert _grain(decode(few, tmp_path)) > 2 * _grain(decode(many, tmp_path))
    _, low = run(engine, tmp_path, seed=1, guidance_scale=1, num_inference_steps=50)
    _, high = run(engine, tmp_path, seed=1, guidance_scale=9, num_inference_steps=50)
    assert _saturation(decode(high, tmp_path)) > 1.3 * _saturation(decode(low, tmp_path))


def test_missing_seed_is_drawn_and_reported(engine: SyntheticEngine, tmp_path: Path) -> None:
    first, _ = run(engine, tmp_path)
    second, _ = run(engine, tmp_path)
    assert isinstance(first["seed"], int) and isinstance(second["seed"], int)
    assert first["seed"] != second["seed"]


def test_log_lines(engine: SyntheticEngine, tmp_path: Path) -> None:
    task = FakeTask({"prompt": "x", "num_inference_steps": 4, "seed": 3}, tmp_path)
    engine.run(task)
    messages = [m for _, m in task.lines]
    assert messages[0] == "synthetic engine: drawing a preview animation, not LTX Video output"
    assert messages[2:6] == ["step 1/4", "step 2/4", "step 3/4", "step 4/4"]
    assert messages[6] == "encoding 8 frames"
    assert messages[7].startswith("done in ")
    assert {level for level, _ in task.lines} == {"INFO"}


def test_cancel_stops_at_the_next_step(engine: SyntheticEngine, tmp_path: Path) -> None:
    task = FakeTask({"prompt": "x", "num_inference_steps": 20}, tmp_path, cancel_after_steps=5)
    with pytest.raises(EngineCancelled):
        engine.run(task)
    steps = [m for _, m in task.lines if m.startswith("step ")]
    assert steps == [f"step {i}/20" for i in range(1, 6)]
    assert task.lines[-1] == ("WARN", "cancelled after 5 of 20 steps")
    assert not (tmp_path / "video.mp4").exists()


def test_image_colour_tints_the_clip(engine: SyntheticEngine, tmp_path: Path) -> None:
    def mean_rgb(colour: tuple[int, int, int]) -> np.ndarray:
        uri = "data:image/png;base64," + base64.b64encode(png(colour)).decode()
        _, data = run(engine, tmp_path, seed=4, image_url=uri, num_inference_steps=50)
        return decode(data, tmp_path).reshape(-1, 3).mean(axis=0)

    red, blue = mean_rgb((230, 20, 20)), mean_rgb((20, 20, 230))
    assert red[0] > blue[0] + 10
    assert blue[2] > red[2] + 10

    task = FakeTask({"prompt": "x", "image_url": "http://server/files/up/a.png"}, tmp_path)
    task.local_files["http://server/files/up/a.png"] = png((230, 20, 20))
    engine.run(task)
    local = decode((tmp_path / "video.mp4").read_bytes(), tmp_path).reshape(-1, 3).mean(axis=0)
    assert local[0] > local[2]


def test_validate_extra_fields(engine: SyntheticEngine) -> None:
    assert engine.validate(T2V, {"prompt": "x", "width": 128, "num_frames": 9}) == []
    errors = engine.validate(
        "someone/new", {"width": 65, "height": 4000, "num_frames": 0, "fps": "fast"}
    )
    assert [e.field for e in errors] == ["width", "height", "num_frames", "fps"]
    assert all(e.to_detail()["loc"][0] == "body" for e in errors)
    # What every LTX endpoint shares is checked by the server for endpoints without a document.
    assert sorted(e.field for e in shared_field_errors({"seed": "x"})) == ["prompt", "seed"]


def test_registry() -> None:
    engine = get_engine("synthetic", width=128, height=None)
    assert engine.name == "synthetic"
    assert isinstance(engine, SyntheticEngine) and engine.width == 128
    with pytest.raises(ValueError, match=r"available engines: .*synthetic"):
        get_engine("nope")
    with pytest.raises(ValueError, match="even"):
        get_engine("synthetic", width=101)


def test_write_mp4_adds_a_sound_track(tmp_path: Path) -> None:
    frames = np.zeros((12, 16, 16, 3), dtype=np.uint8)
    tone = 0.5 * np.sin(np.arange(24_000) / 48_000 * 2 * np.pi * 440).astype(np.float32)
    write_mp4(frames, tmp_path / "a.mp4", 24, audio=tone)
    write_mp4(frames, tmp_path / "b.mp4", 24, audio=tone)
    data = (tmp_path / "a.mp4").read_bytes()
    assert data == (tmp_path / "b.mp4").read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")
    with av.open(io.BytesIO(data)) as container:
        sound = container.streams.audio[0]
        assert (sound.codec_context.name, sound.sample_rate) == ("aac", 48_000)
        samples = np.concatenate([f.to_ndarray() for f in container.decode(sound)], axis=1)
    # AAC adds a little priming and padding; the tone itself is there, at its level.
    assert 24_000 <= samples.shape[1] < 24_000 + 3 * 1024
    assert 0.3 < float(np.sqrt((samples**2).mean())) < 0.4
    with pytest.raises(ValueError, match="1-D array"):
        write_mp4(frames, tmp_path / "c.mp4", 24, audio=np.zeros((2, 10), dtype=np.float32))
    assert not (tmp_path / "c.mp4").exists()


def test_write_mp4_checks_frames(tmp_path: Path) -> None:
    frames = np.zeros((3, 10, 16, 3), dtype=np.uint8)
    assert write_mp4(frames, tmp_path / "a.mp4", 12) == (tmp_path / "a.mp4").stat().st_size
    with pytest.raises(ValueError, match="even"):
        write_mp4(np.zeros((2, 9, 16, 3), dtype=np.uint8), tmp_path / "odd.mp4", 12)
    with pytest.raises(ValueError, match="no frames"):
        write_mp4([], tmp_path / "empty.mp4", 12)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4"]
