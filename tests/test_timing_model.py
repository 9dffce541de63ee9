"""The timing model, pinned: each system's simulated latency equals the figure worked out by hand.

Two hand-built questions, each system run by the benchmark runner on the oracle model with a
stated profile, on the virtual clock (``llmcompiler.testing.run_virtual``: the clock jumps to the
next timer whenever the loop is idle, so model and tool delays are exact and the engine's own
CPU time counts as zero). Every latency, and the ideal bound (``benchmarks.ideal``), must equal
the hand-worked figure within 1e-6 s.

The stated profile: 0.5 s to the first token whatever the prompt (prefill not modelled, so prompt
lengths do not enter), then 20 tokens/s, tokens of ``o200k_base``. The k-th completion token of a
reply arrives ``at(k) = 0.5 + (k - 1) * 0.05`` s after its request; a reply of n tokens ends at
``at(n)``. The token counts are the counter's; each is asserted as a stated constant first, so a
change in counting (or in what a system or the oracle writes) fails here, named, before the sums.

When work starts, as the code does it:

- **LLMCompiler** streams its plan; the parser emits a task the moment its call's closing
  parenthesis arrives (``llmcompiler._plan``: not at the line's newline;
  ``test_the_parser_dispatches_at_the_closing_parenthesis`` pins it), and the executor starts it
  then. In o200k_base the ``)`` of these plans comes in one token with the newline (``')\\n``), so
  here the two moments coincide. The joiner is asked when the plan's stream has ended and every
  task has finished; the run ends with the joiner's last token.
- **Native parallel calling** starts each tool call the moment the stream delivers it (the
  oracle delivers call k at the time of its last token: the tokens of calls 1..k); the next turn
  starts when the turn's stream has ended and its calls have finished; the answer turn's last
  token ends the run.
- **ReAct** reads the whole step's reply, then runs its one action; the next step starts when it
  has finished.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest

from benchmarks.ideal import IdealBound
from benchmarks.oracle import GoldCall, OracleLLM, Profile, render_plan
from benchmarks.runner import Outcome, ideal_bounds, run_items
from benchmarks.suites import Item
from benchmarks.suites._common import sleeping
from benchmarks.tokens import call_tokens
from llmcompiler import END_OF_PLAN, PlanParser, Ref, RunResult, Tool, ToolCall, tool
from llmcompiler.models import ModelRequest
from llmcompiler.testing import VirtualClockLoop, run_virtual

PROFILE = Profile(
    name="stated",
    ttft_s=0.5,
    prefill_tokens_per_s=None,
    decode_tokens_per_s=20.0,
    price_model=None,
    source="stated by the test: 0.5 s to the first token, prompt length not modelled, 20 tokens/s",
    token_counter="o200k_base",
)
TTFT = 0.5
TOKEN = 0.05  # seconds per token after the first (20 tokens/s)
TOLERANCE = 1e-6

AnswerFn = Callable[[Mapping[int, str]], str]


def at(k: int) -> float:
    """Seconds from a request to its reply's k-th completion token, under ``PROFILE``."""
    return TTFT + (k - 1) * TOKEN


# The tools: fixed delays, waited through suites._common.sleeping as every suite's tools do.
PARIS_S, ROME_S, HALF_S = 1.5, 0.5, 1.0
DELAYS = {"Paris": PARIS_S, "Rome": ROME_S}
POPULATION = {"Paris": 2_100_000, "Rome": 2_800_000}


def _tools() -> list[Tool]:
    @tool
    async def population(city: str) -> int:
        """The population of a city.

        Args:
            city: its name.
        """
        await sleeping(DELAYS[city])
        return POPULATION[city]

    @tool
    async def half(n: int) -> int:
        """Half a number.

        Args:
            n: the number.
        """
        await sleeping(HALF_S)
        return n // 2

    return [population, half]


