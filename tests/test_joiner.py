"""The joiner's reply parser on awkward replies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmcompiler import Finish, JoinParseError, Replan, parse_join_reply


@pytest.mark.parametrize(
    ("reply", "answer"),
    [
        ("Thought: done.\nAction: Finish(Paris)", "Paris"),
        ("Thought: x\nAction: Finish(Paris (France))", "Paris (France)"),
        ("Action: Finish(Austin Powers (film))", "Austin Powers (film)"),
        ("Action: Finish(Austin Powers (film)", "Austin Powers (film)"),  # the final ) is missing
        ("Finish(42)", "42"),
        ("The results are in.\nAction: Finish(3.1 / 2.9 = 1.07) I hope that helps!", "3.1 / 2.9 = 1.07"),
        ('Action: Finish("a quoted answer")', "a quoted answer"),
        ("Action: Finish('it''s')", "'it''s'"),
        ("Action: Finish(line one\nline two)", "line one\nline two"),
        ("action: finish(lower case)", "lower case"),
        ("**Action:** Finish(bold markdown)", "bold markdown"),
        ("Thought: I considered a Replan but no.\nAction: Finish(yes)", "yes"),
        ("Action: Finish(:) smiley)", ":"),
        ("Action: Finish(f(x) = (a + b))", "f(x) = (a + b)"),
    ],
)
def test_finish_answers(reply: str, answer: str) -> None:
    decision = parse_join_reply(reply)
    assert isinstance(decision, Finish)
    assert decision.answer == answer


def test_thought_is_kept() -> None:
    decision = parse_join_reply("Thought: Both lookups worked.\nMore thinking.\nAction: Finish(yes)")
    assert decision.thought == "Both lookups worked.\nMore thinking."
    assert parse_join_reply("Action: Finish(yes)").thought is None


def test_replan_carries_its_feedback() -> None:
    decision = parse_join_reply("Thought: Oslo failed.\nAction: Replan(retry the weather for Oslo (it timed out))")
    assert decision == Replan(feedback="retry the weather for Oslo (it timed out)", thought="Oslo failed.")


def test_the_word_replan_elsewhere_does_not_replan() -> None:
    decision = parse_join_reply("Thought: no need to Replan(anything) here\nAction: Finish(done)")
    assert decision == Finish(answer="done", thought="no need to Replan(anything) here")


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("", "expected 'Action: Finish(answer)'"),
        ("The answer is Paris.", "expected 'Action: Finish(answer)'"),
        ("Thought: hmm\nAction: Answer(Paris)", "expected 'Action: Finish(answer)'"),
        ("Action: Finish()", "Finish() holds no answer"),
        ("Action: Finish(  )", "Finish() holds no answer"),
    ],
)
def test_replies_with_no_decision_are_clear_errors(reply: str, reason: str) -> None:
    with pytest.raises(JoinParseError, match=reason.replace("(", r"\(").replace(")", r"\)")) as info:
        parse_join_reply(reply)
    assert info.value.reply == reply


@given(st.text(alphabet=st.characters(blacklist_characters="()\r"), min_size=1).filter(lambda s: s.strip()))
def test_any_paren_free_answer_round_trips(answer: str) -> None:
    decision = parse_join_reply(f"Thought: t\nAction: Finish({answer})")
    assert isinstance(decision, Finish)
    assert decision.answer.strip("\"'`\u201c\u201d ") == answer.strip().strip("\"'`\u201c\u201d ")
