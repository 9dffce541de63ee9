"""What a model call costs, from a table of list prices.

Prices are USD per million tokens (input, output), standard tier, no batch or cache
discounts, short-context rates. They were written down from the providers' public price
pages as remembered in late 2025 (``PRICES_AS_OF``); they are not fetched and may be out of
date. Check them before quoting a cost, or pass your own table to ``cost_usd``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from llmcompiler._types import Usage

__all__ = ["PRICES", "PRICES_AS_OF", "cost_usd", "price_of"]

PRICES_AS_OF = "2025-11 (from memory of the providers' price pages; verify before relying on it)"

PRICES: Mapping[str, tuple[float, float]] = {
    # OpenAI
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-2024-05-13": (5.00, 15.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-4-1106-preview": (10.00, 30.00),
    "gpt-4": (30.00, 60.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    "gpt-3.5-turbo-1106": (1.00, 2.00),
    "o1": (15.00, 60.00),
    "o1-mini": (1.10, 4.40),
    "o3": (2.00, 8.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    # Anthropic
    "claude-opus-4-5": (5.00, 25.00),
    "claude-opus-4-1": (15.00, 75.00),
    "claude-opus-4": (15.00, 75.00),
    "claude-sonnet-4-5": (3.00, 15.00),
    "claude-sonnet-4": (3.00, 15.00),
    "claude-haiku-4-5": (1.00, 5.00),
    "claude-3-7-sonnet": (3.00, 15.00),
    "claude-3-5-sonnet": (3.00, 15.00),
    "claude-3-5-haiku": (0.80, 4.00),
    "claude-3-opus": (15.00, 75.00),
    "claude-3-haiku": (0.25, 1.25),
}
"""USD per million (input, output) tokens, by model id without its date suffix."""

# Providers whose model ids the table prices; others (local, OpenAI-compatible servers) cost nothing known.
_PRICED_PROVIDERS = frozenset({"openai", "anthropic", "langchain"})
# What may follow a table id in a full model id: a release date or an alias.
_SUFFIX = re.compile(r"(?:-\d{4}-\d{2}-\d{2}|-\d{8}|-\d{4}|-latest|-preview)?")


def price_of(model_name: str, prices: Mapping[str, tuple[float, float]] = PRICES) -> tuple[float, float] | None:
    """The (input, output) USD per million tokens of ``model_name``, or ``None`` when unknown.

    ``model_name`` is a model id (``"gpt-4o-mini-2024-07-18"``) or an adapter's name
    (``"openai:gpt-4o-mini"``); a dated or ``-latest`` id takes the price of its base id.
    """
    provider, sep, model = model_name.partition(":")
    if not sep:
        model = provider
    elif provider not in _PRICED_PROVIDERS:
        return None
    model = model.strip().lower()
    if model in prices:
        return prices[model]
    best: str | None = None
    for base in prices:
        if model.startswith(base) and _SUFFIX.fullmatch(model[len(base) :]) and (best is None or len(base) > len(best)):
            best = base
    return prices[best] if best is not None else None


def cost_usd(model_name: str, usage: Usage, prices: Mapping[str, tuple[float, float]] = PRICES) -> float | None:
    """What ``usage`` cost in USD at list price, or ``None`` for an unknown or local model.

    Example:
        >>> cost_usd("openai:gpt-4o-mini", Usage(prompt_tokens=1_000_000, completion_tokens=0))
        0.15
        >>> cost_usd("local", Usage(prompt_tokens=10)) is None
        True
    """
    price = price_of(model_name, prices)
    if price is None:
        return None
    per_input, per_output = price
    return (usage.prompt_tokens * per_input + usage.completion_tokens * per_output) / 1_000_000
