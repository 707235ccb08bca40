"""AgentTrace files: JSONL and Parquet writers and streaming readers.

JSONL is the durable format: each row is encoded whole and appended with a single `write` on a
file opened `O_APPEND`, so once `write_row` returns the line is in the OS, and a process killed
afterwards loses nothing. A line torn by a kill *during* a write is cut away the next time the
file is opened for appending, and readers report (and skip) a torn last line.

Parquet is the Hugging Face view: one row per trace with flat columns plus the JSON of the nested
parts. It is written in row groups to a hidden `.partial` file and renamed into place when closed,
so after a crash the Parquet file is either absent or valid (the JSONL beside it has every row;
`agenttrace convert` rebuilds the Parquet from it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from opentelemetry.exporter.agenttrace import _json
from opentelemetry.exporter.agenttrace.schema import (
    PARQUET_COLUMNS,
    Violation,
    validate_row,
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


def encode_row(row: dict[str, Any]) -> bytes:
    """One JSONL line (UTF-8, newline-terminated) for a row."""
    return _json.dumps_bytes(row) + b"\n"


def _repair_torn_tail(fd: int, path: str) -> None:
    """Cut a last line left without its newline by a process killed mid-write."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    chunk = 1 << 16
    end = size
    while end > 0:
        start = max(0, end - chunk)
        block = os.pread(fd, end - start, start)
        newline = block.rfind(b"\n")
        if newline >= 0:
            keep = start + newline + 1
            break
        end = start
    else:
        keep = 0
    os.ftruncate(fd, keep)
    _logger.warning(
        "agenttrace: %s ended in a torn line (%d bytes) from an interrupted write; removed it",
        path,
        size - keep,
    )


class JsonlWriter:
    """Appends rows to a JSONL file, one whole line per `write`, flushed to the OS at once."""

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        read_fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        try:
            _repair_torn_tail(read_fd, str(self.path))
        finally:
            os.close(read_fd)

    def write_row(self, row: dict[str, Any]) -> None:
        self.write_line(encode_row(row))

    def write_line(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        if self._fsync:
            os.fsync(self._fd)

    def flush(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def row_to_record(row: dict[str, Any], raw_file: str) -> dict[str, Any]:
    """The Parquet (Hugging Face) view of a row."""
    metadata = row.get("metadata") or {}
    task_id = metadata.get("task_id")
    return {
        "trace_id": row.get("trace_id"),
        "timestamp_utc": row.get("timestamp_utc"),
        "prompt": row.get("prompt"),
        "model": row.get("model"),
        "dataset_name": metadata.get("dataset_name"),
        "task_id": task_id if isinstance(task_id, int) and not isinstance(task_id, bool) else None,
        "run_id": metadata.get("run_id"),
        "total_duration_ms": row.get("total_duration_ms"),
        "tool_span_count": len(row.get("spans") or []),
        "llm_step_count": len(row.get("llm_steps") or []),
        "spans_json": _json.dumps(row.get("spans") or []),
        "llm_steps_json": _json.dumps(row.get("llm_steps") or []),
        "metadata_json": _json.dumps(metadata),
        "raw_file": raw_file,
    }


def record_to_row(record: dict[str, Any]) -> dict[str, Any]:
    """A row (schema 0.3.0 key order) back from its Parquet record."""
    return {
        "trace_id": record["trace_id"],
        "timestamp_utc": record["timestamp_utc"],
        "prompt": record["prompt"],
        "model": record["model"],
        "spans": _json.loads(record["spans_json"]),
        "llm_steps": _json.loads(record["llm_steps_json"]),
        "total_duration_ms": record["total_duration_ms"],
        "metadata": _json.loads(record["metadata_json"]),
    }


def parquet_schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("trace_id", pa.string()),
            ("timestamp_utc", pa.string()),
            ("prompt", pa.string()),
            ("model", pa.string()),
            ("dataset_name", pa.string()),
            ("task_id", pa.int64()),
            ("run_id", pa.string()),
            ("total_duration_ms", pa.float64()),
            ("tool_span_count", pa.int64()),
            ("llm_step_count", pa.int64()),
            ("spans_json", pa.string()),
            ("llm_steps_json", pa.string()),
            ("metadata_json", pa.string()),
            ("raw_file", pa.string()),
        ]
    )


def partial_path(path: Path) -> Path:
    """Where a Parquet file is written until it is complete."""
    return path.with_name(f".{path.name}.partial")


