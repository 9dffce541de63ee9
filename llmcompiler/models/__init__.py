"""Chat models: the protocol the engine talks to, and its adapters.

The adapters load their SDKs on first use (``import llmcompiler`` stays fast):
``OpenAIChat`` (OpenAI and any OpenAI-compatible server), ``AnthropicChat``,
``LangChainChat`` (any LangChain chat model), ``LlamaCppChat`` (the local default), and
``load_model("openai:gpt-4o-mini" | "anthropic:..." | "local")``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from llmcompiler._types import (
    ChatModel,
    Message,
    ModelEvent,
    ModelRequest,
    Observation,
    Purpose,
    ToolCall,
    ToolSpec,
    Truncated,
    Usage,
)

if TYPE_CHECKING:
    from llmcompiler.models._anthropic import AnthropicChat
    from llmcompiler.models._langchain import LangChainChat
    from llmcompiler.models._llamacpp import LlamaCppChat
    from llmcompiler.models._loader import load_model
    from llmcompiler.models._openai import OpenAIChat
    from llmcompiler.models._pricing import CACHE_PRICES, PRICES, PRICES_AS_OF, cache_price_of, cost_usd, price_of

__all__ = [
    "CACHE_PRICES",
    "PRICES",
    "PRICES_AS_OF",
    "AnthropicChat",
    "ChatModel",
    "LangChainChat",
    "LlamaCppChat",
    "Message",
    "ModelEvent",
    "ModelRequest",
    "Observation",
    "OpenAIChat",
    "Purpose",
    "ToolCall",
    "ToolSpec",
    "Truncated",
    "Usage",
    "cache_price_of",
    "cost_usd",
    "load_model",
    "price_of",
]

_LAZY = {
    "AnthropicChat": "_anthropic",
    "LangChainChat": "_langchain",
    "LlamaCppChat": "_llamacpp",
    "OpenAIChat": "_openai",
    "load_model": "_loader",
    "CACHE_PRICES": "_pricing",
    "PRICES": "_pricing",
    "PRICES_AS_OF": "_pricing",
    "cache_price_of": "_pricing",
    "cost_usd": "_pricing",
    "price_of": "_pricing",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'llmcompiler.models' has no attribute {name!r}")
    return getattr(importlib.import_module(f"llmcompiler.models.{module}"), name)
