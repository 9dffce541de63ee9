"""Benchmark suites: LLMCompiler against ReAct and native parallel function calling.

Usage::

    python -m benchmarks run --suite {bfcl,parallelqa,dag,nestful,all} --mode {oracle,model}
        [--model local] [--local-option NAME=on|off ...] [--profile gpt-4o] [--limit N]
        [--json FILE] [--out-dir DIR]
    python -m benchmarks run --suite wikigold --mode {oracle,model} [--profile ...] [--limit N]
    python -m benchmarks run --suite {parallelqa,bfcl,nestful} --mode oracle --drafter {local,local-idle,perfect}
    python -m benchmarks drafts --suite {parallelqa,bfcl,nestful,all} [--limit N]  # loads the model
    python -m benchmarks fetch     # download the BFCL data once (the bfcl-eval wheel, into a cache)
    python -m benchmarks sweep ... # time to first token x decode speed (benchmarks/sweep.py, its --help)

``oracle`` mode replays each question's gold calls with a scripted model on a named streaming
profile (``benchmarks.oracle``), so orchestration is measured apart from model quality; its
accuracy and plan accuracy must be 1.0 for every system, but on the runs an item says no
system of that kind can get right (``Item.oracle_misses``, listed in the results). ``model`` mode asks a real model (any
model string of ``llmcompiler.models.load_model``). Each run writes a JSON file, a latency
picture and a timeline of one question per system, and prints a table.

In oracle mode every system is also measured against each question's ideal bound
(``benchmarks.ideal``: one model call writing the first dependency level's gold calls, the
longest chain of the gold tool latencies, one answering call, on the same profile; no system's
timeline enters it), and tokens are real counts of the profile's tokenizer (``benchmarks.tokens``;
the document's ``token_counter``).

``--suite wikigold`` is the structured extraction benchmark (``benchmarks.extraction``): the
``Extractor`` strategies ``extract_parallel``, ``extract_sequential`` and ``extract_native`` over
Wikigold's articles, scored by entity-level precision, recall and F1; it writes
``wikigold-<tag>.json`` and a table, no pictures. ``all`` runs the four agent suites only.

``--drafter`` (oracle mode) adds the system ``llmcompiler_speculative``: LLMCompiler with a drafter,
the recorded drafts of the real local model replayed at their recorded times (``local``, from
``drafts-local-<suite>.json``, recorded by ``drafts``) or the gold plan at once (``perfect``); the
results file (``<suite>-oracle-speculative-<drafter>.json``) gets a ``speculation`` object
(``benchmarks.speculation``). Questions with no recorded draft are left out of every system.

``--local-option NAME=on|off`` (repeatable, only with ``--model local`` or ``local:<path>``)
passes ``NAME=True`` or ``False`` to ``llmcompiler.models._llamacpp.LlamaCppChat``, e.g.
``--local-option grounded=off --local-option extractive=off``; the options are recorded in the
results file (``local_options``) and named in its default name
(``bfcl-model-local-grounded-off-extractive-off.json``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from benchmarks._machine import machine_info
from benchmarks.drafts import DRAFT_SUITES, Draft, drafts_path, record_drafts
from benchmarks.ideal import IdealBound
from benchmarks.oracle import PROFILES, Profile, PromptCache, levels
from benchmarks.report import plot_latency, plot_timeline, print_table
from benchmarks.runner import (
    SPECULATIVE,
    SYSTEMS,
    LLMFactory,
    Outcome,
    ideal_bounds,
    oracle_factory,
    run_items,
    summarize,
)
from benchmarks.speculation import DRAFTERS, drafter_factory, load_recording, speculation_section
from benchmarks.suites import SUITES, Item, load_suite
from llmcompiler import RunResult, Usage
from llmcompiler.models import ChatModel

__all__ = [
    "ANCHORS",
    "PARALLELQA_TARGETS",
    "local_options",
    "main",
    "oracle_shortfalls",
    "parse_local_option",
    "run_suite",
]

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_PROFILE = "gpt-4o"

ANCHORS = {
    "source": "Kim et al., An LLM Compiler for Parallel Function Calling, ICML 2024 (arXiv 2312.04511)",
    "hotpotqa_speedup_vs_react": 1.80,
    "movie_recommendation_speedup_vs_react": 3.74,
    "max_cost_reduction_vs_react": 6.7,
    "max_speedup_vs_openai_parallel_fc": 1.35,
}
"""The paper's figures the results are read beside."""

