"""Run traces: the JSON matches the run it describes, holds only JSON values, and no secrets."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pydantic
import pytest

from llmcompiler import LLMCompiler, RunResult, tool
from llmcompiler._redact import scrub
from llmcompiler._trace import to_json_safe, trace_dict, write_trace
from llmcompiler.testing import ScriptedLLM

FAKE_KEY = "sk-test-FAKEKEY0123456789abcdef"


@tool
async def lookup(city: str) -> str:
    """Look a city up."""
    if city == "Atlantis":
        raise LookupError(f"no such city (request sent with Authorization: Bearer {FAKE_KEY})")
    return f"{city}: 20C"


@tool
async def combine(a: str, b: str) -> str:
    """Join two texts."""
    return f"{a} | {b}"


def _run() -> tuple[RunResult, ScriptedLLM]:
    llm = ScriptedLLM(
        [
            'Thought: both cities\n1. lookup("Tokyo")\n2. lookup("Atlantis")\n3. combine($1, $2)\n'
            '4. combine($1, "x")\n5. join()',
            "Thought: Atlantis failed.\nAction: Replan(try Oslo)",
            '6. lookup("Oslo")\n7. join()',
            "Action: Finish(Tokyo 20C, Oslo 20C)",
        ],
        name="scripted-model",
    )
    return LLMCompiler(llm=llm, tools=[lookup, combine]).run("Weather in Tokyo and Atlantis?"), llm


def test_trace_matches_the_run(tmp_path: Path) -> None:
    result, llm = _run()
    path = write_trace(result, tmp_path / "run.json", question="Weather in Tokyo and Atlantis?", model=llm.model_name)
    data = json.loads(path.read_text(encoding="utf-8"))

    assert data["question"] == "Weather in Tokyo and Atlantis?"
    assert data["model"] == "scripted-model"
    assert data["answer"] == result.answer == "Tokyo 20C, Oslo 20C"
    assert data["rounds"] == result.rounds == 2
    assert data["error"] is None
    assert data["usage"] == {
        "prompt_tokens": result.usage.prompt_tokens,
        "completion_tokens": result.usage.completion_tokens,
        "total_tokens": result.usage.total_tokens,
        "calls": result.usage.calls,
    }
    assert data["cost_usd"] is None
    assert data["total_s"] == pytest.approx(result.total_s, abs=1e-6)
    assert data["sequential_s"] == pytest.approx(result.sequential_s, abs=1e-6)

    assert [t["idx"] for t in data["tasks"]] == [r.idx for r in result.tasks] == [1, 2, 3, 4, 5, 6, 7]
    for task, rec in zip(data["tasks"], result.tasks, strict=True):
        assert task["tool"] == rec.tool
        assert task["deps"] == sorted(rec.deps)
        assert task["state"] == rec.state
        assert task["round"] == rec.round
        assert task["attempts"] == rec.attempts
        assert task["thought"] == rec.thought
        assert task["line"] == rec.line
        if rec.start is None:
            assert task["start"] is None and task["end"] is None
        else:
            assert rec.end is not None
            assert task["start"] == pytest.approx(rec.start - result.start, abs=1e-6)
            assert task["end"] == pytest.approx(rec.end - result.start, abs=1e-6)
            assert 0 <= task["start"] <= task["end"] <= data["total_s"] + 1e-6
    by_idx = {t["idx"]: t for t in data["tasks"]}
    assert by_idx[1]["args"] == {"city": "Tokyo"} and by_idx[1]["result"] == "Tokyo: 20C"
    assert by_idx[1]["thought"] == "both cities"
    assert by_idx[2]["state"] == "failed" and by_idx[2]["result"] is None
    assert by_idx[2]["error"].startswith("lookup raised LookupError: no such city")
    assert by_idx[3]["state"] == "skipped" and by_idx[3]["args"] == {"a": "$1", "b": "$2"}  # never ran: as planned
    assert by_idx[4]["args"] == {"a": "Tokyo: 20C", "b": "x"}  # ran: references resolved
    assert by_idx[6]["round"] == 2 and by_idx[6]["result"] == "Oslo: 20C"

    assert len(data["timings"]) == 2
    for n, (timing, rt) in enumerate(zip(data["timings"], result.round_timings, strict=True), start=1):
        assert timing["round"] == n
        assert timing["plan_start"] == pytest.approx(rt.plan_start - result.start, abs=1e-6)
        assert timing["join_end"] == pytest.approx(rt.join_end - result.start, abs=1e-6)
        assert timing["plan_start"] <= timing["plan_end"] <= timing["join_start"] <= timing["join_end"]
    assert data["timings"][0]["join_end"] <= data["timings"][1]["plan_start"]
    assert data["thoughts"] == ["Atlantis failed."]
    assert data["plan_errors"] == []


def test_trace_has_no_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_secret = "env-secret-value-4242"
    monkeypatch.setenv("MY_SERVICE_API_KEY", env_secret)

    @tool
    def echo(text: str) -> str:
        """Echo a text."""
        return f"echo {text} with {env_secret}"

    llm = ScriptedLLM([f'1. echo("{FAKE_KEY}")\n2. lookup("Atlantis")\n3. join()', "Action: Finish(done)"])
    result = LLMCompiler(llm=llm, tools=[echo, lookup]).run(f"use key {FAKE_KEY}")
    assert FAKE_KEY in str(result.tasks[0].args) and env_secret in str(result.tasks[0].result)  # present in the run

    text = write_trace(result, tmp_path / "t.json", question=f"use key {FAKE_KEY}", model="m").read_text()
    assert FAKE_KEY not in text
    assert "FAKEKEY" not in text
    assert env_secret not in text
    data = json.loads(text)
    assert data["question"] == "use key [redacted]"
    assert data["tasks"][0]["args"] == {"text": "[redacted]"}
    assert data["tasks"][0]["result"] == "echo [redacted] with [redacted]"
    assert "Authorization: [redacted]" in data["tasks"][1]["error"]


def test_extra_secrets_are_redacted() -> None:
    result, _ = _run()
    data = trace_dict(result, question="Weather in Tokyo?", model="m", secrets=["Tokyo"])
    assert "Tokyo" not in json.dumps(data)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc.def-123", "Authorization: [redacted]"),
        ('{"x-api-key": "k-123456789"}', '{"x-api-key": "[redacted]"}'),
        ("url?api_key=abcdef0123&x=1", "url?api_key=[redacted]&x=1"),
        (f"bad key {FAKE_KEY} here", "bad key [redacted] here"),
        ("set OPENAI_API_KEY or pass api_key=", "set OPENAI_API_KEY or pass api_key="),
    ],
)
def test_scrub(text: str, expected: str) -> None:
    assert scrub(text) == expected


class Point(pydantic.BaseModel):
    x: int
    y: int


@dataclasses.dataclass
class Box:
    w: float
    tags: set[str]


class Opaque:
    def __str__(self) -> str:
        return "<opaque thing>"


def test_results_that_are_not_json_become_json() -> None:
    value: Any = {
        "point": Point(x=1, y=2),
        "box": Box(w=math.inf, tags={"b", "a"}),
        "opaque": Opaque(),
        "tuple": (1, "two"),
        3: b"bytes",
        "nan": math.nan,
    }
    safe = to_json_safe(value)
    assert json.loads(json.dumps(safe, allow_nan=False)) == {
        "point": {"x": 1, "y": 2},
        "box": {"w": "inf", "tags": ["a", "b"]},
        "opaque": "<opaque thing>",
        "tuple": [1, "two"],
        "3": "b'bytes'",
        "nan": "nan",
    }


def test_tool_results_of_any_type_write(tmp_path: Path) -> None:
    @tool
    def thing() -> Any:
        """Return something JSON cannot hold."""
        return {"when": Opaque(), "nums": {3, 1, 2}}

    result = LLMCompiler(llm=ScriptedLLM(["1. thing()\n2. join()", "Action: Finish(ok)"]), tools=[thing]).run("q")
    data = json.loads(write_trace(result, tmp_path / "t.json", question="q").read_text())
    assert data["tasks"][0]["result"] == {"when": "<opaque thing>", "nums": [1, 2, 3]}
