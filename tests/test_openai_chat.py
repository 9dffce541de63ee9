"""OpenAIChat through the real ``AsyncOpenAI`` client, against a loopback chat-completions server."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import pytest

from llmcompiler import LLMCompiler, ModelError, Tool, UserError, tool
from llmcompiler._types import Message, ModelEvent, ModelRequest, ToolCall, Usage
from llmcompiler.models._openai import NO_KEY, OpenAIChat
from tests.wire import SSE, Gate, Hang, LoopbackServer, Script, Status, free_port
from tests.wire import openai_server as oa

SECRET = "sk-test-DISTINCTIVE-7f3a9c1e5b2d"


# The loopback server and the client on it come from tests/conftest.py (keyed by this module's SECRET);
# these names are what this module's tests call them.


@pytest.fixture
def script(openai_script: Script) -> Script:
    """The server's script, fresh for each test; every scripted reply must be used."""
    return openai_script


@pytest.fixture
def base_url(openai_server: tuple[LoopbackServer, Script]) -> str:
    return f"{openai_server[0].url}/v1"


@pytest.fixture
def llm(openai_llm: OpenAIChat) -> OpenAIChat:
    return openai_llm


def _request(
    *messages: Message, stop: tuple[str, ...] = (), tools: tuple[Tool, ...] = (), native: bool = False
) -> ModelRequest:
    return ModelRequest(
        messages=messages, purpose="plan", stop=stop, tools=tuple(t.spec for t in tools), native_tools=native
    )


async def _drain(stream: AsyncIterator[ModelEvent], into: list[ModelEvent]) -> None:
    """Append every event of ``stream`` to ``into``, so a test sees what came before an error."""
    async for event in stream:
        into.append(event)


async def _collect(model: OpenAIChat, request: ModelRequest) -> list[ModelEvent]:
    return [event async for event in model.stream(request)]


@tool(name="spotify.play")
def play(artist: str, duration: int) -> str:
    """Play an artist.

    Args:
        artist: who to play.
        duration: minutes.
    """
    return f"{artist} for {duration}"


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


USER = Message(role="user", content="hi")


# --- text streaming ---------------------------------------------------------------------


async def test_text_deltas_stream_in_order_then_usage(llm: OpenAIChat, script: Script) -> None:
    script.add(SSE(oa.text_stream(["1. add(", "a=1, b=2)", "\n2. join()"], usage=(31, 9))))
    events = await _collect(llm, _request(Message(role="system", content="sys"), USER, stop=("<END_OF_PLAN>",)))
    assert events == ["1. add(", "a=1, b=2)", "\n2. join()", Usage(prompt_tokens=31, completion_tokens=9, calls=1)]
    (sent,) = script.bodies()
    assert sent["model"] == "gpt-test"
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["stop"] == ["<END_OF_PLAN>"]
    assert sent["messages"] == [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}]
    assert "tools" not in sent
    assert "parallel_tool_calls" not in sent


async def test_a_delta_is_yielded_before_the_next_one_is_sent(llm: OpenAIChat, script: Script) -> None:
    gate = Gate()
    script.add(SSE(oa.text_stream(["first", gate, " second"])))
    stream = llm.stream(_request(USER))
    assert await anext(stream) == "first"  # the server is still holding the rest back
    gate.open()
    rest = [event async for event in stream]
    assert rest == [" second", Usage(prompt_tokens=10, completion_tokens=5, calls=1)]


async def test_closing_the_stream_early_frees_the_connection(llm: OpenAIChat, script: Script) -> None:
    script.add(SSE(oa.text_stream([f"chunk{i} " for i in range(50)])), oa.text_reply("next"))
    stream = llm.stream(_request(USER))
    assert isinstance(stream, AsyncGenerator)
    assert await anext(stream) == "chunk0 "
    await stream.aclose()  # what the engine does when it has read enough
    events = await _collect(llm, _request(USER))
    assert events[0] == "next"


async def test_extra_params_are_sent(base_url: str, script: Script) -> None:
    script.add(oa.text_reply("ok"))
    async with OpenAIChat("gpt-test", base_url=base_url, temperature=0, max_tokens=64) as model:
        await _collect(model, _request(USER))
    (sent,) = script.bodies()
    assert (sent["temperature"], sent["max_tokens"]) == (0, 64)


