"""The LTX endpoints: their fields, defaults, ranges and validation, and the typed output.

This module is the one place that knows the endpoints' defaults; the client, the magic, the
panel and the local server all ask it. Fields it does not know pass through unchanged, so
newer LTX endpoints work without a release.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ._errors import FieldError, InputError, ProtocolError
from ._text import value_repr

__all__ = [
    "DEFAULT_ENDPOINT",
    "ENDPOINTS",
    "IMAGE_TO_VIDEO",
    "PRESETS",
    "PROMPT_GUIDE",
    "PROMPT_WORD_GUIDE",
    "TEXT_TO_VIDEO",
    "EndpointSpec",
    "FieldSpec",
    "Preset",
    "ValidatedInput",
    "VideoFile",
    "VideoResult",
    "check_input",
    "endpoint_spec",
    "image_kind",
    "is_integer",
    "is_number",
    "parse_output",
    "validate_input",
]

TEXT_TO_VIDEO = "fal-ai/ltx-video"
IMAGE_TO_VIDEO = "fal-ai/ltx-video/image-to-video"
DEFAULT_ENDPOINT = TEXT_TO_VIDEO

#: The endpoint's guide: a prompt should stay within this many words (a warning, not an error).
PROMPT_WORD_GUIDE = 200

DEFAULT_NEGATIVE_PROMPT = (
    "low quality, worst quality, deformed, distorted, disfigured, motion smear, "
    "motion artifacts, fused fingers, bad anatomy, weird hand, ugly"
)

FieldType = Literal["string", "integer", "number", "boolean", "image"]


@dataclass(frozen=True)
class FieldSpec:
    """One input field of an endpoint."""

    name: str
    type: FieldType
    description: str
    default: Any = None
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None

    def allowed(self) -> str:
        """A short phrase saying which values the field accepts."""
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.type == "image":
            return "an http(s) URL, a data: URI or the path of a readable image file"
        kind = {"integer": "an integer", "number": "a number", "boolean": "true or false"}.get(
            self.type, "text"
        )
        if self.minimum is not None and self.maximum is not None:
            return f"{kind} from {self.minimum:g} to {self.maximum:g}"
        if self.minimum is not None:
            return f"{kind} of at least {self.minimum:g}"
        if self.maximum is not None:
            return f"{kind} of at most {self.maximum:g}"
        return kind


@dataclass(frozen=True)
class EndpointSpec:
    """An endpoint id, its fields in display order, and its prompt and parameter guides."""

    endpoint_id: str
    title: str
    fields: tuple[FieldSpec, ...]

    def field(self, name: str) -> FieldSpec | None:
        for spec in self.fields:
            if spec.name == name:
                return spec
        return None

    def defaults(self) -> dict[str, Any]:
        """The fields that have a default, with it."""
        return {f.name: f.default for f in self.fields if f.default is not None}


_COMMON_FIELDS = (
    FieldSpec(
        "prompt",
        "string",
        "What happens in the clip: one flowing, chronological paragraph.",
        required=True,
    ),
    FieldSpec(
        "negative_prompt",
        "string",
        "What the clip should avoid.",
        default=DEFAULT_NEGATIVE_PROMPT,
    ),
    FieldSpec(
        "num_inference_steps",
        "integer",
        "Denoising steps: 20-30 for speed, 40 or more for quality.",
        default=30,
        minimum=1,
        maximum=50,
    ),
    FieldSpec(
        "guidance_scale",
        "number",
        "How closely to follow the prompt: 3-5 is more creative, 5-7 more faithful.",
        default=3,
        minimum=0,
        maximum=10,
    ),
    FieldSpec("seed", "integer", "Random seed; the same seed repeats a clip (random if unset)."),
)

ENDPOINTS: dict[str, EndpointSpec] = {
    TEXT_TO_VIDEO: EndpointSpec(TEXT_TO_VIDEO, "LTX Video (text to video)", _COMMON_FIELDS),
    IMAGE_TO_VIDEO: EndpointSpec(
        IMAGE_TO_VIDEO,
        "LTX Video (image to video)",
        (
            *_COMMON_FIELDS[:1],
            FieldSpec(
                "image_url",
                "image",
                "The first frame: a URL, a data: URI or a local file (768x512 works best).",
                required=True,
            ),
            *_COMMON_FIELDS[1:],
        ),
    ),
}


@dataclass(frozen=True)
class Preset:
    """A value for one field that the endpoint's parameter guide recommends."""

    name: str
    field: str
    value: int | float
    tooltip: str


