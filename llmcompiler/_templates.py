"""Prompt templates: files in ``prompts/``, shipped as package data, read once per process.

A template holds ``{{name}}`` placeholders; ``render`` fills every one and refuses a missing
or unexpected value, so a renamed placeholder cannot silently leave a hole in a prompt.
Every value is scrubbed of secrets before it is filled in: a prompt is sent to a provider.
"""

from __future__ import annotations

import re
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from llmcompiler._errors import UserError
from llmcompiler._redact import scrub

__all__ = ["fill", "load", "render"]

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


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
    """Fill template ``name``'s ``{{placeholders}}`` with ``values``, each with its secrets taken
    out (``_redact.scrub``): a prompt is sent to the model's provider.

    Raises:
        UserError: a placeholder has no value, or a value has no placeholder.
    """
    return _fill(load(name), f"prompt {name!r}", values)


def fill(template: str, /, **values: str) -> str:
    """Fill the ``{{placeholders}}`` of a template's text with ``values``, each with its secrets
    taken out (``scrub``): a prompt is sent to the model's provider.

    Raises:
        UserError: a placeholder has no value, or a value has no placeholder.

    Example:
        >>> fill("Question: {{question}}", question="What is 3 squared?")
        'Question: What is 3 squared?'
    """
    return _fill(template, "prompt template", values)


def _fill(text: str, what: str, values: dict[str, str]) -> str:
    wanted = set(_PLACEHOLDER.findall(text))
    missing = wanted - values.keys()
    extra = values.keys() - wanted
    if missing or extra:
        raise UserError(f"{what}: missing values {sorted(missing)}, unexpected values {sorted(extra)}")
    clean = {key: scrub(value) for key, value in values.items()}
    return _PLACEHOLDER.sub(lambda m: clean[m.group(1)], text)
