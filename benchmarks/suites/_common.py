"""What every suite gives the runner: items (a question, its tools, its gold calls, its checks).

Each item has two checks: ``check`` scores the answer, ``plan_check`` the tool calls the run
made (its ``TaskRecord``s, arguments resolved). ``gold_plan_matches`` is the plan rule of the
suites that have no rule of their own (``parallelqa``, ``dag``): see its docstring.

Every suite's tools wait through ``sleeping``, the stand-in for network time. Inside
``recording_latency()`` it records the delay instead of waiting, so the gold calls can be run
for their results and latencies without waiting (``benchmarks.ideal.trace_gold``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import hashlib
import json
import math
import random
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from benchmarks.oracle import GoldCall
from llmcompiler import RunResult, TaskRecord, Tool
from llmcompiler._literals import ResolveError, resolve

__all__ = [
    "ARG_TOLERANCE",
    "Item",
    "LatencyModel",
    "PlanCheckFn",
    "ScoresFn",
    "gold_plan_matches",
    "match_gold",
    "numbers_in",
    "recording_latency",
    "same_args",
    "same_value",
    "sleeping",
]

AnswerFn = Callable[[Mapping[int, str]], str]
CheckFn = Callable[[str, RunResult], bool]
PlanCheckFn = Callable[[Sequence[TaskRecord]], bool]
"""Whether a run's tasks (every round's, ``join`` included, failed ones too) made the right calls."""
ScoresFn = Callable[[Sequence[TaskRecord]], dict[str, float]]
"""A suite's own per-run metrics from a run's tasks (e.g. NESTFUL's F1 of the called tools' names)."""
FitsFn = Callable[[str, Mapping[str, Any], Mapping[str, Any]], bool]
"""Whether a call of ``tool`` with the first arguments counts as the call with the second."""

ARG_TOLERANCE = 1e-6
"""Relative tolerance of numbers in arguments (a number spliced into text and read back)."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Item:
    """One benchmark question.

    Attributes:
        id: a stable name.
        question: what the agents are asked.
        tools: the tools they may call.
        gold: the gold calls, dependencies first (the oracle replays them).
        answer: the oracle's final answer, from the observations of the gold calls by number.
        check: whether a run answered correctly (given its answer and its ``RunResult``).
        kind: the question's category (template, BFCL subset, DAG shape).
        expected: the ground truth, for reports.
        plan_check: whether a run's tasks made the right calls (the suite's plan rule);
            ``None`` when the suite has none.
        scores: the suite's own metrics of a run, from its tasks (averaged per system); ``None``: none.
        oracle_misses: systems that cannot get this item right even with a perfect model, each
            with why (oracle mode expects them to miss it, and reports it).
    """

    id: str
    question: str
    tools: Sequence[Tool]
    gold: Sequence[GoldCall]
    answer: AnswerFn
    check: CheckFn
    kind: str
    expected: Any = None
    plan_check: PlanCheckFn | None = None
    scores: ScoresFn | None = None
    oracle_misses: Mapping[str, str] = dataclasses.field(default_factory=dict)


class LatencyModel:
    """Seeded, log-normal tool latency: the same call gets the same delay in every system.

    A call's delay is drawn from a log-normal distribution (median ``median_s``, shape
    ``sigma``) by a generator seeded with the suite seed, the item, the tool and the arguments,
    then clipped to ``[min_s, max_s]``.
    """

    def __init__(
        self, *, seed: int, median_s: float = 0.3, sigma: float = 0.35, min_s: float = 0.05, max_s: float = 3.0
    ) -> None:
        self.seed = seed
        self.median_s = median_s
        self.sigma = sigma
        self.min_s = min_s
        self.max_s = max_s

    def delay(self, *key: Any) -> float:
        """The delay of the call named by ``key`` (item, tool, arguments)."""
        text = json.dumps([self.seed, *key], sort_keys=True, default=str, ensure_ascii=False)
        digest = hashlib.sha256(text.encode()).digest()
        rng = random.Random(int.from_bytes(digest[:8], "big"))
        value = math.exp(math.log(self.median_s) + self.sigma * rng.gauss(0.0, 1.0))
        return min(self.max_s, max(self.min_s, value))

    def describe(self) -> dict[str, Any]:
        """The model's parameters, for the results file."""
        return {
            "distribution": "log-normal",
            "median_s": self.median_s,
            "sigma": self.sigma,
            "clip_s": [self.min_s, self.max_s],
            "seed": self.seed,
        }


_RECORDED: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar("benchmark_delays", default=None)


async def sleeping(seconds: float) -> None:
    """Wait like a remote API call does (a stand-in for network time).

    Inside ``recording_latency()`` the delay is recorded instead, and nothing waits.
    """
    recorded = _RECORDED.get()
    if recorded is not None:
        recorded.append(seconds)
        return
    await asyncio.sleep(seconds)


