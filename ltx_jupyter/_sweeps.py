"""Parameter sweeps: ``--sweep FIELD=V1,V2,...`` read into axes, every combination built,
validated and priced before anything is sent (a :class:`SweepPlan`), then run as one
:class:`Sweep` of jobs under a concurrency limit, recorded in the history as a group.

An axis names an option of the magic (``guidance``: the field it sets on each endpoint, by
meaning, as :data:`._parsing.OPTIONS` says), an endpoint field (``guidance_scale``), or
``endpoint`` (one prompt on several endpoints, each sent only the fields it has). Values are
JSON (``3,5,7``; ``{"width": 704, "height": 480},...``), plain text where they are not JSON
(``480p,720p``), or ``random:N`` for N drawn seeds. The magic builds a plan from its parsed
options (:func:`plan_from_args`); the panel builds one from an endpoint, a base input and axes
(:func:`plan_sweep`). Either way a plan is the complete list of inputs and their estimates.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import copy
import itertools
import json
import random
import time
import uuid
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from ._errors import LtxError
from ._fal import split_endpoint_id
from ._listeners import Listeners
from ._parsing import (
    OPTIONS,
    FieldOption,
    RunRequest,
    build_request,
    image_target,
    set_field,
    target_field,
    usage_error,
)
from ._pricing import add_up, format_money, format_totals
from ._runner import async_wrap, wait_future
from ._schema import (
    ValidatedInput,
    lookup_schema,
    resolve_endpoint,
    short_endpoint,
    validate_with,
)
from ._text import counted

if TYPE_CHECKING:
    from ._endpoints import SchemaLookup
    from ._history import HistoryStore, SweepRecord
    from ._jobs import ConcurrencyLimit, Job, JobOptions, JobSession
    from ._openapi import EndpointSchema
    from ._pricing import Estimate
    from ._schema import VideoResult

__all__ = [
    "ENDPOINT_AXIS",
    "MAX_AXES",
    "MAX_JOBS",
    "Sweep",
    "SweepAxis",
    "SweepCell",
    "SweepPlan",
    "SweepSlot",
    "parse_axis",
    "plan_from_args",
    "plan_sweep",
    "resume_sweep",
    "start_sweep",
]

#: Axes a sweep may have: rows, columns and tabs of its grid.
MAX_AXES = 3
#: Jobs one sweep may start (a guard against a typo costing hundreds of runs).
MAX_JOBS = 256
#: The axis name that varies the endpoint.
ENDPOINT_AXIS = "endpoint"
#: The most seeds ``seed=random:N`` draws.
MAX_RANDOM_SEEDS = 64
_SEED_RANGE = 2**31 - 1
_OPTION_BY_NAME: dict[str, FieldOption] = {
    **{option.flag.lstrip("-"): option for option in OPTIONS},
    **{option.dest: option for option in OPTIONS},
}


def _error(text: str) -> UsageError:
    return UsageError(f"%ltx: --sweep {text}")


# -- axes ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepAxis:
    """One varied quantity: its name as written (an option's, a field's or ``endpoint``) and
    its values, in order."""

    name: str
    values: tuple[Any, ...]

    @property
    def option(self) -> FieldOption | None:
        """The magic's option this axis names, if it names one."""
        return _OPTION_BY_NAME.get(self.name)

    @property
    def is_endpoint(self) -> bool:
        return self.name == ENDPOINT_AXIS

    def field_on(self, schema: EndpointSchema | None) -> str | None:
        """The field this axis sets on an endpoint with ``schema`` (None: it has none)."""
        if self.is_endpoint:
            return None
        option = self.option
        if option is not None:
            return target_field(option, schema)
        if schema is None or schema.field(self.name) is not None:
            return self.name
        return None

    def field_value(self, value: Any) -> Any:
        """``value`` as the field takes it (a ``--lora`` value is one LoRA of the list)."""
        option = self.option
        if option is not None and option.dest == "lora":
            return [value]
        return value

    def label(self, value: Any) -> str:
        """``value`` as a grid heading shows it."""
        if self.is_endpoint and isinstance(value, str):
            return short_endpoint(value)
        if isinstance(value, str):
            return value
        if isinstance(value, Mapping) and set(value) == {"width", "height"}:
            return f"{value['width']}x{value['height']}"
        return json.dumps(value, ensure_ascii=False)

    def heading(self, value: Any) -> str:
        """``name = value`` for a heading or caption."""
        return f"{self.name} = {self.label(value)}"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "values": list(self.values)}


