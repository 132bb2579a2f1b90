"""The one private asyncio event loop, on one daemon worker thread, on which every job runs.

The kernel thread never runs a loop of its own for us: it hands coroutines to the runner with
:meth:`Runner.submit` and gets :class:`concurrent.futures.Future` objects back. It then either
blocks on them with :func:`wait_future` (which a kernel interrupt stops) or, inside a cell that
uses IPython's autoawait, awaits them with :func:`async_wrap`. Because the loop is private, this
behaves the same in every frontend, in terminal IPython, in scripts and under pytest, and it keeps
working when the user has called ``nest_asyncio.apply()`` in their process.

The runner knows nothing about remote requests: shutting it down cancels its local tasks only.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import inspect
import logging
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

__all__ = [
    "THREAD_NAME",
    "Runner",
    "ScheduledCall",
    "async_wrap",
    "get_runner",
    "shutdown_runner",
    "wait_future",
]

T = TypeVar("T")

THREAD_NAME = "ltx-jupyter-runner"

#: How long :func:`wait_future` blocks at a time before checking again. Short enough that an
#: interrupt is raised promptly where a lock wait is not interruptible by signals (Windows);
#: on POSIX a signal interrupts the wait itself, so the slice only bounds idle wake-ups.
WAIT_SLICE = 0.1 if sys.platform == "win32" else 0.5

ShutdownHook = Callable[[], Any]

_log = logging.getLogger(__name__)


class _RunnerThread(threading.Thread):
    """The worker thread; its own class so a blocking wait can recognise it and refuse."""


class ScheduledCall:
    """A call scheduled with :meth:`Runner.call_later`; :meth:`cancel` works from any thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._handle: asyncio.TimerHandle | None = None
        self._cancelled = False

    def _arm(self, when: float, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        with self._lock:
            if not self._cancelled:
                self._handle = self._loop.call_at(when, self._fire, fn, args)

    def _fire(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        if not self._cancelled:
            fn(*args)

    def cancel(self) -> None:
        """Cancel the call if it has not run yet. Safe from any thread; idempotent."""
        with self._lock:
            self._cancelled = True
            handle = self._handle
        if handle is None:
            return
        # RuntimeError: the loop is closed, so nothing will run anyway.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(handle.cancel)

    def cancelled(self) -> bool:
        """Whether :meth:`cancel` has been called."""
        return self._cancelled


class Runner:
    """One asyncio event loop running on one daemon thread named ``ltx-jupyter-runner``.

    Every method is safe to call from any thread. The runner starts on first use and can be
    started again after :meth:`shutdown` (as ``%reload_ext`` needs).
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: _RunnerThread | None = None
        self._hooks: list[ShutdownHook] = []

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker thread and its loop; does nothing if they are already running."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            loop = asyncio.new_event_loop()
            ready = threading.Event()
            thread = _RunnerThread(
                target=self._run, args=(loop, ready), name=THREAD_NAME, daemon=True
            )
            thread.start()
            ready.wait()
            self._loop, self._thread = loop, thread

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            asyncio.set_event_loop(None)

    @property
    def running(self) -> bool:
        """Whether the worker thread is alive and its loop is running."""
        thread, loop = self._thread, self._loop
        return thread is not None and thread.is_alive() and loop is not None and loop.is_running()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The runner's event loop (the runner is started if needed)."""
        return self._ensure_started()

    def in_runner_thread(self) -> bool:
        """Whether the caller is running on this runner's worker thread."""
        thread = self._thread
        return thread is not None and threading.current_thread() is thread

    def _ensure_started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            self.start()
            assert self._loop is not None
            return self._loop

    # -- scheduling ------------------------------------------------------------------------

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` as a task on the runner's loop; return a future for its result.

        Cancelling the returned future cancels the task. The runner is started if needed.
        """
        if not inspect.iscoroutine(coro):
            raise TypeError(f"submit() needs a coroutine, got {type(coro).__name__}")
        # Scheduling under the lock orders the task before any shutdown that starts later,
        # so a shutdown always sees (and cancels) it instead of silently dropping it.
        with self._lock:
            return asyncio.run_coroutine_threadsafe(coro, self._ensure_started())

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> asyncio.Handle:
        """Call ``fn(*args)`` on the runner's loop as soon as possible (thread-safe)."""
        with self._lock:
            loop = self._ensure_started()
            if self.in_runner_thread():
                return loop.call_soon(fn, *args)
            return loop.call_soon_threadsafe(fn, *args)

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> ScheduledCall:
        """Call ``fn(*args)`` on the runner's loop after ``delay`` seconds.

        Returns a :class:`ScheduledCall` whose ``cancel()`` is safe from any thread.
        """
        with self._lock:
            loop = self._ensure_started()
            when = loop.time() + max(0.0, delay)
            call = ScheduledCall(loop)
            if self.in_runner_thread():
                call._arm(when, fn, args)
            else:
                loop.call_soon_threadsafe(call._arm, when, fn, args)
            return call

    # -- shutdown --------------------------------------------------------------------------

    def add_shutdown_hook(self, hook: ShutdownHook) -> ShutdownHook:
        """Register ``hook`` to run on the loop at the next :meth:`shutdown`.

        ``hook`` takes no arguments and may be a coroutine function (``client.aclose``) or a
        plain callable. Hooks run once, last registered first, after the tasks are cancelled;
        an exception in one is logged and the others still run. Returns ``hook``.
        """
        with self._lock:
            self._hooks.append(hook)
        return hook

    def remove_shutdown_hook(self, hook: ShutdownHook) -> None:
        """Forget a hook registered with :meth:`add_shutdown_hook`, if it is still there."""
        with self._lock, contextlib.suppress(ValueError):
            self._hooks.remove(hook)

    def shutdown(self, timeout: float = 5.0, cancel_tasks: bool = True) -> None:
        """Stop the runner: end its tasks, run the shutdown hooks, stop and close the loop.

        With ``cancel_tasks`` (the default) every task still on the loop is cancelled at once;
        otherwise the tasks get until ``timeout`` to finish and only then are cancelled. Only
        local tasks are cancelled: remote requests they started keep running. Everything,
        joining the thread included, is bounded by ``timeout`` seconds. The runner can be
        started again afterwards. Does nothing if the runner is not running.
        """
        if self.in_runner_thread():
            raise RuntimeError("Runner.shutdown() cannot be called from the runner's own thread")
        deadline = time.monotonic() + timeout
        with self._lock:
            loop, thread, hooks = self._loop, self._thread, self._hooks
            self._loop, self._thread, self._hooks = None, None, []
            if loop is None or thread is None:
                return
            if not thread.is_alive():
                loop.close()
                return
            done = asyncio.run_coroutine_threadsafe(
                _finish(hooks, cancel_tasks=cancel_tasks, deadline=deadline), loop
            )
        try:
            done.result(timeout=max(0.0, deadline - time.monotonic()))
        except concurrent.futures.TimeoutError:
            _log.warning("ltx-jupyter runner: shutdown did not finish within %.1f s", timeout)
        except Exception:
            _log.exception("ltx-jupyter runner: error during shutdown")
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(loop.stop)
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            # A task is blocking the loop's thread. It is a daemon thread, so it cannot keep
            # the process alive; closing a running loop would raise, so leave it.
            _log.warning("ltx-jupyter runner: worker thread still busy after %.1f s", timeout)
            return
        loop.close()


async def _finish(hooks: list[ShutdownHook], *, cancel_tasks: bool, deadline: float) -> None:
    """Runs on the loop being shut down: end the tasks, then run the hooks."""
    loop = asyncio.get_running_loop()
    me = asyncio.current_task()

    def others() -> set[asyncio.Task[Any]]:
        return {t for t in asyncio.all_tasks(loop) if t is not me and not t.done()}

    if not cancel_tasks and (tasks := others()):
        await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()))
    # Cancelled tasks may start new ones while unwinding, so sweep until none are left.
    while (tasks := others()) and time.monotonic() < deadline:
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()))
    for hook in reversed(hooks):
        try:
            result = hook()
            if inspect.isawaitable(result):
                await asyncio.wait_for(result, timeout=max(0.0, deadline - time.monotonic()))
        except Exception:
            _log.exception("ltx-jupyter runner: shutdown hook %r failed", hook)
    await loop.shutdown_asyncgens()


# -- the process-wide runner -------------------------------------------------------------------

_singleton: Runner | None = None
_singleton_lock = threading.Lock()
_atexit_registered = False


def get_runner() -> Runner:
    """The process-wide runner, created and started on first use (and after a shutdown)."""
    global _singleton, _atexit_registered
    with _singleton_lock:
        if _singleton is None:
            _singleton = Runner()
        if not _atexit_registered:
            # Runs before the interpreter freezes daemon threads, so hooks such as closing an
            # HTTP client still get their chance at exit.
            atexit.register(shutdown_runner, 1.0)
            _atexit_registered = True
        runner = _singleton
    runner.start()
    return runner


def shutdown_runner(timeout: float = 5.0) -> None:
    """Shut the process-wide runner down (see :meth:`Runner.shutdown`) and forget it."""
    global _singleton
    with _singleton_lock:
        runner, _singleton = _singleton, None
    if runner is not None:
        runner.shutdown(timeout=timeout)


# -- waiting from the kernel thread ------------------------------------------------------------


def wait_future(future: concurrent.futures.Future[T], timeout: float | None = None) -> T:
    """Block until ``future`` is done and return its result (or raise its exception).

    The wait stays interruptible: a kernel interrupt (``KeyboardInterrupt``) is raised from here
    within a fraction of a second and propagates to the caller; the future is left as it is, so
    the caller can cancel it. Raises :class:`TimeoutError` if ``timeout`` seconds pass first.
    Refuses (``RuntimeError``) on the runner's own thread, where it would wait forever.
    """
    if isinstance(threading.current_thread(), _RunnerThread):
        raise RuntimeError(
            "wait_future() called on the ltx-jupyter runner thread, where it would deadlock; "
            "await the work instead"
        )
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        slice_ = WAIT_SLICE
        if deadline is not None:
            slice_ = min(slice_, max(0.0, deadline - time.monotonic()))
        try:
            # The future's own wait: concurrent.futures.wait() would install a waiter object
            # on it and take it off again each slice.
            return future.result(timeout=slice_)
        except concurrent.futures.TimeoutError:
            if future.done():
                raise  # the work itself ended in a timeout error
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"the operation did not finish within {timeout} s")


def async_wrap(future: concurrent.futures.Future[T]) -> Awaitable[T]:
    """An awaitable for ``future`` on the caller's running loop (e.g. IPython's autoawait loop).

    Call it inside a coroutine (or ``__await__``): ``result = await async_wrap(fut)``. Cancelling
    the awaiting task cancels ``future`` too, and with it the runner task behind it; wrap in
    :func:`asyncio.shield` to keep the task running.
    """
    return asyncio.wrap_future(future, loop=asyncio.get_running_loop())
