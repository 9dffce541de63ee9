"""The plan language's streaming parser: the task fetching unit.

``PlanParser`` is a pure, synchronous state machine: text chunks in, events out. It accepts
arbitrary chunk boundaries (one character at a time, random pieces and the whole text give
the same events) and emits a task the moment its call's closing parenthesis arrives, so the
executor can start it while the model is still writing the rest of the plan.

Every line becomes a ``TaskParsed``, a ``ThoughtParsed``, or a ``ParseError``; blank lines,
code fences and ``# comments`` are formatting. A numbered line that cannot be a task still
yields a ``ParseError`` carrying its number, which the executor records as a failed task.
Nothing a model writes makes ``feed`` or ``close`` raise.

Text as models really write it:

- ``\\n``, ``\\r\\n`` and a bare ``\\r`` each end a line, wherever the chunks are cut.
- Invisible format characters (BOM, zero-width space/non-joiner/joiner, word joiner) are
  ignored outside strings: before a task number, between tokens, in prose and thoughts.
  Inside a string they are kept as the model's text (see ``_literals``).
- A task wrapped in backticks on one line (```` ```1. echo(1)``` ````) is that task; a fence
  line (```` ``` ```` or ```` ```python ````) is formatting; any other text between backticks
  is read as a line without them.
- A closing bracket that does not match the open one (``1. pair(x="a"], y=2)``) fails the
  task with a bracket mismatch; the task never runs. A call still ends at the ``)`` that
  closes it, or, when the closer belongs to an outer bracket, at that bracket. When the
  mismatch comes from a reference's path (``2. f(x=$1[0)``), the path's error says so
  (``$1[0: expected ']' after the key``).
- References may carry paths (``$2.entityId``, ``$3[-1].name``, ``"${1.entityId}"``; see
  ``_literals``): a call's arguments are parsed once its closing parenthesis has arrived, so a
  path split across chunks gives the same task as a path that arrived whole.
- A task number has at most ``MAX_TASK_DIGITS`` digits; a longer one fails its line.
- Long lines parse in linear time, whatever the chunking, and error messages quote them
  shortened with an ellipsis.
- ``close(truncated=reason)`` ends a reply that the model's token limit cut off: the call or
  line it cut fails, saying so, and a ``ParseError`` with no task number tells the joiner that
  the plan was cut short (``PlanEnded.reason == "cut"``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from typing import Any, Literal

from llmcompiler._literals import (
    INVISIBLE,
    MAX_TASK_DIGITS,
    ArgumentSyntaxError,
    PathSyntaxError,
    clip,
    parse_arguments,
)

__all__ = [
    "END_OF_PLAN",
    "ParseError",
    "PlanEnded",
    "PlanEvent",
    "PlanParser",
    "TaskParsed",
    "ThoughtParsed",
    "parse_plan",
]

END_OF_PLAN = "<END_OF_PLAN>"
JOIN = "join"
"""The tool name of a plan's ``join()`` task, in ``TaskParsed`` and ``TaskRecord``."""
_LINE_LIMIT = 300  # ParseError.line is shortened past this many characters
_REASON_LIMIT = 1000


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class TaskParsed:
    """A call ``N. tool(args)`` whose closing parenthesis has arrived.

    ``args`` and ``kwargs`` may hold ``Ref`` and ``Template`` values; ``deps`` are the numbers
    of the tasks they reference. ``tool`` is ``"join"`` for ``join()``.
    """

    idx: int
    tool: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    deps: frozenset[int]
    thought: str | None
    line: str
    kind: Literal["task"] = "task"


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ThoughtParsed:
    """A ``Thought:`` line; it also attaches to the next task."""

    text: str
    kind: Literal["thought"] = "thought"


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ParseError:
    """A line that is not a task, a thought or formatting.

    When the line carries a task number that is free (``idx`` is set), the task exists and
    fails with ``reason``; tasks that depend on it are not run. ``line`` is the plan line,
    shortened with an ellipsis when it is long; it is empty for a note about the whole plan.
    """

    line: str
    reason: str
    idx: int | None = None
    tool: str | None = None
    thought: str | None = None
    kind: Literal["error"] = "error"

    def __post_init__(self) -> None:
        # A giant line must not be copied into every message and record made from it.
        if len(self.line) > _LINE_LIMIT:
            object.__setattr__(self, "line", clip(self.line, _LINE_LIMIT))
        if len(self.reason) > _REASON_LIMIT:
            object.__setattr__(self, "reason", clip(self.reason, _REASON_LIMIT))

    def message(self) -> str:
        """The error as one line naming the plan line."""
        if not self.line:
            return self.reason
        return f"plan line {self.line!r}: {self.reason}"


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PlanEnded:
    """The plan is complete: ``join()`` closed, ``<END_OF_PLAN>`` arrived, the text ended, or the
    model's token limit cut the reply off (``"cut"``)."""

    reason: Literal["join", "end_marker", "stream_end", "cut"]
    kind: Literal["end"] = "end"


