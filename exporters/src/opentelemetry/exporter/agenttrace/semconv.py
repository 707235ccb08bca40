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

# OpenInference (Arize Phoenix and friends) reads the span kind from this key.
OPENINFERENCE_SPAN_KIND: Final = "openinference.span.kind"

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
