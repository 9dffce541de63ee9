"""AnthropicChat through the real ``AsyncAnthropic`` client, against a loopback messages server."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from llmcompiler import ModelError, Tool, UserError, tool
from llmcompiler._types import Message, ModelEvent, ModelRequest, ToolCall, Usage
from llmcompiler.models._anthropic import NO_KEY, AnthropicChat
from tests.wire import SSE, Gate, LoopbackServer, Script, Status, free_port
from tests.wire import anthropic_server as an

SECRET = "sk-ant-test-DISTINCTIVE-41c7e9a0d3"


# The loopback server and the client on it come from tests/conftest.py (keyed by this module's SECRET);
# these names are what this module's tests call them.


@pytest.fixture
def script(anthropic_script: Script) -> Script:
    """The server's script, fresh for each test; every scripted reply must be used."""
    return anthropic_script


@pytest.fixture
def base_url(anthropic_server: tuple[LoopbackServer, Script]) -> str:
    return anthropic_server[0].url


@pytest.fixture
def llm(anthropic_llm: AnthropicChat) -> AnthropicChat:
    return anthropic_llm


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


async def _collect(model: AnthropicChat, request: ModelRequest) -> list[ModelEvent]:
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


def _credential(script: Script) -> str:
    """The key the SDK sent (``x-api-key``, or ``Authorization: Bearer`` in newer SDKs)."""
    headers = script.requests[0].headers
    return headers.get("x-api-key") or headers.get("authorization", "")


SYSTEM = Message(role="system", content="You plan.")
USER = Message(role="user", content="hi")


# --- text streaming ---------------------------------------------------------------------


async def test_text_deltas_stream_then_usage_from_start_and_delta(llm: AnthropicChat, script: Script) -> None:
    script.add(SSE(an.text_stream(["1. add(", "a=1, b=2)", "\n2. join()"], usage=(42, 17))))
    events = await _collect(llm, _request(SYSTEM, USER, stop=("<END_OF_PLAN>",)))
    assert events == ["1. add(", "a=1, b=2)", "\n2. join()", Usage(prompt_tokens=42, completion_tokens=17, calls=1)]
    (sent,) = script.bodies()
    assert script.requests[0].path == "/v1/messages"
    assert sent["model"] == "claude-test"
    assert sent["stream"] is True
    assert sent["max_tokens"] == 4096
    assert sent["system"] == [{"type": "text", "text": "You plan.", "cache_control": {"type": "ephemeral"}}]
    assert sent["stop_sequences"] == ["<END_OF_PLAN>"]
    assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert "tools" not in sent
    assert SECRET in _credential(script)


async def test_a_delta_is_yielded_before_the_next_one_is_sent(llm: AnthropicChat, script: Script) -> None:
    gate = Gate()
    script.add(SSE(an.text_stream(["first", gate, " second"])))
    stream = llm.stream(_request(USER))
    assert await anext(stream) == "first"
    gate.open()
    assert [event async for event in stream] == [" second", Usage(prompt_tokens=12, completion_tokens=6, calls=1)]


async def test_params_and_max_tokens_are_sent(base_url: str, script: Script) -> None:
    script.add(SSE(an.text_stream(["ok"])))
    async with AnthropicChat("claude-test", base_url=base_url, max_tokens=99, temperature=0) as model:
        await _collect(model, _request(USER))
    (sent,) = script.bodies()
    assert (sent["max_tokens"], sent["temperature"]) == (99, 0)


# --- native tool calls ------------------------------------------------------------------


async def test_tool_use_blocks_are_assembled_from_input_json_deltas(llm: AnthropicChat, script: Script) -> None:
    frames = [
        an.message_start(55),
        *an.text_block(0, ["Playing and adding."]),
        an.ping(),
        *an.tool_use_block(1, "toolu_1", "spotify-play", ['{"artist": "Ad', 'ele", "dura', 'tion": 5}']),
        *an.tool_use_block(2, "toolu_2", "add", ["", '{"a": 1, "b": 2}']),
        an.message_delta("tool_use", 31),
        an.message_stop(),
    ]
    script.add(SSE(frames))
    events = await _collect(llm, _request(USER, tools=(play, add), native=True))
    assert events == [
        "Playing and adding.",
        ToolCall(name="spotify.play", args={"artist": "Adele", "duration": 5}, id="toolu_1"),
        ToolCall(name="add", args={"a": 1, "b": 2}, id="toolu_2"),
        Usage(prompt_tokens=55, completion_tokens=31, calls=1),
    ]
    (sent,) = script.bodies()
    assert [t["name"] for t in sent["tools"]] == ["spotify-play", "add"]
    assert sent["tools"][0]["input_schema"]["properties"]["artist"]["type"] == "string"
    assert sent["tools"][0]["description"].startswith("Play an artist.")


