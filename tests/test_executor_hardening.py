"""Tool faults, odd results, limits and threads: each fails at most its own task (issue 10)."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import textwrap
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmcompiler import (
    Executor,
    Limits,
    LLMCompiler,
    ParseError,
    RunError,
    TaskFinished,
    TaskParsed,
    TaskRecord,
    execute_plan,
    tool,
)
from llmcompiler._errors import ReplyCut
from llmcompiler.testing import ScriptedLLM
from tests.fakeclock import run_with_fake_clock
from tests.strategies import chunkings, model_plans


@tool
def echo(x: Any = None) -> Any:
    """Return x."""
    return x


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """An event hung tool threads wait on; set when the test ends so no thread outlives it."""
    event = threading.Event()
    yield event
    event.set()


def by_idx(records: list[TaskRecord]) -> dict[int, TaskRecord]:
    return {r.idx: r for r in records}


# -- exceptions a tool raises


async def test_a_tools_own_timeout_error_is_its_failure_not_the_executors_timeout() -> None:  # row 6
    @tool
    async def slow(x: int) -> int:
        """Raise the tool's own TimeoutError."""
        raise TimeoutError("upstream took too long")

    records = by_idx(await execute_plan("1. slow(1)\n2. echo(2)", [slow, echo], max_concurrency=2))
    assert records[1].error == "slow raised TimeoutError: upstream took too long"
    assert records[2].result == 2


async def test_a_tools_own_timeout_error_under_a_timeout_is_not_called_a_timeout() -> None:  # row 6
    @tool(timeout=30)
    def slow(x: int) -> int:
        """Raise the tool's own TimeoutError from a thread."""
        raise TimeoutError

    records = by_idx(await execute_plan("1. slow(1)", [slow]))
    assert records[1].error == "slow raised TimeoutError"


async def test_a_cancelled_error_raised_by_a_tool_fails_only_its_task() -> None:  # row 7
    @tool
    async def rude(x: int) -> int:
        """Raise CancelledError without being cancelled."""
        raise asyncio.CancelledError

    records = by_idx(await execute_plan("1. rude(1)\n2. echo($1)\n3. echo(3)", [rude, echo], max_concurrency=4))
    assert records[1].error is not None and "CancelledError" in records[1].error
    assert records[2].error is not None and records[2].error.startswith("dependency 1 failed")
    assert records[3].result == 3


async def test_a_real_cancellation_still_cancels_the_run() -> None:  # row 7
    started = asyncio.Event()

    @tool
    async def wait() -> None:
        """Wait forever."""
        started.set()
        await asyncio.Event().wait()

    run = asyncio.create_task(execute_plan("1. wait()", [wait]))
    await started.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run


async def test_a_sync_tool_raising_stop_iteration_fails_its_task() -> None:  # row 8
    @tool
    def first(items: list[int]) -> int:
        """The first item."""
        return next(iter(items))

    records = by_idx(await execute_plan("1. first([])\n2. first([5])", [first]))
    assert records[1].error == "first raised StopIteration"
    assert records[2].result == 5


@pytest.mark.parametrize("thread", [True, False], ids=["sync", "async"])
@pytest.mark.parametrize("exc", [SystemExit(2), GeneratorExit()], ids=["SystemExit", "GeneratorExit"])
async def test_system_exit_and_generator_exit_fail_only_their_task(thread: bool, exc: BaseException) -> None:  # row 9
    def body(x: int) -> int:
        raise exc

    async def abody(x: int) -> int:
        raise exc

    bad = tool(name="bad")(body if thread else abody)
    records = by_idx(await execute_plan("1. bad(1)\n2. echo(2)\n3. echo($1)", [bad, echo]))
    assert records[1].error is not None and records[1].error.startswith(f"bad raised {type(exc).__name__}")
    assert records[2].result == 2
    assert records[3].state == "skipped"


def test_keyboard_interrupt_still_propagates() -> None:  # row 9
    @tool
    async def interrupted() -> None:
        """Raise KeyboardInterrupt."""
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        asyncio.run(execute_plan("1. interrupted()", [interrupted]))


