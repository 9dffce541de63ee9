"""Selective fusion: calls to a tool with a batch implementation, made ready within a short
window of each other, become one batched call (after LLM-Tool Compiler, arXiv 2405.17438).

The first call to arrive opens a window of ``ToolLimits.batch_window`` seconds (measured on the
event loop's clock); every call of the same tool that arrives before it closes, up to
``max_batch``, joins it. Then the batch goes through the tool's gates once (one rate-limit
token, one hold of its exclusive group, one concurrency slot) and its batch implementation is
called with the list of argument dicts; result ``i`` goes back to call ``i``. A window holding
a single call calls the tool's own function instead. The calls fused into a batch run together,
as its batch implementation decides, even in an exclusive group: the batch is one invocation.

A failed batched call fails every call in it (each may retry on its own, possibly in a new
batch); an ``Exception`` instance in the result list fails only its call. A caller that is
cancelled (its run stopped, or its timeout ran out) leaves the batch; a batch whose callers
all left is cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, NamedTuple

from llmcompiler._errors import really_cancelled
from llmcompiler._limits import ToolLimits
from llmcompiler._threads import Job, ThreadPool
from llmcompiler._tools import Tool

__all__ = ["BatchFailed", "Batcher", "Fused"]


class Fused(NamedTuple):
    """What one call got from a batch."""

    started: float
    result: Any
    fused_with: tuple[int, ...]
    batch_size: int


class BatchFailed(Exception):
    """A call's share of a batch failed.

    Attributes:
        started: when the batch started.
        message: what went wrong, when no exception says it (a short result list).
        cause: what the tool (or its batch implementation) raised, or returned for this call.
    """

    def __init__(self, started: float, message: str, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.started = started
        self.message = message
        self.cause = cause


class _Item:
    __slots__ = ("batch", "future", "idx", "jobs", "kwargs", "on_start", "owner", "started")

    def __init__(
        self,
        owner: object,
        idx: int,
        kwargs: dict[str, Any],
        future: asyncio.Future[Fused],
        on_start: Callable[[float], None],
        jobs: list[Job] | None,
    ) -> None:
        self.owner = owner
        self.idx = idx
        self.kwargs = kwargs
        self.future = future
        self.on_start = on_start
        self.jobs = jobs
        self.started: float | None = None
        self.batch: tuple[asyncio.Task[None], list[_Item]] | None = None


class _SharedJobs(list[Job]):
    """The thread of a batch's invocation, handed to every call in the batch as it starts: a call
    that gives up on the batch (its timeout) and retries waits for that thread to end first, and
    the gates hold the tool's exclusive group until it ends."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[_Item] = []

    def append(self, job: Job) -> None:
        super().append(job)
        for item in self.items:
            if item.jobs is not None:
                item.jobs.append(job)


class Batcher:
    """Collects the ready calls of one tool into batches, on one event loop.

    Args:
        tool: the tool; it has a batch implementation.
        limits: its limits (``batch_window``, ``max_batch``).
        slot: enters the tool's gates (rate, exclusive group, concurrency) for one invocation,
            whose threads go to the list it is given.
        threads: the thread pool a sync implementation runs in.
    """

    def __init__(
        self,
        tool: Tool,
        limits: ToolLimits,
        slot: Callable[[list[Job]], AbstractAsyncContextManager[None]],
        *,
        threads: ThreadPool | None = None,
    ) -> None:
        self.tool = tool
        self._threads = threads
        self.window = limits.batch_window
        self.max_batch = limits.max_batch
        self._slot = slot
        self._loop = asyncio.get_running_loop()
        self._pending: list[_Item] = []
        self._timer: asyncio.Handle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(
        self,
        owner: object,
        idx: int,
        kwargs: dict[str, Any],
        on_start: Callable[[float], None],
        jobs: list[Job] | None = None,
    ) -> Fused:
        """Add one call to the open batch and wait for its result.

        Args:
            owner: who made the call (a run); ``fused_with`` lists only the owner's own tasks.
            idx: the task's number.
            kwargs: validated arguments.
            on_start: called with the start time when the batch holding the call starts.
            jobs: if given, the thread running the batch is appended to it when it starts.

        Raises:
            BatchFailed: the batch, or this call's part of it, failed.
        """
        future: asyncio.Future[Fused] = self._loop.create_future()
        item = _Item(owner, idx, kwargs, future, on_start, jobs)
        self._pending.append(item)
        if self.max_batch is not None and len(self._pending) >= self.max_batch:
            self._flush()
        elif self._timer is None:
            self._timer = (
                self._loop.call_later(self.window, self._flush)
                if self.window > 0
                else self._loop.call_soon(self._flush)
            )
        try:
            return await future
        except asyncio.CancelledError:
            batch = item.batch
            if batch is not None and all(other.future.done() for other in batch[1]):
                batch[0].cancel()  # every caller left: stop the call
            raise

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        items = [item for item in self._pending if not item.future.done()]
        self._pending = []
        if not items:
            return
        task = self._loop.create_task(self._run(items))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        for item in items:
            item.batch = (task, items)

    async def _run(self, items: list[_Item]) -> None:
        started: float | None = None
        jobs = _SharedJobs()
        try:
            async with self._slot(jobs):
                live = [item for item in items if not item.future.done()]  # callers gone while gated
                if not live:
                    return
                jobs.items = live
                started = self._loop.time()
                for item in live:
                    item.started = started
                    item.on_start(started)
                try:
                    if len(live) == 1:
                        results = [await self.tool.call(live[0].kwargs, threads=self._threads, jobs=jobs, isolate=True)]
                    else:
                        results = await self.tool.call_batch(
                            [item.kwargs for item in live], threads=self._threads, jobs=jobs, isolate=True
                        )
                except asyncio.CancelledError:
                    if really_cancelled():
                        raise
                    self._fail(live, started, "", asyncio.CancelledError())
                    return
                except KeyboardInterrupt:
                    raise
                except BaseException as exc:  # SystemExit and the like fail the batch, not the process
                    self._fail(live, started, "", exc)
                    return
            if len(results) != len(live):
                self._fail(
                    live,
                    started,
                    f"the batch implementation of {self.tool.name} returned {len(results)} results "
                    f"for {len(live)} calls",
                    None,
                )
                return
            size = len(live)
            for item, result in zip(live, results, strict=True):
                if item.future.done():
                    continue
                if isinstance(result, BaseException):
                    item.future.set_exception(BatchFailed(started, "", result))
                else:
                    mates = tuple(o.idx for o in live if o.owner is item.owner and o is not item)
                    item.future.set_result(Fused(started, result, mates, size))
        except asyncio.CancelledError:
            for item in items:
                if not item.future.done():
                    item.future.cancel()
            raise
        except Exception as exc:  # a gate failed: no caller may be left waiting
            self._fail(items, started if started is not None else self._loop.time(), "", exc)

    @staticmethod
    def _fail(items: list[_Item], started: float, message: str, cause: BaseException | None) -> None:
        for item in items:
            if not item.future.done():
                item.future.set_exception(BatchFailed(item.started or started, message, cause))
