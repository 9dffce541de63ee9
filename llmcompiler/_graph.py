"""The task graph of a run: which tasks wait on which, which are ready, which are given up.

Two kinds of edges. A data edge (``deps``: the task uses ``$N``) is kept when its dependency
succeeds and gives the task up when it fails. A control edge (``after``: a ``sequential``
tool's barrier) only orders: it is kept whatever the earlier task's outcome. Control edges are
implied by plan order, in the order tasks are added (so a streamed plan gets them as it
arrives): a sequential task comes after every task of the round added before it (back to the
previous sequential task, which came after the rest), and every other task after the last
sequential task before it. A barrier that failed holds nothing back: the tasks after it start,
and only those using its result are given up.

No task finishes before its control dependencies: a task whose data failed is given up at once
when it has none, else once they have all finished. So a barrier given up still comes after every
earlier task, and whatever comes after it after those.

Pure and synchronous: no event loop, no clock, no tool. The round adds parsed tasks and
reports finished ones; the graph answers with the tasks that became ready to run and the
records of tasks given up because a dependency failed (transitively, in one step). The round
decides how to run what is ready (the call layer) and what to tell listeners.

Invariants, for every task number ``i`` the graph has seen:
- it is in exactly one of: waiting (``pending``, with a count of unfinished dependencies),
  ready (returned once by ``add`` or ``finish``, then ``running`` until finished), or done
  (a record in ``records``);
- a task is returned as ready at most once, and only when every dependency has a record
  without an error and every control dependency has a record;
- a task with a failed dependency gets a ``dependency N failed: ...`` record and never runs;
- a task gets its record (it ran, or was given up) only after every control dependency has one.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from llmcompiler._records import TaskRecord
from llmcompiler._tools import Tool

__all__ = ["Node", "Progress", "TaskGraph"]


_NONE: frozenset[int] = frozenset()


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
        after: its control dependencies but its data dependencies (set by the graph; see
            ``TaskRecord.after``).
        control: all its control dependencies, data dependencies among them.
        waiting: dependencies (data and control) not finished yet; once ``doomed``, control
            dependencies only.
        doomed: the first failed data dependency and its error, for a task given up once its
            control dependencies finish.
        batch_size: set by a fused call (see ``TaskRecord.batch_size``).
        fused_with: set by a fused call.
        exclusive: set by the call layer: the exclusive group its call held.
    """

    __slots__ = (
        "after",
        "batch_size",
        "control",
        "deps",
        "doomed",
        "exclusive",
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
        self.after = self.control = _NONE
        self.waiting = 0
        self.doomed: tuple[int, str] | None = None
        self.batch_size = 0
        self.fused_with: tuple[int, ...] = ()
        self.exclusive: str | None = None


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

    __slots__ = ("barrier", "pending", "records", "since", "waiters")

    def __init__(self, records: dict[int, TaskRecord]) -> None:
        self.records = records
        self.pending: dict[int, Node] = {}  # added and not finished: waiting or running
        self.waiters: dict[int, list[Node]] = {}  # dependency number -> tasks waiting on it
        self.barrier: int | None = None  # the last sequential task added
        self.since: list[int] = []  # it and the tasks added after it (before the first: every task added)

    @property
    def running(self) -> int:
        """How many tasks were added and have no record yet."""
        return len(self.pending)

    def add(self, node: Node) -> Progress:
        """Add a parsed task. It is ready at once when every dependency already succeeded and
        every control dependency has finished.

        Args:
            node: the task; its ``deps`` are numbers of earlier tasks (finished or pending).
        """
        records = self.records
        if node.tool.sequential or self.barrier is not None:
            self._order(node)
        else:
            self.since.append(node.idx)
        for dep in node.deps:
            done = records.get(dep)
            if done is None:
                node.waiting += 1
                self.waiters.setdefault(dep, []).append(node)
            elif done.error is not None:
                if node.control and not node.control <= records.keys():
                    return self._doom(node, dep, done.error)  # given up once they have finished
                # Waiters registered above are skipped later: the node is never pending.
                return Progress([], [self._give_up(node, dep, done.error)])
        self.pending[node.idx] = node
        if node.waiting == 0:
            return Progress([node], [])
        return _NOTHING

    def _order(self, node: Node) -> None:
        """Set a task's control dependencies (``after``) and wait for those not finished."""
        if node.tool.sequential:
            control = frozenset(self.since)
            self.barrier = node.idx
            self.since = [node.idx]
        else:
            assert self.barrier is not None
            control = frozenset((self.barrier,))
            self.since.append(node.idx)
        node.control = control
        deps = node.deps
        node.after = control - deps if deps else control  # a data edge says more: shown once
        records = self.records
        for idx in control:
            if idx not in records and idx not in deps:  # a data dependency is waited for as one
                node.waiting += 1
                self.waiters.setdefault(idx, []).append(node)

    def _doom(self, node: Node, dep: int, error: str) -> Progress:
        """Add a task whose data dependency ``dep`` failed before its control dependencies
        finished: it waits for those alone and is given up when they have finished."""
        node.doomed = (dep, error)
        self._wait_for_control_only(node)
        for idx in node.control & node.deps:  # the loop over its data may have stopped short of them
            if idx not in self.records and node not in self.waiters.get(idx, ()):
                node.waiting += 1
                self.waiters.setdefault(idx, []).append(node)
        self.pending[node.idx] = node
        return _NOTHING

    def _wait_for_control_only(self, node: Node) -> None:
        """Stop a doomed task waiting for the data dependencies that are not control ones."""
        for idx in node.deps - node.control:
            waiting = self.waiters.get(idx)
            if waiting is not None and node in waiting:
                waiting.remove(node)
                node.waiting -= 1

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
                    if not node.control:
                        failed = self._give_up(node, rec.idx, rec.error)
                        given_up.append(failed)
                        stack.append(failed)
                        continue
                    if node.doomed is None and rec.idx in node.deps:
                        # Its data failed: it waits for its control dependencies alone now.
                        node.doomed = (rec.idx, rec.error)
                        self._wait_for_control_only(node)
                node.waiting -= 1
                if node.waiting:
                    continue
                if node.doomed is None:
                    ready.append(node)
                    continue
                failed = self._give_up(node, *node.doomed)
                given_up.append(failed)
                stack.append(failed)
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
            after=node.after,
        )
        self.records[node.idx] = record
        return record
