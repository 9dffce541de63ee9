"""Seeing speculation: the trace, the timeline, the live view and the CLI show what a drafter's
speculative calls did, keep secrets out of it, and show nothing new without a drafter."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from rich.console import Console

from llmcompiler._live import LiveView, speculation_line
from llmcompiler._records import RunResult, SpeculationSummary, SpeculativeCall, SpeculativeHit, TaskRecord
from llmcompiler._timeline import SPECULATION_COLOURS, render_timeline
from llmcompiler._trace import trace_dict, write_trace
from llmcompiler._types import Usage

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


ATTACK = '" onmouseover="alert(1)" x=\'<b>&amp;</b>'


class _Attrs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.names.update(name for name, _ in attrs)


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
        assert not any(name.startswith("on") for name in element.attrib), element.attrib
    spec_ids = {el.attrib["id"] for el in root.iter() if el.attrib.get("id", "").startswith("spec-")}
    assert spec_ids == {"spec-hatch", "spec-1", "spec-2", "spec-3", "spec-4"}
    parser = _Attrs()
    parser.feed(render_timeline(data, format="html"))
    assert not any(name.startswith("on") for name in parser.names)
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
