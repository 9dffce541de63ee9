"""The built-in demo tools, and the safe arithmetic behind ``math``."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
        ("9 ** 9 ** 9", "too large: about 369,693,1.. digits"),
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


# issue 10 row 20: every step's size is bounded before it is computed, so a blow-up fails at once
@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("((10**1000)**1000)**10", r"'\(10 \*\* 1000\) \*\* 1000' is too large: about 1,000,00. digits"),
        ("10**10**10", "too large: about 10,000,000,0.. digits"),
        ("(9**9)**(9**9)", "too large"),
        ("9**9**9**9", "too large"),
        ("(10**3000) * (10**3000)", "too large: about 6,000 digits"),
        ("10**3000 * 10**3000 * 10**3000", "too large"),
        ("2**9999 + 2**9999", "too large"),
        ("2**-(10**400)", "too large for a floating-point number"),
        ("10.0**400", "too large for a floating-point number"),
        ("1e308 * 10", "too large for a floating-point number"),
        ("10**400", "too large for a floating-point number"),
        ("(-8) ** (1/3)", "negative number to a fractional power"),
        ("sqrt(-1)", "sqrt of a negative number"),
        ("1 << 10**9", "not allowed in arithmetic"),
        ("'ab' * 10**9", "not allowed in arithmetic"),
        ("round(1.5, 2.5)", "whole number"),
        ("min()", "takes numbers only"),
        ("9" * 1990, "too large"),
    ],
)
def test_a_blow_up_is_refused_before_it_is_computed(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate(expression)


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("round(1, -30000000)", 0.0),  # ndigits bounded: 10**30000000 is never computed
        ("round(123456, -3)", 123000.0),
        ("round(2.5678, 10**30)", 2.5678),
        ("2**-10**9", 0.0),
        ("1 ** 10**100", 1.0),
        ("(-1) ** (10**100 + 1)", -1.0),
        ("(10**300) // (10**299)", 10.0),
        ("+".join(["1"] * 900), 900.0),  # a long sum is no deeper in Python than a short one
        ("-" * 900 + "1", 1.0),
    ],
)
def test_large_but_cheap_steps_still_compute(expression: str, value: float) -> None:
    assert evaluate(expression) == pytest.approx(value)


def _expressions() -> st.SearchStrategy[str]:
    numbers = st.one_of(
        st.integers(min_value=-(10**6), max_value=10**30).map(str),
        st.floats(allow_nan=False, allow_infinity=False).map(repr),
        st.sampled_from(["0", "1", "-1", "2", "9", "10", "0.5", "pi", "e", "1e308", "9" * 400]),
    )

    def combine(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        binary = st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "//", "%", "**"]), inner).map(
            lambda t: f"({t[0]}) {t[1]} ({t[2]})"
        )
        calls = st.tuples(
            st.sampled_from(["round", "abs", "min", "max", "sqrt"]), st.lists(inner, min_size=1, max_size=3)
        )
        return st.one_of(binary, calls.map(lambda c: f"{c[0]}({', '.join(c[1])})"), inner.map(lambda x: f"-({x})"))

    return st.recursive(numbers, combine, max_leaves=12)


@settings(max_examples=400, deadline=2000)  # the deadline only guards against a hang: steps take microseconds
@given(expression=_expressions())
def test_random_arithmetic_computes_or_fails_with_its_own_error(expression: str) -> None:
    try:
        value = evaluate(expression)
    except ValueError:
        return
    assert isinstance(value, float) and value == value and abs(value) != float("inf")
