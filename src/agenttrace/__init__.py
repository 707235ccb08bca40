"""AgentTrace: OpenTelemetry tracing for tool-using LLM agents.

Decorate an agent (`@agent`), its model calls (`@llm`) and its tools (`@tool`), call
`configure()`, and every run becomes an `invoke_agent` span with `chat` and `execute_tool` children
carrying GenAI-convention attributes and per-tool OS telemetry.
"""

from opentelemetry.exporter.agenttrace import semconv

from agenttrace._configure import build_resource, configure, shutdown
from agenttrace._context import ContextThreadPoolExecutor, propagate
from agenttrace._decorators import agent, llm, tool
from agenttrace._genai import StepRecord, ToolCallRecord
from agenttrace._invocations import (
    AgentRun,
    LLMCall,
    ToolCall,
    agent_run,
    current_agent_run,
    current_invocation,
    current_tool_call,
    llm_call,
    set_run_metadata,
    tool_call,
    using_call_id,
)
from agenttrace._telemetry import Telemetry, maxrss_to_bytes
from agenttrace.integrations.openai import instrument_openai, uninstrument_openai
from agenttrace.tools.subprocess import Popen, run
from agenttrace.version import __version__


def load(paths, *, progress=None):  # type: ignore[no-untyped-def]
    """AgentTrace files (JSONL or Parquet, ours or the release's) as pandas DataFrames.

    Returns a `Dataset` with `traces` (one row per run), `spans` (one per tool call, telemetry
    flattened) and `steps` (one per model step). pandas is imported only when this is called.
    """
    from agenttrace.analysis.dataset import load as load_files

    return load_files(paths, progress=progress)


__all__ = [
    "AgentRun",
    "ContextThreadPoolExecutor",
    "LLMCall",
    "Popen",
    "StepRecord",
    "Telemetry",
    "ToolCall",
    "ToolCallRecord",
    "__version__",
    "agent",
    "agent_run",
    "build_resource",
    "configure",
    "current_agent_run",
    "current_invocation",
    "current_tool_call",
    "instrument_openai",
    "llm",
    "llm_call",
    "load",
    "maxrss_to_bytes",
    "propagate",
    "run",
    "semconv",
    "set_run_metadata",
    "shutdown",
    "tool",
    "tool_call",
    "uninstrument_openai",
    "using_call_id",
]
