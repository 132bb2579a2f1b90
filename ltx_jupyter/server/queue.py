"""The request store and the bounded worker pool.

Requests wait in one queue ordered by priority (``normal`` before ``low``) then arrival;
``concurrency`` of them run at once, each on a worker thread so the event loop stays free.
Every change of a request (a state change, a new log line, a move in the queue) bumps its
version and wakes the status streams of that request only (:meth:`RequestQueue.wait_for_change`);
a move in the queue wakes the streams of the queued requests, whose positions changed. So a
change costs the streams that care about it, not every open stream.

All methods but the engine's logging run on the event loop's thread; log lines come from
worker threads and are appended under a lock. A record's fields are JSON-serialisable
(:meth:`RequestRecord.to_json`); the timers and thread pool live beside the records.

Every record is saved in the data directory (:meth:`Storage.save_request`) when it is queued,
starts, is asked to cancel and completes, before any answer names it. :meth:`RequestQueue.start`
reloads them, so a server killed and started again on the same data directory loses no request:
completed requests keep their results and files, queued ones wait in their old order, and
requests that were running start again from the beginning (their log starts again too).
"""

from __future__ import annotations

import asyncio
import bisect
import concurrent.futures
import contextlib
import copy
import functools
import logging
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from .engines.base import Engine, EngineCancelled, EngineError, EngineOutput
from .storage import Storage

__all__ = [
    "CANCELLED",
    "COMPLETED",
    "IN_PROGRESS",
    "IN_QUEUE",
    "LOG_LEVELS",
    "RequestQueue",
    "RequestRecord",
]

logger = logging.getLogger(__name__)

IN_QUEUE = "IN_QUEUE"
IN_PROGRESS = "IN_PROGRESS"
COMPLETED = "COMPLETED"

#: (error, error_type) a request ends with, by how it ended.
CANCELLED = ("Request was cancelled", "request_cancelled")
TIMED_OUT = ("Request timed out", "request_timeout")
DISCONNECTED = ("Runner disconnected", "runner_disconnected")

LOG_LEVELS = ("STDERR", "STDOUT", "ERROR", "INFO", "WARN", "DEBUG")
LOG_SOURCE = "engine"

CancelOutcome = Literal["requested", "already_completed", "not_found"]


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class RequestRecord:
    """One request: its input, where it is, its logs and how it ended (JSON-serialisable)."""

    request_id: str
    endpoint_id: str
    app_path: str
    input: dict[str, Any]
    base_url: str
    priority: str = "normal"
    seq: int = 0
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    completed_at: float | None = None
    start_timeout: float | None = None
    webhook_url: str | None = None
    runner_hint: str | None = None
    state: str = IN_QUEUE
    logs: list[dict[str, Any]] = field(default_factory=list)
    output: dict[str, Any] | None = None
    error: str | None = None
    error_type: str | None = None
    cancel_requested: bool = False

    def to_json(self) -> dict[str, Any]:
        """The record as plain JSON data."""
        return asdict(self)

    @property
    def inference_time(self) -> float | None:
        """Seconds from start to completion, or None if it never started."""
        if self.started_at is None or self.completed_at is None:
            return None
        return self.completed_at - self.started_at

    @property
    def request_url(self) -> str:
        """The result URL; status, stream and cancel URLs extend it."""
        return f"{self.base_url}/{self.app_path}/requests/{self.request_id}"


class _Task:
    """The :class:`~ltx_jupyter.server.engines.base.EngineTask` handed to an engine."""

    def __init__(self, queue: RequestQueue, record: RequestRecord, output_dir: Path) -> None:
        self._queue = queue
        self._record = record
        self.request_id = record.request_id
        self.endpoint_id = record.endpoint_id
        self.input = copy.deepcopy({**queue.defaults(record.endpoint_id), **record.input})
        self.output_dir = output_dir

    def log(self, message: str, level: str = "INFO") -> None:
        self._queue._append_log(self._record, message, level)

    def cancelled(self) -> bool:
        return self._record.cancel_requested or self._queue._closing

    def file_url(self, name: str) -> str:
        return f"{self._record.base_url}/files/{self.request_id}/{name}"

    def read_local_file(self, url: str) -> bytes | None:
        parsed = urllib.parse.urlsplit(url)
        own = urllib.parse.urlsplit(self._record.base_url)
        if parsed.scheme not in ("http", "https") or parsed.netloc != own.netloc:
            return None
        path = self._queue.storage.path_for_url_path(urllib.parse.unquote(parsed.path))
        if path is None:
            return None
        try:
            return path.read_bytes()
        except OSError:
            return None


