"""Seeing speculation: the trace, the timeline, the live view and the CLI show what a drafter's
speculative calls did, keep secrets out of it, and show nothing new without a drafter."""

from __future__ import annotations

import asyncio
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from llmcompiler import LLMCompiler, _cli, tool
from llmcompiler._events import RoundStarted, SpeculationEnded, SpeculationStarted, TaskFinished, TaskStarted
from llmcompiler._live import LiveView, speculation_line
from llmcompiler._plan import TaskParsed
from llmcompiler._records import RunResult, SpeculationSummary, SpeculativeCall, SpeculativeHit, TaskRecord
from llmcompiler._timeline import SPECULATION_COLOURS, render_timeline
from llmcompiler._trace import trace_dict, write_trace
from llmcompiler._types import Usage
from llmcompiler.models import _loader
from llmcompiler.testing import ScriptedLLM, run_virtual
from tests.test_rendering_hardening import _SVG_ATTRIBUTES, ATTACK, _Attributes

SVG = "{http://www.w3.org/2000/svg}"
FAKE_KEY = "sk-test-FAKEKEY0123456789abcdef"
T0 = 100.0  # the run's start on the loop clock


def _record(idx: int, tool: str, args: dict[str, Any], start: float | None, end: float | None, **kw: Any) -> TaskRecord:
    return TaskRecord(
        idx=idx,
        tool=tool,
        args=args,
        deps=frozenset(kw.pop("deps", ())),
        thought=None,
        result=kw.pop("result", f"{tool} result"),
        start=None if start is None else T0 + start,
        end=None if end is None else T0 + end,
        line=f"{idx}. {tool}({', '.join(repr(v) for v in args.values())})",
        attempts=1 if start is not None else 0,
        **kw,
    )


def _call(
    draft: int, tool: str, args: dict[str, Any], start: float, end: float, state: Any, **kw: Any
) -> SpeculativeCall:
    return SpeculativeCall(
        round=kw.pop("round", 1),
        draft=draft,
        tool=tool,
        args=args,
        line=kw.pop("line", None) or f"{draft}. {tool}({', '.join(repr(v) for v in args.values())})",
        start=T0 + start,
        end=T0 + end,
        state=state,
        **kw,
    )


def speculative_run() -> RunResult:
    """One round: task 1 adopted draft task 1's call (saved 0.3 s), task 2 ran its own call; draft
    task 2 was missed, draft task 3 (a secret in its arguments) cancelled, draft task 4 failed."""
    hit = SpeculativeHit(draft=1, started=T0 + 0.1, ready=T0 + 0.4, saved_s=0.3, joined=True)
    tasks = [
        _record(1, "search", {"q": "Tokyo"}, 0.1, 0.5, speculative=hit),
        _record(2, "search", {"q": "Oslo"}, 0.6, 0.9),
        TaskRecord(idx=3, tool="join", args={}, deps=frozenset({1, 2}), thought=None, line="3. join()"),
    ]
    calls = [
        _call(1, "search", {"q": "Tokyo"}, 0.1, 0.5, "hit", adopted_by=1),
        _call(2, "search", {"q": "Paris"}, 0.12, 0.45, "missed"),
        _call(3, "fetch", {"url": f"https://x.test/?key={FAKE_KEY}"}, 0.2, 0.7, "cancelled"),
        _call(4, "search", {"q": "<b>&amp;</b>"}, 0.3, 0.35, "failed", error=f"boom with key {FAKE_KEY}"),
    ]
    summary = SpeculationSummary(
        drafter="draft-model",
        drafted=5,
        started=4,
        hits=1,
        misses=3,
        cancelled=1,
        time_saved_s=0.3,
        calls=calls,
        usage=Usage(prompt_tokens=120, completion_tokens=40, calls=1),
        cost_usd=None,
        errors=[f"round 2: the drafter failed: 401 Authorization: Bearer {FAKE_KEY}"],
    )
    return RunResult(
        answer="Tokyo and Oslo",
        tasks=tasks,
        rounds=1,
        usage=Usage(prompt_tokens=300, completion_tokens=60, calls=2),
        start=T0,
        end=T0 + 1.2,
        speculation=summary,
    )


def plain_run() -> RunResult:
    tasks = [_record(1, "search", {"q": "Tokyo"}, 0.1, 0.5)]
    return RunResult(answer="Tokyo", tasks=tasks, rounds=1, usage=Usage(), start=T0, end=T0 + 1.0)


