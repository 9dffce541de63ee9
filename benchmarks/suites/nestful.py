"""NESTFUL: 300 nested sequences of API calls, where a call's argument is a field of an earlier call's output.

The data is NESTFUL v1's evaluation set (IBM; Basu et al., "NESTFUL: A Benchmark for Evaluating
LLMs on Nested Sequences of API Calls", arXiv:2409.03797; Apache-2.0), shipped unchanged in
``benchmarks/data/nestful/`` with its licence: executable 85 items (RapidAPI specs), Glaive 169,
SGD 46. Each item is a request (``input``) and its gold call sequence (``output``): calls with
``name``, ``arguments`` and a ``label``, then ``var_result``, which names what the answer is made of.
An argument ``"$var2.entityId$"`` is the field ``entityId`` of call 2's output, ``"$var3$"`` the whole
output.

Gold plans. ``$varK$`` becomes ``Ref(K)`` and ``$varK.a.b[0]$`` becomes ``Ref(K, ("a", "b", 0))``
(the plan writes ``$K.a.b[0]``; a key that is not a name, ``$var1.Exchange Rate$``, is written
``$1["Exchange Rate"]``); a reference inside longer text (``"5 * $var1.Exchange Rate$"``) becomes a
``Template`` (the plan writes the braced form, ``"5 * ${1["Exchange Rate"]}"``). References may sit
inside lists. Calls are numbered by their position: four items give two calls one label, and their
later references count by position. What the data needs repaired, and how (``Sample.repairs``):
one reference lost its leading ``$`` (``"var1.product_id$"``, read as the reference it is); two
items' ``var_result`` name a call that does not exist (``$var3$`` of a two-call item: the entry is
left out of the answer). No literal string of the data reads as a reference in the plan language
(``"$100-$200"`` names no earlier task, so it stays text).

Tools. One ``Tool.from_schema`` per spec of a subset (tool names with ``-`` get ``_``: the plan
language's names are letters, digits, ``_`` and ``.``). Each call waits a seeded log-normal time
(``LatencyModel``, median 300 ms, keyed on the tool and its arguments) and returns an object with
every field its spec's ``output_parameters`` list, nested objects and arrays (two elements) as the
spec draws them. Values are derived from a hash of the tool's name, its arguments (strings compared
ignoring case and runs of white space, numbers as numbers, as the plan check compares them) and the
field's path, so a call with a wrong argument returns different values and the error travels
downstream: strings are ``<field>-<6 hex digits>``, numbers 1000.00-9999.99, integers 1000-9999,
booleans and ``possible_values`` picked by the hash. Where NESTFUL's gold calls and its specs
disagree, the tools follow the gold calls (the benchmark scores calls against them):

- a field the gold calls read but the spec does not list (``$var1.localtime$`` of a spec that nests
  it under ``location``, ``$var1.id$`` of one that says ``artist_id``) is added where the gold reads
  it, typed as the parameter it feeds;
- a parameter the gold calls pass but the spec does not list is added, a required one some gold
  call leaves out becomes optional, and a parameter's type becomes the union of the spec's and the
  types of the values the gold calls pass (a reference passes the value at its path with its own
  type, so ``encrypt_data(data=$1.BMI)`` passes a number to a ``string`` parameter);
- ``allowed_values`` become an ``enum`` only when every gold value is one of them (else the
  description lists them); a spec's default is told in the description, not applied;
- the seven Glaive tools the gold calls use but no spec describes get a spec from their gold calls
  (parameters typed by their values, required when every call passes them) and return the fields
  their gold calls read (``{"result": ...}`` when none is read).

A tool's description is the spec's; it declares what it returns (``Tool.from_schema(returns=...)``,
the output schema above), so its signature shows the fields (``-> {skyId: str, entityId: str, ...}``)
and the local model's grammar offers paths into them: a plan needs the field names to write
``$1.entityId``. Each item offers its gold calls' tools and ``DISTRACTORS`` other tools of its
subset, in a seeded order.

Every tool is marked ``speculative=True``, so an ``LLMCompiler`` with a ``drafter`` may call it
from a draft plan. That is an assumption of the benchmark: the stand-ins compute values from a
hash and change nothing, while some of the real APIs behind the specs would write (send,
create, book) and must not be called before the planner asks for them.

Checks (``Item.check``, ``Item.plan_check``, ``Item.scores``):

- answer (``accuracy``): every entry of ``var_result`` shows in the answer: one of its values that
  only the right call produces (a ``<field>-<hex>`` string, or a number) is written in it. Entries
  with no such value (booleans, choices, secrets) are not asked for: a value under a secret's name
  (``password``) is ``[redacted]`` in every observation a model reads, by design.
- plan (``plan_accuracy``): ``gold_plan_matches`` with exact types: every gold call ran (same tool)
  with exactly the gold arguments, references resolved to the values at their paths in the matched
  calls' results, a number passed as a number and a string as a string (strings ignoring case and
  white space, numbers within a relative 1e-6); failed calls and repeats are left out.
- NESTFUL's own metrics (``scores``, averaged over the runs): ``function_name_f1``, the F1 of the
  called tools' names against the gold's (multisets, per item, as the paper); ``full_sequence_accuracy``,
  the calls made (failed and skipped ones included) are exactly the gold calls, one each, right
  arguments, and each started after the calls it needs had finished; ``win_rate``, the share of
  items whose ``var_result`` the run's successful calls produced (each entry's value is the value
  at its path in the result of a successful call of its tool): the paper's win rate, executed.

Systems that copy values (ReAct, native tool calling) read them from observations, where a value
under a secret's name is ``[redacted]``: on the seven items that pass a generated password to a
later call they cannot make that call, even with a perfect model (``Item.oracle_misses``);
LLMCompiler passes it by reference, unseen.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import math
import random
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import jsonschema

from benchmarks.oracle import GoldCall, value_of
from benchmarks.suites._common import (
    Item,
    LatencyModel,
    gold_plan_matches,
    match_gold,
    numbers_in,
    same_value,
    sleeping,
)
from llmcompiler import Ref, RunResult, TaskRecord, Template, Tool
from llmcompiler._literals import ResolveError, resolve, to_text
from llmcompiler._redact import is_secret_name

__all__ = [
    "DATA_DIR",
    "DISTRACTORS",
    "SCORES",
    "SOURCES",
    "Sample",
    "canonical",
    "fits",
    "full_sequence",
    "load_items",
    "marks",
    "name_f1",
    "produce",
    "read_samples",
    "reference_forms",
    "shape",
    "tool_name",
    "translate",
    "win",
]

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "nestful"
SOURCES: Mapping[str, tuple[str, str]] = {
    "executable": ("executable-data.json", "executable-spec.json"),
    "glaive": ("non-executable-glaive-data.json", "non-executable-glaive-spec.json"),
    "sgd": ("non-executable-sgd-data.json", "non-executable-sgd-spec.json"),
}
"""Each subset's data and spec files in ``DATA_DIR``."""

