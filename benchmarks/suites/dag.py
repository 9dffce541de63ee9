"""Synthetic plans of varied width, depth and fan-in, to measure against the critical-path bound.

Each item is a seeded random dependency graph: ``depth`` layers of up to ``width`` nodes; a node
of a later layer takes its inputs from ``fan_in`` earlier nodes (at least one from the layer just
before); one last node combines every node nothing else uses. Evaluating a node is a call
``step(node=k, inputs=[...])`` that waits a seeded log-normal time (median 300 ms, wide spread)
and returns ``(37 * k + sum(inputs)) % 1000``. The answer is the last node's value.

Answer check: the last number in the answer is the last node's value. Plan check:
``gold_plan_matches`` (every node's ``step`` call with its inputs' values, in order, among the
successful calls; nothing else but repeats).

``step`` is marked ``speculative=True`` (an ``LLMCompiler`` with a ``drafter`` may call it from a
draft plan): it computes and changes nothing, an assumption of the benchmark that holds here.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence

from benchmarks.oracle import GoldCall
from benchmarks.suites._common import Item, LatencyModel, gold_plan_matches, numbers_in, sleeping
from llmcompiler import Ref, RunResult, TaskRecord, Tool, tool

__all__ = ["SHAPES", "load_items", "make_graph", "step_value"]

WIDTHS = (1, 2, 4, 6)
DEPTHS = (1, 2, 3, 5)
FAN_INS = (1, 2, 3)
SHAPES: tuple[tuple[int, int, int], ...] = tuple(itertools.product(WIDTHS, DEPTHS, FAN_INS))
"""(width, depth, fan-in) of the items, one item each."""


def step_value(node: int, inputs: Sequence[int]) -> int:
    """What ``step`` returns."""
    return (37 * node + sum(inputs)) % 1000


def make_graph(width: int, depth: int, fan_in: int, rng: random.Random) -> list[list[int]]:
    """The inputs of each node (nodes numbered from 1, inputs before the node)."""
    inputs: list[list[int]] = []
    previous: list[int] = []
    earlier: list[int] = []
    for layer in range(depth):
        size = width if layer == 0 else rng.randint(1, width)
        current: list[int] = []
        for _ in range(size):
            node = len(inputs) + 1
            if layer == 0:
                deps: list[int] = []
            else:
                first = rng.choice(previous)
                pool = [n for n in earlier + previous if n != first]
                deps = sorted([first, *rng.sample(pool, min(fan_in - 1, len(pool)))])
            inputs.append(deps)
            current.append(node)
        earlier += previous
        previous = current
    used = {d for deps in inputs for d in deps}
    sinks = [n for n in range(1, len(inputs) + 1) if n not in used]
    if len(sinks) > 1:
        inputs.append(sinks)
    return inputs


def _make_tool(item_id: str, latency: LatencyModel) -> Tool:
    @tool(speculative=True)
    async def step(node: int, inputs: list[int]) -> int:
        """Evaluate one node of the graph from the values of its input nodes.

        Args:
            node: the node's number.
            inputs: the values of its input nodes, in the order the question lists them.
        """
        await sleeping(latency.delay(item_id, node))
        return step_value(node, inputs)

    return step


def _question(graph: Sequence[Sequence[int]]) -> str:
    lines = [
        "Evaluate this dependency graph with the step tool: each node k is step(node=k, inputs=[the values of "
        "its input nodes, in the order listed]). Nodes:"
    ]
    for k, deps in enumerate(graph, 1):
        lines.append(f"- node {k}: " + ("no inputs" if not deps else "inputs " + ", ".join(f"node {d}" for d in deps)))
    lines.append(f"What is the value of node {len(graph)}?")
    return "\n".join(lines)


def _answer(observations: Mapping[int, str]) -> str:
    return f"The value is {observations[max(observations)]}."


def load_items(*, seed: int = 0) -> list[Item]:
    """One item per shape of ``SHAPES`` (48), small, medium and large graphs in turn."""
    rng = random.Random(seed)
    latency = LatencyModel(seed=seed, median_s=0.3, sigma=0.6)
    items: list[Item] = []
    for width, depth, fan_in in SHAPES:
        item_id = f"dag-w{width}-d{depth}-f{fan_in}"
        graph = make_graph(width, depth, fan_in, rng)
        values: list[int] = []
        for k, deps in enumerate(graph, 1):
            values.append(step_value(k, [values[d - 1] for d in deps]))
        gold = [
            GoldCall(tool="step", args={"node": k, "inputs": [Ref(d) for d in deps]}) for k, deps in enumerate(graph, 1)
        ]
        truth = values[-1]

        def check(answer: str, _result: RunResult, truth: int = truth) -> bool:
            found = numbers_in(answer)
            return bool(found) and found[-1] == truth

        def plan_check(tasks: Sequence[TaskRecord], gold: Sequence[GoldCall] = gold) -> bool:
            return gold_plan_matches(gold, tasks)

        items.append(
            Item(
                id=item_id,
                question=_question(graph),
                tools=[_make_tool(item_id, latency)],
                gold=gold,
                answer=_answer,
                check=check,
                kind=f"w{width}-d{depth}-f{fan_in}",
                expected=truth,
                plan_check=plan_check,
            )
        )
    # Round-robin over the size quartiles, so that the first few items already span small to large graphs.
    by_size = sorted(items, key=lambda i: (len(i.gold), i.id))
    quarter = -(-len(by_size) // 4)
    quartiles = [by_size[k : k + quarter] for k in range(0, len(by_size), quarter)]
    return [q[i] for i in range(quarter) for q in quartiles if i < len(q)]
