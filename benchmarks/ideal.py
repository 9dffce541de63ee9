"""The ideal bound of a question: what a perfect agent would take, defined by no system's run.

Every system is reported as its latency over this bound (``÷ ideal``). It is built from the
question alone: its gold calls (``Item.gold``), the tool latencies those calls have, and the
streaming profile every system runs on in oracle mode (``benchmarks.oracle.Profile``). No
system's timeline enters it. Three parts, added:

1. **plan** (``plan_s``): one model call that writes the calls of the first dependency level
   (the gold calls that need no other call): its time to first token for a prompt of the
   question, plus the completion tokens of those calls, written as native tool calls (name and
   JSON arguments, ``benchmarks.tokens.call_tokens``):
   ``profile.reply_s(tokens(question), sum of call_tokens of the first level)``.
2. **tools** (``tools_s``): the longest dependency chain of the gold tool latencies: each gold
   call starts when the calls it needs have ended and takes its own latency; the tools take until
   the last one ends. Calls of deeper levels are written for free, while the first level runs.
3. **answer** (``answer_s``): one answering call: time to first token for a prompt of the
   question and the gold observations, plus the answer's tokens:
   ``profile.reply_s(tokens(question + observations), tokens(answer))``.

Tokens are counted by the profile's counter (``Profile.counter()``: ``o200k_base`` for the
gpt-4o profile), on the bare texts: no system prompt, no tool list, no chat framing, no
thoughts. The latencies and observations come from ``trace_gold``, which runs the gold calls on
the item's own tools with ``suites._common.sleeping`` recording its delays instead of waiting
(``recording_latency``): the same delays every system's calls wait, since a suite's latency is
a function of the call (``LatencyModel``).

Caveat: it is not a strict lower bound. The ideal starts the tools only when the whole first
level is written. A system that streams (LLMCompiler's plan, native calls dispatched as the
stream completes them) can start the longest chain as soon as that chain's first call is written,
before the last call of the first level; a native turn writes the first level's calls only, so
native calling gets exactly this chance. A system can therefore come in below the ideal, by at
most the decode time of the first level's other calls (its tokens less those of the chain's first
call, over the decode speed; zero when the first level is one call). ``IdealBound.stream_margin_s``
is that most, worked out exactly: the ideal less the same three parts with each first-level call
starting at its last token, the calls written in the best order (longest chain first). So a
ratio slightly below 1.0 is possible, by no more than ``stream_margin_s``. Two differences only
add to a system's time: a real prompt is longer than the bare question (prefill), and a plan, a
thought or a transcript costs tokens the ideal does not count. One can go either way for
LLMCompiler: the ideal counts the first level as native calls (name and compact JSON arguments),
its plan language writes a call in its own tokens, a token fewer for a bare call
(``distance_km(city_a='Paris', city_b='Rome')``: 13 ``o200k_base`` tokens, against 14 for
``distance_km`` and ``{"city_a":"Paris","city_b":"Rome"}``), though a plan line's number and
newline, its thoughts and its ``join()`` line cost more than that.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from benchmarks.oracle import Profile, levels
from benchmarks.suites import Item
from benchmarks.suites._common import recording_latency
from benchmarks.tokens import call_tokens
from llmcompiler import ToolCall
from llmcompiler._literals import ResolveError, resolve
from llmcompiler._prompts import observation

__all__ = ["GoldTrace", "GoldTraceError", "IdealBound", "answer_prompt", "ideal_bound", "trace_gold"]


class GoldTraceError(ValueError):
    """A gold call cannot run on the item's own tools (a bug in the suite's data or tools)."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class GoldTrace:
    """What the gold calls of one item give when run on its tools.

    Attributes:
        latencies: seconds each gold call waits (the delays it recorded), by gold number (from 1).
        observations: each gold call's result as a model reads it (``llmcompiler``'s observation
            text), by gold number.
    """

    latencies: Mapping[int, float]
    observations: Mapping[int, str]


