"""The request-id journal: every submitted request, so none is lost when a kernel dies.

One JSON object per line, appended and never rewritten. A request's first line is written the
moment fal answers the submit (before anything else can go wrong); later lines update its status
and result. Reading folds the lines per request id. A line a crash cut short, or any other line
that cannot be read, is skipped.

Several kernels (two notebooks open at once) and several threads of one kernel append to the
same file. Each append is one ``write()`` of one whole line to the file opened with
``O_APPEND``, made under an exclusive lock held across the check for a line a crash left without
its newline and the write. The lock is a ``portalocker`` lock (``flock`` on POSIX,
``msvcrt.locking`` on Windows) on a sidecar file (``history.jsonl.lock``) the store keeps open,
taken without blocking and retried for a bounded time, because:

- the wait is bounded (:data:`LOCK_TIMEOUT`). A blocking ``flock`` waits forever, so one peer
  stuck while holding it (stopped in a debugger, a network filesystem whose lock service hangs)
  would freeze the runner thread, and with it every job's updates. Past the timeout, or where
  no lock can be taken at all, the line is appended without it: ``O_APPEND`` still writes it
  whole.
- it locks on Windows too, where ``fcntl`` does not exist.
- a sidecar leaves the journal itself unlocked: Windows byte-range locks are mandatory, so
  locking the journal would make readers there fail while a line is written. Readers take no
  lock: a line still being written has no newline yet and is skipped until it is whole.
- the lock dies with its holder: the OS drops it when the process exits, so a kernel killed
  mid-append leaves nothing stale behind (a lock file of our own, created exclusively and
  deleted after, would).

This module used ``filelock`` before. Its lock (``filelock`` 4.3) runs about 460 Python calls
per acquire and release, with a fresh ``open``, ``realpath`` and fork bookkeeping each time:
0.62 ms of CPU with the caches cold, as they are at a job's two appends (33 ms apart in the
measurement), against 0.13 ms for ``portalocker`` on the open sidecar. In a ``%%ltx --wait``
job, its two appends cost 1.85 ms of CPU before and 0.78 ms after (the same one-step job with
and without them, medians of 40).

Writes that fail (a journal that cannot be written, a full disk, a directory in its place)
raise ``OSError`` to the caller, which decides: a job keeps running and tells the user once.
A journal that cannot be read reads as empty, with the reason in
:attr:`HistoryStore.read_problem`.

A sweep (many requests started by one cell) is a record kind of its own: a ``sweep`` line with
its axes and cells when it starts, then a ``sweep_job`` line linking a cell to its request id
when that request's submit answers. These lines carry no ``request_id`` key, so they never
fold into the entries of requests.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

__all__ = [
    "HISTORY_ENV_VAR",
    "HistoryEntry",
    "HistoryStore",
    "SweepRecord",
    "default_history_path",
    "os_reason",
    "redact_for_history",
]

HISTORY_ENV_VAR = "LTX_HISTORY_FILE"

#: Statuses after which a request cannot change any more; recording one stamps ``finished_at``.
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})

#: ``data:`` URIs longer than this are replaced by a placeholder before they are stored.
MAX_DATA_URI_CHARS = 200

#: Seconds an append waits for another process's lock before writing without it.
LOCK_TIMEOUT = 10.0

_log = logging.getLogger(__name__)
_UPDATE_FIELDS = frozenset({"status", "finished_at", "duration", "video_url", "seed", "error"})
_KNOWN_KEYS = frozenset(
    {"request_id", "endpoint", "input", "queue_url", "submitted_at", "cost", "currency"}
)
_KNOWN_KEYS |= _UPDATE_FIELDS
_DATA_URI_HEADER = re.compile(r"data:[^,]{0,100},", re.IGNORECASE)


def default_history_path() -> Path:
    """``$LTX_HISTORY_FILE`` if set, else ``history.jsonl`` in the user data dir for ltx-jupyter."""
    override = os.environ.get(HISTORY_ENV_VAR)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("ltx-jupyter")) / "history.jsonl"


def redact_for_history(input: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``input`` fit for the journal: no large blobs.

    Every string (at any depth) that is a ``data:`` URI longer than 200 characters becomes a
    placeholder such as ``data:image/png;base64,… (123456 chars)``; bytes become ``<N bytes>``.
    """
    return {str(k): _redact(v) for k, v in input.items()}


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        if len(value) > MAX_DATA_URI_CHARS and value[:5].lower() == "data:":
            header = _DATA_URI_HEADER.match(value)
            prefix = header.group(0) if header else "data:"
            return f"{prefix}… ({len(value)} chars)"
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    if isinstance(value, Mapping):
        return {str(k): _redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact(v) for v in value]
    return value


