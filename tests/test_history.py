"""The request-id journal: nothing a user submitted is lost, whatever happens to the process."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ltx_jupyter import _history
from ltx_jupyter._history import (
    HistoryEntry,
    HistoryStore,
    default_history_path,
    redact_for_history,
)
from ltx_jupyter._text import shorten

REPO = Path(__file__).resolve().parents[1]
QUEUE = "https://queue.fal.run/fal-ai/ltx-video/requests"


@pytest.fixture
def store(tmp_path: Path) -> HistoryStore:
    return HistoryStore(tmp_path / "state" / "ltx" / "history.jsonl")


def submit(store: HistoryStore, request_id: str, prompt: str = "a red fox") -> None:
    store.record_submit(
        request_id, "fal-ai/ltx-video", {"prompt": prompt, "seed": 1}, f"{QUEUE}/{request_id}"
    )


def test_a_submit_is_on_disk_when_record_submit_returns(
    store: HistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(_history.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    store.record_submit(
        "req-1",
        "fal-ai/ltx-video",
        {"prompt": "a red fox in snow", "num_inference_steps": 30},
        f"{QUEUE}/req-1",
    )
    assert len(synced) == 1
    # Another process (here: another store on the same file) sees it at once.
    (entry,) = HistoryStore(store.path).entries()
    assert entry.request_id == "req-1"
    assert entry.endpoint == "fal-ai/ltx-video"
    assert entry.input == {"prompt": "a red fox in snow", "num_inference_steps": 30}
    assert entry.queue_url == f"{QUEUE}/req-1"
    assert entry.status == "IN_QUEUE"
    assert entry.submitted_at is not None
    assert abs(entry.submitted_at - datetime.now(timezone.utc)) < timedelta(seconds=10)
    assert entry.finished_at is None


def test_the_journal_is_private_to_the_user(store: HistoryStore) -> None:
    assert not store.path.parent.exists()
    submit(store, "req-1")
    assert stat.S_IMODE(store.path.stat().st_mode) & 0o077 == 0
    assert stat.S_IMODE(store.path.parent.stat().st_mode) & 0o077 == 0


def test_updates_fold_into_the_latest_state_newest_request_first(store: HistoryStore) -> None:
    submit(store, "req-a", "first")
    submit(store, "req-b", "second")
    store.record_update("req-a", status="IN_PROGRESS")
    store.record_update(
        "req-a", status="completed", video_url="https://v3.fal.media/a.mp4", seed=42, duration=31.5
    )
    store.record_update("req-b", status="failed", error=RuntimeError("GPU out of memory"))

    b, a = store.entries()
    assert (a.request_id, a.status, a.video_url, a.seed, a.duration) == (
        "req-a",
        "completed",
        "https://v3.fal.media/a.mp4",
        42,
        31.5,
    )
    assert a.finished_at is not None and a.submitted_at is not None
    assert a.finished_at >= a.submitted_at
    assert a.input["prompt"] == "first"
    assert (b.status, b.error, b.video_url) == ("failed", "GPU out of memory", None)


def test_explicit_times_are_kept(store: HistoryStore) -> None:
    t0 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    store.record_submit("req-1", "fal-ai/ltx-video", {}, None, submitted_at=t0)
    store.record_update("req-1", status="cancelled", finished_at=t0.timestamp() + 60)
    (entry,) = store.entries()
    assert entry.submitted_at == t0
    assert entry.finished_at == t0 + timedelta(seconds=60)
    assert entry.queue_url is None


def test_unknown_update_fields_are_refused(store: HistoryStore) -> None:
    with pytest.raises(TypeError, match="video"):
        store.record_update("req-1", video="x.mp4")


def test_lookup_by_full_id_or_unique_prefix(store: HistoryStore) -> None:
    submit(store, "7f3c2a10-aaaa")
    submit(store, "7f3c9b22-bbbb")
    submit(store, "0b11")
    entry = store.get("7f3c2a10-aaaa")
    assert entry is not None and entry.request_id == "7f3c2a10-aaaa"
    entry = store.get("7f3c9")
    assert entry is not None and entry.request_id == "7f3c9b22-bbbb"
    assert store.get("ffff") is None
    with pytest.raises(ValueError, match=r"ambiguous.*7f3c9b22-bbbb, 7f3c2a10-aaaa"):
        store.get("7f3c")
    with pytest.raises(ValueError):
        store.get("")


def test_missing_journal_reads_as_empty(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "nope.jsonl")
    assert store.entries() == []
    assert store.get("abc") is None


def test_a_line_cut_short_by_a_crash_loses_nothing_else(store: HistoryStore) -> None:
    submit(store, "req-1")
    submit(store, "req-2")
    with open(store.path, "ab") as f:
        f.write(b'{"event":"submit","request_id":"req-3","endpoint":"fal-ai/ltx-vi')
    assert [e.request_id for e in store.entries()] == ["req-2", "req-1"]

    # The next write after the crash starts a fresh line instead of gluing onto the remains.
    submit(store, "req-4")
    store.record_update("req-1", status="completed")
    entries = {e.request_id: e for e in store.entries()}
    assert set(entries) == {"req-1", "req-2", "req-4"}
    assert entries["req-1"].status == "completed"


def test_unreadable_lines_are_skipped(store: HistoryStore) -> None:
    submit(store, "req-1")
    with open(store.path, "ab") as f:
        f.write(b'\xff\xfe garbage \x00\n[1, 2]\nnull\n{}\n{"request_id": 5}\n\n   \n')
        f.write(b'{"request_id":"req-1","status":"IN_PROGRESS","seed":"NaN?","input":"x"}\n')
        f.write(b'{"request_id":"req-1","finished_at":"yesterday","from_the_future":1}\n')
    submit(store, "req-2")
    req2, req1 = store.entries()
    assert req2.request_id == "req-2"
    assert req1.status == "IN_PROGRESS"
    assert req1.seed is None
    assert req1.input == {"prompt": "a red fox", "seed": 1}
    assert req1.finished_at is None
    assert req1.extra == {"from_the_future": 1}


def test_concurrent_appends_from_threads(store: HistoryStore) -> None:
    def worker(n: int) -> None:
        for i in range(40):
            submit(store, f"t{n}-{i}", prompt="x" * 500)
            store.record_update(f"t{n}-{i}", status="completed")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    entries = store.entries()
    assert len(entries) == 8 * 40
    assert {e.status for e in entries} == {"completed"}
    lines = store.path.read_bytes().split(b"\n")
    assert lines.pop() == b""
    assert len(lines) == 2 * 8 * 40
    assert all(isinstance(json.loads(line), dict) for line in lines)


APPEND_SCRIPT = """
import sys
from ltx_jupyter._history import HistoryStore
store = HistoryStore(sys.argv[1])
tag = sys.argv[2]
for i in range(150):
    store.record_submit(f"{tag}-{i}", "fal-ai/ltx-video", {"prompt": tag * 3000}, None)
