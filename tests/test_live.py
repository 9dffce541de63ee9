"""The live view (rendered to a recording console) and ``LLMCompiler.astream``, which feeds it."""

from __future__ import annotations

import asyncio
import contextlib
import io

import pytest
from rich.console import Console

from llmcompiler import LLMCompiler, RunError, RunResult, tool
from llmcompiler._events import JoinerDecided, PlanChunk, RoundStarted, RunEvent, TaskFinished, TaskStarted
from llmcompiler._live import LiveView
from llmcompiler._plan import PlanEnded, TaskParsed
from llmcompiler._records import TaskRecord
from llmcompiler.testing import ScriptedLLM

FAKE_KEY = "sk-test-FAKEKEY0123456789abcdef"
PLAN = (
    "Thought: look both up\n"
    '1. lookup("Tokyo")\n'
    '2. lookup("Atlantis")\n'
    "3. combine($1, $2)\n"
    '4. combine($1, "x")\n'
    "5. join()"
)


def _tools(gate: asyncio.Event | None = None) -> list[object]:
    @tool
    async def lookup(city: str) -> str:
        """Look a city up."""
        if gate is not None and city == "Tokyo":
            await gate.wait()
        if city == "Atlantis":
            raise LookupError(f"no such city (key {FAKE_KEY})")
        return f"{city}: 20C"

    @tool
    async def combine(a: str, b: str) -> str:
        """Join two texts."""
        return f"{a} | {b}"

    return [lookup, combine]


def _terminal(width: int = 110, height: int = 40) -> Console:
    return Console(record=True, force_terminal=True, width=width, height=height, color_system=None)


def _text(view: LiveView, width: int = 110) -> str:
    """One frame of the view, as text."""
    snap = Console(record=True, force_terminal=True, width=width, height=40, color_system=None, file=io.StringIO())
    snap.print(view)
    return snap.export_text()


async def _drive(agent: LLMCompiler, view: LiveView, question: str) -> RunResult:
    result: RunResult | None = None
    with view:
        async with contextlib.aclosing(agent.astream(question)) as stream:
            async for item in stream:
                if isinstance(item, RunResult):
                    result = item
                else:
                    view.handle(item)
        assert result is not None
        view.finish(result)
    return result


async def test_live_view_shows_plan_table_states_and_summary() -> None:
    gate = asyncio.Event()
    llm = ScriptedLLM([PLAN, "Action: Finish(Tokyo is 20C)"])
    agent = LLMCompiler(llm=llm, tools=_tools(gate))
    console = _terminal()
    view = LiveView(console, auto_refresh=False)
    assert view.live
    frames: list[str] = []
    result: RunResult | None = None
    with view:
        async with contextlib.aclosing(agent.astream("Weather?")) as stream:
            async for item in stream:
                if isinstance(item, RunResult):
                    result = item
                    continue
                view.handle(item)
                if isinstance(item, TaskFinished) and item.record.idx == 3:
                    frames.append(_text(view, 200))  # 1 still runs (gated), 2 failed, 3 given up, 4 waits on 1
                    gate.set()
        assert result is not None
        view.finish(result)

    during = frames[0]
    assert "Plan · round 1" in during
    assert 'lookup("Tokyo")' in during and "Thought: look both up" in during
    rows = {line.split("│")[0].strip(): line for line in during.splitlines() if "│" in line and "╭" not in line}
    assert "lookup" in rows["1"] and '"Tokyo"' in rows["1"] and "running" in rows["1"]
    assert "failed" in rows["2"] and "no such city" in rows["2"]
    assert "skipped" in rows["3"] and "1, 2" in rows["3"] and "dependency 2 failed" in rows["3"]
    assert "waiting" in rows["4"] and '$1, "x"' in rows["4"]
    assert "1 waiting · 1 running · 1 failed · 1 skipped" in during

    final = _text(view, 200)  # after the run: every task, finished
    rows = {line.split("│")[0].strip(): line for line in final.splitlines() if "│" in line and "╭" not in line}
    assert set(rows) == {"1", "2", "3", "4"}
    assert "done" in rows["1"] and "Tokyo: 20C" in rows["1"] and "ms" in rows["1"]
    assert "done" in rows["4"] and "Tokyo: 20C | x" in rows["4"]
    assert "joiner: round 1: answer ready" in final

    out = " ".join(console.export_text().split())
    assert "Answer" in out and "Tokyo is 20C" in out
    assert f"{result.total_s:.2f}s total" in out
    assert f"one after another would take {result.sequential_s:.2f}s" in out
    assert f"tokens {result.usage.prompt_tokens} in / {result.usage.completion_tokens} out" in out
    assert "cost unknown" in out
    assert FAKE_KEY not in out and "FAKEKEY" not in during and "[redacted]" in during


async def test_terminal_view_redraws_in_place() -> None:
    raw = io.StringIO()
    console = Console(file=raw, force_terminal=True, width=100, height=40, color_system=None)
    llm = ScriptedLLM([PLAN, "Action: Finish(ok)"])
    await _drive(LLMCompiler(llm=llm, tools=_tools()), LiveView(console, auto_refresh=False), "q")
    written = raw.getvalue()
    assert "\x1b[1A" in written and "\x1b[2K" in written  # cursor up, erase line: the same lines redrawn
    assert written.count("Plan · round 1") > 3  # many frames, one place


