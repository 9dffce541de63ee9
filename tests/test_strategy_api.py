"""A strategy written outside the engine, on its public API only (``llmcompiler`` and
``llmcompiler.strategy``), gets what the built-in ones get: usage and cost summed, task
records, events, and the run's boundary (a failing listener ends the run with its own
exception, never an exception group). And ``planners`` imports no private module of ours.
"""

from __future__ import annotations

import ast
import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

import llmcompiler
import llmcompiler.strategy
from llmcompiler import (
    END_OF_PLAN,
    EventHandler,
    JoinerDecided,
    Message,
    ModelError,
    ModelRequest,
    PlanChunk,
    RoundStarted,
    RunError,
    RunEvent,
    RunResult,
    TaskFinished,
    TaskStarted,
    ToolCall,
    Usage,
    UserError,
    tool,
)
from llmcompiler.models import cost_usd, price_of
from llmcompiler.strategy import (
    CallRound,
    Run,
    Strategy,
    ToolLike,
    describe_tools,
    fill_template,
    observation_text,
    run_sync,
)
from llmcompiler.testing import FunctionLLM, Reply, ScriptedLLM, TokenLimit, estimate_tokens
from planners import Agent

ROOT = Path(__file__).resolve().parent.parent

PLAN_PROMPT = "Tools:\n{{tools}}\nWrite a numbered plan for: {{question}}"
ANSWER_PROMPT = "Question: {{question}}\nResults:\n{{results}}\nAnswer in one line."


class PlanThenAnswer(Strategy):
    """The third strategy: one streamed plan (its tasks start as it streams), then one model
    call that answers from the results. No replans, no joiner grammar. ``Strategy`` gives it
    the model, tools, limits and listeners, and ``run`` for sync code."""

    async def arun(self, question: str, *, on_event: EventHandler | None = None) -> RunResult:
        run = self.new_run(on_event)
        return await run.guard(self._answer(run, question))

    async def _answer(self, run: Run, question: str) -> RunResult:
        run.emit(RoundStarted(round=1, feedback=None))
        plan = fill_template(PLAN_PROMPT, tools=describe_tools(self.tools.values()), question=question)
        request = ModelRequest(
            messages=(Message(role="user", content=plan),), purpose="plan", stop=(END_OF_PLAN,), question=question
        )
        outcome = await run.executor.run_round(run.stream_text(self.llm, request))
        results = "\n".join(f"{r.idx}. {r.tool}: {observation_text(r)}" for r in outcome.records)
        ask = fill_template(ANSWER_PROMPT, question=question, results=results)
        reply = await run.reply(self.llm, ModelRequest(messages=(Message(role="user", content=ask),), purpose="answer"))
        run.emit(JoinerDecided(action="finish", text=reply.text, thought=None))
        return run.result(answer=reply.text, rounds=1, plan_errors=outcome.plan_errors)


class Gate:
    """A tool that waits until it is cancelled, and says when it started and when it was cancelled."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()

    def tool(self) -> ToolLike:
        @tool
        async def slow(x: int) -> int:
            """Wait for ever (until cancelled)."""
            self.started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
            return x  # pragma: no cover - never let go

        return slow


@tool
def square(x: int) -> int:
    """Square a number."""
    return x * x


PLAN = "1. square(3)\n2. square($1)\n<END_OF_PLAN>"


def _answering(answer: str = "81", *, name: str = "scripted") -> ScriptedLLM:
    return ScriptedLLM([PLAN, answer], name=name)


class Boom(Exception):
    """A listener's own failure."""


# ---------------------------------------------------------------- what the strategy gets


