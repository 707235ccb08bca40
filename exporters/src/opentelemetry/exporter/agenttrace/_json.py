"""JSON encoding and decoding for rows: orjson when it is installed, the standard library else.

Rows are written, read and re-encoded (the Parquet view keeps the nested parts as JSON text) at
volumes where the standard library's encoder is the bottleneck; orjson is several times faster.
Both produce standard JSON; orjson's is compact (no spaces after separators). Values orjson
refuses (integers beyond 64 bits, lone surrogates) fall back to the standard library, which
writes surrogates as `\\u` escapes so the text is still valid UTF-8 JSON.
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency, but stay usable without it
    orjson = None  # type: ignore[assignment]

_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_ASCII_ENCODER = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(",", ":"))


def _stdlib_bytes(value: Any) -> bytes:
    try:
        return _ENCODER.encode(value).encode("utf-8")
    except UnicodeEncodeError:
        return _ASCII_ENCODER.encode(value).encode("ascii")


def dumps_bytes(value: Any) -> bytes:
    """UTF-8 JSON for a row or part of one."""
    if orjson is not None:
        try:
            return orjson.dumps(value)
        except (TypeError, orjson.JSONEncodeError):
            pass
    return _stdlib_bytes(value)


def dumps(value: Any) -> str:
    """JSON text for a row or part of one."""
    return dumps_bytes(value).decode("utf-8")


def loads(data: bytes | str) -> Any:
    """Parse JSON text or bytes (raises ValueError on malformed input)."""
    if orjson is not None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # the standard library is more lenient (e.g. NaN) and words its errors better
    return json.loads(data)
