"""The benchmark's token counters: real tokenizers, pieces that spell the text, and requests
charged the OpenAI cookbook way ("How to count tokens with tiktoken")."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.tokens import (
    COUNTERS,
    ENUM_INIT,
    ENUM_ITEM,
    FUNC_END,
    FUNC_INIT,
    PROP_INIT,
    PROP_KEY,
    TokenCounter,
    call_tokens,
    completion_tokens,
    prompt_tokens,
    token_counter,
    tool_definition_tokens,
)
from llmcompiler import Message, ModelRequest, ToolCall, ToolSpec

# The cookbook's worked example of section 7 ("Counting tokens for chat completions with tool
# calls"): the API reported 101 prompt tokens for it on gpt-4o and gpt-4o-mini.
WEATHER = ToolSpec(
    name="get_current_weather",
    description="Get the current weather in a given location",
    parameters={
        "type": "object",
        "properties": {
            "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
            "unit": {
                "type": "string",
                "description": "The unit of temperature to return",
                "enum": ["celsius", "fahrenheit"],
            },
        },
        "required": ["location"],
    },
)
WEATHER_MESSAGES = (
    Message(role="system", content="You are a helpful assistant that can answer to questions about the weather."),
    Message(role="user", content="What's the weather like in San Francisco?"),
)
PLAN = 'Thought: I need the population of France.\n1. search(query="France population")\n2. join()\n<END_OF_PLAN>'


@pytest.fixture(scope="module")
def o200k() -> TokenCounter:
    return token_counter("o200k_base")


@pytest.fixture(scope="module")
def gemma3() -> TokenCounter:
    try:
        return token_counter("gemma3")
    except ImportError as exc:  # the local extra is not installed
        pytest.skip(str(exc))


def _counters() -> list[TokenCounter]:
    counters = [token_counter("o200k_base")]
    try:
        counters.append(token_counter("gemma3"))
    except ImportError:
        pass
    return counters


# --------------------------------------------------------------------------- the counters


def test_o200k_counts_as_the_cookbook_shows(o200k: TokenCounter) -> None:
    # The cookbook's own o200k_base figures (section 5, "Comparing encodings").
    assert o200k.name == "o200k_base"
    assert o200k.count("tiktoken is great!") == 6
    assert o200k.pieces("tiktoken is great!") == ["t", "ikt", "oken", " is", " great", "!"]
    assert o200k.count("antidisestablishmentarianism") == 6
    assert o200k.count("2 + 2 = 4") == 7
    assert o200k.count("お誕生日おめでとう") == 8
    # And a plan line of ours, counted once by this tokenizer (one token per word, "(query" and ")\n" fused).
    assert o200k.count(PLAN) == 26
    assert o200k.count("") == 0


def test_gemma3_counts_with_the_local_models_own_vocabulary(gemma3: TokenCounter) -> None:
    # Counted once with the GGUF's vocabulary; Gemma's 262k vocabulary keeps Japanese words whole
    # and splits "_OF_" and ")\n" where o200k_base fuses them.
    assert gemma3.name == "gemma3"
    assert gemma3.pieces("tiktoken is great!") == ["tik", "token", " is", " great", "!"]
    assert gemma3.count("お誕生日おめでとう") == 4
    assert gemma3.count("2 + 2 = 4") == 7
    assert gemma3.count(PLAN) == 32
    # No beginning-of-text token and no special tokens: text that looks like one is text.
    assert gemma3.pieces("<start_of_turn>user") == ["<", "start", "_", "of", "_", "turn", ">", "user"]
    assert gemma3.count("") == 0


def test_counters_are_named_loaded_once_and_unknown_names_are_refused(o200k: TokenCounter) -> None:
    assert COUNTERS == ("o200k_base", "gemma3")
    assert token_counter("o200k_base") is o200k
    with pytest.raises(ValueError, match=r"'cl100k_base'.*o200k_base, gemma3"):
        token_counter("cl100k_base")


def test_special_token_text_is_counted_as_text(o200k: TokenCounter) -> None:
    assert o200k.pieces("<|endoftext|>") == ["<", "|", "end", "of", "text", "|", ">"]


@pytest.mark.parametrize(
    "text",
    ["naïve café", "お誕生日おめでとう", "🫠🧑\u200d🤝\u200d🧑 ok", "𓀀 hieroglyph", "e\u0301", "a\n\n\tb  c", "\x00"],
)
def test_pieces_spell_the_text_and_never_split_a_character(text: str) -> None:
    for counter in _counters():
        timed = counter.timed_pieces(text)
        assert "".join(piece for piece, _ in timed) == text
        assert counter.pieces(text) == [piece for piece, _ in timed]
        assert all(piece for piece, _ in timed)  # every piece is text: a split character came whole
        numbers = [k for _, k in timed]
        assert numbers == sorted(set(numbers)) and numbers[-1] == counter.count(text)


def test_a_character_written_as_several_tokens_is_one_piece_at_its_last_token(o200k: TokenCounter) -> None:
    # o200k_base writes 🫠 as three byte tokens and 𓀀 as four: one piece each, numbered by its last token.
    assert o200k.timed_pieces("🫠x") == [("🫠", 3), ("x", 4)]
    assert o200k.timed_pieces("𓀀") == [("𓀀", 4)]


def test_a_lone_surrogate_counts_as_a_replacement_character_and_stays_in_the_pieces(o200k: TokenCounter) -> None:
    text = "a\ud800b"  # what json.loads gives for "a\\ud800b"
    assert o200k.count(text) == o200k.count("a\ufffdb")
    assert "".join(o200k.pieces(text)) == text


def test_a_text_longer_than_the_tokenizers_limit_is_counted(o200k: TokenCounter) -> None:
    words = "token " * 250_000  # 1.5 M characters: bpe-openai alone refuses a million
    assert o200k.count(words) == pytest.approx(250_000, rel=0.01)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=60))
def test_pieces_spell_any_text(text: str) -> None:
    for counter in _counters():
        assert "".join(counter.pieces(text)) == text
        assert len(counter.pieces(text)) <= counter.count(text)


# --------------------------------------------------------------------------- tool definitions


def test_tool_definitions_follow_the_cookbook_formula_on_its_worked_example(o200k: TokenCounter) -> None:
    count = o200k.count
    by_hand = (
        FUNC_INIT
        + count("get_current_weather:Get the current weather in a given location")
        + PROP_INIT
        + PROP_KEY
        + count("location:string:The city and state, e.g. San Francisco, CA")
        + PROP_KEY
        + ENUM_INIT
        + ENUM_ITEM
        + count("celsius")
        + ENUM_ITEM
        + count("fahrenheit")
        + count("unit:string:The unit of temperature to return")
        + FUNC_END
    )
    assert (FUNC_INIT, PROP_INIT, PROP_KEY, ENUM_INIT, ENUM_ITEM, FUNC_END) == (7, 3, 3, -3, 3, 12)  # gpt-4o's
    assert tool_definition_tokens(o200k, [WEATHER]) == by_hand == 68
    # The whole request: what the OpenAI API reported for it, as the cookbook shows.
    request = ModelRequest(messages=WEATHER_MESSAGES, purpose="tools", tools=(WEATHER,), native_tools=True)
    assert prompt_tokens(o200k, request) == 101


def test_tool_definitions_drop_a_final_period_and_charge_a_tool_without_parameters(o200k: TokenCounter) -> None:
    bare = ToolSpec(name="now", description="The current time.")
    assert tool_definition_tokens(o200k, [bare]) == FUNC_INIT + o200k.count("now:The current time") + FUNC_END
    two = tool_definition_tokens(o200k, [bare, WEATHER])
    assert two == tool_definition_tokens(o200k, [bare]) + tool_definition_tokens(o200k, [WEATHER]) - FUNC_END
    assert tool_definition_tokens(o200k, []) == 0


@pytest.mark.parametrize(
    ("prop", "line"),
    [
        ({"type": ["number", "string"]}, "x:number | string:"),
        ({"anyOf": [{"type": "integer"}, {"type": "null"}], "description": "A count."}, "x:integer | null:A count"),
        ({"type": "array", "items": {"type": "integer"}}, "x:array:"),
        ({}, "x:any:"),
    ],
)
def test_a_parameters_type_is_its_json_schema_word(o200k: TokenCounter, prop: dict[str, Any], line: str) -> None:
    tool = ToolSpec(name="f", parameters={"properties": {"x": prop}})
    expected = FUNC_INIT + o200k.count("f:") + PROP_INIT + PROP_KEY + o200k.count(line) + FUNC_END
    assert tool_definition_tokens(o200k, [tool]) == expected


def test_a_referenced_parameter_is_charged_as_what_it_names(o200k: TokenCounter) -> None:
    via_ref = ToolSpec(
        name="f",
        parameters={
            "properties": {"x": {"$ref": "#/$defs/Mode"}},
            "$defs": {"Mode": {"type": "string", "enum": ["a", "b"]}},
        },
    )
    inline = ToolSpec(name="f", parameters={"properties": {"x": {"type": "string", "enum": ["a", "b"]}}})
    assert tool_definition_tokens(o200k, [via_ref]) == tool_definition_tokens(o200k, [inline])


# --------------------------------------------------------------------------- requests and replies


def test_prompt_tokens_charge_tool_definitions_only_when_they_go_native(o200k: TokenCounter) -> None:
    native = ModelRequest(messages=WEATHER_MESSAGES, purpose="tools", tools=(WEATHER,), native_tools=True)
    listed = ModelRequest(messages=WEATHER_MESSAGES, purpose="plan", tools=(WEATHER,))
    assert prompt_tokens(o200k, native) - prompt_tokens(o200k, listed) == tool_definition_tokens(o200k, [WEATHER])
    # A prompt that lists the tools as text pays for that text, as a message.
    signature = Message(role="system", content=f"Tools:\n{WEATHER.signature()}: {WEATHER.description}")
    with_text = ModelRequest(messages=(signature, *WEATHER_MESSAGES), purpose="plan", tools=(WEATHER,))
    extra = prompt_tokens(o200k, with_text) - prompt_tokens(o200k, listed)
    assert extra == 3 + o200k.count("system") + o200k.count(signature.content)


def test_messages_cost_three_plus_role_and_content_and_three_prime_the_reply(o200k: TokenCounter) -> None:
    assert prompt_tokens(o200k, ModelRequest(messages=(), purpose="plan")) == 3
    one = ModelRequest(messages=(Message(role="user", content="tiktoken is great!"),), purpose="plan")
    assert prompt_tokens(o200k, one) == 3 + (3 + 1 + 6)


def test_native_calls_cost_their_name_and_compact_json_in_replies_and_in_the_history(o200k: TokenCounter) -> None:
    call = ToolCall(name="get_current_weather", args={"location": "Oslo, NO", "unit": "celsius"}, id="call_1")
    assert call_tokens(o200k, call) == o200k.count("get_current_weather") + o200k.count(
        '{"location":"Oslo, NO","unit":"celsius"}'
    )
    assert completion_tokens(o200k, [call, call]) == 2 * call_tokens(o200k, call)
    assert completion_tokens(o200k, "tiktoken is great!") == 6
    turn = Message(role="assistant", content="", tool_calls=(call,))
    answer = Message(role="tool", content="4 °C", tool_call_id="call_1")
    before = ModelRequest(messages=WEATHER_MESSAGES, purpose="tools")
    after = ModelRequest(messages=(*WEATHER_MESSAGES, turn, answer), purpose="tools")
    assistant = 3 + o200k.count("assistant") + call_tokens(o200k, call)
    tool = 3 + o200k.count("tool") + o200k.count("4 °C")  # the call id is the provider's framing: not counted
    assert prompt_tokens(o200k, after) - prompt_tokens(o200k, before) == assistant + tool
