"""Hypothesis strategies that write plan text the way real models write it.

Shared by the parser's tests and by any test that feeds model text through the engine.
``model_plans()`` writes plans with the mistakes and oddities models make: invalid escapes,
Windows paths, numbers of thousands of digits (as arguments, task numbers, ``$N`` and
``"cost $<digits>"``), references with paths good and broken (``$2.entityId``, ``"${1[0].x}"``,
``$2[1.5]``), invisible characters (BOM, zero-width space/joiner, NBSP), NUL, ``\\r``
and ``\\r\\n`` line ends, one-line fences (```` ```1. foo()``` ````), deep nesting, unbalanced and
mismatched brackets, unterminated strings, prose, thoughts and comments.
``well_formed_plans()`` writes plans that must parse without an error, and ``chunkings(text)``
cuts a text into random pieces, as a model's stream would.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from hypothesis import strategies as st

__all__ = [
    "BAD_ESCAPES",
    "INVISIBLES",
    "LINE_ENDS",
    "WINDOWS_PATHS",
    "arguments",
    "chunkings",
    "huge_digits",
    "lines_of",
    "model_plans",
    "physical_lines",
    "reference_paths",
    "split_at",
    "string_literals",
    "values",
    "well_formed_plans",
]

INVISIBLES = ("\ufeff", "\u200b", "\u200c", "\u200d", "\u2060", "\xa0")
"""BOM, zero-width space / non-joiner / joiner, word joiner, and a no-break space."""

LINE_ENDS = ("\n", "\r\n", "\r")

BAD_ESCAPES = (
    r"\x",
    r"\xZ1",
    r"\u12",
    r"\uZZZZ",
    r"\U00110000",
    r"\UFFFFFFFF",
    r"\N{NO SUCH NAME}",
    r"\N",
    r"\N{",
    r"\d",
    r"\ud800",
    r"\udfff",
    r"\ud83d\ude00",
    r"\777",
    r"\0",
    r"\q",
)
"""Escapes Python would reject or that name no character, and a few valid ones beside them."""

WINDOWS_PATHS = (
    r"C:\users\x",
    r"C:\Users\Public\new\test.txt",
    r"D:\data\x01\u\U",
    r"\\server\share\N",
    "C:\\",  # a trailing backslash escapes the closing quote
)

_HUGE = (4300, 4301, 5000)
_WORDS = st.text(st.characters(whitelist_categories=("L", "N", "Zs"), max_codepoint=0x2FFF), max_size=8)


def huge_digits() -> st.SearchStrategy[str]:
    """Digits for a number: small ones mostly, sometimes thousands of them (beyond ``int()``'s limit)."""
    return st.one_of(
        st.integers(0, 10**6).map(str),
        st.sampled_from(_HUGE).map(lambda n: "9" * n),
    )


def string_literals(*, allow_unterminated: bool = True) -> st.SearchStrategy[str]:
    """A quoted string as a model writes it: escapes good and bad, paths, ``$N``, invisible characters.

    With ``allow_unterminated=False`` every string is closed: none is left open and none ends
    in a backslash that escapes its closing quote.
    """
    piece = st.one_of(
        _WORDS,
        st.sampled_from(BAD_ESCAPES),
        st.sampled_from(WINDOWS_PATHS),
        st.sampled_from(INVISIBLES),
        st.just("\x00"),
        st.sampled_from(["$1", "${2}", "$20-$30", "\\n", '\\"', "(", "]", "#"]),
        st.sampled_from(["${1.entityId}", "${2[0].name}", "$1.50", "${1:-x}", "${2 . a}", "${1[0]}"]),
        st.sampled_from(["${1.}", "${2[", "${1[x]}", '${1["k"]}'] if allow_unterminated else ["${2}"]),
        huge_digits().map(lambda d: f"cost ${d}"),
    )

    @st.composite
    def build(draw: st.DrawFn) -> str:
        quote = draw(st.sampled_from(['"', "'"]))
        body = "".join(draw(st.lists(piece, max_size=5))).replace(quote, "")
        prefix = draw(st.sampled_from(["", "", "", "r", "b"]))
        closed = not allow_unterminated or draw(st.integers(0, 9)) > 0
        if not allow_unterminated and (len(body) - len(body.rstrip("\\"))) % 2:
            body += "x"  # a last backslash would escape the closing quote
        return f"{prefix}{quote}{body}{quote if closed else ''}"

    return build()


_FIELDS = st.one_of(
    st.sampled_from(["entityId", "name", "_id", "True", "名前", "x1"]),
    st.from_regex(r"[^\W\d]\w{0,6}", fullmatch=True),
)
_GOOD_STEPS = st.one_of(
    _FIELDS.map(lambda f: f".{f}"),
    st.integers(-(10**6), 10**6).map(lambda n: f"[{n}]"),
    st.sampled_from(['["entity id"]', "['a b']", '["\\u00e9"]', '["$1"]', "[ 0 ]", " . name", "\u200b.x"]),
)
_BAD_STEPS = st.sampled_from(
    [".", ".5", "[", "[]", "[1.5]", "[True]", "[x]", '."x"', "[0", '["a', "[" + "9" * 30 + "]", ".-", "[0x1]"]
)


def reference_paths(*, allow_broken: bool = True) -> st.SearchStrategy[str]:
    """The text of a path after ``$N``: ``.name``, ``["key"]``, ``[-1]``, odd spacing, and (unless
    ``allow_broken=False``) the ways a model writes one wrong: ``$2.``, ``$2[1.5]``, ``$2[True]``."""
    steps = st.lists(_GOOD_STEPS, max_size=4).map("".join)
    if not allow_broken:
        return steps
    broken = st.tuples(steps, _BAD_STEPS).map("".join)
    return st.one_of(steps, steps, broken)


def values(*, max_leaves: int = 6) -> st.SearchStrategy[str]:
    """The text of one argument value: literals, references, containers, deep or broken nesting."""
    scalar = st.one_of(
        huge_digits(),
        huge_digits().map(lambda d: f"-{d}"),
        st.sampled_from(["1.5", "1e3", "1e99999", "0x1F", "0b101", "1_000", "True", "None", "null", "false"]),
        string_literals(),
        huge_digits().map(lambda d: f"${d}"),
        st.integers(1, 4).map(lambda n: f"${{{n}}}"),
        st.tuples(st.integers(1, 4), reference_paths()).map(lambda t: f"${t[0]}{t[1]}"),
        st.tuples(st.integers(1, 4), reference_paths()).map(lambda t: f"${{{t[0]}}}{t[1]}"),
    )
    nested = st.recursive(
        scalar,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
            st.lists(inner, max_size=3).map(lambda xs: "(" + ", ".join(xs) + ",)"),
            st.lists(st.tuples(inner, inner), max_size=2).map(
                lambda kv: "{" + ", ".join(f"{k}: {v}" for k, v in kv) + "}"
            ),
        ),
        max_leaves=max_leaves,
    )
    deep = st.integers(1, 300).map(lambda k: "[" * k + "1" + "]" * k)
    broken = st.sampled_from(["[1, 2)", "(1]", "{1: 2]", "[1, 2", "1]", "{'a': [1}", "((1)", '"a"]'])
    return st.one_of(nested, nested, nested, deep, broken)