"""


def test_concurrent_appends_from_two_processes(store: HistoryStore) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen([sys.executable, "-c", APPEND_SCRIPT, str(store.path), tag], env=env)
        for tag in ("p", "q")
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    lines = store.path.read_bytes().split(b"\n")
    assert lines.pop() == b""
    assert len(lines) == 300
    assert all(json.loads(line)["input"]["prompt"][0] in "pq" for line in lines)
    assert len(store.entries()) == 300


LOCK_HOLDER_SCRIPT = """
import sys, time
import portalocker
journal, hold = sys.argv[1], float(sys.argv[2])
with open(journal + ".lock", "ab") as lock_file:
    portalocker.lock(lock_file, portalocker.LockFlags.EXCLUSIVE)
    with open(journal, "ab", buffering=0) as out:
        out.write(b'{"request_id": "peer", "event": "sub')  # a peer mid-write
        print("held", flush=True)
        time.sleep(hold)
        out.write(b'mit", "status": "IN_QUEUE"}\\n')
    portalocker.unlock(lock_file)
"""


def _hold_lock(store: HistoryStore, seconds: float) -> subprocess.Popen[str]:
    store.path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER_SCRIPT, str(store.path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder


def test_an_append_waits_while_another_process_holds_the_lock(store: HistoryStore) -> None:
    holder = _hold_lock(store, 0.5)
    try:
        submit(store, "mine")  # while the peer's line is half written
    finally:
        assert holder.wait(timeout=30) == 0
    lines = store.path.read_bytes().split(b"\n")
    assert lines.pop() == b""
    assert [json.loads(line)["request_id"] for line in lines] == ["peer", "mine"]
    assert {e.request_id for e in store.entries()} == {"peer", "mine"}


def test_a_lock_held_past_the_timeout_is_written_around(
    store: HistoryStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_history, "LOCK_TIMEOUT", 0.3)
    holder = _hold_lock(store, 60)
    try:
        submit(store, "mine")
    finally:
        holder.kill()
        holder.wait(timeout=30)
    lock = f"{store.path}.lock"
    assert f"the history lock {lock} was held for over 0.3 s; appending without it" in caplog.text
    # Written whole on a line of its own, after the peer's cut-off remains.
    assert [e.request_id for e in store.entries()] == ["mine"]
    assert store.path.read_bytes().endswith(b"\n")


def test_large_data_uris_never_reach_the_journal(store: HistoryStore) -> None:
    image = "data:image/png;base64," + "A" * 300_000
    small = "data:image/png;base64,iVBORw0KGgo="
    payload = {
        "prompt": "the cat moves",
        "image_url": image,
        "refs": [image, small, {"deep": image}],
        "raw": b"\x00" * 1000,
    }
    store.record_submit("req-1", "fal-ai/ltx-video/image-to-video", payload, None)

    assert store.path.stat().st_size < 2000
    (entry,) = store.entries()
    placeholder = f"data:image/png;base64,… ({len(image)} chars)"
    assert entry.input["image_url"] == placeholder
    assert entry.input["refs"] == [placeholder, small, {"deep": placeholder}]
    assert entry.input["raw"] == "<1000 bytes>"
    assert entry.input["prompt"] == "the cat moves"
    assert payload["image_url"] == image  # the caller's input is left alone


def test_redaction_of_unusual_data_uris() -> None:
    odd = "DATA:" + "x" * 500  # no comma: no media type to show
    assert redact_for_history({"a": odd}) == {"a": "data:… (505 chars)"}
    not_uri = "https://example.com/" + "a" * 500
    assert redact_for_history({"a": not_uri, "n": 3}) == {"a": not_uri, "n": 3}


def test_an_entry_gives_its_prompt_for_shortening() -> None:
    entry = HistoryEntry(
        "r", input={"prompt": "  A golden\nretriever   runs through a field of tall grass"}
    )
    assert shorten(entry.prompt, 20) == "A golden retriever…"
    assert len(shorten(entry.prompt, 20)) <= 20
    assert shorten(entry.prompt, 200) == "A golden retriever runs through a field of tall grass"
    assert HistoryEntry("r").prompt == ""


def test_default_path_and_its_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LTX_HISTORY_FILE", raising=False)
    import platformdirs

    expected = Path(platformdirs.user_data_dir("ltx-jupyter")) / "history.jsonl"
    assert default_history_path() == expected
    monkeypatch.setenv("LTX_HISTORY_FILE", str(tmp_path / "h.jsonl"))
    assert default_history_path() == tmp_path / "h.jsonl"
    assert HistoryStore().path == tmp_path / "h.jsonl"