def _split_values(raw: str) -> list[str]:
    """Comma-separated values, where commas inside JSON brackets or strings do not split."""
    parts, current, depth, quoted, escaped = [], [], 0, False, False
    for char in raw:
        if quoted:
            escaped = char == "\\" and not escaped
            if char == '"' and not escaped:
                quoted = False
        elif char == '"':
            quoted = True
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return parts


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_axis(text: str, *, rng: random.Random | None = None) -> SweepAxis:
    """``FIELD=V1,V2,...`` (or ``seed=random:N``) as a :class:`SweepAxis`; a ``UsageError``
    naming the problem and the fix otherwise."""
    name, sep, raw = text.partition("=")
    name = name.strip().lstrip("-")
    if not sep or not name or not raw.strip():
        raise _error(f"takes FIELD=V1,V2,... (or seed=random:N), got {text!r}")
    if name == "prompt":
        raise _error("prompt: the prompt is the cell body, shared by every job; sweep a field")
    if name in ("param", "sweep", "out", "o", "save", "wait", "priority", "webhook", "timeout"):
        raise _error(f"{name}: only endpoint fields, options that set one, or endpoint vary")
    option = _OPTION_BY_NAME.get(name)
    if option is None and name != ENDPOINT_AXIS and not name.isidentifier():
        raise _error(f"{name!r} is not a field name")
    lowered = raw.strip().lower()
    if lowered.startswith("random:"):
        return SweepAxis(name, _random_seeds(name, lowered.partition(":")[2], rng))
    texts = _split_values(raw)
    if any(not t for t in texts):
        raise _error(f"{name}: an empty value in {raw!r}; separate values with single commas")
    if name == ENDPOINT_AXIS:
        values: list[Any] = [_endpoint_value(t) for t in texts]
    elif option is not None:
        values = [_option_value(option, name, t) for t in texts]
    else:
        values = [_json_or_text(t) for t in texts]
    seen: list[Any] = []
    for value in values:
        if value in seen:
            raise _error(f"{name}: the value {json.dumps(value)} is given twice")
        seen.append(value)
    return SweepAxis(name, tuple(values))


def _random_seeds(name: str, count_text: str, rng: random.Random | None) -> tuple[int, ...]:
    if name != "seed":
        raise _error(f"{name}=random:N: only seed takes random values (seed=random:4)")
    try:
        count = int(count_text)
    except ValueError:
        raise _error(f"seed=random:N needs a whole number N, got {count_text!r}") from None
    if not 1 <= count <= MAX_RANDOM_SEEDS:
        raise _error(f"seed=random:N draws 1 to {MAX_RANDOM_SEEDS} seeds, got {count}")
    draw = rng or random.SystemRandom()
    seeds: list[int] = []
    while len(seeds) < count:
        seed = draw.randrange(_SEED_RANGE)
        if seed not in seeds:
            seeds.append(seed)
    return tuple(seeds)


def _endpoint_value(text: str) -> str:
    value = _json_or_text(text)
    if not isinstance(value, str):
        raise _error(f"endpoint: {text!r} is not an endpoint id")
    try:
        endpoint, _ = split_endpoint_id(resolve_endpoint(value))
    except LtxError as error:
        raise _error(f"endpoint: {error}") from None
    return endpoint


def _option_value(option: FieldOption, name: str, text: str) -> Any:
    """A value for an option's axis, read as the option reads its text (``--guidance 3`` is
    3.0, ``--size 704x480`` a width and height), else as JSON or plain text."""
    if option.read is not None:
        try:
            return option.read(text)
        except (argparse.ArgumentTypeError, ValueError) as error:
            reason = str(error) or f"not a value {option.flag} takes"
            raise _error(f"{name}: {text!r}: {reason}") from None
    return _json_or_text(text)


def axis_from_json(data: Mapping[str, Any]) -> SweepAxis:
    """An axis as :meth:`SweepAxis.to_json` wrote it (the history's sweep record)."""
    return SweepAxis(str(data["name"]), tuple(data.get("values") or ()))


# -- plans ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepCell:
    """One combination of a plan: its axis values, validated input and estimate."""

    index: int
    key: tuple[Any, ...]
    input: ValidatedInput
    estimate: Estimate

    @property
    def endpoint(self) -> str:
        return self.input.endpoint_id


