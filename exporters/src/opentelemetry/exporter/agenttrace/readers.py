"""Reading AgentTrace files (JSONL or Parquet, ours or the release's) as rows, streaming."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from opentelemetry.exporter.agenttrace import _json
from opentelemetry.exporter.agenttrace._records import record_to_row, require_pyarrow_parquet
from opentelemetry.exporter.agenttrace.schema import (
    PARQUET_COLUMNS,
)

_logger = logging.getLogger(__name__)

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
PARQUET_SUFFIXES = (".parquet", ".pq")


class AgentTraceFileError(ValueError):
    """A file that is not valid AgentTrace data, located by file and line or row."""

    def __init__(self, path: str | os.PathLike[str], where: str, message: str) -> None:
        self.path = os.fspath(path)
        self.where = where
        self.message = message
        super().__init__(f"{self.path}:{where}: {message}")


def iter_jsonl_prefix(path: str | os.PathLike[str], size: int) -> Iterator[dict[str, Any]]:
    """The rows of the whole lines in the first `size` bytes of a JSONL file, streaming.

    What the Parquet twin mirrors: a line that does not parse is left out with a warning (the
    validator reports it), so one bad line never costs the twin.
    """
    with open(path, "rb") as handle:
        left = size
        for number, raw in enumerate(handle, start=1):
            left -= len(raw)
            if left < 0 or not raw.endswith(b"\n"):
                return
            try:
                _, row = _parse_line(path, number, raw)
            except AgentTraceFileError as error:
                _logger.warning("agenttrace: %s; left out of the Parquet file", error)
                continue
            if row:
                yield row


def iter_jsonl(
    path: str | os.PathLike[str],
    *,
    skip_torn_tail: bool = True,
    progress: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) for each line of a JSONL file, streaming.

    Raises AgentTraceFileError naming the line for malformed JSON or a non-object line. A last
    line without its newline that does not parse (a write torn by a crash) is skipped with a
    warning when `skip_torn_tail`.
    """
    with open(path, "rb") as handle:
        previous: tuple[int, bytes] | None = None
        for number, raw in enumerate(handle, start=1):
            if progress is not None:
                progress(len(raw))
            if previous is not None:
                yield _parse_line(path, *previous)
            previous = (number, raw)
        if previous is not None:
            number, raw = previous
            if skip_torn_tail and not raw.endswith(b"\n"):
                try:
                    yield _parse_line(path, number, raw)
                except AgentTraceFileError:
                    _logger.warning("agenttrace: %s:%d is a torn last line; skipped", path, number)
            else:
                yield _parse_line(path, number, raw)


def _parse_line(path: Any, number: int, raw: bytes) -> tuple[int, dict[str, Any]]:
    text = raw.strip()
    if not text:
        return number, {}
    try:
        row = _json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise AgentTraceFileError(path, f"line {number}", f"not valid JSON: {exc}") from None
    if not isinstance(row, dict):
        raise AgentTraceFileError(
            path, f"line {number}", f"a row must be a JSON object, got {type(row).__name__}"
        )
    return number, row


def iter_parquet(
    path: str | os.PathLike[str],
    *,
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number, row) for each row of an AgentTrace Parquet file, one batch at a time."""
    pq = require_pyarrow_parquet()

    try:
        # No pre-buffering: it reads ahead whole column chunks and keeps them, so memory would grow
        # with the file instead of staying at one batch.
        parquet = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
    except Exception as exc:
        raise AgentTraceFileError(path, "file", f"not a readable Parquet file: {exc}") from None
    missing = [
        c for c in PARQUET_COLUMNS if c not in parquet.schema_arrow.names and c != "raw_file"
    ]
    if missing:
        raise AgentTraceFileError(path, "schema", f"missing AgentTrace columns: {missing}")
    number = 0
    for batch in parquet.iter_batches(batch_size=batch_size):
        if progress is not None:
            progress(batch.num_rows)
        names = batch.schema.names
        columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
        for values in zip(*columns, strict=True):
            record = dict(zip(names, values, strict=True))
            number += 1
            try:
                yield number, record_to_row(record)
            except (ValueError, TypeError) as exc:
                raise AgentTraceFileError(
                    path, f"row {number}", f"bad JSON column: {exc}"
                ) from None


def iter_rows(
    path: str | os.PathLike[str], *, progress: Callable[[int], None] | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line or row number, row) from a JSONL or Parquet file, by its suffix.

    `progress` is called with the input bytes (JSONL) or rows (Parquet) consumed as it goes.
    """
    suffix = Path(path).suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        yield from iter_parquet(path, progress=progress)
    elif suffix in JSONL_SUFFIXES:
        for number, row in iter_jsonl(path, progress=progress):
            if row:
                yield number, row
    else:
        raise AgentTraceFileError(
            path, "file", "unknown file type: use .jsonl (or .ndjson/.json) or .parquet"
        )


def read_rows(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Rows of an AgentTrace JSONL or Parquet file, streaming."""
    for _, row in iter_rows(path):
        yield row
