"""The plan language's streaming parser: the task fetching unit.

``PlanParser`` is a pure, synchronous state machine: text chunks in, events out. It accepts
arbitrary chunk boundaries (one character at a time, random pieces and the whole text give
the same events) and emits a task the moment its call's closing parenthesis arrives, so the
executor can start it while the model is still writing the rest of the plan.

Every line becomes a ``TaskParsed``, a ``ThoughtParsed``, or a ``ParseError``; blank lines,
code fences and ``# comments`` are formatting. A numbered line that cannot be a task still
yields a ``ParseError`` carrying its number, which the executor records as a failed task.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from typing import Any, Literal

from llmcompiler._literals import ArgumentSyntaxError, parse_arguments

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
    fails with ``reason``; tasks that depend on it are not run.
    """

    line: str
    reason: str
    idx: int | None = None
    tool: str | None = None
    thought: str | None = None
    kind: Literal["error"] = "error"

    def message(self) -> str:
        """The error as one line naming the plan line."""
        return f"plan line {self.line!r}: {self.reason}"


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PlanEnded:
    """The plan is complete: ``join()`` closed, ``<END_OF_PLAN>`` arrived or the text ended."""

    reason: Literal["join", "end_marker", "stream_end"]
    kind: Literal["end"] = "end"


PlanEvent = TaskParsed | ThoughtParsed | ParseError | PlanEnded

# "3. search(" / "3) search(" / bare "join(": the head of a call, matched once its "(" arrives.
_HEAD = re.compile(r"[ \t]*(?:(\d+)[ \t]*[.)][ \t]*)?([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)[ \t]*\($")
_NUMBERED = re.compile(r"\s*(\d+)\s*[.)]\s*(.*)$", re.DOTALL)
_THOUGHT = re.compile(r"\s*(?:\*\*)?thought(?:\*\*)?\s*:\s*(?:\*\*)?\s*(.*)$", re.IGNORECASE | re.DOTALL)
_BARE_CALL = re.compile(r"[A-Za-z_][\w.]*\s*\(")
_CALL_STOPS = re.compile(r"[()\[\]{}\"'#\n]")
_STRING_STOPS = {'"': re.compile(r'[\\"\n]'), "'": re.compile(r"[\\'\n]")}
_OPEN, _CLOSE = "([{", ")]}"