PARALLELQA_TARGETS = {
    "speedup_vs_react_min": 2.0,
    "ideal_ratio_max": 1.05,
    "executor_slack_max": 1.05,
    "token_ratio_vs_react_min": 4.0,
}
"""What LLMCompiler must reach on ``parallelqa`` in oracle mode: ReAct's latency over its own at
least 2.0; its latency within 5% of the ideal bound (``ideal_ratio``, the bound no system defines)
and within 5% of its own executor bound (``executor_slack``); ReAct's tokens over its own at least
4.0, on real token counts."""

_NOT_SUPPORTED = re.compile(r"not supported", re.IGNORECASE)


_OPTION_NAME = re.compile(r"[A-Za-z_]\w*")
_SWITCH = {"on": True, "off": False}


def parse_local_option(text: str) -> tuple[str, bool]:
    """``"grounded=off"`` as ``("grounded", False)``; values ``on`` or ``off``.

    Raises:
        argparse.ArgumentTypeError: not ``NAME=on`` or ``NAME=off``.
    """
    name, sep, value = text.partition("=")
    name, value = name.strip(), value.strip().lower()
    if not sep or not _OPTION_NAME.fullmatch(name) or value not in _SWITCH:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=on or NAME=off (e.g. grounded=off)")
    return name, _SWITCH[value]


def local_options(given: Sequence[tuple[str, bool]] | None) -> dict[str, bool]:
    """The ``--local-option`` values as keyword arguments, in the order given.

    Raises:
        ValueError: an option given twice.
    """
    out: dict[str, bool] = {}
    for name, value in given or ():
        if name in out:
            raise ValueError(f"--local-option {name} is given twice")
        out[name] = value
    return out


def _options_tag(options: dict[str, bool]) -> str:
    return "".join(f"-{_slug(name)}-{'on' if value else 'off'}" for name, value in options.items())


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower() or "model"


def _targets(systems: dict[str, dict[str, Any]]) -> dict[str, Any]:
    ours, react = systems.get("llmcompiler", {}), systems.get("react", {})
    ours_tokens = (ours.get("prompt_tokens") or 0) + (ours.get("completion_tokens") or 0)
    react_tokens = (react.get("prompt_tokens") or 0) + (react.get("completion_tokens") or 0)
    values = {
        "speedup_vs_react": ours.get("speedup_vs_react"),
        "ideal_ratio": ours.get("ideal_ratio"),
        "executor_slack": ours.get("executor_slack"),
        "token_ratio_vs_react": react_tokens / ours_tokens if ours_tokens and react_tokens else None,
    }
    out: dict[str, Any] = {}
    for name, value in values.items():
        if f"{name}_min" in PARALLELQA_TARGETS:
            least = PARALLELQA_TARGETS[f"{name}_min"]
            out[name] = {"value": value, "min": least, "met": value is not None and value >= least}
        else:
            most = PARALLELQA_TARGETS[f"{name}_max"]
            out[name] = {"value": value, "max": most, "met": value is not None and value <= most}
    return out


def _ideal_section(bounds: dict[str, IdealBound], errors: dict[str, str]) -> dict[str, Any]:
    """The ideal bound's parts per item, their means, and the items that could not be traced."""
    parts = ("plan_s", "tools_s", "answer_s", "total_s", "stream_margin_s")
    per_item = {
        item: {part: getattr(b, part) for part in parts}
        | {
            "plan_tokens": b.plan_tokens,
            "answer_prompt_tokens": b.answer_prompt_tokens,
            "answer_tokens": b.answer_tokens,
        }
        for item, b in bounds.items()
    }
    means = {part: (sum(p[part] for p in per_item.values()) / len(per_item)) if per_item else None for part in parts}
    return {"mean": means, "untraced": errors, "per_item": per_item}


def _example(items: Sequence[Item], outcomes: Sequence[Outcome], systems: Sequence[str]) -> dict[str, Any] | None:
    """The timelines of one question every system answered: the one with the most gold calls
    among the first dozen such questions."""
    by_item: dict[str, dict[str, Outcome]] = {}
    for o in outcomes:
        by_item.setdefault(o.item, {})[o.system] = o
    # Systems that finished no run at all (a model without native tool calls) are left out.
    systems = [s for s in systems if any(o.system == s and o.timeline for o in outcomes)]
    candidates = [
        item
        for item in items
        if systems and all(s in by_item.get(item.id, {}) and by_item[item.id][s].timeline for s in systems)
    ][:12]
    if not candidates:
        return None
    chosen = max(candidates, key=lambda i: (len(levels(i.gold)) > 1, len(i.gold)))
    return {
        "item": chosen.id,
        "question": chosen.question,
        "timelines": {s: by_item[chosen.id][s].timeline for s in systems},
    }


