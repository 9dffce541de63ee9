"""Structured extraction: the strategies, partial failure, merging, chunk boundaries (``llmcompiler._extract``).

Models are ``ScriptedLLM`` / ``FunctionLLM`` doubles: no network. Concurrency is proven with
a barrier the calls must all reach together, never with sleeps.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from typing import Any

import pydantic
import pytest

from llmcompiler import (
    ExtractionResult,
    Extractor,
    Message,
    Provenance,
    RunEvent,
    TaskFinished,
    TaskStarted,
    ToolCall,
    UserError,
    extract,
    extract_sync,
)
from llmcompiler.testing import FunctionLLM, Reply, ScriptedLLM, run_virtual


class Person(pydantic.BaseModel):
    """A person mentioned in the text."""

    name: str
    role: str | None = None


class Location(pydantic.BaseModel):
    """A place: a city, a country, a region."""

    name: str


class Organization(pydantic.BaseModel):
    """A company, an institution, a team."""

    name: str


SCHEMAS: list[type[pydantic.BaseModel]] = [
    Person,
    Location,
    Organization,
]  # typed: mypy joins bare classes to their metaclass
TEXT = "Ada Lovelace worked with Charles Babbage in London for the Analytical Society."
GOLD: dict[str, list[str]] = {
    "Person": ["Ada Lovelace", "Charles Babbage"],
    "Location": ["London"],
    "Organization": ["Analytical Society"],
}


def kind_of(messages: Sequence[Message]) -> str:
    found = re.search(r"Find every (\w+)", messages[0].content)
    assert found, messages[0].content
    return found.group(1)


def text_of(messages: Sequence[Message]) -> str:
    return messages[-1].content.removeprefix("Text:\n").rstrip("\n")


def gold_reply(messages: Sequence[Message]) -> str:
    """Every gold entity of the call's kind that its chunk holds, as the JSON the request asks for."""
    kind, text = kind_of(messages), text_of(messages)
    return json.dumps({"items": [{"name": n} for n in GOLD[kind] if n in text]})


def names(result: ExtractionResult, schema: str) -> list[str]:
    return [getattr(item, "name") for item in result.items[schema]]  # noqa: B009 - items are BaseModels


# -- the strategies


async def test_parallel_runs_every_schema_at_once() -> None:
    barrier = asyncio.Barrier(3)  # the three calls pass only together: a sequential run would hang here

    async def reply(messages: Sequence[Message], purpose: str) -> Reply:
        assert purpose == "extract"
        await barrier.wait()
        return gold_reply(messages)

    llm = FunctionLLM(reply)
    async with asyncio.timeout(10):
        result = await extract(TEXT, SCHEMAS, llm=llm)
    assert result.ok and result.strategy == "parallel"
    assert {k: names(result, k) for k in result.items} == GOLD
    assert list(result.items) == ["Person", "Location", "Organization"]
    # The requests: one per schema, JSON of that schema's items, the chunk as the question.
    requests = {r.response_name: r for r in llm.requests}
    assert set(requests) == {"Person", "Location", "Organization"}
    person = requests["Person"]
    assert person.purpose == "extract" and person.question == TEXT and not person.native_tools
    assert person.response_schema is not None
    assert person.response_schema["required"] == ["items"]
    assert person.response_schema["properties"]["items"]["items"]["title"] == "Person"
    # Each call is a task with a record; usage is summed over the calls.
    calls = result.timings.calls
    assert [(c.tool, c.args["schema"], c.args["chunk"]) for c in calls] == [
        ("extract", "Person", 0),
        ("extract", "Location", 0),
        ("extract", "Organization", 0),
    ]
    assert all(c.ok and c.attempts == 1 for c in calls)
    assert result.usage.calls == 3 and result.usage.prompt_tokens > 0
    assert result.timings.total_s >= 0 and result.timings.end >= result.timings.start


async def test_sequential_runs_one_call_at_a_time() -> None:
    running = 0
    most = 0
    order: list[str] = []

    async def reply(messages: Sequence[Message], purpose: str) -> Reply:
        nonlocal running, most
        running += 1
        most = max(most, running)
        order.append(kind_of(messages))
        await asyncio.sleep(0)  # let any other call start, if one could
        running -= 1
        return gold_reply(messages)

    result = await extract(TEXT, SCHEMAS, llm=FunctionLLM(reply), strategy="sequential")
    assert most == 1
    assert order == ["Person", "Location", "Organization"]
    assert {k: names(result, k) for k in result.items} == GOLD
    assert result.strategy == "sequential" and result.usage.calls == 3


