"""The Ray backend on a local Ray instance: tool calls and whole questions run in Ray workers."""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any, TypedDict

import pytest

from llmcompiler import LLMCompiler, Message, RunError, TaskRecord, execute_plan, tool
from llmcompiler._types import Purpose
from llmcompiler.ray_backend import RayBackend
from llmcompiler.testing import FunctionLLM, Reply

ray: Any
try:
    ray = importlib.import_module("ray")
except ImportError:  # pragma: no cover - the ray extra is not installed
    ray = None


needs_ray = pytest.mark.skipif(ray is None, reason="ray is not installed (pip install 'llmcompiler[ray]')")


@pytest.fixture(scope="module")
def backend() -> Iterator[RayBackend]:
    if ray is None:  # pragma: no cover
        pytest.skip("ray is not installed (pip install 'llmcompiler[ray]')")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ray.init(
        num_cpus=1,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": root}},  # workers import this test module
    )
    yield RayBackend()
    ray.shutdown()


@tool
def where(x: int) -> dict[str, int]:
    """Report the process and double x."""
    return {"pid": os.getpid(), "double": 2 * x}


@tool
async def fetch(x: int) -> int:
    """An async tool."""
    await asyncio.sleep(0)
    return x + 1


@tool
def explode(message: str) -> int:
    """Raise ValueError."""
    raise ValueError(message)


def _square_many(calls: list[dict[str, Any]]) -> list[dict[str, int]]:
    return [{"pid": os.getpid(), "square": c["x"] * c["x"]} for c in calls]


@tool(batch=_square_many, batch_window=0, pure=True)
def square(x: int) -> dict[str, int]:
    """Square x."""
    return {"pid": os.getpid(), "square": x * x}


def _by_idx(records: list[TaskRecord]) -> dict[int, TaskRecord]:
    return {r.idx: r for r in records}


@needs_ray
async def test_wrapped_tools_keep_their_description_and_run_in_a_ray_worker(backend: RayBackend) -> None:
    [remote] = backend.wrap([where])
    assert (remote.name, remote.parameters, remote.description) == (where.name, where.parameters, where.description)
    [record] = await execute_plan("1. where(21)", [remote])
    assert record.ok and record.result["double"] == 42
    assert record.result["pid"] != os.getpid()


@needs_ray
async def test_async_tools_run_remotely_too(backend: RayBackend) -> None:
    [record] = await execute_plan("1. fetch(1)", backend.wrap([fetch]))
    assert record.result == 2


@needs_ray
async def test_a_remote_exception_fails_the_task_with_the_original_type(backend: RayBackend) -> None:
    [record] = await execute_plan("1. explode('bad input')", backend.wrap([explode]))
    assert record.error == "explode raised ValueError: bad input"


@needs_ray
async def test_batch_implementations_and_purity_are_kept(backend: RayBackend) -> None:
    [remote] = backend.wrap([square])
    assert remote.pure and remote.batch is not None
    records = _by_idx(await execute_plan("1. square(2)\n2. square(3)\n3. square(2)", [remote]))
    assert [records[i].result["square"] for i in (1, 2, 3)] == [4, 9, 4]
    assert records[3].cached and records[1].batch_size == 2
    assert records[1].result["pid"] != os.getpid()


class Recorded(TypedDict):
    x: int


@needs_ray
def test_a_wrapped_tool_keeps_its_order_its_result_fields_and_its_speculation_safety(backend: RayBackend) -> None:
    @tool(sequential=True, speculative=True)
    def record(x: int) -> Recorded:
        """Record a value."""
        return {"x": x}

    [remote] = backend.wrap([record])
    assert remote.sequential
    assert remote.speculative
    assert record.returns is not None
    assert remote.returns == record.returns
    assert remote.compute_bound is False  # the remote call is async: Ray runs it, not our process pool


@needs_ray
def test_only_chooses_which_tools_go_to_ray(backend: RayBackend) -> None:
    remote_where, local_fetch = backend.wrap([where, fetch], only=lambda t: t.name == "where")
    assert local_fetch is fetch and remote_where is not where


def make_agent() -> LLMCompiler:
    """Built inside the Ray worker."""

    def reply(messages: Sequence[Message], purpose: Purpose) -> Reply:
        n = int(messages[-1].content.rsplit("question ", 1)[1].split()[0].rstrip("?.\n"))
        if purpose == "plan":
            return f"1. where({n})\n2. join()"
        return "Action: nonsense" if n == 99 else f"Action: Finish({2 * n})"

    return LLMCompiler(llm=FunctionLLM(reply), tools=[where], max_replans=0)


@needs_ray
async def test_whole_questions_run_on_the_cluster_in_order(backend: RayBackend) -> None:
    questions = [f"question {n}" for n in (1, 2, 99, 4, 5)]
    results = await backend.arun_many(make_agent, questions, parts=2, concurrency=2)
    assert [r.answer if not isinstance(r, RunError) else None for r in results] == ["2", "4", None, "8", "10"]
    assert isinstance(results[2], RunError) and "JoinParseError" in str(results[2])
    first = results[0]
    assert not isinstance(first, RunError) and first.tasks[0].result["pid"] != os.getpid()


def test_a_missing_ray_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"pip install 'llmcompiler\[ray\]'"):
        RayBackend().wrap([where])
