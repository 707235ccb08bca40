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
