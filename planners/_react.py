"""ReAct (Yao et al., 2022): Thought / Action / Observation, one tool call per model turn.

The model writes ``Thought: ...`` then ``Action: tool(arguments)`` in the plan language's call
syntax, or ``Action: Finish(answer)``. The call is parsed by the plan parser and run by the
engine's executor (same limits, retries and ``TaskRecord``s as LLMCompiler); its result comes
back as ``Observation: ...`` and the model takes the next step. Calls never overlap: each waits
for the model turn that reads the one before.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from importlib import resources

from llmcompiler import (
    JOIN,
    ChatModel,
    EventHandler,
    Finish,
    JoinerDecided,
    JoinParseError,
    Message,
    ModelRequest,
    ParseError,
    RoundStarted,
    RoundTimings,
    RunResult,
    TaskParsed,
    TaskRecord,
    ToolLimits,
    parse_join_reply,
    parse_plan,
)
from llmcompiler.strategy import Run, Strategy, ToolLike, describe_tools, fill_template, observation_text
from planners._base import TurnLimitExceeded, check_limit, timings

__all__ = ["ReActAgent", "ReActStep", "parse_react_reply"]

OBSERVATION = "Observation:"
"""What starts a tool's result in the transcript; the model's reply is cut before it."""

_ACTION = re.compile(r"(?im)^[ \t>*_`]*action[ \t*_]*:[ \t*_`]*")
_THOUGHT_LABEL = re.compile(r"(?i)^[ \t>*_`]*thought[ \t*_]*:[ \t*_]*")
_FINISH = re.compile(r"(?i)finish[ \t]*\(")
_EXPECTED = "expected 'Action: tool(arguments)' or 'Action: Finish(answer)'"


def _prompt(name: str) -> str:
    return (resources.files("planners") / "prompts" / f"{name}.txt").read_text(encoding="utf-8")


# Read once, at import: file I/O does not belong on the event loop, where prompts are filled.
_SYSTEM = _prompt("react_system")
_USER = _prompt("react_user")
_EXAMPLES = _prompt("react_examples")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ReActStep:
    """One ReAct reply, read.

    Exactly one of ``action``, ``answer`` and ``error`` is set.

    Attributes:
        thought: the reasoning before the action (one line), if any.
        action: the call written after ``Action:``, e.g. ``search(query="x")``.
        answer: the answer of ``Action: Finish(answer)``.
        error: why the reply is no step.
    """

    thought: str | None = None
    action: str | None = None
    answer: str | None = None
    error: str | None = None


def parse_react_reply(text: str) -> ReActStep:
    """Read a ReAct reply: ``Thought: ...`` then ``Action: tool(args)`` or ``Action: Finish(answer)``.

    Example:
        >>> parse_react_reply('Thought: look it up.\\nAction: search("Oslo")')
        ReActStep(thought='look it up.', action='search("Oslo")', answer=None, error=None)
        >>> parse_react_reply("Thought: done.\\nAction: Finish(Oslo (Norway))").answer
        'Oslo (Norway)'
    """
    match = _ACTION.search(text)
    if match is None:
        # A bare "Finish(...)" line still answers; anything else is no step.
        try:
            decision = parse_join_reply(text)
        except JoinParseError:
            decision = None
        if isinstance(decision, Finish):
            return ReActStep(thought=decision.thought, answer=decision.answer)
        return ReActStep(thought=_thought(text) or None, error=f"no action in the reply: {_EXPECTED}")
    thought = _thought(text[: match.start()]) or None
    action = text[match.end() :].strip()
    if _FINISH.match(action):
        try:
            decision = parse_join_reply(text[match.start() :])
        except JoinParseError as exc:
            return ReActStep(thought=thought, error=exc.reason)
        if isinstance(decision, Finish):
            return ReActStep(thought=thought, answer=decision.answer)
    if not action:
        return ReActStep(thought=thought, error=f"the action is empty: {_EXPECTED}")
    return ReActStep(thought=thought, action=action)


def _thought(text: str) -> str:
    """The thought text on one line, its ``Thought:`` label removed."""
    lines = [_THOUGHT_LABEL.sub("", line).strip() for line in text.strip().splitlines()]
    return " ".join(line for line in lines if line)


def action_task(action: str, idx: int, known: Iterable[int], thought: str | None) -> TaskParsed | ParseError | str:
    """The task an action's call makes, numbered ``idx``, or why it makes none.

    The call is parsed as the plan line ``{idx}. {action}``. A numbered line that cannot run
    (bad arguments, no closing parenthesis) is a ``ParseError`` with the task's number, which
    the executor records as a failed task, as it does in a plan; text that is no call at all
    comes back as the reason (a string).
    """
    events = parse_plan(f"{idx}. {action}", known=known)
    for event in events:
        if isinstance(event, TaskParsed):
            if event.tool == JOIN:
                return f"join() is not a tool here: {_EXPECTED}"
            return dataclasses.replace(event, thought=thought)
        if isinstance(event, ParseError) and event.idx == idx:
            return dataclasses.replace(event, thought=thought)
    for event in events:
        if isinstance(event, ParseError):
            return f"cannot read the action {action!r}: {event.reason}; {_EXPECTED}"
    return f"cannot read the action {action!r}: {_EXPECTED}"  # pragma: no cover - the parser always reports


class ReActAgent(Strategy):
    """The ReAct baseline: one tool call per model turn, in sequence, until ``Action: Finish(...)``.

    The action is written in the plan language's call syntax and parsed by its parser; tools
    run through the engine's executor, so limits, retries and ``TaskRecord``s are LLMCompiler's.
    Text only, so it runs on every model; the local model decodes each step under a grammar.

    ``RunResult.rounds`` is the number of model turns; ``thoughts`` holds each step's thought;
    ``round_timings`` has one entry per turn (the turn as the plan phase, its tool call as the
    tasks, no joiner); ``plan_errors`` the replies that were no step.

    Args:
        llm: the model.
        tools: ``Tool``s, plain functions or LangChain tools.
        max_steps: model turns before the run fails with ``TurnLimitExceeded``.
        max_concurrency: tool calls running at once (one at most here, kept for parity).
        timeout: the run-wide tool timeout, for tools whose limits give none (see ``Strategy``).
        tool_limits: per-tool overrides of the tools' own limits, field by field (see ``Strategy``).
        examples: few-shot text for the system prompt (default: ``planners/prompts/react_examples.txt``).
        on_event: called with each ``RunEvent`` of every run.

    Example:
        >>> from llmcompiler import tool
        >>> from llmcompiler.testing import ScriptedLLM
        >>> @tool
        ... def square(x: int) -> int:
        ...     '''Square a number.'''
        ...     return x * x
        >>> llm = ScriptedLLM(["Thought: square it.\\nAction: square(3)", "Thought: done.\\nAction: Finish(9)"])
        >>> ReActAgent(llm=llm, tools=[square]).run("What is 3 squared?").answer
        '9'
    """

    def __init__(
        self,
        *,
        llm: ChatModel,
        tools: Iterable[ToolLike],
        max_steps: int = 10,
        max_concurrency: int | None = None,
        timeout: float | None = None,
        tool_limits: Mapping[str, ToolLimits] | None = None,
        examples: str | None = None,
        on_event: EventHandler | None = None,
    ) -> None:
        check_limit("max_steps", max_steps)
        super().__init__(
            llm=llm,
            tools=tools,
            max_concurrency=max_concurrency,
            timeout=timeout,
            tool_limits=tool_limits,
            on_event=on_event,
        )
        self.max_steps = max_steps
        self.examples = _EXAMPLES if examples is None else examples

    async def arun(self, question: str, *, on_event: EventHandler | None = None) -> RunResult:
        """Answer ``question``.

        Args:
            question: what to answer.
            on_event: called with each ``RunEvent`` of this run (besides the agent's own handler).

        Raises:
            TurnLimitExceeded: no ``Finish`` within ``max_steps`` turns.
            RunError: a model call failed, or a step was cut short by the model's token limit
                (a ``ModelError``). ``tasks`` holds the records finished before.
            Exception: what an ``on_event`` handler raised, as itself, with the finished
                records in its ``tasks`` attribute (the handler's failure ends the run).
        """
        run = self.new_run(on_event)
        return await run.guard(self._steps(question, run))

    async def _steps(self, question: str, run: Run) -> RunResult:
        system = fill_template(_SYSTEM, tools=describe_tools(self.tools.values()), examples=self.examples)
        messages = [
            Message(role="system", content=system),
            Message(role="user", content=fill_template(_USER, question=question)),
        ]
        round_timings: list[RoundTimings] = []
        plan_errors: list[str] = []
        thoughts: list[str] = []
        for step in range(1, self.max_steps + 1):
            run.emit(RoundStarted(round=step, feedback=None))
            request = ModelRequest(
                messages=tuple(messages),
                purpose="react",
                stop=(OBSERVATION,),
                tools=tuple(t.spec for t in self.tools.values()),
            )
            # A native tool call in the reply is a ModelError: ReAct reads text.
            turn = await run.reply(self.llm, request, step=f"ReAct step {step}")
            parsed = parse_react_reply(turn.text)
            if parsed.thought:
                thoughts.append(parsed.thought)
            if parsed.answer is not None:
                round_timings.append(timings(turn, [], turn.end))
                run.emit(JoinerDecided(action="finish", text=parsed.answer, thought=parsed.thought))
                return run.result(
                    answer=parsed.answer,
                    rounds=step,
                    round_timings=round_timings,
                    plan_errors=plan_errors,
                    thoughts=thoughts,
                )
            records: list[TaskRecord] = []
            error = parsed.error
            if parsed.action is not None:
                known = run.executor.records
                task = action_task(parsed.action, max(known, default=0) + 1, known, parsed.thought)
                if isinstance(task, str):
                    error = task
                else:
                    records = await run.executor.run_tasks([task], round=step)
            if records:
                observed = records[0]
                text = observation_text(observed)
                observation = f"ERROR: {text}" if observed.error is not None else text
            else:
                assert error is not None
                plan_errors.append(error)
                observation = f"ERROR: {error}"
            round_timings.append(timings(turn, records, run.now()))
            messages.append(Message(role="assistant", content=turn.text.strip() or "(empty reply)"))
            messages.append(Message(role="user", content=f"{OBSERVATION} {observation}"))
        raise TurnLimitExceeded("ReActAgent", "max_steps", self.max_steps, tasks=run.records())
