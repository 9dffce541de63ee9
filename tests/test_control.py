"""Control dependencies: exclusive groups (calls that never overlap) and sequential tools (barriers
in plan order). Orders are proved with events and barriers: a log of who was inside when, never
a sleep taken as an assertion."""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmcompiler import (
    Executor,
    LLMCompiler,
    Message,
    RunEvent,
    TaskFinished,
    TaskRecord,
    Tool,
    ToolLimits,
    UserError,
    execute_plan,
    render_timeline,
    tool,
)
from llmcompiler._graph import Node, TaskGraph
from llmcompiler._limits import Limits
from llmcompiler._plan import parse_plan
from llmcompiler._types import Purpose
from llmcompiler.testing import FunctionLLM, Reply, ScriptedLLM
from tests.fakeclock import run_with_fake_clock


class Inside:
    """Who is inside a section: how many now, the most at once, and a log of entries and exits."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0
        self.log: list[str] = []

    def enter(self, what: str) -> None:
        self.now += 1
        self.most = max(self.most, self.now)
        self.log.append(f"{what} in")

    def leave(self, what: str) -> None:
        self.now -= 1
        self.log.append(f"{what} out")

    def at(self, entry: str) -> int:
        return self.log.index(entry)


async def _turns(n: int = 3) -> None:
    """Give the loop a few turns inside a section, so an overlapping call would get in."""
    for _ in range(n):
        await asyncio.sleep(0)


# --------------------------------------------------------------------------- ToolLimits.exclusive


def test_exclusive_is_a_limit_given_like_the_others() -> None:
    lim = ToolLimits(exclusive="db")
    assert lim.exclusive == "db" and lim.fields_set == {"exclusive"}
    assert repr(lim) == "ToolLimits(exclusive='db')"
    assert ToolLimits().exclusive is None
    for bad in ("", "  ", 5, b"db"):
        with pytest.raises(UserError, match="exclusive must be a group's name"):
            ToolLimits(exclusive=bad)  # type: ignore[arg-type]


def test_tool_limits_set_and_clear_a_group_field_by_field() -> None:
    own = ToolLimits(exclusive="db", timeout=5)
    limits = Limits(tool_limits={"a": ToolLimits(exclusive="files"), "b": ToolLimits(exclusive=None)})
    assert limits.for_tool("a", own) == ToolLimits(exclusive="files", timeout=5)
    assert limits.for_tool("b", own).exclusive is None  # given None: out of its group
    assert limits.for_tool("c", own) == own


def test_tool_and_from_schema_take_exclusive_and_sequential() -> None:
    @tool(exclusive="db", sequential=True, timeout=3)
    def write(x: int) -> int:
        """Write."""
        return x

    assert write.sequential and write.limits == ToolLimits(exclusive="db", timeout=3)
    assert write.with_limits(retries=1).sequential  # a copy keeps it
    schema_tool = Tool.from_schema(
        name="put",
        description="Put.",
        parameters={"type": "object", "properties": {}},
        fn=lambda: None,
        sequential=True,
        limits=ToolLimits(exclusive="db"),
    )
    assert schema_tool.sequential and schema_tool.limits.exclusive == "db"
    assert not plain.sequential and not schema_tool.with_limits(exclusive=None).limits.exclusive


# --------------------------------------------------------------------------- exclusive groups, one run


def _writes_and_reads(inside: Inside, *, exclusive: str | None) -> tuple[list[Tool], list[int]]:
    """Two writing tools (in ``exclusive``'s group when given) and a free reading tool. The first
    write to get in meets the first read at a barrier of 2: a free call runs while a write holds the
    group. The read then notes how many writes are inside (returned with the tools)."""
    meet = asyncio.Barrier(2)
    met: list[bool] = []
    seen_at_meeting: list[int] = []

    async def body(name: str, i: int) -> int:
        inside.enter(f"{name}{i}")
        if not met:
            met.append(True)
            await meet.wait()
        await _turns()
        inside.leave(f"{name}{i}")
        return i

    @tool(exclusive=exclusive)
    async def write_a(i: int) -> int:
        """Write to a."""
        return await body("write_a", i)

    @tool(exclusive=exclusive)
    async def write_b(i: int) -> int:
        """Write to b."""
        return await body("write_b", i)

    @tool
    async def read(i: int) -> int:
        """Read."""
        inside.log.append(f"read{i} in")
        if i == 4:
            await meet.wait()
            seen_at_meeting.append(inside.now)
        return i

    return [write_a, write_b, read], seen_at_meeting


PLAN = "1. write_a(1)\n2. write_b(2)\n3. write_a(3)\n4. read(4)\n5. read(5)\n"


@pytest.mark.parametrize("how", ["tool", "tool_limits"])
async def test_calls_of_a_group_never_overlap_and_free_calls_run_beside_them(how: str) -> None:
    inside = Inside()
    tools, seen = _writes_and_reads(inside, exclusive="db" if how == "tool" else None)
    overrides = {"write_a": ToolLimits(exclusive="db"), "write_b": ToolLimits(exclusive="db")}
    records = await execute_plan(PLAN, tools, tool_limits=overrides if how == "tool_limits" else None)
    assert all(r.ok for r in records)
    assert inside.most == 1
    # Writes 2 and 3 were ready with write 1, yet got in only after it left, and after the read
    # planned behind them: they waited for the group.
    assert inside.at("write_a1 out") < inside.at("write_b2 in") < inside.at("write_b2 out") < inside.at("write_a3 in")
    assert inside.at("read4 in") < inside.at("write_b2 in")
    assert seen == [1]
    assert [r.exclusive for r in records] == ["db", "db", "db", None, None]
    spans = sorted((r.start or 0.0, r.end or 0.0) for r in records[:3])
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))


async def test_without_a_group_the_same_calls_overlap() -> None:
    """The test above can see an overlap: the same tools with no group do overlap."""
    inside = Inside()
    records = await execute_plan(PLAN, _writes_and_reads(inside, exclusive=None)[0])
    assert all(r.ok for r in records)
    assert inside.most == 3
    assert all(r.exclusive is None for r in records)


async def test_an_override_of_none_takes_a_tool_out_of_its_group() -> None:
    inside = Inside()
    tools, _ = _writes_and_reads(inside, exclusive="db")
    off = {"write_a": ToolLimits(exclusive=None), "write_b": ToolLimits(exclusive=None)}
    records = await execute_plan(PLAN, tools, tool_limits=off)
    assert all(r.ok for r in records) and inside.most == 3


async def test_groups_are_independent_of_each_other() -> None:
    both = asyncio.Barrier(2)

    @tool(exclusive="db")
    async def db(i: int) -> int:
        """Write the database."""
        await both.wait()  # meets the files call: two groups, held at once
        return i

    @tool(exclusive="files")
    async def files(i: int) -> int:
        """Write a file."""
        await both.wait()
        return i

    records = await execute_plan("1. db(1)\n2. files(2)", [db, files])
    assert [r.result for r in records] == [1, 2]


async def test_a_batched_tool_in_a_group_holds_it_once_per_batch() -> None:
    """A batch is one invocation: its calls run together, and hold the group once; a call of
    another tool of the group waits for the batch, and nothing deadlocks."""
    inside = Inside()

    async def store_many(calls: list[dict[str, Any]]) -> list[int]:
        inside.enter(f"batch{len(calls)}")
        await _turns()
        inside.leave(f"batch{len(calls)}")
        return [c["i"] for c in calls]

    @tool(batch=store_many, exclusive="db", batch_window=0)
    async def store(i: int) -> int:
        """Store one."""
        inside.enter(f"store{i}")
        await _turns()
        inside.leave(f"store{i}")
        return i

    @tool(exclusive="db")
    async def note(i: int) -> int:
        """Note one."""
        inside.enter(f"note{i}")
        await _turns()
        inside.leave(f"note{i}")
        return i

    records = await execute_plan("1. store(1)\n2. store(2)\n3. note(3)\n4. store(4)", [store, note])
    assert [r.result for r in records] == [1, 2, 3, 4]
    assert inside.most == 1
    assert [r.batch_size for r in records] == [3, 3, 0, 3]
    assert [r.exclusive for r in records] == ["db"] * 4


async def test_groups_with_a_run_wide_slot_and_a_rate_do_not_deadlock() -> None:
    """The gates are taken in one order (rate, group, run-wide, tool): with one run-wide slot,
    a call waiting for the group holds no slot, so free calls still get through."""
    inside = Inside()

    @tool(exclusive="db", rate_limit=1000, max_concurrency=1)
    async def write(i: int) -> int:
        """Write."""
        inside.enter(f"write{i}")
        await _turns()
        inside.leave(f"write{i}")
        return i

    @tool
    async def read(i: int) -> int:
        """Read."""
        await _turns()
        return i

    plan = "\n".join(f"{i}. {'write' if i % 2 else 'read'}({i})" for i in range(1, 21))
    records = await execute_plan(plan, [write, read], max_concurrency=1)
    assert [r.result for r in records] == list(range(1, 21)) and inside.most == 1


# --------------------------------------------------------------------------- exclusive groups across runs


def _planner(question_count: int) -> FunctionLLM:
    """Plans ``1. write(n)`` and ``2. read(n)`` for "question n"; the joiner finishes."""

    def reply(messages: Sequence[Message], purpose: Purpose) -> Reply:
        n = int(messages[-1].content.split("question ")[-1].split()[0].strip(".?"))
        assert 0 <= n < question_count
        if purpose == "plan":
            return f"1. write({n})\n2. read({n})\n3. join()"
        return "Action: Finish(done)"

    return FunctionLLM(reply)


@pytest.mark.parametrize("how", ["tool", "tool_limits", "none"])
async def test_a_group_holds_across_the_runs_of_an_agent(how: str) -> None:
    """Every run's read gets in while one write holds the group (a barrier of all the reads),
    and the other runs' writes, ready since their plans arrived, wait: one write at a time."""
    n = 4
    inside = Inside()
    release = asyncio.Event()
    reads = asyncio.Barrier(n)
    seen: list[int] = []

    @tool(exclusive="db" if how == "tool" else None)
    async def write(i: int) -> int:
        """Write."""
        inside.enter(f"write{i}")
        await release.wait()
        await _turns()
        inside.leave(f"write{i}")
        return i

    @tool
    async def read(i: int) -> int:
        """Read."""
        await reads.wait()  # every run's read at once
        seen.append(inside.now)
        release.set()
        return i

    overrides = {"write": ToolLimits(exclusive="db")} if how == "tool_limits" else None
    agent = LLMCompiler(llm=_planner(n), tools=[write, read], tool_limits=overrides)
    results = await agent.arun_many([f"question {i}" for i in range(n)], concurrency=n)
    assert all(t.ok for r in results for t in r.tasks)
    if how == "none":
        assert seen == [n] * n and inside.most == n  # the same runs overlap with no group
    else:
        assert seen == [1] * n and inside.most == 1
        assert [r.tasks[0].exclusive for r in results] == ["db"] * n


async def test_concurrent_aruns_of_an_agent_share_its_groups() -> None:
    inside = Inside()
    release = asyncio.Event()
    reads = asyncio.Barrier(2)
    seen: list[int] = []

    @tool(exclusive="db")
    async def write(i: int) -> int:
        """Write."""
        inside.enter(f"write{i}")
        await release.wait()
        inside.leave(f"write{i}")
        return i

    @tool
    async def read(i: int) -> int:
        """Read."""
        await reads.wait()  # both runs' reads at once, while one write holds the group
        seen.append(inside.now)
        release.set()
        return i

    agent = LLMCompiler(llm=_planner(3), tools=[write, read])
    first, second = await asyncio.gather(agent.arun("question 1"), agent.arun("question 2"))
    assert first.tasks[0].ok and second.tasks[0].ok
    assert seen == [1, 1] and inside.most == 1


# --------------------------------------------------------------------------- a timed-out thread keeps its group


@pytest.mark.slow  # real timeouts of 0.3 s; tolerance: the released thread returns within 0.3 s
def test_a_timed_out_sync_call_holds_its_group_until_its_thread_returns() -> None:
    go = threading.Event()
    returned = threading.Event()
    timed_out = asyncio.Event()

    @tool(exclusive="db", timeout=0.3)
    def hang() -> str:
        """Hang until let go."""
        go.wait(30)
        returned.set()
        return "late"

    @tool(exclusive="db")
    async def after() -> bool:
        """Runs after hang's thread."""
        return returned.is_set()

    @tool
    async def let_go() -> None:
        """Let hang's thread go, some loop turns after it timed out (``after`` could overlap it then)."""
        await timed_out.wait()
        await _turns(20)
        go.set()

    def on_event(event: RunEvent) -> None:
        if isinstance(event, TaskFinished) and event.record.idx == 1:
            timed_out.set()

    plan = "1. hang()\n2. after()\n3. let_go()"
    records = asyncio.run(execute_plan(plan, [hang, after, let_go], on_event=on_event))
    assert records[0].error == "hang timed out after 0.3s"
    assert records[1].result is True  # it started only once hang's thread had returned


def test_a_group_whose_given_up_thread_does_not_return_fails_its_calls_until_it_does() -> None:
    go = threading.Event()

    @tool(exclusive="db", timeout=1)
    def hang() -> str:
        """Hang until let go."""
        go.wait(30)
        return "late"

    @tool(exclusive="db")
    async def after() -> str:
        """Another call of the group."""
        return "ran"

    async def main() -> tuple[list[TaskRecord], list[TaskRecord]]:
        executor = Executor([hang, after])
        try:
            first = await executor.run_tasks(parse_plan("1. hang()\n2. after()"))
            go.set()
            group = executor._gates_here().groups["db"]
            assert group.stuck is not None
            await asyncio.gather(*group.tasks)  # the thread returns: the group is free again
            second = await executor.run_tasks(parse_plan("3. after()"), round=2)
            return first, second
        finally:
            go.set()
            executor.close()

    first, second = run_with_fake_clock(main)
    assert first[0].error == "hang timed out after 1s"
    assert first[1].error == (
        "after could not start: exclusive group 'db' is held by a call of hang whose thread has not "
        "returned since it was given up"
    )
    assert second[0].result == "ran"


# --------------------------------------------------------------------------- sequential: the graph


@tool
def plain(x: int = 0) -> int:
    """Do nothing."""
    return x


@tool(sequential=True)
def barrier(x: int = 0) -> int:
    """A barrier."""
    return x


def _node(idx: int, *deps: int, seq: bool = False) -> Node:
    return Node(
        idx=idx,
        tool=barrier if seq else plain,
        kwargs={},
        deps=frozenset(deps),
        thought=None,
        line=f"{idx}. t()",
        round=1,
    )


def _done(idx: int, error: str | None = None) -> TaskRecord:
    return TaskRecord(idx=idx, tool="t", args={}, deps=frozenset(), thought=None, result=idx, error=error)


def test_the_graph_adds_control_edges_in_plan_order() -> None:
    graph = TaskGraph({})
    added = {i: _node(i, seq=i in (3, 6)) for i in range(1, 8)}
    ready = [n.idx for i in range(1, 8) for n in graph.add(added[i]).ready]
    assert ready == [1, 2]
    assert {i: sorted(n.after) for i, n in added.items()} == {
        1: [],
        2: [],
        3: [1, 2],
        4: [3],
        5: [3],
        6: [3, 4, 5],
        7: [6],
    }
    assert graph.finish(_done(1)).ready == []
    assert [n.idx for n in graph.finish(_done(2, error="boom")).ready] == [3]  # a failure releases it too
    assert [n.idx for n in graph.finish(_done(3)).ready] == [4, 5]
    graph.finish(_done(4))
    assert [n.idx for n in graph.finish(_done(5)).ready] == [6]
    assert [n.idx for n in graph.finish(_done(6)).ready] == [7]


def test_back_to_back_barriers_wait_for_each_other() -> None:
    graph = TaskGraph({})
    assert [n.idx for n in graph.add(_node(1, seq=True)).ready] == [1]
    second = _node(2, seq=True)
    assert graph.add(second).ready == [] and second.after == {1}
    assert [n.idx for n in graph.finish(_done(1)).ready] == [2]


def test_a_data_edge_is_not_repeated_as_a_control_edge() -> None:
    graph = TaskGraph({})
    graph.add(_node(1))
    graph.add(_node(2))
    seq = _node(3, 1, seq=True)
    after = _node(4, 3)
    graph.add(seq)
    graph.add(after)
    assert seq.after == {2} and seq.deps == {1}
    assert after.after == frozenset() and after.deps == {3}


def test_a_failed_barrier_gives_up_only_the_tasks_using_its_result() -> None:
    graph = TaskGraph({})
    graph.add(_node(1, seq=True))
    graph.add(_node(2))
    graph.add(_node(3, 1))
    progress = graph.finish(_done(1, error="boom"))
    assert [n.idx for n in progress.ready] == [2]
    assert [(r.idx, r.error) for r in progress.given_up] == [(3, "dependency 1 failed: boom")]


def test_a_barrier_given_up_is_given_up_after_the_tasks_before_it() -> None:
    graph = TaskGraph({})
    graph.add(_node(1))
    graph.add(_node(2))
    graph.add(_node(3, 1, seq=True))  # waits for 2 (control) and 1 (data)
    graph.add(_node(4))
    assert graph.finish(_done(1, error="boom")) == ([], [])  # 3 must not finish before 2 has
    progress = graph.finish(_done(2))
    assert [(r.idx, r.error, r.after) for r in progress.given_up] == [(3, "dependency 1 failed: boom", frozenset({2}))]
    assert [n.idx for n in progress.ready] == [4]  # 3 is finished (given up): 4 no longer waits


def test_a_task_after_a_barrier_whose_data_already_failed_waits_for_the_barrier_to_be_given_up() -> None:
    records = {1: _done(1, error="boom")}
    graph = TaskGraph(records)
    graph.add(_node(2, seq=True))
    waiting = _node(3, 1)
    assert graph.add(waiting) == ([], [])  # its data failed, but 2 has not finished
    progress = graph.finish(_done(2))
    assert [(r.idx, r.error) for r in progress.given_up] == [(3, "dependency 1 failed: boom")]


def test_a_barrier_added_when_earlier_tasks_finished_is_ready_at_once() -> None:
    records: dict[int, TaskRecord] = {}
    graph = TaskGraph(records)
    graph.add(_node(1))
    graph.finish(_done(1, error="x"))
    node = _node(2, seq=True)
    assert graph.add(node).ready == [node] and node.after == {1}


@settings(max_examples=80, deadline=None)
@given(st.integers(min_value=1, max_value=30), st.integers(min_value=0, max_value=2**32 - 1))
def test_random_plans_keep_the_barriers(n: int, seed: int) -> None:
    """A sequential task starts after every earlier task finished; a task starts after the last
    sequential task before it finished; data edges still give up on failure."""
    rng = random.Random(seed)
    graph = TaskGraph({})
    seq = {i for i in range(1, n + 1) if rng.random() < 0.25}
    deps = {i: frozenset(rng.sample(range(1, i), k=min(i - 1, rng.randint(0, 2)))) for i in range(1, n + 1)}
    fails = {i for i in range(1, n + 1) if rng.random() < 0.2}
    ready: list[Node] = []
    finished: set[int] = set()
    started: list[int] = []

    def settle(record: TaskRecord) -> None:
        progress = graph.finish(record)
        finished.add(record.idx)
        for given_up in progress.given_up:  # given up only once its control dependencies finished
            assert _may_start(given_up.idx, seq, finished)
            finished.add(given_up.idx)
        ready.extend(progress.ready)

    for i in range(1, n + 1):
        progress = graph.add(_node(i, *deps[i], seq=i in seq))
        for given_up in progress.given_up:
            assert _may_start(given_up.idx, seq, finished)
            finished.add(given_up.idx)
        ready.extend(progress.ready)
        while ready and rng.random() < 0.5:  # some tasks finish while the plan streams
            current = ready.pop(rng.randrange(len(ready)))
            started.append(current.idx)
            assert _may_start(current.idx, seq, finished)
            settle(_done(current.idx, error="x" if current.idx in fails else None))
    while ready:
        current = ready.pop(rng.randrange(len(ready)))
        started.append(current.idx)
        assert _may_start(current.idx, seq, finished)
        settle(_done(current.idx, error="x" if current.idx in fails else None))
    assert sorted(graph.records) == list(range(1, n + 1)) and graph.running == 0
    for i in range(1, n + 1):
        failed_dep = any(graph.records[d].error is not None for d in deps[i])
        assert (i in started) == (not failed_dep)


def _may_start(idx: int, seq: set[int], finished: set[int]) -> bool:
    earlier = range(1, idx)
    if idx in seq:
        return all(i in finished for i in earlier)
    last = max((i for i in earlier if i in seq), default=None)
    return last is None or last in finished


# --------------------------------------------------------------------------- sequential: runs


def _logged(inside: Inside, meetings: dict[int, asyncio.Barrier]) -> tuple[Tool, Tool, Tool]:
    """``read(i)`` and a sequential ``write(i)`` that log themselves; a read whose number is in
    ``meetings`` waits there for a partner (proving two reads run together)."""

    @tool
    async def read(i: int) -> int:
        """Read."""
        inside.enter(f"read{i}")
        if i in meetings:
            await meetings[i].wait()
        await _turns()
        inside.leave(f"read{i}")
        return i

    @tool(sequential=True)
    async def write(i: int) -> int:
        """Write."""
        inside.enter(f"write{i}")
        await _turns()
        inside.leave(f"write{i}")
        return i

    @tool(sequential=True)
    async def boom(i: int) -> int:
        """Fail."""
        inside.enter(f"boom{i}")
        await _turns()
        inside.leave(f"boom{i}")
        raise RuntimeError("disk full")

    return read, write, boom


async def test_a_sequential_task_waits_for_earlier_tasks_and_later_tasks_wait_for_it() -> None:
    inside = Inside()
    first, second = asyncio.Barrier(2), asyncio.Barrier(2)
    tools = _logged(inside, {1: first, 2: first, 4: second, 5: second})
    plan = "1. read(1)\n2. read(2)\n3. write(3)\n4. read(4)\n5. read(5)\n6. write(6)\n7. read(7)\n8. join()"
    records = await execute_plan(plan, tools)
    assert all(r.ok for r in records)
    at = inside.at
    assert max(at("read1 out"), at("read2 out")) < at("write3 in")  # 1 and 2 ran together (a barrier), then 3
    assert at("write3 out") < min(at("read4 in"), at("read5 in"))
    assert max(at("read4 out"), at("read5 out")) < at("write6 in") < at("write6 out") < at("read7 in")
    assert [sorted(r.after) for r in records[:7]] == [[], [], [1, 2], [3], [3], [3, 4, 5], [6]]
    assert all(r.deps == frozenset() for r in records[:7])


async def test_a_streamed_plan_gets_its_barriers_as_it_arrives() -> None:
    """Task 2 (sequential) arrives while task 1 runs and waits for it; task 3 arrives while 1 still
    runs and waits for 2."""
    inside = Inside()
    hold, running = asyncio.Event(), asyncio.Event()
    read, write, _ = _logged(inside, {})

    @tool
    async def slow_read(i: int) -> int:
        """Read, held."""
        inside.enter(f"slow{i}")
        running.set()
        await hold.wait()
        inside.leave(f"slow{i}")
        return i

    async def stream() -> AsyncIterator[str]:
        yield "1. slow_read(1)\n"
        await running.wait()
        yield "2. write(2)\n"
        yield "3. read(3)\n"
        await _turns()  # 2 and 3 had every chance to start
        assert inside.log == ["slow1 in"]
        hold.set()
        yield "4. join()\n"

    records = await execute_plan(stream(), [slow_read, read, write])
    assert all(r.ok for r in records)
    assert inside.log == ["slow1 in", "slow1 out", "write2 in", "write2 out", "read3 in", "read3 out"]
    assert [sorted(r.after) for r in records[:3]] == [[], [1], [2]]


async def test_a_failed_barrier_lets_later_tasks_run_and_gives_up_its_dependents() -> None:
    inside = Inside()
    read, write, boom = _logged(inside, {})
    records = await execute_plan("1. read(1)\n2. boom(2)\n3. read(3)\n4. read($2)\n5. write(5)", [read, write, boom])
    assert [r.state for r in records] == ["done", "failed", "done", "skipped", "done"]
    assert records[1].error == "boom raised RuntimeError: disk full"
    assert records[3].error == "dependency 2 failed: boom raised RuntimeError: disk full"
    assert inside.at("read1 out") < inside.at("boom2 in") and inside.at("boom2 out") < inside.at("read3 in")
    assert inside.at("read3 out") < inside.at("write5 in")  # 5 waits for 3 and for 4 (given up)
    assert [sorted(r.after) for r in records] == [[], [1], [2], [], [2, 3, 4]]


async def test_a_barrier_whose_arguments_fail_at_its_turn_still_orders() -> None:
    inside = Inside()
    read, write, boom = _logged(inside, {})
    records = await execute_plan('1. read(1)\n2. write("x")\n3. read(3)', [read, write, boom])
    assert [r.state for r in records] == ["done", "skipped", "done"]
    assert "invalid arguments for write" in (records[1].error or "")
    assert records[2].after == {2}


async def test_a_barrier_given_up_releases_later_tasks_in_a_run() -> None:
    inside = Inside()
    read, write, boom = _logged(inside, {})
    records = await execute_plan("1. boom(1)\n2. write($1)\n3. read(3)", [read, write, boom])
    assert [r.state for r in records] == ["failed", "skipped", "done"]
    assert records[1].after == frozenset() and records[2].after == {2}


async def test_structured_calls_keep_barriers_in_call_order() -> None:
    inside = Inside()
    meet = asyncio.Barrier(2)
    read, write, boom = _logged(inside, {1: meet, 2: meet})
    executor = Executor([read, write, boom])
    try:
        records = await executor.run_calls([(1, "read", {"i": 1}), (2, "read", {"i": 2}), (3, "write", {"i": 3})])
    finally:
        executor.close()
    assert [r.after for r in records] == [frozenset(), frozenset(), {1, 2}]
    assert max(inside.at("read1 out"), inside.at("read2 out")) < inside.at("write3 in")


async def test_sequential_and_exclusive_together() -> None:
    inside = Inside()

    @tool(sequential=True, exclusive="db")
    async def migrate() -> str:
        """Migrate."""
        inside.enter("migrate")
        await _turns()
        inside.leave("migrate")
        return "ok"

    @tool(exclusive="db")
    async def insert(i: int) -> int:
        """Insert."""
        inside.enter(f"insert{i}")
        await _turns()
        inside.leave(f"insert{i}")
        return i

    records = await execute_plan("1. insert(1)\n2. insert(2)\n3. migrate()\n4. insert(4)", [migrate, insert])
    assert all(r.ok for r in records) and inside.most == 1
    assert inside.log[-4:] == ["migrate in", "migrate out", "insert4 in", "insert4 out"]


# --------------------------------------------------------------------------- records and the timeline


def test_the_timeline_draws_control_edges_apart_from_data_edges() -> None:
    @tool
    def read(i: int) -> int:
        """Read."""
        return i

    @tool(sequential=True, exclusive="db")
    def write(i: int) -> int:
        """Write."""
        return i

    plan = "1. read(1)\n2. read(2)\n3. write($1)\n4. read(4)\n5. join()"
    agent = LLMCompiler(llm=ScriptedLLM([plan, "Action: Finish(done)"]), tools=[read, write])
    result = agent.run("go")
    assert result.tasks[2].after == {2} and result.tasks[2].deps == {1} and result.tasks[3].after == {3}
    assert result.tasks[2].exclusive == "db"
    svg = render_timeline(result)
    assert 'class="dep" data-from="1" data-to="3"' in svg
    assert 'class="after" data-from="2" data-to="3"' in svg
    assert 'class="after" data-from="3" data-to="4"' in svg
    assert 'class="after" data-from="1"' not in svg  # a data edge is drawn once, as data
    assert "stroke-dasharray" in svg.split('class="after"')[1].split("/>")[0]
    assert "exclusive: db" in svg and "after: 2" in svg
    html = render_timeline(result, format="html")
    assert "<th>after</th>" in html


def test_a_saved_trace_without_control_fields_still_draws() -> None:
    trace = {"tasks": [{"idx": 1, "tool": "t", "state": "done", "start": 0, "end": 1, "after": "junk"}]}
    assert 'class="after"' not in render_timeline(trace)


async def test_a_result_from_the_memo_held_no_group() -> None:
    @tool(exclusive="db", pure=True)
    async def lookup(key: str) -> str:
        """Look up a key."""
        return key.upper()

    records = await execute_plan('1. lookup("a")\n2. lookup("a")', [lookup])
    assert [r.result for r in records] == ["A", "A"]
    assert [(r.cached, r.exclusive) for r in records] == [(False, "db"), (True, None)]
