"""The results of a suite run: the table, the JSON file and the pictures.

The table's ``vs ReAct`` and ``vs native`` are speedups: ReAct's, and native parallel calling's,
mean latency over the system's, on the questions both finished. ``÷ ideal`` is the system's mean
latency over the mean ideal bound of the same questions (``benchmarks.ideal``: defined by no
system). ``executor slack`` is LLMCompiler's alone: its latency over the bound rebuilt from its
own run's timeline, which measures the executor's slack only, by construction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from benchmarks.runner import Outcome

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["MIN_BAR_FRACTION", "plot_latency", "plot_timeline", "print_scores", "print_table", "timeline_figure"]

_COLORS = {"llmcompiler": "#1f77b4", "react": "#d62728", "parallel_fc": "#2ca02c"}


def _fmt(value: Any, spec: str, suffix: str = "") -> str:
    return "—" if value is None else f"{value:{spec}}{suffix}"


def print_table(console: Console, title: str, systems: Mapping[str, Mapping[str, Any]]) -> None:
    """One row per system (see the module's docstring for the ratio columns)."""
    table = Table(title=title)
    for column in (
        "system",
        "mean s",
        "p50 s",
        "p95 s",
        "vs ReAct",
        "vs native",
        "÷ ideal",
        "executor slack",
        "prompt tok",
        "completion tok",
        "cost $",
        "accuracy",
        "plan accuracy",
        "failures",
    ):
        if column == "system":
            table.add_column(column, no_wrap=True)
        else:
            table.add_column(column, justify="right")
    for name, m in systems.items():
        if m.get("unsupported"):
            table.add_row(name, *(["—"] * 10), "n/a", "n/a", "unsupported")
            continue
        table.add_row(
            name,
            _fmt(m["latency_mean_s"], ".2f"),
            _fmt(m["latency_p50_s"], ".2f"),
            _fmt(m["latency_p95_s"], ".2f"),
            _fmt(m.get("speedup_vs_react"), ".2f", "x"),
            _fmt(m.get("speedup_vs_parallel_fc"), ".2f", "x"),
            _fmt(m.get("ideal_ratio"), ".3f"),
            _fmt(m.get("executor_slack"), ".3f"),
            _fmt(m["prompt_tokens"], ".0f"),
            _fmt(m["completion_tokens"], ".0f"),
            _fmt(m["cost_usd"], ".5f"),
            _fmt(m["accuracy"], ".3f"),
            _fmt(m.get("plan_accuracy"), ".3f"),
            str(m["failures"]),
        )
    console.print(table)
    print_scores(console, systems)
    for name, m in systems.items():
        if m.get("unsupported"):
            console.print(f"{name}: not run by this model ({m['unsupported']})")


def print_scores(console: Console, systems: Mapping[str, Mapping[str, Any]]) -> None:
    """The suite's own metrics (``scores``, e.g. NESTFUL's), one row per system; nothing when it has none."""
    names = list(dict.fromkeys(k for m in systems.values() for k in (m.get("scores") or {})))
    if not names:
        return
    table = Table(title="the suite's own metrics")
    table.add_column("system")
    for name in names:
        table.add_column(name.replace("_", " "), justify="right")
    for system, m in systems.items():
        scores = m.get("scores") or {}
        table.add_row(system, *(_fmt(scores.get(name), ".3f") for name in names))
    console.print(table)


def plot_latency(path: Path, title: str, outcomes: Sequence[Outcome], systems: Sequence[str]) -> None:
    """Box plots of per-question latency, one per system, with the mean ideal bound as a line
    (the mean over the questions that have one; ``benchmarks.ideal``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = [[o.latency_s for o in outcomes if o.system == s and o.latency_s is not None] for s in systems]
    shown = [(s, d) for s, d in zip(systems, data, strict=True) if d]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    if shown:
        box = ax.boxplot([d for _, d in shown], showmeans=True, patch_artist=True)
        ax.set_xticks(range(1, len(shown) + 1), [s for s, _ in shown])
        for patch, (s, _) in zip(box["boxes"], shown, strict=True):
            patch.set_facecolor(_COLORS.get(s, "#999999"))
            patch.set_alpha(0.45)
    bounds = {o.item: o.ideal_bound_s for o in outcomes if o.ideal_bound_s is not None}
    if bounds:
        mean_bound = sum(bounds.values()) / len(bounds)
        label = f"mean ideal bound {mean_bound:.2f} s (defined by no system)"
        ax.axhline(mean_bound, linestyle="--", color="#555555", label=label)
        ax.legend(loc="upper left", fontsize=8)
    ax.set_ylabel("seconds per question")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


MIN_BAR_FRACTION = 0.006
"""The narrowest bar of a timeline, as a fraction of its time axis: near-instant calls stay visible."""


def timeline_figure(title: str, example: Mapping[str, Mapping[str, Any]]) -> Figure | None:
    """One question, one panel per system: model calls and tool calls over time.

    A bar is at least ``MIN_BAR_FRACTION`` of the time axis wide, so a call that took no time
    still shows. Each tool call that depends on others (``deps`` of the runner's ``timeline()``)
    gets an arrow from the end of each such call's bar to its own bar's start. ``None`` when no
    system has a timeline.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [s for s, t in example.items() if t]
    if not names:
        return None
    rows = [max(1, len(example[s]["tools"])) + 1 for s in names]
    fig, axes = plt.subplots(
        len(names), 1, figsize=(9, 1.2 + 0.28 * sum(rows)), dpi=110, sharex=True, height_ratios=rows, squeeze=False
    )
    horizon = max([float(example[s]["total_s"]) for s in names] + [1e-3])
    min_width = horizon * MIN_BAR_FRACTION
    for ax, name in zip(axes[:, 0], names, strict=True):
        tl = example[name]
        labels = ["model", *[t["label"] for t in tl["tools"]]]
        for seg in tl["model"]:
            ax.barh(
                0,
                max(seg["end"] - seg["start"], min_width),
                left=seg["start"],
                color="#9467bd" if seg["label"].startswith("model") else "#c5b0d5",
                edgecolor="white",
                linewidth=0.8,
                height=0.6,
            )
        shown: dict[int, tuple[int, float, float]] = {}  # task number: row, start, shown end
        for k, seg in enumerate(tl["tools"], 1):
            width = max(seg["end"] - seg["start"], min_width)
            ax.barh(k, width, left=seg["start"], color=_COLORS.get(name, "#999999"), height=0.6)
            if "idx" in seg:
                shown[int(seg["idx"])] = (k, float(seg["start"]), float(seg["start"]) + width)
        for seg in tl["tools"]:
            if "idx" not in seg:
                continue
            row, begin, _ = shown[int(seg["idx"])]
            for dep in seg.get("deps", ()):
                if dep not in shown:
                    continue
                dep_row, _, dep_end = shown[dep]
                ax.annotate(
                    "",
                    xy=(begin, row),
                    xytext=(dep_end, dep_row),
                    arrowprops={"arrowstyle": "->", "color": "#444444", "linewidth": 0.7, "shrinkA": 0, "shrinkB": 0},
                )
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.invert_yaxis()
        ax.axvline(tl["total_s"], color="#333333", linewidth=0.8)
        ax.set_title(f"{name}: {tl['total_s']:.2f} s", fontsize=9, loc="left")
        ax.set_xlim(0, horizon * 1.02)
        ax.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel(
        "seconds from the question (model: dark = plan or turn, light = joiner; arrows: a call's inputs)"
    )
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_timeline(path: Path, title: str, example: Mapping[str, Mapping[str, Any]]) -> None:
    """``timeline_figure`` saved to ``path`` (nothing is written when no system has a timeline)."""
    import matplotlib.pyplot as plt

    fig = timeline_figure(title, example)
    if fig is None:
        return
    fig.savefig(path)
    plt.close(fig)
