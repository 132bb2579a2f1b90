"""The parameter panel: a form for the LTX endpoints, its running jobs, and a history of runs.

The panel is a second face on the magic's path: it builds the same endpoint input (defaults,
ranges and validation come from :mod:`._schema`), starts it through the same
:class:`~._jobs.JobSession`, and shows each job in the same :class:`~._views.JobView`. A run
found in its history loads back into the controls, or becomes the equivalent ``%%ltx`` cell.

Jobs report on the runner thread; the panel follows them only by assigning traits, and only
when a job's status, result or saved file changes, so a chatty log costs nothing here.
"""

from __future__ import annotations

import base64
import mimetypes
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ipywidgets as widgets

from ._display import job_caption, video_source
from ._errors import FieldError, LtxError
from ._html import escape, image_html, safe_image_src, video_html
from ._jobs import Job, JobOptions, JobSession, JobStatus
from ._openapi import EndpointSchema
from ._parsing import magic_cell
from ._schema import (
    DEFAULT_ENDPOINT,
    IMAGE_TO_VIDEO,
    PRESETS,
    PROMPT_GUIDE,
    PROMPT_WORD_GUIDE,
    TEXT_TO_VIDEO,
    check_input,
    image_kind,
    lookup_schema,
)
from ._text import shorten
from ._views import JobView

__all__ = ["Panel", "PanelRun"]

IMAGE_FIELD = "image_url"
_ERROR_COLOUR = "#c0392b"
_WARNING_COLOUR = "#d35400"
_MUTED_COLOUR = "#777"
# An uploaded image's preview travels to the browser again inside the HTML; past this size
# the panel names the file instead of sending its bytes twice.
_PREVIEW_MAX_BYTES = 2_000_000
_NO_WIDGETS = "its controls need a frontend with Jupyter widgets"


def _label(text: str, colour: str) -> str:
    return f'<span style="color: {colour}; font-size: 12px">{escape(text)}</span>' if text else ""


