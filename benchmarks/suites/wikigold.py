"""Wikigold: named entities in 145 Wikipedia articles, for the structured extraction strategies.

The data (``benchmarks/data/wikigold/``, its ``SOURCE.md`` says where from and under which
licence) is CoNLL: one token and its tag a line, sentences separated by blank lines, articles
separated by ``-DOCSTART-`` lines. Tags are IO (``I-PER``, ``I-LOC``, ``I-ORG``, ``I-MISC``, ``O``):
an entity mention is a maximal run of tokens of one sentence with the same ``I-`` tag.

What this module makes of it:

- **Documents**: each article's text rebuilt from its tokens (``detokenize``): one space between
  tokens but none before closing punctuation (``, . ; : ! ? ) ] % ...``) and clitics (``'s n't 're
  'd 've 'll 'm`` and a lone ``'``), none after ``(`` ``[``, quotes ``"`` paired within a sentence
  (no space after an opening one, none before a closing one); sentences joined by one space. A
  mention's surface text is the document's text from its first token to its last, so every gold
  entity occurs in its document as written.
- **Schemas**: ``Person``, ``Location`` and ``Organization``, pydantic models with one field
  ``name``, for the tags ``PER``, ``LOC`` and ``ORG``. ``MISC`` (nationalities, events, works,
  ...) is neither extracted nor scored.
- **Gold**: per document and schema, the distinct entities: mentions deduplicated by their
  normalised text (``normalise``: case-folded, runs of white space squeezed to one space), each
  kept in its first surface form.
- **Scoring** (``score``, ``summarize_counts``): entity-level precision, recall and F1 per type and
  micro-averaged over types and documents. An entity is (type, normalised surface text) within a
  document: a predicted entity is right when the document's gold holds it with that type;
  predictions are deduplicated the same way before they are counted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

__all__ = [
    "DATA",
    "SCHEMAS",
    "TYPES",
    "Counts",
    "Document",
    "Location",
    "Mention",
    "Organization",
    "Person",
    "detokenize",
    "load_documents",
    "normalise",
    "prf",
    "score",
    "summarize_counts",
]

DATA = Path(__file__).resolve().parent.parent / "data" / "wikigold" / "wikigold.conll.txt"


class Person(BaseModel):
    """A person mentioned in the text: a real or fictional individual, named."""

    name: str = Field(description="The person's name as written in the text")


class Location(BaseModel):
    """A location mentioned in the text: a country, city, region, river, mountain or other named place."""

    name: str = Field(description="The location's name as written in the text")


class Organization(BaseModel):
    """An organization mentioned in the text: a company, band, team, institution, party or other named group."""

    name: str = Field(description="The organization's name as written in the text")


SCHEMAS: tuple[type[BaseModel], ...] = (Person, Location, Organization)
"""The schemas extracted, in order."""

TYPES: Mapping[str, str] = {"Person": "PER", "Location": "LOC", "Organization": "ORG"}
"""Each schema's Wikigold tag (``MISC`` has no schema: not extracted, not scored)."""

_NO_SPACE_BEFORE = frozenset({",", ".", ";", ":", "!", "?", ")", "]", "}", "%", "...", ".."})
_CLITICS = frozenset({"'s", "'S", "n't", "'re", "'ve", "'ll", "'d", "'m", "'"})
_NO_SPACE_AFTER = frozenset({"(", "[", "{"})
_QUOTE = '"'


def normalise(text: str) -> str:
    """The key an entity is compared by: case-folded, runs of white space squeezed to one space."""
    return " ".join(text.split()).casefold()


