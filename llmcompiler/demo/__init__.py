"""Built-in demo tools: weather, local time, an offline fact search, and safe arithmetic.

They need no network: the weather is a fixed table of typical values (labelled as such),
the time is the real current time from the IANA time zone database, the search reads a small
fact table shipped with the package, and ``math`` evaluates arithmetic with a whitelist
walk over the expression's syntax tree (no ``eval``). All are speculation-safe: the first three
only read (``speculative=True``) and ``math`` is ``pure``, so ``--drafter`` can start their calls early.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

from llmcompiler._safemath import evaluate
from llmcompiler._tools import Tool, tool

__all__ = ["DEMO_TOOLS", "local_time", "math", "search", "weather"]

# Typical afternoon conditions (climate normals, rounded): a stand-in for a weather API.
_WEATHER: dict[str, tuple[str, int]] = {
    "tokyo": ("Asia/Tokyo", 17),
    "oslo": ("Europe/Oslo", 6),
    "paris": ("Europe/Paris", 12),
    "london": ("Europe/London", 11),
    "new york": ("America/New_York", 13),
    "berlin": ("Europe/Berlin", 10),
    "sydney": ("Australia/Sydney", 22),
    "san francisco": ("America/Los_Angeles", 15),
}
_CONDITIONS = ("clear", "partly cloudy", "light rain", "overcast")

#: Simulated network latency of the weather and search "APIs", in seconds.
API_LATENCY = 0.3


def _city_key(city: str) -> str:
    key = city.strip().lower()
    if key not in _WEATHER:
        raise ValueError(f"unknown city {city!r}; known cities: {', '.join(sorted(_WEATHER))}")
    return key


@tool(speculative=True)  # reads only: a drafter (--drafter) may call it early
async def weather(city: str) -> str:
    """Current weather in a city (demo data: typical values, not a live forecast).

    Args:
        city: the city's name, e.g. "Tokyo".
    """
    key = _city_key(city)
    await asyncio.sleep(API_LATENCY)
    _, temp = _WEATHER[key]
    condition = _CONDITIONS[len(key) % len(_CONDITIONS)]
    return f"{city.strip().title()}: {temp} °C, {condition}"


@tool(speculative=True)
def local_time(city: str) -> str:
    """The current local time in a city.

    Args:
        city: the city's name, e.g. "Oslo".
    """
    zone, _ = _WEATHER[_city_key(city)]
    now = dt.datetime.now(ZoneInfo(zone))
    return f"{city.strip().title()}: {now:%H:%M} ({zone}, UTC{now:%z})"


def _read_facts() -> dict[str, str]:
    text = resources.files("llmcompiler.demo").joinpath("facts.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return dict(data["facts"])


_FACTS = _read_facts()  # read at import: file I/O does not belong on the event loop


@tool(speculative=True)
async def search(query: str) -> str:
    """Look a fact up in a small offline encyclopedia (cities, companies, mountains).

    Args:
        query: a few words naming the subject.
    """
    await asyncio.sleep(API_LATENCY)
    q = query.lower()
    hits = [text for key, text in _FACTS.items() if key in q or q in key]
    return " ".join(hits) if hits else f"no facts found for {query!r}"


@tool(name="math", pure=True)
def math(expression: str) -> float:
    """Evaluate an arithmetic expression: numbers, + - * / // % **, parentheses, and
    round/abs/min/max/sqrt.

    Args:
        expression: e.g. "(14.0 - 0.71) / 2".
    """
    return evaluate(expression)


DEMO_TOOLS: list[Tool] = [weather, local_time, search, math]
"""The demo's tools, in the order the planner sees them."""
