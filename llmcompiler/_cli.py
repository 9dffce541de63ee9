"""The ``llmcompiler`` command.

``llmcompiler run QUESTION [--model M] [--base-url URL] [--tools module:attr] [--mcp SERVER ...]
[--mcp-prefix] [--max-replans N] [--drafter M] [--max-speculative N] [--trace FILE.json]
[--timeline FILE.svg|FILE.html] [--quiet]``, ``llmcompiler --version``.

``--mcp SERVER`` (repeatable) adds the tools of an MCP server (``llmcompiler.mcp.mcp_tools``): a
command run over stdio (``--mcp "python server.py"``) or a Streamable HTTP URL (``--mcp
http://127.0.0.1:8000/mcp``); with ``--mcp`` and no ``--tools``, the demo tools are left out.
``--mcp-prefix`` names every MCP tool ``<server>_<tool>``, for servers offering tools of one
name. A server that cannot start or connect is one line naming it (exit status 2); one that
dies during the run fails its tasks, and the run goes on.

``--drafter M`` gives the planner a drafter (``LLMCompiler``'s ``drafter``: speculative tool
execution), written as ``--model`` is (``local``, ``openai:MODEL``, ...); ``--base-url`` serves
an ``openai:``/``anthropic:`` drafter too, never a local one; a drafter written as the
``--model`` is refused (the planner drafting its own plan would only repeat it).
``--max-speculative N`` (1 or more, only with ``--drafter``) bounds the speculative calls
running at once. The live view shows the speculative calls, and the closing lines, the trace
and the timeline what speculation did.

On a terminal it shows the plan as it streams and a table of tasks updating in place, and a
spinner while the joiner reads the results; in a pipe or a CI log, plain lines, never wrapped.
Then the answer and the closing lines: the tools' time one after another against their wall
time in parallel, the run's total, the tokens and the cost. Everything shown has its secrets
taken out and its control characters escaped; ``--quiet`` prints the answer alone, with control
characters escaped when standard output is a terminal (newlines and tabs kept) and as it is in
a pipe.

Before anything is loaded, a blank question, a ``--timeline`` that is not ``.svg`` or
``.html``, and a ``--trace`` or ``--timeline`` path that cannot be written (no such directory,
a directory, no permission) are refused. Errors name the command's flags (``--base-url``,
``--model``), not the Python parameters the library's own messages name.

``--tools mytools:TOOLS`` imports ``mytools`` from the current directory (the module or package
alone: the directory is never put on ``sys.path``, so a file there named like a library cannot
shadow it), else as an installed module. A bad ``--tools`` or ``--timeline`` is one line on
standard error and exit status 2; a failed run is exit status 1.

``llmcompiler extract FILE --schemas module:attr [--schemas ...] [--strategy parallel|native|sequential]
[--model M] [--base-url URL] [--json FILE.json|-]`` extracts the items of pydantic schemas (a
class or a list of them per ``--schemas``, loaded as ``--tools`` is) from a UTF-8 text file
(``-``: standard input) with ``Extractor``, and prints a table per schema (each item's fields,
its chunk and character offsets), the errors and a summary line; ``--json`` also writes the
same as JSON (``-``: JSON alone on standard output). Exit status 1 when any call or item
failed (what did not fail is still shown); a bad file or option is refused before the model
is loaded (status 2).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib
import importlib.metadata
import importlib.util
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape

from llmcompiler._agent import LLMCompiler
from llmcompiler._errors import LLMCompilerError, RunError, UserError
from llmcompiler._extract import ExtractionResult
from llmcompiler._live import LiveView, shown, shown_block
from llmcompiler._records import RunResult
from llmcompiler._redact import scrub
from llmcompiler._text import escape_controls, safe_text
from llmcompiler._timeline import write_timeline
from llmcompiler._trace import trace_dict
from llmcompiler._types import ChatModel, Usage

__all__ = ["main"]

_TIMELINE_SUFFIXES = (".svg", ".html", ".htm")


class _UsageError(UserError):
    """A command-line option that cannot be used: exit status 2, like argparse's own errors."""