PlanEvent = TaskParsed | ThoughtParsed | ParseError | PlanEnded

# Blanks within a line: whitespace other than "\n" (a "\r" never gets this far) and invisible
# format characters. One character class, so the head pattern stays one fast scan.
_GAP = (
    "[\t\x0b\x0c\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
    + INVISIBLE.replace("\u200b\u200c\u200d", "\u200b-\u200d")
    + "]*"
)
_NAME = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
# "3. search(" / "3) search(" / "```3. search(" / bare "join(": the head of a call, matched once its "(" arrives.
_HEAD = re.compile(rf"{_GAP}(?:`+{_GAP})?(?:(\d+){_GAP}[.)]{_GAP})?({_NAME}){_GAP}\($")
_HEAD_LIMIT = 1000  # a "(" further than this into a line does not open a task
_NUMBERED = re.compile(r"\s*(\d+)\s*[.)]\s*(.*)$", re.DOTALL)
_THOUGHT = re.compile(rf"{_GAP}(?:\*\*)?thought(?:\*\*)?{_GAP}:{_GAP}(?:\*\*)?\s*(.*)$", re.IGNORECASE | re.DOTALL)
_BARE_CALL = re.compile(r"[A-Za-z_][\w.]*\s*\(")
_FENCE = re.compile(r"`{3,}[ \t]*(?:[A-Za-z][\w+#.-]*[ \t]*)?|`+")
_INVISIBLE = re.compile(f"[{INVISIBLE}]")
_EDGES = "".join(chr(c) for c in range(0x3001) if chr(c).isspace()) + INVISIBLE + "`"
_CALL_STOPS = re.compile(r"[()\[\]{}\"'#\n]")
# Inside a call: the text up to the next stop and the stop, a string that ends in the buffer
# counting as one stop (what _STRING_STOPS would skip: an escape takes the next character; a raw
# newline stops it, as does the buffer's end, and its quote is then a stop alone). The text after
# the last stop is a piece too, so every position is matched once and findall never rescans.
_CALL_PIECES = re.compile(
    r"""[^()\[\]{}"'#\n]*+(?:"[^"\\\n]*(?:\\.[^"\\\n]*)*"|'[^'\\\n]*(?:\\.[^'\\\n]*)*'|[()\[\]{}"'#\n]|\Z)""",
    re.DOTALL,
)
_OPENERS, _CLOSERS, _QUOTES = frozenset("([{"), frozenset(")]}"), frozenset("\"'")
_STRING_STOPS = {'"': re.compile(r'[\\"\n]'), "'": re.compile(r"[\\'\n]")}
_OPENER_OF = {")": "(", "]": "[", "}": "{"}
_COMPACT_AT = 4096  # scanned text beyond this moves out of the buffer (see _compact)

_HEAD_MODE, _CALL_MODE, _STRING_MODE, _REST_MODE, _PROSE_MODE, _COMMENT_MODE = range(6)


