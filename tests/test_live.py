"""The live view (rendered to a recording console) and ``LLMCompiler.astream``, which feeds it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io

import pytest
from rich.console import Console

from llmcompiler import LLMCompiler, RunError, RunResult, tool
from llmcompiler._events import (
    AnswerChunk,
    JoinerDecided,
    PlanChunk,
    RoundStarted,
    RunEvent,
    TaskFinished,
    TaskStarted,
)
from llmcompiler._live import LiveView, closing_lines, tool_times
from llmcompiler._plan import PlanEnded, TaskParsed
from llmcompiler._records import RunResult as Result
from llmcompiler._records import TaskRecord
from llmcompiler._types import Usage
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

    final = _text(view, 200)  # after the run: the plan above the table of every task, finished
    assert "Plan · round 1" in final and 'combine($1, "x")' in final
    assert "2. lookup failed: lookup raised LookupError: no such city (key [redacted])" in final
    rows = {line.split("│")[0].strip(): line for line in final.splitlines() if " │ " in line[:4]}
    assert set(rows) == {"1", "2", "3", "4"}
    assert "done" in rows["1"] and "Tokyo: 20C" in rows["1"] and "ms" in rows["1"]
    assert "done" in rows["4"] and "Tokyo: 20C | x" in rows["4"]
    assert "joiner: round 1: answer ready" in final

    out = " ".join(console.export_text().split())
    assert "Answer" in out and "Tokyo is 20C" in out
    sequential, parallel = tool_times(result.tasks)
    assert f"tools: {sequential:.2f} s one after another, {parallel:.2f} s in parallel" in out
    assert f"run: {result.total_s:.2f} s with the model; 4 task(s), 1 round(s)" in out
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
    assert "Answer: ok" in out and "s one after another, " in out and " s in parallel" in out
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


# -- the joiner's spinner, the plan at the end, whole errors, the closing lines (issue 11)


def _parsed(idx: int, tool: str = "work", deps: frozenset[int] = frozenset()) -> TaskParsed:
    return TaskParsed(idx=idx, tool=tool, args=(), kwargs={}, deps=deps, thought=None, line=f"{idx}. {tool}()")


def _record(
    idx: int, start: float | None, end: float | None, *, error: str | None = None, round: int = 1
) -> TaskRecord:
    return TaskRecord(
        idx=idx,
        tool="work",
        args={},
        deps=frozenset(),
        thought=None,
        result=None if error else f"r{idx}",
        error=error,
        start=start,
        end=end,
        round=round,
        line=f"{idx}. work()",
    )


def _round_one(view: LiveView, *, error: str | None = None) -> None:
    """Plan three tasks, run them (the second fails with ``error`` when given), end the plan."""
    view.handle(RoundStarted(round=1, feedback=None))
    view.handle(PlanChunk(text="1. work()\n2. work()\n3. work()\n4. join()", time=0.0))
    for i in (1, 2, 3):
        view.handle(_parsed(i))
    view.handle(_parsed(4, "join"))
    view.handle(PlanEnded(reason="join"))
    for i in (1, 2, 3):
        view.handle(TaskStarted(idx=i, tool="work", time=1.0))
    view.handle(TaskFinished(record=_record(1, 1.0, 1.5)))
    view.handle(TaskFinished(record=_record(2, 1.0, 1.2, error=error if error is not None else None)))


def test_a_spinner_says_the_joiner_is_reading_the_results() -> None:
    now = [2.0]
    view = LiveView(_terminal(), live=True, auto_refresh=False, clock=lambda: now[0])
    _round_one(view)
    assert "joiner reading" not in _text(view)  # task 3 still runs: the joiner has not started
    assert view.joining_since is None
    view.handle(TaskFinished(record=_record(3, 1.0, 1.7)))
    now[0] = 3.5
    frame = _text(view)
    assert "joiner reading 3 results… 1.8s" in frame  # since the last task ended (1.7), on the view's clock
    view.handle(JoinerDecided(action="finish", text="done", thought=None))
    assert "joiner reading" not in _text(view)  # it answered: no spinner


def test_the_spinner_waits_for_the_plan_to_end() -> None:
    view = LiveView(_terminal(), live=True, auto_refresh=False, clock=lambda: 2.0)
    view.handle(RoundStarted(round=1, feedback=None))
    view.handle(_parsed(1))
    view.handle(TaskStarted(idx=1, tool="work", time=1.0))
    view.handle(TaskFinished(record=_record(1, 1.0, 1.5)))
    assert "joiner reading" not in _text(view)  # every task so far finished, but the plan goes on
    view.handle(PlanEnded(reason="stream_end"))
    assert "joiner reading 1 result… 0.0s" in _text(view)


def test_plain_lines_say_when_the_joiner_starts_reading() -> None:
    raw = io.StringIO()
    view = LiveView(Console(file=raw, width=80, highlight=False), clock=lambda: 2.0)
    _round_one(view)
    view.handle(TaskFinished(record=_record(3, 1.0, 1.7)))
    view.handle(JoinerDecided(action="finish", text="done", thought=None))
    lines = [line.split("s ", 1)[1] for line in raw.getvalue().splitlines()]
    assert lines[-3:] == ["done  3. work → r3", "join  joiner reading 3 results…", "join  answer ready"]
    assert sum("joiner reading" in line for line in lines) == 1  # said once, when it begins


def test_the_plan_stays_on_the_screen_at_the_end() -> None:
    console = Console(record=True, force_terminal=True, width=100, height=40, color_system=None, file=io.StringIO())
    view = LiveView(console, auto_refresh=False, clock=lambda: 2.0)
    with view:
        _round_one(view)
        view.handle(TaskFinished(record=_record(3, 1.0, 1.7)))
        view.handle(JoinerDecided(action="replan", text="more", thought=None))
        view.handle(RoundStarted(round=2, feedback="more"))
        view.handle(PlanChunk(text="5. work()\n6. join()", time=2.0))
        view.handle(_parsed(5))
        view.handle(PlanEnded(reason="join"))
        view.handle(TaskStarted(idx=5, tool="work", time=2.5))
        view.handle(TaskFinished(record=_record(5, 2.5, 2.6, round=2)))
        view.handle(JoinerDecided(action="finish", text="ok", thought=None))
    last = console.export_text().split("Plan · round 1")[-1]  # the last frame, as it stays
    assert "Plan · round 2" in last
    plan1, rest = last.split("Plan · round 2")
    assert "1. work()" in plan1 and "3. work()" in plan1 and "4. join()" in plan1
    assert "5. work()" in rest and "6. join()" in rest
    assert rest.index("6. join()") < rest.index("│ work")  # the plans above the table
    assert "streaming" not in last and "joiner reading" not in last


def test_a_run_that_fails_mid_plan_keeps_its_plan_marked_incomplete() -> None:
    console = Console(record=True, force_terminal=True, width=100, height=40, color_system=None, file=io.StringIO())
    view = LiveView(console, auto_refresh=False, clock=lambda: 2.0)
    with view:
        view.handle(RoundStarted(round=1, feedback=None))
        view.handle(PlanChunk(text="1. work()\n2. wo", time=0.0))
        view.handle(_parsed(1))
    last = console.export_text().split("Plan · round 1")[-1]
    assert last.startswith(" · incomplete") and "2. wo" in last


def test_a_failed_tasks_whole_error_is_shown_under_the_table() -> None:
    error = "work raised ValueError: " + " ".join(f"part{i:03d}" for i in range(40)) + f" key {FAKE_KEY} end"
    assert len(error) > 300
    console = Console(record=True, force_terminal=True, width=80, height=40, color_system=None, file=io.StringIO())
    view = LiveView(console, auto_refresh=False, clock=lambda: 2.0)
    with view:
        _round_one(view, error=error + "\x1b[2J")
        view.handle(TaskFinished(record=_record(3, 1.0, 1.7)))
    last = console.export_text().split("Plan · round 1")[-1]
    table, below = last.split("2. work failed: ", 1)
    assert "…" in table  # the table's cell is cut to the screen
    whole = " ".join(below.split("0.0s ·")[0].split())  # wrapped to 80 columns: join the lines again
    assert whole == error.replace(FAKE_KEY, "[redacted]") + "\\x1b[2J"  # whole, secret out, controls escaped
    assert "FAKEKEY" not in console.export_text()


def test_a_task_given_up_for_its_own_reason_shows_it_whole_and_a_dependents_does_not() -> None:
    unknown = "plan line '7. tiem()': unknown tool 'tiem' (tools: " + ", ".join(f"tool{i}" for i in range(40)) + ")"
    console = Console(record=True, force_terminal=True, width=80, height=40, color_system=None, file=io.StringIO())
    view = LiveView(console, auto_refresh=False, clock=lambda: 2.0)
    with view:
        _round_one(view, error="boom")
        view.handle(TaskFinished(record=_record(3, None, None, error="dependency 2 failed: boom")))
        view.handle(_parsed(7))
        view.handle(TaskFinished(record=_record(7, None, None, error=unknown)))
    last = console.export_text().split("Plan · round 1")[-1]
    below = " ".join(last.split("2. work failed: boom", 1)[1].split())
    assert below.startswith("7. work skipped: " + unknown)  # whole: the known tools' list is not cut
    assert "3. work skipped" not in last  # its cell says "dependency 2 failed": the error is shown above


def test_plain_lines_carry_a_failed_tasks_whole_error() -> None:
    error = "work raised ValueError: " + "x" * 400
    raw = io.StringIO()
    view = LiveView(Console(file=raw, width=80, highlight=False), clock=lambda: 2.0)
    _round_one(view, error=error)
    line = next(line for line in raw.getvalue().splitlines() if "fail " in line)
    assert line.endswith("fail  2. work → " + error)  # one line, not cut, not wrapped at 80


def test_tool_times_sum_durations_and_the_time_some_tool_ran() -> None:
    tasks = [
        _record(1, 10.0, 10.5),
        _record(2, 10.1, 10.4),
        _record(3, 10.2, 11.0, error="boom"),  # failed after running: it took its time
        _record(4, None, None, error="dependency 3 failed"),  # never ran
        dataclasses.replace(_record(5, 11.0, 11.1), tool="join"),  # not a tool
        _record(6, 20.0, 20.25, round=2),
        _record(7, 20.5, 21.0, round=2),
    ]
    sequential, parallel = tool_times(tasks)
    assert sequential == pytest.approx(0.5 + 0.3 + 0.8 + 0.25 + 0.5)
    # Some tool ran 10.0-11.0, 20.0-20.25 and 20.5-21.0: the gaps (the model writing, joining,
    # replanning) are not tool time.
    assert parallel == pytest.approx(1.0 + 0.25 + 0.5)
    result = Result(
        answer="a", tasks=tasks, rounds=2, usage=Usage(prompt_tokens=7, completion_tokens=3), start=0, end=25
    )
    assert closing_lines(result) == (
        "tools: 2.35 s one after another, 1.75 s in parallel (1.3x)",
        "run: 25.00 s with the model; 6 task(s), 2 round(s); tokens 7 in / 3 out; cost unknown",
    )


def test_the_closing_line_when_no_tool_ran() -> None:
    tasks = [_record(1, None, None, error="dependency 0 failed")]
    result = Result(answer="a", tasks=tasks, rounds=1, usage=Usage(), start=0, end=1, cost_usd=0.0123)
    assert closing_lines(result) == (
        "tools: none ran",
        "run: 1.00 s with the model; 1 task(s), 1 round(s); tokens 0 in / 0 out; $0.0123",
    )


def test_the_closing_lines_follow_the_answer_in_both_modes() -> None:
    tasks = [_record(1, 1.0, 1.4), _record(2, 1.0, 1.4), _record(3, 1.1, 1.5)]
    result = Result(answer="42", tasks=tasks, rounds=1, usage=Usage(), start=0.0, end=3.0)
    for live in (False, True):
        console = Console(record=True, force_terminal=live, width=60, color_system=None, file=io.StringIO())
        LiveView(console, live=live, auto_refresh=False).finish(result)
        text = console.export_text()
        assert "tools: 1.20 s one after another, 0.50 s in parallel (2.4x)\n" in text
        assert "run: 3.00 s with the model; 3 task(s)" in text


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


# -- the answer as it is written (issue 17)


def test_the_answer_shows_as_the_joiner_writes_it() -> None:
    view = LiveView(_terminal(), live=True, auto_refresh=False, clock=lambda: 2.0)
    _round_one(view)
    view.handle(TaskFinished(record=_record(3, 1.0, 1.7)))
    assert "joiner reading 3 results" in _text(view)
    view.handle(AnswerChunk(text="Tokyo is"))
    frame = _text(view)
    assert "Answer · writing…" in frame and "Tokyo is" in frame
    assert "joiner reading" not in frame  # the answer itself says the joiner is at work
    view.handle(AnswerChunk(text=" 20C"))
    view.handle(JoinerDecided(action="finish", text="Tokyo is 20C", thought=None))
    frame = _text(view)
    assert "Tokyo is 20C" in frame and "writing" not in frame
    view.handle(RoundStarted(round=2, feedback="more"))  # a new round starts with no answer
    assert "Tokyo is" not in _text(view)


def test_a_long_answer_shows_its_last_lines_so_the_frame_fits_the_screen() -> None:
    """An answer longer than the screen (one paragraph, wrapped) would leave copies of each
    frame in the scrollback: its panel shows the last lines as they are written, as the plan's."""
    view = LiveView(_terminal(width=60, height=40), live=True, auto_refresh=False, clock=lambda: 2.0)
    _round_one(view)
    for n in range(400):
        view.handle(AnswerChunk(text=f"word{n} "))
    frame = _text(view, width=60)
    assert "lines above" in frame and "word399" in frame and "word0 " not in frame
    assert len(frame.splitlines()) <= 40


