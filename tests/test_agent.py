"""The reference agent, tasks, fixture, and the collect / replay commands against a local server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agenttrace.collection import fixture
from agenttrace.collection.collect import finished_task_ids
from agenttrace.collection.scripted_server import ScriptedModelServer, ScriptResponder
from agenttrace.collection.tasks import TaskError, load_tasks, scripted_steps

REPO = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).with_name("agenttrace")


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_fixture_is_deterministic_and_checked(tmp_path: Path) -> None:
    first = fixture.build(tmp_path / "a")
    assert first == fixture.build(tmp_path / "b") == fixture.FIXTURE_VERSION
    assert fixture.tree_digest(fixture.copy(tmp_path / "a", tmp_path / "c")) == first
    (tmp_path / "a" / "testbed" / "notes" / "note0.txt").write_text("changed\n")
    assert fixture.check(tmp_path / "a") == (False, fixture.tree_digest(tmp_path / "a"))
    script = REPO / "fixtures" / "nl2bash_fixture.py"
    assert (
        subprocess.run(
            [sys.executable, str(script), "--check", str(tmp_path / "a")], capture_output=True
        ).returncode
        == 1
    )
    built = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "d")], capture_output=True, text=True
    )
    assert built.returncode == 0 and fixture.FIXTURE_VERSION in built.stdout
    assert (
        subprocess.run([sys.executable, str(script), "--check", str(tmp_path / "d")]).returncode
        == 0
    )


def test_tasks_from_bundled_local_files_and_a_clear_error_offline(
    tmp_path: Path, monkeypatch
) -> None:
    nl2bash = load_tasks("nl2bash")
    assert nl2bash[0].task_id == 0 and nl2bash[0].gold
    assert set(scripted_steps("nl2bash")) == {t.prompt for t in nl2bash}
    mbpp = load_tasks("mbpp", limit=2)
    assert len(mbpp) == 2 and "Your code should pass these tests" in mbpp[0].prompt
    local = tmp_path / "tasks.jsonl"
    local.write_text(json.dumps({"query": "Print the date.", "gold": "date"}) + "\n")
    (task,) = load_tasks("nl2bash", str(local))
    assert (task.task_id, task.prompt, task.split) == (0, "Print the date.", "local")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table(
            {"task_id": [601], "text": ["Add."], "code": ["x"], "test_list": [["assert True"]]}
        ),
        tmp_path / "mbpp.parquet",
    )
    assert load_tasks("mbpp", str(tmp_path / "mbpp.parquet"))[0].task_id == 601
    with pytest.raises(TaskError, match="no task file"):
        load_tasks("nl2bash", str(tmp_path / "missing.jsonl"))
    with pytest.raises(TaskError, match="unknown dataset"):
        load_tasks("gsm8k")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(TaskError, match="Hugging Face hub"):
        load_tasks("nl2bash", "hub")


@pytest.fixture
def bundled_server() -> Iterator[ScriptedModelServer]:
    scripts = {**scripted_steps("nl2bash"), **scripted_steps("mbpp")}
    with ScriptedModelServer(ScriptResponder(scripts), model="qwen3-test") as server:
        yield server


def _collect(
    server: ScriptedModelServer, output: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTTRACE_"))}
    return subprocess.run(
        [
            str(SCRIPT),
            "collect",
            "--model",
            "qwen3-test",
            "--base-url",
            server.base_url,
            "--output",
            str(output),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def _tool_calls(rows: list[dict]) -> list[list[tuple[str, str]]]:
    return [[(s["tool_name"], s["tool_input"]) for s in row["spans"]] for row in rows]


def test_collect_resumes_and_streaming_gives_the_same_steps(bundled_server, tmp_path: Path) -> None:
    out = tmp_path / "nl2bash.jsonl"
    first = _collect(
        bundled_server,
        out,
        "--dataset",
        "nl2bash",
        "-n",
        "3",
        "--temperature",
        "0.6",
        "--fixture",
        str(tmp_path / "fx"),
    )
    assert first.returncode == 0, first.stderr
    assert [r["metadata"]["task_id"] for r in _rows(out)] == [0, 1, 2]
    second = _collect(
        bundled_server, out, "--dataset", "nl2bash", "-n", "5", "--fixture", str(tmp_path / "fx")
    )
    assert second.returncode == 0, second.stderr
    assert "2 runs added" in second.stdout and "(3 already there)" in second.stdout
    rows = _rows(out)
    assert [r["metadata"]["task_id"] for r in rows] == [0, 1, 2, 3, 4]
    serving = rows[0]["metadata"]["serving"]
    assert serving["model"] == "qwen3-test" and serving["temperature"] == 0.6
    assert serving["base_url"].startswith("http://127.0.0.1:")
    assert rows[0]["metadata"]["hardware"]["cpu_count_logical"] >= 1
    streamed = tmp_path / "streamed.jsonl"
    third = _collect(
        bundled_server,
        streamed,
        "--dataset",
        "nl2bash",
        "-n",
        "3",
        "--stream",
        "--temperature",
        "0.6",
        "--fixture",
        str(tmp_path / "fx"),
    )
    assert third.returncode == 0, third.stderr

    def steps(row: dict) -> list[dict]:
        keep = (
            "step_number",
            "model_output",
            "reasoning_content",
            "tool_calls",
            "input_tokens",
            "output_tokens",
        )
        return [{k: s[k] for k in keep} for s in row["llm_steps"]]

    assert [steps(r) for r in _rows(streamed)] == [steps(r) for r in rows[:3]]
    assert _tool_calls(_rows(streamed)) == _tool_calls(rows[:3])
    assert (tmp_path / "nl2bash.parquet").exists()


def test_collect_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTTRACE_"))}
    result = subprocess.run(
        [
            str(SCRIPT),
            "collect",
            "--dataset",
            "mbpp",
            "--model",
            "m",
            "--base-url",
            "http://127.0.0.1:9/v1",
            "--output",
            str(tmp_path / "x.jsonl"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 1 and "cannot reach http://127.0.0.1:9/v1" in result.stderr
    assert _cli_usage_error()


def _cli_usage_error() -> bool:
    result = subprocess.run([str(SCRIPT), "collect", "--dataset", "gsm8k"], capture_output=True)
    return result.returncode == 2


def test_replay_reissues_the_same_tool_calls(bundled_server, tmp_path: Path) -> None:
    recorded = tmp_path / "mbpp.jsonl"
    assert _collect(bundled_server, recorded, "--dataset", "mbpp").returncode == 0
    nl2bash = tmp_path / "nl2bash.jsonl"
    assert (
        _collect(
            bundled_server,
            nl2bash,
            "--dataset",
            "nl2bash",
            "-n",
            "2",
            "--fixture",
            str(tmp_path / "fx"),
        ).returncode
        == 0
    )
    with open(recorded, "a") as handle:  # one file, both datasets
        handle.write(nl2bash.read_text())
    result = subprocess.run(
        [str(SCRIPT), "replay", str(recorded), "--fixture", str(tmp_path / "fx")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    replayed = _rows(tmp_path / "mbpp.replay.jsonl")
    original = _rows(recorded)
    assert _tool_calls(replayed) == _tool_calls(original)
    assert [r["spans"][0]["tool_output"] for r in replayed] == [
        r["spans"][0]["tool_output"] for r in original
    ]
    assert {r["metadata"]["run_id"] for r in replayed} == {"replay-mbpp"}
    assert all(r["trace_id"] not in {o["trace_id"] for o in original} for r in replayed)


INTERRUPT_TASKS = [{"task_id": 0, "query": "quick task"}, {"task_id": 1, "query": "slow task"}]
INTERRUPT_SCRIPT = {
    "quick task": [{"tool_calls": [{"name": "final_answer", "arguments": {"answer": "done"}}]}],
    "slow task": [{"tool_calls": [{"name": "bash", "arguments": {"command": "sleep 30"}}]}],
}


def _running_sleep(pid: int) -> bool:
    """Whether a `sleep 30` runs among the descendants of process `pid`."""
    import psutil

    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return False
    for child in children:
        try:
            if child.cmdline()[-2:] == ["sleep", "30"]:
                return True
        except psutil.Error:
            continue
    return False


def test_ctrl_c_keeps_finished_runs_and_resume_redoes_the_interrupted_one(tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("".join(json.dumps(t) + "\n" for t in INTERRUPT_TASKS))
    out = tmp_path / "runs.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTTRACE_"))}
    with ScriptedModelServer(ScriptResponder(INTERRUPT_SCRIPT)) as server:
        process = subprocess.Popen(
            [
                str(SCRIPT),
                "collect",
                "--dataset",
                "nl2bash",
                "--tasks",
                str(tasks),
                "--model",
                "m",
                "--base-url",
                server.base_url,
                "--output",
                str(out),
                "--fixture",
                str(tmp_path / "fx"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and (not out.exists() or not out.read_text()):
                time.sleep(0.1)
            # Interrupt only once the slow task is inside its bash tool: its `sleep 30` runs.
            while time.monotonic() < deadline and not _running_sleep(process.pid):
                time.sleep(0.05)
            assert _running_sleep(process.pid), "the slow task's tool never started"
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 130, stderr
    assert "run the same command again to resume" in stderr
    rows = _rows(out)
    assert (
        rows[0]["metadata"]["task_id"] == 0 and rows[0]["metadata"]["stop_reason"] == "final_answer"
    )
    assert rows[1]["metadata"]["stop_reason"] == "interrupted"
    assert finished_task_ids(out, "nl2bash") == {0}
