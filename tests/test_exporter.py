"""The AgentTrace exporter and processor: rows from spans, any order, incomplete runs, durability."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from opentelemetry import trace
from opentelemetry.exporter.agenttrace import (
    AgentTraceSpanExporter,
    AgentTraceSpanProcessor,
    read_rows,
    validate_row,
)
from opentelemetry.exporter.agenttrace._assembler import TraceAssembler
from opentelemetry.exporter.agenttrace.files import partial_path
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

import agenttrace

METADATA = {"dataset_name": "mbpp", "source": "tests", "dataset_split": "test"}


def _agent():
    @agenttrace.tool(name="bash")
    def bash(command: str) -> str:
        return agenttrace.tools.run(["bash", "-c", command], capture_output=True, text=True).stdout

    @agenttrace.tool(name="python_interpreter")
    def python_interpreter(code: str) -> str:
        return str(eval(code))  # noqa: S307 - test input

    @agenttrace.llm(model="qwen3-8b")
    def step(messages: list, call: str) -> dict:
        return {
            "model": "qwen3-8b",
            "choices": [
                {
                    "finish_reason": "tool_calls",
                    "message": {
                        "content": "using a tool",
                        "reasoning_content": "think first",
                        "tool_calls": [
                            {
                                "id": call,
                                "function": {"name": "bash", "arguments": '{"command": "echo hi"}'},
                            }
                        ],
                    },
                }
            ],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7},
        }

    @agenttrace.agent(name="tester", metadata=METADATA)
    def run(prompt: str, task_id: int) -> str:
        agenttrace.set_run_metadata(task_id=task_id, run_id=f"run-{task_id}")
        step([{"role": "user", "content": prompt}], "call_1")
        with agenttrace.using_call_id("call_1"):
            out = bash(command="echo hi")
        python_interpreter(code="6 * 7")
        return out

    return run


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_processor_writes_the_row_before_the_call_returns(configure_spans, tmp_path) -> None:
    out = tmp_path / "runs.jsonl"
    processor = AgentTraceSpanProcessor(out)
    configure_spans(span_processors=[processor])
    run = _agent()
    run("say hi", 5)
    rows = _lines(out)  # no flush, no shutdown: the line is already in the file
    assert len(rows) == 1
    row = rows[0]
    assert list(row) == [
        "trace_id",
        "timestamp_utc",
        "prompt",
        "model",
        "spans",
        "llm_steps",
        "total_duration_ms",
        "metadata",
    ]
    assert validate_row(row) == []
    assert row["prompt"] == "say hi" and row["model"] == "qwen3-8b"
    assert [s["tool_name"] for s in row["spans"]] == ["bash", "python_interpreter"]
    bash, python = row["spans"]
    assert bash["tool_input"] == "kwargs={'command': 'echo hi'}"
    assert bash["tool_output"] == "hi\n" and bash["exit_code"] == 0
    assert bash["tool_call_id"] == "call_1" and bash["parent_span_id"] is None
    assert python["tool_output"] == "42"
    assert bash["telemetry"]["user_time_s"] >= 0 and bash["telemetry"]["max_rss_bytes"] > 0
    assert bash["duration_ms"] == pytest.approx((bash["end_ns"] - bash["start_ns"]) / 1e6)
    assert bash["start_ns"] > 1_700_000_000 * 10**9  # epoch nanoseconds
    (step,) = row["llm_steps"]
    assert step["step_number"] == 1
    assert step["model_output"] == "using a tool" and step["reasoning_content"] == "think first"
    assert step["tool_calls"] == [
        {"name": "bash", "arguments": {"command": "echo hi"}, "id": "call_1"}
    ]
    assert (step["input_tokens"], step["output_tokens"]) == (11, 7)
    metadata = row["metadata"]
    assert metadata["schema_version"] == "0.3.0"
    assert metadata["task_id"] == 5 and metadata["run_id"] == "run-5"
    assert metadata["dataset_name"] == "mbpp" and metadata["telemetry_method"] == "precise"
    assert metadata["collector_version"].startswith("agenttrace-")
    assert "cpu_model" in metadata["hardware"] and "os.type" in metadata["platform"]
    assert len(row["trace_id"]) == 32 and len(bash["span_id"]) == 16
    assert row["timestamp_utc"].endswith("+00:00")
    assert processor.stats.rows == 1 and processor.stats.dropped_spans == 0


def test_strict_rows_are_pure_schema_0_3_0(configure_spans, tmp_path) -> None:
    out = tmp_path / "strict.jsonl"
    configure_spans(span_processors=[AgentTraceSpanProcessor(out, strict=True, parquet=False)])
    _agent()("x", 1)
    (row,) = _lines(out)
    assert validate_row(row, strict=True) == []
    assert "tool_call_id" not in row["spans"][0] and "start_ns" not in row["llm_steps"][0]


def _record_spans(configure_spans) -> list:
    spans = configure_spans()
    run = _agent()
    run("one", 1)
    run("two", 2)
    return spans.all()


def test_exporter_assembles_spans_in_any_order_and_across_batches(
    configure_spans, tmp_path
) -> None:
    finished = _record_spans(configure_spans)
    assert len(finished) == 8
    reference = tmp_path / "reference.jsonl"
    exporter = AgentTraceSpanExporter(reference, parquet=False)
    exporter.export(finished)
    exporter.shutdown()
    expected = {r["trace_id"]: r for r in _lines(reference)}
    assert len(expected) == 2
    for seed in range(5):
        shuffled = list(finished)
        random.Random(seed).shuffle(shuffled)
        out = tmp_path / f"shuffled-{seed}.jsonl"
        exporter = AgentTraceSpanExporter(out, parquet=False)
        for start in range(0, len(shuffled), 3):  # batches of 3
            exporter.export(shuffled[start : start + 3])
        # every run is whole before shutdown: the root says how many spans to wait for
        assert exporter.stats.rows == 2 and exporter.stats.incomplete_rows == 0
        exporter.shutdown()
        assert {r["trace_id"]: r for r in _lines(out)} == expected


def test_a_row_being_written_holds_up_no_other_thread(configure_spans) -> None:
    """Rows are built and written outside the assembler's lock: while one thread's row is stuck
    in the sink, another thread's run goes through, and shutdown waits for the stuck row."""
    finished = _record_spans(configure_spans)
    by_trace: dict[int, list] = {}
    for span in sorted(finished, key=lambda s: s.end_time):
        by_trace.setdefault(span.context.trace_id, []).append(span)
    first, second = by_trace.values()
    entered, release = threading.Event(), threading.Event()
    written: list[str] = []

    def sink(row: dict) -> None:
        if row["trace_id"] == format(first[0].context.trace_id, "032x"):
            entered.set()
            assert release.wait(10)
        written.append(row["trace_id"])

    assembler = TraceAssembler(sink)

    def feed(spans: list) -> None:
        for span in spans:
            assembler.on_end(span)

    stuck = threading.Thread(target=feed, args=(first,))
    stuck.start()
    assert entered.wait(10)
    other = threading.Thread(target=feed, args=(second,))
    other.start()
    other.join(5)
    assert not other.is_alive(), "a run waited for another thread's row"
    assert written == [format(second[0].context.trace_id, "032x")]
    closing = threading.Thread(target=assembler.finish_all)
    closing.start()
    closing.join(0.3)
    assert closing.is_alive(), "shutdown did not wait for the row still being written"
    release.set()
    for thread in (stuck, closing):
        thread.join(10)
    assert len(written) == 2 and assembler.stats.rows == 2


