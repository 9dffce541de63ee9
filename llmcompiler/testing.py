"""Test doubles: models that reply from a script or a function, streamed like real ones, and a
virtual clock to run them on.

They run offline and deterministically, so agents, planners and benchmarks can be tested
without a provider. Token counts are estimates (words and punctuation marks), marked so.
On a ``VirtualClockLoop`` (``run_virtual``) their simulated delays, and any tool's
``asyncio.sleep``, take no wall time and are exact.

A ``ScriptedLLM`` called more often than it has replies raises ``ScriptExhausted``: the test,
not the run, is wrong, so it is an ``AssertionError`` (as ``assert_complete`` raises for too
few calls), not one of the library's errors. Inside a run it arrives as any exception a model
raises does: a ``ModelError`` whose message names it and whose ``__cause__`` it is.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import re
import selectors
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar, TypeVarTuple, Unpack

from llmcompiler._errors import ModelError
from llmcompiler._types import Message, ModelEvent, ModelRequest, Purpose, ToolCall, Truncated, Usage

__all__ = [
    "FunctionLLM",
    "Reply",
    "ScriptExhausted",
    "ScriptedLLM",
    "StreamCut",
    "TokenLimit",
    "VirtualClockLoop",
    "estimate_tokens",
    "run_virtual",
]

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")

_TOKENS = re.compile(r"\w+|[^\w\s]|\s+")


class ScriptExhausted(AssertionError):
    """A ``ScriptedLLM`` was called more times than it has replies.

    A run reports it as a ``ModelError`` (``the join call failed: ScriptExhausted: ...``) with
    this exception as its ``__cause__``.
    """


class StreamCut:
    """A scripted reply that streams ``text`` and then fails as a cut connection does."""

    def __init__(self, text: str, message: str = "the stream ended before its end marker") -> None:
        self.text = text
        self.message = message


class TokenLimit:
    """A scripted reply that the model cut short at its token limit.

    It streams ``text`` (then ``calls``, for native tool calling) and its usage, then
    ``Truncated(reason)``, as a provider's stream does when ``max_tokens`` runs out.

    Example:
        >>> llm = ScriptedLLM([TokenLimit('1. search("x")\\n2. search("y'), "Action: Finish(x)"])
    """

    def __init__(self, text: str = "", *, calls: Sequence[ToolCall] = (), reason: str = "length") -> None:
        self.text = text
        self.calls = tuple(calls)
        self.reason = reason


Reply = str | Sequence[ToolCall] | StreamCut | TokenLimit | BaseException
"""One model reply: text, native tool calls, a cut stream, a reply cut at the token limit, or
an exception to raise."""


def estimate_tokens(text: str) -> int:
    """An offline token estimate: words and punctuation marks (white space is free)."""
    return sum(1 for t in _TOKENS.findall(text) if not t.isspace())


class _Streaming:
    """Streams replies the way a provider does: token-sized chunks, optional pacing."""

    def __init__(self, *, name: str, ttft: float, token_delay: float, chunk_tokens: int) -> None:
        if chunk_tokens < 1:
            raise ValueError("chunk_tokens must be at least 1")
        self._name = name
        self.ttft = ttft
        self.token_delay = token_delay
        self.chunk_tokens = chunk_tokens
        self.requests: list[ModelRequest] = []

    @property
    def model_name(self) -> str:
        """The name traces show."""
        return self._name

    async def _play(self, request: ModelRequest, reply: Reply) -> AsyncIterator[ModelEvent]:
        if isinstance(reply, BaseException):
            raise reply
        prompt_tokens = sum(estimate_tokens(m.content) for m in request.messages)
        if self.ttft:
            await asyncio.sleep(self.ttft)
        completion = 0
        if isinstance(reply, (str, StreamCut, TokenLimit)):
            text = reply if isinstance(reply, str) else reply.text
            for stop in request.stop:
                cut = text.find(stop)
                if cut >= 0:
                    text = text[:cut]
            tokens = _TOKENS.findall(text)
            for i in range(0, len(tokens), self.chunk_tokens):
                if self.token_delay and i:
                    await asyncio.sleep(self.token_delay * self.chunk_tokens)
                yield "".join(tokens[i : i + self.chunk_tokens])
            if isinstance(reply, StreamCut):
                raise ModelError(self._name, reply.message)
            completion = sum(1 for t in tokens if not t.isspace())
        calls: list[ToolCall] = []
        if isinstance(reply, TokenLimit):
            calls = list(reply.calls)
        elif not isinstance(reply, (str, StreamCut)):
            calls = list(reply)
        for call in calls:
            yield call
        completion += sum(estimate_tokens(f"{c.name}{dict(c.args)}") for c in calls)
        yield Usage(prompt_tokens=prompt_tokens, completion_tokens=completion, calls=1)
        if isinstance(reply, TokenLimit):
            yield Truncated(reply.reason)


class ScriptedLLM(_Streaming):
    """A model that gives scripted replies, one per call, in order.

    Args:
        replies: one ``Reply`` per expected call.
        ttft: simulated seconds to the first token.
        token_delay: simulated seconds per token after the first.
        chunk_tokens: tokens per streamed chunk.
        name: the model name traces show.

    Attributes:
        requests: every request received, in order.

    Example:
        >>> llm = ScriptedLLM(["1. search('x')\\n2. join()", "Action: Finish(x)"])
    """

    def __init__(
        self,
        replies: Iterable[Reply],
        *,
        ttft: float = 0.0,
        token_delay: float = 0.0,
        chunk_tokens: int = 1,
        name: str = "scripted",
    ) -> None:
        super().__init__(name=name, ttft=ttft, token_delay=token_delay, chunk_tokens=chunk_tokens)
        self.replies: list[Reply] = list(replies)

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Stream the next scripted reply.

        Raises:
            ScriptExhausted: every reply was already used (a run reports it as a ``ModelError``
                whose ``__cause__`` it is).
        """
        n = len(self.requests)
        self.requests.append(request)
        if n >= len(self.replies):
            raise ScriptExhausted(
                f"{self.model_name} was called {n + 1} times but has {len(self.replies)} replies "
                f"(this call's purpose: {request.purpose!r}); script a reply for every call the test makes"
            )
        return self._play(request, self.replies[n])

    def assert_complete(self) -> None:
        """Check that every scripted reply was used.

        Raises:
            AssertionError: naming how many were left.
        """
        left = len(self.replies) - len(self.requests)
        if left > 0:
            raise AssertionError(f"{self.model_name}: {left} of {len(self.replies)} scripted replies were not used")