# -- odd results


async def test_a_result_its_dependents_cannot_use_fails_only_those_dependents() -> None:  # row 10
    @tool
    def big() -> int:
        """A huge number."""
        return 10**5000

    @tool
    def deep() -> list[Any]:
        """A list nested 5,000 deep."""
        value: list[Any] = []
        for _ in range(5000):
            value = [value]
        return value

    @tool
    def surrogate() -> str:
        """A string with a lone surrogate."""
        return "a\ud800b"

    plan = (
        '1. big()\n2. echo("v=$1")\n3. echo($1)\n4. deep()\n5. echo("d=$4")\n6. surrogate()\n7. echo("s=$6")\n8. join()'
    )
    records = by_idx(await execute_plan(plan, [big, deep, surrogate, echo]))
    assert records[1].result == 10**5000
    assert records[2].error is not None and "$1" in records[2].error
    assert records[3].result == 10**5000
    assert records[4].ok
    assert records[5].error is not None and "$4 cannot be spliced" in records[5].error
    assert records[7].result == "s=a\ud800b"
    assert sorted(records) == list(range(1, 9))


async def test_consumers_get_their_own_copies_of_a_result() -> None:  # row 11
    @tool
    def items() -> list[int]:
        """A list."""
        return [1, 2]

    @tool
    def spoil(xs: Any, tag: int) -> int:
        """Mutate what it was given."""
        xs.append(tag)
        return len(xs)

    records = by_idx(await execute_plan("1. items()\n2. spoil($1, 3)\n3. spoil($1, 4)", [items, spoil]))
    assert records[1].result == [1, 2]
    assert records[2].result == 3 and records[3].result == 3
    assert records[2].args["xs"] == [1, 2]  # the record keeps what was passed, not what the tool did to it


async def test_the_memo_cache_never_changes_after_the_fact() -> None:  # row 11
    calls = 0

    @tool(pure=True)
    def fetch(key: str) -> list[int]:
        """A pure lookup."""
        nonlocal calls
        calls += 1
        return [1]

    @tool
    def spoil(xs: Any) -> int:
        """Mutate what it was given."""
        xs.append(99)
        return len(xs)

    executor = Executor([fetch, spoil])
    first = await executor.run_round(_chunks('1. fetch("k")\n2. spoil($1)\n3. fetch("k")\n4. spoil($3)'))
    assert [r.result for r in first.records] == [[1], 2, [1], 2]
    later = await executor.run_round(_chunks('5. fetch("k")\n6. spoil($5)'), round=2)
    assert [r.result for r in later.records] == [[1], 2]
    assert later.records[0].cached
    assert [executor.records[i].result for i in (1, 3, 5)] == [[1], [1], [1]]
    assert calls == 1


async def test_a_pure_tool_with_an_argument_whose_hash_raises_is_not_memoised() -> None:  # row 12
    class BadHash:
        def __hash__(self) -> int:
            raise RuntimeError("no hash for you")

    @tool
    def make() -> Any:
        """An odd object."""
        return BadHash()

    @tool(pure=True)
    def use(x: Any) -> str:
        """Use it."""
        return type(x).__name__

    records = by_idx(await execute_plan("1. make()\n2. use($1)\n3. use($1)", [make, use]))
    assert records[2].result == "BadHash" and records[3].result == "BadHash"
    assert not records[2].cached and not records[3].cached


async def test_many_retries_without_backoff_end_in_one_failed_task() -> None:  # row 12
    @tool(retries=1100, backoff=0)
    async def flaky() -> None:
        """Always fail."""
        raise ValueError("nope")

    (record,) = await execute_plan("1. flaky()", [flaky])
    assert record.error == "flaky raised ValueError: nope"
    assert record.attempts == 1101


# -- threads


async def test_sync_tools_run_as_many_at_once_as_the_limit_allows() -> None:  # row 14
    barrier = threading.Barrier(16, timeout=10)

    @tool
    def meet(i: int) -> int:
        """Wait until 16 calls run at once."""
        barrier.wait()
        return i

    plan = "\n".join(f"{i}. meet({i})" for i in range(1, 17))
    records = await execute_plan(plan, [meet], max_concurrency=16)
    assert [r.result for r in records] == list(range(1, 17))


