"""The panel's sweep row: one job per value of a field (up to three fields), over the panel's
current input, validated and priced live, run under the session's concurrency limit; the grid
appears under the panel.

Each axis is a field of the chosen endpoint (or ``endpoint``: one input on several
endpoints) and its values typed as a comma list, read as ``%%ltx --sweep`` reads them (JSON,
plain text where they are not JSON, ``random:N`` for seeds). The plan (:func:`._sweeps.
plan_sweep`) is made again whenever the panel's input or the row changes: its job count and
total show next to "Run sweep", which is off, with the reason, while a value is invalid, the
total is over ``max_cost``, or a field's control refuses its value.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
from IPython.core.error import UsageError

from ._controls import ERROR_COLOUR, MUTED_COLOUR, coloured, field_title
from ._errors import LtxError
from ._fal import default_openapi_url
from ._form import EXTRA_FIELDS
from ._jobs import ConcurrencyLimit, JobOptions
from ._sweeps import ENDPOINT_AXIS, MAX_AXES, Sweep, SweepAxis, SweepPlan, parse_axis, plan_sweep
from ._text import counted
from ._widgets import close_tree

if TYPE_CHECKING:
    from ._grid import VideoGrid
    from ._panel import Panel

__all__ = ["DEFAULT_MAX_CONCURRENT", "SweepRow"]

#: The concurrency limit of a panel not given one (``LtxMagics.max_concurrent``'s default).
DEFAULT_MAX_CONCURRENT = 4
_PICK = "pick a field"
#: Words of the magic's errors that mean nothing in the panel ("--guidance (guidance_scale)").
_OPTION_WORDS = re.compile(r"--[a-z][\w-]* \(([\w.]+)\)|--param ([\w.]+)")


def _panel_words(message: str) -> str:
    """A sweep error as the panel says it: no ``%ltx:``, no magic option names."""
    text = message.removeprefix("%ltx: ").removeprefix("--sweep ")
    return _OPTION_WORDS.sub(lambda m: m.group(1) or m.group(2), text)


class _AxisRow:
    """One axis: a field and its values."""

    def __init__(self, row: SweepRow) -> None:
        self.field = widgets.Dropdown(options=[(_PICK, None)], layout=widgets.Layout(width="240px"))
        self.field.add_class("ltx-sweep-field")
        self.values = widgets.Text(
            placeholder="values, comma-separated: 3, 5, 7",
            continuous_update=True,
            layout=widgets.Layout(flex="1 1 auto", width="auto", min_width="240px"),
        )
        self.values.add_class("ltx-sweep-values")
        self.remove = widgets.Button(
            icon="trash", tooltip="Remove this axis", layout=widgets.Layout(width="36px")
        )
        self.hint = widgets.HTML()
        self.box = widgets.VBox(
            [
                widgets.HBox(
                    [self.field, self.values, self.remove],
                    layout=widgets.Layout(align_items="center"),
                ),
                self.hint,
            ]
        )
        self.box.add_class("ltx-sweep-axis")
        self.field.observe(lambda _change: row.axis_changed(self), "value")
        self.values.observe(lambda _change: row.refresh(), "value")
        self.remove.on_click(lambda _button: row.remove_axis(self))


class SweepRow(widgets.VBox):
    """The panel's sweep section: axes, the job count and total, "Run sweep", and the grids
    of the sweeps it started (newest first), shown under the panel.

    ``limit`` is the concurrency limit its sweeps share (a callable is asked at each run, so
    a limit replaced meanwhile, as ``%config LtxMagics.max_concurrent`` does, applies).
    """

    def __init__(
        self,
        panel: Panel,
        *,
        limit: ConcurrencyLimit | Callable[[], ConcurrencyLimit] | None = None,
    ) -> None:
        self.panel = panel
        self._limit = limit if limit is not None else ConcurrencyLimit(DEFAULT_MAX_CONCURRENT)
        self.axes: list[_AxisRow] = []
        #: The plan of the current settings (None while there is none, or it is refused).
        self.plan: SweepPlan | None = None
        #: Every sweep started here, oldest first, and its grid.
        self.sweeps: list[Sweep] = []
        self.grids: list[VideoGrid] = []
        #: Axes read from their text: the same text keeps the same drawn seeds until a run.
        self._parsed: dict[tuple[str, str], SweepAxis] = {}
        self._lock = threading.Lock()
        self._holding = 0

        self.add_button = widgets.Button(
            description="add axis",
            icon="plus",
            tooltip=f"Vary another field (up to {MAX_AXES}: rows, columns, tabs of the grid)",
            layout=widgets.Layout(width="auto", align_self="flex-start"),
        )
        self.add_button.on_click(lambda _button: self.add_axis())
        self.run_button = widgets.Button(
            description="Run sweep", icon="th", button_style="primary", disabled=True
        )
        self.run_button.add_class("ltx-run-sweep")
        self.run_button.on_click(lambda _button: self.run())
        self.summary = widgets.HTML(layout=widgets.Layout(margin="0 0 0 8px"))
        self.summary.add_class("ltx-sweep-summary")
        self.message = widgets.HTML()
        self.message.add_class("ltx-sweep-message")
        self.axes_box = widgets.VBox()
        body = widgets.VBox(
            [
                self.axes_box,
                self.add_button,
                widgets.HBox(
                    [self.run_button, self.summary], layout=widgets.Layout(align_items="center")
                ),
                self.message,
            ]
        )
        self.section = widgets.Accordion(
            children=[body], titles=("Sweep: one job per value",), selected_index=None
        )
        self.section.add_class("ltx-sweep")
        #: The grids of the sweeps started here, newest first (the panel puts this under
        #: its other sections).
        self.grids_box = widgets.VBox()
        self.grids_box.add_class("ltx-sweep-grids")
        super().__init__([self.section])
        self.add_axis()

    # -- the axes ----------------------------------------------------------------------------

    def field_choices(self) -> list[tuple[str, str | None]]:
        """What an axis may vary on the chosen endpoint: ``endpoint``, then its fields in
        fal's order (the prompt aside: it is the sweep's shared input)."""
        choices: list[tuple[str, str | None]] = [
            (_PICK, None),
            ("Endpoint (endpoint)", ENDPOINT_AXIS),
        ]
        for spec in self.panel.form.fields:
            if spec.name in ("prompt", EXTRA_FIELDS):
                continue
            choices.append((f"{field_title(spec)} ({spec.name})", spec.name))
        return choices

    def add_axis(self, field: str | None = None, values: str = "") -> _AxisRow:
        """Add an axis row (up to :data:`MAX_AXES`), with ``field`` and ``values`` if given."""
        if len(self.axes) >= MAX_AXES:
            raise ValueError(f"a sweep has at most {MAX_AXES} axes (rows, columns, tabs)")
        axis = _AxisRow(self)
        axis.field.options = self.field_choices()
        self.axes.append(axis)
        self.axes_box.children = tuple(a.box for a in self.axes)
        self.add_button.disabled = len(self.axes) >= MAX_AXES
        if field is not None:
            axis.field.value = field
        if values:
            axis.values.value = values
        self.refresh()
        return axis

    def remove_axis(self, axis: _AxisRow) -> None:
        """Remove an axis row (the last one is emptied instead)."""
        if len(self.axes) == 1:
            axis.field.value = None
            axis.values.value = ""
            return
        self.axes.remove(axis)
        self.axes_box.children = tuple(a.box for a in self.axes)
        close_tree(axis.box)
        self.add_button.disabled = False
        self.refresh()

    def set_axes(self, **axes: str) -> None:
        """Set the axes from code, as typed: ``row.set_axes(guidance_scale="3, 5, 7",
        seed="random:2")`` (replacing any there)."""
        for axis in self.axes[1:]:
            self.remove_axis(axis)
        first = self.axes[0]
        first.field.value, first.values.value = None, ""
        for index, (name, values) in enumerate(axes.items()):
            if index == 0:
                first.field.value, first.values.value = name, values
            else:
                self.add_axis(name, values)
        self.refresh()

    def endpoint_changed(self) -> None:
        """The panel shows another endpoint: offer its fields; an axis on a field it lacks
        goes back to "pick a field". The panel plans again after (:meth:`refresh`)."""
        choices = self.field_choices()
        names = {value for _label, value in choices}
        self._holding += 1
        try:
            for axis in self.axes:
                kept = axis.field.value if axis.field.value in names else None
                axis.field.options = choices
                axis.field.value = kept
                axis.hint.value = self._hint(kept)
        finally:
            self._holding -= 1

    def axis_changed(self, axis: _AxisRow) -> None:
        axis.hint.value = self._hint(axis.field.value)
        self.refresh()

    def _hint(self, name: str | None) -> str:
        """What the chosen field takes, under its values box."""
        if name is None:
            return ""
        if name == ENDPOINT_AXIS:
            text = "endpoint ids: ltx-video, ltx-2/text-to-video…"
        else:
            spec = self.panel.form.field(name)
            text = spec.allowed()
            if name == "seed":
                text += "; or random:N for N drawn seeds"
        return coloured(text, MUTED_COLOUR)

    def _read_axes(self) -> list[SweepAxis]:
        """The axes as typed (``UsageError`` naming the one that cannot be read)."""
        read = []
        for axis in self.axes:
            name, text = axis.field.value, axis.values.value.strip()
            if name is None and not text:
                continue
            if name is None:
                raise UsageError(f"pick the field that {text!r} are values of")
            if not text:
                raise UsageError(f"{name}: type its values, comma-separated")
            with self._lock:
                parsed = self._parsed.get((name, text))
                if parsed is None:
                    parsed = self._parsed[(name, text)] = parse_axis(f"{name}={text}")
            read.append(parsed)
        return read

    # -- the plan ----------------------------------------------------------------------------

    def refresh(self) -> SweepPlan | None:
        """Plan the sweep of the current settings again: its count and total, or why it
        cannot run (Run sweep off, the reason under it)."""
        if self._holding:
            return self.plan
        panel = self.panel
        self.plan = None
        try:
            axes = self._read_axes()
        except UsageError as error:
            return self._refuse(_panel_words(str(error)))
        if not axes:
            self.summary.value = ""
            return self._refuse("Pick a field and type its values to sweep.", muted=True)
        arguments = panel.arguments()
        if not str(arguments.get("prompt") or "").strip():
            self.summary.value = ""
            return self._refuse("Write a prompt to sweep.", muted=True)
        swept = {axis.name for axis in axes}
        problems = [e for e in panel.form.problems() if e.field.split(".")[0] not in swept]
        if problems:
            return self._refuse("; ".join(str(e) for e in problems[:3]))
        try:
            plan = plan_sweep(
                panel.session,
                panel.endpoint,
                arguments,
                axes,
                queue_url=panel.queue_url,
                openapi_url=default_openapi_url(panel.queue_url),
            )
        except (UsageError, LtxError) as error:
            return self._refuse(_panel_words(str(error)))
        jobs = len(plan.cells)
        self.summary.value = (
            f'<span style="font-weight: 600">{counted(jobs, "job")}</span> '
            + coloured(f"≈ {plan.total_text()}", MUTED_COLOUR)
        )
        try:
            plan.check_budget(panel.max_cost)
        except UsageError as error:
            return self._refuse(_panel_words(str(error)))
        self.plan = plan
        self.run_button.disabled = False
        self.run_button.tooltip = f"Start {counted(jobs, 'job')}"
        notes = "; ".join(plan.notes)
        self.message.value = coloured(f"Note: {notes}", MUTED_COLOUR) if notes else ""
        return plan

    def _refuse(self, reason: str, *, muted: bool = False) -> None:
        self.run_button.disabled = True
        self.run_button.tooltip = "See the reason under the button"
        if muted:
            self.message.value = coloured(reason, MUTED_COLOUR)
        else:
            self.message.value = coloured(f"Run sweep is off: {reason}", ERROR_COLOUR)
        return None

    @property
    def limit(self) -> ConcurrencyLimit:
        """The concurrency limit the next sweep runs under."""
        return self._limit() if callable(self._limit) else self._limit

    # -- running -----------------------------------------------------------------------------

    def run(self) -> Sweep | None:
        """Start the planned sweep and show its grid under the panel; returns it at once
        (None when it cannot run: the row says why)."""
        from ._grid import sweep_grid
        from ._sweeps import start_sweep

        plan = self.refresh()
        if plan is None:
            return None
        panel = self.panel
        try:
            sweep = start_sweep(
                plan,
                panel.session,
                JobOptions(timeout=panel.timeout, save_dir=panel.save_dir),
                limit=self.limit,
                queue_url=panel.queue_url,
                storage_url=panel.storage_url,
            )
        except (LtxError, ValueError, OSError) as error:
            self.message.value = coloured(str(error), ERROR_COLOUR)
            return None
        with self._lock:
            self._parsed.clear()  # the next run draws its random seeds afresh
        grid = sweep_grid(sweep)
        self.sweeps.append(sweep)
        self.grids.append(grid)
        self.grids_box.children = (grid, *self.grids_box.children)
        sweep.add_listener(lambda _sweep, job: panel._job_changed_in_sweep(job))
        self.refresh()
        self.message.value = coloured(
            f"Started {sweep.id}: its grid is under the panel.", MUTED_COLOUR
        )
        panel._update_status()
        return sweep

    def cancel(self) -> list[Any]:
        """Cancel every job of this row's sweeps that has not ended; returns them."""
        return [job for sweep in self.sweeps for job in sweep.cancel()]

    def running(self) -> bool:
        """Whether a job of this row's sweeps has not ended."""
        return any(not sweep.done for sweep in self.sweeps)

    def status_words(self) -> str:
        """``1 sweep (4 of 6 ended)`` for the panel's status line ("" without sweeps)."""
        if not self.sweeps:
            return ""
        jobs = [slot.job for sweep in self.sweeps for slot in sweep.slots if slot.job]
        ended = sum(1 for job in jobs if job.done)
        count = len(self.sweeps)
        return f"{counted(count, 'sweep')} ({ended} of {len(jobs)} jobs ended)"

    def close(self) -> None:
        """Stop the grids following their jobs (the jobs go on) and close the row."""
        for grid in self.grids:
            grid.close()
        close_tree(self.grids_box)
        close_tree(self)
