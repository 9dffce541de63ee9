"""Issue 10, rows 22-25: model replies and the run boundary.

- row 22: a reply cut by the token limit is never taken as complete (every adapter reports it
  with ``Truncated``; a cut plan runs what it parsed; a cut joiner reply, ReAct step or native
  turn is a ``ModelError`` with the records);
- row 23: whatever a model raises is a ``ModelError`` with ``.tasks`` and the original as cause;
- row 24: ``arun_many`` keeps every answer but the failed one's, or raises the first failure as itself;
- row 25: a failing ``on_event`` handler ends the run with its own exception, never a group;
- the boundary rule: every public entry point raises only our errors or the caller's own exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk

from llmcompiler import (
    JoinerDecided,
    LLMCompiler,
    Message,
    ModelError,
    ModelRequest,
    RoundStarted,
    RunError,
    RunResult,
    TaskFinished,
    TaskStarted,
    ToolCall,
    Usage,
    tool,
)
from llmcompiler._boundary import RunBoundary
from llmcompiler._errors import ReplyCut, unwrap_group
from llmcompiler._events import RunEvent
from llmcompiler.models import ModelEvent, Purpose, Truncated
from llmcompiler.models._anthropic import AnthropicChat
from llmcompiler.models._langchain import LangChainChat
from llmcompiler.models._openai import OpenAIChat
from llmcompiler.models._reading import _model_fault, model_events
from llmcompiler.strategy import Run
from llmcompiler.testing import FunctionLLM, Reply, ScriptedLLM, TokenLimit
from planners import ParallelToolCallAgent, ReActAgent
from tests.test_langchain_chat import ChunkChatModel
from tests.wire import SSE, LoopbackServer, Script
from tests.wire import anthropic_server as an
from tests.wire import openai_server as oa

SECRET = "sk-test-DISTINCTIVE-hardening-5e1f"


@tool
def add(x: int, y: int) -> int:
    """Add two integers."""
    return x + y


PLAN = "1. add(1, 2)\n2. join()"


class HandlerBug(Exception):
    """A user's bug in an ``on_event`` handler."""


def _added(records: Sequence[Any]) -> bool:
    return any(r.tool == "add" and r.result == 3 for r in records)


# ---------------------------------------------------------------- row 22: adapters report cuts


# The loopback servers, their scripts and the SDK clients on them: tests/conftest.py (keyed by this module's SECRET).


def _request(purpose: Purpose = "join") -> ModelRequest:
    return ModelRequest(messages=(Message(role="user", content="hi"),), purpose=purpose)


async def _events(stream: AsyncIterator[ModelEvent]) -> list[ModelEvent]:
    return [event async for event in stream]


async def test_openai_length_finish_ends_the_stream_with_truncated(
    openai_llm: OpenAIChat, openai_script: Script
) -> None:
    # issue 10 row 22
    openai_script.add(oa.text_reply("Action: Finish(the answer is", finish="length"))
    events = await _events(openai_llm.stream(_request()))
    assert "".join(e for e in events if isinstance(e, str)) == "Action: Finish(the answer is"
    assert events[-2:] == [Usage(prompt_tokens=10, completion_tokens=5, calls=1), Truncated("length")]


async def test_openai_complete_reply_has_no_truncated(openai_llm: OpenAIChat, openai_script: Script) -> None:
    openai_script.add(oa.text_reply("Action: Finish(4)"))
    events = await _events(openai_llm.stream(_request()))
    assert not any(isinstance(e, Truncated) for e in events)


async def test_anthropic_max_tokens_stop_ends_the_stream_with_truncated(
    anthropic_llm: AnthropicChat, anthropic_script: Script
) -> None:
    # issue 10 row 22
    anthropic_script.add(SSE(an.text_stream(["Action: Fin", "ish(the answer"], stop_reason="max_tokens")))
    events = await _events(anthropic_llm.stream(_request()))
    assert "".join(e for e in events if isinstance(e, str)) == "Action: Finish(the answer"
    assert events[-2:] == [Usage(prompt_tokens=12, completion_tokens=6, calls=1), Truncated("max_tokens")]


