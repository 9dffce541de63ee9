"""Grounded plans and extractive answers for the small local model.

A grounded plan grammar writes only numbers the question (or an earlier result) holds, ``$N``
references and schema literals; entity parameters take spans of the question. An extractive
joiner's answer is assembled from the results verbatim. Both are checked by sampling the grammar
tree many times (``Grammar.sample``) and reading every sample with the real parsers; the
``local_model`` tests decode under them with the real model at temperature 1.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.local_answers import add, divide, population  # the README's tools
from llmcompiler import (
    Finish,
    Message,
    ModelRequest,
    ParseError,
    Replan,
    TaskParsed,
    Tool,
    ToolSpec,
    parse_join_reply,
    parse_plan,
    tool,
)
from llmcompiler._literals import Ref, Template
from llmcompiler.demo import DEMO_TOOLS
from llmcompiler.models import Observation
from llmcompiler.models._grammar import (
    Grounding,
    PlanLimits,
    extractive_join_grammar,
    names_entity,
    names_expression,
    numbers_in,
    plan_grammar,
    spans_in,
)
from llmcompiler.models._llamacpp import LlamaCppChat, _forced_ending, build_prompt, extractive_answers
from tests._tools import schema_tool

NUMERIC = [
    tool(add),
    divide,
    schema_tool(
        "measure",
        {
            "count": {"type": "integer"},
            "ratio": {"type": "number", "default": 0.5},
            "sizes": {"type": "array", "items": {"type": "number"}},
            "unit": {"type": "string", "enum": ["m", "ft"]},
            "country": {"type": "string"},
            "note": {"type": "string"},
        },
        ["count"],
    ),
]


DEMO_SPECS = [t.spec for t in DEMO_TOOLS]


def _values(value: Any) -> Iterator[Any]:
    if isinstance(value, list | tuple | set):
        for v in value:
            yield from _values(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _values(v)
    else:
        yield value


def _tasks(text: str) -> list[TaskParsed]:
    events = parse_plan(text)
    assert not [e for e in events if isinstance(e, ParseError)], text
    return [e for e in events if isinstance(e, TaskParsed) and e.tool != "join"]


def _arguments(task: TaskParsed, tools: list[Tool]) -> dict[str, Any]:
    names = next(t for t in tools if t.name == task.tool).param_names
    return dict(zip(names, task.args, strict=False)) | task.kwargs


# --------------------------------------------------------------------------- reading the question


def test_numbers_in_reads_digits_separators_percentages_and_words() -> None:
    assert numbers_in("What is 2 + 3 + 4?") == ["2", "3", "4"]
    assert numbers_in("Tokyo has 14,000,000 people; 15% of 3.50 is -0.5") == ["14000000", "15", "0.15", "3.5", "-0.5"]
    assert numbers_in("twice as many, half of a dozen") == ["2", "0.5", "12"]
    assert numbers_in("route 66a, v2.0, 2024-05-01, 7.50") == ["66", "2024", "5", "1", "7.5"]  # v2.0 is a name
    assert numbers_in("How many times more people live in Tokyo than in Oslo?") == []
    assert numbers_in("9" * 40) == []  # beyond a float's precision: not an argument


def test_spans_in_offers_names_not_function_words() -> None:
    spans = spans_in("What is the weather and the local time in New York and in Peru's capital?")
    assert "New York" in spans and "Peru" in spans and "Peru's" in spans
    assert not {"the", "and", "What", "in New", "weather and"} & set(spans)
    assert "Bank of America" in spans_in("Is Bank of America open?")
    assert "The Hobbit" in spans_in('Who wrote "The Hobbit"?')


@pytest.mark.parametrize(
    ("name", "entity"),
    [("city", True), ("country_name", True), ("user_id", True), ("cityName", True), ("query", False),
     ("expression", False), ("identity", False), ("text", False)],
)  # fmt: skip
def test_names_entity(name: str, entity: bool) -> None:
    assert names_entity(name) is entity


# --------------------------------------------------------------------------- grounded plans


@pytest.mark.parametrize("question", ["What is 2 + 3 + 4?", "Is 14,000 about 15% of 90000 in France?", "Nothing here."])
def test_grounded_plans_write_only_known_numbers(question: str) -> None:
    grounding = Grounding.of(question, ["result 7.25"])
    allowed = {float(n) for n in grounding.numbers} | {0.5}  # 0.5: the schema's default for ratio
    grammar = plan_grammar([t.spec for t in NUMERIC], limits=PlanLimits(max_tasks=4, max_list=3), grounding=grounding)
    rng = random.Random(11)
    seen_numbers = 0
    for _ in range(400):
        text = grammar.sample(rng)
        for task in _tasks(text):
            args = _arguments(task, NUMERIC)
            for name, value in args.items():
                for v in _values(value):
                    if isinstance(v, int | float) and not isinstance(v, bool):
                        assert float(v) in allowed, (question, name, text)
                        seen_numbers += 1
            if task.tool == "measure" and isinstance(args.get("country"), str):
                assert args["country"] in grounding.spans, text
            if task.tool in ("add", "divide"):
                refs = [v for v in args.values() if isinstance(v, Ref)]
                assert len({r.idx for r in refs}) == len(refs), text  # never the same $N twice
    if grounding.numbers:
        assert seen_numbers > 100  # the samples are not all references


def test_with_no_number_in_the_question_divide_takes_only_references() -> None:
    """The README quick start: divide cannot be called with invented numbers, nor before two results exist."""
    question = "How many times more people live in Tokyo than in Oslo?"
    tools = [population, divide]
    grammar = plan_grammar([t.spec for t in tools], limits=PlanLimits(max_tasks=4), grounding=Grounding.of(question))
    rng = random.Random(5)
    divides = 0
    for _ in range(400):
        tasks = _tasks(grammar.sample(rng))
        assert tasks[0].tool == "population"
        for task in tasks:
            args = _arguments(task, tools)
            if task.tool == "divide":
                divides += 1
                assert all(isinstance(v, Ref) for v in args.values())
                assert args["a"] != args["b"]
                assert task.idx >= 3
            else:
                assert args["city"] in ("people", "live", "Tokyo", "Oslo") or isinstance(args["city"], Ref)
    assert divides > 50


def test_an_expression_parameter_is_arithmetic_over_references_and_known_numbers() -> None:
    """math("${1} + ${2}"): the expression is written from $N and the question's numbers only."""
    from llmcompiler.demo import math, search

    question = "What is 100 times the population of Oslo over that of Tokyo?"
    grammar = plan_grammar([search.spec, math.spec], limits=PlanLimits(max_tasks=4), grounding=Grounding.of(question))
    rng = random.Random(4)
    expressions = 0
    for _ in range(300):
        for task in _tasks(grammar.sample(rng)):
            if task.tool != "math":
                continue
            expressions += 1
            (text,) = [*task.args, *task.kwargs.values()]
            if isinstance(text, Ref):
                continue  # a whole earlier result as the expression
            if isinstance(text, Template):
                text = "".join(p if isinstance(p, str) else f"${{{p.idx}}}" for p in text.parts)
            stripped = re.sub(r"\$\{\d+\}|\b100\b|[-+*/() ]", "", text)
            assert stripped == "", text
    assert expressions > 50
    assert names_expression("expression") and names_expression("math_formula") and not names_expression("text")


