"""The AgentTrace span exporter and span processor.

Two ways in, one assembler and one set of files behind them:

* `AgentTraceSpanProcessor` (what `agenttrace.configure(output=...)` installs) sees spans start and
  end, in the thread that ends them. No queue or timer sits between a run's root ending and its
  row being a whole line in the JSONL file, so a burst of any size loses nothing and a process
  killed afterwards keeps the row.
* `AgentTraceSpanExporter` is the plain `SpanExporter` for zero-code use
  (`OTEL_TRACES_EXPORTER=agenttrace opentelemetry-instrument python app.py`). The SDK then puts
  its BatchSpanProcessor in front, so rows reach the file only after that processor's delay. That
  processor drops spans when its queue is full (2,048 by default): the exporter shares the GIL
  with the threads producing spans, so in a burst it cannot drain faster than they fill. Unless
  `OTEL_BSP_MAX_QUEUE_SIZE` is set, constructing the exporter raises that default to
  `ZERO_CODE_QUEUE_SIZE`, so a burst waits in memory instead of being dropped.

Neither raises into the SDK: a failure is logged and counted in `stats`.

Environment (zero-code mode, or arguments left as None):
`AGENTTRACE_OUTPUT` (JSONL path; default `agenttrace-output/agenttrace-<UTC time>-<pid>.jsonl`),
`AGENTTRACE_FORMAT` (`jsonl`, `parquet` or `jsonl,parquet`, the default; JSONL is always written),
`AGENTTRACE_FSYNC` (fsync every row), `AGENTTRACE_STRICT` (pure schema 0.3.0, no extensions).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.context import Context
from opentelemetry.exporter.agenttrace._assembler import AssemblerStats, TraceAssembler
from opentelemetry.exporter.agenttrace.files import JsonlWriter, ParquetWriter, iter_jsonl
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

_logger = logging.getLogger(__name__)

ENV_OUTPUT = "AGENTTRACE_OUTPUT"
ENV_FORMAT = "AGENTTRACE_FORMAT"
ENV_FSYNC = "AGENTTRACE_FSYNC"
ENV_STRICT = "AGENTTRACE_STRICT"
ENV_BSP_QUEUE = "OTEL_BSP_MAX_QUEUE_SIZE"
#: The BatchSpanProcessor queue size the exporter asks for unless the user chose one.
ZERO_CODE_QUEUE_SIZE = 1_000_000


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def default_output_path() -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return Path("agenttrace-output") / f"agenttrace-{stamp}-{os.getpid()}.jsonl"


class RowFiles:
    """Where rows go: the JSONL file (always; the durable record) and its Parquet twin."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        parquet: bool | None = None,
        fsync: bool | None = None,
    ) -> None:
        if path is None:
            path = os.environ.get(ENV_OUTPUT, "").strip() or default_output_path()
        if parquet is None:
            formats = os.environ.get(ENV_FORMAT, "jsonl,parquet").lower()
            parquet = "parquet" in formats
        self.jsonl_path = Path(path)
        self.parquet_path = self.jsonl_path.with_suffix(".parquet") if parquet else None
        self.errors = 0
        self._lock = threading.Lock()
        existed = self.jsonl_path.exists() and self.jsonl_path.stat().st_size > 0
        self._jsonl = JsonlWriter(
            self.jsonl_path, fsync=_env_flag(ENV_FSYNC) if fsync is None else fsync
        )
        self._parquet: ParquetWriter | None = None
        if self.parquet_path is not None:
            self._parquet = ParquetWriter(self.parquet_path, raw_file=self.jsonl_path.name)
            if existed:  # appending to a file: the Parquet twin mirrors all of it
                for _, row in iter_jsonl(self.jsonl_path):
                    if row:
                        self._parquet.write_row(row)

    def write(self, row: dict[str, Any]) -> None:
        with self._lock:
            self._jsonl.write_row(row)  # raises: the assembler counts the row as lost
            if self._parquet is not None:
                try:
                    self._parquet.write_row(row)
                except Exception:  # the JSONL has the row; the Parquet can be rebuilt from it
                    self.errors += 1
                    _logger.exception("agenttrace: writing a Parquet row group failed")

    def flush(self) -> None:
        with self._lock:
            if self._parquet is not None:
                try:
                    self._parquet.flush()
                except Exception:
                    self.errors += 1
                    _logger.exception("agenttrace: writing a Parquet row group failed")

    def close(self) -> None:
        with self._lock:
            if self._parquet is not None:
                try:
                    self._parquet.close()
                except Exception:
                    self.errors += 1
                    _logger.exception("agenttrace: finishing %s failed", self.parquet_path)
                    self._parquet.abort()
                self._parquet = None
            self._jsonl.close()


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
    ) -> None:
        self.files = RowFiles(path, parquet=parquet, fsync=fsync)
        self._assembler = TraceAssembler(
            self.files.write,
            strict=_env_flag(ENV_STRICT) if strict is None else strict,
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
        # Read by the BatchSpanProcessor the SDK builds around this exporter right after it.
        os.environ.setdefault(ENV_BSP_QUEUE, str(ZERO_CODE_QUEUE_SIZE))

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

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if self._shut_down:
            return
        try:
            self._assembler.on_start(span)
        except Exception:
            _logger.exception("agenttrace: tracking a started span failed")

    def on_end(self, span: ReadableSpan) -> None:
        if self._shut_down:
            return
        try:
            self._assembler.on_end(span)
        except Exception:
            _logger.exception("agenttrace: assembling a span failed")
