"""The parameter panel as a user drives it: widgets in plain pytest, jobs against the local
server over loopback, "copy as %%ltx" through a real InteractiveShell, and the panel notebook
executed headlessly."""

from __future__ import annotations

import base64
import json
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import nbformat
import pytest
from ipywidgets.widgets.widget import _instances
from nbclient import NotebookClient

from ltx_jupyter import Job, JobStatus
from ltx_jupyter._panel import Panel
from ltx_jupyter._parsing import magic_cell
from ltx_jupyter._schema import IMAGE_TO_VIDEO, TEXT_TO_VIDEO, lookup_schema
from tests.shells import eventually, magics_of
from tests.test_magics import make_shell, submits

__all__ = ["make_shell"]  # a fixture, used by name

DEFAULT_NEGATIVE_PROMPT = lookup_schema(TEXT_TO_VIDEO).schema.defaults()["negative_prompt"]

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
CANARY = "fal-canary-key-5a6b7c8d9e0f"
WARNING_COLOUR = "#d35400"
ERROR_COLOUR = "#c0392b"


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


def upload_value(name: str, content: bytes, mime: str) -> tuple[dict[str, Any], ...]:
    """A FileUpload value as ipywidgets 8 delivers it from the browser (deserialised)."""
    return (
        {
            "name": name,
            "type": mime,
            "size": len(content),
            "content": memoryview(content),
            "last_modified": datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc),
        },
    )


