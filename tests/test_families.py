"""Every shipped LTX endpoint through the local server and the client, and the clip's shape
following each one's fields: size, frames, sound, first and last images, video frames, the
expanded prompt, the logs of each pass, and the output's own shape."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from ltx_jupyter import Completed, InProgress, QueueClient
from ltx_jupyter._endpoints import known_endpoints, local_schema
from ltx_jupyter._openapi import EndpointSchema
from ltx_jupyter._progress import parse_progress
from ltx_jupyter._schema import VideoResult, parse_output
from ltx_jupyter.server import LocalServer, ServerConfig

from .media import Decoded, clip_uri, decode, png_uri

SHIPPED = sorted(info.endpoint_id for info in known_endpoints())
#: Drawn at 1/24 of the size asked (1080p 16:9 is 80 pixels wide), 300 frames at most.
SCALE = 1 / 24
MAX_FRAMES = 300

RED, GREEN, BLUE, YELLOW = (230, 20, 20), (20, 200, 40), (20, 20, 230), (230, 220, 30)
LTX2 = "fal-ai/ltx-2/text-to-video"
LTX23_I2V = "fal-ai/ltx-2.3/image-to-video"
B19_T2V = "fal-ai/ltx-2-19b/text-to-video"
B19_I2V = "fal-ai/ltx-2-19b/image-to-video"
D13 = "fal-ai/ltx-video-13b-distilled"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    config = ServerConfig(
        port=0,
        data_dir=tmp_path_factory.mktemp("families"),
        step_seconds=0,
        width=64,
        height=64,
        num_frames=9,
        scale=SCALE,
        max_frames=MAX_FRAMES,
    )
    with LocalServer(config) as local:
        yield local


@dataclass(frozen=True)
class Run:
    """One finished job: its output, parsed, its log lines and the decoded file."""

    output: dict[str, Any]
    result: VideoResult
    logs: list[str] = field(repr=False)
    clip: Decoded = field(repr=False)
    data: bytes = field(repr=False)


def run(url: str, endpoint_id: str, arguments: dict[str, Any]) -> Run:
    """Submit to the server at ``url`` through QueueClient.subscribe, follow to the end,
    download and decode."""

    async def main() -> list[Any]:
        async with QueueClient(queue_url=url) as client:
            return [u async for u in client.subscribe(endpoint_id, arguments, timeout=120)]

    updates = asyncio.run(main())
    final = updates[-1]
    assert isinstance(final, Completed), updates
    logs = [e.message for u in updates if isinstance(u, (InProgress, Completed)) for e in u.logs]
    output = final.output
    result = parse_output(output)
    response = httpx.get(result.url, timeout=30)
    assert response.status_code == 200
    return Run(output, result, logs, decode(response.content), response.content)


def schema_of(endpoint_id: str) -> EndpointSchema:
    lookup = local_schema(endpoint_id)
    assert lookup is not None and lookup.schema is not None
    return lookup.schema


def minimal_input(schema: EndpointSchema) -> dict[str, Any]:
    """The required fields only: a prompt, a red image, a clip of three colours."""
    values: dict[str, Any] = {}
    for name in schema.required:
        spec = schema.field(name)
        assert spec is not None
        if name == "prompt":
            values[name] = "a lighthouse at dusk, waves breaking on the rocks"
        elif spec.file_kind == "image":
            values[name] = png_uri(RED)
        elif spec.file_kind == "video":
            values[name] = clip_uri([RED, GREEN, BLUE])
        elif spec.type == "object" and spec.field("video_url") is not None:
            values[name] = {"video_url": clip_uri([RED, GREEN, BLUE])}
        else:
            raise AssertionError(f"{schema.endpoint_id}: no test value for required {name!r}")
    return values


def near(colour: np.ndarray, expected: tuple[int, int, int], tolerance: float = 16) -> bool:
    return bool(np.abs(colour - np.array(expected)).max() <= tolerance)


# -- every endpoint, round-tripped -------------------------------------------------------------


@pytest.mark.parametrize("endpoint_id", SHIPPED)
def test_every_shipped_endpoint_runs_and_reports_its_clip(
    server: LocalServer, endpoint_id: str
) -> None:
    schema = schema_of(endpoint_id)
    arguments = minimal_input(schema)
    job = run(server.url, endpoint_id, arguments)

    # Exactly the fields the endpoint's output has, the video as its document types it.
    assert set(job.output) == {f.name for f in schema.output_fields}
    video_field = schema.output_field("video")
    assert video_field is not None
    allowed = {f.name for f in video_field.fields}
    assert set(job.output["video"]) <= allowed
    assert job.result.video.content_type == "video/mp4"
    assert job.result.video.file_size == len(job.data)
    assert job.clip.codec == "h264"
    if "width" in allowed:  # a VideoFile: what it reports is what the file holds
        video = job.result.video
        assert (video.width, video.height) == (job.clip.width, job.clip.height)
        assert video.num_frames == len(job.clip.frames)
        assert video.fps == pytest.approx(job.clip.fps, rel=1e-3)
        assert video.duration == pytest.approx(job.clip.duration, abs=0.05)
        assert video.duration == pytest.approx(video.num_frames / video.fps, rel=1e-3)
    else:  # a File: nothing beyond the file itself
        assert allowed >= {"url"} and "width" not in job.output["video"]
    # A sound track exactly when the endpoint generates one (LTX-2's default: it does).
    sound = {**schema.defaults(), **arguments}.get("generate_audio") is True
    assert (job.clip.audio_codec == "aac") is sound
    if sound:
        assert job.clip.audio is not None and np.abs(job.clip.audio).max() > 0.05
    if schema.output_field("prompt") is not None:
        assert job.result.prompt is not None
        assert job.result.prompt.startswith(arguments["prompt"])
    if schema.output_field("seed") is not None:
        assert job.result.seed is not None


# -- size ----------------------------------------------------------------------------------------


def test_aspect_ratio_and_resolution_set_the_size(server: LocalServer) -> None:
    prompt = {"prompt": "a tall lighthouse", "generate_audio": False}
    wide = run(server.url, "fal-ai/ltx-2.3/text-to-video", {**prompt, "aspect_ratio": "16:9"})
    tall = run(server.url, "fal-ai/ltx-2.3/text-to-video", {**prompt, "aspect_ratio": "9:16"})
    assert (wide.clip.width, wide.clip.height) == (tall.clip.height, tall.clip.width)
    assert wide.clip.width > 1.7 * wide.clip.height
    sharp = run(server.url, LTX2, {**prompt, "resolution": "2160p"})
    # Twice the size, to the even pixel H.264 needs.
    assert sharp.clip.width == 2 * wide.clip.width
    assert abs(sharp.clip.height - 2 * wide.clip.height) <= 2
    # The 13B model: 480p vs 720p, and a square.
    base = {"prompt": "a tall lighthouse", "num_frames": 9}
    small = run(server.url, D13, {**base, "resolution": "480p"})
    large = run(server.url, D13, {**base, "resolution": "720p"})
    square = run(server.url, D13, {**base, "resolution": "720p", "aspect_ratio": "1:1"})
    assert large.clip.width > small.clip.width and large.clip.height > small.clip.height
    assert square.clip.width == square.clip.height == large.clip.height


def test_video_size_presets_and_sizes(server: LocalServer) -> None:
    base = {"prompt": "a fox", "num_frames": 9, "generate_audio": False}
    portrait = run(server.url, B19_T2V, {**base, "video_size": "portrait_16_9"})
    landscape = run(server.url, B19_T2V, {**base, "video_size": "landscape_16_9"})
    assert portrait.clip.height > portrait.clip.width
    assert (portrait.clip.width, portrait.clip.height) == (
        landscape.clip.height,
        landscape.clip.width,
    )
    custom = run(server.url, B19_T2V, {**base, "video_size": {"width": 1920, "height": 480}})
    assert (custom.clip.width, custom.clip.height) == (80, 20)
    assert (custom.result.video.width, custom.result.video.height) == (80, 20)


def test_auto_takes_the_shape_of_the_image(server: LocalServer) -> None:
    base = {"prompt": "a fox", "num_frames": 9}
    tall = run(
        server.url,
        "fal-ai/ltx-video-13b-distilled/image-to-video",
        {**base, "image_url": png_uri(RED, 8, 16), "aspect_ratio": "auto"},
    )
    assert tall.clip.height == 2 * tall.clip.width
    sized = run(
        server.url, B19_I2V, {**base, "image_url": png_uri(RED, 16, 8), "generate_audio": False}
    )
    assert abs(sized.clip.width - 2 * sized.clip.height) <= 2


# -- frames and sound ----------------------------------------------------------------------------


def test_duration_and_fps_set_the_frames(server: LocalServer) -> None:
    base = {"prompt": "waves", "generate_audio": False}
    six = run(server.url, LTX2, {**base, "duration": 6, "fps": 25})
    ten = run(server.url, LTX2, {**base, "duration": 10, "fps": 25})
    fifty = run(server.url, LTX2, {**base, "duration": 6, "fps": 50})
    assert [len(r.clip.frames) for r in (six, ten, fifty)] == [150, 250, 300]
    assert [r.clip.duration for r in (six, ten, fifty)] == pytest.approx([6, 10, 6], abs=0.05)
    assert (six.result.video.fps, fifty.result.video.fps) == (25, 50)
    counted = run(server.url, B19_T2V, {**base, "num_frames": 33, "fps": 11})
    assert len(counted.clip.frames) == 33 == counted.result.video.num_frames
    assert counted.clip.duration == pytest.approx(3, abs=0.05)


def test_the_frame_cap_keeps_the_duration(tmp_path: Path) -> None:
    config = ServerConfig(port=0, data_dir=tmp_path, step_seconds=0, max_frames=24, max_side=64)
    with LocalServer(config) as capped:
        job = run(capped.url, LTX2, {"prompt": "waves", "duration": 8, "resolution": "2160p"})
    video = job.result.video
    assert (video.num_frames, video.fps, video.duration) == (24, 3, 8)
    assert len(job.clip.frames) == 24 and job.clip.duration == pytest.approx(8, abs=0.05)
    # 2160p 16:9 is drawn with its long side at max_side, and says so.
    assert (video.width, video.height) == (job.clip.width, job.clip.height) == (64, 36)
    # The sound lasts as long as the clip.
    assert job.clip.audio is not None and job.clip.sample_rate is not None
    assert len(job.clip.audio) / job.clip.sample_rate == pytest.approx(8, abs=0.1)
    assert any("(200 asked)" in line and "(3840x2160 asked)" in line for line in job.logs)


def test_the_serve_command_takes_the_size_and_frame_limits(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "ltx_jupyter.server", "serve", "--port", "0"]
    command += ["--data-dir", str(tmp_path), "--step-seconds", "0", "--log-level", "warning"]
    command += ["--scale", "0.025", "--max-side", "64", "--max-frames", "12"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip().removeprefix("LTX_QUEUE_URL=")
        with httpx.Client(base_url=url, timeout=30) as client:
            for _ in range(300):
                try:
                    client.get("/health")
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            small = run(url, LTX2, {"prompt": "waves", "generate_audio": False})
            large = run(url, LTX2, {"prompt": "waves", "resolution": "2160p"})
    finally:
        process.terminate()
        process.communicate(timeout=15)
    # 1080p at 1/40 of its size; 2160p's long side at 64; 6 s in 12 frames.
    assert (small.clip.width, small.clip.height) == (48, 28)
    assert (large.clip.width, large.clip.height) == (64, 36)
    assert len(small.clip.frames) == small.result.video.num_frames == 12
    assert small.clip.duration == pytest.approx(6, abs=0.05)


def test_generate_audio_adds_a_sound_track(server: LocalServer) -> None:
    base = {"prompt": "rain on a tin roof", "duration": 6}
    loud = run(server.url, LTX2, {**base, "generate_audio": True})
    silent = run(server.url, LTX2, {**base, "generate_audio": False})
    assert loud.clip.audio_codec == "aac" and silent.clip.audio_codec is None
    assert loud.clip.audio is not None
    assert len(loud.clip.audio) / (loud.clip.sample_rate or 1) == pytest.approx(6, abs=0.1)
    # The pictures do not depend on the sound.
    assert np.array_equal(loud.clip.frames, silent.clip.frames)
    other = run(server.url, LTX2, {**base, "prompt": "a choir in a cathedral"})
    assert other.clip.audio is not None
    assert not np.allclose(loud.clip.audio[:48_000], other.clip.audio[:48_000], atol=0.05)


def test_the_same_input_gives_the_same_bytes(server: LocalServer) -> None:
    # LTX-2 takes no seed: the clip still depends only on the input.
    first = run(server.url, LTX2, {"prompt": "a paper boat", "duration": 6})
    second = run(server.url, LTX2, {"prompt": "a paper boat", "duration": 6})
    assert first.data == second.data
    seeded = {"prompt": "a paper boat", "seed": 5, "num_frames": 9}
    assert run(server.url, B19_T2V, seeded).data == run(server.url, B19_T2V, seeded).data


# -- conditioning files --------------------------------------------------------------------------


def test_image_url_is_the_first_frame_and_end_image_url_the_last(server: LocalServer) -> None:
    job = run(
        server.url,
        B19_I2V,
        {
            "prompt": "a fox",
            "num_frames": 17,
            "image_url": png_uri(RED),
            "end_image_url": png_uri(BLUE),
            "generate_audio": False,
        },
    )
    assert near(job.clip.colour(0), RED)
    assert near(job.clip.colour(-1), BLUE)
    assert not near(job.clip.colour(8), RED) and not near(job.clip.colour(8), BLUE)
    first_only = run(
        server.url,
        LTX23_I2V,
        {"prompt": "a fox", "image_url": png_uri(GREEN), "generate_audio": False},
    )
    assert near(first_only.clip.colour(0), GREEN)
    assert not near(first_only.clip.colour(-1), GREEN)


def test_video_url_gives_the_first_frames(server: LocalServer) -> None:
    source = [RED, GREEN, BLUE, YELLOW]
    for endpoint_id in (
        "fal-ai/ltx-video-13b-distilled/extend",
        "fal-ai/ltxv-13b-098-distilled/extend",
    ):
        job = run(
            server.url,
            endpoint_id,
            {"prompt": "go on", "num_frames": 17, "video": {"video_url": clip_uri(source)}},
        )
        for index, colour in enumerate(source):
            assert near(job.clip.colour(index), colour), (endpoint_id, index)
        assert not near(job.clip.colour(-1), YELLOW)


def test_multiconditioning_items_show_at_their_frames(server: LocalServer) -> None:
    job = run(
        server.url,
        "fal-ai/ltxv-13b-098-distilled/multiconditioning",
        {
            "prompt": "a journey",
            "num_frames": 17,
            "videos": [{"video_url": clip_uri([GREEN, YELLOW])}],
            "images": [{"image_url": png_uri(BLUE), "start_frame_num": 12}],
        },
    )
    assert near(job.clip.colour(0), GREEN) and near(job.clip.colour(1), YELLOW)
    assert near(job.clip.colour(12), BLUE)
    assert not near(job.clip.colour(6), BLUE)


# -- prompt and logs -----------------------------------------------------------------------------


def test_prompt_expansion_gives_a_longer_prompt(server: LocalServer) -> None:
    prompt = "a heron on one leg"
    plain = run(server.url, D13, {"prompt": prompt, "num_frames": 9, "expand_prompt": False})
    expanded = run(server.url, D13, {"prompt": prompt, "num_frames": 9, "expand_prompt": True})
    assert plain.result.prompt == prompt
    assert expanded.result.prompt is not None and expanded.result.prompt.startswith(prompt)
    assert len(expanded.result.prompt.split()) > len(prompt.split()) + 5
    # The clip is drawn from the prompt used.
    assert not np.array_equal(plain.clip.frames, expanded.clip.frames)
    # The 19B model expands by default.
    base = {"prompt": prompt, "num_frames": 9, "generate_audio": False}
    by_default = run(server.url, B19_T2V, base)
    assert by_default.result.prompt is not None and len(by_default.result.prompt) > len(prompt)
    off = run(server.url, B19_T2V, {**base, "enable_prompt_expansion": False})
    assert off.result.prompt == prompt


def test_two_pass_endpoints_log_each_pass(server: LocalServer) -> None:
    job = run(
        server.url,
        D13,
        {
            "prompt": "two passes",
            "num_frames": 9,
            "first_pass_num_inference_steps": 3,
            "second_pass_num_inference_steps": 2,
        },
    )
    steps = [line for line in job.logs if "step " in line and "steps" not in line]
    assert steps == [
        "pass 1 step 1/3",
        "pass 1 step 2/3",
        "pass 1 step 3/3",
        "pass 2 step 1/2",
        "pass 2 step 2/2",
    ]
    # The job view's progress bar reads each of them.
    assert [parse_progress(line) for line in steps] == [(1, 3), (2, 3), (3, 3), (1, 2), (2, 2)]
    single = run(
        server.url, B19_T2V, {"prompt": "one pass", "num_frames": 9, "num_inference_steps": 8}
    )
    assert [line for line in single.logs if line.startswith("step ")] == [
        f"step {i}/8" for i in range(1, 9)
    ]
    assert not any(line.startswith("pass ") for line in single.logs)
