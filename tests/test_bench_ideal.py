"""The ideal bound (benchmarks.ideal): hand-worked figures, tracing without waiting, every suite traces."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

from benchmarks.ideal import GoldTrace, GoldTraceError, ideal_bound, trace_gold
from benchmarks.oracle import PROFILES, GoldCall, Profile
from benchmarks.suites import SUITES, Item, load_suite
from benchmarks.suites._common import recording_latency, sleeping
from llmcompiler import Ref, RunResult, Tool, tool
from llmcompiler.testing import run_virtual

# The stated profile of the hand-worked figures: 0.5 s to the first token, prompt length not
# modelled, 20 tokens/s (0.05 s a token after the first), tokens of o200k_base.
PROFILE = Profile(
    name="stated",
    ttft_s=0.5,
    prefill_tokens_per_s=None,
    decode_tokens_per_s=20.0,
    price_model=None,
    source="stated by the test",
    token_counter="o200k_base",
)
DELAYS = {"a": 0.4, "b": 0.7}
VALUES = {"a": 12, "b": 30}


def _tools() -> list[Tool]:
    @tool
    async def lookup(key: str) -> int:
        """A stored value.

        Args:
            key: its name.
        """
        await sleeping(DELAYS[key])
        return VALUES[key]

    @tool
    async def double(x: int) -> int:
        """Twice a number.

        Args:
            x: the number.
        """
        await sleeping(0.3)
        return 2 * x

    return [lookup, double]


def _item(question: str, gold: list[GoldCall], answer: str) -> Item:
    def answer_fn(observations: Mapping[int, str]) -> str:
        return answer.format(*(observations[n] for n in sorted(observations)))

    def check(_answer: str, _result: RunResult) -> bool:
        return True

    return Item(id="hand", question=question, tools=_tools(), gold=gold, answer=answer_fn, check=check, kind="hand")


FAN_OUT = _item(
    "What are the values of a and b?",
    [GoldCall(tool="lookup", args={"key": "a"}), GoldCall(tool="lookup", args={"key": "b"})],
    "a is {} and b is {}.",
)
CHAIN = _item(
    "What is twice the value of a?",
    [GoldCall(tool="lookup", args={"key": "a"}), GoldCall(tool="double", args={"x": Ref(1)})],
    "Twice a is {1}.",
)


def test_the_token_counts_the_hand_figures_use() -> None:
    count = PROFILE.counter().count
    assert count("lookup") == 1 and count('{"key":"a"}') == 5  # one call: 6 tokens
    assert count("What are the values of a and b?") == 9
    assert count("What are the values of a and b?\n12\n30") == 12
    assert count("a is 12 and b is 30.") == 10
    assert count("What is twice the value of a?") == 8
    assert count("What is twice the value of a?\n12\n24") == 11
    assert count("Twice a is 24.") == 7


def test_the_ideal_of_a_two_call_fan_out_is_worked_by_hand() -> None:
    trace = run_virtual(lambda: trace_gold(FAN_OUT))
    assert trace.latencies == {1: 0.4, 2: 0.7}
    assert trace.observations == {1: "12", 2: "30"}
    bound = ideal_bound(FAN_OUT, trace, PROFILE)
    # plan: both calls are the first level, 6 + 6 tokens: 0.5 + 11 x 0.05 = 1.05 s.
    assert bound.plan_tokens == 12
    assert bound.plan_s == pytest.approx(1.05)
    # tools: two calls side by side: the longer, 0.7 s.
    assert bound.tools_s == pytest.approx(0.7)
    # answer: "a is 12 and b is 30." is 10 tokens: 0.5 + 9 x 0.05 = 0.95 s.
    assert (bound.answer_prompt_tokens, bound.answer_tokens) == (12, 10)
    assert bound.answer_s == pytest.approx(0.95)
    assert bound.total_s == pytest.approx(2.7)
    # Streamed, b (the longer chain) written first ends at 0.75 + 0.7, a at 1.05 + 0.4: 1.45 s,
    # against 1.05 + 0.7 = 1.75 s: 0.3 s, the decode time of the other call's 6 tokens.
    assert bound.stream_margin_s == pytest.approx(0.3)


def test_the_ideal_of_a_two_level_chain_is_worked_by_hand() -> None:
    trace = run_virtual(lambda: trace_gold(CHAIN))
    assert trace.latencies == {1: 0.4, 2: 0.3}
    assert trace.observations == {1: "12", 2: "24"}  # the reference was resolved to 12
    bound = ideal_bound(CHAIN, trace, PROFILE)
    # plan: the first level is lookup alone, 6 tokens: 0.5 + 5 x 0.05 = 0.75 s.
    assert bound.plan_s == pytest.approx(0.75)
    # tools: lookup then double: 0.4 + 0.3 s.
    assert bound.tools_s == pytest.approx(0.7)
    # answer: "Twice a is 24." is 7 tokens: 0.5 + 6 x 0.05 = 0.8 s.
    assert bound.answer_s == pytest.approx(0.8)
    assert bound.total_s == pytest.approx(2.25)
    assert bound.stream_margin_s == 0.0  # one call in the first level: nothing to start early


def test_prefill_reads_the_question_for_the_plan_and_the_observations_too_for_the_answer() -> None:
    import dataclasses

    slow_reader = dataclasses.replace(PROFILE, prefill_tokens_per_s=100.0)
    trace = run_virtual(lambda: trace_gold(FAN_OUT))
    bound = ideal_bound(FAN_OUT, trace, slow_reader)
    assert bound.plan_s == pytest.approx(1.05 + 9 / 100)  # the question: 9 tokens
    assert bound.answer_s == pytest.approx(0.95 + 12 / 100)  # question and observations: 12 tokens


def test_trace_gold_records_the_delays_and_waits_for_none() -> None:
    long = {"a": 3600.0, "b": 7200.0}

    @tool
    async def lookup(key: str) -> int:
        """A slow lookup.

        Args:
            key: its name.
        """
        await sleeping(long[key])
        await sleeping(1.0)  # a call that waits twice: its latency is the sum
        return VALUES[key]

    item = Item(
        id="slow",
        question="?",
        tools=[lookup],
        gold=[GoldCall(tool="lookup", args={"key": "a"}), GoldCall(tool="lookup", args={"key": "b"})],
        answer=lambda obs: obs[1],
        check=lambda _a, _r: True,
        kind="slow",
    )

    async def traced() -> tuple[GoldTrace, float]:
        trace = await trace_gold(item)
        return trace, asyncio.get_running_loop().time()

    async def slept() -> float:
        await lookup.ainvoke({"key": "a"})
        return asyncio.get_running_loop().time()

    # On virtual time a wait would show as time passed (the clock jumps to each timer).
    trace, now = run_virtual(traced)
    assert now == 0.0
    assert trace.latencies == {1: 3601.0, 2: 7201.0}
    assert run_virtual(slept) == 3601.0  # outside the recording the same call waits


def test_recording_is_local_to_the_context_that_asked_for_it() -> None:
    async def main() -> tuple[list[float], float]:
        loop = asyncio.get_running_loop()
        other = asyncio.create_task(sleeping(5.0))  # started outside: it waits
        with recording_latency() as delays:
            await sleeping(2.0)
            with recording_latency() as inner:
                await sleeping(3.0)
            assert inner == [3.0]
            await other
        return delays, loop.time()

    delays, now = run_virtual(main)
    assert delays == [2.0]
    assert now == 5.0


def test_a_gold_call_that_cannot_run_says_which() -> None:
    bad = Item(
        id="bad",
        question="?",
        tools=_tools(),
        gold=[GoldCall(tool="lookup", args={"key": "zzz"})],
        answer=lambda obs: obs[1],
        check=lambda _a, _r: True,
        kind="bad",
    )
    with pytest.raises(GoldTraceError, match=r"bad: gold call 1 \(lookup\) failed"):
        run_virtual(lambda: trace_gold(bad))
    unknown = Item(
        id="unknown",
        question="?",
        tools=_tools(),
        gold=[GoldCall(tool="search", args={})],
        answer=lambda obs: obs[1],
        check=lambda _a, _r: True,
        kind="unknown",
    )
    with pytest.raises(GoldTraceError, match="not one of the item's tools"):
        run_virtual(lambda: trace_gold(unknown))


@pytest.mark.parametrize("suite", SUITES)
def test_every_suites_first_items_trace(suite: str) -> None:
    try:
        items = load_suite(suite)[:3]
    except FileNotFoundError as exc:  # BFCL's data comes with `python -m benchmarks fetch`
        pytest.skip(f"{suite}: {exc}")

    async def traced() -> tuple[list[GoldTrace], float]:
        traces = [await trace_gold(item) for item in items]
        return traces, asyncio.get_running_loop().time()

    traces, now = run_virtual(traced)
    assert now == 0.0  # nothing waited
    for item, trace in zip(items, traces, strict=True):
        numbers = set(range(1, len(item.gold) + 1))
        assert set(trace.latencies) == set(trace.observations) == numbers, item.id
        assert all(latency >= 0.0 for latency in trace.latencies.values())
        assert any(latency > 0.0 for latency in trace.latencies.values()), item.id
        bound = ideal_bound(item, trace, PROFILES["gpt-4o"])
        assert bound.plan_s > 0 and bound.answer_s > 0 and bound.tools_s > 0
        assert bound.total_s == pytest.approx(bound.plan_s + bound.tools_s + bound.answer_s)
        assert 0.0 <= bound.stream_margin_s < bound.plan_s
