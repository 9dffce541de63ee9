"""``arun_many``: many questions at once, limits shared, tasks and threads flat."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Sequence
from typing import Any

import pytest

from llmcompiler import LLMCompiler, Message, RunError, RunResult, Tool, ToolLimits, UserError, tool
from llmcompiler._types import Purpose
from llmcompiler.testing import FunctionLLM, Reply
from tests.fakeclock import run_with_fake_clock


def _question_number(messages: Sequence[Message]) -> int:
    found = re.search(r"question (\d+)", messages[-1].content)
    assert found is not None
    return int(found.group(1))


FAILING = 999


def arithmetic_llm() -> FunctionLLM:
    """Plans ``1. double(n)`` for "question n"; the joiner answers with the observed result."""

    def reply(messages: Sequence[Message], purpose: Purpose) -> Reply:
        n = _question_number(messages)
        if purpose == "plan":
            return f"1. double({n})\n2. join()"
        if n == FAILING:
            return "Action: maybe"  # the joiner writes nonsense for this question
        return f"Action: Finish({2 * n})"

    return FunctionLLM(reply)


@tool
async def double(x: int) -> int:
    """Double a number."""
    await asyncio.sleep(0)
    return 2 * x


async def test_results_come_back_in_question_order() -> None:
    agent = LLMCompiler(llm=arithmetic_llm(), tools=[double])
    results = await agent.arun_many([f"question {i}" for i in range(40)], concurrency=7)
    assert [r.answer for r in results] == [str(2 * i) for i in range(40)]
    assert all(r.tasks[0].result == 2 * i for i, r in enumerate(results))


async def test_no_more_questions_run_at_once_than_the_concurrency() -> None:
    running = 0
    most = 0
    gate = asyncio.Event()

    async def reply(messages: Sequence[Message], purpose: Purpose) -> Reply:
        nonlocal running, most
        if purpose == "plan":
            running += 1
            most = max(most, running)
            if running == 3:
                gate.set()  # three at once: the cap is reached
            await gate.wait()
            return "1. double(1)\n2. join()"
        running -= 1
        return "Action: Finish(2)"

    agent = LLMCompiler(llm=FunctionLLM(reply), tools=[double])
    results = await agent.arun_many([f"question {i}" for i in range(20)], concurrency=3)
    assert len(results) == 20 and most == 3


async def test_the_runs_share_the_tool_concurrency_limit() -> None:
    running = 0
    most = 0
    release = asyncio.Event()

    async def fetch(x: int) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        if running >= 2:
            release.set()
        await release.wait()
        await asyncio.sleep(0)
        running -= 1
        return x

    limited = Tool.from_schema(
        name="double",
        description="Fetch.",
        parameters={"type": "object", "properties": {"x": {"type": "integer"}}},
        fn=fetch,
        limits=ToolLimits(max_concurrency=2),
    )
    agent = LLMCompiler(llm=arithmetic_llm(), tools=[limited], max_replans=0)
    await agent.arun_many([f"question {i}" for i in range(12)], concurrency=12)
    assert most == 2  # per-question executors would have let 12 run at once


def test_calls_of_different_questions_are_fused() -> None:
    batches: list[int] = []

    async def double_many(calls: list[dict[str, Any]]) -> list[int]:
        batches.append(len(calls))
        return [2 * c["x"] for c in calls]

    async def double_one(x: int) -> int:
        return 2 * x

    fused = Tool.from_schema(
        name="double",
        description="Double.",
        parameters={"type": "object", "properties": {"x": {"type": "integer"}}},
        fn=double_one,
        batch=double_many,
        limits=ToolLimits(batch_window=0.05),
    )
    agent = LLMCompiler(llm=arithmetic_llm(), tools=[fused])
    results = run_with_fake_clock(lambda: agent.arun_many([f"question {i}" for i in range(10)], concurrency=10))
    assert [r.answer for r in results] == [str(2 * i) for i in range(10)]
    assert batches == [10]
    record = results[0].tasks[0]
    assert record.batch_size == 10 and record.fused_with == ()  # its batch mates are other runs' tasks


async def test_a_failed_question_raises_and_stops_the_others() -> None:
    agent = LLMCompiler(llm=arithmetic_llm(), tools=[double], max_replans=0)
    with pytest.raises(RunError):
        await agent.arun_many([f"question {i}" for i in (1, 2, FAILING, 4, 5, 6)], concurrency=2)


async def test_return_exceptions_keeps_the_failure_in_its_place() -> None:
    agent = LLMCompiler(llm=arithmetic_llm(), tools=[double], max_replans=0)
    numbers = [10, 11, 12, FAILING, 14, 15]
    results = await agent.arun_many([f"question {i}" for i in numbers], concurrency=4, return_exceptions=True)
    assert isinstance(results[3], RunError) and "cannot read the joiner's reply" in str(results[3])
    assert [r.answer if isinstance(r, RunResult) else None for r in results] == [
        "20",
        "22",
        "24",
        None,
        "28",
        "30",
    ]


async def test_tasks_and_threads_stay_flat_over_many_questions() -> None:
    samples: list[tuple[int, int]] = []

    async def reply(messages: Sequence[Message], purpose: Purpose) -> Reply:
        samples.append((len(asyncio.all_tasks()), threading.active_count()))
        n = _question_number(messages)
        return f"1. double({n})\n2. double({n + 1})\n3. join()" if purpose == "plan" else "Action: Finish(ok)"

    agent = LLMCompiler(llm=FunctionLLM(reply), tools=[double])
    results = await agent.arun_many([f"question {i}" for i in range(300)], concurrency=10)
    assert len(results) == 300
    early, late = samples[:60], samples[-60:]
    # At most: the test, 10 workers, and each worker's run with its tool calls in flight.
    assert max(t for t, _ in samples) <= 1 + 10 * 4
    assert max(t for t, _ in late) <= max(t for t, _ in early) + 2
    assert max(n for _, n in late) <= max(n for _, n in early)


async def test_concurrency_is_checked_and_no_questions_is_no_results() -> None:
    agent = LLMCompiler(llm=arithmetic_llm(), tools=[double])
    with pytest.raises(UserError, match="concurrency"):
        await agent.arun_many(["question 1"], concurrency=0)
    assert await agent.arun_many([]) == []


async def test_concurrent_arun_calls_share_the_agents_limits() -> None:
    """Two questions asked at once through ``arun`` (not ``arun_many``) still honour max_concurrency=1."""
    running = 0
    peak = 0
    both_asked = asyncio.Event()
    asked = 0

    @tool
    async def slow(x: int) -> int:
        """Count how many run at once."""
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await both_asked.wait()
        for _ in range(5):
            await asyncio.sleep(0)
        running -= 1
        return x

    def reply(messages: object, purpose: str) -> str:
        nonlocal asked
        if purpose == "plan":
            asked += 1
            if asked == 2:
                both_asked.set()
            return "1. slow(1)\n2. join()"
        return "Action: Finish(1)"

    agent = LLMCompiler(llm=FunctionLLM(reply), tools=[slow], max_concurrency=1)
    async with asyncio.timeout(5):
        results = await asyncio.gather(agent.arun("a"), agent.arun("b"))
    assert [r.answer for r in results] == ["1", "1"]
    assert peak == 1