class ParquetWriter:
    """Writes rows to Parquet in row groups; the file appears, valid, only when closed."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        raw_file: str = "",
        row_group_size: int = 1000,
        row_group_bytes: int = 16 << 20,
    ) -> None:
        import pyarrow.parquet as pq

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._partial = partial_path(self.path)
        self._raw_file = raw_file
        self._row_group_size = row_group_size
        self._row_group_bytes = row_group_bytes  # bounds memory, whatever the row size
        self._pending_bytes = 0
        self._records: list[dict[str, Any]] = []
        self._schema = parquet_schema()
        self._writer = pq.ParquetWriter(self._partial, self._schema, compression="zstd")
        self.rows = 0

    def write_row(self, row: dict[str, Any]) -> None:
        record = row_to_record(row, self._raw_file)
        self._records.append(record)
        self._pending_bytes += (
            len(record["spans_json"]) + len(record["llm_steps_json"]) + len(record["prompt"] or "")
        )
        if (
            len(self._records) >= self._row_group_size
            or self._pending_bytes >= self._row_group_bytes
        ):
            self._write_group()

    def _write_group(self) -> None:
        import pyarrow as pa

        if not self._records:
            return
        columns = {name: [record[name] for record in self._records] for name in self._schema.names}
        table = pa.Table.from_pydict(columns, schema=self._schema)
        self._writer.write_table(table)
        self.rows += len(self._records)
        self._records = []
        self._pending_bytes = 0

    def flush(self) -> None:
        self._write_group()

    def close(self) -> None:
        """Write what is left, finish the file and move it into place."""
        if self._writer is None:
            return
        self._write_group()
        self._writer.close()
        self._writer = None
        os.replace(self._partial, self.path)

    def abort(self) -> None:
        """Give up: remove the partial file (nothing appears at `path`)."""
        if self._writer is not None:
            try:
                self._writer.close()
            finally:
                self._writer = None
        self._partial.unlink(missing_ok=True)


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
    import pyarrow.parquet as pq

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


def convert(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Stream `source` (JSONL or Parquet) into `target` (JSONL or Parquet); returns the row count.

    Nothing appears at `target` unless the whole conversion succeeds: rows go to a hidden partial
    file that is renamed into place at the end and removed on failure.
    """
    source, target = Path(source), Path(target)
    suffix = target.suffix.lower()
    if suffix not in PARQUET_SUFFIXES + JSONL_SUFFIXES:
        raise AgentTraceFileError(target, "file", "unknown file type: use .jsonl or .parquet")
    count = 0
    if suffix in PARQUET_SUFFIXES:
        writer = ParquetWriter(target, raw_file=source.name)
        try:
            for _, row in iter_rows(source, progress=progress):
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
            for _, row in iter_rows(source, progress=progress):
                out.write(encode_row(row))
                count += 1
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return count


def validate_file(
    path: str | os.PathLike[str],
    *,
    strict: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Iterator[Violation]:
    """Every schema violation in a JSONL or Parquet file, each naming the file and line or row.

    Unlike the readers, it goes on past a malformed line, so one pass reports all of them.
    """
    source = os.fspath(path)
    suffix = Path(path).suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        rows: Iterator[tuple[int, dict[str, Any] | AgentTraceFileError]] = _parquet_or_error(
            path, progress
        )
    elif suffix in JSONL_SUFFIXES:
        rows = _lines_or_errors(path, progress)
    else:
        yield Violation("file", "unknown file type: use .jsonl or .parquet", source)
        return
    for number, row in rows:
        if isinstance(row, AgentTraceFileError):
            yield Violation(row.where, row.message, source, number or None)
            continue
        for violation in validate_row(row, strict=strict):
            yield Violation(violation.field, violation.message, source, number)


def _lines_or_errors(
    path: str | os.PathLike[str], progress: Callable[[int], None] | None
) -> Iterator[tuple[int, dict[str, Any] | AgentTraceFileError]]:
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if progress is not None:
                progress(len(raw))
            if not raw.strip():
                continue
            try:
                row = _parse_line(path, number, raw)[1]
            except AgentTraceFileError as error:
                message = (
                    error.message if raw.endswith(b"\n") else "torn last line (interrupted write)"
                )
                yield number, AgentTraceFileError(path, "line", message)
                continue
            yield number, row


def _parquet_or_error(
    path: str | os.PathLike[str], progress: Callable[[int], None] | None
) -> Iterator[tuple[int, dict[str, Any] | AgentTraceFileError]]:
    try:
        yield from iter_parquet(path, progress=progress)
    except AgentTraceFileError as error:
        yield 0, error
