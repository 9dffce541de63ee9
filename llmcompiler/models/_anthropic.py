"""Anthropic messages through the official SDK, streamed as raw events."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, cast

import anthropic
from anthropic import AsyncAnthropic

from llmcompiler._errors import ModelError
from llmcompiler._types import Message, ModelEvent, ModelRequest, Truncated, Usage
from llmcompiler.models._sdk import NO_KEY, SdkChat, SdkProvider
from llmcompiler.models._wire import ToolNames, assign_call_ids, json_schema, tool_call, wire_name

__all__ = ["NO_KEY", "AnthropicChat"]

PROVIDER = "anthropic"

# The stop reasons of a reply cut by a token limit (``max_tokens``, or the context window):
# what the model wrote is only the start of its reply.
CUT_REASONS = frozenset({"max_tokens", "model_context_window_exceeded"})

# Where a cacheable prefix ends (a 5-minute breakpoint): on the system block and the last tool.
CACHE_MARKER: Mapping[str, str] = {"type": "ephemeral"}

_ANTHROPIC = SdkProvider(
    name=PROVIDER,
    chat="AnthropicChat",
    example_model="claude-haiku-4-5",
    key_env="ANTHROPIC_API_KEY",
    base_url_env="ANTHROPIC_BASE_URL",
    default_host="api.anthropic.com",
    reserved=frozenset({"model", "messages", "system", "stream", "stop_sequences", "tools", "max_tokens"}),
    sdk=anthropic,
    error=anthropic.AnthropicError,
    client=AsyncAnthropic,
)


@dataclasses.dataclass
class _ToolUse:
    id: str
    name: str
    json: list[str] = dataclasses.field(default_factory=list)


class AnthropicChat(SdkChat[AsyncAnthropic]):
    """A Claude model through Anthropic's messages API.

    System messages go to ``system``; text streams from ``text_delta`` events; tool calls are
    assembled from ``input_json_delta`` events; usage comes from ``message_start`` (input
    tokens) and ``message_delta`` (output tokens). 429s, 5xx (incl. 529 overloaded) and
    timeouts are retried by the SDK with backoff, honouring ``Retry-After``, up to
    ``max_retries`` times.

    A request with a ``response_schema`` (structured extraction) offers one tool, named after
    ``response_name``, whose ``input_schema`` is the schema, and forces it (``tool_choice``);
    that tool's input streams back as text (the JSON object, piece by piece as the
    ``input_json_delta`` events bring it), not as a ``ToolCall``. Text the model writes
    before the tool block is dropped (prose, not the JSON asked for); a reply with no such
    tool block gives its text instead, for the caller to parse (and fail on) as it is.
    Tool blocks after the first are dropped.

    Prompt caching: the static prefix of every request is marked for Anthropic's prompt cache
    with ``cache_control: {"type": "ephemeral"}`` (5 minutes): the system prompt (sent as one
    text block carrying the marker) and, with native tool calling, the last tool definition
    (Anthropic's cached prefix runs tools, system, messages: that marker caches the tool list).
    The agent's prompts keep what never changes there and the question in the user turn.
    Prompt tokens read from the cache and written to it come back as ``Usage.cached_tokens``
    and ``Usage.cache_write_tokens`` (``cache_read_input_tokens``,
    ``cache_creation_input_tokens``), both counted in ``prompt_tokens``. A prefix shorter than
    the model's minimum (1024 tokens for most models) is not cached, and costs nothing more
    for the marker.

    Args:
        model: the model id, e.g. ``"claude-haiku-4-5"``.
        base_url: another endpoint (a proxy or a compatible server); default ``ANTHROPIC_BASE_URL``.
        api_key: default ``ANTHROPIC_API_KEY``; with a ``base_url`` and no key a placeholder is sent.
        max_tokens: the most tokens a reply may have (the API requires a bound).
        max_retries: retries of a failed request.
        timeout: seconds per request (connect, read and write each).
        cache_prompt: mark the static prefix for the prompt cache (above); ``False`` sends no marker.
        **params: more message parameters, e.g. ``temperature=0``.

    Raises:
        UserError: no API key and no base URL, or a bad option.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        max_tokens: int = 4096,
        max_retries: int = 2,
        timeout: float = 120.0,
        cache_prompt: bool = True,
        **params: Any,
    ) -> None:
        super().__init__(
            _ANTHROPIC,
            model,
            base_url=base_url,
            api_key=api_key,
            max_retries=max_retries,
            timeout=timeout,
            params=params,
            problems=[f"max_tokens must be at least 1, got {max_tokens}"] if max_tokens < 1 else [],
        )
        self.max_tokens = max_tokens
        self.cache_prompt = cache_prompt

    @property
    def model_name(self) -> str:
        """``"anthropic:<model>"``."""
        return f"anthropic:{self.model}"

    def build_body(self, request: ModelRequest) -> dict[str, Any]:
        """The messages-API parameters for ``request`` (what goes over the wire)."""
        names = ToolNames.for_request((t.name for t in request.tools), request.messages)
        system, messages = _messages(request.messages, names)
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "messages": messages,
            "stream": True,
        }
        if system:
            block: dict[str, Any] = {"type": "text", "text": system}
            if self.cache_prompt:
                block["cache_control"] = dict(CACHE_MARKER)
            body["system"] = [block]
        if request.stop:
            body["stop_sequences"] = list(request.stop)
        if request.native_tools and request.tools:
            body["tools"] = [
                {"name": names.to_wire(t.name), "description": t.description, "input_schema": json_schema(t.parameters)}
                for t in request.tools
            ]
            if self.cache_prompt:  # the last definition's marker caches them all
                body["tools"][-1]["cache_control"] = dict(CACHE_MARKER)
        body.update(self.params)
        if request.response_schema is not None:  # the forced tool replaces any tools: the reply is its input
            name = wire_name(request.response_name or "response")
            body["tools"] = [
                {
                    "name": name,
                    "description": f"Record the {request.response_name or 'response'} found, as JSON.",
                    "input_schema": json_schema(request.response_schema),
                }
            ]
            body["tool_choice"] = {"type": "tool", "name": name}
        return body

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Stream the reply: text chunks as they arrive, each tool call when its block ends, then one
        ``Usage``, then ``Truncated`` when the reply was cut by the token limit (``stop_reason="max_tokens"``).

        A tool call is yielded at its ``content_block_stop``, its input then whole, so a caller
        can start it while the later blocks stream (input that is not a JSON object gives a
        call that carries the error and fails alone).

        Raises:
            ModelError: the call failed after its retries, the stream reported an error, or it
                ended before ``message_stop`` (an incomplete reply is never passed off as
                complete: a block still open is not yielded; the calls yielded before were whole).
        """
        names = ToolNames.for_request((t.name for t in request.tools), request.messages)
        body = self.build_body(request)
        events = cast(anthropic.AsyncStream[Any], await self._open(lambda client: client.messages, body))
        # Errors are raised outside the ``except`` block: the SDK's exception (whose text may
        # quote the key back) must not ride along as ``__context__``.
        failure: ModelError | None = None
        tokens = _Tokens()
        stopped = False
        stop_reason: str | None = None
        blocks: dict[int, _ToolUse] = {}
        # With a response_schema: the forced tool's block streams as text; text before it is held back.
        schema_name = wire_name(request.response_name or "response") if request.response_schema is not None else None
        answer: int | None = None  # the index of the forced tool's block, once it began
        answered = False  # its block has ended
        held: list[str] = []  # text written before it, then the input pieces streamed
        start_input: Any = {}
        async with events:
            try:
                async for event in events:
                    kind = event.type
                    if kind == "message_start":
                        tokens.update(event.message.usage)
                    elif kind == "content_block_start":
                        block = event.content_block
                        if schema_name is not None:
                            if block.type == "tool_use" and block.name == schema_name and answer is None:
                                answer = event.index
                                start_input = getattr(block, "input", None) or {}
                                held.clear()
                        elif block.type == "tool_use":
                            blocks[event.index] = _ToolUse(id=block.id, name=block.name)
                    elif kind == "content_block_delta":
                        delta = event.delta
                        if schema_name is not None:
                            if delta.type == "input_json_delta" and event.index == answer and not answered:
                                if delta.partial_json:
                                    held.append(delta.partial_json)
                                    yield delta.partial_json
                            elif delta.type == "text_delta" and answer is None and delta.text:
                                held.append(delta.text)
                        elif delta.type == "text_delta":
                            if delta.text:
                                yield delta.text
                        elif delta.type == "input_json_delta" and event.index in blocks:
                            blocks[event.index].json.append(delta.partial_json)
                    elif kind == "content_block_stop":
                        if schema_name is not None and event.index == answer and not answered:
                            answered = True
                            if not held:  # no deltas: the input is the one the block's start carried
                                yield json.dumps(start_input)
                        use = blocks.pop(event.index, None)
                        if use is not None:
                            yield tool_call(PROVIDER, names.from_wire(use.name), use.id, "".join(use.json))
                    elif kind == "message_delta":
                        stop_reason = getattr(event.delta, "stop_reason", None) or stop_reason
                        if event.usage is not None:
                            tokens.update(event.usage)
                    elif kind == "message_stop":
                        stopped = True
            except Exception as exc:
                failure = self._stream_failure(exc)
                if failure is None:
                    raise
        if failure is not None:
            raise failure
        if not stopped:
            raise ModelError(PROVIDER, f"{self.model}: the stream ended before message_stop; the reply is incomplete")
        if blocks or (answer is not None and not answered):
            raise ModelError(PROVIDER, f"{self.model}: a tool_use block never ended; the reply is incomplete")
        if schema_name is not None and answer is None and held:
            yield "".join(held)  # no forced tool block: the text, for the caller to parse as it is
        yield tokens.usage()
        if stop_reason is not None and stop_reason in CUT_REASONS:
            yield Truncated(stop_reason)


@dataclasses.dataclass
class _Tokens:
    """The token counts of one streamed reply, as ``message_start`` and then ``message_delta``
    report them (cumulative: a count present in a later event replaces the earlier one)."""

    input: int = 0  # excludes the cached tokens, read or written
    read: int = 0
    written: int = 0
    output: int = 0

    def update(self, usage: Any) -> None:
        for field, key in (
            ("input", "input_tokens"),
            ("read", "cache_read_input_tokens"),
            ("written", "cache_creation_input_tokens"),
            ("output", "output_tokens"),
        ):
            value = getattr(usage, key, None)
            if value:
                setattr(self, field, int(value))

    def usage(self) -> Usage:
        """Anthropic's ``input_tokens`` excludes the cached tokens: the prompt is all three."""
        return Usage(
            prompt_tokens=self.input + self.read + self.written,
            completion_tokens=self.output,
            calls=1,
            cached_tokens=self.read,
            cache_write_tokens=self.written,
        )


def _messages(messages: Sequence[Message], names: ToolNames) -> tuple[str, list[dict[str, Any]]]:
    """System text and the turns, with consecutive same-role turns merged (the API wants them to alternate)."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})

    for message, ids, answers in assign_call_ids(messages):
        if message.role == "system":
            if message.content:
                system.append(message.content)
        elif message.role == "tool":
            block: dict[str, Any] = {"type": "tool_result", "tool_use_id": answers, "content": message.content}
            if message.is_error:
                block["is_error"] = True
            # Tool results lead their user turn; text the user adds after them follows.
            add("user", [block])
        else:
            blocks: list[dict[str, Any]] = []
            if message.content:
                blocks.append({"type": "text", "text": message.content})
            blocks.extend(
                {"type": "tool_use", "id": call_id, "name": names.to_wire(call.name), "input": dict(call.args)}
                for call, call_id in zip(message.tool_calls, ids, strict=True)
            )
            add(message.role, blocks)
    return "\n\n".join(system), turns
