"""Timeline pictures of a run: one bar per task on a time axis, as SVG or self-contained HTML.

Each round has a lane showing when its plan streamed (``plan-R``) and when the joiner read the
results (``join-R``), followed by one row per task of the round. A task's bar (``task-N``) runs
from its start to its end, coloured by state; a task that never ran is a short dashed mark at
the moment it was given up. Arrows run from the end of each dependency to the start of the task
that needed it (``class="dep"``); control dependencies (a sequential tool's barriers,
``TaskRecord.after``) are dashed grey arrows (``class="after"``). A call that held an exclusive
group says so in its tooltip. Rounds are separated by a line. ``join()`` has no bar of its own: the joiner
band shows it.

A run with a drafter adds, under each round's tasks, one row per speculative call its draft
started (``spec-K``, the K-th call of the run): an outlined, hatched bar from its start to its
end, coloured by how it ended (``class="spec hit"``, ``missed``, ``cancelled`` or ``failed``),
its tooltip saying what happened (``speculative call of draft task 2: hit, adopted by task 2,
saved 0.41s``). A hit is linked to the task that adopted it by a green line
(``class="spec-hit"``), and that task's row has a tick where the planner made it ready
(``class="spec-ready"``): the bar left of the tick is the time speculation saved, which the
task's tooltip states too. A trace without speculation draws as before.

The picture is drawn from a trace (``trace_dict``), so it is scrubbed of secrets like the trace
is, and a saved trace can be drawn again: every text of it (speculative calls' included) is
scrubbed again and escaped for both text and attributes (quotes included), so no field of a
trace can add markup or attributes, and a malformed number is drawn as 0. Row height and text
size shrink as the number of rows grows, so 3 tasks and 300 both read well.
"""

from __future__ import annotations

import html
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from llmcompiler._records import RunResult
from llmcompiler._redact import scrub
from llmcompiler._text import one_line, safe_text
from llmcompiler._trace import trace_dict

__all__ = ["SPECULATION_COLOURS", "STATE_COLOURS", "render_timeline", "write_timeline"]

STATE_COLOURS: dict[str, str] = {"done": "#43a047", "failed": "#e53935", "skipped": "#9e9e9e"}
"""Bar colour of each task state."""
SPECULATION_COLOURS: dict[str, str] = {
    "hit": "#43a047",
    "missed": "#9e9e9e",
    "cancelled": "#fb8c00",
    "failed": "#e53935",
}
"""Outline colour of each way a speculative call ended (``SpeculativeCall.state``)."""
_AFTER_COLOUR = "#9e9e9e"
_PLAN_COLOUR = "#64b5f6"
_JOIN_COLOUR = "#ba68c8"

_LABEL_W = 260
_PLOT_W = 900
_RIGHT = 60
_WIDTH = _LABEL_W + _PLOT_W + _RIGHT
_FONTS = "Helvetica, Arial, DejaVu Sans, sans-serif"
_INVALID_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

_MAX_TEXT = 100_000  # characters of one text of the trace drawn (labels and cells are cut far shorter)
_MAX_ROUNDS = 10_000  # a damaged trace claiming a billion rounds still draws

Format = Literal["svg", "html"]


def render_timeline(
    run: RunResult | Mapping[str, Any],
    *,
    format: Format = "svg",
    question: str = "",
    model: str | None = None,
) -> str:
    """Draw a run's timeline.

    Args:
        run: a ``RunResult``, or a trace (``trace_dict`` or a trace file's JSON).
        format: ``"svg"`` for an SVG document, ``"html"`` for an HTML page holding the SVG
            and a table of the tasks (no external resources).
        question: the question, shown as the title (a trace brings its own).
        model: the model name, shown under the title (a trace brings its own).

    Returns:
        The document's text. Task bars have ids ``task-N``; plan and joiner bands
        ``plan-R`` and ``join-R``; speculative calls ``spec-K`` (the K-th call started).

    Example:
        >>> from llmcompiler import LLMCompiler, tool
        >>> from llmcompiler.testing import ScriptedLLM
        >>> @tool
        ... def square(x: int) -> int:
        ...     '''Square a number.'''
        ...     return x * x
        >>> llm = ScriptedLLM(["1. square(3)\\n2. square(4)\\n3. join()", "Action: Finish(9, 16)"])
        >>> svg = render_timeline(LLMCompiler(llm=llm, tools=[square]).run("squares?"))
        >>> svg.count('class="task ')
        2
    """
    trace = trace_dict(run, question=question, model=model) if isinstance(run, RunResult) else dict(run)
    if format == "svg":
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + _Drawing(trace).svg()
    if format == "html":
        return _html(trace)
    raise ValueError(f"format must be 'svg' or 'html', got {format!r}")


