"""Jobs: one request to an LTX endpoint, followed on the runner, and the session that owns them.

A :class:`Job` holds everything known about its request: status, every log line, progress,
timings, the result or the error. It is updated on the runner thread only. Scalar state (status,
progress, result, error) is replaced whole, so a reader on another thread sees either the old
or the new value. ``logs`` is one list that only grows: the runner appends each entry, and a
reader takes ``job.logs[n:]`` (a list slice is atomic under the GIL) to get the lines it has not
seen. The job holds no display code: views and outputs are built from it elsewhere
(``_views``, ``_display``). A :class:`JobSession` starts jobs (validating their input first,
before any request), writes each request id to the history journal the moment its submit
answers, resumes requests by id, and shuts down cleanly.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import enum
import hashlib
import itertools
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from ._client import QueueClient
from ._errors import (
    HTTPError,
    LtxError,
    MissingCredentialsError,
    ProtocolError,
    RequestCancelledError,
)
from ._fal import (
    credentials_from_env,
    default_openapi_url,
    default_platform_url,
    default_queue_url,
    default_storage_url,
    is_fal_url,
    split_endpoint_id,
    submit_headers,
)
from ._history import TERMINAL_STATUSES, HistoryEntry, HistoryStore, os_reason
from ._listeners import Listeners
from ._models import Completed, InProgress, LogEntry, Queued, RequestHandle, UploadProgress
from ._progress import parse_progress
from ._runner import Runner, async_wrap, get_runner, shutdown_runner, wait_future
from ._schema import ValidatedInput, VideoResult, parse_output, validate_input

if TYPE_CHECKING:
    from ._pricing import Estimate, Prices

__all__ = [
    "STATUS_READ_TIMEOUT",
    "ConcurrencyLimit",
    "Job",
    "JobOptions",
    "JobSession",
    "JobStatus",
    "RemoteStatus",
]

Listener = Callable[["Job"], None]
#: Seconds the session keeps the unit prices it looked up.
_PRICES_KEPT = 600.0
_log = logging.getLogger(__name__)


class JobStatus(str, enum.Enum):
    """Where a job is. fal has no failed or cancelled status on the wire; these are derived."""

    #: Held back in the client until fewer than its :class:`ConcurrencyLimit` are in flight.
    WAITING = "waiting"
    SUBMITTING = "submitting"
    UPLOADING = "uploading"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DETACHED = "detached"

    @property
    def finished(self) -> bool:
        """Whether the job has ended here (a detached job may still run remotely)."""
        return self in _FINISHED

    def __str__(self) -> str:
        return self.value


_FINISHED = frozenset(
    {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.DETACHED}
)


@dataclass(frozen=True)
class JobOptions:
    """How a job is submitted and finished: the client deadline, queue options, saving."""

    timeout: float | None = None
    priority: str | None = None
    webhook_url: str | None = None
    save_dir: str | None = None
    embed: bool = False


_local_ids = itertools.count(1)

#: Seconds ``%ltx jobs`` waits for the server's word on requests it does not follow.
STATUS_READ_TIMEOUT = 5.0
#: The most requests whose status one ``%ltx jobs`` reads (the newest), and how many at once.
MAX_STATUS_READS = 50
_STATUS_READS_AT_ONCE = 16
#: The server's states, as the words a job's status uses.
_STATE_WORDS = {"IN_QUEUE": "queued", "IN_PROGRESS": "running", "COMPLETED": "completed"}


@dataclass(frozen=True)
class RemoteStatus:
    """What the server says of a request this session does not follow: a status word
    (``queued``, ``running``, ``completed``, ``failed``, ``cancelled``, or ``unknown`` when
    it could not be read) and, for a completed one, its video."""

    status: str
    video_url: str | None = None
    seed: int | None = None
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES


class ConcurrencyLimit:
    """At most ``size`` jobs in flight at once (submitted and not yet ended); the others wait
    their turn in the client, in the order they were started, so the server never sees more.

    It is a semaphore on the runner's event loop (a new one if the runner is restarted);
    jobs share a limit by being started with the same one.
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"a concurrency limit must be at least 1, got {size}")
        self.size = size
        self._loop: asyncio.AbstractEventLoop | None = None
        self._semaphore: asyncio.Semaphore | None = None

    def semaphore(self) -> asyncio.Semaphore:
        """The semaphore of the running loop (call on the runner thread)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._semaphore is None:
            self._loop, self._semaphore = loop, asyncio.Semaphore(self.size)
        return self._semaphore

    def __repr__(self) -> str:
        return f"ConcurrencyLimit({self.size})"


class Job:
    """One request to an LTX endpoint.

    ``job.wait()`` blocks until it ends (an interrupt cancels the remote request), ``await job``
    does the same in an async cell, ``job.cancel()`` asks the server to cancel, ``job.result``
    is the :class:`VideoResult` once completed and ``job.save(path)`` downloads the video. In a
    notebook with the extension loaded, a job shown as a cell's value is its video.
    """

    def __init__(
        self,
        session: JobSession,
        endpoint: str,
        arguments: Mapping[str, Any] | ValidatedInput,
        options: JobOptions,
        *,
        client: QueueClient,
        request_id: str | None = None,
        limit: ConcurrencyLimit | None = None,
    ) -> None:
        self.session = session
        self.endpoint = endpoint
        self._validated = arguments if isinstance(arguments, ValidatedInput) else None
        self.input: dict[str, Any] = dict(
            arguments.arguments if isinstance(arguments, ValidatedInput) else arguments
        )
        self.options = options
        self.local_id = next(_local_ids)
        self.request_id = request_id
        self.status = JobStatus.SUBMITTING if request_id is None else JobStatus.QUEUED
        self.queue_position: int | None = None
        self.logs: list[LogEntry] = []
        self.progress: tuple[int, int] | None = None
        # 1, and one more each time the log's step count starts over (a 13B model's second
        # pass, or denoising after a bar that counted shards), so a bar that restarts says why.
        self.progress_stage = 1
        self.metrics: dict[str, Any] = {}
        self.created_at = time.time()
        self.submitted_at: float | None = None
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.result: VideoResult | None = None
        self.error: BaseException | None = None
        self.saved_path: Path | None = None
        #: The video's bytes, downloaded when the job finished, for jobs started with ``embed``.
        self.video_bytes: bytes | None = None
        self.cancel_requested = False
        #: What the job is estimated to cost (set by the session; None for a resumed job).
        self.estimate: Estimate | None = None
        #: Advice about the input (a prompt longer than the endpoint's guide), not errors.
        self.warnings: tuple[str, ...] = self._validated.warnings if self._validated else ()
        #: What the user should know that happened while it ran (the request id not saved).
        self.notes: tuple[str, ...] = ()
        #: ``(sent, total)`` bytes of the local file being uploaded, while one is.
        self.upload: tuple[int, int] | None = None
        self._client = client
        self._listeners: Listeners[Listener] = Listeners()
        self._future: concurrent.futures.Future[VideoResult] | None = None
        self._limit = limit
        self._stop_waiting: asyncio.Event | None = None

    # -- reading ----------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.status.finished

    @property
    def elapsed(self) -> float:
        """Seconds from creation to the end (or to now while it runs)."""
        return (self.finished_at or time.time()) - self.created_at

    @property
    def run_time(self) -> float | None:
        """Seconds the request ran on the server side, as seen from here."""
        if self.started_at is None:
            return None
        return (self.finished_at or time.time()) - self.started_at

    @property
    def parameters(self) -> dict[str, Any]:
        """The input as the endpoint runs it: what was sent, over the endpoint's defaults."""
        if self._validated is not None:
            return self._validated.with_defaults()
        return dict(self.input)

    @property
    def prompt(self) -> str:
        prompt = self.input.get("prompt")
        return prompt if isinstance(prompt, str) else ""

    @property
    def short_id(self) -> str:
        return (self.request_id or f"local-{self.local_id}")[:8]

    def status_line(self) -> str:
        """One line saying where the job is, for text frontends and reprs."""
        parts = [f"ltx {self.short_id}", str(self.status)]
        if self.status == JobStatus.UPLOADING and self.upload is not None:
            sent, total = self.upload
            parts[1] = f"uploading {sent / 1e6:.1f} / {total / 1e6:.1f} MB"
        if self.status == JobStatus.QUEUED and self.queue_position is not None:
            parts.append(f"position {self.queue_position}")
        if self.progress and self.status == JobStatus.RUNNING:
            done, total = self.progress
            parts.append(f"{self.progress_text} ({100 * done // total}%)")
        parts.append(f"{self.elapsed:.1f}s")
        if self.result is not None:
            parts.append(self.result.url)
        elif self.error is not None and self.status != JobStatus.CANCELLED:
            parts.append(str(self.error))
        return " · ".join(parts)

    @property
    def progress_text(self) -> str | None:
        """The step count the log last gave (``step 12/30``), with its stage in front once a
        count started over (``stage 2 · step 3/8``); None before any."""
        if self.progress is None:
            return None
        done, total = self.progress
        stage = f"stage {self.progress_stage} · " if self.progress_stage > 1 else ""
        return f"{stage}step {done}/{total}"

    def __repr__(self) -> str:
        return f"<Job {self.status_line()}>"

    # -- listening -------------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(job)`` on the runner thread after every change of this job."""
        self._listeners.add(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            try:
                listener(self)
            except Exception:  # a broken view must not stop the job
                _log.exception("job listener failed")

    # -- running (on the runner thread) ------------------------------------------------------

    def _start(self, runner: Runner, resume: bool = False) -> None:
        self._future = runner.submit(self._run(resume))

    async def _run(self, resume: bool) -> VideoResult:
        client = self._client
        slot: asyncio.Semaphore | None = None
        try:
            if self._limit is not None and not resume:
                slot = await self._wait_for_slot(self._limit.semaphore())
            if resume:
                assert self.request_id is not None
                updates = client.follow(
                    self.endpoint, self.request_id, timeout=self.options.timeout
                )
            else:
                updates = client.subscribe(
                    self.endpoint,
                    self._validated or self.input,
                    timeout=self.options.timeout,
                    priority=self.options.priority,  # type: ignore[arg-type]
                    webhook_url=self.options.webhook_url,
                    on_submit=self._on_submit,
                    on_upload=self._on_upload,
                )
            try:
                async for update in updates:
                    self._apply(update)
                    if isinstance(update, Completed):
                        break  # the result is in hand: what is left is tidying up
            finally:
                _close_later(updates)
            if self.result is None:
                raise LtxError("the run ended without a result")
            if self.options.save_dir:
                await self._save(self._default_save_path(self.options.save_dir))
            if self.options.embed:
                await self._fetch_for_embedding()
            return self.result
        except asyncio.CancelledError:
            # Local shutdown (``%unload_ext``): the remote request goes on; the id is in history.
            self.status = JobStatus.DETACHED
            self.finished_at = time.time()
            self._changed()
            raise
        except Exception as error:
            self.error = error
            self.status = (
                JobStatus.CANCELLED
                if isinstance(error, RequestCancelledError)
                else JobStatus.FAILED
            )
            self.finished_at = time.time()
            self._record_end()
            self._changed()
            raise
        finally:
            if slot is not None:
                slot.release()

    async def _wait_for_slot(self, semaphore: asyncio.Semaphore) -> asyncio.Semaphore:
        """Wait (status ``waiting``) until the limit lets this job in; a cancel meanwhile
        ends it without sending anything."""
        self._stop_waiting = asyncio.Event()
        if not self.cancel_requested and not semaphore.locked():
            await semaphore.acquire()  # a free slot is taken without waiting
            return semaphore
        self.status = JobStatus.WAITING
        self._changed()
        acquire = asyncio.ensure_future(semaphore.acquire())
        stop = asyncio.ensure_future(self._stop_waiting.wait())
        try:
            if not self.cancel_requested:
                await asyncio.wait({acquire, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not acquire.done():
                acquire.cancel()
            elif not acquire.cancelled() and self.cancel_requested:
                semaphore.release()
        if self.cancel_requested:
            raise RequestCancelledError("cancelled while waiting for its turn; never sent")
        if self.status == JobStatus.WAITING:
            self.status = JobStatus.SUBMITTING
            self._changed()
        return semaphore

    def _wake_from_waiting(self) -> None:
        if self._stop_waiting is not None:
            self._stop_waiting.set()

    def _on_upload(self, progress: UploadProgress) -> None:
        uploading = progress.sent < progress.total
        self.upload = (progress.sent, progress.total) if uploading else None
        self.status = JobStatus.UPLOADING if uploading else JobStatus.SUBMITTING
        self._changed()

    def _on_submit(self, handle: RequestHandle) -> None:
        submitted_at = time.time()
        # The journal first: whoever sees the job's request id can find it in the history.
        try:
            self.session.history.record_submit(
                handle.request_id,
                self.endpoint,
                self.input,
                self._client.queue_url,
                submitted_at=submitted_at,
                status=str(JobStatus.QUEUED),
                cost=self.estimate.amount if self.estimate is not None else None,
                currency=self.estimate.currency if self.estimate is not None else None,
            )
        except Exception as error:  # any failure: the request is queued and paid for, it runs
            note = self.session._history_failed(error)
            if note is not None:
                self.notes = (*self.notes, note)
        self.request_id = handle.request_id
        self.submitted_at = submitted_at
        self.status = JobStatus.QUEUED
        self.queue_position = handle.queue_position
        if self.cancel_requested:
            self._spawn_cancel()
        self._changed()

    def _apply(self, update: Queued | InProgress | Completed) -> None:
        if isinstance(update, Queued):
            self.request_id = self.request_id or update.request_id
            self.status = JobStatus.QUEUED
            self.queue_position = update.position
        elif isinstance(update, InProgress):
            if self.status != JobStatus.RUNNING:
                self.status = JobStatus.RUNNING
                self.started_at = self.started_at or time.time()
            self._add_logs(update.logs)
        else:
            self._add_logs(update.logs)
            self.metrics = dict(update.metrics)
            self.result = parse_output(update.output, request_id=update.request_id)
            self.status = JobStatus.COMPLETED
            self.finished_at = time.time()
            self.started_at = self.started_at or self.finished_at
            self._record_end()
        self._changed()

    def _add_logs(self, entries: tuple[LogEntry, ...]) -> None:
        if not entries:
            return
        received: str | None = None  # fal stamps its lines; the clock is read only if not
        for entry in entries:
            if entry.timestamp is None:
                if received is None:
                    received = datetime.now(timezone.utc).isoformat()
                entry = LogEntry(entry.message, entry.level, entry.source, received)
            self.logs.append(entry)
            step = parse_progress(entry.message)
            if step is not None:
                if self.progress is not None and (
                    step[0] < self.progress[0] or step[1] != self.progress[1]
                ):
                    self.progress_stage += 1
                self.progress = step

    def _record_end(self) -> None:
        if self.request_id is None:
            return
        fields: dict[str, Any] = {"status": str(self.status), "duration": self.elapsed}
        if self.result is not None:
            fields.update(video_url=self.result.url, seed=self.result.seed)
        if self.error is not None:
            fields["error"] = str(self.error)
        # The submit line is on disk already; a lost end line only shows the job as queued.
        with contextlib.suppress(OSError):
            self.session.history.record_update(self.request_id, **fields)

    # -- acting (from any thread) --------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> VideoResult:
        """Block until the job ends and return its result (or raise its error).

        A ``KeyboardInterrupt`` (the kernel's interrupt) while waiting cancels the remote
        request and is raised again, so "Run All" stops. ``timeout`` only bounds this wait
        (``TimeoutError``); the job goes on.
        """
        assert self._future is not None
        try:
            return wait_future(self._future, timeout)
        except KeyboardInterrupt:
            self.cancel()
            raise

    def __await__(self) -> Generator[Any, None, VideoResult]:
        assert self._future is not None
        return _await_future(self._future).__await__()

    def cancel(self) -> concurrent.futures.Future[str] | None:
        """Ask the server to cancel the request (at once if it is already submitted).

        Returns a future for the server's answer (``CANCELLATION_REQUESTED`` or
        ``ALREADY_COMPLETED``), or None when the submit has not answered yet: the cancel is
        then sent the moment it does.
        """
        if self.done:
            return None
        self.cancel_requested = True
        if self.request_id is None:
            if self._limit is not None:
                self.session.runner.call_soon(self._wake_from_waiting)
            return None
        return self._spawn_cancel()

    def _spawn_cancel(self) -> concurrent.futures.Future[str]:
        assert self.request_id is not None
        return self.session.runner.submit(self._client.cancel(self.endpoint, self.request_id))

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Download the video to ``path`` (a file, or a folder for ``ltx-<request id>.mp4``)
        and return where it went. Blocks until the job has ended."""
        if self.result is None:
            self.wait()
        return wait_future(self.save_async(path))

    def save_async(
        self, path: str | os.PathLike[str] | None = None
    ) -> concurrent.futures.Future[Path]:
        """Like :meth:`save` for a completed job, without blocking: a future for the path."""
        if self.result is None:
            raise LtxError(f"job {self.short_id} has no video to save yet ({self.status})")
        target = Path(path) if path is not None else Path(".")
        if target.is_dir() or path is None or str(path).endswith(("/", os.sep)):
            target = self._default_save_path(target)
        return self.session.runner.submit(self._save(target))

    def _default_save_path(self, folder: str | os.PathLike[str]) -> Path:
        return Path(folder) / f"ltx-{self.request_id or self.local_id}.mp4"

    async def _save(self, target: Path) -> Path:
        assert self.result is not None
        saved = await self._client.download(self.result.url, target)
        self.saved_path = saved
        self._changed()
        return saved

    async def _fetch_for_embedding(self) -> None:
        """Download the video for ``embed`` on the runner, so showing it never downloads on
        the kernel thread. A failed download leaves the video shown by URL, with a note."""
        assert self.result is not None
        try:
            if self.saved_path is not None:
                self.video_bytes = await asyncio.to_thread(self.saved_path.read_bytes)
            else:
                self.video_bytes = await self._client.read_file(self.result.url)
        except (LtxError, OSError, httpx.HTTPError) as error:
            self.warnings = (*self.warnings, f"the video could not be embedded: {error}")
        self._changed()

    def fetch_bytes(self) -> bytes:
        """The video's bytes, downloaded (blocking)."""
        if self.result is None:
            self.wait()
        assert self.result is not None
        return wait_future(self.session.runner.submit(self._client.read_file(self.result.url)))


#: Updates being closed in the background (a task needs a reference to finish).
_closing: set[asyncio.Task[None]] = set()


def _close_later(updates: AsyncIterator[Any]) -> None:
    """Close a job's update stream on the loop without waiting for it: reading the status
    stream to its end (so its connection is reused) must not delay the result."""
    task = asyncio.ensure_future(updates.aclose())  # type: ignore[attr-defined]
    _closing.add(task)
    task.add_done_callback(_closing.discard)


async def _await_future(future: concurrent.futures.Future[VideoResult]) -> VideoResult:
    return await async_wrap(future)


class JobSession:
    """The jobs of one kernel session: their clients, the history journal and the runner."""

    def __init__(
        self, *, history: HistoryStore | None = None, runner: Runner | None = None
    ) -> None:
        self.history = history or HistoryStore()
        self._own_runner = runner
        self._clients: dict[tuple[str, str, str], QueueClient] = {}
        self._prices: dict[tuple[str, tuple[str, ...]], tuple[float, Prices]] = {}
        self._lock = threading.Lock()
        self.jobs: list[Job] = []
        #: Why request ids are not being saved (the first failed journal write), if they are not.
        self.history_problem: str | None = None

    @property
    def runner(self) -> Runner:
        """The given runner, else the process-wide one (started on first use)."""
        if self._own_runner is not None:
            self._own_runner.start()
            return self._own_runner
        return get_runner()

    def client(self, queue_url: str | None = None, storage_url: str | None = None) -> QueueClient:
        """The pooled client for these URLs (created once; closed when the runner stops)."""
        queue = (queue_url or default_queue_url()).rstrip("/")
        storage = (storage_url or default_storage_url(queue)).rstrip("/")
        key = credentials_from_env()
        if key is None and is_fal_url(queue):
            raise MissingCredentialsError()
        fingerprint = hashlib.sha256((key or "").encode()).hexdigest()
        with self._lock:
            client = self._clients.get((queue, storage, fingerprint))
            if client is None:
                client = QueueClient(key, queue_url=queue, storage_url=storage)
                self._clients[(queue, storage, fingerprint)] = client
                self.runner.add_shutdown_hook(client.aclose)
            return client

    def validate(
        self, endpoint: str, arguments: Mapping[str, Any], queue_url: str | None = None
    ) -> ValidatedInput:
        """``arguments`` checked against the endpoint's schema (:class:`InputError` if bad);
        a schema not shipped nor cached is fetched beside ``queue_url``'s server."""
        submit_path, _ = split_endpoint_id(endpoint)
        return validate_input(submit_path, arguments, url=default_openapi_url(queue_url))

    def prices(
        self, endpoint_ids: Sequence[str], queue_url: str | None = None, *, refresh: bool = False
    ) -> Prices:
        """Unit prices for these endpoints (fal's pricing API with the user's key, its day
        cache, else the shipped table), kept for a few minutes so that jobs do not re-read
        them: a kept lookup that answered for all of ``endpoint_ids`` (the panel's, for every
        known endpoint) answers for them. ``refresh`` asks the API now and drops the kept
        lookups, whatever the day cache holds or a failure a moment ago."""
        from ._pricing import get_prices

        platform = default_platform_url((queue_url or default_queue_url()).rstrip("/"))
        now = time.monotonic()
        with self._lock:
            if refresh:
                self._prices.clear()
            kept = [
                prices
                for (where, _ids), (at, prices) in self._prices.items()
                if where == platform and now - at < _PRICES_KEPT
            ]
        for prices in kept if endpoint_ids else ():
            if prices.covers(endpoint_ids):
                return prices
        key = (platform, tuple(endpoint_ids))
        prices = get_prices(endpoint_ids, platform_url=platform, refresh=refresh)
        with self._lock:
            self._prices[key] = (now, prices)
        return prices

    def estimate(self, validated: ValidatedInput, queue_url: str | None = None) -> Estimate:
        """What running ``validated`` will cost, from its input with the endpoint's defaults
        (an amount of None says "price unknown" and why)."""
        prices = self.prices([validated.endpoint_id], queue_url)
        return prices.estimate(validated.endpoint_id, validated.with_defaults())

    def start(
        self,
        endpoint: str,
        arguments: Mapping[str, Any] | ValidatedInput,
        options: JobOptions | None = None,
        *,
        queue_url: str | None = None,
        storage_url: str | None = None,
        estimate: Estimate | None = None,
        limit: ConcurrencyLimit | None = None,
    ) -> Job:
        """Validate the input and start a job; returns at once.

        Invalid input, options or a missing key raise here, before any request is sent. An
        input already validated (a :class:`ValidatedInput`, as the magic passes) is not
        checked again. ``estimate`` is the job's price estimate when the caller made one
        already (the session makes it otherwise). A job started with a ``limit`` waits in the
        client while that many jobs sharing it are in flight.
        """
        options = options or JobOptions()
        submit_path, _ = split_endpoint_id(endpoint)
        if isinstance(arguments, ValidatedInput) and arguments.endpoint_id == submit_path:
            validated = arguments
        else:
            # On the kernel thread, before the hand-off: a bad input raises in the caller's cell.
            validated = self.validate(submit_path, arguments, queue_url)
        submit_headers(options.webhook_url, options.priority, None, None)
        client = self.client(queue_url, storage_url)
        job = Job(self, submit_path, validated, options, client=client, limit=limit)
        job.estimate = estimate if estimate is not None else self.estimate(validated, queue_url)
        self.jobs.append(job)
        job._start(self.runner)
        return job

    def resume(
        self,
        request_id: str,
        *,
        endpoint: str | None = None,
        queue_url: str | None = None,
        storage_url: str | None = None,
        options: JobOptions | None = None,
    ) -> Job:
        """Attach to a request submitted earlier (found by id or id prefix in the history).

        The history's endpoint and queue URL win; ``endpoint`` and ``queue_url`` serve for a
        request the history does not hold.
        """
        entry: HistoryEntry | None = self.history.get(request_id)
        if entry is not None:
            request_id = entry.request_id
            endpoint = entry.endpoint or endpoint
            queue_url = entry.queue_url or queue_url
        if not endpoint:
            raise LtxError(
                f"request {request_id} is not in the history ({self.history.path}); "
                "give its endpoint to resume it"
            )
        split_endpoint_id(endpoint)
        client = self.client(queue_url, storage_url)
        arguments = entry.input if entry is not None else {}
        job = Job(
            self, endpoint, arguments, options or JobOptions(), client=client, request_id=request_id
        )
        if entry is not None and entry.submitted_at is not None:
            job.created_at = job.submitted_at = entry.submitted_at.timestamp()
        self.jobs.append(job)
        job._start(self.runner, resume=True)
        return job

    def _history_failed(self, error: BaseException) -> str | None:
        """Note that the journal could not be written; the one-line note for the user the
        first time in this session, None after that."""
        reason = os_reason(error) if isinstance(error, OSError) else str(error)
        if not isinstance(error, OSError):
            _log.error("the history journal could not be written", exc_info=error)
        with self._lock:
            if self.history_problem is not None:
                return None
            self.history_problem = f"{self.history.path}: {reason}"
        return (
            f"request ids are not being saved to the history ({self.history_problem}); "
            "find each job's id as job.request_id and in %ltx jobs"
        )

    def unfinished_entries(self, entries: Sequence[HistoryEntry]) -> list[HistoryEntry]:
        """The entries whose journal does not say they ended and that no job of this session
        follows: only the server knows where they are."""
        followed = {job.request_id for job in self.jobs if job.request_id and not job.done}
        return [
            entry
            for entry in entries
            if (entry.status or "").lower() not in TERMINAL_STATUSES
            and entry.request_id not in followed
        ]

    def read_statuses(
        self, entries: Sequence[HistoryEntry], timeout: float | None = None
    ) -> dict[str, RemoteStatus]:
        """Ask the server where each of ``entries`` is (the first :data:`MAX_STATUS_READS`,
        on the runner), waiting at most ``timeout`` seconds (:data:`STATUS_READ_TIMEOUT`); a
        request whose status cannot be read in that time is ``unknown``. A request found
        ended is recorded in the history. The wait stays interruptible."""
        timeout = STATUS_READ_TIMEOUT if timeout is None else timeout
        entries = list(entries)[:MAX_STATUS_READS]
        if not entries:
            return {}
        future = self.runner.submit(self._read_statuses(entries, timeout))
        try:
            return wait_future(future, timeout + 2.0)
        except TimeoutError:
            future.cancel()
            return {entry.request_id: RemoteStatus("unknown") for entry in entries}
        except KeyboardInterrupt:
            future.cancel()
            raise

    async def _read_statuses(
        self, entries: list[HistoryEntry], timeout: float
    ) -> dict[str, RemoteStatus]:
        gate = asyncio.Semaphore(_STATUS_READS_AT_ONCE)
        deadline = asyncio.get_running_loop().time() + timeout

        async def read(entry: HistoryEntry) -> RemoteStatus:
            async with gate:
                return await self._read_status(entry)

        async def bounded(entry: HistoryEntry) -> RemoteStatus:
            left = deadline - asyncio.get_running_loop().time()
            try:
                return await asyncio.wait_for(read(entry), max(left, 0.0))
            except (asyncio.TimeoutError, LtxError, httpx.HTTPError, OSError) as error:
                _log.debug("status of %s unreadable: %s", entry.request_id, error)
                return RemoteStatus("unknown")

        found = await asyncio.gather(*(bounded(entry) for entry in entries))
        return {entry.request_id: status for entry, status in zip(entries, found, strict=True)}

    async def _read_status(self, entry: HistoryEntry) -> RemoteStatus:
        client = self.client(entry.queue_url)
        endpoint = entry.endpoint or "fal-ai/ltx-video"
        status = await client.status(endpoint, entry.request_id)
        if status.state != "COMPLETED":
            return RemoteStatus(_STATE_WORDS[status.state])
        if status.error:
            error = client._run_error(status.error, status.error_type, entry.request_id)
            word = "cancelled" if isinstance(error, RequestCancelledError) else "failed"
            remote = RemoteStatus(word, error=status.error)
        else:
            try:
                result = parse_output(await client.result(endpoint, entry.request_id))
            except (HTTPError, ProtocolError) as error:
                remote = RemoteStatus("failed", error=str(error))
            else:
                remote = RemoteStatus("completed", video_url=result.url, seed=result.seed)
        fields: dict[str, Any] = {"status": remote.status}
        fields.update({k: v for k, v in vars(remote).items() if k != "status" and v is not None})
        # The journal learns the end it missed (its kernel died first); the table shows it
        # either way.
        with contextlib.suppress(OSError):
            self.history.record_update(entry.request_id, **fields)
        return remote

    def cancel_request(
        self, request_id: str, endpoint: str, queue_url: str | None = None, timeout: float = 30.0
    ) -> str:
        """Cancel a request by id (one not followed in this session); the server's answer."""
        client = self.client(queue_url)
        return wait_future(self.runner.submit(client.cancel(endpoint, request_id)), timeout)

    def find(self, job_id: str) -> Job | None:
        """A job of this session by request id, id prefix or local number."""
        for job in reversed(self.jobs):
            if job.request_id == job_id or str(job.local_id) == job_id:
                return job
        matches = [j for j in self.jobs if j.request_id and j.request_id.startswith(job_id)]
        return matches[-1] if len(matches) == 1 else None

    def recorded(self, request_id: str) -> HistoryEntry:
        """The history's entry for a request no job of this session follows (by id or id
        prefix); ``ValueError`` saying where it looked when there is none, or several."""
        entry = self.history.get(request_id)
        if entry is None:
            raise ValueError(
                f"no job {request_id!r} in this session or in the history ({self.history.path})"
            )
        return entry

    def cancel_all(self) -> list[Job]:
        """Ask the server to cancel every job of this session that has not ended (and was
        not asked already); returns them."""
        running = [job for job in self.jobs if not job.done and not job.cancel_requested]
        for job in running:
            job.cancel()
        return running

    def close(self, timeout: float = 5.0) -> None:
        """Stop following jobs locally (remote requests go on; their ids are in the history),
        close every connection and stop the runner thread."""
        self._clients.clear()
        if self._own_runner is not None:
            self._own_runner.shutdown(timeout)
        else:
            shutdown_runner(timeout)
