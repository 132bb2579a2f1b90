"""``%%ltx`` cells, both ways: parsing a magic line into an endpoint input and run options,
and writing the cell that gives back a given input (:func:`magic_cell`).

Lines are split with POSIX ``shlex`` (IPython's own splitter keeps quote characters), then
parsed by the magic's argparse parser. Named options set fields by meaning on every endpoint
that has the field (:data:`OPTIONS`: ``--fps`` is ``fps`` or ``frame_rate``, whichever the
endpoint has); ``--param NAME=JSON`` sets any other. Every mistake becomes a one-line
``UsageError`` that names the option and the fix, raised before any request is sent.
"""

from __future__ import annotations

import argparse
import json
import keyword
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from ._errors import InputError, LtxError
from ._fal import split_endpoint_id
from ._schema import (
    ValidatedInput,
    image_sibling,
    lookup_schema,
    resolve_endpoint,
    validate_with,
)

if TYPE_CHECKING:
    from ._endpoints import SchemaLookup
    from ._openapi import EndpointSchema

__all__ = [
    "FIELD_OF_SETTING",
    "OPTIONS",
    "FieldOption",
    "RunRequest",
    "build_request",
    "image_target",
    "magic_cell",
    "option_for_field",
    "parse_lora",
    "parse_number",
    "parse_size",
    "set_field",
    "split_line",
    "target_field",
    "usage_error",
]


# -- option values -------------------------------------------------------------------------------

_SIZE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")
_PRESET = re.compile(r"^[a-z][a-z0-9_]*$")


def parse_number(text: str) -> int | float:
    """An option's number: an int when it is written as one (``8``), else a float (``7.5``)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def parse_size(text: str) -> dict[str, int] | str:
    """``--size``: ``WIDTHxHEIGHT`` (``{"width", "height"}``) or a preset name."""
    match = _SIZE.match(text)
    if match:
        return {"width": int(match.group(1)), "height": int(match.group(2))}
    if _PRESET.match(text):
        return text
    raise argparse.ArgumentTypeError(
        f"expected WIDTHxHEIGHT (704x480) or a preset name (landscape_16_9), got {text!r}"
    )


def parse_lora(text: str) -> dict[str, Any]:
    """``--lora PATH[:SCALE]``: a LoRA weight (``{"path", "scale"}``); a URL's own colons stay
    in the path, only a number after the last colon is a scale."""
    path, sep, tail = text.rpartition(":")
    if sep and path:
        try:
            scale = float(tail)
        except ValueError:
            pass
        else:
            return {"path": path, "scale": int(scale) if tail.isdigit() else scale}
    if not text.strip():
        raise argparse.ArgumentTypeError("expected PATH[:SCALE], got an empty value")
    return {"path": text}


@dataclass(frozen=True)
class FieldOption:
    """A named option of the magic and the endpoint fields it sets, the first one the endpoint
    has (a dotted name sets a field of an object field: ``video.video_url``)."""

    flag: str
    dest: str
    fields: tuple[str, ...]
    #: Writes a field value back as the option's text (None: the option cannot express it).
    write: Callable[[Any], str | None]
    #: How the option's text is read (the argparse ``type``); None for plain text.
    read: Callable[[str], Any] | None = None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and "\n" not in value and "\r" not in value else None


def _int(value: Any) -> str | None:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: Any) -> str | None:
    return repr(value) if isinstance(value, float) else None


def _number(value: Any) -> str | None:
    return _int(value) or (repr(value) if isinstance(value, float) else None)


def _size(value: Any) -> str | None:
    if isinstance(value, Mapping) and set(value) == {"width", "height"}:
        width, height = value["width"], value["height"]
        if _int(width) and _int(height) and width >= 0 and height >= 0:
            return f"{width}x{height}"
    return value if isinstance(value, str) and _PRESET.match(value) else None


def _lora(value: Any) -> str | None:
    if not isinstance(value, Mapping) or not isinstance(value.get("path"), str):
        return None
    extra = set(value) - {"path", "scale"}
    scale = value.get("scale")
    if extra or _text(value["path"]) is None:
        return None
    if scale is None:
        return value["path"] if "scale" not in value else None
    written = _number(scale)
    return f"{value['path']}:{written}" if written is not None else None


#: The magic's named options and the fields they set. The prompt is the cell body.
OPTIONS: tuple[FieldOption, ...] = (
    FieldOption("--negative", "negative", ("negative_prompt",), _text),
    FieldOption("--seed", "seed", ("seed",), _int, int),
    FieldOption("--steps", "steps", ("num_inference_steps",), _int, int),
    FieldOption("--guidance", "guidance", ("guidance_scale",), _float, float),
    FieldOption("--resolution", "resolution", ("resolution",), _text),
    FieldOption("--aspect-ratio", "aspect_ratio", ("aspect_ratio",), _text),
    FieldOption("--duration", "duration", ("duration",), _number, parse_number),
    FieldOption("--frames", "frames", ("num_frames",), _int, int),
    FieldOption("--fps", "fps", ("fps", "frame_rate"), _number, parse_number),
    FieldOption("--size", "size", ("video_size",), _size, parse_size),
    FieldOption("--audio", "audio", ("generate_audio",), lambda v: None),
    FieldOption("--lora", "lora", ("loras",), lambda v: None, parse_lora),
    FieldOption("--image", "image", ("image_url",), _text),
    FieldOption("--end-image", "end_image", ("end_image_url",), _text),
    FieldOption("--video", "video", ("video_url", "video.video_url"), _text),
    FieldOption("--audio-file", "audio_file", ("audio_url",), _text),
)
_OPTION_OF_FIELD = {name.split(".")[0]: option for option in OPTIONS for name in option.fields}
#: The endpoint field each configured default (``LtxMagics.steps``, the panel's ``steps=``)
#: fills in.
FIELD_OF_SETTING = {
    "steps": "num_inference_steps",
    "guidance": "guidance_scale",
    "negative_prompt": "negative_prompt",
}
#: Words that name a run option rather than a field, in errors.
_RUN_OPTIONS = {"endpoint": "--endpoint", "priority": "--priority", "webhook": "--webhook"}


def option_for_field(name: str) -> str | None:
    """The magic's option that sets the field ``name`` (``frame_rate`` → ``--fps``), if any."""
    if name == "prompt":
        return "the prompt"
    option = _OPTION_OF_FIELD.get(name.split(".")[0])
    return option.flag if option is not None else _RUN_OPTIONS.get(name)


