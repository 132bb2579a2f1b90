"""Two notebooks, one history: two real kernels append to the same journal at once and lose or
corrupt no line, and each lists the other's jobs. A journal that cannot be written (permission
refused, a full disk, a directory in its place) stops no job: the user is told once, in one
line, where the request ids are instead, and ``%ltx jobs`` still lists them."""

from __future__ import annotations

import errno
import itertools
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from IPython.utils.capture import capture_output

from ltx_jupyter import JobStatus

from .shells import eventually, magics_of

JOBS = 50
NOTE = re.compile(r"request ids are not being saved to the history \((.+)\); find each job's id")


def run(kc: Any, code: str, timeout: float = 120) -> str:
    """Run ``code`` in the kernel as a headless executor does (no stdin, like nbclient) and
    return its text output; fail on an error."""
    msg_id = kc.execute(code, allow_stdin=False)
    texts = []
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            texts.append(content["text"])
        elif kind in ("display_data", "execute_result"):
            texts.append(content["data"].get("text/plain", ""))
        elif kind == "error":
            raise AssertionError("\n".join(content["traceback"]))
        elif kind == "status" and content["execution_state"] == "idle":
            return "".join(texts)


# Both cells start together (the test creates the go file once both are sent) and pace their
# submits, so the two kernels' appends really interleave even on a busy machine.
SUBMIT_ALL = """
import os, time
%load_ext ltx_jupyter
while not os.path.exists({go!r}):
    time.sleep(0.005)
jobs = []
for i in range({jobs}):
    line = f"--no-wait --steps 1 --seed {{i}} kernel {tag} job {{i}}"
    jobs.append(get_ipython().run_line_magic("ltx", line))
    time.sleep(0.01)
"""


@pytest.mark.timeout(300)
def test_two_kernels_writing_one_history_at_once_lose_and_corrupt_nothing(
    start_kernel: Callable[[str], Any], server_factory: Callable[..., Any], tmp_path: Path
) -> None:
    server = server_factory(concurrency=4, step_seconds=0.01)
    (_, a), (_, b) = start_kernel(server.url), start_kernel(server.url)
    # Both cells run at once: each kernel's submits and end-of-job updates land among the
    # other's.
    go = tmp_path / "go"
    ids_a = a.execute(SUBMIT_ALL.format(tag="A", jobs=JOBS, go=str(go)), allow_stdin=False)
    ids_b = b.execute(SUBMIT_ALL.format(tag="B", jobs=JOBS, go=str(go)), allow_stdin=False)
    time.sleep(0.5)  # both kernels are waiting at the line
    go.touch()
    for kc, msg_id in ((a, ids_a), (b, ids_b)):
        reply = kc.get_shell_msg(timeout=120)
        while reply["parent_header"].get("msg_id") != msg_id:  # a reply to start-up's request
            reply = kc.get_shell_msg(timeout=120)
        assert reply["content"]["status"] == "ok", reply["content"]
    for kc in (a, b):
        ended = run(kc, "print(sorted({str(j.wait(120) and j.status) for j in jobs}))")
        assert ended.strip() == "['completed']"

    lines = (tmp_path / "history.jsonl").read_bytes().split(b"\n")
    assert lines.pop() == b""
    records = [json.loads(line) for line in lines]  # every line whole
    assert len(records) == 2 * 2 * JOBS  # a submit and an end per job, none lost
    kernel_of = {
        r["request_id"]: r["input"]["prompt"].split()[1] for r in records if r["event"] == "submit"
    }
    assert sorted(kernel_of.values()) == ["A"] * JOBS + ["B"] * JOBS
    order = [(kernel_of[r["request_id"]], r["event"]) for r in records]
    switches = sum(1 for x, y in itertools.pairwise(order) if x[0] != y[0])
    assert switches >= 10, "the two kernels' appends did not interleave"
    last_submit = max(i for i, (_k, event) in enumerate(order) if event == "submit")
    first_update = min(i for i, (_k, event) in enumerate(order) if event == "update")
    assert first_update < last_submit, "submits and updates did not interleave"
    ends = [r for r in records if r["event"] == "update"]
    assert {r["status"] for r in ends} == {"completed"} and len(
        {r["request_id"] for r in ends}
    ) == 100

    # Each kernel lists the other's jobs as well as its own.
    for kc in (a, b):
        table = run(kc, "%ltx jobs")
        listed = [line.split()[0] for line in table.split("\n\n")[0].splitlines()[1:]]
        assert sorted(listed) == sorted(kernel_of), table[:500]
        assert all(" completed " in line for line in table.split("\n\n")[0].splitlines()[1:])


# -- a journal that cannot be written ------------------------------------------------------------


