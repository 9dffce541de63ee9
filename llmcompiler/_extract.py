"""Structured extraction: pydantic schemas over one text, the calls run as tasks, the items merged into one result.

``Extractor`` (and ``extract`` / ``extract_sync`` for one text) splits the text into chunks
(``_chunks``), asks the model for each schema's items in each chunk, validates them, and
merges them into an ``ExtractionResult``. The model calls are tasks of the engine's
``Executor`` (one tool, ``extract``, called with ``schema`` and ``chunk``; ``extract_native``
with ``chunk`` for the native strategy), so ``max_concurrency``, the timeout, retries and the
rate limit hold for them as for tools, each call leaves a ``TaskRecord``, and listeners get
the usual ``TaskStarted`` / ``TaskFinished`` events.

Strategies:

- ``"parallel"``: every (schema, chunk) call at once. Each request asks for one JSON object
  ``{"items": [...]}`` of its schema (``ModelRequest.response_schema``; adapters constrain the
  reply where the provider can), and the reply's text is parsed as JSON: a reply wrapped in a
  Markdown fence or with text around the object is read too.
- ``"sequential"``: the same calls one after another: the baseline.
- ``"native"``: one request per chunk offering one tool per schema (native tool calling);
  each tool call is one item.

Failures stay where they happen: a call that fails (the model raised, timed out, or cut its
reply at the token limit) fails only its (schema, chunk), and a reply that is no JSON, or an
item that is not valid, only itself; each becomes an ``ExtractionError`` and everything else
is kept. Model text quoted in errors is scrubbed of secrets.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, Literal, TypedDict, Unpack, get_args

import pydantic

from llmcompiler._chunks import TextChunk, TokenCounter, split_text
from llmcompiler._errors import UserError
from llmcompiler._events import EventHandler
from llmcompiler._limits import Limits, ToolLimits
from llmcompiler._records import TaskRecord
from llmcompiler._redact import scrub
from llmcompiler._templates import render
from llmcompiler._text import describe, one_line
from llmcompiler._tools import Tool
from llmcompiler._types import ChatModel, Message, ModelRequest, ToolCall, ToolSpec, Usage
from llmcompiler.strategy import Run, run_sync

__all__ = [
    "DEFAULT_CHUNK_TOKENS",
    "DEFAULT_OVERLAP_TOKENS",
    "ExtractOptions",
    "ExtractionError",
    "ExtractionResult",
    "ExtractionTimings",
    "Extractor",
    "KeyFunction",
    "Provenance",
    "StrategyName",
    "extract",
    "extract_sync",
]

StrategyName = Literal["parallel", "sequential", "native"]
"""How the model is asked: see the module docstring."""

KeyFunction = Callable[[Any], Hashable]
"""Given a validated item, the key two duplicates share."""

DEFAULT_CHUNK_TOKENS = 1500
"""A chunk's token budget by default: the text the model reads in one call."""
DEFAULT_OVERLAP_TOKENS = 100
"""Tokens of whole sentences a chunk repeats from the one before, by default."""

MAX_RAW_CHARS = 4000
"""Model text an ``ExtractionError`` keeps (scrubbed), cut in the middle beyond this."""