async def test_a_strategy_on_the_public_api_answers_with_records_and_usage() -> None:
    llm = _answering()
    result = await PlanThenAnswer(llm=llm, tools=[square]).arun("3 squared, squared?")
    llm.assert_complete()
    assert result.answer == "81"
    assert [(t.idx, t.tool, t.result) for t in result.tasks] == [(1, "square", 9), (2, "square", 81)]
    assert result.rounds == 1 and result.start <= result.end
    # Both calls are summed: the prompt tokens each request had, the tokens each reply wrote.
    prompts = [sum(estimate_tokens(m.content) for m in r.messages) for r in llm.requests]
    written = estimate_tokens(PLAN.removesuffix("\n<END_OF_PLAN>")) + estimate_tokens("81")
    assert result.usage == Usage(prompt_tokens=sum(prompts), completion_tokens=written, calls=2)
    assert result.cost_usd is None  # a test double has no list price
    # The prompts were filled from the public helpers: the tools described, the results shown.
    assert "1. square(x: int)" in llm.requests[0].messages[0].content
    assert "1. square: 9\n2. square: 81" in llm.requests[1].messages[0].content


async def test_cost_is_summed_at_list_price() -> None:
    name = "openai:gpt-4o-mini"
    assert price_of(name) is not None
    llm = _answering(name=name)
    result = await PlanThenAnswer(llm=llm, tools=[square]).arun("3 squared, squared?")
    assert result.cost_usd == pytest.approx(cost_usd(name, result.usage))
    assert result.cost_usd is not None and result.cost_usd > 0


async def test_the_listeners_see_the_engines_events_and_the_strategys_own() -> None:
    events: list[RunEvent] = []
    per_run: list[RunEvent] = []
    agent = PlanThenAnswer(llm=_answering(), tools=[square], on_event=events.append)
    await agent.arun("3 squared, squared?", on_event=per_run.append)
    assert events == per_run
    kinds = [e.kind for e in events]
    assert kinds[0] == "round" and kinds[-1] == "joined"
    assert any(isinstance(e, PlanChunk) for e in events)
    started = [e.idx for e in events if isinstance(e, TaskStarted)]
    finished = [e.record.idx for e in events if isinstance(e, TaskFinished)]
    assert started == [1, 2] and finished == [1, 2]


def test_run_sync_answers_from_sync_code() -> None:
    assert PlanThenAnswer(llm=_answering(), tools=[square]).run("3 squared, squared?").answer == "81"


async def test_run_sync_inside_an_event_loop_is_a_user_error_and_leaves_no_coroutine_unawaited() -> None:
    agent = PlanThenAnswer(llm=_answering(), tools=[square])
    with pytest.raises(UserError, match="inside an event loop"):
        agent.run("3 squared?")  # filterwarnings=error: a coroutine never awaited would fail the test


def test_run_sync_runs_a_coroutine_from_sync_code() -> None:
    async def nine() -> int:
        return 9

    assert run_sync(nine()) == 9


def test_the_base_takes_tools_limits_and_checks_them() -> None:
    agent = PlanThenAnswer(llm=_answering(), tools=[square], max_concurrency=2, timeout=5)
    assert list(agent.tools) == ["square"] and agent.limits.max_concurrency == 2 and agent.limits.timeout == 5
    with pytest.raises(UserError, match="PlanThenAnswer needs at least one tool"):
        PlanThenAnswer(llm=_answering(), tools=[])
    with pytest.raises(UserError, match="two tools are named 'square'"):
        PlanThenAnswer(llm=_answering(), tools=[square, square])


def test_the_strategy_is_an_agent_as_the_baselines_are() -> None:
    assert isinstance(PlanThenAnswer(llm=_answering(), tools=[square]), Agent)


# ---------------------------------------------------------------- the boundary, for free


async def test_a_failing_listener_ends_the_run_with_its_own_exception_and_the_records() -> None:
    def listener(event: RunEvent) -> None:
        if isinstance(event, TaskFinished) and event.record.idx == 2:
            raise Boom("the listener broke")

    llm = _answering()
    with pytest.raises(Boom) as caught:
        await PlanThenAnswer(llm=llm, tools=[square], on_event=listener).arun("3 squared, squared?")
    assert not isinstance(caught.value, BaseExceptionGroup)
    tasks = caught.value.tasks  # type: ignore[attr-defined]
    assert [t.idx for t in tasks] == [1, 2]
    assert len(llm.requests) == 1  # the answer was never asked for


