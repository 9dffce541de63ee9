"""Secret redaction: API keys, bearer tokens and key-shaped strings out of any text shown or kept."""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["redact"]

# Shapes of provider keys, in case a server echoes one back in an error body.
_KEY_SHAPES = re.compile(r"\bsk-[A-Za-z0-9_\-*.]{6,}")
# A bearer token ends at white space, a quote or punctuation that closes or separates ("Bearer sk-abc)").
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"'),;]+")


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with the given secrets, bearer tokens and key-shaped strings replaced.

    Example:
        >>> redact("refused (Authorization: Bearer abc123)")
        'refused (Authorization: Bearer [redacted])'
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    text = _BEARER.sub(r"\1[redacted]", text)
    return _KEY_SHAPES.sub("[redacted]", text)
