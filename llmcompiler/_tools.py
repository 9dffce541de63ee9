"""Tools: plain functions, explicit JSON Schemas and LangChain tools behind one ``Tool`` type.

A ``Tool`` knows its name, description and JSON Schema, validates a dict of arguments
against that schema (naming the argument at fault), and calls the underlying function.
Sync functions run in a worker thread so nothing a tool does blocks the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import re
import sys
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, overload

import docstring_parser
import jsonschema
import pydantic
from pydantic.fields import FieldInfo

from llmcompiler._errors import UserError

__all__ = ["ArgumentError", "Tool", "ToolLike", "ToolLimits", "coerce_tools", "tool"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
RESERVED_NAMES = frozenset({"join"})

ToolLike = Any
"""A ``Tool``, a plain function, or a LangChain tool: anything ``coerce_tools`` accepts."""


class ArgumentError(ValueError):
    """Arguments that do not fit a tool's schema. The message names the argument."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ToolLimits:
    """How the executor may call one tool.

    Attributes:
        timeout: seconds one call may take; ``None`` for no limit.
        max_concurrency: calls of this tool running at once; ``None`` for no limit.
        rate_limit: calls started per ``period`` seconds; ``None`` for no limit.
        period: the rate limit's window in seconds.
        retries: extra attempts after a failure or timeout; a tool with ``retries > 0`` is retryable.
        backoff: seconds before the first retry; each later retry waits twice as long.
        max_backoff: the longest wait between two attempts.
    """

    timeout: float | None = None
    max_concurrency: int | None = None
    rate_limit: float | None = None
    period: float = 1.0
    retries: int = 0
    backoff: float = 0.5
    max_backoff: float = 30.0

    def __post_init__(self) -> None:
        if self.timeout is not None and self.timeout <= 0:
            raise UserError(f"timeout must be positive, got {self.timeout}")
        if self.max_concurrency is not None and self.max_concurrency < 1:
            raise UserError(f"max_concurrency must be at least 1, got {self.max_concurrency}")
        if self.rate_limit is not None and self.rate_limit <= 0:
            raise UserError(f"rate_limit must be positive, got {self.rate_limit}")
        if self.period <= 0:
            raise UserError(f"period must be positive, got {self.period}")
        if self.retries < 0:
            raise UserError(f"retries must be 0 or more, got {self.retries}")
        if self.backoff < 0 or self.max_backoff < 0:
            raise UserError("backoff and max_backoff must be 0 or more")


Validator = Callable[[Mapping[str, Any]], dict[str, Any]]