_EXTRACT = "extract"
_NATIVE = "extract_native"


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Provenance:
    """Where an extracted item came from.

    Attributes:
        chunk: the index of the chunk whose call gave it (``ExtractionResult.chunks``); for an
            item found in several chunks, the one kept (the first in the text).
        start: the offset in the whole text where the item's first string field was found in
            that chunk (``None`` when it was not found there: the model reworded it).
        end: the offset just past it; ``None`` when not found.
    """

    chunk: int
    start: int | None = None
    end: int | None = None


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ExtractionError:
    """What one call, reply or item of an extraction could not give: a record in
    ``ExtractionResult.errors``, not an exception (nothing raises it).

    Attributes:
        schema: the schema's name (``"Person"``); for a native tool call naming no schema, the
            name it used.
        chunk: the index of the chunk the call read.
        reason: what went wrong (the call failed, the reply was no JSON, an item was invalid).
        raw: the model's text at fault (the reply, or the one item as JSON), scrubbed of
            secrets and cut to ``MAX_RAW_CHARS``; ``None`` when the call gave no text (it failed).
    """

    schema: str
    chunk: int
    reason: str
    raw: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ExtractionTimings:
    """When an extraction ran, and its model calls as tasks.

    Attributes:
        start: when it began (the event loop's clock, ``time.monotonic()`` on standard loops).
        end: when its result was ready.
        calls: the model calls' ``TaskRecord``s in task order (tool ``extract``, args
            ``{"schema": ..., "chunk": ...}``; ``extract_native`` with ``{"chunk": ...}``):
            start, end, attempts, error.
    """

    start: float
    end: float
    calls: list[TaskRecord]

    @property
    def total_s(self) -> float:
        """Seconds from start to end."""
        return self.end - self.start


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ExtractionResult:
    """What an extraction found, merged (see ``Extractor`` for the rules), and what failed.

    Attributes:
        items: the validated items by schema name (the class name), in the schemas' order, each
            list ordered by position in the text; every schema has a list, maybe empty.
        provenance: for each schema, one ``Provenance`` per item, parallel to ``items``.
        merged: the items as one pydantic model: a ``list[Schema]`` field per schema, named
            in snake_case (``Person`` → ``person``, ``HTTPServer`` → ``http_server``).
        errors: every call, reply and item that failed, in call order.
        usage: the tokens of every model call, retries included.
        cost_usd: their cost at list price; ``None`` when the model's price is unknown.
        timings: when it ran, and the calls' task records.
        strategy: the strategy used.
        chunks: the chunks the text was split into, with their spans.
    """

    items: dict[str, list[pydantic.BaseModel]]
    provenance: dict[str, list[Provenance]]
    merged: pydantic.BaseModel
    errors: list[ExtractionError]
    usage: Usage
    cost_usd: float | None
    timings: ExtractionTimings
    strategy: StrategyName
    chunks: list[TextChunk]

    @property
    def ok(self) -> bool:
        """Whether nothing failed."""
        return not self.errors


class ExtractOptions(TypedDict, total=False):
    """The keyword options of ``extract`` and ``extract_sync`` (see ``Extractor``)."""

    chunk_tokens: int
    overlap_tokens: int
    count_tokens: TokenCounter | None
    key: Mapping[type[pydantic.BaseModel] | str, KeyFunction] | None
    max_concurrency: int | None
    timeout: float | None
    retries: int
    backoff: float
    rate_limit: float | None
    period: float
    on_event: EventHandler | None


@dataclasses.dataclass(frozen=True, slots=True)
class _Schema:
    model: type[pydantic.BaseModel]
    name: str
    field: str  # in the merged model
    description: str
    item_schema: dict[str, Any]
    response_schema: dict[str, Any]
    system: str  # the extract_system prompt, rendered once


@dataclasses.dataclass(slots=True)
class _Found:
    item: pydantic.BaseModel
    chunk: int
    arrival: int
    start: int | None = None
    end: int | None = None


