"""Right answers and right plans for the local model's three first-hour questions.

The questions a newcomer asks first, with their tools exactly as the README writes them:

- ``demo``: "What is the weather and the local time in Tokyo and in Oslo?" with ``DEMO_TOOLS``;
- ``quickstart``: "How many times more people live in Tokyo than in Oslo?" with ``population``
  and ``divide`` (the README's quick start);
- ``mytools``: "What is 2 + 3 + 4?" with ``add`` (the README's ``--tools mytools:TOOLS`` example).

Every checker is a pure function of the answer (or of the calls the plan made) and of facts
taken from outside the run: the demo's weather and times come from calling the tools directly,
the numbers from the question. Nothing is read from the run's own records to decide what is
right. A checker returns the problems it found; no problem means right.

Attribution in the demo answer: a value (a temperature ``N °C``, a weather condition, a time
``HH:MM``) belongs to the city named nearest before it in the same segment (segments end at
``;``, a line break, or a sentence's ``.``/``!``/``?``); with no city before it in its segment, to
the first city after it in that segment; with no city in the segment at all, to the city named
nearest before it anywhere (``"... 17 °C. The time there is 21:37."``). So
``"Tokyo: 17 °C, partly cloudy, 13:37, and Oslo: 6 °C, clear."`` gives Tokyo Oslo's time.
A sentence that states values before their cities and names both (``"it is 21:37 in Tokyo and
13:37 in Oslo"``) is read against it: the checker is strict, never lenient, on ambiguity.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from llmcompiler import TaskParsed, TaskRecord, Tool, parse_plan, tool
from llmcompiler._literals import Ref
from llmcompiler.demo import DEMO_TOOLS

__all__ = [
    "DEMO_QUESTION",
    "MYTOOLS_QUESTION",
    "QUESTIONS",
    "QUICKSTART_QUESTION",
    "CityFacts",
    "PlannedCall",
    "Question",
    "add",
    "check_demo_answer",
    "check_demo_plan",
    "check_mytools_answer",
    "check_mytools_plan",
    "check_number_answer",
    "check_quickstart_answer",
    "check_quickstart_plan",
    "city_facts",
    "divide",
    "numbers_in",
    "planned_calls",
    "population",
]

DEMO_QUESTION = "What is the weather and the local time in Tokyo and in Oslo?"
QUICKSTART_QUESTION = "How many times more people live in Tokyo than in Oslo?"
MYTOOLS_QUESTION = "What is 2 + 3 + 4?"

QUICKSTART_RATIO = 14_000_000 / 709_000
QUICKSTART_INPUTS = (14_000_000.0, 709_000.0)
QUICKSTART_TOLERANCE = 0.005  # 0.5 %: 19.7 and 19.75 are right, 20 is not
MYTOOLS_SUM = 9.0
MYTOOLS_INPUTS = (2.0, 3.0, 4.0)


# --------------------------------------------------------------------------- the README's tools


@tool
def population(city: str) -> int:
    """The population of a city."""
    return {"Tokyo": 14_000_000, "Oslo": 709_000}[city]


@tool
def divide(a: float, b: float) -> float:
    """Divide a by b."""
    return a / b


def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


@dataclasses.dataclass(frozen=True, slots=True)
class Question:
    """A question with the tools it is asked with.

    Attributes:
        key: a short name (``demo``, ``quickstart``, ``mytools``).
        text: the question.
        tools: the tools, as the README passes them (a plain function for ``mytools``).
        source: where a newcomer meets it.
    """

    key: str
    text: str
    tools: tuple[Any, ...]
    source: str


QUESTIONS: tuple[Question, ...] = (
    Question("demo", DEMO_QUESTION, tuple(DEMO_TOOLS), "make demo (DEMO_TOOLS)"),
    Question("quickstart", QUICKSTART_QUESTION, (population, divide), "README quick start"),
    Question("mytools", MYTOOLS_QUESTION, (add,), "README --tools mytools:TOOLS"),
)


# --------------------------------------------------------------------------- numbers in text

_SEPARATORS = ",_\u00a0\u2009\u202f"  # comma, underscore, no-break, thin and narrow no-break spaces
_NUMBER = re.compile(
    rf"(?<![\w$.{{])(\d{{1,3}}(?:[{_SEPARATORS}]\d{{3}})+|\d+)(\.\d+)?([eE][+-]?\d+)?"
    r"(?:\s*(thousand|million|billion)\b)?"
)
_SCALE = {"thousand": 1e3, "million": 1e6, "billion": 1e9}


def numbers_in(text: str) -> list[float]:
    """The numbers written in ``text``, in order.

    ``14000000``, ``14,000,000``, ``14_000_000``, ``14 million``, ``19.746``, ``1.4e7`` and ``9.0``
    are numbers; a task reference ``$1`` or ``${1}`` is not, nor are digits inside a word
    (``gemma3``). A sign is not read (``-5`` is 5).
    """
    found: list[float] = []
    for m in _NUMBER.finditer(text):
        digits = re.sub(f"[{_SEPARATORS}]", "", m.group(1))
        value = float(digits + (m.group(2) or "") + (m.group(3) or ""))
        if m.group(4):
            value *= _SCALE[m.group(4).lower()]
        found.append(value)
    return found


def check_number_answer(
    answer: str, *, expected: float, allowed: Iterable[float] = (), rel_tol: float = 0.0
) -> tuple[str, ...]:
    """An answer that states ``expected`` and no number other than it and ``allowed``.

    Args:
        answer: the answer's text.
        expected: the right result; a number within ``rel_tol`` of it counts as it.
        allowed: other numbers the answer may repeat (the question's inputs).
        rel_tol: the relative tolerance (0: exactly, ``9`` and ``9.0`` alike).

    Returns:
        The problems found; empty when the answer is right.
    """
    allowed_set = set(allowed)
    numbers = numbers_in(answer)
    problems: list[str] = []
    if not any(math.isclose(n, expected, rel_tol=rel_tol) for n in numbers):
        problems.append(f"no {expected:g} in the answer")
    for n in numbers:
        if not math.isclose(n, expected, rel_tol=rel_tol) and n not in allowed_set:
            problems.append(f"a number that is neither the result nor an input: {n:g}")
    return tuple(problems)


def check_quickstart_answer(answer: str) -> tuple[str, ...]:
    """The quick start: about 19.746 (within 0.5 %), besides at most the two populations."""
    return check_number_answer(
        answer, expected=QUICKSTART_RATIO, allowed=QUICKSTART_INPUTS, rel_tol=QUICKSTART_TOLERANCE
    )


def check_mytools_answer(answer: str) -> tuple[str, ...]:
    """The ``mytools`` example: 9, besides at most 2, 3 and 4."""
    return check_number_answer(answer, expected=MYTOOLS_SUM, allowed=MYTOOLS_INPUTS)


# --------------------------------------------------------------------------- the demo answer


@dataclasses.dataclass(frozen=True, slots=True)
class CityFacts:
    """What a right demo answer says about one city.

    Attributes:
        city: the city's name.
        temperature: the weather tool's temperature, as written (``"17"``).
        condition: the weather tool's condition (``"partly cloudy"``).
        times: the local times ``HH:MM`` accepted (read before and after the run: the minute
            may roll over).
    """

    city: str
    temperature: str
    condition: str
    times: frozenset[str]


_WEATHER_TEXT = re.compile(r"^\s*(?P<city>[^:]+):\s*(?P<temp>-?\d+(?:\.\d+)?)\s*°C,\s*(?P<cond>.+?)\s*$")
_TIME_IN_TOOL_TEXT = re.compile(r":\s*(\d{2}:\d{2})\b")


def city_facts(weather_text: str, time_texts: Iterable[str]) -> CityFacts:
    """Read a city's facts from the demo tools' own outputs.

    Args:
        weather_text: what ``weather(city)`` returned, e.g. ``"Tokyo: 17 °C, partly cloudy"``.
        time_texts: what ``local_time(city)`` returned, e.g. ``"Tokyo: 21:37 (Asia/Tokyo, UTC+0900)"``.

    Raises:
        ValueError: a text is not in the tools' format.
    """
    m = _WEATHER_TEXT.match(weather_text)
    if m is None:
        raise ValueError(f"not a weather tool text: {weather_text!r}")
    times: set[str] = set()
    for text in time_texts:
        t = _TIME_IN_TOOL_TEXT.search(text)
        if t is None:
            raise ValueError(f"not a local_time tool text: {text!r}")
        times.add(t.group(1))
    return CityFacts(m.group("city").strip(), m.group("temp"), m.group("cond"), frozenset(times))


_SEGMENT_END = re.compile(r"[;\n!?]|\.(?=\s|$)")
_TEMPERATURE = re.compile(r"(?<![\d.])(-?\d+(?:\.\d+)?)\s*°\s*C?")
_TIME = re.compile(r"(?<![\d:])(\d{1,2}:\d{2})(?![\d:])")


def _segments(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _SEGMENT_END.finditer(text):
        spans.append((start, m.end()))
        start = m.end()
    spans.append((start, len(text)))
    return spans


def _owner(pos: int, mentions: Sequence[tuple[int, str]], segments: Sequence[tuple[int, int]]) -> str | None:
    """The city a value at ``pos`` belongs to (see the module's docstring)."""
    seg_start, seg_end = next((s, e) for s, e in segments if s <= pos < e)
    before = [city for at, city in mentions if seg_start <= at < pos]
    if before:
        return before[-1]
    after = [city for at, city in mentions if pos < at < seg_end]
    if after:
        return after[0]
    anywhere_before = [city for at, city in mentions if at < pos]
    return anywhere_before[-1] if anywhere_before else None


def check_demo_answer(answer: str, facts: Sequence[CityFacts]) -> tuple[str, ...]:
    """The demo: each city's temperature, condition and local time, each given to its own city.

    Every temperature, condition (of the cities in ``facts``) and time the answer states is
    attributed to a city (see the module's docstring). A city is right when its own values are
    among those attributed to it and no other value is.

    Returns:
        The problems found; empty when the answer is right.
    """
    lowered = answer.lower()
    mentions = sorted(
        (m.start(), f.city)
        for f in facts
        for m in re.finditer(rf"(?<![a-z]){re.escape(f.city.lower())}(?![a-z])", lowered)
    )
    segments = _segments(answer)
    temps: dict[str | None, list[str]] = {}
    conds: dict[str | None, list[str]] = {}
    times: dict[str | None, list[str]] = {}
    for m in _TEMPERATURE.finditer(answer):
        temps.setdefault(_owner(m.start(), mentions, segments), []).append(m.group(1))
    for cond in dict.fromkeys(f.condition.lower() for f in facts):  # in order: the problems read the same each run
        for m in re.finditer(rf"(?<![a-z]){re.escape(cond)}(?![a-z])", lowered):
            conds.setdefault(_owner(m.start(), mentions, segments), []).append(cond)
    for m in _TIME.finditer(answer):
        times.setdefault(_owner(m.start(), mentions, segments), []).append(m.group(1).zfill(5))
    problems: list[str] = []
    for f in facts:
        got_temps = temps.get(f.city, [])
        if not any(float(t) == float(f.temperature) for t in got_temps):
            problems.append(f"{f.city}: no {f.temperature} °C")
        problems += [f"{f.city}: {t} °C is not its temperature" for t in got_temps if float(t) != float(f.temperature)]
        got_conds = conds.get(f.city, [])
        if f.condition.lower() not in got_conds:
            problems.append(f"{f.city}: no {f.condition!r}")
        problems += [f"{f.city}: {c!r} is not its weather" for c in got_conds if c != f.condition.lower()]
        got_times = times.get(f.city, [])
        if not any(t in f.times for t in got_times):
            problems.append(f"{f.city}: no local time ({' or '.join(sorted(f.times))})")
        problems += [f"{f.city}: {t} is not its local time" for t in got_times if t not in f.times]
    stray = temps.get(None, []) + conds.get(None, []) + times.get(None, [])
    problems += [f"{v!r} stated before any city" for v in stray]
    return tuple(problems)


# --------------------------------------------------------------------------- plans


@dataclasses.dataclass(frozen=True, slots=True)
class PlannedCall:
    """One call of a run's plan, with its arguments as the planner wrote them.

    Attributes:
        idx: the task's number.
        tool: the tool's name.
        args: parameter name to value as written: literals, ``Ref`` for a ``$N`` reference.
        ok: the call ran and returned.
        result: what it returned (``None`` on failure).
    """

    idx: int
    tool: str
    args: Mapping[str, Any]
    ok: bool
    result: Any = None


def planned_calls(tasks: Sequence[TaskRecord], tools: Mapping[str, Tool]) -> list[PlannedCall]:
    """The calls of a run (every round, ``join`` left out), arguments read back from the plan lines.

    Positional arguments are named by the tool's parameter order. A line that does not parse
    on its own keeps the record's arguments (references already resolved).
    """
    numbers = [t.idx for t in tasks]
    calls: list[PlannedCall] = []
    for t in tasks:
        if t.tool == "join":
            continue
        args: dict[str, Any] = dict(t.args)
        parsed = (
            [e for e in parse_plan(t.line, known=[n for n in numbers if n < t.idx]) if isinstance(e, TaskParsed)]
            if t.line
            else []
        )
        if parsed:
            task = parsed[0]
            spec = tools.get(t.tool)
            names = list(spec.parameters.get("properties", {})) if spec is not None else []
            args = {names[i] if i < len(names) else f"#{i}": v for i, v in enumerate(task.args)}
            args.update(task.kwargs)
        calls.append(PlannedCall(t.idx, t.tool, args, t.error is None, t.result))
    return calls


def _city(value: Any) -> str | None:
    return value.strip().lower() if isinstance(value, str) else None


def check_demo_plan(calls: Sequence[PlannedCall]) -> tuple[str, ...]:
    """The demo plan: ``weather`` and ``local_time`` for Tokyo and for Oslo (any case), and nothing else."""
    wanted = {(tool_name, city) for tool_name in ("weather", "local_time") for city in ("tokyo", "oslo")}
    problems: list[str] = []
    done: set[tuple[str, str]] = set()
    for c in calls:
        key = (c.tool, _city(c.args.get("city")) or "")
        if key not in wanted or set(c.args) != {"city"}:
            problems.append(f"unexpected call {c.tool}({_show(c.args)})")
        elif c.ok:
            done.add(key)
    problems += [f"missing {t}({city.title()})" for t, city in sorted(wanted - done)]
    return tuple(problems)


def check_quickstart_plan(calls: Sequence[PlannedCall]) -> tuple[str, ...]:
    """The quick start plan: ``population`` of Tokyo and of Oslo, and ``divide($Tokyo, $Oslo)``."""
    problems: list[str] = []
    tokyo = {c.idx for c in calls if c.tool == "population" and c.ok and _city(c.args.get("city")) == "tokyo"}
    oslo = {c.idx for c in calls if c.tool == "population" and c.ok and _city(c.args.get("city")) == "oslo"}
    divided = False
    for c in calls:
        if c.tool == "population" and _city(c.args.get("city")) in ("tokyo", "oslo") and set(c.args) == {"city"}:
            continue
        a, b = c.args.get("a"), c.args.get("b")
        if (
            c.tool == "divide"
            and set(c.args) == {"a", "b"}
            and isinstance(a, Ref)
            and isinstance(b, Ref)
            and a.idx in tokyo
            and b.idx in oslo
        ):
            divided = divided or c.ok
            continue
        problems.append(f"unexpected call {c.tool}({_show(c.args)})")
    if not tokyo:
        problems.append("missing population(Tokyo)")
    if not oslo:
        problems.append("missing population(Oslo)")
    if not divided:
        problems.append("missing divide(a=$<Tokyo>, b=$<Oslo>)")
    return tuple(problems)


def check_mytools_plan(calls: Sequence[PlannedCall]) -> tuple[str, ...]:
    """The ``mytools`` plan: ``add`` calls whose numbers are 2, 3, 4 or ``$N``, the last one giving 9."""
    problems: list[str] = []
    for c in calls:
        if c.tool != "add":
            problems.append(f"unexpected call {c.tool}({_show(c.args)})")
            continue
        for name, value in c.args.items():
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not (isinstance(value, Ref) or (number and float(value) in MYTOOLS_INPUTS)):
                problems.append(f"add({_show(c.args)}): {name}={value!r} is neither 2, 3, 4 nor a $N")
    adds = [c for c in calls if c.tool == "add"]
    if not adds:
        problems.append("no add call")
    else:
        last = max(adds, key=lambda c: c.idx)
        result = last.result
        if not (last.ok and isinstance(result, (int, float)) and float(result) == MYTOOLS_SUM):
            problems.append(f"the last add gives {result!r}, not 9")
    return tuple(problems)


def _show(args: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in args.items())
