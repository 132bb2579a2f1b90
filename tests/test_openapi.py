"""Reading fal's per-endpoint OpenAPI documents: each keyword of the format, the shipped
documents' facts (their sources: ltx_jupyter/data/openapi/SOURCES.md), and validation against
them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ltx_jupyter import InputError
from ltx_jupyter._endpoints import known_endpoints, shipped_document
from ltx_jupyter._errors import SchemaDocumentError
from ltx_jupyter._openapi import (
    EndpointSchema,
    load_document,
    loads_document,
    parse_document,
)

REF = "#/components/schemas/"
ENDPOINT = "test-org/keyword-model"


def document(
    properties: dict[str, Any],
    *,
    required: list[str] | None = None,
    order: list[str] | None = None,
    schemas: dict[str, Any] | None = None,
    input_name: str = "KeywordInput",
    output: dict[str, Any] | None = None,
    endpoint_id: str = ENDPOINT,
) -> dict[str, Any]:
    """A minimal document in fal's queue format around one input schema."""
    input_schema = {
        "title": input_name,
        "type": "object",
        "properties": properties,
        "required": required or [],
        "x-fal-order-properties": order if order is not None else list(properties),
    }
    output_schema = output or {
        "title": "KeywordOutput",
        "type": "object",
        "properties": {"video": {"$ref": REF + "File"}},
        "required": ["video"],
        "x-fal-order-properties": ["video"],
    }
    all_schemas = {
        "QueueStatus": {"type": "object", "properties": {"status": {"type": "string"}}},
        input_name: input_schema,
        output_schema["title"]: output_schema,
        "File": {
            "title": "File",
            "type": "object",
            "properties": {"url": {"type": "string"}},
            "required": ["url"],
            "x-fal-order-properties": ["url"],
        },
        **(schemas or {}),
    }
    json_ref = {"application/json": {"schema": {"$ref": REF + "QueueStatus"}}}
    return {
        "openapi": "3.0.4",
        "info": {
            "title": f"Queue OpenAPI for {endpoint_id}",
            "version": "1.0.0",
            "x-fal-metadata": {
                "endpointId": endpoint_id,
                "category": "text-to-video",
                "thumbnailUrl": "",
                "playgroundUrl": f"https://fal.ai/models/{endpoint_id}",
                "documentationUrl": f"https://fal.ai/models/{endpoint_id}/api",
            },
        },
        "servers": [{"url": "https://queue.fal.run"}],
        "components": {
            "securitySchemes": {
                "apiKeyAuth": {"type": "apiKey", "in": "header", "name": "Authorization"}
            },
            "schemas": all_schemas,
        },
        "paths": {
            f"/{endpoint_id}": {
                "post": {
                    "requestBody": {
                        "content": {"application/json": {"schema": {"$ref": REF + input_name}}}
                    },
                    "responses": {"200": {"content": json_ref}},
                }
            },
            f"/{endpoint_id}/requests/{{request_id}}/status": {
                "get": {"responses": {"200": {"content": json_ref}}}
            },
            f"/{endpoint_id}/requests/{{request_id}}/cancel": {"put": {"responses": {}}},
            f"/{endpoint_id}/requests/{{request_id}}": {
                "get": {
                    "responses": {
                        "200": {
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": REF + output_schema["title"]}
                                }
                            }
                        }
                    }
                }
            },
        },
    }


def schema_of(properties: dict[str, Any], **options: Any) -> EndpointSchema:
    return parse_document(document(properties, **options))


def errors_of(schema: EndpointSchema, data: dict[str, Any], **options: Any) -> list[str]:
    return [str(e) for e in schema.validate(data, **options).errors]


# ---- each keyword of the format -------------------------------------------------------------


