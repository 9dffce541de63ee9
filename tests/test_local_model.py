"""The real local model (Gemma 3 270M through llama.cpp): streaming, usage, cancellation, grammar-bound
plans, a whole LLMCompiler run, and the llama.cpp OpenAI-compatible server driven by ``OpenAIChat``.

The model loads once per session (and is cached per process by the adapter); every test asks
for few tokens.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from llmcompiler import LLMCompiler, Message, ModelError, ModelRequest, ParseError, TaskParsed, Usage, parse_plan
from llmcompiler.demo import DEMO_TOOLS
from llmcompiler.models import Truncated
from llmcompiler.models._llamacpp import DEFAULT_MODEL_NAME, LlamaCppChat, default_model_path
from llmcompiler.models._openai import OpenAIChat

pytestmark = pytest.mark.local_model

DEMO_QUESTION = "What is the weather and the local time in Tokyo and in Oslo?"


@pytest.fixture(scope="session")
def local_chat() -> LlamaCppChat:
    chat = LlamaCppChat()
    chat.preload()
    return chat


def _chat_request(text: str) -> ModelRequest:
    return ModelRequest(messages=(Message(role="user", content=text),), purpose="chat")


async def _collect(chat: LlamaCppChat, request: ModelRequest) -> tuple[list[str], Usage]:
    chunks: list[str] = []
    usage = Usage()
    async for event in chat.stream(request):
        if isinstance(event, str):
            chunks.append(event)
        elif isinstance(event, Usage):
            usage += event
    return chunks, usage


async def test_streams_text_and_reports_usage(local_chat: LlamaCppChat) -> None:
    chat = LlamaCppChat(max_tokens=8)  # the same loaded model: the cache is per file and settings
    assert chat.model_name == DEFAULT_MODEL_NAME == "local:gemma-3-270m"
    chunks, usage = await _collect(chat, _chat_request("Name three colours of the rainbow."))
    assert "".join(chunks).strip()
    assert len(chunks) >= 2  # streamed piece by piece, not in one block
    prompt_tokens = len(chat.llama("chat").tokenize(b"x", add_bos=True))  # at least BOS plus text
    assert usage.calls == 1
    assert usage.prompt_tokens > prompt_tokens
    assert 1 <= usage.completion_tokens <= 8


async def test_stop_sequences_end_the_reply(local_chat: LlamaCppChat) -> None:
    chat = LlamaCppChat(max_tokens=40)
    request = ModelRequest(
        messages=(Message(role="user", content="Count: 1, 2, 3, 4, 5, 6, 7, 8"),), purpose="chat", stop=(",",)
    )
    chunks, _ = await _collect(chat, request)
    assert "," not in "".join(chunks)


async def test_a_reply_cut_by_its_token_budget_ends_with_truncated(local_chat: LlamaCppChat) -> None:
    # issue 10 row 22: the budget running out is a cut, a stop sequence is not
    chat = LlamaCppChat(max_tokens=3)
    events = [e async for e in chat.stream(_chat_request("Write a long story about a lighthouse keeper."))]
    assert events[-1] == Truncated("length")
    assert "".join(e for e in events if isinstance(e, str)).strip()
    request = ModelRequest(
        messages=(Message(role="user", content="Count: 1, 2, 3, 4, 5, 6, 7, 8"),), purpose="chat", stop=(" ", "\n")
    )
    events = [e async for e in LlamaCppChat(max_tokens=40).stream(request)]
    assert not any(isinstance(e, Truncated) for e in events)  # a space or a newline came within 40 tokens


async def test_closing_the_stream_stops_decoding(local_chat: LlamaCppChat) -> None:
    chat = LlamaCppChat(max_tokens=400)
    stream = chat.stream(_chat_request("Write a long story about a lighthouse keeper."))
    usage = Usage()
    seen = 0
    async for event in stream:
        if isinstance(event, Usage):
            usage += event
        else:
            seen += 1
            if seen == 2:
                break
    await stream.aclose()  # type: ignore[attr-defined]
    # aclose waits for the worker to see the stop flag: no decoding thread is left running.
    assert not [t for t in threading.enumerate() if t.name == "llmcompiler-llamacpp" and t.is_alive()]
    assert usage.completion_tokens < 10
    # The context is free again at once.
    chunks, _ = await _collect(LlamaCppChat(max_tokens=3), _chat_request("Hello"))
    assert chunks


async def test_plan_is_grammar_bound_and_continues_the_numbering(local_chat: LlamaCppChat) -> None:
    """A replan request's first_task is 6: the plan starts at 6 and parses (the prompt's words are not read)."""
    user = (
        f"Question: {DEMO_QUESTION}\n\nTasks already run; their results can be used as $N:\n"
        '1. weather("Tokyo")\nObservation: Tokyo: 17 °C\n...\n\n'
        "Write a new plan for what is missing. Number its tasks from 6 on and do not repeat tasks that already "
        "succeeded."
    )
    request = ModelRequest(
        messages=(Message(role="user", content=user),),
        purpose="plan",
        stop=("<END_OF_PLAN>",),
        tools=tuple(t.spec for t in DEMO_TOOLS),
        first_task=6,
    )
    chunks, usage = await _collect(local_chat, request)
    events = parse_plan("".join(chunks), known=range(1, 6))
    assert not [e for e in events if isinstance(e, ParseError)]
    tasks = [e for e in events if isinstance(e, TaskParsed)]
    assert tasks[0].idx == 6
    assert tasks[-1].tool == "join"
    assert {t.tool for t in tasks[:-1]} <= {t.name for t in DEMO_TOOLS}
    assert usage.completion_tokens > 0


async def test_llmcompiler_runs_end_to_end_on_the_demo_tools(local_chat: LlamaCppChat) -> None:
    """A whole run with the local model as planner and joiner.

    A 270M base model does not always plan the right calls or answer correctly, so this
    asserts structure, not the answer: the run finishes with a non-empty answer, the grammar
    kept every plan line parseable (no ``plan_errors``), demo tools really ran, and the
    model's token usage was counted for the planner and the joiner.
    """
    agent = LLMCompiler(llm=LlamaCppChat(), tools=DEMO_TOOLS, max_replans=1)
    result = await agent.arun(DEMO_QUESTION)
    assert result.answer.strip()
    # The extractive joiner: the answer is the last task's computed result alone, or every
    # result verbatim after its task's label.
    last_round = [t for t in result.tasks if t.tool != "join" and t.round == result.rounds]
    if not (last_round[-1].deps and result.answer == str(last_round[-1].result)):
        for task in last_round:
            said = str(task.result) if task.error is None else "failed: "
            assert f": {said}" in result.answer, result.answer
    assert result.plan_errors == []
    ran = [t for t in result.tasks if t.tool != "join" and t.start is not None]
    assert ran
    assert {t.tool for t in ran} <= {t.name for t in DEMO_TOOLS}
    assert result.usage.calls >= 2
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0


# --------------------------------------------------------------------------- llama.cpp's server


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    """``python -m llama_cpp.server`` on a free loopback port; yields its base URL, killed at teardown."""
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        default_model_path(),
        "--model_alias",
        "gemma-3-270m",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "1024",
        # The 270M base model has no chat tuning: under the GGUF's own Gemma chat template
        # (llama-cpp-python 0.3.36) it ends its turn at once with no text. A plain template makes it
        # write, which is all this wire test needs.
        "--chat_format",
        "chatml",
        "--n_threads",
        str(os.cpu_count() or 1),
    ]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield _wait_ready(proc, f"http://127.0.0.1:{port}/v1", log)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(proc: subprocess.Popen[bytes], base_url: str, log: Any) -> str:
    """Poll ``/models`` until the server answers (it has loaded the model), or fail."""
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            log.seek(0)
            pytest.fail(f"llama_cpp.server exited with {proc.returncode}: {log.read()[-2000:]!r}")
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
                if response.status == 200:
                    return base_url
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            pytest.fail("llama_cpp.server did not answer within 90 s")
        time.sleep(0.2)


async def test_openai_chat_streams_from_the_llama_cpp_server(llama_server: str) -> None:
    llm = OpenAIChat("gemma-3-270m", base_url=llama_server, max_retries=0, timeout=60, max_tokens=12, temperature=0)
    request = _chat_request("What is the capital of France?")
    chunks: list[str] = []
    usage = Usage()
    async with asyncio.timeout(60):
        async for event in llm.stream(request):
            if isinstance(event, str):
                chunks.append(event)
            elif isinstance(event, Usage):
                usage += event
    assert "".join(chunks).strip()
    assert llm.model_name == "openai-compatible:gemma-3-270m"
    # llama-cpp-python's server ignores stream_options.include_usage (no usage chunk when streaming),
    # so the adapter can only count the call.
    assert usage.calls == 1


async def test_a_missing_model_file_is_a_model_error(tmp_path: Any) -> None:
    chat = LlamaCppChat(str(tmp_path / "missing.gguf"))
    assert chat.model_name == "local:missing"
    with pytest.raises(ModelError, match="no model file"):
        await _collect(chat, _chat_request("Hello"))


# --------------------------------------------------------------------------- the prompt cache


async def test_a_new_process_reads_the_evaluated_examples_from_the_prompt_cache(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh context (as in a new process) evaluates only what follows the few-shot examples
    once they are cached; the reply is the same; a damaged cache file is replaced, not trusted."""
    from llmcompiler.models import _llamacpp

    monkeypatch.setenv("LLMCOMPILER_CACHE", str(tmp_path))
    request = ModelRequest(
        messages=(Message(role="user", content=f"Question: {DEMO_QUESTION}"),),
        purpose="plan",
        tools=tuple(t.spec for t in DEMO_TOOLS),
        question=DEMO_QUESTION,
        stop=("<END_OF_PLAN>",),
    )
    evaluated: list[int] = []

    async def fresh_reply(n_ctx: int) -> str:
        chat = LlamaCppChat(n_ctx=n_ctx, max_tokens=24)
        llm = await asyncio.to_thread(chat.llama, "plan")
        real_eval = llm.eval
        evaluated.clear()

        def counting_eval(tokens: Any) -> None:
            evaluated.append(len(tokens))
            real_eval(tokens)

        llm.eval = counting_eval  # type: ignore[method-assign]
        try:
            chunks, _ = await _collect(chat, request)
        finally:
            llm.eval = real_eval  # type: ignore[method-assign]
            loaded = chat._loaded()
            await asyncio.to_thread(loaded.close)
            _llamacpp._LOADED.pop((loaded.path, n_ctx, chat.n_threads), None)
        return "".join(chunks)

    first = await fresh_reply(3000)
    saved = list((tmp_path / "kv").glob("*.state"))
    assert len(saved) == 1
    whole_prompt = evaluated[0] + evaluated[1]  # the examples, then the rest
    second = await fresh_reply(3000)
    assert second == first
    assert evaluated[0] < whole_prompt - 500  # the examples came from the file
    saved[0].write_bytes(b"not a llama.cpp state file")
    third = await fresh_reply(3000)
    assert third == first
    assert evaluated[0] > 500  # the examples were evaluated again...
    assert saved[0].stat().st_size > 1_000_000  # ...and saved again
