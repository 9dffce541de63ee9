"""Engine benchmarks: overhead per task, dispatch latency, makespan against the critical path.

Run with ``python -m benchmarks.engine`` (``make bench-engine``); ``--quick`` for a smoke run,
``--json PATH`` to choose where the results go (default ``benchmarks/results/engine.json``).

Three measurements, each against a target:

1. **Overhead per task**: a plan of no-op async tools, all independent or one chain, given to
   ``execute_plan`` as one string; the wall time of the whole call divided by the task count
   (median of several repetitions after a warm-up), and the same for ``PlanParser`` alone.
2. **Dispatch latency**: a plan streamed chunk by chunk; for each task, the time from the
   moment the chunk holding its closing ``)`` was yielded to the moment the tool started
   (``TaskStarted.time``, and a timestamp taken as the tool body's first statement). A task
   that references tasks still running is ready only when the last of them finished, so the
   latency is taken from ``max(chunk yielded, dependencies finished)``.
3. **Makespan against a lower bound**: seeded random DAGs of sleeping tools, streamed line by
   line at a model-like pace. Each task can finish no earlier than
   ``max(its line's arrival, its dependencies' bound) + its duration``; the ratio of the
   measured makespan to the largest such bound shows what the scheduler adds. Arrival times
   are the measured moments each line was yielded, so generator jitter is not counted.
4. **Large inputs**: a 1 MB plan line streamed in 100-character chunks (one long string, prose,
   and dense arguments ``[1, 'x'], `` repeated: the worst case, bound by the argument parser's
   speed per token) through ``PlanParser``; and ``trace_dict`` of a run of 10,000 tasks with dict
   results (the environment holding 35 variables). Seconds, best of three; targets: under 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import random
import statistics
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks._machine import header, load_average, machine_info, met
from llmcompiler import PlanParser, RunEvent, RunResult, TaskRecord, TaskStarted, Usage, execute_plan, tool, trace_dict

__all__ = [
    "DEFAULT_JSON",
    "OVERHEAD_TARGET_US",
    "DISPATCH_TARGET_P99_MS",
    "MAKESPAN_TARGET_RATIO",
    "bench_overhead",
    "bench_dispatch",
    "bench_makespan",
    "run_all",
    "main",
]

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "engine.json"
OVERHEAD_TARGET_US = 20.0
DISPATCH_TARGET_P99_MS = 1.0
MAKESPAN_TARGET_RATIO = 1.02
_CHARS_PER_TOKEN = 4.0


def _percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[rank - 1]


def _summary_ms(latencies_s: Sequence[float]) -> dict[str, float]:
    return {
        "p50_ms": _percentile(latencies_s, 50) * 1e3,
        "p95_ms": _percentile(latencies_s, 95) * 1e3,
        "p99_ms": _percentile(latencies_s, 99) * 1e3,
        "max_ms": max(latencies_s) * 1e3,
        "mean_ms": statistics.fmean(latencies_s) * 1e3,
    }


# -- 1. overhead per task


@tool
async def noop(x: int = 0) -> int:
    """Return its argument; does nothing else.

    Args:
        x: any integer.
    """
    return x


def overhead_plan(n_tasks: int, shape: str) -> str:
    """A plan of ``n_tasks`` no-op calls: ``independent`` or one ``chain``."""
    if shape == "independent":
        lines = [f"{i}. noop({i})" for i in range(1, n_tasks + 1)]
    elif shape == "chain":
        lines = ["1. noop(0)"] + [f"{i}. noop(${i - 1})" for i in range(2, n_tasks + 1)]
    else:
        raise ValueError(f"unknown plan shape {shape!r}")
    return "\n".join(lines) + "\n"


def _parse_all(text: str) -> int:
    parser = PlanParser()
    events = parser.feed(text) + parser.close()
    return sum(1 for e in events if e.kind == "task")


async def bench_overhead(n_tasks: int = 2000, repetitions: int = 7) -> dict[str, Any]:
    """Engine overhead per task: ``execute_plan`` and ``PlanParser`` over whole plans of no-ops.

    Args:
        n_tasks: tasks per plan.
        repetitions: timed runs per shape, after one warm-up run.

    Returns:
        Per shape: the median, min and every sample in µs per task, for the whole
        ``execute_plan`` call (wall time, and the median process CPU time, which other load on
        the machine disturbs less) and for parsing alone; the number of tasks that succeeded.
    """
    shapes: dict[str, Any] = {}
    for shape in ("independent", "chain"):
        text = overhead_plan(n_tasks, shape)
        records = await execute_plan(text, [noop])  # warm-up
        ok_warm = sum(r.ok for r in records)
        samples: list[float] = []
        cpu_samples: list[float] = []
        succeeded: list[int] = []
        for _ in range(repetitions):
            gc.collect()
            t0, c0 = time.perf_counter(), time.process_time()
            records = await execute_plan(text, [noop])
            samples.append((time.perf_counter() - t0) / n_tasks * 1e6)
            cpu_samples.append((time.process_time() - c0) / n_tasks * 1e6)
            succeeded.append(sum(r.ok for r in records))
        if shape == "chain" and [r.result for r in records] != [0] * n_tasks:
            raise AssertionError("the chain did not pass each result on")
        parse_samples: list[float] = []
        parsed = _parse_all(text)  # warm-up
        for _ in range(repetitions):
            gc.collect()
            t0 = time.perf_counter()
            parsed = _parse_all(text)
            parse_samples.append((time.perf_counter() - t0) / n_tasks * 1e6)
        shapes[shape] = {
            "execute_us_per_task_median": statistics.median(samples),
            "execute_us_per_task_min": min(samples),
            "execute_cpu_us_per_task_median": statistics.median(cpu_samples),
            "execute_us_per_task_samples": samples,
            "parse_us_per_task_median": statistics.median(parse_samples),
            "parse_us_per_task_min": min(parse_samples),
            "parse_us_per_task_samples": parse_samples,
            "tasks_succeeded": min([ok_warm, *succeeded]),
            "tasks_parsed": parsed,
        }
    worst = max(s["execute_us_per_task_median"] for s in shapes.values())
    return {
        "n_tasks": n_tasks,
        "repetitions": repetitions,
        "shapes": shapes,
        "target_us_per_task": OVERHEAD_TARGET_US,
        "met": worst <= OVERHEAD_TARGET_US,
    }


# -- 2. dispatch latency


@dataclass(frozen=True, slots=True)
class _DispatchPlan:
    text: str
    close_offsets: dict[int, int]  # task number -> offset of its closing ")"
    deps: dict[int, tuple[int, ...]]


def dispatch_plan(n_tasks: int, rng: random.Random, dep_share: float = 0.4) -> _DispatchPlan:
    """Probe calls; about ``dep_share`` of them reference one or two tasks 5 to 30 lines back."""
    lines: list[str] = []
    close_offsets: dict[int, int] = {}
    deps: dict[int, tuple[int, ...]] = {}
    offset = 0
    for i in range(1, n_tasks + 1):
        refs: tuple[int, ...] = ()
        if i > 5 and rng.random() < dep_share:
            pool = range(max(1, i - 30), i - 4)
            refs = tuple(sorted(rng.sample(pool, min(len(pool), rng.randint(1, 2)))))
        line = f"{i}. probe({i}, [{', '.join(f'${d}' for d in refs)}])" if refs else f"{i}. probe({i})"
        close_offsets[i] = offset + len(line) - 1
        deps[i] = refs
        lines.append(line)
        offset += len(line) + 1
    return _DispatchPlan(text="\n".join(lines) + "\n", close_offsets=close_offsets, deps=deps)


def aligned_chunks(plan: _DispatchPlan) -> list[str]:
    """Chunks that each end right after a call's closing ``)``: one task per chunk."""
    cuts = [plan.close_offsets[i] + 1 for i in sorted(plan.close_offsets)]
    starts = [0, *cuts[:-1]]
    pieces = [plan.text[a:b] for a, b in zip(starts, cuts, strict=True)]
    if cuts[-1] < len(plan.text):
        pieces.append(plan.text[cuts[-1] :])
    return pieces


