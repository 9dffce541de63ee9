"""The executor: starts each task the moment its last dependency finishes.

Three layers: the plan parser turns text into tasks; the task graph (``_graph``, pure and
synchronous) says which are ready and which are given up; the call layer (``_calls``) runs one
task under its gates, retries and timeout and makes its record. The round here is the thin part
that joins them: event-driven, a finishing task hands its result to the tasks waiting on it and
starts those whose last dependency it was; nothing polls. Each round runs in one
``asyncio.TaskGroup``, so no tool call outlives the run and cancelling the run cancels every
call in flight.

Failure rules, written down because the order of events matters:
- A tool that raises (anything but ``KeyboardInterrupt``), times out or returns a value its
  dependents cannot use fails only its own task (or that dependent); its siblings go on, and
  tasks that depend on it are given up with ``dependency N failed: ...``.
- Control dependencies only order: a ``sequential`` task that fails, or is given up, holds
  back nothing planned after it (``_graph`` has the rule); an exclusive group's call that fails
  frees the group for the next (``_calls``).
- The plan stream (the producer) failing stops parsing; tasks already parsed still run to
  completion (the consumer drains), then the error is raised with every finished record. A
  plan cut by the model's token limit (``ReplyCut``) is not a failure: its parsed tasks run, the
  cut line fails, and the plan errors tell the joiner.
- The executor (the consumer) failing (a bug, or an ``on_event`` handler that raises) cancels
  the stream and every tool call in flight, and that exception is raised as itself: never an
  ``ExceptionGroup``.
- A ``call_round`` whose body fails with an ``Exception`` (the model's stream broke, or the
  model's turn was cut at its token limit, after some calls started) is a producer failing too:
  the calls already started run to their end, then the body's exception leaves the block as
  itself. A cancellation (or ``KeyboardInterrupt``) of the body cancels the calls in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from llmcompiler._boundary import RunBoundary
from llmcompiler._calls import Calls, Gates, gates_for, thread_pool
from llmcompiler._errors import ArgumentError, ReplyCut, RunError, UserError, unwrap_group
from llmcompiler._events import EventHandler, PlanChunk, TaskFinished
from llmcompiler._graph import Node, Progress, TaskGraph
from llmcompiler._limits import Limits, ToolLimits
from llmcompiler._literals import clip
from llmcompiler._memo import Memo
from llmcompiler._plan import JOIN, ParseError, PlanEnded, PlanEvent, PlanParser, TaskParsed, ThoughtParsed
from llmcompiler._ratelimit import RateLimiter
from llmcompiler._records import RoundTimings, TaskRecord
from llmcompiler._speculation import Draft, Speculator
from llmcompiler._text import describe, safe_text
from llmcompiler._threads import ThreadPool
from llmcompiler._tools import Tool, ToolLike, bind_arguments, coerce_tools
from llmcompiler._types import ToolCall

__all__ = ["CallRound", "Executor", "Limits", "RoundOutcome", "execute_plan"]

Sleep = Callable[[float], Awaitable[None]]

MAX_TRAILING_CHARS = 2000
"""Text a model may write after its plan ended before its stream is closed."""


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

    def timings(self, *, join_start: float, join_end: float) -> RoundTimings:
        """This round's phases as ``RoundTimings``, with the joiner call that followed it."""
        return RoundTimings(
            plan_start=self.plan_start,
            plan_first_chunk=self.plan_first_chunk,
            plan_end=self.plan_end,
            first_dispatch=self.first_dispatch,
            tasks_end=self.tasks_end,
            join_start=join_start,
            join_end=join_end,
        )