async def test_max_concurrency_holds_for_the_calls() -> None:
    running = 0
    most = 0

    async def reply(messages: Sequence[Message], purpose: str) -> Reply:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0)
        running -= 1
        return gold_reply(messages)

    result = await extract(TEXT, SCHEMAS, llm=FunctionLLM(reply), max_concurrency=2)
    assert most == 2 and result.ok  # two at once, never three


async def test_native_strategy_validates_each_tool_call() -> None:
    llm = ScriptedLLM(
        [
            [
                ToolCall(name="Person", args={"name": "Charles Babbage"}),
                ToolCall(name="Location", args={"name": "London"}),
                ToolCall(name="Person", args={"name": "Ada Lovelace", "role": "mathematician"}),
                ToolCall(name="Organization", args={"title": "Analytical Society"}),  # invalid
                ToolCall(name="Dog", args={"name": "Rex"}),  # no such schema
                ToolCall(name="Location", error="arguments are not JSON"),
            ]
        ]
    )
    result = await extract(TEXT, SCHEMAS, llm=llm, strategy="native")
    assert names(result, "Person") == ["Ada Lovelace", "Charles Babbage"]  # text order
    assert result.items["Person"][0] == Person(name="Ada Lovelace", role="mathematician")
    assert names(result, "Location") == ["London"]
    assert names(result, "Organization") == []
    [request] = llm.requests
    assert request.purpose == "extract_native" and request.native_tools and request.question == TEXT
    assert [t.name for t in request.tools] == ["Person", "Location", "Organization"]
    assert request.tools[0].description == "A person mentioned in the text."
    assert request.tools[0].parameters["required"] == ["name"]
    assert [(e.schema, e.chunk) for e in result.errors] == [("Organization", 0), ("Dog", 0), ("Location", 0)]
    assert "is not a valid Organization" in result.errors[0].reason and "name" in result.errors[0].reason
    assert result.errors[0].raw == '{"title": "Analytical Society"}'
    assert "names no schema" in result.errors[1].reason
    assert "could not be read: arguments are not JSON" in result.errors[2].reason
    assert [c.tool for c in result.timings.calls] == ["extract_native"]


async def test_native_text_reply_means_nothing_found() -> None:
    result = await extract("Nothing here.", SCHEMAS, llm=ScriptedLLM(["none"]), strategy="native")
    assert result.ok and all(items == [] for items in result.items.values())


# -- partial failure


async def test_a_failing_call_fails_only_its_schema() -> None:
    def reply(messages: Sequence[Message], purpose: str) -> Reply:
        kind = kind_of(messages)
        if kind == "Person":
            return ConnectionError("the provider hung up")
        if kind == "Location":
            return '{"items": [{"name": "London"}, {"place": "Paris"}, 42]}'
        return gold_reply(messages)

    result = await extract(TEXT, SCHEMAS, llm=FunctionLLM(reply))
    assert result.items["Person"] == []
    assert names(result, "Location") == ["London"]  # the valid item of the reply stays
    assert names(result, "Organization") == ["Analytical Society"]
    person, paris, number = result.errors
    assert (person.schema, person.chunk, person.raw) == ("Person", 0, None)
    assert "ConnectionError: the provider hung up" in person.reason
    assert paris.schema == "Location" and paris.reason.startswith("item 2 is not a valid Location: name")
    assert paris.raw == '{"place": "Paris"}'
    assert number.reason.startswith("item 3 is not a valid Location") and number.raw == "42"
    assert not result.ok
    assert [c.ok for c in result.timings.calls] == [False, True, True]


async def test_a_garbled_reply_goes_to_errors_with_its_text() -> None:
    garbled = '{"items": [{"name": "Ada Lovelace"}, {"name": '
    llm = ScriptedLLM([garbled, "I found no people here, sorry!"])
    result = await extract(TEXT, [Person, Location], llm=llm)
    assert result.items == {"Person": [], "Location": []}
    first, second = result.errors
    assert first.schema == "Person" and first.reason.startswith("the reply is not JSON") and first.raw == garbled
    assert second.schema == "Location" and second.raw == "I found no people here, sorry!"


