"""The sweep: where LLMCompiler beats native parallel tool calling, over the region of model speeds.

Two streaming profiles are named (``benchmarks.oracle.PROFILES``): ``gpt-4o`` (0.45 s to the
first token, 80 tokens/s: assumed, like a hosted GPT-4o) and ``local`` (0.054 s, 31.2 tokens/s: the
local Gemma 3 270M as measured here). Whether LLMCompiler is faster than native parallel tool
calling depends on where a model sits between and around them, so the sweep runs both systems
over a grid of time to first token (``--ttft``) by decode speed (``--tps``), on the first
``--limit`` questions of ``parallelqa``, ``dag`` and ``nestful`` (``--suites``), in oracle mode
(``benchmarks.oracle``: the model replays the gold calls, so only timing differs).

Each grid point is the gpt-4o profile with those two numbers changed (``Profile.with_speed``):
its prefill rate (prompt tokens read per second before the first token) and its token counter
(``o200k_base``) stay. The grid's values are assumed (swept), not measured.

The clock. Every grid point runs on a ``llmcompiler.testing.VirtualClockLoop``: when nothing is
ready the clock jumps to the next timer, so the oracle's streaming delays and the tools'
latencies are exact and take no wall time, and the engine's own CPU time counts as zero. A grid
point's latency is therefore the timing model's alone (model time, tool time, and the order a
system puts them in). That holds only for code that waits on no thread: every suite's tools are
async and wait through ``suites._common.sleeping`` (an ``asyncio.sleep``), and the sweep refuses
a run in which the loop got a callback from another thread (``VirtualClockLoop.thread_callbacks``).
``--clock-check N`` runs N questions of each suite at the gpt-4o profile both in real time (a
normal event loop) and on the virtual clock, and reports the difference: the engine's overhead
the virtual clock leaves out.

What it writes (``--out-dir``, default ``benchmarks/results``):

- ``sweep.json``: per suite and grid point, each system's mean latency, accuracy (a check: in
  oracle mode every run must be right but the item's ``oracle_misses``), failures and ratio to
  the ideal bound (``benchmarks.ideal``), and LLMCompiler's speedup over native calling (native
  mean latency over LLMCompiler's, on the questions both finished);
- ``sweep.png``: one panel per suite, a heatmap of that speedup over the grid, the 1.0 contour
  (where the two are even) drawn, and the two named profiles marked;
- a table per suite on the terminal.

Usage::

    python -m benchmarks sweep [--suites parallelqa,dag,nestful] [--limit N]
        [--ttft 0.03,0.1,0.2,0.45,0.7,1.0] [--tps 30,50,80,110,150] [--systems llmcompiler,parallel_fc]
        [--clock-check N] [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
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
from benchmarks.ideal import GoldTrace
from benchmarks.oracle import PROFILES, Profile
from benchmarks.runner import SYSTEMS, Outcome, ideal_bounds, oracle_factory, run_items
from benchmarks.suites import SUITES, Item, load_suite
from llmcompiler import RunResult, Usage
from llmcompiler.testing import VirtualClockLoop, run_virtual

__all__ = [
    "BASE_PROFILE",
    "DEFAULT_LIMIT",
    "DEFAULT_SUITES",
    "DEFAULT_SYSTEMS",
    "DEFAULT_TPS",
    "DEFAULT_TTFT",
    "MARKED_PROFILES",
    "RESULTS_DIR",
    "PointDone",
    "ThreadWaitError",
    "add_parser",
    "build_document",
    "clock_check",
    "parse_numbers",
    "plot_sweep",
    "point_metrics",
    "print_sweep",
    "run",
    "run_point",
    "sweep",
    "unexpected_misses",
]

RESULTS_DIR = Path(__file__).resolve().parent / "results"
"""Where ``sweep.json`` and ``sweep.png`` go by default."""
BASE_PROFILE = "gpt-4o"
"""The profile every grid point starts from: its prefill rate, token counter and price stay."""
DEFAULT_SUITES = ("parallelqa", "dag", "nestful")
DEFAULT_TTFT = (0.03, 0.1, 0.2, 0.45, 0.7, 1.0)
"""Seconds to the first token (before prefill): from a local model's to a slow hosted one's."""
DEFAULT_TPS = (30.0, 50.0, 80.0, 110.0, 150.0)
"""Decode speeds, completion tokens per second."""
DEFAULT_SYSTEMS = ("llmcompiler", "parallel_fc")
"""The systems compared (``react`` may be added with ``--systems``)."""
MARKED_PROFILES = ("gpt-4o", "local")
"""The named profiles drawn on the picture, at their time to first token and decode speed."""
DEFAULT_LIMIT: int | None = None
"""Questions per suite by default: all of them (the whole default sweep takes a few minutes)."""
_REQUIRED = ("llmcompiler", "parallel_fc")


def parse_numbers(text: str) -> tuple[float, ...]:
    """``"0.03,0.1"`` as ``(0.03, 0.1)``: positive numbers, comma-separated, at least one.

    Raises:
        argparse.ArgumentTypeError: not such a list.
    """
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from exc
    if not values or any(not v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"give one or more positive numbers: {text!r}")
    return values


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``sweep`` command to ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "sweep",
        help="LLMCompiler vs native parallel calling over time to first token x decode speed (virtual clock)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument(
        "--suites", type=_names, default=",".join(DEFAULT_SUITES), help="comma-separated (default: %(default)s)"
    )
    parser.add_argument(
        "--limit", type=int, default=DEFAULT_LIMIT, help="the first N questions of each suite (default: all)"
    )
    parser.add_argument(
        "--ttft",
        type=parse_numbers,
        default=",".join(f"{v:g}" for v in DEFAULT_TTFT),
        help="seconds to the first token, comma-separated (default: %(default)s)",
    )
    parser.add_argument(
        "--tps",
        type=parse_numbers,
        default=",".join(f"{v:g}" for v in DEFAULT_TPS),
        help="decode tokens/s, comma-separated (default: %(default)s)",
    )
    parser.add_argument(
        "--systems",
        type=_names,
        default=",".join(DEFAULT_SYSTEMS),
        help="comma-separated; llmcompiler and parallel_fc always, react optional (default: %(default)s)",
    )
    parser.add_argument(
        "--clock-check",
        type=int,
        default=0,
        metavar="N",
        help="also run N questions per suite at the gpt-4o profile in real time and on the virtual clock",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR, help="where sweep.json and sweep.png go")
    return parser


# --------------------------------------------------------------------------- running


class ThreadWaitError(RuntimeError):
    """A run waited on a thread, so its durations on the virtual clock cannot be trusted."""


def _oracle_cost(profile: Profile) -> Callable[[Usage, RunResult], float | None]:
    def cost(usage: Usage, _result: RunResult) -> float | None:
        return profile.cost(usage)

    return cost


def run_point(
    items: Sequence[Item], systems: Sequence[str], profile: Profile, traces: dict[str, GoldTrace] | None = None
) -> list[Outcome]:
    """Run ``systems`` on ``items`` in oracle mode on ``profile``, on a fresh virtual clock.

    Each run gets its item's ideal bound under ``profile``; ``traces`` (by item id) keeps the
    gold traces between calls, as ``runner.ideal_bounds`` does.

    Raises:
        ThreadWaitError: something waited on a thread (a sync tool, ``asyncio.to_thread``).
    """

    async def main() -> list[Outcome]:
        loop = asyncio.get_running_loop()
        bounds, _untraced = await ideal_bounds(items, profile, traces=traces)
        outcomes = await run_items(items, systems, oracle_factory(profile), cost=_oracle_cost(profile), ideal=bounds)
        if isinstance(loop, VirtualClockLoop) and loop.thread_callbacks:
            raise ThreadWaitError(
                f"{loop.thread_callbacks} callbacks came from other threads while running on the virtual clock: "
                "some tool or model waits on a thread, so the virtual durations are wrong"
            )
        return outcomes

    profile.counter()  # load the tokenizer (file reads) before the loop runs, not on it
    return run_virtual(main)


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _paired_speedup(outcomes: Sequence[Outcome], baseline: str, system: str) -> tuple[float | None, int]:
    """``baseline``'s mean latency over ``system``'s, on the items both finished (and how many)."""
    done = {(o.system, o.item): o.latency_s for o in outcomes if o.finished and o.latency_s is not None}
    pairs = [
        (b, s)
        for (name, item), s in done.items()
        if name == system and (b := done.get((baseline, item))) is not None and s is not None
    ]
    if not pairs or sum(s for _, s in pairs) <= 0:
        return None, len(pairs)
    return sum(b for b, _ in pairs) / sum(s for _, s in pairs), len(pairs)


def unexpected_misses(items: Sequence[Item], outcomes: Sequence[Outcome]) -> list[str]:
    """The runs that answered wrong though the item expects no miss for that system (oracle mode: none)."""
    by_id = {item.id: item for item in items}
    return [
        f"{o.system} on {o.item}: {o.error or o.answer}"
        for o in outcomes
        if not o.correct and o.system not in by_id[o.item].oracle_misses
    ]


def point_metrics(outcomes: Sequence[Outcome], systems: Sequence[str]) -> dict[str, Any]:
    """One grid point: each system's mean latency, accuracy, failures and ideal ratio; the speedups."""
    out: dict[str, Any] = {}
    for system in systems:
        runs = [o for o in outcomes if o.system == system]
        done = [o for o in runs if o.finished and o.latency_s is not None]
        latencies = [o.latency_s for o in done if o.latency_s is not None]
        bounded = [o for o in done if o.ideal_bound_s]
        ideal = _mean([o.ideal_bound_s for o in bounded if o.ideal_bound_s is not None])
        latency_bounded = _mean([o.latency_s for o in bounded if o.latency_s is not None])
        out[system] = {
            "latency_mean_s": _mean(latencies),
            "accuracy": sum(o.correct for o in runs) / len(runs) if runs else None,
            "failures": sum(not o.finished for o in runs),
            "ideal_ratio": latency_bounded / ideal if ideal and latency_bounded is not None else None,
        }
    speedup, paired = _paired_speedup(outcomes, "parallel_fc", "llmcompiler")
    metrics: dict[str, Any] = {"systems": out, "speedup_vs_parallel_fc": speedup, "paired_items": paired}
    if "react" in systems:
        metrics["speedup_vs_react"] = _paired_speedup(outcomes, "react", "llmcompiler")[0]
    return metrics


