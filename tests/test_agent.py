"""The LLMCompiler agent: plan → execute → join, replanning, errors, with the scripted test doubles."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from llmcompiler import (
    JoinerDecided,
    JoinParseError,
    LLMCompiler,
    Message,
    ModelError,
    ModelRequest,
    ReplanLimitExceeded,
    RoundStarted,
    ToolCall,
    Usage,
    UserError,
    tool,
)
from llmcompiler._events import RunEvent
from llmcompiler.models import ModelEvent
from llmcompiler.testing import FunctionLLM, ScriptedLLM, ScriptExhausted, StreamCut, estimate_tokens

FACTS = {"a": 2, "b": 40}


@tool
async def lookup(key: str) -> int:
    """Look a number up.

    Args:
        key: the name of the number.
    """
    if key not in FACTS:
        raise KeyError(key)
    return FACTS[key]


@tool
def add(x: int, y: int) -> int:
    """Add two integers."""
    return x + y


async def test_a_question_is_planned_run_and_answered() -> None:
    llm = ScriptedLLM(
        [
            "Thought: two lookups.\n1. lookup('a')\n2. lookup('b')\n3. add($1, $2)\n4. join()\n<END_OF_PLAN>",
            "Thought: 2 + 40.\nAction: Finish(42)",
        ]
    )
    agent = LLMCompiler(llm=llm, tools=[lookup, add])
    result = await agent.arun("What is a + b?")
    llm.assert_complete()
    assert result.answer == "42"
    assert result.rounds == 1
    assert [(t.idx, t.tool, t.result) for t in result.tasks] == [
        (1, "lookup", 2), (2, "lookup", 40), (3, "add", 42), (4, "join", None),
    ]  # fmt: skip
    assert result.thoughts == ["2 + 40."]
    plan_req, join_req = llm.requests
    assert (plan_req.purpose, join_req.purpose) == ("plan", "join")
    assert plan_req.stop == ("<END_OF_PLAN>",)
    assert "lookup(key: str)" in plan_req.messages[0].content
    assert "key: the name of the number." in plan_req.messages[0].content
    assert plan_req.messages[1].content.strip() == "Question: What is a + b?"
    assert "1. lookup('a')\nObservation: 2" in join_req.messages[1].content
    assert "3. add($1, $2)\nObservation: 42" in join_req.messages[1].content
    # usage: the sum of both calls' reports
    expected_prompt = sum(estimate_tokens(m.content) for r in llm.requests for m in r.messages)
    assert result.usage.prompt_tokens == expected_prompt
    assert result.usage.calls == 2 and result.usage.completion_tokens > 0
    (timing,) = result.round_timings
    assert timing.plan_start <= timing.plan_end <= timing.tasks_end <= timing.join_start <= timing.join_end
    assert timing.first_dispatch is not None and result.start <= timing.plan_start and result.end >= timing.join_end


async def test_a_replan_continues_numbering_and_uses_round_one_results() -> None:
    llm = ScriptedLLM(
        [
            "1. lookup('a')\n2. lookup('c')\n3. join()",
            "Thought: c is unknown.\nAction: Replan(c does not exist; use b instead)",
            "4. lookup('b')\n5. add($1, $4)\n6. join()",
            "Action: Finish(42)",
        ]
    )
    events: list[RunEvent] = []
    result = await LLMCompiler(llm=llm, tools=[lookup, add], on_event=events.append).arun("a + c?")
    llm.assert_complete()
    assert result.answer == "42" and result.rounds == 2
    assert [t.idx for t in result.tasks] == [1, 2, 3, 4, 5, 6]
    assert [t.round for t in result.tasks] == [1, 1, 1, 2, 2, 2]
    five = result.tasks[4]
    assert five.args == {"x": 2, "y": 40} and five.deps == frozenset({1, 4})
    assert result.tasks[1].error == "lookup raised KeyError: 'c'"
    replan = llm.requests[2].messages[1].content
    assert "c does not exist; use b instead" in replan
    assert "Number its tasks from 4 on" in replan
    assert "Observation: ERROR: lookup raised KeyError: 'c'" in replan
    # The system prompt is static (cacheable): the replan's numbering is in its user message only.
    assert llm.requests[2].messages[0].content == llm.requests[0].messages[0].content
    # What an adapter needs travels as fields, not as the prose above (see test_model_request.py).
    assert [r.first_task for r in llm.requests] == [1, 1, 4, 1]
    assert [r.may_replan for r in llm.requests if r.purpose == "join"] == [True, True]
    rounds = [e for e in events if isinstance(e, RoundStarted)]
    assert [(r.round, r.feedback) for r in rounds] == [(1, None), (2, "c does not exist; use b instead")]
    assert [e.action for e in events if isinstance(e, JoinerDecided)] == ["replan", "finish"]
    assert len(result.round_timings) == 2


async def test_the_last_joiner_is_told_to_answer_and_replan_limit_is_an_error() -> None:
    llm = ScriptedLLM(
        [
            "1. lookup('a')\n2. join()",
            "Action: Replan(more)",
            "3. lookup('b')\n4. join()",
            "Action: Replan(still more)",
        ]
    )
    with pytest.raises(ReplanLimitExceeded, match="max_replans=1") as info:
        await LLMCompiler(llm=llm, tools=[lookup], max_replans=1).arun("q")
    assert "you must answer now" not in llm.requests[1].messages[1].content
    assert "you must answer now" in llm.requests[3].messages[1].content
    assert [r.may_replan for r in llm.requests if r.purpose == "join"] == [True, False]
    assert [r.first_task for r in llm.requests if r.purpose == "plan"] == [1, 3]
    assert [t.result for t in info.value.tasks] == [2, None, 40, None]
    assert info.value.feedback == "still more"


async def test_no_replans_means_the_first_joiner_must_answer() -> None:
    llm = ScriptedLLM(["1. lookup('a')", "Action: Finish(2)"])
    result = await LLMCompiler(llm=llm, tools=[lookup], max_replans=0).arun("a?")
    assert result.answer == "2"
    assert "you must answer now" in llm.requests[1].messages[1].content


async def test_an_unreadable_joiner_reply_is_an_error_that_keeps_the_tasks() -> None:
    llm = ScriptedLLM(["1. lookup('a')\n2. join()", "The answer is probably 2."])
    with pytest.raises(JoinParseError, match="expected 'Action: Finish") as info:
        await LLMCompiler(llm=llm, tools=[lookup]).arun("a?")
    assert [t.result for t in info.value.tasks] == [2, None]


async def test_a_cut_plan_stream_is_an_error_never_a_half_plan() -> None:
    llm = ScriptedLLM([StreamCut("1. lookup('a')\n2. lookup('b')\n3. add($1, ")])
    with pytest.raises(ModelError, match="the stream ended before its end marker") as info:
        await LLMCompiler(llm=llm, tools=[lookup, add]).arun("a + b?")
    assert sorted(t.result for t in info.value.tasks) == [2, 40]  # finished work is not lost
    assert len(llm.requests) == 1  # the joiner never saw a half plan


async def test_a_native_tool_call_in_a_plan_is_a_model_error() -> None:
    llm = ScriptedLLM([[ToolCall(name="lookup", args={"key": "a"})]])
    with pytest.raises(ModelError, match="native tool call"):
        await LLMCompiler(llm=llm, tools=[lookup]).arun("a?")


async def test_a_planner_that_rambles_after_join_is_cut_off_and_reported() -> None:
    closed = asyncio.Event()

    class Rambler:
        model_name = "rambler"

        async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
            if request.purpose == "join":
                yield "Action: Finish(2)"
                return
            try:
                yield "1. lookup('a')\n2. join()\n"
                while True:  # a model that never stops talking
                    yield "and more prose\n"
                    await asyncio.sleep(0)
            finally:
                closed.set()

    result = await asyncio.wait_for(LLMCompiler(llm=Rambler(), tools=[lookup]).arun("a?"), 5)
    assert result.answer == "2"
    assert closed.is_set()
    assert result.plan_errors[0] == "plan line 'and more prose': text after the end of the plan"


async def test_a_separate_joiner_model() -> None:
    planner = ScriptedLLM(["1. lookup('b')\n2. join()"])
    joiner = ScriptedLLM(["Action: Finish(40)"])
    result = await LLMCompiler(llm=planner, joiner_llm=joiner, tools=[lookup]).arun("b?")
    assert result.answer == "40"
    planner.assert_complete()
    joiner.assert_complete()


async def test_function_llm_routes_by_purpose() -> None:
    seen: list[str] = []

    def reply(messages: Sequence[Message], purpose: str) -> str:
        seen.append(purpose)
        return "1. lookup('a')\n2. join()" if purpose == "plan" else "Action: Finish(two)"

    result = await LLMCompiler(llm=FunctionLLM(reply), tools=[lookup]).arun("a?")
    assert result.answer == "two" and seen == ["plan", "join"]


async def test_a_scripted_model_called_too_often_says_so() -> None:
    # A test double's error is not a run error: the run reports it as the model's failure, by name.
    llm = ScriptedLLM(["1. lookup('a')\n2. join()"])
    expected = "the join call failed: ScriptExhausted: scripted was called 2 times but has 1 replies"
    with pytest.raises(ModelError, match=expected) as info:
        await LLMCompiler(llm=llm, tools=[lookup]).arun("a?")
    assert isinstance(info.value.__cause__, ScriptExhausted)
    assert isinstance(info.value.__cause__, AssertionError)
    assert [r.result for r in info.value.tasks if r.tool == "lookup"]  # the finished task is kept


def test_a_scripted_model_called_too_often_outside_a_run_raises_script_exhausted() -> None:
    llm = ScriptedLLM([])
    request = ModelRequest(messages=(Message(role="user", content="q"),), purpose="plan")
    with pytest.raises(ScriptExhausted, match="called 1 times but has 0 replies \\(this call's purpose: 'plan'\\)"):
        llm.stream(request)


def test_assert_complete_names_unused_replies() -> None:
    llm = ScriptedLLM(["a", "b"])
    with pytest.raises(AssertionError, match="2 of 2 scripted replies were not used"):
        llm.assert_complete()


def test_run_from_sync_code() -> None:
    llm = ScriptedLLM(["1. add(1, 2)\n2. join()", "Action: Finish(3)"])
    assert LLMCompiler(llm=llm, tools=[add]).run("1 + 2?").answer == "3"


async def test_run_inside_an_event_loop_is_a_clear_error() -> None:
    agent = LLMCompiler(llm=ScriptedLLM([]), tools=[add])
    with pytest.raises(UserError, match=r"use 'await agent\.arun"):
        agent.run("q")


def test_bad_configuration_is_a_user_error() -> None:
    with pytest.raises(UserError, match="at least one tool"):
        LLMCompiler(llm=ScriptedLLM([]), tools=[])
    with pytest.raises(UserError, match="max_replans must be 0 or more"):
        LLMCompiler(llm=ScriptedLLM([]), tools=[add], max_replans=-1)


async def test_scripted_streams_are_small_chunks_and_honour_stop_sequences() -> None:
    llm = ScriptedLLM(["1. add(1, 2)\n2. join()\n<END_OF_PLAN>\nignored"], chunk_tokens=2)
    request = ModelRequest(messages=(Message(role="user", content="hi there"),), purpose="plan", stop=("<END",))
    events = [e async for e in llm.stream(request)]
    text = "".join(e for e in events if isinstance(e, str))
    assert text == "1. add(1, 2)\n2. join()\n"
    assert all(len(e) <= 6 for e in events if isinstance(e, str))
    assert events[-1] == Usage(prompt_tokens=2, completion_tokens=estimate_tokens(text), calls=1)


async def test_scripted_tool_call_replies() -> None:
    calls = [ToolCall(name="add", args={"x": 1, "y": 2}, id="c1")]
    llm = ScriptedLLM([calls])
    request = ModelRequest(messages=(Message(role="user", content="q"),), purpose="parallel_fc", native_tools=True)
    events = [e async for e in llm.stream(request)]
    assert events[:1] == calls and isinstance(events[1], Usage)


async def test_cost_is_summed_for_priced_models_and_unknown_otherwise() -> None:
    priced = ScriptedLLM(["1. add(1, 2)\n2. join()", "Action: Finish(3)"], name="openai:gpt-4o-mini")
    result = await LLMCompiler(llm=priced, tools=[add]).arun("1 + 2?")
    from llmcompiler.models import cost_usd

    assert result.cost_usd == pytest.approx(cost_usd("openai:gpt-4o-mini", result.usage))
    assert result.cost_usd is not None and result.cost_usd > 0
    local = ScriptedLLM(["1. add(1, 2)\n2. join()", "Action: Finish(3)"])
    assert (await LLMCompiler(llm=local, tools=[add]).arun("1 + 2?")).cost_usd is None
