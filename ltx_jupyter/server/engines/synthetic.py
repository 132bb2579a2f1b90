"""The ``synthetic`` engine: an offline preview animation, NOT LTX Video output.

It accepts every LTX endpoint and draws a short clip that follows the input the way a real
model's output would, so a notebook, a client or a benchmark can be exercised without fal.ai:

- the prompt (its hash) picks the palette and the scene (orbs, waves or rings);
- the seed places and moves the shapes (an endpoint without a seed field takes one from the
  prompt, so the same input gives the same clip);
- the step count (``num_inference_steps``, or both passes' steps) sets how much grain remains
  (few steps = grainy); ``guidance_scale`` sets contrast and saturation;
- the size follows ``video_size``, or ``resolution`` with ``aspect_ratio`` (``auto``: the input
  image's or video's shape), see :mod:`.shape`: drawn at ``scale`` times it (default 1/6, so
  1080p 16:9 draws 320x180), the long side at most ``max_side``. An input without a size draws
  the engine's ``width`` x ``height``, as do the engine's own ``width``/``height`` fields;
- the frames are ``num_frames``, or ``duration`` x ``fps`` (or ``frame_rate``), at most
  ``max_frames``: a longer clip keeps its duration at a lower frame rate;
- ``generate_audio`` true adds an AAC sound track: a two-note chord whose pitch comes from the
  prompt and the interval from the seed, pulsing with the scene;
- ``image_url`` is the first frame and ``end_image_url`` the last, cross-fading into the scene;
  ``video_url`` (``video.video_url``, ``videos[]``) gives the first frames, ``images[]`` the
  frames at their ``start_frame_num`` (see :mod:`.conditioning`); the first file tints the
  palette with its mean colour;
- ``expand_prompt`` or ``enable_prompt_expansion`` true adds a sentence to the prompt, and the
  clip is drawn from the longer prompt.

The output has the fields of the endpoint's output schema (its shipped or cached document):
the video as a ``File`` (url, content type, name, size) or a ``VideoFile`` (also the width,
height, fps, duration and frame count drawn), the seed and the prompt used only where the
output has them. An endpoint without a document gets ``{video: VideoFile, seed}``. Every other
field (LoRAs, camera LoRAs, the safety checker, ``reverse_video``, ``video_output_type``...) is
accepted and leaves the clip as it is: the file is always an H.264 MP4.

The same input (seed included) gives the same bytes.

Log lines, in order (level INFO unless noted)::

    synthetic engine: drawing a preview animation, not LTX Video output
    seed 42, 30 steps, 320x180 (1920x1080 asked), 121 frames at 20.17 fps (150 asked), with sound
    expanded the prompt (+13 words)      only when the endpoint expands prompts
    step 1/30            one line per denoising step, format "step {i}/{n}"
                         (with ``log_lines_per_step=k``, k DEBUG lines before each)
    ...
    step 30/30
    encoding 121 frames
    done in 2.01 s

An endpoint with two-pass steps (``first_pass_num_inference_steps``,
``second_pass_num_inference_steps``) logs ``pass 1 step {i}/{n}`` for the first pass, then
``pass 2 step {i}/{n}``. A cancelled run logs ``cancelled after {k} of {n} steps`` (WARN) and
raises :class:`EngineCancelled`.

For an endpoint without a document the engine checks the fields it reads: ``width``,
``height`` (even, 64-1280), ``num_frames``, ``duration``, ``fps`` or ``frame_rate``, the step
counts, ``guidance_scale`` and the file fields.
"""

from __future__ import annotations

import colorsys
import hashlib
import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from ..._errors import FieldError
from ..._openapi import EndpointSchema
from ..._schema import is_integer, is_number, lookup_schema
from ..video import AUDIO_SAMPLE_RATE, write_mp4
from .base import (
    EngineCancelled,
    EngineOutput,
    EngineTask,
    endpoint_defaults,
    random_seed,
    range_error,
)
from .conditioning import Blend, conditions_of, read_source
from .shape import fit_frames, fit_size, requested_frames, requested_size

__all__ = ["SyntheticEngine"]