def test_a_child_forked_while_a_row_is_written_shuts_down_at_once(configure_spans) -> None:
    """The thread writing the row does not exist in the child: its shutdown must not wait."""
    finished = sorted(_record_spans(configure_spans), key=lambda s: s.end_time)
    entered, release = threading.Event(), threading.Event()

    def sink(row: dict) -> None:
        entered.set()
        release.wait(10)

    assembler = TraceAssembler(sink)

    def feed() -> None:
        for span in finished:
            assembler.on_end(span)

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        assert entered.wait(10)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads running
            child = os.fork()
        if child == 0:  # pragma: no cover - the child's outcome is its exit status
            done = threading.Thread(target=assembler.finish_all, daemon=True)
            done.start()
            done.join(5)
            os._exit(1 if done.is_alive() else 0)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        release.set()
        writer.join(10)


def test_root_that_never_ends_becomes_an_incomplete_row(configure_spans, tmp_path) -> None:
    out = tmp_path / "open.jsonl"
    processor = AgentTraceSpanProcessor(out, parquet=False)
    configure_spans(span_processors=[processor])

    @agenttrace.tool
    def work() -> str:
        return "done"

    run = agenttrace.agent_run("stuck", prompt="never ends", task_id=9, **METADATA)
    with run:
        work()
        assert out.read_text() == ""  # the run is still open
        processor.shutdown()  # e.g. the process exits while a run is in flight
    (row,) = _lines(out)
    assert row["metadata"]["incomplete"] is True
    assert row["prompt"] == "never ends" and [s["tool_name"] for s in row["spans"]] == ["work"]
    assert processor.stats.incomplete_rows == 1


