"""Argument lists of plan calls: Python literals plus ``$N`` references, parsed without ``eval``.

``parse_arguments('"x", n=3, ctx=[$1, "${2} m"]', ...)`` gives the positional values, the
keyword values and the tasks referenced. A reference that is a whole argument or a whole
container element becomes a ``Ref`` (the dependency's result is passed as it is, with its
type); a reference inside a string makes the string a ``Template`` (the result is spliced in
as text). Inside a string, ``$N`` that names no earlier task stays as written, so
``"games priced $20-$30"`` survives.

**Paths.** A reference may name a value inside a result: ``$2.entityId``, ``$2["entity id"]``,
``$3[0]``, ``$3[-1].name``, ``$1.items[2]["id"]``; ``${2}.skyId`` and ``${2.skyId}`` are
``$2.skyId``. A step is ``.name`` (a letter or ``_``, then letters, digits and ``_``; any
script), ``["key"]`` or ``['key']`` (escapes as in any string) or ``[n]`` (decimal digits, a
sign allowed, at most 18 digits); a path has at most ``MAX_DEPTH`` steps. Blanks may stand
around a step's parts, as in Python (``$2 . x [ 0 ]`` is ``$2.x[0]``). Inside a string only the
braced form has a path, ``"from ${1.entityId} on"``; a bare ``"$1.50"`` is task 1's result
then ``.50``. A braced ``"${N"`` naming an earlier task and followed by ``.`` or ``[`` must be
a path closed by ``}``; anything else there (``"${1.}"``, ``"${1[x]}"``) fails the task, while
``"${1:-x}"`` stays text. A path that does not parse raises ``PathSyntaxError`` saying why
(``$2.: a '.' needs a field name after it``, ``$2[1.5]: an index is a whole number``).
``follow`` reads a path in a result: see its docstring for what a step may read.

Model-written text is read as the model meant it wherever that is clear, and otherwise fails
only its own task; nothing here raises anything but the documented errors, for any input:

- **Escapes.** ``\\n``, ``\\x41``, ``\\u00e9``, ``\\U0001F600``, octal and ``\\N{name}`` are
  decoded when they name a real character. Any other escape stays as written, backslash and
  all, as Python keeps ``"\\d"``: a Windows path ``"C:\\users\\x"`` (``\\u`` without four hex
  digits, ``\\x`` without two), ``\\U00110000`` (beyond U+10FFFF), ``\\N{no such name}``, and a
  lone surrogate such as ``\\ud800``, so no parsed string ever holds one. A JSON-style
  surrogate pair ``\\ud83d\\ude00`` is the one character it encodes. An escape never fails a
  task.
- **Numbers.** A number token longer than ``sys.get_int_max_str_digits()`` characters (4300
  when that limit is off), in any base, fails its task; ``int()`` is never asked to convert it.
- **Task numbers** have at most ``MAX_TASK_DIGITS`` digits. ``$N`` with more fails its task;
  inside a string it names no task, so ``"cost $<5,000 digits>"`` stays text.
- **Brackets.** A closing bracket that does not match the open one (``(x="a"], y=2)``) is a
  bracket mismatch; containers nested deeper than ``MAX_DEPTH`` fail the task.
- **Invisible characters** (BOM U+FEFF, zero-width space/non-joiner/joiner U+200B to U+200D,
  word joiner U+2060) are blanks between tokens. Inside a string they are the model's text
  and are kept: a zero-width joiner builds emoji sequences and some scripts need it.
- Error messages quote model text shortened with an ellipsis, never whole.

Resolution (``resolve``, ``follow``, ``to_text``) reads paths and splices results into
strings; a path that leads nowhere (``$2.entityId: no key 'entityId'; keys: id, name``) or a
result that cannot be written as text (an int beyond the digit limit, a list nested too
deeply, an object whose ``__str__`` raises) raises ``ResolveError`` naming the reference, and
nothing else.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import math
import re
import sys
from collections.abc import Callable, Container, Mapping
from types import ModuleType
from typing import Any

from llmcompiler._redact import is_secret_name, scrub
from llmcompiler._text import describe, one_line, safe_text

__all__ = [
    "INVISIBLE",
    "MAX_DEPTH",
    "MAX_TASK_DIGITS",
    "ArgumentSyntaxError",
    "Arguments",
    "PathSyntaxError",
    "Ref",
    "ResolveError",
    "Step",
    "Template",
    "clip",
    "follow",
    "parse_arguments",
    "path_text",
    "resolve",
    "to_text",
]

MAX_DEPTH = 100
"""How deeply containers may nest in one argument list."""

MAX_TASK_DIGITS = 9
"""The most digits a task number (``N. tool(...)``, ``$N``) may have."""

_DEFAULT_MAX_DIGITS = 4300  # CPython's default int/str conversion limit
INVISIBLE = "\ufeff\u200b\u200c\u200d\u2060"
"""Format characters a model emits by accident: BOM, zero-width space/non-joiner/joiner, word joiner."""


def clip(text: str, limit: int = 200) -> str:
    """``text`` shortened to about ``limit`` characters, its middle replaced by an ellipsis."""
    if len(text) <= limit:
        return text
    half = max(limit // 2 - 10, 1)
    return f"{text[:half]}…({len(text) - 2 * half} characters)…{text[-half:]}"


_SAFE_DIGITS = 640  # the lowest limit Python allows (sys.int_info.str_digits_check_threshold)


def _max_digits() -> int:
    return sys.get_int_max_str_digits() or _DEFAULT_MAX_DIGITS


Step = str | int
"""One step of a reference's path: a field (a mapping's key or an object's field) or an index."""

