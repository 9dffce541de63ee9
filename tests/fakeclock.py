"""A controllable clock for timing tests: an event loop whose time jumps ahead whenever it is idle.

Like trio's ``MockClock(autojump_threshold=0)``: when no callback is ready and nothing is
waiting on I/O, the loop's clock jumps straight to the next timer, so ``asyncio.sleep(60)``
and ``asyncio.timeout(30)`` take no wall time and durations are exact. Use it only for code
that does not wait on threads (their completion is I/O the jump would not wait for).
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class FakeClockLoop(asyncio.SelectorEventLoop):
    """A selector event loop on virtual time that starts at 0."""

    def __init__(self) -> None:
        super().__init__()
        self._virtual_now = 0.0
        selector: Any = self._selector  # type: ignore[attr-defined]
        real_select = selector.select

        def select(timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
            ready: list[tuple[selectors.SelectorKey, int]] = real_select(0)
            if not ready and timeout is not None and timeout > 0:
                self._virtual_now += timeout  # idle: jump to the next timer
            elif not ready and timeout is None:
                ready = real_select(None)
            return ready

        selector.select = select

    def time(self) -> float:
        """The virtual time in seconds."""
        return self._virtual_now


def run_with_fake_clock(main: Callable[[], Awaitable[T]]) -> T:
    """Run ``main()`` to completion on a fresh ``FakeClockLoop`` and close it."""
    loop = FakeClockLoop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
