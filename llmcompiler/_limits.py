"""Limits: how the executor may call each tool, and the one rule for which limits a call runs under.

Two kinds:

- ``ToolLimits``: one tool's timeout, concurrency, exclusive group, rate, retries and batching.
  A tool's own limits (``@tool(timeout=5)``, ``Tool.from_schema(limits=...)``, ``Tool.with_limits``) define
  every setting of the tool: a field not given has its default.
- ``Limits``: a run's limits: the run-wide concurrency, the run-wide timeout, and
  ``tool_limits``, overrides by tool name. An override changes only the fields its
  ``ToolLimits`` was given (``ToolLimits.fields_set``); the tool keeps its other settings.

``Limits.for_tool`` is the rule, written once: start from the tool's own limits; each field the
override was given replaces the tool's; then, if the timeout is ``None`` and the override did
not give one, the run-wide timeout applies. So an override given a default value still
overrides (``ToolLimits(retries=0)`` turns a tool's retries off), and ``ToolLimits(timeout=None)``
as an override exempts a tool from every timeout, its own and the run's.
"""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Collection, Mapping
from typing import Final, TypedDict, Unpack, cast

from llmcompiler._errors import UserError

__all__ = ["Limits", "ToolLimits", "ToolLimitsArgs"]


class ToolLimitsArgs(TypedDict, total=False):
    """The fields of ``ToolLimits`` as keyword arguments, each one optional (see ``ToolLimits``)."""

    timeout: float | None
    max_concurrency: int | None
    exclusive: str | None
    rate_limit: float | None
    period: float
    retries: int
    backoff: float
    max_backoff: float
    batch_window: float
    max_batch: int | None


@dataclasses.dataclass(frozen=True, slots=True, init=False, repr=False)
class ToolLimits:
    """How the executor may call one tool.

    Every argument is keyword-only and optional; a field not given has the default shown below.
    A ``ToolLimits`` remembers which fields it was given (``fields_set``): as a tool's own
    limits that makes no difference, but as an override in ``tool_limits=`` only those fields
    change the tool's, whatever their value (a default value included).

    Attributes:
        timeout: seconds one call may take; ``None`` (the default) for no limit.
        max_concurrency: calls of this tool running at once; ``None`` for no limit.
        exclusive: the name of an exclusive group, or ``None`` (the default): calls of the tools
            sharing a group never overlap, within a run and across the runs of one agent. A sync
            call that timed out holds its group until its thread returns. As an override,
            ``ToolLimits(exclusive=None)`` takes a tool out of its group.
        rate_limit: calls started per ``period`` seconds; ``None`` for no limit.
        period: the rate limit's window in seconds (``1.0``).
        retries: extra attempts after a failure or timeout; a tool with ``retries > 0`` is
            retryable (``0``).
        backoff: seconds before the first retry; each later retry waits twice as long (``0.5``).
        max_backoff: the longest wait between two attempts (``30.0``).
        batch_window: for a tool with a batch implementation, seconds to wait after a call becomes
            ready for more calls to fuse with it (``0``: only calls ready in the same loop pass;
            ``0.002``).
        max_batch: the most calls fused into one batched call; ``None`` for no limit.

    A frozen dataclass: immutable, hashable, picklable. Two are equal when they hold the same
    values and were given the same fields (so they act alike in either role); the ``repr`` shows
    the fields given. Change fields with ``replace``, which keeps track of what was given;
    ``dataclasses.replace`` refuses (it would pass every field, marking them all given).

    Raises:
        UserError: a value out of range, naming the field.
        TypeError: an argument that is not a field.

    Example:
        >>> ToolLimits(timeout=5, retries=0)
        ToolLimits(timeout=5, retries=0)
        >>> sorted(ToolLimits(timeout=5, retries=0).fields_set)
        ['retries', 'timeout']
        >>> ToolLimits(timeout=5).retries  # not given: the default
        0
    """

    # init=False on every field: the constructor below takes only the fields given.
    timeout: float | None = dataclasses.field(default=None, init=False)
    max_concurrency: int | None = dataclasses.field(default=None, init=False)
    exclusive: str | None = dataclasses.field(default=None, init=False)
    rate_limit: float | None = dataclasses.field(default=None, init=False)
    period: float = dataclasses.field(default=1.0, init=False)
    retries: int = dataclasses.field(default=0, init=False)
    backoff: float = dataclasses.field(default=0.5, init=False)
    max_backoff: float = dataclasses.field(default=30.0, init=False)
    batch_window: float = dataclasses.field(default=0.002, init=False)
    max_batch: int | None = dataclasses.field(default=None, init=False)
    _fields_set: frozenset[str] = dataclasses.field(default=frozenset(), init=False)

    def __init__(self, **limits: Unpack[ToolLimitsArgs]) -> None:
        given: dict[str, object] = dict(limits)
        unknown = [name for name in given if name not in _DEFAULTS]
        if unknown:
            raise TypeError(
                f"ToolLimits got an unexpected keyword argument {unknown[0]!r} (its fields: {', '.join(FIELDS)})"
            )
        for name, default in _DEFAULTS.items():
            object.__setattr__(self, name, given.get(name, default))
        object.__setattr__(self, "_fields_set", frozenset(given))
        self._check()

    def _check(self) -> None:
        if self.timeout is not None and not _positive(self.timeout):
            raise UserError(f"timeout must be a positive number of seconds, got {self.timeout!r}")
        if self.max_concurrency is not None and not (_is_int(self.max_concurrency) and self.max_concurrency >= 1):
            raise UserError(f"max_concurrency must be an integer of at least 1, got {self.max_concurrency!r}")
        if self.exclusive is not None and not (isinstance(self.exclusive, str) and self.exclusive.strip()):
            raise UserError(f"exclusive must be a group's name (a non-empty string) or None, got {self.exclusive!r}")
        if self.rate_limit is not None and not _positive(self.rate_limit):
            raise UserError(f"rate_limit must be a positive number, got {self.rate_limit!r}")
        if not _positive(self.period):
            raise UserError(f"period must be a positive number of seconds, got {self.period!r}")
        if not (_is_int(self.retries) and self.retries >= 0):
            raise UserError(f"retries must be an integer of 0 or more, got {self.retries!r}")
        if not (_non_negative(self.backoff) and _non_negative(self.max_backoff)):
            raise UserError(
                f"backoff and max_backoff must be 0 or more seconds, got {self.backoff!r} and {self.max_backoff!r}"
            )
        if not _non_negative(self.batch_window):
            raise UserError(f"batch_window must be 0 or more seconds, got {self.batch_window!r}")
        if self.max_batch is not None and not (_is_int(self.max_batch) and self.max_batch >= 1):
            raise UserError(f"max_batch must be an integer of at least 1, got {self.max_batch!r}")

    @property
    def fields_set(self) -> frozenset[str]:
        """The names of the fields this ``ToolLimits`` was given (by its constructor or ``replace``)."""
        return self._fields_set

    def given(self) -> ToolLimitsArgs:
        """The fields given, by name: ``ToolLimits(**limits.given()) == limits``."""
        return cast(ToolLimitsArgs, {name: getattr(self, name) for name in FIELDS if name in self._fields_set})

    def replace(self, **changes: Unpack[ToolLimitsArgs]) -> ToolLimits:
        """A copy with ``changes`` applied; its given fields are this one's and the changed ones.

        Raises:
            UserError: a value out of range.
            TypeError: a name that is not a field.
        """
        merged: ToolLimitsArgs = {**self.given(), **changes}
        return ToolLimits(**merged)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in FIELDS if name in self._fields_set)
        return f"ToolLimits({shown})"