def detokenize(tokens: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """One sentence's tokens as text (the rules in the module's docstring), with each token's span.

    Example:
        >>> detokenize(['He', 'said', '"', 'hi', '"', '(', 'twice', ')', "'s", '.'])[0]
        'He said "hi" (twice)\\'s.'
    """
    text = ""
    spans: list[tuple[int, int]] = []
    open_quote = False
    glue = True  # no space before the next token
    for token in tokens:
        closing = token == _QUOTE and open_quote
        if not glue and token not in _NO_SPACE_BEFORE and token not in _CLITICS and not closing:
            text += " "
        spans.append((len(text), len(text) + len(token)))
        text += token
        if token == _QUOTE:
            open_quote = not open_quote
            glue = open_quote  # nothing between an opening quote and its first word
        else:
            glue = token in _NO_SPACE_AFTER
    return text, spans


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Mention:
    """One entity mention: its tag (``PER``, ``LOC``, ``ORG``, ``MISC``), its text and where it is."""

    type: str
    text: str
    start: int
    end: int


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Document:
    """One article.

    Attributes:
        id: ``wikigold-001`` ... ``wikigold-145``, in file order.
        text: the article's text (``detokenize``d sentences joined by a space).
        mentions: every entity mention, ``MISC`` included, in text order.
        tokens: the number of CoNLL tokens.
    """

    id: str
    text: str
    mentions: tuple[Mention, ...]
    tokens: int

    def gold(self) -> dict[str, list[str]]:
        """The distinct entities of each schema (by class name, in ``SCHEMAS`` order): deduplicated by
        ``normalise``d text, each in its first surface form, in text order."""
        out: dict[str, list[str]] = {}
        for name, tag in TYPES.items():
            seen: dict[str, str] = {}
            for m in self.mentions:
                if m.type == tag:
                    seen.setdefault(normalise(m.text), m.text)
            out[name] = list(seen.values())
        return out


def _document(index: int, sentences: Sequence[Sequence[tuple[str, str]]]) -> Document:
    text = ""
    mentions: list[Mention] = []
    for sentence in sentences:
        if text:
            text += " "
        offset = len(text)
        words, spans = detokenize([token for token, _ in sentence])
        text += words
        k = 0
        while k < len(sentence):
            tag = sentence[k][1]
            if not tag.startswith("I-"):
                k += 1
                continue
            end = k
            while end + 1 < len(sentence) and sentence[end + 1][1] == tag:
                end += 1
            start_char, end_char = offset + spans[k][0], offset + spans[end][1]
            mentions.append(Mention(type=tag[2:], text=text[start_char:end_char], start=start_char, end=end_char))
            k = end + 1
    return Document(
        id=f"wikigold-{index:03d}",
        text=text,
        mentions=tuple(mentions),
        tokens=sum(len(s) for s in sentences),
    )


def load_documents(path: Path = DATA) -> list[Document]:
    """The articles of the CoNLL file at ``path``, in file order (145 for Wikigold).

    A ``-DOCSTART-`` line separates articles (in this copy it closes each one: the first article
    has none before it, the file ends with one); articles with no tokens are skipped.

    Raises:
        ValueError: a line that is not ``TOKEN TAG`` with a tag ``O`` or ``I-...``.
    """
    documents: list[Document] = []
    sentences: list[list[tuple[str, str]]] = []
    sentence: list[tuple[str, str]] = []

    def close_document() -> None:
        if sentence:
            sentences.append(list(sentence))
            sentence.clear()
        if sentences:
            documents.append(_document(len(documents) + 1, sentences))
            sentences.clear()

    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if line.startswith("-DOCSTART-"):
            close_document()
            continue
        if not line:
            if sentence:
                sentences.append(list(sentence))
                sentence.clear()
            continue
        token, _, tag = line.rpartition(" ")
        if not token or not (tag == "O" or tag.startswith("I-")):
            raise ValueError(f"{path}:{number}: not a TOKEN TAG line: {raw!r}")
        sentence.append((token, tag))
    close_document()
    return documents


# --------------------------------------------------------------------------- scoring


@dataclasses.dataclass(kw_only=True, slots=True)
class Counts:
    """True positives, false positives and false negatives of one type."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, other: Counts) -> None:
        """Add ``other``'s counts to these."""
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn


def prf(counts: Counts) -> dict[str, float]:
    """Precision, recall and F1 of ``counts``.

    Nothing predicted and nothing to find scores 1.0 throughout; otherwise an empty denominator
    gives 0.0 (nothing predicted: precision 0.0; nothing to find: recall 0.0).
    """
    if counts.tp + counts.fp + counts.fn == 0:
        return {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    precision = counts.tp / (counts.tp + counts.fp) if counts.tp + counts.fp else 0.0
    recall = counts.tp / (counts.tp + counts.fn) if counts.tp + counts.fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def score(gold: Mapping[str, Iterable[str]], predicted: Mapping[str, Iterable[str]]) -> dict[str, Counts]:
    """One document's counts per schema (``TYPES``' names): entities compared by ``normalise``d text.

    Args:
        gold: the gold entities by schema name (``Document.gold``).
        predicted: the extracted names by schema name; other schemas are ignored, a missing one
            predicted nothing.
    """
    out: dict[str, Counts] = {}
    for name in TYPES:
        wanted = {normalise(t) for t in gold.get(name, ())}
        found = {normalise(t) for t in predicted.get(name, ())} - {""}
        out[name] = Counts(tp=len(wanted & found), fp=len(found - wanted), fn=len(wanted - found))
    return out


def summarize_counts(per_document: Iterable[Mapping[str, Counts]]) -> dict[str, Any]:
    """Micro-averaged precision, recall and F1 over documents and types, and the same per type
    (keyed by tag: ``PER``, ``LOC``, ``ORG``), each with its summed counts."""
    totals = {name: Counts() for name in TYPES}
    for counts in per_document:
        for name, c in counts.items():
            totals[name].add(c)
    micro = Counts()
    for c in totals.values():
        micro.add(c)
    per_type = {TYPES[name]: prf(c) | dataclasses.asdict(c) for name, c in totals.items()}
    return prf(micro) | dataclasses.asdict(micro) | {"per_type": per_type}
