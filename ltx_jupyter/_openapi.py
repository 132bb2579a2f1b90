"""fal's per-endpoint queue OpenAPI documents, read into an :class:`EndpointSchema`.

A document (``GET https://fal.ai/api/openapi/queue/openapi.json?endpoint_id=<id>``) names its
input schema in the request body of ``POST /<id>`` and its output schema in the 200 answer of
``GET /<id>/requests/{request_id}``; both are followed through ``$ref`` (nested ones too). Each
property becomes a :class:`Field` holding every keyword fal writes: type, title, description,
default, examples, enum (text or numeric literal sets), minimum/maximum and their exclusive
forms, minLength/maxLength, items (arrays, of objects too), nested objects, nullable
``anyOf [X, {"type": "null"}]`` and ``anyOf`` of an object and preset names (a video size).
Fields are kept in ``x-fal-order-properties`` order, the order fal's playground shows.

:meth:`EndpointSchema.validate` checks an input against the schema before anything is sent;
each error names the field, the value and what the field allows.
"""

from __future__ import annotations

import copy
import difflib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ._errors import FieldError, InputError, SchemaDocumentError
from ._schema import image_kind, is_integer, is_number, json_problem
from ._text import value_repr

__all__ = [
    "EndpointSchema",
    "Field",
    "FileKind",
    "SchemaValidation",
    "load_document",
    "loads_document",
    "parse_document",
]

FileKind = Literal["image", "video", "audio", "file"]

_JSON_TYPES = frozenset({"string", "integer", "number", "boolean", "array", "object", "null"})
_REF_PREFIX = "#/components/schemas/"
_NOUNS = {"image": "an image", "video": "a video", "audio": "an audio file", "file": "a file"}


@dataclass(frozen=True, slots=True)
class Field:
    """One property of an endpoint's input or output, with every keyword fal writes.

    ``type`` is the JSON type (``None`` for a value of any type, or a union listed in
    ``variants``). An array's items are ``items`` (an object item carries its own ``fields``);
    an object's properties are ``fields`` in display order, ``ref`` naming its schema. A video
    size (``anyOf`` of an object and preset names) is an object whose ``presets`` lists the
    names. A ``*_url`` text field is a file input: ``file_kind`` says image, video, audio or file.
    """

    name: str
    type: str | None = None
    title: str | None = None
    description: str | None = None
    default: Any = None
    has_default: bool = False
    examples: tuple[Any, ...] = ()
    required: bool = False
    nullable: bool = False
    enum: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    min_items: int | None = None
    max_items: int | None = None
    format: str | None = None
    items: Field | None = None
    fields: tuple[Field, ...] = ()
    ref: str | None = None
    presets: tuple[str, ...] | None = None
    variants: tuple[Field, ...] = ()
    file_kind: FileKind | None = None
    _index: dict[str, Field] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {f.name: f for f in self.fields})

    def __repr__(self) -> str:
        shown = []
        for name, spec in Field.__dataclass_fields__.items():
            if name in ("name", "_index", "description", "title"):
                continue
            value = getattr(self, name)
            if value != spec.default and value != () and (name != "fields" or value):
                if name == "fields":
                    value = tuple(f.name for f in value)
                shown.append(f"{name}={value!r}")
        return f"Field({self.name!r}{''.join(', ' + s for s in shown)})"

    @property
    def is_file(self) -> bool:
        """Whether the field takes a file (a URL, a data URI or, client-side, a local path)."""
        return self.file_kind is not None

    def field(self, name: str) -> Field | None:
        """The object's field called ``name``, or None."""
        return self._index.get(name)

    def allowed(self, *, allow_files: bool = True) -> str:
        """A short phrase saying which values the field accepts ("an integer from 9 to 481").

        ``allow_files=False`` describes a file field as the server sees it (no local paths).
        """
        if self.presets is not None:
            names = ", ".join(repr(p) for p in self.presets)
            return f"one of {names} or an object ({', '.join(f.name for f in self.fields)})"
        if self.enum is not None:
            return "one of " + ", ".join(_literal(v) for v in self.enum)
        if self.variants:
            return " or ".join(v.allowed(allow_files=allow_files) for v in self.variants)
        if self.file_kind is not None:
            if allow_files:
                kind = "" if self.file_kind == "file" else f"{self.file_kind} "
                return f"an http(s) URL, a data: URI or the path of a readable {kind}file"
            return f"an http(s) URL or a data: URI of {_NOUNS[self.file_kind]}"
        if self.type in ("integer", "number"):
            return _range_phrase("an integer" if self.type == "integer" else "a number", self)
        if self.type == "string":
            return _length_phrase(self)
        if self.type == "boolean":
            return "true or false"
        if self.type == "array":
            text = "a list"
            if self.min_items is not None and self.max_items is not None:
                text += f" of {self.min_items} to {self.max_items} items"
            elif self.max_items is not None:
                text += f" of at most {self.max_items} items"
            elif self.min_items is not None:
                text += f" of at least {self.min_items} items"
            if self.items is not None and self.items.type is not None:
                text += ", each " + self.items.allowed(allow_files=allow_files)
            return text
        if self.type == "object":
            if self.fields:
                return f"an object ({', '.join(f.name for f in self.fields)})"
            return "an object"
        if self.type == "null":
            return "null"
        return "any JSON value"

    def check(
        self,
        value: Any,
        *,
        strict: bool = True,
        allow_files: bool = True,
        loc: tuple[str | int, ...] | None = None,
    ) -> list[FieldError]:
        """Every error of ``value`` for this field (empty when it is valid).

        ``loc`` is where the value sits (fal's form, ``("body", "loras", 0)``); it defaults to
        ``("body", name)``. With ``strict=False`` a key an object does not have is not an error.
        """
        checker = _Checker(strict=strict, allow_files=allow_files)
        checker.value(self, value, loc if loc is not None else ("body", self.name))
        return checker.errors


