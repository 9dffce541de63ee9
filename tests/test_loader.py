"""Model strings (``load_model``) and prices (``cost_usd``)."""

from __future__ import annotations

import sys
import types
from typing import Any, ClassVar

import pytest

from llmcompiler import UserError
from llmcompiler._types import ChatModel, ModelEvent, ModelRequest, Usage
from llmcompiler.models._anthropic import AnthropicChat
from llmcompiler.models._loader import load_model
from llmcompiler.models._openai import OpenAIChat
from llmcompiler.models._pricing import PRICES, cost_usd, price_of


class _StubLlamaCpp:
    """Stands in for ``LlamaCppChat`` so the loader's dispatch is tested without loading weights."""

    made: ClassVar[list[tuple[Any, ...]]] = []

    def __init__(self, model_path: str | None = None) -> None:
        self.made.append((model_path,))
        self.model_path = model_path

    @property
    def model_name(self) -> str:
        return "local"

    def stream(self, request: ModelRequest) -> Any:  # pragma: no cover - never called
        raise NotImplementedError

    async def _unused(self) -> ModelEvent:  # pragma: no cover
        return Usage()


@pytest.fixture
def stub_local(monkeypatch: pytest.MonkeyPatch) -> type[_StubLlamaCpp]:
    module = types.ModuleType("llmcompiler.models._llamacpp")
    module.LlamaCppChat = _StubLlamaCpp  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "llmcompiler.models._llamacpp", module)
    _StubLlamaCpp.made = []
    return _StubLlamaCpp


def test_the_default_is_the_local_model(stub_local: type[_StubLlamaCpp]) -> None:
    model = load_model()
    assert isinstance(model, stub_local)
    assert isinstance(model, ChatModel)
    assert load_model("local").model_name == "local"
    assert stub_local.made == [(None,), (None,)]


def test_local_is_the_llamacpp_model() -> None:
    pytest.importorskip("llama_cpp")
    from llmcompiler.models._llamacpp import LlamaCppChat

    model = load_model("local")  # loads no weights: LlamaCppChat loads on first use
    assert isinstance(model, LlamaCppChat)
    assert model.model_path is None
    assert cost_usd(model.model_name, Usage(prompt_tokens=100, completion_tokens=100)) is None


def test_local_with_a_path(stub_local: type[_StubLlamaCpp]) -> None:
    model = load_model("local:/models/x.gguf")
    assert isinstance(model, stub_local)
    assert model.model_path == "/models/x.gguf"


def test_local_without_its_packages_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llmcompiler.models._llamacpp", None)  # makes the import fail
    with pytest.raises(UserError, match=r"pip install 'llmcompiler\[local\]'"):
        load_model("local")


def test_openai_model_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-loader-0000")
    model = load_model("openai:gpt-4o-mini")
    assert isinstance(model, OpenAIChat)
    assert model.model == "gpt-4o-mini"
    assert model.model_name == "openai:gpt-4o-mini"
    assert model.base_url is None


def test_anthropic_model_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-loader-0000")
    model = load_model("anthropic:claude-sonnet-4-5")
    assert isinstance(model, AnthropicChat)
    assert model.model_name == "anthropic:claude-sonnet-4-5"


def test_openai_compatible_server_by_base_url() -> None:
    model = load_model("openai:meta-llama/Llama-3.1-8B-Instruct", base_url="http://localhost:8000/v1")
    assert isinstance(model, OpenAIChat)
    assert model.base_url == "http://localhost:8000/v1"
    assert model.model == "meta-llama/Llama-3.1-8B-Instruct"
    assert model.model_name == "openai-compatible:meta-llama/Llama-3.1-8B-Instruct"


def test_openai_compatible_server_by_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:11434/v1")
    model = load_model("openai:llama3.1")
    assert isinstance(model, OpenAIChat)
    assert model.base_url == "http://localhost:11434/v1"


def test_a_missing_key_is_one_line_naming_the_variable() -> None:
    with pytest.raises(UserError, match="set OPENAI_API_KEY or pass api_key=") as info:
        load_model("openai:gpt-4o-mini")
    assert "\n" not in str(info.value)
    with pytest.raises(UserError, match="set ANTHROPIC_API_KEY or pass api_key="):
        load_model("anthropic:claude-sonnet-4-5")