def _load_tools(spec: str | None) -> list[Any]:
    if spec is None:
        from llmcompiler.demo import DEMO_TOOLS

        return list(DEMO_TOOLS)
    return _load_attr("--tools", spec, "mytools:TOOLS")


def _load_attr(flag: str, spec: str, example: str) -> list[Any]:
    """What ``module:attr`` names (``flag``'s value), as a list: a list or tuple as its items."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise _UsageError(f"{flag} takes module:attribute (e.g. {example}), got {spec!r}")
    if not all(part.isidentifier() for part in module_name.split(".")):
        raise _UsageError(f"{flag}: {module_name!r} is not a module name (relative names are not accepted)")
    module = _import_user_module(module_name, flag)
    try:
        value = getattr(module, attr)
    except AttributeError:
        raise _UsageError(f"{flag}: module {module_name!r} has no attribute {attr!r}") from None
    except Exception as exc:  # a module __getattr__ that fails is the user's error, in one line
        raise _UsageError(f"{flag}: reading {module_name}.{attr} failed: {_exc_line(exc)}") from None
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _import_user_module(name: str, flag: str = "--tools") -> ModuleType:
    """Import the user's module: from the current directory if it is there, else as installed.

    Only that module (or package) is imported from the current directory; the directory is
    never put on ``sys.path``, so a file there named like a library (``openai.py``) cannot
    shadow it for the rest of the run.
    """
    top = name.partition(".")[0]
    here = _in_cwd(top)
    loaded = sys.modules.get(top)
    if here is not None and loaded is not None and getattr(loaded, "__file__", None) != str(here):
        raise _UsageError(
            f"{flag}: {here.name} in the current directory has the name of the module {top!r}, "
            "which is already imported; rename it"
        )
    try:
        if here is not None and loaded is None:
            _import_from_cwd(top, here)
        return importlib.import_module(name)
    except (Exception, SystemExit) as exc:  # the user's module failing on import: one line
        raise _UsageError(f"{flag}: cannot import {name!r}: {_exc_line(exc)}") from None


def _in_cwd(name: str) -> Path | None:
    """The file of top-level module or package ``name`` in the current directory, if there is one."""
    cwd = Path.cwd()
    for candidate in (cwd / name / "__init__.py", cwd / f"{name}.py"):
        if candidate.is_file():
            return candidate
    return None


def _import_from_cwd(name: str, path: Path) -> None:
    """Import top-level module or package ``name`` from its file ``path``, without ``sys.path``."""
    search = [str(path.parent)] if path.name == "__init__.py" else None
    spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=search)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has a loader
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as an import does: the module can find itself (dataclasses, pickling)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise


def _exc_line(exc: BaseException) -> str:
    detail = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _version() -> str:
    try:
        return importlib.metadata.version("llmcompiler")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
        from llmcompiler import __version__

        return __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmcompiler", description="Parallel function calling with LLMs.")
    parser.add_argument("--version", action="version", version=f"llmcompiler {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to do")
    run = sub.add_parser(
        "run",
        help="answer a question",
        description="Answer a question: the model plans tool calls, they run in parallel, the model answers.",
    )
    run.add_argument("question", help="the question, in quotes")
    run.add_argument(
        "--model",
        default=None,
        metavar="M",
        help="local (default: the bundled model), local:FILE.gguf, openai:MODEL or anthropic:MODEL",
    )
    run.add_argument(
        "--base-url",
        default=None,
        metavar="URL",
        help="the server of an openai:MODEL (vLLM, Ollama, llama.cpp's server, ...); default: OPENAI_BASE_URL",
    )
    run.add_argument(
        "--tools",
        default=None,
        metavar="MODULE:ATTR",
        help=(
            "your tools: a function, Tool or LangChain tool, or a list of them (default: the demo tools); "
            "MODULE is imported from the current directory (that module alone: the directory is not put on "
            "the import path) or else as installed"
        ),
    )
    run.add_argument(
        "--mcp",
        action="append",
        default=[],
        metavar="SERVER",
        help=(
            'add the tools of an MCP server: a command run over stdio ("python server.py") or a Streamable '
            "HTTP URL (http://127.0.0.1:8000/mcp); repeatable"
        ),
    )
    run.add_argument(
        "--mcp-prefix",
        action="store_true",
        help="name every MCP tool <server>_<tool> (for servers offering tools of one name)",
    )
    run.add_argument(
        "--max-replans",
        type=int,
        default=2,
        metavar="N",
        help="how many times the model may plan again after seeing the results (default: 2)",
    )
    run.add_argument(
        "--drafter",
        default=None,
        metavar="M",
        help=(
            "a fast model that drafts each plan while --model writes it, so that calls of speculation-safe "
            "tools start early (speculative execution); written as --model is, e.g. local"
        ),
    )
    run.add_argument(
        "--max-speculative",
        type=int,
        default=None,
        metavar="N",
        help="speculative calls running at once, 1 or more (default: 2); needs --drafter",
    )
    run.add_argument("--trace", default=None, metavar="FILE.json", help="write the run's trace as JSON")
    run.add_argument(
        "--timeline", default=None, metavar="FILE.svg|FILE.html", help="draw the run's timeline as SVG or HTML"
    )
    run.add_argument(
        "--quiet", action="store_true", help="print only the answer (as it is in a pipe, escaped on a terminal)"
    )
    ext = sub.add_parser(
        "extract",
        help="extract typed items from a text",
        description=(
            "Extract the items of pydantic schemas from a text file: one model call per schema (and chunk), "
            "the items validated and merged."
        ),
    )
    ext.add_argument("file", metavar="FILE", help="the text file (UTF-8), or - for standard input")
    ext.add_argument(
        "--schemas",
        action="append",
        required=True,
        metavar="MODULE:ATTR",
        help=(
            "a pydantic model class, or a list of them; repeat for more. MODULE is imported from the current "
            "directory (that module alone) or else as installed"
        ),
    )
    ext.add_argument(
        "--strategy",
        choices=("parallel", "native", "sequential"),
        default="parallel",
        help="parallel: every schema's call at once (default); native: one call with a tool per schema; "
        "sequential: the calls one after another",
    )
    ext.add_argument(
        "--model",
        default=None,
        metavar="M",
        help="local (default: the bundled model), local:FILE.gguf, openai:MODEL or anthropic:MODEL",
    )
    ext.add_argument("--base-url", default=None, metavar="URL", help="the server of an openai:MODEL")
    ext.add_argument(
        "--json",
        default=None,
        metavar="FILE.json",
        help="write the items, their provenance and the errors as JSON to this file (- for standard output, "
        "instead of the tables)",
    )
    return parser


@dataclasses.dataclass
class _Outcome:
    result: RunResult | None = None
    error: RunError | None = None
    start: float = 0.0
    end: float = 0.0
    rounds: int = 0


def _check_args(args: argparse.Namespace) -> None:
    """Refuse what would fail only after the run, before anything is loaded."""
    if not args.question.strip():
        raise _UsageError('the question is blank: write one, e.g. llmcompiler run "What time is it in Oslo?"')
    if any(not server.strip() for server in args.mcp):
        raise _UsageError('--mcp is blank: give a command ("python server.py") or a URL (http://host:port/mcp)')
    if args.mcp_prefix and not args.mcp:
        raise _UsageError("--mcp-prefix needs --mcp SERVER")
    if args.max_speculative is not None:
        if args.drafter is None:
            raise _UsageError("--max-speculative needs --drafter MODEL (without a drafter nothing is speculative)")
        if args.max_speculative < 1:
            raise _UsageError(f"--max-speculative must be 1 or more, got {args.max_speculative}")
    if args.drafter is not None and not args.drafter.strip():
        raise _UsageError("--drafter is blank: name a model, e.g. --drafter local")
    if args.drafter is not None:
        from llmcompiler.models._loader import DEFAULT_MODEL

        if args.drafter.strip() == ((args.model or "").strip() or DEFAULT_MODEL):
            raise _UsageError(
                f"--drafter {args.drafter.strip()!r} is the planner's own model: its draft would only repeat "
                "the plan; name a faster model (e.g. --drafter local with a hosted --model)"
            )
    if args.timeline is not None and not args.timeline.lower().endswith(_TIMELINE_SUFFIXES):
        raise _UsageError(f"--timeline writes .svg or .html files, got {args.timeline!r}")
    paths = {
        flag: value for flag, value in (("--trace", args.trace), ("--timeline", args.timeline)) if value is not None
    }
    for flag, value in paths.items():
        _check_writable(flag, value)
    if len(paths) == 2 and Path(args.trace).resolve() == Path(args.timeline).resolve():
        raise _UsageError(f"--trace and --timeline name the same file {args.trace!r}")


def _check_writable(flag: str, value: str) -> None:
    """Refuse a path the run's file could not be written to: exit status 2, naming ``flag``."""
    path = Path(value)
    parent = path.parent
    if path.is_dir():
        raise _UsageError(f"{flag}: {value!r} is a directory; give a file name")
    if not parent.is_dir():
        raise _UsageError(f"{flag}: cannot write {value!r}: the directory {str(parent)!r} does not exist")
    if path.exists() and not os.access(path, os.W_OK):
        raise _UsageError(f"{flag}: cannot write {value!r}: permission denied")
    if not path.exists() and not os.access(parent, os.W_OK | os.X_OK):
        raise _UsageError(f"{flag}: cannot write in the directory {str(parent)!r}: permission denied")