def random_chunks(text: str, rng: random.Random, max_size: int = 24) -> list[str]:
    """Chunks of 1 to ``max_size`` characters, boundaries anywhere."""
    pieces: list[str] = []
    pos = 0
    while pos < len(text):
        size = rng.randint(1, max_size)
        pieces.append(text[pos : pos + size])
        pos += size
    return pieces


async def _timed_stream(chunks: Sequence[str], gap_s: float, stamps: list[float]) -> AsyncIterator[str]:
    """Yield each chunk after ``gap_s``; record ``time.monotonic()`` just before each yield."""
    for chunk in chunks:
        await asyncio.sleep(gap_s)
        stamps.append(time.monotonic())
        yield chunk


async def _dispatch_series(plan: _DispatchPlan, chunks: list[str], gap_s: float) -> dict[str, Any]:
    body_start: dict[int, float] = {}

    @tool
    async def probe(i: int, deps: list[int] | None = None) -> int:
        """Record when the call began.

        Args:
            i: the task number.
            deps: results of the referenced tasks.
        """
        body_start[i] = time.monotonic()
        return i

    started: dict[int, float] = {}

    def on_event(event: RunEvent) -> None:
        if isinstance(event, TaskStarted):
            started[event.idx] = event.time

    stamps: list[float] = []
    records = await execute_plan(_timed_stream(chunks, gap_s, stamps), [probe], on_event=on_event)
    by_idx: dict[int, TaskRecord] = {r.idx: r for r in records}

    # The chunk that closed each call: the one whose text span holds the ")".
    ends: list[int] = []
    pos = 0
    for chunk in chunks:
        pos += len(chunk)
        ends.append(pos)
    closing_chunk: dict[int, int] = {}
    c = 0
    for idx in sorted(plan.close_offsets):
        while ends[c] <= plan.close_offsets[idx]:
            c += 1
        closing_chunk[idx] = c

    lat_started: list[float] = []
    lat_body: list[float] = []
    waited_on_deps = 0
    for idx, rec in by_idx.items():
        arrived = stamps[closing_chunk[idx]]
        ready = arrived
        for dep in plan.deps[idx]:
            dep_end = by_idx[dep].end
            assert dep_end is not None
            if dep_end > ready:
                ready = dep_end
        if ready > arrived:
            waited_on_deps += 1
        lat_started.append(started[idx] - ready)
        lat_body.append(body_start[idx] - ready)
        if rec.result != idx:
            raise AssertionError(f"task {idx} returned {rec.result!r}")
    return {
        "n_chunks": len(chunks),
        "n_tasks": len(records),
        "tasks_succeeded": sum(r.ok for r in records),
        "tasks_with_deps": sum(1 for d in plan.deps.values() if d),
        "tasks_ready_after_their_chunk": waited_on_deps,
        "task_started": _summary_ms(lat_started),
        "tool_body": _summary_ms(lat_body),
    }


