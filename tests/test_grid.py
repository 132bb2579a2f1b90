"""The comparison grid: the live widget's state and its Cancel buttons, the plain HTML grid a
headless run keeps (nbclient), escaping and safe sources, and ``%ltx compare``'s table."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from nbclient import NotebookClient

from ltx_jupyter import JobStatus
from ltx_jupyter._compare import CompareView
from ltx_jupyter._grid import VideoGrid, sweep_grid, sweep_html
from ltx_jupyter._history import HistoryStore
from ltx_jupyter._sweeps import Sweep

from .shells import eventually, magics_of

STATIC = Path(__file__).resolve().parent.parent / "ltx_jupyter" / "static"


@pytest.fixture
def make_shell(
    make_shell: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Any]:
    """The suite's ``make_shell``, with caches of the test's own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return make_shell


def run_sweep(shell: InteractiveShell, line: str, prompt: str = "x") -> Sweep:
    shell.run_cell_magic("ltx", f"{line} -o s", prompt)
    return shell.user_ns["s"]  # type: ignore[no-any-return]


def test_the_grid_is_an_anywidget_with_its_front_end_shipped_in_the_package(
    make_shell, local_server
):
    shell = make_shell(local_server)
    sweep = run_sweep(shell, "--sweep guidance=3,5,7 --sweep seed=1,2 --steps 2")
    grid = sweep_grid(sweep)
    state = grid.get_state()
    assert state["_esm"] == (STATIC / "sync_player.js").read_text()
    assert "export default { render }" in state["_esm"]
    assert state["_css"] == (STATIC / "sync_player.css").read_text()
    assert state["row_axis"] == "guidance" and state["col_axis"] == "seed"
    assert state["row_labels"] == ["3.0", "5.0", "7.0"] and state["col_labels"] == ["1", "2"]
    assert [(c["row"], c["col"]) for c in state["cells"]] == [
        (r, c) for r in range(3) for c in range(2)
    ]
    assert state["cells"][3]["label"] == "guidance = 5.0 · seed = 2"
    sweep.wait(60)
    grid.refresh()
    assert [s[0] for s in grid.states] == ["completed"] * 6
    assert all(m["src"].startswith(local_server.url) for m in grid.media)
    assert "seed 2 · 2 steps · guidance 5" in grid.media[3]["caption"]
    assert not grid.cancellable
    assert "6 completed" in grid.title
    grid.close()


def test_a_third_axis_makes_tabs(make_shell, local_server):
    shell = make_shell(local_server)
    text_form = "--sweep seed=1,2 --sweep steps=2,3 --sweep guidance=3,4 --dry-run"
    with capture_output():
        shell.run_cell_magic("ltx", text_form, "x")
    sweep = run_sweep(shell, "--sweep seed=1,2 --sweep steps=2,3 --sweep guidance=3,4")
    grid = sweep_grid(sweep)
    assert grid.tab_axis == "guidance" and grid.tab_labels == ["3.0", "4.0"]
    assert {c["tab"] for c in grid.cells} == {0, 1}
    sweep.wait(60)
    html = sweep_html(sweep).html
    assert html.count("<table") == 2 and "<h4>guidance = 3.0</h4>" in html
    assert html.count("<video") == 8
    grid.close()


def test_the_grid_follows_its_jobs_and_its_cancel_buttons_cancel(make_shell, server_factory):
    server = server_factory(step_seconds=0.1, concurrency=8)
    shell = make_shell(server, max_concurrent=2)
    sweep = run_sweep(shell, "--sweep seed=1,2,3 --steps 40")
    grid = magics_of(shell).grids[-1]
    assert isinstance(grid, VideoGrid) and grid.sources[0].job is sweep[1]
    eventually(lambda: [s[0] for s in grid.states] == ["running", "running", "waiting"])
    assert grid.cancellable and grid.states[0][3] is True
    # The front end's Cancel of cell 0, as the browser sends it.
    grid._handle_custom_msg({"event": "cancel", "cell": 0}, [])
    eventually(lambda: grid.states[0][0] == "cancelled")
    assert grid.media[0]["error"] == "cancelled" and grid.states[0][3] is False
    eventually(lambda: grid.states[2][0] == "running")  # its slot went to the waiting one
    grid._handle_custom_msg({"event": "cancel_all"}, [])
    eventually(lambda: sweep.done)
    eventually(lambda: not grid.cancellable)
    assert [s[0] for s in grid.states] == ["cancelled"] * 3
    # Updates are coalesced: a handful of sends for three 40-step jobs.
    assert grid.flushes < 40
    request_id = sweep[2].request_id
    assert "cancel" in httpx.get(f"{server.url}/_local/requests/{request_id}").json()["error"]


def test_a_failed_cell_shows_its_failure_in_place(make_shell, server_factory):
    server = server_factory(step_seconds=0.1, concurrency=4)
    shell = make_shell(server)
    # A 40-step job cannot finish within the client's 2 s deadline; a 2-step one does.
    sweep = run_sweep(shell, "--sweep steps=2,40 --timeout 2")
    sweep.wait(60)
    assert sweep[2].status == JobStatus.COMPLETED and sweep[40].status == JobStatus.FAILED
    grid = sweep_grid(sweep)
    assert grid.states[1][0] == "failed" and "No result within 2 s" in grid.media[1]["error"]
    assert grid.media[1]["src"] == "" and grid.media[0]["src"] and not grid.media[0]["error"]
    html = sweep_html(sweep).html
    assert html.count("<video") == 1 and "No result within 2 s" in html
    assert [r["status"] for r in sweep.records()] == ["completed", "failed"]
    grid.close()


