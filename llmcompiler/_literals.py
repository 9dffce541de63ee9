"""Argument lists of plan calls: Python literals plus ``$N`` references, parsed without ``eval``.

``parse_arguments('"x", n=3, ctx=[$1, "${2} m"]', ...)`` gives the positional values, the
keyword values and the tasks referenced. A reference that is a whole argument or a whole
container element becomes a ``Ref`` (the dependency's result is passed as it is, with its
type); a reference inside a string makes the string a ``Template`` (the result is spliced in
as text). Inside a string, ``$N`` that names no earlier task stays as written, so
``"games priced $20-$30"`` survives.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Container
from typing import Any

__all__ = ["ArgumentSyntaxError", "Arguments", "Ref", "Template", "parse_arguments", "resolve", "to_text"]


@dataclasses.dataclass(frozen=True, slots=True)
class Ref:
    """The result of task ``idx``, passed with its own type."""

    idx: int

    def __repr__(self) -> str:
        return f"${self.idx}"


@dataclasses.dataclass(frozen=True, slots=True)
class Template:
    """A string with the results of earlier tasks spliced in as text."""

    parts: tuple[str | Ref, ...]

    def __repr__(self) -> str:
        return repr("".join(p if isinstance(p, str) else f"${{{p.idx}}}" for p in self.parts))


@dataclasses.dataclass(frozen=True, slots=True)
class Arguments:
    """A parsed argument list."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    deps: frozenset[int]


