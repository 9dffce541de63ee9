"""The package's structure: every module imports on its own, in any order, without a cycle.

The layers themselves (data ← support ← models ← core ← agent ← views, planners on the public
API only, nothing importing benchmarks) are an import-linter contract in ``pyproject.toml``,
run by ``make lint``. This test checks what a static contract cannot: that importing each
module first, into an interpreter where none of ours is loaded yet, works.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _modules() -> list[str]:
    found = []
    for package in ("llmcompiler", "planners"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def test_every_module_imports_first_in_any_order() -> None:
    modules = _modules()
    assert "llmcompiler._types" in modules and "planners._react" in modules
    # One interpreter; before each import every module of ours is forgotten, so each is
    # imported first, as `python -c "import <module>"` would (third-party modules stay
    # loaded). The order is shuffled: no module may depend on another having been imported.
    orders = [random.Random(12).sample(modules, len(modules))]
    script = textwrap.dedent(
        """
        import importlib, sys, json
        failed = []
        for order in json.loads(sys.argv[1]):
            for name in order:
                for loaded in [m for m in sys.modules if m.split(".")[0] in ("llmcompiler", "planners")]:
                    del sys.modules[loaded]
                try:
                    importlib.import_module(name)
                except Exception as exc:
                    failed.append(f"{name}: {type(exc).__name__}: {exc}")
        print("\\n".join(failed))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(orders)], capture_output=True, text=True, cwd=ROOT, timeout=100
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "", done.stdout


def test_the_leaf_types_import_nothing_of_ours() -> None:
    source = (ROOT / "llmcompiler" / "_types.py").read_text(encoding="utf-8")
    assert "import llmcompiler" not in source and "from llmcompiler" not in source and "from ." not in source


def test_the_import_contract_names_every_private_module_for_planners() -> None:
    # The "planners uses only the public API" contract lists llmcompiler's private modules by
    # name (import-linter has no wildcard for a name prefix): a new module must be listed too.
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    public_only = next(c for c in contracts if c.get("source_modules") == ["planners"])
    ours = [m for m in _modules() if m.startswith("llmcompiler.")]
    private = {m for m in ours if any(part.startswith("_") for part in m.split(".")[1:])}
    assert private <= set(public_only["forbidden_modules"]), sorted(private - set(public_only["forbidden_modules"]))
    layered = {m for c in contracts if c["type"] == "layers" for layer in c["layers"] for m in _split(layer)}
    top_level = {m.split(".")[1] for m in ours}
    assert top_level <= layered, sorted(top_level - layered)


def _split(layer: str) -> list[str]:
    return [part.strip() for part in layer.replace("|", ":").split(":")]
