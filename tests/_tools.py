"""Tools the tests build from JSON Schema alone."""

from __future__ import annotations

from typing import Any

from llmcompiler import Tool


def _noop(**kwargs: Any) -> None:
    return None


def schema_tool(name: str, properties: dict[str, Any], required: list[str]) -> Tool:
    """A tool described only by its parameters' schema; calling it returns None."""
    return Tool.from_schema(
        name=name,
        description=f"the {name} tool",
        parameters={"type": "object", "properties": properties, "required": required},
        fn=_noop,
    )
