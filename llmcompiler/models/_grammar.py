"""GBNF grammars that force a small local model to write a parseable plan or joiner reply.

A grammar is built as a small tree of nodes (``Lit``, ``Chars``, ``Seq``, ``Alt``, ``Rep``,
``Ref``) and rendered to llama.cpp's GBNF text. The same tree can be sampled at random in pure
Python (``Grammar.sample``), which is how the tests check that every text the grammar allows
parses: the grammar is the contract, the model only picks among its branches.

The ReAct grammar (``react_grammar``) allows one step of the ReAct baseline: a thought, then
one call of a tool with plan-style arguments, or ``Finish(answer)``.

The plan grammar (``plan_grammar``) is unrolled by position: task ``k`` of the plan carries the
fixed number ``first_idx + k - 1``, and may reference (``$N``) only tasks with smaller
numbers, so numbering and references are right by construction. Each tool's call offers its
parameters positionally (in schema order) and then by keyword, with values restricted by the
parameter's JSON Schema type (an ``enum`` becomes the list of its literals). Everything is
bounded: the number of tasks, the length of strings, thoughts and lists, so a model that
loops can only loop until the grammar runs out.

A ``Grounding`` narrows the plan grammar to what a small model can know: a number parameter
takes only a number from the question (or an earlier result), a ``$N`` reference or a literal
of its schema (an enum, a default); a parameter that names an entity (``city``, ``country``,
``name``, ``id``, ...) takes a span of the question's words. A tool none of whose forms can be
written at a position (``divide`` before any result, with no number in the question) is not
offered there.

The extractive joiner grammar (``extractive_join_grammar``) lets the model choose among
candidate answers assembled from the results verbatim, but not write one: no value can be
garbled or moved to another label.
"""

from __future__ import annotations

import dataclasses
import json
import keyword
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from llmcompiler._types import ToolSpec, deref_schema

__all__ = [
    "Alt",
    "Chars",
    "Grammar",
    "Grounding",
    "Lit",
    "Node",
    "PlanLimits",
    "Ref",
    "Rep",
    "Seq",
    "extractive_join_grammar",
    "join_grammar",
    "plan_grammar",
    "react_grammar",
    "result_paths",
    "text_spans",
    "written_tasks",
]


# --------------------------------------------------------------------------- nodes


@dataclasses.dataclass(frozen=True, slots=True)
class Lit:
    """A literal text."""

    text: str


@dataclasses.dataclass(frozen=True, slots=True)
class Chars:
    """One character from a class: ``chars`` and ``ranges`` (inclusive), or any other when ``negated``."""

    chars: str = ""
    ranges: tuple[tuple[str, str], ...] = ()
    negated: bool = False

    def __contains__(self, c: object) -> bool:
        if not isinstance(c, str) or len(c) != 1:
            return False
        inside = c in self.chars or any(lo <= c <= hi for lo, hi in self.ranges)
        return inside != self.negated


