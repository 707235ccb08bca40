"""Every span and resource attribute key AgentTrace reads or writes, defined once.

The GenAI keys follow the current OpenTelemetry GenAI semantic conventions (status "Development",
maintained in open-telemetry/semantic-conventions-genai): `gen_ai.provider.name` rather than the
deprecated `gen_ai.system`, and `gen_ai.input.messages` / `gen_ai.output.messages` span attributes
rather than the deprecated per-message events. Keys the conventions do not cover live under
`agenttrace.`. The instrumentation (`agenttrace`) and the exporter both import this module, so a
renamed key cannot drift between writer and reader; the instrumentation re-exports it as
`agenttrace.semconv`.

Keys with a stable OpenTelemetry convention (`error.type`, `exception.*`, `server.*`) come from
`opentelemetry-semantic-conventions`. The GenAI keys are spelled out here on purpose: that
package only has them under its private `_incubating` path, every one marked "Deprecated: moved
to the GenAI semantic conventions repository" (0.66b2, the version the SDK pins), and the SDK
pins the package exactly, so importing them would let an SDK upgrade rename the keys a row is
built from. `tests/test_semconv_registry.py` checks each of them against the installed registry
instead, so a rename there fails a test and is taken on deliberately.
"""

from __future__ import annotations

from typing import Final

# `import X as X`: re-exported names, for readers of this module and for type checkers.
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE as ERROR_TYPE
from opentelemetry.semconv.attributes.exception_attributes import (
    EXCEPTION_ESCAPED as EXCEPTION_ESCAPED,
)
from opentelemetry.semconv.attributes.exception_attributes import (
    EXCEPTION_MESSAGE as EXCEPTION_MESSAGE,
)
from opentelemetry.semconv.attributes.exception_attributes import (
    EXCEPTION_STACKTRACE as EXCEPTION_STACKTRACE,
)
from opentelemetry.semconv.attributes.exception_attributes import (
    EXCEPTION_TYPE as EXCEPTION_TYPE,
)
from opentelemetry.semconv.attributes.server_attributes import SERVER_ADDRESS as SERVER_ADDRESS
from opentelemetry.semconv.attributes.server_attributes import SERVER_PORT as SERVER_PORT

# --- GenAI semantic conventions -----------------------------------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_AGENT_NAME: Final = "gen_ai.agent.name"
GEN_AI_AGENT_ID: Final = "gen_ai.agent.id"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_REQUEST_TOP_P: Final = "gen_ai.request.top_p"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_SEED: Final = "gen_ai.request.seed"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_TOOL_TYPE: Final = "gen_ai.tool.type"
GEN_AI_TOOL_DESCRIPTION: Final = "gen_ai.tool.description"
GEN_AI_TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
GEN_AI_TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"
# Deprecated names older GenAI instrumentations still emit (read as fallbacks, never written).
GEN_AI_USAGE_PROMPT_TOKENS: Final = "gen_ai.usage.prompt_tokens"
GEN_AI_USAGE_COMPLETION_TOKENS: Final = "gen_ai.usage.completion_tokens"
GEN_AI_SYSTEM: Final = "gen_ai.system"  # -> gen_ai.provider.name
# Indexed prefixes of the deprecated flat messages (`gen_ai.prompt.{i}.role`,
# `gen_ai.completion.{i}.tool_calls.{j}.name`), as OpenLLMetry wrote them before
# gen_ai.input.messages / gen_ai.output.messages existed.
GEN_AI_PROMPT: Final = "gen_ai.prompt"
GEN_AI_COMPLETION: Final = "gen_ai.completion"

# Well-known values of gen_ai.operation.name and gen_ai.tool.type.
OPERATION_INVOKE_AGENT: Final = "invoke_agent"
OPERATION_CHAT: Final = "chat"
OPERATION_EXECUTE_TOOL: Final = "execute_tool"
TOOL_TYPE_FUNCTION: Final = "function"

# --- Other OpenTelemetry conventions --------------------------------------------------------------
# (ERROR_TYPE, EXCEPTION_* and SERVER_* are imported above.)
# The `exception` span event (Span.record_exception); its attributes are EXCEPTION_*.
EXCEPTION_EVENT: Final = "exception"
# The instrumentation scope of the spans agenttrace itself starts. Part of the contract between the
# two layers: the exporter counts only this scope's spans towards a root's `RUN_SPAN_COUNT`.
INSTRUMENTATION_SCOPE: Final = "agenttrace"
# Not attributes: what a redaction hook is told it is looking at for a span's name and status.
SPAN_NAME: Final = "otel.span.name"
STATUS_DESCRIPTION: Final = "otel.status_description"
HOST_CPU_MODEL_NAME: Final = "host.cpu.model.name"

