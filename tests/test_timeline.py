"""Timeline pictures: valid SVG/HTML with one bar per task, dependency arrows, rounds and phases."""

from __future__ import annotations

import itertools
import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from llmcompiler import LLMCompiler, RunResult, tool
from llmcompiler._timeline import STATE_COLOURS, render_timeline, write_timeline
from llmcompiler._trace import trace_dict
from llmcompiler.testing import ScriptedLLM

SVG = "{http://www.w3.org/2000/svg}"
FAKE_KEY = "sk-test-FAKEKEY0123456789abcdef"


@tool
async def lookup(city: str) -> str:
    """Look a city up."""
    if city == "Atlantis":
        raise LookupError(f"no such city (key {FAKE_KEY})")
    return f"{city}: 20C"


@tool
async def combine(a: str, b: str) -> str:
    """Join two texts."""
    return f"{a} | {b}"


def _two_rounds() -> RunResult:
    llm = ScriptedLLM(
        [
            '1. lookup("Tokyo")\n2. lookup("Atlantis")\n3. combine($1, $2)\n4. combine($1, "x")\n5. join()',
            "Action: Replan(try Oslo)",
            '6. lookup("Oslo")\n7. combine($6, $4)\n8. join()',
            "Action: Finish(done)",
        ]
    )
    return LLMCompiler(llm=llm, tools=[lookup, combine]).run("Weather?")


def _by_id(root: ET.Element) -> dict[str, ET.Element]:
    return {el.attrib["id"]: el for el in root.iter() if "id" in el.attrib}


def _bars(root: ET.Element) -> list[ET.Element]:
    return [el for el in root.iter() if el.attrib.get("id", "").startswith("task-")]


def test_svg_has_one_bar_per_task_arrows_rounds_and_phases() -> None:
    result = _two_rounds()
    root = ET.fromstring(render_timeline(result, question="Weather?"))
    assert root.tag == f"{SVG}svg"
    tasks = [t for t in result.tasks if t.tool != "join"]
    bars = _bars(root)
    assert sorted(b.attrib["id"] for b in bars) == sorted(f"task-{t.idx}" for t in tasks)
    assert all(b.tag == f"{SVG}rect" for b in bars)
    ids = _by_id(root)
    for t in tasks:
        bar = ids[f"task-{t.idx}"]
        assert bar.attrib["class"] == f"task {t.state}"
        if t.start is not None:
            assert bar.attrib["fill"] == STATE_COLOURS[t.state]
    assert {"plan-1", "join-1", "plan-2", "join-2"} <= set(ids)
    assert len([el for el in root.iter(f"{SVG}line") if el.attrib.get("class") == "round-separator"]) == 1
    arrows = {(a.attrib["data-from"], a.attrib["data-to"]) for a in root.iter(f"{SVG}path") if "data-from" in a.attrib}
    assert arrows == {("1", "3"), ("2", "3"), ("1", "4"), ("6", "7"), ("4", "7")}


def test_bars_are_placed_on_the_time_axis() -> None:
    result = _two_rounds()
    root = ET.fromstring(render_timeline(result))
    ids = _by_id(root)
    ran = {t.idx: t for t in result.tasks if t.tool != "join" and t.start is not None}
    # Bars that start later sit further right; a dependent starts at or after its dependency's end.
    first, later = min(ran.values(), key=lambda t: t.start or 0), max(ran.values(), key=lambda t: t.start or 0)
    assert float(ids[f"task-{first.idx}"].attrib["x"]) < float(ids[f"task-{later.idx}"].attrib["x"])
    dep_end = float(ids["task-6"].attrib["x"]) + float(ids["task-6"].attrib["width"])
    assert float(ids["task-7"].attrib["x"]) >= dep_end - 2.1  # bars are at least 2px wide
    assert float(ids["plan-2"].attrib["x"]) >= float(ids["join-1"].attrib["x"])