async def test_anthropic_end_turn_has_no_truncated(anthropic_llm: AnthropicChat, anthropic_script: Script) -> None:
    anthropic_script.add(SSE(an.text_stream(["Action: Finish(4)"])))
    events = await _events(anthropic_llm.stream(_request()))
    assert not any(isinstance(e, Truncated) for e in events)


def _chunks(*pieces: str, **metadata: str) -> list[AIMessageChunk]:
    """Chunks of a LangChain reply; the last one carries ``metadata`` as its ``response_metadata``."""
    chunks = [AIMessageChunk(content=p) for p in pieces]
    chunks.append(AIMessageChunk(content="", response_metadata=dict(metadata)))
    return chunks


@pytest.mark.parametrize(
    ("metadata", "cut"),
    [
        ({"finish_reason": "length"}, "length"),
        ({"stop_reason": "max_tokens"}, "max_tokens"),
        ({"finish_reason": "MAX_TOKENS"}, "MAX_TOKENS"),
        ({"done_reason": "length"}, "length"),
        ({"finish_reason": "stop"}, None),
        ({}, None),
    ],
)
async def test_a_langchain_stream_whose_last_chunk_says_cut_ends_with_truncated(
    metadata: dict[str, str], cut: str | None
) -> None:
    # issue 10 row 22
    model = ChunkChatModel(replies=[_chunks("Action: Finish(", "half", **metadata)])
    events = await _events(LangChainChat(model).stream(_request()))
    assert "".join(e for e in events if isinstance(e, str)) == "Action: Finish(half"
    assert [e for e in events if isinstance(e, Truncated)] == ([Truncated(cut)] if cut else [])


async def test_a_langchain_reply_that_reached_a_stop_sequence_is_whole() -> None:
    # issue 10 row 22: text after the stop sequence is dropped; the limit it then hit does not matter
    model = ChunkChatModel(replies=[_chunks("1. add(1, 2)\n<END_OF_PLAN>", " rambling", finish_reason="length")])
    request = ModelRequest(messages=(Message(role="user", content="hi"),), purpose="plan", stop=("<END_OF_PLAN>",))
    events = await _events(LangChainChat(model).stream(request))
    assert not any(isinstance(e, Truncated) for e in events)


async def test_openai_cut_joiner_reply_is_a_model_error_with_the_records(
    openai_llm: OpenAIChat, openai_script: Script
) -> None:
    # issue 10 row 22: a cut "Finish(" never becomes the answer
    openai_script.add(
        oa.text_reply(PLAN),
        oa.text_reply("Thought: done.\nAction: Finish(The sum is", finish="length"),
    )
    agent = LLMCompiler(llm=openai_llm, tools=[add])
    with pytest.raises(ModelError, match=r"cut short by the model's token limit \(length\)") as caught:
        await agent.arun("1 + 2?")
    assert _added(caught.value.tasks)
    assert "The sum is" in str(caught.value)


async def test_anthropic_cut_joiner_reply_is_a_model_error_with_the_records(
    anthropic_llm: AnthropicChat, anthropic_script: Script
) -> None:
    # issue 10 row 22
    anthropic_script.add(
        SSE(an.text_stream([PLAN])),
        SSE(an.text_stream(["Action: Finish(The sum", " is"], stop_reason="max_tokens")),
    )
    agent = LLMCompiler(llm=anthropic_llm, tools=[add])
    with pytest.raises(ModelError, match=r"token limit \(max_tokens\)") as caught:
        await agent.arun("1 + 2?")
    assert _added(caught.value.tasks)


