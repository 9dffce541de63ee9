"""Speculation with the real local model as the drafter (Gemma 3 270M through llama.cpp).

The planner is a scripted slow model (6 s to its first token, as a hosted planner under load can
be), writing the plan the demo question needs; the drafter is the real local model, given the
planner's own request, with its plan grammar. Whatever it drafts, the run's results must be those
of the run without it, and the drafter's stream must be closed when the plan ends.
"""

from __future__ import annotations

import pytest

from llmcompiler import LLMCompiler, RunResult
from llmcompiler.demo import DEMO_TOOLS
from llmcompiler.models import LlamaCppChat
from llmcompiler.testing import ScriptedLLM

QUESTION = "What is the weather and the local time in Tokyo and in Oslo?"
PLAN = (
    'Thought: I need the weather and time of both cities.\n1. weather("Tokyo")\n2. local_time("Tokyo")\n'
    '3. weather("Oslo")\n4. local_time("Oslo")\n5. join()'
)
ANSWER = "Action: Finish(done)"


def planner() -> ScriptedLLM:
    return ScriptedLLM([PLAN, ANSWER], ttft=6.0, token_delay=0.05, name="slow planner")


def shown(result: RunResult) -> list[tuple[object, ...]]:
    # local_time's result is the clock's minute: compare the weather's results and every call.
    return [(t.tool, t.args, t.result if t.tool == "weather" else None, t.error) for t in result.tasks]


@pytest.fixture(scope="module")
def drafter() -> LlamaCppChat:
    chat = LlamaCppChat()
    chat.preload(("plan",))
    return chat


@pytest.mark.local_model
async def test_the_local_model_drafts_for_a_slow_planner_and_changes_no_result(drafter: LlamaCppChat) -> None:
    without = await LLMCompiler(llm=planner(), tools=DEMO_TOOLS).arun(QUESTION)
    result = await LLMCompiler(llm=planner(), tools=DEMO_TOOLS, drafter=drafter).arun(QUESTION)
    assert shown(result) == shown(without)
    assert result.answer == without.answer == "done"
    spec = result.speculation
    assert spec is not None
    assert spec.errors == []
    assert spec.drafter == drafter.model_name
    # With a 6 s head start the draft's first calls start before the planner writes them.
    assert spec.drafted >= 1
    assert spec.started >= 1
    assert spec.hits + spec.misses == spec.started
    assert spec.usage.prompt_tokens > 0
    assert result.usage == without.usage  # the drafter's tokens are its own