_HEAD_MODE, _CALL_MODE, _STRING_MODE, _REST_MODE = range(4)


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
        self._buf = ""
        self._pos = 0
        self._mode = _HEAD_MODE
        self._depth = 0
        self._quote = ""
        self._args_start = 0
        self._line_start = 0  # start of the current physical line inside a multi-line call
        self._head: tuple[int | None, str] = (None, "")
        self._thought: str | None = None
        self._ended = False
        self._events: list[PlanEvent] = []

    @property
    def ended(self) -> bool:
        """Whether the plan has ended (``join()``, ``<END_OF_PLAN>`` or ``close()``)."""
        return self._ended

    def feed(self, chunk: str) -> list[PlanEvent]:
        """Take the next piece of text and return the events it completes."""
        if len(chunk) > 256 and "\n" in chunk:
            # Scan a long text line by line: the buffer then holds about one line, so consuming
            # a line costs O(line) instead of O(text) and a whole plan parses in linear time.
            start = 0
            while start < len(chunk):
                end = chunk.find("\n", start) + 1 or len(chunk)
                self._buf += chunk[start:end]
                self._scan()
                start = end
        elif chunk:
            self._buf += chunk
            self._scan()
        events, self._events = self._events, []
        return events

    def close(self) -> list[PlanEvent]:
        """The text has ended: flush what is left and end the plan."""
        self._scan()
        if self._mode in (_CALL_MODE, _STRING_MODE):
            self._fail_call("the call is not closed: missing ')' at the end of the plan", len(self._buf))
        elif self._mode == _REST_MODE:
            self._finish_rest(self._buf)
        elif self._buf.strip():
            self._line(self._buf)
        self._buf, self._pos, self._mode = "", 0, _HEAD_MODE
        if self._thought is not None and not self._ended:
            self._events.append(ParseError(line=f"Thought: {self._thought}", reason="a thought with no task after it"))
            self._thought = None
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
                    return
                if buf[m] == "\n":
                    self._line(buf[:m])
                    buf = self._consume(m + 1)
                    continue
                head = _HEAD.match(buf, 0, m + 1)
                if head is None or not (head.group(1) or head.group(2) == JOIN):
                    nl = buf.find("\n", m)
                    if nl < 0:
                        self._pos = len(buf)
                        return
                    self._line(buf[:nl])
                    buf = self._consume(nl + 1)
                    continue
                self._head = (int(head.group(1)) if head.group(1) else None, head.group(2))
                close = buf.find(")", m + 1)
                if close >= 0 and _CALL_STOPS.search(buf, m + 1, close) is None:
                    # Fast path: a call with no strings, brackets or comments closes at its first ')'.
                    self._emit_call(buf[m + 1 : close], buf[: close + 1])
                    buf = self._consume(close + 1)
                    self._mode = _REST_MODE
                    continue
                self._mode, self._depth = _CALL_MODE, 1
                self._args_start = self._line_start = self._pos = m + 1
            elif mode == _CALL_MODE:
                m_obj = _CALL_STOPS.search(buf, self._pos)
                if m_obj is None:
                    self._pos = len(buf)
                    return
                i = m_obj.start()
                c = buf[i]
                self._pos = i + 1
                if c in _OPEN:
                    self._depth += 1
                    if c == "(" and self._line_start > self._args_start and _is_head(buf, self._line_start, i + 1):
                        # A new numbered call began while this one was open: this one lacks its ')'.
                        buf = self._runaway()
                elif c in _CLOSE:
                    self._depth -= 1
                    if self._depth == 0:
                        self._emit_call(buf[self._args_start : i], buf[: i + 1])
                        buf = self._consume(i + 1)
                        self._mode = _REST_MODE
                elif c == "#":
                    nl = buf.find("\n", i)
                    if nl < 0:
                        self._pos = i  # wait for the comment's end
                        return
                    self._pos = nl
                elif c == "\n":
                    if self._line_start > self._args_start and _THOUGHT.match(buf, self._line_start, i):
                        buf = self._runaway()
                        continue
                    self._line_start = i + 1
                else:
                    self._mode, self._quote = _STRING_MODE, c
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
            else:  # _REST_MODE: what follows a call on its line
                nl = buf.find("\n", self._pos)
                if nl < 0:
                    self._pos = len(buf)
                    return
                self._finish_rest(buf[:nl])
                buf = self._consume(nl + 1)
                self._mode = _HEAD_MODE

    def _consume(self, upto: int) -> str:
        self._buf = self._buf[upto:]
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
        line = line.strip()
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
        except RecursionError:
            self._events.append(
                ParseError(line=line[:200], reason="arguments nested too deeply", idx=idx, tool=name, thought=thought)
            )
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

    def _fail_call(self, reason: str, upto: int) -> None:
        number, name = self._head
        line = self._buf[:upto].strip()
        idx = self._number(number, line, allow_missing=name == JOIN)
        if idx is not None:
            if _has_unterminated_string(self._buf[self._args_start : upto]):
                reason = f"unterminated string, so {reason}"
            self._events.append(ParseError(line=line, reason=reason, idx=idx, tool=name, thought=self._take_thought()))
        if name == JOIN:
            self._end("join")

    def _number(self, number: int | None, line: str, *, allow_missing: bool) -> int | None:
        """Check a task number is new and increasing; report and return None when not."""
        if self._ended:
            self._events.append(ParseError(line=line, reason="the plan already ended"))
            return None
        if number is None:
            if not allow_missing:
                self._events.append(ParseError(line=line, reason="a task needs a number: 'N. tool(...)'"))
                return None
            number = self._last + 1
        if number in self._known:
            self._events.append(ParseError(line=line, reason=f"task number {number} is used twice"))
            return None
        if number < self._last:
            self._events.append(
                ParseError(line=line, reason=f"task number {number} comes after {self._last}: numbers must increase")
            )
            return None
        self._last = number
        self._known.add(number)
        return number

    def _line(self, line: str) -> None:
        """A whole line that is not a call."""
        if END_OF_PLAN in line:
            before = line[: line.index(END_OF_PLAN)]
            if before.strip():
                self._line(before)
            self._end("end_marker")
            return
        text = line.strip()
        if not text or text.startswith(("```", "#")):
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
            idx = self._number(int(numbered.group(1)), text, allow_missing=False)
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

    def _finish_rest(self, rest: str) -> None:
        text = rest.strip()
        if END_OF_PLAN in text:
            text = text[: text.index(END_OF_PLAN)].strip()
            self._end("end_marker")
        if text and not text.startswith("#"):
            self._events.append(ParseError(line=text, reason="unexpected text after a call on the same line"))

    def _take_thought(self) -> str | None:
        thought, self._thought = self._thought, None
        return thought

    def _end(self, reason: Literal["join", "end_marker", "stream_end"]) -> None:
        if not self._ended:
            self._ended = True
            self._events.append(PlanEnded(reason=reason))


def _has_unterminated_string(args_text: str) -> bool:
    try:
        parse_arguments(args_text, idx=1, known=())
    except ArgumentSyntaxError as exc:
        return str(exc).startswith("unterminated string")
    except RecursionError:
        return False
    return False


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
