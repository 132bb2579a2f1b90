"""The panel in a real kernel (jupyter_client), driven as JupyterLab drives it: typing arrives
as a comm update, a choice in a dropdown or toggle buttons as an index update, a click as a
comm message, and the job's video reaches the frontend while the kernel is idle."""

from __future__ import annotations

from typing import Any

from tests.kernels import drain, execute, printed, state_value

OPEN_PANEL = """\
panel = %ltx panel
panel
"""
LTX2 = "fal-ai/ltx-2/text-to-video"


def opened(messages: list[dict[str, Any]], model: str, **state: Any) -> list[str]:
    """The comm ids of the widgets of ``model`` opened in ``messages`` whose state holds
    ``state`` (a callable value is a test of the state's value)."""
    found = []
    for m in messages:
        if m["msg_type"] != "comm_open":
            continue
        opened_state = m["content"]["data"]["state"]
        if opened_state.get("_model_name") != model:
            continue
        if all(
            test(opened_state.get(key)) if callable(test) else opened_state.get(key) == test
            for key, test in state.items()
        ):
            found.append(m["content"]["comm_id"])
    return found


def comm_of(messages: list[dict[str, Any]], model: str, **state: Any) -> str:
    """The one widget of ``model`` with ``state`` opened in ``messages``."""
    ids = opened(messages, model, **state)
    assert len(ids) == 1, (model, state, ids)
    return ids[0]


def send_comm(kernel: Any, comm_id: str, data: dict[str, Any]) -> None:
    kernel.shell_channel.send(kernel.session.msg("comm_msg", {"comm_id": comm_id, "data": data}))


def update(kernel: Any, comm_id: str, **state: Any) -> None:
    """What a frontend sends when a person changes a widget."""
    send_comm(kernel, comm_id, {"method": "update", "state": state, "buffer_paths": []})


def click(kernel: Any, comm_id: str) -> None:
    send_comm(kernel, comm_id, {"method": "custom", "content": {"event": "click"}})


def updates_of(comm_id: str, msg: dict[str, Any]) -> dict[str, Any]:
    if msg["msg_type"] != "comm_msg" or msg["content"]["comm_id"] != comm_id:
        return {}
    data = msg["content"]["data"]
    return data.get("state", {}) if data.get("method") == "update" else {}


def is_prompt(placeholder: Any) -> bool:
    return str(placeholder or "").startswith("The main action first")


def test_typing_and_a_generate_click_run_a_job_whose_video_reaches_the_frontend(
    start_kernel, local_server
):
    _, kernel = start_kernel(local_server.url)
    execute(kernel, "%load_ext ltx_jupyter")
    reply, messages = execute(kernel, OPEN_PANEL)
    assert reply["content"]["status"] == "ok"
    results = [m for m in messages if m["msg_type"] == "execute_result"]
    assert results[0]["content"]["data"]["text/plain"].startswith("ltx panel · fal-ai/ltx-video")
    prompt = comm_of(messages, "TextareaModel", placeholder=is_prompt)
    generate = comm_of(messages, "ButtonModel", description="Generate")

    update(kernel, prompt, value="A lighthouse in a storm, waves <b>crash</b>")
    # The panel answers the typing: Generate is enabled.
    drain(kernel, lambda m: updates_of(generate, m).get("disabled") is False)

    click(kernel, generate)
    after_click = drain(kernel, lambda m: "<video" in state_value(m))
    assert any("running" in state_value(m) for m in after_click)
    assert len([m for m in after_click if m["msg_type"] == "comm_msg"]) < 200

    _reply, messages = execute(
        kernel, "run = panel.runs[0]\nprint(run.job.status, repr(run.job.input['prompt']))"
    )
    assert printed(messages).strip() == "completed 'A lighthouse in a storm, waves <b>crash</b>'"
    _reply, messages = execute(kernel, "print(repr(panel))")
    assert printed(messages).strip() == "ltx panel · fal-ai/ltx-video · 1 run"


def test_choosing_an_endpoint_in_the_frontend_opens_its_controls_and_runs_them(
    start_kernel, local_server
):
    _, kernel = start_kernel(local_server.url)
    execute(kernel, "%load_ext ltx_jupyter")
    _reply, messages = execute(kernel, OPEN_PANEL)
    endpoints = comm_of(
        messages,
        "DropdownModel",
        _options_labels=lambda labels: any(
            label.startswith("LTX-2 text to video ·") for label in labels or ()
        ),
    )
    labels = next(
        m["content"]["data"]["state"]["_options_labels"]
        for m in messages
        if m["msg_type"] == "comm_open" and m["content"]["comm_id"] == endpoints
    )
    prompt = comm_of(messages, "TextareaModel", placeholder=is_prompt)
    generate = comm_of(messages, "ButtonModel", description="Generate")
    update(kernel, prompt, value="A red fox in the snow")
    drain(kernel, lambda m: updates_of(generate, m).get("disabled") is False)

    # A choice in the dropdown: the kernel opens the LTX-2 controls while idle.
    index = next(i for i, label in enumerate(labels) if label.startswith("LTX-2 text to video ·"))
    update(kernel, endpoints, index=index)
    switched = drain(
        kernel,
        lambda m: (
            m["msg_type"] == "comm_open"
            and m["content"]["data"]["state"].get("_options_labels") == ["6", "8", "10"]
        ),
    )
    duration = opened(switched, "ToggleButtonsModel", _options_labels=["6", "8", "10"])[0]
    update(kernel, duration, index=2)
    # The estimate follows: 10 s at LTX-2's price per second.
    drain(kernel, lambda m: "(10 s ×" in state_value(m))
    _reply, messages = execute(kernel, "print(repr(panel), panel.arguments()['duration'])")
    assert printed(messages).strip() == f"ltx panel · {LTX2} · 0 runs 10"

    click(kernel, generate)
    drain(kernel, lambda m: "<video" in state_value(m))
    _reply, messages = execute(
        kernel,
        "job = panel.runs[0].job\n"
        "print(job.endpoint, job.status, job.input['duration'], job.input['prompt'])",
    )
    assert printed(messages).strip() == f"{LTX2} completed 10 A red fox in the snow"