def _item(item_id: str, question: str, gold: list[GoldCall], answer: AnswerFn, expected: str) -> Item:
    def check(given: str, _result: RunResult) -> bool:
        return given.strip() == expected

    return Item(id=item_id, question=question, tools=_tools(), gold=gold, answer=answer, check=check, kind="hand-built")


# Two calls that need nothing: one model turn can write both.
FAN_OUT = _item(
    "fan-out",
    "How many people live in Paris and Rome together?",
    [GoldCall(tool="population", args={"city": "Paris"}), GoldCall(tool="population", args={"city": "Rome"})],
    lambda observations: str(int(observations[1]) + int(observations[2])),
    "4900000",
)
# Two levels: the second call needs the first's result.
CHAIN = _item(
    "chain",
    "What is half the population of Paris?",
    [GoldCall(tool="population", args={"city": "Paris"}), GoldCall(tool="half", args={"n": Ref(1)})],
    lambda observations: observations[2],
    "1050000",
)

COUNTER = PROFILE.counter()

# --------------------------------------------------------------------------- running


def _run(system: str, item: Item) -> tuple[Outcome, list[str | list[ToolCall]]]:
    """``system``'s run of ``item`` by the benchmark runner on the virtual clock, and the replies
    its oracle gave, in order (text cut at the request's stop sequence, as the oracle streams it)."""
    oracles: list[OracleLLM] = []

    def llm_for(given: Item) -> OracleLLM:
        oracles.append(OracleLLM(given.gold, given.answer, PROFILE))
        return oracles[-1]

    async def main() -> list[Outcome]:
        bounds, _ = await ideal_bounds([item], PROFILE)
        return await run_items([item], [system], llm_for, cost=lambda _usage, _result: None, ideal=bounds)

    (outcome,) = run_virtual(main)
    assert outcome.finished and outcome.correct, outcome.error
    (oracle,) = oracles
    return outcome, [_as_streamed(oracle.reply(request), request) for request in oracle.requests]


def _as_streamed(reply: str | list[ToolCall], request: ModelRequest) -> str | list[ToolCall]:
    if isinstance(reply, str):
        for stop in request.stop:
            if (cut := reply.find(stop)) >= 0:
                reply = reply[:cut]
    return reply


def _tool_starts(outcome: Outcome) -> list[float]:
    assert outcome.timeline is not None
    return [t["start"] for t in outcome.timeline["tools"]]


def _ideal(item: Item) -> IdealBound:
    async def main() -> IdealBound:
        bounds, untraced = await ideal_bounds([item], PROFILE)
        assert untraced == {}
        return bounds[item.id]

    return run_virtual(main)


# --------------------------------------------------------------------------- what the oracle writes, in tokens

# LLMCompiler's plans, as streamed (the request's stop sequence cuts the end marker), token by
# token: each piece with the number of tokens up to its end.
PLAN_FAN_OUT = "1. population(city='Paris')\n2. population(city='Rome')\n3. join()\n"
PLAN_FAN_OUT_PIECES = [
    ("1", 1), (".", 2), (" population", 3), ("(city", 4), ("='", 5), ("Paris", 6), ("')\n", 7),
    ("2", 8), (".", 9), (" population", 10), ("(city", 11), ("='", 12), ("Rome", 13), ("')\n", 14),
    ("3", 15), (".", 16), (" join", 17), ("()\n", 18),
]  # fmt: skip
PLAN_CHAIN = "1. population(city='Paris')\n2. half(n=$1)\n3. join()\n"
PLAN_CHAIN_PIECES = [
    ("1", 1), (".", 2), (" population", 3), ("(city", 4), ("='", 5), ("Paris", 6), ("')\n", 7),
    ("2", 8), (".", 9), (" half", 10), ("(n", 11), ("=$", 12), ("1", 13), (")\n", 14),
    ("3", 15), (".", 16), (" join", 17), ("()\n", 18),
]  # fmt: skip
# LLMCompiler's joiner and ReAct's last step.
FINISH_FAN_OUT = "Thought: The observations answer the question.\nAction: Finish(4900000)"
FINISH_CHAIN = "Thought: The observations answer the question.\nAction: Finish(1050000)"
FINISH_TOKENS = 16  # either of them
# ReAct's steps (a gold call with no thought gets "Next I call <tool>.").
STEP_PARIS = "Thought: Next I call population.\nAction: population(city='Paris')"
STEP_ROME = "Thought: Next I call population.\nAction: population(city='Rome')"
STEP_HALF = "Thought: Next I call half.\nAction: half(n=2100000)"
STEP_POPULATION_TOKENS = 14  # STEP_PARIS and STEP_ROME
STEP_HALF_TOKENS = 16
# Native calls (name and JSON arguments, benchmarks.tokens.call_tokens) and answers.
CALL_PARIS = ToolCall(name="population", args={"city": "Paris"}, id="gold_1")
CALL_ROME = ToolCall(name="population", args={"city": "Rome"}, id="gold_2")
CALL_HALF = ToolCall(name="half", args={"n": 2100000}, id="gold_2")
CALL_POPULATION_TOKENS = 6  # CALL_PARIS and CALL_ROME
CALL_HALF_TOKENS = 8
ANSWER_TOKENS = 3  # "4900000" and "1050000"


