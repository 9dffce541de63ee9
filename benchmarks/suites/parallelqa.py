"""ParallelQA-style questions over facts about countries: several independent lookups, then arithmetic.

The facts are a table shipped in ``benchmarks/data/countries.json``, taken from the
``countryinfo`` package (version 1.0.1 on PyPI, MIT License, Porimol Chandro; its per-country
JSON files): name, capital, population, area and the capital's coordinates of every country
with at least 3 million people and 20,000 km², whose capital no other country shares.
``build_table()`` writes it again from an installed ``countryinfo``. The figures are that
package's (mostly mid-2010s estimates), not today's: the questions ask what the tools say.

Question templates, each with its exact answer computed from the table:

- ``sum_population`` (fan-out, fan-in): the combined population of 3 to 5 countries.
- ``density_ratio`` (fan-out, fan-in): how many times the population density of one country is another's.
- ``area_share`` (fan-out, fan-in): one country's percentage of the combined area of 3 or 4.
- ``capital_distance`` (two-level chain): the great-circle distance between two capitals.
- ``distance_sum`` (three levels): the distances from one capital to two others, added.
- ``distance_diff`` (three levels): the difference of two capital-to-capital distances.

Lookups wait a seeded log-normal time (median 300 ms, like a web search API); ``math`` answers
at once (``llmcompiler.demo``'s tool, run as an async function: no tool of a suite waits on a thread).

Answer check: right when a number in the answer is within 1% of the truth. Plan check:
``gold_plan_matches`` (the gold calls among the successful calls, nothing else but repeats), with
two readings of "the same arguments": ``distance_km`` is symmetric (the cities in either order),
and a ``math`` expression fits when it has the same numbers (as a multiset, within
``ARG_TOLERANCE``) and the same value as the gold's, so ``$1+$2`` fits ``$2 + $1`` and
``($1 / $2) / ($3 / $4)`` fits ``$1 / $2 / ($3 / $4)``.

Every tool is marked ``speculative=True`` (an ``LLMCompiler`` with a ``drafter`` may call it from
a draft plan): they only read a table and compute, so calling one early changes nothing. That is
true of these stand-ins; it is an assumption of the benchmark, not a property of lookups in general.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.oracle import GoldCall
from benchmarks.suites._common import (
    ARG_TOLERANCE,
    Item,
    LatencyModel,
    PlanCheckFn,
    gold_plan_matches,
    numbers_in,
    same_args,
    sleeping,
)
from llmcompiler import Ref, RunResult, TaskRecord, Template, Tool, tool
from llmcompiler._safemath import evaluate
from llmcompiler.demo import math as math_tool

__all__ = [
    "DATA_PATH",
    "EARTH_RADIUS_KM",
    "TEMPLATES",
    "build_table",
    "call_fits",
    "haversine_km",
    "load_items",
    "make_tools",
]

DATA_PATH = Path(__file__).resolve().parent.parent / "data" / "countries.json"
EARTH_RADIUS_KM = 6371.0
TOLERANCE = 0.01  # relative: an answer is right when a number in it is within 1% of the truth
TEMPLATES = ("sum_population", "density_ratio", "area_share", "capital_distance", "distance_sum", "distance_diff")


def build_table(path: Path = DATA_PATH) -> int:
    """Write the country table from an installed ``countryinfo`` package; returns the row count."""
    from countryinfo import CountryInfo  # type: ignore[import-not-found, unused-ignore]

    rows: list[dict[str, Any]] = []
    capitals: dict[str, int] = {}
    every: dict[str, Any] = dict(CountryInfo.all())
    for data in every.values():
        if not data.get("ISO"):
            continue
        pop, area, cap, latlng = (data.get(k) for k in ("population", "area", "capital", "capital_latlng"))
        if not (pop and area and cap and latlng) or pop < 3_000_000 or area < 20_000:
            continue
        capitals[cap] = capitals.get(cap, 0) + 1
        rows.append(
            {
                "name": data["name"],
                "capital": cap,
                "population": int(pop),
                "area_km2": int(area),
                "capital_lat": float(latlng[0]),
                "capital_lon": float(latlng[1]),
                "region": data.get("region", ""),
            }
        )
    rows = sorted((r for r in rows if capitals[r["capital"]] == 1), key=lambda r: r["name"])
    table = {
        "source": "countryinfo 1.0.1 (PyPI; https://github.com/porimol/countryinfo), its data/*.json files",
        "license": "MIT License, Copyright (c) 2018 Porimol Chandro",
        "selection": "countries with an ISO code, population >= 3,000,000 and area >= 20,000 km2, unshared capital",
        "fields": {
            "population": "people, as countryinfo gives it",
            "area_km2": "square kilometres",
            "capital_lat": "degrees, countryinfo's capital_latlng",
            "capital_lon": "degrees, countryinfo's capital_latlng",
        },
        "countries": rows,
    }
    path.write_text(json.dumps(table, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return len(rows)


def load_table(path: Path = DATA_PATH) -> list[dict[str, Any]]:
    """The shipped country rows."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return list(data["countries"])


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km on a sphere of radius ``EARTH_RADIUS_KM``."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def make_tools(rows: Sequence[Mapping[str, Any]], latency: LatencyModel) -> list[Tool]:
    """The lookup tools over ``rows`` (seeded latency) and ``math``."""
    by_name = {r["name"].lower(): r for r in rows}
    by_capital = {r["capital"].lower(): r for r in rows}

    def country_row(country: str) -> Mapping[str, Any]:
        row = by_name.get(country.strip().lower())
        if row is None:
            raise ValueError(f"no data for country {country!r}")
        return row

    def capital_row(city: str) -> Mapping[str, Any]:
        row = by_capital.get(city.strip().lower())
        if row is None:
            raise ValueError(f"{city!r} is not the capital of a country in the data")
        return row

    @tool(speculative=True)
    async def population(country: str) -> int:
        """The population of a country.

        Args:
            country: the country's English name, e.g. "France".
        """
        row = country_row(country)
        await sleeping(latency.delay("population", row["name"]))
        return int(row["population"])

    @tool(speculative=True)
    async def area(country: str) -> int:
        """The area of a country in square kilometres.

        Args:
            country: the country's English name, e.g. "France".
        """
        row = country_row(country)
        await sleeping(latency.delay("area", row["name"]))
        return int(row["area_km2"])

    @tool(speculative=True)
    async def capital(country: str) -> str:
        """The capital city of a country.

        Args:
            country: the country's English name, e.g. "France".
        """
        row = country_row(country)
        await sleeping(latency.delay("capital", row["name"]))
        return str(row["capital"])

    @tool(speculative=True)
    async def distance_km(city_a: str, city_b: str) -> float:
        """The great-circle distance between two capital cities, in km (to 0.1 km).

        Args:
            city_a: a capital city, e.g. "Paris".
            city_b: another capital city, e.g. "Rome".
        """
        a, b = capital_row(city_a), capital_row(city_b)
        await sleeping(latency.delay("distance_km", a["capital"], b["capital"]))
        return _distance(a, b)

    # The demo's math tool, async: it answers at once on the event loop instead of in a worker
    # thread, so a run on a virtual clock (benchmarks.sweep) never waits on a thread. Its name,
    # description and schema are the demo tool's (tests/test_bench_sweep.py checks they match).
    @tool(name="math", description=math_tool.description, speculative=True)
    async def math_now(expression: str) -> float:
        """Evaluate an arithmetic expression.

        Args:
            expression: e.g. "(14.0 - 0.71) / 2".
        """
        return evaluate(expression)

    return [population, area, capital, distance_km, math_now]


