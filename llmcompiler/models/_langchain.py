"""Any LangChain chat model (``langchain_core`` ``BaseChatModel``) behind the model protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from llmcompiler._errors import LLMCompilerError, ModelError, UserError
from llmcompiler._redact import scrub
from llmcompiler._text import safe_text
from llmcompiler._types import Message, ModelEvent, ModelRequest, ToolCall, Truncated, Usage
from llmcompiler.models._failures import one_line
from llmcompiler.models._wire import ToolNames, assign_call_ids, function_tools, parse_arguments

__all__ = ["LangChainChat"]

PROVIDER = "langchain"

# Where chat models put why a reply ended (``response_metadata``): OpenAI and Google say
# ``finish_reason``, Anthropic ``stop_reason``, Ollama ``done_reason``, Bedrock ``stopReason``.
_FINISH_KEYS = ("finish_reason", "stop_reason", "done_reason", "stopReason")
# Those of a reply cut by a token limit, lower-cased (Google writes ``MAX_TOKENS``).
CUT_REASONS = frozenset({"length", "max_tokens", "model_context_window_exceeded"})


class LangChainChat:
    """A LangChain chat model, streamed through ``astream``.

    Text chunks pass through as they arrive (cut before the first stop sequence, even when
    the model ignores ``stop``); usage comes from the chunks' ``usage_metadata`` when the
    model reports it (cached prompt tokens from its ``input_token_details``: ``cache_read``,
    ``cache_creation``); native tool calls go through ``bind_tools``. A reply whose chunks'
    ``response_metadata`` says it hit the token limit (``finish_reason="length"``,
    ``stop_reason="max_tokens"``, ...) ends with ``Truncated``.

    A request's ``response_schema`` (structured extraction) is not sent: LangChain has no one
    way to ask every model for it. The extraction prompt asks for the JSON and shows the
    schema, and the extractor parses and validates the text the model streams (an invalid
    reply fails its own call only). For constrained output, wrap the provider through its own
    adapter (``OpenAIChat``, ``AnthropicChat``) instead.

    Args:
        chat_model: any ``BaseChatModel``, e.g. ``ChatOpenAI(model="gpt-4o-mini")``.
        name: the model's name in traces and price tables (default: from the model).

    Example:
        >>> from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
        >>> llm = LangChainChat(GenericFakeChatModel(messages=iter(["hi"])))
        >>> llm.model_name
        'langchain:generic-fake-chat-model'
    """

    def __init__(self, chat_model: BaseChatModel, *, name: str | None = None) -> None:
        if not isinstance(chat_model, BaseChatModel):
            raise UserError(f"LangChainChat needs a langchain_core BaseChatModel, got {type(chat_model).__name__}")
        self.chat_model = chat_model
        self._name = name or _model_id(chat_model)

    def __repr__(self) -> str:
        return f"LangChainChat({self._name!r})"

    @property
    def model_name(self) -> str:
        """``"langchain:<model>"``."""
        return f"{PROVIDER}:{self._name}"

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Stream the reply: text chunks, then native tool calls, then one ``Usage``, then
        ``Truncated`` when the model reported a cut at its token limit.

        Raises:
            UserError: native tools were asked for and the model has no ``bind_tools``.
            ModelError: the model failed, or returned tool-call arguments that are not JSON.
        """
        names = ToolNames.for_request((t.name for t in request.tools), request.messages)
        runnable: Any = self.chat_model
        if request.native_tools and request.tools:
            specs = function_tools(request.tools, names)
            try:
                runnable = self.chat_model.bind_tools(specs)
            except NotImplementedError:
                raise UserError(f"{self.model_name} has no native tool calling (bind_tools)") from None
        stop = _StopFilter(request.stop)
        aggregate: AIMessageChunk | None = None
        whole: list[AIMessage] = []
        finish: str | None = None  # the last reason the model gave for ending
        # The error is raised outside the ``except`` block so the model's own exception (whose
        # text may quote a key) does not ride along as ``__context__``.
        failure: ModelError | None = None
        try:
            async for item in runnable.astream(_messages(request.messages, names), stop=list(request.stop) or None):
                if isinstance(item, AIMessageChunk):
                    aggregate = item if aggregate is None else aggregate + item
                elif isinstance(item, AIMessage):
                    whole.append(item)
                if isinstance(item, BaseMessage):
                    finish = _finish_reason(item) or finish
                text = stop.feed(_text(item.content)) if isinstance(item, BaseMessage) else ""
                if text:
                    yield text
        except LLMCompilerError:
            raise
        except Exception as exc:
            failure = ModelError(
                PROVIDER, f"{self._name}: {one_line(scrub(f'{type(exc).__name__}: {safe_text(exc)}'))}"
            )
        if failure is not None:
            raise failure
        tail = stop.flush()
        if tail:
            yield tail
        messages: list[AIMessage] = [*whole, *([aggregate] if aggregate is not None else [])]
        for message in messages:
            for bad in message.invalid_tool_calls:
                name = names.from_wire(bad.get("name") or "?")
                parse_arguments(PROVIDER, name, bad.get("args") or "")  # raises, naming the tool
                raise ModelError(PROVIDER, f"{self._name}: invalid tool call {name!r}: {bad.get('error')}")
            for call in message.tool_calls:
                yield ToolCall(name=names.from_wire(call["name"]), args=dict(call["args"]), id=call.get("id"))
        prompt = completion = read = written = 0
        for message in messages:
            if message.usage_metadata:
                prompt += message.usage_metadata.get("input_tokens", 0)
                completion += message.usage_metadata.get("output_tokens", 0)
                # LangChain's input_tokens counts the cached ones; the details say how many.
                details = message.usage_metadata.get("input_token_details") or {}
                read += details.get("cache_read") or 0
                written += details.get("cache_creation") or 0
        yield Usage(
            prompt_tokens=prompt,
            completion_tokens=completion,
            calls=1,
            cached_tokens=min(read, prompt),
            cache_write_tokens=min(written, max(0, prompt - read)),
        )
        # A reply that reached a stop sequence is whole, whatever the model did after it.
        if finish is not None and finish.lower() in CUT_REASONS and not stop.stopped:
            yield Truncated(finish)


