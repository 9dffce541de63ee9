"""The tools layer: ``@tool``, ``Tool.from_schema``, LangChain tools, validation, threads, limits, signatures.

Concurrency is proven with events, never with timing. The module uses string annotations
(``from __future__ import annotations``), so every ``@tool`` here also proves that postponed
annotations are resolved; the types the tools use live at module level for that reason.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import pydantic
import pytest
from blockbuster import BlockBuster
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.tools import BaseTool, StructuredTool
from langchain_core.tools import tool as lc_tool

from llmcompiler import ArgumentError, LLMCompiler, TaskRecord, Tool, ToolLimits, UserError, execute_plan, tool
from llmcompiler._tools import as_tool, coerce_tools, normalize_schema
from llmcompiler.testing import ScriptedLLM

# Hypothesis runs many examples inside one test; the autouse fixtures (env cleanup, blockbuster)
# are safe to share between them.
HYPOTHESIS = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)

# Long enough that a slow machine never trips it, short enough that a broken build fails instead of hanging.
PATIENCE = 30.0


def by_idx(records: list[TaskRecord]) -> dict[int, TaskRecord]:
    return {r.idx: r for r in records}


# --------------------------------------------------------------------------- types used by the tools


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class Point(pydantic.BaseModel):
    lat: float
    lon: float


class Place(pydantic.BaseModel):
    name: str
    at: Point
    tags: list[str] = []


class Loc(pydantic.BaseModel):
    city: str
    zip: int | None = None


# --------------------------------------------------------------------------- @tool


def test_tool_takes_name_from_function_and_description_from_docstring() -> None:
    @tool
    def search(query: str, limit: int = 5) -> list[str]:
        """Search the web.

        Returns the top hits, best first.

        Args:
            query: what to look for.
            limit: how many hits to return.

        Returns:
            The hits.
        """
        return [query] * limit

    assert isinstance(search, Tool)
    assert search.name == "search"
    assert search.description == "Search the web.\n\nReturns the top hits, best first."
    assert "Args:" not in search.description and "Returns:" not in search.description
    props = search.parameters["properties"]
    assert props["query"] == {"type": "string", "description": "what to look for."}
    assert props["limit"] == {"type": "integer", "default": 5, "description": "how many hits to return."}
    assert search.parameters["required"] == ["query"]
    assert search.parameters["type"] == "object"
    assert search.param_names == ("query", "limit")


def test_tool_without_docstring_has_empty_description() -> None:
    @tool
    def bare(x: int) -> int:
        return x

    assert bare.description == ""
    assert "description" not in bare.parameters["properties"]["x"]


async def test_tool_on_sync_function_calls_it_with_validated_arguments() -> None:
    @tool
    def add(a: int, b: int = 10) -> int:
        """Add."""
        return a + b

    assert add.validate({"a": 1}) == {"a": 1, "b": 10}
    assert await add.ainvoke({"a": 1}) == 11
    assert await add.ainvoke({"a": 1, "b": 2}) == 3
    assert await add.call({"a": 4, "b": 5}) == 9


async def test_tool_on_async_function_awaits_it_on_the_event_loop() -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []

    @tool
    async def fetch(url: str) -> str:
        """Fetch a page."""
        seen.append(threading.get_ident())
        await asyncio.sleep(0)
        return f"<html>{url}</html>"

    assert fetch.name == "fetch" and fetch.description == "Fetch a page."
    assert await fetch.ainvoke({"url": "a"}) == "<html>a</html>"
    assert seen == [loop_thread]  # a coroutine function is not sent to a thread


def test_tool_schema_from_type_hints() -> None:
    @tool
    def plan_trip(
        place: Place,
        stops: list[Point],
        notes: dict[str, int],
        unit: Unit,
        mode: Literal["car", "train"] = "train",
        budget: float | None = None,
        tags: list[str] | None = None,
        anything: Any = None,
    ) -> str:
        """Plan a trip."""
        return ""

    schema = plan_trip.parameters
    props = schema["properties"]
    assert list(props) == ["place", "stops", "notes", "unit", "mode", "budget", "tags", "anything"]
    assert schema["required"] == ["place", "stops", "notes", "unit"]
    assert schema["additionalProperties"] is False
    # nested models become $defs, referenced by name
    assert props["place"] == {"$ref": "#/$defs/Place"}
    assert schema["$defs"]["Place"] == {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "at": {"$ref": "#/$defs/Point"},
            "tags": {"type": "array", "items": {"type": "string"}, "default": []},
        },
        "required": ["name", "at"],
    }
    assert schema["$defs"]["Point"]["properties"] == {"lat": {"type": "number"}, "lon": {"type": "number"}}
    # lists and dicts
    assert props["stops"] == {"type": "array", "items": {"$ref": "#/$defs/Point"}}
    assert props["notes"] == {"type": "object", "additionalProperties": {"type": "integer"}}
    # Enum and Literal
    assert props["unit"] == {"$ref": "#/$defs/Unit"}
    assert schema["$defs"]["Unit"] == {"type": "string", "enum": ["celsius", "fahrenheit"]}
    assert props["mode"] == {"type": "string", "enum": ["car", "train"], "default": "train"}
    # Optional with defaults
    assert props["budget"] == {"anyOf": [{"type": "number"}, {"type": "null"}], "default": None}
    assert props["tags"] == {
        "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}],
        "default": None,
    }
    assert props["anything"] == {"default": None}
    # pydantic's titles are noise in a prompt: none left anywhere
    assert '"title"' not in json.dumps(schema)
    # the schema is JSON
    assert json.loads(json.dumps(schema)) == schema


def test_strip_titles_keeps_properties_and_data_named_title() -> None:
    @tool
    def shelve(title: str, book: dict[str, str] | None = None, kind: Literal["title", "isbn"] = "title") -> str:
        """Shelve a book."""
        return title

    props = shelve.parameters["properties"]
    assert list(props) == ["title", "book", "kind"]
    assert props["kind"]["enum"] == ["title", "isbn"]

    @tool
    def shelve2(book: dict[str, str] = {"title": "Dune"}) -> str:  # noqa: B006 - the default is what is tested
        """Shelve a book."""
        return book["title"]

    assert shelve2.parameters["properties"]["book"]["default"] == {"title": "Dune"}


def test_tool_validate_builds_models_and_enums_from_plain_data() -> None:
    @tool
    def visit(place: Place, unit: Unit = Unit.CELSIUS, mode: Literal["car", "train"] = "train") -> str:
        """Visit."""
        return place.name

    kwargs = visit.validate({"place": {"name": "Oslo", "at": {"lat": 59.9, "lon": 10.7}}, "unit": "fahrenheit"})
    assert kwargs["place"] == Place(name="Oslo", at=Point(lat=59.9, lon=10.7))
    assert kwargs["unit"] is Unit.FAHRENHEIT
    assert kwargs["mode"] == "train"
    assert visit.parameters["properties"]["unit"]["default"] == "celsius"


def test_tool_with_name_and_description_overrides() -> None:
    @tool(name="math_toolkit.sum_of_multiples", description="Sum the multiples of k below n.")
    def som(n: int, k: int) -> int:
        """Ignored docstring."""
        return sum(range(0, n, k))

    assert som.name == "math_toolkit.sum_of_multiples"
    assert som.description == "Sum the multiples of k below n."
    assert som.signature() == "math_toolkit.sum_of_multiples(n: int, k: int)"

    @tool(description="")
    def quiet(x: int) -> int:
        """Not this."""
        return x

    assert quiet.description == ""  # an explicit empty description is kept, not replaced by the docstring


def test_tool_with_empty_parentheses_and_limits() -> None:
    @tool()
    def plain(x: int) -> int:
        """Plain."""
        return x

    assert plain.name == "plain" and plain.limits == ToolLimits()

    @tool(timeout=2.5, max_concurrency=3, rate_limit=10, period=2.0, retries=2, backoff=0.1)
    def limited(x: int) -> int:
        """Limited."""
        return x

    assert limited.limits == ToolLimits(
        timeout=2.5, max_concurrency=3, rate_limit=10, period=2.0, retries=2, backoff=0.1
    )


def test_tool_with_no_parameters() -> None:
    @tool
    def now() -> str:
        """The time."""
        return "noon"

    assert now.parameters["properties"] == {}
    assert now.validate({}) == {}
    assert now.signature() == "now()"
    with pytest.raises(ArgumentError, match="unexpected argument 'x'"):
        now.validate({"x": 1})


@pytest.mark.parametrize("pname", ["json", "schema", "copy", "dict", "validate", "model_config", "model_fields", "_x"])
async def test_tool_parameter_names_that_pydantic_treats_specially_work(pname: str) -> None:
    # Regression: these names used to warn (an error under filterwarnings=error), be swallowed as
    # model config, or be refused as private attributes.
    ns: dict[str, Any] = {}
    exec(f"def echo({pname}: int) -> int:\n    return {pname}\n", ns)  # test-written source, not model output
    echo = tool(ns["echo"])
    assert list(echo.parameters["properties"]) == [pname]
    assert echo.parameters["required"] == [pname]
    assert echo.validate({pname: 3}) == {pname: 3}
    assert await echo.ainvoke({pname: 4}) == 4
    with pytest.raises(ArgumentError, match=re.escape(f"missing required argument {pname!r}")):
        echo.validate({})
    with pytest.raises(ArgumentError, match="unexpected argument 'p0'"):
        echo.validate({pname: 1, "p0": 1})  # the internal field name is not a second way in


async def test_tool_on_partial_and_callable_object_with_a_name() -> None:
    async def scale(x: int, factor: int) -> int:
        return x * factor

    triple = tool(name="triple")(functools.partial(scale, factor=3))
    assert triple.parameters["properties"]["x"] == {"type": "integer"}
    assert triple.parameters["properties"]["factor"] == {"type": "integer", "default": 3}
    assert await triple.ainvoke({"x": 2}) == 6

    class Counter:
        def __init__(self) -> None:
            self.calls = 0

        async def __call__(self, step: int) -> int:
            self.calls += step
            return self.calls

    counter = Counter()
    count = tool(name="count")(counter)
    assert count.parameters["required"] == ["step"]
    assert await count.ainvoke({"step": 2}) == 2
    assert counter.calls == 2


# --------------------------------------------------------------------------- Tool.from_schema

PLAY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "artist": {"type": "string", "description": "who"},
        "volume": {"type": "integer", "default": 50},
        "shuffle": {"type": "boolean"},
        "device": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "kind": {"type": "string", "enum": ["speaker", "phone"]},
            },
            "required": ["id"],
        },
        "tracks": {"type": "array", "items": {"type": "integer"}},
        "mood": {"type": "string", "enum": ["calm", "loud"]},
        "extra": {},
    },
    "required": ["artist"],
}


async def test_from_schema_wraps_a_sync_callable_and_passes_keyword_arguments() -> None:
    got: list[dict[str, Any]] = []

    def play(**kwargs: Any) -> str:
        got.append(kwargs)
        return f"playing {kwargs['artist']}"

    spotify = Tool.from_schema(name="spotify.play", description="Play music.", parameters=PLAY_SCHEMA, fn=play)
    assert spotify.name == "spotify.play"
    assert spotify.description == "Play music."
    assert spotify.param_names == ("artist", "volume", "shuffle", "device", "tracks", "mood", "extra")
    args = {
        "artist": "Nina",
        "shuffle": True,
        "device": {"id": "d1", "kind": "phone"},
        "tracks": [1, 2],
        "mood": "calm",
        "extra": {"anything": [1, "goes"]},
    }
    assert await spotify.ainvoke(args) == "playing Nina"
    assert got == [{**args, "volume": 50}]  # defaults filled in, every argument by keyword


async def test_from_schema_wraps_an_async_callable() -> None:
    async def total(values: list[float], scale: float = 1.0) -> float:
        return sum(values) * scale

    tool_ = Tool.from_schema(
        name="total",
        description="Sum.",
        parameters={
            "type": "object",
            "properties": {"values": {"type": "array", "items": {"type": "number"}}, "scale": {"type": "number"}},
            "required": ["values"],
        },
        fn=total,
    )
    assert await tool_.ainvoke({"values": [1, 2.5]}) == 3.5
    assert await tool_.ainvoke({"values": [1], "scale": 3}) == 3


def test_from_schema_keeps_the_schema_and_fills_type_and_properties() -> None:
    t = Tool.from_schema(name="t", description="", parameters={}, fn=lambda: None)
    assert t.parameters == {"type": "object", "properties": {}}
    t2 = Tool.from_schema(name="t2", description="", parameters={"properties": {"a": {"type": "string"}}}, fn=print)
    assert t2.parameters == {"type": "object", "properties": {"a": {"type": "string"}}}


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({}, "missing required argument 'artist'"),
        ({"artist": "x", "colour": "red"}, "unexpected argument 'colour'"),
        ({"artist": 3}, "argument 'artist': 3 is not of type 'string'"),
        ({"artist": "x", "device": {"kind": "phone"}}, "argument 'device': 'id' is a required property"),
        ({"artist": "x", "device": {"id": 7}}, "argument 'device.id': 7 is not of type 'string'"),
        ({"artist": "x", "device": {"id": "a", "kind": "tv"}}, "argument 'device.kind': 'tv' is not one of"),
        ({"artist": "x", "tracks": [1, "two"]}, "argument 'tracks.1': 'two' is not of type 'integer'"),
        ({"artist": "x", "mood": "sad"}, "argument 'mood': 'sad' is not one of ['calm', 'loud']"),
        ({"artist": "x", "shuffle": "yes"}, "argument 'shuffle': 'yes' is not of type 'boolean'"),
    ],
)
def test_from_schema_validation_names_the_argument(args: dict[str, Any], fragment: str) -> None:
    spotify = Tool.from_schema(name="spotify.play", description="", parameters=PLAY_SCHEMA, fn=print)
    with pytest.raises(ArgumentError) as info:
        spotify.validate(args)
    assert fragment in str(info.value)


def test_from_schema_reports_every_failing_argument() -> None:
    spotify = Tool.from_schema(name="spotify.play", description="", parameters=PLAY_SCHEMA, fn=print)
    with pytest.raises(ArgumentError) as info:
        spotify.validate({"artist": 1, "mood": "sad"})
    assert "'artist'" in str(info.value) and "'mood'" in str(info.value)


def test_from_schema_additional_properties_allow_extra_arguments() -> None:
    open_ = Tool.from_schema(
        name="open_",
        description="",
        parameters={"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": True},
        fn=print,
    )
    assert open_.validate({"a": 1, "b": "x"}) == {"a": 1, "b": "x"}
    typed = Tool.from_schema(
        name="typed",
        description="",
        parameters={"type": "object", "additionalProperties": {"type": "integer"}},
        fn=print,
    )
    assert typed.validate({"b": 2}) == {"b": 2}
    with pytest.raises(ArgumentError, match="'x' is not of type 'integer'"):
        typed.validate({"b": "x"})


def test_from_schema_required_names_without_properties_are_arguments() -> None:
    # Regression: a name listed only in ``required`` used to be rejected as unexpected, so the
    # tool could never be called.
    t = Tool.from_schema(name="t", description="", parameters={"type": "object", "required": ["q"]}, fn=print)
    assert t.validate({"q": "anything"}) == {"q": "anything"}
    with pytest.raises(ArgumentError, match="missing required argument 'q'"):
        t.validate({})


async def test_from_schema_defaults_are_fresh_for_each_call() -> None:
    # Regression: a mutable default used to be one shared object, so a tool that appended to it
    # changed what every later call received.
    def collect(xs: list[int]) -> list[int]:
        xs.append(1)
        return xs

    schema = {"type": "object", "properties": {"xs": {"type": "array", "default": []}}}
    t = Tool.from_schema(name="collect", description="", parameters=schema, fn=collect)
    assert await t.ainvoke({}) == [1]
    assert await t.ainvoke({}) == [1]
    assert t.parameters["properties"]["xs"]["default"] == []


def test_from_schema_accepts_bfcl_loose_types() -> None:
    bfcl = {
        "type": "dict",
        "properties": {
            "ratio": {"type": "float", "description": "a ratio"},
            "point": {"type": "tuple", "items": {"type": "float"}},
            "meta": {"type": "dict", "properties": {"n": {"type": "int"}}},
            "whatever": {"type": "any"},
            "maybe": {"type": ["str", "null"]},
            "names": {"type": "list", "items": {"type": "String"}},
        },
        "required": ["ratio"],
    }
    before = json.dumps(bfcl, sort_keys=True)
    t = Tool.from_schema(name="bfcl.fn", description="", parameters=bfcl, fn=print)
    assert json.dumps(bfcl, sort_keys=True) == before  # the caller's schema is not changed
    assert t.parameters == {
        "type": "object",
        "properties": {
            "ratio": {"type": "number", "description": "a ratio"},
            "point": {"type": "array", "items": {"type": "number"}},
            "meta": {"type": "object", "properties": {"n": {"type": "integer"}}},
            "whatever": {},
            "maybe": {"type": ["string", "null"]},
            "names": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["ratio"],
    }
    # a tuple is an array (plan literals may write one); "any" accepts anything
    ok = {"ratio": 0.5, "point": (1.0, 2.0), "meta": {"n": 1}, "whatever": [None, {"a": 1}], "maybe": None}
    assert t.validate(ok) == ok
    with pytest.raises(ArgumentError, match=re.escape("argument 'point.0'")):
        t.validate({"ratio": 1.0, "point": ("x",)})
    with pytest.raises(ArgumentError, match=re.escape("argument 'meta.n'")):
        t.validate({"ratio": 1.0, "meta": {"n": 1.5}})


def test_normalize_schema_recurses_into_subschemas_and_leaves_input_alone() -> None:
    schema: dict[str, Any] = {
        "type": "dict",
        "anyOf": [{"type": "float"}, {"type": "any"}],
        "$defs": {"P": {"type": "dict", "additionalProperties": {"type": "float"}}},
        "items": [{"type": "tuple"}],
        "enum": ["float", "dict"],
        "default": {"type": "float"},
    }
    out = normalize_schema(schema, where="test")
    assert out == {
        "type": "object",
        "anyOf": [{"type": "number"}, {}],
        "$defs": {"P": {"type": "object", "additionalProperties": {"type": "number"}}},
        "items": [{"type": "array"}],
        "enum": ["float", "dict"],  # data, not types
        "default": {"type": "float"},
    }
    assert schema["type"] == "dict" and schema["anyOf"][0] == {"type": "float"}


@given(
    name=st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}(\.[A-Za-z_][A-Za-z0-9_]{0,15}){0,3}", fullmatch=True).filter(
        lambda n: n != "join"
    )
)
@HYPOTHESIS
def test_valid_tool_names_round_trip(name: str) -> None:
    t = Tool.from_schema(name=name, description="", parameters={}, fn=print)
    assert t.name == name
    assert t.signature() == f"{name}()"
    assert coerce_tools([t]) == {name: t}


@given(name=st.text(max_size=12).filter(lambda n: not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", n, re.ASCII)))
@HYPOTHESIS
def test_invalid_tool_names_are_refused(name: str) -> None:
    with pytest.raises(UserError, match="tool name"):
        Tool.from_schema(name=name, description="", parameters={}, fn=print)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@given(value=JSON)
@HYPOTHESIS
def test_untyped_property_accepts_any_json_value(value: Any) -> None:
    t = Tool.from_schema(
        name="sink",
        description="",
        parameters={"type": "object", "properties": {"payload": {}, "note": {"type": "any"}}, "required": ["payload"]},
        fn=print,
    )
    assert t.validate({"payload": value}) == {"payload": value}
    assert t.validate({"payload": value, "note": value}) == {"payload": value, "note": value}


@given(args=st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True), JSON, max_size=6))
@HYPOTHESIS
def test_open_schema_accepts_any_json_argument_dict(args: dict[str, Any]) -> None:
    t = Tool.from_schema(
        name="anything", description="", parameters={"type": "object", "additionalProperties": True}, fn=print
    )
    assert t.validate(args) == args


# --------------------------------------------------------------------------- LangChain tools


@lc_tool
def lc_weather(loc: Loc, days: int = 3) -> str:
    """Get the weather.

    Args:
        loc: where.
        days: how many days.
    """
    return f"{loc.city}:{days}"


@lc_tool
async def lc_shout(text: str) -> str:
    """Shout the text."""
    return text.upper()


def _mult(a: int, b: int) -> int:
    return a * b


lc_mult = StructuredTool.from_function(_mult, name="mult", description="Multiply two integers.")


class LcEcho(BaseTool):
    name: str = "echo"
    description: str = "Echo the text."

    def _run(self, text: str) -> str:
        return text


async def test_coerce_tools_accepts_langchain_tools() -> None:
    tools = coerce_tools([lc_weather, lc_shout, lc_mult, LcEcho()])
    assert list(tools) == ["lc_weather", "lc_shout", "mult", "echo"]
    assert all(isinstance(t, Tool) for t in tools.values())

    weather = tools["lc_weather"]
    assert weather.description.startswith("Get the weather.")
    assert weather.parameters["required"] == ["loc"]
    assert weather.parameters["properties"]["days"]["default"] == 3
    assert weather.parameters["properties"]["loc"]["properties"]["city"] == {"type": "string"}
    assert weather.signature() == "lc_weather(loc: dict, days: int = 3)"
    assert await weather.ainvoke({"loc": {"city": "Oslo"}}) == "Oslo:3"

    assert tools["lc_shout"].description == "Shout the text."
    assert await tools["lc_shout"].ainvoke({"text": "hi"}) == "HI"
    assert tools["mult"].description == "Multiply two integers."
    assert tools["mult"].signature() == "mult(a: int, b: int)"
    assert await tools["mult"].ainvoke({"a": 6, "b": 7}) == 42
    assert await tools["echo"].ainvoke({"text": "x"}) == "x"
    assert as_tool(lc_mult).name == "mult"


def test_langchain_tool_arguments_are_validated_against_its_schema() -> None:
    weather = as_tool(lc_weather)
    with pytest.raises(ArgumentError, match="'loc'"):
        weather.validate({"days": 1})
    with pytest.raises(ArgumentError, match=re.escape("'loc.zip'")):
        weather.validate({"loc": {"city": "Oslo", "zip": "x"}})
    with pytest.raises(ArgumentError, match="unexpected argument 'hours'"):
        weather.validate({"loc": {"city": "Oslo"}, "hours": 1})


async def test_execute_plan_runs_langchain_tools_directly() -> None:
    plan = (
        "1. lc_weather({'city': 'Paris'}, days=2)\n"
        "2. lc_shout($1)\n"
        "3. mult(6, 7)\n"
        "4. echo(text='${3}!')\n"
        "5. mult(2, 'x')\n"
        "6. lc_weather({'zip': 1})\n"
        "7. join()"
    )
    records = by_idx(await execute_plan(plan, [lc_weather, lc_shout, lc_mult, LcEcho()]))
    assert records[1].result == "Paris:2" and records[1].ok
    assert records[2].result == "PARIS:2" and records[2].ok  # async langchain tool
    assert records[3].result == 42 and records[3].ok  # sync langchain tool
    assert records[4].result == "42!" and records[4].ok
    assert records[5].error is not None and "'b'" in records[5].error and records[5].attempts == 0
    assert records[6].error is not None and "'loc'" in records[6].error and records[6].attempts == 0


async def test_llmcompiler_agent_runs_langchain_tools() -> None:
    llm = ScriptedLLM(["1. mult(6, 7)\n2. lc_shout('done')\n3. join()", "Thought: both ran.\nAction: Finish(42)"])
    agent = LLMCompiler(llm=llm, tools=[lc_mult, lc_shout])
    result = await agent.arun("What is 6 times 7?")
    assert result.answer == "42"
    assert [(t.tool, t.result) for t in result.tasks if t.tool != "join"] == [("mult", 42), ("lc_shout", "DONE")]


# --------------------------------------------------------------------------- validation before the call


@tool
def book(place: Place, unit: Unit, nights: int = 1) -> str:
    """Book a stay."""
    return place.name


BOOK_SCHEMA = Tool.from_schema(
    name="book",
    description="Book a stay.",
    parameters={
        "type": "object",
        "properties": {
            "place": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "at": {
                        "type": "object",
                        "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}},
                        "required": ["lat", "lon"],
                    },
                },
                "required": ["name", "at"],
            },
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "nights": {"type": "integer", "default": 1},
        },
        "required": ["place", "unit"],
    },
    fn=lambda **kw: kw["place"]["name"],
)

GOOD_PLACE = {"name": "Oslo", "at": {"lat": 1.0, "lon": 2.0}}

INVALID_CALLS = [
    pytest.param({"unit": "celsius"}, "missing required argument 'place'", id="missing"),
    pytest.param({"place": GOOD_PLACE, "unit": "celsius", "rooms": 2}, "unexpected argument 'rooms'", id="unexpected"),
    pytest.param(
        {"place": {"name": "Oslo", "at": {"lat": "north", "lon": 2.0}}, "unit": "celsius"},
        "argument 'place.at.lat'",
        id="nested-type",
    ),
    pytest.param({"place": GOOD_PLACE, "unit": "kelvin"}, "argument 'unit'", id="enum"),
]


@pytest.mark.parametrize("target", [book, BOOK_SCHEMA], ids=["@tool", "from_schema"])
@pytest.mark.parametrize(("args", "fragment"), INVALID_CALLS)
def test_validate_raises_argument_error_naming_the_argument(target: Tool, args: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ArgumentError) as info:
        target.validate(args)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def test_pydantic_messages_say_why() -> None:
    expected = "argument 'unit': Input should be 'celsius' or 'fahrenheit' (got 'kelvin')"
    with pytest.raises(ArgumentError, match=re.escape(expected)):
        book.validate({"place": GOOD_PLACE, "unit": "kelvin"})
    with pytest.raises(ArgumentError, match=re.escape("argument 'place.at.lat': Input should be a valid number")):
        book.validate({"place": {"name": "Oslo", "at": {"lat": "north", "lon": 2.0}}, "unit": "celsius"})


def _plan_literal(args: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in args.items())


@pytest.mark.parametrize("kind", ["@tool", "from_schema"])
@pytest.mark.parametrize(("args", "fragment"), INVALID_CALLS)
async def test_invalid_arguments_become_the_task_error_and_the_tool_is_not_called(
    kind: str, args: dict[str, Any], fragment: str
) -> None:
    calls: list[dict[str, Any]] = []

    def fn(**kwargs: Any) -> str:
        calls.append(kwargs)
        return "booked"

    if kind == "@tool":

        @tool(name="book")
        def target(place: Place, unit: Unit, nights: int = 1) -> str:
            """Book."""
            return fn(place=place, unit=unit, nights=nights)

    else:
        target = Tool.from_schema(name="book", description="", parameters=BOOK_SCHEMA.parameters, fn=fn)

    plan = f"1. book({_plan_literal(args)})\n2. book(place={GOOD_PLACE!r}, unit='celsius')\n3. join()"
    records = by_idx(await execute_plan(plan, [target]))
    failed = records[1]
    assert failed.error is not None and fragment in failed.error
    assert failed.error.startswith("invalid arguments for book")
    assert failed.result is None and failed.attempts == 0 and failed.start is None
    assert records[2].ok and records[2].result == "booked"
    assert len(calls) == 1  # only the valid task reached the function


async def test_arguments_from_references_are_validated_after_resolution() -> None:
    @tool
    def number() -> str:
        """Not a number."""
        return "seven"

    @tool
    def double(x: int) -> int:
        """Double."""
        return 2 * x

    records = by_idx(await execute_plan("1. number()\n2. double($1)\n3. join()", [number, double]))
    assert records[2].error is not None and "argument 'x'" in records[2].error and "'seven'" in records[2].error


# --------------------------------------------------------------------------- sync tools run in worker threads


def _handshake_tools(loop: asyncio.AbstractEventLoop) -> tuple[Tool, Tool, dict[str, Any]]:
    """A sync tool that waits for an async tool, which first waits for the sync tool to start.

    If the sync tool ran on the event loop, the async tool could never run to release it: the
    sync tool would give up after ``PATIENCE`` seconds and return ``False``.
    """
    sync_started = asyncio.Event()
    release = threading.Event()
    seen: dict[str, Any] = {}

    @tool
    def blocker() -> bool:
        """Block until released."""
        seen["blocker_thread"] = threading.get_ident()
        loop.call_soon_threadsafe(sync_started.set)
        return release.wait(PATIENCE)

    @tool
    async def releaser() -> str:
        """Release the blocker once it runs."""
        await sync_started.wait()
        release.set()
        return "released"

    return blocker, releaser, seen


async def test_sync_tool_runs_in_a_worker_thread_while_the_loop_runs_async_tools() -> None:
    blocker, releaser, seen = _handshake_tools(asyncio.get_running_loop())
    async with asyncio.timeout(PATIENCE * 2):
        released, message = await asyncio.gather(blocker.ainvoke({}), releaser.ainvoke({}))
    assert released is True and message == "released"
    assert seen["blocker_thread"] != threading.get_ident()


async def test_sync_tool_does_not_block_execute_plan() -> None:
    blocker, releaser, _ = _handshake_tools(asyncio.get_running_loop())
    async with asyncio.timeout(PATIENCE * 2):
        records = by_idx(await execute_plan("1. blocker()\n2. releaser()\n3. join()", [blocker, releaser]))
    assert records[1].ok and records[1].result is True
    assert records[2].ok and records[2].result == "released"


class _LcBlocker(BaseTool):
    """A sync LangChain tool in the same handshake: LangChain's ainvoke must send it to a thread."""

    name: str = "lc_blocker"
    description: str = "Block until released."
    release: Any
    started: Callable[[], object]

    def _run(self) -> bool:
        self.started()
        return bool(self.release.wait(PATIENCE))


