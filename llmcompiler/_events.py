"""Events a run reports while it happens, for live views and programs.

A run calls ``on_event(event)`` for each of these, in the order they happen. The plan
parser's own events (``TaskParsed``, ``ThoughtParsed``, ``ParseError``, ``PlanEnded``) are
reported as they are parsed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Literal

from llmcompiler._plan import PlanEvent
from llmcompiler._records import SpeculativeCall, TaskRecord

__all__ = [
    "AnswerChunk",
    "EventHandler",
    "JoinerDecided",
    "PlanChunk",
    "RoundStarted",
    "RunEvent",
    "SpeculationEnded",
    "SpeculationStarted",
    "TaskFinished",
    "TaskStarted",
]


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class RoundStarted:
    """A planner call begins (round 1, or a replan)."""

    round: int
    feedback: str | None
    kind: Literal["round"] = "round"


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PlanChunk:
    """A piece of plan text arrived from the model."""

    text: str
    time: float
    kind: Literal["chunk"] = "chunk"


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class TaskStarted:
    """A tool call starts (after its dependencies finished and its limits let it), again on each
    retry. A task that takes a speculative call's result starts when it is ready (its record's
    ``start`` is the speculative call's); if that call fails, the task starts again, its own call."""

    idx: int
    tool: str
    time: float
    kind: Literal["started"] = "started"


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class TaskFinished:
    """A task finished, failed, or was given up (``record.state`` says which)."""

    record: TaskRecord
    kind: Literal["finished"] = "finished"


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class JoinerDecided:
    """The joiner answered or asked for a new plan."""

    action: Literal["finish", "replan"]
    text: str
    thought: str | None
    kind: Literal["joined"] = "joined"


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class AnswerChunk:
    """A piece of the answer, as the joiner writes its ``Finish(...)``: show it as it comes.

    The pieces of a run that answers, joined, are exactly its answer (``RunResult.answer``,
    and the ``JoinerDecided`` that follows them): the ``Thought``, the ``Action: Finish(``
    label, the closing ``)`` and quotes the answer loses are never sent, and what might still
    turn out not to be answer (trailing spaces or ``)``, an opening quote) is held back until
    it is known. A ``Replan`` is never sent as answer text.

    The answer is whole only when ``JoinerDecided(action="finish")`` arrives. When the
    joiner's reply fails after some pieces were sent (the model raised, its stream broke, it
    was cut at its token limit), no ``JoinerDecided`` follows, the held-back rest is never
    sent, and the run raises its ``ModelError``: a listener drops the pieces it showed.
    """

    text: str
    kind: Literal["answer"] = "answer"


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class SpeculationStarted:
    """A draft plan's call of a speculation-safe tool starts before the planner wrote it
    (``LLMCompiler``'s ``drafter``)."""

    round: int
    draft: int
    tool: str
    line: str
    time: float
    kind: Literal["speculating"] = "speculating"


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class SpeculationEnded:
    """A speculative call ended: a real task took its result (``call.state == "hit"``), or it
    was missed, cancelled or failed. A hit's task is reported by its own ``TaskFinished``."""

    call: SpeculativeCall
    kind: Literal["speculated"] = "speculated"


RunEvent = (
    RoundStarted
    | PlanChunk
    | PlanEvent
    | TaskStarted
    | TaskFinished
    | JoinerDecided
    | AnswerChunk
    | SpeculationStarted
    | SpeculationEnded
)
EventHandler = Callable[[RunEvent], None]
