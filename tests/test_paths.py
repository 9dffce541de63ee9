"""Paths in ``$N`` references: ``$2.entityId``, ``$3[-1].name``, ``"${1.entityId}"``.

Resolution (``follow``): what each step reads, and the message of every way a step fails. The
parser: every form, every way a path can be written wrong, and text of any shape and length.
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict, namedtuple
from collections.abc import Iterator, Mapping
from typing import Any

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmcompiler._literals import (
    Arguments,
    ArgumentSyntaxError,
    Ref,
    ResolveError,
    Template,
    follow,
    parse_arguments,
    path_text,
    resolve,
)
from llmcompiler._plan import ParseError, PlanParser, TaskParsed, parse_plan


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


# --------------------------------------------------------------------------- the parser


def _args(text: str, idx: int = 9) -> Arguments:
    return parse_arguments(text, idx=idx, known=range(1, idx))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("$2.entityId", Ref(2, ("entityId",))),
        ('$2["entity id"]', Ref(2, ("entity id",))),
        ("$2['entity id']", Ref(2, ("entity id",))),
        ('$2["a\\"b\\u00e9"]', Ref(2, ('a"bé',))),
        ('$2["$1"]', Ref(2, ("$1",))),  # a key is text, never a reference
        ("$3[0]", Ref(3, (0,))),
        ("$3[-1].name", Ref(3, (-1, "name"))),
        ("$3[+2]", Ref(3, (2,))),
        ('$1.items[2]["id"]', Ref(1, ("items", 2, "id"))),
        ("${2}.skyId", Ref(2, ("skyId",))),
        ("${2.skyId}", Ref(2, ("skyId",))),
        ("${ 2 .a }[0]", Ref(2, ("a", 0))),
        ("$2 . x [ 0 ]", Ref(2, ("x", 0))),  # blanks around a step's parts, as Python allows
        ("$2\u200b.x\ufeff[1]", Ref(2, ("x", 1))),
        ("$2.名前.données", Ref(2, ("名前", "données"))),
        ("$2._id.True.None", Ref(2, ("_id", "True", "None"))),  # names, not constants
        ("$2.__class__", Ref(2, ("__class__",))),  # parsed; resolution never reads it on an object
        ("$2[" + "9" * 18 + "]", Ref(2, (10**18 - 1,))),
        ("$2" + ".a" * 100, Ref(2, ("a",) * 100)),
    ],
)
def test_a_reference_with_a_path_is_one_value(text: str, value: Ref) -> None:
    parsed = _args(text)
    assert parsed.args == (value,)
    assert parsed.deps == {value.idx}


def test_paths_in_keywords_containers_and_dict_keys() -> None:
    parsed = _args('origin=$1.entityId, dest=$2["skyId"], legs=[$3[0], ($3[-1].name,), {"k": $1.a, $2.b: 1}]')
    assert parsed.kwargs == {
        "origin": Ref(1, ("entityId",)),
        "dest": Ref(2, ("skyId",)),
        "legs": [Ref(3, (0,)), (Ref(3, (-1, "name")),), {"k": Ref(1, ("a",)), Ref(2, ("b",)): 1}],
    }
    assert parsed.deps == {1, 2, 3}


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ('"flights from ${1.entityId} on 2024-08-15"', ("flights from ", Ref(1, ("entityId",)), " on 2024-08-15")),
        ('"${3[0].title}"', (Ref(3, (0, "title")),)),
        ("\"${1['entity id']}!\"", (Ref(1, ("entity id",)), "!")),
        ("'${1[\"id\"]}'", (Ref(1, ("id",)),)),
        ('"${ 1 }"', (Ref(1),)),
        ('"${1 [0] . x}"', (Ref(1, (0, "x")),)),
        ('"$1.50"', (Ref(1), ".50")),  # a price: bare $N in a string never has a path
        ('"$1.entityId"', (Ref(1), ".entityId")),
        ('"${1}.entityId"', (Ref(1), ".entityId")),
    ],
)
def test_in_a_string_only_the_braced_form_has_a_path(text: str, parts: tuple[Any, ...]) -> None:
    assert _args(text).args == (Template(parts),)


@pytest.mark.parametrize(
    "text",
    ['"${1:-default}"', '"${9.x}"', '"${12.x}"', '"${x.y}"', '"cost $50.00"', '"${1"'],
)
def test_text_that_names_no_earlier_task_or_no_path_stays_text(text: str) -> None:
    assert _args(text, idx=9 if "12" not in text else 5).args == (text[1:-1],)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("$2.", "$2.: a '.' needs a field name after it"),
        ("$2., 1", "$2.: a '.' needs a field name after it"),
        ("x=$2.a.", "$2.a.: a '.' needs a field name after it"),
        ("$1.50", "$1.50: a field name cannot start with a digit (an index is written $1[50])"),
        ('$2."x"', '$2."x": a quoted key is written in brackets, with no \'.\': $2["x"]'),
        ("$2.-x", "$2.-: '-' cannot start a field name"),
        ("$2[", "$2[: the '[' is not closed"),
        ("$2[0", "$2[0: expected ']' after the key"),
        ('$2["a" "b"]', "$2[\"a\": expected ']' after the key"),
        ("$2[]", '$2[]: empty brackets; write an index ([0]) or a quoted key (["name"])'),
        ("$2[1.5]", "$2[1.5]: an index is a whole number, in decimal digits"),
        ("$2[0x1F]", "$2[0x1F]: an index is a whole number, in decimal digits"),
        ("$2[1e3]", "$2[1e3]: an index is a whole number, in decimal digits"),
        ("$2[True]", "$2[True]: an index is a whole number and a key a quoted string; 'True' is neither"),
        ("$2[name]", "$2[name]: an index is a whole number and a key a quoted string; 'name' is neither"),
        ('$2[r"x"]', '$2[r"x"]: an index is a whole number and a key a quoted string'),
        (
            "$2[" + "9" * 19 + "]",
            "$2[9999999999999999999]: the index 9999999999999999999 is too large (at most 18 digits)",
        ),
        (
            "$2" + ".a" * 101,
            "$2.a.a.a.a.a.a.a.a.a…(164 characters)….a.a.a.a.a.a.a.a.a.a: a path of 101 steps (at most 100)",
        ),
        ('"${1.}"', "in a string, ${1.: a '.' needs a field name after it"),
        ('"${1[x]}"', "in a string, ${1[x]: an index is a whole number and a key a quoted string; 'x' is neither"),
        ('"${1.5}"', "in a string, ${1.5: a field name cannot start with a digit (an index is written ${1[5]})"),
        ('"${1.a"', "in a string, ${1.a: the '${' is not closed by '}'"),
        ('"${1.a b}"', "in a string, ${1.a: expected '}' but found 'b}'"),
        ('"${1["id"]}"', "in a string, ${1[: the '[' is not closed (a key's quotes must differ from the string's"),
        ('"${1.a" + "x', "unterminated string"),  # an unterminated string is the error, wherever it is
        ("$2.x.y()", "expected ',' but found '('"),  # no calls
        ("$9.x", "$9 refers to this task itself"),
        ("$12.x", "$12 refers to task 12, which comes later in the plan"),
    ],
)
def test_a_path_that_does_not_parse_says_why(text: str, message: str) -> None:
    with pytest.raises(ArgumentSyntaxError) as caught:
        _args(text)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    "text",
    [
        "$2" + ".a" * 10_000,
        "$2" + "[0]" * 10_000,
        "$2" + ".a" * 10_000 + ".",
        '"${2' + ".a" * 10_000 + '}"',
        '"${2' + ".a" * 10_000 + '"',
        "$2" + "[" * 10_000,
        '"' + "${1." * 10_000 + '"',
        '"' + '${1["' * 10_000 + '"',
        "[" + "$1.a, " * 10_000 + "]",
        "$2" + " " * 100_000 + ".",
        '"${1' + " " * 100_000 + '"',
        "$2" + "\u200b." * 10_000,
    ],
)
def test_long_and_broken_paths_parse_in_linear_time(text: str) -> None:
    start = time.perf_counter()
    message = ""
    try:
        _args(text)
    except ArgumentSyntaxError as exc:
        message = str(exc)
    assert len(message) < 400
    # Generous: these take a few milliseconds; a quadratic scan of this much text takes seconds.
    assert time.perf_counter() - start < 1.0


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="$1{}[].,\"'\\ \u200bax_09-+eTrue:()", max_size=40))
def test_any_text_around_references_parses_or_fails_with_a_syntax_error(text: str) -> None:
    for candidate in (text, f"$1{text}", f'"${{1{text}"', f"[$1{text}]"):
        try:
            parsed = _args(candidate, idx=3)
        except ArgumentSyntaxError:
            continue
        for value in [*parsed.args, *parsed.kwargs.values()]:
            for ref in _refs(value):
                assert ref.idx in parsed.deps
                # The canonical text parses back into the same reference.
                assert _args(repr(ref), idx=3).args == (ref,)


def _refs(value: Any) -> list[Ref]:
    if isinstance(value, Ref):
        return [value]
    if isinstance(value, Template):
        return [p for p in value.parts if isinstance(p, Ref)]
    if isinstance(value, dict):
        return [r for k, v in value.items() for r in (*_refs(k), *_refs(v))]
    if isinstance(value, (list, tuple, set)):
        return [r for v in value for r in _refs(v)]
    return []


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(min_size=1, max_size=8),
            st.integers(-(10**18) + 1, 10**18 - 1),
        ),
        max_size=6,
    )
)
def test_repr_parses_back_into_the_same_reference(path: list[str | int]) -> None:
    ref = Ref(2, tuple(path))
    if any(isinstance(s, str) and any(0xD800 <= ord(c) <= 0xDFFF for c in s) for s in path):
        return  # a lone surrogate has no text a plan could carry
    assert _args(repr(ref)).args == (ref,)
    assert _args(f"x={ref!r}").kwargs == {"x": ref}


# --------------------------------------------------------------------------- in a streamed plan

ISSUE_PLAN = (
    '1. airport("NYC")\n'
    '2. airport("LON")\n'
    '3. flights(origin=$1.entityId, dest=$2["skyId"])\n'
    '4. note("flights from ${1.entityId} on ${3[0].date}, $1.50 each")\n'
    "5. join()\n"
)


def test_a_path_split_across_chunks_gives_the_same_events() -> None:
    whole = parse_plan(ISSUE_PLAN)
    calls = [e for e in whole if isinstance(e, TaskParsed)]
    assert calls[2].kwargs == {"origin": Ref(1, ("entityId",)), "dest": Ref(2, ("skyId",))}
    assert calls[3].args == (
        Template(("flights from ", Ref(1, ("entityId",)), " on ", Ref(3, (0, "date")), ", ", Ref(1), ".50 each")),
    )
    for size in (1, 2, 3, 5, 8):
        parser = PlanParser()
        events = []
        for k in range(0, len(ISSUE_PLAN), size):
            events += parser.feed(ISSUE_PLAN[k : k + size])
        assert events + parser.close() == whole


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("2. f(x=$1[0)", "$1[0: expected ']' after the key"),
        ("2. f($1[)", "$1[: the '[' is not closed"),
        ("2. f(x=$1.)", "$1.: a '.' needs a field name after it"),
        ("2. f(x=[$1)", "bracket mismatch: ')' does not close '['"),  # no path involved: the mismatch
        ('2. f(x=$1["a)', "unterminated string"),
    ],
)
def test_a_broken_path_fails_its_task_with_the_paths_error(line: str, reason: str) -> None:
    events = parse_plan(f"1. a()\n{line}\n3. b($1.x)\n4. join()")
    failed = [e for e in events if isinstance(e, ParseError)]
    assert [(e.idx, e.reason[: len(reason)]) for e in failed] == [(2, reason)]
    assert [e.idx for e in events if isinstance(e, TaskParsed)] == [1, 3, 4]
