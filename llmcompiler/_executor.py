"""The executor: starts each task the moment its last dependency finishes.

Event-driven: a finishing task hands its result to the tasks waiting on it and starts those
whose last dependency it was; nothing polls. Each round runs in one ``asyncio.TaskGroup``,
so no tool call outlives the run and cancelling the run cancels every call in flight.

Failure rules, written down because the order of events matters:
- A tool that raises or times out fails only its own task; its siblings go on, and tasks that
  depend on it are given up with ``dependency N failed: ...``.
- The plan stream (the producer) failing stops parsing; tasks already parsed still run to
  completion (the consumer drains), then the error is raised with every finished record.
- The executor (the consumer) failing cancels the stream and every tool call in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any

from asyncio_throttle.throttler import Throttler

from llmcompiler._errors import RunError, UserError
from llmcompiler._events import EventHandler, PlanChunk, TaskFinished, TaskStarted
from llmcompiler._fusion import Batcher, BatchFailed
from llmcompiler._literals import resolve
from llmcompiler._memo import Memo, memo_key
from llmcompiler._plan import JOIN, ParseError, PlanEnded, PlanEvent, PlanParser, TaskParsed, ThoughtParsed
from llmcompiler._records import TaskRecord
from llmcompiler._tools import ArgumentError, Tool, ToolLike, ToolLimits, coerce_tools

__all__ = ["Executor", "Limits", "RoundOutcome", "execute_plan"]

Sleep = Callable[[float], Awaitable[None]]

MAX_TRAILING_CHARS = 2000
"""Text a model may write after its plan ended before its stream is closed."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Limits:
    """Run-wide limits.

    Attributes:
        max_concurrency: tool calls running at once across all tools; ``None`` for no limit.
        timeout: seconds a tool call may take when its own ``ToolLimits`` set none.
        tool_limits: per-tool settings by tool name; they replace the tool's own ``limits``.
    """

    max_concurrency: int | None = None
    timeout: float | None = None
    tool_limits: Mapping[str, ToolLimits] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_concurrency is not None and self.max_concurrency < 1:
            raise UserError(f"max_concurrency must be at least 1, got {self.max_concurrency}")
        if self.timeout is not None and self.timeout <= 0:
            raise UserError(f"timeout must be positive, got {self.timeout}")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class RoundOutcome:
    """What one plan produced.

    Attributes:
        records: the round's tasks in plan order, ``join`` included when the plan had one.
        plan_errors: messages for plan lines that are not tasks (numbered lines that failed are records).
        plan_start: when reading the plan began.
        plan_first_chunk: when its first text arrived.
        plan_end: when the plan ended.
        first_dispatch: when the first tool started.
        tasks_end: when the last task finished.
        ended_by: ``"join"``, ``"end_marker"`` or ``"stream_end"``.
    """

    records: list[TaskRecord]
    plan_errors: list[str]
    plan_start: float
    plan_first_chunk: float | None
    plan_end: float
    first_dispatch: float | None
    tasks_end: float
    ended_by: str


class _Node:
    """A parsed task waiting for its dependencies or running."""

    __slots__ = ("batch_size", "deps", "fused_with", "idx", "kwargs", "line", "name", "thought", "tool", "waiting")

    def __init__(self, ev: TaskParsed, tool: Tool, kwargs: dict[str, Any]) -> None:
        self.idx = ev.idx
        self.name = ev.tool
        self.tool = tool
        self.kwargs = kwargs
        self.deps = ev.deps
        self.thought = ev.thought
        self.line = ev.line
        self.waiting = 0
        self.batch_size = 0  # set by a fused call
        self.fused_with: tuple[int, ...] = ()