def _synthetic_trace(n: int) -> dict[str, Any]:
    tasks = []
    for i in range(1, n + 1):
        start = 0.5 + (i % 17) * 0.1
        state = "failed" if i % 50 == 0 else "done"
        tasks.append(
            {
                "idx": i,
                "tool": "work",
                "args": {"x": i},
                "deps": [i - 1] if i % 3 == 0 else [],
                "line": f"{i}. work({i})",
                "state": state,
                "result": None if state == "failed" else i,
                "error": "boom" if state == "failed" else None,
                "start": start,
                "end": start + 0.05 * (i % 7),
                "duration": 0.05 * (i % 7),
                "round": 1,
                "attempts": 1,
            }
        )
    tasks.append({"idx": n + 1, "tool": "join", "deps": [], "line": "join()", "state": "done", "round": 1})
    return {
        "question": f"{n} tasks",
        "model": "m",
        "answer": "ok",
        "rounds": 1,
        "total_s": 3.0,
        "sequential_s": 9.0,
        "usage": {"prompt_tokens": 1, "completion_tokens": 2},
        "cost_usd": None,
        "tasks": tasks,
        "timings": [
            {
                "round": 1,
                "plan_start": 0.0,
                "plan_first_chunk": 0.2,
                "plan_end": 1.0,
                "first_dispatch": 0.5,
                "tasks_end": 2.6,
                "join_start": 2.6,
                "join_end": 3.0,
            }
        ],
    }


@pytest.mark.parametrize("n", [3, 300])
def test_three_and_three_hundred_tasks_are_readable(n: int) -> None:
    root = ET.fromstring(render_timeline(_synthetic_trace(n)))
    bars = _bars(root)
    assert len(bars) == n
    width = float(root.attrib["width"])
    heights = {float(b.attrib["height"]) for b in bars}
    assert len(heights) == 1 and heights.pop() >= 5  # thin enough to fit, thick enough to see
    ys = sorted(float(b.attrib["y"]) for b in bars)
    assert all(b - a >= 8 for a, b in itertools.pairwise(ys))  # rows never overlap
    assert float(root.attrib["height"]) > ys[-1]  # the picture grows to hold every row
    for b in bars:
        assert float(b.attrib["x"]) > 0 and float(b.attrib["x"]) + float(b.attrib["width"]) <= width
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert f"{n}. work({n})" in labels


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.ids.extend(v for k, v in attrs if k == "id" and v)


def test_html_is_self_contained_and_has_one_bar_per_task(tmp_path: Path) -> None:
    result = _two_rounds()
    path = write_timeline(result, tmp_path / "run.html", question="Weather?")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    parser = _Ids()
    parser.feed(text)
    tasks = [t for t in result.tasks if t.tool != "join"]
    assert sorted(i for i in parser.ids if i.startswith("task-")) == sorted(f"task-{t.idx}" for t in tasks)
    assert "script" not in parser.tags and "link" not in parser.tags and "img" not in parser.tags
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in text
    # The SVG inside is itself well-formed XML.
    svg = text[text.index("<svg") : text.index("</svg>") + len("</svg>")]
    assert len(_bars(ET.fromstring(svg))) == len(tasks)


def test_write_timeline_picks_the_format_from_the_suffix(tmp_path: Path) -> None:
    result = _two_rounds()
    svg = write_timeline(result, tmp_path / "t.svg").read_text(encoding="utf-8")
    assert svg.startswith("<?xml")
    ET.fromstring(svg)
    assert write_timeline(result, tmp_path / "t.HTM").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    with pytest.raises(ValueError, match="format must be"):
        render_timeline(result, format="png")  # type: ignore[arg-type]


def test_a_saved_trace_draws_the_same_bars(tmp_path: Path) -> None:
    result = _two_rounds()
    saved = json.loads(json.dumps(trace_dict(result, question="Weather?", model="m")))
    assert render_timeline(saved) == render_timeline(result, question="Weather?", model="m")


def test_timeline_has_no_secrets_and_escapes_text() -> None:
    @tool
    def echo(text: str) -> str:
        """Echo."""
        return text

    llm = ScriptedLLM(['1. echo("<b>&amp;</b>")\n2. lookup("Atlantis")\n3. join()', "Action: Finish(x)"])
    result = LLMCompiler(llm=llm, tools=[echo, lookup]).run(f"key {FAKE_KEY}")
    for fmt in ("svg", "html"):
        text = render_timeline(result, question=f"key {FAKE_KEY}", format=fmt)
        assert "FAKEKEY" not in text
        assert "<b>&amp;</b>" not in text  # the result is escaped
    root = ET.fromstring(render_timeline(result))
    titles = "".join(t.text or "" for t in root.iter(f"{SVG}title"))
    assert "<b>&amp;</b>" in titles and "no such city (key [redacted]" in titles