@dataclass
class HistoryEntry:
    """The latest known state of one request, folded from its journal lines."""

    request_id: str
    endpoint: str = ""
    input: dict[str, Any] = field(default_factory=dict)
    queue_url: str | None = None
    status: str | None = None
    submitted_at: datetime | None = None
    finished_at: datetime | None = None
    duration: float | None = None
    video_url: str | None = None
    seed: int | None = None
    error: str | None = None
    #: The estimated cost when it was submitted (None: unknown), in ``currency``.
    cost: float | None = None
    currency: str | None = None
    #: Keys this version does not know (written by a newer version), kept as read.
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def prompt(self) -> str:
        """The prompt the request was sent with ("" when the input holds none)."""
        prompt = self.input.get("prompt")
        return prompt if isinstance(prompt, str) else ""

    def _apply(self, record: Mapping[str, Any]) -> None:
        for key, value in record.items():
            if key in ("request_id", "event", "v"):
                continue
            if key not in _KNOWN_KEYS:
                self.extra[key] = value
            elif key in ("submitted_at", "finished_at"):
                parsed = _parse_time(value)
                if parsed is not None:
                    setattr(self, key, parsed)
            elif key == "input":
                if isinstance(value, dict):
                    self.input = value
            elif key in ("duration", "cost"):
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    setattr(self, key, float(value))
            elif key == "seed":
                if isinstance(value, int) and not isinstance(value, bool):
                    self.seed = value
            elif value is None or isinstance(value, str):
                setattr(self, key, value)


@dataclass
class SweepRecord:
    """A sweep as the journal holds it: its axes (``name``, ``field``, ``values``), its cells
    (``key``: the axis values, ``endpoint``, ``input``), and the request sent for each cell."""

    sweep_id: str
    axes: list[dict[str, Any]] = field(default_factory=list)
    cells: list[dict[str, Any]] = field(default_factory=list)
    queue_url: str | None = None
    created_at: datetime | None = None
    #: Cell index -> the request id its submit answered with (cells never sent are absent).
    request_ids: dict[int, str] = field(default_factory=dict)


