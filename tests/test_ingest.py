"""`agenttrace ingest`: OTLP JSON span files from several real processes back into the very rows
those processes wrote in-process, through rotation, compression, repeats and damaged input."""

from __future__ import annotations

import gzip
import json
import shutil
import struct
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import zstandard
from click.testing import CliRunner

from agenttrace.cli import main

REPO = Path(__file__).resolve().parent.parent
WORKERS = 3
RUNS_PER_WORKER = 4

# A worker process: a decorated agent (model step, tool call, model step) writing its rows with
# configure(output=...) and its spans with the official OTLP JSON file exporter. Worker 0 splits
# its spans over two exporter files by the moment each span ended: spans that ended before the
# switch (set in the middle of run 1, after its first model step) go to the first file, the rest
# to the second, so run 1 has spans in both files. Both are written by FileSpanExporter itself.
WORKER = textwrap.dedent(
    """
    import sys, threading, time
    import agenttrace
    from opentelemetry.exporter.otlp.json.file import FileSpanExporter
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    index, rows, first, second = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    switched_at = []

    class SwitchMidRun(SpanExporter):
        def __init__(self):
            self.files = FileSpanExporter(first), FileSpanExporter(second)
        def export(self, spans):
            cut = switched_at[0] if switched_at else float("inf")
            early = [s for s in spans if s.end_time < cut]
            late = [s for s in spans if s.end_time >= cut]
            for exporter, part in zip(self.files, (early, late)):
                if part:
                    exporter.export(part)
            return SpanExportResult.SUCCESS
        def shutdown(self):
            for exporter in self.files:
                exporter.shutdown()

    exporter = SwitchMidRun() if index == 0 else FileSpanExporter(first)
    agenttrace.configure(
        output=rows, parquet=False, service_name=f"worker-{index}", span_exporters=[exporter]
    )

    @agenttrace.llm(model="rule-model")
    def model(messages: list) -> str:
        return "ls -1 | wc -l" if len(messages) == 1 else "done: " + messages[-1]["content"]

    @agenttrace.tool(name="bash")
    def bash(command: str) -> str:
        if command == "fail":
            raise RuntimeError("no such command")
        return f"{len(command)} files"

    @agenttrace.agent(name="nl2bash", metadata={"dataset_name": "nl2bash", "dataset_split": "train"})
    def solve(prompt: str, task_id: int) -> str:
        agenttrace.set_run_metadata(task_id=task_id, run_id=f"worker-{index}")
        messages = [{"role": "user", "content": prompt}]
        command = model(messages)
        if index == 0 and task_id == 1:
            time.sleep(0.002)
            switched_at.append(time.time_ns())
        try:
            output = bash("fail" if task_id == 2 else command)
        except RuntimeError as error:
            output = str(error)
        messages += [{"role": "assistant", "content": command}, {"role": "tool", "content": output}]
        return model(messages)

    for task_id in range(RUNS):
        solve(f"worker {index} task {task_id}: count the files", task_id)
    """
).replace("RUNS", str(RUNS_PER_WORKER))


def _cli(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), prog_name="agenttrace")


