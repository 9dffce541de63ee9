"""What a model call costs, from a table of list prices.

Prices are USD per million tokens (input, output), standard tier, no batch discounts,
short-context rates. They were written down from the providers' public price pages as
remembered in late 2025 (``PRICES_AS_OF``); they are not fetched and may be out of date.
Check them before quoting a cost, or pass your own tables to ``cost_usd``.

Prompt caching has its own rates (``CACHE_PRICES``: cache read, cache write), from the same
memory of the same pages: OpenAI bills cached prompt tokens at its per-model cached-input
price (half, a quarter or a tenth of the input price, by model generation) and charges
nothing extra to write the cache; Anthropic bills a cache read at 0.1x the input price and a
5-minute cache write at 1.25x. A model with no row there (the models that predate caching)
pays its input price for every prompt token.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from llmcompiler._types import Usage

__all__ = ["CACHE_PRICES", "PRICES", "PRICES_AS_OF", "add_cost", "cache_price_of", "cost_usd", "price_of"]

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

CACHE_PRICES: Mapping[str, tuple[float, float]] = {
    # OpenAI: the cached-input price; writing the cache costs the input price (no surcharge).
    "gpt-5": (0.125, 1.25),
    "gpt-5-mini": (0.025, 0.25),
    "gpt-5-nano": (0.005, 0.05),
    "gpt-4.1": (0.50, 2.00),
    "gpt-4.1-mini": (0.10, 0.40),
    "gpt-4.1-nano": (0.025, 0.10),
    "gpt-4o": (1.25, 2.50),
    "gpt-4o-mini": (0.075, 0.15),
    "o1": (7.50, 15.00),
    "o1-mini": (0.55, 1.10),
    "o3": (0.50, 2.00),
    "o3-mini": (0.55, 1.10),
    "o4-mini": (0.275, 1.10),
    # Anthropic: a cache hit at 0.1x the input price, a 5-minute cache write at 1.25x
    # (Claude 3 Haiku's page rounds them: $0.03 and $0.30).
    "claude-opus-4-5": (0.50, 6.25),
    "claude-opus-4-1": (1.50, 18.75),
    "claude-opus-4": (1.50, 18.75),
    "claude-sonnet-4-5": (0.30, 3.75),
    "claude-sonnet-4": (0.30, 3.75),
    "claude-haiku-4-5": (0.10, 1.25),
    "claude-3-7-sonnet": (0.30, 3.75),
    "claude-3-5-sonnet": (0.30, 3.75),
    "claude-3-5-haiku": (0.08, 1.00),
    "claude-3-opus": (1.50, 18.75),
    "claude-3-haiku": (0.03, 0.30),
}
"""USD per million (cache read, cache write) prompt tokens, by the ``PRICES`` id they go with."""

# Providers whose model ids the table prices; others (local, OpenAI-compatible servers) cost nothing known.
_PRICED_PROVIDERS = frozenset({"openai", "anthropic", "langchain"})
# What may follow a table id in a full model id: a release date or an alias.
_SUFFIX = re.compile(r"(?:-\d{4}-\d{2}-\d{2}|-\d{8}|-\d{4}|-latest|-preview)?")


def _base_id(model_name: str, prices: Mapping[str, tuple[float, float]]) -> str | None:
    """The ``prices`` id ``model_name`` is priced as, or ``None``."""
    provider, sep, model = model_name.partition(":")
    if not sep:
        model = provider
    elif provider not in _PRICED_PROVIDERS:
        return None
    model = model.strip().lower()
    if model in prices:
        return model
    best: str | None = None
    for base in prices:
        if model.startswith(base) and _SUFFIX.fullmatch(model[len(base) :]) and (best is None or len(base) > len(best)):
            best = base
    return best


def price_of(model_name: str, prices: Mapping[str, tuple[float, float]] = PRICES) -> tuple[float, float] | None:
    """The (input, output) USD per million tokens of ``model_name``, or ``None`` when unknown.

    ``model_name`` is a model id (``"gpt-4o-mini-2024-07-18"``) or an adapter's name
    (``"openai:gpt-4o-mini"``); a dated or ``-latest`` id takes the price of its base id.
    """
    base = _base_id(model_name, prices)
    return None if base is None else prices[base]


def cache_price_of(
    model_name: str,
    prices: Mapping[str, tuple[float, float]] = PRICES,
    cache_prices: Mapping[str, tuple[float, float]] = CACHE_PRICES,
) -> tuple[float, float] | None:
    """The (cache read, cache write) USD per million prompt tokens of ``model_name``, or ``None``
    when its price is unknown.

    The model id is matched against ``prices`` as ``price_of`` matches it, and that id's row of
    ``cache_prices`` gives the rates; a priced model without such a row (one that predates
    caching, or a table of one's own) pays its input price for cached and written tokens alike.

    Example:
        >>> cache_price_of("openai:gpt-4o-2024-08-06")
        (1.25, 2.5)
        >>> cache_price_of("anthropic:claude-sonnet-4-5-20250929")
        (0.3, 3.75)
    """
    base = _base_id(model_name, prices)
    if base is None:
        return None
    return cache_prices.get(base, (prices[base][0], prices[base][0]))


def cost_usd(
    model_name: str,
    usage: Usage,
    prices: Mapping[str, tuple[float, float]] = PRICES,
    cache_prices: Mapping[str, tuple[float, float]] = CACHE_PRICES,
) -> float | None:
    """What ``usage`` cost in USD at list price, or ``None`` for an unknown or local model, or
    for token counts no price can be computed from (a usage report of ``10**5000`` tokens).

    Prompt tokens read from the provider's cache (``usage.cached_tokens``) are charged at the
    cache-read rate and those written to it (``usage.cache_write_tokens``) at the cache-write
    rate (``cache_price_of``); the other prompt tokens at the input price.

    Example:
        >>> cost_usd("openai:gpt-4o-mini", Usage(prompt_tokens=1_000_000, completion_tokens=0))
        0.15
        >>> cost_usd("openai:gpt-4o", Usage(prompt_tokens=2_000_000, cached_tokens=1_000_000))
        3.75
        >>> cost_usd("local", Usage(prompt_tokens=10)) is None
        True
    """
    base = _base_id(model_name, prices)
    if base is None:
        return None
    per_input, per_output = prices[base]
    per_read, per_write = cache_prices.get(base, (per_input, per_input))
    cached = max(0, min(usage.cached_tokens, usage.prompt_tokens))
    written = max(0, min(usage.cache_write_tokens, usage.prompt_tokens - cached))
    uncached = usage.prompt_tokens - cached - written
    try:
        total = uncached * per_input + cached * per_read + written * per_write + usage.completion_tokens * per_output
    except OverflowError:  # a count too large for a float: the model's report is garbage, its price unknown
        return None
    cost = total / 1_000_000
    return cost if math.isfinite(cost) else None


def add_cost(total: float | None, model_name: str, usage: Usage) -> float | None:
    """``total`` plus the list-price cost of ``usage`` on ``model_name``: a running cost that
    becomes ``None`` (unknown) for good once one call's price is unknown.

    Example:
        >>> add_cost(0.0, "gpt-4o", Usage(prompt_tokens=1_000_000))
        2.5
        >>> add_cost(2.5, "local:gemma", Usage(prompt_tokens=10)) is None
        True
    """
    cost = cost_usd(model_name, usage)
    return None if cost is None or total is None else total + cost
