"""The panel's controls: one widget class per kind of field in an endpoint's fal schema.

:func:`control_for` picks the class from the field's keywords (:class:`~._openapi.Field`):

=================================================  ===================================
field                                              control
=================================================  ===================================
the prompt                                         :class:`PromptControl`: a text area
                                                   and a live count against its limit
other text                                         :class:`TextControl`
an ``enum`` of text                                :class:`ChoiceControl`: toggle
                                                   buttons when few, else a dropdown
a numeric literal set (duration 6/8/10)            :class:`ChoiceControl`, toggle buttons
a bounded integer or number                        :class:`SliderControl`: a slider and
                                                   an exact-value box
an unbounded one                                   :class:`NumberControl`: a number box
a boolean                                          :class:`CheckboxControl`
a file (``*_url``)                                 :class:`FileControl`: an upload, a URL
                                                   box and a preview by kind
presets or an object (``video_size``)              :class:`SizeControl`: a preset
                                                   dropdown and a custom width and height
an object of fields (a conditioning input)         :class:`ObjectControl`
a list of objects (``loras``, conditioning items)  :class:`ListControl`: rows with add
                                                   and remove
anything else                                      :class:`JsonControl`: JSON text
=================================================  ===================================

Every control shows the field's title, its description on hover and its default; gives its
value (``None``: not set, left out of the input) and takes one back (:meth:`FieldControl.
set_value` says whether it can show it); and shows under itself why a value is refused. A
value is judged by the schema (the panel validates the whole input); a control only reports
what the schema cannot see (:meth:`FieldControl.problems`: text that is not JSON, an upload of
the wrong kind).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import ipywidgets as widgets

from ._html import (
    audio_html,
    escape,
    image_html,
    is_http_url,
    safe_audio_src,
    safe_image_src,
    video_html,
)
from ._openapi import Field
from ._schema import PROMPT_GUIDE, PROMPT_WORD_GUIDE, image_kind, is_integer, is_number
from ._text import shorten
from ._widgets import close_tree

__all__ = [
    "CheckboxControl",
    "ChoiceControl",
    "FieldControl",
    "FileControl",
    "JsonControl",
    "ListControl",
    "NumberControl",
    "ObjectControl",
    "PromptControl",
    "SizeControl",
    "SliderControl",
    "TextControl",
    "control_for",
    "field_title",
    "label_html",
]

#: Where a problem sits inside a field (``()`` for the field itself, ``(0, "path")`` for the
#: first row's path), and what it is.
Problem = tuple[tuple[str | int, ...], str]

ERROR_COLOUR = "#c0392b"
WARNING_COLOUR = "#d35400"
MUTED_COLOUR = "#777"
#: Text enums with at most this many values are toggle buttons; more make a dropdown.
FEW_CHOICES = 4
#: An upload's preview travels to the browser again inside the HTML; past this size the
#: control names the file instead of sending its bytes twice.
PREVIEW_MAX_CHARS = 2_000_000
_LABEL_WIDTH = "190px"
_COMPACT_LABEL_WIDTH = "150px"
_NOT_SET = "not set"
_CUSTOM = "custom size"
_DATA_URI = re.compile(r"data:[\w.+-]+/[\w.+-]+(?:;[\w.+=-]+)*;base64,[A-Za-z0-9+/]*={0,2}", re.I)


def coloured(text: str, colour: str) -> str:
    """``text`` escaped, small, in ``colour`` (empty text gives an empty string)."""
    return f'<span style="color: {colour}; font-size: 12px">{escape(text)}</span>' if text else ""


def field_title(spec: Field) -> str:
    """The field's title from its schema, else its name in words (``num_frames`` → "Num
    frames")."""
    if spec.title:
        return spec.title
    words = spec.name.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def shown_value(value: Any, limit: int = 40) -> str:
    """A value as a control's default line shows it: ``30``, ``0.5``, ``on``, ``704×480``."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if is_integer(value):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:g}"
    if isinstance(value, str):
        return shorten(value, limit) if value else "empty"
    if isinstance(value, Mapping) and set(value) == {"width", "height"}:
        return f"{value['width']}×{value['height']}"
    if isinstance(value, (list, tuple)) and not value:
        return "none"
    return shorten(json.dumps(value, default=str), limit)


def label_html(spec: Field, default: Any, has_default: bool) -> str:
    """A control's title (an asterisk when required) over its default, or "required" or
    "optional"."""
    title = f'<span style="font-weight: 600">{escape(field_title(spec))}</span>'
    if spec.required:
        title += f'<span style="color: {ERROR_COLOUR}"> *</span>'
    if has_default:
        note = f"default {shown_value(default)}"
    else:
        note = "required" if spec.required else "optional"
    return (
        f'<div class="ltx-label" style="line-height: 1.25">{title}<br>'
        f'<span style="font-size: 11px; color: {MUTED_COLOUR}">{escape(note)}</span></div>'
    )


def same_value(a: Any, b: Any) -> bool:
    """Whether two field values are the same (``True`` is not 1; ``6.0`` is 6)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if is_number(a) and is_number(b):
        return bool(a == b)
    return bool(a == b)


