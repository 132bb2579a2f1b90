"""The parameter panel: any LTX endpoint's input as controls built from its schema, the cost
of the current settings, its running jobs, and a history of runs.

The panel is a second face on the magic's path: the controls come from the endpoint's fal
schema (:mod:`._form`, :mod:`._controls`), the input is validated by :mod:`._schema`, priced
by the job session, started through the same :class:`~._jobs.JobSession` and shown in the same
:class:`~._views.JobView`. A run found in its history loads back into the controls (switching
the endpoint if needed), or becomes the equivalent ``%%ltx`` cell (:func:`._parsing.
magic_cell`).

Jobs report on the runner thread; the panel follows them only by assigning traits, and only
when a job's status, result or saved file changes, so a chatty log costs nothing here.

Its layout is a list of named sections (:attr:`Panel.sections`); :meth:`Panel.add_section`
puts another one in without touching the rest. The sweep row (:mod:`._panel_sweep`) is one:
one job per value of a field over the current input, its grid under the panel.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import ipywidgets as widgets

from ._controls import (
    ERROR_COLOUR,
    MUTED_COLOUR,
    coloured,
    same_value,
)
from ._display import job_caption, video_source
from ._endpoints import EndpointInfo, family_of, known_endpoints
from ._errors import FieldError, LtxError
from ._fal import default_openapi_url
from ._form import EndpointForm
from ._html import escape, video_html
from ._jobs import ConcurrencyLimit, Job, JobOptions, JobSession, JobStatus
from ._panel_sweep import SweepRow
from ._parsing import FIELD_OF_SETTING, magic_cell
from ._pricing import Estimate, Prices, format_money
from ._schema import (
    DEFAULT_ENDPOINT,
    PRESETS,
    ValidatedInput,
    check_input,
    has_word_guide,
    lookup_schema,
    resolve_endpoint,
)
from ._text import counted, shorten
from ._views import JobView
from ._widgets import close_tree, offer_cell

__all__ = ["Panel", "PanelRun"]

T = TypeVar("T")
_NO_WIDGETS = "its controls need a frontend with Jupyter widgets"
#: Something typed in the endpoint search that may name an endpoint the package does not ship.
_ENDPOINT_ID = re.compile(r"^[\w.-]+(/[\w.-]+)+$")
#: The field "reuse seed" needs.
_SEED = "seed"


class PanelRun:
    """One generation started from the panel: its job, its live view and its history entry.

    The entry shows a small player once the video is there, the run's endpoint and the
    fields it set away from their defaults, and buttons to load the run back into the panel
    or copy it as a ``%%ltx`` cell.
    """

    def __init__(self, panel: Panel, job: Job, view: JobView, defaults: Mapping[str, Any]) -> None:
        self.job = job
        self.view = view
        self.defaults = dict(defaults)
        self.thumbnail = widgets.HTML()
        self.summary = widgets.HTML(layout=widgets.Layout(flex="1 1 auto"))
        self.load_button = widgets.Button(
            description="load",
            icon="upload",
            tooltip="Load this run's endpoint and input into the panel",
            layout=widgets.Layout(width="auto"),
        )
        self.copy_button = widgets.Button(
            description="copy as %%ltx",
            icon="copy",
            tooltip="Put the equivalent %%ltx cell into the next cell",
            layout=widgets.Layout(width="auto"),
        )
        self.load_button.on_click(lambda _button: panel.load_run(self))
        self.copy_button.on_click(lambda _button: panel.copy_as_magic(self))
        self.entry = widgets.HBox(
            [
                self.thumbnail,
                widgets.VBox(
                    [self.summary, widgets.HBox([self.load_button, self.copy_button])],
                    layout=widgets.Layout(flex="1 1 auto"),
                ),
            ],
            layout=widgets.Layout(padding="4px", border="1px solid transparent"),
        )
        self.entry.add_class("ltx-history-entry")
        self.listener: Callable[[Job], None] | None = None
        self._lock = threading.Lock()
        self._shown: tuple[Any, ...] | None = None

    @property
    def seed(self) -> int | None:
        """The seed the run used: the result's, else the one it asked for."""
        if self.job.result is not None and self.job.result.seed is not None:
            return self.job.result.seed
        seed = self.job.input.get(_SEED)
        return seed if isinstance(seed, int) and not isinstance(seed, bool) else None

    def render(self) -> bool:
        """Redraw the entry if the job's status, result or saved file changed; whether it did.

        Called from the kernel thread and the runner thread; the lock makes the last drawing
        the newest state.
        """
        job = self.job
        with self._lock:
            shown = (job.status, job.result is not None, job.saved_path)
            if shown == self._shown:
                return False
            self._shown = shown
            self.thumbnail.value = self._thumbnail_html()
            self.summary.value = self._summary_html()
            return True

    def _thumbnail_html(self) -> str:
        job = self.job
        if job.result is None:
            return coloured(str(job.status), MUTED_COLOUR)
        src = video_source(job.result.url, job.saved_path)
        try:
            return video_html(src, width=192, muted=True, loop=True)
        except ValueError:
            return coloured("no playable source", MUTED_COLOUR)

    def changed_fields(self) -> dict[str, Any]:
        """The run's fields other than the prompt whose values are not the defaults."""
        return {
            name: value
            for name, value in self.job.input.items()
            if name != "prompt"
            and not (name in self.defaults and same_value(self.defaults[name], value))
        }

    def _summary_html(self) -> str:
        job = self.job
        details = [_title(job.endpoint), str(job.status)]
        caption = job_caption(job)
        if caption:
            details.append(caption)
        if job.error is not None:
            details.append(str(job.error))
        extras = [f"{name}: {_short_value(v)}" for name, v in self.changed_fields().items()]
        muted = f'<div style="font-size: 11px; color: {MUTED_COLOUR}">{{}}</div>'
        return (
            f'<div style="font-size: 12px">{escape(shorten(job.prompt, 160))}</div>'
            + muted.format(escape(" · ".join(details)))
            + (muted.format(escape(shorten(" · ".join(extras), 300))) if extras else "")
        )