def test_plain_keywords_are_read_as_fal_writes_them():
    schema = schema_of(
        {
            "prompt": {
                "title": "Prompt",
                "type": "string",
                "description": "What happens.",
                "examples": ["a fox in snow"],
            },
            "num_frames": {
                "title": "Num Frames",
                "type": "integer",
                "default": 121,
                "minimum": 9,
                "maximum": 481,
            },
            "reference": {"type": "string", "format": "uri"},
        },
        required=["prompt"],
    )
    prompt, frames, reference = schema.fields
    assert (prompt.type, prompt.title, prompt.description) == ("string", "Prompt", "What happens.")
    assert prompt.examples == ("a fox in snow",) and prompt.required and not prompt.has_default
    assert (frames.default, frames.minimum, frames.maximum) == (121, 9, 481)
    assert reference.format == "uri" and not reference.required
    assert schema.defaults() == {"num_frames": 121}
    assert schema.required == ("prompt",)


def test_fields_follow_x_fal_order_properties_then_the_rest():
    schema = schema_of(
        {name: {"type": "string"} for name in ("a", "b", "c", "d")}, order=["c", "a"]
    )
    assert schema.field_names == ("c", "a", "b", "d")


def test_nullable_any_of_is_the_inner_type_and_accepts_none():
    schema = schema_of(
        {
            "seed": {
                "anyOf": [{"type": "integer"}, {"type": "null"}],
                "title": "Seed",
                "description": "Random seed.",
            }
        }
    )
    seed = schema.field("seed")
    assert (seed.type, seed.nullable, seed.title, seed.description) == (
        "integer",
        True,
        "Seed",
        "Random seed.",
    )
    assert errors_of(schema, {"seed": None}) == errors_of(schema, {"seed": 7}) == []
    assert errors_of(schema, {"seed": "7"}) == ["seed: must be an integer, got '7'"]


def test_any_of_object_and_presets_is_a_video_size():
    schema = schema_of(
        {
            "video_size": {
                "anyOf": [
                    {"$ref": REF + "ImageSize"},
                    {"enum": ["square_hd", "landscape_16_9"], "type": "string"},
                ],
                "title": "Video Size",
                "default": "landscape_16_9",
            }
        },
        schemas={
            "ImageSize": {
                "title": "ImageSize",
                "type": "object",
                "properties": {
                    "width": {"type": "integer", "exclusiveMinimum": 0, "default": 512},
                    "height": {"type": "integer", "exclusiveMinimum": 0, "default": 512},
                },
                "x-fal-order-properties": ["width", "height"],
            }
        },
    )
    size = schema.field("video_size")
    assert size.presets == ("square_hd", "landscape_16_9")
    assert [f.name for f in size.fields] == ["width", "height"] and size.ref == "ImageSize"
    assert size.default == "landscape_16_9" and size.title == "Video Size"
    assert errors_of(schema, {"video_size": "square_hd"}) == []
    assert errors_of(schema, {"video_size": {"width": 640, "height": 480}}) == []
    [bad_name] = errors_of(schema, {"video_size": "huge"})
    assert "'square_hd', 'landscape_16_9' or an object (width, height), got 'huge'" in bad_name
    assert errors_of(schema, {"video_size": {"width": 0, "height": 480}}) == [
        "video_size.width: must be an integer above 0, got 0"
    ]
    assert errors_of(schema, {"video_size": 640}) != []