async def test_a_failing_listener_cancels_the_tool_calls_in_flight() -> None:
    gate = Gate()
    slow_was_running: list[bool] = []

    def listener(event: RunEvent) -> None:
        if isinstance(event, TaskFinished) and event.record.tool == "square":
            slow_was_running.append(gate.started.is_set())
            raise Boom("stop")

    llm = ScriptedLLM(["1. slow(1)\n2. square(2)\n<END_OF_PLAN>"])
    agent = PlanThenAnswer(llm=llm, tools=[gate.tool(), square], on_event=listener)
    with pytest.raises(Boom) as caught:
        await agent.arun("wait")
    assert slow_was_running == [True]
    assert gate.cancelled.is_set()  # cancelled with the run, not left running
    assert [t.tool for t in caught.value.tasks] == ["square"]  # type: ignore[attr-defined]


async def test_a_model_that_raises_is_a_model_error_with_the_finished_records() -> None:
    def reply(messages: Sequence[Message], purpose: str) -> Reply:
        if purpose == "plan":
            return PLAN
        raise ConnectionError("the network went away")

    with pytest.raises(ModelError, match="ConnectionError: the network went away") as caught:
        await PlanThenAnswer(llm=FunctionLLM(reply), tools=[square]).arun("3 squared, squared?")
    assert isinstance(caught.value.__cause__, ConnectionError)
    assert [t.result for t in caught.value.tasks] == [9, 81]  # Run.guard filled them in


async def test_a_reply_cut_at_the_token_limit_is_a_model_error_not_an_answer() -> None:
    llm = ScriptedLLM([PLAN, TokenLimit("8")])
    with pytest.raises(ModelError, match=r"the reply to the answer call was cut short .*\(length\)") as caught:
        await PlanThenAnswer(llm=llm, tools=[square]).arun("3 squared, squared?")
    assert len(caught.value.tasks) == 2


async def test_a_native_tool_call_in_a_text_reply_names_the_strategy() -> None:
    llm = ScriptedLLM([PLAN, [ToolCall(name="square", args={"x": 2})]])
    with pytest.raises(ModelError, match=r"native tool call \(square\); PlanThenAnswer needs text"):
        await PlanThenAnswer(llm=llm, tools=[square]).arun("3 squared, squared?")


async def test_a_bug_in_the_strategy_is_a_run_error_with_the_records_never_a_group() -> None:
    async def body(run: Run) -> RunResult:
        await run.executor.run_calls([(1, "square", {"x": 4})])
        raise ExceptionGroup("a bug", [KeyError("missing")])

    run = Run([square])
    with pytest.raises(RunError, match="KeyError") as caught:
        await run.guard(body(run))
    assert isinstance(caught.value.__cause__, KeyError)
    assert [t.result for t in caught.value.tasks] == [16]


async def test_native_calls_and_a_default_result_from_the_run() -> None:
    # The other way to call tools: a reply's native calls, run concurrently as one round.
    llm = ScriptedLLM([[ToolCall(name="square", args={"x": 2}), ToolCall(name="square", args={"x": 5})]])
    run = Run([square])

    async def body() -> RunResult:
        request = ModelRequest(messages=(Message(role="user", content="squares"),), purpose="tools", native_tools=True)
        reply = await run.reply(llm, request)
        records = await run.executor.run_calls([(k, c.name, c.args) for k, c in enumerate(reply.calls, 1)])
        return run.result(answer=", ".join(observation_text(r) for r in records), rounds=1)

    result = await run.guard(body())
    assert result.answer == "4, 25"
    assert [t.idx for t in result.tasks] == [1, 2]  # every record of the run, by default
    assert result.usage.calls == 1