# The library's messages name Python parameters; the command line names its flags instead.
# (pattern, replacement), applied in order.
_FLAG_WORDING: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\s+or\s+(?:pass\s+)?api_key=(?=\W|$)"), ""),  # no flag: the key comes from the environment
    (re.compile(r"\ban 'openai:<model>' model string"), "a --model openai:<model>"),
    (re.compile(r"\bmodel string\b"), "--model"),
    (re.compile(r"\bbase_url=(?=['\"])"), "--base-url "),
    (re.compile(r"\bbase_url\b=?"), "--base-url"),
    (re.compile(r"\bpass prefix=True\b"), "pass --mcp-prefix"),
)


def _cli_wording(text: str, model_flag: str = "--model") -> str:
    """A library message as the command line's: ``--base-url`` for ``base_url=``, and so on;
    ``model_flag`` is the flag that named the model (``--drafter`` for the drafter's)."""
    for pattern, replacement in _FLAG_WORDING:
        text = pattern.sub(replacement, text)
    return text if model_flag == "--model" else text.replace("--model", model_flag)


def _load_drafter(spec: str | None, base_url: str | None) -> ChatModel | None:
    """The ``--drafter`` model: ``None`` without one; ``--base-url`` only for a drafter on a server
    (not a local one)."""
    if spec is None:
        return None
    from llmcompiler.models._loader import load_model

    local = spec.strip().partition(":")[0].strip().lower() == "local"
    try:
        return load_model(spec, base_url=None if local else base_url)
    except UserError as exc:  # its message names --model; this model came from --drafter
        raise UserError(_cli_wording(safe_text(exc), "--drafter")) from None


