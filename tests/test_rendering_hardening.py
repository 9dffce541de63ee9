"""Issue 10: whatever a tool returns or a run holds can be shown, written and sent, safely.

Rows 10 (odd results rendered), 26 (secrets), 27 (terminal escapes), 28 (timeline markup),
29 (``--tools`` imports) and 30 (the cost of a big trace). The demo ``math`` tool (row 20) is
tested in ``test_demo_tools.py``.
"""

from __future__ import annotations

import html.parser
import io
import json
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from llmcompiler import (
    LLMCompiler,
    RunResult,
    TaskRecord,
    _cli,
    _redact,
    render_timeline,
    tool,
    trace_dict,
    write_timeline,
)
from llmcompiler._events import TaskFinished
from llmcompiler._live import LiveView
from llmcompiler._prompts import MAX_OBSERVATION_CHARS, observation, render_history
from llmcompiler._redact import scrub
from llmcompiler._text import escape_controls, safe_text
from llmcompiler._trace import write_trace
from llmcompiler._types import Usage
from llmcompiler.testing import ScriptedLLM

# Distinctive fake secrets: nothing here is a real key.
FAKE_OPENAI = "sk-FAKE-openai-Zq7xW3vP9tL2mN8rK4"
FAKE_DB_PASSWORD = "fake-db-pw-Qx81!Zr"
FAKE_QUERY_KEY = "fakequerykey9T4w"
FAKE_BEARER = "fakebearer.tok-3Jd9"


def _deep(levels: int) -> list[Any]:
    root: list[Any] = []
    node = root
    for _ in range(levels):
        child: list[Any] = []
        node.append(child)
        node = child
    return root


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


HUGE = 10**5000
DEEP = _deep(5000)
LONE = "half a pair: \ud800 here"
ODD_RESULTS: dict[str, Any] = {"huge": HUGE, "deep": DEEP, "lone": LONE}


def _record(idx: int, result: Any = None, *, error: str | None = None, line: str = "", **kw: Any) -> TaskRecord:
    return TaskRecord(
        idx=idx,
        tool=kw.pop("tool", "echo"),
        args=kw.pop("args", {"x": idx}),
        deps=frozenset(kw.pop("deps", ())),
        thought=kw.pop("thought", None),
        result=result,
        error=error,
        start=kw.pop("start", 1.0 + idx),
        end=kw.pop("end", 1.5 + idx),
        line=line or f"{idx}. echo({idx})",
        **kw,
    )


def _result(records: list[TaskRecord], answer: str = "done") -> RunResult:
    return RunResult(answer=answer, tasks=records, rounds=1, usage=Usage(), start=0.0, end=10.0)


# --------------------------------------------------------------------------- row 10: odd results


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (HUGE, "<int of 5001 digits: 1000…000>"),
        (-(10**5000) + 1, "<int of 5000 digits: -9999…999>"),
        ([1, HUGE], "[1, <int of 5001 digits: 1000…000>]"),
        (LONE, "half a pair: \\ud800 here"),
        (["\udfff"], '["\\udfff"]'),
        (_Unprintable(), "<_Unprintable object: str() failed with RuntimeError>"),
        ({"a": None, 1: True}, '{"a": null, "1": true}'),
    ],
    ids=["huge", "huge-negative", "huge-in-list", "surrogate", "surrogate-in-list", "unprintable", "dict-keys"],
)
def test_safe_text_renders_what_cannot_be_printed(value: Any, expected: str) -> None:
    # issue 10 row 10
    assert safe_text(value) == expected


def test_safe_text_cuts_deep_nesting_and_cycles() -> None:
    # issue 10 row 10
    text = safe_text(DEEP)
    assert text.startswith("[[[[") and "[…]" in text and len(text) < 200
    loop: list[Any] = [1]
    loop.append(loop)
    assert safe_text(loop) == "[1, […]]"


def test_safe_text_limit_bounds_the_work() -> None:
    # issue 10 row 10: a limit stops rendering early (a million-item list, one short line)
    text = safe_text(list(range(1_000_000)), 20)
    assert text == "[0, 1, 2, 3, 4, 5, …"
    assert len(safe_text("x" * 10_000, 100)) == 100