# --------------------------------------------------------------------------- trace


def test_the_trace_holds_each_hit_and_the_speculation_summary(tmp_path: Path) -> None:
    data = json.loads(write_trace(speculative_run(), tmp_path / "t.json", question="q").read_text(encoding="utf-8"))
    assert data["tasks"][0]["speculative"] == {
        "draft": 1,
        "started": 0.1,
        "ready": 0.4,
        "saved_s": 0.3,
        "joined": True,
        "outcome": "hit",
    }
    assert data["tasks"][1]["speculative"] is None and data["tasks"][2]["speculative"] is None
    spec = data["speculation"]
    counts = {k: spec[k] for k in ("drafter", "drafted", "started", "hits", "misses", "cancelled", "time_saved_s")}
    assert counts == {
        "drafter": "draft-model",
        "drafted": 5,
        "started": 4,
        "hits": 1,
        "misses": 3,
        "cancelled": 1,
        "time_saved_s": 0.3,
    }
    assert spec["usage"] == {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160, "calls": 1}
    assert spec["cost_usd"] is None
    assert [(c["draft"], c["state"], c["adopted_by"]) for c in spec["calls"]] == [
        (1, "hit", 1),
        (2, "missed", None),
        (3, "cancelled", None),
        (4, "failed", None),
    ]
    first = spec["calls"][0]
    assert first == {
        "round": 1,
        "draft": 1,
        "tool": "search",
        "args": {"q": "Tokyo"},
        "line": "1. search('Tokyo')",
        "state": "hit",
        "start": 0.1,
        "end": 0.5,
        "duration": 0.4,
        "adopted_by": 1,
        "error": None,
    }


def test_the_trace_keeps_secrets_out_of_speculation() -> None:
    data = trace_dict(speculative_run(), question="q")
    text = json.dumps(data)
    assert "FAKEKEY" not in text
    calls = data["speculation"]["calls"]
    assert calls[2]["args"] == {"url": "https://x.test/?key=[redacted]"}
    assert calls[3]["error"] == "boom with key [redacted]"
    assert data["speculation"]["errors"] == ["round 2: the drafter failed: 401 Authorization: [redacted]"]
    # Extra secrets reach the new fields too.
    assert "Paris" not in json.dumps(trace_dict(speculative_run(), question="q", secrets=["Paris"]))


def test_speculative_arguments_are_made_json_safe_like_task_args() -> None:
    run = speculative_run()
    assert run.speculation is not None
    odd_args = {"n": 10**5000, "s": {3, 1}, "f": float("nan")}
    odd = _call(5, "search", odd_args, 0.1, 0.2, "missed", line="5. search(...)")
    summary = SpeculationSummary(drafter="d", started=1, misses=1, calls=[odd])
    data = trace_dict(RunResult(**{**_fields(run), "speculation": summary}), question="q")
    args = json.loads(json.dumps(data, allow_nan=False))["speculation"]["calls"][0]["args"]
    assert args["s"] == [1, 3] and args["f"] == "nan" and isinstance(args["n"], str)


def _fields(run: RunResult) -> dict[str, Any]:
    return {name: getattr(run, name) for name in run.__dataclass_fields__}


def test_without_a_drafter_the_trace_says_so() -> None:
    data = trace_dict(plain_run(), question="q")
    assert data["speculation"] is None
    assert data["tasks"][0]["speculative"] is None


# --------------------------------------------------------------------------- timeline


def _ids(root: ET.Element) -> dict[str, ET.Element]:
    return {el.attrib["id"]: el for el in root.iter() if "id" in el.attrib}


def _title(el: ET.Element) -> str:
    title = el.find(f"{SVG}title")
    return "" if title is None else title.text or ""


