"""`collect --concurrency N`: the same rows as one at a time, telemetry kept per run, several
servers, and Ctrl-C with runs in flight, against scripted servers over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.exporter.agenttrace import AgentTraceSpanProcessor, read_rows

from agenttrace.collection.collect import collect
from agenttrace.collection.reference_agent import AgentConfig, ReferenceAgent
from agenttrace.collection.scripted_server import ScriptedModelServer, ScriptResponder, Step
from agenttrace.collection.tasks import Task, scripted_steps

MODEL = "qwen3-1.7b"


@pytest.fixture(scope="module")
def nl2bash_server() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer(ScriptResponder(scripted_steps("nl2bash")), model=MODEL) as server:
        yield server


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTTRACE_"))}


def _collect_cli(
    output: Path, *extra: str, base_urls: list[str], **popen: Any
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "agenttrace.cli", "collect", "--dataset", "nl2bash"]
    command += ["--model", MODEL, "--output", str(output), *extra]
    for url in base_urls:
        command += ["--base-url", url]
    return subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=300, **popen)


def _comparable(row: dict[str, Any]) -> dict[str, Any]:
    """A row without what differs between two collections of the same runs: times, ids, usage
    figures, and where it ran."""
    metadata = {
        k: v
        for k, v in row["metadata"].items()
        if k not in ("run_id", "platform", "hardware", "serving")
    }
    return {
        "prompt": row["prompt"],
        "model": row["model"],
        "metadata": metadata,
        "spans": [
            {k: v for k, v in span.items() if k in ("tool_name", "tool_input", "tool_output")}
            | {"exit_code": span["exit_code"], "tool_call_id": span.get("tool_call_id")}
            for span in row["spans"]
        ],
        "llm_steps": [
            {
                k: v
                for k, v in step.items()
                if k not in ("step_id", "duration_ms", "start_ns", "end_ns")
            }
            for step in row["llm_steps"]
        ],
    }


def test_eight_at_once_writes_the_same_rows_as_one_at_a_time(
    tmp_path: Path, nl2bash_server: ScriptedModelServer
) -> None:
    one, eight = tmp_path / "one.jsonl", tmp_path / "eight.jsonl"
    for output, concurrency in ((one, "1"), (eight, "8")):
        done = _collect_cli(output, "-j", concurrency, base_urls=[nl2bash_server.base_url])
        assert done.returncode == 0, done.stderr
    by_task = {
        name: {row["metadata"]["task_id"]: row for row in read_rows(path)}
        for name, path in (("one", one), ("eight", eight))
    }
    assert sorted(by_task["one"]) == sorted(by_task["eight"]) == list(range(8))
    for task_id, row in by_task["one"].items():
        assert _comparable(row) == _comparable(by_task["eight"][task_id]), task_id
    # Each run its own trace, even eight at once.
    assert len({row["trace_id"] for row in by_task["eight"].values()}) == 8


def test_tasks_are_spread_over_every_base_url(tmp_path: Path) -> None:
    scripts = scripted_steps("nl2bash")
    with (
        ScriptedModelServer(ScriptResponder(scripts), model=MODEL) as first,
        ScriptedModelServer(ScriptResponder(scripts), model=MODEL) as second,
    ):
        output = tmp_path / "rows.jsonl"
        urls = [first.base_url, second.base_url]
        done = _collect_cli(output, "-j", "4", base_urls=urls)
        assert done.returncode == 0, done.stderr
        served = [first.responder.requests, second.responder.requests]  # type: ignore[attr-defined]
    rows = list(read_rows(output))
    used = sorted(row["metadata"]["serving"]["base_url"].rstrip("/") for row in rows)
    assert used.count(urls[0]) == used.count(urls[1]) == 4
    assert served[0] > 0 and served[1] > 0


HEAVY = "Allocate and compute a lot."
LIGHT = "Wait a moment and say hi."
HEAVY_COMMAND = "python3 -c 'x = bytearray(200 * 1024 * 1024); print(sum(range(30_000_000)))'"
LIGHT_COMMAND = "sleep 1; echo hi"


def _script(command: str) -> list[Step]:
    return [
        {"content": None, "tool_calls": [{"name": "bash", "arguments": {"command": command}}]},
        {"content": None, "tool_calls": [{"name": "final_answer", "arguments": {"answer": "ok"}}]},
    ]


def test_two_runs_at_once_keep_their_own_telemetry(configure_spans, tmp_path: Path) -> None:
    rows_path = tmp_path / "rows.jsonl"
    configure_spans(span_processors=[AgentTraceSpanProcessor(rows_path, parquet=False)])
    responder = ScriptResponder({HEAVY: _script(HEAVY_COMMAND), LIGHT: _script(LIGHT_COMMAND)})
    tasks = [
        Task("nl2bash", 0, HEAVY, "nl2bash", "train"),
        Task("nl2bash", 1, LIGHT, "nl2bash", "train"),
    ]
    with ScriptedModelServer(responder, model=MODEL) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        agent = ReferenceAgent(client, AgentConfig(model=MODEL))
        summary = collect(agent, tasks, output=rows_path, concurrency=2)
    assert [result.stop_reason for _, result in summary.results] == ["final_answer"] * 2
    by_prompt = {row["prompt"]: row for row in read_rows(rows_path)}
    heavy = by_prompt[HEAVY]["spans"][0]
    light = by_prompt[LIGHT]["spans"][0]
    # They ran at the same time...
    assert heavy["start_ns"] < light["end_ns"] and light["start_ns"] < heavy["end_ns"]
    # ...and each tool's figures are its own child's.
    light_cpu = light["telemetry"]["user_time_s"] + light["telemetry"]["system_time_s"]
    assert heavy["telemetry"]["user_time_s"] > 0.2
    assert light_cpu < 0.1 and heavy["telemetry"]["user_time_s"] > 10 * light_cpu
    assert heavy["telemetry"]["max_rss_bytes"] > 150 * 1024 * 1024
    assert light["telemetry"]["max_rss_bytes"] < 50 * 1024 * 1024


def test_ctrl_c_with_runs_in_flight_keeps_finished_runs_and_resume_retries_the_rest(
    tmp_path: Path,
) -> None:
    scripts = scripted_steps("nl2bash")
    output = tmp_path / "rows.jsonl"
    # Slow model: 1.5 s a completion, so runs are in flight when Ctrl-C comes.
    with ScriptedModelServer(ScriptResponder(scripts), model=MODEL, latency_s=1.5) as slow:
        command = [sys.executable, "-m", "agenttrace.cli", "collect", "--dataset", "nl2bash"]
        command += ["--model", MODEL, "--output", str(output), "-j", "3"]
        command += ["--base-url", slow.base_url]
        process = subprocess.Popen(
            command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the first runs have finished
            if output.exists() and len(output.read_text().splitlines()) >= 3:
                break
            time.sleep(0.1)
        # The next three runs start as those end, and wait 1.5 s on their first completion: by
        # now they are in flight, whatever the load on the machine.
        time.sleep(0.7)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    finished = {
        r["metadata"]["task_id"]
        for r in rows
        if not r["metadata"].get("incomplete")
        and r["metadata"].get("stop_reason") == "final_answer"
    }
    cut_short = {r["metadata"]["task_id"] for r in rows} - finished
    assert 3 <= len(finished) < 8
    assert cut_short, "no run was in flight at Ctrl-C"
    for row in rows:  # the runs in flight were written, marked
        if row["metadata"]["task_id"] in cut_short:
            assert row["metadata"].get("incomplete") or row["metadata"].get("error_type")
    with ScriptedModelServer(ScriptResponder(scripts), model=MODEL) as fast:
        done = _collect_cli(output, "-j", "3", base_urls=[fast.base_url])
    assert done.returncode == 0, done.stderr
    assert f"{len(cut_short)} of them retried" in done.stdout
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    completed = [
        r["metadata"]["task_id"]
        for r in rows
        if not r["metadata"].get("incomplete")
        and r["metadata"].get("stop_reason") == "final_answer"
    ]
    assert sorted(completed) == list(range(8))  # every task once, none run twice