# --- Foreign conventions, read only (`conventions.py` maps them onto the GenAI keys) ------------
# OpenInference (Arize Phoenix and friends; openinference-semantic-conventions): the span kind,
# and the keys its instrumentations (smolagents, LangChain, ...) record instead of gen_ai.*.
OPENINFERENCE_SPAN_KIND: Final = "openinference.span.kind"
OPENINFERENCE_KIND_AGENT: Final = "AGENT"
OPENINFERENCE_KIND_LLM: Final = "LLM"
OPENINFERENCE_KIND_TOOL: Final = "TOOL"
OPENINFERENCE_INPUT_VALUE: Final = "input.value"
OPENINFERENCE_OUTPUT_VALUE: Final = "output.value"
OPENINFERENCE_LLM_MODEL_NAME: Final = "llm.model_name"
OPENINFERENCE_LLM_PROVIDER: Final = "llm.provider"
OPENINFERENCE_LLM_SYSTEM: Final = "llm.system"
OPENINFERENCE_TOKEN_COUNT_PROMPT: Final = "llm.token_count.prompt"
OPENINFERENCE_TOKEN_COUNT_COMPLETION: Final = "llm.token_count.completion"
OPENINFERENCE_TOKEN_COUNT_REASONING: Final = "llm.token_count.completion_details.reasoning"
OPENINFERENCE_TOOL_NAME: Final = "tool.name"
OPENINFERENCE_TOOL_DESCRIPTION: Final = "tool.description"
# The tool's parameter schema (not the call's arguments: those are in input.value).
OPENINFERENCE_TOOL_PARAMETERS: Final = "tool.parameters"
OPENINFERENCE_AGENT_NAME: Final = "agent.name"
# Indexed messages: `llm.input_messages.{i}.message.role`, then the sub-keys below.
OPENINFERENCE_INPUT_MESSAGES: Final = "llm.input_messages"
OPENINFERENCE_OUTPUT_MESSAGES: Final = "llm.output_messages"
OPENINFERENCE_MESSAGE_ROLE: Final = "message.role"
OPENINFERENCE_MESSAGE_CONTENT: Final = "message.content"
OPENINFERENCE_MESSAGE_CONTENTS: Final = "message.contents"  # .{k}.message_content.type / .text
OPENINFERENCE_CONTENT_TYPE: Final = "message_content.type"
OPENINFERENCE_CONTENT_TEXT: Final = "message_content.text"
OPENINFERENCE_MESSAGE_TOOL_CALLS: Final = "message.tool_calls"  # .{j}.tool_call.*
OPENINFERENCE_TOOL_CALL_ID: Final = "tool_call.id"
OPENINFERENCE_TOOL_CALL_NAME: Final = "tool_call.function.name"
OPENINFERENCE_TOOL_CALL_ARGUMENTS: Final = "tool_call.function.arguments"
# OpenLLMetry / Traceloop (traceloop-sdk decorators, opentelemetry-instrumentation-openai & co.).
TRACELOOP_SPAN_KIND: Final = "traceloop.span.kind"
TRACELOOP_KIND_WORKFLOW: Final = "workflow"
TRACELOOP_KIND_AGENT: Final = "agent"
TRACELOOP_KIND_TOOL: Final = "tool"
TRACELOOP_ENTITY_NAME: Final = "traceloop.entity.name"
TRACELOOP_ENTITY_INPUT: Final = "traceloop.entity.input"  # JSON {"args": [...], "kwargs": {...}}
TRACELOOP_ENTITY_OUTPUT: Final = "traceloop.entity.output"  # JSON
LLM_REQUEST_TYPE: Final = "llm.request.type"  # "chat" / "completion" (before gen_ai.operation.name)
LLM_REQUEST_TYPE_CHAT: Final = "chat"
LLM_REQUEST_TYPE_COMPLETION: Final = "completion"

