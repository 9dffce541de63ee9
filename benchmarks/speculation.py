"""The speculation benchmark: ``llmcompiler`` beside ``llmcompiler_speculative`` on the same items.

``python -m benchmarks run --suite S --mode oracle --drafter {local,perfect}`` runs the oracle
planner (under ``--profile``, default gpt-4o) in both systems; the speculative one also gets a
drafter per item (``drafter_factory``):

- ``local``: the item's draft recorded from the real local model (``python -m benchmarks drafts``,
  ``benchmarks/results/drafts-local-<suite>.json``), replayed at its recorded times
  (``benchmarks.drafts.ReplayDrafter``). Items with no recorded draft are left out of every
  system of the run (``items_without_draft`` says how many).
- ``local-idle``: the same recorded drafts (text, tokens), retimed at the local model's speed
  measured on an idle machine (the ``local`` profile); a what-if for recordings taken under load.
- ``perfect``: the item's gold plan, written at once (``benchmarks.drafts.PerfectDrafter``): the
  ceiling of the idea.

``speculation_section`` makes the suite JSON's ``speculation`` object: ``hit_rate`` (offline: the
share of the gold calls the drafts wrote exactly, ``benchmarks.drafts.draft_hits``),
``engine_hit_rate`` (the engine's hits over the gold calls, in the speculative runs),
``wasted_calls_per_question`` (speculative calls no real task took, mean per run),
``drafter_tokens_per_question`` (prompt plus completion, mean per run), ``latency_saved_mean_s``
(paired mean of ``llmcompiler``'s latency minus ``llmcompiler_speculative``'s, on the items both
finished), and the timings that explain them: when the drafts ended against when the planner's
plan did.

``python -m benchmarks.speculation [DIR]`` prints the README's table from the result files in
``DIR`` (default ``benchmarks/results``): ``<suite>-oracle-speculative-<drafter>.json``, each
cell named by its field.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.drafts import Draft, PerfectDrafter, ReplayDrafter, draft_hits, gold_results, load_drafts
from benchmarks.oracle import PROFILES, render_plan
from benchmarks.runner import SPECULATIVE, LLMFactory, Outcome
from benchmarks.suites import Item
from llmcompiler.models import ChatModel

__all__ = [
    "DRAFTERS",
    "IDLE_FIRST_TOKEN_S",
    "IDLE_TOKENS_PER_S",
    "drafter_factory",
    "idle_drafts",
    "load_recording",
    "markdown_table",
    "speculation_section",
]

DRAFTERS = ("local", "local-idle", "perfect")
"""The ``--drafter`` choices."""

IDLE_FIRST_TOKEN_S = PROFILES["local"].ttft_s
IDLE_TOKENS_PER_S = PROFILES["local"].decode_tokens_per_s
"""``local-idle`` replays the recorded drafts at the local model's speed measured on an idle
machine (the ``local`` profile: benchmarks/results/local_model.json), not at their recorded times."""


def load_recording(path: Path) -> tuple[dict[str, Any], dict[str, Draft]]:
    """A suite's recorded drafts (``benchmarks.drafts.load_drafts``); ``FileNotFoundError`` when missing."""
    return load_drafts(path)


def drafter_factory(kind: str, drafts: Mapping[str, Draft] | None = None, *, model: str = "local") -> LLMFactory:
    """A new drafter per run: the item's recorded draft replayed (``local``) or its gold plan (``perfect``).

    Raises:
        ValueError: an unknown kind, or ``local`` without drafts.
    """
    if kind == "perfect":
        return PerfectDrafter
    if kind in ("local", "local-idle"):
        if drafts is None:
            raise ValueError("the local drafter replays recorded drafts: give them")
        recorded = drafts if kind == "local" else idle_drafts(drafts)

        def replay(item: Item) -> ChatModel:
            return ReplayDrafter(recorded[item.id], model_name=f"replay:{model}")

        return replay
    raise ValueError(f"unknown drafter {kind!r}: choose from {', '.join(DRAFTERS)}")


def idle_drafts(drafts: Mapping[str, Draft]) -> dict[str, Draft]:
    """The drafts retimed at the local model's idle speed (``IDLE_FIRST_TOKEN_S``, ``IDLE_TOKENS_PER_S``)."""
    return {k: d.retimed(IDLE_FIRST_TOKEN_S, IDLE_TOKENS_PER_S) for k, d in drafts.items()}


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _plan_s(outcome: Outcome) -> float | None:
    """How long the round-1 plan took, from the run's timeline."""
    if outcome.timeline is None:
        return None
    for part in outcome.timeline["model"]:
        if part["label"] == "model 1":
            return float(part["end"]) - float(part["start"])
    return None


