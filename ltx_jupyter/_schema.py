"""The endpoints' inputs and outputs: validation against fal's schema documents, and the
typed result.

Every endpoint's fields, defaults and ranges come from its fal OpenAPI document (read by
:mod:`._openapi`, found by :mod:`._endpoints`: shipped for the LTX family, else cached or
fetched once). This module is what the client, the magic, the panel and the local server ask:
:func:`validate_input` checks an input before any request, :func:`parse_output` reads any
endpoint's output into one :class:`VideoResult`. An endpoint whose document cannot be had is
sent unvalidated (its values still must be sendable JSON), with a one-line warning saying so.

It also holds the few rules no document states: the seed endpoints' 200-word prompt guide and
their steps/guidance presets, and which endpoint of a family takes a first frame.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ._errors import FieldError, InputError, ProtocolError
from ._text import value_repr

if TYPE_CHECKING:
    from ._endpoints import SchemaLookup
    from ._openapi import EndpointSchema

__all__ = [
    "DEFAULT_ENDPOINT",
    "IMAGE_TO_VIDEO",
    "PRESETS",
    "PROMPT_GUIDE",
    "PROMPT_WORD_GUIDE",
    "TEXT_TO_VIDEO",
    "Preset",
    "ValidatedInput",
    "VideoFile",
    "VideoResult",
    "check_input",
    "has_word_guide",
    "image_kind",
    "image_sibling",
    "is_integer",
    "is_number",
    "json_problem",
    "lookup_schema",
    "parse_output",
    "resolve_endpoint",
    "short_endpoint",
    "validate_input",
    "validate_with",
]

TEXT_TO_VIDEO = "fal-ai/ltx-video"
IMAGE_TO_VIDEO = "fal-ai/ltx-video/image-to-video"
DEFAULT_ENDPOINT = TEXT_TO_VIDEO
#: The owner fal's own endpoints live under; ``--endpoint ltx-2/text-to-video`` may omit it.
FAL_OWNER = "fal-ai"

#: The seed endpoints' guide: a prompt should stay within this many words (a warning only).
PROMPT_WORD_GUIDE = 200
#: The families whose guide states the word limit (later ones bound the prompt's characters).
_WORD_GUIDE_FAMILIES = frozenset({"LTX-Video 0.9.1"})

PROMPT_GUIDE = (
    "Write one flowing, chronological paragraph of at most 200 words: start with the main "
    "action, then add movements and gestures, appearances, background, camera angles and "
    "moves, lighting and colours, and any sudden changes."
)


@dataclass(frozen=True)
class Preset:
    """A value for one field that the endpoint's parameter guide recommends."""

    name: str
    field: str
    value: int | float
    tooltip: str


#: LTX-Video's parameter guide: 20-30 steps for speed, 40 or more for quality; guidance 3-5 is
#: more creative, 5-7 follows the prompt closely. They apply where an endpoint has the field.
PRESETS: tuple[Preset, ...] = (
    Preset("fast", "num_inference_steps", 25, "25 steps: the guide's 20-30 for speed"),
    Preset("quality", "num_inference_steps", 40, "40 steps: the guide's 40 or more for quality"),
    Preset("creative", "guidance_scale", 4.0, "guidance 4: the guide's 3-5, more creative"),
    Preset("faithful", "guidance_scale", 6.0, "guidance 6: the guide's 5-7, follows the prompt"),
)


# -- values --------------------------------------------------------------------------------------