@dataclass(frozen=True)
class SchemaValidation:
    """What :meth:`EndpointSchema.validate` found: field errors and warnings.

    A warning is a field the schema does not have, when validation is not strict.
    """

    errors: tuple[FieldError, ...] = ()
    warnings: tuple[FieldError, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether there is no error (there may be warnings)."""
        return not self.errors

    def raise_for_errors(self) -> None:
        """Raise :class:`~ltx_jupyter.InputError` listing every error, if there is one."""
        if self.errors:
            raise InputError(self.errors)


@dataclass(frozen=True)
class EndpointSchema:
    """One endpoint read from its fal OpenAPI document.

    ``title`` is the document's own (``"Queue OpenAPI for <id>"``); ``category`` and the rest of
    ``metadata`` come from ``info["x-fal-metadata"]``. ``fields`` is the input in display order,
    ``output_fields`` the output's fields; ``input_name`` and ``output_name`` are the schemas'
    names in the document.
    """

    endpoint_id: str
    title: str
    category: str | None
    metadata: Mapping[str, Any]
    input_name: str
    fields: tuple[Field, ...]
    output_name: str
    output_fields: tuple[Field, ...]
    _index: dict[str, Field] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {f.name: f for f in self.fields})

    @property
    def field_names(self) -> tuple[str, ...]:
        """The input fields' names, in display order."""
        return tuple(f.name for f in self.fields)

    @property
    def required(self) -> tuple[str, ...]:
        """The names of the input fields that must be given."""
        return tuple(f.name for f in self.fields if f.required)

    @property
    def file_fields(self) -> tuple[Field, ...]:
        """The top-level file inputs (``image_url``, ``video_url``...)."""
        return tuple(f for f in self.fields if f.is_file)

    def field(self, name: str) -> Field | None:
        """The input field called ``name``, or None."""
        return self._index.get(name)

    def output_field(self, name: str) -> Field | None:
        """The output field called ``name``, or None."""
        for f in self.output_fields:
            if f.name == name:
                return f
        return None

    def closest_field(self, name: str) -> str | None:
        """The input field whose name is closest to ``name`` (``num_frame`` → ``num_frames``)."""
        return _closest(name, self._index)

    def defaults(self) -> dict[str, Any]:
        """The input fields that have a default, with it (a fresh copy each call)."""
        return {f.name: copy.deepcopy(f.default) for f in self.fields if f.has_default}

    def validate(
        self, data: Any, *, strict: bool = True, allow_files: bool = True
    ) -> SchemaValidation:
        """Check an input against the schema; nothing is sent.

        A ``None`` value means the field is not set. A field the schema does not have is an
        error naming the closest field it has (fal ignores unknown fields, so a typo would
        silently run with the default); with ``strict=False`` it is a warning. With
        ``allow_files=False`` (the server's view) a file field must be an http(s) URL or a data
        URI; otherwise a readable local path is accepted too (the client uploads it).
        """
        checker = _Checker(strict=strict, allow_files=allow_files)
        if not isinstance(data, Mapping):
            checker.errors.append(FieldError(("body",), "must be a JSON object", "dict_type"))
        else:
            checker.members(self.fields, self._index, data, ("body",), self.endpoint_id)
        return SchemaValidation(tuple(checker.errors), tuple(checker.warnings))


# ---- reading a document ---------------------------------------------------------------------


def loads_document(text: str | bytes, endpoint_id: str | None = None) -> EndpointSchema:
    """Read a document from its JSON text; :class:`SchemaDocumentError` if it is not valid."""
    try:
        document = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SchemaDocumentError(f"it is not JSON ({exc})", endpoint_id=endpoint_id) from None
    return parse_document(document, endpoint_id)


def load_document(path: str | os.PathLike[str], endpoint_id: str | None = None) -> EndpointSchema:
    """Read a document from a JSON file; :class:`SchemaDocumentError` if it is not valid."""
    with open(path, "rb") as handle:
        return loads_document(handle.read(), endpoint_id)


def parse_document(document: Any, endpoint_id: str | None = None) -> EndpointSchema:
    """Read a decoded document into an :class:`EndpointSchema`.

    ``endpoint_id`` is the endpoint the document was asked for (default: the one it names in
    ``info["x-fal-metadata"]["endpointId"]``); a document naming another endpoint is an error.
    Raises :class:`SchemaDocumentError` naming what is wrong.
    """
    return _Reader(document, endpoint_id).read()


class _Reader:
    """Reads one document; every problem raises :class:`SchemaDocumentError`."""

    def __init__(self, document: Any, endpoint_id: str | None) -> None:
        self.document = document
        self.endpoint_id = endpoint_id.strip().strip("/") if endpoint_id else None
        self.schemas: Mapping[str, Any] = {}
        self.object_fields: dict[str, tuple[Field, ...]] = {}
        self.resolving: list[str] = []

    def fail(self, problem: str) -> SchemaDocumentError:
        return SchemaDocumentError(problem, endpoint_id=self.endpoint_id)

    def read(self) -> EndpointSchema:
        document = self.document
        if not isinstance(document, Mapping):
            raise self.fail(f"it is a JSON {type(document).__name__}, not an object")
        if self.endpoint_id is None:  # for the messages below, when the document names it
            named = _get(document, "info", "x-fal-metadata", "endpointId")
            self.endpoint_id = named.strip("/") if isinstance(named, str) else None
        version = document.get("openapi")
        if not isinstance(version, str) or not version.startswith("3."):
            raise self.fail(f"it is not an OpenAPI 3 document (openapi: {version!r})")
        info = document.get("info")
        if not isinstance(info, Mapping):
            raise self.fail("no info object")
        metadata = info.get("x-fal-metadata", {})
        if not isinstance(metadata, Mapping):
            raise self.fail("info.x-fal-metadata is not an object")
        named = metadata.get("endpointId")
        if named is not None and not isinstance(named, str):
            raise self.fail("info.x-fal-metadata.endpointId is not text")
        if self.endpoint_id and named and named.strip("/") != self.endpoint_id:
            raise self.fail(f"it describes {named!r}, not {self.endpoint_id!r}")
        endpoint_id = self.endpoint_id or (named.strip("/") if named else None)
        if not endpoint_id:
            raise self.fail("no endpoint id (info.x-fal-metadata.endpointId)")
        self.endpoint_id = endpoint_id
        components = document.get("components")
        schemas = components.get("schemas") if isinstance(components, Mapping) else None
        if not isinstance(schemas, Mapping):
            raise self.fail("no components.schemas")
        self.schemas = schemas
        paths = document.get("paths")
        if not isinstance(paths, Mapping):
            raise self.fail("no paths")

        post = _get(paths, f"/{endpoint_id}", "post")
        if not isinstance(post, Mapping):
            raise self.fail(f"no POST path /{endpoint_id}")
        input_ref = _get(post, "requestBody", "content", "application/json", "schema", "$ref")
        if not isinstance(input_ref, str):
            raise self.fail(f"POST /{endpoint_id} has no application/json request body $ref")
        result = _get(paths, f"/{endpoint_id}/requests/{{request_id}}", "get")
        if not isinstance(result, Mapping):
            raise self.fail(f"no result path GET /{endpoint_id}/requests/{{request_id}}")
        responses = result.get("responses")
        answer = None
        if isinstance(responses, Mapping):
            answer = responses.get("200", responses.get(200))
        output_ref = _get(answer, "content", "application/json", "schema", "$ref")
        if not isinstance(output_ref, str):
            raise self.fail(
                f"GET /{endpoint_id}/requests/{{request_id}} has no 200 application/json $ref"
            )

        input_name, input_schema = self.resolve(input_ref, "input")
        output_name, output_schema = self.resolve(output_ref, "output")
        fields = self.properties(input_schema, input_name, "")
        output_fields = self.properties(output_schema, output_name, "output.")
        category = metadata.get("category")
        return EndpointSchema(
            endpoint_id=endpoint_id,
            title=str(info.get("title") or f"Queue OpenAPI for {endpoint_id}"),
            category=category if isinstance(category, str) else None,
            metadata=dict(metadata),
            input_name=input_name,
            fields=fields,
            output_name=output_name,
            output_fields=output_fields,
        )

    def resolve(self, ref: str, what: str) -> tuple[str, Mapping[str, Any]]:
        """The name and schema a local ``$ref`` points to."""
        name = ref[len(_REF_PREFIX) :] if ref.startswith(_REF_PREFIX) else None
        schema = self.schemas.get(name) if name else None
        if not isinstance(schema, Mapping):
            raise self.fail(f"{what} $ref {ref!r} not found")
        return name, schema

    def properties(self, schema: Mapping[str, Any], name: str, path: str) -> tuple[Field, ...]:
        """An object schema's properties as fields, in ``x-fal-order-properties`` order."""
        schema = self.merged(schema, path.rstrip(".") or name)
        if schema.get("type", "object") != "object" or not isinstance(
            schema.get("properties", {}), Mapping
        ):
            raise self.fail(f"schema {name!r} is not an object schema")
        properties: Mapping[str, Any] = schema.get("properties", {})
        required = schema.get("required", [])
        if not isinstance(required, list):
            raise self.fail(f"schema {name!r} has a 'required' that is not a list")
        order = schema.get("x-fal-order-properties", [])
        if not isinstance(order, list):
            raise self.fail(f"schema {name!r} has an x-fal-order-properties that is not a list")
        names = [n for n in order if isinstance(n, str) and n in properties]
        names += [n for n in properties if n not in names]
        return tuple(self.field(n, properties[n], path + n, required=n in required) for n in names)

    def merged(self, schema: Any, path: str) -> Mapping[str, Any]:
        """``schema`` with a ``$ref`` or a one-element ``allOf`` folded in (siblings win)."""
        if not isinstance(schema, Mapping):
            raise self.fail(f"property {path!r} is not a schema object")
        if "$ref" in schema:
            ref = schema["$ref"]
            if not isinstance(ref, str):
                raise self.fail(f"property {path!r} has a $ref that is not text")
            name, target = self.resolve(ref, f"property {path!r}")
            if name in self.resolving:
                # A recursive schema: stop here with an object of unknown fields.
                return {"type": "object", "title": name, "x-ltx-ref": name}
            self.resolving.append(name)
            try:
                target = self.merged(target, path)
            finally:
                self.resolving.pop()
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            return {**target, "x-ltx-ref": name, **siblings}
        all_of = schema.get("allOf")
        if all_of is not None:
            if not isinstance(all_of, list) or not all_of:
                raise self.fail(f"property {path!r} has an allOf that is not a list of schemas")
            combined: dict[str, Any] = {}
            for part in all_of:
                part = self.merged(part, path)
                for key, value in part.items():
                    if key == "properties" and isinstance(combined.get(key), Mapping):
                        combined[key] = {**combined[key], **value}
                    elif key == "required" and isinstance(combined.get(key), list):
                        combined[key] = [*combined[key], *value]
                    else:
                        combined[key] = value
            siblings = {k: v for k, v in schema.items() if k != "allOf"}
            return {**combined, **siblings}
        return schema

    def field(self, name: str, schema: Any, path: str, *, required: bool = False) -> Field:
        """One property as a :class:`Field`."""
        schema = self.merged(schema, path)
        options: dict[str, Any] = {"required": required}
        title = schema.get("title")
        description = schema.get("description")
        options["title"] = title if isinstance(title, str) else None
        options["description"] = description if isinstance(description, str) else None
        if "default" in schema:
            options["default"] = schema["default"]
            options["has_default"] = True
        examples = schema.get("examples")
        if isinstance(examples, list):
            options["examples"] = tuple(examples)
        elif "example" in schema:
            options["examples"] = (schema["example"],)
        if schema.get("nullable") is True:  # OpenAPI 3.0's own spelling
            options["nullable"] = True

        alternatives = schema.get("anyOf", schema.get("oneOf"))
        if alternatives is not None:
            return self.union(name, alternatives, path, options)

        kind = schema.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if k != "null"]
            if len(kinds) < len(kind):
                options["nullable"] = True
            if len(kinds) != 1:
                variants = tuple(self.field(name, {**schema, "type": k}, path) for k in kinds)
                return Field(name, variants=variants, **options)
            kind = kinds[0]
        if kind is None and "enum" not in schema:
            if isinstance(schema.get("properties"), Mapping):
                kind = "object"
            elif "items" in schema:
                kind = "array"
        elif kind is not None and (not isinstance(kind, str) or kind not in _JSON_TYPES):
            raise self.fail(f"property {path!r} has unknown type {kind!r}")
        options["type"] = kind

        if "enum" in schema:
            values = schema["enum"]
            if not isinstance(values, list) or not values:
                raise self.fail(f"property {path!r} has an enum that is not a list of values")
            if kind == "null" or None in values:
                options["nullable"] = True
            options["enum"] = tuple(v for v in values if v is not None)
        for keyword, option in (
            ("minimum", "minimum"),
            ("maximum", "maximum"),
            ("exclusiveMinimum", "exclusive_minimum"),
            ("exclusiveMaximum", "exclusive_maximum"),
        ):
            if keyword in schema:
                options[option] = self.number(schema[keyword], keyword, path)
        # OpenAPI 3.0 writes an exclusive bound as a flag beside minimum/maximum.
        for flag, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            if schema.get(flag) is True:
                options[f"exclusive_{bound}"] = options.pop(bound, None)
            elif schema.get(flag) is False:
                options.pop(f"exclusive_{bound}", None)
        for keyword, option in (
            ("minLength", "min_length"),
            ("maxLength", "max_length"),
            ("minItems", "min_items"),
            ("maxItems", "max_items"),
        ):
            if keyword in schema:
                value = schema[keyword]
                if not is_integer(value) or value < 0:
                    raise self.fail(f"property {path!r} has a {keyword} that is not a count")
                options[option] = value
        if isinstance(schema.get("format"), str):
            options["format"] = schema["format"]
        ref = schema.get("x-ltx-ref")
        if isinstance(ref, str):
            options["ref"] = ref

        if kind == "array" and "items" in schema:
            options["items"] = self.field(name, schema["items"], path + "[]")
        elif kind == "object" and "properties" in schema:
            if not isinstance(ref, str):
                options["fields"] = self.properties(schema, path, path + ".")
            elif ref in self.object_fields:
                options["fields"] = self.object_fields[ref]
            elif ref not in self.resolving:
                self.resolving.append(ref)
                try:
                    fields = self.properties(schema, ref, path + ".")
                finally:
                    self.resolving.pop()
                self.object_fields[ref] = options["fields"] = fields
            # else: an object that contains itself; its inner fields stay unchecked.
        elif kind == "string" and name.endswith("_url"):
            options["file_kind"] = _file_kind(name)
        return Field(name, **options)

    def union(self, name: str, alternatives: Any, path: str, options: dict[str, Any]) -> Field:
        """An ``anyOf``/``oneOf``: nullable, an object or presets, or a general union."""
        if not isinstance(alternatives, list) or not alternatives:
            raise self.fail(f"property {path!r} has an anyOf that is not a list of schemas")
        parts = [self.merged(a, path) for a in alternatives]
        kept = [p for p in parts if p.get("type") != "null"]
        if len(kept) < len(parts):
            options["nullable"] = True
        # The outer schema's title, description and default describe the whole field.
        if len(kept) == 1:
            inner = self.field(name, kept[0], path)
            return _replace(inner, options)
        objects = [p for p in kept if isinstance(p.get("properties"), Mapping)]
        enums = [p for p in kept if "enum" in p and p.get("type", "string") == "string"]
        if len(objects) == 1 and len(enums) == 1 and len(kept) == 2:
            inner = self.field(name, objects[0], path)
            presets = enums[0]["enum"]
            if not isinstance(presets, list) or not all(isinstance(p, str) for p in presets):
                raise self.fail(f"property {path!r} has presets that are not text")
            return _replace(inner, {**options, "presets": tuple(presets)})
        variants = tuple(self.field(name, p, path) for p in kept)
        return Field(name, variants=variants, **options)

    def number(self, value: Any, keyword: str, path: str) -> float | None:
        if isinstance(value, bool):
            return None  # the OpenAPI 3.0 flag, handled by the caller
        if not is_number(value):
            raise self.fail(f"property {path!r} has a {keyword} that is not a number")
        return value


