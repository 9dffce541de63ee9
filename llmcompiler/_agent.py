"""The LLMCompiler agent: plan (streamed) → execute (as it streams) → join → answer or replan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterable, Mapping
from typing import TYPE_CHECKING, Literal, overload

from llmcompiler._errors import ReplanLimitExceeded, RunError, UserError
from llmcompiler._events import AnswerChunk, EventHandler, JoinerDecided, RoundStarted, RunEvent
from llmcompiler._executor import Executor, RoundOutcome
from llmcompiler._joiner import AnswerStream, Finish, JoinDecision, parse_join_reply
from llmcompiler._many import run_many
from llmcompiler._plan import END_OF_PLAN
from llmcompiler._prompts import describe_tools, observations, render_history
from llmcompiler._records import RoundTimings, RunResult, TaskRecord
from llmcompiler._speculation import Draft, SpeculationLog
from llmcompiler._templates import load, render
from llmcompiler._tools import ToolLike, ToolLimits
from llmcompiler._types import ChatModel, Message, ModelRequest
from llmcompiler.models._reading import model_name
from llmcompiler.strategy import Strategy

if TYPE_CHECKING:
    from llmcompiler._runnable import AgentRunnable

__all__ = ["LLMCompiler"]


class LLMCompiler(Strategy):
    """Answers questions by planning tool calls that run in parallel.

    Args:
        llm: the planner model (and the joiner's, unless ``joiner_llm`` is given).
        tools: ``Tool``s, plain functions or LangChain tools.
        max_replans: how many times the joiner may ask for a new plan.
        joiner_llm: a different model for the joiner.
        max_concurrency: tool calls running at once across all tools.
        timeout: the run-wide tool timeout, for tools whose limits give none (see ``Strategy``).
        tool_limits: per-tool overrides of the tools' own limits, field by field (see ``Strategy``).
        examples: few-shot plan examples for the planner prompt (default: a generic one).
        on_event: called with each ``RunEvent`` of every run. A handler that raises ends the
            run: its exception leaves ``arun`` as itself, with the task records finished by
            then in its ``tasks`` attribute.
        drafter: a fast model (``load_model("local")``) that writes a draft of each plan while
            the planner writes the real one; the draft's calls of speculation-safe tools start
            early (see "Speculative execution" below). ``None`` (the default): no drafts.
        max_speculative: speculative calls running at once (default 2), besides ``max_concurrency``.

    Speculative execution: with a ``drafter``, each round's planning request also goes to the
    drafter, and its draft plan is parsed as it streams. A draft call starts at once when its
    tool is speculation-safe (``@tool(pure=True)`` or ``@tool(speculative=True)``; no other
    tool is ever called from a draft) and its arguments need no result but those of draft calls
    already done (or of earlier rounds). Speculative calls never take what a real call could
    use: they run under their own limit ``max_speculative`` and their own threads, never a tool
    with a rate limit, an exclusive group, its own concurrency limit, a batch implementation,
    ``compute_bound`` or ``sequential``, and never a call the planner has already written. When
    a real task is ready, a speculative call of the same tool with equal arguments (after
    validation) gives it its result, or the task waits for it if it still runs (a hit:
    ``TaskRecord.speculative``); otherwise the task runs as usual. Once the real plan has ended,
    a speculative call no waiting task can match is cancelled; its result is dropped. The
    joiner sees only the real tasks. A drafter that fails, stalls or writes garbage changes
    nothing but its own effort. ``RunResult.speculation`` says what happened, with the
    drafter's tokens (kept out of ``RunResult.usage``).

    The answer as it is written: while the joiner writes ``Finish(...)``, its answer reaches
    ``on_event`` and ``astream`` as ``AnswerChunk`` events; joined, they are exactly the
    answer. A ``Replan`` is never sent as answer text, and the answer is whole once
    ``JoinerDecided`` follows (see ``AnswerChunk`` for a reply that fails half-way).

    Every run raises only ``RunError`` (with the finished records in ``tasks``; a failing or
    cut-short model is a ``ModelError``), ``UserError``, or an ``on_event`` handler's own
    exception; never an exception group.

    Example:
        >>> from llmcompiler import LLMCompiler, tool
        >>> from llmcompiler.testing import ScriptedLLM
        >>> @tool
        ... def square(x: int) -> int:
        ...     '''Square a number.'''
        ...     return x * x
        >>> llm = ScriptedLLM(["1. square(3)\\n2. join()", "Action: Finish(9)"])
        >>> LLMCompiler(llm=llm, tools=[square]).run("What is 3 squared?").answer
        '9'
    """

    def __init__(
        self,
        *,
        llm: ChatModel,
        tools: Iterable[ToolLike],
        max_replans: int = 2,
        joiner_llm: ChatModel | None = None,
        max_concurrency: int | None = None,
        timeout: float | None = None,
        tool_limits: Mapping[str, ToolLimits] | None = None,
        examples: str | None = None,
        on_event: EventHandler | None = None,
        drafter: ChatModel | None = None,
        max_speculative: int = 2,
    ) -> None:
        if max_replans < 0:
            raise UserError(f"max_replans must be 0 or more, got {max_replans}")
        if drafter is not None and drafter is llm:
            raise UserError(
                "the drafter is the planner itself: its draft would only repeat the plan; pass a faster model"
            )
        if isinstance(max_speculative, bool) or not isinstance(max_speculative, int) or max_speculative < 1:
            raise UserError(f"max_speculative must be an integer of 1 or more, got {max_speculative!r}")
        super().__init__(
            llm=llm,
            tools=tools,
            max_concurrency=max_concurrency,
            timeout=timeout,
            tool_limits=tool_limits,
            on_event=on_event,
        )
        self.joiner_llm = joiner_llm or llm
        self.max_replans = max_replans
        self.drafter = drafter
        self.max_speculative = max_speculative
        # The gates (concurrency, rate limits, batch windows) every run of this agent shares.
        self._gates = Executor(self.tools, limits=self.limits)
        self.examples = load("planner_examples") if examples is None else examples

    async def arun(self, question: str, *, on_event: EventHandler | None = None) -> RunResult:
        """Answer ``question``.

        Args:
            question: what to answer.
            on_event: called with each ``RunEvent`` of this run (besides the agent's own handler).

        A plan the model cut short at its token limit runs the tasks it wrote in full; the
        line it was writing fails, and the joiner is told the plan was cut.

        Raises:
            RunError: the planner or joiner failed, or replans ran out; ``tasks`` holds the
                records finished before that. A model that raised, or whose joiner reply was
                cut short by its token limit, is a ``ModelError`` (the model's exception is its
                ``__cause__``).
            Exception: what an ``on_event`` handler raised, as itself (see the class).
        """
        return await _Run(self, question, on_event).go()

    async def astream(self, question: str) -> AsyncGenerator[RunEvent | RunResult, None]:
        """Answer ``question``, yielding each ``RunEvent`` as it happens and then the ``RunResult``.

        The run goes on in its own task while its events wait in a queue, so a slow consumer
        never holds up the tools. Stopping early (``break``, an exception, cancellation)
        cancels the run and every tool call in flight when the iterator is closed: iterate
        inside ``contextlib.aclosing`` so that happens at once.

        Raises:
            RunError: as ``arun`` does, after the events that came before it.
            Exception: what the agent's ``on_event`` handler raised, as ``arun`` does.

        Example:
            >>> import asyncio, contextlib
            >>> from llmcompiler import LLMCompiler, RunResult, tool
            >>> from llmcompiler.testing import ScriptedLLM
            >>> @tool
            ... def square(x: int) -> int:
            ...     '''Square a number.'''
            ...     return x * x
            >>> llm = ScriptedLLM(["1. square(3)\\n2. join()", "Action: Finish(9)"])
            >>> agent = LLMCompiler(llm=llm, tools=[square])
            >>> async def kinds():
            ...     async with contextlib.aclosing(agent.astream("3 squared?")) as stream:
            ...         return [getattr(item, "kind", "result") async for item in stream]
            >>> kinds = asyncio.run(kinds())
            >>> kinds[0], kinds[-2:]
            ('round', ['joined', 'result'])
        """
        queue: asyncio.Queue[RunEvent | None] = asyncio.Queue()

        async def whole_run() -> RunResult | KeyboardInterrupt | SystemExit:
            # Ctrl-C and SystemExit come back as values and are raised in the consumer's task:
            # raised in this task, they would leave the event loop itself, past the consumer.
            try:
                return await self.arun(question, on_event=queue.put_nowait)
            except (KeyboardInterrupt, SystemExit) as exc:
                return exc

        run = asyncio.create_task(whole_run(), name="llmcompiler: astream run")
        run.add_done_callback(lambda _: queue.put_nowait(None))  # None: no more events
        try:
            while (event := await queue.get()) is not None:
                yield event
            outcome = run.result()
            if isinstance(outcome, BaseException):
                raise outcome
            yield outcome
        finally:
            if not run.done():
                run.cancel()
            # Wait for the run to unwind (its tool calls are cancelled with it). Its outcome was
            # yielded above, or is moot because the consumer stopped.
            await asyncio.wait([run])
            if not run.cancelled():
                run.exception()  # retrieved, so asyncio never logs it as unretrieved

    @overload
    def as_runnable(self, include_result: Literal[False] = ...) -> AgentRunnable[str]: ...

    @overload
    def as_runnable(self, include_result: Literal[True]) -> AgentRunnable[RunResult]: ...

    def as_runnable(self, include_result: bool = False) -> AgentRunnable[str] | AgentRunnable[RunResult]:
        """This agent as a LangChain ``Runnable``, for LCEL chains and LangGraph nodes.

        It takes a question string, ``{"question": ...}``, a prompt's value or a message (anything
        else is a ``UserError``), and gives the answer string, or the ``RunResult`` with
        ``include_result=True``. ``invoke``, ``ainvoke``, ``batch``, ``abatch`` and ``astream`` work
        as LangChain users expect; ``astream`` yields the answer as it is written (the
        ``AnswerChunk`` texts).

        Example:
            >>> from langchain_core.runnables import RunnableLambda
            >>> from llmcompiler import LLMCompiler, tool
            >>> from llmcompiler.testing import ScriptedLLM
            >>> @tool
            ... def square(x: int) -> int:
            ...     '''Square a number.'''
            ...     return x * x
            >>> llm = ScriptedLLM(["1. square(3)\\n2. join()", "Action: Finish(9)"])
            >>> agent = LLMCompiler(llm=llm, tools=[square])
            >>> chain = RunnableLambda(lambda n: f"What is {n} squared?") | agent.as_runnable() | RunnableLambda(int)
            >>> chain.invoke(3)
            9
        """
        from llmcompiler._runnable import AgentRunnable

        if include_result:
            return AgentRunnable[RunResult](self, include_result=True)
        return AgentRunnable[str](self)

    @overload
    async def arun_many(
        self,
        questions: Iterable[str],
        *,
        concurrency: int = ...,
        on_event: EventHandler | None = ...,
        return_exceptions: Literal[False] = ...,
    ) -> list[RunResult]: ...

    @overload
    async def arun_many(
        self,
        questions: Iterable[str],
        *,
        concurrency: int = ...,
        on_event: EventHandler | None = ...,
        return_exceptions: Literal[True],
    ) -> list[RunResult | Exception]: ...

    async def arun_many(
        self,
        questions: Iterable[str],
        *,
        concurrency: int = 8,
        on_event: EventHandler | None = None,
        return_exceptions: bool = False,
    ) -> list[RunResult] | list[RunResult | Exception]:
        """Answer many questions concurrently, at most ``concurrency`` at once.

        The runs share the agent's limits: ``max_concurrency``, each tool's concurrency and
        rate limits and its batch window hold across all of them (calls of different questions
        may be fused). Each run keeps its own records and its own results of pure tools.
        A fixed set of ``concurrency`` workers takes the questions in turn, so tasks, threads
        and memory stay flat however many questions there are.

        Args:
            questions: the questions.
            concurrency: questions answered at once.
            on_event: called with each ``RunEvent`` of every run (besides the agent's own handler).
            return_exceptions: put a failed question's exception (a ``RunError``, or what an
                ``on_event`` handler raised) in its place in the list; the other questions go on.
                Without it the first failure cancels the others and is raised as itself.

        Returns:
            One ``RunResult`` (or exception) per question, in order.

        Raises:
            UserError: ``concurrency`` is less than 1.
            RunError: a question failed and ``return_exceptions`` is false.
            Exception: an ``on_event`` handler raised and ``return_exceptions`` is false.

        Example:
            >>> import asyncio
            >>> from llmcompiler import LLMCompiler, tool
            >>> from llmcompiler.testing import FunctionLLM
            >>> @tool
            ... def square(x: int) -> int:
            ...     '''Square a number.'''
            ...     return x * x
            >>> llm = FunctionLLM(lambda m, p: "1. square(3)\\n2. join()" if p == "plan" else "Action: Finish(9)")
            >>> results = asyncio.run(LLMCompiler(llm=llm, tools=[square]).arun_many(["a", "b"], concurrency=2))
            >>> [r.answer for r in results]
            ['9', '9']
        """

        async def one(question: str) -> RunResult:
            return await _Run(self, question, on_event).go()

        return await run_many(one, list(questions), concurrency=concurrency, return_exceptions=return_exceptions)


class _Run:
    """One question's rounds: plan and execute, join, answer or replan, on a ``strategy.Run``."""

    def __init__(self, agent: LLMCompiler, question: str, on_event: EventHandler | None) -> None:
        self.agent = agent
        self.question = question
        self.run = agent.new_run(on_event)
        self.executor = self.run.executor
        self.executor.share_limits(agent._gates)  # limits hold across every run of the agent
        self.speculation = None if agent.drafter is None else SpeculationLog(model_name(agent.drafter))

    async def go(self) -> RunResult:
        """The run, inside its boundary (``Run.guard``)."""
        return await self.run.guard(self.rounds())

    async def rounds(self) -> RunResult:
        run = self.run
        now = run.now
        tasks: list[TaskRecord] = []
        timings: list[RoundTimings] = []
        plan_errors: list[str] = []
        thoughts: list[str] = []
        feedback: str | None = None
        agent = self.agent
        for round_no in range(1, agent.max_replans + 2):
            run.emit(RoundStarted(round=round_no, feedback=feedback))
            try:
                outcome = await self.plan_and_execute(round_no, feedback)
            except RunError as exc:
                exc.tasks = tasks + exc.tasks
                raise
            tasks.extend(outcome.records)
            plan_errors.extend(outcome.plan_errors)
            last_round = round_no == agent.max_replans + 1
            join_start = now()
            try:
                decision = await self.join(last_round)
            except RunError as exc:
                exc.tasks = tasks + exc.tasks
                raise
            timings.append(outcome.timings(join_start=join_start, join_end=now()))
            if decision.thought:
                thoughts.append(decision.thought)
            if isinstance(decision, Finish):
                return run.result(
                    answer=decision.answer,
                    tasks=tasks,
                    rounds=round_no,
                    round_timings=timings,
                    plan_errors=plan_errors,
                    thoughts=thoughts,
                    speculation=None if self.speculation is None else self.speculation.summary(),
                )
            if last_round:
                raise ReplanLimitExceeded(agent.max_replans, decision.feedback, tasks=tasks)
            feedback = decision.feedback
        raise AssertionError("unreachable: the last round either answers or raises")  # pragma: no cover

    async def plan_and_execute(self, round_no: int, feedback: str | None) -> RoundOutcome:
        agent = self.agent
        system = render(
            "planner_system",
            tools=describe_tools(agent.tools.values()),
            examples=agent.examples,
        )
        if feedback is None:
            user = render("planner_user", question=self.question)
        else:
            user = render(
                "planner_replan",
                question=self.question,
                history=render_history(self.run.records()),
                feedback=feedback,
                next_idx=str(self.next_idx()),
            )
        request = ModelRequest(
            messages=(Message(role="system", content=system), Message(role="user", content=user)),
            purpose="plan",
            stop=(END_OF_PLAN,),
            tools=tuple(t.spec for t in agent.tools.values()),
            question=self.question,
            observations=observations(self.run.records()),
            first_task=self.next_idx(),
        )
        draft = None
        if agent.drafter is not None and self.speculation is not None:
            draft = Draft(
                model=agent.drafter,
                request=request,
                log=self.speculation,
                max_speculative=agent.max_speculative,
                trace=self.run.model_trace,
            )
        with self.run.phase("llmcompiler.plan", {"llmcompiler.round": round_no}) as phase:
            outcome = await self.executor.run_round(
                self.run.stream_text(agent.llm, request), round=round_no, draft=draft
            )
            phase.set(
                {
                    "llmcompiler.plan.tasks": len(outcome.records),
                    "llmcompiler.plan.errors": len(outcome.plan_errors),
                    "llmcompiler.plan.ended_by": outcome.ended_by,
                }
            )
            phase.ends_at(outcome.plan_end)  # the span is the plan stream's; its tasks are the round's
        return outcome

    async def join(self, last_round: bool) -> JoinDecision:
        agent = self.agent
        records = self.run.records()
        user = render(
            "joiner_user",
            question=self.question,
            history=render_history(records),
            must_answer=load("joiner_must_answer") if last_round else "",
        )
        request = ModelRequest(
            messages=(
                Message(role="system", content=load("joiner_system")),
                Message(role="user", content=user),
            ),
            purpose="join",
            tools=tuple(t.spec for t in agent.tools.values()),
            question=self.question,
            observations=observations(records),
            may_replan=not last_round,
        )
        # The answer streams out as AnswerChunks while the reply is written (only for a listener).
        answer = AnswerStream() if self.run.listening else None
        on_text = None if answer is None else lambda piece: self.send(answer.feed(piece))
        with self.run.phase("llmcompiler.join", {"llmcompiler.last_round": last_round}) as phase:
            # A reply cut at the token limit is a ModelError: a cut "Finish(" would answer with half a sentence.
            reply = await self.run.reply(agent.joiner_llm, request, on_text=on_text)
            decision = parse_join_reply(reply.text)
            phase.set({"llmcompiler.join.action": decision.action})
        if answer is not None and isinstance(decision, Finish):
            self.send(answer.finish(decision.answer))
        text = decision.answer if isinstance(decision, Finish) else decision.feedback
        self.run.emit(JoinerDecided(action=decision.action, text=text, thought=decision.thought))
        return decision

    def send(self, text: str) -> None:
        if text:
            self.run.emit(AnswerChunk(text=text))

    def next_idx(self) -> int:
        return max(self.executor.records, default=0) + 1
