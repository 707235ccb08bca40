"""Exit is bounded and loses nothing: rows at the agent call's return, files before backends, and
only what a backend accepted reported as sent."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.exporter.agenttrace import AgentTraceSpanProcessor, read_rows, validate_row

import agenttrace
from agenttrace import _configure

METADATA = {"dataset_name": "mbpp", "source": "tests", "dataset_split": "test"}
SCRIPT = Path(sys.executable).with_name("agenttrace")


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTTRACE_"))}
    env.update(extra)
    return env


# -- the row is on disk when the agent call returns ---------------------------------------------
@pytest.fixture
def processor(configure_spans, tmp_path: Path) -> Iterator[AgentTraceSpanProcessor]:
    processor = AgentTraceSpanProcessor(tmp_path / "runs.jsonl", parquet=False)
    configure_spans(span_processors=[processor])
    yield processor
    processor.shutdown()


def test_a_generator_tool_kept_alive_does_not_hold_the_row_back(processor, tmp_path) -> None:
    @agenttrace.tool
    def lines():
        yield "first"
        yield "second"

    @agenttrace.tool
    def done() -> str:
        return "ok"

    kept = []

    @agenttrace.agent(metadata={**METADATA, "task_id": 1, "run_id": "r1"})
    def run() -> str:
        generator = lines()
        next(generator)
        kept.append(generator)  # still open when the agent returns
        return done()

    run()
    (row,) = _lines(tmp_path / "runs.jsonl")  # written at return, not when the generator ends
    assert row["metadata"]["incomplete"] is True
    assert [s["tool_name"] for s in row["spans"]] == ["done"]
    assert validate_row(row) == []
    kept.pop().close()  # the straggler ends now: counted late, no second row
    assert len(_lines(tmp_path / "runs.jsonl")) == 1
    assert processor.stats.late_spans == 1
    assert processor.stats.incomplete_rows == 1
    assert processor._assembler.buffered_spans == 0


def test_a_tool_left_running_in_a_thread_is_late_with_what_it_started(processor, tmp_path) -> None:
    release, inner_done = threading.Event(), threading.Event()

    @agenttrace.tool
    def inner() -> str:
        return "inner"

    @agenttrace.tool
    def lingering() -> None:
        inner()
        inner_done.set()
        release.wait(10)
        inner()  # ends after the row was written, below a straggler: late too

    @agenttrace.agent(metadata={**METADATA, "task_id": 2, "run_id": "r2"})
    def run() -> str:
        worker = threading.Thread(target=agenttrace.propagate(lingering))
        worker.start()
        inner_done.wait(10)
        threads.append(worker)
        return "returned while a tool still runs"

    threads: list[threading.Thread] = []
    run()
    (row,) = _lines(tmp_path / "runs.jsonl")
    assert row["metadata"]["incomplete"] is True
    assert [s["tool_name"] for s in row["spans"]] == ["inner"]  # what had ended at return
    release.set()
    threads[0].join(10)
    assert len(_lines(tmp_path / "runs.jsonl")) == 1
    assert processor.stats.late_spans == 2  # the lingering tool and the call it made after
    assert processor._assembler.buffered_spans == 0


def test_a_run_whose_spans_all_ended_is_complete_at_return(processor, tmp_path) -> None:
    @agenttrace.tool
    def work(i: int) -> int:
        return i

    @agenttrace.agent(metadata={**METADATA, "task_id": 3, "run_id": "r3"})
    def run() -> int:
        with agenttrace.ContextThreadPoolExecutor(2) as pool:
            return sum(pool.map(work, range(4)))

    run()
    (row,) = _lines(tmp_path / "runs.jsonl")
    assert "incomplete" not in row["metadata"] and len(row["spans"]) == 4
    assert processor.stats.late_spans == 0


# -- a dead backend: the files first, the whole exit within the bound ----------------------------
EXIT_SCRIPT = textwrap.dedent(
    """
    import sys, agenttrace
    out, endpoint, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
    agenttrace.configure(output=out, otlp_endpoint=endpoint, otlp_timeout=timeout)

    @agenttrace.tool
    def work(i):
        return i

    @agenttrace.agent(metadata={"dataset_name": "mbpp", "source": "t", "dataset_split": "t"})
    def run(i):
        agenttrace.set_run_metadata(task_id=i, run_id=f"r{i}")
        work(i)

    for i in range(1000):  # 2,000 spans queued for a backend that is down
        run(i)
    print("done", flush=True)
    """
)
BOUND_S = 1.5


@pytest.mark.parametrize("backend", ["closed port", "accepts, never answers"])
def test_a_dead_backend_cannot_hold_the_exit_past_the_bound(tmp_path, backend: str) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    if backend == "closed port":
        listener.close()
    else:
        listener.listen(64)  # the kernel completes connections; nobody ever reads them
    out = tmp_path / "runs.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-c", EXIT_SCRIPT, str(out), f"http://127.0.0.1:{port}", str(BOUND_S)],
        env=_clean_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "done"
        started = time.monotonic()
        assert process.wait(timeout=30) == 0
        took = time.monotonic() - started
        exited_at = time.time()
    finally:
        if process.poll() is None:
            process.kill()
        listener.close()
    assert took < BOUND_S + 1.0, f"exit took {took:.1f} s"  # interpreter teardown on top
    rows = _lines(out)
    assert len(rows) == 1000
    assert list(read_rows(out.with_suffix(".parquet"))) == rows
    if backend == "accepts, never answers":
        # The Parquet twin was complete before the wait for the backend began, not after it.
        finished_at = out.with_suffix(".parquet").stat().st_mtime
        assert exited_at - finished_at > BOUND_S / 2


# -- only what the backend accepted is reported as sent ------------------------------------------
class _Refusing(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that refuses every export (400: not retried)."""

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(400)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def refusing_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_otlp_counts_say_what_a_refusing_backend_took(configure_spans, refusing_endpoint) -> None:
    configure_spans(otlp_endpoint=refusing_endpoint, otlp_timeout=2.0)

    @agenttrace.tool
    def work() -> str:
        return "ok"

    @agenttrace.agent(metadata=METADATA)
    def run() -> str:
        return work()

    run()
    assert agenttrace.shutdown() is True
    counts = _configure.otlp_counts()
    assert counts is not None
    assert (counts.offered, counts.delivered, counts.failed, counts.unsent) == (2, 0, 2, 0)
    assert counts.describe().startswith(f"OTLP to {refusing_endpoint}: 0 of 2 spans delivered")


def test_otlp_counts_say_what_a_working_backend_took(configure_spans) -> None:
    from otlp_receiver import OTLPReceiver

    receiver = OTLPReceiver().start()
    try:
        configure_spans(otlp_endpoint=receiver.http_endpoint)

        @agenttrace.agent(metadata=METADATA)
        def run() -> str:
            return "ok"

        run()
        run()
        agenttrace.shutdown()
        counts = _configure.otlp_counts()
        assert counts is not None and (counts.offered, counts.delivered) == (2, 2)
        assert len(receiver.wait_for(2)) == 2
    finally:
        receiver.stop()


@pytest.mark.slow
def test_demo_does_not_claim_spans_a_backend_refused(tmp_path, refusing_endpoint) -> None:
    result = subprocess.run(
        [str(SCRIPT), "demo", "-o", str(tmp_path / "d")],
        env=_clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=refusing_endpoint),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "sent" not in result.stdout.replace("not sent", "")
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("OTLP to ")]
    assert f"{refusing_endpoint}: 0 of " in line and " spans delivered (" in line
