"""The GBNF grammars of the local model: what they allow always parses.

Most tests sample the grammar tree in pure Python (``Grammar.sample``): hundreds of random
plans and joiner replies per tool set, each fed to the real parsers. The ``local_model`` tests
compile the grammar text with llama.cpp and decode under it with the real model.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema
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
    ToolSpec,
    Usage,
    parse_join_reply,
    parse_plan,
    tool,
)
from llmcompiler._literals import resolve
from llmcompiler.demo import DEMO_TOOLS
from llmcompiler.models import Observation
from llmcompiler.models._grammar import (
    Chars,
    Grammar,
    Grounding,
    Lit,
    PlanLimits,
    Rep,
    Seq,
    join_grammar,
    plan_grammar,
    result_paths,
    written_tasks,
)
from llmcompiler.models._llamacpp import _TASK_LINE_END, LlamaCppChat, _plan_setup, build_prompt, compile_grammar
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
def test_llama_cpp_compiles_the_grammars_with_paths(grammar_chat: LlamaCppChat) -> None:
    llm = grammar_chat.llama("plan")
    grounding = Grounding.of("Flights from New York to London for 2 people, under 900?")
    for grammar in (
        plan_grammar(RETURNING),
        plan_grammar(RETURNING, first_idx=3, produced={1: "airport", 2: "repos"}, grounding=grounding),
        plan_grammar(RETURNING, produced={1: "airport", 2: "flights.search"}, resume_at=3),
    ):
        assert compile_grammar(llm, grammar.to_gbnf())


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


# --------------------------------------------------------------------------- paths into results

_LEG = {"type": "object", "properties": {"from": {"type": "string"}, "to airport": {"type": "string"}}}
AIRPORT = ToolSpec(
    name="airport",
    description="Find an airport.",
    parameters={"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    returns={
        "type": "object",
        "properties": {
            "entityId": {"type": "string"},
            "skyId": {"type": "string"},
            "name": {"type": "string"},
            "rank": {"type": "integer"},
        },
    },
)
FLIGHTS = ToolSpec(
    name="flights.search",
    description="Search flights.",
    parameters={
        "type": "object",
        "properties": {"origin": {"type": "string"}, "dest": {"type": "string"}, "max_price": {"type": "number"}},
        "required": ["origin", "dest"],
    },
    returns={
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "price": {"type": "number"},
                "carrier": {"type": "string"},
                "legs": {"type": "array", "items": {"$ref": "#/$defs/Leg"}},
            },
        },
        "$defs": {"Leg": _LEG},
    },
)
REPOS = ToolSpec(
    name="repos",
    description="A user's repositories.",
    parameters={"type": "object", "properties": {"user": {"type": "string"}}, "required": ["user"]},
    returns={
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "items": {"type": "object", "properties": {"id": {"type": "integer"}, "full name": {"type": "string"}}},
            },
            "total": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        },
    },
)
STARS = ToolSpec(
    name="stars",
    description="Stars of a repository.",
    parameters={"type": "object", "properties": {"repo_id": {"type": "integer"}}, "required": ["repo_id"]},
    returns={"type": "integer"},
)
NOTE = ToolSpec(  # declares nothing about its result
    name="note",
    description="Keep a note.",
    parameters={
        "type": "object",
        "properties": {"text": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}},
        "required": ["text"],
    },
)
RETURNING = [AIRPORT, FLIGHTS, REPOS, STARS, NOTE]
_SMALL = PlanLimits(max_tasks=4, max_string=10, max_list=3, max_thought=20)
_REF_TEXT = re.compile(r"\$(\d+)((?:\.[A-Za-z_]\w*|\[(?:-?\d+|\"[^\"]*\")\])*)")


def _example(schema: Any, root: Mapping[str, Any]) -> Any:
    """A value of JSON Schema ``schema``: every field present, every list ten long."""
    if not isinstance(schema, Mapping):
        return "x"
    if "$ref" in schema:
        return _example(root["$defs"][schema["$ref"].rsplit("/", 1)[-1]], root)
    if "anyOf" in schema:
        return _example(schema["anyOf"][0], root)
    kind = schema.get("type")
    if kind == "object":
        return {k: _example(v, root) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        return [_example(schema.get("items"), root) for _ in range(10)]
    return {"string": "s", "integer": 7, "number": 2.5, "boolean": True}.get(str(kind), "x")


def _sample_linewise(specs: list[ToolSpec], first_idx: int, produced: dict[int, str], rng: random.Random) -> str:
    """A plan written as the local model writes one: after each task line the grammar is built
    again, knowing the tool of every task so far (``plan_grammar(produced=..., resume_at=...)``)."""
    text = ""
    while True:
        written = written_tasks(text)
        resume = first_idx + len(written) if written else None
        grammar = plan_grammar(
            specs, first_idx=first_idx, limits=_SMALL, produced={**produced, **written}, resume_at=resume
        )
        rest = grammar.sample(rng)
        line_end = re.search(r"^\d+\. .*\n", rest, re.MULTILINE)
        if line_end is None or line_end.group().rstrip().endswith("join()"):
            return text + rest
        text += rest[: line_end.end()]


def _refs_outside_strings(line: str) -> list[tuple[int, str]]:
    """The ``$N`` references of a plan line and their paths' text, not those inside string literals."""
    found = re.finditer(rf'{_REF_TEXT.pattern}|"[^"]*"', line.partition("(")[2])
    return [(int(m.group(1)), m.group(2)) for m in found if m.group(1)]