def test_run_returns_right_after_the_timeout_of_a_hung_sync_tool(release: threading.Event) -> None:  # row 15
    @tool
    def hang() -> None:
        """Hang until the test ends."""
        release.wait()

    llm = ScriptedLLM(["1. hang()\n2. join()", "Action: Finish(gave up)"])
    result = LLMCompiler(llm=llm, tools=[hang], timeout=0.2).run("q")
    assert result.answer == "gave up"
    assert result.tasks[0].error == "hang timed out after 0.2s"
    assert not release.is_set()  # run() returned while the thread still hangs


@pytest.mark.allow_blocking
def test_a_hung_tool_thread_never_blocks_the_process_exit() -> None:  # row 15
    code = textwrap.dedent(
        """
        import time
        from llmcompiler import LLMCompiler, tool
        from llmcompiler.testing import ScriptedLLM

        @tool
        def hang() -> None:
            '''Sleep a minute.'''
            time.sleep(60)

        llm = ScriptedLLM(["1. hang()\\n2. join()", "Action: Finish(done)"])
        print(LLMCompiler(llm=llm, tools=[hang], timeout=0.2).run("q").answer)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout.strip() == "done"


async def test_calls_after_hung_ones_still_run(release: threading.Event) -> None:  # row 16
    @tool
    def hang(i: int) -> None:
        """Hang until the test ends."""
        release.wait()

    executor = Executor([hang, echo], limits=Limits(max_concurrency=6, timeout=0.2))
    outcome = await executor.run_round(_chunks("\n".join(f"{i}. hang({i})" for i in range(1, 7))))
    assert all(r.error == "hang timed out after 0.2s" for r in outcome.records)
    outcome = await executor.run_round(_chunks("7. echo(7)"), round=2)
    assert [r.result for r in outcome.records] == [7]


def _all_ok(calls: list[dict[str, Any]]) -> list[None]:
    return [None for _ in calls]


@pytest.mark.parametrize("batch", [None, _all_ok], ids=["plain", "batched"])
async def test_a_retry_never_overlaps_a_still_running_attempt(batch: Any) -> None:  # row 17
    running = 0
    most = 0
    started = 0
    lock = threading.Lock()
    gate = threading.Event()

    @tool(timeout=0.05, retries=2, backoff=0, batch=batch)
    def effect() -> None:
        """A side effect that takes longer than the timeout (released when the test ends)."""
        nonlocal running, most, started
        with lock:
            running += 1
            started += 1
            most = max(most, running)
        gate.wait(0.3)
        with lock:
            running -= 1

    try:
        (record,) = await execute_plan("1. effect()", [effect])
    finally:
        gate.set()
    assert most == 1  # whatever the timing: never two executions of the task at once
    assert record.error is not None and record.error.startswith("effect timed out after 0.05s")
    assert started <= record.attempts


# -- event loops, handlers


def test_many_sync_runs_keep_no_event_loop_alive_and_threads_flat() -> None:  # row 21
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    def search_many(calls: list[dict[str, Any]]) -> list[str]:
        return [c["q"] for c in calls]

    @tool(batch=search_many, max_concurrency=1)
    async def search(q: str) -> str:
        """Search."""
        loops.append(weakref.ref(asyncio.get_running_loop()))
        return q

    @tool
    def shout(q: str) -> str:
        """A sync tool: runs in the agent's threads."""
        return q.upper()

    plan = '1. search("a")\n2. search("b")\n3. shout("c")\n4. shout("d")\n5. join()'
    llm = ScriptedLLM([plan, "Action: Finish(ok)"] * 50)
    agent = LLMCompiler(llm=llm, tools=[search, shout], max_concurrency=2)
    for _ in range(50):
        assert agent.run("q").answer == "ok"
    gc.collect()
    alive = {id(loop()) for loop in loops if loop() is not None}
    assert len(alive) <= 1
    pool = agent._gates._threads  # the agent's one pool, shared by every run on every loop
    assert pool is not None and pool.threads <= 2


async def test_a_failing_event_handler_raises_its_own_exception_not_a_group() -> None:  # row 25
    def handler(event: object) -> None:
        if isinstance(event, TaskFinished):
            raise LookupError("handler bug")

    with pytest.raises(LookupError, match="handler bug"):
        await execute_plan("1. echo(1)\n2. echo($1)", [echo], on_event=handler)


async def _chunks(text: str) -> Any:
    yield text


async def test_a_plan_cut_by_the_token_limit_runs_what_it_parsed() -> None:  # row 22
    async def cut_stream() -> Any:
        yield '1. echo(1)\n2. echo($1)\n3. echo("half'
        raise ReplyCut("length")

    executor = Executor([echo])
    outcome = await executor.run_round(cut_stream())
    records = by_idx(outcome.records)
    assert records[1].result == 1 and records[2].result == 1
    assert records[3].error is not None and "length" in records[3].error
    assert outcome.ended_by == "cut"
    assert any("cut" in e for e in outcome.plan_errors)


@pytest.mark.allow_blocking  # joins the threads the plans left, after the runs
def test_execute_plan_leaves_no_threads_behind() -> None:  # row 21 (threads flat)
    @tool
    def work(x: int) -> int:
        """A sync tool: runs in the executor's threads."""
        return x

    before = set(threading.enumerate())

    async def main() -> None:
        for _ in range(30):
            records = await execute_plan("1. work(1)\n2. work(2)\n3. work($1)", [work])
            assert [r.result for r in records] == [1, 2, 1]

    asyncio.run(main())
    made = [t for t in set(threading.enumerate()) - before if t.name.startswith("llmcompiler-tool")]
    for thread in made:
        thread.join(timeout=5)
    assert not [t for t in made if t.is_alive()]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=model_plans(), data=st.data())