async def test_openai_cut_plan_runs_its_complete_tasks_and_tells_the_joiner(
    openai_llm: OpenAIChat, openai_script: Script
) -> None:
    # issue 10 row 22: the parsed tasks run, the cut line fails, the joiner hears of the cut
    openai_script.add(
        oa.text_reply("1. add(1, 2)\n2. add($1, 4", finish="length"),
        oa.text_reply("Thought: task 1 is enough.\nAction: Finish(3)"),
    )
    agent = LLMCompiler(llm=openai_llm, tools=[add], max_replans=0)
    result = await agent.arun("1 + 2?")
    assert result.answer == "3"
    done, cut = result.tasks[0], result.tasks[1]
    assert done.result == 3 and done.error is None
    assert cut.error is not None and "token limit" in cut.error
    joiner_prompt = str(openai_script.bodies()[1]["messages"])
    assert "token limit" in joiner_prompt


async def test_anthropic_cut_plan_runs_its_complete_tasks(
    anthropic_llm: AnthropicChat, anthropic_script: Script
) -> None:
    # issue 10 row 22
    anthropic_script.add(
        SSE(an.text_stream(["1. add(1, 2)\n", "2. add($1, "], stop_reason="max_tokens")),
        SSE(an.text_stream(["Action: Finish(3)"])),
    )
    result = await LLMCompiler(llm=anthropic_llm, tools=[add], max_replans=0).arun("1 + 2?")
    assert result.answer == "3"
    assert result.tasks[0].result == 3
    assert result.tasks[1].error is not None and "max_tokens" in result.tasks[1].error


async def test_a_native_turn_cut_on_the_wire_is_a_model_error_and_runs_only_its_whole_calls(
    openai_llm: OpenAIChat, openai_script: Script
) -> None:
    # issue 10 row 22: the last call's arguments were cut mid-JSON; it never runs. Issue 14: the
    # call delivered whole before it started as it arrived, and ran to its end.
    ran: list[int] = []

    @tool
    def record(n: int) -> int:
        """Record a number."""
        ran.append(n)
        return n

    openai_script.add(
        SSE(oa.tool_stream([("call_1", "record", ['{"n": 1}']), ("call_2", "record", ['{"n": '])], finish="length"))
    )
    with pytest.raises(ModelError, match=r"tool-calling turn 1 was cut short .*\(length\)"):
        await ParallelToolCallAgent(llm=openai_llm, tools=[record]).arun("record")
    assert ran == [1]


async def test_scripted_token_limit_streams_text_usage_then_truncated() -> None:
    # issue 10 row 22: the test double can script a cut reply
    llm = ScriptedLLM([TokenLimit("Action: Finish(half", reason="max_tokens")])
    events = await _events(llm.stream(_request()))
    assert "".join(e for e in events if isinstance(e, str)) == "Action: Finish(half"
    assert isinstance(events[-2], Usage) and events[-1] == Truncated("max_tokens")


async def test_a_cut_plan_from_the_scripted_model_still_answers() -> None:
    # issue 10 row 22
    llm = ScriptedLLM([TokenLimit("1. add(1, 2)\n2. add(3, "), "Action: Finish(3)"])
    result = await LLMCompiler(llm=llm, tools=[add], max_replans=0).arun("1 + 2?")
    assert result.answer == "3"
    assert [r.error is None for r in result.tasks[:2]] == [True, False]


async def test_the_text_stream_raises_reply_cut_after_the_text_and_the_usage() -> None:
    # issue 10 row 22 (interface 1): the executor sees ReplyCut after every chunk
    llm = ScriptedLLM([TokenLimit("1. add(1, 2)\n2. ad")])
    run = Run([add])
    chunks: list[str] = []

    async def read() -> None:
        async for chunk in run.stream_text(llm, _request("plan")):
            chunks.append(chunk)

    with pytest.raises(ReplyCut) as caught:
        await read()
    assert caught.value.reason == "length"
    assert "".join(chunks) == "1. add(1, 2)\n2. ad"
    assert run.usage.calls == 1


