"""Spans of other instrumentations become rows: OpenInference and OpenLLMetry, real and by hand.

The real runs drive the real instrumentations (`openinference-instrumentation-smolagents` on
smolagents, `opentelemetry-instrumentation-openai` on the `openai` client) against the scripted
OpenAI-compatible server, into an `AgentTraceSpanProcessor` on a TracerProvider of the test's own:
agenttrace's own instrumentation is not involved. The hand-built spans cover what a real run does
not show: missing keys, text where JSON was expected, indexed attributes with gaps.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.agenttrace import AgentTraceSpanProcessor, TraceAssembler, read_rows
from opentelemetry.exporter.agenttrace import semconv as keys
from opentelemetry.exporter.agenttrace._rows import attributes_of, build_row
from opentelemetry.exporter.agenttrace.conventions import normalized
from opentelemetry.exporter.agenttrace.schema import validate_row
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

from agenttrace.collection.scripted_server import ScriptedModelServer, ScriptResponder, Step

MODEL = "qwen3-scripted"
SMOL_TASK = "Count the lines of /etc/hostname with bash."
SMOL_STEPS: list[Step] = [
    {
        "content": None,
        "reasoning": "I will count the lines first.",
        "tool_calls": [{"name": "bash", "arguments": {"command": "echo counted; echo lines"}}],
    },
    {"content": None, "tool_calls": [{"name": "final_answer", "arguments": {"answer": "2"}}]},
]
MANAGER_TASK = "Ask your worker to print the word managed."
WORKER_TASK = "Print the word managed with bash."
MANAGER_STEPS: list[Step] = [
    {"content": None, "tool_calls": [{"name": "worker", "arguments": {"task": WORKER_TASK}}]},
    {"content": None, "tool_calls": [{"name": "final_answer", "arguments": {"answer": "done"}}]},
]
WORKER_STEPS: list[Step] = [
    {"content": None, "tool_calls": [{"name": "bash", "arguments": {"command": "echo managed"}}]},
    {"content": None, "tool_calls": [{"name": "final_answer", "arguments": {"answer": "ok"}}]},
]
LOOP_TASK = "List the files, then say done."
LOOP_STEPS: list[Step] = [
    {
        "content": "Listing.",
        "reasoning": "ls first.",
        "tool_calls": [{"name": "bash", "arguments": {"command": "echo a.txt"}}],
    },
    {"content": "done"},
]
BASH_SCHEMA: Any = {
    "type": "function",
    "function": {
        "name": "bash",
        "description": "Run a shell command.",
        "parameters": {
            "type": "object",
            "properties": {"command": {"type": "string"}},
            "required": ["command"],
        },
    },
}


class _AnyString:
    """Equal to any string (a tool call id the server makes up)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str)


ANY: Any = _AnyString()


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedModelServer]:
    responder = ScriptResponder(
        {
            SMOL_TASK: SMOL_STEPS,
            LOOP_TASK: LOOP_STEPS,
            MANAGER_TASK: MANAGER_STEPS,
            WORKER_TASK: WORKER_STEPS,
        }
    )
    with ScriptedModelServer(responder, model=MODEL) as running:
        yield running


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[tuple[TracerProvider, AgentTraceSpanProcessor, Path]]:
    path = tmp_path / "rows.jsonl"
    provider = TracerProvider()
    processor = AgentTraceSpanProcessor(path, parquet=False)
    provider.add_span_processor(processor)
    yield provider, processor, path
    provider.shutdown()


def _rows(path: Path) -> list[dict[str, Any]]:
    return list(read_rows(path)) if path.exists() else []


def _bash(command: str) -> str:
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=False)
    return done.stdout + done.stderr


@contextmanager
def _openinference(provider: TracerProvider) -> Iterator[None]:
    pytest.importorskip("smolagents")
    from openinference.instrumentation.smolagents import SmolagentsInstrumentor

    instrumentor = SmolagentsInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        yield
    finally:
        instrumentor.uninstrument()