class Extractor:
    """Extracts items of pydantic schemas from texts: reusable, one ``arun`` per text.

    Merging (every strategy):

    1. Each item is validated on its own (``Schema.model_validate``): an invalid one goes to
       ``errors`` (schema, chunk, reason, raw item) and the valid ones of the same reply stay.
    2. Duplicates within a schema are removed by a normalised key: by default every field, with
       strings case-folded and white space squeezed (``"Ada  LOVELACE"`` = ``"ada lovelace"``);
       ``key=`` maps a schema (the class or its name) to a function giving an item's key instead.
       Of the duplicates, the first in the order below is kept, with its provenance.
    3. Order: by schema, as given; within a schema by position in the text: the first
       occurrence of the item's first string field value in its chunk (case-insensitive, any
       white space between words), mapped to whole-text offsets; items not found there come
       after, in arrival order (chunk order, then the order of the reply).
    4. No last-write-wins: items whose keys differ are all kept, even when they conflict
       (``Person(name="Ada", role="poet")`` and ``Person(name="Ada", role="engineer")``).
    5. Each item keeps its provenance: its chunk, and the offsets where it was found.

    An item in the overlap of two chunks is found by both calls at the same offsets: it is
    kept once, from the first chunk.

    Args:
        schemas: the pydantic model classes to extract, at least one; their class names must
            differ (items are keyed by them) and so must their snake_case names (``merged``'s
            fields). A class's docstring tells the model what it is.
        llm: the model.
        strategy: ``"parallel"`` (default), ``"sequential"`` or ``"native"`` (see the module docstring).
        chunk_tokens: a chunk's token budget (the text of one call, prompt not included).
        overlap_tokens: tokens of whole sentences a chunk repeats from the one before.
        count_tokens: counts a text's tokens for chunking; by default one token per four
            characters (``_chunks.estimate_tokens``). Pass the model's tokenizer for exact budgets.
        key: per-schema key functions (see rule 2), by class or class name.
        max_concurrency: model calls running at once; ``None`` for no limit.
        timeout: seconds one model call may take; ``None`` for no limit.
        retries: extra attempts of a call that failed or timed out (``0``).
        backoff: seconds before the first retry, doubling after (``0.5``).
        rate_limit: model calls started per ``period`` seconds; ``None`` for no limit.
        period: the rate limit's window in seconds (``1.0``).
        on_event: called with each ``RunEvent`` (the calls' ``TaskStarted`` and ``TaskFinished``).

    Attributes:
        schemas: the schema classes, in order.
        llm: the model.
        strategy: the strategy.
        merged_model: the pydantic model of ``ExtractionResult.merged``, made once.

    Raises:
        UserError: no schema, a schema that is no pydantic model class or has no JSON Schema,
            two schemas with one name or one snake_case name, an unknown strategy, a ``key``
            for no schema, or a bad limit or chunk size.

    Example:
        >>> from pydantic import BaseModel
        >>> from llmcompiler.testing import ScriptedLLM
        >>> class City(BaseModel):
        ...     '''A city.'''
        ...     name: str
        >>> llm = ScriptedLLM(['{"items": [{"name": "Oslo"}, {"name": "oslo"}, {"name": "Bergen"}]}'])
        >>> result = Extractor([City], llm=llm).run("Bergen is west of Oslo.")
        >>> [c.name for c in result.items["City"]], result.provenance["City"][0]
        (['Bergen', 'Oslo'], Provenance(chunk=0, start=0, end=6))
        >>> result.merged
        Extraction(city=[City(name='Bergen'), City(name='Oslo')])
    """

    def __init__(
        self,
        schemas: Iterable[type[pydantic.BaseModel]],
        *,
        llm: ChatModel,
        strategy: StrategyName = "parallel",
        chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
        overlap_tokens: int = DEFAULT_OVERLAP_TOKENS,
        count_tokens: TokenCounter | None = None,
        key: Mapping[type[pydantic.BaseModel] | str, KeyFunction] | None = None,
        max_concurrency: int | None = None,
        timeout: float | None = None,
        retries: int = 0,
        backoff: float = 0.5,
        rate_limit: float | None = None,
        period: float = 1.0,
        on_event: EventHandler | None = None,
    ) -> None:
        if isinstance(schemas, type | str | bytes):
            raise UserError("schemas must be a list of pydantic model classes, e.g. [Person, Location]")
        self._schemas = [_schema(model) for model in schemas]
        if not self._schemas:
            raise UserError("extraction needs at least one schema")
        _check_unique([s.name for s in self._schemas], "class name")
        _check_unique([s.field for s in self._schemas], "snake_case name (the merged model's field)")
        self.schemas: tuple[type[pydantic.BaseModel], ...] = tuple(s.model for s in self._schemas)
        if strategy not in get_args(StrategyName):
            raise UserError(f"strategy must be one of {', '.join(get_args(StrategyName))}, got {strategy!r}")
        self.strategy: StrategyName = strategy
        self.llm = llm
        split_text("", max_tokens=chunk_tokens, overlap_tokens=overlap_tokens)  # checks both
        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = overlap_tokens
        self.count_tokens = count_tokens
        if count_tokens is not None and not callable(count_tokens):
            raise UserError(f"count_tokens must be a function of a text, got {type(count_tokens).__name__}")
        self._keys = self._key_functions(key or {})
        self._tool_limits = ToolLimits(
            timeout=timeout, retries=retries, backoff=backoff, rate_limit=rate_limit, period=period
        )
        self._limits = Limits(max_concurrency=max_concurrency)
        self.on_event = on_event
        # A list field per schema; each annotation is built at run time (the classes are values).
        fields: dict[str, Any] = {
            s.field: (list.__class_getitem__(s.model), pydantic.Field(default_factory=list)) for s in self._schemas
        }
        self.merged_model: type[pydantic.BaseModel] = pydantic.create_model(
            "Extraction",
            __config__=pydantic.ConfigDict(protected_namespaces=()),
            __doc__="The items of every schema, one list per schema.",
            **fields,
        )
        self._specs = tuple(
            ToolSpec(name=s.name, description=s.description, parameters=s.item_schema) for s in self._schemas
        )
        self._native_system = render(
            "extract_native_system", schemas="\n".join(f"- {s.name}: {s.description}" for s in self._schemas)
        )

    def _key_functions(self, key: Mapping[type[pydantic.BaseModel] | str, KeyFunction]) -> dict[str, KeyFunction]:
        if not isinstance(key, Mapping):
            raise UserError("key must map a schema (its class or name) to a function of an item")
        by_name = {s.name: s for s in self._schemas}
        found: dict[str, KeyFunction] = {}
        for schema, fn in key.items():
            name = schema if isinstance(schema, str) else getattr(schema, "__name__", repr(schema))
            if name not in by_name or not (isinstance(schema, str) or by_name[name].model is schema):
                raise UserError(f"key names {name!r}, which is not one of the schemas ({', '.join(by_name)})")
            if not callable(fn):
                raise UserError(f"key for {name}: expected a function of an item, got {type(fn).__name__}")
            found[name] = fn
        return found

    async def arun(self, text: str, *, on_event: EventHandler | None = None) -> ExtractionResult:
        """Extract every schema's items from ``text``.

        Args:
            text: the text.
            on_event: called with each ``RunEvent`` of this extraction (besides the extractor's own).

        Returns:
            The merged items and what failed (see the class docstring). A failed call is an
            entry in ``errors``, never an exception.

        Raises:
            UserError: ``text`` is not a string, or a ``key`` function raised or returned an
                unhashable key.
            Exception: what an ``on_event`` handler raised, as itself. Never an ``ExceptionGroup``.
        """
        if not isinstance(text, str):
            raise UserError(f"text must be a string, got {type(text).__name__}")
        chunks = split_text(
            text, max_tokens=self.chunk_tokens, overlap_tokens=self.overlap_tokens, count_tokens=self.count_tokens
        )
        by_name = {s.name: s for s in self._schemas}

        async def call(chunk: int, schema: str | None = None) -> Any:
            piece = chunks[chunk]
            if schema is None:
                reply = await run.reply(
                    self.llm, self._native_request(piece), step=f"the extraction from chunk {chunk}"
                )
                return reply.calls
            request = self._request(by_name[schema], piece)
            reply = await run.reply(self.llm, request, step=f"the extraction of {schema} from chunk {chunk}")
            return reply.text

        native = self.strategy == "native"
        properties: dict[str, Any] = {"chunk": {"type": "integer", "minimum": 0}}
        if not native:
            properties["schema"] = {"type": "string", "enum": list(by_name)}
        tool = Tool.from_schema(
            name=_NATIVE if native else _EXTRACT,
            description="Ask the model for the items in one chunk of the text.",
            parameters={"type": "object", "properties": properties, "required": list(properties)},
            fn=call,
            limits=self._tool_limits,
        )
        run = Run([tool], limits=self._limits, on_event=(self.on_event, on_event), name="Extractor")
        calls: list[tuple[int, str, dict[str, Any]]]
        if native:
            calls = [(i + 1, tool.name, {"chunk": c.index}) for i, c in enumerate(chunks)]
        else:
            pairs = [(s.name, c.index) for s in self._schemas for c in chunks]
            calls = [(i + 1, tool.name, {"schema": s, "chunk": c}) for i, (s, c) in enumerate(pairs)]

        async def body() -> list[TaskRecord]:
            if self.strategy != "sequential":
                return await run.executor.run_calls(calls)
            done: list[TaskRecord] = []
            for one in calls:
                done += await run.executor.run_calls([one])
            return done

        records = await run.guard(body())
        found: dict[str, list[_Found]] = {s.name: [] for s in self._schemas}
        errors: list[ExtractionError] = []
        for record in records:
            chunk = int(record.args.get("chunk", 0))
            if native:
                self._read_native(record, chunk, found, errors)
            else:
                self._read_items(by_name[str(record.args.get("schema"))], record, chunk, found, errors)
        items: dict[str, list[pydantic.BaseModel]] = {}
        provenance: dict[str, list[Provenance]] = {}
        for s in self._schemas:
            kept = self._merge(s, found[s.name], chunks)
            items[s.name] = [f.item for f in kept]
            provenance[s.name] = [Provenance(chunk=f.chunk, start=f.start, end=f.end) for f in kept]
        merged = self.merged_model(**{s.field: items[s.name] for s in self._schemas})
        return ExtractionResult(
            items=items,
            provenance=provenance,
            merged=merged,
            errors=errors,
            usage=run.usage,
            cost_usd=run.cost_usd,
            timings=ExtractionTimings(start=run.start, end=run.now(), calls=records),
            strategy=self.strategy,
            chunks=chunks,
        )

    def run(self, text: str) -> ExtractionResult:
        """``arun`` from sync code (starts an event loop; see ``strategy.run_sync``).

        Raises:
            UserError: called from inside a running event loop (use ``await arun``), and as ``arun``.
        """
        return run_sync(self.arun(text))

    # -- requests

    def _request(self, schema: _Schema, chunk: TextChunk) -> ModelRequest:
        return ModelRequest(
            messages=(
                Message(role="system", content=schema.system),
                Message(role="user", content=render("extract_user", text=chunk.text)),
            ),
            purpose=_EXTRACT,
            question=chunk.text,
            response_schema=schema.response_schema,
            response_name=schema.name,
        )

    def _native_request(self, chunk: TextChunk) -> ModelRequest:
        return ModelRequest(
            messages=(
                Message(role="system", content=self._native_system),
                Message(role="user", content=render("extract_user", text=chunk.text)),
            ),
            purpose=_NATIVE,
            tools=self._specs,
            native_tools=True,
            question=chunk.text,
        )

    # -- replies

    def _read_items(
        self,
        schema: _Schema,
        record: TaskRecord,
        chunk: int,
        found: dict[str, list[_Found]],
        errors: list[ExtractionError],
    ) -> None:
        if record.error is not None:
            errors.append(ExtractionError(schema=schema.name, chunk=chunk, reason=record.error))
            return
        text = record.result if isinstance(record.result, str) else ""
        raw_items, problem = parse_items(text)
        if raw_items is None:
            errors.append(ExtractionError(schema=schema.name, chunk=chunk, reason=problem, raw=_raw(text)))
            return
        for pos, raw in enumerate(raw_items, 1):
            self._validate(schema, raw, chunk, f"item {pos}", found, errors)

    def _read_native(
        self, record: TaskRecord, chunk: int, found: dict[str, list[_Found]], errors: list[ExtractionError]
    ) -> None:
        if record.error is not None:
            for s in self._schemas:
                errors.append(ExtractionError(schema=s.name, chunk=chunk, reason=record.error))
            return
        by_name = {s.name: s for s in self._schemas}
        calls: Sequence[ToolCall] = record.result if isinstance(record.result, tuple) else ()
        for pos, call in enumerate(calls, 1):
            where = f"tool call {pos} ({one_line(call.name, 80)})"
            if call.error is not None:
                errors.append(
                    ExtractionError(
                        schema=call.name, chunk=chunk, reason=f"{where} could not be read: {call.error}", raw=None
                    )
                )
                continue
            schema = by_name.get(call.name)
            if schema is None:
                reason = f"{where} names no schema (schemas: {', '.join(by_name)})"
                errors.append(ExtractionError(schema=call.name, chunk=chunk, reason=reason, raw=_raw(call.args)))
                continue
            self._validate(schema, dict(call.args), chunk, where, found, errors)

    def _validate(
        self,
        schema: _Schema,
        raw: Any,
        chunk: int,
        where: str,
        found: dict[str, list[_Found]],
        errors: list[ExtractionError],
    ) -> None:
        try:
            item = schema.model.model_validate(raw)
        except pydantic.ValidationError as exc:
            reason = f"{where} is not a valid {schema.name}: {_validation_message(exc)}"
            errors.append(ExtractionError(schema=schema.name, chunk=chunk, reason=reason, raw=_raw(raw)))
            return
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a validator of the user's that raised anything else
            # (SystemExit deep in a helper, StopIteration, ...): like a tool's fault, it fails only this item.
            reason = f"{where}: validating it as {schema.name} raised {describe(exc)}"
            errors.append(ExtractionError(schema=schema.name, chunk=chunk, reason=reason, raw=_raw(raw)))
            return
        bucket = found[schema.name]
        bucket.append(_Found(item=item, chunk=chunk, arrival=len(bucket)))

    # -- merging

    def _merge(self, schema: _Schema, found: list[_Found], chunks: list[TextChunk]) -> list[_Found]:
        for f in found:
            span = _locate(f.item, chunks[f.chunk]) if f.chunk < len(chunks) else None
            if span is not None:
                f.start, f.end = span
        # Arrival is chunk order, then reply order (the calls' records come in that order).
        found.sort(key=lambda f: (f.start is None, f.start or 0, f.chunk, f.arrival))
        key = self._keys.get(schema.name, default_key)
        seen: set[Hashable] = set()
        kept: list[_Found] = []
        for f in found:
            try:
                k = key(f.item)
                new = k not in seen
                seen.add(k)
            except Exception as exc:
                raise UserError(f"the key function for {schema.name} failed on {f.item!r}: {describe(exc)}") from exc
            if new:
                kept.append(f)
        return kept


