"""What a run leaves behind: one ``TaskRecord`` per task, and the ``RunResult``."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from llmcompiler._types import Usage

__all__ = ["RoundTimings", "RunResult", "TaskRecord", "TaskState"]

TaskState = Literal["done", "failed", "skipped"]


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class TaskRecord:
    """One task of a plan, after it finished or was given up.

    Attributes:
        idx: the task's number in the plan.
        tool: the tool's name; ``"join"`` for ``join()``.
        args: the arguments as passed to the tool, references resolved. For a task that never
            ran they are as parsed, references shown as ``$N``.
        deps: the numbers of the tasks it depends on.
        thought: the ``Thought:`` written before it, if any.
        result: what the tool returned (``None`` on failure).
        error: ``None`` on success, else a message naming what went wrong.
        start: ``time.monotonic()`` when the tool was first called; ``None`` if it never ran.
        end: ``time.monotonic()`` when it finished; ``None`` if it never ran.
        line: the plan line it came from.
        round: which plan it belongs to (1 for the first, 2 after one replan, ...).
        attempts: how many times the tool was called (more than one after retries); ``0`` when
            the result came from an equal call of a ``pure`` tool.
        cached: the result (or error) is that of an equal earlier or concurrent call of a
            ``pure`` tool in the same run: the tool was not called for this task.
        batch_size: how many calls were fused into the invocation that served this task
            (``0``: the tool has no batch implementation; ``1``: it ran alone).
        fused_with: the other tasks of this run served by that same invocation.
        after: the tasks of its round it was ordered after without using their results (its
            control dependencies, ``sequential`` tools' barriers): a sequential task comes after
            every earlier task of its round back to the previous sequential one, and any other
            task after the last sequential task before it. Its ``deps`` are left out; a task
            starts when these have finished, whether they succeeded or not.
        exclusive: the exclusive group the call held while it ran (``ToolLimits.exclusive``);
            ``None`` when it had none or never ran.
    """

    idx: int
    tool: str
    args: dict[str, Any]
    deps: frozenset[int]
    thought: str | None
    result: Any = None
    error: str | None = None
    start: float | None = None
    end: float | None = None
    line: str = ""
    round: int = 1
    attempts: int = 0
    cached: bool = False
    batch_size: int = 0
    fused_with: tuple[int, ...] = ()
    after: frozenset[int] = frozenset()
    exclusive: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the task succeeded."""
        return self.error is None

    @property
    def state(self) -> TaskState:
        """``done``, ``failed`` (it ran, or was called, and failed) or ``skipped`` (never ran)."""
        if self.error is None:
            return "done"
        return "failed" if self.start is not None else "skipped"

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, if it ran."""
        if self.start is None or self.end is None:
            return None
        return self.end - self.start


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class RoundTimings:
    """When each phase of one plan-execute-join round happened.

    Times are the event loop's clock: ``time.monotonic()`` seconds on standard loops.

    Attributes:
        plan_start: the planner was called.
        plan_first_chunk: its first text arrived (``None`` if none did).
        plan_end: the plan ended (join, end marker, or end of stream).
        first_dispatch: the first tool started (``None`` if none ran).
        tasks_end: the last task of the round finished.
        join_start: the joiner was called.
        join_end: its reply was complete.
    """

    plan_start: float
    plan_first_chunk: float | None
    plan_end: float
    first_dispatch: float | None
    tasks_end: float
    join_start: float
    join_end: float


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class RunResult:
    """The outcome of one question.

    Attributes:
        answer: the final answer.
        tasks: every task of every round, in plan order.
        rounds: how many plans were made (1 + replans); for the ``planners`` baselines, how many model turns.
        usage: tokens summed over every model call of the run.
        start: ``time.monotonic()`` when the run began.
        end: ``time.monotonic()`` when the answer was ready.
        round_timings: the phases of each round.
        plan_errors: plan lines that were neither tasks nor thoughts (with the reason).
        thoughts: the joiner's thought for each round; for ``ReActAgent`` each step's thought, for
            ``ParallelToolCallAgent`` the text written beside tool calls.
        cost_usd: the model calls' cost at list price, or ``None`` when a model's price is
            unknown (local models, OpenAI-compatible servers, test doubles).
    """

    answer: str
    tasks: list[TaskRecord]
    rounds: int
    usage: Usage
    start: float
    end: float
    round_timings: list[RoundTimings] = dataclasses.field(default_factory=list)
    plan_errors: list[str] = dataclasses.field(default_factory=list)
    thoughts: list[str] = dataclasses.field(default_factory=list)
    cost_usd: float | None = None

    @property
    def total_s(self) -> float:
        """Wall-clock seconds of the whole run."""
        return self.end - self.start

    @property
    def sequential_s(self) -> float:
        """The seconds the same tool calls would have taken one after another."""
        return sum(t.duration or 0.0 for t in self.tasks)