def test_exporter_without_root_writes_children_as_incomplete(configure_spans, tmp_path) -> None:
    finished = _record_spans(configure_spans)
    children = [s for s in finished if not s.name.startswith("invoke_agent")]
    out = tmp_path / "orphans.jsonl"
    exporter = AgentTraceSpanExporter(out, parquet=False)
    exporter.export(children)
    assert exporter.stats.rows == 0
    exporter.shutdown()
    rows = _lines(out)
    assert len(rows) == 2 and all(r["metadata"]["incomplete"] for r in rows)
    assert sorted(len(r["spans"]) for r in rows) == [2, 2]


def test_foreign_spans_are_ignored_and_genai_spans_of_others_converted(tmp_path) -> None:
    out = tmp_path / "mixed.jsonl"
    provider = TracerProvider()
    processor = AgentTraceSpanProcessor(out, parquet=False)
    provider.add_span_processor(processor)
    other = provider.get_tracer("some.other.instrumentation")
    # A run built entirely by hand with GenAI keys, plus an HTTP client span inside a tool.
    with other.start_as_current_span(
        "invoke_agent planner",
        attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"},
    ):
        with other.start_as_current_span(
            "chat gpt-4o",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": 5,
                "gen_ai.usage.output_tokens": 2,
            },
        ):
            pass
        with (
            other.start_as_current_span(
                "execute_tool search",
                attributes={
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "search",
                    "gen_ai.tool.call.arguments": '{"q": "otel"}',
                    "gen_ai.tool.call.result": "3 hits",
                },
            ),
            other.start_as_current_span(
                "GET", kind=SpanKind.CLIENT, attributes={"http.request.method": "GET"}
            ),
        ):
            pass
    # A trace with no agent in it at all.
    with other.start_as_current_span("GET /health", kind=SpanKind.SERVER):
        pass
    (row,) = _lines(out)
    assert row["model"] == "gpt-4o"
    assert [s["tool_name"] for s in row["spans"]] == ["search"]
    assert row["spans"][0]["tool_input"] == "kwargs={'q': 'otel'}"
    assert row["spans"][0]["tool_output"] == "3 hits"
    assert row["llm_steps"][0]["input_tokens"] == 5
    assert row["metadata"]["agent_name"] == "planner"
    assert processor.stats.ignored_spans == 1  # the health check, dropped without error
    provider.shutdown()