def write_timeline(
    run: RunResult | Mapping[str, Any],
    path: str | os.PathLike[str],
    *,
    question: str = "",
    model: str | None = None,
) -> Path:
    """Write a run's timeline to ``path``: HTML for ``.html``/``.htm``, else SVG.

    This writes a file: from async code, call it through ``asyncio.to_thread``.

    Returns:
        The path written.
    """
    out = Path(path)
    fmt: Format = "html" if out.suffix.lower() in (".html", ".htm") else "svg"
    out.write_text(render_timeline(run, format=fmt, question=question, model=model), encoding="utf-8")
    return out


def _text(value: Any) -> str:
    """A trace's value as text for the picture: safe, scrubbed, without characters XML refuses."""
    return _INVALID_XML.sub("", scrub(safe_text(value, _MAX_TEXT)))


def escape(value: Any) -> str:
    """``value`` as text escaped for XML and HTML, in element text and in quoted attributes alike."""
    return html.escape(_text(value), quote=True)


def _int(value: Any) -> int:
    """A whole number of the trace; 0 for anything else."""
    return int(_num(value))


def _deps(task: Mapping[str, Any], key: str = "deps") -> list[int]:
    """A task's dependencies (``deps``) or control dependencies (``after``): the whole numbers
    listed (anything else is left out)."""
    deps = task.get(key)
    if not isinstance(deps, (list, tuple)):
        return []
    return [int(d) for d in deps if isinstance(d, (int, float)) and not isinstance(d, bool) and _num(d) == d]


def _num(value: Any) -> float:
    """A number of the trace; 0 for anything else (a hand-edited or damaged trace)."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def _secs(t: float) -> str:
    """A duration, to about three significant digits."""
    if t >= 1:
        return f"{t:.2f}s" if t < 10 else f"{t:.1f}s"
    ms = t * 1000
    if ms >= 10 or ms == 0:
        return f"{ms:.0f}ms"
    return f"{ms:.1f}ms" if ms >= 1 else f"{ms:.2f}ms"


def _tick(t: float, span: float) -> str:
    """An axis label: seconds when the run took a second or more, else milliseconds."""
    return f"{round(t, 6):g}s" if span >= 1 else f"{round(t * 1000, 6):g}ms"


def _nice_step(span: float, target: int = 8) -> float:
    raw = span / target
    power = 10.0 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * power:
            return m * power
    return 10 * power  # pragma: no cover - the loop always returns


def _call_text(task: Mapping[str, Any], number: str = "idx") -> str:
    """The task as the plan wrote it (``3. search($1)``), else rebuilt from its arguments;
    ``number`` names its number's key (a speculative call's is ``draft``)."""
    idx = _text(task.get(number))
    line = " ".join(_text(task.get("line") or "").split())
    if line:
        return line if line.startswith(idx) else f"{idx}. {line}"
    return f"{idx}. {_text(task.get('tool'))}({_args_text(task)})"


def _args_text(task: Mapping[str, Any]) -> str:
    args = task.get("args")
    if not isinstance(args, Mapping):
        return ""
    return ", ".join(f"{_text(k)}={_text(v) if not isinstance(v, str) else repr(_text(v))}" for k, v in args.items())


def _tasks(trace: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The trace's tasks but ``join()`` (and anything that is not a task, in a damaged trace)."""
    tasks = trace.get("tasks")
    if not isinstance(tasks, (list, tuple)):
        return []
    return [t for t in tasks if isinstance(t, Mapping) and t.get("tool") != "join"]


