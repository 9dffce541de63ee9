"""The answer as it is written: ``AnswerStream`` gives out only what ``parse_join_reply`` keeps.

The rule under test: for any joiner reply and any way of cutting it into pieces, the texts
``feed`` and ``finish`` give, joined, are exactly the parsed ``Finish``'s answer; a ``Replan``
or a reply with no decision gives nothing; and whatever any prefix of a reply gave out is a
start of the answer of every reply that begins with it (so a reply cut short never sent a word
the whole reply would not answer).
"""

from __future__ import annotations

import re
from unittest import mock

from hypothesis import example, given, settings
from hypothesis import strategies as st

from llmcompiler import Finish, JoinDecision, JoinParseError, _joiner, parse_join_reply
from llmcompiler.strategy import AnswerStream
from tests.strategies import INVISIBLES, LINE_ENDS, chunkings

QUOTES = ('"', "'", "`", "\u201c", "\u201d")
WORDS = ("Paris", "42", "the answer is", "f(x)", "(film)", "a)", "(b", ")", "(", ":)", "  ", "\t", "Replan(", "Finish(")


@st.composite
def answers(draw: st.DrawFn) -> str:
    """An answer as models write it: words, brackets balanced or not, quotes, invisible characters."""
    parts = draw(
        st.lists(
            st.one_of(
                st.sampled_from(WORDS),
                st.sampled_from(QUOTES),
                st.sampled_from(INVISIBLES),
                st.sampled_from(LINE_ENDS),
                st.text(alphabet=st.characters(codec="utf-8"), max_size=6),
            ),
            max_size=8,
        )
    )
    body = "".join(parts)
    quote = draw(st.sampled_from(["", "", '"', "'", "`", "\u201c"]))
    if quote:
        closing = "\u201d" if quote == "\u201c" else quote
        body = f"{quote}{body}{draw(st.sampled_from([closing, '', closing + ' ']))}"
    pad = draw(st.sampled_from(["", " ", "  ", "\xa0", "\n"]))
    return f"{pad}{body}{draw(st.sampled_from(['', ' ', pad]))}"


@st.composite
def join_replies(draw: st.DrawFn) -> str:
    """A joiner's reply written like real models write it (Finish or Replan, odd labels, trailing
    text, brackets and quotes in the answer, a second action, a reply cut short)."""
    end = draw(st.sampled_from(LINE_ENDS))
    thought = draw(
        st.sampled_from(
            [
                "",
                f"Thought: both lookups worked.{end}",
                f"Thought: I could Replan(more) or Finish(x) here{end}",
                f"thought: done{end}{end}",
                f"**Thought:** fine.{end}",
                f"I think the answer is clear. Action: Finish(mid-line){end}",
                f"\ufeffThought: BOM first{end}",
            ]
        )
    )
    label = draw(st.sampled_from(["Action: ", "action: ", "**Action:** ", "> Action: ", "", "Action:", "`Action: "]))
    action = draw(st.sampled_from(["Finish", "finish", "FINISH", "Replan", "replan"]))
    space = draw(st.sampled_from(["", "", " "]))
    closing = draw(st.sampled_from([")", ")", "", " )", ")\n", ") I hope that helps!", ")\nAction: Finish(other)"]))
    reply = f"{thought}{label}{action}{space}({draw(answers())}{closing}"
    if draw(st.booleans()):
        reply += draw(st.sampled_from(["", "\nThat is all.", "\n\nAction: Replan(again)", " :)", "\u200b"]))
    if draw(st.integers(0, 4)) == 0:  # cut short, as a stream that broke
        reply = reply[: draw(st.integers(0, len(reply)))]
    return reply


def parsed(reply: str) -> JoinDecision | None:
    try:
        return parse_join_reply(reply)
    except JoinParseError:
        return None


def streamed(pieces: list[str]) -> list[str]:
    stream = AnswerStream()
    return [stream.feed(piece) for piece in pieces]


def whole(pieces: list[str]) -> str | None:
    """What a listener sees for a reply in ``pieces``: every text given out, joined, or ``None``
    when the reply is no ``Finish`` (and nothing may have been given out then)."""
    stream = AnswerStream()
    out = [stream.feed(piece) for piece in pieces]
    decision = parsed("".join(pieces))
    if not isinstance(decision, Finish):
        assert "".join(out) == "", (pieces, out)
        return None
    out.append(stream.finish(decision.answer))
    assert "".join(out) == decision.answer, (pieces, out, decision.answer)
    return "".join(out)


