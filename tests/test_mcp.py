"""Tools from MCP servers (``llmcompiler.mcp``), against real servers of the official SDK.

The server is ``tests/mcp_servers/tools_server.py`` (the SDK's ``MCPServer``): run as a
subprocess over stdio, as a subprocess serving Streamable HTTP on 127.0.0.1 (an ephemeral port;
it exits when its stdin closes), or in process for the tests of names and options. Overlap is
proven by a barrier in the server (a call returns only once N calls have arrived), never by
timing; the timeouts are generous for a loaded two-core machine.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmcompiler import LLMCompiler, RunResult, ToolLimits, UserError
from llmcompiler._tools import Tool
from llmcompiler.mcp import MCPServerError, MCPToolError, mcp_tools, plan_name
from llmcompiler.testing import ScriptedLLM
from tests.mcp_servers.tools_server import build

SERVER = Path(__file__).parent / "mcp_servers" / "tools_server.py"
RAW_SERVER = Path(__file__).parent / "mcp_servers" / "raw_server.py"
CONNECT = 90.0  # seconds a server subprocess may take to start on a loaded machine
BOUND = 90.0  # a run that does not end within this has hung


def command(*extra: str) -> str:
    return shlex.join([sys.executable, str(SERVER), *extra])


@pytest.fixture
def http_url() -> Iterator[str]:
    """A Streamable HTTP server in a subprocess; it exits when its stdin closes."""
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--http"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        line = proc.stdout.readline()  # the server binds first, then says its port
        assert line.startswith("PORT "), f"the server did not start: {line!r}"
        yield f"http://127.0.0.1:{int(line.split()[1])}/mcp"
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def by_name(tools: list[Tool]) -> dict[str, Tool]:
    return {t.name: t for t in tools}


async def run_plan(tools: list[Tool], plan: str, **options: Any) -> RunResult:
    llm = ScriptedLLM([plan, "Action: Finish(done)"])
    agent = LLMCompiler(llm=llm, tools=tools, max_replans=0, **options)
    async with asyncio.timeout(BOUND):
        result = await agent.arun("question")
    llm.assert_complete()
    return result


def own_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if not t.name.startswith("asyncio_")}


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# ---------------------------------------------------------------- a plan's calls over the transports


async def test_over_stdio_a_plans_calls_overlap_and_a_failing_tool_fails_alone() -> None:
    async with mcp_tools(command(), connect_timeout=CONNECT) as tools:
        result = await run_plan(
            tools,
            "1. barrier('plan', 3, 60)\n2. barrier('plan', 3, 60)\n3. barrier('plan', 3, 60)\n"
            "4. point(1, 2)\n5. echo('plain text')\n6. fail('no such city')\n7. join()",
        )
    tasks = {t.idx: t for t in result.tasks}
    # The barrier lets a call through only once all three arrived: the calls overlapped.
    assert [tasks[i].result for i in (1, 2, 3)] == [{"result": "plan passed"}] * 3
    assert tasks[4].result == {"x": 1, "y": 2}  # structured content
    assert tasks[5].result == "plain text"  # no structured content: the text
    assert tasks[6].result is None
    assert tasks[6].error is not None
    assert "fail raised MCPToolError" in tasks[6].error and "no such city" in tasks[6].error
    assert all(tasks[i].error is None for i in (1, 2, 3, 4, 5))
    assert result.answer == "done"


async def test_over_streamable_http_the_same(http_url: str) -> None:
    async with mcp_tools(http_url, connect_timeout=CONNECT) as tools:
        result = await run_plan(
            tools,
            "1. barrier('h', 2, 60)\n2. barrier('h', 2, 60)\n3. point(3, 4)\n4. fail('bad input')\n5. join()",
        )
    tasks = {t.idx: t for t in result.tasks}
    assert [tasks[i].result for i in (1, 2)] == [{"result": "h passed"}] * 2
    assert tasks[3].result == {"x": 3, "y": 4}
    assert tasks[4].error is not None and "bad input" in tasks[4].error


async def test_stdio_and_http_servers_together_with_prefix(http_url: str) -> None:
    async with mcp_tools(command("--name", "local"), http_url, prefix=True, connect_timeout=CONNECT) as tools:
        names = set(by_name(tools))
        assert {"local_barrier", "tools_barrier", "local_get_weather", "tools_fs_delete_file"} <= names
        result = await run_plan(
            tools,
            "1. local_barrier('a', 2, 60)\n2. tools_barrier('b', 2, 60)\n"
            "3. local_barrier('a', 2, 60)\n4. tools_barrier('b', 2, 60)\n5. local_get_weather('Rome')\n6. join()",
        )
    tasks = {t.idx: t for t in result.tasks}
    assert [tasks[i].error for i in range(1, 6)] == [None] * 5
    assert tasks[5].result == {"result": "sunny in Rome"}  # called by its MCP name, get-weather


# ---------------------------------------------------------------- a server that dies, a call that hangs


async def test_a_server_that_dies_mid_run_fails_its_calls_and_nothing_hangs() -> None:
    async with mcp_tools(command(), connect_timeout=CONNECT) as tools:
        result = await run_plan(tools, "1. echo('slow', 120)\n2. die()\n3. echo($2)\n4. join()")
        tasks = {t.idx: t for t in result.tasks}
        for idx in (1, 2):  # the call in flight and the one that killed it
            error = tasks[idx].error
            assert error is not None and "MCPServerError" in error and "is gone" in error, error
            assert "tools_server.py" in error  # the server is named
        assert tasks[3].error is not None  # given up: its input failed
        # A later call fails at once with the same clear error.
        with pytest.raises(MCPServerError, match="'tools'"):
            async with asyncio.timeout(BOUND):
                await by_name(tools)["echo"].ainvoke({"text": "later"})


async def test_a_server_over_http_that_dies_fails_its_calls(http_url: str) -> None:
    async with mcp_tools(http_url, connect_timeout=CONNECT) as tools:
        result = await run_plan(tools, "1. echo('slow', 120)\n2. die()\n3. join()")
        for task in result.tasks[:2]:
            assert task.error is not None and "is gone" in task.error and http_url in task.error
        with pytest.raises(MCPServerError):
            async with asyncio.timeout(BOUND):
                await by_name(tools)["point"].ainvoke({"x": 1, "y": 1})


async def test_a_call_past_its_timeout_fails_alone_and_leaving_stops_the_server() -> None:
    threads = own_threads()
    async with mcp_tools(command(), connect_timeout=CONNECT) as tools:
        result = await run_plan(
            tools, "1. echo('stuck', 600)\n2. echo('fine')\n3. join()", tool_limits={"echo": ToolLimits(timeout=2)}
        )
        assert result.tasks[0].error == "echo timed out after 2s"
        assert result.tasks[1].result == "fine"
        # The session outlives a cancelled call.
        pid = await by_name(tools)["pid"].ainvoke({})
        assert isinstance(pid, dict)
        pid = pid["result"]
        assert not process_gone(pid)
    assert process_gone(pid)  # stopped and reaped when the async with was left
    assert own_threads() <= threads  # no thread left behind (the loop's default executor ends with the loop)


# ---------------------------------------------------------------- a server that sends what it should not


async def test_bytes_that_are_not_utf8_on_stdout_are_replaced_and_the_session_keeps_answering() -> None:
    # With the SDK's default ("strict"), one such byte stops its stdout reader and every call hangs.
    async with mcp_tools(shlex.join([sys.executable, str(RAW_SERVER)]), connect_timeout=CONNECT) as tools:
        say = by_name(tools)["say"]
        async with asyncio.timeout(BOUND):
            assert await say.ainvoke({"what": "latin1"}) == "caf\ufffd"  # é in Latin-1, inside an answer
            assert await say.ainvoke({"what": "stray"}) == "ok"  # a line of them before the answer
            assert await say.ainvoke({"what": "still here"}) == "still here"


async def test_a_result_that_is_not_valid_mcp_fails_its_call_alone_in_one_line() -> None:
    async with mcp_tools(shlex.join([sys.executable, str(RAW_SERVER)]), connect_timeout=CONNECT) as tools:
        result = await run_plan(tools, "1. say('hologram')\n2. say('fine')\n3. join()")
    bad, good = result.tasks[0], result.tasks[1]
    assert bad.error is not None and "MCPToolError" in bad.error, bad.error
    assert "'raw'" in bad.error and "not a valid MCP tool result (at content.1)" in bad.error
    assert "\n" not in bad.error and "hologram" not in bad.error  # not pydantic's page per union member
    assert good.result == "fine" and good.error is None


# ---------------------------------------------------------------- servers that cannot connect


async def test_a_command_that_does_not_exist_is_a_user_error_naming_it_without_its_key() -> None:
    key = "sk-proj-" + "a1B2c3D4e5F6g7H8i9J0" * 2
    with pytest.raises(UserError, match=r"no-such-mcp-server --api-key .*could not connect") as info:
        async with mcp_tools(f"/nonexistent/no-such-mcp-server --api-key {key}", connect_timeout=CONNECT):
            pass
    assert key not in str(info.value)


async def test_a_server_that_exits_at_start_is_named_with_its_stderr() -> None:
    crash = shlex.join(
        [sys.executable, "-c", "import sys; sys.stderr.write('ModuleNotFoundError: weather'); sys.exit(1)"]
    )
    with pytest.raises(UserError) as info:
        async with mcp_tools(crash, connect_timeout=CONNECT):
            pass
    assert "could not connect" in str(info.value) and "ModuleNotFoundError: weather" in str(info.value)
    assert not isinstance(info.value, BaseExceptionGroup)


async def test_a_server_that_never_answers_times_out_and_is_stopped(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    silent = shlex.join(
        [sys.executable, "-c", f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(300)"]
    )
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(BOUND):
        with pytest.raises(UserError, match=r"did not connect within 3s"):
            async with mcp_tools(silent, connect_timeout=3):
                pass
    pid = int(await loop.run_in_executor(None, pidfile.read_text))
    assert process_gone(pid)


async def test_an_unreachable_url_is_a_user_error_naming_it() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    url = f"http://user:secret@127.0.0.1:{port}/mcp?token=abc"
    async with asyncio.timeout(BOUND):
        with pytest.raises(UserError) as info:
            async with mcp_tools(url, connect_timeout=30):
                pass
    message = str(info.value)
    assert f"http://127.0.0.1:{port}/mcp" in message
    assert "secret" not in message and "token" not in message


async def test_without_the_extra_the_error_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mcp", None)  # import mcp raises ImportError
    with pytest.raises(UserError, match=r"pip install 'llmcompiler\[mcp\]'"):
        async with mcp_tools("python server.py"):
            pass


# ---------------------------------------------------------------- names and options (servers in process)


async def test_names_are_mapped_and_calls_use_the_servers_names() -> None:
    async with mcp_tools(build("tools")) as tools:
        named = by_name(tools)
        assert {"get_weather", "fs_delete_file", "echo", "point"} <= set(named)
        assert await named["get_weather"].ainvoke({"city": "Oslo"}) == {"result": "sunny in Oslo"}
        assert await named["fs_delete_file"].ainvoke({"path": "/tmp/x"}) == {"result": "deleted /tmp/x"}
        assert named["point"].returns is not None and set(named["point"].returns["properties"]) == {"x", "y"}
        assert named["echo"].returns is None  # text only
        assert "Echo a text" in named["echo"].description
        with pytest.raises(MCPToolError, match="boom"):
            await named["fail"].ainvoke({"message": "boom"})
    assert plan_name("get-weather") == "get_weather"
    assert plan_name("fs/read file") == "fs_read_file"
    assert plan_name("2fa") == "_2fa"
    assert plan_name("a..b") == "a__b"
    assert plan_name("spotify.play") == "spotify.play"
    assert plan_name("join") == "join_"
    assert plan_name("météo") == "meteo"  # accents dropped
    assert (plan_name("天气"), plan_name("新闻")) == ("u5929u6c14", "u65b0u95fb")  # two names stay two


async def test_two_names_of_one_server_that_map_to_one_are_an_error() -> None:
    server = build("tools")
    server.tool(name="get_weather")(lambda city: city)
    with pytest.raises(UserError, match=r"'tools'.*'get-weather' and 'get_weather'.*'get_weather'"):
        async with mcp_tools(server):
            pass


async def test_a_name_offered_by_two_servers_is_an_error_naming_both_unless_prefixed() -> None:
    with pytest.raises(UserError) as info:
        async with mcp_tools(build("alpha"), build("beta")):
            pass
    message = str(info.value)
    assert "'barrier'" in message and "'alpha'" in message and "'beta'" in message and "prefix=True" in message
    async with mcp_tools(build("alpha"), build("beta"), prefix=True) as tools:
        named = by_name(tools)
        assert {"alpha_echo", "beta_echo", "alpha_get_weather", "beta_fs_delete_file"} <= set(named)
        assert await named["beta_echo"].ainvoke({"text": "hi"}) == "hi"
    with pytest.raises(UserError, match="two MCP servers"):  # prefixed, but both are "alpha"
        async with mcp_tools(build("alpha"), build("alpha"), prefix=True):
            pass


async def test_annotations_are_trusted_only_when_asked() -> None:
    async with mcp_tools(build("tools")) as tools:
        assert not any(t.speculative for t in tools)  # the default: hints are not trusted
    async with mcp_tools(build("tools"), speculative="read_only") as tools:
        assert {t.name for t in tools if t.speculative} == {"get_weather"}
    async with mcp_tools(build("tools"), speculative=True) as tools:
        assert all(t.speculative for t in tools)
    async with mcp_tools(build("tools"), speculative={"echo", "point"}) as tools:
        assert {t.name for t in tools if t.speculative} == {"echo", "point"}
    with pytest.raises(UserError, match="'nope'"):
        async with mcp_tools(build("tools"), speculative={"nope"}):
            pass
    with pytest.raises(UserError, match="speculative must be"):
        async with mcp_tools(build("tools"), speculative="yes"):
            pass


async def test_an_error_in_the_body_comes_out_as_itself() -> None:
    with pytest.raises(ValueError, match="mine") as info:
        async with mcp_tools(build("tools")):
            raise ValueError("mine")
    assert type(info.value) is ValueError


async def test_no_server_a_list_of_servers_or_a_bad_url_is_a_user_error() -> None:
    with pytest.raises(UserError, match="at least one server"):
        async with mcp_tools():
            pass
    with pytest.raises(UserError, match=r"mcp_tools\(\*servers\)"):
        async with mcp_tools(["python a.py", "python b.py"]):
            pass
    with pytest.raises(UserError, match="bad port"):
        async with mcp_tools("http://127.0.0.1:port/mcp"):
            pass
