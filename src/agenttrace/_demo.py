"""The embedded default run behind `agenttrace demo`: a small scripted agent, fully instrumented.

A scripted "model" (no network, no weights) asks for three tool calls: a real `bash` subprocess, an
in-process Python computation and `final_answer`. The run is written as an AgentTrace row to a
JSONL file and its Parquet twin in the output directory, and a per-tool summary is printed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from opentelemetry.exporter.agenttrace import read_rows

import agenttrace

MODEL = "scripted-demo"
# (tool name, arguments) the scripted model asks for, one per step.
_SCRIPT: list[tuple[str, dict[str, Any]]] = [
    ("bash", {"command": "ls -1 | head -n 5; echo files listed"}),
    ("python_interpreter", {"code": "sum(i * i for i in range(200_000))"}),
    ("final_answer", {"answer": "done"}),
]


@agenttrace.tool(name="bash")
def bash(command: str) -> str:
    completed = agenttrace.run(["bash", "-c", command], capture_output=True, text=True, timeout=30)
    return completed.stdout + completed.stderr


@agenttrace.tool(name="python_interpreter")
def python_interpreter(code: str) -> str:
    return repr(eval(code, {"__builtins__": {"sum": sum, "range": range}}))  # noqa: S307 - demo


@agenttrace.tool(name="final_answer")
def final_answer(answer: str) -> str:
    return answer


_TOOLS = {"bash": bash, "python_interpreter": python_interpreter, "final_answer": final_answer}


@agenttrace.llm(model=MODEL, provider="scripted")
def scripted_model(step: int, messages: list[dict[str, Any]]) -> agenttrace.StepRecord:
    name, arguments = _SCRIPT[step]
    call = agenttrace.ToolCallRecord(name=name, arguments=arguments, id=f"call_{step + 1}")
    return agenttrace.StepRecord(
        text=None,
        reasoning=f"Step {step + 1}: use {name}.",
        tool_calls=[call],
        finish_reason="tool_calls",
        response_model=MODEL,
        input_tokens=40 + 25 * step,
        output_tokens=12,
    )


@agenttrace.agent(name="demo-agent", model=MODEL)
def demo_agent(prompt: str) -> str:
    agenttrace.set_run_metadata(
        dataset_name="demo", task_id=0, run_id="demo-0", dataset_split="demo"
    )
    messages: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
    answer = ""
    for step in range(len(_SCRIPT)):
        record = scripted_model(step, messages)
        for call in record.tool_calls:
            with agenttrace.using_call_id(call.id or ""):
                answer = _TOOLS[call.name](**call.arguments)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": answer})
    return answer


def run_demo(output_dir: Path) -> Path:
    """Run the scripted agent once; return the AgentTrace JSONL file it was written to."""
    output_dir.mkdir(parents=True, exist_ok=True)
    rows_path = output_dir / "demo.jsonl"
    rows_path.unlink(missing_ok=True)  # each demo run starts its files afresh
    agenttrace.configure(service_name="agenttrace-demo", output=rows_path)
    demo_agent("List a few files, then compute a sum of squares.")
    agenttrace.shutdown()  # completes the Parquet twin
    return rows_path


def summarise(rows_path: Path, out: Any = sys.stdout) -> None:
    for row in read_rows(rows_path):
        out.write(
            f"run {row['trace_id']}: {len(row['llm_steps'])} model steps, "
            f"{len(row['spans'])} tool calls, {row['total_duration_ms']:.1f} ms\n"
        )
        out.write(f"{'tool':20} {'ms':>8} {'cpu_s':>8} {'peak_rss_MiB':>12} {'exit':>5}\n")
        for span in row["spans"]:
            telemetry = span["telemetry"]
            cpu = telemetry["user_time_s"] + telemetry["system_time_s"]
            out.write(
                f"{span['tool_name']:20} {span['duration_ms']:8.1f} {cpu:8.3f} "
                f"{telemetry['max_rss_bytes'] / 2**20:12.1f} {span['exit_code']:5d}\n"
            )
