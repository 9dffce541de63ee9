"""OpenAI chat completions (and any OpenAI-compatible server) through the official SDK."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast
from urllib.parse import urlsplit

import openai
from openai import AsyncOpenAI

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

__all__ = ["OpenAIChat"]

PROVIDER = "openai"
NO_KEY = "llmcompiler-no-key"
"""The key sent to an OpenAI-compatible server when none is set (local servers need none)."""

_RESERVED = frozenset({"model", "messages", "stream", "stream_options", "stop", "tools", "parallel_tool_calls"})


@dataclasses.dataclass
class _CallBuilder:
    id: str | None = None
    name: str = ""
    arguments: list[str] = dataclasses.field(default_factory=list)


class OpenAIChat:
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
        if not model:
            raise UserError("OpenAIChat needs a model name, e.g. OpenAIChat('gpt-4o-mini')")
        if max_retries < 0:
            raise UserError(f"max_retries must be 0 or more, got {max_retries}")
        if timeout <= 0:
            raise UserError(f"timeout must be positive, got {timeout}")
        clash = sorted(_RESERVED & params.keys())
        if clash:
            raise UserError(f"OpenAIChat sets {', '.join(clash)} itself; do not pass them as parameters")
        base = base_url or os.environ.get("OPENAI_BASE_URL") or None
        key = api_key or os.environ.get("OPENAI_API_KEY") or None
        if key is None:
            if base is None:
                raise UserError(
                    f"openai:{model} needs an API key: set OPENAI_API_KEY or pass api_key= "
                    "(or base_url= for an OpenAI-compatible server that needs none)"
                )
            key = NO_KEY
        self.model = model
        self.base_url = base
        self.max_retries = max_retries
        self.timeout = timeout
        self.params = params
        self._key = key
        self._compatible = base is not None and urlsplit(base).hostname != "api.openai.com"
        self._clients: LoopClients[AsyncOpenAI] = LoopClients(self._make_client, _close)

    def __repr__(self) -> str:
        where = f", base_url={self.base_url!r}" if self.base_url else ""
        return f"OpenAIChat({self.model!r}{where})"

    @property
    def model_name(self) -> str:
        """``"openai:<model>"``, or ``"openai-compatible:<model>"`` for another server."""
        return f"{'openai-compatible' if self._compatible else 'openai'}:{self.model}"

    def _make_client(self) -> AsyncOpenAI:
        return AsyncOpenAI(
            api_key=self._key,
            base_url=self.base_url,
            max_retries=self.max_retries,
            timeout=self.timeout,
        )

    async def aclose(self) -> None:
        """Close the running loop's HTTP client (a later call opens a new one)."""
        await self._clients.aclose()

    async def __aenter__(self) -> OpenAIChat:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

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
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": names.to_wire(t.name),
                        "description": t.description,
                        "parameters": json_schema(t.parameters),
                    },
                }
                for t in request.tools
            ]
            body["parallel_tool_calls"] = True
        body.update(self.params)
        return body

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Stream the reply: text chunks as they arrive, then native tool calls, then one ``Usage``.

        Raises:
            ModelError: the call failed after its retries, or the stream ended before its
                ``finish_reason`` (an incomplete reply is never passed off as complete).
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
            response = await cast(Any, client.chat.completions).create(**core, extra_body=dict(self.params) or None)
        except openai.OpenAIError as exc:
            failure = self._error(exc, started=False)
        if failure is not None:
            raise failure
        chunks = cast(openai.AsyncStream[Any], response)
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
            except openai.OpenAIError as exc:
                failure = self._error(exc, started=True)
            except Exception as exc:
                if not is_transport_error(exc):
                    raise
                failure = self._cut(exc)
        if failure is not None:
            raise failure
        if finish is None:
            raise ModelError(
                PROVIDER,
                f"{self.model}: the stream ended before a finish_reason; the reply is incomplete",
            )
        for built in calls:
            name = names.from_wire(built.name)
            try:
                args = parse_arguments(PROVIDER, name, "".join(built.arguments))
            except ModelError as exc:  # one unreadable call fails itself, not its siblings
                yield ToolCall(name=name, id=built.id, error=str(exc))
                continue
            yield ToolCall(name=name, args=args, id=built.id)
        yield usage or Usage(calls=1)

    def _site(self) -> CallSite:
        return CallSite(
            provider=PROVIDER,
            model=self.model,
            key=self._key,
            timeout=self.timeout,
            max_retries=self.max_retries,
            where=self.base_url or "api.openai.com",
            key_env="OPENAI_API_KEY",
            base_url_env="OPENAI_BASE_URL",
        )

    def _cut(self, exc: Exception) -> ModelError:
        """A transport error the SDK let through while streaming."""
        return stream_cut(self._site(), exc)

    def _error(self, exc: openai.OpenAIError, *, started: bool) -> ModelError:
        return sdk_failure(self._site(), exc, openai, started=started)


async def _close(client: AsyncOpenAI) -> None:
    await client.close()


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
