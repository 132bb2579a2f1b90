"""The private event loop on its worker thread, as the kernel thread sees it."""

from __future__ import annotations

import _thread
import asyncio
import concurrent.futures
import importlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ltx_jupyter import _runner
from ltx_jupyter._runner import (
    THREAD_NAME,
    Runner,
    async_wrap,
    get_runner,
    shutdown_runner,
    wait_future,
)

REPO = Path(__file__).resolve().parents[1]


def runner_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


@pytest.fixture
def runner() -> Iterator[Runner]:
    r = Runner()
    r.start()
    yield r
    r.shutdown(timeout=5)


async def sleep_forever(started: threading.Event, cancelled: threading.Event) -> None:
    started.set()
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        cancelled.set()
        raise


def test_futures_resolve_on_the_kernel_thread_with_work_done_on_the_runner_thread(
    runner: Runner,
) -> None:
    async def where() -> tuple[str, bool]:
        await asyncio.sleep(0.01)
        return threading.current_thread().name, runner.in_runner_thread()

    future = runner.submit(where())
    assert isinstance(future, concurrent.futures.Future)
    assert wait_future(future, timeout=5) == (THREAD_NAME, True)
    assert not runner.in_runner_thread()


def test_runner_thread_is_a_named_daemon_and_start_is_idempotent(runner: Runner) -> None:
    runner.start()
    runner.start()
    threads = runner_threads()
    assert len(threads) == 1
    assert threads[0].daemon
    assert runner.running


def test_submit_starts_a_runner_that_was_never_started() -> None:
    r = Runner()
    assert not r.running
    try:
        assert wait_future(r.submit(asyncio.sleep(0, result=7)), timeout=5) == 7
        assert r.running
    finally:
        r.shutdown()


def test_submit_refuses_what_is_not_a_coroutine(runner: Runner) -> None:
    with pytest.raises(TypeError, match="coroutine"):
        runner.submit(lambda: None)  # type: ignore[arg-type]


def test_a_failing_job_raises_its_own_exception_in_the_kernel(runner: Runner) -> None:
    async def boom() -> None:
        raise ValueError("bad seed")

    with pytest.raises(ValueError, match="bad seed"):
        wait_future(runner.submit(boom()), timeout=5)


def test_a_job_raising_timeout_error_is_not_mistaken_for_the_wait_timing_out(
    runner: Runner,
) -> None:
    async def remote_timeout() -> None:
        raise TimeoutError("remote said so")

    with pytest.raises(TimeoutError, match="remote said so"):
        wait_future(runner.submit(remote_timeout()), timeout=5)


def test_wait_future_times_out_and_leaves_the_job_running(runner: Runner) -> None:
    started, cancelled = threading.Event(), threading.Event()
    future = runner.submit(sleep_forever(started, cancelled))
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        wait_future(future, timeout=0.3)
    assert 0.25 < time.monotonic() - t0 < 1.5
    assert not future.done()
    future.cancel()
    assert cancelled.wait(5)


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals")
@pytest.mark.parametrize("how", ["interrupt_main", "SIGINT"])
def test_kernel_interrupt_stops_a_blocking_wait_promptly(runner: Runner, how: str) -> None:
    started, cancelled = threading.Event(), threading.Event()
    future = runner.submit(sleep_forever(started, cancelled))
    assert started.wait(5)
    main_ident = threading.main_thread().ident
    assert main_ident is not None

    def interrupt() -> None:
        if how == "SIGINT":
            signal.pthread_kill(main_ident, signal.SIGINT)
        else:
            _thread.interrupt_main()

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.3, interrupt)
    try:
        t0 = time.monotonic()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            wait_future(future)
        elapsed = time.monotonic() - t0
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert elapsed < 1.3, f"interrupt took {elapsed:.2f} s to stop the wait"
    # The interrupt stopped only the wait: the job is still there for the caller to cancel.
    assert not future.done()
    assert not cancelled.is_set()
    assert future.cancel()
    assert cancelled.wait(5)


def test_wait_future_refuses_to_deadlock_on_the_runner_thread(runner: Runner) -> None:
    pending: concurrent.futures.Future[None] = concurrent.futures.Future()

    async def wait_inside() -> None:
        wait_future(pending, timeout=1)

    with pytest.raises(RuntimeError, match="deadlock"):
        wait_future(runner.submit(wait_inside()), timeout=5)


def test_call_soon_runs_on_the_runner_thread(runner: Runner) -> None:
    seen: concurrent.futures.Future[str] = concurrent.futures.Future()
    runner.call_soon(lambda x: seen.set_result(f"{threading.current_thread().name}:{x}"), 1)
    assert wait_future(seen, timeout=5) == f"{THREAD_NAME}:1"


def test_call_later_fires_after_its_delay(runner: Runner) -> None:
    fired: concurrent.futures.Future[float] = concurrent.futures.Future()
    t0 = time.monotonic()
    runner.call_later(0.2, lambda: fired.set_result(time.monotonic()))
    assert wait_future(fired, timeout=5) - t0 >= 0.19


def test_call_later_cancelled_from_the_kernel_thread_never_fires(runner: Runner) -> None:
    fired = threading.Event()
    call = runner.call_later(0.2, fired.set)
    call.cancel()
    call.cancel()
    assert call.cancelled()
    assert not fired.wait(0.5)


def test_call_later_cancelled_from_the_runner_thread_never_fires(runner: Runner) -> None:
    fired = threading.Event()
    call = runner.call_later(0.3, fired.set)

    async def cancel_it() -> None:
        call.cancel()

    wait_future(runner.submit(cancel_it()), timeout=5)
    assert not fired.wait(0.6)


