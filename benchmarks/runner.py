"""Runs the three systems over a suite's items and turns the runs into metrics.

Systems:

- ``llmcompiler``: ``llmcompiler.LLMCompiler`` (streamed plan, parallel execution, joiner).
- ``react``: ``planners.ReActAgent`` (one tool call per model turn).
- ``parallel_fc``: ``planners.ParallelToolCallAgent`` (native parallel tool calls per turn).
- ``llmcompiler_speculative`` (only with a drafter, ``run_items(drafter_for=...)``): ``llmcompiler``
  with a ``drafter`` whose draft plans start speculation-safe calls early (``benchmarks.drafts``
  gives the recorded and the perfect drafter). Its runs also keep what speculation did
  (``Outcome.speculation``).

Metrics per system: latency (mean, p50, p95 of the runs that finished), speedup against ReAct
and against native parallel calling (the other system's mean latency over this system's, on the
items both finished), the ratio to the ideal bound (``ideal_ratio``: mean latency over the mean
ideal bound, on the same finished items), tokens and cost per question (mean over finished runs),
accuracy (right answers over all items: a failed run is a wrong answer), plan accuracy (runs that
made the right tool calls over all items) and failures (runs that raised).

The ideal bound of an item (``benchmarks.ideal``, oracle mode only) is defined by no system:
one model call writing the first dependency level's gold calls, the longest dependency chain of
the gold tool latencies, and one answering call, on the run's streaming profile. Each item's
gold calls are traced once (their latencies recorded, not waited) before the runs. It is not a
strict lower bound: a streaming system may come in below it by at most the decode time of the
first level's other calls (``IdealBound.stream_margin_s``); see ``benchmarks.ideal``.

Accuracy and plan accuracy are apart: ``accuracy`` is the answer's (the item's ``check``: a
number within 1% for ``parallelqa``, the last node's value for ``dag``; for ``bfcl``, which
scores calls and not text, BFCL's call matching on a run that finished), ``plan_accuracy`` the
calls' (the item's ``plan_check``, on every round's ``TaskRecord``s with their resolved
arguments). For ``parallelqa`` and ``dag`` the plan is right when every gold call is among the
successful calls (same tool, same arguments: numbers within a relative 1e-6, strings ignoring
case and white space, the gold's references resolved to the matched calls' results) and every
other successful call repeats one of them; failed and skipped calls are left out (they
produced nothing), a call of anything else makes the plan wrong (``suites._common.
gold_plan_matches``; ``parallelqa`` also reads ``math`` expressions by their numbers and value,
and ``distance_km``'s cities in either order). For ``bfcl`` it is BFCL's rules over every call
made, failed ones too. It is scored for every system (ReAct's and native calling's calls are
records too), and for failed runs from the records their error carries: a run whose calls were
right and whose joiner then failed has a right plan and a wrong answer. In oracle mode it must
be 1.0, like accuracy.

A suite may score runs by its own metrics as well (``Item.scores``, from the run's tasks, failed
runs by the calls they made): ``scores`` holds each one's mean over the system's runs
(``nestful``: function-name F1, full-sequence accuracy and win rate).

Executor slack (LLMCompiler only): ``executor_bound`` rebuilds, from an LLMCompiler run's own
timeline, when it could have ended had its executor lost no time: per round, each task can finish
no earlier than ``max(its plan line arrived, its dependencies' bounds) + its measured duration``;
the round takes at least until the last such bound (or the plan's end), and the joiner's measured
time is added. ``executor_slack`` is the mean of latency over that bound. The bound is made of
the run's own plan arrivals, plan end and joiner times, so it measures executor slack only (the
time lost between a task being ready and it running), by construction; it says nothing about how
fast the question can be answered. That is what the ideal bound is for.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import statistics
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from benchmarks.ideal import GoldTrace, GoldTraceError, IdealBound, ideal_bound, trace_gold
from benchmarks.oracle import OracleLLM, Profile, PromptCache, levels
from benchmarks.suites import Item
from llmcompiler import LLMCompiler, RoundStarted, RunEvent, RunResult, TaskParsed, TaskRecord, Usage
from llmcompiler.models import ChatModel

__all__ = [
    "SPECULATIVE",
    "SYSTEMS",
    "Outcome",
    "call_labels",
    "executor_bound",
    "ideal_bounds",
    "make_agent",
    "percentile",
    "plan_correct",
    "run_grid",
    "run_items",
    "suite_scores",
    "summarize",
    "timeline",
]

SYSTEMS = ("llmcompiler", "react", "parallel_fc")
SPECULATIVE = "llmcompiler_speculative"
"""LLMCompiler with a drafter: a system only when the run has one."""


class _Agent(Protocol):
    async def arun(self, question: str) -> RunResult: ...


@dataclasses.dataclass(kw_only=True, slots=True)
class Outcome:
    """One system's run of one item."""

    system: str
    item: str
    kind: str
    finished: bool
    correct: bool
    latency_s: float | None = None
    elapsed_s: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    cost_cached_usd: float | None = None
    cached_tokens: int = 0
    model_calls: int = 0
    tool_calls: int = 0
    executor_bound_s: float | None = None
    ideal_bound_s: float | None = None
    error: str | None = None
    answer: str | None = None
    timeline: dict[str, Any] | None = None
    plan_correct: bool | None = None
    calls: list[str] = dataclasses.field(default_factory=list)
    scores: dict[str, float] = dataclasses.field(default_factory=dict)
    speculation: dict[str, Any] | None = None