async def test_no_usage_chunk_still_counts_the_call(llm: OpenAIChat, script: Script) -> None:
    script.add(SSE(oa.text_stream(["x"], usage=None)))
    assert await _collect(llm, _request(USER)) == ["x", Usage(calls=1)]


# --- native tool calls ------------------------------------------------------------------


async def test_tool_calls_are_assembled_per_index_with_names_mapped_back(llm: OpenAIChat, script: Script) -> None:
    calls = [
        ("call_a", "spotify-play", ['{"artist": "Tay', 'lor Swift", ', '"duration": 20}']),
        ("call_b", "add", ['{"a": 1,', ' "b": 2}']),
    ]
    script.add(SSE(oa.tool_stream(calls, interleave=True, usage=(40, 22))))
    events = await _collect(llm, _request(USER, tools=(play, add), native=True))
    assert events == [
        ToolCall(name="spotify.play", args={"artist": "Taylor Swift", "duration": 20}, id="call_a"),
        ToolCall(name="add", args={"a": 1, "b": 2}, id="call_b"),
        Usage(prompt_tokens=40, completion_tokens=22, calls=1),
    ]
    (sent,) = script.bodies()
    assert sent["parallel_tool_calls"] is True
    assert [t["function"]["name"] for t in sent["tools"]] == ["spotify-play", "add"]
    assert sent["tools"][0]["type"] == "function"
    assert sent["tools"][0]["function"]["parameters"]["properties"]["duration"]["type"] == "integer"
    assert sent["tools"][0]["function"]["parameters"]["required"] == ["artist", "duration"]


@pytest.mark.parametrize("reuse_index0", [False, True])
async def test_a_call_is_yielded_when_the_next_begins_before_the_stream_ends(
    llm: OpenAIChat, script: Script, reuse_index0: bool
) -> None:
    gate = Gate()
    calls: list[tuple[str, str, list[str | Gate]]] = [
        ("call_1", "add", ['{"a": 1, ', '"b": 2}']),
        ("call_2", "spotify-play", [gate, '{"artist": "Adele", ', '"duration": 5}']),
    ]
    script.add(SSE(oa.tool_stream(calls, reuse_index0=reuse_index0)))
    stream = llm.stream(_request(USER, tools=(play, add), native=True))
    async with asyncio.timeout(10):  # the server holds the rest back until the gate opens
        first = await anext(stream)
    assert first == ToolCall(name="add", args={"a": 1, "b": 2}, id="call_1")
    gate.open()
    rest = [event async for event in stream]
    assert rest == [
        ToolCall(name="spotify.play", args={"artist": "Adele", "duration": 5}, id="call_2"),
        Usage(prompt_tokens=20, completion_tokens=12, calls=1),
    ]


async def test_a_call_whose_arguments_are_not_yet_whole_waits_and_keeps_its_place(
    llm: OpenAIChat, script: Script
) -> None:
    # Interleaved fragments: call_b is whole before call_a, but the calls come in the model's order.
    frames: list[str | Gate] = [
        oa.chunk({"tool_calls": [{"index": 0, "id": "call_a", "function": {"name": "add", "arguments": '{"a": 1'}}]}),
        oa.chunk({"tool_calls": [{"index": 1, "id": "call_b", "function": {"name": "add", "arguments": '{"a": 2}'}}]}),
        # A "}" that does not close the object is no whole call yet.
        oa.chunk({"tool_calls": [{"index": 0, "function": {"arguments": ', "b": {"c": 1}'}}]}),
        oa.chunk({"tool_calls": [{"index": 1, "function": {"arguments": " "}}]}),
        oa.chunk({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]}),
        oa.chunk({}, finish="tool_calls"),
        oa.DONE,
    ]
    script.add(SSE(frames))
    events = await _collect(llm, _request(USER, tools=(add,), native=True))
    assert events == [
        ToolCall(name="add", args={"a": 1, "b": {"c": 1}}, id="call_a"),
        ToolCall(name="add", args={"a": 2}, id="call_b"),
        Usage(calls=1),
    ]


