"""The parameter panel as a user drives it: controls built from every endpoint's schema (and
from a document the package does not ship, fetched from the local server), widgets in plain
pytest, jobs against the local server over loopback, "copy as %%ltx" through a real
InteractiveShell, and the panel notebook executed headlessly."""

from __future__ import annotations

import base64
import json
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import ipywidgets as widgets
import nbformat
import pytest
from ipywidgets.widgets.widget import _instances
from nbclient import NotebookClient

from ltx_jupyter import Job, JobStatus
from ltx_jupyter._controls import FieldControl, field_title, shown_value
from ltx_jupyter._endpoints import known_endpoints
from ltx_jupyter._file_picker import FilePicker
from ltx_jupyter._form import FIRST_FEW
from ltx_jupyter._openapi import Field
from ltx_jupyter._panel import Panel
from ltx_jupyter._pricing import format_money, load_table
from ltx_jupyter._schema import IMAGE_TO_VIDEO, TEXT_TO_VIDEO, lookup_schema
from tests.picker_frontend import send_file
from tests.shells import eventually, magics_of
from tests.test_magics import server_state, submits
from tests.test_openapi import REF, document

LTX2 = "fal-ai/ltx-2/text-to-video"
LTX2_FAST = "fal-ai/ltx-2/text-to-video/fast"
LTX2_I2V = "fal-ai/ltx-2/image-to-video"
LTX13B = "fal-ai/ltx-video-13b-distilled"
LTX098 = "fal-ai/ltxv-13b-098-distilled"
LTX19B = "fal-ai/ltx-2-19b/text-to-video"
THEIRS = "someone/their-model"
SEED_NEGATIVE = lookup_schema(TEXT_TO_VIDEO).schema.defaults()["negative_prompt"]
NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
CANARY = "fal-canary-key-5a6b7c8d9e0f"
WARNING_COLOUR = "#d35400"
ERROR_COLOUR = "#c0392b"


# -- helpers ------------------------------------------------------------------------------------