def _bash_tool() -> Any:
    from smolagents import Tool

    class BashTool(Tool):
        name = "bash"
        description = "Run a shell command and return its output."
        inputs = {"command": {"type": "string", "description": "The command."}}
        output_type = "string"

        def forward(self, command: str) -> str:
            return _bash(command)

    return BashTool()


def _smol_model(server: ScriptedModelServer) -> Any:
    from smolagents import OpenAIServerModel

    return OpenAIServerModel(model_id=MODEL, api_base=server.base_url, api_key="x")


# -- OpenInference: smolagents -------------------------------------------------------------------
def test_an_openinference_smolagents_run_is_one_valid_row(
    server: ScriptedModelServer,
    pipeline: tuple[TracerProvider, AgentTraceSpanProcessor, Path],
) -> None:
    from smolagents import LogLevel, ToolCallingAgent

    provider, processor, path = pipeline
    agent = ToolCallingAgent(
        tools=[_bash_tool()], model=_smol_model(server), verbosity_level=LogLevel.OFF
    )
    with _openinference(provider):
        assert agent.run(SMOL_TASK) == "2"
    (row,) = _rows(path)
    assert validate_row(row) == []
    assert row["prompt"] == SMOL_TASK  # from the AGENT span's input.value, not "New task:\n..."
    assert row["model"] == MODEL
    assert "synthetic_root" not in row["metadata"]
    assert row["metadata"]["agent_name"] == "ToolCallingAgent"
    first, second = row["llm_steps"]
    assert first["tool_calls"][0]["name"] == "bash"
    assert first["tool_calls"][0]["arguments"] == {"command": "echo counted; echo lines"}
    assert first["tool_calls"][0]["id"].startswith("call_")
    # smolagents' instrumentation records reasoning as one more text block: it is reasoning here.
    assert first["reasoning_content"] == "I will count the lines first."
    assert first["model_output"] is None
    assert first["input_tokens"] > 0 and first["output_tokens"] > 0
    assert second["tool_calls"] == [
        {"name": "final_answer", "arguments": {"answer": "2"}, "id": ANY}
    ]
    bash, final = row["spans"]
    assert bash["tool_name"] == "bash"
    assert bash["tool_input"] == "kwargs={'command': 'echo counted; echo lines'}"
    assert bash["tool_output"] == "counted\nlines\n"
    assert bash["exit_code"] == 0 and bash["parent_span_id"] is None
    assert final["tool_name"] == "final_answer" and final["tool_input"] == "kwargs={'answer': '2'}"
    assert processor.stats.rows == 1 and processor.stats.incomplete_rows == 0


def test_an_openinference_managed_agent_stays_in_its_managers_row(
    server: ScriptedModelServer,
    pipeline: tuple[TracerProvider, AgentTraceSpanProcessor, Path],
) -> None:
    from smolagents import LogLevel, ToolCallingAgent

    provider, processor, path = pipeline
    worker = ToolCallingAgent(
        tools=[_bash_tool()],
        model=_smol_model(server),
        name="worker",
        description="Runs shell commands.",
        verbosity_level=LogLevel.OFF,
    )
    manager = ToolCallingAgent(
        tools=[], model=_smol_model(server), managed_agents=[worker], verbosity_level=LogLevel.OFF
    )
    with _openinference(provider):
        assert manager.run(MANAGER_TASK) == "done"
    # The worker's AGENT span starts below the manager's step, still open: one row all the same.
    (row,) = _rows(path)
    assert validate_row(row) == [] and row["prompt"] == MANAGER_TASK
    assert [span["tool_input"] for span in row["spans"] if span["tool_name"] == "bash"] == [
        "kwargs={'command': 'echo managed'}"
    ]
    assert len(row["llm_steps"]) == 4  # the manager's two and the worker's two


