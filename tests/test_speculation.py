"""Speculative execution (``LLMCompiler(drafter=...)``): each rule of ``llmcompiler._speculation``.

Runs are on virtual time (``run_virtual``): the planner streams at a set pace, the drafter
faster, and tools sleep or wait on events, so every timing below is exact and no test sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmcompiler import (
    LLMCompiler,
    ModelRequest,
    RunEvent,
    RunResult,
    SpeculationEnded,
    SpeculationStarted,
    TaskRecord,
    Tool,
    ToolCall,
    UserError,
    tool,
)
from llmcompiler.models import ModelEvent
from llmcompiler.testing import ScriptedLLM, run_virtual
from tests.strategies import model_plans

SECRET = "sk-spec0123456789abcdefghijklmnopqrstuv"

JOINED = "Action: Finish(done)"


def planner(plan: str, *replies: str) -> ScriptedLLM:
    """A slow planner: 0.5 s to the first token, then 0.05 s per token (a line is ~0.3-0.5 s)."""
    return ScriptedLLM([plan, *(replies or (JOINED,))], ttft=0.5, token_delay=0.05, name="planner")


def drafter(*drafts: str) -> ScriptedLLM:
    """A fast drafter: its whole draft is out in a few hundredths of a second."""
    return ScriptedLLM(list(drafts), ttft=0.01, token_delay=0.001, name="drafter")


class Tools:
    """Tools that count their calls: ``search`` (speculative, 1 s), ``lookup`` (pure, 1 s),
    ``send`` (neither: it must never run from a draft)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

        @tool(speculative=True)
        async def search(q: str) -> str:
            """Search the web."""
            self.calls.append(("search", q))
            await asyncio.sleep(1.0)
            return f"result of {q}"

        @tool(pure=True)
        async def lookup(key: str) -> str:
            """Look a key up."""
            self.calls.append(("lookup", key))
            await asyncio.sleep(1.0)
            return key.upper()

        @tool
        async def send(to: str) -> str:
            """Send a message (a side effect)."""
            self.calls.append(("send", to))
            return f"sent to {to}"

        self.search, self.lookup, self.send = search, lookup, send

    @property
    def all(self) -> list[Tool]:
        return [self.search, self.lookup, self.send]

    def count(self, name: str) -> int:
        return sum(1 for called, _ in self.calls if called == name)


def run(
    plan: str,
    draft: str | None,
    *,
    tools: Tools | None = None,
    drafter_llm: Any = None,
    events: list[RunEvent] | None = None,
    **kwargs: Any,
) -> tuple[RunResult, Tools, ScriptedLLM]:
    tools = tools or Tools()
    llm = planner(plan)
    model = drafter_llm if drafter_llm is not None else (drafter(draft) if draft is not None else None)

    async def main() -> RunResult:
        agent = LLMCompiler(llm=llm, tools=tools.all, drafter=model, **kwargs)
        return await agent.arun("q", on_event=None if events is None else events.append)

    return run_virtual(main), tools, llm


def real(tasks: Sequence[TaskRecord]) -> list[tuple[Any, ...]]:
    """What the joiner and the user see of each task."""
    return [(t.idx, t.tool, t.args, t.result, t.error, t.deps) for t in tasks]


PLAN = 'Thought: two searches.\n1. search("alpha")\n2. search("beta")\n3. join()'


# -- hits


def test_a_drafted_call_that_finished_is_adopted_and_the_tool_runs_once() -> None:
    plan = '1. search("alpha")\n2. send("bob")\n3. search("beta")\n4. join()'
    result, tools, _ = run(plan, plan)
    beta = result.tasks[2]
    assert beta.speculative is not None
    assert beta.speculative.outcome == "hit"
    assert not beta.speculative.joined  # done before the planner wrote its line
    assert beta.result == "result of beta"
    assert tools.count("search") == 2  # one call per task, the drafter's
    assert beta.speculative.saved_s == pytest.approx(1.0)  # the whole call
    spec = result.speculation
    assert spec is not None
    assert (spec.drafted, spec.started, spec.hits, spec.misses, spec.cancelled) == (3, 2, 2, 0, 0)


