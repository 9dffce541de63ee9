"""Executor-at-scale benchmarks: fusion, load balancing, ``arun_many`` throughput, Ray overhead.

Run with ``python -m benchmarks.scale`` (``--quick`` for a smoke run, ``--json PATH`` to choose
where the results go, default ``benchmarks/results/scale.json``, ``--no-ray`` to skip Ray).

1. **Fusion**: a simulated batched search API (one invocation costs 20 ms plus 0.2 ms per
   query; at most 4 invocations at once, as a provider's concurrency cap). Many similar calls
   with and without the tool's batch implementation: invocations and latency. Two workloads:
   one plan of 64 independent searches, and ``arun_many`` over many questions of 3 searches each.
2. **Load balancing**: a mixed plan of CPU-heavy pure-Python calls and I/O calls (a blocking
   sleep, as a sync HTTP client does): every tool in threads, against the CPU-heavy ones marked
   ``compute_bound`` (process pool, one worker per core). Makespan, and how many CPU-heavy calls
   ran at once (timestamps taken inside the workers).
3. **arun_many**: 1,000 questions answered by a scripted model (``FunctionLLM``): questions/s,
   peak asyncio tasks, threads and RSS sampled during the run, RSS at each quarter.
4. **Ray**: a no-op tool called locally and through ``RayBackend`` on a local Ray instance:
   the overhead per call, one at a time (a chain) and many at once (a fan-out).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks._machine import header, load_average, machine_info, met
from llmcompiler import (
    JoinerDecided,
    LLMCompiler,
    Message,
    RunEvent,
    RunResult,
    TaskRecord,
    Tool,
    ToolLimits,
    execute_plan,
    tool,
)
from llmcompiler._offload import cpu_slots, shutdown_process_pool
from llmcompiler._types import Purpose
from llmcompiler.testing import FunctionLLM, Reply

__all__ = [
    "DEFAULT_JSON",
    "FUSION_TARGET_FACTOR",
    "bench_fusion",
    "bench_load_balancing",
    "bench_many",
    "bench_ray",
    "burn",
    "main",
    "run_all",
]

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "scale.json"
FUSION_TARGET_FACTOR = 4.0
_SEARCH_BASE_S = 0.020
_SEARCH_PER_QUERY_S = 0.0002
_SEARCH_MAX_CONCURRENCY = 4


def _rss_mb() -> float:
    """Resident memory of this process in MB (Linux ``/proc``)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:  # pragma: no cover - not Linux
        return float("nan")


# ---------------------------------------------------------------- 1. fusion