class _Gates:
    """Concurrency and rate gates of one executor on one event loop (shared by the executors
    of ``arun_many``), and the batchers of tools with a batch implementation."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.shared = asyncio.Semaphore(limits.max_concurrency) if limits.max_concurrency else None
        self.per_tool: dict[str, tuple[asyncio.Semaphore | None, Throttler | None]] = {}
        self.batchers: dict[str, Batcher] = {}

    def batcher(self, tool: Tool, lim: ToolLimits) -> Batcher:
        """The batcher fusing the calls of ``tool``."""
        batcher = self.batchers.get(tool.name)
        if batcher is None:
            batcher = self.batchers[tool.name] = Batcher(tool, lim, lambda: self.slot(tool.name, lim))
        return batcher

    @contextlib.asynccontextmanager
    async def slot(self, name: str, lim: ToolLimits) -> AsyncIterator[None]:
        """Hold one invocation's share of the gates: concurrency slots and a rate-limit token."""
        sem, throttler = self.for_tool(name, lim) if (lim.max_concurrency or lim.rate_limit) else (None, None)
        async with contextlib.AsyncExitStack() as stack:
            if self.shared is not None:
                await stack.enter_async_context(self.shared)
            if sem is not None:
                await stack.enter_async_context(sem)
            if throttler is not None:
                await throttler.acquire()  # type: ignore[no-untyped-call]
            yield

    def for_tool(self, name: str, lim: ToolLimits) -> tuple[asyncio.Semaphore | None, Throttler | None]:
        gates = self.per_tool.get(name)
        if gates is None:
            sem = asyncio.Semaphore(lim.max_concurrency) if lim.max_concurrency else None
            throttler = None
            if lim.rate_limit is not None:
                # asyncio-throttle counts whole calls per period: 0.5 calls/s is 1 call per 2 s.
                calls, period = (
                    (int(lim.rate_limit), lim.period) if lim.rate_limit >= 1 else (1, lim.period / lim.rate_limit)
                )
                throttler = Throttler(rate_limit=calls, period=period)
            gates = self.per_tool[name] = (sem, throttler)
        return gates


