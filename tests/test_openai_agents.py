"""The OpenAI Agents SDK bridge, with the real `openai-agents` (pinned in the dev group) running
`Agent`s with function tools against our scripted server over HTTP (chat completions, as the
SDK does for any OpenAI-compatible server once told to)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

agents = pytest.importorskip("agents")

from agents import (  # noqa: E402
    Agent,
    Runner,
    function_tool,
    set_default_openai_api,
    set_default_openai_client,
    set_trace_processors,
)
from conftest import Spans  # noqa: E402
from openai import AsyncOpenAI  # noqa: E402
from opentelemetry.exporter.agenttrace import AgentTraceSpanProcessor, read_rows  # noqa: E402
from opentelemetry.exporter.agenttrace.schema import validate_row  # noqa: E402

import agenttrace  # noqa: E402
from agenttrace import semconv  # noqa: E402
from agenttrace.collection.scripted_server import (  # noqa: E402
    ScriptedModelServer,
    ScriptResponder,
    Step,
)
from agenttrace.integrations.openai_agents import (  # noqa: E402
    OpenAIAgentsInstrumentor,
    step_of_response,
)

TASK = "Count the lines of /etc/hostname, then fail once."
STEPS: list[Step] = [
    {
        "content": None,
        "reasoning": "Two commands at once.",
        "tool_calls": [
            {"name": "bash", "arguments": {"command": "wc -l < /etc/hostname"}},
            {"name": "bash", "arguments": {"command": "echo oops; exit 4"}},
        ],
    },
    {"content": "One line; the second command failed.", "tool_calls": []},
]
HANDOFF_TASK = "Hand this over to the shell agent."
HANDOFF_STEPS: list[Step] = [
    {"content": None, "tool_calls": [{"name": "transfer_to_shell", "arguments": {}}]},
    {"content": None, "tool_calls": [{"name": "bash", "arguments": {"command": "echo handed"}}]},
    {"content": "handed", "tool_calls": []},
]


@function_tool
def bash(command: str) -> str:
    """Run a shell command and return its output."""
    done = agenttrace.tools.run(["bash", "-c", command], capture_output=True, text=True)
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedModelServer]:
    scripts = {TASK: STEPS, HANDOFF_TASK: HANDOFF_STEPS}
    with ScriptedModelServer(ScriptResponder(scripts), model="qwen3-scripted") as running:
        set_default_openai_client(
            AsyncOpenAI(base_url=running.base_url, api_key="x"), use_for_tracing=False
        )
        set_default_openai_api("chat_completions")
        set_trace_processors([])  # no upload to the OpenAI platform from the tests
        yield running


@pytest.fixture
def traced(configure_spans, tmp_path: Path) -> Iterator[tuple[Spans, Path]]:
    rows = tmp_path / "rows.jsonl"
    spans = configure_spans(span_processors=[AgentTraceSpanProcessor(rows, parquet=False)])
    instrumentor = OpenAIAgentsInstrumentor()
    instrumentor.instrument()
    yield spans, rows
    instrumentor.uninstrument()


def _rows(path: Path) -> list[dict[str, Any]]:
    return list(read_rows(path)) if path.exists() else []


def test_an_agent_run_with_function_tools_is_one_row(
    server: ScriptedModelServer, traced: tuple[Spans, Path]
) -> None:
    spans, rows = traced
    agent = Agent(name="nl2bash", instructions="Use bash.", tools=[bash], model="qwen3-scripted")
    result = Runner.run_sync(agent, TASK)
    assert result.final_output == "One line; the second command failed."
    (row,) = _rows(rows)
    assert validate_row(row) == []
    assert row["prompt"] == TASK and row["model"] == "qwen3-scripted"
    first, second = row["llm_steps"]
    assert first["reasoning_content"] == "Two commands at once."
    assert first["input_tokens"] > 0 and first["output_tokens"] > 0
    assert second["model_output"] == "One line; the second command failed."
    bash_spans = sorted(row["spans"], key=lambda span: span["tool_input"])
    assert [span["tool_input"] for span in bash_spans] == [
        "kwargs={'command': 'echo oops; exit 4'}",
        "kwargs={'command': 'wc -l < /etc/hostname'}",
    ]
    assert [span["exit_code"] for span in bash_spans] == [4, 0]  # from the tool's own child
    assert bash_spans[0]["tool_output"] == "oops\n"
    for span in bash_spans:  # the child's own usage, measured when it was reaped
        assert span["telemetry"]["max_rss_bytes"] > 0
    asked = {call["arguments"]["command"]: call["id"] for call in first["tool_calls"]}
    for span in bash_spans:
        command = span["tool_input"].split("'command': ", 1)[1][1:-2]
        assert span["tool_call_id"] == asked[command]
    # One trace: the workflow, the agent nested in it, its steps and tools.
    root = spans.one("invoke_agent Agent workflow")
    nested = spans.one("invoke_agent nl2bash")
    assert nested.attributes is not None and nested.attributes[semconv.RUN_NESTED] is True
    assert {span.context.trace_id for span in spans.all()} == {root.context.trace_id}


def test_a_handoff_keeps_both_agents_in_one_row(
    server: ScriptedModelServer, traced: tuple[Spans, Path]
) -> None:
    spans, rows = traced
    shell = Agent(name="shell", instructions="Use bash.", tools=[bash], model="qwen3-scripted")
    triage = Agent(
        name="triage", instructions="Hand off.", handoffs=[shell], model="qwen3-scripted"
    )
    assert Runner.run_sync(triage, HANDOFF_TASK).final_output == "handed"
    (row,) = _rows(rows)
    assert validate_row(row) == []
    assert len(row["llm_steps"]) == 3
    assert [span["tool_output"] for span in row["spans"]] == ["handed\n"]
    assert {s.name for s in spans.all() if s.name.startswith("invoke_agent")} == {
        "invoke_agent Agent workflow",
        "invoke_agent triage",
        "invoke_agent shell",
    }


def test_an_enclosing_agent_run_owns_the_row_and_its_metadata(
    server: ScriptedModelServer, traced: tuple[Spans, Path]
) -> None:
    _, rows = traced
    agent = Agent(name="nl2bash", instructions="Use bash.", tools=[bash], model="qwen3-scripted")
    with agenttrace.agent_run("nl2bash", prompt=TASK, dataset_name="nl2bash", task_id=7):
        Runner.run_sync(agent, TASK)
    (row,) = _rows(rows)
    assert row["metadata"]["task_id"] == 7 and row["metadata"]["dataset_name"] == "nl2bash"
    assert len(row["spans"]) == 2 and len(row["llm_steps"]) == 2


def test_uninstrument_stops_the_bridge(server: ScriptedModelServer, configure_spans) -> None:
    spans = configure_spans()
    instrumentor = OpenAIAgentsInstrumentor()
    instrumentor.instrument()
    instrumentor.instrument()  # idempotent: one bridge
    agent = Agent(name="nl2bash", instructions="Use bash.", tools=[bash], model="qwen3-scripted")
    Runner.run_sync(agent, TASK)
    assert len(spans.named("execute_tool bash")) == 2
    instrumentor.uninstrument()
    assert not instrumentor.is_instrumented
    spans.exporter.clear()
    Runner.run_sync(agent, TASK)
    assert spans.all() == []


def test_a_responses_api_step_is_read_from_the_real_response_type() -> None:
    # The SDK's default model calls the Responses API, which the scripted server does not speak:
    # the mapping is checked on the openai package's own Response type.
    from agents.tracing.span_data import ResponseSpanData
    from openai.types.responses import Response

    response = Response.model_validate(
        {
            "id": "resp_1",
            "created_at": 0,
            "model": "gpt-test",
            "object": "response",
            "output": [
                {
                    "type": "reasoning",
                    "id": "rs_1",
                    "summary": [{"type": "summary_text", "text": "Think first."}],
                },
                {
                    "type": "message",
                    "id": "msg_1",
                    "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": "Running it.", "annotations": []}],
                },
                {
                    "type": "function_call",
                    "id": "fc_1",
                    "call_id": "call_9",
                    "name": "bash",
                    "arguments": '{"command": "ls"}',
                },
            ],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": {
                "input_tokens": 11,
                "output_tokens": 7,
                "total_tokens": 18,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 3},
            },
        }
    )
    step = step_of_response(ResponseSpanData(response=response))
    assert (step.text, step.reasoning) == ("Running it.", "Think first.")
    assert [(c.name, c.arguments, c.id) for c in step.tool_calls] == [
        ("bash", {"command": "ls"}, "call_9")
    ]
    assert (step.input_tokens, step.output_tokens, step.reasoning_tokens) == (11, 7, 3)