def test_nested_tool_calls_name_their_enclosing_tool(configure_spans, tmp_path) -> None:
    out = tmp_path / "nested.jsonl"
    configure_spans(span_processors=[AgentTraceSpanProcessor(out, parquet=False)])

    @agenttrace.tool
    def inner() -> str:
        return "in"

    @agenttrace.tool
    def outer() -> str:
        return inner()

    @agenttrace.agent(metadata=METADATA)
    def run() -> str:
        return outer()

    run()
    (row,) = _lines(out)
    by_name = {s["tool_name"]: s for s in row["spans"]}
    assert by_name["outer"]["parent_span_id"] is None
    assert by_name["inner"]["parent_span_id"] == by_name["outer"]["span_id"]


def test_nested_agent_runs_stay_in_their_outer_row(configure_spans, tmp_path) -> None:
    out = tmp_path / "subagent.jsonl"
    configure_spans(span_processors=[AgentTraceSpanProcessor(out, parquet=False)])

    @agenttrace.tool
    def leaf() -> str:
        return "leaf"

    @agenttrace.agent
    def sub() -> str:
        return leaf()

    @agenttrace.agent(metadata=METADATA)
    def main() -> str:
        return sub()

    main()
    (row,) = _lines(out)
    assert [s["tool_name"] for s in row["spans"]] == ["leaf"]


def test_parquet_twin_is_written_at_shutdown(configure_spans, tmp_path) -> None:
    import pandas as pd

    out = tmp_path / "runs.jsonl"
    processor = AgentTraceSpanProcessor(out)
    configure_spans(span_processors=[processor])
    run = _agent()
    for task_id in range(3):
        run("p", task_id)
    parquet_path = out.with_suffix(".parquet")
    assert not parquet_path.exists() and partial_path(parquet_path).exists()
    processor.shutdown()
    assert parquet_path.exists() and not partial_path(parquet_path).exists()
    frame = pd.read_parquet(parquet_path)
    assert list(frame.columns) == [
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
    ]
    assert str(frame["task_id"].dtype) == "int64"
    assert frame["task_id"].tolist() == [0, 1, 2]
    assert frame["tool_span_count"].tolist() == [2, 2, 2]
    assert set(frame["raw_file"]) == {"runs.jsonl"}
    assert list(read_rows(parquet_path)) == _lines(out)
    assert pq.ParquetFile(parquet_path).metadata.num_rows == 3


def test_memory_is_bounded_by_evicting_the_oldest_run(configure_spans, tmp_path) -> None:
    out = tmp_path / "bounded.jsonl"
    processor = AgentTraceSpanProcessor(out, parquet=False, max_spans=5)
    configure_spans(span_processors=[processor])

    @agenttrace.tool
    def t(i: int) -> int:
        return i

    with agenttrace.agent_run("long", **METADATA):
        for i in range(12):
            t(i)
    assert processor._assembler.buffered_spans <= 5  # never more than the bound
    processor.shutdown()
    rows = _lines(out)
    assert processor.stats.incomplete_rows >= 2  # the run, split under memory pressure
    assert all(r["metadata"]["incomplete"] for r in rows)
    assert sum(len(r["spans"]) for r in rows) == 12  # evicted, never lost
    assert processor._assembler.buffered_spans == 0


def test_processor_loses_nothing_in_a_burst(configure_spans, tmp_path) -> None:
    out = tmp_path / "burst.jsonl"
    processor = AgentTraceSpanProcessor(out, parquet=False)
    configure_spans(span_processors=[processor])
    tracer = trace.get_tracer("burst")
    runs, tools_per_run = 200, 49
    for _ in range(runs):
        with tracer.start_as_current_span(
            "invoke_agent burst", attributes={"gen_ai.operation.name": "invoke_agent"}
        ):
            for _ in range(tools_per_run):
                with tracer.start_as_current_span(
                    "execute_tool t",
                    attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "t"},
                ):
                    pass
    rows = _lines(out)
    assert len(rows) == runs
    assert sum(len(r["spans"]) for r in rows) == runs * tools_per_run
    assert processor.stats.dropped_spans == 0


KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time, agenttrace
    from opentelemetry.exporter.agenttrace import AgentTraceSpanProcessor
    agenttrace.configure(span_processors=[AgentTraceSpanProcessor(sys.argv[1])])

    @agenttrace.tool
    def work(i):
        return "x" * 5000

    @agenttrace.agent(metadata={"dataset_name": "mbpp", "source": "t", "dataset_split": "t"})
    def run(i):
        agenttrace.set_run_metadata(task_id=i, run_id=f"r{i}")
        for j in range(3):
            work(j)
        if i == 5:
            print("in-flight", flush=True)
            time.sleep(60)

    for i in range(10):
        run(i)
    """
)


def test_kill_9_keeps_every_finished_row_and_no_torn_line(tmp_path) -> None:
    out = tmp_path / "killed.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "in-flight"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    data = out.read_bytes()
    assert data.endswith(b"\n")
    rows = _lines(out)
    assert [r["metadata"]["task_id"] for r in rows] == [0, 1, 2, 3, 4]
    assert all(validate_row(r) == [] for r in rows)
    parquet_path = out.with_suffix(".parquet")
    assert not parquet_path.exists()  # absent, never half-written


def test_exporter_never_raises_into_the_sdk(tmp_path) -> None:
    out = tmp_path / "ro" / "runs.jsonl"
    exporter = AgentTraceSpanExporter(out, parquet=False)
    exporter.files._jsonl.close()  # the file is gone from under it (e.g. disk trouble)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span(
        "invoke_agent x", attributes={"gen_ai.operation.name": "invoke_agent"}
    ):
        pass
    assert exporter.stats.dropped_spans == 1
    assert exporter.export([]).name == "SUCCESS"
    exporter.shutdown()
    assert exporter.export([]).name == "FAILURE"


def test_the_exporter_leaves_other_batch_processors_alone(tmp_path, monkeypatch) -> None:
    """Building the exporter changes no process-wide setting: a BatchSpanProcessor built after it
    (for another exporter) keeps the SDK's default queue instead of a million spans."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    monkeypatch.delenv("OTEL_BSP_MAX_QUEUE_SIZE", raising=False)
    before = dict(os.environ)
    exporter = AgentTraceSpanExporter(tmp_path / "q.jsonl", parquet=False)
    other = BatchSpanProcessor(InMemorySpanExporter())
    try:
        assert dict(os.environ) == before
        assert other._batch_processor._max_queue_size == 2048  # the SDK's default, untouched
    finally:
        other.shutdown()
        exporter.shutdown()


def test_zero_code_configurator_puts_our_processor_only_in_front_of_our_exporter(tmp_path) -> None:
    from opentelemetry.exporter.agenttrace.configurator import export_span_processor
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    ours = AgentTraceSpanExporter(tmp_path / "c.jsonl", parquet=False, strict=True)
    processor = export_span_processor(ours)
    other = export_span_processor(InMemorySpanExporter())
    try:
        assert isinstance(processor, AgentTraceSpanProcessor)
        assert processor.files is ours.files and processor._strict is True
        assert isinstance(other, BatchSpanProcessor)
    finally:
        other.shutdown()
        processor.shutdown()


def test_without_pyarrow_jsonl_only_and_one_warning(tmp_path, monkeypatch, caplog) -> None:
    from opentelemetry.exporter.agenttrace import exporter as exporter_module

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # `import pyarrow` now fails
    monkeypatch.setattr(exporter_module, "_warned_no_pyarrow", False)
    monkeypatch.delenv("AGENTTRACE_FORMAT", raising=False)
    with caplog.at_level("WARNING"):
        first = AgentTraceSpanProcessor(tmp_path / "a.jsonl")
        second = AgentTraceSpanProcessor(tmp_path / "b.jsonl")
    first.shutdown()
    second.shutdown()
    assert first.files.parquet_path is None and second.files.parquet_path is None
    warnings = [r for r in caplog.records if "pyarrow" in r.getMessage()]
    assert len(warnings) == 1 and "[parquet]" in warnings[0].getMessage()
    assert (tmp_path / "a.jsonl").exists() and not (tmp_path / "a.parquet").exists()
    with pytest.raises(ImportError, match=r"opentelemetry-exporter-agenttrace\[parquet\]"):
        AgentTraceSpanProcessor(tmp_path / "c.jsonl", parquet=True)  # asked for in code: an error