async def bench_dispatch(n_tasks: int = 500, gap_s: float = 0.001, seed: int = 7) -> dict[str, Any]:
    """Dispatch latency from the chunk that closes a call to the tool's start.

    Args:
        n_tasks: tasks in the streamed plan.
        gap_s: pause before each chunk (a model emitting chunks at about ``1 / gap_s`` per second).
        seed: seeds the plan's references and the random chunk boundaries.

    Returns:
        Per series (``aligned``: each chunk ends right after a ``)``; ``random``: boundaries
        anywhere): p50/p95/p99/max/mean in ms for ``TaskStarted.time`` and for the tool body.
    """
    rng = random.Random(seed)
    plan = dispatch_plan(n_tasks, rng)
    series = {
        "aligned": await _dispatch_series(plan, aligned_chunks(plan), gap_s),
        "random": await _dispatch_series(plan, random_chunks(plan.text, rng), gap_s),
    }
    worst = max(max(s["task_started"]["p99_ms"], s["tool_body"]["p99_ms"]) for s in series.values())
    return {
        "n_tasks": n_tasks,
        "gap_s": gap_s,
        "seed": seed,
        "series": series,
        "target_p99_ms": DISPATCH_TARGET_P99_MS,
        "met": worst <= DISPATCH_TARGET_P99_MS,
    }


