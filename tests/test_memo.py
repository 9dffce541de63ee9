"""Memoisation: a pure tool runs once per distinct (tool, resolved arguments) within a run."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from llmcompiler import Executor, LLMCompiler, TaskRecord, execute_plan, tool
from llmcompiler._memo import Memo, memo_key
from llmcompiler._tools import Tool
from llmcompiler.testing import ScriptedLLM
from tests.fakeclock import run_with_fake_clock


def by_idx(records: list[TaskRecord]) -> dict[int, TaskRecord]:
    return {r.idx: r for r in records}


def counting(*, pure: bool = True, fail_first: int = 0, delay: float = 0.0) -> tuple[Tool, list[Any]]:
    calls: list[Any] = []

    async def lookup(key: Any) -> str:
        calls.append(key)
        if delay:
            await asyncio.sleep(delay)
        if len(calls) <= fail_first:
            raise ConnectionError("flaky")
        return f"value of {key!r}"

    schema = {"type": "object", "properties": {"key": {}}, "required": ["key"]}
    return Tool.from_schema(name="lookup", description="Look a key up.", parameters=schema, fn=lookup, pure=pure), calls


async def test_equal_calls_of_a_pure_tool_run_once_and_the_others_say_they_reused_it() -> None:
    lookup, calls = counting()
    records = by_idx(await execute_plan("1. lookup('a')\n2. lookup('b')\n3. lookup('a')\n4. lookup('a')", [lookup]))
    assert sorted(calls) == ["a", "b"]
    assert records[1].result == records[3].result == records[4].result == "value of 'a'"
    cached = sorted(i for i, r in records.items() if r.cached)
    assert len(cached) == 2 and 2 not in cached
    for i in cached:
        assert records[i].attempts == 0 and records[i].ok
    assert sum(r.attempts for r in records.values()) == 2


async def test_tools_not_marked_pure_are_called_every_time() -> None:
    lookup, calls = counting(pure=False)
    records = await execute_plan("1. lookup('a')\n2. lookup('a')", [lookup])
    assert calls == ["a", "a"] and not any(r.cached for r in records)


def test_a_call_made_while_an_equal_one_runs_waits_for_it() -> None:
    lookup, calls = counting(delay=1.0)

    @tool
    async def later(seconds: float) -> str:
        """Sleep, then return 'a'."""
        await asyncio.sleep(seconds)
        return "a"

    plan = "1. lookup('a')\n2. later(0.5)\n3. lookup($2)"  # task 3 asks for 'a' while task 1 still runs
    records = by_idx(run_with_fake_clock(lambda: execute_plan(plan, [lookup, later])))
    assert calls == ["a"]
    assert records[3].cached and records[3].result == "value of 'a'"
    assert records[3].start == pytest.approx(0.5) and records[3].end == pytest.approx(1.0)
    assert records[1].end == pytest.approx(1.0)


async def test_references_are_resolved_before_the_key_is_made() -> None:
    lookup, calls = counting()

    @tool
    def name() -> str:
        """Return 'a'."""
        return "a"

    records = by_idx(await execute_plan("1. name()\n2. lookup($1)\n3. lookup('a')", [lookup, name]))
    assert calls == ["a"]
    assert records[2].result == records[3].result


async def test_failures_are_not_kept_the_next_equal_call_runs_again() -> None:
    lookup, calls = counting(fail_first=1)
    executor = Executor([lookup])
    first = await executor.run_calls([(1, "lookup", {"key": "a"})])
    second = await executor.run_calls([(2, "lookup", {"key": "a"})], round=2)
    assert first[0].error == "lookup raised ConnectionError: flaky"
    assert second[0].ok and not second[0].cached
    assert calls == ["a", "a"]


def test_waiters_share_the_outcome_of_a_call_that_fails() -> None:
    lookup, calls = counting(fail_first=1, delay=1.0)
    records = run_with_fake_clock(lambda: execute_plan("1. lookup('a')\n2. lookup('a')", [lookup]))
    assert calls == ["a"]
    assert [r.error for r in records] == ["lookup raised ConnectionError: flaky"] * 2
    assert [r.cached for r in records] == [False, True]


async def test_the_memo_lasts_for_the_whole_run_across_replans_but_not_across_runs() -> None:
    lookup, calls = counting()
    llm = ScriptedLLM(
        [
            "1. lookup('a')\n2. join()",
            "Action: Replan(look again)",
            "3. lookup('a')\n4. join()",
            "Action: Finish(done)",
            "1. lookup('a')\n2. join()",
            "Action: Finish(done)",
        ]
    )
    agent = LLMCompiler(llm=llm, tools=[lookup])
    first = await agent.arun("q")
    assert [(t.idx, t.cached) for t in first.tasks if t.tool == "lookup"] == [(1, False), (3, True)]
    second = await agent.arun("q")
    assert [(t.idx, t.cached) for t in second.tasks if t.tool == "lookup"] == [(1, False)]
    assert calls == ["a", "a"]


async def test_arguments_of_different_types_are_different_calls() -> None:
    lookup, calls = counting()
    records = await execute_plan("1. lookup(1)\n2. lookup(1.0)\n3. lookup(True)\n4. lookup('1')", [lookup])
    assert len(calls) == 4 and not any(r.cached for r in records)


async def test_dict_arguments_match_whatever_their_key_order() -> None:
    lookup, calls = counting()
    records = await execute_plan("1. lookup({'x': 1, 'y': [1, 2]})\n2. lookup({'y': [1, 2], 'x': 1})", [lookup])
    assert len(calls) == 1 and records[1].cached


def test_memo_keys() -> None:
    assert memo_key("f", {"a": [1, {2, 3}]}) == memo_key("f", {"a": [1, {3, 2}]})
    assert memo_key("f", {"a": [1]}) != memo_key("f", {"a": (1,)})
    assert memo_key("f", {"a": 1}) != memo_key("g", {"a": 1})
    assert memo_key("f", {"a": float("nan")}) == memo_key("f", {"a": float("nan")})
    assert memo_key("f", {"a": bytearray(b"x")}) is None  # no canonical form: not memoised


async def test_a_cancelled_leader_lets_the_next_call_run() -> None:
    memo = Memo()
    key = memo_key("f", {})
    future = memo.claim(key)
    memo.abandon(key, future)
    assert future.result() == (None, "the equal call it was waiting for was cancelled")
    assert memo.lookup(key) is None and len(memo) == 0