class FieldControl(widgets.VBox):
    """One field's control: a title (description on hover, default shown), the input
    widgets, and a line under them saying why the value is refused.

    ``default`` is the value :meth:`reset` restores (the schema's, or a configured one);
    ``compact`` puts the title above the input, for rows of a list or an object's fields.
    ``on_change`` is called after each change a person makes (not after :meth:`set_value`).
    """

    kind: ClassVar[str] = "field"

    def __init__(
        self,
        spec: Field,
        *,
        default: Any = None,
        has_default: bool | None = None,
        compact: bool = False,
    ) -> None:
        self.field = spec
        self.name = spec.name
        self.compact = compact
        self.has_default = spec.has_default if has_default is None else has_default
        self.default = copy.deepcopy(default if has_default is not None else spec.default)
        self.on_change: Callable[[], None] | None = None
        self._quiet = 0
        self.label = widgets.HTML(
            label_html(spec, self.default, self.has_default),
            tooltip=spec.description or None,
            layout=widgets.Layout(
                width="auto" if compact else _LABEL_WIDTH, flex="0 0 auto", margin="0 8px 0 0"
            ),
        )
        #: The line under the control saying why its value is refused; made when first
        #: needed (most controls never show one, and each widget costs the browser time).
        self.error: widgets.HTML | None = None
        self._error_lines: list[str] = []
        inputs = self._inputs()
        row_layout = widgets.Layout(align_items="center", border="1px solid transparent")
        if compact:
            self.row = widgets.VBox([self.label, *inputs], layout=row_layout)
        else:
            self.row = widgets.HBox([self.label, *inputs], layout=row_layout)
        super().__init__(
            [self.row, *self._below()],
            layout=widgets.Layout(margin="0 12px 2px 0" if compact else "0 0 2px 0"),
        )
        self.add_class("ltx-control")
        self.add_class(f"ltx-{self.kind}")
        self.add_class(f"ltx-field-{self.name}")
        self.reset()

    # -- building (subclasses) ---------------------------------------------------------------

    def _inputs(self) -> list[widgets.Widget]:
        """The widgets beside the title."""
        raise NotImplementedError

    def _below(self) -> list[widgets.Widget]:
        """Widgets under the row, above the error line (a count, a preview)."""
        return []

    # -- the value ---------------------------------------------------------------------------

    @property
    def value(self) -> Any:
        """The field's value as the input sends it; None when it is not set."""
        raise NotImplementedError

    def _set(self, value: Any) -> bool:
        raise NotImplementedError

    def set_value(self, value: Any) -> bool:
        """Show ``value`` (None: not set); False, changing nothing, if the control cannot
        hold it (a text for a number, a value outside a dropdown's options)."""
        with self._quietly():
            return self._set(value)

    @contextlib.contextmanager
    def _quietly(self) -> Iterator[None]:
        """Widget changes made inside are the program's, not a person's: no :meth:`_changed`."""
        self._quiet += 1
        try:
            yield
        finally:
            self._quiet -= 1

    def reset(self) -> None:
        """Back to the default (or not set, for a field without one)."""
        if not (self.has_default and self.set_value(self.default)):
            self.set_value(None)

    def problems(self) -> list[Problem]:
        """What is wrong that the schema cannot see (text that is not JSON, an upload of the
        wrong kind); empty when nothing is."""
        return []

    def _changed(self, _change: Any = None) -> None:
        """A person changed a widget: tell the form."""
        if self._quiet:
            return
        self._refresh_display()
        if self.on_change is not None:
            self.on_change()

    def _refresh_display(self) -> None:
        """Redraw what follows the value (a count, a preview)."""

    # -- errors ------------------------------------------------------------------------------

    def show_errors(self, errors: Sequence[Problem]) -> None:
        """Mark the control and say under it why its value is refused (empty: clear)."""
        lines = list(dict.fromkeys(f"{self._where(loc)}{message}" for loc, message in errors))
        self._error_lines = lines
        if lines and self.error is None:
            self.error = widgets.HTML()
            self.children = (*self.children, self.error)
        if self.error is not None:
            self.error.value = "<br>".join(coloured(line, ERROR_COLOUR) for line in lines)
            self.error.layout.display = None if lines else "none"
        self.row.layout.border = f"1px solid {ERROR_COLOUR}" if lines else "1px solid transparent"
        if lines:
            self.add_class("ltx-invalid")
        else:
            self.remove_class("ltx-invalid")

    @property
    def error_text(self) -> str:
        """The reasons shown under the control, as text ("" when none)."""
        return "\n".join(self._error_lines)

    def _where(self, loc: tuple[str | int, ...]) -> str:
        path = self.name + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
        return f"{path}: "

    @property
    def invalid(self) -> bool:
        """Whether the control shows an error."""
        return "ltx-invalid" in self._dom_classes

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}={self.value!r}>"


