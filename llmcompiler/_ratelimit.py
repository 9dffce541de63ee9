"""Rate limits: at most ``rate`` calls per ``period`` seconds, spaced evenly, in arrival order.

Semantics of ``RateLimiter(rate, period)``:

- **Spacing, no burst.** Calls are scheduled ``period / rate`` seconds apart: 10 per second
  is one call every 0.1 s, 0.5 per second one call every 2 s (fractional rates are exact).
  After an idle spell the first call starts at once, and the next one ``period / rate`` later:
  the burst is 1. Starts follow the schedule up to the event loop's timer lateness: a call
  whose timer fired late and the next one, on time, can start closer than the interval, so a
  window of ``period`` seconds can hold ``ceil(rate) + 1`` starts (measured: 11 in one second at
  10/s, smallest gap 94 ms); the count over any longer span is exact.
- **A fixed schedule while calls queue.** Queued calls start on a schedule ``period / rate``
  apart; a timer that fires a little late does not push the rest of the schedule back (over
  10 s at 10/s, 100 calls start, not 99). If the loop was held up for a whole interval or
  more, the schedule starts afresh from then: there is no catch-up burst.
- **FIFO.** Waiters are served in arrival order; a new caller never overtakes a queued one.
- **The loop's clock.** Times are ``loop.time()`` and waiters are woken by one
  ``loop.call_at`` timer, never by polling, so a fake clock (``llmcompiler.testing.VirtualClockLoop``) tests it.
- **Cancellation-safe.** A waiter cancelled while queued takes no token and holds nobody up;
  one cancelled just as its token came gives the token back to the next waiter.

Why our own and not a library. asyncio-throttle (used before) polls every 10 ms on
``time.monotonic()`` rather than the loop's clock, lets waiters race for the next slot, and
counts whole calls per period only. aiolimiter 1.3 uses the loop's clock and a timer, but it is a
leaky bucket whose capacity is the rate: it allows a burst of ``rate`` calls after idle (up to
about twice the rate in the first period), refuses a call when the rate is below 1 (0.5/s must
be rewritten as 1 per 2 s), lets a new caller take free capacity ahead of a woken waiter (not
strictly FIFO), and warns when an instance is reused on a new event loop, as every sync
``run()`` of an agent does. The token bucket here is a few dozen lines and does exactly the above.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque

from llmcompiler._errors import UserError

__all__ = ["RateLimiter"]


class RateLimiter:
    """At most ``rate`` calls per ``period`` seconds (see the module docstring).

    Args:
        rate: calls allowed per period; any positive number (``0.5`` is one call every two periods).
        period: the period in seconds.

    Raises:
        UserError: ``rate`` or ``period`` is not a positive finite number.
    """

    __slots__ = ("_count", "_loop", "_origin", "_queued", "_timer", "_waiters", "period", "rate")

    def __init__(self, rate: float, period: float = 1.0) -> None:
        for what, value in (("rate", rate), ("period", period)):
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not (math.isfinite(value) and value > 0)
            ):
                raise UserError(f"a rate limit's {what} must be a positive number, got {value!r}")
        self.rate = float(rate)
        self.period = float(period)
        # The schedule: the n-th call since `_origin` starts at `_origin + n * period / rate`.
        self._origin: float | None = None  # None: nothing started yet
        self._count = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._queued = 0  # waiters neither served nor cancelled
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"RateLimiter({self.rate:g}, period={self.period:g})"

    @property
    def interval(self) -> float:
        """Seconds between the starts of two calls."""
        return self.period / self.rate

    def _due(self) -> float:
        """When the next call may start on the loop's clock."""
        if self._origin is None:
            return -math.inf
        return self._origin + self._count * self.period / self.rate  # not a running sum: no drift

    async def acquire(self) -> None:
        """Wait for this call's turn (FIFO), then take its token."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._bind(loop)
        now = loop.time()
        if self._queued == 0 and now >= self._due():
            self._origin, self._count = now, 1  # idle: start at once, on a fresh schedule
            return
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        self._queued += 1
        if self._timer is None:
            self._timer = loop.call_at(self._due(), self._release)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.cancelled():
                self._queued -= 1  # never served: it stays in the queue and is skipped
            else:
                self._give_back()  # served just as it was cancelled: the token goes to the next one
            raise

    def _release(self) -> None:
        """The timer: start the first waiter still waiting, and set the timer for the next."""
        self._timer = None
        waiters = self._waiters
        while waiters and waiters[0].done():
            waiters.popleft()
        if not waiters:
            return
        assert self._loop is not None
        now = self._loop.time()
        if self._origin is None or now - self._due() >= self.interval:
            self._origin, self._count = now, 0  # held up a whole interval or more: start afresh
        self._count += 1
        self._queued -= 1
        waiters.popleft().set_result(None)
        if self._queued:
            self._timer = self._loop.call_at(self._due(), self._release)

    def _give_back(self) -> None:
        self._count -= 1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._queued and self._loop is not None:
            self._timer = self._loop.call_at(self._due(), self._release)

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Serve a new event loop (each sync ``run()`` of an agent has its own)."""
        if self._queued and self._loop is not None and not self._loop.is_closed():
            raise RuntimeError("a RateLimiter serves one event loop at a time: calls still wait on another loop")
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._waiters.clear()
        self._queued = 0
        self._loop = loop
        # Loops normally share one clock (time.monotonic), so the schedule carries over; a loop
        # on another clock (a test's fake clock) would see a due time far off: start afresh.
        if self._due() > loop.time() + self.interval:
            self._origin, self._count = None, 0
