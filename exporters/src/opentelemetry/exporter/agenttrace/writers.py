"""Writing AgentTrace files: the JSONL file and its Parquet twin.

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
import logging
import os
import re
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from opentelemetry.exporter.agenttrace import _json
from opentelemetry.exporter.agenttrace._records import (
    _record,
    _typed_record,
    arrow_table,
    parquet_schema,
    require_pyarrow,
    require_pyarrow_parquet,
)

_logger = logging.getLogger(__name__)


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
        # The row group being written in the background, and what went wrong with the last one.
        self._group: threading.Thread | None = None
        self._failure: BaseException | None = None
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
        """Hand the rows gathered so far to a thread that builds and writes their row group.

        Building a row group (Arrow conversion, zstd) takes tens of milliseconds: the thread
        that ends the run due to fill one does not wait for it. One group at a time is in
        flight (memory stays at two groups); its failure is raised by the next call here.
        """
        if not self._records or self._writer is None:
            return
        records, self._records, self._pending_bytes = self._records, [], 0
        self._wait_for_group()
        group = threading.Thread(
            target=self._write_records, args=(records,), name="agenttrace-row-group", daemon=True
        )
        try:
            group.start()
        except RuntimeError:  # no new thread at interpreter shutdown: write the group here
            self._write_records(records)
            self._wait_for_group()
            return
        self._group = group

    def _write_records(self, records: list[dict[str, Any]]) -> None:
        writer = self._writer
        try:
            if writer is None:
                raise RuntimeError(f"{self.path} was closed while a row group was due")
            table = self._table(records)
            writer.write_table(table)
        except BaseException as exc:  # kept for the caller; the rows are counted as lost
            self.lost_rows += len(records)
            self._failure = exc
            return
        self.rows += table.num_rows

    def _wait_for_group(self, *, raise_failure: bool = True) -> None:
        """Wait for the row group in flight; raise what went wrong with it (once)."""
        group, self._group = self._group, None
        if group is not None:
            group.join()
        failure = self._failure
        if failure is not None and raise_failure:
            self._failure = None
            raise failure

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
        return arrow_table(records, self._schema)

    def flush(self) -> None:
        """Write the rows gathered so far as a row group, and wait until it is written."""
        self._write_group()
        self._wait_for_group()

    def finish(self, mirrored: int | None = None) -> None:
        """Write what is left and complete the partial file, recording `mirrored` JSONL bytes."""
        if self._writer is None:
            return
        self.flush()
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
        self._wait_for_group(raise_failure=False)  # the writer must not close under it
        writer, self._writer = self._writer, None
        try:
            if writer is not None:
                writer.close()
                self._sink.close()
        finally:
            self._release(unlink=True)

    def stop_taking_rows(self) -> None:
        """Stop counting as a live writer (`live_writers`) while still holding the partial file.

        The row group in flight is written first, so that `lost_rows` is final.
        """
        self._wait_for_group(raise_failure=False)
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
        self._group = None  # the parent's thread: not here
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