# -- OpenLLMetry: the openai client in a plain tool loop ------------------------------------------
@pytest.fixture
def openllmetry(
    pipeline: tuple[TracerProvider, AgentTraceSpanProcessor, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[TracerProvider, AgentTraceSpanProcessor, Path]]:
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor

    monkeypatch.setenv("TRACELOOP_TRACE_CONTENT", "true")  # its default, said out loud
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=pipeline[0])
    yield pipeline
    instrumentor.uninstrument()


def _tool_loop(server: ScriptedModelServer, provider: TracerProvider | None) -> str:
    """The loop users write by hand: call the model, run the tools it asks for, repeat.

    With a provider, each tool run is a span as traceloop-sdk's @tool makes one.
    """
    import openai

    client = openai.OpenAI(base_url=server.base_url, api_key="x")
    tracer = provider.get_tracer("traceloop.tracer") if provider is not None else None
    messages: list[Any] = [{"role": "user", "content": LOOP_TASK}]
    for _ in range(5):
        reply = client.chat.completions.create(model=MODEL, messages=messages, tools=[BASH_SCHEMA])
        message = reply.choices[0].message
        if not message.tool_calls:
            return message.content or ""
        messages.append(message.model_dump(exclude_none=True))
        for call in message.tool_calls:
            arguments = json.loads(call.function.arguments)  # type: ignore[union-attr]
            if tracer is None:
                output = _bash(arguments["command"])
            else:
                with tracer.start_as_current_span(
                    "bash.tool",
                    attributes={
                        keys.TRACELOOP_SPAN_KIND: "tool",
                        keys.TRACELOOP_ENTITY_NAME: "bash",
                        keys.TRACELOOP_ENTITY_INPUT: json.dumps({"args": [], "kwargs": arguments}),
                    },
                ) as span:
                    output = _bash(arguments["command"])
                    span.set_attribute(keys.TRACELOOP_ENTITY_OUTPUT, json.dumps(output))
            messages.append({"role": "tool", "tool_call_id": call.id, "content": output})
    raise AssertionError("the loop did not end")


def test_openllmetry_model_calls_with_no_agent_span_make_one_synthetic_row_per_trace(
    server: ScriptedModelServer,
    openllmetry: tuple[TracerProvider, AgentTraceSpanProcessor, Path],
) -> None:
    provider, processor, path = openllmetry
    assert _tool_loop(server, None) == "done"
    rows = _rows(path)
    assert len(rows) == 2  # each model call is a trace of its own
    assert len({row["trace_id"] for row in rows}) == 2
    for row in rows:
        assert validate_row(row) == []
        assert row["metadata"]["synthetic_root"] is True
        assert "incomplete" not in row["metadata"]
        assert row["prompt"] == LOOP_TASK and row["model"] == MODEL
        assert row["spans"] == [] and len(row["llm_steps"]) == 1
    first, second = (row["llm_steps"][0] for row in rows)
    assert first["model_output"] == "Listing." and first["reasoning_content"] == "ls first."
    assert first["tool_calls"][0]["name"] == "bash"
    assert first["tool_calls"][0]["arguments"] == {"command": "echo a.txt"}
    assert first["input_tokens"] > 0 and first["output_tokens"] > 0
    assert second["model_output"] == "done" and second["tool_calls"] is None


def test_openllmetry_calls_inside_a_traceloop_workflow_span_make_one_row(
    server: ScriptedModelServer,
    openllmetry: tuple[TracerProvider, AgentTraceSpanProcessor, Path],
) -> None:
    provider, processor, path = openllmetry
    tracer = provider.get_tracer("traceloop.tracer")
    # What traceloop-sdk's @workflow(name="file_lister") records around the function.
    with tracer.start_as_current_span(
        "file_lister.workflow",
        attributes={
            keys.TRACELOOP_SPAN_KIND: "workflow",
            keys.TRACELOOP_ENTITY_NAME: "file_lister",
            keys.TRACELOOP_ENTITY_INPUT: json.dumps({"args": [LOOP_TASK], "kwargs": {}}),
        },
    ):
        assert _tool_loop(server, provider) == "done"
    (row,) = _rows(path)
    assert validate_row(row) == []
    assert "synthetic_root" not in row["metadata"]
    assert row["prompt"] == LOOP_TASK and row["model"] == MODEL
    assert row["metadata"]["agent_name"] == "file_lister"
    assert [step["model_output"] for step in row["llm_steps"]] == ["Listing.", "done"]
    (bash,) = row["spans"]
    assert bash["tool_name"] == "bash"
    assert bash["tool_input"] == "kwargs={'command': 'echo a.txt'}"
    assert bash["tool_output"] == "a.txt\n"


