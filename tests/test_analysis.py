"""Analysis and plots on a crafted file with known answers (in the release's own format)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from agenttrace.analysis.dataset import analyze, load
from agenttrace.analysis.plots import PLOTS, render_all

MiB = 2**20
SCRIPT = Path(sys.executable).with_name("agenttrace")


def _span(
    span_id: str,
    tool: str,
    ms: float,
    exit_code: int,
    user: float,
    system: float,
    rss_mib: float,
    read_mib: float = 0,
    write_mib: float = 0,
    parent: str | None = None,
) -> dict:
    return {
        "span_id": span_id,
        "type": "TOOL",
        "tool_name": tool,
        "tool_input": "kwargs={}",
        "tool_output": "",
        "start_ns": 1,
        "end_ns": 2,
        "duration_ms": ms,
        "telemetry": {
            "user_time_s": user,
            "system_time_s": system,
            "max_rss_bytes": int(rss_mib * MiB),
            "read_bytes": int(read_mib * MiB),
            "write_bytes": int(write_mib * MiB),
        },
        "exit_code": exit_code,
        "parent_span_id": parent,
    }


def _step(
    step_id: str, number: int, tokens_in: int | None, tokens_out: int | None, reasoning: str | None
) -> dict:
    return {
        "step_id": step_id,
        "step_number": number,
        "model_output": None,
        "reasoning_content": reasoning,
        "tool_calls": None,
        "duration_ms": 10.0,
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
    }


def _row(trace_id: str, total_ms: float, spans: list, steps: list, task_id: int) -> dict:
    return {
        "trace_id": trace_id,
        "timestamp_utc": "2026-03-28T13:31:44+00:00",
        "prompt": "p",
        "model": "Qwen3-0.6B",
        "spans": spans,
        "llm_steps": steps,
        "total_duration_ms": total_ms,
        "metadata": {
            "schema_version": "0.3.0",
            "collector_version": "0.3.0",
            "dataset_name": "nl2bash",
            "source": "s",
            "task_id": task_id,
            "run_id": "r",
            "dataset_split": "train",
        },
    }


ROWS = [
    _row(
        "a",
        1000,
        [
            _span("a1", "bash", 100, 0, 0.1, 0.0, 10, read_mib=1, write_mib=2),
            _span("a2", "python_interpreter", 300, 0, 0.25, 0.05, 50),
            _span("a3", "final_answer", 0, 0, 0.0, 0.0, 5),
        ],
        [_step("as1", 1, 100, 10, "x" * 4), _step("as2", 2, 200, 30, "x" * 12)],
        1,
    ),
    _row(
        "b",
        2000,
        [
            _span("b1", "bash", 500, 2, 0.0, 0.1, 20),
            _span("b2", "bash", 100, 0, 0.05, 0.05, 30),
            _span("b3", "bash", 50, 0, 0.01, 0.0, 40, parent="b2"),  # nested: not counted twice
        ],
        [
            _step("bs1", 1, 300, 20, "x" * 8),
            _step("bs2", 2, None, None, None),
            _step("bs3", 3, 100, 40, "x" * 16),
        ],
        2,
    ),
]


@pytest.fixture
def crafted(tmp_path: Path) -> Path:
    path = tmp_path / "nl2bash_0_6B_20260328T133144Z.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    return path


def test_dataframes(crafted: Path) -> None:
    data = load([crafted])
    assert list(data.traces["trace_id"]) == ["a", "b"]
    assert list(data.traces["tool_time_ms"]) == [400, 600]
    assert list(data.traces["llm_time_ms"]) == [600, 1400]
    assert len(data.spans) == 6 and len(data.steps) == 5
    bash = data.spans[data.spans["span_id"] == "a1"].iloc[0]
    assert bash["cpu_time_s"] == pytest.approx(0.1) and bash["max_rss_bytes"] == 10 * MiB
    assert data.steps["output_tokens"].isna().sum() == 1


def test_known_answers(crafted: Path) -> None:
    result = analyze(load([crafted]))
    assert result["counts"] == {
        "traces": 2,
        "llm_steps": 5,
        "tool_spans": 6,
        "incomplete_traces": 0,
    }
    breakdown = result["time_breakdown"]
    assert breakdown["total_s"] == 3.0 and breakdown["tool_s"] == 1.0
    assert breakdown["llm_s_estimated"] == 2.0
    assert breakdown["tool_pct"] == pytest.approx(100 / 3) and breakdown[
        "llm_pct"
    ] == pytest.approx(200 / 3)
    share = result["tool_share_per_trace_pct"]
    assert (share["min"], share["median"], share["max"]) == (30.0, 35.0, 40.0)
    assert share["p95"] == pytest.approx(39.5)  # linear interpolation between the closest ranks
    assert result["tools_by_count"] == [("bash", 4), ("final_answer", 1), ("python_interpreter", 1)]
    assert [name for name, _ in result["tools_by_time_s"]] == [
        "bash",
        "python_interpreter",
        "final_answer",
    ]
    bash = result["tools"]["bash"]
    assert bash["total_s"] == pytest.approx(0.75)
    assert (bash["failures"], bash["failure_rate"]) == (1, 0.25)
    assert bash["exit_codes"] == {"0": 3, "2": 1}
    assert bash["duration_ms"]["median"] == 100.0 and bash["duration_ms"]["p95"] == pytest.approx(
        440.0
    )
    assert bash["max_rss_mib"]["median"] == 25.0
    assert bash["cpu_time_s"]["max"] == pytest.approx(0.1)
    assert result["tools"]["python_interpreter"]["cpu_time_s"]["median"] == pytest.approx(0.3)
    assert result["steps_per_trace"]["median"] == 2.5
    tokens = result["tokens"]
    assert (tokens["input_total"], tokens["output_total"], tokens["steps_with_usage"]) == (
        700,
        100,
        4,
    )
    assert tokens["reasoning_chars_vs_output_tokens_pearson"] == pytest.approx(1.0)
    assert result["failures"]["tool_calls_failed"] == 1
    assert result["failures"]["rate"] == pytest.approx(1 / 6)


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_every_plot_is_a_png_even_without_data(crafted: Path, tmp_path: Path) -> None:
    written = render_all(load([crafted]), tmp_path / "plots")
    assert sorted(p.stem for p in written) == sorted(PLOTS)
    for path in written:
        width, height = _png_size(path)
        assert width > 500 and height > 300
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    for path in render_all(load([empty]), tmp_path / "empty-plots"):
        _png_size(path)


def test_cli_analyze_json_and_plots(crafted: Path, tmp_path: Path) -> None:
    second = tmp_path / "second.jsonl"
    second.write_text(json.dumps(ROWS[0]) + "\n")
    result = subprocess.run(
        [str(SCRIPT), "analyze", "--json", str(crafted), str(second)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["files"][str(crafted)]["counts"]["traces"] == 2
    assert report["files"][str(second)]["counts"]["traces"] == 1
    assert report["combined"]["counts"]["traces"] == 2  # second.jsonl repeats run "a": once
    assert report["combined"]["left_out"]["duplicate_rows"] == 1
    table = subprocess.run(
        [str(SCRIPT), "analyze", str(crafted)], capture_output=True, text=True, timeout=120
    )
    assert table.returncode == 0 and "LLM generation" in table.stdout and "bash" in table.stdout
    plots = subprocess.run(
        [str(SCRIPT), "plots", str(crafted), "--outdir", str(tmp_path / "p")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert plots.returncode == 0, plots.stderr
    assert len(plots.stdout.split()) == len(PLOTS)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{nope\n")
    assert subprocess.run([str(SCRIPT), "analyze", str(bad)], capture_output=True).returncode == 1
    assert subprocess.run([str(SCRIPT), "plots", str(crafted)], capture_output=True).returncode == 2


def test_package_level_load(crafted: Path) -> None:
    import agenttrace

    data = agenttrace.load([crafted])
    assert list(data.traces["task_id"]) == [1, 2]
