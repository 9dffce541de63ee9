"""OpenTelemetry spans of a run (llmcompiler._otel), read back from the SDK's in-memory exporter."""

from __future__ import annotations

import asyncio
import builtins
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import StatusCode

from llmcompiler import LLMCompiler, ModelError, ModelRequest, RunResult, Usage, tool
from llmcompiler._otel import RunTracer, run_tracer
from llmcompiler.models import ModelEvent
from llmcompiler.testing import ScriptedLLM, run_virtual
from planners import ParallelToolCallAgent, ReActAgent

SECRET_KEY = "sk-proj-Zq81abcdefghijklmnopqrstuv"
SECRET_PASSWORD = "hunter2-correct-horse"


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """A configured SDK tracer provider (for this test only) whose spans land in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    yield exporter
    provider.shutdown()


@tool
async def lookup(key: str, api_key: str = "") -> str:
    """Look a value up.

    Args:
        key: what to look up.
        api_key: a credential.
    """
    await asyncio.sleep(1.0)
    if key == "bad":
        raise ValueError(f"no entry for {key!r} (api_key={api_key})")
    return f"value of {key}"


class Model:
    """A model named like OpenAI's that reports usage; the joiner's reply may fail."""

    def __init__(self, plan: str, join: str | BaseException = "Thought: ok.\nAction: Finish(done)") -> None:
        self.plan = plan
        self.join = join

    @property
    def model_name(self) -> str:
        return "openai:gpt-4o"

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        await asyncio.sleep(0.5)
        reply = self.plan if request.purpose == "plan" else self.join
        if isinstance(reply, BaseException):
            raise reply
        for line in reply.splitlines(keepends=True):
            yield line
            await asyncio.sleep(0.1)
        yield Usage(prompt_tokens=120, completion_tokens=30, calls=1)


PLAN = f'1. lookup("a")\n2. lookup("bad", api_key="{SECRET_PASSWORD}")\n3. lookup("{SECRET_KEY}")\n4. join()'


def by_name(finished: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in finished if s.name == name]


def parent_of(span: ReadableSpan, finished: tuple[ReadableSpan, ...]) -> ReadableSpan | None:
    if span.parent is None:
        return None
    return next(s for s in finished if s.context is not None and s.context.span_id == span.parent.span_id)


def test_a_run_is_a_tree_of_spans(spans: InMemorySpanExporter) -> None:
    result = run_virtual(lambda: LLMCompiler(llm=Model(PLAN), tools=[lookup]).arun("q"))
    assert result.answer == "done"
    finished = spans.get_finished_spans()
    (run,) = by_name(finished, "invoke_agent LLMCompiler")
    assert run.parent is None
    assert run.attributes is not None
    assert run.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert run.attributes["gen_ai.usage.input_tokens"] == 240  # plan and join calls
    assert run.attributes["llmcompiler.tasks"] == 4
    (round_,) = by_name(finished, "llmcompiler.round")
    assert parent_of(round_, finished) is run
    (plan,) = by_name(finished, "llmcompiler.plan")
    (join,) = by_name(finished, "llmcompiler.join")
    assert parent_of(plan, finished) is round_ and parent_of(join, finished) is round_
    chats = by_name(finished, "chat gpt-4o")
    assert [parent_of(c, finished) for c in chats] == [plan, join]
    tasks = by_name(finished, "execute_tool lookup")
    assert len(tasks) == 3
    assert all(parent_of(t, finished) is round_ for t in tasks)
    # Every span lies within the run's, on one clock.
    assert run.start_time is not None and run.end_time is not None
    for span in finished:
        assert span.start_time is not None and span.end_time is not None
        assert run.start_time <= span.start_time <= span.end_time <= run.end_time, span.name
    # The plan span is the plan stream's: it ends before the last task does.
    assert plan.end_time is not None and max(t.end_time or 0 for t in tasks) > plan.end_time
    # The tasks' times are their records' (one second each, on the virtual clock).
    assert all((t.end_time or 0) - (t.start_time or 0) == pytest.approx(1e9, rel=1e-6) for t in tasks)


def test_model_calls_follow_the_genai_conventions(spans: InMemorySpanExporter) -> None:
    run_virtual(lambda: LLMCompiler(llm=Model(PLAN), tools=[lookup]).arun("q"))
    plan_call, join_call = by_name(spans.get_finished_spans(), "chat gpt-4o")
    for call, purpose in ((plan_call, "plan"), (join_call, "join")):
        attributes = dict(call.attributes or {})
        assert call.kind == trace.SpanKind.CLIENT
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.request.model"] == "gpt-4o"
        assert attributes["gen_ai.provider.name"] == "openai"
        assert attributes["gen_ai.usage.input_tokens"] == 120
        assert attributes["gen_ai.usage.output_tokens"] == 30
        assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
        assert attributes["llmcompiler.purpose"] == purpose
        assert attributes["llmcompiler.time_to_first_chunk_s"] == pytest.approx(0.5)


def test_a_failed_task_has_status_error_with_its_error(spans: InMemorySpanExporter) -> None:
    run_virtual(lambda: LLMCompiler(llm=Model(PLAN), tools=[lookup]).arun("q"))
    tasks = {
        (s.attributes or {})["llmcompiler.task.idx"]: s
        for s in by_name(spans.get_finished_spans(), "execute_tool lookup")
    }
    ok, bad = tasks[1], tasks[2]
    assert ok.status.status_code == StatusCode.UNSET
    assert (ok.attributes or {})["llmcompiler.task.state"] == "done"
    assert (ok.attributes or {})["gen_ai.tool.name"] == "lookup"
    assert bad.status.status_code == StatusCode.ERROR
    assert "no entry for 'bad'" in (bad.status.description or "")
    assert (bad.attributes or {})["llmcompiler.task.state"] == "failed"
    assert (bad.attributes or {})["llmcompiler.task.attempts"] == 1
    assert (bad.attributes or {})["error.type"] == "failed"


def all_text(finished: tuple[ReadableSpan, ...]) -> str:
    """Every attribute, event and status of every span, as text."""
    parts: list[str] = []
    for span in finished:
        parts.append(span.name)
        parts.extend(f"{k}={v!r}" for k, v in (span.attributes or {}).items())
        parts.append(span.status.description or "")
        for event in span.events:
            parts.append(event.name)
            parts.extend(f"{k}={v!r}" for k, v in (event.attributes or {}).items())
    return "\n".join(parts)


def test_no_secret_reaches_a_span(spans: InMemorySpanExporter) -> None:
    failing = ConnectionError(f"refused: Authorization: Bearer {SECRET_KEY}")
    with pytest.raises(ModelError):
        run_virtual(lambda: LLMCompiler(llm=Model(PLAN, failing), tools=[lookup]).arun("q"))
    finished = spans.get_finished_spans()
    text = all_text(finished)
    assert SECRET_KEY not in text and SECRET_PASSWORD not in text
    assert "[redacted]" in text  # the arguments and the errors were there, scrubbed
    (run,) = by_name(finished, "invoke_agent LLMCompiler")
    assert run.status.status_code == StatusCode.ERROR
    (join_call,) = [
        s for s in by_name(finished, "chat gpt-4o") if (s.attributes or {})["llmcompiler.purpose"] == "join"
    ]
    assert join_call.status.status_code == StatusCode.ERROR
    (join,) = by_name(finished, "llmcompiler.join")
    assert join.status.status_code == StatusCode.ERROR


def test_baselines_get_run_round_model_and_tool_spans(spans: InMemorySpanExporter) -> None:
    react = ReActAgent(llm=ScriptedLLM(['Action: lookup("a")', "Action: Finish(value of a)"]), tools=[lookup])
    assert run_virtual(lambda: react.arun("q")).answer == "value of a"
    finished = spans.get_finished_spans()
    (run,) = by_name(finished, "invoke_agent ReActAgent")
    rounds = by_name(finished, "llmcompiler.round")
    assert len(rounds) == 2 and all(parent_of(r, finished) is run for r in rounds)
    chats = by_name(finished, "chat scripted")
    assert len(chats) == 2 and {parent_of(c, finished) for c in chats} == set(rounds)
    assert "gen_ai.provider.name" not in (chats[0].attributes or {})  # unknown for a test double
    (task,) = by_name(finished, "execute_tool lookup")
    assert parent_of(task, finished) is rounds[0]


def test_native_baseline_spans(spans: InMemorySpanExporter) -> None:
    from llmcompiler import ToolCall

    llm = ScriptedLLM([[ToolCall(name="lookup", args={"key": "a"})], "value of a"])
    agent = ParallelToolCallAgent(llm=llm, tools=[lookup])
    run_virtual(lambda: agent.arun("q"))
    finished = spans.get_finished_spans()
    (call,) = [
        s
        for s in by_name(finished, "chat scripted")
        if "tool_calls" in str((s.attributes or {}).get("gen_ai.response.finish_reasons"))
    ]
    assert call is not None
    assert len(by_name(finished, "execute_tool lookup")) == 1


def test_speculative_calls_and_hits_have_spans(spans: InMemorySpanExporter) -> None:
    @tool(speculative=True)
    async def search(q: str) -> str:
        """Search."""
        await asyncio.sleep(1.0)
        return f"result of {q}"

    plan = '1. search("alpha")\n2. search("beta")\n3. join()'
    planner = ScriptedLLM([plan, "Action: Finish(x)"], ttft=0.5, token_delay=0.05, name="planner")
    drafter = ScriptedLLM([plan], ttft=0.01, token_delay=0.001, name="drafter")
    result: RunResult = run_virtual(lambda: LLMCompiler(llm=planner, tools=[search], drafter=drafter).arun("q"))
    assert result.speculation is not None and result.speculation.hits == 2
    searches = by_name(spans.get_finished_spans(), "execute_tool search")
    speculative = [s for s in searches if (s.attributes or {}).get("llmcompiler.speculative")]
    hits = [s for s in searches if (s.attributes or {}).get("llmcompiler.speculative.hit")]
    assert len(speculative) == 2 and len(hits) == 2
    assert {(s.attributes or {})["llmcompiler.speculative.state"] for s in speculative} == {"hit"}
    # The drafter's own model call is a GenAI span too, under the plan phase, with its tokens.
    finished = spans.get_finished_spans()
    (draft,) = by_name(finished, "chat drafter")
    (plan_phase,) = by_name(finished, "llmcompiler.plan")
    assert draft.parent is not None and draft.parent.span_id == plan_phase.context.span_id
    attributes = draft.attributes or {}
    assert attributes["llmcompiler.purpose"] == "plan"
    assert attributes["gen_ai.usage.output_tokens"] == result.speculation.usage.completion_tokens > 0


def test_a_drafter_closed_at_the_plans_end_or_failing_ends_its_span(spans: InMemorySpanExporter) -> None:
    class Stalling:
        model_name = "stalling"

        async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
            yield '1. lookup("a")\n'
            await asyncio.Event().wait()
            yield "never"

    planner = Model('1. lookup("a")\n2. join()')
    run_virtual(lambda: LLMCompiler(llm=planner, tools=[lookup], drafter=Stalling()).arun("q"))
    (draft,) = by_name(spans.get_finished_spans(), "chat stalling")
    assert (draft.attributes or {}).get("llmcompiler.closed_early") is True
    assert draft.status.status_code != StatusCode.ERROR

    spans.clear()
    failing = ScriptedLLM([RuntimeError(f"drafter down (key {SECRET_KEY})")], name="failing")
    result = run_virtual(lambda: LLMCompiler(llm=Model(PLAN), tools=[lookup], drafter=failing).arun("q"))
    assert result.speculation is not None and result.speculation.errors
    (draft,) = by_name(spans.get_finished_spans(), "chat failing")
    assert draft.status.status_code == StatusCode.ERROR
    assert SECRET_KEY not in str(draft.status.description) + str(draft.attributes) + str(draft.events)


def test_nothing_without_a_configured_provider() -> None:
    """The default global provider is a ProxyTracerProvider: no tracer, no span objects."""
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    assert run_tracer("x", lambda: 0.0) is None


def test_no_tracer_object_is_built_when_off(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a tracer was built with tracing off")

    monkeypatch.setattr(RunTracer, "__init__", refuse)
    result = run_virtual(lambda: LLMCompiler(llm=Model(PLAN), tools=[lookup]).arun("q"))
    assert result.answer == "done"


def test_a_noop_provider_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: trace.NoOpTracerProvider())
    assert run_tracer("x", lambda: 0.0) is None


def test_opentelemetry_not_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without opentelemetry (simulated: its modules gone, importing it fails) runs work, untraced."""
    for name in [m for m in sys.modules if m == "opentelemetry" or m.startswith("opentelemetry.")]:
        monkeypatch.delitem(sys.modules, name)
    real_import = builtins.__import__

    def no_otel(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_otel)
    assert run_tracer("x", lambda: 0.0) is None
    result = run_virtual(lambda: LLMCompiler(llm=Model(PLAN), tools=[lookup]).arun("q"))
    assert result.answer == "done"