async def test_plain_lines_when_not_a_terminal() -> None:
    raw = io.StringIO()
    console = Console(file=raw, width=200, highlight=False)
    view = LiveView(console)
    assert not view.live
    llm = ScriptedLLM([PLAN, "Action: Replan(more)", '6. lookup("Oslo")\n7. join()', "Action: Finish(ok)"])
    await _drive(LLMCompiler(llm=llm, tools=_tools()), view, "q")
    out = raw.getvalue()
    assert "\x1b[" not in out
    lines = [line.split("s ", 1)[1] for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert 'plan  1. lookup("Tokyo")' in lines
    assert "start 1. lookup" in lines
    assert "done  1. lookup → Tokyo: 20C" in lines
    assert "fail  2. lookup → lookup raised LookupError: no such city (key [redacted])" in lines
    assert "skip  3. combine → dependency 2 failed: lookup raised LookupError: no such city (key [redacted])" in lines
    assert "join  new plan needed: more" in lines
    assert "round 2: a new plan (more)" in lines
    assert "done  6. lookup → Oslo: 20C" in lines
    assert "Answer: ok" in out and "one after another" in out
    assert "FAKEKEY" not in out


def test_long_runs_keep_unfinished_tasks_on_screen() -> None:
    console = Console(record=True, force_terminal=True, width=100, height=30, color_system=None)
    view = LiveView(console, live=True, auto_refresh=False, clock=lambda: 10.0)
    view.handle(RoundStarted(round=1, feedback=None))
    for i in range(1, 61):
        view.handle(
            TaskParsed(idx=i, tool="work", args=(i,), kwargs={}, deps=frozenset(), thought=None, line=f"{i}. work({i})")
        )
    for i in range(1, 56):
        rec = TaskRecord(idx=i, tool="work", args={"x": i}, deps=frozenset(), thought=None, result=i, start=1, end=2)
        view.handle(TaskFinished(record=rec))
    view.handle(TaskStarted(idx=56, tool="work", time=9.0))
    frame = _text(view, 100)
    shown = [line.split("│")[0].strip() for line in frame.splitlines() if "│" in line and "╭" not in line]
    assert len(frame.splitlines()) <= 30  # fits the screen
    assert {"56", "57", "58", "59", "60"} <= set(shown)  # running and waiting tasks are never hidden
    assert "more task(s) not shown" in frame
    row56 = next(line for line in frame.splitlines() if line.startswith("56 "))
    assert "running" in row56 and "1.00s" in row56  # running time counts on the view's clock
    view.final = True
    assert len([line for line in _text(view, 100).splitlines() if "│ work" in line]) == 60


def test_plan_text_streams_into_the_panel() -> None:
    view = LiveView(Console(force_terminal=True, width=80, file=io.StringIO()), live=True, auto_refresh=False)
    view.handle(RoundStarted(round=1, feedback=None))
    for chunk in ["1. look", 'up("To', f'kyo", key="{FAKE_KEY}")\n2. jo']:
        view.handle(PlanChunk(text=chunk, time=0.0))
    frame = _text(view, 80)
    assert "streaming…" in frame
    assert '1. lookup("Tokyo", key="[redacted]")' in frame and "2. jo" in frame  # a key split across chunks too
    view.handle(PlanEnded(reason="join"))
    view.handle(JoinerDecided(action="finish", text="x", thought=None))
    assert "Plan · round 1 · done" in _text(view, 80)


# -- astream: the async iterator of events


async def test_astream_yields_every_event_then_the_result() -> None:
    seen: list[RunEvent] = []
    llm = ScriptedLLM([PLAN, "Action: Finish(ok)"])
    agent = LLMCompiler(llm=llm, tools=_tools(), on_event=seen.append)
    items = [item async for item in agent.astream("q")]
    assert isinstance(items[-1], RunResult) and items[-1].answer == "ok"
    events = [i for i in items[:-1] if not isinstance(i, RunResult)]
    assert events == seen  # the same events, in the same order, as the callback gets
    kinds = [e.kind for e in events]
    assert kinds[0] == "round" and kinds[-1] == "joined"
    assert {"chunk", "task", "thought", "started", "finished", "end"} <= set(kinds)
    assert len(events) == len(items) - 1  # one result, last


async def test_astream_raises_the_run_error_after_its_events() -> None:
    llm = ScriptedLLM([PLAN])  # no joiner reply
    items: list[object] = []

    async def consume() -> None:
        async for item in LLMCompiler(llm=llm, tools=_tools()).astream("q"):
            items.append(item)

    with pytest.raises(RunError) as caught:
        await consume()
    assert [t.idx for t in caught.value.tasks][:4] == [1, 2, 3, 4]
    assert any(isinstance(i, TaskFinished) for i in items)


async def test_stopping_the_stream_cancels_the_run() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    @tool
    async def hang() -> str:
        """Never finishes by itself."""
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "unreachable"

    agent = LLMCompiler(llm=ScriptedLLM(["1. hang()\n2. join()", "Action: Finish(x)"]), tools=[hang])
    async with contextlib.aclosing(agent.astream("q")) as stream:
        async for item in stream:
            if isinstance(item, TaskStarted):
                break
    assert started.is_set() and cancelled.is_set()  # closed: the tool call was cancelled and unwound
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


async def test_cancelling_the_consumer_cancels_the_run() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    @tool
    async def hang() -> str:
        """Never finishes by itself."""
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "unreachable"

    agent = LLMCompiler(llm=ScriptedLLM(["1. hang()\n2. join()", "Action: Finish(x)"]), tools=[hang])

    async def consume() -> None:
        async with contextlib.aclosing(agent.astream("q")) as stream:
            async for _ in stream:
                pass

    consumer = asyncio.create_task(consume())
    await started.wait()
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    assert cancelled.is_set()
