"""The LTX endpoints' schema: every field's rule, warnings, pass-through and the typed output."""

from __future__ import annotations

import pytest

from ltx_jupyter import InputError, ProtocolError
from ltx_jupyter._schema import (
    IMAGE_TO_VIDEO,
    PRESETS,
    TEXT_TO_VIDEO,
    check_input,
    endpoint_spec,
    parse_output,
    validate_input,
)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("prompt", "", "must not be empty"),
        ("prompt", 3, "must be text"),
        ("num_inference_steps", 0, "an integer from 1 to 50"),
        ("num_inference_steps", 51, "an integer from 1 to 50"),
        ("num_inference_steps", 2.5, "an integer from 1 to 50"),
        ("guidance_scale", -0.1, "a number from 0 to 10"),
        ("guidance_scale", float("nan"), "a number from 0 to 10"),
        ("guidance_scale", True, "a number from 0 to 10"),
        ("seed", "7", "an integer"),
        ("seed", 1.0, "an integer"),
    ],
)
def test_each_bad_field_is_named_with_what_it_allows(field, value, message):
    arguments = {"prompt": "a fox", field: value}
    with pytest.raises(InputError) as caught:
        validate_input(TEXT_TO_VIDEO, arguments)
    assert caught.value.fields == [field]
    assert message in str(caught.value) and field in str(caught.value)


def test_image_must_be_a_url_an_image_data_uri_or_a_readable_file(tmp_path):
    image = tmp_path / "a.png"
    image.write_bytes(b"\x89PNG")
    for good in ("https://x.test/a.png", "data:image/png;base64,AAAA", str(image)):
        assert check_input(IMAGE_TO_VIDEO, {"prompt": "p", "image_url": good}) == []
    for bad in (None, "", "ftp://x/a.png", "data:text/html,<script>", str(tmp_path / "none.png")):
        errors = check_input(IMAGE_TO_VIDEO, {"prompt": "p", "image_url": bad})
        assert [e.field for e in errors] == ["image_url"]
    # The server cannot read the user's files.
    errors = check_input(
        IMAGE_TO_VIDEO, {"prompt": "p", "image_url": str(image)}, allow_files=False
    )
    assert [e.field for e in errors] == ["image_url"]


def test_a_long_prompt_is_a_warning_and_unknown_fields_pass_through():
    validated = validate_input(TEXT_TO_VIDEO, {"prompt": "word " * 201, "num_frames": 121})
    assert validated.arguments["num_frames"] == 121
    assert validated.warnings and "201 words" in validated.warnings[0]
    assert validate_input("fal-ai/ltxv-13b-098-distilled", {"anything": [1]}).arguments == {
        "anything": [1]
    }


def test_defaults_and_presets_come_from_the_endpoint_guide():
    spec = endpoint_spec(TEXT_TO_VIDEO)
    assert spec is not None
    assert spec.defaults()["num_inference_steps"] == 30
    assert spec.defaults()["guidance_scale"] == 3
    assert "motion artifacts" in spec.defaults()["negative_prompt"]
    by_name = {p.name: p for p in PRESETS}
    assert 20 <= by_name["fast"].value <= 30 and by_name["quality"].value >= 40
    assert 3 <= by_name["creative"].value <= 5 and 5 <= by_name["faithful"].value <= 7


def test_output_is_typed_and_malformed_output_is_a_protocol_error():
    result = parse_output(
        {"video": {"url": "https://v.test/a.mp4", "file_size": 10, "width": 320}, "seed": 4}
    )
    assert result.url == "https://v.test/a.mp4" and result.seed == 4
    assert result.video.width == 320 and result.video.file_size == 10
    for bad in ([], {"video": "x"}, {"video": {"url": 3}}):
        with pytest.raises(ProtocolError):
            parse_output(bad)