def test_the_timeline_draws_speculative_calls_in_their_own_style() -> None:
    root = ET.fromstring(render_timeline(speculative_run(), question="q"))
    ids = _ids(root)
    specs = {k: ids[f"spec-{k}"] for k in range(1, 5)}
    assert [specs[k].attrib["class"] for k in range(1, 5)] == [
        "spec hit",
        "spec missed",
        "spec cancelled",
        "spec failed",
    ]
    for k, state in enumerate(("hit", "missed", "cancelled", "failed"), start=1):
        assert specs[k].attrib["stroke"] == SPECULATION_COLOURS[state]
        assert specs[k].attrib["fill"] == "url(#spec-hatch)"  # outlined and hatched, not a task's solid bar
    # Each call has a row of its own below the round's tasks, and sits on the time axis.
    task_ys = [float(ids[f"task-{i}"].attrib["y"]) for i in (1, 2)]
    spec_ys = [float(specs[k].attrib["y"]) for k in range(1, 5)]
    assert max(task_ys) < min(spec_ys) and len(set(spec_ys)) == 4
    assert float(specs[1].attrib["x"]) == float(ids["task-1"].attrib["x"])  # the hit's call is the task's call
    assert float(specs[3].attrib["x"]) > float(specs[2].attrib["x"])


def test_a_hit_is_linked_to_the_task_that_adopted_it() -> None:
    root = ET.fromstring(render_timeline(speculative_run()))
    links = [el for el in root.iter(f"{SVG}path") if el.attrib.get("class") == "spec-hit"]
    assert [(el.attrib["data-from"], el.attrib["data-to"]) for el in links] == [("spec-1", "1")]
    ready = [el for el in root.iter(f"{SVG}line") if el.attrib.get("class") == "spec-ready"]
    assert len(ready) == 1 and ready[0].attrib["data-to"] == "1"
    assert "speculation saved 300ms" in _title(ready[0])


def test_speculative_tooltips_say_what_happened() -> None:
    ids = _ids(ET.fromstring(render_timeline(speculative_run())))
    tips = {k: _title(ids[f"spec-{k}"]) for k in range(1, 5)}
    assert tips[1].startswith("speculative call of draft task 1: hit, adopted by task 1, saved 300ms")
    assert tips[2].startswith("speculative call of draft task 2: missed")
    assert tips[3].startswith("speculative call of draft task 3: cancelled")
    assert tips[4].startswith("speculative call of draft task 4: failed: boom with key [redacted]")
    assert "100ms → 500ms" in tips[1]
    assert "speculative hit from draft task 1, saved 300ms (joined the call in flight)" in _title(ids["task-1"])
    assert "speculative" not in _title(ids["task-2"])


def test_the_timeline_escapes_and_scrubs_speculation() -> None:
    run = speculative_run()
    for fmt in ("svg", "html"):
        text = render_timeline(run, format=fmt)
        assert "FAKEKEY" not in text
        assert "<b>&amp;</b>" not in text
        assert "speculation 1/4 hits, 1 cancelled, saved 300ms" in text
    html = render_timeline(run, format="html")
    assert (
        "Speculative calls" in html
        and "draft error: round 2: the drafter failed: 401 Authorization: [redacted]" in html
    )


def test_a_hostile_speculation_in_a_saved_trace_adds_no_markup() -> None:
    data = json.loads(json.dumps(trace_dict(speculative_run(), question="q")))
    for call in data["speculation"]["calls"]:
        call.update(state=ATTACK, line=ATTACK, tool=ATTACK, error=ATTACK, draft=ATTACK, args={ATTACK: ATTACK})
    data["speculation"]["calls"][0]["state"] = "hit"
    data["speculation"]["calls"][0]["adopted_by"] = ATTACK
    data["speculation"]["calls"].append(ATTACK)  # not a call at all
    data["speculation"]["errors"] = [ATTACK]
    data["speculation"]["drafter"] = ATTACK
    data["tasks"][0]["speculative"] = {"draft": ATTACK, "saved_s": ATTACK, "ready": ATTACK}
    root = ET.fromstring(render_timeline(data).split("\n", 1)[1])
    for element in root.iter():
        assert set(element.attrib) <= _SVG_ATTRIBUTES, element.attrib
    spec_ids = {el.attrib["id"] for el in root.iter() if el.attrib.get("id", "").startswith("spec-")}
    assert spec_ids == {"spec-hatch", "spec-1", "spec-2", "spec-3", "spec-4"}
    parser = _Attributes()
    parser.feed(render_timeline(data, format="html"))
    assert parser.names <= {name.lower() for name in _SVG_ATTRIBUTES} | {"lang", "charset"}
    assert "b" in parser.tags and "script" not in parser.tags