@dataclasses.dataclass(frozen=True, slots=True)
class Seq:
    """Its items one after the other."""

    items: tuple[Node, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Alt:
    """One of its options."""

    options: tuple[Node, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Rep:
    """``item`` repeated from ``lo`` to ``hi`` times."""

    item: Node
    lo: int
    hi: int


@dataclasses.dataclass(frozen=True, slots=True)
class Ref:
    """The rule called ``name``."""

    name: str


Node = Lit | Chars | Seq | Alt | Rep | Ref

# Characters the random sampler draws from for negated classes: plain text plus what tends
# to break parsers (quotes, brackets, '$', '#', commas, non-ASCII).
_SAMPLE_ALPHABET = "abcxyzABCXYZ019 .,:;-_/'\"$#()[]{}=<>!?@%&*+|~`\\\t\n\x00\x1f°éß中"


_EMPTY = Lit("")


def seq(*items: Node) -> Node:
    """A sequence, flattened, without empty literals; one item is itself."""
    flat: list[Node] = []
    for item in items:
        if isinstance(item, Seq):
            flat.extend(item.items)
        elif item != _EMPTY:
            flat.append(item)
    if not flat:
        return _EMPTY
    if len(flat) == 1:
        return flat[0]
    return Seq(tuple(flat))


def alt(*options: Node) -> Node:
    """A choice; one option is itself."""
    return options[0] if len(options) == 1 else Alt(tuple(options))


def opt(item: Node) -> Node:
    """``item`` or nothing."""
    return rep(item, 0, 1)


def rep(item: Node, lo: int, hi: int) -> Node:
    """``item`` ``lo`` to ``hi`` times (nothing when ``hi`` is 0)."""
    if hi <= 0 or item == _EMPTY:
        return _EMPTY
    return Rep(item, lo, hi)


class Grammar:
    """Named rules, ``root`` first: renders to GBNF and samples random texts.

    Rules are interned: ``rule(hint, node)`` returns a reference to an existing rule with the
    same body when there is one, so position-independent parts are written once.
    """

    def __init__(self) -> None:
        self.rules: dict[str, Node] = {}
        self._by_body: dict[Node, str] = {}

    def define(self, name: str, node: Node) -> Ref:
        """Set rule ``name`` (which must be new) to ``node``."""
        if name in self.rules:
            raise ValueError(f"rule {name!r} is defined twice")
        self.rules[name] = node
        self._by_body.setdefault(node, name)
        return Ref(name)

    def rule(self, hint: str, node: Node) -> Ref:
        """A reference to a rule with body ``node``, made (named after ``hint``) if it is new."""
        found = self._by_body.get(node)
        if found is not None:
            return Ref(found)
        name = _rule_name(hint)
        base, n = name, 2
        while name in self.rules:
            name = f"{base}-{n}"
            n += 1
        return self.define(name, node)

    def to_gbnf(self) -> str:
        """The grammar as llama.cpp GBNF text."""
        if "root" not in self.rules:
            raise ValueError("the grammar has no root rule")
        order = ["root", *(name for name in self.rules if name != "root")]
        return "\n".join(f"{name} ::= {_render(self.rules[name], top=True)}" for name in order) + "\n"

    def sample(self, rng: random.Random, *, start: str = "root") -> str:
        """A random text the grammar allows (for tests of what it lets through)."""
        out: list[str] = []
        self._sample(Ref(start), rng, out)
        return "".join(out)

    def _sample(self, node: Node, rng: random.Random, out: list[str]) -> None:
        if isinstance(node, Lit):
            out.append(node.text)
        elif isinstance(node, Chars):
            if node.negated:
                pool = [c for c in _SAMPLE_ALPHABET if c in node]
            else:
                pool = list(node.chars) + [chr(rng.randint(ord(lo), ord(hi))) for lo, hi in node.ranges]
            out.append(rng.choice(pool))
        elif isinstance(node, Seq):
            for item in node.items:
                self._sample(item, rng, out)
        elif isinstance(node, Alt):
            self._sample(rng.choice(node.options), rng, out)
        elif isinstance(node, Rep):
            for _ in range(rng.randint(node.lo, node.hi)):
                self._sample(node.item, rng, out)
        else:
            self._sample(self.rules[node.name], rng, out)


def _rule_name(hint: str) -> str:
    name = re.sub(r"[^a-zA-Z0-9-]+", "-", hint).strip("-").lower()
    return name or "r"


def _render(node: Node, *, top: bool = False) -> str:
    if isinstance(node, Lit):
        return _gbnf_literal(node.text)
    if isinstance(node, Chars):
        body = "".join(_class_char(c) for c in node.chars)
        body += "".join(f"{_class_char(lo)}-{_class_char(hi)}" for lo, hi in node.ranges)
        return f"[{'^' if node.negated else ''}{body}]"
    if isinstance(node, Seq):
        text = " ".join(_render(item) for item in node.items)
        return text if top else f"({text})"
    if isinstance(node, Alt):
        text = " | ".join(_render(option, top=True) for option in node.options)
        return text if top else f"({text})"
    if isinstance(node, Rep):
        inner = _render(node.item)
        if isinstance(node.item, Seq | Alt | Rep) and not inner.startswith("("):
            inner = f"({inner})"
        if (node.lo, node.hi) == (0, 1):
            return f"{inner}?"
        if node.lo == node.hi:
            return f"{inner}{{{node.lo}}}"
        return f"{inner}{{{node.lo},{node.hi}}}"
    return node.name


def _escape(c: str, special: str) -> str:
    if c in special or c == "\\":
        return "\\" + c
    if c == "\n":
        return "\\n"
    if c == "\r":
        return "\\r"
    if c == "\t":
        return "\\t"
    if ord(c) < 0x20 or ord(c) == 0x7F:
        return f"\\x{ord(c):02X}"
    return c


def _gbnf_literal(text: str) -> str:
    return '"' + "".join(_escape(c, '"') for c in text) + '"'


def _class_char(c: str) -> str:
    # llama.cpp knows the escapes \\ \" \[ \] \n \r \t \xHH; '^' and '-' need hex.
    if c in "^-":
        return f"\\x{ord(c):02X}"
    return _escape(c, "[]")


# --------------------------------------------------------------------------- shared pieces

_DIGIT = Chars(ranges=(("0", "9"),))


def _text(max_len: int, *, exclude: str, exclude_first: str = "") -> Node:
    """1 to ``max_len`` printable characters of one line, none of ``exclude``; the first is no space
    and none of ``exclude_first`` either."""
    first = Chars(" " + exclude + exclude_first, ranges=(("\x00", "\x1f"),), negated=True)
    rest = Chars(exclude, ranges=(("\x00", "\x1f"),), negated=True)
    return seq(first, rep(rest, 0, max_len - 1))


def _string(max_len: int, *, refs: bool = True) -> Node:
    """A double-quoted string literal of about ``max_len`` characters, none of them a quote, a
    backslash or a control character, and never ``${``: inside a string that starts a braced
    reference (``"${1.entityId}"``), which a string written freely could leave unclosed. A run of
    ``$`` is followed by neither ``$`` nor ``{``: ``"$20-$30"`` and ``"US$"`` can be written.
    Without ``refs``, not by a digit either: no ``$N`` in the string splices a result."""
    plain = Chars('"\\$', ranges=(("\x00", "\x1f"),), negated=True)
    after_dollars = Chars('"\\${', ranges=(("\x00", "\x1f"), *((("0", "9"),) if not refs else ())), negated=True)
    dollars = rep(Lit("$"), 1, 3)
    body = seq(rep(alt(plain, seq(dollars, after_dollars)), 0, max_len), opt(dollars))
    return seq(Lit('"'), body, Lit('"'))


# --------------------------------------------------------------------------- plan grammar


@dataclasses.dataclass(frozen=True, slots=True)
class PlanLimits:
    """Bounds of the plan grammar.

    Attributes:
        max_tasks: tool calls before ``join()``.
        max_string: characters in a string literal.
        max_thought: characters in a ``Thought:`` line.
        max_list: items in a list (or entries in a dict) literal.
        max_digits: digits of a number's integer part.
        thoughts: whether ``Thought:`` lines are allowed at all.
        max_path: steps of a path into a result (``$1.items[0].id`` has three).
        max_paths: paths offered into the results of one tool (the shortest first).
    """

    max_tasks: int = 8
    max_string: int = 48
    max_thought: int = 100
    max_list: int = 6
    max_digits: int = 9
    thoughts: bool = True
    max_path: int = 3
    max_paths: int = 48


@dataclasses.dataclass(frozen=True, slots=True)
class Grounding:
    """What a plan may write where the model cannot know a value (see the module docstring).

    Build one with ``Grounding.of(question, results)``.

    Attributes:
        numbers: number literals a number parameter may take (as the plan language writes them).
        spans: strings a parameter that names an entity may take (the question's word spans).
    """

    numbers: tuple[str, ...] = ()
    spans: tuple[str, ...] = ()

    @classmethod
    def of(cls, question: str, results: Iterable[str] = (), *, entities: bool = True) -> Grounding:
        """The numbers of ``question`` and ``results``; with ``entities``, the word spans of ``question``.

        Example:
            >>> Grounding.of("Is 14,000 more than twice 3.50?", entities=False).numbers
            ('14000', '3.5', '2')
        """
        numbers: dict[str, None] = {}
        for text in (question, *results):
            for number in numbers_in(text):
                numbers.setdefault(number)
        return cls(numbers=tuple(numbers), spans=spans_in(question) if entities else ())

    @property
    def integers(self) -> tuple[str, ...]:
        """The numbers that are integers."""
        return tuple(n for n in self.numbers if re.fullmatch(r"-?\d+", n))


_NUMBER_TEXT = re.compile(r"(?<![\w.])(-)?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?!\.?\d)(%?)")
_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "twenty": 20, "hundred": 100, "thousand": 1000,
    "million": 1_000_000, "billion": 1_000_000_000, "twice": 2, "double": 2, "thrice": 3, "triple": 3,
    "half": 0.5, "dozen": 12,
}  # fmt: skip
_MAX_GROUND_NUMBERS = 64


def numbers_in(text: str) -> list[str]:
    """The numbers written in ``text`` as plan literals: digits (``14,000`` is 14000; ``15%`` is 15
    and 0.15) and common number words (``two``, ``twice``, ``half``), in order of appearance.

    Example:
        >>> numbers_in("Tokyo has 14,000,000 people, 15% more; -3.50 and two")
        ['14000000', '15', '0.15', '-3.5', '2']
    """
    found: list[str] = []
    for m in _NUMBER_TEXT.finditer(text):
        sign, whole, frac, percent = m.group(1) or "", m.group(2).replace(",", ""), m.group(3) or "", m.group(4)
        if len(whole) > 15:
            continue  # beyond a float's precision: not a value a tool argument needs
        if frac:
            found.append(_float_literal(float(sign + whole + frac)))
        else:
            found.append(str(int(sign + whole)))
        if percent:
            found.append(_float_literal(float(sign + whole + frac) / 100))
    for word in re.findall(r"[a-z]+", text.lower()):
        value = _NUMBER_WORDS.get(word)
        if value is not None:
            found.append(str(value) if isinstance(value, int) else _float_literal(value))
    return list(dict.fromkeys(found))[:_MAX_GROUND_NUMBERS]


def _float_literal(value: float) -> str:
    text = repr(value)
    return text if re.fullmatch(r"-?\d+\.\d+", text) else f"{value:.6f}".rstrip("0").rstrip(".")


# Words a span of the question may not begin or end with: a span names a thing.
_STOPWORDS = frozenset(
    """a an the and or but of in on at to for from by with without about into over under between
    what which who whom whose where when why how is are was were be been being do does did has have
    had will would can could should may might must shall i me my we our you your he she it its they
    them their this that these those there here than then as if so not no yes all any each both
    many much more most less least times time tell give find get show me please also same other
    than versus vs per""".split()  # noqa: SIM905 - a word list reads better as text
)
_PARTICLES = frozenset({"of", "de", "la", "del", "du", "da", "di", "von", "van", "der", "le"})
_WORD = re.compile(r"[^\W_](?:[\w'\u2019&.-]*[^\W_])?")
_MAX_SPAN_WORDS = 4
_MAX_SPANS = 96


def spans_in(question: str) -> tuple[str, ...]:
    """Word spans of ``question`` that may name an entity, as string literals would hold them.

    Each quoted phrase; each word that is not a stop word (``the``, ``and``, ``what``, ...), also
    without a possessive ``'s``; and runs of two to four capitalised words not broken by
    punctuation, with only name particles between them (``New York``, ``Bank of America``).
    At most 96, the shortest first.

    Example:
        >>> spans_in("What is the weather in New York and in Peru's capital?")
        ('weather', 'New', 'York', "Peru's", 'Peru', 'capital', 'New York')
    """
    spans: dict[str, None] = {}
    for quoted in re.findall(r"[\"“]([^\"”\n]{1,80})[\"”]", question):
        spans.setdefault(quoted.strip())
    runs: list[list[str]] = []
    for clause in re.split(r"[,;:!?()\[\]{}\"“”\n]+|\.(?:\s|$)", question):
        words = _WORD.findall(clause)
        if words:
            runs.append(words)
    by_length: list[list[str]] = [[] for _ in range(_MAX_SPAN_WORDS)]
    for words in runs:
        for n in range(1, _MAX_SPAN_WORDS + 1):
            for i in range(len(words) - n + 1):
                span = words[i : i + n]
                if span[0].lower() in _STOPWORDS or span[-1].lower() in _STOPWORDS:
                    continue
                if n > 1 and not (
                    any(w[0].isupper() for w in span)
                    and all(w[0].isupper() or w[0].isdigit() or w.lower() in _PARTICLES for w in span)
                ):
                    continue
                by_length[n - 1].append(" ".join(span))
                if n == 1 and re.search(r"['\u2019]s$", span[0]):
                    by_length[0].append(span[0][:-2])
    for group in by_length:
        for text in group:
            spans.setdefault(text)
    return tuple(s for s in spans if s and not any(ord(c) < 0x20 for c in s))[:_MAX_SPANS]


_TEXT_SPAN_WORDS = 6
_MAX_TEXT_SPANS = 4000


def text_spans(text: str, *, max_words: int = _TEXT_SPAN_WORDS, limit: int = _MAX_TEXT_SPANS) -> tuple[str, ...]:
    """Word spans of ``text`` a string value extracted from it may be: every run of one to
    ``max_words`` words within a clause (not across punctuation) that neither starts nor ends
    with a stop word, as written (a possessive ``'s`` also dropped). At most ``limit``, the
    shortest first: the local model's extraction grammar lets a string be only one of these,
    so what it extracts is always words of the text.

    Example:
        >>> text_spans("Marie Curie, a chemist, worked in Paris.")
        ('Marie', 'Curie', 'chemist', 'worked', 'Paris', 'Marie Curie', 'worked in Paris')
    """
    by_length: list[list[str]] = [[] for _ in range(max_words)]
    for clause in re.split(r"[,;:!?()\[\]{}\"“”\n]+|\.(?:\s|$)", text):
        words = _WORD.findall(clause)
        for n in range(1, max_words + 1):
            for i in range(len(words) - n + 1):
                span = words[i : i + n]
                if span[0].lower() in _STOPWORDS or span[-1].lower() in _STOPWORDS:
                    continue
                by_length[n - 1].append(" ".join(span))
                if n == 1 and re.search(r"['\u2019]s$", span[0]):
                    by_length[0].append(span[0][:-2])
    spans: dict[str, None] = {}
    for group in by_length:
        for found in group:
            if found and not any(ord(c) < 0x20 for c in found):
                spans.setdefault(found)
    return tuple(spans)[:limit]


_ENTITY_NAME = re.compile(
    r"(?:^|_)(?:city|cities|country|countries|location|locations|place|places|name|names|id|ids|person|people|"
    r"company|companies|symbol|symbols|ticker|tickers|state|region|entity|username|user|team|player|artist|"
    r"movie|song|book|title|language|currency|airport|origin|destination)(?:$|_)",
    re.IGNORECASE,
)


_EXPRESSION_NAME = re.compile(r"(?:^|_)(?:expression|expr|formula|equation|calculation|arithmetic)(?:$|_)", re.I)


def names_expression(parameter: str) -> bool:
    """Whether a string parameter's name says it holds arithmetic (``expression``, ``formula``, ...)."""
    return bool(_EXPRESSION_NAME.search(parameter.replace("-", "_")))


def names_entity(parameter: str) -> bool:
    """Whether a parameter's name says it holds an entity (``city``, ``country_name``, ``user_id``, ...)."""
    return bool(_ENTITY_NAME.search(parameter.replace("-", "_")) or re.search(r"[a-z](Name|Id|City)$", parameter))


# --------------------------------------------------------------------------- paths into results

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INDEX = -(2**63)  # the step "an index into a list": ``[0]`` to ``[9]`` or ``[-1]``
_Accept = frozenset[str] | None
"""The JSON types a parameter takes (``None``: any value), which a path must end at."""


@dataclasses.dataclass(slots=True)
class _Trie:
    """Paths into a result, merged by step: ``ends`` holds the JSON types of the value a path
    ending here reaches (``None`` in it: a value of unknown type)."""

    children: dict[str | int, _Trie] = dataclasses.field(default_factory=dict)
    ends: set[str | None] = dataclasses.field(default_factory=set)


def result_paths(
    returns: Mapping[str, Any], *, max_steps: int, max_paths: int
) -> list[tuple[tuple[str | int, ...], frozenset[str] | None]]:
    """The paths a plan may write into a result of JSON Schema ``returns``, shortest first,
    each with the JSON types of the value it reaches (``None``: unknown).

    A step is an object's field (a key of ``properties``) or, for an array, an index (the
    marker ``_INDEX``). ``$ref``s into the schema's ``$defs`` are followed; an ``anyOf`` of one
    type and ``null`` (an optional field) is that type. At most ``max_steps`` steps and
    ``max_paths`` paths: a schema that nests without end still gives a bounded list.

    Example:
        >>> schema = {"type": "object", "properties": {"id": {"type": "string"},
        ...     "tags": {"type": "array", "items": {"type": "string"}}}}
        >>> [(path, sorted(types or ())) for path, types in result_paths(schema, max_steps=2, max_paths=9)]
        [(('id',), ['string']), (('tags',), ['array:string']), (('tags', -9223372036854775808), ['string'])]
    """
    found: list[tuple[tuple[str | int, ...], frozenset[str] | None]] = []
    level: list[tuple[tuple[str | int, ...], Mapping[str, Any]]] = [((), returns)]
    for _ in range(max_steps):
        deeper: list[tuple[tuple[str | int, ...], Mapping[str, Any]]] = []
        for path, schema in level:
            for step, sub in _steps(_plain(schema, returns)):
                if len(found) >= max_paths:
                    return found
                target = _plain(sub, returns)
                found.append(((*path, step), _json_types(target, returns)))
                deeper.append(((*path, step), target))
        level = deeper
    return found


def _plain(schema: Any, root: Mapping[str, Any]) -> Mapping[str, Any]:
    """``schema`` with its ``$ref`` followed and an optional (``anyOf`` of a type and null) unwrapped."""
    if not isinstance(schema, Mapping):
        return {}
    plain = deref_schema(schema, root)
    for key in ("anyOf", "oneOf"):
        members = plain.get(key)
        if isinstance(members, list):
            kept: list[Mapping[str, Any]] = [m for m in members if isinstance(m, Mapping) and m.get("type") != "null"]
            if len(kept) == 1:
                return deref_schema(kept[0], root)
    return plain


def _steps(schema: Mapping[str, Any]) -> list[tuple[str | int, Any]]:
    props = schema.get("properties")
    if isinstance(props, Mapping):
        return [(key, sub) for key, sub in props.items() if isinstance(key, str)]
    if schema.get("type") == "array" and isinstance(schema.get("items"), Mapping):
        return [(_INDEX, schema["items"])]
    return []


def _json_types(schema: Mapping[str, Any], root: Mapping[str, Any] | None = None, *, items: bool = True) -> _Accept:
    """The JSON types of a value of ``schema`` (``None``: unknown). An array whose items'
    types are known is ``array:<types>`` (``array:string``, ``array:integer|null``)."""
    kind = schema.get("type")
    kinds: set[str]
    if isinstance(kind, str):
        kinds = {kind}
    elif isinstance(kind, list) and kind and all(isinstance(k, str) for k in kind):
        kinds = set(kind)
    elif isinstance(schema.get("properties"), Mapping):
        kinds = {"object"}
    elif "enum" in schema and isinstance(schema["enum"], list):
        names = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}
        found = {names.get(type(v)) for v in schema["enum"]}
        if None in found or not found:
            return None
        kinds = {k for k in found if k is not None}
    else:
        return None
    member = schema.get("items")
    if items and "array" in kinds and isinstance(member, Mapping):
        of = _json_types(_plain(member, root or schema), root or schema, items=False)
        if of:
            kinds = (kinds - {"array"}) | {"array:" + "|".join(sorted(of))}
    return frozenset(kinds)


