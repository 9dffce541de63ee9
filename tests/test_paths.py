"""Paths in ``$N`` references: ``$2.entityId``, ``$3[-1].name``, ``"${1.entityId}"``.

Resolution (``follow``): what each step reads, and the message of every way a step fails.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict, namedtuple
from collections.abc import Iterator, Mapping
from typing import Any

import pydantic
import pytest

from llmcompiler._literals import Ref, ResolveError, Template, follow, path_text, resolve


class Airport(pydantic.BaseModel):
    entityId: str
    skyId: str

    @property
    def computed(self) -> str:
        return "never read"


class Loose(pydantic.BaseModel, extra="allow"):
    name: str


@dataclasses.dataclass
class Flight:
    number: str
    legs: list[str]
    _internal: int = 0


@dataclasses.dataclass(slots=True)
class Slotted:
    code: str


Point = namedtuple("Point", "x y")


class Plain:
    def __init__(self) -> None:
        self.title = "t"
        self._private = "p"

    def method(self) -> str:
        return "never called"


class Strict(Mapping[str, int]):
    """A mapping that is not a dict."""

    def __getitem__(self, key: str) -> int:
        if key == "a":
            return 1
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(["a"])

    def __len__(self) -> int:
        return 1


class Exploding(Mapping[str, int]):
    def __getitem__(self, key: str) -> int:
        raise RuntimeError("boom")

    def __contains__(self, key: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter([])

    def __len__(self) -> int:
        return 0


AIRPORT = {"entityId": "E-NYC", "name": "New York", "skyId": "NYCA", "items": [{"id": 1}, {"id": 2}]}


@pytest.mark.parametrize(
    ("result", "path", "expected"),
    [
        (AIRPORT, ("entityId",), "E-NYC"),
        (AIRPORT, ("items", 1, "id"), 2),
        (AIRPORT, ("items", -1), {"id": 2}),
        (AIRPORT, ("items", -2, "id"), 1),
        ({0: "zero", "0": "text zero"}, (0,), "zero"),
        ({0: "zero", "0": "text zero"}, ("0",), "text zero"),
        ([[1, [2, 3]]], (0, 1, 0), 2),
        ((4, 5), (1,), 5),
        (Airport(entityId="E", skyId="S"), ("skyId",), "S"),
        (Loose.model_validate({"name": "n", "extra_field": 3}), ("extra_field",), 3),
        (Flight("BA1", ["LHR", "JFK"]), ("legs", -1), "JFK"),
        (Slotted("X"), ("code",), "X"),
        (Point(1, 2), ("y",), 2),
        (Point(1, 2), (0,), 1),
        (Plain(), ("title",), "t"),
        (Strict(), ("a",), 1),
        ({"_id": "mongo"}, ("_id",), "mongo"),  # a mapping's key may start with "_"
        ({"entity id": [None, False]}, ("entity id", 1), False),
        ({"x": None}, ("x",), None),  # a None at the end is the value, not a failure
    ],
)
def test_a_path_reads_keys_indexes_and_fields(result: Any, path: tuple[Any, ...], expected: Any) -> None:
    assert follow(Ref(1, path), result) == expected


def test_the_value_keeps_its_type_and_identity() -> None:
    inner = {"deep": [1, 2]}
    assert follow(Ref(1, ("a",)), {"a": inner}) is inner


@pytest.mark.parametrize(
    ("result", "path", "message"),
    [
        (AIRPORT, ("entityID",), "$1.entityID: no key 'entityID'; keys: entityId, name, skyId, items"),
        ({}, ("x",), "$1.x: no key 'x' (an empty dict)"),
        (defaultdict(list), ("x",), "$1.x: no key 'x' (an empty defaultdict)"),
        ({"a b": 1, 2: 3}, ("c",), "$1.c: no key 'c'; keys: 'a b', 2"),
        ({"0": 1}, (0,), '$1[0]: no key 0; keys: \'0\' (the key "0" is a string: write $1["0"])'),
        (AIRPORT, ("items", 0, "ID"), "$1.items[0].ID: no key 'ID' in $1.items[0]; keys: id"),
        ([1, 2], (5,), "$1[5]: index 5 out of range (a list of 2)"),
        ([1, 2], (-3,), "$1[-3]: index -3 out of range (a list of 2)"),
        ((), (0,), "$1[0]: index 0 out of range (a tuple of 0)"),
        (AIRPORT, ("items", 2, "id"), "$1.items[2].id: index 2 out of range in $1.items (a list of 2)"),
        (None, ("items",), "$1.items: $1 is None"),
        ({"a": None}, ("a", "b"), "$1.a.b: $1.a is None"),
        ("E-NYC", (0,), "$1[0]: $1 is a str ('E-NYC'), not a list"),
        (42, (0,), "$1[0]: $1 is an int (42), not a list"),
        (
            Plain(),
            (0,),
            "$1[0]: $1 is a Plain (",
        ),
        ({1, 2}, (0,), "$1[0]: $1 is a set of 2, not a list"),
        ("E-NYC", ("x",), "$1.x: $1 is a str ('E-NYC'), which has no fields"),
        (
            [{"name": "a"}],
            ("name",),
            "$1.name: $1 is a list of 1, which has no fields (for its first item's, write $1[0].name)",
        ),
        ((1, 2), ("x",), "$1.x: $1 is a tuple of 2, which has no fields (for its first item's, write $1[0].x)"),
        (
            Airport(entityId="E", skyId="S"),
            ("computed",),
            "$1.computed: an Airport has no field 'computed'; fields: entityId, skyId",
        ),
        (
            Airport(entityId="E", skyId="S"),
            ("__class__",),
            "$1.__class__: '__class__' is not read: names starting with '_' are never read",
        ),
        (Flight("a", []), ("_internal",), "$1._internal: '_internal' is not read"),
        (Plain(), ("_private",), "$1._private: '_private' is not read"),
        (Plain(), ("method",), "$1.method: a Plain has no field 'method'; fields: title"),
        (Flight("a", []), ("number", "x"), "$1.number.x: $1.number is a str ('a'), which has no fields"),
        (Point(1, 2), ("z",), "$1.z: a Point has no field 'z'; fields: x, y"),
        (object(), ("x",), "$1.x: an object has no field 'x' (it has none)"),
        (dataclasses, ("dataclass",), "$1.dataclass: $1 is a module"),
        (Flight, ("number",), "$1.number: $1 is a type"),
        (Exploding(), ("a",), "$1.a: reading 'a' failed: RuntimeError: boom"),
    ],
)
def test_every_failure_names_the_reference_the_step_and_what_was_there(
    result: Any, path: tuple[Any, ...], message: str
) -> None:
    with pytest.raises(ResolveError) as caught:
        follow(Ref(1, path), result)
    assert str(caught.value).startswith(message)


def test_many_keys_are_cut_and_counted() -> None:
    result = {f"k{i}": i for i in range(50)}
    with pytest.raises(ResolveError, match=r"keys: k0, k1, .*, k19 … \(30 more\)$"):
        follow(Ref(1, ("zz",)), result)


def test_huge_and_odd_values_are_shown_short() -> None:
    with pytest.raises(ResolveError) as caught:
        follow(Ref(1, ("x",)), "y" * 100_000)
    assert len(str(caught.value)) < 200
    with pytest.raises(ResolveError) as caught:
        follow(Ref(1, (0,)), 10**10_000)
    assert "<int of 10001 digits" in str(caught.value)
    with pytest.raises(ResolveError) as caught:
        follow(Ref(1, (10**40,)), [1])
    assert "…" in str(caught.value) and len(str(caught.value)) < 120


def test_secrets_never_reach_the_message() -> None:
    with pytest.raises(ResolveError) as caught:
        follow(Ref(1, ("password", "x")), {"password": "hunter2"})
    assert "hunter2" not in str(caught.value)
    assert str(caught.value) == "$1.password.x: $1.password is a str, which has no fields"
    with pytest.raises(ResolveError) as caught:
        follow(Ref(1, (0,)), "Bearer sk-proj-abcdefghijklmnopqrstuvwxyz0123456789")
    assert "abcdefghijklmnop" not in str(caught.value)


def test_a_long_path_resolves_in_linear_time() -> None:
    value: Any = "end"
    for _ in range(10_000):
        value = {"a": value}
    assert follow(Ref(1, ("a",) * 10_000), value) == "end"
    with pytest.raises(ResolveError) as caught:
        follow(Ref(1, ("a",) * 10_001), value)
    assert len(str(caught.value)) < 400


def test_resolve_follows_paths_in_arguments_and_templates() -> None:
    results = {1: AIRPORT, 2: [Airport(entityId="E-LON", skyId="LOND")]}
    value = {
        "origin": Ref(1, ("entityId",)),
        "dest": [Ref(2, (0, "skyId"))],
        "text": Template(("from ", Ref(1, ("entityId",)), " to ", Ref(2, (-1,)))),
        "whole": Ref(1),
    }
    assert resolve(value, results.__getitem__) == {
        "origin": "E-NYC",
        "dest": ["LOND"],
        "text": 'from E-NYC to {"entityId":"E-LON","skyId":"LOND"}',
        "whole": AIRPORT,
    }
    with pytest.raises(ResolveError, match=r"^\$1\.nope: no key 'nope'"):
        resolve(Template(("x", Ref(1, ("nope",)))), results.__getitem__)


@pytest.mark.parametrize(
    ("ref", "text"),
    [
        (Ref(2), "$2"),
        (Ref(2, ("entityId",)), "$2.entityId"),
        (Ref(2, ("entity id",)), '$2["entity id"]'),
        (Ref(3, (0,)), "$3[0]"),
        (Ref(3, (-1, "name")), "$3[-1].name"),
        (Ref(1, ("items", 2, "id")), "$1.items[2].id"),
        (Ref(1, ("0",)), '$1["0"]'),
        (Ref(1, ("_id", "名前", 'a"b')), '$1._id.名前["a\\"b"]'),
    ],
)
def test_repr_writes_the_canonical_text(ref: Ref, text: str) -> None:
    assert repr(ref) == text
    assert path_text(ref.path) == text[len(str(ref.idx)) + 1 :]


def test_a_template_writes_its_references_braced() -> None:
    template = Template(("flights from ", Ref(1, ("entityId",)), " at ", Ref(3, (0, "title")), Ref(2)))
    assert repr(template) == "'flights from ${1.entityId} at ${3[0].title}${2}'"
