"""The oracle model's profiles and its stream timing, on a virtual clock: text one chunk per
token at its token's time, native calls one by one at their last token's time, real counts."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from benchmarks.oracle import PROFILES, GoldCall, OracleLLM, Profile, render_plan
from benchmarks.tokens import call_tokens, prompt_tokens, token_counter
from llmcompiler import END_OF_PLAN, Message, ModelRequest, ToolCall, ToolSpec, Usage
from llmcompiler.models import ModelEvent
from tests.fakeclock import run_with_fake_clock

# A stated profile: 0.25 s to the first token plus 1 ms per prompt token, then 50 tokens/s.
STATED = Profile(
    name="stated",
    ttft_s=0.25,
    prefill_tokens_per_s=1000.0,
    decode_tokens_per_s=50.0,
    price_model=None,
    source="stated in the test",
    token_counter="o200k_base",
)
GOLD = [
    GoldCall(tool="search", args={"query": "France population"}, thought="I need both populations."),
    GoldCall(tool="search", args={"query": "Population of the Federal Republic of Germany, 2023"}),
    GoldCall(tool="lookup", args={"id": 7}),
]
SPECS = (
    ToolSpec(name="search", description="Search the web.", parameters={"properties": {"query": {"type": "string"}}}),
    ToolSpec(name="lookup", description="Look a record up.", parameters={"properties": {"id": {"type": "integer"}}}),
)
QUESTION = (Message(role="system", content="Answer the question."), Message(role="user", content="Who is bigger?"))
EXACT = 1e-9  # float rounding of the clock's jumps, no more


def _timed(llm: OracleLLM, request: ModelRequest) -> list[tuple[float, ModelEvent]]:
    async def main() -> list[tuple[float, ModelEvent]]:
        loop = asyncio.get_running_loop()
        return [(loop.time(), event) async for event in llm.stream(request)]

    return run_with_fake_clock(main)


def _answer_request(answer_text: str) -> tuple[OracleLLM, ModelRequest]:
    """An oracle whose next native-calling turn is the text ``answer_text`` (its one gold call answered)."""
    llm = OracleLLM([GoldCall(tool="lookup", args={"id": 1})], lambda _obs: answer_text, STATED)
    turn = Message(role="assistant", content="", tool_calls=(ToolCall(name="lookup", args={"id": 1}, id="gold_1"),))
    result = Message(role="tool", content="record 1", tool_call_id="gold_1")
    return llm, ModelRequest(messages=(*QUESTION, turn, result), purpose="tools", tools=SPECS, native_tools=True)


# --------------------------------------------------------------------------- profiles


def test_token_times_follow_the_profile() -> None:
    assert STATED.first_token_s(100) == pytest.approx(0.35)
    assert STATED.token_s(100, 1) == STATED.first_token_s(100)
    assert STATED.token_s(100, 11) == pytest.approx(0.35 + 10 / 50)
    assert STATED.reply_s(100, 11) == STATED.token_s(100, 11)
    assert STATED.reply_s(100, 0) == STATED.token_s(100, 1)  # an empty reply ends at the first token's time
    with pytest.raises(ValueError, match="numbered from 1"):
        STATED.token_s(100, 0)


def test_a_swept_profile_says_its_speed_and_that_it_is_assumed() -> None:
    swept = PROFILES["gpt-4o"].with_speed(ttft_s=0.1, decode_tokens_per_s=120)
    assert swept.name == "ttft=0.1s,120tok/s"
    assert (swept.ttft_s, swept.decode_tokens_per_s) == (0.1, 120)
    assert swept.source.startswith("swept (assumed)")
    same = ("prefill_tokens_per_s", "price_model", "token_counter")
    assert all(getattr(swept, f) == getattr(PROFILES["gpt-4o"], f) for f in same)


def test_profiles_name_their_tokenizer_and_where_their_numbers_come_from() -> None:
    assert {name: p.token_counter for name, p in PROFILES.items()} == {
        "gpt-4o": "o200k_base",
        "local": "gemma3",
        "instant": "o200k_base",
    }
    assert PROFILES["gpt-4o"].source.startswith("assumed")
    local = PROFILES["local"].source
    assert local.startswith("measured") and "benchmarks/results/local_model.json" in local and "gemma3" in local
    assert PROFILES["gpt-4o"].counter() is token_counter("o200k_base")


def test_a_profile_refuses_an_unknown_tokenizer_and_impossible_speeds() -> None:
    with pytest.raises(ValueError, match="unknown token counter 'words'"):
        dataclasses.replace(STATED, token_counter="words")
    with pytest.raises(ValueError, match="decode speed"):
        STATED.with_speed(ttft_s=0.1, decode_tokens_per_s=0)
    with pytest.raises(ValueError, match="first token"):
        STATED.with_speed(ttft_s=-1, decode_tokens_per_s=10)


# --------------------------------------------------------------------------- streaming


def test_a_plan_streams_one_chunk_per_token_each_at_its_tokens_time() -> None:
    llm = OracleLLM(GOLD, lambda _obs: "", STATED)
    request = ModelRequest(messages=QUESTION, purpose="plan", tools=SPECS)
    events = _timed(llm, request)
    *chunks, (usage_at, usage) = events
    text = render_plan(GOLD)
    counter = token_counter("o200k_base")
    prompt = prompt_tokens(counter, request)
    assert [chunk for _, chunk in chunks] == counter.pieces(text)  # plain ASCII: one token per chunk
    assert len(chunks) == counter.count(text) > 40
    for n, (at, _) in enumerate(chunks):
        assert at == pytest.approx(STATED.token_s(prompt, n + 1), abs=EXACT)
    assert usage == Usage(prompt_tokens=prompt, completion_tokens=counter.count(text), calls=1)
    assert usage_at == pytest.approx(chunks[-1][0], abs=EXACT)
    assert llm.prompt_tokens(request) == prompt


def test_native_calls_stream_one_by_one_each_when_its_last_token_is_written() -> None:
    llm = OracleLLM(GOLD, lambda _obs: "", STATED)
    request = ModelRequest(messages=QUESTION, purpose="tools", tools=SPECS, native_tools=True)
    events = _timed(llm, request)
    *calls, (usage_at, usage) = events
    counter = token_counter("o200k_base")
    prompt = prompt_tokens(counter, request)
    assert (
        prompt
        == prompt_tokens(counter, dataclasses.replace(request, native_tools=False))
        + (7 + counter.count("search:Search the web") + 3 + 3 + counter.count("query:string:"))
        + (7 + counter.count("lookup:Look a record up") + 3 + 3 + counter.count("id:integer:"))
        + 12
    )
    sizes = [call_tokens(counter, call) for _, call in calls if isinstance(call, ToolCall)]
    assert [c.id for _, c in calls if isinstance(c, ToolCall)] == ["gold_1", "gold_2", "gold_3"]  # one level
    written = 0
    for (at, _), size in zip(calls, sizes, strict=True):
        written += size
        assert at == pytest.approx(STATED.token_s(prompt, written), abs=EXACT)
    assert calls[0][0] < calls[1][0] < calls[2][0]  # not all at the end of the turn
    assert usage == Usage(prompt_tokens=prompt, completion_tokens=sum(sizes), calls=1)
    assert usage_at == pytest.approx(calls[-1][0], abs=EXACT)


def test_a_character_split_over_tokens_streams_whole_at_its_last_token() -> None:
    llm, request = _answer_request("🫠 done")  # o200k_base writes 🫠 as three byte tokens
    *chunks, (_, usage) = _timed(llm, request)
    prompt = llm.prompt_tokens(request)
    assert [c for _, c in chunks] == ["🫠", " done"]
    assert [at for at, _ in chunks] == pytest.approx([STATED.token_s(prompt, 3), STATED.token_s(prompt, 4)], abs=EXACT)
    assert usage == Usage(prompt_tokens=prompt, completion_tokens=4, calls=1)


def test_a_stop_sequence_cuts_the_reply_and_its_count() -> None:
    llm = OracleLLM(GOLD, lambda _obs: "", STATED)
    request = ModelRequest(messages=QUESTION, purpose="plan", tools=SPECS, stop=(END_OF_PLAN,))
    *chunks, (_, usage) = _timed(llm, request)
    text = render_plan(GOLD).removesuffix(END_OF_PLAN)
    assert "".join(str(c) for _, c in chunks) == text
    assert isinstance(usage, Usage) and usage.completion_tokens == token_counter("o200k_base").count(text)


def test_an_empty_reply_reports_its_usage_at_the_first_tokens_time() -> None:
    llm, request = _answer_request("")
    [(at, usage)] = _timed(llm, request)
    prompt = llm.prompt_tokens(request)
    assert usage == Usage(prompt_tokens=prompt, completion_tokens=0, calls=1)
    assert at == pytest.approx(STATED.token_s(prompt, 1), abs=EXACT)


def test_the_local_profile_counts_in_gemmas_tokens() -> None:
    try:
        gemma3 = token_counter("gemma3")
    except ImportError as exc:
        pytest.skip(str(exc))
    llm = OracleLLM(GOLD, lambda _obs: "", PROFILES["local"])
    request = ModelRequest(messages=QUESTION, purpose="plan", tools=SPECS)
    assert llm.prompt_tokens(request) == prompt_tokens(gemma3, request)
    *chunks, (_, usage) = _timed(llm, request)
    assert [c for _, c in chunks] == gemma3.pieces(render_plan(GOLD))
    assert isinstance(usage, Usage) and usage.completion_tokens == gemma3.count(render_plan(GOLD))


def test_benchmarks_no_longer_estimate_tokens() -> None:
    sources = Path(__file__).resolve().parent.parent / "benchmarks"
    assert not [p.name for p in sources.rglob("*.py") if "estimate_tokens" in p.read_text(encoding="utf-8")]
