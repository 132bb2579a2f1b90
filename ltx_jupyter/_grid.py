"""The comparison grid: jobs side by side under one synchronized player, and its plain HTML.

:class:`VideoGrid` is an anywidget whose front end (``static/sync_player.js``) draws a table of
cells headed by axis values (a third axis becomes tabs), each a compact job view (status,
progress, then the video with its caption and cost, or the failure), with one Cancel per cell
and one for the grid, and one play/pause, scrubber and loop switch that drive every video of
the visible tab together. The kernel side follows its jobs on the runner thread and sends
their state coalesced (at most one message per ``interval`` for the whole grid), only by
assigning traits.

:func:`grid_html` is the same grid as a plain HTML table of labelled ``<video>`` elements, for
outputs that must read without widget state (headless runs, nbconvert, GitHub).
:func:`sweep_grid` and :func:`sweep_html` lay a :class:`~._sweeps.Sweep` out this way;
``%ltx compare`` uses the same player (:mod:`._compare`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from ._display import entry_cost, video_caption, video_source
from ._history import redact_for_history
from ._html import escape, safe_video_src, video_html
from ._jobs import Job, JobStatus
from ._pricing import format_money

if TYPE_CHECKING:
    from ._history import HistoryEntry
    from ._runner import ScheduledCall
    from ._sweeps import Sweep, SweepAxis, SweepPlan

__all__ = [
    "CellSource",
    "GridHTML",
    "GridLayout",
    "SweepDryRun",
    "VideoGrid",
    "grid_html",
    "sweep_grid",
    "sweep_html",
]

_STATIC = Path(__file__).parent / "static"


@dataclass
class CellSource:
    """What one cell shows: a live job, a run from the history, or nothing sent (``note``
    says why). ``cost`` and ``currency`` stand in for a job without its own estimate."""

    label: str
    job: Job | None = None
    entry: HistoryEntry | None = None
    note: str | None = None
    cost: float | None = None
    currency: str | None = None
    tab: int = 0
    row: int = 0
    col: int = 0

    def state(self) -> list[Any]:
        """``[status, progress fraction or None, status text, cancellable]``."""
        job = self.job
        if job is not None:
            fraction = None
            parts = [str(job.status)]
            if job.status == JobStatus.QUEUED and job.queue_position is not None:
                parts.append(f"position {job.queue_position}")
            if job.progress is not None:
                done, total = job.progress
                fraction = done / total
                if job.status == JobStatus.RUNNING:
                    parts.append(str(job.progress_text))
            if job.done and job.finished_at is not None:
                parts.append(f"{job.finished_at - (job.submitted_at or job.created_at):.1f}s")
            return [str(job.status), fraction, " · ".join(parts), not job.done]
        if self.entry is not None:
            status = (self.entry.status or "unknown").lower()
            return [status, None, status, False]
        return ["not sent", None, self.note or "not sent", False]

    def media(self, *, for_html: bool = False) -> dict[str, str]:
        """``{src, caption, cost, error}`` (empty strings where there is nothing).

        The widget plays the video's URL; the HTML form prefers a saved file by relative path
        (the notebook's folder resolves it there)."""
        src = caption = error = ""
        cost = self._cost()
        job = self.job
        if job is not None:
            if job.result is not None:
                saved = job.saved_path if for_html else None
                src = video_source(job.result.url, saved)
            if job.result is not None:
                result = job.result
                caption = video_caption(
                    job.parameters, seed=result.seed, video=result.video, run_time=job.run_time
                )
            if job.error is not None:
                error = "cancelled" if job.status == JobStatus.CANCELLED else str(job.error)
        elif self.entry is not None:
            entry = self.entry
            src = entry.video_url or ""
            caption = video_caption(entry.input, seed=entry.seed)
            error = entry.error or ""
        try:
            src = safe_video_src(src) if src else ""
        except ValueError:
            error = error or "the video's source is not one a browser may play here"
            src = ""
        return {"src": src, "caption": caption, "cost": cost, "error": error}

    def _cost(self) -> str:
        job = self.job
        if job is not None and job.estimate is not None:
            return f"est. {job.estimate.short}"
        if self.entry is not None:
            cost = entry_cost(self.entry)
            return f"est. {cost}" if cost else ""
        if self.cost is not None:
            return f"est. {format_money(self.cost, self.currency or 'USD')}"
        return ""


@dataclass(frozen=True)
class GridLayout:
    """Where the cells go: axis names and the labels of rows, columns and tabs."""

    row_axis: str = ""
    col_axis: str = ""
    tab_axis: str = ""
    rows: tuple[str, ...] = ()
    cols: tuple[str, ...] = ()
    tabs: tuple[str, ...] = ()


class VideoGrid(anywidget.AnyWidget):
    """Cells of jobs (or runs from the history) in a table, one synchronized player for all
    their videos, Cancel per cell and for the grid. Its text form is its title line."""

    _esm = _STATIC / "sync_player.js"
    _css = _STATIC / "sync_player.css"

    title = traitlets.Unicode("").tag(sync=True)
    row_axis = traitlets.Unicode("").tag(sync=True)
    col_axis = traitlets.Unicode("").tag(sync=True)
    tab_axis = traitlets.Unicode("").tag(sync=True)
    row_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    col_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    tab_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    #: Where each cell sits and its label: ``{tab, row, col, label}``.
    cells = traitlets.List(traitlets.Dict()).tag(sync=True)
    #: Each cell's ``[status, fraction, text, cancellable]``: the often-changing part.
    states = traitlets.List(traitlets.List()).tag(sync=True)
    #: Each cell's ``{src, caption, cost, error}``.
    media = traitlets.List(traitlets.Dict()).tag(sync=True)
    #: Whether "Cancel all" shows (some job has not ended).
    cancellable = traitlets.Bool(False).tag(sync=True)

    def __init__(
        self,
        sources: Sequence[CellSource],
        layout: GridLayout,
        *,
        title: Callable[[], str] | str = "",
        on_cancel_all: Callable[[], Any] | None = None,
        interval: float = 0.25,
    ) -> None:
        self.sources = list(sources)
        self._title = title
        self._on_cancel_all = on_cancel_all
        self.interval = interval
        self._lock = threading.Lock()
        self._scheduled: ScheduledCall | None = None
        self._last_flush = 0.0
        self._closed = False
        #: How many times the state was sent (each a single comm message at most).
        self.flushes = 0
        super().__init__(
            row_axis=layout.row_axis,
            col_axis=layout.col_axis,
            tab_axis=layout.tab_axis,
            row_labels=list(layout.rows),
            col_labels=list(layout.cols),
            tab_labels=list(layout.tabs),
            cells=[
                {"tab": s.tab, "row": s.row, "col": s.col, "label": s.label} for s in self.sources
            ],
        )
        self.on_msg(self._on_front_end_message)
        self._jobs = [s.job for s in self.sources if s.job is not None]
        self._flush()
        for job in self._jobs:
            job.add_listener(self._on_change)

    # -- the text form ---------------------------------------------------------------------

    def title_line(self) -> str:
        return self._title() if callable(self._title) else self._title

    def __repr__(self) -> str:
        return self.title_line() or f"VideoGrid({len(self.sources)} cells)"

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:
            data, metadata = bundle
            data["text/plain"] = f"{self!r} · the grid needs a frontend with Jupyter widgets"
            return data, metadata
        return bundle

    # -- following jobs (runner thread) ------------------------------------------------------

    def _on_change(self, job: Job) -> None:
        if self._closed:
            return
        wait = self._last_flush + self.interval - time.monotonic()
        if wait <= 0 and all(j.done for j in self._jobs):
            self._flush()
            return
        with self._lock:
            if self._scheduled is not None:
                return
            self._scheduled = job.session.runner.call_later(max(wait, 0.0), self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        with self._lock:
            self._scheduled = None
        self._flush()

    def _flush(self) -> None:
        """Send every cell's current state (unchanged traits send nothing)."""
        if self._closed:
            return
        with self._lock:
            self._last_flush = time.monotonic()
            states = [s.state() for s in self.sources]
            media = [s.media() for s in self.sources]
            with self.hold_sync():
                self.states = states
                self.media = media
                self.cancellable = any(s.job is not None and not s.job.done for s in self.sources)
                self.title = self.title_line()
            self.flushes += 1

    def refresh(self) -> None:
        """Send the current state now (after the last job ended, the pending update may still
        be scheduled: this flushes it at once)."""
        self._flush()

    # -- front-end events (kernel thread) ----------------------------------------------------

    def _on_front_end_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        event = content.get("event")
        if event == "cancel_all":
            self.cancel_all()
        elif event == "cancel":
            cell = content.get("cell")
            if isinstance(cell, int) and 0 <= cell < len(self.sources):
                self.cancel_cell(cell)

    def cancel_cell(self, index: int) -> None:
        """Cancel the job of cell ``index`` (as its Cancel button does)."""
        job = self.sources[index].job
        if job is not None:
            job.cancel()

    def cancel_all(self) -> None:
        """Cancel every job of the grid not ended yet (as "Cancel all" does)."""
        if self._on_cancel_all is not None:
            self._on_cancel_all()
            return
        for job in self._jobs:
            job.cancel()

    def close(self) -> None:
        """Stop following the jobs and close the widget."""
        self._closed = True
        with self._lock:
            scheduled, self._scheduled = self._scheduled, None
        if scheduled is not None:
            scheduled.cancel()
        for job in self._jobs:
            job.remove_listener(self._on_change)
        super().close()


# -- the plain HTML grid -----------------------------------------------------------------------


def grid_html(sources: Sequence[CellSource], layout: GridLayout, *, title: str = "") -> str:
    """The grid as plain HTML: per tab a heading and a ``<table>`` whose header row and first
    column are the axis values and whose cells hold a labelled ``<video>`` (or the cell's
    status and failure). Every text is escaped; video sources pass :func:`safe_video_src`."""
    parts = [f'<div class="ltx-grid-html"><div><b>{escape(title)}</b></div>' if title else "<div>"]
    rows = max(len(layout.rows), 1)
    cols = max(len(layout.cols), 1)
    for tab in range(max(len(layout.tabs), 1)):
        if layout.tabs:
            parts.append(f"<h4>{escape(layout.tab_axis)} = {escape(layout.tabs[tab])}</h4>")
        corner = " \\ ".join(a for a in (layout.row_axis, layout.col_axis) if a)
        head = f"<th>{escape(corner)}</th>" + "".join(
            f"<th>{escape(label)}</th>" for label in (layout.cols or ("",))
        )
        body = []
        for row in range(rows):
            cells = []
            for col in range(cols):
                here = [s for s in sources if (s.tab, s.row, s.col) == (tab, row, col)]
                cells.append(f'<td style="vertical-align: top">{_cell_html(here)}</td>')
            label = layout.rows[row] if layout.rows else ""
            body.append(f"<tr><th>{escape(label)}</th>{''.join(cells)}</tr>")
        parts.append(
            f'<table class="ltx-grid-table"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>"
        )
    parts.append("</div>")
    return "".join(parts)


def _cell_html(sources: Sequence[CellSource]) -> str:
    shown = []
    for source in sources:
        status, _fraction, text, _cancellable = source.state()
        media = source.media(for_html=True)
        caption = " · ".join(p for p in (source.label, media["caption"], media["cost"]) if p)
        if media["src"]:
            shown.append(video_html(media["src"], caption=caption, width=240, muted=True))
        else:
            shown.append(f"<div>{escape(source.label)}</div><div>{escape(text)}</div>")
        if media["error"] and (status != "completed" or not media["src"]):
            shown.append(f'<div style="color: #c0392b">{escape(media["error"])}</div>')
    return "".join(shown)


class GridHTML:
    """A grid as a plain output: HTML for notebooks, its title line as text."""

    def __init__(self, html: str, text: str) -> None:
        self.html = html
        self.text = text

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text


# -- sweeps ------------------------------------------------------------------------------------


def axes_layout(axes: Sequence[SweepAxis]) -> GridLayout:
    """Rows and columns are the first two axes (one axis: a row of columns), a third makes
    tabs; each headed by its values."""
    labels = [tuple(a.label(v) for v in a.values) for a in axes]
    if len(axes) == 1:
        return GridLayout(col_axis=axes[0].name, cols=labels[0])
    return GridLayout(
        row_axis=axes[0].name,
        col_axis=axes[1].name,
        tab_axis=axes[2].name if len(axes) > 2 else "",
        rows=labels[0],
        cols=labels[1],
        tabs=labels[2] if len(axes) > 2 else (),
    )


def key_position(axes: Sequence[SweepAxis], key: Sequence[Any]) -> tuple[int, int, int]:
    """Where the cell with axis values ``key`` sits: ``(tab, row, col)``."""
    index = [axis.values.index(value) for axis, value in zip(axes, key, strict=True)]
    if len(axes) == 1:
        return 0, 0, index[0]
    return (index[2] if len(axes) > 2 else 0), index[0], index[1]


def cell_label(axes: Sequence[SweepAxis], key: Sequence[Any]) -> str:
    """``guidance = 3.0 · seed = 1``: a cell's axis values as one line."""
    return " · ".join(axis.heading(value) for axis, value in zip(axes, key, strict=True))


def sweep_layout(sweep: Sweep) -> tuple[list[CellSource], GridLayout]:
    """A sweep's cells, placed by :func:`key_position`, and its :func:`axes_layout`."""
    sources = []
    for slot in sweep.slots:
        tab, row, col = key_position(sweep.axes, slot.key)
        sources.append(
            CellSource(
                cell_label(sweep.axes, slot.key),
                job=slot.job,
                note=slot.note,
                cost=slot.cost,
                currency=slot.currency,
                tab=tab,
                row=row,
                col=col,
            )
        )
    return sources, axes_layout(sweep.axes)


def sweep_grid(sweep: Sweep, *, interval: float = 0.25) -> VideoGrid:
    """The live grid of a sweep: "Cancel all" cancels the sweep."""
    sources, layout = sweep_layout(sweep)
    return VideoGrid(
        sources, layout, title=sweep.status_line, on_cancel_all=sweep.cancel, interval=interval
    )


def sweep_html(sweep: Sweep) -> GridHTML:
    """A sweep as a plain HTML grid (what a headless run keeps)."""
    sources, layout = sweep_layout(sweep)
    line = sweep.status_line()
    notes = "".join(f"<div>note: {escape(n)}</div>" for n in sweep.notes)
    return GridHTML(grid_html(sources, layout, title=line) + notes, line)


def sweep_mimebundle(sweep: Sweep) -> tuple[dict[str, str], dict[str, Any]]:
    """How a :class:`~._sweeps.Sweep` shows as a cell's value: the plain HTML grid (the
    magic registers this with IPython's display formatter)."""
    shown = sweep_html(sweep)
    return {"text/plain": shown.text, "text/html": shown.html}, {
        "ltx_jupyter": {"sweep_id": sweep.id, "records": _plain_records(sweep)}
    }


def _plain_records(sweep: Sweep) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in record.items() if k in ("request_id", "status", "url", "endpoint")}
        for record in sweep.records()
    ]