#: The LTX endpoints' parameter guide: 20-30 steps for speed, 40 or more for quality;
#: guidance 3-5 is more creative, 5-7 follows the prompt closely.
PRESETS: tuple[Preset, ...] = (
    Preset("fast", "num_inference_steps", 25, "25 steps: the guide's 20-30 for speed"),
    Preset("quality", "num_inference_steps", 40, "40 steps: the guide's 40 or more for quality"),
    Preset("creative", "guidance_scale", 4.0, "guidance 4: the guide's 3-5, more creative"),
    Preset("faithful", "guidance_scale", 6.0, "guidance 6: the guide's 5-7, follows the prompt"),
)

PROMPT_GUIDE = (
    "Write one flowing, chronological paragraph of at most 200 words: start with the main "
    "action, then add movements and gestures, appearances, background, camera angles and "
    "moves, lighting and colours, and any sudden changes."
)


def endpoint_spec(endpoint_id: str) -> EndpointSpec | None:
    """The spec of a known endpoint, or None for endpoints whose fields pass through unchecked."""
    return ENDPOINTS.get(endpoint_id.strip("/"))


def image_kind(value: Any) -> Literal["url", "data", "file"] | None:
    """The kind of an image input: ``url``, ``data`` (a data: URI), ``file`` (readable) or None."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    lowered = text.lower()
    if lowered.startswith(("http://", "https://")) and len(text) > len("https://"):
        return "url"
    if lowered.startswith("data:") and "," in text:
        return "data"
    if os.path.isfile(text) and os.access(text, os.R_OK):
        return "file"
    return None


def is_integer(value: Any) -> bool:
    """Whether ``value`` is an int (a bool is not)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _check_field(spec: FieldSpec, value: Any, *, allow_files: bool) -> FieldError | None:
    loc = ("body", spec.name)
    if value is None:
        if spec.required:
            return FieldError(loc, f"is required ({spec.allowed()})", "missing")
        return None
    if spec.type == "string":
        if not isinstance(value, str):
            return FieldError(loc, "must be text", "string_type")
        if spec.required and not value.strip():
            return FieldError(loc, "must not be empty", "string_too_short")
    elif spec.type == "integer":
        if not is_integer(value):
            return FieldError(loc, f"must be {spec.allowed()}, got {value!r}", "int_type")
    elif spec.type == "number":
        if not is_number(value):
            return FieldError(loc, f"must be {spec.allowed()}, got {value!r}", "float_type")
    elif spec.type == "boolean":
        if not isinstance(value, bool):
            return FieldError(loc, f"must be true or false, got {value!r}", "bool_type")
    elif spec.type == "image":
        kind = image_kind(value)
        if kind == "data" and not value.strip().lower().startswith("data:image/"):
            kind = None
        if kind is None or (kind == "file" and not allow_files):
            allowed = spec.allowed() if allow_files else "an http(s) URL or a data: URI of an image"
            return FieldError(loc, f"must be {allowed}, got {value_repr(value)}", "url_parsing")
    if spec.type in ("integer", "number"):
        if spec.minimum is not None and value < spec.minimum:
            return FieldError(loc, f"must be {spec.allowed()}, got {value!r}", "greater_than_equal")
        if spec.maximum is not None and value > spec.maximum:
            return FieldError(loc, f"must be {spec.allowed()}, got {value!r}", "less_than_equal")
    if spec.choices and value not in spec.choices:
        return FieldError(loc, f"must be {spec.allowed()}, got {value!r}", "literal_error")
    return None


def check_input(
    endpoint_id: str, data: Mapping[str, Any], *, allow_files: bool = True
) -> list[FieldError]:
    """Every field error of ``data`` for ``endpoint_id``; empty when it is valid.

    ``allow_files=False`` is the server's view: an image must then be a URL or a data URI.
    """
    if not isinstance(data, Mapping):
        return [FieldError(("body",), "must be a JSON object", "dict_type")]
    spec = endpoint_spec(endpoint_id)
    errors = []
    if spec is not None:
        for field_spec in spec.fields:
            error = _check_field(field_spec, data.get(field_spec.name), allow_files=allow_files)
            if error is not None:
                errors.append(error)
    flagged = {e.loc[:2] for e in errors}
    for key, value in data.items():
        if not isinstance(key, str):
            errors.append(FieldError(("body", str(key)), "field names must be text", "str_type"))
            continue
        if ("body", key) in flagged:
            continue
        if allow_files and isinstance(value, os.PathLike) and image_kind(value) == "file":
            continue  # a local file the client inlines or uploads
        error = _json_problem(("body", key), value)
        if error is not None:
            errors.append(error)
    return errors


