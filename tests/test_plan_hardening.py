"""Plan text as models really write it (issue 10, rows 1-5), cut replies and unspliceable results."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmcompiler import ParseError, PlanEnded, PlanParser, Ref, TaskParsed, Template, ThoughtParsed, parse_plan
from llmcompiler._literals import ArgumentSyntaxError, ResolveError, parse_arguments, resolve, to_text
from llmcompiler._plan import PlanEvent
from tests.strategies import arguments, chunkings, model_plans, physical_lines, split_at, well_formed_plans


def tasks(events: list[PlanEvent]) -> list[TaskParsed]:
    return [e for e in events if isinstance(e, TaskParsed)]


def errors(events: list[PlanEvent]) -> list[ParseError]:
    return [e for e in events if isinstance(e, ParseError)]


def feed_pieces(pieces: list[str], *, truncated: str | None = None) -> list[PlanEvent]:
    parser = PlanParser()
    events: list[PlanEvent] = []
    for piece in pieces:
        events += parser.feed(piece)
    return events + parser.close(truncated=truncated)


def one_char_at_a_time(text: str) -> list[PlanEvent]:
    return feed_pieces(list(text))


# --------------------------------------------------------------------------- row 1: escapes


# issue 10 row 1
def test_invalid_escapes_stay_as_written_and_the_task_runs() -> None:
    plan = "\n".join(
        [
            r'1. echo("C:\users\x")',
            r'2. echo("\U00110000")',
            r'3. echo("\ud800 and \N{NO SUCH NAME} and \N and \x4 and \d")',
            r'4. echo(path="C:\Users\Public\new")',
        ]
    )
    events = parse_plan(plan)
    assert errors(events) == []
    t = tasks(events)
    assert t[0].args == ("C:\\users\\x",)
    assert t[1].args == ("\\U00110000",)
    assert t[2].args == ("\\ud800 and \\N{NO SUCH NAME} and \\N and \\x4 and \\d",)
    assert t[3].kwargs == {"path": "C:\\Users\\Public\new"}  # "\n" is a real escape, read as Python reads it
    assert one_char_at_a_time(plan) == events


# issue 10 row 1
@pytest.mark.parametrize(
    ("literal", "value"),
    [
        (r'"\x41\u00e9\U0001F600\N{BULLET}\101\t"', "Aé😀•A\t"),
        (r'"\ud83d\ude00"', "😀"),  # a JSON-style surrogate pair is the character it encodes
        (r'"\ud83d"', "\\ud83d"),  # a lone surrogate never reaches a tool
        (r'"\U0010FFFF"', "\U0010ffff"),
        (r'"\UFFFFFFFF"', "\\UFFFFFFFF"),
        (r'"\N{"', "\\N{"),
        (r"r'\x'", "\\x"),
    ],
)
def test_escapes_decode_when_they_name_a_character(literal: str, value: str) -> None:
    assert parse_arguments(literal, idx=1, known=()).args == (value,)


# --------------------------------------------------------------------------- row 2: huge numbers

HUGE = "9" * 5000


# issue 10 row 2
def test_a_5000_digit_number_fails_only_its_line() -> None:
    plan = "\n".join(
        [
            f"1. echo({HUGE})",
            f"{HUGE}. echo(1)",
            "2. echo(2)",
            f"3. echo(${HUGE})",
            f'4. echo("cost ${HUGE}", "${{{HUGE}}}")',
            f"5. echo(0x{'f' * 5000})",
            "6. join()",
        ]
    )
    events = parse_plan(plan)
    assert [t.idx for t in tasks(events)] == [2, 4, 6]
    assert tasks(events)[1].args == (f"cost ${HUGE}", f"${{{HUGE}}}")  # names no task: stays text
    errs = errors(events)
    assert [e.idx for e in errs] == [1, None, 3, 5]
    assert "too long" in errs[0].reason and "too large" in errs[1].reason and "not a task number" in errs[2].reason
    assert all(len(e.message()) < 1000 for e in errs)  # the number is not copied whole
    assert feed_pieces(split_at(plan, range(0, len(plan), 100))) == events


# issue 10 row 2
def test_a_lowered_int_digit_limit_is_respected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "get_int_max_str_digits", lambda: 640)
    (err,) = errors(parse_plan(f"1. echo({'1' * 700})"))
    assert err.idx == 1 and "at most 640 digits" in err.reason


# --------------------------------------------------------------------------- row 3: brackets


# issue 10 row 3
@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('1. pair(x="a"], y=2)', "bracket mismatch: ']' does not close '('"),
        ("1. pair([1, 2), y=2)", "bracket mismatch: ')' does not close '['"),
        ("1. pair({'a': 1], y=2)", "bracket mismatch: ']' does not close '{'"),
    ],
)
def test_a_mismatched_bracket_fails_the_task_and_it_never_runs(line: str, reason: str) -> None:
    plan = f"{line}\n2. echo(1)\n3. join()"
    events = parse_plan(plan)
    err, *rest = errors(events)
    assert (err.idx, err.tool, err.reason) == (1, "pair", reason)
    # ")" closing an outer "(" ends the call there; what follows on its line is reported, not run
    assert [(e.idx, e.reason) for e in rest] in ([], [(None, "unexpected text after a call on the same line")])
    assert [t.idx for t in tasks(events)] == [2, 3]
    assert one_char_at_a_time(plan) == events


# issue 10 row 3
@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('x="a"], y=2', "bracket mismatch: ']' closes nothing"),
        ("[1, 2)", "bracket mismatch: ')' does not close '['"),
        ("(1, ]", "bracket mismatch: ']' does not close '('"),
        ("{1: 2)", "bracket mismatch: ')' does not close '{'"),
    ],
)
def test_the_argument_parser_reports_mismatched_brackets(text: str, reason: str) -> None:
    with pytest.raises(ArgumentSyntaxError, match=re.escape(reason)):
        parse_arguments(text, idx=1, known=())


# --------------------------------------------------------------------------- row 4: line ends, invisibles, fences


# issue 10 row 4
def test_bare_cr_and_crlf_end_lines_wherever_the_chunks_are_cut() -> None:
    plan = "Thought: a\r1. echo(1)\r\n2. echo(2)\r3. join()\r\n"
    events = parse_plan(plan)
    assert [t.idx for t in tasks(events)] == [1, 2, 3] and errors(events) == []
    assert tasks(events)[0].thought == "a"
    for cut in range(len(plan) + 1):  # "\r" | "\n" across a boundary is one line end
        assert feed_pieces([plan[:cut], plan[cut:]]) == events
    assert one_char_at_a_time(plan) == events


# issue 10 row 4
def test_invisible_characters_outside_strings_are_ignored_and_kept_inside() -> None:
    plan = (
        '\ufeff1. echo(1)\n\u200b2.\u200b echo(x=\u2060"a\u200db")\n'
        "\u200d3. echo(1,\ufeff 2)\nThought:\u200b ok\n4. join()"
    )
    events = parse_plan(plan)
    assert errors(events) == []
    assert [(t.idx, t.args, t.kwargs) for t in tasks(events)] == [
        (1, (1,), {}),
        (2, (), {"x": "a\u200db"}),  # a zero-width joiner inside a string is the model's text
        (3, (1, 2), {}),
        (4, (), {}),
    ]
    assert tasks(events)[0].line == "1. echo(1)"
    assert tasks(events)[3].thought == "ok"


# issue 10 row 4
def test_one_line_fences_wrap_a_task_and_nothing_vanishes() -> None:
    plan = "```1. echo(1)```\n`2. echo(2)`\n```python\n```3. Look up```\n```Thought: t```\n```\n4. join()"
    events = parse_plan(plan)
    assert [t.idx for t in tasks(events)] == [1, 2, 4]
    assert tasks(events)[0].line == "1. echo(1)"
    (err,) = errors(events)
    assert (err.idx, err.line) == (3, "3. Look up")
    assert [e.text for e in events if isinstance(e, ThoughtParsed)] == ["t"]


# issue 10 row 4
def test_text_after_an_end_marker_on_its_line_is_reported() -> None:
    events = parse_plan("1. echo(1)\n<END_OF_PLAN> 2. echo(2)")
    assert [e.reason for e in errors(events)] == ["text after the end of the plan"]


# --------------------------------------------------------------------------- row 5: long lines


def _feed_watching_the_buffer(parser: PlanParser, text: str, size: int, events: list[PlanEvent]) -> Iterator[int]:
    for start in range(0, len(text), size):
        events += parser.feed(text[start : start + size])
        yield len(parser._buf)  # what appending the next chunk copies


# issue 10 row 5
@pytest.mark.parametrize("size", [100, 1000])
@pytest.mark.parametrize(
    "line",
    [
        '1. echo("' + "a" * 1_000_000 + '")',  # one huge string
        "1. echo(" + "[1, 'x'], " * 5_000 + ")",  # many brackets and strings
        "x" * 1_000_000,  # prose
        "1. echo(1, # " + "c" * 1_000_000 + "\n)",  # a comment inside a call
    ],
    ids=["string", "brackets", "prose", "comment"],
)
def test_a_long_line_in_small_chunks_keeps_the_buffer_small(line: str, size: int) -> None:
    # Parsing is linear when appending a chunk copies a bounded buffer, not the whole line so far
    # (the wall time is measured by the engine benchmark, not asserted here).
    parser = PlanParser()
    events: list[PlanEvent] = []
    assert max(_feed_watching_the_buffer(parser, line, size, events)) < 8 * 1024
    events += parser.close()
    assert events == parse_plan(line)
    for err in errors(events):
        assert len(err.message()) < 2000  # a giant line is quoted shortened, with an ellipsis
    if line.startswith('1. echo("'):
        (task,) = tasks(events)
        assert task.args == ("a" * 1_000_000,)


# issue 10 row 5
def test_a_giant_line_is_quoted_with_an_ellipsis() -> None:
    (err,) = errors(parse_plan("1. echo(" + "x" * 100_000 + ")"))
    assert err.idx == 1 and "…" in err.line and len(err.line) <= 400
    assert "…" in err.reason and len(err.reason) < 300


# --------------------------------------------------------------------------- cut replies (interface 1)


def test_a_cut_call_fails_saying_so_and_the_joiner_is_told() -> None:
    parser = PlanParser()
    events = parser.feed('1. search("a")\n2. search("b", limit=')
    assert [t.idx for t in tasks(events)] == [1]
    closing = parser.close(truncated="length")
    first, note = errors(closing)
    assert first.idx == 2 and first.tool == "search"
    assert "cut off by its token limit (length)" in first.reason and "unterminated" not in first.reason
    assert note.idx is None and note.line == ""
    assert "cut short" in note.message() and "nothing after this point was written" in note.message()
    assert closing[-1] == PlanEnded(reason="cut")


def test_a_cut_numbered_line_fails_its_task() -> None:
    events = parse_plan("1. echo(1)\n2. sea")
    assert errors(events)[0].reason == "not a tool call: expected 'N. tool(arguments)'"  # not cut: as before
    parser = PlanParser()
    parser.feed("1. echo(1)\n2. sea")
    (err, note) = errors(parser.close(truncated="max_tokens"))
    assert err.idx == 2 and "cut off by its token limit (max_tokens) in the middle of this line" in err.reason
    assert note.idx is None


def test_a_cut_after_a_complete_line_still_tells_the_joiner() -> None:
    parser = PlanParser()
    parser.feed("1. echo(1)\n")
    closing = parser.close(truncated="")
    (note,) = errors(closing)
    assert note.reason.startswith("the model's reply was cut off by its token limit: the plan was cut short")
    assert closing[-1] == PlanEnded(reason="cut")


def test_a_cut_after_the_plan_ended_adds_nothing() -> None:
    parser = PlanParser()
    assert tasks(parser.feed("1. echo(1)\n2. join()\nThe answer"))[-1].tool == "join"
    assert parser.close(truncated="length") == [ParseError(line="The answer", reason="text after the end of the plan")]


# --------------------------------------------------------------------------- resolution (interface 3)


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


class _BadModel:
    def model_dump_json(self) -> str:
        raise ValueError("broken model")


def _deep(n: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(n):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("result", "why"),
    [
        (10**5000, "$1 cannot be spliced into text: an int of 5001 digits"),
        ([10**5000], "$1 cannot be spliced into text: a list that cannot be written as text (ValueError"),
        (_deep(5000), "$1 cannot be spliced into text: a list nested too deeply to write as text"),
        (_Unprintable(), "$1 cannot be spliced into text: a _Unprintable that cannot be written as text (RuntimeError"),
        (_BadModel(), "$1 cannot be spliced into text: a _BadModel that cannot be written as text (ValueError"),
    ],
    ids=["huge-int", "list-of-huge-int", "deep-list", "str-raises", "model-dump-raises"],
)
def test_a_result_that_cannot_be_spliced_raises_resolve_error_naming_it(result: object, why: str) -> None:
    template = Template(("v=", Ref(1)))
    with pytest.raises(ResolveError) as info:
        resolve(template, lambda i: result)
    assert str(info.value).startswith(why)
    assert isinstance(info.value, ValueError)
    assert resolve(Ref(1), lambda i: result) is result  # passed whole, it needs no text


def test_unhashable_results_as_dict_keys_or_set_members_raise_resolve_error() -> None:
    with pytest.raises(ResolveError, match=r"^\$1 cannot be a dict key: a list is not hashable"):
        resolve({Ref(1): 2}, lambda i: [1])
    with pytest.raises(ResolveError, match=r"^\$2 cannot be a set member: a dict is not hashable"):
        resolve({Ref(2)}, lambda i: {})


def test_to_text_keeps_its_meaning() -> None:
    assert to_text("s") == "s"
    assert to_text({"a": [1, "é"]}) == '{"a": [1, "é"]}'
    assert to_text(("x", 2)) == '["x", 2]'
    assert to_text({(1, 2): 3}) == "{(1, 2): 3}"  # not JSON: Python's own rendering
    assert to_text(12) == "12"
    with pytest.raises(ResolveError, match=r"^the value cannot be spliced"):
        to_text(10**5000)


# --------------------------------------------------------------------------- fuzzing

_FENCE = re.compile(r"`{3,}[ \t]*(?:[A-Za-z][\w+#.-]*[ \t]*)?|`+")
_INVISIBLE = re.compile("[\ufeff\u200b\u200c\u200d\u2060]")


def _formatting(line: str) -> bool:
    text = _INVISIBLE.sub("", line).strip()
    return not text or text.startswith("#") or bool(_FENCE.fullmatch(text)) or text == "<END_OF_PLAN>"


def _unaccounted_lines(text: str) -> list[str]:
    """Lines that gave no event and are neither formatting nor inside an open call."""
    parser = PlanParser()
    lines = physical_lines(text)
    missing = []
    for n, line in enumerate(lines):
        last = n == len(lines) - 1
        events = parser.feed(line if last else line + "\n")
        if last:
            events += parser.close()
        accounted = any(not isinstance(e, PlanEnded) or e.reason != "stream_end" for e in events)
        if not (accounted or _formatting(line) or parser.in_call):
            missing.append(line)
    return missing


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=model_plans(), data=st.data())
def test_model_written_plans_in_any_chunks_never_raise_and_lose_no_line(text: str, data: st.DataObject) -> None:
    whole = parse_plan(text)
    assert sum(isinstance(e, PlanEnded) for e in whole) == 1
    assert feed_pieces(data.draw(chunkings(text))) == whole
    assert _unaccounted_lines(text) == []
    for err in errors(whole):
        assert len(err.message()) < 2000


@settings(max_examples=60, deadline=None)
@given(plan=well_formed_plans(), data=st.data())
def test_well_formed_plans_parse_exactly_in_any_chunks(plan: tuple[str, list[int]], data: st.DataObject) -> None:
    text, idxs = plan
    whole = parse_plan(text)
    assert errors(whole) == []
    assert [t.idx for t in tasks(whole)] == idxs
    assert whole[-1] == PlanEnded(reason="join")
    assert feed_pieces(data.draw(chunkings(text))) == whole


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=model_plans(), data=st.data(), reason=st.sampled_from(["length", "max_tokens", ""]))
def test_a_plan_cut_anywhere_ends_as_cut_or_already_ended(text: str, data: st.DataObject, reason: str) -> None:
    cut = data.draw(st.integers(0, len(text)))
    pieces = data.draw(chunkings(text[:cut]))
    events = feed_pieces(pieces, truncated=reason)
    ends = [e for e in events if isinstance(e, PlanEnded)]
    assert len(ends) == 1
    if ends[0].reason == "cut":
        assert errors(events)[-1].idx is None and "cut short" in errors(events)[-1].reason
    assert events == feed_pieces([text[:cut]], truncated=reason)


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(st.text(st.characters(codec=None)), arguments()))
def test_the_argument_parser_raises_only_its_own_error(text: str) -> None:
    message = ""
    try:
        parse_arguments(text, idx=3, known={1, 2})
    except ArgumentSyntaxError as exc:  # anything else fails the test
        message = str(exc)
    assert len(message) < 300  # model text is quoted shortened
