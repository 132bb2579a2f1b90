"""What an engine is: it turns one request's input into output files and JSON, knowing no HTTP.

The server hands an engine an :class:`EngineTask` (the input, a log callback, a cancel flag, an
output directory) and runs :meth:`Engine.run` on a worker thread. The engine logs as it goes,
checks :meth:`EngineTask.cancelled` between steps and raises :class:`EngineCancelled` when it
is set, and returns an :class:`EngineOutput`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..._errors import FieldError
from ..._openapi import EndpointSchema
from ..._schema import TEXT_TO_VIDEO, check_input, is_integer, is_number, lookup_schema

__all__ = [
    "Engine",
    "EngineCancelled",
    "EngineError",
    "EngineOutput",
    "EngineTask",
    "endpoint_defaults",
    "random_seed",
    "range_error",
    "shared_field_errors",
]

_SHARED_FIELDS = ("prompt", "negative_prompt", "seed")
_SEEDS = random.Random()


def random_seed() -> int:
    """A seed for a request that named none. The engines draw from a generator of their own:
    a server running inside a kernel must not shift the sequence of a user who seeded
    ``random``."""
    return _SEEDS.randrange(2**31)


def _seed_schema() -> EndpointSchema:
    """The seed's text-to-video schema: the fields every LTX endpoint shares."""
    lookup = lookup_schema(TEXT_TO_VIDEO, fetch=False)
    assert lookup.schema is not None, "the package ships the seed endpoint's document"
    return lookup.schema


def endpoint_defaults(endpoint_id: str) -> dict[str, Any]:
    """Defaults for an endpoint the server has no document for: the seed's (an endpoint with a
    document gets its own defaults in the task's input), so engines keep none of their own."""
    return _seed_schema().defaults()


def shared_field_errors(data: Mapping[str, Any]) -> list[FieldError]:
    """For an endpoint the server has no document for: the fields every LTX endpoint shares
    (the prompt, required; the negative prompt; the seed), checked by the seed schema's
    rules."""
    shared = {name: data.get(name) for name in _SHARED_FIELDS}
    return check_input(TEXT_TO_VIDEO, shared, schema=_seed_schema(), allow_files=False)


def range_error(
    name: str, value: Any, low: float, high: float, *, integer: bool, even: bool = False
) -> FieldError | None:
    """The error of an engine's numeric field outside ``low..high`` (or not a number), else None."""
    loc = ("body", name)
    kind = "an even integer" if even else ("an integer" if integer else "a number")
    allowed = f"{kind} from {low:g} to {high:g}"
    if integer and not is_integer(value):
        return FieldError(loc, f"must be {allowed}, got {value!r}", "int_type")
    if not integer and not is_number(value):
        return FieldError(loc, f"must be {allowed}, got {value!r}", "float_type")
    if value < low:
        return FieldError(loc, f"must be {allowed}, got {value!r}", "greater_than_equal")
    if value > high:
        return FieldError(loc, f"must be {allowed}, got {value!r}", "less_than_equal")
    if even and value % 2:
        return FieldError(loc, f"must be {allowed}, got {value!r}", "value_error")
    return None


class EngineCancelled(Exception):
    """Raised by an engine that saw :meth:`EngineTask.cancelled` and stopped."""


class EngineError(Exception):
    """A run failed for a reason worth showing the user; ``error_type`` goes on the wire."""

    def __init__(self, message: str, *, error_type: str = "internal_error") -> None:
        super().__init__(message)
        self.error_type = error_type


@dataclass
class EngineOutput:
    """The endpoint's output JSON, and the names of the files written to the output directory."""

    output: dict[str, Any]
    files: list[str] = field(default_factory=list)


class EngineTask(Protocol):
    """One request as an engine sees it."""

    @property
    def request_id(self) -> str: ...

    @property
    def endpoint_id(self) -> str: ...

    @property
    def input(self) -> dict[str, Any]:
        """The request's input JSON over the endpoint's defaults, as the endpoint runs it (a
        private copy)."""
        ...

    @property
    def output_dir(self) -> Path:
        """An existing directory for this request's output files."""
        ...

    def log(self, message: str, level: str = "INFO") -> None:
        """Append a log line to the request (thread-safe; streamed to clients at once)."""
        ...

    def cancelled(self) -> bool:
        """True once the request was asked to cancel; the engine should stop soon after."""
        ...

    def file_url(self, name: str) -> str:
        """The URL at which the server serves ``output_dir / name``."""
        ...

    def read_local_file(self, url: str) -> bytes | None:
        """The bytes behind ``url`` if it is a file this server stores, else None."""
        ...


@runtime_checkable
class Engine(Protocol):
    """A video engine: a name, an input check run before queueing, and a blocking run."""

    name: str

    def validate(self, endpoint_id: str, data: Mapping[str, Any]) -> list[FieldError]:
        """Field errors the engine finds in ``data`` beyond the endpoint schema's own checks."""
        ...

    def run(self, task: EngineTask) -> EngineOutput:
        """Produce the output; runs on a worker thread and may block for a long time."""
        ...