def parse_items(text: str) -> tuple[list[Any], str] | tuple[None, str]:
    """The items of an extraction reply ``{"items": [...]}``, or why there are none.

    Read as JSON: the whole text, else the inside of a Markdown code fence, else the text from
    its first ``{`` to its last ``}``. A bare JSON list is taken as the items.

    Returns:
        ``(items, "")``, or ``(None, reason)`` for a reply that holds no such object.

    Example:
        >>> parse_items('Here you go: ```json\\n{"items": [{"name": "Oslo"}]}\\n```')
        ([{'name': 'Oslo'}], '')
        >>> parse_items('{"items": [')[1]
        'the reply is not JSON: Expecting value at line 1 column 12'
    """
    candidates = [text.strip()]
    fence = re.search(r"```[A-Za-z]*\s*\n?(.*?)```", text, re.DOTALL)
    if fence:
        candidates.append(fence.group(1).strip())
    first, last = text.find("{"), text.rfind("}")
    if 0 <= first < last:
        candidates.append(text[first : last + 1])
    problem = ""
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError as exc:
            problem = problem or f"the reply is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            continue
        except (ValueError, RecursionError) as exc:
            problem = problem or f"the reply is not JSON: {describe(exc)}"
            continue
        if isinstance(value, list):
            return value, ""
        if isinstance(value, dict) and isinstance(value.get("items"), list):
            return value["items"], ""
        problem = f'the reply is JSON but not an object with an "items" list: {_json_kind(value)}'
        break
    return None, problem or "the reply is empty"


