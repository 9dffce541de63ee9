"""Text shown to people in one line: error details, table cells, picture labels."""

from __future__ import annotations

__all__ = ["one_line"]


def one_line(text: str, limit: int = 300) -> str:
    """``text`` with its white space folded onto one line, cut to ``limit`` characters with ``…``.

    Example:
        >>> one_line("a\\n  b   c", 4)
        'a b…'
    """
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: max(1, limit - 1)] + "…"