class PlanParser:
    """Turns streamed plan text into events.

    Args:
        known: numbers of tasks from earlier rounds, which this plan may reference and
            whose numbers it must not reuse.

    Example:
        >>> p = PlanParser()
        >>> [e.kind for e in p.feed('1. search("a")\\n2. jo')]
        ['task']
        >>> [e.kind for e in p.feed("in()\\n")]
        ['task', 'end']
    """

    def __init__(self, known: Iterable[int] = ()) -> None:
        self._known: set[int] = set(known)
        self._last = max(self._known, default=0)
        # The current unit (a line, or a call with the lines it spans) is "".join(_done) + _buf;
        # positions index _buf and are negative inside _done.
        self._buf = ""
        self._done: list[str] = []
        self._done_len = 0
        self._pos = 0
        self._mode = _HEAD_MODE
        self._stack: list[str] = []  # the open brackets of the current call
        self._mismatch: str | None = None  # the call's first bracket mismatch
        self._quote = ""
        self._args_start = 0
        self._line_start = 0  # start of the current physical line inside a multi-line call
        self._line_checked = True  # whether that line's first "(" was checked for a new task's head
        self._line_thought = False  # whether that line is a thought, once its start left the buffer
        self._after_cr = False  # the last chunk ended with "\r": a "\n" starting the next is the same line end
        self._head: tuple[str | None, str] = (None, "")
        self._thought: str | None = None
        self._ended = False
        self._events: list[PlanEvent] = []

    @property
    def ended(self) -> bool:
        """Whether the plan has ended (``join()``, ``<END_OF_PLAN>`` or ``close()``)."""
        return self._ended

    @property
    def in_call(self) -> bool:
        """Whether a call is open: its ``(`` has arrived and the bracket closing it has not."""
        return self._mode in (_CALL_MODE, _STRING_MODE, _COMMENT_MODE)

    def feed(self, chunk: str) -> list[PlanEvent]:
        """Take the next piece of text and return the events it completes."""
        if not chunk:
            return []
        if self._after_cr and chunk[0] == "\n":
            chunk = chunk[1:]  # "\r" then "\n" across a chunk boundary: one line end, already taken
        self._after_cr = chunk[-1] == "\r" if chunk else False
        if "\r" in chunk:
            chunk = chunk.replace("\r\n", "\n").replace("\r", "\n")
        if len(chunk) > 256 and "\n" in chunk:
            # Scan a long text line by line: the buffer then holds about one line, so consuming
            # a line costs O(line) instead of O(text) and a whole plan parses in linear time.
            start = 0
            while start < len(chunk):
                end = chunk.find("\n", start) + 1 or len(chunk)
                self._buf += chunk[start:end]
                self._scan()
                start = end
        else:
            self._buf += chunk
            self._scan()
        if self._pos > _COMPACT_AT:
            self._compact()
        events, self._events = self._events, []
        return events

    def close(self, truncated: str | None = None) -> list[PlanEvent]:
        """The text has ended: flush what is left and end the plan.

        Args:
            truncated: why the model's reply was cut off by its token limit (e.g. ``"length"``),
                or ``None`` when it ended normally. A cut reply fails the call or line it cut,
                saying so, and adds a ``ParseError`` without a task number telling the joiner
                that the plan was cut short; the plan ends with reason ``"cut"``. A reply cut
                after the plan had already ended (``join()``) lost nothing: nothing is added.
        """
        self._scan()
        cut = None if truncated is None else _cut_words(truncated)
        mode = self._mode
        if mode in (_CALL_MODE, _STRING_MODE, _COMMENT_MODE):
            if cut is None:
                self._fail_call("the call is not closed: missing ')' at the end of the plan", len(self._buf))
            else:
                self._fail_call(f"{cut} before this call closed", len(self._buf), check_string=False)
        else:
            text = self._slice(-self._done_len, None)
            if mode == _REST_MODE:
                self._finish_rest(text)
            elif cut is not None:
                self._cut_line(text, cut)
            elif text.strip():
                self._line(text)
        self._done.clear()
        self._buf, self._pos, self._done_len, self._mode = "", 0, 0, _HEAD_MODE
        if self._thought is not None and not self._ended:
            line = clip(f"Thought: {self._thought}", _LINE_LIMIT)
            self._events.append(ParseError(line=line, reason="a thought with no task after it"))
            self._thought = None
        if cut is not None and not self._ended:
            reason = f"{cut}: the plan was cut short here, and nothing after this point was written"
            self._events.append(ParseError(line="", reason=reason))
            self._end("cut")
        self._end("stream_end")
        events, self._events = self._events, []
        return events

    # -- the state machine

    def _scan(self) -> None:
        buf = self._buf
        while True:
            mode = self._mode
            if mode == _HEAD_MODE:
                m = _first_of(buf, "(\n", self._pos)
                if m < 0:
                    self._pos = len(buf)
                    if self._pos > _HEAD_LIMIT:
                        self._mode = _PROSE_MODE  # no "(" close enough to the start: not a call
                    return
                if buf[m] == "\n":
                    self._line(buf[:m])
                    buf = self._consume(m + 1)
                    continue
                head = _HEAD.match(buf, 0, m + 1) if m <= _HEAD_LIMIT else None
                if head is None or not (head.group(1) or head.group(2) == JOIN):
                    self._mode = _PROSE_MODE  # only the first "(" of a line can open a call
                    self._pos = m + 1
                    continue
                self._head = (head.group(1), head.group(2))
                close = buf.find(")", m + 1)
                if close >= 0 and _CALL_STOPS.search(buf, m + 1, close) is None:
                    # Fast path: a call with no strings, brackets or comments closes at its first ')'.
                    self._emit_call(buf[m + 1 : close], buf[: close + 1])
                    buf = self._consume(close + 1)
                    self._mode = _REST_MODE
                    continue
                self._mode, self._stack, self._mismatch = _CALL_MODE, ["("], None
                self._args_start = self._line_start = self._pos = m + 1
                self._line_checked = True  # the call's own line
            elif mode == _CALL_MODE:
                # One findall takes the call's text up to each stop, a whole string counting as one.
                stack = self._stack
                i = self._pos
                for piece in _CALL_PIECES.findall(buf, i):
                    i += len(piece)  # just past the stop, piece[-1]
                    c = piece[-1:]  # "" or not a stop: the text after the last stop
                    if c in _OPENERS:
                        if not self._line_checked:
                            self._line_checked = True
                            start = self._line_start
                            if start >= 0 and i - 1 - start <= _HEAD_LIMIT and _is_head(buf, start, i):
                                # A new numbered call began while this one was open: this one lacks its ')'.
                                buf = self._runaway()
                                break
                        stack.append(c)
                    elif c in _CLOSERS:
                        if stack[-1] == _OPENER_OF[c]:
                            stack.pop()
                        else:
                            self._mismatched(c)
                        if not stack:  # the call's own ")" (or a mismatched closer of an outer bracket)
                            if self._mismatch is not None:
                                reason = _path_problem(self._slice(self._args_start, i - 1)) or self._mismatch
                                self._fail_call(reason, i, check_string=False)
                            elif self._done_len:
                                self._emit_call(self._slice(self._args_start, i - 1), self._slice(-self._done_len, i))
                            else:
                                self._emit_call(buf[self._args_start : i - 1], buf[:i])
                            buf = self._consume(i)
                            self._mode = _REST_MODE
                            break
                    elif c == "\n":
                        if self._line_start > self._args_start and self._is_thought_line(i - 1):
                            buf = self._runaway()
                            break
                        self._line_start = i
                        self._line_checked = False
                    elif c == "#":
                        self._mode, self._pos = _COMMENT_MODE, i
                        break
                    elif c in _QUOTES and piece.index(c) == len(piece) - 1:  # a string not whole in the buffer
                        self._mode, self._quote, self._pos = _STRING_MODE, c, i
                        break
                else:
                    self._pos = len(buf)
                    return
            elif mode == _STRING_MODE:
                m_obj = _STRING_STOPS[self._quote].search(buf, self._pos)
                if m_obj is None:
                    self._pos = len(buf)
                    return
                i = m_obj.start()
                c = buf[i]
                if c == "\\":
                    if i + 1 >= len(buf):
                        self._pos = i  # the escaped character has not arrived yet
                        return
                    self._pos = i + 2
                    continue
                # A quote ends the string; a raw newline means it was never closed (the
                # argument parser reports it), and the call continues on the next line.
                self._mode = _CALL_MODE
                self._pos = i if c == "\n" else i + 1
            elif mode == _COMMENT_MODE:  # a "# comment" inside a call runs to the end of its line
                nl = buf.find("\n", self._pos)
                if nl < 0:
                    self._pos = len(buf)
                    return
                self._mode, self._pos = _CALL_MODE, nl
            else:  # _REST_MODE (what follows a call on its line) or _PROSE_MODE (a line that is no call)
                nl = buf.find("\n", self._pos)
                if nl < 0:
                    self._pos = len(buf)
                    return
                text = self._slice(-self._done_len, nl) if self._done_len else buf[:nl]
                if mode == _PROSE_MODE:
                    self._line(text)
                elif text and not text.isspace():  # most calls end their line
                    self._finish_rest(text)
                buf = self._consume(nl + 1)
                self._mode = _HEAD_MODE

    def _mismatched(self, c: str) -> None:
        """A closing bracket that does not close the innermost open one."""
        stack = self._stack
        if self._mismatch is None:
            self._mismatch = f"bracket mismatch: {c!r} does not close {stack[-1]!r}"
        opener = _OPENER_OF[c]
        if opener in stack:
            # The closer belongs to an outer bracket: the ones opened since are left unclosed.
            del stack[len(stack) - 1 - stack[::-1].index(opener) :]

    def _is_thought_line(self, end: int) -> bool:
        start = self._line_start
        if start < 0:  # the line's start left the buffer (see _compact)
            return self._line_thought
        return _THOUGHT.match(self._buf, start, min(end, start + _HEAD_LIMIT)) is not None

    def _compact(self) -> None:
        """Move scanned text the scanner no longer reads out of the buffer.

        Appending a chunk copies the buffer, so a long line streamed in small chunks would cost
        quadratic time if the buffer held all of it; the text moves to ``_done``, joined once
        when its unit (line or call) ends. Kept: a line that may still be a task's head (at
        most ``_HEAD_LIMIT`` characters before its "("), and the start of the current line of
        a call, which may yet turn out to begin a new task or a thought.
        """
        mode, keep = self._mode, self._pos
        if mode == _HEAD_MODE:
            return
        if mode in (_CALL_MODE, _STRING_MODE, _COMMENT_MODE):
            start = self._line_start
            if start >= 0:
                if keep - start <= _HEAD_LIMIT:
                    keep = start
                else:
                    self._line_checked = True  # any "(" from here is too far in to open a task
                    self._line_thought = _THOUGHT.match(self._buf, start, start + _HEAD_LIMIT) is not None
        if keep < _COMPACT_AT:
            return
        self._done.append(self._buf[:keep])
        self._done_len += keep
        self._buf = self._buf[keep:]
        self._pos -= keep
        self._line_start -= keep
        self._args_start -= keep

    def _slice(self, start: int, end: int | None) -> str:
        """The current unit's text from ``start`` to ``end`` (positions may reach into ``_done``)."""
        if start >= 0:
            return self._buf[start:end]
        done = "".join(self._done)
        self._done[:] = [done]
        n = len(done)
        if end is not None and end <= 0:
            return done[n + start : n + end]
        return done[n + start :] + self._buf[:end]

    def _consume(self, upto: int) -> str:
        self._buf = self._buf[upto:] if upto >= 0 else self._slice(upto, None)
        if self._done:
            self._done.clear()
            self._done_len = 0
        self._pos = 0
        return self._buf

    def _runaway(self) -> str:
        """The open call never closed before a new task or thought line: fail it, rescan from there."""
        start = self._line_start
        self._fail_call("the call is not closed: missing ')' before the next line", start)
        self._mode = _HEAD_MODE
        return self._consume(start)

    # -- events

    def _emit_call(self, args_text: str, line: str) -> None:
        number, name = self._head
        line = line.strip(_EDGES)  # no blanks, invisible characters or opening backticks around it
        if name == JOIN:
            idx = self._number(number, line, allow_missing=True)
            if idx is None:
                return
            self._events.append(
                TaskParsed(
                    idx=idx,
                    tool=JOIN,
                    args=(),
                    kwargs={},
                    deps=frozenset(),
                    thought=self._take_thought(),
                    line=line,
                )
            )
            self._end("join")
            return
        idx = self._number(number, line, allow_missing=False)
        if idx is None:
            return
        thought = self._take_thought()
        try:
            parsed = parse_arguments(args_text, idx=idx, known=self._known)
        except ArgumentSyntaxError as exc:
            self._events.append(ParseError(line=line, reason=str(exc), idx=idx, tool=name, thought=thought))
            return
        self._events.append(
            TaskParsed(
                idx=idx,
                tool=name,
                args=parsed.args,
                kwargs=parsed.kwargs,
                deps=parsed.deps,
                thought=thought,
                line=line,
            )
        )

    def _fail_call(self, reason: str, upto: int, *, check_string: bool = True) -> None:
        number, name = self._head
        line = self._slice(-self._done_len, upto).strip(_EDGES)
        idx = self._number(number, line, allow_missing=name == JOIN)
        if idx is not None:
            if check_string and _has_unterminated_string(self._slice(self._args_start, upto)):
                reason = f"unterminated string, so {reason}"
            self._events.append(ParseError(line=line, reason=reason, idx=idx, tool=name, thought=self._take_thought()))
        if name == JOIN:
            self._end("join")

    def _number(self, number: str | None, line: str, *, allow_missing: bool) -> int | None:
        """Check a task number is new and increasing; report and return None when not."""
        if self._ended:
            self._events.append(ParseError(line=line, reason="the plan already ended"))
            return None
        if number is None:
            if not allow_missing:
                self._events.append(ParseError(line=line, reason="a task needs a number: 'N. tool(...)'"))
                return None
            idx = self._last + 1
        elif len(number) > MAX_TASK_DIGITS:
            reason = f"task number {clip(number, 40)} is too large: at most {MAX_TASK_DIGITS} digits"
            self._events.append(ParseError(line=line, reason=reason))
            return None
        else:
            idx = int(number)
        if idx in self._known:
            self._events.append(ParseError(line=line, reason=f"task number {idx} is used twice"))
            return None
        if idx < self._last:
            self._events.append(
                ParseError(line=line, reason=f"task number {idx} comes after {self._last}: numbers must increase")
            )
            return None
        self._last = idx
        self._known.add(idx)
        return idx

    def _line(self, line: str) -> None:
        """A whole line that is not a call."""
        if END_OF_PLAN in line:
            at = line.index(END_OF_PLAN)
            before, after = line[:at], line[at + len(END_OF_PLAN) :]
            if before.strip():
                self._line(before)
            self._end("end_marker")
            if after.strip():
                self._line(after)  # formatting, or text after the end of the plan
            return
        text = _plain(line)
        if not text or text.startswith("#"):
            return
        if self._ended:
            self._events.append(ParseError(line=text, reason="text after the end of the plan"))
            return
        thought = _THOUGHT.match(text)
        if thought:
            body = thought.group(1).strip()
            self._thought = body if self._thought is None else f"{self._thought} {body}"
            self._events.append(ThoughtParsed(text=body))
            return
        numbered = _NUMBERED.match(text)
        if numbered:
            idx = self._number(numbered.group(1), text, allow_missing=False)
            if idx is not None:
                self._events.append(
                    ParseError(
                        line=text,
                        reason="not a tool call: expected 'N. tool(arguments)'",
                        idx=idx,
                        thought=self._take_thought(),
                    )
                )
            return
        if _BARE_CALL.match(text):
            self._events.append(ParseError(line=text, reason="a task needs a number: 'N. tool(...)'"))
        else:
            self._events.append(ParseError(line=text, reason="not a task, a thought or formatting"))

    def _cut_line(self, text: str, cut: str) -> None:
        """The last line, which the token limit cut off before its end."""
        plain = _plain(text)
        numbered = _NUMBERED.match(plain) if END_OF_PLAN not in plain else None
        if numbered is None:
            if plain:
                self._line(text)
            return
        idx = self._number(numbered.group(1), plain, allow_missing=False)
        if idx is not None:
            reason = f"{cut} in the middle of this line"
            self._events.append(ParseError(line=plain, reason=reason, idx=idx, thought=self._take_thought()))

    def _finish_rest(self, rest: str) -> None:
        text = rest
        if END_OF_PLAN in text:
            text = text[: text.index(END_OF_PLAN)]
            after = rest[rest.index(END_OF_PLAN) + len(END_OF_PLAN) :]
            self._end("end_marker")
            if after.strip():
                self._line(after)
        text = _plain(text)
        if text and not text.startswith("#"):
            self._events.append(ParseError(line=text, reason="unexpected text after a call on the same line"))

    def _take_thought(self) -> str | None:
        thought, self._thought = self._thought, None
        return thought

    def _end(self, reason: Literal["join", "end_marker", "stream_end", "cut"]) -> None:
        if not self._ended:
            self._ended = True
            self._events.append(PlanEnded(reason=reason))


