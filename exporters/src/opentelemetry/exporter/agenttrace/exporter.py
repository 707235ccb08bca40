"""The AgentTrace span exporter and span processor.

Two ways in, one assembler and one set of files behind them:

* `AgentTraceSpanProcessor` (what `agenttrace.configure(output=...)` installs) sees spans start and
  end, in the thread that ends them. No queue or timer sits between a run's root ending and its
  row being a whole line in the JSONL file, so a burst of any size loses nothing and a process
  killed afterwards keeps the row.
* `AgentTraceSpanExporter` is the plain `SpanExporter`, for zero-code use
  (`OTEL_TRACES_EXPORTER=agenttrace opentelemetry-instrument python app.py`) and for any
  pipeline of your own. In zero-code mode our configurator (`configurator.py`) hands it to an
  `AgentTraceSpanProcessor` sharing its files instead of the SDK's BatchSpanProcessor, whose
  queue (2,048 spans by default) would drop spans in a burst; nothing else in the process is
  touched, so every other BatchSpanProcessor keeps the user's settings. Put behind a
  BatchSpanProcessor of your own, rows reach the file after that processor's delay, and a burst
  beyond its queue is dropped by it.

Neither raises into the SDK: a failure is logged and counted in `stats`.

Environment (zero-code mode, or arguments left as None):
`AGENTTRACE_OUTPUT` (JSONL path; default `agenttrace-output/agenttrace-<UTC time>-<pid>.jsonl`),
`AGENTTRACE_FORMAT` (`jsonl`, `parquet` or `jsonl,parquet`, the default; JSONL is always written;
without pyarrow, the `parquet` extra, only JSONL is written and a warning says so once),
`AGENTTRACE_FSYNC` (fsync every row), `AGENTTRACE_STRICT` (pure schema 0.3.0, no extensions).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.context import Context
from opentelemetry.exporter.agenttrace._assembler import AssemblerStats, TraceAssembler
from opentelemetry.exporter.agenttrace._records import (
    PARQUET_EXTRA_HINT,
    import_pyarrow_in_background,
    parquet_available,
)
from opentelemetry.exporter.agenttrace.readers import iter_jsonl_prefix
from opentelemetry.exporter.agenttrace.writers import (
    JsonlWriter,
    ParquetWriter,
    live_writers,
    mirrored_bytes,
    remove_stale_partials,
)
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

_logger = logging.getLogger(__name__)

ENV_OUTPUT = "AGENTTRACE_OUTPUT"
ENV_FORMAT = "AGENTTRACE_FORMAT"
ENV_FSYNC = "AGENTTRACE_FSYNC"
ENV_STRICT = "AGENTTRACE_STRICT"


# The same rule as agenttrace's own switches: unset or empty is off (these default off), and a
# set value is on unless it says otherwise.
_FALSE = frozenset({"0", "false", "no", "off", "none", "no_content"})


def _env_flag(name: str) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    return bool(raw) and raw not in _FALSE


_warned_no_pyarrow = False


def _wants_parquet(parquet: bool | None) -> bool:
    """Whether to write the Parquet twin: asked for in code, pyarrow is required (a clear
    ImportError); by default or `AGENTTRACE_FORMAT`, it is skipped without pyarrow, said once."""
    global _warned_no_pyarrow
    if parquet is not None:
        if parquet and not parquet_available():
            raise ImportError(f"parquet=True needs pyarrow: {PARQUET_EXTRA_HINT}")
        return parquet
    if "parquet" not in os.environ.get(ENV_FORMAT, "jsonl,parquet").lower():
        return False
    if parquet_available():
        return True
    if not _warned_no_pyarrow:
        _warned_no_pyarrow = True
        _logger.warning(
            "agenttrace: writing JSONL only: the Parquet twin needs pyarrow (%s)",
            PARQUET_EXTRA_HINT,
        )
    return False


def default_output_path() -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return Path("agenttrace-output") / f"agenttrace-{stamp}-{os.getpid()}.jsonl"


class RowFiles:
    """Where rows go: the JSONL file (always; the durable record) and its Parquet twin.

    Several processes may share one output. The JSONL is safe to share as it is (whole lines
    under the file's lock). The Parquet twin mirrors the whole JSONL, which no single writer sees
    when others append too, so when this one closes: if nobody else wrote, its own twin is
    complete and goes into place; if others wrote, the last of the sharing writers to close
    rebuilds the twin from the JSONL. A twin that mirrors more of the JSONL than the one about
    to be installed is never replaced by it.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        parquet: bool | None = None,
        fsync: bool | None = None,
    ) -> None:
        if path is None:
            path = os.environ.get(ENV_OUTPUT, "").strip() or default_output_path()
        parquet = _wants_parquet(parquet)
        self.jsonl_path = Path(path)
        self.parquet_path = self.jsonl_path.with_suffix(".parquet") if parquet else None
        self.errors = 0
        self._lock = threading.Lock()
        self._jsonl = JsonlWriter(
            self.jsonl_path, fsync=_env_flag(ENV_FSYNC) if fsync is None else fsync
        )
        self._parquet: ParquetWriter | None = None
        self._mirrors = False  # whether `_parquet` holds every row of the JSONL so far
        # The twin opens with the first row (or at close): pyarrow loads in the background
        # meanwhile, instead of on the thread that set up tracing.
        self._twin_due = self.parquet_path is not None
        if self.parquet_path is not None:
            import_pyarrow_in_background()
            try:  # what dead writers left is cleared on opening, as before
                with self._jsonl.locked():
                    remove_stale_partials(self.parquet_path)
            except Exception:
                self.errors += 1
                _logger.exception("agenttrace: clearing old partial files of %s failed", path)
        _OPEN_ROW_FILES.add(self)

    def _open_twin_if_due(self) -> None:
        if self._twin_due and self.parquet_path is not None:
            self._twin_due = False
            self._open_twin(self.parquet_path)

    @property
    def dropped_rows(self) -> int:
        """Rows that did not fit in the JSONL (disk full, file-size limit); `write` raised."""
        return self._jsonl.dropped_rows

    def _open_twin(self, parquet_path: Path) -> None:
        try:
            with self._jsonl.locked():
                remove_stale_partials(parquet_path)
            self._parquet = ParquetWriter(parquet_path, raw_file=self.jsonl_path.name)
            # Appending to a file: the Parquet twin mirrors all of it.
            for row in iter_jsonl_prefix(self.jsonl_path, self._jsonl.opened_size):
                self._parquet.write_row(row)
            self._mirrors = True
        except Exception:  # the JSONL is the record; the twin is rebuilt at close if it can be
            self.errors += 1
            _logger.exception("agenttrace: starting %s failed", parquet_path)

    def write(self, row: dict[str, Any]) -> None:
        with self._lock:
            self._jsonl.write_row(row)  # raises: the assembler counts the row as lost
            # The row is in the JSONL first: the twin's opening may wait for pyarrow to load.
            self._open_twin_if_due()
            if self._mirrors and self._parquet is not None:
                try:
                    self._parquet.write_row(row)
                except Exception:
                    self._parquet_failed()

    def flush(self) -> None:
        with self._lock:
            if self._mirrors and self._parquet is not None:
                try:
                    self._parquet.flush()
                except Exception:
                    self._parquet_failed()

    def _parquet_failed(self) -> None:
        """The JSONL has the rows: stop the twin here and rebuild it from the JSONL at close."""
        self.errors += 1
        self._mirrors = False
        _logger.exception("agenttrace: writing a Parquet row group failed")

    def close(self) -> None:
        with self._lock:
            if self._jsonl.closed:
                return
            try:
                if self.parquet_path is not None:
                    self._open_twin_if_due()  # no row came: the twin mirrors the file as it is
                    self._close_twin(self.parquet_path)
            except Exception:
                self.errors += 1
                _logger.exception("agenttrace: finishing %s failed", self.parquet_path)
            finally:
                self._jsonl.close()

    def _close_twin(self, parquet_path: Path) -> None:
        size, twin = self._finished_twin(parquet_path)
        if twin is None:
            return
        try:
            with self._jsonl.locked():
                if mirrored_bytes(parquet_path) > size:
                    twin.abort()  # a twin of more of the JSONL went into place meanwhile
                else:
                    twin.install()
        except BaseException:
            twin.abort()
            raise

    def _finished_twin(self, parquet_path: Path) -> tuple[int, ParquetWriter | None]:
        """The JSONL size now, and a complete twin of that much of it (None: none is due)."""
        twin, self._parquet = self._parquet, None
        jsonl = self._jsonl
        with jsonl.locked():
            size = jsonl.size()
            nobody_else_wrote = size == jsonl.opened_size + jsonl.bytes_written
            if twin is not None:
                twin.stop_taking_rows()
            others = live_writers(parquet_path)
        if twin is not None and self._mirrors and nobody_else_wrote and twin.lost_rows == 0:
            return size, _finished(twin, size)
        if twin is not None:
            twin.abort()
        if others or mirrored_bytes(parquet_path) == size:
            return size, None  # a sharing writer still running will write it; or it is current
        _logger.info("agenttrace: rebuilding %s from the shared JSONL file", parquet_path)
        twin = ParquetWriter(parquet_path, raw_file=self.jsonl_path.name)
        try:
            for row in iter_jsonl_prefix(self.jsonl_path, size):
                twin.write_row(row)
        except BaseException:
            twin.abort()
            raise
        return size, _finished(twin, size)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()  # another thread may have held it at the fork
        self._mirrors = False  # the writers give the twin up in the child (see writers.py)
        self._twin_due = False  # nor does the child start one of its own


