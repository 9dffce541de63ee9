"""Shared fixtures.

- ``blockbuster``: every async test fails if library code blocks the event loop
  (a sync tool that sleeps must be in a worker thread, never on the loop).
- Real model clients never reach beyond loopback: provider keys are removed from the
  environment unless a test opts in with the ``real_provider`` marker.
- The local model's prompt cache goes to a directory of the test session, not the user's.
"""

from __future__ import annotations

import os
import tempfile
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


@pytest.fixture(autouse=True, scope="session")
def _prompt_cache_of_the_session() -> Iterator[None]:
    with tempfile.TemporaryDirectory(prefix="llmcompiler-test-cache-") as path:
        before = os.environ.get("LLMCOMPILER_CACHE")
        os.environ["LLMCOMPILER_CACHE"] = path
        yield
        if before is None:
            os.environ.pop("LLMCOMPILER_CACHE", None)
        else:
            os.environ["LLMCOMPILER_CACHE"] = before


def pytest_unconfigure(config: pytest.Config) -> None:
    """Close llama-cpp-python's two /dev/null files once our models are freed.

    The library opens them at import and never closes them; under this suite's
    ``filterwarnings = error`` their finalisation at exit prints a ResourceWarning as an
    "Exception ignored". The adapter filters that warning for programs; pytest's warning
    filters are gone by the time the files are finalised, so here they are closed.
    """
    import sys

    llamacpp = sys.modules.get("llmcompiler.models._llamacpp")
    utils = sys.modules.get("llama_cpp._utils")
    if llamacpp is None or utils is None:
        return
    llamacpp._close_all()
    for name in ("outnull_file", "errnull_file"):
        handle = getattr(utils, name, None)
        if handle is not None:
            handle.close()


def pytest_report_header() -> list[str]:
    return [f"cpus: {os.cpu_count()}"]