def arguments() -> st.SearchStrategy[str]:
    """An argument list: positional and keyword values, sometimes with invisible characters between."""
    item = st.one_of(values(), st.tuples(st.sampled_from(["x", "query", "y"]), values()).map("=".join))
    sep = st.sampled_from([", ", ",", ",\u200b ", ", \ufeff", ",\xa0"])
    return st.tuples(st.lists(item, max_size=3), sep).map(lambda t: t[1].join(t[0]))


_ARGUMENTS = arguments()  # built once: building the recursive strategies costs more than drawing
_ODD_NUMBER = st.one_of(huge_digits(), st.just(""))


@st.composite
def _call_line(draw: st.DrawFn, idx: int, tools: Sequence[str]) -> str:
    number = draw(_ODD_NUMBER) if draw(st.integers(0, 3)) == 0 else str(idx)
    head = f"{number}{draw(st.sampled_from(['.', ')']))} " if number else ""
    tool = draw(st.sampled_from([*tools, "join"]))
    line = f"{head}{tool}({draw(_ARGUMENTS)}{draw(st.sampled_from([')', ')', ')', '', ']', '))']))}"
    wrap = draw(st.sampled_from(["", "", "", "```", "`"]))
    lead = draw(st.sampled_from(["", "", "  ", *INVISIBLES]))
    tail = draw(st.sampled_from(["", "", "  # note", " extra", "<END_OF_PLAN>"]))
    return f"{lead}{wrap}{line}{wrap}{tail}"