DISTRACTORS = 2
"""Tools of the same subset offered beside an item's gold tools."""

ARRAY_LENGTH = 2
"""Elements of every array a tool returns."""

SCORES: Mapping[str, str] = {
    "function_name_f1": "NESTFUL's F1 of the called tools' names against the gold calls' (multisets, failed "
    "calls included), per question, mean over every run",
    "full_sequence_accuracy": "runs whose calls were exactly the gold calls (one each, none failed, right "
    "arguments, each after the calls it needs), over every run",
    "win_rate": "runs whose successful calls produced every value var_result names (NESTFUL's win rate, "
    "executed), over every run",
}
"""What each of this suite's own metrics (``Item.scores``) means, for the results file."""

Path_ = tuple[str | int, ...]

# --------------------------------------------------------------------------- reading the data

# A reference: "$var" K, then a path of ".field" (any text but ". $ [ ]": "Exchange Rate" is a
# field) and "[n]" steps, then "$".
_PATH = r"(?:\.[^.$\[\]]+|\[-?\d+\])*"
_REF = re.compile(rf"\$var(\d+)({_PATH})\$")
_UNMARKED = re.compile(rf"var(\d+)({_PATH})\$")  # a whole argument whose leading "$" was lost
_STEP = re.compile(r"\.([^.$\[\]]+)|\[(-?\d+)\]")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Sample:
    """One NESTFUL item, translated.

    Attributes:
        source: ``executable``, ``glaive`` or ``sgd``.
        index: its position in its subset's data file.
        question: the request (``input``).
        calls: the gold calls, numbered from 1 by position, references as ``Ref`` and ``Template``.
        result: ``var_result``: what the answer is made of, by name (references to calls that do
            not exist left out).
        repairs: what had to be read differently from the data as written, one line each.
    """

    source: str
    index: int
    question: str
    calls: tuple[GoldCall, ...]
    result: Mapping[str, Any]
    repairs: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        """``<source>-<index>``."""
        return f"{self.source}-{self.index}"


