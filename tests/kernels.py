"""Helpers shared by the tests that drive a real IPython kernel (jupyter_client) as a frontend
does; the kernels themselves come from the ``start_kernel`` fixture (``tests/conftest.py``)."""

from __future__ import annotations

import queue
import time
from typing import Any


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


def printed(messages: list[dict[str, Any]]) -> str:
    """The text the messages printed (their stream output)."""
    return "".join(m["content"].get("text", "") for m in messages if m["msg_type"] == "stream")