# -- text ------------------------------------------------------------------------------------


class TextControl(FieldControl):
    """A text field: one line, or a text area for prompts and long text; a text with a
    default gets a reset button. Empty text is not set, unless the field has a default (then
    it is the empty text the person chose)."""

    kind = "text"
    placeholder: ClassVar[str] = ""

    def _multiline(self) -> bool:
        return "prompt" in self.name or (self.field.max_length or 0) > 200

    def _inputs(self) -> list[widgets.Widget]:
        layout = widgets.Layout(flex="1 1 auto", width="auto")
        if self._multiline():
            self.text: widgets.Text | widgets.Textarea = widgets.Textarea(
                rows=5 if self.name == "prompt" else 2,
                placeholder=self.placeholder,
                layout=layout,
            )
        else:
            self.text = widgets.Text(placeholder=self.placeholder, layout=layout)
        self.text.observe(self._changed, "value")
        self.text.add_class("ltx-input")
        if self.has_default and self._multiline():
            self.reset_button = widgets.Button(
                description="reset",
                icon="undo",
                tooltip="Back to the endpoint's default",
                layout=widgets.Layout(width="auto", flex="0 0 auto"),
            )
            self.reset_button.on_click(self._on_reset)
            return [self.text, self.reset_button]
        return [self.text]

    def _on_reset(self, _button: Any = None) -> None:
        self.reset()
        self._changed()

    @property
    def value(self) -> str | None:
        text = self.text.value
        if self.name == "prompt":
            text = text.strip()  # as the magic strips a cell body
        return str(text) if text or self.has_default else None

    def _set(self, value: Any) -> bool:
        if value is None:
            self.text.value = ""
        elif isinstance(value, str):
            self.text.value = value
        else:
            return False
        self._refresh_display()
        return True


class PromptControl(TextControl):
    """The prompt: a text area with a live count against its limit, the schema's
    ``maxLength`` (characters) or, for endpoints whose guide says so, the 200-word guide (a
    warning, never a block), and that guide folded under it."""

    kind = "prompt"
    placeholder = (
        "The main action first, then movements, appearances, background, camera, light and "
        "changes, as one flowing paragraph."
    )

    def __init__(self, spec: Field, *, word_guide: bool = False, **options: Any) -> None:
        self.word_guide = word_guide
        super().__init__(spec, **options)

    def _below(self) -> list[widgets.Widget]:
        self.count = widgets.HTML(layout=widgets.Layout(margin=f"0 0 0 {_LABEL_WIDTH}"))
        below: list[widgets.Widget] = [self.count]
        if self.word_guide:
            self.guide = widgets.Accordion(
                children=[
                    widgets.HTML(f'<div style="font-size: 12px">{escape(PROMPT_GUIDE)}</div>')
                ],
                titles=("Prompt guide",),
                selected_index=None,
            )
            below.append(self.guide)
        return below

    def _refresh_display(self) -> None:
        text = self.text.value
        words = len(text.split())
        limit = self.field.max_length
        if limit is not None:
            characters = len(text.strip())
            colour = ERROR_COLOUR if characters > limit else MUTED_COLOUR
            self.count.value = coloured(f"{characters} / {limit} characters", colour)
        elif self.word_guide:
            if words > PROMPT_WORD_GUIDE:
                self.count.value = coloured(
                    f"{words} / {PROMPT_WORD_GUIDE} words: longer than the endpoint's guide "
                    "(it still runs)",
                    WARNING_COLOUR,
                )
            else:
                self.count.value = coloured(f"{words} / {PROMPT_WORD_GUIDE} words", MUTED_COLOUR)
        else:
            self.count.value = coloured(f"{words} words", MUTED_COLOUR)


# -- choices, booleans, numbers ------------------------------------------------------------------


