"""Load balancing: compute-bound tools run in a process pool sized to the cores; others stay on
the loop or in threads; a compute-bound tool must be sendable to a worker process."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from llmcompiler import TaskRecord, UserError, execute_plan, tool
from llmcompiler._offload import cpu_slots, process_pool, shutdown_process_pool


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
    pool = process_pool()
    assert pool._max_workers == cpu_slots() == len(os.sched_getaffinity(0))  # type: ignore[attr-defined]


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