def make_agent(system: str, llm: ChatModel, item: Item, drafter: ChatModel | None = None) -> _Agent:
    """The agent of ``system`` for ``item``, with turn limits that leave room beyond the gold calls.

    ``llmcompiler_speculative`` needs ``drafter``.
    """
    if system == "llmcompiler":
        return LLMCompiler(llm=llm, tools=item.tools)
    if system == SPECULATIVE:
        if drafter is None:
            raise ValueError(f"{SPECULATIVE} needs a drafter")
        return LLMCompiler(llm=llm, tools=item.tools, drafter=drafter)
    if system == "react":
        from planners import ReActAgent

        react: _Agent = ReActAgent(llm=llm, tools=item.tools, max_steps=max(10, len(item.gold) + 3))
        return react
    if system == "parallel_fc":
        from planners import ParallelToolCallAgent

        native: _Agent = ParallelToolCallAgent(llm=llm, tools=item.tools, max_turns=max(10, len(levels(item.gold)) + 3))
        return native
    raise ValueError(f"unknown system {system!r}: choose from {', '.join((*SYSTEMS, SPECULATIVE))}")


def executor_bound(result: RunResult, arrivals: Mapping[tuple[int, int], float]) -> float:
    """When an LLMCompiler run could have ended had its executor lost no time (see the module's
    docstring): built from the run's own timeline, it measures executor slack only.

    Args:
        result: the run.
        arrivals: when each task's plan line was parsed, by (round, task number).
    """
    total = 0.0
    for round_no, rt in enumerate(result.round_timings, 1):
        bound: dict[int, float] = {}
        for task in sorted((t for t in result.tasks if t.round == round_no and t.tool != "join"), key=lambda t: t.idx):
            ready = max((bound[d] for d in task.deps if d in bound), default=rt.plan_start)
            arrived = arrivals.get((round_no, task.idx), rt.plan_end)
            bound[task.idx] = max(ready, arrived) + (task.duration or 0.0)
        round_end = max([rt.plan_end, *bound.values()])
        total += (round_end - rt.plan_start) + (rt.join_end - rt.join_start)
    return total


def timeline(result: RunResult) -> dict[str, Any]:
    """A run's model calls and tool calls as intervals, seconds from the run's start.

    Each tool call also carries its task number (``idx``), the numbers of the tasks it depends on
    (``deps``, sorted) and its ``round``, for the dependency arrows of the pictures.
    """
    t0 = result.start
    model: list[dict[str, Any]] = []
    for k, rt in enumerate(result.round_timings, 1):
        model.append({"label": f"model {k}", "start": rt.plan_start - t0, "end": rt.plan_end - t0})
        if rt.join_end > rt.join_start:
            model.append({"label": f"join {k}", "start": rt.join_start - t0, "end": rt.join_end - t0})
    tools = [
        {
            "label": f"{t.idx}. {t.tool}",
            "start": t.start - t0,
            "end": t.end - t0,
            "idx": t.idx,
            "deps": sorted(t.deps),
            "round": t.round,
        }
        for t in result.tasks
        if t.tool != "join" and t.start is not None and t.end is not None
    ]
    return {"total_s": result.total_s, "model": model, "tools": tools}