async def test_a_cut_react_step_is_a_model_error_with_the_records() -> None:
    # issue 10 row 22: a cut "Finish(" is not an answer in the baseline either
    llm = ScriptedLLM(["Thought: add.\nAction: add(1, 2)", TokenLimit("Thought: done.\nAction: Finish(The sum")])
    with pytest.raises(ModelError, match=r"ReAct step 2 was cut short") as caught:
        await ReActAgent(llm=llm, tools=[add]).arun("1 + 2?")
    assert _added(caught.value.tasks)


async def test_a_cut_native_turn_is_a_model_error_after_the_calls_it_delivered_ran() -> None:
    # issue 10 row 22; issue 14: calls start as they arrive, so the cut turn's whole call ran
    ran: list[int] = []

    @tool
    def record(n: int) -> int:
        """Record a number."""
        ran.append(n)
        return n

    llm = ScriptedLLM(
        [
            [ToolCall(name="record", args={"n": 1})],
            TokenLimit(calls=[ToolCall(name="record", args={"n": 2})]),
        ]
    )
    with pytest.raises(ModelError, match="tool-calling turn 2 was cut short") as caught:
        await ParallelToolCallAgent(llm=llm, tools=[record]).arun("record")
    assert ran == [1, 2]
    assert [r.result for r in caught.value.tasks] == [1, 2]


# ---------------------------------------------------------------- row 23: a model that raises


def _joiner_raises(exc: BaseException) -> FunctionLLM:
    def reply(messages: Sequence[Message], purpose: Purpose) -> Reply:
        if purpose == "join":
            raise exc
        return PLAN

    return FunctionLLM(reply)


async def test_a_joiner_that_raises_is_a_model_error_with_the_records() -> None:
    # issue 10 row 23
    original = ConnectionError("connection reset by peer")
    agent = LLMCompiler(llm=_joiner_raises(original), tools=[add])
    with pytest.raises(ModelError, match="the join call failed: ConnectionError: connection reset") as caught:
        await agent.arun("1 + 2?")
    assert caught.value.__cause__ is original
    assert _added(caught.value.tasks)


class _BrokenModel:
    """A custom ChatModel: a plan that stops with a ConnectionError once its first task is done."""

    model_name = "custom:broken"

    def __init__(self, task_done: asyncio.Event) -> None:
        self.task_done = task_done

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        yield "1. add(1, 2)\n"
        await self.task_done.wait()
        raise ConnectionError("the planner's connection dropped")


async def test_a_planner_that_raises_mid_plan_is_a_model_error_with_the_records() -> None:
    # issue 10 row 23
    task_done = asyncio.Event()

    @tool(name="add")
    async def signalling_add(x: int, y: int) -> int:
        """Add two integers and say so."""
        task_done.set()
        return x + y

    with pytest.raises(ModelError, match="custom:broken: the plan call failed") as caught:
        await LLMCompiler(llm=_BrokenModel(task_done), tools=[signalling_add]).arun("1 + 2?")
    assert isinstance(caught.value.__cause__, ConnectionError)
    assert _added(caught.value.tasks)


class _SyncRaiser:
    model_name = "custom:sync"

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        raise RuntimeError("no stream for you")


class _OddEvents:
    model_name = "custom:odd"

    async def stream(self, request: ModelRequest) -> AsyncIterator[Any]:
        yield {"text": "a dict is no model event"}


class _Raising:
    """A model whose stream raises ``exc`` before its first event."""

    model_name = "custom:raising"

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        for _ in ():
            yield ""
        raise self.exc


@pytest.mark.parametrize(
    ("model", "match"),
    [
        (_SyncRaiser(), "RuntimeError: no stream for you"),
        (_OddEvents(), "yielded a dict"),
        (_Raising(asyncio.CancelledError()), "CancelledError"),  # the model's own, not the run's
        (_Raising(SystemExit(3)), "SystemExit: 3"),
    ],
)
async def test_anything_a_model_raises_is_a_model_error(model: Any, match: str) -> None:
    # issue 10 row 23
    with pytest.raises(ModelError, match=match):
        await LLMCompiler(llm=model, tools=[add]).arun("q")


