"""Converting AgentTrace files between JSONL and Parquet, whole or not at all."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opentelemetry.exporter.agenttrace.readers import (
    JSONL_SUFFIXES,
    PARQUET_SUFFIXES,
    AgentTraceFileError,
    iter_rows,
)
from opentelemetry.exporter.agenttrace.writers import (
    ParquetWriter,
    encode_row,
    partial_path,
)

_logger = logging.getLogger(__name__)


def convert(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    progress: Callable[[int], None] | None = None,
    check: Callable[[int, dict[str, Any]], None] | None = None,
) -> int:
    """Stream `source` (JSONL or Parquet) into `target` (JSONL or Parquet); returns the row count.

    Nothing appears at `target` unless the whole conversion succeeds: rows go to a hidden partial
    file that is renamed into place at the end and removed on failure. `check` sees each row
    (with its line or row number) before it is written; what it raises stops the conversion.
    """
    source, target = Path(source), Path(target)
    suffix = target.suffix.lower()
    if suffix not in PARQUET_SUFFIXES + JSONL_SUFFIXES:
        raise AgentTraceFileError(target, "file", "unknown file type: use .jsonl or .parquet")
    count = 0
    if suffix in PARQUET_SUFFIXES:
        writer = ParquetWriter(target, raw_file=source.name)
        try:
            for number, row in iter_rows(source, progress=progress):
                if check is not None:
                    check(number, row)
                writer.write_row(row)
                count += 1
            writer.close()
        except BaseException:
            writer.abort()
            raise
        return count
    partial = partial_path(target)
    try:
        with open(partial, "wb") as out:
            for number, row in iter_rows(source, progress=progress):
                if check is not None:
                    check(number, row)
                out.write(encode_row(row))
                count += 1
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return count
