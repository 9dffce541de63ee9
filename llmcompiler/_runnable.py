"""An agent as a LangChain ``Runnable`` (``LLMCompiler.as_runnable``), for LCEL chains and LangGraph nodes.

The input is a question: a string, ``{"question": ...}``, a prompt's value (``prompt |
agent.as_runnable()``: a ``PromptValue``, read as text) or a message (its text: a string
content, or the text blocks of a list).
The output is the answer string, or the whole ``RunResult`` with ``include_result=True``.
``invoke``, ``ainvoke``, ``batch``, ``abatch``, ``stream`` and ``astream`` all work; ``astream``
yields the answer as it is written (the run's ``AnswerChunk`` texts, which join into the answer),
or the ``RunResult`` alone with ``include_result=True``. LangChain's callbacks see each call as
one chain run (``run_name`` from the config, else the agent's class name).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any, Generic, Protocol, TypeVar, cast

from langchain_core.messages import BaseMessage
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable, RunnableConfig

from llmcompiler._errors import UserError
from llmcompiler._events import AnswerChunk, EventHandler, RunEvent
from llmcompiler._records import RunResult
from llmcompiler.models._langchain import _text as message_text
from llmcompiler.strategy import run_sync

__all__ = ["AgentInput", "AgentRunnable", "question_of"]

AgentInput = str | Mapping[str, Any] | PromptValue | BaseMessage
"""What the runnable takes: a question, ``{"question": ...}``, a prompt's value, a message."""

Out = TypeVar("Out")  # str, or RunResult with include_result


class _Agent(Protocol):
    async def arun(self, question: str, *, on_event: EventHandler | None = None) -> RunResult: ...

    def astream(self, question: str) -> AsyncGenerator[RunEvent | RunResult, None]: ...


def question_of(value: object) -> str:
    """The question in a runnable's input.

    Raises:
        UserError: the input is none of the forms the module lists.

    Example:
        >>> question_of({"question": "What is 3 squared?"})
        'What is 3 squared?'
    """
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        question = value.get("question")
        if isinstance(question, str):
            return question
        keys = ", ".join(repr(k) for k in list(value)[:10]) or "none"
        raise UserError(
            f"an LLMCompiler runnable takes a question string or {{'question': str}}; got a mapping "
            f"whose 'question' is {type(question).__name__} (keys: {keys})"
        )
    if isinstance(value, PromptValue):
        return value.to_string()
    if isinstance(value, BaseMessage):
        text = message_text(value.content)
        if text or isinstance(value.content, str):
            return text
        raise UserError(f"an LLMCompiler runnable takes a message with text; this {type(value).__name__} holds none")
    raise UserError(
        f"an LLMCompiler runnable takes a question string or {{'question': str}}, not a {type(value).__name__}"
    )


class AgentRunnable(Runnable[AgentInput, Out], Generic[Out]):
    """An agent as a LangChain ``Runnable`` (see the module). Make it with ``LLMCompiler.as_runnable``.

    Args:
        agent: the agent (``arun`` and ``astream``).
        include_result: output the whole ``RunResult`` instead of the answer string.
    """

    def __init__(self, agent: _Agent, *, include_result: bool = False) -> None:
        self.agent = agent
        self.include_result = include_result
        self.name = type(agent).__name__

    @property
    def InputType(self) -> type[AgentInput]:
        """The input type: a question string (or the other forms the module lists)."""
        return cast("type[AgentInput]", str)

    @property
    def OutputType(self) -> type[Out]:
        """The answer string, or ``RunResult``."""
        return cast("type[Out]", RunResult if self.include_result else str)

    def _output(self, result: RunResult) -> Out:
        return cast("Out", result if self.include_result else result.answer)

    def invoke(self, input: AgentInput, config: RunnableConfig | None = None, **kwargs: Any) -> Out:
        """Answer the question from sync code (a new event loop per call).

        Raises:
            UserError: the input is no question, or this is called inside a running event loop
                (``await ainvoke`` there).
            RunError: the run failed, as ``arun`` does.
        """
        return self._call_with_config(self._invoke, input, config)

    def _invoke(self, input: AgentInput) -> Out:
        question = question_of(input)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self._output(run_sync(self.agent.arun(question)))
        raise UserError("invoke() was called inside an event loop: use 'await runnable.ainvoke(...)'")

    async def ainvoke(self, input: AgentInput, config: RunnableConfig | None = None, **kwargs: Any) -> Out:
        """Answer the question.

        Raises:
            UserError: the input is no question.
            RunError: the run failed, as ``arun`` does.
        """
        return await self._acall_with_config(self._ainvoke, input, config)

    async def _ainvoke(self, input: AgentInput) -> Out:
        return self._output(await self.agent.arun(question_of(input)))

    async def astream(
        self, input: AgentInput, config: RunnableConfig | None = None, **kwargs: Any | None
    ) -> AsyncIterator[Out]:
        """The answer as it is written: each ``AnswerChunk``'s text (they join into the answer);
        with ``include_result``, the ``RunResult`` once the run ends.

        Stopping early cancels the run and its tool calls (as ``LLMCompiler.astream``).

        Raises:
            UserError: the input is no question.
            RunError: the run failed, after the chunks that came before it.
        """

        async def one() -> AsyncIterator[AgentInput]:
            yield input

        stream = cast("AsyncGenerator[Out, None]", self._atransform_stream_with_config(one(), self._pieces, config))
        async with contextlib.aclosing(stream) as pieces:
            async for piece in pieces:
                yield piece

    async def _pieces(self, inputs: AsyncIterator[AgentInput]) -> AsyncIterator[Out]:
        async for input in inputs:
            question = question_of(input)
            async with contextlib.aclosing(self.agent.astream(question)) as items:
                async for item in items:
                    if isinstance(item, RunResult):
                        if self.include_result:
                            yield cast("Out", item)
                    elif isinstance(item, AnswerChunk) and not self.include_result:
                        yield cast("Out", item.text)