def tool_name(name: str) -> str:
    """A NESTFUL function name as a tool name: characters the plan language's names lack become ``_``."""
    return re.sub(r"[^A-Za-z0-9_.]", "_", name)


def _path(text: str) -> Path_:
    return tuple(m.group(1) if m.group(1) is not None else int(m.group(2)) for m in _STEP.finditer(text))


def translate(value: Any, *, calls: int, repairs: list[str] | None = None) -> Any:
    """A NESTFUL argument with its references as ``Ref`` and ``Template`` (lists and dicts walked).

    Args:
        value: the argument as the data writes it.
        calls: how many calls may be referenced (``$var1`` to ``$var<calls>``).
        repairs: where to note a reference read despite a lost leading ``$``.

    Raises:
        ValueError: a reference to a call outside ``1..calls``.
    """
    if isinstance(value, list):
        return [translate(v, calls=calls, repairs=repairs) for v in value]
    if isinstance(value, dict):
        return {k: translate(v, calls=calls, repairs=repairs) for k, v in value.items()}
    if not isinstance(value, str):
        return value
    whole = _REF.fullmatch(value)
    if whole is None and (unmarked := _UNMARKED.fullmatch(value)) is not None:
        whole = unmarked
        if repairs is not None:
            repairs.append(f"{value!r} read as the reference ${value}")
    if whole is not None:
        return _ref(whole, calls)
    parts: list[str | Ref] = []
    last = 0
    for m in _REF.finditer(value):
        if m.start() > last:
            parts.append(value[last : m.start()])
        parts.append(_ref(m, calls))
        last = m.end()
    if not parts:
        return value
    if last < len(value):
        parts.append(value[last:])
    return Template(tuple(parts))


def _ref(m: re.Match[str], calls: int) -> Ref:
    k = int(m.group(1))
    if not 1 <= k <= calls:
        raise ValueError(f"{m.group()} names call {k}; there are {calls} before it")
    return Ref(k, _path(m.group(2)))