class Tool:
    """A function the planner may call.

    Build one with ``@tool`` on a typed function, or with ``Tool.from_schema`` for a callable
    described by an explicit JSON Schema.

    Attributes:
        name: the name the plan calls it by (letters, digits, ``_`` and ``.``).
        description: what it does, shown to the model.
        parameters: its arguments as a JSON Schema object.
        limits: timeout, concurrency, rate and retry settings for the executor.
    """

    __slots__ = (
        "_fn",
        "_is_async",
        "_validate",
        "description",
        "limits",
        "name",
        "param_names",
        "parameters",
    )

    def __init__(
        self,
        *,
        name: str,
        description: str,
        parameters: dict[str, Any],
        fn: Callable[..., Any],
        validate: Validator,
        limits: ToolLimits | None = None,
    ) -> None:
        _check_name(name)
        self.name = name
        self.description = description
        self.parameters = parameters
        self.param_names: tuple[str, ...] = tuple(parameters.get("properties", {}))
        self.limits = limits or ToolLimits()
        self._fn = fn
        self._validate = validate
        self._is_async = _is_async_callable(fn)

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"

    @classmethod
    def from_schema(
        cls,
        *,
        name: str,
        description: str,
        parameters: Mapping[str, Any],
        fn: Callable[..., Any],
        limits: ToolLimits | None = None,
    ) -> Tool:
        """Wrap any callable, sync or async, described by an explicit JSON Schema.

        Args:
            name: the tool's name (letters, digits, ``_`` and ``.``).
            description: what it does, shown to the model.
            parameters: a JSON Schema of type ``object``. The looser type names of
                function-calling specs (``dict``, ``float``, ``tuple``, ``any``) are accepted.
            fn: called with the validated arguments as keyword arguments.
            limits: executor settings for this tool.

        Raises:
            UserError: the schema is not a valid JSON Schema object.
        """
        schema = normalize_schema(dict(parameters), where=f"tool {name!r}")
        if schema.get("type", "object") != "object":
            raise UserError(f"tool {name!r}: parameters must be a JSON Schema of type 'object'")
        schema.setdefault("type", "object")
        schema.setdefault("properties", {})
        try:
            _Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise UserError(f"tool {name!r}: invalid JSON Schema: {exc.message}") from None
        return cls(
            name=name,
            description=description,
            parameters=schema,
            fn=fn,
            validate=_schema_validator(schema),
            limits=limits,
        )

    def with_limits(self, **changes: Any) -> Tool:
        """A copy of this tool with some of its ``ToolLimits`` changed."""
        clone = object.__new__(Tool)
        for slot in Tool.__slots__:
            object.__setattr__(clone, slot, getattr(self, slot))
        clone.limits = dataclasses.replace(self.limits, **changes)
        return clone

    def validate(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Check ``args`` against the schema and return the keyword arguments to call with.

        Raises:
            ArgumentError: naming the argument and the reason.
        """
        return self._validate(args)

    async def call(self, kwargs: dict[str, Any]) -> Any:
        """Call the function with already validated keyword arguments.

        Sync functions run in a worker thread; awaitables they return are awaited.
        """
        if self._is_async:
            return await self._fn(**kwargs)
        result = await asyncio.to_thread(self._fn, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def ainvoke(self, args: Mapping[str, Any]) -> Any:
        """Validate ``args`` and call the tool."""
        return await self.call(self.validate(args))

    def signature(self) -> str:
        """A one-line, Python-like signature for prompts: ``search(query: str, limit: int = 5)``."""
        required = set(self.parameters.get("required", ()))
        parts = []
        for pname, prop in self.parameters.get("properties", {}).items():
            text = f"{pname}: {_type_name(prop)}"
            if "default" in prop:
                text += f" = {prop['default']!r}"
            elif pname not in required:
                text += " = None"
            parts.append(text)
        return f"{self.name}({', '.join(parts)})"


# --------------------------------------------------------------------------- @tool


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    max_concurrency: int | None = None,
    rate_limit: float | None = None,
    period: float = 1.0,
    retries: int = 0,
    backoff: float = 0.5,
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    max_concurrency: int | None = None,
    rate_limit: float | None = None,
    period: float = 1.0,
    retries: int = 0,
    backoff: float = 0.5,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Turn a plain function, sync or async, into a ``Tool``.

    The name comes from the function, the description from its docstring (Google-style
    ``Args:`` entries describe the parameters) and the JSON Schema from its type hints.

    Args:
        fn: the function, when used as ``@tool`` with no parentheses.
        name: overrides the function's name.
        description: overrides the docstring.
        timeout: seconds one call may take.
        max_concurrency: calls of this tool running at once.
        rate_limit: calls started per ``period`` seconds.
        period: the rate limit's window in seconds.
        retries: extra attempts after a failure or timeout (makes the tool retryable).
        backoff: seconds before the first retry, doubling after each.

    Example:
        >>> @tool
        ... def add(a: int, b: int) -> int:
        ...     '''Add two integers.'''
        ...     return a + b
        >>> add.signature()
        'add(a: int, b: int)'
    """
    limits = ToolLimits(
        timeout=timeout,
        max_concurrency=max_concurrency,
        rate_limit=rate_limit,
        period=period,
        retries=retries,
        backoff=backoff,
    )

    def build(f: Callable[..., Any]) -> Tool:
        return _from_function(f, name=name, description=description, limits=limits)

    return build(fn) if fn is not None else build


def _from_function(fn: Callable[..., Any], *, name: str | None, description: str | None, limits: ToolLimits) -> Tool:
    if isinstance(fn, Tool):
        raise UserError(f"{fn!r} is already a Tool")
    if not callable(fn):
        raise UserError(f"@tool needs a function, got {type(fn).__name__}")
    tool_name = name or getattr(fn, "__name__", None)
    if not tool_name or tool_name == "<lambda>":
        raise UserError("@tool on a lambda needs name=...")
    doc = docstring_parser.parse(inspect.getdoc(fn) or "")
    summary = "\n\n".join(p for p in (doc.short_description, doc.long_description) if p)
    param_docs = {p.arg_name: p.description or "" for p in doc.params}

    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:  # unresolved forward references and the like
        raise UserError(f"tool {tool_name!r}: cannot read its type hints: {exc}") from None
    fields: dict[str, Any] = {}
    for pname, param in inspect.signature(fn).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise UserError(
                f"tool {tool_name!r}: *{pname} / **{pname} cannot be described by a schema; name every parameter"
            )
        if param.kind is param.POSITIONAL_ONLY:
            raise UserError(f"tool {tool_name!r}: parameter {pname!r} is positional-only")
        annotation = hints.get(pname, Any)
        default = ... if param.default is param.empty else param.default
        fields[pname] = (annotation, FieldInfo(default=default, description=param_docs.get(pname) or None))

    try:
        model = pydantic.create_model(
            f"{tool_name.replace('.', '_')}_args",
            __config__=pydantic.ConfigDict(extra="forbid", arbitrary_types_allowed=False),
            **fields,
        )
        schema = _strip_titles(model.model_json_schema())
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError, TypeError) as exc:
        raise UserError(f"tool {tool_name!r}: a parameter type has no JSON Schema: {exc}") from None
    schema.setdefault("properties", {})
    names = tuple(fields)

    def validate(args: Mapping[str, Any]) -> dict[str, Any]:
        if not args and not model.model_fields:
            return {}
        try:
            parsed = model.model_validate(dict(args))
        except pydantic.ValidationError as exc:
            raise ArgumentError(_pydantic_message(exc)) from None
        return {n: getattr(parsed, n) for n in names}

    return Tool(
        name=tool_name,
        description=description if description is not None else summary,
        parameters=schema,
        fn=fn,
        validate=validate,
        limits=limits,
    )