def test_shutdown_cancels_tasks_runs_hooks_and_leaves_no_thread() -> None:
    r = Runner()
    started, cancelled = threading.Event(), threading.Event()
    future = r.submit(sleep_forever(started, cancelled))
    assert started.wait(5)
    order: list[str] = []

    async def close_client() -> None:
        await asyncio.sleep(0.01)
        order.append(f"async hook on {threading.current_thread().name}")

    def failing_hook() -> None:
        raise RuntimeError("hook failed")

    r.add_shutdown_hook(close_client)
    r.add_shutdown_hook(failing_hook)
    r.add_shutdown_hook(lambda: order.append(f"tasks cancelled: {cancelled.is_set()}"))
    r.shutdown(timeout=5)

    assert cancelled.is_set()
    assert future.cancelled()
    assert order == ["tasks cancelled: True", f"async hook on {THREAD_NAME}"]
    assert not r.running
    assert runner_threads() == []


def test_shutdown_without_cancel_lets_short_tasks_finish() -> None:
    r = Runner()
    future = r.submit(asyncio.sleep(0.2, result="done"))
    r.shutdown(timeout=5, cancel_tasks=False)
    assert future.result(timeout=0) == "done"
    assert runner_threads() == []


def test_runner_restarts_after_shutdown_and_hooks_run_once() -> None:
    r = Runner()
    calls: list[int] = []
    r.add_shutdown_hook(lambda: calls.append(1))
    r.start()
    r.shutdown()
    r.shutdown()  # a second shutdown is harmless
    assert calls == [1]

    assert wait_future(r.submit(asyncio.sleep(0, result="again")), timeout=5) == "again"
    assert len(runner_threads()) == 1
    r.shutdown()
    assert calls == [1]
    assert runner_threads() == []


def test_removed_hook_does_not_run() -> None:
    r = Runner()
    calls: list[int] = []

    def hook() -> None:
        calls.append(1)

    r.add_shutdown_hook(hook)
    r.remove_shutdown_hook(hook)
    r.remove_shutdown_hook(hook)
    r.start()
    r.shutdown()
    assert calls == []


def test_process_wide_runner_is_one_and_can_be_replaced_after_shutdown() -> None:
    first = get_runner()
    try:
        assert get_runner() is first
        assert first.running
        shutdown_runner()
        assert not first.running
        assert runner_threads() == []
        second = get_runner()
        assert second is not first
        assert wait_future(second.submit(asyncio.sleep(0, result=1)), timeout=5) == 1
    finally:
        shutdown_runner()
    assert _runner._singleton is None
    assert runner_threads() == []


def test_awaiting_a_runner_future_from_another_loop(runner: Runner) -> None:
    async def on_runner() -> int:
        await asyncio.sleep(0.05)
        return 42

    async def cell() -> tuple[int, bool]:
        value = await async_wrap(runner.submit(on_runner()))
        return value, asyncio.get_running_loop() is not runner.loop

    assert asyncio.run(cell()) == (42, True)


def test_cancelling_the_await_cancels_the_runner_task(runner: Runner) -> None:
    started, cancelled = threading.Event(), threading.Event()

    async def cell() -> None:
        future = runner.submit(sleep_forever(started, cancelled))
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(async_wrap(future), timeout=0.2)

    asyncio.run(cell())
    assert cancelled.wait(5)


def test_top_level_await_in_an_ipython_cell(runner: Runner) -> None:
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    ip = InteractiveShell.instance(config=config)
    try:
        ip.user_ns["job"] = runner.submit(asyncio.sleep(0.05, result="video.mp4"))
        ip.user_ns["async_wrap"] = async_wrap
        result = ip.run_cell("out = await async_wrap(job)")
        result.raise_error()
        assert ip.user_ns["out"] == "video.mp4"
    finally:
        InteractiveShell.clear_instance()


NEST_ASYNCIO_SCRIPT = """
import asyncio, importlib, sys, threading, warnings
warnings.simplefilter("ignore", DeprecationWarning)
nest = importlib.import_module(sys.argv[1])
when = sys.argv[2]

from ltx_jupyter._runner import THREAD_NAME, async_wrap, get_runner, shutdown_runner, wait_future

if when == "before":
    nest.apply(asyncio.new_event_loop())

async def job(n):
    task = asyncio.current_task()
    assert task is not None, "current_task() is None on the runner"
    await asyncio.sleep(0.01)
    inner = await asyncio.gather(*(asyncio.sleep(0.01, result=i) for i in range(n)))
    assert asyncio.current_task() is task
    return threading.current_thread().name, sum(inner)

runner = get_runner()
if when == "after":
    nest.apply(asyncio.new_event_loop())

assert wait_future(runner.submit(job(4)), timeout=10) == (THREAD_NAME, 6)

async def cell():
    return await async_wrap(runner.submit(job(3)))

assert asyncio.run(cell()) == (THREAD_NAME, 3)
loop = asyncio.new_event_loop()
assert loop.run_until_complete(cell()) == (THREAD_NAME, 3)
loop.close()

started = threading.Event()
async def forever():
    started.set()
    await asyncio.sleep(3600)
pending = runner.submit(forever())
assert started.wait(5)
shutdown_runner()
assert pending.cancelled()
assert not [t for t in threading.enumerate() if t.name == THREAD_NAME]
assert wait_future(get_runner().submit(job(2)), timeout=10) == (THREAD_NAME, 1)
shutdown_runner()
print("OK")
"""


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("module", ["nest_asyncio", "nest_asyncio2"])
def test_runner_works_when_the_user_applied_nest_asyncio(module: str, when: str) -> None:
    importlib.import_module(module)  # ipykernel requires both: missing is a failure
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(NEST_ASYNCIO_SCRIPT), module, when],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "OK"
