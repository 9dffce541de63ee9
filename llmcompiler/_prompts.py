"""What fills the prompt templates (``_templates``): tool descriptions, and finished tasks as
the planner and joiner read them.

Task results are shown as safe text (``observation``): whatever a tool returned, the prompt
can be built and holds no key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from llmcompiler._records import TaskRecord
from llmcompiler._redact import scrub
from llmcompiler._text import safe_text
from llmcompiler._tools import Tool
from llmcompiler._types import Observation

__all__ = ["describe_tools", "observation", "observation_text", "observations", "render_history", "task_label"]

MAX_OBSERVATION_CHARS = 4000
_MARGIN = 256


def describe_tools(tools: Iterable[Tool]) -> str:
    """The tools as a prompt lists them: one numbered block per tool, with its signature,
    description and parameter notes.

    Example:
        >>> from llmcompiler import tool
        >>> @tool
        ... def square(x: int) -> int:
        ...     '''Square a number.'''
        ...     return x * x
        >>> print(describe_tools([square]))
        1. square(x: int)
           Square a number.
    """
    blocks = []
    for i, tool in enumerate(tools, 1):
        lines = [f"{i}. {tool.signature()}"]
        if tool.description:
            lines.extend(f"   {line}" for line in tool.description.strip().splitlines())
        for pname, prop in tool.parameters.get("properties", {}).items():
            note = prop.get("description") if isinstance(prop, dict) else None
            if note:
                lines.append(f"   - {pname}: {note}")
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def observation(result: object) -> str:
    """A tool's result as a model reads it: its text (``safe_text``) with the secrets taken out
    (``scrub``), cut after ``MAX_OBSERVATION_CHARS`` characters with a note saying so.

    Example:
        >>> observation(10**5000)
        '<int of 5001 digits: 1000…000>'
    """
    if isinstance(result, str):
        text = scrub(safe_text(result))
        extra = len(text) - MAX_OBSERVATION_CHARS
        return text if extra <= 0 else text[:MAX_OBSERVATION_CHARS] + f" ... [{extra} more characters]"
    # Rendered a margin beyond the cut, so a secret at the cut is still whole when it is scrubbed.
    text = scrub(safe_text(result, MAX_OBSERVATION_CHARS + _MARGIN))
    if len(text) <= MAX_OBSERVATION_CHARS:
        return text
    return text[:MAX_OBSERVATION_CHARS] + " ... [cut: the rest is not shown]"


def observation_text(record: TaskRecord) -> str:
    """A finished task's outcome as a model reads it: its result as ``observation`` shows it,
    or its error message; safe text either way, secrets taken out.

    Example:
        >>> from llmcompiler import TaskRecord
        >>> observation_text(TaskRecord(idx=1, tool="square", args={"x": 3}, deps=frozenset(), thought=None, result=9))
        '9'
        >>> observation_text(TaskRecord(idx=2, tool="square", args={}, deps=frozenset(), thought=None, error="no x"))
        'no x'
    """
    if record.error is None:
        return observation(record.result)
    return scrub(safe_text(record.error))


def render_history(records: Iterable[TaskRecord]) -> str:
    """Tasks as the joiner and the replanner read them: thought, call, observation.

    Every part is safe text with the secrets taken out (``_redact.scrub``): this text is
    sent to the model's provider.
    """
    lines: list[str] = []
    for rec in records:
        if rec.tool == "join":
            continue
        if rec.thought:
            lines.append(f"Thought: {safe_text(rec.thought)}")
        lines.append(safe_text(rec.line) or f"{rec.idx}. {safe_text(rec.tool)}(...)")
        shown = observation_text(rec)
        lines.append(f"Observation: ERROR: {shown}" if rec.error is not None else f"Observation: {shown}")
    return scrub("\n".join(lines)) if lines else "(no tasks were run)"


_LABEL_ARG_CHARS = 24
_LABEL_CHARS = 60
_NOT_IN_LABEL = re.compile(r"[()\[\]{}\s]+")


def task_label(record: TaskRecord) -> str:
    """A short name for a task's call: the tool and its arguments as plain text.

    ``weather(Tokyo)``, ``divide(14000000, 709000)``: strings unquoted, each argument cut to a
    few words, brackets and line breaks taken out, so a label is one line whose parentheses
    balance. Secrets are scrubbed.

    Example:
        >>> from llmcompiler._records import TaskRecord
        >>> task_label(TaskRecord(idx=1, tool="weather", args={"city": "Tokyo"}, deps=frozenset(), thought=None))
        'weather(Tokyo)'
    """
    parts: list[str] = []
    for value in record.args.values():
        text = value if isinstance(value, str) else safe_text(value, _LABEL_ARG_CHARS * 2)
        text = _NOT_IN_LABEL.sub(" ", text).strip()
        if len(text) > _LABEL_ARG_CHARS:
            text = text[: _LABEL_ARG_CHARS - 1].rstrip() + "…"
        parts.append(text)
    inner = ", ".join(parts)
    if len(inner) > _LABEL_CHARS:
        inner = inner[: _LABEL_CHARS - 1].rstrip() + "…"
    return scrub(f"{safe_text(record.tool)}({inner})")


def observations(records: Iterable[TaskRecord]) -> tuple[Observation, ...]:
    """Finished tasks as ``Observation``s (``join()`` left out), for adapters that ground on them."""
    found: list[Observation] = []
    for rec in records:
        if rec.tool == "join":
            continue
        found.append(
            Observation(
                idx=rec.idx,
                tool=rec.tool,
                label=task_label(rec),
                text=observation_text(rec),
                ok=rec.error is None,
                deps=tuple(sorted(rec.deps)),
            )
        )
    return tuple(found)