async def test_more_arguments_for_a_call_already_yielded_are_a_call_of_their_own(
    llm: OpenAIChat, script: Script
) -> None:
    # call_1 was whole (and yielded) when call_2 began; text for it after that cannot change what
    # may already run: it becomes a nameless call (which fails alone), white space is ignored.
    frames: list[str | Gate] = [
        oa.chunk({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "add", "arguments": '{"a": 1}'}}]}),
        oa.chunk({"tool_calls": [{"index": 1, "id": "call_2", "function": {"name": "add", "arguments": '{"a": 2}'}}]}),
        oa.chunk({"tool_calls": [{"index": 0, "function": {"arguments": "\n"}}]}),
        oa.chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a": 3}'}}]}),
        oa.chunk({}, finish="tool_calls"),
        oa.DONE,
    ]
    script.add(SSE(frames))
    events = await _collect(llm, _request(USER, tools=(add,), native=True))
    assert [e for e in events if isinstance(e, ToolCall)] == [
        ToolCall(name="add", args={"a": 1}, id="call_1"),
        ToolCall(name="add", args={"a": 2}, id="call_2"),
        ToolCall(name="", args={"a": 3}),
    ]


async def test_tools_are_not_offered_unless_native_tools_is_set(llm: OpenAIChat, script: Script) -> None:
    script.add(oa.text_reply("1. add(a=1, b=2)"))
    await _collect(llm, _request(USER, tools=(add,)))
    assert "tools" not in script.bodies()[0]


async def test_a_server_that_reuses_index_0_gives_separate_calls(llm: OpenAIChat, script: Script) -> None:
    calls = [
        ("call_1", "add", ['{"a": 1, ', '"b": 2}']),
        ("call_2", "add", ['{"a": 3, ', '"b": 4}']),
        ("call_3", "spotify-play", ['{"artist": "Adele", "duration": 5}']),
    ]
    script.add(SSE(oa.tool_stream(calls, reuse_index0=True)))
    events = await _collect(llm, _request(USER, tools=(play, add), native=True))
    assert [e for e in events if isinstance(e, ToolCall)] == [
        ToolCall(name="add", args={"a": 1, "b": 2}, id="call_1"),
        ToolCall(name="add", args={"a": 3, "b": 4}, id="call_2"),
        ToolCall(name="spotify.play", args={"artist": "Adele", "duration": 5}, id="call_3"),
    ]


async def test_invalid_argument_json_fails_that_call_alone_naming_the_tool(llm: OpenAIChat, script: Script) -> None:
    script.add(
        SSE(oa.tool_stream([("call_1", "spotify-play", ['{"artist": "Ad', "ele"]), ("call_2", "add", ['{"a": 1}'])]))
    )
    events = await _collect(llm, _request(USER, tools=(play, add), native=True))
    bad, good = events[0], events[1]
    assert isinstance(bad, ToolCall) and bad.id == "call_1" and bad.name == "spotify.play"
    assert bad.error is not None and re.search(r"spotify\.play.*not valid JSON", bad.error)
    assert good == ToolCall(name="add", args={"a": 1}, id="call_2")


@pytest.mark.parametrize(
    ("arguments", "why"),
    [
        ('{"a": ' + "9" * 5000 + ', "b": 1}', "ValueError: Exceeds the limit"),  # more digits than Python converts
        ('{"a": ' + "[" * 100_000 + "]" * 100_000 + ', "b": 1}', "RecursionError"),  # nested past the limit
    ],
)
async def test_json_a_model_writes_that_python_cannot_read_fails_that_call_alone(
    llm: OpenAIChat, script: Script, arguments: str, why: str
) -> None:
    script.add(SSE(oa.tool_stream([("call_1", "add", [arguments]), ("call_2", "add", ['{"a": 1, "b": 2}'])])))
    events = await _collect(llm, _request(USER, tools=(add,), native=True))
    bad, good = events[0], events[1]
    assert isinstance(bad, ToolCall) and bad.id == "call_1" and bad.error is not None
    assert "'add' are not valid JSON" in bad.error and why in bad.error and len(bad.error) < 500
    assert good == ToolCall(name="add", args={"a": 1, "b": 2}, id="call_2")


