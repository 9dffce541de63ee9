"""Paths in ``$N`` references, end to end: real tools returning dicts, lists, pydantic models and
dataclasses; what the records, the trace and the live view show; a bad path fails its task alone."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import pydantic
from rich.console import Console

from llmcompiler import LLMCompiler, Ref, RunResult, TaskRecord, execute_plan, tool
from llmcompiler._live import LiveView
from llmcompiler._trace import write_trace
from llmcompiler.testing import ScriptedLLM

FAKE_KEY = "sk-test-FAKEKEY0123456789abcdef"


@tool
async def airport(query: str) -> dict[str, Any]:
    """Find an airport: a dict as a JSON API returns it."""
    return {"entityId": f"E-{query}", "skyId": f"{query}A", "name": f"{query} airport", "api_key": FAKE_KEY}


@tool
async def flights(origin: str, dest: str) -> str:
    """Search flights between two airports (by ids)."""
    return f"flights {origin} -> {dest}"


@tool
async def note(text: str) -> str:
    """Keep a note."""
    return text


class Repo(pydantic.BaseModel):
    id: int
    name: str


class Listing(pydantic.BaseModel):
    owner: str
    repos: list[Repo]


@tool
async def repositories(user: str) -> Listing:
    """List a user's repositories: a pydantic model."""
    return Listing(owner=user, repos=[Repo(id=7, name="alpha"), Repo(id=9, name="beta")])


@dataclasses.dataclass
class Forecast:
    city: str
    temps: tuple[float, ...]


@tool
async def forecast(city: str) -> Forecast:
    """A forecast: a dataclass."""
    return Forecast(city=city, temps=(12.5, 14.0, 9.5))


@tool
async def pages(n: int) -> list[dict[str, str]]:
    """Search results: a list of dicts."""
    return [{"title": f"page {i}"} for i in range(n)]


@tool
async def read_repo(repo_id: int) -> str:
    """Read a repository by id (an int)."""
    return f"repo {repo_id}"


@tool
async def average(values: list[float], label: str) -> str:
    """Average some numbers."""
    return f"{label}: {sum(values) / len(values):.2f}"


TOOLS = [airport, flights, note, repositories, forecast, pages, read_repo, average]


def by_idx(records: list[TaskRecord]) -> dict[int, TaskRecord]:
    return {r.idx: r for r in records}


async def test_the_issue_example_passes_two_strings_and_splices_one() -> None:
    plan = (
        '1. airport("NYC")\n'
        '2. airport("LON")\n'
        '3. flights(origin=$1.entityId, dest=$2["skyId"])\n'
        '4. note("flights from ${1.entityId} on 2024-08-15")\n'
        "5. join()"
    )
    records = by_idx(await execute_plan(plan, TOOLS))
    assert records[3].args == {"origin": "E-NYC", "dest": "LONA"}  # the values at the paths, strings
    assert records[3].result == "flights E-NYC -> LONA"
    assert records[3].deps == frozenset({1, 2})
    assert records[3].line == '3. flights(origin=$1.entityId, dest=$2["skyId"])'  # the text as written
    assert records[4].result == "flights from E-NYC on 2024-08-15"
    assert records[4].deps == frozenset({1})


async def test_pydantic_models_dataclasses_and_lists_keep_their_types() -> None:
    plan = (
        '1. repositories("ada")\n'
        "2. read_repo($1.repos[0].id)\n"
        "3. forecast(city=$1.repos[-1].name)\n"
        "4. average(values=$3.temps, label=$3.city)\n"
        "5. pages(2)\n"
        '6. note("${5[-1].title} of ${1.owner}; first temp ${3.temps[0]}")\n'
        '7. note($5[0]["title"])\n'
        "8. join()"
    )
    records = by_idx(await execute_plan(plan, TOOLS))
    assert all(r.ok for r in records.values()), [r.error for r in records.values()]
    assert records[2].args == {"repo_id": 7} and records[2].result == "repo 7"  # an int stays an int
    assert records[3].args == {"city": "beta"}
    assert records[4].args == {"values": (12.5, 14.0, 9.5), "label": "beta"}  # the tuple itself
    assert records[4].result == "beta: 12.00"
    assert records[6].result == "page 1 of ada; first temp 12.5"
    assert records[7].result == "page 0"


