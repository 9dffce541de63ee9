"""AnswerChunk events: the joiner's answer reaches on_event and astream as it is written."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from llmcompiler import (
    AnswerChunk,
    JoinerDecided,
    LLMCompiler,
    ModelError,
    ModelRequest,
    RunError,
    RunEvent,
    RunResult,
    Usage,
    _agent,
    tool,
)
from llmcompiler.models import ModelEvent
from llmcompiler.testing import ScriptedLLM, StreamCut, TokenLimit


@tool
def square(x: int) -> int:
    """Square a number."""
    return x * x


PLAN = "1. square(3)\n2. join()"


def answer_of(events: list[RunEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, AnswerChunk))


async def test_chunks_join_into_the_answer_and_come_before_the_decision() -> None:
    events: list[RunEvent] = []
    llm = ScriptedLLM([PLAN, 'Thought: easy.\nAction: Finish("Nine" (9), as asked) thanks'])
    result = await LLMCompiler(llm=llm, tools=[square]).arun("3 squared?", on_event=events.append)
    chunks = [e for e in events if isinstance(e, AnswerChunk)]
    assert len(chunks) > 1  # streamed, not sent whole at the end
    assert answer_of(events) == result.answer == '"Nine" (9), as asked'
    decided = next(i for i, e in enumerate(events) if isinstance(e, JoinerDecided))
    assert all(i < decided for i, e in enumerate(events) if isinstance(e, AnswerChunk))


async def test_a_replan_is_never_sent_as_answer() -> None:
    events: list[RunEvent] = []
    llm = ScriptedLLM([PLAN, "Thought: no.\nAction: Replan(Finish(this) is not the answer)", PLAN, "Action: Finish(9)"])
    result = await LLMCompiler(llm=llm, tools=[square]).arun("3 squared?", on_event=events.append)
    assert result.rounds == 2
    assert [e.text for e in events if isinstance(e, AnswerChunk)] == ["9"]


class GatedJoiner:
    """A joiner whose reply waits, half-written, until the test lets it go on."""

    model_name = "gated"

    def __init__(self, tail: ModelEvent | BaseException = ")") -> None:
        self.go_on = asyncio.Event()
        self.tail = tail

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        if request.purpose == "plan":
            yield PLAN
            return
        for piece in ("Thought: ok.\n", "Action: Finish(", "Nine, the square ", "of three"):
            yield piece
        await self.go_on.wait()
        if isinstance(self.tail, BaseException):
            raise self.tail
        yield self.tail
        yield Usage(prompt_tokens=1, completion_tokens=1, calls=1)


async def test_the_answer_arrives_while_the_reply_is_still_written() -> None:
    llm = GatedJoiner()
    seen: list[str] = []

    def listen(event: RunEvent) -> None:
        if isinstance(event, AnswerChunk):
            seen.append(event.text)
            if "".join(seen) == "Nine, the square of three":
                llm.go_on.set()  # the rest of the reply comes only once this much was shown

    result = await LLMCompiler(llm=llm, tools=[square]).arun("3 squared?", on_event=listen)
    assert "".join(seen) == result.answer == "Nine, the square of three"


@pytest.mark.parametrize("tail", [ConnectionError("reset"), TokenLimit("x")])
async def test_a_reply_that_fails_sends_no_whole_answer(tail: object) -> None:
    """Pieces sent before the failure stay pieces: no JoinerDecided follows, nothing held back
    is sent, and the run raises its ModelError."""
    if isinstance(tail, TokenLimit):
        llm: object = ScriptedLLM([PLAN, TokenLimit("Action: Finish(Nine, the square of three ")])
    else:
        gated = GatedJoiner(ConnectionError("reset"))
        gated.go_on.set()
        llm = gated
    events: list[RunEvent] = []
    with pytest.raises(ModelError):
        await LLMCompiler(llm=llm, tools=[square]).arun("3 squared?", on_event=events.append)  # type: ignore[arg-type]
    assert answer_of(events) == "Nine, the square of three"  # the trailing space was held back
    assert not any(isinstance(e, JoinerDecided) for e in events)


async def test_a_cut_stream_sends_what_was_sure() -> None:
    events: list[RunEvent] = []
    llm = ScriptedLLM([PLAN, StreamCut('Action: Finish("Nine')])
    with pytest.raises(ModelError):
        await LLMCompiler(llm=llm, tools=[square]).arun("3 squared?", on_event=events.append)
    assert answer_of(events) == ""  # the opening quote might have been lost: nothing was sure


async def test_astream_yields_the_answer_as_chunks() -> None:
    agent = LLMCompiler(llm=ScriptedLLM([PLAN, "Action: Finish(nine (9))"]), tools=[square])
    items: list[RunEvent | RunResult] = []
    async with contextlib.aclosing(agent.astream("3 squared?")) as stream:
        async for item in stream:
            items.append(item)
    result = items[-1]
    assert isinstance(result, RunResult)
    assert "".join(i.text for i in items if isinstance(i, AnswerChunk)) == result.answer == "nine (9)"


async def test_no_listener_no_chunks_built(monkeypatch: pytest.MonkeyPatch) -> None:
    def unwanted() -> None:
        raise AssertionError("an AnswerStream was built with no one listening")

    monkeypatch.setattr(_agent, "AnswerStream", unwanted)

    def agent() -> LLMCompiler:
        return LLMCompiler(llm=ScriptedLLM([PLAN, "Action: Finish(9)"]), tools=[square])

    assert (await agent().arun("3 squared?")).answer == "9"
    with pytest.raises(RunError) as raised:  # the check has teeth: a listener builds one
        await agent().arun("3 squared?", on_event=lambda _: None)
    assert "no one listening" in str(raised.value.__cause__)
