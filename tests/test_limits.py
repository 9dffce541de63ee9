"""Limits: a ToolLimits knows the fields it was given; ``tool_limits=`` overrides field by field;
the run-wide timeout fills in only where neither the tool nor its override gives one."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import pickle
from collections.abc import AsyncIterator
from typing import Any

import pytest

import llmcompiler._executor
import llmcompiler._tools
from llmcompiler import (
    Executor,
    Limits,
    LLMCompiler,
    Tool,
    ToolLimits,
    UserError,
    execute_plan,
    tool,
)
from llmcompiler.testing import ScriptedLLM
from planners import ParallelToolCallAgent, ReActAgent
from tests.fakeclock import run_with_fake_clock

# --------------------------------------------------------------------------- ToolLimits as a value


def test_a_tool_limits_knows_the_fields_it_was_given() -> None:
    assert ToolLimits().fields_set == frozenset()
    lim = ToolLimits(timeout=5, retries=0)
    assert lim.fields_set == {"timeout", "retries"}
    assert lim.given() == {"timeout": 5, "retries": 0}
    assert (lim.period, lim.backoff, lim.batch_window) == (1.0, 0.5, 0.002)  # not given: the defaults


def test_equality_hash_and_repr_follow_the_values_and_the_fields_given() -> None:
    assert ToolLimits(timeout=5) == ToolLimits(timeout=5)
    assert hash(ToolLimits(timeout=5)) == hash(ToolLimits(timeout=5))
    # Equal values, but as overrides one turns retries off and the other changes nothing.
    assert ToolLimits(retries=0) != ToolLimits()
    assert len({ToolLimits(), ToolLimits(retries=0), ToolLimits(retries=0)}) == 2
    assert ToolLimits(timeout=5) != ToolLimits(timeout=6)
    lim = ToolLimits(max_batch=4, timeout=1.5, retries=0)
    assert repr(lim) == "ToolLimits(timeout=1.5, retries=0, max_batch=4)"  # the fields given, in field order
    assert eval(repr(lim), {"ToolLimits": ToolLimits}) == lim
    assert repr(ToolLimits()) == "ToolLimits()"


def test_tool_limits_are_immutable() -> None:
    lim = ToolLimits(timeout=5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        lim.timeout = 6  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del lim.retries
    assert lim.timeout == 5


def test_replace_keeps_track_of_the_fields_given() -> None:
    lim = ToolLimits(timeout=5)
    changed = lim.replace(retries=0)
    assert changed == ToolLimits(timeout=5, retries=0) and changed.fields_set == {"timeout", "retries"}
    assert lim.replace(timeout=6) == ToolLimits(timeout=6)
    assert lim == ToolLimits(timeout=5)  # the original is untouched
    with pytest.raises(UserError, match="retries must be an integer of 0 or more"):
        lim.replace(retries=-1)


def test_dataclasses_replace_refuses_a_change_rather_than_marking_every_field_given() -> None:
    with pytest.raises(ValueError, match="retries is declared with init=False"):
        dataclasses.replace(ToolLimits(timeout=5), retries=2)


def test_copies_and_pickles_are_equal() -> None:
    lim = ToolLimits(timeout=5, retries=0, max_batch=3)
    assert copy.copy(lim) == lim
    assert copy.deepcopy(lim) == lim
    again = pickle.loads(pickle.dumps(lim))
    assert again == lim and again.fields_set == lim.fields_set


def test_an_unknown_field_is_a_type_error_naming_the_fields() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'timout' \\(its fields: timeout, "):
        ToolLimits(timout=5)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="'timout'"):
        tool(timout=5)  # type: ignore[call-overload]


# --------------------------------------------------------------------------- a tool's own limits


def test_tool_decorator_gives_its_limits_as_a_tool_limits() -> None:
    @tool(timeout=5, retries=0, max_backoff=2)
    def fetch(url: str) -> str:
        """Fetch."""
        return url

    assert fetch.limits == ToolLimits(timeout=5, retries=0, max_backoff=2)

    @tool
    def plain(url: str) -> str:
        """Plain."""
        return url

    assert plain.limits == ToolLimits()


def test_from_schema_keeps_the_limits_it_is_given() -> None:
    own = ToolLimits(retries=2)
    t = Tool.from_schema(name="t", description="T.", parameters={"type": "object"}, fn=lambda: None, limits=own)
    assert t.limits is own
    assert Tool.from_schema(name="u", description="U.", parameters={"type": "object"}, fn=lambda: None).limits == (
        ToolLimits()
    )


def test_with_limits_changes_only_the_fields_named() -> None:
    @tool(retries=2, batch_window=0.1)
    def search(q: str) -> str:
        """Search."""
        return q

    assert search.with_limits(timeout=5).limits == ToolLimits(retries=2, batch_window=0.1, timeout=5)


# --------------------------------------------------------------------------- the rule: Limits.for_tool


OWN = ToolLimits(timeout=30, retries=2, backoff=0.1, rate_limit=5, batch_window=0.05, max_batch=8)


def test_an_override_changes_only_the_fields_it_was_given() -> None:
    lim = Limits(tool_limits={"search": ToolLimits(timeout=5)}).for_tool("search", OWN)
    assert lim.timeout == 5
    assert (lim.retries, lim.backoff, lim.rate_limit, lim.batch_window, lim.max_batch) == (2, 0.1, 5, 0.05, 8)


def test_an_override_given_a_default_value_still_overrides() -> None:
    lim = Limits(tool_limits={"search": ToolLimits(retries=0, max_batch=None)}).for_tool("search", OWN)
    assert (lim.retries, lim.max_batch, lim.timeout, lim.rate_limit) == (0, None, 30, 5)


def test_an_empty_override_and_no_override_leave_the_tools_own_limits() -> None:
    assert Limits(tool_limits={"search": ToolLimits()}).for_tool("search", OWN) is OWN
    assert Limits(tool_limits={"other": ToolLimits(timeout=1)}).for_tool("search", OWN) is OWN


@pytest.mark.parametrize(
    ("own", "override", "expected"),
    [
        (ToolLimits(), None, 10),  # neither sets one: the run's
        (ToolLimits(timeout=3), None, 3),  # the tool's own
        (ToolLimits(), ToolLimits(timeout=4), 4),  # the override's
        (ToolLimits(timeout=3), ToolLimits(timeout=20), 20),  # the override beats the tool's, even if longer
        (ToolLimits(), ToolLimits(retries=1), 10),  # an override without a timeout: the run's
        (ToolLimits(timeout=3), ToolLimits(timeout=None), None),  # an explicit None: no timeout at all
        (ToolLimits(), ToolLimits(timeout=None), None),
    ],
)
def test_the_run_wide_timeout_applies_only_when_neither_the_tool_nor_its_override_set_one(
    own: ToolLimits, override: ToolLimits | None, expected: float | None
) -> None:
    limits = Limits(timeout=10, tool_limits={} if override is None else {"t": override})
    assert limits.for_tool("t", own).timeout == expected


def test_without_a_run_wide_timeout_the_tools_own_limits_are_used_as_they_are() -> None:
    assert Limits().for_tool("search", OWN) is OWN


# --------------------------------------------------------------------------- Limits as a value


def test_limits_check_their_values() -> None:
    with pytest.raises(UserError, match=r"max_concurrency must be an integer of at least 1, got 1\.5"):
        Limits(max_concurrency=1.5)  # type: ignore[arg-type]
    with pytest.raises(UserError, match="timeout must be a positive number of seconds, got nan"):
        Limits(timeout=float("nan"))
    with pytest.raises(UserError, match=r"tool_limits\['search'\] must be a ToolLimits, got dict"):
        Limits(tool_limits={"search": {"timeout": 5}})  # type: ignore[dict-item]
    with pytest.raises(UserError, match="tool_limits must map tool names to ToolLimits, got list"):
        Limits(tool_limits=[("search", ToolLimits())])  # type: ignore[arg-type]


def test_limits_keep_their_own_copy_of_the_overrides() -> None:
    overrides = {"search": ToolLimits(timeout=5)}
    limits = Limits(tool_limits=overrides)
    overrides["search"] = ToolLimits(timeout=1)
    overrides["other"] = ToolLimits()
    assert dict(limits.tool_limits) == {"search": ToolLimits(timeout=5)}
    assert limits == Limits(tool_limits={"search": ToolLimits(timeout=5)})


def test_the_old_import_paths_still_work() -> None:
    assert llmcompiler._executor.Limits is Limits
    assert llmcompiler._tools.ToolLimits is ToolLimits


# --------------------------------------------------------------------------- unknown tool names


@tool
async def search(q: str) -> str:
    """Search."""
    return q


@tool
async def calc(expression: str) -> str:
    """Calculate."""
    return expression


def test_an_override_for_an_unknown_tool_is_a_user_error_naming_the_tools() -> None:
    expected = r"tool_limits names an unknown tool: 'serch' \(tools: calc, search\)"
    with pytest.raises(UserError, match=expected):
        Executor([search, calc], limits=Limits(tool_limits={"serch": ToolLimits(timeout=5)}))
    with pytest.raises(UserError, match=expected):
        asyncio.run(execute_plan("1. search('x')", [search, calc], tool_limits={"serch": ToolLimits(timeout=5)}))
    with pytest.raises(UserError, match=expected):
        LLMCompiler(llm=ScriptedLLM([]), tools=[search, calc], tool_limits={"serch": ToolLimits(timeout=5)})
    for baseline in (ReActAgent, ParallelToolCallAgent):  # at construction too, not at the first run
        with pytest.raises(UserError, match=expected):
            baseline(llm=ScriptedLLM([]), tools=[search, calc], tool_limits={"serch": ToolLimits(timeout=5)})
    with pytest.raises(UserError, match=r"unknown tools: 'a', 'b' \(tools: search\)"):
        Executor([search], limits=Limits(tool_limits={"b": ToolLimits(), "a": ToolLimits(), "search": ToolLimits()}))


# --------------------------------------------------------------------------- in a run


def _flaky(failures: int, **limits: Any) -> tuple[Tool, list[int]]:
    calls: list[int] = []

    @tool(name="flaky", **limits)
    async def flaky() -> str:
        """Fail a few times, then work."""
        calls.append(len(calls) + 1)
        if len(calls) <= failures:
            raise ConnectionError(f"attempt {len(calls)}")
        return "ok"

    return flaky, calls


async def _no_wait(seconds: float) -> None:
    pass


async def _plan(text: str) -> AsyncIterator[str]:
    yield text


async def test_overriding_the_timeout_keeps_the_tools_retries() -> None:
    flaky, calls = _flaky(2, retries=2, backoff=0.5)
    limits = Limits(tool_limits={"flaky": ToolLimits(timeout=5)})
    outcome = await Executor([flaky], limits=limits, sleep=_no_wait).run_round(_plan("1. flaky()"))
    (record,) = outcome.records
    assert (record.result, record.attempts, record.error) == ("ok", 3, None)
    assert calls == [1, 2, 3]


async def test_an_override_of_retries_0_turns_the_tools_retries_off() -> None:
    flaky, _ = _flaky(2, retries=2, backoff=0.5)
    limits = Limits(tool_limits={"flaky": ToolLimits(retries=0)})
    outcome = await Executor([flaky], limits=limits, sleep=_no_wait).run_round(_plan("1. flaky()"))
    (record,) = outcome.records
    assert (record.attempts, record.error) == (1, "flaky raised ConnectionError: attempt 1")


def test_an_override_of_timeout_none_takes_a_tool_out_of_the_run_wide_timeout() -> None:
    @tool
    async def slow() -> str:
        """Takes a minute."""
        await asyncio.sleep(60)
        return "late"

    @tool
    async def also_slow() -> str:
        """Takes a minute too."""
        await asyncio.sleep(60)
        return "late"

    records = run_with_fake_clock(
        lambda: execute_plan(
            "1. slow()\n2. also_slow()", [slow, also_slow], timeout=5, tool_limits={"slow": ToolLimits(timeout=None)}
        )
    )
    assert (records[0].result, records[0].error) == ("late", None)
    assert records[1].error == "also_slow timed out after 5s"


def test_each_tools_limits_are_worked_out_once_per_executor() -> None:
    executor = Executor([search], limits=Limits(timeout=5, tool_limits={"search": ToolLimits(retries=1)}))
    first = executor.limits_for(search)
    assert first == ToolLimits(retries=1, timeout=5)
    assert executor.limits_for(search) is first