SIGTERM_SCRIPT = textwrap.dedent(
    """
    import sys, time, agenttrace
    agenttrace.configure(output=sys.argv[1])

    @agenttrace.tool
    def work(i):
        return i

    @agenttrace.agent(metadata={"dataset_name": "mbpp", "source": "t", "dataset_split": "t"})
    def run(i):
        agenttrace.set_run_metadata(task_id=i, run_id=f"r{i}")
        work(i)
        if i == 2:
            print("in-flight", flush=True)
            time.sleep(60)

    for i in range(5):
        run(i)
    """
)


def test_sigterm_writes_open_runs_as_incomplete_and_finishes_parquet(tmp_path) -> None:
    out = tmp_path / "runs.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTTRACE_"))}
    process = subprocess.Popen(
        [sys.executable, "-c", SIGTERM_SCRIPT, str(out)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "in-flight"
        assert len(_lines(out)) == 2  # runs 0 and 1 were on disk the moment they ended
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == -signal.SIGTERM
    finally:
        if process.poll() is None:
            process.kill()
    rows = _lines(out)
    assert [r["metadata"]["task_id"] for r in rows] == [0, 1, 2]
    # SIGTERM writes the run in flight as an incomplete row, with the tool call it finished
    assert rows[2]["metadata"]["incomplete"] is True
    assert [s["tool_name"] for s in rows[2]["spans"]] == ["work"]
    assert list(read_rows(out.with_suffix(".parquet"))) == rows


ZERO_CODE_APP = textwrap.dedent(
    """
    import agenttrace  # decorators only: no configure(), the SDK is set up by opentelemetry-instrument

    @agenttrace.tool(name="bash")
    def bash(command):
        return agenttrace.tools.run(["bash", "-c", command], capture_output=True, text=True).stdout

    @agenttrace.agent(name="zero", metadata={"dataset_name": "nl2bash", "source": "t",
                                              "dataset_split": "train", "fixture_version": "0" * 64})
    def run(i):
        agenttrace.set_run_metadata(task_id=i, run_id="zc")
        return bash(command=f"echo {i}")

    import os
    out = os.environ["AGENTTRACE_OUTPUT"]
    for i in range(3):
        run(i)
        # our synchronous processor, not a BatchSpanProcessor: the row is there when run() returns
        with open(out) as file:
            assert len(file.readlines()) == i + 1, "row not written when the run ended"
    assert "OTEL_BSP_MAX_QUEUE_SIZE" not in os.environ  # nothing process-wide was changed
    """
)


def test_zero_code_entry_point(tmp_path) -> None:
    from importlib.metadata import entry_points

    (entry,) = [
        e for e in entry_points(group="opentelemetry_traces_exporter") if e.name == "agenttrace"
    ]
    assert entry.load() is AgentTraceSpanExporter
    (configurator,) = [
        e for e in entry_points(group="opentelemetry_configurator") if e.name == "agenttrace"
    ]
    app = tmp_path / "app.py"
    app.write_text(ZERO_CODE_APP)
    out = tmp_path / "zero.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTTRACE_"))}
    env.update(
        OTEL_TRACES_EXPORTER="agenttrace",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        AGENTTRACE_OUTPUT=str(out),
        AGENTTRACE_FORMAT="jsonl,parquet",
        # Only one configurator runs; with opentelemetry-distro installed too, this picks ours.
        OTEL_PYTHON_CONFIGURATOR=configurator.name,
    )
    instrument = Path(sys.executable).with_name("opentelemetry-instrument")
    result = subprocess.run(
        [str(instrument), sys.executable, str(app)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    rows = _lines(out)
    assert [r["spans"][0]["tool_output"] for r in rows] == ["0\n", "1\n", "2\n"]
    assert all(validate_row(r) == [] for r in rows)
    assert list(read_rows(out.with_suffix(".parquet"))) == rows


def test_hugging_face_datasets_and_pandas_load_our_files(
    configure_spans, tmp_path, monkeypatch
) -> None:
    import pandas as pd

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from datasets import load_dataset

    out = tmp_path / "runs.jsonl"
    processor = AgentTraceSpanProcessor(out)
    configure_spans(span_processors=[processor])
    run = _agent()
    run("first", 1)

    @agenttrace.tool
    def broken(x: int) -> None:
        raise ValueError("nope")

    @agenttrace.agent(metadata=METADATA)
    def failing(prompt: str) -> None:
        agenttrace.set_run_metadata(task_id=2, run_id="r2", extra={"nested": [1, 2]})
        with contextlib.suppress(ValueError):
            broken(1)

    failing("second")  # no model step at all, a failed tool
    run("third", 3)
    processor.shutdown()
    cache = str(tmp_path / "hf-cache")
    rows = load_dataset("json", data_files=str(out), cache_dir=cache)["train"]
    assert rows.num_rows == 3 and rows[1]["llm_steps"] == []
    assert rows[1]["spans"][0]["exit_code"] == 1
    assert rows[1]["metadata"]["extra"] == {
        "nested": [1, 2]
    }  # structured metadata stays structured
    assert rows[0]["spans"][0]["telemetry"]["max_rss_bytes"] > 0
    flat = load_dataset("parquet", data_files=str(out.with_suffix(".parquet")), cache_dir=cache)[
        "train"
    ]
    assert flat["task_id"] == [1, 2, 3]
    assert json.loads(flat[2]["spans_json"])[0]["tool_name"] == "bash"
    frame = pd.read_json(out, lines=True)
    assert list(frame["prompt"]) == ["first", "second", "third"]


BUSY_SCRIPT = textwrap.dedent(
    """
    import sys, agenttrace
    agenttrace.configure(output=sys.argv[1])

    @agenttrace.tool
    def t(x):
        return "y" * 20000

    @agenttrace.agent(metadata={"dataset_name": "mbpp", "source": "t", "dataset_split": "t",
                                "task_id": 0, "run_id": "r"})
    def run(prompt):
        for i in range(20):
            t(i)
        return "done" * 1000

    print("ready", flush=True)
    while True:
        run("go")
    """
)


def test_sigterm_while_rows_are_being_written_never_hangs(tmp_path) -> None:
    import random

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTTRACE_"))}
    for attempt in range(6):
        out = tmp_path / f"busy{attempt}.jsonl"
        process = subprocess.Popen(
            [sys.executable, "-c", BUSY_SCRIPT, str(out)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None and process.stdout.readline().strip() == "ready"
            time.sleep(random.Random(attempt).uniform(0.2, 0.6))
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == -signal.SIGTERM
        finally:
            if process.poll() is None:
                process.kill()
        rows = _lines(out)  # every line whole and valid
        assert rows and all(validate_row(r) == [] for r in rows)


@pytest.mark.parametrize(
    ("raw", "on"),
    [("", False), ("0", False), ("off", False), ("1", True), ("TRUE", True), ("y", True)],
)
def test_the_exporters_switches_read_the_environment_as_agenttrace_does(
    monkeypatch, raw: str, on: bool
) -> None:
    from opentelemetry.exporter.agenttrace.exporter import _env_flag

    from agenttrace import _settings

    monkeypatch.setenv("AGENTTRACE_STRICT", raw)
    monkeypatch.setenv("AGENTTRACE_REDACT", raw)
    assert _env_flag("AGENTTRACE_STRICT") is on
    assert _settings._env_flag("AGENTTRACE_REDACT") is (on if raw else None)
