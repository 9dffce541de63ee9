"""A distributed backend: tool calls and whole batches of questions on a Ray cluster.

When one machine is not enough (many concurrent questions, heavy tools), ``RayBackend``
sends work to Ray with no change to the tools:

- ``backend.wrap(tools)`` gives the same tools (name, schema, limits, batch implementation,
  purity) whose calls run as Ray tasks; the executor schedules them as usual.
- ``await backend.arun_many(make_agent, questions)`` splits the questions into parts and
  answers each part in a Ray task with ``LLMCompiler.arun_many``; ``make_agent`` builds the
  agent inside the worker (model clients do not travel between processes).

``ray`` is an optional dependency: ``pip install 'llmcompiler[ray]'``. It is imported on first
use. ``RayBackend()`` starts (or joins) a local Ray instance; ``RayBackend("ray://head:10001")``
or ``RayBackend("auto")`` connects to a cluster.

Example:
    >>> from llmcompiler import tool
    >>> from llmcompiler.ray_backend import RayBackend
    >>> @tool
    ... def heavy(n: int) -> int:
    ...     '''Sum the squares below n.'''
    ...     return sum(i * i for i in range(n))
    >>> backend = RayBackend()  # nothing starts until the first call
    >>> [t.name for t in backend.wrap([heavy])]
    ['heavy']
"""

from __future__ import annotations

import asyncio
import inspect
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llmcompiler._errors import RunError, UserError
from llmcompiler._tools import Tool, ToolLike, as_tool

if TYPE_CHECKING:
    from llmcompiler._agent import LLMCompiler
    from llmcompiler._records import RunResult

__all__ = ["RayBackend"]

INSTALL_HINT = "pip install 'llmcompiler[ray]'"


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ImportError(f"RayBackend needs the ray package: {INSTALL_HINT}") from exc
    return ray


# ---------------------------------------------------------------- run in Ray workers


def _call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    """Run one tool function (sync or async) in a Ray worker."""
    if inspect.iscoroutinefunction(fn):
        return asyncio.run(fn(*args, **kwargs))
    result = fn(*args, **kwargs)
    if inspect.isawaitable(result):

        async def wait() -> Any:
            return await result

        result = asyncio.run(wait())
    return result


def _answer(
    make_agent: Callable[[], LLMCompiler], questions: list[str], concurrency: int
) -> list[RunResult | tuple[str, str]]:
    """Answer a part of the questions in a Ray worker; failures come back as (type, message)."""
    agent = make_agent()
    results = asyncio.run(agent.arun_many(questions, concurrency=concurrency, return_exceptions=True))
    return [r if not isinstance(r, BaseException) else (type(r).__name__, str(r)) for r in results]


# ---------------------------------------------------------------- the driver side


