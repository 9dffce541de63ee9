"""Splitting long texts for extraction: budgets, boundaries, overlap and spans (``llmcompiler._chunks``)."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmcompiler import TextChunk, UserError
from llmcompiler._chunks import estimate_tokens, split_text


def words(text: str) -> int:
    return len(text.split())


def check_spans(text: str, chunks: list[TextChunk]) -> None:
    for i, chunk in enumerate(chunks):
        assert chunk.index == i
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.text == chunk.text.strip()
    # Every non-space character of the text is in some chunk, and the chunks move forward.
    covered = [False] * len(text)
    for chunk in chunks:
        covered[chunk.start : chunk.end] = [True] * (chunk.end - chunk.start)
    assert all(covered[i] for i, ch in enumerate(text) if not ch.isspace())
    for before, after in itertools.pairwise(chunks):
        assert before.start < after.start and before.end < after.end


def test_a_short_text_is_one_chunk_trimmed() -> None:
    text = "\n  Ada Lovelace wrote the first program.  \n"
    [chunk] = split_text(text, max_tokens=100)
    assert chunk.text == "Ada Lovelace wrote the first program."
    assert (chunk.start, chunk.end) == (3, 3 + len(chunk.text))


def test_white_space_only_gives_no_chunk() -> None:
    assert split_text("  \n\n ", max_tokens=10) == []
    assert split_text("", max_tokens=10) == []


def test_chunks_end_at_sentence_boundaries_within_the_budget() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(30))
    chunks = split_text(text, max_tokens=20, count_tokens=words)
    assert len(chunks) > 1
    check_spans(text, chunks)
    for chunk in chunks:
        assert words(chunk.text) <= 20
        assert chunk.text.startswith("Sentence") and chunk.text.endswith("here.")


def test_paragraph_breaks_are_preferred_to_sentence_breaks() -> None:
    para1 = "One two three. Four five six. Seven eight nine."
    para2 = "Ten eleven twelve. Thirteen fourteen fifteen."
    text = f"{para1}\n\n{para2}"
    # 15 words fit para1 and the first sentence of para2; the chunk ends at the paragraph instead.
    chunks = split_text(text, max_tokens=13, count_tokens=words)
    assert [c.text for c in chunks] == [para1, para2]


def test_overlap_repeats_whole_sentences() -> None:
    sentences = [f"Fact {i} holds." for i in range(12)]
    text = " ".join(sentences)
    chunks = split_text(text, max_tokens=9, overlap_tokens=3, count_tokens=words)
    check_spans(text, chunks)
    for before, after in itertools.pairwise(chunks):
        assert after.start < before.end  # they overlap
        shared = text[after.start : before.end]
        assert re.fullmatch(r"(Fact \d+ holds\.\s?)+", shared)  # whole sentences only


def test_no_overlap_when_zero() -> None:
    text = " ".join(f"Fact {i} holds." for i in range(12))
    chunks = split_text(text, max_tokens=9, overlap_tokens=0, count_tokens=words)
    for before, after in itertools.pairwise(chunks):
        assert after.start > before.end


def test_an_over_long_sentence_is_cut_at_white_space_then_characters() -> None:
    text = "word " * 25 + "x" * 30
    chunks = split_text(text, max_tokens=5)  # chars / 4
    check_spans(text, chunks)
    for chunk in chunks:
        assert estimate_tokens(chunk.text) <= 5
    assert all(not c.text.startswith("ord") for c in chunks)  # words are not cut


def test_a_real_tokenizer_counts() -> None:
    bpe_openai = pytest.importorskip("bpe_openai")
    enc = bpe_openai.encoding_for_model("gpt-4o")

    def count(text: str) -> int:
        return len(enc.encode(text))

    text = "\n\n".join(
        " ".join(f"In {1900 + i}, the committee of city {j} met in Geneva." for j in range(6)) for i in range(8)
    )
    chunks = split_text(text, max_tokens=60, overlap_tokens=15, count_tokens=count)
    check_spans(text, chunks)
    assert all(count(c.text) <= 60 for c in chunks)


@pytest.mark.parametrize(("max_tokens", "overlap"), [(0, 0), (10, 10), (10, -1), (True, 0), (5.0, 1)])
def test_bad_sizes_are_user_errors(max_tokens: object, overlap: object) -> None:
    with pytest.raises(UserError):
        split_text("Some text.", max_tokens=max_tokens, overlap_tokens=overlap)  # type: ignore[arg-type]


_WORD = st.sampled_from(["Ada", "Lovelace", "wrote", "code.", "Oslo!", "is", "far?", "a", "(b)", "x" * 17])
_SEP = st.sampled_from([" ", " ", " ", "\n", "\n\n", "  "])


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(_WORD, _SEP), max_size=80),
    st.integers(min_value=1, max_value=30),
    st.integers(min_value=0, max_value=29),
)
def test_any_text_is_covered_within_budget(parts: list[tuple[str, str]], budget: int, overlap: int) -> None:
    text = "".join(w + s for w, s in parts)
    overlap = min(overlap, budget - 1)
    chunks = split_text(text, max_tokens=budget, overlap_tokens=overlap)
    check_spans(text, chunks)
    assert all(estimate_tokens(c.text) <= budget for c in chunks)
