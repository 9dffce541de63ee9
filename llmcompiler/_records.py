"""What a run leaves behind: one ``TaskRecord`` per task, and the ``RunResult``."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from llmcompiler._types import Usage

__all__ = [
    "RoundTimings",
    "RunResult",
    "SpeculationSummary",
    "SpeculativeCall",
    "SpeculativeHit",
    "SpeculativeState",
    "TaskRecord",
    "TaskState",
]

TaskState = Literal["done", "failed", "skipped"]

SpeculativeState = Literal["hit", "missed", "cancelled", "failed"]
"""How a speculative call ended: adopted by a real task (``hit``); finished but matched by no
real task (``missed``: its result was dropped); stopped while it ran because no real task could
still match it (``cancelled``); or its tool failed (``failed``: a real task that joined it ran
the tool itself)."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class SpeculativeHit:
    """A real task whose result came from a speculative call a draft plan started.

    Attributes:
        draft: the task number the call had in the draft plan.
        started: when the speculative call started (the event loop's clock).
        ready: when the real task was ready to run (its line parsed, its dependencies done).
        saved_s: how much earlier the result was ready than had the task started at ``ready``
            and taken as long: ``ready - started``, at most the call's duration.
        joined: the call was still running and the task waited for it (``False``: it had
            finished and the task took its result at once).
        outcome: always ``"hit"``.
    """

    draft: int
    started: float
    ready: float
    saved_s: float
    joined: bool
    outcome: Literal["hit"] = "hit"


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
        speculative: a ``SpeculativeHit`` when the result came from a call a draft plan had
            started before the planner wrote this task (``start``/``end`` are then that call's);
            ``None`` when the task ran its own call (see ``LLMCompiler``'s ``drafter``).
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
    speculative: SpeculativeHit | None = None

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
class SpeculativeCall:
    """A tool call a draft plan started before the real planner wrote it.

    Attributes:
        round: the round whose draft it came from.
        draft: its task number in the draft plan.
        tool: the tool's name.
        args: its arguments, references to draft tasks resolved.
        line: the draft plan's line.
        start: when it started (the event loop's clock).
        end: when it ended, or was cancelled.
        state: how it ended (``SpeculativeState``).
        adopted_by: the real task that took its result (``hit``), else ``None``.
        error: why it failed, for ``failed``.
    """

    round: int
    draft: int
    tool: str
    args: dict[str, Any]
    line: str
    start: float
    end: float
    state: SpeculativeState
    adopted_by: int | None = None
    error: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class SpeculationSummary:
    """What speculation did in one run (``RunResult.speculation``, with a ``drafter``).

    Attributes:
        drafter: the drafter model's name.
        drafted: tool calls the drafts wrote (``join()`` not counted).
        started: speculative calls started from them.
        hits: real tasks that took a speculative call's result.
        misses: speculative calls no real task took (``started - hits``): wasted calls.
        cancelled: misses stopped while they ran.
        time_saved_s: the sum of the hits' ``saved_s``.
        calls: every speculative call, in the order started.
        usage: the drafter's tokens (not in ``RunResult.usage``, which counts the planner
            and the joiner).
        cost_usd: the drafter's cost at list price; ``None`` when its price is unknown.
        errors: what went wrong with a draft (the drafter raised, or wrote no plan); the run
            went on as without it.
    """

    drafter: str
    drafted: int = 0
    started: int = 0
    hits: int = 0
    misses: int = 0
    cancelled: int = 0
    time_saved_s: float = 0.0
    calls: list[SpeculativeCall] = dataclasses.field(default_factory=list)
    usage: Usage = dataclasses.field(default_factory=Usage)
    cost_usd: float | None = None
    errors: list[str] = dataclasses.field(default_factory=list)


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
        speculation: what speculative execution did, for an ``LLMCompiler`` with a ``drafter``;
            ``None`` without one.
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
    speculation: SpeculationSummary | None = None

    @property
    def total_s(self) -> float:
        """Wall-clock seconds of the whole run."""
        return self.end - self.start

    @property
    def sequential_s(self) -> float:
        """The seconds the same tool calls would have taken one after another."""
        return sum(t.duration or 0.0 for t in self.tasks)
