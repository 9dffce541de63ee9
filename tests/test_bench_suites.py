"""The benchmark suites at tiny sizes, in oracle mode: structure and scoring, never timing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.__main__ import main, run_suite
from benchmarks.oracle import PROFILES, GoldCall, OracleLLM, levels, render_plan
from benchmarks.runner import SYSTEMS, Outcome, executor_bound, summarize
from benchmarks.suites import Item, dag, parallelqa
from benchmarks.suites.bfcl import bfcl_match, gold_calls, load_items
from benchmarks.tokens import tool_definition_tokens
from llmcompiler import Ref, RoundTimings, RunResult, TaskRecord, Template, Usage

REQUIRED_KEYS = {
    "latency_mean_s",
    "latency_p50_s",
    "latency_p95_s",
    "speedup_vs_react",
    "speedup_vs_parallel_fc",
    "ideal_bound_mean_s",
    "ideal_ratio",
    "executor_slack",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "accuracy",
    "plan_accuracy",
    "failures",
}

# --------------------------------------------------------------------------- BFCL scoring rules

SPOTIFY = {
    "name": "spotify.play",
    "description": "Play songs.",
    "parameters": {
        "type": "dict",
        "properties": {
            "artist": {"type": "string"},
            "duration": {"type": "integer"},
            "shuffle": {"type": "boolean", "default": False},
            "volume": {"type": "float"},
        },
        "required": ["artist", "duration"],
    },
}
TRUTH = [
    {"spotify.play": {"artist": ["Taylor Swift"], "duration": [20], "shuffle": ["", False], "volume": [""]}},
    {"spotify.play": {"artist": ["Maroon 5"], "duration": [15], "shuffle": ["", False], "volume": ["", 0.5]}},
]


def test_bfcl_match_is_order_free() -> None:
    calls = [
        ("spotify.play", {"artist": "Maroon 5", "duration": 15}),
        ("spotify.play", {"artist": "Taylor Swift", "duration": 20}),
    ]
    assert bfcl_match([SPOTIFY], calls, TRUTH)


def test_bfcl_match_needs_the_same_number_of_calls() -> None:
    one = [("spotify.play", {"artist": "Taylor Swift", "duration": 20})]
    three = [*one, ("spotify.play", {"artist": "Maroon 5", "duration": 15}), *one]
    assert not bfcl_match([SPOTIFY], one, TRUTH)
    assert not bfcl_match([SPOTIFY], three, TRUTH)


def test_bfcl_match_an_empty_string_means_the_argument_may_be_omitted() -> None:
    given = [
        ("spotify.play", {"artist": "Taylor Swift", "duration": 20, "shuffle": False}),
        ("spotify.play", {"artist": "Maroon 5", "duration": 15, "volume": 0.5}),
    ]
    assert bfcl_match([SPOTIFY], given, TRUTH)
    truth_without_blank = [
        {"spotify.play": {"artist": ["Taylor Swift"], "duration": [20], "volume": [0.5]}},
    ]
    assert not bfcl_match(
        [SPOTIFY], [("spotify.play", {"artist": "Taylor Swift", "duration": 20})], truth_without_blank
    )


def test_bfcl_match_a_value_must_be_one_of_the_acceptable_values() -> None:
    wrong = [
        ("spotify.play", {"artist": "Taylor Swift", "duration": 21}),
        ("spotify.play", {"artist": "Maroon 5", "duration": 15}),
    ]
    assert not bfcl_match([SPOTIFY], wrong, TRUTH)


def test_bfcl_match_compares_numbers_as_numbers_and_strings_loosely() -> None:
    given = [
        ("spotify.play", {"artist": "taylor swift", "duration": 20}),  # case and spaces do not count
        ("spotify.play", {"artist": "Maroon-5", "duration": 15, "volume": 1 / 2}),
    ]
    assert bfcl_match([SPOTIFY], given, TRUTH)
    as_int = [
        ("spotify.play", {"artist": "Taylor Swift", "duration": 20}),
        ("spotify.play", {"artist": "Maroon 5", "duration": 15, "volume": 0}),  # 0 is not 0.5
    ]
    assert not bfcl_match([SPOTIFY], as_int, TRUTH)
    float_for_float = [{"spotify.play": {"artist": ["A"], "duration": [1], "volume": [2.0]}}]
    assert bfcl_match([SPOTIFY], [("spotify.play", {"artist": "A", "duration": 1, "volume": 2})], float_for_float)


def test_bfcl_match_checks_types_and_unexpected_arguments() -> None:
    truth = [{"spotify.play": {"artist": ["A"], "duration": [1], "shuffle": [True]}}]
    assert bfcl_match([SPOTIFY], [("spotify.play", {"artist": "A", "duration": 1, "shuffle": True})], truth)
    assert not bfcl_match([SPOTIFY], [("spotify.play", {"artist": "A", "duration": 1, "shuffle": 1})], truth)
    assert not bfcl_match([SPOTIFY], [("spotify.play", {"artist": "A", "duration": "1", "shuffle": True})], truth)
    extra = {"artist": "A", "duration": 1, "shuffle": True, "volume": 0.5}  # volume is not in the truth
    assert not bfcl_match([SPOTIFY], [("spotify.play", extra)], truth)
    assert not bfcl_match([SPOTIFY], [("spotify.pause", {"artist": "A", "duration": 1, "shuffle": True})], truth)


def test_bfcl_match_dicts_and_lists_of_dicts_key_by_key() -> None:
    spec = {
        "name": "order",
        "parameters": {
            "type": "dict",
            "properties": {
                "drink": {"type": "dict", "properties": {"size": {"type": "string"}, "milk": {"type": "string"}}},
                "items": {"type": "array", "items": {"type": "dict"}},
                "tags": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["drink"],
        },
    }
    truth = [
        {
            "order": {
                "drink": [{"size": ["large", "L"], "milk": ["", "almond"]}],
                "items": [[{"name": ["bagel"]}, {"name": ["tea"], "hot": ["", True]}]],
                "tags": [["Fast", "Cheap"]],
            }
        }
    ]
    good = {
        "drink": {"size": "L"},
        "items": [{"name": "Bagel"}, {"name": "tea", "hot": True}],
        "tags": ["fast", "cheap"],
    }
    assert bfcl_match([spec], [("order", good)], truth)
    assert not bfcl_match([spec], [("order", {**good, "drink": {"size": "small"}})], truth)
    assert not bfcl_match([spec], [("order", {**good, "drink": {"size": "L", "sugar": "no"}})], truth)
    assert not bfcl_match([spec], [("order", {**good, "items": [{"name": "tea"}, {"name": "bagel"}]})], truth)
    assert not bfcl_match([spec], [("order", {**good, "tags": ["cheap", "fast"]})], truth)


def test_bfcl_gold_calls_satisfy_the_ground_truth() -> None:
    gold = gold_calls([SPOTIFY], TRUTH)
    assert [dict(g.args) for g in gold] == [
        {"artist": "Taylor Swift", "duration": 20},
        {"artist": "Maroon 5", "duration": 15},
    ]
    assert bfcl_match([SPOTIFY], [(g.tool, dict(g.args)) for g in gold], TRUTH)


# --------------------------------------------------------------------------- gold plans and the bound


def test_render_plan_and_levels() -> None:
    gold = [
        GoldCall(tool="population", args={"country": "France"}, thought="Two lookups."),
        GoldCall(tool="population", args={"country": "Peru"}),
        GoldCall(tool="math", args={"expression": Template(("", Ref(1), " + ", Ref(2)))}),
        GoldCall(tool="step", args={"node": 4, "inputs": [Ref(3), Ref(1)]}),
    ]
    assert render_plan(gold).splitlines() == [
        "Thought: Two lookups.",
        "1. population(country='France')",
        "2. population(country='Peru')",
        "3. math(expression='$1 + $2')",
        "4. step(node=4, inputs=[$3, $1])",
        "5. join()",
        "<END_OF_PLAN>",
    ]
    assert levels(gold) == [[1, 2], [3], [4]]


def test_executor_bound_is_the_runs_own_plan_streaming_plus_its_longest_chain_plus_its_joiner() -> None:
    def task(idx: int, deps: set[int], start: float, end: float) -> TaskRecord:
        return TaskRecord(idx=idx, tool="t", args={}, deps=frozenset(deps), thought=None, start=start, end=end)

    # Line 1 arrives at 1.0 and takes 0.5; line 2 arrives at 1.2, needs 1, takes 0.4;
    # the plan ends at 1.3; the joiner takes 0.6 (started late, at 2.5: scheduling slack).
    tasks = [task(1, set(), 1.1, 1.6), task(2, {1}, 1.7, 2.1)]
    timings = RoundTimings(
        plan_start=0.0,
        plan_first_chunk=0.5,
        plan_end=1.3,
        first_dispatch=1.1,
        tasks_end=2.1,
        join_start=2.5,
        join_end=3.1,
    )
    result = RunResult(answer="x", tasks=tasks, rounds=1, usage=Usage(), start=0.0, end=3.1, round_timings=[timings])
    bound = executor_bound(result, {(1, 1): 1.0, (1, 2): 1.2})
    assert bound == pytest.approx((1.0 + 0.5 + 0.4) + 0.6)
    # The executor lost 0.1 s before each task and 0.4 s before the joiner: 3.1 / 2.5.
    outcome = Outcome(
        system="llmcompiler", item="q", kind="k", finished=True, correct=True, latency_s=3.1, executor_bound_s=bound
    )
    metrics = summarize([outcome], ["llmcompiler"])["llmcompiler"]
    assert metrics["executor_slack"] == pytest.approx(3.1 / 2.5)
    assert metrics["executor_bound_mean_s"] == pytest.approx(2.5)


def test_summary_compares_each_system_with_the_ideal_bound_and_native_calling() -> None:
    def run(system: str, item: str, latency: float | None, ideal: float) -> Outcome:
        return Outcome(
            system=system,
            item=item,
            kind="k",
            finished=latency is not None,
            correct=latency is not None,
            latency_s=latency,
            ideal_bound_s=ideal,
        )

    outcomes = [
        run("llmcompiler", "q1", 2.0, 1.8),
        run("llmcompiler", "q2", 3.0, 2.2),
        run("parallel_fc", "q1", 2.5, 1.8),
        run("parallel_fc", "q2", None, 2.2),  # failed: left out of its ratios and of the pairs
        run("react", "q1", 6.0, 1.8),
        run("react", "q2", 9.0, 2.2),
    ]
    summary = summarize(outcomes, SYSTEMS)
    ours, native = summary["llmcompiler"], summary["parallel_fc"]
    assert ours["ideal_bound_mean_s"] == pytest.approx(2.0)
    assert ours["ideal_ratio"] == pytest.approx(5.0 / 4.0)  # mean latency over mean ideal, same items
    assert native["ideal_bound_mean_s"] == pytest.approx(1.8)
    assert native["ideal_ratio"] == pytest.approx(2.5 / 1.8)
    assert ours["speedup_vs_parallel_fc"] == pytest.approx(2.5 / 2.0)  # paired: q1 only
    assert native["speedup_vs_parallel_fc"] == pytest.approx(1.0)
    assert ours["speedup_vs_react"] == pytest.approx(15.0 / 5.0)
    assert ours["executor_slack"] is None and native["executor_slack"] is None  # no executor bound given


# --------------------------------------------------------------------------- suites end to end (oracle)


def _check_doc(doc: dict[str, Any], n_items: int) -> None:
    assert {"suite", "model", "mode", "systems"} <= doc.keys()
    assert doc["mode"] == "oracle" and doc["items"] == n_items
    assert set(doc["systems"]) == set(SYSTEMS)
    for name, metrics in doc["systems"].items():
        assert metrics.keys() >= REQUIRED_KEYS, name
        assert metrics["accuracy"] == 1.0, (name, [r for r in doc["per_item"] if not r["correct"]])
        assert metrics["plan_accuracy"] == 1.0, (name, [r for r in doc["per_item"] if not r["plan_correct"]])
        assert metrics["failures"] == 0
    assert doc["systems"]["react"]["speedup_vs_react"] == pytest.approx(1.0)
    assert doc["systems"]["parallel_fc"]["speedup_vs_parallel_fc"] == pytest.approx(1.0)
    # The ideal bound: every item traced, every system compared with it; the slack is LLMCompiler's alone.
    assert doc["token_counter"] == doc["profile"]["token_counter"]
    assert doc["ideal"]["untraced"] == {} and len(doc["ideal"]["per_item"]) == n_items
    assert all(m["ideal_ratio"] is not None and m["ideal_bound_mean_s"] > 0 for m in doc["systems"].values())
    assert doc["systems"]["llmcompiler"]["executor_slack"] is not None
    assert doc["systems"]["react"]["executor_slack"] is None
    assert all(row["ideal_bound_s"] is not None for row in doc["per_item"])
    json.dumps(doc)  # the document is JSON


async def test_parallelqa_oracle_scores_one_for_every_system() -> None:
    items = parallelqa.load_items(seed=0, per_template=1)
    assert sorted(i.kind for i in items) == sorted(parallelqa.TEMPLATES)
    doc, _ = await run_suite("parallelqa", mode="oracle", items=items, profile=PROFILES["instant"], concurrency=18)
    _check_doc(doc, len(items))
    assert "targets" in doc


async def test_dag_oracle_scores_one_for_every_system() -> None:
    items = sorted(dag.load_items(seed=0), key=lambda i: len(i.gold))[:2]
    items += [next(i for i in dag.load_items(seed=0) if i.kind == "w2-d3-f2")]
    doc, _ = await run_suite("dag", mode="oracle", items=items, profile=PROFILES["instant"], concurrency=9)
    _check_doc(doc, len(items))


def _mini_bfcl(folder: Path) -> Path:
    """Two items in the wheel's layout and format (JSON Lines)."""
    weather = {
        "name": "weather.get",
        "description": "Weather in a city.",
        "parameters": {
            "type": "dict",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"], "default": "c"}},
            "required": ["city"],
        },
    }
    questions: dict[str, list[dict[str, Any]]] = {
        "parallel": [
            {
                "id": "parallel_0",
                "question": [[{"role": "user", "content": "Weather in Oslo and Lima?"}]],
                "function": [weather],
            }
        ],
        "parallel_multiple": [
            {
                "id": "parallel_multiple_0",
                "question": [
                    [{"role": "user", "content": "Play Adele for 5 minutes and tell me the weather in Rome."}]
                ],
                "function": [weather, SPOTIFY],
            }
        ],
    }
    answers: dict[str, list[dict[str, Any]]] = {
        "parallel": [
            {
                "id": "parallel_0",
                "ground_truth": [
                    {"weather.get": {"city": ["Oslo", "Oslo, Norway"], "unit": ["", "c"]}},
                    {"weather.get": {"city": ["Lima"], "unit": ["", "c"]}},
                ],
            }
        ],
        "parallel_multiple": [
            {
                "id": "parallel_multiple_0",
                "ground_truth": [
                    {"spotify.play": {"artist": ["Adele"], "duration": [5], "volume": ["", 1.0]}},
                    {"weather.get": {"city": ["Rome"], "unit": ["f"]}},
                ],
            }
        ],
    }
    data = folder / "bfcl_eval" / "data"
    (data / "possible_answer").mkdir(parents=True)
    for subset in ("parallel", "parallel_multiple"):
        lines = "\n".join(json.dumps(q) for q in questions[subset])
        (data / f"BFCL_v4_{subset}.json").write_text(lines + "\n")
        lines = "\n".join(json.dumps(a) for a in answers[subset])
        (data / "possible_answer" / f"BFCL_v4_{subset}.json").write_text(lines + "\n")
    return folder


