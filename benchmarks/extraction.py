"""The structured extraction benchmark: ``Extractor``'s strategies over Wikigold's articles.

Three systems, one per strategy of ``llmcompiler.Extractor``, each extracting the schemas
``Person``, ``Location`` and ``Organization`` (``benchmarks.suites.wikigold``) from each article:

- ``extract_parallel``: one call per schema (and chunk), all at once through the engine's executor;
- ``extract_sequential``: the same calls one after another (the baseline);
- ``extract_native``: one request per chunk offering one tool per schema, each call one entity.

``oracle`` mode answers with the article's gold entities (``benchmarks.oracle.ExtractionOracle``)
on a streaming profile, so what is measured is the pipeline: precision and recall must be 1.0
(chunking and merging lose and add nothing), and latency and tokens follow from the calls each
strategy makes. ``model`` mode asks a real model; a strategy the model cannot run (native tool
calls on the local model) is marked ``unsupported``.

Each run is scored against the article's gold (``wikigold.score``: an entity is its type and its
normalised text within the article); a run that fails outright predicted nothing. A run's latency
is the time ``Extractor.arun`` took, on the event loop's clock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from benchmarks.oracle import ExtractionOracle, Profile
from benchmarks.runner import percentile, run_grid
from benchmarks.suites.wikigold import SCHEMAS, TYPES, Counts, Document, prf, score, summarize_counts
from llmcompiler import Extractor, Usage
from llmcompiler.models import ChatModel

__all__ = [
    "EXTRACTION_SYSTEMS",
    "STRATEGIES",
    "TARGETS",
    "ExtractionOutcome",
    "print_extraction_table",
    "run_document",
    "run_documents",
    "run_wikigold",
    "summarize_extraction",
    "targets",
]

STRATEGIES: Mapping[str, Literal["parallel", "sequential", "native"]] = {
    "extract_parallel": "parallel",
    "extract_sequential": "sequential",
    "extract_native": "native",
}
"""Each system's ``Extractor`` strategy."""

EXTRACTION_SYSTEMS: tuple[str, ...] = tuple(STRATEGIES)

TARGETS = {"speedup_vs_sequential_min": 2.5, "precision_min": 1.0, "recall_min": 1.0}
"""What oracle mode must show: ``extract_parallel`` at least 2.5x faster than ``extract_sequential``
with the three schemas; every system's precision and recall 1.0 (merging loses no gold entity and
adds none)."""

_NOT_SUPPORTED = re.compile(r"not supported", re.IGNORECASE)


@dataclasses.dataclass(kw_only=True, slots=True)
class ExtractionOutcome:
    """One system's run over one article.

    Attributes:
        system: the system (``EXTRACTION_SYSTEMS``).
        item: the article's id.
        finished: ``Extractor.arun`` returned (with or without errors).
        latency_s: how long it took (also for a run that failed).
        prompt_tokens: the prompt tokens of its model calls.
        completion_tokens: their completion tokens.
        cost_usd: what they cost, when known.
        chunks: how many chunks the article was split into.
        errors: the run's ``ExtractionResult.errors`` (calls or items that failed).
        error: why the run failed outright, or the first error's reason.
        counts: true and false positives and negatives per schema.
        predicted: how many entities it returned per schema (before scoring's deduplication).
    """

    system: str
    item: str
    finished: bool
    latency_s: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    chunks: int = 0
    errors: int = 0
    error: str | None = None
    counts: dict[str, Counts] = dataclasses.field(default_factory=dict)
    predicted: dict[str, int] = dataclasses.field(default_factory=dict)


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _names(items: Sequence[BaseModel]) -> list[str]:
    return [str(getattr(item, "name", "")) for item in items]


