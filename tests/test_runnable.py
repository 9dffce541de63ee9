"""LLMCompiler.as_runnable(): a langchain-core Runnable in LCEL chains."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate, PromptTemplate
from langchain_core.runnables import Runnable, RunnableLambda

from llmcompiler import LLMCompiler, Message, ModelError, RunResult, UserError, tool
from llmcompiler.testing import FunctionLLM

ANSWER = "Nine (the square of 3)"


@tool
def square(x: int) -> int:
    """Square a number."""
    return x * x


def reply(messages: Sequence[Message], purpose: str) -> str:
    if purpose == "plan":
        return "1. square(3)\n2. join()"
    question = messages[-1].content
    if "fail" in question:
        raise ConnectionError("the joiner is down")
    return f"Thought: done.\nAction: Finish({ANSWER})"


def agent() -> LLMCompiler:
    return LLMCompiler(llm=FunctionLLM(reply), tools=[square])


def test_invoke_takes_a_string_or_a_question_mapping() -> None:
    runnable = agent().as_runnable()
    assert isinstance(runnable, Runnable)
    assert runnable.invoke("What is 3 squared?") == ANSWER
    assert runnable.invoke({"question": "What is 3 squared?"}) == ANSWER
    assert runnable.invoke(HumanMessage("What is 3 squared?")) == ANSWER


def test_a_message_with_content_blocks_gives_its_text() -> None:
    blocks = [{"type": "text", "text": "What is "}, {"type": "image_url", "image_url": {"url": "x"}}, "3 squared?"]
    assert agent().as_runnable().invoke(HumanMessage(content=blocks)) == ANSWER  # type: ignore[arg-type]
    with pytest.raises(UserError, match="a message with text; this HumanMessage holds none"):
        agent().as_runnable().invoke(HumanMessage(content=[{"type": "image_url", "image_url": {"url": "x"}}]))


def test_include_result_gives_the_run_result() -> None:
    result = agent().as_runnable(include_result=True).invoke("What is 3 squared?")
    assert isinstance(result, RunResult)
    assert result.answer == ANSWER and result.tasks[0].result == 9


@pytest.mark.parametrize("bad", [42, {"q": "x"}, {"question": 3}, ["What?"]])
def test_anything_else_is_a_clear_error(bad: object) -> None:
    with pytest.raises(UserError, match="question string or"):
        agent().as_runnable().invoke(bad)  # type: ignore[arg-type]


async def test_ainvoke_and_abatch() -> None:
    runnable = agent().as_runnable()
    assert await runnable.ainvoke("What is 3 squared?") == ANSWER
    assert await runnable.abatch(["a", {"question": "b"}]) == [ANSWER, ANSWER]


async def test_invoke_inside_an_event_loop_says_to_await() -> None:
    with pytest.raises(UserError, match="ainvoke"):
        agent().as_runnable().invoke("What is 3 squared?")


def test_batch() -> None:
    assert agent().as_runnable().batch(["a", "b", {"question": "c"}]) == [ANSWER] * 3


def test_batch_with_return_exceptions_keeps_a_failure_in_its_place() -> None:
    out: list[object] = list(agent().as_runnable().batch(["a", "please fail", "c"], return_exceptions=True))
    assert out[0] == ANSWER and out[2] == ANSWER
    assert isinstance(out[1], ModelError)


async def test_astream_yields_the_answer_as_it_is_written() -> None:
    chunks = [chunk async for chunk in agent().as_runnable().astream("What is 3 squared?")]
    assert len(chunks) > 1
    assert "".join(chunks) == ANSWER


async def test_astream_with_include_result_yields_the_result() -> None:
    chunks = [chunk async for chunk in agent().as_runnable(include_result=True).astream("q")]
    assert len(chunks) == 1 and isinstance(chunks[0], RunResult) and chunks[0].answer == ANSWER


async def test_astream_raises_the_runs_error() -> None:
    with pytest.raises(ModelError):
        async for _ in agent().as_runnable().astream("please fail"):
            pass


async def test_stopping_astream_early_cancels_the_run() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    @tool
    async def slow(x: int) -> int:
        """Take long."""
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return x

    llm = FunctionLLM(lambda m, p: "1. slow(1)\n2. join()" if p == "plan" else "Action: Finish(x)")
    runnable = LLMCompiler(llm=llm, tools=[slow]).as_runnable()
    stream = runnable.astream("q")
    task = asyncio.ensure_future(anext(stream))
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await asyncio.wait_for(cancelled.wait(), 5)


def test_in_an_lcel_chain_with_lambdas_before_and_after() -> None:
    def ask(n: int) -> dict[str, str]:
        return {"question": f"What is {n} squared?"}

    def shout(answer: str) -> str:
        return answer.upper()

    chain: Runnable[int, str] = RunnableLambda(ask) | agent().as_runnable() | RunnableLambda(shout)
    assert chain.invoke(3) == ANSWER.upper()
    assert chain.batch([1, 2]) == [ANSWER.upper()] * 2


async def test_in_an_lcel_chain_streaming() -> None:
    def ask(n: int) -> str:
        return f"What is {n} squared?"

    chain: Runnable[int, str] = RunnableLambda(ask) | agent().as_runnable() | StrOutputParser()
    chunks = [chunk async for chunk in chain.astream(3)]
    assert "".join(chunks) == ANSWER
    assert await chain.ainvoke(3) == ANSWER


def test_after_a_prompt_template() -> None:
    prompt = PromptTemplate.from_template("What is {n} squared?")
    assert (prompt | agent().as_runnable() | StrOutputParser()).invoke({"n": 3}) == ANSWER
    chat = ChatPromptTemplate.from_messages([("human", "What is {n} squared?")])
    assert (chat | agent().as_runnable()).invoke({"n": 3}) == ANSWER


def test_the_question_reaches_the_agent() -> None:
    llm = FunctionLLM(reply)
    runnable = LLMCompiler(llm=llm, tools=[square]).as_runnable()
    (PromptTemplate.from_template("What is {n} squared?") | runnable).invoke({"n": 7})
    assert llm.requests[0].question == "What is 7 squared?"
