"""The Parquet (Hugging Face) view of a row: its columns, and pyarrow, which is optional."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import sys
import threading
from array import array
from typing import Any, TypeGuard

from opentelemetry.exporter.agenttrace import _json

_logger = logging.getLogger(__name__)


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


_importing: threading.Thread | None = None


def import_pyarrow_in_background() -> None:
    """Start importing pyarrow's Parquet support (a quarter of a second) in a daemon thread,
    once, so that a twin opened later finds it loaded instead of stalling the agent for it.

    A fork waits for the import to end (`os.register_at_fork`): a child must not inherit an
    import half done by a thread it does not have.
    """
    global _importing
    if _importing is not None or "pyarrow.parquet" in sys.modules or not parquet_available():
        return

    def load() -> None:
        with contextlib.suppress(Exception):  # the twin says what is wrong when it opens
            require_pyarrow_parquet()

    _importing = threading.Thread(target=load, name="agenttrace-pyarrow-import", daemon=True)
    _importing.start()


def _join_import_before_fork() -> None:
    thread = _importing
    if thread is not None and thread.is_alive() and thread is not threading.current_thread():
        thread.join()


os.register_at_fork(before=_join_import_before_fork)


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


def arrow_table(records: list[dict[str, Any]], schema: Any) -> Any:
    """`records` as an Arrow table of `schema`, its arrays laid out here from raw buffers.

    pyarrow's conversion of Python lists (`pa.array`, `Table.from_pydict`) imports pandas, when
    it is installed, on its first call (to recognise pandas objects): about 0.9 s, paid by
    whoever writes the first row group, usually the exit sequence finishing the Parquet twin.
    The twin's columns are strings, 64-bit integers and floats, whose Arrow layout is simple, so
    they are built without that detour. A value of the wrong type raises (TypeError, ValueError,
    UnicodeEncodeError), as pyarrow would, for the caller's fallback to deal with.
    """
    pa = require_pyarrow()
    if sys.byteorder != "little":  # Arrow buffers are little-endian; array() is native
        columns = {name: [record[name] for record in records] for name in schema.names}
        return pa.Table.from_pydict(columns, schema=schema)
    arrays = [
        _arrow_array(pa, field.type, [record[field.name] for record in records]) for field in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def _arrow_array(pa: Any, kind: Any, values: list[Any]) -> Any:
    count = len(values)
    validity = bytearray((count + 7) // 8)
    nulls = 0
    if kind == pa.string():
        offsets = array("i", [0])
        data = bytearray()
        for index, value in enumerate(values):
            if value is None:
                nulls += 1
            elif type(value) is str:
                validity[index >> 3] |= 1 << (index & 7)
                data += value.encode("utf-8")  # a lone surrogate raises, as in pyarrow
            else:
                raise TypeError(f"expected str, got {type(value).__name__}")
            offsets.append(len(data))  # past 2 GiB array() raises OverflowError
        buffers = [pa.py_buffer(offsets.tobytes()), pa.py_buffer(bytes(data))]
    elif kind in (pa.int64(), pa.float64()):
        typecode, cast = ("q", int) if kind == pa.int64() else ("d", float)
        numbers: array[Any] = array(typecode)
        for index, value in enumerate(values):
            if value is None:
                nulls += 1
                numbers.append(0)
            elif isinstance(value, (int, float)) and (cast is float or type(value) is not float):
                validity[index >> 3] |= 1 << (index & 7)
                numbers.append(cast(value))
            else:
                raise TypeError(f"expected {cast.__name__}, got {type(value).__name__}")
        buffers = [pa.py_buffer(numbers.tobytes())]
    else:
        return pa.array(values, type=kind)
    bitmap = pa.py_buffer(bytes(validity)) if nulls else None
    return pa.Array.from_buffers(kind, count, [bitmap, *buffers], null_count=nulls)
