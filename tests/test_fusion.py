"""Selective fusion: calls of a tool with a batch implementation that become ready within its
batch window are one batched call; results go back to each task; records say who was fused."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from llmcompiler import Executor, Limits, TaskRecord, TaskStarted, ToolLimits, UserError, execute_plan, tool
from llmcompiler._events import RunEvent
from llmcompiler._tools import Tool
from tests.fakeclock import run_with_fake_clock


class Recorder:
    """A squaring tool with a batch implementation that logs every invocation."""

    def __init__(self, *, fail_batches: int = 0, bad: set[int] | None = None, wrong_length: bool = False) -> None:
        self.singles: list[dict[str, Any]] = []
        self.batches: list[list[dict[str, Any]]] = []
        self.batch_times: list[float] = []
        self.fail_batches = fail_batches
        self.bad = bad or set()
        self.wrong_length = wrong_length

    async def single(self, x: int) -> int:
        self.singles.append({"x": x})
        return x * x

    async def batch(self, calls: list[dict[str, Any]]) -> list[Any]:
        self.batches.append(calls)
        self.batch_times.append(asyncio.get_running_loop().time())
        if len(self.batches) <= self.fail_batches:
            raise ConnectionError("search backend unavailable")
        if self.wrong_length:
            return [0]
        return [ValueError(f"no square for {c['x']}") if c["x"] in self.bad else c["x"] * c["x"] for c in calls]

    def tool(self, **limits: Any) -> Tool:
        return Tool.from_schema(
            name="square",
            description="Square a number.",
            parameters={"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]},
            fn=self.single,
            batch=self.batch,
            limits=ToolLimits(**limits),
        )


@tool
async def later(seconds: float, value: int) -> int:
    """Sleep, then return ``value``."""
    await asyncio.sleep(seconds)
    return value


def by_idx(records: list[TaskRecord]) -> dict[int, TaskRecord]:
    return {r.idx: r for r in records}


def fan_out(n: int) -> str:
    return "\n".join(f"{i}. square({i})" for i in range(1, n + 1))


def test_calls_ready_together_are_one_batched_call_and_each_task_gets_its_own_result() -> None:
    rec = Recorder()
    records = by_idx(run_with_fake_clock(lambda: execute_plan(fan_out(8), [rec.tool(batch_window=0.005)])))
    assert len(rec.batches) == 1 and rec.singles == []
    assert [c["x"] for c in rec.batches[0]] == list(range(1, 9))
    assert {i: r.result for i, r in records.items()} == {i: i * i for i in range(1, 9)}
    for i, r in records.items():
        assert r.ok and r.batch_size == 8 and r.attempts == 1
        assert sorted(r.fused_with) == [j for j in range(1, 9) if j != i]


def test_the_window_is_measured_from_the_first_ready_call() -> None:
    rec = Recorder()
    run_with_fake_clock(lambda: execute_plan(fan_out(3), [rec.tool(batch_window=0.25)]))
    assert rec.batch_times == [pytest.approx(0.25)]


def test_calls_that_become_ready_after_the_window_closed_go_in_a_later_batch() -> None:
    rec = Recorder()
    plan = "\n".join(
        [
            "1. square(1)",
            "2. square(2)",
            "3. later(0.5, 7)",
            "4. square(4)",
            "5. square($3)",  # ready at 0.5 s: long after the first window closed
            "6. square($3)",
        ]
    )
    tools = [rec.tool(batch_window=0.01), later]
    records = by_idx(run_with_fake_clock(lambda: execute_plan(plan, tools)))
    assert [[c["x"] for c in b] for b in rec.batches] == [[1, 2, 4], [7, 7]]
    assert rec.batch_times == [pytest.approx(0.01), pytest.approx(0.51)]
    assert records[5].fused_with == (6,) and records[6].fused_with == (5,)
    assert records[1].batch_size == 3 and records[5].batch_size == 2


def test_max_batch_caps_the_size_of_a_batch() -> None:
    rec = Recorder()
    records = run_with_fake_clock(lambda: execute_plan(fan_out(10), [rec.tool(batch_window=0.005, max_batch=4)]))
    assert [len(b) for b in rec.batches] == [4, 4, 2]
    assert all(r.ok for r in records)
    assert rec.batch_times[:2] == [0.0, 0.0]  # a full batch does not wait for the window


def test_a_call_alone_in_its_window_calls_the_plain_function() -> None:
    rec = Recorder()
    [record] = run_with_fake_clock(lambda: execute_plan("1. square(3)", [rec.tool()]))
    assert rec.batches == [] and rec.singles == [{"x": 3}]
    assert record.result == 9 and record.batch_size == 1 and record.fused_with == ()


def test_a_failed_batch_fails_every_call_in_it() -> None:
    rec = Recorder(fail_batches=1)
    records = run_with_fake_clock(lambda: execute_plan(fan_out(3), [rec.tool()]))
    assert [r.error for r in records] == ["square raised ConnectionError: search backend unavailable"] * 3
    assert all(r.state == "failed" for r in records)


def test_an_exception_in_the_result_list_fails_only_its_call() -> None:
    rec = Recorder(bad={2})
    records = by_idx(run_with_fake_clock(lambda: execute_plan(fan_out(3), [rec.tool()])))
    assert records[2].error == "square raised ValueError: no square for 2"
    assert records[1].result == 1 and records[3].result == 9
    assert len(rec.batches) == 1


def test_a_result_list_of_the_wrong_length_fails_the_batch_with_a_message() -> None:
    rec = Recorder(wrong_length=True)
    records = run_with_fake_clock(lambda: execute_plan(fan_out(3), [rec.tool()]))
    assert {r.error for r in records} == {"the batch implementation of square returned 1 results for 3 calls"}


def test_calls_of_a_failed_batch_retry_and_may_be_fused_again() -> None:
    rec = Recorder(fail_batches=1)
    records = run_with_fake_clock(lambda: execute_plan(fan_out(4), [rec.tool(retries=1, backoff=1.0)]))
    assert [r.result for r in records] == [1, 4, 9, 16]
    assert all(r.attempts == 2 for r in records)
    assert [len(b) for b in rec.batches] == [4, 4]


def test_a_batch_takes_one_slot_of_the_concurrency_limits() -> None:
    rec = Recorder()
    limits = Limits(max_concurrency=1)

    async def main() -> list[TaskRecord]:
        executor = Executor([rec.tool(max_concurrency=1)], limits=limits)
        outcome = await executor.run_round(_chunks(fan_out(6)))
        return outcome.records

    records = run_with_fake_clock(main)
    assert len(rec.batches) == 1 and all(r.ok for r in records)


async def _chunks(text: str) -> Any:
    yield text


def test_a_batch_that_hangs_times_out_every_call_and_is_cancelled() -> None:
    cancelled = asyncio.Event()

    async def hang(calls: list[dict[str, Any]]) -> list[int]:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("unreachable")

    slow = Tool.from_schema(
        name="slow",
        description="Never answers.",
        parameters={"type": "object", "properties": {"x": {"type": "integer"}}},
        fn=lambda x: x,
        batch=hang,
        limits=ToolLimits(timeout=2.0),
    )

    async def main() -> tuple[list[TaskRecord], bool]:
        records = await execute_plan("1. slow(1)\n2. slow(2)", [slow])
        await asyncio.sleep(0)  # the batch task handles its cancellation
        return records, cancelled.is_set()

    records, was_cancelled = run_with_fake_clock(main)
    assert [r.error for r in records] == ["slow timed out after 2s"] * 2
    assert was_cancelled


def test_every_fused_task_reports_its_start() -> None:
    rec = Recorder()
    events: list[RunEvent] = []
    run_with_fake_clock(lambda: execute_plan(fan_out(3), [rec.tool(batch_window=0.5)], on_event=events.append))
    starts = [e for e in events if isinstance(e, TaskStarted)]
    assert sorted(e.idx for e in starts) == [1, 2, 3]
    assert {e.time for e in starts} == {0.5}


async def test_a_sync_batch_implementation_runs_in_a_thread() -> None:
    calls: list[int] = []

    def double_many(batch: list[dict[str, Any]]) -> list[int]:
        calls.append(len(batch))
        return [2 * c["x"] for c in batch]

    @tool(batch=double_many, batch_window=0)
    def double(x: int) -> int:
        """Double a number."""
        return 2 * x

    records = await execute_plan(fan_out(5).replace("square", "double"), [double])
    assert [r.result for r in records] == [2, 4, 6, 8, 10]
    assert calls == [5]  # window 0: the calls ready in the same loop pass


def test_batch_settings_are_checked() -> None:
    with pytest.raises(UserError, match="batch_window"):
        ToolLimits(batch_window=-1)
    with pytest.raises(UserError, match="max_batch"):
        ToolLimits(max_batch=0)
    with pytest.raises(UserError, match="batch must be callable"):
        Tool.from_schema(name="t", description="", parameters={}, fn=lambda: 1, batch=3)  # type: ignore[arg-type]


async def test_call_batch_without_a_batch_implementation_is_a_user_error() -> None:
    @tool
    def plain(x: int) -> int:
        """Return x."""
        return x

    with pytest.raises(UserError, match="no batch implementation"):
        await plain.call_batch([{"x": 1}])