@pytest.mark.parametrize("spec", ["gpt-4o", "mistral:large", "openai", "", "  "])
def test_unknown_model_strings_list_the_forms(spec: str, stub_local: type[_StubLlamaCpp]) -> None:
    if not spec.strip():
        assert isinstance(load_model(spec), stub_local)  # blank means the default
        return
    with pytest.raises(UserError, match=r"unknown model string .*'openai:<model>'") as info:
        load_model(spec)
    assert "\n" not in str(info.value)


def test_a_model_string_without_a_model() -> None:
    with pytest.raises(UserError, match="names no model"):
        load_model("openai:")


def test_a_bare_name_with_a_base_url_suggests_the_openai_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:8000/v1")
    with pytest.raises(UserError, match="write 'openai:llama3'"):
        load_model("llama3")


def test_base_url_with_the_local_model_is_refused() -> None:
    with pytest.raises(UserError, match="openai:<model>"):
        load_model(None, base_url="http://localhost:8000/v1")


# --- prices -----------------------------------------------------------------------------


def test_cost_of_known_models() -> None:
    usage = Usage(prompt_tokens=2_000_000, completion_tokens=500_000, calls=3)
    assert cost_usd("openai:gpt-4o-mini", usage) == pytest.approx(2 * 0.15 + 0.5 * 0.60)
    assert cost_usd("gpt-4o", usage) == pytest.approx(2 * 2.50 + 0.5 * 10.00)
    assert cost_usd("anthropic:claude-sonnet-4-5", usage) == pytest.approx(2 * 3.00 + 0.5 * 15.00)


def test_dated_ids_take_their_base_price_and_longest_match_wins() -> None:
    assert price_of("openai:gpt-4o-mini-2024-07-18") == PRICES["gpt-4o-mini"]
    assert price_of("gpt-4o-2024-08-06") == PRICES["gpt-4o"]
    assert price_of("gpt-4o-2024-05-13") == (5.00, 15.00)
    assert price_of("anthropic:claude-sonnet-4-5-20250929") == PRICES["claude-sonnet-4-5"]
    assert price_of("claude-opus-4-1-20250805") == PRICES["claude-opus-4-1"]
    assert price_of("claude-3-5-haiku-latest") == PRICES["claude-3-5-haiku"]
    assert price_of("gpt-4.1-mini") == PRICES["gpt-4.1-mini"]


@pytest.mark.parametrize(
    "name",
    [
        "local",
        "local:/m.gguf",
        "openai-compatible:gpt-4o",
        "scripted",
        "openai:my-finetune",
        "claude-opus-4-9",
        "gpt-4o-audio-x",
    ],
)
def test_unknown_and_local_models_have_no_price(name: str) -> None:
    assert cost_usd(name, Usage(prompt_tokens=10, completion_tokens=10)) is None


def test_a_custom_price_table() -> None:
    assert (
        cost_usd("my-model", Usage(prompt_tokens=1_000_000, completion_tokens=1_000_000), {"my-model": (1.0, 2.0)})
        == 3.0
    )


@pytest.mark.parametrize("tokens", [10**5000, 10**400], ids=["5000 digits", "400 digits"])
def test_a_usage_report_too_large_to_price_costs_unknown_and_fails_nothing(tokens: int) -> None:
    from llmcompiler import LLMCompiler, Usage, tool
    from llmcompiler.testing import ScriptedLLM

    assert cost_usd("openai:gpt-4o", Usage(prompt_tokens=tokens)) is None

    class Boastful(ScriptedLLM):
        async def _play(self, request: Any, reply: Any) -> Any:
            async for event in super()._play(request, reply):
                yield Usage(prompt_tokens=tokens, calls=1) if isinstance(event, Usage) else event

    @tool
    def square(x: int) -> int:
        """Square a number."""
        return x * x

    llm = Boastful(["1. square(3)\n2. join()", "Action: Finish(9)"], name="openai:gpt-4o")
    result = LLMCompiler(llm=llm, tools=[square]).run("3 squared?")
    assert result.answer == "9"
    assert result.cost_usd is None
    assert result.usage.prompt_tokens == 2 * tokens