class HistoryStore:
    """The journal file at ``path`` (default: :func:`default_history_path`).

    A request's submit line (its id, the one thing that cannot be recovered) goes straight to
    disk (``fsync``) before the call returns; update lines are written without waiting for the
    disk, since what they record can be asked of the server again (``%ltx jobs`` does). The file
    and its folder are created, private to the user, on the first write.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_history_path()
        self._lock = threading.Lock()
        self._lock_file: BinaryIO | None = None
        self._lock_file_pid = 0
        #: Why the journal could not be read the last time (None when it could, or was absent).
        self.read_problem: str | None = None

    def __repr__(self) -> str:
        return f"HistoryStore({str(self.path)!r})"

    def record_submit(
        self,
        request_id: str,
        endpoint: str,
        input: Mapping[str, Any],
        queue_url: str | None,
        *,
        submitted_at: datetime | float | None = None,
        status: str = "IN_QUEUE",
        cost: float | None = None,
        currency: str | None = None,
    ) -> None:
        """Record a request the moment its submit is answered. ``input`` is stored redacted;
        ``cost`` is its estimate in ``currency`` (None: unknown)."""
        record: dict[str, Any] = {
            "event": "submit",
            "request_id": request_id,
            "endpoint": endpoint,
            "input": redact_for_history(input),
            "queue_url": queue_url,
            "status": status,
            "submitted_at": _format_time(submitted_at),
        }
        if cost is not None:
            record.update(cost=cost, currency=currency)
        self._append(record, durable=True)

    def record_update(self, request_id: str, **fields: Any) -> None:
        """Record a change to a request: any of ``status``, ``finished_at``, ``duration``,
        ``video_url``, ``seed``, ``error``.

        A terminal status (``completed``, ``failed``, ``cancelled``) without ``finished_at``
        is stamped with the current time. Unknown field names raise ``TypeError``.
        """
        unknown = sorted(set(fields) - _UPDATE_FIELDS)
        if unknown:
            allowed = ", ".join(sorted(_UPDATE_FIELDS))
            raise TypeError(f"unknown history field(s) {', '.join(unknown)}; allowed: {allowed}")
        record: dict[str, Any] = {"event": "update", "request_id": request_id, **fields}
        if "finished_at" in fields:
            record["finished_at"] = _format_time(fields["finished_at"])
        elif str(fields.get("status", "")).lower() in TERMINAL_STATUSES:
            record["finished_at"] = _format_time(None)
        if fields.get("error") is not None:
            record["error"] = str(fields["error"])
        self._append(record)

    def entries(self) -> list[HistoryEntry]:
        """Every recorded request in its latest state, the most recently submitted first."""
        folded: dict[str, HistoryEntry] = {}
        for record in self._records():
            request_id = record["request_id"]
            entry = folded.get(request_id)
            if entry is None:
                entry = folded[request_id] = HistoryEntry(request_id=request_id)
            entry._apply(record)
        # The journal is appended at submit time, so file order is submission order.
        return list(reversed(folded.values()))

    def get(self, request_id: str) -> HistoryEntry | None:
        """The entry for ``request_id``, or for the one request id starting with it.

        Returns ``None`` if nothing matches; raises ``ValueError`` if a prefix matches several.
        """
        return _by_id({e.request_id: e for e in self.entries()}, request_id, "request id")

    # -- sweeps ------------------------------------------------------------------------------

    def record_sweep(
        self,
        sweep_id: str,
        axes: list[dict[str, Any]],
        cells: list[dict[str, Any]],
        queue_url: str | None,
        *,
        created_at: datetime | float | None = None,
    ) -> None:
        """Record a sweep before any of its requests is sent; each cell's ``input`` is stored
        redacted."""
        stored = [{**cell, "input": redact_for_history(cell.get("input", {}))} for cell in cells]
        self._append(
            {
                "event": "sweep",
                "sweep_id": sweep_id,
                "axes": axes,
                "cells": stored,
                "queue_url": queue_url,
                "created_at": _format_time(created_at),
            },
            durable=True,
        )

    def record_sweep_job(self, sweep_id: str, cell: int, request_id: str) -> None:
        """Link cell number ``cell`` of a sweep to the request sent for it."""
        self._append(
            {"event": "sweep_job", "sweep_id": sweep_id, "cell": cell, "job": request_id},
            durable=True,
        )

    def sweeps(self) -> list[SweepRecord]:
        """Every recorded sweep, the most recent first."""
        found: dict[str, SweepRecord] = {}
        for record in self._sweep_lines():
            sweep_id = record["sweep_id"]
            if record.get("event") == "sweep":
                found[sweep_id] = SweepRecord(
                    sweep_id,
                    axes=list(record.get("axes") or []),
                    cells=list(record.get("cells") or []),
                    queue_url=record.get("queue_url"),
                    created_at=_parse_time(record.get("created_at")),
                )
            elif sweep_id in found:
                cell, job = record.get("cell"), record.get("job")
                if isinstance(cell, int) and isinstance(job, str):
                    found[sweep_id].request_ids[cell] = job
        return list(reversed(found.values()))

    def get_sweep(self, sweep_id: str) -> SweepRecord | None:
        """The sweep ``sweep_id`` (or the one whose id starts with it); ``ValueError`` if a
        prefix matches several."""
        return _by_id({s.sweep_id: s for s in self.sweeps()}, sweep_id, "sweep id")

    def _sweep_lines(self) -> list[dict[str, Any]]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        lines = []
        for line in raw.split(b"\n"):
            if b'"sweep' not in line:
                continue
            try:
                record = json.loads(line)
            except (ValueError, UnicodeDecodeError):
                continue
            if (
                isinstance(record, dict)
                and record.get("event") in ("sweep", "sweep_job")
                and isinstance(record.get("sweep_id"), str)
            ):
                lines.append(record)
        return lines

    # -- the file --------------------------------------------------------------------------

    def _append(self, record: Mapping[str, Any], *, durable: bool = False) -> None:
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=_json_default)
        data = (line + "\n").encode("utf-8")
        with self._lock:
            locked = self._acquire()
            try:
                fd = self._open_for_append()
                try:
                    size = os.fstat(fd).st_size
                    # A process killed mid-write leaves a line without its newline; start on a
                    # fresh line so this record is not glued to the remains and lost with them.
                    if size and _last_byte(fd, size) != b"\n":
                        data = b"\n" + data
                    # One write() per record: with O_APPEND, appenders do not interleave.
                    written = os.write(fd, data)
                    while written < len(data):
                        written += os.write(fd, data[written:])
                    if durable:
                        os.fsync(fd)
                finally:
                    os.close(fd)
            finally:
                if locked:
                    self._release()

    def _open_for_append(self) -> int:
        """The journal opened for appending (and reading its last byte)."""
        return self._open_private(self.path, os.O_RDWR)

    def _open_private(self, path: Path, access: int) -> int:
        """``path`` (the journal or its lock file) opened for appending, created private to
        the user with the journal's folder when missing."""
        flags = access | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
        try:
            return os.open(path, flags, 0o600)
        except FileNotFoundError:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            return os.open(path, flags, 0o600)

    def _acquire(self) -> bool:
        """Take the other processes' lock (see the module docstring); False when it could not
        be had in :data:`LOCK_TIMEOUT` seconds or at all, and the append goes on without it."""
        import portalocker

        try:
            lock_file = self._open_lock_file()
        except OSError as error:
            _log.debug("no history lock (%s); appending without it", os_reason(error))
            return False
        flags = portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING
        deadline = time.monotonic() + LOCK_TIMEOUT
        pause = 0.001
        while True:
            try:
                portalocker.lock(lock_file, flags)
                return True
            except portalocker.AlreadyLocked:
                if time.monotonic() >= deadline:
                    _log.warning(
                        "the history lock %s was held for over %g s; appending without it",
                        self._lock_path,
                        LOCK_TIMEOUT,
                    )
                    return False
                time.sleep(pause)
                pause = min(pause * 2, 0.05)
            except (portalocker.LockException, OSError) as error:
                _log.debug("no history lock (%s); appending without it", error)
                return False

    def _release(self) -> None:
        import portalocker

        assert self._lock_file is not None
        try:
            portalocker.unlock(self._lock_file)
        except (portalocker.LockException, OSError) as error:  # closing the file drops it too
            _log.debug("the history lock could not be released (%s); closing it", error)
            self._lock_file.close()
            self._lock_file = None

    @property
    def _lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def _open_lock_file(self) -> BinaryIO:
        """The sidecar lock file, opened once per process: a child made by ``fork`` shares its
        parent's open file, and with it the parent's lock, so it opens its own."""
        if self._lock_file is not None and self._lock_file_pid == os.getpid():
            return self._lock_file
        lock_file = os.fdopen(self._open_private(self._lock_path, os.O_WRONLY), "ab")
        self._lock_file, self._lock_file_pid = lock_file, os.getpid()
        return lock_file

    def _records(self) -> list[dict[str, Any]]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            self.read_problem = None
            return []
        except OSError as error:
            self.read_problem = f"{self.path} cannot be read ({os_reason(error)})"
            return []
        self.read_problem = None
        records = []
        for line in raw.split(b"\n"):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (ValueError, UnicodeDecodeError):
                continue
            if isinstance(record, dict) and isinstance(record.get("request_id"), str):
                records.append(record)
        return records