# -- the official opentelemetry-instrumentation-openai-v2 ----------------------------------------
def test_the_official_openai_v2_instrumentation_in_a_plain_loop_makes_one_row(
    server: ScriptedModelServer,
    pipeline: tuple[TracerProvider, AgentTraceSpanProcessor, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    # Its message content goes on the span only when asked, in the latest GenAI conventions.
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")
    provider, processor, path = pipeline
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        # The user's loop in a plain span of its own (no GenAI agent span): one trace.
        with provider.get_tracer("my.app").start_as_current_span("solve"):
            assert _tool_loop(server, None) == "done"
    finally:
        instrumentor.uninstrument()
    (row,) = _rows(path)
    assert validate_row(row) == []
    assert row["metadata"]["synthetic_root"] is True
    assert row["prompt"] == LOOP_TASK and row["model"] == MODEL
    first, second = row["llm_steps"]
    assert first["tool_calls"][0]["name"] == "bash"
    assert first["tool_calls"][0]["arguments"] == {"command": "echo a.txt"}
    assert first["tool_calls"][0]["id"] == ANY
    assert first["input_tokens"] > 0 and first["output_tokens"] > 0
    assert second["model_output"] == "done"


def test_plain_http_traces_stay_ignored(
    pipeline: tuple[TracerProvider, AgentTraceSpanProcessor, Path],
) -> None:
    provider, processor, path = pipeline
    tracer = provider.get_tracer("opentelemetry.instrumentation.requests")
    with (
        tracer.start_as_current_span("GET /health", kind=SpanKind.SERVER),
        tracer.start_as_current_span("GET", kind=SpanKind.CLIENT),
    ):
        pass
    assert _rows(path) == []
    assert processor.stats.ignored_spans == 2 and processor.stats.rows == 0


# -- the mapping, with hand-built spans --------------------------------------------------------------
_TRACE = 0xABC
_NEXT_ID = iter(range(1, 10_000))


def _span(
    name: str,
    attributes: dict[str, Any],
    *,
    parent: ReadableSpan | None = None,
    scope: str = "openinference.instrumentation.test",
    start: int = 1_000,
    end: int = 2_000,
) -> ReadableSpan:
    context = SpanContext(_TRACE, next(_NEXT_ID), is_remote=False, trace_flags=TraceFlags(1))
    return ReadableSpan(
        name=name,
        context=context,
        parent=parent.context if parent is not None else None,
        attributes=attributes,
        resource=Resource({}),
        instrumentation_scope=InstrumentationScope(scope),
        start_time=start,
        end_time=end,
    )


def _normalized(span: ReadableSpan) -> dict[str, Any]:
    return normalized(span, attributes_of(span))


def test_our_own_spans_are_not_touched() -> None:
    attributes = {keys.OPENINFERENCE_SPAN_KIND: "LLM", "llm.model_name": "m"}
    span = _span("chat m", attributes, scope=keys.INSTRUMENTATION_SCOPE)
    copy = attributes_of(span)
    assert normalized(span, copy) is copy and copy == attributes


def test_spans_of_no_convention_are_left_as_they_are() -> None:
    attributes = {"http.request.method": "GET", "input.value": "x"}
    assert _normalized(_span("GET", attributes)) == attributes


def test_openinference_spans_with_missing_keys_still_classify() -> None:
    llm = _normalized(_span("generate", {keys.OPENINFERENCE_SPAN_KIND: "LLM"}))
    assert llm == {keys.OPENINFERENCE_SPAN_KIND: "LLM", keys.GEN_AI_OPERATION_NAME: "chat"}
    tool = _normalized(_span("T", {keys.OPENINFERENCE_SPAN_KIND: "TOOL"}))
    assert tool[keys.GEN_AI_OPERATION_NAME] == "execute_tool"
    assert keys.GEN_AI_TOOL_CALL_ARGUMENTS not in tool
    agent = _normalized(_span("Agent.run", {keys.OPENINFERENCE_SPAN_KIND: "AGENT"}))
    assert agent[keys.GEN_AI_OPERATION_NAME] == "invoke_agent"
    assert agent[keys.GEN_AI_AGENT_NAME] == "Agent" and keys.PROMPT not in agent
    chain = _normalized(_span("Step 1", {keys.OPENINFERENCE_SPAN_KIND: "CHAIN"}))
    assert keys.GEN_AI_OPERATION_NAME not in chain


def test_non_json_input_values_are_kept_as_text() -> None:
    agent = _normalized(
        _span("run", {keys.OPENINFERENCE_SPAN_KIND: "AGENT", "input.value": "fix the {bug"})
    )
    assert agent[keys.PROMPT] == "fix the {bug"
    tool = _span(
        "search",
        {
            keys.OPENINFERENCE_SPAN_KIND: "TOOL",
            "tool.name": "search",
            "input.value": "not json",
            "output.value": "3 hits",
        },
    )
    root = _span("run", {keys.OPENINFERENCE_SPAN_KIND: "AGENT"}, start=0, end=5_000)
    row = build_row(root, [tool])
    assert row["spans"][0]["tool_input"] == "'not json'"
    assert row["spans"][0]["tool_output"] == "3 hits"
    assert validate_row(row) == []


def test_present_keys_are_never_overwritten() -> None:
    span = _span(
        "generate",
        {
            keys.OPENINFERENCE_SPAN_KIND: "LLM",
            "llm.model_name": "foreign-name",
            keys.GEN_AI_REQUEST_MODEL: "our-name",
            "llm.token_count.prompt": 7,
            keys.GEN_AI_USAGE_INPUT_TOKENS: 9,
        },
    )
    attributes = _normalized(span)
    assert attributes[keys.GEN_AI_REQUEST_MODEL] == "our-name"
    assert attributes[keys.GEN_AI_USAGE_INPUT_TOKENS] == 9


def test_indexed_openinference_messages_with_gaps() -> None:
    out = "llm.output_messages"
    span = _span(
        "generate",
        {
            keys.OPENINFERENCE_SPAN_KIND: "LLM",
            "llm.model_name": "m",
            "llm.token_count.prompt": 11,
            "llm.token_count.completion": 4,
            "llm.input_messages.0.message.role": "system",
            "llm.input_messages.0.message.content": "be brief",
            # index 1 missing: the instrumentation skipped a message without a role
            "llm.input_messages.2.message.role": "user",
            "llm.input_messages.2.message.contents.3.message_content.type": "text",
            "llm.input_messages.2.message.contents.3.message_content.text": "hello",
            f"{out}.0.message.role": "assistant",
            f"{out}.0.message.contents.0.message_content.type": "reasoning",
            f"{out}.0.message.contents.0.message_content.text": "hmm",
            f"{out}.0.message.contents.2.message_content.type": "text",
            f"{out}.0.message.contents.2.message_content.text": "Calling.",
            f"{out}.0.message.tool_calls.0.tool_call.id": "c0",
            f"{out}.0.message.tool_calls.0.tool_call.function.name": "ls",
            f"{out}.0.message.tool_calls.0.tool_call.function.arguments": '{"path": "/"}',
            f"{out}.0.message.tool_calls.5.tool_call.function.name": "pwd",
            f"{out}.0.message.tool_calls.5.tool_call.function.arguments": "not json",
        },
    )
    root = _span("run", {keys.OPENINFERENCE_SPAN_KIND: "AGENT"}, start=0, end=5_000)
    row = build_row(root, [span])
    assert validate_row(row) == []
    assert row["prompt"] == "hello" and row["model"] == "m"
    (step,) = row["llm_steps"]
    assert step["model_output"] == "Calling." and step["reasoning_content"] == "hmm"
    assert step["tool_calls"] == [
        {"name": "ls", "arguments": {"path": "/"}, "id": "c0"},
        {"name": "pwd", "arguments": {"value": "not json"}},
    ]
    assert (step["input_tokens"], step["output_tokens"]) == (11, 4)


def test_legacy_openllmetry_flat_messages_and_deprecated_names() -> None:
    span = _span(
        "openai.chat",
        {
            keys.LLM_REQUEST_TYPE: "chat",
            keys.GEN_AI_SYSTEM: "openai",
            keys.GEN_AI_REQUEST_MODEL: "gpt-4o",
            keys.GEN_AI_USAGE_PROMPT_TOKENS: 20,
            keys.GEN_AI_USAGE_COMPLETION_TOKENS: 5,
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": "what time is it",
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.content": "Checking.",
            "gen_ai.completion.0.tool_calls.1.id": "t1",
            "gen_ai.completion.0.tool_calls.1.name": "clock",
            "gen_ai.completion.0.tool_calls.1.arguments": "{}",
        },
        scope="opentelemetry.instrumentation.openai.v1",
    )
    attributes = _normalized(span)
    assert attributes[keys.GEN_AI_OPERATION_NAME] == "chat"
    assert attributes[keys.GEN_AI_PROVIDER_NAME] == "openai"
    assert attributes[keys.GEN_AI_USAGE_INPUT_TOKENS] == 20
    rows: list[dict[str, Any]] = []
    assembler = TraceAssembler(rows.append)
    assembler.on_end(span)
    (row,) = rows
    assert validate_row(row) == []
    assert row["metadata"]["synthetic_root"] is True
    assert row["prompt"] == "what time is it" and row["model"] == "gpt-4o"
    (step,) = row["llm_steps"]
    assert step["model_output"] == "Checking."
    assert step["tool_calls"] == [{"name": "clock", "arguments": {}, "id": "t1"}]
    assert (step["input_tokens"], step["output_tokens"]) == (20, 5)


def test_traceloop_tool_arguments_and_output() -> None:
    tool = _span(
        "grep.tool",
        {
            keys.TRACELOOP_SPAN_KIND: "tool",
            keys.TRACELOOP_ENTITY_NAME: "grep",
            keys.TRACELOOP_ENTITY_INPUT: json.dumps({"args": [], "kwargs": {"pattern": "x"}}),
            keys.TRACELOOP_ENTITY_OUTPUT: json.dumps("3 matches"),
        },
        scope="traceloop.tracer",
    )
    positional = _span(
        "echo.tool",
        {
            keys.TRACELOOP_SPAN_KIND: "tool",
            keys.TRACELOOP_ENTITY_NAME: "echo",
            keys.TRACELOOP_ENTITY_INPUT: json.dumps({"args": ["hi"], "kwargs": {"n": 2}}),
            keys.TRACELOOP_ENTITY_OUTPUT: json.dumps({"said": "hi"}),
        },
        scope="traceloop.tracer",
    )
    root = _span(
        "agent.workflow",
        {
            keys.TRACELOOP_SPAN_KIND: "workflow",
            keys.TRACELOOP_ENTITY_INPUT: json.dumps({"args": [], "kwargs": {"question": "q?"}}),
        },
        scope="traceloop.tracer",
        start=0,
        end=5_000,
    )
    row = build_row(root, [tool, positional])
    assert validate_row(row) == []
    assert row["prompt"] == "q?"
    grep, echo = row["spans"]
    assert grep["tool_input"] == "kwargs={'pattern': 'x'}" and grep["tool_output"] == "3 matches"
    assert echo["tool_input"] == "kwargs={'args': ['hi'], 'n': 2}"
    assert echo["tool_output"] == '{"said": "hi"}'


def test_a_trace_without_an_agent_root_is_one_row_when_its_top_span_ends() -> None:
    top = _span("POST /ask", {"http.request.method": "POST"}, scope="http", start=0, end=9_000)
    chat = _span(
        "chat m",
        {keys.GEN_AI_OPERATION_NAME: "chat", keys.GEN_AI_REQUEST_MODEL: "m"},
        parent=top,
        scope="some.genai",
    )
    tool = _span(
        "execute_tool ls",
        {keys.GEN_AI_OPERATION_NAME: "execute_tool", keys.GEN_AI_TOOL_NAME: "ls"},
        parent=top,
        scope="some.genai",
        start=2_000,
        end=3_000,
    )
    for sees_starts in (False, True):
        rows: list[dict[str, Any]] = []
        assembler = TraceAssembler(rows.append, sees_starts=sees_starts)
        assembler.on_end(chat)
        assembler.on_end(tool)
        assert rows == []  # the trace is still open: more may come
        assembler.on_end(top)
        (row,) = rows
        assert validate_row(row) == []
        assert row["metadata"]["synthetic_root"] is True and row["model"] == "m"
        assert [s["tool_name"] for s in row["spans"]] == ["ls"] and len(row["llm_steps"]) == 1
        assert row["total_duration_ms"] == 9_000 / 1e6
        assert assembler.buffered_spans == 0


def test_genai_spans_open_at_shutdown_become_a_synthetic_row() -> None:
    top = _span("job", {}, scope="app", start=0, end=9_000)
    chat = _span("chat m", {keys.GEN_AI_OPERATION_NAME: "chat"}, parent=top, scope="genai")
    rows: list[dict[str, Any]] = []
    assembler = TraceAssembler(rows.append, sees_starts=True)
    assembler.on_end(chat)
    assembler.finish_all()  # the top span never ended
    (row,) = rows
    assert validate_row(row) == []
    assert row["metadata"]["synthetic_root"] is True and row["metadata"]["incomplete"] is True


def test_below_a_remote_parent_only_the_top_spans_own_make_the_row() -> None:
    remote = SpanContext(_TRACE + 1, 0x77, is_remote=True, trace_flags=TraceFlags(1))

    def below_remote(name: str, attributes: dict[str, Any], parent: Any) -> ReadableSpan:
        context = SpanContext(
            _TRACE + 1, next(_NEXT_ID), is_remote=False, trace_flags=TraceFlags(1)
        )
        return ReadableSpan(
            name=name,
            context=context,
            parent=parent,
            attributes=attributes,
            resource=Resource({}),
            instrumentation_scope=InstrumentationScope("genai"),
            start_time=1_000,
            end_time=2_000,
        )

    first = below_remote("handler", {}, remote)
    chat = below_remote("chat m", {keys.GEN_AI_OPERATION_NAME: "chat"}, first.context)
    stray = below_remote(
        "chat m",
        {keys.GEN_AI_OPERATION_NAME: "chat"},
        SpanContext(_TRACE + 1, 0x55, is_remote=False, trace_flags=TraceFlags(1)),
    )  # its parent, another top span here, has not ended yet
    rows: list[dict[str, Any]] = []
    assembler = TraceAssembler(rows.append)
    for span in (stray, chat, first):
        assembler.on_end(span)
    (row,) = rows
    assert validate_row(row) == [] and row["metadata"]["synthetic_root"] is True
    assert [step["step_id"] for step in row["llm_steps"]] == [f"{chat.context.span_id:016x}"]
    assert assembler.buffered_spans == 1  # the stray waits for its own top span