class ArgumentSyntaxError(ValueError):
    """An argument list that is not Python literals and ``$N`` references."""


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|\#[^\n]*)
   |(?P<str>(?:[rRuUbB]|[rR][bB]|[bB][rR])?(?:"[^"\\\n]*(?:\\.[^"\\\n]*)*"|'[^'\\\n]*(?:\\.[^'\\\n]*)*'))
   |(?P<ref>\$\{\s*\d+\s*\}|\$\d+)
   |(?P<num>[-+]?(?:0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+
        |(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][-+]?\d+)?)(?![\w.]))
   |(?P<name>[A-Za-z_]\w*)
   |(?P<op>[()\[\]{},:=])
   |(?P<bad>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_CONSTANTS: dict[str, Any] = {
    "True": True,
    "False": False,
    "None": None,
    "true": True,
    "false": False,
    "null": None,
}
_ESCAPE = re.compile(r"\\(N\{[^}]*\}|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{1,3}|\n|.)", re.DOTALL)
_SIMPLE_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "0": "\0",
    "\n": "",
}
_TEXT_REF = re.compile(r"\$\{(\d+)\}|\$(\d+)")
_CLOSE = {"(": ")", "[": "]", "{": "}"}


def parse_arguments(text: str, *, idx: int, known: Container[int]) -> Arguments:
    """Parse the text between a call's parentheses.

    Args:
        text: the argument list, e.g. ``'"x", limit=3'``.
        idx: the number of the task being parsed (it may not reference itself).
        known: numbers of the tasks that exist before this one.

    Raises:
        ArgumentSyntaxError: naming what is wrong.
    """
    if not text or text.isspace():
        return Arguments((), {}, _NO_DEPS)  # the commonest call, ``tool()``: skip the tokenizer
    return _Parser(text, idx, known).arguments()


_NO_DEPS: frozenset[int] = frozenset()


class _Parser:
    __slots__ = ("deps", "idx", "known", "pos", "text", "tokens")

    def __init__(self, text: str, idx: int, known: Container[int]) -> None:
        self.text = text
        self.idx = idx
        self.known = known
        self.deps: set[int] = set()
        self.tokens = _tokenize(text)
        self.pos = 0

    # -- token helpers
    def peek(self, ahead: int = 0) -> tuple[str, str]:
        i = self.pos + ahead
        return self.tokens[i] if i < len(self.tokens) else ("end", "")

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        self.pos += 1
        return tok

    def expect(self, op: str) -> None:
        kind, value = self.take()
        if kind != "op" or value != op:
            raise ArgumentSyntaxError(f"expected {op!r} but found {_show(kind, value)}")

    # -- grammar
    def arguments(self) -> Arguments:
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        while self.peek()[0] != "end":
            kind, value = self.peek()
            if kind == "name" and self.peek(1) == ("op", "="):
                self.pos += 2
                if value in kwargs:
                    raise ArgumentSyntaxError(f"argument {value!r} is given twice")
                kwargs[value] = self.value()
            else:
                if kwargs:
                    raise ArgumentSyntaxError("a positional argument follows a keyword argument")
                args.append(self.value())
            if self.peek()[0] == "end":
                break
            self.expect(",")
        return Arguments(tuple(args), kwargs, frozenset(self.deps))

    def value(self) -> Any:
        kind, text = self.take()
        if kind == "str":
            parts = [_decode_string(text)]
            while self.peek()[0] == "str":  # implicit concatenation: "a" "b"
                parts.append(_decode_string(self.take()[1]))
            return self.template("".join(parts))
        if kind == "num":
            return _number(text)
        if kind == "ref":
            ref = int(text.strip("${} "))
            self.check_ref(ref)
            self.deps.add(ref)
            return Ref(ref)
        if kind == "name":
            if text in _CONSTANTS:
                return _CONSTANTS[text]
            raise ArgumentSyntaxError(f"unknown name {text!r}: strings need quotes")
        if kind == "op" and text in _CLOSE:
            return self.container(text)
        raise ArgumentSyntaxError(f"expected a value but found {_show(kind, text)}")

    def container(self, opener: str) -> Any:
        closer = _CLOSE[opener]
        items: list[Any] = []
        pairs: dict[Any, Any] = {}
        is_dict = opener == "{" and self.peek() != ("op", "}")
        saw_comma = False
        while self.peek() != ("op", closer):
            if self.peek()[0] == "end":
                raise ArgumentSyntaxError(f"{opener!r} is not closed")
            if opener == "{":
                key = self.value()
                if self.peek() == ("op", ":"):
                    if not is_dict or items:
                        raise ArgumentSyntaxError("a set literal cannot hold key: value pairs")
                    self.pos += 1
                    try:
                        pairs[key] = self.value()
                    except TypeError:
                        raise ArgumentSyntaxError(f"dict key {key!r} is not hashable") from None
                else:
                    if pairs:
                        raise ArgumentSyntaxError("a dict entry needs 'key: value'")
                    is_dict = False
                    items.append(key)
            else:
                items.append(self.value())
            if self.peek() == ("op", closer):
                break
            self.expect(",")
            saw_comma = True
        self.pos += 1
        if opener == "[":
            return items
        if opener == "(":
            if len(items) == 1 and not saw_comma:
                return items[0]  # parentheses around one value group it
            return tuple(items)
        if is_dict or not items:
            return pairs
        try:
            return set(items)
        except TypeError:
            raise ArgumentSyntaxError("a set literal holds an unhashable value") from None

    def check_ref(self, ref: int) -> None:
        if ref == self.idx:
            raise ArgumentSyntaxError(f"${ref} refers to this task itself")
        if ref > self.idx:
            raise ArgumentSyntaxError(f"${ref} refers to task {ref}, which comes later in the plan")
        if ref not in self.known:
            raise ArgumentSyntaxError(f"${ref} refers to task {ref}, which does not exist")

    def template(self, text: str) -> str | Template:
        if "$" not in text:
            return text
        parts: list[str | Ref] = []
        last = 0
        for m in _TEXT_REF.finditer(text):
            ref = int(m.group(1) or m.group(2))
            if ref >= self.idx or ref not in self.known:
                continue  # not an earlier task: "$20" is money, not a reference
            if m.start() > last:
                parts.append(text[last : m.start()])
            parts.append(Ref(ref))
            self.deps.add(ref)
            last = m.end()
        if not parts:
            return text
        if last < len(text):
            parts.append(text[last:])
        return Template(tuple(parts))


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "bad"
        if kind == "ws":
            continue
        value = m.group()
        if kind == "bad":
            if value in "\"'":
                raise ArgumentSyntaxError(f"unterminated string starting at {text[m.start() :][:30]!r}")
            raise ArgumentSyntaxError(f"unexpected character {value!r} at {text[m.start() :][:30]!r}")
        tokens.append((kind, value))
    return tokens


def _decode_string(token: str) -> str:
    prefix_len = 0
    while token[prefix_len] not in "\"'":
        prefix_len += 1
    prefix = token[:prefix_len].lower()
    body = token[prefix_len + 1 : -1]
    if "r" in prefix or "\\" not in body:
        return body
    return _ESCAPE.sub(_unescape, body)


def _unescape(m: re.Match[str]) -> str:
    code = m.group(1)
    if code in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[code]
    head = code[0]
    if head in "xuU":
        return chr(int(code[1:], 16))
    if head == "N":
        import unicodedata

        try:
            return unicodedata.lookup(code[2:-1])
        except KeyError:
            raise ArgumentSyntaxError(f"unknown character name in \\{code}") from None
    if head.isdigit():
        return chr(int(code, 8))
    return "\\" + code  # unknown escapes stay as written, as in Python


def _number(text: str) -> int | float:
    if text.isdecimal():  # the common case: plain digits (what _TOKEN's \d matches), read by int()
        return int(text)
    clean = text.replace("_", "")
    try:
        lowered = clean.lower().lstrip("+-")
        if lowered.startswith(("0x", "0o", "0b")):
            value = int(clean, 0)
        elif any(c in lowered for c in ".e"):
            return float(clean)
        else:
            value = int(clean)
    except ValueError:
        raise ArgumentSyntaxError(f"{text!r} is not a number") from None
    return value


def _show(kind: str, value: str) -> str:
    return "the end of the arguments" if kind == "end" else repr(value)


# --------------------------------------------------------------------------- resolution


def resolve(value: Any, result_of: Callable[[int], Any]) -> Any:
    """Replace every ``Ref`` and ``Template`` in ``value`` with the results they name."""
    if isinstance(value, Ref):
        return result_of(value.idx)
    if isinstance(value, Template):
        return "".join(p if isinstance(p, str) else to_text(result_of(p.idx)) for p in value.parts)
    if isinstance(value, list):
        return [resolve(v, result_of) for v in value]
    if isinstance(value, tuple):
        return tuple(resolve(v, result_of) for v in value)
    if isinstance(value, dict):
        return {resolve(k, result_of): resolve(v, result_of) for k, v in value.items()}
    if isinstance(value, set):
        return {resolve(v, result_of) for v in value}
    return value


def to_text(value: Any) -> str:
    """How a result reads when spliced into a string or shown to a model."""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list, tuple)):
        try:
            return json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            return str(value)
    dump = getattr(value, "model_dump_json", None)
    if callable(dump):
        return str(dump())
    return str(value)