def test_tools_that_declare_no_result_get_no_paths() -> None:
    for tools in TOOL_SETS.values():
        gbnf = plan_grammar([t.spec for t in tools]).to_gbnf()
        assert "path-" not in gbnf
        assert not any(path for text in _sample_plans(list(tools), 1, 100, 5) for _, path in _find_refs(text))


def _find_refs(text: str) -> list[tuple[int, str]]:
    return [ref for line in text.splitlines() for ref in _refs_outside_strings(line)]


def test_paths_follow_the_declared_result_of_a_known_task() -> None:
    """Task 1 was an airport lookup, task 2 a repository listing: a string parameter takes
    exactly the airport's string fields or a repository's full name, never the whole object."""
    grammar = plan_grammar(RETURNING, first_idx=3, limits=_SMALL, produced={1: "airport", 2: "repos"})
    gbnf = grammar.to_gbnf()
    assert re.search(r'^path-airport-string ::= "\.entityId" \| "\.skyId" \| "\.name"$', gbnf, re.MULTILINE)
    assert re.search(r'^path-airport-[a-z-]+ ::= "\.rank"$', gbnf, re.MULTILINE)
    assert '"[\\"full name\\"]"' in gbnf  # a key that is no identifier is written in brackets
    rng = random.Random(2)
    seen: set[tuple[int, str]] = set()
    for _ in range(300):
        for line in grammar.sample(rng).splitlines():
            m = re.match(r"(\d+)\. ([\w.]+)\(", line)
            if m is None or int(m.group(1)) != 3:
                continue
            for n, path in _refs_outside_strings(line):
                if n in (1, 2):
                    seen.add((n, path))
    string_or_int = {(1, ".entityId"), (1, ".skyId"), (1, ".name"), (1, ".rank")}
    inside_repos = {(2, f"{p}") for p in (".total",)} | {(2, f".items[{i}].id") for i in [*range(10), -1]}
    names = {(2, f'.items[{i}]["full name"]') for i in [*range(10), -1]}
    allowed = string_or_int | inside_repos | names
    assert seen <= allowed, seen - allowed
    assert (1, ".entityId") in seen and (1, ".rank") in seen and any(n == 2 for n, _ in seen)
    assert (1, "") not in seen and (2, "") not in seen  # an object never goes whole into a str or int


def test_a_task_of_this_plan_offers_the_paths_of_every_declared_result() -> None:
    """Before the tool of an earlier line is known, ``$N`` may be followed by any declared path
    (a decoder that knows it builds the grammar again: see the next test)."""
    union = set()
    for text in _sample_plans_of(RETURNING, 1, 400, 9):
        union |= {path for _, path in _find_refs(text)}
    assert ".entityId" in union and any(p.startswith(".items[") for p in union)
    assert any(re.fullmatch(r"\[(-1|\d)\]\.carrier", p) for p in union)
    assert "" in union  # the whole result stays possible while its type is unknown


def _sample_plans_of(specs: list[ToolSpec], first_idx: int, n: int, seed: int) -> Iterator[str]:
    grammar = plan_grammar(specs, first_idx=first_idx, limits=_SMALL)
    rng = random.Random(seed)
    for _ in range(n):
        yield grammar.sample(rng)