# Any text, and text made mostly of lone surrogates, controls and bidi overrides.
_NASTY_TEXT = st.one_of(
    st.text(alphabet=st.characters(exclude_categories=())),
    st.text(alphabet=st.sampled_from(["\ud800", "\udfff", "\x1b", "\x00", "\u202e", "\n", "a", "é", '"', "\\"])),
)


def _nasty() -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=4000, max_value=30_000).map(lambda n: 7**n),
        st.floats(allow_nan=True, allow_infinity=True),
        _NASTY_TEXT,
        st.builds(_Unprintable),
        st.binary(max_size=20),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.tuples(inner, inner),
            st.dictionaries(st.one_of(st.text(max_size=5), st.integers()), inner, max_size=3),
        ),
        max_leaves=12,
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=_nasty(), limit=st.one_of(st.none(), st.integers(min_value=0, max_value=50)))
def test_safe_text_never_raises_and_always_encodes(value: Any, limit: int | None) -> None:
    # issue 10 row 10
    text = safe_text(value, limit)
    text.encode("utf-8")
    if limit is not None:
        assert len(text) <= limit
    json.dumps(text, ensure_ascii=False).encode("utf-8")  # writable into a UTF-8 JSON file


def test_the_joiner_reads_a_safe_rendering_of_odd_results() -> None:
    # issue 10 row 10: the history the joiner and replanner read
    records = [_record(1, HUGE), _record(2, DEEP), _record(3, LONE), _record(4, _Unprintable())]
    history = render_history(records)
    history.encode("utf-8")
    assert "Observation: <int of 5001 digits: 1000…000>" in history
    assert "Observation: [[[[" in history and "[…]" in history
    assert "Observation: half a pair: \\ud800 here" in history
    assert "Observation: <_Unprintable object: str() failed with RuntimeError>" in history


def test_a_long_observation_is_cut_with_a_note() -> None:
    # issue 10 row 10
    assert observation("y" * (MAX_OBSERVATION_CHARS + 10)).endswith(" ... [10 more characters]")
    text = observation(list(range(100_000)))
    assert len(text) < MAX_OBSERVATION_CHARS + 50 and text.endswith("[cut: the rest is not shown]")


def _odd_tools() -> list[Any]:
    @tool
    def make(kind: str) -> Any:
        """Make an odd value."""
        return ODD_RESULTS[kind]

    return [make]


def _odd_run() -> tuple[RunResult, ScriptedLLM]:
    plan = '1. make("huge")\n2. make("deep")\n3. make("lone")\n4. join()'
    llm = ScriptedLLM([plan, "Action: Finish(odd values: \ud800)"])
    return LLMCompiler(llm=llm, tools=_odd_tools()).run("odd?"), llm


def test_a_run_with_odd_results_writes_its_trace_and_timeline(tmp_path: Path) -> None:
    # issue 10 row 10: trace_dict, write_trace (valid UTF-8 JSON), write_timeline (SVG and HTML)
    result, llm = _odd_run()
    assert [t.ok for t in result.tasks[:3]] == [True, True, True]
    prompt = llm.requests[1].messages[-1].content
    assert "<int of 5001 digits: 1000…000>" in prompt and "\\ud800" in prompt
    path = write_trace(result, tmp_path / "t.json", question="odd \ud800?")
    data = json.loads(path.read_bytes().decode("utf-8"))
    assert data["question"] == "odd \\ud800?"
    assert data["tasks"][0]["result"] == "<int of 5001 digits: 1000…000>"
    assert data["tasks"][2]["result"] == "half a pair: \\ud800 here"
    assert "[…]" in json.dumps(data["tasks"][1]["result"], ensure_ascii=False)
    for name in ("t.svg", "t.html"):
        out = write_timeline(result, tmp_path / name, question="odd \ud800?")
        text = out.read_bytes().decode("utf-8")
        assert "int of 5001 digits" in text
    ET.fromstring(render_timeline(result).split("\n", 1)[1])


def test_the_live_view_shows_odd_results() -> None:
    # issue 10 row 10: plain lines and the in-place table
    result, _ = _odd_run()
    out = io.StringIO()
    plain = LiveView(Console(file=out, width=200, color_system=None), live=False)
    table = LiveView(Console(file=io.StringIO(), force_terminal=True, width=160, color_system=None), live=True)
    for view in (plain, table):
        for rec in result.tasks:
            view.handle(TaskFinished(record=rec))
        view.finish(result)
    text = out.getvalue()
    assert "1. make → <int of 5001 digits: 1000…000>" in text
    assert "3. make → half a pair: \\ud800 here" in text
    snap = Console(record=True, force_terminal=True, width=160, color_system=None, file=io.StringIO())
    snap.print(table)
    assert "<int of 5001 digits" in snap.export_text()


