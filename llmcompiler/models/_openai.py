"""OpenAI chat completions (and any OpenAI-compatible server) through the official SDK."""

from __future__ import annotations

import collections
import dataclasses
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, cast
from urllib.parse import urlsplit

import openai
from openai import AsyncOpenAI

from llmcompiler._errors import ModelError
from llmcompiler._types import Message, ModelEvent, ModelRequest, ToolCall, Truncated, Usage
from llmcompiler.models._sdk import NO_KEY, SdkChat, SdkProvider
from llmcompiler.models._wire import (
    ToolNames,
    assign_call_ids,
    function_tools,
    parse_arguments,
    tool_call,
    wire_name,
)

__all__ = ["NO_KEY", "OpenAIChat", "response_format", "strict_allowed"]

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
    sent: bool = False  # yielded already
    checked: int = 0  # argument pieces when last found incomplete

    def complete(self, names: ToolNames) -> ToolCall | None:
        """The call, if its arguments are a whole JSON object by now (checked again only when they grew)."""
        if self.checked == len(self.arguments):
            return None
        self.checked = len(self.arguments)
        text = "".join(self.arguments)
        if not text.rstrip().endswith("}"):
            return None
        try:
            args = parse_arguments(PROVIDER, self.name, text)
        except ModelError:
            return None  # not whole yet, or never: at the finish it is sent as it is (and fails alone)
        return ToolCall(name=names.from_wire(self.name), args=args, id=self.id)


class OpenAIChat(SdkChat[AsyncOpenAI]):
    """A chat model served by OpenAI or by any OpenAI-compatible server (vLLM, NIM, Ollama, llama.cpp).

    Replies stream as chat-completion chunks; usage comes from the final usage chunk
    (``stream_options={"include_usage": True}``), with the prompt tokens OpenAI served from its
    prompt cache (``prompt_tokens_details.cached_tokens``) as ``Usage.cached_tokens``. OpenAI
    caches a prompt's stable prefix by itself; the agent's prompts put theirs first. 429s, 5xx
    and timeouts are retried by the SDK with backoff, honouring ``Retry-After``, up to
    ``max_retries`` times.

    A request with a ``response_schema`` (structured extraction) is sent with structured
    outputs, ``response_format={"type": "json_schema", ...}`` (``response_format``), strict
    where the schema allows it; the JSON reply streams back as text.

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
        if request.response_schema is not None:  # over a response_format in params: this call needs its own
            body["response_format"] = response_format(request.response_schema, request.response_name)
        return body

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Stream the reply: text chunks and native tool calls as they arrive, then one ``Usage``,
        then ``Truncated`` when the reply was cut by the token limit (``finish_reason="length"``).

        Each tool call is yielded as soon as it is complete, so a caller can start it while the
        rest streams: once the stream has moved on to another call (a fragment at another
        index, or a new id or name at the same index) and this call's arguments are a whole
        JSON object. The calls still open are yielded at the ``finish_reason`` (one whose
        arguments are not a JSON object then carries the error and fails alone). Calls come in
        the order they began, the model's own: servers stream calls one after another, so each
        is yielded the moment the next begins; a server that interleaves calls' fragments has a
        complete call wait for the earlier ones.

        Raises:
            ModelError: the call failed after its retries, or the stream ended before its
                ``finish_reason`` (an incomplete reply is never passed off as complete: the calls
                still open are not yielded; the ones yielded before were complete).
        """
        names = ToolNames.for_request((t.name for t in request.tools), request.messages)
        body = self.build_body(request)
        chunks = cast(openai.AsyncStream[Any], await self._open(lambda client: client.chat.completions, body))
        # Errors are raised outside the ``except`` block: the SDK's exception (whose text may
        # quote the key back) must not ride along as ``__context__``.
        failure: ModelError | None = None
        finish: str | None = None
        usage: Usage | None = None
        calls: collections.deque[_CallBuilder] = collections.deque()  # not yet yielded, in the order they began
        current: dict[int, _CallBuilder] = {}
        async with chunks:
            try:
                async for chunk in chunks:
                    if chunk.usage is not None:
                        usage = _usage(chunk.usage)
                    for choice in chunk.choices[:1]:
                        delta = choice.delta
                        if delta is not None:
                            if delta.content:
                                yield delta.content
                            for fragment in delta.tool_calls or ():
                                builder = _add_fragment(fragment, calls, current)
                                for done in _complete_before(builder, calls, names):
                                    yield done
                        if choice.finish_reason is not None:
                            finish = choice.finish_reason
                            for built in calls:
                                yield _finished(built, names)
                            calls.clear()
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
        for built in calls:  # fragments after the finish_reason (no server sends them)
            yield _finished(built, names)
        yield usage or Usage(calls=1)
        if finish is not None and finish in CUT_REASONS:
            yield Truncated(finish)