async def test_a_tool_use_without_input_has_empty_args(llm: AnthropicChat, script: Script) -> None:
    frames = [an.message_start(5), *an.tool_use_block(0, "toolu_9", "add", []), an.message_delta("tool_use", 3)]
    script.add(SSE([*frames, an.message_stop()]))
    events = await _collect(llm, _request(USER, tools=(add,), native=True))
    assert events[0] == ToolCall(name="add", args={}, id="toolu_9")


async def test_invalid_input_json_fails_that_call_alone_naming_the_tool(llm: AnthropicChat, script: Script) -> None:
    frames = [an.message_start(5), *an.tool_use_block(0, "toolu_1", "spotify-play", ['{"artist": ']), an.message_stop()]
    script.add(SSE(frames))
    events = await _collect(llm, _request(USER, tools=(play,), native=True))
    bad = events[0]
    assert isinstance(bad, ToolCall) and bad.id == "toolu_1" and bad.args == {}
    assert bad.error is not None and re.search(r"spotify\.play.*not valid JSON", bad.error)


async def test_tool_results_go_back_as_one_user_message_of_tool_result_blocks(
    llm: AnthropicChat, script: Script
) -> None:
    script.add(SSE(an.text_stream(["done"])))
    history = (
        SYSTEM,
        USER,
        Message(
            role="assistant",
            content="Calling two tools.",
            tool_calls=(
                ToolCall(name="spotify.play", args={"artist": "Adele", "duration": 5}, id="toolu_1"),
                ToolCall(name="add", args={"a": 1, "b": 2}, id="toolu_2"),
            ),
        ),
        Message(role="tool", content="playing", tool_call_id="toolu_1"),
        Message(role="tool", content="ValueError: boom", tool_call_id="toolu_2", is_error=True),
    )
    await _collect(llm, _request(*history, tools=(play, add), native=True))
    sent = script.bodies()[0]
    assert sent["system"] == [{"type": "text", "text": "You plan.", "cache_control": {"type": "ephemeral"}}]
    assert sent["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Calling two tools."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "spotify-play",
                    "input": {"artist": "Adele", "duration": 5},
                },
                {"type": "tool_use", "id": "toolu_2", "name": "add", "input": {"a": 1, "b": 2}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "playing"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "ValueError: boom", "is_error": True},
            ],
        },
    ]


async def test_calls_without_ids_are_paired_with_their_results(llm: AnthropicChat, script: Script) -> None:
    script.add(SSE(an.text_stream(["ok"])))
    history = (
        USER,
        Message(role="assistant", content="", tool_calls=(ToolCall(name="add", args={"a": 1, "b": 2}),)),
        Message(role="tool", content="3"),
    )
    await _collect(llm, _request(*history, tools=(add,), native=True))
    _, assistant, results = script.bodies()[0]["messages"]
    assert assistant["content"][0]["id"] == results["content"][0]["tool_use_id"]


# --- incomplete or failed streams -------------------------------------------------------


async def test_a_stream_without_message_stop_is_an_error(llm: AnthropicChat, script: Script) -> None:
    script.add(SSE([*an.text_stream(["1. add(a=1, b=2)"], stop=False), an.message_delta("end_turn", 6)]))
    seen: list[ModelEvent] = []
    with pytest.raises(ModelError, match="before message_stop; the reply is incomplete"):
        await _drain(llm.stream(_request(USER)), seen)
    assert seen == ["1. add(a=1, b=2)"]


async def test_a_connection_cut_mid_stream_is_an_error(llm: AnthropicChat, script: Script) -> None:
    script.add(SSE([an.message_start(5), *an.text_block(0, ["1. add("])[:2]], cut=True))
    seen: list[ModelEvent] = []
    with pytest.raises(ModelError, match="cut before its end") as info:
        await _drain(llm.stream(_request(USER)), seen)
    assert seen == ["1. add("]
    assert "\n" not in str(info.value)