def image_kind(value: Any) -> Literal["url", "data", "file"] | None:
    """The kind of a file input: ``url``, ``data`` (a data: URI), ``file`` (readable) or None."""
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
    """Whether ``value`` is a finite int or float (a bool is not)."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_DEPTH = 32


def json_problem(loc: tuple[str | int, ...], value: Any, depth: int = 0) -> FieldError | None:
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
            error = json_problem((*loc, i), item, depth + 1)
            if error is not None:
                return error
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return FieldError(loc, f"keys must be text, got {key!r}", "str_type")
            error = json_problem((*loc, key), item, depth + 1)
            if error is not None:
                return error
        return None
    return FieldError(
        loc,
        "must be JSON data (text, a number, true/false, a list or an object), "
        f"got {type(value).__name__}",
        "json_type",
    )


# -- endpoints -----------------------------------------------------------------------------------


def lookup_schema(endpoint_id: str, *, fetch: bool = True, url: str | None = None) -> SchemaLookup:
    """Where the schema of ``endpoint_id`` comes from: shipped, cached or (``fetch``) fetched
    once from the OpenAPI URL ``url`` (default: ``LTX_OPENAPI_URL``, else the one that goes
    with the queue). Without ``fetch`` (the local server) only shipped and cached documents
    count."""
    from ._endpoints import SchemaLookup, get_schema, local_schema

    if fetch:
        return get_schema(endpoint_id, url=url)
    found = local_schema(endpoint_id)
    if found is not None:
        return found
    return SchemaLookup(endpoint_id, None, "none")


def resolve_endpoint(endpoint_id: str) -> str:
    """``endpoint_id`` as fal names it: an id given without ``fal-ai/`` gets it when that makes
    a known endpoint (``ltx-2/text-to-video`` → ``fal-ai/ltx-2/text-to-video``). A one-segment
    id always means fal's own (``ltx-video`` → ``fal-ai/ltx-video``)."""
    from ._endpoints import is_known

    text = endpoint_id.strip().strip("/")
    if not text or text.startswith(FAL_OWNER + "/"):
        return text
    owned = f"{FAL_OWNER}/{text}"
    if "/" not in text or (is_known(owned) and not is_known(text)):
        return owned
    return text


def short_endpoint(endpoint_id: str) -> str:
    """``endpoint_id`` as a heading or a line shows it: without ``fal-ai/``."""
    return endpoint_id.removeprefix(FAL_OWNER + "/")


def image_sibling(endpoint_id: str) -> str | None:
    """The image-to-video endpoint of the family of a text-to-video endpoint, if it is known
    (``fal-ai/ltx-2/text-to-video/fast`` → ``fal-ai/ltx-2/image-to-video/fast``)."""
    from ._endpoints import is_known

    candidates = []
    if "text-to-video" in endpoint_id:
        candidates.append(endpoint_id.replace("text-to-video", "image-to-video", 1))
    candidates.append(endpoint_id.rstrip("/") + "/image-to-video")
    return next((c for c in candidates if is_known(c)), None)


def has_word_guide(endpoint_id: str) -> bool:
    """Whether the endpoint's guide bounds the prompt to :data:`PROMPT_WORD_GUIDE` words."""
    from ._endpoints import family_of

    return family_of(endpoint_id) in _WORD_GUIDE_FAMILIES


# -- validation ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValidatedInput:
    """An input checked against its endpoint's schema, with advice that is not an error.

    ``arguments`` is what is sent (``None`` values dropped; defaults are the endpoint's to
    apply). ``schema`` is the endpoint's schema, or None when it could not be had (the input was
    then only checked to be sendable, and a warning says so). :meth:`with_defaults` is the input
    as the endpoint will run it.
    """

    endpoint_id: str
    arguments: dict[str, Any]
    warnings: tuple[str, ...] = ()
    schema: EndpointSchema | None = field(default=None, compare=False, repr=False)

    def with_defaults(self) -> dict[str, Any]:
        """The arguments over the schema's defaults: every field the endpoint will use."""
        defaults = self.schema.defaults() if self.schema is not None else {}
        return {**defaults, **self.arguments}


def validate_input(
    endpoint_id: str,
    data: Mapping[str, Any],
    *,
    strict: bool = True,
    fetch: bool = True,
    url: str | None = None,
) -> ValidatedInput:
    """Check ``data`` against the endpoint's schema before any request; raise
    :class:`InputError` naming every bad field, the value and what it allows.

    A field the schema does not have is an error naming the closest field it has (fal ignores
    unknown fields, so a typo would silently cost a run); with ``strict=False`` it is a warning.
    ``fetch=False`` uses only shipped and cached documents; ``url`` is the OpenAPI URL a
    missing one is fetched from.
    """
    lookup = lookup_schema(endpoint_id, fetch=fetch, url=url)
    return validate_with(lookup, data, strict=strict)


