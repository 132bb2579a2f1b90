"""``magic_cell`` and ``build_request`` are inverses: for any valid input, parsing the cell that
:func:`magic_cell` writes gives back the same endpoint and the same input."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ltx_jupyter._parsing import build_request, magic_cell, split_line
from ltx_jupyter._schema import IMAGE_TO_VIDEO, TEXT_TO_VIDEO
from ltx_jupyter.magics import LtxMagics

# Text a user may type: any printable unicode, line breaks, quotes, braces, dollars, dashes.
text = st.text(
    st.characters(exclude_categories=("Cs", "Cc"), include_characters="\n\t'\"{}$-\\"),
    min_size=0,
    max_size=60,
)
prompts = text.filter(lambda t: t.strip() != "").map(str.strip)
json_scalars = st.one_of(
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.booleans(),
    text,
)


@st.composite
def inputs(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A valid input of the seed's endpoints, with extra fields passed through ``--param``."""
    endpoint = draw(st.sampled_from([TEXT_TO_VIDEO, IMAGE_TO_VIDEO]))
    arguments: dict[str, Any] = {"prompt": draw(prompts)}
    arguments["negative_prompt"] = draw(text)
    arguments["num_inference_steps"] = draw(st.integers(1, 50))
    arguments["guidance_scale"] = draw(
        st.one_of(st.integers(0, 10), st.floats(0, 10, allow_nan=False))
    )
    if draw(st.booleans()):
        arguments["seed"] = draw(st.integers(-(2**31), 2**31))
    if endpoint == IMAGE_TO_VIDEO:
        arguments["image_url"] = "https://example.com/" + draw(
            st.text("abcxyz-_./?=&%", min_size=1, max_size=20)
        )
    extra_names = draw(st.lists(st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True), max_size=3))
    for name in extra_names:
        if name not in arguments and name != "prompt":
            arguments[name] = draw(st.one_of(json_scalars, st.lists(json_scalars, max_size=3)))
    return endpoint, arguments


def parse_cell(cell: str) -> Any:
    line, _, body = cell.partition("\n")
    assert line.startswith("%%ltx ")
    args = LtxMagics.ltx.parser.parse_args(split_line(line.removeprefix("%%ltx ")))
    return build_request(args, body, default_endpoint=TEXT_TO_VIDEO, defaults={})


@settings(max_examples=300, deadline=None, derandomize=True)
@given(inputs())
def test_parsing_the_generated_cell_gives_the_same_request(case: tuple[str, dict[str, Any]]):
    endpoint, arguments = case
    request = parse_cell(magic_cell(endpoint, arguments))
    assert request.endpoint == endpoint
    assert request.arguments == arguments
    # Same types too: 3 and 3.0 are equal in Python, not in what the endpoint receives.
    assert {k: type(v) for k, v in request.arguments.items()} == {
        k: type(v) for k, v in arguments.items()
    }


def test_a_cell_holds_named_options_where_they_exist():
    cell = magic_cell(
        TEXT_TO_VIDEO,
        {"prompt": "a fox", "seed": 7, "num_inference_steps": 40, "guidance_scale": 5.5},
    )
    assert cell == "%%ltx --endpoint fal-ai/ltx-video --seed 7 --steps 40 --guidance 5.5\na fox"
