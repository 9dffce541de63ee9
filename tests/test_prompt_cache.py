"""Prompt caching: static prefixes first, Anthropic's ``cache_control`` markers, cached tokens in
``Usage`` and their price.

The wire tests run the real ``AsyncOpenAI`` and ``AsyncAnthropic`` clients against the loopback
servers of ``tests/wire``: what the request bodies carry (the system prompt first and identical
across questions, the markers where Anthropic's Messages API wants them), and the usage the
servers report with cached tokens (OpenAI ``prompt_tokens_details.cached_tokens``, Anthropic
``cache_read_input_tokens`` / ``cache_creation_input_tokens``) read, summed over a run's calls
and priced at the cached rates.
"""

from __future__ import annotations

from typing import Any

import pytest

from llmcompiler import LLMCompiler, Tool, tool
from llmcompiler._types import Message, ModelEvent, ModelRequest, Usage
from llmcompiler.models import CACHE_PRICES, PRICES, cache_price_of, cost_usd
from llmcompiler.models._anthropic import AnthropicChat
from llmcompiler.models._openai import OpenAIChat
from planners import ParallelToolCallAgent
from tests.wire import SSE, LoopbackServer, Script
from tests.wire import anthropic_server as an
from tests.wire import openai_server as oa

SECRET = "sk-test-DISTINCTIVE-cache-5e1f"
MARKER = {"type": "ephemeral"}
QUESTIONS = ("What is 2 + 3?", "What is 40 + 2?")


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@tool
def mul(a: int, b: int) -> int:
    """Multiply two numbers."""
    return a * b


class PricedOpenAIChat(OpenAIChat):
    """``OpenAIChat`` on the loopback server, priced as OpenAI's own ``gpt-4o`` (an
    OpenAI-compatible server's model has no list price)."""

    @property
    def model_name(self) -> str:
        return f"openai:{self.model}"


async def _collect(model: OpenAIChat | AnthropicChat, request: ModelRequest) -> list[ModelEvent]:
    return [event async for event in model.stream(request)]


def _request(*messages: Message, tools: tuple[Tool, ...] = (), native: bool = False) -> ModelRequest:
    return ModelRequest(messages=messages, purpose="plan", tools=tuple(t.spec for t in tools), native_tools=native)


SYSTEM = Message(role="system", content="You plan.")
USER = Message(role="user", content="hi")


# --- Usage --------------------------------------------------------------------------------------


def test_usage_sums_cached_and_written_tokens() -> None:
    one = Usage(prompt_tokens=100, completion_tokens=5, calls=1, cached_tokens=60, cache_write_tokens=0)
    two = Usage(prompt_tokens=300, completion_tokens=7, calls=1, cached_tokens=0, cache_write_tokens=250)
    assert one + two == Usage(
        prompt_tokens=400, completion_tokens=12, calls=2, cached_tokens=60, cache_write_tokens=250
    )
    assert (one + two).total_tokens == 412
    assert Usage() + Usage(prompt_tokens=3) == Usage(prompt_tokens=3)  # the defaults are 0


# --- pricing ------------------------------------------------------------------------------------


def test_cached_reads_are_priced_at_openais_cached_input_rates() -> None:
    # gpt-4o: $2.50 input, $1.25 cached input, $10 output per million.
    usage = Usage(prompt_tokens=3_000_000, completion_tokens=1_000_000, cached_tokens=2_000_000)
    assert cost_usd("openai:gpt-4o", usage) == pytest.approx(2.50 + 2 * 1.25 + 10.00, rel=1e-12)
    assert cost_usd("openai:gpt-4o-2024-08-06", usage) == cost_usd("openai:gpt-4o", usage)  # a dated id
    million_cached = Usage(prompt_tokens=1_000_000, cached_tokens=1_000_000)
    assert cost_usd("gpt-4o-mini", million_cached) == pytest.approx(0.075, rel=1e-12)
    assert cost_usd("gpt-4.1", million_cached) == pytest.approx(0.50, rel=1e-12)
    assert cost_usd("gpt-5", million_cached) == pytest.approx(0.125, rel=1e-12)
    # The same tokens uncached cost the input price.
    assert cost_usd("gpt-4o", Usage(prompt_tokens=1_000_000)) == pytest.approx(2.50, rel=1e-12)


