"""Rendering values into span attributes: cost bounded by the output bound, not by the value.

Each pathological value here used to cost time in proportion to its size (or never finish); now
the walk stops once the bound is spent. Timing is asserted once, generously, for the MagicMock
that used to take 19-63 s; everything else asserts what bounded work implies: how many user hooks
ran, how much text the redaction hook was handed, and that the result says what it left out.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import re
import subprocess
import sys
import time
from collections import Counter, OrderedDict, defaultdict, deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.agenttrace import semconv

import agenttrace
from agenttrace import _content
from agenttrace._content import Renderer, bounded_repr
from agenttrace._redaction import Redactor

LIMIT = 1000
BOUND = LIMIT + _content._SLACK  # the bound and the markers that say what was cut
MORE = re.compile(r"…\[agenttrace: truncated, (\d+) more items\]")


def _strict(text: str) -> Any:
    """Parse as strict JSON: NaN and Infinity are not JSON."""

    def _reject(name: str) -> None:
        raise ValueError(f"not strict JSON: {name}")

    return json.loads(text, parse_constant=_reject)


def _renderer(limit: int = LIMIT, **redaction: Any) -> Renderer:
    return Renderer(limit, Redactor(**redaction))


def _more(text: str) -> int:
    """The count of left-out items the outermost (last) marker in `text` gives."""
    found = MORE.findall(text)
    assert found, f"no count of left-out items in {text[-120:]!r}"
    return int(found[-1])


def _deep(levels: int) -> list[Any]:
    value: list[Any] = ["leaf"]
    for _ in range(levels):
        value = [value]
    return value


class _Counted:
    """Counts the hooks the renderer calls on it."""

    calls = 0

    def __init__(self, index: int) -> None:
        self.index = index

    def model_dump(self) -> dict[str, int]:
        _Counted.calls += 1
        return {"i": self.index}

    def __repr__(self) -> str:
        _Counted.calls += 1
        return f"C({self.index})"


def test_a_magicmock_argument_renders_at_once(spans) -> None:
    @agenttrace.tool
    def takes(client: Any) -> str:
        return "ok"

    start = time.perf_counter()
    assert takes(mock.MagicMock()) == "ok"
    # Generous on purpose: this took 19-63 s when every hook of the mock answered with another
    # mock and the walk followed them; now it is milliseconds.
    assert time.perf_counter() - start < 5
    arguments = _strict(
        spans.one("execute_tool takes").attributes[semconv.GEN_AI_TOOL_CALL_ARGUMENTS]
    )
    assert arguments["client"].startswith("<MagicMock id=")


def test_magicmock_in_every_form_is_its_repr() -> None:
    renderer = _renderer()
    client = mock.MagicMock()
    assert _strict(renderer.json("k", {"c": client}))["c"].startswith("<MagicMock id=")
    assert renderer.text("k", client).startswith('"<MagicMock id=')
    assert bounded_repr([client], LIMIT).startswith("[<MagicMock id=")


def test_a_huge_dict_keeps_its_first_items_and_counts_the_rest() -> None:
    value = {f"key{i}": i for i in range(200_000)}
    text = _renderer().json("k", value)
    assert len(text) <= BOUND
    kept = _strict(text)
    more = kept.pop("…")
    assert len(kept) + _more(more) == len(value)
    assert list(kept.items()) == list(value.items())[: len(kept)]


@pytest.mark.parametrize(
    "value",
    [list(range(300_000)), tuple(range(300_000)), set(range(300_000)), ["x" * 900] * 1000],
    ids=["list", "tuple", "set", "long strings"],
)
def test_a_huge_sequence_keeps_its_first_items_and_counts_the_rest(value: Any) -> None:
    text = _renderer().json("k", value)
    assert len(text) <= BOUND
    kept = _strict(text)
    assert len(kept) - 1 + _more(kept[-1]) == len(value)
    if isinstance(value, set):
        assert kept[:-1] == sorted(kept[:-1])


def test_user_hooks_run_only_for_what_is_kept() -> None:
    values = [_Counted(i) for i in range(100_000)]
    renderer = _renderer()
    for render in (
        lambda: renderer.json("k", values),
        lambda: renderer.text("k", {"items": values}),
        lambda: renderer.repr("k", bounded_repr(values, LIMIT)),
    ):
        _Counted.calls = 0
        text = render()
        assert _Counted.calls <= LIMIT // 4  # each kept item costs several characters
        assert _more(text) >= len(values) - _Counted.calls


def test_redaction_sees_about_the_bound_not_the_value() -> None:
    seen: list[int] = []

    def hook(key: str, text: str) -> str:
        seen.append(len(text))
        return text

    renderer = _renderer(hook=hook)
    huge = "x" * 10_000_000
    renderer.text("k", huge)
    renderer.json("k", {"code": huge, "n": 1})
    renderer.json("k", huge.encode())
    renderer.repr("k", huge)
    renderer.repr("k", bounded_repr({"code": huge}, LIMIT))
    assert len(seen) == 5
    assert max(seen) <= LIMIT + 2 * _content._MARGIN  # not 10M


@pytest.mark.parametrize("offset", range(-40, 41, 4))
@pytest.mark.parametrize("where", ["cut", "margin end"])
def test_a_secret_straddling_a_cut_leaves_no_readable_part(where: str, offset: int) -> None:
    secret = "sk-proj-" + "S" * 40
    renderer = _renderer()
    cap = LIMIT // 2  # a string nested in a JSON value is cut to half the bound
    at = (cap if where == "cut" else cap + _content._MARGIN) + offset
    nested = "a" * at + " " + secret + " " + "z" * 20_000
    plain = "a" * (LIMIT + at - cap) + " " + secret + " " + "z" * 20_000
    for text in (
        renderer.json("k", {"code": nested, "n": 1}),
        renderer.text("k", plain),
        renderer.repr("k", bounded_repr({"code": nested}, LIMIT)),
    ):
        assert "SSSS" not in text
        assert len(text) <= BOUND
    assert _strict(renderer.json("k", {"code": nested, "n": 1}))["n"] == 1


def test_a_host_path_straddling_a_cut_leaves_no_readable_part(tmp_path) -> None:
    root = str(tmp_path / "fixture-root")
    renderer = _renderer(paths={root: "/testdata"})
    for at in range(LIMIT // 2 - len(root), LIMIT // 2 + 2, 3):
        value = {"out": "a" * at + root + "/x.txt " + "z" * 20_000}
        text = renderer.json("k", value)
        assert root[: len(root) // 2] not in text
        _strict(text)


def test_a_cut_string_that_redaction_shortened_keeps_the_json_valid(tmp_path) -> None:
    root = str(tmp_path / "a-rather-long-fixture-root-directory")
    renderer = _renderer(paths={root: "~"})
    # Redaction shrinks the kept head below the margin: the trim must stop at its opening quote.
    value: dict[str, Any] = {"before": "kept", "paths": (root + "/f ") * 2000, "after": 7}
    parsed = _strict(renderer.json("k", value))
    assert parsed["before"] == "kept"
    assert root not in json.dumps(parsed)
    assert parsed["paths"].endswith("original length " + str(len(value["paths"])) + " chars]")


@pytest.mark.parametrize("limit", [64, 97, 200, 1000])
@pytest.mark.parametrize("shift", range(6))
def test_a_cut_never_splits_an_escape(limit: int, shift: int) -> None:
    renderer = _renderer(limit)
    escapes = "x" * shift + '\n"é\x00\\\ud83d\ude00\t' * 5000
    for text in (renderer.json("k", {"s": escapes}), renderer.json("k", escapes)):
        _strict(text)
        text.encode("utf-8")
        assert len(text) <= limit + _content._SLACK
        assert "original length" in text


def test_huge_ints_are_described_and_the_rest_kept() -> None:
    renderer = _renderer()
    value = {"n": 1 << 100_000, "ok": 1}
    parsed = _strict(renderer.json("k", value))
    assert parsed == {"n": "<int of about 30104 digits>", "ok": 1}
    assert bounded_repr(value, LIMIT) == "{'n': <int of about 30104 digits>, 'ok': 1}"
    big = 10**1000  # converts quickly: written out in full
    assert _strict(renderer.json("k", {"n": big}))["n"] == big


def test_deep_nesting_keeps_the_shallow_part() -> None:
    value = {"deep": _deep(10_000), "ok": 1}
    parsed = _strict(_renderer().json("k", value))
    assert parsed["ok"] == 1
    assert "nested deeper than" in json.dumps(parsed["deep"])
    assert bounded_repr(value, LIMIT).endswith("levels]" + "]" * 63 + ", 'ok': 1}")


def test_huge_bytes_name_their_length_in_bytes() -> None:
    renderer = _renderer()
    text = renderer.text("k", b"y" * 10_000_000)
    assert text.endswith('original length 10000000 bytes]"')
    assert len(text) <= BOUND
    binary = _strict(renderer.json("k", {"raw": b"\xff\x00" * 5_000_000}))
    assert binary["raw"].startswith("<10000000 bytes: b'\\xff\\x00")
    assert bounded_repr(b"y" * 10_000_000, LIMIT).endswith("original length 10000000 bytes]'")


def test_huge_strings_keep_their_head_with_the_original_length() -> None:
    renderer = _renderer()
    huge = "x" * 10_000_000
    assert renderer.text("k", huge) == "x" * LIMIT + _content._MARKER.format(n=len(huge))
    assert _strict(renderer.json("k", huge)) == "x" * LIMIT + _content._MARKER.format(n=len(huge))
    rendered = renderer.repr("k", bounded_repr(huge, LIMIT))
    assert rendered == repr("x" * LIMIT)[:-1] + _content._MARKER.format(n=len(huge)) + "'"


def test_an_object_with_a_huge_repr_is_cut() -> None:
    class Loud:
        def __repr__(self) -> str:
            return "<" + "r" * 1_000_000 + ">"

    renderer = _renderer()
    for text in (
        _strict(renderer.json("k", {"o": Loud()}))["o"],
        renderer.repr("k", bounded_repr([Loud()], LIMIT)),
    ):
        assert "original length 1000002 chars]" in text
        assert len(text) <= BOUND


def test_iterators_are_not_consumed() -> None:
    def numbers() -> Iterator[int]:
        yield from range(3)

    class Endless:
        def __iter__(self) -> Iterator[int]:
            while True:
                yield 1

    generator = numbers()
    renderer = _renderer()
    parsed = _strict(renderer.json("k", {"g": generator, "e": Endless()}))
    assert parsed["g"].startswith("<generator object")
    assert parsed["e"].startswith("<")
    assert bounded_repr([generator, Endless()], LIMIT).startswith("[<generator object")
    assert next(generator) == 0


class _Broken:
    def model_dump(self) -> dict[str, Any]:
        raise RuntimeError("dump")

    def __repr__(self) -> str:
        raise RuntimeError("repr")


class _BadLength(list):
    def __len__(self) -> int:
        raise RuntimeError("len")


class _BadItems(dict):
    def items(self) -> Any:
        raise RuntimeError("items")

    def __repr__(self) -> str:
        raise RuntimeError("repr")


class _Self:
    def model_dump(self) -> Any:
        return self


def test_hooks_that_fail_or_loop_never_raise() -> None:
    renderer = _renderer()
    value = {
        "broken": _Broken(),
        "len": _BadLength(range(5)),
        "items": _BadItems(a=1),
        "self": _Self(),
    }
    parsed = _strict(renderer.json("k", value))
    assert parsed["broken"] == "<unrepresentable _Broken: RuntimeError>"
    assert parsed["len"] == [0, 1, 2, 3, 4]
    assert parsed["items"] == "<unrepresentable _BadItems: RuntimeError>"
    assert parsed["self"].startswith("<")
    text = bounded_repr(value, LIMIT)
    assert "<unrepresentable _Broken: RuntimeError>" in text
    assert "<unrepresentable _BadItems: RuntimeError>" in text


@dataclasses.dataclass
class _Point:
    x: int
    y: list[int]


class _Pair(NamedTuple):
    left: int
    right: str


class _Shown:
    def __repr__(self) -> str:
        return "Shown()"


def test_small_values_render_as_before() -> None:
    renderer = _renderer()
    plain = {"command": "ls -la", "n": 3, "f": 0.5, "ok": True, "none": None, "list": [1, "é"]}
    assert renderer.json("k", plain) == json.dumps(plain, ensure_ascii=False)
    assert renderer.text("k", "README.md\nsrc\n") == "README.md\nsrc\n"
    assert renderer.text("k", [1, 2]) == "[1, 2]"
    assert renderer.json("k", {1: "a", None: 2, 1.5: 3}) == '{"1": "a", "null": 2, "1.5": 3}'
    cyclic: list[Any] = [1]
    cyclic.append(cyclic)
    odd = {
        "set": {3, 1, 2},
        "bytes": b"raw",
        "tuple": (1, 2),
        "point": _Point(1, [2]),
        "pair": _Pair(1, "a"),
        "nan": math.nan,
        "inf": -math.inf,
        "shown": _Shown(),
        "cycle": cyclic,
    }
    assert _strict(renderer.json("k", odd)) == {
        "set": [1, 2, 3],
        "bytes": "raw",
        "tuple": [1, 2],
        "point": {"x": 1, "y": [2]},
        "pair": [1, "a"],
        "nan": "NaN",
        "inf": "-Infinity",
        "shown": "Shown()",
        "cycle": [1, "<cycle>"],
    }
    # `limit < len <= limit + margin`: redacted whole, then cut exactly as before
    assert renderer.text("k", "y" * (LIMIT + 10)) == "y" * LIMIT + _content._MARKER.format(
        n=LIMIT + 10
    )


def test_a_value_that_fits_is_never_cut() -> None:
    # Not plain (objects, None, False, sets), so the walk writes it; written, it just fits.
    unit = {"o": _Shown(), "n": None, "f": False, "s": {1}, "i": -12345}
    expected = json.dumps({"o": "Shown()", "n": None, "f": False, "s": [1], "i": -12345})
    count = (LIMIT - 2) // (len(expected) + 2)
    text = _renderer().json("k", [unit] * count)
    assert text == json.dumps([json.loads(expected)] * count)
    assert LIMIT - len(expected) - 2 < len(text) <= LIMIT
    deep: Any = "leaf"
    for _ in range(40):  # deeper than the fast path goes, not as deep as the walk stops
        deep = [deep]
    assert _renderer().json("k", deep) == json.dumps(deep)
    assert bounded_repr(deep, LIMIT) == repr(deep)


@pytest.mark.parametrize(
    "value",
    [
        {"command": "ls -la", "timeout": 5},
        ("pwd",),
        [1.5, math.nan, math.inf, None, True, 'it\'s "quoted"\n'],
        {1, 2},
        frozenset({"a"}),
        set(),
        deque([1, 2], maxlen=3),
        OrderedDict(a=1),
        Counter("aab"),
        defaultdict(list, a=[1]),
        _Pair(1, "x"),
        b"\x00bytes'",
        bytearray(b"ba"),
        {"nested": {"k": [(), (1,), {}]}},
        _Shown(),
    ],
    ids=repr,
)
def test_bounded_repr_of_small_values_is_their_repr(value: Any) -> None:
    assert bounded_repr(value, LIMIT) == repr(value)


def test_bounded_repr_of_cycles_is_their_repr() -> None:
    cyclic: list[Any] = [1]
    cyclic.append(cyclic)
    nested: dict[str, Any] = {"set": {1}}
    nested["self"] = nested
    assert bounded_repr(cyclic, LIMIT) == repr(cyclic) == "[1, [...]]"
    assert bounded_repr(nested, LIMIT) == repr(nested)
    assert bounded_repr({"c": cyclic, "x": "y" * 5000}, LIMIT).startswith(
        "{'c': [1, [...]], 'x': 'yy"
    )


@pytest.mark.parametrize(
    ("value", "head"),
    [
        (list(range(200_000)), "[0, 1, 2, "),
        (tuple(range(200_000)), "(0, 1, 2, "),
        (set(range(200_000)), "{0, 1, 2, "),
        (deque(range(200_000)), "deque([0, 1, 2, "),
        ({i: i for i in range(200_000)}, "{0: 0, 1: 1, "),
        (OrderedDict((i, i) for i in range(200_000)), "OrderedDict({0: 0, 1: 1, "),
        (_Pair(1, "x" * 10_000_000), "_Pair(left=1, right='xxx"),
    ],
    ids=["list", "tuple", "set", "deque", "dict", "OrderedDict", "namedtuple"],
)
def test_bounded_repr_of_huge_containers_keeps_their_head(value: Any, head: str) -> None:
    text = _renderer().repr("k", bounded_repr(value, LIMIT))
    assert text.startswith(head)
    assert len(text) <= BOUND
    if isinstance(value, _Pair):
        assert text.endswith("original length 10000000 chars]')")
    else:
        assert _more(text) > len(value) - LIMIT


def test_lone_surrogates_in_a_cut_string_become_escapes() -> None:
    renderer = _renderer()
    text = renderer.json("k", {"name": "caf\udce9" * 20_000})
    text.encode("utf-8")
    assert "original length 80000 chars" in _strict(text)["name"]


def test_rendering_benchmark_reports_its_cases() -> None:
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_rendering.py"
    cases = ["MagicMock", "dict of 1M keys"]
    command = [sys.executable, str(script), "--limit", "1000", "--timeout", "60"]
    for case in cases:
        command += ["--case", case]
    out = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    rows = {line[:30].strip(): line[30:].split() for line in out.stdout.splitlines()[1:]}
    assert sorted(rows) == sorted(cases)
    for name, cells in rows.items():
        assert len(cells) == 6, (name, cells)  # ms and chars for json, text and repr
        assert all(int(chars) <= BOUND for chars in cells[1::2]), (name, cells)


def test_a_tool_with_a_huge_argument_records_a_bounded_input(configure_spans) -> None:
    """The release's `kwargs={...}` input of a decorated tool is bounded, in size and cost."""
    import agenttrace
    from agenttrace import semconv

    spans = configure_spans(max_value_length=1000)

    @agenttrace.tool
    def take(items: list, *rest: object, **extra: object) -> int:
        return len(items)

    huge = list(range(1_000_000))
    take(huge, huge, key=huge)
    with agenttrace.tool_call("by_hand", {"items": huge}):
        pass
    for name in ("execute_tool take", "execute_tool by_hand"):
        text = spans.one(name).attributes[semconv.TOOL_INPUT_REPR]
        assert len(text) < 3 * 1000 + 500, (name, len(text))
        assert "agenttrace: truncated" in text