def _mark_unsupported(summary: dict[str, dict[str, Any]], outcomes: Sequence[Outcome]) -> None:
    for system, metrics in summary.items():
        runs = [o for o in outcomes if o.system == system]
        if runs and all(not o.finished and o.error and _NOT_SUPPORTED.search(o.error) for o in runs):
            metrics["unsupported"] = runs[0].error


async def run_suite(
    suite: str,
    *,
    mode: str,
    items: Sequence[Item],
    systems: Sequence[str] = SYSTEMS,
    profile: Profile | None = None,
    llm: ChatModel | None = None,
    concurrency: int = 1,
    progress: Progress | None = None,
    on_done: Callable[[Outcome], None] | None = None,
    drafter_for: LLMFactory | None = None,
) -> tuple[dict[str, Any], list[Outcome]]:
    """Run ``systems`` over ``items`` and return the results document and the runs.

    Args:
        suite: the suite's name (for the document).
        mode: ``"oracle"`` (needs ``profile``) or ``"model"`` (needs ``llm``).
        items: the questions.
        systems: which systems to run.
        profile: the oracle's streaming profile.
        llm: the real model.
        concurrency: runs at once.
        progress: a rich progress display to advance.
        on_done: called with each run as it finishes.
        drafter_for: a new drafter per ``llmcompiler_speculative`` run (``benchmarks.speculation``).
    """
    ideal: dict[str, IdealBound] = {}
    untraced: dict[str, str] = {}
    if mode == "oracle":
        if profile is None:
            raise ValueError("oracle mode needs a profile")
        ideal, untraced = await ideal_bounds(items, profile)
        llm_for = oracle_factory(profile, cache=PromptCache())  # cost_cached_usd beside cost_usd
        oracle_profile = profile

        def oracle_cost(usage: Usage, _result: RunResult) -> float | None:
            return oracle_profile.cost(usage)

        cost: Callable[[Usage, RunResult], float | None] = oracle_cost

        model_name = f"oracle:{profile.name}"
    elif mode == "model":
        if llm is None:
            raise ValueError("model mode needs a model")
        real = llm

        def llm_for_model(_item: Item) -> ChatModel:
            return real

        llm_for = llm_for_model

        def model_cost(_usage: Usage, result: RunResult) -> float | None:
            return result.cost_usd

        cost = model_cost

        model_name = llm.model_name
    else:
        raise ValueError(f"unknown mode {mode!r}: choose oracle or model")

    task = progress.add_task(f"{suite} ({mode})", total=len(items) * len(systems)) if progress else None

    def advance(outcome: Outcome) -> None:
        if progress is not None and task is not None:
            progress.advance(task)
        if on_done is not None:
            on_done(outcome)

    started = time.monotonic()
    outcomes = await run_items(
        items,
        systems,
        llm_for,
        concurrency=concurrency,
        cost=cost,
        on_done=advance,
        ideal=ideal,
        drafter_for=drafter_for,
    )
    wall = time.monotonic() - started
    summary = summarize(outcomes, systems)
    _mark_unsupported(summary, outcomes)
    doc: dict[str, Any] = {
        "suite": suite,
        "model": model_name,
        "mode": mode,
        "systems": summary,
        "items": len(items),
        "concurrency": concurrency,
        "wall_s": wall,
        "units": {
            "latency": "seconds per question, over the runs that finished",
            "speedup_vs_react": "ReAct's mean latency over this system's, on the questions both finished",
            "speedup_vs_parallel_fc": "native parallel calling's mean latency over this system's, "
            "on the questions both finished",
            "ideal_bound_mean_s": "mean ideal bound of the questions this system finished (oracle mode): one "
            "model call writing the first dependency level's gold calls (time to first token + their tokens), "
            "the longest chain of the gold tool latencies, one answering call (time to first token + the "
            "answer's tokens), on the same profile; no system's timeline enters it (benchmarks/ideal.py)",
            "ideal_ratio": "this system's mean latency / the mean ideal bound, over the same finished questions; "
            "not a strict lower bound: a system that streams may come in below it by at most the decode time of "
            "the first level's other calls (ideal.mean.stream_margin_s)",
            "executor_slack": "LLMCompiler only: mean over questions of latency / the bound rebuilt from the same "
            "run's own timeline (plan line arrivals, plan end, joiner time); it measures executor slack only, "
            "by construction, not how fast the question can be answered",
            "tokens_and_cost": "mean per question over finished runs"
            + (
                f" (real counts by the profile's tokenizer, {profile.token_counter}, of the requests each system "
                "sent; tool definitions charged as benchmarks/tokens.py says)"
                if mode == "oracle" and profile is not None
                else " (as the model reported them)"
            ),
            "accuracy": "right answers over all questions (a failed run counts as wrong)",
            "plan_accuracy": "runs that made the right tool calls (the suite's plan rule) over all questions; "
            "a failed run is scored by the calls it made",
        },
    }
    if profile is not None and mode == "oracle":
        doc["token_counter"] = profile.token_counter
        doc["ideal"] = _ideal_section(ideal, untraced)
        doc["profile"] = {
            "name": profile.name,
            "ttft_s": profile.ttft_s,
            "prefill_tokens_per_s": profile.prefill_tokens_per_s,
            "decode_tokens_per_s": profile.decode_tokens_per_s,
            "price_model": profile.price_model,
            "source": profile.source,
            "token_counter": profile.token_counter,
        }
    if suite == "parallelqa" and mode == "oracle":
        doc["targets"] = _targets(summary)
    if any(o.scores for o in outcomes):
        doc["units"]["scores"] = _score_units(suite)
    if mode == "oracle":
        doc["oracle_misses"] = _oracle_misses(items, outcomes)
    doc["anchors"] = ANCHORS
    doc["example"] = _example(items, outcomes, systems)
    doc["per_item"] = [
        {
            "item": o.item,
            "kind": o.kind,
            "system": o.system,
            "latency_s": o.latency_s,
            "elapsed_s": o.elapsed_s,
            "ideal_bound_s": o.ideal_bound_s,
            "executor_bound_s": o.executor_bound_s,
            "tokens": [o.prompt_tokens, o.completion_tokens],
            "correct": o.correct,
            "plan_correct": o.plan_correct,
            "error": o.error,
            "answer": o.answer,
            "tool_calls": o.tool_calls,
            "calls": o.calls,
            **({"scores": o.scores} if o.scores else {}),
            **({"speculation": o.speculation} if o.speculation else {}),
        }
        for o in outcomes
    ]
    return doc, outcomes