# --- AgentTrace's own keys ------------------------------------------------------------------------
# Root span: the run's prompt and row metadata (`agenttrace.metadata.<key>` -> metadata[key]).
PROMPT: Final = "agenttrace.prompt"
METADATA_PREFIX: Final = "agenttrace.metadata."
# Structured metadata values (objects, lists) travel as JSON under this prefix instead.
METADATA_JSON_PREFIX: Final = "agenttrace.metadata_json."
# Root span: how many AgentTrace spans the run started below it (so an exporter that only sees
# finished spans knows when the run is whole), and whether the run is nested in another run.
RUN_SPAN_COUNT: Final = "agenttrace.run.span_count"
RUN_NESTED: Final = "agenttrace.run.nested"
# Model step.
STEP_NUMBER: Final = "agenttrace.step.number"
# Tool call: the release's repr form of the arguments, the exit code, early generator close.
TOOL_INPUT_REPR: Final = "agenttrace.tool.input"
# Absent `agenttrace.tool.input`, the release's form is rebuilt at export from the arguments
# JSON (which the instrumentation leaves out only when that gives the same text): this many of
# the arguments, in order, were passed positionally (`args=(...)`), the rest by keyword.
TOOL_POSITIONAL_ARGS: Final = "agenttrace.tool.positional_args"
TOOL_EXIT_CODE: Final = "agenttrace.tool.exit_code"
GENERATOR_CLOSED_EARLY: Final = "agenttrace.generator.closed_early"
# Per-tool telemetry (schema 0.3.0 `telemetry` object) and the method that measured it.
TELEMETRY_USER_TIME_S: Final = "agenttrace.telemetry.user_time_s"
TELEMETRY_SYSTEM_TIME_S: Final = "agenttrace.telemetry.system_time_s"
TELEMETRY_MAX_RSS_BYTES: Final = "agenttrace.telemetry.max_rss_bytes"
TELEMETRY_READ_BYTES: Final = "agenttrace.telemetry.read_bytes"
TELEMETRY_WRITE_BYTES: Final = "agenttrace.telemetry.write_bytes"
TELEMETRY_METHOD: Final = "agenttrace.telemetry.method"
# How the peak RSS was scoped: "child" (the peak of the tool's own child processes),
# "child-bound" (an upper bound on it: Linux counts the parent's size before exec into a child's
# peak, and this child never grew past that), "call" (the process's peak since this call started),
# "overlap" (since the start of the earliest of several calls in flight at once), or "process"
# (the process's lifetime peak: no reset on this OS).
TELEMETRY_PEAK_SCOPE: Final = "agenttrace.telemetry.peak_scope"
# Spans rebuilt from an existing row (`agenttrace send`, replay): the row's metadata verbatim, and
# the fields of the row (or of one span / step entry) that the span alone would not reproduce
# exactly, as JSON; `"__absent__"` lists keys the entry did not have. Converting such spans back
# gives the original row, byte for byte.
SOURCE_METADATA: Final = "agenttrace.source.metadata"
SOURCE_OVERRIDES: Final = "agenttrace.source.overrides"
# Content capture and truncation bookkeeping.
CONTENT_CAPTURED: Final = "agenttrace.content.captured"
# Row metadata key (an extension) of a row built for GenAI spans that had no agent span above
# them: the row's root is a stand-in, not a span anyone recorded.
SYNTHETIC_ROOT: Final = "synthetic_root"

# Resource attributes with no OpenTelemetry convention.
HOST_CPU_LOGICAL_COUNT: Final = "agenttrace.host.cpu.logical_count"
HOST_CPU_PHYSICAL_COUNT: Final = "agenttrace.host.cpu.physical_count"
HOST_MEMORY_TOTAL_BYTES: Final = "agenttrace.host.memory.total_bytes"

TELEMETRY_KEYS: Final = (
    TELEMETRY_USER_TIME_S,
    TELEMETRY_SYSTEM_TIME_S,
    TELEMETRY_MAX_RSS_BYTES,
    TELEMETRY_READ_BYTES,
    TELEMETRY_WRITE_BYTES,
)

# Names of the telemetry methods, as recorded in row metadata.
TELEMETRY_METHOD_PRECISE: Final = "precise"
TELEMETRY_METHOD_COMPAT: Final = "agenttrace-0.3"
TELEMETRY_METHOD_NONE: Final = "none"

SCHEMA_VERSION: Final = "0.3.0"