PointDone = Callable[[str, float, float, dict[str, Any], float], None]
"""Called after each grid point of each suite: suite, ttft, tps, the point's metrics, wall seconds."""


def sweep(
    suites: Mapping[str, Sequence[Item]],
    *,
    ttft: Sequence[float] = DEFAULT_TTFT,
    tps: Sequence[float] = DEFAULT_TPS,
    systems: Sequence[str] = DEFAULT_SYSTEMS,
    base: Profile | None = None,
    on_point: PointDone | None = None,
) -> dict[str, Any]:
    """Run the grid over every suite; the results document's ``suites`` part, by suite name.

    Per suite: ``items``, ``points`` (one per grid point, ttft-major: ``ttft_s``,
    ``decode_tokens_per_s``, ``wall_s`` and ``point_metrics``), ``speedup_vs_parallel_fc`` as a
    matrix (a row per ``ttft``, a column per ``tps``), ``unexpected_misses`` and ``wall_s``.
    """
    start_profile = PROFILES[BASE_PROFILE] if base is None else base
    out: dict[str, Any] = {}
    for suite, items in suites.items():
        traces: dict[str, GoldTrace] = {}
        points: list[dict[str, Any]] = []
        matrix: list[list[float | None]] = []
        misses: list[str] = []
        began = time.perf_counter()
        for t in ttft:
            row: list[float | None] = []
            for s in tps:
                profile = start_profile.with_speed(ttft_s=t, decode_tokens_per_s=s)
                tick = time.perf_counter()
                outcomes = run_point(items, systems, profile, traces)
                wall = time.perf_counter() - tick
                metrics = point_metrics(outcomes, systems)
                misses.extend(f"ttft={t:g}s,{s:g}tok/s: {m}" for m in unexpected_misses(items, outcomes))
                points.append({"ttft_s": t, "decode_tokens_per_s": s, "wall_s": round(wall, 3), **metrics})
                row.append(metrics["speedup_vs_parallel_fc"])
                if on_point is not None:
                    on_point(suite, t, s, metrics, wall)
            matrix.append(row)
        out[suite] = {
            "items": len(items),
            "points": points,
            "speedup_vs_parallel_fc": matrix,
            "unexpected_misses": misses,
            "wall_s": round(time.perf_counter() - began, 3),
        }
    return out


