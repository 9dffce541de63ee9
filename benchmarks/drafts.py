"""Draft plans for speculative execution: recorded from a real drafter, replayed, and scored.

An ``LLMCompiler`` with a ``drafter`` sends each round's planning request to the drafter too
and starts the draft's calls of speculation-safe tools early. This module measures that idea
apart from the engine:

- Recording (``python -m benchmarks drafts --suite S --limit N``): for each item, the exact
  round-1 planning ``ModelRequest`` LLMCompiler sends its planner is captured (LLMCompiler runs
  with the oracle planner behind ``CapturingLLM``, which keeps the ``purpose == "plan"``
  request; the prompt is never rebuilt here), then the drafter (the real local model) streams
  its reply to that request, read to the end. Each stream event is stored with its offset in
  seconds from the call's start, as measured on this machine: text chunks and ``Usage``
  reports, in the order they came. One JSON file per suite in ``benchmarks/results/``
  (``drafts-local-<suite>.json``) with the model, the machine and the command.
- Replaying: ``ReplayDrafter`` is a ``ChatModel`` that streams one item's recorded events at
  their recorded offsets (``asyncio.sleep`` on the running loop, so a virtual clock replays them
  exactly), usage included; ``PerfectDrafter`` writes the item's gold plan as the oracle planner
  writes it, all at once: the ceiling of the idea.
- Scoring (``hit_rate``, offline): the share of an item's gold calls its draft wrote exactly, by
  the engine's rule for a hit: the same tool and equal arguments after the tool's validation
  (``llmcompiler._memo.memo_key`` of the validated arguments). References are resolved with the
  gold results: a draft ``$k`` stands for the result of the gold call that draft task ``k``
  matched; when task ``k`` matched none, a call that uses it cannot match.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks._machine import load_average, machine_info
from benchmarks.oracle import PROFILES, OracleLLM, render_plan
from benchmarks.suites import Item
from benchmarks.suites._common import recording_latency
from llmcompiler import LLMCompiler, Truncated, Usage
from llmcompiler._literals import ResolveError, resolve
from llmcompiler._memo import memo_key
from llmcompiler._plan import TaskParsed, parse_plan
from llmcompiler._tools import bind_arguments
from llmcompiler.models import ChatModel, ModelEvent, ModelRequest

__all__ = [
    "DRAFT_SUITES",
    "CapturingLLM",
    "Draft",
    "DraftHits",
    "PerfectDrafter",
    "ReplayDrafter",
    "capture_plan_request",
    "draft_hits",
    "drafts_path",
    "gold_results",
    "load_drafts",
    "record_draft",
    "record_drafts",
]

DRAFT_SUITES = ("parallelqa", "bfcl", "nestful")
"""The suites whose drafts are recorded (the issue's acceptance list)."""


# --------------------------------------------------------------------------- recording


class CapturingLLM:
    """A ``ChatModel`` that passes every request to ``inner`` and keeps the planning requests.

    Attributes:
        plans: the ``purpose == "plan"`` requests, in order.
    """

    def __init__(self, inner: ChatModel) -> None:
        self.inner = inner
        self.plans: list[ModelRequest] = []

    @property
    def model_name(self) -> str:
        """The inner model's name."""
        return self.inner.model_name

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Keep ``request`` when it asks for a plan, and stream ``inner``'s reply."""
        if request.purpose == "plan":
            self.plans.append(request)
        return self.inner.stream(request)


async def capture_plan_request(item: Item) -> ModelRequest:
    """The round-1 planning request ``LLMCompiler`` sends its planner for ``item``.

    LLMCompiler answers the item with the oracle planner (the ``instant`` profile) behind a
    ``CapturingLLM``; the tools' waits are recorded instead of slept (``recording_latency``), so
    it takes no time.

    Raises:
        RuntimeError: the run sent no planning request.
    """
    capturing = CapturingLLM(OracleLLM(item.gold, item.answer, PROFILES["instant"]))
    with recording_latency():
        await LLMCompiler(llm=capturing, tools=item.tools).arun(item.question)
    if not capturing.plans:
        raise RuntimeError(f"{item.id}: LLMCompiler sent no planning request")
    return capturing.plans[0]


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Draft:
    """One item's recorded draft.

    Attributes:
        item: the item's id.
        text: the whole draft (its text chunks joined).
        events: the stream, in order: ``(offset_s, event)``, the offset in seconds from the
            call's start, the event a text chunk (``str``) or a ``Usage`` report.
        usage: the reports summed.
        end_s: when the stream ended, from the call's start.
        truncated: the model's token limit cut the draft (its ``Truncated`` reason), else ``None``.
        error: what the drafter raised, else ``None`` (the events before it are kept).
    """

    item: str
    text: str
    events: tuple[tuple[float, str | Usage], ...]
    usage: Usage
    end_s: float
    truncated: str | None = None
    error: str | None = None

    @property
    def first_chunk_s(self) -> float | None:
        """When the first text chunk came, from the call's start."""
        return next((t for t, e in self.events if isinstance(e, str)), None)

    def retimed(self, first_token_s: float, tokens_per_s: float) -> Draft:
        """The same draft (text chunks, usage reports, cut, error) on another schedule: text chunk
        ``k`` (from 1) at ``first_token_s + (k - 1) / tokens_per_s``, each usage report at the time
        of the chunk after it (the local model reports tokens just before the text they made),
        the end at the last chunk. For a what-if at a speed measured elsewhere (the local model
        on an idle machine), where the recording's own times were taken under load."""
        if tokens_per_s <= 0 or first_token_s < 0:
            raise ValueError("the first token at 0 s or later, and a positive speed")
        times: list[float] = []
        k = 0
        for _, event in self.events:
            if isinstance(event, str):
                k += 1
                times.append(first_token_s + (k - 1) / tokens_per_s)
            else:
                times.append(-1.0)  # filled from the next chunk below
        last = first_token_s + max(k - 1, 0) / tokens_per_s if k else 0.0
        following = last
        for i in range(len(times) - 1, -1, -1):
            if times[i] < 0:
                times[i] = following
            else:
                following = times[i]
        events = tuple((t, e) for t, (_, e) in zip(times, self.events, strict=True))
        return dataclasses.replace(self, events=events, end_s=last)

    def to_json(self) -> dict[str, Any]:
        """The draft as the recording file holds it."""
        return {
            "item": self.item,
            "text": self.text,
            "usage": _usage_json(self.usage),
            "first_chunk_s": self.first_chunk_s,
            "end_s": self.end_s,
            "truncated": self.truncated,
            "error": self.error,
            "events": [
                {"t": round(t, 6), "text": e} if isinstance(e, str) else {"t": round(t, 6), "usage": _usage_json(e)}
                for t, e in self.events
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Draft:
        """A draft from its ``to_json`` form."""
        events: list[tuple[float, str | Usage]] = []
        for e in data["events"]:
            events.append((float(e["t"]), str(e["text"]) if "text" in e else _usage_of(e["usage"])))
        return cls(
            item=str(data["item"]),
            text=str(data["text"]),
            events=tuple(events),
            usage=_usage_of(data["usage"]),
            end_s=float(data["end_s"]),
            truncated=data.get("truncated"),
            error=data.get("error"),
        )


def _usage_json(usage: Usage) -> dict[str, int]:
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens, "calls": usage.calls}


def _usage_of(data: Mapping[str, Any]) -> Usage:
    return Usage(
        prompt_tokens=int(data.get("prompt_tokens", 0)),
        completion_tokens=int(data.get("completion_tokens", 0)),
        calls=int(data.get("calls", 0)),
    )


async def record_draft(model: ChatModel, request: ModelRequest, item_id: str) -> Draft:
    """Stream ``model``'s reply to ``request`` to its end, timing every event on the loop's clock.

    A drafter that raises gives a draft with its ``error`` and the events before it.
    """
    loop = asyncio.get_running_loop()
    start = loop.time()
    events: list[tuple[float, str | Usage]] = []
    truncated: str | None = None
    error: str | None = None
    try:
        async for event in model.stream(request):
            now = loop.time() - start
            if isinstance(event, str | Usage):
                events.append((now, event))
            elif isinstance(event, Truncated):
                truncated = event.reason
            # native tool calls: a plan request never asks for them
    except Exception as exc:  # the drafter's fault is recorded, the other items go on
        error = f"{type(exc).__name__}: {exc}"[:300]
    end = loop.time() - start
    usage = Usage()
    for _, e in events:
        if isinstance(e, Usage):
            usage = usage + e
    text = "".join(e for _, e in events if isinstance(e, str))
    return Draft(
        item=item_id, text=text, events=tuple(events), usage=usage, end_s=end, truncated=truncated, error=error
    )


def drafts_path(out_dir: Path, suite: str, model_name: str = "local") -> Path:
    """Where a suite's recorded drafts go: ``drafts-<model>-<suite>.json``."""
    slug = "".join(c if c.isalnum() or c == "." else "-" for c in model_name.split(":")[0]).strip("-").lower()
    return out_dir / f"drafts-{slug or 'model'}-{suite}.json"


async def record_drafts(
    suite: str,
    items: Sequence[Item],
    model: ChatModel,
    *,
    on_done: Callable[[Draft], None] | None = None,
    save: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Record ``model``'s draft of every item's round-1 plan, one at a time; the recording document.

    Each draft also notes the 1-minute load average when it ended (``load_1m``): the machine may
    be busy with other work, and a drafter's speed is the machine's. ``save`` gets the document
    after every item (a long recording cut short keeps what it has).
    """
    doc: dict[str, Any] = {
        "suite": suite,
        "model": model.model_name,
        "items": 0,
        "what": (
            "each item's draft: the model's reply to the round-1 planning request LLMCompiler sends its "
            "planner (captured, not rebuilt), streamed to its end, one item at a time; 'events' are the "
            "stream's text chunks and usage reports with their offsets in seconds from the call's start "
            "(measured on this machine, wall clock)"
        ),
        "machine": machine_info(),
        "drafts": [],
    }
    for item in items:
        request = await capture_plan_request(item)
        draft = await record_draft(model, request, item.id)
        load = load_average()
        doc["drafts"].append(draft.to_json() | {"load_1m": load[0] if load else None})
        doc["items"] = len(doc["drafts"])
        doc["load_average_after"] = load
        doc["recorded_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        if on_done is not None:
            on_done(draft)
        if save is not None:
            save(doc)
    return doc


def load_drafts(path: Path) -> tuple[dict[str, Any], dict[str, Draft]]:
    """A recording file's document and its drafts by item id."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    drafts = {d["item"]: Draft.from_json(d) for d in doc.get("drafts", [])}
    return doc, drafts


# --------------------------------------------------------------------------- replaying


class ReplayDrafter:
    """A ``ChatModel`` that replays one recorded draft: each event at its recorded offset from the
    call's start (``asyncio.sleep`` on the running loop's clock), text and ``Usage`` reports alike.

    Every call replays the same draft (a draft is of round 1; a later round's request gets it too,
    as a drafter that repeats itself would).
    """

    def __init__(self, draft: Draft, model_name: str = "replay:local") -> None:
        self.draft = draft
        self._name = model_name
        self.calls = 0

    @property
    def model_name(self) -> str:
        """``replay:<recorded model>``."""
        return self._name

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """The recorded events at their offsets; the recorded error, if the drafter raised, at its end."""
        del request
        self.calls += 1
        loop = asyncio.get_running_loop()
        start = loop.time()
        for offset, event in self.draft.events:
            delay = start + offset - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            yield event
        delay = start + self.draft.end_s - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if self.draft.error is not None:
            raise RuntimeError(f"recorded drafter error: {self.draft.error}")
        if self.draft.truncated is not None:
            yield Truncated(self.draft.truncated)


class PerfectDrafter:
    """A ``ChatModel`` that writes an item's gold plan as the oracle planner writes it, at once:
    every gold call drafted exactly and at the start, the ceiling of speculation. It reports one
    call and no tokens (it stands for no real model)."""

    def __init__(self, item: Item) -> None:
        self.plan = render_plan(item.gold)

    @property
    def model_name(self) -> str:
        """``perfect``."""
        return "perfect"

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """The whole gold plan in one chunk, then ``Usage(calls=1)``."""
        del request
        yield self.plan
        yield Usage(calls=1)


# --------------------------------------------------------------------------- scoring


async def gold_results(item: Item) -> dict[int, Any]:
    """The results of ``item``'s gold calls on its own tools, by gold number (waits recorded, not slept)."""
    tools = {t.name: t for t in item.tools}
    results: dict[int, Any] = {}
    with recording_latency():
        for n, call in enumerate(item.gold, 1):
            args = {name: resolve(value, results.__getitem__) for name, value in call.args.items()}
            results[n] = await tools[call.tool].ainvoke(args)
    return results


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class DraftHits:
    """How one draft scored against its item's gold calls.

    Attributes:
        gold: the gold calls.
        drafted: the draft's tool calls (``join()`` left out).
        matched: gold number matched by each draft task that matched one, by draft task number.
        hits: gold calls matched (``len(matched)``).
    """

    gold: int
    drafted: int
    matched: Mapping[int, int]

    @property
    def hits(self) -> int:
        """Gold calls the draft wrote exactly."""
        return len(self.matched)


def _key(item: Item, tool: str, args: Mapping[str, Any]) -> Hashable | None:
    by_name = {t.name: t for t in item.tools}
    found = by_name.get(tool)
    if found is None:
        return None
    try:
        validated = found.validate(args)
    except Exception:  # an argument the tool rejects: the engine would fail the call, no hit
        return None
    return memo_key(tool, validated)


def draft_hits(item: Item, text: str, results: Mapping[int, Any]) -> DraftHits:
    """Which of ``item``'s gold calls the draft ``text`` wrote exactly (see the module docstring).

    Args:
        item: the item (its tools validate both sides' arguments).
        text: the draft plan.
        results: the gold calls' results by gold number (``gold_results``).

    Draft tasks are taken in order; each matches the first unmatched gold call of the same tool
    whose resolved, validated arguments have the same ``memo_key``. A draft reference ``$k``
    resolves to the result of the gold call draft task ``k`` matched; a task that uses an
    unmatched one matches nothing.
    """
    gold_keys: list[Hashable | None] = []
    for call in item.gold:
        try:
            args = {name: resolve(value, results.__getitem__) for name, value in call.args.items()}
        except (KeyError, ResolveError):
            gold_keys.append(None)
            continue
        gold_keys.append(_key(item, call.tool, args))
    tools = {t.name: t for t in item.tools}
    matched: dict[int, int] = {}
    used: set[int] = set()
    drafted = 0
    for event in parse_plan(text):
        if not isinstance(event, TaskParsed) or event.tool == "join":
            continue
        drafted += 1
        tool = tools.get(event.tool)
        if tool is None or any(d not in matched for d in event.deps):
            continue
        try:
            bound = bind_arguments(tool, event.args, dict(event.kwargs))
            args = {name: resolve(value, lambda k: results[matched[k]]) for name, value in bound.items()}
        except (KeyError, ResolveError, ValueError, TypeError):
            continue
        key = _key(item, event.tool, args)
        if key is None:
            continue
        for n, (call, wanted) in enumerate(zip(item.gold, gold_keys, strict=True), 1):
            if n not in used and call.tool == event.tool and wanted == key:
                used.add(n)
                matched[event.idx] = n
                break
    return DraftHits(gold=len(item.gold), drafted=drafted, matched=matched)
