"""OpenAI chat completions (and any OpenAI-compatible server) through the official SDK."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast
from urllib.parse import urlsplit

import openai
from openai import AsyncOpenAI

from llmcompiler._errors import ModelError
from llmcompiler._types import Message, ModelEvent, ModelRequest, Truncated, Usage
from llmcompiler.models._sdk import NO_KEY, SdkChat, SdkProvider
from llmcompiler.models._wire import ToolNames, assign_call_ids, function_tools, tool_call

__all__ = ["NO_KEY", "OpenAIChat"]

PROVIDER = "openai"

# The finish reasons of a reply cut by a token limit (``max_tokens`` / ``max_completion_tokens``,
# or the context window): what the model wrote is only the start of its reply.
CUT_REASONS = frozenset({"length"})

_OPENAI = SdkProvider(
    name=PROVIDER,
    chat="OpenAIChat",
    example_model="gpt-4o-mini",
    key_env="OPENAI_API_KEY",
    base_url_env="OPENAI_BASE_URL",
    default_host="api.openai.com",
    reserved=frozenset({"model", "messages", "stream", "stream_options", "stop", "tools", "parallel_tool_calls"}),
    sdk=openai,
    error=openai.OpenAIError,
    client=AsyncOpenAI,
    no_key_hint=" (or base_url= for an OpenAI-compatible server that needs none)",
)


@dataclasses.dataclass
class _CallBuilder:
    id: str | None = None
    name: str = ""
    arguments: list[str] = dataclasses.field(default_factory=list)


class OpenAIChat(SdkChat[AsyncOpenAI]):
    """A chat model served by OpenAI or by any OpenAI-compatible server (vLLM, NIM, Ollama, llama.cpp).

    Replies stream as chat-completion chunks; usage comes from the final usage chunk
    (``stream_options={"include_usage": True}``). 429s, 5xx and timeouts are retried by the
    SDK with backoff, honouring ``Retry-After``, up to ``max_retries`` times.

    Args:
        model: the model id, e.g. ``"gpt-4o-mini"``.
        base_url: an OpenAI-compatible server, e.g. ``"http://localhost:8000/v1"``; default
            ``OPENAI_BASE_URL`` or OpenAI itself.
        api_key: default ``OPENAI_API_KEY``; with a ``base_url`` and no key a placeholder is sent.
        max_retries: retries of a failed request (429, 5xx, timeout, connection error).
        timeout: seconds per request (connect, read and write each).
        **params: more chat-completion parameters, e.g. ``temperature=0`` or ``max_tokens=512``.

    Raises:
        UserError: no API key and no base URL, or a bad option.

    Example:
        >>> llm = OpenAIChat("llama3.1", base_url="http://localhost:11434/v1")  # doctest: +SKIP
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        max_retries: int = 2,
        timeout: float = 120.0,
        **params: Any,
    ) -> None:
        super().__init__(
            _OPENAI,
            model,
            base_url=base_url,
            api_key=api_key,
            max_retries=max_retries,
            timeout=timeout,
            params=params,
        )
        self._compatible = self.base_url is not None and urlsplit(self.base_url).hostname != "api.openai.com"

    @property
    def model_name(self) -> str:
        """``"openai:<model>"``, or ``"openai-compatible:<model>"`` for another server."""
        return f"{'openai-compatible' if self._compatible else 'openai'}:{self.model}"

    def build_body(self, request: ModelRequest) -> dict[str, Any]:
        """The chat-completion parameters for ``request`` (what goes over the wire)."""
        names = ToolNames.for_request((t.name for t in request.tools), request.messages)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": _messages(request.messages, names),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.stop:
            body["stop"] = list(request.stop)
        if request.native_tools and request.tools:
            body["tools"] = function_tools(request.tools, names)
            body["parallel_tool_calls"] = True
        body.update(self.params)
        return body

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Stream the reply: text chunks as they arrive, then native tool calls, then one ``Usage``,
        then ``Truncated`` when the reply was cut by the token limit (``finish_reason="length"``).

        Raises:
            ModelError: the call failed after its retries, or the stream ended before its
                ``finish_reason`` (an incomplete reply is never passed off as complete).
        """
        names = ToolNames.for_request((t.name for t in request.tools), request.messages)
        body = self.build_body(request)
        chunks = cast(openai.AsyncStream[Any], await self._open(lambda client: client.chat.completions, body))
        # Errors are raised outside the ``except`` block: the SDK's exception (whose text may
        # quote the key back) must not ride along as ``__context__``.
        failure: ModelError | None = None
        finish: str | None = None
        usage: Usage | None = None
        calls: list[_CallBuilder] = []
        current: dict[int, _CallBuilder] = {}
        async with chunks:
            try:
                async for chunk in chunks:
                    if chunk.usage is not None:
                        usage = Usage(
                            prompt_tokens=chunk.usage.prompt_tokens or 0,
                            completion_tokens=chunk.usage.completion_tokens or 0,
                            calls=1,
                        )
                    for choice in chunk.choices[:1]:
                        delta = choice.delta
                        if delta is not None:
                            if delta.content:
                                yield delta.content
                            for fragment in delta.tool_calls or ():
                                _add_fragment(fragment, calls, current)
                        if choice.finish_reason is not None:
                            finish = choice.finish_reason
            except Exception as exc:
                failure = self._stream_failure(exc)
                if failure is None:
                    raise
        if failure is not None:
            raise failure
        if finish is None:
            raise ModelError(
                PROVIDER,
                f"{self.model}: the stream ended before a finish_reason; the reply is incomplete",
            )
        for built in calls:
            yield tool_call(PROVIDER, names.from_wire(built.name), built.id, "".join(built.arguments))
        yield usage or Usage(calls=1)
        if finish is not None and finish in CUT_REASONS:
            yield Truncated(finish)


def _add_fragment(fragment: Any, calls: list[_CallBuilder], current: dict[int, _CallBuilder]) -> None:
    """Add one streamed tool-call fragment.

    Fragments are grouped by ``index``; a fragment with a new ``id`` at an index already in
    use starts a new call (some servers send every call at index 0).
    """
    index = fragment.index or 0
    function = fragment.function
    name = (function.name if function is not None else None) or ""
    arguments = (function.arguments if function is not None else None) or ""
    call_id = fragment.id or None  # some servers send "" on continuation fragments
    builder = current.get(index)
    fresh_id = call_id is not None and builder is not None and builder.id is not None and call_id != builder.id
    # A server that reuses index 0 and sends no ids: a second name after arguments starts a call.
    fresh_name = call_id is None and builder is not None and bool(name and builder.name and builder.arguments)
    if builder is None or fresh_id or fresh_name:
        builder = _CallBuilder()
        calls.append(builder)
        current[index] = builder
    if call_id is not None and builder.id is None:
        builder.id = call_id
    if name:
        builder.name += name
    if arguments:
        builder.arguments.append(arguments)


def _messages(messages: Sequence[Message], names: ToolNames) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for message, ids, answers in assign_call_ids(messages):
        if message.role == "assistant" and message.tool_calls:
            out.append(
                {
                    "role": "assistant",
                    "content": message.content or None,
                    "tool_calls": [
                        {
                            "id": call_id,
                            "type": "function",
                            "function": {"name": names.to_wire(call.name), "arguments": json.dumps(dict(call.args))},
                        }
                        for call, call_id in zip(message.tool_calls, ids, strict=True)
                    ],
                }
            )
        elif message.role == "tool":
            content = message.content
            if message.is_error and not content.startswith("ERROR"):
                content = f"ERROR: {content}"
            out.append({"role": "tool", "tool_call_id": answers, "content": content})
        else:
            out.append({"role": message.role, "content": message.content})
    return out