def test_anthropic_cache_reads_cost_a_tenth_and_writes_a_quarter_more() -> None:
    # claude-sonnet-4-5: $3 input, $0.30 cache read, $3.75 cache write, $15 output per million.
    usage = Usage(
        prompt_tokens=3_000_000,
        completion_tokens=100_000,
        cached_tokens=1_000_000,
        cache_write_tokens=1_000_000,
    )
    assert cost_usd("anthropic:claude-sonnet-4-5-20250929", usage) == pytest.approx(
        3.00 + 0.30 + 3.75 + 1.50, rel=1e-12
    )
    assert cache_price_of("anthropic:claude-haiku-4-5") == (0.10, 1.25)
    assert cache_price_of("anthropic:claude-3-haiku-20240307") == (0.03, 0.30)  # as its price page rounds them
    for model, (read, write) in CACHE_PRICES.items():
        if model.startswith("claude-") and model != "claude-3-haiku":
            per_input = PRICES[model][0]
            assert read == pytest.approx(0.1 * per_input, abs=0.001), model
            assert write == pytest.approx(1.25 * per_input, abs=0.001), model


def test_every_cached_rate_belongs_to_a_priced_model_and_is_cheaper_than_input() -> None:
    for model, (read, write) in CACHE_PRICES.items():
        assert model in PRICES, model
        assert 0 < read < PRICES[model][0] <= write, model


def test_a_model_without_cached_rates_pays_the_input_price_for_every_prompt_token() -> None:
    usage = Usage(prompt_tokens=2_000_000, cached_tokens=1_000_000, cache_write_tokens=500_000)
    # gpt-4o-2024-05-13 predates caching: its own $5 input price, not gpt-4o's cached rate.
    assert cache_price_of("gpt-4o-2024-05-13") == (5.00, 5.00)
    assert cost_usd("gpt-4o-2024-05-13", usage) == pytest.approx(10.00, rel=1e-12)
    assert cost_usd("gpt-4-turbo", usage) == pytest.approx(20.00, rel=1e-12)
    # A table of one's own: input price, unless its own cache table says otherwise.
    mine = {"my-model": (1.0, 2.0)}
    assert cost_usd("my-model", usage, mine) == pytest.approx(2.00, rel=1e-12)
    assert cost_usd("my-model", usage, mine, {"my-model": (0.5, 1.5)}) == pytest.approx(
        0.5 * 1.0 + 1.0 * 0.5 + 0.5 * 1.5, rel=1e-12
    )
    assert cache_price_of("local") is None
    assert cache_price_of("openai-compatible:gpt-4o") is None
    assert cost_usd("local", usage) is None


def test_cached_counts_beyond_the_prompt_are_never_charged_twice() -> None:
    # A server that reports more cached tokens than prompt tokens: at most the whole prompt is cached.
    assert cost_usd("gpt-4o", Usage(prompt_tokens=1_000_000, cached_tokens=5_000_000)) == pytest.approx(1.25)
    both = Usage(prompt_tokens=1_000_000, cached_tokens=800_000, cache_write_tokens=800_000)
    assert cost_usd("claude-sonnet-4-5", both) == pytest.approx(0.8 * 0.30 + 0.2 * 3.75, rel=1e-12)


# --- OpenAI over the wire -----------------------------------------------------------------------


async def test_openai_reads_cached_tokens_from_prompt_tokens_details(
    openai_llm: OpenAIChat, openai_script: Script
) -> None:
    openai_script.add(
        SSE(oa.text_stream(["ok"], usage=(1500, 4), cached=1280)),
        SSE(oa.text_stream(["ok"], usage=(1500, 4))),  # no details: nothing cached
        SSE(oa.text_stream(["ok"], usage=(1500, 4), cached=0)),
    )
    first, second, third = [await _collect(openai_llm, _request(SYSTEM, USER)) for _ in range(3)]
    assert first == ["ok", Usage(prompt_tokens=1500, completion_tokens=4, calls=1, cached_tokens=1280)]
    assert second == ["ok", Usage(prompt_tokens=1500, completion_tokens=4, calls=1)]
    assert third == second
    body = openai_script.bodies()[0]
    assert body["messages"][0] == {"role": "system", "content": "You plan."}
    assert "cache_control" not in str(body)  # OpenAI caches a stable prefix by itself: no marker


def _two_runs(script: Script, reply: Any, cached: list[Any]) -> None:
    """Script the planner and joiner replies of ``QUESTIONS`` (``reply(text, usage, cached[k])``)."""
    script.add(
        reply("1. add(a=2, b=3)\n2. join()\n", (1200, 10), cached[0]),
        reply("Thought: the sum.\nAction: Finish(5)", (400, 8), cached[1]),
        reply("1. add(a=40, b=2)\n2. join()\n", (1210, 10), cached[2]),
        reply("Thought: the sum.\nAction: Finish(42)", (410, 8), cached[3]),
    )


def _check_prompt_order(bodies: list[Any], system_of: Any, user_of: Any) -> None:
    """Planner and joiner requests: the system prompt first, byte for byte the same for both
    questions (no question in it); the question in the last user message."""
    plans, joins = bodies[0::2], bodies[1::2]
    for kind in (plans, joins):
        first, second = (system_of(body) for body in kind)
        assert first == second
        assert all(q not in first for q in QUESTIONS)
        for body, question in zip(kind, QUESTIONS, strict=True):
            assert question in user_of(body)
    assert system_of(plans[0]) != system_of(joins[0])
    assert "add(a: int, b: int)" in system_of(plans[0])  # the tool descriptions are in the static part


