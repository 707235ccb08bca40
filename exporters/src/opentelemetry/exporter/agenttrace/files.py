"""AgentTrace files: JSONL and Parquet writers and streaming readers.

JSONL is the durable format: each row is encoded whole and appended with a single `write` on a
file opened `O_APPEND`, so once `write_row` returns the line is in the OS, and a process killed
afterwards loses nothing. Writers hold the file's `flock` while they append, so several writers
(threads or processes) can share one file: a row that does not fit (disk full, file-size limit)
is cut back off before anyone else writes, so the file always ends with a whole line. Opening
the file for appending cuts a last line torn by a process killed *during* a write, and completes
a last row that merely lacks its newline; it never removes a line that parses.

Parquet is the Hugging Face view: one row per trace with flat columns plus the JSON of the nested
parts. Each writer writes its row groups to its own hidden, locked `.partial` file and renames it
into place when closed, so the Parquet file is either absent or valid (the JSONL beside it has
every row; `agenttrace convert` rebuilds the Parquet from it). Partial files left by dead
processes are removed when the output is next opened.
"""

from __future__ import annotations

import errno
import fcntl
import importlib.util
import logging
import os
import re
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeGuard

from opentelemetry.exporter.agenttrace import _json
from opentelemetry.exporter.agenttrace.schema import (
    PARQUET_COLUMNS,
    PROFILE_DEFAULT,
    PROFILES,
    Violation,
    validate_row,
)

_logger = logging.getLogger(__name__)

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
PARQUET_SUFFIXES = (".parquet", ".pq")


#: How to get Parquet support, named in every error about it.
PARQUET_EXTRA_HINT = (
    "install the 'parquet' extra: pip install 'opentelemetry-exporter-agenttrace[parquet]'"
)


def parquet_available() -> bool:
    """Whether pyarrow can be imported, without importing it (it is a large, optional import)."""
    try:
        return importlib.util.find_spec("pyarrow") is not None
    except (ImportError, ValueError):
        return False


def require_pyarrow() -> Any:
    """pyarrow, or an ImportError that says how to get it: only Parquet needs it."""
    try:
        import pyarrow
    except ImportError as exc:
        raise ImportError(f"AgentTrace Parquet files need pyarrow: {PARQUET_EXTRA_HINT}") from exc
    return pyarrow


def require_pyarrow_parquet() -> Any:
    """pyarrow.parquet, or an ImportError that says how to get it."""
    require_pyarrow()
    import pyarrow.parquet

    return pyarrow.parquet


class AgentTraceFileError(ValueError):
    """A file that is not valid AgentTrace data, located by file and line or row."""

    def __init__(self, path: str | os.PathLike[str], where: str, message: str) -> None:
        self.path = os.fspath(path)
        self.where = where
        self.message = message
        super().__init__(f"{self.path}:{where}: {message}")


class RowWriteError(OSError):
    """A row that could not be appended (disk full, file-size limit): none of it is in the file."""

    def __init__(self, path: str | os.PathLike[str], message: str, code: int | None = None) -> None:
        super().__init__(code or errno.EIO, message, os.fspath(path))


def encode_row(row: dict[str, Any]) -> bytes:
    """One JSONL line (strict JSON, UTF-8, newline-terminated) for a row; never raises."""
    return _json.dumps_bytes(row) + b"\n"


@contextmanager
def _flocked(fd: int, mode: int = fcntl.LOCK_EX) -> Iterator[None]:
    try:  # taken inside: an exception raised by a signal handler right after still unlocks
        fcntl.flock(fd, mode)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _last_line_start(fd: int, size: int) -> int:
    """Offset just past the last newline before `size` (0 when there is none)."""
    chunk = 1 << 16
    end = size
    while end > 0:
        start = max(0, end - chunk)
        newline = os.pread(fd, end - start, start).rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        end = start
    return 0


def _parses(text: bytes) -> bool:
    if not text.strip():
        return False
    try:
        _json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return False
    return True


