"""What the provider adapters share: tool names and call ids on the wire, errors, clients.

Providers accept tool names matching ``^[a-zA-Z0-9_-]{1,64}$``; llmcompiler tool names may
hold dots (``spotify.play``). A dot becomes ``-`` (which a llmcompiler name never holds, so the
mapping is reversible); a name longer than 64 characters is cut and given a hash suffix.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from llmcompiler._errors import ModelError
from llmcompiler.models._base import Message

__all__ = [
    "LoopClients",
    "ToolNames",
    "assign_call_ids",
    "is_transport_error",
    "json_schema",
    "one_line",
    "parse_arguments",
    "redact",
    "status_hint",
    "wire_name",
]

C = TypeVar("C")

_WIRE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_MAX = 64
# Shapes of provider keys, in case a server echoes one back in an error body.
_KEY_SHAPES = re.compile(r"\bsk-[A-Za-z0-9_\-*.]{6,}")
_BEARER = re.compile(r"(?i)(bearer\s+)\S+")


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
    except json.JSONDecodeError as exc:
        shown = text if len(text) <= 200 else text[:200] + "..."
        raise ModelError(
            provider, f"the arguments of tool call {tool!r} are not valid JSON ({exc.msg}): {shown!r}"
        ) from None
    if not isinstance(value, dict):
        raise ModelError(provider, f"the arguments of tool call {tool!r} are not a JSON object: {text[:200]!r}")
    return value


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with the given secrets, bearer tokens and key-shaped strings replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    text = _BEARER.sub(r"\1[redacted]", text)
    return _KEY_SHAPES.sub("[redacted]", text)


_TRANSPORT_MODULES = frozenset({"httpx", "httpx2", "httpcore", "httpcore2", "h11", "h2", "anyio"})


def is_transport_error(exc: BaseException) -> bool:
    """Whether ``exc`` is the HTTP stack's own error (a dropped connection, a read timeout)
    that an SDK let through unwrapped while streaming."""
    return isinstance(exc, OSError) or type(exc).__module__.split(".")[0] in _TRANSPORT_MODULES


def one_line(text: str, limit: int = 300) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def status_hint(status: int, key_env: str) -> str:
    """What to do about an HTTP error status."""
    if status == 401:
        return f"the API key was refused: check {key_env} or api_key="
    if status == 403:
        return "the API key may not use this model or endpoint"
    if status == 404:
        return "unknown model or endpoint: check the model name and base_url"
    if status == 429:
        return "rate limited, and retries ran out: raise max_retries= or slow down"
    if status >= 500:
        return "the server failed, and retries ran out: raise max_retries= or try later"
    return "the request was refused"


def json_schema(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """A tool's parameter schema as providers want it (an object schema, never empty)."""
    schema = dict(parameters)
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    return schema


class LoopClients(Generic[C]):
    """One SDK client per event loop, made on first use in a worker thread, closed with its loop.

    An SDK client's connection pool belongs to the loop that first used it, and ``run()``
    starts a new loop per question; so each loop gets its own client. Making one loads TLS
    certificates from disk, which is done off the loop. A small task waits for the loop to
    shut down (``asyncio.run`` cancels leftover tasks) and closes the client then, so no
    connection outlives its loop.

    Args:
        factory: makes a client.
        close: closes one.
    """

    def __init__(self, factory: Callable[[], C], close: Callable[[C], Awaitable[None]]) -> None:
        self._factory = factory
        self._close = close
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, C] = weakref.WeakKeyDictionary()
        self._keepers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = (
            weakref.WeakKeyDictionary()
        )
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()

    async def get(self) -> C:
        """The running loop's client."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is not None:
            return client
        lock = self._locks.setdefault(loop, asyncio.Lock())
        async with lock:
            client = self._clients.get(loop)
            if client is None:
                client = await asyncio.to_thread(self._factory)
                self._clients[loop] = client
                self._keepers[loop] = loop.create_task(
                    self._keep(loop, client), name="llmcompiler: close the SDK client when the loop shuts down"
                )
        return client

    async def _keep(self, loop: asyncio.AbstractEventLoop, client: C) -> None:
        try:
            await loop.create_future()
        finally:
            if self._clients.get(loop) is client:
                del self._clients[loop]
                await self._close(client)

    async def aclose(self) -> None:
        """Close the running loop's client, if it has one."""
        loop = asyncio.get_running_loop()
        client = self._clients.pop(loop, None)
        keeper = self._keepers.pop(loop, None)
        if keeper is not None:
            keeper.cancel()
        if client is not None:
            await self._close(client)