class ChoiceControl(FieldControl):
    """An ``enum``: toggle buttons for a numeric literal set or a few values, else a dropdown.
    A field without a default also offers "not set"."""

    kind = "choice"

    def _inputs(self) -> list[widgets.Widget]:
        spec = self.field
        values = list(spec.enum or ())
        options: list[tuple[str, Any]] = [(shown_value(v, 60), v) for v in values]
        if not self.has_default:
            options.insert(0, (_NOT_SET, None))
        self.choices = options
        numeric = all(is_number(v) for v in values)
        if numeric or len(values) <= FEW_CHOICES:
            self.widget: widgets.ToggleButtons | widgets.Dropdown = widgets.ToggleButtons(
                options=options,
                style={"button_width": "auto"},
                layout=widgets.Layout(width="auto"),
            )
        else:
            self.widget = widgets.Dropdown(options=options, layout=widgets.Layout(width="260px"))
        self.widget.observe(self._changed, "index")
        self.widget.add_class("ltx-input")
        return [self.widget]

    @property
    def value(self) -> Any:
        index = self.widget.index
        return None if index is None else self.choices[index][1]

    def _set(self, value: Any) -> bool:
        for index, (_label, option) in enumerate(self.choices):
            if (value is None and option is None) or (
                value is not None and option is not None and same_value(option, value)
            ):
                self.widget.index = index
                return True
        return False


class CheckboxControl(FieldControl):
    """A boolean: a checkbox."""

    kind = "checkbox"

    def _inputs(self) -> list[widgets.Widget]:
        self.checkbox = widgets.Checkbox(indent=False, layout=widgets.Layout(width="auto"))
        self.checkbox.observe(self._changed, "value")
        self.checkbox.add_class("ltx-input")
        return [self.checkbox]

    @property
    def value(self) -> bool:
        return bool(self.checkbox.value)

    def _set(self, value: Any) -> bool:
        if value is None:
            value = bool(self.default) if self.has_default else False
        if not isinstance(value, bool):
            return False
        self.checkbox.value = value
        return True


def _bounds(spec: Field) -> tuple[float, float] | None:
    """The slider range of a numeric field with both ends bounded (exclusive ends moved in
    by one step), else None."""
    step = 1 if spec.type == "integer" else None
    low = spec.minimum
    if low is None and spec.exclusive_minimum is not None:
        low = spec.exclusive_minimum + (step or _step(spec.exclusive_minimum, spec.maximum))
    high = spec.maximum
    if high is None and spec.exclusive_maximum is not None:
        high = spec.exclusive_maximum - (step or _step(low, spec.exclusive_maximum))
    if low is None or high is None or not low < high:
        return None
    return low, high


def _step(low: float | None, high: float | None) -> float:
    """A slider step giving about a hundred positions: 0.01 for 0-1, 0.1 for 1-10, 1 for
    1-60."""
    if low is None or high is None or high <= low:
        return 0.01
    return float(10 ** round(math.log10((high - low) / 100)))


def _decimals(step: float) -> int:
    return max(0, -math.floor(math.log10(step) + 1e-9))


class _NumberBase(FieldControl):
    """Shared by the slider and the number box: reading and writing the exact-value box."""

    @property
    def integer(self) -> bool:
        return self.field.type == "integer"

    def _box(self, width: str = "110px") -> widgets.IntText | widgets.FloatText:
        layout = widgets.Layout(width=width, flex="0 0 auto")
        box = widgets.IntText(layout=layout) if self.integer else widgets.FloatText(layout=layout)
        box.add_class("ltx-input")
        return box

    def _number(self, value: Any) -> int | float | None:
        """``value`` as the box holds it, or None if it cannot."""
        if not is_number(value):
            return None
        if self.integer:
            return int(value) if float(value).is_integer() else None
        return float(value)


class SliderControl(_NumberBase):
    """A bounded integer or number: a slider over its range and a box for the exact value.

    The box is the value: it takes any number, so a value outside the range stays visible
    (and marked), while the slider stops at its end.
    """

    kind = "slider"

    def _inputs(self) -> list[widgets.Widget]:
        bounds = _bounds(self.field)
        assert bounds is not None
        low, high = bounds
        if self.integer:
            self.slider: widgets.IntSlider | widgets.FloatSlider = widgets.IntSlider(
                min=int(low), max=int(high), continuous_update=False, readout=False
            )
            self.decimals = 0
        else:
            step = _step(low, high)
            self.decimals = _decimals(step)
            self.slider = widgets.FloatSlider(
                min=low, max=high, step=step, continuous_update=False, readout=False
            )
        self.slider.layout = widgets.Layout(width="160px" if self.compact else "320px")
        self.box = self._box("90px" if self.compact else "110px")
        self._syncing = False
        self.slider.observe(self._slider_moved, "value")
        self.box.observe(self._box_changed, "value")
        if self.compact:
            return [widgets.HBox([self.slider, self.box])]
        return [self.slider, self.box]

    def _slider_moved(self, change: Mapping[str, Any]) -> None:
        if self._syncing:
            return
        value = change["new"]
        self._syncing = True
        try:
            self.box.value = value if self.integer else round(float(value), self.decimals)
        finally:
            self._syncing = False
        self._changed()

    def _box_changed(self, change: Mapping[str, Any]) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            self.slider.value = min(max(change["new"], self.slider.min), self.slider.max)
        finally:
            self._syncing = False
        self._changed()

    @property
    def value(self) -> int | float:
        return self.box.value

    def _set(self, value: Any) -> bool:
        if value is None and self.has_default:
            value = self.default
        number = self._number(value)
        if number is None:
            return False
        self.box.value = number
        return True