_DEFAULTS: Final[dict[str, object]] = {
    field.name: field.default for field in dataclasses.fields(ToolLimits) if field.name != "_fields_set"
}
FIELDS: Final[tuple[str, ...]] = tuple(_DEFAULTS)
"""The names of ``ToolLimits``' fields, in order."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Limits:
    """A run's limits: across all tools, and overrides per tool.

    Attributes:
        max_concurrency: tool calls running at once across all tools; ``None`` for no limit.
        timeout: seconds a tool call may take when neither the tool's own limits nor its
            override give a timeout.
        tool_limits: overrides by tool name. Each changes only the fields its ``ToolLimits`` was
            given: ``{"search": ToolLimits(timeout=5)}`` sets search's timeout and keeps its
            retries, rate and batching. ``ToolLimits(timeout=None)`` takes a tool out of every
            timeout. A name that is not a tool is a ``UserError`` when the executor starts.

    Example:
        >>> own = ToolLimits(timeout=30, retries=2)
        >>> Limits(tool_limits={"search": ToolLimits(timeout=5)}).for_tool("search", own)
        ToolLimits(timeout=5, retries=2)
        >>> Limits(timeout=10).for_tool("search", ToolLimits(retries=2))
        ToolLimits(timeout=10, retries=2)
    """

    max_concurrency: int | None = None
    timeout: float | None = None
    tool_limits: Mapping[str, ToolLimits] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_concurrency is not None and not (_is_int(self.max_concurrency) and self.max_concurrency >= 1):
            raise UserError(f"max_concurrency must be an integer of at least 1, got {self.max_concurrency!r}")
        if self.timeout is not None and not _positive(self.timeout):
            raise UserError(f"timeout must be a positive number of seconds, got {self.timeout!r}")
        if not isinstance(self.tool_limits, Mapping):
            raise UserError(f"tool_limits must map tool names to ToolLimits, got {type(self.tool_limits).__name__}")
        for name, override in self.tool_limits.items():
            if not isinstance(override, ToolLimits):
                raise UserError(f"tool_limits[{name!r}] must be a ToolLimits, got {type(override).__name__}")
        # A copy: the caller's dict changing later must not change a frozen run's limits.
        object.__setattr__(self, "tool_limits", types.MappingProxyType(dict(self.tool_limits)))

    def for_tool(self, name: str, own: ToolLimits) -> ToolLimits:
        """The limits tool ``name``, whose own limits are ``own``, runs under.

        ``own`` with the fields its override (``tool_limits[name]``) was given replaced; then,
        if that leaves no timeout and the override did not set one, the run-wide ``timeout``.
        """
        override = self.tool_limits.get(name)
        changes: ToolLimitsArgs = {} if override is None else override.given()
        if "timeout" not in changes and own.timeout is None and self.timeout is not None:
            changes["timeout"] = self.timeout
        return own.replace(**changes) if changes else own

    def check_tools(self, tools: Collection[str]) -> None:
        """Check that ``tool_limits`` names only tools of ``tools``.

        Raises:
            UserError: naming the unknown names and the tools there are.
        """
        unknown = [name for name in self.tool_limits if name not in tools]
        if unknown:
            names = ", ".join(repr(name) for name in sorted(unknown))
            known = ", ".join(sorted(tools)) or "none"
            what = "an unknown tool" if len(unknown) == 1 else "unknown tools"
            raise UserError(f"tool_limits names {what}: {names} (tools: {known})")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive(value: object) -> bool:
    return _is_number(value) and value > 0  # type: ignore[operator]


def _non_negative(value: object) -> bool:
    return _is_number(value) and value >= 0  # type: ignore[operator]
