"""Inputs checked against the endpoints' own schema documents, endpoint names, and the typed
output of every output shape."""

from __future__ import annotations

import pytest

from ltx_jupyter import InputError, ProtocolError
from ltx_jupyter._schema import (
    IMAGE_TO_VIDEO,
    PRESETS,
    TEXT_TO_VIDEO,
    check_input,
    image_sibling,
    lookup_schema,
    parse_output,
    resolve_endpoint,
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
        ("guidance_scale", 10.5, "a number of at most 10"),
        ("guidance_scale", float("nan"), "a number"),
        ("guidance_scale", True, "a number"),
        ("seed", "7", "an integer"),
        ("seed", 1.0, "an integer"),
    ],
)
def test_each_bad_field_is_named_with_the_value_and_what_it_allows(field, value, message):
    arguments = {"prompt": "a fox", field: value}
    with pytest.raises(InputError) as caught:
        validate_input(TEXT_TO_VIDEO, arguments)
    assert caught.value.fields == [field]
    assert message in str(caught.value) and field in str(caught.value)


def test_a_field_the_endpoint_lacks_names_the_closest_one():
    with pytest.raises(InputError, match=r"num_frame: .*did you mean 'num_frames'"):
        validate_input("fal-ai/ltxv-13b-098-distilled", {"prompt": "p", "num_frame": 97})
    relaxed = validate_input(
        "fal-ai/ltxv-13b-098-distilled", {"prompt": "p", "num_frame": 97}, strict=False
    )
    assert relaxed.arguments["num_frame"] == 97
    assert any("num_frames" in w for w in relaxed.warnings)


def test_values_are_checked_on_every_family():
    with pytest.raises(InputError, match=r"duration: must be one of 6, 8, 10, got 7"):
        validate_input("fal-ai/ltx-2/text-to-video", {"prompt": "p", "duration": 7})
    with pytest.raises(InputError, match=r"loras\.0\.scale"):
        validate_input(
            "fal-ai/ltxv-13b-098-distilled",
            {"prompt": "p", "loras": [{"path": "a/b", "scale": 9}]},
        )
    with pytest.raises(InputError, match="num_frames"):
        validate_input("fal-ai/ltx-2-19b/text-to-video", {"prompt": "p", "num_frames": 500})
    ok = validate_input(
        "fal-ai/ltx-2-19b/text-to-video",
        {"prompt": "p", "video_size": {"width": 704, "height": 480}, "num_frames": 97},
    )
    assert ok.with_defaults()["generate_audio"] is True


def test_image_must_be_a_url_an_image_data_uri_or_a_readable_file(tmp_path):
    schema = lookup_schema(IMAGE_TO_VIDEO).schema
    image = tmp_path / "a.png"
    image.write_bytes(b"\x89PNG")
    for good in ("https://x.test/a.png", "data:image/png;base64,AAAA", str(image)):
        data = {"prompt": "p", "image_url": good}
        assert check_input(IMAGE_TO_VIDEO, data, schema=schema) == []
    for bad in (None, "", "ftp://x/a.png", "data:video/mp4;base64,AA", str(tmp_path / "no.png")):
        errors = check_input(IMAGE_TO_VIDEO, {"prompt": "p", "image_url": bad}, schema=schema)
        assert [e.field for e in errors] == ["image_url"]
    # The server cannot read the user's files.
    errors = check_input(
        IMAGE_TO_VIDEO, {"prompt": "p", "image_url": str(image)}, schema=schema, allow_files=False
    )
    assert [e.field for e in errors] == ["image_url"]


def test_the_word_guide_is_a_warning_on_the_seed_endpoints_only():
    validated = validate_input(TEXT_TO_VIDEO, {"prompt": "word " * 201})
    assert validated.warnings and "201 words" in validated.warnings[0]
    longer = validate_input("fal-ai/ltx-2/text-to-video", {"prompt": "word " * 201})
    assert longer.warnings == ()


def test_defaults_come_from_the_document_and_presets_from_the_guide():
    schema = lookup_schema(TEXT_TO_VIDEO).schema
    assert schema is not None
    defaults = schema.defaults()
    assert defaults["num_inference_steps"] == 30 and defaults["guidance_scale"] == 3
    assert "motion artifacts" in defaults["negative_prompt"]
    by_name = {p.name: p for p in PRESETS}
    assert 20 <= by_name["fast"].value <= 30 and by_name["quality"].value >= 40
    assert 3 <= by_name["creative"].value <= 5 and 5 <= by_name["faithful"].value <= 7


def test_endpoint_names_and_image_siblings():
    assert resolve_endpoint("ltx-video") == TEXT_TO_VIDEO
    assert resolve_endpoint("ltx-2/text-to-video") == "fal-ai/ltx-2/text-to-video"
    assert resolve_endpoint("fal-ai/ltx-2/text-to-video") == "fal-ai/ltx-2/text-to-video"
    assert resolve_endpoint("someone/their-app") == "someone/their-app"
    assert image_sibling(TEXT_TO_VIDEO) == IMAGE_TO_VIDEO
    assert image_sibling("fal-ai/ltx-2/text-to-video/fast") == "fal-ai/ltx-2/image-to-video/fast"
    assert image_sibling("fal-ai/ltxv-13b-098-distilled") == (
        "fal-ai/ltxv-13b-098-distilled/image-to-video"
    )
    assert image_sibling("someone/their-app") is None


def test_outputs_of_every_shape_are_typed_and_malformed_ones_are_protocol_errors():
    seed = parse_output({"video": {"url": "https://v.test/a.mp4", "file_size": 10}, "seed": 4})
    assert seed.url == "https://v.test/a.mp4" and seed.seed == 4 and seed.video.file_size == 10
    expanded = parse_output(
        {"video": {"url": "https://v.test/b.mp4"}, "seed": 1, "prompt": "a longer prompt"}
    )
    assert expanded.prompt == "a longer prompt"
    hosted = parse_output(
        {
            "video": {
                "url": "https://v.test/c.mp4",
                "width": 1920,
                "height": 1080,
                "fps": 25,
                "duration": 6.0,
                "num_frames": 150,
            }
        }
    )
    assert hosted.seed is None
    assert (hosted.video.width, hosted.video.fps, hosted.video.num_frames) == (1920, 25.0, 150)
    for bad in ([], {"video": "x"}, {"video": {"url": 3}}, {"video": {"url": "javascript:x"}}):
        with pytest.raises(ProtocolError):
            parse_output(bad)
