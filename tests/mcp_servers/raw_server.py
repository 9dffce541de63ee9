"""An MCP server written by hand (JSON-RPC lines over stdio, no SDK) for tests/test_mcp.py: it
sends what the SDK's own server never would.

    python raw_server.py

Its one tool, ``say(what)``, answers with:

- ``"latin1"``: a text whose ``é`` is encoded as Latin-1, not UTF-8;
- ``"stray"``: a line of bytes that are not UTF-8 before the answer (``ok``);
- ``"hologram"``: a content block of a type MCP does not know;
- anything else: the text itself.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def send(message: dict[str, Any]) -> None:
    sys.stdout.buffer.write(json.dumps(message).encode() + b"\n")
    sys.stdout.buffer.flush()


def result(mid: object, value: dict[str, Any]) -> None:
    send({"jsonrpc": "2.0", "id": mid, "result": value})


def text(value: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": value}]}


def call(mid: object, what: str) -> None:
    if what == "latin1":
        sys.stdout.buffer.write(b'{"jsonrpc": "2.0", "id": %s, "result": ' % json.dumps(mid).encode())
        sys.stdout.buffer.write(b'{"content": [{"type": "text", "text": "caf\xe9"}]}}\n')
        sys.stdout.buffer.flush()
    elif what == "stray":
        sys.stdout.buffer.write(b"\xff\xfe\n")
        result(mid, text("ok"))
    elif what == "hologram":
        result(mid, {"content": [{"type": "text", "text": "ok"}, {"type": "hologram", "depth": 3}]})
    else:
        result(mid, text(what))


def main() -> None:
    for line in sys.stdin.buffer:
        message = json.loads(line)
        mid, method = message.get("id"), message.get("method")
        if mid is None:
            continue  # a notification
        if method == "initialize":
            info = {"name": "raw", "version": "1"}
            version = message["params"]["protocolVersion"]
            result(mid, {"protocolVersion": version, "capabilities": {"tools": {}}, "serverInfo": info})
        elif method == "tools/list":
            schema = {"type": "object", "properties": {"what": {"type": "string"}}, "required": ["what"]}
            result(mid, {"tools": [{"name": "say", "inputSchema": schema}]})
        elif method == "tools/call":
            call(mid, message["params"]["arguments"]["what"])
        else:
            send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": "Method not found"}})


if __name__ == "__main__":
    main()