def test_the_headless_grid_is_a_plain_html_table_of_labelled_videos(
    tmp_path, monkeypatch, local_server
):
    monkeypatch.setenv("LTX_QUEUE_URL", local_server.url)
    monkeypatch.setenv("LTX_HISTORY_FILE", str(tmp_path / "history.jsonl"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("FAL_KEY", raising=False)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("%load_ext ltx_jupyter"),
        nbformat.v4.new_code_cell(
            "%%ltx --steps 2 --sweep seed=1,2 --sweep 'negative_prompt=\"<i>dark</i>\",plain'\n"
            "A <b>bold</b> heron"
        ),
    ]
    NotebookClient(notebook, timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = notebook.cells[1].outputs
    assert not [o for o in outputs if o.output_type == "error"], outputs
    grids = [o for o in outputs if "<table" in o.get("data", {}).get("text/html", "")]
    assert len(grids) == 1
    data = grids[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" not in data
    html = data["text/html"]
    assert html.count("<video") == 4 and html.count('src="' + local_server.url) == 4
    assert "<th>seed \\ negative_prompt</th>" in html
    assert "&lt;i&gt;dark&lt;/i&gt;" in html and "<i>dark</i>" not in html
    assert "<figcaption>seed = 2 · negative_prompt = &lt;i&gt;dark&lt;/i&gt;" in html
    assert "4 completed" in data["text/plain"]


def test_a_history_run_with_an_unsafe_video_url_gets_no_video(make_shell, local_server, tmp_path):
    shell = make_shell(local_server)
    history = HistoryStore(tmp_path / "history.jsonl")
    for request_id, url in (("aaaa-1", "javascript:alert(1)"), ("bbbb-2", "https://x.test/v.mp4")):
        history.record_submit(request_id, "fal-ai/ltx-video", {"prompt": "p"}, local_server.url)
        history.record_update(request_id, status="completed", video_url=url, seed=1)
    with capture_output() as captured:
        shell.run_line_magic("ltx", "compare aaaa bbbb")  # no kernel: the plain form
    html = captured.outputs[-1].data["text/html"]
    assert "javascript:" not in html
    assert html.count("<video") == 1 and 'src="https://x.test/v.mp4"' in html
    assert "not one a browser may play here" in html


def test_compare_highlights_the_fields_that_differ(make_shell, local_server, tmp_path):
    shell = make_shell(local_server)
    sweep = run_sweep(shell, "--sweep guidance=3,6 --seed 4 --steps 2", "a <script>x</script>")
    sweep.wait(60)
    first, second = sweep[3.0], sweep[6.0]
    # An earlier run, only in the history, joins the two of this session.
    history = HistoryStore(tmp_path / "history.jsonl")
    history.record_submit(
        "older-run-1", "fal-ai/ltx-video", {"prompt": "another", "seed": 4}, local_server.url
    )
    with capture_output() as captured:
        shell.run_line_magic("ltx", f"compare {first.request_id[:8]} {second.request_id} older-run")
    html = captured.outputs[-1].data["text/html"]
    text = captured.outputs[-1].data["text/plain"]
    assert "differing: prompt, num_inference_steps, guidance_scale" in text
    rows = {
        line.split(":", 1)[0].strip("≠ "): line.startswith("≠") for line in text.splitlines()[1:]
    }
    assert rows["guidance_scale"] and rows["prompt"] and rows["num_inference_steps"]
    assert not rows["seed"] and not rows["endpoint"] and not rows["negative_prompt"]
    assert '<tr class="ltx-differs"' in html and "<th>guidance_scale ≠</th>" in html
    assert "<th>seed</th>" in html  # the same everywhere: no mark
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert html.count("<video") == 2  # the history-only run has no video
    with pytest.raises(UsageError, match="two or more"):
        shell.run_line_magic("ltx", f"compare {first.request_id}")
    with pytest.raises(UsageError, match="no job 'nope'"):
        shell.run_line_magic("ltx", f"compare {first.request_id} nope")


def test_compare_with_a_kernel_is_the_synchronized_player(make_shell, local_server):
    shell = make_shell(local_server)
    sweep = run_sweep(shell, "--sweep seed=1,2 --steps 2")
    sweep.wait(60)
    magics = magics_of(shell)
    shell.kernel = object()  # as in a kernel where a person works (stdin allowed)
    try:
        view = shell.run_line_magic("ltx", f"compare {sweep[1].request_id} {sweep[2].request_id}")
    finally:
        del shell.kernel
    assert isinstance(view, CompareView) and view in magics.grids
    assert view.grid.col_labels == [sweep[1].request_id[:8], sweep[2].request_id[:8]]
    assert [m["src"] for m in view.grid.media] == [sweep[1].result.url, sweep[2].result.url]
    assert "seed ≠" in view.table.value
    assert json.loads(json.dumps(view.grid.get_state()["cells"]))  # plain JSON state
