"""The embedded default run behind `agenttrace demo`: a small scripted agent, fully instrumented.

A scripted "model" (no network, no weights) asks for three tool calls: a real `bash` subprocess, an
in-process Python computation and `final_answer`. The spans are written as JSON lines (one OTel
span per line) into the output directory, and a per-span summary is printed.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import agenttrace
from agenttrace import semconv

MODEL = "scripted-demo"
# (tool name, arguments) the scripted model asks for, one per step.
_SCRIPT: list[tuple[str, dict[str, Any]]] = [
    ("bash", {"command": "ls -1 | head -n 5; echo files listed"}),
    ("python_interpreter", {"code": "sum(i * i for i in range(200_000))"}),
    ("final_answer", {"answer": "done"}),
]


class JsonLinesSpanExporter(SpanExporter):
    """Appends each finished span as one compact JSON line (the OTel SDK's own JSON form)."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in shutdown

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            for span in spans:
                self._file.write(json.dumps(json.loads(span.to_json())) + "\n")
            self._file.flush()
        except (OSError, ValueError):
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._file.close()


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
    """Run the scripted agent once; return the spans file."""
    output_dir.mkdir(parents=True, exist_ok=True)
    spans_path = output_dir / "spans.jsonl"
    exporter = JsonLinesSpanExporter(spans_path)
    provider = agenttrace.configure(
        service_name="agenttrace-demo", span_processors=[SimpleSpanProcessor(exporter)]
    )
    cwd = os.getcwd()
    demo_agent("List a few files, then compute a sum of squares.")
    if provider is not None:
        provider.force_flush()
    os.chdir(cwd)
    return spans_path


def summarise(spans_path: Path, out: Any = sys.stdout) -> None:
    rows = [json.loads(line) for line in spans_path.read_text(encoding="utf-8").splitlines()]
    rows = rows[-(len(_SCRIPT) * 2 + 1) :]
    out.write(f"{'span':34} {'ms':>8} {'cpu_s':>8} {'peak_rss_MiB':>12}\n")
    for row in sorted(rows, key=lambda r: r["start_time"]):
        attributes = row.get("attributes", {})
        cpu = attributes.get(semconv.TELEMETRY_USER_TIME_S)
        rss = attributes.get(semconv.TELEMETRY_MAX_RSS_BYTES)
        start = datetime.fromisoformat(row["start_time"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(row["end_time"].replace("Z", "+00:00"))
        millis = (end - start).total_seconds() * 1000
        out.write(
            f"{row['name']:34} {millis:8.1f} "
            f"{'' if cpu is None else f'{cpu:.3f}':>8} "
            f"{'' if rss is None else f'{rss / 2**20:.1f}':>12}\n"
        )
