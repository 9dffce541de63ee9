"""The joiner's reply: ``Thought: ...`` then ``Action: Finish(answer)`` or ``Action: Replan(why)``.

``parse_join_reply`` is forgiving where models are sloppy and strict where it matters:
parentheses and quotes inside the answer survive (``Finish(Paris (France))`` answers
``Paris (France)``), the ``Thought`` and even the ``Action:`` label may be missing, text may
surround it; but only an ``Action`` names the decision (a "Replan" elsewhere in the text does
not trigger one), and a reply with neither action, or an empty answer, is an error.

``AnswerStream`` reads the reply as it streams and gives out the ``Finish(...)`` answer as it
is written, never a word ``parse_join_reply`` would not keep (the ``AnswerChunk`` events).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Literal

from llmcompiler._errors import JoinParseError

__all__ = ["AnswerStream", "Finish", "JoinDecision", "Replan", "parse_join_reply"]


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Finish:
    """The joiner answered."""

    answer: str
    thought: str | None = None
    action: Literal["finish"] = "finish"


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Replan:
    """The joiner asked for a new plan; ``feedback`` says what is missing."""

    feedback: str
    thought: str | None = None
    action: Literal["replan"] = "replan"


JoinDecision = Finish | Replan

_ACTION = re.compile(r"(?im)^[ \t>*_`]*(?:action[ \t*_]*:[ \t*_`]*)?(finish|replan)[ \t]*\(")
_LOOSE_ACTION = re.compile(r"(?i)action[ \t*_]*:[ \t*_`]*(finish|replan)[ \t]*\(")
_THOUGHT = re.compile(
    r"(?is)thought[ \t*_]*:(.*?)(?=^[ \t>*_`]*(?:action[ \t*_]*:|finish[ \t]*\(|replan[ \t]*\()|\Z)",
    re.MULTILINE,
)
_QUOTES = {'"': '"', "'": "'", "`": "`", "\u201c": "\u201d"}


def parse_join_reply(text: str) -> JoinDecision:
    """Read the joiner's reply.

    Raises:
        JoinParseError: the reply holds no ``Finish(...)`` or ``Replan(...)`` action, or the
            answer is empty.

    Example:
        >>> parse_join_reply("Thought: done.\\nAction: Finish(Paris (France))")
        Finish(answer='Paris (France)', thought='done.', action='finish')
    """
    match = _ACTION.search(text) or _LOOSE_ACTION.search(text)
    if match is None:
        raise JoinParseError(text, "expected 'Action: Finish(answer)' or 'Action: Replan(reason)'")
    body = _argument(text, match.end())
    thought_match = _THOUGHT.search(text, 0, match.start()) if match.start() > 0 else None
    thought = thought_match.group(1).strip() or None if thought_match else None
    if match.group(1).lower() == "finish":
        if not body:
            raise JoinParseError(text, "Finish() holds no answer")
        return Finish(answer=body, thought=thought)
    return Replan(feedback=body, thought=thought)


def _argument(text: str, start: int) -> str:
    """The text between ``(`` at ``start - 1`` and its matching ``)``.

    Brackets are counted; when they never balance (``Finish(Austin Powers (film)``), the
    argument runs to the end of the reply (``Austin Powers (film)``).
    """
    depth = 1
    for i in range(start, len(text)):
        c = text[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return _unquote(text[start:i].strip())
    return _unquote(text[start:].strip())


def _unquote(body: str) -> str:
    if len(body) >= 2 and body[0] in _QUOTES and body[-1] == _QUOTES[body[0]]:
        inner = body[1:-1].strip()
        if body[0] not in inner:
            return inner
    return body


class AnswerStream:
    """The answer of a joiner's reply as it streams: ``feed`` each piece of the reply, and
    ``finish`` with the parsed ``Finish``'s answer once the reply is whole.

    What ``feed`` and ``finish`` return, joined, is exactly the answer ``parse_join_reply``
    reads from the whole reply, for any reply and any way of cutting it into pieces (a
    property test holds it to that). So ``feed`` gives out only text that is answer whatever
    comes next:

    - nothing before the action is known for sure: an ``Action: Finish(`` at a line's start
      (as ``parse_join_reply`` looks first); after one only met mid-line, a later line could
      still hold the action that counts, so the whole answer waits for ``finish``;
    - nothing of a ``Replan(...)``;
    - the answer's leading spaces never, its trailing spaces and ``)`` only once more text
      follows them (they may be the end: stripped, or the closing bracket);
    - an answer that opens with a quote waits until the quotes are known to stay (the same
      quote is met again before its end); else it may lose them, so it waits for ``finish``.

    Example:
        >>> stream = AnswerStream()
        >>> [stream.feed(p) for p in ["Thought: ok.\\nAction: Fin", "ish(Paris ", "(France)", ")"]]
        ['', 'Paris', ' (France', ')']
        >>> stream.finish(parse_join_reply("Thought: ok.\\nAction: Finish(Paris (France))").answer)
        ''
    """

    def __init__(self) -> None:
        self._text = ""
        self._scan = 0  # the last line's start: where a line-start action may still begin
        self._start: int | None = None  # where the Finish argument begins
        self._depth = 1
        self._seen = 0  # argument characters counted so far (brackets)
        self._done = False  # the answer is known (its bracket closed), or it is no Finish
        self._sent = ""
        self._quoted = False  # the answer's opening quote is known to stay

    @property
    def sent(self) -> str:
        """The answer text given out so far."""
        return self._sent

    def feed(self, piece: str) -> str:
        """Read one more piece of the reply; return the answer text it makes certain (often ``""``)."""
        if self._done or not piece:
            return ""
        self._text += piece
        text = self._text
        if self._start is None:
            match = self._line_start_action(text)
            if match is None:
                return ""
            if match.group(1).lower() != "finish":
                self._done = True  # a Replan: nothing of it is answer
                return ""
            self._start = self._seen = match.end()
        start = self._start
        for i in range(self._seen, len(text)):
            c = text[i]
            if c == "(":
                self._depth += 1
            elif c == ")":
                self._depth -= 1
                if self._depth == 0:
                    # The bracket closed: the answer is known whatever follows.
                    self._done = True
                    return self._give(_unquote(text[start:i].strip()))
        self._seen = len(text)
        return self._give(self._certain(text, start))

    def _line_start_action(self, text: str) -> re.Match[str] | None:
        """The first ``_ACTION`` at a line's start from ``_scan`` on (as ``_ACTION.search``), tried
        only at line starts: a long line is not searched again with each piece of it."""
        while True:
            match = _ACTION.match(text, self._scan)
            if match is not None:
                return match
            newline = text.find("\n", self._scan)
            if newline < 0:
                return None  # the last line may still grow into an action
            self._scan = newline + 1

    def finish(self, answer: str) -> str:
        """The rest of ``answer`` (the parsed reply's ``Finish.answer``) not given out yet.

        Call it only for a reply that parsed as a ``Finish``; after a failed reply, call nothing
        (the rest is never given out)."""
        self._done = True
        if not answer.startswith(self._sent):  # pragma: no cover - ruled out by the property test
            return ""
        return self._give(answer)

    def _certain(self, text: str, start: int) -> str:
        """The longest text the answer surely starts with, the argument still open."""
        begin = start
        end = len(text)
        while begin < end and text[begin].isspace():
            begin += 1
        if begin == end:
            return ""
        # Trailing spaces and ")" may end up outside the answer (stripped, or a closing bracket).
        while end > begin and (text[end - 1].isspace() or text[end - 1] == ")"):
            end -= 1
        quote = text[begin]
        # An answer that opens with a quote may lose it (and its closing one): it waits until the
        # same quote is met again before its last character, so inside the answer: then they stay.
        if quote in _QUOTES and not self._quoted and text.find(quote, begin + 1, end - 1) < 0:
            return ""
        self._quoted = True
        return text[begin:end]

    def _give(self, answer: str) -> str:
        if len(answer) <= len(self._sent) or not answer.startswith(self._sent):
            return ""
        new = answer[len(self._sent) :]
        self._sent = answer
        return new