class NumberControl(_NumberBase):
    """An unbounded integer or number: a number box. A field with no default that may be left
    out (the seed) also has a toggle, "random" or "auto", that leaves it to the endpoint."""

    kind = "number"

    def _inputs(self) -> list[widgets.Widget]:
        self.box = self._box()
        self.box.observe(self._changed, "value")
        inputs: list[widgets.Widget] = [self.box]
        self.unset: widgets.ToggleButton | None = None
        if not self.has_default and not self.field.required:
            seed = self.name == "seed"
            self.unset = widgets.ToggleButton(
                description="random" if seed else "auto",
                icon="random" if seed else "magic",
                tooltip=(
                    "On: the endpoint picks a seed (shown with the video). Off: use the box."
                    if seed
                    else "On: the endpoint decides. Off: use the box."
                ),
                layout=widgets.Layout(width="auto"),
            )
            self.unset.observe(self._unset_changed, "value")
            inputs.append(self.unset)
        return inputs

    def _unset_changed(self, change: Mapping[str, Any]) -> None:
        self.box.disabled = bool(change["new"])
        self._changed()

    @property
    def value(self) -> int | float | None:
        if self.unset is not None and self.unset.value:
            return None
        return self.box.value

    def _set(self, value: Any) -> bool:
        if value is None:
            if self.unset is None:
                return False
            self.unset.value = True
            self.box.disabled = True
            return True
        number = self._number(value)
        if number is None:
            return False
        self.box.value = number
        if self.unset is not None:
            self.unset.value = False
            self.box.disabled = False
        return True


# -- files -------------------------------------------------------------------------------------


