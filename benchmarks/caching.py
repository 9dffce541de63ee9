"""Prompt caching in the oracle benchmark: what a question costs with and without the provider's
prefix cache, under the gpt-4o profile (``python -m benchmarks.caching``, ``make bench-caching``).

Every system runs every question of each suite once, in order, on the virtual clock (costs do
not depend on timing), with one ``oracle.PromptCache`` per suite: the first request with a given
static prefix (the system message, and the tool definitions of native tool calling) reads
nothing from the cache, every later one reads its prefix rounded down to 128 tokens when the
prefix has 1024 tokens or more (OpenAI's rule; it charges nothing to write). Cached tokens are
priced at gpt-4o's cached rate ($1.25 per million instead of $2.50; ``CACHE_PRICES``). That is
the best case, a lower bound on the cost: a real cache is best effort. The static prefix of each
request kind is reported, so a prefix under 1024 tokens (nothing cached) shows as such.

Writes ``benchmarks/results/caching.json`` and prints one row per suite and system.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._machine import machine_info
from benchmarks.oracle import PROFILES, PromptCache
from benchmarks.runner import SYSTEMS, oracle_factory, run_items, summarize
from benchmarks.suites import SUITES, load_suite
from llmcompiler import RunResult, Usage
from llmcompiler.testing import run_virtual

RESULTS = Path(__file__).parent / "results" / "caching.json"

KINDS = {"llmcompiler": ("plan", "join"), "react": ("react",), "parallel_fc": ("tools (native tools)",)}
"""The request kinds (``PromptCache.prefixes``) each system makes."""


async def _suite(name: str, limit: int | None, min_tokens: int) -> dict[str, Any]:
    profile = PROFILES["gpt-4o"]
    items = load_suite(name)[:limit] if limit else load_suite(name)
    cache = PromptCache(min_tokens=min_tokens)

    def cost(usage: Usage, _result: RunResult) -> float | None:
        return profile.cost(usage)

    # One question at a time, in the suite's order: "after the first question" is then exact.
    outcomes = await run_items(items, SYSTEMS, oracle_factory(profile, cache=cache), concurrency=1, cost=cost)
    summary = summarize(outcomes, SYSTEMS)
    return {
        "questions": len(items),
        "static_prefix_tokens": {
            kind: {
                "requests": len(sizes),
                "mean": round(sum(sizes) / len(sizes), 1),
                "cacheable_share": sum(size >= min_tokens for size in sizes) / len(sizes),
            }
            for kind, sizes in sorted(cache.prefixes.items())
        },
        "systems": {
            system: {
                key: summary[system][key]
                for key in ("cost_usd", "cost_cached_usd", "cached_share", "prompt_tokens", "accuracy")
            }
            for system in SYSTEMS
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Measure every suite (or ``--suite``), write the results, print the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.caching", description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=[*SUITES, "all"], default="all")
    parser.add_argument("--limit", type=int, default=None, help="the first N questions of each suite")
    parser.add_argument(
        "--min-tokens",
        type=int,
        default=PromptCache.MIN_TOKENS,
        help="the shortest prefix the cache serves (OpenAI: 1024; 0: a cache with no minimum, the idea's ceiling)",
    )
    parser.add_argument("--json", type=Path, default=None, help="default: results/caching.json (-min<N> if not 1024)")
    args = parser.parse_args(argv)
    suites = list(SUITES) if args.suite == "all" else [args.suite]
    began = time.monotonic()
    doc: dict[str, Any] = {
        "what": "cost per question under the gpt-4o profile without and with OpenAI's prefix cache (see the module)",
        "profile": "gpt-4o",
        "price_model": PROFILES["gpt-4o"].price_model,
        "min_tokens": args.min_tokens,
        "command": "python -m benchmarks.caching"
        + (f" --suite {args.suite}" if args.suite != "all" else "")
        + (f" --min-tokens {args.min_tokens}" if args.min_tokens != PromptCache.MIN_TOKENS else ""),
        "machine": machine_info(),
        "suites": {},
    }
    for name in suites:
        doc["suites"][name] = run_virtual(lambda name=name: _suite(name, args.limit, args.min_tokens))  # type: ignore[misc]
    doc["wall_s"] = round(time.monotonic() - began, 1)
    path: Path = args.json or (
        RESULTS if args.min_tokens == PromptCache.MIN_TOKENS else RESULTS.with_stem(f"caching-min{args.min_tokens}")
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")
    print(
        f"| suite | system | static prefix, mean tokens (share ≥ {args.min_tokens}) | cost / q, no cache | with cache "
        "| saved "
        "| cached share |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, suite in doc["suites"].items():
        for system, row in suite["systems"].items():
            shown = []
            for kind in KINDS.get(system, ()):
                prefix = suite["static_prefix_tokens"].get(kind)
                if prefix is not None:
                    share = prefix["cacheable_share"]
                    over = f" ({share:.0%} ≥ {args.min_tokens})" if args.min_tokens and share else ""
                    shown.append(f"{kind.split()[0]} {prefix['mean']:.0f}{over}")
            plain, cached = row["cost_usd"], row["cost_cached_usd"]
            saved = f"{1 - cached / plain:.1%}" if plain and cached is not None else "—"
            print(
                f"| {name} ({suite['questions']}) | {system} | {', '.join(shown)} | ${plain:.5f} | ${cached:.5f} "
                f"| {saved} | {row['cached_share']:.1%} |"
            )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