def test_a_position_no_tool_can_fill_falls_back_to_free_calls() -> None:
    """Only divide, and no number anywhere: task 1 cannot be grounded, so it is written as before."""
    grammar = plan_grammar([divide.spec], limits=PlanLimits(max_tasks=2), grounding=Grounding.of("Divide them."))
    rng = random.Random(2)
    for _ in range(50):
        assert _tasks(grammar.sample(rng))[0].tool == "divide"


def test_ungrounded_plans_are_unchanged() -> None:
    assert plan_grammar(DEMO_SPECS).to_gbnf() == plan_grammar(DEMO_SPECS, grounding=None).to_gbnf()
    grounded = plan_grammar(DEMO_SPECS, grounding=Grounding.of("Weather in Tokyo?")).to_gbnf()
    assert '"\\"Tokyo\\""' in grounded


PRICES = ToolSpec(
    name="prices",
    description="Prices in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    returns={
        "type": "object",
        "properties": {"avg": {"type": "number"}, "count": {"type": "integer"}, "currency": {"type": "string"}},
    },
)


def test_grounded_plans_read_numbers_inside_results() -> None:
    """Task 1 (an earlier round) gave prices: divide takes its number fields, two different ones
    or one and a number of the question, never the same reference twice; an expression splices
    a number field with the braced form, ``"${1.avg} * 100"``."""
    from llmcompiler.demo import math

    question = "What is the average price in Oslo per item, times 100?"
    grammar = plan_grammar(
        [PRICES, divide.spec, math.spec],
        first_idx=2,
        limits=PlanLimits(max_tasks=3),
        grounding=Grounding.of(question),
        produced={1: "prices"},
    )
    rng = random.Random(6)
    pair = spliced = 0
    for _ in range(400):
        text = grammar.sample(rng)
        events = parse_plan(text, known=[1])
        assert not [e for e in events if isinstance(e, ParseError)], text
        for task in (e for e in events if isinstance(e, TaskParsed) and e.tool != "join"):
            refs = [v for v in (*task.args, *task.kwargs.values()) if isinstance(v, Ref)]
            if task.tool == "divide":
                assert len(set(refs)) == len(refs), text
                assert all(r.path in ((), ("avg",), ("count",)) for r in refs), text
                assert all(r.path for r in refs if r.idx == 1), text  # prices' whole result is no number
                pair += {r.path for r in refs} == {("avg",), ("count",)}
            elif task.tool == "math":
                (value,) = [*task.args, *task.kwargs.values()]
                if isinstance(value, Template):
                    paths = {p.path for p in value.parts if isinstance(p, Ref) and p.idx == 1}
                    assert paths <= {(), ("avg",), ("count",)}, text
                    spliced += ("avg",) in paths
    assert pair > 5 and spliced > 5


