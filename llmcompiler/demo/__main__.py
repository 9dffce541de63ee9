"""``python -m llmcompiler.demo``: answer a question with the demo tools, showing the run as it happens.

Until the local model lands, the planner and joiner are a scripted test model: the plan is
fixed, and the answer is composed from the real tool results.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Sequence

from rich.console import Console

from llmcompiler import LLMCompiler, Message, RunEvent
from llmcompiler._events import TaskFinished, TaskStarted
from llmcompiler._plan import TaskParsed
from llmcompiler.demo import DEMO_TOOLS
from llmcompiler.testing import FunctionLLM

QUESTION = "What is the weather and the local time in Tokyo and in Oslo?"
PLAN = """Thought: Weather and time are independent lookups for each city.
1. weather("Tokyo")
2. weather("Oslo")
3. local_time("Tokyo")
4. local_time("Oslo")
5. join()
<END_OF_PLAN>"""


def scripted_reply(messages: Sequence[Message], purpose: str) -> str:
    """The scripted model: a fixed plan, and an answer that quotes the observations."""
    if purpose == "plan":
        return PLAN
    observations = re.findall(r"^Observation: (.*)$", messages[-1].content, flags=re.MULTILINE)
    return "Thought: Every lookup succeeded.\nAction: Finish(" + "; ".join(observations) + ")"


def main(argv: Sequence[str] = ()) -> int:
    """Run the demo question (or the one given) and print what happens."""
    question = " ".join(argv) or QUESTION
    console = Console(highlight=False)
    t0 = time.monotonic()

    def show(event: RunEvent) -> None:
        at = f"[dim]{time.monotonic() - t0:5.2f}s[/]"
        if isinstance(event, TaskStarted):
            console.print(f"{at} [yellow]start[/]  {event.idx}. {event.tool}")
        elif isinstance(event, TaskFinished) and event.record.tool != "join":
            rec = event.record
            state = "[green]done[/] " if rec.ok else "[red]fail[/] "
            console.print(f"{at} {state}  {rec.idx}. {rec.tool} → {rec.result if rec.ok else rec.error}")
        elif isinstance(event, TaskParsed) and event.tool != "join":
            console.print(f"{at} [cyan]plan[/]   {event.line}")

    llm = FunctionLLM(scripted_reply, ttft=0.2, token_delay=0.01, name="scripted")
    agent = LLMCompiler(llm=llm, tools=DEMO_TOOLS, on_event=show)
    console.print(f"[bold]Question:[/] {question}")
    console.print("[dim]model: scripted test model (fixed plan; the local model comes with the models issue)[/]")
    result = agent.run(question)
    console.print(f"[bold]Answer:[/] {result.answer}")
    console.print(
        f"[dim]total {result.total_s:.2f}s; the same tool calls one after another: {result.sequential_s:.2f}s; "
        f"tokens {result.usage.prompt_tokens} in / {result.usage.completion_tokens} out (estimated)[/]"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
