"""The ``llmcompiler`` command: ``llmcompiler run QUESTION [--model M] [--tools module:attr] ...``."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console

from llmcompiler._agent import LLMCompiler
from llmcompiler._errors import LLMCompilerError, UserError
from llmcompiler._events import RunEvent, TaskFinished, TaskStarted
from llmcompiler._plan import ParseError, TaskParsed

__all__ = ["main"]


def _load_tools(spec: str | None) -> list[Any]:
    if spec is None:
        from llmcompiler.demo import DEMO_TOOLS

        return list(DEMO_TOOLS)
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise UserError(f"--tools takes module:attribute (e.g. mytools:TOOLS), got {spec!r}")
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
    run.add_argument("--tools", default=None, help="module:attr holding your tools (default: the demo tools)")
    run.add_argument("--max-replans", type=int, default=2)
    run.add_argument("--quiet", action="store_true", help="print only the answer")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    console = Console(highlight=False, stderr=False)
    try:
        from llmcompiler.models._loader import load_model

        tools = _load_tools(args.tools)
        llm = load_model(args.model, base_url=args.base_url)
        events = None if args.quiet else _printer(console)
        agent = LLMCompiler(llm=llm, tools=tools, max_replans=args.max_replans, on_event=events)
        result = asyncio.run(agent.arun(args.question))
    except LLMCompilerError as exc:
        Console(stderr=True, highlight=False).print(f"[red]error:[/] {exc}")
        return 1
    if args.quiet:
        print(result.answer)
        return 0
    console.print(f"[bold]Answer:[/] {result.answer}")
    console.print(
        f"[dim]{result.total_s:.2f}s total; the same tool calls one after another would take "
        f"{result.sequential_s:.2f}s; {result.rounds} round(s); tokens {result.usage.prompt_tokens} in / "
        f"{result.usage.completion_tokens} out[/]"
    )
    return 0


def _printer(console: Console) -> Any:
    start: list[float] = []

    def show(event: RunEvent) -> None:
        now = asyncio.get_running_loop().time()
        if not start:
            start.append(now)
        at = f"[dim]{now - start[0]:6.2f}s[/]"
        if isinstance(event, TaskParsed) and event.tool != "join":
            console.print(f"{at} [cyan]plan [/] {event.line}")
        elif isinstance(event, ParseError) and event.idx is None:
            console.print(f"{at} [magenta]skip [/] {event.message()}")
        elif isinstance(event, TaskStarted):
            console.print(f"{at} [yellow]start[/] {event.idx}. {event.tool}")
        elif isinstance(event, TaskFinished) and event.record.tool != "join":
            rec = event.record
            label = {"done": "[green]done [/]", "failed": "[red]fail [/]", "skipped": "[red]skip [/]"}[rec.state]
            console.print(f"{at} {label} {rec.idx}. {rec.tool} → {rec.result if rec.ok else rec.error}")

    return show


if __name__ == "__main__":
    sys.exit(main())