def test_the_token_counts_the_derivations_use() -> None:
    assert COUNTER.timed_pieces(PLAN_FAN_OUT) == PLAN_FAN_OUT_PIECES
    assert COUNTER.timed_pieces(PLAN_CHAIN) == PLAN_CHAIN_PIECES
    assert COUNTER.count(FINISH_FAN_OUT) == COUNTER.count(FINISH_CHAIN) == FINISH_TOKENS
    assert COUNTER.count(STEP_PARIS) == COUNTER.count(STEP_ROME) == STEP_POPULATION_TOKENS
    assert COUNTER.count(STEP_HALF) == STEP_HALF_TOKENS
    assert call_tokens(COUNTER, CALL_PARIS) == call_tokens(COUNTER, CALL_ROME) == CALL_POPULATION_TOKENS
    assert call_tokens(COUNTER, CALL_HALF) == CALL_HALF_TOKENS
    assert COUNTER.count("4900000") == COUNTER.count("1050000") == ANSWER_TOKENS
    assert render_plan(FAN_OUT.gold) == PLAN_FAN_OUT + END_OF_PLAN
    assert render_plan(CHAIN.gold) == PLAN_CHAIN + END_OF_PLAN


def test_the_parser_dispatches_at_the_closing_parenthesis() -> None:
    # The task comes with the chunk that closes its call, not with the newline after it.
    parser = PlanParser()
    assert parser.feed("1. population(city='Paris'") == []
    assert [event.kind for event in parser.feed(")")] == ["task"]
    assert parser.feed("\n") == []


# --------------------------------------------------------------------------- LLMCompiler


def test_llmcompiler_fan_out() -> None:
    outcome, replies = _run("llmcompiler", FAN_OUT)
    assert replies == [PLAN_FAN_OUT, FINISH_FAN_OUT]
    assert outcome.completion_tokens == 18 + FINISH_TOKENS
    # Task 1's call closes in plan token 7 ("')\n"): it starts at at(7) = 0.8 s and takes 1.5 s,
    # to 2.3 s. Task 2's closes in token 14: it starts at at(14) = 1.15 s and ends at 1.65 s.
    # The plan's last token (18) is at at(18) = 1.35 s. The joiner is asked at the latest of the
    # three, 2.3 s, and its 16 tokens take at(16) = 1.25 s: 3.55 s.
    assert _tool_starts(outcome) == pytest.approx([0.8, 1.15], abs=TOLERANCE)
    expected = max(at(18), at(7) + PARIS_S, at(14) + ROME_S) + at(FINISH_TOKENS)
    assert expected == pytest.approx(3.55, abs=TOLERANCE)
    assert outcome.latency_s == pytest.approx(expected, abs=TOLERANCE)