# -- parsing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunRequest:
    """What one ``%%ltx`` asks for: the validated endpoint input and how to run and show it."""

    input: ValidatedInput
    wait: bool | None = None
    out: str | None = None
    save_dir: str | None = None
    embed: bool = False
    timeout: float | None = None
    priority: str | None = None
    webhook_url: str | None = None
    dry_run: bool = False

    @property
    def endpoint(self) -> str:
        return self.input.endpoint_id

    @property
    def arguments(self) -> dict[str, Any]:
        return self.input.arguments

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.input.warnings


def split_line(line: str) -> list[str]:
    """POSIX shell-style words of a magic line; unbalanced quotes are a ``UsageError``."""
    try:
        return shlex.split(line, posix=True)
    except ValueError as error:
        raise UsageError(f"%ltx: cannot parse the options ({error}); check the quotes") from None


def usage_error(error: LtxError) -> UsageError:
    """A one-line ``UsageError`` for an input error, naming the magic's options."""
    if isinstance(error, InputError):
        parts = []
        for field_error in error.errors:
            option = option_for_field(field_error.field)
            if option is None:
                where = f"--param {field_error.field}"
            elif option.startswith("--") and field_error.field not in _RUN_OPTIONS:
                where = f"{option} ({field_error.field})"
            else:
                where = option
            parts.append(f"{where}: {field_error.msg}")
        return UsageError("%ltx: " + "; ".join(parts))
    return UsageError(f"%ltx: {error}")