class Executor:
    """Runs the tasks of one question's plans, round after round.

    Args:
        tools: the tools plans may call (``Tool``s, functions or LangChain tools).
        limits: run-wide and per-tool limits.
        on_event: called with each ``RunEvent`` as it happens.
        sleep: how to wait between retries (tests pass a fake clock's sleep).
    """

    def __init__(
        self,
        tools: Iterable[ToolLike] | Mapping[str, Tool],
        *,
        limits: Limits | None = None,
        on_event: EventHandler | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.tools: Mapping[str, Tool] = tools if isinstance(tools, Mapping) else coerce_tools(tools)
        self.limits = limits or Limits()
        self.records: dict[int, TaskRecord] = {}
        self._on_event = on_event
        self._sleep = sleep
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Gates] = weakref.WeakKeyDictionary()
        self._memos: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Memo] = weakref.WeakKeyDictionary()
        self._tool_limits: dict[str, ToolLimits] = {}

    def limits_for(self, tool: Tool) -> ToolLimits:
        """The limits a tool runs under: its own, or the override in ``Limits.tool_limits``,
        with the run-wide default timeout when it sets none."""
        lim = self._tool_limits.get(tool.name)
        if lim is None:
            lim = self.limits.tool_limits.get(tool.name, tool.limits)
            if lim.timeout is None and self.limits.timeout is not None:
                lim = dataclasses.replace(lim, timeout=self.limits.timeout)
            self._tool_limits[tool.name] = lim
        return lim

    async def run_round(self, source: AsyncIterable[str], *, round: int = 1) -> RoundOutcome:
        """Parse a streamed plan and run its tasks as they arrive; return when all are done.

        Raises:
            RunError: the stream failed; ``tasks`` holds every record finished by then.
        """
        return await _Round(self, round).run(source)

    async def run_tasks(self, events: Iterable[PlanEvent], *, round: int = 1) -> list[TaskRecord]:
        """Run already-parsed tasks (``parse_plan``'s events) under the same limits and failure rules
        as a streamed plan; return when all are done.

        ``ParseError``s that carry a task number become failed records, as in ``run_round``; an
        unknown tool or invalid arguments fail only that task. Other events (thoughts, errors
        without a task number, the plan's end) add no record. A task may depend on tasks of
        earlier calls (``$N``) or on earlier tasks of ``events``.

        Returns:
            One ``TaskRecord`` per task, in the order given (``join`` included when given).

        Raises:
            UserError: a task number is already used, or a task depends on a task that is
                neither finished nor earlier in ``events``.
        """
        return await _Round(self, round).run_parsed(events)

    async def run_calls(
        self,
        calls: Sequence[tuple[int, str, Mapping[str, Any]]],
        *,
        round: int = 1,
        unreadable: Mapping[int, str] | None = None,
    ) -> list[TaskRecord]:
        """Run structured tool calls ``(idx, tool name, arguments)`` concurrently, as one round.

        The calls run under the executor's limits (concurrency, timeouts, retries, rates) and
        each ends in a ``TaskRecord`` as a plan's task does: an unknown tool or invalid arguments
        fail only that call. Argument values are taken literally (no ``$N`` references).
        ``unreadable`` maps the numbers of calls the model garbled to why: they fail with that
        reason and never run.

        Returns:
            One ``TaskRecord`` per call, in the order given.

        Raises:
            UserError: a task number is used twice.
        """
        garbled = unreadable or {}
        tasks: list[TaskParsed | ParseError] = []
        for idx, name, args in calls:
            line = f"{idx}. {name}({', '.join(f'{k}={v!r}' for k, v in args.items())})"
            if idx in garbled:
                tasks.append(ParseError(line=line, reason=garbled[idx], idx=idx, tool=name))
            else:
                tasks.append(
                    TaskParsed(
                        idx=idx, tool=name, args=(), kwargs=dict(args), deps=frozenset(), thought=None, line=line
                    )
                )
        return await self.run_tasks(tasks, round=round)

    def _emit(self, event: Any) -> None:
        if self._on_event is not None:
            self._on_event(event)

    def _gates_here(self) -> _Gates:
        loop = asyncio.get_running_loop()
        gates = self._gates.get(loop)
        if gates is None:
            gates = self._gates[loop] = _Gates(self.limits)
        return gates

    def share_limits(self, other: Executor) -> None:
        """Share ``other``'s gates: the run-wide and per-tool concurrency limits, the rate limits
        and the batch windows then hold across both executors (``arun_many`` does this for its
        runs). Records and the results of pure tools stay per executor."""
        self._gates = other._gates

    def memo(self) -> Memo:
        """This executor's results of ``pure`` tools (on the running event loop)."""
        loop = asyncio.get_running_loop()
        memo = self._memos.get(loop)
        if memo is None:
            memo = self._memos[loop] = Memo()
        return memo


