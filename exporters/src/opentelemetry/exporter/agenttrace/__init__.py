"""AgentTrace: an OpenTelemetry exporter that writes finished agent runs as AgentTrace rows.

This distribution never imports `agenttrace` (the instrumentation): any OpenTelemetry application
that emits GenAI-convention spans can use it on its own, in code or as
`OTEL_TRACES_EXPORTER=agenttrace opentelemetry-instrument python app.py`.
"""

from opentelemetry.exporter.agenttrace import semconv
from opentelemetry.exporter.agenttrace._assembler import AssemblerStats, TraceAssembler
from opentelemetry.exporter.agenttrace._rows import build_row
from opentelemetry.exporter.agenttrace.exporter import (
    AgentTraceSpanExporter,
    AgentTraceSpanProcessor,
    RowFiles,
)
from opentelemetry.exporter.agenttrace.files import (
    AgentTraceFileError,
    JsonlWriter,
    ParquetWriter,
    iter_rows,
    read_rows,
    record_to_row,
    row_to_record,
)
from opentelemetry.exporter.agenttrace.schema import SCHEMA_VERSION, Violation, validate_row
from opentelemetry.exporter.agenttrace.version import __version__

__all__ = [
    "SCHEMA_VERSION",
    "AgentTraceFileError",
    "AgentTraceSpanExporter",
    "AgentTraceSpanProcessor",
    "AssemblerStats",
    "JsonlWriter",
    "ParquetWriter",
    "RowFiles",
    "TraceAssembler",
    "Violation",
    "__version__",
    "build_row",
    "iter_rows",
    "read_rows",
    "record_to_row",
    "row_to_record",
    "semconv",
    "validate_row",
]
