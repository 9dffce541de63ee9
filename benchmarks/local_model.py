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
5. **Right answers**: the three questions a newcomer asks first (``benchmarks.local_answers``:
   the demo, the README quick start, the README ``mytools`` example), each ``--answer-runs N``
   times (default 10) per configuration of ``LlamaCppChat`` (by default ``default``: grounded
   plans and an extractive joiner, and ``before``: neither; ``--configs
   default,before,grounded,extractive`` adds each alone) and per temperature: 0 (greedy:
   deterministic, the runs are repeats) and 0.7 with seeds ``0..N-1`` (sampled: how robust the
   answers are). Each run is checked twice, apart: the answer (by a checker that knows the
   right values from outside the run) and the plan (the right calls). A run over 120 s is
   cancelled and counts as wrong. ``--answer-runs 0`` skips this part.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks._machine import machine_info
from benchmarks.local_answers import (
    DEMO_QUESTION,
    QUESTIONS,
    CityFacts,
    Question,
    check_demo_answer,
    check_demo_plan,
    check_mytools_answer,
    check_mytools_plan,
    check_quickstart_answer,
    check_quickstart_plan,
    city_facts,
    planned_calls,
)
from llmcompiler import ChatModel, LLMCompiler, Message, ModelRequest, RunError, TaskRecord, Usage
from llmcompiler.demo import DEMO_TOOLS, local_time, weather
from llmcompiler.models._llamacpp import LlamaCppChat, default_model_path