def _score_units(suite: str) -> Any:
    if suite == "nestful":
        from benchmarks.suites.nestful import SCORES

        return dict(SCORES)
    return "the suite's own metrics: mean over every run of the system"


def _oracle_misses(items: Sequence[Item], outcomes: Sequence[Outcome]) -> list[dict[str, Any]]:
    """The runs an item expects to miss even with the oracle (``Item.oracle_misses``), with why and how they went."""
    reasons = {(item.id, system): why for item in items for system, why in item.oracle_misses.items()}
    return [
        {
            "item": o.item,
            "system": o.system,
            "why": reasons[(o.item, o.system)],
            "correct": o.correct,
            "plan_correct": o.plan_correct,
        }
        for o in outcomes
        if (o.item, o.system) in reasons
    ]


def oracle_shortfalls(doc: dict[str, Any], outcomes: Sequence[Outcome]) -> dict[str, tuple[float, float]]:
    """Systems whose oracle runs were not all right (answer and plan), leaving out the expected misses:
    system: (accuracy, plan accuracy) over the other runs."""
    missed = {(m["item"], m["system"]) for m in doc.get("oracle_misses", [])}
    wrong: dict[str, tuple[float, float]] = {}
    for system in doc["systems"]:
        runs = [o for o in outcomes if o.system == system and (o.item, o.system) not in missed]
        if not runs:
            continue
        accuracy = sum(o.correct for o in runs) / len(runs)
        plans = sum(bool(o.plan_correct) or o.plan_correct is None for o in runs) / len(runs)
        if accuracy != 1.0 or plans != 1.0:
            wrong[system] = (accuracy, plans)
    return wrong