@contextlib.contextmanager
def recording_latency() -> Iterator[list[float]]:
    """Record the delays of ``sleeping`` instead of waiting them, in this context.

    Yields the list the delays are appended to, in order. It is a context variable: the
    calls awaited in this task (and tasks it starts) record; other tasks on the loop still
    wait. Contexts nest (the inner one records until it exits).

    Example:
        >>> with recording_latency() as delays:
        ...     asyncio.run(sleeping(3600.0))
        >>> delays
        [3600.0]
    """
    delays: list[float] = []
    token = _RECORDED.set(delays)
    try:
        yield delays
    finally:
        _RECORDED.reset(token)


_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?")


def numbers_in(text: str) -> list[float]:
    """Every number written in ``text`` (thousands separators allowed)."""
    out: list[float] = []
    for match in _NUMBER.finditer(text):
        try:
            out.append(float(match.group().replace(",", "")))
        except ValueError:  # pragma: no cover - the pattern only matches numbers
            continue
    return out


# --------------------------------------------------------------------------- plan accuracy


def _squeeze(text: str) -> str:
    return " ".join(text.split()).casefold()


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip().replace(",", ""))
        except ValueError:
            return None
    return None


def same_value(a: Any, b: Any, rel_tol: float = ARG_TOLERANCE) -> bool:
    """Equal as plan accuracy compares arguments.

    Numbers within ``rel_tol`` (relative; a string that is a number counts as that number when
    compared with a number), strings ignoring case and runs of white space, booleans only to
    booleans, lists and tuples item by item, dicts key by key.
    """
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, str) and isinstance(b, str):
        return _squeeze(a) == _squeeze(b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y, rel_tol) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same_value(a[k], b[k], rel_tol) for k in a)
    x, y = _number(a), _number(b)
    if x is not None and y is not None:
        return math.isclose(x, y, rel_tol=rel_tol, abs_tol=1e-9)
    return bool(a == b)


def same_args(_tool: str, given: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """The same parameters, each with the same value (``same_value``)."""
    return same_value(dict(given), dict(wanted))


def gold_plan_matches(gold: Sequence[GoldCall], tasks: Sequence[TaskRecord], fits: FitsFn = same_args) -> bool:
    """Whether ``tasks`` made the gold calls: the plan rule of ``parallelqa`` and ``dag``.

    The rule, over every round's tasks (``join`` left out):

    1. Failed and skipped tasks are left out: a call that produced nothing neither helps nor,
       by itself, makes the plan wrong (a lookup that failed and was replanned right is fine).
    2. Every gold call is matched by its own successful task: same tool, arguments that ``fits``
       (by default ``same_value`` on each: numbers within ``ARG_TOLERANCE``, strings ignoring case
       and white space). Gold calls are matched in order, dependencies first, each taking the
       first unmatched task that fits; the gold's references (``$N``, also spliced into strings)
       are resolved to the results of the tasks matched to those gold calls, as the executor
       resolves them, so a task's arguments are compared as it received them, however it got
       them (a reference or a literal).
    3. Every other successful task repeats a matched one (same tool, arguments that fit): a
       duplicate is harmless, but a call the question does not need (another country, another
       tool) makes the plan wrong.

    So: the same multiset of (tool, arguments) as the gold, up to repeats and failed calls.
    """
    done = [t for t in tasks if t.tool != "join" and t.ok]
    match = match_gold(gold, done, fits)
    if match is None:
        return False
    matched = list(match.values())
    used = {id(t) for t in matched}
    return all(
        any(t.tool == m.tool and fits(t.tool, t.args, m.args) for m in matched) for t in done if id(t) not in used
    )


def match_gold(gold: Sequence[GoldCall], tasks: Sequence[TaskRecord], fits: FitsFn) -> dict[int, TaskRecord] | None:
    """Each gold call (by number) matched to its own task of ``tasks``, or ``None`` when one has none.

    Gold calls are matched in order, dependencies first, each taking the first unmatched task of
    the same tool whose arguments ``fits`` the gold's; the gold's references are resolved to the
    results of the tasks matched to the calls they name.
    """
    used: set[int] = set()
    results: dict[int, Any] = {}
    match: dict[int, TaskRecord] = {}
    for n, call in enumerate(gold, 1):
        try:
            wanted = {name: resolve(value, results.__getitem__) for name, value in call.args.items()}
        except (KeyError, ResolveError):
            return None
        for k, task in enumerate(tasks):
            if k not in used and task.tool == call.tool and fits(task.tool, task.args, wanted):
                used.add(k)
                match[n] = task
                results[n] = task.result
                break
        else:
            return None
    return match