def test_llmcompiler_chain() -> None:
    outcome, replies = _run("llmcompiler", CHAIN)
    assert replies == [PLAN_CHAIN, FINISH_CHAIN]
    assert outcome.completion_tokens == 18 + FINISH_TOKENS
    # Task 1 starts at at(7) = 0.8 s and ends at 2.3 s. Task 2's line is in by at(14) = 1.15 s,
    # but it needs $1: it starts at 2.3 s and takes 1.0 s, to 3.3 s (the plan ended at 1.35 s).
    # The joiner: 1.25 s more. 4.55 s.
    assert _tool_starts(outcome) == pytest.approx([0.8, 2.3], abs=TOLERANCE)
    expected = max(at(18), max(at(7) + PARIS_S, at(14)) + HALF_S) + at(FINISH_TOKENS)
    assert expected == pytest.approx(4.55, abs=TOLERANCE)
    assert outcome.latency_s == pytest.approx(expected, abs=TOLERANCE)


# --------------------------------------------------------------------------- native parallel calling


def test_native_calling_fan_out() -> None:
    outcome, replies = _run("parallel_fc", FAN_OUT)
    assert replies == [[CALL_PARIS, CALL_ROME], "4900000"]
    assert outcome.completion_tokens == 2 * CALL_POPULATION_TOKENS + ANSWER_TOKENS
    # Turn 1 writes both calls: Paris is complete at its 6th token, at(6) = 0.75 s, and starts
    # then (to 2.25 s); Rome at token 12, at(12) = 1.05 s (to 1.55 s), which also ends the turn.
    # The answer turn starts at 2.25 s; its 3 tokens take at(3) = 0.6 s: 2.85 s.
    assert _tool_starts(outcome) == pytest.approx([0.75, 1.05], abs=TOLERANCE)
    paris, both = CALL_POPULATION_TOKENS, 2 * CALL_POPULATION_TOKENS
    expected = max(at(both), at(paris) + PARIS_S, at(both) + ROME_S) + at(ANSWER_TOKENS)
    assert expected == pytest.approx(2.85, abs=TOLERANCE)
    assert outcome.latency_s == pytest.approx(expected, abs=TOLERANCE)


def test_native_calling_chain() -> None:
    outcome, replies = _run("parallel_fc", CHAIN)
    assert replies == [[CALL_PARIS], [CALL_HALF], "1050000"]
    assert outcome.completion_tokens == CALL_POPULATION_TOKENS + CALL_HALF_TOKENS + ANSWER_TOKENS
    # Turn 1: Paris at at(6) = 0.75 s, to 2.25 s. Turn 2 (asked at 2.25 s): half's 8 tokens,
    # at(8) = 0.85 s, so it starts at 3.1 s and ends at 4.1 s. The answer: 0.6 s more. 4.7 s.
    assert _tool_starts(outcome) == pytest.approx([0.75, 3.1], abs=TOLERANCE)
    expected = at(CALL_POPULATION_TOKENS) + PARIS_S + at(CALL_HALF_TOKENS) + HALF_S + at(ANSWER_TOKENS)
    assert expected == pytest.approx(4.7, abs=TOLERANCE)
    assert outcome.latency_s == pytest.approx(expected, abs=TOLERANCE)


# --------------------------------------------------------------------------- ReAct


def test_react_fan_out() -> None:
    outcome, replies = _run("react", FAN_OUT)
    assert replies == [STEP_PARIS, STEP_ROME, FINISH_FAN_OUT]
    assert outcome.completion_tokens == 2 * STEP_POPULATION_TOKENS + FINISH_TOKENS
    # One call per step, each after its step's whole reply: 1.15 s + 1.5 s, 1.15 s + 0.5 s, then
    # the finishing step's 1.25 s. 5.55 s.
    step = at(STEP_POPULATION_TOKENS)
    assert _tool_starts(outcome) == pytest.approx([step, step + PARIS_S + step], abs=TOLERANCE)
    expected = step + PARIS_S + step + ROME_S + at(FINISH_TOKENS)
    assert expected == pytest.approx(5.55, abs=TOLERANCE)
    assert outcome.latency_s == pytest.approx(expected, abs=TOLERANCE)