async def test_sync_langchain_tool_does_not_block_the_loop() -> None:
    loop = asyncio.get_running_loop()
    sync_started = asyncio.Event()
    release = threading.Event()

    @tool
    async def releaser() -> str:
        """Release."""
        await sync_started.wait()
        release.set()
        return "released"

    blocker = _LcBlocker(release=release, started=lambda: loop.call_soon_threadsafe(sync_started.set))
    async with asyncio.timeout(PATIENCE * 2):
        records = by_idx(await execute_plan("1. lc_blocker()\n2. releaser()\n3. join()", [blocker, releaser]))
    assert records[1].ok and records[1].result is True
    assert records[2].ok


async def test_sync_tool_may_sleep_under_blockbuster(blockbuster: BlockBuster | None) -> None:
    assert blockbuster is not None  # the guard is on for this test

    @tool
    def nap(seconds: float) -> str:
        """Sleep, the blocking way."""
        time.sleep(seconds)
        return "rested"

    records = by_idx(await execute_plan("1. nap(0.01)\n2. join()", [nap]))
    assert records[1].ok and records[1].result == "rested"


async def test_blockbuster_catches_an_async_tool_that_blocks_the_loop() -> None:
    # The control for the test above: the same sleep on the loop is caught, so "passes under
    # blockbuster" means something.
    @tool
    async def bad_nap() -> str:
        """Block the loop."""
        time.sleep(0.01)  # noqa: ASYNC251 - blocking on purpose
        return "rested"

    records = by_idx(await execute_plan("1. bad_nap()\n2. join()", [bad_nap]))
    assert records[1].error is not None and "BlockingError" in records[1].error


