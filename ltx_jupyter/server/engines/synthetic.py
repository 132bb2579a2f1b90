"""The ``synthetic`` engine: an offline preview animation, NOT LTX Video output.

It draws a short clip that depends on the input the way a real model's output would, so a
notebook, a client or a benchmark can be exercised without fal.ai:

- the prompt (its hash) picks the palette and the scene (orbs, waves or rings);
- the seed places and moves the shapes;
- ``num_inference_steps`` sets how much grain remains (few steps = grainy);
- ``guidance_scale`` sets contrast and saturation;
- ``image_url`` (image-to-video) tints the palette with the image's mean colour.

The same prompt, seed, steps, guidance, size and frame count give the same bytes.

Log lines, in order (level INFO unless noted)::

    synthetic engine: drawing a preview animation, not LTX Video output
    seed 42, 30 steps, guidance 3, 320x192, 49 frames at 24 fps
    step 1/30            one line per denoising step, format "step {i}/{n}"
                         (with ``log_lines_per_step=k``, k DEBUG lines before each)
    ...
    step 30/30
    encoding 49 frames
    done in 2.01 s

A cancelled run logs ``cancelled after {k} of {n} steps`` (WARN) and raises
:class:`EngineCancelled`. Extra input fields it honours, for newer endpoints: ``width``,
``height`` (even, 64-1280), ``num_frames`` (1-257), ``fps`` or ``frame_rate`` (1-60) and
``aspect_ratio`` ``"9:16"`` (portrait, when no size is given).
"""

from __future__ import annotations

import base64
import binascii
import colorsys
import hashlib
import io
import math
import random
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..._errors import FieldError
from ..._schema import is_integer, is_number
from ..video import write_mp4
from .base import (
    EngineCancelled,
    EngineOutput,
    EngineTask,
    endpoint_defaults,
    range_error,
)

__all__ = ["SyntheticEngine"]

VIDEO_NAME = "video.mp4"
SIZE_RANGE = (64, 1280)
FRAMES_RANGE = (1, 257)
FPS_RANGE = (1, 60)
STEPS_RANGE = (1, 100)
GUIDANCE_RANGE = (0, 20)


