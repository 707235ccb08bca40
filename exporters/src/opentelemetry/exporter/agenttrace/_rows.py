"""Spans -> one AgentTrace row: the mapping the README's "AgentTrace files" section states.

Input is the run's root span (an `invoke_agent` or workflow span), every finished span below it,
and the resource. Tool spans (`execute_tool`) become `spans`, model spans (`chat` and the other
generation operations) become `llm_steps`, everything else (HTTP clients, databases) is skipped.
Spans made by other instrumentations (OpenInference, OpenLLMetry, older GenAI names) are read
through the same keys: `conventions.normalized` fills them in from the foreign ones first.

Whatever the spans carry, the row passes the schema's default check: numbers that cannot be
(negative durations, token counts or telemetry, non-finite values) are clamped or dropped, and
run metadata an agent never gave (task id, split, ...) is written as empty, never invented.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from opentelemetry.exporter.agenttrace import _json, semconv
from opentelemetry.exporter.agenttrace.conventions import normalized
from opentelemetry.exporter.agenttrace.schema import SCHEMA_VERSION
from opentelemetry.exporter.agenttrace.version import __version__
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

COLLECTOR_VERSION = f"agenttrace-{__version__}"
#: Metadata key that always names the AgentTrace version that wrote the row, also when the agent
#: labels its rows with the release's `collector_version` ("0.3.0").
WRITER_KEY = "agenttrace_version"
#: A failed tool call's error text in `tool_output` is cut to this many characters.
ERROR_OUTPUT_LIMIT = 4096
_TRUNCATED = "…[agenttrace: truncated, original length {n} chars]"

AGENT_OPERATIONS = frozenset({"invoke_agent", "invoke_workflow", "create_agent"})
STEP_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})
TOOL_OPERATION = semconv.OPERATION_EXECUTE_TOOL
# traceloop-sdk's @workflow and @agent: the spans a Traceloop user's run hangs under.
TRACELOOP_ROOT_KINDS = frozenset({semconv.TRACELOOP_KIND_WORKFLOW, semconv.TRACELOOP_KIND_AGENT})


# Resource keys grouped into the row's platform / hardware metadata.
_PLATFORM_KEYS = (
    "host.name",
    "host.arch",
    "os.type",
    "os.description",
    "os.version",
    "process.runtime.name",
    "process.runtime.version",
)
_HARDWARE_KEYS = {
    semconv.HOST_CPU_MODEL_NAME: "cpu_model",
    semconv.HOST_CPU_LOGICAL_COUNT: "cpu_count_logical",
    semconv.HOST_CPU_PHYSICAL_COUNT: "cpu_count_physical",
    semconv.HOST_MEMORY_TOTAL_BYTES: "memory_total_bytes",
}


def attributes_of(span: ReadableSpan) -> dict[str, Any]:
    """A span's attributes as a plain dict (one copy; lookups on the SDK's view are slow)."""
    attributes = span.attributes
    if attributes is None:
        return {}
    copy = getattr(attributes, "copy", None)
    return copy() if copy is not None else dict(attributes)


def operation_of(span: ReadableSpan, attributes: Mapping[str, Any] | None = None) -> str:
    """The GenAI operation of a span: its `gen_ai.operation.name`, else its name's first word."""
    if attributes is None:
        attributes = attributes_of(span)
    operation = attributes.get(semconv.GEN_AI_OPERATION_NAME)
    if isinstance(operation, str):
        return operation
    return span.name.split(" ", 1)[0] if span.name else ""


def is_run_root(span: ReadableSpan, attributes: Mapping[str, Any] | None = None) -> bool:
    """Whether a span can be the root of a row (an agent or workflow span, of any convention)."""
    if attributes is None:
        attributes = attributes_of(span)
    if operation_of(span, attributes) in AGENT_OPERATIONS:
        return True
    return (
        attributes.get(semconv.OPENINFERENCE_SPAN_KIND) == semconv.OPENINFERENCE_KIND_AGENT
        or attributes.get(semconv.TRACELOOP_SPAN_KIND) in TRACELOOP_ROOT_KINDS
    )


def hex_trace_id(span: ReadableSpan) -> str:
    return format(span.context.trace_id, "032x")


def hex_span_id(span_id: int) -> str:
    return f"{span_id:016x}"


