"""Worker threads for sync tools, owned by the executor instead of asyncio's default pool.

A sync tool runs in a thread so it cannot block the event loop. ``asyncio.to_thread`` is not
fit for tools a model calls: its pool has ``min(32, cpus + 4)`` threads whatever the limits
say, ``asyncio.run`` joins that pool on the way out (a tool that hangs hangs the caller), a
hung call holds its thread for good, and a tool that raises ``StopIteration`` hangs the awaiting
task (a ``Future`` cannot hold that exception). A ``ThreadPool`` fixes each of these.

The policy:

- **Slots.** A pool has ``size`` slots (the executor sizes it from its concurrency limits); a
  call takes one from when it starts until its thread has really finished the function.
  Callers wait for a slot in arrival order (FIFO); a waiting caller can be cancelled.
- **Abandoned calls.** Python cannot stop a thread. A call whose result is no longer wanted
  (``Job.result()`` cancelled, for instance by a timeout) is *abandoned*: its thread keeps its
  slot until the function returns, and the pool opens one extra slot in its place so later
  calls still run, up to ``max_abandoned`` extra slots. Past that, abandoned calls fill the
  regular slots; once they hold every slot, ``start`` raises ``PoolExhausted`` (and queued
  callers get it) instead of waiting for calls that may never end.
- **Exit.** Threads are daemon threads: nothing joins them, neither ``asyncio.run`` nor the
  interpreter at exit, so a hung tool never keeps the caller from returning or the process
  from exiting. A thread that finishes after its event loop closed drops its result quietly.
- **Exceptions.** A tool's ``Exception`` comes back as itself. ``KeyboardInterrupt`` too (the
  user's Ctrl-C must still stop the program). Any other ``BaseException`` (``SystemExit`` from
  ``sys.exit`` or argparse, ``GeneratorExit``), and ``StopIteration``/``StopAsyncIteration``
  (which a coroutine or ``Future`` cannot carry), arrive wrapped in ``ToolBaseException``.
- **Context.** The caller's ``contextvars`` context is copied into the thread, as
  ``asyncio.to_thread`` does.
- **Threads** are reused; one left idle for ``idle_timeout`` seconds ends. They are named
  ``llmcompiler-tool-N``, with the running function's name appended while it runs.

The event loop takes the pool's lock only for a few counter updates; no thread holds it across
a call, a wait or I/O, and results travel back with ``loop.call_soon_threadsafe``, so the loop
never waits on a worker. (The lock is an ``RLock`` because the test suite's blockbuster flags a
*contended* plain ``Lock`` taken on the loop as blocking, though held for microseconds; it allows
the same kind of bookkeeping lock in ``ThreadPoolExecutor.submit``, which ``asyncio.to_thread``
takes on the loop.) One pool may serve several event loops (each job and each waiting
caller belongs to the loop that started it).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import itertools
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from llmcompiler._text import describe

__all__ = [
    "Job",
    "PoolExhausted",
    "ThreadPool",
    "ToolBaseException",
    "contain",
    "default_pool",
    "run_in_thread",
]


class ToolBaseException(Exception):
    """A ``BaseException`` a tool raised that must not travel as itself.

    ``SystemExit`` would end the program, ``GeneratorExit`` would confuse a generator, and
    ``StopIteration``/``StopAsyncIteration`` cannot pass through a coroutine or a ``Future``.
    The original is kept in ``original`` (and as ``__cause__``).
    """

    def __init__(self, original: BaseException) -> None:
        self.original = original
        super().__init__(describe(original))
        self.__cause__ = original


class PoolExhausted(RuntimeError):
    """Every slot of a thread pool is held by a call that was abandoned but has not returned."""


def contain(exc: BaseException) -> BaseException:
    """What a tool's exception ``exc`` becomes when it leaves the tool.

    Returns ``exc`` itself for an ordinary ``Exception`` and for ``KeyboardInterrupt``, and a
    ``ToolBaseException`` wrapping it for every other ``BaseException`` and for
    ``StopIteration``/``StopAsyncIteration``.
    """
    if isinstance(exc, (StopIteration, StopAsyncIteration)):
        return ToolBaseException(exc)
    if isinstance(exc, (Exception, KeyboardInterrupt)):
        return exc
    return ToolBaseException(exc)


class _Outcome:
    """What a call ended with: a value, or an exception (already contained)."""

    __slots__ = ("error", "value")

    def __init__(self, value: Any, error: BaseException | None) -> None:
        self.value = value
        self.error = error

    def unwrap(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _function_name(fn: Callable[..., Any]) -> str:
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    return name if isinstance(name, str) else type(fn).__name__


class Job:
    """One call running (or about to run) in a pool thread."""

    __slots__ = ("_abandoned", "_call", "_ended", "_finished", "_loop", "_outcome", "_pool", "_result", "name")

    def __init__(self, pool: ThreadPool, loop: asyncio.AbstractEventLoop, call: Callable[[], Any], name: str) -> None:
        self._pool = pool
        self._loop = loop
        self._call: Callable[[], Any] | None = call
        self._result: asyncio.Future[None] = loop.create_future()
        self._ended: asyncio.Future[None] | None = None  # made by the first ended() that waits
        self._outcome: _Outcome | None = None  # set on the loop when the thread's answer arrives
        self._finished = False  # set under the pool's lock when the thread is done with the call
        self._abandoned = False
        self.name = name

    def __repr__(self) -> str:
        state = "finished" if self._finished else "abandoned" if self._abandoned else "running"
        return f"<Job {self.name} {state}>"

    def done(self) -> bool:
        """Whether the thread has finished the call (returned or raised)."""
        return self._finished

    @property
    def abandoned(self) -> bool:
        """Whether the call's result was given up while it still ran."""
        return self._abandoned

    async def result(self) -> Any:
        """The call's return value, or its exception raised (see ``contain``).

        Cancelling this abandons the call (see ``abandon``).
        """
        if self._outcome is None:
            if self._result.cancelled():  # an earlier caller gave up: wait without a future of our own
                await self.ended()
            else:
                try:
                    await self._result
                except asyncio.CancelledError:
                    self.abandon()
                    raise
        assert self._outcome is not None
        return self._outcome.unwrap()

    async def ended(self) -> None:
        """Wait until the thread has really finished the call, whatever it ended with.

        Cancelling this only stops the wait.
        """
        if self._outcome is None:
            if self._ended is None:
                self._ended = self._loop.create_future()
            await asyncio.shield(self._ended)

    def abandon(self) -> None:
        """Give up on the call's result: its slot stays held until the thread finishes, and the
        pool opens an extra slot meanwhile (up to its bound). No effect once it has finished."""
        self._pool._abandon(self)

    def _run(self) -> _Outcome:
        call, self._call = self._call, None  # the job must not keep the function's arguments alive
        assert call is not None
        try:
            return _Outcome(call(), None)
        except BaseException as exc:  # every exception of a tool goes back to its caller
            return _Outcome(None, contain(exc))

    def _deliver(self, outcome: _Outcome, waiters: list[_Waiter]) -> bool:
        """Send the outcome to the job's loop, with the callers on that loop that got a slot
        (one wake-up of the loop for both). False if the loop has closed."""
        try:
            self._loop.call_soon_threadsafe(self._settle, outcome, waiters)
        except RuntimeError:
            return False  # the loop has closed: nobody waits for this result any more
        return True

    def _settle(self, outcome: _Outcome, waiters: list[_Waiter]) -> None:
        """On the loop: record the outcome and wake whoever waits for it."""
        self._outcome = outcome
        for future in (self._result, self._ended):
            if future is not None and not future.done():
                future.set_result(None)
        for waiter in waiters:
            _resolve(waiter.future)


