"""The CLI at its edges: no data lost silently, nothing written over, never a traceback."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import cast

import click
import openai
import pytest
from click.testing import CliRunner

from agenttrace.collection.reference_agent import ReferenceAgent, RunResult
from agenttrace.collection.scripted_server import ScriptedModelServer, ScriptResponder
from agenttrace.collection.tasks import Task, scripted_steps

SCRIPT = Path(sys.executable).with_name("agenttrace")


def _env(tmp_path: Path) -> dict[str, str]:
    """A clean environment whose temporary directory is the test's own (to see what is left)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTTRACE_"))}
    scratch = tmp_path / "tmp"
    scratch.mkdir(exist_ok=True)
    env["TMPDIR"] = str(scratch)
    return env


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(tmp_path),
        cwd=tmp_path,
    )


def _one_line_error(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """The single `Error: ...` line a failed command printed (and that it printed no more)."""
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _release_rows(count: int, prefix: str = "5f0c6d4e") -> list[dict]:
    """Valid rows (the release's format), each with its own trace_id."""
    from test_roundtrip import RELEASE_ROW

    rows = []
    for task_id in range(count):
        row = json.loads(json.dumps(RELEASE_ROW))
        row["trace_id"] = f"{prefix}-8a3b-4b1e-9c2d-{task_id:012d}"
        row["metadata"]["task_id"] = task_id
        rows.append(row)
    return rows


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _write_parquet(path: Path, rows: list[dict]) -> Path:
    from opentelemetry.exporter.agenttrace import ParquetWriter

    writer = ParquetWriter(path, raw_file=path.with_suffix(".jsonl").name)
    for row in rows:
        writer.write_row(row)
    writer.close()
    return path


@pytest.fixture(scope="module")
def model_server() -> object:
    """The scripted model server with the bundled tasks' scripts (model `error-500` fails)."""
    scripts = {**scripted_steps("nl2bash"), **scripted_steps("mbpp")}
    with ScriptedModelServer(ScriptResponder(scripts)) as server:
        yield server


# -- collect: runs the model server cut short are retried ---------------------------------------


def _row(task_id: int, **metadata: object) -> dict:
    return {"metadata": {"dataset_name": "mbpp", "task_id": task_id, **metadata}}


def test_resume_retries_runs_cut_short_and_only_those(tmp_path: Path) -> None:
    rows = [
        _row(0, stop_reason="final_answer"),
        _row(1, error_type="APIConnectionError"),
        _row(2, stop_reason="interrupted", error_type="KeyboardInterrupt"),
        _row(3, error_type="InternalServerError"),
        _row(4, error_type="SystemExit"),  # the collector got SIGTERM
        _row(5, error_type="ValueError"),  # the agent raised: the run's own outcome
        _row(6, error_type="RateLimitError"),
        _row(6, stop_reason="final_answer"),  # ... and the retry finished
        _row(7, incomplete=True),
    ]
    from agenttrace.collection.collect import finished_task_ids

    path = _write_jsonl(tmp_path / "runs.jsonl", rows)
    assert finished_task_ids(path, "mbpp") == {0, 5, 6}
    from agenttrace.collection.collect import task_ids

    assert task_ids(path, "mbpp") == ({0, 5, 6}, {1, 2, 3, 4, 7})


def test_every_retried_error_name_is_an_openai_api_error() -> None:
    from agenttrace.collection.collect import FATAL_ERRORS, MODEL_SERVER_ERRORS

    for name in MODEL_SERVER_ERRORS:
        assert issubclass(getattr(openai, name), openai.APIError), name
    assert FATAL_ERRORS <= MODEL_SERVER_ERRORS


class _FailingAgent:
    """Stands in for ReferenceAgent: fails the tasks named in `errors`, finishes the others."""

    def __init__(self, errors: dict[int, Exception]) -> None:
        self.errors = errors
        self.ran: list[int] = []

    def run(self, task: Task, *, run_id: str) -> RunResult:
        self.ran.append(task.task_id)
        if task.task_id in self.errors:
            raise self.errors[task.task_id]
        return RunResult("done", 1, "final_answer")


def _error(cls: type[Exception], message: str = "failed") -> Exception:
    """An instance of an `openai` error class without an HTTP exchange behind it (collect only
    looks at its class and message)."""
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    return error


def test_collect_goes_on_past_a_failed_run_and_stops_when_nothing_can_succeed(
    tmp_path: Path,
) -> None:
    from agenttrace.collection.collect import CollectAborted, collect

    tasks = [Task("mbpp", i, f"task {i}", "mbpp", "test") for i in range(4)]
    agent = _FailingAgent({1: _error(openai.RateLimitError)})
    summary = collect(
        cast(ReferenceAgent, agent), tasks, output=tmp_path / "none.jsonl", run_id="r"
    )
    assert agent.ran == [0, 1, 2, 3]
    assert [t.task_id for t, _ in summary.failures] == [1]
    assert [r.stop_reason for _, r in summary.results] == [
        "final_answer",
        "RateLimitError",
        "final_answer",
        "final_answer",
    ]

    agent = _FailingAgent({2: _error(openai.APIConnectionError)})
    with pytest.raises(CollectAborted) as aborted:
        collect(cast(ReferenceAgent, agent), tasks, output=tmp_path / "none.jsonl", run_id="r")
    assert agent.ran == [0, 1, 2] and aborted.value.task.task_id == 2
    assert len(aborted.value.summary.results) == 3

    agent = _FailingAgent({0: ZeroDivisionError("a bug in the agent")})
    with pytest.raises(ZeroDivisionError):  # not the model server's: not hidden as a failure
        collect(cast(ReferenceAgent, agent), tasks, output=tmp_path / "none.jsonl", run_id="r")


def _collect(tmp_path: Path, base_url: str, model: str, *args: str) -> subprocess.CompletedProcess:
    return _cli(
        tmp_path,
        "collect",
        "--dataset",
        "mbpp",
        "--model",
        model,
        "--base-url",
        base_url,
        "--output",
        str(tmp_path / "runs.jsonl"),
        *args,
    )


@pytest.mark.slow
def test_collect_marks_server_errors_retries_them_and_says_how_many(
    tmp_path: Path, model_server
) -> None:
    failed = _collect(tmp_path, model_server.base_url, "error-500", "-n", "1")
    line = _one_line_error(failed)
    assert "1 run failed on the model server (1 InternalServerError" in line
    assert "run the same command again to retry them" in line
    (row,) = _rows(tmp_path / "runs.jsonl")
    assert row["metadata"]["error_type"] == "InternalServerError"

    retried = _collect(tmp_path, model_server.base_url, "m", "-n", "2")
    assert retried.returncode == 0, retried.stderr
    assert "2 runs added" in retried.stdout and "1 of them retried" in retried.stdout
    rows = _rows(tmp_path / "runs.jsonl")
    assert [(r["metadata"]["task_id"], r["metadata"].get("stop_reason")) for r in rows] == [
        (1, None),
        (1, "final_answer"),
        (2, "final_answer"),
    ]

    from agenttrace.analysis.dataset import analyze, load

    result = analyze(load([tmp_path / "runs.jsonl", tmp_path / "runs.parquet"]))
    assert result["counts"]["traces"] == 2  # the retry counts, the failed run does not
    assert result["left_out"] == {"duplicate_rows": 3, "infrastructure_failures": 1}


@pytest.mark.slow
def test_collect_against_nothing_stops_at_once_and_resume_retries_that_task(
    tmp_path: Path,
) -> None:
    port = _free_port()
    down = _collect(tmp_path, f"http://127.0.0.1:{port}/v1", "m", "-n", "2")
    line = _one_line_error(down)
    assert f"cannot reach http://127.0.0.1:{port}/v1" in line
    assert [r["metadata"]["error_type"] for r in _rows(tmp_path / "runs.jsonl")] == [
        "APIConnectionError"
    ]
    scripts = scripted_steps("mbpp")
    with ScriptedModelServer(ScriptResponder(scripts), port=port) as server:
        up = _collect(tmp_path, server.base_url, "m", "-n", "2")
    assert up.returncode == 0, up.stderr
    assert "2 runs added" in up.stdout and "1 of them retried" in up.stdout
    assert "stopped at mbpp task 1" in line  # the error said where it stopped


# -- replay and demo: never over an input, never over an output without --force -----------------


def test_replay_never_writes_over_its_input_or_an_existing_output(tmp_path: Path) -> None:
    source = _write_jsonl(tmp_path / "rec.jsonl", _release_rows(2))
    before = source.read_bytes()
    for force in ([], ["--force"]):  # --force overwrites outputs, never an input
        same = _cli(tmp_path, "replay", str(source), "-o", str(source), *force)
        assert "is an input" in _one_line_error(same, code=2)
    twin = _write_parquet(tmp_path / "twin.parquet", _release_rows(2))
    twin_bytes = twin.read_bytes()
    # Replaying twin.parquet into twin.jsonl would write its Parquet twin over the source.
    into_twin = _cli(tmp_path, "replay", str(twin), "-o", str(tmp_path / "twin.jsonl"))
    assert "twin.parquet is an input" in _one_line_error(into_twin, code=2)
    existing = tmp_path / "rec.replay.jsonl"
    existing.write_text("keep me\n")
    refused = _cli(tmp_path, "replay", str(source))
    assert "use --force to overwrite it" in _one_line_error(refused, code=2)
    assert existing.read_text() == "keep me\n"
    assert source.read_bytes() == before and twin.read_bytes() == twin_bytes


@pytest.mark.slow
def test_collect_and_replay_remove_their_temporary_fixture(tmp_path: Path, model_server) -> None:
    recorded = tmp_path / "nl.jsonl"
    collected = _cli(
        tmp_path,
        "collect",
        "--dataset",
        "nl2bash",
        "-n",
        "1",
        "--model",
        "m",
        "--base-url",
        model_server.base_url,
        "-o",
        str(recorded),
    )
    assert collected.returncode == 0, collected.stderr
    assert list((tmp_path / "tmp").glob("agenttrace-fixture-*")) == []
    output = tmp_path / "nl.replay.jsonl"
    output.write_text("an earlier replay\n")
    replayed = _cli(tmp_path, "replay", str(recorded), "--force")
    assert replayed.returncode == 0, replayed.stderr
    assert [r["spans"][0]["tool_input"] for r in _rows(output)] == [
        r["spans"][0]["tool_input"] for r in _rows(recorded)
    ]
    assert list((tmp_path / "tmp").glob("agenttrace-fixture-*")) == []


@pytest.mark.slow
def test_demo_refuses_to_overwrite_an_earlier_demo_without_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "demo.jsonl").write_text("an earlier demo\n")
    refused = _cli(tmp_path, "demo", "-o", str(out))
    assert "use --force" in _one_line_error(refused, code=2)
    assert (out / "demo.jsonl").read_text() == "an earlier demo\n"
    (out / "demo.jsonl").unlink()
    (out / "demo.parquet").write_text("an earlier Parquet file\n")
    assert _cli(tmp_path, "demo", "-o", str(out)).returncode == 2
    forced = _cli(tmp_path, "demo", "-o", str(out), "--force")
    assert forced.returncode == 0, forced.stderr
    assert len(_rows(out / "demo.jsonl")) == 12