async def test_empty_ids_on_continuation_fragments_do_not_split_a_call(llm: OpenAIChat, script: Script) -> None:
    frames: list[str | Gate] = [
        oa.chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "add"}}]}),
        oa.chunk({"tool_calls": [{"index": 0, "id": "", "function": {"arguments": '{"a": 1, '}}]}),
        oa.chunk({"tool_calls": [{"index": 0, "id": "", "function": {"arguments": '"b": 2}'}}]}),
        oa.chunk({}, finish="tool_calls"),
        oa.DONE,
    ]
    script.add(SSE(frames))
    events = await _collect(llm, _request(USER, tools=(add,), native=True))
    assert events == [ToolCall(name="add", args={"a": 1, "b": 2}, id="call_1"), Usage(calls=1)]


async def test_tool_calls_and_results_in_the_history_are_converted(llm: OpenAIChat, script: Script) -> None:
    script.add(oa.text_reply("done"))
    history = (
        USER,
        Message(
            role="assistant",
            content="",
            tool_calls=(
                ToolCall(name="spotify.play", args={"artist": "Adele", "duration": 5}, id="call_1"),
                ToolCall(name="add", args={"a": 1, "b": 2}, id="call_2"),
            ),
        ),
        Message(role="tool", content="playing", tool_call_id="call_1"),
        Message(role="tool", content="boom", tool_call_id="call_2", is_error=True),
    )
    await _collect(llm, _request(*history, tools=(play, add), native=True))
    sent = script.bodies()[0]["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "spotify-play", "arguments": json.dumps({"artist": "Adele", "duration": 5})},
            },
            {"id": "call_2", "type": "function", "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'}},
        ],
    }
    assert sent[2] == {"role": "tool", "tool_call_id": "call_1", "content": "playing"}
    assert sent[3] == {"role": "tool", "tool_call_id": "call_2", "content": "ERROR: boom"}


# --- incomplete streams -----------------------------------------------------------------


async def test_a_stream_without_finish_reason_is_an_error_not_a_short_reply(llm: OpenAIChat, script: Script) -> None:
    script.add(SSE(oa.text_stream(["1. add(a=1", ", b=2)"], finish=None, usage=None, done=False)))
    seen: list[ModelEvent] = []
    with pytest.raises(ModelError, match="before a finish_reason; the reply is incomplete"):
        await _drain(llm.stream(_request(USER)), seen)
    assert seen == ["1. add(a=1", ", b=2)"]
    assert not any(isinstance(e, Usage) for e in seen)


async def test_a_connection_cut_mid_stream_is_an_error(llm: OpenAIChat, script: Script) -> None:
    script.add(SSE(oa.text_stream(["1. add(a=1"], finish=None, usage=None, done=False), cut=True))
    seen: list[ModelEvent] = []
    with pytest.raises(ModelError, match="cut before its end") as info:
        await _drain(llm.stream(_request(USER)), seen)
    assert seen == ["1. add(a=1"]
    assert "\n" not in str(info.value)


async def test_tool_calls_of_an_unfinished_stream_are_not_yielded(llm: OpenAIChat, script: Script) -> None:
    script.add(SSE(oa.tool_stream([("call_1", "add", ['{"a": 1, "b": 2}'])], finish=None, usage=None)))
    seen: list[ModelEvent] = []
    with pytest.raises(ModelError, match="incomplete"):
        await _drain(llm.stream(_request(USER, tools=(add,), native=True)), seen)
    assert seen == []


async def test_a_call_whole_before_the_stream_broke_was_yielded_the_open_one_is_not(
    llm: OpenAIChat, script: Script
) -> None:
    calls = [("call_1", "add", ['{"a": 1, "b": 2}']), ("call_2", "add", ['{"a": 3, "b": 4}'])]
    script.add(SSE(oa.tool_stream(calls, finish=None, usage=None)))
    seen: list[ModelEvent] = []
    with pytest.raises(ModelError, match="incomplete"):
        await _drain(llm.stream(_request(USER, tools=(add,), native=True)), seen)
    assert seen == [ToolCall(name="add", args={"a": 1, "b": 2}, id="call_1")]


# --- retries ----------------------------------------------------------------------------


