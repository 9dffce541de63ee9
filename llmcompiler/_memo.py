"""Memoisation of pure tools within one run.

A tool marked ``pure`` runs once per distinct (tool, resolved arguments) in a run; a later call
with equal arguments reuses the result, and a call made while an equal one is still running
waits for it (one call in flight per key, as Go's ``singleflight``). Failures are shared with
the calls waiting at that moment but not kept: the next equal call runs the tool again.

Arguments are compared by a canonical form that tells types apart (``1``, ``1.0`` and ``True``
are different arguments even though Python finds them equal) and ignores dict key order.
Arguments with no such form (arbitrary objects that are not hashable, or whose ``__hash__``
raises, or whose iteration fails) are not memoised. Tools never get the cached object itself: the
call layer gives every call its own copy of its arguments, so no consumer can change the cache.
(A record served from the memo holds the same result object as the first record; don't mutate
records.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Mapping
from typing import Any

__all__ = ["Memo", "memo_key"]

Outcome = tuple[Any, str | None]
"""A finished call: ``(result, None)`` or ``(None, error message)``."""


class _Unhashable(Exception):
    pass


def _canonical(value: Any, depth: int = 0) -> Hashable:
    if depth > 100:
        raise _Unhashable
    kind = type(value)
    if value is None or kind in (bool, int, str, bytes):
        return (kind.__name__, value)
    if kind is float:
        # nan != nan: key it by its text so equal calls still meet.
        return ("float", value.hex())  # tells 0.0 from -0.0; one key for every nan
    if isinstance(value, Mapping):
        items = [(_canonical(k, depth + 1), _canonical(v, depth + 1)) for k, v in value.items()]
        return ("dict", frozenset(items))
    if isinstance(value, (list, tuple)):
        return (kind.__name__, tuple(_canonical(v, depth + 1) for v in value))
    if isinstance(value, (set, frozenset)):
        return (kind.__name__, frozenset(_canonical(v, depth + 1) for v in value))
    try:
        hash(value)
    except Exception:  # unhashable, or a __hash__ that raises: not memoised
        raise _Unhashable from None
    return (kind.__module__, kind.__qualname__, value)


def memo_key(tool: str, kwargs: Mapping[str, Any]) -> Hashable | None:
    """The cache key of a call: the tool's name and a canonical form of its arguments.

    Returns ``None`` when an argument has no canonical form (the call is then not memoised).

    Example:
        >>> memo_key("f", {"a": 1, "b": [1, 2]}) == memo_key("f", {"b": [1, 2], "a": 1})
        True
        >>> memo_key("f", {"a": 1}) == memo_key("f", {"a": True})
        False
    """
    try:
        return (tool, _canonical(kwargs))
    except Exception:  # RecursionError, a mapping whose iteration raises, ...: not memoised
        return None


class Memo:
    """The results of one run's pure tool calls, and the calls in flight."""

    __slots__ = ("_entries", "hits")

    def __init__(self) -> None:
        self._entries: dict[Hashable, asyncio.Future[Outcome]] = {}
        self.hits = 0

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, key: Hashable) -> asyncio.Future[Outcome] | None:
        """The finished or in-flight call for ``key``, if any (counted as a hit)."""
        found = self._entries.get(key)
        if found is not None:
            self.hits += 1
        return found

    def claim(self, key: Hashable) -> asyncio.Future[Outcome]:
        """Register a call about to run for ``key``; equal calls will wait on the returned future."""
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._entries[key] = future
        return future

    def settle(self, key: Hashable, future: asyncio.Future[Outcome], result: Any, error: str | None) -> None:
        """Hand a finished call's outcome to its waiters; keep it only if it succeeded."""
        if error is not None and self._entries.get(key) is future:
            del self._entries[key]
        if not future.done():
            future.set_result((result, error))

    def keep(self, key: Hashable, result: Any) -> None:
        """Keep a result obtained another way (a speculative call's) for later equal calls,
        unless a call for ``key`` is already kept or in flight."""
        if key not in self._entries:
            future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
            future.set_result((result, None))
            self._entries[key] = future

    def abandon(self, key: Hashable, future: asyncio.Future[Outcome]) -> None:
        """The call was cancelled: its waiters fail, and the next equal call runs the tool."""
        self.settle(key, future, None, "the equal call it was waiting for was cancelled")