_FIELD = re.compile(r"[^\W\d]\w*")  # a field name written after ".": a letter or "_", then letters, digits, "_"


@dataclasses.dataclass(frozen=True, slots=True)
class Ref:
    """The result of task ``idx``, or the value at ``path`` inside it, passed with its own type.

    A ``str`` step is a field: a mapping's key, or an object's field (a dataclass or pydantic
    field, or an entry of the instance's ``__dict__``). An ``int`` step is a list or tuple index
    (negative counts from the end), or an int key of a mapping. ``repr`` writes the reference
    as a plan writes it: ``Ref(1, ("items", 2, "id"))`` is ``$1.items[2].id``, and a key that
    is not a name is quoted, ``Ref(2, ("entity id",))`` is ``$2["entity id"]``.

    Example:
        >>> Ref(3, (-1, "name"))
        $3[-1].name
    """

    idx: int
    path: tuple[Step, ...] = ()

    def __repr__(self) -> str:
        if not self.path:
            return f"${self.idx}"
        return f"${self.idx}{path_text(self.path)}"


def path_text(path: tuple[Step, ...]) -> str:
    """A path as a plan writes it after ``$N``: ``.name`` for a name, ``["..."]`` for another key, ``[n]`` for an index.

    Example:
        >>> path_text(("items", 2, "entity id"))
        '.items[2]["entity id"]'
    """
    parts: list[str] = []
    for step in path:
        if isinstance(step, str):
            if _FIELD.fullmatch(step):
                parts.append(f".{step}")
            else:
                parts.append(f"[{json.dumps(step, ensure_ascii=False)}]")
        else:
            parts.append(f"[{int(step)}]")
    return "".join(parts)


@dataclasses.dataclass(frozen=True, slots=True)
class Template:
    """A string with the results of earlier tasks (or values inside them) spliced in as text.

    ``repr`` writes the braced form: ``'flights from ${1.entityId}'``.
    """

    parts: tuple[str | Ref, ...]

    def __repr__(self) -> str:
        return repr("".join(p if isinstance(p, str) else f"${{{repr(p)[1:]}}}" for p in self.parts))