def _rng(*parts: Any) -> np.random.Generator:
    """A generator seeded from ``parts`` through SHA-256: stable across runs and platforms."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "big"))


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32)


@dataclass(frozen=True)
class _Params:
    prompt: str
    seed: int
    steps: int
    guidance: float
    width: int
    height: int
    num_frames: int
    fps: float
    tint: tuple[float, float, float] | None


class _Scene:
    """Everything drawn, fixed from the parameters; :meth:`frame` renders frame ``i``."""

    def __init__(self, p: _Params) -> None:
        self.p = p
        scene_rng = _rng("prompt", p.prompt)
        self.kind = int(scene_rng.integers(3))
        hue = float(scene_rng.random())
        if p.tint is not None:
            hue = colorsys.rgb_to_hsv(*p.tint)[0]
        offsets = (0.0, scene_rng.uniform(0.06, 0.2), scene_rng.uniform(0.4, 0.6), 0.75)
        self.palette = [
            _hsv(hue + off, scene_rng.uniform(0.45, 0.9), scene_rng.uniform(0.35, 0.95))
            for off in offsets
        ]
        if p.tint is not None:
            self.palette[0] = np.array(p.tint, dtype=np.float32)
        self.wave_freq = scene_rng.uniform(1.0, 3.5, size=2)

        shape_rng = _rng("seed", p.seed)
        count = 5
        self.centres = shape_rng.uniform(0.2, 0.8, size=(count, 2))
        self.amplitudes = shape_rng.uniform(0.05, 0.3, size=(count, 2))
        self.freqs = shape_rng.integers(1, 4, size=(count, 2)).astype(np.float64)
        self.phases = shape_rng.uniform(0, 2 * math.pi, size=(count, 2))
        self.radii = shape_rng.uniform(0.06, 0.16, size=count)
        self.colours = shape_rng.integers(1, len(self.palette), size=count)
        self.scene_phase = float(shape_rng.uniform(0, 2 * math.pi))
        self.scene_centre = shape_rng.uniform(0.25, 0.75, size=2)

        aspect = p.width / p.height
        self.aspect = aspect
        v, u = np.mgrid[0 : p.height, 0 : p.width].astype(np.float32)
        self.u = (u + 0.5) / p.width
        self.v = (v + 0.5) / p.height
        self.x = self.u * aspect
        self.noise_amp = 0.45 / math.sqrt(p.steps)
        self.saturation = 0.35 + 0.13 * p.guidance
        self.contrast = 0.7 + 0.06 * p.guidance

    def frame(self, i: int) -> np.ndarray:
        p = self.p
        theta = 2 * math.pi * i / max(p.num_frames, 1)
        c0, c1 = self.palette[0], self.palette[1]
        if self.kind == 0:
            weight = np.clip(self.v + 0.1 * np.sin(2 * math.pi * self.u + theta), 0, 1)
        elif self.kind == 1:
            fu, fv = self.wave_freq
            wave = np.sin(2 * math.pi * fv * self.v + self.scene_phase)
            weight = 0.5 + 0.5 * np.sin(2 * math.pi * (fu * self.u + 0.3 * wave) + theta)
        else:
            cx = (self.scene_centre[0] + 0.1 * math.sin(theta)) * self.aspect
            cy = self.scene_centre[1] + 0.1 * math.cos(theta)
            dist = np.sqrt((self.x - cx) ** 2 + (self.v - cy) ** 2)
            weight = 0.5 + 0.5 * np.sin(2 * math.pi * 4 * dist - 2 * theta + self.scene_phase)
        image = c0 + (c1 - c0) * weight.astype(np.float32)[..., None]

        for k in range(len(self.radii)):
            px = self.centres[k, 0] + self.amplitudes[k, 0] * math.sin(
                self.freqs[k, 0] * theta + self.phases[k, 0]
            )
            py = self.centres[k, 1] + self.amplitudes[k, 1] * math.cos(
                self.freqs[k, 1] * theta + self.phases[k, 1]
            )
            radius = float(self.radii[k])
            # Beyond three radii a blob's weight is below 1e-4: draw only its bounding box.
            reach = 3 * radius * p.height
            x0, x1 = max(0, int(px * p.width - reach)), min(p.width, int(px * p.width + reach) + 1)
            y0 = max(0, int(py * p.height - reach))
            y1 = min(p.height, int(py * p.height + reach) + 1)
            if x0 >= x1 or y0 >= y1:
                continue
            box = image[y0:y1, x0:x1]
            d2 = (self.x[y0:y1, x0:x1] - px * self.aspect) ** 2 + (self.v[y0:y1, x0:x1] - py) ** 2
            alpha = np.exp(-d2 / (radius * radius))[..., None]
            box += (self.palette[int(self.colours[k])] - box) * alpha

        grey = image.mean(axis=2, keepdims=True)
        image -= grey
        image *= self.saturation * self.contrast
        image += 0.5 + (grey - 0.5) * self.contrast
        noise_rng = _rng("noise", p.seed, p.steps, p.width, p.height, i)
        image += self.noise_amp * noise_rng.standard_normal(image.shape, dtype=np.float32)
        np.clip(image, 0, 1, out=image)
        image *= 255
        image += 0.5
        return image.astype(np.uint8)


def _decode_data_uri(uri: str) -> bytes | None:
    header, _, payload = uri.partition(",")
    try:
        if header.lower().endswith(";base64"):
            return base64.b64decode(payload, validate=False)
        return urllib.parse.unquote_to_bytes(payload)
    except (binascii.Error, ValueError):
        return None


def _mean_colour(data: bytes) -> tuple[float, float, float] | None:
    """The mean RGB colour (0-1) of an encoded image, or None if it cannot be decoded."""
    import av

    try:
        with av.open(io.BytesIO(data)) as container:
            frame = next(container.decode(video=0))
            rgb = frame.to_ndarray(format="rgb24").reshape(-1, 3).mean(axis=0) / 255.0
    except Exception:
        return None
    return (float(rgb[0]), float(rgb[1]), float(rgb[2]))


def _hash_colour(data: bytes) -> tuple[float, float, float]:
    digest = hashlib.sha256(data).digest()
    rgb = colorsys.hsv_to_rgb(digest[0] / 255, 0.5 + digest[1] / 510, 0.5 + digest[2] / 510)
    return (float(rgb[0]), float(rgb[1]), float(rgb[2]))


class SyntheticEngine:
    """Draws a deterministic preview animation; see the module docstring."""

    name = "synthetic"

    def __init__(
        self,
        *,
        width: int = 320,
        height: int = 192,
        num_frames: int = 49,
        fps: float = 24.0,
        step_seconds: float = 0.05,
        log_lines_per_step: int = 0,
    ) -> None:
        for option, value, low, high, even in (
            ("width", width, *SIZE_RANGE, True),
            ("height", height, *SIZE_RANGE, True),
            ("num_frames", num_frames, *FRAMES_RANGE, False),
        ):
            if not is_integer(value) or not low <= value <= high or (even and value % 2):
                parity = "an even integer" if even else "an integer"
                raise ValueError(f"{option} must be {parity} from {low} to {high}, got {value!r}")
        if not is_number(fps) or not FPS_RANGE[0] <= fps <= FPS_RANGE[1]:
            raise ValueError(f"fps must be a number from 1 to 60, got {fps!r}")
        if not is_number(step_seconds) or step_seconds < 0:
            raise ValueError(f"step_seconds must be a number of at least 0, got {step_seconds!r}")
        self.width = width
        self.height = height
        self.num_frames = num_frames
        self.fps = float(fps)
        self.step_seconds = float(step_seconds)
        if isinstance(log_lines_per_step, bool) or not isinstance(log_lines_per_step, int):
            raise ValueError(f"log_lines_per_step must be an integer, got {log_lines_per_step!r}")
        if log_lines_per_step < 0:
            raise ValueError(f"log_lines_per_step must be at least 0, got {log_lines_per_step}")
        self.log_lines_per_step = log_lines_per_step

    def validate(self, endpoint_id: str, data: Mapping[str, Any]) -> list[FieldError]:
        """Check the fields this engine uses (the prompt, too, for endpoints without a schema)."""
        errors: list[FieldError] = []
        image = data.get("image_url")
        if image is not None and not isinstance(image, str):
            errors.append(
                FieldError(
                    ("body", "image_url"),
                    "must be an http(s) URL or a data: URI of an image",
                    "url_parsing",
                )
            )
        checks: list[tuple[str, float, float, bool, bool]] = [
            ("num_inference_steps", *STEPS_RANGE, True, False),
            ("guidance_scale", *GUIDANCE_RANGE, False, False),
            ("width", *SIZE_RANGE, True, True),
            ("height", *SIZE_RANGE, True, True),
            ("num_frames", *FRAMES_RANGE, True, False),
            ("fps", *FPS_RANGE, False, False),
            ("frame_rate", *FPS_RANGE, False, False),
        ]
        for name, low, high, integer, even in checks:
            value = data.get(name)
            if value is None:
                continue
            error = range_error(name, value, low, high, integer=integer, even=even)
            if error is not None:
                errors.append(error)
        return errors

    def _params(self, task: EngineTask) -> _Params:
        data = task.input
        defaults = endpoint_defaults(task.endpoint_id)
        seed = data.get("seed")
        if seed is None:
            seed = random.randrange(2**31)
        width = data.get("width")
        height = data.get("height")
        if width is None and height is None and data.get("aspect_ratio") == "9:16":
            width, height = self.height, self.width
        fps = data.get("fps", data.get("frame_rate"))
        return _Params(
            prompt=str(data.get("prompt", "")),
            seed=int(seed),
            steps=int(data.get("num_inference_steps") or defaults["num_inference_steps"]),
            guidance=float(data.get("guidance_scale", defaults["guidance_scale"])),
            width=int(width or self.width),
            height=int(height or self.height),
            num_frames=int(data.get("num_frames") or self.num_frames),
            fps=float(fps or self.fps),
            tint=self._tint(task, data.get("image_url")),
        )

    def _tint(self, task: EngineTask, image_url: Any) -> tuple[float, float, float] | None:
        if not isinstance(image_url, str) or not image_url:
            return None
        if image_url.lower().startswith("data:"):
            data = _decode_data_uri(image_url)
        else:
            data = task.read_local_file(image_url)
        if data is None:
            return _hash_colour(image_url.encode())
        return _mean_colour(data) or _hash_colour(data)

    def run(self, task: EngineTask) -> EngineOutput:
        """Pace through the steps (logging each), then draw and encode the clip."""
        started = time.monotonic()
        task.log("synthetic engine: drawing a preview animation, not LTX Video output")
        p = self._params(task)
        task.log(
            f"seed {p.seed}, {p.steps} steps, guidance {p.guidance:g}, "
            f"{p.width}x{p.height}, {p.num_frames} frames at {p.fps:g} fps"
        )
        for step in range(1, p.steps + 1):
            if task.cancelled():
                task.log(f"cancelled after {step - 1} of {p.steps} steps", "WARN")
                raise EngineCancelled()
            delay = started + step * self.step_seconds - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            for line in range(1, self.log_lines_per_step + 1):
                task.log(f"  detail {line}/{self.log_lines_per_step} of step {step}", "DEBUG")
            task.log(f"step {step}/{p.steps}")

        task.log(f"encoding {p.num_frames} frames")
        scene = _Scene(p)

        def frames() -> Iterator[np.ndarray]:
            for i in range(p.num_frames):
                if task.cancelled():
                    task.log(f"cancelled while encoding frame {i + 1}", "WARN")
                    raise EngineCancelled()
                yield scene.frame(i)

        path = task.output_dir / VIDEO_NAME
        size = write_mp4(frames(), path, p.fps)
        task.log(f"done in {time.monotonic() - started:.2f} s")
        video = {
            "url": task.file_url(VIDEO_NAME),
            "content_type": "video/mp4",
            "file_name": VIDEO_NAME,
            "file_size": size,
            "width": p.width,
            "height": p.height,
            "fps": p.fps,
            "duration": round(p.num_frames / p.fps, 6),
            "num_frames": p.num_frames,
        }
        return EngineOutput(output={"video": video, "seed": p.seed}, files=[VIDEO_NAME])