# -- convert: rows that fail validation are an error ---------------------------------------------


def test_convert_rejects_a_row_that_fails_validation(tmp_path: Path) -> None:
    source = _write_jsonl(tmp_path / "in.jsonl", [*_release_rows(2), {"a": 1}])
    result = _cli(tmp_path, "convert", str(source), "-o", str(tmp_path / "out.parquet"))
    line = _one_line_error(result)
    assert f"{source}:line 3: trace_id: missing" in line
    parquet = _write_parquet(tmp_path / "bad.parquet", [{"a": 1}])
    result = _cli(tmp_path, "convert", str(parquet), "-o", str(tmp_path / "out.jsonl"))
    assert f"{parquet}:row 1: " in _one_line_error(result)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [
        "bad.parquet",
        "in.jsonl",
    ]


# -- no traceback on an unusable target ----------------------------------------------------------


@pytest.fixture
def blocker(tmp_path: Path) -> Path:
    """A regular file: any path below it is unusable, even for root (ENOTDIR/EEXIST)."""
    path = tmp_path / "file.txt"
    path.write_text("in the way\n")
    return path


@pytest.mark.parametrize(
    "command",
    [
        ["convert", "{rows}", "-o", "{blocked}/out.parquet"],
        ["plots", "{rows}", "--output-dir", "{blocked}/plots"],
        ["replay", "{rows}", "-o", "{blocked}/replay.jsonl"],
        ["fixture", "{blocked}/fixture"],
        ["demo", "-o", "{blocked}/demo"],
        [
            "collect",
            "--dataset",
            "mbpp",
            "--model",
            "m",
            "--base-url",
            "http://127.0.0.1:9/v1",
            "-o",
            "{blocked}/runs.jsonl",
        ],
        ["send", "{rows}", "--endpoint", "http://localhost:99999"],
        ["send", "{rows}", "--endpoint", "http://[::1/v1"],
    ],
    ids=lambda command: command[0],
)
def test_an_unusable_target_is_a_one_line_error(
    tmp_path: Path, blocker: Path, command: list[str]
) -> None:
    rows = _write_jsonl(tmp_path / "rows.jsonl", _release_rows(1))
    args = [part.format(rows=rows, blocked=blocker) for part in command]
    line = _one_line_error(_cli(tmp_path, *args))
    assert str(blocker) in line or "endpoint" in line
    assert blocker.read_text() == "in the way\n"


