"""``magic_cell`` and ``build_request`` are inverses: for any valid input of any shipped
endpoint, parsing the cell that :func:`magic_cell` writes gives back the same endpoint and the
same input, value for value and type for type."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ltx_jupyter import InputError
from ltx_jupyter._endpoints import known_endpoints
from ltx_jupyter._openapi import Field
from ltx_jupyter._parsing import build_request, magic_cell, split_line
from ltx_jupyter._schema import TEXT_TO_VIDEO, lookup_schema, validate_input
from ltx_jupyter.magics import LtxMagics

# Text a user may type: any printable unicode, line breaks, quotes, braces, dollars, dashes.
text = st.text(
    st.characters(exclude_categories=("Cs", "Cc"), include_characters="\n\t'\"{}$-\\:"),
    max_size=40,
)
prompts = text.map(str.strip).filter(bool)
urls = st.text("abcxyz-_./?=&%:", min_size=1, max_size=20).map(lambda t: "https://x.test/" + t)


def values(field: Field, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values the field accepts (within its range, of its type)."""
    if field.presets is not None:
        sizes = st.fixed_dictionaries(
            {"width": st.integers(1, 4096), "height": st.integers(1, 4096)}
        )
        return st.one_of(st.sampled_from(field.presets), sizes)
    if field.enum is not None:
        return st.sampled_from(field.enum)
    if field.variants:
        return st.one_of(*(values(v, depth) for v in field.variants if v.type != "null"))
    if field.file_kind is not None:
        return urls
    if field.type == "integer":
        low = field.minimum if field.minimum is not None else -(2**40)
        high = field.maximum if field.maximum is not None else 2**40
        return st.integers(int(low), int(high))
    if field.type == "number":
        low = field.minimum if field.minimum is not None else field.exclusive_minimum
        high = field.maximum if field.maximum is not None else field.exclusive_maximum
        floats = st.floats(
            low,
            high,
            allow_nan=False,
            allow_infinity=False,
            exclude_min=field.minimum is None and low is not None,
            exclude_max=field.maximum is None and high is not None,
        )
        ints = st.integers(int(low or -100) + 1, int(high or 100) - 1)
        return st.one_of(floats, ints)
    if field.type == "boolean":
        return st.booleans()
    if field.type == "string":
        low = field.min_length or 0
        return text.filter(lambda t: len(t) >= low and (field.max_length or 10**9) >= len(t))
    if field.type == "object" and field.fields and depth < 2:
        return objects(field.fields, depth + 1)
    if field.type == "array" and field.items is not None and depth < 2:
        return st.lists(values(field.items, depth + 1), max_size=2)
    return st.nothing()


def objects(fields: tuple[Field, ...], depth: int) -> st.SearchStrategy[dict[str, Any]]:
    required = {f.name: values(f, depth) for f in fields if f.required}
    optional = {f.name: values(f, depth) for f in fields if not f.required}
    return st.fixed_dictionaries(required, optional=optional)


ENDPOINTS = [info.endpoint_id for info in known_endpoints()]


@st.composite
def inputs(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A valid input of a shipped endpoint: the prompt and a few of its other fields."""
    endpoint = draw(st.sampled_from(ENDPOINTS))
    schema = lookup_schema(endpoint).schema
    assert schema is not None
    arguments: dict[str, Any] = {"prompt": draw(prompts)}
    others = [f for f in schema.fields if f.name != "prompt"]
    chosen = draw(st.lists(st.sampled_from(others), max_size=6, unique_by=lambda f: f.name))
    for field in chosen + [f for f in others if f.required and f not in chosen]:
        arguments[field.name] = draw(values(field))
    try:
        validate_input(endpoint, arguments)
    except InputError:
        assume(False)
    return endpoint, arguments


def parse_cell(cell: str) -> Any:
    line, _, body = cell.partition("\n")
    assert line.startswith("%%ltx ")
    args = LtxMagics.ltx.parser.parse_args(split_line(line.removeprefix("%%ltx ")))
    return build_request(args, body, default_endpoint=TEXT_TO_VIDEO, defaults={})


def same_types(value: Any) -> Any:
    """``value`` with each number tagged by its type: 3 and 3.0 are equal in Python, not on
    the wire."""
    if isinstance(value, dict):
        return {k: same_types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [same_types(v) for v in value]
    return (type(value).__name__, value)


@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)
@given(inputs())
def test_parsing_the_generated_cell_gives_the_same_request(case: tuple[str, dict[str, Any]]):
    endpoint, arguments = case
    request = parse_cell(magic_cell(endpoint, arguments))
    assert request.endpoint == endpoint
    assert same_types(request.arguments) == same_types(arguments)


def test_a_cell_holds_named_options_where_they_exist():
    cell = magic_cell(
        TEXT_TO_VIDEO,
        {"prompt": "a fox", "seed": 7, "num_inference_steps": 40, "guidance_scale": 5.5},
    )
    assert cell == "%%ltx --endpoint fal-ai/ltx-video --seed 7 --steps 40 --guidance 5.5\na fox"
    cell = magic_cell(
        "fal-ai/ltx-2-19b/text-to-video",
        {
            "prompt": "a fox",
            "video_size": {"width": 704, "height": 480},
            "num_frames": 97,
            "fps": 24,
            "generate_audio": False,
        },
    )
    assert cell.splitlines()[0] == (
        "%%ltx --endpoint fal-ai/ltx-2-19b/text-to-video --size 704x480 --frames 97 --fps 24 "
        "--no-audio"
    )
    cell = magic_cell(
        "fal-ai/ltxv-13b-098-distilled",
        {"prompt": "a fox", "frame_rate": 30, "loras": [{"path": "a/b", "scale": 0.5}]},
    )
    assert cell.splitlines()[0] == (
        "%%ltx --endpoint fal-ai/ltxv-13b-098-distilled --fps 30 --lora a/b:0.5"
    )
