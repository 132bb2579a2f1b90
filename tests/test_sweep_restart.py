"""``%ltx resume SWEEP_ID`` after a real kernel restart (jupyter_client): the sweep's grid
comes back with every request it had sent, followed to the end; cells the kernel never got to
send come back as not sent, and nothing is sent twice."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from jupyter_client.manager import KernelManager


@pytest.fixture
def kernel(
    tmp_path: Path, server_factory: Any, start_kernel: Any
) -> tuple[KernelManager, Any, Any]:
    server = server_factory(step_seconds=0.05, concurrency=8)
    km, kc = start_kernel(server.url, XDG_CACHE_HOME=str(tmp_path / "cache"))
    return km, kc, server


def printed(kc: Any, code: str, timeout: float = 120) -> str:
    """Run ``code`` in the kernel; what it printed (its reply must be ok)."""
    msg_id = kc.execute(code)
    texts = []
    deadline = time.monotonic() + timeout
    while True:
        msg = kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") != msg_id:
            continue  # from before the restart, or another execution
        if msg["msg_type"] == "stream":
            texts.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            texts.append(f"{msg['content']['ename']}: {msg['content']['evalue']}")
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    while True:
        reply = kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
        if reply["parent_header"].get("msg_id") == msg_id:
            break
    assert reply["content"]["status"] == "ok", "".join(texts)
    return "".join(texts)


@pytest.mark.timeout(180)
def test_a_sweep_resumes_whole_after_a_real_kernel_restart(kernel):
    km, kc, server = kernel
    printed(kc, "%load_ext ltx_jupyter\n%config LtxMagics.max_concurrent = 2")
    printed(kc, "%%ltx --sweep seed=1,2,3 --steps 40 -o s\nA lighthouse in a storm")
    sweep_id = printed(kc, "print(s.id)").strip()
    pid = printed(kc, "import os; print(os.getpid())").strip()
    assert sweep_id.startswith("sweep-")
    deadline = time.monotonic() + 30
    while True:
        sent = json.loads(
            printed(kc, "import json; print(json.dumps([j.request_id for j in s.jobs.values()]))")
        )
        if sum(bool(r) for r in sent) == 2:
            break
        assert time.monotonic() < deadline, sent
        time.sleep(0.1)
    assert sent[2] is None  # the third waits its turn in the client

    km.restart_kernel(now=True)  # the process dies; the server goes on with the two requests
    kc.wait_for_ready(timeout=60)
    assert printed(kc, "import os; print(os.getpid())").strip() != pid
    printed(kc, "%load_ext ltx_jupyter")
    out = printed(
        kc,
        f"r = %ltx resume {sweep_id} --wait\n"
        "import json; print(json.dumps([[list(k), x['status'], x['request_id'], x['seed']] "
        "for k, x in zip(r.keys, r.records())]))",
    )
    rows = json.loads(out.strip().splitlines()[-1])
    assert [row[0] for row in rows] == [[1], [2], [3]]
    assert [row[1] for row in rows] == ["completed", "completed", "not sent"]
    assert [row[2] for row in rows] == sent
    assert [row[3] for row in rows[:2]] == [1, 2]
    stats = httpx.get(f"{server.url}/_local/stats").json()
    assert stats["by_kind"]["submit"] == 2  # resuming sent nothing again
    for request_id in sent[:2]:
        state = httpx.get(f"{server.url}/_local/requests/{request_id}").json()
        assert state["state"] == "COMPLETED" and state["error"] is None