# -- 3. makespan against the critical-path lower bound


@dataclass(frozen=True, slots=True)
class RandomDag:
    """A seeded random DAG of sleeping tasks, numbered in a topological order."""

    seed: int
    depth: int
    max_fan_in: int
    durations_ms: tuple[int, ...]  # task i + 1 sleeps durations_ms[i]
    deps: tuple[tuple[int, ...], ...]

    @property
    def n_tasks(self) -> int:
        """How many tasks (join not counted)."""
        return len(self.durations_ms)

    def lines(self) -> list[str]:
        """The plan, one line per task, ending with ``join()``."""
        out = []
        for i, (ms, deps) in enumerate(zip(self.durations_ms, self.deps, strict=True), start=1):
            refs = ", ".join(f"${d}" for d in deps)
            out.append(f"{i}. work({i}, {ms}, [{refs}])\n")
        out.append(f"{self.n_tasks + 1}. join()\n")
        return out

    def critical_path_ms(self) -> int:
        """The longest chain of durations, ignoring when lines arrive."""
        fin: list[int] = []
        for ms, deps in zip(self.durations_ms, self.deps, strict=True):
            fin.append(max((fin[d - 1] for d in deps), default=0) + ms)
        return max(fin)


def random_dag(
    seed: int,
    *,
    min_tasks: int = 10,
    max_tasks: int = 60,
    max_depth: int = 8,
    max_fan_in: int = 4,
    min_ms: int = 20,
    max_ms: int = 200,
) -> RandomDag:
    """A layered random DAG: each task past the first layer depends on one task of the layer
    before and on up to ``fan_in - 1`` more from any earlier layer."""
    rng = random.Random(seed)
    n = rng.randint(min_tasks, max_tasks)
    depth = rng.randint(1, min(max_depth, n))
    fan_in = rng.randint(1, max_fan_in)
    layer_of = sorted(list(range(depth)) + [rng.randrange(depth) for _ in range(n - depth)])
    layers: list[list[int]] = [[] for _ in range(depth)]
    deps: list[tuple[int, ...]] = []
    for i, layer in enumerate(layer_of, start=1):
        chosen: set[int] = set()
        if layer > 0:
            chosen.add(rng.choice(layers[layer - 1]))
            earlier = [t for lay in layers[:layer] for t in lay]
            extra = rng.randint(0, fan_in - 1)
            chosen.update(rng.sample(earlier, min(extra, len(earlier))))
        deps.append(tuple(sorted(chosen)))
        layers[layer].append(i)
    durations = tuple(rng.randint(min_ms, max_ms) for _ in range(n))
    return RandomDag(seed=seed, depth=depth, max_fan_in=fan_in, durations_ms=durations, deps=tuple(deps))


async def _model_stream(lines: Sequence[str], tokens_per_s: float, stamps: list[float]) -> AsyncIterator[str]:
    """Each line after the time a model at ``tokens_per_s`` takes to write it; stamps its yield."""
    for line in lines:
        await asyncio.sleep(len(line) / _CHARS_PER_TOKEN / tokens_per_s)
        stamps.append(time.monotonic())
        yield line


def _bound(dag: RandomDag, arrivals: Sequence[float], durations_s: Sequence[float]) -> float:
    fin: list[float] = []
    for i, deps in enumerate(dag.deps):
        ready = max([arrivals[i], *(fin[d - 1] for d in deps)])
        fin.append(ready + durations_s[i])
    return max([*fin, arrivals[-1]])  # arrivals[-1]: the join() line


