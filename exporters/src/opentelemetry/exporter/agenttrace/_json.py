"""JSON encoding and decoding for rows: orjson when it is installed, the standard library else.

Rows are written, read and re-encoded (the Parquet view keeps the nested parts as JSON text) at
volumes where the standard library's encoder is the bottleneck; orjson is several times faster.

Encoding never fails and always gives strict JSON in valid UTF-8, the kind pandas, Hugging Face
`datasets` (Arrow's JSON reader) and our own readers all load, whatever a row holds. A value the
fast path refuses takes a slower path that makes it safe first, by these rules:

* NaN and +/-Infinity become `null` (what orjson itself writes for them, so both paths agree);
* a lone surrogate (say from `surrogateescape`-decoded bytes) becomes the text of its `\\u`
  escape, `"caf\\udce9"` -> `caf\\\\udce9`, as the instrumentation renders them;
* an integer beyond 64 bits (which pandas rejects) becomes its decimal text;
* tuples and sets become arrays; mapping keys become text (`1` -> `"1"`, `None` -> `"null"`);
* any other object becomes its `repr`; a cycle becomes `"<cycle>"`, and nesting deeper than
  `MAX_DEPTH` becomes `"<too deep>"`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

try:
    import orjson
except ImportError:  # the `fast` extra: without it the standard library writes the same JSON
    # Callers test `orjson is not None`; the checker knows only the module type, so it objects.
    orjson = None  # type: ignore[assignment]

#: Containers nested deeper than this are cut (orjson's own limit is 254).
MAX_DEPTH = 200
_INT_MIN = -(1 << 63)
_INT_MAX = (1 << 64) - 1  # orjson and pandas both take unsigned 64-bit integers
_CYCLE = "<cycle>"
_TOO_DEEP = "<too deep>"

_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def dumps_bytes(value: Any) -> bytes:
    """Strict UTF-8 JSON for a row or part of one; never raises."""
    if orjson is not None:
        try:
            return orjson.dumps(value)
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            pass
    else:  # pragma: no cover - exercised only without orjson
        try:
            return _ENCODER.encode(value).encode("utf-8")
        except (TypeError, ValueError, UnicodeError, RecursionError):
            pass
    return _encode_safe(json_safe(value))


def _encode_safe(value: Any) -> bytes:
    if orjson is not None:
        return orjson.dumps(value)
    return _ENCODER.encode(value).encode("utf-8")  # pragma: no cover


def dumps(value: Any) -> str:
    """JSON text for a row or part of one; never raises."""
    return dumps_bytes(value).decode("utf-8")


def loads(data: bytes | str) -> Any:
    """Parse JSON text or bytes (raises ValueError on malformed input)."""
    if orjson is not None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # the standard library is more lenient (e.g. NaN) and words its errors better
    return json.loads(data)


def utf8_text(text: str) -> str:
    """`text` with any lone surrogate written as its `\\u` escape, so it encodes as UTF-8."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def json_safe(value: Any, depth: int = 0, parents: frozenset[int] = frozenset()) -> Any:
    """A copy of `value` made only of JSON types that strict encoders accept (module rules)."""
    if value is None or value is True or value is False:
        return value
    # The base types' own conversions: a subclass's overrides could raise or lie.
    if isinstance(value, str):
        return utf8_text(str.__str__(value))
    if isinstance(value, int):
        number = int.__int__(value)
        return number if _INT_MIN <= number <= _INT_MAX else str(number)
    if isinstance(value, float):
        real = float.__float__(value)
        return real if math.isfinite(real) else None
    if not isinstance(value, (Mapping, list, tuple, set, frozenset)):
        return _object_text(value)
    if id(value) in parents:
        return _CYCLE
    if depth >= MAX_DEPTH:
        return _TOO_DEEP
    parents = parents | {id(value)}
    try:
        if isinstance(value, Mapping):
            return {
                _key_text(key): json_safe(item, depth + 1, parents) for key, item in value.items()
            }
        return [json_safe(item, depth + 1, parents) for item in value]
    except Exception:  # a mapping whose items() raises, a dict changed while being read
        return _object_text(value)


def _key_text(key: Any) -> str:
    if isinstance(key, str):
        return utf8_text(str(key))
    if key is None or isinstance(key, (bool, int, float)):
        return utf8_text(json.dumps(key))  # 1 -> "1", None -> "null", NaN -> "NaN"
    return _object_text(key)


def _object_text(value: Any) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # a __repr__ that raises must not cost the row
        text = f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"
    return utf8_text(text)
