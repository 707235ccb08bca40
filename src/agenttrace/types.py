"""The classes behind agenttrace's functions, for type annotations and `isinstance`.

You get these objects from the documented entry points rather than by constructing them:
`agent_run(...)` and `current_agent_run()` give an `AgentRun`, `llm_call(...)` an `LLMCall`,
`tool_call(...)` and `current_tool_call()` a `ToolCall`. `StepRecord` and `ToolCallRecord` describe
what one model generation produced; an `@llm` function may return a `StepRecord` to record it.
"""

from agenttrace._genai import StepRecord, ToolCallRecord
from agenttrace._invocations import AgentRun, LLMCall, ToolCall

__all__ = ["AgentRun", "LLMCall", "StepRecord", "ToolCall", "ToolCallRecord"]
