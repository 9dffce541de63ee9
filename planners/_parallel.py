"""Native parallel tool calling: the provider's own tool-call format, many calls per model turn.

Each model turn may ask for many tool calls (OpenAI ``tool_calls`` with
``parallel_tool_calls``, Anthropic ``tool_use`` blocks). Each call starts the moment the
model's stream delivers it complete (``Run.reply(on_call=...)`` into ``Executor.call_round``),
while the rest of the turn still streams; the calls run concurrently, under LLMCompiler's
limits. Every result goes back in the next request, one per call id (``tool`` messages for
OpenAI, ``tool_result`` blocks in one user message for Anthropic, errors marked
``is_error``). The turns repeat until the model answers in text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from llmcompiler import (
    ChatModel,
    EventHandler,
    JoinerDecided,
    Message,
    ModelRequest,
    RoundStarted,
    RoundTimings,
    RunError,
    RunResult,
    ToolCall,
    ToolLimits,
)
from llmcompiler.strategy import CallRound, Run, Strategy, ToolLike, observation_text
from planners._base import TurnLimitExceeded, check_limit, timings

__all__ = ["DEFAULT_SYSTEM_PROMPT", "ParallelToolCallAgent"]

DEFAULT_SYSTEM_PROMPT = (
    "Answer the question using the tools. When several tool calls do not need each other's results, "
    "make them all in the same turn so they run in parallel. When the tool results answer the question, "
    "reply with the answer in plain text."
)


class ParallelToolCallAgent(Strategy):
    """The native parallel function-calling baseline.

    Each model turn may emit many native tool calls. Each starts the moment the model's stream
    delivers it complete (OpenAI: once the stream moves on to another call and this one's
    arguments are a whole JSON object, else at the turn's finish; Anthropic: at the end of its
    ``tool_use`` block), not when the turn ends, and the calls run concurrently (the same
    executor, limits and ``TaskRecord``s as LLMCompiler). All results go back in one step, one
    per call id, in call order, failures marked as errors. It repeats until the model answers
    in text. Needs a model with native tool calling (``OpenAIChat``, ``AnthropicChat``; the
    scripted test doubles reply with lists of ``ToolCall``).

    A turn that fails after some of its calls started (the model's stream breaks, or the turn
    is cut at the model's token limit) ends the run with that ``ModelError``, after the calls
    already started have run to their end (their limits and timeouts hold): a tool with side
    effects is not stopped halfway, and the error's ``tasks`` say what each did. Nothing more
    of the cut turn runs, and no result goes back to the model. (A call cut mid-arguments is
    garbled: it fails alone and never runs.)

    ``RunResult.rounds`` is the number of model turns; ``thoughts`` holds the text the model
    wrote beside its tool calls; ``round_timings`` has one entry per turn (the turn as the plan
    phase, its calls as the tasks, no joiner; ``first_dispatch`` comes before ``plan_end`` when
    a call started while the turn streamed).

    Args:
        llm: the model.
        tools: ``Tool``s, plain functions or LangChain tools.
        max_turns: model turns before the run fails with ``TurnLimitExceeded``.
        max_concurrency: tool calls running at once across all tools.
        timeout: the run-wide tool timeout, for tools whose limits give none (see ``Strategy``).
        tool_limits: per-tool overrides of the tools' own limits, field by field (see ``Strategy``).
        system_prompt: the system message (``""`` for none).
        on_event: called with each ``RunEvent`` of every run.

    Example:
        >>> from llmcompiler import ToolCall, tool
        >>> from llmcompiler.testing import ScriptedLLM
        >>> @tool
        ... def square(x: int) -> int:
        ...     '''Square a number.'''
        ...     return x * x
        >>> calls = [ToolCall(name="square", args={"x": 3}), ToolCall(name="square", args={"x": 4})]
        >>> llm = ScriptedLLM([calls, "9 and 16"])
        >>> ParallelToolCallAgent(llm=llm, tools=[square]).run("Square 3 and 4.").answer
        '9 and 16'
    """

    def __init__(
        self,
        *,
        llm: ChatModel,
        tools: Iterable[ToolLike],
        max_turns: int = 10,
        max_concurrency: int | None = None,
        timeout: float | None = None,
        tool_limits: Mapping[str, ToolLimits] | None = None,
        system_prompt: str = DEFAULT_SYSTEM_PROMPT,
        on_event: EventHandler | None = None,
    ) -> None:
        check_limit("max_turns", max_turns)
        super().__init__(
            llm=llm,
            tools=tools,
            max_concurrency=max_concurrency,
            timeout=timeout,
            tool_limits=tool_limits,
            on_event=on_event,
        )
        self.max_turns = max_turns
        self.system_prompt = system_prompt

    async def arun(self, question: str, *, on_event: EventHandler | None = None) -> RunResult:
        """Answer ``question``.

        Args:
            question: what to answer.
            on_event: called with each ``RunEvent`` of this run (besides the agent's own handler).

        Raises:
            TurnLimitExceeded: the model still called tools after ``max_turns`` turns.
            RunError: a model call failed, a turn was cut short by the model's token limit (a
                ``ModelError``; the calls it had delivered whole ran to their end first, see
                above), or the model replied with neither text nor calls. ``tasks`` holds the
                records finished before.
            Exception: what an ``on_event`` handler raised, as itself, with the finished
                records in its ``tasks`` attribute (the handler's failure ends the run).
        """
        run = self.new_run(on_event)
        return await run.guard(self._turns(question, run))

    async def _turns(self, question: str, run: Run) -> RunResult:
        messages: list[Message] = []
        if self.system_prompt:
            messages.append(Message(role="system", content=self.system_prompt))
        messages.append(Message(role="user", content=question))
        tools = tuple(t.spec for t in self.tools.values())
        round_timings: list[RoundTimings] = []
        thoughts: list[str] = []
        for turn_no in range(1, self.max_turns + 1):
            run.emit(RoundStarted(round=turn_no, feedback=None))
            request = ModelRequest(messages=tuple(messages), purpose="tools", tools=tools, native_tools=True)
            # Each call starts as it arrives; leaving the block waits for all of them.
            async with run.executor.call_round(round=turn_no) as dispatch:
                calls = _TurnCalls(dispatch, first=max(run.executor.records, default=0) + 1)
                turn = await run.reply(self.llm, request, step=f"tool-calling turn {turn_no}", on_call=calls.start)
            records = dispatch.records
            text = turn.text.strip()
            if not turn.calls:
                round_timings.append(timings(turn, [], turn.end))
                if not text:
                    raise RunError(f"{turn.model} replied with neither text nor tool calls (turn {turn_no})")
                run.emit(JoinerDecided(action="finish", text=text, thought=None))
                return run.result(answer=text, rounds=turn_no, round_timings=round_timings, thoughts=thoughts)
            if text:
                thoughts.append(text)
            round_timings.append(timings(turn, records, run.now()))
            messages.append(Message(role="assistant", content=text, tool_calls=tuple(calls.calls)))
            # One result per call id, in call order: zip(strict) makes a missing one impossible.
            messages.extend(
                Message(
                    role="tool",
                    content=observation_text(record),
                    tool_call_id=call.id,
                    is_error=record.error is not None,
                )
                for call, record in zip(calls.calls, records, strict=True)
            )
        raise TurnLimitExceeded("ParallelToolCallAgent", "max_turns", self.max_turns, tasks=run.records())


class _TurnCalls:
    """One turn's calls as they arrive: numbered from ``first``, each given an id unique in the
    turn, and started at once in the turn's call round."""

    def __init__(self, dispatch: CallRound, *, first: int) -> None:
        self.dispatch = dispatch
        self.first = first
        self.calls: list[ToolCall] = []
        self._ids: set[str] = set()

    def start(self, call: ToolCall) -> None:
        """Number ``call``, give it a unique id (``call_<task number>`` where the provider gave
        none or repeated one), and start it."""
        idx = self.first + len(self.calls)
        call_id = call.id
        if not call_id or call_id in self._ids:
            call_id = f"call_{idx}"
            n = 1
            while call_id in self._ids:  # the provider itself used "call_<idx>"
                n += 1
                call_id = f"call_{idx}_{n}"
            call = dataclasses.replace(call, id=call_id)
        self._ids.add(call_id)
        self.calls.append(call)
        self.dispatch.start(idx, call)