@pytest.fixture
def shell_with_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ltx_shell: Callable[..., Any]
) -> Callable[..., Any]:
    monkeypatch.chdir(tmp_path)
    for name in ("FAL_KEY", "FAL_KEY_ID", "FAL_KEY_SECRET"):
        monkeypatch.delenv(name, raising=False)

    def make(server: Any, history: Path) -> Any:
        monkeypatch.setenv("LTX_HISTORY_FILE", str(history))
        return ltx_shell(server.url)

    return make


def refuse(monkeypatch: pytest.MonkeyPatch, path: Path, call: str, code: int) -> None:
    """Make ``os.open`` (or ``os.write``) fail with ``code`` for ``path`` only, as a read-only
    file or a full disk does (root ignores permission bits, so a chmod would not)."""
    real_open, real_write, real_close = os.open, os.write, os.close
    opened: set[int] = set()

    def open_(file: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
        if call == "open" and Path(file) == path:
            raise PermissionError(code, os.strerror(code), str(path))
        fd = real_open(file, flags, mode, **kwargs)
        if Path(file) == path:
            opened.add(fd)
        return fd

    def write(fd: int, data: Any) -> int:
        if call == "write" and fd in opened:
            raise OSError(code, os.strerror(code))
        return real_write(fd, data)

    def close(fd: int) -> None:
        opened.discard(fd)
        real_close(fd)

    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(os, "close", close)


@pytest.mark.parametrize("failure", ["permission refused", "full disk", "a directory"])
def test_a_history_that_cannot_be_written_stops_no_job_and_is_told_once(
    failure: str,
    shell_with_history: Callable[..., Any],
    server_factory: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = server_factory()
    history = tmp_path / "state" / "history.jsonl"
    history.parent.mkdir()
    if failure == "a directory":
        history.mkdir()
        reason = "Is a directory"
    elif failure == "full disk":
        refuse(monkeypatch, history, "write", errno.ENOSPC)
        reason = "No space left on device"
    else:
        refuse(monkeypatch, history, "open", errno.EACCES)
        reason = "Permission denied"
    shell = shell_with_history(server, history)
    magics = magics_of(shell)

    # The first job: it runs, and its view says once where the id is instead.
    shell.run_cell_magic("ltx", "-o first --steps 2 --no-wait", "a lighthouse at dusk")
    first = shell.user_ns["first"]
    first.wait(30)
    assert first.status == JobStatus.COMPLETED and first.request_id
    view = magics.views[first.local_id]
    notes = eventually(lambda: view.notes_html.value)
    assert view.notes_html.layout.display is None
    (note,) = first.notes
    assert NOTE.search(note).group(1) == f"{history}: {reason}", note
    assert note in view.notes_html.value.replace("&#x27;", "'")

    # Later jobs, in the view and in text: no second note.
    shell.run_cell_magic("ltx", "-o second --steps 2 --no-wait", "a harbour at night")
    with capture_output() as shown:
        shell.run_cell_magic("ltx", "-o third --steps 2 --wait", "a ship at sea")
    second, third = shell.user_ns["second"], shell.user_ns["third"]
    second.wait(30)
    assert second.status == third.status == JobStatus.COMPLETED
    assert second.notes == third.notes == ()
    assert "not being saved" not in shown.stdout + shown.stderr
    assert magics.views[second.local_id].notes_html.value == ""
    assert notes.count("not being saved") == 1

    # %ltx jobs lists them all, from the session; %ltx show finds them.
    with capture_output() as table:
        shell.run_line_magic("ltx", "jobs")
    text = table.outputs[0].data["text/plain"]
    for job in (first, second, third):
        assert re.search(rf"^{job.request_id}\s+completed\s", text, re.MULTILINE), text
    if failure == "a directory":
        assert f"the history {history} cannot be read (Is a directory)" in text
    with capture_output() as shown:
        shell.run_line_magic("ltx", f"show {first.request_id}")
    assert "<video" in shown.outputs[0].data["text/html"]


def test_a_terminal_session_prints_the_note_once(
    shell_with_history: Callable[..., Any], server_factory: Callable[..., Any], tmp_path: Path
) -> None:
    server = server_factory()
    history = tmp_path / "history.jsonl"
    history.mkdir()
    shell = shell_with_history(server, history)
    with capture_output() as shown:
        shell.run_cell_magic("ltx", "-o first --steps 2 --wait", "a lighthouse at dusk")
        shell.run_cell_magic("ltx", "-o second --steps 2 --wait", "a harbour at night")
    printed = [line for line in shown.stdout.splitlines() if "not being saved" in line]
    assert printed == [f"ltx: note: {shell.user_ns['first'].notes[0]}"], shown.stdout
    assert shell.user_ns["second"].status == JobStatus.COMPLETED