def test_a_task_joins_a_speculative_call_in_flight() -> None:
    plan = '1. search("alpha")\n2. search("beta")\n3. join()'
    result, tools, _ = run(plan, plan)
    alpha = result.tasks[0]
    assert alpha.speculative is not None
    assert alpha.speculative.joined
    # The draft started it at ~0.02 s; the planner wrote it at ~0.9 s; it ended at ~1.02 s.
    assert alpha.start == pytest.approx(alpha.speculative.started)
    assert alpha.speculative.ready - alpha.speculative.started == pytest.approx(alpha.speculative.saved_s)
    assert 0.5 < alpha.speculative.saved_s < 1.0
    assert tools.count("search") == 2


def test_speculation_makes_the_run_faster_and_changes_no_result() -> None:
    without, _, _ = run(PLAN, None)
    with_draft, _, _ = run(PLAN, PLAN)
    assert real(with_draft.tasks) == real(without.tasks)
    assert with_draft.answer == without.answer
    assert with_draft.total_s < without.total_s - 0.5
    assert without.speculation is None


def test_a_chain_of_draft_calls_hits_when_the_real_chain_resolves_to_the_same_arguments() -> None:
    plan = '1. lookup("a")\n2. search("$1 and more")\n3. join()'
    result, tools, _ = run(plan, plan)
    second = result.tasks[1]
    assert second.args == {"q": "A and more"}
    assert second.speculative is not None
    assert tools.calls == [("lookup", "a"), ("search", "A and more")]


def test_a_pure_tools_hit_serves_a_later_equal_call_from_the_memo() -> None:
    plan = '1. lookup("a")\n2. lookup("a")\n3. join()'
    result, tools, _ = run(plan, '1. lookup("a")')
    first, second = result.tasks[:2]
    assert first.speculative is not None
    assert second.cached
    assert second.speculative is None
    assert tools.count("lookup") == 1


def test_one_speculative_call_serves_one_task() -> None:
    tools = Tools()
    plan = '1. search("x")\n2. search("x")\n3. join()'
    result, tools, _ = run(plan, '1. search("x")', tools=tools)
    hits = [t for t in result.tasks if t.speculative is not None]
    assert len(hits) == 1
    assert tools.count("search") == 2  # search is not pure: the second task makes its own call


# -- the safety rule


def test_a_tool_that_is_not_speculation_safe_is_never_called_from_a_draft() -> None:
    draft = '1. send("mallory")\n2. send("bob")\n3. search("alpha")\n4. join()'
    plan = '1. search("alpha")\n2. join()'
    result, tools, _ = run(plan, draft)
    assert tools.count("send") == 0
    assert tools.calls == [("search", "alpha")]
    assert result.speculation is not None
    assert result.speculation.drafted == 3
    assert result.speculation.started == 1
    assert [c.tool for c in result.speculation.calls] == ["search"]


@pytest.mark.parametrize(
    "limits",
    [
        {"rate_limit": 100, "period": 1.0},
        {"exclusive": "db"},
        {"max_concurrency": 4},
        {"sequential": True},
    ],
    ids=["rate_limit", "exclusive", "own_concurrency", "sequential"],
)
def test_a_safe_tool_whose_calls_share_a_gate_with_real_calls_is_never_speculated(limits: dict[str, Any]) -> None:
    calls: list[str] = []
    sequential = limits.pop("sequential", False)

    @tool(speculative=True, sequential=sequential, **limits)
    async def fetch(url: str) -> str:
        """Fetch a page."""
        calls.append(url)
        return url

    plan = '1. fetch("u")\n2. join()'

    async def main() -> RunResult:
        agent = LLMCompiler(llm=planner(plan), tools=[fetch], drafter=drafter(plan))
        return await agent.arun("q")

    result = run_virtual(main)
    assert calls == ["u"]
    assert result.tasks[0].speculative is None
    assert result.speculation is not None
    assert result.speculation.started == 0


