"""Speculative execution: a fast drafter's plan starts the calls the planner is about to write.

While the planner streams a round's plan, a drafter model gets the same planning request and
streams a draft of it. The draft is parsed as it arrives (``PlanParser``, its events never
reported), and each draft call may start before the planner writes it. The rules:

- **Safety.** Only a speculation-safe tool (``Tool.speculation_safe``: ``pure`` or
  ``speculative``) is ever called from a draft. A call of any other tool, of an unknown tool,
  or with arguments its tool refuses, is counted as drafted and never made.
- **Nothing a real call needs.** Speculative calls run under their own limit
  (``max_speculative``) and their own threads, outside the run's ``max_concurrency``. A tool
  whose calls pass a gate real calls also wait on is never speculated: one with a rate limit,
  an exclusive group or its own concurrency limit, a batch implementation, ``compute_bound``
  (the process pool) or ``sequential`` (its order matters). A draft call the planner has already
  written is never started, and none starts after the real plan has ended.
- **Arguments.** A draft call starts when its arguments need no result but those of earlier
  rounds' tasks and of draft calls that succeeded. It then has the arguments its tool
  validated; its match key is that of ``Memo`` (tool name and a canonical form of the
  arguments: ``1`` and ``1.0`` differ, dict order does not).
- **Hits.** When a real task of a speculation-safe tool is ready (its arguments resolved and
  validated), a speculative call with the same key that has started gives it its result: at
  once if it has finished, else the task waits for it (it joins the call in flight). One call
  serves one task. A call that fails serves none: the task then makes its own call. A call
  still waiting for its turn is dropped (the real task runs instead of it).
- **Misses.** Once the real plan has ended, a speculative call that no real task still waiting
  can match (no such task of its tool) is cancelled if it runs, its result dropped if done;
  the rest follow as the tasks of their tool arrive or are given up. The drafter's stream is
  closed when the real plan ends.
- **A drafter that fails** (raises, stalls, writes garbage, answers with native tool calls)
  changes nothing but its own effort: its error goes to ``SpeculationSummary.errors``, and
  the run's tasks, records and answer are those of a run without it.

The joiner never sees a speculative call: only real tasks have records. The drafter's tokens
are summed apart from the run's (``SpeculationSummary.usage``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Protocol

from llmcompiler._calls import Failed, invoke
from llmcompiler._errors import ArgumentError
from llmcompiler._events import EventHandler, SpeculationEnded, SpeculationStarted
from llmcompiler._graph import Node
from llmcompiler._limits import ToolLimits
from llmcompiler._literals import resolve
from llmcompiler._memo import memo_key
from llmcompiler._plan import JOIN, PlanEvent, PlanParser, TaskParsed
from llmcompiler._records import SpeculationSummary, SpeculativeCall, SpeculativeHit, SpeculativeState, TaskRecord
from llmcompiler._redact import scrub
from llmcompiler._text import describe, one_line
from llmcompiler._threads import ThreadPool
from llmcompiler._tools import Tool, bind_arguments
from llmcompiler._types import ChatModel, ModelRequest, ToolCall, Truncated, Usage
from llmcompiler.models._pricing import add_cost
from llmcompiler.models._reading import model_events, model_name

__all__ = ["MAX_DRAFT_CALLS", "MAX_DRAFT_CHARS", "Draft", "ModelTrace", "SpeculationLog", "Speculator", "speculatable"]

MAX_DRAFT_CHARS = 50_000
"""Draft text read per round; a drafter that writes more is read no further."""

MAX_DRAFT_CALLS = 64
"""Draft calls that may start per round; later ones are counted as drafted, never made."""

Outcome = tuple[Any, str | None]
"""A finished call: ``(result, None)`` or ``(None, error message)``."""


def speculatable(tool: Tool, limits: ToolLimits) -> bool:
    """Whether a draft may call ``tool`` (under ``limits``): it is speculation-safe, and none of
    its calls passes a gate real calls also wait at (a rate limit, an exclusive group, its own
    concurrency limit, a batch, the process pool) or has an order to keep (``sequential``)."""
    return (
        tool.speculation_safe
        and limits.rate_limit is None
        and limits.exclusive is None
        and not limits.max_concurrency
        and tool.batch is None
        and not tool.compute_bound
        and not tool.sequential
    )


class SpeculationLog:
    """One run's speculation across its rounds; ``summary()`` is its ``SpeculationSummary``.

    Args:
        drafter: the drafter model's name.
    """

    def __init__(self, drafter: str) -> None:
        self.drafter = drafter
        self.drafted = 0
        self.calls: list[SpeculativeCall] = []
        self.usage = Usage()
        self.cost_usd: float | None = 0.0
        self.errors: list[str] = []
        self.time_saved_s = 0.0

    def add_usage(self, model: str, usage: Usage) -> None:
        """Count the drafter's tokens and their cost."""
        self.usage += usage
        self.cost_usd = add_cost(self.cost_usd, model, usage)

    def error(self, message: str) -> None:
        """Keep what went wrong with a draft, secrets taken out."""
        self.errors.append(one_line(scrub(message), 500))

    def summary(self) -> SpeculationSummary:
        """What speculation did so far."""
        calls = sorted(self.calls, key=lambda c: c.start)  # kept as they end; reported as they started
        hits = sum(1 for c in calls if c.state == "hit")
        return SpeculationSummary(
            drafter=self.drafter,
            drafted=self.drafted,
            started=len(calls),
            hits=hits,
            misses=len(calls) - hits,
            cancelled=sum(1 for c in calls if c.state == "cancelled"),
            time_saved_s=self.time_saved_s,
            calls=calls,
            usage=self.usage,
            cost_usd=self.cost_usd,
            errors=list(self.errors),
        )

    def add_call(self, call: SpeculativeCall, saved_s: float = 0.0) -> None:
        """Keep an ended speculative call (with the time a hit saved)."""
        self.calls.append(call)
        self.time_saved_s += saved_s


