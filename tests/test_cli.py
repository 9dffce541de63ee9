"""The ``llmcompiler`` command line (the full live view comes with the CLI issue)."""

from __future__ import annotations

import pytest

from llmcompiler import _cli
from llmcompiler.testing import ScriptedLLM


def test_run_prints_the_plan_tasks_and_answer(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    llm = ScriptedLLM(['1. math("6 * 7")\n2. join()', "Action: Finish(42)"])
    monkeypatch.setattr("llmcompiler.models._loader.load_model", lambda spec, base_url=None: llm)
    assert _cli.main(["run", "What is 6 times 7?"]) == 0
    out = capsys.readouterr().out
    assert 'plan  1. math("6 * 7")' in out
    assert "done  1. math → 42.0" in out
    assert "Answer: 42" in out


def test_quiet_prints_only_the_answer(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    llm = ScriptedLLM(['1. math("1 + 1")\n2. join()', "Action: Finish(2)"])
    monkeypatch.setattr("llmcompiler.models._loader.load_model", lambda spec, base_url=None: llm)
    assert _cli.main(["run", "1 + 1?", "--quiet"]) == 0
    assert capsys.readouterr().out == "2\n"


def test_user_tools_load_from_module_attr(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    llm = ScriptedLLM(['1. evaluate("2 + 3")\n2. join()', "Action: Finish(5)"])
    monkeypatch.setattr("llmcompiler.models._loader.load_model", lambda spec, base_url=None: llm)
    assert _cli.main(["run", "2 + 3?", "--tools", "llmcompiler._safemath:evaluate", "--quiet"]) == 0
    assert capsys.readouterr().out == "5\n"
    assert "evaluate(expression: str)" in llm.requests[0].messages[0].content


@pytest.mark.parametrize(
    ("tools", "message"),
    [
        ("nomodule", "--tools takes module:attribute"),
        ("no_such_module_xyz:TOOLS", "cannot import 'no_such_module_xyz'"),
        ("llmcompiler.demo:NOPE", "module 'llmcompiler.demo' has no attribute 'NOPE'"),
    ],
)
def test_bad_tools_option_is_one_clear_line(tools: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli.main(["run", "q", "--model", "openai:gpt-4o-mini", "--tools", tools]) == 1
    err = capsys.readouterr().err
    assert "error:" in err
    assert message in err.replace("\n", " ")


def test_a_missing_key_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli.main(["run", "q", "--model", "openai:gpt-4o-mini"]) == 1
    assert "OPENAI_API_KEY" in capsys.readouterr().err
