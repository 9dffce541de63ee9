"""Rate limits on the loop's clock (issue 10 row 19): fractional rates held, calls spaced evenly,
FIFO, no polling, cancellation-safe. Every test runs on the fake clock: times are exact."""

from __future__ import annotations

import asyncio
import itertools
import math

import pytest

from llmcompiler import UserError
from llmcompiler._ratelimit import RateLimiter
from tests.fakeclock import run_with_fake_clock


async def admit_times(limiter: RateLimiter, n: int) -> list[float]:
    """Start ``n`` callers at once; the loop time at which each was admitted, in arrival order."""
    loop = asyncio.get_running_loop()
    times: list[float] = [math.nan] * n

    async def caller(i: int) -> None:
        await limiter.acquire()
        times[i] = loop.time()

    await asyncio.gather(*(caller(i) for i in range(n)))
    return times


def test_row19_half_a_call_per_second_is_one_call_every_two_seconds() -> None:
    # issue 10 row 19: int(rate_limit) used to drop fractional rates.
    times = run_with_fake_clock(lambda: admit_times(RateLimiter(0.5), 5))
    assert times == [0.0, 2.0, 4.0, 6.0, 8.0]


def test_row19_ten_per_second_over_ten_seconds_admits_a_hundred_calls() -> None:
    times = run_with_fake_clock(lambda: admit_times(RateLimiter(10), 150))
    assert sum(t < 10.0 for t in times) == 100
    assert times[:3] == [0.0, 0.1, 0.2] and times[100] == 10.0  # on the schedule, no drift


def test_the_burst_is_one_so_no_period_holds_more_than_the_rate() -> None:
    times = run_with_fake_clock(lambda: admit_times(RateLimiter(3, period=2.0), 10))
    assert all(b - a == pytest.approx(2 / 3) for a, b in itertools.pairwise(times))
    assert max(sum(s <= t < s + 2.0 - 1e-9 for t in times) for s in times) == 3  # 1e-9: float rounding


def test_row19_waiters_are_served_in_arrival_order_and_never_overtaken() -> None:
    async def main() -> list[str]:
        limiter = RateLimiter(1)
        order: list[str] = []

        async def caller(name: str, delay: float) -> None:
            await asyncio.sleep(delay)
            await limiter.acquire()
            order.append(name)

        # "late" arrives at 1.5, when the slot at 1.0 has passed but "b" and "c" still queue.
        await asyncio.gather(caller("a", 0), caller("b", 0.1), caller("c", 0.2), caller("late", 1.5))
        return order

    assert run_with_fake_clock(main) == ["a", "b", "c", "late"]


def test_after_an_idle_spell_the_first_call_starts_at_once() -> None:
    async def main() -> list[float]:
        limiter = RateLimiter(1)
        loop = asyncio.get_running_loop()
        times = []
        for pause in (0, 0, 5, 0.5):
            await asyncio.sleep(pause)
            await limiter.acquire()
            times.append(loop.time())
        return times

    # the third call came after an idle spell (at 6.0); the fourth must still wait its second.
    assert run_with_fake_clock(main) == [0.0, 1.0, 6.0, 7.0]


def test_row19_a_cancelled_waiter_takes_no_token_and_blocks_no_one() -> None:
    async def main() -> tuple[list[tuple[str, float]], bool]:
        limiter = RateLimiter(1)
        loop = asyncio.get_running_loop()
        admitted: list[tuple[str, float]] = []

        async def caller(name: str) -> None:
            await limiter.acquire()
            admitted.append((name, loop.time()))

        tasks = {name: asyncio.create_task(caller(name)) for name in ("a", "b", "c", "d")}
        await asyncio.sleep(0.5)
        tasks["b"].cancel()  # queued for 1.0
        tasks["c"].cancel()  # queued for 2.0
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        return admitted, tasks["b"].cancelled() and tasks["c"].cancelled()

    admitted, cancelled = run_with_fake_clock(main)
    assert cancelled
    assert admitted == [("a", 0.0), ("d", 1.0)]


class _CancelOnServe(RateLimiter):
    """Cancels a chosen task right after serving the next waiter, before that waiter resumes."""

    victim: asyncio.Task[None] | None = None

    def _release(self) -> None:
        super()._release()
        if self.victim is not None:
            self.victim.cancel()
            self.victim = None


def test_a_waiter_cancelled_just_as_its_token_came_gives_the_token_back() -> None:
    async def main() -> list[tuple[str, float]]:
        limiter = _CancelOnServe(1)
        loop = asyncio.get_running_loop()
        admitted: list[tuple[str, float]] = []

        async def caller(name: str) -> None:
            await limiter.acquire()
            admitted.append((name, loop.time()))

        await caller("a")
        b = asyncio.create_task(caller("b"))
        c = asyncio.create_task(caller("c"))
        limiter.victim = b  # served at 1.0, cancelled before it resumes: "c" gets its token at 1.0
        await asyncio.gather(b, c, return_exceptions=True)
        assert b.cancelled()
        return admitted

    assert run_with_fake_clock(main) == [("a", 0.0), ("c", 1.0)]


def test_no_timer_is_left_when_the_queue_empties() -> None:
    async def main() -> bool:
        limiter = RateLimiter(2)
        await admit_times(limiter, 3)
        return limiter._timer is None

    assert run_with_fake_clock(main)


def test_the_limiter_serves_one_loop_after_another() -> None:
    # Each sync run() of an agent has its own loop (here: each on its own fake clock).
    limiter = RateLimiter(0.5)
    assert run_with_fake_clock(lambda: admit_times(limiter, 2)) == [0.0, 2.0]
    assert run_with_fake_clock(lambda: admit_times(limiter, 2)) == [0.0, 2.0]


@pytest.mark.parametrize(("rate", "period"), [(0, 1), (-1, 1), (math.inf, 1), (math.nan, 1), (1, 0), (True, 1)])
def test_a_rate_or_period_that_is_not_a_positive_number_is_refused(rate: float, period: float) -> None:
    with pytest.raises(UserError, match="must be a positive number"):
        RateLimiter(rate, period)
