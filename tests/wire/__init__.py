"""Loopback HTTP servers that speak the providers' streaming wire formats, scripted per test.

A ``LoopbackServer`` runs a starlette app under uvicorn in a background thread on
127.0.0.1 and a free port; ``serve`` starts one and stops it when the block ends. The app
answers each request with the next scripted ``Reply`` and records what it received, so tests
can drive the real SDK clients and then assert on the JSON they sent.

Replies:
    ``SSE(frames)``: a 200 event stream; a frame is raw SSE text or a ``Gate`` the server
    waits on before sending what follows (so a test can prove chunks arrive one by one).
    ``SSE(frames, cut=True)``: the connection is dropped after the frames, mid-body.
    ``Status(code, body, headers)``: an error response (``Retry-After`` etc. in headers).
    ``Hang()``: no response at all until the client gives up and disconnects.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

__all__ = [
    "SSE",
    "Gate",
    "Hang",
    "LoopbackServer",
    "Recorded",
    "Reply",
    "Script",
    "Status",
    "build_app",
    "free_port",
    "serve",
]

GATE_TIMEOUT = 30.0


class StreamAborted(Exception):
    """Raised inside a streamed body to make uvicorn drop the connection mid-body."""


@dataclasses.dataclass
class Gate:
    """A point in a stream where the server waits until the test calls ``open()``."""

    event: threading.Event = dataclasses.field(default_factory=threading.Event)

    def open(self) -> None:
        """Let the server send the rest of the stream."""
        self.event.set()


@dataclasses.dataclass
class SSE:
    """A 200 ``text/event-stream`` reply."""

    frames: list[str | Gate]
    cut: bool = False


@dataclasses.dataclass
class Status:
    """A non-streamed reply with an HTTP status."""

    code: int
    body: dict[str, Any]
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Hang:
    """No reply until the client disconnects (a request that times out)."""


Reply = SSE | Status | Hang


@dataclasses.dataclass
class Recorded:
    """One request the server received."""

    path: str
    headers: dict[str, str]
    body: Any
    at: float = 0.0
    """``time.monotonic()`` when the request arrived."""


class Script:
    """The replies a server will give, in order, and the requests it got.

    ``route``, when set, picks the reply from the request itself (for concurrent requests,
    whose order is not known): a ``Reply``, or ``None`` for the next queued one.
    """

    def __init__(self) -> None:
        self.replies: collections.deque[Reply] = collections.deque()
        self.served: list[Reply] = []
        self.requests: list[Recorded] = []
        self.unexpected: list[Recorded] = []
        self.route: Callable[[Recorded], Reply | None] | None = None

    def add(self, *replies: Reply) -> None:
        """Queue replies for the next requests."""
        self.replies.extend(replies)

    def next(self, recorded: Recorded) -> Reply | None:
        self.requests.append(recorded)
        if self.route is not None:
            routed = self.route(recorded)
            if routed is not None:
                self.served.append(routed)
                return routed
        try:
            reply = self.replies.popleft()
        except IndexError:
            self.unexpected.append(recorded)
            return None
        self.served.append(reply)
        return reply

    def release(self) -> None:
        """Open every gate, queued or in a reply being sent (so nothing waits after a failed test)."""
        for reply in [*self.served, *self.replies]:
            if isinstance(reply, SSE):
                for frame in reply.frames:
                    if isinstance(frame, Gate):
                        frame.open()

    def reset(self) -> None:
        """Forget replies and requests (between tests)."""
        self.release()
        self.route = None
        self.replies.clear()
        self.served.clear()
        self.requests.clear()
        self.unexpected.clear()

    def bodies(self) -> list[Any]:
        """The JSON bodies received, in order."""
        return [r.body for r in self.requests]


async def _frames(reply: SSE) -> AsyncIterator[bytes]:
    for frame in reply.frames:
        if isinstance(frame, Gate):
            opened = await asyncio.to_thread(frame.event.wait, GATE_TIMEOUT)
            if not opened:
                raise StreamAborted("gate never opened")
            continue
        yield frame.encode()
    if reply.cut:
        raise StreamAborted("cut on purpose")


def build_app(script: Script, paths: list[str]) -> Starlette:
    """A starlette app answering POSTs to ``paths`` from ``script``."""

    async def endpoint(request: Request) -> Response:
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw.decode(errors="replace")
        recorded = Recorded(path=request.url.path, headers=dict(request.headers), body=body, at=time.monotonic())
        reply = script.next(recorded)
        if reply is None:
            return JSONResponse(
                {"error": {"type": "script_exhausted", "message": "no scripted reply left"}},
                status_code=418,
                headers={"x-should-retry": "false"},
            )
        if isinstance(reply, Status):
            return JSONResponse(reply.body, status_code=reply.code, headers=reply.headers)
        if isinstance(reply, Hang):
            while (await request.receive())["type"] != "http.disconnect":
                pass
            return Response(status_code=499)
        return StreamingResponse(_frames(reply), media_type="text/event-stream", headers={"cache-control": "no-cache"})

    return Starlette(routes=[Route(path, endpoint, methods=["POST"]) for path in paths])


def free_port() -> int:
    """A loopback port nobody listens on (for "server unreachable" tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, started: threading.Event) -> None:
        super().__init__(config)
        self._started_event = started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self._started_event.set()


class LoopbackServer:
    """A uvicorn server for ``app`` on 127.0.0.1 in a background thread.

    Attributes:
        port: the port it listens on.
    """

    def __init__(self, app: Starlette) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            log_level="critical",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        self._started = threading.Event()
        self._server = _Server(config, self._started)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start serving; returns once the server accepts connections."""
        self._thread.start()
        if not self._started.wait(timeout=30):
            raise RuntimeError("the loopback server did not start within 30 s")

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._sock.close()
        if self._thread.is_alive():
            raise RuntimeError("the loopback server did not stop within 30 s")


@contextlib.contextmanager
def serve(make_app: Callable[[Script], Starlette]) -> Iterator[tuple[LoopbackServer, Script]]:
    """Run a scripted server for the duration of the block."""
    script = Script()
    server = LoopbackServer(make_app(script))
    server.start()
    try:
        yield server, script
    finally:
        script.release()
        server.stop()