def _fits(wanted: str, found: str) -> bool:
    """Whether a parameter of JSON type ``wanted`` takes a value of type ``found``."""
    if wanted == found or (wanted == "number" and found == "integer"):
        return True
    wanted_kind, _, wanted_items = wanted.partition(":")
    found_kind, _, found_items = found.partition(":")
    if wanted_kind != "array" or found_kind != "array":
        return False
    if not wanted_items or not found_items:
        return True
    return all(any(_fits(w, f) for w in wanted_items.split("|")) for f in found_items.split("|"))


def _accepts(accept: _Accept, types: frozenset[str] | None) -> bool:
    """Whether a parameter that takes ``accept`` takes a value of JSON types ``types``."""
    if accept is None or types is None:
        return True
    return any(_fits(a, t) for a in accept for t in types)


def _accept_of(schema: Any) -> _Accept:
    """The JSON types a parameter of ``schema`` takes, or ``None`` for any value."""
    if not isinstance(schema, Mapping):
        return None
    return _json_types(schema)


def _step_node(step: str | int) -> Node:
    if isinstance(step, str):
        return Lit(_step_text(step))
    return seq(Lit("["), alt(_DIGIT, Lit("-1")), Lit("]"))  # the only int step is _INDEX


def _step_text(step: str) -> str:
    """A field step as a plan writes it: ``.name``, or ``["full name"]`` for a key that is no name."""
    return f".{step}" if _IDENTIFIER.fullmatch(step) else f"[{json.dumps(step, ensure_ascii=False)}]"