class TwoCalls:
    """A model that sends one native call, waits until ``go`` is set, then sends a second."""

    model_name = "two-calls"

    def __init__(self, go: asyncio.Event) -> None:
        self.go = go

    async def stream(self, request: ModelRequest) -> AsyncIterator[ToolCall | Usage]:
        yield ToolCall(name="first", args={"x": 3})
        await self.go.wait()
        yield ToolCall(name="square", args={"x": 5})
        yield Usage(prompt_tokens=4, completion_tokens=6, calls=1)


async def test_native_calls_start_as_the_reply_streams_through_on_call_and_a_call_round() -> None:
    # The third way to call tools: each native call started as the reply delivers it.
    started = asyncio.Event()

    @tool
    async def first(x: int) -> int:
        """Lets the model go on once it runs."""
        started.set()
        return x

    run = Run([first, square])
    request = ModelRequest(messages=(Message(role="user", content="go"),), purpose="tools", native_tools=True)

    async def body() -> RunResult:
        numbers = itertools.count(1)
        async with run.executor.call_round(round=1) as calls:
            assert isinstance(calls, CallRound)
            reply = await run.reply(TwoCalls(started), request, on_call=lambda call: calls.start(next(numbers), call))
        assert [c.name for c in reply.calls] == ["first", "square"]
        return run.result(answer=", ".join(observation_text(r) for r in calls.records), rounds=1)

    async with asyncio.timeout(10):  # the model waits for the first call to start
        result = await run.guard(body())
    assert result.answer == "3, 25"
    assert [(t.idx, t.tool) for t in result.tasks] == [(1, "first"), (2, "square")]
    assert result.usage == Usage(prompt_tokens=4, completion_tokens=6, calls=1)


async def test_what_on_call_raises_ends_the_reply_as_itself() -> None:
    def refuse(call: ToolCall) -> None:
        raise Boom(f"no {call.name}")

    run = Run([square])
    llm = ScriptedLLM([[ToolCall(name="square", args={"x": 2})]])
    request = ModelRequest(messages=(Message(role="user", content="go"),), purpose="tools", native_tools=True)
    with pytest.raises(Boom, match="no square"):
        await run.reply(llm, request, on_call=refuse)


# ---------------------------------------------------------------- the surface itself


def test_every_name_of_the_strategy_module_is_documented() -> None:
    names = llmcompiler.strategy.__all__
    assert len(names) == len(set(names))
    undocumented = [
        name for name in names if name != "ToolLike" and not (getattr(llmcompiler.strategy, name).__doc__ or "").strip()
    ]
    assert undocumented == []
    # One name, one home: the strategy module adds to the root's names, it does not repeat them.
    assert not set(names) & set(llmcompiler.__all__)


def _private_imports(source: str, name: str) -> list[str]:
    """The ``llmcompiler`` modules and names imported in ``source`` with a private part (``_x``)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename=name)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.extend(
            f"{name}:{node.lineno}: {module}"
            for module in modules
            if module.split(".")[0] == "llmcompiler" and any(part.startswith("_") for part in module.split(".")[1:])
        )
    return found


def test_planners_imports_only_public_names_of_llmcompiler() -> None:
    sources = sorted((ROOT / "planners").glob("*.py"))
    assert any(path.name == "_react.py" for path in sources)
    hits = [hit for path in sources for hit in _private_imports(path.read_text(encoding="utf-8"), path.name)]
    assert hits == []


def test_the_private_import_check_finds_them() -> None:
    source = (
        "from llmcompiler import Tool\n"
        "from llmcompiler._plan import parse_plan\n"
        "import llmcompiler.models._reading\n"
        "def f() -> None:\n"
        "    from llmcompiler import _agent\n"
    )
    assert _private_imports(source, "probe.py") == [
        "probe.py:2: llmcompiler._plan",
        "probe.py:2: llmcompiler._plan.parse_plan",
        "probe.py:3: llmcompiler.models._reading",
        "probe.py:5: llmcompiler._agent",
    ]
