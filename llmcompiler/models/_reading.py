"""Reading a model's stream for a run: whatever the model raises arrives as a ``ModelError``.

A ``ChatModel`` may be anyone's code (a custom class, a ``FunctionLLM``, a LangChain model
behind ``LangChainChat``). ``model_events`` is the one place the agents read a stream through:
an exception the model raises (``ConnectionError``, a bug, even ``SystemExit`` or a
``CancelledError`` of its own) becomes a ``ModelError`` naming the model and the call, with
the original as ``__cause__``; a ``KeyboardInterrupt`` and a real cancellation of the run pass
as themselves; our own errors (``ModelError``, ...) and ``ReplyCut`` pass unchanged (a test
double's ``ScriptExhausted`` is not ours: it arrives as a ``ModelError``'s cause). The stream
is closed however reading ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from llmcompiler._errors import LLMCompilerError, ModelError, ReplyCut, really_cancelled
from llmcompiler._redact import scrub
from llmcompiler._text import one_line, safe_text
from llmcompiler._types import ChatModel, ModelEvent, ModelRequest, ToolCall, Truncated, Usage

__all__ = ["model_events", "model_name"]

_EVENTS = (str, ToolCall, Usage, Truncated)


def model_name(llm: object) -> str:
    """``llm.model_name``, or its class name when reading it fails."""
    try:
        name = getattr(llm, "model_name", None)
    except Exception:
        name = None
    return name if isinstance(name, str) and name else type(llm).__name__


async def model_events(llm: ChatModel, request: ModelRequest) -> AsyncGenerator[ModelEvent, None]:
    """The events of ``llm.stream(request)``; iterate inside ``contextlib.aclosing``.

    Raises:
        ModelError: the model raised (the original is the ``__cause__``), or yielded something
            that is not a model event.
    """
    try:
        stream: AsyncIterator[Any] = aiter(llm.stream(request))
    except (LLMCompilerError, ReplyCut):
        raise
    except BaseException as exc:
        if not _model_fault(exc):
            raise
        raise _failure(llm, request, exc) from exc
    completed = False
    try:
        while True:
            try:
                event = await anext(stream)
            except StopAsyncIteration:
                completed = True
                return
            except (LLMCompilerError, ReplyCut):
                raise
            except BaseException as exc:
                if not _model_fault(exc):
                    raise
                raise _failure(llm, request, exc) from exc
            if not isinstance(event, _EVENTS):
                raise ModelError(
                    model_name(llm),
                    f"the {request.purpose} call's stream yielded a {type(event).__name__}; "
                    "a model yields text, ToolCall, Usage or Truncated",
                )
            yield event
    finally:
        await _close(llm, request, stream, raise_errors=completed)


async def _close(llm: ChatModel, request: ModelRequest, stream: AsyncIterator[Any], *, raise_errors: bool) -> None:
    """Close the model's stream. A failure to close is the model's when the reply was read
    whole; when reading already failed or stopped early, the first problem is the one told."""
    aclose = getattr(stream, "aclose", None)
    if aclose is None:
        return
    try:
        await aclose()
    except (LLMCompilerError, ReplyCut):
        if raise_errors:
            raise
    except BaseException as exc:
        if not _model_fault(exc):
            raise
        if raise_errors:
            raise _failure(llm, request, exc) from exc


def _model_fault(exc: BaseException) -> bool:
    """Whether ``exc`` is the model's own failure rather than a signal to the whole program:
    Ctrl-C and a cancellation of the run itself are not the model's to report."""
    if isinstance(exc, KeyboardInterrupt):
        return False
    if isinstance(exc, asyncio.CancelledError):
        return not really_cancelled()
    return True


def _failure(llm: ChatModel, request: ModelRequest, exc: BaseException) -> ModelError:
    detail = one_line(scrub(f"{type(exc).__name__}: {safe_text(exc)}"))  # scrubbed whole, then cut
    return ModelError(model_name(llm), f"the {request.purpose} call failed: {detail}")