async def run_dag(dag: RandomDag, tokens_per_s: float) -> dict[str, Any]:
    """Stream one DAG's plan and compare its makespan with the lower bound."""
    spans: dict[int, tuple[float, float]] = {}

    @tool
    async def work(i: int, ms: int, deps: list[int]) -> int:
        """Sleep ``ms`` milliseconds.

        Args:
            i: the task number, returned.
            ms: how long to sleep.
            deps: results of the tasks it depends on.
        """
        t0 = time.monotonic()
        await asyncio.sleep(ms / 1000)
        spans[i] = (t0, time.monotonic())
        return i

    stamps: list[float] = []
    lines = dag.lines()
    t0 = time.monotonic()
    records = await execute_plan(_model_stream(lines, tokens_per_s, stamps), [work])
    t_end = time.monotonic()
    tasks = [r for r in records if r.tool == "work"]
    if len(stamps) != len(lines):
        raise AssertionError(f"{len(stamps)} of {len(lines)} lines were read")
    for rec in tasks:
        if rec.result != rec.idx or rec.args.get("deps") != list(dag.deps[rec.idx - 1]):
            raise AssertionError(f"task {rec.idx}: wrong result or arguments: {rec!r}")
    nominal = [ms / 1000 for ms in dag.durations_ms]
    measured = [spans[i][1] - spans[i][0] for i in range(1, dag.n_tasks + 1)]
    bound = _bound(dag, stamps, nominal) - t0
    bound_measured = _bound(dag, stamps, measured) - t0
    makespan = t_end - t0
    return {
        "seed": dag.seed,
        "n_tasks": dag.n_tasks,
        "depth": dag.depth,
        "max_fan_in": dag.max_fan_in,
        "critical_path_s": dag.critical_path_ms() / 1000,
        "stream_s": stamps[-1] - t0,
        "makespan_s": makespan,
        "bound_s": bound,
        "ratio": makespan / bound,
        "bound_measured_durations_s": bound_measured,
        "ratio_measured_durations": makespan / bound_measured,
        "sleep_overshoot_ms_max": max(m - n for m, n in zip(measured, nominal, strict=True)) * 1e3,
        "tasks_succeeded": sum(r.ok for r in tasks),
    }


async def bench_makespan(
    n_dags: int = 30,
    *,
    min_tasks: int = 10,
    max_tasks: int = 60,
    tokens_per_s: float = 200.0,
    seed: int = 1000,
) -> dict[str, Any]:
    """Makespan over the critical-path lower bound for seeded random DAGs.

    Args:
        n_dags: how many DAGs (seeds ``seed``, ``seed + 1``, ...).
        min_tasks: fewest tasks in a DAG.
        max_tasks: most tasks in a DAG.
        tokens_per_s: the emulated model's writing speed (4 characters a token).
        seed: the first DAG's seed.

    Returns:
        One entry per DAG and the mean and max of ``makespan / bound``, with the bound from the
        nominal durations and, separately, from the measured sleep durations.
    """
    dags = []
    for k in range(n_dags):
        dag = random_dag(seed + k, min_tasks=min_tasks, max_tasks=max_tasks)
        dags.append(await run_dag(dag, tokens_per_s))
    ratios = [d["ratio"] for d in dags]
    ratios_measured = [d["ratio_measured_durations"] for d in dags]
    excess_ms = [(d["makespan_s"] - d["bound_s"]) * 1e3 for d in dags]
    return {
        "n_dags": n_dags,
        "tokens_per_s": tokens_per_s,
        "chars_per_token": _CHARS_PER_TOKEN,
        "task_ms_range": [20, 200],
        "dags": dags,
        "ratio_mean": statistics.fmean(ratios),
        "ratio_max": max(ratios),
        "ratio_measured_durations_mean": statistics.fmean(ratios_measured),
        "ratio_measured_durations_max": max(ratios_measured),
        "excess_ms_mean": statistics.fmean(excess_ms),
        "excess_ms_max": max(excess_ms),
        "target_ratio": MAKESPAN_TARGET_RATIO,
        "met": max(ratios) <= MAKESPAN_TARGET_RATIO,
    }