def finished(job: Job, timeout: float = 30.0) -> Job:
    eventually(lambda: job.done, timeout)
    return job


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, local_server: Any) -> Any:
    """The test's own history file and working folder, jobs sent to the local server."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LTX_HISTORY_FILE", str(tmp_path / "history.jsonl"))
    monkeypatch.setenv("LTX_QUEUE_URL", local_server.url)
    for name in ("FAL_KEY", "FAL_KEY_ID", "FAL_KEY_SECRET"):
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


def test_generate_returns_at_once_and_each_job_view_reaches_the_video(make_panel, env, monkeypatch):
    monkeypatch.setenv("FAL_KEY", CANARY)  # present, but the panel must never show it
    panel = make_panel()
    panel.prompt.value = "A red fox trots across a snowy meadow at dawn"
    panel.random_seed.value = False
    panel.seed.value = 7
    panel.steps.value = 20
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
    # The listeners update the widgets from the runner thread, right after the job's state.
    eventually(lambda: all("<video" in view.video_html.value for view in views))
    eventually(lambda: all("<video" in run.thumbnail.value for run in panel.runs))
    assert 'width="192"' in panel.runs[0].thumbnail.value
    assert "seed 7 · 20 steps · guidance 3" in panel.runs[0].summary.value
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


def test_invalid_input_disables_generate_and_marks_the_field_with_the_reason(make_panel, env):
    panel = make_panel()
    assert panel.generate_button.disabled
    assert "write a prompt" in panel.prompt_error.value
    panel.prompt.value = "   \n "
    assert panel.generate_button.disabled

    panel.prompt.value = "The frame comes alive"
    assert not panel.generate_button.disabled
    assert panel.prompt_error.value == ""

    panel.endpoint_choice.value = IMAGE_TO_VIDEO
    assert panel.image_box.layout.display is None
    assert panel.generate_button.disabled
    assert "image_url: is required" in panel.image_error.value
    assert ERROR_COLOUR in panel.image_error.value

    panel.image_url.value = "ftp://example.com/frame.png"
    assert panel.generate_button.disabled
    assert "must be an http(s) URL" in panel.image_error.value

    panel.image_upload.value = upload_value("notes.txt", b"not a picture", "text/plain")
    assert panel.generate_button.disabled
    assert "notes.txt is not an image (text/plain)" in panel.image_error.value
    assert panel.image_url.value == "", "an upload replaces the URL"

    # A click on a disabled button (a stale frontend) sends nothing either.
    before = submits(env)
    panel.generate_button.click()
    assert panel.runs == [] and submits(env) == before

    panel.image_url.value = "https://example.com/frame.png"
    assert not panel.generate_button.disabled
    assert panel.image_error.value == ""
    assert '<img src="https://example.com/frame.png"' in panel.image_preview.value

    panel.endpoint_choice.value = TEXT_TO_VIDEO
    assert panel.image_box.layout.display == "none"
    assert "image_url" not in panel.arguments()


def test_the_word_count_follows_the_prompt_and_warns_past_the_guide(make_panel):
    panel = make_panel()
    panel.prompt.value = "A lighthouse in a storm"
    assert "5 / 200 words" in panel.word_count.value
    assert WARNING_COLOUR not in panel.word_count.value

    panel.prompt.value = " ".join(["wave"] * 201)
    assert "201 / 200 words" in panel.word_count.value
    assert WARNING_COLOUR in panel.word_count.value
    assert not panel.generate_button.disabled, "the guide warns, it never blocks"


def test_presets_set_the_sliders_from_the_parameter_guide(make_panel):
    panel = make_panel()
    assert (panel.steps.value, panel.guidance.value) == (30, 3.0)
    assert (panel.steps.min, panel.steps.max, panel.guidance.min, panel.guidance.max) == (
        1,
        50,
        0.0,
        10.0,
    )
    expected = {"fast": (25, 3.0), "quality": (40, 3.0), "creative": (40, 4.0)}
    expected["faithful"] = (40, 6.0)
    for name, values in expected.items():
        panel.preset_buttons[name].click()
        assert (panel.steps.value, panel.guidance.value) == values, name


def test_the_negative_prompt_is_prefilled_and_resets_to_the_default(make_panel):
    panel = make_panel()
    assert panel.negative_prompt.value == DEFAULT_NEGATIVE_PROMPT
    panel.negative_prompt.value = "blurry"
    panel.reset_negative_button.click()
    assert panel.negative_prompt.value == DEFAULT_NEGATIVE_PROMPT


def test_reusing_a_seed_and_loading_from_history_restore_the_run_exactly(make_panel):
    panel = make_panel()
    assert panel.reuse_seed_button.disabled
    panel.prompt.value = "A paper boat drifts down a rain gutter"
    panel.negative_prompt.value = "blurry, dark"
    panel.steps.value = 12
    panel.guidance.value = 6.5
    first = finished(panel.generate())
    assert "seed" not in first.input, "a random seed is left to the endpoint"

    panel.endpoint_choice.value = IMAGE_TO_VIDEO
    panel.prompt.value = "Something else entirely"
    panel.image_url.value = "https://example.com/x.png"
    panel.random_seed.value = False
    panel.seed.value = 99
    panel.steps.value = 5
    panel.endpoint_choice.value = TEXT_TO_VIDEO
    second = finished(panel.generate())
    eventually(lambda: not panel.reuse_seed_button.disabled)

    # Without a selection, "reuse seed" takes the last finished run's seed.
    panel.random_seed.value = True
    panel.reuse_seed_button.click()
    assert (panel.random_seed.value, panel.seed.value) == (False, 99)

    first_run = panel.runs[0]
    first_run.load_button.click()
    assert panel.selected_run is first_run
    assert panel.endpoint == TEXT_TO_VIDEO
    assert panel.arguments() == first.input
    assert panel.random_seed.value is True
    assert panel.image_url.value == ""

    # With a selection, "reuse seed" pins the seed the selected run was made with.
    panel.reuse_seed_button.click()
    assert panel.arguments() == {**first.input, "seed": first.result.seed}
    again = finished(panel.generate())
    assert again.result.seed == first.result.seed
    assert panel.selected_run is None, "a new run clears the selection"

    panel.runs[1].load_button.click()
    assert panel.arguments() == second.input


def test_copy_as_ltx_gives_a_cell_that_submits_the_same_input(make_shell, env):
    shell = make_shell(env, steps=44, negative_prompt="configured negative")
    panel = shell.run_line_magic("ltx", "panel")
    assert (panel.steps.value, panel.negative_prompt.value) == (44, "configured negative")
    panel.prompt.value = (
        "A man says 'it's {fine}' at $HOME; the camera pans\n"
        '  left with "quotes" and a backslash \\n\n'
    )
    # IPython expands {expressions} and $names on a magic's line: the copy must not let it.
    shell.user_ns.update(fine="EXPANDED", HOME="EXPANDED")
    panel.negative_prompt.value = "-blurry {fine} $HOME,\nsmeared; $(rm -rf /) `x`"
    panel.random_seed.value = False
    panel.seed.value = 123456789
    panel.guidance.value = 4.7
    panel.steps.value = 7
    job = finished(panel.generate())
    assert job.session is magics_of(shell).session, "the panel shares the magic's session"

    panel.runs[0].copy_button.click()
    cell = panel.last_copied
    assert cell is not None and shell.rl_next_input == cell
    assert cell.startswith("%%ltx --endpoint fal-ai/ltx-video ")
    assert cell.split("\n", 1)[1] == job.input["prompt"]
    assert panel.copied_cell.value == cell and panel.copied_cell.layout.display is None

    session = magics_of(shell).session
    jobs_before = len(session.jobs)
    result = shell.run_cell(cell)
    assert result.success, result.error_in_exec or result.error_before_exec
    assert len(session.jobs) == jobs_before + 1
    copied = finished(session.jobs[-1])
    assert copied.endpoint == job.endpoint
    assert copied.input == job.input
    assert copied.result.seed == job.result.seed


def test_magic_cell_uses_param_for_fields_without_an_option():
    cell = magic_cell(
        TEXT_TO_VIDEO,
        {"prompt": "a fox", "num_frames": 121, "resolution": "720p", "guidance_scale": 3},
    )
    assert cell == (
        "%%ltx --endpoint fal-ai/ltx-video --param num_frames=121 "
        "--param 'resolution=\"720p\"' --param guidance_scale=3\na fox"
    )


def test_image_to_video_from_an_uploaded_png_runs_and_copies_exactly(make_shell, env):
    shell = make_shell(env)
    panel = shell.run_line_magic("ltx", "panel")
    picture = png_bytes()
    data_uri = "data:image/png;base64," + base64.b64encode(picture).decode("ascii")
    panel.endpoint_choice.value = IMAGE_TO_VIDEO
    panel.image_upload.value = upload_value("frame.png", picture, "image/png")
    assert f'<img src="{data_uri}" alt="frame.png"' in panel.image_preview.value
    panel.prompt.value = "The frame comes alive"
    panel.negative_prompt.value = "-dark, 'quoted' frames"
    panel.steps.value = 3
    assert not panel.generate_button.disabled

    job = finished(panel.generate())
    assert job.status == JobStatus.COMPLETED, job.error
    assert job.endpoint == IMAGE_TO_VIDEO
    assert job.input["image_url"] == data_uri

    panel.endpoint_choice.value = TEXT_TO_VIDEO
    panel.runs[0].load_button.click()
    assert panel.endpoint == IMAGE_TO_VIDEO and panel.arguments() == job.input

    session = magics_of(shell).session
    assert shell.run_cell(panel.copy_as_magic(panel.runs[0])).success
    copied = finished(session.jobs[-1])
    assert copied.input == job.input and copied.status == JobStatus.COMPLETED


def test_rendered_text_is_escaped(make_panel):
    hostile = "<img src=x onerror=alert(1)>"
    panel = make_panel()
    panel.prompt.value = hostile
    panel.steps.value = 2
    job = finished(panel.generate())
    run = panel.runs[0]
    eventually(lambda: "<video" in run.thumbnail.value)
    assert "&lt;img src=x onerror=alert(1)&gt;" in run.summary.value
    assert hostile not in run.summary.value
    assert hostile not in run.view.video_html.value
    assert job.input["prompt"] == hostile

    panel.endpoint_choice.value = IMAGE_TO_VIDEO
    panel.image_url.value = 'https://example.com/a.png" onerror="alert(1)'
    assert '" onerror="' not in panel.image_preview.value
    assert "&quot; onerror=&quot;alert(1)" in panel.image_preview.value
    panel.image_url.value = "javascript:alert(1)"
    assert "<img" not in panel.image_preview.value
    panel.image_url.value = "data:text/html;base64,PHNjcmlwdD4="
    assert "<img" not in panel.image_preview.value


def test_cancel_stops_the_running_jobs(make_panel, server_factory, monkeypatch):
    slow = server_factory(step_seconds=0.1)
    monkeypatch.setenv("LTX_QUEUE_URL", slow.url)
    panel = make_panel()
    assert panel.cancel_button.disabled
    panel.prompt.value = "A very long shot"
    panel.steps.value = 50
    job = panel.generate()
    eventually(lambda: job.status == JobStatus.RUNNING and not panel.cancel_button.disabled)
    panel.cancel_button.click()
    finished(job)
    assert job.status == JobStatus.CANCELLED
    eventually(lambda: panel.cancel_button.disabled)
    assert "cancelled" in panel.runs[0].summary.value


def test_a_configured_value_out_of_range_is_refused_when_set(make_shell, env, caplog):
    from IPython.core.error import UsageError
    from IPython.core.interactiveshell import InteractiveShell

    shell = make_shell(env)
    shell.run_line_magic("config", "LtxMagics.steps = 80")  # %config logs what it refused
    assert "LtxMagics.steps: must be an integer from 1 to 50, got 80" in caplog.text
    assert shell.run_line_magic("config", "LtxMagics.steps") is None  # unchanged
    panel = shell.run_line_magic("ltx", "panel")
    assert panel.steps.value == 30
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
    monkeypatch.delenv("LTX_QUEUE_URL", raising=False)
    notebook = nbformat.read(NOTEBOOKS / "panel.ipynb", as_version=4)
    NotebookClient(notebook, timeout=180, resources={"metadata": {"path": str(tmp_path)}}).execute()

    outputs = [o for cell in notebook.cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    panels = [o for o in outputs if "ltx panel ·" in o.get("data", {}).get("text/plain", "")]
    assert panels and "application/vnd.jupyter.widget-view+json" in panels[0]["data"]
    videos = [o for o in outputs if "<video" in o.get("data", {}).get("text/html", "")]
    assert videos, "the notebook's scripted run shows its video"
    assert CANARY not in json.dumps(notebook)
