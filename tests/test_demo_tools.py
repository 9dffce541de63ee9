"""The built-in demo tools, and the safe arithmetic behind ``math``."""

from __future__ import annotations

import pytest

from llmcompiler import execute_plan
from llmcompiler._safemath import evaluate
from llmcompiler.demo import DEMO_TOOLS, local_time, search, weather


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("1 + 2 * 3", 7.0),
        ("(14.0 - 0.71) / 2", 6.645),
        ("2 ** 10", 1024.0),
        ("-3 + +4", 1.0),
        ("7 // 2 + 7 % 2", 4.0),
        ("8,849 - 4,806", 4043.0),
        ("round(sqrt(2), 3)", 1.414),
        ("max(1, 5, 3) + min(2, 4) + abs(-1)", 8.0),
        ("pi > 3", None),
    ],
)
def test_arithmetic(expression: str, value: float | None) -> None:
    if value is None:
        with pytest.raises(ValueError, match="not allowed in arithmetic"):
            evaluate(expression)
    else:
        assert evaluate(expression) == pytest.approx(value)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os').system('true')", "not allowed in arithmetic"),
        ("open('/etc/passwd')", "not allowed in arithmetic"),
        ("(1).__class__", "not allowed in arithmetic"),
        ("x + 1", "not allowed in arithmetic: 'x'"),
        ("9 ** 9 ** 9", "exponent .* is too large"),
        ("1 / 0", "division by zero"),
        ("1 +", "not an arithmetic expression"),
        ("'a' * 3", "not allowed in arithmetic"),
        ("True + 1", "not allowed in arithmetic"),
    ],
)
def test_anything_but_arithmetic_is_refused(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate(expression)


async def test_the_demo_tools_answer_offline() -> None:
    assert [t.name for t in DEMO_TOOLS] == ["weather", "local_time", "search", "math"]
    assert (await weather.ainvoke({"city": "tokyo"})).startswith("Tokyo: 17 °C")
    assert "Europe/Oslo" in await local_time.ainvoke({"city": "Oslo"})
    assert "8,849 m" in await search.ainvoke({"query": "Mount Everest"})
    assert (await search.ainvoke({"query": "atlantis"})) == "no facts found for 'atlantis'"


async def test_an_unknown_city_fails_that_task_with_the_known_cities() -> None:
    records = await execute_plan('1. weather("Atlantis")\n2. math("2 * 21")', DEMO_TOOLS)
    assert records[0].error is not None
    assert "unknown city 'Atlantis'; known cities: berlin, london" in records[0].error
    assert records[1].result == 42.0