class _Paths:
    """The path rules of a plan grammar: for each tool that declares its result
    (``ToolSpec.returns``), and for the union of them all (a task whose tool is not known yet),
    the steps that may follow ``$N``, typed by what the parameter takes."""

    def __init__(self, g: Grammar, tools: Sequence[ToolSpec], limits: PlanLimits) -> None:
        self.g = g
        self.tries: dict[str, _Trie] = {}
        #: The JSON types of each declaring tool's whole result (``None``: unknown).
        self.results: dict[str, frozenset[str] | None] = {}
        union = _Trie()
        for tool in tools:
            if not isinstance(tool.returns, Mapping):
                continue
            self.results[tool.name] = _json_types(_plain(tool.returns, tool.returns), tool.returns)
            paths = result_paths(tool.returns, max_steps=limits.max_path, max_paths=limits.max_paths)
            if not paths:
                continue
            trie = _Trie()
            for path, types in paths:
                for target in (trie, union):
                    node = target
                    for step in path:
                        node = node.children.setdefault(step, _Trie())
                    node.ends.update(types if types is not None else {None})
            self.tries[tool.name] = trie
        self.union = union if union.children else None
        self._built: dict[tuple[str, _Accept], Node | None] = {}

    def after(self, tool: str | None, accept: _Accept) -> Node | None:
        """The path rule for a result of ``tool`` (``None``: any tool's) ending at a value
        ``accept`` takes; ``None`` when no path fits."""
        trie = self.union if tool is None else self.tries.get(tool)
        if trie is None:
            return None
        key = (tool or "", accept)
        if key not in self._built:
            hint = f"path-{tool or 'any'}-{_accept_hint(accept)}"
            self._built[key] = self._node(trie, accept, hint)
        return self._built[key]

    def texts(self, tool: str | None, accept: _Accept, limit: int) -> list[str] | None:
        """Every path ``after`` allows, as text (an index is ``[0]`` to ``[9]`` and ``[-1]``);
        None when there are more than ``limit``."""
        trie = self.union if tool is None else self.tries.get(tool)
        if trie is None:
            return []
        found: list[str] = []
        stack: list[tuple[str, _Trie]] = [("", trie)]
        while stack:
            prefix, node = stack.pop()
            for step, child in node.children.items():
                steps = [_step_text(step)] if isinstance(step, str) else [f"[{i}]" for i in (*range(10), -1)]
                for text in steps:
                    if any(_accepts(accept, None if t is None else frozenset({t})) for t in child.ends):
                        found.append(prefix + text)
                        if len(found) > limit:
                            return None
                    if child.children:
                        stack.append((prefix + text, child))
        return found

    def _node(self, trie: _Trie, accept: _Accept, hint: str) -> Node | None:
        options: list[Node] = []
        for step, child in trie.children.items():
            here = any(_accepts(accept, None if t is None else frozenset({t})) for t in child.ends)
            deeper = self._node(child, accept, hint)
            if deeper is not None:
                options.append(seq(_step_node(step), opt(deeper) if here else deeper))
            elif here:
                options.append(_step_node(step))
        if not options:
            return None
        return self.g.rule(hint, alt(*options))