@dataclasses.dataclass(frozen=True, slots=True)
class Arguments:
    """A parsed argument list."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    deps: frozenset[int]


class ArgumentSyntaxError(ValueError):
    """An argument list that is not Python literals and ``$N`` references."""


class PathSyntaxError(ArgumentSyntaxError):
    """A reference's path that does not parse (``$2.``, ``$2[1.5]``, ``"${1.x"``).

    Reported as it is, not as the character that starts no token (the lone ``.`` of ``$2.``).
    """


class ResolveError(ValueError):
    """A path that leads nowhere, or a result that cannot be spliced into text; the message
    names the reference (``$N``, ``$2.entityId``)."""


_BLANK = rf"[\s{INVISIBLE}]"
_STR = r"""(?:[rRuUbB]|[rR][bB]|[bB][rR])?(?:"[^"\\\n]*(?:\\.[^"\\\n]*)*"|'[^'\\\n]*(?:\\.[^'\\\n]*)*')"""
_Q2 = r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"'
_Q1 = r"'[^'\\\n]*(?:\\.[^'\\\n]*)*'"
# A path after "$N": steps ".name", "[0]", "[-1]", '["key"]', blanks allowed around each part (as
# Python allows "a . b [0]"). Possessive, so a step that fails is never tried again.
_KEY = rf"{_Q2}|{_Q1}|[-+]?\d+"
_PATH = rf"(?:{_BLANK}*+(?:\.{_BLANK}*+{_FIELD.pattern}|\[{_BLANK}*+(?:{_KEY}){_BLANK}*+\]))*+"
_STEP = re.compile(rf"{_BLANK}*+(?:\.{_BLANK}*+({_FIELD.pattern})|\[{_BLANK}*+({_KEY}){_BLANK}*+\])")
_REF = rf"\$\{{{_BLANK}*+\d+{_PATH}{_BLANK}*+\}}{_PATH}|\$\d+{_PATH}"
_NUM = r"""[-+]?(?:0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+
        |(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][-+]?\d+)?)(?![\w.])"""
_NAME = r"[A-Za-z_]\w*"
_OP = r"[()\[\]{},:=]"
# The tokenizer the error messages come from: one match object per token, so a character that
# starts no token ("bad") is reported with where it is.
_TOKEN = re.compile(
    rf"""
    (?P<ws>{_BLANK}+|\#[^\n]*)
   |(?P<str>{_STR})
   |(?P<ref>{_REF})
   |(?P<num>{_NUM})
   |(?P<name>{_NAME})
   |(?P<op>{_OP})
   |(?P<bad>.)
    """,
    re.VERBOSE | re.DOTALL,
)
# The same tokens as one list of strings, built in C: blanks and comments skipped (possessively,
# so nothing is ever rescanned), a character that starts no token captured alone, and "" at the
# end. A token's kind follows from its text (see _Parser); the few that could be read two ways
# (a "bad" digit, as in "1abc") only ever make the parse fail, and a failed parse asks _TOKEN.
# Each alternative starts with a literal or a character class, which the regex engine tests
# before entering it; the string prefixes are _STR's, and a name comes after them.
_NUM_BODY = _NUM.removeprefix("[-+]?")
_TOKENS = re.compile(
    rf"""
    {_BLANK}*+(?:\#[^\n]*{_BLANK}*+)*+
    ( {_OP} | {_Q2} | {_Q1} | [-+]{_NUM_BODY} | {_NUM_BODY}
    | [rR][bB]?(?:{_Q2}|{_Q1}) | [bB][rR]?(?:{_Q2}|{_Q1}) | [uU](?:{_Q2}|{_Q1})
    | {_NAME} | {_REF} | . | \Z )
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
# A Unicode name is letters, digits, spaces and hyphens, at most 88 characters: bounding it keeps
# the scan of an unclosed "\N{" short. A surrogate pair is tried before a single "\u" escape.
_ESCAPE = re.compile(
    r"""\\(
        N\{[A-Za-z0-9 \-]{1,100}\}
       |x[0-9a-fA-F]{2}
       |u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}
       |u[0-9a-fA-F]{4}
       |U[0-9a-fA-F]{8}
       |[0-7]{1,3}
       |\n
       |.)""",
    re.VERBOSE | re.DOTALL,
)
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
# In a string: "${N<path>}" (groups 1, 2); "${N" followed by "." or "[" that is no path closed
# by "}" (group 3); bare "$N", never with a path: "$1.50" is a price (group 4).
_TEXT_REF = re.compile(rf"\$\{{{_BLANK}*+(\d+)({_PATH}){_BLANK}*+\}}|\$\{{{_BLANK}*+(\d+){_BLANK}*+(?=[.\[])|\$(\d+)")
_REF_PARTS = re.compile(rf"\$(?:\{{{_BLANK}*+(\d+)({_PATH}){_BLANK}*+\}}|(\d+))({_PATH})")
_INDEX_DIGITS = 18  # an index or int key with more digits is refused: no list is that long
_CLOSE = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = frozenset(_CLOSE.values())


def parse_arguments(text: str, *, idx: int, known: Container[int]) -> Arguments:
    """Parse the text between a call's parentheses.

    Args:
        text: the argument list, e.g. ``'"x", limit=3'``.
        idx: the number of the task being parsed (it may not reference itself).
        known: numbers of the tasks that exist before this one.

    Raises:
        ArgumentSyntaxError: naming what is wrong; the only error raised, for any text.
    """
    if not text or text.isspace():
        return Arguments((), {}, _NO_DEPS)  # the commonest call, ``tool()``: skip the tokenizer
    try:
        return _Parser(text, idx, known).arguments()
    except PathSyntaxError:
        _tokenize(text, strings_only=True)  # an unterminated string is the error, wherever it is
        raise
    except ArgumentSyntaxError as exc:
        error = exc
    except RecursionError:  # MAX_DEPTH keeps this away, unless the caller is itself deep in the stack
        error = ArgumentSyntaxError("arguments nested too deeply")
    _tokenize(text)  # a character that starts no token is the error, wherever it is
    raise error


_NO_DEPS: frozenset[int] = frozenset()
_QUOTES = "\"'"
_QUOTE_ENDS = frozenset(_QUOTES)
_NAME_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")


class _Parser:
    """Recursive descent over ``_TOKENS``' list, read by index; ``""`` ends it.

    A token's kind is read from its text: a string ends with a quote (and is longer than one
    character); a reference starts with ``$``, a number with a digit, sign or dot, a name with a
    letter or ``_`` (each longer than one character when it starts with ``$``, a sign or a dot);
    an operator is one of ``()[]{},:=``; anything else is a character that starts no token.
    Each method takes the index of its first token and returns its value and the next index.
    """

    __slots__ = ("deps", "depth", "idx", "known", "toks")

    def __init__(self, text: str, idx: int, known: Container[int]) -> None:
        self.idx = idx
        self.known = known
        self.deps: set[int] = set()
        toks = _TOKENS.findall(text)
        while toks and not toks[-1]:  # "\Z" may match once or twice at the end
            toks.pop()
        toks.append("")
        self.toks: list[str] = toks
        self.depth = 0

    def arguments(self) -> Arguments:
        toks = self.toks
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        i = 0
        while t := toks[i]:
            if toks[i + 1] == "=" and t[0] in _NAME_START and t[-1] not in _QUOTE_ENDS:
                if t in kwargs:
                    raise ArgumentSyntaxError(f"argument {clip(t, 60)!r} is given twice")
                kwargs[t], i = self.value(i + 2, None)
            else:
                if kwargs:
                    raise ArgumentSyntaxError("a positional argument follows a keyword argument")
                value, i = self.value(i, None)
                args.append(value)
            t = toks[i]
            if not t:
                break
            if t != ",":
                raise _expected(",", t, None)
            i += 1
        return Arguments(tuple(args), kwargs, frozenset(self.deps))

    def value(self, i: int, opener: str | None) -> tuple[Any, int]:
        toks = self.toks
        t = toks[i]
        i += 1
        if t.isdecimal():  # the common number: plain digits (what _TOKENS' \d matches), read by int()
            return (int(t) if len(t) <= _SAFE_DIGITS else _number(t)), i
        if len(t) > 1 and t[-1] in _QUOTE_ENDS:
            text = t[1:-1] if t[0] in _QUOTE_ENDS and "\\" not in t else _decode_string(t)
            nxt = toks[i]
            if len(nxt) > 1 and nxt[-1] in _QUOTE_ENDS:  # implicit concatenation: "a" "b"
                parts = [text]
                while len(nxt) > 1 and nxt[-1] in _QUOTE_ENDS:
                    parts.append(_decode_string(nxt))
                    i += 1
                    nxt = toks[i]
                text = "".join(parts)
            return (self.template(text) if "$" in text else text), i
        c = t[:1]
        if c == "$" and len(t) > 1:
            nxt = toks[i]
            if nxt and nxt[0] in ".[":  # what follows a reference is never a value: a path that did not parse
                raise PathSyntaxError(_bad_path(t, " ".join(toks[i : i + 4])))
            # The common reference is "$N", no path.
            ref = _ref(self.check_ref(t[1:])) if t[1:].isdecimal() else self.path_ref(t)
            self.deps.add(ref.idx)
            return ref, i
        if c in _CLOSE:
            return self.container(i, c)
        if c in _NAME_START:
            if t in _CONSTANTS:
                return _CONSTANTS[t], i
            raise ArgumentSyntaxError(f"unknown name {clip(t, 60)!r}: strings need quotes")
        if len(t) > 1 and (c in "+-." or c.isdecimal()):
            return _number(t), i
        if c in _CLOSERS:
            raise _mismatch(c, opener)
        raise ArgumentSyntaxError(f"expected a value but found {_show(t)}")

    def container(self, i: int, opener: str) -> tuple[Any, int]:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ArgumentSyntaxError(f"arguments nested too deeply (more than {MAX_DEPTH} brackets)")
        if opener == "{":
            return self.braces(i)
        toks = self.toks
        closer = _CLOSE[opener]
        items: list[Any] = []
        saw_comma = False
        while (t := toks[i]) != closer:
            if not t:
                raise ArgumentSyntaxError(f"{opener!r} is not closed")
            # The commonest items inline: plain digits, and strings with no escape, "$" or neighbour.
            if t.isdecimal() and len(t) <= _SAFE_DIGITS:
                items.append(int(t))
                i += 1
            elif (
                t[0] in _QUOTE_ENDS
                and len(t) > 1
                and "\\" not in t
                and "$" not in t
                and toks[i + 1][-1:] not in _QUOTE_ENDS
            ):
                items.append(t[1:-1])
                i += 1
            elif t in _CLOSE:
                value, i = self.container(i + 1, t)
                items.append(value)
            else:
                value, i = self.value(i, opener)
                items.append(value)
            t = toks[i]
            if t == closer:
                break
            if t != ",":
                raise _expected(",", t, opener)
            saw_comma = True
            i += 1
        self.depth -= 1
        if opener == "[":
            return items, i + 1
        if len(items) == 1 and not saw_comma:
            return items[0], i + 1  # parentheses around one value group it
        return tuple(items), i + 1

    def braces(self, i: int) -> tuple[Any, int]:
        """A dict or a set, after its ``{``."""
        toks = self.toks
        items: list[Any] = []
        pairs: dict[Any, Any] = {}
        is_dict = toks[i] != "}"
        while (t := toks[i]) != "}":
            if not t:
                raise ArgumentSyntaxError("'{' is not closed")
            key, i = self.value(i, "{")
            if toks[i] == ":":
                if not is_dict or items:
                    raise ArgumentSyntaxError("a set literal cannot hold key: value pairs")
                value, i = self.value(i + 1, "{")
                try:
                    pairs[key] = value
                except TypeError:
                    raise ArgumentSyntaxError(f"dict key {clip(repr(key), 60)} is not hashable") from None
            else:
                if pairs:
                    raise ArgumentSyntaxError("a dict entry needs 'key: value'")
                is_dict = False
                items.append(key)
            t = toks[i]
            if t == "}":
                break
            if t != ",":
                raise _expected(",", t, "{")
            i += 1
        self.depth -= 1
        if is_dict or not items:
            return pairs, i + 1
        try:
            return set(items), i + 1
        except TypeError:
            raise ArgumentSyntaxError("a set literal holds an unhashable value") from None

    def path_ref(self, token: str) -> Ref:
        """A reference token other than plain ``$N``: ``${N}``, or either with a path."""
        m = _REF_PARTS.fullmatch(token)
        if m is None:  # unreachable: the token is what _REF matched
            raise PathSyntaxError(f"{clip(token, 60)} is not a reference")
        digits, inner, outer = m.group(1) or m.group(3), m.group(2) or "", m.group(4)
        idx = self.check_ref(digits)
        if not inner and not outer:
            return _ref(idx)
        return Ref(idx, _steps(inner + outer, token))

    def check_ref(self, digits: str) -> int:
        if len(digits) > MAX_TASK_DIGITS:
            raise ArgumentSyntaxError(f"${clip(digits, 40)} is not a task number: at most {MAX_TASK_DIGITS} digits")
        ref = int(digits)
        if ref == self.idx:
            raise ArgumentSyntaxError(f"${ref} refers to this task itself")
        if ref > self.idx:
            raise ArgumentSyntaxError(f"${ref} refers to task {ref}, which comes later in the plan")
        if ref not in self.known:
            raise ArgumentSyntaxError(f"${ref} refers to task {ref}, which does not exist")
        return ref

    def template(self, text: str) -> str | Template:
        if "$" not in text:
            return text
        parts: list[str | Ref] = []
        last = 0
        for m in _TEXT_REF.finditer(text):
            digits = m.group(1) or m.group(3) or m.group(4)
            if len(digits) > MAX_TASK_DIGITS:
                continue  # too long to be a task number: "cost $<5,000 digits>" is text
            ref = int(digits)
            if ref >= self.idx or ref not in self.known:
                continue  # not an earlier task: "$20" is money, not a reference
            if m.group(3):  # "${N" then "." or "[" that is no path closed by "}"
                raise PathSyntaxError(_bad_text_path(text, m.start(), m.end()))
            if m.start() > last:
                parts.append(text[last : m.start()])
            path = m.group(2)
            parts.append(Ref(ref, _steps(path, m.group())) if path else _ref(ref))
            self.deps.add(ref)
            last = m.end()
        if not parts:
            return text
        if last < len(text):
            parts.append(text[last:])
        return Template(tuple(parts))


# "$N" without a path, shared: a Ref is immutable, and building one costs more than finding it.
_ref = functools.lru_cache(maxsize=4096)(Ref)


def _steps(path: str, token: str) -> tuple[Step, ...]:
    """The steps of a path's text (which ``_PATH`` matched), keys decoded and indexes read."""
    steps: list[Step] = []
    for m in _STEP.finditer(path):
        name, key = m.group(1), m.group(2)
        if name is not None:
            steps.append(name)
        elif key[0] in _QUOTE_ENDS:
            steps.append(_decode_string(key))
        else:
            digits = key.lstrip("+-")
            if len(digits) > _INDEX_DIGITS:
                raise PathSyntaxError(
                    f"{clip(token, 60)}: the index {clip(key, 30)} is too large (at most {_INDEX_DIGITS} digits)"
                )
            steps.append(int(key))
    if len(steps) > MAX_DEPTH:
        raise PathSyntaxError(f"{clip(token, 60)}: a path of {len(steps)} steps (at most {MAX_DEPTH})")
    return tuple(steps)


_BLANKS = f" \t\n\r\f\v{INVISIBLE}"
_NUMBER = re.compile(_NUM, re.VERBOSE)


def _bad_path(shown: str, rest: str, close: str = "") -> str:
    """Why ``rest`` (from its first ``.`` or ``[``) is no path step after the reference ``shown``.

    ``close`` ends the reference in the corrections shown: ``"}"`` inside a string's ``${...}``.
    """
    ref = clip(shown, 40)
    if rest[:1] == ".":
        after = rest[1:].lstrip(_BLANKS)
        head = after[:1]
        if not head or head in ",)]}:=":
            return f"{ref}.: a '.' needs a field name after it"
        if head.isdigit():
            digits = re.match(r"\d+", after)
            index = clip(digits.group() if digits else head, 20)
            return f"{ref}.{index}: a field name cannot start with a digit (an index is written {ref}[{index}]{close})"
        if head in _QUOTE_ENDS:
            quoted = re.match(_KEY, after)
            key = clip(quoted.group() if quoted else head, 30)
            return f"{ref}.{key}: a quoted key is written in brackets, with no '.': {ref}[{key}]{close}"
        return f"{ref}.{head}: {head!r} cannot start a field name (a letter or '_', then letters, digits, '_')"
    inner = rest[1:].lstrip(_BLANKS)
    if not inner:
        return f"{ref}[: the '[' is not closed"
    if inner[0] == "]":
        return f'{ref}[]: empty brackets; write an index ([0]) or a quoted key (["name"])'
    word = clip(inner.split("]", 1)[0].strip(_BLANKS), 30)
    if _NUMBER.fullmatch(word) is not None and re.fullmatch(_KEY, word) is None:
        return f"{ref}[{word}]: an index is a whole number, in decimal digits"
    quoted = re.match(_KEY, inner)
    if quoted is not None and inner[quoted.end() :].lstrip(_BLANKS)[:1] != "]":
        return f"{ref}[{clip(quoted.group(), 30)}: expected ']' after the key"
    return f"{ref}[{word}]: an index is a whole number and a key a quoted string; {word!r} is neither"


def _bad_text_path(text: str, start: int, end: int) -> str:
    """Why the ``${N`` at ``text[start:end]`` (a "." or "[" follows) is no braced path in a string."""
    pos = end
    while (m := _STEP.match(text, pos)) is not None:
        pos = m.end()
    shown = text[start:pos].strip(_BLANKS)
    rest = text[pos:].lstrip(_BLANKS)
    if rest == "[":  # the string ends there: in "${1["id"]}" the key's quote ends the string
        reason = (
            f"{clip(shown, 60)}[: the '[' is not closed"
            " (a key's quotes must differ from the string's: \"${1['id']}\" or '${1[\"id\"]}')"
        )
    elif rest[:1] in (".", "["):
        reason = _bad_path(shown, rest, "}")
    elif not rest:
        reason = f"{clip(shown, 60)}: the '${{' is not closed by '}}'"
    else:
        reason = f"{clip(shown, 60)}: expected '}}' but found {clip(rest, 20)!r}"
    return f"in a string, {reason}"


def _mismatch(closer: str, opener: str | None) -> ArgumentSyntaxError:
    if opener is None:
        return ArgumentSyntaxError(f"bracket mismatch: {closer!r} closes nothing")
    return ArgumentSyntaxError(f"bracket mismatch: {closer!r} does not close {opener!r}")


def _tokenize(text: str, *, strings_only: bool = False) -> None:
    """Raise the error for the first character of ``text`` that starts no token, if any (with
    ``strings_only``, for the first unterminated string)."""
    for m in _TOKEN.finditer(text):
        if m.lastgroup == "bad":
            value = m.group()
            at = clip(text[m.start() : m.start() + 40], 30)
            if value in "\"'":
                raise ArgumentSyntaxError(f"unterminated string starting at {at!r}")
            if not strings_only:
                raise ArgumentSyntaxError(f"unexpected character {value!r} at {at!r}")


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
    """One escape, decoded when it names a real character and kept as written otherwise."""
    code = m.group(1)
    if code in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[code]
    head = code[0]
    if len(code) == 1:
        pass  # "\x", "\u", "\U", "\N" and letters with no escape meaning: kept below
    elif head in "xuU":
        if len(code) == 11:  # a surrogate pair, "\ud83d\ude00": the character it encodes
            high, low = int(code[1:5], 16), int(code[7:], 16)
            return chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
        point = int(code[1:], 16)
        if point <= 0x10FFFF and not 0xD800 <= point <= 0xDFFF:
            return chr(point)
    elif head == "N":
        import unicodedata

        try:
            return unicodedata.lookup(code[2:-1])
        except KeyError:
            pass
    elif head in "01234567":
        return chr(int(code, 8))
    return "\\" + code  # unknown or invalid escapes stay as written, as in Python


def _number(text: str) -> int | float:
    if len(text) > _SAFE_DIGITS and len(text) > (limit := _max_digits()):
        raise ArgumentSyntaxError(f"the number {clip(text, 40)} is too long: at most {limit} digits")
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
        raise ArgumentSyntaxError(f"{clip(text, 40)!r} is not a number") from None
    return value


def _show(token: str) -> str:
    return repr(clip(token, 60)) if token else "the end of the arguments"


def _expected(op: str, token: str, opener: str | None) -> ArgumentSyntaxError:
    if token in _CLOSERS:
        return _mismatch(token, opener)
    return ArgumentSyntaxError(f"expected {op!r} but found {_show(token)}")


# --------------------------------------------------------------------------- resolution


def resolve(value: Any, result_of: Callable[[int], Any]) -> Any:
    """Replace every ``Ref`` and ``Template`` in ``value`` with the results they name.

    A reference with a path takes the value at its path (see ``follow``).

    Raises:
        ResolveError: a path does not lead to a value, a result cannot be spliced into a
            ``Template`` as text, or cannot be a dict key or set member where a reference put it.
    """
    if isinstance(value, Ref):
        return follow(value, result_of(value.idx)) if value.path else result_of(value.idx)
    if isinstance(value, Template):
        return "".join(
            p
            if isinstance(p, str)
            else to_text(follow(p, result_of(p.idx)) if p.path else result_of(p.idx), name=repr(p))
            for p in value.parts
        )
    if isinstance(value, list):
        return [resolve(v, result_of) for v in value]
    if isinstance(value, tuple):
        return tuple(resolve(v, result_of) for v in value)
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            key, item = resolve(k, result_of), resolve(v, result_of)
            try:
                out[key] = item
            except Exception as exc:  # an unhashable result, or one whose __hash__ raises
                raise ResolveError(f"{_name(k)} cannot be a dict key: {_unhashable(key, exc)}") from None
        return out
    if isinstance(value, set):
        members: set[Any] = set()
        for v in value:
            member = resolve(v, result_of)
            try:
                members.add(member)
            except Exception as exc:
                raise ResolveError(f"{_name(v)} cannot be a set member: {_unhashable(member, exc)}") from None
        return members
    return value


def follow(ref: Ref, result: Any) -> Any:
    """The value at ``ref.path`` inside ``result`` (the result of task ``ref.idx``).

    Each step reads one value and nothing else: a mapping's key (any ``Mapping``; a
    ``defaultdict`` never makes one up); a list or tuple's item by index (negative counts from
    the end); a field of any other object: a dataclass or pydantic field (extra fields too), a
    named tuple's field, or an entry of the instance's ``__dict__``, never a name starting with
    ``_``, a property, a method or anything computed. A string is text, not a list: it has no
    items and no fields.

    Raises:
        ResolveError: a step does not lead anywhere; the message names the reference, the step
            and what was there, e.g. ``$2.entityId: no key 'entityId'; keys: id, name, skyId``,
            and never holds more of a value than a short, scrubbed preview.
    """
    value = result
    for n, step in enumerate(ref.path):
        value = _step(value, step, ref, n)
    return value


_LISTED = 20  # keys or fields named in a message
_PREVIEW = 60  # characters of a value shown in a message


def _step(value: Any, step: Step, ref: Ref, n: int) -> Any:
    """The value one step further along ``ref``'s path (``step`` is ``ref.path[n]``)."""
    if value is None:
        raise _path_error(ref, n, f"{_where(ref, n)} is None")
    try:
        if isinstance(value, Mapping):
            if step not in value:  # asked first: a defaultdict would make the value up
                raise _path_error(ref, n, _no_key(value, step, ref, n))
            return value[step]
        if isinstance(step, int):
            if not isinstance(value, (list, tuple)):
                raise _path_error(ref, n, f"{_where(ref, n)} is {_kind(value, ref, n)}, not a list")
            if not -len(value) <= step < len(value):
                shown = clip(str(step), 30)
                raise _path_error(ref, n, f"index {shown} out of range{_at(ref, n)} ({_a(value)} of {len(value)})")
            return value[step]
        return _field(value, step, ref, n)
    except ResolveError:
        raise
    except Exception as exc:  # a mapping, sequence or object whose own methods raise
        raise _path_error(ref, n, f"reading {_step_text(step)}{_at(ref, n)} failed: {describe(exc, 200)}") from None


def _field(value: Any, name: str, ref: Ref, n: int) -> Any:
    """An object's field ``name``; never a name starting with ``_``, a property or a method."""
    if name.startswith("_"):
        shown = clip(name, 60)
        return _fail(ref, n, f"{shown!r}{_at(ref, n)} is not read: names starting with '_' are never read")
    if isinstance(value, (str, bytes, bytearray, int, float, complex, list, set, frozenset, type, ModuleType)) or (
        isinstance(value, tuple) and not hasattr(type(value), "_fields")
    ):
        where = _where(ref, n)
        why = f"{where} is {_kind(value, ref, n)}, which has no fields"
        if isinstance(value, (list, tuple)) and value:
            why += f" (for its first item's, write {where}[0]{path_text((name,))})"
        return _fail(ref, n, why)
    names = _field_names(value)
    if name in names:
        own = getattr(value, "__dict__", None)
        if isinstance(own, dict) and name in own:
            return own[name]
        extra = getattr(value, "__pydantic_extra__", None)
        if isinstance(extra, dict) and name in extra:
            return extra[name]
        return getattr(value, name)
    listed = ", ".join(clip(k, 40) for k in names[:_LISTED])
    more = f" … ({len(names) - _LISTED} more)" if len(names) > _LISTED else ""
    fields = f"; fields: {listed}{more}" if names else " (it has none)"
    return _fail(ref, n, f"{_a(value)} has no field {clip(name, 60)!r}{_at(ref, n)}{fields}")


def _field_names(value: Any) -> list[str]:
    """The fields of an object that a path may read, in their declared order."""
    kind = type(value)
    names: list[str] = []
    declared = getattr(kind, "model_fields", None)  # a pydantic model
    if isinstance(declared, dict):
        names.extend(declared)
        extra = getattr(value, "__pydantic_extra__", None)
        if isinstance(extra, dict):
            names.extend(k for k in extra if isinstance(k, str))
    elif dataclasses.is_dataclass(value):
        names.extend(f.name for f in dataclasses.fields(value))
    elif isinstance(value, tuple):
        names.extend(n for n in kind._fields if isinstance(n, str))  # a named tuple
    own = getattr(value, "__dict__", None)
    if isinstance(own, dict):
        names.extend(k for k in own if isinstance(k, str) and k not in names)
    return [k for k in names if not k.startswith("_")]


def _fail(ref: Ref, n: int, problem: str) -> Any:
    raise _path_error(ref, n, problem)


def _path_error(ref: Ref, n: int, problem: str) -> ResolveError:
    """``$2.entityId: no key 'entityId'; keys: ...``, scrubbed of secrets."""
    return ResolveError(scrub(f"{clip(repr(ref), 120)}: {problem}"))


def _where(ref: Ref, n: int) -> str:
    """The reference up to step ``n``: the value the step reads from."""
    return clip(repr(Ref(ref.idx, ref.path[:n])), 120)


def _at(ref: Ref, n: int) -> str:
    """`` in $1.items`` when step ``n`` is not the first; the first reads from ``$N`` itself."""
    return f" in {_where(ref, n)}" if n else ""


def _step_text(step: Step) -> str:
    return clip(repr(step), 60)


def _no_key(mapping: Mapping[Any, Any], step: Step, ref: Ref, n: int) -> str:
    keys = list(itertools.islice(mapping, _LISTED + 1))
    shown = ", ".join(_key_text(k) for k in keys[:_LISTED])
    if len(keys) > _LISTED:
        shown += f" … ({len(mapping) - _LISTED} more)"
    problem = (
        f"no key {_step_text(step)}{_at(ref, n)}; keys: {shown}"
        if keys
        else f"no key {_step_text(step)}{_at(ref, n)} (an empty {_type(mapping)})"
    )
    if isinstance(step, int) and str(step) in mapping:
        problem += f' (the key "{step}" is a string: write {_where(ref, n)}["{step}"])'
    return problem


def _key_text(key: Any) -> str:
    if isinstance(key, str) and _FIELD.fullmatch(key):
        return clip(key, 40)
    return clip(safe_text(key, 60) if not isinstance(key, str) else repr(key), 40)


def _kind(value: Any, ref: Ref, n: int) -> str:
    """``a str ('E-NYC')``, ``a list of 3``: a value's type and a short preview (not a secret's)."""
    if isinstance(value, (list, tuple, set, frozenset, Mapping)):
        try:
            return f"{_a(value)} of {len(value)}"
        except Exception:
            return _a(value)
    last = ref.path[n - 1] if n else None
    if is_secret_name(last):
        return _a(value)
    shown = safe_text(value, _PREVIEW)
    return f"{_a(value)} ({shown!r})" if isinstance(value, str) else f"{_a(value)} ({shown})"


def _type(value: Any) -> str:
    try:
        return type(value).__name__
    except Exception:
        return "object"


def _a(value: Any) -> str:
    name = _type(value)
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def to_text(value: Any, *, name: str = "the value") -> str:
    """How a result reads when spliced into a string or shown to a model.

    Args:
        value: any result.
        name: how error messages call the value, e.g. ``"$1"``.

    Raises:
        ResolveError: the value cannot be written as text; the message starts with ``name``.
    """
    if isinstance(value, str):
        return value
    try:
        return _as_text(value)
    except Exception as exc:
        raise ResolveError(f"{name} cannot be spliced into text: {_failure(value, exc)}") from None


def _as_text(value: Any) -> str:
    if isinstance(value, (dict, list, tuple)):
        try:
            return json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            return str(value)  # not JSON (tuple keys, a cycle): Python's own rendering
    dump = getattr(value, "model_dump_json", None)
    if callable(dump):
        return str(dump())
    return str(value)


def _name(value: Any) -> str:
    return repr(value) if isinstance(value, Ref) else "a value"


def _failure(value: Any, exc: Exception) -> str:
    """Why ``value`` could not be used, without touching its own (possibly failing) methods."""
    if isinstance(value, int) and not isinstance(value, bool):
        digits = _digits(value)
        if digits > _max_digits():
            return f"an int of {digits} digits (Python writes at most {_max_digits()} as text)"
    kind = type(value).__name__
    if isinstance(exc, RecursionError):
        return f"a {kind} nested too deeply to write as text"
    return f"a {kind} that cannot be written as text ({one_line(describe(exc, 120))})"


def _unhashable(value: Any, exc: Exception) -> str:
    return f"a {type(value).__name__} is not hashable ({one_line(describe(exc, 120))})"


def _digits(value: int) -> int:
    """The number of decimal digits of ``value``, without converting it to text."""
    value = abs(value)
    if value < 10:
        return 1
    digits = int(math.log10(value)) + 1
    if 10 ** (digits - 1) > value:  # log10 rounded up across a power of ten
        digits -= 1
    elif 10**digits <= value:
        digits += 1
    return digits