async def test_openai_run_puts_the_static_prompt_first_and_prices_cached_tokens(
    openai_server: tuple[LoopbackServer, Script], openai_script: Script
) -> None:
    def reply(text: str, usage: tuple[int, int], cached: int | None) -> SSE:
        return SSE(oa.text_stream([text], usage=usage, cached=cached))

    # The first question writes the planner's prefix (OpenAI reports nothing cached), the second reads it.
    _two_runs(openai_script, reply, [None, None, 1024, 0])
    async with PricedOpenAIChat("gpt-4o", base_url=f"{openai_server[0].url}/v1", api_key=SECRET) as llm:
        agent = LLMCompiler(llm=llm, tools=[add, mul])
        first = await agent.arun(QUESTIONS[0])
        second = await agent.arun(QUESTIONS[1])
    assert (first.answer, second.answer) == ("5", "42")
    assert first.usage == Usage(prompt_tokens=1600, completion_tokens=18, calls=2)
    assert second.usage == Usage(prompt_tokens=1620, completion_tokens=18, calls=2, cached_tokens=1024)
    # gpt-4o: $2.50 input, $1.25 cached input, $10 output per million.
    assert first.cost_usd == pytest.approx((1600 * 2.50 + 18 * 10.00) / 1e6, rel=1e-12)
    assert second.cost_usd == pytest.approx(((1620 - 1024) * 2.50 + 1024 * 1.25 + 18 * 10.00) / 1e6, rel=1e-12)

    bodies = openai_script.bodies()
    assert [[m["role"] for m in body["messages"]] for body in bodies] == [["system", "user"]] * 4
    _check_prompt_order(bodies, lambda b: b["messages"][0]["content"], lambda b: b["messages"][-1]["content"])


# --- Anthropic over the wire --------------------------------------------------------------------