def _accept_hint(accept: _Accept) -> str:
    return "any" if accept is None else "-".join(sorted(accept)) or "none"


class _PlanBuilder:
    def __init__(
        self,
        g: Grammar,
        limits: PlanLimits,
        grounding: Grounding | None = None,
        *,
        paths: _Paths | None = None,
        produced: Mapping[int, str] | None = None,
        refs_in_strings: bool = True,
    ) -> None:
        self.g = g
        self.limits = limits
        self.grounding = grounding
        self.paths = paths
        self.produced = dict(produced or {})
        lim = limits
        self.string = g.rule("string", _string(lim.max_string, refs=refs_in_strings))
        digits = seq(_DIGIT, rep(_DIGIT, 0, lim.max_digits - 1))
        self.integer = g.rule("integer", seq(opt(Lit("-")), digits))
        self.number = g.rule("number", seq(opt(Lit("-")), digits, opt(seq(Lit("."), _DIGIT, rep(_DIGIT, 0, 5)))))
        self.boolean = g.rule("boolean", alt(Lit("True"), Lit("False")))
        self.none = Lit("None")

    # values, for the task numbered ``idx`` (which may reference tasks below ``first_ref_limit``)
    def path(self, n: int, accept: _Accept) -> Node | None:
        """The steps that may follow ``$n`` where a value of ``accept`` types goes, or None."""
        if self.paths is None:
            return None
        if n in self.produced:
            return self.paths.after(self.produced[n], accept)
        return self.paths.after(None, accept)

    def path_texts(self, n: int, accept: _Accept, limit: int = 16) -> list[str] | None:
        """The paths ``path`` allows after ``$n``, as text; None when there are more than ``limit``."""
        if self.paths is None:
            return []
        return self.paths.texts(self.produced.get(n), accept, limit)

    def whole(self, n: int, accept: _Accept) -> bool:
        """Whether ``$n`` alone may go where a value of ``accept`` types goes: unless the tool
        that made task ``n`` is known and declares a result of another type (an object where a
        string goes: only a path into it fits)."""
        if self.paths is None or n not in self.produced or self.produced[n] not in self.paths.results:
            return True
        return _accepts(accept, self.paths.results[self.produced[n]])

    def ref(self, refs: Sequence[int], accept: _Accept = None) -> Node | None:
        """A rule: ``$N`` for each task in ``refs``, each followed by an optional path into its result."""
        node = self.ref_node(refs, accept)
        if node is None:
            return None
        suffix = "" if self.paths is None else f"-{_accept_hint(accept)}"
        return self.g.rule(f"ref{suffix}-{refs[-1]}", node)

    def ref_node(self, refs: Sequence[int], accept: _Accept = None) -> Node | None:
        """``$N`` for each task in ``refs``, each followed by an optional path (not a rule of its own)."""
        if not refs:
            return None
        by_path: dict[tuple[Node | None, bool], list[int]] = {}
        for n in refs:
            path, whole = self.path(n, accept), self.whole(n, accept)
            if path is not None or whole:
                by_path.setdefault((path, whole), []).append(n)
        options = []
        for (path, whole), numbers in by_path.items():
            number = alt(*(Lit(str(n)) for n in numbers))
            options.append(number if path is None else seq(number, opt(path) if whole else path))
        return seq(Lit("$"), alt(*options)) if options else None

    def with_ref(self, hint: str, node: Node, refs: Sequence[int], accept: _Accept = None) -> Node:
        ref = self.ref(refs, accept)
        if ref is None:
            return node
        if node is _NEVER:
            return ref
        return self.g.rule(f"{hint}-r{refs[-1]}", alt(node, ref))

    def scalar(self, refs: Sequence[int]) -> Node:
        literal = self.g.rule("literal", alt(self.string, self.number, self.boolean, self.none))
        return self.with_ref("scalar", literal, refs)

    def listing(self, hint: str, open_: str, item: Node, close: str) -> Node:
        more = rep(seq(Lit(", "), item), 0, self.limits.max_list - 1)
        return self.g.rule(hint, seq(Lit(open_), opt(seq(item, more)), Lit(close)))

    def mapping(self, refs: Sequence[int]) -> Node:
        """A dict literal with string keys and scalar values."""
        suffix = f"-r{refs[-1]}" if refs else ""
        return self.listing(f"dict{suffix}", "{", seq(self.string, Lit(": "), self.scalar(refs)), "}")

    def any_value(self, refs: Sequence[int]) -> Node:
        scalar = self.scalar(refs)
        suffix = f"-r{refs[-1]}" if refs else ""
        items = self.listing(f"list{suffix}", "[", scalar, "]")
        return self.g.rule(f"value{suffix}", alt(scalar, items, self.mapping(refs)))

    def expression(self, refs: Sequence[int]) -> Node:
        """A quoted arithmetic expression over ``$N`` references and the grounding's numbers:
        ``"$1 + $2"``, ``"100 * $1 / ($1 + $2)"``; parentheses one level deep. A number inside
        a result is spliced by its braced path: ``"${1.price} * 2"``."""
        assert self.grounding is not None
        literals = [f"${n}" for n in refs] + [n for n in self.grounding.numbers if not n.startswith("-")]
        suffix = f"-r{refs[-1]}" if refs else "-r0"
        if not literals:
            return _NEVER
        options: list[Node] = [Lit(text) for text in literals]
        numbers: frozenset[str] = frozenset({"number"})
        for n in refs:
            path = self.path(n, numbers)
            if path is not None:
                options.append(seq(Lit(f"${{{n}"), path, Lit("}")))
        operand = self.g.rule(f"operand{suffix}", alt(*options))
        op = self.g.rule("operator", alt(*(Lit(f" {o} ") for o in "+-*/")))
        group = self.g.rule(f"group{suffix}", seq(Lit("("), operand, rep(seq(op, operand), 1, 5), Lit(")")))
        term = self.g.rule(f"term{suffix}", alt(operand, group))
        body = seq(term, rep(seq(op, term), 0, 5))
        return self.g.rule(f"expression{suffix}", seq(Lit('"'), body, Lit('"')))

    def grounded(self, hint: str, literals: Iterable[str]) -> Node:
        """One of ``literals`` (a rule), or ``_NEVER`` when there are none."""
        unique = list(dict.fromkeys(literals))
        if not unique:
            return _NEVER
        return self.g.rule(hint, alt(*(Lit(text) for text in unique)))

    def typed(self, schema: Any, refs: Sequence[int], depth: int = 0, name: str = "") -> Node:
        """Values a parameter of JSON Schema ``schema`` accepts, or a reference.

        Under a grounding, numbers and entity strings are the grounding's (or the schema's
        default); ``_NEVER`` when no value can be written.
        """
        if not isinstance(schema, Mapping) or depth > 3:
            return self.any_value(refs)
        if "enum" in schema:
            literals = [lit for lit in (_python_literal(v) for v in schema["enum"]) if lit is not None]
            if literals:
                return self.with_ref("enum", alt(*(Lit(lit) for lit in literals)), refs, _json_types(schema))
            return self.any_value(refs)
        if "const" in schema:
            lit = _python_literal(schema["const"])
            if lit is not None:
                return self.with_ref("const", Lit(lit), refs, _json_types({"enum": [schema["const"]]}))
        for key in ("anyOf", "oneOf"):
            members = schema.get(key)
            if isinstance(members, list) and members:
                kept = [m for m in (self.typed(m, refs, depth + 1, name) for m in members) if m is not _NEVER]
                return self.g.rule("union", alt(*kept)) if kept else _NEVER
        kind = schema.get("type")
        kinds = kind if isinstance(kind, list) else [kind]
        if not kinds or None in kinds:
            return self.any_value(refs)
        ground = self.grounding
        default = _python_literal(schema["default"]) if "default" in schema else None
        defaults = [default] if default is not None else []
        options: list[Node] = []
        for k in kinds:
            if k == "string":
                if ground is not None and ground.spans and names_entity(name):
                    spans = [json.dumps(span, ensure_ascii=False) for span in ground.spans]
                    options.append(self.grounded("entity", [*spans, *defaults]))
                elif ground is not None and names_expression(name):
                    options.append(self.expression(refs))
                else:
                    options.append(self.string)
            elif k == "integer":
                if ground is None:
                    options.append(self.integer)
                else:
                    options.append(self.grounded("ground-integer", [*ground.integers, *defaults]))
            elif k == "number":
                if ground is None:
                    options.append(self.number)
                else:
                    options.append(self.grounded("ground-number", [*ground.numbers, *defaults]))
            elif k == "boolean":
                options.append(self.boolean)
            elif k == "null":
                options.append(self.none)
            elif k == "object":
                options.append(self.mapping(refs))
            elif k == "array":
                items = schema.get("items")
                item = self.typed(items, refs, depth + 1) if isinstance(items, Mapping) else self.scalar(refs)
                if item is _NEVER:
                    options.append(Lit("[]"))
                    continue
                hint = item.name if isinstance(item, Ref) else "items"
                options.append(self.listing(f"list-of-{hint}", "[", item, "]"))
            else:
                return self.any_value(refs)
        kept = [option for option in options if option is not _NEVER]
        return self.with_ref("typed", alt(*kept) if kept else _NEVER, refs, _accept_of(schema))

    def distinct_pair(self, tool: ToolSpec, refs: Sequence[int]) -> Node | None:
        """Under a grounding, a call of two required number parameters (``divide(a, b)``,
        ``add(a, b)``) that never passes the same ``$N`` to both: positional, ``x, y`` with
        ``y`` a number or another reference (``_NEVER`` when no such call can be written yet).
        None for every other call.

        A small model copies the last reference it wrote (``divide($1, $1)`` before it has
        looked up the second value); no question asks for ``x / x``. Two paths into one result
        (``divide($1.total, $1.count)``) are different values, and allowed.
        """
        props = tool.parameters.get("properties", {})
        if self.grounding is None or len(props) != 2:
            return None
        if set(tool.parameters.get("required", ())) != set(props):
            return None
        schemas = list(props.values())
        if not all(isinstance(p, Mapping) and p.get("type") in ("number", "integer") for p in schemas):
            return None
        a, b = (self.typed(p, (), name=n) for n, p in props.items())
        accept_a, accept_b = (_accept_of(p) for p in schemas)
        hint = f"{tool.name}-r{refs[-1] if refs else 0}"
        options: list[Node] = []
        if a is not _NEVER:
            options.append(seq(a, Lit(", "), self.with_ref(f"{hint}-b", b, refs, accept_b)))
        for r in refs:
            # What may follow "$r, ": a number, another task's reference, or a path into r's result.
            second: list[Node] = [] if b is _NEVER else [b]
            others = self.ref_node([n for n in refs if n != r], accept_b)
            if others is not None:
                second.append(others)
            own = self.path(r, accept_b)
            if self.whole(r, accept_a) and (second or own is not None):
                options.append(seq(Lit(f"${r}, "), alt(*second, *([seq(Lit(f"${r}"), own)] if own else []))))
            firsts, seconds = self.path_texts(r, accept_a), self.path_texts(r, accept_b)
            if firsts is not None and seconds is not None:
                # Few paths: each one first, then anything but the same path again.
                for text in firsts:
                    again = [Lit(f"${r}{other}") for other in seconds if other != text]
                    if self.whole(r, accept_b):
                        again.append(Lit(f"${r}"))
                    if second or again:
                        options.append(seq(Lit(f"${r}{text}, "), alt(*second, *again)))
                continue
            first = self.path(r, accept_a)
            then = self.with_ref(f"{hint}-b", b, refs, accept_b)
            if first is not None and then is not _NEVER:
                options.append(seq(Lit(f"${r}"), first, Lit(", "), then))  # many paths: one may come twice
        if not options:
            return _NEVER
        return seq(Lit(f"{tool.name}("), self.g.rule(f"args-{hint}", alt(*options)), Lit(")"))

    def call(self, tool: ToolSpec, refs: Sequence[int]) -> Node | None:
        """``name(arguments)`` for ``tool``: positional parameters first, then keywords.

        None when a required parameter has no value that can be written (under a grounding).
        """
        props = tool.parameters.get("properties", {})
        names = list(props)
        if not names:
            return Lit(f"{tool.name}()")
        required = set(tool.parameters.get("required", ()))
        pair = self.distinct_pair(tool, refs)
        if pair is not None:
            return None if pair is _NEVER else pair
        values = [self.typed(props[name], refs, name=name) for name in names]
        keywordable = [name.isidentifier() and not keyword.iskeyword(name) for name in names]
        suffix = f"r{refs[-1]}" if refs else "r0"
        tool_hint = f"{tool.name}-{suffix}"

        # tail(i, first): keyword arguments for parameters i.. in order; required ones must appear.
        tails: dict[tuple[int, bool], Node] = {}

        def tail(i: int, first: bool) -> Node:
            key = (i, first)
            if key in tails:
                return tails[key]
            if i == len(names):
                node: Node = Lit("")
            elif not keywordable[i] or values[i] is _NEVER:
                # Only positional (cannot follow a keyword argument), or nothing to write: skipped if optional.
                node = tail(i + 1, first) if names[i] not in required else _NEVER
            else:
                given = seq(Lit("" if first else ", "), Lit(f"{names[i]}="), values[i], tail(i + 1, False))
                if given is _NEVER or _contains_never(given):
                    given = _NEVER
                if names[i] in required:
                    node = given
                else:
                    rest = tail(i + 1, first)
                    node = _alt_skip_never(given, rest)
            if node is not _NEVER and not (isinstance(node, Lit) and not node.text):
                node = self.g.rule(f"kw-{tool_hint}-{i}{'f' if first else ''}", node)
            tails[key] = node
            return node

        forms: list[Node] = []
        for j in range(len(names) + 1):
            if j and values[j - 1] is _NEVER:
                break  # no positional form reaches past a parameter with nothing to write
            positional = [values[m] if m == 0 else seq(Lit(", "), values[m]) for m in range(j)]
            rest = tail(j, j == 0)
            if rest is _NEVER:
                continue
            forms.append(seq(*positional, rest))
        if not forms:
            return None
        # Prefer the positional form of every parameter: listed first, it is what examples show.
        forms.reverse()
        args = self.g.rule(f"args-{tool_hint}", alt(*forms))
        return seq(Lit(f"{tool.name}("), args, Lit(")"))


