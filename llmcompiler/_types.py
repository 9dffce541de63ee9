"""Plain types: the model protocol every adapter implements and the values that cross it.

A leaf module: it imports nothing of this package, so every layer above (records, errors,
the model adapters, the engine, the agent, the views) may use it without a cycle.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "ChatModel",
    "Message",
    "ModelEvent",
    "ModelRequest",
    "Observation",
    "Purpose",
    "ToolCall",
    "ToolSpec",
    "Truncated",
    "Usage",
    "deref_schema",
]

Purpose = str
"""Why a model is called: ``"plan"``, ``"join"``, or a baseline's own word (``"react"``, ...)."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ToolSpec:
    """What a model is told about a tool: its name, what it does, its parameters and, when
    declared, the shape of its result.

    ``Tool.spec`` makes one; model adapters see tools only as ``ToolSpec``s (for native tool
    calling, prompts and grammars), never the callable behind them.

    Attributes:
        name: the name a plan or a native call uses.
        description: what the tool does.
        parameters: its arguments as a JSON Schema object (``properties``, ``required``, ...).
        returns: its result as a JSON Schema, or ``None`` when the tool does not say. A plan
            may read a field of the result (``$1.entityId``); the signature shows the fields,
            and the local model's grammar offers exactly them after ``$N``.

    Example:
        >>> ToolSpec(name="search", parameters={"properties": {"query": {"type": "string"}},
        ...     "required": ["query"]}).signature()
        'search(query: str)'
        >>> ToolSpec(name="airport", parameters={"properties": {"q": {"type": "string"}}},
        ...     returns={"type": "object", "properties": {"entityId": {"type": "string"}}}).signature()
        'airport(q: str = None) -> {entityId: str}'
    """

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    returns: Mapping[str, Any] | None = None

    def __hash__(self) -> int:
        # By content, like equality: adapters cache what they build from a request's tools.
        return hash(
            (
                self.name,
                self.description,
                json.dumps(self.parameters, sort_keys=True, default=repr),
                None if self.returns is None else json.dumps(self.returns, sort_keys=True, default=repr),
            )
        )

    def signature(self) -> str:
        """A one-line, Python-like signature for prompts: ``search(query: str, limit: int = 5)``,
        then ``-> shape`` when the result's shape is declared: ``-> {entityId: str, skyId: str}``,
        ``-> list[{id: int, name: str}]``."""
        required = set(self.parameters.get("required", ()))
        parts = []
        for pname, prop in self.parameters.get("properties", {}).items():
            text = f"{pname}: {_type_name(prop)}"
            if "default" in prop:
                text += f" = {prop['default']!r}"
            elif pname not in required:
                text += " = None"
            parts.append(text)
        text = f"{self.name}({', '.join(parts)})"
        if isinstance(self.returns, Mapping):
            text += f" -> {_shape(self.returns, self.returns, 0)}"
        return text


_SHAPE_DEPTH = 4  # levels of nesting a signature spells out
_SHAPE_FIELDS = 24  # fields of one object a signature lists


def _shape(schema: Any, root: Mapping[str, Any], depth: int) -> str:
    """A result schema as a signature shows it: objects as ``{field: type, ...}`` (nested ones
    too, up to a depth), arrays as ``list[...]``, ``$ref``s into the schema's ``$defs`` followed."""
    if not isinstance(schema, Mapping):
        return "any"
    schema = deref_schema(schema, root)
    if depth > _SHAPE_DEPTH:  # every step in counts, so a schema that refers to itself ends
        return "..."
    for key in ("anyOf", "oneOf"):
        members = schema.get(key)
        if isinstance(members, list) and members:
            return " | ".join(_shape(m, root, depth + 1) for m in members)
    props = schema.get("properties")
    if isinstance(props, Mapping) and props:
        fields = [
            f"{k if str(k).isidentifier() else json.dumps(k)}: {_shape(v, root, depth + 1)}"
            for k, v in list(props.items())[:_SHAPE_FIELDS]
        ]
        if len(props) > _SHAPE_FIELDS:
            fields.append("...")
        return "{" + ", ".join(fields) + "}"
    if schema.get("type") == "array" and isinstance(schema.get("items"), Mapping):
        return f"list[{_shape(schema['items'], root, depth + 1)}]"
    return _type_name(schema)


def deref_schema(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    """``schema`` itself, or what its local ``$ref`` (``#/$defs/Name``, as pydantic writes
    nested models) names in ``root``; ``schema`` when the reference leads nowhere."""
    for _ in range(8):  # a chain of references, never a loop
        ref = schema.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return schema
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, Mapping) else None
        if not isinstance(target, Mapping):
            return schema
        schema = target
    return schema