async def test_bfcl_oracle_scores_one_for_every_system(tmp_path: Path) -> None:
    items = load_items(seed=0, path=_mini_bfcl(tmp_path))
    assert [i.id for i in items] == ["parallel_0", "parallel_multiple_0"]
    assert [t.name for t in items[1].tools] == ["weather.get", "spotify.play"]
    doc, _ = await run_suite("bfcl", mode="oracle", items=items, profile=PROFILES["instant"], concurrency=6)
    _check_doc(doc, 2)


async def test_a_wrong_gold_call_is_caught_by_the_oracle_check() -> None:
    item = parallelqa.load_items(seed=0, per_template=1)[0]
    wrong = [GoldCall(tool=c.tool, args={"country": "Peru"}) if c.tool == "population" else c for c in item.gold]
    bad = Item(
        id=item.id,
        question=item.question,
        tools=item.tools,
        gold=wrong,
        answer=item.answer,
        check=item.check,
        kind=item.kind,
        expected=item.expected,
        plan_check=item.plan_check,
    )
    doc, _ = await run_suite(
        "parallelqa", mode="oracle", items=[bad], systems=["llmcompiler"], profile=PROFILES["instant"]
    )
    assert doc["systems"]["llmcompiler"]["accuracy"] == 0.0
    assert doc["systems"]["llmcompiler"]["plan_accuracy"] == 0.0