class FileControl(FieldControl):
    """A file (``image_url``, ``video_url``, ``audio_url``...): an upload from the computer,
    or a URL, with a preview of the field's kind (image, video or audio).

    An upload arrives in chunks (:class:`~._file_picker.FilePicker`: any size, under Jupyter
    Server's websocket message limit, its progress shown) and is kept in a file, whose path is
    the field's value: the client then treats it as it treats ``--image PATH``, inlined as a
    data: URI up to its ``data_uri_limit``, else uploaded to storage when the job starts. A
    file that is not the kind the field wants (read from its first bytes) is refused with the
    reason. A URL typed in replaces the upload.
    """

    kind = "file"

    def _inputs(self) -> list[widgets.Widget]:
        from ._file_picker import FilePicker

        kind = self.field.file_kind or "file"
        self.upload = FilePicker(
            kind=None if kind == "file" else kind,  # type: ignore[arg-type]
            field=self.name,
            layout=widgets.Layout(flex="0 0 auto"),
        )
        self.upload.on_start = self._upload_started
        self.upload.on_file = self._upload_arrived
        self.upload.on_refused = self._upload_refused
        self.url = widgets.Text(
            placeholder=f"or an https:// {'' if kind == 'file' else kind + ' '}URL",
            layout=widgets.Layout(width="auto", flex="1 1 auto", min_width="220px"),
        )
        self.uploaded: str | None = None
        self.uploaded_name: str | None = None
        self.upload_problem: str | None = None
        self.url.observe(self._url_changed, "value")
        self.url.add_class("ltx-input")
        return [self.upload, self.url]

    def _below(self) -> list[widgets.Widget]:
        self.preview = widgets.HTML(
            layout=widgets.Layout(margin="2px 0 0 0" if self.compact else f"2px 0 0 {_LABEL_WIDTH}")
        )
        return [self.preview]

    # -- the picker's news (kernel thread) ---------------------------------------------------

    def _upload_started(self, name: str, size: int) -> None:
        self.upload_problem = None
        self._changed()

    def _upload_arrived(self, received: Any) -> None:
        self.uploaded, self.uploaded_name = str(received.path), received.name
        self.upload_problem = None
        with self._quietly():
            self.url.value = ""
        self._changed()

    def _upload_refused(self, name: str, reason: str) -> None:
        self.uploaded, self.uploaded_name, self.upload_problem = None, name, reason
        with self._quietly():
            self.url.value = ""
        self._changed()

    def _url_changed(self, change: Mapping[str, Any]) -> None:
        if self._quiet:
            return
        if str(change["new"]).strip():
            self.uploaded = self.uploaded_name = self.upload_problem = None
        self._changed()

    # -- the value -----------------------------------------------------------------------------

    @property
    def value(self) -> str | None:
        url = self.url.value.strip()
        return url or self.uploaded

    def _set(self, value: Any) -> bool:
        if value is not None and not isinstance(value, str):
            return False
        if isinstance(value, str) and value[:5].lower() == "data:":
            if not _DATA_URI.fullmatch(value):
                return False  # the history's stand-in for an inlined file, say: not its bytes
            # Kept out of the URL box: a data URI is an upload's bytes.
            self.url.value = ""
            self.uploaded, self.uploaded_name = value, "the loaded file"
        else:
            self.uploaded = self.uploaded_name = None
            self.url.value = value or ""
        self.upload_problem = None
        self._refresh_display()
        return True

    def problems(self) -> list[Problem]:
        receiving = self.upload.receiving
        if receiving is not None:
            return [((), f"{receiving[0]} is still arriving from the browser; wait for it")]
        if self.upload_problem and not self.value:
            return [((), self.upload_problem)]
        return []

    def _refresh_display(self) -> None:
        self.preview.value = self._preview_html()

    def _preview_html(self) -> str:
        value = self.value
        if value is None:
            return ""
        caption = self.uploaded_name if value == self.uploaded else value
        kind = self.field.file_kind or "file"
        found = image_kind(value)
        if found == "file":
            return self._file_preview(Path(value), caption or value, kind)
        if len(value) > PREVIEW_MAX_CHARS:
            return coloured(f"{caption} (too large to preview here)", MUTED_COLOUR)
        width = 160 if self.compact else 256
        if kind == "image" and safe_image_src(value) is not None:
            return image_html(value, alt=caption or "image", max_width=width, max_height=160)
        if kind == "video" and (is_http_url(value) or value.lower().startswith("data:video/")):
            return video_html(value, width=width, muted=True)
        if kind == "audio" and safe_audio_src(value) is not None:
            return audio_html(value)
        if kind == "file" and found is not None:
            return coloured(caption or "", MUTED_COLOUR)
        return coloured(f"no preview: not an http(s) URL or a data:{kind}/ URI", MUTED_COLOUR)

    def _file_preview(self, path: Path, caption: str, kind: str) -> str:
        """A local file: its size and how the job will send it, under a picture of it when it
        is an image small enough to show."""
        from ._client import DEFAULT_DATA_URI_LIMIT
        from ._files import HEAD_BYTES, sniff

        try:
            size = path.stat().st_size
            with path.open("rb") as handle:
                head = handle.read(HEAD_BYTES)
        except OSError as error:
            return coloured(f"{caption} cannot be read ({error.strerror or error})", ERROR_COLOUR)
        how = (
            "sent inline when the job starts"
            if size <= DEFAULT_DATA_URI_LIMIT
            else "uploaded when the job starts"
        )
        text = coloured(f"{caption} ({size / 1e6:.1f} MB): {how}", MUTED_COLOUR)
        sniffed = sniff(head)
        if kind != "image" or "image" not in sniffed.kinds or size * 4 // 3 > PREVIEW_MAX_CHARS:
            return text
        try:
            data = path.read_bytes()
        except OSError:
            return text
        src = f"data:{sniffed.content_type};base64,{base64.b64encode(data).decode('ascii')}"
        width = 160 if self.compact else 256
        picture = image_html(src, alt=caption, max_width=width, max_height=160)
        return f"{picture}<div>{text}</div>"


# -- sizes, objects, lists, JSON ------------------------------------------------------------------


class SizeControl(FieldControl):
    """A size given as a preset name or an object (``video_size``): a preset dropdown with
    "custom size", which shows a width and a height box."""

    kind = "size"

    def _inputs(self) -> list[widgets.Widget]:
        from ._pricing import SIZE_PRESETS

        presets = list(self.field.presets or ())
        options: list[tuple[str, Any]] = []
        for name in presets:
            size = SIZE_PRESETS.get(name)
            options.append((f"{name} ({size[0]}×{size[1]})" if size else name, name))
        options.append((_CUSTOM, _CUSTOM))
        self.preset = widgets.Dropdown(options=options, layout=widgets.Layout(width="260px"))
        self.preset.add_class("ltx-input")
        width_spec = self.field.field("width")
        height_spec = self.field.field("height")
        self.width = widgets.IntText(
            value=int(width_spec.default) if width_spec and is_integer(width_spec.default) else 512,
            description="width",
            layout=widgets.Layout(width="150px"),
            style={"description_width": "45px"},
        )
        self.height = widgets.IntText(
            value=int(height_spec.default)
            if height_spec and is_integer(height_spec.default)
            else 512,
            description="height",
            layout=widgets.Layout(width="150px"),
            style={"description_width": "45px"},
        )
        self.custom = widgets.HBox([self.width, self.height])
        self.preset.observe(self._preset_changed, "value")
        self.width.observe(self._changed, "value")
        self.height.observe(self._changed, "value")
        return [self.preset, self.custom]

    def _preset_changed(self, change: Mapping[str, Any]) -> None:
        self.custom.layout.display = None if change["new"] == _CUSTOM else "none"
        self._changed()

    @property
    def value(self) -> str | dict[str, int]:
        if self.preset.value == _CUSTOM:
            return {"width": int(self.width.value), "height": int(self.height.value)}
        return str(self.preset.value)

    def _set(self, value: Any) -> bool:
        if value is None and self.has_default:
            value = self.default
        if isinstance(value, str) and value in (self.field.presets or ()):
            self.preset.value = value
        elif (
            isinstance(value, Mapping)
            and set(value) == {"width", "height"}
            and is_integer(value["width"])
            and is_integer(value["height"])
        ):
            self.width.value, self.height.value = value["width"], value["height"]
            self.preset.value = _CUSTOM
        else:
            return False
        self.custom.layout.display = None if self.preset.value == _CUSTOM else "none"
        return True