def _group_raising(error: Exception) -> click.Group:
    from agenttrace.cli._app import Commands as _Commands

    @click.group(cls=_Commands)
    def group() -> None:
        pass

    @group.command()
    def fail() -> None:
        raise error

    return group


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (PermissionError(errno.EACCES, "Permission denied", "/ro/out.jsonl"), "/ro/out.jsonl"),
        (IsADirectoryError(errno.EISDIR, "Is a directory", "/tmp"), "/tmp: Is a directory"),
        (RuntimeError("boom"), "unexpected RuntimeError: boom"),
    ],
)
def test_the_command_group_turns_errors_into_one_line(error: Exception, message: str) -> None:
    from opentelemetry.exporter.agenttrace import AgentTraceFileError

    result = CliRunner().invoke(_group_raising(error), ["fail"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    (line,) = result.output.strip().splitlines()
    assert line.startswith("Error: ") and message in line
    bad_file = AgentTraceFileError("runs.jsonl", "line 3", "not valid JSON")
    result = CliRunner().invoke(_group_raising(bad_file), ["fail"])
    assert result.exit_code == 1 and result.output.strip() == f"Error: {bad_file}"


# -- analyze and send: a run counts once, files are keyed by path --------------------------------


def test_analyze_counts_twins_once_and_keeps_same_named_files_apart(tmp_path: Path) -> None:
    first = _release_rows(2, prefix="aaaaaaaa")
    jsonl = _write_jsonl(tmp_path / "a" / "runs.jsonl", first)
    parquet = _write_parquet(tmp_path / "a" / "runs.parquet", first)
    other = _write_jsonl(tmp_path / "b" / "runs.jsonl", _release_rows(1, prefix="bbbbbbbb"))
    result = _cli(tmp_path, "analyze", "--json", str(jsonl), str(parquet), str(other))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    per_file = {path: r["counts"]["traces"] for path, r in report["files"].items()}
    assert per_file == {str(jsonl): 2, str(parquet): 2, str(other): 1}
    assert report["combined"]["counts"]["traces"] == 3
    assert report["combined"]["counts"]["tool_spans"] == 3 * len(first[0]["spans"])
    assert report["combined"]["left_out"]["duplicate_rows"] == 2


def test_send_sends_each_run_once(tmp_path: Path) -> None:
    from otlp_receiver import OTLPReceiver

    rows = _release_rows(2)
    jsonl = _write_jsonl(tmp_path / "runs.jsonl", rows)
    parquet = _write_parquet(tmp_path / "runs.parquet", rows)
    receiver = OTLPReceiver().start()
    try:
        result = _cli(
            tmp_path, "send", str(jsonl), str(parquet), "--endpoint", receiver.http_endpoint
        )
        spans = list(receiver.spans)
    finally:
        receiver.stop()
    assert result.returncode == 0, result.stderr
    assert "of 2 runs" in result.stdout and "2 rows repeated a run already sent" in result.stdout
    assert len(spans) == len({(s.trace_id, s.span_id) for s in spans}) > 0
    assert len({s.trace_id for s in spans}) == 2


def test_collect_passes_only_the_named_variables_to_tools(tmp_path: Path) -> None:
    """`--pass-env` is the documented way past the tools' minimal environment."""
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps({"task_id": 0, "query": "show the variables"}) + "\n")
    command = 'echo "given=$AGENTTRACE_GIVEN kept=$AGENTTRACE_KEPT"'
    scripts = {
        "show the variables": [
            {"tool_calls": [{"name": "bash", "arguments": {"command": command}}]},
            {"tool_calls": [{"name": "final_answer", "arguments": {"answer": "done"}}]},
        ]
    }
    env = _env(tmp_path) | {"AGENTTRACE_GIVEN": "yes-given", "AGENTTRACE_KEPT": "not-passed"}
    with ScriptedModelServer(ScriptResponder(scripts)) as server:
        result = subprocess.run(
            [str(SCRIPT), "collect", "--dataset", "nl2bash", "--tasks", str(tasks)]
            + ["--model", "m", "--base-url", server.base_url, "--pass-env", "AGENTTRACE_GIVEN"]
            + ["--output", str(tmp_path / "runs.jsonl"), "--fixture", str(tmp_path / "fx")],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=tmp_path,
        )
    assert result.returncode == 0, result.stderr
    (row,) = _rows(tmp_path / "runs.jsonl")
    assert row["spans"][0]["tool_output"].strip() == "given=yes-given kept="
    assert row["metadata"]["tool_env_passed"] == ["AGENTTRACE_GIVEN"]