def _repair_tail(fd: int, path: str) -> None:
    """Make the file end with a whole line; call with the file's lock held.

    A last line without its newline is either a write torn by a killed process (it does not
    parse: cut it) or a whole row whose newline is missing, say from another tool (it parses:
    complete it). A line that parses is never removed.
    """
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    start = _last_line_start(fd, size)
    if _parses(os.pread(fd, size - start, start)):
        if os.write(fd, b"\n") != 1:
            raise RowWriteError(path, "could not end the last line with a newline")
        _logger.warning("agenttrace: %s: the last line lacked its newline; added it", path)
        return
    os.ftruncate(fd, start)
    _logger.warning(
        "agenttrace: %s ended in a torn line (%d bytes) from an interrupted write; removed it",
        path,
        size - start,
    )


class JsonlWriter:
    """Appends rows to a JSONL file, one whole line per `write`, flushed to the OS at once.

    Counts what it did: `rows` and `bytes_written` for the lines it appended, `dropped_rows` for
    rows that did not fit (each raised `RowWriteError` and left nothing behind). `opened_size`
    is the file's size once repaired at open.
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync
        self.rows = 0
        self.bytes_written = 0
        self.dropped_rows = 0
        self._fd = self._open()
        self._torn = False  # the file may end in a torn line that could not be cut yet
        with self.locked():
            self._repair()
            self.opened_size = os.fstat(self._fd).st_size
        _OPEN_WRITERS.add(self)

    def _open(self) -> int:
        # Read access too: the repair reads the last line back.
        return os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the file's writer lock: no writer appends or repairs meanwhile."""
        with _flocked(self._fd):
            yield

    def size(self) -> int:
        return os.fstat(self._fd).st_size

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def _repair(self) -> None:
        try:
            _repair_tail(self._fd, str(self.path))
            self._torn = False
        except OSError:
            self._torn = True
            _logger.exception("agenttrace: could not repair the end of %s", self.path)

    def write_row(self, row: dict[str, Any]) -> None:
        self.write_line(encode_row(row))

    def write_line(self, data: bytes) -> None:
        """Append one whole line or nothing at all (then raise `RowWriteError`)."""
        fd = self._fd
        try:  # `_flocked` inline: this is the per-row path
            fcntl.flock(fd, fcntl.LOCK_EX)
            if self._torn:
                self._repair()
                if self._torn:
                    self.dropped_rows += 1
                    raise RowWriteError(self.path, "the file ends in a torn line; row not written")
            self._append(fd, data)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
        if self._fsync:
            os.fsync(fd)

    def _append(self, fd: int, data: bytes) -> None:
        try:
            written = os.write(fd, data)
        except OSError as exc:
            self.dropped_rows += 1
            raise RowWriteError(
                self.path, f"row not written ({len(data)} bytes): {exc.strerror}", exc.errno
            ) from exc
        if written == len(data):
            self.rows += 1
            self.bytes_written += written
            return
        # A short write: no room for the rest. Writing the rest later would not be atomic, so
        # the line is taken back whole; the lock guarantees nobody appended after it.
        self.dropped_rows += 1
        self._roll_back(fd, data, written)
        raise RowWriteError(
            self.path,
            f"row not written: only {written} of {len(data)} bytes fit (disk full or file size "
            "limit); the partial line was removed",
            errno.ENOSPC,
        )

    def _roll_back(self, fd: int, data: bytes, written: int) -> None:
        try:
            start = os.fstat(fd).st_size - written
            if start >= 0 and os.pread(fd, written, start) == data[:written]:
                os.ftruncate(fd, start)
                return
            _logger.error(
                "agenttrace: %s: a row was cut short and another writer appended after it "
                "without the lock; the torn line stays",
                self.path,
            )
        except OSError:
            self._torn = True  # cut at the next write, before anything is appended
            _logger.exception("agenttrace: could not remove a partial line from %s", self.path)

    def flush(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _reopen_after_fork(self) -> None:
        """In a forked child: an own open file, so the lock excludes the parent too."""
        if self._fd < 0:
            return
        inherited, self._fd = self._fd, self._open()
        os.close(inherited)


def row_to_record(row: dict[str, Any], raw_file: str) -> dict[str, Any]:
    """The Parquet (Hugging Face) view of a row; any row gives a record of the column types.

    A value of the wrong type becomes one of the right type: text columns take other values as
    their JSON and lone surrogates as the text of their escapes; a number that does not fit is
    left out (None).
    """
    return _typed_record(_record(row, raw_file))


def _record(row: dict[str, Any], raw_file: str) -> dict[str, Any]:
    """`row_to_record` without its type checks: what Arrow refuses is fixed only then."""
    metadata = row.get("metadata") or {}
    fields = metadata if isinstance(metadata, dict) else {}
    task_id = fields.get("task_id")
    spans = row.get("spans") or []
    steps = row.get("llm_steps") or []
    return {
        "trace_id": row.get("trace_id"),
        "timestamp_utc": row.get("timestamp_utc"),
        "prompt": row.get("prompt"),
        "model": row.get("model"),
        "dataset_name": fields.get("dataset_name"),
        "task_id": task_id if isinstance(task_id, int) and not isinstance(task_id, bool) else None,
        "run_id": fields.get("run_id"),
        "total_duration_ms": row.get("total_duration_ms"),
        "tool_span_count": len(spans) if isinstance(spans, list) else 0,
        "llm_step_count": len(steps) if isinstance(steps, list) else 0,
        "spans_json": _json.dumps(spans),
        "llm_steps_json": _json.dumps(steps),
        "metadata_json": _json.dumps(metadata),
        "raw_file": raw_file,
    }


_INT_COLUMNS = frozenset({"task_id", "tool_span_count", "llm_step_count"})
_FLOAT_COLUMNS = frozenset({"total_duration_ms"})


def _typed_record(record: dict[str, Any]) -> dict[str, Any]:
    typed: dict[str, Any] = {}
    for name, value in record.items():
        if name in _INT_COLUMNS:
            typed[name] = value if _is_int64(value) else None
        elif name in _FLOAT_COLUMNS:
            typed[name] = _column_number(value)
        else:
            typed[name] = _column_text(value)
    return typed


def _column_text(value: Any) -> str | None:
    if value is None:
        return None
    return _json.utf8_text(str.__str__(value)) if isinstance(value, str) else _json.dumps(value)


def _column_number(value: Any) -> float | int | None:
    if isinstance(value, float) or _is_int64(value):
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    try:
        return float(value)
    except OverflowError:  # an integer beyond any float
        return None


def _is_int64(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and -(1 << 63) <= value < 1 << 63


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
    pa = require_pyarrow()

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


#: Parquet key-value metadata: how many bytes of its JSONL file a Parquet twin mirrors.
MIRRORED_BYTES_KEY = "agenttrace.jsonl_bytes"
_PARTIAL_SUFFIX = ".partial"
_PARTIAL_TAG = r"\d+(?:-\d+)?"  # the pid, then a number if the process has several


def partial_path(path: Path, number: int = 0) -> Path:
    """Where this process writes `path` until it is complete (`number` tells writers apart)."""
    tag = f"{os.getpid()}-{number}" if number else str(os.getpid())
    return path.with_name(f".{path.name}.{tag}{_PARTIAL_SUFFIX}")


def _partials(path: Path) -> Iterator[Path]:
    """Every writer's partial file for `path`, live or left behind."""
    name = re.compile(re.escape(f".{path.name}.") + _PARTIAL_TAG + re.escape(_PARTIAL_SUFFIX))
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return
    for entry in entries:
        if name.fullmatch(entry.name):
            yield Path(entry.path)


def _is_linked_at(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except OSError:
        return False


def _claim_partial(path: Path) -> tuple[Path, int]:
    """A new partial file for `path` and its lock, held exclusively from creation to rename.

    The lock tells live writers from dead ones: a partial nobody holds is left by a dead process.
    """
    for number in range(10_000):
        candidate = partial_path(path, number)
        try:
            fd = os.open(candidate, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _is_linked_at(fd, candidate):  # not removed as stale before we could lock it
                return candidate, fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    raise FileExistsError(errno.EEXIST, "no free partial file name", str(partial_path(path)))


def _lock_held(path: Path, mode: int) -> bool:
    """Whether another open file holds a lock on `path` that conflicts with `mode`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:  # gone meanwhile
        return False
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also releases the lock just taken
    return False


def remove_stale_partials(path: str | os.PathLike[str]) -> int:
    """Remove the partial files of `path` that no live writer holds; returns how many."""
    removed = 0
    for partial in _partials(Path(path)):
        try:
            fd = os.open(partial, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _is_linked_at(fd, partial):
                partial.unlink()
                removed += 1
        except OSError:  # BlockingIOError: a live writer's
            continue
        finally:
            os.close(fd)
    if removed:
        _logger.info(
            "agenttrace: removed %d partial file(s) of %s left by dead processes", removed, path
        )
    return removed


def live_writers(path: str | os.PathLike[str]) -> int:
    """How many `ParquetWriter`s of `path`, in any process, are still taking rows."""
    return sum(_lock_held(partial, fcntl.LOCK_SH) for partial in _partials(Path(path)))


def mirrored_bytes(path: str | os.PathLike[str]) -> int:
    """How many bytes of its JSONL file the Parquet file at `path` mirrors (-1: unknown)."""
    pq = require_pyarrow_parquet()

    try:
        metadata = pq.read_metadata(path).metadata or {}
        return int(metadata.get(MIRRORED_BYTES_KEY.encode(), b"-1"))
    except (OSError, ValueError, TypeError):
        return -1


def _concat_tables(tables: list[Any], schema: Any) -> Any:
    pa = require_pyarrow()

    return pa.concat_tables(tables) if tables else schema.empty_table()


class ParquetWriter:
    """Writes rows to Parquet in row groups; the file appears, valid, only when closed.

    Rows go to this writer's own partial file, locked while it lives. One bad value never costs
    the file: a row group Arrow refuses is built again with every value made of its column's
    type and every text valid UTF-8 (`row_to_record`), then row by row if it still fails
    (`lost_rows` counts rows left out even then).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        raw_file: str = "",
        row_group_size: int = 1000,
        row_group_bytes: int = 16 << 20,
    ) -> None:
        pa = require_pyarrow()
        pq = require_pyarrow_parquet()

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._raw_file = raw_file
        self._row_group_size = row_group_size
        self._row_group_bytes = row_group_bytes  # bounds memory, whatever the row size
        self._pending_bytes = 0
        self._records: list[dict[str, Any]] = []
        self._schema = parquet_schema()
        self.rows = 0
        self.lost_rows = 0
        self.owned = True  # False in a forked child: the partial file is the parent's
        self._partial, self._claim = _claim_partial(self.path)
        try:
            self._sink = pa.OSFile(str(self._partial), "wb")
            self._writer: Any = pq.ParquetWriter(self._sink, self._schema, compression="zstd")
        except BaseException:
            self._release(unlink=True)
            raise
        _OPEN_WRITERS.add(self)

    @property
    def partial(self) -> Path:
        return self._partial

    def write_row(self, row: dict[str, Any]) -> None:
        if self._writer is None:
            return
        record = _record(row, self._raw_file)
        self._records.append(record)
        prompt = record["prompt"]
        self._pending_bytes += (
            len(record["spans_json"])
            + len(record["llm_steps_json"])
            + (len(prompt) if isinstance(prompt, str) else 0)
        )
        if (
            len(self._records) >= self._row_group_size
            or self._pending_bytes >= self._row_group_bytes
        ):
            self._write_group()

    def _write_group(self) -> None:
        if not self._records or self._writer is None:
            return
        records, self._records, self._pending_bytes = self._records, [], 0
        table = self._table(records)
        try:
            self._writer.write_table(table)
        except BaseException:
            self.lost_rows += len(records)
            raise
        self.rows += table.num_rows

    def _table(self, records: list[dict[str, Any]]) -> Any:
        # Arrow raises many kinds of exception for a value it refuses: a lone surrogate, a value
        # of the wrong type. Then every value is made of its column's type, and failing that,
        # rows go one by one.
        try:
            return self._table_of(records)
        except Exception:
            records = [_typed_record(record) for record in records]
        try:
            return self._table_of(records)
        except Exception:
            pass
        tables = []
        for record in records:
            try:
                tables.append(self._table_of([record]))
            except Exception:
                self.lost_rows += 1
                _logger.exception("agenttrace: a row could not go to %s", self.path)
        return _concat_tables(tables, self._schema)

    def _table_of(self, records: list[dict[str, Any]]) -> Any:
        pa = require_pyarrow()

        columns = {name: [record[name] for record in records] for name in self._schema.names}
        return pa.Table.from_pydict(columns, schema=self._schema)

    def flush(self) -> None:
        self._write_group()

    def finish(self, mirrored: int | None = None) -> None:
        """Write what is left and complete the partial file, recording `mirrored` JSONL bytes."""
        if self._writer is None:
            return
        self._write_group()
        if mirrored is not None:
            self._writer.add_key_value_metadata({MIRRORED_BYTES_KEY: str(mirrored)})
        writer, self._writer = self._writer, None
        writer.close()
        self._sink.close()

    def install(self) -> None:
        """Move the finished partial file into place."""
        os.replace(self._partial, self.path)
        self._release(unlink=False)

    def close(self) -> None:
        """Write what is left, finish the file and move it into place."""
        if not self.owned or self._claim < 0:
            return
        self.finish()
        self.install()

    def abort(self) -> None:
        """Give up: remove the partial file (nothing appears at `path`)."""
        if not self.owned or self._claim < 0:
            return
        writer, self._writer = self._writer, None
        try:
            if writer is not None:
                writer.close()
                self._sink.close()
        finally:
            self._release(unlink=True)

    def stop_taking_rows(self) -> None:
        """Stop counting as a live writer (`live_writers`) while still holding the partial file."""
        if self.owned and self._claim >= 0:
            fcntl.flock(self._claim, fcntl.LOCK_SH)

    def _release(self, *, unlink: bool) -> None:
        if unlink:
            self._partial.unlink(missing_ok=True)
        if self._claim >= 0:
            os.close(self._claim)
            self._claim = -1

    def _disown_after_fork(self) -> None:
        """In a forked child: never write to the parent's partial file, not even a footer."""
        if not self.owned:
            return
        self.owned = False
        self._records = []
        if self._writer is not None:
            devnull = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
            # What the writer still writes (its footer, when collected) goes nowhere.
            os.dup2(devnull, self._sink.fileno(), inheritable=False)
            os.close(devnull)
            self._writer = None
        if self._claim >= 0:
            os.close(self._claim)  # the child's copy; the parent keeps its lock
            self._claim = -1


_OPEN_WRITERS: weakref.WeakSet[JsonlWriter | ParquetWriter] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for writer in list(_OPEN_WRITERS):
        try:
            if isinstance(writer, JsonlWriter):
                writer._reopen_after_fork()
            else:
                writer._disown_after_fork()
        except OSError:
            _logger.exception("agenttrace: preparing %s for a forked child failed", writer.path)


os.register_at_fork(after_in_child=_after_fork_in_child)


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


def validate_file(
    path: str | os.PathLike[str],
    *,
    strict: bool = False,
    profile: str = PROFILE_DEFAULT,
    progress: Callable[[int], None] | None = None,
) -> Iterator[Violation]:
    """Every schema violation in a JSONL or Parquet file, each naming the file and line or row.

    Unlike the readers, it goes on past a malformed line, so one pass reports all of them.
    `strict` and `profile` are `validate_row`'s.
    """
    if profile not in PROFILES:  # before reading anything: a typo is not a file problem
        raise ValueError(f"unknown validation profile {profile!r}: use one of {PROFILES}")
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
        for violation in validate_row(row, strict=strict, profile=profile):
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
