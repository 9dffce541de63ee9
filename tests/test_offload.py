"""Load balancing: compute-bound tools run in a process pool sized to the cores; others stay on
the loop or in threads; a compute-bound tool must be sendable to a worker process. A cancelled
(timed-out) call kills its worker, a dead worker fails only its own call, and the process exits
promptly whatever its workers are doing (issue 10 rows 13 and 18)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmcompiler import TaskRecord, Tool, UserError, execute_plan, tool
from llmcompiler._offload import (
    ProcessPool,
    RemoteError,
    WorkerDied,
    cpu_slots,
    process_pool,
    shutdown_process_pool,
)
from llmcompiler._threads import ToolBaseException

WAIT = 60.0  # a generous bound on waits that would otherwise hang


@pytest.fixture(autouse=True, scope="module")
def _pool() -> Iterator[None]:
    yield
    shutdown_process_pool()


@tool(compute_bound=True)
def crunch(n: int) -> dict[str, Any]:
    """Sum the squares below n, reporting where and when it ran."""
    start = time.monotonic()
    total = sum(i * i for i in range(n))
    return {"pid": os.getpid(), "total": total, "start": start, "end": time.monotonic()}


@tool(compute_bound=True)
def hold(seconds: float) -> dict[str, Any]:
    """Keep a worker busy for a while (the measurement needs overlapping calls)."""
    start = time.monotonic()
    time.sleep(seconds)
    return {"pid": os.getpid(), "start": start, "end": time.monotonic()}


@tool(compute_bound=True)
def explode(message: str) -> int:
    """Raise ValueError."""
    raise ValueError(message)


@tool(compute_bound=True)
def die() -> int:
    """Kill the worker process."""
    os._exit(3)


def _sum_squares(calls: list[dict[str, Any]]) -> list[dict[str, int]]:
    return [{"pid": os.getpid(), "total": sum(i * i for i in range(c["n"]))} for c in calls]


@tool(compute_bound=True, batch=_sum_squares, batch_window=0)
def crunch_many(n: int) -> dict[str, int]:
    """Sum the squares below n (with a batch implementation)."""
    return {"pid": os.getpid(), "total": sum(i * i for i in range(n))}


@tool
def where() -> int:
    """The process this runs in."""
    return os.getpid()


def _by_idx(records: list[TaskRecord]) -> dict[int, TaskRecord]:
    return {r.idx: r for r in records}


async def test_compute_bound_tools_run_in_another_process_and_others_do_not() -> None:
    records = _by_idx(await execute_plan("1. crunch(1000)\n2. where()", [crunch, where]))
    assert records[1].ok and records[1].result["total"] == sum(i * i for i in range(1000))
    assert records[1].result["pid"] != os.getpid()
    assert records[2].result == os.getpid()


def test_the_pool_has_one_worker_per_available_core() -> None:
    assert process_pool().size == cpu_slots() == len(os.sched_getaffinity(0))


async def test_heavy_calls_never_run_more_at_once_than_there_are_processors() -> None:
    n = 3 * cpu_slots()
    records = await execute_plan("\n".join(f"{i}. hold(0.05)" for i in range(1, n + 1)), [hold])
    assert all(r.ok for r in records)
    spans = [(r.result["start"], r.result["end"]) for r in records]
    most_at_once = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert 1 <= most_at_once <= cpu_slots()
    assert len({r.result["pid"] for r in records}) <= cpu_slots()


async def test_an_exception_in_the_worker_fails_the_task_with_its_type() -> None:
    [record] = await execute_plan("1. explode('bad input')", [explode])
    assert record.error == "explode raised ValueError: bad input"


async def test_a_worker_that_dies_fails_its_task_and_the_next_call_gets_a_new_pool() -> None:
    [dead] = await execute_plan("1. die()", [die])
    assert dead.error is not None and "worker process" in dead.error and "died" in dead.error
    [alive] = await execute_plan("1. crunch(10)", [crunch])
    assert alive.ok and alive.result["total"] == 285


async def test_the_batch_implementation_of_a_compute_bound_tool_runs_in_a_worker_too() -> None:
    records = await execute_plan("1. crunch_many(10)\n2. crunch_many(20)\n3. crunch_many(30)", [crunch_many])
    assert [r.result["total"] for r in records] == [285, 2470, 8555]
    assert {r.batch_size for r in records} == {3}
    assert all(r.result["pid"] != os.getpid() for r in records)


def test_a_function_defined_inside_another_cannot_be_compute_bound() -> None:
    with pytest.raises(UserError, match="must be picklable: define it at module level"):

        @tool(compute_bound=True)
        def local(n: int) -> int:
            """Not picklable."""
            return n

    with pytest.raises(UserError, match="module level"):
        tool(compute_bound=True, name="square")(lambda n: n * n)


def test_an_async_function_cannot_be_compute_bound() -> None:
    async def fetch(url: str) -> str:
        """I/O, not CPU."""
        return url

    with pytest.raises(UserError, match="must be plain \\(sync\\) functions"):
        tool(compute_bound=True)(fetch)


def test_compute_bound_is_kept_by_with_limits() -> None:
    assert crunch.with_limits(timeout=5).compute_bound


def spin(marker: str) -> None:
    """Burn CPU forever, after writing this worker's pid to ``marker``."""
    Path(marker).write_text(str(os.getpid()))
    while True:
        pass