def _speculation(trace: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The trace's speculation summary; ``None`` without one (no drafter, an older trace, damage)."""
    spec = trace.get("speculation")
    return spec if isinstance(spec, Mapping) else None


def _spec_calls(trace: Mapping[str, Any]) -> list[tuple[int, Mapping[str, Any]]]:
    """The speculative calls, numbered from 1 in the order they started (anything that is not a
    call, in a damaged trace, is left out but keeps its number)."""
    spec = _speculation(trace)
    calls = spec.get("calls") if spec is not None else None
    if not isinstance(calls, (list, tuple)):
        return []
    return [(k, c) for k, c in enumerate(calls, start=1) if isinstance(c, Mapping)]


def _speculation_text(spec: Mapping[str, Any]) -> str:
    """The summary's short form: ``speculation 3/4 hits, 1 cancelled, saved 0.90s``."""
    text = f"speculation {_int(spec.get('hits'))}/{_int(spec.get('started'))} hits"
    if _int(spec.get("cancelled")):
        text += f", {_int(spec.get('cancelled'))} cancelled"
    return text + f", saved {_secs(_num(spec.get('time_saved_s') or 0.0))}"


def _hit(task: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """A task's speculative hit (``TaskRecord.speculative``), if it had one."""
    hit = task.get("speculative")
    return hit if isinstance(hit, Mapping) else None


def _summary(trace: Mapping[str, Any]) -> str:
    usage = trace.get("usage")
    usage = usage if isinstance(usage, Mapping) else {}
    parts = []
    if trace.get("model"):
        parts.append(_text(trace["model"]))
    parts.append(f"total {_secs(_num(trace.get('total_s') or 0.0))}")
    parts.append(f"tasks one after another {_secs(_num(trace.get('sequential_s') or 0.0))}")
    n = len(_tasks(trace))
    parts.append(f"{n} task{'s' if n != 1 else ''}")
    rounds = _int(trace.get("rounds") or 0)
    parts.append(f"{rounds} round{'s' if rounds != 1 else ''}")
    parts.append(f"tokens {_int(usage.get('prompt_tokens'))} in / {_int(usage.get('completion_tokens'))} out")
    if trace.get("cost_usd") is not None:
        parts.append(f"${_num(trace['cost_usd']):.4f}")
    spec = _speculation(trace)
    if spec is not None:
        parts.append(_speculation_text(spec))
    return " · ".join(parts)


class _Drawing:
    """Lays out one trace and writes its SVG."""

    def __init__(self, trace: Mapping[str, Any]) -> None:
        self.trace = trace
        self.tasks = _tasks(trace)
        timings = trace.get("timings")
        self.timings = [t for t in timings if isinstance(t, Mapping)] if isinstance(timings, (list, tuple)) else []
        self.specs = _spec_calls(trace)
        rounds = max(
            [
                _int(trace.get("rounds") or 0),
                len(self.timings),
                *(_int(t.get("round") or 1) for t in self.tasks),
                *(_int(c.get("round") or 1) for _, c in self.specs),
            ]
        )
        self.rounds = min(max(rounds, 1), _MAX_ROUNDS)
        n_rows = len(self.tasks) + len(self.specs) + self.rounds
        if n_rows <= 30:
            self.row_h = 24.0
        elif n_rows <= 100:
            self.row_h = 16.0
        elif n_rows <= 400:
            self.row_h = 12.0
        else:
            self.row_h = 8.0
        self.font = max(7.0, min(12.0, self.row_h - 4))
        self.show_durations = n_rows <= 150
        self.top = 96.0
        ends = [_num(trace.get("total_s") or 0.0)]
        for t in self.tasks:
            ends.extend(_num(t[k]) for k in ("start", "end") if t.get(k) is not None)
        for tm in self.timings:
            ends.extend(_num(v) for k, v in tm.items() if k != "round" and v is not None)
        for _, c in self.specs:
            ends.extend(_num(c[k]) for k in ("start", "end") if c.get(k) is not None)
        self.span = max(max(ends), 1e-3)

    def x(self, t: float) -> float:
        return _LABEL_W + max(0.0, t) / self.span * _PLOT_W

    def svg(self) -> str:
        out: list[str] = []
        rows = self.layout()
        height = self.top + len(rows) * self.row_h + 24
        out.append(
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height:.0f}" '
            f'viewBox="0 0 {_WIDTH} {height:.0f}" font-family="{_FONTS}" font-size="{self.font:g}">'
        )
        out.append(
            "<defs>"
            '<marker id="arrowhead" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" '
            'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker>'
            '<marker id="arrowhead-after" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" '
            f'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="{_AFTER_COLOUR}"/></marker>'
            '<pattern id="skipped-hatch" width="4" height="4" patternUnits="userSpaceOnUse" '
            'patternTransform="rotate(45)"><rect width="2" height="4" fill="#9e9e9e"/></pattern>'
            '<pattern id="spec-hatch" width="5" height="5" patternUnits="userSpaceOnUse" '
            'patternTransform="rotate(-45)"><rect width="1.5" height="5" fill="#000000" opacity="0.18"/></pattern>'
            "</defs>"
        )
        out.append(f'<rect width="{_WIDTH}" height="{height:.0f}" fill="#ffffff"/>')
        out.extend(self.header())
        out.extend(self.axis(height))
        out.extend(self.round_backgrounds(rows, height))
        out.extend(self.labels(rows))
        positions = self.positions(rows)
        spec_positions = self.spec_positions(rows)
        out.append('<g id="arrows" fill="none" stroke="#555">')
        out.extend(self.arrows(positions))
        out.append("</g>")
        out.append('<g id="tasks">')
        out.extend(self.bars(positions))
        out.append("</g>")
        if spec_positions:
            out.append('<g id="speculation">')
            out.extend(self.spec_bars(spec_positions, positions))
            out.append("</g>")
        out.append("</svg>")
        return "\n".join(out)

    def layout(self) -> list[tuple[str, Any]]:
        """Rows top to bottom: ``("round", R)`` lanes, ``("task", task)`` rows, then the round's
        ``("spec", (K, call))`` rows."""
        by_round: dict[int, list[Mapping[str, Any]]] = {}
        for t in self.tasks:
            by_round.setdefault(_int(t.get("round") or 1), []).append(t)
        specs_by_round: dict[int, list[tuple[int, Mapping[str, Any]]]] = {}
        for k, c in self.specs:
            specs_by_round.setdefault(_int(c.get("round") or 1), []).append((k, c))
        rows: list[tuple[str, Any]] = []
        for r in range(1, self.rounds + 1):
            rows.append(("round", r))
            rows.extend(("task", t) for t in sorted(by_round.get(r, ()), key=lambda t: _int(t["idx"])))
            rows.extend(("spec", kc) for kc in specs_by_round.get(r, ()))
        return rows

    def header(self) -> list[str]:
        title = one_line(str(self.trace.get("question") or "llmcompiler run"), 130)
        out = [
            f'<text x="12" y="22" font-size="15" font-weight="bold">{escape(title)}</text>',
            f'<text x="12" y="42" font-size="11" fill="#444">{escape(_summary(self.trace))}</text>',
        ]
        x = 12.0
        legend = [("plan streaming", _PLAN_COLOUR), ("joiner", _JOIN_COLOUR)]
        legend += list(STATE_COLOURS.items())
        for name, colour in legend:
            out.append(f'<rect x="{x:g}" y="52" width="12" height="10" fill="{colour}"/>')
            out.append(f'<text x="{x + 16:g}" y="61" font-size="10">{escape(name)}</text>')
            x += 26 + 6.2 * len(name)
        if self.specs:
            name = "speculative (outlined)"
            out.append(
                f'<rect x="{x:g}" y="52" width="12" height="10" fill="url(#spec-hatch)" stroke="#555" '
                'stroke-dasharray="3 2"/>'
            )
            out.append(f'<text x="{x + 16:g}" y="61" font-size="10">{escape(name)}</text>')
            x += 26 + 6.2 * len(name)
        out.append(f'<text x="{x:g}" y="61" font-size="10" fill="#555">→ dependency</text>')
        out.append(f'<text x="{x + 80:g}" y="61" font-size="10" fill="{_AFTER_COLOUR}">⇢ after (sequential)</text>')
        return out

    def axis(self, height: float) -> list[str]:
        step = _nice_step(self.span)
        out = ['<g id="axis" font-size="9" fill="#555">']
        k = 0
        while k * step <= self.span * 1.0001:
            t = k * step
            x = self.x(t)
            out.append(
                f'<line x1="{x:.1f}" y1="{self.top - 14:.1f}" x2="{x:.1f}" y2="{height - 20:.1f}" stroke="#eee"/>'
            )
            out.append(f'<text x="{x:.1f}" y="{self.top - 18:.1f}" text-anchor="middle">{_tick(t, self.span)}</text>')
            k += 1
        out.append("</g>")
        return out

    def round_backgrounds(self, rows: Sequence[tuple[str, Any]], height: float) -> list[str]:
        """Plan and joiner lanes, faint bands down the round's rows, and round separators."""
        out = ['<g id="rounds">']
        starts = [i for i, (kind, _) in enumerate(rows) if kind == "round"]
        for n, i in enumerate(starts):
            r = rows[i][1]
            y0 = self.top + i * self.row_h
            y1 = self.top + (starts[n + 1] if n + 1 < len(starts) else len(rows)) * self.row_h
            if n > 0:
                out.append(
                    f'<line class="round-separator" x1="0" y1="{y0:.1f}" x2="{_WIDTH}" y2="{y0:.1f}" '
                    'stroke="#333" stroke-dasharray="6 3"/>'
                )
            tm = self.timings[r - 1] if r - 1 < len(self.timings) else None
            if tm is None:
                continue
            bar_h = self.row_h * 0.7
            by = y0 + (self.row_h - bar_h) / 2
            for name, colour, a, b, what in (
                ("plan", _PLAN_COLOUR, tm.get("plan_start"), tm.get("plan_end"), "plan streaming"),
                ("join", _JOIN_COLOUR, tm.get("join_start"), tm.get("join_end"), "joiner"),
            ):
                if a is None or b is None:
                    continue
                xa, xb = self.x(_num(a)), self.x(_num(b))
                w = max(xb - xa, 1.5)
                band_h = max(y1 - y0 - self.row_h, 0.0)
                out.append(
                    f'<rect class="{name}-band" x="{xa:.1f}" y="{y0 + self.row_h:.1f}" width="{w:.1f}" '
                    f'height="{band_h:.1f}" fill="{colour}" opacity="0.10"/>'
                )
                tip = f"round {r} {what}: {_secs(_num(a))} → {_secs(_num(b))} ({_secs(_num(b) - _num(a))})"
                out.append(
                    f'<rect id="{name}-{r}" class="{name}" x="{xa:.1f}" y="{by:.1f}" width="{w:.1f}" '
                    f'height="{bar_h:.1f}" fill="{colour}"><title>{escape(tip)}</title></rect>'
                )
            first = tm.get("plan_first_chunk")
            if first is not None:
                xf = self.x(_num(first))
                out.append(
                    f'<line x1="{xf:.1f}" y1="{by:.1f}" x2="{xf:.1f}" y2="{by + bar_h:.1f}" stroke="#1565c0" '
                    'stroke-width="1.5"><title>first plan text</title></line>'
                )
        out.append("</g>")
        return out

    def labels(self, rows: Sequence[tuple[str, Any]]) -> list[str]:
        out = ['<g id="labels">']
        limit = int((_LABEL_W - 16) / (self.font * 0.58))
        for i, (kind, item) in enumerate(rows):
            y = self.top + (i + 0.5) * self.row_h + self.font * 0.35
            if kind == "round":
                out.append(f'<text x="8" y="{y:.1f}" font-weight="bold">round {item}: plan · join</text>')
            elif kind == "spec":
                text = one_line("~ draft " + _call_text(item[1], "draft"), limit)
                out.append(f'<text class="spec-label" x="8" y="{y:.1f}" fill="#666">{escape(text)}</text>')
            else:
                text = one_line(_call_text(item), limit)
                out.append(f'<text x="8" y="{y:.1f}">{escape(text)}</text>')
        out.append("</g>")
        return out

    def positions(self, rows: Sequence[tuple[str, Any]]) -> dict[int, tuple[float, float, float, Mapping[str, Any]]]:
        """Each task's bar: x start, x end, row centre."""
        pos: dict[int, tuple[float, float, float, Mapping[str, Any]]] = {}
        plan_end = {_int(tm.get("round") or n): _num(tm.get("plan_end") or 0.0) for n, tm in enumerate(self.timings, 1)}
        for i, (kind, task) in enumerate(rows):
            if kind != "task":
                continue
            y = self.top + (i + 0.5) * self.row_h
            if task.get("start") is not None:
                xa = self.x(_num(task["start"]))
                xb = self.x(_num(task["end"] if task.get("end") is not None else task["start"]))
            else:  # never ran: mark it where it was given up, after its dependencies
                dep_ends = [pos[d][1] for d in (*_deps(task), *_deps(task, "after")) if d in pos]
                xa = max(dep_ends) if dep_ends else self.x(plan_end.get(_int(task.get("round") or 1), 0.0))
                xb = xa
            pos[_int(task["idx"])] = (xa, xb, y, task)
        return pos

    def spec_positions(
        self, rows: Sequence[tuple[str, Any]]
    ) -> dict[int, tuple[float, float, float, Mapping[str, Any]]]:
        """Each speculative call's bar: x start, x end, row centre."""
        pos: dict[int, tuple[float, float, float, Mapping[str, Any]]] = {}
        for i, (kind, item) in enumerate(rows):
            if kind != "spec":
                continue
            k, call = item
            start = _num(call.get("start") or 0.0)
            end = _num(call["end"]) if call.get("end") is not None else start
            pos[k] = (self.x(start), self.x(max(start, end)), self.top + (i + 0.5) * self.row_h, call)
        return pos

    def spec_bars(
        self,
        specs: Mapping[int, tuple[float, float, float, Mapping[str, Any]]],
        tasks: Mapping[int, tuple[float, float, float, Mapping[str, Any]]],
    ) -> list[str]:
        """The speculative calls' outlined bars, each hit's link to the task that adopted it, and
        that task's tick where the planner made it ready."""
        out: list[str] = []
        bar_h = self.row_h * 0.7
        for k, (xa, xb, y, call) in specs.items():
            state = _text(call.get("state") or "")
            colour = SPECULATION_COLOURS.get(state, "#607d8b")
            width = max(xb - xa, 2.0)
            adopted = _adopter(call, tasks)
            if adopted is not None:
                tx, _, ty, task = tasks[adopted]
                out.append(
                    f'<path class="spec-hit" data-from="spec-{k}" data-to="{adopted}" '
                    f'd="M {xa:.1f} {y:.1f} L {tx:.1f} {ty:.1f}" fill="none" stroke="{colour}" '
                    'stroke-width="1.2" stroke-dasharray="2 2"/>'
                )
                hit = _hit(task)
                if hit is not None and hit.get("ready") is not None:
                    xr = self.x(_num(hit["ready"]))
                    saved = _secs(_num(hit.get("saved_s") or 0.0))
                    tip = f"task {adopted} ready to run here: speculation saved {saved}"
                    out.append(
                        f'<line class="spec-ready" data-to="{adopted}" x1="{xr:.1f}" y1="{ty - bar_h / 2 - 2:.1f}" '
                        f'x2="{xr:.1f}" y2="{ty + bar_h / 2 + 2:.1f}" stroke="#1b5e20" stroke-width="1.5">'
                        f"<title>{escape(tip)}</title></line>"
                    )
            out.append(
                f'<rect id="spec-{k}" class="spec {escape(state)}" x="{xa:.1f}" y="{y - bar_h / 2:.1f}" '
                f'width="{width:.1f}" height="{bar_h:.1f}" fill="url(#spec-hatch)" stroke="{colour}" '
                f'stroke-width="1.5" stroke-dasharray="3 2"><title>{escape(_spec_tooltip(call, tasks))}</title></rect>'
            )
            if self.show_durations and call.get("start") is not None and call.get("end") is not None:
                took = max(0.0, _num(call["end"]) - _num(call["start"]))
                out.append(
                    f'<text x="{xa + width + 4:.1f}" y="{y + self.font * 0.35:.1f}" font-size="{self.font - 1:g}" '
                    f'fill="#888">{_secs(took)} {escape(state)}</text>'
                )
        return out

    def arrows(self, pos: Mapping[int, tuple[float, float, float, Mapping[str, Any]]]) -> list[str]:
        out: list[str] = []
        opacity = 0.5 if len(pos) <= 60 else 0.25
        # Data edges (deps) solid; control edges (after: a sequential tool's barriers) dashed grey.
        kinds = (
            ("deps", "dep", 'marker-end="url(#arrowhead)"'),
            ("after", "after", f'stroke="{_AFTER_COLOUR}" stroke-dasharray="4 3" marker-end="url(#arrowhead-after)"'),
        )
        for idx, (xa, _, y, task) in pos.items():
            for field, css, style in kinds:
                for dep in _deps(task, field):
                    if dep not in pos:
                        continue
                    x1, y1 = pos[dep][1], pos[dep][2]
                    dx = max(10.0, abs(xa - x1) / 2)
                    out.append(
                        f'<path class="{css}" data-from="{dep}" data-to="{idx}" '
                        f'd="M {x1:.1f} {y1:.1f} C {x1 + dx:.1f} {y1:.1f}, {xa - dx:.1f} {y:.1f}, {xa:.1f} {y:.1f}" '
                        f'stroke-opacity="{opacity}" {style}/>'
                    )
        return out

    def bars(self, pos: Mapping[int, tuple[float, float, float, Mapping[str, Any]]]) -> list[str]:
        out: list[str] = []
        bar_h = self.row_h * 0.7
        for idx, (xa, xb, y, task) in pos.items():
            state = str(task.get("state") or "done")
            colour = STATE_COLOURS.get(state, "#607d8b")
            ran = task.get("start") is not None
            width = max(xb - xa, 2.0) if ran else 4.0
            fill = colour if ran else "url(#skipped-hatch)"
            stroke = "" if ran else f' stroke="{colour}" stroke-dasharray="2 1"'
            out.append(
                f'<rect id="task-{idx}" class="task {escape(state)}" x="{xa:.1f}" y="{y - bar_h / 2:.1f}" '
                f'width="{width:.1f}" height="{bar_h:.1f}" fill="{fill}"{stroke}>'
                f"<title>{escape(_tooltip(task))}</title></rect>"
            )
            if self.show_durations and task.get("duration") is not None:
                out.append(
                    f'<text x="{xa + width + 4:.1f}" y="{y + self.font * 0.35:.1f}" font-size="{self.font - 1:g}" '
                    f'fill="#555">{_secs(_num(task["duration"]))}</text>'
                )
        return out


def _adopter(call: Mapping[str, Any], tasks: Mapping[int, Any]) -> int | None:
    """The task that took a speculative call's result, if it is a hit and that task is drawn."""
    if call.get("state") != "hit":
        return None
    adopted = call.get("adopted_by")
    if not isinstance(adopted, (int, float)) or isinstance(adopted, bool) or _num(adopted) != adopted:
        return None
    return int(adopted) if int(adopted) in tasks else None


def _spec_tooltip(call: Mapping[str, Any], tasks: Mapping[int, tuple[float, float, float, Mapping[str, Any]]]) -> str:
    """What happened to a speculative call (``speculative call of draft task 2: hit, adopted by
    task 2, saved 410ms``), then its line, arguments and times."""
    state = _text(call.get("state") or "")
    if state == "hit":
        what = f"hit, adopted by task {_text(call.get('adopted_by'))}"
        task_idx = _adopter(call, tasks)
        hit = _hit(tasks[task_idx][3]) if task_idx is not None else None
        if hit is not None:
            what += f", saved {_secs(_num(hit.get('saved_s') or 0.0))}"
    elif state == "missed":
        what = "missed: no task of the plan matched it, its result was dropped"
    elif state == "cancelled":
        what = "cancelled: no task of the plan could match it"
    elif state == "failed":
        what = "failed: " + one_line(_text(call.get("error") or ""), 300)
    else:
        what = state
    lines = [f"speculative call of draft task {_text(call.get('draft'))}: {what}"]
    lines.append(one_line(_call_text(call, "draft"), 300))
    if call.get("args"):
        lines.append("args: " + one_line(_args_text(call), 300))
    if call.get("start") is not None:
        start = _num(call["start"])
        end = _num(call["end"]) if call.get("end") is not None else start
        lines.append(f"{_secs(start)} → {_secs(end)} ({_secs(max(0.0, end - start))})")
    return "\n".join(lines)


def _tooltip(task: Mapping[str, Any]) -> str:
    lines = [one_line(_call_text(task), 300)]
    hit = _hit(task)
    if hit is not None:
        how = "joined the call in flight" if hit.get("joined") else "its result was ready"
        lines.append(
            f"speculative hit from draft task {_text(hit.get('draft'))}, "
            f"saved {_secs(_num(hit.get('saved_s') or 0.0))} ({how})"
        )
    if task.get("args"):
        lines.append("args: " + one_line(_args_text(task), 300))
    state = task.get("state")
    if task.get("start") is not None:
        lines.append(f"{state}: {_secs(_num(task['start']))} → {_secs(_num(task.get('end') or task['start']))}")
        if _int(task.get("attempts")) > 1:
            lines.append(f"attempts: {_int(task['attempts'])}")
    else:
        lines.append(f"{state} (never ran)")
    if _deps(task):
        lines.append("deps: " + ", ".join(str(d) for d in _deps(task)))
    if _deps(task, "after"):
        lines.append("after: " + ", ".join(str(d) for d in _deps(task, "after")))
    if task.get("exclusive"):
        lines.append("exclusive: " + one_line(_text(task["exclusive"]), 100))
    if task.get("thought"):
        lines.append("thought: " + one_line(_text(task["thought"]), 300))
    if task.get("error"):
        lines.append("error: " + one_line(_text(task["error"]), 300))
    else:
        lines.append("result: " + one_line(_plain(task.get("result")), 300))
    return "\n".join(lines)


def _plain(value: Any) -> str:
    return _text(value) if isinstance(value, str) else _text(_repr(value))


def _repr(value: Any) -> str:
    """A result as Python writes it (``[1, 'a']``), or its safe text when that fails."""
    try:
        return repr(value)
    except Exception:  # a trace value too deep or too long to print
        return safe_text(value)


def _html(trace: Mapping[str, Any]) -> str:
    svg = _Drawing(trace).svg()
    title = _text(trace.get("question") or "llmcompiler run")
    rows = []
    for t in _tasks(trace):
        start = "" if t.get("start") is None else _secs(_num(t["start"]))
        end = "" if t.get("end") is None else _secs(_num(t["end"]))
        outcome = t.get("error") if t.get("error") else _plain(t.get("result"))
        rows.append(
            f'<tr class="{escape(t.get("state"))}"><td>{escape(t.get("idx"))}</td>'
            f"<td>{escape(t.get('tool'))}</td><td>{escape(t.get('state'))}</td>"
            f"<td>{start}</td><td>{end}</td>"
            f"<td>{escape(', '.join(str(d) for d in _deps(t)))}</td>"
            f"<td>{escape(', '.join(str(d) for d in _deps(t, 'after')))}</td>"
            f"<td>{escape(one_line(_text(outcome), 300))}</td></tr>"
        )
    colours = "".join(f"tr.{s} td:nth-child(3){{color:{c}}}" for s, c in STATE_COLOURS.items())
    spec_table = _spec_table(trace)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(one_line(title, 80))} · llmcompiler timeline</title>"
        "<style>body{font-family:sans-serif;margin:16px}svg{max-width:100%;height:auto}"
        "rect.task:hover{stroke:#000;stroke-width:1.5}table{border-collapse:collapse;font-size:12px;margin-top:16px}"
        "td,th{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}" + colours + "</style>"
        "</head><body>\n"
        f"<h1>{escape(one_line(title, 200))}</h1>\n"
        f"<p>{escape(_summary(trace))}</p>\n"
        f"<p><b>Answer:</b> {escape(trace.get('answer') or trace.get('error') or '')}</p>\n"
        f"{svg}\n"
        "<table><thead><tr><th>#</th><th>tool</th><th>state</th><th>start</th><th>end</th><th>deps</th><th>after</th>"
        "<th>result or error</th></tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table>\n"
        f"{spec_table}</body></html>\n"
    )


