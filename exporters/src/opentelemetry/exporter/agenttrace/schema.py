"""The AgentTrace row, schema 0.3.0: field order, types, and a validator that says where it broke.

One row is one agent run. The contract (key order, types, required metadata) is the public
AgentTrace release's; extensions (a tool call id on spans and tool calls, start times on model
steps, AgentTrace-specific metadata) are only ever extra keys, which 0.3.0 readers ignore, and
`strict` writing leaves them out.

Validation has two levels. The default check (structure, types, ids) is what every row from any
agent must pass: rows of an agent with no dataset, task or split at all are valid rows. The
release's own rules (its collector label, `source == dataset_name`, split names, its three tools
and their `kwargs=` inputs, an integer `task_id`, the NL2Bash fixture's sha256) are what consumers
written against the NL2Bash / MBPP release check; they apply to rows that claim to be release rows
(`collector_version` "0.3.0" with dataset `nl2bash` or `mbpp`), or to every row under the
`release` profile.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeGuard

SCHEMA_VERSION: Final = "0.3.0"

ROW_KEYS: Final = (
    "trace_id",
    "timestamp_utc",
    "prompt",
    "model",
    "spans",
    "llm_steps",
    "total_duration_ms",
    "metadata",
)
SPAN_KEYS: Final = (
    "span_id",
    "type",
    "tool_name",
    "tool_input",
    "tool_output",
    "start_ns",
    "end_ns",
    "duration_ms",
    "telemetry",
    "exit_code",
    "parent_span_id",
)
TELEMETRY_FIELDS: Final = (
    "user_time_s",
    "system_time_s",
    "max_rss_bytes",
    "read_bytes",
    "write_bytes",
)
STEP_KEYS: Final = (
    "step_id",
    "step_number",
    "model_output",
    "reasoning_content",
    "tool_calls",
    "duration_ms",
    "input_tokens",
    "output_tokens",
)
REQUIRED_METADATA: Final = (
    "schema_version",
    "collector_version",
    "dataset_name",
    "source",
    "task_id",
    "run_id",
    "dataset_split",
)

#: Flat columns of the Parquet (Hugging Face) view, one row per trace.
PARQUET_COLUMNS: Final = (
    "trace_id",
    "timestamp_utc",
    "prompt",
    "model",
    "dataset_name",
    "task_id",
    "run_id",
    "total_duration_ms",
    "tool_span_count",
    "llm_step_count",
    "spans_json",
    "llm_steps_json",
    "metadata_json",
    "raw_file",
)

ID_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,239}$")
SHA256_PATTERN: Final = re.compile(r"^[0-9a-f]{64}$")

#: Validation profiles: `default` holds release rows (see `claims_release`) to the release's
#: rules and every other row to the structural check; `release` holds every row to both.
PROFILE_DEFAULT: Final = "default"
PROFILE_RELEASE: Final = "release"
PROFILES: Final = (PROFILE_DEFAULT, PROFILE_RELEASE)

#: The release versioned its collector with the schema: the label a release row carries.
RELEASE_COLLECTOR_VERSION: Final = SCHEMA_VERSION
#: The release's datasets and the split each was collected from.
RELEASE_SPLITS: Final = {"nl2bash": "train", "mbpp": "test"}
#: The release's tools and the one keyword argument each takes (`tool_input` is `kwargs={...}`).
RELEASE_TOOL_ARGUMENTS: Final = {
    "bash": "command",
    "python_interpreter": "code",
    "final_answer": "answer",
}
_KWARGS_PREFIX: Final = "kwargs="


@dataclass(frozen=True)
class Violation:
    """One way a row breaks the schema, located as precisely as possible."""

    field: str
    message: str
    source: str = ""
    line: int | None = None

    def __str__(self) -> str:
        where = self.source or "<row>"
        if self.line is not None:
            where += f":{self.line}"
        return f"{where}: {self.field}: {self.message}"


def _is_int(value: object) -> TypeGuard[int]:
    """True for an int that is not a bool; a TypeGuard so a checked value compares as an int."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[float]:
    """True for a finite int or float that is not a bool."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) and math.isfinite(
        value
    )


def _check_keys(
    obj: Mapping[str, Any], expected: tuple[str, ...], where: str, strict: bool
) -> Iterator[tuple[str, str]]:
    keys = tuple(obj)
    missing = [key for key in expected if key not in obj]
    for key in missing:
        yield f"{where}.{key}" if where else key, "missing"
    if missing:
        return
    present = tuple(key for key in keys if key in expected)
    if present != expected:
        yield where or "row", f"keys out of order: {list(present)} (expected {list(expected)})"
    if strict:
        for key in keys:
            if key not in expected:
                yield f"{where}.{key}" if where else key, "not a schema 0.3.0 key (strict)"


def _check_id(value: Any, field: str) -> Iterator[tuple[str, str]]:
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        yield field, f"not a valid id: {value!r}"


def _check_span(span: Any, where: str, strict: bool) -> Iterator[tuple[str, str]]:
    if not isinstance(span, Mapping):
        yield where, f"must be an object, got {type(span).__name__}"
        return
    yield from _check_keys(span, SPAN_KEYS, where, strict)
    yield from _check_id(span.get("span_id"), f"{where}.span_id")
    if span.get("type") != "TOOL":
        yield f"{where}.type", f"must be 'TOOL', got {span.get('type')!r}"
    for key in ("tool_name", "tool_input", "tool_output"):
        if key in span and not isinstance(span[key], str):
            yield f"{where}.{key}", f"must be a string, got {type(span[key]).__name__}"
    for key in ("start_ns", "end_ns"):
        if key in span and not _is_int(span[key]):
            yield f"{where}.{key}", f"must be an integer, got {span[key]!r}"
    start, end = span.get("start_ns"), span.get("end_ns")
    if _is_int(start) and _is_int(end) and end < start:
        yield f"{where}.end_ns", "ends before it starts"
    if "duration_ms" in span and not (_is_number(span["duration_ms"]) and span["duration_ms"] >= 0):
        yield f"{where}.duration_ms", f"must be a non-negative number, got {span['duration_ms']!r}"
    if "exit_code" in span and not _is_int(span["exit_code"]):
        yield f"{where}.exit_code", f"must be an integer, got {span['exit_code']!r}"
    parent = span.get("parent_span_id")
    if parent is not None:
        yield from _check_id(parent, f"{where}.parent_span_id")
    telemetry = span.get("telemetry")
    if "telemetry" in span:
        if not isinstance(telemetry, Mapping):
            yield f"{where}.telemetry", "must be an object"
        else:
            yield from _check_keys(telemetry, TELEMETRY_FIELDS, f"{where}.telemetry", strict)
            for key in ("user_time_s", "system_time_s"):
                if key in telemetry and not (_is_number(telemetry[key]) and telemetry[key] >= 0):
                    yield f"{where}.telemetry.{key}", f"must be >= 0, got {telemetry[key]!r}"
            for key in ("max_rss_bytes", "read_bytes", "write_bytes"):
                if key in telemetry and not (_is_int(telemetry[key]) and telemetry[key] >= 0):
                    yield (
                        f"{where}.telemetry.{key}",
                        f"must be an integer >= 0, got {telemetry[key]!r}",
                    )


def _check_step(step: Any, where: str, strict: bool) -> Iterator[tuple[str, str]]:
    if not isinstance(step, Mapping):
        yield where, f"must be an object, got {type(step).__name__}"
        return
    yield from _check_keys(step, STEP_KEYS, where, strict)
    yield from _check_id(step.get("step_id"), f"{where}.step_id")
    number = step.get("step_number")
    if "step_number" in step and not (_is_int(number) and number >= 1):
        yield f"{where}.step_number", f"must be an integer >= 1, got {number!r}"
    for key in ("model_output", "reasoning_content"):
        if step.get(key) is not None and not isinstance(step[key], str):
            yield f"{where}.{key}", f"must be a string or null, got {type(step[key]).__name__}"
    duration = step.get("duration_ms")
    if duration is not None and not (_is_number(duration) and duration >= 0):
        yield f"{where}.duration_ms", f"must be a non-negative number or null, got {duration!r}"
    for key in ("input_tokens", "output_tokens"):
        value = step.get(key)
        if value is not None and not (_is_int(value) and value >= 0):
            yield f"{where}.{key}", f"must be an integer >= 0 or null, got {value!r}"
    calls = step.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list):
            yield f"{where}.tool_calls", "must be a list or null"
        else:
            for index, call in enumerate(calls):
                call_where = f"{where}.tool_calls[{index}]"
                if not isinstance(call, Mapping):
                    yield call_where, "must be an object"
                    continue
                if not isinstance(call.get("name"), str):
                    yield f"{call_where}.name", "must be a string"
                if not isinstance(call.get("arguments"), Mapping):
                    yield f"{call_where}.arguments", "must be an object"
                if strict:
                    for key in call:
                        if key not in ("name", "arguments"):
                            yield f"{call_where}.{key}", "not a schema 0.3.0 key (strict)"


def _check_metadata(metadata: Any) -> Iterator[tuple[str, str]]:
    """The structural check of `metadata`: required keys, their types, the schema version."""
    if not isinstance(metadata, Mapping):
        yield "metadata", f"must be an object, got {type(metadata).__name__}"
        return
    for key in REQUIRED_METADATA:
        if key not in metadata:
            yield f"metadata.{key}", "missing"
    if "schema_version" in metadata and metadata["schema_version"] != SCHEMA_VERSION:
        yield (
            "metadata.schema_version",
            f"must be {SCHEMA_VERSION!r}, got {metadata['schema_version']!r}",
        )
    task_id = metadata.get("task_id")
    if task_id is not None and not (_is_int(task_id) or isinstance(task_id, str)):
        yield "metadata.task_id", f"must be an integer, a string or null, got {task_id!r}"
    for key in ("collector_version", "dataset_name", "source", "run_id", "dataset_split"):
        if key in metadata and not isinstance(metadata[key], str):
            yield f"metadata.{key}", f"must be a string, got {metadata[key]!r}"


def claims_release(row: Any) -> bool:
    """Whether `row` labels itself a row of the NL2Bash / MBPP release.

    The label is the release's own: `collector_version` "0.3.0" (AgentTrace writes
    `agenttrace-<version>` there unless told otherwise) on an `nl2bash` or `mbpp` dataset.
    """
    metadata = row.get("metadata") if isinstance(row, Mapping) else None
    if not isinstance(metadata, Mapping):
        return False
    dataset = metadata.get("dataset_name")
    return (
        metadata.get("collector_version") == RELEASE_COLLECTOR_VERSION
        and isinstance(dataset, str)
        and dataset in RELEASE_SPLITS
    )


def _check_release_metadata(metadata: Any) -> Iterator[tuple[str, str]]:
    if not isinstance(metadata, Mapping):
        return  # the structural check has said so
    get = metadata.get
    if get("collector_version") != RELEASE_COLLECTOR_VERSION:
        yield (
            "metadata.collector_version",
            f"release rows carry {RELEASE_COLLECTOR_VERSION!r}, got {get('collector_version')!r}",
        )
    dataset = get("dataset_name")
    if not isinstance(dataset, str) or dataset not in RELEASE_SPLITS:
        yield (
            "metadata.dataset_name",
            f"release rows are one of {sorted(RELEASE_SPLITS)}, got {dataset!r}",
        )
    elif get("dataset_split") != RELEASE_SPLITS[dataset]:
        yield (
            "metadata.dataset_split",
            f"{dataset} release rows are split {RELEASE_SPLITS[dataset]!r}, "
            f"got {get('dataset_split')!r}",
        )
    if get("source") != dataset:
        yield "metadata.source", f"release rows have source == dataset_name, got {get('source')!r}"
    task_id = get("task_id")
    if "task_id" in metadata and (task_id is None or isinstance(task_id, str)):
        # other types the structural check has already named
        yield "metadata.task_id", f"release rows need an integer, got {task_id!r}"
    version = get("fixture_version")
    if dataset == "nl2bash" and not (isinstance(version, str) and SHA256_PATTERN.match(version)):
        yield "metadata.fixture_version", f"NL2Bash rows need the fixture's sha256, got {version!r}"


def _release_kwargs(tool_input: str) -> dict[Any, Any] | None:
    """The literal dict of a `kwargs={...}` input, or None when it is not one."""
    if not tool_input.startswith(_KWARGS_PREFIX):
        return None
    try:
        value = ast.literal_eval(tool_input[len(_KWARGS_PREFIX) :])
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _check_release_span(span: Any, where: str) -> Iterator[tuple[str, str]]:
    if not isinstance(span, Mapping):
        return
    name = span.get("tool_name")
    if not isinstance(name, str) or name not in RELEASE_TOOL_ARGUMENTS:
        yield (
            f"{where}.tool_name",
            f"release tools are {sorted(RELEASE_TOOL_ARGUMENTS)}, got {name!r}",
        )
        return
    tool_input = span.get("tool_input")
    kwargs = _release_kwargs(tool_input) if isinstance(tool_input, str) else None
    if kwargs is None:
        yield f"{where}.tool_input", "release inputs are a literal kwargs={...}"
    elif list(kwargs) != [RELEASE_TOOL_ARGUMENTS[name]]:
        expected = RELEASE_TOOL_ARGUMENTS[name]
        got = sorted(map(str, kwargs))
        yield f"{where}.tool_input", f"{name} takes exactly {expected!r}, got {got}"


def _check_release(row: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """The release's own rules, on top of the structural check."""
    yield from _check_release_metadata(row.get("metadata"))
    spans = row.get("spans")
    if isinstance(spans, list):
        for index, span in enumerate(spans):
            yield from _check_release_span(span, f"spans[{index}]")


