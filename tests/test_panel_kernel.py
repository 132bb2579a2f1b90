"""The panel in a real kernel (jupyter_client), driven as JupyterLab drives it: typing arrives
as a comm update, a click as a comm message, and the job's video reaches the frontend while the
kernel is idle."""

from __future__ import annotations

from typing import Any

from tests.test_kernel import drain, execute, kernel_for, state_value

__all__ = ["kernel_for"]  # a fixture, used by name

OPEN_PANEL = """\
panel = %ltx panel
panel
"""


def comm_of(messages: list[dict[str, Any]], model: str, description: str) -> str:
    """The comm id of the widget of ``model`` with ``description`` opened in ``messages``."""
    ids = [
        m["content"]["comm_id"]
        for m in messages
        if m["msg_type"] == "comm_open"
        and m["content"]["data"]["state"].get("_model_name") == model
        and m["content"]["data"]["state"].get("description") == description
    ]
    assert len(ids) == 1, (model, description, ids)
    return ids[0]


def send_comm(kernel: Any, comm_id: str, data: dict[str, Any]) -> None:
    kernel.shell_channel.send(kernel.session.msg("comm_msg", {"comm_id": comm_id, "data": data}))


def updates_of(comm_id: str, msg: dict[str, Any]) -> dict[str, Any]:
    if msg["msg_type"] != "comm_msg" or msg["content"]["comm_id"] != comm_id:
        return {}
    data = msg["content"]["data"]
    return data.get("state", {}) if data.get("method") == "update" else {}


def test_typing_and_a_generate_click_run_a_job_whose_video_reaches_the_frontend(
    kernel_for, local_server
):
    kernel = kernel_for(local_server)
    execute(kernel, "%load_ext ltx_jupyter")
    reply, messages = execute(kernel, OPEN_PANEL)
    assert reply["content"]["status"] == "ok"
    results = [m for m in messages if m["msg_type"] == "execute_result"]
    assert results[0]["content"]["data"]["text/plain"].startswith("ltx panel · fal-ai/ltx-video")
    prompt = comm_of(messages, "TextareaModel", "Prompt")
    generate = comm_of(messages, "ButtonModel", "Generate")

    send_comm(
        kernel,
        prompt,
        {
            "method": "update",
            "state": {"value": "A lighthouse in a storm, waves <b>crash</b>"},
            "buffer_paths": [],
        },
    )
    # The panel answers the typing: Generate is enabled.
    drain(kernel, lambda m: updates_of(generate, m).get("disabled") is False)

    send_comm(kernel, generate, {"method": "custom", "content": {"event": "click"}})
    after_click = drain(kernel, lambda m: "<video" in state_value(m))
    assert any("running" in state_value(m) for m in after_click)
    assert len([m for m in after_click if m["msg_type"] == "comm_msg"]) < 200

    _reply, messages = execute(
        kernel, "run = panel.runs[0]\nprint(run.job.status, repr(run.job.input['prompt']))"
    )
    printed = "".join(m["content"].get("text", "") for m in messages if m["msg_type"] == "stream")
    assert printed.strip() == "completed 'A lighthouse in a storm, waves <b>crash</b>'"
    _reply, messages = execute(kernel, "print(repr(panel))")
    printed = "".join(m["content"].get("text", "") for m in messages if m["msg_type"] == "stream")
    assert printed.strip() == "ltx panel · fal-ai/ltx-video · 1 run"
