"""The call layer: one task's calls of its tool, under the gates, with retries, and its record.

A task is called in one place: on the event loop (async tools), in the executor's own thread
pool (sync tools), in the process pool (``compute_bound`` tools) or inside a fused batch (tools
with a batch implementation). Each attempt passes the gates in one order: a rate-limit token
first (so a throttled tool waits without holding a slot others could use), then its exclusive
group, then the run-wide concurrency slot, then the tool's own slot; then the call, under the
tool's timeout.

Exclusive groups (``ToolLimits.exclusive``): a group is one slot shared by its tools, per agent
(the gates every run of an agent shares), so their calls never overlap, within a run or across
runs. Why this order cannot deadlock or waste slots: a call waiting for its group holds no
run-wide or tool slot (others keep using them), slots are always taken in the same order, and a
call holds one group at most; nothing that holds a run-wide or tool slot ever waits for a group.
A batched tool in a group passes the gates once per batch: the batch is one invocation, holding
the group once, and the calls fused into it wait for it holding nothing.

A group is held until its call has really ended. Python cannot stop a thread: a sync call that
timed out (or whose run was cancelled) still runs, and its group stays held until it returns.
If it has not returned one more of its timeout later, the group is stuck: the calls that get it
then fail at once (``... could not start: exclusive group 'db' is held by ...``) until the
thread returns. So a hung thread fails its group's calls, instead of hanging their runs or
letting them overlap it.

What a tool does fails at most its own task, with a message naming the tool:
- any ``Exception``; ``BaseException``s that are not the caller's to see (``SystemExit`` from
  argparse or ``sys.exit`` in a helper, ``GeneratorExit``, ``StopIteration`` from a sync tool,
  an ``asyncio.CancelledError`` the tool raised itself). Only ``KeyboardInterrupt`` and a real
  cancellation of the run propagate.
- a ``TimeoutError`` the tool raises is its own failure, told apart from the executor's timeout.
- a retry never overlaps a still-running attempt of the same task: after a timed-out attempt
  whose thread is still running, the retry waits (up to the tool's timeout) for it to end.

Every argument a tool receives is its own copy (``Tool.call(..., isolate=True)``: a deep copy of
mutable values, made in the tool's thread for a sync tool so a large copy does not stall the
event loop; pickling isolates a compute-bound tool's): a tool that mutates a list it was given
changes neither the record it came from, nor the memo's cached result, nor what another consumer
of the same result gets, nor the arguments of its own retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping
from typing import Any, Protocol

from llmcompiler._errors import really_cancelled
from llmcompiler._events import EventHandler, TaskStarted
from llmcompiler._fusion import Batcher, BatchFailed
from llmcompiler._graph import Node
from llmcompiler._limits import Limits, ToolLimits
from llmcompiler._literals import resolve
from llmcompiler._memo import Memo, memo_key
from llmcompiler._offload import RemoteError
from llmcompiler._ratelimit import RateLimiter
from llmcompiler._records import SpeculativeHit, TaskRecord
from llmcompiler._text import describe, error_text
from llmcompiler._threads import Job, PoolExhausted, ThreadPool, ToolBaseException
from llmcompiler._tools import Tool

__all__ = ["DEFAULT_THREADS", "Calls", "Failed", "Gates", "GroupStuck", "Host", "gates_for", "invoke", "thread_pool"]


class Speculation(Protocol):
    """What the call layer asks of a round's speculation (``_speculation.Speculator``)."""

    def claim(self, node: Node, validated: Mapping[str, Any]) -> Claimed | None:
        """The started speculative call that serves ready task ``node``, if any."""
        ...

    def leave(self, idx: int) -> None:
        """Task ``idx`` will take no speculative call."""
        ...

    def adopted(self, entry: Any, idx: int, ready: float, error: str | None) -> SpeculativeHit | None:
        """Task ``idx`` took ``entry``'s outcome: its hit, or ``None`` when the call failed."""
        ...


class Claimed(Protocol):
    """A speculative call a task claimed: its outcome, and when it ran."""

    outcome: asyncio.Future[tuple[Any, str | None]]
    start: float | None
    end: float | None


class Host(Protocol):
    """What the call layer needs of the executor it serves (``Executor`` is one): where records
    go, the run's results of pure tools, each tool's limits, its listener and its retry sleep."""

    records: dict[int, TaskRecord]
    _on_event: EventHandler | None

    def memo(self) -> Memo:
        """The run's results of ``pure`` tools."""
        ...

    def limits_for(self, tool: Tool) -> ToolLimits:
        """The limits ``tool`` runs under."""
        ...

    _sleep: Callable[[float], Awaitable[None]]


