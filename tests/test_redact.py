"""Secret redaction: keys and bearer tokens go, the text around them stays."""

from __future__ import annotations

import pytest

from llmcompiler.models._redact import redact


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