def test_arrays_of_objects_carry_their_item_fields_and_check_each_item():
    schema = schema_of(
        {"loras": {"type": "array", "items": {"$ref": REF + "LoRAWeight"}, "default": []}},
        schemas={
            "LoRAWeight": {
                "title": "LoRAWeight",
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "scale": {"type": "number", "minimum": 0, "maximum": 4, "default": 1},
                },
                "required": ["path"],
                "x-fal-order-properties": ["path", "scale"],
            }
        },
    )
    loras = schema.field("loras")
    assert loras.type == "array" and loras.items.ref == "LoRAWeight"
    assert [f.name for f in loras.items.fields] == ["path", "scale"]
    good = {"loras": [{"path": "a/b", "scale": 2}]}
    assert errors_of(schema, good) == []
    report = schema.validate({"loras": [{"path": "a"}, {"scale": 5}, {"path": "c", "scal": 1}]})
    assert [e.loc for e in report.errors] == [
        ("body", "loras", 1, "scale"),
        ("body", "loras", 1, "path"),
        ("body", "loras", 2, "scal"),
    ]
    assert [e.msg for e in report.errors] == [
        "must be a number from 0 to 4, got 5",
        "is required (text)",
        "is not a field of LoRAWeight; did you mean 'scale'?",
    ]
    assert errors_of(schema, {"loras": {"path": "a"}}) == [
        "loras: must be a list, each an object (path, scale), got {'path': 'a'}"
    ]


def test_nested_refs_are_resolved_at_every_level_and_all_of_is_folded():
    schema = schema_of(
        {"video": {"allOf": [{"$ref": REF + "Conditioning"}], "description": "To extend."}},
        required=["video"],
        schemas={
            "Conditioning": {
                "title": "Conditioning",
                "type": "object",
                "properties": {"source": {"$ref": REF + "Source"}},
                "required": ["source"],
            },
            "Source": {
                "title": "Source",
                "type": "object",
                "properties": {"video_url": {"type": "string"}, "fps": {"type": "integer"}},
                "required": ["video_url"],
            },
        },
    )
    video = schema.field("video")
    assert video.description == "To extend." and video.ref == "Conditioning"
    source = video.field("source")
    assert source.ref == "Source" and source.field("video_url").file_kind == "video"
    assert errors_of(schema, {"video": {"source": {"video_url": "https://x.test/a.mp4"}}}) == []
    assert errors_of(schema, {"video": {"source": {"video_url": "a.mp4", "fps": "9"}}}) == [
        "video.source.video_url: must be an http(s) URL, a data: URI or the path of a "
        "readable video file, got 'a.mp4'",
        "video.source.fps: must be an integer, got '9'",
    ]


def test_a_schema_that_contains_itself_is_read_without_looping():
    schema = schema_of(
        {"node": {"$ref": REF + "Node"}},
        schemas={
            "Node": {
                "title": "Node",
                "type": "object",
                "properties": {"child": {"$ref": REF + "Node"}, "n": {"type": "integer"}},
            }
        },
    )
    assert errors_of(schema, {"node": {"n": 1, "child": {"n": 2, "child": {}}}}) == []
    assert errors_of(schema, {"node": {"n": "x"}}) == ["node.n: must be an integer, got 'x'"]


@pytest.mark.parametrize(
    ("keywords", "phrase"),
    [
        ({"exclusiveMinimum": 0}, "a number above 0"),
        ({"exclusiveMinimum": 0, "maximum": 4}, "a number above 0 and at most 4"),
        ({"minimum": 0, "exclusiveMinimum": True}, "a number above 0"),
        ({"exclusiveMaximum": 1}, "a number below 1"),
        ({"minimum": 1}, "a number of at least 1"),
        ({"maximum": 10}, "a number of at most 10"),
    ],
)
def test_exclusive_bounds_in_either_openapi_spelling(keywords, phrase):
    schema = schema_of({"scale": {"type": "number", **keywords}})
    assert schema.field("scale").allowed() == phrase
    low = keywords.get("exclusiveMinimum")
    if low is not None:
        edge = 0 if low is True else low
        assert errors_of(schema, {"scale": edge}) == [f"scale: must be {phrase}, got {edge}"]
        assert errors_of(schema, {"scale": edge + 0.5}) == []