VIDEO_NAME = "video.mp4"
SIZE_RANGE = (64, 1280)
FRAMES_RANGE = (1, 257)
MAX_FRAMES_RANGE = (1, 10_000)
MAX_SIDE_RANGE = (16, 4096)
FPS_RANGE = (1, 60)
STEPS_RANGE = (1, 100)
GUIDANCE_RANGE = (0, 20)
DURATION_RANGE = (0.04, 3600)
#: Fields a file URL goes in, and the conditioning lists holding them.
FILE_FIELDS = ("image_url", "end_image_url", "video_url")
#: The fields that turn prompt expansion on, on the endpoints that have one.
EXPANSION_FIELDS = ("expand_prompt", "enable_prompt_expansion")
TWO_PASS_FIELDS = ("first_pass_num_inference_steps", "second_pass_num_inference_steps")
#: Sentences an expanded prompt gains (one, chosen by the prompt and seed).
EXPANSIONS = (
    "The camera glides slowly forward while soft, warm light shifts across the scene.",
    "Gentle motion fills the frame as the colours deepen and the background drifts out of focus.",
    "A slow pan follows the action, with natural lighting and fine, realistic detail.",
    "The shot holds steady as the light changes subtly and every detail stays crisp.",
    "Mist drifts through the frame while the camera rises gently over the scene.",
)


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
    passes: tuple[int, ...]
    guidance: float
    width: int
    height: int
    num_frames: int
    fps: float
    tint: tuple[float, float, float] | None

    @property
    def steps(self) -> int:
        return sum(self.passes)


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


def _soundtrack(p: _Params, sample_rate: int = AUDIO_SAMPLE_RATE) -> np.ndarray:
    """The clip's sound: a two-note chord, its root from the prompt (110-440 Hz) and its
    interval from the seed, pulsing once per loop of the animation, faded in and out."""
    count = max(1, round(p.num_frames / p.fps * sample_rate))
    t = np.arange(count, dtype=np.float64) / sample_rate
    root = 110.0 * 2 ** (int(_rng("pitch", p.prompt).integers(0, 25)) / 12)
    seed_rng = _rng("interval", p.seed)
    interval = (3, 4, 5, 7, 9)[int(seed_rng.integers(5))]
    pulses = int(seed_rng.integers(1, 4))
    chord = 0.6 * np.sin(2 * math.pi * root * t)
    chord += 0.4 * np.sin(2 * math.pi * root * 2 ** (interval / 12) * t)
    duration = count / sample_rate
    envelope = 0.65 + 0.35 * np.cos(2 * math.pi * pulses * t / duration)
    ramp = min(count, int(0.02 * sample_rate))
    if ramp:
        fade = np.linspace(0.0, 1.0, ramp)
        envelope[:ramp] *= fade
        envelope[count - ramp :] *= fade[::-1]
    return (0.3 * chord * envelope).astype(np.float32)


def _expanded(prompt: str, seed: int) -> str:
    sentence = EXPANSIONS[int(_rng("expand", prompt, seed).integers(len(EXPANSIONS)))]
    text = prompt.rstrip()
    return f"{text} {sentence}" if text else sentence


def _prompt_seed(prompt: str) -> int:
    """A seed for an endpoint that takes none: from the prompt, so the same input draws the
    same clip (and the same prompt the same scene, whatever its length, size or sound)."""
    return int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:4], "big") % 2**31