class ModelTrace(Protocol):
    """The trace of one model call read outside ``Run.reply`` (``Run.model_trace``)."""

    def text(self) -> None:
        """A piece of the reply arrived."""
        ...

    def usage(self, usage: Usage) -> None:
        """The model reported usage."""
        ...

    def end(self, *, cut: str | None = None, calls: int = 0, error: BaseException | None = None) -> None:
        """The call ended (``error``: ``GeneratorExit`` when the reader closed it early)."""
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class Draft:
    """What a round needs to speculate (``Executor.run_round``'s ``draft``).

    Attributes:
        model: the drafter.
        request: the planning request it gets (the planner's own).
        log: the run's ``SpeculationLog``, which the round adds to.
        max_speculative: speculative calls running at once.
        trace: makes the drafter call's trace (``Run.model_trace``: an OpenTelemetry span), or ``None``.
    """

    model: ChatModel
    request: ModelRequest
    log: SpeculationLog
    max_speculative: int = 2
    trace: Callable[[str, ModelRequest], ModelTrace | None] | None = None


class _Entry:
    """One draft call: waiting for its arguments or its turn, running, or ended."""

    __slots__ = (
        "adopted_by",
        "deps",
        "end",
        "final",
        "idx",
        "key",
        "kwargs",
        "line",
        "outcome",
        "start",
        "swept",
        "task",
        "tool",
        "validated",
    )

    def __init__(self, ev: TaskParsed, tool: Tool, kwargs: dict[str, Any], outcome: asyncio.Future[Outcome]) -> None:
        self.idx = ev.idx
        self.tool = tool
        self.kwargs = kwargs
        self.deps = ev.deps
        self.line = ev.line
        self.outcome = outcome
        self.validated: dict[str, Any] = {}
        self.key: Hashable | None = None
        self.task: asyncio.Task[None] | None = None
        self.start: float | None = None
        self.end: float | None = None
        self.adopted_by: int | None = None
        self.swept = False  # no real task can take it any more
        self.final = False  # its SpeculativeCall is made


