"""Load balancing: compute-bound tools run in worker processes, one per core.

I/O-bound tools stay on the event loop (async) or in threads (sync); a tool marked
``compute_bound`` runs in a worker process, so CPU-heavy calls run truly in parallel and
never more of them at once than there are processors: the rest wait their turn in arrival
order (after LLMOrch, arXiv 2504.14872).

Why our own pool rather than ``concurrent.futures.ProcessPoolExecutor``: a call that times out
there keeps its worker busy until it ends (later calls time out waiting), and the interpreter
waits for it at exit. Here each of the ``size`` slots is a thread that owns one worker process
and talks to it over a pipe:

- **Cancelling a running call kills its worker** (``SIGKILL``); the slot starts a new
  process for its next call. Other calls, on other workers, go on untouched.
- **A worker that dies** (killed from outside, out of memory, ``os._exit``) fails only the
  call it was running, with a message saying how it died; its slot starts a new one.
- **Exit is prompt**: at interpreter exit every worker is killed, nothing waits for
  abandoned work, and the slot threads are daemon threads.
- **Exceptions** come back as themselves when they can be pickled, else as ``RemoteError``
  naming the type; a ``BaseException`` (``SystemExit``, ``KeyboardInterrupt`` raised by the
  tool: workers ignore Ctrl-C, which is the parent's to handle) arrives wrapped in
  ``ToolBaseException`` (see ``llmcompiler._threads``).

A function sent to another process must be picklable. A module-level function decorated with
``@tool`` is not (its module name now holds the ``Tool``), so it is sent by name and looked up
in the worker, which unwraps the ``Tool``. A bound method is sent with a copy of its object,
so that object must pickle (``check_offloadable`` refuses it at tool creation otherwise), and
changes the call makes to the copy stay in the worker.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib
import inspect
import itertools
import multiprocessing
import multiprocessing.connection
import multiprocessing.util  # its exit handler must be registered before ours (ours runs first)
import os
import pickle
import queue
import signal
import sys
import threading
import traceback
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from llmcompiler._errors import UserError
from llmcompiler._threads import ToolBaseException

__all__ = [
    "ProcessPool",
    "RemoteError",
    "WorkerDied",
    "check_offloadable",
    "cpu_slots",
    "process_pool",
    "run_in_process",
    "set_process_pool",
    "shutdown_process_pool",
]


class WorkerDied(RuntimeError):
    """The worker process running a call died before answering (killed, out of memory, exited)."""


class RemoteError(Exception):
    """An exception raised in a worker that could not be sent back as itself (it does not pickle).

    ``type_name`` is the qualified name of its type; the message is its text.
    """

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(type_name, message)
        self.type_name = type_name

    def __str__(self) -> str:
        return f"{self.type_name}: {self.args[1]}" if self.args[1] else self.type_name


class _RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker, shown as its ``__cause__``."""

    def __str__(self) -> str:
        return str(self.args[0])


