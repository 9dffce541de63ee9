"""The NESTFUL suite: the data as shipped, the gold translation, the tools, the checks, items end to end (oracle)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, cast

import pytest

from benchmarks.__main__ import main, oracle_shortfalls, run_suite
from benchmarks.oracle import PROFILES, GoldCall, render_call
from benchmarks.suites import Item, load_suite, nestful
from benchmarks.suites._common import gold_plan_matches
from llmcompiler import Ref, RunResult, TaskRecord, Template
from llmcompiler._literals import parse_arguments, resolve

SPECS = {source: nestful.DATA_DIR / spec for source, (_, spec) in nestful.SOURCES.items()}


@pytest.fixture(scope="module")
def items() -> list[Item]:
    return nestful.load_items(seed=0)


@pytest.fixture(scope="module")
def by_id(items: list[Item]) -> dict[str, Item]:
    return {i.id: i for i in items}


def _replace(item: Item, **changes: Any) -> Item:
    fields = {
        name: getattr(item, name)
        for name in ("id", "question", "tools", "gold", "answer", "check", "kind", "expected", "plan_check", "scores")
    }
    fields.update(changes)
    return Item(**fields)


# --------------------------------------------------------------------------- the data


def test_all_300_items_load_interleaved(items: list[Item]) -> None:
    assert Counter(i.kind for i in items) == {"executable": 85, "glaive": 169, "sgd": 46}
    assert len({i.id for i in items}) == 300
    assert [i.id for i in items[:4]] == ["executable-0", "glaive-0", "sgd-0", "executable-1"]
    assert [i.id for i in load_suite("nestful")[:3]] == ["executable-0", "glaive-0", "sgd-0"]
    for item in items:
        assert item.gold and item.expected and item.question
        assert {c.tool for c in item.gold} <= {t.name for t in item.tools}
        assert len(item.tools) == len({c.tool for c in item.gold}) + nestful.DISTRACTORS


def test_the_shipped_data_is_nestful_unchanged_with_its_licence() -> None:
    folder = nestful.DATA_DIR
    assert "Apache License" in (folder / "LICENSE").read_text()
    source = (folder / "SOURCE.md").read_text()
    assert "053cbde0446dddd31e8293f179085e1b39ab79b5" in source and "arXiv:2409.03797" in source
    sizes = {data: len(json.loads((folder / data).read_text())) for data, _ in nestful.SOURCES.values()}
    assert sorted(sizes.values()) == [46, 85, 169]


def test_the_repairs_are_the_known_ones() -> None:
    repaired = {s.id: s.repairs for s in nestful.read_samples() if s.repairs}
    assert sorted(repaired) == [
        "executable-21",
        "glaive-103",
        "glaive-104",
        "glaive-45",
        "glaive-94",
        "sgd-18",
        "sgd-34",
    ]
    assert "read as the reference" in repaired["executable-21"][0]
    assert "left out" in repaired["glaive-103"][0]
    assert "numbered by its position" in repaired["sgd-18"][0]


def test_reference_forms_in_the_data() -> None:
    forms = nestful.reference_forms(nestful.read_samples())
    assert forms == {
        "field": {"references": 452, "items": 292},
        "in a list": {"references": 3, "items": 3},
        "in text": {"references": 14, "items": 12},
        "in var_result": {"references": 710, "items": 300},
        "index": {"references": 5, "items": 4},
        "nested": {"references": 27, "items": 18},
        "quoted key": {"references": 12, "items": 6},
        "whole": {"references": 667, "items": 281},
    }


# --------------------------------------------------------------------------- the gold translation


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("$var3$", Ref(3)),
        ("$var2.entityId$", Ref(2, ("entityId",))),
        ("$var1.location.name$", Ref(1, ("location", "name"))),
        ("$var1.author[0].id$", Ref(1, ("author", 0, "id"))),
        ("$var1.movies[0]$", Ref(1, ("movies", 0))),
        ("$var1.Exchange Rate$", Ref(1, ("Exchange Rate",))),
        ("5 * $var1.Exchange Rate$", Template(("5 * ", Ref(1, ("Exchange Rate",))))),
        ("My GPA is: $var1.gpa$", Template(("My GPA is: ", Ref(1, ("gpa",))))),
        (
            "$var1.shipping_cost$ + $var2.tip_amount$",
            Template((Ref(1, ("shipping_cost",)), " + ", Ref(2, ("tip_amount",)))),
        ),
        (["$var1.contact_id$", "Sam"], [Ref(1, ("contact_id",)), "Sam"]),
        ("$100-$200", "$100-$200"),
        ("var1.product_id$", Ref(1, ("product_id",))),
    ],
)
def test_translate_reads_the_forms_nestful_writes(written: Any, read: Any) -> None:
    assert nestful.translate(written, calls=3) == read


def test_translate_refuses_a_reference_to_a_later_call() -> None:
    with pytest.raises(ValueError, match="names call 3"):
        nestful.translate("$var3.x$", calls=2)


def test_every_gold_call_is_written_and_read_back_the_same(items: list[Item]) -> None:
    """The oracle writes each gold call in the plan language; the parser reads back the same arguments."""
    for item in items:
        for n, call in enumerate(item.gold, 1):
            text = render_call(call)
            inner = text[len(call.tool) + 1 : -1]
            parsed = parse_arguments(inner, idx=n, known=range(1, n))
            assert parsed.kwargs == dict(call.args), (item.id, text)
            assert parsed.deps == call.deps(), (item.id, text)


# --------------------------------------------------------------------------- the tools


def _fields(raw: Any) -> list[str]:
    return list(raw) if isinstance(raw, dict) else []


async def test_tools_are_deterministic_and_return_every_output_field(
    items: list[Item], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_wait(_seconds: float) -> None:
        return None

    monkeypatch.setattr(nestful, "sleeping", no_wait)
    outputs = {
        nestful.tool_name(s["name"]): s["output_parameters"]
        for path in SPECS.values()
        for s in json.loads(path.read_text())
    }
    checked = 0
    for item in items[:60]:
        tools = {t.name: t for t in item.tools}
        results: dict[int, Any] = {}
        for n, call in enumerate(item.gold, 1):
            args = tools[call.tool].validate({k: resolve(v, results.__getitem__) for k, v in call.args.items()})
            first = await tools[call.tool].call(dict(args))
            assert await tools[call.tool].call(dict(args)) == first
            assert isinstance(first, dict)
            for name in _fields(outputs.get(call.tool)):
                assert name in first, (item.id, call.tool, name)
                nested = outputs[call.tool][name]
                if isinstance(nested, dict) and isinstance(nested.get("properties"), dict):
                    assert set(nested["properties"]) <= set(first[name]), (item.id, call.tool, name)
            results[n] = first
            checked += 1
    assert checked > 150


def test_a_different_argument_gives_different_values_and_case_does_not() -> None:
    output = {"type": "object", "properties": {"skyId": {"type": "string"}, "rate": {"type": "number"}}}
    a = nestful.produce("airport", output, {"query": "New York"})
    assert nestful.produce("airport", output, {"query": "new  york"}) == a
    b = nestful.produce("airport", output, {"query": "Newark"})
    assert a["skyId"] != b["skyId"] and a["rate"] != b["rate"]
    assert nestful.produce("airport", output, {"query": "New York", "n": "5"}) == nestful.produce(
        "airport", output, {"query": "New York", "n": 5.0}
    )


def test_fields_the_gold_reads_are_returned_even_when_the_spec_lacks_them(by_id: dict[str, Item]) -> None:
    item = by_id["executable-34"]  # reads $var1.localtime$ of a spec that nests it under location
    assert "${1.localtime} - ${2.localtime}" in render_call(item.gold[2])
    tool = next(t for t in item.tools if t.name == "WeatherAPI.com_Time_Zone_API")
    assert tool.returns is not None
    assert {"location", "localtime"} <= set(tool.returns["properties"])
    assert tool.spec.returns == tool.returns
    assert "localtime: str" in tool.signature() and "location: {" in tool.signature()


def test_tool_names_and_schemas_follow_the_gold_calls(by_id: dict[str, Item]) -> None:
    product = by_id["executable-21"]
    assert {"Real_Time_Product_Search_Search", "Real_Time_Product_Search_Product_Details"} <= {
        t.name for t in product.tools
    }
    # A parameter the spec lacks (sortBy) and one the gold passes as a number where the spec says string.
    details = next(t for t in product.tools if t.name == "Real_Time_Product_Search_Product_Details")
    assert "sortBy" in details.parameters["properties"]
    secret = by_id["glaive-5"]
    assert set(secret.oracle_misses) == {"react", "parallel_fc"}


# --------------------------------------------------------------------------- the checks


def _task(idx: int, tool: str, args: dict[str, Any], result: Any, *, start: float, end: float) -> TaskRecord:
    return TaskRecord(
        idx=idx, tool=tool, args=args, deps=frozenset(), thought=None, result=result, start=start, end=end
    )


GOLD = [
    GoldCall(tool="airport", args={"query": "NYC"}),
    GoldCall(tool="flights", args={"origin": Ref(1, ("skyId",)), "fare": Ref(1, ("fare",))}),
]
AIRPORT = {"skyId": "skyId-abc123", "fare": 1234.5}


def test_plan_check_wants_the_value_at_the_path_with_its_type() -> None:
    right = [
        _task(1, "airport", {"query": "nyc"}, AIRPORT, start=0, end=1),
        _task(2, "flights", {"origin": "skyId-abc123", "fare": 1234.5}, {}, start=1, end=2),
    ]
    assert gold_plan_matches(GOLD, right, nestful.fits)
    assert nestful.full_sequence(GOLD, right)
    as_text = [right[0], _task(2, "flights", {"origin": "skyId-abc123", "fare": "1234.5"}, {}, start=1, end=2)]
    assert not gold_plan_matches(GOLD, as_text, nestful.fits)
    whole = [right[0], _task(2, "flights", {"origin": AIRPORT, "fare": 1234.5}, {}, start=1, end=2)]
    assert not gold_plan_matches(GOLD, whole, nestful.fits)


def test_full_sequence_wants_exactly_the_gold_calls_in_a_valid_order() -> None:
    first = _task(1, "airport", {"query": "NYC"}, AIRPORT, start=0, end=1)
    second = _task(2, "flights", {"origin": "skyId-abc123", "fare": 1234.5}, {}, start=1, end=2)
    assert nestful.full_sequence(GOLD, [first, second])
    assert not nestful.full_sequence(GOLD, [first, second, _task(3, "airport", {"query": "LON"}, {}, start=0, end=1)])
    early = _task(2, "flights", {"origin": "skyId-abc123", "fare": 1234.5}, {}, start=0.5, end=2)
    assert not nestful.full_sequence(GOLD, [first, early])
    failed = TaskRecord(idx=3, tool="airport", args={}, deps=frozenset(), thought=None, error="boom")
    assert not nestful.full_sequence(GOLD, [first, second, failed])


def test_name_f1_as_the_paper_counts_it() -> None:
    assert nestful.name_f1(["a", "b", "b"], ["a", "b", "b"]) == 1.0
    assert nestful.name_f1(["a", "b"], []) == 0.0
    assert nestful.name_f1(["a", "b"], ["a"]) == pytest.approx(2 / 3)
    assert nestful.name_f1(["a", "b", "b"], ["b", "c"]) == pytest.approx(0.4)


def test_win_looks_for_the_answer_among_the_successful_results() -> None:
    result = {"flights": Ref(2), "sky": Ref(1, ("skyId",))}
    expected = {"flights": {"id": "id-000001"}, "sky": "skyId-abc123"}
    first = _task(1, "airport", {"query": "NYC"}, AIRPORT, start=0, end=1)
    second = _task(2, "flights", {}, {"id": "id-000001"}, start=1, end=2)
    assert nestful.win(GOLD, result, expected, [first, second])
    other = _task(2, "flights", {}, {"id": "id-000002"}, start=1, end=2)
    assert not nestful.win(GOLD, result, expected, [first, other])


async def test_the_answer_check_reads_one_value_of_each_entry(
    by_id: dict[str, Item], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_wait(_seconds: float) -> None:
        return None

    monkeypatch.setattr(nestful, "sleeping", no_wait)
    item = by_id["executable-0"]
    tools = {t.name: t for t in item.tools}
    results: dict[int, Any] = {}
    for n, call in enumerate(item.gold, 1):
        results[n] = await tools[call.tool].call({k: resolve(v, results.__getitem__) for k, v in call.args.items()})
    answer = item.answer({n: json.dumps(r) for n, r in results.items()})
    assert item.check(answer, cast(RunResult, None))
    assert not item.check("flights: none; hotels: none.", cast(RunResult, None))
    assert not item.check(answer.split(";")[0], cast(RunResult, None))  # one entry of two


# --------------------------------------------------------------------------- end to end (oracle, real engine)

CASES = ["executable-0", "executable-14", "executable-32", "executable-35", "glaive-63", "sgd-18"]


async def test_items_end_to_end_in_oracle_mode_with_every_system(by_id: dict[str, Item]) -> None:
    """Nested fields, a quoted key spliced into text, an index, a field of a field, a reference in a list."""
    chosen = [by_id[i] for i in CASES]
    doc, outcomes = await run_suite("nestful", mode="oracle", items=chosen, profile=PROFILES["instant"], concurrency=18)
    assert oracle_shortfalls(doc, outcomes) == {}
    for system, metrics in doc["systems"].items():
        assert metrics["accuracy"] == 1.0 and metrics["plan_accuracy"] == 1.0, system
        assert metrics["scores"] == {"function_name_f1": 1.0, "full_sequence_accuracy": 1.0, "win_rate": 1.0}


async def test_a_copied_secret_is_an_expected_miss_and_a_reference_is_not(by_id: dict[str, Item]) -> None:
    doc, outcomes = await run_suite(
        "nestful", mode="oracle", items=[by_id["glaive-5"]], profile=PROFILES["instant"], concurrency=3
    )
    assert oracle_shortfalls(doc, outcomes) == {}
    assert doc["systems"]["llmcompiler"]["plan_accuracy"] == 1.0
    assert {(m["system"], m["plan_correct"]) for m in doc["oracle_misses"]} == {
        ("react", False),
        ("parallel_fc", False),
    }


async def test_a_wrong_argument_fails_the_plan_check_and_everything_downstream(by_id: dict[str, Item]) -> None:
    item = by_id["executable-0"]
    wrong = list(item.gold)
    flights = wrong[2]
    wrong[2] = GoldCall(tool=flights.tool, args={**flights.args, "originSkyId": Ref(2, ("skyId",))})
    bad = _replace(item, gold=wrong)  # the oracle plays the wrong plan; the checks keep the right gold
    doc, _ = await run_suite(
        "nestful", mode="oracle", items=[bad], systems=["llmcompiler"], profile=PROFILES["instant"]
    )
    metrics = doc["systems"]["llmcompiler"]
    assert metrics["plan_accuracy"] == 0.0 and metrics["accuracy"] == 0.0
    assert metrics["scores"]["full_sequence_accuracy"] == 0.0 and metrics["scores"]["win_rate"] == 0.0
    assert metrics["scores"]["function_name_f1"] == 1.0


def test_cli_runs_the_suite(tmp_path: Path) -> None:
    out = tmp_path / "nestful.json"
    code = main(
        [
            *("run", "--suite", "nestful", "--mode", "oracle", "--profile", "instant", "--limit", "3"),
            *("--json", str(out), "--no-plots", "--concurrency", "9"),
        ]
    )
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc["suite"] == "nestful" and doc["items"] == 3
    assert set(doc["units"]["scores"]) == set(nestful.SCORES)
    assert all(m["scores"]["win_rate"] == 1.0 for m in doc["systems"].values())


def test_the_table_shows_the_suites_own_metrics() -> None:
    from rich.console import Console

    from benchmarks.report import print_table

    console = Console(record=True, width=200)
    row = dict.fromkeys(("latency_mean_s", "latency_p50_s", "latency_p95_s", "speedup_vs_react"), 1.0)
    row |= dict.fromkeys(("lower_bound_ratio", "prompt_tokens", "completion_tokens", "cost_usd"), 1.0)
    row |= {"accuracy": 1.0, "plan_accuracy": 1.0, "failures": 0}
    scores = {"function_name_f1": 0.5, "full_sequence_accuracy": 0.25, "win_rate": 0.125}
    print_table(console, "t", {"llmcompiler": {**row, "scores": scores}})
    text = console.export_text()
    assert "function name f1" in text and "0.500" in text and "0.250" in text and "0.125" in text
    plain = Console(record=True, width=200)
    print_table(plain, "t", {"llmcompiler": row})
    assert "function name f1" not in plain.export_text()