async def test_sync_tool_returning_an_awaitable_is_awaited() -> None:
    async def later(x: int) -> int:
        return x + 1

    @tool
    def deferred(x: int) -> Any:
        """Return a coroutine."""
        return later(x)

    assert await deferred.ainvoke({"x": 1}) == 2


# --------------------------------------------------------------------------- bad definitions


def _lambda_tool() -> Tool:
    return tool(lambda x: x)


def _varargs_tool() -> Tool:
    def f(*items: int) -> int:
        return sum(items)

    return tool(f)


def _varkw_tool() -> Tool:
    def f(**options: int) -> int:
        return len(options)

    return tool(f)


def _posonly_tool() -> Tool:
    def f(x: int, /) -> int:
        return x

    return tool(f)


def _unknown_hint_tool() -> Tool:
    def f(x: NoSuchType) -> int:  # type: ignore[name-defined]  # noqa: F821
        return 0

    return tool(f)


def _arbitrary_type_tool() -> Tool:
    def f(lock: threading.Lock) -> int:
        return 0

    return tool(f)


def _schema_tool(**overrides: Any) -> Callable[[], Tool]:
    spec: dict[str, Any] = {"name": "t", "description": "", "parameters": {}, "fn": print}
    spec.update(overrides)
    return lambda: Tool.from_schema(**spec)