async def test_an_overloaded_error_event_is_an_error(llm: AnthropicChat, script: Script) -> None:
    script.add(SSE([an.message_start(5), *an.text_block(0, ["par"])[:2], an.error_event()]))
    with pytest.raises(ModelError, match=r"stream reported an error.*[Oo]verloaded"):
        await _collect(llm, _request(USER))


# --- retries ----------------------------------------------------------------------------


async def test_429_with_retry_after_is_retried(base_url: str, script: Script) -> None:
    script.add(an.rate_limited(), SSE(an.text_stream(["ok"], usage=(3, 1))))
    async with AnthropicChat("claude-test", base_url=base_url, max_retries=1) as model:
        assert await _collect(model, _request(USER)) == ["ok", Usage(prompt_tokens=3, completion_tokens=1, calls=1)]
    assert len(script.requests) == 2


async def test_529_overloaded_is_retried_then_reported(base_url: str, script: Script) -> None:
    overloaded = Status(529, an.error_body("Overloaded", "overloaded_error"), {"retry-after-ms": "1"})
    script.add(overloaded, overloaded, overloaded)
    async with AnthropicChat("claude-test", base_url=base_url, max_retries=2) as model:
        with pytest.raises(ModelError, match="Overloaded") as info:
            await _collect(model, _request(USER))
    assert info.value.status == 529
    assert len(script.requests) == 3


# --- configuration errors and secrets ---------------------------------------------------


def test_a_missing_key_says_what_to_set() -> None:
    with pytest.raises(UserError, match=r"set ANTHROPIC_API_KEY or pass api_key="):
        AnthropicChat("claude-sonnet-4-5")


async def test_a_base_url_without_a_key_sends_a_placeholder(base_url: str, script: Script) -> None:
    script.add(SSE(an.text_stream(["ok"])))
    async with AnthropicChat("claude-test", base_url=base_url) as model:
        await _collect(model, _request(USER))
    assert NO_KEY in _credential(script)


async def test_an_unreachable_base_url_is_one_clear_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with AnthropicChat("claude-test", base_url=url, max_retries=0) as model:
        with pytest.raises(ModelError) as info:
            await _collect(model, _request(USER))
    assert url in str(info.value)
    assert "ANTHROPIC_BASE_URL" in str(info.value)
    assert "\n" not in str(info.value)


def _chain(exc: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


async def test_the_api_key_never_appears_in_errors(base_url: str, script: Script) -> None:
    script.add(
        Status(401, an.error_body(f"invalid x-api-key: {SECRET}", "authentication_error")),
        Status(500, an.error_body(f"upstream saw {SECRET}", "api_error")),
        SSE([an.message_start(1), an.error_event(f"overloaded for {SECRET}")]),
        SSE([an.message_start(1), *an.text_block(0, ["x"])[:2]], cut=True),
    )
    errors: list[BaseException] = []
    async with AnthropicChat("claude-test", base_url=base_url, api_key=SECRET, max_retries=0) as model:
        for _ in range(4):
            with pytest.raises(ModelError) as info:
                await _collect(model, _request(USER))
            errors.append(info.value)
    assert errors[0].status == 401  # type: ignore[attr-defined]
    assert "check ANTHROPIC_API_KEY" in str(errors[0])
    for error in errors:
        for exc in _chain(error):
            assert SECRET not in str(exc), f"{type(exc).__name__} leaks the key: {exc}"
    assert SECRET not in repr(AnthropicChat("claude-test", api_key=SECRET))


# --- a real provider, only when a key is set --------------------------------------------


@pytest.mark.real_provider
@pytest.mark.skipif(not os.environ.get("ANTHROPIC_API_KEY"), reason="needs ANTHROPIC_API_KEY (a real Anthropic key)")
async def test_real_anthropic_streams_text_and_usage() -> None:
    model_id = os.environ.get("LLMCOMPILER_TEST_ANTHROPIC_MODEL", "claude-haiku-4-5")
    async with AnthropicChat(model_id, max_tokens=32, max_retries=2) as model:
        events: list[Any] = await _collect(
            model, _request(Message(role="user", content="Say the word 'pong' and nothing else."))
        )
    text = "".join(e for e in events if isinstance(e, str))
    usage = [e for e in events if isinstance(e, Usage)]
    assert "pong" in text.lower()
    assert len(usage) == 1
    assert usage[0].prompt_tokens > 0
    assert usage[0].completion_tokens > 0
