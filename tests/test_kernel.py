"""The magic in a real kernel (jupyter_client), as JupyterLab drives it: widget updates reach
the frontend while the kernel is idle, and a Cancel click sent as a comm message cancels."""

from __future__ import annotations

import httpx

from .kernels import drain, execute, printed, state_value


def test_a_job_finishes_and_its_view_updates_while_the_kernel_is_idle(start_kernel, local_server):
    _, kernel = start_kernel(local_server.url)
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
    assert printed(messages).strip() == "completed 11"


def test_a_cancel_click_sent_as_a_comm_message_cancels_remotely(start_kernel, server_factory):
    server = server_factory(step_seconds=0.1)
    _, kernel = start_kernel(server.url)
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
    status, request_id = printed(messages).split()
    assert status == "cancelled"
    record = httpx.get(f"{server.url}/_local/requests/{request_id}").json()
    assert "cancel" in record["error"].lower()