class SyntheticEngine:
    """Draws a deterministic preview animation; see the module docstring.

    ``width`` x ``height``, ``num_frames`` and ``fps`` are what an input that names no size,
    length or rate gets. ``scale`` and ``max_side`` bound the size drawn for the size an input
    asks for; ``max_frames`` bounds the frames. ``step_seconds`` paces each step.
    """

    name = "synthetic"

    def __init__(
        self,
        *,
        width: int = 320,
        height: int = 192,
        num_frames: int = 49,
        fps: float = 24.0,
        scale: float = 1 / 6,
        max_side: int = 640,
        max_frames: int = 121,
        step_seconds: float = 0.05,
        log_lines_per_step: int = 0,
    ) -> None:
        for option, value, low, high, even in (
            ("width", width, *SIZE_RANGE, True),
            ("height", height, *SIZE_RANGE, True),
            ("num_frames", num_frames, *FRAMES_RANGE, False),
            ("max_side", max_side, *MAX_SIDE_RANGE, True),
            ("max_frames", max_frames, *MAX_FRAMES_RANGE, False),
        ):
            if not is_integer(value) or not low <= value <= high or (even and value % 2):
                parity = "an even integer" if even else "an integer"
                raise ValueError(f"{option} must be {parity} from {low} to {high}, got {value!r}")
        if not is_number(fps) or not FPS_RANGE[0] <= fps <= FPS_RANGE[1]:
            raise ValueError(f"fps must be a number from 1 to 60, got {fps!r}")
        if not is_number(scale) or not 0 < scale <= 1:
            raise ValueError(f"scale must be a number above 0 and at most 1, got {scale!r}")
        if not is_number(step_seconds) or step_seconds < 0:
            raise ValueError(f"step_seconds must be a number of at least 0, got {step_seconds!r}")
        self.width = width
        self.height = height
        self.num_frames = num_frames
        self.fps = float(fps)
        self.scale = float(scale)
        self.max_side = max_side
        self.max_frames = max_frames
        self.step_seconds = float(step_seconds)
        if isinstance(log_lines_per_step, bool) or not isinstance(log_lines_per_step, int):
            raise ValueError(f"log_lines_per_step must be an integer, got {log_lines_per_step!r}")
        if log_lines_per_step < 0:
            raise ValueError(f"log_lines_per_step must be at least 0, got {log_lines_per_step}")
        self.log_lines_per_step = log_lines_per_step

    # -- checking ------------------------------------------------------------------------------

    def validate(self, endpoint_id: str, data: Mapping[str, Any]) -> list[FieldError]:
        """Check the fields this engine reads that the endpoint's schema does not rule (all of
        them for an endpoint without a document; its own ``width`` and ``height`` always)."""
        schema = _schema(endpoint_id)
        ruled = set(schema.field_names) if schema is not None else set()
        errors: list[FieldError] = []
        for name in FILE_FIELDS:
            value = data.get(name)
            if name not in ruled and value is not None and not isinstance(value, str):
                errors.append(
                    FieldError(
                        ("body", name),
                        "must be an http(s) URL or a data: URI",
                        "url_parsing",
                    )
                )
        checks: list[tuple[str, float, float, bool, bool]] = [
            ("num_inference_steps", *STEPS_RANGE, True, False),
            ("first_pass_num_inference_steps", *STEPS_RANGE, True, False),
            ("second_pass_num_inference_steps", *STEPS_RANGE, True, False),
            ("guidance_scale", *GUIDANCE_RANGE, False, False),
            ("width", *SIZE_RANGE, True, True),
            ("height", *SIZE_RANGE, True, True),
            ("num_frames", *FRAMES_RANGE, True, False),
            ("duration", *DURATION_RANGE, False, False),
            ("fps", *FPS_RANGE, False, False),
            ("frame_rate", *FPS_RANGE, False, False),
        ]
        for name, low, high, integer, even in checks:
            value = data.get(name)
            if value is None or name in ruled:
                continue
            error = range_error(name, value, low, high, integer=integer, even=even)
            if error is not None:
                errors.append(error)
        return errors

    # -- reading the input ---------------------------------------------------------------------

    def _passes(self, data: Mapping[str, Any], defaults: Mapping[str, Any]) -> tuple[int, ...]:
        first, second = (data.get(name) for name in TWO_PASS_FIELDS)
        if first is not None or second is not None:
            return (int(first or second), int(second or first))
        return (int(data.get("num_inference_steps") or defaults["num_inference_steps"]),)

    def _size(
        self, data: Mapping[str, Any], source: tuple[int, int] | None
    ) -> tuple[tuple[int, int], tuple[int, int] | None]:
        """(drawn size, requested size or None)."""
        width, height = data.get("width"), data.get("height")
        if width is not None or height is not None:
            return (int(width or self.width), int(height or self.height)), None
        asked = requested_size(data, source)
        if asked is None:
            return (self.width, self.height), None
        return fit_size(asked, self.scale, self.max_side), asked

    # -- running -------------------------------------------------------------------------------

    def run(self, task: EngineTask) -> EngineOutput:
        """Pace through the steps (logging each), then draw and encode the clip."""
        started = time.monotonic()
        task.log("synthetic engine: drawing a preview animation, not LTX Video output")
        data = task.input
        schema = _schema(task.endpoint_id)
        defaults = endpoint_defaults(task.endpoint_id)

        prompt = str(data.get("prompt", ""))
        seed = data.get("seed")
        if seed is None:
            has_seed = schema is None or schema.field("seed") is not None
            seed = random_seed() if has_seed else _prompt_seed(prompt)
        expand = any(data.get(name) is True for name in EXPANSION_FIELDS)
        used_prompt = _expanded(prompt, int(seed)) if expand else prompt

        asked_frames, asked_fps = requested_frames(data, self.num_frames, self.fps)
        num_frames, fps = fit_frames(asked_frames, asked_fps, self.max_frames)
        conditions = conditions_of(data, partial(read_source, read_local_file=task.read_local_file))
        source = next((c.source.size for c in conditions if c.source.size), None)
        (width, height), asked_size = self._size(data, source)
        sound = data.get("generate_audio") is True
        p = _Params(
            prompt=used_prompt,
            seed=int(seed),
            passes=self._passes(data, defaults),
            guidance=float(_given(data, "guidance_scale", defaults["guidance_scale"])),
            width=width,
            height=height,
            num_frames=num_frames,
            fps=fps,
            tint=conditions[0].source.colour() if conditions else None,
        )
        task.log(_summary(p, data, asked_size, asked_frames, sound))
        if expand:
            task.log(
                f"expanded the prompt (+{len(used_prompt.split()) - len(prompt.split())} words)"
            )
        self._steps(task, p, started)

        task.log(f"encoding {p.num_frames} frames")
        scene = _Scene(p)
        blend = Blend(conditions, p.width, p.height, p.num_frames, asked_frames)

        def frames() -> Iterator[np.ndarray]:
            for i in range(p.num_frames):
                if task.cancelled():
                    task.log(f"cancelled while encoding frame {i + 1}", "WARN")
                    raise EngineCancelled()
                yield blend.apply(scene.frame(i), i)

        path = task.output_dir / VIDEO_NAME
        audio = _soundtrack(p) if sound else None
        size = write_mp4(frames(), path, p.fps, audio=audio)
        task.log(f"done in {time.monotonic() - started:.2f} s")
        video = {
            "url": task.file_url(VIDEO_NAME),
            "content_type": "video/mp4",
            "file_name": VIDEO_NAME,
            "file_size": size,
            "width": p.width,
            "height": p.height,
            "fps": round(p.fps, 6),
            "duration": round(p.num_frames / p.fps, 6),
            "num_frames": p.num_frames,
        }
        output = _shaped(schema, video, p.seed, used_prompt)
        return EngineOutput(output=output, files=[VIDEO_NAME])

    def _steps(self, task: EngineTask, p: _Params, started: float) -> None:
        """Log each step of each pass, paced by ``step_seconds``; stop when cancelled."""
        done = 0
        for number, count in enumerate(p.passes, start=1):
            prefix = f"pass {number} " if len(p.passes) > 1 else ""
            for step in range(1, count + 1):
                if task.cancelled():
                    task.log(f"cancelled after {done} of {p.steps} steps", "WARN")
                    raise EngineCancelled()
                done += 1
                delay = started + done * self.step_seconds - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                for line in range(1, self.log_lines_per_step + 1):
                    task.log(f"  detail {line}/{self.log_lines_per_step} of step {step}", "DEBUG")
                task.log(f"{prefix}step {step}/{count}")


