"""Prompt templates (files in ``prompts/``, shipped as package data) and what fills them.

A template holds ``{{name}}`` placeholders; ``render`` fills every one and refuses a missing
or unexpected value, so a renamed placeholder cannot silently leave a hole in a prompt.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from llmcompiler._errors import UserError
from llmcompiler._literals import to_text
from llmcompiler._records import TaskRecord
from llmcompiler._tools import Tool

__all__ = ["describe_tools", "load", "render", "render_history"]

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
MAX_OBSERVATION_CHARS = 4000


def _prompt_dir() -> Traversable:
    packaged = resources.files("llmcompiler") / "prompts"
    if packaged.is_dir():
        return packaged
    # An editable install or a checkout: the templates live beside the package.
    return Path(__file__).resolve().parent.parent / "prompts"


def _read_all() -> dict[str, str]:
    folder = _prompt_dir()
    return {
        entry.name.removesuffix(".txt"): entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.name.endswith(".txt")
    }


# Read once, at import: file I/O does not belong on the event loop, where prompts are rendered.
_TEMPLATES = _read_all()


def load(name: str) -> str:
    """The text of template ``name`` (a file ``prompts/<name>.txt``)."""
    try:
        return _TEMPLATES[name]
    except KeyError:
        raise UserError(f"no prompt template {name!r} (templates: {', '.join(sorted(_TEMPLATES))})") from None


def render(name: str, **values: str) -> str:
    """Fill template ``name``'s ``{{placeholders}}`` with ``values``.

    Raises:
        UserError: a placeholder has no value, or a value has no placeholder.
    """
    text = load(name)
    wanted = set(_PLACEHOLDER.findall(text))
    missing = wanted - values.keys()
    extra = values.keys() - wanted
    if missing or extra:
        raise UserError(f"prompt {name!r}: missing values {sorted(missing)}, unexpected values {sorted(extra)}")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def describe_tools(tools: Iterable[Tool]) -> str:
    """One numbered block per tool: its signature, description and parameter notes."""
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


def render_history(records: Iterable[TaskRecord]) -> str:
    """Tasks as the joiner and the replanner read them: thought, call, observation."""
    lines: list[str] = []
    for rec in records:
        if rec.tool == "join":
            continue
        if rec.thought:
            lines.append(f"Thought: {rec.thought}")
        lines.append(rec.line or f"{rec.idx}. {rec.tool}(...)")
        if rec.error is not None:
            lines.append(f"Observation: ERROR: {rec.error}")
        else:
            text = to_text(rec.result)
            if len(text) > MAX_OBSERVATION_CHARS:
                text = text[:MAX_OBSERVATION_CHARS] + f" ... [{len(text) - MAX_OBSERVATION_CHARS} more characters]"
            lines.append(f"Observation: {text}")
    return "\n".join(lines) if lines else "(no tasks were run)"