def png_bytes(width: int = 4, height: int = 4, rgb: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    """A small solid-colour PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def finished(job: Job, timeout: float = 30.0) -> Job:
    eventually(lambda: job.done, timeout)
    return job


def widgets_in(widget: widgets.Widget) -> list[widgets.Widget]:
    """``widget`` and every widget inside it."""
    found = [widget]
    for child in getattr(widget, "children", ()):
        found += widgets_in(child)
    return found


def of_type(control: FieldControl, kind: type) -> list[Any]:
    return [w for w in widgets_in(control) if type(w) is kind]


def text_of(html: widgets.HTML) -> str:
    """The visible text of an HTML widget's value (tags and entities aside)."""
    import html as html_module
    import re

    return html_module.unescape(re.sub(r"<[^>]+>", "", html.value))


def choose(panel: Panel, name: str, value: Any) -> None:
    """Pick ``value`` in the toggle buttons or dropdown of field ``name``, as a click does."""
    control = panel.control(name)
    labels = [label for label, option in control.choices if option == value]
    assert labels, (name, value, control.choices)
    control.widget.index = [label for label, _ in control.choices].index(labels[0])


def received(server: Any, job: Job) -> dict[str, Any]:
    """The input the server received for ``job``."""
    return server_state(server, job.request_id)["input"]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, local_server: Any) -> Any:
    """The test's own history file, cache and working folder, jobs sent to the local server."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LTX_HISTORY_FILE", str(tmp_path / "history.jsonl"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("LTX_QUEUE_URL", local_server.url)
    for name in ("FAL_KEY", "FAL_KEY_ID", "FAL_KEY_SECRET", "LTX_OPENAPI_URL", "LTX_PLATFORM_URL"):
        monkeypatch.delenv(name, raising=False)
    return local_server


@pytest.fixture
def make_panel(env: Any) -> Iterator[Callable[..., Panel]]:
    panels: list[Panel] = []

    def make(**options: Any) -> Panel:
        panel = Panel(**options)
        panels.append(panel)
        return panel

    yield make
    for panel in panels:
        for run in panel.runs:
            run.job.cancel()
            eventually(lambda run=run: run.job.done)
        panel.close()


# -- controls from every schema ----------------------------------------------------------------


def _check_control(control: FieldControl, spec: Field) -> None:
    """The control a person sees for ``spec``, as the issue lists them."""
    bounded = all(
        v is not None
        for v in (
            spec.minimum if spec.minimum is not None else spec.exclusive_minimum,
            spec.maximum if spec.maximum is not None else spec.exclusive_maximum,
        )
    )
    if spec.name == "prompt":
        assert of_type(control, widgets.Textarea)
        assert "characters" in text_of(control.count) or "words" in text_of(control.count)
    elif spec.presets is not None:
        (dropdown,) = [w for w in of_type(control, widgets.Dropdown)]
        assert [v for _l, v in dropdown.options] == [*spec.presets, "custom size"]
        assert len(of_type(control, widgets.IntText)) == 2  # width, height
    elif spec.file_kind is not None:
        # anywidget makes each instance's class a subclass of its own
        (upload,) = [w for w in widgets_in(control) if isinstance(w, FilePicker)]
        assert upload.accept == {"image": "image/*", "video": "video/*", "audio": "audio/*"}.get(
            spec.file_kind, ""
        )
        assert of_type(control, widgets.Text), "a URL box"
    elif spec.enum:
        numeric = all(isinstance(v, (int, float)) for v in spec.enum)
        kind = widgets.ToggleButtons if numeric or len(spec.enum) <= 4 else widgets.Dropdown
        (widget,) = of_type(control, kind)
        assert [v for _l, v in widget.options if v is not None] == list(spec.enum)
    elif spec.type == "boolean":
        assert of_type(control, widgets.Checkbox)
    elif spec.type in ("integer", "number"):
        box = widgets.IntText if spec.type == "integer" else widgets.FloatText
        assert len(of_type(control, box)) == 1, "an exact-value box"
        slider = widgets.IntSlider if spec.type == "integer" else widgets.FloatSlider
        sliders = of_type(control, slider)
        if bounded and (spec.has_default or spec.required):
            (found,) = sliders
            if spec.minimum is not None:
                assert found.min == spec.minimum
            if spec.maximum is not None:
                assert found.max == spec.maximum
        else:
            assert not sliders
    elif spec.type == "array":
        assert any(
            isinstance(w, widgets.Button) and w.description.startswith("add ")
            for w in widgets_in(control)
        )
    elif spec.type == "object":
        assert [c.name for c in control.children_controls.values()] == [f.name for f in spec.fields]


@pytest.mark.parametrize("endpoint", [info.endpoint_id for info in known_endpoints()])
def test_every_shipped_endpoint_gets_its_schema_as_controls_with_defaults(make_panel, endpoint):
    panel = make_panel(endpoint=endpoint)
    schema = lookup_schema(endpoint).schema
    form = panel.form
    assert panel.endpoint == endpoint and panel.endpoint_choice.value == endpoint

    # Required fields and the first few of fal's order at once; the rest folded away.
    shown = [c.name for c in form.main.children]
    expected = [f.name for i, f in enumerate(schema.fields) if f.required or i < FIRST_FEW]
    assert shown == expected
    rest = [f.name for f in schema.fields if f.name not in expected]
    assert form.additional.selected_index is None
    assert form.extra_box.children == ()
    form.additional.selected_index = 0  # a click on "Additional settings"
    assert [c.name for c in form.extra_box.children] == rest
    assert (form.additional.layout.display == "none") == (not rest)

    arguments = panel.arguments()
    for spec in schema.fields:
        control = panel.control(spec.name)
        _check_control(control, spec)
        # The title, the description on hover, the default.
        label = text_of(control.label)
        assert field_title(spec) in label
        assert control.label.tooltip == (spec.description or None)
        if spec.has_default:
            assert f"default {shown_value(spec.default)}" in label
            assert spec.name in arguments, "a default is sent as shown"
            assert arguments[spec.name] == spec.default
        elif spec.type == "object" and spec.presets is None:
            # An object (a video to extend) holds its own fields' defaults.
            inner = {f.name: f.default for f in spec.fields if f.has_default}
            assert arguments[spec.name] == inner
        elif spec.name != "prompt":
            assert spec.name not in arguments, "a field without a default is left out"
            assert ("required" if spec.required else "optional") in label

    # Nothing is valid without a prompt; a required file is marked under its control.
    missing = [f for f in schema.fields if f.required and f.name != "prompt"]
    assert panel.generate_button.disabled
    if missing:
        assert text_of(panel.message).startswith("Generate is off: ")
    else:
        assert text_of(panel.message) == "Write a prompt to generate."
    panel.control("prompt").text.value = "A lighthouse in a storm"
    for spec in missing:
        # Marked on the control, or on the inner field that is missing (a video's URL).
        control = panel.control(spec.name)
        marked = [c for c in widgets_in(control) if isinstance(c, FieldControl) and c.invalid]
        assert marked, spec.name
        assert "is required" in marked[-1].error_text, spec.name
    assert panel.generate_button.disabled == bool(missing)
    if not missing:
        assert text_of(panel.message) == ""


def _their_document() -> dict[str, Any]:
    """A fal-format document for an endpoint the package does not ship, with every kind of
    field the panel has a control for."""
    lora = {
        "title": "LoRAWeight",
        "type": "object",
        "properties": {
            "path": {"title": "Path", "type": "string"},
            "scale": {"title": "Scale", "type": "number", "minimum": 0, "maximum": 4, "default": 1},
        },
        "required": ["path"],
        "x-fal-order-properties": ["path", "scale"],
    }
    size = {
        "title": "ImageSize",
        "type": "object",
        "properties": {
            "width": {"title": "Width", "type": "integer", "exclusiveMinimum": 0, "default": 512},
            "height": {"title": "Height", "type": "integer", "exclusiveMinimum": 0, "default": 512},
        },
        "x-fal-order-properties": ["width", "height"],
    }
    properties = {
        "prompt": {"title": "Prompt", "type": "string", "maxLength": 300, "description": "What."},
        "style": {
            "title": "Style",
            "type": "string",
            "enum": ["film", "anime", "clay", "noir", "pixel", "sketch"],
            "default": "film",
            "description": "The look.",
        },
        "mood": {"title": "Mood", "type": "string", "enum": ["calm", "tense", "joyful"]},
        "duration": {"title": "Duration", "type": "integer", "enum": [4, 6, 8], "default": 4},
        "strength": {
            "title": "Strength",
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0.5,
        },
        "num_frames": {
            "title": "Frames",
            "type": "integer",
            "minimum": 9,
            "maximum": 97,
            "default": 25,
        },
        "shift": {"title": "Shift", "type": "number", "default": 1.5},
        "seed": {"anyOf": [{"type": "integer"}, {"type": "null"}], "title": "Seed"},
        "loop": {"title": "Loop", "type": "boolean", "default": False},
        "image_url": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "Image"},
        "audio_url": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "Sound"},
        "video_size": {
            "anyOf": [
                {"$ref": REF + "ImageSize"},
                {"type": "string", "enum": ["square", "landscape_16_9"]},
            ],
            "title": "Video Size",
            "default": "square",
        },
        "loras": {"title": "Loras", "type": "array", "items": {"$ref": REF + "LoRAWeight"}},
    }
    return document(
        properties,
        required=["prompt"],
        schemas={"LoRAWeight": lora, "ImageSize": size},
        input_name="TheirModelInput",
        endpoint_id=THEIRS,
    )


def test_a_document_the_package_does_not_ship_is_fetched_and_every_control_works(
    make_panel, server_factory, monkeypatch, tmp_path
):
    server = server_factory(documents={THEIRS: _their_document()})
    monkeypatch.setenv("LTX_QUEUE_URL", server.url)
    panel = make_panel()
    assert THEIRS not in [v for _l, v in panel.endpoint_choice.options]

    # Typed into the search, the id is offered; chosen, its schema comes from the server.
    panel.endpoint_search.value = THEIRS
    offered = dict((v, label) for label, v in panel.endpoint_choice.options)
    assert "not shipped: fetch its schema" in offered[THEIRS]
    assert panel.endpoint == TEXT_TO_VIDEO, "searching never switches"
    panel.endpoint_choice.value = THEIRS
    assert panel.endpoint == THEIRS
    first_few = ["prompt", "style", "mood", "duration", "strength", "num_frames"]
    assert [c.name for c in panel.form] == first_few
    assert f"{THEIRS} · text-to-video" in text_of(panel.endpoint_info)
    # Fetched from the queue server's OpenAPI URL, and cached.
    (cached,) = (tmp_path / "cache" / "ltx-jupyter" / "openapi").glob("*.json")
    entry = json.loads(cached.read_text())
    assert entry["endpoint_id"] == THEIRS
    assert entry["url"] == f"{server.url}/api/openapi/queue/openapi.json"

    prompt = panel.control("prompt")
    prompt.text.value = "A clay fox waves"
    assert text_of(prompt.count) == "16 / 300 characters"

    # Six text values: a dropdown; three: toggle buttons with "not set" for no default.
    style = panel.control("style")
    assert isinstance(style.widget, widgets.Dropdown) and style.value == "film"
    choose(panel, "style", "clay")
    mood = panel.control("mood")
    assert isinstance(mood.widget, widgets.ToggleButtons)
    assert [label for label, _v in mood.choices] == ["not set", "calm", "tense", "joyful"]
    assert mood.value is None
    choose(panel, "mood", "tense")
    # A numeric literal set: toggle buttons.
    assert isinstance(panel.control("duration").widget, widgets.ToggleButtons)
    choose(panel, "duration", 8)

    # A bounded number: the slider and the box follow each other.
    strength = panel.control("strength")
    strength.slider.value = 0.73
    assert strength.box.value == 0.73 and strength.value == 0.73
    strength.box.value = 0.25
    assert strength.slider.value == 0.25
    frames = panel.control("num_frames")
    assert (frames.slider.min, frames.slider.max, frames.value) == (9, 97, 25)
    frames.box.value = 17

    form = panel.form
    form.additional.selected_index = 0
    # Unbounded: a number box; the seed with "random"; a boolean: a checkbox.
    shift = panel.control("shift")
    assert not of_type(shift, widgets.FloatSlider) and shift.value == 1.5
    shift.box.value = 2.5
    seed = panel.control("seed")
    assert seed.unset.description == "random" and seed.value is None and seed.box.disabled
    seed.unset.value = False
    seed.box.value = 31
    panel.control("loop").checkbox.value = True

    # Files: an upload or a URL, previewed by kind.
    image = panel.control("image_url")
    picture = png_bytes()
    send_file(image, "frame.png", picture)
    data_uri = "data:image/png;base64," + base64.b64encode(picture).decode("ascii")
    assert Path(image.value).name == "frame.png" and Path(image.value).read_bytes() == picture
    assert f'<img src="{data_uri}" alt="frame.png"' in image.preview.value
    assert "frame.png (0.0 MB): sent inline when the job starts" in text_of(image.preview)
    sound = panel.control("audio_url")
    sound.url.value = "https://example.com/theme.mp3"
    assert '<audio controls preload="metadata" src="https://example.com/theme.mp3">' in (
        sound.preview.value
    )

    # A size: a preset, or a custom width and height.
    size = panel.control("video_size")
    assert size.value == "square" and size.custom.layout.display == "none"
    size.preset.value = "custom size"
    assert size.custom.layout.display is None
    size.width.value, size.height.value = 96, 64

    # A list of objects: rows added and removed.
    loras = panel.control("loras")
    assert loras.value is None, "no default: nothing is sent until a row is added"
    loras.add_button.click()
    loras.add_button.click()
    assert loras.value == [{"scale": 1.0}, {"scale": 1.0}]
    assert "is required" in loras.rows[0].children_controls["path"].error_text
    assert panel.generate_button.disabled
    remove = [w for w in widgets_in(loras.rows[1].entry) if isinstance(w, widgets.Button)]
    remove[0].click()
    loras.rows[0].children_controls["path"].text.value = "https://example.com/clay.safetensors"
    loras.rows[0].children_controls["scale"].box.value = 0.6

    expected = {
        "prompt": "A clay fox waves",
        "style": "clay",
        "mood": "tense",
        "duration": 8,
        "strength": 0.25,
        "num_frames": 17,
        "shift": 2.5,
        "seed": 31,
        "loop": True,
        "image_url": image.value,
        "audio_url": "https://example.com/theme.mp3",
        "video_size": {"width": 96, "height": 64},
        "loras": [{"path": "https://example.com/clay.safetensors", "scale": 0.6}],
    }
    assert panel.arguments() == expected
    assert not panel.generate_button.disabled, text_of(panel.message)
    assert "price unknown" in text_of(panel.cost)

    job = finished(panel.generate())
    assert job.status == JobStatus.COMPLETED, job.error
    # The small upload goes inline, as the client sends a small --image file.
    assert received(server, job) == {**expected, "image_url": data_uri}


def test_an_endpoint_without_a_schema_gets_a_prompt_and_a_json_box_and_says_so(make_panel, env):
    missing = "someone/unknown-model"
    panel = make_panel()
    panel.endpoint_search.value = missing
    panel.endpoint_choice.value = missing
    assert panel.endpoint == missing
    assert f"No schema for {missing}" in text_of(panel.endpoint_info)
    assert "sent unvalidated" in text_of(panel.endpoint_info)
    assert [c.name for c in panel.form] == ["prompt", "other_fields"]
    panel.control("prompt").text.value = "A fox"
    other = panel.control("other_fields")
    other.text.value = "[1, 2]"
    assert "must be a JSON object" in other.error_text and panel.generate_button.disabled
    other.text.value = '{"num_frames": 9, "seed": 4}'
    assert panel.arguments() == {"prompt": "A fox", "num_frames": 9, "seed": 4}
    assert not panel.generate_button.disabled
    job = finished(panel.generate())
    assert job.status == JobStatus.COMPLETED, job.error
    assert received(env, job) == {"prompt": "A fox", "num_frames": 9, "seed": 4}


def test_switching_endpoints_keeps_the_shared_values_set_and_resets_the_others(make_panel):
    panel = make_panel(endpoint=LTX2)
    assert panel.tools.layout.display == "none", "LTX-2 has no seed, steps or guidance"
    panel.control("prompt").text.value = "  A red fox in the snow \n"
    choose(panel, "duration", 8)
    choose(panel, "resolution", "1440p")
    panel.control("generate_audio").checkbox.value = False

    panel.endpoint_choice.value = LTX2_FAST
    assert panel.control("prompt").text.value == "  A red fox in the snow \n"
    assert {k: panel.arguments()[k] for k in ("duration", "resolution", "generate_audio")} == {
        "duration": 8,
        "resolution": "1440p",
        "generate_audio": False,
    }

    # The 13B models allow 480p or 720p: 1440p cannot stay, so the default comes.
    panel.endpoint_choice.value = LTX13B
    assert panel.arguments()["resolution"] == "720p"
    assert "duration" not in panel.arguments()
    assert panel.arguments()["prompt"] == "A red fox in the snow"
    assert panel.presets.layout.display == "none" and panel.reuse_seed_button.layout.display is None
    seed = panel.control("seed")
    seed.unset.value = False
    seed.box.value = 5
    panel.control("negative_prompt").text.value = "blurry"
    panel.control("num_frames").box.value = 97
    panel.control("loras").add_row({"path": "https://example.com/a.safetensors", "scale": 0.5})

    panel.endpoint_choice.value = LTX098
    kept = {k: panel.arguments()[k] for k in ("seed", "negative_prompt", "num_frames", "loras")}
    assert kept == {
        "seed": 5,
        "negative_prompt": "blurry",
        "num_frames": 97,
        "loras": [{"path": "https://example.com/a.safetensors", "scale": 0.5}],
    }
    assert panel.arguments()["frame_rate"] == 24, "0.9.8's own default, not 0.9.7's 30"
    panel.control("negative_prompt").reset_button.click()

    panel.endpoint_choice.value = LTX19B
    assert (panel.arguments()["seed"], panel.arguments()["num_frames"]) == (5, 97)
    default_19b = lookup_schema(LTX19B).schema.field("negative_prompt").default
    assert panel.arguments()["negative_prompt"] == default_19b, "a default is not carried over"
    assert panel.presets.layout.display is None, "19B has steps and guidance: the presets show"
    panel.preset_buttons["quality"].click()
    panel.preset_buttons["faithful"].click()
    assert (panel.arguments()["num_inference_steps"], panel.arguments()["guidance_scale"]) == (
        40,
        6.0,
    )

    # Back to a form seen before: what the two do not share is back at its default.
    panel.endpoint_choice.value = LTX2
    assert {k: panel.arguments()[k] for k in ("duration", "resolution", "generate_audio")} == {
        "duration": 6,
        "resolution": "1080p",
        "generate_audio": True,
    }
    assert panel.last_switch_seconds is not None


def test_invalid_values_mark_their_control_and_disable_generate_with_the_reason(make_panel, env):
    panel = make_panel()
    assert panel.generate_button.disabled
    assert text_of(panel.message) == "Write a prompt to generate."
    assert not panel.control("prompt").invalid
    panel.control("prompt").text.value = "   \n "
    assert panel.generate_button.disabled
    panel.control("prompt").text.value = "The frame comes alive"
    assert not panel.generate_button.disabled and text_of(panel.message) == ""

    steps = panel.control("num_inference_steps")
    steps.box.value = 80
    assert steps.slider.value == 50, "the slider stops at its end; the box keeps the value"
    reason = "num_inference_steps: must be an integer from 1 to 50, got 80"
    assert steps.error_text == reason and steps.invalid
    assert ERROR_COLOUR in steps.row.layout.border
    assert panel.generate_button.disabled
    assert text_of(panel.message) == f"Generate is off: {reason}"
    before = submits(env)
    panel.generate_button.click()  # a stale frontend's click sends nothing either
    assert panel.runs == [] and submits(env) == before
    steps.slider.value = 40
    assert steps.box.value == 40 and not steps.invalid and not panel.generate_button.disabled

    panel.endpoint_choice.value = IMAGE_TO_VIDEO
    image = panel.control("image_url")
    assert "image_url: is required" in image.error_text
    image.url.value = "ftp://example.com/frame.png"
    assert "must be an http(s) URL" in image.error_text
    replies = send_file(image, "notes.txt", b"not a picture")
    assert replies[-1]["event"] == "refused"
    assert image.error_text == (
        "image_url: notes.txt is not an image: it is text; give a JPEG, PNG, WebP, GIF, BMP, "
        "TIFF, HEIC or AVIF file"
    )
    assert image.url.value == "", "an upload replaces the URL"
    assert panel.generate_button.disabled
    image.url.value = "https://example.com/frame.png"
    assert not image.invalid and not panel.generate_button.disabled
    assert '<img src="https://example.com/frame.png"' in image.preview.value

    panel.endpoint_choice.value = LTX2
    prompt = panel.control("prompt")
    prompt.text.value = "x" * 5001
    assert text_of(prompt.count) == "5001 / 5000 characters"
    assert ERROR_COLOUR in prompt.count.value
    assert "prompt: must be text of 1 to 5000 characters, got 5001 characters" in text_of(
        prompt.error
    )
    assert panel.generate_button.disabled

    panel.endpoint_choice.value = LTX19B
    size = panel.control("video_size")
    size.preset.value = "custom size"
    size.width.value = 0
    assert "video_size.width: must be an integer above 0, got 0" in size.error_text
    assert panel.generate_button.disabled


def test_the_word_count_follows_the_prompt_and_warns_past_the_guide(make_panel):
    panel = make_panel()
    prompt = panel.control("prompt")
    assert prompt.guide.selected_index is None, "the prompt guide starts folded"
    prompt.text.value = "A lighthouse in a storm"
    assert text_of(prompt.count) == "5 / 200 words"
    assert WARNING_COLOUR not in prompt.count.value

    prompt.text.value = " ".join(["wave"] * 201)
    assert text_of(prompt.count).startswith("201 / 200 words")
    assert WARNING_COLOUR in prompt.count.value
    assert not panel.generate_button.disabled, "the guide warns, it never blocks"


def test_the_estimate_follows_the_controls_and_max_cost_disables_generate(make_panel):
    price = load_table().price(LTX2)
    assert price is not None and price.unit == "second"
    factor_1440 = next(m.factors["1440p"] for m in price.multipliers if m.field == "resolution")

    panel = make_panel(endpoint=LTX2, max_cost=0.5)
    panel.control("prompt").text.value = "A red fox"
    assert text_of(panel.cost).startswith(f"≈ {format_money(price.unit_price * 6, 'USD')} (6 s")
    assert not panel.generate_button.disabled

    choose(panel, "duration", 10)
    ten = format_money(price.unit_price * 10, "USD")
    assert text_of(panel.cost).startswith(f"≈ {ten}")
    assert panel.generate_button.disabled
    assert text_of(panel.message) == (
        f"Generate is off: the estimate {ten} is over LtxMagics.max_cost ($0.50)."
    )
    assert panel.generate() is None and panel.runs == []

    choose(panel, "duration", 6)
    choose(panel, "resolution", "1440p")
    assert text_of(panel.cost).startswith(
        f"≈ {format_money(price.unit_price * 6 * factor_1440, 'USD')}"
    )
    assert panel.generate_button.disabled == (price.unit_price * 6 * factor_1440 > 0.5)

    # A price the package cannot know, under a limit: refused, as the magic refuses it.
    panel.endpoint_choice.value = TEXT_TO_VIDEO
    assert text_of(panel.cost).startswith("price unknown")
    assert panel.generate_button.disabled
    assert "and LtxMagics.max_cost is $0.50" in text_of(panel.message)


def test_the_picker_groups_by_family_searches_ids_and_titles_and_shows_prices(make_panel):
    panel = make_panel()
    options = panel.endpoint_choice.options
    infos = known_endpoints()
    assert [v for _l, v in options] == [i.endpoint_id for i in infos], "grouped by family"
    labels = dict((v, label) for label, v in options)
    assert labels[LTX2].startswith("LTX-2 text to video · text-to-video · $")
    assert labels[LTX2].endswith("per second")
    assert labels[LTX13B].endswith("per video")
    assert labels[TEXT_TO_VIDEO].endswith("price unknown")

    panel.endpoint_search.value = "19b image"
    found = [v for _l, v in panel.endpoint_choice.options]
    assert found[0] == TEXT_TO_VIDEO, "the chosen endpoint stays, first"
    assert found[1:] == [
        i.endpoint_id for i in infos if "19b" in i.endpoint_id and "image" in i.endpoint_id
    ]
    panel.endpoint_search.value = "ltx-2/text-to-video/f"  # part of an id
    assert [v for _l, v in panel.endpoint_choice.options][1:] == [LTX2_FAST]
    panel.endpoint_choice.value = LTX2_FAST
    assert panel.endpoint == LTX2_FAST
    panel.endpoint_search.value = ""
    assert [v for _l, v in panel.endpoint_choice.options] == [i.endpoint_id for i in infos]
    assert panel.endpoint_choice.value == LTX2_FAST


def test_generate_returns_at_once_and_each_job_view_reaches_the_video(make_panel, env, monkeypatch):
    monkeypatch.setenv("FAL_KEY", CANARY)  # present, but the panel must never show it
    panel = make_panel()
    panel.control("prompt").text.value = "A red fox trots across a snowy meadow at dawn"
    panel.control("seed").unset.value = False
    panel.control("seed").box.value = 7
    panel.control("num_inference_steps").box.value = 20
    assert not panel.generate_button.disabled

    started = time.monotonic()
    panel.generate_button.click()
    panel.generate_button.click()
    assert time.monotonic() - started < 1.0, "a click must return at once"
    assert len(panel.runs) == 2
    assert repr(panel) == "ltx panel · fal-ai/ltx-video · 2 runs, 2 running"
    views = panel.jobs_area.children
    assert [view.job for view in views] == [run.job for run in panel.runs]

    for run in panel.runs:
        finished(run.job)
        assert run.job.status == JobStatus.COMPLETED
        assert run.job.input == panel.arguments()
        assert run.job.result.seed == 7
    eventually(lambda: all("<video" in view.video_html.value for view in views))
    eventually(lambda: all("<video" in run.thumbnail.value for run in panel.runs))
    assert 'width="192"' in panel.runs[0].thumbnail.value
    assert "seed 7 · 20 steps · guidance 3" in panel.runs[0].summary.value
    assert "num_inference_steps: 20" in panel.runs[0].summary.value
    eventually(lambda: repr(panel) == "ltx panel · fal-ai/ltx-video · 2 runs")
    assert panel.cancel_button.disabled

    states = json.dumps([w.get_state() for w in list(_instances.values())], default=str)
    assert CANARY not in states


def test_the_text_form_is_one_status_line_saying_widgets_are_needed(make_panel):
    panel = make_panel()
    bundle = panel._repr_mimebundle_()
    assert bundle["text/plain"] == (
        "ltx panel · fal-ai/ltx-video · 0 runs · its controls need a frontend with Jupyter widgets"
    )
    assert "\n" not in bundle["text/plain"]
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_a_section_can_be_added_without_touching_the_others(make_panel):
    panel = make_panel()
    names = [name for name, _w in panel.sections]
    assert names == [
        "endpoint", "form", "tools", "actions", "sweep", "status", "jobs", "sweeps", "history"
    ]  # fmt: skip
    row = widgets.HTML("notes")
    panel.add_section("notes", row, after="actions")
    assert panel.children[names.index("actions") + 1] is row
    assert panel.section("notes") is row
    with pytest.raises(ValueError, match="already has a section 'notes'"):
        panel.add_section("notes", row)
    panel.endpoint_choice.value = LTX2  # a switch keeps the added section
    assert panel.section("notes") in panel.children


def test_reusing_a_seed_and_loading_from_history_restore_the_run_exactly(make_panel):
    panel = make_panel()
    assert panel.reuse_seed_button.disabled
    panel.control("prompt").text.value = "A paper boat drifts down a rain gutter"
    panel.control("negative_prompt").text.value = "blurry, dark"
    panel.control("num_inference_steps").box.value = 12
    panel.control("guidance_scale").box.value = 6.5
    first = finished(panel.generate())
    assert "seed" not in first.input, "a random seed is left to the endpoint"

    panel.endpoint_choice.value = LTX2
    choose(panel, "duration", 8)
    panel.control("generate_audio").checkbox.value = False
    second = finished(panel.generate())
    assert second.input["duration"] == 8 and second.input["generate_audio"] is False

    panel.endpoint_choice.value = TEXT_TO_VIDEO
    eventually(lambda: not panel.reuse_seed_button.disabled)
    # Without a selection, "reuse seed" takes the seed of the last finished run that reports
    # one: LTX-2's output has no seed, so the first run's.
    assert second.result.seed is None
    panel.reuse_seed_button.click()
    assert panel.arguments()["seed"] == first.result.seed

    # "load" puts back the endpoint and the whole input, whichever endpoint is showing.
    panel.runs[1].load_button.click()
    assert panel.endpoint == LTX2 and panel.arguments() == second.input
    first_run = panel.runs[0]
    first_run.load_button.click()
    assert panel.selected_run is first_run
    assert panel.endpoint == TEXT_TO_VIDEO
    assert panel.arguments() == first.input
    assert panel.control("seed").value is None, "loaded as it ran: random"

    panel.reuse_seed_button.click()
    assert panel.arguments() == {**first.input, "seed": first.result.seed}
    again = finished(panel.generate())
    assert again.result.seed == first.result.seed
    assert panel.selected_run is None, "a new run clears the selection"


def _set_up(panel: Panel, endpoint: str) -> None:
    """Settings away from the defaults on ``endpoint``, for the copy test."""
    panel.endpoint_choice.value = endpoint
    prompt = panel.control("prompt")
    seed = panel.control("seed") if panel.form.has("seed") else None
    if endpoint == TEXT_TO_VIDEO:
        prompt.text.value = (
            "A man says 'it's {fine}' at $HOME; the camera pans\n"
            '  left with "quotes" and a backslash \\n\n'
        )
        panel.control(
            "negative_prompt"
        ).text.value = "-blurry {fine} $HOME,\nsmeared; $(rm -rf /) `x`"
        panel.control("guidance_scale").box.value = 4.7
        panel.control("num_inference_steps").box.value = 7
    elif endpoint == LTX2:
        prompt.text.value = "A red fox trots through snow"
        choose(panel, "duration", 8)
        choose(panel, "resolution", "1440p")
        choose(panel, "fps", 50)
        panel.control("generate_audio").checkbox.value = False
    elif endpoint == LTX13B:
        prompt.text.value = "A clay fox, two LoRAs"
        loras = panel.control("loras")
        loras.add_row({"path": "https://example.com/clay.safetensors", "scale": 0.7})
        loras.add_row({"path": "owner/repo", "weight_name": "w.safetensors", "scale": 2.0})
        panel.control("num_frames").box.value = 97
    elif endpoint == LTX19B:
        prompt.text.value = "A jib shot over a harbour"
        size = panel.control("video_size")
        size.preset.value = "custom size"
        size.width.value, size.height.value = 704, 480
        choose(panel, "camera_lora", "jib_up")
        panel.control("num_frames").box.value = 49
    elif endpoint == LTX2_I2V:
        prompt.text.value = "The frame comes alive"
        send_file(panel.control("image_url"), "frame.png", png_bytes())
    if seed is not None:
        seed.unset.value = False
        seed.box.value = 123456789
    panel.form.build_all()


@pytest.mark.parametrize("endpoint", [TEXT_TO_VIDEO, LTX2, LTX13B, LTX19B, LTX2_I2V])
def test_copy_as_ltx_gives_a_cell_that_sends_exactly_the_panels_input(make_shell, env, endpoint):
    # Configured defaults must not leak into the copied cell's input.
    shell = make_shell(env, steps=44, guidance=5.5, negative_prompt="configured negative")
    panel = shell.run_line_magic("ltx", "panel")
    assert (panel.arguments()["num_inference_steps"], panel.arguments()["negative_prompt"]) == (
        44,
        "configured negative",
    )
    shell.user_ns.update(fine="EXPANDED", HOME="EXPANDED")  # IPython expands these on a line
    _set_up(panel, endpoint)
    assert not panel.generate_button.disabled, text_of(panel.message)
    arguments = panel.arguments()

    panel.copy_button.click()
    cell = panel.last_copied
    assert cell is not None and shell.rl_next_input == cell
    assert cell.startswith(f"%%ltx --endpoint {endpoint} ")
    assert cell.split("\n", 1)[1] == arguments["prompt"]
    assert panel.copied_cell.value == cell and panel.copied_cell.layout.display is None

    session = magics_of(shell).session
    jobs_before = len(session.jobs)
    result = shell.run_cell(cell)
    assert result.success, result.error_in_exec or result.error_before_exec
    assert len(session.jobs) == jobs_before + 1
    copied = finished(session.jobs[-1])
    assert copied.status == JobStatus.COMPLETED, copied.error
    assert copied.endpoint == endpoint
    assert copied.input == arguments
    sent = json.loads(json.dumps(arguments))
    if endpoint == LTX2_I2V:  # the uploaded file, small: inlined when the job starts
        assert "--image /" in cell
        sent["image_url"] = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()
    assert received(env, copied) == sent

    # The run's own copy, from the history, sends it again too.
    job = finished(panel.generate())
    assert job.session is session, "the panel shares the magic's session"
    panel.runs[0].copy_button.click()
    assert panel.last_copied == cell
    assert received(env, job) == received(env, copied)


def test_magic_cell_uses_param_for_fields_without_an_option():
    from ltx_jupyter._parsing import magic_cell

    cell = magic_cell(
        TEXT_TO_VIDEO,
        {"prompt": "a fox", "num_frames": 121, "resolution": "720p", "guidance_scale": 3},
    )
    assert cell == (
        "%%ltx --endpoint fal-ai/ltx-video --param num_frames=121 "
        "--param 'resolution=\"720p\"' --param guidance_scale=3\na fox"
    )


def test_a_large_upload_is_kept_in_a_file_the_client_uploads(make_shell, env):
    shell = make_shell(env)
    panel = shell.run_line_magic("ltx", "panel")
    panel.endpoint_choice.value = IMAGE_TO_VIDEO
    picture = png_bytes(400, 400) + b"\0" * 300_000  # past the inline limit
    send_file(panel.control("image_url"), "big.png", picture, chunk=64 * 1024)
    path = panel.arguments()["image_url"]
    assert Path(path).read_bytes() == picture
    assert "big.png (0.3 MB): uploaded when the job starts" in text_of(
        panel.control("image_url").preview
    )
    panel.control("prompt").text.value = "The frame comes alive"
    job = finished(panel.generate())
    assert job.status == JobStatus.COMPLETED, job.error
    sent = received(env, job)["image_url"]
    assert sent.startswith(env.url), "uploaded to the server's storage"
    assert httpx.get(sent).content == picture


def test_rendered_text_is_escaped(make_panel):
    hostile = "<img src=x onerror=alert(1)>"
    panel = make_panel()
    panel.control("prompt").text.value = hostile
    panel.control("num_inference_steps").box.value = 2
    job = finished(panel.generate())
    run = panel.runs[0]
    eventually(lambda: "<video" in run.thumbnail.value)
    assert "&lt;img src=x onerror=alert(1)&gt;" in run.summary.value
    assert hostile not in run.summary.value
    assert hostile not in run.view.video_html.value
    assert job.input["prompt"] == hostile

    panel.endpoint_choice.value = IMAGE_TO_VIDEO
    image = panel.control("image_url")
    image.url.value = 'https://example.com/a.png" onerror="alert(1)'
    assert '" onerror="' not in image.preview.value
    assert "&quot; onerror=&quot;alert(1)" in image.preview.value
    image.url.value = "javascript:alert(1)"
    assert "<img" not in image.preview.value
    image.url.value = "data:text/html;base64,PHNjcmlwdD4="
    assert "<img" not in image.preview.value


def test_cancel_stops_the_running_jobs(make_panel, server_factory, monkeypatch):
    slow = server_factory(step_seconds=0.1)
    monkeypatch.setenv("LTX_QUEUE_URL", slow.url)
    panel = make_panel()
    assert panel.cancel_button.disabled
    panel.control("prompt").text.value = "A very long shot"
    panel.control("num_inference_steps").box.value = 50
    job = panel.generate()
    eventually(lambda: job.status == JobStatus.RUNNING and not panel.cancel_button.disabled)
    panel.cancel_button.click()
    finished(job)
    assert job.status == JobStatus.CANCELLED
    eventually(lambda: panel.cancel_button.disabled)
    assert "cancelled" in panel.runs[0].summary.value


def test_the_magic_passes_its_settings_and_refuses_a_configured_value_out_of_range(
    make_shell, env, caplog
):
    from IPython.core.error import UsageError
    from IPython.core.interactiveshell import InteractiveShell

    shell = make_shell(env)
    shell.run_line_magic("config", "LtxMagics.max_cost = 0.25")
    shell.run_line_magic("config", "LtxMagics.steps = 80")  # %config logs what it refused
    assert "LtxMagics.steps: must be an integer from 1 to 50, got 80" in caplog.text
    assert shell.run_line_magic("config", "LtxMagics.steps") is None  # unchanged
    panel = shell.run_line_magic("ltx", "panel")
    assert panel.control("num_inference_steps").value == 30
    assert panel.max_cost == 0.25
    panel.close()
    shell.run_line_magic("unload_ext", "ltx_jupyter")

    # The same value from ipython_config.py: loading the extension says what to fix.
    InteractiveShell.clear_instance()
    configured = InteractiveShell.instance()
    configured.config.LtxMagics.steps = 80
    with pytest.raises(UsageError, match=r"LtxMagics.steps: .* 1 to 50, got 80.*ipython_config"):
        configured.run_line_magic("load_ext", "ltx_jupyter")


def test_the_panel_notebook_runs_headless_without_the_key(tmp_path, monkeypatch):
    monkeypatch.setenv("FAL_KEY", CANARY)
    monkeypatch.setenv("LTX_HISTORY_FILE", str(tmp_path / "history.jsonl"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("LTX_QUEUE_URL", raising=False)
    notebook = nbformat.read(NOTEBOOKS / "panel.ipynb", as_version=4)
    NotebookClient(notebook, timeout=180, resources={"metadata": {"path": str(tmp_path)}}).execute()

    outputs = [o for cell in notebook.cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    panels = [o for o in outputs if "ltx panel ·" in o.get("data", {}).get("text/plain", "")]
    assert panels and "application/vnd.jupyter.widget-view+json" in panels[0]["data"]
    videos = [o for o in outputs if "<video" in o.get("data", {}).get("text/html", "")]
    assert len(videos) >= 2, "the notebook's scripted runs on two families show their videos"
    endpoints = {v["metadata"]["ltx_jupyter"]["endpoint"] for v in videos}
    assert len(endpoints) >= 2, endpoints
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "%%ltx --endpoint" in printed
    assert CANARY not in json.dumps(notebook)
