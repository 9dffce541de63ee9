"""One SDK client per event loop, made off the loop and closed with it."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["LoopClients"]

C = TypeVar("C")


class LoopClients(Generic[C]):
    """One SDK client per event loop, made on first use in a worker thread, closed with its loop.

    An SDK client's connection pool belongs to the loop that first used it, and ``run()``
    starts a new loop per question; so each loop gets its own client. Making one loads TLS
    certificates from disk, which is done off the loop. A small task waits for the loop to
    shut down (``asyncio.run`` cancels leftover tasks) and closes the client then, so no
    connection outlives its loop.

    Args:
        factory: makes a client.
        close: closes one.
    """

    def __init__(self, factory: Callable[[], C], close: Callable[[C], Awaitable[None]]) -> None:
        self._factory = factory
        self._close = close
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, C] = weakref.WeakKeyDictionary()
        self._keepers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = (
            weakref.WeakKeyDictionary()
        )
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()

    async def get(self) -> C:
        """The running loop's client."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is not None:
            return client
        lock = self._locks.setdefault(loop, asyncio.Lock())
        async with lock:
            client = self._clients.get(loop)
            if client is None:
                client = await asyncio.to_thread(self._factory)
                self._clients[loop] = client
                self._keepers[loop] = loop.create_task(
                    self._keep(loop, client), name="llmcompiler: close the SDK client when the loop shuts down"
                )
        return client

    async def _keep(self, loop: asyncio.AbstractEventLoop, client: C) -> None:
        try:
            await loop.create_future()
        finally:
            # The keeper task and the lock hold their loop: left in the maps, they would keep
            # every loop ``run()`` ever started alive (the weak keys never die).
            self._keepers.pop(loop, None)
            self._locks.pop(loop, None)
            if self._clients.get(loop) is client:
                del self._clients[loop]
                await self._close(client)

    async def aclose(self) -> None:
        """Close the running loop's client, if it has one."""
        loop = asyncio.get_running_loop()
        client = self._clients.pop(loop, None)
        self._locks.pop(loop, None)
        keeper = self._keepers.pop(loop, None)
        if keeper is not None:
            keeper.cancel()
        if client is not None:
            await self._close(client)