def square(n: int) -> int:
    return n * n


def pid() -> int:
    return os.getpid()


def raise_(exc: BaseException) -> None:
    raise exc


def _pid_in(marker: Path) -> int | None:
    text = marker.read_text() if marker.exists() else ""
    return int(text) if text else None


async def started_pid(marker: Path) -> int:
    """The pid ``spin`` wrote once it runs."""
    for _ in range(int(WAIT / 0.01)):
        found = _pid_in(marker)
        if found is not None:
            return found
        await asyncio.sleep(0.01)
    raise AssertionError("the call never started")


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"  # killed, not yet reaped


@pytest.fixture
def pool() -> Iterator[ProcessPool]:
    own = ProcessPool(2)
    yield own
    own.shutdown(wait=False)


async def test_row18_a_cancelled_running_call_kills_its_worker_and_later_calls_run(
    pool: ProcessPool, tmp_path: Path
) -> None:
    # issue 10 row 18: a timed-out compute-bound call used to keep its worker busy for good.
    marker = tmp_path / "pid"
    call = asyncio.create_task(pool.run(spin, (str(marker),), {}))
    worker = await started_pid(marker)
    call.cancel()  # as the executor's timeout does
    with pytest.raises(asyncio.CancelledError):
        await call
    for _ in range(int(WAIT / 0.01)):
        if gone(worker):
            break
        await asyncio.sleep(0.01)
    assert gone(worker)
    # Both slots work again: the killed worker was replaced.
    results = await asyncio.wait_for(asyncio.gather(*(pool.run(square, (n,), {}) for n in range(6))), WAIT)
    assert results == [n * n for n in range(6)]
    assert worker not in pool.pids()