def test_an_old_trace_without_speculation_still_draws() -> None:
    data = trace_dict(plain_run(), question="q")
    del data["speculation"]
    for task in data["tasks"]:
        del task["speculative"]
    svg = render_timeline(data)
    assert 'class="spec' not in svg and "speculation" not in svg
    assert render_timeline(trace_dict(plain_run(), question="q")) == svg  # None draws as missing
    assert "Speculative calls" not in render_timeline(data, format="html")


# --------------------------------------------------------------------------- live view


def _plain_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, color_system=None), out


def test_the_closing_lines_include_the_speculation_summary() -> None:
    run = speculative_run()
    assert run.speculation is not None
    line = speculation_line(run.speculation)
    assert line.startswith("speculation: 1/4 hits, 3 missed (1 cancelled), saved 0.30 s")
    assert "draft-model" in line and "drafter tokens 120 in / 40 out" in line
    assert "1 draft error" in line and "FAKEKEY" not in line
    console, out = _plain_console()
    view = LiveView(console, live=False)
    view.finish(run)
    assert "speculation: 1/4 hits" in out.getvalue()


def test_the_closing_lines_say_nothing_of_speculation_without_a_drafter() -> None:
    console, out = _plain_console()
    LiveView(console, live=False).finish(plain_run())
    assert "speculat" not in out.getvalue()


def _events() -> list[Any]:
    """A round as the engine reports it: draft calls 1 and 2 start, the planner writes task 1,
    which joins draft call 1 (a hit), draft call 2 is cancelled when the plan ends."""
    run = speculative_run()
    assert run.speculation is not None
    hit_call, missed_call = run.speculation.calls[0], run.speculation.calls[2]
    return [
        RoundStarted(round=1, feedback=None),
        SpeculationStarted(round=1, draft=1, tool="search", line=hit_call.line, time=T0 + 0.1),
        SpeculationStarted(round=1, draft=3, tool="fetch", line=missed_call.line, time=T0 + 0.2),
        TaskParsed(
            idx=1, tool="search", args=("Tokyo",), kwargs={}, deps=frozenset(), thought=None, line="1. search('Tokyo')"
        ),
        TaskStarted(idx=1, tool="search", time=T0 + 0.4),
        SpeculationEnded(call=hit_call),
        TaskFinished(record=run.tasks[0]),
        TaskParsed(idx=2, tool="join", args=(), kwargs={}, deps=frozenset(), thought=None, line="2. join()"),
        SpeculationEnded(call=missed_call),
    ]


def test_plain_lines_show_speculative_calls_and_the_hit() -> None:
    console, out = _plain_console()
    view = LiveView(console, live=False)
    for event in _events():
        view.handle(event)
    lines = [line.split(" ", 1)[1].strip() for line in out.getvalue().splitlines()]
    assert "spec  ~ 1. search('Tokyo')" in lines
    assert "spec  ~ 1. search → hit → task 1" in lines
    assert "done  1. search ⚡ speculative hit, saved 300ms → search result" in lines
    assert "spec  ~ 3. fetch → cancelled" in lines
    assert "FAKEKEY" not in out.getvalue()  # the cancelled call's line held a key


def test_the_table_shows_speculative_calls_dim_under_their_round() -> None:
    clock = [T0 + 0.3]
    view = LiveView(_terminal(), live=True, auto_refresh=False, clock=lambda: clock[0])
    events = _events()
    for event in events[:4]:
        view.handle(event)
    frame = _frame(view)
    running = [line for line in frame.splitlines() if line.lstrip().startswith(("~1 ", "~3 "))]
    assert len(running) == 2 and all("speculating" in line for line in running)
    assert "200ms" in running[0]  # the running time counts on the view's clock
    assert "speculative: 2 started, 2 running, 0 hit" in frame
    for event in events[4:]:
        view.handle(event)
    frame = _frame(view)
    rows = frame.splitlines()
    task = next(line for line in rows if line.lstrip().startswith("1 "))
    assert "done ⚡ saved 300ms" in task
    spec_rows = [line for line in rows if line.lstrip().startswith("~")]
    assert "hit" in spec_rows[0] and "adopted by task 1" in spec_rows[0] and "cancelled" in spec_rows[1]
    assert rows.index(task) < rows.index(spec_rows[0])  # under the round's tasks
    assert "FAKEKEY" not in frame


def _terminal() -> Console:
    return Console(record=True, force_terminal=True, width=140, height=40, color_system=None, file=io.StringIO())


def _frame(view: LiveView) -> str:
    snap = _terminal()
    snap.print(view)
    return snap.export_text()


