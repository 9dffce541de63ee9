"""Local model benchmark: Gemma 3 270M through llama.cpp on this machine's CPU.

Run with ``python -m benchmarks.local_model``; ``--runs N`` repetitions per measurement
(median reported), ``--threads N`` to override the thread count (default: every core),
``--json PATH`` for the results file (default ``benchmarks/results/local_model.json``).

Measured, in one process:

1. **Load**: assembling/verifying the GGUF file (``default_model_path()``) and opening the
   model's contexts (``LlamaCppChat.preload``), each timed once, cold for this process.
2. **Decode**: a free-text reply (no grammar) of up to 64 tokens: time to first token from the
   call (prompt evaluation included; every run has a different prompt start, so no KV-cache
   reuse) and decode speed ``(tokens - 1) / (last token - first token)``.
3. **Constrained plan**: the planner call for the demo question, under the plan grammar.
4. **End to end**: ``LLMCompiler(llm=LlamaCppChat(), tools=DEMO_TOOLS).arun(demo question)``
   once the model is loaded (after one warm-up run), against a 5 s target.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks._machine import machine_info
from llmcompiler import LLMCompiler, Message, ModelRequest, Usage
from llmcompiler.demo import DEMO_TOOLS
from llmcompiler.models._llamacpp import LlamaCppChat, default_model_path

__all__ = ["DEFAULT_JSON", "E2E_TARGET_S", "main", "run_all"]

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "local_model.json"
E2E_TARGET_S = 5.0
DEMO_QUESTION = "What is the weather and the local time in Tokyo and in Oslo?"


async def _timed_stream(chat: LlamaCppChat, request: ModelRequest) -> dict[str, Any]:
    start = time.perf_counter()
    stamps: list[float] = []
    text: list[str] = []
    usage = Usage()
    async for event in chat.stream(request):
        if isinstance(event, str):
            stamps.append(time.perf_counter())
            text.append(event)
        elif isinstance(event, Usage):
            usage += event
    end = time.perf_counter()
    tokens = usage.completion_tokens
    decode_span = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
    return {
        "ttft_s": (stamps[0] - start) if stamps else None,
        "total_s": end - start,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": tokens,
        "decode_tokens_per_s": (tokens - 1) / decode_span if decode_span > 0 and tokens > 1 else None,
        "text": "".join(text),
    }


def _median(rows: Sequence[dict[str, Any]], key: str) -> float | None:
    values = [row[key] for row in rows if row.get(key) is not None]
    return statistics.median(values) if values else None


async def bench_decode(chat: LlamaCppChat, runs: int) -> dict[str, Any]:
    """Free-text decoding: time to first token and tokens per second."""
    chat_64 = LlamaCppChat(chat.model_path, n_threads=chat.n_threads, max_tokens=64)  # same loaded model
    rows = []
    for i in range(runs + 1):
        prompt = f"Story {i + 1}. Once upon a time, in a small harbour town, there lived"
        row = await _timed_stream(chat_64, ModelRequest(messages=(Message(role="user", content=prompt),), purpose="x"))
        if i > 0:  # the first run warms the context up
            rows.append(row)
    return {
        "runs": rows,
        "ttft_s_median": _median(rows, "ttft_s"),
        "decode_tokens_per_s_median": _median(rows, "decode_tokens_per_s"),
    }


async def bench_plan(chat: LlamaCppChat, runs: int) -> dict[str, Any]:
    """The planner call for the demo question, decoded under the plan grammar (KV prefix reused)."""
    from llmcompiler._prompts import describe_tools, load, render

    system = render(
        "planner_system", tools=describe_tools(DEMO_TOOLS), numbering_note="", examples=load("planner_examples")
    )
    request = ModelRequest(
        messages=(
            Message(role="system", content=system),
            Message(role="user", content=render("planner_user", question=DEMO_QUESTION)),
        ),
        purpose="plan",
        stop=("<END_OF_PLAN>",),
        tools=tuple(DEMO_TOOLS),
    )
    rows = [await _timed_stream(chat, request) for _ in range(runs + 1)][1:]
    return {
        "runs": rows,
        "ttft_s_median": _median(rows, "ttft_s"),
        "total_s_median": _median(rows, "total_s"),
        "decode_tokens_per_s_median": _median(rows, "decode_tokens_per_s"),
        "plan": rows[-1]["text"] if rows else None,
    }


async def bench_end_to_end(chat: LlamaCppChat, runs: int) -> dict[str, Any]:
    """The demo question through LLMCompiler with the local model as planner and joiner."""
    agent = LLMCompiler(llm=chat, tools=DEMO_TOOLS)
    rows: list[dict[str, Any]] = []
    seconds: list[float] = []
    for i in range(runs + 1):
        start = time.perf_counter()
        result = await agent.arun(DEMO_QUESTION)
        elapsed = time.perf_counter() - start
        if i == 0:
            continue  # warm-up: fills each context's KV cache with its prompt's fixed start
        seconds.append(elapsed)
        rows.append(
            {
                "seconds": elapsed,
                "rounds": result.rounds,
                "tasks": [t.line for t in result.tasks],
                "failed_tasks": sum(1 for t in result.tasks if t.error is not None),
                "plan_errors": len(result.plan_errors),
                "answer": result.answer,
                "prompt_tokens": result.usage.prompt_tokens,
                "completion_tokens": result.usage.completion_tokens,
            }
        )
    median = statistics.median(seconds) if seconds else None
    return {
        "runs": rows,
        "seconds_median": median,
        "seconds_max": max(seconds) if seconds else None,
        "target_s": E2E_TARGET_S,
        "meets_target": median is not None and median <= E2E_TARGET_S,
    }


async def _run(runs: int, threads: int | None) -> dict[str, Any]:
    start = time.perf_counter()
    path = await asyncio.to_thread(default_model_path)
    assemble_s = time.perf_counter() - start
    chat = LlamaCppChat(n_threads=threads)  # the default model (its file check is timed again in load)
    load_s = await chat.load()
    return {
        "machine": machine_info(),
        "model": chat.model_name,
        "model_path": path,
        "n_threads": chat.n_threads,
        "runs": runs,
        "load": {"assemble_or_verify_s": assemble_s, "open_contexts_s": load_s},
        "decode": await bench_decode(chat, runs),
        "plan": await bench_plan(chat, runs),
        "end_to_end": await bench_end_to_end(chat, runs),
    }


def run_all(*, runs: int = 5, threads: int | None = None) -> dict[str, Any]:
    """Run every measurement and return the results as JSON-ready data."""
    return asyncio.run(_run(runs, threads))


def _fmt(value: float | None, unit: str, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f} {unit}"


def render(results: dict[str, Any], console: Console) -> None:
    """Print the results as a table."""
    table = Table(
        title=f"{results['model']} on {results['machine']['cpu_count']} cores, {results['n_threads']} threads"
    )
    table.add_column("measurement")
    table.add_column("median", justify="right")
    table.add_column("note")
    load = results["load"]
    decode, plan, e2e = results["decode"], results["plan"], results["end_to_end"]
    table.add_row("assemble / verify GGUF", _fmt(load["assemble_or_verify_s"], "s"), "once per process")
    table.add_row("open model contexts", _fmt(load["open_contexts_s"], "s"), "plan + join contexts")
    table.add_row(
        "time to first token",
        _fmt(decode["ttft_s_median"] * 1000 if decode["ttft_s_median"] else None, "ms", 0),
        "short prompt, no cache",
    )
    table.add_row("decode speed", _fmt(decode["decode_tokens_per_s_median"], "tok/s", 1), "free text, 64 tokens")
    table.add_row(
        "plan call (grammar)",
        _fmt(plan["total_s_median"], "s"),
        f"{_fmt(plan['decode_tokens_per_s_median'], 'tok/s', 1)}",
    )
    verdict = "meets" if e2e["meets_target"] else "misses"
    table.add_row(
        "demo question end to end", _fmt(e2e["seconds_median"], "s"), f"{verdict} the {e2e['target_s']:.0f} s target"
    )
    console.print(table)
    if e2e["runs"]:
        last = e2e["runs"][-1]
        console.print(f"last plan: {'; '.join(last['tasks'])}")
        console.print(f"last answer: {last['answer']}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the table, write the JSON."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.local_model", description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="measured repetitions per measurement (default 5)")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: every core)")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"where to write the results ({DEFAULT_JSON})")
    args = ap.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 110)
    results = run_all(runs=max(1, args.runs), threads=args.threads)
    render(results, console)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    console.print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