_Item = TypeVar("_Item")


def _by_id(items: Mapping[str, _Item], wanted: str, what: str) -> _Item | None:
    """The item of id ``wanted``, else the one item whose id starts with it (None if none);
    ``ValueError`` for an empty id or a prefix that matches several."""
    if not wanted:
        raise ValueError(f"empty {what}")
    if wanted in items:
        return items[wanted]
    matches = [key for key in items if key.startswith(wanted)]
    if len(matches) > 1:
        shown = ", ".join(matches[:5])
        more = f" and {len(matches) - 5} more" if len(matches) > 5 else ""
        raise ValueError(f"{what} prefix {wanted!r} is ambiguous: it matches {shown}{more}")
    return items[matches[0]] if matches else None


def os_reason(error: OSError) -> str:
    """An ``OSError`` as a short reason: ``No space left on device``, not its whole repr."""
    return error.strerror or str(error) or type(error).__name__


def _last_byte(fd: int, size: int) -> bytes:
    try:
        os.lseek(fd, size - 1, os.SEEK_SET)
        return os.read(fd, 1)
    except OSError:
        return b"\n"


def _format_time(value: datetime | float | str | None) -> str:
    if value is None:
        moment = datetime.now(timezone.utc)
    elif isinstance(value, datetime):
        moment = value if value.tzinfo else value.astimezone()
    elif isinstance(value, (int, float)):
        moment = datetime.fromtimestamp(value, timezone.utc)
    else:
        parsed = _parse_time(value)
        if parsed is None:
            raise ValueError(f"not a time: {value!r}")
        moment = parsed
    return moment.isoformat(timespec="milliseconds")


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _json_default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    return text if len(text) <= MAX_DATA_URI_CHARS else text[:MAX_DATA_URI_CHARS] + "…"
