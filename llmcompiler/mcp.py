"""Tools from MCP servers: every tool a Model Context Protocol server offers, as a ``Tool``.

``mcp_tools`` connects to one or more MCP servers with the official ``mcp`` SDK (2.x), lists
their tools and gives them as ``Tool``s (name, description, input schema, output schema), whose
calls go through the server's MCP session::

    from llmcompiler import LLMCompiler
    from llmcompiler.mcp import mcp_tools

    async with mcp_tools("python weather_server.py", "http://127.0.0.1:8000/mcp") as tools:
        agent = LLMCompiler(llm=llm, tools=tools)
        result = await agent.arun("Is it warmer in Paris or in Rome?")

A server is a command (a ``StdioServerParameters``, or a string split like a shell line:
``"python server.py"``), run as a subprocess and spoken to over its stdin and stdout; an
``http://`` or ``https://`` URL of a Streamable HTTP endpoint; or anything else ``mcp.Client``
accepts (a ``Transport``, an in-process ``MCPServer``). The servers connect concurrently, each
within ``connect_timeout`` seconds.

- A call's result is the server's ``structured_content`` when it sends one, else its text
  content (the text blocks joined by newlines; other blocks are named, ``[image image/png]``).
- A call the server marks ``is_error`` fails its task with the server's message
  (``search raised MCPToolError: <the server's message>``); other tasks are not touched.
- A server that dies fails its calls in flight and every later call with ``MCPServerError``
  naming the server; nothing waits for it.
- MCP tool names may hold characters plan names cannot (``-``, ``/``, spaces): they are mapped
  to ``_`` (``get-weather`` → ``get_weather``; the call still uses the server's name). Two names
  of one server that map to one name are a ``UserError``; so is one name offered by two
  servers, unless ``prefix=True`` names every tool ``<server>_<tool>`` (the server's name as it
  introduces itself, mapped the same way).
- The hints of MCP ``ToolAnnotations`` are the server's claims and are not trusted by default:
  no MCP tool is ever called from a draft plan unless ``speculative`` says so (``True``: all of
  them, ``"read_only"``: those the server marks ``readOnlyHint``, or a set of tool names).
- Leaving the ``async with`` closes every session and stops every server process.

The ``mcp`` package is an optional dependency: ``pip install 'llmcompiler[mcp]'``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shlex
import tempfile
import unicodedata
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TextIO
from urllib.parse import urlsplit

from llmcompiler._errors import UserError, really_cancelled, unwrap_group
from llmcompiler._redact import scrub
from llmcompiler._text import describe, error_text
from llmcompiler._tools import _NAME, RESERVED_NAMES, Tool

if TYPE_CHECKING:
    import mcp
    import mcp_types

__all__ = ["INSTALL_HINT", "MCPServerError", "MCPToolError", "ServerSpec", "Speculative", "mcp_tools", "plan_name"]

INSTALL_HINT = "pip install 'llmcompiler[mcp]'"

ServerSpec = Any
"""An MCP server: a ``StdioServerParameters``, a command line string (``"python server.py"``),
an ``http://``/``https://`` Streamable HTTP URL, or anything else ``mcp.Client`` accepts."""

Speculative = bool | Literal["read_only"] | Collection[str]
"""Which MCP tools a draft plan may call (see ``mcp_tools``)."""

_STDERR_TAIL = 1500


class MCPToolError(Exception):
    """An MCP server reported that a tool call failed: ``is_error`` in its result, or an MCP
    error response. The message is the server's."""


class MCPServerError(Exception):
    """An MCP server cannot answer any more: it closed the connection, died, or was closed."""


def _import_mcp() -> Any:
    try:
        import mcp
    except ImportError:
        raise UserError(f"MCP tools need the mcp package (2.x): {INSTALL_HINT}") from None
    return mcp


