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
import socket
import struct
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
        self.pid = os.getpid()  # a forked child inherits its parent's jobs but runs only its own
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
    """A daemon thread serving a reentrant queue of jobs: started ahead of need, restarted after
    fork."""

    def __init__(self, name: str, serve: Callable[[_Job], None]) -> None:
        self._name = name
        self._serve = serve
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()  # put() is reentrant
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
        """A fresh queue and thread; jobs this process posted before the fork hooks ran (its
        SIGTERM handler may run in an earlier hook) move over, its parent's stay behind."""
        if self._thread is None:
            return
        self._thread = None
        inherited, self._queue = self._queue, queue.SimpleQueue()
        with contextlib.suppress(queue.Empty):
            while True:
                job = inherited.get_nowait()
                if job.pid == os.getpid():
                    self._queue.put(job)
        self.start()

    def put(self, item: _Job) -> None:
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
#: The SIGTERM sequence, once started: {"job": _Job}. Started by whichever of the handler and the
#: wakeup reader sees the signal first; `dict.setdefault` is one step, so neither takes a lock.
_sigterm: dict[str, _Job] = {}
_handler_began = False  # whether our handler has run in the main thread (since the fork)
_NUDGE_INTERVAL_S = 0.05
_NUDGE_FOR_S = 1.0  # how long the main thread gets to run our handler once the files are done


def _sigterm_job() -> _Job:
    """The SIGTERM sequence's job, started on the SIGTERM thread by the first caller."""
    job = _Job(exit_timeout_s(), flush_provider=True)
    current = _sigterm.setdefault("job", job)
    if current.pid != job.pid:  # the parent's, inherited by fork: this process starts its own
        _sigterm["job"] = current = job
    if current is job:
        _sigterm_thread.put(job)
    return current


def _started_sigterm_job() -> _Job | None:
    job = _sigterm.get("job")
    return job if job is not None and job.pid == os.getpid() else None


def _chains() -> bool:
    return callable(_previous_handler)


def _die_of_sigterm(job: _Job) -> None:
    """SIGTERM's thread: run the exit sequence (at most the bound), then see that the main
    thread runs our handler, which dies of SIGTERM (or calls the application's).

    A signal that lands just before the main thread blocks (in a lock, a join, a sleep) leaves
    its Python handler pending until the wait ends, perhaps never; only the wakeup reader saw
    it. So until the handler has begun, SIGTERM is sent again: it interrupts the wait, and a
    pending signal runs its handler once however often it came. A main thread that still runs
    no handler after `_NUDGE_FOR_S` cannot be waited for: without an application's handler
    the process exits with status 128 + SIGTERM, as a shell reports a death by SIGTERM.
    """
    _run(job).wait()
    give_up = time.monotonic() + _NUDGE_FOR_S
    while time.monotonic() < give_up:
        if _handler_began and _chains():
            return  # the application's handler runs, and decides what happens next
        os.kill(os.getpid(), signal.SIGTERM)  # after our handler ran, the default action: death
        time.sleep(_NUDGE_INTERVAL_S)
    if not _chains():
        os._exit(128 + signal.SIGTERM)


_sigterm_thread = _Daemon("agenttrace-sigterm", _die_of_sigterm)


def _on_sigterm(signum: int, frame: Any) -> None:
    """Start the SIGTERM sequence; chain to the application's handler, if there was one.

    Runs in the main thread between two bytecodes of whatever it was doing, so it takes no lock
    that code may hold and starts no thread: it posts a request on a reentrant queue (and, to
    chain, waits for the files, at most the exit bound).
    """
    global _handler_began
    _handler_began = True
    previous = _previous_handler
    if callable(previous):
        _sigterm_job().wait_for_files()
        previous(signum, frame)
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM kills at once
    if _sigterm_job().done.is_set():  # the wakeup reader started it and it is over: die now
        os.kill(os.getpid(), signal.SIGTERM)