# --------------------------------------------------------------------------- row 26: secrets


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_OPENAI)
    monkeypatch.setenv("DB_PASSWORD", FAKE_DB_PASSWORD)


LEAKS = (FAKE_OPENAI, FAKE_DB_PASSWORD, FAKE_QUERY_KEY, FAKE_BEARER, "Zq7xW3vP9", "Qx81!Zr")


def _leaks(text: str) -> list[str]:
    return [s for s in LEAKS if s in text]


@pytest.mark.parametrize(
    "text",
    [
        f"connect failed: password {FAKE_DB_PASSWORD} refused",
        f"GET https://api.example.com/v1/x?api_key={FAKE_QUERY_KEY}&q=1",
        f"GET https://api.example.com/v1/x?q=1&token={FAKE_QUERY_KEY}",
        f"GET https://maps.example.com/?key={FAKE_QUERY_KEY}",
        f"Authorization: Basic {FAKE_QUERY_KEY}",
        f"headers={{'Authorization': 'Bearer {FAKE_BEARER}'}}",
        f"using key {FAKE_OPENAI}.",
        json.dumps({"env": {"DB_PASSWORD": FAKE_DB_PASSWORD}}),
        f"db_password={FAKE_QUERY_KEY} and 'password': '{FAKE_QUERY_KEY}'",
    ],
)
def test_scrub_takes_every_kind_of_secret_out(secret_env: None, text: str) -> None:
    # issue 10 row 26
    out = scrub(text)
    assert _leaks(out) == [] and "[redacted]" in out


def test_scrub_keeps_ordinary_text(secret_env: None) -> None:
    # issue 10 row 26: common words near "key" or "token" are data, not secrets
    text = '{"key": "Oslo", "tokens": 12, "max_tokens": 100} primary key: id; see OPENAI_API_KEY'
    assert scrub(text) == text
    # A tool's signature and parameter notes in the planner's prompt are not secrets.
    signature = "1. fetch(url: str, api_key: str, password: str | None = None)\n   - api_key: your service's key"
    assert scrub(signature) == signature


_TEXT = st.one_of(
    st.text(alphabet=st.characters(exclude_categories=()), max_size=40),
    st.text(alphabet=st.sampled_from(["\ud800", "\x1b", " ", "=", "&", "?", "a", "Z", "0", "-", "_"]), max_size=40),
)
_SEPARATOR = st.sampled_from([" ", "\n", "(", '"', "'", ": ", "=", ",", "["])


@settings(max_examples=300, deadline=None)
@given(before=_TEXT, after=_TEXT, left=_SEPARATOR, form=st.sampled_from(["env", "query", "bearer", "shape", "json"]))
def test_a_planted_secret_never_leaks(before: str, after: str, left: str, form: str) -> None:
    # issue 10 row 26: a secret anywhere in random text is taken out
    os.environ["FUZZ_SERVICE_API_KEY"] = FAKE_OPENAI.replace("sk-", "env-")
    try:
        secret, planted = {
            "env": (FAKE_OPENAI.replace("sk-", "env-"), FAKE_OPENAI.replace("sk-", "env-")),
            "query": (FAKE_QUERY_KEY, f"https://x.example/a?b=1&api_key={FAKE_QUERY_KEY}&c=2"),
            "bearer": (FAKE_BEARER, f"Bearer {FAKE_BEARER}"),
            "shape": (FAKE_OPENAI, FAKE_OPENAI),
            "json": (FAKE_OPENAI.replace("sk-", "env-"), json.dumps([FAKE_OPENAI.replace("sk-", "env-") + '"\\'])),
        }[form]
        if form == "json":
            os.environ["FUZZ_SERVICE_API_KEY"] = secret + '"\\'
        text = f"{before}{left}{planted} {after}"
        assert secret not in scrub(text)
    finally:
        del os.environ["FUZZ_SERVICE_API_KEY"]