def test_numeric_enums_are_literal_sets():
    schema = schema_of(
        {
            "duration": {"type": "integer", "enum": [6, 8, 10], "default": 6},
            "fps": {"enum": [25, 50]},
        }
    )
    duration = schema.field("duration")
    assert duration.enum == (6, 8, 10) and duration.allowed() == "one of 6, 8, 10"
    assert errors_of(schema, {"duration": 8, "fps": 50}) == []
    for bad in (7, "6", True):
        assert errors_of(schema, {"duration": bad}) == [
            f"duration: must be one of 6, 8, 10, got {bad!r}"
        ]
    assert errors_of(schema, {"fps": 50.0}) == []  # no type: 50.0 is the literal 50
    assert errors_of(schema, {"fps": True}) == ["fps: must be one of 25, 50, got True"]


def test_text_enums_and_lengths():
    schema = schema_of(
        {
            "resolution": {"type": "string", "enum": ["480p", "720p"]},
            "prompt": {"type": "string", "minLength": 1, "maxLength": 10},
        }
    )
    assert errors_of(schema, {"resolution": "1080p"}) == [
        "resolution: must be one of '480p', '720p', got '1080p'"
    ]
    assert errors_of(schema, {"prompt": ""}) == [
        "prompt: must be text of 1 to 10 characters, got ''"
    ]
    assert errors_of(schema, {"prompt": "x" * 11}) == [
        "prompt: must be text of 1 to 10 characters, got 11 characters"
    ]


def test_file_fields_take_urls_data_uris_and_client_side_local_files(tmp_path):
    schema = schema_of(
        {"image_url": {"type": "string"}, "audio_url": {"type": "string"}},
        required=["image_url"],
    )
    assert [f.name for f in schema.file_fields] == ["image_url", "audio_url"]
    assert schema.field("audio_url").file_kind == "audio"
    picture = tmp_path / "first.png"
    picture.write_bytes(b"\x89PNG")
    for good in ("https://x.test/a.png", "data:image/png;base64,AAAA", str(picture), picture):
        assert errors_of(schema, {"image_url": good}) == []
    # The server cannot read the user's files, and a video is not an image.
    [local] = errors_of(schema, {"image_url": str(picture)}, allow_files=False)
    assert local.startswith("image_url: must be an http(s) URL or a data: URI of an image, got")
    assert errors_of(schema, {"image_url": "data:video/mp4;base64,AAAA"}) != []
    assert errors_of(schema, {"image_url": "https://x.test/a.png", "audio_url": 3}) == [
        "audio_url: must be an http(s) URL, a data: URI or the path of a readable audio file, got 3"
    ]


def test_general_unions_accept_any_alternative():
    schema = schema_of({"steps": {"anyOf": [{"type": "integer"}, {"type": "string"}]}})
    assert errors_of(schema, {"steps": 3}) == errors_of(schema, {"steps": "auto"}) == []
    assert errors_of(schema, {"steps": 2.5}) == ["steps: must be an integer or text, got 2.5"]


# ---- where the input and output are found --------------------------------------------------


def test_input_and_output_come_from_the_paths_not_the_schema_names():
    doc = document(
        {"prompt": {"type": "string"}},
        input_name="Payload",
        output={
            "title": "Answer",
            "type": "object",
            "properties": {"clip": {"type": "string"}},
            "required": ["clip"],
        },
    )
    doc["components"]["schemas"]["DecoyInput"] = {
        "type": "object",
        "properties": {"wrong": {"type": "string"}},
    }
    doc["components"]["schemas"]["DecoyOutput"] = doc["components"]["schemas"]["DecoyInput"]
    schema = parse_document(doc)
    assert (schema.input_name, schema.field_names) == ("Payload", ("prompt",))
    assert (schema.output_name, [f.name for f in schema.output_fields]) == ("Answer", ["clip"])
    assert schema.endpoint_id == ENDPOINT and schema.category == "text-to-video"
    assert schema.metadata["playgroundUrl"] == f"https://fal.ai/models/{ENDPOINT}"