def _pydantic_message(exc: pydantic.ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "missing":
            parts.append(f"missing required argument {loc!r}")
        elif err["type"] == "extra_forbidden":
            parts.append(f"unexpected argument {loc!r}")
        else:
            parts.append(f"argument {loc!r}: {err['msg']} (got {_short(err.get('input'))})")
    return "; ".join(parts)


def _strip_titles(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: _strip_titles(v) if k != "properties" else {pk: _strip_titles(pv) for pk, pv in v.items()}
            for k, v in node.items()
            if k != "title"
        }
    if isinstance(node, list):
        return [_strip_titles(v) for v in node]
    return node


# --------------------------------------------------------------------------- explicit JSON Schemas

_LOOSE_TYPES = {
    "dict": "object",
    "float": "number",
    "tuple": "array",
    "list": "array",
    "int": "integer",
    "str": "string",
    "bool": "boolean",
    "String": "string",
    "Integer": "integer",
}


def normalize_schema(schema: Any, *, where: str) -> Any:
    """Map the loose type names of function-calling specs (``dict``, ``float``, ``tuple``, ``any``)
    to JSON Schema, recursively. Returns a new schema; the input is not changed."""
    if isinstance(schema, list):
        return [normalize_schema(s, where=where) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type":
            if value == "any":
                continue
            if isinstance(value, list):
                out[key] = [_LOOSE_TYPES.get(v, v) for v in value if v != "any"] or None
                if out[key] is None:
                    del out[key]
                continue
            out[key] = _LOOSE_TYPES.get(value, value)
        elif key in ("properties", "$defs", "definitions", "patternProperties"):
            out[key] = {k: normalize_schema(v, where=where) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not", "anyOf", "oneOf", "allOf", "prefixItems"):
            out[key] = normalize_schema(value, where=where)
        else:
            out[key] = value
    return out


def _is_array(_checker: Any, instance: Any) -> bool:
    return isinstance(instance, (list, tuple))


# Tuples are arrays too: plan literals may write them.
_Validator: Any = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("array", _is_array),
)


def _schema_validator(schema: dict[str, Any]) -> Validator:
    validator = _Validator(schema)
    properties: dict[str, Any] = schema.get("properties", {})
    extra = schema.get("additionalProperties", False) is not False
    defaults = {k: v["default"] for k, v in properties.items() if isinstance(v, dict) and "default" in v}

    def validate(args: Mapping[str, Any]) -> dict[str, Any]:
        if not extra:
            unknown = [k for k in args if k not in properties]
            if unknown:
                known = ", ".join(properties) or "none"
                raise ArgumentError(f"unexpected argument {unknown[0]!r} (known: {known})")
        errors = sorted(validator.iter_errors(dict(args)), key=lambda e: list(e.absolute_path))
        if errors:
            raise ArgumentError("; ".join(_jsonschema_message(e) for e in errors))
        kwargs = dict(defaults)
        kwargs.update(args)
        return kwargs

    return validate


def _jsonschema_message(err: jsonschema.ValidationError) -> str:
    path = ".".join(str(p) for p in err.absolute_path)
    if err.validator == "required" and not path:
        missing = re.match(r"'([^']*)' is a required property", err.message)
        return f"missing required argument {missing.group(1)!r}" if missing else err.message
    if not path:
        return err.message
    return f"argument {path!r}: {err.message}"


# --------------------------------------------------------------------------- coercion


def coerce_tools(tools: Iterable[ToolLike]) -> dict[str, Tool]:
    """Turn ``Tool``s, plain functions and LangChain tools into a name → ``Tool`` mapping.

    Raises:
        UserError: an object that is none of these, or two tools with one name.
    """
    out: dict[str, Tool] = {}
    for obj in tools:
        converted = as_tool(obj)
        if converted.name in out:
            raise UserError(f"two tools are named {converted.name!r}; tool names must be unique")
        out[converted.name] = converted
    return out


def as_tool(obj: ToolLike) -> Tool:
    """Turn one ``Tool``, plain function or LangChain tool into a ``Tool``."""
    if isinstance(obj, Tool):
        return obj
    lc_tools = sys.modules.get("langchain_core.tools")
    if lc_tools is not None and isinstance(obj, lc_tools.BaseTool):
        return _from_langchain(obj)
    if callable(obj):
        return _from_function(obj, name=None, description=None, limits=ToolLimits())
    raise UserError(f"{obj!r} is not a tool: pass a Tool, a function or a LangChain tool")


def _from_langchain(lc_tool: Any) -> Tool:
    from langchain_core.utils.function_calling import convert_to_openai_tool

    spec = convert_to_openai_tool(lc_tool)["function"]
    name = spec["name"]

    async def invoke(**kwargs: Any) -> Any:
        return await lc_tool.ainvoke(kwargs)

    return Tool.from_schema(
        name=name,
        description=spec.get("description", "") or "",
        parameters=spec.get("parameters") or {"type": "object", "properties": {}},
        fn=invoke,
    )


# --------------------------------------------------------------------------- helpers


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UserError(
            f"tool name {name!r} is not allowed: use letters, digits, '_' and '.' (starting with a letter or '_')"
        )
    if name in RESERVED_NAMES:
        raise UserError(f"tool name {name!r} is reserved by the plan language")


def _is_async_callable(fn: Callable[..., Any]) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)


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


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