def validate_row(
    row: Any, *, strict: bool = False, profile: str = PROFILE_DEFAULT
) -> list[Violation]:
    """Every way `row` breaks schema 0.3.0 (empty when it is valid).

    The default profile checks structure, types and ids, and holds rows that claim to be release
    rows (`claims_release`) to the release's rules too; `profile="release"` holds every row to
    them. `strict`, with either profile, also rejects keys the schema does not name (AgentTrace's
    extensions).
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown validation profile {profile!r}: use one of {PROFILES}")
    problems: list[tuple[str, str]] = []
    if not isinstance(row, Mapping):
        return [Violation("row", f"must be a JSON object, got {type(row).__name__}")]
    problems.extend(_check_keys(row, ROW_KEYS, "", strict))
    problems.extend(_check_id(row.get("trace_id"), "trace_id"))
    if "timestamp_utc" in row and not isinstance(row["timestamp_utc"], str):
        problems.append(("timestamp_utc", "must be an ISO-8601 string"))
    for key in ("prompt", "model"):
        if key in row and not isinstance(row[key], str):
            problems.append((key, f"must be a string, got {type(row[key]).__name__}"))
    duration = row.get("total_duration_ms")
    if "total_duration_ms" in row and not (_is_number(duration) and duration >= 0):
        problems.append(("total_duration_ms", f"must be a non-negative number, got {duration!r}"))
    spans = row.get("spans")
    if "spans" in row:
        if not isinstance(spans, list):
            problems.append(("spans", "must be a list"))
        else:
            seen: set[str] = set()
            for index, span in enumerate(spans):
                problems.extend(_check_span(span, f"spans[{index}]", strict))
                span_id = span.get("span_id") if isinstance(span, Mapping) else None
                if isinstance(span_id, str):
                    if span_id in seen:
                        problems.append((f"spans[{index}].span_id", f"duplicate id {span_id!r}"))
                    seen.add(span_id)
    steps = row.get("llm_steps")
    if "llm_steps" in row:
        if not isinstance(steps, list):
            problems.append(("llm_steps", "must be a list"))
        else:
            for index, step in enumerate(steps):
                problems.extend(_check_step(step, f"llm_steps[{index}]", strict))
    if "metadata" in row:
        problems.extend(_check_metadata(row["metadata"]))
    if profile == PROFILE_RELEASE or claims_release(row):
        problems.extend(_check_release(row))
    return [Violation(field, message) for field, message in problems]