async def test_anthropic_marks_the_system_prompt_for_the_cache(
    anthropic_llm: AnthropicChat, anthropic_script: Script
) -> None:
    anthropic_script.add(SSE(an.text_stream(["ok"])), SSE(an.text_stream(["ok"])))
    await _collect(anthropic_llm, _request(SYSTEM, Message(role="system", content="Be brief."), USER))
    await _collect(anthropic_llm, _request(USER))
    with_system, without = anthropic_script.bodies()
    # One text block (the system messages as they were joined before), the marker on it.
    assert with_system["system"] == [{"type": "text", "text": "You plan.\n\nBe brief.", "cache_control": MARKER}]
    assert with_system["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert "system" not in without
    assert "cache_control" not in str(without)  # nothing static to mark


async def test_anthropic_marks_the_last_native_tool_so_the_whole_tool_list_is_cached(
    anthropic_llm: AnthropicChat, anthropic_script: Script
) -> None:
    anthropic_script.add(SSE(an.text_stream(["ok"])))
    await _collect(anthropic_llm, _request(SYSTEM, USER, tools=(add, mul), native=True))
    (body,) = anthropic_script.bodies()
    assert [t["name"] for t in body["tools"]] == ["add", "mul"]
    assert "cache_control" not in body["tools"][0]
    assert body["tools"][-1]["cache_control"] == MARKER
    assert body["system"][-1]["cache_control"] == MARKER
    # At most Anthropic's four breakpoints, none in the turns (the question is never cached).
    assert str(body).count("cache_control") == 2
    assert "cache_control" not in str(body["messages"])


async def test_anthropic_sends_no_marker_when_caching_is_off(
    anthropic_server: tuple[LoopbackServer, Script], anthropic_script: Script
) -> None:
    anthropic_script.add(SSE(an.text_stream(["ok"])))
    async with AnthropicChat("claude-test", base_url=anthropic_server[0].url, cache_prompt=False) as model:
        await _collect(model, _request(SYSTEM, USER, tools=(add,), native=True))
    (body,) = anthropic_script.bodies()
    assert body["system"] == [{"type": "text", "text": "You plan."}]
    assert "cache_control" not in str(body)


async def test_anthropic_usage_counts_cache_reads_and_writes_in_the_prompt(
    anthropic_llm: AnthropicChat, anthropic_script: Script
) -> None:
    later = [  # counts in message_start, then newer cumulative ones in message_delta
        an.message_start(3, cache_read=0, cache_write=0),
        *an.text_block(0, ["ok"]),
        an.message_delta("end_turn", 9, input_tokens=20, cache_read_input_tokens=1800, cache_creation_input_tokens=0),
        an.message_stop(),
    ]
    anthropic_script.add(
        SSE(an.text_stream(["ok"], usage=(20, 6), cache=(0, 1800))),
        SSE(an.text_stream(["ok"], usage=(20, 6), cache=(1800, 0))),
        SSE(later),
    )
    write, read, delta = [await _collect(anthropic_llm, _request(SYSTEM, USER)) for _ in range(3)]
    # input_tokens excludes the cached tokens: the prompt is input + read + written.
    assert write == ["ok", Usage(prompt_tokens=1820, completion_tokens=6, calls=1, cache_write_tokens=1800)]
    assert read == ["ok", Usage(prompt_tokens=1820, completion_tokens=6, calls=1, cached_tokens=1800)]
    assert delta == ["ok", Usage(prompt_tokens=1820, completion_tokens=9, calls=1, cached_tokens=1800)]


async def test_anthropic_run_caches_the_static_prompt_and_prices_reads_and_writes(
    anthropic_server: tuple[LoopbackServer, Script], anthropic_script: Script
) -> None:
    def reply(text: str, usage: tuple[int, int], cache: tuple[int, int] | None) -> SSE:
        return SSE(an.text_stream([text], usage=usage, cache=cache))

    # The first question writes the planner's and the joiner's prefixes; the second reads them.
    _two_runs(anthropic_script, reply, [(0, 1100), (0, 300), (1100, 0), (300, 0)])
    url = anthropic_server[0].url
    async with AnthropicChat("claude-haiku-4-5", base_url=url, api_key=SECRET) as llm:
        agent = LLMCompiler(llm=llm, tools=[add, mul])
        first = await agent.arun(QUESTIONS[0])
        second = await agent.arun(QUESTIONS[1])
    assert (first.answer, second.answer) == ("5", "42")
    prompt = 1200 + 1100 + 400 + 300
    assert first.usage == Usage(prompt_tokens=prompt, completion_tokens=18, calls=2, cache_write_tokens=1400)
    assert second.usage == Usage(prompt_tokens=prompt + 20, completion_tokens=18, calls=2, cached_tokens=1400)
    # claude-haiku-4-5: $1 input, $0.10 cache read, $1.25 cache write, $5 output per million.
    assert first.cost_usd == pytest.approx((1600 * 1.00 + 1400 * 1.25 + 18 * 5.00) / 1e6, rel=1e-12)
    assert second.cost_usd == pytest.approx((1620 * 1.00 + 1400 * 0.10 + 18 * 5.00) / 1e6, rel=1e-12)

    bodies = anthropic_script.bodies()
    for body in bodies:
        (block,) = body["system"]
        assert block["cache_control"] == MARKER
        assert [m["role"] for m in body["messages"]] == ["user"]
        assert "cache_control" not in str(body["messages"])
    _check_prompt_order(bodies, lambda b: b["system"][0]["text"], lambda b: b["messages"][-1]["content"][-1]["text"])


async def test_native_tool_calling_marks_the_tools_and_the_system_prompt_in_every_turn(
    anthropic_llm: AnthropicChat, anthropic_script: Script
) -> None:
    anthropic_script.add(
        SSE(an.tool_use_stream([("toolu_1", "add", ['{"a": 2, "b": 3}'])], usage=(30, 10))),
        SSE(an.text_stream(["5"], usage=(60, 2), cache=(900, 0))),
    )
    result = await ParallelToolCallAgent(llm=anthropic_llm, tools=[add, mul]).arun(QUESTIONS[0])
    assert result.answer == "5"
    assert result.usage == Usage(prompt_tokens=990, completion_tokens=12, calls=2, cached_tokens=900)
    first, second = anthropic_script.bodies()
    assert first["tools"] == second["tools"]
    assert first["system"] == second["system"]
    for body in (first, second):
        assert body["tools"][-1]["cache_control"] == MARKER
        assert body["system"][-1]["cache_control"] == MARKER


async def test_a_replan_keeps_the_planner_system_prompt_byte_for_byte(
    openai_llm: OpenAIChat, openai_script: Script
) -> None:
    openai_script.add(
        SSE(oa.text_stream(["1. add(a=2, b=3)\n2. join()\n"])),
        SSE(oa.text_stream(["Action: Replan(multiply too)"])),
        SSE(oa.text_stream(["3. mul(a=$1, b=2)\n4. join()\n"])),
        SSE(oa.text_stream(["Action: Finish(10)"])),
    )
    result = await LLMCompiler(llm=openai_llm, tools=[add, mul]).arun(QUESTIONS[0])
    assert result.answer == "10"
    plan1, join1, plan2, join2 = openai_script.bodies()
    # What varies on a replan (the numbering, the history, the feedback) is in the user message.
    assert plan2["messages"][0] == plan1["messages"][0]
    assert join2["messages"][0] == join1["messages"][0]
    assert "Number its tasks from 3 on" in plan2["messages"][1]["content"]
    assert "multiply too" in plan2["messages"][1]["content"]