class _Round:
    """The scheduler of one plan: parse, dispatch, hand results to dependents."""

    def __init__(self, executor: Executor, round: int) -> None:
        self.ex = executor
        self.round = round
        self.records = executor.records
        self.order: list[int] = []
        self.plan_errors: list[str] = []
        self.running: dict[int, _Node] = {}  # parsed and not yet finished
        self.waiters: dict[int, list[_Node]] = {}
        self.join: TaskParsed | None = None
        self.first_dispatch: float | None = None
        self.ended_by = "stream_end"
        self.tg: asyncio.TaskGroup | None = None
        self.gates = executor._gates_here()
        self.ungated: dict[str, bool] = {}  # per tool: no gate, timeout or batching to pass through
        # The loop's clock: time.monotonic() on standard loops, and a test's fake clock under looptime.
        self.now = asyncio.get_running_loop().time

    async def run(self, source: AsyncIterable[str]) -> RoundOutcome:
        parser = PlanParser(self.records)
        plan_start = self.now()
        first_chunk: float | None = None
        stream_error: BaseException | None = None
        plan_end: float | None = None
        trailing = 0
        async with asyncio.TaskGroup() as tg:
            self.tg = tg
            async with _closing(source) as chunks:
                stream = aiter(chunks)
                while True:
                    try:
                        chunk = await anext(stream)
                    except StopAsyncIteration:
                        break
                    except Exception as exc:
                        # The producer failed: stop parsing; parsed tasks drain; raised below.
                        stream_error = exc
                        break
                    if parser.ended:
                        # After join() the text is no plan (the parser reports it), but read on: the
                        # usage report comes at the end of the stream. Stop a model that rambles.
                        trailing += len(chunk)
                        if trailing > MAX_TRAILING_CHARS:
                            break
                    now = self.now()
                    if first_chunk is None:
                        first_chunk = now
                    if self.ex._on_event is not None:  # build event objects only for a listener
                        self.ex._on_event(PlanChunk(text=chunk, time=now))
                    for event in parser.feed(chunk):
                        self.handle(event)
                    if plan_end is None and parser.ended:
                        plan_end = self.now()
            if stream_error is None:
                for event in parser.close():
                    self.handle(event)
            if plan_end is None:
                plan_end = self.now()
        tasks_end = self.now()
        if self.join is not None:
            self.finish_join(tasks_end)
        records = [self.records[i] for i in self.order]
        if isinstance(stream_error, RunError):
            stream_error.tasks = records
            raise stream_error
        if stream_error is not None:
            raise RunError(f"the plan stream failed: {_describe(stream_error)}", tasks=records) from stream_error
        return RoundOutcome(
            records=records,
            plan_errors=self.plan_errors,
            plan_start=plan_start,
            plan_first_chunk=first_chunk,
            plan_end=plan_end,
            first_dispatch=self.first_dispatch,
            tasks_end=tasks_end,
            ended_by=self.ended_by,
        )

    async def run_parsed(self, events: Iterable[PlanEvent]) -> list[TaskRecord]:
        events = list(events)
        known = set(self.records)
        for event in events:
            idx = event.idx if isinstance(event, TaskParsed | ParseError) else None
            if idx is None:
                continue
            if idx in known:
                raise UserError(f"task number {idx} is used twice")
            if isinstance(event, TaskParsed) and not event.deps <= known:
                raise UserError(f"task {idx} depends on unknown tasks {sorted(event.deps - known)}")
            known.add(idx)
        async with asyncio.TaskGroup() as tg:
            self.tg = tg
            for event in events:
                self.handle(event)
        if self.join is not None:
            self.finish_join(self.now())
        return [self.records[i] for i in self.order]

    # -- parse events

    def handle(self, event: PlanEvent) -> None:
        self.ex._emit(event)
        if isinstance(event, TaskParsed):
            self.order.append(event.idx)
            if event.tool == JOIN:
                self.join = event
            else:
                self.add_task(event)
        elif isinstance(event, ParseError):
            if event.idx is None:
                self.plan_errors.append(event.message())
            else:
                self.order.append(event.idx)
                self.fail(event.idx, event.tool or "?", {}, frozenset(), event.thought, event.line, event.message())
        elif isinstance(event, PlanEnded):
            self.ended_by = event.reason
        elif not isinstance(event, ThoughtParsed):  # pragma: no cover - exhaustive
            raise AssertionError(event)

    def add_task(self, ev: TaskParsed) -> None:
        tool = self.ex.tools.get(ev.tool)
        if tool is None:
            known = ", ".join(sorted(self.ex.tools)) or "none"
            self.fail(
                ev.idx,
                ev.tool,
                _shown_args(ev),
                ev.deps,
                ev.thought,
                ev.line,
                f"plan line {ev.line!r}: unknown tool {ev.tool!r} (tools: {known})",
            )
            return
        try:
            kwargs = _bind(tool, ev.args, ev.kwargs)
        except ArgumentError as exc:
            self.fail(
                ev.idx,
                ev.tool,
                _shown_args(ev),
                ev.deps,
                ev.thought,
                ev.line,
                f"plan line {ev.line!r}: {exc}",
            )
            return
        node = _Node(ev, tool, kwargs)
        for dep in ev.deps:
            done = self.records.get(dep)
            if done is None:
                node.waiting += 1
                self.waiters.setdefault(dep, []).append(node)
            elif done.error is not None:
                self.give_up(node, dep, done.error)
                return
        self.running[node.idx] = node
        if node.waiting == 0:
            self.start(node)

    # -- scheduling

    def start_all(self, record: TaskRecord) -> None:
        """Record a task that finished outside a tool call; start what it made ready."""
        for node in self.finished(record):
            self.start(node)

    def start(self, node: _Node) -> None:
        assert self.tg is not None
        self.tg.create_task(self.call(node))

    def finished(self, record: TaskRecord) -> list[_Node]:
        """Store a record, hand it to the tasks waiting on it, and return those now ready to run."""
        self.records[record.idx] = record
        self.running.pop(record.idx, None)
        if self.ex._on_event is not None:
            self.ex._on_event(TaskFinished(record=record))
        ready: list[_Node] = []
        stack = [record]
        while stack:
            rec = stack.pop()
            for node in self.waiters.pop(rec.idx, ()):
                if node.idx not in self.running:
                    continue  # already given up through another failed dependency
                if rec.error is not None:
                    stack.append(self.give_up(node, rec.idx, rec.error))
                else:
                    node.waiting -= 1
                    if node.waiting == 0:
                        ready.append(node)
        return ready

    def give_up(self, node: _Node, dep: int, error: str) -> TaskRecord:
        self.running.pop(node.idx, None)
        record = TaskRecord(
            idx=node.idx,
            tool=node.name,
            args=node.kwargs,
            deps=node.deps,
            thought=node.thought,
            error=f"dependency {dep} failed: {error}",
            line=node.line,
            round=self.round,
        )
        self.records[node.idx] = record
        self.ex._emit(TaskFinished(record=record))
        return record

    def fail(
        self,
        idx: int,
        tool: str,
        args: dict[str, Any],
        deps: frozenset[int],
        thought: str | None,
        line: str,
        error: str,
    ) -> None:
        self.start_all(
            TaskRecord(
                idx=idx,
                tool=tool,
                args=args,
                deps=deps,
                thought=thought,
                error=error,
                line=line,
                round=self.round,
            )
        )

    def finish_join(self, now: float) -> None:
        ev = self.join
        assert ev is not None
        deps = frozenset(i for i in self.order if i != ev.idx)
        self.records[ev.idx] = record = TaskRecord(
            idx=ev.idx,
            tool=JOIN,
            args={},
            deps=deps,
            thought=ev.thought,
            start=now,
            end=now,
            line=ev.line,
            round=self.round,
        )
        self.ex._emit(TaskFinished(record=record))

    # -- one tool call

    async def call(self, node: _Node) -> None:
        """Run a task, then the tasks it made ready: the first in this same asyncio task (a chain
        costs no task creation or loop turn per step), the others in new tasks of the group."""
        next_node: _Node | None = node
        while next_node is not None:
            ready = self.finished(await self.attempts(next_node))
            next_node = ready[0] if ready else None
            for other in ready[1:]:
                self.start(other)

    async def attempts(self, node: _Node) -> TaskRecord:
        """Call a task's tool, retrying as its limits allow, and return its record."""
        records = self.records
        kwargs = node.kwargs
        tool = node.tool
        lim = self.ex.limits_for(tool)
        ungated = self.ungated.get(tool.name)
        if ungated is None:
            ungated = self.ungated[tool.name] = (
                self.gates.shared is None
                and lim.timeout is None
                and not (lim.max_concurrency or lim.rate_limit)
                and tool.batch is None
            )
        attempts = 0
        start: float | None = None
        result: Any = None
        error: str | None = None
        try:
            if node.deps:
                kwargs = {k: resolve(v, lambda i: records[i].result) for k, v in kwargs.items()}
            validated = tool.validate(kwargs)
        except (ArgumentError, TypeError) as exc:
            error = f"invalid arguments for {tool.name}: {exc}"
        else:
            claim: tuple[Memo, Hashable, asyncio.Future[tuple[Any, str | None]]] | None = None
            if tool.pure:
                memo = self.ex.memo()
                key = memo_key(tool.name, validated)
                if key is not None:
                    shared = memo.lookup(key)
                    if shared is not None:
                        return await self.reuse(node, kwargs, shared)
                    claim = (memo, key, memo.claim(key))
            try:
                while True:
                    attempts += 1
                    try:
                        if ungated:
                            started, result = await self.direct(node, tool, validated)
                        else:
                            started, result = await self.guarded(node, tool, validated, lim)
                        start = start if start is not None else started
                        error = None
                        break
                    except _Attempt as failed:
                        start = start if start is not None else failed.started
                        error = failed.message
                        if attempts > lim.retries:
                            break
                    await self.ex._sleep(min(lim.max_backoff, lim.backoff * 2 ** (attempts - 1)))
            except BaseException:
                if claim is not None:
                    claim[0].abandon(claim[1], claim[2])
                raise
            if claim is not None:
                claim[0].settle(claim[1], claim[2], result, error)
        end = self.now() if start is not None else None
        return self.record(node, kwargs, result, error, start, end, attempts=attempts)

    async def reuse(
        self, node: _Node, kwargs: dict[str, Any], shared: asyncio.Future[tuple[Any, str | None]]
    ) -> TaskRecord:
        """The record of a pure tool's task served by an equal call of the same run."""
        start = self.now()
        # shield: a waiter that is cancelled must not cancel the call it shares.
        result, error = shared.result() if shared.done() else await asyncio.shield(shared)
        return self.record(node, kwargs, result, error, start, self.now(), attempts=0, cached=True)

    def record(
        self,
        node: _Node,
        kwargs: dict[str, Any],
        result: Any,
        error: str | None,
        start: float | None,
        end: float | None,
        *,
        attempts: int,
        cached: bool = False,
    ) -> TaskRecord:
        """The record of a task that was called (or served from the memo)."""
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
        )

    async def direct(self, node: _Node, tool: Tool, kwargs: dict[str, Any]) -> tuple[float, Any]:
        """One attempt of a tool with no gate and no timeout: ``guarded`` without its layers."""
        started = self.now()
        if self.first_dispatch is None:
            self.first_dispatch = started
        if self.ex._on_event is not None:
            self.ex._on_event(TaskStarted(idx=node.idx, tool=node.name, time=started))
        try:
            return started, await tool.call(kwargs)
        except Exception as exc:
            raise _Attempt(started, f"{tool.name} raised {_describe(exc)}") from exc

    async def guarded(self, node: _Node, tool: Tool, kwargs: dict[str, Any], lim: ToolLimits) -> tuple[float, Any]:
        """One attempt under the concurrency, rate and time limits. Raises ``_Attempt`` on failure."""
        if tool.batch is not None:
            return await self.fused(node, tool, kwargs, lim)
        shared = self.gates.shared
        sem, throttler = (
            self.gates.for_tool(tool.name, lim) if (lim.max_concurrency or lim.rate_limit) else (None, None)
        )
        if shared is not None:
            await shared.acquire()
        try:
            if sem is not None:
                await sem.acquire()
            try:
                if throttler is not None:
                    await throttler.acquire()  # type: ignore[no-untyped-call]
                started = self.now()
                if self.first_dispatch is None:
                    self.first_dispatch = started
                if self.ex._on_event is not None:
                    self.ex._on_event(TaskStarted(idx=node.idx, tool=node.name, time=started))
                try:
                    if lim.timeout is None:
                        return started, await tool.call(kwargs)
                    async with asyncio.timeout(lim.timeout):
                        return started, await tool.call(kwargs)
                except TimeoutError:
                    raise _Attempt(started, f"{tool.name} timed out after {lim.timeout:g}s") from None
                except Exception as exc:
                    raise _Attempt(started, f"{tool.name} raised {_describe(exc)}") from exc
            finally:
                if sem is not None:
                    sem.release()
        finally:
            if shared is not None:
                shared.release()

    async def fused(self, node: _Node, tool: Tool, kwargs: dict[str, Any], lim: ToolLimits) -> tuple[float, Any]:
        """One attempt of a tool with a batch implementation: wait for its batch window, then
        share one gated invocation with the calls that arrived in it. The timeout counts from
        the call's arrival (window and gates included)."""
        batcher = self.gates.batcher(tool, lim)
        arrived = self.now()
        started_at: list[float] = []

        def on_start(started: float) -> None:
            started_at.append(started)
            if self.first_dispatch is None:
                self.first_dispatch = started
            if self.ex._on_event is not None:
                self.ex._on_event(TaskStarted(idx=node.idx, tool=node.name, time=started))

        try:
            if lim.timeout is None:
                got = await batcher.submit(self.ex, node.idx, kwargs, on_start)
            else:
                async with asyncio.timeout(lim.timeout):
                    got = await batcher.submit(self.ex, node.idx, kwargs, on_start)
        except TimeoutError:
            started = started_at[0] if started_at else arrived
            raise _Attempt(started, f"{tool.name} timed out after {lim.timeout:g}s") from None
        except BatchFailed as exc:
            raise _Attempt(exc.started, exc.message) from None
        node.batch_size = got.batch_size
        node.fused_with = got.fused_with
        return got.started, got.result