def test_a_sampled_out_run_records_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    result = run_virtual(lambda: LLMCompiler(llm=Model(PLAN), tools=[lookup]).arun("q"))
    assert result.answer == "done"
    assert exporter.get_finished_spans() == ()


def test_a_broken_tracer_never_fails_the_run(spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: RunTracer, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("exporter bug")

    monkeypatch.setattr(RunTracer, "_task", broken)
    result = run_virtual(lambda: LLMCompiler(llm=Model(PLAN), tools=[lookup]).arun("q"))
    assert result.answer == "done"


def test_the_run_span_is_current_while_it_runs(spans: InMemorySpanExporter) -> None:
    """A tool's own spans nest under the run."""
    seen: list[int] = []

    @tool
    async def probe() -> str:
        """Probe."""
        seen.append(trace.get_current_span().get_span_context().span_id)
        return "ok"

    llm = ScriptedLLM(["1. probe()\n2. join()", "Action: Finish(ok)"])
    run_virtual(lambda: LLMCompiler(llm=llm, tools=[probe]).arun("q"))
    (run,) = by_name(spans.get_finished_spans(), "invoke_agent LLMCompiler")
    assert run.context is not None and seen == [run.context.span_id]


def test_a_cancelled_run_ends_every_span_it_started(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cancelled mid-task (the plan streamed, a tool hanging, the joiner not called yet) or
    mid-reply (the joiner's answer half written): no span is left open, and the run's says why."""

    class Open(SpanProcessor):
        def __init__(self) -> None:
            self.open: dict[int, str] = {}

        def on_start(self, span: Any, parent_context: Any = None) -> None:
            self.open[span.context.span_id] = span.name

        def on_end(self, span: ReadableSpan) -> None:
            assert span.context is not None
            self.open.pop(span.context.span_id, None)

    opened = Open()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(opened)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)

    reached = asyncio.Event()

    @tool
    async def hang() -> str:
        """Hang."""
        reached.set()
        await asyncio.Event().wait()
        return "never"

    class HalfAnswer:
        model_name = "openai:gpt-4o"

        async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
            if request.purpose == "plan":
                yield "1. probe()\n2. join()"
                return
            yield "Action: Finish(half an ans"
            reached.set()
            await asyncio.Event().wait()

    @tool
    def probe() -> str:
        """Probe."""
        return "ok"

    async def cancelled(agent: LLMCompiler) -> None:
        reached.clear()
        run = asyncio.create_task(agent.arun("q", on_event=lambda _: None))
        await reached.wait()
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run

    async def both() -> None:
        await cancelled(LLMCompiler(llm=ScriptedLLM(["1. hang()\n2. join()"]), tools=[hang]))
        await cancelled(LLMCompiler(llm=HalfAnswer(), tools=[probe]))

    asyncio.run(both())
    assert opened.open == {}
    finished = exporter.get_finished_spans()
    runs = by_name(finished, "invoke_agent LLMCompiler")
    assert len(runs) == 2 and all(r.status.status_code == StatusCode.ERROR for r in runs)
    assert {s.name for s in finished} >= {"llmcompiler.plan", "llmcompiler.join", "chat gpt-4o"}


def test_cached_prompt_tokens_are_reported_when_the_provider_gives_them(spans: InMemorySpanExporter) -> None:
    class Cached(Model):
        async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
            yield self.plan if request.purpose == "plan" else "Action: Finish(done)"
            usage = Usage(prompt_tokens=2000, completion_tokens=9, calls=1, cached_tokens=1024, cache_write_tokens=0)
            if request.purpose == "join":
                usage = Usage(prompt_tokens=2000, completion_tokens=9, calls=1, cache_write_tokens=1500)
            yield usage

    run_virtual(lambda: LLMCompiler(llm=Cached('1. lookup("a")\n2. join()'), tools=[lookup]).arun("q"))
    plan_call, join_call = (dict(c.attributes or {}) for c in by_name(spans.get_finished_spans(), "chat gpt-4o"))
    assert plan_call["gen_ai.usage.cache_read.input_tokens"] == 1024
    assert "gen_ai.usage.cache_creation.input_tokens" not in plan_call  # none written: left out
    assert join_call["gen_ai.usage.cache_creation.input_tokens"] == 1500
    assert "gen_ai.usage.cache_read.input_tokens" not in join_call
