"""The speculation benchmark's runs: llmcompiler_speculative beside llmcompiler, and the speculation object."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from benchmarks.__main__ import main, run_suite
from benchmarks.drafts import Draft
from benchmarks.oracle import PROFILES
from benchmarks.runner import SPECULATIVE, Outcome
from benchmarks.speculation import drafter_factory, markdown_table, speculation_section
from benchmarks.suites import Item, load_suite
from llmcompiler import Usage
from llmcompiler.testing import run_virtual


@pytest.fixture(autouse=True, scope="module")
def _tokenizer_loaded() -> None:
    PROFILES["gpt-4o"].counter()  # loaded once, before any loop runs (loading it blocks)


def _items(n: int) -> list[Item]:
    return load_suite("parallelqa")[:n]


def _run(
    items: Sequence[Item], kind: str, drafts: dict[str, Draft] | None = None
) -> tuple[dict[str, Any], list[Outcome]]:
    async def main_() -> tuple[dict[str, Any], list[Outcome]]:
        doc, outcomes = await run_suite(
            "parallelqa",
            mode="oracle",
            items=items,
            systems=["llmcompiler", SPECULATIVE],
            profile=PROFILES["gpt-4o"],
            concurrency=4,
            drafter_for=drafter_factory(kind, drafts),
        )
        doc["speculation"] = await speculation_section(kind, items, outcomes, drafts=drafts)
        return doc, outcomes

    return run_virtual(main_)


def test_the_perfect_drafter_runs_beside_llmcompiler_and_hits_every_gold_call() -> None:
    items = _items(5)[3:]  # capital_distance-0, distance_sum-0: chains whose tools outlast the plan
    doc, outcomes = _run(items, "perfect")
    assert set(doc["systems"]) == {"llmcompiler", SPECULATIVE}
    for metrics in doc["systems"].values():
        assert (metrics["accuracy"], metrics["plan_accuracy"], metrics["failures"]) == (1.0, 1.0, 0)
    spec = doc["speculation"]
    assert spec["hit_rate"] == 1.0
    assert spec["gold_calls"] == sum(len(i.gold) for i in items)
    assert spec["engine_hit_rate"] is not None and spec["engine_hit_rate"] > 0
    assert spec["wasted_calls_per_question"] == 0
    assert spec["drafter_tokens_per_question"] == 0
    assert spec["paired_items"] == 2
    # On the virtual clock the same oracle plan with its chain started earlier ends sooner.
    assert spec["latency_saved_mean_s"] > 0
    assert spec["engine"]["time_saved_s_per_question"] >= spec["latency_saved_mean_s"]
    assert all(o.speculation is not None for o in outcomes if o.system == SPECULATIVE)
    assert all(o.speculation is None for o in outcomes if o.system == "llmcompiler")


def test_the_readme_table_is_read_from_the_result_files(tmp_path: Path) -> None:
    doc, _ = _run(_items(5)[3:], "perfect")
    (tmp_path / "parallelqa-oracle-speculative-perfect.json").write_text(json.dumps(doc), encoding="utf-8")
    rows = markdown_table(tmp_path).splitlines()
    assert len(rows) == 3  # the header, its rule, one row: files that do not exist give none
    assert rows[2].startswith("| parallelqa (2) | perfect | 1.00 | 1.00 | ")


def _draft(item_id: str, text: str) -> Draft:
    return Draft(
        item=item_id,
        text=text,
        events=((0.0, Usage(prompt_tokens=100, calls=1)), (0.1, text), (0.1, Usage(completion_tokens=20))),
        usage=Usage(prompt_tokens=100, completion_tokens=20, calls=1),
        end_s=0.1,
    )


def test_a_replayed_draft_scores_its_hits_misses_and_tokens() -> None:
    item = _items(1)[0]  # sum_population-0: Sweden, Belgium, Malawi, Uzbekistan, then the sum
    drafts = {item.id: _draft(item.id, "1. population('Sweden')\n2. population('Norway')\n3. join()")}
    doc, _ = _run([item], "local", drafts)
    spec = doc["speculation"]
    assert (spec["hit_rate"], spec["gold_calls"], spec["drafted_calls"]) == (1 / 5, 5, 2)
    assert spec["engine_hit_rate"] == 1 / 5
    assert spec["wasted_calls_per_question"] == 1  # Norway ran and no real task took it
    assert spec["drafter_tokens_per_question"] == 120
    assert spec["timing"]["draft_end_s_mean"] == 0.1
    assert doc["systems"][SPECULATIVE]["accuracy"] == 1.0  # a miss never reaches the joiner


@pytest.mark.allow_blocking  # the command reads its files on the (virtual) loop, as the CLI does
def test_the_cli_leaves_questions_without_a_draft_out_of_both_systems(tmp_path: Path) -> None:
    first, second = _items(2)
    recording = {"suite": "parallelqa", "model": "local:fake", "items": 1, "drafts": [_draft(first.id, "").to_json()]}
    drafts = tmp_path / "drafts.json"
    drafts.write_text(json.dumps(recording), encoding="utf-8")
    out = tmp_path / "out.json"
    status = main(
        [
            "run",
            "--suite",
            "parallelqa",
            "--mode",
            "oracle",
            "--profile",
            "instant",
            "--drafter",
            "local",
            "--drafts",
            str(drafts),
            "--limit",
            "2",
            "--systems",
            "llmcompiler",
            "--json",
            str(out),
            "--no-plots",
            "--clock",
            "virtual",
        ]
    )
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert status == 0
    assert doc["items"] == 1
    assert {p["item"] for p in doc["per_item"]} == {first.id}
    assert second.id not in {p["item"] for p in doc["per_item"]}
    assert set(doc["systems"]) == {"llmcompiler", SPECULATIVE}
    spec = doc["speculation"]
    assert (spec["items_without_draft"], spec["hit_rate"], spec["drafter"]) == (1, 0.0, "local (replayed: local:fake)")
    assert spec["recording"]["model"] == "local:fake"
    assert doc["clock"] == "virtual"


def test_the_cli_refuses_a_drafter_outside_oracle_mode() -> None:
    assert main(["run", "--suite", "parallelqa", "--mode", "model", "--drafter", "perfect", "--limit", "1"]) == 2


def _run_with_drafts(drafts: Path, out: Path, drafter: str = "local") -> int:
    run = ["run", "--suite", "parallelqa", "--mode", "oracle", "--profile", "instant", "--drafter", drafter]
    return main([*run, "--drafts", str(drafts), "--limit", "2", "--systems", "llmcompiler", "--json", str(out)])


def test_a_file_that_is_not_a_recording_is_refused_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.json"
    for n, text in enumerate(['{"drafts": [{"item": "x"}]}', "[1, 2]", "not json", '{"drafts": [1]}']):
        drafts = tmp_path / f"bad-{n}.json"
        drafts.write_text(text, encoding="utf-8")
        assert _run_with_drafts(drafts, out) == 2
        assert f"{drafts.name} is not a drafts recording" in capsys.readouterr().out.replace("\n", "")
    assert not out.exists()


def test_a_recording_of_another_suite_writes_no_result(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recording = {"suite": "bfcl", "model": "local:fake", "items": 1, "drafts": [_draft("bfcl-other", "").to_json()]}
    drafts = tmp_path / "drafts.json"
    drafts.write_text(json.dumps(recording), encoding="utf-8")
    out = tmp_path / "out.json"
    assert _run_with_drafts(drafts, out, "local-idle") == 2
    assert "no question of parallelqa has a draft in" in capsys.readouterr().out.replace("\n", "")
    assert not out.exists()


def test_a_recorded_drafter_on_a_suite_without_recordings_is_refused_by_its_name(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run", "--suite", "dag", "--mode", "oracle", "--drafter", "local-idle", "--limit", "1"]) == 2
    assert "--drafter local-idle: drafts are recorded for" in capsys.readouterr().out
