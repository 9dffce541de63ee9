"""The executor: event-driven dispatch, limits, failures, cancellation. Ordered with events, never sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from llmcompiler import (
    Executor,
    Limits,
    RunError,
    TaskFinished,
    TaskRecord,
    TaskStarted,
    Tool,
    ToolLimits,
    execute_plan,
    tool,
)
from llmcompiler._events import RunEvent
from tests.fakeclock import run_with_fake_clock


def by_idx(records: list[TaskRecord]) -> dict[int, TaskRecord]:
    return {r.idx: r for r in records}


@tool
async def echo(x: Any) -> Any:
    """Return the argument."""
    return x


@tool
async def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@tool
async def boom(reason: str) -> str:
    """Always fail."""
    raise RuntimeError(reason)


async def test_a_plan_runs_and_records_come_back_in_plan_order() -> None:
    plan = "1. add(1, 2)\n2. add(a=$1, b=10)\n3. echo({'sum': $2, 'text': 'got $2'})\n4. join()"
    records = await execute_plan(plan, [add, echo])
    assert [r.idx for r in records] == [1, 2, 3, 4]
    assert [r.result for r in records] == [3, 13, {"sum": 13, "text": "got 13"}, None]
    assert records[1].args == {"a": 3, "b": 10}  # references resolved, with their type
    assert records[1].deps == frozenset({1})
    assert records[3].tool == "join" and records[3].deps == frozenset({1, 2, 3})
    for r in records[:3]:
        assert r.ok and r.state == "done" and r.attempts == 1
        assert r.start is not None and r.end is not None and r.start <= r.end
    assert records[0].end <= records[1].start  # type: ignore[operator]


async def test_the_first_tool_starts_before_the_plan_stream_ends() -> None:
    first_started = asyncio.Event()

    @tool
    async def first() -> str:
        """Signal that it started."""
        first_started.set()
        return "one"

    async def stream() -> AsyncIterator[str]:
        yield "1. first()\n2. ec"
        # The model "keeps writing" only after the first tool has started: if the executor
        # waited for the whole plan, this would never finish.
        await first_started.wait()
        yield "ho('two')\n3. join()"

    async with asyncio.timeout(5):
        records = await execute_plan(stream(), [first, echo])
    assert [r.result for r in records] == ["one", "two", None]


async def test_independent_tasks_run_concurrently() -> None:
    arrived = 0
    all_here = asyncio.Event()

    @tool
    async def meet(n: int) -> int:
        """Wait until all three are running at once."""
        nonlocal arrived
        arrived += 1
        if arrived == 3:
            all_here.set()
        await all_here.wait()
        return n

    async with asyncio.timeout(5):
        records = await execute_plan("1. meet(1)\n2. meet(2)\n3. meet(3)", [meet])
    assert [r.result for r in records] == [1, 2, 3]


async def test_a_task_starts_when_its_last_dependency_finishes_not_before() -> None:
    gates = {1: asyncio.Event(), 2: asyncio.Event()}
    started = {n: asyncio.Event() for n in (1, 2, 3)}
    ended = {n: asyncio.Event() for n in (1, 2, 3)}

    @tool
    async def step(n: int, after: Any = None) -> int:
        """Wait for its gate."""
        started[n].set()
        if n in gates:
            await gates[n].wait()
        ended[n].set()
        return n

    run = asyncio.create_task(execute_plan("1. step(1)\n2. step(2)\n3. step(3, [$1, $2])", [step]))
    async with asyncio.timeout(5):
        await started[1].wait()
        await started[2].wait()
        gates[1].set()
        await ended[1].wait()
        for _ in range(20):
            await asyncio.sleep(0)  # let every runnable task run: task 3 must still be waiting
        assert not started[3].is_set()
        gates[2].set()
        records = await run
    assert records[2].start is not None and records[1].end is not None
    assert records[2].start >= records[1].end
    assert records[2].args == {"n": 3, "after": [1, 2]}


async def test_a_failing_tool_keeps_its_siblings_and_fails_its_dependents() -> None:
    plan = "1. echo('ok')\n2. boom('bad luck')\n3. echo($2)\n4. echo($3)\n5. echo($1)\n6. join()"
    records = by_idx(await execute_plan(plan, [echo, boom]))
    assert records[1].result == "ok"
    assert records[2].error == "boom raised RuntimeError: bad luck" and records[2].state == "failed"
    assert records[3].error == "dependency 2 failed: boom raised RuntimeError: bad luck"
    assert records[3].state == "skipped" and records[3].start is None
    assert records[4].error == "dependency 3 failed: dependency 2 failed: boom raised RuntimeError: bad luck"
    assert records[5].result == "ok"
    assert records[6].tool == "join"


async def test_a_dependent_parsed_after_its_dependency_failed_is_given_up_at_once() -> None:
    async def stream() -> AsyncIterator[str]:
        yield "1. boom('x')\n"
        await asyncio.sleep(0)
        yield "2. echo($1)\n"

    records = by_idx(await execute_plan(stream(), [echo, boom]))
    assert records[2].error == "dependency 1 failed: boom raised RuntimeError: x"


def test_a_hanging_tool_times_out_and_the_run_goes_on() -> None:
    @tool(timeout=30)
    async def hang() -> None:
        """Never return."""
        await asyncio.Event().wait()

    records = by_idx(run_with_fake_clock(lambda: execute_plan("1. hang()\n2. echo('fine')\n3. echo($1)", [hang, echo])))
    assert records[1].error == "hang timed out after 30s"
    assert records[1].duration == pytest.approx(30)
    assert records[2].result == "fine"
    assert records[3].error == "dependency 1 failed: hang timed out after 30s"


def test_the_run_wide_default_timeout_applies_to_tools_without_one() -> None:
    @tool
    async def slow() -> str:
        """Takes a minute."""
        await asyncio.sleep(60)
        return "late"

    records = run_with_fake_clock(lambda: execute_plan("1. slow()", [slow], timeout=5))
    assert records[0].error == "slow timed out after 5s"
    assert records[0].duration == pytest.approx(5)
    overridden = {"slow": ToolLimits(timeout=120)}
    records = run_with_fake_clock(lambda: execute_plan("1. slow()", [slow], timeout=5, tool_limits=overridden))
    assert records[0].result == "late"
    assert records[0].duration == pytest.approx(60)


async def test_retryable_tools_retry_with_exponential_backoff() -> None:
    calls = 0

    @tool(retries=3, backoff=0.5)
    async def flaky() -> str:
        """Fail twice, then work."""
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError(f"attempt {calls}")
        return "finally"

    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)

    executor = Executor([flaky], sleep=fake_sleep)
    outcome = await executor.run_round(_chunks("1. flaky()"))
    (record,) = outcome.records
    assert (record.result, record.attempts, record.error) == ("finally", 3, None)
    assert waits == [0.5, 1.0]


async def test_retries_give_up_with_the_last_error() -> None:
    @tool(retries=2, backoff=1)
    async def down() -> str:
        """Always fail."""
        raise ConnectionError("refused")

    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)

    outcome = await Executor([down], sleep=fake_sleep).run_round(_chunks("1. down()"))
    (record,) = outcome.records
    assert record.attempts == 3 and record.error == "down raised ConnectionError: refused"
    assert waits == [1, 2]


async def test_tools_without_retries_are_called_once() -> None:
    records = await execute_plan("1. boom('once')", [boom])
    assert records[0].attempts == 1


async def _max_running(plan: str, tools_limit: dict[str, Any], n: int, **limits: Any) -> int:
    """Run n gated tasks; release them one at a time; return the most that ran at once."""
    started: asyncio.Queue[int] = asyncio.Queue()
    release = {i: asyncio.Event() for i in range(1, n + 1)}
    running = 0
    peak = 0

    async def work(i: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        started.put_nowait(i)
        await release[i].wait()
        running -= 1
        return i

    gated = Tool.from_schema(
        name="gated",
        description="wait for release",
        parameters={"type": "object", "properties": {"i": {"type": "integer"}}, "required": ["i"]},
        fn=work,
        limits=ToolLimits(**tools_limit),
    )
    run = asyncio.create_task(execute_plan(plan, [gated], **limits))
    for _ in range(n):
        i = await asyncio.wait_for(started.get(), 5)
        for _ in range(10):
            await asyncio.sleep(0)  # give any other runnable task its chance to start
        release[i].set()
    records = await asyncio.wait_for(run, 5)
    assert [r.result for r in records] == list(range(1, n + 1))
    return peak


async def test_global_max_concurrency_is_honoured() -> None:
    plan = "\n".join(f"{i}. gated({i})" for i in range(1, 7))
    assert await _max_running(plan, {}, 6, max_concurrency=2) == 2
    assert await _max_running(plan, {}, 6) == 6


async def test_per_tool_max_concurrency_is_honoured() -> None:
    plan = "\n".join(f"{i}. gated({i})" for i in range(1, 6))
    assert await _max_running(plan, {"max_concurrency": 1}, 5) == 1
    assert await _max_running(plan, {}, 5, tool_limits={"gated": ToolLimits(max_concurrency=3)}) == 3


def test_per_tool_rate_limit_spaces_out_calls() -> None:
    """On the fake clock: 2 calls per 0.2 s start 0.1 s apart, in plan order."""
    starts: list[tuple[int, float]] = []

    @tool(rate_limit=2, period=0.2)
    async def limited(i: int) -> int:
        """Record when it started."""
        starts.append((i, asyncio.get_running_loop().time()))
        return i

    async def main() -> list[TaskRecord]:
        return await execute_plan("\n".join(f"{i}. limited({i})" for i in range(1, 5)), [limited])

    records = run_with_fake_clock(main)
    assert all(r.ok for r in records)
    assert [i for i, _ in starts] == [1, 2, 3, 4]
    assert [round(t - starts[0][1], 6) for _, t in starts] == [0.0, 0.1, 0.2, 0.3]


def test_a_fractional_rate_is_held_and_a_throttled_tool_holds_no_slot() -> None:  # issue 10 row 19
    starts: dict[str, list[float]] = {"slow": [], "free": []}

    @tool(rate_limit=0.5)
    async def slow(i: int) -> int:
        """At most one call every 2 s."""
        starts["slow"].append(asyncio.get_running_loop().time())
        return i

    @tool
    async def free(i: int) -> int:
        """No limit of its own."""
        starts["free"].append(asyncio.get_running_loop().time())
        return i

    async def main() -> list[TaskRecord]:
        plan = "1. slow(1)\n2. slow(2)\n3. slow(3)\n4. free(4)"
        return await execute_plan(plan, [slow, free], max_concurrency=1)

    records = run_with_fake_clock(main)
    assert all(r.ok for r in records)
    origin = starts["slow"][0]
    assert [round(t - origin, 6) for t in starts["slow"]] == [0.0, 2.0, 4.0]
    # The rate token is taken before the run-wide slot: waiting slow calls never hold it.
    assert round(starts["free"][0] - origin, 6) == 0.0


async def test_cancelling_a_run_cancels_every_tool_in_flight() -> None:
    started = 0
    both_started = asyncio.Event()
    cancelled: list[int] = []

    @tool
    async def forever(i: int) -> None:
        """Run until cancelled."""
        nonlocal started
        started += 1
        if started == 2:
            both_started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(i)
            raise

    run = asyncio.create_task(execute_plan("1. forever(1)\n2. forever(2)", [forever]))
    await asyncio.wait_for(both_started.wait(), 5)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert sorted(cancelled) == [1, 2]


async def test_unknown_tools_and_bad_arguments_fail_their_task_with_the_line() -> None:
    plan = "1. serch('x')\n2. add(1)\n3. add(1, 2, 3)\n4. add('one', 2)\n5. add(1, a=2)\n6. echo($1)\n7. add(1, 2)"
    records = by_idx(await execute_plan(plan, [add, echo]))
    assert records[1].error == "plan line \"1. serch('x')\": unknown tool 'serch' (tools: add, echo)"
    assert records[2].error == "invalid arguments for add: missing required argument 'b'"
    assert records[3].error == "plan line '3. add(1, 2, 3)': add takes 2 arguments (a, b) but 3 were given"
    assert records[4].error is not None and "argument 'a'" in records[4].error
    assert records[5].error == "plan line '5. add(1, a=2)': argument 'a' is given both by position and by name"
    assert records[6].error is not None and records[6].error.startswith("dependency 1 failed: plan line")
    assert records[7].result == 3


async def test_a_plan_line_that_fails_to_parse_is_a_failed_record() -> None:
    records = by_idx(await execute_plan("1. echo(oops)\n2. echo($1)\n3. echo('fine')", [echo]))
    assert records[1].error == "plan line '1. echo(oops)': unknown name 'oops': strings need quotes"
    assert records[2].error is not None and records[2].error.startswith("dependency 1 failed")
    assert records[3].result == "fine"


async def test_prose_lines_are_reported_as_plan_errors() -> None:
    executor = Executor([echo])
    outcome = await executor.run_round(_chunks("Sure! Here is my plan.\n1. echo(1)"))
    assert outcome.plan_errors == ["plan line 'Sure! Here is my plan.': not a task, a thought or formatting"]
    assert [r.result for r in outcome.records] == [1]


async def test_a_failing_plan_stream_drains_finished_work_and_raises_with_it() -> None:
    release = asyncio.Event()

    @tool
    async def waits() -> str:
        """Finish when released."""
        await release.wait()
        return "kept"

    async def stream() -> AsyncIterator[str]:
        yield "1. waits()\n"
        release.set()
        raise ConnectionResetError("connection lost")

    with pytest.raises(RunError, match="the plan stream failed: ConnectionResetError: connection lost") as info:
        await execute_plan(stream(), [waits])
    assert [(r.idx, r.result) for r in info.value.tasks] == [(1, "kept")]


async def test_an_executor_failure_closes_the_stream_and_cancels_tools() -> None:
    closed = asyncio.Event()
    tool_cancelled = asyncio.Event()
    started = asyncio.Event()

    @tool
    async def forever() -> None:
        """Run until cancelled."""
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            tool_cancelled.set()
            raise

    async def stream() -> AsyncIterator[str]:
        try:
            yield "1. forever()\n"
            await started.wait()
            yield "2. forever()\n"
            await asyncio.Event().wait()
        finally:
            closed.set()

    def handler(event: RunEvent) -> None:
        if isinstance(event, TaskStarted) and event.idx == 2:
            raise RuntimeError("a bug in an event handler")

    # The handler's own exception, never an ExceptionGroup (issue 10 row 25).
    with pytest.raises(RuntimeError, match="a bug in an event handler"):
        await asyncio.wait_for(execute_plan(stream(), [forever], on_event=handler), 5)
    assert closed.is_set() and tool_cancelled.is_set()


async def test_events_report_every_task_once() -> None:
    seen: list[RunEvent] = []
    await execute_plan("1. echo(1)\n2. boom('x')\n3. echo($2)\n4. join()", [echo, boom], on_event=seen.append)
    finished = [e.record.idx for e in seen if isinstance(e, TaskFinished)]
    started = [e.idx for e in seen if isinstance(e, TaskStarted)]
    assert sorted(finished) == [1, 2, 3, 4]
    assert sorted(started) == [1, 2]


async def test_results_pass_with_their_python_type() -> None:
    @tool
    async def make() -> dict[str, list[int]]:
        """A structured result."""
        return {"xs": [1, 2]}

    seen: list[Any] = []

    @tool
    async def take(value: Any) -> None:
        """Record what it got."""
        seen.append(value)

    await execute_plan("1. make()\n2. take($1)\n3. take('$1')", [make, take])
    assert seen[0] == {"xs": [1, 2]}
    assert seen[1] == '{"xs": [1, 2]}'


async def test_limits_are_checked() -> None:
    from llmcompiler import UserError

    with pytest.raises(UserError, match="max_concurrency must be an integer of at least 1"):
        Limits(max_concurrency=0)
    with pytest.raises(UserError, match="timeout must be a positive number of seconds"):
        ToolLimits(timeout=0)
    with pytest.raises(UserError, match="timeout must be a positive number of seconds"):
        Limits(timeout=-1)


async def _chunks(text: str) -> AsyncIterator[str]:
    yield text
