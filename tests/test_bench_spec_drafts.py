"""The speculation benchmark's drafts: capture, record, replay on a virtual clock, and hit-rate rules."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from benchmarks.drafts import (
    Draft,
    PerfectDrafter,
    ReplayDrafter,
    capture_plan_request,
    draft_hits,
    gold_results,
    record_draft,
)
from benchmarks.oracle import render_plan
from benchmarks.suites import Item, load_suite
from llmcompiler import Truncated, Usage
from llmcompiler.models import ModelEvent, ModelRequest
from llmcompiler.testing import run_virtual


def _item(item_id: str) -> Item:
    return next(i for i in load_suite("parallelqa") if i.id == item_id)


def _hits(item: Item, text: str) -> dict[int, int]:
    async def main() -> dict[int, int]:
        return dict(draft_hits(item, text, await gold_results(item)).matched)

    return asyncio.run(main())


# --------------------------------------------------------------------------- hit rate


def test_the_gold_plan_hits_every_gold_call() -> None:
    item = _item("distance_sum-0")
    assert _hits(item, render_plan(item.gold)) == {k: k for k in range(1, len(item.gold) + 1)}


def test_a_reference_resolves_through_the_gold_call_its_task_matched() -> None:
    # capital_distance-0: 1. capital(Angola) 2. capital(El Salvador) 3. distance_km($1, $2).
    # The draft numbers them the other way round, positionally: $2 is the draft's Angola call.
    item = _item("capital_distance-0")
    draft = "1. capital('El Salvador')\n2. capital('Angola')\n3. distance_km($2, $1)\n4. join()"
    assert _hits(item, draft) == {1: 2, 2: 1, 3: 3}


def test_a_call_using_an_unmatched_task_cannot_match() -> None:
    item = _item("capital_distance-0")
    # Task 2 asks for another country: it misses, and the distance that uses it misses too,
    # even though the capitals it would splice in are irrelevant to the comparison.
    draft = "1. capital(country='Angola')\n2. capital(country='Peru')\n3. distance_km(city_a=$1, city_b=$2)\n4. join()"
    assert _hits(item, draft) == {1: 1}


def test_a_mismatched_argument_misses() -> None:
    item = _item("sum_population-0")  # Sweden, Belgium, Malawi, Uzbekistan, then the sum
    draft = "1. population(country='Sweden')\n2. population(country='Norway')\n3. join()"
    assert _hits(item, draft) == {1: 1}


def test_a_wrong_tool_misses() -> None:
    item = _item("sum_population-0")
    draft = "1. area(country='Sweden')\n2. population(country='Belgium')\n3. join()"
    assert _hits(item, draft) == {2: 2}


def test_arguments_are_compared_after_the_tools_validation() -> None:
    # A math expression spliced from references is compared as the text the tool receives;
    # an argument the tool rejects (a number for a country) matches nothing.
    item = _item("sum_population-0")
    draft = (
        "1. population('Sweden')\n2. population('Belgium')\n3. population('Malawi')\n"
        "4. population('Uzbekistan')\n5. math('$1 + $2 + $3 + $4')\n6. population(country=5)\n7. join()"
    )
    hits = draft_hits(item, draft, asyncio.run(gold_results(item)))
    assert dict(hits.matched) == {1: 1, 2: 2, 3: 3, 4: 4, 5: 5}
    assert (hits.hits, hits.gold, hits.drafted) == (5, 5, 6)


def test_each_gold_call_is_matched_once() -> None:
    item = _item("sum_population-0")
    draft = "1. population('Sweden')\n2. population('Sweden')\n3. join()"
    assert _hits(item, draft) == {1: 1}


def test_garbage_matches_nothing() -> None:
    item = _item("sum_population-0")
    hits = draft_hits(item, "no plan at all ( $9 ))", asyncio.run(gold_results(item)))
    assert hits.hits == 0


# --------------------------------------------------------------------------- capture and record


def test_the_captured_request_is_llmcompilers_round_one_plan_request() -> None:
    item = _item("capital_distance-0")
    request = asyncio.run(capture_plan_request(item))
    assert request.purpose == "plan"
    assert request.first_task == 1
    assert request.question == item.question
    assert {t.name for t in request.tools} == {t.name for t in item.tools}


class _SlowModel:
    """Two chunks a second apart and a usage report, then a cut."""

    model_name = "slow"

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        del request
        yield Usage(prompt_tokens=10, calls=1)
        await asyncio.sleep(0.5)
        yield "1. capital('Angola')\n"
        await asyncio.sleep(1.0)
        yield Usage(completion_tokens=7)
        yield "2. join()"
        await asyncio.sleep(0.25)
        yield Truncated("length")


def test_record_draft_times_every_event_from_the_call_start() -> None:
    request = ModelRequest(messages=(), purpose="plan")
    draft = run_virtual(lambda: record_draft(_SlowModel(), request, "x"))
    assert draft.text == "1. capital('Angola')\n2. join()"
    assert [t for t, _ in draft.events] == [0.0, 0.5, 1.5, 1.5]
    assert draft.usage == Usage(prompt_tokens=10, completion_tokens=7, calls=1)
    assert (draft.end_s, draft.first_chunk_s, draft.truncated, draft.error) == (1.75, 0.5, "length", None)
    assert Draft.from_json(draft.to_json()) == draft


class _Broken:
    model_name = "broken"

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        del request
        yield "1. cap"
        raise RuntimeError("the drafter died")


def test_a_drafter_that_raises_is_recorded_with_what_it_wrote() -> None:
    draft = run_virtual(lambda: record_draft(_Broken(), ModelRequest(messages=(), purpose="plan"), "x"))
    assert draft.text == "1. cap"
    assert draft.error == "RuntimeError: the drafter died"


# --------------------------------------------------------------------------- replay


def _replayed(drafter: ReplayDrafter | PerfectDrafter) -> list[tuple[float, ModelEvent]]:
    async def main() -> list[tuple[float, ModelEvent]]:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(10.0)  # the replay counts from its own call, not from the loop's start
        start = loop.time()
        request = ModelRequest(messages=(), purpose="plan")
        # virtual time is exact; rounding only drops the float error of subtracting 10.0
        return [(round(loop.time() - start, 9), e) async for e in drafter.stream(request)]

    return run_virtual(main)


def test_the_replay_drafter_streams_each_event_at_its_recorded_offset() -> None:
    draft = Draft(
        item="x",
        text="1. a()\n2. join()",
        events=(
            (0.0, Usage(prompt_tokens=5, calls=1)),
            (0.4, "1. a()\n"),
            (1.2, Usage(completion_tokens=3)),
            (1.2, "2. join()"),
        ),
        usage=Usage(prompt_tokens=5, completion_tokens=3, calls=1),
        end_s=1.5,
    )
    drafter = ReplayDrafter(draft)
    assert _replayed(drafter) == [
        (0.0, Usage(prompt_tokens=5, calls=1)),
        (0.4, "1. a()\n"),
        (1.2, Usage(completion_tokens=3)),
        (1.2, "2. join()"),
    ]
    assert drafter.calls == 1
    assert drafter.model_name == "replay:local"


def test_the_replay_drafter_ends_at_the_recorded_end_with_the_recorded_cut_or_error() -> None:
    cut = Draft(item="x", text="1. a(", events=((0.2, "1. a("),), usage=Usage(), end_s=2.0, truncated="length")
    assert _replayed(ReplayDrafter(cut)) == [(0.2, "1. a("), (2.0, Truncated("length"))]
    failed = Draft(item="x", text="", events=(), usage=Usage(), end_s=0.5, error="RuntimeError: boom")
    with pytest.raises(RuntimeError, match="boom"):
        _replayed(ReplayDrafter(failed))


def test_the_perfect_drafter_writes_the_gold_plan_at_once() -> None:
    item = _item("capital_distance-0")
    assert _replayed(PerfectDrafter(item)) == [(0.0, render_plan(item.gold)), (0.0, Usage(calls=1))]


def test_a_retimed_draft_keeps_its_events_on_the_new_schedule() -> None:
    draft = Draft(
        item="x",
        text="ab",
        events=((3.0, Usage(prompt_tokens=9, calls=1)), (3.0, "a"), (7.0, Usage(completion_tokens=2)), (9.0, "b")),
        usage=Usage(prompt_tokens=9, completion_tokens=2, calls=1),
        end_s=9.5,
    )
    fast = draft.retimed(0.5, 4.0)
    assert [t for t, _ in fast.events] == [0.5, 0.5, 0.75, 0.75]
    assert [e for _, e in fast.events] == [e for _, e in draft.events]
    assert (fast.end_s, fast.text, fast.usage) == (0.75, "ab", draft.usage)
    with pytest.raises(ValueError):
        draft.retimed(0.5, 0.0)