def _finished(twin: ParquetWriter, size: int) -> ParquetWriter:
    try:
        twin.finish(mirrored=size)
    except BaseException:
        twin.abort()
        raise
    return twin


_OPEN_ROW_FILES: weakref.WeakSet[RowFiles] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for files in list(_OPEN_ROW_FILES):
        files._after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)


class _Base:
    """What the exporter and the processor share: arguments, files, assembler, stats, shutdown."""

    _sees_starts = False  # the processor sees spans start; the exporter only sees them end

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        parquet: bool | None = None,
        fsync: bool | None = None,
        strict: bool | None = None,
        max_spans: int = 500_000,
        files: RowFiles | None = None,
    ) -> None:
        self.files = RowFiles(path, parquet=parquet, fsync=fsync) if files is None else files
        self._strict = _env_flag(ENV_STRICT) if strict is None else strict
        self._max_spans = max_spans
        self._assembler = TraceAssembler(
            self.files.write,
            strict=self._strict,
            sees_starts=self._sees_starts,
            max_spans=max_spans,
        )
        self._shut_down = False

    @property
    def stats(self) -> AssemblerStats:
        """Rows written, incomplete rows, and every span ignored, late or dropped."""
        return self._assembler.stats

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        self.files.flush()
        return True

    def shutdown(self) -> None:
        if self._shut_down:
            return
        self._shut_down = True
        try:
            self._assembler.finish_all()
        except Exception:
            _logger.exception("agenttrace: writing the runs still open at shutdown failed")
        self.files.close()


