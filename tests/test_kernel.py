"""The magic in a real kernel (jupyter_client), as JupyterLab drives it: widget updates reach
the frontend while the kernel is idle, and a Cancel click sent as a comm message cancels."""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jupyter_client.manager import start_new_kernel


@pytest.fixture
def kernel_for(tmp_path: Path) -> Iterator[Any]:
    """Start a real IPython kernel whose ltx-jupyter talks to ``server``."""
    started = []

    def start(server: Any) -> Any:
        env = {
            **os.environ,
            "LTX_QUEUE_URL": server.url,
            "LTX_HISTORY_FILE": str(tmp_path / "history.jsonl"),
        }
        env.pop("FAL_KEY", None)
        km, kc = start_new_kernel(kernel_name="python3", env=env, cwd=str(tmp_path))
        started.append((km, kc))
        return kc

    yield start
    for km, kc in started:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def execute(kc: Any, code: str, timeout: float = 60) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run ``code`` as a frontend would; returns the reply and the IOPub messages up to idle."""
    msg_id = kc.execute(code)
    messages = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = kc.get_iopub_msg(timeout=timeout)
        messages.append(msg)
        if (
            msg["parent_header"].get("msg_id") == msg_id
            and msg["msg_type"] == "status"
            and msg["content"]["execution_state"] == "idle"
        ):
            break
    reply = kc.get_shell_msg(timeout=timeout)
    return reply, messages


def drain(kc: Any, until: Any, timeout: float = 30) -> list[dict[str, Any]]:
    """IOPub messages received (while the kernel is idle) until ``until(msg)`` is true."""
    messages = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = kc.get_iopub_msg(timeout=0.5)
        except queue.Empty:
            continue
        messages.append(msg)
        if until(msg):
            return messages
    raise AssertionError("the awaited message never came")


def state_value(msg: dict[str, Any]) -> str:
    if msg["msg_type"] != "comm_msg":
        return ""
    data = msg["content"]["data"]
    return str(data.get("state", {}).get("value", "")) if data.get("method") == "update" else ""


def test_a_job_finishes_and_its_view_updates_while_the_kernel_is_idle(kernel_for, local_server):
    kernel = kernel_for(local_server)
    execute(kernel, "%load_ext ltx_jupyter")
    reply, messages = execute(kernel, "%%ltx -o job --seed 11 --steps 15\nA lighthouse in a storm")
    assert reply["content"]["status"] == "ok"
    opened = [m for m in messages if m["msg_type"] == "comm_open"]
    assert any(m["content"]["data"]["state"].get("_model_name") == "VBoxModel" for m in opened)
    # After the idle status, updates keep coming from the worker thread up to the video.
    after_idle = drain(kernel, lambda m: "<video" in state_value(m))
    updates = [state_value(m) for m in after_idle if state_value(m)]
    assert any("step" in value for value in updates)
    assert len([m for m in after_idle if m["msg_type"] == "comm_msg"]) < 100
    reply, messages = execute(kernel, "print(job.status, job.result.seed)")
    printed = "".join(m["content"].get("text", "") for m in messages if m["msg_type"] == "stream")
    assert printed.strip() == "completed 11"


def test_a_cancel_click_sent_as_a_comm_message_cancels_remotely(kernel_for, server_factory):
    server = server_factory(step_seconds=0.1)
    kernel = kernel_for(server)
    execute(kernel, "%load_ext ltx_jupyter")
    execute(kernel, "%config LtxMagics.log_lines = 5")
    _reply, messages = execute(kernel, "%%ltx -o job --steps 50\nA very long shot")
    buttons = [
        m["content"]["comm_id"]
        for m in messages
        if m["msg_type"] == "comm_open"
        and m["content"]["data"]["state"].get("description") == "Cancel"
    ]
    assert len(buttons) == 1
    drain(kernel, lambda m: "/50" in state_value(m))
    click = kernel.session.msg(
        "comm_msg",
        {"comm_id": buttons[0], "data": {"method": "custom", "content": {"event": "click"}}},
    )
    kernel.shell_channel.send(click)
    drain(kernel, lambda m: "cancelled" in state_value(m))
    _reply, messages = execute(kernel, "print(job.status, job.request_id)")
    printed = "".join(m["content"].get("text", "") for m in messages if m["msg_type"] == "stream")
    status, request_id = printed.split()
    assert status == "cancelled"
    record = httpx.get(f"{server.url}/_local/requests/{request_id}").json()
    assert "cancel" in record["error"].lower()