async def test_a_bad_path_fails_its_task_alone_and_its_dependents_are_given_up() -> None:
    plan = (
        '1. airport("NYC")\n'
        "2. flights(origin=$1.entityID, dest=$1.skyId)\n"  # a typo: no such key
        "3. note($2)\n"  # depends on the failed task
        "4. flights(origin=$1.entityId, dest=$1.skyId)\n"  # fine
        '5. note("${1.missing}")\n'
        "6. pages(1)\n"
        "7. note($6[3].title)\n"
        "8. join()"
    )
    records = by_idx(await execute_plan(plan, TOOLS))
    assert records[1].ok and records[4].ok and records[6].ok
    assert records[4].result == "flights E-NYC -> NYCA"
    failed = records[2]
    assert not failed.ok and failed.start is None  # the tool never ran: arguments refused, as a bad argument is
    assert failed.error is not None
    assert "$1.entityID: no key 'entityID'; keys: entityId, skyId, name, api_key" in failed.error
    assert failed.args == {"origin": Ref(1, ("entityID",)), "dest": Ref(1, ("skyId",))}  # as written: it never ran
    assert records[3].state == "skipped" and records[3].error is not None and "2" in records[3].error
    assert not records[5].ok and "$1.missing: no key 'missing'" in (records[5].error or "")
    assert not records[7].ok and "$6[3].title: index 3 out of range (a list of 1)" in (records[7].error or "")
    for r in records.values():  # the secret in the result never reaches a message
        assert FAKE_KEY not in (r.error or "")


async def test_a_parse_error_in_a_path_fails_that_task_alone() -> None:
    plan = (
        '1. airport("NYC")\n2. flights(origin=$1.entityId, dest=$1[1.5])\n3. flights($1.entityId, $1.skyId)\n4. join()'
    )
    records = by_idx(await execute_plan(plan, TOOLS))
    assert not records[2].ok and records[2].start is None
    assert "$1[1.5]: an index is a whole number" in (records[2].error or "")
    assert records[3].ok and records[3].result == "flights E-NYC -> NYCA"


def _run_with_paths() -> tuple[RunResult, ScriptedLLM]:
    llm = ScriptedLLM(
        [
            'Thought: look both up\n1. airport("NYC")\n2. airport("LON")\n'
            '3. flights(origin=$1.entityId, dest=$2["skyId"])\n'
            "4. flights(origin=$1.nope, dest=$2.skyId)\n"
            "5. note($4)\n"
            "6. join()",
            "Action: Finish(found flights)",
        ],
        name="scripted-model",
    )
    return LLMCompiler(llm=llm, tools=TOOLS).run("Flights from NYC to London?"), llm


def test_the_trace_holds_resolved_values_and_the_text_as_written(tmp_path: Path) -> None:
    result, llm = _run_with_paths()
    path = write_trace(result, tmp_path / "run.json", question="q", model=llm.model_name)
    data = json.loads(path.read_text(encoding="utf-8"))
    tasks = {t["idx"]: t for t in data["tasks"]}
    assert tasks[3]["args"] == {"origin": "E-NYC", "dest": "LONA"}
    assert tasks[3]["line"] == '3. flights(origin=$1.entityId, dest=$2["skyId"])'
    assert tasks[4]["state"] == "skipped" and tasks[4]["args"] == {"origin": "$1.nope", "dest": "$2.skyId"}
    assert "$1.nope: no key 'nope'" in tasks[4]["error"]
    assert tasks[5]["state"] == "skipped" and tasks[5]["args"] == {"text": "$4"}
    assert tasks[1]["result"]["api_key"] == "[redacted]"
    assert FAKE_KEY not in path.read_text(encoding="utf-8")


async def test_the_live_view_shows_paths_as_written_and_the_failure() -> None:
    llm = ScriptedLLM(
        [
            '1. airport("NYC")\n2. flights(origin=$1.entityId, dest=$1["skyId"])\n'
            "3. flights(origin=$1.nope, dest=$1.skyId)\n4. join()",
            "Action: Finish(done)",
        ]
    )
    console = Console(record=True, force_terminal=True, width=200, height=40, color_system=None, file=io.StringIO())
    view = LiveView(console, auto_refresh=False)
    result: RunResult | None = None
    with view:
        async with contextlib.aclosing(LLMCompiler(llm=llm, tools=TOOLS).astream("q")) as stream:
            async for item in stream:
                if isinstance(item, RunResult):
                    result = item
                else:
                    view.handle(item)
        assert result is not None
        view.finish(result)
    snap = Console(record=True, force_terminal=True, width=200, height=40, color_system=None, file=io.StringIO())
    snap.print(view)
    final = snap.export_text()
    rows = {line.split("│")[0].strip(): line for line in final.splitlines() if " │ " in line[:4]}
    assert 'origin=$1.entityId, dest=$1["skyId"]' in rows["2"] and "flights E-NYC -> NYCA" in rows["2"]
    assert "origin=$1.nope" in rows["3"] and "skipped" in rows["3"]
    assert "$1.nope: no key 'nope'; keys: entityId, skyId, name, api_key" in " ".join(final.split())
    assert FAKE_KEY not in console.export_text() + final