ReplyFunction = Callable[[Sequence[Message], Purpose], Reply | Awaitable[Reply]]


class FunctionLLM(_Streaming):
    """A model whose replies come from ``fn(messages, purpose)``, sync or async.

    Args:
        fn: given the chat messages and the call's purpose (``"plan"``, ``"join"``, ...),
            returns the ``Reply``.
        ttft: simulated seconds to the first token.
        token_delay: simulated seconds per token after the first.
        chunk_tokens: tokens per streamed chunk.
        name: the model name traces show.
    """

    def __init__(
        self,
        fn: ReplyFunction,
        *,
        ttft: float = 0.0,
        token_delay: float = 0.0,
        chunk_tokens: int = 1,
        name: str = "function",
    ) -> None:
        super().__init__(name=name, ttft=ttft, token_delay=token_delay, chunk_tokens=chunk_tokens)
        self.fn = fn

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Stream ``fn``'s reply to ``request``."""
        self.requests.append(request)
        reply = self.fn(request.messages, request.purpose)
        if inspect.isawaitable(reply):
            reply = await reply
        async for event in self._play(request, reply):
            yield event


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time: whenever it is idle, its clock jumps to the next timer.

    Like trio's ``MockClock(autojump_threshold=0)``. The clock starts at 0 and moves only
    when no callback is ready and no socket or pipe has anything to read: then it jumps
    straight to the earliest timer. So ``asyncio.sleep(60)`` and ``asyncio.timeout(30)``
    take no wall time, and every duration measured with ``loop.time()`` is exactly the sum
    of the simulated delays on its path; the CPU time the code itself spends counts as 0.

    Use it only for code that does not wait on threads or processes (``asyncio.to_thread``,
    ``run_in_executor``, a sync tool the agent offloads): their completion arrives as I/O
    the jump does not wait for, so the clock would run ahead of them. With no timer at all
    the loop blocks on real I/O as a normal loop does. ``thread_callbacks`` counts the
    callbacks other threads handed the loop (``call_soon_threadsafe``, the way every thread
    and process pool reports back): not 0 means some code waited on a thread, and the
    durations measured on this loop are not to be trusted.

    Attributes:
        thread_callbacks: callbacks scheduled from other threads so far.

    Example:
        >>> async def main() -> float:
        ...     await asyncio.sleep(3600)
        ...     return asyncio.get_running_loop().time()
        >>> run_virtual(main)
        3600.0
    """

    def __init__(self) -> None:
        super().__init__()
        self._virtual_now = 0.0
        self.thread_callbacks = 0
        selector: Any = self._selector  # type: ignore[attr-defined]
        real_select = selector.select

        def select(timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
            ready: list[tuple[selectors.SelectorKey, int]] = real_select(0)
            if not ready and timeout is not None and timeout > 0:
                self._virtual_now += timeout  # idle: jump to the next timer
            elif not ready and timeout is None:
                ready = real_select(None)
            return ready

        selector.select = select

    def time(self) -> float:
        """The virtual time in seconds since the loop was made."""
        return self._virtual_now

    def call_soon_threadsafe(
        self, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts, context: contextvars.Context | None = None
    ) -> asyncio.Handle:
        """Schedule ``callback`` from another thread, as ``asyncio`` does, and count it (``thread_callbacks``)."""
        self.thread_callbacks += 1
        return super().call_soon_threadsafe(callback, *args, context=context)


def run_virtual(main: Callable[[], Awaitable[_T]]) -> _T:
    """Run ``main()`` to completion on a fresh ``VirtualClockLoop``, then close the loop.

    As ``asyncio.run`` does, but on virtual time (see ``VirtualClockLoop``, including when
    not to use it: code that waits on threads). Async generators left open are finalized
    before the loop closes.

    Args:
        main: an async function of no arguments (``lambda: agent.run(question)`` for one
            with arguments).

    Returns:
        What ``main()`` returned.
    """
    loop = VirtualClockLoop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
