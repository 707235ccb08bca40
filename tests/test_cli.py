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


def test_demo_writes_spans_and_says_where(tmp_path: Path) -> None:
    out_dir = tmp_path / "run"
    result = _cli("demo", "--output-dir", str(out_dir), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    spans_file = out_dir / "spans.jsonl"
    assert str(spans_file.resolve()) in result.stdout
    spans = [json.loads(line) for line in spans_file.read_text().splitlines()]
    names = sorted(s["name"] for s in spans)
    assert names == sorted(
        ["invoke_agent demo-agent"]
        + ["chat scripted-demo"] * 3
        + ["execute_tool bash", "execute_tool python_interpreter", "execute_tool final_answer"]
    )
    bash = next(s for s in spans if s["name"] == "execute_tool bash")
    assert bash["attributes"]["agenttrace.telemetry.peak_scope"] in ("child", "child-bound")
    assert bash["attributes"]["agenttrace.telemetry.max_rss_bytes"] > 0
    assert "execute_tool python_interpreter" in result.stdout
