"""The oracle's model of OpenAI's prompt cache (``benchmarks.oracle.PromptCache``) and its cost."""

from __future__ import annotations

import pytest

from benchmarks.oracle import PROFILES, PromptCache
from llmcompiler import Message, ModelRequest, ToolSpec, Usage


def request(system: str, *, question: str = "q", native: bool = False) -> ModelRequest:
    tools = (ToolSpec(name="search", description="Search.", parameters={"type": "object", "properties": {}}),)
    return ModelRequest(
        messages=(Message(role="system", content=system), Message(role="user", content=question)),
        purpose="tools" if native else "plan",
        tools=tools,
        native_tools=native,
    )


def test_the_first_request_with_a_prefix_reads_nothing_and_later_ones_read_it_in_128_token_steps() -> None:
    cache = PromptCache()
    assert cache.cached_tokens(request("S"), 1300) == 0
    assert cache.cached_tokens(request("S", question="another"), 1300) == 1280
    assert cache.cached_tokens(request("S", question="a third"), 1300) == 1280


def test_a_prefix_under_1024_tokens_is_never_cached() -> None:
    cache = PromptCache()
    assert cache.cached_tokens(request("S"), 1023) == 0
    assert cache.cached_tokens(request("S"), 1023) == 0
    assert cache.prefixes == {"plan": [1023, 1023]}


def test_another_system_message_or_another_tool_list_is_another_prefix() -> None:
    cache = PromptCache()
    cache.cached_tokens(request("S"), 2048)
    assert cache.cached_tokens(request("T"), 2048) == 0
    assert cache.cached_tokens(request("S", native=True), 2048) == 0
    assert cache.cached_tokens(request("S", native=True), 2048) == 2048


def test_cached_tokens_cost_gpt_4os_cached_rate() -> None:
    profile = PROFILES["gpt-4o"]
    plain = profile.cost(Usage(prompt_tokens=2_000_000, completion_tokens=0, calls=1))
    cached = profile.cost(Usage(prompt_tokens=2_000_000, completion_tokens=0, calls=1, cached_tokens=1_000_000))
    assert plain == pytest.approx(5.00)
    assert cached == pytest.approx(2.50 + 1.25)


def test_without_a_system_message_the_native_tools_alone_are_the_prefix_shared_across_questions() -> None:
    tools = (ToolSpec(name="search", description="Search.", parameters={"type": "object", "properties": {}}),)

    def ask(question: str) -> ModelRequest:
        return ModelRequest(
            messages=(Message(role="user", content=question),), purpose="tools", tools=tools, native_tools=True
        )

    cache = PromptCache()
    assert cache.cached_tokens(ask("first question"), 1100) == 0
    assert cache.cached_tokens(ask("another question"), 1100) == 1024
