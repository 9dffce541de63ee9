"""An Anthropic messages server for tests: raw streaming events, scripted per request.

Events: ``message_start``, ``content_block_start`` / ``content_block_delta`` (``text_delta``,
``input_json_delta``) / ``content_block_stop``, ``message_delta``, ``message_stop``, ``ping``
and ``error``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from starlette.applications import Starlette

from tests.wire import Gate, Script, Status, build_app

__all__ = [
    "app",
    "error_body",
    "error_event",
    "event",
    "message_delta",
    "message_start",
    "message_stop",
    "ping",
    "rate_limited",
    "text_block",
    "text_stream",
    "tool_use_block",
    "tool_use_stream",
]

MODEL = "claude-test"


def app(script: Script) -> Starlette:
    """The app: ``POST /v1/messages`` answered from ``script``."""
    return build_app(script, ["/v1/messages"])


def event(kind: str, data: dict[str, Any]) -> str:
    """One SSE frame: ``event: <kind>`` and its JSON data (which repeats the type)."""
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"


def message_start(
    input_tokens: int, output_tokens: int = 1, *, cache_read: int | None = None, cache_write: int | None = None
) -> str:
    """The first event: the message shell and the input token count (``input_tokens`` excludes
    the cached ones: ``cache_read`` and ``cache_write`` are ``cache_read_input_tokens`` and
    ``cache_creation_input_tokens``)."""
    usage: dict[str, Any] = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    if cache_read is not None:
        usage["cache_read_input_tokens"] = cache_read
    if cache_write is not None:
        usage["cache_creation_input_tokens"] = cache_write
    return event(
        "message_start",
        {
            "message": {
                "id": "msg_test",
                "type": "message",
                "role": "assistant",
                "model": MODEL,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": usage,
            }
        },
    )


def ping() -> str:
    """A keep-alive event."""
    return event("ping", {})


def text_block(index: int, pieces: Sequence[str | Gate]) -> list[str | Gate]:
    """A text content block streamed as ``text_delta`` events."""
    frames: list[str | Gate] = [
        event("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}})
    ]
    for p in pieces:
        if isinstance(p, Gate):
            frames.append(p)
        else:
            frames.append(event("content_block_delta", {"index": index, "delta": {"type": "text_delta", "text": p}}))
    frames.append(event("content_block_stop", {"index": index}))
    return frames


def tool_use_block(index: int, tool_id: str, name: str, json_pieces: Sequence[str | Gate]) -> list[str | Gate]:
    """A ``tool_use`` block whose input streams as ``input_json_delta`` pieces (a ``Gate`` among
    them is where the server waits)."""
    frames: list[str | Gate] = [
        event(
            "content_block_start",
            {"index": index, "content_block": {"type": "tool_use", "id": tool_id, "name": name, "input": {}}},
        )
    ]
    frames.extend(
        p
        if isinstance(p, Gate)
        else event("content_block_delta", {"index": index, "delta": {"type": "input_json_delta", "partial_json": p}})
        for p in json_pieces
    )
    frames.append(event("content_block_stop", {"index": index}))
    return frames


def message_delta(stop_reason: str, output_tokens: int, stop_sequence: str | None = None, **input_usage: int) -> str:
    """The stop reason and the cumulative output token count; ``input_usage`` adds cumulative
    input counts as newer servers send them (``input_tokens``, ``cache_read_input_tokens``,
    ``cache_creation_input_tokens``)."""
    return event(
        "message_delta",
        {
            "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
            "usage": {"output_tokens": output_tokens, **input_usage},
        },
    )


def message_stop() -> str:
    """The end marker."""
    return event("message_stop", {})


def text_stream(
    pieces: Sequence[str | Gate],
    *,
    usage: tuple[int, int] = (12, 6),
    stop: bool = True,
    stop_reason: str = "end_turn",
    cache: tuple[int, int] | None = None,
) -> list[str | Gate]:
    """A whole text reply: start, ping, one text block, message_delta, message_stop.

    ``stop_reason="max_tokens"`` makes it a reply cut by the token limit; ``cache`` is
    (cache read, cache write) input tokens, besides ``usage``'s uncached input."""
    read, write = cache if cache is not None else (None, None)
    frames: list[str | Gate] = [
        message_start(usage[0], cache_read=read, cache_write=write),
        ping(),
        *text_block(0, pieces),
    ]
    if stop:
        frames += [message_delta(stop_reason, usage[1]), message_stop()]
    return frames


def tool_use_stream(
    calls: Sequence[tuple[str, str, Sequence[str | Gate]]],
    *,
    text: Sequence[str] = (),
    usage: tuple[int, int] = (20, 12),
    stop_reason: str = "tool_use",
) -> list[str | Gate]:
    """A whole tool-calling reply: start, ping, an optional text block, one ``tool_use`` block per
    call (its input streamed as ``input_json_delta`` pieces), ``stop_reason: tool_use``, stop.

    Args:
        calls: (id, wire name, input JSON pieces) per call; a ``Gate`` among the pieces is where
            the server waits (after the block's start, when it comes first).
        text: text pieces written before the calls (none: no text block).
        usage: (input, output) tokens.
        stop_reason: ``"max_tokens"`` for a reply cut by the token limit.
    """
    frames: list[str | Gate] = [message_start(usage[0]), ping()]
    first = 0
    if text:
        frames += text_block(0, text)
        first = 1
    for k, (tool_id, name, pieces) in enumerate(calls):
        frames += tool_use_block(first + k, tool_id, name, pieces)
    frames += [message_delta(stop_reason, usage[1]), message_stop()]
    return frames


def error_body(message: str, kind: str) -> dict[str, Any]:
    """Anthropic's error JSON."""
    return {"type": "error", "error": {"type": kind, "message": message}}


def error_event(message: str = "Overloaded", kind: str = "overloaded_error") -> str:
    """An ``error`` event inside a stream."""
    return f"event: error\ndata: {json.dumps(error_body(message, kind))}\n\n"


def rate_limited() -> Status:
    """A 429 asking for an immediate retry (``Retry-After: 0``; ``retry-after-ms`` keeps the wait short)."""
    return Status(
        429,
        error_body("Number of request tokens has exceeded your per-minute rate limit", "rate_limit_error"),
        {"retry-after": "0", "retry-after-ms": "1"},
    )
