"""The `agenttrace` console script, run as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import agenttrace

SCRIPT = Path(sys.executable).with_name("agenttrace")


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def test_version_and_help() -> None:
    version = _cli("--version")
    assert version.returncode == 0 and agenttrace.__version__ in version.stdout
    for args in (["--help"], ["demo", "--help"]):
        result = _cli(*args)
        assert result.returncode == 0 and "Usage:" in result.stdout


def test_usage_error_exits_2() -> None:
    assert _cli("no-such-command").returncode == 2
    assert _cli("demo", "--no-such-option").returncode == 2


def test_demo_runs_every_bundled_task_and_writes_valid_files(tmp_path: Path) -> None:
    out_dir = tmp_path / "run"
    result = _cli("demo", "--output-dir", str(out_dir), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows_file = out_dir / "demo.jsonl"
    assert str(rows_file.resolve()) in result.stdout
    rows = [json.loads(line) for line in rows_file.read_text().splitlines()]
    from agenttrace.collection.tasks import load_tasks

    expected = [(t.dataset, t.task_id) for d in ("nl2bash", "mbpp") for t in load_tasks(d)]
    assert [(r["metadata"]["dataset_name"], r["metadata"]["task_id"]) for r in rows] == expected
    assert _cli("validate", str(rows_file), str(rows_file.with_suffix(".parquet"))).returncode == 0
    for row in rows:
        assert row["metadata"]["stop_reason"] == "final_answer"
        assert row["spans"][-1]["tool_name"] == "final_answer"
        assert len(row["llm_steps"]) == len(row["spans"])  # one tool call per scripted step
        assert row["llm_steps"][0]["reasoning_content"]
    nl2bash = [r for r in rows if r["metadata"]["dataset_name"] == "nl2bash"]
    assert nl2bash[0]["spans"][0]["tool_output"] == "10\n"  # the fixture answers for real
    assert all(r["metadata"]["fixture_version"] for r in nl2bash)
    failing = [s for r in nl2bash for s in r["spans"] if s["exit_code"] != 0]
    assert [s["tool_input"] for s in failing] == [
        "kwargs={'command': 'grep -c ERROR /testbed/logs'}"
    ]
    mbpp = [r for r in rows if r["metadata"]["dataset_name"] == "mbpp"]
    python_span = mbpp[0]["spans"][0]
    assert python_span["tool_name"] == "python_interpreter"
    assert python_span["tool_output"] == "all tests passed\n"
    assert python_span["telemetry"]["user_time_s"] > 0  # a real interpreter ran
    assert "nl2bash" in result.stdout and "final_answer" in result.stdout


def _release_file(tmp_path: Path, rows: int = 3) -> Path:
    from test_roundtrip import RELEASE_ROW

    path = tmp_path / "release.jsonl"
    lines = []
    for task_id in range(rows):
        row = json.loads(json.dumps(RELEASE_ROW))
        row["metadata"]["task_id"] = task_id
        lines.append(json.dumps(row))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_validate_ok_and_violations_with_locations(tmp_path: Path) -> None:
    good = _release_file(tmp_path)
    result = _cli("validate", str(good))
    assert result.returncode == 0, result.stdout + result.stderr
    bad = tmp_path / "bad.jsonl"
    lines = good.read_text().splitlines()
    broken = json.loads(lines[1])
    del broken["metadata"]["run_id"]
    bad.write_text(lines[0] + "\n" + json.dumps(broken) + "\n{oops\n" + lines[2][:50])
    result = _cli("validate", str(good), str(bad))
    assert result.returncode == 1
    assert f"{bad}:2: metadata.run_id: missing" in result.stdout
    assert f"{bad}:3: line: not valid JSON" in result.stdout
    assert f"{bad}:4: line: torn last line" in result.stdout
    assert f"{good}: ok" in result.stderr


def test_validate_usage_errors_exit_2(tmp_path: Path) -> None:
    assert _cli("validate").returncode == 2
    assert _cli("validate", str(tmp_path / "missing.jsonl")).returncode == 2


def test_convert_jsonl_parquet_jsonl(tmp_path: Path) -> None:
    import pandas as pd

    source = _release_file(tmp_path, rows=20)
    parquet = tmp_path / "out.parquet"
    result = _cli("convert", str(source), "-o", str(parquet))
    assert result.returncode == 0, result.stderr
    assert "20 rows written" in result.stdout
    frame = pd.read_parquet(parquet)
    assert len(frame) == 20 and set(frame["raw_file"]) == {"release.jsonl"}
    back = tmp_path / "back.jsonl"
    assert _cli("convert", str(parquet), "-o", str(back)).returncode == 0
    assert [json.loads(line) for line in back.read_text().splitlines()] == [
        json.loads(line) for line in source.read_text().splitlines()
    ]
    assert _cli("validate", str(parquet)).returncode == 0


def test_convert_failures_leave_nothing_behind(tmp_path: Path) -> None:
    source = _release_file(tmp_path)
    broken = tmp_path / "broken.jsonl"
    broken.write_text(source.read_text() + "{not json}\n" + source.read_text())
    target = tmp_path / "out.parquet"
    result = _cli("convert", str(broken), "-o", str(target))
    assert result.returncode == 1 and "line 4" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.jsonl", "release.jsonl"]
    target.write_text("existing")
    assert _cli("convert", str(source), "-o", str(target)).returncode == 2  # needs --force
    assert target.read_text() == "existing"
    assert _cli("convert", str(source), "-o", str(tmp_path / "out.csv")).returncode == 2
    assert _cli("convert", "--force", str(source), "-o", str(target)).returncode == 0


def test_demo_also_sends_spans_over_otlp_when_asked(tmp_path: Path) -> None:
    import os

    from otlp_receiver import OTLPReceiver

    receiver = OTLPReceiver().start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTTRACE_"))}
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.http_endpoint
        result = subprocess.run(
            [str(SCRIPT), "demo", "-o", str(tmp_path / "d")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        (line,) = [x for x in result.stdout.splitlines() if x.startswith("OTLP to ")]
        delivered, _, offered, *rest = line.rsplit(": ", 1)[1].split()
        assert delivered == offered != "0" and rest == ["spans", "delivered"], line
        spans = receiver.wait_for(12)
    finally:
        receiver.stop()
    roots = [s for s in spans if s.name.startswith("invoke_agent")]
    assert len(roots) == 12
    assert {s.resource["service.name"] for s in spans} == {"agenttrace-demo"}
    assert any(s.name == "execute_tool bash" for s in spans)
