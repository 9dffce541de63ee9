"""Other planning strategies built on the llmcompiler engine (ReAct, native parallel tool calling).

They are the baselines LLMCompiler is measured against, built on the same engine: the same
tools, models, executor limits, ``RunResult`` and ``TaskRecord``s, and the same interface,
``await agent.arun(question) -> RunResult``, so benchmarks and users swap them freely.

``planners`` is written on ``llmcompiler``'s public API only (``llmcompiler.strategy``
and the names ``llmcompiler`` exports), as a strategy outside this repository would be;
``llmcompiler`` never imports ``planners``.
"""

from planners._base import Agent, TurnLimitExceeded
from planners._parallel import DEFAULT_SYSTEM_PROMPT, ParallelToolCallAgent
from planners._react import ReActAgent, ReActStep, parse_react_reply

__all__ = [
    "Agent",
    "ReActAgent",
    "ParallelToolCallAgent",
    "TurnLimitExceeded",
    "ReActStep",
    "parse_react_reply",
    "DEFAULT_SYSTEM_PROMPT",
]
