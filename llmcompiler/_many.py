"""Many questions at once, with a fixed number of workers.

``concurrency`` worker tasks take the next question as they finish one, so the number of
asyncio tasks, threads and live runs stays flat however many questions there are; results
come back in the questions' order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from llmcompiler._errors import RunError, UserError, group_leaves, really_cancelled, unwrap_group

__all__ = ["run_many"]

T = TypeVar("T")


class _Stop(Exception):
    """A question's ``KeyboardInterrupt`` or ``SystemExit``, carried out of its worker.

    Raised in a worker task as itself, it would leave the event loop at once, with the other
    questions' runs still in flight (and the task group raise it again while the loop shuts
    down). Carried as an ordinary exception, it makes the task group cancel the other questions
    and wait for them; then it is raised as itself in the caller's task.
    """

    def __init__(self, exc: BaseException) -> None:
        super().__init__(repr(exc))
        self.exc = exc


async def run_many(
    run_one: Callable[[str], Awaitable[T]],
    questions: Sequence[str],
    *,
    concurrency: int,
    return_exceptions: bool = False,
) -> list[T | Exception]:
    """Run ``run_one`` on every question, at most ``concurrency`` at once.

    Args:
        run_one: answers one question.
        questions: the questions.
        concurrency: questions in flight at once.
        return_exceptions: put the exception a question raised in its place in the list and go
            on with the others, instead of stopping every other question and raising it.

    Returns:
        One result (or, with ``return_exceptions``, exception) per question, in order.

    Raises:
        UserError: ``concurrency`` is less than 1.
        Exception: the first exception a question raised (unless ``return_exceptions``), as
            itself, never in a group; the other questions are cancelled. ``KeyboardInterrupt``,
            ``SystemExit`` and a cancellation of the caller pass as themselves either way (a
            question's ``KeyboardInterrupt`` or ``SystemExit`` once the other questions are
            cancelled, in the caller's task).
    """
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise UserError(f"concurrency must be an integer of at least 1, got {concurrency!r}")
    results: list[T | Exception | None] = [None] * len(questions)
    jobs = iter(enumerate(questions))

    async def worker() -> None:
        for i, question in jobs:  # one shared iterator: each question goes to exactly one worker
            try:
                results[i] = await run_one(question)
            except asyncio.CancelledError as exc:
                if really_cancelled():
                    raise  # the batch is being cancelled
                # A run that ended in a CancelledError nobody asked for: that question failed.
                error = RunError(f"question {i} ended in a CancelledError its caller did not ask for")
                if not return_exceptions:
                    raise error from exc
                error.__cause__ = exc
                results[i] = error
            except (KeyboardInterrupt, SystemExit) as exc:
                raise _Stop(exc) from None
            except Exception as exc:
                if not return_exceptions:
                    raise
                failure = unwrap_group(exc)
                results[i] = failure if isinstance(failure, Exception) else exc

    failure: BaseException | None = None
    try:
        async with asyncio.TaskGroup() as tg:
            for _ in range(min(concurrency, len(questions))):
                tg.create_task(worker())
    except BaseExceptionGroup as group:
        stops = [leaf.exc for leaf in group_leaves(group) if isinstance(leaf, _Stop)]
        failure = unwrap_group(BaseExceptionGroup("stopped", stops) if stops else group)
    if failure is not None:
        # Raised outside the ``except`` block: the group must not ride along as its context.
        raise failure
    return results  # type: ignore[return-value]  # every slot was filled