def _error_line(exc: BaseException) -> str:
    return f"[red]error:[/] {escape(shown_block(_cli_wording(safe_text(exc))))}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    console = Console(highlight=False)
    errors = Console(stderr=True, highlight=False)
    for each in (console, errors):  # in a pipe or a log, a long line stays one line
        each.soft_wrap = not each.is_terminal
    if args.command == "extract":
        return _extract_command(args, console, errors)
    try:
        _check_args(args)
        from llmcompiler.models._loader import load_model

        tools = [] if args.tools is None and args.mcp else _load_tools(args.tools)
        llm = load_model(args.model, base_url=args.base_url)
        drafter = _load_drafter(args.drafter, args.base_url)
        speculation: dict[str, Any] = {}
        if drafter is not None:
            speculation["drafter"] = drafter
            if args.max_speculative is not None:
                speculation["max_speculative"] = args.max_speculative

        def make_agent(mcp: list[Any]) -> LLMCompiler:
            return LLMCompiler(llm=llm, tools=[*tools, *mcp], max_replans=args.max_replans, **speculation)

        view = None if args.quiet else LiveView(console)
        outcome = asyncio.run(_run_with_servers(args.mcp, args.mcp_prefix, make_agent, args.question, view))
    except KeyboardInterrupt:
        errors.print("[red]interrupted[/]")
        return 130
    except LLMCompilerError as exc:
        errors.print(_error_line(exc), soft_wrap=True)
        return 2 if isinstance(exc, _UsageError) else 1
    status = 0
    if outcome.result is not None:
        result = outcome.result
        if args.quiet:
            print(_quiet_answer(result.answer, sys.stdout.isatty()))
    else:
        assert outcome.error is not None
        status = 1
        errors.print(_error_line(outcome.error), soft_wrap=True)
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
            f"[red]error:[/] cannot write {escape(shown_block(safe_text(exc.filename or '')))}: "
            f"{escape(shown_block(exc.strerror or safe_text(exc)))}",
            soft_wrap=True,
        )
        return 1
    return status