class Executor:
    """Runs the tasks of one question's plans, round after round.

    Args:
        tools: the tools plans may call (``Tool``s, functions or LangChain tools).
        limits: run-wide limits and per-tool overrides.
        on_event: called with each ``RunEvent`` as it happens.
        sleep: how to wait between retries (tests pass a fake clock's sleep).

    Raises:
        UserError: ``limits.tool_limits`` names a tool that is not in ``tools``.
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
        self.limits.check_tools(self.tools)
        self.records: dict[int, TaskRecord] = {}
        self._on_event = on_event
        self._sleep = sleep
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Gates] = weakref.WeakKeyDictionary()
        self._memo: tuple[asyncio.AbstractEventLoop, Memo] | None = None
        self._threads: ThreadPool | None = None  # made on first use; shared by share_limits
        self._owns_threads = True
        self._limiters: dict[str, RateLimiter] = {}  # per tool, on every loop; shared by share_limits
        self._tool_limits: dict[str, ToolLimits] = {}

    def limits_for(self, tool: Tool) -> ToolLimits:
        """The limits a tool runs under (``Limits.for_tool``), worked out once per tool."""
        lim = self._tool_limits.get(tool.name)
        if lim is None:
            lim = self._tool_limits[tool.name] = self.limits.for_tool(tool.name, tool.limits)
        return lim

    async def run_round(
        self, source: AsyncIterable[str], *, round: int = 1, draft: Draft | None = None
    ) -> RoundOutcome:
        """Parse a streamed plan and run its tasks as they arrive; return when all are done.

        Args:
            source: the plan's text as it streams.
            round: the round number the records carry.
            draft: a drafter and the planning request to send it: its draft plan's calls of
                speculation-safe tools start early, and the real tasks take their results
                (``llmcompiler._speculation`` has the rules). ``None``: no speculation.

        Raises:
            RunError: the stream failed; ``tasks`` holds every record finished by then.
        """
        return await _Round(self, round, draft).run(source)

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
        tasks = [_call_task(idx, name, args, garbled.get(idx)) for idx, name, args in calls]
        return await self.run_tasks(tasks, round=round)

    @contextlib.asynccontextmanager
    async def call_round(self, *, round: int = 1) -> AsyncIterator[CallRound]:
        """A round of structured tool calls that start one by one, as a model's stream delivers them.

        ``run_calls`` takes a turn's calls once the turn is whole; inside this block each call
        starts the moment it is given to ``CallRound.start``, while the caller still reads the
        rest of the turn. The calls run under the same limits, make the same ``TaskRecord``s and
        fail alone the same way as with ``run_calls``. Leaving the block waits for every call
        started; ``CallRound.records`` then holds their records in the order started.

        Failure rules (see the module docstring):

        - the body raises an ``Exception`` (the model's stream broke, or its turn was cut at the
          token limit, after some calls started): nothing more can start; the calls already
          started run to their end (their limits and timeouts still hold), then the body's
          exception leaves the block as itself. Their records are in ``CallRound.records`` and
          the executor's ``records`` (``Run.guard`` puts the run's in the error's ``tasks``).
        - the body is cancelled (or hit by ``KeyboardInterrupt``): the calls in flight are
          cancelled with it.
        - the executor fails (a bug, an ``on_event`` handler that raises): the body and the calls
          in flight are cancelled and that exception leaves as itself. Never an ``ExceptionGroup``.

        Args:
            round: the round number the records carry.

        Example:
            >>> import asyncio
            >>> from llmcompiler import ToolCall, tool
            >>> @tool
            ... def double(x: int) -> int:
            ...     "Double a number."
            ...     return 2 * x
            >>> async def main() -> list[int]:
            ...     executor = Executor([double])
            ...     async with executor.call_round() as calls:
            ...         calls.start(1, ToolCall(name="double", args={"x": 2}))  # runs from the next await
            ...         calls.start(2, ToolCall(name="double", args={"x": 5}))
            ...     return [r.result for r in calls.records]
            >>> asyncio.run(main())
            [4, 10]
        """
        calls = CallRound(_Round(self, round))
        body_error: Exception | None = None
        failure: BaseException | None = None
        try:
            async with asyncio.TaskGroup() as tg:
                calls._round.tg = tg
                try:
                    yield calls
                except Exception as exc:
                    # The producer (the caller's model stream) failed: the calls it started drain.
                    body_error = exc
                finally:
                    calls._open = False
        except BaseExceptionGroup as group:
            failure = unwrap_group(group)
        if failure is not None:
            raise failure  # outside the except block: the group does not ride along as its context
        if body_error is not None:
            raise body_error

    def _emit(self, event: Any) -> None:
        if self._on_event is not None:
            self._on_event(event)

    def _gates_here(self) -> Gates:
        if self._threads is None:
            self._threads = thread_pool(self.limits)
        return gates_for(self._gates, self.limits, self._threads, self._limiters)

    def close(self) -> None:
        """Let go of the threads this executor made: idle ones end now, busy ones (a call that
        timed out and still runs) when their call returns. Does not wait. A thread pool shared
        from another executor (``share_limits``) is left to its owner. Later calls make a new pool."""
        threads, self._threads = self._threads, None
        if threads is not None and self._owns_threads:
            threads.shutdown()
            self._gates = weakref.WeakKeyDictionary()  # their gates hold the pool that was shut down
        self._owns_threads = True

    def share_limits(self, other: Executor) -> None:
        """Share ``other``'s gates: the run-wide and per-tool concurrency limits, the rate limits,
        the batch windows and the thread pool then hold across both executors (``arun_many`` does
        this for its runs). Records and the results of pure tools stay per executor."""
        if other._threads is None:
            other._threads = thread_pool(other.limits)
        self._gates = other._gates
        self._threads = other._threads
        self._limiters = other._limiters
        self._owns_threads = False

    def memo(self) -> Memo:
        """This executor's results of ``pure`` tools (on the running event loop)."""
        loop = asyncio.get_running_loop()
        if self._memo is None or self._memo[0] is not loop:
            self._memo = (loop, Memo())  # a new loop (a new sync run): the old one's results are gone
        return self._memo[1]


