"""The ``llmcompiler`` command line: plain lines in pipes, the live view on terminals, traces, timelines."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from rich.console import Console

from llmcompiler import ModelError, ModelRequest, Usage, _cli
from llmcompiler._live import LiveView
from llmcompiler.models import ModelEvent
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
    # A usage error, like argparse's (issue 10 row 29).
    assert _cli.main(["run", "q", "--model", "openai:gpt-4o-mini", "--tools", tools]) == 2
    err = capsys.readouterr().err
    assert "error:" in err
    assert message in err.replace("\n", " ")


def test_a_missing_key_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli.main(["run", "q", "--model", "openai:gpt-4o-mini"]) == 1
    assert "OPENAI_API_KEY" in capsys.readouterr().err


# -- live view, trace, timeline, secrets

FAKE_KEY = "sk-test-FAKEKEY0123456789abcdef"

TOOLS_MODULE = f'''
from llmcompiler import tool


@tool
async def lookup(city: str) -> str:
    """Look a city up."""
    if city == "Atlantis":
        raise LookupError("refused: Authorization: Bearer {FAKE_KEY}")
    return city + ": 20C"


@tool
def combine(a: str, b: str) -> str:
    """Join two texts."""
    return a + " | " + b


TOOLS = [lookup, combine]
'''

PLAN = '1. lookup("Tokyo")\n2. lookup("Atlantis")\n3. combine($1, $2)\n4. combine($1, "x")\n5. join()'


@pytest.fixture
def user_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A user's tools module on the import path; yields its --tools spec."""
    name = f"user_tools_{abs(hash(str(tmp_path)))}"
    (tmp_path / f"{name}.py").write_text(TOOLS_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return f"{name}:TOOLS"


def _model(monkeypatch: pytest.MonkeyPatch, replies: list[str]) -> ScriptedLLM:
    llm = ScriptedLLM(replies, name="scripted-model")
    monkeypatch.setattr("llmcompiler.models._loader.load_model", lambda spec, base_url=None: llm)
    return llm


def test_trace_and_timeline_files_describe_the_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, user_tools: str
) -> None:
    _model(monkeypatch, [PLAN, "Action: Finish(Tokyo 20C)"])
    trace, svg = tmp_path / "run.json", tmp_path / "run.svg"
    argv = ["run", "Weather?", "--tools", user_tools, "--trace", str(trace), "--timeline", str(svg)]
    assert _cli.main(argv) == 0
    data = json.loads(trace.read_text())
    assert data["question"] == "Weather?" and data["model"] == "scripted-model"
    assert data["answer"] == "Tokyo 20C" and data["rounds"] == 1 and data["error"] is None
    assert [(t["idx"], t["tool"], t["state"]) for t in data["tasks"]] == [
        (1, "lookup", "done"),
        (2, "lookup", "failed"),
        (3, "combine", "skipped"),
        (4, "combine", "done"),
        (5, "join", "done"),
    ]
    assert data["tasks"][3]["result"] == "Tokyo: 20C | x"
    assert data["usage"]["calls"] == 2
    root = ET.fromstring(svg.read_text())
    bars = sorted(el.attrib["id"] for el in root.iter() if el.attrib.get("id", "").startswith("task-"))
    assert bars == ["task-1", "task-2", "task-3", "task-4"]


def test_timeline_as_html(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, user_tools: str) -> None:
    _model(monkeypatch, [PLAN, "Action: Finish(Tokyo 20C)"])
    html = tmp_path / "run.html"
    assert _cli.main(["run", "Weather?", "--tools", user_tools, "--timeline", str(html), "--quiet"]) == 0
    text = html.read_text()
    assert text.startswith("<!DOCTYPE html>") and text.count('id="task-') == 4


def test_secrets_never_reach_output_or_trace(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, user_tools: str
) -> None:
    plan = f'1. lookup("Atlantis")\n2. combine("{FAKE_KEY}", "b")\n3. join()'
    _model(monkeypatch, [plan, f"Action: Finish(the key is {FAKE_KEY})"])
    trace = tmp_path / "t.json"
    assert (
        _cli.main(["run", "q", "--tools", user_tools, "--trace", str(trace), "--timeline", str(tmp_path / "t.svg")])
        == 0
    )
    out = capsys.readouterr()
    assert "FAKEKEY" not in out.out + out.err
    assert "refused: Authorization: [redacted]" in out.out
    assert "Answer: the key is [redacted]" in out.out
    assert "FAKEKEY" not in trace.read_text() and "FAKEKEY" not in (tmp_path / "t.svg").read_text()
    assert json.loads(trace.read_text())["tasks"][1]["args"] == {"a": "[redacted]", "b": "b"}


