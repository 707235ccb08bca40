"""An AgentTrace row -> OpenTelemetry spans (same ids, times, attributes), for sending to a backend.

The root becomes `invoke_agent {agent}`, each `llm_steps` entry a `chat {model}` CLIENT span, and
each `spans` entry an `execute_tool {tool}` span (under its `parent_span_id` tool when nested),
with the attributes AgentTrace's instrumentation writes, so viewers show replayed runs exactly as
live ones. Ids that are not OTel hex ids (the release used uuids) map to stable OTel ids.

Converting the spans back with `build_row` gives the original row, byte for byte: whatever a span
cannot carry by itself (the release's perf-counter times, its missing step start times, a float
that does not survive nanosecond rounding, the metadata's own layout) rides along in
`agenttrace.source.*` attributes.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from opentelemetry.exporter.agenttrace import semconv
from opentelemetry.exporter.agenttrace._rows import build_row
from opentelemetry.exporter.agenttrace.schema import TELEMETRY_FIELDS
from opentelemetry.exporter.agenttrace.version import __version__
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_HEX16 = re.compile(r"^[0-9a-f]{16}$")
_EPOCH_2001_NS = 978_307_200 * 10**9  # earlier "start_ns" values are a perf counter, not epoch
_SCOPE = InstrumentationScope("agenttrace.replay", __version__)
_TELEMETRY_KEYS = dict(zip(TELEMETRY_FIELDS, semconv.TELEMETRY_KEYS, strict=True))


def _digest_id(text: str, bits: int) -> int:
    value = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[: bits // 8], "big")
    return value or 1


def trace_id_of(text: Any) -> int:
    """An OTel trace id for a row's `trace_id` (hex kept, uuids and others mapped stably)."""
    text = str(text)
    if _HEX32.match(text) and int(text, 16):
        return int(text, 16)
    compact = text.replace("-", "").lower()
    if _HEX32.match(compact) and int(compact, 16):
        return int(compact, 16)
    return _digest_id(text, 128)


def span_id_of(text: Any) -> int:
    """An OTel span id for a row's span or step id."""
    text = str(text)
    if _HEX16.match(text) and int(text, 16):
        return int(text, 16)
    return _digest_id(text, 64)


def _epoch_ns(timestamp: Any) -> int | None:
    if not isinstance(timestamp, str):
        return None
    try:
        moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000


def _ns(millis: Any) -> int:
    return max(0, round(millis * 1e6)) if isinstance(millis, (int, float)) else 0


def _arguments_json(tool_input: str) -> str | None:
    """JSON arguments from the release's `kwargs={...}` form, when it is a plain literal."""
    if not tool_input.startswith("kwargs="):
        return None
    try:
        value = ast.literal_eval(tool_input[len("kwargs=") :])
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return None


def _attribute(value: Any) -> Any:
    """A span attribute value: primitives as they are, anything else as JSON."""
    if isinstance(value, (str, bool, int, float)):
        return value
    return json.dumps(value, ensure_ascii=False)


@dataclass
class _Plan:
    name: str
    span_id: int
    parent_id: int | None
    start: int
    end: int
    kind: SpanKind
    attributes: dict[str, Any]
    error: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)


def _mapping(value: object) -> Mapping[str, Any]:
    """`value` when it is an object, else an empty one: rows of other writers may hold anything."""
    return value if isinstance(value, Mapping) else {}


def _text(value: object) -> str:
    """`value` when it is a string, else the empty string."""
    return value if isinstance(value, str) else ""


def _resource_of(metadata: Mapping[str, Any], resource: Resource | None) -> Resource:
    if resource is not None:
        return resource
    attributes: dict[str, Any] = {"service.name": "agenttrace-replay"}
    service = metadata.get("service")
    if isinstance(service, Mapping) and isinstance(service.get("name"), str):
        attributes["service.name"] = service["name"]
    platform = metadata.get("platform")
    if isinstance(platform, Mapping):
        attributes.update(
            (key, value) for key, value in platform.items() if isinstance(value, (str, int, float))
        )
    return Resource(attributes)