def _spec_table(trace: Mapping[str, Any]) -> str:
    """The speculative calls as a table (empty without speculation)."""
    spec = _speculation(trace)
    if spec is None:
        return ""
    rows = []
    for k, c in _spec_calls(trace):
        start = "" if c.get("start") is None else _secs(_num(c["start"]))
        end = "" if c.get("end") is None else _secs(_num(c["end"]))
        adopted = "" if c.get("adopted_by") is None else _text(c["adopted_by"])
        rows.append(
            f'<tr class="spec {escape(c.get("state"))}"><td>{k}</td><td>{escape(c.get("round"))}</td>'
            f"<td>{escape(one_line(_call_text(c, 'draft'), 300))}</td><td>{escape(c.get('state'))}</td>"
            f"<td>{start}</td><td>{end}</td><td>{escape(adopted)}</td>"
            f"<td>{escape(one_line(_text(c.get('error') or ''), 300))}</td></tr>"
        )
    errors = spec.get("errors")
    notes = [one_line(_text(e), 300) for e in errors] if isinstance(errors, (list, tuple)) else []
    drafter = _text(spec.get("drafter") or "")
    usage = spec.get("usage")
    usage = usage if isinstance(usage, Mapping) else {}
    head = (
        f"{_speculation_text(spec)} · drafter {drafter}, {_int(spec.get('drafted'))} calls drafted, "
        f"tokens {_int(usage.get('prompt_tokens'))} in / {_int(usage.get('completion_tokens'))} out"
    )
    return (
        f'<p><b>Speculative calls</b></p>\n<p class="speculation">{escape(head)}</p>\n'
        + "".join(f'<p class="draft-error">draft error: {escape(n)}</p>\n' for n in notes)
        + "<table><thead><tr><th>#</th><th>round</th><th>draft line</th><th>state</th><th>start</th><th>end</th>"
        "<th>adopted by</th><th>error</th></tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table>\n"
    )
