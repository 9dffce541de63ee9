"""The streaming plan parser: a pure state machine, tested without an event loop."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmcompiler import ParseError, PlanEnded, PlanParser, Ref, TaskParsed, Template, ThoughtParsed, parse_plan
from llmcompiler._plan import PlanEvent

ISSUE_PLAN = """Thought: I need both market caps.
1. search("Microsoft market cap")
2. search(query="Apple market cap")
3. math(problem="$1 / $2", context=[$1, "${2}"])
Thought: I can answer now.
4. join()
<END_OF_PLAN>"""


def tasks(events: list[PlanEvent]) -> list[TaskParsed]:
    return [e for e in events if isinstance(e, TaskParsed)]


def errors(events: list[PlanEvent]) -> list[ParseError]:
    return [e for e in events if isinstance(e, ParseError)]


def feed_in_pieces(text: str, cuts: list[int]) -> list[PlanEvent]:
    parser = PlanParser()
    events: list[PlanEvent] = []
    last = 0
    for cut in sorted(set(cuts)):
        events += parser.feed(text[last:cut])
        last = cut
    events += parser.feed(text[last:])
    return events + parser.close()


def test_the_issue_example_parses_into_tasks_thoughts_and_an_end() -> None:
    events = parse_plan(ISSUE_PLAN)
    t = tasks(events)
    assert [x.idx for x in t] == [1, 2, 3, 4]
    assert [x.tool for x in t] == ["search", "search", "math", "join"]
    assert t[0].args == ("Microsoft market cap",) and t[0].kwargs == {}
    assert t[0].thought == "I need both market caps."
    assert t[1].kwargs == {"query": "Apple market cap"} and t[1].thought is None
    assert t[2].deps == frozenset({1, 2})
    assert t[2].kwargs["problem"] == Template((Ref(1), " / ", Ref(2)))
    assert t[2].kwargs["context"] == [Ref(1), Template((Ref(2),))]
    assert t[3].thought == "I can answer now."
    assert errors(events) == []
    assert events[-1] == PlanEnded(reason="join")
    assert sum(isinstance(e, ThoughtParsed) for e in events) == 2


@pytest.mark.parametrize("size", [1, 2, 3, 7, 50])
def test_fixed_chunk_sizes_give_the_same_events(size: int) -> None:
    whole = parse_plan(ISSUE_PLAN)
    cuts = list(range(size, len(ISSUE_PLAN), size))
    assert feed_in_pieces(ISSUE_PLAN, cuts) == whole


def test_a_task_is_emitted_the_moment_its_call_closes() -> None:
    parser = PlanParser()
    assert tasks(parser.feed('1. search("a)b"')) == []  # ")" inside a string is text
    emitted = parser.feed(")")
    assert [t.args for t in tasks(emitted)] == [("a)b",)]  # before any newline arrives


def test_literals_of_every_kind() -> None:
    plan = (
        "1. f('single', \"double\", 'esc\\'aped\\n', 42, -3.5, 1e3, 0x1F, True, False, None,"
        " [1, [2, 3]], (4, 5), (6,), {'k': [1, {'n': None}]}, {1, 2}, ())\n"
    )
    (t,) = tasks(parse_plan(plan))
    assert t.args == (
        "single", "double", "esc'aped\n", 42, -3.5, 1000.0, 31, True, False, None,
        [1, [2, 3]], (4, 5), (6,), {"k": [1, {"n": None}]}, {1, 2}, (),
    )  # fmt: skip


def test_json_style_constants_are_accepted() -> None:
    (t,) = tasks(parse_plan('1. f(a=true, b=false, c=null, d={"x": 1.5})'))
    assert t.kwargs == {"a": True, "b": False, "c": None, "d": {"x": 1.5}}


def test_references_keep_their_type_and_splice_into_strings() -> None:
    events = parse_plan('1. f(1)\n2. f(2)\n3. g($1, [${2}, "x"], {"k": $1}, s="total: $1 and ${2}!")')
    t3 = tasks(events)[2]
    assert t3.args == (Ref(1), [Ref(2), "x"], {"k": Ref(1)})
    assert t3.kwargs == {"s": Template(("total: ", Ref(1), " and ", Ref(2), "!"))}
    assert t3.deps == frozenset({1, 2})


def test_money_in_a_string_is_not_a_reference() -> None:
    (_, t2) = tasks(parse_plan('1. search("a")\n2. search("games priced $20-$30 or $1")'))
    assert t2.args == (Template(("games priced $20-$30 or ", Ref(1))),)
    assert t2.deps == frozenset({1})
    (only,) = tasks(parse_plan('1. search("games priced $20-$30")'))
    assert only.args == ("games priced $20-$30",) and only.deps == frozenset()


def test_multi_line_calls_fences_comments_and_indentation() -> None:
    plan = """Here is the plan:
```
  1. search(
       "a, (b)",   # a comment with ) and "quotes"
       limit=3,
     )  # trailing comment

2. search("c")
```
3. join()"""
    events = parse_plan(plan)
    t = tasks(events)
    assert [(x.idx, x.tool) for x in t] == [(1, "search"), (2, "search"), (3, "join")]
    assert t[0].args == ("a, (b)",) and t[0].kwargs == {"limit": 3}
    # the prose line is reported, not dropped
    (err,) = errors(events)
    assert err.line == "Here is the plan:" and err.idx is None


def test_numbers_may_have_gaps_but_not_repeat_or_decrease() -> None:
    events = parse_plan("1. f(1)\n3. f(3)\n3. f(33)\n2. f(2)\n5. f($3)\n")
    assert [t.idx for t in tasks(events)] == [1, 3, 5]
    reasons = [e.reason for e in errors(events)]
    assert reasons == [
        "task number 3 is used twice",
        "task number 2 comes after 3: numbers must increase",
    ]
    assert all("f(" in e.line for e in errors(events))


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("2. f($2)", "$2 refers to this task itself"),
        ("2. f($3)", "$3 refers to task 3, which comes later in the plan"),
        ("5. f(${4})", "$4 refers to task 4, which does not exist"),
        ("2. f(x)", "unknown name 'x': strings need quotes"),
        ("2. f('a', b=1, 'c')", "a positional argument follows a keyword argument"),
        ("2. f(a=1, a=2)", "argument 'a' is given twice"),
        ("2. f(1 2)", "expected ',' but found '2'"),
        ("2. f(__import__('os'))", "unknown name '__import__': strings need quotes"),
        ("2. f(a + b)", "unexpected character '+'"),
    ],
)
def test_bad_arguments_fail_that_task_with_a_message_naming_the_line(line: str, reason: str) -> None:
    events = parse_plan(f"1. f(0)\n{line}\n9. join()")
    (err,) = errors(events)
    assert err.idx == int(line.split(".")[0]) and err.tool == "f"
    assert reason in err.reason
    assert err.line == line and line in err.message()
    assert [t.idx for t in tasks(events)] == [1, 9]  # the rest of the plan survives


def test_a_missing_parenthesis_fails_that_task_and_keeps_the_next_ones() -> None:
    events = parse_plan('1. search("a"\n2. search("b")\nThought: t\n3. search("c",\nThought: x\n4. join()')
    t = tasks(events)
    assert [x.idx for x in t] == [2, 4]
    errs = errors(events)
    assert [(e.idx, e.line) for e in errs] == [(1, '1. search("a"'), (3, '3. search("c",')]
    assert all("missing ')'" in e.reason for e in errs)
    assert errs[1].thought == "t" and t[1].thought == "x"


def test_a_call_cut_by_the_end_of_the_stream_is_an_error_not_a_task() -> None:
    parser = PlanParser()
    assert tasks(parser.feed('1. search("a")\n2. search("b", limit=')) != []
    closing = parser.close()
    (err,) = errors(closing)
    assert err.idx == 2 and "missing ')' at the end of the plan" in err.reason
    assert closing[-1] == PlanEnded(reason="stream_end")


def test_an_unterminated_string_is_reported() -> None:
    (err,) = errors(parse_plan('1. search("abc)\n2. join()'))
    assert err.idx == 1 and "unterminated string" in err.reason


def test_numbered_prose_and_unnumbered_calls_are_errors() -> None:
    events = parse_plan('1. Look up the weather\nsearch("x")\n2. join()')
    errs = errors(events)
    assert (errs[0].idx, errs[0].reason) == (1, "not a tool call: expected 'N. tool(arguments)'")
    assert (errs[1].idx, errs[1].reason) == (None, "a task needs a number: 'N. tool(...)'")


def test_join_ends_the_plan_and_later_text_is_reported() -> None:
    events = parse_plan("1. f(1)\n2. join()\n3. f(3)\nmore words\n<END_OF_PLAN>")
    assert [t.idx for t in tasks(events)] == [1, 2]
    assert [e.reason for e in errors(events)] == ["the plan already ended", "text after the end of the plan"]
    assert [e for e in events if isinstance(e, PlanEnded)] == [PlanEnded(reason="join")]


def test_end_marker_without_join_ends_the_plan() -> None:
    events = parse_plan("1. f(1)\n<END_OF_PLAN>")
    assert events[-1] == PlanEnded(reason="end_marker")


def test_bare_join_takes_the_next_number() -> None:
    (_, j) = tasks(parse_plan("4. f(1)\njoin()"))
    assert (j.idx, j.tool) == (5, "join")


def test_a_replan_continues_numbering_and_may_reference_earlier_rounds() -> None:
    events = parse_plan('4. f($1, "$3 and $9")\n5. join()', known=[1, 2, 3])
    t = tasks(events)[0]
    assert t.args == (Ref(1), Template((Ref(3), " and $9")))
    assert t.deps == frozenset({1, 3})
    assert errors(parse_plan("3. f(1)", known=[1, 2, 3]))[0].reason == "task number 3 is used twice"


def test_tool_names_with_dots() -> None:
    (t,) = tasks(parse_plan('1. spotify.play(artist="Taylor Swift", duration=20)'))
    assert (t.tool, t.kwargs) == ("spotify.play", {"artist": "Taylor Swift", "duration": 20})


def test_a_thought_with_no_task_after_it_is_reported() -> None:
    events = parse_plan("1. f(1)\nThought: nothing follows")
    assert errors(events)[0].reason == "a thought with no task after it"


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    (err,) = errors(parse_plan("1. f(" + "[" * 5000 + "]" * 5000 + ")"))
    assert err.idx == 1


# --------------------------------------------------------------------------- fuzzing

# Plain text: no "$" (a reference inside a string), line breaks or surrogates.
_CHARS = st.characters(blacklist_categories=["Cs"], blacklist_characters="$\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
_VALUE = st.recursive(
    st.one_of(
        st.integers(-(10**6), 10**6),
        st.floats(allow_nan=False, allow_infinity=False, width=32),
        st.booleans(),
        st.none(),
        st.text(_CHARS, max_size=12),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(_CHARS, max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


def _literal(value: object) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    return repr(value)


# Paths: fields (any script, "_" first, names of constants), keys of any text and indexes.
_KEY_CHARS = st.characters(
    blacklist_categories=["Cs", "Cc"], blacklist_characters="'\"\\$\x85\u2028\u2029\x0b\x0c\x1c\x1d\x1e"
)
_PATH = st.lists(
    st.one_of(
        st.from_regex(r"[^\W\d]\w{0,5}", fullmatch=True),
        st.sampled_from(["entityId", "_id", "True", "None", "名前"]),
        st.text(_KEY_CHARS, max_size=6),
        st.integers(-(10**18) + 1, 10**18 - 1),
    ),
    max_size=4,
).map(tuple)
_REF_STYLES = ("$N", "${N}", "${N.}", "spaced")


def _path_text(path: tuple[str | int, ...], *, quote: str = '"', spaced: bool = False) -> str:
    """A path as a model might write it: canonical, or with blanks around its parts."""
    gap = " " if spaced else ""
    out = ""
    for step in path:
        if isinstance(step, int):
            out += f"{gap}[{gap}{step}{gap}]"
        elif re.fullmatch(r"[^\W\d]\w*", step):
            out += f"{gap}.{gap}{step}"
        else:
            out += f"{gap}[{gap}{quote}{step}{quote}{gap}]"
    return out


def _write_ref(idx: int, path: tuple[str | int, ...], style: str) -> str:
    if style == "${N}":
        return f"${{{idx}}}{_path_text(path)}"
    if style == "${N.}":
        return f"${{{idx}{_path_text(path)}}}"
    return f"${idx}{_path_text(path, spaced=style == 'spaced')}"


@st.composite
def plans(draw: st.DrawFn) -> tuple[str, list[tuple[int, str, tuple[object, ...], dict[str, object], frozenset[int]]]]:
    """A random valid plan and the tasks it must parse into."""
    lines: list[str] = []
    expected: list[tuple[int, str, tuple[object, ...], dict[str, object], frozenset[int]]] = []
    idx = 0
    for _ in range(draw(st.integers(1, 6))):
        idx += draw(st.integers(1, 3))
        if draw(st.booleans()):
            lines.append("Thought: " + draw(st.text(st.characters(whitelist_categories=("L", "N", "Zs")), max_size=20)))
        args = tuple(draw(st.lists(_VALUE, max_size=3)))
        kwargs = draw(st.dictionaries(st.sampled_from(["a", "b", "query"]), _VALUE, max_size=2))
        earlier = [e[0] for e in expected]
        refs = draw(st.lists(st.sampled_from(earlier), max_size=2, unique=True)) if earlier else []
        paths = [draw(_PATH) for _ in refs]
        written = [_write_ref(r, path, draw(st.sampled_from(_REF_STYLES))) for r, path in zip(refs, paths, strict=True)]
        parts = [_literal(a) for a in args] + written
        ref_values: tuple[object, ...] = tuple(Ref(r, path) for r, path in zip(refs, paths, strict=True))
        splice = draw(st.booleans())
        if refs and splice:  # a string splicing a value at a path in
            r, path = refs[0], draw(_PATH)
            inner = _path_text(path, quote="'")
            parts.append('"at ${' + f"{r}{inner}" + '}!"')
            ref_values += (Template(("at ", Ref(r, path), "!")),)
        sep = draw(st.sampled_from([", ", ",\n    ", ","]))
        parts += [f"{k}={_literal(v)}" for k, v in kwargs.items()]
        name = draw(st.sampled_from(["search", "math", "spotify.play"]))
        lines.append(f"{idx}. {name}({sep.join(parts)})" + draw(st.sampled_from(["", "  # note", " "])))
        expected.append((idx, name, args + ref_values, kwargs, frozenset(refs)))
        if draw(st.booleans()):
            lines.append("")
    idx += 1
    lines.append(f"{idx}. join()")
    lines.append("<END_OF_PLAN>")
    return "\n".join(lines), expected


@settings(max_examples=300, deadline=None)
@given(plan=plans(), data=st.data())
def test_random_plans_in_random_chunks_parse_exactly(plan: tuple[str, list], data: st.DataObject) -> None:  # type: ignore[type-arg]
    text, expected = plan
    whole = parse_plan(text)
    got = [(t.idx, t.tool, t.args, t.kwargs, t.deps) for t in tasks(whole) if t.tool != "join"]
    assert got == expected
    assert errors(whole) == []
    cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=40))
    assert feed_in_pieces(text, cuts) == whole
    assert feed_in_pieces(text, list(range(1, len(text)))) == whole


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200), seed=st.integers(0, 2**16))
def test_arbitrary_text_never_crashes_and_chunking_never_changes_the_result(text: str, seed: int) -> None:
    whole = parse_plan(text)
    assert isinstance(whole[-1], PlanEnded)
    rng = random.Random(seed)
    cuts = [rng.randrange(len(text) + 1) for _ in range(rng.randrange(10))]
    assert feed_in_pieces(text, cuts) == whole