class Panel(widgets.VBox):
    """A form for any LTX endpoint, built from its schema, with the cost of the current
    settings, Generate and Cancel, a live view per job, and a history of this panel's runs.

    ``Panel()`` opens on ``endpoint`` (default the seed's) with the endpoints' defaults;
    ``%ltx panel`` builds one with the ``%config LtxMagics`` settings and the magic's job
    session. ``steps``, ``guidance`` and ``negative_prompt`` are defaults for those fields on
    every endpoint that has them; one the first endpoint does not accept raises
    ``ValueError`` naming it. ``max_cost`` (USD) disables Generate while the estimate is
    higher, or unknown. ``limit`` is the concurrency limit of its sweeps (a callable is
    asked at each run; ``%ltx panel`` passes the magic's, so panel and magic sweeps share
    one cap; default: a limit of its own, of 4). Its text form is a status line, for
    frontends without widgets.
    """

    def __init__(
        self,
        *,
        session: JobSession | None = None,
        endpoint: str | None = None,
        queue_url: str | None = None,
        storage_url: str | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        negative_prompt: str | None = None,
        save_dir: str | None = None,
        log_lines: int = 20,
        timeout: float | None = None,
        max_cost: float | None = None,
        shell: Any = None,
        limit: ConcurrencyLimit | Callable[[], ConcurrencyLimit] | None = None,
    ) -> None:
        started = time.perf_counter()
        self.session = session if session is not None else JobSession()
        self.queue_url = queue_url or None
        self.storage_url = storage_url or None
        self.save_dir = save_dir or None
        self.log_lines = log_lines
        self.timeout = timeout
        self.max_cost = max_cost
        self.shell = shell
        #: Every run started here, oldest first.
        self.runs: list[PanelRun] = []
        #: The history entry whose seed "reuse seed" takes (set by "load"; a new run clears it).
        self.selected_run: PanelRun | None = None
        #: The last cell made by "copy as %%ltx".
        self.last_copied: str | None = None
        #: The estimate of the current settings (None before the first one).
        self.estimate: Estimate | None = None
        #: Seconds the last endpoint switch took here, in the kernel.
        self.last_switch_seconds: float | None = None
        settings = {"steps": steps, "guidance": guidance, "negative_prompt": negative_prompt}
        self.configured = {
            FIELD_OF_SETTING[name]: value for name, value in settings.items() if value is not None
        }
        self.forms: dict[str, EndpointForm] = {}
        #: The sweep row (built with the panel).
        self.sweep_row: SweepRow | None = None
        self._warnings: dict[str, str] = {}
        self._loading = 0
        self._status_lock = threading.Lock()

        initial = resolve_endpoint(endpoint or DEFAULT_ENDPOINT)
        # The unit prices (one lookup for every known endpoint and the first one: the picker
        # shows each one's, the estimates are made from it) come while the controls are built.
        ids = [info.endpoint_id for info in known_endpoints()]
        if initial not in ids:
            ids.append(initial)
        prices = _in_background(lambda: self.session.prices(ids, self.queue_url))
        form = self._form_for(initial)
        problems = [
            str(error)
            for name, value in self.configured.items()
            if form.has(name)
            for error in check_input(initial, {name: value}, schema=form.schema)
            if error.field == name
        ]
        if problems:
            form.close()
            raise ValueError("; ".join(problems))
        self.form = form
        self._build(initial, prices)
        #: The panel's parts, top to bottom, by name; see :meth:`add_section`.
        self.sections: list[tuple[str, widgets.Widget]] = [
            ("endpoint", self.picker),
            ("form", self.form_area),
            ("tools", self.tools),
            ("actions", self.actions),
            ("status", self.status),
            ("jobs", self.jobs_area),
            ("history", self.history_box),
        ]
        super().__init__(children=[widget for _name, widget in self.sections])
        self.add_class("ltx-panel")
        sweep_row = SweepRow(self, limit=limit)
        self.add_section("sweep", sweep_row, after="actions")
        self.add_section("sweeps", sweep_row.grids_box, after="jobs")
        self.sweep_row = sweep_row
        self._endpoint_changed()
        #: Seconds building the panel took here, in the kernel.
        self.build_seconds = time.perf_counter() - started

    # -- layout ------------------------------------------------------------------------------

    def add_section(self, name: str, widget: widgets.Widget, *, after: str | None = None) -> None:
        """Put ``widget`` into the panel as section ``name``, after section ``after`` (default:
        last); ``ValueError`` for a name already used or an unknown ``after``."""
        names = [n for n, _w in self.sections]
        if name in names:
            raise ValueError(f"the panel already has a section {name!r}")
        if after is not None and after not in names:
            raise ValueError(f"the panel has no section {after!r}; it has {', '.join(names)}")
        position = names.index(after) + 1 if after is not None else len(names)
        self.sections.insert(position, (name, widget))
        self.children = tuple(w for _n, w in self.sections)

    def section(self, name: str) -> widgets.Widget:
        """The widget of section ``name`` (``KeyError`` if there is none)."""
        for found, widget in self.sections:
            if found == name:
                return widget
        raise KeyError(name)

    def _build(self, endpoint: str, prices: concurrent.futures.Future[Prices]) -> None:
        self.endpoint_search = widgets.Text(
            placeholder="search: ltx-2, 13b, image, fast… or an endpoint id",
            description="Endpoint",
            continuous_update=True,
            layout=widgets.Layout(width="340px"),
        )
        self.endpoint_info = widgets.HTML()
        self.form_area = widgets.VBox([self.form.widget])

        self.preset_buttons = {
            preset.name: widgets.Button(
                description=preset.name, tooltip=preset.tooltip, layout=widgets.Layout(width="auto")
            )
            for preset in PRESETS
        }
        for preset in PRESETS:
            self.preset_buttons[preset.name].on_click(
                lambda _button, name=preset.name: self.apply_preset(name)
            )
        self.presets = widgets.HBox(
            [widgets.Label("Presets from the guide:"), *self.preset_buttons.values()]
        )
        self.reuse_seed_button = widgets.Button(
            description="reuse seed",
            icon="redo",
            disabled=True,
            tooltip="The seed of the selected history entry, else of the last finished run",
            layout=widgets.Layout(width="auto"),
        )
        self.reuse_seed_button.on_click(lambda _button: self.reuse_seed())
        self.tools = widgets.HBox([self.presets, self.reuse_seed_button])

        self.generate_button = widgets.Button(
            description="Generate", icon="play", button_style="primary", disabled=True
        )
        self.generate_button.add_class("ltx-generate")
        self.cancel_button = widgets.Button(
            description="Cancel",
            icon="stop",
            disabled=True,
            tooltip="Cancel every run and sweep job of this panel that has not ended",
        )
        self.copy_button = widgets.Button(
            description="Copy as %%ltx",
            icon="copy",
            tooltip="Put the %%ltx cell that runs the current settings into the next cell",
            layout=widgets.Layout(width="auto", flex="0 0 auto"),
        )
        self.cost = widgets.HTML(layout=widgets.Layout(margin="0 0 0 8px"))
        self.cost.add_class("ltx-cost")
        self.message = widgets.HTML()
        self.message.add_class("ltx-message")
        self.generate_button.on_click(lambda _button: self.generate())
        self.cancel_button.on_click(lambda _button: self.cancel())
        self.copy_button.on_click(lambda _button: self.copy_as_magic())
        self.actions = widgets.VBox(
            [
                widgets.HBox(
                    [self.generate_button, self.cancel_button, self.copy_button, self.cost],
                    layout=widgets.Layout(align_items="center"),
                ),
                self.message,
            ]
        )

        self.status = widgets.HTML()
        self.jobs_area = widgets.VBox()
        self.history = widgets.VBox()
        self.copied_cell = widgets.Textarea(
            description="%%ltx",
            rows=4,
            layout=widgets.Layout(width="100%", display="none"),
        )
        self.history_box = widgets.VBox(
            [widgets.HTML("<b>History</b>"), self.history, self.copied_cell]
        )

        infos = known_endpoints()
        self._infos: dict[str, EndpointInfo] = {i.endpoint_id: i for i in infos}
        self._prices: Prices = prices.result()
        self._choices = [(self._option_label(info.endpoint_id), info.endpoint_id) for info in infos]
        self._extra_choices: list[tuple[str, str]] = []
        self.endpoint_choice = widgets.Dropdown(
            options=self._options_with(endpoint, self._choices),
            value=endpoint,
            layout=widgets.Layout(width="520px"),
        )
        self.endpoint_choice.add_class("ltx-endpoint-choice")
        self.picker = widgets.VBox(
            [widgets.HBox([self.endpoint_search, self.endpoint_choice]), self.endpoint_info]
        )
        self.endpoint_search.observe(self._search_changed, "value")
        self.endpoint_choice.observe(self._choice_changed, "value")

    # -- the endpoint picker -------------------------------------------------------------------

    def _option_label(self, endpoint_id: str) -> str:
        info = self._infos.get(endpoint_id)
        price = self._prices_for(endpoint_id).get(endpoint_id)
        cost = (
            f"{format_money(price.unit_price, price.currency, unit=True)} per {price.unit}"
            if price is not None
            else "price unknown"
        )
        if info is None:
            schema = self.forms[endpoint_id].schema if endpoint_id in self.forms else None
            category = (schema.category if schema is not None else None) or "endpoint"
            return f"{endpoint_id} · {category} · {cost}"
        return f"{info.title} · {info.category or 'endpoint'} · {cost}"

    def _options_with(self, endpoint: str, choices: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """``choices`` with ``endpoint`` among them (first, when it was not)."""
        if any(value == endpoint for _label, value in choices):
            return list(choices)
        known = [*self._choices, *self._extra_choices]
        label = next((lbl for lbl, value in known if value == endpoint), None)
        if label is None:
            label = self._option_label(endpoint)
            self._extra_choices.append((label, endpoint))
        return [(label, endpoint), *choices]

    def matching_endpoints(self, text: str) -> list[tuple[str, str]]:
        """The picker's choices whose id, title, family or category hold every word of
        ``text``. When none does, a text shaped like an endpoint id is offered itself (its
        schema is fetched when it is chosen)."""
        words = text.lower().split()
        found = []
        for label, endpoint_id in [*self._choices, *self._extra_choices]:
            info = self._infos.get(endpoint_id)
            haystack = " ".join(
                [label, endpoint_id, *((info.family or "", info.title) if info else ())]
            ).lower()
            if all(word in haystack for word in words):
                found.append((label, endpoint_id))
        typed = text.strip().strip("/")
        if not found and _ENDPOINT_ID.match(typed):
            found.append((f"{typed} · not shipped: fetch its schema", typed))
        return found

    def _search_changed(self, change: Mapping[str, Any]) -> None:
        matches = self.matching_endpoints(str(change["new"]))
        with self._quietly():
            # The chosen endpoint stays (first) so that filtering never switches it.
            self.endpoint_choice.options = self._options_with(self.endpoint, matches)
            self.endpoint_choice.value = self.endpoint

    def _choice_changed(self, change: Mapping[str, Any]) -> None:
        if self._loading or change["new"] is None:
            return
        try:
            self.switch_endpoint(str(change["new"]))
        except LtxError as error:
            # A fetched document that is not a valid fal document: stay, and say why.
            with self._quietly():
                self.endpoint_choice.value = self.endpoint
            self.message.value = coloured(str(error), ERROR_COLOUR)

    @property
    def endpoint(self) -> str:
        """The chosen endpoint id."""
        return self.form.endpoint_id

    def _form_for(self, endpoint: str) -> EndpointForm:
        form = self.forms.get(endpoint)
        if form is None:
            lookup = lookup_schema(endpoint, url=default_openapi_url(self.queue_url))
            if lookup.warning:
                self._warnings[endpoint] = lookup.warning
            form = EndpointForm(
                endpoint,
                lookup.schema,
                defaults=self.configured,
                word_guide=has_word_guide(endpoint),
            )
            form.on_change = self._refresh
            self.forms[endpoint] = form
        return form

    def switch_endpoint(self, endpoint: str) -> None:
        """Show ``endpoint``'s controls. Fields the two endpoints share keep the values set
        here (the prompt always) where the new one accepts them; every other field takes the
        new endpoint's default."""
        endpoint = resolve_endpoint(endpoint)
        if endpoint == self.endpoint:
            return
        started = time.perf_counter()
        old = self.form
        kept = {
            name: value
            for name, value in old.values().items()
            if not (name in old.defaults and same_value(old.defaults[name], value))
        }
        prompt = old.text("prompt")
        form = self._form_for(endpoint)
        with self._quietly():
            for spec in form.fields:
                name = spec.name
                if name == "prompt":
                    form.set(name, prompt if prompt is not None else kept.get(name))
                elif not (
                    name in kept and not spec.check(kept[name]) and form.set(name, kept[name])
                ):
                    form.reset(name)
            self.endpoint_choice.options = self._options_with(
                endpoint, list(self.endpoint_choice.options)
            )
            self.endpoint_choice.value = endpoint
        self.form = form
        self.form_area.children = (form.widget,)
        self._endpoint_changed()
        self.last_switch_seconds = time.perf_counter() - started

    def _endpoint_changed(self) -> None:
        form = self.form
        presets = all(form.has(preset.field) for preset in PRESETS)
        self.presets.layout.display = None if presets else "none"
        if presets:
            for preset in PRESETS:
                spec = form.field(preset.field)
                self.preset_buttons[preset.name].disabled = bool(spec.check(preset.value))
        self.reuse_seed_button.layout.display = None if form.has(_SEED) else "none"
        self.tools.layout.display = None if presets or form.has(_SEED) else "none"
        self.endpoint_info.value = self._info_html()
        if self.sweep_row is not None:
            self.sweep_row.endpoint_changed()
        self._refresh()
        self._update_status()

    def _info_html(self) -> str:
        endpoint = self.endpoint
        parts = [escape(endpoint)]
        schema = self.form.schema
        info = self._infos.get(endpoint)
        category = (info.category if info else None) or (schema.category if schema else None)
        if category:
            parts.append(escape(category))
        if family_of(endpoint):
            parts.append(escape(str(family_of(endpoint))))
        prices = self._prices_for(endpoint)
        price = prices.get(endpoint)
        parts.append(escape(price.describe() if price is not None else prices.reason(endpoint)))
        text = f'<div style="font-size: 12px; color: {MUTED_COLOUR}">{" · ".join(parts)}</div>'
        warning = self._warnings.get(endpoint)
        if warning:
            text += f"<div>{coloured(warning, ERROR_COLOUR)}</div>"
        return text

    def _prices_for(self, endpoint: str) -> Prices:
        if endpoint in self._prices.prices or endpoint in self._prices.unknown:
            return self._prices
        return self.session.prices([endpoint], self.queue_url)

    # -- reading the controls ----------------------------------------------------------------

    def control(self, name: str) -> Any:
        """The control of field ``name`` of the chosen endpoint (built if it sits in the
        unopened "Additional settings"); ``KeyError`` if the endpoint has no such field."""
        return self.form.control(name)

    def set(self, **values: Any) -> None:
        """Set fields of the chosen endpoint by name, as a person would in the controls
        (``panel.set(prompt="a red fox", duration=8)``; None: not set, or the default).
        ``ValueError`` naming a field the endpoint lacks or a value its control cannot hold;
        a value the field does not allow is shown as invalid, as a typed one would be."""
        unknown = [name for name in values if not self.form.has(name)]
        if unknown:
            raise ValueError(
                f"{self.endpoint} has no field {', '.join(unknown)}; its fields are "
                + ", ".join(spec.name for spec in self.form.fields)
            )
        refused = []
        for name, value in values.items():
            if value is None:
                self.form.reset(name)
            elif not self.form.set(name, value):
                refused.append(name)
        self._refresh()
        if refused:
            raise ValueError(
                "; ".join(
                    f"{name}: the control cannot hold {values[name]!r} "
                    f"({self.form.field(name).allowed()})"
                    for name in refused
                )
            )

    def arguments(self) -> dict[str, Any]:
        """The endpoint input the controls describe, as Generate would submit it: every field
        that has a value (defaults included), in fal's order. The prompt is stripped, as the
        magic strips a cell body; a field left unset (a random seed) is left out."""
        return self.form.values()

    def errors(self, arguments: Mapping[str, Any] | None = None) -> list[FieldError]:
        """Why the controls cannot be submitted as they are (empty when Generate may run)."""
        if arguments is None:
            arguments = self.arguments()
        problems = self.form.problems()
        marked = {e.loc[:2] for e in problems}
        errors = check_input(self.endpoint, arguments, schema=self.form.schema)
        return problems + [e for e in errors if e.loc[:2] not in marked]

    def cost_problem(self, estimate: Estimate | None = None) -> str | None:
        """Why ``max_cost`` forbids the current settings (their estimate is higher, or
        unknown), else None."""
        estimate = estimate or self.estimate
        if self.max_cost is None or estimate is None:
            return None
        limit = format_money(self.max_cost, "USD")
        if estimate.amount is None:
            return f"{estimate.describe()}, and LtxMagics.max_cost is {limit}"
        if estimate.amount > self.max_cost:
            return f"the estimate {estimate.short} is over LtxMagics.max_cost ({limit})"
        return None

    # -- reacting to the controls --------------------------------------------------------------

    @contextlib.contextmanager
    def _quietly(self) -> Iterator[None]:
        """Changes made inside redraw nothing until the end (the caller redraws)."""
        self._loading += 1
        try:
            yield
        finally:
            self._loading -= 1

    def _refresh(self) -> None:
        """Redraw each control's errors, the estimate, and Generate's state and reason."""
        if self._loading:
            return
        arguments = self.arguments()
        errors = self.errors(arguments)
        prompt_missing = not str(arguments.get("prompt") or "").strip()
        shown = [e for e in errors if not (prompt_missing and e.loc[:2] == ("body", "prompt"))]
        # An error of a field whose control is not built yet shows in the message only.
        self.form.show_errors(shown)
        schema = self.form.schema
        self.estimate = self.session.estimate(
            ValidatedInput(self.endpoint, arguments, (), schema), self.queue_url
        )
        self.cost.value = self._cost_html(self.estimate)
        cost_problem = self.cost_problem(self.estimate)
        if shown:
            reason = "Generate is off: " + "; ".join(str(e) for e in shown[:3])
            if len(shown) > 3:
                reason += f" (and {len(shown) - 3} more)"
            self.message.value = coloured(reason, ERROR_COLOUR)
        elif prompt_missing:
            self.message.value = coloured("Write a prompt to generate.", MUTED_COLOUR)
        elif cost_problem:
            self.message.value = coloured(f"Generate is off: {cost_problem}.", ERROR_COLOUR)
        else:
            self.message.value = ""
        blocked = bool(errors) or cost_problem is not None
        self.generate_button.disabled = blocked
        self.generate_button.tooltip = (
            "See the reason under the buttons" if blocked else f"Start a job on {self.endpoint}"
        )
        if self.sweep_row is not None:
            self.sweep_row.refresh()

    @staticmethod
    def _cost_html(estimate: Estimate) -> str:
        if estimate.amount is None:
            return coloured(estimate.describe(), MUTED_COLOUR)
        return (
            f'<span style="font-weight: 600">≈ {escape(estimate.short)}</span> '
            f"{coloured(estimate.describe().removeprefix(estimate.short).strip(), MUTED_COLOUR)}"
        )

    # -- actions -----------------------------------------------------------------------------

    def apply_preset(self, name: str) -> None:
        """Set steps or guidance from the parameter guide (see :data:`PRESETS`)."""
        preset = next(p for p in PRESETS if p.name == name)
        if self.form.has(preset.field):
            self.form.set(preset.field, preset.value)
            self._refresh()

    def reuse_seed(self) -> int | None:
        """Fix the seed to that of the selected history entry, else of the last finished run."""
        run = self._seed_source()
        if run is None or run.seed is None or not self.form.has(_SEED):
            return None
        self.form.set(_SEED, run.seed)
        self._refresh()
        return run.seed

    def _seed_source(self) -> PanelRun | None:
        if self.selected_run is not None:
            return self.selected_run
        finished = [run for run in self.runs if run.job.done and run.seed is not None]
        return max(finished, key=lambda run: run.job.finished_at or 0.0, default=None)

    def generate(self) -> Job | None:
        """Start a job from the controls and return it at once (None if the input is invalid,
        over ``max_cost``, or the session refused it; the panel then says why)."""
        self._refresh()
        if self.generate_button.disabled:
            return None
        options = JobOptions(timeout=self.timeout, save_dir=self.save_dir)
        try:
            job = self.session.start(
                self.endpoint,
                self.arguments(),
                options,
                queue_url=self.queue_url,
                storage_url=self.storage_url,
                estimate=self.estimate,
            )
        except (LtxError, ValueError) as error:
            self.message.value = coloured(str(error), ERROR_COLOUR)
            return None
        self.message.value = ""
        self._select(None)
        view = JobView(job, log_lines=self.log_lines, save_dir=self.save_dir)
        schema = self.form.schema
        run = PanelRun(self, job, view, schema.defaults() if schema is not None else {})
        self.runs.append(run)
        self.jobs_area.children = (*self.jobs_area.children, view)
        self.history.children = (run.entry, *self.history.children)
        run.listener = lambda _job: self._job_changed(run)
        job.add_listener(run.listener)
        self._job_changed(run)
        return job

    def _job_changed(self, run: PanelRun) -> None:
        """A job changed (called on the runner thread): redraw what its state decides."""
        if run.render():
            self._update_status()

    def cancel(self) -> list[Job]:
        """Ask the server to cancel every run and sweep job of this panel that has not ended;
        returns them."""
        running = [run.job for run in self.runs if not run.job.done]
        for job in running:
            job.cancel()
        if self.sweep_row is not None:
            running += self.sweep_row.cancel()
        return running

    def run_sweep(self, **axes: str) -> Any:
        """Set the sweep row's axes as typed (``panel.run_sweep(guidance_scale="3, 5, 7")``)
        and run it over the current settings: the :class:`~._sweeps.Sweep`, its grid under
        the panel (None when it cannot run: the row says why)."""
        assert self.sweep_row is not None
        if axes:
            self.sweep_row.set_axes(**axes)
        return self.sweep_row.run()

    def _job_changed_in_sweep(self, job: Job) -> None:
        """A sweep job changed (runner thread): the status line counts ended jobs."""
        if job.done:
            self._update_status()

    def load_run(self, run: PanelRun) -> None:
        """Put a run's endpoint and input back into the controls, and select the run."""
        self.load_input(run.job.endpoint, run.job.input)
        self._select(run)

    def load_input(self, endpoint: str, arguments: Mapping[str, Any]) -> None:
        """Switch to ``endpoint`` and set the controls so that :meth:`arguments` gives back
        ``arguments`` (every field it lacks at its default)."""
        self.switch_endpoint(endpoint)
        with self._quietly():
            refused = self.form.load(arguments)
        self._refresh()
        if refused:
            self.message.value = coloured(
                f"Could not load {', '.join(refused)} into {self.endpoint}'s controls.",
                ERROR_COLOUR,
            )

    def copy_as_magic(self, run: PanelRun | None = None) -> str:
        """The ``%%ltx`` cell that submits ``run``'s input again (default: the current
        settings), put into the next cell.

        It is kept in :attr:`last_copied` and shown under the history, since a click in a
        notebook reaches the next cell only with the next execution's reply.
        """
        if run is not None:
            text = magic_cell(run.job.endpoint, run.job.input)
        else:
            text = magic_cell(self.endpoint, self.arguments())
        self.last_copied = text
        offer_cell(text, self.copied_cell, self.shell)
        return text

    def _select(self, run: PanelRun | None) -> None:
        if self.selected_run is not None:
            self.selected_run.entry.layout.border = "1px solid transparent"
        self.selected_run = run
        if run is not None:
            run.entry.layout.border = "1px solid #1e6fd9"
        self._update_status()

    # -- status ------------------------------------------------------------------------------

    def status_line(self) -> str:
        """One line: endpoint, runs, and how many are running or failed."""
        runs = list(self.runs)
        counts = [counted(len(runs), "run")]
        running = sum(1 for run in runs if not run.job.done)
        failed = sum(1 for run in runs if run.job.status == JobStatus.FAILED)
        if running:
            counts.append(f"{running} running")
        if failed:
            counts.append(f"{failed} failed")
        sweeps = self.sweep_row.status_words() if self.sweep_row is not None else ""
        if sweeps:
            counts.append(sweeps)
        return f"ltx panel · {self.endpoint} · {', '.join(counts)}"

    def _update_status(self) -> None:
        with self._status_lock:
            self.status.value = coloured(self.status_line(), MUTED_COLOUR)
            sweeping = self.sweep_row is not None and self.sweep_row.running()
            self.cancel_button.disabled = all(run.job.done for run in self.runs) and not sweeping
            source = self._seed_source()
            self.reuse_seed_button.disabled = source is None or source.seed is None

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (the widgets are gone from the frontend)."""
        return self.comm is None

    def __repr__(self) -> str:
        return self.status_line()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:
            bundle["text/plain"] = f"{self.status_line()} · {_NO_WIDGETS}"
        return bundle

    def close(self) -> None:
        """Stop following the jobs (they go on) and close every widget of the panel."""
        for run in self.runs:
            if run.listener is not None:
                run.job.remove_listener(run.listener)
            run.view.close()
        if self.sweep_row is not None:
            self.sweep_row.close()
        for form in self.forms.values():
            form.close()
        close_tree(self, skip=tuple(run.view for run in self.runs))


def _in_background(work: Callable[[], T]) -> concurrent.futures.Future[T]:
    """Run ``work`` on a thread of its own; its result (or error) in a future."""
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        try:
            future.set_result(work())
        except BaseException as error:  # handed to whoever reads the future
            future.set_exception(error)

    threading.Thread(target=run, name="ltx-panel-prices", daemon=True).start()
    return future


def _title(endpoint: str) -> str:
    return next((i.title for i in known_endpoints() if i.endpoint_id == endpoint), endpoint)


def _short_value(value: Any) -> str:
    if isinstance(value, str):
        return "uploaded" if value.lower().startswith("data:") else shorten(value, 60)
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list) and not value:
        return "none"
    return shorten(json.dumps(value, default=str), 80)