def _broken(change) -> dict[str, Any]:
    doc = document({"seed": {"type": "integer"}})
    change(doc)
    return doc


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d["paths"].pop(f"/{ENDPOINT}"), f"no POST path /{ENDPOINT}"),
        (
            lambda d: d["components"]["schemas"].pop("KeywordInput"),
            "input $ref '#/components/schemas/KeywordInput' not found",
        ),
        (
            lambda d: d["components"]["schemas"]["KeywordInput"]["properties"]["seed"].update(
                type="int64"
            ),
            "property 'seed' has unknown type 'int64'",
        ),
        (
            lambda d: d["paths"].pop(f"/{ENDPOINT}/requests/{{request_id}}"),
            "no result path GET",
        ),
        (
            lambda d: d["components"]["schemas"].pop("KeywordOutput"),
            "output $ref '#/components/schemas/KeywordOutput' not found",
        ),
        (
            lambda d: d["components"]["schemas"]["KeywordInput"]["properties"].update(
                video={"$ref": REF + "Missing"}
            ),
            "property 'video' $ref '#/components/schemas/Missing' not found",
        ),
        (lambda d: d.update(openapi="2.0"), "not an OpenAPI 3 document"),
        (lambda d: d.pop("components"), "no components.schemas"),
        (
            lambda d: d["components"]["schemas"]["KeywordInput"]["properties"].update(
                scale={"type": "number", "minimum": "zero"}
            ),
            "property 'scale' has a minimum that is not a number",
        ),
    ],
)
def test_a_document_that_is_not_a_fal_document_names_what_is_wrong(change, problem):
    with pytest.raises(SchemaDocumentError) as caught:
        parse_document(_broken(change))
    assert problem in str(caught.value)
    assert ENDPOINT in str(caught.value)


def test_text_that_is_not_json_or_names_another_endpoint_is_refused():
    with pytest.raises(SchemaDocumentError, match="not JSON"):
        loads_document("<html>offline</html>", ENDPOINT)
    with pytest.raises(SchemaDocumentError, match="describes 'test-org/keyword-model', not"):
        parse_document(document({}), "fal-ai/other")
    with pytest.raises(SchemaDocumentError, match="JSON list, not an object"):
        parse_document([], ENDPOINT)


# ---- validation -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ltx2_19b() -> EndpointSchema:
    return parse_document(shipped_document("fal-ai/ltx-2-19b/text-to-video"))


def test_an_unknown_field_names_the_closest_field_or_is_a_warning_when_not_strict(ltx2_19b):
    report = ltx2_19b.validate({"prompt": "a fox", "num_frame": 97})
    assert [str(e) for e in report.errors] == [
        "num_frame: is not a field of fal-ai/ltx-2-19b/text-to-video; did you mean 'num_frames'?"
    ]
    loose = ltx2_19b.validate({"prompt": "a fox", "num_frame": 97}, strict=False)
    assert loose.ok and [e.field for e in loose.warnings] == ["num_frame"]
    assert "did you mean 'num_frames'" in loose.warnings[0].msg
    far = ltx2_19b.validate({"prompt": "a fox", "zzz": 1}).errors[0].msg
    assert "its fields are prompt, num_frames, video_size" in far
    assert ltx2_19b.closest_field("Num-Frames") == "num_frames"
    assert ltx2_19b.closest_field("guidance") == "guidance_scale"
    assert ltx2_19b.closest_field("qqqq") is None