def _drafter_label(kind: str, recording: Mapping[str, Any] | None) -> str:
    model = (recording or {}).get("model", "local")
    if kind == "local":
        return f"local (replayed: {model})"
    if kind == "local-idle":
        return (
            f"local-idle (the recorded drafts of {model} retimed at {IDLE_FIRST_TOKEN_S:g} s to the first token "
            f"and {IDLE_TOKENS_PER_S:g} tokens/s, the local profile's idle speed)"
        )
    return kind


async def speculation_section(
    kind: str,
    items: Sequence[Item],
    outcomes: Sequence[Outcome],
    *,
    drafts: Mapping[str, Draft] | None = None,
    recording: Mapping[str, Any] | None = None,
    items_without_draft: int = 0,
) -> dict[str, Any]:
    """The suite JSON's ``speculation`` object (see the module's docstring).

    Args:
        kind: ``local`` or ``perfect``.
        items: the items run (those with a draft).
        outcomes: the runs of both systems.
        drafts: the recorded drafts (``local``).
        recording: the recording file's document, for its model, machine and path.
        items_without_draft: items left out of the run for want of a draft.
    """
    per_item: list[dict[str, Any]] = []
    gold_total = hits_total = drafted_total = 0
    unscored: dict[str, str] = {}
    for item in items:
        text = render_plan(item.gold) if kind == "perfect" else (drafts or {})[item.id].text
        try:
            results = await gold_results(item)
        except Exception as exc:  # gold calls the item's own tools reject (2 of bfcl's): no hit rate
            unscored[item.id] = f"{type(exc).__name__}: {exc}"[:300]
            continue
        scored = draft_hits(item, text, results)
        gold_total += scored.gold
        hits_total += scored.hits
        drafted_total += scored.drafted
        per_item.append({"item": item.id, "gold": scored.gold, "drafted": scored.drafted, "hits": scored.hits})

    spec_runs = [o for o in outcomes if o.system == SPECULATIVE]
    with_spec = [o.speculation for o in spec_runs if o.speculation is not None]
    gold_of = {item.id: len(item.gold) for item in items}
    engine_gold = sum(gold_of[o.item] for o in spec_runs if o.speculation is not None)
    base = {o.item: o for o in outcomes if o.system == "llmcompiler" and o.finished and o.latency_s is not None}
    paired = [
        (base[o.item].latency_s, o.latency_s)
        for o in spec_runs
        if o.finished and o.latency_s is not None and o.item in base
    ]
    saved = [b - s for b, s in paired if b is not None and s is not None]
    base_mean = _mean([b for b, _ in paired if b is not None])
    replayed = idle_drafts(drafts) if kind == "local-idle" and drafts else drafts
    drafts_used = [replayed[i.id] for i in items] if kind != "perfect" and replayed else []
    plan_times = [t for o in base.values() if (t := _plan_s(o)) is not None]
    section: dict[str, Any] = {
        "drafter": _drafter_label(kind, recording),
        "items": len(items),
        "items_without_draft": items_without_draft,
        "hit_rate": hits_total / gold_total if gold_total else None,
        "gold_calls": gold_total,
        "hit_rate_unscored": unscored,
        "drafted_calls": drafted_total,
        "engine_hit_rate": (sum(s["hits"] for s in with_spec) / engine_gold) if engine_gold else None,
        "wasted_calls_per_question": _mean([float(s["misses"]) for s in with_spec]),
        "drafter_tokens_per_question": _mean(
            [float(s["drafter_prompt_tokens"] + s["drafter_completion_tokens"]) for s in with_spec]
        ),
        "drafter_completion_tokens_per_question": _mean([float(s["drafter_completion_tokens"]) for s in with_spec]),
        "latency_saved_mean_s": _mean(saved),
        "latency_saved_share": (statistics.fmean(saved) / base_mean) if saved and base_mean else None,
        "paired_items": len(saved),
        "engine": {
            "drafted_per_question": _mean([float(s["drafted"]) for s in with_spec]),
            "started_per_question": _mean([float(s["started"]) for s in with_spec]),
            "hits_per_question": _mean([float(s["hits"]) for s in with_spec]),
            "cancelled_per_question": _mean([float(s["cancelled"]) for s in with_spec]),
            "time_saved_s_per_question": _mean([float(s["time_saved_s"]) for s in with_spec]),
            "runs_with_drafter_errors": sum(1 for s in with_spec if s["errors"]),
            "runs_without_summary": len(spec_runs) - len(with_spec),
        },
        "timing": {
            "planner_plan_s_mean": _mean(plan_times),
            "draft_first_chunk_s_mean": _mean([t for d in drafts_used if (t := d.first_chunk_s) is not None]),
            "draft_end_s_mean": _mean([d.end_s for d in drafts_used]),
            "draft_completion_tokens_mean": _mean([float(d.usage.completion_tokens) for d in drafts_used]),
            "draft_tokens_per_s": (
                sum(d.usage.completion_tokens for d in drafts_used)
                / sum(d.end_s - (d.first_chunk_s or 0.0) for d in drafts_used)
                if drafts_used and sum(d.end_s - (d.first_chunk_s or 0.0) for d in drafts_used) > 0
                else None
            ),
        },
        "per_item": per_item,
        "units": {
            "hit_rate": "offline: gold calls the drafts wrote exactly (same tool, equal arguments after the tool's "
            "validation, a draft $k resolved through the gold call draft task k matched) over all gold calls; "
            "items whose gold calls their own tools reject are left out (hit_rate_unscored)",
            "engine_hit_rate": "the engine's hits (real tasks that took a speculative call's result) over the gold "
            "calls, in the llmcompiler_speculative runs",
            "wasted_calls_per_question": "speculative calls no real task took (SpeculationSummary.misses), "
            "mean per run",
            "drafter_tokens_per_question": "the drafter's prompt plus completion tokens (SpeculationSummary.usage), "
            "mean per run; the replayed drafts report the local model's own counts",
            "latency_saved_mean_s": "paired mean of llmcompiler's latency minus llmcompiler_speculative's, on the "
            "items both finished (above 0: speculation was faster)",
            "timing": "the planner's round-1 plan time (llmcompiler runs) against the recorded drafts' first chunk "
            "and end, seconds from the call's start",
        },
    }
    if recording is not None:
        section["recording"] = {
            "model": recording.get("model"),
            "items": recording.get("items"),
            "recorded_at": recording.get("recorded_at"),
            "machine": recording.get("machine"),
            "load_average_after": recording.get("load_average_after"),
            "command": recording.get("command"),
        }
    return section