def _write(doc: dict[str, Any], outcomes: Sequence[Outcome], json_path: Path, *, plots: bool) -> list[Path]:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    written = [json_path]
    if plots:
        title = f"{doc['suite']} · {doc['mode']} · {doc['model']} · {doc['items']} questions"
        systems = list(doc["systems"])
        latency = json_path.with_name(json_path.stem + "-latency.png")
        plot_latency(latency, title, outcomes, systems)
        written.append(latency)
        if doc.get("example"):
            timeline = json_path.with_name(json_path.stem + "-timeline.png")
            plot_timeline(timeline, f"{doc['suite']} · {doc['example']['item']}", doc["example"]["timelines"])
            written.append(timeline)
    return written


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a suite")
    run.add_argument("--suite", required=True, choices=[*SUITES, "wikigold", "all"])
    run.add_argument("--mode", required=True, choices=["oracle", "model"])
    run.add_argument("--model", default="local", help="model string for --mode model (default: local)")
    run.add_argument("--base-url", default=None, help="an OpenAI-compatible server for --model openai:<name>")
    run.add_argument(
        "--local-option",
        action="append",
        type=parse_local_option,
        default=None,
        metavar="NAME=on|off",
        help="a LlamaCppChat option for --model local, e.g. grounded=off (repeatable)",
    )
    run.add_argument("--profile", default=DEFAULT_PROFILE, choices=sorted(PROFILES), help="oracle streaming profile")
    run.add_argument("--limit", type=int, default=None, help="the first N questions of each suite")
    run.add_argument(
        "--systems",
        default=None,
        help=f"comma-separated, default: all three ({', '.join(SYSTEMS)}; for wikigold "
        "extract_parallel, extract_sequential, extract_native)",
    )
    run.add_argument("--concurrency", type=int, default=None, help="runs at once (default: 8 oracle, 1 model)")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--json", type=Path, default=None, help="results file (one suite only)")
    run.add_argument("--out-dir", type=Path, default=RESULTS_DIR, help="where results go by default")
    run.add_argument("--no-plots", action="store_true")
    run.add_argument(
        "--drafter",
        default=None,
        choices=DRAFTERS,
        help=f"oracle mode: add {SPECULATIVE} with this drafter (local: the recorded drafts of "
        "benchmarks/results/drafts-local-<suite>.json replayed; local-idle: the same drafts retimed at the "
        "local model's idle speed; perfect: the gold plan at once)",
    )
    run.add_argument("--drafts", type=Path, default=None, help="the recorded drafts file (one suite only)")
    run.add_argument(
        "--clock",
        default="real",
        choices=["real", "virtual"],
        help="oracle mode: real time, or a virtual clock (model, tool and replayed draft delays exact, "
        "the engine's own CPU time not counted)",
    )
    drafts = sub.add_parser(
        "drafts", help="record a real drafter's draft plans (round 1) for the speculation benchmark (loads the model)"
    )
    drafts.add_argument("--suite", required=True, choices=[*DRAFT_SUITES, "all"])
    drafts.add_argument("--model", default="local", help="the drafter's model string (default: local)")
    drafts.add_argument("--base-url", default=None, help="an OpenAI-compatible server for --model openai:<name>")
    drafts.add_argument("--limit", type=int, default=None, help="the first N questions of each suite")
    drafts.add_argument("--seed", type=int, default=0)
    drafts.add_argument("--out-dir", type=Path, default=RESULTS_DIR, help="where the recordings go")
    sub.add_parser("fetch", help="download the BFCL data (the bfcl-eval wheel) into the cache")
    # Its options are benchmarks/sweep.py's own (``_main_sweep``), read when the command runs.
    sub.add_parser(
        "sweep", add_help=False, help="time to first token x decode speed: where LLMCompiler beats native calling"
    )
    return parser


def _main_sweep(rest: Sequence[str]) -> int:
    """``python -m benchmarks sweep ...``: ``benchmarks.sweep`` parses its options and runs."""
    sweep: Any = importlib.import_module("benchmarks.sweep")  # only this command needs it
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    sweep.add_parser(parser.add_subparsers(dest="command", required=True))
    status: int = sweep.run(parser.parse_args(["sweep", *rest]))
    return status


def _draft_line(console: Console, suite: str, total: int) -> Callable[[Draft], None]:
    """A line per recorded draft: how long it took and its tokens."""
    count = 0

    def on_done(draft: Draft) -> None:
        nonlocal count
        count += 1
        console.print(
            f"{suite} {count}/{total} {draft.item}: {draft.end_s:.2f} s, {draft.usage.completion_tokens} tokens"
            + (f" ERROR {draft.error}" if draft.error else ""),
            highlight=False,
        )

    return on_done


async def _main_drafts(args: argparse.Namespace, console: Console) -> int:
    """``drafts``: record the drafter's round-1 draft of each item, one model call at a time."""
    from llmcompiler.models import load_model

    suites = list(DRAFT_SUITES) if args.suite == "all" else [args.suite]
    model = load_model(args.model, base_url=args.base_url)
    load = getattr(model, "load", None)
    if callable(load):
        console.print(f"loading {model.model_name} ...")
        await load(("plan",))
    for suite in suites:
        items = load_suite(suite, seed=args.seed)
        if args.limit is not None:
            items = items[: args.limit]
        path = drafts_path(args.out_dir, suite, model.model_name)
        path.parent.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()

        def save(doc: dict[str, Any], path: Path = path, began: float = began) -> None:
            doc["command"] = "python -m benchmarks " + " ".join(sys.argv[1:])
            doc["limit"] = args.limit
            doc["seed"] = args.seed
            doc["wall_s"] = time.monotonic() - began
            path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")

        await record_drafts(suite, items, model, on_done=_draft_line(console, suite, len(items)), save=save)
        console.print(f"wrote {path} ({time.monotonic() - began:.0f} s)")
    return 0


