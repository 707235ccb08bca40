"""Turning arbitrary Python values into safe, redacted, bounded span attribute strings.

Every value a decorator records goes through `Renderer`: render (never raising), redact, then
bound. Span attributes only take primitives, so structured values become JSON text; a JSON value
that is too long stays valid JSON, with a marker wherever something was left out: a long string
keeps its head and names its original length, a long container keeps its first items and says how
many more there were.

The cost of rendering is bounded by the output bound (`limit`), not by the value: the walk stops
once `limit` characters are spent, so a dict of a million keys costs what its first few thousand
do. Each user hook (`model_dump`, `to_dict`, `_asdict`, `__repr__`) runs at most once per object
visited, a hook whose result is not plain data is not followed (a `MagicMock` answers every hook
with another mock), nesting stops at `_MAX_DEPTH`, and iterators that are not containers are
never consumed. What a user hook itself costs (a `__repr__` that builds a huge string) is beyond
our reach; its result is cut like any other string.

Redaction must see a secret whole to catch it, and it runs on the rendered text. Where the walk
cuts a string before redaction, it keeps `_MARGIN` characters past the cut; once redaction has run,
those are dropped again (`_trim_cuts`). A secret straddling the cut is then either caught (it had
enough characters to match) or lies wholly within the dropped margin, so no readable part of it
leaks. Anything still too long after redaction is cut again (`_rewalk_json`): a cut after
redaction is safe anywhere.

Small plain values (the arguments of almost every tool call) skip the walk: a cheap check
(`_fits`) proves they fit, and the C encoder or the builtin `repr` writes them exactly as before.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import json.encoder
import math
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from itertools import islice
from typing import Any

from agenttrace._redaction import Redactor

_MARKER = "…[agenttrace: truncated, original length {n} chars]"
_BYTES_MARKER = "…[agenttrace: truncated, original length {n} bytes]"
_ITEMS_MARKER = "…[agenttrace: truncated, {n} more items]"
_SOME_ITEMS_MARKER = "…[agenttrace: truncated, more items]"
_MORE_KEY = "…"  # the key under which a cut JSON object names the entries it left out
_MIN_LEAF = 16  # shortest a string is cut to, however little room is left
_MAX_DEPTH = 64  # deeper nesting is replaced by `_TOO_DEEP`: no agent message nests this far
_TOO_DEEP = f"…[agenttrace: truncated, nested deeper than {_MAX_DEPTH} levels]"
_FAST_DEPTH = 16  # deeper values (and every cycle) take the walk, which writes the same text
# Characters kept past a cut until redaction has run: more than any redaction pattern needs to
# see of a secret to match it. Most need a few dozen; a JSON Web Token only matches whole (it must
# reach its signature) and runs to a few thousand. The margin costs O(1) per cut string.
_MARGIN = 4096
# How far a cut value may overrun `limit`: the last string's marker and its container's.
_SLACK = 2 * len(_MARKER) + 16
# Ints up to this many bits convert to decimal quickly (~600 digits, under the lowest limit CPython
# lets `sys.set_int_max_str_digits` set); beyond `_INT_BITS` (~4200 digits) they are described.
_SAFE_BITS = 2000
_INT_BITS = 14_000
_LOG10_2 = math.log10(2)
_INF = math.inf
_HOOKS = ("model_dump", "to_dict", "_asdict")  # pydantic v2, many SDK objects, namedtuple-likes
_PLAIN_RESULTS = (dict, list, tuple, str, int, float, type(None))
_CUT = re.compile(r"…\[agenttrace: truncated, original length \d+ (?:chars|bytes)\]")
_CUT_AT_END = re.compile(_CUT.pattern + r"\Z")
_CUT_START = "…[agenttrace: truncated, original length "
_ITEMS_START = "…[agenttrace: truncated, "
_ITEMS_COUNT = re.compile(r"…\[agenttrace: truncated, (\d+) more items\]")
_TRUNCATED = "…[agenttrace: truncated"
_ESCAPE_LENGTHS = {"x": 4, "u": 6, "U": 10}  # every other backslash escape is 2 characters


def json_native(value: Any, depth: int = 0) -> bool:
    """Whether `value` comes back from its JSON equal and with the same repr: dicts with str
    keys, lists, str, 64-bit int, bool, None and finite floats, of exactly those types (no
    tuples, subclasses or other objects), nested less than `_FAST_DEPTH` deep."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:  # beyond 64 bits, a fast JSON reader (orjson) gives back a float
        return bool(-(1 << 63) <= value < (1 << 63))
    if kind is float:
        return bool(-_INF < value < _INF)
    if depth >= _FAST_DEPTH:
        return False
    if kind is dict:
        return all(type(key) is str and json_native(item, depth + 1) for key, item in value.items())
    if kind is list:
        return all(json_native(item, depth + 1) for item in value)
    return False