def _refs(value: Any) -> Iterator[Ref]:
    if isinstance(value, Ref):
        yield value
    elif isinstance(value, Template):
        yield from (p for p in value.parts if isinstance(p, Ref))
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _refs(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _refs(v)


def read_samples(path: Path = DATA_DIR) -> list[Sample]:
    """Every item of the three subsets, in file order (executable, Glaive, SGD).

    Raises:
        ValueError: a call references itself or a later call.
    """
    samples: list[Sample] = []
    for source, (data_file, _) in SOURCES.items():
        for index, raw in enumerate(json.loads((path / data_file).read_text(encoding="utf-8"))):
            repairs: list[str] = []
            steps = [c for c in raw["output"] if c["name"] != "var_result"]
            calls: list[GoldCall] = []
            for n, call in enumerate(steps, 1):
                if call.get("label") != f"var{n}":
                    repairs.append(f"call {n} is labelled {call.get('label')!r}: numbered by its position")
                args = {k: translate(v, calls=n - 1, repairs=repairs) for k, v in call["arguments"].items()}
                calls.append(GoldCall(tool=tool_name(call["name"]), args=args))
            result: dict[str, Any] = {}
            for final in (c for c in raw["output"] if c["name"] == "var_result"):
                for key, value in final["arguments"].items():
                    try:
                        result[key] = translate(value, calls=len(calls), repairs=repairs)
                    except ValueError as exc:
                        repairs.append(f"var_result {key!r} left out: {exc}")
            samples.append(
                Sample(
                    source=source,
                    index=index,
                    question=raw["input"],
                    calls=tuple(calls),
                    result=result,
                    repairs=tuple(repairs),
                )
            )
    return samples


def reference_forms(samples: Sequence[Sample]) -> dict[str, dict[str, int]]:
    """The forms of reference the gold data uses: for each, how many references and how many items.

    Forms (one reference may have several): ``whole`` (``$varK$``), ``field`` (one field),
    ``nested`` (a field of a field), ``index`` (``[n]`` on the way), ``quoted key`` (a field that is
    not a name, ``Exchange Rate``), ``in text`` (inside a longer string), ``in a list`` (an element
    of a list argument), ``in var_result`` (naming the answer rather than feeding a call).
    """
    refs: collections.Counter[str] = collections.Counter()
    items: dict[str, set[str]] = collections.defaultdict(set)

    def note(form: str, sample: Sample) -> None:
        refs[form] += 1
        items[form].add(sample.id)

    def visit(value: Any, sample: Sample, *, where: tuple[str, ...]) -> None:
        if isinstance(value, Ref):
            for form in (*where, *_forms(value)):
                note(form, sample)
        elif isinstance(value, Template):
            for ref in (p for p in value.parts if isinstance(p, Ref)):
                for form in (*where, "in text", *_forms(ref)):
                    note(form, sample)
        elif isinstance(value, list):
            for v in value:
                visit(v, sample, where=(*where, "in a list"))
        elif isinstance(value, dict):
            for v in value.values():
                visit(v, sample, where=where)

    for sample in samples:
        for call in sample.calls:
            for v in call.args.values():
                visit(v, sample, where=())
        for v in sample.result.values():
            visit(v, sample, where=("in var_result",))
    return {form: {"references": refs[form], "items": len(items[form])} for form in sorted(refs)}


def _forms(ref: Ref) -> list[str]:
    names = [s for s in ref.path if isinstance(s, str)]
    forms = ["whole"] if not ref.path else ["field" if len(names) == 1 else "nested"]
    if any(isinstance(s, int) for s in ref.path):
        forms.append("index")
    if any(not re.fullmatch(r"[A-Za-z_]\w*", s) for s in names):
        forms.append("quoted key")
    return forms


# --------------------------------------------------------------------------- output schemas

_TYPES = {
    "string": "string",
    "str": "string",
    "file": "string",
    "enum": "string",
    "number": "number",
    "float": "number",
    "double": "number",
    "integer": "integer",
    "int": "integer",
    "boolean": "boolean",
    "bool": "boolean",
    "object": "object",
    "dict": "object",
    "array": "array",
    "list": "array",
}


def _type(raw: Any) -> str | None:
    """A spec's type name as a JSON Schema type (``None``: not given or not a type)."""
    if not isinstance(raw, str):
        return None
    text = raw.strip().lower()
    if text.startswith("date"):
        return "string"
    return _TYPES.get(text)


def _node(raw: Any) -> dict[str, Any]:
    """One ``output_parameters`` entry as a small JSON Schema: type, properties, items, enum."""
    if isinstance(raw, str):
        return {"type": _type(raw) or "string"}
    if not isinstance(raw, Mapping):
        return {"type": "string"}
    node: dict[str, Any] = {"type": _type(raw.get("type"))}
    if isinstance(raw.get("properties"), Mapping):
        node["type"] = "object"
        node["properties"] = {k: _node(v) for k, v in raw["properties"].items()}
    elif node["type"] == "array" or isinstance(raw.get("items"), Mapping):
        node["type"] = "array"
        node["items"] = _node(raw["items"]) if isinstance(raw.get("items"), Mapping) else {"type": "string"}
    choices = raw.get("possible_values")
    if isinstance(choices, list) and choices and all(isinstance(c, str) for c in choices):
        node["enum"] = list(choices)
    if node["type"] is None:
        node["type"] = "string"
    return node


def _ensure(root: dict[str, Any], path: Path_, leaf: str) -> None:
    """Make ``path`` lead somewhere in ``root`` (adding fields and arrays as the gold calls read them)."""
    node = root
    for n, step in enumerate(path):
        last = n == len(path) - 1
        if isinstance(step, int):
            if node.get("type") != "array":
                node.clear()
                node.update({"type": "array", "items": {"type": leaf if last else "object"}})
            node = node["items"]
        else:
            if node.get("type") != "object":
                node.clear()
                node["type"] = "object"
            props = node.setdefault("properties", {})
            if step not in props:
                props[step] = {"type": leaf if last else "object"}
            node = props[step]


def shape(node: Mapping[str, Any]) -> str:
    """What a tool returns, written for its description: ``{skyId: string, author: [{id: string}]}``."""
    kind = node.get("type")
    if kind == "object":
        props: Mapping[str, Any] = node.get("properties") or {}
        if not props:
            return "object"
        return "{" + ", ".join(f"{_key(k)}: {shape(v)}" for k, v in props.items()) + "}"
    if kind == "array":
        return f"[{shape(node.get('items') or {'type': 'string'})}]"
    return str(kind or "string")


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z_]\w*", name) else json.dumps(name)


