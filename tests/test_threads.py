"""The executor's own thread pool for sync tools (issue 10 rows 8, 9, 14-17): slots sized by the
caller, daemon threads nothing joins, abandoned calls that keep their slot while the pool grows
(bounded), base exceptions contained, results delivered safely to a loop that may have closed."""

from __future__ import annotations

import asyncio
import contextvars
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from llmcompiler._threads import Job, PoolExhausted, ThreadPool, ToolBaseException, contain, run_in_thread

WAIT = 30.0  # a generous bound on waits that would otherwise hang


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """An event hanging calls wait on; set at the end so no thread outlives the test."""
    event = threading.Event()
    yield event
    event.set()


def hang(gate: threading.Event) -> str:
    gate.wait(WAIT)
    return "released"


async def started(pool: ThreadPool, fn: Any, *args: Any) -> Job:
    return await asyncio.wait_for(pool.start(fn, *args), WAIT)


async def abandon_after_timeout(job: Job) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(job.result(), 0.01)
    assert job.abandoned


async def test_row14_sixteen_sync_calls_run_together_in_a_pool_of_sixteen() -> None:
    # issue 10 row 14: every call waits at a barrier of 16, which breaks unless all 16 run at once.
    barrier = threading.Barrier(16, timeout=WAIT)
    pool = ThreadPool(16)
    jobs = [await started(pool, barrier.wait) for _ in range(16)]
    results = await asyncio.gather(*(job.result() for job in jobs))
    assert sorted(results) == list(range(16))
    pool.shutdown()


async def test_calls_beyond_the_size_wait_for_a_slot_in_arrival_order(gate: threading.Event) -> None:
    pool = ThreadPool(1)
    order: list[str] = []
    first = await started(pool, hang, gate)
    waiting = [asyncio.create_task(pool.start(order.append, name)) for name in "abc"]
    await asyncio.sleep(0)
    assert not any(t.done() for t in waiting) and pool.running == 1
    gate.set()
    assert await first.result() == "released"
    for task in waiting:
        await (await asyncio.wait_for(task, WAIT)).result()
    assert order == ["a", "b", "c"]


async def test_a_cancelled_waiter_takes_no_slot_and_holds_nobody_up(gate: threading.Event) -> None:
    pool = ThreadPool(1)
    first = await started(pool, hang, gate)
    ran: list[str] = []
    cancelled = asyncio.create_task(pool.start(ran.append, "cancelled"))
    later = asyncio.create_task(pool.start(ran.append, "later"))
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    gate.set()
    await first.result()
    await (await asyncio.wait_for(later, WAIT)).result()
    assert ran == ["later"] and pool.running == 0


async def test_row16_hung_calls_keep_their_slots_and_the_pool_grows_for_later_calls(gate: threading.Event) -> None:
    # issue 10 row 16: 6 calls hang past their timeout, then a quick call still runs.
    pool = ThreadPool(6)
    hung = [await started(pool, hang, gate) for _ in range(6)]
    for job in hung:
        await abandon_after_timeout(job)
    assert pool.abandoned == 6 and pool.running == 6
    quick = await started(pool, lambda: "quick")
    assert await asyncio.wait_for(quick.result(), WAIT) == "quick"
    gate.set()
    for job in hung:
        await asyncio.wait_for(job.ended(), WAIT)
        assert job.done()
    assert pool.abandoned == 0 and pool.running == 0
    pool.shutdown()


async def test_past_its_bound_the_pool_reports_exhaustion_instead_of_waiting(gate: threading.Event) -> None:
    # issue 10 row 16: the growth is bounded; past it a clear error, not a hang.
    pool = ThreadPool(1, max_abandoned=1)
    hung = []
    for _ in range(2):  # the second starts in the slot the pool opens when the first is abandoned
        hung.append(await started(pool, hang, gate))
        await abandon_after_timeout(hung[-1])
    with pytest.raises(PoolExhausted, match="2 threads are still running calls that timed out or were cancelled"):
        await pool.start(lambda: None)
    gate.set()
    await asyncio.wait_for(hung[0].ended(), WAIT)  # one returned: its slot is free again
    assert await asyncio.wait_for(pool.run(lambda: "after"), WAIT) == "after"