class RequestQueue:
    """Holds every request and runs them on ``concurrency`` worker threads.

    ``on_complete`` is called on the event loop with each record as it completes (the app
    sends webhooks from it).
    """

    def __init__(
        self,
        engine: Engine,
        storage: Storage,
        *,
        concurrency: int = 2,
        on_complete: Callable[[RequestRecord], None] | None = None,
        defaults: Callable[[str], Mapping[str, Any]] | None = None,
    ) -> None:
        self.engine = engine
        #: The input defaults of an endpoint: an engine sees the input as the endpoint runs it.
        self.defaults = defaults or (lambda endpoint_id: {})
        self.storage = storage
        self.concurrency = concurrency
        self.on_complete = on_complete
        self._versions: dict[str, int] = {}
        self._records: dict[str, RequestRecord] = {}
        self._pending: list[RequestRecord] = []
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._lock = threading.Lock()
        self._logged: set[str] = set()  # requests with log lines their streams have not seen
        self._seq = 0
        self._closing = False
        self._streams_closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._saving: set[asyncio.Future[None]] = set()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._work = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Reload the saved requests, then start the workers on the running loop."""
        self._loop = asyncio.get_running_loop()
        self._restore()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.concurrency, thread_name_prefix="ltx-engine"
        )
        self._workers = [
            asyncio.create_task(self._worker(), name=f"ltx-worker-{i}")
            for i in range(self.concurrency)
        ]

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop: running engines are told to cancel. Nothing is marked failed: running and
        queued requests stay saved as they were, and a server started again on the same data
        directory runs them."""
        self._closing = True
        self._work.set()
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        still_running: set[asyncio.Task[None]] = set()
        if self._workers:
            _, still_running = await asyncio.wait(self._workers, timeout=timeout)
            for task in still_running:
                task.cancel()
            await asyncio.gather(*self._workers, return_exceptions=True)
        if self._executor is not None:
            # Joining is instant when every engine returned; an engine stuck past the timeout
            # is left to finish on its own rather than block the loop.
            self._executor.shutdown(wait=not still_running, cancel_futures=True)
        if self._saving:
            await asyncio.wait(set(self._saving), timeout=timeout)
        self._wake(list(self._waiters))

    @property
    def closing(self) -> bool:
        """True once :meth:`stop` or :meth:`close_streams` was called: streams should end."""
        return self._closing or self._streams_closed

    def close_streams(self) -> None:
        """Wake every status stream so it ends: the server is shutting down."""
        self._streams_closed = True
        self._wake(list(self._waiters))

    # -- queries -----------------------------------------------------------------------------

    def get(self, request_id: str) -> RequestRecord | None:
        """The record of ``request_id``, or None."""
        return self._records.get(request_id)

    def queue_position(self, record: RequestRecord) -> int | None:
        """0 for the next request to start; None unless ``record`` is queued."""
        if record.state != IN_QUEUE:
            return None
        try:
            return self._pending.index(record)
        except ValueError:
            return None

    def logs(self, record: RequestRecord, start: int = 0) -> list[dict[str, Any]]:
        """A copy of the record's log entries from index ``start``."""
        with self._lock:
            return record.logs[start:]

    def counts(self) -> dict[str, int]:
        """How many requests are in each state."""
        result = {IN_QUEUE: 0, IN_PROGRESS: 0, COMPLETED: 0}
        for record in self._records.values():
            result[record.state] += 1
        return result

    def version(self, record: RequestRecord) -> int:
        """A counter that changes whenever ``record`` (its state, log or position) changes."""
        return self._versions.get(record.request_id, 0)

    async def wait_for_change(
        self, record: RequestRecord, version: int, timeout: float | None
    ) -> int:
        """Wait until ``record``'s version differs from ``version`` (or ``timeout``)."""
        if self.version(record) != version or self.closing:
            return self.version(record)
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        waiters = self._waiters.setdefault(record.request_id, set())
        waiters.add(waiter)
        # The change (or the timer) resolves the awaited future itself: the stream's task
        # wakes on the next turn of the loop, one turn sooner than through asyncio.wait.
        timer = loop.call_later(timeout, _resolve, waiter) if timeout is not None else None
        try:
            await waiter
        finally:
            if timer is not None:
                timer.cancel()
            waiters.discard(waiter)
            if not waiters and self._waiters.get(record.request_id) is waiters:
                del self._waiters[record.request_id]
        return self.version(record)

    # -- commands ----------------------------------------------------------------------------

    def submit(
        self,
        endpoint_id: str,
        app_path: str,
        data: dict[str, Any],
        *,
        base_url: str,
        priority: str = "normal",
        start_timeout: float | None = None,
        webhook_url: str | None = None,
        runner_hint: str | None = None,
    ) -> RequestRecord:
        """Queue a request and return its record."""
        self._seq += 1
        record = RequestRecord(
            request_id=str(uuid.uuid4()),
            endpoint_id=endpoint_id,
            app_path=app_path,
            input=copy.deepcopy(data),
            base_url=base_url.rstrip("/"),
            priority=priority,
            seq=self._seq,
            start_timeout=start_timeout,
            webhook_url=webhook_url,
            runner_hint=runner_hint,
        )
        self._save(record)
        self._records[record.request_id] = record
        bisect.insort(self._pending, record, key=self._order)
        if start_timeout is not None:
            assert self._loop is not None, "the queue is not started"
            self._timers[record.request_id] = self._loop.call_later(
                start_timeout, self._expire, record.request_id
            )
        self._bump(record, queue_moved=True)
        self._work.set()
        return record

    def cancel(self, request_id: str) -> CancelOutcome:
        """Cancel a queued request at once, or ask a running one to stop at its next step."""
        record = self._records.get(request_id)
        if record is None:
            return "not_found"
        if record.state == COMPLETED:
            return "already_completed"
        record.cancel_requested = True
        if record.state == IN_QUEUE:
            self._drop_pending(record)
            self._finish(record, error=CANCELLED)
        else:
            self._save(record)
            self._bump(record)
        return "requested"

    # -- persistence -------------------------------------------------------------------------

    def _save(self, record: RequestRecord) -> None:
        with self._lock:  # engine threads append log lines concurrently
            data = record.to_json()
        self.storage.save_request(record.request_id, data)

    def _save_aside(self, record: RequestRecord) -> None:
        """Save a completed record on a thread: the write and its ``fsync`` then hold up
        neither the streams announcing the completion nor the result fetch that follows.
        Nothing saves a record after its completion, so this write races no other;
        :meth:`stop` waits for it."""
        loop = self._loop
        if loop is None or not loop.is_running():
            self._save(record)
            return
        saving = loop.run_in_executor(None, self._save, record)
        self._saving.add(saving)
        saving.add_done_callback(functools.partial(self._saved, record.request_id))

    def _saved(self, request_id: str, saving: asyncio.Future[None]) -> None:
        self._saving.discard(saving)
        if not saving.cancelled() and saving.exception() is not None:
            logger.error("could not save request %s: %s", request_id, saving.exception())

    def _restore(self) -> None:
        """Load the saved records: completed ones as they were, the others queued again."""
        known = {f.name for f in fields(RequestRecord)}
        loaded = []
        for data in self.storage.load_requests():
            try:
                record = RequestRecord(**{k: v for k, v in data.items() if k in known})
            except TypeError as error:
                logger.warning("skipping request record %s: %s", data.get("request_id"), error)
                continue
            loaded.append(record)
        now = time.time()
        for record in sorted(loaded, key=lambda r: r.seq):
            self._records[record.request_id] = record
            self._seq = max(self._seq, record.seq)
            if record.state == COMPLETED:
                continue
            was_running = record.state == IN_PROGRESS
            record.state, record.started_at, record.logs = IN_QUEUE, None, []
            if record.cancel_requested:
                self._finish(record, error=CANCELLED)
                continue
            if record.start_timeout is not None and not was_running:
                left = record.created_at + record.start_timeout - now
                if left <= 0:
                    self._finish(record, error=TIMED_OUT)
                    continue
                assert self._loop is not None
                self._timers[record.request_id] = self._loop.call_later(
                    left, self._expire, record.request_id
                )
            self._pending.append(record)
            self._save(record)
        self._pending.sort(key=self._order)
        if loaded:
            logger.info("restored %d request(s), %d queued to run", len(loaded), len(self._pending))
            self._work.set()

    # -- internals ---------------------------------------------------------------------------

    @staticmethod
    def _order(record: RequestRecord) -> tuple[int, int]:
        return (1 if record.priority == "low" else 0, record.seq)

    def _bump(self, record: RequestRecord, *, queue_moved: bool = False) -> None:
        """Note a change of ``record`` and wake its streams (and the queued requests' streams
        when positions in the queue moved)."""
        changed = [record.request_id]
        if queue_moved:
            changed += [r.request_id for r in self._pending]
        self._wake(changed)

    def _wake(self, request_ids: list[str]) -> None:
        for request_id in request_ids:
            self._versions[request_id] = self._versions.get(request_id, 0) + 1
            for waiter in self._waiters.pop(request_id, ()):
                _resolve(waiter)

    def _flush_logged(self) -> None:
        with self._lock:
            logged, self._logged = self._logged, set()
        self._wake(list(logged))

    def _append_log(self, record: RequestRecord, message: str, level: str) -> None:
        level = level.upper()
        if level not in LOG_LEVELS:
            level = "WARN" if level == "WARNING" else "INFO"
        entry = {
            "message": str(message),
            "level": level,
            "source": LOG_SOURCE,
            "timestamp": _now_iso(),
        }
        with self._lock:
            record.logs.append(entry)
            first = not self._logged
            self._logged.add(record.request_id)
            if not first or self._loop is None:
                return
        # Many lines logged in a burst share one wake-up of the streams. A closed loop means
        # the server is gone and nobody listens.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._flush_logged)

    def _drop_pending(self, record: RequestRecord) -> None:
        with contextlib.suppress(ValueError):
            self._pending.remove(record)
            self._bump(record, queue_moved=True)
        handle = self._timers.pop(record.request_id, None)
        if handle is not None:
            handle.cancel()

    def _expire(self, request_id: str) -> None:
        self._timers.pop(request_id, None)
        record = self._records.get(request_id)
        if record is not None and record.state == IN_QUEUE:
            self._drop_pending(record)
            self._finish(record, error=TIMED_OUT)

    def _finish(
        self,
        record: RequestRecord,
        *,
        output: dict[str, Any] | None = None,
        error: tuple[str, str] | None = None,
    ) -> None:
        record.state = COMPLETED
        record.completed_at = time.time()
        record.output = output
        if error is not None:
            record.error, record.error_type = error
        # Streams first, then the disk: a client waits on the announcement, while the saved
        # record only matters to a restarted server.
        self._bump(record)
        self._save_aside(record)
        if self.on_complete is not None:
            try:
                self.on_complete(record)
            except Exception:
                logger.exception("on_complete failed for request %s", record.request_id)

    async def _worker(self) -> None:
        while not self._closing:
            if not self._pending:
                self._work.clear()
                await self._work.wait()
                continue
            record = self._pending.pop(0)
            await self._run(record)

    async def _run(self, record: RequestRecord) -> None:
        handle = self._timers.pop(record.request_id, None)
        if handle is not None:
            handle.cancel()
        record.state = IN_PROGRESS
        record.started_at = time.time()
        self._save(record)
        self._bump(record, queue_moved=True)
        assert self._loop is not None and self._executor is not None
        try:
            task = _Task(self, record, self.storage.output_dir(record.request_id))
            result = await self._loop.run_in_executor(self._executor, self.engine.run, task)
        except EngineCancelled:
            if self._closing and not record.cancel_requested:
                return  # stopped by a shutdown: saved as running, so it runs again at restart
            self._finish(record, error=CANCELLED if record.cancel_requested else DISCONNECTED)
        except EngineError as exc:
            self._finish(record, error=(str(exc) or type(exc).__name__, exc.error_type))
        except asyncio.CancelledError:
            if not self._closing or record.cancel_requested:
                self._finish(record, error=CANCELLED if record.cancel_requested else DISCONNECTED)
            raise
        except Exception as exc:
            logger.exception("engine failed on request %s", record.request_id)
            self._append_log(record, f"{type(exc).__name__}: {exc}", "ERROR")
            self._finish(record, error=(f"{type(exc).__name__}: {exc}", "internal_error"))
        else:
            if isinstance(result, EngineOutput):
                # A cancel that came after the engine's last check keeps the output, as fal
                # does for a request that was nearly done.
                self._finish(record, output=result.output)
            else:
                self._finish(record, error=("engine returned no output", "internal_error"))


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
