"""Kernel restarts, for real: a kernel (jupyter_client) with one job done, one running and one
queued is restarted (``restart_kernel``) or killed (SIGKILL) and started again. In the new
kernel ``%ltx jobs`` lists all three with the status the server gives now (the journal's last
line still says "queued" for two of them), marks the unfinished ones with the command that
resumes them, and ``%ltx resume`` brings back the live view and then the video. Nothing is
submitted twice. A status that cannot be read in a bounded time shows as "unknown"."""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from IPython.utils.capture import capture_output

from ltx_jupyter import _jobs
from ltx_jupyter._history import HistoryStore
from ltx_jupyter._schema import TEXT_TO_VIDEO as T2V

from .faultproxy import FaultProxy
from .kernels import drain, execute, printed, state_value
from .shells import eventually


def server_state(server: Any, request_id: str) -> dict[str, Any]:
    return dict(httpx.get(f"{server.url}/_local/requests/{request_id}", timeout=5).json())


def shown(messages: list[dict[str, Any]], mime: str) -> str:
    return "".join(
        m["content"]["data"].get(mime, "")
        for m in messages
        if m["msg_type"] in ("display_data", "execute_result")
    )


@pytest.mark.timeout(240)
@pytest.mark.parametrize("how", ["restart_kernel", "killed"])
def test_after_a_kernel_restart_jobs_lists_the_servers_status_and_resume_brings_the_video(
    how: str,
    start_kernel: Callable[..., tuple[Any, Any]],
    server_factory: Callable[..., Any],
    tmp_path: Path,
) -> None:
    # One worker and slow steps: the long job still runs, and the last one waits, when the
    # new kernel asks.
    server = server_factory(concurrency=1, step_seconds=0.3)
    km, kc = start_kernel(server.url)
    execute(kc, "%load_ext ltx_jupyter")
    reply, _ = execute(kc, "%%ltx -o done --steps 1 --wait\nfinished before the restart")
    assert reply["content"]["status"] == "ok"
    execute(kc, "%%ltx -o running --steps 50\nstill running at the restart")
    execute(kc, "%%ltx -o waiting --steps 2\nstill queued at the restart")
    _, messages = execute(
        kc,
        "import time\n"
        "while not (running.request_id and waiting.request_id): time.sleep(0.05)\n"
        "print(done.request_id, running.request_id, waiting.request_id)",
    )
    done_id, running_id, waiting_id = printed(messages).split()
    eventually(lambda: server_state(server, running_id)["log_count"] >= 2, what="the long job runs")

    if how == "killed":
        os.kill(km.provisioner.pid, signal.SIGKILL)
        eventually(lambda: not km.is_alive(), what="the kernel died")
        km.restart_kernel(now=True)
    else:
        km.restart_kernel(now=False)  # a shutdown request first, as JupyterLab's Restart
    kc.wait_for_ready(timeout=60)

    # The journal knows only the submits of the two unfinished jobs.
    lines = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    last = {line["request_id"]: line["status"] for line in lines}
    assert last == {done_id: "completed", running_id: "queued", waiting_id: "queued"}

    execute(kc, "%load_ext ltx_jupyter")
    _, messages = execute(kc, "%ltx jobs")
    text, html = shown(messages, "text/plain"), shown(messages, "text/html")
    rows = {line.split()[0]: line for line in text.split("\n\n")[0].splitlines()[1:]}
    assert set(rows) == {done_id, running_id, waiting_id}, text
    assert re.search(r"\scompleted\s.*http://\S+/video\.mp4$", rows[done_id]), text
    assert " running " in rows[running_id], text
    assert rows[running_id].endswith(f"%ltx resume {running_id}"), text
    assert " queued " in rows[waiting_id], text
    assert rows[waiting_id].endswith(f"%ltx resume {waiting_id}"), text
    assert "%ltx resume" not in rows[done_id]
    assert f"%ltx resume {running_id}" in html and f"%ltx resume {waiting_id}" in html

    # Resume: the live view comes back (log lines as the job runs), then the video.
    reply, messages = execute(kc, f"%ltx resume {running_id}")
    assert reply["content"]["status"] == "ok"
    opened = [m for m in messages if m["msg_type"] == "comm_open"]
    assert any(m["content"]["data"]["state"].get("_model_name") == "VBoxModel" for m in opened)
    after = drain(kc, lambda m: "<video" in state_value(m), timeout=60)
    values = [state_value(m) for m in after]
    assert any(re.search(r"step \d+/50", value) for value in values), "no live log"
    assert any("running" in value for value in values)
    video = next(value for value in values if "<video" in value)
    assert server_state(server, running_id)["state"] == "COMPLETED"
    assert running_id in video

    _, messages = execute(kc, f"%ltx resume {waiting_id[:8]} --wait")
    assert f"request {waiting_id}" in shown(messages, "text/html")
    stats = httpx.get(f"{server.url}/_local/stats", timeout=5).json()
    assert stats["by_kind"]["submit"] == 3, "a job was submitted again"


# Unbounded, the stalled read alone would take minutes (60 s stalls, each retried).
@pytest.mark.timeout(30)
def test_a_status_that_cannot_be_read_is_unknown_and_the_wait_is_bounded(
    ltx_shell: Callable[..., Any],
    server_factory: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_jobs, "STATUS_READ_TIMEOUT", 1.0)
    monkeypatch.setenv("LTX_HISTORY_FILE", str(tmp_path / "history.jsonl"))
    monkeypatch.delenv("FAL_KEY", raising=False)
    server = server_factory(concurrency=1, step_seconds=0.2)
    history = HistoryStore(tmp_path / "history.jsonl")

    def submitted(prompt: str, queue_url: str, request_id: str | None = None) -> str:
        if request_id is None:
            answer = httpx.post(f"{server.url}/{T2V}", json={"prompt": prompt}, timeout=5)
            request_id = str(answer.json()["request_id"])
        history.record_submit(request_id, T2V, {"prompt": prompt}, queue_url, status="queued")
        return request_id

    with FaultProxy(server.url) as stalled:
        stalled.add("stall", path=r"/status", seconds=60, times=99)
        known = submitted("known", server.url)
        refused = submitted("its server is gone", "http://127.0.0.1:9", "gone-0001")
        hanging = submitted("its server never answers", stalled.url)
        unheard = submitted("its server never heard of it", server.url, "unheard-of-0001")
        shell = ltx_shell(server.url)
        with capture_output() as table:
            shell.run_line_magic("ltx", "jobs")
    text = table.outputs[0].data["text/plain"]
    rows = {line.split()[0]: line.split()[1] for line in text.split("\n\n")[0].splitlines()[1:]}
    assert rows[known] in ("queued", "running"), text
    assert rows[refused] == rows[hanging] == rows[unheard] == "unknown", text
    for request_id in (known, refused, hanging, unheard):
        assert f"%ltx resume {request_id}" in text
