"""The edge of one run: what may leave it, and how.

Every public entry point (``LLMCompiler.arun`` and what is built on it, ``astream`` and
``arun_many``, ``execute_plan``, and the baselines' ``arun``) runs its body through a
``RunBoundary``. Out of it come only:

- the run's result;
- our own errors: a ``RunError`` (with the finished task records in ``tasks``) or a ``UserError``;
- the caller's own exception: what an ``on_event`` handler raised, as itself, with the
  finished task records in its ``tasks`` attribute (see below);
- ``KeyboardInterrupt``, ``SystemExit`` and a real cancellation of the caller, as themselves.

Never an exception group (one of its exceptions is raised instead, see ``unwrap_group``) and
never an exception of ours that forgot the records: anything else (a bug) becomes a
``RunError`` carrying the records, with the original as ``__cause__``.

A failing ``on_event`` handler ends the run: its exception is the user's bug and must be
seen, not logged and forgotten. The handler is called from deep inside the executor (a tool's
task, the plan parser); raising there would tear through the executor's task groups. Instead
the boundary keeps the exception, calls no handler again, and cancels the run's body, which
runs in its own task for this purpose; the tool calls in flight are cancelled with it. The
exception then leaves the run as itself, with a note saying so and the records finished by
then in ``exc.tasks`` (set when the exception has no ``tasks`` attribute of its own).

A handler that raises an exception group of its own gets one of its exceptions back, chosen as
``unwrap_group`` chooses (Ctrl-C, then ``SystemExit``, then the first that is not a
cancellation), with a note naming the group and what it held. "Never a group" holds for the
caller's groups too: ``except ValueError`` around a run always works, and ``except*
ValueError`` still does. A handler's ``KeyboardInterrupt`` or ``SystemExit`` ends the run the
same way and then leaves as itself: raised where the handler was called (a tool's task inside
a task group, a worker thread), it would leave the event loop with the run's tool calls still
in flight, and the task groups raise it again while the loop is shut down. (``astream`` and
``arun_many``, whose runs are tasks of their own, raise these two in the caller's task too.) A
``CancelledError``, ``StopIteration``, ``StopAsyncIteration`` or ``GeneratorExit`` from a
handler cannot leave a coroutine and keep its meaning: it is the ``__cause__`` of a ``RunError``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from llmcompiler._errors import LLMCompilerError, RunError, group_leaves, unwrap_group
from llmcompiler._events import EventHandler, RunEvent
from llmcompiler._records import TaskRecord
from llmcompiler._redact import scrub
from llmcompiler._text import describe, one_line, safe_text

__all__ = ["RunBoundary"]

# What a handler raises that cannot leave a coroutine as itself and keep its meaning.
_CANNOT_TRAVEL = (asyncio.CancelledError, StopIteration, StopAsyncIteration, GeneratorExit)

T = TypeVar("T")


class RunBoundary:
    """One run's event handlers, guarded, and the run's body, in its own task.

    Args:
        handlers: called with each ``RunEvent`` of the run, in order.
    """

    def __init__(self, handlers: Sequence[EventHandler]) -> None:
        self.handlers = list(handlers)
        self.failure: BaseException | None = None
        self._body: asyncio.Task[Any] | None = None
        self._loop_thread: int | None = None

    @property
    def listening(self) -> bool:
        """Whether anyone listens (so the executor may skip building events)."""
        return bool(self.handlers)

    def emit(self, event: RunEvent) -> None:
        """Pass ``event`` to every handler; the first that raises ends the run (see the module)."""
        if self.failure is not None:
            return
        for handler in self.handlers:
            try:
                handler(event)
            except BaseException as exc:  # Ctrl-C too: raised from here it would skip the run's clean-up
                self.failure = exc
                self._stop()
                return

    def _stop(self) -> None:
        body = self._body
        if body is None or body.done():
            return
        if threading.get_ident() == self._loop_thread:
            body.cancel()
        else:  # a handler called from a worker thread
            body.get_loop().call_soon_threadsafe(body.cancel)

    async def run(self, body: Coroutine[Any, Any, T], records: Callable[[], Sequence[TaskRecord]]) -> T:
        """Run ``body`` to its end and return its result, or raise what may leave a run.

        Args:
            body: the run.
            records: the task records the run has finished so far, in order.
        """
        caller = asyncio.current_task()
        self._loop_thread = threading.get_ident()
        task: asyncio.Task[T] = asyncio.create_task(body, name="llmcompiler: run")
        self._body = task
        failure: BaseException
        try:
            result = await task
        except GeneratorExit:
            # This coroutine is being closed (its event loop is going away, e.g. after a
            # KeyboardInterrupt): let it close. Tools' and models' own GeneratorExits never get here.
            if not task.done():
                task.cancel()
            raise
        except BaseException as exc:
            failure = self._outcome(exc, caller, records)
        else:
            if self.failure is None:
                return result
            failure = self._handler_failure(records)
        # Raised here, not in the ``except`` block: no group or cancellation rides along as context.
        raise failure

    def _outcome(
        self, exc: BaseException, caller: asyncio.Task[Any] | None, records: Callable[[], Sequence[TaskRecord]]
    ) -> BaseException:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        if isinstance(exc, asyncio.CancelledError) and caller is not None and caller.cancelling() > 0:
            return exc  # the caller was cancelled: the cancellation goes on up
        if self.failure is not None:
            return self._handler_failure(records)
        leaf = unwrap_group(exc)
        if isinstance(leaf, LLMCompilerError | KeyboardInterrupt | SystemExit):
            return leaf
        if isinstance(leaf, asyncio.CancelledError):
            reason = "the run was cancelled from inside (by a tool or a model, not by its caller)"
        else:
            reason = f"the run failed unexpectedly: {one_line(describe(leaf))}"
        error = RunError(reason, tasks=records())
        error.__cause__ = leaf
        return error

    def _handler_failure(self, records: Callable[[], Sequence[TaskRecord]]) -> BaseException:
        raised = self.failure
        assert raised is not None
        # A handler's own exception group leaves as one of its exceptions, like any group.
        exc = unwrap_group(raised)
        within = "" if exc is raised else f" (within the {_group_text(raised)} it raised)"
        tasks = list(records())
        if isinstance(exc, _CANNOT_TRAVEL):
            # A caller cannot tell this CancelledError from a real cancellation, and a coroutine
            # turns StopIteration into a RuntimeError: a RunError says what happened instead.
            error = RunError(
                f"an on_event handler raised {type(exc).__name__}{within}, which ended the run", tasks=tasks
            )
            error.__cause__ = exc
            return error
        kept = "its own .tasks attribute was left alone"
        if not hasattr(exc, "tasks"):
            try:
                exc.tasks = tasks  # type: ignore[attr-defined]
                kept = "they are in this exception's .tasks"
            except (AttributeError, TypeError):  # an exception class that takes no attributes
                kept = "this exception cannot hold them"
        exc.add_note(
            f"llmcompiler: raised by an on_event handler{within}, which ended the run "
            f"with {len(tasks)} task(s) finished; {kept}"
        )
        return exc


def _group_text(group: BaseException) -> str:
    """``ExceptionGroup 'msg' of 3 (ValueError, TypeError, ...)``: a group named without its details."""
    assert isinstance(group, BaseExceptionGroup)
    kinds = [type(leaf).__name__ for leaf in group_leaves(group)]
    shown = ", ".join(kinds[:5]) + (", ..." if len(kinds) > 5 else "")
    message = one_line(scrub(safe_text(group.message)), 80)
    return f"{type(group).__name__} {message!r} of {len(kinds)} ({shown})"
