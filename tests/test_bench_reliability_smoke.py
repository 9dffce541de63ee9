"""The reliability benchmark at tiny sizes: its structure, and the zero targets of fuzzed plans,
injected faults and cancellations (issue 10). The rate figure is timing and is not asserted."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from benchmarks import reliability
from benchmarks._machine import machine_info


def test_fuzzed_plans_are_seeded_and_their_well_formed_lines_are_where_they_say() -> None:
    a = reliability.fuzz_plan(random.Random("x:1"))
    assert a == reliability.fuzz_plan(random.Random("x:1"))
    kinds: set[str] = set()
    for i in range(200):
        plan = reliability.fuzz_plan(random.Random(f"x:{i}"))
        kinds.update(plan.junk)
        for idx, (offset, _, line) in plan.planted.items():
            assert plan.text.startswith(line, offset)
            assert f"{idx}." in line
    # Every family of model-written trouble the issue names shows up in a couple of hundred plans.
    assert {"windows_path", "bad_escape", "big_number", "big_task_number", "big_ref", "nul", "invisible"} <= kinds
    assert {"deep", "mismatched", "unbalanced", "unterminated", "unknown_tool", "missing_ref", "ref_path"} <= kinds
    assert {"thought", "fence", "join", "trailing"} <= kinds


def test_chunks_rebuild_the_text_and_stay_few_for_long_texts() -> None:
    rng = random.Random(3)
    text = "1. echo(1)\r2. echo('x')\n" * 5
    for _ in range(20):
        assert "".join(reliability._chunks(text, rng)) == text
    long = "y" * 100_000
    chunks = reliability._chunks(long, rng)
    assert "".join(chunks) == long
    assert len(chunks) <= 2 * 300


def test_a_line_that_left_no_trace_is_reported() -> None:
    text = "1. echo(1)\nHere is a line nobody mentions\n\u200b\n```\n# a comment\n2. join()\nafter the end\n"
    texts = [reliability._norm("1. echo(1)"), reliability._norm("2. join()")]
    end = text.index("after")
    assert reliability._unaccounted(text, end, texts, []) == ["'Here is a line nobody mentions'"]
    texts.append(reliability._norm("Here is a line nobody mentions"))
    assert reliability._unaccounted(text, end, texts, []) == []


async def test_fuzzed_plans_neither_crash_nor_hang_and_lose_no_line() -> None:  # issue 10 rows 1-4
    out = await reliability.bench_fuzz(n_plans=40, seed=5)
    assert out["n_plans"] == 40
    assert out["records"] > 0
    assert out["well_formed_lines_checked"] > 0
    assert out["crashes"] == 0, out["examples"].get("crash")
    assert out["hangs"] == 0, out["examples"].get("hang")
    assert out["parsed_without_record"] == out["duplicate_records"] == out["records_without_line"] == 0
    assert out["well_formed_lost"] == 0, out["examples"].get("well_formed_lost")
    assert out["well_formed_wrong"] == 0, out["examples"].get("well_formed_wrong")
    assert out["lines_unaccounted"] == 0, out["examples"].get("line_unaccounted")
    assert out["met"] is True


def test_fault_plans_number_their_calls_and_end_in_join() -> None:
    rng = random.Random(1)
    plan = reliability.fault_plan(rng, first=5, fault_share=1.0)
    assert [t.idx for t in plan.tasks] == list(range(5, 5 + len(plan.tasks)))
    assert plan.join == 5 + len(plan.tasks)
    assert plan.text.endswith(f"{plan.join}. join()\n")
    assert all(t.mode != "ok" for t in plan.tasks)
    for t in plan.tasks:
        assert all(d < t.idx for d in t.deps)


async def test_injected_faults_lose_nothing_and_leave_nothing() -> None:  # issue 10 rows 6-10, 15-18
    out = await reliability.bench_faults(n_runs=12, seed=7, settle_s=5.0)
    assert out["n_runs"] == 12
    assert out["planned_faults"] > 0
    assert out["runs_raised_other"] == 0, out["examples"].get("run_crash")
    assert out["runs_hung"] == 0
    assert out["records_lost"] == out["records_doubled"] == out["records_stray"] == 0, out["examples"].get("records")
    assert out["errors_without_tool"] == 0, out["examples"].get("error_without_tool")
    assert out["dependents_not_skipped"] == 0, out["examples"].get("dependent_not_skipped")
    assert out["asyncio_tasks_left"] == 0, out["examples"].get("asyncio_tasks_left")
    assert out["threads_left"] == 0, out["threads_left_names"]
    assert out["processes_left"] == 0
    assert out["artifact_failures"] == 0, out["examples"].get("artifact_failure")
    assert out["met"] is True


async def test_cancelled_runs_leave_nothing_behind() -> None:  # issue 10 rows 15-18
    out = await reliability.bench_cancel(n_runs=8, seed=3, settle_s=5.0)
    assert out["n_runs"] == 8
    assert out["cancelled_mid_run"] + out["finished_before_cancel"] + out["cancel_not_cancelled_error"] == 8
    assert out["cancel_not_cancelled_error"] == 0, out["examples"].get("cancel_became")
    assert out["cancel_ignored"] == 0
    assert out["asyncio_tasks_left"] == 0, out["examples"].get("asyncio_tasks_left")
    assert out["threads_left"] == 0, out["threads_left_names"]
    assert out["sync_calls_still_running"] == 0
    assert out["processes_left"] == 0
    assert out["met"] is True


async def test_rate_reports_admitted_calls_against_the_definition() -> None:
    out = await reliability.bench_rate(rate=20.0, duration_s=0.3)
    assert out["expected"] == pytest.approx(6.0)
    assert out["calls_ready"] == 9
    assert 1 <= out["admitted"] <= out["calls_ready"]
    assert out["error"] == pytest.approx(abs(out["admitted"] - 6.0) / 6.0)
    assert isinstance(out["met"], bool)
    assert "burst 1" in out["burst_assumption"]


def _fake_results() -> dict[str, Any]:
    zero_faults = {
        "n_runs": 1,
        "fault_share_measured": 0.3,
        "records_lost": 0,
        "records_doubled": 0,
        "errors_without_tool": 0,
        "dependents_not_skipped": 0,
        "runs_raised_other": 0,
        "runs_hung": 0,
        "asyncio_tasks_left": 0,
        "threads_hung_on_purpose": 0,
        "threads_left": 0,
        "pool_size": 2,
        "processes_left": 0,
        "artifact_failures": 0,
        "runs_answered": 1,
        "runs_raised_our_error": 0,
        "examples": {},
        "met": True,
    }
    return {
        "machine": machine_info(),
        "quick": True,
        "fuzz": {
            "n_plans": 1,
            "guard_s": 10.0,
            "crashes": 0,
            "hangs": 0,
            "parsed_without_record": 0,
            "duplicate_records": 0,
            "well_formed_lines_checked": 1,
            "well_formed_lost": 0,
            "well_formed_wrong": 0,
            "lines": 1,
            "lines_unaccounted": 0,
            "chunks": 1,
            "records": 1,
            "max_plan_s": 0.001,
            "threads_peak": 1,
            "examples": {"crash": [{"plan": "1:1"}]},
            "met": True,
        },
        "faults": zero_faults,
        "cancel": {
            "n_runs": 1,
            "cancelled_mid_run": 1,
            "cancel_not_cancelled_error": 0,
            "cancel_ignored": 0,
            "asyncio_tasks_left": 0,
            "threads_hung_on_purpose": 0,
            "threads_left": 0,
            "processes_left": 0,
            "examples": {},
            "met": True,
        },
        "rate": {
            "rate_per_s": 10.0,
            "duration_s": 2.0,
            "expected": 20.0,
            "tolerance": 0.01,
            "admitted": 20,
            "error": 0.0,
            "max_in_any_1s_window": 10,
            "met": True,
        },
        "runtime_s": 0.0,
    }


@pytest.mark.allow_blocking  # main() runs its own event loops and writes a file
def test_main_quick_prints_the_table_and_writes_the_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[bool] = []

    def run_all(*, quick: bool = False) -> dict[str, Any]:
        calls.append(quick)
        return _fake_results()

    monkeypatch.setattr(reliability, "run_all", run_all)
    target = tmp_path / "out" / "reliability.json"
    assert reliability.main(["--quick", "--json", str(target)]) == 0
    assert calls == [True]
    written = json.loads(target.read_text(encoding="utf-8"))
    assert {"machine", "fuzz", "faults", "cancel", "rate"} <= set(written)
    printed = capsys.readouterr().out
    for needle in ("crashes", "hangs", "records lost", "asyncio tasks left", "threads left", "admitted calls"):
        assert needle in printed