def _speculative_setup(
    args: argparse.Namespace, suite: str, items: list[Item], console: Console
) -> tuple[list[Item], LLMFactory | None, dict[str, Any]] | None:
    """With ``--drafter``: the items that have a draft, the drafter factory, and what
    ``speculation_section`` needs; without, the items unchanged. ``None``: no recording, one that
    is not a recording, or none of the suite's questions in it (each said on ``console``)."""
    if not args.drafter:
        return items, None, {}
    if args.drafter == "perfect":
        return items, drafter_factory("perfect"), {}
    path = args.drafts or drafts_path(RESULTS_DIR, suite)
    try:
        recording, drafts = load_recording(path)
    except FileNotFoundError:
        console.print(f"[red]no recorded drafts at {path}: record them with python -m benchmarks drafts[/red]")
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        console.print(f"[red]{escape(f'{path} is not a drafts recording ({type(exc).__name__}: {exc})')}[/red]")
        return None
    kept = [item for item in items if item.id in drafts]
    console.print(f"{suite}: {len(kept)} of {len(items)} questions have a recorded draft ({path})")
    if not kept:  # a recording of another suite: nothing to run, and no result file to overwrite
        console.print(f"[red]no question of {suite} has a draft in {path}[/red]")
        return None
    spec_args: dict[str, Any] = {
        "drafts": drafts,
        "recording": recording | {"path": str(path)},
        "items_without_draft": len(items) - len(kept),
    }
    return kept, drafter_factory(args.drafter, drafts, model=str(recording.get("model", "local"))), spec_args


def _print_speculation(console: Console, spec: dict[str, Any]) -> None:
    timing = spec["timing"]
    console.print(
        f"speculation ({spec['drafter']}): hit rate {_number(spec['hit_rate'])} (engine "
        f"{_number(spec['engine_hit_rate'])}), latency saved {_number(spec['latency_saved_mean_s'])} s/question "
        f"over {spec['paired_items']} paired, wasted calls {_number(spec['wasted_calls_per_question'])}/question, "
        f"drafter tokens {_number(spec['drafter_tokens_per_question'])}/question; plan "
        f"{_number(timing['planner_plan_s_mean'])} s vs draft end {_number(timing['draft_end_s_mean'])} s; "
        f"{spec['items_without_draft']} questions without a draft left out",
        highlight=False,
    )


def _default_json(out_dir: Path, suite: str, mode: str, args: argparse.Namespace) -> Path:
    if mode == "oracle":
        tag = "oracle" if args.profile == DEFAULT_PROFILE else f"oracle-{args.profile}"
        if getattr(args, "drafter", None):
            tag += f"-speculative-{args.drafter}"
    else:
        tag = f"model-{_slug(args.model)}{_options_tag(local_options(args.local_option))}"
    return out_dir / f"{suite}-{tag}.json"


def _load_llm(args: argparse.Namespace, options: dict[str, bool]) -> ChatModel:
    """The model of ``--model``; the local one built with ``--local-option``s as keyword arguments."""
    if options:
        from llmcompiler.models._llamacpp import LlamaCppChat

        _, _, path = args.model.partition(":")
        local: ChatModel = LlamaCppChat(path or None, **options)
        return local
    from llmcompiler.models import load_model

    return load_model(args.model, base_url=args.base_url)


def _is_local(args: argparse.Namespace) -> bool:
    return bool(args.model == "local" or args.model.startswith("local:"))


async def _setup(
    args: argparse.Namespace, console: Console, known: Sequence[str], *, slots: tuple[str, ...]
) -> tuple[list[str], dict[str, bool], ChatModel | None] | None:
    """The systems to run (of ``known``), the ``--local-option`` values and, in model mode, the
    model, loaded for ``slots``; ``None`` (the problem printed) when an option is wrong."""
    systems = [s.strip() for s in (args.systems or ",".join(known)).split(",") if s.strip()]
    unknown = [s for s in systems if s not in known]
    if unknown or not systems:
        console.print(f"[red]unknown systems {unknown}: choose from {', '.join(known)}[/red]")
        return None
    try:
        options = local_options(args.local_option)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        return None
    if options and (args.mode != "model" or not _is_local(args)):
        console.print("[red]--local-option needs --mode model --model local (or local:<path.gguf>)[/red]")
        return None
    if args.mode != "model":
        return systems, options, None
    try:
        llm = _load_llm(args, options)
    except TypeError as exc:
        if not options:
            raise
        console.print(f"[red]--local-option: the local model does not take these options ({exc})[/red]")
        return None
    load = getattr(llm, "load", None)
    if callable(load):
        console.print(f"loading {llm.model_name} ...")
        await load(slots)
    return systems, options, llm