def test_no_secret_reaches_the_joiner_trace_timeline_live_view_or_terminal(
    secret_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # issue 10 row 26: an error and a result quoting secrets
    @tool
    def fetch(url: str) -> str:
        """Fetch a URL."""
        if "db" in url:
            raise ConnectionError(f"login failed for password={FAKE_DB_PASSWORD} ({os.environ['OPENAI_API_KEY']})")
        return f"redirected to {url}?api_key={FAKE_QUERY_KEY} with Authorization: Bearer {FAKE_BEARER}"

    plan = "Thought: key is " + FAKE_OPENAI + '\n1. fetch("https://x")\n2. fetch("db")\n3. join()'
    llm = ScriptedLLM([plan, f"Action: Finish(the key is {FAKE_OPENAI})"])
    monkeypatch.setattr("llmcompiler.models._loader.load_model", lambda spec, base_url=None: llm)
    monkeypatch.setattr(_cli, "_load_tools", lambda spec: [fetch])
    trace, timeline = tmp_path / "t.json", tmp_path / "t.html"
    assert _cli.main(["run", f"use {FAKE_OPENAI}", "--trace", str(trace), "--timeline", str(timeline)]) == 0
    out = capsys.readouterr()
    assert _leaks(llm.requests[1].messages[-1].content) == []  # the joiner prompt, sent to the provider
    assert _leaks(out.out + out.err) == []
    assert _leaks(trace.read_text(encoding="utf-8")) == []
    assert _leaks(timeline.read_text(encoding="utf-8")) == []
    assert "[redacted]" in llm.requests[1].messages[-1].content


# --------------------------------------------------------------------------- row 27: terminal escapes

ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x9b31m\u202eevil\x00"


def test_escape_controls_shows_every_control_and_keeps_newlines() -> None:
    # issue 10 row 27
    assert escape_controls(ESCAPES + "\nnext\tcol") == ("\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\u202eevil\\x00\nnext\tcol")


def _escape_tool() -> Any:
    @tool
    def banner() -> str:
        """A result full of terminal escapes."""
        return ESCAPES

    return banner


@pytest.mark.parametrize("live", [False, True])
def test_the_live_view_never_writes_terminal_escapes(live: bool) -> None:
    # issue 10 row 27: plain-line mode and the in-place (rich) display
    llm = ScriptedLLM([f"Thought: {ESCAPES}\n1. banner()\n2. join()", f"Action: Finish(answer {ESCAPES})"])
    out = io.StringIO()
    console = Console(file=out, force_terminal=live, width=200, color_system=None)
    with LiveView(console, live=live, auto_refresh=False) as view:
        result = LLMCompiler(llm=llm, tools=[_escape_tool()], on_event=view.handle).run("q")
        view.finish(result)
    text = out.getvalue()
    for raw in ("\x1b]", "\x1b[2J", "\x07", "\x9b", "\u202e", "\x00"):
        assert raw not in text
    assert "\\x1b]0;pwned\\x07" in text and "\\u202eevil" in text


def test_cli_prints_no_terminal_escapes(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # issue 10 row 27: the answer, the events and an error line
    llm = ScriptedLLM(["1. banner()\n2. join()", f"Action: Finish(answer {ESCAPES})"])
    monkeypatch.setattr("llmcompiler.models._loader.load_model", lambda spec, base_url=None: llm)
    monkeypatch.setattr(_cli, "_load_tools", lambda spec: [_escape_tool()])
    assert _cli.main(["run", "q"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out and "Answer: answer \\x1b]0;pwned" in out


def test_quiet_escapes_controls_on_a_terminal_only() -> None:
    # issue 10 row 27: --quiet writes the answer as data into a pipe, escaped onto a terminal
    answer = f"line one {ESCAPES}\nline two \ud800"
    assert _cli._quiet_answer(answer, terminal=True) == (
        "line one \\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\u202eevil\\x00\nline two \\ud800"
    )
    assert _cli._quiet_answer(answer, terminal=False) == f"line one {ESCAPES}\nline two \\ud800"


# --------------------------------------------------------------------------- row 28: timeline markup

ATTACK = '" onmouseover="alert(1)" x=\'<b>&amp;</b>'


def _hostile_trace() -> dict[str, Any]:
    records = [
        _record(1, ATTACK, line=f"1. echo({ATTACK})", thought=ATTACK, args={ATTACK: ATTACK}),
        _record(2, error=ATTACK, deps={1}, tool=ATTACK),
    ]
    data = trace_dict(_result(records, answer=ATTACK), question=ATTACK, model=ATTACK)
    data["tasks"][0]["state"] = ATTACK
    data["tasks"][1]["idx"] = ATTACK
    data["tasks"][1]["deps"] = [ATTACK, 1]
    saved: dict[str, Any] = json.loads(json.dumps(data))
    return saved


_SVG_ATTRIBUTES = {
    "xmlns", "width", "height", "viewBox", "font-family", "font-size", "font-weight", "id", "refX", "refY",
    "markerWidth", "markerHeight", "orient", "d", "fill", "patternUnits", "patternTransform", "x", "y", "x1", "y1",
    "x2", "y2", "stroke", "class", "opacity", "text-anchor", "stroke-dasharray", "stroke-width", "data-from",
    "data-to", "stroke-opacity", "marker-end",
}  # fmt: skip


def test_a_hostile_saved_trace_adds_no_attribute_to_the_svg() -> None:
    # issue 10 row 28
    root = ET.fromstring(render_timeline(_hostile_trace()).split("\n", 1)[1])
    for element in root.iter():
        assert set(element.attrib) <= _SVG_ATTRIBUTES, element.attrib
        assert not any(name.startswith("on") for name in element.attrib)


class _Attributes(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.names.update(name for name, _ in attrs)


def test_a_hostile_saved_trace_adds_no_attribute_or_element_to_the_html() -> None:
    # issue 10 row 28
    parser = _Attributes()
    parser.feed(render_timeline(_hostile_trace(), format="html"))
    assert not any(name.startswith("on") for name in parser.names)
    assert parser.names <= {name.lower() for name in _SVG_ATTRIBUTES} | {"lang", "charset"}
    assert "b" in parser.tags  # the page's own <b>Answer:</b>
    assert parser.tags <= {
        "html", "head", "meta", "title", "style", "body", "h1", "p", "b", "svg", "defs", "marker", "path",
        "pattern", "rect", "text", "g", "line", "table", "thead", "tbody", "tr", "th", "td",
    }  # fmt: skip


# --------------------------------------------------------------------------- row 29: --tools imports


def _in_dir(monkeypatch: pytest.MonkeyPatch, path: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text, encoding="utf-8")
    monkeypatch.chdir(path)


def test_tools_from_the_cwd_do_not_shadow_other_modules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # issue 10 row 29: an openai.py beside mytools.py is never imported
    _in_dir(
        monkeypatch,
        tmp_path,
        {
            "openai.py": "raise RuntimeError('the shadow was imported')\n",
            "mytools.py": "def add(a: float, b: float) -> float:\n    '''Add.'''\n    return a + b\n\nTOOLS = [add]\n",
        },
    )
    monkeypatch.delitem(sys.modules, "mytools", raising=False)
    path_before = list(sys.path)
    tools = _cli._load_tools("mytools:TOOLS")
    assert [t.__name__ for t in tools] == ["add"]
    assert sys.path == path_before and "" not in sys.path[:1]
    import importlib.util

    spec = importlib.util.find_spec("openai")
    assert spec is None or spec.origin != str(tmp_path / "openai.py")


def test_a_tools_package_in_the_cwd_loads_its_submodule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # issue 10 row 29
    _in_dir(
        monkeypatch,
        tmp_path,
        {"toolpkg_x/__init__.py": "", "toolpkg_x/sub.py": "def f() -> int:\n    '''F.'''\n    return 1\n"},
    )
    monkeypatch.delitem(sys.modules, "toolpkg_x", raising=False)
    monkeypatch.delitem(sys.modules, "toolpkg_x.sub", raising=False)
    assert [t.__name__ for t in _cli._load_tools("toolpkg_x.sub:f")] == ["f"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (".mytools_b:TOOLS", "'.mytools_b' is not a module name"),
        ("nosuch_module_q:X", "cannot import 'nosuch_module_q'"),
        ("mytools_b:missing", "module 'mytools_b' has no attribute 'missing'"),
        ("broken_tools_b:X", "cannot import 'broken_tools_b': ZeroDivisionError: division by zero"),
        ("exiting_tools_b:X", "cannot import 'exiting_tools_b': SystemExit: 3"),
    ],
)
def test_a_bad_tools_option_is_one_line_and_status_2(
    spec: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # issue 10 row 29
    _in_dir(
        monkeypatch,
        tmp_path,
        {
            "mytools_b.py": "TOOLS = []\n",
            "broken_tools_b.py": "X = 1 / 0\n",
            "exiting_tools_b.py": "import sys\nsys.exit(3)\n",
        },
    )
    assert _cli.main(["run", "q", "--model", "openai:gpt-4o-mini", "--tools", spec]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert message in err
    for name in ("mytools_b", "broken_tools_b", "exiting_tools_b"):
        sys.modules.pop(name, None)


# --------------------------------------------------------------------------- row 30: a big trace


def test_a_trace_reads_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # issue 10 row 30: the cost of trace_dict is linear (the environment is not re-read per string)
    calls = 0
    real = _redact._env_secrets

    def counting() -> list[str]:
        nonlocal calls
        calls += 1
        return real()

    monkeypatch.setattr(_redact, "_env_secrets", counting)
    records = [_record(i, f"result {i}", thought=f"t {i}") for i in range(1, 2001)]
    data = trace_dict(_result(records), question="q")
    assert len(data["tasks"]) == 2000
    assert calls == 1


def test_scrub_sees_a_changed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # issue 10 rows 26 and 30: the cached environment is read again when it changes
    text = "leaked fake-late-secret-9Qw"
    assert scrub(text) == text
    monkeypatch.setenv("LATE_SERVICE_TOKEN", "fake-late-secret-9Qw")
    assert scrub(text) == "leaked [redacted]"


def test_the_cli_runs_tools_with_odd_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # issue 10 row 10: the command line shows, traces and draws odd results
    plan = '1. make("huge")\n2. make("deep")\n3. make("lone")\n4. join()'
    llm = ScriptedLLM([plan, "Action: Finish(odd values: \ud800)"])
    monkeypatch.setattr("llmcompiler.models._loader.load_model", lambda spec, base_url=None: llm)
    monkeypatch.setattr(_cli, "_load_tools", lambda spec: _odd_tools())
    trace, timeline = tmp_path / "t.json", tmp_path / "t.svg"
    assert _cli.main(["run", "odd?", "--trace", str(trace), "--timeline", str(timeline)]) == 0
    out = capsys.readouterr().out
    assert "1. make → <int of 5001 digits: 1000…000>" in out and "Answer: odd values: \\ud800" in out
    assert json.loads(trace.read_bytes().decode("utf-8"))["tasks"][0]["result"] == "<int of 5001 digits: 1000…000>"
    ET.fromstring(timeline.read_bytes().decode("utf-8").split("\n", 1)[1])


# -- found in review


def test_scrub_is_linear_on_long_runs_of_word_characters() -> None:  # rows 26, 30
    import time

    texts = ["-".join(["token"] * 20_000), "ab-" * 40_000 + "secret", "data:" + "A1b-_" * 50_000 + " key"]
    for text in texts:
        started = time.process_time()
        scrub(text)
        # A hang guard, not a timing target: the quadratic version took 10-25 s at a tenth of this size.
        assert time.process_time() - started < 5


@pytest.mark.parametrize(
    "text",
    [
        "Who was the bearer of the Olympic torch in 2024?",
        "Authorization: required for this endpoint",
        "the standard bearer Paris",
    ],
)
def test_scrub_leaves_prose_about_bearers_and_authorization_alone(text: str) -> None:  # row 26
    assert scrub(text) == text


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ('password="a b c"', "a b c"),
        ('{"password": "pa\\"ss word"}', "ss word"),
        ('{"token": "tok-abcdef123456"}', "tok-abcdef123456"),
        ("Authorization: Bearer tok123", "tok123"),
    ],
)
def test_scrub_redacts_whole_quoted_values_and_token_keys(text: str, secret: str) -> None:  # row 26
    assert secret not in scrub(text)


def test_trace_redacts_values_under_secret_names() -> None:  # row 26
    record = _record(1, {"password": "pw-s3cret", "user": "bob"}, line='1. login(user="bob", password="pw-s3cret")')
    record = TaskRecord(**{**{f: getattr(record, f) for f in record.__slots__}, "args": {"password": "pw-s3cret"}})
    dumped = json.dumps(trace_dict(_result([record]), question="q"))
    assert "pw-s3cret" not in dumped and "bob" in dumped


def test_math_refuses_a_power_whose_exponent_is_itself_huge() -> None:  # row 20
    from llmcompiler.demo import math as demo_math

    with pytest.raises(ValueError, match="too large"):
        demo_math._fn(expression="2**2**1024")
