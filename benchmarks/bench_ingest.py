"""Speed and memory of `agenttrace ingest` on OTLP JSON files of realistic agent traces.

    uv run python benchmarks/bench_ingest.py [--mb 1024] [--check]

Generates OTLP JSON (the collector `file` exporter's and the OTLP JSON file exporter's line
format) of agent runs recorded from a decorated agent (12 turns of a model step with content
and a bash tool call, 25 spans a run), re-identified per copy, 64 runs in flight at a time and
cut into 64-span export batches so a run's spans are spread over several lines. Then ingests a
quarter of `--mb` and all of it, each in its own process: MB/s (input bytes over the command's
own time, interpreter start-up excluded) and that process's own peak RSS (VmHWM), which should
not grow with the file (what does grow: one integer per trace written, kept to drop repeats).
Target (`--check` exits 1 when missed): >= 50 MB/s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TURNS = 12
IN_FLIGHT = 64
BATCH = 64

_INGEST = """
import sys, time
from click.testing import CliRunner
from agenttrace.cli import main
from agenttrace._telemetry import _read_vmhwm_kib
started = time.perf_counter()
result = CliRunner().invoke(main, ["ingest", sys.argv[1], "-o", sys.argv[2], "--no-parquet"])
assert result.exit_code == 0, result.output
print(time.perf_counter() - started, _read_vmhwm_kib() * 1024, result.output.strip())
"""


def _template() -> tuple[dict[str, Any], dict[str, Any], list[list[str]]]:
    """Resource, scope, and per recorded run its spans as JSON text (ids still the recorded)."""
    from _agent import realistic_agent  # benchmarks/: the scripts' own folder
    from opentelemetry.exporter.otlp.json.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import agenttrace

    memory = InMemorySpanExporter()
    agenttrace.configure(span_processors=[SimpleSpanProcessor(memory)], telemetry="precise")

    run = realistic_agent(TURNS, varied=True)
    for i in range(4):
        run(i)
    agenttrace.configure()
    spans = sorted(memory.get_finished_spans(), key=lambda s: s.end_time or 0)
    request = encode_spans(spans).to_dict()
    group = request["resourceSpans"][0]
    scope_spans = group["scopeSpans"][0]
    runs: dict[str, list[str]] = {}
    for span in scope_spans["spans"]:
        runs.setdefault(span["traceId"], []).append(json.dumps(span, separators=(",", ":")))
    return group["resource"], scope_spans["scope"], list(runs.values())


def generate(path: Path, megabytes: float) -> int:
    """Write about `megabytes` MB of OTLP JSON lines; returns the spans written."""
    resource, scope, runs = _template()
    head = json.dumps({"resourceSpans": [{"resource": resource, "scopeSpans": [{"scope": scope}]}]})
    # {"resourceSpans":[{"resource":...,"scopeSpans":[{"scope":...,"spans":[ ... ]}]}]}
    prefix = head[: -len("}]}]}")] + ',"spans":['
    suffix = "]}]}]}\n"
    target = int(megabytes * 1e6)
    written = spans = copy = 0
    in_flight: list[list[str]] = []
    batch: list[str] = []
    with open(path, "w", encoding="utf-8") as out:
        while written < target or in_flight:
            while written < target and len(in_flight) < IN_FLIGHT:
                in_flight.append(_reidentified(runs[copy % len(runs)], copy))
                copy += 1
            for run in list(in_flight):  # runs end their spans interleaved
                batch.extend(run[:3])
                del run[:3]
                if not run:
                    in_flight.remove(run)
                if len(batch) >= BATCH:
                    line = prefix + ",".join(batch) + suffix
                    out.write(line)
                    written += len(line)
                    spans += len(batch)
                    batch = []
        if batch:
            out.write(prefix + ",".join(batch) + suffix)
            spans += len(batch)
    return spans


def _reidentified(spans: list[str], copy: int) -> list[str]:
    """The run's spans under a fresh trace id and fresh span ids (the same for every reference)."""
    first = json.loads(spans[0])
    old_trace = first["traceId"]
    new_trace = f"{copy + 1:032x}"
    ids = [json.loads(span)["spanId"] for span in spans]
    mapping = {old: f"{(copy + 1) << 16 | n + 1:016x}" for n, old in enumerate(ids)}
    out = []
    for span in spans:
        text = span.replace(old_trace, new_trace)
        for old, new in mapping.items():
            if old in text:
                text = text.replace(old, new)
        out.append(text)
    return out


def ingest(source: Path, target: Path) -> tuple[float, int, str]:
    """Seconds, peak RSS (bytes, the ingest process's own VmHWM) and the command's summary."""
    target.unlink(missing_ok=True)
    out = subprocess.run(
        [sys.executable, "-c", _INGEST, str(source), str(target)],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds, peak, summary = out.stdout.split(" ", 2)
    return float(seconds), int(peak), summary.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=1024, help="the larger input, MB")
    parser.add_argument("--quick", action="store_true", help="no target check (tests)")
    parser.add_argument("--check", action="store_true", help="exit 1 if the target is missed")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the files")
    args = parser.parse_args(argv)
    missed = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for megabytes in (args.mb / 4, args.mb):
            source = Path(tmp) / f"traces-{megabytes:g}.jsonl"
            started = time.perf_counter()
            spans = generate(source, megabytes)
            made = time.perf_counter() - started
            size = source.stat().st_size / 1e6
            seconds, peak, summary = ingest(source, Path(tmp) / "runs.jsonl")
            rate = size / seconds
            print(
                f"{size:9,.1f} MB  {spans:10,} spans  {rate:7,.1f} MB/s  "
                f"peak RSS {peak / 2**20:7,.1f} MiB  ({seconds:,.1f} s; generated in {made:,.0f} s)"
            )
            print(f"    {summary}")
            if not args.quick and size >= 50 and rate < 50:
                missed.append(f"{size:,.0f} MB at {rate:,.1f} MB/s, target >= 50")
            os.unlink(source)
    for line in missed:
        print(f"MISSED: {line}")
    return 1 if missed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
