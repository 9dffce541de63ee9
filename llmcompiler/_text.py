"""Values as text for people and models: safe for any value, one line when asked, no terminal controls.

``safe_text`` renders any value (a tool's result, an argument, an error) the way ``to_text``
splices it into a string, and never raises: integers too long to print, lists nested thousands
deep, cycles, lone surrogates and objects whose ``__str__`` raises all get a short, readable
stand-in. ``describe`` says what an exception is (``Type: message``) for an error message: never
raising, secrets scrubbed. ``one_line`` folds text onto one line; ``escape_controls`` makes text
safe to write to a terminal.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from llmcompiler._redact import scrub

__all__ = ["MAX_ERROR_CHARS", "describe", "error_text", "escape_controls", "one_line", "safe_text"]

MAX_ERROR_CHARS = 2000
"""The longest exception message ``describe`` keeps (an exception's text can be a whole HTTP body)."""

# Integers with more digits than this are summarised: Python refuses to print more than 4,300
# digits by default, and printing a long one takes time quadratic in its length.
MAX_INT_DIGITS = 4300
_INT_BITS = int(MAX_INT_DIGITS * math.log2(10))  # fewer bits than this always print
_EXACT_DIGITS = 100_000  # counting digits exactly beyond this costs too much: "about" is said
MAX_DEPTH = 60  # container nesting shown before "…"
_SURROGATES = re.compile("[\ud800-\udfff]")
# Terminal controls: C0 (but tab and newline), DEL, C1, bidirectional overrides and isolates,
# line and paragraph separators, and lone surrogates (which no terminal encoding can write).
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")


def one_line(text: str, limit: int = 300) -> str:
    """``text`` with its white space folded onto one line, cut to ``limit`` characters with ``…``.

    Example:
        >>> one_line("a\\n  b   c", 4)
        'a b…'
    """
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: max(1, limit - 1)] + "…"


def escape_controls(text: str, *, keep: str = "\n\t") -> str:
    """``text`` with control characters shown as escapes (``\\x1b``, ``\\u202e``), for a terminal.

    Escape sequences (``ESC [2J``, ``ESC ]0;title BEL``), other C0 and C1 controls, bidirectional
    overrides and lone surrogates would act on the terminal instead of being seen; the characters
    in ``keep`` (newline and tab) are left as they are.

    Example:
        >>> escape_controls("a\\x1b[2Jb\\u202e")
        'a\\\\x1b[2Jb\\\\u202e'
    """
    return _CONTROLS.sub(lambda m: m.group() if m.group() in keep else _escape_char(m.group()), text)


