"""Plan accuracy apart from answer accuracy, the timeline pictures and ``--local-option``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.__main__ import _default_json, _parser, local_options, main, parse_local_option
from benchmarks.oracle import PROFILES, GoldCall, OracleLLM
from benchmarks.runner import call_labels, run_one, summarize
from benchmarks.suites import dag, parallelqa
from benchmarks.suites._common import gold_plan_matches, same_value
from benchmarks.suites.bfcl import load_items as load_bfcl
from llmcompiler import Ref, RunResult, TaskRecord, Template, Usage
from llmcompiler.models import ModelRequest
from tests.test_bench_suites import _mini_bfcl


def _task(idx: int, tool: str, args: dict[str, Any], result: Any = None, *, error: str | None = None) -> TaskRecord:
    return TaskRecord(
        idx=idx, tool=tool, args=args, deps=frozenset(), thought=None, result=result, error=error, start=0.0, end=0.1
    )


def _join(idx: int) -> TaskRecord:
    return _task(idx, "join", {})


GOLD = [
    GoldCall(tool="population", args={"country": "France"}),
    GoldCall(tool="population", args={"country": "Peru"}),
    GoldCall(tool="math", args={"expression": Template((Ref(1), " + ", Ref(2)))}),
]
FRANCE, PERU = 67_000_000, 32_000_000


def _right() -> list[TaskRecord]:
    return [
        _task(1, "population", {"country": "France"}, FRANCE),
        _task(2, "population", {"country": "Peru"}, PERU),
        _task(3, "math", {"expression": f"{FRANCE} + {PERU}"}, float(FRANCE + PERU)),
        _join(4),
    ]


def _pqa(tasks: list[TaskRecord]) -> bool:
    return gold_plan_matches(GOLD, tasks, parallelqa.call_fits)


# --------------------------------------------------------------------------- the plan rule


def test_the_gold_calls_are_a_right_plan_in_any_order_and_case() -> None:
    assert _pqa(_right())
    reordered = [
        _task(1, "population", {"country": "peru "}, PERU),
        _task(2, "population", {"country": "FRANCE"}, FRANCE),
        _task(3, "math", {"expression": f"{PERU}+{FRANCE}"}, float(FRANCE + PERU)),
    ]
    assert _pqa(reordered)


def test_failed_calls_and_repeats_leave_the_plan_right() -> None:
    failed = _task(5, "population", {"country": "Frnace"}, error="ValueError: no data for country 'Frnace'")
    again = _task(6, "population", {"country": "France"}, FRANCE)
    skipped = TaskRecord(idx=7, tool="area", args={"country": "$5"}, deps=frozenset({5}), thought=None, error="x")
    assert _pqa([*_right(), failed, again, skipped])


def test_a_call_the_question_does_not_need_makes_the_plan_wrong() -> None:
    assert not _pqa([*_right(), _task(5, "population", {"country": "Chile"}, 19_000_000)])
    assert not _pqa([*_right(), _task(5, "area", {"country": "France"}, 551_695)])


def test_a_missing_or_wrong_call_makes_the_plan_wrong() -> None:
    right = _right()
    assert not _pqa([right[0], right[2], right[3]])
    assert not _pqa([right[0], _task(2, "population", {"country": "Chile"}, 19_000_000), *right[2:]])
    wrong_sum = _task(3, "math", {"expression": f"{FRANCE} + {FRANCE}"}, float(2 * FRANCE))
    assert not _pqa([*right[:2], wrong_sum])
    invented = _task(3, "math", {"expression": "1000 + 100000000"}, 100_001_000.0)
    assert not _pqa([*right[:2], invented])
    # A failed gold call is no call: the plan is wrong even though it was attempted.
    assert not _pqa([*right[:2], _task(3, "math", {"expression": f"{FRANCE} + {PERU}"}, error="boom")])


def test_math_is_read_by_its_numbers_and_value() -> None:
    gold = [
        GoldCall(tool="population", args={"country": "A"}),
        GoldCall(tool="population", args={"country": "B"}),
        GoldCall(tool="math", args={"expression": Template((Ref(1), " - ", Ref(2)))}),
    ]
    base = [_task(1, "population", {"country": "A"}, 10), _task(2, "population", {"country": "B"}, 4)]
    assert gold_plan_matches(gold, [*base, _task(3, "math", {"expression": "(10 - 4)"}, 6.0)], parallelqa.call_fits)
    assert gold_plan_matches(gold, [*base, _task(3, "math", {"expression": "-4+10"}, 6.0)], parallelqa.call_fits)
    assert not gold_plan_matches(gold, [*base, _task(3, "math", {"expression": "4 - 10"}, -6.0)], parallelqa.call_fits)
    assert not gold_plan_matches(gold, [*base, _task(3, "math", {"expression": "6"}, 6.0)], parallelqa.call_fits)


def test_distance_takes_its_cities_in_either_order() -> None:
    gold = [
        GoldCall(tool="capital", args={"country": "France"}),
        GoldCall(tool="capital", args={"country": "Italy"}),
        GoldCall(tool="distance_km", args={"city_a": Ref(1), "city_b": Ref(2)}),
    ]
    tasks = [
        _task(1, "capital", {"country": "France"}, "Paris"),
        _task(2, "capital", {"country": "Italy"}, "Rome"),
        _task(3, "distance_km", {"city_a": "Rome", "city_b": "Paris"}, 1105.8),
    ]
    assert gold_plan_matches(gold, tasks, parallelqa.call_fits)
    wrong = [*tasks[:2], _task(3, "distance_km", {"city_a": "Rome", "city_b": "Rome"}, 0.0)]
    assert not gold_plan_matches(gold, wrong, parallelqa.call_fits)


def test_numbers_are_compared_with_a_tolerance_and_lists_in_order() -> None:
    assert same_value(67_000_000, 67_000_000.00001)
    assert same_value("12.50", 12.5)
    assert not same_value(67_000_000, 67_100_000)
    assert not same_value(True, 1)
    assert not same_value([1, 2], [2, 1])
    gold = [
        GoldCall(tool="step", args={"node": 1, "inputs": []}),
        GoldCall(tool="step", args={"node": 2, "inputs": []}),
        GoldCall(tool="step", args={"node": 3, "inputs": [Ref(1), Ref(2)]}),
    ]
    base = [_task(1, "step", {"node": 1, "inputs": []}, 37), _task(2, "step", {"node": 2, "inputs": []}, 74)]
    assert gold_plan_matches(gold, [*base, _task(3, "step", {"node": 3, "inputs": [37, 74]}, 222)])
    assert not gold_plan_matches(gold, [*base, _task(3, "step", {"node": 3, "inputs": [74, 37]}, 222)])


def test_bfcl_plan_check_is_bfcls_rules_over_every_call(tmp_path: Path) -> None:
    item = load_bfcl(seed=0, path=_mini_bfcl(tmp_path))[0]
    assert item.plan_check is not None
    oslo = _task(1, "weather.get", {"city": "Oslo, Norway"}, "ok")
    lima = _task(2, "weather.get", {"city": "lima", "unit": "c"}, "ok")
    assert item.plan_check([oslo, lima, _join(3)])
    assert not item.plan_check([oslo, _join(2)])
    # BFCL scores every call a model emits: a failed extra call makes it wrong.
    failed = _task(3, "weather.get", {"town": "Lima"}, error="unexpected argument")
    assert not item.plan_check([oslo, lima, failed])


# --------------------------------------------------------------------------- the runner


class _BadJoin(OracleLLM):
    """Plans like the oracle; its joiner answers nothing useful."""

    def reply(self, request: ModelRequest) -> Any:
        if request.purpose == "join":
            return "Thought: I am not sure.\nAction: Finish(I do not know)"
        return super().reply(request)


class _FailingJoin(OracleLLM):
    """Plans like the oracle; its joiner call fails."""

    def reply(self, request: ModelRequest) -> Any:
        if request.purpose == "join":
            raise RuntimeError("the joiner broke")
        return super().reply(request)


def _no_cost(_usage: Usage, _result: RunResult) -> float | None:
    return None


async def test_a_right_plan_with_a_wrong_answer_is_scored_apart() -> None:
    item = parallelqa.load_items(seed=0, per_template=1)[0]
    instant = PROFILES["instant"]
    right = await run_one("llmcompiler", item, OracleLLM(item.gold, item.answer, instant), cost=_no_cost)
    wrong = await run_one("llmcompiler", item, _BadJoin(item.gold, item.answer, instant), cost=_no_cost)
    failed = await run_one("llmcompiler", item, _FailingJoin(item.gold, item.answer, instant), cost=_no_cost)
    assert (right.finished, right.correct, right.plan_correct) == (True, True, True)
    assert (wrong.finished, wrong.correct, wrong.plan_correct) == (True, False, True)
    assert (failed.finished, failed.correct, failed.plan_correct) == (False, False, True)
    summary = summarize([right, wrong, failed], ["llmcompiler"])["llmcompiler"]
    assert summary["accuracy"] == pytest.approx(1 / 3)
    assert summary["plan_accuracy"] == 1.0


async def test_the_timeline_carries_each_tasks_number_and_dependencies() -> None:
    item = next(i for i in dag.load_items(seed=0) if i.kind == "w2-d3-f2")
    outcome = await run_one("llmcompiler", item, OracleLLM(item.gold, item.answer, PROFILES["instant"]), cost=_no_cost)
    assert outcome.timeline is not None
    tools = outcome.timeline["tools"]
    assert [t["idx"] for t in tools] == list(range(1, len(item.gold) + 1))
    assert [t["deps"] for t in tools] == [sorted(g.deps()) for g in item.gold]
    assert all(t["round"] == 1 for t in tools)
    json.dumps(outcome.timeline)


# --------------------------------------------------------------------------- the pictures


def _example() -> dict[str, Any]:
    return {
        "llmcompiler": {
            "total_s": 2.0,
            "model": [{"label": "model 1", "start": 0.0, "end": 0.5}, {"label": "join 1", "start": 1.5, "end": 2.0}],
            "tools": [
                {"label": "1. capital", "start": 0.4, "end": 0.4, "idx": 1, "deps": [], "round": 1},  # no time at all
                {"label": "2. capital", "start": 0.45, "end": 0.9, "idx": 2, "deps": [], "round": 1},
                {"label": "3. distance_km", "start": 0.9, "end": 1.4, "idx": 3, "deps": [1, 2], "round": 1},
            ],
        }
    }


def test_the_timeline_shows_instant_calls_and_dependency_arrows(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle
    from matplotlib.text import Annotation

    from benchmarks.report import MIN_BAR_FRACTION, plot_timeline, timeline_figure

    fig = timeline_figure("one question", _example())
    assert fig is not None
    (ax,) = fig.axes
    arrows = [c for c in ax.get_children() if isinstance(c, Annotation) and c.arrow_patch is not None]
    assert sorted((a.xyann, a.xy) for a in arrows) == sorted(
        [((0.4 + 2.0 * MIN_BAR_FRACTION, 1), (0.9, 3)), ((0.9, 2), (0.9, 3))]
    )
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    instant = next(b for b in bars if b.get_x() == pytest.approx(0.4) and b.get_y() == pytest.approx(1 - 0.3))
    assert instant.get_width() == pytest.approx(2.0 * MIN_BAR_FRACTION)
    plt.close(fig)

    path = tmp_path / "t.png"
    plot_timeline(path, "one question", _example())
    assert path.stat().st_size > 0


def test_a_timeline_without_task_numbers_still_renders(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from benchmarks.report import plot_timeline

    example = _example()
    for seg in example["llmcompiler"]["tools"]:
        del seg["idx"], seg["deps"], seg["round"]
    path = tmp_path / "old.png"
    plot_timeline(path, "an older results file", example)
    assert path.stat().st_size > 0


# --------------------------------------------------------------------------- --local-option


def test_local_options_are_parsed_in_order() -> None:
    args = _parser().parse_args(
        [
            "run",
            "--suite",
            "bfcl",
            "--mode",
            "model",
            "--local-option",
            "grounded=off",
            "--local-option",
            "extractive=ON",
        ]
    )
    assert args.local_option == [("grounded", False), ("extractive", True)]
    assert local_options(args.local_option) == {"grounded": False, "extractive": True}
    assert local_options(None) == {}
    assert parse_local_option(" grounded = on ") == ("grounded", True)


@pytest.mark.parametrize("text", ["grounded", "grounded=yes", "=off", "1x=on", "grounded=", "a-b=on"])
def test_a_local_option_must_be_name_on_or_off(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_local_option(text)
    with pytest.raises(SystemExit) as exit_:
        _parser().parse_args(["run", "--suite", "bfcl", "--mode", "model", "--local-option", text])
    assert exit_.value.code == 2


def test_an_option_given_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="grounded is given twice"):
        local_options([("grounded", False), ("grounded", True)])


def test_the_default_file_name_names_the_options(tmp_path: Path) -> None:
    argv = ["run", "--suite", "bfcl", "--mode", "model", "--model", "local"]
    args = _parser().parse_args([*argv, "--local-option", "grounded=off", "--local-option", "extractive=off"])
    path = _default_json(tmp_path, "bfcl", "model", args)
    assert path == tmp_path / "bfcl-model-local-grounded-off-extractive-off.json"
    assert _default_json(tmp_path, "dag", "model", _parser().parse_args(argv)) == tmp_path / "dag-model-local.json"


@pytest.mark.parametrize(
    "argv",
    [
        ["--mode", "oracle", "--profile", "instant"],
        ["--mode", "model", "--model", "openai:gpt-4o"],
        ["--mode", "model", "--local-option", "grounded=off", "--local-option", "grounded=on"],
    ],
)
def test_local_options_are_refused_before_anything_loads(argv: list[str], tmp_path: Path) -> None:
    base = ["run", "--suite", "parallelqa", "--limit", "1", "--json", str(tmp_path / "x.json"), "--no-plots"]
    options = [] if "--local-option" in argv else ["--local-option", "grounded=off"]
    assert main([*base, *argv, *options]) == 2
    assert not (tmp_path / "x.json").exists()


def test_a_run_logged_to_a_file_prints_progress_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pqa.json"
    argv = ["run", "--suite", "parallelqa", "--mode", "oracle", "--profile", "instant", "--limit", "2"]
    assert main([*argv, "--systems", "llmcompiler", "--json", str(out), "--no-plots"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("parallelqa: ")]
    assert [line.split(",")[0] for line in lines] == ["parallelqa: 1/2 runs", "parallelqa: 2/2 runs"]
    assert lines[-1].endswith("answers right 2, plans right 2")


def test_an_option_the_local_model_does_not_take_is_named(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    argv = ["run", "--suite", "dag", "--mode", "model", "--limit", "1", "--local-option", "bogus=on"]
    assert main([*argv, "--out-dir", str(tmp_path), "--no-plots"]) == 2
    assert list(tmp_path.iterdir()) == []


def test_the_calls_made_are_listed_failed_ones_marked() -> None:
    tasks = [*_right()[:2], _task(3, "math", {"expression": "1 / 0"}, error="ZeroDivisionError"), _join(4)]
    assert call_labels(tasks) == [
        "population(country='France')",
        "population(country='Peru')",
        "FAILED math(expression='1 / 0')",
    ]
    assert call_labels([_task(1, "search", {"query": "x" * 300})], limit=20) == ["search(query='xxx..."]
