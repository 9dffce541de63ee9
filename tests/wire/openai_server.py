"""An OpenAI chat-completions server for tests: ``chat.completion.chunk`` SSE, scripted per request.

Builders return the SSE frames of typical streams: text deltas, tool-call deltas (with the
index-0 reuse some compatible servers do), the final ``choices: []`` usage chunk and
``data: [DONE]``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from starlette.applications import Starlette

from tests.wire import SSE, Gate, Script, Status, build_app

__all__ = [
    "DONE",
    "app",
    "chunk",
    "error_body",
    "frame",
    "rate_limited",
    "server_error",
    "text_reply",
    "text_stream",
    "tool_stream",
    "usage_chunk",
]

DONE = "data: [DONE]\n\n"
MODEL = "gpt-test"


def app(script: Script) -> Starlette:
    """The app: ``POST /v1/chat/completions`` answered from ``script``."""
    return build_app(script, ["/v1/chat/completions"])


def frame(data: dict[str, Any]) -> str:
    """One SSE frame carrying ``data`` as JSON."""
    return f"data: {json.dumps(data)}\n\n"


def chunk(delta: dict[str, Any] | None = None, *, finish: str | None = None) -> str:
    """A ``chat.completion.chunk`` frame with one choice."""
    return frame(
        {
            "id": "chatcmpl-test",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": MODEL,
            "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish, "logprobs": None}],
        }
    )


def usage_chunk(prompt_tokens: int, completion_tokens: int, cached: int | None = None) -> str:
    """The last chunk when ``include_usage`` is set: no choices, the usage (with ``cached``:
    ``prompt_tokens_details.cached_tokens``, the part of the prompt served from the cache)."""
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if cached is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached, "audio_tokens": 0}
    return frame(
        {
            "id": "chatcmpl-test",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": MODEL,
            "choices": [],
            "usage": usage,
        }
    )


def text_stream(
    pieces: Sequence[str | Gate],
    *,
    usage: tuple[int, int] | None = (10, 5),
    finish: str | None = "stop",
    done: bool = True,
    cached: int | None = None,
) -> list[str | Gate]:
    """Frames of a text reply: a role delta, one content delta per piece, the finish, usage
    (``cached``: its cached prompt tokens), [DONE]."""
    frames: list[str | Gate] = [chunk({"role": "assistant", "content": ""})]
    frames.extend(p if isinstance(p, Gate) else chunk({"content": p}) for p in pieces)
    if finish is not None:
        frames.append(chunk({}, finish=finish))
    if usage is not None:
        frames.append(usage_chunk(*usage, cached=cached))
    if done:
        frames.append(DONE)
    return frames


def text_reply(text: str, *, usage: tuple[int, int] = (10, 5), finish: str = "stop", cached: int | None = None) -> SSE:
    """A streamed text reply, split into word-sized deltas; ``finish="length"`` makes it a reply
    cut by the token limit; ``cached``: the usage's cached prompt tokens."""
    words = text.split(" ")
    pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
    return SSE(text_stream(pieces, usage=usage, finish=finish, cached=cached))


def tool_stream(
    calls: Sequence[tuple[str, str, Sequence[str | Gate]]],
    *,
    reuse_index0: bool = False,
    interleave: bool = False,
    ids: bool = True,
    usage: tuple[int, int] | None = (20, 12),
    finish: str | None = "tool_calls",
) -> list[str | Gate]:
    """Frames of a tool-calling reply.

    Args:
        calls: (id, wire name, argument JSON pieces) per call; a ``Gate`` among the pieces is
            where the server waits (after the call's head, when it comes first).
        reuse_index0: send every call at ``index`` 0 (as some compatible servers do).
        interleave: alternate the calls' argument pieces (each call keeps its own index).
        ids: send the call ids (``False``: none, as some compatible servers do).
        usage: the usage chunk's (prompt, completion) tokens, or ``None`` for none.
        finish: the finish reason, or ``None`` for a stream that never finishes.
    """
    frames: list[str | Gate] = [chunk({"role": "assistant", "content": None})]

    def head(i: int, call_id: str, name: str) -> str:
        fragment: dict[str, Any] = {
            "index": 0 if reuse_index0 else i,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        if ids:
            fragment["id"] = call_id
        return chunk({"tool_calls": [fragment]})

    def piece(i: int, text: str | Gate) -> str | Gate:
        if isinstance(text, Gate):
            return text
        return chunk({"tool_calls": [{"index": 0 if reuse_index0 else i, "function": {"arguments": text}}]})

    if interleave and not reuse_index0:
        frames.extend(head(i, call_id, name) for i, (call_id, name, _) in enumerate(calls))
        longest = max(len(p) for _, _, p in calls)
        for k in range(longest):
            frames.extend(piece(i, parts[k]) for i, (_, _, parts) in enumerate(calls) if k < len(parts))
    else:
        for i, (call_id, name, parts) in enumerate(calls):
            frames.append(head(i, call_id, name))
            frames.extend(piece(i, p) for p in parts)
    if finish is not None:
        frames.append(chunk({}, finish=finish))
    if usage is not None:
        frames.append(usage_chunk(*usage))
    frames.append(DONE)
    return frames


def error_body(message: str, kind: str = "server_error", code: str | None = None) -> dict[str, Any]:
    """OpenAI's error JSON."""
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def rate_limited(*, ms_hint: bool = True) -> Status:
    """A 429 asking for an immediate retry with ``Retry-After: 0``.

    The SDKs read ``Retry-After: 0`` as "no hint" and back off by themselves (0.5 s, doubling);
    ``ms_hint`` adds OpenAI's ``retry-after-ms: 1`` so the retry comes at once.
    """
    headers = {"retry-after": "0"}
    if ms_hint:
        headers["retry-after-ms"] = "1"
    return Status(429, error_body("Rate limit reached for requests", "requests", "rate_limit_exceeded"), headers)


def server_error() -> Status:
    """A 500 (``retry-after-ms: 1`` keeps the SDK's backoff short)."""
    return Status(500, error_body("The server had an error while processing your request."), {"retry-after-ms": "1"})
