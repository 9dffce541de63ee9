"""The wikigold suite: its parser and gold, its scoring, the extraction oracle, and oracle runs of
the three extraction strategies (on the virtual clock: no wall time)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from benchmarks.__main__ import main
from benchmarks.extraction import EXTRACTION_SYSTEMS, TARGETS, run_wikigold, summarize_extraction
from benchmarks.oracle import PROFILES, ExtractionOracle
from benchmarks.suites.wikigold import (
    SCHEMAS,
    TYPES,
    Counts,
    Document,
    detokenize,
    load_documents,
    normalise,
    prf,
    score,
    summarize_counts,
)
from benchmarks.tokens import prompt_tokens, tool_definition_tokens
from llmcompiler import ModelRequest, ToolCall, ToolSpec, Usage
from llmcompiler._types import Message
from llmcompiler.testing import run_virtual


@pytest.fixture(scope="module")
def documents() -> list[Document]:
    return load_documents()


# --------------------------------------------------------------------------- the data


def test_the_file_holds_145_articles_and_their_tokens(documents: list[Document]) -> None:
    assert len(documents) == 145
    assert [d.id for d in documents[:2]] == ["wikigold-001", "wikigold-002"]
    assert len({d.id for d in documents}) == 145
    assert sum(d.tokens for d in documents) == 39_007
    assert documents[0].text.startswith(
        "010 is the tenth album from Japanese Punk Techno band The Mad Capsule Markets."
    )


def test_entity_counts_are_what_the_file_holds(documents: list[Document]) -> None:
    mentions = Counter(m.type for d in documents for m in d.mentions)
    assert mentions == {"PER": 934, "LOC": 1014, "ORG": 898, "MISC": 712}
    distinct = Counter({name: sum(len(d.gold()[name]) for d in documents) for name in TYPES})
    assert distinct == {"Person": 618, "Location": 705, "Organization": 672}


def test_every_gold_entity_occurs_in_its_article(documents: list[Document]) -> None:
    for d in documents:
        for m in d.mentions:
            assert d.text[m.start : m.end] == m.text
        for name, texts in d.gold().items():
            assert len({normalise(t) for t in texts}) == len(texts), (d.id, name)
            for text in texts:
                assert text in d.text, (d.id, name, text)


def test_gold_of_an_article(documents: list[Document]) -> None:
    gold = documents[1].gold()
    assert list(gold) == ["Person", "Location", "Organization"]  # MISC has no schema
    assert gold["Person"][:2] == ["Frederick H. Collier", "Lt. Gen. Jubal Early"]
    assert "Washington, D.C." in gold["Location"]
    assert "Howe's Brigade" in gold["Organization"]


def test_detokenize_spaces_punctuation_quotes_and_clitics() -> None:
    text, spans = detokenize(["William", '"', "Cowboy", '"', "Cowley", "(", "born", "1900", ")", "'s", "team", ","])
    assert text == 'William "Cowboy" Cowley (born 1900)\'s team,'
    assert [text[a:b] for a, b in spans][:5] == ["William", '"', "Cowboy", '"', "Cowley"]


def test_the_schemas_are_documented_pydantic_models() -> None:
    assert [s.__name__ for s in SCHEMAS] == ["Person", "Location", "Organization"]
    for schema in SCHEMAS:
        assert schema.__doc__
        assert schema(name="x").model_dump() == {"name": "x"}


# --------------------------------------------------------------------------- scoring


def test_scoring_by_hand() -> None:
    gold = {"Person": ["Ada Lovelace", "Charles Babbage"], "Location": ["London"], "Organization": []}
    predicted = {
        "Person": ["ada  LOVELACE", "Ada Lovelace", "Byron"],  # a repeat in another case counts once
        "Location": [],
        "Organization": ["Royal Society"],
    }
    counts = score(gold, predicted)
    assert counts["Person"] == Counts(tp=1, fp=1, fn=1)
    assert counts["Location"] == Counts(tp=0, fp=0, fn=1)
    assert counts["Organization"] == Counts(tp=0, fp=1, fn=0)
    summary = summarize_counts([counts])
    # micro: tp 1, fp 2, fn 2
    assert summary["precision"] == pytest.approx(1 / 3)
    assert summary["recall"] == pytest.approx(1 / 3)
    assert summary["f1"] == pytest.approx(1 / 3)
    assert summary["per_type"]["PER"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "tp": 1, "fp": 1, "fn": 1}
    assert summary["per_type"]["LOC"]["recall"] == 0.0
    assert summary["per_type"]["ORG"]["precision"] == 0.0
    assert prf(Counts()) == {"precision": 1.0, "recall": 1.0, "f1": 1.0}


# --------------------------------------------------------------------------- the oracle


def _request(purpose: str, chunk: str, **fields: Any) -> ModelRequest:
    return ModelRequest(messages=(Message(role="user", content=chunk),), purpose=purpose, question=chunk, **fields)


def test_the_oracle_answers_the_gold_entities_in_the_chunk() -> None:
    oracle = ExtractionOracle({"Person": ["Ada Lovelace", "Byron"], "Location": ["London"]}, PROFILES["gpt-4o"])
    schema = {"type": "object", "properties": {"items": {"type": "array"}}, "required": ["items"]}
    chunk = "Ada Lovelace lived in London."
    text = oracle.reply(_request("extract", chunk, response_schema=schema, response_name="Person"))
    assert text == '{"items":[{"name":"Ada Lovelace"}]}'
    tools = (ToolSpec(name="Person"), ToolSpec(name="Location"), ToolSpec(name="Organization"))
    calls = oracle.reply(_request("extract_native", chunk, tools=tools, native_tools=True))
    assert isinstance(calls, list)
    assert [(c.name, dict(c.args)) for c in calls] == [
        ("Person", {"name": "Ada Lovelace"}),
        ("Location", {"name": "London"}),
    ]
    assert isinstance(oracle.reply(_request("extract_native", "Nothing here.", tools=tools, native_tools=True)), str)
    # The response schema is charged as one tool definition; native requests their tool definitions.
    request = _request("extract", chunk, response_schema=schema, response_name="Person")
    plain = prompt_tokens(oracle.counter, request)
    assert oracle.prompt_tokens(request) == plain + tool_definition_tokens(
        oracle.counter, [ToolSpec(name="Person", parameters=schema)]
    )


def test_the_oracle_streams_calls_one_by_one_on_the_profile() -> None:
    profile = PROFILES["gpt-4o"]
    oracle = ExtractionOracle({"Person": ["Ada Lovelace", "Byron"]}, profile)
    request = _request("extract_native", "Ada Lovelace met Byron.", tools=(ToolSpec(name="Person"),), native_tools=True)

    async def go() -> list[tuple[float, object]]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        return [(loop.time() - start, event) async for event in oracle.stream(request)]

    events = run_virtual(go)
    prompt = oracle.prompt_tokens(request)
    calls = [(t, e) for t, e in events if isinstance(e, ToolCall)]
    assert len(calls) == 2
    first = oracle.counter.count("Person") + oracle.counter.count('{"name":"Ada Lovelace"}')
    assert calls[0][0] == pytest.approx(profile.reply_s(prompt, first))
    assert calls[1][0] > calls[0][0]
    usage = events[-1][1]
    assert isinstance(usage, Usage) and usage.prompt_tokens == prompt


# --------------------------------------------------------------------------- oracle runs


def test_an_oracle_run_scores_one_and_parallel_beats_sequential(documents: list[Document]) -> None:
    docs = documents[:3]
    doc, outcomes = run_virtual(
        lambda: run_wikigold(mode="oracle", documents=docs, profile=PROFILES["gpt-4o"], concurrency=1)
    )
    assert len(outcomes) == 3 * len(EXTRACTION_SYSTEMS)
    systems = doc["systems"]
    for name in EXTRACTION_SYSTEMS:
        m = systems[name]
        assert (m["precision"], m["recall"], m["f1"]) == (1.0, 1.0, 1.0), name
        assert m["failures"] == 0 and m["errors_mean"] == 0
        for tag in ("PER", "LOC", "ORG"):
            assert m["per_type"][tag]["f1"] == 1.0
        assert m["prompt_tokens"] > 0 and m["completion_tokens"] > 0
    parallel, sequential = systems["extract_parallel"], systems["extract_sequential"]
    assert parallel["latency_mean_s"] < sequential["latency_mean_s"]
    assert sequential["speedup_vs_sequential"] == 1.0
    for o in outcomes:
        if o.system == "extract_parallel":
            twin = next(s for s in outcomes if s.item == o.item and s.system == "extract_sequential")
            assert o.latency_s < twin.latency_s
            assert (o.prompt_tokens, o.completion_tokens) == (twin.prompt_tokens, twin.completion_tokens)
    assert doc["targets"]["oracle_recall"]["met"] and doc["targets"]["oracle_precision"]["met"]


def test_a_failed_run_predicted_nothing() -> None:
    from benchmarks.extraction import ExtractionOutcome

    gold = {"Person": ["Ada"], "Location": [], "Organization": []}
    failed = ExtractionOutcome(
        system="extract_native",
        item="d",
        finished=False,
        latency_s=0.1,
        error="ModelError: native tool calling is not supported by the local model",
        counts=score(gold, {}),
    )
    summary = summarize_extraction([failed], ["extract_native"])["extract_native"]
    # Every run unsupported: nothing was measured, so no figure stands in for one; the reason does.
    assert summary["recall"] is None and summary["latency_mean_s"] is None and summary["speedup_vs_sequential"] is None
    assert summary["failures"] == 1 and "not supported" in summary["unsupported"]
    broken = dataclasses.replace(failed, error="ModelError: the connection dropped")
    summary = summarize_extraction([broken], ["extract_native"])["extract_native"]
    assert summary["recall"] == 0.0 and summary["failures"] == 1 and "unsupported" not in summary


def test_the_command_writes_the_results_document(tmp_path: Path) -> None:
    out = tmp_path / "wikigold.json"
    argv = ["run", "--suite", "wikigold", "--mode", "oracle", "--profile", "instant", "--limit", "2"]
    assert main([*argv, "--json", str(out)]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["suite"] == "wikigold" and doc["mode"] == "oracle" and doc["items"] == 2
    assert doc["model"] == "oracle:instant" and doc["token_counter"] == "o200k_base"
    assert doc["profile"]["name"] == "instant"
    assert doc["command"].startswith("python -m benchmarks") and doc["machine"]
    assert list(doc["systems"]) == list(EXTRACTION_SYSTEMS)
    for metrics in doc["systems"].values():
        for key in (
            "precision",
            "recall",
            "f1",
            "per_type",
            "latency_mean_s",
            "latency_p50_s",
            "prompt_tokens",
            "completion_tokens",
            "speedup_vs_sequential",
            "failures",
            "errors_mean",
        ):
            assert key in metrics, key
        assert set(metrics["per_type"]) == {"PER", "LOC", "ORG"}
    assert set(doc["targets"]) == {"parallel_speedup_vs_sequential", "oracle_precision", "oracle_recall"}
    assert doc["targets"]["parallel_speedup_vs_sequential"]["min"] == TARGETS["speedup_vs_sequential_min"]
    assert len(doc["per_item"]) == 2 * len(EXTRACTION_SYSTEMS)
    assert {"item", "system", "latency_s", "tokens", "scores", "counts"} <= set(doc["per_item"][0])


def test_default_results_names(tmp_path: Path) -> None:
    from benchmarks.__main__ import _default_json, _parser

    def name(*extra: str) -> str:
        args = _parser().parse_args(["run", "--suite", "wikigold", *extra])
        return _default_json(tmp_path, "wikigold", args.mode, args).name

    assert name("--mode", "oracle") == "wikigold-oracle.json"
    assert name("--mode", "oracle", "--profile", "local") == "wikigold-oracle-local.json"
    assert name("--mode", "model") == "wikigold-model-local.json"