def test_a_batched_tool_is_never_speculated() -> None:
    calls: list[str] = []

    def batch(items: list[dict[str, Any]]) -> list[str]:
        calls.extend(item["url"] for item in items)
        return [item["url"] for item in items]

    @tool(speculative=True, batch=batch)
    def fetch(url: str) -> str:
        """Fetch a page."""
        calls.append(url)
        return url

    plan = '1. fetch("u")\n2. join()'

    async def main() -> RunResult:
        return await LLMCompiler(llm=planner(plan), tools=[fetch], drafter=drafter(plan)).arun("q")

    result = run_virtual(main)
    assert calls == ["u"]
    assert result.speculation is not None
    assert result.speculation.started == 0


def test_a_call_the_planner_already_wrote_is_not_started_from_a_late_draft() -> None:
    slow_drafter = ScriptedLLM([PLAN], ttft=3.0, name="slow drafter")
    result, tools, _ = run(PLAN, None, drafter_llm=slow_drafter)
    assert tools.count("search") == 2
    assert result.speculation is not None
    assert result.speculation.started == 0


# -- misses


def test_a_miss_is_cancelled_when_the_plan_ends_and_never_reaches_the_joiner() -> None:
    cancelled: list[str] = []
    never = asyncio.Event

    class Slow(Tools):
        def __init__(self) -> None:
            super().__init__()

            @tool(speculative=True)
            async def search(q: str) -> str:
                """Search the web."""
                self.calls.append(("search", q))
                if q == "wrong guess":
                    try:
                        await never().wait()  # runs until cancelled
                    except asyncio.CancelledError:
                        cancelled.append(q)
                        raise
                await asyncio.sleep(1.0)
                return f"result of {q}"

            self.search = search

    draft = '1. search("wrong guess")\n2. search("alpha")\n3. join()'
    plan = '1. search("alpha")\n2. join()'
    events: list[RunEvent] = []
    result, _, llm = run(plan, draft, tools=Slow(), events=events)
    assert cancelled == ["wrong guess"]
    spec = result.speculation
    assert spec is not None
    assert (spec.started, spec.hits, spec.misses, spec.cancelled) == (2, 1, 1, 1)
    miss = next(c for c in spec.calls if c.state == "cancelled")
    assert miss.args == {"q": "wrong guess"}
    assert miss.adopted_by is None
    # The plan ended at ~1.2 s: the miss was cancelled then, not left to run.
    assert miss.end == pytest.approx(result.round_timings[0].plan_end)
    joiner_prompt = "\n".join(m.content for m in llm.requests[1].messages)
    assert "wrong guess" not in joiner_prompt
    assert [t.tool for t in result.tasks] == ["search", "join"]
    ended = [e for e in events if isinstance(e, SpeculationEnded)]
    assert sorted(e.call.state for e in ended) == ["cancelled", "hit"]
    started = [e for e in events if isinstance(e, SpeculationStarted)]
    assert [e.draft for e in started] == [1, 2]


def test_a_finished_miss_is_dropped() -> None:
    plan = '1. send("bob")\n2. search("alpha")\n3. join()'
    result, _, llm = run(plan, '1. search("zeta")')
    spec = result.speculation
    assert spec is not None
    assert [(c.state, c.args) for c in spec.calls] == [("missed", {"q": "zeta"})]
    assert "result of zeta" not in "\n".join(m.content for m in llm.requests[1].messages)
    assert all(t.speculative is None for t in result.tasks)


def test_a_miss_waits_while_a_task_of_its_tool_may_still_match_it() -> None:
    # Task 2's arguments wait for task 1; the draft's call with the right arguments is kept
    # past the plan's end and taken when task 2 is ready.
    plan = '1. lookup("k")\n2. search("$1!")\n3. join()'
    result, _, _ = run(plan, '1. lookup("k")\n2. search("K!")')
    assert result.tasks[1].speculative is not None