def _plain(line: str) -> str:
    """A line that is not a call, without invisible characters, outer blanks and backticks.

    Returns "" for formatting that wraps nothing: blank lines, fences (```` ```python ````) and
    lone backticks.
    """
    if _INVISIBLE.search(line):
        line = _INVISIBLE.sub("", line)
    text = line.strip()
    if text[:1] == "`" or text[-1:] == "`":
        if _FENCE.fullmatch(text):
            return ""
        text = text.strip(_EDGES)
    return text


def _cut_words(truncated: str) -> str:
    why = " ".join(truncated.split())
    why = f" ({clip(why, 80)})" if why else ""
    return f"the model's reply was cut off by its token limit{why}"


def _has_unterminated_string(args_text: str) -> bool:
    try:
        parse_arguments(args_text, idx=1, known=())
    except ArgumentSyntaxError as exc:
        return str(exc).startswith("unterminated string")
    return False


def _path_problem(args_text: str) -> str | None:
    """What is wrong with a reference's path in a call whose brackets do not match, if that is
    the cause: ``f(x=$1[0)`` lacks the index's ``]``, which says more than the mismatch."""
    try:
        parse_arguments(args_text, idx=1, known=())
    except PathSyntaxError as exc:
        return str(exc)
    except ArgumentSyntaxError:
        return None
    return None


def _is_head(buf: str, start: int, end: int) -> bool:
    head = _HEAD.match(buf, start, end)
    return head is not None and bool(head.group(1) or head.group(2) == JOIN)


def _first_of(buf: str, chars: str, start: int) -> int:
    best = -1
    for c in chars:
        i = buf.find(c, start)
        if i >= 0 and (best < 0 or i < best):
            best = i
    return best


def parse_plan(text: str, *, known: Iterable[int] = ()) -> list[PlanEvent]:
    """Parse a whole plan at once: the events ``PlanParser`` gives for ``text`` then ``close()``."""
    parser = PlanParser(known)
    return parser.feed(text) + parser.close()