BAD_DEFINITIONS = [
    pytest.param(_schema_tool(name="bad name"), "tool name 'bad name' is not allowed", id="space"),
    pytest.param(_schema_tool(name="join"), "tool name 'join' is reserved", id="join"),
    pytest.param(_schema_tool(name="get-weather"), "is not allowed", id="hyphen"),
    pytest.param(_schema_tool(name="1st"), "is not allowed", id="leading-digit"),
    pytest.param(_schema_tool(name="a..b"), "is not allowed", id="empty-segment"),
    pytest.param(_schema_tool(name=""), "is not allowed", id="empty"),
    pytest.param(lambda: tool(name="bad name")(print), "tool name 'bad name' is not allowed", id="@tool-name"),
    pytest.param(lambda: tool(name="join")(lambda: 1), "reserved", id="@tool-join"),
    pytest.param(_lambda_tool, "lambda needs name=", id="lambda"),
    pytest.param(lambda: tool(functools.partial(print)), "partial object needs name=", id="partial"),
    pytest.param(_varargs_tool, "*items", id="*args"),
    pytest.param(_varkw_tool, "**options", id="**kwargs"),
    pytest.param(_posonly_tool, "positional-only", id="positional-only"),
    pytest.param(_unknown_hint_tool, "NoSuchType", id="unresolvable-hint"),
    pytest.param(_arbitrary_type_tool, "has no JSON Schema", id="unschemable-type"),
    pytest.param(
        lambda: tool(book),  # type: ignore[call-overload]
        "already a Tool",
        id="tool-of-tool",
    ),
    pytest.param(
        lambda: tool(42),  # type: ignore[call-overload]
        "needs a function",
        id="not-callable",
    ),
    pytest.param(lambda: as_tool("search"), "is not a tool", id="as_tool-string"),
    pytest.param(
        _schema_tool(parameters={"type": "array", "items": {}}), "must be a JSON Schema of type 'object'", id="array"
    ),
    pytest.param(_schema_tool(parameters={"type": "string"}), "of type 'object'", id="string"),
    pytest.param(_schema_tool(parameters="{}"), "parameters must be a JSON Schema", id="not-a-dict"),
    pytest.param(
        _schema_tool(parameters={"type": "object", "properties": {"x": {"type": "strng"}}}),
        "invalid JSON Schema",
        id="bad-type-name",
    ),
    pytest.param(
        _schema_tool(parameters={"type": "object", "properties": {"x": "string"}}), "invalid JSON Schema", id="prop-str"
    ),
    pytest.param(
        _schema_tool(parameters={"type": "object", "properties": ["x"]}), "invalid JSON Schema", id="props-list"
    ),
    pytest.param(_schema_tool(parameters={"type": "object", "required": "x"}), "invalid JSON Schema", id="required"),
    pytest.param(_schema_tool(fn="print"), "fn must be callable", id="fn-not-callable"),
]