def _plan_row(row: Mapping[str, Any]) -> tuple[_Plan, list[_Plan], list[_Plan]]:
    metadata = _mapping(row.get("metadata"))
    root_start = _epoch_ns(row.get("timestamp_utc")) or 0
    root_end = root_start + _ns(row.get("total_duration_ms"))
    root_id = _digest_id(f"{row.get('trace_id')}/root", 64)
    agent = str(metadata.get("agent_name") or metadata.get("dataset_name") or "agent")
    root_attributes: dict[str, Any] = {
        semconv.GEN_AI_OPERATION_NAME: semconv.OPERATION_INVOKE_AGENT,
        semconv.GEN_AI_AGENT_NAME: agent,
        semconv.OPENINFERENCE_SPAN_KIND: "AGENT",
        semconv.PROMPT: _text(row.get("prompt")),
        semconv.GEN_AI_REQUEST_MODEL: _text(row.get("model")),
        semconv.SOURCE_METADATA: json.dumps(metadata, ensure_ascii=False),
    }
    for key, value in metadata.items():
        if isinstance(value, (str, bool, int, float)):
            root_attributes[semconv.METADATA_PREFIX + key] = value
    root = _Plan(
        name=f"{semconv.OPERATION_INVOKE_AGENT} {agent}",
        span_id=root_id,
        parent_id=None,
        start=root_start,
        end=root_end,
        kind=SpanKind.INTERNAL,
        attributes=root_attributes,
    )

    raw_tools = [t for t in row.get("spans") or [] if isinstance(t, Mapping)]
    raw_steps = [s for s in row.get("llm_steps") or [] if isinstance(s, Mapping)]
    tool_ids = {str(t.get("span_id")): span_id_of(t.get("span_id")) for t in raw_tools}
    epoch_tools = all(
        isinstance(t.get("start_ns"), int) and t["start_ns"] >= _EPOCH_2001_NS for t in raw_tools
    )
    # Where tools and steps go on the timeline when the row's own times are not epoch times:
    # steps in order from the root's start, each followed by the tools it called.
    cursor = root_start
    tools_left = list(raw_tools)
    placed: dict[int, tuple[int, int]] = {}
    step_times: list[tuple[int, int]] = []
    for step in raw_steps:
        if isinstance(step.get("start_ns"), int) and isinstance(step.get("end_ns"), int):
            step_times.append((step["start_ns"], step["end_ns"]))
            continue
        start = cursor
        end = start + _ns(step.get("duration_ms"))
        step_times.append((start, end))
        cursor = end
        for _ in range(len(step.get("tool_calls") or [])):
            if tools_left:
                tool = tools_left.pop(0)
                duration = _ns(tool.get("duration_ms"))
                placed[id(tool)] = (cursor, cursor + duration)
                cursor += duration
    for tool in tools_left:
        duration = _ns(tool.get("duration_ms"))
        placed[id(tool)] = (cursor, cursor + duration)
        cursor += duration

    steps = []
    model = _text(row.get("model"))
    for index, step in enumerate(raw_steps):
        parts: list[dict[str, Any]] = []
        if step.get("reasoning_content") is not None:
            parts.append({"type": "reasoning", "content": step["reasoning_content"]})
        if step.get("model_output") is not None:
            parts.append({"type": "text", "content": step["model_output"]})
        for call in step.get("tool_calls") or []:
            if isinstance(call, Mapping):
                part = {"type": "tool_call", "name": call.get("name")}
                if "id" in call:
                    part["id"] = call["id"]
                part["arguments"] = call.get("arguments")
                parts.append(part)
        attributes: dict[str, Any] = {
            semconv.GEN_AI_OPERATION_NAME: semconv.OPERATION_CHAT,
            semconv.GEN_AI_PROVIDER_NAME: "openai",
            semconv.OPENINFERENCE_SPAN_KIND: "LLM",
            semconv.GEN_AI_REQUEST_MODEL: model,
            semconv.GEN_AI_OUTPUT_MESSAGES: json.dumps(
                [{"role": "assistant", "parts": parts}], ensure_ascii=False
            ),
        }
        if isinstance(step.get("step_number"), int):
            attributes[semconv.STEP_NUMBER] = step["step_number"]
        for source, key in (
            ("input_tokens", semconv.GEN_AI_USAGE_INPUT_TOKENS),
            ("output_tokens", semconv.GEN_AI_USAGE_OUTPUT_TOKENS),
        ):
            if isinstance(step.get(source), int) and not isinstance(step.get(source), bool):
                attributes[key] = step[source]
        start, end = step_times[index]
        steps.append(
            _Plan(
                name=f"{semconv.OPERATION_CHAT} {model}" if model else semconv.OPERATION_CHAT,
                span_id=span_id_of(step.get("step_id")),
                parent_id=root_id,
                start=start,
                end=max(end, start),
                kind=SpanKind.CLIENT,
                attributes=attributes,
            )
        )

    tools = []
    for tool in raw_tools:
        tool_input = _text(tool.get("tool_input"))
        attributes = {
            semconv.GEN_AI_OPERATION_NAME: semconv.OPERATION_EXECUTE_TOOL,
            semconv.GEN_AI_TOOL_NAME: str(tool.get("tool_name") or ""),
            semconv.GEN_AI_TOOL_TYPE: semconv.TOOL_TYPE_FUNCTION,
            semconv.OPENINFERENCE_SPAN_KIND: "TOOL",
            semconv.TOOL_INPUT_REPR: tool_input,
            semconv.GEN_AI_TOOL_CALL_RESULT: _attribute(tool.get("tool_output") or ""),
        }
        arguments = _arguments_json(tool_input)
        if arguments is not None:
            attributes[semconv.GEN_AI_TOOL_CALL_ARGUMENTS] = arguments
        exit_code = tool.get("exit_code")
        if isinstance(exit_code, int) and not isinstance(exit_code, bool):
            attributes[semconv.TOOL_EXIT_CODE] = exit_code
        telemetry = _mapping(tool.get("telemetry"))
        for name, key in _TELEMETRY_KEYS.items():
            value = telemetry.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                attributes[key] = value
        if tool.get("tool_call_id") is not None:
            attributes[semconv.GEN_AI_TOOL_CALL_ID] = str(tool["tool_call_id"])
        if isinstance(tool.get("max_rss_scope"), str):
            attributes[semconv.TELEMETRY_PEAK_SCOPE] = tool["max_rss_scope"]
        if epoch_tools:
            start, end = tool["start_ns"], tool.get("end_ns", tool["start_ns"])
        else:
            start, end = placed[id(tool)]
        parent = tool.get("parent_span_id")
        tools.append(
            _Plan(
                name=f"{semconv.OPERATION_EXECUTE_TOOL} {attributes[semconv.GEN_AI_TOOL_NAME]}",
                span_id=span_id_of(tool.get("span_id")),
                parent_id=tool_ids.get(str(parent), root_id) if parent is not None else root_id,
                start=start,
                end=max(end, start) if isinstance(end, int) else start,
                kind=SpanKind.INTERNAL,
                attributes=attributes,
                error=isinstance(exit_code, int) and exit_code != 0,
            )
        )
    return root, steps, tools


