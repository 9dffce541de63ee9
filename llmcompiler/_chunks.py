"""Long texts in pieces: split at paragraph, then sentence boundaries into chunks that fit a token budget.

``split_text`` cuts a text into ``TextChunk``s, each knowing its character span in the text
(``text[chunk.start:chunk.end] == chunk.text``). The rules:

- The text is read as sentences (a sentence ends at ``.``, ``!`` or ``?``, closing quotes or
  brackets included, before white space; a blank line ends a paragraph and its sentence).
  A sentence longer than the budget alone is cut at white space, and a word longer than the
  budget at characters: the only cuts inside a sentence.
- Sentences are packed into a chunk while it fits the budget. When a chunk is full, it ends
  at its last paragraph break instead if that keeps at least half of it.
- Overlap: the next chunk starts with the last whole sentences of the previous one, as many as
  fit ``overlap_tokens`` (and leave room for at least one new sentence), so a name on a
  boundary is whole in at least one chunk. Items found twice are merged later (``_extract``).
- Tokens are counted by ``count_tokens`` (``estimate_tokens`` by default: one token per four
  characters, rounded up, about right for English prose under GPT-style tokenizers; pass the
  model's own tokenizer for exact counts). Sentences are counted one by one, with the white
  space after them, and each chunk is checked whole, so a chunk never counts more than the
  budget unless a single character does.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable

from llmcompiler._errors import UserError

__all__ = ["TextChunk", "TokenCounter", "estimate_tokens", "split_text"]

TokenCounter = Callable[[str], int]
"""Counts the tokens of a text."""

_PARAGRAPH = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_SENTENCE_END = re.compile(r"""[.!?]+["')\]\u2019\u201d]*\s+""")
_SPACE = re.compile(r"\s+")


def estimate_tokens(text: str) -> int:
    """The default token count: one token per four characters, rounded up.

    Example:
        >>> estimate_tokens("Ada Lovelace wrote the first program.")
        10
    """
    return math.ceil(len(text) / 4)


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class TextChunk:
    """One piece of a longer text, as extraction reads it.

    Attributes:
        index: its place among the chunks, from 0.
        start: the offset of its first character in the whole text.
        end: the offset just past its last character (``text[start:end] == self.text``).
        text: its text.
    """

    index: int
    start: int
    end: int
    text: str


@dataclasses.dataclass(frozen=True, slots=True)
class _Unit:
    start: int  # the sentence's span
    end: int
    tokens: int  # counted with the white space after it
    paragraph_end: bool  # a paragraph break follows


def split_text(
    text: str,
    *,
    max_tokens: int,
    overlap_tokens: int = 0,
    count_tokens: TokenCounter | None = None,
) -> list[TextChunk]:
    """Split ``text`` into chunks of at most ``max_tokens`` tokens (see the module docstring).

    Args:
        text: the text.
        max_tokens: a chunk's budget.
        overlap_tokens: tokens of whole sentences a chunk repeats from the end of the one before.
        count_tokens: counts a text's tokens; ``estimate_tokens`` (characters / 4) by default.

    Returns:
        The chunks in text order; none for a text of white space only; one for a text within
        the budget (its span trimmed of surrounding white space).

    Raises:
        UserError: ``max_tokens`` is not a positive integer, or ``overlap_tokens`` is negative
            or not below ``max_tokens``.

    Example:
        >>> words = lambda text: len(text.split())
        >>> [c.text for c in split_text("One. Two. Three.", max_tokens=2, overlap_tokens=1, count_tokens=words)]
        ['One. Two.', 'Two. Three.']
    """
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise UserError(f"chunk_tokens must be a positive integer, got {max_tokens!r}")
    if isinstance(overlap_tokens, bool) or not isinstance(overlap_tokens, int) or not 0 <= overlap_tokens < max_tokens:
        raise UserError(f"overlap_tokens must be an integer from 0 to chunk_tokens - 1, got {overlap_tokens!r}")
    count = count_tokens or estimate_tokens
    units = _units(text, max_tokens, count)
    if not units:
        return []
    if count(text[units[0].start : units[-1].end]) <= max_tokens:
        return [_chunk(text, 0, units[0].start, units[-1].end)]
    chunks: list[TextChunk] = []
    first = 0  # the chunk's first unit
    fresh = 0  # its first unit not in the chunk before
    while fresh < len(units):
        last = _pack(units, first, max_tokens)
        while last > first and count(text[units[first].start : units[last].end]) > max_tokens:
            last -= 1  # the sum of the parts undercounted the whole: rare, for a real tokenizer
        if last < fresh:  # the overlap left no room for a new sentence: drop it
            first = fresh
            continue
        chunks.append(_chunk(text, len(chunks), units[first].start, units[last].end))
        fresh = last + 1
        first = _overlap_start(units, fresh, overlap_tokens, max_tokens)
    return chunks


