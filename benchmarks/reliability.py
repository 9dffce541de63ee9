"""Reliability benchmarks: fuzzed plans, injected tool faults, cancellations, rate accuracy.

Run with ``python -m benchmarks.reliability`` (``make bench-reliability``); ``--quick`` for a
smoke run, ``--json PATH`` to choose where the results go (default
``benchmarks/results/reliability.json``). Everything goes through the public API.

Four measurements, each against a target:

1. **Fuzzed plans** (10,000): plans written the way real models write them (Windows paths and
   invalid escapes, 5,000-digit numbers as arguments, task numbers, ``$N`` and inside strings,
   BOM / zero-width / no-break spaces, bare ``\\r`` line ends, one-line code fences, NUL, deep
   nesting, mismatched and unbalanced brackets, unterminated strings, unknown tools, references
   to missing or later tasks, ``$N`` paths, thoughts, ``join()``, trailing junk) mixed with
   well-formed lines, each streamed to ``execute_plan`` in random chunks. Counted: crashes
   (anything raised but our ``RunError``/``UserError``), hangs (a guard timeout per plan),
   parsed tasks without exactly one record, well-formed lines that lost their record or their
   result, and non-blank lines that left no trace (no task, error or thought mentions them).
   Target: 0 crashes, 0 hangs (and 0 of the rest).
2. **Injected faults** (1,000 runs of ``LLMCompiler`` with a scripted planner): about 30% of
   tool calls raise (assorted exceptions, ``SystemExit``, ``GeneratorExit``, ``StopIteration``,
   ``CancelledError``, their own ``TimeoutError``, an exception whose message cannot be read),
   time out, hang (a sync tool blocked on an event released at the end; an async tool awaiting
   forever; a compute-bound worker sleeping) or return odd objects (``10**5000``, a list nested
   5,000 deep, a lone surrogate, an object whose ``__str__``/``__repr__`` raise, a 2 MB string,
   a list holding itself). Each run's trace and timeline are written. Counted: records lost,
   runs that raised anything but our errors, failed tasks whose error does not name their tool,
   dependents of a failed task not skipped, asyncio tasks left after a run, threads left
   (besides idle pool workers) after the hung ones are released, child processes beyond the
   process pool, trace and timeline failures. Target: 0 each.
3. **Cancellations** (200 runs): ``arun`` cancelled at a random moment while the plan streams
   and tools run (threads, the loop, the process pool). Counted: runs whose cancellation did
   not end in ``CancelledError`` promptly, asyncio tasks, threads and processes left. Target: 0.
4. **Rate accuracy**: a tool with ``rate_limit=10`` and 1.5 times more calls than it may start,
   all ready at once, for 10 s of wall time (2 s in ``--quick``). Admitted calls against the
   limiter's definition (``llmcompiler._ratelimit``: calls spaced ``1/rate`` apart, burst 1,
   so ``rate * duration`` calls start in ``duration`` seconds). Target: within 1%.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import itertools
import json
import math
import multiprocessing
import os
import random
import re
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks._machine import header, load_average, machine_info, met
from llmcompiler import (
    LLMCompiler,
    Message,
    ParseError,
    PlanChunk,
    PlanEnded,
    RunError,
    RunEvent,
    RunResult,
    TaskParsed,
    TaskRecord,
    ThoughtParsed,
    Tool,
    ToolLimits,
    Usage,
    UserError,
    execute_plan,
    tool,
    trace_dict,
    write_timeline,
)
from llmcompiler.testing import FunctionLLM, Reply

__all__ = [
    "DEFAULT_JSON",
    "FUZZ_TOOLS",
    "RATE_TOLERANCE",
    "FuzzPlan",
    "bench_cancel",
    "bench_faults",
    "bench_fuzz",
    "bench_rate",
    "fault_plan",
    "fuzz_plan",
    "main",
    "run_all",
]

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "reliability.json"
RATE_TOLERANCE = 0.01
FAULT_SHARE = 0.30
_EXAMPLES = 12  # examples kept per kind of failure, for the report
_IDLE_WORKER = re.compile(r"llmcompiler-tool-\d+$")  # a pool thread waiting for work (named so by _threads)


def _clip(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _exc_text(exc: BaseException) -> str:
    """``Type: message`` for the report; never raises (the message may be unreadable)."""
    try:
        message = str(exc)
    except Exception:
        message = "<unreadable message>"
    return _clip(f"{type(exc).__name__}: {message}")


def _note(examples: dict[str, list[Any]], kind: str, example: Any) -> None:
    bucket = examples.setdefault(kind, [])
    if len(bucket) < _EXAMPLES:
        bucket.append(example)


async def _guarded(coro: Awaitable[Any], guard_s: float) -> tuple[str, Any]:
    """Run ``coro`` in its own task under a guard timeout.

    Returns ``(outcome, value)``: ``("ok", result)``, ``("our_error", exc)`` for ``RunError`` /
    ``UserError``, ``("crash", exc)`` for anything else raised, ``("hang", None)`` when the guard
    expired (the task is then cancelled; ``("stuck", None)`` if even that did not end it).
    """
    task = asyncio.ensure_future(coro)
    done, _ = await asyncio.wait({task}, timeout=guard_s)
    if not done:
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=2.0)
        if done and not task.cancelled():
            task.exception()  # retrieved: the hang is what counts
        return ("hang" if done else "stuck"), None
    if task.cancelled():
        return "crash", asyncio.CancelledError("the run was cancelled though nobody cancelled it")
    exc = task.exception()
    if exc is None:
        return "ok", task.result()
    if isinstance(exc, RunError | UserError):
        return "our_error", exc
    if isinstance(exc, KeyboardInterrupt):
        raise exc
    return "crash", exc


def _leftover_tasks(before: set[asyncio.Task[Any]]) -> set[asyncio.Task[Any]]:
    """The asyncio tasks alive now that were not alive before (the caller's own excluded)."""
    me = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not me and t not in before and not t.done()}


def _task_name(task: asyncio.Task[Any]) -> str:
    coro = task.get_coro()
    name = getattr(coro, "__qualname__", None) or type(coro).__name__
    return f"{task.get_name()} {name}"


def _cpu_slots() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _thread_census(baseline: set[int]) -> tuple[list[str], int]:
    """Threads alive now that were not at ``baseline``: ``(names of busy ones, idle pool workers)``."""
    busy: list[str] = []
    idle = 0
    for thread in threading.enumerate():
        if thread.ident in baseline:
            continue
        if _IDLE_WORKER.fullmatch(thread.name):
            idle += 1
        else:
            busy.append(thread.name)
    return busy, idle


async def _wait_until(done: Callable[[], bool], limit_s: float) -> None:
    """Check ``done`` every 20 ms (it reads what threads change) until true or ``limit_s`` passed."""
    deadline = time.monotonic() + limit_s
    while True:
        if done() or time.monotonic() >= deadline:
            return
        await asyncio.sleep(0.02)


async def _settle_threads(baseline: set[int], settle_s: float) -> dict[str, Any]:
    """Wait up to ``settle_s`` for the threads started since ``baseline`` to finish what they run;
    report those still running something, and the idle pool workers (they end after their pool's
    idle timeout and are not counted as left over)."""
    deadline = time.monotonic() + settle_s
    while True:
        busy, idle = _thread_census(baseline)
        if not busy or time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.05)
    return {"threads_left": len(busy), "threads_left_names": sorted(Counter(busy).items()), "idle_workers": idle}


