"""Run traces: a ``RunResult`` as JSON, with every secret taken out.

A trace holds the question, the model, the answer, every task (arguments, dependencies,
thought, result or error, state, start and end in seconds from the run's start), the token
usage, the cost and the phases of each round. A run with a drafter adds what speculation did:
each task adopted from a speculative call says so (``speculative``), and ``speculation`` holds
the summary and every speculative call (arguments scrubbed like a task's, times on the same
clock). A trace written before speculation existed lacks both keys; readers take a missing key
as no speculation. ``write_trace`` writes one; ``trace_dict``
gives the same as a dict; ``render_timeline`` draws either.

Secrets never reach a trace: every string of it, keys included, is scrubbed, and a value
under a secret's name is redacted whole (``llmcompiler._redact`` says what counts as a secret).
Any result can be written: integers too long to print, values nested thousands deep and lone
surrogates become safe text (``_text.safe_text``), so the file is always valid UTF-8 JSON.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from llmcompiler._literals import Ref, Template
from llmcompiler._records import RunResult, SpeculationSummary, SpeculativeCall, SpeculativeHit, TaskRecord
from llmcompiler._redact import REDACTED, is_secret_entry, scrubber
from llmcompiler._text import MAX_INT_DIGITS, int_summary, safe_text
from llmcompiler._types import Usage

__all__ = ["TRACE_VERSION", "to_json_safe", "trace_dict", "write_trace"]

TRACE_VERSION = 1
"""The trace format's version, written as ``"version"``."""

_MAX_DEPTH = 50  # deeper values are kept as their text (cut by safe_text)
_INT_BITS = int(MAX_INT_DIGITS * 3.3219)  # integers that JSON can write (Python prints up to 4,300 digits)


def to_json_safe(value: Any, *, _depth: int = 0) -> Any:
    """``value`` as JSON values: containers kept, pydantic models and dataclasses as dicts,
    anything else (and non-finite floats, integers too long to print) as its text.

    Never raises: values nested too deep, cycles, lone surrogates and objects that cannot be
    shown become the text ``safe_text`` gives them.
    """
    return _Json(safe_text).value(value, _depth)


class _Json:
    """Turns values into JSON values in one walk, passing every string (keys too) through ``clean``."""

    def __init__(self, clean: Callable[[str], str]) -> None:
        self.clean = clean

    def value(self, value: Any, depth: int) -> Any:
        if value is None or value is True or value is False:
            return value
        kind = type(value)
        if kind is str:
            return self.clean(value)
        if kind is int:
            return value if value.bit_length() <= _INT_BITS else int_summary(value)
        if kind is float:
            return value if math.isfinite(value) else str(value)
        if kind is dict or kind is list:
            depth += 1
            if depth > _MAX_DEPTH:
                return self.clean(safe_text(value))
            if kind is list:
                return [self.value(v, depth) for v in value]
            return self.mapping(value, depth)
        return self.other(value, depth)

    def mapping(self, value: Mapping[Any, Any], depth: int) -> dict[str, Any]:
        return {self.key(k): REDACTED if is_secret_entry(k, v) else self.value(v, depth) for k, v in value.items()}

    def other(self, value: Any, depth: int) -> Any:
        """Anything but a plain str, int, float, list or dict (subclasses included)."""
        if isinstance(value, bool):
            return bool(value)
        if isinstance(value, int):
            return int(value) if value.bit_length() <= _INT_BITS else int_summary(value)
        if isinstance(value, float):
            return float(value) if math.isfinite(value) else str(value)
        if isinstance(value, str) or depth >= _MAX_DEPTH or isinstance(value, (Ref, Template)):
            # Ref and Template: a task that never ran keeps its references as written ($N, $2.entityId, '...${N}...').
            return self.clean(safe_text(value))
        try:
            return self.container(value, depth + 1)
        except Exception:  # a value that cannot be walked (a raising items(), a dump that fails) is its text
            return self.clean(safe_text(value))

    def container(self, value: Any, depth: int) -> Any:
        if isinstance(value, Mapping):
            return self.mapping(value, depth)
        if isinstance(value, (list, tuple)):
            return [self.value(v, depth) for v in value]
        if isinstance(value, (set, frozenset)):
            items = [self.value(v, depth) for v in value]
            try:
                return sorted(items)
            except TypeError:
                return items
        dump = getattr(value, "model_dump", None)
        if callable(dump) and not isinstance(value, type):
            return self.value(dump(mode="json"), depth)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: self.value(getattr(value, f.name), depth) for f in dataclasses.fields(value)}
        return self.clean(safe_text(value))

    def key(self, key: Any) -> str:
        return self.clean(key if type(key) is str else safe_text(key, 200))

    def text(self, value: str | None) -> str | None:
        return None if value is None else self.clean(value if type(value) is str else safe_text(value))


def _rel(t: float | None, origin: float) -> float | None:
    return None if t is None else round(t - origin, 6)


def _task(record: TaskRecord, origin: float, json: _Json) -> dict[str, Any]:
    return {
        "idx": record.idx,
        "tool": json.text(record.tool),
        "args": json.value(record.args, 0),
        "deps": sorted(record.deps),
        "thought": json.text(record.thought),
        "line": json.text(record.line),
        "state": record.state,
        "result": json.value(record.result, 0) if record.error is None else None,
        "error": json.text(record.error),
        "start": _rel(record.start, origin),
        "end": _rel(record.end, origin),
        "duration": None if record.duration is None else round(record.duration, 6),
        "round": record.round,
        "attempts": record.attempts,
        "cached": record.cached,
        "batch_size": record.batch_size,
        "fused_with": list(record.fused_with),
        "after": sorted(record.after),
        "exclusive": json.text(record.exclusive),
        "speculative": _hit(record.speculative, origin),
    }


