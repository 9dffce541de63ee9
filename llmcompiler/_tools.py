"""Tools: plain functions, explicit JSON Schemas and LangChain tools behind one ``Tool`` type.

A ``Tool`` knows its name, description and JSON Schema, validates a dict of arguments
against that schema (naming the argument at fault), and calls the underlying function.
Sync functions run in a worker thread (the executor's own pool) so nothing a tool does blocks
the event loop.
"""

from __future__ import annotations

import copy
import functools
import inspect
import re
import sys
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Unpack, overload

import docstring_parser
import jsonschema
import pydantic

from llmcompiler._errors import ArgumentError, UserError
from llmcompiler._limits import FIELDS, ToolLimits, ToolLimitsArgs
from llmcompiler._threads import Job, ThreadPool, default_pool
from llmcompiler._types import ToolSpec, deref_schema

__all__ = [
    "Tool",
    "ToolLike",
    "ToolLimits",
    "as_tool",
    "bind_arguments",
    "coerce_tools",
    "isolated",
    "normalize_schema",
    "tool",
]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
RESERVED_NAMES = frozenset({"join"})

ToolLike = Any
"""A ``Tool``, a plain function, or a LangChain tool: anything ``coerce_tools`` accepts."""


Validator = Callable[[Mapping[str, Any]], dict[str, Any]]
BatchFunction = Callable[[list[dict[str, Any]]], Any]
"""A tool's batch implementation: a list of argument sets in, a list of results (or an awaitable of one) out."""