async def run_document(
    system: str,
    document: Document,
    llm: ChatModel,
    *,
    schemas: Sequence[type[BaseModel]] = SCHEMAS,
    cost: Callable[[int, int], float | None] | None = None,
) -> ExtractionOutcome:
    """Run ``system`` over ``document`` once and score it.

    Args:
        system: one of ``EXTRACTION_SYSTEMS``.
        document: the article.
        llm: the model (an ``ExtractionOracle`` in oracle mode).
        schemas: what to extract.
        cost: the cost of (prompt tokens, completion tokens), when the mode knows it.

    Raises:
        ValueError: an unknown system.
    """
    if system not in STRATEGIES:
        raise ValueError(f"unknown system {system!r}: choose from {', '.join(EXTRACTION_SYSTEMS)}")
    extractor = Extractor(schemas, llm=llm, strategy=STRATEGIES[system])
    gold = document.gold()
    loop = asyncio.get_running_loop()
    began = loop.time()
    try:
        result = await extractor.arun(document.text)
    except Exception as exc:  # a failed run is a result: it predicted nothing
        return ExtractionOutcome(
            system=system,
            item=document.id,
            finished=False,
            latency_s=loop.time() - began,
            error=_short(f"{type(exc).__name__}: {exc}"),
            counts=score(gold, {}),
        )
    latency = loop.time() - began
    predicted = {name: _names(items) for name, items in result.items.items()}
    usage = result.usage
    return ExtractionOutcome(
        system=system,
        item=document.id,
        finished=True,
        latency_s=latency,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cost_usd=cost(usage.prompt_tokens, usage.completion_tokens) if cost is not None else result.cost_usd,
        chunks=len(result.chunks),
        errors=len(result.errors),
        error=_short(f"{result.errors[0].reason}") if result.errors else None,
        counts=score(gold, predicted),
        predicted={name: len(names) for name, names in predicted.items()},
    )


LLMFactory = Callable[[Document], ChatModel]


