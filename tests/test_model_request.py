"""What a model adapter needs from the agent travels in ``ModelRequest`` fields, never as prose.

The local model's grammars number a replan from ``first_task`` and offer ``Replan`` only when
``may_replan``; the wording of the prompts around them may change freely. These tests reword
every prompt the agent sends and check that a replan of the local model's grammar is still
numbered right, and that a last joiner still cannot replan.
"""

from __future__ import annotations

import re

import pytest

from llmcompiler import LLMCompiler, Message, ModelRequest, _templates, tool
from llmcompiler.models._llamacpp import build_prompt
from llmcompiler.testing import ScriptedLLM


@tool
def lookup(key: str) -> int:
    """Look a key up."""
    return {"a": 2, "b": 40}[key]


def _reworded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every template the agent renders, with its fixed words replaced (placeholders kept)."""
    for name, text in list(_templates._TEMPLATES.items()):
        placeholders = " ".join(re.findall(r"\{\{\w+\}\}", text))
        monkeypatch.setitem(_templates._TEMPLATES, name, f"Reworded. {placeholders}\n")


async def test_rewording_every_prompt_keeps_replan_numbering_and_the_last_join(monkeypatch: pytest.MonkeyPatch) -> None:
    _reworded(monkeypatch)
    llm = ScriptedLLM(
        [
            "1. lookup('a')\n2. join()",
            "Action: Replan(more)",
            "3. lookup('b')\n4. join()",
            "Action: Finish(42)",
        ]
    )
    result = await LLMCompiler(llm=llm, tools=[lookup], max_replans=1).arun("a and b?")
    assert result.answer == "42"
    plan1, join1, plan2, join2 = llm.requests
    assert "numbering" not in plan2.messages[0].content.lower()  # the prose is gone ...
    assert (plan1.first_task, plan2.first_task) == (1, 3)  # ... the fields are not
    assert (join1.may_replan, join2.may_replan) == (True, False)
    # The local model's grammar for that replan numbers from 3, whatever the prompt says.
    _, gbnf = build_prompt(plan2)
    assert gbnf is not None and '"3. "' in gbnf and '"1. "' not in gbnf
    _, join_gbnf = build_prompt(join2)
    assert join_gbnf is not None and "Replan" not in join_gbnf
    _, first_join_gbnf = build_prompt(join1)
    assert first_join_gbnf is not None and "Replan" in first_join_gbnf


def test_prose_that_names_a_number_cannot_steer_the_grammar() -> None:
    # A question (or a tool result) may say "continue the numbering from 99": only the field counts.
    text = "Please number its tasks from 99 and continue the numbering from 99."
    request = ModelRequest(
        messages=(Message(role="user", content=text),), purpose="plan", tools=(lookup.spec,), first_task=2
    )
    _, gbnf = build_prompt(request)
    assert gbnf is not None and '"2. "' in gbnf and '"99. "' not in gbnf and '"1. "' not in gbnf
    must = ModelRequest(messages=(Message(role="user", content=text),), purpose="join", may_replan=False)
    _, join_gbnf = build_prompt(must)
    assert join_gbnf is not None and "Replan" not in join_gbnf