def plan_correct(item: Item, tasks: Sequence[TaskRecord]) -> bool | None:
    """Whether ``tasks`` made the right calls for ``item`` (``None``: the suite has no plan rule)."""
    if item.plan_check is None:
        return None
    try:
        return bool(item.plan_check(tasks))
    except (ValueError, TypeError, KeyError, ArithmeticError):
        return False


def suite_scores(item: Item, tasks: Sequence[TaskRecord]) -> dict[str, float]:
    """The item's own metrics of a run (``Item.scores``; empty when the suite has none)."""
    if item.scores is None:
        return {}
    return dict(item.scores(tasks))


def call_labels(tasks: Sequence[TaskRecord], limit: int = 160) -> list[str]:
    """The calls a run made, for the results file: ``population(country='France')``, a failed or
    skipped one marked ``FAILED ...`` (each cut at ``limit`` characters)."""
    out: list[str] = []
    for t in tasks:
        if t.tool == "join":
            continue
        args = ", ".join(f"{k}={v!r}" for k, v in t.args.items())
        text = ("" if t.ok else "FAILED ") + f"{t.tool}({args})"
        out.append(text if len(text) <= limit else text[: limit - 3] + "...")
    return out


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 300 else text[:297] + "..."


def speculation_of(result: RunResult) -> dict[str, Any] | None:
    """What speculation did in a run, for its ``Outcome`` (``None`` without a drafter)."""
    spec = result.speculation
    if spec is None:
        return None
    return {
        "drafter": spec.drafter,
        "drafted": spec.drafted,
        "started": spec.started,
        "hits": spec.hits,
        "misses": spec.misses,
        "cancelled": spec.cancelled,
        "time_saved_s": spec.time_saved_s,
        "drafter_prompt_tokens": spec.usage.prompt_tokens,
        "drafter_completion_tokens": spec.usage.completion_tokens,
        "errors": list(spec.errors),
        "calls": [
            {"tool": c.tool, "draft": c.draft, "state": c.state, "adopted_by": c.adopted_by, "round": c.round}
            for c in spec.calls
        ],
    }


async def run_one(
    system: str,
    item: Item,
    llm: ChatModel,
    *,
    cost: Callable[[Usage, RunResult], float | None],
    drafter: ChatModel | None = None,
) -> Outcome:
    """Run ``system`` on ``item`` once and score it (``drafter``: for ``llmcompiler_speculative``)."""
    agent = make_agent(system, llm, item, drafter)
    loop = asyncio.get_running_loop()
    arrivals: dict[tuple[int, int], float] = {}
    round_no = 0

    def on_event(event: RunEvent) -> None:
        nonlocal round_no
        if isinstance(event, RoundStarted):
            round_no += 1
        elif isinstance(event, TaskParsed):
            arrivals[(max(round_no, 1), event.idx)] = loop.time()

    began = loop.time()
    try:
        if isinstance(agent, LLMCompiler):
            result = await agent.arun(item.question, on_event=on_event)
        else:
            result = await agent.arun(item.question)
    except Exception as exc:  # a failed run is a result: the agent gave up, or its model failed
        tasks = list(getattr(exc, "tasks", None) or [])
        return Outcome(
            system=system,
            item=item.id,
            kind=item.kind,
            finished=False,
            correct=False,
            error=_short(exc),
            elapsed_s=loop.time() - began,
            tool_calls=sum(1 for t in tasks if t.tool != "join"),
            plan_correct=plan_correct(item, tasks),
            calls=call_labels(tasks),
            scores=suite_scores(item, tasks),
        )
    try:
        correct = bool(item.check(result.answer, result))
    except (ValueError, TypeError, KeyError) as exc:
        correct = False
        error: str | None = f"check failed: {_short(exc)}"
    else:
        error = None
    return Outcome(
        system=system,
        item=item.id,
        kind=item.kind,
        finished=True,
        correct=correct,
        latency_s=result.total_s,
        elapsed_s=result.total_s,
        prompt_tokens=result.usage.prompt_tokens,
        completion_tokens=result.usage.completion_tokens,
        cost_usd=cost(dataclasses.replace(result.usage, cached_tokens=0, cache_write_tokens=0), result),
        cost_cached_usd=cost(result.usage, result),
        cached_tokens=result.usage.cached_tokens,
        model_calls=result.usage.calls,
        tool_calls=sum(1 for t in result.tasks if t.tool != "join"),
        executor_bound_s=executor_bound(result, arrivals) if system == "llmcompiler" else None,
        error=error,
        answer=result.answer[:200],
        timeline=timeline(result),
        plan_correct=plan_correct(item, result.tasks),
        calls=call_labels(result.tasks),
        scores=suite_scores(item, result.tasks),
        speculation=speculation_of(result),
    )