def test_a_failed_run_still_writes_its_trace(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, user_tools: str
) -> None:
    _model(monkeypatch, [PLAN])  # the joiner has no reply: the run fails after the tasks ran
    trace = tmp_path / "t.json"
    assert _cli.main(["run", "q", "--tools", user_tools, "--trace", str(trace)]) == 1
    assert "error:" in capsys.readouterr().err
    data = json.loads(trace.read_text())
    assert data["error"] and "scripted-model was called 2 times" in data["error"]
    assert data["answer"] == "" and data["usage"] is None
    assert [t["idx"] for t in data["tasks"]][:4] == [1, 2, 3, 4]


def test_timeline_needs_svg_or_html(capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli.main(["run", "q", "--timeline", "out.png"]) == 2  # a usage error, like argparse
    assert "--timeline writes .svg or .html files" in capsys.readouterr().err


def test_a_trace_that_cannot_be_written_after_all_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # The checks before the run passed, but the directory went away during it.
    _model(monkeypatch, ['1. math("1 + 1")\n2. join()', "Action: Finish(2)"])
    monkeypatch.setattr(_cli, "_check_writable", lambda flag, value: None)
    missing = tmp_path / "no" / "such" / "dir" / "t.json"
    assert _cli.main(["run", "q", "--quiet", "--trace", str(missing)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "2\n"
    assert "error:" in captured.err and "cannot write" in captured.err


# -- refused before anything is loaded (issue 11)


@pytest.fixture
def no_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the command loads a model or tools."""

    def refuse(*args: object, **kwargs: object) -> None:
        pytest.fail("loaded something before refusing the command")

    monkeypatch.setattr("llmcompiler.models._loader.load_model", refuse)
    monkeypatch.setattr(_cli, "_load_tools", refuse)


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize("question", ["", "   ", "\t\n ", "\u3000"])
def test_a_blank_question_is_refused_before_loading_anything(
    question: str, no_loading: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli.main(["run", question]) == 2
    assert _one_error_line(capsys).startswith("error: the question is blank")


def test_a_trace_in_a_missing_directory_is_refused_before_the_run(
    no_loading: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "no" / "such" / "t.json"
    assert _cli.main(["run", "q", "--trace", str(missing)]) == 2
    line = _one_error_line(capsys)
    assert (
        line == f"error: --trace: cannot write {str(missing)!r}: the directory {str(missing.parent)!r} does not exist"
    )


def test_a_timeline_that_is_a_directory_is_refused_before_the_run(
    no_loading: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "out.svg"
    folder.mkdir()
    assert _cli.main(["run", "q", "--timeline", str(folder)]) == 2
    assert _one_error_line(capsys) == f"error: --timeline: {str(folder)!r} is a directory; give a file name"


@pytest.mark.parametrize("exists", [True, False])
def test_a_path_without_write_permission_is_refused_before_the_run(
    exists: bool, no_loading: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # os.access stands in for the file system: as root every path is writable.
    target = tmp_path / "t.json"
    if exists:
        target.write_text("{}")
    monkeypatch.setattr("os.access", lambda path, mode: False)
    assert _cli.main(["run", "q", "--trace", str(target)]) == 2
    line = _one_error_line(capsys)
    assert line.startswith("error: --trace: cannot write") and line.endswith("permission denied")


def test_trace_and_timeline_cannot_be_the_same_file(
    no_loading: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = str(tmp_path / "run.svg")
    assert _cli.main(["run", "q", "--trace", path, "--timeline", path]) == 2
    assert "--trace and --timeline name the same file" in _one_error_line(capsys)


def test_writable_paths_are_left_alone_until_the_run_writes_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _model(monkeypatch, ['1. math("1 + 1")\n2. join()', "Action: Finish(2)"])
    trace = tmp_path / "t.json"
    assert _cli.main(["run", "q", "--quiet", "--trace", str(trace)]) == 0
    assert json.loads(trace.read_text())["answer"] == "2"


# -- errors name the command's flags (issue 11)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["--model", "local", "--base-url", "http://localhost:1/v1"],
            "error: --base-url 'http://localhost:1/v1' needs a --model openai:<model> naming the model the server runs",
        ),
        (
            ["--model", "openai:gpt-4o-mini"],
            "error: openai:gpt-4o-mini needs an API key: set OPENAI_API_KEY "
            "(or --base-url for an OpenAI-compatible server that needs none)",
        ),
        (
            ["--model", "anthropic:claude-sonnet-4-5"],
            "error: anthropic:claude-sonnet-4-5 needs an API key: set ANTHROPIC_API_KEY",
        ),
        (["--model", "openai:"], "error: --model 'openai:' names no model: write 'openai:<model>'"),
    ],
)
def test_errors_name_the_flags_not_the_python_parameters(
    argv: list[str], expected: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    assert _cli.main(["run", "q", *argv]) == 1
    assert _one_error_line(capsys) == expected


def test_an_unknown_model_names_the_flags() -> None:
    from llmcompiler._errors import UserError
    from llmcompiler.models._loader import load_model

    with pytest.raises(UserError) as caught:
        load_model("nonsense")
    python = str(caught.value)
    assert "base_url=" in python  # the Python API's message names the Python parameter
    cli = _cli._cli_wording(python)
    assert cli.startswith("unknown --model 'nonsense': use 'local'")
    assert "with --base-url or OPENAI_BASE_URL" in cli and "base_url=" not in cli


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "openai:m: cannot reach http://x (refused) after 2 retries; check base_url= or OPENAI_BASE_URL",
            "openai:m: cannot reach http://x (refused) after 2 retries; check --base-url or OPENAI_BASE_URL",
        ),
        (
            "openai:m: the API key was refused: check OPENAI_API_KEY or api_key=",
            "openai:m: the API key was refused: check OPENAI_API_KEY",
        ),
        (
            "unknown model or endpoint: check the model name and base_url",
            "unknown model or endpoint: check the model name and --base-url",
        ),
        ("a base_url_env and my_base_url stay", "a base_url_env and my_base_url stay"),
    ],
)
def test_model_errors_read_with_flags(text: str, expected: str) -> None:
    assert _cli._cli_wording(text) == expected


# -- pipes, --version, help (issue 11)


def test_nothing_is_wrapped_in_a_pipe(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    answer = " ".join(f"word{i}" for i in range(80))  # about 500 characters
    _model(monkeypatch, [f'1. math("{" + ".join(["1"] * 60)}")\n2. join()', f"Action: Finish({answer})"])
    assert _cli.main(["run", "What is " + "one plus " * 20 + "one?"]) == 0
    out = capsys.readouterr().out
    assert f"Answer: {answer}\n" in out  # one line, whole, though the pipe's console is 80 wide
    plan = next(line for line in out.splitlines() if "plan  1. math" in line)
    assert plan.endswith('+ 1")') and len(plan) > 100


def test_a_long_error_is_one_line_in_a_pipe(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*(["a-rather-long-directory-name"] * 6), "t.json")
    assert _cli.main(["run", "q", "--trace", str(deep)]) == 2
    line = _one_error_line(capsys)
    assert str(deep) in line and len(line) > 200


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.metadata

    with pytest.raises(SystemExit) as done:
        _cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"llmcompiler {importlib.metadata.version('llmcompiler')}\n"


def test_every_argument_has_help() -> None:
    import argparse

    def actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
        found: list[argparse.Action] = []
        for action in parser._actions:
            found.append(action)
            if isinstance(action, argparse._SubParsersAction):
                found.extend(action._choices_actions)
                for sub in action.choices.values():
                    found.extend(actions(sub))
        return found

    every = actions(_cli._parser())
    assert len(every) >= 12
    missing = [a.dest for a in every if not a.help or a.help == argparse.SUPPRESS or not str(a.help).strip()]
    assert missing == []


def test_the_cli_draws_the_live_view_on_a_terminal(monkeypatch: pytest.MonkeyPatch, user_tools: str) -> None:
    _model(monkeypatch, [PLAN, "Action: Finish(Tokyo 20C)"])
    console = Console(record=True, force_terminal=True, width=160, height=40, color_system=None, file=io.StringIO())
    monkeypatch.setattr(_cli, "LiveView", lambda _console: LiveView(console, auto_refresh=False))
    assert _cli.main(["run", "Weather?", "--tools", user_tools]) == 0
    text = console.export_text()
    assert "Plan · round 1" in text
    final = [line for line in text.splitlines() if line.startswith(("1 │", "2 │", "3 │", "4 │"))][-4:]
    assert [line.split("│")[4].strip() for line in final] == ["done", "failed", "skipped", "done"]
    assert "Tokyo 20C" in text and "one after another" in text
    assert "FAKEKEY" not in text


# --- llmcompiler extract ----------------------------------------------------------------------

SCHEMAS_MODULE = '''
from pydantic import BaseModel


class Person(BaseModel):
    """A person mentioned in the text."""

    name: str
    role: str | None = None


class Location(BaseModel):
    """A place."""

    name: str


SCHEMAS = [Person, Location]
NOT_A_SCHEMA = 42
'''

EXTRACT_TEXT = "Ada Lovelace, a mathematician, wrote to Charles Babbage from London."


class _BySchema:
    """A model that answers an extraction call by its schema's name (calls may come in any order)."""

    def __init__(self, replies: dict[str, str | Exception]) -> None:
        self.replies = replies
        self.requests: list[ModelRequest] = []

    @property
    def model_name(self) -> str:
        return "scripted-extract"

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        self.requests.append(request)
        reply = self.replies[request.response_name or ""]
        if isinstance(reply, Exception):
            raise reply
        yield reply
        yield Usage(prompt_tokens=10, completion_tokens=5, calls=1)


@pytest.fixture
def user_schemas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A user's schemas module and a text file in the current directory; yields the module's name."""
    name = f"user_schemas_{abs(hash(str(tmp_path)))}"
    (tmp_path / f"{name}.py").write_text(SCHEMAS_MODULE)
    (tmp_path / "text.txt").write_text(EXTRACT_TEXT, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return name


def _extract_model(monkeypatch: pytest.MonkeyPatch, replies: dict[str, str | Exception]) -> _BySchema:
    llm = _BySchema(replies)
    monkeypatch.setattr("llmcompiler.models._loader.load_model", lambda spec, base_url=None: llm)
    return llm


PEOPLE = '{"items": [{"name": "Charles Babbage"}, {"name": "Ada Lovelace", "role": "mathematician"}]}'


def test_extract_prints_a_table_per_schema(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], user_schemas: str
) -> None:
    llm = _extract_model(monkeypatch, {"Person": PEOPLE, "Location": '{"items": [{"name": "London"}]}'})
    assert _cli.main(["extract", "text.txt", "--schemas", f"{user_schemas}:SCHEMAS"]) == 0
    out = capsys.readouterr().out
    assert "Person (2)" in out and "Location (1)" in out
    lines = out.splitlines()
    ada = next(line for line in lines if "Ada Lovelace" in line)
    assert "mathematician" in ada and "0-12" in ada  # in text order, with its offsets
    assert out.index("Ada Lovelace") < out.index("Charles Babbage")
    assert "3 items, 0 errors; parallel, 2 calls" in out
    assert sorted(r.response_name or "" for r in llm.requests) == ["Location", "Person"]
    assert all(r.question == EXTRACT_TEXT for r in llm.requests)


def test_extract_writes_json_and_keeps_what_did_not_fail(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], user_schemas: str
) -> None:
    _extract_model(monkeypatch, {"Person": PEOPLE, "Location": ModelError("local", "the model fell over")})
    status = _cli.main(
        [
            "extract",
            "text.txt",
            "--schemas",
            f"{user_schemas}:Person",
            "--schemas",
            f"{user_schemas}:Location",
            "--strategy",
            "sequential",
            "--json",
            "out.json",
        ]
    )
    assert status == 1  # something failed; the rest is written
    data = json.loads(Path("out.json").read_text(encoding="utf-8"))
    assert data["strategy"] == "sequential"
    assert [(e["item"]["name"], e["start"], e["end"]) for e in data["items"]["Person"]] == [
        ("Ada Lovelace", 0, 12),
        ("Charles Babbage", 40, 55),
    ]
    assert data["items"]["Location"] == []
    assert [(e["schema"], e["chunk"]) for e in data["errors"]] == [("Location", 0)]
    assert "fell over" in data["errors"][0]["reason"]
    assert data["usage"]["calls"] >= 1
    out = capsys.readouterr().out
    assert "failed Location (chunk 0)" in out  # the tables and the errors are shown too


def test_extract_json_to_standard_output(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], user_schemas: str
) -> None:
    _extract_model(monkeypatch, {"Person": PEOPLE, "Location": '{"items": []}'})
    assert _cli.main(["extract", "text.txt", "--schemas", f"{user_schemas}:SCHEMAS", "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [e["item"]["name"] for e in data["items"]["Person"]] == ["Ada Lovelace", "Charles Babbage"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.txt", "--schemas", "{m}:SCHEMAS"], "no such file: 'missing.txt'"),
        (["text.txt", "--schemas", "{m}:NOT_A_SCHEMA"], "expected a pydantic model class or a list of them, got int"),
        (["text.txt", "--schemas", "{m}"], "--schemas takes module:attribute"),
        (["text.txt", "--schemas", "{m}:NOPE"], "has no attribute 'NOPE'"),
        (["text.txt", "--schemas", "{m}:SCHEMAS", "--json", "nodir/out.json"], "does not exist"),
    ],
)
def test_extract_bad_options_are_refused_before_loading_the_model(
    args: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    user_schemas: str,
) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("nothing may load")

    monkeypatch.setattr("llmcompiler.models._loader.load_model", refuse)
    assert _cli.main(["extract", *(a.replace("{m}", user_schemas) for a in args)]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and message in err.replace("\n", " ")


# -- tools from MCP servers (--mcp)

MCP_SERVER = Path(__file__).parent / "mcp_servers" / "tools_server.py"


def _mcp_command(*extra: str) -> str:
    import shlex
    import sys

    return shlex.join([sys.executable, str(MCP_SERVER), *extra])


def test_mcp_servers_give_their_tools_and_leave_the_demo_tools_out(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    llm = _model(monkeypatch, ["1. echo('hi')\n2. get_weather('Oslo')\n3. join()", "Action: Finish(sunny)"])
    assert _cli.main(["run", "Weather?", "--mcp", _mcp_command(), "--quiet"]) == 0
    assert capsys.readouterr().out == "sunny\n"
    prompt = llm.requests[0].messages[0].content
    assert "echo(text: str" in prompt and "get_weather(city: str" in prompt and "math(expression: str" not in prompt
    assert "hi" in llm.requests[1].messages[-1].content and "sunny in Oslo" in llm.requests[1].messages[-1].content


def test_mcp_with_tools_and_prefix(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    llm = _model(
        monkeypatch, ["1. one_echo('a')\n2. two_echo('b')\n3. evaluate('1 + 1')\n4. join()", "Action: Finish(ok)"]
    )
    argv = ["run", "q", "--tools", "llmcompiler._safemath:evaluate", "--mcp-prefix", "--quiet"]
    argv += ["--mcp", _mcp_command("--name", "one"), "--mcp", _mcp_command("--name", "two")]
    assert _cli.main(argv) == 0
    assert capsys.readouterr().out == "ok\n"
    joined = llm.requests[1].messages[-1].content
    assert "a" in joined and "b" in joined and "2" in joined


def test_a_name_clash_between_mcp_servers_names_the_flag(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _model(monkeypatch, [])  # never called: the servers are refused first
    argv = ["run", "q", "--mcp", _mcp_command("--name", "one"), "--mcp", _mcp_command("--name", "two")]
    assert _cli.main(argv) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--mcp:" in err and "'one'" in err and "'two'" in err and "--mcp-prefix" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--mcp", "/nonexistent/mcp-server"], "--mcp: MCP server '/nonexistent/mcp-server' could not connect"),
        (["--mcp", "  "], "--mcp is blank"),
        (["--mcp-prefix"], "--mcp-prefix needs --mcp"),
    ],
)
def test_bad_mcp_options_are_one_clear_line(
    extra: list[str], message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _model(monkeypatch, [])
    assert _cli.main(["run", "q", *extra]) == 2
    assert message in " ".join(capsys.readouterr().err.split())
