"""What every suite gives the runner: items (a question, its tools, its gold calls, its check)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import math
import random
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from benchmarks.oracle import GoldCall
from llmcompiler import RunResult, Tool

__all__ = ["Item", "LatencyModel", "numbers_in", "sleeping"]

AnswerFn = Callable[[Mapping[int, str]], str]
CheckFn = Callable[[str, RunResult], bool]


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
    """

    id: str
    question: str
    tools: Sequence[Tool]
    gold: Sequence[GoldCall]
    answer: AnswerFn
    check: CheckFn
    kind: str
    expected: Any = None


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


async def sleeping(seconds: float) -> None:
    """Wait like a remote API call does (a stand-in for network time)."""
    await asyncio.sleep(seconds)


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
