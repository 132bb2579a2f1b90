"""%%ltx and %ltx through a real InteractiveShell, against the local server over loopback."""

from __future__ import annotations

import _thread
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from ltx_jupyter import Job, JobStatus

from .shells import eventually, magics_of


def submits(server: Any) -> int:
    return httpx.get(f"{server.url}/_local/stats").json()["by_kind"]["submit"]


def server_state(server: Any, request_id: str) -> dict[str, Any]:
    return httpx.get(f"{server.url}/_local/requests/{request_id}").json()


def test_a_cell_returns_at_once_and_the_view_reaches_the_video(make_shell, local_server):
    shell = make_shell(local_server)
    shell.run_cell_magic("ltx", "--seed 42 --steps 20 -o fox", "A red fox runs through snow")
    job: Job = shell.user_ns["fox"]
    assert not job.done, "the magic must not wait in an interactive session"
    view = magics_of(shell).views[job.local_id]
    eventually(lambda: job.done)
    eventually(lambda: "<video" in view.video_html.value)
    assert job.status == JobStatus.COMPLETED
    assert job.result is not None and job.result.seed == 42
    assert "completed" in view.status_html.value
    assert view.progress.value == 1.0 and view.progress.description == "20/20"
    assert view.cancel_button.layout.display == "none"
    assert "seed 42" in view.video_html.value and job.request_id in view.video_html.value
    assert repr(view).startswith(f"ltx {job.request_id[:8]} · completed")
    lines = [entry.message for entry in job.logs]
    assert [m for m in lines if m.startswith("step ")] == [f"step {i}/20" for i in range(1, 21)]
    assert all(entry.timestamp for entry in job.logs)


def test_log_lines_a_server_sends_without_a_time_get_the_time_they_arrived(make_shell):
    from datetime import datetime, timezone

    from .hostile import HostileServer

    with HostileServer(steps=3) as server:  # its log lines carry no timestamp
        shell = make_shell(server)
        before = datetime.now(timezone.utc)
        shell.run_cell_magic("ltx", "--wait -o job", "a red fox")
        after = datetime.now(timezone.utc)
    job: Job = shell.user_ns["job"]
    assert [entry.message for entry in job.logs][:3] == ["step 1/3", "step 2/3", "step 3/3"]
    stamps = [entry.time for entry in job.logs]
    assert all(stamp is not None and before <= stamp <= after for stamp in stamps)


def test_the_request_id_is_in_the_history_as_soon_as_the_submit_answers(make_shell, server_factory):
    server = server_factory(step_seconds=0.1)
    shell = make_shell(server)
    job = shell.run_line_magic("ltx", "--steps 30 a slow river")
    eventually(lambda: job.request_id)
    history = Path("history.jsonl").read_text()
    assert job.request_id in history and not job.done
    job.cancel()
    eventually(lambda: job.done)


def test_wait_puts_the_video_in_the_cell_as_a_plain_output(make_shell, local_server):
    shell = make_shell(local_server)
    with capture_output() as captured:
        shell.run_cell_magic("ltx", "--wait --seed 5 --steps 4", "waves on a beach")
    bundles = [o.data for o in captured.outputs if "text/html" in o.data]
    video = [b for b in bundles if "<video" in b["text/html"]]
    assert len(video) == 1
    assert "seed 5" in video[0]["text/html"]
    metadata = [o.metadata for o in captured.outputs if o.metadata][-1]["ltx_jupyter"]
    assert metadata["parameters"]["num_inference_steps"] == 4
    assert metadata["endpoint"] == "fal-ai/ltx-video"


def test_the_cancel_button_cancels_the_remote_request(make_shell, server_factory):
    server = server_factory(step_seconds=0.1)
    shell = make_shell(server)
    shell.run_cell_magic("ltx", "--steps 50 -o job", "a very long take")
    job: Job = shell.user_ns["job"]
    view = magics_of(shell).views[job.local_id]
    eventually(lambda: job.status == JobStatus.RUNNING)
    view.cancel_button.click()
    eventually(lambda: job.done)
    assert job.status == JobStatus.CANCELLED
    eventually(lambda: "cancelled" in view.status_html.value)
    state = server_state(server, job.request_id)
    assert state["state"] == "COMPLETED" and "cancel" in state["error"].lower()
    assert state["completed_at"] - state["started_at"] < 4.0  # 50 steps would take 5 s


def test_an_interrupt_while_waiting_cancels_remotely_and_is_raised(make_shell, server_factory):
    server = server_factory(step_seconds=0.1)
    shell = make_shell(server)
    timer = threading.Timer(0.8, _thread.interrupt_main)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        shell.run_cell_magic("ltx", "--wait --steps 50", "interrupted")
    job = magics_of(shell).session.jobs[-1]
    eventually(lambda: job.done)
    assert job.status == JobStatus.CANCELLED
    assert "cancel" in server_state(server, job.request_id)["error"].lower()