@contextlib.asynccontextmanager
async def mcp_tools(
    *servers: ServerSpec,
    prefix: bool = False,
    speculative: Speculative = False,
    connect_timeout: float = 30.0,
    close_timeout: float = 10.0,
    errlog: TextIO | None = None,
) -> AsyncIterator[list[Tool]]:
    """Connect to MCP servers and give their tools, for the length of an ``async with``.

    Args:
        *servers: the servers: each a ``StdioServerParameters``, a command line string (split
            with ``shlex``), an ``http://``/``https://`` Streamable HTTP URL, or anything else
            ``mcp.Client`` accepts.
        prefix: name every tool ``<server>_<tool>`` (the name the server introduces itself
            with), so servers offering tools of one name can be used together.
        speculative: which tools a draft plan may call before the planner does (see
            ``Tool.speculative``): ``False`` (none, the default: a server's hints are not
            trusted), ``True`` (all: you know these servers only read), ``"read_only"`` (the
            tools the server annotates with ``readOnlyHint``), or a collection of tool names (as
            they are given, prefixed when ``prefix=True``).
        connect_timeout: seconds each server has to start, connect and list its tools.
        close_timeout: seconds to wait for the sessions to close on exit before cancelling them.
        errlog: where the stderr of the servers run as commands goes; ``None``: a temporary
            file per server, whose end is quoted when the server cannot connect.

    Yields:
        The tools of every server, in the servers' order.

    Raises:
        UserError: the ``mcp`` package is not installed; a server that cannot start, connect or
            list its tools within ``connect_timeout`` (naming it, with the end of its stderr);
            two tools with one name (naming both servers); a bad ``speculative``.
    """
    _import_mcp()
    if not servers:
        raise UserError("mcp_tools needs at least one server")
    if not connect_timeout > 0 or not close_timeout > 0:
        raise UserError("connect_timeout and close_timeout must be positive")
    _check_speculative(speculative)
    conns = [_Connection(_resolve(spec), errlog) for spec in servers]
    try:
        await _connect_all(conns, connect_timeout)
        tools = _build_tools(conns, prefix=prefix, speculative=speculative)
    except BaseException as exc:
        await _close_all(conns, close_timeout)
        raise unwrap_group(exc) from None
    try:
        yield tools
    finally:
        await _close_all(conns, close_timeout)


# ---------------------------------------------------------------- servers


@dataclass
class _Target:
    label: str  # how messages name the server before it introduced itself: its command or URL
    fallback_name: str  # its name for ``prefix=True`` when it gives none
    client_arg: Any  # what mcp.Client is given
    stdio: Any = None  # StdioServerParameters, when it runs as a subprocess


def _resolve(spec: ServerSpec) -> _Target:
    mcp = _import_mcp()
    if isinstance(spec, str):
        text = spec.strip()
        if text.lower().startswith(("http://", "https://")):
            parts = urlsplit(text)
            # The label is shown in errors: no user:password, query or fragment (tokens ride there).
            host = parts.hostname or ""
            try:
                port = parts.port
            except ValueError:
                raise UserError(f"the MCP server URL {scrub(text)!r} has a bad port") from None
            where = f"{parts.scheme}://{host}{f':{port}' if port else ''}{parts.path}"
            return _Target(label=where, fallback_name=host or "server", client_arg=text)
        try:
            argv = shlex.split(text)
        except ValueError as exc:
            raise UserError(f"cannot read the MCP server command {spec!r}: {exc}") from None
        if not argv:
            raise UserError("an MCP server command is empty")
        spec = mcp.StdioServerParameters(command=argv[0], args=argv[1:])
    if isinstance(spec, mcp.StdioServerParameters):
        if "encoding_error_handler" not in spec.model_fields_set:
            # The SDK's default, "strict", lets one byte that is not UTF-8 on the server's stdout
            # stop its reader and hang every call for good; "replace" keeps the session working.
            spec = spec.model_copy(update={"encoding_error_handler": "replace"})
        argv = [spec.command, *spec.args]
        stem = re.sub(r"\.\w+$", "", argv[-1].rsplit("/", 1)[-1])
        # A command line may carry a key (``--api-key ...``): the label, shown in errors, is scrubbed.
        return _Target(label=scrub(shlex.join(argv)), fallback_name=stem or "server", client_arg=None, stdio=spec)
    if isinstance(spec, list | tuple | set):
        raise UserError("pass the MCP servers as separate arguments: mcp_tools(*servers)")
    name = getattr(spec, "name", None) or type(spec).__name__
    return _Target(label=str(name), fallback_name=str(name), client_arg=spec)