def default_key(item: pydantic.BaseModel) -> Hashable:
    """The default duplicate key: every field, strings case-folded and white space squeezed.

    Example:
        >>> class City(pydantic.BaseModel):
        ...     name: str
        >>> default_key(City(name=" New  York")) == default_key(City(name="new york"))
        True
    """
    try:
        dumped: Any = item.model_dump(mode="json")
    except Exception:  # a field that has no JSON form: the repr is the key
        return repr(item)
    return json.dumps(_normalise(dumped), sort_keys=True, ensure_ascii=False)


def _normalise(value: Any) -> Any:
    if isinstance(value, str):
        return " ".join(value.split()).casefold()
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    return value


def _locate(item: pydantic.BaseModel, chunk: TextChunk) -> tuple[int, int] | None:
    """Whole-text offsets of the first occurrence of the item's first string field value in its
    chunk: case-insensitive, any white space between words, not inside a longer word."""
    value = next(
        (v for name in type(item).model_fields if isinstance(v := getattr(item, name, None), str) and v.strip()),
        None,
    )
    if value is None:
        return None
    words = value.split()
    pattern = r"\s+".join(re.escape(w) for w in words)
    if re.match(r"\w", words[0]):
        pattern = r"(?<!\w)" + pattern
    if re.search(r"\w$", words[-1]):
        pattern += r"(?!\w)"
    match = re.search(pattern, chunk.text, re.IGNORECASE)
    if match is None:
        return None
    return chunk.start + match.start(), chunk.start + match.end()