__all__ = [
    "CONFIGS",
    "DEFAULT_CONFIGS",
    "DEFAULT_JSON",
    "E2E_TARGET_S",
    "TEMPERATURES",
    "Config",
    "answer_run",
    "bench_answers",
    "main",
    "render_answers",
    "run_all",
]

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "local_model.json"
E2E_TARGET_S = 5.0
RUN_TIMEOUT_S = 120.0
DEMO_CITIES = ("Tokyo", "Oslo")


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
    from llmcompiler._prompts import describe_tools
    from llmcompiler._templates import load, render

    system = render("planner_system", tools=describe_tools(DEMO_TOOLS), examples=load("planner_examples"))
    request = ModelRequest(
        messages=(
            Message(role="system", content=system),
            Message(role="user", content=render("planner_user", question=DEMO_QUESTION)),
        ),
        purpose="plan",
        stop=("<END_OF_PLAN>",),
        tools=tuple(t.spec for t in DEMO_TOOLS),
        question=DEMO_QUESTION,  # as the agent sends it: a grounded grammar copies spans of it
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
    """The demo question through LLMCompiler with the local model as planner and joiner.

    Each measured run's answer is checked too (``check_demo_answer``; the local times are read
    outside the timed span).
    """
    agent = LLMCompiler(llm=chat, tools=DEMO_TOOLS)
    weather_texts = {city: await weather.call(weather.validate({"city": city})) for city in DEMO_CITIES}
    rows: list[dict[str, Any]] = []
    seconds: list[float] = []
    for i in range(runs + 1):
        before = await _demo_times()
        start = time.perf_counter()
        result = await agent.arun(DEMO_QUESTION)
        elapsed = time.perf_counter() - start
        after = await _demo_times()
        if i == 0:
            continue  # warm-up: fills each context's KV cache with its prompt's fixed start
        seconds.append(elapsed)
        facts = [city_facts(weather_texts[city], (before[city], after[city])) for city in DEMO_CITIES]
        problems = check_demo_answer(result.answer, facts)
        rows.append(
            {
                "seconds": elapsed,
                "rounds": result.rounds,
                "tasks": [t.line for t in result.tasks],
                "failed_tasks": sum(1 for t in result.tasks if t.error is not None),
                "plan_errors": len(result.plan_errors),
                "answer": result.answer,
                "answer_right": not problems,
                "answer_problems": list(problems),
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
        "answer_right": sum(r["answer_right"] for r in rows),
    }


# --------------------------------------------------------------------------- right answers


@dataclasses.dataclass(frozen=True, slots=True)
class Config:
    """A configuration of ``LlamaCppChat`` measured for right answers.

    Attributes:
        key: its name on the command line and in the JSON.
        label: how the table shows it.
        kwargs: the keyword arguments given to ``LlamaCppChat`` (none for the default).
    """

    key: str
    label: str
    kwargs: dict[str, Any]


CONFIGS: tuple[Config, ...] = (
    Config("default", "LlamaCppChat()", {}),
    Config("before", "grounded=False, extractive=False", {"grounded": False, "extractive": False}),
    Config("grounded", "grounded=True, extractive=False", {"grounded": True, "extractive": False}),
    Config("extractive", "grounded=False, extractive=True", {"grounded": False, "extractive": True}),
)
"""The configurations: the default (grounded plans and an extractive joiner), neither (the
behaviour before them), and each alone."""

DEFAULT_CONFIGS = ("default", "before")
"""What ``--configs`` measures unless told: the default against the behaviour before it (the
joiner of ``before`` and ``grounded`` writes free text, up to a minute a run on 2 busy cores)."""

TEMPERATURES: tuple[float, ...] = (0.0, 0.7)
"""0: greedy, deterministic (the runs are repeats); 0.7: sampled with seeds ``0..N-1``."""


async def _demo_times() -> dict[str, str]:
    """``local_time`` of each demo city, called directly (not through the agent)."""
    return {city: await local_time.call(local_time.validate({"city": city})) for city in DEMO_CITIES}


def _check(
    question: Question,
    answer: str | None,
    tasks: Sequence[TaskRecord],
    agent: LLMCompiler,
    facts: Sequence[CityFacts],
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The answer's problems and the plan's problems (empty: right)."""
    calls = planned_calls(tasks, agent.tools)
    if question.key == "demo":
        answer_problems = check_demo_answer(answer, facts) if answer is not None else ()
        plan_problems = check_demo_plan(calls)
    elif question.key == "quickstart":
        answer_problems = check_quickstart_answer(answer) if answer is not None else ()
        plan_problems = check_quickstart_plan(calls)
    else:
        answer_problems = check_mytools_answer(answer) if answer is not None else ()
        plan_problems = check_mytools_plan(calls)
    return answer_problems, plan_problems


async def answer_run(
    question: Question, chat: ChatModel, weather_texts: Mapping[str, str], timeout: float | None = None
) -> dict[str, Any]:
    """One run of ``question`` with ``chat`` as planner and joiner, its answer and plan checked.

    Args:
        question: the question and its tools.
        chat: the model.
        weather_texts: ``weather(city)`` of each demo city, from calling the tool directly.
        timeout: seconds a run may take; a run that takes longer is cancelled and counts as wrong.

    Returns:
        The run as JSON-ready data: latency, answer, ``answer_right`` and ``plan_right`` with
        the problems found, the plan lines. A run that fails (``RunError``) has no answer and
        counts as wrong.
    """
    agent = LLMCompiler(llm=chat, tools=question.tools)
    before = await _demo_times() if question.key == "demo" else {}
    start = time.perf_counter()
    error: str | None = None
    answer: str | None = None
    tasks: Sequence[TaskRecord] = ()
    try:
        result = await asyncio.wait_for(agent.arun(question.text), timeout)
        answer, tasks = result.answer, result.tasks
    except RunError as exc:  # a failed run is a wrong answer, recorded as such
        tasks, error = exc.tasks, f"{type(exc).__name__}: {exc}"
    except TimeoutError:
        error = f"timed out after {timeout:g} s"
    elapsed = time.perf_counter() - start
    after = await _demo_times() if question.key == "demo" else {}
    facts = [city_facts(weather_texts[city], (before[city], after[city])) for city in before]
    answer_problems, plan_problems = _check(question, answer, tasks, agent, facts)
    if answer is None:
        answer_problems = (f"no answer: {error}",)
    return {
        "seconds": elapsed,
        "answer": answer,
        "error": error,
        "answer_right": not answer_problems,
        "answer_problems": list(answer_problems),
        "plan_right": not plan_problems,
        "plan_problems": list(plan_problems),
        "tasks": [t.line for t in tasks],
        "failed_tasks": sum(1 for t in tasks if t.error is not None),
        "local_times": sorted({*before.values(), *after.values()}),
    }


def _chat(config: Config, threads: int | None) -> LlamaCppChat:
    # the kwargs are this config's own; before the grounded/extractive change they raise TypeError
    return LlamaCppChat(n_threads=threads, **config.kwargs)


def _mode(chat: LlamaCppChat, name: str) -> bool | None:
    value = getattr(chat, name, None)
    return value if isinstance(value, bool) else None


async def bench_answers(
    threads: int | None,
    runs: int,
    configs: Sequence[Config],
    progress: Callable[[str], None] | None = None,
    timeout: float | None = RUN_TIMEOUT_S,
    checkpoint: Callable[[dict[str, Any]], None] | None = None,
    questions: Sequence[Question] = QUESTIONS,
) -> dict[str, Any]:
    """Right answers and right plans: every question, configuration and temperature, ``runs`` times each.

    One ``LlamaCppChat`` per configuration, loaded before the runs (every instance shares the
    process's loaded model; a new instance would check the model file again, about 0.5 s), its
    ``temperature`` and ``seed`` set for each run. A configuration whose keyword arguments
    ``LlamaCppChat`` does not take yet is skipped and named in ``skipped`` with the reason.
    ``progress``, if given, gets one line as each question, configuration and temperature ends.
    A run taking more than ``timeout`` seconds is cancelled and counts as wrong. ``checkpoint``,
    if given, gets the results so far as each of those ends (to save them: a long run that is
    stopped keeps what it measured). ``questions`` picks the questions (all three by default).
    """
    weather_texts = {city: await weather.call(weather.validate({"city": city})) for city in DEMO_CITIES}
    chats: dict[str, LlamaCppChat] = {}
    skipped: list[dict[str, str]] = []
    for config in configs:
        try:
            chats[config.key] = _chat(config, threads)
        except TypeError as exc:
            skipped.append({"config": config.key, "reason": f"LlamaCppChat does not take {config.kwargs}: {exc}"})
    usable = [c for c in configs if c.key in chats]
    for chat in chats.values():
        await chat.load()
    cells: list[dict[str, Any]] = []
    for question in questions:
        if usable:  # warm-up, not recorded: the question's prompt start enters the KV caches
            warm = chats[usable[0].key]
            warm.temperature, warm.seed = 0.0, 0
            await answer_run(question, warm, weather_texts, timeout)
        for config in usable:
            chat = chats[config.key]
            for temperature in TEMPERATURES:
                rows: list[dict[str, Any]] = []
                for seed in range(runs):
                    chat.temperature, chat.seed = temperature, seed
                    rows.append(await answer_run(question, chat, weather_texts, timeout))
                cells.append(
                    {
                        "question": question.key,
                        "config": config.key,
                        "temperature": temperature,
                        "seeds": list(range(runs)) if temperature > 0 else None,
                        "runs": rows,
                        "n": len(rows),
                        "answer_right": sum(r["answer_right"] for r in rows),
                        "plan_right": sum(r["plan_right"] for r in rows),
                        "seconds_median": _median(rows, "seconds"),
                    }
                )
                if checkpoint is not None:
                    checkpoint(_answers_doc(questions, usable, chats, skipped, runs, timeout, weather_texts, cells))
                if progress is not None:
                    cell = cells[-1]
                    progress(
                        f"{question.key} / {config.key} / temperature {temperature:g}: answer right "
                        f"{cell['answer_right']}/{runs}, plan right {cell['plan_right']}/{runs}, "
                        f"median {_fmt(cell['seconds_median'], 's')}"
                    )
    return _answers_doc(questions, usable, chats, skipped, runs, timeout, weather_texts, cells)


def _answers_doc(
    questions: Sequence[Question],
    usable: Sequence[Config],
    chats: Mapping[str, LlamaCppChat],
    skipped: list[dict[str, str]],
    runs: int,
    timeout: float | None,
    weather_texts: Mapping[str, str],
    cells: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "questions": [
            {
                "key": q.key,
                "question": q.text,
                "source": q.source,
                "tools": [getattr(t, "name", None) or t.__name__ for t in q.tools],
            }
            for q in questions
        ],
        "configs": [
            {
                "key": c.key,
                "label": c.label,
                "kwargs": c.kwargs,
                "grounded": _mode(chats[c.key], "grounded"),
                "extractive": _mode(chats[c.key], "extractive"),
            }
            for c in usable
        ],
        "skipped": skipped,
        "temperatures": list(TEMPERATURES),
        "runs_per_cell": runs,
        "run_timeout_s": timeout,
        "weather": dict(weather_texts),
        "cells": cells,
    }


async def _run(
    runs: int,
    threads: int | None,
    answer_runs: int,
    configs: Sequence[Config],
    progress: Callable[[str], None] | None,
    save: Callable[[dict[str, Any]], None] | None,
    questions: Sequence[Question],
) -> dict[str, Any]:
    start = time.perf_counter()
    path = await asyncio.to_thread(default_model_path)
    assemble_s = time.perf_counter() - start
    chat = LlamaCppChat(n_threads=threads)  # the default model (its file check is timed again in load)
    load_s = await chat.load()
    results: dict[str, Any] = {
        "complete": False,
        "machine": machine_info(),
        "model": chat.model_name,
        "model_path": path,
        "n_threads": chat.n_threads,
        "grounded": _mode(chat, "grounded"),
        "extractive": _mode(chat, "extractive"),
        "runs": runs,
        "load": {"assemble_or_verify_s": assemble_s, "open_contexts_s": load_s},
    }
    results["decode"] = await bench_decode(chat, runs)
    results["plan"] = await bench_plan(chat, runs)
    results["end_to_end"] = await bench_end_to_end(chat, runs)
    results["answers"] = None

    def checkpoint(answers: dict[str, Any]) -> None:
        results["answers"] = answers
        if save is not None:
            save(results)

    if answer_runs > 0:
        results["answers"] = await bench_answers(
            chat.n_threads, answer_runs, configs, progress, checkpoint=checkpoint, questions=questions
        )
    results["complete"] = True
    results["machine"]["load_average_at_end"] = machine_info()["load_average_1_5_15"]
    return results


def run_all(
    *,
    runs: int = 5,
    threads: int | None = None,
    answer_runs: int = 10,
    configs: Sequence[Config] = CONFIGS,
    progress: Callable[[str], None] | None = None,
    save: Callable[[dict[str, Any]], None] | None = None,
    questions: Sequence[Question] = QUESTIONS,
) -> dict[str, Any]:
    """Run every measurement and return the results as JSON-ready data.

    Args:
        runs: measured repetitions of the load, decode, plan and end-to-end measurements.
        threads: CPU threads (default: every core).
        answer_runs: runs per question, configuration and temperature for right answers (0: skip).
        configs: the ``LlamaCppChat`` configurations measured for right answers.
        progress: gets a line as each part of the right-answer measurement ends.
        save: gets the results so far (``complete`` false) as each part of the right-answer
            measurement ends.
        questions: the questions measured for right answers.
    """
    return asyncio.run(_run(runs, threads, answer_runs, configs, progress, save, questions))


def _fmt(value: float | None, unit: str, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f} {unit}"


def render(results: dict[str, Any], console: Console) -> None:
    """Print the results as tables."""
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
        "demo question end to end",
        _fmt(e2e["seconds_median"], "s"),
        f"{verdict} the {e2e['target_s']:.0f} s target; answer right {e2e['answer_right']}/{len(e2e['runs'])}",
    )
    console.print(table)
    if e2e["runs"]:
        last = e2e["runs"][-1]
        console.print(f"last plan: {'; '.join(last['tasks'])}")
        console.print(f"last answer: {last['answer']}")
    if results.get("answers") is not None:
        render_answers(results["answers"], console)


def render_answers(answers: dict[str, Any], console: Console) -> None:
    """Print the right-answer table: per question, configuration and temperature."""
    for skip in answers["skipped"]:
        console.print(f"[yellow]skipped[/] configuration {skip['config']}: {skip['reason']}")
    if not answers["cells"]:
        return
    labels = {c["key"]: c["label"] for c in answers["configs"]}
    table = Table(title=f"right answers, {answers['runs_per_cell']} runs per row")
    for name in ("question", "configuration", "temperature"):
        table.add_column(name)
    for name in ("answer right", "plan right", "median latency"):
        table.add_column(name, justify="right")
    for cell in answers["cells"]:
        n = cell["n"]
        temp = "0 (greedy: repeats)" if cell["temperature"] == 0 else f"{cell['temperature']:g} (seeds 0..{n - 1})"
        table.add_row(
            cell["question"],
            labels.get(cell["config"], cell["config"]),
            temp,
            f"{cell['answer_right']}/{n}",
            f"{cell['plan_right']}/{n}",
            _fmt(cell["seconds_median"], "s"),
        )
    console.print(table)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the tables, write the JSON."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.local_model", description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="measured repetitions per measurement (default 5)")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: every core)")
    ap.add_argument(
        "--answer-runs",
        type=int,
        default=10,
        help="runs per question, configuration and temperature for right answers (default 10; 0 skips them)",
    )
    ap.add_argument(
        "--configs",
        default=",".join(DEFAULT_CONFIGS),
        help=f"LlamaCppChat configurations for right answers, comma-separated, of {', '.join(c.key for c in CONFIGS)} "
        f"(default {','.join(DEFAULT_CONFIGS)})",
    )
    ap.add_argument(
        "--questions",
        default=",".join(q.key for q in QUESTIONS),
        help=f"questions for right answers, comma-separated (default all: {','.join(q.key for q in QUESTIONS)})",
    )
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"where to write the results ({DEFAULT_JSON})")
    args = ap.parse_args(argv)
    by_key = {c.key: c for c in CONFIGS}
    wanted = [k.strip() for k in args.configs.split(",") if k.strip()]
    unknown = [k for k in wanted if k not in by_key]
    if unknown:
        ap.error(f"--configs: unknown {', '.join(unknown)} (known: {', '.join(by_key)})")
    by_name = {q.key: q for q in QUESTIONS}
    asked = [k.strip() for k in args.questions.split(",") if k.strip()]
    if not asked or any(k not in by_name for k in asked):
        ap.error(f"--questions: pick from {', '.join(by_name)}, got {args.questions!r}")
    console = Console(width=None if sys.stdout.isatty() else 110)
    args.json.parent.mkdir(parents=True, exist_ok=True)

    def save(results: dict[str, Any]) -> None:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    results = run_all(
        runs=max(1, args.runs),
        threads=args.threads,
        answer_runs=max(0, args.answer_runs),
        configs=[by_key[k] for k in wanted],
        progress=lambda line: print(line, file=sys.stderr, flush=True),
        save=save,
        questions=[by_name[k] for k in asked],
    )
    render(results, console)
    save(results)
    console.print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