def clock_check(
    suites: Mapping[str, Sequence[Item]], *, systems: Sequence[str] = DEFAULT_SYSTEMS, profile: Profile | None = None
) -> dict[str, Any]:
    """Each run's latency in real time (a normal event loop) against the virtual clock's.

    The difference is what the virtual clock leaves out: the engine's own CPU time (parsing,
    scheduling, the oracle's bookkeeping) and the event loop's lateness on a loaded machine.
    Runs one at a time at ``profile`` (default: the gpt-4o profile) and takes their real time.
    """
    chosen = PROFILES[BASE_PROFILE] if profile is None else profile
    out: dict[str, Any] = {"profile": chosen.name, "suites": {}}
    all_diffs: list[float] = []
    all_real: list[float] = []
    for suite, items in suites.items():
        virtual = run_point(items, systems, chosen)
        real = asyncio.run(run_items(items, systems, oracle_factory(chosen), cost=_oracle_cost(chosen)))
        v = {(o.system, o.item): o.latency_s for o in virtual if o.latency_s is not None}
        pairs = [
            (o.system, o.item, o.latency_s, virtual_s)
            for o in real
            if o.latency_s is not None and (virtual_s := v.get((o.system, o.item))) is not None
        ]
        runs = [{"system": s, "item": i, "real_s": r, "virtual_s": w} for s, i, r, w in pairs]
        diffs = [r - w for _, _, r, w in pairs]
        all_diffs.extend(diffs)
        all_real.extend(r for _, _, r, _ in pairs)
        out["suites"][suite] = {
            "runs": runs,
            "mean_difference_s": _mean(diffs),
            "max_difference_s": max(diffs) if diffs else None,
        }
    every: list[dict[str, Any]] = [r for suite in out["suites"].values() for r in suite["runs"]]
    out["mean_difference_s_by_system"] = {
        system: _mean([r["real_s"] - r["virtual_s"] for r in every if r["system"] == system]) for system in systems
    }
    out["mean_difference_s"] = _mean(all_diffs)
    out["max_difference_s"] = max(all_diffs) if all_diffs else None
    out["mean_relative_difference"] = sum(all_diffs) / sum(all_real) if all_real and sum(all_real) > 0 else None
    return out