# --------------------------------------------------------------------------- values


def canonical(value: Any) -> Any:
    """``value`` as the tools read it: strings without case or runs of white space, numbers (also
    numbers written as strings) as floats to 9 significant digits, dict keys sorted."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return _canonical_number(float(value))
    if isinstance(value, str):
        try:
            number = float(value.strip().replace(",", ""))
        except ValueError:
            return " ".join(value.split()).casefold()
        return _canonical_number(number)
    if isinstance(value, Mapping):
        return {str(k): canonical(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return repr(value)


def _canonical_number(x: float) -> float | str:
    return float(f"{x:.9g}") if math.isfinite(x) else str(x)


def _digest(*key: Any) -> str:
    text = json.dumps(key, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def produce(tool: str, output: Mapping[str, Any], args: Mapping[str, Any]) -> Any:
    """What ``tool`` returns for ``args``: a value of the ``output`` schema, every field filled.

    Deterministic: the same tool and arguments (as ``canonical`` reads them) give the same value.
    """
    seed = _digest(tool, canonical(dict(args)))
    return _fill(output, seed, ())


def _fill(node: Mapping[str, Any], seed: str, path: Path_) -> Any:
    h = _digest(seed, list(path))
    kind = node.get("type")
    if kind == "object":
        props: Mapping[str, Any] = node.get("properties") or {}
        if not props:
            return {"id": _token("id", h)}
        return {k: _fill(v, seed, (*path, k)) for k, v in props.items()}
    if kind == "array":
        items = node.get("items") or {"type": "string"}
        return [_fill(items, seed, (*path, i)) for i in range(ARRAY_LENGTH)]
    choices = node.get("enum")
    if choices:
        return choices[int(h[:8], 16) % len(choices)]
    if kind == "number":
        return (100_000 + int(h[:12], 16) % 900_000) / 100
    if kind == "integer":
        return 1000 + int(h[:12], 16) % 9000
    if kind == "boolean":
        return int(h[0], 16) % 2 == 0
    field = next((s for s in reversed(path) if isinstance(s, str)), "value")
    return _token(field, h)


def _token(field: str, h: str) -> str:
    return f"{re.sub(r'[^A-Za-z0-9_]+', '_', field).strip('_') or 'value'}-{h[:6]}"


_TOKEN = re.compile(r"-[0-9a-f]{6}\Z")


def marks(value: Any, path: Path_ = ()) -> list[str | float]:
    """The values inside ``value`` that only the call that made it produces: generated strings
    (``<field>-<hex>``) and numbers; none under a secret's name (observations hide those)."""
    if path and isinstance(path[-1], str) and is_secret_name(path[-1]):
        return []
    if isinstance(value, Mapping):
        return [m for k, v in value.items() for m in marks(v, (*path, str(k)))]
    if isinstance(value, (list, tuple)):
        return [m for i, v in enumerate(value) for m in marks(v, (*path, i))]
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, str) and _TOKEN.search(value):
        return [value]
    return []


def _shown(mark: str | float, answer: str, numbers: Sequence[float]) -> bool:
    if isinstance(mark, str):
        return mark.casefold() in answer.casefold()
    return any(math.isclose(n, mark, rel_tol=1e-6, abs_tol=1e-9) for n in numbers)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    return type(value).__name__


def _same_kinds(a: Any, b: Any) -> bool:
    """The same JSON types all the way down (an integer and a float are both numbers)."""
    ka, kb = _kind(a), _kind(b)
    if {ka, kb} <= {"integer", "number"}:
        return True
    if ka != kb:
        return False
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same_kinds(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_kinds(x, y) for x, y in zip(a, b, strict=True))
    return True