_PLAIN_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=24)
    | st.sampled_from(["sk-" + "a" * 20, 'pass"word', "é\udcff", "\\u00e9", "\x07"])
    | st.integers(LIMIT - 80, LIMIT).map("k".__mul__)  # about where the bounds are decided
)
_PLAIN_VALUES = st.recursive(
    _PLAIN_LEAVES,
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children)
        | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=st.dictionaries(st.text(max_size=12), _PLAIN_VALUES, max_size=6) | _PLAIN_VALUES)
@example({"big": 2**63, "small": -(2**63), "ok": True, "none": None, "f": 0.5})
@example({"nan": math.nan, "s": "x"})
@example({"tuple": (1,), "s": "k" * (LIMIT - 70)})
@example({"s": "k" * (LIMIT - 72)})  # just fits the room the rebuilt form needs
@example({"\x07" * 200: "k" * (LIMIT - 300)})  # fits as counted; escapes make it too long
@example({1: "int key"})
def test_the_flat_dict_path_renders_what_the_general_path_renders(value: Any) -> None:
    """Flat dicts of plain values (most tool arguments and results) take a one-pass check and a
    kept encoder; what they record, and whether the arguments count as exact, must not change."""
    renderers = (_renderer(), Renderer(LIMIT, None), _renderer(hook=lambda _, text: text))
    fast = [(r.text("k", value), r.json("k", value), r.json_exact("k", value)) for r in renderers]
    with (
        mock.patch.object(_content, "_flat_room", lambda _value, _room: -1),
        mock.patch.object(_content, "_encode", _content._ENCODER.encode),
    ):
        general = [
            (r.text("k", value), r.json("k", value), r.json_exact("k", value)) for r in renderers
        ]
    assert fast == general