async def test_fenced_and_wrapped_replies_are_read() -> None:
    llm = ScriptedLLM(
        [
            'Sure:\n```json\n{"items": [{"name": "Ada Lovelace"}]}\n```',
            'The answer is {"items": [{"name": "London"}]} as asked.',
            '[{"name": "Analytical Society"}]',
        ]
    )
    result = await extract(TEXT, SCHEMAS, llm=llm, strategy="sequential")
    assert result.ok
    assert [names(result, k) for k in result.items] == [["Ada Lovelace"], ["London"], ["Analytical Society"]]


async def test_json_that_is_not_an_items_object_is_an_error() -> None:
    result = await extract(TEXT, [Person], llm=ScriptedLLM(['{"people": []}']))
    [error] = result.errors
    assert 'not an object with an "items" list' in error.reason and "people" in error.reason


async def test_secrets_in_model_text_are_scrubbed_from_errors() -> None:
    key = "sk-proj-" + "a1B2c3D4" * 4
    result = await extract(TEXT, [Person], llm=ScriptedLLM([f"my key is {key} and no JSON"]))
    [error] = result.errors
    assert error.raw is not None and key not in error.raw and "[redacted]" in error.raw


def test_a_timeout_fails_only_its_call_and_retries_apply() -> None:
    attempts: dict[str, int] = {}

    async def reply(messages: Sequence[Message], purpose: str) -> Reply:
        kind = kind_of(messages)
        attempts[kind] = attempts.get(kind, 0) + 1
        if kind == "Person":
            await asyncio.Event().wait()  # never answers: the timeout ends it
        if kind == "Location" and attempts[kind] == 1:
            return RuntimeError("a transient failure")
        return gold_reply(messages)

    async def main() -> ExtractionResult:
        return await extract(TEXT, SCHEMAS, llm=FunctionLLM(reply), timeout=30, retries=1, backoff=1)

    result = run_virtual(main)  # virtual time: the 30 s timeouts and the backoff take none
    assert result.items["Person"] == []
    assert names(result, "Location") == ["London"]
    assert names(result, "Organization") == ["Analytical Society"]
    [error] = result.errors
    assert error.schema == "Person" and "timed out after 30s" in error.reason
    assert attempts == {"Person": 2, "Location": 2, "Organization": 1}
    assert [c.attempts for c in result.timings.calls] == [2, 2, 1]


async def test_calls_are_events_as_for_tools() -> None:
    seen: list[RunEvent] = []
    await extract(TEXT, SCHEMAS, llm=FunctionLLM(lambda m, p: gold_reply(m)), on_event=seen.append)
    assert sum(isinstance(e, TaskStarted) for e in seen) == 3
    finished = [e.record for e in seen if isinstance(e, TaskFinished)]
    assert sorted(r.args["schema"] for r in finished) == ["Location", "Organization", "Person"]


async def test_a_failing_listener_leaves_as_itself() -> None:
    def listener(event: RunEvent) -> None:
        raise KeyError("the listener's bug")

    with pytest.raises(KeyError, match="the listener's bug"):
        await extract(TEXT, SCHEMAS, llm=FunctionLLM(lambda m, p: gold_reply(m)), on_event=listener)


# -- merging


async def test_duplicates_are_removed_by_the_normalised_key() -> None:
    reply = '{"items": [{"name": "Ada Lovelace"}, {"name": "ada   LOVELACE"}, {"name": "Charles Babbage"}]}'
    result = await extract(TEXT, [Person], llm=ScriptedLLM([reply]))
    assert names(result, "Person") == ["Ada Lovelace", "Charles Babbage"]


async def test_key_overrides_the_duplicate_rule_per_schema() -> None:
    reply = '{"items": [{"name": "Lovelace"}, {"name": "Ada Lovelace"}, {"name": "Charles Babbage"}]}'

    def surname(person: Person) -> str:
        return person.name.split()[-1].casefold()

    by_class = await extract(TEXT, [Person], llm=ScriptedLLM([reply]), key={Person: surname})
    # "Ada Lovelace" comes first in the text: it is the one kept.
    assert names(by_class, "Person") == ["Ada Lovelace", "Charles Babbage"]
    by_name = await extract(TEXT, [Person], llm=ScriptedLLM([reply]), key={"Person": surname})
    assert names(by_name, "Person") == ["Ada Lovelace", "Charles Babbage"]


