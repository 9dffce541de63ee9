"""The wheel ships what the library reads at run time: prompts, demo data, py.typed."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.allow_blocking
def test_the_wheel_contains_prompts_demo_facts_and_type_markers(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), ROOT],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("llmcompiler-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    prompts = {p.name for p in (ROOT / "prompts").glob("*.txt")}
    assert prompts, "the repository has prompt templates"
    assert {f"llmcompiler/prompts/{p}" for p in prompts} <= names
    react = {p.name for p in (ROOT / "planners" / "prompts").glob("*.txt")}
    assert react and {f"planners/prompts/{p}" for p in react} <= names
    assert {"llmcompiler/py.typed", "planners/py.typed", "llmcompiler/demo/facts.json"} <= names
    assert not any(n.startswith(("tests/", "benchmarks/")) for n in names)