def _total_text(amounts: Iterable[tuple[float | None, str | None]], jobs: int) -> str:
    totals, unknown = add_up(amounts)
    text = format_totals(totals) or ("price unknown" if unknown else "$0.00")
    text += f" for {counted(jobs, 'job')}"
    if unknown and totals:
        text += f" ({unknown} with no known price)"
    return text


@dataclass(frozen=True)
class SweepPlan:
    """Every input of a sweep, validated and priced; nothing sent yet.

    ``notes`` say what the plan had to decide (a field an endpoint lacks, not sent to it).
    """

    axes: tuple[SweepAxis, ...]
    cells: tuple[SweepCell, ...]
    notes: tuple[str, ...] = ()

    def total(self) -> tuple[dict[str, float], int]:
        """The estimated total per currency, and how many cells have no known price."""
        return add_up((c.estimate.amount, c.estimate.currency) for c in self.cells)

    def total_text(self) -> str:
        """``$0.60 for 6 jobs`` (and how many have no known price)."""
        return _total_text(
            ((c.estimate.amount, c.estimate.currency) for c in self.cells), len(self.cells)
        )

    def check_budget(self, max_cost: float | None) -> None:
        """Refuse (``UsageError``) a plan whose total is over ``max_cost`` USD, or has a cell
        of unknown price while a limit is set."""
        if max_cost is None:
            return
        limit = format_money(max_cost, "USD")
        totals, unknown = self.total()
        if unknown:
            raise UsageError(
                f"%ltx: the sweep's estimate is {self.total_text()}, and LtxMagics.max_cost "
                f"is {limit}; raise or unset it (%config LtxMagics.max_cost = None) to run anyway"
            )
        total = sum(totals.values())
        if set(totals) - {"USD"} or total > max_cost:
            raise UsageError(
                f"%ltx: the sweep's total estimate is {self.total_text()}, over "
                f"LtxMagics.max_cost ({limit}); raise it with %config LtxMagics.max_cost = ... "
                "or sweep fewer values"
            )


def _adapted_first(axis: SweepAxis) -> Any:
    value = axis.values[0]
    return axis.field_value(value)


def _request_schema(args: argparse.Namespace, endpoint: str, openapi_url: str | None) -> Any:
    """The schema the request for ``endpoint`` will use (its image-to-video sibling's when an
    image is given to an endpoint that takes none), as :func:`build_request` decides."""
    lookup = lookup_schema(endpoint, url=openapi_url)
    if args.image is not None:
        lookup = (image_target(endpoint, lookup, openapi_url) or (endpoint, lookup))[1]
    return lookup.schema


def plan_from_args(
    args: argparse.Namespace,
    prompt: str,
    axes: Sequence[SweepAxis],
    *,
    session: JobSession,
    queue_url: str | None,
    default_endpoint: str,
    defaults: Mapping[str, Any],
    strict: bool = True,
    openapi_url: str | None = None,
) -> tuple[SweepPlan, RunRequest]:
    """The plan of a ``%%ltx --sweep ...`` cell, and the request of its first endpoint (which
    holds the run options: wait, ``-o``, saving...).

    Each endpoint's base input is built by :func:`build_request` from the options, with each
    axis at its first value, so options map to fields by meaning exactly as in a plain cell;
    then every combination sets its axis values and is validated and priced.
    """
    _check_axes(axes)
    endpoint_axis = next((a for a in axes if a.is_endpoint), None)
    if endpoint_axis is not None and args.endpoint:
        raise _error("endpoint=...: the endpoints are the axis; drop --endpoint")
    for axis in axes:
        option = axis.option
        if option is not None and getattr(args, option.dest, None) not in (None, []):
            raise _error(f"{axis.name}: it is swept and also given by {option.flag}; keep one")
        params = [p.partition("=")[0].strip() for p in args.param or ()]
        if axis.name in params:
            raise _error(f"{axis.name}: it is swept and also given by --param; keep one")
    endpoints = endpoint_axis.values if endpoint_axis else (args.endpoint or default_endpoint,)
    bases: dict[Any, tuple[RunRequest, SchemaLookup]] = {}
    notes: list[str] = []
    first: RunRequest | None = None
    for endpoint in endpoints:
        request = _base_request(
            args, prompt, endpoint, axes, endpoint_axis is not None, notes, openapi_url,
            default_endpoint=default_endpoint, defaults=defaults, strict=strict,
        )  # fmt: skip
        first = first or request
        bases[endpoint] = (request, lookup_schema(request.endpoint, url=openapi_url))
        notes += [w for w in request.warnings if w not in notes]
    assert first is not None
    plan = _combine(axes, bases, session=session, queue_url=queue_url, strict=strict)
    return SweepPlan(plan.axes, plan.cells, (*notes, *plan.notes)), first


