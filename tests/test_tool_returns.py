"""A tool may declare the shape of its result (``Tool.returns``, ``ToolSpec.returns``).

From ``Tool.from_schema(returns=...)`` or a return annotation with named fields. The signature
then shows the fields (so every prompt that lists tools shows them), and the local model's plan
grammar offers exactly those paths after ``$N``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypedDict

import pydantic
import pytest

from llmcompiler import Tool, UserError, tool
from llmcompiler._prompts import describe_tools
from llmcompiler.models._grammar import plan_grammar


class Airport(TypedDict):
    entityId: str
    skyId: str


class Repo(pydantic.BaseModel):
    id: int
    full_name: str


@dataclasses.dataclass
class Leg:
    origin: str
    minutes: int


def _noop(**kwargs: Any) -> None:
    return None


def test_from_schema_takes_the_result_schema_and_the_spec_carries_it() -> None:
    returns: dict[str, Any] = {
        "type": "object",
        "properties": {"entityId": {"type": "string"}, "rank": {"type": "float"}},
    }
    airport = Tool.from_schema(
        name="airport",
        description="Find an airport.",
        parameters={"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
        fn=_noop,
        returns=returns,
    )
    assert airport.returns == {
        "type": "object",
        "properties": {"entityId": {"type": "string"}, "rank": {"type": "number"}},
    }
    assert returns["properties"]["rank"] == {"type": "float"}  # the caller's schema is not changed
    assert airport.spec.returns == airport.returns
    assert airport.signature() == "airport(query: str) -> {entityId: str, rank: float}"
    assert airport.with_limits(timeout=3).spec.returns == airport.returns
    assert describe_tools([airport]).splitlines()[0] == "1. airport(query: str) -> {entityId: str, rank: float}"


@pytest.mark.parametrize("returns", [{"type": 5}, "object", ["x"]])
def test_a_result_schema_that_is_no_schema_is_refused(returns: Any) -> None:
    with pytest.raises(UserError, match="returns"):
        Tool.from_schema(name="t", description="", parameters={"type": "object"}, fn=_noop, returns=returns)


def test_a_return_annotation_with_named_fields_declares_the_result() -> None:
    @tool
    def airport(query: str) -> Airport:
        """Find an airport."""
        return {"entityId": "E", "skyId": "S"}

    @tool
    def repos(user: str) -> list[Repo]:
        """A user's repositories."""
        return []

    @tool
    def leg(code: str) -> Leg | None:
        """A flight leg."""
        return None

    assert airport.signature() == "airport(query: str) -> {entityId: str, skyId: str}"
    assert repos.signature() == "repos(user: str) -> list[{id: int, full_name: str}]"
    assert leg.signature() == "leg(code: str) -> {origin: str, minutes: int} | None"


def test_a_result_without_named_fields_declares_nothing() -> None:
    @tool
    def text(q: str) -> str:
        """Text."""
        return q

    @tool
    def loose(q: str) -> dict[str, Any]:
        """A mapping of unknown keys."""
        return {}

    @tool
    def untyped(q: str):  # type: ignore[no-untyped-def]
        """No annotation."""
        return q

    for t in (text, loose, untyped):
        assert t.returns is None and t.spec.returns is None and "->" not in t.signature()


def test_the_local_grammar_offers_the_fields_of_a_declared_result() -> None:
    @tool
    def airport(query: str) -> Airport:
        """Find an airport."""
        return {"entityId": "E", "skyId": "S"}

    @tool
    def flights(origin: str, dest: str) -> str:
        """Search flights."""
        return f"{origin}-{dest}"

    gbnf = plan_grammar([airport.spec, flights.spec], first_idx=2, produced={1: "airport"}).to_gbnf()
    assert 'path-airport-string ::= ".entityId" | ".skyId"' in gbnf
