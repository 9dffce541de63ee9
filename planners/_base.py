"""What the baseline agents share: the agent interface, the turn-limit error, model calls with
usage and cost summed, and observations as a model reads them."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

from llmcompiler._boundary import RunBoundary
from llmcompiler._errors import ModelError, RunError, UserError
from llmcompiler._events import EventHandler, RunEvent
from llmcompiler._executor import Executor
from llmcompiler._prompts import observation
from llmcompiler._records import RoundTimings, RunResult, TaskRecord
from llmcompiler._redact import scrub
from llmcompiler._text import one_line
from llmcompiler._types import ChatModel, ModelRequest, ToolCall, Truncated, Usage
from llmcompiler.models._pricing import cost_usd
from llmcompiler.models._reading import model_events, model_name

T = TypeVar("T")

__all__ = ["Agent", "TurnLimitExceeded", "observation_text"]


@runtime_checkable
class Agent(Protocol):
    """What ``LLMCompiler``, ``ReActAgent`` and ``ParallelToolCallAgent`` have in common."""

    async def arun(self, question: str) -> RunResult:
        """Answer ``question``."""
        ...


class TurnLimitExceeded(RunError):
    """A baseline agent used all its model turns without answering.

    Attributes:
        limit_name: the option that set the limit (``"max_steps"`` or ``"max_turns"``).
        limit: its value.
    """

    def __init__(self, agent: str, limit_name: str, limit: int, *, tasks: Sequence[TaskRecord] = ()) -> None:
        super().__init__(
            f"{agent} gave no answer within {limit_name}={limit} model turns "
            f"({len(tasks)} tool call{'s' if len(tasks) != 1 else ''} made); raise {limit_name} or improve the tools",
            tasks=tasks,
        )
        self.limit_name = limit_name
        self.limit = limit


def observation_text(record: TaskRecord) -> str:
    """A task's outcome as the model reads it: the result as text (cut like the joiner's
    history), or the error message."""
    if record.error is not None:
        return record.error
    return observation(record.result)


def ordered_records(executor: Executor) -> list[TaskRecord]:
    """Every task record of ``executor`` so far, in task order."""
    return [executor.records[i] for i in sorted(executor.records)]


def check_limit(name: str, value: int) -> None:
    """Refuse a turn limit below 1."""
    if value < 1:
        raise UserError(f"{name} must be at least 1, got {value}")


def run_blocking(arun: Callable[[], Coroutine[Any, Any, RunResult]]) -> RunResult:
    """Run ``arun()`` in a new event loop, from sync code.

    Raises:
        UserError: called from inside a running event loop (use ``await agent.arun``).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(arun())
    raise UserError("run() was called inside an event loop: use 'await agent.arun(question)'")


@dataclasses.dataclass(slots=True)
class Turn:
    """One model call: its text, its native tool calls, and when it happened."""

    text: str
    calls: list[ToolCall]
    start: float
    first_chunk: float | None
    end: float


class Meter:
    """Calls models for one run: sums every call's usage and cost, and tells listeners.

    The run goes through a ``RunBoundary`` (``guard``): a failing listener ends it and leaves
    as itself with the finished records; a failing model is a ``ModelError``; nothing leaves
    as an exception group.
    """

    def __init__(self, handlers: Sequence[EventHandler]) -> None:
        self.boundary = RunBoundary(handlers)
        self.usage = Usage()
        self.cost: float | None = 0.0  # None once a call's price is unknown
        self.now = asyncio.get_running_loop().time

    def emit(self, event: RunEvent) -> None:
        """Pass ``event`` to every listener (the first that raises ends the run)."""
        self.boundary.emit(event)

    async def guard(self, body: Coroutine[Any, Any, T], records: Callable[[], Sequence[TaskRecord]]) -> T:
        """Run ``body`` inside the run's boundary (see ``llmcompiler._boundary``)."""
        return await self.boundary.run(body, records)

    async def call(self, llm: ChatModel, request: ModelRequest, *, step: str) -> Turn:
        """Read a whole reply: text, native tool calls and usage.

        Args:
            llm: the model.
            request: the call.
            step: the turn in words, for errors (``"ReAct step 3"``).

        Raises:
            ModelError: the model raised (its exception is the ``__cause__``), or cut the reply
                short at its token limit: a cut step is never taken as complete (a cut
                ``Finish(`` would answer with half a sentence, a cut call run half its arguments).
        """
        name = model_name(llm)
        start = self.now()
        first: float | None = None
        text: list[str] = []
        calls: list[ToolCall] = []
        cut: str | None = None
        async with contextlib.aclosing(model_events(llm, request)) as events:
            async for event in events:
                if isinstance(event, str):
                    if event:
                        first = self.now() if first is None else first
                        text.append(event)
                elif isinstance(event, ToolCall):
                    first = self.now() if first is None else first
                    calls.append(event)
                elif isinstance(event, Usage):
                    self.usage += event
                    cost = cost_usd(name, event)
                    self.cost = None if cost is None or self.cost is None else self.cost + cost
                elif isinstance(event, Truncated):
                    cut = event.reason
        if cut is not None:
            wrote = f"{len(calls)} tool call(s) and text " if calls else ""
            raise ModelError(
                name,
                f"the reply to {step} was cut short by the model's token limit ({cut}) before it ended; "
                f"raise the model's max_tokens. It wrote {wrote}{one_line(scrub(''.join(text)), 200)!r}",
            )
        return Turn(text="".join(text), calls=calls, start=start, first_chunk=first, end=self.now())

    def result(
        self,
        *,
        answer: str,
        tasks: list[TaskRecord],
        turns: int,
        start: float,
        timings: list[RoundTimings],
        plan_errors: list[str],
        thoughts: list[str],
    ) -> RunResult:
        """The run's ``RunResult``; ``rounds`` counts model turns."""
        return RunResult(
            answer=answer,
            tasks=tasks,
            rounds=turns,
            usage=self.usage,
            start=start,
            end=self.now(),
            round_timings=timings,
            plan_errors=plan_errors,
            thoughts=thoughts,
            cost_usd=self.cost,
        )


def timings(turn: Turn, records: Sequence[TaskRecord], tasks_end: float) -> RoundTimings:
    """A model turn and the tool calls it made, as ``RoundTimings``: the turn is the "plan"
    phase; there is no joiner, so ``join_start == join_end == tasks_end``."""
    starts = [r.start for r in records if r.start is not None]
    return RoundTimings(
        plan_start=turn.start,
        plan_first_chunk=turn.first_chunk,
        plan_end=turn.end,
        first_dispatch=min(starts) if starts else None,
        tasks_end=tasks_end,
        join_start=tasks_end,
        join_end=tasks_end,
    )