def test_speculative_calls_of_a_task_given_up_are_cancelled() -> None:
    @tool(speculative=True)
    async def broken(x: str) -> str:
        """Always fails."""
        raise ValueError("no")

    cancelled: list[str] = []

    @tool(speculative=True)
    async def search(q: str) -> str:
        """Search the web."""
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(q)
            raise
        return q

    plan = '1. broken("x")\n2. search("$1")\n3. join()'

    async def main() -> RunResult:
        agent = LLMCompiler(llm=planner(plan), tools=[broken, search], drafter=drafter('1. search("guess")'))
        return await agent.arun("q")

    result = run_virtual(main)
    assert cancelled == ["guess"]
    assert result.tasks[1].state == "skipped"


# -- a failing speculative call


def test_a_speculative_call_that_fails_serves_no_task_and_the_task_makes_its_own_call() -> None:
    attempts: list[str] = []

    @tool(speculative=True)
    async def flaky(x: str) -> str:
        """Fails the first time."""
        attempts.append(x)
        await asyncio.sleep(0.1)
        if len(attempts) == 1:
            raise ConnectionError("reset")
        return "ok"

    plan = '1. flaky("a")\n2. join()'

    async def main() -> RunResult:
        return await LLMCompiler(llm=planner(plan), tools=[flaky], drafter=drafter(plan)).arun("q")

    result = run_virtual(main)
    assert attempts == ["a", "a"]
    assert result.tasks[0].result == "ok"
    assert result.tasks[0].speculative is None
    spec = result.speculation
    assert spec is not None
    assert [(c.state, c.error) for c in spec.calls] == [("failed", "flaky raised ConnectionError: reset")]
    assert spec.hits == 0


@pytest.mark.parametrize("fault", [SystemExit(3), StopIteration(), GeneratorExit()], ids=repr)
def test_a_speculative_call_raising_a_base_exception_fails_alone(fault: BaseException) -> None:
    calls: list[str] = []

    @tool(speculative=True)
    def risky(x: str) -> str:
        """Exits the first time."""
        calls.append(x)
        if len(calls) == 1:
            raise fault
        return "ok"

    plan = '1. risky("a")\n2. join()'

    async def main() -> RunResult:
        return await LLMCompiler(llm=planner(plan), tools=[risky], drafter=drafter(plan)).arun("q")

    result = run_virtual(main)
    assert result.tasks[0].result == "ok"
    assert result.speculation is not None
    assert result.speculation.calls[0].state == "failed"


# -- limits


def test_speculative_calls_run_at_most_max_speculative_at_once() -> None:
    running = 0
    peak = 0

    @tool(speculative=True)
    async def search(q: str) -> str:
        """Search the web."""
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(1.0)
        running -= 1
        return q

    draft = "\n".join(f'{i}. search("q{i}")' for i in range(1, 7))
    plan = '1. search("q1")\n2. join()'

    async def main() -> RunResult:
        agent = LLMCompiler(llm=planner(plan), tools=[search], drafter=drafter(draft), max_speculative=3)
        return await agent.arun("q")

    result = run_virtual(main)
    assert peak == 3
    assert result.speculation is not None
    assert result.speculation.hits == 1