def _quiet_answer(answer: str, terminal: bool) -> str:
    """The answer ``--quiet`` prints: secrets out and lone surrogates escaped always; on a
    terminal, control characters escaped too (newlines and tabs kept). In a pipe the answer is
    data for the next program, so it is written as it is."""
    text = scrub(safe_text(answer))
    return escape_controls(text) if terminal else text


async def _run_with_servers(
    servers: Sequence[str],
    prefix: bool,
    make_agent: Callable[[list[Any]], LLMCompiler],
    question: str,
    view: LiveView | None,
) -> _Outcome:
    """Connect to the ``--mcp`` servers (none: run at once), run the question with their tools,
    and close them."""
    if not servers:
        return await _run(make_agent([]), question, view)
    from llmcompiler.mcp import mcp_tools

    async with contextlib.AsyncExitStack() as stack:
        try:
            mcp = await stack.enter_async_context(mcp_tools(*servers, prefix=prefix))
        except UserError as exc:
            raise _UsageError(f"--mcp: {safe_text(exc)}") from None
        return await _run(make_agent(mcp), question, view)


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


# --------------------------------------------------------------------------- extract


def _extract_command(args: argparse.Namespace, console: Console, errors: Console) -> int:
    """``llmcompiler extract``: exit status 0, 1 when some call or item failed (the rest is still
    shown), 2 for a bad option or file."""
    from llmcompiler._extract import Extractor

    try:
        if args.json not in (None, "-"):
            _check_writable("--json", args.json)
        text = _read_text(args.file)
        schemas = [schema for spec in args.schemas for schema in _load_schemas(spec)]
        from llmcompiler.models._loader import load_model

        llm = load_model(args.model, base_url=args.base_url)
        result = Extractor(schemas, llm=llm, strategy=args.strategy).run(text)
    except KeyboardInterrupt:
        errors.print("[red]interrupted[/]")
        return 130
    except LLMCompilerError as exc:
        errors.print(_error_line(exc), soft_wrap=True)
        return 2 if isinstance(exc, _UsageError) else 1
    data = _extraction_dict(result, file=args.file, model=llm.model_name)
    if args.json == "-":
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        _print_extraction(console, result, schemas)
        if args.json is not None:
            try:
                Path(args.json).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            except OSError as exc:
                errors.print(
                    f"[red]error:[/] cannot write {escape(shown(args.json))}: {escape(shown(exc.strerror or exc))}",
                    soft_wrap=True,
                )
                return 1
    return 0 if result.ok else 1


