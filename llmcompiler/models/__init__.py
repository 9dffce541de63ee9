"""Chat models: the protocol the engine talks to, and its adapters."""

from llmcompiler.models._base import ChatModel, Message, ModelEvent, ModelRequest, Purpose, ToolCall, Usage

__all__ = ["ChatModel", "Message", "ModelEvent", "ModelRequest", "Purpose", "ToolCall", "Usage"]