def test_ended_speculative_calls_leave_the_screen_before_any_task() -> None:
    view = LiveView(
        Console(force_terminal=True, width=120, height=30, file=io.StringIO()), live=True, auto_refresh=False
    )
    view.handle(RoundStarted(round=1, feedback=None))
    for i in range(1, 11):
        view.handle(
            TaskParsed(idx=i, tool="work", args=(), kwargs={}, deps=frozenset(), thought=None, line=f"{i}. work()")
        )
    for d in range(1, 11):
        call = _call(d, "work", {}, 0.0, 0.1, "missed")
        view.handle(SpeculationStarted(round=1, draft=d, tool="work", line=call.line, time=call.start))
        view.handle(SpeculationEnded(call=call))
    frame = _frame(view)
    tasks = [line for line in frame.splitlines() if "│ work" in line and line.lstrip().startswith(tuple("0123456789"))]
    assert len(tasks) == 10
    assert "more task(s) not shown" not in frame


# --------------------------------------------------------------------------- end to end


def _tools(calls: list[str]) -> list[Any]:
    @tool(speculative=True)
    async def search(q: str) -> str:
        """Search the web."""
        calls.append(q)
        await asyncio.sleep(1.0)
        return f"result of {q}"

    return [search]


PLAN = '1. search("alpha")\n2. search("beta")\n3. join()'
DRAFT = f'1. search("alpha")\n2. search("gamma {FAKE_KEY}")\n3. join()'


def _planner() -> ScriptedLLM:
    return ScriptedLLM([PLAN, "Action: Finish(done)"], ttft=0.5, token_delay=0.05, name="planner")


def _drafter() -> ScriptedLLM:
    return ScriptedLLM([DRAFT], ttft=0.01, token_delay=0.001, name="drafter")


def test_a_run_with_a_drafter_shows_in_the_trace_timeline_and_live_view() -> None:
    calls: list[str] = []
    console, out = _plain_console()
    agent = LLMCompiler(llm=_planner(), tools=_tools(calls), drafter=_drafter())

    async def main() -> RunResult:
        result: RunResult | None = None
        with LiveView(console, live=False) as view:
            async for item in agent.astream("q"):
                if isinstance(item, RunResult):
                    result = item
                else:
                    view.handle(item)
            assert result is not None
            view.finish(result)
        return result

    result = run_virtual(main)
    spec = result.speculation
    assert spec is not None and spec.hits == 1 and spec.started == 2
    alpha = result.tasks[0]
    assert alpha.speculative is not None

    text = out.getvalue()
    assert 'spec  ~ 1. search("alpha")' in text
    assert "⚡ speculative hit" in text
    assert "speculation: 1/2 hits" in text
    assert "FAKEKEY" not in text

    data = trace_dict(result, question="q", model="planner")
    assert data["speculation"]["hits"] == 1 and data["speculation"]["drafter"] == "drafter"
    assert data["tasks"][0]["speculative"]["draft"] == 1
    assert data["tasks"][0]["speculative"]["saved_s"] == round(alpha.speculative.saved_s, 6)
    states = [c["state"] for c in data["speculation"]["calls"]]
    assert states[0] == "hit" and states[1] in ("missed", "cancelled")
    assert "FAKEKEY" not in json.dumps(data)

    root = ET.fromstring(render_timeline(result))
    links = [el for el in root.iter(f"{SVG}path") if el.attrib.get("class") == "spec-hit"]
    assert [(el.attrib["data-from"], el.attrib["data-to"]) for el in links] == [("spec-1", "1")]
    assert "FAKEKEY" not in render_timeline(result, format="html")


def test_without_a_drafter_the_live_view_shows_nothing_of_speculation() -> None:
    console, out = _plain_console()
    agent = LLMCompiler(llm=_planner(), tools=_tools([]))

    async def main() -> RunResult:
        with LiveView(console, live=False) as view:
            async for item in agent.astream("q"):
                if isinstance(item, RunResult):
                    view.finish(item)
                    return item
                view.handle(item)
        raise AssertionError("no result")

    result = run_virtual(main)
    assert result.speculation is None
    assert "spec" not in out.getvalue() and "⚡" not in out.getvalue()
    assert 'class="spec' not in render_timeline(result)


# --------------------------------------------------------------------------- the CLI


