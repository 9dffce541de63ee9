"""The error tree says what the code does (issue 12).

- the tree drawn in ``llmcompiler._errors``'s docstring is exactly the tree of classes there;
- every exception the packages export is one of ours and is raised (constructed) somewhere in
  their source: an error nobody raises is a promise the code does not keep;
- a test double's error is not one of ours.
"""

from __future__ import annotations

import ast
import inspect
import re
from functools import cache
from pathlib import Path

import pytest

import llmcompiler
import planners
from llmcompiler import _errors
from llmcompiler.testing import ScriptedLLM, ScriptExhausted

ROOT = Path(__file__).resolve().parent.parent


def _drawn_tree() -> dict[str, str | None]:
    """Each class drawn in ``_errors``'s docstring, mapped to the class drawn as its parent."""
    doc = _errors.__doc__ or ""
    block = doc.split("The tree::", 1)[1].strip("\n").split("\n\n", 1)[0]
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in block.splitlines():
        found = re.search(r"[A-Za-z_]\w*", line)
        assert found is not None, line
        depth = found.start()
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[found.group()] = stack[-1][1] if stack else None
        stack.append((depth, found.group()))
    return parents


def test_the_drawn_tree_is_the_tree_of_classes() -> None:
    drawn = _drawn_tree()
    defined = {
        name: cls
        for name, cls in vars(_errors).items()
        if inspect.isclass(cls) and issubclass(cls, _errors.LLMCompilerError)
    }
    assert set(drawn) == set(defined)
    for name, parent in drawn.items():
        ours = [base.__name__ for base in defined[name].__bases__ if issubclass(base, _errors.LLMCompilerError)]
        assert ours == ([parent] if parent else []), name


@cache
def _constructed(package: str) -> frozenset[str]:
    """Names called anywhere in a package's source (``X(...)`` or ``module.X(...)``)."""
    names: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                func = node.func
                if isinstance(func, ast.Name):
                    names.add(func.id)
                elif isinstance(func, ast.Attribute):
                    names.add(func.attr)
    return frozenset(names)


EXPORTED = [
    (module.__name__, name, value)
    for module in (llmcompiler, planners)
    for name in module.__all__
    if inspect.isclass(value := getattr(module, name)) and issubclass(value, BaseException)
]


@pytest.mark.parametrize(("module", "name", "cls"), EXPORTED, ids=[f"{m}.{n}" for m, n, _ in EXPORTED])
def test_every_exported_error_is_ours_and_raised_somewhere(module: str, name: str, cls: type) -> None:
    assert issubclass(cls, llmcompiler.LLMCompilerError)
    if cls is llmcompiler.LLMCompilerError:
        return  # the root, for callers to catch: each of its kinds is raised by itself
    sources = ["llmcompiler"] if module == "llmcompiler" else ["llmcompiler", "planners"]
    assert any(name in _constructed(source) for source in sources), f"nothing raises {module}.{name}"


def test_llmcompiler_exports_exactly_the_errors_the_tree_draws() -> None:
    assert {name for module, name, _ in EXPORTED if module == "llmcompiler"} == set(_drawn_tree())


def test_a_test_doubles_error_is_not_ours() -> None:
    assert issubclass(ScriptExhausted, AssertionError)
    assert not issubclass(ScriptExhausted, llmcompiler.LLMCompilerError)
    assert "ScriptExhausted" not in llmcompiler.__all__
    assert "ScriptExhausted" in _constructed("llmcompiler")
    assert ScriptedLLM.stream.__doc__ is not None and "ScriptExhausted" in ScriptedLLM.stream.__doc__


def test_argument_error_is_ours_and_still_a_value_error() -> None:
    # A model's bad call: caught per task; code that caught ValueError from Tool.validate still does.
    assert issubclass(llmcompiler.ArgumentError, llmcompiler.LLMCompilerError)
    assert issubclass(llmcompiler.ArgumentError, ValueError)
    assert not issubclass(llmcompiler.ArgumentError, llmcompiler.RunError)