def test_one_line_form_returns_the_job_and_out_stores_it(make_shell, local_server):
    shell = make_shell(local_server)
    shell.run_cell("job = %ltx --seed 3 --steps 2 a red fox")
    job = shell.user_ns["job"]
    assert isinstance(job, Job) and job.input["prompt"] == "a red fox"
    assert job.input["seed"] == 3
    job.wait(20)
    assert job.result is not None


def test_prompt_is_literal_and_rendered_escaped(make_shell, local_server):
    shell = make_shell(local_server)
    prompt = "A {cat} says \"hi\" and 'bye' <script>alert(1)</script> $HOME"
    shell.run_cell_magic("ltx", "-o job --steps 2", prompt + "\n")
    job = shell.user_ns["job"]
    assert job.input["prompt"] == prompt
    job.wait(20)
    with capture_output() as captured:
        shell.run_line_magic("ltx", "jobs")
    html = captured.outputs[0].data["text/html"]
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert job.request_id in captured.outputs[0].data["text/plain"]


def test_negative_option_keeps_spaces_without_quotes(make_shell, local_server):
    shell = make_shell(local_server)
    shell.run_cell_magic("ltx", '-o job --negative "blurry, low quality" --steps 2', "x")
    assert shell.user_ns["job"].input["negative_prompt"] == "blurry, low quality"


@pytest.mark.parametrize(
    ("line", "cell", "message"),
    [
        ("--sed 3", "x", "unrecognized arguments"),
        ("--steps many", "x", "--steps"),
        ("--steps 0", "x", "--steps (num_inference_steps): must be an integer from 1 to 50"),
        ("--guidance 11", "x", "--guidance (guidance_scale)"),
        ('--negative "open', "x", "quotes"),
        ("--seed 1", "   \n  ", "prompt is empty"),
        ("--priority high", "x", "--priority"),
        ("--param num_frames", "x", "NAME=VALUE"),
        ("--image /no/such/file.png", "x", "--image (image_url)"),
        ("-o 2bad", "x", "variable name"),
        ("--webhook ftp://x", "x", "--webhook"),
    ],
)
def test_usage_errors_are_one_line_and_send_nothing(make_shell, local_server, line, cell, message):
    shell = make_shell(local_server)
    before = submits(local_server)
    with pytest.raises(UsageError) as caught:
        shell.run_cell_magic("ltx", line, cell)
    text = str(caught.value)
    assert message in text and "\n" not in text
    assert submits(local_server) == before


def test_param_values_are_json_typed(make_shell, local_server):
    shell = make_shell(local_server)
    shell.run_cell_magic(
        "ltx",
        "-o job --endpoint ltxv-13b-098-distilled --param first_pass_num_inference_steps=2 "
        "--param second_pass_num_inference_steps=2 --frames 17 --param expand_prompt=true "
        '--param loras=\'[{"path": "a/b", "scale": 0.5}]\'',
        "x",
    )
    job = shell.user_ns["job"]
    assert job.input["num_frames"] == 17
    assert job.input["expand_prompt"] is True
    assert job.input["loras"] == [{"path": "a/b", "scale": 0.5}]
    job.wait(20)
    # 0.9.8's output is a File (no frame count): the server's log says what it drew.
    assert job.result is not None and job.result.prompt is not None
    assert job.result.prompt.startswith("x ")  # expand_prompt=true: the prompt grew
    assert "encoding 17 frames" in [entry.message for entry in job.logs]


def test_a_field_the_endpoint_lacks_is_refused_naming_the_closest(make_shell, local_server):
    shell = make_shell(local_server)
    jobs = magics_of(shell).session.jobs
    with pytest.raises(UsageError, match=r"--param num_frame: .*did you mean 'num_frames'"):
        shell.run_cell_magic("ltx", "--endpoint ltx-2-19b/text-to-video --param num_frame=9", "x")
    with pytest.raises(UsageError, match=r"--duration: fal-ai/ltx-video has no duration field"):
        shell.run_cell_magic("ltx", "--duration 8", "x")
    assert jobs == []  # nothing started, nothing sent
    shell.run_line_magic("config", "LtxMagics.strict_fields = False")
    with capture_output() as captured:
        shell.run_cell_magic("ltx", "--no-wait --steps 2 --param num_frame=9", "x")
    assert "ltx: note: num_frame: is not a field of fal-ai/ltx-video" in captured.stderr
    assert magics_of(shell).session.jobs[-1].input["num_frame"] == 9