def _base_request(
    args: argparse.Namespace,
    prompt: str,
    endpoint: str,
    axes: Sequence[SweepAxis],
    varies_endpoint: bool,
    notes: list[str],
    openapi_url: str | None,
    **build: Any,
) -> RunRequest:
    base = copy.copy(args)
    base.endpoint = endpoint
    base.param = list(args.param or ())
    schema = _request_schema(base, endpoint, openapi_url) if varies_endpoint else None
    shown = short_endpoint(endpoint)
    if varies_endpoint and schema is not None:
        # Each endpoint is sent only the fields it has.
        for option in OPTIONS:
            value = getattr(base, option.dest, None)
            if value not in (None, []) and target_field(option, schema) is None:
                setattr(base, option.dest, None)
                notes.append(f"{shown} has no {' or '.join(option.fields)}: {option.flag} not sent")
        kept = []
        for param in base.param:
            name = param.partition("=")[0].strip()
            if schema.field(name) is None:
                notes.append(f"{shown} has no {name}: --param {name} not sent")
            else:
                kept.append(param)
        base.param = kept
    for axis in axes:
        if axis.is_endpoint:
            continue
        if varies_endpoint and axis.field_on(schema) is None:
            notes.append(f"{shown} has no field for {axis.name}: that axis does not change it")
            continue
        option = axis.option
        if option is not None:
            setattr(base, option.dest, _adapted_first(axis))
        else:
            base.param.append(f"{axis.name}={json.dumps(axis.values[0])}")
    return build_request(base, prompt, openapi_url=openapi_url, **build)


def plan_sweep(
    session: JobSession,
    endpoint: str,
    base_input: Mapping[str, Any],
    axes: Sequence[SweepAxis],
    *,
    queue_url: str | None = None,
    strict: bool = True,
    openapi_url: str | None = None,
) -> SweepPlan:
    """The plan of a sweep given as an endpoint, a base input (endpoint fields, the prompt
    among them) and axes, as the panel's sweep row gives it. An ``endpoint`` axis replaces
    ``endpoint``; each endpoint gets the base fields it has."""
    _check_axes(axes)
    endpoint_axis = next((a for a in axes if a.is_endpoint), None)
    endpoints = endpoint_axis.values if endpoint_axis else (endpoint,)
    bases: dict[Any, tuple[Mapping[str, Any], SchemaLookup]] = {}
    notes: list[str] = []
    for value in endpoints:
        endpoint_id, _ = split_endpoint_id(resolve_endpoint(value))
        lookup = lookup_schema(endpoint_id, url=openapi_url)
        schema = lookup.schema
        arguments = dict(base_input)
        for name in list(arguments):
            if schema is not None and schema.field(name) is None and endpoint_axis is not None:
                del arguments[name]
                notes.append(f"{short_endpoint(endpoint_id)} has no {name}: not sent")
        bases[value] = (arguments, lookup)
    plan = _combine(axes, bases, session=session, queue_url=queue_url, strict=strict)
    return SweepPlan(plan.axes, plan.cells, (*notes, *plan.notes))


def _check_axes(axes: Sequence[SweepAxis]) -> None:
    if not axes:
        raise _error("needs at least one FIELD=V1,V2,...")
    if len(axes) > MAX_AXES:
        raise _error(f"takes up to {MAX_AXES} axes (rows, columns, tabs), got {len(axes)}")
    seen: set[str] = set()
    for axis in axes:
        option = axis.option
        fields = {f.split(".")[0] for f in option.fields} if option else {axis.name}
        if fields & seen:
            raise _error(f"{axis.name}: this field is swept twice; give all its values in one")
        seen |= fields
    count = 1
    for axis in axes:
        count *= len(axis.values)
    if count > MAX_JOBS:
        raise _error(f"makes {count} jobs, over the limit of {MAX_JOBS}; sweep fewer values")