async def test_ctrl_c_and_a_real_cancellation_are_not_model_faults() -> None:
    # issue 10 row 23
    assert not _model_fault(KeyboardInterrupt())
    assert _model_fault(ConnectionError())
    assert _model_fault(asyncio.CancelledError())  # this task is not being cancelled: the model raised it


async def test_a_real_cancellation_cancels_the_run_and_the_model_stream() -> None:
    # issue 10 row 23: cancellation is not turned into a ModelError
    entered = asyncio.Event()
    closed: list[bool] = []

    class Waiting:
        model_name = "custom:waiting"

        async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
            try:
                entered.set()
                await asyncio.Event().wait()
                yield ""
            finally:
                closed.append(True)

    run = asyncio.create_task(LLMCompiler(llm=Waiting(), tools=[add]).arun("q"))
    await entered.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert closed == [True]


async def test_model_events_closes_the_stream_when_the_reader_stops_early() -> None:
    closed: list[bool] = []

    class Long:
        model_name = "custom:long"

        async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
            try:
                for _ in range(100):
                    yield "x"
            finally:
                closed.append(True)

    async with contextlib.aclosing(model_events(Long(), _request())) as events:
        async for _ in events:
            break
    assert closed == [True]


# ---------------------------------------------------------------- row 24: many questions


def _numbered_llm(fail: Callable[[int], BaseException | None]) -> FunctionLLM:
    """Question ``n`` adds n + n; its joiner raises ``fail(n)`` when that is an exception."""

    def reply(messages: Sequence[Message], purpose: Purpose) -> Reply:
        n = int(messages[-1].content.split("question ")[1].split()[0].strip(".?"))
        if purpose == "plan":
            return f"1. add({n}, {n})\n2. join()"
        failure = fail(n)
        if failure is not None:
            raise failure
        return f"Action: Finish({2 * n})"

    return FunctionLLM(reply)


async def test_arun_many_with_return_exceptions_keeps_40_answers_and_one_error() -> None:
    # issue 10 row 24
    llm = _numbered_llm(lambda n: ConnectionError("reset") if n == 7 else None)
    agent = LLMCompiler(llm=llm, tools=[add])
    results = await agent.arun_many([f"question {n}." for n in range(41)], concurrency=8, return_exceptions=True)
    assert len(results) == 41
    failure = results[7]
    assert isinstance(failure, ModelError) and isinstance(failure.__cause__, ConnectionError)
    assert _added_n(failure.tasks, 14)
    answers = [r.answer for i, r in enumerate(results) if i != 7 and isinstance(r, RunResult)]
    assert answers == [str(2 * n) for n in range(41) if n != 7]


def _added_n(records: Sequence[Any], total: int) -> bool:
    return any(r.tool == "add" and r.result == total for r in records)


async def test_arun_many_with_return_exceptions_keeps_a_handler_failure_in_its_slot() -> None:
    # issue 10 row 24: a failure that is no RunError (the caller's own) stays in its slot too
    def handler(event: RunEvent) -> None:
        if isinstance(event, JoinerDecided) and event.text == "6":
            raise HandlerBug("my handler broke")

    agent = LLMCompiler(llm=_numbered_llm(lambda n: None), tools=[add])
    results = await agent.arun_many(
        [f"question {n}." for n in range(6)], concurrency=3, on_event=handler, return_exceptions=True
    )
    assert isinstance(results[3], HandlerBug)
    assert [r.answer for r in results if isinstance(r, RunResult)] == ["0", "2", "4", "8", "10"]


