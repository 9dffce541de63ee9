"""Errors raised by llmcompiler.

The tree::

    LLMCompilerError
    ├── UserError                 misuse: a bad tool, a bad schema, a bad option
    └── RunError                  something went wrong while answering a question
        ├── PlanParseError        a plan line that is not a task, a thought or formatting
        ├── ToolError             a tool call failed (carried as a task's error, raised only on request)
        ├── ModelError            a model call failed (provider, status)
        ├── JoinParseError        the joiner's reply is neither Finish(...) nor Replan(...)
        ├── ReplanLimitExceeded   the joiner asked for another plan when none was left
        └── ScriptExhausted       a test double was called more often than it was scripted

A failed task does not raise: its error is a message on its ``TaskRecord`` and the joiner
sees it. ``RunError`` subclasses raised out of a run carry the task records that were
finished before the failure in ``tasks``, so nothing already computed is lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmcompiler._records import TaskRecord

__all__ = [
    "JoinParseError",
    "LLMCompilerError",
    "ModelError",
    "PlanParseError",
    "ReplanLimitExceeded",
    "RunError",
    "ScriptExhausted",
    "ToolError",
    "UserError",
]


class LLMCompilerError(Exception):
    """Base class of every error this library raises."""


class UserError(LLMCompilerError, ValueError):
    """The library was used in a way it cannot work: a bad tool, schema or option."""


class RunError(LLMCompilerError):
    """A run could not finish. ``tasks`` holds the task records completed before it stopped."""

    def __init__(self, message: str, *, tasks: Sequence[TaskRecord] = ()) -> None:
        super().__init__(message)
        self.tasks: list[TaskRecord] = list(tasks)


class PlanParseError(RunError):
    """A plan line could not be understood.

    Attributes:
        line: the line's text as the model wrote it.
        reason: what is wrong with it.
    """

    def __init__(self, line: str, reason: str) -> None:
        super().__init__(f"cannot parse plan line {line!r}: {reason}")
        self.line = line
        self.reason = reason


class ToolError(RunError):
    """A tool call failed.

    Attributes:
        idx: the task's number in the plan.
        tool: the tool's name.
        arguments: the arguments it was called with.
    """

    def __init__(self, idx: int, tool: str, args: dict[str, Any], reason: str) -> None:
        super().__init__(f"task {idx} {tool}({_short_args(args)}) failed: {reason}")
        self.idx = idx
        self.tool = tool
        self.arguments = args
        self.reason = reason


class ModelError(RunError):
    """A model call failed.

    Attributes:
        provider: which adapter made the call (``"openai"``, ``"scripted"``, ...).
        status: the HTTP status when there was one.
    """

    def __init__(self, provider: str, message: str, *, status: int | None = None) -> None:
        where = f"{provider} (HTTP {status})" if status is not None else provider
        super().__init__(f"{where}: {message}")
        self.provider = provider
        self.status = status


class JoinParseError(RunError):
    """The joiner's reply holds neither ``Action: Finish(...)`` nor ``Action: Replan(...)``."""

    def __init__(self, reply: str, reason: str) -> None:
        shown = reply if len(reply) <= 300 else reply[:300] + "..."
        super().__init__(f"cannot read the joiner's reply ({reason}): {shown!r}")
        self.reply = reply
        self.reason = reason


class ReplanLimitExceeded(RunError):
    """The joiner asked for a new plan after ``max_replans`` replans were used."""

    def __init__(self, max_replans: int, feedback: str, *, tasks: Sequence[TaskRecord] = ()) -> None:
        super().__init__(
            f"the joiner asked for another plan after max_replans={max_replans} were used "
            f"(its feedback: {feedback!r}); raise max_replans or improve the tools",
            tasks=tasks,
        )
        self.max_replans = max_replans
        self.feedback = feedback


class ScriptExhausted(RunError):
    """A scripted model was called more times than it has replies."""


def _short_args(args: dict[str, Any]) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in args.items())
    return text if len(text) <= 120 else text[:117] + "..."


class ReplyCut(Exception):
    """Raised by a text stream whose reply the model cut short (its token limit was reached).

    Not a ``RunError``: it is a signal inside the library. The executor reads a cut plan as
    ended, runs the tasks it parsed, fails the incomplete last line and tells the joiner; the
    agent turns a cut joiner reply into a ``ModelError``.

    Attributes:
        reason: why the reply ended, in the provider's words (``"length"``, ``"max_tokens"``, ...).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"the reply was cut short ({reason})")
        self.reason = reason

