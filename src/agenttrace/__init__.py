"""AgentTrace: OpenTelemetry tracing for tool-using LLM agents.

Decorate an agent (`@agent`), its model calls (`@llm`) and its tools (`@tool`), call
`configure()`, and every run becomes an `invoke_agent` span with `chat` and `execute_tool` children
carrying GenAI-convention attributes and per-tool OS telemetry.

The public surface, one way to do each thing:

- Setup: `configure(...)` (exporters, the AgentTrace file, redaction; `tracer_provider=` for a
  provider of your own) and `shutdown()`.
- Instrumenting: the decorators `agent`, `llm`, `tool`, or, for code that is not one function,
  the context managers `agent_run`, `llm_call`, `tool_call`.
- Inside a run: `set_run_metadata`, `using_call_id`, `current_agent_run`, `current_tool_call`,
  `current_invocation`.
- Threads: `ContextThreadPoolExecutor` and `propagate` carry the current run into workers.
- Integrations: `instrument_openai` / `uninstrument_openai`.
- Files: `load` (pandas DataFrames from AgentTrace files; needs the `analysis` extra).
- Namespaces: `agenttrace.tools` (`tools.run`, `tools.Popen`: subprocesses whose own usage is
  charged to the tool call), `agenttrace.semconv` (every attribute key), and `agenttrace.types`
  (the classes behind the functions above, for annotations).

Names this module used to export (`AgentRun`, `run`, `Popen`, `build_resource`, ...) still work
for one release, with a DeprecationWarning naming the replacement.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from agenttrace import semconv, tools
from agenttrace import types as types  # a namespace, not for `import *` (it shadows stdlib's)
from agenttrace._configure import configure, shutdown
from agenttrace._context import ContextThreadPoolExecutor, propagate
from agenttrace._decorators import agent, llm, tool
from agenttrace._invocations import (
    agent_run,
    current_agent_run,
    current_invocation,
    current_tool_call,
    llm_call,
    set_run_metadata,
    tool_call,
    using_call_id,
)
from agenttrace.integrations.openai import instrument_openai, uninstrument_openai
from agenttrace.version import __version__

if TYPE_CHECKING:  # pandas is an extra: imported by `load` only when it runs
    from agenttrace.analysis.dataset import Dataset


def load(
    paths: Iterable[str | os.PathLike[str]], *, progress: Callable[[int], None] | None = None
) -> Dataset:
    """AgentTrace files (JSONL or Parquet, ours or the release's) as pandas DataFrames.

    Returns a `Dataset` with `traces` (one row per run), `spans` (one per tool call, telemetry
    flattened) and `steps` (one per model step). pandas is imported only when this is called.
    """
    from agenttrace.analysis.dataset import load as load_files

    return load_files(paths, progress=progress)


__all__ = [
    "ContextThreadPoolExecutor",
    "__version__",
    "agent",
    "agent_run",
    "configure",
    "current_agent_run",
    "current_invocation",
    "current_tool_call",
    "instrument_openai",
    "llm",
    "llm_call",
    "load",
    "propagate",
    "semconv",
    "set_run_metadata",
    "shutdown",
    "tool",
    "tool_call",
    "tools",
    "uninstrument_openai",
    "using_call_id",
]

# Deprecated top-level names (kept for one release): name -> (module, attribute, what to use).
_DEPRECATED: dict[str, tuple[str, str, str]] = {
    "AgentRun": ("agenttrace.types", "AgentRun", "agenttrace.types.AgentRun"),
    "LLMCall": ("agenttrace.types", "LLMCall", "agenttrace.types.LLMCall"),
    "ToolCall": ("agenttrace.types", "ToolCall", "agenttrace.types.ToolCall"),
    "StepRecord": ("agenttrace.types", "StepRecord", "agenttrace.types.StepRecord"),
    "ToolCallRecord": ("agenttrace.types", "ToolCallRecord", "agenttrace.types.ToolCallRecord"),
    "run": ("agenttrace.tools", "run", "agenttrace.tools.run (a subprocess, not an agent run)"),
    "Popen": ("agenttrace.tools", "Popen", "agenttrace.tools.Popen"),
    "build_resource": (
        "agenttrace._configure",
        "build_resource",
        "configure(service_name=..., service_version=..., resource_attributes=...)",
    ),
    "Telemetry": ("agenttrace._telemetry", "Telemetry", "nothing: it is internal"),
    "maxrss_to_bytes": ("agenttrace._telemetry", "maxrss_to_bytes", "nothing: it is internal"),
}


def __getattr__(name: str) -> Any:
    """PEP 562: the deprecated names, resolved on use with a warning, so old code keeps working
    for one release and says what to change, while `__all__` and the docs show only one way."""
    entry = _DEPRECATED.get(name)
    if entry is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module_name, attribute, replacement = entry
    warnings.warn(
        f"agenttrace.{name} is deprecated and goes in the next release; use {replacement}",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(module_name), attribute)
