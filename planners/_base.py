"""What the baseline agents share: the agent interface, the turn-limit error, the limit check,
and a model turn's ``RoundTimings``. Everything else is the engine's public strategy API
(``llmcompiler.strategy``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from llmcompiler import RoundTimings, RunError, RunResult, TaskRecord, UserError
from llmcompiler.strategy import ModelReply

__all__ = ["Agent", "TurnLimitExceeded", "check_limit", "timings"]


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


def check_limit(name: str, value: int) -> None:
    """Refuse a turn limit below 1."""
    if value < 1:
        raise UserError(f"{name} must be at least 1, got {value}")


def timings(turn: ModelReply, records: Sequence[TaskRecord], tasks_end: float) -> RoundTimings:
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