class AgentTraceSpanExporter(_Base, SpanExporter):
    """A SpanExporter writing one AgentTrace row per finished agent run."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        parquet: bool | None = None,
        fsync: bool | None = None,
        strict: bool | None = None,
        max_spans: int = 500_000,
    ) -> None:
        super().__init__(path, parquet=parquet, fsync=fsync, strict=strict, max_spans=max_spans)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shut_down:
            return SpanExportResult.FAILURE
        try:
            for span in spans:
                self._assembler.on_end(span)
        except Exception:
            _logger.exception("agenttrace: assembling spans failed")
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS


class AgentTraceSpanProcessor(_Base, SpanProcessor):
    """A synchronous SpanProcessor writing each run's row the moment the run is whole."""

    _sees_starts = True

    @classmethod
    def for_exporter(cls, exporter: AgentTraceSpanExporter) -> AgentTraceSpanProcessor:
        """A processor writing the exporter's rows to the exporter's files, with its settings.

        What the zero-code configurator installs in place of a BatchSpanProcessor around the
        exporter the SDK built; the exporter itself is then left unused.
        """
        return cls(files=exporter.files, strict=exporter._strict, max_spans=exporter._max_spans)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if self._shut_down:
            return
        try:
            self._assembler.on_start(span)
        except Exception:
            _logger.exception("agenttrace: tracking a started span failed")

    def on_end(self, span: ReadableSpan) -> None:
        if self._shut_down:
            # The files are complete (exit, SIGTERM): a span of a run that went on is lost, and
            # counted as such.
            self._assembler.count_dropped()
            return
        try:
            self._assembler.on_end(span)
        except Exception:
            _logger.exception("agenttrace: assembling a span failed")