def test_each_error_names_the_field_the_value_and_what_is_allowed(ltx2_19b):
    report = ltx2_19b.validate(
        {
            "num_frames": 482,
            "video_output_type": "mp4",
            "fps": "fast",
            "camera_lora_scale": -0.1,
            "generate_audio": "yes",
        }
    )
    assert [str(e) for e in report.errors] == [
        "num_frames: must be an integer from 9 to 481, got 482",
        "video_output_type: must be one of 'X264 (.mp4)', 'VP9 (.webm)', 'PRORES4444 (.mov)', "
        "'GIF (.gif)', got 'mp4'",
        "fps: must be a number from 1 to 60, got 'fast'",
        "camera_lora_scale: must be a number from 0 to 1, got -0.1",
        "generate_audio: must be true or false, got 'yes'",
        "prompt: is required (text)",
    ]
    assert [e.type for e in report.errors] == [
        "less_than_equal",
        "literal_error",
        "float_type",
        "greater_than_equal",
        "bool_type",
        "missing",
    ]
    with pytest.raises(InputError) as caught:
        report.raise_for_errors()
    assert caught.value.fields[0] == "num_frames"
    assert ltx2_19b.validate({"prompt": "a fox", "seed": None}).ok
    assert not ltx2_19b.validate("a fox").ok


def test_defaults_are_fresh_copies(ltx2_19b):
    thirteen = parse_document(shipped_document("fal-ai/ltxv-13b-098-distilled"))
    defaults = thirteen.defaults()
    defaults["loras"].append({"path": "x"})
    assert thirteen.defaults()["loras"] == []
    assert ltx2_19b.defaults()["num_frames"] == 121 and "seed" not in ltx2_19b.defaults()


# ---- the shipped documents ------------------------------------------------------------------

REQUIRED_ENDPOINTS = {
    "fal-ai/ltx-video",
    "fal-ai/ltx-video/image-to-video",
    *(
        f"{base}{suffix}"
        for base in ("fal-ai/ltx-video-13b-distilled", "fal-ai/ltxv-13b-098-distilled")
        for suffix in ("", "/image-to-video", "/extend", "/multiconditioning")
    ),
    *(
        f"fal-ai/{version}/{mode}{fast}"
        for version in ("ltx-2", "ltx-2.3")
        for mode in ("text-to-video", "image-to-video")
        for fast in ("", "/fast")
    ),
    *(
        f"fal-ai/{model}/{distilled}{mode}"
        for model in ("ltx-2-19b", "ltx-2.3-22b")
        for distilled in ("", "distilled/")
        for mode in ("text-to-video", "image-to-video")
    ),
}
DATA = Path(__file__).resolve().parent.parent / "ltx_jupyter" / "data" / "openapi"


def test_every_required_endpoint_is_shipped_in_fal_format():
    shipped = {e.endpoint_id for e in known_endpoints()}
    assert shipped >= REQUIRED_ENDPOINTS
    for path in sorted(DATA.glob("*.json")):
        raw = json.loads(path.read_text())
        endpoint_id = raw["info"]["x-fal-metadata"]["endpointId"]
        assert raw["openapi"] == "3.0.4"
        assert raw["info"]["title"] == f"Queue OpenAPI for {endpoint_id}"
        assert set(raw["info"]["x-fal-metadata"]) == {
            "endpointId",
            "category",
            "thumbnailUrl",
            "playgroundUrl",
            "documentationUrl",
        }
        assert raw["servers"] == [{"url": "https://queue.fal.run"}]
        assert raw["components"]["securitySchemes"]["apiKeyAuth"]["name"] == "Authorization"
        assert "QueueStatus" in raw["components"]["schemas"]
        assert set(raw["paths"]) == {
            f"/{endpoint_id}",
            f"/{endpoint_id}/requests/{{request_id}}/status",
            f"/{endpoint_id}/requests/{{request_id}}/cancel",
            f"/{endpoint_id}/requests/{{request_id}}",
        }
        schema = load_document(path, endpoint_id)
        assert schema.fields and schema.output_fields
        raw_input = raw["components"]["schemas"][schema.input_name]
        assert list(schema.field_names) == raw_input["x-fal-order-properties"]
        for spec in schema.fields:
            assert spec.title and spec.description, (endpoint_id, spec.name)


def shipped(endpoint_id: str) -> EndpointSchema:
    return parse_document(shipped_document(endpoint_id), endpoint_id)