def test_speculative_calls_never_take_a_slot_of_max_concurrency() -> None:
    gate = asyncio.Event

    started: list[str] = []

    @tool(speculative=True)
    async def search(q: str) -> str:
        """Search the web."""
        started.append(q)
        if q.startswith("guess"):
            await gate().wait()  # hangs until cancelled
        await asyncio.sleep(0.5)
        return q

    draft = '1. search("guess1")\n2. search("guess2")'
    plan = '1. search("real")\n2. join()'
    timings: dict[str, float] = {}

    async def main() -> RunResult:
        agent = LLMCompiler(llm=planner(plan), tools=[search], drafter=drafter(draft), max_concurrency=1)
        return await agent.arun("q")

    async def baseline() -> RunResult:
        return await LLMCompiler(llm=planner(plan), tools=[search], max_concurrency=1).arun("q")

    result = run_virtual(main)
    alone = run_virtual(baseline)
    timings["with"] = result.tasks[0].start or 0.0
    timings["without"] = alone.tasks[0].start or 0.0
    assert timings["with"] == pytest.approx(timings["without"])  # two hanging guesses held no slot
    assert result.speculation is not None
    assert result.speculation.cancelled == 2


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "2"])
def test_max_speculative_must_be_a_positive_integer(bad: Any) -> None:
    with pytest.raises(UserError, match="max_speculative"):
        LLMCompiler(llm=planner(PLAN), tools=Tools().all, drafter=drafter(PLAN), max_speculative=bad)


def test_the_planner_cannot_be_its_own_drafter() -> None:
    llm = planner(PLAN)
    with pytest.raises(UserError, match="the drafter is the planner itself"):
        LLMCompiler(llm=llm, tools=Tools().all, drafter=llm)


def test_a_sync_tool_runs_speculatively_in_its_own_threads() -> None:
    import threading

    threads: list[str] = []

    @tool(speculative=True)
    def read(path: str) -> str:
        """Read a file."""
        threads.append(threading.current_thread().name)
        return path[::-1]

    plan = '1. read("abc")\n2. join()'

    async def main() -> RunResult:
        return await LLMCompiler(llm=planner(plan), tools=[read], drafter=drafter(plan)).arun("q")

    result = run_virtual(main)
    assert result.tasks[0].result == "cba"
    assert result.tasks[0].speculative is not None
    assert len(threads) == 1
    assert threads[0].startswith("llmcompiler-tool-")


# -- the drafter's own faults change nothing


class Raising:
    """A drafter that raises after a few chunks, with a secret in its message."""

    model_name = "raising"

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        yield '1. search("al'
        raise RuntimeError(f"upstream said no (key {SECRET})")


class Stalling:
    """A drafter that writes one call, then never another token."""

    model_name = "stalling"

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        yield '1. search("zzz")\n'
        await asyncio.Event().wait()
        yield "never"


class NativeCalls:
    """A drafter that answers with a native tool call instead of a plan."""

    model_name = "native"

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        yield ToolCall(name="search", args={"q": "alpha"})


class NotAStream:
    """A drafter whose stream() is not even an async iterator."""

    model_name = "broken"

    def stream(self, request: ModelRequest) -> Any:
        return 42


FAULTY = {
    "raises": Raising(),
    "stalls": Stalling(),
    "native_calls": NativeCalls(),
    "not_a_stream": NotAStream(),
    "garbage": ScriptedLLM(['\x00\ufeff((((1. search("\n\n```\n$$$ 9999999999999999999999999. )))'], name="garbage"),
    "huge": ScriptedLLM(['1. search("' + "x" * 60_000 + '")'], name="huge"),
    "script_exhausted": ScriptedLLM([], name="empty"),
}


@pytest.mark.parametrize("name", FAULTY)
def test_a_failing_drafter_changes_nothing_but_its_own_effort(name: str) -> None:
    without, tools_without, _ = run(PLAN, None)
    with_it, tools_with, _ = run(PLAN, None, drafter_llm=FAULTY[name])
    assert real(with_it.tasks) == real(without.tasks)
    assert with_it.answer == without.answer
    assert with_it.usage == without.usage  # the drafter's tokens are not the run's
    assert with_it.total_s == pytest.approx(without.total_s)
    assert with_it.speculation is not None
    assert with_it.speculation.hits == 0
    assert SECRET not in repr(with_it.speculation)
    assert tools_with.count("send") == tools_without.count("send") == 0


def test_a_raising_drafter_is_reported_with_its_secret_taken_out() -> None:
    result, _, _ = run(PLAN, None, drafter_llm=Raising())
    assert result.speculation is not None
    (error,) = result.speculation.errors
    assert "upstream said no" in error
    assert SECRET not in error