async def _settle_processes(settle_s: float) -> dict[str, Any]:
    """Child processes beyond the process pool's workers, after up to ``settle_s`` for them to go."""
    limit = _cpu_slots()
    deadline = time.monotonic() + settle_s
    while True:
        children = multiprocessing.active_children()
        if len(children) <= limit or time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.05)
    return {"children": len(children), "pool_size": limit, "processes_left": max(0, len(children) - limit)}


def _chunks(text: str, rng: random.Random, max_chunks: int = 300) -> list[str]:
    """Random chunk boundaries: one character, small pieces, large pieces or the whole text.

    A long text gets pieces large enough for at most about ``max_chunks`` of them: the fuzz is
    about what the text holds and where it is cut, not about streaming speed."""
    if not text:
        return []
    top = max(rng.choice((1, 3, 8, 32, 200, len(text))), 2 * len(text) // max_chunks)
    out: list[str] = []
    pos = 0
    while pos < len(text):
        size = rng.randint(1, top)
        out.append(text[pos : pos + size])
        pos += size
    return out


async def _stream(chunks: Sequence[str], yield_every: float, rng: random.Random) -> AsyncIterator[str]:
    for chunk in chunks:
        if rng.random() < yield_every:
            await asyncio.sleep(0)  # let started tools run between chunks, as a real stream does
        yield chunk


# -- 1. fuzzed plans


@tool
def echo(x: Any = None) -> Any:
    """Return its argument.

    Args:
        x: anything.
    """
    return x


@tool
def shout(text: str = "") -> str:
    """Upper-case a text (a sync tool).

    Args:
        text: the text.
    """
    return text.upper()


@tool
async def aecho(x: Any = None) -> Any:
    """Return its argument after one turn of the loop (an async tool).

    Args:
        x: anything.
    """
    await asyncio.sleep(0)
    return x


@tool
async def pair(x: Any = None, y: Any = None) -> list[Any]:
    """Return both arguments.

    Args:
        x: anything.
        y: anything.
    """
    return [x, y]


FUZZ_TOOLS: tuple[Tool, ...] = (echo, shout, aecho, pair)

_INVISIBLE = ("\ufeff", "\u200b", "\u00a0", "\u200c", "\u200d", "\u2060")
_WORDS = ("alpha", "beta", "gamma", "Tokyo", "Oslo", "price", "x", "it is", "a_b", "42 km")
_BIG = 5000
_DEEP_DICT = '{"a": ' * 1000 + "1" + "}" * 1000


@dataclass
class FuzzPlan:
    """A fuzzed plan and what its well-formed lines must give.

    Attributes:
        text: the plan.
        planted: for each well-formed line, its task number -> (offset of the line in ``text``,
            the result its tool must return, the line).
        junk: the kinds of junk lines it holds.
        ended_at: the offset of the first junk line that ends the plan (``join()``, the end
            marker); the well-formed lines after it need not run.
    """

    text: str
    planted: dict[int, tuple[int, Any, str]] = field(default_factory=dict)
    junk: list[str] = field(default_factory=list)
    ended_at: int | None = None


_BIG_NUMBERS = tuple(str(1 + k % 9) + "".join(random.Random(k).choices("0123456789", k=_BIG - 1)) for k in range(16))


def _digits(rng: random.Random) -> str:
    """A 5,000-digit number (one of a few made once: making one per line would dominate the run)."""
    return rng.choice(_BIG_NUMBERS)


def _literal(rng: random.Random) -> tuple[str, Any]:
    """A well-formed argument and the value it means."""
    kind = rng.randrange(7)
    if kind == 0:
        n = rng.randint(-1000, 10**6)
        return str(n), n
    if kind == 1:
        w = rng.choice(_WORDS)
        return f'"{w}"', w
    if kind == 2:
        w = rng.choice(_WORDS)
        return f"'{w}'", w
    if kind == 3:
        items = [rng.randint(0, 99) for _ in range(rng.randint(0, 4))]
        return "[" + ", ".join(map(str, items)) + "]", items
    if kind == 4:
        return '{"k": 1, "v": [true, null]}'.replace("true", "True").replace("null", "None"), {
            "k": 1,
            "v": [True, None],
        }
    if kind == 5:
        return rng.choice((("None", None), ("True", True), ("False", False)))
    return "2.5", 2.5


def _well_formed(rng: random.Random, n: int, planted: dict[int, tuple[int, Any, str]]) -> tuple[str, Any]:
    """A correct call numbered ``n`` and its expected result (references only earlier good lines)."""
    strings = [k for k, (_, v, _) in planted.items() if isinstance(v, str)]
    kind = rng.randrange(8)
    if kind == 0 and planted:
        k = rng.choice(list(planted))
        return f"{n}. echo(${k})", planted[k][1]
    if kind == 1 and strings:
        k = rng.choice(strings)
        return f'{n}. shout("v=${{{k}}}")', ("v=" + planted[k][1]).upper()
    if kind == 2:
        w = rng.choice(_WORDS)
        return f'{n}. shout(text="{w}")', w.upper()
    if kind == 3:
        text, value = _literal(rng)
        return f"{n}. aecho(x={text})", value
    if kind == 4:
        (a, va), (b, vb) = _literal(rng), _literal(rng)
        return f"{n}. pair(\n    {a},\n    y={b},\n)", [va, vb]
    if kind == 5:
        (a, va), (b, vb) = _literal(rng), _literal(rng)
        return f"{n}.  pair({a}, {b})  # both", [va, vb]
    text, value = _literal(rng)
    return f"{n}. echo({text})", value


def _junk(rng: random.Random, n: int, last: int) -> tuple[str, str, bool]:
    """A line real models write that is wrong or odd: ``(kind, text, uses task number n)``."""
    big = _digits(rng)
    choices: list[tuple[str, str, bool]] = [
        ("windows_path", f'{n}. echo("C:\\users\\{rng.choice(_WORDS)}\\new\\x")', True),
        ("windows_path", f"{n}. echo('D:\\data\\x4\\d\\N{{nope}}')", True),
        ("windows_path", f'{n}. echo("C:\\temp\\")', True),
        ("bad_escape", f'{n}. echo("\\U00110000 \\ud800 \\u12 \\x4 \\q")', True),
        ("big_number", f"{n}. echo({big})", True),
        ("big_number", f"{n}. echo(x=-{big}.5e3)", True),
        ("big_number", f'{n}. echo("cost ${big}")', True),
        ("big_number", f"{n}. echo(1e{big})", True),
        ("big_task_number", f'{big}. echo("x")', False),
        ("big_ref", f"{n}. echo(${big})", True),
        ("big_ref", f'{n}. echo("${{{big}}}")', True),
        ("nul", f'{n}. echo("a\x00b")', True),
        ("nul", "\x00", False),
        ("nul", f"{n}. ec\x00ho(1)", True),
        ("invisible", rng.choice(_INVISIBLE), False),
        ("invisible", f"{rng.choice(_INVISIBLE)}{n}. echo({rng.choice(_INVISIBLE)}1)", True),
        ("control", f'{n}. echo("\x1b]0;title\x07\x1b[2J")', True),
        ("deep", f"{n}. echo({'[' * 5000}{']' * 5000})", True),
        ("deep", f"{n}. echo({_DEEP_DICT})", True),
        ("deep", f"{n}. echo({'(' * 3000}1{')' * 3000})", True),
        ("unbalanced", f"{n}. echo({'[' * rng.choice((3, 5000))}1)", True),
        ("mismatched", f'{n}. pair(x="a"], y=2)', True),
        ("mismatched", f"{n}. echo([1, 2)", True),
        ("mismatched", f'{n}. echo({{"a": 1])', True),
        ("mismatched", f"{n}. echo(x=1))", True),
        ("unterminated", f'{n}. echo("abc', True),
        ("unterminated", f"{n}. echo('it's here')", True),
        ("unterminated", f'{n}. echo("""three', True),
        ("unknown_tool", f'{n}. search("x")', True),
        ("unknown_tool", f'{n}. os.system("rm -rf /")', True),
        ("code", f'{n}. echo(__import__("os").getcwd())', True),
        ("code", f"{n}. echo(lambda: 1)", True),
        ("code", f"{n}. echo(*[1], **{{}})", True),
        ("missing_ref", f"{n}. echo(${n + 7})", True),
        ("missing_ref", f"{n}. echo(${n})", True),
        ("missing_ref", f'{n}. echo("${n + 1} and $0")', True),
        ("ref_path", f"{n}. echo($1.name)", True),
        ("ref_path", f"{n}. echo($1[0])", True),
        ("ref_path", f'{n}. echo(${{1}}["k"])', True),
        ("thought", f"Thought: I will call {rng.choice(_WORDS)} (maybe).", False),
        ("thought", "**Thought**: ", False),
        ("fence", f'```{n}. echo("fenced")```', True),
        ("fence", "```python", False),
        ("prose", "Here is the plan:", False),
        ("prose", f"- {n}. echo(1)", True),
        ("prose", f"**{n}.** echo(2)", True),
        ("numbering", f"{n}) echo(3)", True),
        ("numbering", f"{n}.echo(4)", True),
        ("numbering", f"{last}. echo('again')" if last else f"{n}. echo('first')", not last),
        ("trailing", f'{n}. echo("x") and then more', True),
        ("trailing", f"{n}. echo(1) {big}", True),
        ("kwargs", f"{n}. echo(x=1, x=2)", True),
        ("kwargs", f"{n}. echo(1, x=2)", True),
        ("kwargs", f"{n}. pair(1, 2, 3)", True),
        ("huge_string", f'{n}. echo("{"y" * 20_000}")', True),
        ("join", f"{n}. join()", True),
        ("join", "join(", False),
        ("end_marker", "<END_OF_PLAN>", False),
    ]
    return rng.choice(choices)


def fuzz_plan(rng: random.Random, *, max_lines: int = 24, junk_share: float = 0.55) -> FuzzPlan:
    """A random plan of well-formed and junk lines, with odd line ends and invisible prefixes."""
    plan = FuzzPlan(text="")
    parts: list[str] = []
    offset = 0
    n = 1
    for _ in range(rng.randint(1, max_lines)):
        if rng.random() < junk_share:
            kind, line, numbered = _junk(rng, n, n - 1)
            plan.junk.append(kind)
            if kind in ("join", "end_marker") and plan.ended_at is None:
                plan.ended_at = offset
            if numbered:
                n += 1
            planted = None
        else:
            line, value = _well_formed(rng, n, plan.planted)
            if rng.random() < 0.1:
                line = rng.choice(_INVISIBLE) + line  # a BOM or zero-width space before the number
            elif rng.random() < 0.05:
                line = rng.choice(("  ", "\t", "\u00a0\u00a0")) + line
            planted = (n, value)
            n += 1
        if rng.random() < 0.15:
            thought = f"Thought: step {n} {rng.choice(_WORDS)}"
            parts.append(thought + "\n")
            offset += len(thought) + 1
        if planted is not None:
            plan.planted[planted[0]] = (offset, planted[1], line)
        end = rng.choices(("\n", "\r\n", "\r", "\n\n"), weights=(80, 8, 9, 3))[0]
        parts.append(line + end)
        offset += len(line) + len(end)
    if rng.random() < 0.6:
        parts.append(f"{n}. join()\n")
        if rng.random() < 0.3:
            parts.append(rng.choice(("<END_OF_PLAN>", "Thank you!\n", f"{n + 1}. echo(1)\n", "```\n")))
    plan.text = "".join(parts)
    return plan


_BLANKS = re.compile(r"[\s\x00-\x1f\x7f\u200b-\u200d\u2060\ufeff\u00a0]+")
_LINE_END = re.compile(r"\r\n|\r|\n")
_FENCE = re.compile(r"`{3,}[\w+-]*")


def _norm(text: str) -> str:
    return _BLANKS.sub("", text)


def _physical_lines(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    pos = 0
    for m in _LINE_END.finditer(text):
        out.append((pos, text[pos : m.start()]))
        pos = m.end()
    out.append((pos, text[pos:]))
    return out


def _unaccounted(text: str, end_offset: int, texts: list[str], thoughts: list[str]) -> list[str]:
    """Non-blank lines before the plan's end that no task, error or thought mentions."""
    missing: list[str] = []
    for start, line in _physical_lines(text):
        if start >= end_offset:
            break
        n = _norm(line)
        if not n or n.startswith("#") or _FENCE.fullmatch(n) or "<END_OF_PLAN>" in n:
            continue
        key = n.strip("`")[:12]
        if any(key in t for t in texts) or any(len(t) >= 4 and t[:12] in n for t in texts):
            continue
        if n.lower().startswith(("thought", "**thought")) and (any(t and t in n for t in thoughts) or "" in thoughts):
            continue
        missing.append(_clip(repr(line), 160))
    return missing


@dataclass
class _FuzzTally:
    plans: int = 0
    lines: int = 0
    chunks: int = 0
    records: int = 0
    planted: int = 0
    ok_runs: int = 0
    our_errors: int = 0
    crashes: int = 0
    hangs: int = 0
    parsed_without_record: int = 0
    duplicate_records: int = 0
    records_without_line: int = 0
    planted_lost: int = 0
    planted_wrong: int = 0
    lines_unaccounted: int = 0
    max_plan_s: float = 0.0
    threads_peak: int = 0
    junk: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[Any]] = field(default_factory=dict)


async def _fuzz_one(plan: FuzzPlan, label: str, rng: random.Random, guard_s: float, tally: _FuzzTally) -> None:
    chunks = _chunks(plan.text, rng)
    events: list[Any] = []
    fed = [0]
    end_offset = [len(plan.text)]

    def on_event(event: RunEvent) -> None:
        if isinstance(event, PlanChunk):
            fed[0] += len(event.text)
        elif isinstance(event, PlanEnded):
            end_offset[0] = min(end_offset[0], fed[0])
        elif isinstance(event, TaskParsed | ParseError | ThoughtParsed):
            events.append(event)

    t0 = time.perf_counter()
    outcome, value = await _guarded(execute_plan(_stream(chunks, 0.2, rng), FUZZ_TOOLS, on_event=on_event), guard_s)
    tally.max_plan_s = max(tally.max_plan_s, time.perf_counter() - t0)
    tally.threads_peak = max(tally.threads_peak, threading.active_count())
    tally.plans += 1
    tally.chunks += len(chunks)
    tally.lines += len(_physical_lines(plan.text))
    tally.junk.update(plan.junk)
    example = {"plan": label, "text": _clip(repr(plan.text), 1500)}
    records: list[TaskRecord]
    if outcome == "ok":
        tally.ok_runs += 1
        records = value
    elif outcome == "our_error":
        tally.our_errors += 1
        _note(tally.examples, "our_error", {**example, "error": _exc_text(value)})
        records = list(getattr(value, "tasks", []))
    elif outcome == "crash":
        tally.crashes += 1
        tb = "".join(traceback.format_exception(value))[-1500:]
        _note(tally.examples, "crash", {**example, "error": _exc_text(value), "traceback": tb})
        return
    else:
        tally.hangs += 1
        _note(tally.examples, outcome, example)
        return
    tally.records += len(records)
    by_idx: dict[int, TaskRecord] = {}
    for record in records:
        if record.idx in by_idx:
            tally.duplicate_records += 1
            _note(tally.examples, "duplicate_record", {"plan": label, "idx": record.idx})
        by_idx[record.idx] = record
    parsed = {e.idx for e in events if isinstance(e, TaskParsed | ParseError) and e.idx is not None}
    for idx in sorted(parsed - set(by_idx)):
        tally.parsed_without_record += 1
        _note(tally.examples, "parsed_without_record", {"plan": label, "idx": idx})
    for idx in sorted(set(by_idx) - parsed):
        tally.records_without_line += 1
        _note(tally.examples, "record_without_line", {"plan": label, "idx": idx})
    ended = min(end_offset[0], len(plan.text) if plan.ended_at is None else plan.ended_at)
    for idx, (offset, expected, line) in plan.planted.items():
        if offset >= ended:
            continue  # after the plan ended (a join() or end marker before it)
        tally.planted += 1
        got_record = by_idx.get(idx)
        if got_record is None:
            tally.planted_lost += 1
            before = _clip(repr(plan.text[max(0, offset - 160) : offset]), 200)
            _note(tally.examples, "well_formed_lost", {"plan": label, "line": line, "after": before})
        elif got_record.error is not None or got_record.result != expected:
            tally.planted_wrong += 1
            got = got_record.error if got_record.error is not None else _clip(repr(got_record.result), 200)
            before = _clip(repr(plan.text[max(0, offset - 160) : offset]), 200)
            _note(tally.examples, "well_formed_wrong", {"plan": label, "line": line, "after": before, "got": got})
    texts = [_norm(e.line) for e in events if isinstance(e, TaskParsed | ParseError)]
    thoughts = [_norm(e.text) for e in events if isinstance(e, ThoughtParsed)]
    missing = _unaccounted(plan.text, end_offset[0], texts, thoughts)
    tally.lines_unaccounted += len(missing)
    for line in missing[:2]:
        _note(tally.examples, "line_unaccounted", {"plan": label, "line": line})


async def bench_fuzz(n_plans: int = 10_000, *, seed: int = 10, guard_s: float = 10.0) -> dict[str, Any]:
    """Fuzzed plans streamed in random chunks through ``execute_plan``.

    Args:
        n_plans: how many plans.
        seed: plan ``i`` is ``fuzz_plan(random.Random(f"{seed}:{i}"))`` (reproducible one by one).
        guard_s: seconds a plan may take before it counts as a hang.

    Returns:
        The counts (crashes, hangs, parsed tasks without a record, well-formed lines lost or
        wrong, lines with no trace), examples of each failure, the junk kinds used, and ``met``
        (no crash and no hang).
    """
    tally = _FuzzTally()
    t0 = time.perf_counter()
    for i in range(n_plans):
        rng = random.Random(f"{seed}:{i}")
        await _fuzz_one(fuzz_plan(rng), f"{seed}:{i}", rng, guard_s, tally)
    elapsed = time.perf_counter() - t0
    return {
        "n_plans": tally.plans,
        "seed": seed,
        "guard_s": guard_s,
        "lines": tally.lines,
        "chunks": tally.chunks,
        "records": tally.records,
        "well_formed_lines_checked": tally.planted,
        "runs_returned": tally.ok_runs,
        "runs_raised_our_error": tally.our_errors,
        "crashes": tally.crashes,
        "hangs": tally.hangs,
        "parsed_without_record": tally.parsed_without_record,
        "duplicate_records": tally.duplicate_records,
        "records_without_line": tally.records_without_line,
        "well_formed_lost": tally.planted_lost,
        "well_formed_wrong": tally.planted_wrong,
        "lines_unaccounted": tally.lines_unaccounted,
        "junk_kinds": dict(sorted(tally.junk.items())),
        "max_plan_s": tally.max_plan_s,
        "threads_peak": tally.threads_peak,
        "elapsed_s": elapsed,
        "examples": tally.examples,
        "met": tally.crashes == 0 and tally.hangs == 0,
    }


# -- 2. injected faults

_ODD_MODES = ("big_int", "deep_list", "surrogate", "bad_str", "huge_str", "cycle")
_RAISE_MODES = (
    "raise",
    "system_exit",
    "generator_exit",
    "stop_iteration",
    "stop_async_iteration",
    "cancelled",
    "own_timeout",
    "unreadable",
)
FAULT_MODES: tuple[str, ...] = (*_RAISE_MODES, "slow", "hang", *_ODD_MODES)
_CPU_MODES = ("raise", "system_exit", "slow", "hang", "big_int", "bad_str")
_EXCEPTIONS: tuple[type[Exception], ...] = (ValueError, KeyError, RuntimeError, OSError, ZeroDivisionError, TypeError)
FAULT_TIMEOUT = 0.05
HUGE_CHARS = 2_000_000
"""The huge string a tool returns (a web page, a file): far past every clipping limit."""
CPU_TIMEOUT = 0.5


class Unprintable:
    """A result whose ``__str__`` and ``__repr__`` raise (module level: it crosses processes)."""

    def __str__(self) -> str:
        raise RuntimeError("no str for you")

    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


class UnreadableError(Exception):
    """An exception whose message cannot be read."""

    def __str__(self) -> str:
        raise RuntimeError("no message for you")


def _deep_list(depth: int = 5000) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def _odd(mode: str) -> Any:
    if mode == "big_int":
        return 10**5000
    if mode == "deep_list":
        return _deep_list()
    if mode == "surrogate":
        return "lone \ud800 surrogate"
    if mode == "bad_str":
        return Unprintable()
    if mode == "huge_str":
        return "z" * HUGE_CHARS
    if mode == "cycle":
        cycle: list[Any] = [1]
        cycle.append(cycle)
        return cycle
    raise AssertionError(mode)


def _raise(mode: str) -> None:
    if mode == "raise":
        raise random.choice(_EXCEPTIONS)(f"injected fault ({mode})")
    if mode == "system_exit":
        raise SystemExit(2)
    if mode == "generator_exit":
        raise GeneratorExit
    if mode == "stop_iteration":
        next(iter([]))
    if mode == "stop_async_iteration":
        raise StopAsyncIteration
    if mode == "cancelled":
        raise asyncio.CancelledError
    if mode == "own_timeout":
        raise TimeoutError("the tool's own deadline passed")
    if mode == "unreadable":
        raise UnreadableError
    raise AssertionError(mode)


class FaultLab:
    """Fault-injecting tools, their in-flight counts and the event that holds hung threads.

    ``fsync`` runs in a thread, ``fasync`` on the loop, ``fcpu`` in the process pool; each does
    what its ``mode`` argument says (``"ok"`` or one of ``FAULT_MODES``).
    """

    def __init__(self) -> None:
        self.release = threading.Event()
        self._lock = threading.Lock()
        self.in_flight = 0
        self.hung = 0
        self.calls: Counter[str] = Counter()
        self.tools: tuple[Tool, ...] = (self._sync_tool(), self._async_tool(), fcpu)

    def _enter(self, mode: str) -> None:
        with self._lock:
            self.in_flight += 1
            self.calls[mode] += 1

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _sync_tool(self) -> Tool:
        lab = self

        def fsync(mode: str, x: Any = None) -> Any:
            """A sync tool that does what ``mode`` says.

            Args:
                mode: ``ok`` or a fault.
                x: returned when ``mode`` is ``ok``.
            """
            lab._enter(mode)
            try:
                if mode == "ok":
                    return x
                if mode == "slow":
                    time.sleep(FAULT_TIMEOUT * 4)
                    return x
                if mode == "hang":
                    with lab._lock:
                        lab.hung += 1
                    lab.release.wait()
                    return x
                if mode in _ODD_MODES:
                    return _odd(mode)
                _raise(mode)
                return x
            finally:
                lab._leave()

        return tool(fsync)

    def _async_tool(self) -> Tool:
        lab = self

        async def fasync(mode: str, x: Any = None) -> Any:
            """An async tool that does what ``mode`` says.

            Args:
                mode: ``ok`` or a fault.
                x: returned when ``mode`` is ``ok``.
            """
            with lab._lock:
                lab.calls[mode] += 1
            if mode == "ok":
                await asyncio.sleep(0)
                return x
            if mode == "slow":
                await asyncio.sleep(FAULT_TIMEOUT * 4)
                return x
            if mode == "hang":
                await asyncio.Event().wait()  # forever: only the timeout ends it
                return x
            if mode in _ODD_MODES:
                return _odd(mode)
            _raise(mode)
            return x

        return tool(fasync)


@tool(compute_bound=True)
def fcpu(mode: str, x: int = 0) -> Any:
    """A compute-bound tool (run in the process pool) that does what ``mode`` says.

    Args:
        mode: ``ok`` or a fault.
        x: doubled when ``mode`` is ``ok``.
    """
    if mode == "ok":
        return 2 * x
    if mode == "slow":
        time.sleep(CPU_TIMEOUT * 4)
        return x
    if mode == "hang":
        time.sleep(60)  # past any timeout: the worker must be replaced
        return x
    if mode in ("big_int", "bad_str"):
        return _odd(mode)
    _raise(mode)
    return x


@dataclass(frozen=True)
class FaultTask:
    """One planned call of a fault plan."""

    idx: int
    tool: str
    mode: str
    deps: tuple[int, ...]
    line: str


@dataclass(frozen=True)
class FaultPlan:
    """A plan of fault-tool calls: its text, its calls and the number of its ``join()``."""

    text: str
    tasks: tuple[FaultTask, ...]
    join: int


def fault_plan(
    rng: random.Random,
    *,
    first: int = 1,
    fault_share: float = FAULT_SHARE,
    cpu_share: float = 0.08,
    max_tasks: int = 10,
) -> FaultPlan:
    """A plan of fault-tool calls numbered from ``first``, ending in ``join()``.

    About ``fault_share`` of the calls do a fault drawn from ``FAULT_MODES`` (``_CPU_MODES`` for
    the compute-bound tool); about a third pass an earlier result on, whole (``$N``) or spliced
    into a string (``"v=$N"``).
    """
    tasks: list[FaultTask] = []
    lines: list[str] = []
    for idx in range(first, first + rng.randint(1, max_tasks)):
        cpu = rng.random() < cpu_share
        name = "fcpu" if cpu else rng.choice(("fsync", "fasync"))
        mode = "ok"
        if rng.random() < fault_share:
            mode = rng.choice(_CPU_MODES if cpu else FAULT_MODES)
        deps: tuple[int, ...] = ()
        arg = str(rng.randint(0, 99))
        earlier = [t.idx for t in tasks]
        if earlier and not cpu and rng.random() < 0.35:
            dep = rng.choice(earlier)
            deps = (dep,)
            arg = rng.choice((f"${dep}", f'"v=${dep}"', f"[${dep}, 1]"))
        line = f'{idx}. {name}("{mode}", {arg})'
        tasks.append(FaultTask(idx=idx, tool=name, mode=mode, deps=deps, line=line))
        lines.append(line)
    join = first + len(tasks)
    lines.append(f"{join}. join()")
    return FaultPlan(text="\n".join(lines) + "\n", tasks=tuple(tasks), join=join)


class _Planner:
    """Replies to plan calls with the scripted plans in turn, to join calls with Replan once
    (when asked) and then Finish."""

    def __init__(self, plans: list[str], replan: bool) -> None:
        self.plans = plans
        self.replan = replan
        self.plan_calls = 0
        self.join_calls = 0

    def __call__(self, messages: Sequence[Message], purpose: str) -> Reply:
        if purpose == "plan":
            self.plan_calls += 1
            return self.plans[min(self.plan_calls, len(self.plans)) - 1]
        self.join_calls += 1
        if self.replan and self.join_calls == 1:
            return "Thought: some tasks failed.\nAction: Replan(try again)"
        return "Thought: done.\nAction: Finish(done)"


def _as_result(exc: BaseException, start: float) -> RunResult:
    """A ``RunResult`` holding the records a failed run kept, for its trace and timeline."""
    tasks = list(getattr(exc, "tasks", []))
    now = asyncio.get_running_loop().time()
    return RunResult(answer="", tasks=tasks, rounds=1, usage=Usage(), start=start, end=now)


def _write_artifacts(result: RunResult, out_dir: Path, n: int, error: str | None) -> list[str]:
    """Write the run's trace (``trace_dict``, as JSON) and timeline; return what failed."""
    failures: list[str] = []
    question = f"fault run {n}"
    try:
        data = trace_dict(result, question=question, error=error)
        text = json.dumps(data, ensure_ascii=False)
        (out_dir / "trace.json").write_text(text, encoding="utf-8")
        json.loads((out_dir / "trace.json").read_text(encoding="utf-8"))
    except Exception as exc:
        failures.append(f"trace: {_exc_text(exc)}")
        data = None
    try:
        write_timeline(result, out_dir / ("timeline.html" if n % 2 else "timeline.svg"), question=question)
        if data is not None:
            write_timeline(data, out_dir / "from_trace.svg")  # as the CLI draws a saved trace
    except Exception as exc:
        failures.append(f"timeline: {_exc_text(exc)}")
    return failures


@dataclass
class _LeakTally:
    leaked: set[asyncio.Task[Any]] = field(default_factory=set)
    runs_with_leftovers: int = 0

    def check(self, before: set[asyncio.Task[Any]], examples: dict[str, list[Any]], label: str) -> None:
        left = _leftover_tasks(before)
        if left:
            self.runs_with_leftovers += 1
            new = left - self.leaked
            self.leaked |= left
            if new:
                _note(examples, "asyncio_tasks_left", {"run": label, "tasks": sorted(_task_name(t) for t in new)[:5]})

    def cancel_all(self) -> None:
        for task in self.leaked:
            task.cancel()


async def _warm_process_pool() -> None:
    """Start the process pool before the baselines are taken (its manager thread is not a leak)."""
    await execute_plan('1. fcpu("ok", 1)\n', [fcpu])


async def bench_faults(
    n_runs: int = 1000, *, seed: int = 20, guard_s: float = 30.0, settle_s: float = 12.0
) -> dict[str, Any]:
    """``LLMCompiler`` runs over fault-injecting tools (see the module docstring).

    Args:
        n_runs: how many runs (a new agent each; one in ten asks for one replan).
        seed: seeds the plans.
        guard_s: seconds a run may take before it counts as a hang.
        settle_s: seconds to wait, after releasing the hung threads, for threads to end.

    Returns:
        Counts of records lost, runs that raised something else than our errors, asyncio tasks,
        threads and processes left over, trace and timeline failures; the faults injected by
        kind; examples of each failure; ``met`` when every count is 0.
    """
    rng = random.Random(seed)
    lab = FaultLab()
    await _warm_process_pool()
    examples: dict[str, list[Any]] = {}
    leaks = _LeakTally()
    counts: Counter[str] = Counter()
    failed_by_mode: Counter[str] = Counter()
    max_children = 0
    t0 = time.perf_counter()
    # Files are written off the loop (as write_trace/write_timeline ask), in one thread of ours
    # started before the baseline, so it is not counted as a leftover.
    writer = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="reliability-writer")
    await asyncio.get_running_loop().run_in_executor(writer, int)
    baseline = {t.ident for t in threading.enumerate() if t.ident is not None}
    with tempfile.TemporaryDirectory(prefix="llmcompiler-reliability-") as tmp:
        out_dir = Path(tmp)
        for n in range(n_runs):
            plans = [fault_plan(rng)]
            replan = rng.random() < 0.1
            if replan:
                plans.append(fault_plan(rng, first=plans[0].join + 1))
            planner = _Planner([p.text for p in plans], replan)
            agent = LLMCompiler(
                llm=FunctionLLM(planner, chunk_tokens=rng.choice((1, 4, 64))),
                tools=lab.tools,
                timeout=FAULT_TIMEOUT,
                tool_limits={"fcpu": ToolLimits(timeout=CPU_TIMEOUT)},
                max_concurrency=rng.choice((None, 2, 8)),
            )
            before = set(asyncio.all_tasks())
            start = asyncio.get_running_loop().time()
            outcome, value = await _guarded(agent.arun(f"question {n}"), guard_s)
            await asyncio.sleep(0)
            leaks.check(before, examples, str(n))
            counts[outcome] += 1
            label = {"run": n, "plans": [p.text for p in plans]}
            if outcome in ("hang", "stuck", "crash"):
                detail = _exc_text(value) if value is not None else outcome
                _note(examples, f"run_{outcome}", {**label, "error": detail})
                if outcome != "crash":
                    continue
                result = _as_result(value, start)
                error: str | None = detail
            elif outcome == "our_error":
                _note(examples, "run_raised_our_error", {**label, "error": _exc_text(value)})
                result = _as_result(value, start)
                error = _exc_text(value)
            else:
                result = value
                error = None
            # Every call of every plan the planner handed out must have its one record.
            served = plans[: planner.plan_calls]
            planned = {t.idx: t for p in served for t in p.tasks}
            counts["planned_calls"] += len(planned)
            counts["planned_faults"] += sum(t.mode != "ok" for t in planned.values())
            joins = {p.join for p in served}
            seen = Counter(r.idx for r in result.tasks)
            lost = sorted(i for i in planned if seen[i] == 0)
            if outcome == "ok":
                lost += sorted(i for i in joins if seen[i] == 0)
            doubled = sorted(i for i, c in seen.items() if c > 1)
            stray = sorted(i for i in seen if i not in planned and i not in joins)
            counts["records_lost"] += len(lost)
            counts["records_doubled"] += len(doubled)
            counts["records_stray"] += len(stray)
            if lost or doubled or stray:
                _note(examples, "records", {**label, "lost": lost, "doubled": doubled, "stray": stray})
            by_idx = {r.idx: r for r in result.tasks}
            for record in result.tasks:
                task = planned.get(record.idx)
                if task is None or record.error is None:
                    continue
                failed_by_mode[task.mode] += 1
                failed_deps = [d for d in task.deps if d in by_idx and by_idx[d].error is not None]
                if failed_deps:
                    # A dependent of a failed task is given up, never run, and says which one failed.
                    if record.start is not None or f"dependency {failed_deps[0]} failed" not in record.error:
                        counts["dependents_not_skipped"] += 1
                        _note(examples, "dependent_not_skipped", {**label, "idx": record.idx, "error": record.error})
                elif task.tool not in record.error:
                    counts["errors_without_tool"] += 1
                    _note(examples, "error_without_tool", {**label, "idx": record.idx, "error": record.error})
                elif task.mode == "ok" and not task.deps and "timed out" not in record.error:
                    _note(examples, "ok_call_failed", {**label, "idx": record.idx, "error": record.error})
            loop = asyncio.get_running_loop()
            failures = await loop.run_in_executor(writer, _write_artifacts, result, out_dir, n, error)
            for failure in failures:
                counts["artifact_failures"] += 1
                _note(examples, "artifact_failure", {**label, "error": failure})
            max_children = max(max_children, len(multiprocessing.active_children()))
    writer.shutdown(wait=False)
    runs_s = time.perf_counter() - t0
    hung = lab.hung
    lab.release.set()
    await _wait_until(lambda: lab.in_flight == 0, settle_s)
    leaks.cancel_all()
    threads = await _settle_threads(baseline, settle_s)
    processes = await _settle_processes(settle_s)
    crashes = counts["crash"] + counts["hang"] + counts["stuck"]
    faults = {m: c for m, c in sorted(lab.calls.items()) if m != "ok"}
    total_calls = sum(lab.calls.values())
    out = {
        "n_runs": n_runs,
        "seed": seed,
        "fault_share_planned": FAULT_SHARE,
        "planned_calls": counts["planned_calls"],
        "planned_faults": counts["planned_faults"],
        "tool_timeout_s": FAULT_TIMEOUT,
        "cpu_timeout_s": CPU_TIMEOUT,
        "calls_in_this_process": total_calls,
        "faults_in_this_process": faults,
        "fault_share_measured": counts["planned_faults"] / max(1, counts["planned_calls"]),
        "failed_records_by_mode": dict(sorted(failed_by_mode.items())),
        "runs_answered": counts["ok"],
        "runs_raised_our_error": counts["our_error"],
        "runs_raised_other": counts["crash"],
        "runs_hung": counts["hang"] + counts["stuck"],
        "records_lost": counts["records_lost"],
        "records_doubled": counts["records_doubled"],
        "records_stray": counts["records_stray"],
        "errors_without_tool": counts["errors_without_tool"],
        "dependents_not_skipped": counts["dependents_not_skipped"],
        "asyncio_tasks_left": len(leaks.leaked),
        "runs_with_asyncio_tasks_left": leaks.runs_with_leftovers,
        "threads_hung_on_purpose": hung,
        **threads,
        **processes,
        "max_children_seen": max_children,
        "artifact_failures": counts["artifact_failures"],
        "runs_s": runs_s,
        "examples": examples,
    }
    out["met"] = (
        out["records_lost"] == 0
        and out["records_doubled"] == 0
        and out["errors_without_tool"] == 0
        and out["dependents_not_skipped"] == 0
        and crashes == 0
        and out["asyncio_tasks_left"] == 0
        and out["threads_left"] == 0
        and out["processes_left"] == 0
        and out["artifact_failures"] == 0
    )
    return out