class _Connection:
    """One server's session, entered and left in a task of its own (the SDK's task groups must
    be exited by the task that entered them, and the servers connect concurrently)."""

    def __init__(self, target: _Target, errlog: TextIO | None) -> None:
        self.target = target
        self.errlog = errlog
        self.own_log: TextIO | None = None  # the temporary file its stderr goes to when errlog is None
        self.client: mcp.Client | None = None
        self.tools: list[mcp_types.Tool] = []
        self.server_name: str | None = None
        self.ready = asyncio.Event()
        self.stop = asyncio.Event()
        self.error: BaseException | None = None
        self.task: asyncio.Task[None] | None = None

    @property
    def label(self) -> str:
        """The server named for messages: ``'name' (command or URL)``."""
        if self.server_name and self.server_name != self.target.label:
            return f"{self.server_name!r} ({self.target.label})"
        return repr(self.target.label)

    async def run(self) -> None:
        mcp = _import_mcp()
        try:
            async with contextlib.AsyncExitStack() as stack:
                client = await stack.enter_async_context(mcp.Client(await self._transport(stack)))
                self.tools = await _list_tools(client)
                info = client.server_info
                self.server_name = info.name if info is not None and info.name else None
                self.client = client
                self.ready.set()
                await self.stop.wait()
        except BaseException as exc:
            self.error = unwrap_group(exc)
            if really_cancelled() or isinstance(self.error, KeyboardInterrupt | SystemExit):
                raise
        finally:
            self.client = None
            self.ready.set()

    async def _transport(self, stack: contextlib.AsyncExitStack) -> Any:
        """What ``mcp.Client`` is given: our own stdio transport (its stderr to ``errlog``), our
        own HTTP client (made in a thread: loading the TLS certificates blocks), or the spec."""
        target = self.target
        if target.stdio is not None:
            from mcp.client.stdio import stdio_client

            errlog = self.errlog
            if errlog is None:
                errlog = self.own_log = await asyncio.to_thread(_temporary_file)
            return stdio_client(target.stdio, errlog=errlog)
        if isinstance(target.client_arg, str):
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            def make() -> httpx2.AsyncClient:
                # The SDK's defaults: 30 s to connect, write or wait for the pool; 300 s to read a stream.
                return httpx2.AsyncClient(timeout=httpx2.Timeout(30.0, read=300.0))

            http = await stack.enter_async_context(await asyncio.to_thread(make))
            return streamable_http_client(target.client_arg, http_client=http)
        return target.client_arg

    def stderr_tail(self) -> str:
        """The end of what the server wrote to its stderr (blocking: call it in a thread)."""
        log = self.own_log
        if log is None:
            return ""
        try:
            log.seek(0)
            text = log.read().strip()
        except (OSError, ValueError):
            return ""
        return text if len(text) <= _STDERR_TAIL else "…" + text[-_STDERR_TAIL:]

    def gone(self) -> MCPServerError:
        why = f": {error_text(self.error)}" if self.error is not None else ""
        return MCPServerError(f"MCP server {self.label} is not connected any more{why}")


def _temporary_file() -> TextIO:
    return tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")


async def _list_tools(client: mcp.Client) -> list[mcp_types.Tool]:
    tools: list[mcp_types.Tool] = []
    cursor: str | None = None
    for _ in range(1000):  # a server whose cursor never ends cannot hang the connection
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools


async def _connect_all(conns: Sequence[_Connection], timeout: float) -> None:
    for conn in conns:
        conn.task = asyncio.create_task(conn.run(), name=f"mcp server {conn.target.label}")
    waiters = [asyncio.ensure_future(conn.ready.wait()) for conn in conns]
    _, pending = await asyncio.wait(waiters, timeout=timeout)
    for waiter in pending:
        waiter.cancel()
    failures = []
    for conn in conns:
        if conn.client is not None:
            continue
        if not conn.ready.is_set():
            why = f"did not connect within {timeout:g}s"
        elif conn.error is not None:
            why = f"could not connect: {describe(conn.error)}"
        else:
            why = "closed before it was ready"
        tail = await asyncio.to_thread(conn.stderr_tail)
        failures.append(f"MCP server {conn.label} {why}" + (f"\nits stderr ends with:\n{tail}" if tail else ""))
    if failures:
        raise UserError(scrub("\n".join(failures)))


async def _close_all(conns: Sequence[_Connection], timeout: float) -> None:
    tasks = [conn.task for conn in conns if conn.task is not None]
    for conn in conns:
        conn.stop.set()
        if conn.task is not None and not conn.ready.is_set():
            conn.task.cancel()  # still connecting: nothing to close politely
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    if pending:
        # The SDK's own shutdown of a cancelled stdio session is bounded (it kills the process).
        await asyncio.wait(pending, timeout=timeout)
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: a session that ended badly was reported by its calls
    logs = [conn.own_log for conn in conns if conn.own_log is not None]
    if logs:
        await asyncio.to_thread(lambda: [log.close() for log in logs])


# ---------------------------------------------------------------- tools


def plan_name(name: str) -> str:
    """The name a plan calls an MCP tool by: letters lose their accents, other letters beyond
    ASCII become their code points (so two such names stay two), other characters plan names
    refuse are mapped to ``_``.

    Example:
        >>> plan_name("get-weather"), plan_name("fs/read file"), plan_name("2fa")
        ('get_weather', 'fs_read_file', '_2fa')
        >>> plan_name("météo"), plan_name("天气")
        ('meteo', 'u5929u6c14')
    """
    name = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    name = re.sub(r"[^\W\d_]", lambda m: m[0] if m[0].isascii() else f"u{ord(m[0]):04x}", name)
    out = re.sub(r"[^A-Za-z0-9_.]", "_", name)
    if not _NAME.fullmatch(out):  # dots out of place ("a..b", "a.1"), or a leading digit
        out = re.sub(r"[^A-Za-z0-9_]", "_", name)
        if not out or out[0].isdigit():
            out = "_" + out
    if out in RESERVED_NAMES:
        out += "_"
    return out