class _Attempt(Exception):
    """One failed attempt of a tool call."""

    def __init__(self, started: float, message: str) -> None:
        super().__init__(message)
        self.started = started
        self.message = message


def _bind(tool: Tool, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Map positional arguments to parameter names, in the schema's order."""
    if not args:
        return kwargs
    names = tool.param_names
    if len(args) > len(names):
        raise ArgumentError(
            f"{tool.name} takes {len(names)} argument{'s' if len(names) != 1 else ''} "
            f"({', '.join(names) or 'none'}) but {len(args)} were given"
        )
    bound = dict(zip(names, args, strict=False))
    for key, value in kwargs.items():
        if key in bound:
            raise ArgumentError(f"argument {key!r} is given both by position and by name")
        bound[key] = value
    return bound


def _shown_args(ev: TaskParsed) -> dict[str, Any]:
    shown = {f"arg{i}": v for i, v in enumerate(ev.args)}
    shown.update(ev.kwargs)
    return shown


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextlib.asynccontextmanager
async def _closing(source: AsyncIterable[str]) -> AsyncIterator[AsyncIterable[str]]:
    try:
        yield source
    finally:
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()


async def _chunks_of(text: str) -> AsyncIterator[str]:
    yield text


async def execute_plan(
    plan: str | AsyncIterable[str],
    tools: Iterable[ToolLike] | Mapping[str, Tool],
    *,
    max_concurrency: int | None = None,
    timeout: float | None = None,
    tool_limits: Mapping[str, ToolLimits] | None = None,
    on_event: EventHandler | None = None,
) -> list[TaskRecord]:
    """Run a plan with no model: parse it, run its tasks as their dependencies finish.

    Args:
        plan: the plan text, or an async iterable of its chunks (tasks start as they arrive).
        tools: the tools it may call.
        max_concurrency: tool calls running at once, across all tools.
        timeout: seconds a tool call may take when its own limits set none.
        tool_limits: per-tool limits by name, replacing the tools' own.
        on_event: called with each ``RunEvent`` as it happens.

    Returns:
        One ``TaskRecord`` per task, in plan order (``join`` included when the plan has one).

    Example:
        >>> import asyncio
        >>> from llmcompiler import tool
        >>> @tool
        ... def double(x: int) -> int:
        ...     '''Double a number.'''
        ...     return 2 * x
        >>> records = asyncio.run(execute_plan("1. double(2)\\n2. double($1)\\n3. join()", [double]))
        >>> [r.result for r in records]
        [4, 8, None]
    """
    executor = Executor(
        tools,
        limits=Limits(max_concurrency=max_concurrency, timeout=timeout, tool_limits=dict(tool_limits or {})),
        on_event=on_event,
    )
    source = _chunks_of(plan) if isinstance(plan, str) else plan
    outcome = await executor.run_round(source)
    return outcome.records