async def test_arun_many_raises_the_first_failure_as_itself_and_cancels_the_others() -> None:
    # issue 10 row 24
    started = asyncio.Event()
    cancelled: list[int] = []

    async def reply(messages: Sequence[Message], purpose: Purpose) -> Reply:
        n = int(messages[-1].content.split("question ")[1].split()[0].strip(".?"))
        if n == 0:
            await started.wait()
            raise ConnectionError("reset")
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(n)
            raise
        raise AssertionError("unreachable")

    agent = LLMCompiler(llm=FunctionLLM(reply), tools=[add])
    with pytest.raises(ModelError) as caught:
        await agent.arun_many([f"question {n}." for n in range(3)], concurrency=3)
    assert not isinstance(caught.value, BaseExceptionGroup)
    assert isinstance(caught.value.__cause__, ConnectionError)
    assert sorted(cancelled) == [1, 2]


# ---------------------------------------------------------------- row 25: a failing handler


async def test_a_handler_failing_inside_the_executor_ends_the_run_with_its_own_exception() -> None:
    # issue 10 row 25: TaskFinished is emitted from inside the executor's task group
    def handler(event: RunEvent) -> None:
        if isinstance(event, TaskFinished):
            raise HandlerBug("broken handler")

    agent = LLMCompiler(llm=ScriptedLLM([PLAN, "Action: Finish(3)"]), tools=[add], on_event=handler)
    with pytest.raises(HandlerBug, match="broken handler") as caught:
        await agent.arun("1 + 2?")
    assert not isinstance(caught.value, BaseExceptionGroup)
    assert _added(caught.value.tasks)  # type: ignore[attr-defined]
    assert any("on_event handler" in note for note in caught.value.__notes__)


async def test_a_handler_failing_on_the_last_event_still_ends_the_run() -> None:
    # issue 10 row 25: no answer comes back past a broken handler, and no cancellation leaks out
    def handler(event: RunEvent) -> None:
        if isinstance(event, JoinerDecided):
            raise HandlerBug("late")

    agent = LLMCompiler(llm=ScriptedLLM([PLAN, "Action: Finish(3)"]), tools=[add], on_event=handler)
    with pytest.raises(HandlerBug) as caught:
        await agent.arun("1 + 2?")
    assert _added(caught.value.tasks)  # type: ignore[attr-defined]
    await asyncio.sleep(0)  # the caller's task was never cancelled


async def test_a_failing_handler_stops_the_tools_in_flight() -> None:
    # issue 10 row 25: the run ends at once; a tool still running is cancelled
    cancelled = asyncio.Event()

    @tool
    async def forever(x: int) -> int:
        """Never returns."""
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return x

    def handler(event: RunEvent) -> None:
        if isinstance(event, TaskStarted):
            raise HandlerBug("stop")

    llm = ScriptedLLM(["1. forever(1)\n2. join()", "Action: Finish(1)"])
    with pytest.raises(HandlerBug):
        await LLMCompiler(llm=llm, tools=[forever], on_event=handler).arun("q")
    assert cancelled.is_set()


async def test_astream_raises_the_handlers_own_exception() -> None:
    # issue 10 row 25
    def handler(event: RunEvent) -> None:
        if isinstance(event, RoundStarted):
            raise HandlerBug("first event")

    agent = LLMCompiler(llm=ScriptedLLM([PLAN, "Action: Finish(3)"]), tools=[add], on_event=handler)
    seen: list[object] = []

    async def read() -> None:
        async with contextlib.aclosing(agent.astream("q")) as stream:
            seen.extend([item async for item in stream])

    with pytest.raises(HandlerBug) as caught:
        await read()
    assert seen == []  # the handler failed on the first event: the run ended before any was queued
    assert caught.value.tasks == []  # type: ignore[attr-defined]


def test_unwrap_group_prefers_ctrl_c_then_a_real_failure() -> None:
    # issue 10 row 25
    bug = HandlerBug("x")
    group = BaseExceptionGroup("round", [asyncio.CancelledError(), ExceptionGroup("inner", [bug])])
    assert unwrap_group(group) is bug
    interrupt = KeyboardInterrupt()
    assert unwrap_group(BaseExceptionGroup("round", [bug, interrupt])) is interrupt
    assert unwrap_group(bug) is bug


