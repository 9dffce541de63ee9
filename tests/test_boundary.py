"""The public boundary: no entry point ever raises an exception group (issue 12).

Every entry point (``LLMCompiler.arun``, ``astream``, ``arun_many``, ``execute_plan`` and the
baselines' ``arun``) is driven through the same faults, and what leaves it is checked:

- an ``on_event`` handler raising an exception: that exception, as itself, with the finished
  records in ``.tasks`` and a note saying a handler ended the run;
- a handler raising an exception group of its own: one of its exceptions (as ``unwrap_group``
  chooses), with a note naming the group; a group of nothing but cancellations is a
  ``RunError`` (a caller cannot tell a ``CancelledError`` from its own cancellation);
- a handler raising ``SystemExit`` or ``KeyboardInterrupt`` (alone or in a group): that, as itself;
- several tools failing at the same moment, in every way a tool can (an exception group of
  their own included): each fails its own task, and the run answers;
- a handler failing while many tool calls are in flight: its exception, and every call cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest

from llmcompiler import (
    LLMCompiler,
    Message,
    RunError,
    RunEvent,
    RunResult,
    TaskFinished,
    TaskRecord,
    TaskStarted,
    Tool,
    ToolCall,
    execute_plan,
    tool,
)
from llmcompiler.models import Purpose
from llmcompiler.testing import FunctionLLM, Reply, ScriptedLLM
from planners import ParallelToolCallAgent, ReActAgent

Call = tuple[str, int]
"""A tool call a model makes: the tool's name and its argument ``i``."""

Handler = Callable[[RunEvent], None] | None


@dataclasses.dataclass(frozen=True)
class Entry:
    """A public entry point, run with a model that makes ``calls`` in its first turn, then answers ``done``."""

    run: Callable[[Sequence[Call], Sequence[Tool], Handler], Awaitable[Any]]
    parallel: bool = True  # whether one turn's calls run at once (ReAct makes one call a turn)
    runs: int = 1  # runs it makes at once


def _plan(calls: Sequence[Call]) -> str:
    lines = [f"{n}. {name}(i={i})" for n, (name, i) in enumerate(calls, start=1)]
    return "\n".join([*lines, f"{len(calls) + 1}. join()"])


def _compiler(calls: Sequence[Call], tools: Sequence[Tool], handler: Handler) -> LLMCompiler:
    return LLMCompiler(llm=ScriptedLLM([_plan(calls), "Action: Finish(done)"]), tools=tools, on_event=handler)


async def _arun(calls: Sequence[Call], tools: Sequence[Tool], handler: Handler) -> Any:
    return await _compiler(calls, tools, handler).arun("q")


async def _astream(calls: Sequence[Call], tools: Sequence[Tool], handler: Handler) -> Any:
    async with contextlib.aclosing(_compiler(calls, tools, handler).astream("q")) as stream:
        return [item async for item in stream]


async def _arun_many(calls: Sequence[Call], tools: Sequence[Tool], handler: Handler) -> Any:
    def reply(messages: Sequence[Message], purpose: Purpose) -> Reply:
        return _plan(calls) if purpose == "plan" else "Action: Finish(done)"

    agent = LLMCompiler(llm=FunctionLLM(reply), tools=tools, on_event=handler)
    return await agent.arun_many(["q1", "q2"], concurrency=2)


async def _execute_plan(calls: Sequence[Call], tools: Sequence[Tool], handler: Handler) -> Any:
    return await execute_plan(_plan(calls), tools, on_event=handler)


async def _react(calls: Sequence[Call], tools: Sequence[Tool], handler: Handler) -> Any:
    steps: list[Reply] = [f"Thought: call {name}.\nAction: {name}(i={i})" for name, i in calls]
    llm = ScriptedLLM([*steps, "Thought: all done.\nAction: Finish(done)"])
    return await ReActAgent(llm=llm, tools=tools, on_event=handler).arun("q")


async def _native(calls: Sequence[Call], tools: Sequence[Tool], handler: Handler) -> Any:
    llm = ScriptedLLM([[ToolCall(name=name, args={"i": i}) for name, i in calls], "done"])
    return await ParallelToolCallAgent(llm=llm, tools=tools, on_event=handler).arun("q")


ENTRIES: dict[str, Entry] = {
    "arun": Entry(_arun),
    "astream": Entry(_astream),
    "arun_many": Entry(_arun_many, runs=2),
    "execute_plan": Entry(_execute_plan),
    "ReActAgent.arun": Entry(_react, parallel=False),
    "ParallelToolCallAgent.arun": Entry(_native),
}