def _materialise(trace_id: int, plans: list[_Plan], resource: Resource) -> list[ReadableSpan]:
    spans = []
    for plan in plans:
        attributes = dict(plan.attributes)
        if plan.overrides:
            attributes[semconv.SOURCE_OVERRIDES] = json.dumps(plan.overrides, ensure_ascii=False)
        parent = (
            SpanContext(trace_id, plan.parent_id, is_remote=False, trace_flags=TraceFlags(1))
            if plan.parent_id is not None
            else None
        )
        spans.append(
            ReadableSpan(
                name=plan.name,
                context=SpanContext(
                    trace_id, plan.span_id, is_remote=False, trace_flags=TraceFlags(1)
                ),
                parent=parent,
                resource=resource,
                attributes=attributes,
                kind=plan.kind,
                status=Status(StatusCode.ERROR) if plan.error else Status(StatusCode.UNSET),
                start_time=plan.start,
                end_time=plan.end,
                instrumentation_scope=_SCOPE,
            )
        )
    return spans


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON text (so 1, 1.0 and True differ, as they do in the file)."""
    return json.dumps(a, ensure_ascii=False) == json.dumps(b, ensure_ascii=False)


def _differences(
    original: Mapping[str, Any], derived: Mapping[str, Any], skip: tuple[str, ...] = ()
) -> dict[str, Any]:
    """What to override in `derived` so that it equals `original` (keys, values and order)."""
    overrides: dict[str, Any] = {
        key: value
        for key, value in original.items()
        if key not in skip and (key not in derived or not _same(derived[key], value))
    }
    absent = [key for key in derived if key not in original]
    if absent:
        overrides["__absent__"] = absent
    resulting = [k for k in derived if k in original] + [k for k in original if k not in derived]
    if resulting != list(original):
        overrides["__order__"] = list(original)
    return overrides


def row_to_spans(row: Mapping[str, Any], *, resource: Resource | None = None) -> list[ReadableSpan]:
    """The spans of one row: root first, then model steps, then tools.

    `resource` defaults to one built from the row's metadata (service, platform).
    """
    metadata = _mapping(row.get("metadata"))
    trace_id = trace_id_of(row.get("trace_id"))
    resource = _resource_of(metadata, resource)
    root, steps, tools = _plan_row(row)
    plans = [root, *steps, *tools]
    spans = _materialise(trace_id, plans, resource)
    derived = build_row(spans[0], spans[1:])
    # Steps and tools come out of build_row in start order; match them to their entries by id.
    step_entries = {span_id_of(s.get("step_id")): s for s in row.get("llm_steps") or []}
    tool_entries = {span_id_of(t.get("span_id")): t for t in row.get("spans") or []}
    derived_steps = {span_id_of(s["step_id"]): s for s in derived["llm_steps"]}
    derived_tools = {span_id_of(t["span_id"]): t for t in derived["spans"]}
    changed = False
    for plan in steps:
        plan.overrides = _differences(step_entries[plan.span_id], derived_steps[plan.span_id])
        changed |= bool(plan.overrides)
    for plan in tools:
        plan.overrides = _differences(tool_entries[plan.span_id], derived_tools[plan.span_id])
        changed |= bool(plan.overrides)
    root.overrides = _differences(row, derived, skip=("spans", "llm_steps"))
    order_ok = list(derived_steps) == list(step_entries) and list(derived_tools) == list(
        tool_entries
    )
    if not order_ok:  # entries not in start order in the row: keep the row's order
        root.overrides["llm_steps"] = list(row.get("llm_steps") or [])
        root.overrides["spans"] = list(row.get("spans") or [])
    if changed or root.overrides:
        spans = _materialise(trace_id, plans, resource)
    return spans
