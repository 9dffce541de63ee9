"""The speed sweep (``benchmarks.sweep``) at a tiny size: the files it writes and their shape, never timing."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import pytest

from benchmarks import sweep
from benchmarks.oracle import PROFILES, GoldCall
from benchmarks.suites import Item
from llmcompiler import RunResult, tool


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sweep.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["sweep", *argv])


def test_a_tiny_sweep_writes_the_json_and_the_picture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = _parse(["--ttft", "0.1,0.45", "--tps", "50,80", "--limit", "2", "--out-dir", str(tmp_path)])
    assert sweep.run(args) == 0

    doc = json.loads((tmp_path / "sweep.json").read_text(encoding="utf-8"))
    assert doc["grid"]["ttft_s"] == [0.1, 0.45] and doc["grid"]["decode_tokens_per_s"] == [50.0, 80.0]
    assert "assumed" in doc["grid"]["source"] and "virtual" in doc["clock"]
    assert doc["token_counter"] == "o200k_base" == doc["base_profile"]["token_counter"]
    assert set(doc["named_profiles"]) == {"gpt-4o", "local"}
    assert list(doc["suites"]) == ["parallelqa", "dag", "nestful"]
    for suite in doc["suites"].values():
        assert suite["items"] == 2 and suite["unexpected_misses"] == []
        matrix = suite["speedup_vs_parallel_fc"]
        assert len(matrix) == 2 and all(len(row) == 2 for row in matrix)
        assert len(suite["points"]) == 4
        for point, speedup in zip(suite["points"], [v for row in matrix for v in row], strict=True):
            assert point["speedup_vs_parallel_fc"] == speedup and speedup is not None and speedup > 0
            assert point["paired_items"] == 2
            for system in ("llmcompiler", "parallel_fc"):
                metrics = point["systems"][system]
                assert metrics["accuracy"] == 1.0 and metrics["failures"] == 0
                assert metrics["latency_mean_s"] > 0 and metrics["ideal_ratio"] > 0
        # Slower first tokens cost LLMCompiler (two model calls) less than native calling (two or more turns).
        first, second = suite["points"][0], suite["points"][2]
        assert (first["ttft_s"], second["ttft_s"]) == (0.1, 0.45)
        assert second["systems"]["parallel_fc"]["latency_mean_s"] > first["systems"]["parallel_fc"]["latency_mean_s"]

    png = (tmp_path / "sweep.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    out = capsys.readouterr().out
    assert "speedup over native parallel calling" in out and "wrote" in out


def test_the_systems_and_suites_are_checked(tmp_path: Path) -> None:
    assert sweep.run(_parse(["--systems", "llmcompiler", "--out-dir", str(tmp_path)])) == 2
    assert sweep.run(_parse(["--suites", "nope", "--out-dir", str(tmp_path)])) == 2
    with pytest.raises(SystemExit):
        _parse(["--ttft", "0.1,-1"])
    assert not (tmp_path / "sweep.json").exists()


def _item(fn_is_async: bool) -> Item:
    async def lookup_async(x: int) -> int:
        await asyncio.sleep(0.5)
        return x + 1

    def lookup_sync(x: int) -> int:
        return x + 1

    lookup = tool(name="lookup")(lookup_async if fn_is_async else lookup_sync)

    def check(answer: str, _result: RunResult) -> bool:
        return answer.strip() == "2"

    return Item(
        id="one",
        question="What is lookup(1)?",
        tools=[lookup],
        gold=[GoldCall(tool="lookup", args={"x": 1})],
        answer=lambda observations: observations[1],
        check=check,
        kind="test",
    )


def test_a_point_runs_on_the_virtual_clock_and_refuses_tools_that_wait_on_threads() -> None:
    profile = PROFILES["gpt-4o"].with_speed(ttft_s=0.2, decode_tokens_per_s=50.0)
    outcomes = sweep.run_point([_item(True)], ["llmcompiler", "parallel_fc"], profile)
    assert [o.correct for o in outcomes] == [True, True]
    assert all(o.latency_s is not None and o.latency_s > 0.5 for o in outcomes)
    with pytest.raises(sweep.ThreadWaitError, match="other threads"):
        sweep.run_point([_item(False)], ["llmcompiler"], profile)


def test_parallelqa_math_is_the_demo_tool_run_async() -> None:
    # The suite's math runs on the event loop (so the virtual clock never waits on a thread) but
    # is otherwise the demo's tool: the model sees the same name, description and schema.
    from benchmarks.suites import load_suite
    from llmcompiler.demo import math as demo_math

    (math_tool,) = [t for t in load_suite("parallelqa")[0].tools if t.name == "math"]
    assert math_tool.spec == demo_math.spec and math_tool.signature() == demo_math.signature()
    assert asyncio.run(math_tool.ainvoke({"expression": "(14.0 - 0.71) / 2"})) == 6.645