def _distance(a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
    return round(haversine_km(a["capital_lat"], a["capital_lon"], b["capital_lat"], b["capital_lon"]), 1)


def _template(text: str) -> Template:
    """``"{1} + {2}"`` as a ``Template`` splicing in the results of gold calls 1 and 2."""
    parts: list[str | Ref] = []
    rest = text
    while "{" in rest:
        before, _, after = rest.partition("{")
        number, _, rest = after.partition("}")
        if before:
            parts.append(before)
        parts.append(Ref(int(number)))
    if rest:
        parts.append(rest)
    return Template(tuple(parts))


def _names(countries: Sequence[Mapping[str, Any]]) -> str:
    names = [str(c["name"]) for c in countries]
    return ", ".join(names[:-1]) + " and " + names[-1]


Built = tuple[str, list[GoldCall], float]


def _sum_population(cs: Sequence[Mapping[str, Any]]) -> Built:
    gold = [
        GoldCall(
            tool="population",
            args={"country": c["name"]},
            thought="I need each country's population; the lookups are independent." if i == 0 else "",
        )
        for i, c in enumerate(cs)
    ]
    expr = " + ".join(f"{{{i}}}" for i in range(1, len(cs) + 1))
    gold.append(GoldCall(tool="math", args={"expression": _template(expr)}, thought="Then add them up."))
    return f"What is the combined population of {_names(cs)}?", gold, float(sum(c["population"] for c in cs))


def _density_ratio(cs: Sequence[Mapping[str, Any]]) -> Built:
    a, b = cs[0], cs[1]
    gold = [
        GoldCall(tool="population", args={"country": a["name"]}, thought="Density is population over area."),
        GoldCall(tool="area", args={"country": a["name"]}),
        GoldCall(tool="population", args={"country": b["name"]}),
        GoldCall(tool="area", args={"country": b["name"]}),
        GoldCall(
            tool="math",
            args={"expression": _template("({1} / {2}) / ({3} / {4})")},
            thought="Then divide one density by the other.",
        ),
    ]
    truth = (a["population"] / a["area_km2"]) / (b["population"] / b["area_km2"])
    question = f"How many times the population density of {b['name']} is the population density of {a['name']}?"
    return question, gold, truth


def _area_share(cs: Sequence[Mapping[str, Any]]) -> Built:
    gold = [
        GoldCall(tool="area", args={"country": c["name"]}, thought="I need every area." if i == 0 else "")
        for i, c in enumerate(cs)
    ]
    total = " + ".join(f"{{{i}}}" for i in range(1, len(cs) + 1))
    gold.append(
        GoldCall(tool="math", args={"expression": _template(f"100 * {{1}} / ({total})")}, thought="Then the share.")
    )
    truth = 100.0 * cs[0]["area_km2"] / sum(c["area_km2"] for c in cs)
    question = f"What percentage of the combined area of {_names(cs)} does {cs[0]['name']} cover?"
    return question, gold, truth


def _capital_distance(cs: Sequence[Mapping[str, Any]]) -> Built:
    a, b = cs[0], cs[1]
    gold = [
        GoldCall(tool="capital", args={"country": a["name"]}, thought="First the two capitals."),
        GoldCall(tool="capital", args={"country": b["name"]}),
        GoldCall(tool="distance_km", args={"city_a": Ref(1), "city_b": Ref(2)}, thought="Then their distance."),
    ]
    question = f"How far apart, in km, are the capitals of {a['name']} and {b['name']}?"
    return question, gold, _distance(a, b)


def _distance_sum(cs: Sequence[Mapping[str, Any]]) -> Built:
    a, b, c = cs[0], cs[1], cs[2]
    gold = [
        GoldCall(tool="capital", args={"country": a["name"]}, thought="First the three capitals."),
        GoldCall(tool="capital", args={"country": b["name"]}),
        GoldCall(tool="capital", args={"country": c["name"]}),
        GoldCall(tool="distance_km", args={"city_a": Ref(1), "city_b": Ref(2)}, thought="Then both distances."),
        GoldCall(tool="distance_km", args={"city_a": Ref(1), "city_b": Ref(3)}),
        GoldCall(tool="math", args={"expression": _template("{4} + {5}")}, thought="Then their sum."),
    ]
    question = (
        f"What is the total great-circle distance, in km, from the capital of {a['name']} "
        f"to the capital of {b['name']} plus to the capital of {c['name']}?"
    )
    return question, gold, _distance(a, b) + _distance(a, c)


def _distance_diff(cs: Sequence[Mapping[str, Any]]) -> Built:
    a, b, c, d = cs[0], cs[1], cs[2], cs[3]
    gold = [
        GoldCall(tool="capital", args={"country": a["name"]}, thought="First the four capitals."),
        GoldCall(tool="capital", args={"country": b["name"]}),
        GoldCall(tool="capital", args={"country": c["name"]}),
        GoldCall(tool="capital", args={"country": d["name"]}),
        GoldCall(tool="distance_km", args={"city_a": Ref(1), "city_b": Ref(2)}, thought="Then the two distances."),
        GoldCall(tool="distance_km", args={"city_a": Ref(3), "city_b": Ref(4)}),
        GoldCall(tool="math", args={"expression": _template("{5} - {6}")}, thought="Then their difference."),
    ]
    question = (
        f"How many km longer is the distance between the capitals of {a['name']} and {b['name']} "
        f"than the distance between the capitals of {c['name']} and {d['name']}? (negative if shorter)"
    )
    return question, gold, _distance(a, b) - _distance(c, d)


_BUILDERS: Mapping[str, tuple[Callable[[Sequence[Mapping[str, Any]]], Built], tuple[int, int]]] = {
    "sum_population": (_sum_population, (3, 5)),
    "density_ratio": (_density_ratio, (2, 2)),
    "area_share": (_area_share, (3, 4)),
    "capital_distance": (_capital_distance, (2, 2)),
    "distance_sum": (_distance_sum, (3, 3)),
    "distance_diff": (_distance_diff, (4, 4)),
}


def _last_observation(observations: Mapping[int, str]) -> str:
    return str(observations[max(observations)])


def numeric_check(expected: float, tolerance: float = TOLERANCE) -> Callable[[str, RunResult], bool]:
    """Right when a number in the answer is within ``tolerance`` (relative) of ``expected``."""

    def check(answer: str, _result: RunResult) -> bool:
        return any(math.isclose(n, expected, rel_tol=tolerance, abs_tol=0.05) for n in numbers_in(answer))

    return check


_UNSIGNED = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


def _expression_numbers(expression: str) -> list[float]:
    """The numbers written in an expression, unsigned and sorted (thousands separators read as ``math`` reads them)."""
    return sorted(float(m.group()) for m in _UNSIGNED.finditer(_THOUSANDS.sub("", expression)))


def _same_expression(given: Any, wanted: Any) -> bool:
    if not isinstance(given, str) or not isinstance(wanted, str):
        return False
    a, b = _expression_numbers(given), _expression_numbers(wanted)
    if len(a) != len(b) or not all(math.isclose(x, y, rel_tol=ARG_TOLERANCE) for x, y in zip(a, b, strict=True)):
        return False
    try:
        return math.isclose(evaluate(given), evaluate(wanted), rel_tol=ARG_TOLERANCE, abs_tol=1e-9)
    except (ValueError, ArithmeticError, TypeError, RecursionError):
        return False


def call_fits(tool_name: str, given: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """This suite's reading of "the same arguments" (see the module's docstring)."""
    if tool_name == "math":
        return given.keys() == wanted.keys() == {"expression"} and _same_expression(
            given["expression"], wanted["expression"]
        )
    if tool_name == "distance_km":
        swapped = {"city_a": wanted.get("city_b"), "city_b": wanted.get("city_a")}
        return same_args(tool_name, given, wanted) or same_args(tool_name, given, swapped)
    return same_args(tool_name, given, wanted)


def plan_check(gold: Sequence[GoldCall]) -> PlanCheckFn:
    """The plan rule of this suite for ``gold``."""

    def check(tasks: Sequence[TaskRecord]) -> bool:
        return gold_plan_matches(gold, tasks, call_fits)

    return check


def _distinct(truth: float, gold: Sequence[GoldCall], cs: Sequence[Mapping[str, Any]]) -> bool:
    """The answer is no input figure restated (so a number-in-answer check cannot pass by echo)."""
    inputs = [float(c[k]) for c in cs for k in ("population", "area_km2")]
    return all(not math.isclose(truth, x, rel_tol=2 * TOLERANCE) for x in inputs) and len(gold) > 1


def load_items(*, seed: int = 0, per_template: int = 20, path: Path = DATA_PATH) -> list[Item]:
    """``per_template`` questions of each template, interleaved, from a seeded generator."""
    rows = load_table(path)
    latency = LatencyModel(seed=seed)
    tools = make_tools(rows, latency)
    rng = random.Random(seed)
    groups: list[list[Item]] = []
    for kind in TEMPLATES:
        builder, (low, high) = _BUILDERS[kind]
        items: list[Item] = []
        seen: set[tuple[str, ...]] = set()
        while len(items) < per_template:
            cs = rng.sample(rows, rng.randint(low, high))
            key = tuple(c["name"] for c in cs)
            question, gold, truth = builder(cs)
            if key in seen or not _distinct(truth, gold, cs):
                continue
            seen.add(key)
            items.append(
                Item(
                    id=f"{kind}-{len(items)}",
                    question=question,
                    tools=tools,
                    gold=gold,
                    answer=_last_observation,
                    check=numeric_check(truth),
                    kind=kind,
                    expected=truth,
                    plan_check=plan_check(gold),
                )
            )
        groups.append(items)
    return [g[i] for i in range(per_template) for g in groups]
