"""The engine benchmarks run at tiny sizes and report what they promise; no timing is asserted."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from benchmarks import engine
from benchmarks._machine import machine_info


async def test_overhead_reports_every_shape_with_all_tasks_succeeded() -> None:
    out = await engine.bench_overhead(n_tasks=20, repetitions=2)
    assert out["n_tasks"] == 20
    assert set(out["shapes"]) == {"independent", "chain"}
    for shape in out["shapes"].values():
        assert shape["tasks_succeeded"] == 20
        assert shape["tasks_parsed"] == 20
        assert len(shape["execute_us_per_task_samples"]) == 2
        assert len(shape["parse_us_per_task_samples"]) == 2
        assert shape["execute_us_per_task_median"] > 0
        assert shape["execute_cpu_us_per_task_median"] >= 0
    assert isinstance(out["met"], bool)


def test_overhead_plans_have_the_requested_shape() -> None:
    assert engine.overhead_plan(3, "independent") == "1. noop(1)\n2. noop(2)\n3. noop(3)\n"
    assert engine.overhead_plan(3, "chain") == "1. noop(0)\n2. noop($1)\n3. noop($2)\n"
    with pytest.raises(ValueError, match="unknown plan shape"):
        engine.overhead_plan(3, "tree")


def test_aligned_chunks_end_right_after_each_closing_parenthesis() -> None:
    plan = engine.dispatch_plan(40, random.Random(1))
    chunks = engine.aligned_chunks(plan)
    assert "".join(chunks) == plan.text
    assert all(c.endswith(")") for c in chunks[:40])
    assert len(chunks) in (40, 41)  # plus the final newline


def test_random_chunks_rebuild_the_text() -> None:
    text = "1. probe(1)\n2. probe(2, [$1])\n"
    chunks = engine.random_chunks(text, random.Random(3), max_size=5)
    assert "".join(chunks) == text
    assert all(1 <= len(c) <= 5 for c in chunks)


async def test_dispatch_reports_percentiles_for_both_series() -> None:
    out = await engine.bench_dispatch(n_tasks=30, gap_s=0.0)
    assert set(out["series"]) == {"aligned", "random"}
    for series in out["series"].values():
        assert series["n_tasks"] == 30
        assert series["tasks_succeeded"] == 30
        assert series["tasks_with_deps"] > 0
        for where in ("task_started", "tool_body"):
            q = series[where]
            assert set(q) == {"p50_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms"}
            assert q["p50_ms"] <= q["p95_ms"] <= q["p99_ms"] <= q["max_ms"]


def test_random_dags_are_seeded_and_topologically_numbered() -> None:
    a = engine.random_dag(5, min_tasks=10, max_tasks=20)
    assert a == engine.random_dag(5, min_tasks=10, max_tasks=20)
    assert 10 <= a.n_tasks <= 20
    for i, deps in enumerate(a.deps, start=1):
        assert all(1 <= d < i for d in deps)
    assert all(20 <= ms <= 200 for ms in a.durations_ms)
    assert a.lines()[-1] == f"{a.n_tasks + 1}. join()\n"
    assert a.critical_path_ms() >= max(a.durations_ms)


async def test_makespan_reports_a_ratio_per_dag() -> None:
    out = await engine.bench_makespan(n_dags=2, min_tasks=3, max_tasks=5, tokens_per_s=20_000.0)
    assert out["n_dags"] == 2
    assert len(out["dags"]) == 2
    for dag in out["dags"]:
        assert dag["tasks_succeeded"] == dag["n_tasks"]
        assert dag["bound_s"] > 0
        assert dag["ratio"] == pytest.approx(dag["makespan_s"] / dag["bound_s"])
    assert out["ratio_max"] >= out["ratio_mean"]


@pytest.mark.allow_blocking  # main() runs its own event loops and writes a file
def test_main_quick_writes_the_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    fake = {
        "machine": machine_info(),
        "quick": True,
        "overhead": {
            "n_tasks": 1,
            "repetitions": 1,
            "target_us_per_task": 20.0,
            "met": True,
            "shapes": {
                "chain": {
                    "execute_us_per_task_median": 1.0,
                    "execute_us_per_task_min": 1.0,
                    "execute_cpu_us_per_task_median": 1.0,
                    "parse_us_per_task_median": 1.0,
                    "tasks_succeeded": 1,
                }
            },
        },
        "dispatch": {
            "n_tasks": 1,
            "target_p99_ms": 1.0,
            "series": {
                "aligned": {
                    "n_chunks": 1,
                    "task_started": {"p50_ms": 0.1, "p95_ms": 0.1, "p99_ms": 0.1, "max_ms": 0.1},
                    "tool_body": {"p50_ms": 0.1, "p95_ms": 0.1, "p99_ms": 0.1, "max_ms": 0.1},
                }
            },
        },
        "makespan": {
            "n_dags": 1,
            "tokens_per_s": 200.0,
            "target_ratio": 1.02,
            "met": True,
            "ratio_mean": 1.0,
            "ratio_max": 1.0,
            "ratio_measured_durations_mean": 1.0,
            "ratio_measured_durations_max": 1.0,
            "excess_ms_mean": 0.0,
            "excess_ms_max": 0.0,
            "dags": [{"n_tasks": 3, "depth": 1, "max_fan_in": 1, "sleep_overshoot_ms_max": 0.0}],
        },
        "large": {
            "line_chars": 10,
            "chunk_chars": 2,
            "parse_long_line_s": {"one string": 0.001},
            "trace_tasks": 1,
            "trace_dict_s": 0.001,
            "target_s": 1.0,
        },
        "runtime_s": 0.0,
    }

    def run_all(*, quick: bool = False) -> dict[str, object]:
        calls.append(quick)
        return fake

    monkeypatch.setattr(engine, "run_all", run_all)
    target = tmp_path / "out" / "engine.json"
    assert engine.main(["--quick", "--json", str(target)]) == 0
    assert calls == [True]
    written = json.loads(target.read_text(encoding="utf-8"))
    assert written["machine"]["cpu_count"] == machine_info()["cpu_count"]
    assert {"overhead", "dispatch", "makespan", "large", "machine"} <= set(written)


def test_large_inputs_are_measured_at_a_small_size() -> None:
    result = engine.bench_large(line_chars=2_000, chunk=50, n_tasks=50)
    assert set(result["parse_long_line_s"]) == {"one string", "prose", "dense arguments"}
    assert all(seconds > 0 for seconds in result["parse_long_line_s"].values())
    assert result["trace_tasks"] == 50 and result["trace_dict_s"] > 0