def test_the_drafters_tokens_are_counted_apart() -> None:
    without, _, _ = run(PLAN, None)
    result, _, _ = run(PLAN, PLAN)
    assert result.usage == without.usage
    assert result.speculation is not None
    assert result.speculation.usage.calls == 1
    assert result.speculation.usage.completion_tokens > 0
    assert result.speculation.cost_usd is None  # a scripted model has no price


# -- rounds


def test_a_replan_drafts_again_and_its_draft_may_use_earlier_rounds_results() -> None:
    plan1 = '1. lookup("k")\n2. join()'
    plan2 = '3. search("$1 again")\n4. join()'
    llm = ScriptedLLM([plan1, "Action: Replan(more)", plan2, JOINED], ttft=0.5, token_delay=0.05, name="planner")
    model = drafter(plan1, plan2)
    tools = Tools()

    async def main() -> RunResult:
        return await LLMCompiler(llm=llm, tools=tools.all, drafter=model).arun("q")

    result = run_virtual(main)
    assert result.rounds == 2
    assert model.requests[1].first_task == 3
    assert result.tasks[2].args == {"q": "K again"}
    assert result.tasks[2].speculative is not None
    spec = result.speculation
    assert spec is not None
    assert [c.round for c in spec.calls] == [1, 2]
    assert spec.hits == 2


def test_the_drafter_gets_the_planners_request() -> None:
    llm = planner(PLAN)
    model = drafter(PLAN)

    async def main() -> RunResult:
        return await LLMCompiler(llm=llm, tools=Tools().all, drafter=model).arun("q")

    run_virtual(main)
    assert model.requests == llm.requests[:1]


# -- drafts as real models write them


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(draft=model_plans(tools=("search", "lookup", "send")))
def test_any_draft_leaves_the_real_run_as_it_is(draft: str) -> None:
    plan = '1. search("alpha")\n2. lookup("k")\n3. search("$2 $1")\n4. send("bob")\n5. join()'
    without, _, _ = run(plan, None)
    result, tools, _ = run(plan, draft)
    assert real(result.tasks) == real(without.tasks)
    assert result.answer == without.answer
    assert tools.count("send") == 1  # the plan's own call: never one from a draft
    spec = result.speculation
    assert spec is not None
    assert spec.started == len(spec.calls)
    assert spec.hits + spec.misses == spec.started
    assert result.total_s <= without.total_s + 1e-9


def test_a_strategy_of_its_own_speculates_through_executor_run_round() -> None:
    from llmcompiler import Executor
    from llmcompiler.strategy import Draft, SpeculationLog

    tools = Tools()
    plan = '1. search("alpha")\n2. join()'
    request = ModelRequest(messages=(), purpose="plan", first_task=1)

    async def source() -> AsyncIterator[str]:
        await asyncio.sleep(0.5)
        yield plan

    async def main() -> SpeculationLog:
        log = SpeculationLog("drafter")
        outcome = await Executor(tools.all).run_round(
            source(), draft=Draft(model=drafter(plan), request=request, log=log)
        )
        assert outcome.records[0].speculative is not None
        return log

    summary = run_virtual(main).summary()
    assert (summary.started, summary.hits) == (1, 1)
    assert tools.count("search") == 1


# -- drafts close to the plan, at any speed