def _parse_param(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise UsageError(f"%ltx: --param takes NAME=VALUE, got {text!r}")
    if not name.isidentifier():
        raise UsageError(f"%ltx: --param name {name!r} is not a field name")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw  # plain text needs no JSON quotes: --param resolution=720p
    return name, value


def _endpoint_fields(schema: EndpointSchema) -> str:
    return ", ".join(schema.field_names)


def target_field(option: FieldOption, schema: EndpointSchema | None) -> str | None:
    """The field ``option`` sets on the endpoint: the first it has; without a schema, the
    option's first field (nothing can be checked)."""
    if schema is None:
        return option.fields[0]
    for name in option.fields:
        head, _, tail = name.partition(".")
        spec = schema.field(head)
        if spec is not None and (not tail or spec.field(tail) is not None):
            return name
    return None


def set_field(arguments: dict[str, Any], name: str, value: Any) -> None:
    """Set the field ``name`` of ``arguments``; a dotted name sets a field of an object field."""
    head, _, tail = name.partition(".")
    if tail:
        arguments[head] = {**(arguments.get(head) or {}), tail: value}
    else:
        arguments[name] = value


def _option_values(args: argparse.Namespace) -> list[tuple[FieldOption, Any]]:
    given = []
    for option in OPTIONS:
        value = getattr(args, option.dest, None)
        if value is None or value == []:
            continue
        given.append((option, value))
    return given


def image_target(
    endpoint: str, lookup: SchemaLookup, openapi_url: str | None
) -> tuple[str, SchemaLookup] | None:
    """Where a request for ``endpoint`` given an image goes, with its schema: the endpoint
    itself when it takes one (or its schema is unknown), else its family's image-to-video
    endpoint; None when it has none."""
    if lookup.schema is None or lookup.schema.field("image_url") is not None:
        return endpoint, lookup
    sibling = image_sibling(endpoint)
    return (sibling, lookup_schema(sibling, url=openapi_url)) if sibling is not None else None


def build_request(
    args: argparse.Namespace,
    prompt: str,
    *,
    default_endpoint: str,
    defaults: Mapping[str, Any],
    strict: bool = True,
    openapi_url: str | None = None,
) -> RunRequest:
    """Turn parsed options and the prompt into a validated :class:`RunRequest`.

    ``defaults`` are configured field values (steps, guidance, negative prompt) applied under
    the options where the endpoint has the field. ``--image`` with an endpoint that takes no
    image picks its family's image-to-video endpoint. ``strict=False`` makes a field the
    endpoint does not have a warning instead of an error. ``openapi_url`` is where a schema
    neither shipped nor cached is fetched from (default: beside ``LTX_QUEUE_URL``).
    """
    prompt = prompt.strip()
    if not prompt:
        raise UsageError(
            "%ltx: the prompt is empty; write it in the cell body under %%ltx "
            "(or after the options of a one-line %ltx)"
        )
    notes: list[str] = []
    try:
        endpoint, _ = split_endpoint_id(resolve_endpoint(args.endpoint or default_endpoint))
    except LtxError as error:
        raise usage_error(error) from None
    lookup = lookup_schema(endpoint, url=openapi_url)
    if args.image is not None:
        target = image_target(endpoint, lookup, openapi_url)
        if target is None:
            raise UsageError(
                f"%ltx: --image: {endpoint} takes no image and has no image-to-video "
                "endpoint in its family; choose one with --endpoint (%ltx endpoints lists them)"
            )
        if target[0] != endpoint:
            notes.append(f"--image: using {target[0]}, the image-to-video endpoint of {endpoint}")
            endpoint, lookup = target
    schema = lookup.schema

    arguments: dict[str, Any] = {}
    if schema is not None:
        arguments.update(
            {k: v for k, v in defaults.items() if v is not None and schema.field(k) is not None}
        )
    params = dict(_parse_param(p) for p in args.param or ())
    if "prompt" in params:
        raise UsageError("%ltx: the prompt is the cell body; do not pass it with --param")
    explicit: dict[str, Any] = {"prompt": prompt}
    for option, value in _option_values(args):
        name = target_field(option, schema)
        if name is None:
            assert schema is not None
            raise UsageError(
                f"%ltx: {option.flag}: {endpoint} has no {' or '.join(option.fields)} field; "
                f"its fields are {_endpoint_fields(schema)}"
            )
        if name.split(".")[0] in params:
            raise UsageError(
                f"%ltx: {name.split('.')[0]} is given twice, by {option.flag} and --param"
            )
        set_field(explicit, name, value)
    arguments.update(params)
    arguments.update(explicit)

    if args.out is not None and (not args.out.isidentifier() or keyword.iskeyword(args.out)):
        raise UsageError(f"%ltx: -o/--out needs a Python variable name, got {args.out!r}")
    if args.timeout is not None and not args.timeout > 0:
        raise UsageError(
            f"%ltx: --timeout must be a positive number of seconds, got {args.timeout}"
        )
    try:
        # Here, not only in the session: the errors then name the magic's options.
        validated = validate_with(lookup, arguments, strict=strict)
    except LtxError as error:
        raise usage_error(error) from None
    if notes:
        validated = ValidatedInput(
            validated.endpoint_id,
            validated.arguments,
            (*notes, *validated.warnings),
            validated.schema,
        )
    return RunRequest(
        input=validated,
        wait=args.wait,
        out=args.out,
        save_dir=args.save,
        embed=bool(args.embed),
        timeout=args.timeout,
        priority=args.priority,
        webhook_url=args.webhook,
        dry_run=bool(getattr(args, "dry_run", False)),
    )


# -- writing a cell ------------------------------------------------------------------------------


def magic_cell(endpoint: str, arguments: Mapping[str, Any]) -> str:
    """The ``%%ltx`` cell that submits exactly ``arguments`` to ``endpoint``.

    Every field is written out (so the magic's configured defaults cannot change the input),
    named options where the endpoint has their field and the option gives the value back
    unchanged (same value, same type), ``--param NAME=JSON`` for the rest; values are quoted
    with :func:`shlex.quote` and the prompt is the literal cell body. :func:`build_request` on
    the cell gives back the input.
    """
    schema = lookup_schema(endpoint).schema
    words = ["%%ltx", "--endpoint", shlex.quote(endpoint)]
    for name, value in arguments.items():
        if name == "prompt" or value is None:
            continue
        words += _field_words(name, value, schema)
    prompt = arguments.get("prompt")
    return " ".join(words) + "\n" + (prompt if isinstance(prompt, str) else "")


def _field_words(name: str, value: Any, schema: EndpointSchema | None) -> list[str]:
    option = _OPTION_OF_FIELD.get(name)
    if option is not None:
        target = target_field(option, schema)
        if target == name:
            written = _option_words(option, value)
            if written is not None:
                return written
        elif target is not None and target.startswith(name + "."):
            inner = target.partition(".")[2]
            if isinstance(value, Mapping) and set(value) == {inner}:
                written = _option_words(option, value[inner])
                if written is not None:
                    return written
    # JSON writes a line break as "\n", so the value stays on the magic's line.
    return ["--param", shlex.quote(f"{name}={json.dumps(value)}")]


def _option_words(option: FieldOption, value: Any) -> list[str] | None:
    if option.dest == "audio":
        return ["--audio" if value else "--no-audio"] if isinstance(value, bool) else None
    if option.dest == "lora":
        if not isinstance(value, list) or not value:
            return None
        texts = [_lora(item) for item in value]
        if any(t is None or parse_lora(t) != item for t, item in zip(texts, value, strict=True)):
            return None
        return [w for text in texts for w in (option.flag, shlex.quote(str(text)))]
    text = option.write(value)
    if text is None:
        return None
    if option.read is not None:
        try:
            back = option.read(text)
        except (argparse.ArgumentTypeError, ValueError):
            return None
        if back != value or type(back) is not type(value):
            return None
    # "--negative=-text" keeps argparse from reading a leading "-" as an option.
    joiner = "=" if text.startswith("-") else " "
    return [f"{option.flag}{joiner}{shlex.quote(text)}"]
