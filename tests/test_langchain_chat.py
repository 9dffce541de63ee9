"""LangChainChat with real langchain-core chat model classes that run offline."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolCallChunk
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from pydantic import Field

from llmcompiler import LLMCompiler, ModelError, UserError, tool
from llmcompiler._types import Message, ModelEvent, ModelRequest, ToolCall, Usage
from llmcompiler.models._langchain import LangChainChat, _StopFilter

SECRET = "sk-test-DISTINCTIVE-lc-93b1f0"


class ChunkChatModel(BaseChatModel):
    """A langchain-core chat model that streams scripted ``AIMessageChunk``s and records its input."""

    replies: list[list[AIMessageChunk]]
    seen: list[list[BaseMessage]] = Field(default_factory=list)
    stops: list[list[str] | None] = Field(default_factory=list)
    bound: list[list[dict[str, Any]]] = Field(default_factory=list)
    fail_with: str | None = None

    @property
    def _llm_type(self) -> str:
        return "chunk-chat-model"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        raise NotImplementedError("this test model only streams")

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        self.seen.append(list(messages))
        self.stops.append(stop)
        if self.fail_with is not None:
            raise RuntimeError(self.fail_with)
        for chunk in self.replies.pop(0):
            yield ChatGenerationChunk(message=chunk)

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[Any, AIMessage]:
        self.bound.append([dict(t) for t in tools])
        return self.bind(tools=list(tools), **kwargs)


def _request(
    *messages: Message, stop: tuple[str, ...] = (), native: bool = False, tools: tuple[Any, ...] = ()
) -> ModelRequest:
    return ModelRequest(messages=messages, purpose="plan", stop=stop, tools=tools, native_tools=native)


async def _collect(model: LangChainChat, request: ModelRequest) -> list[ModelEvent]:
    return [event async for event in model.stream(request)]


@tool(name="spotify.play")
def play(artist: str, duration: int) -> str:
    """Play an artist."""
    return artist


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


USER = Message(role="user", content="hi")


def _usage(i: int, o: int) -> UsageMetadata:
    return UsageMetadata(input_tokens=i, output_tokens=o, total_tokens=i + o)


async def test_generic_fake_model_streams_its_chunks() -> None:
    llm = LangChainChat(GenericFakeChatModel(messages=iter(["1. add(a=1, b=2)\n2. join()"])))
    events = await _collect(llm, _request(USER))
    text = [e for e in events if isinstance(e, str)]
    assert text == [t for t in re.split(r"(\s)", "1. add(a=1, b=2)\n2. join()") if t]
    assert len(text) > 1
    assert events[-1] == Usage(calls=1)  # the fake model reports no usage
    assert llm.model_name == "langchain:generic-fake-chat-model"


async def test_text_stops_before_the_stop_sequence_even_if_the_model_ignores_stop() -> None:
    reply = "1. add(a=1, b=2)\n2. join()\n<END_OF_PLAN>\nThought: more"
    llm = LangChainChat(GenericFakeChatModel(messages=iter([reply])))
    events = await _collect(llm, _request(USER, stop=("<END_OF_PLAN>",)))
    assert "".join(e for e in events if isinstance(e, str)) == "1. add(a=1, b=2)\n2. join()\n"


def test_the_stop_filter_catches_a_stop_split_across_chunks() -> None:
    stop = _StopFilter(["<END>"])
    out = [stop.feed(p) for p in ["ab<E", "N", "D>cd", "ef"]]
    assert out == ["ab", "", "", ""]
    assert stop.flush() == ""
    plain = _StopFilter(["<END>"])
    assert [plain.feed("a<E"), plain.feed("nd"), plain.feed(" x"), plain.flush()] == ["a", "<End", " x", ""]


async def test_usage_metadata_is_summed_and_stop_is_passed() -> None:
    chunks = [
        AIMessageChunk(content="Action: "),
        AIMessageChunk(content="Finish(3)", usage_metadata=_usage(40, 0)),
        AIMessageChunk(content="", usage_metadata=_usage(0, 7)),
    ]
    model = ChunkChatModel(replies=[chunks])
    events = await _collect(LangChainChat(model, name="my-model"), _request(USER, stop=("<END_OF_PLAN>",)))
    assert events == ["Action: ", "Finish(3)", Usage(prompt_tokens=40, completion_tokens=7, calls=1)]
    assert model.stops == [["<END_OF_PLAN>"]]


async def test_cached_prompt_tokens_come_from_input_token_details() -> None:
    usage = _usage(1500, 0)
    usage["input_token_details"] = {"cache_read": 1024, "cache_creation": 300}
    chunks = [
        AIMessageChunk(content="ok", usage_metadata=usage),
        AIMessageChunk(content="", usage_metadata=_usage(0, 2)),
    ]
    events = await _collect(LangChainChat(ChunkChatModel(replies=[chunks])), _request(USER))
    assert events[-1] == Usage(
        prompt_tokens=1500, completion_tokens=2, calls=1, cached_tokens=1024, cache_write_tokens=300
    )


async def test_messages_are_converted_to_langchain_messages() -> None:
    model = ChunkChatModel(replies=[[AIMessageChunk(content="ok")]])
    history = (
        Message(role="system", content="sys"),
        USER,
        Message(
            role="assistant", content="", tool_calls=(ToolCall(name="spotify.play", args={"artist": "A"}, id="c1"),)
        ),
        Message(role="tool", content="failed", tool_call_id="c1", is_error=True),
    )
    await _collect(LangChainChat(model), _request(*history))
    (seen,) = model.seen
    assert [m.type for m in seen] == ["system", "human", "ai", "tool"]
    assert seen[2].tool_calls == [{"name": "spotify-play", "args": {"artist": "A"}, "id": "c1", "type": "tool_call"}]  # type: ignore[attr-defined]
    assert (seen[3].tool_call_id, seen[3].status, seen[3].content) == ("c1", "error", "failed")  # type: ignore[attr-defined]


async def test_native_tool_calls_stream_as_tool_call_chunks() -> None:
    chunks = [
        AIMessageChunk(
            content="", tool_call_chunks=[ToolCallChunk(name="spotify-play", args='{"artist": "Ad', id="c1", index=0)]
        ),
        AIMessageChunk(
            content="", tool_call_chunks=[ToolCallChunk(name=None, args='ele", "duration": 5}', id=None, index=0)]
        ),
        AIMessageChunk(
            content="", tool_call_chunks=[ToolCallChunk(name="add", args='{"a": 1, "b": 2}', id="c2", index=1)]
        ),
        AIMessageChunk(content="", usage_metadata=_usage(9, 4)),
    ]
    model = ChunkChatModel(replies=[chunks])
    events = await _collect(LangChainChat(model), _request(USER, native=True, tools=(play, add)))
    assert events == [
        ToolCall(name="spotify.play", args={"artist": "Adele", "duration": 5}, id="c1"),
        ToolCall(name="add", args={"a": 1, "b": 2}, id="c2"),
        Usage(prompt_tokens=9, completion_tokens=4, calls=1),
    ]
    assert [t["function"]["name"] for t in model.bound[0]] == ["spotify-play", "add"]


async def test_invalid_tool_call_json_names_the_tool() -> None:
    chunks = [
        AIMessageChunk(
            content="", tool_call_chunks=[ToolCallChunk(name="spotify-play", args='{"artist": ]', id="c1", index=0)]
        )
    ]
    model = ChunkChatModel(replies=[chunks])
    with pytest.raises(ModelError, match=r"spotify\.play"):
        await _collect(LangChainChat(model), _request(USER, native=True, tools=(play,)))


async def test_a_whole_message_with_tool_calls_and_usage() -> None:
    """A model that cannot stream answers once (``astream`` falls back to ``ainvoke``)."""
    message = AIMessage(
        content="",
        tool_calls=[{"name": "add", "args": {"a": 2, "b": 2}, "id": "t1", "type": "tool_call"}],
        usage_metadata=_usage(11, 3),
    )
    llm = LangChainChat(FakeMessagesListChatModel(responses=[message]))
    events = await _collect(llm, _request(USER))
    assert events == [
        ToolCall(name="add", args={"a": 2, "b": 2}, id="t1"),
        Usage(prompt_tokens=11, completion_tokens=3, calls=1),
    ]


async def test_native_tools_need_bind_tools() -> None:
    llm = LangChainChat(GenericFakeChatModel(messages=iter(["x"])))
    with pytest.raises(UserError, match="bind_tools"):
        await _collect(llm, _request(USER, native=True, tools=(add,)))


async def test_a_failing_model_is_a_one_line_model_error_without_secrets() -> None:
    model = ChunkChatModel(replies=[], fail_with=f"401 Unauthorized:\nkey {SECRET} was refused")
    with pytest.raises(ModelError) as info:
        await _collect(LangChainChat(model), _request(USER))
    assert "401 Unauthorized" in str(info.value)
    assert SECRET not in str(info.value)
    assert info.value.__context__ is None
    assert "\n" not in str(info.value)


def test_only_chat_models_are_accepted() -> None:
    with pytest.raises(UserError, match="BaseChatModel"):
        LangChainChat("gpt-4o")  # type: ignore[arg-type]


async def test_llmcompiler_answers_through_a_langchain_model() -> None:
    replies = iter(["1. add(a=2, b=3)\n2. add(a=$1, b=4)\n3. join()\n<END_OF_PLAN>", "Thought: ok\nAction: Finish(9)"])
    llm = LangChainChat(GenericFakeChatModel(messages=replies))
    result = await LLMCompiler(llm=llm, tools=[add]).arun("2 + 3 + 4?")
    assert result.answer == "9"
    assert result.usage.calls == 2