def _type_name(prop: Mapping[str, Any]) -> str:
    if "enum" in prop:
        return " | ".join(repr(v) for v in prop["enum"])
    if "anyOf" in prop:
        return " | ".join(_type_name(p) for p in prop["anyOf"])
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[-1]
    kind = prop.get("type")
    if kind == "array":
        items = prop.get("items")
        return f"list[{_type_name(items)}]" if isinstance(items, dict) and items else "list"
    names = {
        "string": "str",
        "integer": "int",
        "number": "float",
        "boolean": "bool",
        "object": "dict",
        "null": "None",
    }
    if isinstance(kind, list):
        return " | ".join(names.get(str(k), str(k)) for k in kind)
    return names.get(kind, "any") if isinstance(kind, str) else "any"


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ToolCall:
    """A native tool call: a tool's name and its arguments.

    Args:
        name: the tool's name.
        args: the arguments as a JSON object.
        id: the provider's call id, when it gives one.
        error: why the call could not be read (e.g. its arguments were not valid JSON); such a
            call is answered with this error and never run. ``None`` for a readable call.
    """

    name: str
    args: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    id: str | None = None
    error: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Message:
    """One chat message.

    Attributes:
        role: who speaks.
        content: the text.
        tool_calls: the native tool calls of an assistant turn.
        tool_call_id: for ``role="tool"``, the call this message answers.
        is_error: for ``role="tool"``, whether the content is an error.
    """

    role: Literal["system", "user", "assistant", "tool"]
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    is_error: bool = False


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Usage:
    """Tokens a model call, or a whole run, used.

    Attributes:
        prompt_tokens: every prompt token, cached or not.
        completion_tokens: tokens the model wrote.
        calls: model calls.
        cached_tokens: prompt tokens read from the provider's prompt cache (OpenAI's
            ``prompt_tokens_details.cached_tokens``, Anthropic's ``cache_read_input_tokens``);
            included in ``prompt_tokens``, and charged at the cheaper cached rate.
        cache_write_tokens: prompt tokens written to the prompt cache (Anthropic's
            ``cache_creation_input_tokens``); included in ``prompt_tokens``, and charged at the
            cache-write rate.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            calls=self.calls + other.calls,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
        )


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Observation:
    """A finished task as a prompt shows it, for adapters that build their own prompt or grammar.

    The local model uses these to ground its decoding: a plan may write the numbers they hold,
    and an extractive joiner assembles its answer from their ``text`` verbatim.

    Attributes:
        idx: the task's number.
        tool: the tool's name.
        label: a short name for the call, the tool and its main argument (``weather(Tokyo)``).
        text: the result as the model reads it (``observation``: safe text, secrets scrubbed),
            or the error message of a failed task.
        ok: whether the task succeeded.
        deps: the tasks whose results it used.
    """

    idx: int
    tool: str
    label: str
    text: str
    ok: bool
    deps: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ModelRequest:
    """Everything a model call needs.

    Attributes:
        messages: the chat so far.
        purpose: why the model is called (``"plan"``, ``"join"``, ...). Adapters may use it,
            e.g. the local model picks its decoding grammar by purpose.
        stop: stop sequences; the reply ends before the first one.
        tools: the tools the plan may call (for grammars and native tool calling).
        native_tools: offer ``tools`` through the provider's native tool calling.
        first_task: the number a plan's first task must carry: 1, or where a replan continues
            the numbering. The local model's plan grammar numbers from it.
        may_replan: whether a join call may ask for a new plan; ``False`` on the last round,
            where the joiner must answer. The local model's join grammar offers ``Replan`` only
            when it is true.
        question: the user's question as asked, when the call serves one (plan and join calls).
        observations: the tasks finished so far (a join call's results; a replan's earlier
            rounds), in task order. Hosted models read them in ``messages``; the local model
            also grounds its grammars on them.
        response_schema: when set, the reply must be text that is one JSON value valid against
            this JSON Schema object (structured extraction asks for
            ``{"items": [<schema>, ...]}``). Adapters constrain the reply where the provider
            can (OpenAI ``response_format`` ``json_schema``, an Anthropic forced tool whose
            input is streamed back as text, the local model a grammar); the caller parses and
            validates the text either way. ``None``: free text.
        response_name: a name for ``response_schema`` (the schema's name, ``"Person"``), for
            providers that want one; ``None`` when there is no schema.
    """

    messages: tuple[Message, ...]
    purpose: Purpose
    stop: tuple[str, ...] = ()
    tools: tuple[ToolSpec, ...] = ()
    native_tools: bool = False
    first_task: int = 1
    may_replan: bool = True
    question: str | None = None
    observations: tuple[Observation, ...] = ()
    response_schema: Mapping[str, Any] | None = None
    response_name: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Truncated:
    """The reply was cut short by a token limit: what came before it is all the model wrote.

    An adapter yields it as the last event of a stream whose provider reported a cut
    (OpenAI ``finish_reason="length"``, Anthropic ``stop_reason="max_tokens"``, the local
    model's token budget, a LangChain chunk that says so). The LLMCompiler agent runs a cut
    plan's complete tasks and tells the joiner the rest was never written; a cut joiner reply,
    ReAct step or native tool-calling turn is a ``ModelError``.

    Attributes:
        reason: the provider's word for it (``"length"``, ``"max_tokens"``, ...).

    Example:
        >>> Truncated("length")
        Truncated(reason='length')
    """

    reason: str


ModelEvent = str | ToolCall | Usage | Truncated
"""What a model stream yields: text chunks, native tool calls, one or more usage reports and,
last, ``Truncated`` when the reply was cut short by a token limit."""


@runtime_checkable
class ChatModel(Protocol):
    """A chat model that streams.

    ``stream`` yields text chunks as they arrive, native ``ToolCall``s when the request asks
    for them, and ``Usage`` reports (summed by the caller). A stream that ends without the
    provider's end marker must raise ``ModelError``, never end quietly; a reply the provider
    cut at its token limit ends with a ``Truncated`` event. Whatever else ``stream`` raises
    reaches the caller of a run as a ``ModelError`` (with the original as ``__cause__``).
    """

    @property
    def model_name(self) -> str:
        """A name for traces and price tables, e.g. ``"openai:gpt-4o-mini"``."""
        ...

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Stream the reply to ``request``."""
        ...
