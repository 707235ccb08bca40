"""Per-call cost of the instrumentation, as ratios to a hand-written OTel span, in one run.

    uv run python benchmarks/bench_overhead.py [--calls N] [--repeats R] [--check]

Every variant runs the same tiny tool body. Two baselines, two ratio columns:

* the peers' ruler (the harness every peer was measured on divides by it): a bare
  `tracer.start_as_current_span` with 2 attributes. The targets apply to this column.
* what a user would write by hand to get the same attributes: the tool's GenAI attributes, JSON
  and repr of the arguments, the result and exit code. The fair question "what does the
  decorator add over the same span by hand", answered in the second column.

One row, `@tool, content as constants`, is a floor rather than a variant: the same tool span
with content on, every value's rendering (JSON, redaction, bounds) replaced by a constant of the
same shape. It is what the content's span attributes cost alone, below which no renderer can go.

All variants share one TracerProvider with a BatchSpanProcessor in front of an exporter that
drops spans, so only the span path is measured. Variants are interleaved and the best of R
repeats is kept, which damps noise from the other core. `--check` exits 1 when a target is
missed: `@tool` with content off and no telemetry <= 1.15x the 2-attribute span, with content
(the default) and no telemetry <= 1.3x, with content and precise telemetry (the defaults) <= 1.6x.

The process first grows to the size of a typical agent (64 MiB: an OpenAI client and its HTTP
stack weigh about that), above whatever launched it (`uv run` itself peaks near 30 MiB). Linux
reports a process's peak as at least its launcher's, and below that line the precise method has
to read /proc for the true figure; the last row measures that slower path on its own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import agenttrace
from agenttrace import _invocations, _settings, semconv
from agenttrace._content import Renderer
from agenttrace._telemetry import OWN_PEAK

# Issue 14's targets, on the peer harness's ruler (the 2-attribute span).
TARGETS = {
    "@tool, content off, telemetry none": 1.15,
    "@tool, telemetry none": 1.3,
    "@tool, telemetry precise": 1.6,
}
PEER_BASELINE = "2-attribute span (peers' ruler)"
SAME_BASELINE = "same-attribute span"


class _DropExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _body(command: str) -> str:
    return "README.md\nsrc\n"


FLOOR = "@tool, content as constants"

# The floor row: the tool span with content on and every value's rendering (JSON, redaction,
# bounds) replaced by a constant of the same shape. What remains is what recording content costs
# in span attributes alone, which no renderer can go below.
_CONSTANT_ARGUMENTS = {semconv.GEN_AI_TOOL_CALL_ARGUMENTS: '{"command": "ls -la"}'}
_render_text = Renderer.text


def _constant_result(self: Renderer, key: str, value: object) -> str:
    """The tool's result as a constant; every other text (names too) as always."""
    if key == semconv.GEN_AI_TOOL_CALL_RESULT:
        return "README.md\nsrc\n"
    return _render_text(self, key, value)


_FLOOR_PATCHES = (
    (_invocations, "_argument_attributes", lambda *args, **kwargs: dict(_CONSTANT_ARGUMENTS)),
    (Renderer, "text", _constant_result),
)


@contextlib.contextmanager
def floor_rendering() -> Iterator[None]:
    """Within: every tool argument and result renders as a constant (the floor row)."""
    saved = [(owner, attr, getattr(owner, attr)) for owner, attr, _ in _FLOOR_PATCHES]
    for owner, attr, value in _FLOOR_PATCHES:
        setattr(owner, attr, value)
    try:
        yield
    finally:
        for owner, attr, value in saved:
            setattr(owner, attr, value)