def _pack(units: list[_Unit], first: int, budget: int) -> int:
    """The last unit of a chunk starting at ``first``: as many as fit, ended at a paragraph
    break when one keeps at least half of them."""
    total = 0
    last = first
    for i in range(first, len(units)):
        if i > first and total + units[i].tokens > budget:
            break
        total += units[i].tokens
        last = i
    if last + 1 < len(units):  # full, not at the text's end
        for i in range(last - 1, first - 1, -1):
            if units[i].paragraph_end and (i - first + 1) * 2 >= last - first + 1:
                return i
    return last


def _overlap_start(units: list[_Unit], fresh: int, overlap: int, budget: int) -> int:
    """The first unit of the next chunk: the last whole units before ``fresh`` that fit ``overlap``
    tokens and leave room for unit ``fresh``."""
    if fresh >= len(units) or overlap <= 0:
        return fresh
    room = min(overlap, budget - units[fresh].tokens)
    total = 0
    first = fresh
    while first > 0 and total + units[first - 1].tokens <= room:
        total += units[first - 1].tokens
        first -= 1
    return first


def _chunk(text: str, index: int, start: int, end: int) -> TextChunk:
    return TextChunk(index=index, start=start, end=end, text=text[start:end])


def _units(text: str, budget: int, count: TokenCounter) -> list[_Unit]:
    """The text's sentences (over-long ones cut at white space, then characters), with their
    token counts."""
    spans: list[tuple[int, int, bool]] = []  # start, end, a paragraph break follows
    for para_start, para_end in _paragraphs(text):
        sentences = _sentences(text, para_start, para_end)
        spans.extend((start, end, i == len(sentences) - 1) for i, (start, end) in enumerate(sentences))
    units: list[_Unit] = []
    for start, end, para in spans:
        pieces = _fit(text, start, end, budget, count)
        units.extend(_Unit(a, b, 0, para and j == len(pieces) - 1) for j, (a, b) in enumerate(pieces))
    # Each unit counted with the white space up to the next (what a chunk holding both contains).
    counted = []
    for i, unit in enumerate(units):
        upto = units[i + 1].start if i + 1 < len(units) else unit.end
        counted.append(dataclasses.replace(unit, tokens=max(count(text[unit.start : upto]), 1)))
    return counted


def _paragraphs(text: str) -> list[tuple[int, int]]:
    """Spans of the paragraphs, trimmed of white space."""
    found = []
    start = 0
    for match in _PARAGRAPH.finditer(text):
        found.append((start, match.start()))
        start = match.end()
    found.append((start, len(text)))
    return [span for span in (_trim(text, s, e) for s, e in found) if span[0] < span[1]]


def _sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Spans of the sentences of ``text[start:end]``, trimmed of white space."""
    found = []
    pos = start
    for match in _SENTENCE_END.finditer(text, start, end):
        found.append((pos, match.end()))
        pos = match.end()
    found.append((pos, end))
    return [span for span in (_trim(text, s, e) for s, e in found) if span[0] < span[1]]


def _fit(text: str, start: int, end: int, budget: int, count: TokenCounter) -> list[tuple[int, int]]:
    """``text[start:end]`` as one span when it fits ``budget``, else cut at white space (words
    packed by their counts, each counted once; a word that alone does not fit cut at characters)."""
    if count(text[start:end]) <= budget:
        return [(start, end)]
    pieces: list[tuple[int, int]] = []
    words = [(start + m.start(), start + m.end()) for m in re.finditer(r"\S+", text[start:end])]
    piece: tuple[int, int] | None = None
    total = 0
    for i, (w_start, w_end) in enumerate(words):
        upto = words[i + 1][0] if i + 1 < len(words) else w_end
        tokens = max(count(text[w_start:upto]), 1)
        if piece is not None and total + tokens <= budget:
            piece, total = (piece[0], w_end), total + tokens
            continue
        if piece is not None:
            pieces.append(piece)
        if tokens <= budget:
            piece, total = (w_start, w_end), tokens
        else:
            pieces.extend(_cut_word(text, w_start, w_end, budget, count))
            piece, total = None, 0
    if piece is not None:
        pieces.append(piece)
    return pieces


def _cut_word(text: str, start: int, end: int, budget: int, count: TokenCounter) -> list[tuple[int, int]]:
    """A word too long for the budget, cut into pieces that fit (at least one character each)."""
    pieces = []
    pos = start
    while pos < end:
        lo, hi = pos + 1, end  # the longest piece from pos that fits, by bisection
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if count(text[pos:mid]) <= budget:
                lo = mid
            else:
                hi = mid - 1
        pieces.append((pos, lo))
        pos = lo
    return pieces


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