def iso_utc(epoch_ns: int) -> str:
    """ISO-8601 UTC with microseconds, the form `datetime.isoformat()` gives (`+00:00`)."""
    seconds, nanos = divmod(epoch_ns, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc).replace(microsecond=nanos // 1000)
    return moment.isoformat()


def _loads(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return _json.loads(value)
        except ValueError:
            return None
    return value


def _arguments_dict(value: Any) -> dict[str, Any]:
    value = _loads(value) if isinstance(value, str) else value
    if isinstance(value, dict):
        return value
    return {} if value is None else {"value": value}


def _output_parts(attributes: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The parts of a step's output messages (GenAI JSON), whatever else the JSON holds."""
    messages = _loads(attributes.get(semconv.GEN_AI_OUTPUT_MESSAGES))
    if isinstance(messages, list):
        for message in messages:
            found = message.get("parts") if isinstance(message, dict) else None
            if isinstance(found, list):
                for part in found:
                    if isinstance(part, dict):
                        yield part


def _joined(parts: list[dict[str, Any]], kind: str) -> str | None:
    contents = [p.get("content") for p in parts if p.get("type") == kind]
    texts = [t if isinstance(t, str) else json.dumps(t) for t in contents if t is not None]
    return "".join(texts) if texts else None


def _with_overrides(entry: dict[str, Any], attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Apply the exact values a replayed span carries for fields it cannot reproduce."""
    if semconv.SOURCE_OVERRIDES not in attributes:
        return entry
    overrides = _loads(attributes[semconv.SOURCE_OVERRIDES])
    if not isinstance(overrides, dict):
        return entry
    absent = overrides.get("__absent__") or ()
    for key, value in overrides.items():
        if key != "__absent__":
            entry[key] = value
    for key in absent:
        entry.pop(key, None)
    order = overrides.get("__order__")
    if isinstance(order, list):
        entry = {key: entry[key] for key in order if key in entry} | {
            key: value for key, value in entry.items() if key not in order
        }
    return entry


def step_of(
    span: ReadableSpan, attributes: Mapping[str, Any], number: int, strict: bool
) -> dict[str, Any]:
    """One `llm_steps` entry."""
    texts: list[str] = []
    reasoning: list[str] = []
    calls = []
    for part in _output_parts(attributes):
        kind = part.get("type")
        if kind == "text" or kind == "reasoning":
            content = part.get("content")
            if content is not None:
                (texts if kind == "text" else reasoning).append(
                    content if isinstance(content, str) else json.dumps(content)
                )
        elif kind == "tool_call":
            call: dict[str, Any] = {
                "name": str(part.get("name") or ""),
                "arguments": _arguments_dict(part.get("arguments")),
            }
            if not strict and part.get("id") is not None:
                call["id"] = str(part["id"])
            calls.append(call)
    input_tokens = attributes.get(semconv.GEN_AI_USAGE_INPUT_TOKENS)
    if input_tokens is None:
        input_tokens = attributes.get(semconv.GEN_AI_USAGE_PROMPT_TOKENS)
    output_tokens = attributes.get(semconv.GEN_AI_USAGE_OUTPUT_TOKENS)
    if output_tokens is None:
        output_tokens = attributes.get(semconv.GEN_AI_USAGE_COMPLETION_TOKENS)
    start_ns, end = span.start_time, span.end_time
    start = start_ns or 0
    step_number = attributes.get(semconv.STEP_NUMBER)
    step: dict[str, Any] = {
        "step_id": f"{span.context.span_id:016x}",
        "step_number": step_number if type(step_number) is int and step_number > 0 else number,
        "model_output": "".join(texts) if texts else None,
        "reasoning_content": "".join(reasoning) if reasoning else None,
        "tool_calls": calls or None,
        # never negative: a foreign span may end before it starts
        "duration_ms": (end - start) / 1e6 if end is not None and end > start else 0.0,
        "input_tokens": input_tokens if type(input_tokens) is int and input_tokens >= 0 else None,
        "output_tokens": output_tokens
        if type(output_tokens) is int and output_tokens >= 0
        else None,
    }
    if not strict:
        step["start_ns"] = start_ns
        step["end_ns"] = end
    return _with_overrides(step, attributes) if semconv.SOURCE_OVERRIDES in attributes else step


def tool_input_of(attributes: Mapping[str, Any]) -> str:
    """The release's `tool_input`: as recorded, else rebuilt from the arguments JSON."""
    text = attributes.get(semconv.TOOL_INPUT_REPR)
    if isinstance(text, str):
        return text
    arguments = _loads(attributes.get(semconv.GEN_AI_TOOL_CALL_ARGUMENTS))
    if arguments is None:
        return ""
    if not isinstance(arguments, dict):
        return repr(arguments)
    positional = attributes.get(semconv.TOOL_POSITIONAL_ARGS)
    if type(positional) is not int or positional <= 0:
        return f"kwargs={arguments!r}"
    items = list(arguments.items())
    parts = ["args=" + repr(tuple(value for _, value in items[:positional]))]
    if len(items) > positional:
        parts.append("kwargs=" + repr(dict(items[positional:])))
    return ", ".join(parts)


def _seconds(value: Any) -> float:
    """A telemetry time: a finite, non-negative float, else 0.0 (NaN fails both comparisons)."""
    if type(value) is float:
        return value if 0.0 < value < math.inf else 0.0
    if type(value) is int:
        return float(value) if value > 0 else 0.0
    return 0.0


def _bytes(value: Any) -> int:
    """A telemetry byte count: a non-negative int, else 0 (int(nan) would raise)."""
    if type(value) is int:
        return value if value > 0 else 0
    if type(value) is float:
        return int(value) if 0.0 < value < math.inf else 0
    return 0


def _telemetry(attributes: Mapping[str, Any]) -> dict[str, Any]:
    get = attributes.get
    user = get(semconv.TELEMETRY_USER_TIME_S)
    system = get(semconv.TELEMETRY_SYSTEM_TIME_S)
    peak = get(semconv.TELEMETRY_MAX_RSS_BYTES)
    read = get(semconv.TELEMETRY_READ_BYTES)
    write = get(semconv.TELEMETRY_WRITE_BYTES)
    # What our probes record passes the first test; `_seconds` and `_bytes` settle the rest.
    return {
        # 0.0 as well, but not -0.0: `user == 0` takes both to 0.0 without a call.
        "user_time_s": user
        if type(user) is float and 0.0 < user < math.inf
        else (0.0 if user == 0 else _seconds(user)),
        "system_time_s": system
        if type(system) is float and 0.0 < system < math.inf
        else (0.0 if system == 0 else _seconds(system)),
        "max_rss_bytes": peak if type(peak) is int and peak >= 0 else _bytes(peak),
        "read_bytes": read if type(read) is int and read >= 0 else _bytes(read),
        "write_bytes": write if type(write) is int and write >= 0 else _bytes(write),
    }


def _bounded(text: str, limit: int = ERROR_OUTPUT_LIMIT) -> str:
    """`text` cut to `limit` characters, with a marker that records its original length."""
    if len(text) <= limit:
        return text
    return text[:limit] + _TRUNCATED.format(n=len(text))


def _raised(span: ReadableSpan) -> tuple[str | None, str | None]:
    """The type and message of the exception a span recorded last (None, None when none)."""
    for event in reversed(span.events or ()):
        if event.name == semconv.EXCEPTION_EVENT:
            attributes = event.attributes or {}
            kind = attributes.get(semconv.EXCEPTION_TYPE)
            message = attributes.get(semconv.EXCEPTION_MESSAGE)
            return (
                str(kind) if kind is not None else None,
                str(message) if message is not None else None,
            )
    return None, None


def _error_output(
    span: ReadableSpan, attributes: Mapping[str, Any], content: bool
) -> tuple[str, str | None]:
    """The `tool_output` of a failed call that returned nothing, and the type of what it raised.

    The exception lives on the span (status, `exception` event); a 0.3.0 reader sees only
    `tool_output`, so the error goes there: "Type: message" (already redacted and bounded where
    the span was made; bounded again here for spans from elsewhere). With content capture off,
    only the type, since a message can quote the data.
    """
    kind, message = _raised(span)
    if kind is None:
        error_type = attributes.get(semconv.ERROR_TYPE)
        kind = error_type if isinstance(error_type, str) else None
    if not content:
        return _bounded(kind or ""), kind
    if message is None and kind is None:
        return _bounded(span.status.description or ""), None
    if message is None or message == "":
        return _bounded(kind or ""), kind
    return _bounded(f"{kind}: {message}" if kind else message), kind


def tool_span_of(
    span: ReadableSpan,
    attributes: Mapping[str, Any],
    parent_tool_id: str | None,
    strict: bool,
    *,
    content: bool = True,
) -> dict[str, Any]:
    """One `spans` entry. `content` False: the run was recorded without content."""
    exit_code = attributes.get(semconv.TOOL_EXIT_CODE)
    if type(exit_code) is not int:
        exit_code = 1 if span.status.status_code is StatusCode.ERROR else 0
    output = attributes.get(semconv.GEN_AI_TOOL_CALL_RESULT)
    error_type: str | None = None
    if output is None and span.status.status_code is StatusCode.ERROR:
        output, error_type = _error_output(span, attributes, content)
    start = span.start_time or 0
    end = span.end_time or start
    if end < start:
        end = start
    name = attributes.get(semconv.GEN_AI_TOOL_NAME)
    tool = {
        "span_id": f"{span.context.span_id:016x}",
        "type": "TOOL",
        "tool_name": name
        if type(name) is str and name
        else str(name or span.name.split(" ", 1)[-1]),
        "tool_input": tool_input_of(attributes),
        "tool_output": output
        if isinstance(output, str)
        else ("" if output is None else str(output)),
        "start_ns": start,
        "end_ns": end,
        "duration_ms": (end - start) / 1e6,
        "telemetry": _telemetry(attributes),
        "exit_code": exit_code,
        "parent_span_id": parent_tool_id,
    }
    if not strict:
        call_id = attributes.get(semconv.GEN_AI_TOOL_CALL_ID)
        tool["tool_call_id"] = str(call_id) if call_id is not None else None
        scope = attributes.get(semconv.TELEMETRY_PEAK_SCOPE)
        tool["max_rss_scope"] = scope if isinstance(scope, str) else None
        tool["error_type"] = error_type
    return _with_overrides(tool, attributes) if semconv.SOURCE_OVERRIDES in attributes else tool


def _task_id(value: Any) -> int | str | None:
    """The row's `task_id`: an int when it is one (also "17" or 17.0), else a string, or None.

    Agents outside the release name tasks as they like ("django__django-11099"); only release
    rows need an integer, and the validator holds them to that.
    """
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = value if isinstance(value, str) else str(value)
    digits = text[1:] if text.startswith("-") else text
    if digits.isdigit() and digits.isascii() and len(digits) <= 18:
        return int(text)
    return text


def _metadata(
    root_attributes: Mapping[str, Any],
    resource_attributes: Mapping[str, Any],
    incomplete: bool,
) -> dict[str, Any]:
    source = _loads(root_attributes.get(semconv.SOURCE_METADATA))
    if isinstance(source, dict):  # a replayed row: its metadata as it was
        if incomplete:
            source["incomplete"] = True
        return source
    given: dict[str, Any] = {}
    for key, value in root_attributes.items():
        if key.startswith(semconv.METADATA_PREFIX):
            given[key[len(semconv.METADATA_PREFIX) :]] = value
        elif key.startswith(semconv.METADATA_JSON_PREFIX):
            given[key[len(semconv.METADATA_JSON_PREFIX) :]] = _loads(value)
    given.pop("schema_version", None)  # the schema this writer writes, whatever the agent says
    metadata: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "collector_version": str(given.pop("collector_version", "") or COLLECTOR_VERSION),
        "dataset_name": str(given.pop("dataset_name", "") or ""),
        "source": str(given.pop("source", "") or ""),
        "task_id": _task_id(given.pop("task_id", None)),
        "run_id": str(given.pop("run_id", "") or ""),
        "dataset_split": str(given.pop("dataset_split", "") or ""),
    }
    metadata.update(given)
    metadata[WRITER_KEY] = __version__
    agent_name = root_attributes.get(semconv.GEN_AI_AGENT_NAME)
    if isinstance(agent_name, str):
        metadata.setdefault("agent_name", agent_name)
    metadata["telemetry_method"] = root_attributes.get(
        semconv.TELEMETRY_METHOD, semconv.TELEMETRY_METHOD_NONE
    )
    metadata["content_captured"] = root_attributes.get(semconv.CONTENT_CAPTURED, True)
    platform = {
        key: resource_attributes[key] for key in _PLATFORM_KEYS if key in resource_attributes
    }
    hardware = {
        name: resource_attributes[key]
        for key, name in _HARDWARE_KEYS.items()
        if key in resource_attributes
    }
    if platform:
        metadata["platform"] = platform
    if hardware:
        metadata["hardware"] = hardware
    service = {
        key.split(".", 1)[1]: resource_attributes[key]
        for key in ("service.name", "service.version")
        if key in resource_attributes
    }
    if service:
        metadata["service"] = service
    error_type = root_attributes.get(semconv.ERROR_TYPE)
    if isinstance(error_type, str):
        metadata["error_type"] = error_type  # the run ended by raising (SystemExit on SIGTERM...)
    if incomplete:
        metadata["incomplete"] = True
    return metadata


def _first_user_text(step_attributes: Iterable[Mapping[str, Any]]) -> str | None:
    for attributes in step_attributes:
        messages = _loads(attributes.get(semconv.GEN_AI_INPUT_MESSAGES))
        if not isinstance(messages, list):
            continue
        for message in messages:
            if isinstance(message, dict) and message.get("role") == "user":
                text = _joined([p for p in message.get("parts", []) if isinstance(p, dict)], "text")
                if text is not None:
                    return text
    return None


_start_and_id = operator.itemgetter(0, 1)  # sorts (start, span id, span) entries


def build_row(
    root: ReadableSpan,
    spans: Sequence[ReadableSpan],
    *,
    strict: bool = False,
    incomplete: bool = False,
    end_time: int | None = None,
    attributes_by_id: Mapping[int, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The AgentTrace row of one run. `spans` are the root's descendants (any order, any kind).

    `incomplete` marks a run whose root never ended (written at shutdown); `end_time` then stands
    in for the root's end.
    """
    root_id = root.context.span_id
    known = attributes_by_id or {}
    by_id: dict[int, ReadableSpan] = {root_id: root}
    attrs: dict[int, Mapping[str, Any]] = {}
    operations: dict[int, str] = {}
    tools: list[tuple[int, int, ReadableSpan]] = []  # (start, id, span): sorted by start
    steps: list[tuple[int, int, ReadableSpan]] = []
    for span in spans:
        span_id = span.context.span_id
        by_id[span_id] = span
        span_attributes = attrs[span_id] = known.get(span_id) or normalized(
            span, attributes_of(span)
        )
        operation = span_attributes.get(semconv.GEN_AI_OPERATION_NAME)
        if type(operation) is not str:
            operation = operation_of(span, span_attributes)
        operations[span_id] = operation
        if operation == TOOL_OPERATION:
            tools.append((span.start_time or 0, span_id, span))
        elif operation in STEP_OPERATIONS:
            steps.append((span.start_time or 0, span_id, span))
    tools.sort(key=_start_and_id)
    steps.sort(key=_start_and_id)

    def enclosing_tool(span: ReadableSpan) -> str | None:
        parent = span.parent
        if parent is None or parent.span_id == root_id:  # most tools: called by the agent
            return None
        hops = 0
        while parent is not None and parent.span_id in by_id and hops < 10_000:
            if parent.span_id == root_id:
                return None
            if operations.get(parent.span_id) == TOOL_OPERATION:
                return hex_span_id(parent.span_id)
            parent = by_id[parent.span_id].parent
            hops += 1
        return None

    attributes = normalized(root, attributes_of(root))
    resource = root.resource.attributes if root.resource is not None else {}
    prompt = attributes.get(semconv.PROMPT)
    if not isinstance(prompt, str):
        prompt = _first_user_text(attrs[span_id] for _, span_id, _ in steps) or ""
    model = attributes.get(semconv.GEN_AI_REQUEST_MODEL)
    if not isinstance(model, str):
        candidates = (
            attrs[span_id].get(semconv.GEN_AI_REQUEST_MODEL)
            or attrs[span_id].get(semconv.GEN_AI_RESPONSE_MODEL)
            for _, span_id, _ in steps
        )
        model = next((m for m in candidates if isinstance(m, str) and m), "")
    start = root.start_time or 0
    end = root.end_time if root.end_time is not None else (end_time or start)
    end = max(end, start)
    content = attributes.get(semconv.CONTENT_CAPTURED) is not False
    row = {
        "trace_id": hex_trace_id(root),
        "timestamp_utc": iso_utc(start),
        "prompt": prompt,
        "model": str(model),
        "spans": [
            tool_span_of(s, attrs[span_id], enclosing_tool(s), strict, content=content)
            for _, span_id, s in tools
        ],
        "llm_steps": [
            step_of(s, attrs[span_id], index + 1, strict)
            for index, (_, span_id, s) in enumerate(steps)
        ],
        "total_duration_ms": (end - start) / 1e6,
        "metadata": _metadata(attributes, resource, incomplete),
    }
    return _with_overrides(row, attributes)