class _WakeupReader:
    """Sees SIGTERM even when the main thread cannot run our handler yet.

    CPython runs a Python signal handler in the main thread at its next bytecode. A signal that
    lands just before the main thread blocks (joining ThreadPoolExecutor workers at the end of a
    script, waiting on a lock) does not interrupt the wait, and the handler runs only when the
    wait ends, perhaps never. The C-level handler does write the signal's number to the wakeup
    fd at once, from whatever thread received it. This thread reads it and starts the SIGTERM
    sequence itself.

    The wakeup fd is a datagram socket whose reader is told each sender's pid (Linux's
    SO_PASSCRED): a child forked a moment ago shares the socket until its fork hook gives it one
    of its own, and a SIGTERM meant for the child must not end this process. Where the sender
    cannot be known (not Linux), there is no reader and the handler works alone. The wakeup fd
    is one per process: one already set (asyncio's) is left in place.
    """

    def __init__(self) -> None:
        self._sockets: tuple[socket.socket, socket.socket] | None = None

    def install(self) -> None:
        """Take the wakeup fd if it is free and start reading it (main thread only)."""
        if self._sockets is not None or not _SENDERS_KNOWN:
            return
        reader, writer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        writer.setblocking(False)  # the C handler must never block
        try:
            previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        except (ValueError, OSError):
            _close(reader, writer)
            return
        if previous != -1:  # someone else's: give it back
            signal.set_wakeup_fd(previous)
            _close(reader, writer)
            return
        self._sockets = (reader, writer)
        threading.Thread(
            target=self._read, args=(reader,), name="agenttrace-signal-wakeup", daemon=True
        ).start()

    def uninstall(self) -> None:
        """Give the wakeup fd back, if it is still ours; the reader then stops."""
        if self._sockets is None:
            return
        reader, writer = self._sockets
        self._sockets = None
        with contextlib.suppress(ValueError, OSError):
            current = signal.set_wakeup_fd(-1)
            if current not in (-1, writer.fileno()):  # replaced by someone else: theirs stays
                signal.set_wakeup_fd(current)
        with contextlib.suppress(OSError):
            reader.shutdown(socket.SHUT_RDWR)  # wakes the reader, which closes its end
        _close(writer)

    def reinstall_after_fork(self) -> None:
        """The child gets sockets of its own (signals it received meanwhile went to the parent's
        reader, which ignores them: they are not from the parent)."""
        if self._sockets is None:
            return
        sockets, self._sockets = self._sockets, None
        with contextlib.suppress(ValueError, OSError):
            signal.set_wakeup_fd(-1)
        _close(*sockets)
        self.install()

    @staticmethod
    def _read(reader: socket.socket) -> None:
        me = os.getpid()
        space = socket.CMSG_SPACE(_CREDENTIALS.size)
        try:
            while True:
                data, ancillary, _, _ = reader.recvmsg(64, space)
                if not data:
                    return  # shut down by uninstall()
                if (
                    signal.SIGTERM in data
                    and _sender(ancillary) == me
                    and signal.getsignal(signal.SIGTERM) is _on_sigterm
                ):
                    _sigterm_job()
        except OSError:
            pass
        finally:
            _close(reader)


#: struct ucred: pid, uid, gid.
_CREDENTIALS = struct.Struct("iII")
_SENDERS_KNOWN = hasattr(socket, "SO_PASSCRED") and hasattr(socket, "SCM_CREDENTIALS")


def _sender(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    """The pid that sent a datagram, from its SCM_CREDENTIALS message."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            return int(_CREDENTIALS.unpack_from(data)[0])
    return None


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.close()


_wakeup = _WakeupReader()


def at_exit() -> None:
    """Interpreter exit: finish within the bound; after SIGTERM (unless chained), die of it."""
    job = _started_sigterm_job()
    if job is None or _chains():
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
                _wakeup.uninstall()
            return
        if current is _on_sigterm or current is signal.SIG_IGN or current is None:
            return  # ours already; ignored on purpose; or set outside Python: left alone
        _previous_handler = current
        _sigterm_thread.start()
        signal.signal(signal.SIGTERM, _on_sigterm)
        _wakeup.install()


def _after_fork_in_child() -> None:
    global _handler_began
    if _started_sigterm_job() is None:
        _handler_began = False  # the parent's; a handler that ran here first started a job
    _worker.restart_after_fork()
    _sigterm_thread.restart_after_fork()
    _wakeup.reinstall_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
