"""The oracle model: replays a question's gold calls, streamed like a real model.

It answers the three strategies in their own formats, from the gold calls and what the
conversation already holds:

- LLMCompiler's planner (purpose ``"plan"``): the whole gold plan, ``$N`` references included;
  its joiner (``"join"``): ``Action: Finish(answer)``, the answer read from the observations.
- ReAct (``"react"``): the next gold call, with the values of earlier observations written in,
  then ``Action: Finish(answer)``.
- Native parallel tool calling (``"tools"``): one turn of ``ToolCall``s per level of the gold
  dependency graph, then the answer as text.

``ExtractionOracle`` answers the structured extraction strategies from a document's gold
entities: ``"extract"`` (one schema, the chunk in ``request.question``) with the JSON object
``{"items": [{"name": ...}, ...]}`` as text, ``"extract_native"`` with one ``ToolCall`` per entity
of every offered schema; in both, the gold entities of that schema whose text occurs in the chunk.

Answers are computed from the observations the conversation holds (never from the gold answer),
so an oracle run that scores 1.0 shows that the gold calls, the tools and the ground truth agree.

Timing follows a named ``Profile``: time to first token (plus prefill time for the prompt), then
completion tokens at a steady rate. Tokens are real: each profile names a tokenizer
(``benchmarks.tokens``: ``o200k_base`` for the GPT-4o family, ``gemma3`` for the local model),
and every request is charged what it holds, tool definitions included, as ``benchmarks.tokens``
documents. A text reply streams one chunk per token, each at its token's time; native tool calls
stream one by one, each when its last token is written, as a real stream delivers a call once
its arguments are complete.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from benchmarks.tokens import (
    COUNTERS,
    TokenCounter,
    call_tokens,
    prompt_tokens,
    static_prefix_tokens,
    token_counter,
    tool_definition_tokens,
)
from llmcompiler import END_OF_PLAN, Ref, Template, ToolCall, ToolSpec, Usage
from llmcompiler._literals import follow, to_text
from llmcompiler.models import ModelEvent, ModelRequest
from llmcompiler.models._pricing import cost_usd
from planners._react import OBSERVATION as _OBSERVATION  # what a ReAct transcript calls a result

__all__ = [
    "PROFILES",
    "ExtractionOracle",
    "GoldCall",
    "OracleLLM",
    "PromptCache",
    "Profile",
    "levels",
    "render_literal",
    "render_plan",
    "resolve_values",
    "value_of",
]


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Profile:
    """How fast a model streams, in whose tokens, and what it costs.

    Attributes:
        name: the profile's name (``--profile``).
        ttft_s: seconds from the request to the first token, for an empty prompt.
        prefill_tokens_per_s: prompt tokens read per second before the first token; ``None`` when
            prompt length is not modelled.
        decode_tokens_per_s: completion tokens per second after the first.
        price_model: a model id of the price table (``llmcompiler.models.PRICES``) to cost calls
            at, or ``None`` for no cost.
        source: where the numbers come from (an assumed profile says so).
        token_counter: the tokenizer whose tokens the speeds and prices are in (one of
            ``benchmarks.tokens.COUNTERS``).

    Raises:
        ValueError: an unknown ``token_counter``, a negative time to first token, or a decode
            speed that is not positive.
    """

    name: str
    ttft_s: float
    prefill_tokens_per_s: float | None
    decode_tokens_per_s: float
    price_model: str | None
    source: str
    token_counter: str

    def __post_init__(self) -> None:
        if self.token_counter not in COUNTERS:
            raise ValueError(f"unknown token counter {self.token_counter!r}: choose from {', '.join(COUNTERS)}")
        if not self.ttft_s >= 0:
            raise ValueError(f"the time to first token must be >= 0, not {self.ttft_s!r}")
        if not self.decode_tokens_per_s > 0:
            raise ValueError(f"the decode speed must be > 0 tokens/s, not {self.decode_tokens_per_s!r}")

    def counter(self) -> TokenCounter:
        """The profile's tokenizer (loaded on first use)."""
        return token_counter(self.token_counter)

    def cost(self, usage: Usage) -> float | None:
        """What ``usage`` costs at the profile's list price, or ``None``."""
        return None if self.price_model is None else cost_usd(self.price_model, usage)

    def first_token_s(self, prompt_tokens: int) -> float:
        """Seconds to the first token for a prompt of ``prompt_tokens``."""
        prefill = 0.0 if self.prefill_tokens_per_s is None else prompt_tokens / self.prefill_tokens_per_s
        return self.ttft_s + prefill

    def token_s(self, prompt_tokens: int, k: int) -> float:
        """Seconds from the request to the ``k``-th completion token (``k >= 1``):
        ``first_token_s(prompt_tokens) + (k - 1) / decode_tokens_per_s``."""
        if k < 1:
            raise ValueError(f"tokens are numbered from 1, not {k}")
        return self.first_token_s(prompt_tokens) + (k - 1) / self.decode_tokens_per_s

    def reply_s(self, prompt_tokens: int, completion_tokens: int) -> float:
        """Seconds from the request to a reply's last token (its first, for an empty reply)."""
        return self.token_s(prompt_tokens, max(1, completion_tokens))

    def with_speed(self, *, ttft_s: float, decode_tokens_per_s: float) -> Profile:
        """This profile at another speed, for a sweep: prefill, tokenizer and price stay; the
        name says the speed (``ttft=0.1s,60tok/s``) and the source says it is assumed."""
        return dataclasses.replace(
            self,
            name=f"ttft={ttft_s:g}s,{decode_tokens_per_s:g}tok/s",
            ttft_s=ttft_s,
            decode_tokens_per_s=decode_tokens_per_s,
            source=(
                f"swept (assumed): {ttft_s:g} s to the first token, {decode_tokens_per_s:g} tokens/s; "
                f"prompt reading, tokenizer ({self.token_counter}) and price as the {self.name} profile."
            ),
        )


