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
finished before the failure in ``tasks``, so nothing already computed is lost. Every
``RunError`` message is scrubbed of secrets (API keys, passwords, bearer tokens) when it is
made, whatever text it quotes.

``ReplyCut`` (a signal inside the library, not a ``RunError``) and ``unwrap_group`` (the one
exception a run raises in place of an exception group) live here too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmcompiler._records import TaskRecord

__all__ = [
    "JoinParseError",
    "LLMCompilerError",
    "ModelError",
    "PlanParseError",
    "ReplanLimitExceeded",
    "ReplyCut",
    "RunError",
    "ScriptExhausted",
    "ToolError",
    "UserError",
    "unwrap_group",
]


class LLMCompilerError(Exception):
    """Base class of every error this library raises."""


class UserError(LLMCompilerError, ValueError):
    """The library was used in a way it cannot work: a bad tool, schema or option."""


class RunError(LLMCompilerError):
    """A run could not finish. ``tasks`` holds the task records completed before it stopped."""

    def __init__(self, message: str, *, tasks: Sequence[TaskRecord] = ()) -> None:
        # Scrubbed here, once for every subclass: a message may quote a model's reply, a stream
        # error or a tool's arguments, and any of them may hold a key from the environment.
        super().__init__(_scrub(message))
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
        shown = _scrub(reply)  # before the cut, which could leave half a secret unrecognised
        shown = shown if len(shown) <= 300 else shown[:300] + "..."
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
    text = _scrub(", ".join(f"{k}={_repr(v)}" for k, v in args.items()))  # before the cut
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


def really_cancelled() -> bool:
    """Whether the running task was asked to stop: a real cancellation, not a ``CancelledError``
    that a tool or a model raised by itself (which fails only that task or call)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def unwrap_group(exc: BaseException) -> BaseException:
    """The one exception to raise in place of ``exc``: ``exc`` itself, or one leaf of an exception group.

    A run never raises a group: of its leaves, a ``KeyboardInterrupt`` wins (Ctrl-C must stop
    the program), then a ``SystemExit``, then the first leaf that is not a
    ``CancelledError`` (the failure, not the cancellations it caused), else the first leaf.
    Raise the result outside the ``except`` block that caught the group, so the group does not
    ride along as its ``__context__``.

    Example:
        >>> unwrap_group(ExceptionGroup("round", [ValueError("bad")]))
        ValueError('bad')
    """
    if not isinstance(exc, BaseExceptionGroup):
        return exc
    leaves = list(_leaves(exc))
    for kind in (KeyboardInterrupt, SystemExit):
        for leaf in leaves:
            if isinstance(leaf, kind):
                return leaf
    for leaf in leaves:
        if not isinstance(leaf, asyncio.CancelledError):
            return leaf
    return leaves[0] if leaves else exc


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


def _scrub(text: str) -> str:
    # Imported here: the models package imports this module.
    from llmcompiler._redact import scrub

    return scrub(text)


def _repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:  # an int too long to print, a broken __repr__
        from llmcompiler._text import safe_text

        return safe_text(value, 60)