_NEVER = Lit("\x00never\x00")  # a marker for "no text can follow"; never rendered


def _contains_never(node: Node) -> bool:
    return isinstance(node, Seq) and any(item is _NEVER for item in node.items)


def _alt_skip_never(*options: Node) -> Node:
    kept = [o for o in options if o is not _NEVER]
    return alt(*kept) if kept else _NEVER


def _python_literal(value: Any) -> str | None:
    """``value`` as the plan language writes it, or None when it cannot be a literal there."""
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int | float):
        text = repr(value)
        return text if re.fullmatch(r"-?\d+(\.\d+)?(e[-+]?\d+)?", text) else None
    if isinstance(value, str):
        if any(ord(c) < 0x20 for c in value):
            return None
        return json.dumps(value, ensure_ascii=False)
    return None


def plan_grammar(
    tools: Iterable[ToolSpec],
    *,
    first_idx: int = 1,
    limits: PlanLimits | None = None,
    grounding: Grounding | None = None,
    produced: Mapping[int, str] | None = None,
    resume_at: int | None = None,
) -> Grammar:
    """A grammar of plans over ``tools`` whose tasks are numbered from ``first_idx``.

    A plan is one to ``limits.max_tasks`` lines ``N. tool(arguments)``, each optionally after
    one ``Thought: ...`` line, then ``N. join()``. Task numbers run ``first_idx``,
    ``first_idx + 1``, ...; a ``$M`` reference names a task of an earlier round (below
    ``first_idx``) or an earlier line of this plan.

    A reference may be followed by a path into the result (``$1.entityId``, ``$2.items[0].id``)
    when the result's shape is declared (``ToolSpec.returns``): after ``$M`` whose tool is
    known (``produced``), exactly the paths of that tool's result; after one whose tool is not
    known yet (an earlier line of this plan), the paths of any tool's result. Either way only
    the paths that end at a value the parameter takes (a string for a ``str`` parameter, ...).
    Without declared results no path is offered: a field guessed at is an error at run time.

    Args:
        tools: the tools the plan may call (names may contain dots).
        first_idx: the number of the plan's first task (a replan continues the numbering).
        limits: bounds on the plan's size.
        grounding: restrict number and entity arguments to these values (see ``Grounding``).
            A task position where no tool can be written under it (no number yet, no ``$N``)
            falls back to the ungrounded calls, so a plan can always be written.
        produced: the tool that made each known task (earlier rounds, or lines of this plan
            already written), by task number: a path after its ``$M`` follows that tool's result.
        resume_at: the grammar of the rest of a plan whose tasks ``first_idx`` to
            ``resume_at - 1`` are written (lines ending in a newline): task ``resume_at`` or
            ``join()``, within the same ``max_tasks``. A decoder that knows the tools of the
            lines written so far narrows the paths with it (see ``produced``).

    Raises:
        ValueError: no tools, ``first_idx`` below 1, or ``resume_at`` outside the plan.
    """
    lim = limits or PlanLimits()
    tools = list(tools)
    if not tools:
        raise ValueError("a plan grammar needs at least one tool")
    if first_idx < 1:
        raise ValueError(f"first_idx must be 1 or more, got {first_idx}")
    if lim.max_tasks < 1:
        raise ValueError(f"max_tasks must be 1 or more, got {lim.max_tasks}")
    if resume_at is not None and not first_idx < resume_at <= first_idx + lim.max_tasks:
        raise ValueError(f"resume_at must follow a written task of the plan, got {resume_at}")
    g = Grammar()
    paths = _Paths(g, tools, lim)
    known = paths if paths.results else None
    b = _PlanBuilder(g, lim, grounding, paths=known, produced=produced)
    free = _PlanBuilder(g, lim, paths=known, produced=produced) if grounding is not None else b
    thought: Node = _EMPTY
    if lim.thoughts:
        thought = opt(g.rule("thought", seq(Lit("Thought: "), _text(lim.max_thought, exclude="()<"), Lit("\n"))))
    last = first_idx + lim.max_tasks
    start = first_idx if resume_at is None else resume_at
    # rest-N: what may follow once the tasks below N are written: task N and more, or join() as N.
    if start == last:
        g.define("root", seq(thought, Lit(f"{last}. join()")))
        return g
    g.define(f"rest-{last}", seq(thought, Lit(f"{last}. join()")))
    for idx in range(last - 1, start - 1, -1):
        refs = list(range(1, idx))
        calls = [c for c in (b.call(t, refs) for t in tools) if c is not None]
        if not calls:
            calls = [c for c in (free.call(t, refs) for t in tools) if c is not None]
        call = g.rule(f"call-r{refs[-1] if refs else 0}", alt(*calls))
        task = seq(thought, Lit(f"{idx}. "), call, Lit("\n"), Ref(f"rest-{idx + 1}"))
        if idx == first_idx:
            g.define("root", task)  # at least one tool call before join()
        elif idx == start:
            g.define("root", alt(task, seq(thought, Lit(f"{idx}. join()"))))
        else:
            g.define(f"rest-{idx}", alt(task, seq(thought, Lit(f"{idx}. join()"))))
    return g