@given(value=_PLAIN_VALUES)
def test_the_kept_encoder_writes_what_the_standard_encoder_writes(value: Any) -> None:
    try:
        expected: Any = _content._ENCODER.encode(value)
    except ValueError as exc:  # NaN and infinities: both refuse them
        expected = type(exc)
    try:
        got: Any = _content._encode(value)
    except ValueError as exc:
        got = type(exc)
    assert got == expected


def test_without_a_c_encoder_factory_the_standard_encoder_serves(monkeypatch) -> None:
    monkeypatch.setattr(json.encoder, "c_make_encoder", None)
    assert _content._kept_encoder() == _content._ENCODER.encode

    def lenient(*args: Any) -> Any:  # a factory that writes NaN: not what `_ENCODER` writes
        return real(*args[:-1], True)

    real = importlib.import_module("_json").make_encoder
    monkeypatch.setattr(json.encoder, "c_make_encoder", lenient)
    assert _content._kept_encoder() == _content._ENCODER.encode
    monkeypatch.setattr(json.encoder, "c_make_encoder", real)
    kept = _content._kept_encoder()
    assert kept != _content._ENCODER.encode
    assert kept({"a": [1, "é"]}) == '{"a": [1, "é"]}'


def test_a_flat_dict_changed_while_it_is_rendered_takes_the_general_path() -> None:
    """Another thread may change a dict between the one-pass check and the encoding (say, to
    hold NaN): the renderer never raises, it renders the value the general way instead."""
    value = {"command": "ls -la", "n": 3}
    renderer = _renderer()
    expected = renderer.text("k", value), renderer.json("k", value)
    real = _content._encode
    calls = []

    def changed_once(item: Any) -> str:
        calls.append(item)
        if len(calls) == 1:
            raise ValueError("Out of range float values are not JSON compliant")
        return real(item)

    with mock.patch.object(_content, "_encode", changed_once):
        assert renderer.text("k", value) == expected[0]
    calls.clear()
    with mock.patch.object(_content, "_encode", changed_once):
        assert renderer.json_exact("k", value) == (expected[1], False)