def _replace(inner: Field, options: Mapping[str, Any]) -> Field:
    """``inner`` with the outer schema's keywords laid over it."""
    values = {name: getattr(inner, name) for name in Field.__dataclass_fields__ if name != "_index"}
    for key, value in options.items():
        if key in ("title", "description") and value is None:
            continue
        if key == "nullable":
            value = value or inner.nullable
        values[key] = value
    return Field(**values)


def _get(node: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def _file_kind(name: str) -> FileKind:
    for kind in ("image", "video", "audio"):
        if kind in name:
            return kind  # type: ignore[return-value]
    return "file"


# ---- checking values ------------------------------------------------------------------------


class _Checker:
    """Collects the errors and warnings of one validation."""

    def __init__(self, *, strict: bool, allow_files: bool) -> None:
        self.strict = strict
        self.allow_files = allow_files
        self.errors: list[FieldError] = []
        self.warnings: list[FieldError] = []

    def fail(self, spec: Field, loc: tuple[str | int, ...], value: Any, kind: str) -> None:
        allowed = spec.allowed(allow_files=self.allow_files)
        self.errors.append(FieldError(loc, f"must be {allowed}, got {value_repr(value)}", kind))

    def members(
        self,
        fields: Sequence[Field],
        index: Mapping[str, Field],
        data: Mapping[Any, Any],
        loc: tuple[str | int, ...],
        owner: str,
    ) -> None:
        """Check an object's keys and values, then its required fields."""
        for key, value in data.items():
            if not isinstance(key, str):
                self.errors.append(
                    FieldError((*loc, str(key)), "field names must be text", "str_type")
                )
                continue
            spec = index.get(key)
            if spec is None:
                self.unknown(key, value, index, (*loc, key), owner)
            elif value is not None:
                self.value(spec, value, (*loc, key))
        for spec in fields:
            if spec.required and data.get(spec.name) is None:
                allowed = spec.allowed(allow_files=self.allow_files)
                self.errors.append(
                    FieldError((*loc, spec.name), f"is required ({allowed})", "missing")
                )

    def unknown(
        self,
        key: str,
        value: Any,
        index: Mapping[str, Field],
        loc: tuple[str | int, ...],
        owner: str,
    ) -> None:
        closest = _closest(key, index)
        if closest is not None:
            hint = f"did you mean {closest!r}?"
        else:
            hint = "its fields are " + ", ".join(index) if index else "it takes no fields"
        problem = json_problem(loc, value)
        if problem is not None:
            self.errors.append(problem)
        entry = FieldError(loc, f"is not a field of {owner}; {hint}", "unknown_field")
        (self.errors if self.strict else self.warnings).append(entry)

    def value(self, spec: Field, value: Any, loc: tuple[str | int, ...]) -> None:
        """Check one value (not None) against ``spec``."""
        if spec.variants:
            for variant in spec.variants:
                trial = _Checker(strict=self.strict, allow_files=self.allow_files)
                trial.value(variant, value, loc)
                if not trial.errors:
                    self.warnings.extend(trial.warnings)
                    return
            self.fail(spec, loc, value, "union_error")
            return
        if spec.presets is not None and isinstance(value, str):
            if value not in spec.presets:
                self.fail(spec, loc, value, "literal_error")
            return
        if spec.file_kind is not None:
            self.file(spec, value, loc)
            return
        kind = spec.type
        if kind == "string":
            if not isinstance(value, str):
                self.fail(spec, loc, value, "string_type")
                return
            problem = json_problem(loc, value)
            if problem is not None:
                self.errors.append(problem)
                return
        elif kind == "integer":
            if not is_integer(value):
                self.fail(spec, loc, value, "int_type")
                return
        elif kind == "number":
            if not is_number(value):
                self.fail(spec, loc, value, "float_type")
                return
        elif kind == "boolean":
            if not isinstance(value, bool):
                self.fail(spec, loc, value, "bool_type")
                return
        elif kind == "array":
            self.array(spec, value, loc)
            return
        elif kind == "object":
            self.object(spec, value, loc)
            return
        elif kind == "null":
            self.fail(spec, loc, value, "none_required")
            return
        elif spec.enum is None:
            problem = json_problem(loc, value)
            if problem is not None:
                self.errors.append(problem)
            return
        if spec.enum is not None:
            if not any(_same_literal(value, option) for option in spec.enum):
                self.fail(spec, loc, value, "literal_error")
            return
        if kind in ("integer", "number"):
            self.bounds(spec, value, loc)
        elif kind == "string":
            self.length(spec, value, loc)

    def bounds(self, spec: Field, value: float, loc: tuple[str | int, ...]) -> None:
        if spec.minimum is not None and value < spec.minimum:
            self.fail(spec, loc, value, "greater_than_equal")
        elif spec.exclusive_minimum is not None and value <= spec.exclusive_minimum:
            self.fail(spec, loc, value, "greater_than")
        elif spec.maximum is not None and value > spec.maximum:
            self.fail(spec, loc, value, "less_than_equal")
        elif spec.exclusive_maximum is not None and value >= spec.exclusive_maximum:
            self.fail(spec, loc, value, "less_than")

    def length(self, spec: Field, value: str, loc: tuple[str | int, ...]) -> None:
        if spec.required and spec.min_length is None and not value.strip():
            self.errors.append(FieldError(loc, "must not be empty", "string_too_short"))
        elif spec.min_length is not None and len(value) < spec.min_length:
            self.fail(spec, loc, value, "string_too_short")
        elif spec.max_length is not None and len(value) > spec.max_length:
            allowed = spec.allowed(allow_files=self.allow_files)
            self.errors.append(
                FieldError(
                    loc, f"must be {allowed}, got {len(value)} characters", "string_too_long"
                )
            )

    def array(self, spec: Field, value: Any, loc: tuple[str | int, ...]) -> None:
        if not isinstance(value, (list, tuple)):
            self.fail(spec, loc, value, "list_type")
            return
        if (spec.min_items is not None and len(value) < spec.min_items) or (
            spec.max_items is not None and len(value) > spec.max_items
        ):
            allowed = spec.allowed(allow_files=self.allow_files)
            self.errors.append(
                FieldError(loc, f"must be {allowed}, got {len(value)} items", "too_long")
            )
        for position, item in enumerate(value):
            where = (*loc, position)
            if spec.items is None:
                problem = json_problem(where, item)
                if problem is not None:
                    self.errors.append(problem)
            elif item is None:
                if not spec.items.nullable:
                    self.fail(spec.items, where, item, "missing")
            else:
                self.value(spec.items, item, where)

    def object(self, spec: Field, value: Any, loc: tuple[str | int, ...]) -> None:
        if not isinstance(value, Mapping):
            self.fail(spec, loc, value, "dict_type")
            return
        if spec.fields:
            owner = spec.ref or ".".join(str(p) for p in loc if p != "body")
            self.members(spec.fields, spec._index, value, loc, owner)
        else:
            problem = json_problem(loc, value)
            if problem is not None:
                self.errors.append(problem)

    def file(self, spec: Field, value: Any, loc: tuple[str | int, ...]) -> None:
        if not isinstance(value, (str, os.PathLike)):
            self.fail(spec, loc, value, "url_parsing")
            return
        kind = image_kind(value)
        if kind == "data":
            media = str(value).strip()[5:].split(",", 1)[0].split(";", 1)[0].lower()
            family = media.split("/", 1)[0]
            if family in _NOUNS and family != spec.file_kind and spec.file_kind != "file":
                kind = None
        if kind is None or (kind == "file" and not self.allow_files):
            self.fail(spec, loc, value, "url_parsing")


def _same_literal(value: Any, option: Any) -> bool:
    """Whether ``value`` is the literal ``option`` (``True`` is not 1, ``6.0`` is 6)."""
    if isinstance(option, bool) or isinstance(value, bool):
        return isinstance(option, bool) and isinstance(value, bool) and value == option
    if is_number(option):
        return is_number(value) and value == option
    return bool(value == option)


def _closest(name: str, index: Mapping[str, Any]) -> str | None:
    normal = name.strip().lower().replace("-", "_").replace(" ", "_")
    if normal in index:
        return normal
    matches = difflib.get_close_matches(normal, list(index), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    return json.dumps(value)


def _number(value: float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _range_phrase(kind: str, spec: Field) -> str:
    low = spec.minimum if spec.minimum is not None else spec.exclusive_minimum
    high = spec.maximum if spec.maximum is not None else spec.exclusive_maximum
    low_open = spec.minimum is None and spec.exclusive_minimum is not None
    high_open = spec.maximum is None and spec.exclusive_maximum is not None
    if low is not None and high is not None and not low_open and not high_open:
        return f"{kind} from {_number(low)} to {_number(high)}"
    parts = []
    if low is not None:
        parts.append(f"above {_number(low)}" if low_open else f"of at least {_number(low)}")
    if high is not None:
        parts.append(f"below {_number(high)}" if high_open else f"of at most {_number(high)}")
    if not parts:
        return kind
    if len(parts) == 2:
        return f"{kind} {parts[0]} and {parts[1].removeprefix('of ')}"
    return f"{kind} {parts[0]}"


def _length_phrase(spec: Field) -> str:
    low, high = spec.min_length, spec.max_length
    if low is not None and high is not None:
        return f"text of {low} to {high} characters"
    if high is not None:
        return f"text of at most {high} characters"
    if low is not None:
        return f"text of at least {low} characters"
    return "text"