def test_react_chain() -> None:
    outcome, replies = _run("react", CHAIN)
    assert replies == [STEP_PARIS, STEP_HALF, FINISH_CHAIN]
    assert outcome.completion_tokens == STEP_POPULATION_TOKENS + STEP_HALF_TOKENS + FINISH_TOKENS
    # 1.15 s + 1.5 s, then half's step (16 tokens, 1.25 s) + 1.0 s, then 1.25 s. 6.15 s.
    expected = at(STEP_POPULATION_TOKENS) + PARIS_S + at(STEP_HALF_TOKENS) + HALF_S + at(FINISH_TOKENS)
    assert expected == pytest.approx(6.15, abs=TOLERANCE)
    assert outcome.latency_s == pytest.approx(expected, abs=TOLERANCE)


# --------------------------------------------------------------------------- the ideal bound


def test_the_ideal_bound_of_the_fan_out() -> None:
    bound = _ideal(FAN_OUT)
    # One call writes the first level, both calls: 12 tokens, at(12) = 1.05 s. The longest chain
    # is Paris, 1.5 s. One call answers: 3 tokens, at(3) = 0.6 s. 3.15 s. A streaming system may
    # come in below it by the decode time of the level's other call (Rome's 6 tokens, 0.3 s):
    # native calling, at 2.85 s, does exactly that.
    assert bound.plan_tokens == 2 * CALL_POPULATION_TOKENS and bound.answer_tokens == ANSWER_TOKENS
    assert bound.plan_s == pytest.approx(at(12), abs=TOLERANCE)
    assert bound.tools_s == pytest.approx(max(PARIS_S, ROME_S), abs=TOLERANCE)
    assert bound.answer_s == pytest.approx(at(ANSWER_TOKENS), abs=TOLERANCE)
    assert bound.total_s == pytest.approx(3.15, abs=TOLERANCE)
    assert bound.stream_margin_s == pytest.approx(CALL_POPULATION_TOKENS * TOKEN, abs=TOLERANCE)


def test_the_ideal_bound_of_the_chain() -> None:
    bound = _ideal(CHAIN)
    # The first level is Paris alone: 6 tokens, at(6) = 0.75 s. The chain: 1.5 s + 1.0 s. The
    # answer: 0.6 s. 3.85 s, with no margin (a one-call level).
    assert bound.plan_tokens == CALL_POPULATION_TOKENS and bound.answer_tokens == ANSWER_TOKENS
    assert bound.plan_s == pytest.approx(at(CALL_POPULATION_TOKENS), abs=TOLERANCE)
    assert bound.tools_s == pytest.approx(PARIS_S + HALF_S, abs=TOLERANCE)
    assert bound.total_s == pytest.approx(3.85, abs=TOLERANCE)
    assert bound.stream_margin_s == 0.0


def test_each_run_carries_its_items_ideal_bound() -> None:
    outcome, _ = _run("llmcompiler", CHAIN)
    assert outcome.ideal_bound_s == pytest.approx(3.85, abs=TOLERANCE)


# --------------------------------------------------------------------------- the clock itself


def test_the_virtual_clock_is_exact_and_counts_thread_callbacks() -> None:
    async def main() -> tuple[float, int, int]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualClockLoop)
        await asyncio.sleep(3600.0)
        async with asyncio.timeout(30.0):
            await asyncio.sleep(0.25)
        before = loop.thread_callbacks
        assert await asyncio.to_thread(int, "7") == 7  # a thread reports back through the loop
        return loop.time(), before, loop.thread_callbacks

    now, before, after = run_virtual(main)
    assert now == 3600.25 and before == 0 and after >= 1
