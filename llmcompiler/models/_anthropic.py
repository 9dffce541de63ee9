"""Anthropic messages through the official SDK, streamed as raw events."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

import anthropic
from anthropic import AsyncAnthropic

from llmcompiler._errors import ModelError, UserError
from llmcompiler.models._base import Message, ModelEvent, ModelRequest, ToolCall, Usage
from llmcompiler.models._failures import CallSite, sdk_failure, stream_cut
from llmcompiler.models._names import (
    LoopClients,
    ToolNames,
    assign_call_ids,
    is_transport_error,
    json_schema,
    parse_arguments,
)

__all__ = ["AnthropicChat"]

PROVIDER = "anthropic"
NO_KEY = "llmcompiler-no-key"
"""The key sent to an Anthropic-compatible server when none is set."""

_RESERVED = frozenset({"model", "messages", "system", "stream", "stop_sequences", "tools", "max_tokens"})


@dataclasses.dataclass
class _ToolUse:
    id: str
    name: str
    json: list[str] = dataclasses.field(default_factory=list)


class AnthropicChat:
    """A Claude model through Anthropic's messages API.

    System messages go to ``system``; text streams from ``text_delta`` events; tool calls are
    assembled from ``input_json_delta`` events; usage comes from ``message_start`` (input
    tokens) and ``message_delta`` (output tokens). 429s, 5xx (incl. 529 overloaded) and
    timeouts are retried by the SDK with backoff, honouring ``Retry-After``, up to
    ``max_retries`` times.

    Args:
        model: the model id, e.g. ``"claude-sonnet-4-5"``.
        base_url: another endpoint (a proxy or a compatible server); default ``ANTHROPIC_BASE_URL``.
        api_key: default ``ANTHROPIC_API_KEY``; with a ``base_url`` and no key a placeholder is sent.
        max_tokens: the most tokens a reply may have (the API requires a bound).
        max_retries: retries of a failed request.
        timeout: seconds per request (connect, read and write each).
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
        **params: Any,
    ) -> None:
        if not model:
            raise UserError("AnthropicChat needs a model name, e.g. AnthropicChat('claude-sonnet-4-5')")
        if max_tokens < 1:
            raise UserError(f"max_tokens must be at least 1, got {max_tokens}")
        if max_retries < 0:
            raise UserError(f"max_retries must be 0 or more, got {max_retries}")
        if timeout <= 0:
            raise UserError(f"timeout must be positive, got {timeout}")
        clash = sorted(_RESERVED & params.keys())
        if clash:
            raise UserError(f"AnthropicChat sets {', '.join(clash)} itself; do not pass them as parameters")
        base = base_url or os.environ.get("ANTHROPIC_BASE_URL") or None
        key = api_key or os.environ.get("ANTHROPIC_API_KEY") or None
        if key is None:
            if base is None:
                raise UserError(f"anthropic:{model} needs an API key: set ANTHROPIC_API_KEY or pass api_key=")
            key = NO_KEY
        self.model = model
        self.base_url = base
        self.max_tokens = max_tokens
        self.max_retries = max_retries
        self.timeout = timeout
        self.params = params
        self._key = key
        self._clients: LoopClients[AsyncAnthropic] = LoopClients(self._make_client, _close)

    def __repr__(self) -> str:
        where = f", base_url={self.base_url!r}" if self.base_url else ""
        return f"AnthropicChat({self.model!r}{where})"

    @property
    def model_name(self) -> str:
        """``"anthropic:<model>"``."""
        return f"anthropic:{self.model}"

    def _make_client(self) -> AsyncAnthropic:
        return AsyncAnthropic(
            api_key=self._key,
            base_url=self.base_url,
            max_retries=self.max_retries,
            timeout=self.timeout,
        )

    async def aclose(self) -> None:
        """Close the running loop's HTTP client (a later call opens a new one)."""
        await self._clients.aclose()

    async def __aenter__(self) -> AnthropicChat:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

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
            body["system"] = system
        if request.stop:
            body["stop_sequences"] = list(request.stop)
        if request.native_tools and request.tools:
            body["tools"] = [
                {"name": names.to_wire(t.name), "description": t.description, "input_schema": json_schema(t.parameters)}
                for t in request.tools
            ]
        body.update(self.params)
        return body

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Stream the reply: text chunks as they arrive, each tool call when its block ends, then one ``Usage``.

        Raises:
            ModelError: the call failed after its retries, the stream reported an error, or it
                ended before ``message_stop`` (an incomplete reply is never passed off as complete).
        """
        names = ToolNames.for_request((t.name for t in request.tools), request.messages)
        body = self.build_body(request)
        client = await self._clients.get()
        # Errors are raised outside the ``except`` blocks: the SDK's exception (whose text may
        # quote the key back) must not ride along as ``__context__``.
        failure: ModelError | None = None
        # Parameters go as ``extra_body``: SDK versions differ in the keywords ``create`` accepts.
        core = {k: v for k, v in body.items() if k not in self.params}
        try:
            response = await cast(Any, client.messages).create(**core, extra_body=dict(self.params) or None)
        except anthropic.AnthropicError as exc:
            failure = self._error(exc, started=False)
        if failure is not None:
            raise failure
        events = cast(anthropic.AsyncStream[Any], response)
        prompt_tokens = 0
        completion_tokens = 0
        stopped = False
        blocks: dict[int, _ToolUse] = {}
        async with events:
            try:
                async for event in events:
                    kind = event.type
                    if kind == "message_start":
                        prompt_tokens = _input_tokens(event.message.usage)
                        completion_tokens = event.message.usage.output_tokens or 0
                    elif kind == "content_block_start":
                        block = event.content_block
                        if block.type == "tool_use":
                            blocks[event.index] = _ToolUse(id=block.id, name=block.name)
                    elif kind == "content_block_delta":
                        delta = event.delta
                        if delta.type == "text_delta":
                            if delta.text:
                                yield delta.text
                        elif delta.type == "input_json_delta" and event.index in blocks:
                            blocks[event.index].json.append(delta.partial_json)
                    elif kind == "content_block_stop":
                        use = blocks.pop(event.index, None)
                        if use is not None:
                            name = names.from_wire(use.name)
                            try:
                                args = parse_arguments(PROVIDER, name, "".join(use.json))
                            except ModelError as exc:  # one unreadable call fails itself, not its siblings
                                yield ToolCall(name=name, id=use.id, error=str(exc))
                            else:
                                yield ToolCall(name=name, args=args, id=use.id)
                    elif kind == "message_delta":
                        if event.usage is not None:
                            completion_tokens = event.usage.output_tokens or completion_tokens
                            if getattr(event.usage, "input_tokens", None):
                                prompt_tokens = _input_tokens(event.usage)
                    elif kind == "message_stop":
                        stopped = True
            except anthropic.AnthropicError as exc:
                failure = self._error(exc, started=True)
            except Exception as exc:
                if not is_transport_error(exc):
                    raise
                failure = self._cut(exc)
        if failure is not None:
            raise failure
        if not stopped:
            raise ModelError(PROVIDER, f"{self.model}: the stream ended before message_stop; the reply is incomplete")
        if blocks:
            raise ModelError(PROVIDER, f"{self.model}: a tool_use block never ended; the reply is incomplete")
        yield Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, calls=1)

    def _site(self) -> CallSite:
        return CallSite(
            provider=PROVIDER,
            model=self.model,
            key=self._key,
            timeout=self.timeout,
            max_retries=self.max_retries,
            where=self.base_url or "api.anthropic.com",
            key_env="ANTHROPIC_API_KEY",
            base_url_env="ANTHROPIC_BASE_URL",
        )

    def _cut(self, exc: Exception) -> ModelError:
        """A transport error the SDK let through while streaming."""
        return stream_cut(self._site(), exc)

    def _error(self, exc: anthropic.AnthropicError, *, started: bool) -> ModelError:
        return sdk_failure(self._site(), exc, anthropic, started=started)


async def _close(client: AsyncAnthropic) -> None:
    await client.close()


def _input_tokens(usage: Any) -> int:
    """Input tokens, counting cached ones (written or read) too."""
    total = usage.input_tokens or 0
    total += getattr(usage, "cache_creation_input_tokens", None) or 0
    total += getattr(usage, "cache_read_input_tokens", None) or 0
    return int(total)


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