# --------------------------------------------------------------------------- the picture and the table


def _position(value: float, grid: Sequence[float]) -> float | None:
    """Where ``value`` falls on an axis of cells at 0, 1, ... (linear between grid values), or ``None``."""
    ordered = list(grid)
    if value < ordered[0] or value > ordered[-1]:
        return None
    for k in range(len(ordered) - 1):
        lo, hi = ordered[k], ordered[k + 1]
        if lo <= value <= hi:
            return k + (value - lo) / (hi - lo) if hi > lo else float(k)
    return float(len(ordered) - 1)


def plot_sweep(path: Path, doc: Mapping[str, Any]) -> None:
    """One panel per suite: LLMCompiler's speedup over native calling on the grid (see the module)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import TwoSlopeNorm

    ttft: list[float] = doc["grid"]["ttft_s"]
    tps: list[float] = doc["grid"]["decode_tokens_per_s"]
    suites: dict[str, Any] = doc["suites"]
    values = [v for s in suites.values() for row in s["speedup_vs_parallel_fc"] for v in row if v is not None]
    half = max([0.05, *(abs(v - 1.0) for v in values)])  # symmetric about 1.0: equal colours, equal distance
    norm = TwoSlopeNorm(vmin=1.0 - half, vcenter=1.0, vmax=1.0 + half)
    fig, axes = plt.subplots(
        1, len(suites), figsize=(1.2 + 4.2 * len(suites), 4.6), dpi=110, squeeze=False, constrained_layout=True
    )
    image = None
    for ax, (suite, data) in zip(axes[0], suites.items(), strict=True):
        grid = np.array([[np.nan if v is None else v for v in row] for row in data["speedup_vs_parallel_fc"]])
        image = ax.imshow(grid, origin="lower", cmap="RdBu", norm=norm, aspect="auto")
        for i in range(len(ttft)):
            for j in range(len(tps)):
                if not np.isnan(grid[i, j]):
                    ax.text(j, i - 0.3, f"{grid[i, j]:.2f}x", ha="center", va="center", fontsize=8)
        if len(ttft) > 1 and len(tps) > 1 and np.nanmin(grid) < 1.0 < np.nanmax(grid):
            contour = ax.contour(np.arange(len(tps)), np.arange(len(ttft)), grid, levels=[1.0], colors="black")
            ax.clabel(contour, fmt="1.0", fontsize=7)
        for name, marker in zip(MARKED_PROFILES, ("*", "D"), strict=True):
            mark = doc["named_profiles"][name]
            x = _position(mark["decode_tokens_per_s"], tps)
            y = _position(mark["ttft_s"], ttft)
            if x is not None and y is not None:
                ax.plot(x, y, marker=marker, markersize=10, color="gold", markeredgecolor="black", linestyle="")
                ax.annotate(name, (x, y), textcoords="offset points", xytext=(7, 5), fontsize=8, weight="bold")
        ax.set_xticks(range(len(tps)), [f"{v:g}" for v in tps])
        ax.set_yticks(range(len(ttft)), [f"{v:g}" for v in ttft])
        ax.set_xlabel("decode speed, tokens/s")
        ax.set_ylabel("time to first token, s")
        ax.set_title(f"{suite} ({data['items']} questions)", fontsize=10)
    if image is not None:
        fig.colorbar(image, ax=axes[0].tolist(), label="native calling's mean latency / LLMCompiler's (>1: faster)")
    marks = []
    for name in MARKED_PROFILES:
        mark = doc["named_profiles"][name]
        where = f"{mark['ttft_s']:g} s, {mark['decode_tokens_per_s']:g} tok/s"
        inside = _position(mark["decode_tokens_per_s"], tps) is not None and _position(mark["ttft_s"], ttft) is not None
        marks.append(f"{name} ({where}{'' if inside else ', outside this grid'})")
    fig.suptitle(
        "LLMCompiler's speedup over native parallel tool calling (oracle model; black line: even). "
        f"Grid assumed (swept): prefill and token counter ({doc['token_counter']}) as the {BASE_PROFILE} profile; "
        f"virtual clock (engine CPU time not counted).\nMarked: {', '.join(marks)}; "
        "each mark is a position on this grid (the local profile's own prefill and counter differ).",
        fontsize=8,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def print_sweep(console: Console, doc: Mapping[str, Any]) -> None:
    """A table per suite: the speedup at each grid point (rows: time to first token; columns: decode speed)."""
    ttft: list[float] = doc["grid"]["ttft_s"]
    tps: list[float] = doc["grid"]["decode_tokens_per_s"]
    for suite, data in doc["suites"].items():
        console.print(
            f"[bold]{suite}[/] ({data['items']} questions): LLMCompiler's speedup over native parallel calling "
            "(rows: time to first token; columns: decode tokens/s)"
        )
        table = Table()
        table.add_column("TTFT \\ tok/s", justify="right")
        for s in tps:
            table.add_column(f"{s:g}", justify="right")
        for t, row in zip(ttft, data["speedup_vs_parallel_fc"], strict=True):
            cells = [
                "—" if v is None else f"[{'green' if v > 1.0 else 'red'}]{v:.2f}x[/]"
                for v in row  # a speedup of exactly 1.0 is not a win
            ]
            table.add_row(f"{t:g} s", *cells)
        console.print(table)
        if data["unexpected_misses"]:
            console.print(f"[red]{suite}: {len(data['unexpected_misses'])} unexpected wrong answers (see the JSON)[/]")


# --------------------------------------------------------------------------- the command


def _profile_doc(profile: Profile) -> dict[str, Any]:
    return {
        "ttft_s": profile.ttft_s,
        "decode_tokens_per_s": profile.decode_tokens_per_s,
        "prefill_tokens_per_s": profile.prefill_tokens_per_s,
        "token_counter": profile.token_counter,
        "source": profile.source,
    }


def build_document(
    results: Mapping[str, Any],
    *,
    ttft: Sequence[float],
    tps: Sequence[float],
    systems: Sequence[str],
    limit: int | None,
    seed: int,
) -> dict[str, Any]:
    """The ``sweep.json`` document around ``sweep``'s results."""
    base = PROFILES[BASE_PROFILE]
    return {
        "what": "LLMCompiler against native parallel tool calling (and ReAct when run) in oracle mode, over a grid "
        "of time to first token x decode speed",
        "grid": {
            "ttft_s": list(ttft),
            "decode_tokens_per_s": list(tps),
            "source": "assumed (swept): each point is the gpt-4o profile with its time to first token and decode "
            "speed replaced (Profile.with_speed); not measured",
        },
        "base_profile": {"name": base.name, **_profile_doc(base)},
        "token_counter": base.token_counter,
        "clock": "virtual (llmcompiler.testing.VirtualClockLoop): model and tool delays are exact and take no wall "
        "time; the engine's own CPU time is not counted (clock_check, when run, measures it)",
        "named_profiles": {name: _profile_doc(PROFILES[name]) for name in MARKED_PROFILES},
        "named_profiles_note": "marked on the picture at their time to first token and decode speed; the grid "
        f"keeps the {base.name} profile's prefill rate and token counter, which the local profile does not have "
        "(no prefill, the gemma3 counter), so its mark is a position on the grid, not a run of that profile",
        "systems": list(systems),
        "units": {
            "latency_mean_s": "seconds per question, mean over the runs that finished",
            "speedup_vs_parallel_fc": "native parallel calling's mean latency over LLMCompiler's, on the questions "
            "both finished (>1: LLMCompiler is faster)",
            "ideal_ratio": "mean latency over the mean ideal bound (benchmarks.ideal), on the same finished questions",
            "accuracy": "right answers over all questions: a check (oracle mode must be 1.0 but oracle_misses)",
            "wall_s": "real seconds the grid point took to simulate",
        },
        "limit": limit,
        "seed": seed,
        "suites": dict(results),
    }