async def test_model_written_plans_run_with_a_record_per_task_whatever_the_chunking(
    text: str, data: st.DataObject
) -> None:
    """Plans as models write them (bad escapes, huge numbers, invisible characters, ``\\r``, fences,
    deep or broken nesting, NUL), streamed in random pieces: no run raises, every parsed task ends
    with exactly one record."""
    pieces = data.draw(chunkings(text))
    parsed: list[int] = []

    def seen(event: object) -> None:
        if isinstance(event, TaskParsed | ParseError) and event.idx is not None:
            parsed.append(event.idx)

    async def stream() -> Any:
        for piece in pieces:
            yield piece

    records = await execute_plan(stream(), [echo, search], on_event=seen)
    assert sorted(r.idx for r in records) == sorted(parsed)
    assert len({r.idx for r in records}) == len(records)
    for record in records:
        assert record.ok or record.error


@tool
def search(query: Any = None, x: Any = None, y: Any = None) -> str:
    """A search with loose arguments."""
    return f"results for {query}"


async def test_a_failing_handler_of_execute_plan_keeps_the_records() -> None:  # row 25, boundary rule
    class Boom(Exception):
        pass

    def handler(event: object) -> None:
        if isinstance(event, TaskFinished) and event.record.idx == 2:
            raise Boom("handler")

    with pytest.raises(Boom) as info:
        await execute_plan("1. echo(1)\n2. echo(2)\n3. echo($1)", [echo], on_event=handler)
    assert {r.idx for r in info.value.tasks} >= {1, 2}  # type: ignore[attr-defined]


async def test_a_stream_that_yields_something_not_text_is_a_run_error_with_the_records() -> None:  # boundary rule
    async def stream() -> Any:
        yield "1. echo(1)\n"
        yield 5

    with pytest.raises(RunError, match="yielded a int, not text") as info:
        await execute_plan(stream(), [echo])
    assert [r.result for r in info.value.tasks] == [1]