@pytest.mark.parametrize(("build", "fragment"), BAD_DEFINITIONS)
def test_bad_tool_definitions_raise_user_error(build: Callable[[], Tool], fragment: str) -> None:
    with pytest.raises(UserError) as info:
        build()
    assert fragment in str(info.value)


def test_duplicate_tool_names_are_refused() -> None:
    @tool(name="search")
    def one(q: str) -> str:
        return q

    @tool(name="search")
    def two(q: str) -> str:
        return q

    with pytest.raises(UserError, match="two tools are named 'search'"):
        coerce_tools([one, two])

    def search(q: str) -> str:
        return q

    with pytest.raises(UserError, match="two tools are named 'search'"):
        coerce_tools([one, search])  # a plain function is converted first, then compared
    with pytest.raises(UserError, match="two tools are named 'mult'"):
        coerce_tools([lc_mult, tool(name="mult")(_mult)])


async def test_duplicate_tool_names_fail_execute_plan_before_anything_runs() -> None:
    with pytest.raises(UserError, match="two tools are named"):
        await execute_plan("1. book()\n2. join()", [book, book])


def test_coerce_tools_keeps_tools_and_wraps_plain_functions() -> None:
    def shout(text: str) -> str:
        """Shout."""
        return text.upper()

    tools = coerce_tools([book, shout])
    assert tools["book"] is book
    assert tools["shout"].description == "Shout."
    assert tools["shout"].signature() == "shout(text: str)"
    assert coerce_tools([]) == {}