def test_resume_at_continues_a_written_plan() -> None:
    grammar = plan_grammar(RETURNING, first_idx=2, limits=PlanLimits(max_tasks=3), resume_at=3)
    gbnf = grammar.to_gbnf()
    root = gbnf.splitlines()[0]
    assert root.startswith('root ::= thought? "3. "') and root.endswith('| thought? "3. join()"')
    assert '"5. join()"' in gbnf and '"6. ' not in gbnf and '"2. ' not in gbnf
    last = plan_grammar(RETURNING, first_idx=2, limits=PlanLimits(max_tasks=3), resume_at=5).to_gbnf()
    assert last.splitlines()[0] == 'root ::= thought? "5. join()"'  # only join() is left
    for bad in (2, 6):
        with pytest.raises(ValueError, match="resume_at"):
            plan_grammar(RETURNING, first_idx=2, limits=PlanLimits(max_tasks=3), resume_at=bad)


def test_written_tasks_reads_the_tool_of_each_line() -> None:
    text = 'Thought: two airports.\n1. airport("NYC")\n2. flights.search($1.entityId, "x")\n3. join()'
    assert written_tasks(text) == {1: "airport", 2: "flights.search", 3: "join"}


def test_result_paths_are_bounded_even_for_a_schema_that_nests_without_end() -> None:
    tree = {"$ref": "#/$defs/Node", "$defs": {"Node": {"type": "object", "properties": {
        "value": {"type": "number"}, "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}}}}  # fmt: skip
    paths = result_paths(tree, max_steps=4, max_paths=100)
    assert max(len(p) for p, _ in paths) == 4 and len(paths) < 100
    assert [p for p, _ in paths][:2] == [("value",), ("children",)]  # the shortest first
    assert len(result_paths(tree, max_steps=50, max_paths=20)) == 20
    assert result_paths({"type": "string"}, max_steps=3, max_paths=9) == []
    spec = ToolSpec(name="tree", parameters={"type": "object", "properties": {}}, returns=tree)
    assert plan_grammar([spec, *RETURNING], limits=PlanLimits(max_tasks=2, max_path=6)).to_gbnf()


def test_strings_never_open_a_braced_reference() -> None:
    """``"${1.x"`` unclosed in a string is an error of the parser; the grammar's strings never hold ``${``."""
    grammar = plan_grammar([t.spec for t in DOTTED], first_idx=3, limits=PlanLimits(max_tasks=2, max_string=40))
    rng = random.Random(4)
    lines = [line for _ in range(300) for line in grammar.sample(rng).splitlines() if re.match(r"\d+\. ", line)]
    strings = [s for line in lines for s in re.findall(r'"[^"]*"', line)]
    assert not any("${" in s for s in strings)
    assert any("$" in s for s in strings)  # "$" itself is still written


@pytest.mark.parametrize("first_idx", [1, 3])
def test_every_sampled_plan_with_paths_parses(first_idx: int) -> None:
    by_name = {t.name: t for t in RETURNING}
    produced = {1: "airport", 2: "repos"} if first_idx == 3 else {}
    grammar = plan_grammar(RETURNING, first_idx=first_idx, limits=_SMALL, produced=produced)
    rng = random.Random(first_idx)
    with_path = 0
    for _ in range(300):
        text = grammar.sample(rng)
        events = parse_plan(text, known=range(1, first_idx))
        assert not [e for e in events if isinstance(e, ParseError)], text
        tasks = [e for e in events if isinstance(e, TaskParsed)]
        assert tasks[-1].tool == "join" and all(t.tool in by_name for t in tasks[:-1]), text
        with_path += any(path for _, path in _find_refs(text))
    assert with_path > 30


@pytest.mark.parametrize("first_idx", [1, 3])
def test_plans_written_line_by_line_pass_values_the_parameters_take(first_idx: int) -> None:
    """Run on results shaped as the tools declare, every path of a plan written line by line
    resolves, and every argument it gives is one the tool's schema accepts: a path is never
    guessed, never leads into the wrong tool's result, never gives an object for a string."""
    by_name = {t.name: t for t in RETURNING}
    produced = {1: "airport", 2: "repos"} if first_idx == 3 else {}
    rng = random.Random(10 + first_idx)
    checked = 0
    for _ in range(150):
        text = _sample_linewise(RETURNING, first_idx, produced, rng)
        events = parse_plan(text, known=range(1, first_idx))
        assert not [e for e in events if isinstance(e, ParseError)], text
        tools_of = {**produced, **written_tasks(text)}
        for task in (e for e in events if isinstance(e, TaskParsed) and e.tool != "join"):
            spec = by_name[task.tool]
            if any(by_name[tools_of[n]].returns is None for n in task.deps):
                continue  # a result of unknown shape: nothing to check it against

            def result_of(n: int, tools_of: dict[int, str] = tools_of) -> Any:
                returns = by_name[tools_of[n]].returns
                assert returns is not None
                return _example(returns, returns)

            args = resolve(task.args, result_of)
            kwargs = resolve(task.kwargs, result_of)
            names = list(spec.parameters["properties"])
            jsonschema.validate(dict(zip(names, args, strict=False)) | kwargs, spec.parameters)
            checked += bool(task.deps)
    assert checked > 40


# --------------------------------------------------------------------------- the local model's plan calls


def _plan_request(tools: list[ToolSpec], question: str, **fields: Any) -> ModelRequest:
    return ModelRequest(
        messages=(Message(role="user", content=f"Question: {question}"),),
        purpose="plan",
        stop=("<END_OF_PLAN>",),
        tools=tuple(tools),
        question=question,
        **fields,
    )


def test_a_plan_prompt_shows_a_path_example_only_when_a_tool_declares_its_result() -> None:
    with_paths, gbnf = build_prompt(_plan_request(RETURNING, "Flights from Paris to Rome?"), grounded=True)
    assert "3. flights($1.entityId, $2.entityId, " in with_paths
    assert "- airport(query: str) -> {entityId: str, skyId: str, name: str, rank: int}: Find an airport." in with_paths
    assert gbnf is not None and "path-" in gbnf
    demo, demo_gbnf = build_prompt(_plan_request([t.spec for t in DEMO_TOOLS], "Weather in Oslo?"), grounded=True)
    assert "entityId" not in demo and "->" not in demo
    assert demo_gbnf is not None and "path-" not in demo_gbnf
    # The few-shot start is the same either way: the prompt cache keeps one prefix for both.
    assert with_paths[:200] == demo[:200]


def test_a_replan_follows_the_results_of_earlier_rounds() -> None:
    earlier = (Observation(idx=1, tool="airport", label="airport(Paris)", text="{...}", ok=True),)
    _, gbnf = build_prompt(_plan_request(RETURNING, "Flights from Paris?", first_task=2, observations=earlier))
    assert gbnf is not None
    assert re.search(r'^ref-string-1 ::= "\$" "1" path-airport-string$', gbnf, re.MULTILINE)


def test_the_rest_of_a_plan_is_built_again_once_a_task_line_is_written() -> None:
    setup = _plan_setup(_plan_request(RETURNING, "q"), PlanLimits(max_tasks=3), grounded=False, ground_entities=False)
    assert setup is not None
    assert setup.resumed("Thought: first.\n") is None  # no task line yet
    rest = setup.resumed('Thought: first.\n1. airport("Paris")\n2. repos("octocat")\n')
    assert rest is not None and rest.startswith('root ::= thought? "3. "') and '"3. join()"' in rest
    assert re.search(r'^ref-string-2 ::= "\$" \("1" path-airport-string \| "2" path-repos-string-\d\)$', rest, re.M)
    assert setup.resumed("1. a()\n2. b()\n3. c()\n") is not None and setup.resumed("1. a()\n2. join()\n") is None
    assert _TASK_LINE_END.search('Thought: x\n1. airport("a (b)")\n')
    assert not _TASK_LINE_END.search("1. airport()\nThought: see (this)\n")


@pytest.mark.local_model
@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_the_model_writes_paths_that_follow_the_tool_each_task_called(seed: int) -> None:
    """At temperature 1 the model wanders; every plan still parses, and every path it writes
    reads a field the result of that task's tool declares, of the parameter's type: the
    grammar is built again after each task line, knowing its tool."""
    by_name = {t.name: t for t in RETURNING}
    chat = LlamaCppChat(temperature=1.0, seed=seed, max_tokens=256)
    chat.plan_limits = PlanLimits(max_tasks=4, max_string=24, max_thought=48)
    checked = 0
    for question in ("Which flights go from Paris to Rome on 2024-09-01?", "How many stars has octocat's first repo?"):
        text = ""
        async for event in chat.stream(_plan_request(RETURNING, question)):
            if isinstance(event, str):
                text += event
        events = parse_plan(text)
        assert not [e for e in events if isinstance(e, ParseError)], text
        tools_of = written_tasks(text)
        for task in (e for e in events if isinstance(e, TaskParsed) and e.tool != "join"):
            if any(by_name[tools_of[n]].returns is None for n in task.deps):
                continue

            def result_of(n: int, tools_of: dict[int, str] = tools_of) -> Any:
                returns = by_name[tools_of[n]].returns
                assert returns is not None
                return _example(returns, returns)

            spec = by_name[task.tool]
            args = dict(zip(spec.parameters["properties"], resolve(task.args, result_of), strict=False))
            jsonschema.validate(args | resolve(task.kwargs, result_of), spec.parameters)
            checked += bool(task.deps)
    assert checked >= 0  # the model need not reference anything; what it references must fit
