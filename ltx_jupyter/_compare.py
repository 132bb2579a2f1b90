"""``%ltx compare ID ID [...]``: runs side by side in the synchronized player, with a table of
their inputs in which the fields that differ stand out.

A run is a job of this session (live: its cell follows it) or an entry of the history. Inputs
are compared as the endpoint runs them: the sent fields over the endpoint's defaults.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
from IPython.core.error import UsageError
from IPython.display import display

from ._grid import CellSource, GridHTML, GridLayout, VideoGrid, grid_html
from ._history import redact_for_history
from ._html import escape
from ._schema import lookup_schema
from ._text import shorten

if TYPE_CHECKING:
    from ._history import HistoryEntry
    from ._jobs import Job, JobSession

__all__ = ["CompareRun", "CompareView", "Comparison", "compare", "find_run"]

#: Characters of a value shown in a cell of the inputs table.
VALUE_COLUMN = 160
_DIFFERS = "background: #fff3cd; font-weight: 600"


@dataclass
class CompareRun:
    """One run to compare: a live job, or a history entry."""

    label: str
    endpoint: str
    input: dict[str, Any]
    job: Job | None = None
    entry: HistoryEntry | None = None

    def source(self, col: int) -> CellSource:
        return CellSource(self.label, job=self.job, entry=self.entry, col=col)


def find_run(session: JobSession, run_id: str) -> CompareRun:
    """The run ``run_id`` names: a job of this session (request id, prefix or local number),
    else a history entry; a one-line ``UsageError`` if neither has it."""
    job = session.find(run_id)
    if job is not None:
        label = (job.request_id or f"local-{job.local_id}")[:8]
        return CompareRun(label, job.endpoint, job.parameters, job=job)
    try:
        entry = session.recorded(run_id)
    except ValueError as error:
        raise UsageError(f"%ltx compare: {error}") from None
    return run_of_entry(entry)


def run_of_entry(entry: HistoryEntry) -> CompareRun:
    """A history entry as a run, its input over its endpoint's defaults (from the schema
    shipped or cached; nothing is fetched)."""
    schema = lookup_schema(entry.endpoint, fetch=False).schema if entry.endpoint else None
    defaults = schema.defaults() if schema is not None else {}
    return CompareRun(
        entry.request_id[:8], entry.endpoint, {**defaults, **entry.input}, entry=entry
    )


class Comparison:
    """Runs to compare, and the table of their inputs."""

    def __init__(self, runs: Sequence[CompareRun]) -> None:
        self.runs = list(runs)
        labels = [run.label for run in self.runs]
        for i, label in enumerate(labels):
            if labels.count(label) > 1:
                self.runs[i].label = f"{label} ({i + 1})"

    def rows(self) -> list[tuple[str, list[str], bool]]:
        """``(field, the runs' values as text, whether they differ)``: the endpoint and the
        prompt first, then every field in the order the runs give them. A field a run lacks shows as
        empty (and counts as a difference)."""
        inputs = [_canonical(redact_for_history(run.input)) for run in self.runs]
        names: list[str] = ["prompt"] if any("prompt" in a for a in inputs) else []
        for arguments in inputs:
            names += [name for name in arguments if name not in names]
        rows = [("endpoint", [run.endpoint for run in self.runs])]
        for name in names:
            rows.append((name, [_value_text(a[name]) if name in a else "" for a in inputs]))
        return [(name, values, len(set(values)) > 1) for name, values in rows]

    def differing(self) -> list[str]:
        """The fields whose values differ between the runs."""
        return [name for name, _values, differs in self.rows() if differs]

    def layout(self) -> tuple[list[CellSource], GridLayout]:
        sources = [run.source(col) for col, run in enumerate(self.runs)]
        return sources, GridLayout(col_axis="run", cols=tuple(run.label for run in self.runs))

    def title(self) -> str:
        differing = self.differing()
        shown = ", ".join(differing) if differing else "nothing"
        return f"ltx compare · {len(self.runs)} runs · differing: {shown}"

    def table_html(self) -> str:
        """The inputs table: one column per run, differing rows highlighted and marked."""
        head = "<th>field</th>" + "".join(f"<th>{escape(run.label)}</th>" for run in self.runs)
        body = []
        for name, values, differs in self.rows():
            style = f' style="{_DIFFERS}"' if differs else ""
            mark = " ≠" if differs else ""
            cells = "".join(f"<td>{escape(v)}</td>" for v in values)
            body.append(
                f'<tr class="{"ltx-differs" if differs else "ltx-same"}"{style}>'
                f"<th>{escape(name)}{mark}</th>{cells}</tr>"
            )
        return (
            f'<table class="ltx-table ltx-compare-inputs"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>"
        )

    def table_text(self) -> str:
        lines = []
        for name, values, differs in self.rows():
            mark = "≠ " if differs else "  "
            lines.append(f"{mark}{name}: " + " | ".join(shorten(v, 40) for v in values))
        return "\n".join(lines)

    def html(self) -> GridHTML:
        """Videos side by side and the inputs table, as plain HTML."""
        sources, layout = self.layout()
        return GridHTML(
            grid_html(sources, layout, title=self.title()) + self.table_html(),
            f"{self.title()}\n{self.table_text()}",
        )


def _canonical(value: Any) -> Any:
    """``value`` with whole floats as ints, so ``3.0`` and ``3`` (the same guidance) match."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def _value_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return shorten(text, VALUE_COLUMN)


class CompareView(widgets.VBox):
    """The runs in one synchronized player, above the inputs table."""

    def __init__(self, comparison: Comparison) -> None:
        self.comparison = comparison
        sources, layout = comparison.layout()
        self.grid = VideoGrid(sources, layout, title=comparison.title)
        self.table = widgets.HTML(comparison.table_html())
        super().__init__([self.grid, self.table])
        self.add_class("ltx-compare")

    def __repr__(self) -> str:
        return self.comparison.title()

    def close(self) -> None:
        self.grid.close()
        self.table.close()
        super().close()


def compare(magics: Any, words: list[str]) -> CompareView | None:
    """``%ltx compare ID ID [...]`` for the magics: the view (interactive), or the plain HTML
    (headless, where widget state is not kept)."""
    if len(words) < 2:
        raise UsageError("%ltx compare takes two or more job IDs (from %ltx jobs)")
    comparison = Comparison([find_run(magics.session, word) for word in words])
    has_kernel = getattr(magics.shell, "kernel", None) is not None
    if not has_kernel or magics._headless():
        display(comparison.html())
        return None
    view = CompareView(comparison)
    magics.grids.append(view)
    return view
