"""Many questions at once, with a fixed number of workers.

``concurrency`` worker tasks take the next question as they finish one, so the number of
asyncio tasks, threads and live runs stays flat however many questions there are; results
come back in the questions' order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from llmcompiler._errors import RunError, UserError

__all__ = ["run_many"]

T = TypeVar("T")


async def run_many(
    run_one: Callable[[str], Awaitable[T]],
    questions: Sequence[str],
    *,
    concurrency: int,
    return_exceptions: bool = False,
) -> list[T | RunError]:
    """Run ``run_one`` on every question, at most ``concurrency`` at once.

    Args:
        run_one: answers one question.
        questions: the questions.
        concurrency: questions in flight at once.
        return_exceptions: put a question's ``RunError`` in its place in the list instead of
            stopping every other question and raising it.

    Returns:
        One result per question, in order.

    Raises:
        UserError: ``concurrency`` is less than 1.
        RunError: a question failed (unless ``return_exceptions``); the others are cancelled.
    """
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise UserError(f"concurrency must be an integer of at least 1, got {concurrency!r}")
    results: list[T | RunError | None] = [None] * len(questions)
    jobs = iter(enumerate(questions))

    async def worker() -> None:
        for i, question in jobs:  # one shared iterator: each question goes to exactly one worker
            try:
                results[i] = await run_one(question)
            except RunError as exc:
                if not return_exceptions:
                    raise
                results[i] = exc

    try:
        async with asyncio.TaskGroup() as tg:
            for _ in range(min(concurrency, len(questions))):
                tg.create_task(worker())
    except BaseExceptionGroup as group:
        first = group.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None
    return results  # type: ignore[return-value]  # every slot was filled
