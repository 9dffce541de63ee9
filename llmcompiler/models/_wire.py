"""What goes on the providers' wire: tool names, call ids, tool-call arguments, parameter schemas.

Providers accept tool names matching ``^[a-zA-Z0-9_-]{1,64}$``; llmcompiler tool names may
hold dots (``spotify.play``). A dot becomes ``-`` (which a llmcompiler name never holds, so the
mapping is reversible); a name longer than 64 characters is cut and given a hash suffix.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from llmcompiler._errors import ModelError
from llmcompiler._text import one_line
from llmcompiler._types import Message, ToolCall, ToolSpec

__all__ = [
    "ToolNames",
    "assign_call_ids",
    "function_tools",
    "json_schema",
    "parse_arguments",
    "tool_call",
    "wire_name",
]

_WIRE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_MAX = 64


def wire_name(name: str) -> str:
    """The provider-safe form of tool name ``name``.

    Example:
        >>> wire_name("spotify.play")
        'spotify-play'
    """
    mapped = name.replace(".", "-")
    mapped = re.sub(r"[^a-zA-Z0-9_-]", "_", mapped)
    if _WIRE.match(mapped):
        return mapped
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{mapped[: _MAX - 9]}_{digest}"


class ToolNames:
    """Both directions of the name mapping for one request.

    Args:
        names: every tool name the request mentions (offered tools, calls in the history).
    """

    def __init__(self, names: Iterable[str]) -> None:
        self._to_wire: dict[str, str] = {}
        self._from_wire: dict[str, str] = {}
        for name in names:
            wire = wire_name(name)
            self._to_wire[name] = wire
            self._from_wire.setdefault(wire, name)

    @classmethod
    def for_request(cls, tool_names: Iterable[str], messages: Sequence[Message]) -> ToolNames:
        """The mapping for a request's tools and the tool calls in its messages."""
        names = list(tool_names)
        names.extend(call.name for m in messages for call in m.tool_calls)
        return cls(names)

    def to_wire(self, name: str) -> str:
        """The name sent to the provider."""
        return self._to_wire.get(name) or wire_name(name)

    def from_wire(self, wire: str) -> str:
        """The llmcompiler name of a name the provider sent back (dots restored when unknown)."""
        return self._from_wire.get(wire) or wire.replace("-", ".")


def assign_call_ids(messages: Sequence[Message]) -> list[tuple[Message, list[str], str | None]]:
    """Give every tool call and tool result an id, so the two can be paired on the wire.

    A call without an id gets ``call_<message>_<n>``; a ``role="tool"`` message without a
    ``tool_call_id`` answers the oldest unanswered call of the last assistant turn.

    Returns:
        for each message: the message, the ids of its tool calls, and (for ``role="tool"``)
        the id it answers.
    """
    out: list[tuple[Message, list[str], str | None]] = []
    pending: list[str] = []
    for k, message in enumerate(messages):
        if message.role == "assistant":
            ids = [call.id or f"call_{k}_{j}" for j, call in enumerate(message.tool_calls)]
            pending = list(ids)
            out.append((message, ids, None))
        elif message.role == "tool":
            answered = message.tool_call_id
            if answered is None and pending:
                answered = pending[0]
            if answered in pending:
                pending.remove(answered)
            out.append((message, [], answered or f"call_{k}_result"))
        else:
            out.append((message, [], None))
    return out


def parse_arguments(provider: str, tool: str, text: str) -> dict[str, Any]:
    """Parse a tool call's streamed JSON arguments.

    Raises:
        ModelError: the text is not a JSON object; the message names the tool.
    """
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        # JSONDecodeError, and what valid-looking JSON a model writes can still raise: a number of
        # more digits than Python converts (ValueError), arrays nested past the recursion limit.
        why = exc.msg if isinstance(exc, json.JSONDecodeError) else one_line(f"{type(exc).__name__}: {exc}", 120)
        shown = text if len(text) <= 200 else text[:200] + "..."
        raise ModelError(
            provider, f"the arguments of tool call {tool!r} are not valid JSON ({why}): {shown!r}"
        ) from None
    if not isinstance(value, dict):
        raise ModelError(provider, f"the arguments of tool call {tool!r} are not a JSON object: {text[:200]!r}")
    return value


def json_schema(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """A tool's parameter schema as providers want it (an object schema, never empty)."""
    schema = dict(parameters)
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    return schema


def function_tools(tools: Iterable[ToolSpec], names: ToolNames) -> list[dict[str, Any]]:
    """``tools`` in the OpenAI function-calling format (``{"type": "function", "function": ...}``)."""
    return [
        {
            "type": "function",
            "function": {
                "name": names.to_wire(t.name),
                "description": t.description,
                "parameters": json_schema(t.parameters),
            },
        }
        for t in tools
    ]


def tool_call(provider: str, name: str, call_id: str | None, arguments: str) -> ToolCall:
    """A streamed tool call once its JSON ``arguments`` are complete.

    Arguments that are not a JSON object give a call that carries the error instead: one
    unreadable call fails itself, not its siblings.
    """
    try:
        args = parse_arguments(provider, name, arguments)
    except ModelError as exc:
        return ToolCall(name=name, id=call_id, error=str(exc))
    return ToolCall(name=name, args=args, id=call_id)