DEFAULT_THREADS = 64
"""Threads for sync tools when no run-wide ``max_concurrency`` sizes the pool."""


class GroupStuck(Exception):
    """An exclusive group held by a given-up call whose thread has not returned, past its grace."""


class _Group:
    """One exclusive group's slot on one loop: one call of the group's tools at a time, held
    until the call has really ended (see the module's docstring)."""

    __slots__ = ("name", "sem", "stuck", "tasks")

    def __init__(self, name: str) -> None:
        self.name = name
        self.sem = asyncio.Semaphore(1)  # FIFO: calls get the group in the order they asked
        self.stuck: str | None = None
        self.tasks: set[asyncio.Task[None]] = set()  # releases waiting for a thread to return

    @contextlib.asynccontextmanager
    async def hold(self, tool: str, jobs: list[Job] | None, grace: float | None) -> AsyncIterator[None]:
        """Hold the group for one invocation of ``tool``, whose threads go to ``jobs``.

        Raises:
            GroupStuck: the group is stuck (the call never starts).
        """
        await self.sem.acquire()
        if self.stuck is not None:
            self.sem.release()  # pass it on: every waiter learns the same at once
            raise GroupStuck(self.stuck)
        try:
            yield
        finally:
            running = [job for job in jobs if not job.done()] if jobs else None
            if running:
                task = asyncio.get_running_loop().create_task(self._release_after(tool, running, grace))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            else:
                self.sem.release()

    async def _release_after(self, tool: str, running: list[Job], grace: float | None) -> None:
        """Release the group when the threads of a given-up call return; mark it stuck meanwhile
        if they outlast ``grace`` (the call's timeout)."""
        released = False
        try:
            try:
                async with asyncio.timeout(grace):
                    for job in running:
                        await job.ended()
                return
            except TimeoutError:
                pass
            self.stuck = (
                f"exclusive group {self.name!r} is held by a call of {tool} whose thread has not "
                "returned since it was given up"
            )
            self.sem.release()
            released = True
            for job in running:
                await job.ended()
            self.stuck = None
        finally:
            if not released:
                self.sem.release()


class Gates:
    """The gates of one agent (or executor) on one event loop: the run-wide concurrency slot,
    each tool's slot and rate limiter, the exclusive groups, the batchers of tools with a batch
    implementation, and the agent's thread pool for sync tools (one pool serves every loop).
    ``arun_many`` and concurrent ``arun`` calls share one."""

    __slots__ = ("batchers", "groups", "limiters", "loop", "per_tool", "shared", "threads")

    def __init__(
        self,
        limits: Limits,
        loop: asyncio.AbstractEventLoop,
        threads: ThreadPool,
        limiters: dict[str, RateLimiter],
    ) -> None:
        self.loop = loop
        self.shared = asyncio.Semaphore(limits.max_concurrency) if limits.max_concurrency else None
        self.per_tool: dict[str, tuple[asyncio.Semaphore | None, RateLimiter | None]] = {}
        self.batchers: dict[str, Batcher] = {}
        self.groups: dict[str, _Group] = {}
        self.threads = threads
        self.limiters = limiters  # not per loop: a rate holds across an agent's sync runs too

    def for_tool(self, name: str, lim: ToolLimits) -> tuple[asyncio.Semaphore | None, RateLimiter | None]:
        """The tool's own concurrency slot and rate limiter (either may be ``None``)."""
        gates = self.per_tool.get(name)
        if gates is None:
            sem = asyncio.Semaphore(lim.max_concurrency) if lim.max_concurrency else None
            limiter = None
            if lim.rate_limit is not None:
                limiter = self.limiters.get(name)
                if limiter is None:
                    limiter = self.limiters[name] = RateLimiter(lim.rate_limit, lim.period)
            gates = self.per_tool[name] = (sem, limiter)
        return gates

    def group(self, name: str) -> _Group:
        """The exclusive group ``name``, made on first use."""
        group = self.groups.get(name)
        if group is None:
            group = self.groups[name] = _Group(name)
        return group

    @contextlib.asynccontextmanager
    async def slot(self, name: str, lim: ToolLimits, jobs: list[Job] | None = None) -> AsyncIterator[None]:
        """Pass the gates for one invocation of tool ``name``: a rate token, then its exclusive
        group, then the run-wide and tool slots (the module's docstring says why in this order).

        Args:
            name: the tool.
            lim: the limits it runs under.
            jobs: where the invocation's threads go: its group is held until they end.

        Raises:
            GroupStuck: its group is stuck.
        """
        sem, limiter = self.for_tool(name, lim) if (lim.max_concurrency or lim.rate_limit) else (None, None)
        if limiter is not None:
            await limiter.acquire()
        async with contextlib.AsyncExitStack() as stack:
            if lim.exclusive is not None:
                await stack.enter_async_context(self.group(lim.exclusive).hold(name, jobs, lim.timeout))
            if self.shared is not None:
                await stack.enter_async_context(self.shared)
            if sem is not None:
                await stack.enter_async_context(sem)
            yield

    def batcher(self, tool: Tool, lim: ToolLimits) -> Batcher:
        """The batcher fusing the calls of ``tool``."""
        batcher = self.batchers.get(tool.name)
        if batcher is None:
            batcher = self.batchers[tool.name] = Batcher(
                tool, lim, lambda jobs: self.slot(tool.name, lim, jobs), threads=self.threads
            )
        return batcher


