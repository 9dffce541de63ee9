"""The baselines of ``planners``: ReAct and native parallel tool calling, on the engine's executor.

Offline, with the scripted test doubles: the three agents give the same answer to the same
question; ReAct's tool calls never overlap and the native agent's do (proved with a barrier,
not with sleeps); the native agent starts each call as its turn streams (a model that waits
for the first tool to start before it sends the second call proves it), and a turn that breaks
or is cut after a call started runs that call to its end, then fails; a failing tool in a
native turn answers its own call id with an error and keeps the others; step and turn limits
end runs with the records kept. Also ``Executor.run_tasks`` / ``run_calls`` / ``call_round``,
the ReAct reply parser, and the local model's ReAct grammar (sampled in pure Python, and one
short real-model run marked ``local_model``).
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from llmcompiler import (
    Executor,
    JoinerDecided,
    Limits,
    LLMCompiler,
    Message,
    ModelError,
    ModelRequest,
    ParseError,
    RoundStarted,
    RunError,
    TaskFinished,
    TaskParsed,
    TaskStarted,
    Tool,
    ToolCall,
    ToolLimits,
    Truncated,
    Usage,
    UserError,
    parse_plan,
    tool,
)
from llmcompiler._events import RunEvent
from llmcompiler._literals import Ref, Template
from llmcompiler.demo import DEMO_TOOLS
from llmcompiler.models import cost_usd
from llmcompiler.models._grammar import PlanLimits, react_grammar
from llmcompiler.models._llamacpp import LlamaCppChat, build_prompt
from llmcompiler.testing import ScriptedLLM
from planners import (
    DEFAULT_SYSTEM_PROMPT,
    Agent,
    ParallelToolCallAgent,
    ReActAgent,
    TurnLimitExceeded,
    parse_react_reply,
)
from planners._react import action_task

WEATHER = {"Tokyo": "sunny, 21°C", "Oslo": "rain, 8°C", "Lima": "overcast, 19°C"}
ANSWER = "Tokyo: sunny, 21°C; Oslo: rain, 8°C"
QUESTION = "What is the weather in Tokyo and in Oslo?"


@tool
async def weather(city: str) -> str:
    """The current weather in a city.

    Args:
        city: the city's name.
    """
    await asyncio.sleep(0)  # a real await point: other calls may run meanwhile
    return WEATHER[city]


@tool(name="fx.rate")
def fx_rate(base: str, quote: str) -> float:
    """An exchange rate (a dotted tool name)."""
    return {"USD/EUR": 0.92}[f"{base}/{quote}"]


@tool
async def broken(city: str) -> str:
    """A tool that always fails."""
    raise ConnectionError(f"no route to the {city} weather station")


def _tool_messages(request: ModelRequest) -> list[Message]:
    return [m for m in request.messages if m.role == "tool"]


Step = str | ToolCall | Usage | Truncated | asyncio.Event | Callable[[], object] | BaseException


class Paced:
    """A model whose turns are steps: events to yield (text, calls, usage, ``Truncated``), an
    ``asyncio.Event`` to wait for (the stream pauses there), a function to call, an exception to
    raise. It shows when a run starts a call: while the stream waits, or only after it."""

    model_name = "paced"

    def __init__(self, *turns: list[Step]) -> None:
        self.turns = list(turns)
        self.requests: list[ModelRequest] = []

    async def stream(self, request: ModelRequest) -> AsyncIterator[str | ToolCall | Usage | Truncated]:
        self.requests.append(request)
        for step in self.turns[len(self.requests) - 1]:
            if isinstance(step, asyncio.Event):
                await step.wait()
            elif isinstance(step, BaseException):
                raise step
            elif isinstance(step, str | ToolCall | Usage | Truncated):
                yield step
            else:
                step()


# --- the three agents, one answer -----------------------------------------------------------


async def test_the_same_question_gets_the_same_answer_from_all_three_agents() -> None:
    compiler_llm = ScriptedLLM(
        [
            'Thought: both cities at once.\n1. weather("Tokyo")\n2. weather("Oslo")\n3. join()\n<END_OF_PLAN>',
            f"Thought: both are known.\nAction: Finish({ANSWER})",
        ]
    )
    react_llm = ScriptedLLM(
        [
            'Thought: Tokyo first.\nAction: weather(city="Tokyo")',
            'Thought: now Oslo.\nAction: weather("Oslo")',
            f"Thought: both are known.\nAction: Finish({ANSWER})",
        ]
    )
    native_llm = ScriptedLLM(
        [
            [
                ToolCall(name="weather", args={"city": "Tokyo"}, id="t1"),
                ToolCall(name="weather", args={"city": "Oslo"}),
            ],
            ANSWER,
        ]
    )
    agents: list[Agent] = [
        LLMCompiler(llm=compiler_llm, tools=[weather]),
        ReActAgent(llm=react_llm, tools=[weather]),
        ParallelToolCallAgent(llm=native_llm, tools=[weather]),
    ]
    results = [await agent.arun(QUESTION) for agent in agents]
    for llm in (compiler_llm, react_llm, native_llm):
        llm.assert_complete()

    assert [r.answer for r in results] == [ANSWER] * 3
    # The same tool calls with the same results, whatever the strategy.
    for result in results:
        calls = sorted((t.tool, tuple(t.args.items()), t.result) for t in result.tasks if t.tool != "join")
        assert calls == [
            ("weather", (("city", "Oslo"),), WEATHER["Oslo"]),
            ("weather", (("city", "Tokyo"),), WEATHER["Tokyo"]),
        ]
        assert all(t.ok for t in result.tasks)
    assert [r.rounds for r in results] == [1, 3, 2]  # LLMCompiler: plans; baselines: model turns
    # Each model's last call read both results, in its own format.
    join_request = compiler_llm.requests[-1]
    assert "Observation: sunny, 21°C" in join_request.messages[-1].content
    react_last = react_llm.requests[-1]
    observations = [m.content for m in react_last.messages if m.role == "user"][1:]
    assert observations == ["Observation: sunny, 21°C", "Observation: rain, 8°C"]
    native_last = native_llm.requests[-1]
    assert [(m.tool_call_id, m.content, m.is_error) for m in _tool_messages(native_last)] == [
        ("t1", "sunny, 21°C", False),
        ("call_2", "rain, 8°C", False),
    ]


def test_every_agent_satisfies_the_agent_protocol() -> None:
    llm = ScriptedLLM([])
    for agent in (
        LLMCompiler(llm=llm, tools=[weather]),
        ReActAgent(llm=llm, tools=[weather]),
        ParallelToolCallAgent(llm=llm, tools=[weather]),
    ):
        assert isinstance(agent, Agent)


def test_run_works_from_sync_code_and_refuses_a_running_loop() -> None:
    llm = ScriptedLLM(['Action: weather("Lima")', "Action: Finish(overcast)"])
    assert ReActAgent(llm=llm, tools=[weather]).run("Lima?").answer == "overcast"
    native = ParallelToolCallAgent(llm=ScriptedLLM(["no tools needed"]), tools=[weather])
    assert native.run("Hi?").answer == "no tools needed"


async def test_run_inside_a_loop_is_refused() -> None:
    with pytest.raises(UserError, match=r"await agent\.arun"):
        ReActAgent(llm=ScriptedLLM([]), tools=[weather]).run("x")


# --- concurrency: ReAct never overlaps, the native agent does ------------------------------


async def test_react_tool_calls_never_overlap() -> None:
    in_flight = 0
    most = 0

    @tool
    async def probe(city: str) -> str:
        """Counts the calls running at once."""
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        for _ in range(5):
            await asyncio.sleep(0)  # yield to anything else that could be running
        in_flight -= 1
        return WEATHER[city]

    llm = ScriptedLLM([f'Thought: {c}.\nAction: probe("{c}")' for c in WEATHER] + ["Action: Finish(done)"])
    result = await ReActAgent(llm=llm, tools=[probe]).arun("Weather everywhere?")
    assert result.answer == "done"
    assert most == 1
    records = sorted(result.tasks, key=lambda r: r.start or 0.0)
    assert len(records) == 3 and all(r.ok for r in records)
    for before, after in itertools.pairwise(records):
        assert before.end is not None and after.start is not None
        assert before.end <= after.start
    assert [r.round for r in result.tasks] == [1, 2, 3]


async def test_the_native_agent_runs_a_turns_calls_at_the_same_time() -> None:
    cities = list(WEATHER)
    barrier = asyncio.Barrier(len(cities))

    @tool
    async def gated(city: str) -> str:
        """Returns only once every call of the turn has started."""
        await barrier.wait()
        return WEATHER[city]

    llm = ScriptedLLM([[ToolCall(name="gated", args={"city": c}) for c in cities], "all three"])
    async with asyncio.timeout(10):  # sequential calls would wait at the barrier forever
        result = await ParallelToolCallAgent(llm=llm, tools=[gated]).arun("Weather everywhere?")
    assert result.answer == "all three"
    assert [t.result for t in result.tasks] == [WEATHER[c] for c in cities]
    starts = [t.start for t in result.tasks if t.start is not None]
    ends = [t.end for t in result.tasks if t.end is not None]
    assert len(starts) == len(ends) == 3
    assert max(starts) <= min(ends)  # every call started before any finished


async def test_the_native_agent_starts_each_call_as_its_turn_streams() -> None:
    first_started = asyncio.Event()
    ran: list[str] = []

    @tool
    async def probe(city: str) -> str:
        """Record the call; the first one lets the model go on."""
        ran.append(city)
        first_started.set()
        return WEATHER[city]

    garbled = ToolCall(name="probe", id="g", error="the arguments of tool call 'probe' are not valid JSON")
    llm = Paced(
        [
            "Checking. ",
            ToolCall(name="probe", args={"city": "Tokyo"}, id="a"),
            first_started,  # a run that waits for the whole turn never gets past this
            garbled,
            ToolCall(name="probe", args={"city": "Oslo"}, id="b"),
            Usage(calls=1),
        ],
        ["Tokyo sunny, Oslo rain."],
    )
    seen: list[RunEvent] = []
    async with asyncio.timeout(10):
        result = await ParallelToolCallAgent(llm=llm, tools=[probe]).arun(QUESTION, on_event=seen.append)
    assert result.answer == "Tokyo sunny, Oslo rain."
    assert ran == ["Tokyo", "Oslo"]  # the garbled call failed alone, never ran
    assert [(t.idx, t.state) for t in result.tasks] == [(1, "done"), (2, "skipped"), (3, "done")]
    assert "not valid JSON" in (result.tasks[1].error or "")
    # Call 1 started before call 3 was even parsed (2 is the garbled one).
    order = [(type(e).__name__, getattr(e, "idx", None)) for e in seen if isinstance(e, TaskParsed | TaskStarted)]
    assert order.index(("TaskStarted", 1)) < order.index(("TaskParsed", 3))
    turn = result.round_timings[0]
    assert turn.first_dispatch == result.tasks[0].start
    assert turn.first_dispatch is not None and turn.first_dispatch < turn.plan_end <= turn.tasks_end
    # The results go back one per call id, in call order; the text is the turn's thought.
    results = _tool_messages(llm.requests[1])
    assert [(m.tool_call_id, m.is_error) for m in results] == [("a", False), ("g", True), ("b", False)]
    assert result.thoughts == ["Checking."]


async def test_a_turn_that_breaks_after_a_call_started_runs_it_to_its_end_then_fails() -> None:
    started, release = asyncio.Event(), asyncio.Event()

    @tool
    async def slow(city: str) -> str:
        """Runs until released."""
        started.set()
        await release.wait()
        return f"{city} done"

    llm = Paced(
        [ToolCall(name="weather", args={"city": "Tokyo"}), Usage(calls=1)],
        [
            ToolCall(name="slow", args={"city": "Oslo"}),
            started,
            release.set,  # the call is still running when the stream breaks
            ConnectionError("the connection dropped"),
        ],
    )
    async with asyncio.timeout(10):
        with pytest.raises(ModelError, match="ConnectionError: the connection dropped") as caught:
            await ParallelToolCallAgent(llm=llm, tools=[weather, slow]).arun(QUESTION)
    assert not isinstance(caught.value, BaseExceptionGroup)
    # Not cancelled: the started call ran to its end, and the error holds every record of the run.
    assert [(t.idx, t.tool, t.state, t.result) for t in caught.value.tasks] == [
        (1, "weather", "done", WEATHER["Tokyo"]),
        (2, "slow", "done", "Oslo done"),
    ]


async def test_a_turn_cut_at_the_token_limit_after_a_call_started_runs_it_then_fails() -> None:
    started, release = asyncio.Event(), asyncio.Event()

    @tool
    async def slow(city: str) -> str:
        """Runs until released."""
        started.set()
        await release.wait()
        return f"{city} done"

    cut = ToolCall(name="slow", id="c", error="the arguments of tool call 'slow' are not valid JSON")
    llm = Paced(
        [
            ToolCall(name="slow", args={"city": "Oslo"}, id="s"),
            started,
            cut,
            Usage(calls=1),
            release.set,
            Truncated("length"),
        ]
    )
    with pytest.raises(
        ModelError, match=r"cut short .*\(length\).* 2 tool call\(s\) \(handed on as they arrived\)"
    ) as caught:
        await ParallelToolCallAgent(llm=llm, tools=[slow]).arun(QUESTION)
    assert [(t.tool, t.state, t.result) for t in caught.value.tasks] == [
        ("slow", "done", "Oslo done"),
        ("slow", "skipped", None),
    ]
    assert len(llm.requests) == 1  # nothing of the cut turn goes back to the model


async def test_cancelling_the_run_cancels_the_calls_of_the_streaming_turn() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    @tool
    async def slow(city: str) -> str:
        """Waits until cancelled."""
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return city  # pragma: no cover - never let go

    llm = Paced([ToolCall(name="slow", args={"city": "Oslo"}), asyncio.Event()])  # a turn that never ends
    run = asyncio.create_task(ParallelToolCallAgent(llm=llm, tools=[slow]).arun(QUESTION))
    async with asyncio.timeout(10):
        await started.wait()
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
    assert cancelled.is_set()


async def test_the_native_agent_honours_the_executors_concurrency_limit() -> None:
    in_flight = 0
    most = 0

    @tool
    async def probe(city: str) -> str:
        """Counts the calls running at once."""
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        for _ in range(5):
            await asyncio.sleep(0)
        in_flight -= 1
        return WEATHER[city]

    llm = ScriptedLLM([[ToolCall(name="probe", args={"city": c}) for c in WEATHER], "ok"])
    result = await ParallelToolCallAgent(llm=llm, tools=[probe], max_concurrency=1).arun("?")
    assert result.answer == "ok" and len(result.tasks) == 3
    assert most == 1


# --- errors in native turns ----------------------------------------------------------------


async def test_a_failing_tool_in_a_native_turn_answers_its_call_id_with_an_error_and_keeps_the_others() -> None:
    llm = ScriptedLLM(
        [
            [
                ToolCall(name="weather", args={"city": "Tokyo"}, id="a"),
                ToolCall(name="broken", args={"city": "Oslo"}, id="b"),
                ToolCall(name="weather", args={"city": "Lima"}, id="c"),
                ToolCall(name="nope", args={}, id="d"),
                ToolCall(name="weather", args={"town": "Lima"}, id="e"),
            ],
            "Tokyo is sunny, Lima overcast; Oslo is unknown.",
        ]
    )
    result = await ParallelToolCallAgent(llm=llm, tools=[weather, broken]).arun(QUESTION)
    assert result.answer == "Tokyo is sunny, Lima overcast; Oslo is unknown."
    results = _tool_messages(llm.requests[1])
    assert [m.tool_call_id for m in results] == ["a", "b", "c", "d", "e"]
    assert [m.is_error for m in results] == [False, True, False, True, True]
    assert results[0].content == WEATHER["Tokyo"]
    assert results[2].content == WEATHER["Lima"]
    assert "ConnectionError: no route to the Oslo weather station" in results[1].content
    assert "unknown tool 'nope'" in results[3].content
    assert "invalid arguments for weather" in results[4].content
    # The assistant turn in the history carries exactly the calls answered.
    (assistant,) = [m for m in llm.requests[1].messages if m.role == "assistant"]
    assert [c.id for c in assistant.tool_calls] == ["a", "b", "c", "d", "e"]
    # Unknown tools and invalid arguments never reach a call: those tasks are skipped, as in a plan.
    assert [t.state for t in result.tasks] == ["done", "failed", "done", "skipped", "skipped"]


async def test_a_garbled_call_in_a_native_turn_fails_alone_and_never_runs() -> None:
    ran: list[str] = []

    @tool
    async def probe(city: str) -> str:
        """Record the call."""
        ran.append(city)
        return city

    garbled = ToolCall(name="probe", id="b", error="the arguments of tool call 'probe' are not valid JSON")
    llm = ScriptedLLM([[ToolCall(name="probe", args={"city": "Tokyo"}, id="a"), garbled], "done"])
    result = await ParallelToolCallAgent(llm=llm, tools=[probe]).arun(QUESTION)
    results = _tool_messages(llm.requests[1])
    assert [(m.tool_call_id, m.is_error) for m in results] == [("a", False), ("b", True)]
    assert "not valid JSON" in results[1].content
    assert ran == ["Tokyo"]
    assert [t.state for t in result.tasks] == ["done", "skipped"]


async def test_missing_and_duplicate_call_ids_are_replaced_by_unique_ones() -> None:
    llm = ScriptedLLM(
        [
            [
                ToolCall(name="weather", args={"city": "Tokyo"}),
                ToolCall(name="weather", args={"city": "Oslo"}, id="x"),
                ToolCall(name="weather", args={"city": "Lima"}, id="x"),
            ],
            "ok",
        ]
    )
    await ParallelToolCallAgent(llm=llm, tools=[weather]).arun("?")
    ids = [m.tool_call_id for m in _tool_messages(llm.requests[1])]
    assert ids == ["call_1", "x", "call_3"]
    # A provider id that looks like one of ours does not make a second one with its name.
    llm2 = ScriptedLLM(
        [
            [
                ToolCall(name="weather", args={"city": "Tokyo"}, id="call_2"),
                ToolCall(name="weather", args={"city": "Oslo"}),
                ToolCall(name="weather", args={"city": "Lima"}, id="call_2"),
            ],
            "ok",
        ]
    )
    await ParallelToolCallAgent(llm=llm2, tools=[weather]).arun("?")
    assert [m.tool_call_id for m in _tool_messages(llm2.requests[1])] == ["call_2", "call_2_2", "call_3"]


async def test_a_tool_timeout_is_an_error_result_under_the_executors_limits() -> None:
    started = asyncio.Event()

    @tool
    async def stuck(city: str) -> str:
        """Never returns."""
        started.set()
        await asyncio.Event().wait()
        return city

    llm = ScriptedLLM([[ToolCall(name="stuck", args={"city": "Oslo"}, id="s")], "gave up"])
    agent = ParallelToolCallAgent(llm=llm, tools=[stuck], tool_limits={"stuck": ToolLimits(timeout=0.01)})
    result = await agent.arun("?")
    assert started.is_set()
    (message,) = _tool_messages(llm.requests[1])
    assert message.is_error and "timed out after 0.01s" in message.content
    assert result.tasks[0].state == "failed"


async def test_the_native_agent_sends_its_tools_natively_and_a_system_prompt() -> None:
    llm = ScriptedLLM(["hello"])
    await ParallelToolCallAgent(llm=llm, tools=[weather, fx_rate]).arun("Hi")
    (request,) = llm.requests
    assert request.native_tools is True
    assert [t.name for t in request.tools] == ["weather", "fx.rate"]
    assert [m.role for m in request.messages] == ["system", "user"]
    assert request.messages[0].content == DEFAULT_SYSTEM_PROMPT
    llm2 = ScriptedLLM(["hello"])
    await ParallelToolCallAgent(llm=llm2, tools=[weather], system_prompt="").arun("Hi")
    assert [m.role for m in llm2.requests[0].messages] == ["user"]


async def test_text_beside_tool_calls_is_kept_as_a_thought() -> None:
    class Mixed(ScriptedLLM):
        async def _play(self, request: ModelRequest, reply: Any) -> Any:
            if isinstance(reply, list):
                yield "Let me check both."
            async for event in super()._play(request, reply):
                yield event

    llm = Mixed([[ToolCall(name="weather", args={"city": "Oslo"})], "rain"])
    result = await ParallelToolCallAgent(llm=llm, tools=[weather]).arun("Oslo?")
    assert result.thoughts == ["Let me check both."]
    (assistant,) = [m for m in llm.requests[1].messages if m.role == "assistant"]
    assert assistant.content == "Let me check both."


async def test_an_empty_native_reply_is_an_error() -> None:
    llm = ScriptedLLM([[ToolCall(name="weather", args={"city": "Oslo"})], ""])
    with pytest.raises(RunError, match="neither text nor tool calls") as info:
        await ParallelToolCallAgent(llm=llm, tools=[weather]).arun("?")
    assert [t.result for t in info.value.tasks] == [WEATHER["Oslo"]]


# --- limits --------------------------------------------------------------------------------


async def test_react_step_limit_ends_the_run_with_the_records() -> None:
    llm = ScriptedLLM([f'Thought: again.\nAction: weather("{c}")' for c in ("Tokyo", "Oslo")])
    with pytest.raises(TurnLimitExceeded, match=r"max_steps=2") as info:
        await ReActAgent(llm=llm, tools=[weather], max_steps=2).arun("?")
    assert isinstance(info.value, RunError)
    assert (info.value.limit_name, info.value.limit) == ("max_steps", 2)
    assert [t.result for t in info.value.tasks] == [WEATHER["Tokyo"], WEATHER["Oslo"]]
    llm.assert_complete()


async def test_native_turn_limit_ends_the_run_with_the_records() -> None:
    turn = [ToolCall(name="weather", args={"city": "Tokyo"}), ToolCall(name="weather", args={"city": "Oslo"})]
    llm = ScriptedLLM([turn, turn])
    with pytest.raises(TurnLimitExceeded, match=r"ParallelToolCallAgent .* max_turns=2") as info:
        await ParallelToolCallAgent(llm=llm, tools=[weather], max_turns=2).arun("?")
    assert len(info.value.tasks) == 4
    assert [t.idx for t in info.value.tasks] == [1, 2, 3, 4]
    assert [t.round for t in info.value.tasks] == [1, 1, 2, 2]


def test_limits_below_one_and_no_tools_are_refused() -> None:
    with pytest.raises(UserError, match="max_steps must be at least 1"):
        ReActAgent(llm=ScriptedLLM([]), tools=[weather], max_steps=0)
    with pytest.raises(UserError, match="max_turns must be at least 1"):
        ParallelToolCallAgent(llm=ScriptedLLM([]), tools=[weather], max_turns=0)
    with pytest.raises(UserError, match="ReActAgent needs at least one tool"):
        ReActAgent(llm=ScriptedLLM([]), tools=[])
    with pytest.raises(UserError, match="ParallelToolCallAgent needs at least one tool"):
        ParallelToolCallAgent(llm=ScriptedLLM([]), tools=[])


async def test_a_model_failure_keeps_the_finished_records() -> None:
    llm = ScriptedLLM(['Action: weather("Oslo")', ModelError("scripted", "overloaded")])
    with pytest.raises(ModelError, match="overloaded") as info:
        await ReActAgent(llm=llm, tools=[weather]).arun("?")
    assert [t.result for t in info.value.tasks] == [WEATHER["Oslo"]]
    native = ScriptedLLM([[ToolCall(name="weather", args={"city": "Lima"})], ModelError("scripted", "cut")])
    with pytest.raises(ModelError, match="cut") as info2:
        await ParallelToolCallAgent(llm=native, tools=[weather]).arun("?")
    assert [t.result for t in info2.value.tasks] == [WEATHER["Lima"]]


async def test_react_refuses_native_tool_calls() -> None:
    llm = ScriptedLLM(['Action: weather("Oslo")', [ToolCall(name="weather", args={"city": "Lima"})]])
    with pytest.raises(ModelError, match="native tool call") as info:
        await ReActAgent(llm=llm, tools=[weather]).arun("?")
    assert len(info.value.tasks) == 1


# --- ReAct steps ---------------------------------------------------------------------------


async def test_react_bad_actions_become_error_observations_and_the_run_goes_on() -> None:
    llm = ScriptedLLM(
        [
            "Thought: hmm, no action here.",
            "Thought: a tool that does not exist.\nAction: teleport('Oslo')",
            'Action: weather("Oslo"',  # no closing parenthesis: a failed task, as in a plan
            "Action: join()",
            "Action: Finish()",
            'Action: weather(city="Oslo")\nObservation: invented',
            "Thought: done.\nAction: Finish(rain)",
        ]
    )
    result = await ReActAgent(llm=llm, tools=[weather]).arun("Oslo?")
    assert result.answer == "rain"
    observations = [m.content for m in llm.requests[-1].messages if m.role == "user"][1:]
    assert observations[0].startswith("Observation: ERROR: no action in the reply")
    assert "unknown tool 'teleport'" in observations[1]
    assert "missing ')'" in observations[2]
    assert "join() is not a tool here" in observations[3]
    assert "Finish() holds no answer" in observations[4]
    assert observations[5] == "Observation: rain, 8°C"  # the invented observation was cut off
    assert [t.tool for t in result.tasks] == ["teleport", "weather", "weather"]
    assert [t.state for t in result.tasks] == ["skipped", "skipped", "done"]
    assert result.tasks[0].thought == "a tool that does not exist."
    assert len(result.plan_errors) == 3
    assert result.rounds == 7


async def test_react_actions_may_reference_earlier_results() -> None:
    @tool
    def shout(text: str) -> str:
        """Upper-case a text."""
        return text.upper()

    llm = ScriptedLLM(['Action: weather("Oslo")', "Action: shout($1)", "Action: Finish(RAIN, 8°C)"])
    result = await ReActAgent(llm=llm, tools=[weather, shout]).arun("?")
    assert [t.result for t in result.tasks] == [WEATHER["Oslo"], "RAIN, 8°C"]
    assert result.tasks[1].deps == frozenset({1})


AIRPORTS = {
    "NYC": {"entityId": "E-NYC", "skyId": "JFK", "name": "New York"},
    "LON": {"entityId": "E-LON", "skyId": "LHR"},
}


@tool
def airport(query: str) -> dict[str, str]:
    """Find an airport."""
    return AIRPORTS[query]


@tool
def flights(origin: str, dest: str) -> str:
    """Search flights between two airports."""
    return f"{origin} -> {dest}: 2 flights"


def test_a_react_action_may_read_a_field_of_an_earlier_result() -> None:
    """The action is a plan line: ``$1.entityId``, ``$2["skyId"]``, ``${2}.skyId`` and a braced
    path in a string are references into results, with the edge to the task."""
    task = action_task('flights(origin=$1.entityId, dest=$2["skyId"])', 3, [1, 2], "both known")
    assert isinstance(task, TaskParsed)
    assert task.kwargs == {"origin": Ref(1, ("entityId",)), "dest": Ref(2, ("skyId",))}
    assert task.deps == frozenset({1, 2}) and task.thought == "both known"
    task = action_task('flights(${2}.skyId, "from ${1.entityId}, $1.50")', 3, [1, 2], None)
    assert isinstance(task, TaskParsed)
    assert task.args[0] == Ref(2, ("skyId",))
    assert task.args[1] == Template(("from ", Ref(1, ("entityId",)), ", ", Ref(1), ".50"))
    bad = action_task("flights($1.entityId., $2)", 3, [1, 2], None)
    assert isinstance(bad, ParseError) and bad.idx == 3 and "$1.entityId" in bad.reason


async def test_react_runs_a_path_into_an_earlier_result_and_a_bad_path_fails_alone() -> None:
    llm = ScriptedLLM(
        [
            'Thought: first airport.\nAction: airport("NYC")',
            'Thought: second airport.\nAction: airport("LON")',
            "Thought: a field London lacks.\nAction: flights($2.name, $1.name)",
            'Thought: now the ids.\nAction: flights(origin=$1.entityId, dest=$2["skyId"])',
            "Thought: done.\nAction: Finish(2 flights)",
        ]
    )
    result = await ReActAgent(llm=llm, tools=[airport, flights]).arun("Flights from NYC to LON?")
    assert result.answer == "2 flights"
    failed, ran = result.tasks[2], result.tasks[3]
    assert failed.state == "skipped" and failed.error is not None  # never called
    assert "$2.name: no key 'name'; keys: entityId, skyId" in failed.error
    assert ran.args == {"origin": "E-NYC", "dest": "LHR"} and ran.result == "E-NYC -> LHR: 2 flights"
    assert ran.deps == frozenset({1, 2})
    observations = [m.content for m in llm.requests[-1].messages if m.role == "user"][1:]
    assert observations[2].startswith("Observation: ERROR: ") and "$2.name: no key 'name'" in observations[2]
    assert observations[3] == "Observation: E-NYC -> LHR: 2 flights"


async def test_react_prompts_show_the_tools_question_and_stop_before_observations() -> None:
    llm = ScriptedLLM(["Action: Finish(x)"])
    await ReActAgent(llm=llm, tools=[weather, fx_rate]).arun("Which city?")
    (request,) = llm.requests
    assert request.purpose == "react"
    assert request.stop == ("Observation:",)
    system, user = request.messages
    assert "weather(city: str)" in system.content and "fx.rate(base: str, quote: str)" in system.content
    assert "Action: Finish(" in system.content
    assert user.content.strip() == "Question: Which city?"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('Thought: look.\nAction: weather("Oslo")', {"thought": "look.", "action": 'weather("Oslo")'}),
        (
            "Thought: done.\nAction: Finish(Austin Powers (film))",
            {"thought": "done.", "answer": "Austin Powers (film)"},
        ),
        ("**Thought:** two\nlines\n**Action:** Finish('quoted')", {"thought": "two lines", "answer": "quoted"}),
        ("Finish(42)", {"answer": "42"}),
        ("Action: weather('x')\nAction: Finish(y)", {"action": "weather('x')\nAction: Finish(y)"}),
        ("I will Replan(later)", {"thought": "I will Replan(later)", "error": "no action in the reply"}),
        ("Action:   ", {"error": "the action is empty"}),
    ],
)
def test_parse_react_reply(text: str, expected: dict[str, str]) -> None:
    step = parse_react_reply(text)
    for key in ("thought", "action", "answer"):
        assert getattr(step, key) == expected.get(key), key
    if "error" in expected:
        assert step.error is not None and step.error.startswith(expected["error"])
    else:
        assert step.error is None


def test_an_action_with_a_second_call_runs_only_the_first() -> None:
    task = action_task("weather('x')\nAction: Finish(y)", 4, [1, 2, 3], "t")
    assert isinstance(task, TaskParsed)
    assert (task.idx, task.tool, task.args, task.thought) == (4, "weather", ("x",), "t")


# --- events, usage, cost -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["react", "native"])
async def test_events_usage_and_cost_are_reported(kind: str) -> None:
    name = "openai:gpt-4o-mini"  # a priced model name: cost is summed per call
    if kind == "react":
        llm = ScriptedLLM(['Action: weather("Oslo")', "Action: Finish(rain)"], name=name)
        agent: ReActAgent | ParallelToolCallAgent = ReActAgent(llm=llm, tools=[weather])
    else:
        llm = ScriptedLLM([[ToolCall(name="weather", args={"city": "Oslo"})], "rain"], name=name)
        agent = ParallelToolCallAgent(llm=llm, tools=[weather])
    seen: list[RunEvent] = []
    per_call: list[Usage] = []
    original = llm._play

    async def counting(request: ModelRequest, reply: Any) -> Any:
        async for event in original(request, reply):
            if isinstance(event, Usage):
                per_call.append(event)
            yield event

    llm._play = counting  # type: ignore[method-assign]
    result = await agent.arun("Oslo?", on_event=seen.append)
    assert result.answer == "rain"
    assert result.rounds == 2
    assert result.usage.calls == 2
    assert result.usage == per_call[0] + per_call[1]
    expected = sum(cost_usd(name, u) or 0.0 for u in per_call)
    assert result.cost_usd == pytest.approx(expected) and expected > 0
    kinds = [type(e) for e in seen if not isinstance(e, TaskParsed)]
    assert kinds == [RoundStarted, TaskStarted, TaskFinished, RoundStarted, JoinerDecided]
    assert len(result.round_timings) == 2
    first = result.round_timings[0]
    assert first.plan_start <= (first.plan_first_chunk or 0) <= (first.first_dispatch or 0) <= first.tasks_end
    assert first.plan_end <= first.tasks_end
    if kind == "react":  # ReAct acts on a whole step; the native agent starts calls as they stream
        assert first.plan_end <= (first.first_dispatch or 0)
    assert result.start <= first.plan_start and result.round_timings[-1].tasks_end <= result.end


async def test_test_double_models_have_no_cost() -> None:
    llm = ScriptedLLM(["Action: Finish(x)"])
    result = await ReActAgent(llm=llm, tools=[weather]).arun("?")
    assert result.cost_usd is None
    assert result.usage.calls == 1


# --- Executor.run_tasks / run_calls ---------------------------------------------------------


async def test_run_calls_runs_structured_calls_with_per_call_failures() -> None:
    executor = Executor([weather, broken])
    records = await executor.run_calls(
        [(1, "weather", {"city": "Oslo"}), (2, "broken", {"city": "Lima"}), (3, "nope", {}), (4, "weather", {})],
        round=3,
    )
    assert [r.idx for r in records] == [1, 2, 3, 4]
    assert [r.state for r in records] == ["done", "failed", "skipped", "skipped"]
    assert records[0].result == WEATHER["Oslo"] and records[0].line == "1. weather(city='Oslo')"
    assert "unknown tool 'nope'" in (records[2].error or "")
    assert "invalid arguments for weather" in (records[3].error or "")
    assert {r.round for r in records} == {3}
    assert sorted(executor.records) == [1, 2, 3, 4]
    with pytest.raises(UserError, match="task number 2 is used twice"):
        await executor.run_calls([(2, "weather", {"city": "Oslo"})])


async def test_call_round_starts_each_call_when_given_under_the_same_rules() -> None:
    ran = asyncio.Event()

    @tool
    async def probe(city: str) -> str:
        """Say it ran."""
        ran.set()
        return city

    executor = Executor([weather, broken, probe])
    async with executor.call_round(round=2) as calls:
        calls.start(1, ToolCall(name="probe", args={"city": "Oslo"}))
        async with asyncio.timeout(10):
            await ran.wait()  # the call runs while the block goes on
        calls.start(3, ToolCall(name="weather", args={"city": "Lima"}))
        calls.start(7, ToolCall(name="broken", args={"city": "Lima"}))
        calls.start(2, ToolCall(name="nope"))
        calls.start(4, ToolCall(name="weather", error="garbled"))
        calls.start(5, ToolCall(name="join"))  # a model may call it natively: no plan's end here
        with pytest.raises(UserError, match="task number 3 is used twice"):
            calls.start(3, ToolCall(name="weather", args={"city": "Tokyo"}))
    assert [(r.idx, r.state, r.round) for r in calls.records] == [
        (1, "done", 2),
        (3, "done", 2),
        (7, "failed", 2),
        (2, "skipped", 2),
        (4, "skipped", 2),
        (5, "skipped", 2),
    ]
    assert calls.records[1].result == WEATHER["Lima"]
    assert "unknown tool 'nope'" in (calls.records[3].error or "")
    assert "garbled" in (calls.records[4].error or "")
    assert "unknown tool 'join'" in (calls.records[5].error or "")
    with pytest.raises(UserError, match="after its call round ended"):
        calls.start(6, ToolCall(name="weather", args={"city": "Oslo"}))
    async with executor.call_round() as again:
        with pytest.raises(UserError, match="task number 1 is used twice"):
            again.start(1, ToolCall(name="weather", args={"city": "Oslo"}))
    assert again.records == []


async def test_a_call_round_whose_body_fails_drains_its_calls_and_raises_the_failure_as_itself() -> None:
    release = asyncio.Event()

    @tool
    async def slow(x: int) -> int:
        """Runs until released."""
        await release.wait()
        return x

    executor = Executor([slow])

    async def turn() -> None:
        async with executor.call_round() as calls:
            calls.start(1, ToolCall(name="slow", args={"x": 7}))
            release.set()  # the call is still running when the body fails
            raise KeyError("the stream broke")

    with pytest.raises(KeyError, match="the stream broke") as caught:
        await turn()
    assert not isinstance(caught.value, BaseExceptionGroup)
    assert [(r.state, r.result) for r in executor.records.values()] == [("done", 7)]  # drained, not cancelled


async def test_run_tasks_runs_parsed_plans_with_dependencies_and_failed_lines() -> None:
    @tool
    def shout(text: str) -> str:
        """Upper-case a text."""
        return text.upper()

    executor = Executor([weather, shout], limits=Limits(max_concurrency=1))
    events = parse_plan('1. weather("Oslo")\n2. shout($1)\n3. shout(\n4. join()')
    records = await executor.run_tasks(events)
    assert [(r.idx, r.tool, r.state) for r in records] == [
        (1, "weather", "done"),
        (2, "shout", "done"),
        (3, "shout", "skipped"),
        (4, "join", "done"),
    ]
    assert records[1].result == "RAIN, 8°C"
    later = await executor.run_tasks(parse_plan("5. shout($2)", known=[1, 2, 3, 4]), round=2)
    assert later[0].result == "RAIN, 8°C" and later[0].round == 2
    orphan = TaskParsed(idx=9, tool="shout", args=(), kwargs={}, deps=frozenset({8}), thought=None, line="9.")
    with pytest.raises(UserError, match=r"unknown tasks \[8\]"):
        await executor.run_tasks([orphan])
    assert await executor.run_tasks([ParseError(line="x", reason="no task")]) == []


# --- the local model's ReAct grammar ---------------------------------------------------------


def _dotted() -> list[Tool]:
    def noop(**kwargs: Any) -> None:
        return None

    return [
        Tool.from_schema(
            name="spotify.play",
            description="Play an artist.",
            parameters={
                "type": "object",
                "properties": {"artist": {"type": "string"}, "duration": {"type": "integer"}},
                "required": ["artist"],
            },
            fn=noop,
        ),
        fx_rate,
    ]


@pytest.mark.parametrize("tool_set", ["demo", "dotted"])
def test_every_sampled_react_step_parses(tool_set: str) -> None:
    tools = list(DEMO_TOOLS) if tool_set == "demo" else _dotted()
    by_name = {t.name: t for t in tools}
    grammar = react_grammar(
        [t.spec for t in tools], limits=PlanLimits(max_string=12, max_list=3), max_thought=30, max_answer=30
    )
    rng = random.Random(11)
    finishes = calls = 0
    for _ in range(400):
        text = grammar.sample(rng)
        step = parse_react_reply(text)
        assert step.error is None, text
        assert step.thought, text
        if step.answer is not None:
            finishes += 1
            continue
        assert step.action is not None
        task = action_task(step.action, 3, [1, 2], step.thought)
        assert isinstance(task, TaskParsed), (text, task)
        assert task.tool in by_name and not task.deps, text
        tool_ = by_name[task.tool]
        tool_.validate(dict(zip(tool_.param_names, task.args, strict=False)) | task.kwargs)
        calls += 1
    assert finishes > 0 and calls > 0


def test_react_grammar_needs_tools_and_names_dotted_tools_verbatim() -> None:
    with pytest.raises(ValueError, match="at least one tool"):
        react_grammar([])
    gbnf = react_grammar([t.spec for t in _dotted()]).to_gbnf()
    assert '"spotify.play("' in gbnf and '"fx.rate("' in gbnf
    assert '"Finish("' in gbnf


def test_the_local_react_prompt_is_a_transcript_and_is_grammar_bound() -> None:
    request = ModelRequest(
        messages=(
            Message(role="system", content="instructions for chat models"),
            Message(role="user", content="Question: Weather in Oslo?\n"),
            Message(role="assistant", content='Thought: look.\nAction: weather("Oslo")'),
            Message(role="user", content="Observation: rain, 8°C"),
        ),
        purpose="react",
        stop=("Observation:",),
        tools=(weather.spec,),
    )
    prompt, gbnf = build_prompt(request)
    assert prompt.endswith(
        'Question: Weather in Oslo?\nThought: look.\nAction: weather("Oslo")\nObservation: rain, 8°C\n'
    )
    assert "- weather(city: str): The current weather in a city." in prompt
    assert "instructions for chat models" not in prompt
    assert gbnf is not None and gbnf.startswith('root ::= "Thought: "')


@pytest.mark.local_model
async def test_react_runs_on_the_local_model() -> None:
    """Structure only: the small model either answers or uses up its steps, and every step it
    writes parses (the grammar sees to that)."""
    chat = LlamaCppChat(max_tokens=48)
    agent = ReActAgent(llm=chat, tools=DEMO_TOOLS, max_steps=2)
    limit: TurnLimitExceeded | None = None
    try:
        result = await agent.arun("What is the weather in Oslo?")
    except TurnLimitExceeded as exc:
        limit = exc
    if limit is not None:
        assert limit.limit == 2
        tasks, plan_errors = limit.tasks, []
    else:
        assert result.answer.strip()
        assert result.usage.calls == result.rounds <= 2
        tasks, plan_errors = result.tasks, result.plan_errors
    assert len(tasks) + len(plan_errors) <= 2
    assert all(t.tool in {d.name for d in DEMO_TOOLS} for t in tasks)