def _schema(model: object) -> _Schema:
    if not (isinstance(model, type) and issubclass(model, pydantic.BaseModel)):
        raise UserError(f"a schema must be a pydantic model class, got {_short(model)}")
    name = model.__name__
    try:
        item_schema = model.model_json_schema()
    except Exception as exc:
        raise UserError(f"schema {name} has no JSON Schema: {describe(exc)}") from exc
    doc = model.__doc__ if model.__doc__ and model.__doc__ is not pydantic.BaseModel.__doc__ else ""
    description = " ".join(doc.split()) or f"A {name} mentioned in the text."
    inner = {k: v for k, v in item_schema.items() if k != "$defs"}
    response: dict[str, Any] = {
        "type": "object",
        "properties": {"items": {"type": "array", "items": inner}},
        "required": ["items"],
        "additionalProperties": False,
    }
    if "$defs" in item_schema:
        response["$defs"] = item_schema["$defs"]
    field = snake_case(name)
    if not field.isidentifier() or field.startswith("_"):
        raise UserError(f"schema {name}: its snake_case name {field!r} cannot be a field of the merged model")
    system = render(
        "extract_system", kind=name, description=description, schema=json.dumps(item_schema, ensure_ascii=False)
    )
    return _Schema(
        model=model,
        name=name,
        field=field,
        description=description,
        item_schema=item_schema,
        response_schema=response,
        system=system,
    )