def _combine(
    axes: Sequence[SweepAxis],
    bases: Mapping[Any, tuple[Any, SchemaLookup]],
    *,
    session: JobSession,
    queue_url: str | None,
    strict: bool,
) -> SweepPlan:
    """Every combination of the axes over its endpoint's base input, validated and priced."""
    cells = []
    notes: list[str] = []
    endpoint_index = next((i for i, a in enumerate(axes) if a.is_endpoint), None)
    only = next(iter(bases))
    for index, key in enumerate(itertools.product(*(axis.values for axis in axes))):
        base, lookup = bases[key[endpoint_index] if endpoint_index is not None else only]
        arguments = dict(base.arguments if isinstance(base, RunRequest) else base)
        for axis, value in zip(axes, key, strict=True):
            name = axis.field_on(lookup.schema)
            if name is not None:
                set_field(arguments, name, axis.field_value(value))
        try:
            validated = validate_with(lookup, arguments, strict=strict)
        except LtxError as error:
            where = ", ".join(axis.heading(v) for axis, v in zip(axes, key, strict=True))
            message = str(usage_error(error)).removeprefix("%ltx: ")
            raise UsageError(f"%ltx: --sweep cell {where}: {message}") from None
        notes += [w for w in validated.warnings if w not in notes and w != lookup.warning]
        estimate = session.estimate(validated, queue_url)
        cells.append(SweepCell(index, tuple(key), validated, estimate))
    return SweepPlan(tuple(axes), tuple(cells), tuple(notes))


# -- the sweep -----------------------------------------------------------------------------------


@dataclass
class SweepSlot:
    """One cell of a running (or resumed) sweep: its axis values and its job, if it was
    sent."""

    index: int
    key: tuple[Any, ...]
    endpoint: str
    input: dict[str, Any]
    job: Job | None = None
    cost: float | None = None
    currency: str | None = None
    #: Why the cell has no job (a resumed sweep's cell that was never sent).
    note: str | None = None


Listener = Callable[["Sweep", "Job"], None]


