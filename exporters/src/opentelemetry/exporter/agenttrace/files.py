"""AgentTrace files, one module per job; this module gathers their public names in one place.

`writers` (the JSONL file and its Parquet twin), `readers` (streaming rows out of either format),
`convert` (one format to the other, whole or not at all) and `validation` (every row of a file,
located), with the Parquet column view in `_records`. Import from here or from those modules.
"""

from opentelemetry.exporter.agenttrace._records import (
    PARQUET_EXTRA_HINT,
    parquet_available,
    parquet_schema,
    record_to_row,
    require_pyarrow,
    require_pyarrow_parquet,
    row_to_record,
)
from opentelemetry.exporter.agenttrace.convert import convert
from opentelemetry.exporter.agenttrace.readers import (
    JSONL_SUFFIXES,
    PARQUET_SUFFIXES,
    AgentTraceFileError,
    iter_jsonl,
    iter_jsonl_prefix,
    iter_parquet,
    iter_rows,
    read_rows,
)
from opentelemetry.exporter.agenttrace.validation import validate_file
from opentelemetry.exporter.agenttrace.writers import (
    MIRRORED_BYTES_KEY,
    JsonlWriter,
    ParquetWriter,
    RowWriteError,
    encode_row,
    live_writers,
    mirrored_bytes,
    partial_path,
    remove_stale_partials,
)

__all__ = [
    "JSONL_SUFFIXES",
    "MIRRORED_BYTES_KEY",
    "PARQUET_EXTRA_HINT",
    "PARQUET_SUFFIXES",
    "AgentTraceFileError",
    "JsonlWriter",
    "ParquetWriter",
    "RowWriteError",
    "convert",
    "encode_row",
    "iter_jsonl",
    "iter_jsonl_prefix",
    "iter_parquet",
    "iter_rows",
    "live_writers",
    "mirrored_bytes",
    "parquet_available",
    "parquet_schema",
    "partial_path",
    "read_rows",
    "record_to_row",
    "remove_stale_partials",
    "require_pyarrow",
    "require_pyarrow_parquet",
    "row_to_record",
    "validate_file",
]