async def test_conflicting_items_are_both_kept() -> None:
    reply = '{"items": [{"name": "Ada Lovelace", "role": "poet"}, {"name": "Ada Lovelace", "role": "engineer"}]}'
    result = await extract(TEXT, [Person], llm=ScriptedLLM([reply]))
    assert result.items["Person"] == [
        Person(name="Ada Lovelace", role="poet"),
        Person(name="Ada Lovelace", role="engineer"),
    ]


async def test_items_are_ordered_by_position_with_provenance_offsets() -> None:
    text = "In Paris, Marie Curie met\nPierre   Curie. Later, marie curie left."
    reply = '{"items": [{"name": "Unknown Person"}, {"name": "Pierre Curie"}, {"name": "MARIE CURIE", "role": "x"}]}'
    result = await extract(text, [Person], llm=ScriptedLLM([reply]))
    assert names(result, "Person") == ["MARIE CURIE", "Pierre Curie", "Unknown Person"]
    marie, pierre, unknown = result.provenance["Person"]
    assert (marie.start, marie.end) == (10, 21) and text[10:21] == "Marie Curie"
    assert pierre.start is not None and pierre.end is not None
    assert text[pierre.start : pierre.end] == "Pierre   Curie"  # any white space between words
    assert unknown == Provenance(chunk=0, start=None, end=None)  # not in the text: last


async def test_a_name_inside_a_longer_word_is_not_its_position() -> None:
    text = "Annual reports name Ann."
    result = await extract(text, [Person], llm=ScriptedLLM(['{"items": [{"name": "Ann"}]}']))
    assert result.provenance["Person"] == [Provenance(chunk=0, start=20, end=23)]


async def test_merged_is_one_model_with_a_list_per_schema() -> None:
    class HTTPServer(pydantic.BaseModel):
        host: str

    extractor = Extractor([Person, HTTPServer], llm=ScriptedLLM([]))
    model = extractor.merged_model
    assert list(model.model_fields) == ["person", "http_server"]
    result = await Extractor(
        [Person, HTTPServer],
        llm=ScriptedLLM(['{"items": [{"name": "Ada Lovelace"}]}', '{"items": [{"host": "example.org"}]}']),
    ).arun(TEXT)
    merged: Any = result.merged
    assert merged.person == [Person(name="Ada Lovelace")]
    assert merged.http_server == [HTTPServer(host="example.org")]
    assert type(merged).model_json_schema()["properties"]["person"]["type"] == "array"
    assert extractor.merged_model is model  # made once per extractor


# -- long texts


def long_text() -> str:
    filler = [f"Filler sentence number {i:02d} says very little." for i in range(40)]
    # As long as a filler sentence; at 120 tokens a chunk (chars / 4) with 30 of overlap, sentence
    # 9 ends chunk 0 and is repeated at the start of chunk 1.
    filler[9] = "Grace Hopper joined the Navy in 1943, then."
    return " ".join(filler)


async def test_chunks_fan_out_and_an_entity_on_a_boundary_is_found_once() -> None:
    text = long_text()

    def reply(messages: Sequence[Message], purpose: str) -> Reply:
        chunk = text_of(messages)
        people = [{"name": "Grace Hopper"}] if "Grace Hopper" in chunk else []
        orgs = [{"name": "Navy"}] if "Navy" in chunk else []
        return json.dumps({"items": people if kind_of(messages) == "Person" else orgs})

    llm = FunctionLLM(reply)
    result = await extract(text, [Person, Organization], llm=llm, chunk_tokens=120, overlap_tokens=30)
    chunks = result.chunks
    assert len(chunks) >= 3
    holding = [c.index for c in chunks if "Grace Hopper" in c.text]
    assert len(holding) == 2, "the entity's sentence is in the overlap of two chunks"
    assert names(result, "Person") == ["Grace Hopper"]
    assert names(result, "Organization") == ["Navy"]
    [where] = result.provenance["Person"]
    assert where.chunk == holding[0]
    assert where.start is not None and text[where.start : where.end] == "Grace Hopper"
    # Every (schema, chunk) pair was one call, each reading its own chunk.
    assert len(llm.requests) == 2 * len(chunks)
    assert sorted(r.question or "" for r in llm.requests) == sorted([c.text for c in chunks] * 2)
    assert result.ok