_OTHER_LINES = st.one_of(
    _WORDS.map(lambda w: f"Thought: {w}"),
    _WORDS.map(lambda w: f"**Thought:**\u200b {w}"),
    _WORDS.map(lambda w: f"Here is the plan {w}"),
    st.sampled_from(["", "   ", "```", "```python", "# a comment", "<END_OF_PLAN>", "\x00", "\ufeff", "\u200b\u200d"]),
    st.sampled_from(["3. Look up the weather", "join()", "```Thought: wrapped```", "``````", "`"]),
)


@st.composite
def lines_of(draw: st.DrawFn, tools: Sequence[str] = ("echo", "search")) -> list[str]:
    """The lines of a plan a model might write, without line ends."""
    lines: list[str] = []
    idx = 0
    for _ in range(draw(st.integers(0, 8))):
        if draw(st.integers(0, 2)) == 0:
            lines.append(draw(_OTHER_LINES))
            continue
        idx = max(1, idx + draw(st.integers(-1, 2)))  # numbers now and then repeat or go back
        lines.append(draw(_call_line(idx, tools)))
    return lines


@st.composite
def model_plans(draw: st.DrawFn, tools: Sequence[str] = ("echo", "search")) -> str:
    """A whole plan text with every oddity above, its lines ended by ``\\n``, ``\\r\\n`` or ``\\r``."""
    lines = draw(lines_of(tools))
    text = ""
    for line in lines:
        text += line + draw(st.sampled_from(LINE_ENDS))
    if draw(st.booleans()) and lines:
        text = text.rstrip("\r\n")  # the last line without its end
    if draw(st.integers(0, 4)) == 0:
        text = "\ufeff" + text
    return text


@st.composite
def well_formed_plans(draw: st.DrawFn, tools: Sequence[str] = ("echo", "search")) -> tuple[str, list[int]]:
    """A plan that must parse without errors, with invisible characters, fences and any line ends;
    returns the text and the task numbers it holds (the last is ``join()``)."""
    end = draw(st.sampled_from(LINE_ENDS))
    lines: list[str] = []
    idxs: list[int] = []
    for idx in range(1, draw(st.integers(1, 6)) + 1):
        if draw(st.booleans()):
            lines.append(f"Thought: {draw(_WORDS)}")
        refs = [f"${i}" for i in draw(st.lists(st.sampled_from(idxs), max_size=2, unique=True))] if idxs else []
        refs = [ref + draw(reference_paths(allow_broken=False)) for ref in refs]
        text = draw(string_literals(allow_unterminated=False))
        args = ", ".join([text, *refs, f"x={draw(st.integers(-(10**6), 10**6))}"])
        lead = draw(st.sampled_from(["", "", *INVISIBLES]))
        wrap = draw(st.sampled_from(["", "", "```", "`"]))
        lines.append(f"{lead}{wrap}{idx}. {draw(st.sampled_from(tools))}({args}){wrap}")
        idxs.append(idx)
        if draw(st.booleans()):
            lines.append(draw(st.sampled_from(["", "```", "# note", "\u200b"])))
    idxs.append(len(idxs) + 1)
    lines.append(f"{idxs[-1]}. join()")
    return end.join(lines) + end + "<END_OF_PLAN>", idxs


def chunkings(text: str) -> st.SearchStrategy[list[str]]:
    """``text`` cut at random places: one piece, a few, or one character at a time."""
    n = len(text)
    cuts = st.one_of(
        st.lists(st.integers(0, n), max_size=30),
        st.just(list(range(1, n))),
        st.integers(1, 7).map(lambda size: list(range(size, n, size))),
    )
    return cuts.map(lambda cs: split_at(text, cs))


def split_at(text: str, cuts: Sequence[int]) -> list[str]:
    """``text`` cut at ``cuts`` (positions, any order, repeats allowed)."""
    pieces: list[str] = []
    last = 0
    for cut in sorted(set(cuts)):
        pieces.append(text[last:cut])
        last = cut
    pieces.append(text[last:])
    return pieces


_LINE_END = re.compile(r"\r\n|\r|\n")


def physical_lines(text: str) -> list[str]:
    """The lines of ``text`` as the parser reads them: ``\\n``, ``\\r\\n`` and ``\\r`` each end one."""
    return _LINE_END.split(text)
