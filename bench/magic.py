"""The ``%%ltx`` magic: return time, bytes added to a notebook, comm messages per job.

Each measurement runs in its own child process (``python -m bench.magic PART URL OUT``):

- ``returns``: a real ``InteractiveShell`` (history off) with the extension loaded times
  ``run_cell_magic("ltx", "--no-wait ...", prompt)``; then every job is waited for.
- ``headless``: a one-cell notebook executed by nbclient (``%%ltx`` waits when headless); the
  bytes the executed cell adds to the saved ``.ipynb`` (nbformat JSON).
- ``kernel``: a real kernel driven over jupyter_client as JupyterLab does. One interactive
  job: the cell's outputs (the widget view) and the widget state a frontend may save with the
  notebook; one ``--wait`` job: what a waiting run adds; and one job logging 5,000 lines
  (against a second server, ``--log-lines-per-step 100``, 50 steps): ``comm_open`` and
  ``comm_msg`` IOPub messages from the execution to the video.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._common import ServerProcess, child_env, summary

__all__ = ["MagicSettings", "run_magic"]

PROMPT = (
    "A red fox trots through fresh snow at dawn, its breath steaming, pine trees behind it, "
    "the camera tracking low beside it in warm golden light."
)


class MagicSettings:
    """Sizes of the magic runs: the full run's defaults, or the CI smoke's."""

    def __init__(self, *, returns: int = 50, warmup: int = 3, steps: int = 10) -> None:
        self.returns = returns
        self.warmup = warmup
        self.steps = steps

    @classmethod
    def quick(cls) -> MagicSettings:
        return cls(returns=5, warmup=1, steps=5)

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


# -- children ----------------------------------------------------------------------------------


def _returns(url: str, settings: dict[str, Any]) -> dict[str, Any]:
    from IPython.core.interactiveshell import InteractiveShell

    os.environ["LTX_QUEUE_URL"] = url
    shell = InteractiveShell.instance()
    shell.history_manager.enabled = False
    shell.run_line_magic("load_ext", "ltx_jupyter")
    line = f"--no-wait --steps {settings['steps']}"
    times = []
    sink = io.StringIO()  # the job views' text form goes here, not to the driver
    with contextlib.redirect_stdout(sink):
        for index in range(settings["warmup"] + settings["returns"]):
            started = time.perf_counter()
            shell.run_cell_magic("ltx", line, f"{PROMPT} #{index}")
            elapsed = time.perf_counter() - started
            if index >= settings["warmup"]:
                times.append(elapsed)
    magics = shell.magics_manager.registry["LtxMagics"]
    jobs = list(magics.session.jobs)
    failed = 0
    for job in jobs:
        try:
            job.wait(timeout=120)
        except Exception:
            failed += 1
    shell.run_line_magic("unload_ext", "ltx_jupyter")
    return {"return_ms": summary(times, 1000, 2), "jobs": len(jobs), "jobs_failed": failed}


def _nb_size(notebook: Any) -> int:
    import nbformat

    return len(nbformat.writes(notebook).encode())


def _cleared(notebook: Any) -> Any:
    import copy

    blank = copy.deepcopy(notebook)
    for cell in blank.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return blank


def _headless(url: str, settings: dict[str, Any]) -> dict[str, Any]:
    import nbformat
    from nbclient import NotebookClient

    os.environ["LTX_QUEUE_URL"] = url
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("%load_ext ltx_jupyter"),
        nbformat.v4.new_code_cell(f"%%ltx --seed 1 --steps {settings['steps']}\n{PROMPT}"),
    ]
    with tempfile.TemporaryDirectory() as folder:
        NotebookClient(notebook, timeout=120, resources={"metadata": {"path": folder}}).execute()
    cell = notebook.cells[1]
    one_cell_before = nbformat.v4.new_notebook(cells=[_cleared(notebook).cells[1]])
    one_cell_after = nbformat.v4.new_notebook(cells=[cell])
    return {
        "bytes_added": _nb_size(one_cell_after) - _nb_size(one_cell_before),
        "outputs": [
            {"type": o.output_type, "mime": sorted(o.get("data", {}))} for o in cell.outputs
        ],
        "errors": [o.get("ename") for o in cell.outputs if o.output_type == "error"],
    }


class _Kernel:
    """A real IPython kernel over jupyter_client, with its IOPub messages collected."""

    def __init__(self, url: str, cwd: str) -> None:
        from jupyter_client.manager import start_new_kernel

        env = {**child_env(LTX_QUEUE_URL=url), "LTX_HISTORY_FILE": f"{cwd}/history.jsonl"}
        self.manager, self.client = start_new_kernel(kernel_name="python3", env=env, cwd=cwd)

    def execute(self, code: str, timeout: float = 120) -> list[dict[str, Any]]:
        """Run ``code``; the IOPub messages up to its idle status."""
        from tests.kernels import execute

        return execute(self.client, code, timeout)[1]

    def drain(
        self,
        until: Callable[[dict[str, Any]], bool],
        seen: list[dict[str, Any]],
        timeout: float = 120,
    ) -> list[Any]:
        """IOPub messages (the kernel idle) until ``until(msg)``, unless one of ``seen``
        already satisfied it."""
        from tests.kernels import drain

        if any(until(m) for m in seen):
            return []
        return drain(self.client, until, timeout)

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


def _shows_video(msg: dict[str, Any]) -> bool:
    if msg["msg_type"] != "comm_msg":
        return False
    state = msg["content"]["data"].get("state", {})
    return "<video" in str(state.get("value", ""))


def _outputs_bytes(messages: list[dict[str, Any]]) -> int:
    """The bytes these IOPub messages add as one cell's outputs in a saved notebook."""
    import nbformat

    outputs = [
        nbformat.v4.output_from_msg(m)
        for m in messages
        if m["msg_type"] in ("display_data", "execute_result", "stream", "error")
    ]
    empty = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("%%ltx\nx")])
    full = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("%%ltx\nx", outputs=outputs)])
    return _nb_size(full) - _nb_size(empty)