class CallRound:
    """The calls of one ``Executor.call_round`` block: each starts when given to ``start``.

    Attributes:
        round: the round number the records carry.
    """

    def __init__(self, round: _Round) -> None:
        self._round = round
        self._open = True
        self._given: set[int] = set()
        self.round = round.round

    def start(self, idx: int, call: ToolCall) -> None:
        """Start ``call`` as task ``idx`` now: it runs from the caller's next ``await``.

        An unknown tool or invalid arguments fail only this call, as in ``run_calls``; a call
        the model garbled (``call.error`` set) fails with that reason and never runs. Argument
        values are taken literally (no ``$N`` references).

        Raises:
            UserError: the block has ended, or task number ``idx`` is already used.
        """
        if not self._open:
            raise UserError(f"call {idx} ({call.name}) was started after its call round ended")
        if idx in self._given or idx in self._round.records:
            raise UserError(f"task number {idx} is used twice")
        self._given.add(idx)
        self._round.handle(_call_task(idx, call.name, call.args, call.error))

    @property
    def records(self) -> list[TaskRecord]:
        """The records of the calls started, in the order started: those finished so far, and
        every one once the block has ended."""
        records = self._round.records
        return [records[i] for i in self._round.order if i in records]


class _Round:
    """One plan: read the stream, keep the graph, hand ready tasks to the call layer."""

    def __init__(self, executor: Executor, round: int, draft: Draft | None = None) -> None:
        self.ex = executor
        self.draft = draft
        self.spec: Speculator | None = None
        self.round = round
        self.records = executor.records
        self.graph = TaskGraph(executor.records)
        gates = executor._gates_here()
        self.calls = Calls(executor, gates, round)
        self.order: list[int] = []
        self.plan_errors: list[str] = []
        self.join: TaskParsed | None = None
        self.ended_by = "stream_end"
        self.tg: asyncio.TaskGroup | None = None
        # The loop's clock: time.monotonic() on standard loops, and a test's fake clock under looptime.
        self.now = gates.loop.time

    async def run(self, source: AsyncIterable[str]) -> RoundOutcome:
        parser = PlanParser(self.records)
        plan_start = self.now()
        first_chunk: float | None = None
        stream_error: Exception | None = None
        cut: str | None = None
        plan_end: float | None = None
        trailing = 0
        failure: BaseException | None = None
        try:
            async with asyncio.TaskGroup() as tg:
                self.tg = tg
                if self.draft is not None:
                    self.spec = self.calls.spec = Speculator(
                        tools=self.ex.tools,
                        limits_for=self.ex.limits_for,
                        records=self.records,
                        round=self.round,
                        draft=self.draft,
                        tg=tg,
                        now=self.now,
                        emit=self.ex._on_event,
                    )
                async with _closing(source) as chunks:
                    stream = aiter(chunks)
                    while True:
                        try:
                            item: object = await anext(stream)  # typed str; a caller's stream may lie
                        except StopAsyncIteration:
                            break
                        except ReplyCut as exc:
                            # The model hit its token limit: the plan ends here, incomplete.
                            cut = exc.reason
                            break
                        except Exception as exc:
                            # The producer failed: stop parsing; parsed tasks drain; raised below.
                            stream_error = exc
                            break
                        if not isinstance(item, str):
                            stream_error = TypeError(f"the plan stream yielded a {type(item).__name__}, not text")
                            break
                        chunk = item
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
                            if self.spec is not None:
                                self.spec.plan_ended()
                if stream_error is None:
                    for event in parser.close(truncated=cut):
                        self.handle(event)
                if plan_end is None:
                    plan_end = self.now()
                if self.spec is not None:
                    self.spec.plan_ended()
        except BaseExceptionGroup as group:
            failure = unwrap_group(group)
        finally:
            if self.spec is not None:
                self.spec.close()
        if failure is not None:
            raise failure  # outside the except block: the group does not ride along as its context
        assert plan_end is not None
        tasks_end = self.now()
        if self.join is not None:
            self.finish_join(tasks_end)
        records = [self.records[i] for i in self.order]
        if isinstance(stream_error, RunError):
            stream_error.tasks = records
            raise stream_error
        if stream_error is not None:
            raise RunError(f"the plan stream failed: {describe(stream_error)}", tasks=records) from stream_error
        return RoundOutcome(
            records=records,
            plan_errors=self.plan_errors,
            plan_start=plan_start,
            plan_first_chunk=first_chunk,
            plan_end=plan_end,
            first_dispatch=self.calls.first_dispatch,
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
        failure: BaseException | None = None
        try:
            async with asyncio.TaskGroup() as tg:
                self.tg = tg
                for event in events:
                    self.handle(event)
        except BaseExceptionGroup as group:
            failure = unwrap_group(group)
        if failure is not None:
            raise failure
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
            reason = f"unknown tool {ev.tool!r} (tools: {known})"
            self.fail(ev.idx, ev.tool, _shown_args(ev), ev.deps, ev.thought, ev.line, f"{_where(ev)}: {reason}")
            return
        try:
            kwargs = bind_arguments(tool, ev.args, ev.kwargs)
        except ArgumentError as exc:
            self.fail(ev.idx, ev.tool, _shown_args(ev), ev.deps, ev.thought, ev.line, f"{_where(ev)}: {exc}")
            return
        node = Node(
            idx=ev.idx, tool=tool, kwargs=kwargs, deps=ev.deps, thought=ev.thought, line=ev.line, round=self.round
        )
        if self.spec is not None:
            self.spec.expect(node)
        self.progress(self.graph.add(node))

    # -- scheduling

    def progress(self, progress: Progress) -> None:
        """Tell listeners of the tasks given up; start the tasks made ready."""
        if progress.given_up and self.spec is not None:
            for record in progress.given_up:
                self.spec.leave(record.idx)
        if progress.given_up and self.ex._on_event is not None:
            for record in progress.given_up:
                self.ex._on_event(TaskFinished(record=record))
        for node in progress.ready:
            self.start(node)

    def start(self, node: Node) -> None:
        assert self.tg is not None
        self.tg.create_task(self.drive(node))

    def finished(self, record: TaskRecord) -> list[Node]:
        """Store a record, tell listeners, and return the tasks it made ready (given-up ones told too)."""
        progress = self.graph.finish(record)
        if progress.given_up and self.spec is not None:
            for given_up in progress.given_up:
                self.spec.leave(given_up.idx)
        if self.ex._on_event is not None:
            self.ex._on_event(TaskFinished(record=record))
            for given_up in progress.given_up:
                self.ex._on_event(TaskFinished(record=given_up))
        return progress.ready

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
        """A task that fails before any call (a bad plan line): record it, start what it made ready."""
        record = TaskRecord(
            idx=idx, tool=tool, args=args, deps=deps, thought=thought, error=error, line=line, round=self.round
        )
        for node in self.finished(record):
            self.start(node)

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

    async def drive(self, node: Node) -> None:
        """Run a task, then the tasks it made ready: the first in this same asyncio task (a chain
        costs no task creation or loop turn per step), the others in new tasks of the group."""
        next_node: Node | None = node
        calls = self.calls
        while next_node is not None:
            ready = self.finished(await calls.run(next_node))
            next_node = ready[0] if ready else None
            for other in ready[1:]:
                self.start(other)


def _call_task(idx: int, name: str, args: Mapping[str, Any], garbled: str | None) -> TaskParsed | ParseError:
    """A structured call as the task its plan line would give (a ``ParseError`` for a garbled call)."""
    line = f"{idx}. {name}({', '.join(f'{k}={_shown_value(v)}' for k, v in args.items())})"
    if garbled is None and name == JOIN:
        garbled = f"unknown tool {JOIN!r} (a plan's end marker, never a tool)"  # a model may call it natively
    if garbled is not None:
        return ParseError(line=line, reason=garbled, idx=idx, tool=name)
    return TaskParsed(idx=idx, tool=name, args=(), kwargs=dict(args), deps=frozenset(), thought=None, line=line)


def _shown_value(value: Any) -> str:
    """A call's argument as the plan language would write it, never raising (``10**5000``)."""
    huge = isinstance(value, int) and value.bit_length() > 4000
    if isinstance(value, str | int | float | bool | None) and not huge:
        return clip(repr(value), 200)
    return clip(safe_text(value, 400), 200)


def _where(ev: TaskParsed) -> str:
    """``plan line '...'``, a long line cut in the middle."""
    return f"plan line {clip(ev.line, 300)!r}"


def _shown_args(ev: TaskParsed) -> dict[str, Any]:
    shown = {f"arg{i}": v for i, v in enumerate(ev.args)}
    shown.update(ev.kwargs)
    return shown


@contextlib.asynccontextmanager
async def _closing(source: AsyncIterable[str]) -> AsyncIterator[AsyncIterable[str]]:
    """Close the stream at the end; a stream whose closing fails has already given its text, so
    its error is dropped rather than ending a run whose tasks are still running."""
    try:
        yield source
    finally:
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
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
        timeout: seconds a tool call may take when neither its tool's own limits nor its
            override in ``tool_limits`` give a timeout.
        tool_limits: overrides of the tools' own limits by tool name; each changes only the
            fields its ``ToolLimits`` was given (see ``Limits``).
        on_event: called with each ``RunEvent`` as it happens.

    Returns:
        One ``TaskRecord`` per task, in plan order (``join`` included when the plan has one).

    Raises:
        UserError: ``tool_limits`` names a tool that is not in ``tools``.
        RunError: the plan stream failed (``tasks`` holds every record finished by then).
        Exception: what an ``on_event`` handler raised, as itself, ending the run; the finished
            records are in its ``tasks`` attribute. Never an ``ExceptionGroup``.

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
    boundary = RunBoundary([on_event] if on_event is not None else [])
    executor = Executor(
        tools,
        limits=Limits(max_concurrency=max_concurrency, timeout=timeout, tool_limits=dict(tool_limits or {})),
        on_event=boundary.emit if boundary.listening else None,
    )
    source = _chunks_of(plan) if isinstance(plan, str) else plan
    try:
        outcome = await boundary.run(
            executor.run_round(source), lambda: [executor.records[i] for i in sorted(executor.records)]
        )
    finally:
        executor.close()
    return outcome.records
