"""The benchmark scripts run and report every variant (their figures are read by people, not asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
        "bare span",
        "@tool, telemetry none",
        "@tool, telemetry precise",
        "@tool, telemetry agenttrace-0.3",
        "@agent",
    ):
        assert variant in out.stdout
    bare = next(line for line in out.stdout.splitlines() if line.startswith("bare span"))
    assert bare.split()[-1] == "1.00"


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
        "naive per-span JSON",
        "AgentTrace processor (configure)",
        "jsonl->parquet MB/s",
    ):
        assert section in out.stdout
    lost = {
        line.rsplit(None, 1)[0].strip(): line.rsplit(None, 1)[1]
        for line in out.stdout.splitlines()
        if line.startswith("AgentTrace")
    }
    assert set(lost.values()) == {"0"}
