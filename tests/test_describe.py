"""``describe``: the one way an exception reads in an error message (a task's error, a run error,
a wrapped BaseException, a value that cannot be used)."""

from __future__ import annotations

from llmcompiler._text import describe, error_text

KEY = "sk-proj-" + "a1b2c3d4e5f6g7h8i9j0"


class _BadStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no")


def test_type_and_message() -> None:
    assert describe(ConnectionError("refused")) == "ConnectionError: refused"
    assert describe(TimeoutError()) == "TimeoutError"
    assert error_text(ValueError("bad value")) == "bad value"


def test_a_message_that_cannot_be_read_still_names_the_type() -> None:
    assert describe(_BadStr()) == "_BadStr: <its message could not be read>"


def test_secrets_are_scrubbed_before_the_cut() -> None:
    assert KEY not in describe(RuntimeError(f"call failed with key {KEY}"))
    # The cut falls inside the key: the key is scrubbed first, so no half of it survives.
    text = describe(RuntimeError("x" * 30 + KEY), limit=40)
    assert "a1b2" not in text and len(text) <= len("RuntimeError: ") + 40


def test_a_long_message_is_cut_with_an_ellipsis() -> None:
    text = error_text(ValueError("y" * 10_000), 100)
    assert len(text) == 100 and text.endswith("…")