class SearchAPI:
    """A simulated search service with a batch endpoint; counts invocations."""

    def __init__(self) -> None:
        self.invocations = 0
        self.queries = 0

    async def search(self, query: str) -> str:
        self.invocations += 1
        self.queries += 1
        await asyncio.sleep(_SEARCH_BASE_S + _SEARCH_PER_QUERY_S)
        return f"results for {query}"

    async def search_many(self, calls: list[dict[str, Any]]) -> list[str]:
        self.invocations += 1
        self.queries += len(calls)
        await asyncio.sleep(_SEARCH_BASE_S + _SEARCH_PER_QUERY_S * len(calls))
        return [f"results for {c['query']}" for c in calls]

    def tool(self, *, fused: bool, window: float) -> Tool:
        return Tool.from_schema(
            name="search",
            description="Search the web.",
            parameters={"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
            fn=self.search,
            batch=self.search_many if fused else None,
            limits=ToolLimits(max_concurrency=_SEARCH_MAX_CONCURRENCY, batch_window=window),
        )


async def _fusion_plan(n_calls: int, fused: bool, window: float) -> dict[str, Any]:
    api = SearchAPI()
    plan = "\n".join(f"{i}. search('topic {i}')" for i in range(1, n_calls + 1)) + f"\n{n_calls + 1}. join()"
    t0 = time.perf_counter()
    records = await execute_plan(plan, [api.tool(fused=fused, window=window)])
    wall = time.perf_counter() - t0
    tasks = [r for r in records if r.tool == "search"]
    return {
        "calls": len(tasks),
        "succeeded": sum(r.ok for r in tasks),
        "invocations": api.invocations,
        "makespan_s": wall,
        "batch_sizes": sorted({r.batch_size for r in tasks}),
    }


def _search_llm(ttft: float) -> FunctionLLM:
    def reply(messages: Sequence[Message], purpose: Purpose) -> Reply:
        if purpose == "plan":
            q = messages[-1].content.rsplit("Question:", 1)[-1].strip().splitlines()[0][:40]
            return "\n".join(f"{i}. search('{q} {i}')" for i in (1, 2, 3)) + "\n4. join()"
        return "Action: Finish(done)"

    return FunctionLLM(reply, ttft=ttft)


async def _fusion_many(n_questions: int, concurrency: int, fused: bool, window: float) -> dict[str, Any]:
    api = SearchAPI()
    agent = LLMCompiler(llm=_search_llm(ttft=0.010), tools=[api.tool(fused=fused, window=window)])
    t0 = time.perf_counter()
    results = await agent.arun_many([f"question {i}" for i in range(n_questions)], concurrency=concurrency)
    wall = time.perf_counter() - t0
    tasks = [t for r in results for t in r.tasks if t.tool == "search"]
    return {
        "questions": n_questions,
        "concurrency": concurrency,
        "calls": len(tasks),
        "succeeded": sum(t.ok for t in tasks),
        "invocations": api.invocations,
        "wall_s": wall,
        "question_latency_s_mean": statistics.fmean(r.total_s for r in results),
        "mean_batch_size": statistics.fmean(t.batch_size for t in tasks) if fused else 0.0,
    }


async def bench_fusion(*, n_calls: int = 64, n_questions: int = 200, window: float = 0.005) -> dict[str, Any]:
    """Invocations and latency with and without fusion on two workloads of many similar calls."""
    out: dict[str, Any] = {
        "window_s": window,
        "api": {
            "base_s": _SEARCH_BASE_S,
            "per_query_s": _SEARCH_PER_QUERY_S,
            "max_concurrency": _SEARCH_MAX_CONCURRENCY,
        },
        "target_factor": FUSION_TARGET_FACTOR,
    }
    await _fusion_plan(4, True, window)  # warm-up
    plain = await _fusion_plan(n_calls, False, window)
    fused = await _fusion_plan(n_calls, True, window)
    out["one_plan"] = {
        "without": plain,
        "with": fused,
        "invocation_factor": plain["invocations"] / fused["invocations"],
        "latency_factor": plain["makespan_s"] / fused["makespan_s"],
    }
    plain_m = await _fusion_many(n_questions, 50, False, window)
    fused_m = await _fusion_many(n_questions, 50, True, window)
    out["arun_many"] = {
        "without": plain_m,
        "with": fused_m,
        "invocation_factor": plain_m["invocations"] / fused_m["invocations"],
        "latency_factor": plain_m["question_latency_s_mean"] / fused_m["question_latency_s_mean"],
    }
    out["met"] = min(out["one_plan"]["invocation_factor"], out["arun_many"]["invocation_factor"]) >= (
        FUSION_TARGET_FACTOR
    )
    return out


# ---------------------------------------------------------------- 2. load balancing


def burn(n: int) -> dict[str, float]:
    """CPU-heavy pure Python: sum of squares below ``n``; reports when it ran (monotonic clock)."""
    start = time.monotonic()
    total = 0
    for i in range(n):
        total += i * i
    return {"pid": float(os.getpid()), "start": start, "end": time.monotonic(), "total": float(total % 1_000_003)}


def io_wait(seconds: float) -> float:
    """A blocking wait, as a sync HTTP client's call (runs in a thread)."""
    time.sleep(seconds)
    return seconds


def _calibrate_burn(target_s: float) -> int:
    n = 200_000
    while True:
        t0 = time.perf_counter()
        burn(n)
        took = time.perf_counter() - t0
        if took > 0.02:
            return max(1, int(n * target_s / took))
        n *= 4


def _most_at_once(spans: list[tuple[float, float]]) -> int:
    return max((sum(1 for s, e in spans if s <= t < e) for t, _ in spans), default=0)


async def _mixed_run(n_cpu: int, n_io: int, burn_n: int, io_s: float, offload: bool) -> dict[str, Any]:
    tools = [tool(name="burn", compute_bound=offload)(burn), tool(name="io_wait")(io_wait)]
    lines = [f"{i}. burn({burn_n})" for i in range(1, n_cpu + 1)]
    lines += [f"{n_cpu + i}. io_wait({io_s})" for i in range(1, n_io + 1)]
    t0 = time.perf_counter()
    records = await execute_plan("\n".join(lines), tools)
    wall = time.perf_counter() - t0
    cpu = [r for r in records if r.tool == "burn"]
    io = [r for r in records if r.tool == "io_wait"]
    return {
        "makespan_s": wall,
        "succeeded": sum(r.ok for r in records),
        "cpu_calls_most_at_once": _most_at_once([(r.result["start"], r.result["end"]) for r in cpu if r.ok]),
        "cpu_call_s_mean": statistics.fmean(r.result["end"] - r.result["start"] for r in cpu if r.ok),
        "io_task_s_mean": statistics.fmean(_duration(r) for r in io),
        "processes_used": len({r.result["pid"] for r in cpu if r.ok}),
    }


def _duration(r: TaskRecord) -> float:
    return r.duration or 0.0


async def bench_load_balancing(
    *, n_cpu: int = 8, n_io: int = 16, cpu_s: float = 0.1, io_s: float = 0.1, repetitions: int = 3
) -> dict[str, Any]:
    """A mixed plan: all in threads against compute-bound calls in the process pool."""
    burn_n = await asyncio.to_thread(_calibrate_burn, cpu_s)
    t0 = time.perf_counter()
    # Start the pool's workers (the pool starts one per call until it has one per core).
    warm = "\n".join(f"{i}. burn(10)" for i in range(1, 2 * cpu_slots() + 1))
    await execute_plan(warm, [tool(name="burn", compute_bound=True)(burn)])
    pool_start = time.perf_counter() - t0
    threads = [await _mixed_run(n_cpu, n_io, burn_n, io_s, False) for _ in range(repetitions)]
    pool = [await _mixed_run(n_cpu, n_io, burn_n, io_s, True) for _ in range(repetitions)]
    thread_med = statistics.median(r["makespan_s"] for r in threads)
    pool_med = statistics.median(r["makespan_s"] for r in pool)
    return {
        "cores": cpu_slots(),
        "n_cpu_calls": n_cpu,
        "n_io_calls": n_io,
        "cpu_call_target_s": cpu_s,
        "burn_n": burn_n,
        "io_s": io_s,
        "repetitions": repetitions,
        "pool_start_s": pool_start,
        "threads": threads,
        "process_pool": pool,
        "threads_makespan_s_median": thread_med,
        "process_pool_makespan_s_median": pool_med,
        "speedup": thread_med / pool_med,
        "cpu_calls_never_exceeded_cores": all(r["cpu_calls_most_at_once"] <= cpu_slots() for r in pool),
    }


# ---------------------------------------------------------------- 3. arun_many


@tool
async def lookup(key: str) -> str:
    """Look a key up (an async I/O tool)."""
    await asyncio.sleep(0)
    return f"value of {key}"


@tool
def combine(a: str, b: str) -> str:
    """Join two values (a sync tool: runs in a thread)."""
    return f"{a} + {b}"


def _many_llm(ttft: float) -> FunctionLLM:
    def reply(messages: Sequence[Message], purpose: Purpose) -> Reply:
        if purpose == "plan":
            return "1. lookup('a')\n2. lookup('b')\n3. combine($1, $2)\n4. join()"
        return "Action: Finish(value of a + value of b)"

    return FunctionLLM(reply, ttft=ttft)


async def _sample(stop: asyncio.Event, samples: list[tuple[int, int, float]], every: float) -> None:
    while not stop.is_set():
        samples.append((len(asyncio.all_tasks()), threading.active_count(), _rss_mb()))
        try:
            await asyncio.wait_for(stop.wait(), every)
        except TimeoutError:
            pass


async def _many_run(n_questions: int, concurrency: int, ttft: float) -> dict[str, Any]:
    done = 0
    quarters: list[float] = []
    marks = {n_questions * k // 4 for k in (1, 2, 3, 4)}

    def on_event(event: RunEvent) -> None:
        nonlocal done
        if isinstance(event, JoinerDecided):
            done += 1
            if done in marks:
                quarters.append(_rss_mb())

    agent = LLMCompiler(llm=_many_llm(ttft), tools=[lookup, combine], on_event=on_event)
    await agent.arun_many(["warm-up"] * 20, concurrency=concurrency)
    gc.collect()
    rss_before = _rss_mb()
    tasks_before = len(asyncio.all_tasks())
    threads_before = threading.active_count()
    samples: list[tuple[int, int, float]] = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample(stop, samples, 0.01))
    done = 0
    quarters.clear()
    t0 = time.perf_counter()
    results: list[RunResult] = await agent.arun_many(
        [f"question {i}" for i in range(n_questions)], concurrency=concurrency
    )
    wall = time.perf_counter() - t0
    stop.set()
    await sampler
    ok = sum(r.answer == "value of a + value of b" for r in results)
    del results
    gc.collect()
    return {
        "questions": n_questions,
        "concurrency": concurrency,
        "model_ttft_s": ttft,
        "answered": ok,
        "wall_s": wall,
        "questions_per_s": n_questions / wall,
        "tasks_before": tasks_before,
        "tasks_peak": max(s[0] for s in samples),
        "threads_before": threads_before,
        "threads_peak": max(s[1] for s in samples),
        "rss_mb_before": rss_before,
        "rss_mb_at_quarters": quarters,
        "rss_mb_peak": max(s[2] for s in samples),
        "rss_mb_after_results_dropped": _rss_mb(),
        "samples": len(samples),
    }


async def bench_many(*, n_questions: int = 1000, concurrency: int = 50) -> dict[str, Any]:
    """``arun_many`` throughput with a scripted model: no model latency, and 20 ms to first token."""
    return {
        "no_latency": await _many_run(n_questions, concurrency, 0.0),
        "ttft_20ms": await _many_run(n_questions, concurrency, 0.020),
        "ttft_20ms_sequential": await _many_run(max(20, n_questions // 10), 1, 0.020),
    }


# ---------------------------------------------------------------- 4. Ray


def noop(x: int) -> int:
    """Return x (the cheapest possible tool)."""
    return x


async def _timed(fn: Callable[[], Awaitable[list[TaskRecord]]]) -> tuple[float, list[TaskRecord]]:
    t0 = time.perf_counter()
    records = await fn()
    return time.perf_counter() - t0, records


def bench_ray(*, chain: int = 50, fan_out: int = 200, num_cpus: int = 2) -> dict[str, Any]:
    """Per-call overhead of ``RayBackend`` against local calls (sync no-op tool in a thread)."""
    try:
        import ray
    except ImportError:
        return {"skipped": "ray is not installed (pip install 'llmcompiler[ray]')"}
    from llmcompiler.ray_backend import RayBackend

    t0 = time.perf_counter()
    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    init_s = time.perf_counter() - t0
    try:
        backend = RayBackend()
        local = [tool(name="noop")(noop)]
        remote = backend.wrap(local)
        chain_plan = "1. noop(0)\n" + "\n".join(f"{i}. noop(${i - 1})" for i in range(2, chain + 1))
        fan_plan = "\n".join(f"{i}. noop({i})" for i in range(1, fan_out + 1))

        async def measure() -> dict[str, Any]:
            t0 = time.perf_counter()
            await execute_plan("1. noop(1)", remote)  # first call: starts a worker
            first_s = time.perf_counter() - t0
            await execute_plan(fan_plan, remote)  # warm the workers
            out: dict[str, Any] = {"first_call_s": first_s}
            for name, tools in (("local", local), ("ray", remote)):
                chain_s, rec_c = await _timed(lambda t=tools: execute_plan(chain_plan, t))  # type: ignore[misc]
                fan_s, rec_f = await _timed(lambda t=tools: execute_plan(fan_plan, t))  # type: ignore[misc]
                out[name] = {
                    "chain_ms_per_call": 1000 * chain_s / chain,
                    "fan_out_calls_per_s": fan_out / fan_s,
                    "fan_out_ms_per_call": 1000 * fan_s / fan_out,
                    "succeeded": sum(r.ok for r in rec_c + rec_f),
                }
            out["overhead_ms_per_call_sequential"] = out["ray"]["chain_ms_per_call"] - out["local"]["chain_ms_per_call"]
            out["overhead_ms_per_call_fan_out"] = (
                out["ray"]["fan_out_ms_per_call"] - out["local"]["fan_out_ms_per_call"]
            )
            return out

        result = asyncio.run(measure())
    finally:
        ray.shutdown()
    return {
        "ray_version": ray.__version__,
        "num_cpus": num_cpus,
        "init_s": init_s,
        "chain": chain,
        "fan_out": fan_out,
        **result,
    }


# ---------------------------------------------------------------- driver


def run_all(*, quick: bool = False, with_ray: bool = True) -> dict[str, Any]:
    """Every measurement, each on a fresh event loop; ``quick`` shrinks the sizes."""
    machine = machine_info()
    t0 = time.perf_counter()
    try:
        if quick:
            fusion = asyncio.run(bench_fusion(n_calls=32, n_questions=60))
            balance = asyncio.run(bench_load_balancing(n_cpu=4, n_io=8, cpu_s=0.05, io_s=0.05, repetitions=1))
            many = asyncio.run(bench_many(n_questions=200, concurrency=20))
            ray_out = bench_ray(chain=10, fan_out=40) if with_ray else {"skipped": "--no-ray"}
        else:
            fusion = asyncio.run(bench_fusion())
            balance = asyncio.run(bench_load_balancing())
            many = asyncio.run(bench_many())
            ray_out = bench_ray() if with_ray else {"skipped": "--no-ray"}
    finally:
        shutdown_process_pool()
    return {
        "machine": machine,
        "load_average_after": load_average(),
        "quick": quick,
        "fusion": fusion,
        "load_balancing": balance,
        "arun_many": many,
        "ray": ray_out,
        "runtime_s": time.perf_counter() - t0,
    }


def render(results: dict[str, Any], console: Console) -> None:
    """Print the results as tables."""
    console.print(header("llmcompiler scale benchmarks", results))

    fu = results["fusion"]
    table = Table(
        title=f"1. Fusion (search API: {1000 * fu['api']['base_s']:g} ms + "
        f"{1000 * fu['api']['per_query_s']:g} ms/query, ≤ {fu['api']['max_concurrency']} at once; "
        f"window {1000 * fu['window_s']:g} ms)"
    )
    for col in (
        "workload",
        "calls",
        "invocations",
        "latency s",
        "invocations ÷",
        "latency ÷",
        f"≥ {fu['target_factor']:g}x",
    ):
        table.add_column(col, justify="left" if col == "workload" else "right")
    one = fu["one_plan"]
    many = fu["arun_many"]
    rows = [
        (f"one plan, {one['without']['calls']} searches", one, "makespan_s"),
        (
            f"arun_many, {many['without']['questions']} questions x 3, concurrency {many['without']['concurrency']}",
            many,
            "question_latency_s_mean",
        ),
    ]
    for label, w, key in rows:
        table.add_row(
            label + " (without)",
            str(w["without"]["calls"]),
            str(w["without"]["invocations"]),
            f"{w['without'][key]:.3f}",
            "",
            "",
            "",
        )
        table.add_row(
            label + " (with)",
            str(w["with"]["calls"]),
            str(w["with"]["invocations"]),
            f"{w['with'][key]:.3f}",
            f"{w['invocation_factor']:.1f}x",
            f"{w['latency_factor']:.1f}x",
            met(w["invocation_factor"] >= fu["target_factor"]),
        )
    console.print(table)

    lb = results["load_balancing"]
    table = Table(
        title=f"2. Load balancing: {lb['n_cpu_calls']} CPU calls (~{1000 * lb['cpu_call_target_s']:g} ms) + "
        f"{lb['n_io_calls']} blocking I/O calls ({1000 * lb['io_s']:g} ms), {lb['cores']} cores, "
        f"median of {lb['repetitions']}"
    )
    for col in ("mode", "makespan s", "CPU call s (in worker)", "CPU calls at once", "I/O task s"):
        table.add_column(col, justify="left" if col == "mode" else "right")
    for mode, key, med in (
        ("all in threads", "threads", "threads_makespan_s_median"),
        ("compute_bound → process pool", "process_pool", "process_pool_makespan_s_median"),
    ):
        runs = lb[key]
        table.add_row(
            mode,
            f"{lb[med]:.3f}",
            f"{statistics.fmean(r['cpu_call_s_mean'] for r in runs):.3f}",
            str(max(r["cpu_calls_most_at_once"] for r in runs)),
            f"{statistics.fmean(r['io_task_s_mean'] for r in runs):.3f}",
        )
    console.print(table)
    console.print(
        f"speedup {lb['speedup']:.2f}x; CPU calls never exceeded the cores: "
        f"{met(lb['cpu_calls_never_exceeded_cores'])}; pool start and warm-up {lb['pool_start_s']:.2f} s"
    )

    mn = results["arun_many"]
    table = Table(title="3. arun_many with a scripted model (3 tools + join per question)")
    for col in (
        "model",
        "questions",
        "concurrency",
        "answered",
        "questions/s",
        "tasks before→peak",
        "threads before→peak",
        "RSS MB before→quarters",
    ):
        table.add_column(col, justify="left" if col == "model" else "right")
    for name, r in mn.items():
        table.add_row(
            name,
            str(r["questions"]),
            str(r["concurrency"]),
            str(r["answered"]),
            f"{r['questions_per_s']:.0f}",
            f"{r['tasks_before']}→{r['tasks_peak']}",
            f"{r['threads_before']}→{r['threads_peak']}",
            f"{r['rss_mb_before']:.0f}→" + "/".join(f"{q:.0f}" for q in r["rss_mb_at_quarters"]),
        )
    console.print(table)

    ry = results["ray"]
    if "skipped" in ry:
        console.print(f"4. Ray: skipped ({ry['skipped']})")
    else:
        table = Table(
            title=f"4. Ray {ry['ray_version']} overhead (local instance, {ry['num_cpus']} CPUs; "
            f"init {ry['init_s']:.1f} s, first call {ry['first_call_s']:.2f} s)"
        )
        for col in ("where", f"chain of {ry['chain']}: ms/call", f"fan-out of {ry['fan_out']}: calls/s", "ms/call"):
            table.add_column(col, justify="left" if col == "where" else "right")
        for name in ("local", "ray"):
            r = ry[name]
            table.add_row(
                name,
                f"{r['chain_ms_per_call']:.3f}",
                f"{r['fan_out_calls_per_s']:.0f}",
                f"{r['fan_out_ms_per_call']:.3f}",
            )
        console.print(table)
        console.print(
            f"Ray overhead per call: {ry['overhead_ms_per_call_sequential']:.2f} ms one at a time, "
            f"{ry['overhead_ms_per_call_fan_out']:.2f} ms in a fan-out"
        )
    console.print(f"total {results['runtime_s']:.1f} s")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks, print the tables, write the JSON."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke test")
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray measurement")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"where to write the results ({DEFAULT_JSON})")
    args = ap.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 130)
    results = run_all(quick=args.quick, with_ray=not args.no_ray)
    render(results, console)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    console.print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