def _records(outcome: Any) -> list[TaskRecord]:
    """Every task record in what an entry point returned."""
    items = outcome if isinstance(outcome, list) else [outcome]
    records: list[TaskRecord] = []
    for item in items:
        if isinstance(item, RunResult):
            records.extend(item.tasks)
        elif isinstance(item, TaskRecord):
            records.append(item)
    return records


def _answers(outcome: Any) -> list[str]:
    items = outcome if isinstance(outcome, list) else [outcome]
    return [item.answer for item in items if isinstance(item, RunResult)]


@tool
def ok(i: int) -> int:
    """Return ``i``."""
    return i


def _on_first_finished(make: Callable[[], BaseException]) -> Callable[[RunEvent], None]:
    """A handler that raises ``make()`` on every ``TaskFinished`` (sent from inside the executor's task group)."""

    def handler(event: RunEvent) -> None:
        if isinstance(event, TaskFinished):
            raise make()

    return handler


class HandlerBug(Exception):
    """A user's bug in an ``on_event`` handler."""


def _not_a_group(exc: BaseException) -> None:
    assert not isinstance(exc, BaseExceptionGroup), f"a group left the boundary: {exc!r}"


# ---------------------------------------------------------------- a failing handler


HANDLER_FAULTS: dict[str, tuple[Callable[[], BaseException], type[BaseException], str]] = {
    # name: (what the handler raises, what leaves the run, its message)
    "exception": (lambda: HandlerBug("mine"), HandlerBug, "mine"),
    "its own group": (
        lambda: ExceptionGroup("handlers", [HandlerBug("first"), TypeError("second")]),
        HandlerBug,
        "first",
    ),
    "a nested group with a cancellation": (
        lambda: BaseExceptionGroup("outer", [asyncio.CancelledError(), ExceptionGroup("inner", [KeyError("k")])]),
        KeyError,
        "'k'",
    ),
}


@pytest.mark.parametrize("fault", list(HANDLER_FAULTS))
@pytest.mark.parametrize("entry", list(ENTRIES))
async def test_a_failing_handler_leaves_as_its_own_exception_never_a_group(entry: str, fault: str) -> None:
    make, kind, message = HANDLER_FAULTS[fault]
    with pytest.raises(BaseException) as caught:
        async with asyncio.timeout(10):
            await ENTRIES[entry].run([("ok", 1), ("ok", 2)], [ok], _on_first_finished(make))
    exc = caught.value
    _not_a_group(exc)
    assert type(exc) is kind and str(exc) == message
    # The records finished by then ride along, and a note says who ended the run.
    assert [r.result for r in exc.tasks if r.tool == "ok"]  # type: ignore[attr-defined]
    notes = getattr(exc, "__notes__", [])
    assert any("raised by an on_event handler" in note for note in notes)
    assert ("within the ExceptionGroup 'handlers' of 2 (HandlerBug, TypeError)" in notes[-1]) == (
        fault == "its own group"
    )


@pytest.mark.parametrize("entry", list(ENTRIES))
async def test_a_handler_group_of_only_cancellations_is_a_run_error(entry: str) -> None:
    # A CancelledError leaving the run would read as the caller's own cancellation.
    def make() -> BaseException:
        return BaseExceptionGroup("stop", [asyncio.CancelledError()])

    with pytest.raises(RunError, match="an on_event handler raised CancelledError \\(within the BaseExceptionGroup"):
        async with asyncio.timeout(10):
            await ENTRIES[entry].run([("ok", 1)], [ok], _on_first_finished(make))
    await asyncio.sleep(0)  # the caller itself was not cancelled


async def test_arun_many_returns_each_runs_handler_failure_unwrapped() -> None:
    handler = _on_first_finished(lambda: ExceptionGroup("handlers", [HandlerBug("each")]))
    agent = LLMCompiler(llm=FunctionLLM(lambda m, p: _plan([("ok", 1)]) if p == "plan" else "done"), tools=[ok])
    results = await agent.arun_many(["a", "b", "c"], concurrency=3, on_event=handler, return_exceptions=True)
    assert [type(r) for r in results] == [HandlerBug] * 3


# ---------------------------------------------------------------- SystemExit and KeyboardInterrupt

EXITS: dict[str, tuple[Callable[[], BaseException], type[BaseException]]] = {
    "SystemExit": (lambda: SystemExit(3), SystemExit),
    "KeyboardInterrupt": (KeyboardInterrupt, KeyboardInterrupt),
    "SystemExit in a group": (lambda: BaseExceptionGroup("h", [HandlerBug("x"), SystemExit(4)]), SystemExit),
    "KeyboardInterrupt in a group": (
        lambda: BaseExceptionGroup("h", [SystemExit(4), KeyboardInterrupt()]),
        KeyboardInterrupt,
    ),
}