LLMFactory = Callable[[Item], ChatModel]
ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


def oracle_factory(profile: Profile, cache: PromptCache | None = None) -> LLMFactory:
    """A new oracle model per run, replaying the item's gold calls on ``profile``; with ``cache``
    (one for the suite's runs), each call's usage says what a prompt cache would serve."""
    return lambda item: OracleLLM(item.gold, item.answer, profile, cache=cache)


async def ideal_bounds(
    items: Sequence[Item], profile: Profile, *, traces: dict[str, GoldTrace] | None = None
) -> tuple[dict[str, IdealBound], dict[str, str]]:
    """The ideal bound of each item under ``profile`` (``benchmarks.ideal``), and the items whose
    gold calls could not be traced, each with why.

    Each item's gold calls are traced once: ``traces`` (by item id), when given, keeps the traces
    for the next call (another profile needs no new trace). Tracing waits for nothing.
    """
    cache: dict[str, GoldTrace] = {} if traces is None else traces
    bounds: dict[str, IdealBound] = {}
    errors: dict[str, str] = {}
    for item in items:
        if item.id not in cache:
            try:
                cache[item.id] = await trace_gold(item)
            except GoldTraceError as exc:
                errors[item.id] = str(exc)
                continue
        bounds[item.id] = ideal_bound(item, cache[item.id], profile)
    return bounds, errors


async def run_items(
    items: Sequence[Item],
    systems: Sequence[str],
    llm_for: LLMFactory,
    *,
    concurrency: int = 1,
    cost: Callable[[Usage, RunResult], float | None],
    on_done: Callable[[Outcome], None] | None = None,
    ideal: Mapping[str, IdealBound] | None = None,
    drafter_for: LLMFactory | None = None,
) -> list[Outcome]:
    """Run every system on every item, ``concurrency`` runs at a time, systems interleaved.

    ``ideal`` (by item id, from ``ideal_bounds``) gives each run its item's ``ideal_bound_s``;
    ``drafter_for`` a new drafter per ``llmcompiler_speculative`` run.
    """
    bounds = ideal or {}

    async def one(system: str, item: Item) -> Outcome:
        drafter = drafter_for(item) if drafter_for is not None and system == SPECULATIVE else None
        outcome = await run_one(system, item, llm_for(item), cost=cost, drafter=drafter)
        if item.id in bounds:
            outcome.ideal_bound_s = bounds[item.id].total_s
        return outcome

    return await run_grid(items, systems, one, concurrency=concurrency, on_done=on_done)


async def run_grid(
    items: Sequence[ItemT],
    systems: Sequence[str],
    run: Callable[[str, ItemT], Awaitable[ResultT]],
    *,
    concurrency: int = 1,
    on_done: Callable[[ResultT], None] | None = None,
) -> list[ResultT]:
    """``run(system, item)`` for every item and system, ``concurrency`` at a time, systems
    interleaved; ``on_done`` with each result as it comes; the results in (item, system) order."""
    gate = asyncio.Semaphore(concurrency)
    pairs = [(item, system) for item in items for system in systems]
    results: list[ResultT | None] = [None] * len(pairs)

    async def one(k: int) -> None:
        item, system = pairs[k]
        async with gate:
            result = await run(system, item)
        results[k] = result
        if on_done is not None:
            on_done(result)

    async with asyncio.TaskGroup() as group:
        for k in range(len(pairs)):
            group.create_task(one(k))
    return [r for r in results if r is not None]


