"""Time to render pathological values into span attributes, and how long the result is.

    uv run python benchmarks/bench_rendering.py [--limit 32768] [--timeout 120] [--case NAME ...]

Each case renders one value the way a decorator does (`Renderer.json` for arguments, `.text` for
results, `.repr` for the release's `tool_input`) with the default redactor, in its own process so
a case that never ends is stopped at `--timeout` and reported as such. The value is built before
the clock starts; only rendering is timed. The rendering cost should follow the output bound
(`--limit`), not the size of the value, so every row should take milliseconds at most.
Runs against any checkout whose `agenttrace._content` has `Renderer`; where `bounded_repr` is
missing (before it existed) the repr row uses the builtin `repr`, as the decorators did.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any
from unittest import mock

from agenttrace import _content
from agenttrace._redaction import Redactor


def _deep(levels: int) -> list[Any]:
    value: list[Any] = ["leaf"]
    for _ in range(levels):
        value = [value]
    return value


class _SlowRepr:
    """An object whose repr is a 10M-character string (the repr itself is the user's cost)."""

    def __repr__(self) -> str:
        return "<" + "r" * 10_000_000 + ">"


def _cycle() -> dict[str, Any]:
    value: dict[str, Any] = {"items": list(range(10))}
    value["self"] = value
    return value


CASES: dict[str, Callable[[], Any]] = {
    "small dict (hot path)": lambda: {"command": "ls -la"},
    "dict of 1M keys": lambda: {f"key{i}": i for i in range(1_000_000)},
    "list of 1M items": lambda: list(range(1_000_000)),
    "set of 1M items": lambda: set(range(1_000_000)),
    "10M-char string": lambda: "x" * 10_000_000,
    "10M bytes": lambda: b"y" * 10_000_000,
    "dict with a 10M-char value": lambda: {"code": "x" * 10_000_000, "timeout": 5},
    "MagicMock": mock.MagicMock,
    "nesting 100k deep": lambda: _deep(100_000),
    "int of 1M bits": lambda: 1 << 1_000_000,
    "cycle": _cycle,
    "object with 10M-char repr": _SlowRepr,
}


def _render_once(name: str, limit: int) -> dict[str, Any]:
    value = CASES[name]()
    renderer = _content.Renderer(limit, Redactor())
    make_repr: Callable[[Any, int], str] = getattr(_content, "bounded_repr", None) or (
        lambda item, _limit: _content.to_repr(item)
    )
    row: dict[str, Any] = {"case": name}
    for mode, render in (
        ("json", lambda: renderer.json("k", value)),
        ("text", lambda: renderer.text("k", value)),
        ("repr", lambda: renderer.repr("k", make_repr(value, limit))),
    ):
        calls = 1
        while True:
            start = time.perf_counter()
            for _ in range(calls):
                out = render()
            elapsed = time.perf_counter() - start
            if elapsed > 0.05 or calls >= 10_000:
                break
            calls *= 10
        row[f"{mode} ms"] = elapsed / calls * 1000
        row[f"{mode} chars"] = len(out)
    return row


def _run_case(name: str, limit: int, timeout: float) -> dict[str, Any]:
    command = [sys.executable, __file__, "--limit", str(limit), "--one", name]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"case": name, "error": f"still running after {timeout:g} s (stopped)"}
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {"case": name, "error": f"exit {done.returncode}: {tail[:80]}"}
    return json.loads(done.stdout)


def _print(rows: list[dict[str, Any]]) -> None:
    modes = ("json", "text", "repr")
    header = f"{'case':30}" + "".join(f"{m + ' ms':>12}{m + ' chars':>12}" for m in modes)
    print(header)
    for row in rows:
        if "error" in row:
            print(f"{row['case']:30} {row['error']}")
            continue
        cells = "".join(f"{row[m + ' ms']:12.3f}{row[m + ' chars']:12d}" for m in modes)
        print(f"{row['case']:30}{cells}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=32 * 1024)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="repeatable")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one case, print JSON
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(_render_once(args.one, args.limit)))
        return 0
    rows = [_run_case(name, args.limit, args.timeout) for name in args.case or CASES]
    _print(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
