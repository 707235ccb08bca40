"""Ending a traced process: bounded, local files first, and (on SIGTERM) without the main thread.

One sequence serves `agenttrace.shutdown()`, interpreter exit and SIGTERM: every AgentTrace
processor writes the runs still open as rows marked incomplete and completes its Parquet twin
(the files are the durable record, so they come first); then the batched exporters (OTLP, ...)
get whatever is left of the exit bound. A backend that is down cannot hold the exit past the
bound however many spans are queued: exports not yet started when the deadline passes fail at
once, and one still waiting for an answer is abandoned.

The sequence runs on a daemon thread that exists before the exit begins, and callers only wait
for it, up to the bound. Abandoning is why it is a daemon thread; existing beforehand is because
Python 3.12+ refuses to start threads once interpreter shutdown has begun, and a signal handler
must not start one (it may have interrupted the main thread inside threading's own locks).

SIGTERM needs its own path. Python joins non-daemon threads (ThreadPoolExecutor workers) before
it runs atexit handlers, so with runs busy in workers an orderly exit of the main thread never
reaches the flush. So the handler only posts a request on a reentrant queue (it takes no lock
that the interrupted code may hold, e.g. a row half written) and returns; a second daemon thread
runs the sequence and then lets the process die of SIGTERM, as it would have without us. If the
application had its own SIGTERM handler, ours writes the files and then calls it instead.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

_logger = logging.getLogger(__name__)

ENV_HANDLE_SIGNALS = "AGENTTRACE_HANDLE_SIGNALS"


# -- batched exporters: counted, and stopped at the exit deadline ----------------------------------
class BoundedExporter(SpanExporter):
    """A batched exporter, counting what it delivered and failing at once past the exit deadline.

    The BatchSpanProcessor in front drains its whole queue at shutdown, one export at a time, each
    allowed the exporter's full timeout: against a backend that never answers that is minutes. Past
    the deadline this wrapper turns each remaining export into an immediate failure (counted).
    """

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter
        self.delivered = 0
        self.failed = 0
        self.skipped = 0
        self._deadline: float | None = None
        self._lock = threading.Lock()

    def stop_by(self, deadline: float) -> None:
        """Exports that would start after `deadline` (time.monotonic) fail without trying."""
        self._deadline = deadline

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        deadline = self._deadline
        if deadline is not None and time.monotonic() >= deadline:
            self._count("skipped", len(spans))
            return SpanExportResult.FAILURE
        try:
            result = self.exporter.export(spans)
        except Exception:
            _logger.exception("agenttrace: exporting spans failed")
            result = SpanExportResult.FAILURE
        self._count("delivered" if result is SpanExportResult.SUCCESS else "failed", len(spans))
        return result

    def _count(self, outcome: str, spans: int) -> None:
        with self._lock:
            setattr(self, outcome, getattr(self, outcome) + spans)

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.exporter.force_flush(timeout_millis)


@dataclass(frozen=True)
class ExportCounts:
    """What became of the spans handed to one batched exporter (e.g. OTLP)."""

    endpoint: str
    offered: int  # spans handed to its processor
    delivered: int  # accepted by the backend
    failed: int  # refused, unreachable, or not sent before the exit deadline

    @property
    def unsent(self) -> int:
        """Spans still queued (or in an abandoned export) when the process stopped waiting."""
        return max(0, self.offered - self.delivered - self.failed)

    def describe(self) -> str:
        """One line for people: only what the backend accepted counts as sent."""
        line = f"OTLP to {self.endpoint}: {self.delivered} of {self.offered} spans delivered"
        if self.delivered == self.offered:
            return line
        return f"{line} ({self.failed} failed, {self.unsent} not sent)"


class CountingBatchProcessor(BatchSpanProcessor):
    """A BatchSpanProcessor in front of a BoundedExporter, counting the spans it is given."""

    def __init__(self, exporter: BoundedExporter, endpoint: str, **kwargs: Any) -> None:
        super().__init__(exporter, **kwargs)
        self.bounded = exporter
        self.endpoint = endpoint
        self._offered = itertools.count()  # next() is one atomic step: no lock on the hot path
        self._reads = 0  # each read takes one step of the count too
        self._read_lock = threading.Lock()

    def on_end(self, span: ReadableSpan) -> None:
        if span.context.trace_flags.sampled:
            next(self._offered)
        super().on_end(span)

    def counts(self) -> ExportCounts:
        with self._read_lock:
            offered = next(self._offered) - self._reads
            self._reads += 1
        bounded = self.bounded
        return ExportCounts(
            self.endpoint, offered, bounded.delivered, bounded.failed + bounded.skipped
        )


# -- what configure() set up, and the exit sequence ------------------------------------------------
@dataclass(frozen=True)
class Pipeline:
    """What one configure() call added, in the order the exit handles it."""

    local: tuple[SpanProcessor, ...] = ()  # AgentTrace processors: their files come first
    batched: tuple[BoundedExporter, ...] = ()  # stopped at the deadline
    rest: Callable[[], None] = lambda: None  # shuts down everything configure() added
    timeout_s: float = 5.0  # the whole exit's bound


_pipeline = Pipeline()
_pipeline_lock = threading.Lock()


def set_pipeline(pipeline: Pipeline) -> None:
    """Install what the next exit finishes (configure() calls this, before it shuts down what the
    previous call added: those exporters get the bound to drain, not a backend's patience)."""
    global _pipeline
    with _pipeline_lock:
        previous, _pipeline = _pipeline, pipeline
    deadline = time.monotonic() + previous.timeout_s
    for exporter in previous.batched:
        exporter.stop_by(deadline)
    _worker.start()


def exit_timeout_s() -> float:
    return _pipeline.timeout_s


class _Job:
    """One run of the exit sequence; `local_done` once the files are complete, then `done`."""

    def __init__(self, timeout_s: float, *, flush_provider: bool = False) -> None:
        self.deadline = time.monotonic() + timeout_s
        self.flush_provider = flush_provider
        self.local_done = threading.Event()
        self.done = threading.Event()

    def wait(self) -> bool:
        """Wait for the whole sequence, until the deadline at most."""
        return self.done.wait(self._left())

    def wait_for_files(self) -> bool:
        """Wait for the AgentTrace files to be complete, until the deadline at most."""
        return self.local_done.wait(self._left())

    def _left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def run(self) -> None:
        global _pipeline
        with _pipeline_lock:
            pipeline, _pipeline = _pipeline, Pipeline(timeout_s=_pipeline.timeout_s)
        try:
            for exporter in pipeline.batched:
                exporter.stop_by(self.deadline)
            for processor in pipeline.local:
                _quietly(processor.shutdown)
            self.local_done.set()
            _quietly(pipeline.rest)
            if self.flush_provider:
                self._flush_provider()
        finally:
            self.local_done.set()
            self.done.set()

    def _flush_provider(self) -> None:
        """On SIGTERM nothing else flushes the provider's other processors (the app's)."""
        provider = trace.get_tracer_provider()
        remaining_ms = int((self.deadline - time.monotonic()) * 1000)
        if isinstance(provider, TracerProvider) and remaining_ms > 0:
            _quietly(lambda: provider.force_flush(remaining_ms))


def _quietly(step: Callable[[], Any]) -> None:
    try:
        step()
    except Exception:  # ending the process must never turn into a crash
        _logger.exception("agenttrace: a step of the exit sequence failed")


class _Daemon:
    """A daemon thread serving a reentrant queue: started ahead of need, restarted after fork."""

    def __init__(self, name: str, serve: Callable[[Any], None]) -> None:
        self._name = name
        self._serve = serve
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()  # put() is reentrant
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        """Start the thread unless it runs; False if the interpreter refuses (at shutdown)."""
        if self._thread is not None and self._thread.is_alive():
            return True
        thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
        try:
            thread.start()
        except RuntimeError:  # "can't create new thread at interpreter shutdown"
            return False
        self._thread = thread
        return True

    def restart_after_fork(self) -> None:
        if self._thread is not None:
            self._thread = None
            self._queue = queue.SimpleQueue()
            self.start()

    def put(self, item: Any) -> None:
        self._queue.put(item)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            try:
                self._serve(item)
            except Exception:  # the thread must outlive one failed exit step
                _logger.exception("agenttrace: %s failed", self._name)


_worker = _Daemon("agenttrace-exit", lambda job: job.run())


def _run(job: _Job) -> _Job:
    """Hand the job to the exit thread (or, if there can be none, run it here, unbounded)."""
    if _worker.start():
        _worker.put(job)
    else:
        job.run()
    return job


def finish(timeout_s: float | None = None) -> bool:
    """Run the exit sequence and wait for it, at most `timeout_s` (default: the configured bound).

    Returns whether everything finished in time.
    """
    return _run(_Job(exit_timeout_s() if timeout_s is None else timeout_s)).wait()


# -- SIGTERM ---------------------------------------------------------------------------------------
_previous_handler: Any = None  # what our handler replaced; called after ours when callable
_terminating: _Job | None = None  # the job SIGTERM started, when we are to die of it


def _die_of_sigterm(job: _Job) -> None:
    """SIGTERM's thread: run the exit sequence, wait at most the bound, then die of SIGTERM."""
    _run(job).wait()
    os.kill(os.getpid(), signal.SIGTERM)  # the handler restored the default action: we die


_sigterm_thread = _Daemon("agenttrace-sigterm", _die_of_sigterm)


def _on_sigterm(signum: int, frame: Any) -> None:
    """Hand SIGTERM to the daemon threads; chain to the application's handler, if there was one.

    Runs in the main thread between two bytecodes of whatever it was doing, so it takes no lock
    that code may hold and starts no thread: it posts a request on a reentrant queue (and, to
    chain, waits for the files, at most the exit bound).
    """
    global _terminating
    previous = _previous_handler
    job = _Job(exit_timeout_s(), flush_provider=True)
    if callable(previous):
        _run_for_chain(job)
        previous(signum, frame)
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM kills at once
    _terminating = job
    _sigterm_thread.put(job)


def _run_for_chain(job: _Job) -> None:
    """Write the files before the application's handler runs (it may exit at once).

    The wait is bounded by the exit bound: should the interrupted code hold a writer lock, the
    rows are written once the application's handler lets it go on.
    """
    _worker.put(job)
    job.wait_for_files()


def at_exit() -> None:
    """Interpreter exit: finish within the bound; after our SIGTERM, die of it."""
    job = _terminating
    if job is None:
        finish()
        return
    job.wait()
    os.kill(os.getpid(), signal.SIGTERM)


def wants_signals(handle_signals: bool | None) -> bool:
    if handle_signals is not None:
        return handle_signals
    value = os.environ.get(ENV_HANDLE_SIGNALS, "").strip().lower()
    return value not in ("0", "false", "no", "off")


def install_sigterm(handle_signals: bool) -> None:
    """Install (or, opted out, remove) our SIGTERM handler; only the main thread can do either."""
    global _previous_handler
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be changed from the main thread: try next time
    current = signal.getsignal(signal.SIGTERM)
    with contextlib.suppress(ValueError, OSError):  # embedded interpreters may refuse
        if not handle_signals:
            if current is _on_sigterm:
                signal.signal(signal.SIGTERM, _previous_handler or signal.SIG_DFL)
            return
        if current is _on_sigterm or current is signal.SIG_IGN or current is None:
            return  # ours already; ignored on purpose; or set outside Python: left alone
        _previous_handler = current
        _sigterm_thread.start()
        signal.signal(signal.SIGTERM, _on_sigterm)


def _after_fork_in_child() -> None:
    global _terminating
    _terminating = None
    _worker.restart_after_fork()
    _sigterm_thread.restart_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
