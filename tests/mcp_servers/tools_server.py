"""A real MCP server (the SDK's ``MCPServer``) for tests/test_mcp.py.

    python tools_server.py [--name NAME]          stdio
    python tools_server.py --http [--name NAME]   Streamable HTTP on 127.0.0.1, an ephemeral port

Over HTTP it binds its socket first, prints ``PORT <n>`` on stdout, serves ``/mcp``, and exits
as soon as its stdin closes (the test ended, or the test process died), so no server outlives
its test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import threading

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel


class Point(BaseModel):
    x: int
    y: int


def build(name: str) -> MCPServer:
    server = MCPServer(name)
    arrived: dict[str, int] = {}
    changed = asyncio.Condition()

    @server.tool()
    async def barrier(key: str, n: int, timeout: float = 60.0) -> str:
        """Wait until n calls with this key have arrived; fails after timeout seconds."""
        async with changed:
            arrived[key] = arrived.get(key, 0) + 1
            changed.notify_all()
            try:
                await asyncio.wait_for(changed.wait_for(lambda: arrived[key] >= n), timeout)
            except TimeoutError:
                raise ToolError(f"barrier {key!r}: only {arrived[key]} of {n} calls arrived") from None
        return f"{key} passed"

    @server.tool(structured_output=False)
    async def echo(text: str, seconds: float = 0.0) -> str:
        """Echo a text after sleeping; plain text content, no structured content."""
        await asyncio.sleep(seconds)
        return text

    @server.tool()
    def point(x: int, y: int) -> Point:
        """A point: structured content."""
        return Point(x=x, y=y)

    @server.tool()
    async def fail(message: str) -> str:
        """Always fails with the message (an is_error result)."""
        raise ToolError(message)

    @server.tool()
    def pid() -> int:
        """The server's process id."""
        return os.getpid()

    @server.tool()
    def die() -> str:
        """The server process exits at once."""
        os._exit(3)

    @server.tool(name="get-weather", annotations=ToolAnnotations(read_only_hint=True))
    def get_weather(city: str) -> str:
        """Weather of a city (a name with a dash; annotated read-only)."""
        return f"sunny in {city}"

    @server.tool(name="fs/delete file", annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True))
    def delete_file(path: str) -> str:
        """Delete a file (a name with a slash and a space; not read-only)."""
        return f"deleted {path}"

    return server


def _exit_when_stdin_closes() -> None:
    sys.stdin.buffer.read()
    os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", default="tools")
    parser.add_argument("--http", action="store_true")
    parser.add_argument("--clash", action="store_true", help="offer 'get-weather' and 'get_weather' both")
    args = parser.parse_args()
    server = build(args.name)
    if args.clash:
        server.tool(name="get_weather")(lambda city: city)
    if not args.http:
        server.run()
        return

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    threading.Thread(target=_exit_when_stdin_closes, daemon=True).start()
    app = server.streamable_http_app(host="127.0.0.1")
    config = uvicorn.Config(app, log_level="warning")
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