def _progress_lines(console: Console, suite: str, total: int) -> Callable[[Outcome], None]:
    """When the output is no terminal (a log file), a plain line every 5% of the runs instead of a bar."""
    began = time.monotonic()
    step = max(1, total // 20)
    counts = {"done": 0, "right": 0, "plan": 0}

    def on_done(outcome: Outcome) -> None:
        counts["done"] += 1
        counts["right"] += outcome.correct
        counts["plan"] += bool(outcome.plan_correct)
        done = counts["done"]
        if done % step == 0 or done == total:
            console.print(
                f"{suite}: {done}/{total} runs, {time.monotonic() - began:.0f} s, "
                f"answers right {counts['right']}, plans right {counts['plan']}",
                highlight=False,
            )

    return on_done


def _number(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float | int) else "—"


async def _main_wikigold(args: argparse.Namespace, console: Console) -> int:
    """``run --suite wikigold``: the extraction strategies over Wikigold (``benchmarks.extraction``)."""
    from benchmarks.extraction import EXTRACTION_SYSTEMS, print_extraction_table, run_wikigold
    from benchmarks.suites.wikigold import load_documents

    setup = await _setup(args, console, EXTRACTION_SYSTEMS, slots=("extract",))
    if setup is None:
        return 2
    systems, options, llm = setup
    documents = load_documents()
    if args.limit is not None:
        documents = documents[: args.limit]
    concurrency = args.concurrency or (8 if args.mode == "oracle" else 1)
    total = len(documents) * len(systems)
    done = 0
    began = time.monotonic()

    def on_done(_outcome: object) -> None:
        nonlocal done
        done += 1
        if done % max(1, total // 20) == 0 or done == total:
            console.print(f"wikigold: {done}/{total} runs, {time.monotonic() - began:.0f} s", highlight=False)

    doc, _ = await run_wikigold(
        mode=args.mode,
        documents=documents,
        systems=systems,
        profile=PROFILES[args.profile],
        llm=llm,
        concurrency=concurrency,
        on_done=on_done,
    )
    doc["command"] = "python -m benchmarks " + " ".join(sys.argv[1:])
    doc["limit"] = args.limit
    if args.mode == "model" and _is_local(args):
        doc["local_options"] = options
    doc["machine"] = machine_info()
    doc["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    print_extraction_table(
        console, f"wikigold · {args.mode} · {doc['model']} · {len(documents)} articles", doc["systems"]
    )
    status = 0
    if args.mode == "oracle":
        console.print(f"tokens counted with {doc.get('token_counter')} (benchmarks/tokens.py)")
        for name, target in doc["targets"].items():
            value = target["value"]
            shown = (
                ", ".join(f"{k} {_number(v)}" for k, v in value.items()) if isinstance(value, dict) else _number(value)
            )
            console.print(f"target {name}: {shown} (min {target['min']}: {'met' if target['met'] else 'NOT met'})")
        scores = {name: (m["precision"], m["recall"]) for name, m in doc["systems"].items()}
        if any(p != 1.0 or r != 1.0 for p, r in scores.values()):
            console.print(
                f"[red]oracle precision or recall below 1.0 (the pipeline lost or added entities): {scores}[/red]"
            )
            status = 1
    path = args.json or _default_json(args.out_dir, "wikigold", args.mode, args)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    console.print(f"wrote {path}")
    return status


async def _main_run(args: argparse.Namespace, console: Console) -> int:
    if args.suite == "wikigold":
        return await _main_wikigold(args, console)
    suites = list(SUITES) if args.suite == "all" else [args.suite]
    if args.json is not None and len(suites) > 1:
        console.print("[red]--json names one file: use it with one suite, or --out-dir with --suite all[/red]")
        return 2
    known = (*SYSTEMS, SPECULATIVE) if args.drafter else SYSTEMS
    if args.drafter and args.mode != "oracle":
        console.print("[red]--drafter needs --mode oracle (the planner is the oracle; the drafter is replayed)[/red]")
        return 2
    if args.drafter in ("local", "local-idle") and any(s not in DRAFT_SUITES for s in suites):
        console.print(f"[red]--drafter {args.drafter}: drafts are recorded for {', '.join(DRAFT_SUITES)} only[/red]")
        return 2
    if args.drafts is not None and len(suites) > 1:
        console.print("[red]--drafts names one file: use it with one suite[/red]")
        return 2
    setup = await _setup(args, console, known, slots=("plan", "join", "react"))
    if setup is None:
        return 2
    systems, options, llm = setup
    if args.drafter:
        systems = list(dict.fromkeys(["llmcompiler", *systems, SPECULATIVE]))
    concurrency = args.concurrency or (8 if args.mode == "oracle" else 1)
    command = "python -m benchmarks " + " ".join(sys.argv[1:])
    status = 0
    for suite in suites:
        items = load_suite(suite, seed=args.seed)
        if args.limit is not None:
            items = items[: args.limit]
        speculative = _speculative_setup(args, suite, items, console)
        if speculative is None:
            return 2
        items, drafter_for, spec_args = speculative
        on_done = None if console.is_terminal else _progress_lines(console, suite, len(items) * len(systems))
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress:
            doc, outcomes = await run_suite(
                suite,
                mode=args.mode,
                items=items,
                systems=systems,
                profile=PROFILES[args.profile],
                llm=llm,
                concurrency=concurrency,
                progress=progress,
                on_done=on_done,
                drafter_for=drafter_for,
            )
        if args.drafter:
            doc["speculation"] = await speculation_section(args.drafter, items, outcomes, **spec_args)
        doc["command"] = command
        doc["limit"] = args.limit
        doc["seed"] = args.seed
        doc["clock"] = args.clock
        if args.mode == "model" and _is_local(args):
            doc["local_options"] = options
        doc["machine"] = machine_info()
        doc["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        print_table(console, f"{suite} · {args.mode} · {doc['model']} · {len(items)} questions", doc["systems"])
        if "speculation" in doc:
            _print_speculation(console, doc["speculation"])
        if args.mode == "oracle":
            ideal = (doc.get("ideal") or {}).get("mean") or {}
            bound = f"mean ideal bound {ideal['total_s']:.2f} s" if ideal.get("total_s") else "no ideal bound"
            console.print(f"{bound}; tokens counted with {doc.get('token_counter')} (benchmarks/tokens.py)")
        if "targets" in doc:
            for name, target in doc["targets"].items():
                value = target["value"]
                shown = "—" if value is None else f"{value:.3f}"
                console.print(f"target {name}: {shown} ({'met' if target['met'] else 'NOT met'})")
        if args.mode == "oracle":
            wrong = oracle_shortfalls(doc, outcomes)
            if doc.get("oracle_misses"):
                console.print(
                    f"expected oracle misses (no system of that kind can get them right): "
                    f"{len(doc['oracle_misses'])} runs, listed in the results file"
                )
            if wrong:
                console.print(
                    f"[red]oracle accuracy or plan accuracy below 1.0 (gold data, tools and rules disagree): "
                    f"{wrong}[/red]"
                )
                status = 1
        path = args.json or _default_json(args.out_dir, suite, args.mode, args)
        for written in _write(doc, outcomes, path, plots=not args.no_plots):
            console.print(f"wrote {written}")
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """The command line."""
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "sweep":
        return _main_sweep(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    console = Console() if sys.stdout.isatty() else Console(width=150)
    if args.command == "fetch":
        from benchmarks.suites.bfcl import fetch

        console.print(f"BFCL data: {fetch()}")
        return 0
    if args.command == "drafts":
        return asyncio.run(_main_drafts(args, console))
    if args.clock == "virtual":
        return _run_virtual(args, console)
    return asyncio.run(_main_run(args, console))


def _run_virtual(args: argparse.Namespace, console: Console) -> int:
    """``run --clock virtual``: the runs on a ``VirtualClockLoop`` (oracle mode only); refused when
    a callback came from another thread (its times would be wrong)."""
    from llmcompiler.testing import VirtualClockLoop, run_virtual

    if args.mode != "oracle" or args.suite == "wikigold":
        console.print("[red]--clock virtual needs --mode oracle and an agent suite[/red]")
        return 2

    async def main_() -> int:
        status = await _main_run(args, console)
        loop = asyncio.get_running_loop()
        if isinstance(loop, VirtualClockLoop) and loop.thread_callbacks:
            console.print(
                f"[red]{loop.thread_callbacks} callbacks came from other threads on the virtual clock: "
                "the times are not to be trusted[/red]"
            )
            return 1
        return status

    return run_virtual(main_)


if __name__ == "__main__":
    sys.exit(main())