def snake_case(name: str) -> str:
    """A class name in snake_case, as ``ExtractionResult.merged`` names its fields.

    Example:
        >>> snake_case("Person"), snake_case("HTTPServer"), snake_case("GeoLocation2")
        ('person', 'http_server', 'geo_location2')
    """
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def _check_unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise UserError(f"two schemas have the {what} {name!r}: rename one")
        seen.add(name)


def _validation_message(exc: pydantic.ValidationError) -> str:
    """Where and why, without the input (model text, quoted in ``raw`` instead)."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "the item"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - len(parts)
    return scrub("; ".join(parts) + (f" (and {more} more)" if more > 0 else ""))


def _raw(value: Any) -> str:
    """Model text for an error: the reply, or an item as JSON; scrubbed and cut in the middle."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=repr)
        except (ValueError, TypeError, RecursionError):
            text = repr(value)
    text = scrub(text)
    if len(text) > MAX_RAW_CHARS:
        half = MAX_RAW_CHARS // 2
        text = f"{text[:half]} … {text[-half:]}"
    return text


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return f"an object with keys {', '.join(map(str, list(value)[:8]))}" if value else "an empty object"
    return {str: "a string", bool: "a boolean", int: "a number", float: "a number"}.get(type(value), "null")


def _short(value: object) -> str:
    return one_line(repr(value), 80)


async def extract(
    text: str,
    schemas: Iterable[type[pydantic.BaseModel]],
    *,
    llm: ChatModel,
    strategy: StrategyName = "parallel",
    **options: Unpack[ExtractOptions],
) -> ExtractionResult:
    """Extract the items of ``schemas`` from ``text``: ``Extractor(schemas, ...).arun(text)``.

    Args:
        text: the text.
        schemas: pydantic model classes.
        llm: the model.
        strategy: ``"parallel"`` (default), ``"sequential"`` or ``"native"``.
        **options: as ``Extractor`` takes them (``chunk_tokens``, ``key``, ``max_concurrency``, ...).

    Returns:
        The merged items and what failed (see ``Extractor`` for the merge rules).

    Raises:
        UserError: as ``Extractor`` and ``Extractor.arun``.

    Example:
        >>> import asyncio
        >>> from pydantic import BaseModel
        >>> from llmcompiler.testing import ScriptedLLM
        >>> class Person(BaseModel):
        ...     name: str
        >>> llm = ScriptedLLM(['{"items": [{"name": "Ada"}]}'])
        >>> asyncio.run(extract("Ada wrote it.", [Person], llm=llm)).items
        {'Person': [Person(name='Ada')]}
    """
    return await Extractor(schemas, llm=llm, strategy=strategy, **options).arun(text)


def extract_sync(
    text: str,
    schemas: Iterable[type[pydantic.BaseModel]],
    *,
    llm: ChatModel,
    strategy: StrategyName = "parallel",
    **options: Unpack[ExtractOptions],
) -> ExtractionResult:
    """``extract`` from sync code (starts an event loop).

    Raises:
        UserError: called from inside a running event loop (``await extract(...)`` there), and
            as ``extract``.
    """
    return Extractor(schemas, llm=llm, strategy=strategy, **options).run(text)