# -- 3. cancellations


class _CancelLab:
    """Tools that take a little time in each place a call can run, and one that hangs."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self._lock = threading.Lock()
        self.in_flight = 0
        self.hung = 0

        def csync(ms: int, after: Any = None) -> int:
            """Sleep in a thread.

            Args:
                ms: milliseconds.
                after: an earlier result (only orders the calls).
            """
            with self._lock:
                self.in_flight += 1
            try:
                time.sleep(ms / 1000)
                return ms
            finally:
                with self._lock:
                    self.in_flight -= 1

        def chang(ms: int, after: Any = None) -> int:
            """Block a thread until the benchmark ends.

            Args:
                ms: returned.
                after: an earlier result (only orders the calls).
            """
            with self._lock:
                self.hung += 1
            self.release.wait()
            return ms

        async def casync(ms: int, after: Any = None) -> int:
            """Sleep on the loop.

            Args:
                ms: milliseconds.
                after: an earlier result (only orders the calls).
            """
            await asyncio.sleep(ms / 1000)
            return ms

        self.tools: tuple[Tool, ...] = (tool(csync), tool(timeout=0.2)(chang), tool(casync), csleep)


@tool(compute_bound=True)
def csleep(ms: int, after: Any = None) -> int:
    """Sleep in a worker process.

    Args:
        ms: milliseconds.
        after: an earlier result (only orders the calls).
    """
    time.sleep(ms / 1000)
    return ms


def cancel_plan(rng: random.Random) -> str:
    """A plan of 3 to 10 sleeping calls in every place a call runs, some depending on others."""
    lines = []
    n = rng.randint(3, 10)
    for idx in range(1, n + 1):
        name = rng.choices(("csync", "casync", "csleep", "chang"), weights=(40, 40, 12, 8))[0]
        ms = rng.randint(5, 60)
        after = f", ${rng.randrange(1, idx)}" if idx > 1 and rng.random() < 0.3 else ""
        lines.append(f"{idx}. {name}({ms}{after})")
    lines.append(f"{n + 1}. join()")
    return "\n".join(lines) + "\n"


async def bench_cancel(
    n_runs: int = 200, *, seed: int = 30, max_delay_s: float = 0.15, settle_s: float = 12.0
) -> dict[str, Any]:
    """``arun`` cancelled at a random moment; what is left afterwards.

    Args:
        n_runs: how many runs.
        seed: seeds the plans and the moments.
        max_delay_s: the cancel comes uniformly within this many seconds of the start.
        settle_s: seconds to wait, after releasing the hung threads, for threads to end.

    Returns:
        How many runs were cancelled mid-way (the rest finished first), runs whose cancellation
        did not end in ``CancelledError`` within 5 s, asyncio tasks, threads and processes
        left; ``met`` when the leftovers and bad cancellations are all 0.
    """
    rng = random.Random(seed)
    lab = _CancelLab()
    await execute_plan("1. csleep(1)\n", [csleep])  # the process pool exists before the baseline
    baseline = {t.ident for t in threading.enumerate() if t.ident is not None}
    examples: dict[str, list[Any]] = {}
    leaks = _LeakTally()
    counts: Counter[str] = Counter()
    max_children = 0
    t0 = time.perf_counter()
    for n in range(n_runs):
        text = cancel_plan(rng)
        agent = LLMCompiler(
            llm=FunctionLLM(
                _Planner([text], replan=False), token_delay=rng.choice((0.0, 0.0005, 0.002)), chunk_tokens=2
            ),
            tools=lab.tools,
            max_concurrency=rng.choice((None, 3)),
        )
        before = set(asyncio.all_tasks())
        task = asyncio.ensure_future(agent.arun(f"question {n}"))
        await asyncio.sleep(rng.uniform(0.0, max_delay_s))
        finished_first = task.done()
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=5.0)
        if not done:
            counts["cancel_ignored"] += 1
            _note(examples, "cancel_ignored", {"run": n, "plan": text})
            leaks.leaked.add(task)
            continue
        if finished_first:
            counts["finished_before_cancel"] += 1
            early = None if task.cancelled() else task.exception()
            if early is not None:
                _note(examples, "raised_before_cancel", {"run": n, "error": _exc_text(early)})
        elif task.cancelled():
            counts["cancelled"] += 1
        else:
            exc = task.exception()
            counts["not_cancelled_error"] += 1
            _note(examples, "cancel_became", {"run": n, "plan": text, "outcome": _exc_text(exc) if exc else "a result"})
        await asyncio.sleep(0)
        leaks.check(before, examples, str(n))
        max_children = max(max_children, len(multiprocessing.active_children()))
    runs_s = time.perf_counter() - t0
    hung = lab.hung
    lab.release.set()
    await _wait_until(lambda: lab.in_flight == 0, settle_s)
    leaks.cancel_all()
    threads = await _settle_threads(baseline, settle_s)
    processes = await _settle_processes(settle_s)
    out = {
        "n_runs": n_runs,
        "seed": seed,
        "max_delay_s": max_delay_s,
        "cancelled_mid_run": counts["cancelled"],
        "finished_before_cancel": counts["finished_before_cancel"],
        "cancel_not_cancelled_error": counts["not_cancelled_error"],
        "cancel_ignored": counts["cancel_ignored"],
        "asyncio_tasks_left": len(leaks.leaked),
        "runs_with_asyncio_tasks_left": leaks.runs_with_leftovers,
        "threads_hung_on_purpose": hung,
        "sync_calls_still_running": lab.in_flight,
        **threads,
        **processes,
        "max_children_seen": max_children,
        "runs_s": runs_s,
        "examples": examples,
    }
    out["met"] = (
        out["cancel_not_cancelled_error"] == 0
        and out["cancel_ignored"] == 0
        and out["asyncio_tasks_left"] == 0
        and out["threads_left"] == 0
        and out["processes_left"] == 0
    )
    return out


# -- 4. rate accuracy


async def bench_rate(rate: float = 10.0, duration_s: float = 10.0) -> dict[str, Any]:
    """Calls admitted by ``rate_limit=rate`` over ``duration_s`` seconds of wall time.

    All calls are ready at once (one plan of ``1.5 * rate * duration_s`` independent calls);
    after ``duration_s`` (plus a margin) the run is cancelled. A call is admitted in the window
    when its body started within ``[t0, t0 + duration_s)``, ``t0`` being when the plan was
    handed over.

    Returns:
        The expected count (``rate * duration_s``: the limiter spaces calls ``1/rate`` apart
        with a burst of 1, see ``llmcompiler._ratelimit``), the admitted count, the relative
        error, the most calls in any 1-second window, the spacing between starts, and ``met``
        (error within ``RATE_TOLERANCE``).
    """
    loop = asyncio.get_running_loop()
    starts: list[float] = []

    @tool(rate_limit=rate)
    async def tick(i: int) -> int:
        """Note when the call started.

        Args:
            i: returned.
        """
        starts.append(loop.time())
        return i

    n_calls = math.ceil(rate * duration_s * 1.5)
    text = "".join(f"{i}. tick({i})\n" for i in range(1, n_calls + 1))
    t0 = loop.time()
    run = asyncio.ensure_future(execute_plan(text, [tick]))
    await asyncio.sleep(duration_s + 0.25)
    run.cancel()
    await asyncio.gather(run, return_exceptions=True)
    admitted = sum(1 for s in starts if t0 <= s < t0 + duration_s)
    expected = rate * duration_s
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    window = 0
    j = 0
    for i, s in enumerate(starts):
        while starts[j] <= s - 1.0:
            j += 1
        window = max(window, i - j + 1)
    error = abs(admitted - expected) / expected
    return {
        "rate_per_s": rate,
        "duration_s": duration_s,
        "calls_ready": n_calls,
        "expected": expected,
        "admitted": admitted,
        "error": error,
        "first_start_after_s": (starts[0] - t0) if starts else None,
        "max_in_any_1s_window": window,
        "gap_min_ms": min(gaps) * 1e3 if gaps else None,
        "gap_mean_ms": (sum(gaps) / len(gaps)) * 1e3 if gaps else None,
        "gap_max_ms": max(gaps) * 1e3 if gaps else None,
        "burst_assumption": "burst 1: calls spaced 1/rate apart, the first at once (llmcompiler._ratelimit)",
        "tolerance": RATE_TOLERANCE,
        "met": error <= RATE_TOLERANCE,
    }


# -- running and reporting


def run_all(*, quick: bool = False) -> dict[str, Any]:
    """Every measurement, each on a fresh event loop; ``quick`` shrinks the sizes."""
    machine = machine_info()
    t0 = time.perf_counter()
    if quick:
        fuzz = asyncio.run(bench_fuzz(n_plans=600))
        faults = asyncio.run(bench_faults(n_runs=60, settle_s=3.0))
        cancel = asyncio.run(bench_cancel(n_runs=20, settle_s=3.0))
        rate = asyncio.run(bench_rate(duration_s=2.0))
    else:
        fuzz = asyncio.run(bench_fuzz())
        faults = asyncio.run(bench_faults())
        cancel = asyncio.run(bench_cancel())
        rate = asyncio.run(bench_rate())
    return {
        "machine": machine,
        "load_average_after": load_average(),
        "quick": quick,
        "fuzz": fuzz,
        "faults": faults,
        "cancel": cancel,
        "rate": rate,
        "runtime_s": time.perf_counter() - t0,
    }


def _zero(value: int) -> str:
    return met(value == 0)


def render(results: dict[str, Any], console: Console) -> None:
    """Print the results as one table, then what failed."""
    console.print(header("llmcompiler reliability benchmarks", results))
    fz, ft, cn, rt = results["fuzz"], results["faults"], results["cancel"], results["rate"]
    table = Table(title="Reliability: model-written text, tool faults, cancellations, rates")
    for col in ("measurement", "target", "measured", "met"):
        table.add_column(col, justify="left" if col == "measurement" else "right")
    plans = f"1. {fz['n_plans']:,} fuzzed plans x random chunks"
    rows: list[tuple[str, str, str, str]] = [
        (f"{plans}: crashes", "0", str(fz["crashes"]), _zero(fz["crashes"])),
        (f"{plans}: hangs (> {fz['guard_s']:g} s)", "0", str(fz["hangs"]), _zero(fz["hangs"])),
        (
            "   parsed tasks without exactly one record",
            "0",
            str(fz["parsed_without_record"] + fz["duplicate_records"]),
            _zero(fz["parsed_without_record"] + fz["duplicate_records"]),
        ),
        (
            f"   well-formed lines lost or wrong (of {fz['well_formed_lines_checked']:,})",
            "0",
            f"{fz['well_formed_lost']} lost, {fz['well_formed_wrong']} wrong",
            _zero(fz["well_formed_lost"] + fz["well_formed_wrong"]),
        ),
        (
            f"   lines with no task, error or thought (of {fz['lines']:,})",
            "0",
            str(fz["lines_unaccounted"]),
            _zero(fz["lines_unaccounted"]),
        ),
    ]
    runs = f"2. {ft['n_runs']:,} runs, {ft['fault_share_measured']:.0%} of calls faulty"
    rows += [
        (f"{runs}: records lost", "0", str(ft["records_lost"]), _zero(ft["records_lost"] + ft["records_doubled"])),
        (
            "   runs raising other than our errors / hung",
            "0",
            f"{ft['runs_raised_other']} / {ft['runs_hung']}",
            _zero(ft["runs_raised_other"] + ft["runs_hung"]),
        ),
        (
            "   failures not naming their tool / dependents not skipped",
            "0",
            f"{ft['errors_without_tool']} / {ft['dependents_not_skipped']}",
            _zero(ft["errors_without_tool"] + ft["dependents_not_skipped"]),
        ),
        ("   asyncio tasks left after a run", "0", str(ft["asyncio_tasks_left"]), _zero(ft["asyncio_tasks_left"])),
        (
            f"   threads left ({ft['threads_hung_on_purpose']} hung on purpose, released)",
            "0",
            str(ft["threads_left"]),
            _zero(ft["threads_left"]),
        ),
        (
            f"   processes beyond the pool of {ft['pool_size']}",
            "0",
            str(ft["processes_left"]),
            _zero(ft["processes_left"]),
        ),
        ("   trace and timeline failures", "0", str(ft["artifact_failures"]), _zero(ft["artifact_failures"])),
    ]
    cancels = f"3. {cn['n_runs']} runs cancelled ({cn['cancelled_mid_run']} mid-run)"
    bad_cancel = cn["cancel_not_cancelled_error"] + cn["cancel_ignored"]
    rows += [
        (f"{cancels}: not ending in CancelledError", "0", str(bad_cancel), _zero(bad_cancel)),
        ("   asyncio tasks left", "0", str(cn["asyncio_tasks_left"]), _zero(cn["asyncio_tasks_left"])),
        (
            f"   threads left ({cn['threads_hung_on_purpose']} hung on purpose, released)",
            "0",
            str(cn["threads_left"]),
            _zero(cn["threads_left"]),
        ),
        ("   processes beyond the pool", "0", str(cn["processes_left"]), _zero(cn["processes_left"])),
    ]
    rows.append(
        (
            f"4. rate_limit={rt['rate_per_s']:g}/s over {rt['duration_s']:g} s: admitted calls",
            f"{rt['expected']:g} ± {rt['tolerance']:.0%}",
            f"{rt['admitted']} ({rt['error']:.1%} off; ≤ {rt['max_in_any_1s_window']} in any 1 s)",
            met(rt["met"]),
        )
    )
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print(
        f"fuzz: {fz['lines']:,} lines in {fz['chunks']:,} chunks, {fz['records']:,} records, "
        f"slowest plan {fz['max_plan_s'] * 1e3:.0f} ms, peak {fz['threads_peak']} threads; "
        f"faults: {ft['runs_answered']} answered, {ft['runs_raised_our_error']} raised our error; "
        f"rate: burst 1 assumed (calls {1000 / rt['rate_per_s']:.0f} ms apart)"
    )
    for name in ("fuzz", "faults", "cancel"):
        for kind, items in results[name]["examples"].items():
            console.print(f"[dim]{name}: {kind}: {len(items)} example(s), e.g. {_clip(str(items[0]), 300)}[/]")
    console.print(f"total {results['runtime_s']:.1f} s")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks, print the table, write the JSON."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.reliability", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke test")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"where to write the results ({DEFAULT_JSON})")
    args = ap.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 130)
    results = run_all(quick=args.quick)
    render(results, console)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, default=repr) + "\n", encoding="utf-8")
    console.print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