@pytest.mark.parametrize("exc", [asyncio.CancelledError(), StopIteration()], ids=["CancelledError", "StopIteration"])
async def test_a_handler_raising_what_cannot_travel_is_a_run_error(exc: BaseException) -> None:  # row 25
    def handler(event: object) -> None:
        if isinstance(event, TaskFinished):
            raise exc

    llm = ScriptedLLM(["1. echo(1)\n2. join()", "Action: Finish(ok)"] * 4)
    agent = LLMCompiler(llm=llm, tools=[echo])
    with pytest.raises(RunError, match=f"handler raised {type(exc).__name__}") as info:
        await agent.arun("q", on_event=handler)
    assert [r.idx for r in info.value.tasks] == [1]
    results = await agent.arun_many(["a", "b"], on_event=handler, return_exceptions=True, concurrency=1)
    assert all(isinstance(r, RunError) for r in results)


# -- found in review


async def test_an_executor_runs_sync_tools_again_after_close() -> None:
    @tool
    def work(x: int) -> int:
        """A sync tool."""
        return x

    executor = Executor([work])
    await executor.run_round(_chunks("1. work(1)"))
    executor.close()
    outcome = await executor.run_round(_chunks("2. work(2)"), round=2)
    assert [r.result for r in outcome.records] == [2]
    executor.close()


async def test_a_pure_call_whose_argument_cannot_be_iterated_is_not_memoised() -> None:  # row 12
    class Cursor(dict[str, int]):
        def items(self) -> Any:
            raise ConnectionError("cursor closed")

    @tool
    def make() -> Any:
        """An odd mapping."""
        return Cursor(a=1)

    @tool(pure=True)
    def show(x: Any) -> str:
        """Show it."""
        return type(x).__name__

    records = by_idx(await execute_plan("1. make()\n2. show($1)\n3. echo(3)", [make, show, echo]))
    assert records[3].result == 3
    assert records[2].result == "Cursor" and not records[2].cached


async def test_a_secret_at_the_cut_of_a_long_error_is_never_half_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "Zq8-very-secret-value-123"
    monkeypatch.setenv("DB_PASSWORD", secret)

    @tool
    def leak() -> None:
        """Raise with a long message ending in a secret."""
        raise RuntimeError("x" * 1975 + f" connecting as {secret}")

    (record,) = await execute_plan("1. leak()", [leak])
    assert record.error is not None and "Zq8" not in record.error


async def test_a_stream_whose_closing_fails_keeps_its_tasks() -> None:
    async def stream() -> Any:
        try:
            yield "1. echo(1)\n2. join()\n"
            yield "x" * 3000  # a model rambling after its plan: the executor stops reading and closes
            yield "more"
        finally:
            raise ConnectionError("close failed")

    records = await execute_plan(stream(), [echo])
    assert [r.result for r in records] == [1, None]


def test_a_rate_limit_holds_across_runs_of_one_agent() -> None:  # row 19
    starts: list[float] = []

    @tool(rate_limit=0.5)
    async def slow(i: int) -> int:
        """One call every 2 s."""
        starts.append(asyncio.get_running_loop().time())
        return i

    llm = ScriptedLLM(["1. slow(1)\n2. join()", "Action: Finish(ok)"] * 4)
    agent = LLMCompiler(llm=llm, tools=[slow])

    async def both() -> None:
        await agent.arun("a")
        await agent.arun("b")

    run_with_fake_clock(both)
    assert round(starts[1] - starts[0], 6) >= 2.0
    # Sync runs get a new event loop each; the limiter is the agent's, not the loop's.
    agent.run("c")
    agent.run("d")
    assert list(agent._gates._limiters) == ["slow"]


async def test_run_calls_with_an_unprintable_argument_still_runs_the_others() -> None:
    records = await Executor([echo]).run_calls([(1, "echo", {"x": 10**5000}), (2, "echo", {"x": 1})])
    assert records[0].result == 10**5000 and records[1].result == 1


async def test_zero_and_minus_zero_are_different_memo_keys() -> None:
    @tool(pure=True)
    def sign(x: float) -> float:
        """The sign of x, -0.0 included."""
        import math

        return math.copysign(1.0, x)

    records = await execute_plan("1. sign(0.0)\n2. sign(-0.0)", [sign])
    assert [r.result for r in records] == [1.0, -1.0]