async def test_429_with_retry_after_is_retried(base_url: str, script: Script) -> None:
    script.add(oa.rate_limited(ms_hint=False), oa.rate_limited(), oa.text_reply("ok", usage=(3, 1)))
    async with OpenAIChat("gpt-test", base_url=base_url, max_retries=2) as model:
        events = await _collect(model, _request(USER))
    assert events == ["ok", Usage(prompt_tokens=3, completion_tokens=1, calls=1)]
    assert len(script.requests) == 3
    assert [r.headers.get("x-stainless-retry-count") for r in script.requests] == ["0", "1", "2"]


async def test_the_retry_waits_as_long_as_retry_after_says(base_url: str, script: Script) -> None:
    script.add(Status(429, oa.error_body("slow down", "requests"), {"retry-after": "0.3"}), oa.text_reply("ok"))
    async with OpenAIChat("gpt-test", base_url=base_url, max_retries=1) as model:
        await _collect(model, _request(USER))
    first, second = script.requests
    assert second.at - first.at >= 0.3


async def test_retries_are_bounded_then_the_status_is_reported(base_url: str, script: Script) -> None:
    script.add(oa.rate_limited(), oa.rate_limited())
    async with OpenAIChat("gpt-test", base_url=base_url, max_retries=1) as model:
        with pytest.raises(ModelError, match="rate limited") as info:
            await _collect(model, _request(USER))
    assert info.value.status == 429
    assert info.value.provider == "openai"
    assert len(script.requests) == 2


async def test_500_is_retried(base_url: str, script: Script) -> None:
    script.add(oa.server_error(), oa.text_reply("ok"))
    async with OpenAIChat("gpt-test", base_url=base_url, max_retries=1) as model:
        assert (await _collect(model, _request(USER)))[0] == "ok"
    assert len(script.requests) == 2


async def test_400_is_not_retried(base_url: str, script: Script) -> None:
    script.add(Status(400, oa.error_body("Invalid 'messages'", "invalid_request_error")))
    async with OpenAIChat("gpt-test", base_url=base_url, max_retries=3) as model:
        with pytest.raises(ModelError, match="Invalid 'messages'") as info:
            await _collect(model, _request(USER))
    assert info.value.status == 400
    assert len(script.requests) == 1


async def test_a_timeout_is_retried(base_url: str, script: Script) -> None:
    script.add(Hang(), oa.text_reply("late but fine"))
    async with OpenAIChat("gpt-test", base_url=base_url, max_retries=1, timeout=1.0) as model:
        events = await _collect(model, _request(USER))
    assert "".join(e for e in events if isinstance(e, str)) == "late but fine"
    assert len(script.requests) == 2


async def test_a_timeout_without_retries_left_is_one_clear_line(base_url: str, script: Script) -> None:
    script.add(Hang())
    async with OpenAIChat("gpt-test", base_url=base_url, max_retries=0, timeout=0.5) as model:
        with pytest.raises(ModelError, match=r"timed out after 0\.5s per attempt and 0 retries") as info:
            await _collect(model, _request(USER))
    assert "\n" not in str(info.value)


# --- configuration errors and secrets ---------------------------------------------------


def test_a_missing_key_says_what_to_set() -> None:
    with pytest.raises(UserError, match=r"set OPENAI_API_KEY or pass api_key="):
        OpenAIChat("gpt-4o-mini")


async def test_a_base_url_without_a_key_sends_a_placeholder(base_url: str, script: Script) -> None:
    script.add(oa.text_reply("ok"))
    async with OpenAIChat("llama3", base_url=base_url) as model:
        await _collect(model, _request(USER))
        assert model.model_name == "openai-compatible:llama3"
    assert script.requests[0].headers["authorization"] == f"Bearer {NO_KEY}"