# ---------------------------------------------------------------- the boundary rule, every entry point

Fault = str  # "model" | "cut" | "handler"


def _compiler_llm(fault: Fault) -> ScriptedLLM:
    return ScriptedLLM([PLAN, _last_reply(fault, "Action: Finish(3)")])


def _react_llm(fault: Fault) -> ScriptedLLM:
    return ScriptedLLM(["Thought: add.\nAction: add(1, 2)", _last_reply(fault, "Action: Finish(3)")])


def _native_llm(fault: Fault) -> ScriptedLLM:
    return ScriptedLLM([[ToolCall(name="add", args={"x": 1, "y": 2})], _last_reply(fault, "3")])


def _last_reply(fault: Fault, answer: str) -> Reply:
    """The reply after the tool call: the fault, or (for a failing handler) the answer."""
    if fault == "model":
        return ConnectionError("reset")
    if fault == "cut":
        return TokenLimit(answer[:-1] + " and")
    return answer


def _failing_handler() -> Callable[[RunEvent], None]:
    """Raises on the first round start or decision after a task finished."""
    finished = False

    def handler(event: RunEvent) -> None:
        nonlocal finished
        if isinstance(event, TaskFinished):
            finished = True
        elif finished and isinstance(event, RoundStarted | JoinerDecided):
            raise HandlerBug("my handler")

    return handler


async def _via_arun(fault: Fault, handler: Any) -> Any:
    return await LLMCompiler(llm=_compiler_llm(fault), tools=[add], on_event=handler).arun("q")


async def _via_astream(fault: Fault, handler: Any) -> Any:
    agent = LLMCompiler(llm=_compiler_llm(fault), tools=[add], on_event=handler)
    async with contextlib.aclosing(agent.astream("q")) as stream:
        return [item async for item in stream]


async def _via_arun_many(fault: Fault, handler: Any) -> Any:
    agent = LLMCompiler(llm=_compiler_llm(fault), tools=[add], on_event=handler)
    return await agent.arun_many(["q"])


async def _via_react(fault: Fault, handler: Any) -> Any:
    return await ReActAgent(llm=_react_llm(fault), tools=[add], on_event=handler).arun("q")


async def _via_native(fault: Fault, handler: Any) -> Any:
    return await ParallelToolCallAgent(llm=_native_llm(fault), tools=[add], on_event=handler).arun("q")


ENTRY_POINTS: dict[str, Callable[[Fault, Any], Awaitable[Any]]] = {
    "arun": _via_arun,
    "astream": _via_astream,
    "arun_many": _via_arun_many,
    "ReActAgent.arun": _via_react,
    "ParallelToolCallAgent.arun": _via_native,
}


@pytest.mark.parametrize("fault", ["model", "cut", "handler"])
@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
async def test_every_entry_point_raises_only_our_errors_or_the_callers_own(entry: str, fault: Fault) -> None:
    # issue 10 rows 22, 23, 25: the boundary rule
    handler = _failing_handler() if fault == "handler" else None
    with pytest.raises(BaseException) as caught:
        await ENTRY_POINTS[entry](fault, handler)
    exc = caught.value
    assert not isinstance(exc, BaseExceptionGroup)
    if fault == "handler":
        assert isinstance(exc, HandlerBug)
    else:
        assert isinstance(exc, ModelError)
        assert ("token limit" in str(exc)) == (fault == "cut")
        if fault == "model":
            assert isinstance(exc.__cause__, ConnectionError)
    assert _added(getattr(exc, "tasks", []))


# ---------------------------------------------------------------- row 21 (model side): no loop kept