# -- the dry run -------------------------------------------------------------------------------


class SweepDryRun:
    """``%%ltx --sweep ... --dry-run``: the grid of inputs and the total; nothing sent.

    The input every cell shares is shown once; each cell shows the fields that differ between
    cells (and its endpoint when that varies) with its estimate.
    """

    def __init__(self, plan: SweepPlan) -> None:
        self.plan = plan
        self.shared, self.varying = _split_inputs(plan)

    def _title(self) -> str:
        shape = " × ".join(f"{len(a.values)} {a.name}" for a in self.plan.axes)
        return f"ltx sweep dry run · {shape} · nothing sent"

    def _cell_lines(self, index: int) -> list[str]:
        cell = self.plan.cells[index]
        lines = [f"{name}: {json.dumps(value, ensure_ascii=False)}" for name, value in
                 self.varying[index].items()]  # fmt: skip
        lines.append(f"est. {cell.estimate.short}")
        return lines

    def __repr__(self) -> str:
        lines = [self._title(), "shared input:", json.dumps(self.shared, indent=2)]
        for i, cell in enumerate(self.plan.cells):
            label = cell_label(self.plan.axes, cell.key)
            lines.append(f"{label}: {'; '.join(self._cell_lines(i))}")
        lines.append(f"estimated total: {self.plan.total_text()}")
        lines += [f"note: {note}" for note in self.plan.notes]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        layout = axes_layout(self.plan.axes)
        positions = [key_position(self.plan.axes, c.key) for c in self.plan.cells]
        tables = []
        for tab in range(max(len(layout.tabs), 1)):
            heading = ""
            if layout.tabs:
                heading = f"<h4>{escape(layout.tab_axis)} = {escape(layout.tabs[tab])}</h4>"
            corner = " \\ ".join(a for a in (layout.row_axis, layout.col_axis) if a)
            head = f"<th>{escape(corner)}</th>" + "".join(
                f"<th>{escape(c)}</th>" for c in (layout.cols or ("",))
            )
            rows = []
            for row in range(max(len(layout.rows), 1)):
                cells = []
                for col in range(max(len(layout.cols), 1)):
                    found = [i for i, p in enumerate(positions) if p == (tab, row, col)]
                    text = "\n".join(line for i in found for line in self._cell_lines(i))
                    cells.append(f'<td><pre style="margin: 0">{escape(text)}</pre></td>')
                label = layout.rows[row] if layout.rows else ""
                rows.append(f"<tr><th>{escape(label)}</th>{''.join(cells)}</tr>")
            tables.append(
                f'{heading}<table class="ltx-grid-table"><thead><tr>{head}</tr></thead>'
                f"<tbody>{''.join(rows)}</tbody></table>"
            )
        notes = "".join(f"<div>note: {escape(n)}</div>" for n in self.plan.notes)
        return (
            f"<div><b>{escape(self._title())}</b><div>shared input:</div>"
            f"<pre>{escape(json.dumps(self.shared, indent=2, ensure_ascii=False))}</pre>"
            + "".join(tables)
            + f"<div><b>estimated total: {escape(self.plan.total_text())}</b></div>{notes}</div>"
        )


def _split_inputs(plan: SweepPlan) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The input fields all cells share (redacted), and each cell's other fields (with its
    endpoint when endpoints differ)."""
    inputs = [redact_for_history(cell.input.arguments) for cell in plan.cells]
    endpoints = {cell.endpoint for cell in plan.cells}
    names: list[str] = []
    for arguments in inputs:
        names += [n for n in arguments if n not in names]
    shared = {
        n: inputs[0][n]
        for n in names
        if all(n in a for a in inputs) and all(a[n] == inputs[0][n] for a in inputs)
    }
    varying = []
    for cell, arguments in zip(plan.cells, inputs, strict=True):
        rest = {n: v for n, v in arguments.items() if n not in shared}
        varying.append({"endpoint": cell.endpoint, **rest} if len(endpoints) > 1 else rest)
    return shared, varying