def _escape_char(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _no_surrogates(text: str) -> str:
    """``text`` with lone surrogates written as ``\\udXXX``: they cannot be encoded as UTF-8."""
    if text.isascii() or _SURROGATES.search(text) is None:
        return text
    return _SURROGATES.sub(lambda m: _escape_char(m.group()), text)


def safe_text(value: object, limit: int | None = None) -> str:
    """``value`` as text, as a result reads when spliced into a string; never raises.

    Strings are themselves; lists, tuples and dicts are JSON; other values their ``str``.
    Integers over 4,300 digits read ``<int of 5001 digits: 1000…000>``; nesting deeper than
    60 levels and cycles are cut with ``…``; lone surrogates are written as ``\\ud800``; an
    object whose ``__str__`` raises reads ``<Name object: str() failed with ValueError>``.

    Args:
        value: anything.
        limit: the most characters to return (the text is cut with ``…``); ``None``: no limit.
            A limit also bounds the work: a huge value is only rendered as far as shown.

    Example:
        >>> safe_text([1, "a", {"b": None}])
        '[1, "a", {"b": null}]'
        >>> safe_text(10**5000)
        '<int of 5001 digits: 1000…000>'
    """
    if limit is None and type(value) is str:  # the common case, first
        return _no_surrogates(value)
    budget = limit if limit is not None and limit >= 0 else None
    try:
        if isinstance(value, str):
            # Cut first: escaping a surrogate lengthens the text, so this may still overrun; cut again below.
            text = _no_surrogates(value if budget is None else value[: budget + 1])
        else:
            writer = _Writer(budget)
            writer.top(value)
            text = "".join(writer.parts)
    except Exception as exc:  # rendering must never fail: say what could not be shown
        text = f"<{_type_name(value)} object: cannot be shown ({type(exc).__name__})>"
    if budget is not None and len(text) > budget:
        text = text[: max(0, budget - 1)] + "…" if budget else ""
    return text


def describe(exc: BaseException, limit: int = MAX_ERROR_CHARS) -> str:
    """``Type: message`` for an exception (``Type`` alone when it has no message); never raises.

    The message is ``error_text``'s: secrets scrubbed, cut to ``limit`` characters.

    Example:
        >>> describe(ConnectionError("refused"))
        'ConnectionError: refused'
        >>> describe(TimeoutError())
        'TimeoutError'
    """
    text = error_text(exc, limit)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def error_text(exc: BaseException, limit: int = MAX_ERROR_CHARS) -> str:
    """An exception's message alone, scrubbed of secrets and cut to ``limit`` characters with ``…``.

    Never raises: a ``__str__`` that fails reads ``<its message could not be read>``.
    """
    try:
        text = str(exc)
    except Exception:
        return "<its message could not be read>"
    # Scrubbed before the cut (a cut could leave half a secret unrecognised); a very long text is
    # shortened with a wide margin first, so scrubbing stays cheap.
    text = scrub(text[: limit * 8])
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


class _Full(Exception):
    """The text reached its limit: stop rendering."""


class _Writer:
    """Renders one value into ``parts``, JSON-like for containers, within a character budget."""

    def __init__(self, budget: int | None) -> None:
        self.parts: list[str] = []
        self.budget = budget
        self.size = 0
        self.path: set[int] = set()  # ids of the containers being rendered: a repeat is a cycle

    def put(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)
        if self.budget is not None and self.size > self.budget:
            raise _Full

    def top(self, value: object) -> None:
        try:
            if isinstance(value, (dict, list, tuple)):
                self.json(value, 0)
            else:
                self.put(self.plain(value))
        except _Full:
            pass

    def plain(self, value: object) -> str:
        """A value outside a container: what ``str`` gives, or a stand-in."""
        if isinstance(value, int) and value.bit_length() > _INT_BITS:
            return int_summary(value)
        dump = getattr(value, "model_dump_json", None)
        if callable(dump) and not isinstance(value, type):
            try:
                return _no_surrogates(_cut(str(dump()), self.budget))
            except Exception:  # a model that cannot dump itself is shown by str()
                pass
        return _no_surrogates(_cut(_str_of(value), self.budget))

    def json(self, value: object, depth: int) -> None:
        if value is None:
            self.put("null")
        elif value is True or value is False:
            self.put("true" if value else "false")
        elif isinstance(value, str):
            self.put(_no_surrogates(json.dumps(_cut(value, self.budget), ensure_ascii=False)))
        elif isinstance(value, int):
            self.put(int_summary(value) if value.bit_length() > _INT_BITS else int.__repr__(value))
        elif isinstance(value, float):
            self.put(_json_float(value))
        elif isinstance(value, (dict, list, tuple)):
            self.container(value, depth)
        else:
            self.put(_no_surrogates(json.dumps(_cut(self.plain(value), self.budget), ensure_ascii=False)))

    def container(self, value: dict[Any, Any] | list[Any] | tuple[Any, ...], depth: int) -> None:
        is_map = isinstance(value, Mapping)
        opening, closing = ("{", "}") if is_map else ("[", "]")
        if id(value) in self.path or depth >= MAX_DEPTH:
            self.put(f"{opening}…{closing}")
            return
        self.path.add(id(value))
        self.put(opening)
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for n, (key, item) in enumerate(items):
            if n:
                self.put(", ")
            if is_map:
                self.put(_json_key(key))
                self.put(": ")
            self.json(item, depth + 1)
        self.put(closing)
        self.path.discard(id(value))


def _cut(text: str, budget: int | None) -> str:
    return text if budget is None else text[: budget + 1]


def _type_name(value: object) -> str:
    try:
        return type(value).__name__
    except Exception:  # a type whose name cannot be read
        return "unknown"


def _str_of(value: object) -> str:
    """``str(value)``, else ``repr(value)``, else a stand-in naming the type and the failure."""
    try:
        return str(value)
    except Exception as exc:  # a broken __str__ must not break what shows it
        first = exc
    try:
        return repr(value)
    except Exception:
        return f"<{_type_name(value)} object: str() failed with {type(first).__name__}>"


def _json_float(value: float) -> str:
    if math.isfinite(value):
        return float.__repr__(value)
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _json_key(key: object) -> str:
    """A dict key as JSON writes it: a quoted string (numbers, booleans and None converted)."""
    if isinstance(key, str):
        text = key
    elif key is None or key is True or key is False:
        text = "null" if key is None else ("true" if key else "false")
    elif isinstance(key, int):
        text = int_summary(key) if key.bit_length() > _INT_BITS else int.__repr__(key)
    elif isinstance(key, float):
        text = _json_float(key)
    else:
        text = safe_text(key, 200)
    return _no_surrogates(json.dumps(text, ensure_ascii=False))


def int_summary(value: int) -> str:
    """A short stand-in for a long integer: ``<int of 5001 digits: 1000…000>``.

    Counts digits without printing the number (which is slow, and refused past 4,300 digits);
    past 100,000 digits the count is approximate (``about``) and the leading digits omitted.
    """
    sign = "-" if value < 0 else ""
    n = -value if value < 0 else value
    if n.bit_length() <= _INT_BITS:
        return f"{sign}{int.__repr__(n)}"
    estimate = int(math.log10(n)) + 1  # accurate to one digit
    last = f"{n % 1000:03d}"
    if estimate > _EXACT_DIGITS:
        return f"<int of about {estimate} digits: {sign}…{last}>"
    digits = estimate - 1 if n < pow(10, estimate - 1) else estimate
    digits = digits + 1 if n >= pow(10, digits) else digits
    first = n // pow(10, digits - 4)
    return f"<int of {digits} digits: {sign}{first}…{last}>"