class Sweep:
    """The jobs of one sweep, by their axis values.

    ``sweep[5.0, 2]`` (or ``sweep[5.0]`` for one axis, or ``sweep.job(guidance=5.0, seed=2)``)
    is a cell's :class:`~._jobs.Job`; ``wait()`` and ``await sweep`` wait for all of them,
    ``cancel()`` cancels every one not ended, ``results`` maps axis values to results and
    ``records()`` gives one dict per job (axis values, status, seed, url, duration, cost),
    ready for a table.
    """

    def __init__(
        self,
        sweep_id: str,
        axes: Sequence[SweepAxis],
        slots: Sequence[SweepSlot],
        *,
        notes: Sequence[str] = (),
        created_at: float | None = None,
    ) -> None:
        self.id = sweep_id
        self.axes = tuple(axes)
        self.slots = list(slots)
        self.notes = tuple(notes)
        self.created_at = created_at if created_at is not None else time.time()
        self._listeners: Listeners[Listener] = Listeners()
        for slot in self.slots:
            if slot.job is not None:
                slot.job.add_listener(self._job_changed)

    # -- reading ---------------------------------------------------------------------------

    @property
    def keys(self) -> list[tuple[Any, ...]]:
        """Every cell's axis values, in grid order."""
        return [slot.key for slot in self.slots]

    @property
    def jobs(self) -> dict[tuple[Any, ...], Job]:
        """The jobs by axis values (cells never sent are absent)."""
        return {slot.key: slot.job for slot in self.slots if slot.job is not None}

    def __len__(self) -> int:
        return len(self.slots)

    def _slot(self, key: Any) -> SweepSlot:
        wanted = key if isinstance(key, tuple) else (key,)
        for slot in self.slots:
            if slot.key == wanted:
                return slot
        axes = ", ".join(a.name for a in self.axes)
        raise KeyError(f"no cell {wanted!r} in sweep {self.id} (axes: {axes})")

    def __getitem__(self, key: Any) -> Job | None:
        return self._slot(key).job

    def job(self, **values: Any) -> Job | None:
        """The job of the cell with these axis values (by axis name)."""
        names = [axis.name for axis in self.axes]
        if sorted(values) != sorted(names):
            raise KeyError(f"give a value for each axis: {', '.join(names)}")
        return self[tuple(values[name] for name in names)]

    @property
    def done(self) -> bool:
        """Whether every job has ended."""
        return all(slot.job is None or slot.job.done for slot in self.slots)

    @property
    def results(self) -> dict[tuple[Any, ...], VideoResult | None]:
        """Each cell's result (None until it completed, or if it failed)."""
        return {slot.key: slot.job.result if slot.job else None for slot in self.slots}

    def counts(self) -> dict[str, int]:
        """How many cells are in each status (``not sent`` for cells without a job)."""
        counts: dict[str, int] = {}
        for slot in self.slots:
            status = str(slot.job.status) if slot.job is not None else "not sent"
            counts[status] = counts.get(status, 0) + 1
        return counts

    def total_text(self) -> str:
        """The estimated total, as the dry run showed it."""
        return _total_text(((s.cost, s.currency) for s in self.slots), len(self.slots))

    def status_line(self) -> str:
        """One line: the sweep's id, its shape and where its jobs are."""
        shape = " × ".join(f"{len(a.values)} {a.name}" for a in self.axes)
        order = ("completed", "running", "queued", "submitting", "waiting", "failed")
        counts = self.counts()
        ordered = [s for s in order if s in counts] + [s for s in counts if s not in order]
        parts = ", ".join(f"{counts[s]} {s}" for s in ordered)
        return f"ltx {self.id} · {shape} · {parts} · est. {self.total_text()}"

    def __repr__(self) -> str:
        return f"<Sweep {self.status_line()}>"

    def records(self) -> list[dict[str, Any]]:
        """One dict per cell: its axis values (by axis name), then ``status``, ``seed``,
        ``url``, ``duration`` (seconds from submit to end), ``cost``, ``currency``,
        ``request_id``, ``endpoint`` and ``error``."""
        rows = []
        for slot in self.slots:
            row: dict[str, Any] = {
                axis.name: value for axis, value in zip(self.axes, slot.key, strict=True)
            }
            job = slot.job
            result = job.result if job is not None else None
            seed = result.seed if result is not None else None
            if seed is None:
                seed = slot.input.get("seed")
            duration = None
            if job is not None and job.finished_at is not None:
                duration = job.finished_at - (job.submitted_at or job.created_at)
            row.update(
                status=str(job.status) if job is not None else "not sent",
                seed=seed,
                url=result.url if result is not None else None,
                duration=round(duration, 3) if duration is not None else None,
                cost=slot.cost,
                currency=slot.currency,
                request_id=job.request_id if job is not None else None,
                endpoint=slot.endpoint,
                error=str(job.error) if job is not None and job.error is not None else None,
            )
            rows.append(row)
        return rows

    # -- listening -------------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(sweep, job)`` (on the runner thread) after any change of a job."""
        self._listeners.add(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    def _job_changed(self, job: Job) -> None:
        for listener in self._listeners:
            listener(self, job)

    # -- acting ----------------------------------------------------------------------------

    def cancel(self) -> list[Job]:
        """Cancel every job not ended yet (waiting ones are then never sent); returns them."""
        running = [s.job for s in self.slots if s.job is not None and not s.job.done]
        for job in running:
            job.cancel()
        return running

    def _futures(self) -> list[concurrent.futures.Future[Any]]:
        return [s.job._future for s in self.slots if s.job is not None and s.job._future]

    def wait(self, timeout: float | None = None) -> dict[tuple[Any, ...], VideoResult | None]:
        """Block until every job has ended; returns :attr:`results` (failed cells give None;
        their jobs keep their errors). An interrupt cancels the whole sweep and is raised
        again; ``timeout`` only bounds this wait (``TimeoutError``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            for future in self._futures():
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    wait_future(future, left)
                except KeyboardInterrupt:
                    raise
                except BaseException:
                    if not future.done():
                        raise  # this wait's own timeout
                    # Otherwise the job's own error, which the job keeps.
        except KeyboardInterrupt:
            self.cancel()
            raise
        return self.results

    def __await__(self) -> Generator[Any, None, dict[tuple[Any, ...], VideoResult | None]]:
        return self._await_all().__await__()

    async def _await_all(self) -> dict[tuple[Any, ...], VideoResult | None]:
        await asyncio.gather(*(async_wrap(f) for f in self._futures()), return_exceptions=True)
        return self.results


def new_sweep_id() -> str:
    """A fresh sweep id: ``sweep-`` and 12 hex digits."""
    return f"sweep-{uuid.uuid4().hex[:12]}"


def start_sweep(
    plan: SweepPlan,
    session: JobSession,
    options: JobOptions,
    *,
    limit: ConcurrencyLimit | None,
    queue_url: str | None = None,
    storage_url: str | None = None,
) -> Sweep:
    """Record the sweep in the history, then start every cell's job (each waits its turn
    under ``limit``); returns at once."""
    sweep_id = new_sweep_id()
    created_at = time.time()
    history = session.history
    history.record_sweep(
        sweep_id,
        [axis.to_json() for axis in plan.axes],
        [
            {
                "key": list(cell.key),
                "endpoint": cell.endpoint,
                "input": cell.input.arguments,
                "cost": cell.estimate.amount,
                "currency": cell.estimate.currency,
            }
            for cell in plan.cells
        ],
        queue_url,
        created_at=created_at,
    )
    slots = []
    for cell in plan.cells:
        job = session.start(
            cell.endpoint,
            cell.input,
            options,
            queue_url=queue_url,
            storage_url=storage_url,
            estimate=cell.estimate,
            limit=limit,
        )
        _link_when_submitted(history, sweep_id, cell.index, job)
        slots.append(
            SweepSlot(
                cell.index,
                cell.key,
                cell.endpoint,
                dict(cell.input.arguments),
                job,
                cell.estimate.amount,
                cell.estimate.currency,
            )
        )
    return Sweep(sweep_id, plan.axes, slots, notes=plan.notes, created_at=created_at)


def _link_when_submitted(history: HistoryStore, sweep_id: str, cell: int, job: Job) -> None:
    """Write the cell's request id to the sweep's record once its submit has answered."""

    def on_change(changed: Job) -> None:
        if changed.request_id is None:
            if changed.done:
                changed.remove_listener(on_change)
            return
        changed.remove_listener(on_change)
        # On failure the request's own line is still in the journal: resume matches it by input.
        with contextlib.suppress(OSError):
            history.record_sweep_job(sweep_id, cell, changed.request_id)

    job.add_listener(on_change)


def resume_sweep(
    record: SweepRecord,
    session: JobSession,
    *,
    queue_url: str | None = None,
    storage_url: str | None = None,
    options: JobOptions | None = None,
) -> Sweep:
    """Follow again every request a recorded sweep sent (after a kernel restart); cells never
    sent come back without a job, saying so."""
    axes = [axis_from_json(a) for a in record.axes]
    request_ids = dict(record.request_ids)
    unlinked = [i for i in range(len(record.cells)) if i not in request_ids]
    if unlinked:
        request_ids.update(_match_unlinked(record, unlinked, session.history))
    slots = []
    for index, cell in enumerate(record.cells):
        key = tuple(cell.get("key") or ())
        endpoint = str(cell.get("endpoint") or "")
        slot = SweepSlot(
            index,
            key,
            endpoint,
            dict(cell.get("input") or {}),
            cost=cell.get("cost") if isinstance(cell.get("cost"), (int, float)) else None,
            currency=cell.get("currency") if isinstance(cell.get("currency"), str) else None,
        )
        request_id = request_ids.get(index)
        if request_id is None:
            slot.note = "never sent (the kernel stopped before its turn)"
        else:
            slot.job = session.resume(
                request_id,
                endpoint=endpoint,
                queue_url=record.queue_url or queue_url,
                storage_url=storage_url,
                options=options,
            )
        slots.append(slot)
    created = record.created_at.timestamp() if record.created_at else None
    return Sweep(record.sweep_id, axes, slots, created_at=created)


def _match_unlinked(record: SweepRecord, cells: list[int], history: HistoryStore) -> dict[int, str]:
    """Requests of the sweep whose link line was lost (the kernel died between the submit's
    answer and the link): found by endpoint and input among requests submitted after the
    sweep started and linked to no cell."""
    linked = set(record.request_ids.values())
    since = record.created_at or datetime.fromtimestamp(0, timezone.utc)
    candidates = [
        e
        for e in reversed(history.entries())
        if e.request_id not in linked and e.submitted_at is not None and e.submitted_at >= since
    ]
    found: dict[int, str] = {}
    for index in cells:
        cell = record.cells[index]
        for entry in candidates:
            if entry.endpoint == cell.get("endpoint") and entry.input == cell.get("input"):
                found[index] = entry.request_id
                candidates.remove(entry)
                break
    return found
