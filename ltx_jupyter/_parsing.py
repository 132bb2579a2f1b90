"""``%%ltx`` cells, both ways: parsing a magic line into an endpoint input and run options,
and writing the cell that gives back a given input (:func:`magic_cell`).

Lines are split with POSIX ``shlex`` (IPython's own splitter keeps quote characters), then
parsed by the magic's argparse parser. Every mistake becomes a one-line ``UsageError`` that
names the option and the fix, raised before any request is sent.
"""

from __future__ import annotations

import argparse
import json
import keyword
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError

from ._errors import InputError, LtxError
from ._fal import split_endpoint_id
from ._schema import (
    IMAGE_TO_VIDEO,
    TEXT_TO_VIDEO,
    ValidatedInput,
    endpoint_spec,
    validate_input,
)

__all__ = [
    "OPTION_FOR_FIELD",
    "RunRequest",
    "build_request",
    "magic_cell",
    "split_line",
    "usage_error",
]

#: The magic's option for each endpoint field, so that errors name what the user typed.
OPTION_FOR_FIELD = {
    "prompt": "the prompt",
    "negative_prompt": "--negative",
    "num_inference_steps": "--steps",
    "guidance_scale": "--guidance",
    "seed": "--seed",
    "image_url": "--image",
    "endpoint": "--endpoint",
    "priority": "--priority",
    "webhook": "--webhook",
}


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
            option = OPTION_FOR_FIELD.get(field_error.field)
            if option is None:
                where = f"--param {field_error.field}"
            elif option.startswith("--") and field_error.field not in (
                "endpoint",
                "priority",
                "webhook",
            ):
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


def build_request(
    args: argparse.Namespace,
    prompt: str,
    *,
    default_endpoint: str,
    defaults: Mapping[str, Any],
) -> RunRequest:
    """Turn parsed options and the prompt into a validated :class:`RunRequest`.

    ``defaults`` are configured field values (steps, guidance, negative prompt) applied
    under the options. The endpoint's own defaults are filled in for known endpoints, so the
    recorded parameters say exactly what ran.
    """
    prompt = prompt.strip()
    if not prompt:
        raise UsageError(
            "%ltx: the prompt is empty; write it in the cell body under %%ltx "
            "(or after the options of a one-line %ltx)"
        )
    try:
        endpoint, _ = split_endpoint_id(
            args.endpoint or (IMAGE_TO_VIDEO if args.image else default_endpoint)
        )
    except LtxError as error:
        raise usage_error(error) from None
    if args.image and endpoint == TEXT_TO_VIDEO:
        raise UsageError(
            f"%ltx: --image needs an image-to-video endpoint, not {TEXT_TO_VIDEO}; "
            f"use --endpoint {IMAGE_TO_VIDEO} or leave --endpoint out"
        )
    spec = endpoint_spec(endpoint)
    arguments: dict[str, Any] = dict(spec.defaults()) if spec else {}
    arguments.update({k: v for k, v in defaults.items() if v is not None})
    explicit = {
        "prompt": prompt,
        "negative_prompt": args.negative,
        "num_inference_steps": args.steps,
        "guidance_scale": args.guidance,
        "seed": args.seed,
        "image_url": args.image,
    }
    params = dict(_parse_param(p) for p in args.param or ())
    for name in params:
        if explicit.get(name) is not None and name != "prompt":
            raise UsageError(
                f"%ltx: {name} is given twice, by {OPTION_FOR_FIELD[name]} and --param"
            )
    if "prompt" in params:
        raise UsageError("%ltx: the prompt is the cell body; do not pass it with --param")
    arguments.update(params)
    arguments.update({k: v for k, v in explicit.items() if v is not None})
    if args.out is not None and (not args.out.isidentifier() or keyword.iskeyword(args.out)):
        raise UsageError(f"%ltx: -o/--out needs a Python variable name, got {args.out!r}")
    if args.timeout is not None and not args.timeout > 0:
        raise UsageError(
            f"%ltx: --timeout must be a positive number of seconds, got {args.timeout}"
        )
    try:
        # Here, not only in the session: the errors then name the magic's options.
        validated = validate_input(endpoint, arguments)
    except LtxError as error:
        raise usage_error(error) from None
    return RunRequest(
        input=validated,
        wait=args.wait,
        out=args.out,
        save_dir=args.save,
        embed=bool(args.embed),
        timeout=args.timeout,
        priority=args.priority,
        webhook_url=args.webhook,
    )


def magic_cell(endpoint: str, arguments: Mapping[str, Any]) -> str:
    """The ``%%ltx`` cell that submits exactly ``arguments`` to ``endpoint``.

    Every field is written out (so the magic's configured defaults cannot change the input),
    values are quoted with :func:`shlex.quote`, fields without an option of their own (and
    values an option would not give back unchanged) go as ``--param NAME=JSON``, and the
    prompt is the literal cell body. :func:`build_request` on the cell gives back the input.
    """
    words = ["%%ltx", "--endpoint", shlex.quote(endpoint)]
    for name, value in arguments.items():
        if name == "prompt" or value is None:
            continue
        option = OPTION_FOR_FIELD.get(name, "")
        if option.startswith("--") and _option_keeps(name, value):
            text = repr(value) if isinstance(value, float) else str(value)
            # "--negative=-text" keeps argparse from reading a leading "-" as an option.
            joiner = "=" if text.startswith("-") else " "
            words.append(f"{option}{joiner}{shlex.quote(text)}")
        else:
            # JSON writes a line break as "\n", so the value stays on the magic's line.
            words += ["--param", shlex.quote(f"{name}={json.dumps(value)}")]
    prompt = arguments.get("prompt")
    return " ".join(words) + "\n" + (prompt if isinstance(prompt, str) else "")


def _option_keeps(name: str, value: Any) -> bool:
    """Whether the magic's option for ``name`` parses ``value`` back to an equal, same-typed
    value (``--guidance`` reads floats, ``--seed`` and ``--steps`` ints, the rest one-line
    text)."""
    if name == "guidance_scale":
        return isinstance(value, float)
    if name in ("seed", "num_inference_steps"):
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, str) and "\n" not in value and "\r" not in value
