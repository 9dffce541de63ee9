"""llmcompiler: parallel function calling with LLMs.

A planner model streams a numbered plan; the plan is parsed as it arrives into a DAG of tool
calls; each call starts the moment its dependencies finish; a joiner model reads the results
and answers, or asks for a new plan.

Strategies of your own (and the baselines in ``planners``) are written with
``llmcompiler.strategy`` and the names exported here.

Structured extraction (``extract``, ``Extractor``) runs many pydantic schemas over one text,
long texts in chunks, as tasks of the same executor, and merges the items into one result.
"""

from llmcompiler._agent import LLMCompiler
from llmcompiler._chunks import TextChunk
from llmcompiler._errors import (
    ArgumentError,
    JoinParseError,
    LLMCompilerError,
    ModelError,
    ReplanLimitExceeded,
    RunError,
    UserError,
)
from llmcompiler._events import (
    AnswerChunk,
    EventHandler,
    JoinerDecided,
    PlanChunk,
    RoundStarted,
    RunEvent,
    SpeculationEnded,
    SpeculationStarted,
    TaskFinished,
    TaskStarted,
)
from llmcompiler._executor import Executor, RoundOutcome, execute_plan
from llmcompiler._extract import (
    ExtractionError,
    ExtractionResult,
    ExtractionTimings,
    Extractor,
    Provenance,
    extract,
    extract_sync,
)
from llmcompiler._joiner import Finish, JoinDecision, Replan, parse_join_reply
from llmcompiler._limits import Limits, ToolLimits
from llmcompiler._literals import Ref, Template
from llmcompiler._live import LiveView
from llmcompiler._plan import (
    END_OF_PLAN,
    JOIN,
    ParseError,
    PlanEnded,
    PlanEvent,
    PlanParser,
    TaskParsed,
    ThoughtParsed,
    parse_plan,
)
from llmcompiler._records import (
    RoundTimings,
    RunResult,
    SpeculationSummary,
    SpeculativeCall,
    SpeculativeHit,
    SpeculativeState,
    TaskRecord,
    TaskState,
)
from llmcompiler._timeline import render_timeline, write_timeline
from llmcompiler._tools import Tool, tool
from llmcompiler._trace import trace_dict, write_trace
from llmcompiler.models import ChatModel, Message, ModelRequest, ToolCall, ToolSpec, Truncated, Usage

__version__ = "0.1.0"

__all__ = [
    # agent and results
    "LLMCompiler",
    "RunResult",
    "TaskRecord",
    "TaskState",
    "RoundTimings",
    # speculative execution
    "SpeculationSummary",
    "SpeculativeCall",
    "SpeculativeHit",
    "SpeculativeState",
    # tools
    "tool",
    "Tool",
    "ToolLimits",
    # models
    "ChatModel",
    "Message",
    "ModelRequest",
    "ToolCall",
    "ToolSpec",
    "Truncated",
    "Usage",
    # plan language
    "PlanParser",
    "parse_plan",
    "PlanEvent",
    "TaskParsed",
    "ThoughtParsed",
    "ParseError",
    "PlanEnded",
    "Ref",
    "Template",
    "END_OF_PLAN",
    "JOIN",
    # executor
    "execute_plan",
    "Executor",
    "Limits",
    "RoundOutcome",
    # joiner
    "parse_join_reply",
    "JoinDecision",
    "Finish",
    "Replan",
    # events
    "RunEvent",
    "EventHandler",
    "RoundStarted",
    "PlanChunk",
    "TaskStarted",
    "TaskFinished",
    "JoinerDecided",
    "AnswerChunk",
    "SpeculationStarted",
    "SpeculationEnded",
    # structured extraction
    "extract",
    "extract_sync",
    "Extractor",
    "ExtractionResult",
    "ExtractionError",
    "ExtractionTimings",
    "Provenance",
    "TextChunk",
    # traces, pictures, live view
    "trace_dict",
    "write_trace",
    "render_timeline",
    "write_timeline",
    "LiveView",
    # errors
    "LLMCompilerError",
    "UserError",
    "ArgumentError",
    "RunError",
    "ModelError",
    "JoinParseError",
    "ReplanLimitExceeded",
]
