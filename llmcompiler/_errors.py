"""Errors raised by llmcompiler: the tree, as the code raises it.

The tree::

    LLMCompilerError
    ├── UserError                 misuse: a bad tool, a bad schema, a bad option (also a ValueError)
    ├── ArgumentError             a call's arguments do not fit its tool (also a ValueError)
    └── RunError                  a run could not finish; ``tasks`` holds what it finished
        ├── ModelError            a model call failed (provider, status)
        ├── JoinParseError        the joiner's reply is neither Finish(...) nor Replan(...)
        └── ReplanLimitExceeded   the joiner asked for another plan when none was left

``planners.TurnLimitExceeded`` (a baseline used all its model turns) is a ``RunError`` too.

A failed task does not raise: its error is a message on its ``TaskRecord`` and the joiner
sees it. ``ArgumentError`` is how a model's bad call fails (``Tool.validate`` raises it; the
executor catches it and fails only that task), so it never ends a run. ``RunError``
subclasses raised out of a run carry the task records that were finished before the failure
in ``tasks``, so nothing already computed is lost. Every ``RunError`` message is scrubbed of
secrets (API keys, passwords, bearer tokens) when it is made, whatever text it quotes.

A scripted test model called more often than it has replies raises
``llmcompiler.testing.ScriptExhausted`` (an ``AssertionError``, not one of ours): inside a run
it arrives, like anything a model raises, as a ``ModelError`` whose ``__cause__`` it is.

``ReplyCut`` (a signal inside the library, not a ``RunError``) and ``unwrap_group`` (the one
exception a run raises in place of an exception group) live here too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from llmcompiler._redact import scrub

if TYPE_CHECKING:
    from llmcompiler._records import TaskRecord

__all__ = [
    "ArgumentError",
    "JoinParseError",
    "LLMCompilerError",
    "ModelError",
    "ReplanLimitExceeded",
    "ReplyCut",
    "RunError",
    "UserError",
    "group_leaves",
    "unwrap_group",
]


class LLMCompilerError(Exception):
    """Base class of every error this library raises."""


class UserError(LLMCompilerError, ValueError):
    """The library was used in a way it cannot work: a bad tool, schema or option."""


class ArgumentError(LLMCompilerError, ValueError):
    """Arguments that do not fit a tool's schema: the model's bad call. The message names the argument.

    Raised by ``Tool.validate``; in a run it fails only its own task (the task's error says why).
    """


class RunError(LLMCompilerError):
    """A run could not finish. ``tasks`` holds the task records completed before it stopped."""

    def __init__(self, message: str, *, tasks: Sequence[TaskRecord] = ()) -> None:
        # Scrubbed here, once for every subclass: a message may quote a model's reply, a stream
        # error or a tool's arguments, and any of them may hold a key from the environment.
        super().__init__(scrub(message))
        self.tasks: list[TaskRecord] = list(tasks)


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
        shown = scrub(reply)  # before the cut, which could leave half a secret unrecognised
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
    leaves = list(group_leaves(exc))
    for kind in (KeyboardInterrupt, SystemExit):
        for leaf in leaves:
            if isinstance(leaf, kind):
                return leaf
    for leaf in leaves:
        if not isinstance(leaf, asyncio.CancelledError):
            return leaf
    return leaves[0] if leaves else exc


def group_leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    """The exceptions of ``group`` that are not groups themselves, depth first."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from group_leaves(exc)
        else:
            yield exc