def _fits(value: Any, room: int, depth: int = 0) -> int:
    """`room` less a lower bound of the JSON length of `value`; negative when it may not fit.

    Also negative for anything the C encoder cannot write as is (types other than plain dicts
    with str keys, lists, tuples, str, int, finite float, bool and None; nesting past
    `_FAST_DEPTH`, which includes every cycle). A value that passes is small and plain, so the C
    encoder renders it exactly as it always did, at full speed; the walk stops as soon as the
    bound is exceeded, so the check costs O(room) whatever the value.
    """
    kind = type(value)
    if kind is dict:  # first: tool arguments are a dict of (mostly) strings
        if depth >= _FAST_DEPTH:
            return -1
        room -= 2
        for key, item in value.items():
            if type(key) is not str:
                return -1
            if type(item) is str:
                room -= len(key) + len(item) + 6
            else:
                room = _fits(item, room - len(key) - 4, depth + 1)
            if room < 0:
                return -1
        return room
    if kind is str:
        return room - len(value) - 2
    if kind is list or kind is tuple:
        if depth >= _FAST_DEPTH:
            return -1
        room -= 2
        for item in value:
            room -= 2
            room = room - len(item) - 2 if type(item) is str else _fits(item, room, depth + 1)
            if room < 0:
                return -1
        return room
    if kind is int:
        bits = value.bit_length()
        return room - max(bits * 3 // 10, 1) if bits <= _SAFE_BITS else -1
    if kind is float:
        return room - 3 if -_INF < value < _INF else -1
    if kind is bool or value is None:
        return room - 4
    return -1


def _safe_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # a __repr__ that raises must not reach the user
        return f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"
    return text if type(text) is str else str.__str__(text)


def _safe_str(value: Any) -> str:
    try:
        text = str(value)
    except Exception:  # a __str__ that raises: its repr will do
        return _safe_repr(value)
    return text if type(text) is str else str.__str__(text)


def _int_text(value: int) -> str:
    """Decimal digits of an int, or a note of its size where converting would cost too much.

    Converting an int to decimal costs time quadratic in its length, and CPython refuses it
    beyond 4300 digits by default (`sys.set_int_max_str_digits` may lift that limit).
    """
    bits = int.bit_length(value)
    if bits <= _INT_BITS:
        try:
            return int.__repr__(value)
        except ValueError:  # over the interpreter's int_max_str_digits
            pass
    return f"<int of about {int(bits * _LOG10_2) + 1} digits>"


def _size(value: Any) -> int:
    """`len(value)`, or -1 where a container's `__len__` fails."""
    try:
        return len(value)
    except Exception:
        return -1


def _more(count: int) -> str:
    return _ITEMS_MARKER.format(n=count) if count > 0 else _SOME_ITEMS_MARKER


def _left_out(item: Any) -> int:
    """How many items an earlier cut left out, if `item` is its marker; else 1 (the item)."""
    if isinstance(item, str) and item.startswith(_ITEMS_START):
        found = _ITEMS_COUNT.fullmatch(item)
        if found:
            return int(found.group(1))
    return 1


def _text_of(value: str) -> str:
    """A str subclass's own text (what `json` writes for it), without calling its hooks."""
    return value if type(value) is str else str.__str__(value)


def _bytes_head(value: Any, count: int) -> tuple[bytes, int]:
    """The first `count` bytes of a bytes-like value and its whole length, copying only those."""
    view = memoryview(value)
    size = view.nbytes
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view[:count].tobytes(), size


def _decoded_head(value: Any, count: int) -> tuple[str | None, int]:
    """The UTF-8 text of at most the first `count` bytes (None where they are not UTF-8)."""
    head, size = _bytes_head(value, count)
    try:
        return head.decode("utf-8"), size
    except UnicodeDecodeError as exc:
        # A character split by the cut is not a reason to call the bytes binary.
        if size > len(head) and exc.start >= len(head) - 3 and exc.end == len(head):
            return head[: exc.start].decode("utf-8", "replace"), size
        return None, size


def _written(text: str) -> int:
    """Length of a string once written as JSON for an exporter (escapes and surrogates)."""
    return len(_without_surrogates(_ENCODER.encode(text)))  # a str: no encoder is built


def _head(text: str, cap: int) -> int:
    """How many leading characters of `text` take about `cap` characters once JSON-escaped.

    Escapes (`\\n`, `\\u0000`) make JSON text up to six times longer than the string it holds;
    the bound is on the text. Costs a few encodings of at most `cap` characters.
    """
    head = cap
    for _ in range(3):
        written = _written(str.__getitem__(text, slice(head))) - 2
        if written <= cap:
            break
        head = max(head * cap // written, 1)
    return head


class _JsonWalk:
    """One walk of a value into plain JSON data, stopping once `room` characters are spent.

    The result holds only dicts with str keys, lists, str, int, finite floats, bool and None, so
    the C encoder writes it. Before redaction (`margin` = `_MARGIN`) a cut string keeps the
    margin past its cut; walking JSON again after redaction (`margin` = 0), a string that already
    ends with a cut marker keeps that marker, which names the true original length.

    `room` is charged what each piece writes, or less (escapes in short strings are not
    counted), never more: a value that fits is never cut. What runs over is bounded after.
    """

    __slots__ = ("room", "leaf", "margin", "path")

    def __init__(self, limit: int, margin: int = _MARGIN) -> None:
        self.room = limit
        self.leaf = max(limit // 2, _MIN_LEAF)  # nested strings leave room for their neighbours
        self.margin = margin
        self.path: set[int] = set()  # ids of the containers being walked: a repeat is a cycle

    def value(self, value: Any, depth: int, cap: int) -> Any:
        kind = type(value)
        if kind is str:
            return self.string(value, cap)
        if value is None or kind is bool:
            self.room -= 4 + (value is False)
            return value
        if kind is int:
            return self.integer(value)
        if kind is float:
            return self.real(value)
        if depth >= _MAX_DEPTH:
            return self.note(_TOO_DEEP)
        marker = id(value)
        if marker in self.path:
            return self.note("<cycle>")
        self.path.add(marker)
        try:
            return self.other(value, depth, cap)
        except Exception:  # any failure of a user object's hooks: its repr stands in
            return self.repr_of(value, cap)
        finally:
            self.path.discard(marker)

    def string(self, text: str, cap: int) -> str:
        size = len(text)
        cap = min(cap, max(self.room, _MIN_LEAF))
        if size <= cap + self.margin:  # redaction sees it whole; it is bounded after if need be
            text = _text_of(text)
            self.room -= size + 2 if size < 64 else _written(text)
            return text
        marker = _MARKER.format(n=size)
        if not self.margin:
            cut = _CUT_AT_END.search(text, size - 80)  # cut before redaction: keep what it says
            if cut:
                text, marker = text[: cut.start()], cut.group()
        self.room -= cap + len(marker) + 2
        return str.__getitem__(text, slice(_head(text, cap) + self.margin)) + marker

    def note(self, text: str) -> str:
        """One of our own notes (a cycle, a cut container): never cut."""
        self.room -= len(text) + 2
        return text

    def integer(self, value: int) -> int | str:
        bits = int.bit_length(value)
        if bits <= _SAFE_BITS:  # its digits, or one fewer: never count more than is written
            self.room -= int(max(bits - 1, 0) * _LOG10_2) + 1 + (value < 0)
            return value
        text = _int_text(value)
        self.room -= len(text) + 2
        return value if text[0] != "<" else text  # the encoder converts as `_int_text` just did

    def real(self, value: float) -> float | str:
        if math.isnan(value):
            text = "NaN"
        elif math.isinf(value):
            text = "Infinity" if value > 0 else "-Infinity"
        else:
            self.room -= len(float.__repr__(value))
            return value
        self.room -= len(text) + 2
        return text

    def other(self, value: Any, depth: int, cap: int) -> Any:
        """Everything but exact str, int, float, bool and None, in the C encoder's order."""
        if isinstance(value, str):  # str subclasses (enums): their text, as `json` writes it
            return self.string(value, cap)
        if isinstance(value, int):
            return self.integer(value)
        if isinstance(value, float):
            return self.real(value)
        if isinstance(value, dict):
            if not self.margin and _MORE_KEY in value:  # cut before: go on counting from there
                value = dict(value)
                left_out = _left_out(value.pop(_MORE_KEY))
                return self.mapping(value.items(), len(value) + left_out, depth)
            return self.mapping(value.items(), _size(value), depth)
        if isinstance(value, (list, tuple)):
            if not self.margin and value and _left_out(value[-1]) > 1:
                return self.sequence(value[:-1], len(value) - 1 + _left_out(value[-1]), depth)
            return self.sequence(value, _size(value), depth)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return self.binary(value, cap)
        if isinstance(value, (set, frozenset)):
            size = len(value)
            items = list(islice(value, max(self.room, 0) // 3 + 2))  # each costs >= 3 chars
            with contextlib.suppress(Exception):  # unorderable items keep their order
                items.sort()
            return self.sequence(items, size, depth)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = dataclasses.fields(value)
            pairs = ((field.name, getattr(value, field.name)) for field in fields)
            return self.mapping(pairs, len(fields), depth)
        for name in _HOOKS:
            dump = getattr(value, name, None)
            if callable(dump):
                dumped = dump()
                if isinstance(dumped, _PLAIN_RESULTS):  # a mock's hooks answer with more mocks
                    return self.value(dumped, depth + 1, cap)
                break
        return self.repr_of(value, cap)

    def mapping(self, items: Iterable[tuple[Any, Any]], size: int, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        self.room -= 2
        count = 0
        for key, item in items:
            if self.room <= 0:
                break
            name = self.key(key)
            self.room -= 4 if count else 2  # ": " and, after the first, ", "
            out[name] = self.value(item, depth + 1, self.leaf)
            count += 1
        else:
            if size <= count:
                return out
        out[_MORE_KEY] = self.note(_more(size - count))
        return out

    def key(self, key: Any) -> str:
        """Object keys as the C encoder writes them; other keys by their `str`."""
        if isinstance(key, str):
            return self.string(key, self.leaf)
        if key is True or key is False or key is None:
            return self.string(json.dumps(key), self.leaf)
        if isinstance(key, int):
            return self.string(_int_text(key), self.leaf)
        if isinstance(key, float):
            return self.string(_finite_text(key), self.leaf)
        if isinstance(key, (tuple, frozenset)):
            return self.string(bounded_repr(key, self.leaf), self.leaf)
        return self.string(_safe_str(key), self.leaf)

    def sequence(self, items: Iterable[Any], size: int, depth: int) -> list[Any]:
        out: list[Any] = []
        self.room -= 2
        count = 0
        for item in items:
            if self.room <= 0:
                break
            if count:
                self.room -= 2
            out.append(self.value(item, depth + 1, self.leaf))
            count += 1
        else:
            if size <= count:
                return out
        out.append(self.note(_more(size - count)))
        return out

    def binary(self, value: Any, cap: int) -> str:
        """Bytes as their UTF-8 text where they are text, else a short description."""
        cap = min(cap, max(self.room, _MIN_LEAF))
        text, size = _decoded_head(value, cap + self.margin)
        if text is None:
            head, _ = _bytes_head(value, 64)
            return self.string(f"<{size} bytes: {head!r}>", cap)
        if size <= cap + self.margin:
            return self.string(text, cap + self.margin)
        marker = _BYTES_MARKER.format(n=size)
        self.room -= cap + len(marker) + 2
        return text[: _head(text, cap) + self.margin] + marker

    def repr_of(self, value: Any, cap: int) -> str:
        walk = _ReprWalk(min(cap, max(self.room, _MIN_LEAF)))
        text = walk.render(value)
        self.room -= len(text) + 2 - walk.cuts * _MARGIN
        return text


def _finite_text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


# The fast path's encoder (`json.dumps` with non-default options builds a new encoder on every
# call, which costs more than the encoding of a typical tool argument); it only meets plain data.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False)


def _kept_encoder() -> Callable[[Any], str]:
    """`_ENCODER.encode`, without the encoder it builds for every value where that can be avoided.

    `JSONEncoder.encode` makes a new C encoder (and a closure) per call, which costs more than
    encoding a tool's arguments does. The standard library's factory for it,
    `json.encoder.c_make_encoder` (None without the C accelerator), can make one to keep. It is
    made without cycle checks: every value encoded here is acyclic by construction (`_fits` and
    `_flat_room` stop at a fixed depth, and the walks build fresh data). It is used only when it
    writes what `_ENCODER` writes; anywhere else (another interpreter, a changed factory)
    `_ENCODER.encode` serves.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return _ENCODER.encode
    sample = {"k": ['é\x00"\\', -(1 << 63), 2.5, True, None, {"n": [[]]}], "": {}}
    try:
        chunks = make(
            None,
            _ENCODER.default,
            json.encoder.encode_basestring,
            None,
            ": ",
            ", ",
            False,
            False,
            False,
        )

        def encode(value: Any) -> str:
            return "".join(chunks(value, 0))

        agrees = encode(sample) == _ENCODER.encode(sample) and _refuses_nan(encode)
    except Exception:  # noqa: BLE001 - a factory that is not what we know: the plain encoder
        return _ENCODER.encode
    return encode if agrees else _ENCODER.encode


def _refuses_nan(encode: Callable[[Any], str]) -> bool:
    """Whether `encode` refuses NaN, as strict JSON (and `_ENCODER`) does."""
    try:
        encode(math.nan)
    except ValueError:
        return True
    return False


_encode = _kept_encoder()


def _flat_room(value: dict[Any, Any], room: int) -> int:
    """`room` less a lower bound of the JSON length of a flat dict of JSON-native values, or -1.

    The common case of tool arguments and results, checked in one pass: str keys, and values
    that are exactly str, bool, None, 64-bit int or finite float. Such a dict comes back from its
    JSON equal and with the same repr (`json_native`) and the C encoder writes it as is (`_fits`).
    Anything else (nesting, other types, too long) is -1, for the general path to decide.
    """
    room -= 2
    for key, item in value.items():
        if type(key) is not str:
            return -1
        kind = type(item)
        if kind is str:
            room -= len(key) + len(item) + 6
        elif kind is int:
            if not -(1 << 63) <= item < (1 << 63):
                return -1
            room -= len(key) + 4 + max(item.bit_length() * 3 // 10, 1)  # as `_fits` counts
        elif kind is float:
            if not -_INF < item < _INF:
                return -1
            room -= len(key) + 7
        elif kind is bool or item is None:
            room -= len(key) + 8
        else:
            return -1
        if room < 0:
            return -1
    return room


def _walked_json(value: Any, limit: int) -> str:
    """Strict JSON text of a value too large or too odd for the C encoder alone, bounded."""
    walk = _JsonWalk(limit)
    try:
        return _encode(walk.value(value, 0, limit))
    except Exception as exc:  # e.g. RecursionError when called from deep in the user's stack
        return json.dumps(f"<unserialisable {type(value).__name__}: {type(exc).__name__}>")


def _json_text(value: Any, limit: int) -> tuple[str, bool]:
    """Strict JSON text of `value`, about `limit` characters at most, and whether it was walked
    (and so may hold cuts), rather than small enough for the C encoder alone."""
    if _fits(value, limit) >= 0:
        try:
            return _encode(value), False
        except Exception:  # noqa: BLE001 - not expected for plain data; the walk handles it all
            pass
    return _walked_json(value, limit), True


def to_json(value: Any, limit: int = 1 << 62) -> str:
    """Strict JSON text for any value, bounded to about `limit` characters; never raises.

    Cut strings still carry the margin that `Renderer` drops after redaction; use `Renderer` for
    text that leaves the process.
    """
    return _json_text(value, limit)[0]


class _ReprWalk:
    """One walk of a value into its `repr`, stopping once `room` characters are spent.

    Builtin containers are walked item by item (so a huge one costs what its head does) and
    written as their builtin `repr` would be; other objects' own `__repr__` runs once and its
    text is cut. `cuts` counts the strings cut before redaction (with `_MARGIN`).
    """

    __slots__ = ("room", "leaf", "cuts", "path", "out")

    def __init__(self, limit: int) -> None:
        self.room = limit
        self.leaf = max(limit // 2, _MIN_LEAF)
        self.cuts = 0
        self.path: set[int] = set()
        self.out: list[str] = []

    def render(self, value: Any) -> str:
        try:
            self.value(value, 0, self.room)
        except Exception as exc:  # e.g. RecursionError when called from deep in the user's stack
            return f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"
        return "".join(self.out)

    def emit(self, piece: str) -> None:
        self.out.append(piece)
        self.room -= len(piece)

    def value(self, value: Any, depth: int, cap: int) -> None:
        kind = type(value)
        if kind is str:
            self.string(value, cap)
        elif kind is int:
            self.emit(_int_text(value))
        elif kind is float or kind is bool or value is None:
            self.emit(repr(value))
        elif depth >= _MAX_DEPTH:
            self.emit(_TOO_DEEP)
        elif id(value) in self.path:  # what the builtin repr writes for a cycle
            self.emit(_cycle(value))
        else:
            self.path.add(id(value))
            try:
                self.other(value, depth, cap)
            except Exception as exc:  # a hook of this object failed: say so, keep the rest
                self.emit(f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>")
            finally:
                self.path.discard(id(value))

    def string(self, text: str, cap: int) -> None:
        size = len(text)
        cap = min(cap, max(self.room, _MIN_LEAF))
        if size <= cap + _MARGIN:  # redaction sees it whole; what it leaves is bounded after
            self.emit(str.__repr__(text))
            return
        self.cuts += 1
        marker = _MARKER.format(n=size)
        quoted = str.__repr__(str.__getitem__(text, slice(cap + _MARGIN)))
        self.out.append(quoted[:-1] + marker + quoted[-1])
        self.room -= cap + len(marker) + 2

    def other(self, value: Any, depth: int, cap: int) -> None:
        kind = type(value)
        # The class's own function; typed `object` because mypy reads `kind.__repr__` as the
        # metaclass's method bound to the class, which never equals `str.__repr__`.
        own_repr: object = kind.__repr__
        if isinstance(value, str) and own_repr is str.__repr__:
            self.string(value, cap)
        elif isinstance(value, (bytes, bytearray)) and own_repr in _BYTES_REPRS:
            self.binary(value, cap)
        elif not isinstance(value, _CONTAINERS) or _size(value) <= 0 or _small(value, self.room):
            self.text(_safe_repr(value), cap)  # not a container, or an empty or small one
        elif isinstance(value, Mapping):
            named = own_repr is not dict.__repr__
            self.emit(f"{kind.__name__}({{" if named else "{")
            self.items(value.items(), _size(value), depth, pairs=True)
            self.emit("})" if named else "}")
        elif isinstance(value, tuple) and isinstance(
            fields := getattr(kind, "_fields", None), tuple
        ):
            self.named_tuple(value, fields, depth)
        else:
            self.collection(value, depth)

    def text(self, text: str, cap: int) -> None:
        """An object's own repr, cut like a string but outside quotes."""
        cap = min(cap, max(self.room, _MIN_LEAF))
        if len(text) <= cap + _MARGIN:
            self.emit(text)
            return
        self.cuts += 1
        marker = _MARKER.format(n=len(text))
        self.out.append(text[: cap + _MARGIN] + marker)
        self.room -= cap + len(marker)

    def items(self, items: Iterable[Any], size: int, depth: int, pairs: bool) -> None:
        count = 0
        for item in items:
            if self.room <= 0:
                break
            if count:
                self.emit(", ")
            if pairs:
                self.value(item[0], depth + 1, self.leaf)
                self.emit(": ")
                item = item[1]
            self.value(item, depth + 1, self.leaf)
            count += 1
        else:
            if size <= count:
                return
        self.emit((", " if count else "") + _more(size - count))

    def named_tuple(self, value: tuple[Any, ...], fields: tuple[str, ...], depth: int) -> None:
        self.emit(f"{type(value).__name__}(")
        for index, (field, item) in enumerate(zip(fields, value, strict=False)):
            if self.room <= 0:
                self.emit(_more(len(fields) - index))
                break
            self.emit(f"{', ' if index else ''}{field}=")
            self.value(item, depth + 1, self.leaf)
        self.emit(")")

    def collection(self, value: Any, depth: int) -> None:
        """Lists, tuples, sets and deques (and subclasses), as their builtin repr writes them."""
        base = next(kind for kind in _BRACKETS if isinstance(value, kind))
        opening, closing = _BRACKETS[base]
        if base is deque and value.maxlen is not None:
            closing = f"], maxlen={value.maxlen})"
        if type(value).__repr__ is not base.__repr__:
            opening, closing = f"{type(value).__name__}({opening}", f"{closing})"
        size = _size(value)
        self.emit(opening)
        self.items(value, size, depth, pairs=False)
        self.emit("," + closing if base is tuple and size == 1 else closing)

    def binary(self, value: bytes | bytearray, cap: int) -> None:
        cap = min(cap, max(self.room, _MIN_LEAF))
        if len(value) <= cap + _MARGIN:
            self.emit(repr(value))
            return
        self.cuts += 1
        marker = _BYTES_MARKER.format(n=len(value))
        quoted = repr(value[: cap + _MARGIN])
        end = len(quoted) - (2 if isinstance(value, bytearray) else 1)  # before the closing quote
        self.out.append(quoted[:end] + marker + quoted[end:])
        self.room -= cap + len(marker) + 3


_BRACKETS: dict[type, tuple[str, str]] = {
    list: ("[", "]"),
    tuple: ("(", ")"),
    set: ("{", "}"),
    frozenset: ("frozenset({", "})"),
    deque: ("deque([", "])"),
}
_CONTAINERS = (Mapping, list, tuple, set, frozenset, deque)
_BYTES_REPRS = (bytes.__repr__, bytearray.__repr__)
_BUILTIN_REPRS = frozenset((dict, list, tuple, set, frozenset))


def _cycle(value: Any) -> str:
    """What the builtin `repr` writes for a container met again inside itself."""
    if isinstance(value, (set, frozenset)):
        return f"{type(value).__name__}(...)"
    if isinstance(value, tuple):
        return "(...)"
    if isinstance(value, (list, deque)):
        return "[...]"
    return "{...}" if isinstance(value, Mapping) else "..."


def _small(value: Any, room: int) -> bool:
    """Whether a container with a `__repr__` of its own (`OrderedDict`, `Counter`, a namedtuple,
    a deque) is small and plain enough that its own repr costs little: then it is used as is.
    Builtin containers are walked instead (the walk writes what their repr would)."""
    if type(value) in _BUILTIN_REPRS or _size(value) > 64:
        return False
    items = list(value.items()) if isinstance(value, Mapping) else list(value)
    return _fits(items, room) >= 0


def bounded_repr(value: Any, limit: int) -> str:
    """`repr(value)`, about `limit` characters at most whatever the value; never raises.

    Small plain values get the builtin `repr`, unchanged. Otherwise builtin containers are
    walked item by item up to the bound (`[1, 2, …[agenttrace: truncated, 999998 more items]]`),
    long strings keep their head with a marker inside the quotes, and other objects' `__repr__`
    runs once and is cut. Cut strings carry a margin that `Renderer.repr` drops after redaction,
    so pass the result to it rather than recording it directly.
    """
    if _fits(value, limit) >= 0:
        try:
            return repr(value)
        except Exception:  # noqa: BLE001 - not expected for plain data; the walk handles it all
            pass
    return _ReprWalk(limit).render(value)


def _backslashes_before(text: str, at: int) -> int:
    count = 0
    while at > count and text[at - count - 1] == "\\":
        count += 1
    return count


def _string_start(text: str, end: int, quote: str, floor: int) -> int:
    """Just after the opening quote of the string that ends at `end`, if after `floor`."""
    at = text.rfind(quote, floor, end)
    while at != -1:
        if _backslashes_before(text, at) % 2 == 0:
            return at + 1
        at = text.rfind(quote, floor, at)
    return floor


def _escape_start(text: str, cut: int, floor: int) -> int:
    """`cut`, moved back (not before `floor`) so as not to split an escape (`\\n`, `\\u00e9`)."""
    at = text.rfind("\\", max(floor, cut - 9), cut)
    if at == -1 or _backslashes_before(text, at) % 2:  # none, or the end of an escaped backslash
        return cut
    return at if at + _ESCAPE_LENGTHS.get(text[at + 1 : at + 2], 2) > cut else cut


def _trim_cuts(text: str) -> str:
    """Drop the `_MARGIN` characters kept before each cut marker, now that redaction has seen them.

    A cut string kept `_MARGIN` characters past its cut; whatever redaction made of them, the
    last `_MARGIN` characters before the marker go. Applied to a repr or plain text, and to each
    string of a JSON value (`_trim_json`, where escapes would miscount). In a repr the trim stays
    inside the quoted string that was cut and does not split an escape. A marker that the value
    itself contained is trimmed the same way (it looks the same).
    """
    pieces: list[str] = []
    start = 0
    for match in _CUT.finditer(text):
        marker, end = match.start(), match.end()
        floor = max(start, marker - _MARGIN)
        quote = text[end : end + 1]
        if quote in ("'", '"'):  # stay within the string, even if redaction shortened it
            opening = _string_start(text, marker, quote, max(start, marker - 2 * _MARGIN))
            floor = max(floor, opening)
            cut = _escape_start(text, floor, opening)
        else:
            cut = floor
        pieces.append(text[start:cut])
        pieces.append(match.group())
        start = end
    pieces.append(text[start:])
    return "".join(pieces)


def _trim_value(value: Any) -> Any:
    if isinstance(value, str):
        return _trim_cuts(value) if _CUT_START in value else value
    if isinstance(value, list):
        return [_trim_value(item) for item in value]
    if isinstance(value, dict):
        return {_trim_value(key): _trim_value(item) for key, item in value.items()}
    return value


def _trim_json(text: str) -> str:
    """`_trim_cuts` on each string of a JSON text, counting characters, not their escapes."""
    try:
        return _encode(_trim_value(json.loads(text)))
    except (ValueError, RecursionError):  # a redaction hook made it something else
        return _trim_cuts(text)


def _rewalk_json(text: str, limit: int) -> str:
    """Bound redacted JSON text that is still too long by walking it again, without a margin.

    Cutting after redaction is safe anywhere. Strings the first walk kept whole because they
    were within the margin of their cap get their cut here; structure is kept as the first walk
    kept it. Too long still (escapes counted short), `truncate_json` has the last word.
    """
    try:
        value = _JsonWalk(limit, margin=0).value(json.loads(text), 0, limit)
        bounded = _without_surrogates(_encode(value))
    except (ValueError, RecursionError):  # a redaction hook made it something else
        return truncate_json(text, limit)
    return bounded if len(bounded) <= limit + _SLACK else truncate_json(bounded, limit)


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


def _dumps(value: Any) -> str:
    """JSON text as exporters need it: strict, UTF-8 encodable, counted as it will be written."""
    return _without_surrogates(json.dumps(value, ensure_ascii=False))


def truncate_json(text: str, limit: int) -> str:
    """Bound JSON text to about `limit` characters and keep it valid JSON.

    Long strings inside the value are shortened first (the shape a reader expects survives); if
    the structure alone is too big, the whole value becomes an object saying so, with a prefix.
    `Renderer` only needs this for text it already bounded that redaction (a hook) made longer,
    or whose escapes made it longer than counted, so the text here is O(limit) long.
    """
    if len(text) <= limit:
        return text
    try:
        value = json.loads(text)
        if isinstance(value, str):  # as many characters as fit once escaped
            keep = limit
            while True:
                cut = _dumps(truncate_text(value, keep))
                if len(cut) <= limit + len(_MARKER) + 16 or keep == 0:
                    return cut
                keep = keep * limit // len(cut)
        leaf_limit = limit // 2
        while leaf_limit >= _MIN_LEAF:
            shortened = _dumps(_shorten_leaves(value, leaf_limit))
            if len(shortened) <= limit + len(_MARKER) + 16:
                return shortened
            leaf_limit //= 2
    except (ValueError, RecursionError):  # not JSON after all, or nested too deep to walk
        pass
    # The structure alone is too big: say so, with as much of the text as fits once escaped.
    keep = max(limit - 128, 0)
    while True:
        wrapped = _dumps(
            {"agenttrace.truncated": True, "original_length": len(text), "prefix": text[:keep]}
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
    """Render, redact and bound values for span attributes, with one configuration.

    Every method costs O(limit) whatever the value (beyond what user hooks cost), never raises,
    and returns at most `limit` characters plus markers (`limit + _SLACK` in all). Small values
    take a short path per method (they are what every tool call records); the rest goes through
    `_finish`.
    """

    __slots__ = ("limit", "redactor")

    def __init__(self, limit: int, redactor: Redactor | None) -> None:
        self.limit = limit
        self.redactor = redactor

    def text(self, key: str, value: Any) -> str:
        """A plain-text attribute (tool output, prompt, model text): strings as they are."""
        if not isinstance(value, str):
            if type(value) is dict and _flat_room(value, self.limit) >= 0:  # most tool results
                try:
                    encoded = _encode(value)
                except Exception:  # noqa: BLE001 - changed by another thread since the check
                    pass
                else:
                    return self._finish(key, encoded, False, False)
            text, walked = _json_text(value, self.limit)
            return self._finish(key, text, walked, False)
        if len(value) > self.limit + _MARGIN:
            return self._finish(key, self._cut(value), True, False)
        if self.redactor is not None:  # small enough to be redacted whole, then cut as before
            value = self.redactor(key, value)
        return truncate_text(_without_surrogates(value), self.limit)

    def json(self, key: str, value: Any) -> str:
        """A JSON attribute (arguments, messages): valid JSON however large the value."""
        if _fits(value, self.limit) < 0:
            return self._finish(key, _walked_json(value, self.limit), True, True)
        try:
            text = _encode(value)
        except Exception:  # noqa: BLE001 - not expected for plain data; the walk handles it all
            return self._finish(key, _walked_json(value, self.limit), True, True)
        if self.redactor is not None:
            text = self.redactor(key, text)
        return truncate_json(_without_surrogates(text), self.limit)

    def json_exact(self, key: str, value: Any) -> tuple[str, bool]:
        """`json(key, value)`, and whether the text is `value`'s own JSON, exactly: nothing
        redacted, cut or escaped, and a value that JSON gives back equal, with the same repr
        (`json_native`). Then the value's repr can be rebuilt from the text at export time
        instead of being rendered, redacted and stored beside it on every call."""
        redactor = self.redactor
        if redactor is not None and redactor.has_hook:
            return self.json(key, value), False
        # Room for the `args=(...), kwargs=` around the rebuilt repr, which must not be cut.
        room = self.limit - 64
        # A flat dict of plain values (most calls) is proven small and native in one pass.
        flat = type(value) is dict and _flat_room(value, room) >= 0
        if not flat and _fits(value, self.limit) < 0:
            return self.json(key, value), False
        try:
            encoded = _encode(value)
        except Exception:  # noqa: BLE001 - changed by another thread since the check
            return self.json(key, value), False
        text = encoded if redactor is None else redactor(key, encoded)
        text = truncate_json(_without_surrogates(text), self.limit)
        exact = text is encoded and len(text) <= room and (flat or json_native(value))
        return text, exact

    def repr(self, key: str, text: str) -> str:
        """An already-built repr string (the release's `kwargs={...}` tool input).

        Build it with `bounded_repr` so that its cost is bounded too; a longer text is cut here
        (keeping `_MARGIN` for redaction, as the walks do).
        """
        if _TRUNCATED in text:  # `bounded_repr` cut something: its margins go after redaction
            # Its text is bounded, margins included (room here for an `args=` and a `kwargs=`).
            if len(text) > 2 * self.limit + 16 * _MARGIN:
                text = self._cut(text)
            return self._finish(key, text, True, False)
        if len(text) > self.limit + _MARGIN:
            return self._finish(key, self._cut(text), True, False)
        if self.redactor is not None:
            text = self.redactor(key, text)
        return truncate_text(_without_surrogates(text), self.limit)

    def _cut(self, text: str) -> str:
        """The head of a long text, `_MARGIN` longer than kept, for redaction to see."""
        return str.__getitem__(text, slice(self.limit + _MARGIN)) + _MARKER.format(n=len(text))

    def _finish(self, key: str, text: str, walked: bool, as_json: bool) -> str:
        """Redact; after a cut, drop the margins; bound what is still too long (or grew)."""
        if self.redactor is not None:
            text = self.redactor(key, text)
        if walked and _CUT_START in text:
            text = _trim_json(text) if as_json else _trim_cuts(text)
        text = _without_surrogates(text)
        if len(text) <= self.limit + (_SLACK if walked else 0):
            return text
        if not walked:
            return truncate_json(text, self.limit) if as_json else truncate_text(text, self.limit)
        return _rewalk_json(text, self.limit) if as_json else truncate_text(text, self.limit)