@pytest.fixture
def cli_models(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str | None, str | None]]:
    """``--model big`` is the slow planner, ``--drafter small`` the fast drafter, the tools one
    speculative search, and the run on virtual time. Yields the (spec, base_url) of each load."""
    loads: list[tuple[str | None, str | None]] = []
    models = {"big": _planner(), "small": _drafter()}

    def load(spec: str | None, base_url: str | None = None) -> Any:
        loads.append((spec, base_url))
        return models[spec or "big"]

    monkeypatch.setattr("llmcompiler.models._loader.load_model", load)
    monkeypatch.setattr(_cli, "_load_tools", lambda spec: _tools([]))
    monkeypatch.setattr("asyncio.run", lambda coro: run_virtual(lambda: coro))  # the CLI's run, on virtual time
    return loads


def test_the_cli_runs_with_a_drafter_and_shows_speculation(
    cli_models: list[tuple[str | None, str | None]], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    trace, svg = tmp_path / "t.json", tmp_path / "t.svg"
    argv = ["run", "q", "--model", "big", "--drafter", "small", "--max-speculative", "3"]
    assert _cli.main([*argv, "--trace", str(trace), "--timeline", str(svg)]) == 0
    assert cli_models == [("big", None), ("small", None)]
    out = capsys.readouterr().out
    assert 'spec  ~ 1. search("alpha")' in out
    assert "⚡ speculative hit" in out
    assert "speculation: 1/2 hits" in out and "drafted by drafter" in out
    assert "FAKEKEY" not in out
    data = json.loads(trace.read_text(encoding="utf-8"))
    assert data["speculation"]["hits"] == 1 and data["tasks"][0]["speculative"] is not None
    assert "FAKEKEY" not in trace.read_text(encoding="utf-8")
    root = ET.fromstring(svg.read_text(encoding="utf-8"))
    assert [el.attrib["class"] for el in root.iter() if el.attrib.get("id") == "spec-1"] == ["spec hit"]


def test_the_cli_without_a_drafter_loads_one_model(
    cli_models: list[tuple[str | None, str | None]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli.main(["run", "q", "--model", "big"]) == 0
    assert cli_models == [("big", None)]
    out = capsys.readouterr().out
    assert "Answer: done" in out and "spec" not in out


def test_a_drafter_written_as_the_default_model_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli.main(["run", "q", "--drafter", " local "]) == 2
    assert "error: --drafter 'local' is the planner's own model" in capsys.readouterr().err
    assert _cli._load_drafter(None, None) is None


def test_a_local_drafter_takes_no_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[tuple[str | None, str | None]] = []
    monkeypatch.setattr(
        "llmcompiler.models._loader.load_model", lambda spec, base_url=None: loads.append((spec, base_url))
    )
    _cli._load_drafter("local", "http://server/v1")
    _cli._load_drafter("openai:small", "http://server/v1")
    assert loads == [("local", None), ("openai:small", "http://server/v1")]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--max-speculative", "0", "--drafter", "small"], "error: --max-speculative must be 1 or more, got 0"),
        (["--max-speculative", "2"], "error: --max-speculative needs --drafter MODEL"),
        (["--drafter", " "], "error: --drafter is blank"),
        (["--model", "big", "--drafter", "big"], "error: --drafter 'big' is the planner's own model"),
    ],
)
def test_bad_speculation_options_are_refused_before_loading_anything(
    argv: list[str], message: str, cli_models: list[tuple[str | None, str | None]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli.main(["run", "q", "--model", "big", *argv]) == 2
    assert cli_models == []
    assert message in capsys.readouterr().err


def test_a_max_speculative_that_is_not_a_number_is_argparses_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        _cli.main(["run", "q", "--drafter", "small", "--max-speculative", "many"])
    assert caught.value.code == 2
    assert "--max-speculative: invalid int value: 'many'" in capsys.readouterr().err


def test_a_bad_drafter_names_the_drafter_flag(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_cli, "_load_tools", lambda spec: _tools([]))
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    planner = _planner()
    real_load = _loader.load_model
    monkeypatch.setattr(
        "llmcompiler.models._loader.load_model",
        lambda spec, base_url=None: planner if spec == "big" else real_load(spec, base_url=base_url),
    )
    assert _cli.main(["run", "q", "--model", "big", "--drafter", "openai:"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "error: --drafter 'openai:' names no model" in err