class RayBackend:
    """Sends tool calls and batches of questions to Ray.

    Args:
        address: the cluster to join (``"auto"``, ``"ray://host:10001"``); ``None`` starts a
            local instance unless one is already running in this process.
        num_cpus: CPUs each tool call reserves on the cluster (Ray never runs more calls at
            once than the reserved CPUs allow); compute-bound tools reserve at least one.
        init_kwargs: more ``ray.init`` arguments (``runtime_env``, ``num_cpus`` of a local instance, ...).
    """

    def __init__(
        self, address: str | None = None, *, num_cpus: float = 1.0, init_kwargs: Mapping[str, Any] | None = None
    ) -> None:
        if not (isinstance(num_cpus, (int, float)) and num_cpus >= 0 and math.isfinite(num_cpus)):
            raise UserError(f"num_cpus must be 0 or more, got {num_cpus!r}")
        self.address = address
        self.num_cpus = float(num_cpus)
        self.init_kwargs = dict(init_kwargs or {})
        self._lock = threading.Lock()
        self._remote_call: Any = None
        self._remote_answer: Any = None
        self._objects: dict[int, Any] = {}  # id(function) -> its ObjectRef in the object store
        self._keep: list[Any] = []  # the functions themselves, so their ids stay theirs

    # -- lifecycle

    def start(self) -> None:
        """Connect to Ray (blocking; done on first use, in a worker thread, when not called)."""
        ray = _import_ray()
        with self._lock:
            if not ray.is_initialized():
                kwargs = {"include_dashboard": False, "ignore_reinit_error": True, **self.init_kwargs}
                ray.init(address=self.address, **kwargs)
            if self._remote_call is None:
                self._remote_call = ray.remote(_call)
                self._remote_answer = ray.remote(_answer)

    async def astart(self) -> None:
        """``start`` without blocking the event loop."""
        if self._remote_call is None or not _import_ray().is_initialized():
            await asyncio.to_thread(self.start)

    def shutdown(self) -> None:
        """Disconnect from Ray (a local instance this process started stops)."""
        ray = _import_ray()
        with self._lock:
            self._objects.clear()
            self._keep.clear()
            self._remote_call = self._remote_answer = None
        ray.shutdown()

    # -- tool calls

    def wrap(self, tools: Iterable[ToolLike], *, only: Callable[[Tool], bool] | None = None) -> list[Tool]:
        """The same tools, their calls run as Ray tasks.

        Args:
            tools: ``Tool``s, functions or LangChain tools.
            only: which tools go to Ray (e.g. ``lambda t: t.compute_bound``); the others are
                returned unchanged. Default: all.

        Returns:
            The tools, in order. Names, schemas, limits, batch implementations and purity are kept.
        """
        _import_ray()
        out = []
        for item in tools:
            original = as_tool(item)
            out.append(self._wrap_one(original) if only is None or only(original) else original)
        return out

    def _wrap_one(self, original: Tool) -> Tool:
        fn = original._fn
        num_cpus = max(self.num_cpus, 1.0) if original.compute_bound else self.num_cpus

        async def remote_call(**kwargs: Any) -> Any:
            return await self.call(fn, (), kwargs, num_cpus=num_cpus)

        remote_batch: Callable[[list[dict[str, Any]]], Any] | None = None
        batch = original.batch
        if batch is not None:
            batch_fn = batch

            async def remote_batch_call(calls: list[dict[str, Any]]) -> Any:
                return await self.call(batch_fn, (calls,), {}, num_cpus=num_cpus)

            remote_batch = remote_batch_call

        return Tool(
            name=original.name,
            description=original.description,
            parameters=original.parameters,
            fn=remote_call,
            validate=original._validate,
            limits=original.limits,
            batch=remote_batch,
            pure=original.pure,
            sequential=original.sequential,
            returns=original.returns,
            speculative=original.speculative,
        )

    async def call(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        num_cpus: float | None = None,
    ) -> Any:
        """Run ``fn(*args, **kwargs)`` (sync or async) as a Ray task and return its result.

        The function goes to the object store once; an exception it raises is raised here as itself.
        """
        await self.astart()
        ray = _import_ray()
        ref = self._objects.get(id(fn))
        if ref is None:
            ref = await asyncio.to_thread(ray.put, fn)
            self._objects[id(fn)] = ref
            self._keep.append(fn)
        options = {"num_cpus": self.num_cpus if num_cpus is None else num_cpus}
        pending = self._remote_call.options(**options).remote(ref, tuple(args), dict(kwargs or {}))
        try:
            return await pending
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None
            raise

    # -- whole questions

    async def arun_many(
        self,
        make_agent: Callable[[], LLMCompiler],
        questions: Sequence[str],
        *,
        parts: int | None = None,
        concurrency: int = 8,
    ) -> list[RunResult | RunError]:
        """Answer many questions on the cluster.

        Args:
            make_agent: builds the agent in the worker (it must be picklable by cloudpickle:
                a module-level function or a closure over picklable values).
            questions: the questions.
            parts: how many Ray tasks to split them into (default: the cluster's CPUs).
            concurrency: questions each task answers at once (``LLMCompiler.arun_many``).

        Returns:
            One ``RunResult`` per question, in order; a question that failed gives a
            ``RunError`` naming the original error type.
        """
        await self.astart()
        ray = _import_ray()
        if not questions:
            return []
        if parts is None:
            resources = await asyncio.to_thread(ray.cluster_resources)
            parts = max(1, int(resources.get("CPU", 1)))
        if parts < 1:
            raise UserError(f"parts must be at least 1, got {parts}")
        size = math.ceil(len(questions) / parts)
        chunks = [list(questions[i : i + size]) for i in range(0, len(questions), size)]
        agent_ref = await asyncio.to_thread(ray.put, make_agent)
        refs = [self._remote_answer.remote(agent_ref, chunk, concurrency) for chunk in chunks]
        out: list[RunResult | RunError] = []
        for ref in refs:
            for item in await ref:
                out.append(RunError(f"{item[0]}: {item[1]}") if isinstance(item, tuple) else item)
        return out