def test_config_traits_set_defaults(make_shell, local_server, tmp_path):
    shell = make_shell(local_server, steps=7, guidance=6.5)
    shell.run_line_magic("config", "LtxMagics.negative_prompt = 'grainy'")
    shell.run_line_magic("config", f"LtxMagics.save_dir = {str(tmp_path / 'videos')!r}")
    with capture_output() as listed:
        shell.run_line_magic("config", "LtxMagics")
    assert "LtxMagics.steps" in listed.stdout and "LtxMagics.save_dir" in listed.stdout
    job = shell.run_line_magic("ltx", "a lake")
    assert job.input["num_inference_steps"] == 7
    assert job.input["guidance_scale"] == 6.5
    assert job.input["negative_prompt"] == "grainy"
    job.wait(20)
    eventually(lambda: job.saved_path)
    assert job.saved_path.parent == tmp_path / "videos"
    assert job.saved_path.read_bytes()[4:8] == b"ftyp"
    data, metadata = shell.display_formatter.format(job)
    assert f'src="videos/{job.saved_path.name}"' in data["text/html"]
    assert metadata["ltx_jupyter"]["path"] == "videos/" + job.saved_path.name


def test_save_option_shows_the_video_by_relative_path(make_shell, local_server):
    shell = make_shell(local_server)
    with capture_output() as captured:
        shell.run_cell_magic("ltx", "--wait --save clips --steps 2", "x")
    html = next(o.data["text/html"] for o in captured.outputs if "text/html" in o.data)
    assert 'src="clips/ltx-' in html
    assert len(list(Path("clips").glob("*.mp4"))) == 1


def test_embed_puts_the_bytes_in_the_output_only_when_asked(make_shell, local_server):
    shell = make_shell(local_server)
    with capture_output() as captured:
        shell.run_cell_magic("ltx", "--wait --embed --steps 2", "x")
    html = next(o.data["text/html"] for o in captured.outputs if "text/html" in o.data)
    assert 'src="data:video/mp4;base64,' in html


def test_show_cancel_and_jobs_subcommands(make_shell, server_factory):
    server = server_factory(step_seconds=0.05, concurrency=1)
    shell = make_shell(server)
    done = shell.run_line_magic("ltx", "--steps 2 first")
    done.wait(20)
    with capture_output() as shown:
        shell.run_line_magic("ltx", f"show {done.request_id[:8]}")
    assert "<video" in shown.outputs[0].data["text/html"]

    slow = shell.run_line_magic("ltx", "--steps 50 second")
    queued = shell.run_line_magic("ltx", "--steps 50 third")
    eventually(lambda: slow.request_id and queued.request_id)
    with capture_output() as cancelled_one:
        shell.run_line_magic("ltx", f"cancel {queued.request_id}")
    assert "cancellation requested" in cancelled_one.stdout
    with capture_output() as cancelled_all:
        shell.run_line_magic("ltx", "cancel all")
    assert "1 job" in cancelled_all.stdout
    eventually(lambda: slow.done and queued.done)
    assert slow.status == queued.status == JobStatus.CANCELLED

    with capture_output() as table:
        shell.run_line_magic("ltx", "jobs")
    text = table.outputs[0].data["text/plain"]
    for job in (done, slow, queued):
        assert job.request_id in text
    assert "completed" in text and "cancelled" in text
    with pytest.raises(UsageError, match="no job"):
        shell.run_line_magic("ltx", "show nothing-like-this")


def test_resume_after_a_restart_finishes_the_request(make_shell, server_factory):
    server = server_factory(step_seconds=0.05)
    shell = make_shell(server)
    job = shell.run_line_magic("ltx", "--steps 30 resumed later")
    request_id = eventually(lambda: job.request_id)
    # A kernel restart: the extension goes away without cancelling anything remote.
    shell.run_line_magic("unload_ext", "ltx_jupyter")
    assert not [t for t in threading.enumerate() if t.name == "ltx-jupyter-runner"]
    assert job.status == JobStatus.DETACHED
    shell.run_line_magic("load_ext", "ltx_jupyter")
    resumed = shell.run_line_magic("ltx", f"resume {request_id[:10]}")
    assert resumed.request_id == request_id
    resumed.wait(20)
    assert resumed.result is not None
    steps = [e.message for e in resumed.logs if e.message.startswith("step ")]
    assert steps == [f"step {i}/30" for i in range(1, 31)]


def test_reload_ext_leaves_no_thread_behind(make_shell, local_server):
    shell = make_shell(local_server)
    shell.run_line_magic("ltx", "--steps 2 x").wait(20)
    shell.run_line_magic("reload_ext", "ltx_jupyter")
    shell.run_line_magic("unload_ext", "ltx_jupyter")
    assert not [t for t in threading.enumerate() if t.name == "ltx-jupyter-runner"]
    shell.run_line_magic("load_ext", "ltx_jupyter")
    assert shell.run_line_magic("ltx", "--steps 2 again").wait(20) is not None


