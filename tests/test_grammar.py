"""The GBNF grammars of the local model: what they allow always parses.

Most tests sample the grammar tree in pure Python (``Grammar.sample``): hundreds of random
plans and joiner replies per tool set, each fed to the real parsers. The ``local_model`` tests
compile the grammar text with llama.cpp and decode under it with the real model.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

import pytest

from llmcompiler import (
    Finish,
    Message,
    ModelRequest,
    ParseError,
    PlanEnded,
    Replan,
    TaskParsed,
    Tool,
    Usage,
    parse_join_reply,
    parse_plan,
    tool,
)
from llmcompiler.demo import DEMO_TOOLS
from llmcompiler.models._grammar import Chars, Grammar, Lit, PlanLimits, Rep, Seq, join_grammar, plan_grammar
from llmcompiler.models._llamacpp import LlamaCppChat, compile_grammar
from tests._tools import schema_tool


@tool
def ping() -> str:
    """No arguments at all."""
    return "pong"


DOTTED = [
    schema_tool("spotify.play", {"artist": {"type": "string"}, "duration": {"type": "integer"}}, ["artist"]),
    schema_tool("flights.search.v2", {"origin": {"type": "string"}, "destination": {"type": "string"}}, ["origin"]),
]
TYPED = [
    schema_tool(
        "mixed",
        {
            "name": {"type": "string"},
            "count": {"type": "integer"},
            "ratio": {"type": "number"},
            "flag": {"type": "boolean"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "maybe": {"type": ["string", "null"]},
            "anything": {},
        },
        ["name", "count"],
    ),
    schema_tool("opts", {"a": {"type": "integer"}, "b": {"type": "string"}, "c": {"type": "boolean"}}, []),
    schema_tool("blob", {"data": {"type": "object"}}, ["data"]),
    ping,
]
TOOL_SETS = {"demo": DEMO_TOOLS, "dotted": DOTTED, "typed": TYPED}


def _sample_plans(tools: list[Tool], first_idx: int, n: int, seed: int) -> Iterator[str]:
    grammar = plan_grammar(
        [t.spec for t in tools], first_idx=first_idx, limits=PlanLimits(max_tasks=5, max_string=12, max_list=3)
    )
    rng = random.Random(seed)
    for _ in range(n):
        yield grammar.sample(rng)


@pytest.mark.parametrize("name", sorted(TOOL_SETS))
@pytest.mark.parametrize("first_idx", [1, 4])
def test_every_sampled_plan_parses(name: str, first_idx: int) -> None:
    tools = list(TOOL_SETS[name])
    by_name = {t.name: t for t in tools}
    known = range(1, first_idx)
    for text in _sample_plans(tools, first_idx, n=300, seed=first_idx):
        events = parse_plan(text, known=known)
        errors = [e for e in events if isinstance(e, ParseError)]
        assert not errors, (text, errors)
        tasks = [e for e in events if isinstance(e, TaskParsed)]
        assert [t.idx for t in tasks] == list(range(first_idx, first_idx + len(tasks))), text
        assert tasks[-1].tool == "join"
        assert len(tasks) >= 2  # at least one tool call, then join()
        assert isinstance(events[-1], PlanEnded) and events[-1].reason == "join"
        for task in tasks[:-1]:
            assert task.tool in by_name, text
            assert all(dep < task.idx for dep in task.deps), text
            if not task.deps:
                # Without references the arguments are concrete: the tool's own schema accepts them.
                tool_ = by_name[task.tool]
                args = dict(zip(tool_.param_names, task.args, strict=False)) | task.kwargs
                tool_.validate(args)


def test_plans_cover_the_grammar() -> None:
    """The samples above are not all trivial: refs, keywords, thoughts and long plans occur."""
    texts = list(_sample_plans(list(TYPED), 1, n=300, seed=7))
    joined = "\n".join(texts)
    assert "$" in joined
    assert "Thought: " in joined
    assert re.search(r"\b(count|ratio|flag|unit|tags)=", joined)
    assert any("5. " in t for t in texts)  # the longest plans reach max_tasks
    assert '"celsius"' in joined or '"fahrenheit"' in joined


def test_dotted_tool_names_appear_verbatim_and_rule_names_stay_valid() -> None:
    text = plan_grammar([t.spec for t in DOTTED]).to_gbnf()
    assert '"spotify.play("' in text
    assert '"flights.search.v2("' in text
    for line in text.splitlines():
        name, sep, _ = line.partition(" ::= ")
        assert sep, line
        assert re.fullmatch(r"[a-z0-9-]+", name), name


def test_plan_numbering_and_references_follow_first_idx() -> None:
    text = plan_grammar([t.spec for t in DEMO_TOOLS], first_idx=6, limits=PlanLimits(max_tasks=2)).to_gbnf()
    assert '"6. "' in text and '"7. "' in text and '"8. join()"' in text
    assert '"1. "' not in text and '"9. ' not in text
    # Task 6 may reference the five tasks of earlier rounds, task 7 also task 6; none reference themselves.
    assert re.search(r'"\$" \("1" \| "2" \| "3" \| "4" \| "5"\)', text)
    assert re.search(r'"\$" \("1" \| "2" \| "3" \| "4" \| "5" \| "6"\)', text)
    assert '"7")' not in text


def test_enum_parameters_offer_only_their_literals() -> None:
    unit = schema_tool("convert", {"unit": {"enum": ["celsius", "fahrenheit"]}}, ["unit"])
    rng = random.Random(1)
    grammar = plan_grammar([unit.spec], limits=PlanLimits(max_tasks=1))
    for _ in range(50):
        task = next(e for e in parse_plan(grammar.sample(rng)) if isinstance(e, TaskParsed))
        value = task.args[0] if task.args else task.kwargs["unit"]
        assert value in ("celsius", "fahrenheit")


def test_plan_grammar_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError):
        plan_grammar([])
    with pytest.raises(ValueError):
        plan_grammar([t.spec for t in DEMO_TOOLS], first_idx=0)


@pytest.mark.parametrize("allow_replan", [True, False])
def test_every_sampled_join_reply_parses(allow_replan: bool) -> None:
    grammar = join_grammar(allow_replan=allow_replan, max_thought=40, max_answer=60)
    rng = random.Random(3)
    kinds = set()
    for _ in range(400):
        text = grammar.sample(rng)
        decision = parse_join_reply(text)
        kinds.add(type(decision))
        assert decision.thought
        if isinstance(decision, Finish):
            assert decision.answer.strip()
            assert decision.answer == text[text.index("Finish(") + 7 : -1].strip()
    assert kinds == ({Finish, Replan} if allow_replan else {Finish})


def test_gbnf_escapes_quotes_backslashes_and_class_specials() -> None:
    g = Grammar()
    g.define("root", Seq((Lit('say "hi"\\\n'), Rep(Chars("^-]", ranges=(("\x00", "\x1f"),), negated=True), 0, 3))))
    assert g.to_gbnf() == 'root ::= "say \\"hi\\"\\\\\\n" [^\\x5E\\x2D\\]\\x00-\\x1F]{0,3}\n'


# --------------------------------------------------------------------------- with llama.cpp


@pytest.fixture(scope="session")
def grammar_chat() -> LlamaCppChat:
    chat = LlamaCppChat()
    chat.preload(("plan",))
    return chat


@pytest.mark.local_model
@pytest.mark.parametrize("name", sorted(TOOL_SETS))
def test_llama_cpp_compiles_the_grammars(grammar_chat: LlamaCppChat, name: str) -> None:
    llm = grammar_chat.llama("plan")
    assert compile_grammar(llm, plan_grammar([t.spec for t in TOOL_SETS[name]], first_idx=3).to_gbnf())
    assert compile_grammar(llm, join_grammar().to_gbnf())
    assert not compile_grammar(llm, "root ::= undefined-rule\n")


@pytest.mark.local_model
@pytest.mark.parametrize("seed", [1, 2])
async def test_constrained_sampling_with_the_model_parses(grammar_chat: LlamaCppChat, seed: int) -> None:
    """Temperature 1 makes the model wander; the grammar still keeps every plan parseable."""
    chat = LlamaCppChat(temperature=1.0, seed=seed, max_tokens=512)
    # Small bounds: the longest plan the grammar allows is well under 512 tokens, so it can never be cut.
    chat.plan_limits = PlanLimits(max_tasks=3, max_string=24, max_thought=48)
    request = ModelRequest(
        messages=(Message(role="user", content="Question: Play something by Daft Punk, then find flights to Oslo."),),
        purpose="plan",
        tools=tuple(t.spec for t in DOTTED),
    )
    text = ""
    usage = Usage()
    async for event in chat.stream(request):
        if isinstance(event, str):
            text += event
        elif isinstance(event, Usage):
            usage += event
    events = parse_plan(text)
    assert not [e for e in events if isinstance(e, ParseError)], text
    assert [e for e in events if isinstance(e, TaskParsed)][-1].tool == "join", text
    assert usage.completion_tokens > 0
