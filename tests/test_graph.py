"""The task graph, tested without an event loop: readiness, give-ups, and its invariants."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from llmcompiler import TaskRecord, tool
from llmcompiler._graph import Node, TaskGraph


@tool
def noop(x: int = 0) -> int:
    """Do nothing."""
    return x


def node(idx: int, *deps: int, round: int = 1) -> Node:
    return Node(idx=idx, tool=noop, kwargs={}, deps=frozenset(deps), thought=None, line=f"{idx}. noop()", round=round)


def done(idx: int, error: str | None = None) -> TaskRecord:
    return TaskRecord(idx=idx, tool="noop", args={}, deps=frozenset(), thought=None, result=idx, error=error)


def test_a_task_without_dependencies_is_ready_at_once() -> None:
    graph = TaskGraph({})
    progress = graph.add(node(1))
    assert [n.idx for n in progress.ready] == [1]
    assert progress.given_up == []
    assert graph.running == 1


def test_a_task_is_ready_when_its_last_dependency_finishes() -> None:
    graph = TaskGraph({})
    graph.add(node(1))
    graph.add(node(2))
    assert graph.add(node(3, 1, 2)).ready == []
    assert graph.finish(done(1)).ready == []
    assert [n.idx for n in graph.finish(done(2)).ready] == [3]


def test_a_failed_dependency_gives_up_its_dependents_transitively() -> None:
    graph = TaskGraph({})
    graph.add(node(1))
    graph.add(node(2, 1))
    graph.add(node(3, 2))
    graph.add(node(4))
    progress = graph.finish(done(1, error="boom"))
    assert progress.ready == []
    assert [(r.idx, r.error) for r in progress.given_up] == [
        (2, "dependency 1 failed: boom"),
        (3, "dependency 2 failed: dependency 1 failed: boom"),
    ]
    assert graph.running == 1  # task 4 still runs
    assert all(r.state == "skipped" for r in progress.given_up)


def test_a_dependency_that_already_failed_gives_up_the_task_when_added() -> None:
    records = {1: done(1, error="boom")}
    graph = TaskGraph(records)
    progress = graph.add(node(2, 1, round=2))
    assert progress.ready == []
    assert [(r.idx, r.round) for r in progress.given_up] == [(2, 2)]
    assert records[2].error == "dependency 1 failed: boom"


def test_a_task_with_two_failed_dependencies_is_given_up_once() -> None:
    graph = TaskGraph({})
    graph.add(node(1))
    graph.add(node(2))
    graph.add(node(3, 1, 2))
    assert [r.idx for r in graph.finish(done(1, error="a")).given_up] == [3]
    assert graph.finish(done(2, error="b")).given_up == []


def test_earlier_rounds_count_as_finished_dependencies() -> None:
    graph = TaskGraph({1: done(1)})
    assert [n.idx for n in graph.add(node(2, 1)).ready] == [2]


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=40), st.integers(min_value=0, max_value=2**32 - 1))
def test_random_graphs_keep_the_invariants(n: int, seed: int) -> None:
    """Every task is ready at most once, only after its dependencies succeeded, and ends with a record."""
    rng = random.Random(seed)
    graph = TaskGraph({})
    deps = {i: frozenset(rng.sample(range(1, i), k=min(i - 1, rng.randint(0, 3)))) for i in range(1, n + 1)}
    fails = {i for i in deps if rng.random() < 0.2}
    ready: list[Node] = []
    started: list[int] = []
    for i in range(1, n + 1):
        ready.extend(graph.add(node(i, *deps[i])).ready)
    while ready:
        current = ready.pop(rng.randrange(len(ready)))
        assert all(graph.records[d].error is None for d in current.deps)
        started.append(current.idx)
        ready.extend(graph.finish(done(current.idx, error="x" if current.idx in fails else None)).ready)
    assert len(started) == len(set(started))
    assert sorted(graph.records) == list(range(1, n + 1))
    assert graph.running == 0
    for i in graph.records:
        failed_dep = any(graph.records[d].error is not None for d in deps[i])
        assert (i in started) == (not failed_dep)