def _read_text(file: str) -> str:
    if file == "-":
        return sys.stdin.read()
    path = Path(file)
    if not path.is_file():
        raise _UsageError(f"no such file: {file!r}" if not path.exists() else f"{file!r} is not a file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise _UsageError(f"{file!r} is not UTF-8 text") from None
    except OSError as exc:
        raise _UsageError(f"cannot read {file!r}: {exc.strerror or exc}") from None


def _load_schemas(spec: str) -> list[type[BaseModel]]:
    found = _load_attr("--schemas", spec, "myschemas:SCHEMAS")
    bad = [value for value in found if not (isinstance(value, type) and issubclass(value, BaseModel))]
    if bad or not found:
        what = type(bad[0]).__name__ if bad else "an empty list"
        raise _UsageError(f"--schemas {spec}: expected a pydantic model class or a list of them, got {what}")
    return found


def _extraction_dict(result: ExtractionResult, *, file: str, model: str) -> dict[str, Any]:
    """What ``--json`` writes: the items with their provenance by schema, the errors, usage, timing.
    Model text is scrubbed of secrets."""

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return scrub(safe_text(value))
        if isinstance(value, dict):
            return {clean(k): clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return {
        "file": file,
        "model": model,
        "strategy": result.strategy,
        "items": {
            name: [
                {"item": clean(item.model_dump(mode="json")), "chunk": p.chunk, "start": p.start, "end": p.end}
                for item, p in zip(items, result.provenance[name], strict=True)
            ]
            for name, items in result.items.items()
        },
        "errors": [
            {"schema": clean(e.schema), "chunk": e.chunk, "reason": clean(e.reason), "raw": clean(e.raw)}
            for e in result.errors
        ],
        "chunks": len(result.chunks),
        "usage": dataclasses.asdict(result.usage),
        "cost_usd": result.cost_usd,
        "total_s": round(result.timings.total_s, 6),
    }


def _print_extraction(console: Console, result: ExtractionResult, schemas: Sequence[type[BaseModel]]) -> None:
    """A table per schema (each item's fields, then where it was found), the errors, a summary line."""
    from rich.table import Table

    for name, items in result.items.items():
        fields = list(next(s for s in schemas if s.__name__ == name).model_fields)
        table = Table(title=f"{escape(shown(name))} ({len(items)})", title_justify="left", show_lines=False)
        table.add_column("#", justify="right")
        for field in fields:
            table.add_column(escape(shown(field)))
        table.add_column("chunk", justify="right")
        table.add_column("chars")
        for n, (item, p) in enumerate(zip(items, result.provenance[name], strict=True), 1):
            values = item.model_dump(mode="json")
            where = "" if p.start is None else f"{p.start}-{p.end}"
            cells = [escape(shown(v if isinstance(v, str) else json.dumps(v), 120)) for v in values.values()]
            table.add_row(str(n), *cells, str(p.chunk), where)
        console.print(table)
    for e in result.errors:
        console.print(
            f"[red]failed[/] {escape(shown(e.schema))} (chunk {e.chunk}): {escape(shown(e.reason, 300))}",
            soft_wrap=True,
        )
    usage = result.usage
    cost = "cost unknown" if result.cost_usd is None else f"${result.cost_usd:.4f}"
    total = sum(len(items) for items in result.items.values())
    console.print(
        f"{total} items, {len(result.errors)} errors; {result.strategy}, {len(result.timings.calls)} calls over "
        f"{len(result.chunks)} chunks in {result.timings.total_s:.2f}s; "
        f"tokens {usage.prompt_tokens} in / {usage.completion_tokens} out; {cost}",
        soft_wrap=True,
    )


if __name__ == "__main__":
    sys.exit(main())