def test_missing_key_for_fal_is_a_usage_error(make_shell, local_server, monkeypatch):
    shell = make_shell(local_server)
    shell.run_line_magic("config", "LtxMagics.queue_url = 'https://queue.fal.run'")
    with pytest.raises(UsageError, match="FAL_KEY"):
        shell.run_cell_magic("ltx", "", "x")


def test_await_job_in_an_async_cell(make_shell, local_server):
    shell = make_shell(local_server)
    shell.run_cell("job = %ltx --steps 2 --seed 9 async fox")
    result = shell.run_cell("result = await job")
    assert result.success, result.error_in_exec
    assert shell.user_ns["result"].seed == 9


def test_a_users_nest_asyncio_breaks_nothing(local_server, tmp_path):
    script = textwrap.dedent(
        f"""
        import asyncio, os
        import nest_asyncio
        nest_asyncio.apply()
        os.environ["LTX_QUEUE_URL"] = {local_server.url!r}
        os.environ["LTX_HISTORY_FILE"] = {str(tmp_path / "h.jsonl")!r}
        from IPython.core.interactiveshell import InteractiveShell
        shell = InteractiveShell.instance()
        shell.run_line_magic("load_ext", "ltx_jupyter")
        job = shell.run_line_magic("ltx", "--steps 3 --seed 1 nested")
        asyncio.get_event_loop().run_until_complete(asyncio.sleep(0.01))
        print("waited", job.wait(30).seed)
        shell.user_ns["job"] = job
        shell.run_cell("r = await job")
        print("awaited", shell.user_ns["r"].seed)
        shell.run_line_magic("ltx", "--steps 3 --seed 2 --wait waited")
        shell.run_line_magic("unload_ext", "ltx_jupyter")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "waited 1" in out.stdout and "awaited 1" in out.stdout
    assert "completed" in out.stdout


def test_image_option_runs_image_to_video_from_a_local_file(make_shell, local_server, tmp_path):
    import base64

    frame = tmp_path / "frame.png"
    frame.write_bytes(
        base64.b64decode(
            "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
        )
    )
    shell = make_shell(local_server)
    shell.run_cell_magic("ltx", f"-o job --steps 2 --image {frame}", "the frame comes alive")
    job = shell.user_ns["job"]
    assert job.endpoint == "fal-ai/ltx-video/image-to-video"
    job.wait(20)
    assert job.result is not None
    # The server validates image_url as a URL or data: URI (it cannot read our files), so a
    # finished run shows the local file was turned into one before the submit.
    state = server_state(local_server, job.request_id)
    assert state["endpoint"] == "fal-ai/ltx-video/image-to-video"


def test_the_magic_line_is_not_expanded(make_shell, local_server):
    shell = make_shell(local_server)
    shell.user_ns["x"] = "EXPANDED"
    shell.run_cell_magic("ltx", '-o job --steps 2 --negative "no {x} and $x"', "x")
    assert shell.user_ns["job"].input["negative_prompt"] == "no {x} and $x"
    job = shell.run_line_magic("ltx", "--steps 2 a {x} fox costs $5")
    assert job.input["prompt"] == "a {x} fox costs $5"


def test_unloading_closes_every_widget_of_a_job_view(make_shell, local_server):
    shell = make_shell(local_server)
    shell.run_cell_magic("ltx", "--steps 2 -o job", "a short take")
    job: Job = shell.user_ns["job"]
    view = magics_of(shell).views[job.local_id]
    job.wait(20)
    parts = [view, *view.children, *view.button_row.children]
    assert all(part.comm is not None for part in parts)
    shell.run_line_magic("unload_ext", "ltx_jupyter")
    assert [part for part in parts if part.comm is not None] == []


def test_jobs_leave_the_users_seeded_random_sequence_alone(make_shell, local_server):
    # A notebook that seeds `random` for its own draws gets the same numbers whether or not a
    # job ran (here with no seed, so the server in this process draws one) or retried.
    import random

    from ltx_jupyter._retries import RetryPolicy

    shell = make_shell(local_server)
    random.seed(1234)
    expected = [random.random() for _ in range(3)]
    random.seed(1234)
    shell.run_cell_magic("ltx", "--wait --steps 2 -o job", "a red fox")
    assert [RetryPolicy().backoff(n) for n in (1, 2, 3)]
    assert shell.user_ns["job"].result.seed is not None
    assert [random.random() for _ in range(3)] == expected