class PanelRun:
    """One generation started from the panel: its job, its live view and its history entry.

    The entry shows a small player once the video is there, the run's parameters as text, and
    buttons to load the parameters back into the panel or copy the run as a ``%%ltx`` cell.
    """

    def __init__(self, panel: Panel, job: Job, view: JobView) -> None:
        self.job = job
        self.view = view
        self.thumbnail = widgets.HTML()
        self.summary = widgets.HTML(layout=widgets.Layout(flex="1 1 auto"))
        self.load_button = widgets.Button(
            description="load",
            icon="upload",
            tooltip="Load this run's parameters into the panel",
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
        self.listener: Callable[[Job], None] | None = None
        self._lock = threading.Lock()
        self._shown: tuple[Any, ...] | None = None

    @property
    def seed(self) -> int | None:
        """The seed the run used: the result's, else the one it asked for."""
        if self.job.result is not None and self.job.result.seed is not None:
            return self.job.result.seed
        seed = self.job.input.get("seed")
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
            return _label(str(job.status), _MUTED_COLOUR)
        src = video_source(job.result.url, job.saved_path)
        try:
            return video_html(src, width=192, muted=True, loop=True)
        except ValueError:
            return _label("no playable source", _MUTED_COLOUR)

    def _summary_html(self) -> str:
        job = self.job
        details = [_title(job.endpoint), str(job.status)]
        caption = job_caption(job)
        if caption:
            details.append(caption)
        if job.error is not None:
            details.append(str(job.error))
        extras = []
        negative = job.input.get("negative_prompt")
        if isinstance(negative, str):
            extras.append(f"negative: {shorten(negative, 80)}")
        image = job.input.get(IMAGE_FIELD)
        if isinstance(image, str):
            extras.append("image: uploaded" if image.startswith("data:") else f"image: {image}")
        muted = f'<div style="font-size: 11px; color: {_MUTED_COLOUR}">{{}}</div>'
        return (
            f'<div style="font-size: 12px">{escape(shorten(job.prompt, 160))}</div>'
            + muted.format(escape(" · ".join(details)))
            + (muted.format(escape(" · ".join(extras))) if extras else "")
        )


class Panel(widgets.VBox):
    """A form for LTX Video: prompt, negative prompt, seed, steps, guidance, endpoint and
    image, with Generate and Cancel, a live view per job, and a history of this panel's runs.

    ``Panel()`` uses the endpoint's defaults; ``%ltx panel`` builds one with the
    ``%config LtxMagics`` settings and the magic's job session. A configured value the
    endpoint does not accept raises ``ValueError`` naming it.
    Its text form is a status line, for frontends without widgets.
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
        shell: Any = None,
    ) -> None:
        self.session = session if session is not None else JobSession()
        self.queue_url = queue_url or None
        self.storage_url = storage_url or None
        self.save_dir = save_dir or None
        self.log_lines = log_lines
        self.timeout = timeout
        self.shell = shell
        #: Every run started here, oldest first.
        self.runs: list[PanelRun] = []
        #: The history entry whose seed "reuse seed" takes (set by "load"; a new run clears it).
        self.selected_run: PanelRun | None = None
        #: The last cell made by "copy as %%ltx".
        self.last_copied: str | None = None
        self._uploaded_image: str | None = None
        self._uploaded_name: str | None = None
        self._upload_problem: str | None = None
        self._loading = False
        self._status_lock = threading.Lock()

        initial_endpoint = (endpoint or DEFAULT_ENDPOINT).strip("/")
        spec = _schema_of(initial_endpoint)
        defaults = spec.defaults()
        initial = {
            "negative_prompt": negative_prompt
            if negative_prompt is not None
            else defaults.get("negative_prompt", ""),
            "num_inference_steps": steps
            if steps is not None
            else defaults.get("num_inference_steps"),
            "guidance_scale": guidance if guidance is not None else defaults.get("guidance_scale"),
        }
        problems = [
            e for e in check_input(spec.endpoint_id, initial, schema=spec) if e.field in initial
        ]
        if problems:
            raise ValueError("; ".join(str(problem) for problem in problems))
        steps_spec = spec.field("num_inference_steps")
        guidance_spec = spec.field("guidance_scale")

        self._build_widgets(
            initial_endpoint,
            initial,
            steps_range=(
                int(_bound(steps_spec, "minimum", 1)),
                int(_bound(steps_spec, "maximum", 50)),
            ),
            guidance_range=(
                _bound(guidance_spec, "minimum", 0),
                _bound(guidance_spec, "maximum", 10),
            ),
        )
        super().__init__(children=self._layout())
        self.add_class("ltx-panel")
        self._connect()
        self._endpoint_changed()
        self._update_status()

    # -- building ----------------------------------------------------------------------------

    def _build_widgets(
        self,
        endpoint: str,
        initial: Mapping[str, Any],
        *,
        steps_range: tuple[int, int],
        guidance_range: tuple[float, float],
    ) -> None:
        full = widgets.Layout(width="100%")
        choices = [(_title(endpoint_id), endpoint_id) for endpoint_id in PANEL_ENDPOINTS]
        if endpoint not in PANEL_ENDPOINTS:
            choices.append((endpoint, endpoint))
        self.endpoint_choice = widgets.Dropdown(
            options=choices,
            value=endpoint,
            description="Endpoint",
            layout=widgets.Layout(width="420px"),
        )

        self.prompt = widgets.Textarea(
            placeholder="The main action first, then movements, appearances, background, "
            "camera, light and changes, as one flowing paragraph.",
            description="Prompt",
            rows=5,
            layout=full,
        )
        self.word_count = widgets.HTML()
        self.prompt_error = widgets.HTML()
        self.prompt_guide_text = widgets.HTML()
        self.prompt_guide = widgets.Accordion(
            children=[self.prompt_guide_text], titles=("Prompt guide",), selected_index=None
        )

        # The textarea takes the row's free width; the reset button keeps its own.
        self.negative_prompt = widgets.Textarea(
            value=initial["negative_prompt"],
            description="Negative",
            rows=2,
            layout=widgets.Layout(flex="1 1 auto", width="auto"),
        )
        self.reset_negative_button = widgets.Button(
            description="reset",
            icon="undo",
            tooltip="Back to the endpoint's default negative prompt",
            layout=widgets.Layout(width="auto", flex="0 0 auto"),
        )
        self.negative_error = widgets.HTML()

        self.seed = widgets.IntText(value=0, description="Seed", disabled=True)
        self.random_seed = widgets.ToggleButton(
            value=True,
            description="random",
            icon="random",
            tooltip="On: the server picks a seed (shown with the video). Off: use the seed field.",
            layout=widgets.Layout(width="auto"),
        )
        self.reuse_seed_button = widgets.Button(
            description="reuse seed",
            icon="redo",
            disabled=True,
            tooltip="The seed of the selected history entry, else of the last finished run",
            layout=widgets.Layout(width="auto"),
        )
        self.seed_error = widgets.HTML()

        self.steps = widgets.IntSlider(
            value=initial["num_inference_steps"],
            min=steps_range[0],
            max=steps_range[1],
            description="Steps",
            continuous_update=False,
        )
        self.guidance = widgets.FloatSlider(
            value=initial["guidance_scale"],
            min=guidance_range[0],
            max=guidance_range[1],
            step=0.1,
            description="Guidance",
            continuous_update=False,
        )
        self.steps_error = widgets.HTML()
        self.guidance_error = widgets.HTML()
        self.preset_buttons = {
            preset.name: widgets.Button(
                description=preset.name, tooltip=preset.tooltip, layout=widgets.Layout(width="auto")
            )
            for preset in PRESETS
        }

        self.image_upload = widgets.FileUpload(
            accept="image/*", multiple=False, description="Image"
        )
        self.image_url = widgets.Text(
            placeholder="or an https:// image URL",
            description="Image URL",
            layout=widgets.Layout(width="420px"),
        )
        self.image_preview = widgets.HTML()
        self.image_error = widgets.HTML()
        self.image_box = widgets.VBox(
            [
                widgets.HBox([self.image_upload, self.image_url]),
                self.image_preview,
                self.image_error,
            ]
        )

        self.generate_button = widgets.Button(
            description="Generate", icon="play", button_style="primary", disabled=True
        )
        self.cancel_button = widgets.Button(
            description="Cancel",
            icon="stop",
            disabled=True,
            tooltip="Cancel every run of this panel that has not ended",
        )
        self.message = widgets.HTML()
        self.status = widgets.HTML()
        self.jobs_area = widgets.VBox()
        self.history = widgets.VBox()
        self.copied_cell = widgets.Textarea(
            description="%%ltx",
            rows=4,
            layout=widgets.Layout(width="100%", display="none"),
        )
        self.field_errors: dict[str, widgets.HTML] = {
            "prompt": self.prompt_error,
            "negative_prompt": self.negative_error,
            "seed": self.seed_error,
            "num_inference_steps": self.steps_error,
            "guidance_scale": self.guidance_error,
            IMAGE_FIELD: self.image_error,
        }

    def _layout(self) -> list[widgets.Widget]:
        return [
            self.endpoint_choice,
            self.image_box,
            self.prompt,
            widgets.HBox([self.word_count, widgets.Label(" "), self.prompt_error]),
            self.prompt_guide,
            widgets.HBox([self.negative_prompt, self.reset_negative_button]),
            self.negative_error,
            widgets.HBox([self.seed, self.random_seed, self.reuse_seed_button]),
            self.seed_error,
            self.steps,
            self.steps_error,
            self.guidance,
            self.guidance_error,
            widgets.HBox([widgets.Label("Presets"), *self.preset_buttons.values()]),
            widgets.HBox([self.generate_button, self.cancel_button, self.message]),
            self.status,
            self.jobs_area,
            widgets.HTML("<b>History</b>"),
            self.history,
            self.copied_cell,
        ]

    def _connect(self) -> None:
        self.endpoint_choice.observe(lambda _change: self._endpoint_changed(), "value")
        self.prompt.observe(lambda _change: self._refresh(), "value")
        for control in (self.negative_prompt, self.seed, self.steps, self.guidance):
            control.observe(lambda _change: self._refresh(), "value")
        self.random_seed.observe(self._random_seed_changed, "value")
        self.image_upload.observe(self._upload_changed, "value")
        self.image_url.observe(self._image_url_changed, "value")
        self.reset_negative_button.on_click(lambda _button: self.reset_negative_prompt())
        self.reuse_seed_button.on_click(lambda _button: self.reuse_seed())
        for preset in PRESETS:
            self.preset_buttons[preset.name].on_click(
                lambda _button, preset=preset: self.apply_preset(preset.name)
            )
        self.generate_button.on_click(lambda _button: self.generate())
        self.cancel_button.on_click(lambda _button: self.cancel())

    # -- reading the controls ----------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """The chosen endpoint id."""
        return str(self.endpoint_choice.value)

    def _spec(self) -> EndpointSchema:
        return _schema_of(self.endpoint)

    def _takes_image(self) -> bool:
        return self._spec().field(IMAGE_FIELD) is not None

    @property
    def image(self) -> str | None:
        """The image input: the URL field if filled in, else the uploaded image as a data URI."""
        url = self.image_url.value.strip()
        return url or self._uploaded_image

    def arguments(self) -> dict[str, Any]:
        """The endpoint input the controls describe, as Generate would submit it.

        The prompt is stripped, as the magic strips a cell body; a random seed is left out
        (the endpoint picks one and reports it).
        """
        arguments: dict[str, Any] = {
            "prompt": self.prompt.value.strip(),
            "negative_prompt": self.negative_prompt.value,
            "num_inference_steps": int(self.steps.value),
            "guidance_scale": float(self.guidance.value),
        }
        if not self.random_seed.value:
            arguments["seed"] = int(self.seed.value)
        if self._takes_image() and self.image is not None:
            arguments[IMAGE_FIELD] = self.image
        return arguments

    def errors(self) -> list[FieldError]:
        """Why the controls cannot be submitted as they are (empty when Generate may run)."""
        # An endpoint the schema does not know is checked as the fields the panel shows.
        spec = self._spec()
        errors = check_input(spec.endpoint_id, self.arguments(), schema=spec)
        if self._takes_image() and self._upload_problem and not self.image:
            errors = [e for e in errors if e.field != IMAGE_FIELD]
            errors.append(FieldError(("body", IMAGE_FIELD), self._upload_problem, "value_error"))
        return errors

    # -- reacting to the controls --------------------------------------------------------------

    def _refresh(self) -> None:
        """Redraw the word count, each field's error and Generate's state."""
        if self._loading:
            return
        words = len(self.prompt.value.split())
        if words > PROMPT_WORD_GUIDE:
            self.word_count.value = _label(
                f"{words} / {PROMPT_WORD_GUIDE} words: longer than the endpoint's guide "
                "(it still runs)",
                _WARNING_COLOUR,
            )
        else:
            self.word_count.value = _label(f"{words} / {PROMPT_WORD_GUIDE} words", _MUTED_COLOUR)
        errors = self.errors()
        first_error: dict[str, str] = {}
        for error in errors:
            first_error.setdefault(error.field, error.msg)
        for name, label in self.field_errors.items():
            reason = first_error.pop(name, "")
            if name == "prompt" and reason and not self.prompt.value.strip():
                label.value = _label("write a prompt to generate", _MUTED_COLOUR)
            else:
                label.value = _label(f"{name}: {reason}" if reason else "", _ERROR_COLOUR)
        # Errors of fields the panel has no control for (none for the known endpoints).
        self.message.value = _label(
            "; ".join(f"{name}: {reason}" for name, reason in first_error.items()), _ERROR_COLOUR
        )
        self.generate_button.disabled = bool(errors)
        self.generate_button.tooltip = (
            "Fix the marked fields first" if errors else f"Start a job on {self.endpoint}"
        )
        self.image_preview.value = self._preview_html()

    def _endpoint_changed(self) -> None:
        self.image_box.layout.display = None if self._takes_image() else "none"
        spec = self._spec()
        notes = [
            f"<li><b>{escape(field.name)}</b>: {escape(field.description or '')}</li>"
            for field in spec.fields
            if field.name in ("num_inference_steps", "guidance_scale", IMAGE_FIELD)
        ]
        self.prompt_guide_text.value = (
            f'<div style="font-size: 12px"><p>{escape(PROMPT_GUIDE)}</p>'
            f"<ul>{''.join(notes)}</ul></div>"
        )
        self._refresh()
        self._update_status()

    def _random_seed_changed(self, change: Mapping[str, Any]) -> None:
        self.seed.disabled = bool(change["new"])
        self._refresh()

    def _upload_changed(self, change: Mapping[str, Any]) -> None:
        files: Sequence[Mapping[str, Any]] = change["new"]
        if not files:
            return
        upload = files[-1]
        name = str(upload.get("name") or "image")
        content = bytes(upload["content"])
        mime = str(upload.get("type") or mimetypes.guess_type(name)[0] or "")
        if mime.startswith("image/"):
            encoded = base64.b64encode(content).decode("ascii")
            self._uploaded_image = f"data:{mime};base64,{encoded}"
            self._upload_problem = None
        else:
            self._uploaded_image = None
            self._upload_problem = f"{name} is not an image ({mime or 'unknown type'})"
        self._uploaded_name = name
        self._set_quietly(self.image_url, "")
        self._refresh()

    def _image_url_changed(self, change: Mapping[str, Any]) -> None:
        if str(change["new"]).strip():
            # The URL replaces an earlier upload.
            self._uploaded_image = self._uploaded_name = self._upload_problem = None
            self._set_quietly(self.image_upload, ())
        self._refresh()

    def _set_quietly(self, control: widgets.Widget, value: Any) -> None:
        loading, self._loading = self._loading, True
        try:
            control.value = value
        finally:
            self._loading = loading

    def _preview_html(self) -> str:
        if not self._takes_image():
            return ""
        image = self.image
        if image is None:
            return ""
        caption = self._uploaded_name if image == self._uploaded_image else image
        if image_kind(image) == "file":
            return _label(f"local file {image}: sent when the job starts", _MUTED_COLOUR)
        if safe_image_src(image) is None:
            return _label("no preview: not an http(s) URL or a data:image/ URI", _MUTED_COLOUR)
        if len(image) > _PREVIEW_MAX_BYTES:
            return _label(f"{caption} (too large to preview here)", _MUTED_COLOUR)
        return image_html(image, alt=caption or "image", max_width=256, max_height=160)

    # -- actions -----------------------------------------------------------------------------

    def reset_negative_prompt(self) -> None:
        """Put the endpoint's default negative prompt back."""
        self.negative_prompt.value = self._spec().defaults().get("negative_prompt", "")

    def apply_preset(self, name: str) -> None:
        """Set the steps or guidance slider from the parameter guide (see :data:`PRESETS`)."""
        preset = next(p for p in PRESETS if p.name == name)
        slider = self.steps if preset.field == "num_inference_steps" else self.guidance
        slider.value = preset.value

    def reuse_seed(self) -> int | None:
        """Fix the seed to that of the selected history entry, else of the last finished run."""
        run = self._seed_source()
        if run is None or run.seed is None:
            return None
        self.seed.value = run.seed
        self.random_seed.value = False
        return run.seed

    def _seed_source(self) -> PanelRun | None:
        if self.selected_run is not None:
            return self.selected_run
        finished = [run for run in self.runs if run.job.done and run.seed is not None]
        return max(finished, key=lambda run: run.job.finished_at or 0.0, default=None)

    def generate(self) -> Job | None:
        """Start a job from the controls and return it at once (None if the input is invalid
        or the session refused it; the panel then says why)."""
        self._refresh()
        if self.errors():
            return None
        options = JobOptions(timeout=self.timeout, save_dir=self.save_dir)
        try:
            job = self.session.start(
                self.endpoint,
                self.arguments(),
                options,
                queue_url=self.queue_url,
                storage_url=self.storage_url,
            )
        except (LtxError, ValueError) as error:
            self.message.value = _label(str(error), _ERROR_COLOUR)
            return None
        self.message.value = ""
        self._select(None)
        view = JobView(job, log_lines=self.log_lines, save_dir=self.save_dir)
        run = PanelRun(self, job, view)
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
        """Ask the server to cancel every run of this panel that has not ended; returns them."""
        running = [run.job for run in self.runs if not run.job.done]
        for job in running:
            job.cancel()
        return running

    def load_run(self, run: PanelRun) -> None:
        """Put a run's endpoint and parameters back into the controls, and select the run."""
        self.load_input(run.job.endpoint, run.job.input)
        self._select(run)

    def load_input(self, endpoint: str, arguments: Mapping[str, Any]) -> None:
        """Set the controls so that :meth:`arguments` gives back ``arguments`` for ``endpoint``."""
        defaults = _schema_of(endpoint).defaults()
        self._loading = True
        try:
            if endpoint not in dict(self.endpoint_choice.options).values():
                self.endpoint_choice.options = (*self.endpoint_choice.options, (endpoint, endpoint))
            self.endpoint_choice.value = endpoint
            self.prompt.value = str(arguments.get("prompt", ""))
            self.negative_prompt.value = str(
                arguments.get("negative_prompt", defaults.get("negative_prompt", ""))
            )
            self.steps.value = arguments.get(
                "num_inference_steps", defaults.get("num_inference_steps")
            )
            self.guidance.value = arguments.get("guidance_scale", defaults.get("guidance_scale"))
            seed = arguments.get("seed")
            if seed is None:
                self.random_seed.value = True
            else:
                self.seed.value = seed
                self.random_seed.value = False
            image = arguments.get(IMAGE_FIELD)
            self._uploaded_image = self._uploaded_name = self._upload_problem = None
            self.image_upload.value = ()
            if isinstance(image, str) and image.lower().startswith("data:"):
                # Kept out of the URL field: a data URI is the upload's bytes.
                self.image_url.value = ""
                self._uploaded_image, self._uploaded_name = image, "image of the loaded run"
            else:
                self.image_url.value = image if isinstance(image, str) else ""
        finally:
            self._loading = False
        self._endpoint_changed()

    def copy_as_magic(self, run: PanelRun) -> str:
        """The ``%%ltx`` cell that submits ``run``'s input again, put into the next cell.

        It is kept in :attr:`last_copied` and shown under the history, since a click in a
        notebook reaches the next cell only with the next execution's reply.
        """
        text = magic_cell(run.job.endpoint, run.job.input)
        self.last_copied = text
        self.copied_cell.value = text
        self.copied_cell.layout.display = None
        shell = self.shell
        if shell is None:
            from IPython import get_ipython

            shell = get_ipython()
        if shell is not None:
            shell.set_next_input(text)
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
        counts = [f"{len(runs)} run{'' if len(runs) == 1 else 's'}"]
        running = sum(1 for run in runs if not run.job.done)
        failed = sum(1 for run in runs if run.job.status == JobStatus.FAILED)
        if running:
            counts.append(f"{running} running")
        if failed:
            counts.append(f"{failed} failed")
        return f"ltx panel · {self.endpoint} · {', '.join(counts)}"

    def _update_status(self) -> None:
        with self._status_lock:
            self.status.value = _label(self.status_line(), _MUTED_COLOUR)
            self.cancel_button.disabled = all(run.job.done for run in self.runs)
            source = self._seed_source()
            self.reuse_seed_button.disabled = source is None or source.seed is None

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
        _close_tree(self, skip=tuple(run.view for run in self.runs))


#: The endpoints the panel offers (the schema-driven panel for every endpoint is coming).
PANEL_ENDPOINTS = (TEXT_TO_VIDEO, IMAGE_TO_VIDEO)


def _schema_of(endpoint: str) -> EndpointSchema:
    """The endpoint's schema; the seed's text-to-video one for an endpoint without one."""
    schema = lookup_schema(endpoint).schema or lookup_schema(DEFAULT_ENDPOINT).schema
    assert schema is not None, "the package ships the seed endpoint's document"
    return schema


def _title(endpoint: str) -> str:
    from ._endpoints import known_endpoints

    return next((i.title for i in known_endpoints() if i.endpoint_id == endpoint), endpoint)


def _bound(spec: Any, name: str, fallback: float) -> float:
    value = getattr(spec, name, None) if spec is not None else None
    return fallback if value is None else value


def _close_tree(widget: widgets.Widget, skip: tuple[widgets.Widget, ...]) -> None:
    for child in getattr(widget, "children", ()):
        if child not in skip:
            _close_tree(child, skip)
    widgets.Widget.close(widget)