@pytest.mark.parametrize("fault", list(EXITS))
@pytest.mark.parametrize("entry", list(ENTRIES))
def test_a_handler_raising_system_exit_or_ctrl_c_stops_the_program_with_it(entry: str, fault: str) -> None:
    # In a loop of its own: these end the program. They must reach the caller's own task, after
    # the run's clean-up; raised in a task of the run, they would leave the event loop directly,
    # past the caller (which would see only a cancellation) and with the run's tasks left pending.
    make, kind = EXITS[fault]
    seen: list[BaseException] = []
    left: list[asyncio.Task[Any]] = []

    async def caller() -> None:
        try:
            await ENTRIES[entry].run([("ok", 1), ("ok", 2)], [ok], _on_first_finished(make))
        except BaseException as exc:
            seen.append(exc)
            left.extend(t for t in asyncio.all_tasks() if t is not asyncio.current_task())
            raise

    with pytest.raises(BaseException) as caught:
        asyncio.run(caller())
    _not_a_group(caught.value)
    assert type(caught.value) is kind
    assert seen == [caught.value]
    assert left == []


# ---------------------------------------------------------------- several tools failing at once


class _Barrier:
    """Lets ``count`` tool calls through together, once all of them have started."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.arrived = 0
        self.open = asyncio.Event()

    async def wait(self) -> None:
        self.arrived += 1
        if self.arrived >= self.count:
            self.open.set()
        await self.open.wait()


FAILURES: dict[int, Callable[[], BaseException]] = {
    1: lambda: ValueError("bad value"),
    2: lambda: ExceptionGroup("the tool's own group", [TypeError("a"), KeyError("b")]),
    3: lambda: SystemExit(2),
    4: lambda: RuntimeError("another"),
    5: lambda: BaseExceptionGroup("with a cancellation", [asyncio.CancelledError(), OSError("c")]),
}


@pytest.mark.parametrize("entry", list(ENTRIES))
async def test_several_tools_failing_at_once_fail_only_their_own_tasks(entry: str) -> None:
    spec = ENTRIES[entry]
    barrier = _Barrier(len(FAILURES) * spec.runs if spec.parallel else 1)

    @tool
    async def fails(i: int) -> int:
        """Fail in the way numbered ``i``, at the same moment as the other calls."""
        await barrier.wait()
        raise FAILURES[i]()

    async with asyncio.timeout(10):
        outcome = await spec.run([("fails", i) for i in FAILURES], [fails], None)
    records = [r for r in _records(outcome) if r.tool == "fails"]
    assert len(records) == len(FAILURES) * spec.runs
    assert all(r.state == "failed" and (r.error or "").startswith("fails raised ") for r in records)
    assert any("ExceptionGroup" in (r.error or "") for r in records)
    if entry != "execute_plan":
        assert _answers(outcome) == ["done"] * spec.runs


# ---------------------------------------------------------------- a handler failing with many calls in flight


@pytest.mark.parametrize("group", [False, True], ids=["exception", "group"])
@pytest.mark.parametrize("entry", list(ENTRIES))
async def test_a_handler_failing_with_many_calls_in_flight_cancels_them_all(entry: str, group: bool) -> None:
    spec = ENTRIES[entry]
    calls = 6 if spec.parallel else 1  # ReAct runs one call at a time
    started: list[int] = []
    cancelled: list[int] = []
    all_running = asyncio.Event()

    @tool
    async def hangs(i: int) -> int:
        """Run until cancelled."""
        started.append(i)
        if len(started) == calls * spec.runs:
            all_running.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(i)
            raise
        return i

    @tool
    async def trigger(i: int) -> int:
        """Return once every other call is running."""
        await all_running.wait()
        return i

    def handler(event: RunEvent) -> None:
        # The trigger finishing, or ReAct's one call starting: the handler fails with calls in flight.
        if isinstance(event, TaskFinished if spec.parallel else TaskStarted):
            bug = HandlerBug("while calls ran")
            raise ExceptionGroup("handler", [bug]) if group else bug

    plan = [("hangs", i) for i in range(calls)] + ([("trigger", 0)] if spec.parallel else [])
    with pytest.raises(BaseException) as caught:
        async with asyncio.timeout(10):
            await spec.run(plan, [hangs, trigger], handler)
    _not_a_group(caught.value)
    assert isinstance(caught.value, HandlerBug)
    if spec.parallel:
        assert len(started) >= calls  # every call of (at least) the run that failed was running
    await asyncio.sleep(0)  # a call cancelled before its first step never ran: nothing to count
    assert sorted(cancelled) == sorted(started)  # no call outlived the run