def _usage(reported: Any) -> Usage:
    """One call's ``Usage`` from a chunk's ``usage``: the cached part of the prompt is
    ``prompt_tokens_details.cached_tokens`` (OpenAI writes its cache at no extra charge, so
    nothing counts as written)."""
    details = getattr(reported, "prompt_tokens_details", None)
    prompt = reported.prompt_tokens or 0
    cached = (getattr(details, "cached_tokens", None) or 0) if details is not None else 0
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=reported.completion_tokens or 0,
        calls=1,
        cached_tokens=max(0, min(int(cached), prompt)),
    )


def response_format(schema: Mapping[str, Any], name: str | None) -> dict[str, Any]:
    """OpenAI's structured-output ``response_format`` for a reply that must be JSON valid against
    ``schema``: ``{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}``.

    The name is made wire-safe (``^[a-zA-Z0-9_-]{1,64}$``, ``"response"`` when there is none).
    ``strict`` is true only when OpenAI's strict mode accepts the schema as it is (see
    ``strict_allowed``); otherwise false: the server is asked for the schema without the
    guarantee, and the caller validates the reply either way.

    Example:
        >>> response_format({"type": "object", "properties": {"n": {"type": "integer"}},
        ...     "required": ["n"], "additionalProperties": False}, "My Schema")["json_schema"]["name"]
        'My_Schema'
    """
    return {
        "type": "json_schema",
        "json_schema": {
            "name": wire_name(name or "response"),
            "schema": dict(schema),
            "strict": strict_allowed(schema),
        },
    }


_NESTED = frozenset({"items", "anyOf", "oneOf", "allOf", "prefixItems", "not", "additionalProperties"})


def strict_allowed(schema: Any) -> bool:
    """Whether OpenAI's strict structured outputs accept ``schema``: every object in it (the
    root, nested ones, ``$defs``, ``anyOf`` members, array items) lists all its properties in
    ``required`` and has ``additionalProperties: false``. A pydantic model with an optional
    field (``role: str | None = None``) is not strict: the field is not required.

    Example:
        >>> strict_allowed({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"],
        ...     "additionalProperties": False})
        True
        >>> strict_allowed({"type": "object", "properties": {"a": {"type": "string"}}})
        False
    """
    if isinstance(schema, list):
        return all(strict_allowed(member) for member in schema)
    if not isinstance(schema, Mapping):
        return True
    kind = schema.get("type")
    if kind == "object" or (isinstance(kind, list) and "object" in kind) or "properties" in schema:
        properties = schema.get("properties") or {}
        if not isinstance(properties, Mapping) or schema.get("additionalProperties") is not False:
            return False
        if set(properties) != set(schema.get("required") or ()):
            return False
    for key, value in schema.items():
        if key in ("properties", "$defs", "definitions", "patternProperties"):
            if isinstance(value, Mapping) and not all(strict_allowed(v) for v in value.values()):
                return False
        elif key in _NESTED and not strict_allowed(value):
            return False
    return True


def _complete_before(
    builder: _CallBuilder, calls: collections.deque[_CallBuilder], names: ToolNames
) -> Sequence[ToolCall]:
    """The first open calls that are complete, now that the stream is on ``builder``'s call
    (taken off ``calls``, in order; the first one still open holds back those after it)."""
    if not calls or calls[0] is builder:
        return ()  # the stream is still on the first open call: the common case, cheap
    done: list[ToolCall] = []
    while calls and calls[0] is not builder:
        call = calls[0].complete(names)
        if call is None:
            break
        calls.popleft().sent = True
        done.append(call)
    return done


def _finished(built: _CallBuilder, names: ToolNames) -> ToolCall:
    """An open call as it is, at the end of the reply (its arguments may be garbled: then it
    carries the error)."""
    built.sent = True
    return tool_call(PROVIDER, names.from_wire(built.name), built.id, "".join(built.arguments))


def _add_fragment(
    fragment: Any, calls: collections.deque[_CallBuilder], current: dict[int, _CallBuilder]
) -> _CallBuilder:
    """Add one streamed tool-call fragment; return the call it belongs to.

    Fragments are grouped by ``index``; a fragment with a new ``id`` at an index already in
    use starts a new call (some servers send every call at index 0). So does more argument
    text for a call already yielded whole (its arguments were a complete JSON object): a new
    call, which fails alone, rather than a call that ran with other arguments than it shows.
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
    more = builder is not None and builder.sent and bool(name or arguments.strip())
    if builder is None or fresh_id or fresh_name or more:
        builder = _CallBuilder()
        calls.append(builder)
        current[index] = builder
    if call_id is not None and builder.id is None:
        builder.id = call_id
    if name:
        builder.name += name
    if arguments and not builder.sent:
        builder.arguments.append(arguments)
    return builder


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