def facts(spec) -> tuple:
    low = spec.minimum if spec.minimum is not None else spec.exclusive_minimum
    return (spec.type, low, spec.maximum, spec.default if spec.has_default else None)


def test_ltx_video_091_facts():
    t2v, i2v = shipped("fal-ai/ltx-video"), shipped("fal-ai/ltx-video/image-to-video")
    assert facts(t2v.field("num_inference_steps")) == ("integer", 1, 50, 30)
    assert facts(t2v.field("guidance_scale")) == ("number", None, 10, 3)
    assert t2v.field("negative_prompt").default.startswith("low quality, worst quality, deform")
    assert t2v.required == ("prompt",) and i2v.required == ("prompt", "image_url")
    assert [(f.name, f.required) for f in t2v.output_fields] == [("video", True), ("seed", True)]
    assert t2v.output_field("video").ref == "File"
    assert [f.name for f in t2v.output_field("video").fields] == [
        "url",
        "content_type",
        "file_name",
        "file_size",
        "file_data",
    ]


def test_ltx_video_13b_097_distilled_facts():
    i2v = shipped("fal-ai/ltx-video-13b-distilled/image-to-video")
    assert facts(i2v.field("second_pass_skip_initial_steps")) == ("integer", 1, 20, 5)
    assert facts(i2v.field("constant_rate_factor")) == ("integer", 20, 60, 35)
    assert facts(i2v.field("num_frames")) == ("integer", 9, 161, 121)
    assert facts(i2v.field("frame_rate")) == ("integer", 1, 60, 30)
    assert i2v.field("aspect_ratio").enum == ("9:16", "1:1", "16:9", "auto")
    assert i2v.field("resolution").enum == ("480p", "720p")
    assert i2v.field("loras").items.ref == "LoRAWeight"
    assert {f.name for f in i2v.output_fields} == {"video", "seed", "prompt"}
    extend = shipped("fal-ai/ltx-video-13b-distilled/extend")
    video = extend.field("video")
    assert video.required and video.ref == "VideoConditioningInput"
    assert video.field("conditioning_type").enum == ("rgb", "depth", "pose", "canny")
    assert facts(video.field("max_num_frames")) == ("integer", 1, 1441, 1441)
    multi = shipped("fal-ai/ltx-video-13b-distilled/multiconditioning")
    images = multi.field("images")
    assert images.items.ref == "ImageConditioningInput"
    assert facts(images.items.field("start_frame_num")) == ("integer", 0, 1440, 0)
    assert multi.validate(
        {"prompt": "p", "images": [{"image_url": "https://x.test/a.png", "strength": 2}]}
    ).errors[0].loc == ("body", "images", 0, "strength")


def test_ltxv_13b_098_distilled_facts():
    t2v = shipped("fal-ai/ltxv-13b-098-distilled")
    assert facts(t2v.field("num_frames")) == ("integer", 9, 1441, 121)
    assert facts(t2v.field("first_pass_num_inference_steps")) == ("integer", 2, 12, 8)
    assert facts(t2v.field("second_pass_skip_initial_steps")) == ("integer", 1, 11, 5)
    assert facts(t2v.field("temporal_adain_factor")) == ("number", 0, 1, 0.5)
    assert facts(t2v.field("frame_rate")) == ("integer", 1, 60, 24)
    assert t2v.field("enable_detail_pass").default is False
    assert t2v.field("aspect_ratio").enum == ("9:16", "1:1", "16:9")
    assert "constant_rate_factor" not in t2v.field_names
    i2v = shipped("fal-ai/ltxv-13b-098-distilled/image-to-video")
    assert facts(i2v.field("constant_rate_factor")) == ("integer", 0, 51, 29)
    extend = shipped("fal-ai/ltxv-13b-098-distilled/extend")
    assert extend.field("video").ref == "ExtendVideoConditioningInput"
    assert extend.field("video").field("conditioning_type") is None
    multi = shipped("fal-ai/ltxv-13b-098-distilled/multiconditioning")
    assert multi.field("videos").items.ref == "VideoConditioningInput"
    lora = t2v.field("loras").items
    assert lora.field("path").required and facts(lora.field("scale")) == ("number", 0, 4, 1)


