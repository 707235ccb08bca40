"""Turning arbitrary Python values into safe, redacted, bounded span attribute strings.

Every value a decorator records goes through `Renderer`: serialise (never raising), redact, then
bound. The order matters: redaction runs on the whole text before it is cut, so a secret that
straddles the cut is still caught, and the bound is applied last so the limit holds for what the
exporter finally sees. Span attributes only take primitives, so structured values become JSON text;
a JSON value that is too long stays valid JSON (long strings inside it are shortened, each with a
marker naming its original length).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Any

from agenttrace._redaction import Redactor

_MARKER = "…[agenttrace: truncated, original length {n} chars]"
_MIN_LEAF = 16  # shortest a string inside a JSON value is cut to before giving up on the structure


def _json_default(value: Any) -> Any:
    """Fallback for `json.dumps`: a faithful-enough rendering of anything JSON lacks."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return f"<{len(raw)} bytes: {raw[:64]!r}>"
    if isinstance(value, (set, frozenset)):
        items = list(value)
        try:
            return sorted(items)
        except TypeError:
            return items
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
    for method in ("model_dump", "to_dict", "_asdict"):  # pydantic v2, many SDK objects, namedtuple
        dump = getattr(value, method, None)
        if callable(dump):
            try:
                return dump()
            except Exception:
                break
    return _safe_repr(value)


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception as exc:  # a __repr__ that raises must not reach the user
        return f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"


def _sanitise(value: Any, seen: set[int]) -> Any:
    """Slow path: replace cycles and non-finite floats so the value serialises as strict JSON."""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, (dict, list, tuple, set, frozenset)) or hasattr(value, "__dict__"):
        marker = id(value)
        if marker in seen:
            return "<cycle>"
        seen = seen | {marker}
    if isinstance(value, Mapping):
        return {str(key): _sanitise(item, seen) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_sanitise(item, seen) for item in value]
    try:
        converted = _json_default(value)
    except Exception:
        converted = _safe_repr(value)
    if isinstance(converted, str) or converted is value:
        return converted
    return _sanitise(converted, seen)


# One encoder for the fast path: `json.dumps` with non-default options builds a new encoder on every
# call, which costs more than the encoding of a typical tool argument.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, default=_json_default)


def to_json(value: Any) -> str:
    """Strict JSON text for any value; never raises."""
    try:
        return _ENCODER.encode(value)
    except Exception:  # noqa: BLE001 - any failure of user objects' hooks falls to the slow path
        pass
    try:
        return json.dumps(
            _sanitise(value, set()), ensure_ascii=False, allow_nan=False, default=_safe_repr
        )
    except Exception as exc:
        return json.dumps(f"<unserialisable {type(value).__name__}: {type(exc).__name__}>")


def to_text(value: Any) -> str:
    """Text of a value: strings as they are, everything else as JSON."""
    return value if isinstance(value, str) else to_json(value)


def to_repr(value: Any) -> str:
    """`repr`, never raising (the release's `tool_input` form is Python repr)."""
    return _safe_repr(value)


def truncate_text(text: str, limit: int) -> str:
    """Cut `text` to `limit` characters plus a marker that records the original length."""
    if len(text) <= limit:
        return text
    return text[:limit] + _MARKER.format(n=len(text))


def _shorten_leaves(value: Any, leaf_limit: int) -> Any:
    if isinstance(value, str):
        return truncate_text(value, leaf_limit)
    if isinstance(value, dict):
        return {key: _shorten_leaves(item, leaf_limit) for key, item in value.items()}
    if isinstance(value, list):
        return [_shorten_leaves(item, leaf_limit) for item in value]
    return value


def truncate_json(text: str, limit: int) -> str:
    """Bound JSON text to about `limit` characters and keep it valid JSON.

    Long strings inside the value are shortened first (the shape a reader expects survives); if
    the structure alone is too big, the whole value becomes an object saying so, with a prefix.
    """
    if len(text) <= limit:
        return text
    try:
        value = json.loads(text)
        if isinstance(value, str):
            return json.dumps(truncate_text(value, limit), ensure_ascii=False)
        leaf_limit = limit // 2
        while leaf_limit >= _MIN_LEAF:
            shortened = json.dumps(_shorten_leaves(value, leaf_limit), ensure_ascii=False)
            if len(shortened) <= limit + len(_MARKER) + 16:
                return shortened
            leaf_limit //= 2
    except (ValueError, RecursionError):  # not JSON after all, or nested too deep to walk
        pass
    # The structure alone is too big: say so, with as much of the text as fits once escaped.
    keep = max(limit - 128, 0)
    while True:
        wrapped = json.dumps(
            {"agenttrace.truncated": True, "original_length": len(text), "prefix": text[:keep]},
            ensure_ascii=False,
        )
        if len(wrapped) <= limit or keep == 0:
            return wrapped
        keep = keep // 2


def _without_surrogates(text: str) -> str:
    """Lone surrogates (from `surrogateescape`-decoded bytes) as escapes: exporters need UTF-8."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


class Renderer:
    """Serialise, redact and bound values for span attributes, with one configuration."""

    __slots__ = ("limit", "redactor")

    def __init__(self, limit: int, redactor: Redactor | None) -> None:
        self.limit = limit
        self.redactor = redactor

    def text(self, key: str, value: Any) -> str:
        """A plain-text attribute (tool output, prompt, model text)."""
        text = to_text(value)
        if self.redactor is not None:
            text = self.redactor(key, text)
        return truncate_text(_without_surrogates(text), self.limit)

    def json(self, key: str, value: Any) -> str:
        """A JSON attribute (arguments, messages): valid JSON however long the value."""
        text = to_json(value)
        if self.redactor is not None:
            text = self.redactor(key, text)
        return truncate_json(_without_surrogates(text), self.limit)

    def repr(self, key: str, text: str) -> str:
        """An already-built repr string (the release's `kwargs={...}` tool input)."""
        if self.redactor is not None:
            text = self.redactor(key, text)
        return truncate_text(_without_surrogates(text), self.limit)