_TASK_LINE = re.compile(r"^(\d+)\. ([A-Za-z_][A-Za-z0-9_.]*)\(", re.MULTILINE)


def written_tasks(text: str) -> dict[int, str]:
    """The tool of each task line of ``text`` (a plan written under a plan grammar), by number.

    Example:
        >>> written_tasks('Thought: find both.\\n1. airport("NYC")\\n2. flights($1.entityId)\\n')
        {1: 'airport', 2: 'flights'}
    """
    return {int(m.group(1)): m.group(2) for m in _TASK_LINE.finditer(text)}


# --------------------------------------------------------------------------- joiner grammar


def join_grammar(*, allow_replan: bool = True, max_thought: int = 160, max_answer: int = 300) -> Grammar:
    """A grammar of joiner replies: ``Thought: ...`` then ``Action: Finish(answer)`` (or ``Replan(why)``).

    The thought, answer and feedback are single lines without parentheses, so the action's
    argument ends at its own ``)``; the answer starts with neither a space nor a quote, so it
    cannot read as empty.

    Args:
        allow_replan: offer ``Replan(...)`` besides ``Finish(...)``.
        max_thought: characters in the thought (and in a replan's feedback).
        max_answer: characters in the answer.
    """
    g = Grammar()
    thought = g.rule("thought", _text(max_thought, exclude="()"))
    answer = g.rule("answer", _text(max_answer, exclude="()", exclude_first="\"'`"))
    actions: list[Node] = [seq(Lit("Finish("), answer, Lit(")"))]
    if allow_replan:
        actions.append(seq(Lit("Replan("), thought, Lit(")")))
    g.define("root", seq(Lit("Thought: "), thought, Lit("\nAction: "), alt(*actions)))
    return g


