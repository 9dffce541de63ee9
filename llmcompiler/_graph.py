"""The task graph of a run: which tasks wait on which, which are ready, which are given up.

Pure and synchronous: no event loop, no clock, no tool. The round adds parsed tasks and
reports finished ones; the graph answers with the tasks that became ready to run and the
records of tasks given up because a dependency failed (transitively, in one step). The round
decides how to run what is ready (the call layer) and what to tell listeners.

Invariants, for every task number ``i`` the graph has seen:
- it is in exactly one of: waiting (``pending``, with a count of unfinished dependencies),
  ready (returned once by ``add`` or ``finish``, then ``running`` until finished), or done
  (a record in ``records``);
- a task is returned as ready at most once, and only when every dependency has a record
  without an error;
- a task with a failed dependency gets a ``dependency N failed: ...`` record and never runs.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from llmcompiler._records import TaskRecord
from llmcompiler._tools import Tool

__all__ = ["Node", "Progress", "TaskGraph"]


class Node:
    """A parsed task of a known tool, with its arguments bound to parameter names.

    Attributes:
        idx: the task's number.
        name: the tool's name.
        tool: the tool.
        kwargs: arguments by parameter name; they may hold ``Ref``s and ``Template``s.
        deps: the tasks it references.
        thought: the plan's thought before it.
        line: the plan line it came from.
        round: the round it belongs to.
        waiting: dependencies not finished yet.
        batch_size: set by a fused call (see ``TaskRecord.batch_size``).
        fused_with: set by a fused call.
    """

    __slots__ = (
        "batch_size",
        "deps",
        "fused_with",
        "idx",
        "kwargs",
        "line",
        "name",
        "round",
        "thought",
        "tool",
        "waiting",
    )

    def __init__(
        self,
        *,
        idx: int,
        tool: Tool,
        kwargs: dict[str, Any],
        deps: frozenset[int],
        thought: str | None,
        line: str,
        round: int,
    ) -> None:
        self.idx = idx
        self.name = tool.name
        self.tool = tool
        self.kwargs = kwargs
        self.deps = deps
        self.thought = thought
        self.line = line
        self.round = round
        self.waiting = 0
        self.batch_size = 0
        self.fused_with: tuple[int, ...] = ()


class Progress(NamedTuple):
    """What a change to the graph set in motion."""

    ready: list[Node]
    """Tasks whose last dependency just finished (or that had none): run them."""
    given_up: list[TaskRecord]
    """Records of tasks that will never run because a dependency failed, in the order decided."""


_NOTHING = Progress([], [])


class TaskGraph:
    """Dependency bookkeeping for the tasks of one executor, across its rounds.

    Args:
        records: the executor's records by task number (shared: finished tasks of earlier
            rounds are dependencies too, and the graph stores new records in it).
    """

    __slots__ = ("pending", "records", "waiters")

    def __init__(self, records: dict[int, TaskRecord]) -> None:
        self.records = records
        self.pending: dict[int, Node] = {}  # added and not finished: waiting or running
        self.waiters: dict[int, list[Node]] = {}  # dependency number -> tasks waiting on it

    @property
    def running(self) -> int:
        """How many tasks were added and have no record yet."""
        return len(self.pending)

    def add(self, node: Node) -> Progress:
        """Add a parsed task. It is ready at once when every dependency already succeeded.

        Args:
            node: the task; its ``deps`` are numbers of earlier tasks (finished or pending).
        """
        records = self.records
        for dep in node.deps:
            done = records.get(dep)
            if done is None:
                node.waiting += 1
                self.waiters.setdefault(dep, []).append(node)
            elif done.error is not None:
                # Waiters registered above are skipped later: the node is never pending.
                return Progress([], [self._give_up(node, dep, done.error)])
        self.pending[node.idx] = node
        if node.waiting == 0:
            return Progress([node], [])
        return _NOTHING

    def finish(self, record: TaskRecord) -> Progress:
        """Store a task's record; return the tasks it made ready and those it made fail."""
        self.records[record.idx] = record
        self.pending.pop(record.idx, None)
        if record.idx not in self.waiters:
            return _NOTHING
        ready: list[Node] = []
        given_up: list[TaskRecord] = []
        stack = [record]
        while stack:
            rec = stack.pop()
            for node in self.waiters.pop(rec.idx, ()):
                if node.idx not in self.pending:
                    continue  # already given up through another failed dependency
                if rec.error is not None:
                    failed = self._give_up(node, rec.idx, rec.error)
                    given_up.append(failed)
                    stack.append(failed)
                else:
                    node.waiting -= 1
                    if node.waiting == 0:
                        ready.append(node)
        return Progress(ready, given_up)

    def _give_up(self, node: Node, dep: int, error: str) -> TaskRecord:
        self.pending.pop(node.idx, None)
        record = TaskRecord(
            idx=node.idx,
            tool=node.name,
            args=node.kwargs,
            deps=node.deps,
            thought=node.thought,
            error=f"dependency {dep} failed: {error}",
            line=node.line,
            round=node.round,
        )
        self.records[node.idx] = record
        return record
