"""The smolagents integration, with the real smolagents (pinned in the dev group) driving the real
`openai` client over HTTP against our scripted OpenAI-compatible server, and real tools."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

smolagents = pytest.importorskip("smolagents")

from conftest import Spans  # noqa: E402
from opentelemetry.exporter.agenttrace import AgentTraceSpanProcessor, read_rows  # noqa: E402
from opentelemetry.exporter.agenttrace.schema import validate_row  # noqa: E402
from smolagents import (  # noqa: E402
    CodeAgent,
    LogLevel,
    OpenAIServerModel,
    Tool,
    ToolCallingAgent,
)

import agenttrace  # noqa: E402
from agenttrace import semconv  # noqa: E402
from agenttrace.collection.scripted_server import (  # noqa: E402
    ScriptedModelServer,
    ScriptResponder,
    Step,
)
from agenttrace.integrations.smolagents import SmolagentsInstrumentor  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

TASK = "Count the lines of /etc/hostname and say hi."
TASK_STEPS: list[Step] = [
    {
        "content": None,
        "reasoning": "I will count the lines first.",
        "tool_calls": [
            {"name": "bash", "arguments": {"command": "wc -l < /etc/hostname"}},
            {"name": "bash", "arguments": {"command": "echo hi; exit 3"}},
        ],
    },
    {
        "content": None,
        "reasoning": "Both ran.",
        "tool_calls": [{"name": "final_answer", "arguments": {"answer": "1 line, hi"}}],
    },
]
CODE_TASK = "Use code to print hi through bash."
CODE_STEPS: list[Step] = [
    {
        "content": "Thought: I call bash from code.\n<code>\nout = bash(command='echo hi')\n"
        "print('got:', out)\n</code>",
        "reasoning": "Code is shorter.",
    },
    {"content": "Thought: done.\n<code>\nfinal_answer('hi')\n</code>"},
]
BURN_TASK = "Add up squares in code."
BURN_STEPS: list[Step] = [
    {
        "content": "Thought: a loop.\n<code>\ntotal = 0\nfor i in range(60000):\n"
        "    total += i * i\nprint(total)\n</code>"
    },
    {"content": "Thought: done.\n<code>\nfinal_answer(str(total))\n</code>"},
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


class BashTool(Tool):
    """A tool as a user writes one: its subprocess through agenttrace.tools.run (telemetry)."""

    name = "bash"
    description = "Run a shell command and return its output."
    inputs = {"command": {"type": "string", "description": "The command."}}
    output_type = "string"

    def forward(self, command: str) -> str:
        done = agenttrace.tools.run(["bash", "-c", command], capture_output=True, text=True)
        return done.stdout + done.stderr


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedModelServer]:
    scripts = {
        TASK: TASK_STEPS,
        CODE_TASK: CODE_STEPS,
        BURN_TASK: BURN_STEPS,
        MANAGER_TASK: MANAGER_STEPS,
        WORKER_TASK: WORKER_STEPS,
    }
    with ScriptedModelServer(ScriptResponder(scripts), model="qwen3-scripted") as running:
        yield running


@pytest.fixture
def traced(configure_spans, tmp_path: Path) -> Iterator[tuple[Spans, Path]]:
    rows = tmp_path / "rows.jsonl"
    spans = configure_spans(span_processors=[AgentTraceSpanProcessor(rows, parquet=False)])
    instrumentor = SmolagentsInstrumentor()
    instrumentor.instrument()
    yield spans, rows
    instrumentor.uninstrument()


def _model(server: ScriptedModelServer) -> Any:
    return OpenAIServerModel(model_id="qwen3-scripted", api_base=server.base_url, api_key="x")


def _rows(path: Path) -> list[dict[str, Any]]:
    return list(read_rows(path)) if path.exists() else []


def _check_tool_calling_row(row: dict[str, Any]) -> None:
    assert validate_row(row) == []
    assert row["prompt"] == TASK and row["model"] == "qwen3-scripted"
    bash = [span for span in row["spans"] if span["tool_name"] == "bash"]
    assert [span["tool_input"] for span in bash] == [
        "kwargs={'command': 'wc -l < /etc/hostname'}",
        "kwargs={'command': 'echo hi; exit 3'}",
    ]
    assert [span["exit_code"] for span in bash] == [0, 3]  # the child's own exit code
    assert bash[1]["tool_output"].startswith("hi")
    for span in bash:  # the child's own usage, measured when it was reaped
        assert span["telemetry"]["user_time_s"] is not None
        assert span["telemetry"]["max_rss_bytes"] > 0
    first, second = row["llm_steps"]
    assert first["reasoning_content"] == "I will count the lines first."
    assert first["input_tokens"] > 0 and first["output_tokens"] > 0
    # Each tool span carries the id of the model's call that asked for it.
    asked = [call["id"] for call in first["tool_calls"]]
    assert sorted(span["tool_call_id"] for span in bash) == sorted(asked)
    assert second["tool_calls"][0]["name"] == "final_answer"
    final = [span for span in row["spans"] if span["tool_name"] == "final_answer"]
    assert final[0]["tool_input"] == "kwargs={'answer': '1 line, hi'}"


def test_a_tool_calling_agent_run_is_one_row_shaped_like_the_release(
    server: ScriptedModelServer, traced: tuple[Spans, Path]
) -> None:
    spans, rows = traced
    agent = ToolCallingAgent(tools=[BashTool()], model=_model(server), verbosity_level=LogLevel.OFF)
    assert agent.run(TASK) == "1 line, hi"
    (row,) = _rows(rows)
    _check_tool_calling_row(row)
    root = spans.one("invoke_agent ToolCallingAgent")
    assert root.attributes is not None
    assert root.attributes[semconv.GEN_AI_REQUEST_MODEL] == "qwen3-scripted"
    assert {span.context.trace_id for span in spans.all()} == {root.context.trace_id}


def test_a_streamed_run_records_the_same_row(
    server: ScriptedModelServer, traced: tuple[Spans, Path]
) -> None:
    spans, rows = traced
    agent = ToolCallingAgent(
        tools=[BashTool()],
        model=_model(server),
        verbosity_level=LogLevel.OFF,
        stream_outputs=True,  # the model's replies stream over HTTP too
    )
    events = list(agent.run(TASK, stream=True))
    assert type(events[-1]).__name__ == "FinalAnswerStep"
    (row,) = _rows(rows)
    _check_tool_calling_row(row)  # reasoning included: smolagents drops it when streaming


def test_a_stream_closed_early_ends_its_run(
    server: ScriptedModelServer, traced: tuple[Spans, Path]
) -> None:
    spans, rows = traced
    agent = ToolCallingAgent(tools=[BashTool()], model=_model(server), verbosity_level=LogLevel.OFF)
    steps = agent.run(TASK, stream=True)
    next(steps)
    # smolagents' stream does not stop when closed (the same error without agenttrace): the
    # caller gets that error unchanged, and the run still ends, with it, in a row of its own.
    with pytest.raises(RuntimeError, match="ignored GeneratorExit"):
        steps.close()
    root = spans.one("invoke_agent ToolCallingAgent")
    assert root.status.status_code.name == "ERROR"
    (row,) = _rows(rows)
    assert row["prompt"] == TASK and validate_row(row) == []


def test_a_code_agent_records_its_code_as_python_interpreter_with_its_tools_inside(
    server: ScriptedModelServer, traced: tuple[Spans, Path]
) -> None:
    spans, rows = traced
    agent = CodeAgent(tools=[BashTool()], model=_model(server), verbosity_level=LogLevel.OFF)
    assert agent.run(CODE_TASK) == "hi"
    (row,) = _rows(rows)
    assert validate_row(row) == []
    names = [span["tool_name"] for span in row["spans"]]
    assert names.count("python_interpreter") == 2
    code = next(span for span in row["spans"] if span["tool_name"] == "python_interpreter")
    assert code["tool_input"].startswith("kwargs={'code': \"out = bash(command='echo hi')")
    assert "got: hi" in code["tool_output"]
    # The bash call made from the model's code runs in smolagents' worker thread, yet it is in
    # the same trace, below the code execution that made it.
    bash = next(span for span in row["spans"] if span["tool_name"] == "bash")
    assert bash["tool_input"] == "kwargs={'command': 'echo hi'}"
    assert bash["parent_span_id"] == code["span_id"]
    assert len({span.context.trace_id for span in spans.all()}) == 1
    assert row["llm_steps"][0]["reasoning_content"] == "Code is shorter."


def test_code_run_in_smolagents_worker_thread_has_its_cpu_time_counted(
    server: ScriptedModelServer, traced: tuple[Spans, Path]
) -> None:
    spans, rows = traced
    agent = CodeAgent(tools=[], model=_model(server), verbosity_level=LogLevel.OFF)
    assert agent.run(BURN_TASK) == str(sum(i * i for i in range(60000)))
    (row,) = _rows(rows)
    loop = row["spans"][0]
    assert loop["tool_name"] == "python_interpreter" and "for i in range" in loop["tool_input"]
    # The code ran in smolagents' worker thread, not in the thread that made the call: the
    # calling thread's own figures would be about zero.
    assert loop["telemetry"]["user_time_s"] + loop["telemetry"]["system_time_s"] > 0.05
    code_span = spans.named("execute_tool python_interpreter")[0]
    assert code_span.attributes is not None
    assert code_span.attributes[semconv.TELEMETRY_METHOD] == semconv.TELEMETRY_METHOD_COMPAT


def test_a_managed_agents_run_belongs_to_its_managers_row(
    server: ScriptedModelServer, traced: tuple[Spans, Path]
) -> None:
    spans, rows = traced
    worker = ToolCallingAgent(
        tools=[BashTool()],
        model=_model(server),
        name="worker",
        description="Runs shell commands.",
        verbosity_level=LogLevel.OFF,
    )
    manager = ToolCallingAgent(
        tools=[], model=_model(server), managed_agents=[worker], verbosity_level=LogLevel.OFF
    )
    assert manager.run(MANAGER_TASK) == "done"
    (row,) = _rows(rows)  # one row: the worker's run is nested in it
    assert validate_row(row) == []
    assert row["prompt"] == MANAGER_TASK
    by_name = {
        span["tool_name"]: span for span in row["spans"] if span["tool_name"] != "final_answer"
    }
    assert by_name["worker"]["tool_input"] == f"kwargs={{'task': {WORKER_TASK!r}}}"
    assert by_name["bash"]["parent_span_id"] == by_name["worker"]["span_id"]
    assert by_name["bash"]["tool_output"] == "managed\n"
    assert len(row["llm_steps"]) == 4  # the manager's two and the worker's two
    asked = row["llm_steps"][0]["tool_calls"][0]
    assert asked["name"] == "worker" and by_name["worker"]["tool_call_id"] == asked["id"]
    nested = spans.one("invoke_agent worker")
    assert nested.attributes is not None and nested.attributes[semconv.RUN_NESTED] is True


def test_uninstrument_stops_tracing_and_instrument_is_idempotent(
    server: ScriptedModelServer, configure_spans
) -> None:
    spans = configure_spans()
    instrumentor = SmolagentsInstrumentor()
    instrumentor.instrument()
    instrumentor.instrument()
    agent = ToolCallingAgent(tools=[BashTool()], model=_model(server), verbosity_level=LogLevel.OFF)
    agent.run(TASK)
    assert len(spans.named("invoke_agent ToolCallingAgent")) == 1
    assert len(spans.named("execute_tool bash")) == 2  # wrapped once, not twice
    instrumentor.uninstrument()
    assert not instrumentor.is_instrumented
    spans.exporter.clear()
    agent.run(TASK)
    assert spans.all() == []


def test_a_model_of_another_kind_is_traced_through_generate(
    configure_spans, tmp_path: Path
) -> None:
    # A Model subclass of the user's own (how smolagents users plug in other backends): no
    # openai client, so its generate() is where the step is recorded.
    from smolagents import ChatMessage, Model
    from smolagents.models import ChatMessageToolCall, ChatMessageToolCallFunction
    from smolagents.monitoring import TokenUsage

    class RuleModel(Model):
        def generate(self, messages: Any, **kwargs: Any) -> Any:
            call = ChatMessageToolCall(
                id="call_rule",
                type="function",
                function=ChatMessageToolCallFunction(
                    name="final_answer", arguments={"answer": "42"}
                ),
            )
            return ChatMessage(
                role="assistant",
                content="The answer.",
                tool_calls=[call],
                token_usage=TokenUsage(input_tokens=12, output_tokens=3),
            )

    rows = tmp_path / "rows.jsonl"
    configure_spans(span_processors=[AgentTraceSpanProcessor(rows, parquet=False)])
    instrumentor = SmolagentsInstrumentor()
    instrumentor.instrument()
    try:
        agent = ToolCallingAgent(
            tools=[], model=RuleModel(model_id="rules"), verbosity_level=LogLevel.OFF
        )
        assert agent.run("What is the answer?") == "42"
    finally:
        instrumentor.uninstrument()
    (row,) = _rows(rows)
    (step,) = row["llm_steps"]
    assert (step["model_output"], step["input_tokens"], step["output_tokens"]) == (
        "The answer.",
        12,
        3,
    )
    assert step["tool_calls"][0]["id"] == row["spans"][0]["tool_call_id"] == "call_rule"


# --- collect --agent smolagents ---------------------------------------------------------------
def _collect(tmp_path: Path, agent: str, stream: bool) -> list[dict[str, Any]]:
    scripts: dict[str, list[Step]] = {}
    from agenttrace.collection.tasks import scripted_steps

    scripts.update(scripted_steps("nl2bash"))
    output = tmp_path / f"{agent}.jsonl"
    with ScriptedModelServer(ScriptResponder(scripts), model="qwen3-1.7b") as running:
        command = [
            sys.executable,
            "-m",
            "agenttrace.cli",
            "collect",
            "--dataset",
            "nl2bash",
            "--agent",
            agent,
            "--model",
            "qwen3-1.7b",
            "--base-url",
            running.base_url,
            "--temperature",
            "0.6",
            "--output",
            str(output),
            "--stream" if stream else "--no-stream",
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in output.read_text().splitlines()]


@pytest.mark.parametrize("stream", [False, True])
def test_collect_with_smolagents_differs_from_the_reference_agent_only_where_the_agents_do(
    tmp_path: Path, stream: bool
) -> None:
    reference = _collect(tmp_path, "reference", stream)
    smol = _collect(tmp_path, "smolagents", stream)
    assert len(reference) == len(smol) == 8
    for ours, theirs in zip(reference, smol, strict=True):
        assert validate_row(theirs) == []
        assert ours["prompt"] == theirs["prompt"]

        # Same tools, same inputs and outputs, same exit codes, in the same order.
        def tools(row: dict[str, Any]) -> list[tuple[Any, ...]]:
            return [
                (s["tool_name"], s["tool_input"], s["tool_output"], s["exit_code"])
                for s in row["spans"]
            ]

        assert tools(ours) == tools(theirs)

        # Same model steps: output, reasoning, tool calls (names, arguments), output tokens.
        def steps(row: dict[str, Any]) -> list[tuple[Any, ...]]:
            return [
                (
                    s["model_output"],
                    s["reasoning_content"],
                    [(c["name"], c["arguments"]) for c in s["tool_calls"]],
                    s["output_tokens"],
                )
                for s in row["llm_steps"]
            ]

        assert steps(ours) == steps(theirs)
        # Where the agents differ: the name, and the prompt smolagents sends (its system prompt
        # and message format), which the server counts as input tokens.
        assert ours["metadata"]["agent"].startswith("agenttrace-reference-agent/")
        assert theirs["metadata"]["agent"] == f"smolagents/{smolagents.__version__}"
        assert theirs["llm_steps"][0]["input_tokens"] > ours["llm_steps"][0]["input_tokens"]
        for key in ("dataset_name", "task_id", "fixture_version", "stop_reason", "steps"):
            assert ours["metadata"][key] == theirs["metadata"][key], key
        serving = {k: v for k, v in theirs["metadata"]["serving"].items() if k != "base_url"}
        assert serving == {"model": "qwen3-1.7b", "stream": stream, "temperature": 0.6}
