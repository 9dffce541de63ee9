"""The live view of a run: the plan as it streams and a table of tasks, updated in place.

``LiveView`` takes the run's events (``handle(event)``) and shows them on a rich ``Console``:
on a terminal, a ``rich.live.Live`` display with a plan panel and a task table (number, tool,
arguments, dependencies, state, duration, result) that updates in place; anywhere else (a pipe,
a CI log) plain lines, one per event. While the joiner reads the results a spinner says so
(``joiner reading 3 results…``); at the end the plan stays on the screen above the table, and
failed tasks' errors are printed whole under it. ``finish(result)`` prints the answer and the
closing lines: the tools' own time one after another against their wall time in parallel
(``tools: 1.20 s one after another, 0.31 s in parallel (3.9x)``), then the run's total time
(the model's included), the tokens and the cost. The errors shown whole are failed tasks' and
those of tasks given up for a reason of their own (an unknown tool); a task given up because a
dependency failed repeats that error, so its cell is enough.

With a drafter (``LLMCompiler``'s ``drafter``), each speculative call is shown dim, below its
round's tasks, numbered by its draft task (``~2``), as it starts (``speculating``) and as it
ends: ``hit`` (``adopted by task 1``), ``missed``, ``cancelled`` or ``failed`` with its error;
in plain lines ``spec  ~ 2. search("Paris")`` and ``spec  ~ 2. search → missed (result
dropped)``. A task that took a speculative call's result is marked ``⚡ saved 300ms``, and the
closing lines end with the speculation summary (``speculation_line``: hits of the calls started,
misses, cancelled, time saved, the drafter's tokens and cost, draft errors). Without a
drafter nothing of this appears.

Every text shown passes through ``scrub`` (API keys and authorisation headers never appear),
``safe_text`` (any result can be shown) and ``escape_controls``: a result or an answer holding
terminal escape sequences, other control characters or bidirectional overrides is shown with
them escaped (``\x1b[2J``), never written to the terminal as they are.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Literal

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from llmcompiler._events import (
    AnswerChunk,
    JoinerDecided,
    PlanChunk,
    RoundStarted,
    RunEvent,
    SpeculationEnded,
    SpeculationStarted,
    TaskFinished,
    TaskStarted,
)
from llmcompiler._plan import JOIN, ParseError, PlanEnded, TaskParsed
from llmcompiler._records import RunResult, SpeculationSummary, SpeculativeCall, SpeculativeState, TaskRecord
from llmcompiler._redact import scrub
from llmcompiler._text import escape_controls, one_line, safe_text

__all__ = ["LiveView", "RowState", "closing_lines", "speculation_line", "tool_times"]

RowState = Literal["waiting", "running", "done", "failed", "skipped"]

_STYLES: dict[str, str] = {
    "waiting": "dim",
    "running": "yellow",
    "done": "green",
    "failed": "red",
    "skipped": "magenta",
}
_PLAIN_LABELS = {"done": "done ", "failed": "fail ", "skipped": "skip "}
_PLAN_LINES = 10  # lines of the plan, and of the answer, shown while they stream

_CELL = 200  # characters of a table cell before it is cut
# A failed task's error is shown whole under the table (records keep 2,000 characters of an
# error); this only bounds what some other source could hand over.
_FULL = 8000
_MARGIN = 256  # characters rendered beyond what is shown, so a secret at the cut is scrubbed whole


@dataclasses.dataclass(frozen=True, slots=True)
class _Row:
    """One task as shown; replaced (never changed) on each event, so a refresh thread reads a whole row."""

    idx: int
    tool: str
    args: str
    deps: tuple[int, ...]
    round: int
    state: RowState = "waiting"
    start: float | None = None
    end: float | None = None
    outcome: str = ""
    error: str = ""  # the task's own whole error, shown under the table at the end (see _own_error)
    hit: str = ""  # "⚡ saved 300ms" when its result came from a speculative call


@dataclasses.dataclass(frozen=True, slots=True)
class _SpecRow:
    """One speculative call as shown (dim, under its round's tasks); replaced on each event."""

    key: int  # the order it started in
    round: int
    draft: int
    tool: str
    args: str
    state: SpeculativeState | Literal["speculating"] = "speculating"
    start: float | None = None
    end: float | None = None
    outcome: str = ""


_SPEC_STYLES: dict[str, str] = {
    "speculating": "dim yellow",
    "hit": "dim green",
    "missed": "dim",
    "cancelled": "dim",
    "failed": "dim red",
}


def _args_text(line: str, tool: str) -> str:
    """The argument text of a plan line ``3. search("x", $1)``: ``"x", $1``."""
    head = line.find(tool + "(")
    if head < 0:
        return ""
    inner = line[head + len(tool) + 1 :].rstrip()
    return inner[:-1] if inner.endswith(")") else inner


def shown(value: object, limit: int = 300) -> str:
    """``value`` as one line fit for a terminal: safe text, secrets out, controls escaped, cut."""
    # Scrub before cutting, and render a margin beyond what is kept: a secret at the cut is still
    # whole when it is scrubbed, so no part of it shows.
    text = safe_text(value) if isinstance(value, str) else safe_text(value, 4 * limit + _MARGIN)
    return one_line(escape_controls(scrub(text)[: 4 * limit], keep="\n\t\r"), limit)


def shown_block(text: str) -> str:
    """Text of several lines (a plan, an answer) fit for a terminal: lines kept, the rest as ``shown``."""
    return escape_controls(scrub(safe_text(text)))


def _secs(t: float) -> str:
    return f"{t * 1000:.0f}ms" if t < 1 else f"{t:.2f}s"


def _spec_outcome(call: SpeculativeCall) -> str:
    """How a speculative call ended, in a few words: ``hit → 1``, ``missed (result dropped)``."""
    if call.state == "hit":
        return f"hit → task {call.adopted_by}" if call.adopted_by is not None else "hit"
    if call.state == "missed":
        return "missed (result dropped)"
    if call.state == "cancelled":
        return "cancelled"
    return f"failed: {call.error}" if call.error else "failed"


def _spec_detail(call: SpeculativeCall) -> str:
    """The result cell of a speculative call that ended (its state has a cell of its own)."""
    if call.state == "hit":
        return f"adopted by task {call.adopted_by}" if call.adopted_by is not None else "adopted"
    if call.state == "missed":
        return "no task matched it: result dropped"
    if call.state == "cancelled":
        return "no task could match it"
    return call.error or ""


def _own_error(record: TaskRecord) -> bool:
    """Whether the task's error is its own, to be shown whole: it failed, or it was given up for
    a reason of its own (an unknown tool, bad arguments). A task given up because a dependency
    failed repeats that dependency's error, which is shown already."""
    if record.state == "failed":
        return True
    return record.state == "skipped" and not (record.error or "").startswith("dependency ")


def tool_times(tasks: Iterable[TaskRecord]) -> tuple[float, float]:
    """The tools' own time: ``(one after another, in parallel)`` in seconds.

    One after another is the sum of the tool calls' durations. In parallel is the wall time
    during which at least one tool was running: the union of the calls' intervals. Gaps when no
    tool ran (the model still writing the plan, joining, replanning) are not tool time, so a
    plan that streams slowly does not make its tools look slow. Tasks that never ran and the
    ``join`` task count in neither.

    Example:
        >>> from llmcompiler._records import TaskRecord
        >>> def task(i, start, end):
        ...     return TaskRecord(idx=i, tool="t", args={}, deps=frozenset(), thought=None, start=start, end=end)
        >>> tool_times([task(1, 0.0, 1.0), task(2, 0.5, 1.5), task(3, 9.0, 9.5)])
        (2.5, 2.0)
    """
    sequential = 0.0
    intervals: list[tuple[float, float]] = []
    for task in tasks:
        if task.tool == JOIN or task.start is None or task.end is None:
            continue
        sequential += task.end - task.start
        intervals.append((task.start, max(task.start, task.end)))
    busy = 0.0
    reach = float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            busy += end - max(start, reach)
            reach = end
    return sequential, busy


def closing_lines(result: RunResult) -> tuple[str, str]:
    """The two lines after the answer: the tools' time one after another against in parallel,
    then the run's total (the model's time included), the tasks, rounds, tokens and cost.

    Example:
        >>> from llmcompiler._records import TaskRecord
        >>> from llmcompiler._types import Usage
        >>> def task(i, start, end):
        ...     return TaskRecord(idx=i, tool="t", args={}, deps=frozenset(), thought=None, start=start, end=end)
        >>> tasks = [task(1, 1.0, 1.4), task(2, 1.0, 1.4), task(3, 1.1, 1.5)]
        >>> result = RunResult(answer="a", tasks=tasks, rounds=1, usage=Usage(), start=0.0, end=2.0)
        >>> closing_lines(result)[0]
        'tools: 1.20 s one after another, 0.50 s in parallel (2.4x)'
    """
    sequential, parallel = tool_times(result.tasks)
    ran = sum(1 for t in result.tasks if t.tool != JOIN)
    if not any(t.tool != JOIN and t.start is not None and t.end is not None for t in result.tasks):
        tools = "tools: none ran"
    else:
        gain = f" ({sequential / parallel:.1f}x)" if parallel > 0 else ""
        tools = f"tools: {sequential:.2f} s one after another, {parallel:.2f} s in parallel{gain}"
    usage = result.usage
    cost = "cost unknown" if result.cost_usd is None else f"${result.cost_usd:.4f}"
    run = (
        f"run: {result.total_s:.2f} s with the model; {ran} task(s), {result.rounds} round(s); "
        f"tokens {usage.prompt_tokens} in / {usage.completion_tokens} out; {cost}"
    )
    return tools, run


def speculation_line(summary: SpeculationSummary) -> str:
    """The closing line of a run with a drafter: hits of the speculative calls started, misses
    (cancelled among them), the time saved, what was drafted by which model, its tokens and
    cost, and the drafts that went wrong.

    Example:
        >>> speculation_line(SpeculationSummary(drafter="local", drafted=5, started=4, hits=3, misses=1,
        ...     cancelled=1, time_saved_s=0.9)).split(";")[0]
        'speculation: 3/4 hits, 1 missed (1 cancelled), saved 0.90 s'
    """
    usage = summary.usage
    cost = "cost unknown" if summary.cost_usd is None else f"${summary.cost_usd:.4f}"
    line = (
        f"speculation: {summary.hits}/{summary.started} hits, {summary.misses} missed "
        f"({summary.cancelled} cancelled), saved {summary.time_saved_s:.2f} s; "
        f"{summary.drafted} call(s) drafted by {shown(summary.drafter, 80)}; "
        f"drafter tokens {usage.prompt_tokens} in / {usage.completion_tokens} out; {cost}"
    )
    if summary.errors:
        n = len(summary.errors)
        line += f"; {n} draft error{'' if n == 1 else 's'} ({shown(summary.errors[0], 160)})"
    return line


class LiveView:
    """Shows a run as it happens.

    Use it as a context manager around the run and pass it each event::

        with LiveView(console) as view:
            async for item in agent.astream(question):
                if isinstance(item, RunResult):
                    view.finish(item)
                else:
                    view.handle(item)

    The in-place view shows the answer as the joiner writes it (``AnswerChunk``), in a panel
    under the table; plain lines print it once, with the closing lines.

    Args:
        console: where to draw (default: a new ``Console`` on standard output).
        live: ``True`` for the in-place display, ``False`` for plain lines; by default the
            display is live when the console is a terminal (and not a dumb one).
        auto_refresh: redraw from a background thread ``refresh_per_second`` times a second
            (running times keep counting); ``False`` redraws on each event instead.
        refresh_per_second: redraws per second with ``auto_refresh``.
        clock: the clock of event times (the event loop's: ``time.monotonic``).
    """

    def __init__(
        self,
        console: Console | None = None,
        *,
        live: bool | None = None,
        auto_refresh: bool = True,
        refresh_per_second: float = 8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console = console or Console(highlight=False)
        self.live = (self.console.is_terminal and not self.console.is_dumb_terminal) if live is None else live
        self.auto_refresh = auto_refresh
        self.refresh_per_second = refresh_per_second
        self.clock = clock
        self.start: float | None = None
        self.rows: dict[int, _Row] = {}
        self.specs: dict[int, _SpecRow] = {}  # the speculative calls, in the order they started
        self._spec_keys: dict[tuple[int, int], int] = {}  # (round, draft task) -> its latest call
        self.round = 0
        self.plan_chunks: list[str] = []  # the current round's plan text
        self.plans: list[tuple[int, str]] = []  # the earlier rounds' plans (round, text), for the last frame
        self.plan_done = False
        self.decided = False  # the joiner answered this round
        self.joining_since: float | None = None  # when the joiner began reading this round's results
        self.joiner: list[str] = []
        self.answer: list[str] = []  # the joiner's answer as it is written (AnswerChunk texts)
        self.final = False
        self._live: Live | None = None

    # -- context

    def __enter__(self) -> LiveView:
        if self.live:
            self._live = Live(
                self,
                console=self.console,
                auto_refresh=self.auto_refresh,
                refresh_per_second=self.refresh_per_second,
                vertical_overflow="visible",
            )
            self._live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the in-place display, leaving its last frame (every task) on the screen."""
        live, self._live = self._live, None
        if live is not None:
            self.final = True
            live.stop()

    # -- events

    def handle(self, event: RunEvent) -> None:
        """Take one run event."""
        now = self._time(event)
        if self.start is None:
            self.start = now
        if isinstance(event, RoundStarted):
            if self.plan_chunks:
                self.plans.append((max(self.round, 1), "".join(self.plan_chunks)))
            self.round = event.round
            self.plan_chunks = []
            self.plan_done = False
            self.decided = False
            self.joining_since = None
            self.answer = []
            if event.round > 1:
                feedback = shown(event.feedback or "", _CELL)
                self._line(now, "[blue]round[/]", f"{event.round}: a new plan ({feedback})")
        elif isinstance(event, PlanChunk):
            self.plan_chunks.append(event.text)
        elif isinstance(event, TaskParsed):
            if event.tool == JOIN:
                self.plan_done = True
            else:
                self.rows[event.idx] = _Row(
                    idx=event.idx,
                    tool=shown(event.tool, _CELL),
                    args=shown(_args_text(event.line, event.tool), _CELL),
                    deps=tuple(sorted(event.deps)),
                    round=max(self.round, 1),
                )
                self._line(now, "[cyan]plan [/]", event.line)
        elif isinstance(event, PlanEnded):
            self.plan_done = True
        elif isinstance(event, ParseError):
            if event.idx is None:
                self._line(now, "[magenta]skip [/]", event.message())
        elif isinstance(event, TaskStarted):
            row = self.rows.get(event.idx)
            if row is not None:
                self.rows[event.idx] = dataclasses.replace(
                    row, state="running", start=row.start if row.start is not None else event.time
                )
            self._line(now, "[yellow]start[/]", f"{event.idx}. {event.tool}")
        elif isinstance(event, TaskFinished):
            rec = event.record
            if rec.tool != JOIN:
                outcome = shown(rec.result if rec.ok else (rec.error or ""), _CELL)
                error = shown(rec.error or "", _FULL) if _own_error(rec) else ""
                hit = "" if rec.speculative is None else f"⚡ saved {_secs(rec.speculative.saved_s)}"
                old = self.rows.get(rec.idx)
                self.rows[rec.idx] = _Row(
                    idx=rec.idx,
                    tool=shown(rec.tool, _CELL),
                    args=old.args if old is not None else shown(_args_text(rec.line, rec.tool), _CELL),
                    deps=tuple(sorted(rec.deps)),
                    round=rec.round,
                    state=rec.state,
                    start=rec.start,
                    end=rec.end,
                    outcome=outcome,
                    error=error,
                    hit=hit,
                )
                style = _STYLES[rec.state]
                text = f"{rec.idx}. {rec.tool} → {error or outcome}"
                if rec.speculative is not None:
                    text = (
                        f"{rec.idx}. {rec.tool} ⚡ speculative hit, saved {_secs(rec.speculative.saved_s)} → {outcome}"
                    )
                self._line(now, f"[{style}]{_PLAIN_LABELS[rec.state]}[/]", text, _FULL if error else 300)
        elif isinstance(event, SpeculationStarted):
            self._spec_started(event)
            self._line(now, "[dim]spec [/]", f"~ {event.line}")
        elif isinstance(event, SpeculationEnded):
            call = event.call
            self._spec_ended(call)
            self._line(now, "[dim]spec [/]", f"~ {call.draft}. {call.tool} → {_spec_outcome(call)}")
        elif isinstance(event, AnswerChunk):
            # Drawn whole (scrubbed as one text) in the in-place view; plain lines print the answer
            # once, from ``finish``: pieces printed one by one could show a secret cut in two.
            self.answer.append(event.text)
        elif isinstance(event, JoinerDecided):
            self.plan_done = True
            self.decided = True
            self.joining_since = None
            text = "answer ready" if event.action == "finish" else f"new plan needed: {event.text}"
            self.joiner.append(shown(f"round {max(self.round, 1)}: {text}", 160))
            self._line(now, "[blue]join [/]", text)
        if self.joining_since is None and self._joining():
            self.joining_since = now
            self._line(now, "[blue]join [/]", self._joiner_text())
        if self._live is not None and not self.auto_refresh:
            self._live.refresh()

    def _spec_started(self, event: SpeculationStarted) -> None:
        key = len(self.specs) + 1
        self._spec_keys[(event.round, event.draft)] = key
        self.specs[key] = _SpecRow(
            key=key,
            round=event.round,
            draft=event.draft,
            tool=shown(event.tool, _CELL),
            args=shown(_args_text(event.line, event.tool), _CELL),
            start=event.time,
        )

    def _spec_ended(self, call: SpeculativeCall) -> None:
        key = self._spec_keys.pop((call.round, call.draft), None)
        if key is None:  # its start was not seen: show it all the same
            key = len(self.specs) + 1
        self.specs[key] = _SpecRow(
            key=key,
            round=call.round,
            draft=call.draft,
            tool=shown(call.tool, _CELL),
            args=shown(_args_text(call.line, call.tool), _CELL),
            state=call.state,
            start=call.start,
            end=call.end,
            outcome=shown(_spec_detail(call), _CELL),
        )

    def _joining(self) -> bool:
        """Whether the joiner is reading the results: the plan ended and every task of it finished."""
        if not self.plan_done or self.decided:
            return False
        return all(row.state not in ("waiting", "running") for row in list(self.rows.values()))

    def _joiner_text(self) -> str:
        n = sum(1 for row in list(self.rows.values()) if row.state not in ("waiting", "running"))
        return f"joiner reading {n} result{'' if n == 1 else 's'}…"

    def _time(self, event: RunEvent) -> float:
        if isinstance(event, (PlanChunk, TaskStarted, SpeculationStarted)):
            return event.time
        if isinstance(event, SpeculationEnded):
            return event.call.end
        if isinstance(event, TaskFinished) and event.record.end is not None:
            return event.record.end
        return self.clock()

    def _line(self, now: float, label: str, text: str, limit: int = 300) -> None:
        if self.live:
            return
        at = now - (self.start if self.start is not None else now)
        line = f"[dim]{at:6.2f}s[/] {label} {escape(shown(text, limit))}"
        self.console.print(line, highlight=False, soft_wrap=True)  # one event, one line: no wrapping

    # -- the end

    def finish(self, result: RunResult) -> None:
        """Show the answer and the closing lines (see ``closing_lines``)."""
        self.close()
        answer = escape(shown_block(result.answer))
        if self.live:
            self.console.print(Panel(answer, title="Answer", title_align="left", border_style="green"))
        else:
            self.console.print(f"[bold]Answer:[/] {answer}", highlight=False, soft_wrap=True)
        tools, run = closing_lines(result)
        self.console.print(escape(tools), highlight=False, soft_wrap=not self.live)
        self.console.print(f"[dim]{escape(run)}[/]", highlight=False, soft_wrap=not self.live)
        if result.speculation is not None:
            line = speculation_line(result.speculation)
            self.console.print(f"[dim]{escape(line)}[/]", highlight=False, soft_wrap=not self.live)

    # -- drawing

    def __rich__(self) -> RenderableType:
        rows = list(self.rows.values())  # one atomic copy: a refresh thread may draw while events arrive
        specs = list(self.specs.values())
        now = self.clock()
        parts: list[RenderableType] = []
        current = "".join(list(self.plan_chunks))
        if self.final:  # every round's plan, whole, above the table
            plans = list(self.plans)
            if current or not plans:
                plans.append((max(self.round, 1), current))
            for number, text in plans:
                lines = shown_block(text).strip("\n").splitlines()
                cut = "" if number < max(self.round, 1) or self.plan_done else " · incomplete"
                title = f"Plan · round {number}{cut}"
                parts.append(Panel(Text("\n".join(lines) or "(no plan)"), title=title, title_align="left"))
        else:
            status = "done" if self.plan_done else "streaming…"
            title = f"Plan · round {max(self.round, 1)} · {status}"
            plan = self._tail(current) if current.strip() else Text("waiting for the model…")
            parts.append(Panel(plan, title=title, title_align="left"))
        parts.append(self._table(rows, specs, now))
        if self.final:
            for row in rows:
                if row.error:  # whole, wrapped to the screen: the table's cell is cut
                    parts.append(Text(f"{row.idx}. {row.tool} {row.state}: {row.error}", style="red"))
        counts = dict.fromkeys(_STYLES, 0)
        for row in rows:
            counts[row.state] += 1
        elapsed = 0.0 if self.start is None else max(0.0, now - self.start)
        summary = " · ".join(f"{n} {s}" for s, n in counts.items() if n)
        if specs:
            running = sum(1 for spec in specs if spec.state == "speculating")
            hits = sum(1 for spec in specs if spec.state == "hit")
            summary += f" · speculative: {len(specs)} started, {running} running, {hits} hit"
        status_line = Text(f"{elapsed:.1f}s · {summary or 'no tasks yet'}", style="dim")
        if self.joiner:
            status_line.append("\njoiner: " + "; ".join(self.joiner))
        parts.append(status_line)
        answer = "".join(list(self.answer))
        if answer and not self.final:  # the final frame leaves the answer to ``finish`` (or a failure)
            title = "Answer" if self.decided else "Answer · writing…"
            parts.append(Panel(self._tail(answer), title=title, title_align="left", border_style="green"))
        since = self.joining_since
        if since is not None and not self.final and not answer:
            text = f"{self._joiner_text()} {max(0.0, now - since):.1f}s"
            parts.append(Spinner("dots", Text(text, style="blue")))
        return Group(*parts)

    def _tail(self, text: str) -> Text:
        """The last ``_PLAN_LINES`` lines of a streaming text (a plan, an answer) as a panel shows
        them, long lines wrapped: a frame taller than the screen could not be redrawn in place."""
        wrapped = Text(shown_block(text).strip("\n")).wrap(self.console, max(10, self.console.width - 4))
        if len(wrapped) <= _PLAN_LINES:
            return Text("\n").join(wrapped)
        above = Text(f"… {len(wrapped) - _PLAN_LINES + 1} lines above", style="dim")
        return Text("\n").join([above, *wrapped[-_PLAN_LINES + 1 :]])

    def _table(self, rows: list[_Row], specs: list[_SpecRow], now: float) -> Table:
        table = Table(expand=True, show_edge=False, pad_edge=False)
        table.add_column("#", justify="right", no_wrap=True)
        table.add_column("tool", no_wrap=True, max_width=24)
        table.add_column("arguments", no_wrap=True, overflow="ellipsis", ratio=3)
        table.add_column("after", no_wrap=True, max_width=16, overflow="ellipsis")
        table.add_column("state", no_wrap=True)
        table.add_column("time", justify="right", no_wrap=True)
        table.add_column("result", no_wrap=True, overflow="ellipsis", ratio=4)
        entries: list[_Row | _SpecRow] = [*rows, *specs]
        shown = entries if self.final else self._fit(entries)
        hidden = len(rows) - sum(1 for row in shown if isinstance(row, _Row))
        last_round = 0
        rounds = sorted({row.round for row in shown})
        for number in rounds:  # each round's tasks, then its speculative calls
            for row in (r for r in shown if r.round == number):
                if row.round != last_round and last_round:
                    table.add_section()
                last_round = row.round
                took = _took(row.start, row.end, now)
                if isinstance(row, _SpecRow):
                    dim = _SPEC_STYLES[row.state]
                    table.add_row(
                        Text(f"~{row.draft}", style="dim"),
                        Text(row.tool, style="dim"),
                        Text(row.args, style="dim"),
                        "",
                        Text(row.state, style=dim),
                        Text(took, style="dim"),
                        Text(row.outcome, style="dim"),
                    )
                    continue
                state = Text(row.state, style=_STYLES[row.state])
                if row.hit:
                    state.append(" " + row.hit, style="bold yellow")
                table.add_row(
                    str(row.idx),
                    Text(row.tool),
                    Text(row.args),
                    Text(", ".join(map(str, row.deps))),
                    state,
                    took,
                    Text(row.outcome, style="red" if row.state in ("failed", "skipped") else ""),
                )
        if hidden:
            table.caption = f"{hidden} more task(s) not shown (finished ones first)"
        return table

    def _fit(self, rows: list[_Row | _SpecRow]) -> list[_Row | _SpecRow]:
        """The rows that fit the screen: ended speculative calls drop out first, then finished
        tasks, oldest first."""
        answer = _PLAN_LINES + 2 if self.answer and not self.final else 0  # the answer panel's height
        room = max(5, self.console.size.height - _PLAN_LINES - 10 - answer)
        if len(rows) <= room:
            return rows
        drop = len(rows) - room
        dropped: set[int] = set()
        for droppable in (_ended_spec, _done_task):
            for n, row in enumerate(rows):
                if len(dropped) == drop:
                    break
                if droppable(row):
                    dropped.add(n)
        kept = [r for n, r in enumerate(rows) if n not in dropped]
        return kept[-room:]


def _ended_spec(row: _Row | _SpecRow) -> bool:
    return isinstance(row, _SpecRow) and row.state != "speculating"


def _done_task(row: _Row | _SpecRow) -> bool:
    return isinstance(row, _Row) and row.state == "done"


def _took(start: float | None, end: float | None, now: float) -> str:
    """A row's time: its duration, or how long it has run so far."""
    if start is None:
        return ""
    return _secs(max(0.0, now - start)) if end is None else _secs(end - start)
