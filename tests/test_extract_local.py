"""Structured extraction on the local model: the prompt, the grammar built from the JSON Schema
(every string a word span of the text), and the real Gemma 3 270M end to end on a short text.

The tests that load the model are marked ``local_model``; the others build prompts and grammars
in pure Python.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pydantic
import pytest

from llmcompiler import Message, ModelError, ModelRequest, extract
from llmcompiler.models._grammar import text_spans
from llmcompiler.models._llamacpp import EXTRACT_MAX_ITEMS, LlamaCppChat, build_prompt, compile_grammar

TEXT = (
    "Marie Curie was born in Warsaw and later moved to Paris. She worked with Pierre Curie at the University of Paris."
)


class Person(pydantic.BaseModel):
    """A person mentioned in the text."""

    name: str
    role: str | None = None


class Location(pydantic.BaseModel):
    """A place: a city, country or region."""

    name: str


class Employer(pydantic.BaseModel):
    """Where someone works, with the people working there."""

    name: str
    staff: list[Person] = []


def _items_schema(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    item = model.model_json_schema()
    defs = item.pop("$defs", None)
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"items": {"type": "array", "items": item}},
        "required": ["items"],
        "additionalProperties": False,
    }
    if defs:
        schema["$defs"] = defs
    return schema


def _request(model: type[pydantic.BaseModel], purpose: str = "extract") -> ModelRequest:
    return ModelRequest(
        messages=(Message(role="system", content="Extract."), Message(role="user", content=TEXT)),
        purpose=purpose,
        question=TEXT,
        response_schema=_items_schema(model),
        response_name=model.__name__,
    )


def _string_rule(gbnf: str) -> str:
    return next(line for line in gbnf.splitlines() if line.startswith("string ::="))


# --------------------------------------------------------------------------- without the model


def test_text_spans_are_word_runs_within_clauses() -> None:
    spans = text_spans(TEXT)
    assert {"Marie Curie", "Warsaw", "Paris", "Pierre Curie", "University of Paris"} <= set(spans)
    assert "Paris She" not in spans  # not across a sentence end
    assert not any(s.split()[0].lower() in {"the", "and", "at"} for s in spans)  # no stop word at an edge
    assert len(text_spans(TEXT, limit=5)) == 5


def test_an_extract_prompt_shows_the_text_and_the_schema_and_ends_for_the_json() -> None:
    prompt, gbnf = build_prompt(_request(Person))
    assert gbnf is not None
    tail = prompt.rsplit("\n\n", 1)[1]
    assert tail == (
        f"Text: {TEXT}\n"
        "Find each Person: Person(name: str, role: str | None = None). A person mentioned in the text.\n"
        "Person JSON:"
    )
    assert prompt.startswith("Each text is followed by what it mentions")  # the few-shot start, cached


def test_the_extract_grammar_writes_only_spans_of_the_text() -> None:
    _, gbnf = build_prompt(_request(Person))
    assert gbnf is not None
    literals = re.findall(r'"\\"((?:[^"\\]|\\.)*?)\\""', _string_rule(gbnf))
    assert set(literals) == set(text_spans(TEXT))
    assert re.search(r'^root ::= " "\? \(', gbnf, re.MULTILINE)  # a space may follow "JSON:"
    items_rule = next(line for line in gbnf.splitlines() if line.startswith("items ::="))
    assert items_rule.count("items-item") == EXTRACT_MAX_ITEMS  # the items array is bounded


def test_nested_models_and_optional_fields_convert() -> None:
    _, gbnf = build_prompt(_request(Employer))
    assert gbnf is not None
    assert "Person ::=" in gbnf  # the $defs entry, referred to by the staff list
    assert "null" in gbnf  # Optional role: anyOf with null


def test_a_schema_call_of_another_purpose_gets_short_free_strings() -> None:
    request = _request(Location, purpose="chat")
    _, gbnf = build_prompt(request)
    assert gbnf is not None
    assert "{0,120}" in _string_rule(gbnf)


async def test_native_extraction_is_not_supported_by_the_local_model() -> None:
    request = ModelRequest(
        messages=(Message(role="user", content=TEXT),),
        purpose="extract_native",
        native_tools=True,
        question=TEXT,
    )
    with pytest.raises(ModelError, match="native tool calling is not supported"):
        async for _ in LlamaCppChat().stream(request):
            pass


# --------------------------------------------------------------------------- the real model


@pytest.fixture(scope="module")
def local_chat() -> LlamaCppChat:
    chat = LlamaCppChat()
    chat.preload(("extract",))
    return chat


@pytest.mark.local_model
@pytest.mark.parametrize("model", [Person, Location, Employer])
def test_llama_cpp_accepts_the_extract_grammars(local_chat: LlamaCppChat, model: type[pydantic.BaseModel]) -> None:
    for purpose in ("extract", "chat"):
        _, gbnf = build_prompt(_request(model, purpose))
        assert gbnf is not None
        assert compile_grammar(local_chat.llama("extract"), gbnf)


@pytest.mark.local_model
async def test_the_local_model_extracts_people_and_places_from_a_short_text(local_chat: LlamaCppChat) -> None:
    result = await extract(TEXT, [Person, Location], llm=local_chat)
    assert result.errors == []
    people = [p.model_dump() for p in result.items["Person"]]
    places = [p.model_dump() for p in result.items["Location"]]
    # What Gemma 3 270M gives under greedy decoding (the same on every run):
    assert people == [{"name": "Marie Curie", "role": None}, {"name": "Pierre Curie", "role": None}]
    assert {"name": "Paris"} in places
    for name in ("Person", "Location"):
        for item, where in zip(result.items[name], result.provenance[name], strict=True):
            assert where.start is not None and where.end is not None
            assert TEXT[where.start : where.end] == item.name  # type: ignore[attr-defined]
    assert result.usage.calls == 2
    assert result.usage.completion_tokens > 0
    json.dumps(result.merged.model_dump())  # one typed result, serialisable