def test_ltx_2_hosted_facts():
    for endpoint, durations in (
        ("fal-ai/ltx-2/text-to-video", (6, 8, 10)),
        ("fal-ai/ltx-2/text-to-video/fast", (6, 8, 10, 12, 14, 16, 18, 20)),
        ("fal-ai/ltx-2/image-to-video/fast", (6, 8, 10, 12, 14, 16, 18, 20)),
    ):
        schema = shipped(endpoint)
        assert schema.field("duration").enum == durations
        assert schema.field("fps").enum == (25, 50)
        assert schema.field("resolution").enum == ("1080p", "1440p", "2160p")
        prompt = schema.field("prompt")
        assert (prompt.min_length, prompt.max_length, prompt.required) == (1, 5000, True)
        assert schema.field("generate_audio").default is True
        for absent in ("seed", "negative_prompt", "num_inference_steps", "guidance_scale"):
            assert schema.field(absent) is None
        assert [f.name for f in schema.output_fields] == ["video"]
        assert {"width", "height", "fps", "duration", "num_frames"} <= {
            f.name for f in schema.output_field("video").fields
        }
    assert set(shipped("fal-ai/ltx-2/image-to-video").required) == {"prompt", "image_url"}


def test_ltx_2_3_hosted_facts():
    t2v = shipped("fal-ai/ltx-2.3/text-to-video")
    assert t2v.field("fps").enum == (24, 25, 48, 50)
    assert "9:16" in t2v.field("aspect_ratio").enum
    i2v = shipped("fal-ai/ltx-2.3/image-to-video/fast")
    end = i2v.field("end_image_url")
    assert end.file_kind == "image" and not end.required and end.nullable
    assert i2v.field("duration").enum[-1] == 20
    assert i2v.validate({"prompt": "p", "image_url": "https://x.test/a.png", "fps": 30}).errors[
        0
    ].msg == ("must be one of 24, 25, 48, 50, got 30")


def test_open_weights_19b_and_22b_facts():
    for endpoint in (
        "fal-ai/ltx-2-19b/text-to-video",
        "fal-ai/ltx-2-19b/distilled/image-to-video",
        "fal-ai/ltx-2.3-22b/text-to-video",
        "fal-ai/ltx-2.3-22b/distilled/image-to-video",
    ):
        schema = shipped(endpoint)
        assert facts(schema.field("num_frames")) == ("integer", 9, 481, 121)
        assert schema.field("enable_prompt_expansion").default is True
        assert schema.field("video_output_type").enum == (
            "X264 (.mp4)",
            "VP9 (.webm)",
            "PRORES4444 (.mov)",
            "GIF (.gif)",
        )
        presets = schema.field("video_size").presets
        assert {"square_hd", "landscape_16_9"} <= set(presets)
        assert ("auto" in presets) == ("image-to-video" in endpoint)
        assert [(f.name, f.required) for f in schema.output_fields] == [
            ("video", True),
            ("seed", True),
            ("prompt", True),
        ]
        assert schema.output_field("video").ref == "VideoFile"
    full = shipped("fal-ai/ltx-2-19b/image-to-video")
    assert facts(full.field("guidance_scale")) == ("number", 1, 10, 3)
    assert facts(full.field("num_inference_steps")) == ("integer", 8, 50, 40)
    assert facts(full.field("fps")) == ("number", 1, 60, 25)
    assert full.field("camera_lora").enum[-1] == "none"
    distilled = shipped("fal-ai/ltx-2-19b/distilled/text-to-video")
    assert distilled.field("num_inference_steps") is None
    assert distilled.field("guidance_scale") is None