def _make_variants() -> dict[str, tuple[str, Callable[[], object]]]:
    tracer = trace.get_tracer("bench")

    def peer_span() -> object:  # the peer harness's baseline: 2 attributes around the body
        with tracer.start_as_current_span(
            "execute_tool bash", attributes={"tool.name": "bash", "query.length": 6}
        ):
            return _body(command="ls -la")

    def bare_span() -> object:
        kwargs = {"command": "ls -la"}
        with tracer.start_as_current_span(
            "execute_tool bash",
            attributes={
                semconv.GEN_AI_OPERATION_NAME: "execute_tool",
                semconv.GEN_AI_TOOL_NAME: "bash",
                semconv.GEN_AI_TOOL_TYPE: "function",
                semconv.OPENINFERENCE_SPAN_KIND: "TOOL",
                semconv.GEN_AI_TOOL_CALL_ARGUMENTS: json.dumps(kwargs),
                semconv.TOOL_INPUT_REPR: f"kwargs={kwargs!r}",
            },
        ) as span:
            result = _body(**kwargs)
            span.set_attributes(
                {semconv.GEN_AI_TOOL_CALL_RESULT: result, semconv.TOOL_EXIT_CODE: 0}
            )
        return result

    tool = agenttrace.tool(name="bash")(_body)
    agent = agenttrace.agent(name="bench")(_body)

    def plain() -> object:
        return _body(command="ls -la")

    return {
        "plain call": ("none", plain),
        PEER_BASELINE: ("none", peer_span),
        SAME_BASELINE: ("none", bare_span),
        "@tool, content off, telemetry none": ("none-no-content", lambda: tool(command="ls -la")),
        "@tool, telemetry none": ("none", lambda: tool(command="ls -la")),
        FLOOR: ("none", lambda: tool(command="ls -la")),
        "@tool, telemetry precise": ("precise", lambda: tool(command="ls -la")),
        "@tool, telemetry agenttrace-0.3": ("agenttrace-0.3", lambda: tool(command="ls -la")),
        "@agent": ("none", lambda: agent(command="ls -la")),
        "@tool, precise, /proc peak path": ("precise-proc", lambda: tool(command="ls -la")),
    }


def _time(call: Callable[[], object], calls: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(calls):
        call()
    return (time.perf_counter_ns() - start) / calls / 1000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)

    ballast = bytearray(64 << 20)
    ballast[:: 1 << 12] = b"\x01" * len(range(0, len(ballast), 1 << 12))  # make it resident
    provider = TracerProvider()
    # A queue large enough that no span is dropped: dropping would make every variant cheaper.
    provider.add_span_processor(
        BatchSpanProcessor(_DropExporter(), max_queue_size=1 << 20, schedule_delay_millis=50)
    )
    trace.set_tracer_provider(provider)
    variants = _make_variants()
    settings = {
        method: _settings.Settings(telemetry_method=method)
        for method in ("none", "precise", "agenttrace-0.3")
    }
    # The /proc row: as if the launcher had been larger than this process (a probe reads the
    # inherited peak when it is made).
    OWN_PEAK._inherited = 1 << 40
    settings["precise-proc"] = _settings.Settings(telemetry_method="precise")
    OWN_PEAK._inherited = None
    settings["none-no-content"] = _settings.Settings(telemetry_method="none", capture_content=False)
    best = {name: float("inf") for name in variants}
    for _ in range(args.repeats):
        for name, (method, call) in variants.items():
            _settings.replace(settings[method])
            OWN_PEAK._inherited = 1 << 40 if method == "precise-proc" else None
            with floor_rendering() if name == FLOOR else contextlib.nullcontext():
                _time(call, args.calls // 10)  # warm up
                best[name] = min(best[name], _time(call, args.calls))
    peer, same = best[PEER_BASELINE], best[SAME_BASELINE]
    del ballast
    print(f"{'variant':34} {'us/call':>9} {'x 2-attr span':>14} {'x same-attr':>12} {'target':>7}")
    failed = False
    for name, micros in best.items():
        target = TARGETS.get(name)
        ratio = micros / peer
        mark = ""
        if target is not None:
            mark = f"<={target}" + (" ok" if ratio <= target else " MISSED")
            failed |= ratio > target
        print(f"{name:34} {micros:9.2f} {ratio:14.2f} {micros / same:12.2f} {mark:>7}")
    provider.shutdown()
    return 1 if (failed and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