# --------------------------------------------------------------------------- metrics


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[rank - 1]


def _mean(values: Iterable[float]) -> float | None:
    listed = list(values)
    return statistics.fmean(listed) if listed else None


def _mean_known(values: Sequence[float | None]) -> float | None:
    """The mean, or ``None`` when a value is unknown (or there are none)."""
    known = [v for v in values if v is not None]
    return _mean(known) if known and len(known) == len(values) else None


def _paired_speedup(baseline: Mapping[str, float], done: Sequence[Outcome]) -> float | None:
    """The baseline's total latency over this system's, on the items both finished."""
    paired = [(baseline[o.item], o.latency_s) for o in done if o.item in baseline and o.latency_s is not None]
    return (sum(b for b, _ in paired) / sum(s for _, s in paired)) if paired else None


def summarize(outcomes: Sequence[Outcome], systems: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The metrics of each system (``None`` where a metric has no data).

    ``ideal_ratio`` is the system's mean latency over the mean ideal bound of the same finished
    items (a ratio of means, like the speedups); ``executor_slack`` is LLMCompiler's alone (its
    own timeline's bound, see the module's docstring), ``None`` for the other systems.
    """

    def latencies_of(system: str) -> dict[str, float]:
        return {o.item: o.latency_s for o in outcomes if o.system == system and o.finished and o.latency_s is not None}

    react, native = latencies_of("react"), latencies_of("parallel_fc")
    out: dict[str, dict[str, Any]] = {}
    for system in systems:
        runs = [o for o in outcomes if o.system == system]
        done = [o for o in runs if o.finished and o.latency_s is not None]
        latencies = [o.latency_s for o in done if o.latency_s is not None]
        with_ideal = [(o.latency_s, o.ideal_bound_s) for o in done if o.latency_s is not None and o.ideal_bound_s]
        slack = [(o.latency_s, o.executor_bound_s) for o in done if o.latency_s is not None and o.executor_bound_s]
        costs = [o.cost_usd for o in done]
        known_costs = [c for c in costs if c is not None]
        out[system] = {
            "latency_mean_s": _mean(latencies),
            "latency_p50_s": percentile(latencies, 50) if latencies else None,
            "latency_p95_s": percentile(latencies, 95) if latencies else None,
            "speedup_vs_react": _paired_speedup(react, done),
            "speedup_vs_parallel_fc": _paired_speedup(native, done),
            "ideal_bound_mean_s": _mean(b for _, b in with_ideal),
            "ideal_ratio": (sum(x for x, _ in with_ideal) / sum(b for _, b in with_ideal)) if with_ideal else None,
            "executor_slack": _mean(x / b for x, b in slack),
            "prompt_tokens": _mean(o.prompt_tokens for o in done),
            "completion_tokens": _mean(o.completion_tokens for o in done),
            "cost_usd": _mean(known_costs) if known_costs and len(known_costs) == len(costs) else None,
            "cost_cached_usd": _mean_known([o.cost_cached_usd for o in done]),
            "cached_share": (
                sum(o.cached_tokens for o in done) / total_prompt
                if (total_prompt := sum(o.prompt_tokens for o in done))
                else None
            ),
            "accuracy": (sum(o.correct for o in runs) / len(runs)) if runs else None,
            "plan_accuracy": (
                sum(bool(o.plan_correct) for o in runs) / len(runs)
                if runs and all(o.plan_correct is not None for o in runs)
                else None
            ),
            "failures": sum(not o.finished for o in runs),
            # extras
            "runs": len(runs),
            "model_calls": _mean(o.model_calls for o in done),
            "tool_calls": _mean(o.tool_calls for o in done),
            "executor_bound_mean_s": _mean(b for _, b in slack),
        }
        # The suite's own metrics, over every run (a failed run is scored by the calls it made).
        names = list(dict.fromkeys(name for o in runs for name in o.scores))
        if names:
            out[system]["scores"] = {name: _mean(o.scores[name] for o in runs if name in o.scores) for name in names}
    return out