class ObjectControl(FieldControl):
    """An object of fields (a video to extend, one conditioning item, one LoRA): its fields'
    controls side by side, each titled above its input."""

    kind = "object"

    def _inputs(self) -> list[widgets.Widget]:
        self.children_controls: dict[str, FieldControl] = {}
        for spec in self.field.fields:
            control = control_for(spec, compact=True)
            control.on_change = self._changed
            self.children_controls[spec.name] = control
        self.fields_box = widgets.HBox(
            list(self.children_controls.values()),
            layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start", width="100%"),
        )
        return [self.fields_box]

    def __init__(self, spec: Field, **options: Any) -> None:
        super().__init__(spec, **options)
        self.row.layout.align_items = "flex-start"

    @property
    def value(self) -> dict[str, Any]:
        values = {name: c.value for name, c in self.children_controls.items()}
        return {name: value for name, value in values.items() if value is not None}

    def _set(self, value: Any) -> bool:
        if value is None:
            for control in self.children_controls.values():
                control.reset()
            return True
        if not isinstance(value, Mapping) or not set(value) <= set(self.children_controls):
            return False
        for name, control in self.children_controls.items():
            if name in value and value[name] is not None:
                if not control.set_value(value[name]):
                    return False
            else:
                control.reset()
        return True

    def problems(self) -> list[Problem]:
        return [
            ((name, *loc), message)
            for name, control in self.children_controls.items()
            for loc, message in control.problems()
        ]

    def show_errors(self, errors: Sequence[Problem]) -> None:
        mine: list[Problem] = []
        inner: dict[str, list[Problem]] = {name: [] for name in self.children_controls}
        for loc, message in errors:
            if loc and loc[0] in inner:
                inner[str(loc[0])].append((loc[1:], message))
            else:
                mine.append((loc, message))
        for name, control in self.children_controls.items():
            control.show_errors(inner[name])
        super().show_errors(mine)


