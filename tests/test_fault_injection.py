"""Fault injection mixing every tool fault of issue 10 at random, with nothing lost.

Hypothesis writes plans over sync tools (run in threads) and async tools, and draws what each
call does: succeed, raise (an ordinary exception, ``SystemExit``, ``GeneratorExit``,
``StopIteration``, ``StopAsyncIteration``, ``CancelledError``, its own ``TimeoutError``, an
exception whose message cannot be read), hang past its timeout, or return an odd object
(``10**5000``, a list nested 5,000 deep, a lone surrogate, an object whose ``__str__`` and
``__repr__`` raise, a list holding itself, a large string). A call that hangs goes to one of
two tools with a timeout (``stuck_s``, ``stuck_a``); the others have none, so a loaded machine
can slow a call but never fail one. Results are passed on whole, inside a
list, or spliced into a string. The plans run through ``execute_plan`` and through
``LLMCompiler`` with a ``ScriptedLLM``; in every case:

- nothing escapes but our ``RunError``/``UserError``, and never an exception group;
- every task has exactly one record;
- a failed task's error names its tool (and what the tool did);
- the dependents of a failed task are skipped with ``dependency N failed``;
- a call that succeeded and whose inputs could be used succeeds; an odd result fails at most the
  dependents that splice it into text.

Hung threads are released at the end of each example. Nothing here measures time.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmcompiler import (
    LLMCompiler,
    RunError,
    RunResult,
    TaskRecord,
    UserError,
    execute_plan,
    tool,
    write_timeline,
    write_trace,
)
from llmcompiler.testing import ScriptedLLM

TIMEOUT = 0.2  # how long a hung call is given (the stuck tools' own timeout)

RAISES: dict[str, str] = {  # mode -> what the task's error must mention
    "value_error": "ValueError",
    "key_error": "KeyError",
    "system_exit": "SystemExit",
    "generator_exit": "GeneratorExit",
    "stop_iteration": "StopIteration",
    "stop_async_iteration": "StopAsyncIteration",
    "cancelled": "CancelledError",
    "own_timeout": "TimeoutError",
    "unreadable": "",
    "hang": "timed out",
}
ODD = ("big_int", "deep_list", "surrogate", "unprintable", "cycle", "large_str")
MODES = ("ok", "ok", "ok", *RAISES, *ODD)


class _Hold:
    """The event hung sync calls wait on; each example gets a new one and sets it at its end."""

    event = threading.Event()


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class UnreadableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no message")


def _odd(mode: str) -> Any:
    if mode == "big_int":
        return 10**5000
    if mode == "deep_list":
        value: list[Any] = []
        for _ in range(5000):
            value = [value]
        return value
    if mode == "surrogate":
        return "lone \ud800 surrogate"
    if mode == "unprintable":
        return Unprintable()
    if mode == "cycle":
        cycle: list[Any] = [1]
        cycle.append(cycle)
        return cycle
    assert mode == "large_str"
    return "z" * 50_000


def _raise(mode: str) -> None:
    if mode == "value_error":
        raise ValueError("injected")
    if mode == "key_error":
        raise KeyError("injected")
    if mode == "system_exit":
        raise SystemExit(3)
    if mode == "generator_exit":
        raise GeneratorExit
    if mode == "stop_iteration":
        next(iter([]))
    if mode == "stop_async_iteration":
        raise StopAsyncIteration
    if mode == "cancelled":
        raise asyncio.CancelledError
    if mode == "own_timeout":
        raise TimeoutError("the tool's own deadline")
    if mode == "unreadable":
        raise UnreadableError
    raise AssertionError(mode)


@tool
def fs(mode: str, x: Any = None) -> Any:
    """A sync tool that does what ``mode`` says.

    Args:
        mode: ``ok``, a fault, or an odd result.
        x: returned when ``mode`` is ``ok``.
    """
    if mode == "ok":
        return x
    if mode in ODD:
        return _odd(mode)
    _raise(mode)
    return x


@tool
async def fa(mode: str, x: Any = None) -> Any:
    """An async tool that does what ``mode`` says.

    Args:
        mode: ``ok``, a fault, or an odd result.
        x: returned when ``mode`` is ``ok``.
    """
    if mode == "ok":
        await asyncio.sleep(0)
        return x
    if mode in ODD:
        return _odd(mode)
    _raise(mode)
    return x


@tool(timeout=TIMEOUT)
def stuck_s(mode: str, x: Any = None) -> Any:
    """A sync tool that hangs until the example ends.

    Args:
        mode: ``hang``.
        x: returned once released.
    """
    _Hold.event.wait()
    return x


@tool(timeout=TIMEOUT)
async def stuck_a(mode: str, x: Any = None) -> Any:
    """An async tool that never returns.

    Args:
        mode: ``hang``.
        x: never returned.
    """
    await asyncio.Event().wait()
    return x


TOOLS = [fs, fa, stuck_s, stuck_a]
STUCK = {"fs": "stuck_s", "fa": "stuck_a"}  # where a call that hangs goes


@dataclass(frozen=True)
class Call:
    idx: int
    tool: str
    mode: str
    dep: int | None
    form: str  # how the dependency's result is passed: whole, listed or spliced


@dataclass(frozen=True)
class Plan:
    calls: tuple[Call, ...]
    join: int

    @property
    def text(self) -> str:
        lines = []
        for c in self.calls:
            arg = (
                "7"
                if c.dep is None
                else {"whole": f"${c.dep}", "listed": f"[${c.dep}, 1]"}.get(c.form, f'"v=${c.dep}"')
            )
            lines.append(f'{c.idx}. {c.tool}("{c.mode}", {arg})')
        return "\n".join([*lines, f"{self.join}. join()"]) + "\n"


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    n = draw(st.integers(min_value=1, max_value=7))
    calls = []
    for idx in range(1, n + 1):
        dep = draw(st.one_of(st.none(), st.integers(1, idx - 1))) if idx > 1 else None
        mode = draw(st.sampled_from(MODES))
        name = draw(st.sampled_from(["fs", "fa"]))
        calls.append(
            Call(
                idx=idx,
                tool=STUCK[name] if mode == "hang" else name,
                mode=mode,
                dep=dep,
                form=draw(st.sampled_from(["whole", "listed", "spliced"])),
            )
        )
    return Plan(calls=tuple(calls), join=n + 1)


async def _chunks(text: str, size: int) -> AsyncIterator[str]:
    for i in range(0, len(text), size):
        yield text[i : i + size]


def _run(make: Callable[[], Awaitable[Any]]) -> tuple[Any, BaseException | None]:
    """Run ``make()`` on a fresh loop; return its value, or our error (with records in ``tasks``).

    Anything else escaping fails the test, naming it. Hung threads are released at the end.
    """
    _Hold.event = release = threading.Event()

    async def main() -> tuple[Any, BaseException | None]:
        try:
            return await make(), None
        except (RunError, UserError) as exc:
            return None, exc
        finally:
            release.set()

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # the point of the test: nothing else may escape
        release.set()
        group = " (an exception group)" if isinstance(exc, BaseExceptionGroup) else ""
        pytest.fail(f"{type(exc).__name__}{group} escaped the run: {exc!r}")


def _check(plan: Plan, records: list[TaskRecord], *, joined: bool) -> None:
    counts = Counter(r.idx for r in records)
    expected = {c.idx for c in plan.calls} | ({plan.join} if joined else set())
    assert set(counts) >= {c.idx for c in plan.calls}, f"records lost: {sorted(expected - set(counts))}"
    assert set(counts) <= expected | {plan.join}, f"stray records: {sorted(set(counts) - expected)}"
    assert all(n == 1 for n in counts.values()), f"doubled records: {counts}"
    by = {r.idx: r for r in records}
    odd_value: dict[int, bool] = {}  # whether a task's result holds an odd object
    for c in plan.calls:
        record = by[c.idx]
        dep = by[c.dep] if c.dep is not None else None
        odd_value[c.idx] = record.ok and (
            c.mode in ODD or (c.mode == "ok" and c.dep is not None and c.form != "spliced" and odd_value[c.dep])
        )
        if dep is not None and dep.error is not None:
            assert record.state == "skipped", record
            assert record.error is not None and f"dependency {c.dep} failed" in record.error, record.error
            continue
        if record.error is not None:
            assert c.tool in record.error, f"task {c.idx}'s error does not name its tool: {record.error!r}"
        if c.dep is not None and c.form == "spliced" and odd_value[c.dep] and record.start is None:
            continue  # an odd result that cannot be written as text failed this dependent alone, before its call
        if c.mode in RAISES:
            assert record.error is not None, f"task {c.idx} ({c.mode}) did not fail"
            assert RAISES[c.mode] in record.error, record.error
            if c.mode == "own_timeout":
                assert "timed out after" not in record.error, "the tool's own TimeoutError read as the executor's"
        else:
            assert record.error is None, f"task {c.idx} ({c.mode}, {c.form} ${c.dep}) failed: {record.error}"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans(), chunk=st.integers(1, 40), max_concurrency=st.sampled_from([None, 1, 3]))
def test_execute_plan_contains_every_fault(plan: Plan, chunk: int, max_concurrency: int | None) -> None:
    # issue 10 rows 6-10 and 16, mixed at random
    records, error = _run(lambda: execute_plan(_chunks(plan.text, chunk), TOOLS, max_concurrency=max_concurrency))
    if error is not None:
        records = list(getattr(error, "tasks", []))
    _check(plan, records, joined=error is None)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans(), chunk_tokens=st.integers(1, 8))
def test_llmcompiler_runs_answer_over_every_fault_and_keep_every_record(plan: Plan, chunk_tokens: int) -> None:
    # issue 10 rows 6-10, the run boundary, traces and timelines
    llm = ScriptedLLM([plan.text, "Thought: enough.\nAction: Finish(done)"], chunk_tokens=chunk_tokens)
    agent = LLMCompiler(llm=llm, tools=TOOLS)
    result, error = _run(lambda: agent.arun("what do the tools do?"))
    assert error is None, f"the run raised {error!r}"
    assert isinstance(result, RunResult)
    assert result.answer == "done"
    _check(plan, result.tasks, joined=True)
    for message in llm.requests[-1].messages:
        message.content.encode("utf-8")  # the joiner's prompt can be sent: no lone surrogate, whatever a tool returned
    with tempfile.TemporaryDirectory() as tmp:
        trace = write_trace(result, Path(tmp) / "trace.json", question="q")
        data = json.loads(trace.read_text(encoding="utf-8"))
        assert [t["idx"] for t in data["tasks"]] == [r.idx for r in result.tasks]
        assert write_timeline(result, Path(tmp) / "timeline.svg").stat().st_size > 0
        assert write_timeline(data, Path(tmp) / "timeline.html").stat().st_size > 0