#: A video URL in a result must be one of these (a browser then plays it; nothing else runs).
_RESULT_URL = re.compile(r"^(https?://[^/?#\s]|data:video/)", re.IGNORECASE)
_URL_BREAKERS = re.compile(r"[\x00-\x1f\x7f\s]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_DEPTH = 32


def _json_problem(loc: tuple[str | int, ...], value: Any, depth: int = 0) -> FieldError | None:
    """Why ``value`` cannot be sent as JSON (a lone surrogate, NaN, an object...), or None."""
    if value is None or isinstance(value, (bool, int)):
        return None
    if isinstance(value, float):
        if math.isfinite(value):
            return None
        return FieldError(loc, f"must be a finite number, got {value!r}", "finite_number")
    if isinstance(value, str):
        bad = _SURROGATE.search(value)
        if bad is None:
            return None
        return FieldError(
            loc,
            f"contains a lone surrogate ({bad.group()!r} at position {bad.start()}), "
            "which is not text that can be sent; paste it again",
            "string_unicode",
        )
    if depth >= _MAX_DEPTH:
        return FieldError(loc, f"is nested deeper than {_MAX_DEPTH} levels", "too_deep")
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            error = _json_problem((*loc, i), item, depth + 1)
            if error is not None:
                return error
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return FieldError(loc, f"keys must be text, got {key!r}", "str_type")
            error = _json_problem((*loc, key), item, depth + 1)
            if error is not None:
                return error
        return None
    return FieldError(
        loc,
        "must be JSON data (text, a number, true/false, a list or an object), "
        f"got {type(value).__name__}",
        "json_type",
    )


@dataclass(frozen=True)
class ValidatedInput:
    """A checked endpoint input (defaults not filled in: the endpoint owns them) and warnings."""

    endpoint_id: str
    arguments: dict[str, Any]
    warnings: tuple[str, ...] = ()


def validate_input(endpoint_id: str, data: Mapping[str, Any]) -> ValidatedInput:
    """Check ``data`` against the endpoint before any request; raise :class:`InputError`.

    ``None`` values are dropped (the endpoint applies its default). A prompt over the
    endpoint's 200-word guide is a warning, not an error.
    """
    errors = check_input(endpoint_id, data)
    if errors:
        raise InputError(errors)
    arguments = {k: v for k, v in data.items() if v is not None}
    warnings = []
    prompt = arguments.get("prompt")
    if isinstance(prompt, str):
        words = len(prompt.split())
        if words > PROMPT_WORD_GUIDE:
            warnings.append(
                f"prompt has {words} words; the endpoint's guide is at most {PROMPT_WORD_GUIDE}"
            )
    return ValidatedInput(endpoint_id, arguments, tuple(warnings))


@dataclass(frozen=True)
class VideoFile:
    """A video output file as fal describes it."""

    url: str
    content_type: str | None = None
    file_name: str | None = None
    file_size: int | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    duration: float | None = None
    num_frames: int | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VideoFile:
        def number(key: str, kind: type) -> Any:
            value = data.get(key)
            return kind(value) if is_number(value) else None

        return cls(
            url=str(data["url"]),
            content_type=data.get("content_type"),
            file_name=data.get("file_name"),
            file_size=number("file_size", int),
            width=number("width", int),
            height=number("height", int),
            fps=number("fps", float),
            duration=number("duration", float),
            num_frames=number("num_frames", int),
        )


@dataclass(frozen=True)
class VideoResult:
    """The typed output of an LTX endpoint: the video, the seed used, and the raw JSON."""

    video: VideoFile
    seed: int | None = None
    prompt: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def url(self) -> str:
        return self.video.url


def parse_output(output: Any, *, request_id: str | None = None) -> VideoResult:
    """An endpoint's output as a :class:`VideoResult`; :class:`ProtocolError` if malformed."""
    if not isinstance(output, Mapping):
        raise ProtocolError("the result is not a JSON object", request_id=request_id)
    video = output.get("video")
    if not isinstance(video, Mapping) or not isinstance(video.get("url"), str):
        raise ProtocolError("the result holds no video with a url", request_id=request_id)
    url = video["url"]
    if not _RESULT_URL.match(url) or _URL_BREAKERS.search(url):
        raise ProtocolError(
            f"the result's video url {value_repr(url)} is not an http(s) URL or a data:video URI",
            request_id=request_id,
        )
    seed = output.get("seed")
    prompt = output.get("prompt")
    return VideoResult(
        video=VideoFile.from_json(video),
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        prompt=prompt if isinstance(prompt, str) else None,
        raw=dict(output),
    )