def _given(data: Mapping[str, Any], name: str, default: Any) -> Any:
    value = data.get(name)
    return default if value is None else value


def _schema(endpoint_id: str) -> EndpointSchema | None:
    """The endpoint's schema from its shipped or cached document (never fetched), or None."""
    return lookup_schema(endpoint_id, fetch=False).schema


def _summary(
    p: _Params,
    data: Mapping[str, Any],
    asked_size: tuple[int, int] | None,
    asked_frames: int,
    sound: bool,
) -> str:
    """The run's one-line description: what is drawn, and what was asked when it differs."""
    if len(p.passes) > 1:
        steps = f"{' + '.join(str(n) for n in p.passes)} steps in {len(p.passes)} passes"
    else:
        steps = f"{p.steps} steps"
    parts = [f"seed {p.seed}", steps]
    if "guidance_scale" in data:
        parts.append(f"guidance {p.guidance:g}")
    size = f"{p.width}x{p.height}"
    if asked_size is not None and asked_size != (p.width, p.height):
        size += f" ({asked_size[0]}x{asked_size[1]} asked)"
    parts.append(size)
    frames = f"{p.num_frames} frames at {p.fps:.4g} fps"
    if asked_frames != p.num_frames:
        frames += f" ({asked_frames} asked)"
    parts.append(frames)
    if sound:
        parts.append("with sound")
    return ", ".join(parts)


def _shaped(
    schema: EndpointSchema | None, video: dict[str, Any], seed: int, prompt: str
) -> dict[str, Any]:
    """The output in the shape of the endpoint's output schema: its video object's fields
    (a File's or a VideoFile's), the seed and the prompt only where it has them."""
    if schema is None:
        return {"video": video, "seed": seed}
    output: dict[str, Any] = {}
    video_field = schema.output_field("video")
    keys = {f.name for f in video_field.fields} if video_field and video_field.fields else None
    output["video"] = {k: v for k, v in video.items() if keys is None or k in keys}
    if schema.output_field("seed") is not None:
        output["seed"] = seed
    if schema.output_field("prompt") is not None:
        output["prompt"] = prompt
    return output