async def test_a_queued_caller_gets_the_exhaustion_error_when_the_last_slot_is_abandoned(
    gate: threading.Event,
) -> None:
    pool = ThreadPool(1, max_abandoned=0)
    job = await started(pool, hang, gate)
    queued = asyncio.create_task(pool.start(lambda: None))
    await asyncio.sleep(0)
    job.abandon()
    with pytest.raises(PoolExhausted):
        await asyncio.wait_for(queued, WAIT)


async def test_row17_ended_waits_until_the_thread_has_really_finished(gate: threading.Event) -> None:
    # issue 10 row 17: a retry must not overlap a still-running attempt; ended() tells when it stopped.
    pool = ThreadPool(2)
    job = await started(pool, hang, gate)
    await abandon_after_timeout(job)
    waiter = asyncio.create_task(job.ended())
    await asyncio.sleep(0.01)
    assert not waiter.done() and not job.done()
    gate.set()
    await asyncio.wait_for(waiter, WAIT)
    assert job.done() and pool.running == 0


def raise_stop_iteration() -> Any:
    return next(iter([]))


def raise_(exc: BaseException) -> None:
    raise exc


async def test_row8_stop_iteration_fails_the_call_instead_of_hanging() -> None:
    # issue 10 row 8: a Future cannot hold StopIteration; asyncio.to_thread hangs on it.
    pool = ThreadPool(1)
    with pytest.raises(ToolBaseException, match="StopIteration") as info:
        await asyncio.wait_for(pool.run(raise_stop_iteration), WAIT)
    assert isinstance(info.value.original, StopIteration)
    with pytest.raises(ToolBaseException, match="StopAsyncIteration"):
        await asyncio.wait_for(pool.run(raise_, StopAsyncIteration()), WAIT)


@pytest.mark.parametrize("exc", [SystemExit(2), GeneratorExit(), SystemExit("usage: tool [-h]")])
async def test_row9_system_exit_and_generator_exit_arrive_wrapped(exc: BaseException) -> None:
    # issue 10 row 9: a tool's sys.exit / argparse error fails its call, the process goes on.
    with pytest.raises(ToolBaseException) as info:
        await ThreadPool(1).run(raise_, exc)
    assert info.value.original is exc
    assert str(info.value).startswith(type(exc).__name__)


async def test_row9_keyboard_interrupt_still_propagates_as_itself() -> None:
    with pytest.raises(KeyboardInterrupt):
        await ThreadPool(1).run(raise_, KeyboardInterrupt())


async def test_an_ordinary_exception_comes_back_as_itself() -> None:
    error = ValueError("bad input")
    with pytest.raises(ValueError, match="bad input") as info:
        await ThreadPool(1).run(raise_, error)
    assert info.value is error


def test_contain_keeps_exceptions_and_wraps_what_must_not_travel() -> None:
    value_error, interrupt = ValueError("x"), KeyboardInterrupt()
    assert contain(value_error) is value_error and contain(interrupt) is interrupt
    for exc in (SystemExit(1), GeneratorExit(), StopIteration(), StopAsyncIteration()):
        wrapped = contain(exc)
        assert isinstance(wrapped, ToolBaseException) and wrapped.original is exc


class _BadStr(SystemExit):
    def __str__(self) -> str:
        raise RuntimeError("no")


def test_a_wrapped_exception_whose_str_raises_is_still_described() -> None:
    assert str(ToolBaseException(_BadStr())) == "_BadStr: <its message could not be read>"


request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")


async def test_the_callers_context_is_copied_into_the_thread() -> None:
    request_id.set("q-7")
    assert await ThreadPool(1).run(request_id.get) == "q-7"


def whoami() -> tuple[str, bool]:
    thread = threading.current_thread()
    return thread.name, thread.daemon