async def test_count_tokens_sets_the_budget() -> None:
    def count(text: str) -> int:
        return len(text.split())

    text = long_text()
    llm = FunctionLLM(lambda m, p: '{"items": []}')
    result = await extract(text, [Person], llm=llm, chunk_tokens=50, overlap_tokens=0, count_tokens=count)
    assert all(count(c.text) <= 50 for c in result.chunks) and len(result.chunks) >= 6


async def test_an_empty_text_makes_no_call() -> None:
    llm = ScriptedLLM([])
    result = await extract("   ", SCHEMAS, llm=llm)
    assert result.chunks == [] and llm.requests == [] and result.items == {s.__name__: [] for s in SCHEMAS}


# -- the API's edges


async def test_extract_sync_inside_a_running_loop_is_a_user_error() -> None:
    with pytest.raises(UserError, match="inside an event loop"):
        extract_sync(TEXT, SCHEMAS, llm=ScriptedLLM([]))


def test_extract_sync_and_run_outside_a_loop() -> None:
    result = extract_sync(TEXT, [Location], llm=ScriptedLLM(['{"items": [{"name": "London"}]}']))
    assert names(result, "Location") == ["London"]
    again = Extractor([Location], llm=ScriptedLLM(['{"items": []}'])).run(TEXT)
    assert again.items == {"Location": []}


class HttpServer(pydantic.BaseModel):
    host: str


class HTTPServer(pydantic.BaseModel):
    host: str


@pytest.mark.parametrize(
    ("schemas", "options", "message"),
    [
        ([], {}, "at least one schema"),
        ([dict], {}, "pydantic model class"),
        (Person, {}, "a list of pydantic model classes"),
        ([Person, Person], {}, "class name 'Person'"),
        ([HttpServer, HTTPServer], {}, "snake_case name"),
        ([Person], {"strategy": "fast"}, "strategy must be one of"),
        ([Person], {"key": {Location: str}}, "not one of the schemas"),
        ([Person], {"chunk_tokens": 0}, "chunk_tokens"),
        ([Person], {"chunk_tokens": 10, "overlap_tokens": 10}, "overlap_tokens"),
        ([Person], {"timeout": -1}, "timeout"),
        ([Person], {"retries": -1}, "retries"),
        ([Person], {"max_concurrency": 0}, "max_concurrency"),
    ],
)
def test_misuse_is_a_user_error(schemas: Any, options: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError, match=message):
        Extractor(schemas, llm=ScriptedLLM([]), **options)


async def test_a_key_function_that_fails_is_a_user_error() -> None:
    def broken(person: Person) -> str:
        raise RuntimeError("bug")

    with pytest.raises(UserError, match="key function for Person failed"):
        await extract(TEXT, [Person], llm=ScriptedLLM(['{"items": [{"name": "Ada"}]}']), key={Person: broken})


async def test_a_text_that_is_not_a_string_is_a_user_error() -> None:
    with pytest.raises(UserError, match="text must be a string"):
        await extract(b"bytes", [Person], llm=ScriptedLLM([]))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fault", "shown"),
    [(KeyError("a bug"), "KeyError"), (SystemExit(3), "SystemExit: 3"), (StopIteration(), "StopIteration")],
)
async def test_a_validator_that_raises_anything_fails_only_its_item(fault: BaseException, shown: str) -> None:
    class Buggy(pydantic.BaseModel):
        """A schema whose validator has a bug deep in a helper."""

        name: str

        @pydantic.field_validator("name")
        @classmethod
        def _check(cls, value: str) -> str:
            if value == "Bad":
                raise fault
            return value

    llm = ScriptedLLM(['{"items": [{"name": "Bad"}, {"name": "Ada"}]}', '{"items": [{"name": "Oslo"}]}'])
    result = await extract("Ada and Bad live in Oslo.", [Buggy, Location], llm=llm, strategy="sequential")
    assert result.items["Buggy"] == [Buggy(name="Ada")]
    assert result.items["Location"] == [Location(name="Oslo")]
    [error] = result.errors
    assert error.schema == "Buggy" and shown in error.reason and "Bad" in (error.raw or "")