def test_sdk_clients_keep_no_event_loop_alive(openai_server: tuple[LoopbackServer, Script]) -> None:
    # issue 10 row 21 (the adapters' part): run() starts a loop per question; a model must not keep them
    server, script = openai_server
    script.reset()
    llm = OpenAIChat("gpt-test", base_url=f"{server.url}/v1", api_key=SECRET, max_retries=0, timeout=10)
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def ask() -> str:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        events = await _events(llm.stream(_request()))
        return "".join(e for e in events if isinstance(e, str))

    for _ in range(3):
        script.add(oa.text_reply("Action: Finish(3)"))
        assert asyncio.run(ask()) == "Action: Finish(3)"
    script.reset()
    gc.collect()
    assert not llm._clients._clients and not llm._clients._keepers and not llm._clients._locks
    assert [ref() for ref in loops] == [None, None, None]


# ---------------------------------------------------------------- row 26 (model side): secrets in our messages

ENV_SECRET = "hunter2-DISTINCTIVE-db-password"


async def test_a_model_failure_quoting_a_secret_is_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    # issue 10 row 26
    monkeypatch.setenv("DB_PASSWORD", ENV_SECRET)
    agent = LLMCompiler(llm=_joiner_raises(ConnectionError(f"login with {ENV_SECRET} refused")), tools=[add])
    with pytest.raises(ModelError) as caught:
        await agent.arun("q")
    assert ENV_SECRET not in str(caught.value) and "[redacted]" in str(caught.value)


async def test_a_cut_reply_quoting_a_key_is_scrubbed_before_it_is_shortened(monkeypatch: pytest.MonkeyPatch) -> None:
    # issue 10 row 26: the secret straddles the 200-character cut of the quoted reply
    monkeypatch.setenv("DB_PASSWORD", ENV_SECRET)
    reply = "Action: Finish(" + "x" * 172 + ENV_SECRET  # the cut at 200 falls 12 characters into it
    agent = LLMCompiler(llm=ScriptedLLM([PLAN, TokenLimit(reply)], chunk_tokens=50), tools=[add])
    with pytest.raises(ModelError) as caught:
        await agent.arun("q")
    assert ENV_SECRET[:12] not in str(caught.value)


async def test_a_joiner_reply_that_cannot_be_read_is_shown_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    # issue 10 row 26
    monkeypatch.setenv("DB_PASSWORD", ENV_SECRET)
    agent = LLMCompiler(llm=ScriptedLLM([PLAN, f"I used {ENV_SECRET}."]), tools=[add], max_replans=0)
    with pytest.raises(RunError) as caught:
        await agent.arun("q")
    assert "cannot read the joiner's reply" in str(caught.value)
    assert ENV_SECRET not in str(caught.value)
    assert _added(caught.value.tasks)


# ---------------------------------------------------------------- the boundary itself


async def test_the_boundary_turns_a_stray_exception_into_a_run_error_with_the_records() -> None:
    # issue 10 (boundary rule): a bug anywhere still leaves as our error, records kept
    bug = ValueError("a library bug")

    async def body() -> None:
        raise ExceptionGroup("round", [bug])

    with pytest.raises(RunError, match="the run failed unexpectedly: ValueError: a library bug") as caught:
        await RunBoundary([]).run(body(), lambda: ["record"])  # type: ignore[list-item]
    assert caught.value.__cause__ is bug
    assert caught.value.tasks == ["record"]  # type: ignore[comparison-overlap]


async def test_the_boundary_passes_our_errors_out_of_a_group_as_themselves() -> None:
    failure = ModelError("m", "down")

    async def body() -> None:
        raise BaseExceptionGroup("round", [asyncio.CancelledError(), failure])

    with pytest.raises(ModelError) as caught:
        await RunBoundary([]).run(body(), list)
    assert caught.value is failure


async def test_a_cancellation_from_inside_is_a_run_error_not_a_cancellation_of_the_caller() -> None:
    async def body() -> None:
        raise asyncio.CancelledError

    with pytest.raises(RunError, match="cancelled from inside"):
        await RunBoundary([]).run(body(), list)
    await asyncio.sleep(0)  # the caller itself was not cancelled
