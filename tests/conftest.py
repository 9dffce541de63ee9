"""Shared fixtures.

- ``blockbuster``: every async test fails if library code blocks the event loop
  (a sync tool that sleeps must be in a worker thread, never on the loop).
- Real model clients never reach beyond loopback: provider keys are removed from the
  environment unless a test opts in with the ``real_provider`` marker.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from blockbuster import BlockBuster, blockbuster_ctx

_PROVIDER_KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL")


@pytest.fixture(autouse=True)
def _no_provider_keys(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("real_provider") is None:
        for key in _PROVIDER_KEYS:
            monkeypatch.delenv(key, raising=False)


@pytest.fixture(autouse=True)
def blockbuster(request: pytest.FixtureRequest) -> Iterator[BlockBuster | None]:
    if request.node.get_closest_marker("allow_blocking") is not None:
        yield None
        return
    with blockbuster_ctx(scanned_modules=["llmcompiler", "planners"]) as bb:
        yield bb


def pytest_report_header() -> list[str]:
    return [f"cpus: {os.cpu_count()}"]
