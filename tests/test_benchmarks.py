"""The benchmark scripts run and report every variant (their figures are read by people, not asserted)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import agenttrace
from agenttrace import semconv

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def test_overhead_benchmark_reports_all_variants() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_overhead.py"), "--calls", "300", "--repeats", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    for variant in (
        "plain call",
        "2-attribute span (peers' ruler)",
        "same-attribute span",
        "@tool, content off, telemetry none",
        "@tool, telemetry none",
        "@tool, content as constants",
        "@tool, telemetry precise",
        "@tool, telemetry agenttrace-0.3",
        "@agent",
    ):
        assert variant in out.stdout
    # The report's arithmetic: each row's first ratio is its cost over the 2-attribute span's,
    # the second over the same-attribute span's; every row with a target says whether it was met.
    rows = {}
    for line in out.stdout.splitlines()[1:]:
        name, rest = line[:34].strip(), line[34:].split()
        rows[name] = (float(rest[0]), float(rest[1]), float(rest[2]), rest[3:])
    peer_us = rows["2-attribute span (peers' ruler)"][0]
    same_us = rows["same-attribute span"][0]
    assert same_us > peer_us  # 13 attributes cost more than 2
    for name, (micros, peer_ratio, same_ratio, _) in rows.items():
        assert micros > 0, name
        assert abs(peer_ratio - micros / peer_us) <= 0.01 + 0.01 * peer_ratio, name
        assert abs(same_ratio - micros / same_us) <= 0.01 + 0.01 * same_ratio, name
    for name in (
        "@tool, content off, telemetry none",
        "@tool, telemetry none",
        "@tool, telemetry precise",
    ):  # the rows with targets
        assert rows[name][3][-1] in ("ok", "MISSED"), name
    assert rows["plain call"][1] < 1


def test_exporter_benchmark_reports_every_section() -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "bench_exporter.py"),
            "--runs",
            "3",
            "--burst",
            "2000",
            "--sizes",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    for section in (
        "processor -> JSONL",
        "exporter (512-span batches)",
        " 16 thread(s): tool call p99 us",
        "  1 thread(s): spans/s",
        "naive per-span JSON exporter, BSP queue 2,048 (default)",
        "naive per-span JSON exporter, BSP queue 1,000,000",
        "AgentTrace exporter, BSP queue 1,000,000",
        "AgentTrace processor (configure(); zero-code too)",
        "jsonl->parquet MB/s",
    ):
        assert section in out.stdout
    lost = {
        line.rsplit(None, 1)[0].strip(): int(line.rsplit(None, 1)[1].replace(",", ""))
        for line in out.stdout.splitlines()
        if " BSP queue " in line or line.startswith("AgentTrace processor")
    }
    assert len(lost) == 5
    # A 2,000-span burst fits every queue: nobody loses anything, at equal footing.
    assert set(lost.values()) == {0}


def test_rendering_benchmark_reports_each_case_bounded() -> None:
    cases = ["small dict (hot path)", "cycle", "10M-char string"]
    out = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_rendering.py"), "--limit", "4096"]
        + [arg for case in cases for arg in ("--case", case)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    rows = {line[:34].strip(): line[34:].split() for line in out.stdout.splitlines()[1:]}
    assert sorted(rows) == sorted(cases)
    for case, figures in rows.items():
        millis, chars = [float(x) for x in figures[0::2]], [int(x) for x in figures[1::2]]
        assert len(millis) == 3 and all(ms >= 0 for ms in millis), case
        assert max(chars) <= 4096 + 64, case  # the output follows the bound, not the value


def test_collect_benchmark_reports_each_level() -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "bench_collect.py"),
            "--tasks",
            "4",
            "--latency-ms",
            "20",
            "--levels",
            "1,2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines()[2:]]
    assert [row[0] for row in rows] == ["1", "2"]
    for _level, seconds, rate, _speedup in rows:
        assert abs(float(rate) - 4 / float(seconds)) < 0.05 * float(rate) + 0.01
    assert rows[0][3] == "1.00x"


def test_exporter_benchmark_check_names_the_target_it_missed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        bench_exporter = importlib.import_module("bench_exporter")  # a script, not a package
    finally:
        sys.path.remove(str(BENCHMARKS))
    # The measurements stand in for a slow machine; the report and exit code are under test.
    monkeypatch.setattr(
        bench_exporter, "bench_assembly", lambda runs: {"processor -> JSONL": 99_077.0}
    )
    monkeypatch.setattr(
        bench_exporter, "bench_burst", lambda burst: {"AgentTrace processor (configure())": 0}
    )
    monkeypatch.setattr(bench_exporter, "bench_conversion", lambda sizes: [])
    monkeypatch.setattr(
        bench_exporter,
        "bench_threads",
        lambda threads, runs: {"spans/s": 20_000.0 if threads == 1 else 9_000.0},
    )
    assert bench_exporter.main(["--check"]) == 1
    out = capsys.readouterr().out
    assert "MISSED: processor -> JSONL: 99,077 spans/s, target >= 150,000" in out
    assert "MISSED: 16 threads: 9,000 spans/s against 20,000 in one, target >= 75% of it" in out
    monkeypatch.setattr(bench_exporter, "bench_assembly", lambda runs: {"processor -> JSONL": 1e6})
    monkeypatch.setattr(bench_exporter, "bench_threads", lambda threads, runs: {"spans/s": 1e4})
    assert bench_exporter.main(["--check"]) == 0
    assert "ok: every target met" in capsys.readouterr().out


def test_end_to_end_benchmark_reports_each_size() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_e2e.py"), "--sizes", "2", "--repeats", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    size, instrumented, disabled, overhead = out.stdout.splitlines()[1].split()
    assert size == "2" and float(instrumented) > 0 and float(disabled) > 0
    expected = float(instrumented) / float(disabled) - 1
    assert abs(float(overhead.rstrip("%")) / 100 - expected) < 0.01


def test_the_floor_row_renders_every_value_as_a_constant(spans) -> None:
    """The floor row is only a floor if its rendering really is a constant, and only then."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        bench_overhead = importlib.import_module("bench_overhead")  # a script, not a package
    finally:
        sys.path.remove(str(BENCHMARKS))

    @agenttrace.tool(name="bash")
    def bash(command: str) -> str:
        return f"ran {command}"

    with bench_overhead.floor_rendering():
        bash(command="ls -la /srv")
    bash(command="pwd")
    floor, after = spans.named("execute_tool bash")  # names render as always, within too
    assert floor.attributes[semconv.GEN_AI_TOOL_CALL_ARGUMENTS] == '{"command": "ls -la"}'
    assert floor.attributes[semconv.GEN_AI_TOOL_CALL_RESULT] == "README.md\nsrc\n"
    assert after.attributes[semconv.GEN_AI_TOOL_CALL_ARGUMENTS] == '{"command": "pwd"}'
    assert after.attributes[semconv.GEN_AI_TOOL_CALL_RESULT] == "ran pwd"
