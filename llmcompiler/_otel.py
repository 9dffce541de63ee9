"""OpenTelemetry spans of a run: off, at no cost, unless a tracer provider is configured.

With the ``otel`` extra installed and a tracer provider set (the SDK's ``TracerProvider``, or any
vendor's), every run of every strategy (``LLMCompiler``, the baselines, one of your own on
``strategy.Run``) emits:

- ``invoke_agent {strategy}``: the run (``gen_ai.operation.name = "invoke_agent"``,
  ``gen_ai.agent.name``, the run's tokens and cost, its rounds and tasks; status ``ERROR`` with
  the error when the run raises). It is the current span while the run goes on, so spans that
  tools make themselves nest under it. Its parent is whatever span was current at the call.
- ``llmcompiler.round``: each round (a plan-execute-join round, or a baseline's model turn),
  child of the run; ``llmcompiler.round``, a replan's feedback, the joiner's action.
- ``llmcompiler.plan`` and ``llmcompiler.join``: the plan stream (to the plan's end) and the
  joiner, children of their round (``Run.phase``).
- ``chat {model}``: each model call made through ``Run.reply`` or ``Run.stream_text``, child
  of the phase or round it serves, after the GenAI semantic conventions:
  ``gen_ai.operation.name = "chat"``, ``gen_ai.request.model``, ``gen_ai.provider.name``
  (``openai``, ``anthropic``; left out where unknown), ``gen_ai.usage.input_tokens``,
  ``gen_ai.usage.output_tokens``, ``gen_ai.usage.cache_read.input_tokens`` and
  ``gen_ai.usage.cache_creation.input_tokens`` when the provider reports them,
  ``gen_ai.response.finish_reasons``; status ``ERROR`` when the call fails.
- ``execute_tool {tool}``: each task, child of its round (``gen_ai.operation.name =
  "execute_tool"``, ``gen_ai.tool.name``, ``gen_ai.tool.call.id``; ``llmcompiler.task.*``: the
  number, state, attempts, an arguments summary, the error, a speculative hit), status
  ``ERROR`` with the error for a failed or skipped task; and each speculative call a drafter
  started (``llmcompiler.speculative = true`` and how it ended).

No message content is recorded (prompts, replies, the question, the answer). What is recorded
(arguments, errors, feedback) is scrubbed of secrets by ``llmcompiler._redact.scrub``, a value
under a secret's name (``api_key``, ``password``, ...) replaced whole.

Times: every span's start and end come from the run's clock (the event loop's, as
``RoundTimings``), turned into epoch nanoseconds by one offset taken when the run starts, so
spans made after the fact (a task's, from its record) line up with spans made live.

Cost when off: ``run_tracer`` looks ``opentelemetry.trace`` up in ``sys.modules`` (never
imports it: a configured provider means it was imported) and asks for the global provider; the
default ``ProxyTracerProvider`` or a ``NoOpTracerProvider`` means off, and no span, attribute or
event for the tracer is ever built. A run span that does not record (sampled out) turns the rest
of that run's spans off too. A failure inside tracing is logged once and turns tracing off for
the run; it never fails the run.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from llmcompiler._events import JoinerDecided, RoundStarted, RunEvent, SpeculationEnded, TaskFinished
from llmcompiler._records import RunResult, SpeculativeCall, TaskRecord
from llmcompiler._redact import REDACTED, is_secret_entry, scrubber
from llmcompiler._text import describe, one_line, safe_text
from llmcompiler._types import ModelRequest, Usage

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

__all__ = ["ModelSpan", "Phase", "RunTracer", "run_tracer"]

AttributeValue = str | bool | int | float | Sequence[str] | Sequence[int]
Attributes = Mapping[str, AttributeValue]

P = ParamSpec("P")
R = TypeVar("R")

_log = logging.getLogger("llmcompiler.otel")
_PROVIDERS = {"openai": "openai", "anthropic": "anthropic"}  # our adapter prefix -> gen_ai.provider.name
_ARGS_CHARS = 500
_ERROR_CHARS = 1000
_cached: tuple[object, Tracer] | None = None


def run_tracer(strategy: str, now: Callable[[], float]) -> RunTracer | None:
    """A tracer for one run, or ``None`` when tracing is off (the cheap check the module describes).

    Args:
        strategy: the strategy's name (``"LLMCompiler"``), for the run span.
        now: the run's clock.
    """
    trace: Any = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    global _cached
    try:
        provider = trace.get_tracer_provider()
        if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
            return None
        if _cached is None or _cached[0] is not provider:
            _cached = (provider, provider.get_tracer("llmcompiler"))
        return RunTracer(_cached[1], strategy, now)
    except Exception as exc:  # a broken provider: no tracing, never a failed run
        _broken(exc)
        return None


_warned = False


def _broken(exc: BaseException) -> None:
    global _warned
    if not _warned:
        _warned = True
        _log.warning("OpenTelemetry tracing failed and is off for this run: %s", describe(exc))


def _safe(method: Callable[P, R | None]) -> Callable[P, R | None]:
    """A tracer method that never raises: a failure is logged once and turns the tracer off."""

    @functools.wraps(method)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R | None:
        self = args[0]
        assert isinstance(self, RunTracer | ModelSpan | Phase)
        if self.off:
            return None
        try:
            return method(*args, **kwargs)
        except Exception as exc:
            self.off = True
            _broken(exc)
            return None

    return guarded


class Phase:
    """A part of a round traced as its own span (``Run.phase``): the plan stream, the joiner.

    ``set`` adds attributes; ``ends_at`` sets when it ended (by default, when its block ends).
    When tracing is off it is ``NO_PHASE``, whose methods do nothing.
    """

    def __init__(self, tracer: RunTracer | None = None, span: Span | None = None) -> None:
        self.tracer = tracer
        self.span = span
        self.end: float | None = None
        self.off = span is None

    @_safe
    def set(self, attributes: Attributes) -> None:
        """Add ``attributes`` to the span."""
        assert self.span is not None
        self.span.set_attributes(attributes)

    def ends_at(self, time: float) -> None:
        """Say when the phase ended (the run's clock), if before its block's end."""
        self.end = time


NO_PHASE = Phase()


class ModelSpan:
    """One model call's ``chat {model}`` span, fed as its stream is read."""

    def __init__(self, tracer: RunTracer, span: Span) -> None:
        self.tracer = tracer
        self.span = span
        self.start = tracer.now()
        self.first: float | None = None
        self.total = Usage()
        self.off = False
        self.ended = False

    def text(self) -> None:
        """A piece of the reply arrived."""
        if self.first is None:
            self.first = self.tracer.now()

    def usage(self, usage: Usage) -> None:
        """The model reported usage."""
        self.total += usage

    @_safe
    def end(self, *, cut: str | None = None, calls: int = 0, error: BaseException | None = None) -> None:
        """The call ended: read whole (``cut`` when at the token limit), closed early, or failed."""
        if self.ended:
            return
        self.ended = True
        span, total = self.span, self.total
        attributes: dict[str, AttributeValue] = {
            "gen_ai.usage.input_tokens": total.prompt_tokens,
            "gen_ai.usage.output_tokens": total.completion_tokens,
        }
        if total.cached_tokens:
            attributes["gen_ai.usage.cache_read.input_tokens"] = total.cached_tokens
        if total.cache_write_tokens:
            attributes["gen_ai.usage.cache_creation.input_tokens"] = total.cache_write_tokens
        if self.first is not None:
            attributes["llmcompiler.time_to_first_chunk_s"] = self.first - self.start
        if cut is not None or error is None:
            attributes["gen_ai.response.finish_reasons"] = [cut or ("tool_calls" if calls else "stop")]
        if isinstance(error, GeneratorExit):
            attributes["llmcompiler.closed_early"] = True  # the reader had read enough (a plan's end)
            error = None
        span.set_attributes(attributes)
        if error is not None:
            self.tracer.failed(span, error)
        span.end(end_time=self.tracer.ns(self.tracer.now()))


class RunTracer:
    """One run's spans (see the module). Its methods never raise."""

    def __init__(self, tracer: Tracer, strategy: str, now: Callable[[], float]) -> None:
        self.tracer = tracer
        self.strategy = strategy
        self.now = now
        self.offset = time.time_ns() - round(now() * 1e9)
        self.scrub = scrubber()
        self.off = False
        self.run: Span | None = None
        self.rounds: dict[int, Span] = {}
        self.round: Span | None = None
        self.phase_span: Span | None = None
        self.token: object = None

    def ns(self, t: float) -> int:
        """The run clock's ``t`` in epoch nanoseconds."""
        return self.offset + round(t * 1e9)

    def text(self, value: str, limit: int = _ERROR_CHARS) -> str:
        """``value`` scrubbed of secrets, on one line, cut to ``limit``."""
        return one_line(self.scrub(value[: limit * 8]), limit)

    def failed(self, span: Span, error: BaseException | str, kind: str | None = None) -> None:
        """Mark ``span`` failed with ``error`` (scrubbed)."""
        from opentelemetry.trace import Status, StatusCode

        message = self.text(error if isinstance(error, str) else describe(error))
        span.set_attribute(
            "error.type", kind or (type(error).__qualname__ if isinstance(error, BaseException) else "error")
        )
        span.set_status(Status(StatusCode.ERROR, message))

    def _start(
        self, name: str, parent: Span | None, attributes: Attributes, start: float | None = None, **kw: Any
    ) -> Span:
        from opentelemetry import trace

        context = None if parent is None else trace.set_span_in_context(parent)
        return self.tracer.start_span(
            name,
            context=context,
            attributes=attributes,
            start_time=self.ns(self.now() if start is None else start),
            **kw,
        )

    # -- the run

    @_safe
    def start_run(self) -> None:
        """The run begins: its span becomes the current one."""
        from opentelemetry import context, trace

        span = self.tracer.start_span(
            f"invoke_agent {self.strategy}",
            attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": self.strategy},
            start_time=self.ns(self.now()),
        )
        self.run = span
        if not span.is_recording():
            self.off = True  # sampled out: nothing of this run is recorded
            span.end()
            return
        self.token = context.attach(trace.set_span_in_context(span))

    @_safe
    def end_run(self, error: BaseException | None, result: object) -> None:
        """The run ended with ``result`` or ``error``."""
        from opentelemetry import context

        span = self.run
        assert span is not None
        end = self.ns(self.now())
        self._end_round(end)
        if isinstance(result, RunResult):
            attributes: dict[str, AttributeValue] = {
                "gen_ai.usage.input_tokens": result.usage.prompt_tokens,
                "gen_ai.usage.output_tokens": result.usage.completion_tokens,
                "llmcompiler.rounds": result.rounds,
                "llmcompiler.tasks": len(result.tasks),
            }
            if result.cost_usd is not None:
                attributes["llmcompiler.cost_usd"] = result.cost_usd
            span.set_attributes(attributes)
        if error is not None:
            self.failed(span, error)
        span.end(end_time=end)
        if self.token is not None:
            token, self.token = self.token, None
            context.detach(token)  # type: ignore[arg-type]

    # -- events

    @_safe
    def event(self, event: RunEvent) -> None:
        """A run event: rounds begin, tasks and speculative calls end."""
        if self.run is None:
            return
        if isinstance(event, TaskFinished):
            if event.record.tool != "join":
                self._task(event.record)
        elif isinstance(event, RoundStarted):
            now = self.now()
            self._end_round(self.ns(now))
            attributes: dict[str, AttributeValue] = {"llmcompiler.round": event.round}
            if event.feedback is not None:
                attributes["llmcompiler.replan.feedback"] = self.text(event.feedback)
            self.round = self.rounds[event.round] = self._start("llmcompiler.round", self.run, attributes, now)
        elif isinstance(event, SpeculationEnded):
            self._speculative(event.call)
        elif isinstance(event, JoinerDecided) and self.round is not None:
            self.round.set_attribute("llmcompiler.join.action", event.action)

    def _end_round(self, end: int) -> None:
        if self.round is not None:
            span, self.round = self.round, None
            span.end(end_time=end)

    def _parent(self, round: int) -> Span | None:
        return self.rounds.get(round) or self.run

    def _args(self, args: Mapping[str, Any]) -> str:
        return one_line(self.scrub(safe_text(_redacted(args), _ARGS_CHARS * 8)), _ARGS_CHARS)

    def _task(self, record: TaskRecord) -> None:
        from opentelemetry.trace import SpanKind

        start = record.start if record.start is not None else self.now()
        end = record.end if record.end is not None else start
        attributes: dict[str, AttributeValue] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": record.tool,
            "gen_ai.tool.type": "function",
            "gen_ai.tool.call.id": str(record.idx),
            "llmcompiler.task.idx": record.idx,
            "llmcompiler.task.round": record.round,
            "llmcompiler.task.state": record.state,
            "llmcompiler.task.attempts": record.attempts,
            "llmcompiler.task.args": self._args(record.args),
            "llmcompiler.task.deps": sorted(record.deps),
        }
        if record.cached:
            attributes["llmcompiler.task.cached"] = True
        if record.batch_size:
            attributes["llmcompiler.task.batch_size"] = record.batch_size
        hit = record.speculative
        if hit is not None:
            attributes["llmcompiler.speculative.hit"] = True
            attributes["llmcompiler.speculative.draft"] = hit.draft
            attributes["llmcompiler.speculative.saved_s"] = hit.saved_s
            attributes["llmcompiler.speculative.joined"] = hit.joined
        if record.error is not None:
            attributes["llmcompiler.task.error"] = self.text(record.error)
        span = self._start(
            f"execute_tool {record.tool}", self._parent(record.round), attributes, start, kind=SpanKind.INTERNAL
        )
        if record.error is not None:
            self.failed(span, record.error, record.state)
        span.end(end_time=self.ns(end))

    def _speculative(self, call: SpeculativeCall) -> None:
        attributes: dict[str, AttributeValue] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": call.tool,
            "gen_ai.tool.type": "function",
            "llmcompiler.speculative": True,
            "llmcompiler.speculative.state": call.state,
            "llmcompiler.speculative.draft": call.draft,
            "llmcompiler.task.round": call.round,
            "llmcompiler.task.args": self._args(call.args),
        }
        if call.adopted_by is not None:
            attributes["llmcompiler.speculative.adopted_by"] = call.adopted_by
        if call.error is not None:
            attributes["llmcompiler.task.error"] = self.text(call.error)
        span = self._start(f"execute_tool {call.tool}", self._parent(call.round), attributes, call.start)
        if call.state == "failed":
            self.failed(span, call.error or "failed", "failed")
        span.end(end_time=self.ns(call.end))

    # -- phases and model calls

    @contextlib.contextmanager
    def phase(self, name: str, attributes: Attributes) -> Iterator[Phase]:
        """A span for a part of the current round, the parent of the model calls made in it."""
        span = None if self.off or self.run is None else self._open(name, attributes)
        if span is None:
            yield NO_PHASE
            return
        outer, self.phase_span = self.phase_span, span
        phase = Phase(self, span)
        try:
            yield phase
        except BaseException as exc:
            self._close(span, exc, None)
            raise
        else:
            self._close(span, None, phase.end)
        finally:
            self.phase_span = outer

    @_safe
    def _open(self, name: str, attributes: Attributes) -> Span:
        return self._start(name, self.round or self.run, attributes)

    @_safe
    def _close(self, span: Span, error: BaseException | None, end: float | None) -> None:
        if error is not None:
            self.failed(span, error)
        span.end(end_time=self.ns(self.now() if end is None else end))

    @_safe
    def model_call(self, model: str, request: ModelRequest) -> ModelSpan | None:
        """The span of a model call about to be made, or ``None`` when tracing is off."""
        from opentelemetry.trace import SpanKind

        if self.run is None:
            return None
        provider, sep, bare = model.partition(":")
        bare = bare if sep else model
        attributes: dict[str, AttributeValue] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": bare,
            "llmcompiler.model": model,
            "llmcompiler.purpose": str(request.purpose),
        }
        if sep and provider in _PROVIDERS:
            attributes["gen_ai.provider.name"] = _PROVIDERS[provider]
        if request.stop:
            attributes["gen_ai.request.stop_sequences"] = list(request.stop)
        parent = self.phase_span or self.round or self.run
        return ModelSpan(self, self._start(f"chat {bare}", parent, attributes, kind=SpanKind.CLIENT))


def _redacted(value: Any, depth: int = 0) -> Any:
    """``value`` with every mapping value under a secret's name replaced by ``REDACTED``."""
    if depth > 20:
        return "…"
    if isinstance(value, Mapping):
        return {k: REDACTED if is_secret_entry(k, v) else _redacted(v, depth + 1) for k, v in list(value.items())[:200]}
    if isinstance(value, list | tuple):
        return [_redacted(v, depth + 1) for v in value[:200]]
    return value