def thread_pool(limits: Limits) -> ThreadPool:
    """The thread pool for an agent's sync tools: ``max_concurrency`` threads, else ``DEFAULT_THREADS``."""
    return ThreadPool(limits.max_concurrency or DEFAULT_THREADS)


def gates_for(
    registry: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Gates],
    limits: Limits,
    threads: ThreadPool,
    limiters: dict[str, RateLimiter],
) -> Gates:
    """The gates of ``registry`` on the running loop, made on first use.

    Gates hold loop-bound objects (semaphores, timers), so each loop has its own. Entries of
    closed loops are dropped here: an agent whose sync ``run()`` is called 200 times (a new
    loop each time) keeps one entry, not 200 loops alive.
    """
    loop = asyncio.get_running_loop()
    gates = registry.get(loop)
    if gates is None:
        for old in [old for old in registry if old.is_closed()]:
            registry.pop(old, None)
        gates = registry[loop] = Gates(limits, loop, threads, limiters)
    return gates


class Failed(Exception):
    """One failed attempt of a tool call."""

    def __init__(self, started: float, message: str) -> None:
        super().__init__(message)
        self.started = started
        self.message = message


class Calls:
    """Calls the tasks of one round and makes their records.

    Args:
        executor: the executor (its limits, memo, events and retry sleep).
        gates: the gates to pass.
        round: the round number for the records.
    """

    def __init__(self, executor: Host, gates: Gates, round: int) -> None:
        self.ex = executor
        self.gates = gates
        self.round = round
        self.first_dispatch: float | None = None
        self.records = executor.records
        self._direct: dict[str, bool] = {}  # per tool: no gate, timeout or batching to pass
        self.spec: Speculation | None = None  # the round's speculation, with a drafter
        # The loop's clock: time.monotonic() on standard loops, and a test's fake clock under looptime.
        self.now = gates.loop.time

    def _result_of(self, idx: int) -> Any:
        return self.records[idx].result

    async def run(self, node: Node) -> TaskRecord:
        """Call a task's tool (retrying as its limits allow) and return its record."""
        tool = node.tool
        kwargs = node.kwargs
        try:
            if node.deps:
                kwargs = {k: resolve(v, self._result_of) for k, v in kwargs.items()}
            validated = tool.validate(kwargs)
        except Exception as exc:  # bad arguments, or a result its dependents cannot use (ResolveError)
            if self.spec is not None:
                self.spec.leave(node.idx)
            return self.record(node, kwargs, None, f"invalid arguments for {tool.name}: {_reason(exc)}", None, None)
        if self.spec is not None and tool.speculation_safe:
            claimed = self.spec.claim(node, validated)
            if claimed is not None:
                adopted = await self._adopted(node, kwargs, validated, self.spec, claimed)
                if adopted is not None:
                    return adopted
        if tool.pure:
            key = memo_key(tool.name, validated)
            if key is not None:
                return await self._memoised(node, kwargs, validated, self.ex.memo(), key)
        return await self._called(node, kwargs, validated)

    async def _adopted(
        self, node: Node, kwargs: dict[str, Any], validated: dict[str, Any], spec: Speculation, claimed: Claimed
    ) -> TaskRecord | None:
        """Take a speculative call's result (waiting for it if it still runs); ``None`` when it failed."""
        ready = self._started(node)
        outcome = claimed.outcome
        # shield: a task that is cancelled must not cancel the call (the round sweeps it).
        result, error = outcome.result() if outcome.done() else await asyncio.shield(outcome)
        hit = spec.adopted(claimed, node.idx, ready, error)
        if hit is None:
            return None
        if node.tool.pure:
            key = memo_key(node.name, validated)
            if key is not None:
                self.ex.memo().keep(key, result)
        return self.record(node, kwargs, result, None, claimed.start, claimed.end, attempts=1, speculative=hit)

    async def _called(self, node: Node, kwargs: dict[str, Any], validated: dict[str, Any]) -> TaskRecord:
        result, error, start, attempts = await self._attempts(node, validated)
        end = self.now() if start is not None else None
        return self.record(node, kwargs, result, error, start, end, attempts=attempts)

    async def _memoised(
        self, node: Node, kwargs: dict[str, Any], validated: dict[str, Any], memo: Memo, key: Hashable
    ) -> TaskRecord:
        try:
            shared = memo.lookup(key)
        except Exception:  # an argument whose __eq__ raises: the call is not memoised
            return await self._called(node, kwargs, validated)
        if shared is not None:
            waited = self.now()
            # shield: a waiter that is cancelled must not cancel the call it shares.
            result, error = shared.result() if shared.done() else await asyncio.shield(shared)
            return self.record(node, kwargs, result, error, waited, self.now(), attempts=0, cached=True)
        claim = memo.claim(key)
        try:
            result, error, start, attempts = await self._attempts(node, validated)
        except BaseException:
            memo.abandon(key, claim)
            raise
        memo.settle(key, claim, result, error)
        end = self.now() if start is not None else None
        return self.record(node, kwargs, result, error, start, end, attempts=attempts)

    async def _attempts(self, node: Node, validated: dict[str, Any]) -> tuple[Any, str | None, float | None, int]:
        """Attempt the call until it succeeds or the retries are spent.

        Returns:
            ``(result, error, first start, attempts)``.
        """
        tool = node.tool
        lim = self.ex.limits_for(tool)
        direct = self._direct.get(tool.name)
        if direct is None:
            direct = self._direct[tool.name] = (
                self.gates.shared is None
                and lim.timeout is None
                and not (lim.max_concurrency or lim.rate_limit)
                and lim.exclusive is None
                and tool.batch is None
            )
        attempts = 0
        start: float | None = None
        jobs: list[Job] = []
        while True:
            attempts += 1
            try:
                if direct:
                    started, result = await self._direct_attempt(node, tool, validated)
                else:
                    started, result = await self._guarded_attempt(node, tool, validated, lim, jobs)
                return result, None, start if start is not None else started, attempts
            except Failed as failed:
                start = start if start is not None else failed.started
                error = failed.message
            if attempts > lim.retries:
                return None, error, start, attempts
            await self.ex._sleep(_backoff(lim, attempts))
            if jobs and not await self._previous_ended(jobs, lim):
                error += "; not retried: the timed-out attempt is still running"
                return None, error, start, attempts

    async def _previous_ended(self, jobs: list[Job], lim: ToolLimits) -> bool:
        """Wait (up to the tool's timeout) for the threads of earlier attempts to end."""
        try:
            async with asyncio.timeout(lim.timeout):
                for job in jobs:
                    await job.ended()
        except TimeoutError:
            return False
        jobs.clear()
        return True

    def _started(self, node: Node) -> float:
        started = self.now()
        if self.first_dispatch is None:
            self.first_dispatch = started
        if self.ex._on_event is not None:
            self.ex._on_event(TaskStarted(idx=node.idx, tool=node.name, time=started))
        return started

    async def _direct_attempt(self, node: Node, tool: Tool, kwargs: dict[str, Any]) -> tuple[float, Any]:
        """One attempt of a tool with no gate, no timeout and no batch: the fast path."""
        started = self._started(node)
        return started, await self._invoke(tool, kwargs, started, None, None)

    async def _guarded_attempt(
        self, node: Node, tool: Tool, kwargs: dict[str, Any], lim: ToolLimits, jobs: list[Job]
    ) -> tuple[float, Any]:
        """One attempt under the rate, concurrency, exclusion and time limits."""
        node.exclusive = lim.exclusive
        if tool.batch is not None:
            return await self._fused_attempt(node, tool, kwargs, lim, jobs)
        try:
            async with self.gates.slot(tool.name, lim, jobs):
                started = self._started(node)
                return started, await self._invoke(tool, kwargs, started, lim.timeout, jobs)
        except GroupStuck as exc:
            raise Failed(self.now(), _failure(tool.name, exc)) from None

    async def _invoke(
        self, tool: Tool, kwargs: dict[str, Any], started: float, timeout: float | None, jobs: list[Job] | None
    ) -> Any:
        return await invoke(tool, kwargs, started, timeout=timeout, threads=self.gates.threads, jobs=jobs)

    async def _fused_attempt(
        self, node: Node, tool: Tool, kwargs: dict[str, Any], lim: ToolLimits, jobs: list[Job]
    ) -> tuple[float, Any]:
        """One attempt of a tool with a batch implementation: wait for its batch window, then
        share one gated invocation with the calls that arrived in it. The timeout counts from
        the call's arrival (window and gates included)."""
        batcher = self.gates.batcher(tool, lim)
        arrived = self.now()
        started_at: list[float] = []

        def on_start(started: float) -> None:
            started_at.append(self._started(node))

        try:
            if lim.timeout is None:
                got = await batcher.submit(self.ex, node.idx, kwargs, on_start, jobs)
            else:
                async with asyncio.timeout(lim.timeout):
                    got = await batcher.submit(self.ex, node.idx, kwargs, on_start, jobs)
        except TimeoutError:
            started = started_at[0] if started_at else arrived
            raise Failed(started, f"{tool.name} timed out after {lim.timeout:g}s") from None
        except BatchFailed as exc:
            message = exc.message if exc.cause is None else _failure(tool.name, exc.cause)
            raise Failed(exc.started, message) from None
        node.batch_size = got.batch_size
        node.fused_with = got.fused_with
        return got.started, got.result

    def record(
        self,
        node: Node,
        kwargs: dict[str, Any],
        result: Any,
        error: str | None,
        start: float | None,
        end: float | None,
        *,
        attempts: int = 0,
        cached: bool = False,
        speculative: SpeculativeHit | None = None,
    ) -> TaskRecord:
        """The record of a task that was called, served from the memo, or refused its arguments."""
        return TaskRecord(
            idx=node.idx,
            tool=node.name,
            args=kwargs,
            deps=node.deps,
            thought=node.thought,
            result=result if error is None else None,
            error=error,
            start=start,
            end=end,
            line=node.line,
            round=self.round,
            attempts=attempts,
            cached=cached,
            batch_size=0 if cached else node.batch_size,
            fused_with=() if cached else node.fused_with,
            after=node.after,
            exclusive=node.exclusive,  # None for a result from the memo: that task called nothing
            speculative=speculative,
        )


