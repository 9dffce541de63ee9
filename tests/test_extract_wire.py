"""Structured extraction through the real ``AsyncOpenAI`` and ``AsyncAnthropic`` clients, against
the loopback wire-format servers.

What goes over the wire: OpenAI ``response_format`` ``json_schema`` (``strict`` only when every
object of the schema requires all its properties and forbids others), Anthropic one forced tool
whose input is the schema. What comes back: the JSON, streamed as text (for Anthropic, the
forced tool's ``input_json_delta`` pieces; text before the tool block is dropped).

End to end through ``extract``: the parallel strategy sends its three schemas' requests at
once (each reply waits at a gate the server opens only once all three requests have arrived:
calls made one after another would never get their replies, and the test fails on a timeout),
the native strategy reads one item per parallel tool call, and a schema whose request fails
(a server error) is one entry in ``errors`` while the other schemas' items are kept.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pydantic
import pytest

from llmcompiler import ModelRequest, Usage, extract
from llmcompiler._types import Message
from llmcompiler.models._anthropic import AnthropicChat
from llmcompiler.models._openai import OpenAIChat, strict_allowed
from tests.wire import SSE, Gate, Recorded, Reply, Script, Status
from tests.wire import anthropic_server as an
from tests.wire import openai_server as oa

SECRET = "sk-test-DISTINCTIVE-extract-51c2"
TEXT = "Ada Lovelace met Charles Babbage in London. Both admired the Royal Society."


class Person(pydantic.BaseModel):
    """A person mentioned in the text."""

    name: str
    role: str | None = None


class Location(pydantic.BaseModel):
    """A place: a city, country or region."""

    model_config = pydantic.ConfigDict(extra="forbid")
    name: str


class Organization(pydantic.BaseModel):
    """A company, institution or other organisation."""

    model_config = pydantic.ConfigDict(extra="forbid")
    name: str


SCHEMAS: list[type[pydantic.BaseModel]] = [Person, Location, Organization]
REPLIES = {
    "Person": {"items": [{"name": "Ada Lovelace"}, {"name": "Charles Babbage", "role": None}]},
    "Location": {"items": [{"name": "London"}]},
    "Organization": {"items": [{"name": "Royal Society"}]},
}


def _pieces(value: Any, size: int = 9) -> list[str]:
    text = json.dumps(value)
    return [text[i : i + size] for i in range(0, len(text), size)]


def _items_schema(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"items": {"type": "array", "items": model.model_json_schema()}},
        "required": ["items"],
        "additionalProperties": False,
    }


def _request(model: type[pydantic.BaseModel], name: str | None = None) -> ModelRequest:
    return ModelRequest(
        messages=(Message(role="user", content=TEXT),),
        purpose="extract",
        question=TEXT,
        response_schema=_items_schema(model),
        response_name=name or model.__name__,
    )


async def _collect(llm: Any, request: ModelRequest) -> tuple[str, list[Any]]:
    text: list[str] = []
    other: list[Any] = []
    async for event in llm.stream(request):
        if isinstance(event, str):
            text.append(event)
        elif not isinstance(event, Usage):
            other.append(event)
    return "".join(text), other


class _AllArrived:
    """A server-side barrier: each routed reply waits at a gate opened once ``n`` requests came."""

    def __init__(self, n: int, reply: Callable[[Recorded, Gate], Reply | None]) -> None:
        self.n = n
        self.reply = reply
        self.gates: list[Gate] = []
        self.lock = threading.Lock()

    def __call__(self, recorded: Recorded) -> Reply | None:
        gate = Gate()
        with self.lock:
            self.gates.append(gate)
            if len(self.gates) == self.n:
                for each in self.gates:
                    each.open()
        return self.reply(recorded, gate)


# --- servers and clients --------------------------------------------------------------------


# The loopback servers, their scripts and the clients on them: tests/conftest.py (keyed by this module's SECRET).


# --- the strict rule --------------------------------------------------------------------------


def test_strict_only_when_every_object_requires_all_and_forbids_others() -> None:
    assert strict_allowed(_items_schema(Location))
    assert not strict_allowed(_items_schema(Person))  # role is optional: not required

    class Loose(pydantic.BaseModel):  # every field required, but extra fields allowed
        name: str

    assert not strict_allowed(_items_schema(Loose))

    class Inner(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="forbid")
        city: str | None = None

    class Outer(pydantic.BaseModel):  # the nested model (in $defs) is the one that is not strict
        model_config = pydantic.ConfigDict(extra="forbid")
        name: str
        where: Inner

    assert "$defs" in Outer.model_json_schema()
    assert not strict_allowed(_items_schema(Outer))


# --- OpenAI -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("model", "strict"), [(Location, True), (Person, False)])
async def test_openai_sends_a_json_schema_response_format_and_streams_the_json_as_text(
    openai_llm: OpenAIChat, openai_script: Script, model: type[pydantic.BaseModel], strict: bool
) -> None:
    reply = REPLIES[model.__name__]
    openai_script.add(SSE(oa.text_stream(_pieces(reply))))
    text, other = await _collect(openai_llm, _request(model))
    assert json.loads(text) == reply
    assert other == []
    body = openai_script.bodies()[0]
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": model.__name__, "schema": _items_schema(model), "strict": strict},
    }
    assert "tools" not in body


async def test_openai_makes_the_schema_name_wire_safe(openai_llm: OpenAIChat, openai_script: Script) -> None:
    openai_script.add(SSE(oa.text_stream(['{"items": []}'])))
    await _collect(openai_llm, _request(Location, name="My place.Kind"))
    assert openai_script.bodies()[0]["response_format"]["json_schema"]["name"] == "My_place-Kind"


async def test_openai_parallel_extraction_sends_every_schema_at_once(
    openai_llm: OpenAIChat, openai_script: Script
) -> None:
    def reply(recorded: Recorded, gate: Gate) -> Reply:
        name = recorded.body["response_format"]["json_schema"]["name"]
        return SSE(oa.text_stream([gate, *_pieces(REPLIES[name])]))

    openai_script.route = _AllArrived(3, reply)
    result = await extract(TEXT, SCHEMAS, llm=openai_llm, strategy="parallel")
    assert result.errors == []
    assert [p.name for p in result.items["Person"]] == ["Ada Lovelace", "Charles Babbage"]  # type: ignore[attr-defined]
    assert [p.name for p in result.items["Location"]] == ["London"]  # type: ignore[attr-defined]
    assert [p.name for p in result.items["Organization"]] == ["Royal Society"]  # type: ignore[attr-defined]
    assert result.provenance["Location"][0].start == TEXT.index("London")
    bodies = openai_script.bodies()
    formats = [b["response_format"]["json_schema"] for b in bodies]
    assert sorted(f["name"] for f in formats) == sorted(REPLIES)
    assert {f["name"]: f["strict"] for f in formats} == {
        "Person": False,
        "Location": True,
        "Organization": True,
    }
    assert all(TEXT in json.dumps(b["messages"]) for b in bodies)
    starts = [r.start for r in result.timings.calls if r.start is not None]
    ends = [r.end for r in result.timings.calls if r.end is not None]
    assert len(starts) == len(ends) == 3
    assert max(starts) <= min(ends)  # the three calls overlapped


async def test_openai_a_failing_schema_call_keeps_the_others(openai_llm: OpenAIChat, openai_script: Script) -> None:
    def reply(recorded: Recorded, gate: Gate) -> Reply:
        name = recorded.body["response_format"]["json_schema"]["name"]
        if name == "Location":
            gate.open()
            return oa.server_error()
        return SSE(oa.text_stream([gate, *_pieces(REPLIES[name])]))

    openai_script.route = _AllArrived(3, reply)
    result = await extract(TEXT, SCHEMAS, llm=openai_llm)
    assert [(e.schema, e.chunk) for e in result.errors] == [("Location", 0)]
    assert "500" in result.errors[0].reason or "server" in result.errors[0].reason.lower()
    assert SECRET not in result.errors[0].reason
    assert result.items["Location"] == []
    assert len(result.items["Person"]) == 2
    assert len(result.items["Organization"]) == 1


async def test_openai_native_extraction_reads_one_item_per_parallel_tool_call(
    openai_llm: OpenAIChat, openai_script: Script
) -> None:
    openai_script.add(
        SSE(
            oa.tool_stream(
                [
                    ("call_1", "Person", _pieces({"name": "Ada Lovelace"})),
                    ("call_2", "Location", _pieces({"name": "London"})),
                    ("call_3", "Person", _pieces({"name": "Charles Babbage", "role": "mathematician"})),
                    ("call_4", "Organization", _pieces({"name": "Royal Society", "founded": 1660})),  # invalid
                ]
            )
        )
    )
    result = await extract(TEXT, SCHEMAS, llm=openai_llm, strategy="native")
    body = openai_script.bodies()[0]
    assert body["parallel_tool_calls"] is True
    assert [t["function"]["name"] for t in body["tools"]] == ["Person", "Location", "Organization"]
    assert body["tools"][0]["function"]["description"] == "A person mentioned in the text."
    assert "response_format" not in body
    assert [p.model_dump() for p in result.items["Person"]] == [
        {"name": "Ada Lovelace", "role": None},
        {"name": "Charles Babbage", "role": "mathematician"},
    ]
    assert [p.model_dump() for p in result.items["Location"]] == [{"name": "London"}]
    assert result.items["Organization"] == []  # extra="forbid": the call with "founded" is invalid
    assert [e.schema for e in result.errors] == ["Organization"]


# --- Anthropic --------------------------------------------------------------------------------


async def test_anthropic_forces_a_tool_with_the_schema_and_streams_its_input_as_text(
    anthropic_llm: AnthropicChat, anthropic_script: Script
) -> None:
    reply = REPLIES["Person"]
    anthropic_script.add(
        SSE(an.tool_use_stream([("toolu_1", "Person", _pieces(reply))], text=["I will record ", "the people."]))
    )
    text, other = await _collect(anthropic_llm, _request(Person))
    assert json.loads(text) == reply  # the text block before the tool was dropped
    assert other == []  # no ToolCall
    body = anthropic_script.bodies()[0]
    assert body["tools"] == [
        {
            "name": "Person",
            "description": "Record the Person found, as JSON.",
            "input_schema": _items_schema(Person),
        }
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "Person"}


async def test_anthropic_a_reply_without_the_tool_gives_its_text(
    anthropic_llm: AnthropicChat, anthropic_script: Script
) -> None:
    anthropic_script.add(SSE(an.text_stream(['{"items": ', '[{"name": "London"}]}'])))
    text, _ = await _collect(anthropic_llm, _request(Location))
    assert json.loads(text) == REPLIES["Location"]


async def test_anthropic_a_tool_block_with_no_deltas_gives_its_start_input(
    anthropic_llm: AnthropicChat, anthropic_script: Script
) -> None:
    anthropic_script.add(SSE(an.tool_use_stream([("toolu_1", "Location", [])])))
    text, _ = await _collect(anthropic_llm, _request(Location))
    assert json.loads(text) == {}


async def test_anthropic_parallel_extraction_sends_every_schema_at_once(
    anthropic_llm: AnthropicChat, anthropic_script: Script
) -> None:
    def reply(recorded: Recorded, gate: Gate) -> Reply:
        name = recorded.body["tool_choice"]["name"]
        if name == "Organization":
            gate.open()
            return Status(500, an.error_body("Internal server error", "api_error"))
        return SSE(an.tool_use_stream([("toolu_x", name, [gate, *_pieces(REPLIES[name])])]))

    anthropic_script.route = _AllArrived(3, reply)
    result = await extract(TEXT, SCHEMAS, llm=anthropic_llm, strategy="parallel")
    assert [p.name for p in result.items["Person"]] == ["Ada Lovelace", "Charles Babbage"]  # type: ignore[attr-defined]
    assert [p.name for p in result.items["Location"]] == ["London"]  # type: ignore[attr-defined]
    assert result.items["Organization"] == []
    assert [(e.schema, e.chunk) for e in result.errors] == [("Organization", 0)]
    assert all(b["tools"][0]["name"] == b["tool_choice"]["name"] for b in anthropic_script.bodies())


async def test_anthropic_native_extraction_reads_one_item_per_tool_use(
    anthropic_llm: AnthropicChat, anthropic_script: Script
) -> None:
    anthropic_script.add(
        SSE(
            an.tool_use_stream(
                [
                    ("toolu_1", "Person", _pieces({"name": "Ada Lovelace"})),
                    ("toolu_2", "Organization", _pieces({"name": "Royal Society"})),
                    ("toolu_3", "Location", _pieces({"name": "London"})),
                ],
                text=["Recording the entities."],
            )
        )
    )
    result = await extract(TEXT, SCHEMAS, llm=anthropic_llm, strategy="native")
    body = anthropic_script.bodies()[0]
    assert [t["name"] for t in body["tools"]] == ["Person", "Location", "Organization"]
    assert "tool_choice" not in body
    assert result.errors == []
    assert {name: [i.model_dump()["name"] for i in items] for name, items in result.items.items()} == {
        "Person": ["Ada Lovelace"],
        "Location": ["London"],
        "Organization": ["Royal Society"],
    }