class Tool:
    """A function the planner may call.

    Build one with ``@tool`` on a typed function, or with ``Tool.from_schema`` for a callable
    described by an explicit JSON Schema.

    Attributes:
        name: the name the plan calls it by (letters, digits, ``_`` and ``.``).
        description: what it does, shown to the model.
        parameters: its arguments as a JSON Schema object.
        limits: the tool's own timeout, concurrency, rate, retry and batching settings (every
            field: one not given has its default). A run's ``tool_limits`` override them field
            by field (see ``Limits``).
        batch: the batch implementation, or ``None``: given a list of argument dicts, it returns
            one result per dict, in order (an ``Exception`` instance in the list fails only that
            call). Calls that become ready within ``limits.batch_window`` are fused into one call of it.
        pure: the result depends only on the arguments and calling it has no side effect: a run
            calls it once per distinct arguments and reuses the result.
        compute_bound: a CPU-heavy sync function: it runs in a process pool sized to the cores
            instead of a thread, so it must be picklable (a module-level function).
        speculative: calling it with arguments nobody asked for yet is harmless (it reads, it
            changes nothing): an ``LLMCompiler`` with a ``drafter`` may start its calls from a
            draft plan before the planner writes them. A ``pure`` tool is speculative too
            (``speculation_safe``); no other tool is ever called from a draft.
        sequential: a barrier in plan order: a call of it starts after every earlier task of its
            round has finished (succeeded, failed or given up), and the tasks planned after it
            start after it has finished, whatever its outcome (only the tasks that use its
            result are given up when it fails). For a tool with side effects that must not run
            before the reads planned ahead of it, or overlap what comes after.
        returns: the JSON Schema of its result, or ``None`` when it does not say: from
            ``Tool.from_schema(returns=...)``, or from a return annotation with named fields (a
            pydantic model, a ``TypedDict``, a dataclass, or a list of one). A plan may read a
            field of the result (``$1.entityId``); the signature shows them, and the local
            model's grammar offers exactly them.
    """

    __slots__ = (
        "_fn",
        "_is_async",
        "_validate",
        "batch",
        "compute_bound",
        "description",
        "limits",
        "name",
        "param_names",
        "parameters",
        "pure",
        "returns",
        "sequential",
        "speculative",
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
        batch: BatchFunction | None = None,
        pure: bool = False,
        compute_bound: bool = False,
        sequential: bool = False,
        returns: Mapping[str, Any] | None = None,
        speculative: bool = False,
    ) -> None:
        _check_name(name)
        self.name = name
        self.description = description
        self.parameters = parameters
        self.param_names: tuple[str, ...] = tuple(parameters.get("properties", {}))
        self.limits = ToolLimits() if limits is None else limits
        self._fn = fn
        self._validate = validate
        self._is_async = _is_async_callable(fn)
        if batch is not None and not callable(batch):
            raise UserError(f"tool {name!r}: batch must be callable, got {type(batch).__name__}")
        self.batch = batch
        self.pure = bool(pure)
        self.compute_bound = bool(compute_bound)
        self.sequential = bool(sequential)
        self.speculative = bool(speculative)
        self.returns: Mapping[str, Any] | None = None if returns is None else dict(returns)
        if compute_bound:
            from llmcompiler._offload import check_offloadable

            if self._is_async:
                raise UserError(f"tool {name!r}: compute_bound tools must be plain (sync) functions, not async ones")
            check_offloadable(fn, f"tool {name!r}")
            if batch is not None:
                if _is_async_callable(batch):
                    raise UserError(f"tool {name!r}: the batch implementation of a compute_bound tool must be sync")
                check_offloadable(batch, f"tool {name!r}'s batch implementation")

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"

    @property
    def speculation_safe(self) -> bool:
        """Whether a draft plan may call it before the planner does: ``pure`` or ``speculative``."""
        return self.pure or self.speculative

    @classmethod
    def from_schema(
        cls,
        *,
        name: str,
        description: str,
        parameters: Mapping[str, Any],
        fn: Callable[..., Any],
        limits: ToolLimits | None = None,
        batch: BatchFunction | None = None,
        pure: bool = False,
        compute_bound: bool = False,
        sequential: bool = False,
        returns: Mapping[str, Any] | None = None,
        speculative: bool = False,
    ) -> Tool:
        """Wrap any callable, sync or async, described by an explicit JSON Schema.

        Args:
            name: the tool's name (letters, digits, ``_`` and ``.``).
            description: what it does, shown to the model.
            parameters: a JSON Schema of type ``object``. The looser type names of
                function-calling specs (``dict``, ``float``, ``tuple``, ``any``) are accepted.
            fn: called with the validated arguments as keyword arguments.
            limits: the tool's own limits (see ``Tool.limits``); ``None``: every default.
            batch: a batch implementation (see ``Tool.batch``).
            pure: calls with equal arguments may share one result within a run.
            compute_bound: run it in a process pool instead of a thread.
            sequential: a barrier in plan order (see ``Tool.sequential``).
            returns: the JSON Schema of the result (see ``Tool.returns``), loose type names
                accepted as in ``parameters``.
            speculative: harmless to call early, from a draft plan (see ``Tool.speculative``).

        Raises:
            UserError: a schema is not a valid JSON Schema (``parameters`` of type ``object``),
                or a ``compute_bound`` function cannot be sent to another process.
        """
        _check_name(name)
        if not isinstance(parameters, Mapping):
            raise UserError(f"tool {name!r}: parameters must be a JSON Schema (a dict), got {_short(parameters)}")
        if not callable(fn):
            raise UserError(f"tool {name!r}: fn must be callable, got {type(fn).__name__}")
        schema = normalize_schema(dict(parameters), where=f"tool {name!r}")
        if schema.get("type", "object") != "object":
            raise UserError(f"tool {name!r}: parameters must be a JSON Schema of type 'object'")
        schema.setdefault("type", "object")
        schema.setdefault("properties", {})
        try:
            _Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise UserError(f"tool {name!r}: invalid JSON Schema: {exc.message}") from None
        result = None
        if returns is not None:
            if not isinstance(returns, Mapping):
                raise UserError(f"tool {name!r}: returns must be a JSON Schema (a dict), got {_short(returns)}")
            result = normalize_schema(dict(returns), where=f"tool {name!r}")
            try:
                _Validator.check_schema(result)
            except jsonschema.SchemaError as exc:
                raise UserError(f"tool {name!r}: invalid JSON Schema for returns: {exc.message}") from None
        return cls(
            name=name,
            description=description,
            parameters=schema,
            fn=fn,
            validate=_schema_validator(schema),
            limits=limits,
            batch=batch,
            pure=pure,
            compute_bound=compute_bound,
            sequential=sequential,
            returns=result,
            speculative=speculative,
        )

    def with_limits(self, **changes: Unpack[ToolLimitsArgs]) -> Tool:
        """A copy of this tool with some of its own ``ToolLimits`` changed (``ToolLimits.replace``).

        Raises:
            UserError: a name that is not a limit, or a value out of range.
        """
        unknown = [name for name in changes if name not in FIELDS]
        if unknown:
            raise UserError(f"tool {self.name!r}: unknown limit {unknown[0]!r}")
        limits = self.limits.replace(**changes)
        clone = object.__new__(Tool)
        for slot in Tool.__slots__:
            object.__setattr__(clone, slot, getattr(self, slot))
        clone.limits = limits
        return clone

    def validate(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Check ``args`` against the schema and return the keyword arguments to call with.

        Raises:
            ArgumentError: naming the argument and the reason.
        """
        return self._validate(args)

    async def call(
        self,
        kwargs: dict[str, Any],
        *,
        threads: ThreadPool | None = None,
        jobs: list[Job] | None = None,
        isolate: bool = False,
    ) -> Any:
        """Call the function with already validated keyword arguments.

        Async functions run on the event loop; sync functions in a thread of ``threads`` (the
        executor's own pool; a shared default outside an executor), ``compute_bound`` ones in
        the process pool. Awaitables a sync function returns are awaited.

        Args:
            kwargs: the validated arguments.
            threads: the thread pool for a sync function.
            jobs: if given, the thread's ``Job`` is appended to it, so a caller that gives up
                waiting (a timeout) can still wait for the thread to end before trying again.
            isolate: give the function its own deep copy of mutable arguments (see ``isolated``);
                a sync function's copy is made in its thread, off the event loop.

        Raises:
            Whatever the function raises; a ``BaseException`` raised in a thread that must not
            travel as itself (``SystemExit``, ``StopIteration``, ...) as ``ToolBaseException``.
        """
        if self._is_async:
            return await self._fn(**(isolated(kwargs) if isolate else kwargs))
        if self.compute_bound:  # pickled: the worker gets its own copy anyway
            from llmcompiler._offload import run_in_process

            return await run_in_process(self._fn, kwargs)
        pool = threads or default_pool()
        job = await (pool.start(_call_isolated, self._fn, kwargs) if isolate else pool.start(self._fn, **kwargs))
        if jobs is not None:
            jobs.append(job)
        result = await job.result()
        if inspect.isawaitable(result):
            result = await result
        return result

    async def call_batch(
        self,
        calls: list[dict[str, Any]],
        *,
        threads: ThreadPool | None = None,
        jobs: list[Job] | None = None,
        isolate: bool = False,
    ) -> list[Any]:
        """Call the batch implementation with already validated argument dicts.

        Runs like ``call``: a sync implementation in a thread of ``threads`` (a process for
        ``compute_bound`` tools). Returns its results as a list.

        Raises:
            UserError: the tool has no batch implementation.
            TypeError: the implementation returned something that is not a list or tuple.
        """
        batch = self.batch
        if batch is None:
            raise UserError(f"tool {self.name!r} has no batch implementation")
        if _is_async_callable(batch):
            results = await batch([isolated(c) for c in calls] if isolate else calls)
        elif self.compute_bound:
            from llmcompiler._offload import run_in_process

            results = await run_in_process(batch, {}, args=(calls,))
        else:
            pool = threads or default_pool()
            job = await (pool.start(_batch_isolated, batch, calls) if isolate else pool.start(batch, calls))
            if jobs is not None:
                jobs.append(job)
            results = await job.result()
            if inspect.isawaitable(results):
                results = await results
        if not isinstance(results, (list, tuple)):
            raise TypeError(f"the batch implementation returned {type(results).__name__}, not a list")
        return list(results)

    async def ainvoke(self, args: Mapping[str, Any]) -> Any:
        """Validate ``args`` and call the tool."""
        return await self.call(self.validate(args))

    @property
    def spec(self) -> ToolSpec:
        """What a model is told about this tool: name, description and parameters."""
        return ToolSpec(name=self.name, description=self.description, parameters=self.parameters, returns=self.returns)

    def signature(self) -> str:
        """A one-line, Python-like signature for prompts: ``search(query: str, limit: int = 5)``."""
        return self.spec.signature()


# --------------------------------------------------------------------------- @tool


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    batch: BatchFunction | None = None,
    pure: bool = False,
    compute_bound: bool = False,
    sequential: bool = False,
    speculative: bool = False,
    **limits: Unpack[ToolLimitsArgs],
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    batch: BatchFunction | None = None,
    pure: bool = False,
    compute_bound: bool = False,
    sequential: bool = False,
    speculative: bool = False,
    **limits: Unpack[ToolLimitsArgs],
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Turn a plain function, sync or async, into a ``Tool``.

    The name comes from the function, the description from its docstring (Google-style
    ``Args:`` entries describe the parameters) and the JSON Schema from its type hints.

    Args:
        fn: the function, when used as ``@tool`` with no parentheses.
        name: overrides the function's name.
        description: overrides the docstring.
        batch: a batch implementation: a list of argument dicts in, a list of results out.
            Calls that become ready within ``batch_window`` seconds are fused into one call of it.
        pure: the result depends only on the arguments (no side effects): a run calls it once
            per distinct arguments and reuses the result.
        compute_bound: CPU-heavy: run it in a process pool sized to the cores, not a thread
            (it must be a module-level function).
        sequential: a barrier in plan order: it starts after every earlier task of its round
            has finished, and the tasks after it start after it (see ``Tool.sequential``).
        speculative: harmless to call early (it reads, it changes nothing): an ``LLMCompiler``
            with a ``drafter`` may start its calls from a draft plan (see ``Tool.speculative``).
        **limits: the tool's own limits, any field of ``ToolLimits``: ``timeout`` (seconds one
            call may take), ``max_concurrency``, ``exclusive`` (a group's name: calls of the
            tools sharing it never overlap), ``rate_limit`` (calls per ``period`` seconds),
            ``retries`` and ``backoff`` (seconds before the first retry, doubling after each;
            at most ``max_backoff``), ``batch_window`` (seconds a ready call waits for others
            to fuse with) and ``max_batch``. The fields not given have their defaults.

    Raises:
        UserError: the function cannot be a tool (no name, no schema for a parameter type) or
            a limit is out of range.
        TypeError: an argument that is neither a parameter above nor a ``ToolLimits`` field.

    Example:
        >>> @tool
        ... def add(a: int, b: int) -> int:
        ...     '''Add two integers.'''
        ...     return a + b
        >>> add.signature()
        'add(a: int, b: int)'
        >>> @tool(timeout=5, retries=2)
        ... def fetch(url: str) -> str:
        ...     '''Fetch a page.'''
        ...     return url
        >>> fetch.limits
        ToolLimits(timeout=5, retries=2)
    """
    own = ToolLimits(**limits)

    def build(f: Callable[..., Any]) -> Tool:
        return _from_function(
            f,
            name=name,
            description=description,
            limits=own,
            batch=batch,
            pure=pure,
            compute_bound=compute_bound,
            sequential=sequential,
            speculative=speculative,
        )

    return build(fn) if fn is not None else build


def _from_function(
    fn: Callable[..., Any],
    *,
    name: str | None,
    description: str | None,
    limits: ToolLimits,
    batch: BatchFunction | None = None,
    pure: bool = False,
    compute_bound: bool = False,
    sequential: bool = False,
    speculative: bool = False,
) -> Tool:
    if isinstance(fn, Tool):
        raise UserError(f"{fn!r} is already a Tool")
    if not callable(fn):
        raise UserError(f"@tool needs a function, got {type(fn).__name__}")
    tool_name = name or getattr(fn, "__name__", None)
    if not tool_name or tool_name == "<lambda>":
        what = "a lambda" if getattr(fn, "__name__", None) == "<lambda>" else f"{type(fn).__name__} object"
        raise UserError(f"@tool on {what} needs name=...")
    _check_name(tool_name)  # before the parameters, so a bad name is the error reported
    doc = docstring_parser.parse(inspect.getdoc(fn) or "")
    # A summary wrapped over several lines continues its first line; a blank line starts a new paragraph.
    between = "\n\n" if doc.blank_after_short_description else "\n"
    summary = between.join(p for p in (doc.short_description, doc.long_description) if p)
    param_docs = {p.arg_name: p.description or "" for p in doc.params}

    # inspect.signature (not typing.get_type_hints) also reads partials and callable objects;
    # eval_str resolves string annotations (``from __future__ import annotations``).
    try:
        sig = inspect.signature(fn, eval_str=True)
    except (NameError, SyntaxError, TypeError, ValueError) as exc:
        raise UserError(f"tool {tool_name!r}: cannot read its signature and type hints: {exc}") from None
    # Each parameter is a field with a neutral name and the parameter's name as its alias, so that
    # names pydantic treats specially (``json``, ``schema``, ``model_config``, ``_private``) work too.
    fields: dict[str, Any] = {}
    names: dict[str, str] = {}
    for i, (pname, param) in enumerate(sig.parameters.items()):
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise UserError(
                f"tool {tool_name!r}: *{pname} / **{pname} cannot be described by a schema; name every parameter"
            )
        if param.kind is param.POSITIONAL_ONLY:
            raise UserError(f"tool {tool_name!r}: parameter {pname!r} is positional-only")
        annotation = Any if param.annotation is param.empty else param.annotation
        default = ... if param.default is param.empty else param.default
        field = f"p{i}"
        names[field] = pname
        fields[field] = (annotation, pydantic.Field(default, alias=pname, description=param_docs.get(pname) or None))

    try:
        model = pydantic.create_model(
            f"{tool_name.replace('.', '_')}_args",
            __config__=pydantic.ConfigDict(extra="forbid", arbitrary_types_allowed=False),
            **fields,
        )
        schema = _strip_titles(model.model_json_schema(by_alias=True))
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError, TypeError) as exc:
        raise UserError(f"tool {tool_name!r}: a parameter type has no JSON Schema: {exc}") from None
    schema.setdefault("properties", {})

    validator = model.__pydantic_validator__

    def validate(args: Mapping[str, Any]) -> dict[str, Any]:
        if not args and not fields:
            return {}
        try:
            # The core validator directly: model_validate() adds a call layer and a copy per task.
            parsed = validator.validate_python(args if type(args) is dict else dict(args))
        except pydantic.ValidationError as exc:
            raise ArgumentError(_pydantic_message(exc)) from None
        values = parsed.__dict__
        return {pname: values[field] for field, pname in names.items()}

    return Tool(
        name=tool_name,
        description=description if description is not None else summary,
        parameters=schema,
        fn=fn,
        validate=validate,
        limits=limits,
        batch=batch,
        pure=pure,
        compute_bound=compute_bound,
        sequential=sequential,
        returns=_result_schema(sig.return_annotation),
        speculative=speculative,
    )


def _result_schema(annotation: Any) -> dict[str, Any] | None:
    """The JSON Schema of a return annotation with named fields (a pydantic model, a
    ``TypedDict``, a dataclass, or a list or optional of one); None for any other (``str``,
    ``dict[str, Any]``, none at all): only named fields give a plan something to read."""
    if annotation is inspect.Signature.empty:
        return None
    schema = _schema_of(annotation, 0)
    return schema if schema is not None and _has_fields(schema, schema, 0) else None


def _schema_of(annotation: Any, depth: int) -> dict[str, Any] | None:
    try:
        schema: dict[str, Any] = _strip_titles(pydantic.TypeAdapter(annotation).json_schema(mode="serialization"))
        return schema
    except Exception:  # a type pydantic cannot describe: the tool declares nothing
        pass
    # pydantic refuses typing.TypedDict before Python 3.12; its fields are plain type hints.
    if depth < 3 and typing.is_typeddict(annotation):
        try:
            hints = typing.get_type_hints(annotation)
        except Exception:
            return None
        return {"type": "object", "properties": {k: _schema_of(v, depth + 1) or {} for k, v in hints.items()}}
    if depth < 3 and typing.get_origin(annotation) in (list, tuple) and typing.get_args(annotation):
        item = _schema_of(typing.get_args(annotation)[0], depth + 1)
        return None if item is None else {"type": "array", "items": item}
    return None


def _has_fields(node: Any, root: Mapping[str, Any], depth: int) -> bool:
    if not isinstance(node, Mapping) or depth > 3:
        return False
    node = deref_schema(node, root)
    if isinstance(node.get("properties"), Mapping) and node["properties"]:
        return True
    members = [*node.get("anyOf", ()), *node.get("oneOf", ())]
    if node.get("type") == "array":
        members.append(node.get("items"))
    return any(_has_fields(m, root, depth + 1) for m in members)


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


_SCHEMA_MAPS = frozenset({"properties", "$defs", "definitions", "patternProperties", "dependentSchemas"})
_DATA_KEYS = frozenset({"default", "enum", "const", "examples"})


def _strip_titles(node: Any) -> Any:
    """Drop the ``title`` keywords pydantic adds, leaving property names and literal data alone."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "title":
                continue
            if key in _DATA_KEYS:
                out[key] = value
            elif key in _SCHEMA_MAPS and isinstance(value, dict):
                out[key] = {name: _strip_titles(sub) for name, sub in value.items()}
            else:
                out[key] = _strip_titles(value)
        return out
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


_SUBSCHEMAS = frozenset(
    {
        "items",
        "prefixItems",
        "additionalItems",
        "contains",
        "additionalProperties",
        "unevaluatedProperties",
        "unevaluatedItems",
        "propertyNames",
        "not",
        "anyOf",
        "oneOf",
        "allOf",
        "if",
        "then",
        "else",
    }
)


def normalize_schema(schema: Any, *, where: str) -> Any:
    """Map the loose type names of function-calling specs (``dict``, ``float``, ``tuple``, ``any``)
    to JSON Schema, recursively. Returns a new schema; the input is not changed.

    Values of the wrong shape (``"properties": [...]``) are left for the schema check to report.
    """
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
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {k: normalize_schema(v, where=where) for k, v in value.items()}
        elif key in _SUBSCHEMAS:
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
    # Names listed only in ``required`` are arguments too.
    known = [*properties, *(r for r in schema.get("required", ()) if r not in properties)]
    extra = schema.get("additionalProperties", False) is not False
    defaults = {k: v["default"] for k, v in properties.items() if isinstance(v, dict) and "default" in v}

    def validate(args: Mapping[str, Any]) -> dict[str, Any]:
        if not extra:
            unknown = [k for k in args if k not in known]
            if unknown:
                raise ArgumentError(f"unexpected argument {unknown[0]!r} (known: {', '.join(known) or 'none'})")
        errors = sorted(validator.iter_errors(dict(args)), key=lambda e: [str(p) for p in e.absolute_path])
        if errors:
            raise ArgumentError("; ".join(_jsonschema_message(e) for e in errors))
        # A fresh copy of each default per call: a tool that appends to a default list must not
        # change what the next call gets.
        kwargs = {k: copy.deepcopy(v) for k, v in defaults.items() if k not in args}
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
        description=inspect.cleandoc(spec.get("description", "") or ""),
        parameters=spec.get("parameters") or {"type": "object", "properties": {}},
        fn=invoke,
    )


# --------------------------------------------------------------------------- helpers

_SCALARS = frozenset({str, int, float, bool, type(None), bytes, complex})


def isolated(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The arguments a call gets: mutable values deep-copied, so nothing the tool does to them
    reaches a record, the memo, another consumer or a retry. A value that cannot be copied
    (a lock, a socket) is passed as it is."""
    out = kwargs
    for key, value in kwargs.items():
        if type(value) not in _SCALARS:
            if out is kwargs:
                out = dict(kwargs)
            try:
                out[key] = copy.deepcopy(value)
            except Exception:  # RecursionError included
                pass  # not copyable (or nested too deeply to copy): shared
    return out


def _call_isolated(fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    return fn(**isolated(kwargs))


def _batch_isolated(batch: Callable[[list[dict[str, Any]]], Any], calls: list[dict[str, Any]]) -> Any:
    return batch([isolated(c) for c in calls])


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


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def bind_arguments(tool: Tool, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """A plan line's arguments by parameter name: positional ones mapped in the schema's order.

    Raises:
        ArgumentError: too many positional arguments, or one given both by position and by name.
    """
    if not args:
        return kwargs
    names = tool.param_names
    if len(args) > len(names):
        raise ArgumentError(
            f"{tool.name} takes {len(names)} argument{'s' if len(names) != 1 else ''} "
            f"({', '.join(names) or 'none'}) but {len(args)} were given"
        )
    bound = dict(zip(names, args, strict=False))
    for key, value in kwargs.items():
        if key in bound:
            raise ArgumentError(f"argument {key!r} is given both by position and by name")
        bound[key] = value
    return bound