def test_a_secret_cut_across_answer_chunks_is_still_scrubbed() -> None:
    view = LiveView(_terminal(), live=True, auto_refresh=False, clock=lambda: 2.0)
    _round_one(view)
    for piece in ("the key is ", FAKE_KEY[:9], FAKE_KEY[9:]):
        view.handle(AnswerChunk(text=piece))
    frame = _text(view)
    assert "the key is [redacted]" in frame and FAKE_KEY[9:] not in frame


def test_the_final_frame_leaves_a_failed_replys_pieces_out() -> None:
    view = LiveView(_terminal(), live=True, auto_refresh=False, clock=lambda: 2.0)
    _round_one(view)
    view.handle(AnswerChunk(text="half an ans"))
    view.final = True  # the run failed: the view closes with no answer
    assert "half an ans" not in _text(view)


async def test_a_live_run_draws_the_answer_while_it_is_written() -> None:
    frames: list[str] = []
    view = LiveView(_terminal(), live=True, auto_refresh=False)

    llm = ScriptedLLM(['1. combine("a", "b")\n2. join()', "Thought: ok.\nAction: Finish(a | b, joined)"])
    agent = LLMCompiler(llm=llm, tools=_tools())
    with view:
        async with contextlib.aclosing(agent.astream("q")) as stream:
            async for item in stream:
                if isinstance(item, RunResult):
                    view.finish(item)
                else:
                    view.handle(item)
                    if isinstance(item, AnswerChunk):
                        frames.append(_text(view))
    assert frames and "Answer · writing…" in frames[0]
    assert "a | b, joined" in frames[-1]