PROFILES: Mapping[str, Profile] = {
    "gpt-4o": Profile(
        name="gpt-4o",
        ttft_s=0.45,
        prefill_tokens_per_s=10_000.0,
        decode_tokens_per_s=80.0,
        price_model="gpt-4o",
        token_counter="o200k_base",
        source=(
            "assumed, like a hosted GPT-4o: about 0.45 s to the first token, 80 tokens/s, prompt read at "
            "10k tokens/s; not measured here. Tokens counted with o200k_base (GPT-4o's tokenizer), "
            "priced at the gpt-4o list price of llmcompiler.models.PRICES."
        ),
    ),
    "local": Profile(
        name="local",
        ttft_s=0.054,
        prefill_tokens_per_s=None,
        decode_tokens_per_s=31.2,
        price_model=None,
        token_counter="gemma3",
        source=(
            "measured: the local Gemma 3 270M on this 2-core machine, benchmarks/results/local_model.json "
            "(2026-11-29, idle: load average 0.85): planner calls with the prompt prefix cached, median "
            "0.054 s to the first token and 31.2 tokens/s (plain decoding 35.3 tokens/s). A second idle run "
            "the same day gave 0.041 s and 35.9 tokens/s; an earlier host (commit 1edd853) 0.029 s and 59.5. "
            "Tokens counted with gemma3, the model's own tokenizer, as the measurement counted them; no cost."
        ),
    ),
    "instant": Profile(
        name="instant",
        ttft_s=0.0,
        prefill_tokens_per_s=None,
        decode_tokens_per_s=1e9,
        price_model=None,
        token_counter="o200k_base",
        source="no model time at all: for tests and smoke runs, where only tool time and orchestration remain.",
    ),
}
"""The named streaming profiles of the oracle model."""


# --------------------------------------------------------------------------- gold calls


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class GoldCall:
    """One call of a gold plan (calls are numbered from 1 in list order, dependencies first).

    Attributes:
        tool: the tool's name.
        args: keyword arguments: literals, ``Ref(n)`` for the result of gold call ``n`` (also
            inside lists and dicts), or ``Template`` strings that splice results in as text.
        thought: why the call is made (written as the plan's and ReAct's ``Thought:``).
    """

    tool: str
    args: Mapping[str, Any]
    thought: str = ""

    def deps(self) -> frozenset[int]:
        """The gold calls this call needs."""
        found: set[int] = set()
        _collect_refs(self.args, found)
        return frozenset(found)


def _collect_refs(value: Any, found: set[int]) -> None:
    if isinstance(value, Ref):
        found.add(value.idx)
    elif isinstance(value, Template):
        found.update(p.idx for p in value.parts if isinstance(p, Ref))
    elif isinstance(value, Mapping):
        for v in value.values():
            _collect_refs(v, found)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _collect_refs(v, found)