def _hit(hit: SpeculativeHit | None, origin: float) -> dict[str, Any] | None:
    if hit is None:
        return None
    return {
        "draft": hit.draft,
        "started": _rel(hit.started, origin),
        "ready": _rel(hit.ready, origin),
        "saved_s": round(hit.saved_s, 6),
        "joined": hit.joined,
        "outcome": hit.outcome,
    }


def _usage(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "calls": usage.calls,
    }


def _call(call: SpeculativeCall, origin: float, json: _Json) -> dict[str, Any]:
    return {
        "round": call.round,
        "draft": call.draft,
        "tool": json.text(call.tool),
        "args": json.value(call.args, 0),
        "line": json.text(call.line),
        "state": call.state,
        "start": _rel(call.start, origin),
        "end": _rel(call.end, origin),
        "duration": round(call.end - call.start, 6),
        "adopted_by": call.adopted_by,
        "error": json.text(call.error),
    }


def _speculation(summary: SpeculationSummary | None, origin: float, json: _Json) -> dict[str, Any] | None:
    if summary is None:
        return None
    return {
        "drafter": json.text(summary.drafter),
        "drafted": summary.drafted,
        "started": summary.started,
        "hits": summary.hits,
        "misses": summary.misses,
        "cancelled": summary.cancelled,
        "time_saved_s": round(summary.time_saved_s, 6),
        "calls": [_call(c, origin, json) for c in summary.calls],
        "usage": _usage(summary.usage),
        "cost_usd": summary.cost_usd,
        "errors": [json.text(e) for e in summary.errors],
    }


def trace_dict(
    result: RunResult,
    *,
    question: str,
    model: str | None = None,
    error: str | None = None,
    secrets: Iterable[str | None] = (),
) -> dict[str, Any]:
    """A run as a JSON-ready dict, every string scrubbed of secrets.

    Args:
        result: the run.
        question: the question it answered.
        model: the model's name (``llm.model_name``).
        error: for a run that failed, what stopped it.
        secrets: more strings to redact (keys the environment does not hold).

    Returns:
        ``version``, ``question``, ``model``, ``answer``, ``error``, ``rounds``, ``total_s``,
        ``sequential_s``, ``usage``, ``cost_usd``, ``tasks`` (idx, tool, args, deps, thought,
        line, state, result, error, start, end, duration, round, attempts, cached, batch_size,
        fused_with, after, exclusive, speculative; times in seconds from the run's start),
        ``timings`` (one dict per round, same clock), ``plan_errors``, ``thoughts`` and
        ``speculation``.

        A task's ``speculative`` is ``None``, or for a task that took a speculative call's
        result: ``draft``, ``started``, ``ready``, ``saved_s``, ``joined``, ``outcome``.
        ``speculation`` is ``None`` without a drafter, else the ``SpeculationSummary``:
        ``drafter``, ``drafted``, ``started``, ``hits``, ``misses``, ``cancelled``,
        ``time_saved_s``, ``calls`` (round, draft, tool, args, line, state, start, end, duration,
        adopted_by, error), ``usage`` (the drafter's tokens), ``cost_usd`` and ``errors``.
    """
    scrub = scrubber(secrets)  # the environment read once for the whole trace: linear in its size
    json = _Json(lambda text: scrub(safe_text(text)))
    origin = result.start
    timings = [
        {"round": n, **{f.name: _rel(getattr(t, f.name), origin) for f in dataclasses.fields(t)}}
        for n, t in enumerate(result.round_timings, start=1)
    ]
    trace: dict[str, Any] = {
        "version": TRACE_VERSION,
        "question": json.text(question),
        "model": json.text(model),
        "answer": json.text(result.answer),
        "error": json.text(error),
        "rounds": result.rounds,
        "total_s": round(result.total_s, 6),
        "sequential_s": round(result.sequential_s, 6),
        "usage": _usage(result.usage),
        "cost_usd": result.cost_usd,
        "tasks": [_task(r, origin, json) for r in result.tasks],
        "timings": timings,
        "plan_errors": json.value(list(result.plan_errors), 0),
        "thoughts": json.value(list(result.thoughts), 0),
        "speculation": _speculation(result.speculation, origin, json),
    }
    return trace


def write_trace(
    result: RunResult,
    path: str | os.PathLike[str],
    *,
    question: str,
    model: str | None = None,
    error: str | None = None,
    secrets: Iterable[str | None] = (),
) -> Path:
    """Write a run's trace as JSON (see ``trace_dict``); returns the path written.

    This writes a file: from async code, call it through ``asyncio.to_thread``.

    Example:
        >>> from llmcompiler import LLMCompiler, tool
        >>> from llmcompiler.testing import ScriptedLLM
        >>> @tool
        ... def square(x: int) -> int:
        ...     '''Square a number.'''
        ...     return x * x
        >>> llm = ScriptedLLM(["1. square(3)\\n2. join()", "Action: Finish(9)"])
        >>> result = LLMCompiler(llm=llm, tools=[square]).run("3 squared?")
        >>> import tempfile, json, os
        >>> path = write_trace(result, os.path.join(tempfile.mkdtemp(), "t.json"), question="3 squared?")
        >>> [t["result"] for t in json.loads(path.read_text())["tasks"]]
        [9, None]
    """
    out = Path(path)
    data = trace_dict(result, question=question, model=model, error=error, secrets=secrets)
    out.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return out