def run(args: argparse.Namespace) -> int:
    """Run ``python -m benchmarks sweep`` (``add_parser``'s arguments); 0, or 1 on an unexpected wrong answer."""
    console = Console() if sys.stdout.isatty() else Console(width=150)
    systems = list(dict.fromkeys(args.systems))
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown or any(s not in systems for s in _REQUIRED):
        console.print(f"[red]--systems: choose from {', '.join(SYSTEMS)}, with llmcompiler and parallel_fc[/]")
        return 2
    bad = [s for s in args.suites if s not in SUITES]
    if bad or not args.suites:
        console.print(f"[red]--suites: unknown {bad}: choose from {', '.join(SUITES)}[/]")
        return 2
    if args.limit is not None and args.limit < 1:
        console.print("[red]--limit must be at least 1[/]")
        return 2
    suites = {name: load_suite(name, seed=args.seed)[: args.limit] for name in args.suites}
    points = len(args.ttft) * len(args.tps)
    done = {"n": 0}

    def on_point(suite: str, t: float, s: float, metrics: dict[str, Any], wall: float) -> None:
        done["n"] += 1
        speedup = metrics["speedup_vs_parallel_fc"]
        shown = "—" if speedup is None else f"{speedup:.2f}x"
        console.print(
            f"{suite} [{done['n']}/{points * len(suites)}] ttft {t:g} s, {s:g} tok/s: {shown} ({wall:.1f} s)",
            highlight=False,
        )

    began = time.perf_counter()
    results = sweep(suites, ttft=args.ttft, tps=args.tps, systems=systems, on_point=on_point)
    doc = build_document(results, ttft=args.ttft, tps=args.tps, systems=systems, limit=args.limit, seed=args.seed)
    doc["wall_s"] = round(time.perf_counter() - began, 3)
    runs = sum(len(items) for items in suites.values()) * points * len(systems)
    doc["wall_s_per_run"] = doc["wall_s"] / runs if runs else None
    if args.clock_check:
        checked = {name: items[: args.clock_check] for name, items in suites.items()}
        doc["clock_check"] = clock_check(checked, systems=systems)
    doc["command"] = "python -m benchmarks " + " ".join(sys.argv[1:])
    doc["machine"] = machine_info()
    doc["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    out_dir: Path = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "sweep.json"
    json_path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    png_path = out_dir / "sweep.png"
    plot_sweep(png_path, doc)
    print_sweep(console, doc)
    if "clock_check" in doc:
        check = doc["clock_check"]
        console.print(
            f"clock check ({check['profile']} profile, real time minus virtual): mean "
            f"{check['mean_difference_s']:.4f} s, max {check['max_difference_s']:.4f} s per run "
            f"({100 * (check['mean_relative_difference'] or 0):.2f}% of the real latency)",
            highlight=False,
        )
    console.print(f"wrote {json_path}\nwrote {png_path}  ({doc['wall_s']:.0f} s)")
    return 1 if any(s["unexpected_misses"] for s in results.values()) else 0