class _StopFilter:
    """Cuts streamed text before the first stop sequence.

    Only a tail that could begin a stop sequence is held back, so chunks pass through
    unchanged unless one ends in, say, ``"<END_"``.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.buffer = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        if self.stopped or not text:
            return ""
        if not self.stops:
            return text
        self.buffer += text
        cuts = [i for i in (self.buffer.find(s) for s in self.stops) if i >= 0]
        if cuts:
            self.stopped = True
            out, self.buffer = self.buffer[: min(cuts)], ""
            return out
        hold = max((k for s in self.stops for k in range(1, len(s)) if self.buffer.endswith(s[:k])), default=0)
        keep = len(self.buffer) - hold
        out, self.buffer = self.buffer[:keep], self.buffer[keep:]
        return out

    def flush(self) -> str:
        out, self.buffer = ("" if self.stopped else self.buffer), ""
        return out


def _finish_reason(message: BaseMessage) -> str | None:
    """Why the model says its reply ended, if this message (chunk) says."""
    metadata = getattr(message, "response_metadata", None)
    if not isinstance(metadata, dict):
        return None
    for key in _FINISH_KEYS:
        value = metadata.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _model_id(model: BaseChatModel) -> str:
    for attr in ("model_name", "model", "model_id"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value
    return model._llm_type


def _text(content: Any) -> str:
    """The text of a message's content: a string, or a list of strings and text blocks."""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content or ():
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
            parts.append(block["text"])
    return "".join(parts)


def _messages(messages: Sequence[Message], names: ToolNames) -> list[BaseMessage]:
    out: list[BaseMessage] = []
    for message, ids, answers in assign_call_ids(messages):
        if message.role == "system":
            out.append(SystemMessage(content=message.content))
        elif message.role == "user":
            out.append(HumanMessage(content=message.content))
        elif message.role == "assistant":
            calls = [
                {"name": names.to_wire(c.name), "args": dict(c.args), "id": call_id, "type": "tool_call"}
                for c, call_id in zip(message.tool_calls, ids, strict=True)
            ]
            out.append(AIMessage(content=message.content, tool_calls=calls))
        else:
            out.append(
                ToolMessage(
                    content=message.content,
                    tool_call_id=answers or "",
                    status="error" if message.is_error else "success",
                )
            )
    return out
