"""Load balancing: compute-bound tools run in a process pool sized to the cores.

I/O-bound tools stay on the event loop (async) or in threads (sync); a tool marked
``compute_bound`` runs in a shared ``ProcessPoolExecutor`` with one worker per available
core, so CPU-heavy calls run truly in parallel and never more of them at once than there
are processors: the rest wait in the pool's queue (after LLMOrch, arXiv 2504.14872).

A function sent to another process must be picklable. A module-level function decorated
with ``@tool`` is not (its module name now holds the ``Tool``), so it is sent by name and
looked up in the worker, which unwraps the ``Tool``.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import functools
import importlib
import multiprocessing
import os
import pickle
import sys
import threading
from collections.abc import Callable, Mapping
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from llmcompiler._errors import UserError

__all__ = [
    "check_offloadable",
    "cpu_slots",
    "process_pool",
    "run_in_process",
    "set_process_pool",
    "shutdown_process_pool",
]

_lock = threading.Lock()
_pool: concurrent.futures.Executor | None = None
_pool_is_ours = False
_refs: dict[Any, Any] = {}


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


def process_pool() -> concurrent.futures.Executor:
    """The process pool compute-bound tools run in (created on first use, one worker per core)."""
    global _pool, _pool_is_ours
    with _lock:
        if _pool is None:
            _pool = concurrent.futures.ProcessPoolExecutor(max_workers=cpu_slots(), mp_context=_default_context())
            _pool_is_ours = True
        return _pool


def set_process_pool(pool: concurrent.futures.Executor | None) -> None:
    """Use ``pool`` for compute-bound tools (``None``: go back to the default, created on next use).

    The previous default pool, if one was created, is shut down; a pool you set is yours to shut down.
    """
    global _pool, _pool_is_ours
    with _lock:
        old, was_ours = _pool, _pool_is_ours
        _pool, _pool_is_ours = pool, False
    if old is not None and was_ours and old is not pool:
        old.shutdown(wait=False, cancel_futures=True)


def shutdown_process_pool(wait: bool = True) -> None:
    """Shut the default process pool down (a later compute-bound call starts a new one)."""
    global _pool, _pool_is_ours
    with _lock:
        old, was_ours = _pool, _pool_is_ours
        _pool, _pool_is_ours = None, False
    if old is not None and was_ours:
        old.shutdown(wait=wait, cancel_futures=True)


atexit.register(shutdown_process_pool, False)


def _module_level(fn: Any) -> bool:
    qualname = getattr(fn, "__qualname__", None)
    module = getattr(fn, "__module__", None)
    return isinstance(qualname, str) and isinstance(module, str) and "<" not in qualname


def check_offloadable(fn: Callable[..., Any], what: str) -> None:
    """Check that ``fn`` can be sent to a worker process.

    Raises:
        UserError: it is a lambda, a function defined inside another function, or another
            object that cannot be pickled.
    """
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


def _reference(fn: Callable[..., Any]) -> Any:
    """What to send for ``fn``: the function itself when it pickles, else its name."""
    ref = _refs.get(fn)
    if ref is None:
        try:
            pickle.dumps(fn)
            ref = fn
        except Exception:
            if not _module_level(fn):
                raise
            ref = _ByName(fn.__module__, fn.__qualname__)
        _refs[fn] = ref
    return ref


def _invoke(ref: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    """Run in the worker process."""
    fn = ref.resolve() if isinstance(ref, _ByName) else ref
    return fn(*args, **kwargs)


async def run_in_process(fn: Callable[..., Any], kwargs: Mapping[str, Any], *, args: tuple[Any, ...] = ()) -> Any:
    """Call ``fn(*args, **kwargs)`` in the process pool and return its result.

    The pool is reached from a thread (submitting may start worker processes), so the event
    loop never waits on it. Cancelling the caller cancels the call if it has not started.

    Raises:
        RuntimeError: the worker process died.
    """
    global _pool, _pool_is_ours
    try:
        ref = _reference(fn)
    except Exception as exc:
        raise UserError(f"{getattr(fn, '__qualname__', fn)!r} cannot be sent to a worker process: {exc}") from None
    pool = process_pool()
    call = functools.partial(_invoke, ref, args, dict(kwargs))
    try:
        future = await asyncio.to_thread(pool.submit, call)
        return await asyncio.wrap_future(future)
    except BrokenProcessPool as exc:
        # A worker died (killed, out of memory): replace the pool so later calls work.
        with _lock:
            if _pool is pool and _pool_is_ours:
                _pool, _pool_is_ours = None, False
            else:
                pool = None  # type: ignore[assignment]
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        raise RuntimeError(f"the worker process running it died ({exc})") from None
