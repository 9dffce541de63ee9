"""``ParallelToolCallAgent`` through the real ``AsyncOpenAI`` and ``AsyncAnthropic`` clients, against
the loopback wire-format servers.

The servers stream native tool calls (OpenAI ``tool_calls`` deltas, also with every call at
index 0; Anthropic ``tool_use`` blocks with ``input_json_delta``); the agent runs the calls
concurrently (a barrier proves it), and the next request carries one result per call id in
the provider's format, the failed one marked as an error, dotted tool names mapped both ways.

Each call starts while the turn still streams: the server sends the first call, then waits at a
gate that only the first tool, once started, opens, before it sends the second call and the
finish. A client that started calls only after the turn would wait for ever (a timeout fails
the test instead). A turn cut at the token limit after a call started ends the run with the
``ModelError``, the started call run to its end and the cut one failed alone.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from llmcompiler import ModelError, Tool, Usage, tool
from llmcompiler.models._anthropic import AnthropicChat
from llmcompiler.models._openai import OpenAIChat
from planners import DEFAULT_SYSTEM_PROMPT, ParallelToolCallAgent
from tests.wire import SSE, Gate, Script
from tests.wire import anthropic_server as an
from tests.wire import openai_server as oa

SECRET = "sk-test-DISTINCTIVE-parallel-0b9d"
QUESTION = "Play Adele for 5 minutes and tell me the weather in Oslo and Lima."
ANSWER = "Playing Adele; Oslo: rain, 8°C; the Lima station is down."


def _tools(barrier: asyncio.Barrier) -> list[Tool]:
    """Three tools that each return only once all three calls have started."""

    @tool(name="spotify.play")
    async def play(artist: str, duration: int) -> str:
        """Play an artist.

        Args:
            artist: who to play.
            duration: minutes.
        """
        await barrier.wait()
        return f"playing {artist} for {duration} min"

    @tool
    async def weather(city: str) -> str:
        """The current weather in a city."""
        await barrier.wait()
        if city == "Lima":
            raise ConnectionError("the Lima station is down")
        return "rain, 8°C"

    return [play, weather]


def _check_records(result_tasks: list[Any]) -> None:
    assert [(t.tool, t.args) for t in result_tasks] == [
        ("spotify.play", {"artist": "Adele", "duration": 5}),
        ("weather", {"city": "Oslo"}),
        ("weather", {"city": "Lima"}),
    ]
    assert [t.state for t in result_tasks] == ["done", "done", "failed"]
    starts = [t.start for t in result_tasks]
    ends = [t.end for t in result_tasks]
    assert max(starts) <= min(ends)  # all three ran at the same time


# --- OpenAI ---------------------------------------------------------------------------------


# The loopback servers, their scripts and the clients on them: tests/conftest.py (keyed by this module's SECRET).


@pytest.mark.parametrize("layout", ["sequential", "interleaved", "index0"])
async def test_openai_parallel_tool_calls_round_trip(
    openai_llm: OpenAIChat, openai_script: Script, layout: str
) -> None:
    calls = [
        ("call_play", "spotify-play", ['{"artist": "Ad', 'ele", "dura', 'tion": 5}']),
        ("call_oslo", "weather", ['{"city"', ': "Oslo"}']),
        ("call_lima", "weather", ['{"city": "Lima"}']),
    ]
    stream = oa.tool_stream(calls, reuse_index0=layout == "index0", interleave=layout == "interleaved", usage=(40, 22))
    openai_script.add(SSE(stream), oa.text_reply(ANSWER, usage=(90, 15)))
    agent = ParallelToolCallAgent(llm=openai_llm, tools=_tools(asyncio.Barrier(3)))
    async with asyncio.timeout(20):
        result = await agent.arun(QUESTION)

    assert result.answer == ANSWER
    assert result.rounds == 2
    assert result.usage == Usage(prompt_tokens=130, completion_tokens=37, calls=2)
    _check_records(result.tasks)

    first, second = openai_script.bodies()
    assert [t["function"]["name"] for t in first["tools"]] == ["spotify-play", "weather"]
    assert first["parallel_tool_calls"] is True
    assert first["messages"] == [
        {"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
        {"role": "user", "content": QUESTION},
    ]
    assistant, *results = second["messages"][2:]
    assert assistant["role"] == "assistant"
    assert [(c["id"], c["function"]["name"]) for c in assistant["tool_calls"]] == [
        ("call_play", "spotify-play"),
        ("call_oslo", "weather"),
        ("call_lima", "weather"),
    ]
    assert [r["role"] for r in results] == ["tool"] * 3
    assert [r["tool_call_id"] for r in results] == ["call_play", "call_oslo", "call_lima"]
    assert results[0]["content"] == "playing Adele for 5 min"
    assert results[1]["content"] == "rain, 8°C"
    assert results[2]["content"].startswith("ERROR: ")
    assert "ConnectionError: the Lima station is down" in results[2]["content"]


async def test_openai_index0_calls_without_distinct_ids_still_get_one_result_each(
    openai_llm: OpenAIChat, openai_script: Script
) -> None:
    """A server that reuses index 0 and sends ids: a new id starts a new call, even for the same tool."""
    calls = [("c1", "weather", ['{"city": "Oslo"}']), ("c2", "weather", ['{"city": "Oslo"}'])]
    openai_script.add(SSE(oa.tool_stream(calls, reuse_index0=True)), oa.text_reply("rain twice"))

    @tool
    async def weather(city: str) -> str:
        """The current weather in a city."""
        return "rain"

    result = await ParallelToolCallAgent(llm=openai_llm, tools=[weather]).arun("Oslo twice?")
    assert result.answer == "rain twice"
    _, second = openai_script.bodies()
    assert [m.get("tool_call_id") for m in second["messages"] if m["role"] == "tool"] == ["c1", "c2"]


# --- Anthropic ------------------------------------------------------------------------------


async def test_anthropic_parallel_tool_use_round_trip(anthropic_llm: AnthropicChat, anthropic_script: Script) -> None:
    calls = [
        ("toolu_play", "spotify-play", ['{"artist": "Ad', 'ele", "duration": 5}']),
        ("toolu_oslo", "weather", ["", '{"city": "Oslo"}']),
        ("toolu_lima", "weather", ['{"ci', 'ty": "Lima"}']),
    ]
    anthropic_script.add(
        SSE(an.tool_use_stream(calls, text=["I'll call ", "the tools."], usage=(50, 30))),
        SSE(an.text_stream([ANSWER], usage=(120, 20))),
    )
    agent = ParallelToolCallAgent(llm=anthropic_llm, tools=_tools(asyncio.Barrier(3)))
    async with asyncio.timeout(20):
        result = await agent.arun(QUESTION)

    assert result.answer == ANSWER
    assert result.thoughts == ["I'll call the tools."]
    assert result.usage == Usage(prompt_tokens=170, completion_tokens=50, calls=2)
    _check_records(result.tasks)

    first, second = anthropic_script.bodies()
    assert first["system"] == [{"type": "text", "text": DEFAULT_SYSTEM_PROMPT, "cache_control": {"type": "ephemeral"}}]
    assert [t["name"] for t in first["tools"]] == ["spotify-play", "weather"]
    assert first["tools"][-1]["cache_control"] == {"type": "ephemeral"}  # the static prefix is cached
    question, assistant, results = second["messages"]
    assert question == {"role": "user", "content": [{"type": "text", "text": QUESTION}]}
    assert assistant["role"] == "assistant"
    assert assistant["content"][0] == {"type": "text", "text": "I'll call the tools."}
    assert [(b["type"], b["id"], b["name"], b["input"]) for b in assistant["content"][1:]] == [
        ("tool_use", "toolu_play", "spotify-play", {"artist": "Adele", "duration": 5}),
        ("tool_use", "toolu_oslo", "weather", {"city": "Oslo"}),
        ("tool_use", "toolu_lima", "weather", {"city": "Lima"}),
    ]
    # One user message answers every tool_use id, the failure marked is_error.
    assert results["role"] == "user"
    blocks = results["content"]
    assert [(b["type"], b["tool_use_id"], b.get("is_error", False)) for b in blocks] == [
        ("tool_result", "toolu_play", False),
        ("tool_result", "toolu_oslo", False),
        ("tool_result", "toolu_lima", True),
    ]
    assert blocks[0]["content"] == "playing Adele for 5 min"
    assert "ConnectionError: the Lima station is down" in blocks[2]["content"]


# --- calls start while the turn streams ------------------------------------------------------


def _gated_tools(gate: Gate, finished: list[str]) -> list[Tool]:
    """``spotify.play`` opens the server's gate when it starts (so the turn can go on streaming);
    ``weather`` answers at once."""

    @tool(name="spotify.play")
    async def play(artist: str, duration: int) -> str:
        """Play an artist."""
        gate.open()
        finished.append("play")
        return f"playing {artist} for {duration} min"

    @tool
    async def weather(city: str) -> str:
        """The current weather in a city."""
        finished.append(city)
        return "rain, 8°C"

    return [play, weather]


def _check_streamed(result: Any, finished: list[str]) -> None:
    assert [(t.tool, t.state) for t in result.tasks] == [("spotify.play", "done"), ("weather", "done")]
    assert finished[0] == "play"
    (turn, _) = result.round_timings
    play = result.tasks[0]
    # The first call started (and here even ended) before the turn had finished streaming.
    assert turn.first_dispatch == play.start
    assert play.start is not None and play.start < turn.plan_end
    assert turn.plan_start <= (turn.plan_first_chunk or 0) <= play.start
    assert turn.tasks_end >= turn.plan_end


@pytest.mark.parametrize("layout", ["sequential", "index0", "index0_no_ids"])
async def test_openai_a_call_starts_before_the_turn_has_streamed(
    openai_llm: OpenAIChat, openai_script: Script, layout: str
) -> None:
    gate = Gate()
    calls: list[tuple[str, str, list[str | Gate]]] = [
        ("call_play", "spotify-play", ['{"artist": "Ad', 'ele", "duration": 5}']),
        ("call_oslo", "weather", [gate, '{"city": ', '"Oslo"}']),
    ]
    stream = oa.tool_stream(calls, reuse_index0=layout != "sequential", ids=layout != "index0_no_ids")
    openai_script.add(SSE(stream), oa.text_reply("Playing; rain in Oslo."))
    finished: list[str] = []
    agent = ParallelToolCallAgent(llm=openai_llm, tools=_gated_tools(gate, finished))
    async with asyncio.timeout(10):  # without streamed dispatch the server waits at the gate for ever
        result = await agent.arun("Play Adele and the weather in Oslo?")

    assert result.answer == "Playing; rain in Oslo."
    _check_streamed(result, finished)
    _, second = openai_script.bodies()
    expected_ids = ["call_play", "call_oslo"] if layout != "index0_no_ids" else ["call_1", "call_2"]
    assistant = second["messages"][2]
    assert [(c["id"], c["function"]["name"]) for c in assistant["tool_calls"]] == list(
        zip(expected_ids, ["spotify-play", "weather"], strict=True)
    )
    results = second["messages"][3:]
    assert [(r["tool_call_id"], r["content"]) for r in results] == list(
        zip(expected_ids, ["playing Adele for 5 min", "rain, 8°C"], strict=True)
    )


async def test_anthropic_a_call_starts_before_the_turn_has_streamed(
    anthropic_llm: AnthropicChat, anthropic_script: Script
) -> None:
    gate = Gate()
    calls: list[tuple[str, str, list[str | Gate]]] = [
        ("toolu_play", "spotify-play", ['{"artist": "Ad', 'ele", "duration": 5}']),
        ("toolu_oslo", "weather", [gate, '{"city": "Oslo"}']),
    ]
    anthropic_script.add(SSE(an.tool_use_stream(calls)), SSE(an.text_stream(["Playing; rain in Oslo."])))
    finished: list[str] = []
    agent = ParallelToolCallAgent(llm=anthropic_llm, tools=_gated_tools(gate, finished))
    async with asyncio.timeout(10):  # without streamed dispatch the server waits at the gate for ever
        result = await agent.arun("Play Adele and the weather in Oslo?")

    assert result.answer == "Playing; rain in Oslo."
    _check_streamed(result, finished)
    _, second = anthropic_script.bodies()
    _, assistant, results = second["messages"]
    assert [b["id"] for b in assistant["content"]] == ["toolu_play", "toolu_oslo"]
    assert [(b["tool_use_id"], b["content"]) for b in results["content"]] == [
        ("toolu_play", "playing Adele for 5 min"),
        ("toolu_oslo", "rain, 8°C"),
    ]


async def test_openai_a_turn_cut_after_a_call_started_fails_with_the_started_call_run(
    openai_llm: OpenAIChat, openai_script: Script
) -> None:
    gate = Gate()
    calls: list[tuple[str, str, list[str | Gate]]] = [
        ("call_play", "spotify-play", ['{"artist": "Adele", "duration": 5}']),
        ("call_oslo", "weather", [gate, '{"city": "Os']),
    ]
    openai_script.add(SSE(oa.tool_stream(calls, finish="length")))
    finished: list[str] = []
    agent = ParallelToolCallAgent(llm=openai_llm, tools=_gated_tools(gate, finished))
    async with asyncio.timeout(10):
        with pytest.raises(ModelError, match=r"tool-calling turn 1 was cut short .*\(length\)") as caught:
            await agent.arun("Play Adele and the weather in Oslo?")

    assert not isinstance(caught.value, BaseExceptionGroup)
    play, oslo = caught.value.tasks
    assert (play.tool, play.state, play.result) == ("spotify.play", "done", "playing Adele for 5 min")
    assert (oslo.tool, oslo.state) == ("weather", "skipped")  # cut mid-arguments: garbled, never run
    assert oslo.error is not None and "not valid JSON" in oslo.error
    assert finished == ["play"]
    assert len(openai_script.requests) == 1  # nothing went back to the model
