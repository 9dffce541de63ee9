"""The joiner's reply: ``Thought: ...`` then ``Action: Finish(answer)`` or ``Action: Replan(why)``.

``parse_join_reply`` is forgiving where models are sloppy and strict where it matters:
parentheses and quotes inside the answer survive (``Finish(Paris (France))`` answers
``Paris (France)``), the ``Thought`` and even the ``Action:`` label may be missing, text may
surround it; but only an ``Action`` names the decision (a "Replan" elsewhere in the text does
not trigger one), and a reply with neither action, or an empty answer, is an error.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Literal

from llmcompiler._errors import JoinParseError

__all__ = ["Finish", "JoinDecision", "Replan", "parse_join_reply"]


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
    argument runs to the end of the reply, less a final ``)`` that has no ``(`` of its own.
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
    body = text[start:].strip()
    if body.endswith(")") and body.count(")") > body.count("("):
        body = body[:-1].rstrip()
    return _unquote(body)


def _unquote(body: str) -> str:
    if len(body) >= 2 and body[0] in _QUOTES and body[-1] == _QUOTES[body[0]]:
        inner = body[1:-1].strip()
        if body[0] not in inner:
            return inner
    return body