# --------------------------------------------------------------------------- ToolLimits


def test_tool_limits_defaults() -> None:
    lim = ToolLimits()
    assert (lim.timeout, lim.max_concurrency, lim.rate_limit) == (None, None, None)
    assert (lim.period, lim.retries, lim.backoff, lim.max_backoff) == (1.0, 0, 0.5, 30.0)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1.0}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_concurrency": 1.5}, "max_concurrency"),
        ({"rate_limit": 0}, "rate_limit"),
        ({"rate_limit": -2}, "rate_limit"),
        ({"period": 0}, "period"),
        ({"retries": -1}, "retries"),
        ({"retries": 0.5}, "retries"),
        ({"backoff": -0.1}, "backoff"),
        ({"max_backoff": -1}, "max_backoff"),
    ],
)
def test_tool_limits_validation(changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(UserError, match=fragment):
        ToolLimits(**changes)


def test_tool_limits_accepts_valid_values() -> None:
    lim = ToolLimits(timeout=0.5, max_concurrency=1, rate_limit=0.5, period=60, retries=3, backoff=0, max_backoff=0)
    assert lim.retries == 3 and lim.backoff == 0


def test_with_limits_returns_a_copy_and_leaves_the_original_untouched() -> None:
    original_limits = book.limits
    limited = book.with_limits(timeout=5, retries=2)
    assert limited is not book
    assert limited.limits == ToolLimits(timeout=5, retries=2)
    assert book.limits is original_limits and book.limits == ToolLimits()
    assert (limited.name, limited.description, limited.parameters, limited.param_names) == (
        book.name,
        book.description,
        book.parameters,
        book.param_names,
    )
    assert limited.validate({"place": GOOD_PLACE, "unit": "celsius"}) == book.validate(
        {"place": GOOD_PLACE, "unit": "celsius"}
    )
    again = limited.with_limits(retries=0)
    assert again.limits == ToolLimits(timeout=5, retries=0) and limited.limits.retries == 2


def test_with_limits_rejects_bad_changes_without_touching_the_original() -> None:
    with pytest.raises(UserError, match="timeout"):
        book.with_limits(timeout=-1)
    with pytest.raises(UserError, match="unknown limit 'time_out'"):
        book.with_limits(time_out=1)  # type: ignore[call-arg]
    assert book.limits == ToolLimits()


async def test_with_limits_copy_calls_the_same_function() -> None:
    calls: list[int] = []

    @tool
    async def ping(n: int) -> int:
        """Ping."""
        calls.append(n)
        return n

    fast = ping.with_limits(timeout=10)
    assert await fast.ainvoke({"n": 1}) == 1
    assert await ping.ainvoke({"n": 2}) == 2
    assert calls == [1, 2]


# --------------------------------------------------------------------------- signature()


def test_signature_for_prompts() -> None:
    @tool
    def search(query: str, limit: int = 5) -> list[str]:
        """Search."""
        return []

    assert search.signature() == "search(query: str, limit: int = 5)"


def test_signature_shows_types_defaults_and_optionals() -> None:
    @tool
    def rich(
        place: Place,
        stops: list[Point],
        notes: dict[str, int],
        unit: Unit = Unit.CELSIUS,
        mode: Literal["car", "train"] = "train",
        budget: float | None = None,
        flag: bool = False,
        anything: Any = None,
    ) -> str:
        """Rich."""
        return ""

    assert rich.signature() == (
        "rich(place: Place, stops: list[Point], notes: dict, unit: Unit = 'celsius', "
        "mode: 'car' | 'train' = 'train', budget: float | None = None, flag: bool = False, anything: any = None)"
    )


def test_signature_of_an_explicit_schema() -> None:
    spotify = Tool.from_schema(name="spotify.play", description="", parameters=PLAY_SCHEMA, fn=print)
    assert spotify.signature() == (
        "spotify.play(artist: str, volume: int = 50, shuffle: bool = None, device: dict = None, "
        "tracks: list[int] = None, mood: 'calm' | 'loud' = None, extra: any = None)"
    )
    multi = Tool.from_schema(
        name="multi",
        description="",
        parameters={"type": "object", "properties": {"v": {"type": ["string", "null"]}}, "required": ["v"]},
        fn=print,
    )
    assert multi.signature() == "multi(v: str | None)"


def test_repr_names_the_tool() -> None:
    assert repr(book) == "Tool('book')"
