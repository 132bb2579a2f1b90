"""One endpoint's input as a form: a control per field of its schema, in fal's order.

Required fields and the first few of ``x-fal-order-properties`` show at once; the rest sit
under "Additional settings", collapsed, as in fal's playground. Their controls are built the
first time that section opens (an endpoint may have thirty fields; most people never open
it), and until then the form keeps their values itself, so :meth:`EndpointForm.values`
always gives the whole input.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import ipywidgets as widgets

from ._controls import FieldControl, JsonControl, Problem, control_for
from ._errors import FieldError
from ._openapi import EndpointSchema, Field
from ._widgets import close_tree

__all__ = ["EXTRA_FIELDS", "FIRST_FEW", "EndpointForm"]

#: How many of fal's ordered fields show at once (required ones always do).
FIRST_FEW = 6
#: The control of an endpoint without a schema that takes any other fields, as JSON.
EXTRA_FIELDS = "other_fields"


class EndpointForm:
    """The controls of one endpoint's input.

    ``schema`` is the endpoint's (None when it could not be had: the form then has the
    prompt and a JSON box for any other field, sent unvalidated). ``defaults`` replaces the
    schema's default of a field (configured values such as ``LtxMagics.steps``); one the
    field does not accept is ignored here (the panel refuses it). ``word_guide`` gives the
    prompt the 200-word guide.
    """

    def __init__(
        self,
        endpoint_id: str,
        schema: EndpointSchema | None,
        *,
        defaults: Mapping[str, Any] | None = None,
        word_guide: bool = False,
    ) -> None:
        self.endpoint_id = endpoint_id
        self.schema = schema
        self.word_guide = word_guide
        if schema is not None:
            self.fields: tuple[Field, ...] = schema.fields
        else:
            self.fields = (
                Field("prompt", type="string", title="Prompt", required=True),
                Field(
                    EXTRA_FIELDS,
                    type="object",
                    title="Other fields",
                    description="Any other input fields, as a JSON object (sent unvalidated).",
                ),
            )
        self._index = {spec.name: spec for spec in self.fields}
        self.defaults: dict[str, Any] = {}
        for spec in self.fields:
            configured = (defaults or {}).get(spec.name)
            if configured is not None and not spec.check(configured):
                self.defaults[spec.name] = configured
            elif spec.has_default:
                self.defaults[spec.name] = copy.deepcopy(spec.default)
        self.main_names = tuple(
            spec.name for i, spec in enumerate(self.fields) if spec.required or i < FIRST_FEW
        )
        self.extra_names = tuple(s.name for s in self.fields if s.name not in self.main_names)
        #: The built controls, by field name.
        self.controls: dict[str, FieldControl] = {}
        #: Values of the fields whose controls are not built yet.
        self.pending: dict[str, Any] = {name: self.defaults.get(name) for name in self.extra_names}
        self.on_change: Callable[[], None] | None = None
        for name in self.main_names:
            self._build(name)
        self.main = widgets.VBox([self.controls[name] for name in self.main_names])
        self.extra_box = widgets.VBox()
        self.additional = widgets.Accordion(
            children=[self.extra_box],
            titles=(f"Additional settings ({len(self.extra_names)})",),
            selected_index=None,
        )
        self.additional.add_class("ltx-additional")
        self.additional.observe(self._opened, "selected_index")
        if not self.extra_names:
            self.additional.layout.display = "none"
        self.widget = widgets.VBox([self.main, self.additional])
        self.widget.add_class("ltx-form")

    # -- controls ---------------------------------------------------------------------------

    def _build(self, name: str) -> FieldControl:
        spec = self._index[name]
        options: dict[str, Any] = {"word_guide": self.word_guide}
        if name in self.defaults:
            options.update(default=self.defaults[name], has_default=True)
        if name == EXTRA_FIELDS:
            control: FieldControl = JsonControl(spec, has_default=False)
        else:
            control = control_for(spec, **options)
        if name in self.pending:
            value = self.pending.pop(name)
            if value is not None:
                control.set_value(value)
        control.on_change = self._changed
        self.controls[name] = control
        return control

    def build_all(self) -> None:
        """Build the controls of "Additional settings" (done when it first opens)."""
        missing = [name for name in self.extra_names if name not in self.controls]
        for name in missing:
            self._build(name)
        if missing:
            self.extra_box.children = tuple(self.controls[name] for name in self.extra_names)

    def _opened(self, change: Mapping[str, Any]) -> None:
        if change["new"] is not None:
            self.build_all()

    def control(self, name: str) -> FieldControl:
        """The control of field ``name`` (built if it is in the unopened section);
        ``KeyError`` if the endpoint has no such field."""
        if name not in self._index:
            raise KeyError(f"{self.endpoint_id} has no field {name!r}")
        if name not in self.controls:
            self.build_all()
        return self.controls[name]

    def __iter__(self) -> Iterator[FieldControl]:
        """The built controls, in fal's order."""
        return (self.controls[s.name] for s in self.fields if s.name in self.controls)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # -- values ------------------------------------------------------------------------------

    def field(self, name: str) -> Field:
        """The schema field ``name`` (``KeyError`` if the endpoint has none)."""
        return self._index[name]

    def has(self, name: str) -> bool:
        """Whether the endpoint has the field ``name``."""
        return name in self._index

    def value(self, name: str) -> Any:
        """The value of field ``name`` (None: not set)."""
        if name in self.controls:
            return self.controls[name].value
        return self.pending.get(name)

    def values(self) -> dict[str, Any]:
        """The input the form describes, in fal's order; fields not set are left out."""
        found: dict[str, Any] = {}
        for spec in self.fields:
            value = self.value(spec.name)
            if spec.name == EXTRA_FIELDS:
                if isinstance(value, Mapping):
                    found.update(value)
            elif value is not None:
                found[spec.name] = value
        return found

    def set(self, name: str, value: Any) -> bool:
        """Set field ``name`` to ``value``; False (nothing changed) when the control cannot
        hold it, or, for a field not built yet, when the field does not accept it."""
        if name in self.controls:
            return self.controls[name].set_value(value)
        spec = self._index.get(name)
        if spec is None or (value is not None and spec.check(value)):
            return False
        self.pending[name] = copy.deepcopy(value)
        return True

    def reset(self, name: str) -> None:
        """Field ``name`` back to its default (or not set)."""
        if name in self.controls:
            self.controls[name].reset()
        else:
            self.pending[name] = copy.deepcopy(self.defaults.get(name))

    def load(self, arguments: Mapping[str, Any]) -> list[str]:
        """Set every field from ``arguments`` (a field not in it goes back to its default);
        the names of the arguments the form could not take."""
        refused = []
        rest = dict(arguments)
        for spec in self.fields:
            if spec.name == EXTRA_FIELDS:
                continue
            if spec.name in rest:
                if not self.set(spec.name, rest.pop(spec.name)):
                    refused.append(spec.name)
                    self.reset(spec.name)
            else:
                self.reset(spec.name)
        if rest and EXTRA_FIELDS in self._index:
            self.set(EXTRA_FIELDS, rest)
        elif rest:
            refused += list(rest)
        return refused

    def text(self, name: str) -> str | None:
        """The raw text of a text field (the prompt as typed, before stripping)."""
        control = self.controls.get(name)
        text = getattr(control, "text", None)
        return text.value if isinstance(text, (widgets.Text, widgets.Textarea)) else None

    # -- errors ------------------------------------------------------------------------------

    def problems(self) -> list[FieldError]:
        """What the controls know is wrong and the schema cannot see, as field errors."""
        return [
            FieldError(("body", control.name, *loc), message, "value_error")
            for control in self
            for loc, message in control.problems()
        ]

    def show_errors(self, errors: Sequence[FieldError]) -> list[FieldError]:
        """Mark each control with its errors (and clear the others); the errors no built
        control shows (a field the endpoint lacks, or one not built yet)."""
        per_field: dict[str, list[Problem]] = {name: [] for name in self.controls}
        unshown = []
        for error in errors:
            loc = tuple(p for p in error.loc if p != "body")
            name = str(loc[0]) if loc else ""
            if name in per_field:
                per_field[name].append((loc[1:], error.msg))
            else:
                unshown.append(error)
        for name, control in self.controls.items():
            control.show_errors(per_field[name])
        return unshown

    def close(self) -> None:
        """Close every widget of the form."""
        close_tree(self.widget)