async def trace_gold(item: Item) -> GoldTrace:
    """Run ``item``'s gold calls on its own tools, in order, without waiting.

    Each call's references (``Ref``, ``Template``) are resolved from the results of the calls
    before it, as the executor resolves them; its arguments are validated as the executor does
    (``Tool.ainvoke``). Inside ``recording_latency()``, so a tool's ``sleeping`` records its delay
    instead of waiting: a call's latency is the sum of the delays it recorded. The tools' other
    work (a lookup, a computation) runs for real. No system and no model is involved.

    Raises:
        GoldTraceError: a gold call names a tool the item does not have, cannot resolve its
            references, or fails.
    """
    tools = {t.name: t for t in item.tools}
    results: dict[int, Any] = {}
    latencies: dict[int, float] = {}
    observations: dict[int, str] = {}
    for n, call in enumerate(item.gold, 1):
        tool = tools.get(call.tool)
        if tool is None:
            raise GoldTraceError(f"{item.id}: gold call {n} names {call.tool!r}, not one of the item's tools")
        try:
            args = {name: resolve(value, results.__getitem__) for name, value in call.args.items()}
        except (KeyError, ResolveError) as exc:
            raise GoldTraceError(
                f"{item.id}: gold call {n} ({call.tool}): cannot resolve its references: {exc}"
            ) from exc
        with recording_latency() as delays:
            try:
                result = await tool.ainvoke(args)
            except Exception as exc:  # a failing gold call is the suite's bug: say which
                raise GoldTraceError(f"{item.id}: gold call {n} ({call.tool}) failed: {exc!r}") from exc
        results[n] = result
        latencies[n] = sum(delays)
        observations[n] = observation(result)
    return GoldTrace(latencies=latencies, observations=observations)


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class IdealBound:
    """The ideal bound of one question under one profile (see the module's docstring).

    Attributes:
        plan_s: the model call that writes the first dependency level's calls.
        tools_s: the longest dependency chain of the gold latencies.
        answer_s: the answering call.
        stream_margin_s: the most a system that starts each first-level call at its last token
            can come in below ``total_s`` (the module's caveat): at most the decode time of the
            first level's calls other than the longest chain's first.
        plan_tokens: the first level's calls, in completion tokens.
        answer_prompt_tokens: the answering call's prompt (question and observations).
        answer_tokens: the answer.
    """

    plan_s: float
    tools_s: float
    answer_s: float
    stream_margin_s: float = 0.0
    plan_tokens: int = 0
    answer_prompt_tokens: int = 0
    answer_tokens: int = 0

    @property
    def total_s(self) -> float:
        """``plan_s + tools_s + answer_s``."""
        return self.plan_s + self.tools_s + self.answer_s


def answer_prompt(question: str, observations: Mapping[int, str]) -> str:
    """The answering call's prompt in the ideal: the question, then each observation on its own
    line, in gold order."""
    return "\n".join([question, *(observations[n] for n in sorted(observations))])


def longest_chain_s(item: Item, latencies: Mapping[int, float]) -> float:
    """When the last gold call ends if each starts as soon as the calls it needs have ended."""
    ends: dict[int, float] = {}
    for n, call in enumerate(item.gold, 1):
        ends[n] = max((ends[d] for d in call.deps()), default=0.0) + latencies[n]
    return max(ends.values(), default=0.0)


def _tails(item: Item, latencies: Mapping[int, float]) -> dict[int, float]:
    """Each gold call's longest chain from its start to the end of the last call that needs it."""
    needed_by: dict[int, list[int]] = {n: [] for n in range(1, len(item.gold) + 1)}
    for n, call in enumerate(item.gold, 1):
        for d in call.deps():
            needed_by[d].append(n)
    tails: dict[int, float] = {}
    for n in range(len(item.gold), 0, -1):  # dependencies come first: later calls are done
        tails[n] = latencies[n] + max((tails[m] for m in needed_by[n]), default=0.0)
    return tails


def _streamed_s(profile: Profile, prompt: int, written: Sequence[int], tails: Sequence[float]) -> float:
    """When the tools end if each first-level call starts the moment its last token is written,
    the calls written in the best order: longest tail first (Jackson's rule, optimal for one
    machine with delivery times)."""
    end, tokens = 0.0, 0
    for size, tail in sorted(zip(written, tails, strict=True), key=lambda pair: -pair[1]):
        tokens += size
        end = max(end, profile.token_s(prompt, tokens) + tail)
    return end


def ideal_bound(item: Item, trace: GoldTrace, profile: Profile) -> IdealBound:
    """The ideal bound of ``item`` under ``profile``, from its gold trace (see the module's docstring).

    Raises:
        ValueError: the gold calls' references are not in order (``levels``).
    """
    counter = profile.counter()
    first = levels(item.gold)[0] if item.gold else []
    # The first level needs nothing: its arguments are literals, written as they stand.
    written = [
        call_tokens(counter, ToolCall(name=item.gold[n - 1].tool, args=dict(item.gold[n - 1].args))) for n in first
    ]
    question = counter.count(item.question)
    plan_tokens = sum(written)
    prompt = counter.count(answer_prompt(item.question, trace.observations))
    answer = counter.count(item.answer(trace.observations))
    tools_s = longest_chain_s(item, trace.latencies)
    plan_s = profile.reply_s(question, plan_tokens)
    tails = _tails(item, trace.latencies)
    streamed = _streamed_s(profile, question, written, [tails[n] for n in first])
    margin = max(0.0, plan_s + tools_s - streamed) if written else 0.0
    return IdealBound(
        plan_s=plan_s,
        tools_s=tools_s,
        answer_s=profile.reply_s(prompt, answer),
        stream_margin_s=margin,
        plan_tokens=plan_tokens,
        answer_prompt_tokens=prompt,
        answer_tokens=answer,
    )