# --------------------------------------------------------------------------- extractive answers

OBS = (
    Observation(idx=1, tool="weather", label="weather(Tokyo)", text="Tokyo: 17 °C, partly cloudy", ok=True),
    Observation(idx=2, tool="local_time", label="local_time(Tokyo)", text="Tokyo: 21:37 (Asia/Tokyo)", ok=True),
    Observation(idx=3, tool="weather", label="weather(Oslo)", text="no such city", ok=False),
)


def test_extractive_answers_list_every_result_in_task_order() -> None:
    answers, computed = extractive_answers(OBS)
    assert computed is None
    assert answers == [
        "weather(Tokyo): Tokyo: 17 °C, partly cloudy; local_time(Tokyo): Tokyo: 21:37 (Asia/Tokyo); "
        "weather(Oslo): failed: no such city"
    ]


def test_a_last_task_computed_from_others_is_the_answer_alone() -> None:
    obs = (
        Observation(idx=1, tool="population", label="population(Tokyo)", text="14000000", ok=True),
        Observation(idx=2, tool="population", label="population(Oslo)", text="709000", ok=True),
        Observation(idx=3, tool="divide", label="divide(14000000, 709000)", text="19.746", ok=True, deps=(1, 2)),
    )
    assert extractive_answers(obs) == (["19.746"], "19.746")
    failed = (*obs[:2], Observation(idx=3, tool="divide", label="divide()", text="boom", ok=False, deps=(1, 2)))
    assert extractive_answers(failed)[1] is None


def test_values_are_one_line_cut_before_an_unmatched_parenthesis_and_when_long() -> None:
    obs = (
        Observation(idx=1, tool="f", label="f(x)", text="a\n\n b) c", ok=True),
        Observation(idx=2, tool="g", label="g(y)", text="word " * 100, ok=True),
    )
    (answer,), _ = extractive_answers(obs)
    first, second = answer.split("; ")
    assert first == "f(x): a b…"
    assert second.startswith("g(y): word word") and second.endswith("…") and len(second) < 180


_texts = st.text(alphabet=st.characters(codec="utf-8"), min_size=0, max_size=80) | st.sampled_from(
    ["19.746", "Tokyo: 17 °C (clear)", "a) b", '"quoted"', "(((", "Finish(x)", "Replan(y)", ""]
)


