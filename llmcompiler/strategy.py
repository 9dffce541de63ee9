"""Writing a planning strategy on the engine: what LLMCompiler, ReActAgent and ParallelToolCallAgent are built with.

A strategy is a class with ``async def arun(question) -> RunResult`` (and ``run`` for sync
code). It decides which model calls and which tool calls to make; the engine does the rest:

- ``Strategy``: a base class that takes the model, the tools (``Tool``s, functions or
  LangChain tools), the limits and the listeners, and gives ``run`` from ``arun``.
- ``Run``: one run. It owns the run's ``Executor`` (tool calls under ``Limits``, with
  retries, timeouts and ``TaskRecord``s), reads model streams (``reply`` for a whole reply,
  its native tool calls handed on as they arrive, e.g. to ``Executor.call_round``;
  ``stream_text`` to feed a plan to ``Executor.run_round``) while it sums their ``Usage`` and
  list-price cost, passes ``RunEvent``s to the listeners, and keeps the run's boundary
  (``guard``): a run raises our errors with the finished records, or a failing listener's own
  exception, never an exception group.
- ``CallRound``: the calls of an ``Executor.call_round`` block, each started as it arrives.
- ``run_sync``: a strategy's ``arun`` from sync code (``Strategy.run``).
- ``Run.phase`` and ``Phase``: a part of a run traced as its own OpenTelemetry span (runs,
  rounds, model calls and tool calls are traced already, when a tracer provider is configured).
- ``AnswerStream``: a joiner's reply read as it streams, giving out its ``Finish(...)``
  answer as it is written (feed it from ``Run.reply``'s ``on_text``; emit ``AnswerChunk``s).
- ``Draft`` and ``SpeculationLog``: speculative execution for a strategy of your own: pass
  ``Draft(model=drafter, request=the planning request, log=SpeculationLog(name))`` to
  ``Executor.run_round`` and put ``log.summary()`` in ``Run.result(speculation=...)``
  (``LLMCompiler``'s ``drafter`` does this).
- Prompt text: ``describe_tools`` (the tools as a prompt lists them), ``observation_text``
  (a finished task as a model reads it: cut, safe, secrets taken out), ``fill_template``
  (``{{placeholders}}`` filled with scrubbed values).
- ``ToolLike``: what a strategy takes as a tool (a ``Tool``, a function, a LangChain tool).

The rest comes from ``llmcompiler`` itself: ``Executor``, ``Limits``, ``RunResult``,
``TaskRecord``, ``RoundTimings``, ``Usage``, ``ModelRequest``, ``Message``, ``ToolCall``,
the events (``RoundStarted``, ``JoinerDecided``, ...), the errors, the plan parser
(``parse_plan``) and the joiner's reply parser (``parse_join_reply``).

Example:
    A strategy that plans once and answers with its last task's result, no joiner:

    >>> from llmcompiler import END_OF_PLAN, Message, ModelRequest, RoundStarted, RunResult, tool
    >>> from llmcompiler.strategy import Run, Strategy, describe_tools, observation_text
    >>> from llmcompiler.testing import ScriptedLLM
    >>> class PlanOnce(Strategy):
    ...     async def arun(self, question: str, *, on_event=None) -> RunResult:
    ...         run = self.new_run(on_event)
    ...         return await run.guard(self._answer(run, question))
    ...     async def _answer(self, run: Run, question: str) -> RunResult:
    ...         run.emit(RoundStarted(round=1, feedback=None))
    ...         prompt = f"Tools:\\n{describe_tools(self.tools.values())}\\nQuestion: {question}"
    ...         request = ModelRequest(messages=(Message(role="user", content=prompt),), purpose="plan",
    ...                                stop=(END_OF_PLAN,), question=question)
    ...         outcome = await run.executor.run_round(run.stream_text(self.llm, request))
    ...         return run.result(answer=observation_text(outcome.records[-1]), rounds=1)
    >>> @tool
    ... def square(x: int) -> int:
    ...     '''Square a number.'''
    ...     return x * x
    >>> result = PlanOnce(llm=ScriptedLLM(["1. square(3)\\n2. square($1)"]), tools=[square]).run("3 squared?")
    >>> result.answer, [t.result for t in result.tasks], result.usage.calls
    ('81', [9, 81], 1)
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from llmcompiler._boundary import RunBoundary
from llmcompiler._errors import ModelError, ReplyCut, RunError, UserError
from llmcompiler._events import EventHandler, RunEvent
from llmcompiler._executor import CallRound, Executor
from llmcompiler._joiner import AnswerStream
from llmcompiler._limits import Limits, ToolLimits
from llmcompiler._otel import NO_PHASE, Attributes, Phase, run_tracer
from llmcompiler._prompts import describe_tools, observation_text
from llmcompiler._records import RoundTimings, RunResult, SpeculationSummary, TaskRecord
from llmcompiler._redact import scrub
from llmcompiler._speculation import Draft, ModelTrace, SpeculationLog
from llmcompiler._templates import fill as fill_template
from llmcompiler._text import one_line
from llmcompiler._tools import Tool, ToolLike, coerce_tools
from llmcompiler._types import ChatModel, ModelRequest, ToolCall, Truncated, Usage
from llmcompiler.models._pricing import add_cost
from llmcompiler.models._reading import model_events, model_name

__all__ = [
    # a strategy and its runs
    "Strategy",
    "Run",
    "ModelReply",
    "ReplyCut",
    "CallRound",
    "run_sync",
    # tracing (OpenTelemetry, when configured)
    "Phase",
    # the answer as it is written
    "AnswerStream",
    # speculative execution (``Executor.run_round``'s ``draft``)
    "Draft",
    "ModelTrace",
    "SpeculationLog",
    # prompt text
    "describe_tools",
    "observation_text",
    "fill_template",
    # tools
    "ToolLike",
]

T = TypeVar("T")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ModelReply:
    """One model call read whole (``Run.reply``).

    Attributes:
        text: the reply's text.
        calls: its native tool calls, in order (only for a request with ``native_tools``).
        model: the model's name (``ChatModel.model_name``), for messages.
        start: when the call was made (the event loop's clock, as ``RoundTimings``).
        first_chunk: when its first text or tool call arrived; ``None`` when none did.
        end: when the reply was complete.
    """

    text: str
    calls: tuple[ToolCall, ...]
    model: str
    start: float
    first_chunk: float | None
    end: float


class Run:
    """One run of a strategy: its executor, its model calls, its events and its boundary.

    Make it inside the run (it reads the running event loop's clock), use it for one
    question, and run the strategy's body through ``guard``. Every model call made through
    ``reply`` or ``stream_text`` adds its tokens to ``usage`` and its list-price cost to
    ``cost_usd``; ``result`` puts both in the ``RunResult``.

    Args:
        tools: the tools the run may call: a name → ``Tool`` mapping (``Strategy.tools``), or
            ``Tool``s, functions and LangChain tools.
        limits: run-wide and per-tool limits for the executor.
        on_event: the listeners, called with each ``RunEvent`` in order; ``None`` entries are
            skipped (pass ``[self.on_event, on_event]``). The first that raises ends the run
            (see ``guard``).
        name: the strategy's name, for error messages (``"ReAct"``).

    Attributes:
        executor: the run's ``Executor``: ``run_round`` for a streamed plan, ``run_tasks`` for
            parsed tasks, ``run_calls`` for a turn's native tool calls, ``call_round`` for native
            calls started as the turn streams. Its events reach the listeners.
        usage: tokens of every model call so far.
        cost_usd: their cost in USD at list price; ``None`` once a model's price is unknown.
        start: when the run began (the event loop's clock).
    """

    def __init__(
        self,
        tools: Mapping[str, Tool] | Iterable[ToolLike],
        *,
        limits: Limits | None = None,
        on_event: Iterable[EventHandler | None] = (),
        name: str = "this strategy",
    ) -> None:
        self._boundary = RunBoundary([handler for handler in on_event if handler is not None])
        self.name = name
        self.now = asyncio.get_running_loop().time  # the executor's clock: time.monotonic() on standard loops
        # OpenTelemetry spans, when a tracer provider is configured (else None, and no cost).
        self._otel = run_tracer(name, self.now)
        # With no listener and no tracing the executor skips building its events.
        sink: EventHandler | None = None
        if self._otel is not None:
            sink = self.emit
        elif self._boundary.listening:
            sink = self._boundary.emit
        self.executor = Executor(tools, limits=limits, on_event=sink)
        self.usage = Usage()
        self.cost_usd: float | None = 0.0
        self.start = self.now()

    @property
    def listening(self) -> bool:
        """Whether anyone listens: skip building events nobody reads."""
        return self._boundary.listening

    def emit(self, event: RunEvent) -> None:
        """Pass ``event`` to every listener. One that raises ends the run (see ``guard``);
        ``emit`` itself returns, and later events reach no one."""
        if self._otel is not None:
            self._otel.event(event)
        self._boundary.emit(event)

    def phase(self, name: str, attributes: Attributes | None = None) -> contextlib.AbstractContextManager[Phase]:
        """A block traced as its own OpenTelemetry span, child of the current round; the model
        calls made in it are its children (``LLMCompiler``'s ``llmcompiler.plan`` and
        ``llmcompiler.join``). Its ``Phase`` takes more attributes (``set``) and an earlier end
        (``ends_at``). When tracing is off it costs nothing and its ``Phase`` does nothing.

        Example:
            >>> async def plan(run: Run) -> None:  # doctest: +SKIP
            ...     with run.phase("my.plan", {"my.round": 1}) as phase:
            ...         reply = await run.reply(llm, request)
            ...         phase.set({"my.chars": len(reply.text)})
        """
        if self._otel is None:
            return contextlib.nullcontext(NO_PHASE)
        return self._otel.phase(name, attributes or {})

    def model_trace(self, model: str, request: ModelRequest) -> ModelTrace | None:
        """The OpenTelemetry span of a model call the strategy reads itself, not through
        ``reply`` or ``stream_text`` (a drafter's, through ``Draft(trace=run.model_trace)``):
        feed it ``text()`` and ``usage(...)`` as the stream goes, then ``end(...)``. ``None``
        when tracing is off."""
        return None if self._otel is None else self._otel.model_call(model, request)

    def records(self) -> list[TaskRecord]:
        """Every task record of the run so far, in task order."""
        records = self.executor.records
        return [records[i] for i in sorted(records)]

    async def guard(self, body: Coroutine[Any, Any, T]) -> T:
        """Run ``body`` (the strategy's run) to its end, inside the run's boundary.

        Out of it come only ``body``'s result, our errors, a listener's own exception,
        ``KeyboardInterrupt``, ``SystemExit`` and a cancellation of the caller: never an
        exception group. A ``RunError`` that carries no records leaves with the run's records
        so far in ``tasks``; any other exception of ``body`` (a bug) becomes a ``RunError``
        with the records, the original as ``__cause__``. A listener that raises cancels
        ``body`` (and the tool calls in flight); its exception leaves as itself, with the
        records in its ``tasks`` attribute. The executor's threads end with the run.
        """
        otel = self._otel
        if otel is not None:
            otel.start_run()
        result: T | None = None
        failure: BaseException | None = None
        try:
            result = await self._boundary.run(body, self.records)
            return result
        except RunError as exc:
            if not exc.tasks:
                exc.tasks = self.records()
            failure = exc
            raise
        except BaseException as exc:
            failure = exc
            raise
        finally:
            self.executor.close()
            if otel is not None:
                otel.end_run(failure, result)

    async def reply(
        self,
        llm: ChatModel,
        request: ModelRequest,
        *,
        step: str | None = None,
        on_call: Callable[[ToolCall], object] | None = None,
        on_text: Callable[[str], object] | None = None,
    ) -> ModelReply:
        """Call ``llm`` and read its whole reply: text, native tool calls and usage.

        Args:
            llm: the model.
            request: the call.
            step: the call in words, for errors (``"ReAct step 3"``; by default ``"the plan
                call"``, after the request's purpose).
            on_call: called with each native tool call the moment the model's stream delivers it
                complete, while the rest of the reply still streams (``CallRound.start`` starts
                it there and then; see ``Executor.call_round``). What it raises ends the reply
                and leaves ``reply`` as itself. The errors below can come after it was called:
                a stream that breaks, or is cut at the token limit, after some calls.
            on_text: called with each piece of the reply's text the moment it arrives, while the
                rest still streams (``LLMCompiler`` feeds an ``AnswerStream`` to send the answer
                as ``AnswerChunk`` events). What it raises ends the reply and leaves ``reply`` as
                itself. A reply that then fails (the errors below) was partly seen: whatever was
                shown of it is to be taken back.

        Raises:
            ModelError: the model raised (its exception is the ``__cause__``); it made a native
                tool call though the request offered none (``native_tools`` is false); or it cut
                the reply short at its token limit: a cut reply is never taken as whole (a cut
                ``Finish(`` would answer with half a sentence, a cut call run half its arguments).
        """
        name = model_name(llm)
        now = self.now
        start = now()
        first: float | None = None
        text: list[str] = []
        calls: list[ToolCall] = []
        cut: str | None = None
        span = None if self._otel is None else self._otel.model_call(name, request)
        try:
            async with contextlib.aclosing(model_events(llm, request)) as events:
                async for event in events:
                    if isinstance(event, str):
                        if event:
                            if first is None:
                                first = now()
                            text.append(event)
                            if on_text is not None:
                                on_text(event)
                    elif isinstance(event, ToolCall):
                        if not request.native_tools:
                            raise self._text_only(name, request, event)
                        if first is None:
                            first = now()
                        calls.append(event)
                        if on_call is not None:
                            on_call(event)
                    elif isinstance(event, Usage):
                        self._add(name, event)
                        if span is not None:
                            span.usage(event)
                    elif isinstance(event, Truncated):
                        cut = event.reason  # read on: a usage report may follow
        except BaseException as exc:
            if span is not None:
                span.first = first
                span.end(error=exc)
            raise
        if span is not None:
            span.first = first
            span.end(cut=cut, calls=len(calls), error=None if cut is None else ModelError(name, f"cut short ({cut})"))
        if cut is not None:
            handed = " (handed on as they arrived)" if on_call is not None else ""
            wrote = f"{len(calls)} tool call(s){handed} and text " if calls else ""
            step = step or f"the {request.purpose} call"
            raise ModelError(
                name,
                f"the reply to {step} was cut short by the model's token limit ({cut}) before it ended; "
                f"raise the model's max_tokens. It wrote {wrote}{one_line(scrub(''.join(text)), 200)!r}",
            )
        return ModelReply(text="".join(text), calls=tuple(calls), model=name, start=start, first_chunk=first, end=now())

    async def stream_text(self, llm: ChatModel, request: ModelRequest) -> AsyncGenerator[str, None]:
        """Call ``llm`` and yield its reply's text as it streams (for ``Executor.run_round``),
        summing its usage on the side. Iterate inside ``contextlib.aclosing``.

        Raises:
            ReplyCut: after the last chunk, when the model cut the reply short at its token
                limit (``Executor.run_round`` reads it as a plan that ended there).
            ModelError: the model raised (its exception is the ``__cause__``) or made a native
                tool call.
        """
        name = model_name(llm)
        cut: str | None = None
        span = None if self._otel is None else self._otel.model_call(name, request)
        try:
            async with contextlib.aclosing(model_events(llm, request)) as events:
                async for event in events:
                    if isinstance(event, str):
                        if event:
                            if span is not None:
                                span.text()
                            yield event
                    elif isinstance(event, Usage):
                        self._add(name, event)
                        if span is not None:
                            span.usage(event)
                    elif isinstance(event, Truncated):
                        cut = event.reason  # read on: a usage report may follow
                    elif isinstance(event, ToolCall):
                        raise self._text_only(name, request, event)
        except BaseException as exc:
            if span is not None:
                span.end(error=exc)
            raise
        if span is not None:
            span.end(cut=cut)
        if cut is not None:
            raise ReplyCut(cut)

    def _add(self, model: str, usage: Usage) -> None:
        self.usage += usage
        self.cost_usd = add_cost(self.cost_usd, model, usage)

    def _text_only(self, model: str, request: ModelRequest, call: ToolCall) -> ModelError:
        return ModelError(
            model,
            f"the {request.purpose} call answered with a native tool call ({call.name}); {self.name} needs text",
        )

    def result(
        self,
        *,
        answer: str,
        rounds: int,
        tasks: Sequence[TaskRecord] | None = None,
        round_timings: Sequence[RoundTimings] = (),
        plan_errors: Sequence[str] = (),
        thoughts: Sequence[str] = (),
        speculation: SpeculationSummary | None = None,
    ) -> RunResult:
        """The run's ``RunResult``, ending now, with the run's usage and cost.

        Args:
            answer: the answer.
            rounds: how many rounds (plans, or model turns) the run took.
            tasks: the task records to report; by default every record of the run, in task order.
            round_timings: the phases of each round.
            plan_errors: model output that was no step (with the reason).
            thoughts: the model's reasoning worth keeping.
            speculation: what speculative execution did (a ``SpeculationLog``'s summary), if any.
        """
        return RunResult(
            answer=answer,
            tasks=self.records() if tasks is None else list(tasks),
            rounds=rounds,
            usage=self.usage,
            start=self.start,
            end=self.now(),
            round_timings=list(round_timings),
            plan_errors=list(plan_errors),
            thoughts=list(thoughts),
            cost_usd=self.cost_usd,
            speculation=speculation,
        )


class Strategy(abc.ABC):
    """The base of a strategy: its model, tools, limits and listeners; ``run`` from ``arun``.

    A subclass writes ``arun``: it makes a ``Run`` with ``new_run`` and runs its body through
    ``Run.guard``. ``LLMCompiler``, ``ReActAgent`` and ``ParallelToolCallAgent`` are ones.

    Args:
        llm: the model.
        tools: ``Tool``s, plain functions or LangChain tools.
        max_concurrency: tool calls running at once across all tools.
        timeout: seconds a tool call may take when neither its tool's own limits nor its override
            in ``tool_limits`` give a timeout.
        tool_limits: overrides of the tools' own limits by tool name; each changes only the fields
            its ``ToolLimits`` was given (``{"search": ToolLimits(timeout=5)}`` keeps search's
            retries and batching). A name that is not a tool is a ``UserError``.
        on_event: called with each ``RunEvent`` of every run. A handler that raises ends the
            run: its exception leaves ``arun`` as itself, with the task records finished by
            then in its ``tasks`` attribute.

    Attributes:
        llm: the model.
        tools: the tools by name.
        limits: the run-wide and per-tool limits every run's executor keeps.
        on_event: the strategy's own listener.

    Raises:
        UserError: no tools, two tools with one name, a bad limit, or ``tool_limits`` naming no tool.
    """

    def __init__(
        self,
        *,
        llm: ChatModel,
        tools: Iterable[ToolLike],
        max_concurrency: int | None = None,
        timeout: float | None = None,
        tool_limits: Mapping[str, ToolLimits] | None = None,
        on_event: EventHandler | None = None,
    ) -> None:
        self.llm = llm
        self.tools: dict[str, Tool] = coerce_tools(tools)
        if not self.tools:
            raise UserError(f"{type(self).__name__} needs at least one tool")
        self.limits = Limits(max_concurrency=max_concurrency, timeout=timeout, tool_limits=dict(tool_limits or {}))
        self.limits.check_tools(self.tools)
        self.on_event = on_event

    @abc.abstractmethod
    async def arun(self, question: str, *, on_event: EventHandler | None = None) -> RunResult:
        """Answer ``question``.

        Args:
            question: what to answer.
            on_event: called with each ``RunEvent`` of this run (besides the strategy's own handler).
        """

    def run(self, question: str) -> RunResult:
        """Answer ``question`` from sync code (starts an event loop; see ``run_sync``).

        Raises:
            UserError: called from inside a running event loop (use ``await arun``).
        """
        return run_sync(self.arun(question))

    def new_run(self, on_event: EventHandler | None = None) -> Run:
        """A ``Run`` for one question: this strategy's tools and limits, its own listener and ``on_event``."""
        return Run(self.tools, limits=self.limits, on_event=(self.on_event, on_event), name=type(self).__name__)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` (a strategy's ``arun(question)``) to its end from sync code, in a new event loop.

    Raises:
        UserError: called from inside a running event loop (``await`` the coroutine there);
            ``coro`` is closed unrun.

    Example:
        >>> async def answer() -> str:
        ...     return "9"
        >>> run_sync(answer())
        '9'
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    coro.close()
    raise UserError("run() was called inside an event loop: use 'await agent.arun(question)'")