def cpu_slots() -> int:
    """The processors this process may run on (its CPU affinity, else ``os.cpu_count()``)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _default_context() -> multiprocessing.context.BaseContext:
    # Forking a process that runs threads is deprecated from 3.12 on; forkserver starts clean.
    if sys.platform.startswith("linux") and sys.version_info >= (3, 12):  # pragma: no cover - 3.11 here
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context()


# -- sending functions ------------------------------------------------------------------------


def _module_level(fn: Any) -> bool:
    qualname = getattr(fn, "__qualname__", None)
    module = getattr(fn, "__module__", None)
    return isinstance(qualname, str) and isinstance(module, str) and "<" not in qualname


def _unbound_method(fn: Any) -> bool:
    """A function written in a class body that takes ``self``: called bare, it lacks its object."""
    if not inspect.isfunction(fn) or "." not in fn.__qualname__:
        return False
    try:
        first = next(iter(inspect.signature(fn).parameters), None)
    except (TypeError, ValueError):  # pragma: no cover - every function has a signature
        return False
    return first == "self"


def check_offloadable(fn: Callable[..., Any], what: str) -> None:
    """Check that ``fn`` can be sent to a worker process and called there.

    Raises:
        UserError: it is a lambda, a function defined inside another function, a method
            taken from its class body (no object to call it on), a bound method of an object
            that cannot be pickled, or another object that cannot be pickled.
    """
    if _unbound_method(fn):
        raise UserError(
            f"{what} is compute_bound, so it runs in another process: {fn.__qualname__!r} is a method "
            "written in a class body, which the worker would call without its object. Use a module-level "
            "function, or a bound method of a picklable object (tool(compute_bound=True)(obj.method))"
        )
    owner = getattr(fn, "__self__", None)
    if inspect.ismethod(fn) and not inspect.isclass(owner):
        # A bound method travels with a copy of its object: that object must pickle.
        try:
            pickle.loads(pickle.dumps(fn))
        except Exception as exc:
            raise UserError(
                f"{what} is compute_bound, so it runs in another process with a copy of its object, but "
                f"{fn.__qualname__!r} is bound to a {type(owner).__name__} object that cannot be pickled "
                f"({exc}): make that object picklable or use a module-level function"
            ) from None
        return
    if _module_level(fn):
        return
    try:
        pickle.dumps(fn)
    except Exception as exc:
        name = getattr(fn, "__qualname__", type(fn).__name__)
        raise UserError(
            f"{what} is compute_bound, so it runs in another process and must be picklable: "
            f"define it at module level ({name!r} cannot be pickled: {exc})"
        ) from None


class _ByName:
    """A function sent by its module and qualified name, looked up in the worker."""

    __slots__ = ("module", "qualname")

    def __init__(self, module: str, qualname: str) -> None:
        self.module = module
        self.qualname = qualname

    def __reduce__(self) -> tuple[Any, ...]:
        return (_ByName, (self.module, self.qualname))

    def resolve(self) -> Callable[..., Any]:
        obj: Any = importlib.import_module(self.module)
        for part in self.qualname.split("."):
            obj = getattr(obj, part)
        inner = getattr(obj, "_fn", None)  # a Tool made by @tool: call the function it wraps
        if inner is not None and getattr(inner, "__qualname__", None) == self.qualname:
            return inner  # type: ignore[no-any-return]
        return obj  # type: ignore[no-any-return]


# fn -> its _ByName, or None when fn itself pickles (a value holding fn would keep it alive).
_refs: weakref.WeakKeyDictionary[Any, _ByName | None] = weakref.WeakKeyDictionary()


def _reference(fn: Callable[..., Any]) -> Any:
    """What to send for ``fn``: the function itself when it pickles, else its name."""
    try:
        by_name = _refs[fn]
    except (KeyError, TypeError):  # not seen yet, or not weakly referenceable / hashable
        try:
            pickle.dumps(fn)
            by_name = None
        except Exception:
            if not _module_level(fn) or inspect.ismethod(fn):
                raise
            by_name = _ByName(fn.__module__, fn.__qualname__)
        try:
            _refs[fn] = by_name
        except TypeError:
            pass
    return fn if by_name is None else by_name


# -- the worker process ---------------------------------------------------------------------


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a ``RemoteError`` that does."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        try:
            message = str(exc)
        except Exception:
            message = ""
        return RemoteError(f"{type(exc).__module__}.{type(exc).__qualname__}", message)
    return exc


def _answer(data: bytes) -> bytes:
    """Run one call sent to the worker; its pickled reply."""
    try:
        ref, args, kwargs = pickle.loads(data)
        fn = ref.resolve() if isinstance(ref, _ByName) else ref
        reply: tuple[Any, ...] = ("ok", fn(*args, **kwargs))
    except BaseException as exc:  # every exception of a tool goes back to its caller
        reply = ("error", _portable(exc), "".join(traceback.format_exception(exc)))
    try:
        return pickle.dumps(reply)
    except Exception as exc:
        return pickle.dumps(("error", TypeError(f"its result cannot be sent back from the worker process: {exc}"), ""))


_STOP = b"stop"  # not a pickle: tells a worker to exit (its pipe may not close: forked siblings share it)


def _worker_main(
    conn: multiprocessing.connection.Connection, parent_end: multiprocessing.connection.Connection
) -> None:
    """A worker process: answer calls from the pipe until it closes or the parent says stop."""
    parent_end.close()  # our copy of the parent's end: without it, the pipe closes when the parent dies
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which kills us if it must
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        if data == _STOP:
            return
        reply = _answer(data)
        del data
        try:
            conn.send_bytes(reply)
        except OSError:
            return


# -- the pool ---------------------------------------------------------------------------------

_QUEUED, _RUNNING, _CANCELLED, _DONE = range(4)

_spawn_lock = threading.Lock()  # taken in slot threads and at exit, never on an event loop
_pools: weakref.WeakSet[ProcessPool] = weakref.WeakSet()


class _Call:
    """One call waiting for, or running on, a worker."""

    __slots__ = ("future", "loop", "payload", "state", "worker")

    def __init__(self, loop: asyncio.AbstractEventLoop, payload: tuple[Any, ...]) -> None:
        self.loop = loop
        self.payload = payload
        self.future: asyncio.Future[tuple[bool, Any]] = loop.create_future()
        self.state = _QUEUED
        self.worker: _Worker | None = None

    def deliver(self, ok: bool, value: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(_settle, self.future, (ok, value))
        except RuntimeError:
            pass  # the loop has closed: nobody waits for this result any more


def _settle(future: asyncio.Future[tuple[bool, Any]], outcome: tuple[bool, Any]) -> None:
    if not future.done():
        future.set_result(outcome)


def _must_wrap(exc: BaseException) -> bool:
    """A worker's exception that must not travel as itself: any ``BaseException`` that is not an
    ``Exception`` (a worker's ``KeyboardInterrupt`` is the tool's own, not the user's Ctrl-C), and
    ``StopIteration``/``StopAsyncIteration``, which a coroutine cannot raise."""
    return not isinstance(exc, Exception) or isinstance(exc, (StopIteration, StopAsyncIteration))


def _how_it_died(exitcode: int | None) -> str:
    if exitcode is None:
        return "it stopped answering"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = ": out of memory, or killed from outside" if -exitcode == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"it exited with code {exitcode}"


class _Worker:
    """One worker process and the parent's end of its pipe (used by one slot thread)."""

    def __init__(self, context: multiprocessing.context.BaseContext, name: str) -> None:
        parent, child = context.Pipe(duplex=True)
        self.conn = parent
        start: Any = context  # typeshed's BaseContext does not declare Process
        self.process: Any = start.Process(target=_worker_main, args=(child, parent), name=name, daemon=False)
        # Started under _spawn_lock (see ProcessPool._spawn): one start at a time, so no worker is
        # forked while another's child end is still open here (it would keep that pipe open).
        self.process.start()
        child.close()

    def alive(self) -> bool:
        return bool(self.process.is_alive())

    def kill(self) -> None:
        try:
            self.process.kill()
        except (OSError, ValueError):  # already gone, or already closed
            pass

    def call(self, payload: tuple[Any, ...]) -> tuple[bool, Any]:
        """Send one call and wait for its answer (in the slot thread).

        Returns ``(True, value)`` or ``(False, exception)``; raises ``WorkerDied``.
        """
        data = pickle.dumps(payload)  # fails here, before anything is sent, if it cannot pickle
        try:
            self.conn.send_bytes(data)
            del data
            ready = multiprocessing.connection.wait([self.conn, self.process.sentinel])
            if self.conn not in ready:
                raise EOFError("the worker exited")
            raw = self.conn.recv_bytes()
        except (EOFError, OSError) as exc:
            self.process.join(5)
            raise WorkerDied(f"the worker process running it died ({_how_it_died(self.process.exitcode)})") from exc
        try:
            reply = pickle.loads(raw)
        except Exception as exc:  # the worker sent it; this process cannot rebuild it
            return False, TypeError(f"its result cannot be read back from the worker process: {exc}")
        if reply[0] == "ok":
            return True, reply[1]
        error: BaseException = reply[1]
        if reply[2]:
            error.__cause__ = _RemoteTraceback(reply[2])
        return False, error

    def stop(self) -> None:
        """End the process (idle: ask it to exit), killing it if it lingers."""
        try:
            self.conn.send_bytes(_STOP)
        except OSError:
            pass  # dead already
        self.conn.close()
        self.process.join(1)
        if self.process.exitcode is None:
            self.kill()
            self.process.join(1)


class ProcessPool:
    """Worker processes for compute-bound calls: ``size`` slots, one process each.

    Slot threads and worker processes start on first use. See the module docstring for
    what cancelling a call and a worker dying do.

    Args:
        size: how many calls may run at once (default: ``cpu_slots()``).
        context: the ``multiprocessing`` context that starts workers.
    """

    def __init__(self, size: int | None = None, *, context: multiprocessing.context.BaseContext | None = None) -> None:
        self.size = cpu_slots() if size is None else size
        if self.size < 1:
            raise ValueError(f"a process pool needs at least one slot, got size={size}")
        self._context = context or _default_context()
        # Bookkeeping only (an RLock: see llmcompiler._threads on blockbuster).
        self._lock = threading.RLock()
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._workers: dict[int, _Worker] = {}  # slot -> its current worker
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._exiting = False
        self._serial = itertools.count(1)
        _pools.add(self)

    def __repr__(self) -> str:
        return f"<ProcessPool size={self.size} workers={len(self._workers)}>"

    def pids(self) -> list[int]:
        """The process ids of the workers alive now."""
        with self._lock:
            return [w.process.pid for w in self._workers.values() if w.process.pid is not None]

    async def run(self, ref: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Call ``ref(*args, **kwargs)`` in a worker (``ref`` as ``_reference`` makes it).

        Cancelling the caller cancels the call: a queued one never runs, a running one has
        its worker killed.

        Raises:
            WorkerDied: the worker died while running it.
            RuntimeError: the pool was shut down.
        """
        call = _Call(asyncio.get_running_loop(), (ref, args, kwargs))
        with self._lock:
            if self._closed:
                why = ": the interpreter is exiting" if self._exiting else ""
                raise RuntimeError(f"the process pool is shut down{why}")
            if not self._threads:
                self._threads = [
                    threading.Thread(
                        target=self._slot_loop, args=(slot,), name=f"llmcompiler-cpu-slot-{slot}", daemon=True
                    )
                    for slot in range(self.size)
                ]
                for thread in self._threads:
                    thread.start()
            # Queued under the lock: a shutdown cannot slip in between its check and the put and
            # leave the call with no slot thread to answer it (the put never blocks).
            self._calls.put(call)
        try:
            ok, value = await call.future
        except asyncio.CancelledError:
            self._cancel(call)
            raise
        if ok:
            return value
        raise value

    def _cancel(self, call: _Call) -> None:
        with self._lock:
            if call.state == _RUNNING and call.worker is not None:
                # Under the lock, so the worker is still on this call, not on a later one.
                call.worker.kill()
            if call.state in (_QUEUED, _RUNNING):
                call.state = _CANCELLED

    def _slot_loop(self, slot: int) -> None:
        """A slot thread: run calls on this slot's worker, one at a time, in arrival order."""
        worker: _Worker | None = None
        while (call := self._calls.get()) is not None:
            if not self._take(call):
                continue
            if worker is None or not worker.alive():
                if worker is not None:
                    worker.stop()
                try:
                    worker = self._spawn(slot)
                except Exception as exc:
                    worker = None
                    self._finish(call, False, RuntimeError(f"could not start a worker process: {exc}"))
                    continue
                if worker is None:
                    return  # the interpreter is exiting
            with self._lock:
                if call.state == _CANCELLED:
                    continue  # cancelled while its worker started: do not run it
                call.worker = worker
            try:
                ok, value = worker.call(call.payload)
            except WorkerDied as exc:
                ok, value = False, exc
                worker.stop()
                worker = None
                self._forget(slot)
                if self._exiting:
                    return  # killed because the interpreter is exiting: nobody needs an answer
            except Exception as exc:  # its arguments do not pickle
                ok, value = False, TypeError(f"its arguments cannot be sent to a worker process: {exc}")
            self._finish(call, ok, ToolBaseException(value) if not ok and _must_wrap(value) else value)
            del call, value
        if worker is not None:
            worker.stop()
        self._forget(slot)

    def _take(self, call: _Call) -> bool:
        """Mark a queued call running; False if it was cancelled or the pool shut down."""
        with self._lock:
            if call.state != _QUEUED:
                return False  # cancelled while queued
            if not self._closed:
                call.state = _RUNNING
                return True
            if self._exiting:
                return False  # the interpreter is exiting: nobody needs an answer
        self._finish(call, False, RuntimeError("the process pool was shut down"))
        return False

    def _spawn(self, slot: int) -> _Worker | None:
        """Start this slot's worker process; None once the interpreter is exiting.

        Under ``_spawn_lock``, which ``kill_workers`` takes too: no worker can be forked after
        it ran, or between the fork and the moment the worker is on the list it kills.
        """
        with _spawn_lock:
            if self._exiting:
                return None
            worker = _Worker(self._context, f"llmcompiler-cpu-{slot}.{next(self._serial)}")
            with self._lock:
                self._workers[slot] = worker
        return worker

    def _finish(self, call: _Call, ok: bool, value: Any) -> None:
        """Hand a call's outcome to its caller, unless the caller gave up on it."""
        with self._lock:
            cancelled = call.state == _CANCELLED
            call.state = _DONE
            call.worker = None
        if not cancelled:
            call.deliver(ok, value)

    def _forget(self, slot: int) -> None:
        with self._lock:
            self._workers.pop(slot, None)

    def shutdown(self, wait: bool = True) -> None:
        """Stop the pool: queued calls fail; with ``wait``, running calls finish first and the
        workers are joined; without, every worker is killed now."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads = list(self._threads)
            workers = list(self._workers.values())
        for _ in threads:
            self._calls.put(None)
        if not wait:
            for worker in workers:
                worker.kill()
            return
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join()

    def kill_workers(self) -> None:
        """Kill every worker process now (at interpreter exit: nothing waits for their calls)."""
        with _spawn_lock, self._lock:
            self._closed = self._exiting = True
            for worker in self._workers.values():
                worker.kill()


_lock = threading.RLock()
_pool: ProcessPool | None = None
_pool_is_ours = False


def process_pool() -> ProcessPool:
    """The process pool compute-bound tools run in (created on first use, one worker per core)."""
    global _pool, _pool_is_ours
    with _lock:
        if _pool is None:
            _pool, _pool_is_ours = ProcessPool(), True
        return _pool


def set_process_pool(pool: ProcessPool | None) -> None:
    """Use ``pool`` for compute-bound tools (``None``: go back to the default, created on next use).

    The previous default pool, if one was created, is shut down; a pool you set is yours to shut down.
    """
    global _pool, _pool_is_ours
    with _lock:
        old, was_ours = _pool, _pool_is_ours
        _pool, _pool_is_ours = pool, False
    if old is not None and was_ours and old is not pool:
        old.shutdown(wait=False)


def shutdown_process_pool(wait: bool = True) -> None:
    """Shut the default process pool down (a later compute-bound call starts a new one).

    With ``wait``, running calls finish and the workers exit before this returns; without,
    the workers are killed.
    """
    global _pool, _pool_is_ours
    with _lock:
        old, was_ours = _pool, _pool_is_ours
        _pool, _pool_is_ours = None, False
    if old is not None and was_ours:
        old.shutdown(wait=wait)


def _at_exit() -> None:
    # Registered after multiprocessing's own exit handler (imported above), so it runs first:
    # that handler joins every child process, which would wait for abandoned calls.
    for pool in list(_pools):
        pool.kill_workers()


atexit.register(_at_exit)


async def run_in_process(fn: Callable[..., Any], kwargs: Mapping[str, Any], *, args: tuple[Any, ...] = ()) -> Any:
    """Call ``fn(*args, **kwargs)`` in a worker process and return its result.

    Cancelling the caller cancels the call; if it is running, its worker is killed and replaced.

    Raises:
        UserError: ``fn`` cannot be sent to another process.
        WorkerDied: the worker process died while running it.
        ToolBaseException: it raised a ``BaseException`` that is not an ``Exception``.
    """
    try:
        ref = _reference(fn)
    except Exception as exc:
        raise UserError(f"{getattr(fn, '__qualname__', fn)!r} cannot be sent to a worker process: {exc}") from None
    return await process_pool().run(ref, args, dict(kwargs))