@settings(max_examples=150, deadline=None)
@given(
    texts=st.lists(st.tuples(_texts, st.booleans(), st.booleans()), min_size=1, max_size=5),
    allow_replan=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_every_extractive_reply_answers_with_a_candidate_verbatim(
    texts: list[tuple[str, bool, bool]], allow_replan: bool, seed: int
) -> None:
    """Whatever the results hold (parentheses, quotes, newlines, action words), every reply the
    grammar allows reads back as exactly one of the candidates: no value is invented or cut."""
    obs = tuple(
        Observation(idx=i, tool="t", label=f"t({i})", text=text, ok=ok, deps=(1,) if dep and i > 1 else ())
        for i, (text, ok, dep) in enumerate(texts, 1)
    )
    answers, _ = extractive_answers(obs)
    grammar = extractive_join_grammar(answers, allow_replan=allow_replan, thought=seed % 2 == 0)
    rng = random.Random(seed)
    for _ in range(20):
        decision = parse_join_reply(grammar.sample(rng))
        if isinstance(decision, Finish):
            assert decision.answer in answers
        else:
            assert allow_replan and isinstance(decision, Replan)


def test_every_number_in_an_extractive_answer_is_in_the_results() -> None:
    obs = (*OBS, Observation(idx=4, tool="math", label="math(17 + 6)", text="23", ok=True, deps=(1, 3)))
    grammar = extractive_join_grammar(extractive_answers(obs)[0] + extractive_answers(OBS)[0])
    known = set(re.findall(r"\d+", " ".join(f"{o.label} {o.text}" for o in obs)))
    rng = random.Random(0)
    for _ in range(300):
        decision = parse_join_reply(grammar.sample(rng))
        if isinstance(decision, Finish):
            assert set(re.findall(r"\d+", decision.answer)) <= known


def test_the_rest_of_a_finish_is_written_without_decoding_once_one_candidate_fits() -> None:
    endings = ["Action: Finish(19.75)", "Action: Finish(1.5; x)"]
    assert _forced_ending(endings, "Action: ") is None  # Finish or Replan: the model decides
    assert _forced_ending(endings, "Action: Finish(") is None  # two candidates still fit
    assert _forced_ending(endings, "Action: Finish(1") is None
    assert _forced_ending(endings, "Action: Finish(19") == ".75)"
    assert _forced_ending(endings, "Action: Finish(1.") == "5; x)"
    assert _forced_ending(endings, "Action: Replan(") is None


def test_extractive_grammar_needs_a_candidate() -> None:
    with pytest.raises(ValueError):
        extractive_join_grammar([])


# --------------------------------------------------------------------------- the adapter's prompts


def _request(purpose: str, **fields: Any) -> ModelRequest:
    return ModelRequest(messages=(Message(role="user", content="Question: q"),), purpose=purpose, **fields)


def test_build_prompt_uses_the_extractive_joiner_only_with_a_question_and_results() -> None:
    prompt, gbnf = build_prompt(_request("join", question="Weather?", observations=OBS), extractive=True)
    assert prompt.endswith(
        "Question: Weather?\nResults:\nweather(Tokyo): Tokyo: 17 °C, partly cloudy\n"
        "local_time(Tokyo): Tokyo: 21:37 (Asia/Tokyo)\nweather(Oslo): failed: no such city\n"
    )
    assert gbnf is not None and "weather(Tokyo): Tokyo: 17 °C, partly cloudy; local_time" in gbnf
    free_prompt, free = build_prompt(_request("join", question="Weather?"), extractive=True)
    assert free is not None and "Results:" not in free_prompt and "answer ::=" in free
    assert build_prompt(_request("join", question="Weather?", observations=OBS), extractive=False)[1] == free


def test_build_prompt_grounds_plans_on_the_question_and_earlier_results() -> None:
    tools = (population.spec, divide.spec)
    earlier = (Observation(idx=1, tool="population", label="population(Tokyo)", text="14000000", ok=True),)
    _, grounded = build_prompt(
        _request("plan", tools=tools, question="Tokyo vs Oslo?", observations=earlier), grounded=True
    )
    _, free = build_prompt(_request("plan", tools=tools, question="Tokyo vs Oslo?"), grounded=False)
    assert grounded is not None and free is not None
    assert re.search(r'^ground-number ::= "14000000"$', grounded, re.MULTILINE)
    assert re.search(r"^args-divide-r0 ::= ground-number \", \" ground-number$", grounded, re.MULTILINE)
    assert re.search(r"^args-divide-r0 ::= .*\bnumber\b", free, re.MULTILINE) and "ground-number" not in free


def test_the_options_default_on_for_the_default_model_only() -> None:
    default = LlamaCppChat()
    assert default.grounded and default.extractive
    own = LlamaCppChat("/models/other.gguf")
    assert not own.grounded and not own.extractive
    assert LlamaCppChat("/models/other.gguf", grounded=True).grounded


# --------------------------------------------------------------------------- with llama.cpp


@pytest.mark.local_model
@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_sampled_replies_of_the_model_hold_only_result_values(seed: int) -> None:
    """Temperature 1 makes the model wander; plans still use only known numbers, answers only results."""
    chat = LlamaCppChat(temperature=1.0, seed=seed)
    chat.plan_limits = PlanLimits(max_tasks=3, max_string=24, max_thought=48)  # a short decode
    question = "How many times more people live in Tokyo than in Oslo?"
    plan = await _text(
        chat, _request("plan", tools=(population.spec, divide.spec), question=question, stop=("<END_OF_PLAN>",))
    )
    for task in _tasks(plan):
        args = _arguments(task, [population, divide])
        assert not [v for v in args.values() if isinstance(v, int | float)], plan
    reply = await _text(chat, _request("join", question="Weather?", observations=OBS))
    decision = parse_join_reply(reply)
    assert isinstance(decision, Replan) or decision.answer in extractive_answers(OBS)[0]


async def _text(chat: LlamaCppChat, request: ModelRequest) -> str:
    out = ""
    async for event in chat.stream(request):
        if isinstance(event, str):
            out += event
    return out