async def test_the_oracle_counts_tool_schemas_only_for_native_tool_calls() -> None:
    item = parallelqa.load_items(seed=0, per_template=1)[0]
    llm = OracleLLM(item.gold, item.answer, PROFILES["instant"])
    from llmcompiler import Message, ModelRequest

    specs = tuple(t.spec for t in item.tools)
    messages = (Message(role="user", content="hello there"),)
    text = ModelRequest(messages=messages, purpose="react", tools=specs)
    native = ModelRequest(messages=messages, purpose="tools", tools=specs, native_tools=True)
    count = PROFILES["instant"].counter().count
    # The cookbook's framing: 3 per message plus its role and content, 3 to prime the reply
    # (benchmarks/tokens.py); tools a prompt lists as text are in its messages, so none here.
    assert llm.prompt_tokens(text) == 3 + count("user") + count("hello there") + 3
    # Native definitions are charged on top, as benchmarks.tokens renders them.
    definitions = tool_definition_tokens(PROFILES["instant"].counter(), specs)
    assert definitions > 0
    assert llm.prompt_tokens(native) == llm.prompt_tokens(text) + definitions


def test_cli_writes_the_results_file(tmp_path: Path) -> None:
    out = tmp_path / "pqa.json"
    code = main(
        [
            *("run", "--suite", "parallelqa", "--mode", "oracle", "--profile", "instant", "--limit", "2"),
            *("--json", str(out), "--no-plots", "--concurrency", "6"),
        ]
    )
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc["suite"] == "parallelqa" and doc["model"] == "oracle:instant" and doc["limit"] == 2
    assert all(m.keys() >= REQUIRED_KEYS for m in doc["systems"].values())


async def test_pictures_are_written(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from benchmarks.__main__ import _write

    items = parallelqa.load_items(seed=0, per_template=1)[:2]
    doc, outcomes = await run_suite(
        "parallelqa", mode="oracle", items=items, profile=PROFILES["instant"], concurrency=6
    )
    written = _write(doc, outcomes, tmp_path / "x.json", plots=True)
    assert [p.name for p in written] == ["x.json", "x-latency.png", "x-timeline.png"]
    assert all(p.stat().st_size > 0 for p in written)