def fits(_tool: str, given: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """This suite's "the same arguments": ``same_value`` on each, and the same types."""
    return same_value(dict(given), dict(wanted)) and _same_kinds(dict(given), dict(wanted))


# --------------------------------------------------------------------------- metrics


def name_f1(gold: Sequence[str], made: Sequence[str]) -> float:
    """F1 of the called tools' names against the gold's, as multisets (0 when nothing was called)."""
    hits = sum((collections.Counter(gold) & collections.Counter(made)).values())
    if not hits:
        return 0.0
    precision, recall = hits / len(made), hits / len(gold)
    return 2 * precision * recall / (precision + recall)


def full_sequence(gold: Sequence[GoldCall], tasks: Sequence[TaskRecord]) -> bool:
    """Whether the calls made are exactly the gold calls: as many, none failed or skipped, each with
    its gold arguments (``fits``, references resolved to the matched calls' results), and each
    started after the calls it needs had finished."""
    made = [t for t in tasks if t.tool != "join"]
    if len(made) != len(gold) or not all(t.ok for t in made):
        return False
    match = match_gold(gold, made, fits)
    if match is None:
        return False
    for n, call in enumerate(gold, 1):
        start = match[n].start
        for d in call.deps():
            end = match[d].end
            if start is None or end is None or end > start:
                return False
    return True


def _at(value: Any, path: Path_) -> Any:
    for step in path:
        listed = isinstance(step, int) and isinstance(value, (list, tuple)) and -len(value) <= step < len(value)
        if not listed and not (isinstance(step, str) and isinstance(value, Mapping) and step in value):
            raise LookupError(step)
        value = value[step]
    return value


def win(
    gold: Sequence[GoldCall], result: Mapping[str, Any], expected: Mapping[str, Any], tasks: Sequence[TaskRecord]
) -> bool:
    """Whether the successful calls of ``tasks`` produced the answer: for each ``var_result``
    entry that is a reference, a successful call of the referenced gold call's tool returned
    the expected value at the reference's path."""
    done = [t for t in tasks if t.tool != "join" and t.ok]
    for name, entry in result.items():
        if not isinstance(entry, Ref) or name not in expected:
            continue
        tool = gold[entry.idx - 1].tool
        found = False
        for task in done:
            if task.tool != tool:
                continue
            try:
                got = _at(task.result, entry.path)
            except LookupError:
                continue
            if same_value(got, expected[name], 0.0) and _same_kinds(got, expected[name]):
                found = True
                break
        if not found:
            return False
    return True


# --------------------------------------------------------------------------- tools


@dataclasses.dataclass(kw_only=True, slots=True)
class _Spec:
    source: str
    name: str
    description: str
    params: dict[str, dict[str, Any]]  # name: the spec's entry (type, required, description, ...)
    output: dict[str, Any]  # an object schema (``_node``)
    described: bool = True  # False: no spec in the data, made from the gold calls


def _read_specs(path: Path, source: str) -> dict[str, _Spec]:
    specs: dict[str, _Spec] = {}
    for raw in json.loads((path / SOURCES[source][1]).read_text(encoding="utf-8")):
        name = tool_name(raw["name"])
        if name in specs:  # five Glaive specs are listed twice, identically
            continue
        params: dict[str, dict[str, Any]] = {}
        for key in ("parameters", "query_parameters", "path_parameters", "arguments"):
            params.update({p: dict(v) if isinstance(v, Mapping) else {} for p, v in (raw.get(key) or {}).items()})
        specs[name] = _Spec(
            source=source,
            name=name,
            description=str(raw.get("description") or ""),
            params=params,
            output={
                "type": "object",
                "properties": {k: _node(v) for k, v in (raw.get("output_parameters") or {}).items()},
            },
        )
    return specs


def _leaf_type(spec: _Spec | None, param: str) -> str:
    """The type a gold read should have when it feeds ``param`` of ``spec`` whole."""
    if spec is None or param not in spec.params:
        return "string"
    kind = _type(spec.params[param].get("type"))
    return kind if kind in ("string", "number", "integer", "boolean", "array", "object") else "string"


def _json_type(kinds: set[str]) -> str | list[str]:
    if "number" in kinds:
        kinds = kinds - {"integer"}
    listed = sorted(kinds)
    return listed[0] if len(listed) == 1 else listed


def _param_schema(spec: _Spec, passed: Mapping[str, list[Any]], calls: int) -> dict[str, Any]:
    """The tool's JSON Schema: the spec's parameters, widened to accept every gold call."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in [*spec.params, *(p for p in passed if p not in spec.params)]:
        raw = spec.params.get(param)
        values = passed.get(param, [])
        kinds = {_kind(v) for v in values}
        declared = _type(raw.get("type")) if raw else None
        if declared is None and spec.source == "sgd" and raw is not None:
            declared = "string"  # SGD's arguments are untyped strings
        if declared is not None:
            kinds.add(declared)
        prop: dict[str, Any] = {}
        if kinds:
            prop["type"] = _json_type(kinds)
        notes: list[str] = []
        if raw is not None:
            if raw.get("description"):
                notes.append(str(raw["description"]).strip())
            choices = raw.get("enum") if isinstance(raw.get("enum"), list) else raw.get("allowed_values")
            if isinstance(choices, list) and choices:
                if all(any(v == c for c in choices) for v in values):
                    prop["enum"] = list(choices)
                else:
                    notes.append("Allowed values: " + ", ".join(str(c) for c in choices) + ".")
            default = raw.get("default", raw.get("default_value"))
            if default not in (None, ""):
                notes.append(f"Default: {default}.")
        if isinstance(raw, Mapping) and isinstance(raw.get("items"), Mapping):
            items = _node(raw["items"])
            candidate = {"type": "array", "items": {"type": items["type"]}}
            if all(not isinstance(v, list) or _valid(v, candidate) for v in values):
                prop["items"] = {"type": items["type"]}
        text = " ".join(n for n in notes if n)
        if text:
            prop["description"] = text
        properties[param] = prop
        # Required when the spec says so (every parameter of a tool no spec describes) and every
        # gold call of the tool passes it; a tool no gold call uses keeps the spec's word.
        is_required = bool(raw.get("required")) if raw is not None else not spec.described
        if is_required and (calls == 0 or len(values) == calls):
            required.append(param)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _valid(value: Any, schema: Mapping[str, Any]) -> bool:
    return bool(jsonschema.Draft202012Validator(schema).is_valid(value))


def _description(spec: _Spec) -> str:
    text = spec.description.strip() or spec.name.replace("_", " ").replace(".", ": ").capitalize() + "."
    return text if text.endswith((".", "!", "?")) else text + "."


def _make_tool(spec: _Spec, schema: Mapping[str, Any], latency: LatencyModel) -> Tool:
    name, output = spec.name, spec.output

    async def call(**kwargs: Any) -> Any:
        await sleeping(latency.delay(name, canonical(kwargs)))
        return produce(name, output, kwargs)

    return Tool.from_schema(
        name=name, description=_description(spec), parameters=schema, fn=call, returns=output, speculative=True
    )


# --------------------------------------------------------------------------- items


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class _Built:
    specs: dict[tuple[str, str], _Spec]
    expected: dict[str, dict[str, Any]]  # item id: var_result entry: its value
    passed: dict[tuple[str, str], dict[str, list[Any]]]
    calls: collections.Counter[tuple[str, str]]


def _build(samples: Sequence[Sample], path: Path) -> _Built:
    specs: dict[tuple[str, str], _Spec] = {}
    for source in SOURCES:
        specs.update({(source, n): s for n, s in _read_specs(path, source).items()})
    # Tools the gold calls use that no spec describes: a spec from their gold calls.
    for sample in samples:
        for call in sample.calls:
            key = (sample.source, call.tool)
            if key not in specs:
                specs[key] = _Spec(
                    source=sample.source,
                    name=call.tool,
                    description="",
                    params={},
                    output={"type": "object", "properties": {}},
                    described=False,
                )
    # Every path the gold calls read exists in the output of the tool they read it from.
    for sample in samples:
        reads: list[tuple[Ref, str]] = []
        for call in sample.calls:
            spec = specs[(sample.source, call.tool)]
            for param, value in call.args.items():
                leaf = _leaf_type(spec, param) if isinstance(value, Ref) else "string"
                reads.extend((ref, leaf) for ref in _refs(value))
        reads.extend((ref, "string") for ref in _refs(dict(sample.result)))
        for ref, leaf in reads:
            if ref.path:
                _ensure(specs[(sample.source, sample.calls[ref.idx - 1].tool)].output, ref.path, leaf)
    for spec in specs.values():
        if not spec.described and not spec.output["properties"]:
            spec.output["properties"]["result"] = {"type": "string"}
    # Run every gold sequence: what each parameter is passed, and each answer's values.
    passed: dict[tuple[str, str], dict[str, list[Any]]] = collections.defaultdict(lambda: collections.defaultdict(list))
    calls: collections.Counter[tuple[str, str]] = collections.Counter()
    expected: dict[str, dict[str, Any]] = {}
    for sample in samples:
        results: dict[int, Any] = {}
        for n, call in enumerate(sample.calls, 1):
            key = (sample.source, call.tool)
            args = {k: resolve(v, results.__getitem__) for k, v in call.args.items()}
            for param, value in args.items():
                passed[key][param].append(value)
            calls[key] += 1
            results[n] = produce(call.tool, specs[key].output, args)
        expected[sample.id] = {k: resolve(v, results.__getitem__) for k, v in sample.result.items()}
    return _Built(specs=specs, expected=expected, passed=passed, calls=calls)


def _answer(result: Mapping[str, Any]) -> Callable[[Mapping[int, str]], str]:
    """The oracle's answer: for each ``var_result`` entry, one value only its call produces."""

    def answer(observations: Mapping[int, str]) -> str:
        parts: list[str] = []
        for name, entry in result.items():
            try:
                value = resolve(entry, lambda k: value_of(observations[k]))
            except (KeyError, ResolveError):
                parts.append(f"{name}: unknown")
                continue
            found = marks(value)
            if found:
                shown = found[0]
                parts.append(f"{name}: {shown if isinstance(shown, str) else _number_text(shown)}")
            elif isinstance(value, (Mapping, list, tuple)):
                parts.append(f"{name}: {to_text(value)[:80]}")
            else:
                parts.append(f"{name}: {value}")
        return "; ".join(parts) + "."

    return answer


def _number_text(x: float) -> str:
    return str(int(x)) if x.is_integer() else repr(x)


def _check(expected: Mapping[str, Any]) -> Callable[[str, RunResult], bool]:
    wanted = [m for m in (marks(v) for v in expected.values()) if m]

    def check(answer: str, _result: RunResult) -> bool:
        numbers = numbers_in(answer)
        return all(any(_shown(m, answer, numbers) for m in entry) for entry in wanted)

    return check


def _copies_a_secret(sample: Sample) -> bool:
    """A gold call passes a value under a secret's name: a system copying from observations sees ``[redacted]``."""
    return any(
        any(isinstance(s, str) and is_secret_name(s) for s in ref.path)
        for call in sample.calls
        for ref in _refs(dict(call.args))
    )


def load_items(*, seed: int = 0, distractors: int = DISTRACTORS, path: Path = DATA_DIR) -> list[Item]:
    """Every NESTFUL item (300), the subsets interleaved (executable, Glaive, SGD, executable, ...).

    Args:
        seed: the latency model's and the tool order's seed.
        distractors: tools of the same subset offered beside the gold tools.
        path: the folder of the data files.
    """
    samples = read_samples(path)
    built = _build(samples, path)
    latency = LatencyModel(seed=seed)
    tools: dict[tuple[str, str], Tool] = {}
    for key, spec in built.specs.items():
        schema = _param_schema(spec, built.passed.get(key, {}), built.calls.get(key, 0))
        tools[key] = _make_tool(spec, schema, latency)
    by_source: dict[str, list[Item]] = collections.defaultdict(list)
    for sample in samples:
        rng = random.Random(f"{seed}:{sample.id}")
        own = list(dict.fromkeys(c.tool for c in sample.calls))
        others = sorted(n for (s, n) in tools if s == sample.source and n not in own)
        names = own + rng.sample(others, min(distractors, len(others)))
        rng.shuffle(names)
        gold = list(sample.calls)
        expected = built.expected[sample.id]

        def plan_check(tasks: Sequence[TaskRecord], gold: Sequence[GoldCall] = gold) -> bool:
            return gold_plan_matches(gold, tasks, fits)

        def scores(
            tasks: Sequence[TaskRecord],
            gold: Sequence[GoldCall] = gold,
            result: Mapping[str, Any] = sample.result,
            expected: Mapping[str, Any] = expected,
        ) -> dict[str, float]:
            made = [t.tool for t in tasks if t.tool != "join"]
            return {
                "function_name_f1": name_f1([c.tool for c in gold], made),
                "full_sequence_accuracy": float(full_sequence(gold, tasks)),
                "win_rate": float(win(gold, result, expected, tasks)),
            }

        misses = (
            dict.fromkeys(
                ("react", "parallel_fc"), "copies a value hidden from the model ([redacted]) into a later call"
            )
            if _copies_a_secret(sample)
            else {}
        )
        by_source[sample.source].append(
            Item(
                id=sample.id,
                question=sample.question,
                tools=[tools[(sample.source, n)] for n in names],
                gold=gold,
                answer=_answer(sample.result),
                check=_check(expected),
                kind=sample.source,
                expected=expected,
                plan_check=plan_check,
                scores=scores,
                oracle_misses=misses,
            )
        )
    groups = [by_source[s] for s in SOURCES]
    longest = max(len(g) for g in groups)
    return [g[i] for i in range(longest) for g in groups if i < len(g)]