def _widget_state_bytes(messages: list[dict[str, Any]]) -> int:
    """The size of the widget state (all models' final states) a frontend may save."""
    states: dict[str, dict[str, Any]] = {}
    for msg in messages:
        content = msg["content"]
        if msg["msg_type"] == "comm_open":
            states[content["comm_id"]] = dict(content["data"].get("state", {}))
        elif msg["msg_type"] == "comm_msg" and content["data"].get("method") == "update":
            states.setdefault(content["comm_id"], {}).update(content["data"].get("state", {}))
    saved = {
        "version_major": 2,
        "version_minor": 0,
        "state": {
            cid: {"model_name": s.get("_model_name"), "state": s} for cid, s in states.items()
        },
    }
    return len(json.dumps(saved, indent=1).encode())


def _kernel(urls: dict[str, str], settings: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        kernel = _Kernel(urls["plain"], folder)
        try:
            kernel.execute("%load_ext ltx_jupyter")
            steps = settings["steps"]
            # An interactive job: the cell returns at once; the view goes on updating.
            during = kernel.execute(f"%%ltx --seed 2 --steps {steps}\n{PROMPT}")
            after = kernel.drain(_shows_video, during)
            interactive = {
                "cell_outputs_bytes": _outputs_bytes(during + after),
                "widget_state_bytes": _widget_state_bytes(during + after),
            }
            # A waiting run: the view (without the video) and then the video output.
            waited = kernel.execute(f"%%ltx --wait --seed 3 --steps {steps}\n{PROMPT}")
            waiting = {
                "cell_outputs_bytes": _outputs_bytes(waited),
                "widget_state_bytes": _widget_state_bytes(waited),
            }
            # 5,000 log lines: count the comm messages from the execution to the video.
            kernel.execute(f"%config LtxMagics.queue_url = {urls['logs']!r}")
            started = time.monotonic()
            during = kernel.execute(f"%%ltx --seed 4 --steps 50\n{PROMPT}")
            after = kernel.drain(_shows_video, during)
            elapsed = time.monotonic() - started
            messages = during + after
        finally:
            kernel.close()
    comm_msgs = [m for m in messages if m["msg_type"] == "comm_msg"]
    comm_opens = [m for m in messages if m["msg_type"] == "comm_open"]
    return {
        "interactive": interactive,
        "waiting": waiting,
        "log_job": {
            "comm_open": len(comm_opens),
            "comm_msg": len(comm_msgs),
            "comm_messages": len(comm_opens) + len(comm_msgs),
            "seconds_to_video": round(elapsed, 2),
        },
    }


def _child_main(argv: list[str]) -> int:
    part, urls, out = argv[0], json.loads(argv[1]), argv[2]
    settings = json.loads(argv[3])
    if part == "returns":
        result = _returns(urls["plain"], settings)
    elif part == "headless":
        result = _headless(urls["plain"], settings)
    else:
        result = _kernel(urls, settings)
    Path(out).write_text(json.dumps(result))
    return 0


# -- the driver --------------------------------------------------------------------------------


def _run_child(part: str, urls: dict[str, str], settings: MagicSettings) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "result.json"
        env = child_env(LTX_HISTORY_FILE=str(Path(folder) / "history.jsonl"))
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.magic",
                part,
                json.dumps(urls),
                str(out),
                json.dumps(settings.to_json()),
            ],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if completed.returncode != 0 or not out.exists():
            raise RuntimeError(f"bench.magic {part} failed:\n{completed.stderr[-3000:]}")
        return json.loads(out.read_text())  # type: ignore[no-any-return]


def run_magic(settings: MagicSettings, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the magic's measurements and return their figures (JSON-ready)."""
    plain = ServerProcess("--step-seconds", "0.02", "--concurrency", "8")
    logs = ServerProcess("--step-seconds", "0.02", "--log-lines-per-step", "100")
    with plain, logs:
        urls = {"plain": plain.url, "logs": logs.url}
        log(f"magic return time ({settings.returns} runs)")
        returns = _run_child("returns", urls, settings)
        log("headless notebook (nbclient)")
        headless = _run_child("headless", urls, settings)
        log("real kernel: widget outputs and a 5,000-line job's comm messages")
        kernel = _run_child("kernel", urls, settings)
    median = returns["return_ms"]["median"]
    return {
        "settings": settings.to_json(),
        "return": returns,
        "headless": headless,
        "kernel": kernel,
        "targets": {
            "return_under_20ms": {"median_ms": median, "met": median < 20},
            "headless_bytes_under_8kb": {
                "bytes": headless["bytes_added"],
                "met": headless["bytes_added"] < 8000,
            },
            "comm_messages_under_100": {
                "messages": kernel["log_job"]["comm_messages"],
                "met": kernel["log_job"]["comm_messages"] < 100,
            },
        },
        "note": "bytes: the UTF-8 size nbformat's JSON grows by in the saved .ipynb",
    }


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
