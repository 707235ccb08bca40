"""Rows labelled as the release labels its own (`collect --release`) pass what the release's
consumers check, and no machine path reaches a row's metadata."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.agenttrace import read_rows
from opentelemetry.exporter.agenttrace.schema import validate_row

from agenttrace.collection.scripted_server import ScriptedModelServer, ScriptResponder
from agenttrace.collection.tasks import DATASETS, scripted_steps

MODEL = "qwen3-1.7b"
RELEASE_TOOLS = {"bash": "command", "python_interpreter": "code", "final_answer": "answer"}


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedModelServer]:
    scripts: dict[str, Any] = {}
    for dataset in DATASETS:
        scripts.update(scripted_steps(dataset))
    with ScriptedModelServer(ScriptResponder(scripts), model=MODEL) as running:
        yield running


def _collect(
    server: ScriptedModelServer, output: Path, dataset: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTTRACE_"))}
    command = [sys.executable, "-m", "agenttrace.cli", "collect", "--dataset", dataset]
    command += ["--model", MODEL, "--base-url", server.base_url, "--output", str(output), *extra]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def consumer_accepts(row: dict[str, Any]) -> list[str]:
    """What code written against the published files checks before it takes a row."""
    problems = []
    metadata = row["metadata"]
    if metadata.get("collector_version") != "0.3.0":
        problems.append(f"collector_version {metadata.get('collector_version')!r}")
    if metadata.get("source") != metadata.get("dataset_name"):
        problems.append("source is not the dataset name")
    if metadata.get("dataset_split") != {"nl2bash": "train", "mbpp": "test"}.get(
        metadata.get("dataset_name")
    ):
        problems.append(f"split {metadata.get('dataset_split')!r}")
    for span in row["spans"]:
        if span["tool_name"] not in RELEASE_TOOLS:
            problems.append(f"tool {span['tool_name']!r}")
            continue
        text = span["tool_input"]
        if not text.startswith("kwargs="):
            problems.append(f"input {text[:30]!r}")
            continue
        keys = set(ast.literal_eval(text[len("kwargs=") :]))
        if keys != {RELEASE_TOOLS[span["tool_name"]]}:
            problems.append(f"{span['tool_name']} keys {sorted(keys)}")
    return problems


@pytest.mark.parametrize(
    ("dataset", "agent"),
    [("nl2bash", "reference"), ("mbpp", "reference"), ("nl2bash", "smolagents")],
)
def test_release_labelled_rows_pass_the_release_consumers_checks(
    server: ScriptedModelServer, tmp_path: Path, dataset: str, agent: str
) -> None:
    output = tmp_path / "rows.jsonl"
    done = _collect(server, output, dataset, "--release", "--agent", agent)
    assert done.returncode == 0, done.stderr
    rows = list(read_rows(output))
    assert rows
    for row in rows:
        assert consumer_accepts(row) == [], row["metadata"]
        assert validate_row(row, profile="release") == []
        assert row["metadata"]["agenttrace_version"]  # this project's version, kept apart


def test_without_release_the_rows_keep_this_projects_label(
    server: ScriptedModelServer, tmp_path: Path
) -> None:
    output = tmp_path / "rows.jsonl"
    assert _collect(server, output, "nl2bash", "-n", "1").returncode == 0
    (row,) = read_rows(output)
    assert row["metadata"]["collector_version"].startswith("agenttrace-")
    assert "collector_version" in " ".join(consumer_accepts(row))


def test_release_refuses_other_labels(server: ScriptedModelServer, tmp_path: Path) -> None:
    done = _collect(server, tmp_path / "rows.jsonl", "mbpp", "--release", "--split", "train")
    assert done.returncode == 2
    assert "--release labels --split 'test', not 'train'" in done.stderr


def test_a_task_file_is_recorded_by_name_never_by_path(
    server: ScriptedModelServer, tmp_path: Path
) -> None:
    tasks = tmp_path / "deep" / "inside" / "my_tasks.jsonl"
    tasks.parent.mkdir(parents=True)
    bundled = Path(__file__).resolve().parent.parent / "fixtures" / "tasks" / "nl2bash.jsonl"
    tasks.write_text(bundled.read_text())
    output = tmp_path / "rows.jsonl"
    assert _collect(server, output, "nl2bash", "-n", "2", "--tasks", str(tasks)).returncode == 0
    for row in read_rows(output):
        assert row["metadata"]["source"] == "my_tasks.jsonl"
        assert row["metadata"]["dataset_split"] == "local"
        assert str(tmp_path) not in json.dumps(row["metadata"])
    labelled = tmp_path / "labelled.jsonl"
    done = _collect(
        server,
        labelled,
        "nl2bash",
        "-n",
        "1",
        "--tasks",
        str(tasks),
        "--source",
        "mine",
        "--split",
        "dev",
    )
    assert done.returncode == 0, done.stderr
    (row,) = read_rows(labelled)
    assert (row["metadata"]["source"], row["metadata"]["dataset_split"]) == ("mine", "dev")