class Speculator:
    """One round's speculation: reads the draft, starts its safe calls, matches the real tasks.

    Args:
        tools: the run's tools by name.
        limits_for: each tool's limits.
        records: the run's records (earlier rounds' results, for a draft's ``$N`` below
            ``draft.request.first_task``).
        round: the round number.
        draft: the drafter, its request and the run's log.
        tg: the round's task group: the reader and the speculative calls run in it.
        now: the round's clock.
        emit: the run's listener, or ``None``.
    """

    def __init__(
        self,
        *,
        tools: Mapping[str, Tool],
        limits_for: Callable[[Tool], ToolLimits],
        records: Mapping[int, TaskRecord],
        round: int,
        draft: Draft,
        tg: asyncio.TaskGroup,
        now: Callable[[], float],
        emit: EventHandler | None,
    ) -> None:
        self.tools = tools
        self.limits_for = limits_for
        self.records = records
        self.round = round
        self.draft = draft
        self.log = draft.log
        self.first_task = draft.request.first_task
        self.tg = tg
        self.now = now
        self.emit = emit
        self.sem = asyncio.Semaphore(draft.max_speculative)
        self.threads: ThreadPool | None = None
        self.entries: dict[int, _Entry] = {}
        self.by_key: dict[Hashable, _Entry] = {}
        self.written: set[Hashable] = set()  # keys of the real tasks that were ready
        self.expected: dict[int, str] = {}  # real tasks of safe tools not yet ready: idx -> tool
        self.ended = False
        self.known = frozenset(i for i in records if i < self.first_task)
        self.reader = tg.create_task(self._read(), name="llmcompiler: draft")

    # -- the draft

    async def _read(self) -> None:
        model = self.draft.model
        name = model_name(model)
        parser = PlanParser(self.known)
        read = 0
        cut: str | None = None
        trace = None if self.draft.trace is None else self.draft.trace(name, self.draft.request)
        try:
            async with contextlib.aclosing(model_events(model, self.draft.request)) as events:
                async for event in events:
                    if isinstance(event, str):
                        if trace is not None:
                            trace.text()
                        read += len(event)
                        if read > MAX_DRAFT_CHARS:
                            self.log.error(f"the draft ran past {MAX_DRAFT_CHARS} characters; read no further")
                            return
                        if not parser.ended:
                            for ev in parser.feed(event):
                                self._drafted(ev)
                    elif isinstance(event, Usage):
                        self.log.add_usage(name, event)
                        if trace is not None:
                            trace.usage(event)
                    elif isinstance(event, Truncated):
                        cut = event.reason  # a cut draft: the calls written so far stand
                    elif isinstance(event, ToolCall):
                        self.log.error(f"the drafter answered with a native tool call ({event.name}), not a plan")
                        return
            if not parser.ended:
                for ev in parser.close():
                    self._drafted(ev)
        except asyncio.CancelledError:
            if trace is not None:
                trace.end(error=GeneratorExit())  # closed at the real plan's end
            raise
        except Exception as exc:  # the drafter failed: the run goes on as without it
            self.log.error(f"the drafter failed: {describe(exc)}")
            if trace is not None:
                trace.end(error=exc)
        finally:
            if trace is not None:
                trace.end(cut=cut)  # a no-op when ended above

    def _drafted(self, ev: PlanEvent) -> None:
        if not isinstance(ev, TaskParsed) or ev.tool == JOIN:
            return
        self.log.drafted += 1
        tool = self.tools.get(ev.tool)
        if self.ended or tool is None or len(self.entries) >= MAX_DRAFT_CALLS or ev.idx in self.entries:
            return
        if not speculatable(tool, self.limits_for(tool)):
            return  # the safety rule: this call is never made
        try:
            kwargs = bind_arguments(tool, ev.args, ev.kwargs)
        except ArgumentError:
            return
        entry = _Entry(ev, tool, kwargs, asyncio.get_running_loop().create_future())
        self.entries[ev.idx] = entry
        entry.task = self.tg.create_task(self._speculate(entry), name=f"llmcompiler: draft call {ev.idx}")

    def _result_of(self, idx: int) -> Any:
        if idx >= self.first_task:
            return self.entries[idx].outcome.result()[0]
        return self.records[idx].result

    async def _speculate(self, entry: _Entry) -> None:
        try:
            if not await self._arguments_ready(entry):
                return
            async with self.sem:
                entry.start = start = self.now()
                if self.emit is not None:
                    self.emit(
                        SpeculationStarted(
                            round=self.round, draft=entry.idx, tool=entry.tool.name, line=entry.line, time=start
                        )
                    )
                if self.threads is None:
                    self.threads = ThreadPool(self.draft.max_speculative)
                timeout = self.limits_for(entry.tool).timeout
                try:
                    result = await invoke(entry.tool, entry.validated, start, timeout=timeout, threads=self.threads)
                except Failed as failed:
                    outcome: Outcome = (None, failed.message)
                else:
                    outcome = (result, None)
                entry.end = self.now()
                entry.outcome.set_result(outcome)
        except asyncio.CancelledError:
            if entry.start is not None and entry.end is None:
                entry.end = self.now()
                self._final(entry, "cancelled")
            raise
        finally:
            if not entry.outcome.done():
                entry.outcome.set_result((None, "not run"))

    async def _arguments_ready(self, entry: _Entry) -> bool:
        """Wait for the draft calls ``entry`` uses; resolve and validate its arguments, and
        register its key. ``False``: it cannot or need not run."""
        for dep in sorted(entry.deps):
            if dep >= self.first_task:
                used = self.entries.get(dep)
                if used is None:
                    return False  # a draft call that is not made
                _, error = await asyncio.shield(used.outcome)
                if error is not None:
                    return False
            else:
                record = self.records.get(dep)
                if record is None or not record.ok:
                    return False
        try:
            kwargs = {k: resolve(v, self._result_of) for k, v in entry.kwargs.items()} if entry.deps else entry.kwargs
            entry.validated = entry.tool.validate(kwargs)
        except Exception:  # arguments its tool refuses, a path that leads nowhere: not made
            return False
        key = memo_key(entry.tool.name, entry.validated)
        if key is None or key in self.written or key in self.by_key or (self.ended and not self._may_match(entry)):
            return False
        entry.key = key
        self.by_key[key] = entry
        return True

    # -- the real plan

    def expect(self, node: Node) -> None:
        """A real task of ``node.tool`` was planned: a speculative call may serve it once it is ready."""
        if node.tool.speculation_safe:
            self.expected[node.idx] = node.name

    def leave(self, idx: int) -> None:
        """Real task ``idx`` will take no speculative call (it failed before running, or was given up)."""
        self.expected.pop(idx, None)
        self._sweep()

    def claim(self, node: Node, validated: Mapping[str, Any]) -> _Entry | None:
        """Real task ``node`` is ready with ``validated`` arguments: the speculative call that
        serves it (started, with the same key), or ``None`` (it makes its own call)."""
        self.expected.pop(node.idx, None)
        found: _Entry | None = None
        key = memo_key(node.name, validated)
        if key is not None:
            self.written.add(key)
            entry = self.by_key.get(key)
            if entry is not None and entry.adopted_by is None and not entry.final:
                if entry.start is None:
                    self._drop(entry)  # still waiting for its turn: the real call goes instead
                elif entry.outcome.done() and entry.outcome.result()[1] is not None:
                    self._final(entry, _ended(entry))
                else:
                    entry.adopted_by = node.idx
                    found = entry
        self._sweep()
        return found

    def adopted(self, entry: _Entry, idx: int, ready: float, error: str | None) -> SpeculativeHit | None:
        """Task ``idx`` took ``entry``'s outcome: its hit, or ``None`` when the call failed."""
        if error is not None:
            self._final(entry, "failed")
            return None
        assert entry.start is not None
        assert entry.end is not None
        saved = max(0.0, min(ready - entry.start, entry.end - entry.start))
        hit = SpeculativeHit(draft=entry.idx, started=entry.start, ready=ready, saved_s=saved, joined=entry.end > ready)
        self._final(entry, "hit", saved)
        return hit

    def plan_ended(self) -> None:
        """The real plan ended: stop reading the draft; cancel what no task can take."""
        if self.ended:
            return
        self.ended = True
        self.reader.cancel()
        self._sweep()

    def _may_match(self, entry: _Entry) -> bool:
        return entry.tool.name in self.expected.values()

    def _sweep(self) -> None:
        if not self.ended:
            return
        waiting = set(self.expected.values())  # the tools of the real tasks still to come
        for entry in list(self.entries.values()):
            if entry.adopted_by is None and not entry.swept and entry.tool.name not in waiting:
                self._drop(entry)

    def _drop(self, entry: _Entry) -> None:
        """No real task will take ``entry``: cancel it if it waits or runs, end it if done."""
        entry.swept = True
        if entry.task is not None and not entry.task.done() and not entry.outcome.done():
            entry.task.cancel()
        elif entry.start is not None and entry.outcome.done():
            self._final(entry, _ended(entry))

    def _final(self, entry: _Entry, state: SpeculativeState, saved_s: float = 0.0) -> None:
        if entry.final or entry.start is None:
            return
        entry.final = True
        error = entry.outcome.result()[1] if state == "failed" and entry.outcome.done() else None
        call = SpeculativeCall(
            round=self.round,
            draft=entry.idx,
            tool=entry.tool.name,
            args=entry.validated,
            line=entry.line,
            start=entry.start,
            end=entry.end if entry.end is not None else self.now(),
            state=state,
            adopted_by=entry.adopted_by if state == "hit" else None,
            error=error,
        )
        self.log.add_call(call, saved_s)
        if self.emit is not None:
            self.emit(SpeculationEnded(call=call))

    def close(self) -> None:
        """The round is over (every speculative call has ended): report those no sweep reached;
        let the speculative threads go."""
        for entry in self.entries.values():
            if entry.start is not None and entry.outcome.done():
                self._final(entry, _ended(entry))  # a no-op for those already reported
        if self.threads is not None:
            self.threads.shutdown()


def _ended(entry: _Entry) -> SpeculativeState:
    """How a finished speculative call that served no task ended."""
    return "missed" if entry.outcome.result()[1] is None else "failed"