# -- running and reporting


LARGE_TARGET_S = 1.0


def _long_lines(size: int) -> dict[str, str]:
    unit = "[1, 'x'], "
    return {
        "one string": '1. echo("' + "a" * size + '")',
        "prose": "Thought: " + ("the weather in Oslo (and Tokyo) is mild " * (size // 40 + 1))[:size],
        "dense arguments": "1. echo([" + (unit * (size // len(unit) + 1))[:size] + "])",
    }


def bench_large(*, line_chars: int = 1_000_000, chunk: int = 100, n_tasks: int = 10_000) -> dict[str, Any]:
    """Seconds to parse a long line streamed in small chunks, and to build a large run's trace."""
    import os

    lines: dict[str, float] = {}
    for name, text in _long_lines(line_chars).items():
        best = math.inf
        for _ in range(3):
            t0 = time.perf_counter()
            parser = PlanParser()
            for i in range(0, len(text), chunk):
                parser.feed(text[i : i + chunk])
            parser.close()
            best = min(best, time.perf_counter() - t0)
        lines[name] = best
    tasks = [
        TaskRecord(
            idx=i,
            tool="search",
            args={"query": f"question {i}"},
            deps=frozenset({i - 1}) if i > 1 else frozenset(),
            thought=None,
            result={"title": f"result {i}", "snippets": [f"text {i}", "more"], "score": i / 3},
            start=float(i),
            end=float(i) + 0.5,
            line=f'{i}. search("question {i}")',
        )
        for i in range(1, n_tasks + 1)
    ]
    result = RunResult(answer="done", tasks=tasks, rounds=1, usage=Usage(), start=0.0, end=float(n_tasks))
    extra = {f"BENCH_VAR_{i}": f"value-{i}" for i in range(max(0, 35 - len(os.environ)))}
    os.environ.update(extra)
    try:
        best = math.inf
        for _ in range(3):
            t0 = time.perf_counter()
            trace_dict(result, question="q")
            best = min(best, time.perf_counter() - t0)
    finally:
        for key in extra:
            del os.environ[key]
    return {
        "line_chars": line_chars,
        "chunk_chars": chunk,
        "parse_long_line_s": lines,
        "trace_tasks": n_tasks,
        "trace_dict_s": best,
        "target_s": LARGE_TARGET_S,
    }


def run_all(*, quick: bool = False) -> dict[str, Any]:
    """Every measurement, each on a fresh event loop; ``quick`` shrinks the sizes."""
    machine = machine_info()
    t0 = time.perf_counter()
    if quick:
        overhead = asyncio.run(bench_overhead(n_tasks=500, repetitions=3))
        dispatch = asyncio.run(bench_dispatch(n_tasks=100))
        makespan = asyncio.run(bench_makespan(n_dags=5, min_tasks=10, max_tasks=25))
        large = bench_large(line_chars=20_000, n_tasks=500)
    else:
        overhead = asyncio.run(bench_overhead())
        dispatch = asyncio.run(bench_dispatch())
        makespan = asyncio.run(bench_makespan())
        large = bench_large()
    return {
        "machine": machine,
        "load_average_after": load_average(),
        "quick": quick,
        "overhead": overhead,
        "dispatch": dispatch,
        "makespan": makespan,
        "large": large,
        "runtime_s": time.perf_counter() - t0,
    }


def render(results: dict[str, Any], console: Console) -> None:
    """Print the results as tables."""
    console.print(header("llmcompiler engine benchmarks", results))

    ov = results["overhead"]
    table = Table(title=f"1. Overhead per task ({ov['n_tasks']} no-op tasks, median of {ov['repetitions']})")
    target = f"≤ {ov['target_us_per_task']:g} µs"
    for col in ("plan", "execute_plan µs/task", "min", "CPU µs/task", "parse only µs/task", "succeeded", target):
        table.add_column(col, justify="right" if col != "plan" else "left")
    for shape, s in ov["shapes"].items():
        table.add_row(
            shape,
            f"{s['execute_us_per_task_median']:.1f}",
            f"{s['execute_us_per_task_min']:.1f}",
            f"{s['execute_cpu_us_per_task_median']:.1f}",
            f"{s['parse_us_per_task_median']:.1f}",
            f"{s['tasks_succeeded']}/{ov['n_tasks']}",
            met(s["execute_us_per_task_median"] <= ov["target_us_per_task"]),
        )
    console.print(table)

    dp = results["dispatch"]
    table = Table(title=f"2. Dispatch latency, chunk closing the call → tool start ({dp['n_tasks']} tasks, ms)")
    for col in ("chunks", "measured at", "p50", "p95", "p99", "max", f"p99 ≤ {dp['target_p99_ms']:g} ms"):
        table.add_column(col, justify="right" if col not in ("chunks", "measured at") else "left")
    for name, s in dp["series"].items():
        for where, label in (("task_started", "TaskStarted"), ("tool_body", "tool body")):
            q = s[where]
            table.add_row(
                f"{name} ({s['n_chunks']})",
                label,
                f"{q['p50_ms']:.3f}",
                f"{q['p95_ms']:.3f}",
                f"{q['p99_ms']:.3f}",
                f"{q['max_ms']:.3f}",
                met(q["p99_ms"] <= dp["target_p99_ms"]),
            )
    console.print(table)

    mk = results["makespan"]
    table = Table(
        title=f"3. Makespan / critical-path bound ({mk['n_dags']} DAGs, streamed at {mk['tokens_per_s']:g} tokens/s)"
    )
    for col in ("bound from", "mean", "max", "excess ms mean", "excess ms max", f"max ≤ {mk['target_ratio']:g}"):
        table.add_column(col, justify="right" if col != "bound from" else "left")
    table.add_row(
        "nominal durations",
        f"{mk['ratio_mean']:.4f}",
        f"{mk['ratio_max']:.4f}",
        f"{mk['excess_ms_mean']:.1f}",
        f"{mk['excess_ms_max']:.1f}",
        met(mk["met"]),
    )
    table.add_row(
        "measured sleeps",
        f"{mk['ratio_measured_durations_mean']:.4f}",
        f"{mk['ratio_measured_durations_max']:.4f}",
        "",
        "",
        met(mk["ratio_measured_durations_max"] <= mk["target_ratio"]),
    )
    console.print(table)
    sizes = [d["n_tasks"] for d in mk["dags"]]
    console.print(
        f"DAGs: {min(sizes)}-{max(sizes)} tasks, depth {min(d['depth'] for d in mk['dags'])}-"
        f"{max(d['depth'] for d in mk['dags'])}, fan-in up to {max(d['max_fan_in'] for d in mk['dags'])}; "
        f"worst sleep overshoot {max(d['sleep_overshoot_ms_max'] for d in mk['dags']):.2f} ms"
    )
    lg = results["large"]
    table = Table(title="4. Large inputs (seconds, best of 3)")
    for col in ("input", "seconds", f"< {lg['target_s']:g} s"):
        table.add_column(col, justify="right" if col != "input" else "left")
    for name, seconds in lg["parse_long_line_s"].items():
        label = f"{lg['line_chars']:,}-char line, {lg['chunk_chars']}-char chunks: {name}"
        table.add_row(label, f"{seconds:.3f}", met(seconds < lg["target_s"]))
    table.add_row(f"trace_dict, {lg['trace_tasks']:,} tasks", f"{lg['trace_dict_s']:.3f}", met(lg["trace_dict_s"] < 1))
    console.print(table)
    console.print(f"total {results['runtime_s']:.1f} s")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks, print the tables, write the JSON."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.engine", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke test")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"where to write the results ({DEFAULT_JSON})")
    args = ap.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 110)
    results = run_all(quick=args.quick)
    render(results, console)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    console.print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