def extractive_join_grammar(
    answers: Sequence[str],
    *,
    allow_replan: bool = True,
    thought: bool = True,
    max_thought: int = 100,
) -> Grammar:
    """A grammar of joiner replies whose answer is one of ``answers``, written verbatim.

    ``Thought: ...`` (unless ``thought`` is false) then ``Action: Finish(answer)`` with the
    answer one of the fixed literals ``answers``, or ``Action: Replan(why)``. The model chooses
    an answer; it cannot write a value of its own.

    Args:
        answers: the candidate answers, each one line whose parentheses never close more
            than they opened (``extractive_answers`` in ``_llamacpp`` assembles them from results).
        allow_replan: offer ``Replan(...)`` besides ``Finish(...)``.
        thought: start with a ``Thought:`` line.
        max_thought: characters in the thought (and in a replan's feedback).

    Raises:
        ValueError: no candidate answer.
    """
    if not answers:
        raise ValueError("an extractive answer needs at least one candidate")
    g = Grammar()
    text = g.rule("thought", _text(max_thought, exclude="()"))
    answer = g.rule("answer", alt(*(Lit(a) for a in dict.fromkeys(answers))))
    actions: list[Node] = [seq(Lit("Finish("), answer, Lit(")"))]
    if allow_replan:
        actions.append(seq(Lit("Replan("), text, Lit(")")))
    start = seq(Lit("Thought: "), text, Lit("\n")) if thought else _EMPTY
    g.define("root", seq(start, Lit("Action: "), alt(*actions)))
    return g


# --------------------------------------------------------------------------- ReAct step grammar


def react_grammar(
    tools: Iterable[ToolSpec],
    *,
    limits: PlanLimits | None = None,
    max_thought: int = 100,
    max_answer: int = 300,
) -> Grammar:
    """A grammar of one ReAct step: ``Thought: ...`` then ``Action: tool(arguments)`` or ``Action: Finish(answer)``.

    The call is one of ``tools`` with arguments as a plan writes them (positional, then by
    keyword, typed by the parameter's schema), without ``$N`` references, whole, with a path
    or inside a string: a ReAct step reads the observations and writes values. The thought and
    the answer are single lines without parentheses, so the answer ends at its own ``)``.

    Args:
        tools: the tools the step may call (names may contain dots).
        limits: bounds on argument values (strings, lists, numbers); ``max_tasks`` and
            ``thoughts`` do not apply.
        max_thought: characters in the thought.
        max_answer: characters in the answer.

    Raises:
        ValueError: no tools.
    """
    tools = list(tools)
    if not tools:
        raise ValueError("a ReAct grammar needs at least one tool")
    g = Grammar()
    b = _PlanBuilder(g, limits or PlanLimits(), refs_in_strings=False)
    # Not starting with "*" or "_": the ReAct reader takes them for markdown around the label.
    thought = g.rule("thought", _text(max_thought, exclude="()", exclude_first="*_"))
    answer = g.rule("answer", _text(max_answer, exclude="()", exclude_first="\"'`"))
    call = g.rule("call", alt(*(c for c in (b.call(t, ()) for t in tools) if c is not None)))
    finish = seq(Lit("Finish("), answer, Lit(")"))
    g.define("root", seq(Lit("Thought: "), thought, Lit("\nAction: "), alt(call, finish)))
    return g
