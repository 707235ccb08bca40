"""Throughput and loss of the AgentTrace exporter, and conversion speed and memory, in one run.

    uv run python benchmarks/bench_exporter.py [--sizes 1,100,1000] [--burst 100000] [--check]

1. Assembly: spans/s turned into rows and written, for realistic agent spans (a model step and a
   tool call per turn, 49 turns a run, with content), by the processor (JSONL, JSONL+Parquet) and
   by the exporter fed in 512-span batches; measured on one core, in this process.
2. Threads: real decorated runs (a model step and a tool call per turn, 49 turns) in one thread
   and in `--threads` (16) at once, into one processor: spans/s and each tool call's latency
   (median, 99th percentile, max). A run's row is built, encoded and written by the thread that
   ends it, outside the assembler's lock, so the other threads' spans do not queue behind it.
3. Burst: a 100,000-span burst, for a naive per-span JSON exporter and for ours, each behind a
   BatchSpanProcessor with the SDK's default queue (2,048 spans) and with one that holds the
   burst (1,000,000), and for our processor, which has no queue (configure(), and the zero-code
   set-up, whose configurator installs it instead of a BatchSpanProcessor).
4. Conversion: MB/s and peak RSS of `agenttrace convert` JSONL -> Parquet and back for generated
   files of the given sizes (MB), each in its own process so its peak RSS is its own.
Targets (`--check` exits 1 when one is missed): 0 spans lost in the burst by our processor and
by either exporter behind the big queue (`LOSSLESS`); >= 150,000
spans/s assembled and written to JSONL by the processor; 16 threads at >= 75% of one thread's
spans/s; conversion >= 100 MB/s (beyond the 1 MB file, where the
one-time start-up dominates) with peak RSS that does not grow with the file size (the largest
file's peak within 1.25x the next one's: past one row group the working set is fixed).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from _agent import realistic_agent  # benchmarks/: the scripts' own folder
from opentelemetry.exporter.agenttrace import AgentTraceSpanExporter, AgentTraceSpanProcessor
from opentelemetry.exporter.agenttrace.rows_to_spans import row_to_spans
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import agenttrace

TURNS = 49


def _record_runs(runs: int) -> list[ReadableSpan]:
    """Finished spans of `runs` realistic agent runs (recorded once, replayed into each variant)."""
    memory = InMemorySpanExporter()
    agenttrace.configure(span_processors=[SimpleSpanProcessor(memory)], telemetry="precise")

    run = realistic_agent(TURNS)
    for i in range(runs):
        run(i)
    agenttrace.configure()  # detach the in-memory exporter again
    return list(memory.get_finished_spans())


def _replay_processor(spans: list[ReadableSpan], processor: AgentTraceSpanProcessor) -> float:
    """Feed spans as the SDK would (start in order, end in end order); seconds taken."""
    by_start = sorted(spans, key=lambda s: s.start_time)
    by_end = sorted(spans, key=lambda s: s.end_time)
    started = time.perf_counter()
    for span in by_start:
        processor.on_start(span)  # type: ignore[arg-type]
    for span in by_end:
        processor.on_end(span)
    processor.shutdown()
    return time.perf_counter() - started


def bench_assembly(runs: int) -> dict[str, float]:
    spans = _record_runs(runs)
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, parquet in (("processor -> JSONL", False), ("processor -> JSONL+Parquet", True)):
            best = min(
                _replay_processor(
                    spans,
                    AgentTraceSpanProcessor(Path(tmp) / f"{label[-7:]}{k}.jsonl", parquet=parquet),
                )
                for k in range(3)
            )
            results[label] = len(spans) / best
        times = []
        for k in range(3):
            exporter = AgentTraceSpanExporter(Path(tmp) / f"exp{k}.jsonl", parquet=False)
            started = time.perf_counter()
            for start in range(0, len(spans), 512):
                exporter.export(spans[start : start + 512])
            exporter.shutdown()
            times.append(time.perf_counter() - started)
        results["exporter (512-span batches) -> JSONL"] = len(spans) / min(times)
    return results


def bench_threads(threads: int, runs_per_thread: int) -> dict[str, float]:
    """Real decorated runs in `threads` threads into one processor (JSONL): spans/s, and how
    long a tool call takes at the median and at the 99th percentile while other threads' runs
    end (a run's row is built, encoded and written in the thread that ends it)."""
    with tempfile.TemporaryDirectory() as tmp:
        agenttrace.configure(output=Path(tmp) / "threads.jsonl", parquet=False, telemetry="none")

        @agenttrace.tool(name="bash")
        def bash(command: str) -> str:
            return "README.md\nsrc\ntests\n" * 20

        @agenttrace.llm(model="qwen3-1.7b")
        def step(messages: list) -> str:
            return "Listing."

        latencies: list[float] = []

        @agenttrace.agent(metadata={"dataset_name": "nl2bash", "source": "bench"})
        def run(i: int) -> None:
            agenttrace.set_run_metadata(task_id=i, run_id="threads")
            own = []
            for _ in range(TURNS):
                step([{"role": "user", "content": "list the files"}])
                started = time.perf_counter()
                bash(command="ls")
                own.append(time.perf_counter() - started)
            latencies.extend(own)  # list.extend is one step: no lock needed

        def worker(first: int) -> None:
            for i in range(first, first + runs_per_thread):
                run(i)

        pool = [
            threading.Thread(target=worker, args=(k * runs_per_thread,)) for k in range(threads)
        ]
        started = time.perf_counter()
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        elapsed = time.perf_counter() - started
        agenttrace.shutdown()
        rows = (Path(tmp) / "threads.jsonl").read_text(encoding="utf-8").count("\n")
    latencies.sort()
    spans = threads * runs_per_thread * (2 * TURNS + 1)
    return {
        "rows": float(rows),
        "spans/s": spans / elapsed,
        "tool call p50 us": 1e6 * latencies[len(latencies) // 2],
        "tool call p99 us": 1e6 * latencies[int(len(latencies) * 0.99)],
        "tool call max us": 1e6 * latencies[-1],
    }


class _NaiveJsonExporter(SpanExporter):
    """What a first attempt looks like: one JSON document per span, written as it comes."""

    def __init__(self, path: Path) -> None:
        self.file = open(path, "w", encoding="utf-8")  # noqa: SIM115
        self.count = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            self.file.write(json.dumps(json.loads(span.to_json())) + "\n")
            self.file.flush()
            self.count += 1
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.file.close()


def _burst(provider: TracerProvider, total: int) -> None:
    tracer = provider.get_tracer("agenttrace")
    per_run = 100
    for _ in range(total // per_run):
        with tracer.start_as_current_span(
            "invoke_agent burst", attributes={"gen_ai.operation.name": "invoke_agent"}
        ):
            for _ in range(per_run - 1):
                with tracer.start_as_current_span(
                    "execute_tool t",
                    attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "t"},
                ):
                    pass


#: Burst rows that must lose nothing: ours, with no queue, and both exporters behind a queue that
#: holds the whole burst (equal footing). Behind the SDK's default 2,048-span queue, what a plain
#: BatchSpanProcessor set-up drops depends on thread timing, for any exporter.
LOSSLESS = ("AgentTrace processor", "AgentTrace exporter, BSP queue 1,000,000")


def bench_burst(total: int) -> dict[str, int]:
    lost: dict[str, int] = {}
    big = 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.pop("OTEL_BSP_MAX_QUEUE_SIZE", None)
        for label, kind, queue in (
            ("naive per-span JSON exporter, BSP queue 2,048 (default)", "naive", None),
            ("AgentTrace exporter, BSP queue 2,048 (default)", "exporter", None),
            ("naive per-span JSON exporter, BSP queue 1,000,000", "naive", big),
            ("AgentTrace exporter, BSP queue 1,000,000", "exporter", big),
            (
                "AgentTrace processor (configure(); zero-code too)",
                "processor",
                None,
            ),
        ):
            path = Path(tmp) / f"{kind}-{queue}.jsonl"
            provider = TracerProvider()
            sizes = {} if queue is None else {"max_queue_size": queue}
            if kind == "naive":
                naive = _NaiveJsonExporter(path)
                provider.add_span_processor(BatchSpanProcessor(naive, **sizes))
            elif kind == "exporter":
                exporter = AgentTraceSpanExporter(path, parquet=False)
                provider.add_span_processor(BatchSpanProcessor(exporter, **sizes))
            else:
                provider.add_span_processor(AgentTraceSpanProcessor(path, parquet=False))
            _burst(provider, total)
            provider.shutdown()
            if kind == "naive":
                lost[label] = total - naive.count
            else:
                written = sum(
                    1 + len(json.loads(line)["spans"]) for line in path.read_text().splitlines()
                )
                lost[label] = total - written
    return lost


def _generate(path: Path, megabytes: int) -> None:
    """A JSONL file of about `megabytes` MB of realistic rows (one run replayed many times)."""
    spans = _record_runs(1)
    exporter = AgentTraceSpanExporter(path.with_name("seed.jsonl"), parquet=False)
    exporter.export(spans)
    exporter.shutdown()
    seed = json.loads(path.with_name("seed.jsonl").read_text().splitlines()[0])
    target = megabytes * 1_000_000
    written = 0
    with open(path, "w", encoding="utf-8") as out:
        task = 0
        while written < target:
            seed["metadata"]["task_id"] = task
            seed["trace_id"] = f"{task + 1:032x}"
            # Fresh content in every row, so compression meets realistic, not repeated, text.
            for span in seed["spans"]:
                span["tool_output"] = os.urandom(256).hex()
            for step in seed["llm_steps"]:
                step["reasoning_content"] = os.urandom(256).hex()
            line = json.dumps(seed, ensure_ascii=False) + "\n"
            out.write(line)
            written += len(line.encode("utf-8"))
            task += 1
    assert row_to_spans(seed)  # the generated rows are real rows


_CONVERT = """
import sys, time
import pyarrow, pandas  # one-time import cost (~1 s, pyarrow loads pandas), not conversion speed
from opentelemetry.exporter.agenttrace.files import convert
from agenttrace._telemetry import _read_vmhwm_kib
started = time.perf_counter()
convert(sys.argv[1], sys.argv[2])
print(time.perf_counter() - started, _read_vmhwm_kib() * 1024)
"""


def _convert(source: Path, target: Path) -> tuple[float, int]:
    """Seconds and the process's own peak RSS (bytes) of one conversion, in its own process.

    The peak is read from /proc (VmHWM), not from rusage, which would include what exec
    inherited from this (large) benchmark process.
    """
    target.unlink(missing_ok=True)
    out = subprocess.run(
        [sys.executable, "-c", _CONVERT, str(source), str(target)],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds, peak = out.stdout.split()
    return float(seconds), int(peak)


def bench_conversion(sizes: list[int]) -> list[dict[str, float]]:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for megabytes in sizes:
            jsonl = Path(tmp) / f"gen{megabytes}.jsonl"
            _generate(jsonl, megabytes)
            size = jsonl.stat().st_size / 1e6
            parquet = jsonl.with_suffix(".parquet")
            to_parquet, rss_to = _convert(jsonl, parquet)
            back = Path(tmp) / f"back{megabytes}.jsonl"
            to_jsonl, rss_back = _convert(parquet, back)
            results.append(
                {
                    "MB": size,
                    "jsonl->parquet MB/s": size / to_parquet,
                    "peak RSS MiB (->parquet)": rss_to / 2**20,
                    "parquet->jsonl MB/s": size / to_jsonl,
                    "peak RSS MiB (->jsonl)": rss_back / 2**20,
                }
            )
            for path in (jsonl, parquet, back):
                path.unlink()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100, help="runs for the assembly benchmark")
    parser.add_argument("--burst", type=int, default=100_000)
    parser.add_argument("--sizes", default="1,100,1000", help="conversion input sizes, MB")
    parser.add_argument("--threads", type=int, default=16, help="threads for the concurrency run")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    missed: list[str] = []  # each target missed, said in words

    print("== assembly (spans/s, one core)")
    for label, rate in bench_assembly(args.runs).items():
        print(f"{label:45} {rate:12,.0f}")
        if label == "processor -> JSONL" and rate < 150_000:
            missed.append(f"{label}: {rate:,.0f} spans/s, target >= 150,000")

    print("== decorated runs in threads into one processor (JSONL)")
    runs_each = max(1, args.runs // args.threads)
    rates = {}
    for count in (1, args.threads):
        figures = bench_threads(count, runs_each * args.threads // count)
        rates[count] = figures["spans/s"]
        for label, value in figures.items():
            print(f"{count:3} thread(s): {label:31} {value:12,.0f}")
    if rates[args.threads] < 0.75 * rates[1]:
        missed.append(
            f"{args.threads} threads: {rates[args.threads]:,.0f} spans/s against "
            f"{rates[1]:,.0f} in one, target >= 75% of it"
        )

    print(f"== {args.burst:,}-span burst: spans lost")
    for label, count in bench_burst(args.burst).items():
        print(f"{label:55} {count:8,}")
        if label.startswith(LOSSLESS) and count != 0:
            missed.append(f"{label}: {count:,} spans lost, target 0")

    print("== conversion")
    rows = bench_conversion([int(s) for s in args.sizes.split(",") if s])
    for row in rows:
        print("  ".join(f"{key} {value:,.1f}" for key, value in row.items()))
        if row["MB"] >= 50:
            for key in ("jsonl->parquet MB/s", "parquet->jsonl MB/s"):
                if row[key] < 100:
                    missed.append(f"{key} at {row['MB']:,.0f} MB: {row[key]:,.1f}, target >= 100")
    if len(rows) > 2:  # past the first row group, the working set must not grow with the file
        for key in ("peak RSS MiB (->parquet)", "peak RSS MiB (->jsonl)"):
            if rows[-1][key] > 1.25 * rows[-2][key]:
                missed.append(
                    f"{key}: {rows[-1][key]:,.0f} at {rows[-1]['MB']:,.0f} MB against "
                    f"{rows[-2][key]:,.0f} at {rows[-2]['MB']:,.0f} MB, target within 25%"
                )
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"(benchmark process peak RSS {own / 1024:.0f} MiB)")
    for line in missed:
        print(f"MISSED: {line}")
    if args.check and not missed:
        print("ok: every target met")
    return 1 if missed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
