"""The ``llmcompiler`` command.

``llmcompiler run QUESTION [--model M] [--base-url URL] [--tools module:attr] [--max-replans N]
[--trace FILE.json] [--timeline FILE.svg|FILE.html] [--quiet]``

On a terminal it shows the plan as it streams and a table of tasks updating in place; in a
pipe or a CI log, plain lines. Then the answer, the total time, the tokens, the cost and the
time the same tool calls would have taken one after another.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from llmcompiler._agent import LLMCompiler
from llmcompiler._errors import LLMCompilerError, RunError, UserError
from llmcompiler._live import LiveView
from llmcompiler._records import RunResult
from llmcompiler._timeline import write_timeline
from llmcompiler._trace import scrub, trace_dict
from llmcompiler.models._base import Usage

__all__ = ["main"]

_TIMELINE_SUFFIXES = (".svg", ".html", ".htm")


def _load_tools(spec: str | None) -> list[Any]:
    if spec is None:
        from llmcompiler.demo import DEMO_TOOLS

        return list(DEMO_TOOLS)
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise UserError(f"--tools takes module:attribute (e.g. mytools:TOOLS), got {spec!r}")
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, "")  # a user's tools module next to where they run the command
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError(f"--tools: cannot import {module_name!r}: {exc}") from None
    try:
        value = getattr(module, attr)
    except AttributeError:
        raise UserError(f"--tools: module {module_name!r} has no attribute {attr!r}") from None
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmcompiler", description="Parallel function calling with LLMs.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="answer a question")
    run.add_argument("question")
    run.add_argument("--model", default=None, help="model string: local (default), openai:MODEL, anthropic:MODEL")
    run.add_argument("--base-url", default=None, help="an OpenAI-compatible server's base URL")
    run.add_argument(
        "--tools",
        default=None,
        metavar="MODULE:ATTR",
        help="your tools: a function, Tool or LangChain tool, or a list of them (default: the demo tools)",
    )
    run.add_argument("--max-replans", type=int, default=2, metavar="N")
    run.add_argument("--trace", default=None, metavar="FILE.json", help="write the run's trace as JSON")
    run.add_argument(
        "--timeline", default=None, metavar="FILE.svg|FILE.html", help="draw the run's timeline as SVG or HTML"
    )
    run.add_argument("--quiet", action="store_true", help="print only the answer")
    return parser


@dataclasses.dataclass
class _Outcome:
    result: RunResult | None = None
    error: RunError | None = None
    start: float = 0.0
    end: float = 0.0
    rounds: int = 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    console = Console(highlight=False)
    errors = Console(stderr=True, highlight=False)
    try:
        if args.timeline is not None and not args.timeline.lower().endswith(_TIMELINE_SUFFIXES):
            raise UserError(f"--timeline writes .svg or .html files, got {args.timeline!r}")
        from llmcompiler.models._loader import load_model

        tools = _load_tools(args.tools)
        llm = load_model(args.model, base_url=args.base_url)
        agent = LLMCompiler(llm=llm, tools=tools, max_replans=args.max_replans)
        view = None if args.quiet else LiveView(console)
        outcome = asyncio.run(_run(agent, args.question, view))
    except KeyboardInterrupt:
        errors.print("[red]interrupted[/]")
        return 130
    except LLMCompilerError as exc:
        errors.print(f"[red]error:[/] {escape(scrub(str(exc)))}")
        return 1
    status = 0
    if outcome.result is not None:
        result = outcome.result
        if args.quiet:
            print(scrub(result.answer))
    else:
        assert outcome.error is not None
        status = 1
        errors.print(f"[red]error:[/] {escape(scrub(str(outcome.error)))}")
        result = RunResult(
            answer="",
            tasks=outcome.error.tasks,
            rounds=outcome.rounds,
            usage=Usage(),
            start=outcome.start,
            end=outcome.end,
        )
    try:
        _write_files(args, result, outcome, llm.model_name)
    except OSError as exc:
        errors.print(
            f"[red]error:[/] cannot write {escape(str(exc.filename or ''))}: {escape(exc.strerror or str(exc))}"
        )
        return 1
    return status


async def _run(agent: LLMCompiler, question: str, view: LiveView | None) -> _Outcome:
    """Run the question, feeding the view from ``agent.astream``."""
    now = asyncio.get_running_loop().time
    outcome = _Outcome(start=now())
    with view if view is not None else contextlib.nullcontext():
        try:
            async with contextlib.aclosing(agent.astream(question)) as stream:
                async for item in stream:
                    if isinstance(item, RunResult):
                        outcome.result = item
                        outcome.start = item.start
                    else:
                        if item.kind == "round":
                            outcome.rounds = item.round
                        if view is not None:
                            view.handle(item)
        except RunError as exc:
            outcome.error = exc
        outcome.end = now()
        if outcome.result is not None and view is not None:
            view.finish(outcome.result)
    return outcome


def _write_files(args: argparse.Namespace, result: RunResult, outcome: _Outcome, model: str) -> None:
    if args.trace is None and args.timeline is None:
        return
    error = None if outcome.error is None else str(outcome.error)
    data = trace_dict(result, question=args.question, model=model, error=error)
    if outcome.result is None:  # a failed run's usage and cost were not reported
        data["usage"] = None
        data["cost_usd"] = None
    if args.trace is not None:
        Path(args.trace).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if args.timeline is not None:
        write_timeline(data, args.timeline)


if __name__ == "__main__":
    sys.exit(main())
