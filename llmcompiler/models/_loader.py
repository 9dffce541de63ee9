"""Model strings: ``"local"``, ``"openai:gpt-4o-mini"``, ``"anthropic:claude-haiku-4-5"``."""

from __future__ import annotations

import importlib
import os

from llmcompiler._errors import UserError
from llmcompiler._types import ChatModel

__all__ = ["DEFAULT_MODEL", "load_model"]

DEFAULT_MODEL = "local"

_FORMS = (
    "'local' (the bundled local model), 'local:<path to a .gguf file>', 'openai:<model>' "
    "(OpenAI, or any OpenAI-compatible server with base_url= or OPENAI_BASE_URL), 'anthropic:<model>'"
)


def load_model(spec: str | None = None, *, base_url: str | None = None) -> ChatModel:
    """The chat model a model string names.

    Args:
        spec: ``"local"`` (default, also for a blank string), ``"local:<path.gguf>"``, ``"openai:<model>"`` or
            ``"anthropic:<model>"``. ``"openai:<model>"`` goes to an OpenAI-compatible server
            (vLLM, NVIDIA NIM, Ollama, llama.cpp's server) when ``base_url`` or ``OPENAI_BASE_URL``
            is set.
        base_url: the server for ``openai:`` or ``anthropic:`` models.

    Raises:
        UserError: an unknown model string, a missing API key, a missing model name, or the
            local model's packages are not installed.

    Example:
        >>> load_model("openai:llama3.1", base_url="http://localhost:11434/v1").model_name
        'openai-compatible:llama3.1'
    """
    text = (spec or "").strip() or DEFAULT_MODEL
    provider, sep, model = text.partition(":")
    provider = provider.lower()
    model = model.strip()
    if provider == "local":
        if base_url is not None:
            raise UserError(
                f"base_url={base_url!r} needs an 'openai:<model>' model string naming the model the server runs"
            )
        return _local(model or None)
    if provider in ("openai", "anthropic") and sep and not model:
        raise UserError(f"model string {text!r} names no model: write '{provider}:<model>'")
    if provider == "openai" and sep:
        from llmcompiler.models._openai import OpenAIChat

        return OpenAIChat(model, base_url=base_url)
    if provider == "anthropic" and sep:
        from llmcompiler.models._anthropic import AnthropicChat

        return AnthropicChat(model, base_url=base_url)
    hint = ""
    if not sep and (base_url or os.environ.get("OPENAI_BASE_URL")):
        hint = f" (for a model on an OpenAI-compatible server write 'openai:{text}')"
    raise UserError(f"unknown model string {text!r}: use {_FORMS}{hint}")


def _local(model_path: str | None) -> ChatModel:
    try:
        module = importlib.import_module("llmcompiler.models._llamacpp")
    except ImportError as exc:
        raise UserError(
            f"the local model needs the 'local' extra ({exc.name or exc}): pip install 'llmcompiler[local]'"
        ) from None
    model: ChatModel = module.LlamaCppChat(model_path)
    return model