def _check_speculative(speculative: Speculative) -> None:
    if isinstance(speculative, bool) or speculative == "read_only":
        return
    if isinstance(speculative, str) or not all(isinstance(n, str) for n in speculative):
        raise UserError(
            f"speculative must be True, False, 'read_only' or a collection of tool names, got {speculative!r}"
        )


def _is_speculative(speculative: Speculative, name: str, spec: mcp_types.Tool) -> bool:
    if isinstance(speculative, bool):
        return speculative
    if speculative == "read_only":
        return spec.annotations is not None and spec.annotations.read_only_hint is True
    return name in speculative


def _build_tools(conns: Sequence[_Connection], *, prefix: bool, speculative: Speculative) -> list[Tool]:
    tools: list[Tool] = []
    owners: dict[str, tuple[_Connection, str]] = {}
    for conn in conns:
        server_part = re.sub(r"[^A-Za-z0-9_]", "_", conn.server_name or conn.target.fallback_name)
        for spec in conn.tools:
            name = plan_name(spec.name)
            if prefix:
                name = plan_name(f"{server_part}_{name}")
            if name in owners:
                other, original = owners[name]
                if other is conn:
                    raise UserError(
                        f"MCP server {conn.label} offers tools {original!r} and {spec.name!r}, "
                        f"which both map to the plan name {name!r}"
                    )
                hint = "" if prefix else "; pass prefix=True to name tools <server>_<tool>"
                raise UserError(f"tool {name!r} is offered by two MCP servers: {other.label} and {conn.label}{hint}")
            owners[name] = (conn, spec.name)
            tools.append(_make_tool(conn, name, spec, speculative=_is_speculative(speculative, name, spec)))
    if not isinstance(speculative, bool | str):
        unknown = sorted(set(speculative) - set(owners))
        if unknown:
            raise UserError(
                f"speculative names tools no server offers: {', '.join(map(repr, unknown))} "
                f"(the tools: {', '.join(sorted(owners))})"
            )
    return tools


def _make_tool(conn: _Connection, name: str, spec: mcp_types.Tool, *, speculative: bool) -> Tool:
    original = spec.name

    async def call(**kwargs: Any) -> Any:
        client = conn.client
        if client is None:
            raise conn.gone()
        return await _call(conn, client, original, kwargs)

    output = spec.output_schema
    try:
        return Tool.from_schema(
            name=name,
            description=spec.description or (spec.annotations.title if spec.annotations else None) or "",
            parameters=spec.input_schema,
            fn=call,
            returns=output if isinstance(output, dict) and output.get("type") == "object" else None,
            speculative=speculative,
        )
    except UserError as exc:
        raise UserError(f"MCP server {conn.label}, tool {original!r}: {exc}") from None


async def _call(conn: _Connection, client: mcp.Client, name: str, arguments: dict[str, Any]) -> Any:
    import pydantic
    from mcp import MCPError
    from mcp_types import CONNECTION_CLOSED

    try:
        result = await client.call_tool(name, arguments)
    except MCPError as exc:
        if exc.code == CONNECTION_CLOSED:
            raise MCPServerError(f"MCP server {conn.label} is gone: {exc.message}") from None
        raise MCPToolError(exc.message) from None
    except (ConnectionError, EOFError) as exc:
        raise MCPServerError(f"MCP server {conn.label}: {describe(exc)}") from None
    except pydantic.ValidationError as exc:  # its message lists every member of a union, with the input
        where = ".".join(str(p) for p in exc.errors(include_url=False)[0]["loc"][:2]) or "the result"
        raise MCPToolError(
            f"MCP server {conn.label} sent a result for {name!r} that is not a valid MCP tool result (at {where})"
        ) from None
    except Exception as exc:
        import anyio

        if isinstance(exc, anyio.ClosedResourceError | anyio.BrokenResourceError | anyio.EndOfStream):
            raise MCPServerError(f"MCP server {conn.label} is not connected any more") from None
        raise
    if result.is_error:
        raise MCPToolError(_content_text(result.content) or "the tool reported an error without a message")
    if result.structured_content is not None:
        return result.structured_content
    return _content_text(result.content)


def _content_text(blocks: Sequence[Any]) -> str:
    parts = []
    for block in blocks:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind == "resource":
            resource = block.resource
            text = getattr(resource, "text", None)
            parts.append(text if isinstance(text, str) else f"[resource {resource.uri}]")
        elif kind == "resource_link":
            parts.append(f"[resource link {block.uri}]")
        else:
            mime = getattr(block, "mime_type", None)
            parts.append(f"[{kind or type(block).__name__} {mime}]" if mime else f"[{kind or type(block).__name__}]")
    return "\n".join(parts)