def validate_with(
    lookup: SchemaLookup, data: Mapping[str, Any], *, strict: bool = True
) -> ValidatedInput:
    """:func:`validate_input` with the schema already looked up (the async client's path)."""
    errors, warnings = _check(lookup.endpoint_id, lookup.schema, data, strict, allow_files=True)
    if not errors:
        errors = _local_file_errors(lookup.endpoint_id, data)
    if errors:
        raise InputError(errors)
    if lookup.warning:
        warnings.insert(0, lookup.warning)
    arguments = {k: v for k, v in data.items() if v is not None}
    prompt = arguments.get("prompt")
    if isinstance(prompt, str) and has_word_guide(lookup.endpoint_id):
        words = len(prompt.split())
        if words > PROMPT_WORD_GUIDE:
            warnings.append(
                f"prompt has {words} words; the endpoint's guide is at most {PROMPT_WORD_GUIDE}"
            )
    return ValidatedInput(lookup.endpoint_id, arguments, tuple(warnings), lookup.schema)


def _local_file_errors(endpoint_id: str, data: Mapping[str, Any]) -> list[FieldError]:
    """Local files that are not the kind their field wants, read from their first bytes."""
    from ._files import check_local_files

    try:
        check_local_files(endpoint_id, data)
    except InputError as error:
        return list(error.errors)
    return []


def check_input(
    endpoint_id: str,
    data: Any,
    *,
    schema: EndpointSchema | None,
    allow_files: bool = True,
    strict: bool = True,
) -> list[FieldError]:
    """Every field error of ``data`` (empty when it is valid); the server's and the panel's
    view. ``allow_files=False`` is the server's: a file must then be a URL or a data URI."""
    errors, _ = _check(endpoint_id, schema, data, strict, allow_files=allow_files)
    return errors


def _check(
    endpoint_id: str,
    schema: EndpointSchema | None,
    data: Any,
    strict: bool,
    *,
    allow_files: bool,
) -> tuple[list[FieldError], list[str]]:
    if not isinstance(data, Mapping):
        return [FieldError(("body",), "must be a JSON object", "dict_type")], []
    errors: list[FieldError] = []
    warnings: list[str] = []
    if schema is not None:
        found = schema.validate(data, strict=strict, allow_files=allow_files)
        errors += found.errors
        warnings += [str(w) for w in found.warnings]
    flagged = {e.loc[:2] for e in errors}
    for key, value in data.items():
        if not isinstance(key, str):
            loc = ("body", str(key))
            if loc not in flagged:
                errors.append(FieldError(loc, "field names must be text", "str_type"))
            continue
        if ("body", key) in flagged:
            continue
        if allow_files and isinstance(value, os.PathLike) and image_kind(value) == "file":
            continue  # a local file the client inlines or uploads
        error = json_problem(("body", key), value)
        if error is not None:
            errors.append(error)
    return errors, warnings


# -- the typed result ----------------------------------------------------------------------------

#: A video URL in a result must be one of these (a browser then plays it; nothing else runs).
_RESULT_URL = re.compile(r"^(https?://[^/?#\s]|data:video/)", re.IGNORECASE)
_URL_BREAKERS = re.compile(r"[\x00-\x1f\x7f\s]")


@dataclass(frozen=True)
class VideoFile:
    """A video output file as fal describes it: a ``File`` (url, content type, name, size),
    with a ``VideoFile``'s width, height, fps, duration and frame count when given."""

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

        def text(key: str) -> str | None:
            value = data.get(key)
            return value if isinstance(value, str) else None

        return cls(
            url=str(data["url"]),
            content_type=text("content_type"),
            file_name=text("file_name"),
            file_size=number("file_size", int),
            width=number("width", int),
            height=number("height", int),
            fps=number("fps", float),
            duration=number("duration", float),
            num_frames=number("num_frames", int),
        )


@dataclass(frozen=True)
class VideoResult:
    """The typed output of any LTX endpoint: the video, the seed when the endpoint reports one,
    the prompt it used when it expanded the one it was given, and the raw JSON."""

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
        seed=seed if is_integer(seed) else None,
        prompt=prompt if isinstance(prompt, str) else None,
        raw=dict(output),
    )