class ListControl(FieldControl):
    """A list of objects (``loras``, conditioning images or videos): one row of the item's
    fields per entry, each with a remove button, and a button that adds a row."""

    kind = "list"

    def _inputs(self) -> list[widgets.Widget]:
        item = self.field.items
        assert item is not None
        singular = self.name[:-1] if self.name.endswith("s") else self.name
        self.rows: list[ObjectControl] = []
        self.rows_box = widgets.VBox(layout=widgets.Layout(width="100%"))
        self.add_button = widgets.Button(
            description=f"add {singular}",
            icon="plus",
            tooltip=f"Add a row to {self.name}",
            layout=widgets.Layout(width="auto"),
        )
        self.add_button.add_class("ltx-add-row")
        self.add_button.on_click(self._on_add)
        return [
            widgets.VBox([self.rows_box, self.add_button], layout=widgets.Layout(flex="1 1 auto"))
        ]

    def __init__(self, spec: Field, **options: Any) -> None:
        super().__init__(spec, **options)
        self.row.layout.align_items = "flex-start"

    def add_row(self, value: Mapping[str, Any] | None = None) -> ObjectControl:
        """Add a row (its fields at their defaults, or ``value`` where the row can hold
        it) and return it."""
        item = self.field.items
        assert item is not None
        row = ObjectControl(item, has_default=False, compact=True)
        row.name = f"{self.name}[{len(self.rows)}]"
        row.label.layout.display = "none"
        if value is not None:
            row.set_value(value)
        row.on_change = self._changed
        remove = widgets.Button(
            icon="trash",
            tooltip="Remove this row",
            layout=widgets.Layout(width="36px", flex="0 0 auto"),
        )
        remove.add_class("ltx-remove-row")
        entry = widgets.HBox(
            [row, remove],
            layout=widgets.Layout(
                border="1px solid #ddd", padding="2px", margin="0 0 4px 0", align_items="flex-start"
            ),
        )
        remove.on_click(lambda _button: self._remove(row))
        row.entry = entry  # type: ignore[attr-defined]
        self.rows.append(row)
        self.rows_box.children = tuple(r.entry for r in self.rows)  # type: ignore[attr-defined]
        return row

    def _on_add(self, _button: Any = None) -> None:
        self.add_row()
        self._changed()

    def _remove(self, row: ObjectControl) -> None:
        self.rows.remove(row)
        self.rows_box.children = tuple(r.entry for r in self.rows)  # type: ignore[attr-defined]
        close_tree(row.entry)  # type: ignore[attr-defined]
        self._changed()

    @property
    def value(self) -> list[dict[str, Any]] | None:
        if not self.rows and not self.has_default:
            return None  # nothing added to a list the endpoint does not default
        return [row.value for row in self.rows]

    def _set(self, value: Any) -> bool:
        if value is None:
            value = self.default if self.has_default and self.default is not None else []
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, Mapping) for v in value):
            return False
        for row in self.rows:
            close_tree(row.entry)  # type: ignore[attr-defined]
        self.rows = []
        self.rows_box.children = ()
        held = True
        for item in value:
            row = self.add_row()
            held = row.set_value(item) and held
        return held

    def problems(self) -> list[Problem]:
        return [
            ((index, *loc), message)
            for index, row in enumerate(self.rows)
            for loc, message in row.problems()
        ]

    def show_errors(self, errors: Sequence[Problem]) -> None:
        mine: list[Problem] = []
        per_row: list[list[Problem]] = [[] for _ in self.rows]
        for loc, message in errors:
            if loc and isinstance(loc[0], int) and 0 <= loc[0] < len(self.rows):
                per_row[loc[0]].append((loc[1:], message))
            else:
                mine.append((loc, message))
        for index, (row, row_errors) in enumerate(zip(self.rows, per_row, strict=True)):
            row.name = f"{self.name}[{index}]"
            row.show_errors(row_errors)
        super().show_errors(mine)


class JsonControl(FieldControl):
    """Any other field (a union, a list of plain values): its value as JSON text. Text that
    is not JSON is taken as a string, as ``--param`` takes it."""

    kind = "json"

    def _inputs(self) -> list[widgets.Widget]:
        self.text = widgets.Text(
            placeholder="JSON", layout=widgets.Layout(flex="1 1 auto", width="auto")
        )
        self.text.observe(self._changed, "value")
        self.text.add_class("ltx-input")
        return [self.text]

    @property
    def value(self) -> Any:
        text = self.text.value.strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return text

    def problems(self) -> list[Problem]:
        value = self.value
        if self.field.type == "object" and value is not None and not isinstance(value, Mapping):
            return [((), 'must be a JSON object such as {"num_frames": 97}')]
        return []

    def _set(self, value: Any) -> bool:
        self.text.value = "" if value is None else json.dumps(value)
        return True


def control_for(
    spec: Field,
    *,
    default: Any = None,
    has_default: bool | None = None,
    compact: bool = False,
    word_guide: bool = False,
) -> FieldControl:
    """The control for ``spec`` (see the module's table). ``default`` (with ``has_default``
    True) replaces the schema's default, for a configured one; ``word_guide`` gives the
    prompt the 200-word guide."""
    options: dict[str, Any] = {"compact": compact}
    if has_default is not None:
        options.update(default=default, has_default=has_default)
    if spec.name == "prompt" and spec.type == "string" and spec.enum is None:
        return PromptControl(spec, word_guide=word_guide, **options)
    if spec.presets is not None and spec.fields:
        return SizeControl(spec, **options)
    if spec.file_kind is not None:
        return FileControl(spec, **options)
    if spec.enum is not None and spec.enum:
        return ChoiceControl(spec, **options)
    if spec.variants:
        return JsonControl(spec, **options)
    if spec.type == "boolean":
        return CheckboxControl(spec, **options)
    if spec.type in ("integer", "number"):
        defaulted = spec.has_default if has_default is None else has_default
        if _bounds(spec) is not None and (defaulted or spec.required):
            return SliderControl(spec, **options)
        return NumberControl(spec, **options)
    if spec.type == "string":
        return TextControl(spec, **options)
    if (
        spec.type == "array"
        and spec.items is not None
        and spec.items.type == "object"
        and spec.items.fields
    ):
        return ListControl(spec, **options)
    if spec.type == "object" and spec.fields:
        return ObjectControl(spec, **options)
    return JsonControl(spec, **options)