@st.composite
def plans_and_drafts(draw: st.DrawFn) -> tuple[str, str, float, float]:
    """A real plan over search/lookup/send/flaky with references, a draft made from it by the edits
    a small model makes (a line dropped, an argument changed, lines swapped, a call of another
    tool), and the planner's and drafter's paces."""
    lines: list[str] = []
    for idx in range(1, draw(st.integers(1, 6)) + 1):
        tool_name = draw(st.sampled_from(["search", "lookup", "send", "flaky"]))
        if idx > 1 and draw(st.booleans()):
            arg = f'"${draw(st.integers(1, idx - 1))} {draw(st.sampled_from(["x", "y"]))}"'
        else:
            arg = f'"{draw(st.sampled_from(["a", "b", "c", "fail"]))}"'
        lines.append(f"{idx}. {tool_name}({arg})")
    plan = "\n".join([*lines, f"{len(lines) + 1}. join()"])
    draft = list(lines)
    for _ in range(draw(st.integers(0, 3))):
        if not draft:
            break
        k = draw(st.integers(0, len(draft) - 1))
        edit = draw(st.sampled_from(["drop", "arg", "swap", "tool", "keep"]))
        if edit == "drop":
            draft.pop(k)
        elif edit == "arg":
            draft[k] = draft[k].replace('("', '("z')
        elif edit == "swap" and len(draft) > 1:
            j = draw(st.integers(0, len(draft) - 1))
            draft[k], draft[j] = draft[j], draft[k]
        elif edit == "tool":
            draft[k] = draft[k].replace("search(", "send(").replace("lookup(", "search(")
    planner_pace = draw(st.sampled_from([0.0, 0.01, 0.05, 0.2]))
    drafter_lag = draw(st.sampled_from([0.0, 0.3, 1.0, 5.0]))
    return plan, "\n".join(draft), planner_pace, drafter_lag


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=plans_and_drafts())
def test_a_draft_close_to_the_plan_changes_no_result_at_any_speed(case: tuple[str, str, float, float]) -> None:
    plan, draft, pace, lag = case

    def tools() -> tuple[list[Tool], list[tuple[str, str]]]:
        calls: list[tuple[str, str]] = []

        @tool(speculative=True)
        async def search(q: str) -> str:
            """Search."""
            calls.append(("search", q))
            await asyncio.sleep(0.1 + (len(q) % 4) * 0.2)
            return f"found {q}"

        @tool(pure=True)
        async def lookup(key: str) -> str:
            """Look up."""
            calls.append(("lookup", key))
            await asyncio.sleep(0.3)
            return key.upper()

        @tool
        async def send(to: str) -> str:
            """Send (a side effect)."""
            calls.append(("send", to))
            return f"sent {to}"

        @tool(speculative=True)
        async def flaky(x: str) -> str:
            """Fails for an argument with "fail" in it (a failing speculative call serves no task)."""
            calls.append(("flaky", x))
            await asyncio.sleep(0.2)
            if "fail" in x:
                raise ConnectionError(f"flaky {x}")
            return f"ok {x}"

        return [search, lookup, send, flaky], calls

    def one(with_draft: bool) -> tuple[RunResult, list[tuple[str, str]]]:
        own, calls = tools()
        llm = ScriptedLLM([plan, JOINED], ttft=0.5, token_delay=pace, name="planner")
        model = ScriptedLLM([draft], ttft=lag, token_delay=0.001, name="drafter") if with_draft else None

        async def main() -> RunResult:
            return await LLMCompiler(llm=llm, tools=own, drafter=model).arun("q")

        return run_virtual(main), calls

    without, plain_calls = one(False)
    result, calls = one(True)
    assert real(result.tasks) == real(without.tasks)
    assert result.answer == without.answer
    # The same sends (their order may change: speculation changes when tasks finish).
    assert sorted(c for c in calls if c[0] == "send") == sorted(c for c in plain_calls if c[0] == "send")
    spec = result.speculation
    assert spec is not None
    # Never slower, unless a task waited for a speculative call that then failed (documented).
    assert result.total_s <= without.total_s + 1e-9 or any(c.state == "failed" for c in spec.calls)
    assert spec.hits + spec.misses == spec.started == len(spec.calls)
    assert all(c.tool != "send" for c in spec.calls)
    assert {t.idx for t in result.tasks if t.speculative is not None} == {
        c.adopted_by for c in spec.calls if c.state == "hit"
    }
    for task in result.tasks:
        if task.speculative is not None:
            assert task.error is None
            assert 0.0 <= task.speculative.saved_s <= (task.duration or 0.0) + 1e-9
