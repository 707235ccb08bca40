"""The project's own output passes its own validator; only release rows meet the release's rules.

Rows from any agent (the README's example, a bare `@agent`, zero-code mode, GenAI spans from a
plain OpenTelemetry tracer) pass the default check. Rows that claim to be rows of the NL2Bash /
MBPP release, and every row under the `release` profile, are held to the release's own rules.
A tool that raised keeps its error in the row, where a schema 0.3.0 reader looks: `tool_output`.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.agenttrace import (
    AgentTraceSpanProcessor,
    build_row,
    read_rows,
    semconv,
    validate_row,
)
from opentelemetry.exporter.agenttrace._rows import ERROR_OUTPUT_LIMIT
from opentelemetry.exporter.agenttrace.files import validate_file
from opentelemetry.exporter.agenttrace.schema import PROFILES, claims_release
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from test_roundtrip import RELEASE_ROW

import agenttrace
from agenttrace.cli import main as cli_main

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _messages(rows: list[dict[str, Any]], **kwargs: Any) -> list[str]:
    return [str(v) for row in rows for v in validate_row(row, **kwargs)]


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTTRACE_"))}
    env.update(extra)
    return env


# -- rows of agents that give no metadata at all ------------------------------------------------


def test_a_bare_agent_row_passes_the_default_check(configure_spans, tmp_path: Path) -> None:
    out = tmp_path / "bare.jsonl"
    configure_spans(span_processors=[AgentTraceSpanProcessor(out, parquet=False)])

    @agenttrace.agent
    def bare(x: int) -> int:
        return x

    bare(1)
    (row,) = _lines(out)
    metadata = row["metadata"]
    assert metadata["task_id"] is None and metadata["dataset_name"] == ""
    assert metadata["agenttrace_version"] == agenttrace.__version__
    assert validate_row(row) == []


def test_task_ids_keep_their_value_and_always_validate(configure_spans, tmp_path: Path) -> None:
    out = tmp_path / "ids.jsonl"
    configure_spans(span_processors=[AgentTraceSpanProcessor(out, parquet=False)])

    @agenttrace.agent
    def run(task_id: Any) -> None:
        agenttrace.set_run_metadata(task_id=task_id, schema_version="9.9")

    for task_id in ("django__django-11099", "17", 4.0, 12):
        run(task_id)
    rows = _lines(out)
    assert [r["metadata"]["task_id"] for r in rows] == ["django__django-11099", 17, 4, 12]
    assert {r["metadata"]["schema_version"] for r in rows} == {"0.3.0"}
    assert _messages(rows) == []


ZERO_CODE_APP = textwrap.dedent(
    """
    import agenttrace  # decorators only: the SDK is set up by opentelemetry-instrument

    @agenttrace.tool
    def lookup(key):
        raise KeyError(key)

    @agenttrace.agent
    def run(i):
        try:
            lookup(f"k{i}")
        except KeyError:
            pass
        return i

    for i in range(2):
        run(i)
    """
)


def test_zero_code_rows_pass_the_default_check(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(ZERO_CODE_APP)
    out = tmp_path / "zero.jsonl"
    env = _clean_env(
        OTEL_TRACES_EXPORTER="agenttrace",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        AGENTTRACE_OUTPUT=str(out),
        AGENTTRACE_FORMAT="jsonl",
    )
    result = subprocess.run(
        [str(BIN / "opentelemetry-instrument"), sys.executable, str(app)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    rows = _lines(out)
    assert len(rows) == 2 and _messages(rows) == []
    assert [r["metadata"]["task_id"] for r in rows] == [None, None]
    assert [r["spans"][0]["tool_output"] for r in rows] == ["KeyError: 'k0'", "KeyError: 'k1'"]


# -- spans of other instrumentations ------------------------------------------------------------


def _foreign_run(out: Path) -> None:
    """A run made with a plain OpenTelemetry tracer, GenAI keys only, including a failed tool."""
    provider = TracerProvider()
    provider.add_span_processor(AgentTraceSpanProcessor(out, parquet=False))
    tracer = provider.get_tracer("someone.elses.instrumentation")
    with tracer.start_as_current_span(
        "invoke_agent helper", attributes={semconv.GEN_AI_OPERATION_NAME: "invoke_agent"}
    ):
        with tracer.start_as_current_span(
            "chat gpt-4o",
            kind=SpanKind.CLIENT,
            attributes={
                semconv.GEN_AI_OPERATION_NAME: "chat",
                semconv.GEN_AI_REQUEST_MODEL: "gpt-4o",
                semconv.GEN_AI_USAGE_PROMPT_TOKENS: 5,
            },
        ):
            pass
        with (
            contextlib.suppress(ValueError),
            tracer.start_as_current_span(
                "execute_tool search",
                attributes={semconv.GEN_AI_OPERATION_NAME: "execute_tool"},
            ),
        ):
            raise ValueError("index offline")
    # An OpenInference-style agent root: no GenAI operation at all.
    with tracer.start_as_current_span(
        "Agent", attributes={semconv.OPENINFERENCE_SPAN_KIND: "AGENT"}
    ):
        pass
    provider.shutdown()


def test_foreign_genai_spans_make_valid_rows(tmp_path: Path) -> None:
    out = tmp_path / "foreign.jsonl"
    _foreign_run(out)
    rows = _lines(out)
    assert len(rows) == 2 and _messages(rows) == []
    (tool,) = rows[0]["spans"]
    assert tool["tool_name"] == "search" and tool["exit_code"] == 1
    assert tool["tool_output"] == "ValueError: index offline"
    assert tool["error_type"] == "ValueError"
    assert rows[0]["llm_steps"][0]["input_tokens"] == 5  # the deprecated name, read as fallback


# -- a tool that raised keeps its error in the row ----------------------------------------------


def _failing_agent(message: str):
    @agenttrace.tool(name="python_interpreter")
    def python_interpreter(code: str) -> str:
        raise ValueError(message)

    @agenttrace.agent
    def run() -> None:
        with contextlib.suppress(ValueError):
            python_interpreter(code="1/0")

    return run


def test_a_tool_that_raised_keeps_its_error_in_the_row(configure_spans, tmp_path: Path) -> None:
    out = tmp_path / "errors.jsonl"
    configure_spans(span_processors=[AgentTraceSpanProcessor(out, parquet=False)])
    _failing_agent("bad input")()
    (row,) = _lines(out)
    (tool,) = row["spans"]
    assert (tool["tool_output"], tool["exit_code"]) == ("ValueError: bad input", 1)
    assert tool["error_type"] == "ValueError"
    assert validate_row(row) == []


def test_the_error_in_the_row_is_bounded(configure_spans, tmp_path: Path) -> None:
    out = tmp_path / "long.jsonl"
    configure_spans(span_processors=[AgentTraceSpanProcessor(out, parquet=False)])
    _failing_agent("x" * 200_000)()
    (row,) = _lines(out)
    output = row["spans"][0]["tool_output"]
    assert output.startswith("ValueError: xxx") and "truncated" in output
    assert len(output) <= ERROR_OUTPUT_LIMIT + 100


def test_the_error_in_the_row_is_redacted(configure_spans, tmp_path: Path) -> None:
    out = tmp_path / "secret.jsonl"
    configure_spans(span_processors=[AgentTraceSpanProcessor(out, parquet=False)])
    _failing_agent("login failed with password=hunter2hunter2")()
    text = out.read_text()
    assert "hunter2hunter2" not in text
    assert json.loads(text)["spans"][0]["tool_output"].startswith("ValueError: login failed")


def test_without_content_the_row_keeps_only_the_error_type(configure_spans, tmp_path: Path) -> None:
    out = tmp_path / "no-content.jsonl"
    configure_spans(
        capture_content=False, span_processors=[AgentTraceSpanProcessor(out, parquet=False)]
    )
    _failing_agent("the data itself")()
    (row,) = _lines(out)
    assert row["spans"][0]["tool_output"] == "ValueError"
    assert "the data itself" not in out.read_text()


def test_strict_rows_leave_the_error_type_extension_out(configure_spans, tmp_path: Path) -> None:
    out = tmp_path / "strict.jsonl"
    configure_spans(span_processors=[AgentTraceSpanProcessor(out, strict=True, parquet=False)])
    _failing_agent("bad input")()
    (row,) = _lines(out)
    assert "error_type" not in row["spans"][0]
    assert row["spans"][0]["tool_output"] == "ValueError: bad input"
    assert validate_row(row, strict=True) == []


# -- release rows are still held to the release's rules ----------------------------------------


def _release(**metadata: Any) -> dict[str, Any]:
    row = copy.deepcopy(RELEASE_ROW)
    row["metadata"].update(metadata)
    return row


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"source": "epinnock/intercode-nl2bash-curated"}, "metadata.source"),
        ({"dataset_split": "test"}, "metadata.dataset_split"),
        ({"task_id": "17"}, "metadata.task_id"),
        ({"task_id": None}, "metadata.task_id"),
        ({"fixture_version": None}, "metadata.fixture_version"),
        ({"fixture_version": "abc"}, "metadata.fixture_version"),
    ],
)
def test_release_rows_meet_the_release_metadata_rules(change: dict[str, Any], field: str) -> None:
    row = _release(**change)
    assert claims_release(row)
    assert [v.field for v in validate_row(row)] == [field]
    # The same row labelled as this project's own is an ordinary valid row ...
    ours = _release(**change, collector_version=f"agenttrace-{agenttrace.__version__}")
    assert not claims_release(ours) and validate_row(ours) == []
    # ... until the release profile is asked for.
    assert field in {v.field for v in validate_row(ours, profile="release")}


@pytest.mark.parametrize(
    ("tool_name", "tool_input"),
    [
        ("shell", "kwargs={'command': 'ls'}"),
        ("bash", "kwargs={'cmd': 'ls'}"),
        ("bash", "kwargs={'command': 'ls', 'timeout': 3}"),
        ("bash", "ls -la"),
        ("bash", "kwargs={'command': 'ls'"),
        ("python_interpreter", "kwargs={'command': 'print(1)'}"),
    ],
)
def test_release_rows_meet_the_release_tool_rules(tool_name: str, tool_input: str) -> None:
    row = _release()
    row["spans"][0]["tool_name"] = tool_name
    row["spans"][0]["tool_input"] = tool_input
    fields = [v.field for v in validate_row(row)]
    assert fields in (["spans[0].tool_name"], ["spans[0].tool_input"])
    row["metadata"]["collector_version"] = "someone-else-1.0"
    assert validate_row(row) == []


def test_mbpp_release_rows_and_unknown_profiles() -> None:
    mbpp = _release(dataset_name="mbpp", source="mbpp", dataset_split="test", fixture_version=None)
    mbpp["spans"][0]["tool_name"] = "python_interpreter"
    mbpp["spans"][0]["tool_input"] = "kwargs={'code': 'print(3)'}"
    assert validate_row(mbpp) == [] and validate_row(mbpp, profile="release") == []
    assert validate_row(RELEASE_ROW, profile="release") == []
    with pytest.raises(ValueError, match="unknown validation profile"):
        validate_row(RELEASE_ROW, profile="lenient")


# -- the validate command ------------------------------------------------------------------------


def test_validate_command_profiles_and_help(tmp_path: Path) -> None:
    out = tmp_path / "foreign.jsonl"
    _foreign_run(out)
    runner = CliRunner()
    assert runner.invoke(cli_main, ["validate", str(out)]).exit_code == 0
    release = runner.invoke(cli_main, ["validate", "--profile", "release", str(out)])
    assert release.exit_code == 1 and "metadata.collector_version" in release.output
    strict = runner.invoke(cli_main, ["validate", "--strict", str(out)])  # extensions only
    assert strict.exit_code == 1 and "error_type: not a schema 0.3.0 key" in strict.output
    assert "metadata." not in strict.output
    help_text = " ".join(runner.invoke(cli_main, ["validate", "--help"]).output.split())
    for profile in PROFILES:
        assert profile in help_text
    assert 'collector_version "0.3.0"' in help_text and "--strict" in help_text


# -- whatever a span carries, the row it makes passes the default check -------------------------

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.text(max_size=5), max_size=3),
)
ROOT_KEYS = (
    semconv.PROMPT,
    semconv.GEN_AI_REQUEST_MODEL,
    semconv.GEN_AI_AGENT_NAME,
    semconv.CONTENT_CAPTURED,
    semconv.TELEMETRY_METHOD,
    semconv.ERROR_TYPE,
    *(
        semconv.METADATA_PREFIX + key
        for key in (
            "schema_version",
            "collector_version",
            "dataset_name",
            "source",
            "task_id",
            "run_id",
            "dataset_split",
            "fixture_version",
        )
    ),
    semconv.METADATA_JSON_PREFIX + "task_id",
)
TOOL_KEYS = (
    semconv.GEN_AI_TOOL_NAME,
    semconv.GEN_AI_TOOL_CALL_ID,
    semconv.GEN_AI_TOOL_CALL_ARGUMENTS,
    semconv.GEN_AI_TOOL_CALL_RESULT,
    semconv.TOOL_INPUT_REPR,
    semconv.TOOL_POSITIONAL_ARGS,
    semconv.TOOL_EXIT_CODE,
    semconv.TELEMETRY_PEAK_SCOPE,
    semconv.ERROR_TYPE,
    *semconv.TELEMETRY_KEYS,
)
STEP_KEYS = (
    semconv.STEP_NUMBER,
    semconv.GEN_AI_USAGE_INPUT_TOKENS,
    semconv.GEN_AI_USAGE_OUTPUT_TOKENS,
    semconv.GEN_AI_USAGE_PROMPT_TOKENS,
    semconv.GEN_AI_USAGE_COMPLETION_TOKENS,
    semconv.GEN_AI_OUTPUT_MESSAGES,
    semconv.GEN_AI_INPUT_MESSAGES,
    semconv.GEN_AI_RESPONSE_MODEL,
)
times = st.integers(min_value=0, max_value=2**62)


def _attributes(keys: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(keys), anything, max_size=len(keys))


@st.composite
def _hostile_span(draw, span_id: int, operation: str, keys: tuple[str, ...]) -> ReadableSpan:
    attributes = draw(_attributes(keys))
    attributes[semconv.GEN_AI_OPERATION_NAME] = operation
    events = []
    if draw(st.booleans()):
        events.append(
            Event(
                semconv.EXCEPTION_EVENT,
                {semconv.EXCEPTION_TYPE: draw(anything), semconv.EXCEPTION_MESSAGE: draw(anything)},
            )
        )
    return ReadableSpan(
        name=f"{operation} {draw(st.text(max_size=8))}",
        context=SpanContext(1, span_id, is_remote=False, trace_flags=TraceFlags(1)),
        parent=SpanContext(1, 1, is_remote=False, trace_flags=TraceFlags(1)),
        attributes=attributes,
        events=events,
        status=Status(draw(st.sampled_from([StatusCode.UNSET, StatusCode.ERROR]))),
        start_time=draw(times),
        end_time=draw(st.one_of(st.none(), times)),  # unfinished, or ending before it starts
        resource=Resource.create({}),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    root_attributes=_attributes(ROOT_KEYS),
    root_times=st.tuples(times, times),
    tools=st.lists(st.integers(0, 1), max_size=3),
    steps=st.lists(st.integers(0, 1), max_size=3),
    data=st.data(),
)
def test_rows_from_any_span_attributes_pass_the_default_check(
    root_attributes: dict[str, Any],
    root_times: tuple[int, int],
    tools: list[int],
    steps: list[int],
    data: st.DataObject,
) -> None:
    root_attributes[semconv.GEN_AI_OPERATION_NAME] = "invoke_agent"
    root = ReadableSpan(
        name="invoke_agent x",
        context=SpanContext(1, 1, is_remote=False, trace_flags=TraceFlags(1)),
        attributes=root_attributes,
        start_time=root_times[0],
        end_time=root_times[1],
        resource=Resource.create({}),
    )
    children = [
        data.draw(_hostile_span(2 + i, "execute_tool", TOOL_KEYS)) for i in range(len(tools))
    ]
    children += [data.draw(_hostile_span(10 + i, "chat", STEP_KEYS)) for i in range(len(steps))]
    for strict in (False, True):
        row = build_row(root, children, strict=strict)
        assert validate_row(row, strict=strict) == [], row
        json.dumps(row, allow_nan=True)  # and it is a plain JSON-able object


def test_release_files_read_back_as_release_rows(tmp_path: Path) -> None:
    path = tmp_path / "nl2bash_0_6B.jsonl"
    path.write_text(json.dumps(RELEASE_ROW) + "\n")
    assert [claims_release(r) for r in read_rows(path)] == [True]
    assert list(validate_file(path)) == [] and list(validate_file(path, profile="release")) == []