async def test_openai_base_url_env_selects_the_server(
    base_url: str, script: Script, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", base_url)
    script.add(oa.text_reply("from env"))
    async with OpenAIChat("llama3") as model:
        assert model.base_url == base_url
        events = await _collect(model, _request(USER))
    assert events[:2] == ["from", " env"]


async def test_an_unreachable_base_url_is_one_clear_line() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    async with OpenAIChat("gpt-test", base_url=url, max_retries=0) as model:
        with pytest.raises(ModelError) as info:
            await _collect(model, _request(USER))
    text = str(info.value)
    assert url in text
    assert "OPENAI_BASE_URL" in text
    assert "\n" not in text


def _chain(exc: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


async def test_the_api_key_never_appears_in_errors(base_url: str, script: Script) -> None:
    echo = f"Incorrect API key provided: {SECRET}. Authorization: Bearer {SECRET}"
    script.add(
        Status(401, oa.error_body(echo, "invalid_request_error", "invalid_api_key")),
        Status(500, oa.error_body(f"upstream saw {SECRET}")),
        SSE([oa.frame({"error": {"message": f"stream failed for key {SECRET}", "type": "server_error"}})]),
        SSE(oa.text_stream(["partial"], finish=None, usage=None, done=False), cut=True),
    )
    errors: list[BaseException] = []
    async with OpenAIChat("gpt-test", base_url=base_url, api_key=SECRET, max_retries=0) as model:
        for _ in range(4):
            with pytest.raises(ModelError) as info:
                await _collect(model, _request(USER))
            errors.append(info.value)
    unreachable = OpenAIChat("gpt-test", base_url=f"http://127.0.0.1:{free_port()}/v1", api_key=SECRET, max_retries=0)
    async with unreachable:
        with pytest.raises(ModelError) as info:
            await _collect(unreachable, _request(USER))
    errors.append(info.value)
    assert errors[0].status == 401  # type: ignore[attr-defined]
    assert "check OPENAI_API_KEY" in str(errors[0])
    assert all(r.headers["authorization"] == f"Bearer {SECRET}" for r in script.requests)  # the key was sent
    for error in errors:
        for exc in _chain(error):
            assert SECRET not in str(exc), f"{type(exc).__name__} leaks the key: {exc}"
            assert SECRET not in repr(exc.args)
    assert SECRET not in repr(OpenAIChat("gpt-test", api_key=SECRET))


# --- the whole agent over the wire ------------------------------------------------------


async def test_llmcompiler_answers_through_openai_chat(llm: OpenAIChat, script: Script) -> None:
    plan = ["Thought: add first.\n", "1. add(a=2, ", "b=3)\n", "2. add(a=$1, b=10)\n", "3. join()\n"]
    script.add(
        SSE(oa.text_stream(plan, usage=(120, 30))),
        oa.text_reply("Thought: done.\nAction: Finish(15)", usage=(200, 12)),
    )
    result = await LLMCompiler(llm=llm, tools=[add]).arun("What is 2 + 3 + 10?")
    assert result.answer == "15"
    assert result.usage == Usage(prompt_tokens=320, completion_tokens=42, calls=2)
    assert [t.result for t in result.tasks if t.tool == "add"] == [5, 15]
    planner, joiner = script.bodies()
    assert planner["stop"] == ["<END_OF_PLAN>"]
    assert "add(a: int, b: int)" in planner["messages"][0]["content"]
    assert "What is 2 + 3 + 10?" in planner["messages"][1]["content"]
    assert "Observation: 15" in joiner["messages"][1]["content"]


def test_the_sync_run_works_twice_with_one_model(base_url: str, script: Script) -> None:
    """``run()`` starts a new event loop per question; the adapter must not reuse a dead loop's client."""
    model = OpenAIChat("gpt-test", base_url=base_url, max_retries=0)
    agent = LLMCompiler(llm=model, tools=[add])
    for expected in ("3", "7"):
        script.add(
            SSE(oa.text_stream([f"1. add(a=1, b={int(expected) - 1})\n2. join()\n"])),
            oa.text_reply(f"Action: Finish({expected})"),
        )
        assert agent.run("sum?").answer == expected


# --- a real provider, only when a key is set --------------------------------------------


@pytest.mark.real_provider
@pytest.mark.skipif(not os.environ.get("OPENAI_API_KEY"), reason="needs OPENAI_API_KEY (a real OpenAI key)")
async def test_real_openai_streams_text_and_usage() -> None:
    async with OpenAIChat(os.environ.get("LLMCOMPILER_TEST_OPENAI_MODEL", "gpt-4o-mini"), max_retries=2) as model:
        events: list[Any] = await _collect(
            model, _request(Message(role="user", content="Say the word 'pong' and nothing else."))
        )
    text = "".join(e for e in events if isinstance(e, str))
    usage = [e for e in events if isinstance(e, Usage)]
    assert "pong" in text.lower()
    assert len(usage) == 1
    assert usage[0].prompt_tokens > 0
    assert usage[0].completion_tokens > 0
