"""Analysis over AgentTrace files (ours and the published release's alike).

`load(paths)` reads JSONL or Parquet files, streaming, into three pandas DataFrames: `traces` (one
row per run), `spans` (one per tool call, telemetry flattened into columns) and `steps` (one per
model step). Text fields are kept as lengths, not text, so memory grows with the number of rows,
not with what the agents wrote.

The statistics follow the release's analysis scripts: a run's tool time is the sum of its tool
spans' durations (top-level ones, so a nested call is not counted twice), its LLM time is
estimated as the run's duration minus its tool time, and percentiles interpolate linearly between
the closest ranks (numpy's default, the release's formula).

A run is counted once, however many files hold it: rows are keyed by `trace_id`, so the JSONL and
Parquet twins of one collection (`runs/*.jsonl runs/*.parquet`) do not count it twice. Runs cut
short by the model server or by stopping the collector (`collect.failed_on_infrastructure`; the
collection runs those tasks again) are left out of the statistics, and both are counted under
`left_out`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from opentelemetry.exporter.agenttrace import iter_rows

from agenttrace.collection.collect import failed_on_infrastructure

TRACE_COLUMNS = (
    "file",
    "trace_id",
    "timestamp_utc",
    "model",
    "dataset_name",
    "task_id",
    "run_id",
    "total_duration_ms",
    "tool_time_ms",
    "llm_time_ms",
    "tool_share",
    "tool_span_count",
    "llm_step_count",
    "input_tokens",
    "output_tokens",
    "reasoning_chars",
    "prompt_chars",
    "incomplete",
    "error_type",
    "infrastructure_failure",
)
SPAN_COLUMNS = (
    "file",
    "trace_id",
    "span_id",
    "parent_span_id",
    "tool_name",
    "start_ns",
    "end_ns",
    "duration_ms",
    "exit_code",
    "user_time_s",
    "system_time_s",
    "cpu_time_s",
    "max_rss_bytes",
    "read_bytes",
    "write_bytes",
    "input_chars",
    "output_chars",
)
STEP_COLUMNS = (
    "file",
    "trace_id",
    "step_id",
    "step_number",
    "duration_ms",
    "input_tokens",
    "output_tokens",
    "reasoning_chars",
    "output_chars",
    "tool_call_count",
)


@dataclass
class Dataset:
    """The runs of one or more AgentTrace files as DataFrames, one row per `trace_id`.

    The `file` column holds the path each run was read from, as given (two files of the same name
    in different directories stay apart). `duplicates` counts the rows left out because a run
    with their `trace_id` was read already.
    """

    traces: pd.DataFrame
    spans: pd.DataFrame
    steps: pd.DataFrame
    duplicates: int = 0

    def for_file(self, path: str | os.PathLike[str]) -> Dataset:
        """The runs read from `path` (as it was given to `load`)."""
        key = os.fspath(path)
        return Dataset(
            self.traces[self.traces["file"] == key],
            self.spans[self.spans["file"] == key],
            self.steps[self.steps["file"] == key],
        )

    def without_infrastructure_failures(self) -> Dataset:
        """The runs that were not cut short by the model server or by stopping the collector."""
        failed = self.traces["infrastructure_failure"].astype(bool)
        if not failed.any():
            return self
        dropped = set(self.traces.loc[failed, "trace_id"].dropna())
        return Dataset(
            self.traces[~failed],
            self.spans[~self.spans["trace_id"].isin(dropped)],
            self.steps[~self.steps["trace_id"].isin(dropped)],
            self.duplicates,
        )


def combine(datasets: Iterable[Dataset]) -> Dataset:
    """One Dataset of several (e.g. one per file): a run in more than one keeps its first."""
    datasets = list(datasets)
    if len(datasets) == 1:
        return datasets[0]
    if not datasets:
        return _frames([], [], [])
    traces = _concat([d.traces for d in datasets], TRACE_COLUMNS)
    spans = _concat([d.spans for d in datasets], SPAN_COLUMNS)
    steps = _concat([d.steps for d in datasets], STEP_COLUMNS)
    duplicates = sum(d.duplicates for d in datasets)
    ids = traces["trace_id"].where(traces["trace_id"].map(lambda value: isinstance(value, str)))
    repeated = ids.notna() & ids.duplicated()
    if repeated.any():
        duplicates += int(repeated.sum())
        kept = ~repeated & ids.notna()
        owner = pd.Series(traces.loc[kept, "file"].to_numpy(), index=ids[kept].to_numpy())
        traces = traces[~repeated].reset_index(drop=True)
        spans = _owned_by(spans, owner)
        steps = _owned_by(steps, owner)
    return Dataset(traces, spans, steps, duplicates)


def _concat(frames: list[pd.DataFrame], columns: tuple[str, ...]) -> pd.DataFrame:
    frames = [frame for frame in frames if not frame.empty]
    if not frames:
        return pd.DataFrame([], columns=list(columns))
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _owned_by(frame: pd.DataFrame, owner: pd.Series) -> pd.DataFrame:
    """The rows of `frame` (spans or steps) that belong to the file their run was kept from."""
    owners = frame["trace_id"].map(
        lambda value: owner.get(value) if isinstance(value, str) else None
    )
    keep = owners.isna() | (frame["file"] == owners)
    return frame[keep].reset_index(drop=True)


def _frames(traces: list[Any], spans: list[Any], steps: list[Any], duplicates: int = 0) -> Dataset:
    return Dataset(
        pd.DataFrame(traces, columns=list(TRACE_COLUMNS)),
        pd.DataFrame(spans, columns=list(SPAN_COLUMNS)),
        pd.DataFrame(steps, columns=list(STEP_COLUMNS)),
        duplicates,
    )


def _length(value: Any) -> int:
    return len(value) if isinstance(value, str) else 0


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _optional_int(value: Any) -> float:
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else math.nan


def load(
    paths: Iterable[str | os.PathLike[str]], *, progress: Callable[[int], None] | None = None
) -> Dataset:
    """Read AgentTrace JSONL/Parquet files into `traces`, `spans` and `steps` DataFrames.

    A run is kept once, from the first file (and line) that holds its `trace_id`. `progress` is
    called with the bytes (JSONL) or rows (Parquet) read, as the readers go.
    """
    return combine(load_file(path, progress=progress) for path in paths)


def load_file(
    path: str | os.PathLike[str], *, progress: Callable[[int], None] | None = None
) -> Dataset:
    """One AgentTrace file as a Dataset (see `load`); its `file` column is `path`, as given."""
    traces: list[tuple[Any, ...]] = []
    spans: list[tuple[Any, ...]] = []
    steps: list[tuple[Any, ...]] = []
    seen: set[Any] = set()
    duplicates = 0
    name = os.fspath(path)
    for _, row in iter_rows(path, progress=progress):
        trace_id = row.get("trace_id")
        if isinstance(trace_id, str):
            if trace_id in seen:
                duplicates += 1
                continue
            seen.add(trace_id)
        _add_row(name, row, traces, spans, steps)
    return _frames(traces, spans, steps, duplicates)


def _add_row(
    name: str,
    row: dict[str, Any],
    traces: list[tuple[Any, ...]],
    spans: list[tuple[Any, ...]],
    steps: list[tuple[Any, ...]],
) -> None:
    """Append one row's run, tool calls and model steps to the three tables."""
    trace_id = row.get("trace_id")
    metadata = row.get("metadata") or {}
    row_spans = [s for s in row.get("spans") or [] if isinstance(s, dict)]
    row_steps = [s for s in row.get("llm_steps") or [] if isinstance(s, dict)]
    for span in row_spans:
        telemetry = span.get("telemetry") or {}
        user, system = (
            _number(telemetry.get("user_time_s")),
            _number(telemetry.get("system_time_s")),
        )
        spans.append(
            (
                name,
                trace_id,
                span.get("span_id"),
                span.get("parent_span_id"),
                span.get("tool_name"),
                span.get("start_ns"),
                span.get("end_ns"),
                _number(span.get("duration_ms")),
                int(_number(span.get("exit_code"))),
                user,
                system,
                user + system,
                _number(telemetry.get("max_rss_bytes")),
                _number(telemetry.get("read_bytes")),
                _number(telemetry.get("write_bytes")),
                _length(span.get("tool_input")),
                _length(span.get("tool_output")),
            )
        )
    input_tokens = output_tokens = 0.0
    reasoning_chars = 0
    for step in row_steps:
        step_in = _optional_int(step.get("input_tokens"))
        step_out = _optional_int(step.get("output_tokens"))
        reasoning = _length(step.get("reasoning_content"))
        input_tokens += 0 if math.isnan(step_in) else step_in
        output_tokens += 0 if math.isnan(step_out) else step_out
        reasoning_chars += reasoning
        steps.append(
            (
                name,
                trace_id,
                step.get("step_id"),
                step.get("step_number"),
                _number(step.get("duration_ms"))
                if step.get("duration_ms") is not None
                else math.nan,
                step_in,
                step_out,
                reasoning,
                _length(step.get("model_output")),
                len(step.get("tool_calls") or []),
            )
        )
    total = _number(row.get("total_duration_ms"))
    tool_time = sum(_number(s.get("duration_ms")) for s in row_spans if not s.get("parent_span_id"))
    task_id = metadata.get("task_id")
    error_type = metadata.get("error_type")
    traces.append(
        (
            name,
            trace_id,
            row.get("timestamp_utc"),
            row.get("model"),
            metadata.get("dataset_name"),
            task_id if isinstance(task_id, int) else None,
            metadata.get("run_id"),
            total,
            tool_time,
            total - tool_time,
            tool_time / total if total > 0 else math.nan,
            len(row_spans),
            len(row_steps),
            input_tokens,
            output_tokens,
            reasoning_chars,
            _length(row.get("prompt")),
            bool(metadata.get("incomplete", False)),
            error_type if isinstance(error_type, str) else None,
            failed_on_infrastructure(metadata),
        )
    )


