"""Secret redaction: keys and bearer tokens go, the text around them stays."""

from __future__ import annotations

import pytest

from llmcompiler._redact import is_secret_entry, redact, scrub


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(Authorization: Bearer sk-abc)", "(Authorization: Bearer [redacted])"),
        ("Bearer tok123, then more", "Bearer [redacted], then more"),
        ("Bearer tok123; retry", "Bearer [redacted]; retry"),
        ('{"authorization": "Bearer tok123"}', '{"authorization": "Bearer [redacted]"}'),
        ("{'authorization': 'bearer tok123'}", "{'authorization': 'bearer [redacted]'}"),
        ("Authorization: Bearer abc.def-123", "Authorization: Bearer [redacted]"),
    ],
)
def test_a_bearer_token_is_redacted_and_the_punctuation_after_it_kept(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_given_secrets_and_key_shaped_strings_are_redacted() -> None:
    text = "key sk-test-0123456789 and secret hunter2-xyz in (sk-proj-abcdefgh)"
    assert redact(text, ["hunter2-xyz", None, ""]) == "key [redacted] and secret [redacted] in ([redacted])"


def test_text_without_secrets_is_unchanged() -> None:
    text = "set OPENAI_API_KEY or pass api_key= (see the docs)"
    assert redact(text) == text


@pytest.mark.parametrize(
    "key",
    [
        "ghp_FAKEfakeFAKEfakeFAKEfake0123",
        "github_pat_FAKE_fake_FAKE_fake_0123",
        "xoxb-FAKE-fake-0123456",
        "AKIAFAKEFAKEFAKE0123",
        "AIzaFAKEfakeFAKEfakeFAKEfakeFAKEfake012",
        "hf_FAKEfakeFAKEfakeFAKEfake",
    ],
)
def test_provider_key_shapes_are_redacted(key: str) -> None:
    # issue 10 row 26: the shapes of other providers' keys, in case a server echoes one back
    assert redact(f"rejected key {key}.") == "rejected key [redacted]."


# -- scrub: prose naming a secret's parameter is not a secret (issue 11)


def _no_key_message(provider: str) -> str:
    """The message an adapter raises when no API key is found, as a user reads it."""
    from llmcompiler._errors import UserError
    from llmcompiler.models._loader import load_model

    with pytest.raises(UserError) as caught:
        load_model(f"{provider}:some-model")
    return str(caught.value)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_the_no_key_message_passes_through_scrub_unchanged(provider: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    message = _no_key_message(provider)
    assert "pass api_key=" in message
    assert scrub(message) == message


def test_the_openai_no_key_message_reads_in_full() -> None:
    text = (
        "openai:some-model needs an API key: set OPENAI_API_KEY or pass api_key= "
        "(or base_url= for an OpenAI-compatible server that needs none)"
    )
    assert scrub(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "pass api_key= (or set OPENAI_API_KEY)",
        "pass api_key= or set OPENAI_API_KEY",
        "check OPENAI_API_KEY or api_key=",
        "set token= (see the docs) or password= [optional]",
        "secret= {the vault's} and access_token= <yours>",
        "give api_key=\nand then the model",
        '{"api_key": null, "password": (none)}',
        "client_secret = (see below)",
    ],
)
def test_prose_about_secret_parameters_is_kept(text: str) -> None:
    assert scrub(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("api_key=sk-abcdefghijk", "api_key=[redacted]"),
        ('api_key="hello world secret"', 'api_key="[redacted]"'),
        ("api_key=abcd1234efgh", "api_key=[redacted]"),
        ("password = hunter2", "password = [redacted]"),
        ("password = Hunter", "password = [redacted]"),
        ("password=or", "password=[redacted]"),  # right after the "=": a value, however short
        ("token=abc and more", "token=[redacted] and more"),
        ("secret = 'a b'", "secret = '[redacted]'"),
        ('{"password": "or"}', '{"password": "[redacted]"}'),  # quoted: always a value
        ("access_token= longerword", "access_token= [redacted]"),
    ],
)
def test_real_assigned_values_are_still_redacted(text: str, expected: str) -> None:
    assert scrub(text) == expected


@pytest.mark.parametrize(
    ("name", "value", "secret"),
    [
        ("password", "hunter2", True),
        ("DB_Password", 1234, True),  # whatever the value looks like
        ("api_key", {"nested": "x"}, True),
        ("access_token", "", True),
        ("password", None, False),  # no value: nothing to hide
        ("max_tokens", 100, False),
        ("key", "Oslo", False),
        (("password",), "x", False),  # only a text names a secret
    ],
)
def test_a_value_under_a_secrets_name_is_a_secret_entry(name: object, value: object, secret: bool) -> None:
    assert is_secret_entry(name, value) is secret