def levels(gold: Sequence[GoldCall]) -> list[list[int]]:
    """The gold calls by level of the dependency graph: level 0 needs nothing, level k needs level k-1."""
    depth: dict[int, int] = {}
    for i, call in enumerate(gold, 1):
        deps = call.deps()
        if any(d >= i or d < 1 for d in deps):
            raise ValueError(f"gold call {i} ({call.tool}) references a later or unknown call: {sorted(deps)}")
        depth[i] = 1 + max((depth[d] for d in deps), default=-1)
    out: list[list[int]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for i, d in depth.items():
        out[d].append(i)
    return out


def render_literal(value: Any, refs: bool = True) -> str:
    """``value`` as a plan-language literal: Python literals, ``$N`` for references (``$N.field``,
    ``$N["a key"]``, ``$N[0]`` with a path); in strings ``$N``, or ``${N.field}`` with a path."""
    if isinstance(value, Ref):
        if not refs:
            raise ValueError("a reference cannot be written here")
        return repr(value)
    if isinstance(value, Template):
        text = ""
        for k, part in enumerate(value.parts):
            if isinstance(part, Ref):
                following = value.parts[k + 1] if k + 1 < len(value.parts) else ""
                tight = isinstance(following, str) and following[:1].isalnum()
                text += f"${{{repr(part)[1:]}}}" if tight or part.path else f"${part.idx}"
            else:
                text += part
        return repr(text)
    if isinstance(value, bool) or value is None or isinstance(value, (int, float, str)):
        return repr(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{render_literal(k, refs)}: {render_literal(v, refs)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(render_literal(v, refs) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as a plan literal")


def render_call(call: GoldCall, args: Mapping[str, Any] | None = None) -> str:
    """``tool(name=value, ...)`` in the plan language."""
    given = call.args if args is None else args
    return f"{call.tool}({', '.join(f'{k}={render_literal(v)}' for k, v in given.items())})"


def render_plan(gold: Sequence[GoldCall]) -> str:
    """The gold plan as LLMCompiler's planner writes it, ``join()`` and the end marker included."""
    lines: list[str] = []
    for i, call in enumerate(gold, 1):
        if call.thought:
            lines.append(f"Thought: {call.thought}")
        lines.append(f"{i}. {render_call(call)}")
    lines.append(f"{len(gold) + 1}. join()")
    lines.append(END_OF_PLAN)
    return "\n".join(lines)


def value_of(text: str) -> Any:
    """A result as a model reads it back from its text: JSON when it parses, else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def resolve_values(value: Any, observations: Mapping[int, str]) -> Any:
    """``value`` with every reference replaced by what the observation of that call says (the
    value at a reference's path read from the observation's JSON, as a model copies it)."""
    if isinstance(value, Ref):
        whole = value_of(observations[value.idx])
        return follow(value, whole) if value.path else whole
    if isinstance(value, Template):
        return "".join(
            p
            if isinstance(p, str)
            else to_text(follow(p, value_of(observations[p.idx])))
            if p.path
            else observations[p.idx]
            for p in value.parts
        )
    if isinstance(value, Mapping):
        return {k: resolve_values(v, observations) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [resolve_values(v, observations) for v in value]
    return value


# --------------------------------------------------------------------------- reading conversations

# --------------------------------------------------------------------------- the model

AnswerFn = Callable[[Mapping[int, str]], str]


class OracleError(RuntimeError):
    """The conversation is not one the oracle can continue (a bug in a strategy or a suite)."""


class PromptCache:
    """OpenAI's automatic prompt caching, as the oracle models it (``OracleLLM(cache=...)``).

    OpenAI caches a prompt's prefix of 1024 tokens or more, in steps of 128 tokens, once a request
    with the same prefix has been made, and charges nothing to write it. The prefix modelled is the
    request's static part (``benchmarks.tokens.static_prefix_tokens``: the system message, and the
    tool definitions of native tool calling), the same for every question of a suite. The first
    request with a prefix reads nothing from the cache; every later one reads
    ``floor(prefix / 128) * 128`` tokens when the prefix has 1024 or more, else nothing. That is
    the best case: a real cache is best effort (routed by the prefix's hash, evicted after minutes
    idle), so the cost with caching is a lower bound.
    """

    MIN_TOKENS = 1024
    STEP = 128

    def __init__(self, *, min_tokens: int = MIN_TOKENS) -> None:
        self.min_tokens = min_tokens  # OpenAI's minimum; 0 models a cache with none (the idea's ceiling)
        self._seen: set[tuple[str, int]] = set()
        self.prefixes: dict[str, list[int]] = {}  # each request's static prefix tokens, by request kind

    def cached_tokens(self, request: ModelRequest, prefix: int) -> int:
        """Prompt tokens of ``request`` read from the cache (its static prefix has ``prefix`` tokens)."""
        # The prefix is what ``static_prefix_tokens`` counts: the system message (a first message
        # of another role, the question, is no part of it) and the native tool definitions.
        opening = request.messages[0] if request.messages else None
        system = opening.content if opening is not None and opening.role == "system" else ""
        kind = f"{request.purpose}{' (native tools)' if request.native_tools else ''}"
        self.prefixes.setdefault(kind, []).append(prefix)
        key = (system + "\x00" + ",".join(t.name for t in request.tools if request.native_tools), prefix)
        if key not in self._seen:
            self._seen.add(key)
            return 0
        return (prefix // self.STEP) * self.STEP if prefix >= self.min_tokens else 0


class OracleLLM:
    """A chat model that replays one question's gold calls with a streaming profile.

    Args:
        gold: the question's gold calls.
        answer: the final answer, from the observations of the gold calls (by gold number).
        profile: how fast it streams and what it costs.
        plan_thoughts: write each call's thought into the plan (LLMCompiler) and ReAct steps.
        cache: a ``PromptCache`` shared by the runs of a suite: each call's ``Usage`` then says
            how many of its prompt tokens the provider's cache would serve (``cached_tokens``).
            Timing is unchanged (the profiles' prefill is fast already).

    Attributes:
        requests: every request received, in order.
        counter: the profile's tokenizer, loaded here (blocking, once per process: about 0.1 s
            for o200k_base, 1 s for gemma3) so that no streamed reply waits for it.
    """

    def __init__(
        self,
        gold: Sequence[GoldCall],
        answer: AnswerFn,
        profile: Profile,
        *,
        plan_thoughts: bool = True,
        cache: PromptCache | None = None,
    ) -> None:
        self.gold = list(gold)
        self.cache = cache
        self.answer = answer
        self.profile = profile
        self.levels = levels(self.gold)
        self.plan_thoughts = plan_thoughts
        self.requests: list[ModelRequest] = []
        self.counter = profile.counter()

    @property
    def model_name(self) -> str:
        """``oracle:<profile>``."""
        return f"oracle:{self.profile.name}"

    def reply(self, request: ModelRequest) -> str | list[ToolCall]:
        """What the oracle answers to ``request`` (no timing)."""
        messages = request.messages
        if request.purpose == "plan":
            if request.first_task > 1:
                raise OracleError("the gold plan was already given: the oracle never replans")
            gold = self.gold if self.plan_thoughts else [dataclasses.replace(c, thought="") for c in self.gold]
            return render_plan(gold)
        if request.purpose == "join":
            observations = {o.idx: o.text if o.ok else f"ERROR: {o.text}" for o in request.observations}
            return f"Thought: The observations answer the question.\nAction: Finish({self._answer(observations)})"
        if request.purpose == "react":
            return self._react(messages)
        if request.purpose == "tools":
            return self._tools(messages)
        raise OracleError(f"the oracle has no reply for purpose {request.purpose!r}")

    def _answer(self, observations: Mapping[int, str]) -> str:
        missing = [i for i in range(1, len(self.gold) + 1) if i not in observations]
        if missing:
            raise OracleError(f"no observation for gold calls {missing}")
        return self.answer(observations)

    def _react(self, messages: Sequence[Any]) -> str:
        done = sum(1 for m in messages if m.role == "assistant")
        observations: dict[int, str] = {}
        k = 0
        for m in messages:
            if m.role == "user" and m.content.startswith(_OBSERVATION):
                k += 1
                observations[k] = m.content[len(_OBSERVATION) :].strip()
        if done < len(self.gold):
            call = self.gold[done]
            thought = call.thought if self.plan_thoughts and call.thought else f"Next I call {call.tool}."
            args = {name: resolve_values(v, observations) for name, v in call.args.items()}
            return f"Thought: {thought}\nAction: {render_call(call, args)}"
        return f"Thought: The observations answer the question.\nAction: Finish({self._answer(observations)})"

    def _tools(self, messages: Sequence[Any]) -> str | list[ToolCall]:
        turn = sum(1 for m in messages if m.role == "assistant")
        observations: dict[int, str] = {}
        for m in messages:
            if m.role == "tool" and m.tool_call_id and m.tool_call_id.startswith("gold_"):
                observations[int(m.tool_call_id.removeprefix("gold_"))] = m.content
        if turn < len(self.levels):
            return [
                ToolCall(
                    name=self.gold[i - 1].tool,
                    args={k: resolve_values(v, observations) for k, v in self.gold[i - 1].args.items()},
                    id=f"gold_{i}",
                )
                for i in self.levels[turn]
            ]
        return self._answer(observations)

    def prompt_tokens(self, request: ModelRequest) -> int:
        """The request's prompt tokens in the profile's tokenizer (``benchmarks.tokens.prompt_tokens``:
        messages, native tool calls, and the tool definitions when they go through native tool calling)."""
        return prompt_tokens(self.counter, request)

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Stream the reply on the profile's schedule, then its ``Usage``.

        Text streams one chunk per token (``TokenCounter.timed_pieces``), chunk ``n`` at
        ``token_s(prompt, n + 1)`` (a character split over several tokens comes whole, at its
        last token's time). Native calls stream one by one: call ``k`` at the time of its last
        token, ``token_s(prompt, tokens of calls 1..k)``. The ``Usage`` follows the last token.
        """
        self.requests.append(request)
        reply = self.reply(request)
        loop = asyncio.get_running_loop()
        start = loop.time()
        prompt = self.prompt_tokens(request)
        if isinstance(reply, str):
            text = reply
            for stop in request.stop:
                cut = text.find(stop)
                if cut >= 0:
                    text = text[:cut]
            completion = 0
            for piece, completion in self.counter.timed_pieces(text):
                await _sleep_until(loop, start + self.profile.token_s(prompt, completion))
                yield piece
        else:
            completion = 0
            for call in reply:
                completion += call_tokens(self.counter, call)
                await _sleep_until(loop, start + self.profile.reply_s(prompt, completion))
                yield call
        await _sleep_until(loop, start + self.profile.reply_s(prompt, completion))
        cached = 0
        if self.cache is not None:
            cached = min(prompt, self.cache.cached_tokens(request, static_prefix_tokens(self.counter, request)))
        yield Usage(prompt_tokens=prompt, completion_tokens=completion, calls=1, cached_tokens=cached)


class ExtractionOracle(OracleLLM):
    """A chat model that answers extraction requests with one document's gold entities, streamed
    and counted like ``OracleLLM`` (the same profile, tokenizer and schedule).

    - ``"extract"`` (``request.response_name`` names the schema, ``request.question`` holds the
      chunk): the text ``{"items":[{"name":"..."},...]}`` (compact JSON, as GPT-4o writes it), the
      gold entities of that schema whose text occurs in the chunk, in the document's order.
    - ``"extract_native"``: one ``ToolCall`` per such entity of every offered tool (a schema), in
      the tools' order, ``{"name": "..."}`` each; no entity at all: a short text reply.

    The prompt is charged as ``OracleLLM.prompt_tokens`` charges it (messages, and the tool
    definitions of a native request); a ``response_schema`` is charged once more as the one tool
    definition it is sent as (an Anthropic forced tool; OpenAI's rendering of a ``json_schema`` is
    not published), with ``benchmarks.tokens.tool_definition_tokens``.

    Args:
        entities: the document's gold entities, by schema name (``"Person": ["Ada Lovelace"]``).
        profile: how fast it streams and what it costs.
    """

    def __init__(self, entities: Mapping[str, Sequence[str]], profile: Profile) -> None:
        super().__init__([], _no_answer, profile)
        self.entities = {name: list(texts) for name, texts in entities.items()}

    def found(self, schema: str, chunk: str) -> list[str]:
        """The gold entities of ``schema`` whose text occurs in ``chunk``."""
        return [text for text in self.entities.get(schema, ()) if text in chunk]

    def reply(self, request: ModelRequest) -> str | list[ToolCall]:
        """The gold entities of the requested schema (``"extract"``) or schemas (``"extract_native"``)."""
        if request.purpose not in ("extract", "extract_native"):
            raise OracleError(f"the extraction oracle has no reply for purpose {request.purpose!r}")
        if request.question is None:
            raise OracleError("an extraction request carries its chunk in request.question")
        chunk = request.question
        if request.purpose == "extract":
            if request.response_name is None:
                raise OracleError("an extraction request names its schema in request.response_name")
            items = [{"name": text} for text in self.found(request.response_name, chunk)]
            return json.dumps({"items": items}, ensure_ascii=False, separators=(",", ":"))
        calls = [
            ToolCall(name=spec.name, args={"name": text}, id=f"gold_{spec.name}_{k}")
            for spec in request.tools
            for k, text in enumerate(self.found(spec.name, chunk), 1)
        ]
        return calls or "No entities of these types in the text."

    def prompt_tokens(self, request: ModelRequest) -> int:
        """``OracleLLM.prompt_tokens``, plus a ``response_schema`` charged as one tool definition."""
        total = super().prompt_tokens(request)
        if request.response_schema is not None:
            spec = ToolSpec(name=request.response_name or "response", parameters=request.response_schema)
            total += tool_definition_tokens(self.counter, [spec])
        return total


def _no_answer(_observations: Mapping[int, str]) -> str:
    raise OracleError("the extraction oracle answers no question")


async def _sleep_until(loop: asyncio.AbstractEventLoop, when: float) -> None:
    delay = when - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)
