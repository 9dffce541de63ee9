"""Shared fixtures.

- ``blockbuster``: every async test fails if library code blocks the event loop
  (a sync tool that sleeps must be in a worker thread, never on the loop).
- Real model clients never reach beyond loopback: provider keys are removed from the
  environment unless a test opts in with the ``real_provider`` marker.
- The local model's prompt cache goes to a directory of the test session, not the user's.
- ``openai_script`` / ``anthropic_script`` / ``openai_llm`` / ``anthropic_llm``: the loopback wire
  servers of ``tests/wire`` (one per test module) and the real SDK clients on them, with the
  module's ``SECRET`` as the key.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest
from blockbuster import BlockBuster, blockbuster_ctx

if TYPE_CHECKING:
    from llmcompiler.models._anthropic import AnthropicChat
    from llmcompiler.models._openai import OpenAIChat
    from tests.wire import LoopbackServer, Script

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


# --------------------------------------------------------------------------- loopback wire servers
# The OpenAI and Anthropic wire-format servers of ``tests/wire``, one of each per test module, and
# the real SDK clients on them, keyed by the test module's ``SECRET`` (so each module proves its own
# key never leaks). A module that defines fixtures of these names uses its own.


@pytest.fixture(scope="module")
def openai_server() -> Iterator[tuple[LoopbackServer, Script]]:
    from tests.wire import openai_server as wire
    from tests.wire import serve

    with serve(wire.app) as running:
        yield running


@pytest.fixture(scope="module")
def anthropic_server() -> Iterator[tuple[LoopbackServer, Script]]:
    from tests.wire import anthropic_server as wire
    from tests.wire import serve

    with serve(wire.app) as running:
        yield running


def _fresh(server: tuple[LoopbackServer, Script]) -> Iterator[Script]:
    script = server[1]
    script.reset()
    yield script
    unused = len(script.replies)
    unexpected = list(script.unexpected)
    script.reset()
    assert not unexpected, f"requests beyond the script: {unexpected}"
    assert unused == 0, f"{unused} scripted replies were not requested"


@pytest.fixture
def openai_script(openai_server: tuple[LoopbackServer, Script]) -> Iterator[Script]:
    """The OpenAI server's script, empty at the start; the test must use every reply it adds."""
    yield from _fresh(openai_server)


@pytest.fixture
def anthropic_script(anthropic_server: tuple[LoopbackServer, Script]) -> Iterator[Script]:
    """The Anthropic server's script, empty at the start; the test must use every reply it adds."""
    yield from _fresh(anthropic_server)


@pytest.fixture
async def openai_llm(
    request: pytest.FixtureRequest, openai_server: tuple[LoopbackServer, Script]
) -> AsyncIterator[OpenAIChat]:
    """``OpenAIChat`` through the real SDK on the loopback server, with the module's ``SECRET``."""
    from llmcompiler.models._openai import OpenAIChat

    url = f"{openai_server[0].url}/v1"
    key = request.module.SECRET
    async with OpenAIChat("gpt-test", base_url=url, api_key=key, max_retries=0, timeout=10) as model:
        yield model


@pytest.fixture
async def anthropic_llm(
    request: pytest.FixtureRequest, anthropic_server: tuple[LoopbackServer, Script]
) -> AsyncIterator[AnthropicChat]:
    """``AnthropicChat`` through the real SDK on the loopback server, with the module's ``SECRET``."""
    from llmcompiler.models._anthropic import AnthropicChat

    url = anthropic_server[0].url
    key = request.module.SECRET
    async with AnthropicChat("claude-test", base_url=url, api_key=key, max_retries=0, timeout=10) as model:
        yield model


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