async def test_row18_killing_one_worker_leaves_the_call_on_the_other_untouched(
    pool: ProcessPool, tmp_path: Path
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    doomed = asyncio.create_task(pool.run(spin, (str(first),), {}))
    other = asyncio.create_task(pool.run(spin, (str(second),), {}))
    doomed_pid, other_pid = await started_pid(first), await started_pid(second)
    doomed.cancel()
    await asyncio.gather(doomed, return_exceptions=True)
    for _ in range(int(WAIT / 0.01)):
        if gone(doomed_pid):
            break
        await asyncio.sleep(0.01)
    assert gone(doomed_pid) and not gone(other_pid) and not other.done()
    other.cancel()
    await asyncio.gather(other, return_exceptions=True)


async def test_a_call_cancelled_while_queued_never_runs(pool: ProcessPool, tmp_path: Path) -> None:
    busy = [asyncio.create_task(pool.run(spin, (str(tmp_path / f"busy{i}"),), {})) for i in range(2)]
    for i in range(2):
        await started_pid(tmp_path / f"busy{i}")
    queued = asyncio.create_task(pool.run(spin, (str(tmp_path / "queued"),), {}))
    await asyncio.sleep(0.05)
    queued.cancel()
    for task in busy:
        task.cancel()
    await asyncio.gather(queued, *busy, return_exceptions=True)
    assert await asyncio.wait_for(pool.run(square, (3,), {}), WAIT) == 9
    assert not (tmp_path / "queued").exists()


async def test_a_worker_killed_from_outside_fails_only_its_call_saying_how(pool: ProcessPool, tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    call = asyncio.create_task(pool.run(spin, (str(marker),), {}))
    os.kill(await started_pid(marker), signal.SIGKILL)
    with pytest.raises(WorkerDied, match="killed by SIGKILL: out of memory, or killed from outside"):
        await asyncio.wait_for(call, WAIT)
    assert await asyncio.wait_for(pool.run(square, (4,), {}), WAIT) == 16


@pytest.mark.parametrize("exc", [SystemExit(2), KeyboardInterrupt(), GeneratorExit()])
async def test_base_exceptions_from_a_worker_arrive_wrapped(pool: ProcessPool, exc: BaseException) -> None:
    # issue 10 row 9, in a worker: the worker survives and the caller gets an ordinary exception.
    with pytest.raises(ToolBaseException, match=type(exc).__name__) as info:
        await asyncio.wait_for(pool.run(raise_, (exc,), {}), WAIT)
    assert type(info.value.original) is type(exc)
    assert await asyncio.wait_for(pool.run(square, (5,), {}), WAIT) == 25


class NeedsTwo(Exception):
    def __init__(self, a: str, b: str) -> None:
        super().__init__(f"{a}/{b}")


def raise_needs_two() -> None:
    raise NeedsTwo("x", "y")


def return_lock() -> Any:
    return threading.Lock()


async def test_an_exception_or_result_that_does_not_pickle_back_is_described(pool: ProcessPool) -> None:
    with pytest.raises(RemoteError, match="NeedsTwo: x/y"):
        await asyncio.wait_for(pool.run(raise_needs_two, (), {}), WAIT)
    with pytest.raises(TypeError, match="result cannot be sent back"):
        await asyncio.wait_for(pool.run(return_lock, (), {}), WAIT)
    with pytest.raises(TypeError, match="arguments cannot be sent"):
        await asyncio.wait_for(pool.run(square, (threading.Lock(),), {}), WAIT)


def _run_script(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(__file__).parent.parent,
    )


@pytest.mark.allow_blocking
def test_row18_the_process_exits_promptly_with_calls_still_running(tmp_path: Path) -> None:
    # issue 10 row 18: one call timed out (cancelled), another still running when the program ends.
    marker = tmp_path / "pid"
    done = _run_script(
        f"""
        import asyncio, pathlib, threading, time
        from llmcompiler._offload import run_in_process
        from tests.test_offload import spin

        async def timed_out():
            try:
                await asyncio.wait_for(run_in_process(spin, {{"marker": "/dev/null"}}), 0.5)
            except TimeoutError:
                print("timed out", flush=True)

        asyncio.run(timed_out())
        running = run_in_process(spin, {{"marker": {str(marker)!r}}})
        threading.Thread(target=asyncio.run, args=(running,), daemon=True).start()
        while not pathlib.Path({str(marker)!r}).exists():
            time.sleep(0.01)
        print("exiting", flush=True)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "timed out\nexiting\n"
    assert done.stderr == ""
    assert gone(int(marker.read_text()))


class Scaler:
    """A picklable object whose bound method is a compute-bound tool."""

    def __init__(self, factor: int) -> None:
        self.factor = factor

    def scale(self, n: int) -> dict[str, int]:
        """Multiply n by the factor."""
        return {"value": n * self.factor, "pid": os.getpid()}


class Locked(Scaler):
    """An object that cannot be pickled (it holds a lock)."""

    def __init__(self, factor: int) -> None:
        super().__init__(factor)
        self.lock = threading.Lock()


async def test_row13_a_bound_method_of_a_picklable_object_works_compute_bound() -> None:
    # issue 10 row 13: accepted, then every call failed; now it runs with a copy of its object.
    scale = tool(compute_bound=True)(Scaler(3).scale)
    [record] = await execute_plan("1. scale(7)", [scale])
    assert record.ok and record.result["value"] == 21 and record.result["pid"] != os.getpid()
    from_schema = Tool.from_schema(
        name="scale2",
        description="Scale.",
        parameters={"type": "object", "properties": {"n": {"type": "integer"}}},
        fn=Scaler(5).scale,
        compute_bound=True,
    )
    [record] = await execute_plan("1. scale2(n=2)", [from_schema])
    assert record.ok and record.result["value"] == 10


def test_row13_a_bound_method_of_an_unpicklable_object_is_refused_at_creation() -> None:
    with pytest.raises(UserError, match="bound to a Locked object that cannot be pickled"):
        tool(compute_bound=True)(Locked(2).scale)
    with pytest.raises(UserError, match="bound to a Locked object"):
        Tool.from_schema(
            name="scale",
            description="Scale.",
            parameters={"type": "object", "properties": {"n": {"type": "integer"}}},
            fn=Locked(2).scale,
            compute_bound=True,
        )


def test_row13_a_method_decorated_in_its_class_body_is_refused_at_creation() -> None:
    with pytest.raises(UserError, match="method written in a class body"):

        class Holder:
            @tool(compute_bound=True)
            def work(self, n: int) -> int:
                """Would be called without its object."""
                return n


class _Unreadable:
    """Pickles in the worker, but cannot be rebuilt here."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (int, ("not a number",))


@tool(compute_bound=True)
def unreadable_result() -> Any:
    """Return what the parent cannot unpickle."""
    return _Unreadable()


async def test_a_result_that_cannot_be_read_back_is_named_as_such() -> None:
    (record,) = await execute_plan("1. unreadable_result()", [unreadable_result])
    assert record.error is not None and "result cannot be read back" in record.error