async def run_documents(
    documents: Sequence[Document],
    systems: Sequence[str],
    llm_for: LLMFactory,
    *,
    concurrency: int = 1,
    cost: Callable[[int, int], float | None] | None = None,
    on_done: Callable[[ExtractionOutcome], None] | None = None,
) -> list[ExtractionOutcome]:
    """Run every system over every article, ``concurrency`` runs at a time, systems interleaved;
    the outcomes in (article, system) order."""

    async def one(system: str, document: Document) -> ExtractionOutcome:
        return await run_document(system, document, llm_for(document), cost=cost)

    return await run_grid(documents, systems, one, concurrency=concurrency, on_done=on_done)


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def summarize_extraction(outcomes: Sequence[ExtractionOutcome], systems: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each system's metrics: micro-averaged precision, recall and F1 (over every run: a failed
    one predicted nothing) and per type; latency (mean and median over every run) and tokens
    (mean per article over finished runs); ``speedup_vs_sequential`` (``extract_sequential``'s
    total latency over this system's, on the articles both finished); failures and errors."""
    sequential = {o.item: o.latency_s for o in outcomes if o.system == "extract_sequential" and o.finished}
    out: dict[str, dict[str, Any]] = {}
    for system in systems:
        runs = [o for o in outcomes if o.system == system]
        done = [o for o in runs if o.finished]
        latencies = [o.latency_s for o in runs]
        paired = [(sequential[o.item], o.latency_s) for o in done if o.item in sequential]
        costs = [o.cost_usd for o in done]
        known = [c for c in costs if c is not None]
        metrics = summarize_counts(o.counts for o in runs) if runs else {}
        out[system] = {
            "precision": metrics.get("precision"),
            "recall": metrics.get("recall"),
            "f1": metrics.get("f1"),
            "per_type": metrics.get("per_type"),
            "counts": {k: metrics[k] for k in ("tp", "fp", "fn")} if metrics else None,
            "latency_mean_s": _mean(latencies),
            "latency_p50_s": percentile(latencies, 50) if latencies else None,
            "prompt_tokens": _mean([o.prompt_tokens for o in done]),
            "completion_tokens": _mean([o.completion_tokens for o in done]),
            "cost_usd": _mean(known) if known and len(known) == len(costs) else None,
            "speedup_vs_sequential": (
                sum(b for b, _ in paired) / sum(s for _, s in paired) if paired and sum(s for _, s in paired) else None
            ),
            "failures": sum(not o.finished for o in runs),
            "errors_mean": _mean([o.errors for o in done]),
            "chunks_mean": _mean([o.chunks for o in done]),
            "runs": len(runs),
        }
        unsupported = [o.error for o in runs if o.error and _NOT_SUPPORTED.search(o.error)]
        if runs and len(unsupported) == len(runs) and not any(sum(o.predicted.values()) for o in runs):
            # Nothing was measured: no figure, only why (a model without native tool calls).
            kept = ("failures", "runs")
            out[system] = {k: (v if k in kept else None) for k, v in out[system].items()}
            out[system]["unsupported"] = unsupported[0]
    return out


def targets(systems: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The oracle-mode targets (``TARGETS``) and whether they are met."""
    speedup = (systems.get("extract_parallel") or {}).get("speedup_vs_sequential")
    least = TARGETS["speedup_vs_sequential_min"]
    out: dict[str, Any] = {
        "parallel_speedup_vs_sequential": {
            "value": speedup,
            "min": least,
            "met": speedup is not None and speedup >= least,
        }
    }
    for metric in ("precision", "recall"):
        values = {name: m.get(metric) for name, m in systems.items()}
        least = TARGETS[f"{metric}_min"]
        out[f"oracle_{metric}"] = {
            "value": values,
            "min": least,
            "met": all(v is not None and v >= least for v in values.values()),
        }
    return out


async def run_wikigold(
    *,
    mode: str,
    documents: Sequence[Document],
    systems: Sequence[str] = EXTRACTION_SYSTEMS,
    profile: Profile | None = None,
    llm: ChatModel | None = None,
    concurrency: int = 1,
    on_done: Callable[[ExtractionOutcome], None] | None = None,
) -> tuple[dict[str, Any], list[ExtractionOutcome]]:
    """Run ``systems`` over ``documents`` and return the results document and the runs.

    Args:
        mode: ``"oracle"`` (needs ``profile``) or ``"model"`` (needs ``llm``).
        documents: the articles.
        systems: which systems to run.
        profile: the oracle's streaming profile.
        llm: the real model.
        concurrency: runs at once.
        on_done: called with each run as it finishes.

    Raises:
        ValueError: an unknown mode or system, or a mode without what it needs.
    """
    unknown = [s for s in systems if s not in STRATEGIES]
    if unknown:
        raise ValueError(f"unknown systems {unknown}: choose from {', '.join(EXTRACTION_SYSTEMS)}")
    cost: Callable[[int, int], float | None] | None
    llm_for: LLMFactory
    if mode == "oracle":
        if profile is None:
            raise ValueError("oracle mode needs a profile")
        oracle_profile = profile
        oracle_profile.counter()  # load the tokenizer before any run is timed

        def oracle_for(document: Document) -> ChatModel:
            return ExtractionOracle(document.gold(), oracle_profile)

        llm_for = oracle_for

        def oracle_cost(prompt: int, completion: int) -> float | None:
            return oracle_profile.cost(Usage(prompt_tokens=prompt, completion_tokens=completion, calls=1))

        cost = oracle_cost
        model_name = f"oracle:{profile.name}"
    elif mode == "model":
        if llm is None:
            raise ValueError("model mode needs a model")
        real = llm

        def model_for(_document: Document) -> ChatModel:
            return real

        llm_for = model_for

        cost = None
        model_name = llm.model_name
    else:
        raise ValueError(f"unknown mode {mode!r}: choose oracle or model")

    started = time.monotonic()
    outcomes = await run_documents(documents, systems, llm_for, concurrency=concurrency, cost=cost, on_done=on_done)
    wall = time.monotonic() - started
    summary = summarize_extraction(outcomes, systems)
    doc: dict[str, Any] = {
        "suite": "wikigold",
        "model": model_name,
        "mode": mode,
        "items": len(documents),
        "schemas": {schema.__name__: TYPES[schema.__name__] for schema in SCHEMAS},
        "not_scored": ["MISC"],
        "systems": summary,
        "concurrency": concurrency,
        "wall_s": wall,
        "units": {
            "precision_recall_f1": "entity level, micro-averaged over the types PER, LOC, ORG and the articles; an "
            "entity is (type, text case-folded with white space squeezed) within an article, both gold and "
            "predictions deduplicated so; a failed run predicted nothing; MISC is neither extracted nor scored",
            "per_type": "the same per type, with its summed counts (tp, fp, fn)",
            "latency": "seconds per article (Extractor.arun), mean and median over every run",
            "speedup_vs_sequential": "extract_sequential's total latency over this system's, on the articles both "
            "finished",
            "tokens_and_cost": "mean per article over finished runs"
            + (
                f" (real counts by the profile's tokenizer, {profile.token_counter}: messages, the native tool "
                "definitions, and a response schema as one tool definition; benchmarks/oracle.py)"
                if mode == "oracle" and profile is not None
                else " (as the model reported them)"
            ),
            "errors_mean": "mean per finished run of ExtractionResult.errors (failed calls and invalid items)",
        },
    }
    if mode == "oracle" and profile is not None:
        doc["token_counter"] = profile.token_counter
        doc["profile"] = {
            "name": profile.name,
            "ttft_s": profile.ttft_s,
            "prefill_tokens_per_s": profile.prefill_tokens_per_s,
            "decode_tokens_per_s": profile.decode_tokens_per_s,
            "price_model": profile.price_model,
            "source": profile.source,
            "token_counter": profile.token_counter,
        }
        doc["targets"] = targets(summary)
    else:
        doc["token_counter"] = None
        doc["profile"] = None
    doc["per_item"] = [
        {
            "item": o.item,
            "system": o.system,
            "finished": o.finished,
            "latency_s": o.latency_s,
            "tokens": [o.prompt_tokens, o.completion_tokens],
            "chunks": o.chunks,
            "errors": o.errors,
            "error": o.error,
            "predicted": o.predicted,
            "scores": prf(_total(o.counts)),
            "counts": {TYPES[name]: dataclasses.asdict(c) for name, c in o.counts.items()},
        }
        for o in outcomes
    ]
    return doc, outcomes


def _total(counts: Mapping[str, Counts]) -> Counts:
    total = Counts()
    for c in counts.values():
        total.add(c)
    return total


def _fmt(value: Any, spec: str, suffix: str = "") -> str:
    return "—" if value is None else f"{value:{spec}}{suffix}"


def print_extraction_table(console: Console, title: str, systems: Mapping[str, Mapping[str, Any]]) -> None:
    """One row per system: precision, recall, F1 (and F1 per type), latency, tokens, speedup."""
    table = Table(title=title)
    columns = ("system", "precision", "recall", "F1", "F1 PER/LOC/ORG", "mean s", "p50 s", "vs sequential")
    for column in (*columns, "prompt tok", "completion tok", "failures", "errors"):
        table.add_column(column, no_wrap=column == "system", justify="left" if column == "system" else "right")
    for name, m in systems.items():
        if m.get("unsupported"):
            table.add_row(name, *(["—"] * 10), "unsupported", "—")
            continue
        per_type = m.get("per_type") or {}
        table.add_row(
            name,
            _fmt(m["precision"], ".3f"),
            _fmt(m["recall"], ".3f"),
            _fmt(m["f1"], ".3f"),
            "/".join(_fmt((per_type.get(t) or {}).get("f1"), ".2f") for t in ("PER", "LOC", "ORG")),
            _fmt(m["latency_mean_s"], ".2f"),
            _fmt(m["latency_p50_s"], ".2f"),
            _fmt(m["speedup_vs_sequential"], ".2f", "x"),
            _fmt(m["prompt_tokens"], ".0f"),
            _fmt(m["completion_tokens"], ".0f"),
            str(m["failures"]),
            _fmt(m["errors_mean"], ".2f"),
        )
    console.print(table)
    for name, m in systems.items():
        if m.get("unsupported"):
            console.print(f"{name}: not run by this model ({m['unsupported']})")