_TABLE_SUITES = ("parallelqa", "bfcl", "nestful")
_TABLE_DRAFTERS = ("local", "local-idle", "perfect", "perfect-all")


def _cell(value: Any, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def markdown_table(results: Path) -> str:
    """The README's speculation table from the result files in ``results`` (rows for the files that exist)."""
    lines = [
        "| suite (questions) | drafter | hit rate | engine hit rate | latency without / with (s) | saved (s) "
        "| wasted calls / q | drafter tokens / q | plan ends (s) | draft ends (s) | draft tok/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for suite in _TABLE_SUITES:
        for drafter in _TABLE_DRAFTERS:
            path = results / f"{suite}-oracle-speculative-{drafter}.json"
            if not path.exists():
                continue
            doc = json.loads(path.read_text(encoding="utf-8"))
            spec, systems, timing = doc["speculation"], doc["systems"], doc["speculation"]["timing"]
            saved = spec["latency_saved_mean_s"]
            share = spec["latency_saved_share"]
            lines.append(
                f"| {suite} ({spec['items']}) | {drafter} | {_cell(spec['hit_rate'], 2)} "
                f"| {_cell(spec['engine_hit_rate'], 2)} "
                f"| {_cell(systems['llmcompiler']['latency_mean_s'], 2)} / "
                f"{_cell(systems[SPECULATIVE]['latency_mean_s'], 2)} "
                f"| {_cell(saved, 3)}{f' ({share:.1%})' if share else ''} "
                f"| {_cell(spec['wasted_calls_per_question'], 2)} | {_cell(spec['drafter_tokens_per_question'], 0)} "
                f"| {_cell(timing['planner_plan_s_mean'], 2)} | {_cell(timing['draft_end_s_mean'], 2)} "
                f"| {_cell(timing['draft_tokens_per_s'], 1)} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "results"))