def _lines(path: Path) -> list[bytes]:
    return sorted(path.read_bytes().splitlines())


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three real worker processes: rows/*.jsonl (in-process) and spans/*.json (OTLP JSON)."""
    root = tmp_path_factory.mktemp("fleet")
    (root / "rows").mkdir()
    (root / "spans").mkdir()
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                str(index),
                str(root / "rows" / f"worker-{index}.jsonl"),
                str(root / "spans" / f"worker-{index}-a.json"),
                str(root / "spans" / f"worker-{index}-b.json"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(WORKERS)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
    direct = root / "direct.jsonl"
    direct.write_bytes(b"".join(p.read_bytes() for p in sorted((root / "rows").glob("*.jsonl"))))
    return root


def _direct(fleet: Path) -> list[bytes]:
    return _lines(fleet / "direct.jsonl")


def test_each_worker_wrote_its_runs_and_one_run_spans_two_files(fleet: Path) -> None:
    assert len(_direct(fleet)) == WORKERS * RUNS_PER_WORKER
    first, second = fleet / "spans" / "worker-0-a.json", fleet / "spans" / "worker-0-b.json"
    ids = [{span["traceId"] for span in _spans(path)} for path in (first, second)]
    assert ids[0] & ids[1], "no trace has spans in both of worker 0's files"


def _spans(path: Path) -> list[dict[str, Any]]:
    return [
        span
        for line in path.read_text().splitlines()
        for group in json.loads(line)["resourceSpans"]
        for scope in group["scopeSpans"]
        for span in scope["spans"]
    ]


def test_ingest_rebuilds_exactly_the_rows_written_in_process(fleet: Path, tmp_path: Path) -> None:
    files = sorted(str(p) for p in (fleet / "spans").glob("*.json"))
    out = tmp_path / "runs.jsonl"
    result = _cli("ingest", *files, "-o", str(out), "--no-parquet")
    assert result.exit_code == 0, result.output
    # Whole rows, byte for byte (ids, spans, steps, telemetry, metadata): nothing excluded.
    assert _lines(out) == _direct(fleet)
    runs = WORKERS * RUNS_PER_WORKER
    assert f"{runs} runs written to {out}" in result.output
    assert "incomplete" not in result.output and "skipped" not in result.output


def test_a_directory_in_any_order_gives_the_same_rows(fleet: Path, tmp_path: Path) -> None:
    spans = tmp_path / "spans"
    shutil.copytree(fleet / "spans", spans)
    out = tmp_path / "runs.jsonl"
    # The second half of the split run comes first: its spans wait for the rest.
    result = _cli("ingest", str(spans / "worker-0-b.json"), str(spans), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert _lines(out) == _direct(fleet)
    assert out.with_suffix(".parquet").exists()  # the twin, as for every rows output


def _collector_files(fleet: Path, directory: Path) -> None:
    """The worker's spans as a gateway's `file` exporter leaves them after rotations.

    The collector's batch processor regroups spans, so records hold 5 spans each, resource and
    scope repeated per record, in the collector's line format (camelCase, hex ids, nanos as
    decimal text, `flags` on every span). Rotation renamed the older files with the time before
    the extension; `compression: zstd` (legacy framing: a 4-byte big-endian size before each
    zstd frame) for two of them, one backup gzipped afterwards (logrotate), and the live file
    zstd-compressed natively. Spans of a run straddle the rotations.
    """
    spans = []
    for path in sorted((fleet / "spans").glob("*.json")):
        for line in path.read_text().splitlines():
            for group in json.loads(line)["resourceSpans"]:
                for scope in group["scopeSpans"]:
                    for span in scope["spans"]:
                        spans.append((group["resource"], scope["scope"], span))
    records = []
    for start in range(0, len(spans), 5):
        chunk = spans[start : start + 5]
        records.append(
            json.dumps(
                {
                    "resourceSpans": [
                        {
                            "resource": resource,
                            "scopeSpans": [{"scope": scope, "spans": [span]}],
                            "schemaUrl": "",
                        }
                        for resource, scope, span in chunk
                    ]
                },
                separators=(",", ":"),
            ).encode()
        )
    quarter = len(records) // 4
    parts = [records[:quarter], records[quarter : 2 * quarter], records[2 * quarter : 3 * quarter]]
    parts.append(records[3 * quarter :])
    directory.mkdir()
    compressor = zstandard.ZstdCompressor()

    def framed(part: list[bytes]) -> bytes:
        out = b""
        for record in part:
            frame = compressor.compress(record + b"\n")
            out += struct.pack(">I", len(frame)) + frame
        return out

    (directory / "traces-2026-03-01T10-00-00.000.jsonl").write_bytes(framed(parts[0]))
    (directory / "traces-2026-03-01T10-05-00.000-size.jsonl").write_bytes(framed(parts[1]))
    with gzip.open(directory / "traces-2026-03-01T10-10-00.000.jsonl.gz", "wb") as handle:
        handle.write(b"".join(record + b"\n" for record in parts[2]))
    (directory / "traces.jsonl").write_bytes(
        compressor.compress(b"".join(record + b"\n" for record in parts[3]))
    )


def test_rotated_compressed_collector_files(fleet: Path, tmp_path: Path) -> None:
    from opentelemetry.exporter.agenttrace.otlp_json import order_files

    gateway = tmp_path / "gateway"
    _collector_files(fleet, gateway)
    names = [p.name for p in order_files(sorted(gateway.iterdir(), reverse=True))]
    assert names == [
        "traces-2026-03-01T10-00-00.000.jsonl",
        "traces-2026-03-01T10-05-00.000-size.jsonl",
        "traces-2026-03-01T10-10-00.000.jsonl.gz",
        "traces.jsonl",
    ]
    out = tmp_path / "runs.jsonl"
    result = _cli("ingest", str(gateway), "-o", str(out), "--no-parquet")
    assert result.exit_code == 0, result.output
    assert _lines(out) == _direct(fleet)


def test_the_same_files_twice_add_nothing(fleet: Path, tmp_path: Path) -> None:
    files = sorted(str(p) for p in (fleet / "spans").glob("*.json"))
    out = tmp_path / "runs.jsonl"
    assert _cli("ingest", *files, "-o", str(out), "--no-parquet").exit_code == 0
    before = out.read_bytes()
    refused = _cli("ingest", *files, "-o", str(out))
    assert refused.exit_code == 2 and "use --force" in refused.output
    again = _cli("ingest", *files, *files, "-o", str(out), "--append", "--no-parquet")
    assert again.exit_code == 0, again.output
    assert out.read_bytes() == before
    assert "0 runs written" in again.output and "repeated span" in again.output
    both = _cli("ingest", *files, "-o", str(out), "--append", "--force")
    assert both.exit_code == 2 and "not both" in both.output
    forced = _cli("ingest", *files, "-o", str(out), "--force", "--no-parquet")
    assert forced.exit_code == 0 and _lines(out) == _direct(fleet)


def test_a_retried_export_counts_once(fleet: Path, tmp_path: Path) -> None:
    spans = tmp_path / "spans"
    shutil.copytree(fleet / "spans", spans)
    retried = spans / "worker-1-a.json"
    lines = retried.read_bytes().splitlines(keepends=True)
    retried.write_bytes(b"".join(lines + lines))  # at-least-once: the whole batch again
    out = tmp_path / "runs.jsonl"
    result = _cli("ingest", str(spans), "-o", str(out), "--no-parquet")
    assert result.exit_code == 0, result.output
    assert _lines(out) == _direct(fleet)
    assert f"{len(_spans(fleet / 'spans' / 'worker-1-a.json'))} repeated spans skipped" in (
        result.output
    )


def test_malformed_lines_are_skipped_counted_and_located(fleet: Path, tmp_path: Path) -> None:
    """The rule: a record that cannot be read is skipped, reported as FILE:LINE and counted;
    the good records still make their rows (a run that lost spans is written incomplete). Only
    a file whose first record is unreadable is refused: it is not OTLP JSON at all."""
    spans = tmp_path / "spans"
    shutil.copytree(fleet / "spans", spans)
    broken = spans / "worker-2-a.json"
    good = broken.read_bytes()
    broken.write_bytes(good + b"not json at all\n" + good[: len(good) // 2])  # + a torn line
    out = tmp_path / "runs.jsonl"
    result = _cli("ingest", str(spans), "-o", str(out), "--no-parquet")
    assert result.exit_code == 0, result.output
    assert f"Warning: {broken}:line 2: not valid JSON" in result.output
    assert f"Warning: {broken}:line 3: a torn last line" in result.output
    assert "2 malformed records skipped" in result.output
    assert "Traceback" not in result.output
    assert _lines(out) == _direct(fleet)


def test_a_torn_compressed_tail_and_a_bad_span(tmp_path: Path, fleet: Path) -> None:
    gateway = tmp_path / "gateway"
    gateway.mkdir()
    record = (fleet / "spans" / "worker-1-a.json").read_bytes()
    packed = zstandard.ZstdCompressor().compress(record)
    (gateway / "traces.jsonl").write_bytes(packed[: len(packed) - 7])
    bad = json.loads(record.splitlines()[0])
    bad["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["spanId"] = "xyz"
    (gateway / "other.json").write_text(json.dumps(bad) + "\n")
    out = tmp_path / "runs.jsonl"
    result = _cli("ingest", str(gateway), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "spanId must be 16 hex digits, got 'xyz'" in result.output
    assert "compressed data ends early" in result.output
    assert "Traceback" not in result.output


def test_a_file_that_is_not_otlp_json_is_refused_before_writing(
    fleet: Path, tmp_path: Path
) -> None:
    out = tmp_path / "runs.jsonl"
    spans = str(fleet / "spans" / "worker-1-a.json")
    result = _cli("ingest", spans, str(fleet / "direct.jsonl"), "-o", str(out))
    assert result.exit_code == 1
    assert f"Error: {fleet / 'direct.jsonl'}:line 1: not OTLP JSON traces" in result.output
    assert not out.exists()
    usage = _cli("ingest", spans, "-o", str(tmp_path / "runs.csv"))
    assert usage.exit_code == 2 and "must be a .jsonl file" in usage.output
    into_input = _cli("ingest", spans, "-o", spans.replace(".json", ".jsonl"))
    assert into_input.exit_code == 0  # a new file beside the input is fine


def test_spans_keep_kind_status_events_links_and_remote_parents() -> None:
    from opentelemetry.exporter.agenttrace.otlp_json import SpanDecoder
    from opentelemetry.trace import SpanKind, StatusCode

    span = {
        "traceId": "0af7651916cd43dd8448eb211c80319c",
        "spanId": "b7ad6b7169203331",
        "parentSpanId": "00f067aa0ba902b7",
        "flags": 0x300,
        "name": "execute_tool bash",
        "kind": 3,
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000000500000000",
        "attributes": [
            {"key": "n", "value": {"intValue": "7"}},
            {"key": "x", "value": {"doubleValue": 0.5}},
            {"key": "ok", "value": {"boolValue": True}},
            {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}]}}},
            {"key": "kv", "value": {"kvlistValue": {"values": [{"key": "k", "value": {}}]}}},
        ],
        "events": [{"timeUnixNano": "1700000000100000000", "name": "exception"}],
        "links": [{"traceId": "0af7651916cd43dd8448eb211c80319d", "spanId": "b7ad6b7169203332"}],
        "status": {"code": 2, "message": "boom"},
    }
    request = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "s"}}]
                },
                "scopeSpans": [{"scope": {"name": "agenttrace", "version": "1"}, "spans": [span]}],
            }
        ]
    }
    decoder = SpanDecoder()
    (first,) = decoder.spans(request)
    (second,) = decoder.spans(request)
    assert not isinstance(first, Exception) and not isinstance(second, Exception)
    assert first.kind is SpanKind.CLIENT
    assert first.status.status_code is StatusCode.ERROR and first.status.description == "boom"
    assert first.parent is not None and first.parent.is_remote
    assert dict(first.attributes or {}) == {
        "n": 7,
        "x": 0.5,
        "ok": True,
        "tags": ("a",),
        "kv": {"k": None},
    }
    assert first.events[0].name == "exception" and first.events[0].timestamp == 1700000000100000000
    assert first.links[0].context.span_id == 0xB7AD6B7169203332
    assert first.resource is second.resource  # shared, not one per span
    assert first.instrumentation_scope is second.instrumentation_scope


def test_the_benchmark_runs_in_quick_mode(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_ingest.py"), "--mb", "1", "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "MB/s" in result.stdout and "peak RSS" in result.stdout