async def test_threads_are_daemon_and_named_after_the_pool_and_the_call() -> None:
    name, daemon = await ThreadPool(1, name="llmcompiler-tool").run(whoami)
    assert daemon
    assert name.startswith("llmcompiler-tool-") and name.endswith(" whoami")


async def test_threads_are_reused_and_idle_ones_end(gate: threading.Event) -> None:
    pool = ThreadPool(4, idle_timeout=0.05)
    for _ in range(5):
        await pool.run(lambda: None)
    assert pool.threads == 1  # one call at a time: one thread served them all
    for _ in range(int(WAIT / 0.01)):
        if pool.threads == 0:
            break
        await asyncio.sleep(0.01)
    assert pool.threads == 0


async def test_shutdown_does_not_wait_and_refuses_later_calls(gate: threading.Event) -> None:
    pool = ThreadPool(1)
    job = await started(pool, hang, gate)
    queued = asyncio.create_task(pool.start(lambda: None))
    await asyncio.sleep(0)
    pool.shutdown()  # returns at once although a call hangs
    with pytest.raises(RuntimeError, match="shut down"):
        await asyncio.wait_for(queued, WAIT)
    with pytest.raises(RuntimeError, match="shut down"):
        await pool.start(lambda: None)
    gate.set()
    assert await job.result() == "released"


async def test_cancelling_a_caller_of_run_abandons_its_call(gate: threading.Event) -> None:
    pool = ThreadPool(1)
    task = asyncio.create_task(pool.run(hang, gate))
    for _ in range(int(WAIT / 0.01)):
        if pool.running:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pool.abandoned == 1
    assert await asyncio.wait_for(pool.run(lambda: "next"), WAIT) == "next"


def test_the_default_pool_serves_one_event_loop_after_another() -> None:
    # Each sync run() of an agent has its own loop; the module's default pool serves them all.
    assert asyncio.run(run_in_thread(lambda x: x + 1, 1)) == 2
    assert asyncio.run(run_in_thread(lambda x: x + 1, 2)) == 3


def test_the_pool_serves_loops_in_several_threads_at_once() -> None:
    pool = ThreadPool(2)
    barrier = threading.Barrier(2, timeout=WAIT)
    results: list[int] = []

    def in_own_loop() -> None:
        results.append(asyncio.run(pool.run(barrier.wait)))

    threads = [threading.Thread(target=in_own_loop) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert sorted(results) == [0, 1]


def _run_script(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.allow_blocking
def test_row15_a_hung_call_neither_holds_up_asyncio_run_nor_the_exit() -> None:
    # issue 10 row 15: the caller returns right after its timeout although the call never ends.
    done = _run_script(
        """
        import asyncio, threading, time
        from llmcompiler._threads import ThreadPool

        async def main():
            pool = ThreadPool(1)
            job = await pool.start(threading.Event().wait)  # waits forever
            try:
                await asyncio.wait_for(job.result(), 0.2)
            except TimeoutError:
                print("timed out", flush=True)

        start = time.monotonic()
        asyncio.run(main())
        print(f"returned {time.monotonic() - start < 5}", flush=True)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["timed out", "returned True"]
    assert done.stderr == ""


@pytest.mark.allow_blocking
def test_a_call_that_ends_after_its_loop_closed_is_dropped_quietly() -> None:
    # A thread finishing after asyncio.run returned must not print a traceback or raise.
    done = _run_script(
        """
        import asyncio, threading
        from llmcompiler._threads import ThreadPool

        gate, finished = threading.Event(), threading.Event()

        def slow():
            gate.wait()
            return "late"

        async def main():
            pool = ThreadPool(1, idle_timeout=0.01)
            job = await pool.start(slow)
            try:
                await asyncio.wait_for(job.result(), 0.05)
            except TimeoutError:
                pass
            return pool

        pool = asyncio.run(main())
        gate.set()
        while pool.threads:  # the thread ends once it has delivered (to the closed loop) and idled
            threading.Event().wait(0.01)
        print("clean", flush=True)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "clean\n" and done.stderr == ""