def percentiles(values: Iterable[float]) -> dict[str, float | None]:
    """min, median, p95, max (linear interpolation between closest ranks), mean, count."""
    series = pd.Series(list(values), dtype="float64").dropna()
    if series.empty:
        return {"count": 0, "min": None, "median": None, "mean": None, "p95": None, "max": None}
    return {
        "count": int(series.size),
        "min": float(series.min()),
        "median": float(series.quantile(0.5, interpolation="linear")),
        "mean": float(series.mean()),
        "p95": float(series.quantile(0.95, interpolation="linear")),
        "max": float(series.max()),
    }


def _correlation(x: pd.Series, y: pd.Series) -> float | None:
    pairs = pd.DataFrame({"x": x, "y": y}).dropna()
    if len(pairs) < 2 or pairs["x"].std() == 0 or pairs["y"].std() == 0:
        return None
    return float(pairs["x"].corr(pairs["y"]))


def analyze(data: Dataset) -> dict[str, Any]:
    """Every statistic `agenttrace analyze` reports, as plain data.

    Runs cut short by the model server or by stopping the collector are left out (resume runs
    those tasks again, and the new run is the one that counts); `left_out` says how many, and how
    many rows repeated a run already read.
    """
    finished = data.without_infrastructure_failures()
    left_out = {
        "duplicate_rows": data.duplicates,
        "infrastructure_failures": len(data.traces) - len(finished.traces),
    }
    traces, spans, steps = finished.traces, finished.spans, finished.steps
    total_ms = float(traces["total_duration_ms"].sum())
    tool_ms = float(traces["tool_time_ms"].sum())
    llm_ms = total_ms - tool_ms
    tools: dict[str, Any] = {}
    for name, group in spans.groupby("tool_name", sort=True):
        tools[str(name)] = {
            "count": int(len(group)),
            "total_s": float(group["duration_ms"].sum()) / 1000,
            "failures": int((group["exit_code"] != 0).sum()),
            "failure_rate": float((group["exit_code"] != 0).mean()),
            "exit_codes": {
                str(k): int(v) for k, v in group["exit_code"].value_counts().sort_index().items()
            },
            "duration_ms": percentiles(group["duration_ms"]),
            "cpu_time_s": percentiles(group["cpu_time_s"]),
            "max_rss_mib": percentiles(group["max_rss_bytes"] / 2**20),
            "read_mib": percentiles(group["read_bytes"] / 2**20),
            "write_mib": percentiles(group["write_bytes"] / 2**20),
        }
    by_count = sorted(tools, key=lambda t: (-tools[t]["count"], t))
    by_time = sorted(tools, key=lambda t: (-tools[t]["total_s"], t))
    return {
        "counts": {
            "traces": int(len(traces)),
            "llm_steps": int(len(steps)),
            "tool_spans": int(len(spans)),
            "incomplete_traces": int(traces["incomplete"].sum()) if len(traces) else 0,
        },
        "left_out": left_out,
        "time_breakdown": {
            "total_s": total_ms / 1000,
            "tool_s": tool_ms / 1000,
            "llm_s_estimated": llm_ms / 1000,
            "tool_pct": 100 * tool_ms / total_ms if total_ms else None,
            "llm_pct": 100 * llm_ms / total_ms if total_ms else None,
        },
        "tool_share_per_trace_pct": percentiles(traces["tool_share"] * 100),
        "tools_by_count": [(t, tools[t]["count"]) for t in by_count],
        "tools_by_time_s": [(t, tools[t]["total_s"]) for t in by_time],
        "tools": tools,
        "steps_per_trace": percentiles(traces["llm_step_count"]),
        "tool_calls_per_trace": percentiles(traces["tool_span_count"]),
        "tokens": {
            "input_total": float(steps["input_tokens"].sum()),
            "output_total": float(steps["output_tokens"].sum()),
            "input_per_step": percentiles(steps["input_tokens"]),
            "output_per_step": percentiles(steps["output_tokens"]),
            "steps_with_usage": int(steps["output_tokens"].notna().sum()),
            "reasoning_chars_per_step": percentiles(steps["reasoning_chars"]),
            "reasoning_chars_vs_output_tokens_pearson": _correlation(
                steps["reasoning_chars"].astype("float64"), steps["output_tokens"]
            ),
        },
        "failures": {
            "tool_calls_failed": int((spans["exit_code"] != 0).sum()),
            "rate": float((spans["exit_code"] != 0).mean()) if len(spans) else None,
            "by_exit_code": {
                str(k): int(v) for k, v in spans["exit_code"].value_counts().sort_index().items()
            },
        },
    }