async def invoke(
    tool: Tool,
    kwargs: dict[str, Any],
    started: float,
    *,
    timeout: float | None,
    threads: ThreadPool,
    jobs: list[Job] | None = None,
) -> Any:
    """One call of ``tool`` (in ``threads`` if it is sync), under ``timeout``, with its own copy
    of ``kwargs``. Whatever the tool raises becomes ``Failed`` (naming the tool), except a
    ``KeyboardInterrupt`` and a real cancellation of the caller."""
    timer: asyncio.Timeout | None = None
    try:
        if timeout is None:
            return await tool.call(kwargs, threads=threads, jobs=jobs, isolate=True)
        async with asyncio.timeout(timeout) as timer:
            return await tool.call(kwargs, threads=threads, jobs=jobs, isolate=True)
    except TimeoutError as exc:
        if timer is not None and timer.expired():
            raise Failed(started, f"{tool.name} timed out after {timeout:g}s") from None
        raise Failed(started, _failure(tool.name, exc)) from None  # the tool's own TimeoutError
    except asyncio.CancelledError:
        if really_cancelled():
            raise
        raise Failed(started, _failure(tool.name, asyncio.CancelledError())) from None
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        raise Failed(started, _failure(tool.name, exc)) from None


def _reason(exc: Exception) -> str:
    """Why arguments were refused: a validation message as it reads, anything else with its type."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return error_text(exc) if isinstance(exc, ValueError | TypeError) else describe(exc)


def _failure(tool: str, exc: BaseException) -> str:
    original = exc.original if isinstance(exc, ToolBaseException) else exc
    if isinstance(original, asyncio.CancelledError):
        return f"{tool} raised CancelledError itself (the run was not cancelled)"
    if isinstance(original, RemoteError):  # raised in a worker process; its text names its type
        return f"{tool} raised {error_text(original)}"
    if isinstance(original, PoolExhausted | GroupStuck):  # the tool never ran
        return f"{tool} could not start: {error_text(original)}"
    return f"{tool} raised {describe(original)}"


def _backoff(lim: ToolLimits, attempts: int) -> float:
    # Capped exponent: 2 ** 1100 as a float overflows.
    return min(lim.max_backoff, lim.backoff * 2.0 ** min(attempts - 1, 60))