class _Waiter:
    """A caller of ``start`` waiting for a slot."""

    __slots__ = ("cancelled", "error", "future", "granted", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()
        self.granted = False  # a slot was counted for it
        self.cancelled = False
        self.error: BaseException | None = None

    def wake(self) -> bool:
        try:
            self.loop.call_soon_threadsafe(_resolve, self.future)
        except RuntimeError:
            return False  # its loop has closed
        return True


class ThreadPool:
    """Threads for sync tool calls, with ``size`` slots (see the module docstring for the policy).

    Args:
        size: how many calls may run at once (abandoned ones aside).
        max_abandoned: how many extra slots the pool may open for abandoned calls still
            running (default: ``max(size, 32)``).
        name: the prefix of the threads' names.
        idle_timeout: seconds after which an idle thread ends.
    """

    def __init__(
        self,
        size: int,
        *,
        max_abandoned: int | None = None,
        name: str = "llmcompiler-tool",
        idle_timeout: float = 10.0,
    ) -> None:
        if size < 1:
            raise ValueError(f"a thread pool needs at least one slot, got size={size}")
        if max_abandoned is not None and max_abandoned < 0:
            raise ValueError(f"max_abandoned must be 0 or more, got {max_abandoned}")
        self.size = size
        self.max_abandoned = max(size, 32) if max_abandoned is None else max_abandoned
        self.name = name
        self.idle_timeout = idle_timeout
        self._lock = threading.RLock()  # bookkeeping only: see the module docstring
        self._work: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._waiters: deque[_Waiter] = deque()
        self._live = 0  # calls whose thread has not finished them: running or abandoned
        self._abandoned = 0
        self._threads = 0  # worker threads alive
        self._idle = 0  # idle worker threads not yet promised a job
        self._closed = False
        self._serial = itertools.count(1)

    def __repr__(self) -> str:
        return f"<ThreadPool {self.name!r} size={self.size} running={self._live} abandoned={self._abandoned}>"

    @property
    def running(self) -> int:
        """Calls whose threads have not finished them yet (abandoned ones included)."""
        return self._live

    @property
    def abandoned(self) -> int:
        """Abandoned calls whose threads still run them."""
        return self._abandoned

    @property
    def threads(self) -> int:
        """Worker threads alive, idle ones included."""
        return self._threads

    async def start(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Job:
        """Wait for a free slot (FIFO, cancellable), then start ``fn(*args, **kwargs)`` in a thread.

        Raises:
            PoolExhausted: abandoned calls that still run hold every slot.
            RuntimeError: the pool was shut down.
        """
        loop = asyncio.get_running_loop()
        waiter: _Waiter | None = None
        with self._lock:
            if self._closed:
                raise RuntimeError(f"thread pool {self.name!r} is shut down")
            if self._exhausted():
                raise PoolExhausted(self._exhausted_message())
            if not self._waiters and self._free() > 0:
                self._live += 1
            else:
                waiter = _Waiter(loop)
                self._waiters.append(waiter)
        if waiter is not None:
            await self._wait(waiter)
        try:
            return self._dispatch(loop, fn, args, kwargs)
        except BaseException:
            with self._lock:
                self._live -= 1
                wake = self._grant()
            self._wake(wake)
            raise

    async def run(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """``start`` the call and return its result; cancelling the caller abandons the call."""
        job = await self.start(fn, *args, **kwargs)
        return await job.result()

    def shutdown(self) -> None:
        """Stop taking calls; idle threads end now, busy ones when their call returns.

        Does not wait. Callers still waiting for a slot get a ``RuntimeError``.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            idle = self._idle
            waiters, self._waiters = list(self._waiters), deque()
        for _ in range(idle):
            self._work.put(None)
        for waiter in waiters:
            if not waiter.cancelled:
                waiter.error = RuntimeError(f"thread pool {self.name!r} was shut down")
                waiter.wake()

    # -- slots (call these holding the lock) ---------------------------------------------------

    def _free(self) -> int:
        return self.size + min(self._abandoned, self.max_abandoned) - self._live

    def _exhausted(self) -> bool:
        # Abandoned calls hold every slot the pool may have: only one of them returning frees one.
        return self._abandoned >= self.size + self.max_abandoned

    def _exhausted_message(self) -> str:
        return (
            f"thread pool {self.name!r} is exhausted: {self._abandoned} threads are still running "
            f"calls that timed out or were cancelled (the pool has {self.size} slots and opens at most "
            f"{self.max_abandoned} more for such calls); a new call can start when one of them returns"
        )

    def _grant(self) -> list[_Waiter]:
        """Give free slots to waiting callers, in order; returns those to wake (outside the lock)."""
        wake: list[_Waiter] = []
        while self._waiters:
            if self._exhausted():
                for waiter in self._waiters:
                    if not waiter.cancelled:
                        waiter.error = PoolExhausted(self._exhausted_message())
                        wake.append(waiter)
                self._waiters.clear()
                break
            if self._free() <= 0:
                break
            waiter = self._waiters.popleft()
            if waiter.cancelled:
                continue
            waiter.granted = True
            self._live += 1
            wake.append(waiter)
        return wake

    def _wake(self, waiters: list[_Waiter]) -> None:
        """Wake callers ``_grant`` chose (outside the lock)."""
        while waiters:
            lost = 0
            for waiter in waiters:
                if not waiter.wake() and waiter.granted:
                    lost += 1  # its loop has closed, so it will never use its slot
            if not lost:
                return
            with self._lock:
                self._live -= lost
                waiters = self._grant()

    async def _wait(self, waiter: _Waiter) -> None:
        try:
            await waiter.future
        except asyncio.CancelledError:
            with self._lock:
                waiter.cancelled = True
                wake = []
                if waiter.granted:  # the slot came just as the caller was cancelled: pass it on
                    waiter.granted = False
                    self._live -= 1
                    wake = self._grant()
            self._wake(wake)
            raise
        if waiter.error is not None:
            raise waiter.error
        if not waiter.granted:  # pragma: no cover - a waiter is only woken granted or with an error
            raise RuntimeError("woken without a slot")

    def _abandon(self, job: Job) -> None:
        with self._lock:
            if job._finished or job._abandoned:
                return
            job._abandoned = True
            self._abandoned += 1
            wake = self._grant()
        self._wake(wake)

    # -- threads -------------------------------------------------------------------------------

    def _dispatch(
        self, loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Job:
        """Hand a call that holds a slot to an idle thread, or to a new one."""
        context = contextvars.copy_context()
        job = Job(self, loop, functools.partial(context.run, fn, *args, **kwargs), _function_name(fn))
        with self._lock:
            if self._closed:
                raise RuntimeError(f"thread pool {self.name!r} is shut down")
            spawn = self._idle == 0
            if spawn:
                self._threads += 1
            else:
                self._idle -= 1  # that idle thread is now promised this job
        if spawn:
            thread_name = f"{self.name}-{next(self._serial)}"
            try:
                threading.Thread(target=self._work_loop, args=(thread_name,), name=thread_name, daemon=True).start()
            except BaseException:
                with self._lock:
                    self._threads -= 1
                raise
        self._work.put(job)
        return job

    def _work_loop(self, base_name: str) -> None:
        """A worker thread: run jobs until shut down or idle for ``idle_timeout`` seconds."""
        thread = threading.current_thread()
        while True:
            try:
                job = self._work.get(timeout=self.idle_timeout)
            except queue.Empty:
                with self._lock:
                    if self._idle > 0:  # more idle threads than promised jobs: this one may end
                        self._idle -= 1
                        self._threads -= 1
                        return
                continue  # a job was promised to an idle thread: this one stays to take it
            if job is None:  # shut down
                with self._lock:
                    self._idle -= 1
                    self._threads -= 1
                return
            thread.name = f"{base_name} {job.name}"
            outcome = job._run()
            thread.name = base_name
            with self._lock:
                job._finished = True
                self._live -= 1
                if job._abandoned:
                    self._abandoned -= 1
                wake = self._grant()
                leave = self._closed
                if leave:
                    self._threads -= 1
                else:
                    self._idle += 1
            # Callers on the job's loop are woken with its outcome, in one wake-up of that loop.
            here = [w for w in wake if w.loop is job._loop]
            if not job._deliver(outcome, here):
                self._wake(here)  # that loop has closed: this gives their slots back
            self._wake([w for w in wake if w.loop is not job._loop])
            del job, outcome, wake, here  # an idle thread keeps no result alive
            if leave:
                return


_default_lock = threading.RLock()
_default: ThreadPool | None = None


def default_pool() -> ThreadPool:
    """The pool ``Tool.call`` uses outside an executor (32 slots, created on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = ThreadPool(32)  # threads named like an executor's: llmcompiler-tool-N
        return _default


async def run_in_thread(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """Run ``fn(*args, **kwargs)`` in ``default_pool()`` and return its result (see ``ThreadPool.run``)."""
    return await default_pool().run(fn, *args, **kwargs)