REPLIES = [
    "Thought: done.\nAction: Finish(Paris)",
    "Thought: x\nAction: Finish(Paris (France))",
    "Action: Finish(Austin Powers (film)",
    "The results are in.\nAction: Finish(3.1 / 2.9 = 1.07) I hope that helps!",
    'Action: Finish("a quoted answer")',
    "Action: Finish('it''s')",
    'Action: Finish("Paris" and "Oslo")',
    'Action: Finish("")',
    "Action: Finish(\u201ccurly\u201d)",
    "Action: Finish(line one\nline two)",
    "**Action:** Finish(bold markdown)",
    "Action: Finish(:) smiley)",
    "Action: Finish(f(x) = (a + b))",
    "I will now Action: Finish(loose)\nAction: Finish(real)",
    "Thought: I considered a Replan but no.\nAction: Finish(yes)",
    "Thought: missing.\nAction: Replan(find the date)",
    "Action: Finish(  spaced  )",
    "Action: Finish(x)\r\nAction: Replan(no)",
    "Action: Finish(\xa0nbsp\xa0)",
    "Action: Finish(\u200bzero width\u200b)",
    "Action: Finish()",
    "no decision at all",
]


@given(reply=st.sampled_from(REPLIES), data=st.data())
def test_known_replies_stream_exactly_their_answer(reply: str, data: st.DataObject) -> None:
    whole(data.draw(chunkings(reply)))


@settings(max_examples=400)
@given(data=st.data())
@example(data=None)
def test_model_like_replies_stream_exactly_their_answer(data: st.DataObject | None) -> None:
    if data is None:
        whole(list('Thought: ok.\nAction: Finish("Paris" (France)) thanks'))
        return
    reply = data.draw(join_replies())
    whole(data.draw(chunkings(reply)))


@settings(max_examples=300)
@given(data=st.data())
def test_what_a_prefix_gave_out_starts_every_answer_it_can_grow_into(data: st.DataObject) -> None:
    """A reply cut short sent nothing the whole reply would not answer: for any split of a reply
    (and any text after the split), the prefix's texts start the whole reply's answer."""
    reply = data.draw(join_replies())
    cut = data.draw(st.integers(0, len(reply)))
    rest = data.draw(st.one_of(st.just(reply[cut:]), st.text(max_size=12), st.sampled_from([")", '")', " )", "\n"])))
    sent = "".join(streamed(data.draw(chunkings(reply[:cut]))))
    decision = parsed(reply[:cut] + rest)
    if isinstance(decision, Finish):
        assert decision.answer.startswith(sent), (reply[:cut], rest, sent, decision.answer)
    else:
        assert sent == "", (reply[:cut], rest, sent)


def test_the_answer_streams_while_it_is_written() -> None:
    stream = AnswerStream()
    pieces = [
        "Thought: found it.\n",
        "Action: Finish(",
        "The capital ",
        "is Paris",
        " (France",
        ") ",
        "and ",
        "more",
        ")",
    ]
    out = [stream.feed(p) for p in pieces]
    assert out == ["", "", "The capital", " is Paris", " (France", "", ") and", " more", ""]
    assert stream.finish("The capital is Paris (France) and more") == ""


def test_a_replan_gives_nothing() -> None:
    stream = AnswerStream()
    assert [stream.feed(p) for p in ["Action: Replan(", "look up ", "the date)"]] == ["", "", ""]


def test_a_quoted_answer_waits_until_its_quotes_are_known() -> None:
    stream = AnswerStream()
    assert [stream.feed(p) for p in ['Action: Finish("Paris', '" is', " the answer"]] == [
        "",
        '"Paris" is',
        " the answer",
    ]
    stream = AnswerStream()
    assert [stream.feed(p) for p in ['Action: Finish("Paris', '")']] == ["", "Paris"]


def test_a_mid_line_action_waits_for_the_end() -> None:
    """Only a line-start action is sure to count: a later line might hold it."""
    stream = AnswerStream()
    assert stream.feed("Sure. Action: Finish(Paris is") == ""
    assert stream.feed(" the answer)") == ""
    assert stream.finish("Paris is the answer") == "Paris is the answer"


def test_a_long_line_is_not_searched_again_with_each_piece() -> None:
    """A thought written as one long line, a word at a time, costs a look at its line's start per
    piece, not a search of the whole line (which made 100k characters take seconds)."""
    tried: list[int] = []
    action = _joiner._ACTION

    class Counting:
        def match(self, text: str, pos: int) -> re.Match[str] | None:
            tried.append(pos)
            return action.match(text, pos)

        def search(self, text: str, pos: int = 0) -> re.Match[str] | None:  # pragma: no cover - must not be called
            raise AssertionError("searched the line again")

    stream = AnswerStream()
    with mock.patch.object(_joiner, "_ACTION", Counting()):
        out = [stream.feed(p) for p in ["Thought: ", *["word "] * 2000, "\nAction: Finish(", "Paris", ")"]]
    assert "".join(out) == "Paris"
    assert set(tried) == {0, len("Thought: " + "word " * 2000) + 1}
