"""The assembler's harder cases: sibling runs under a remote parent, foreign agent spans nested in
a run, and memory pressure. Each is run as a processor would see it (starts then ends) and as a
zero-code exporter would (finished spans only)."""

from __future__ import annotations

import pytest
from opentelemetry import context, trace
from opentelemetry.exporter.agenttrace import TraceAssembler
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

import agenttrace


def _feed(spans: list, sees_starts: bool, max_spans: int = 500_000) -> tuple[list, TraceAssembler]:
    rows: list = []
    assembler = TraceAssembler(rows.append, sees_starts=sees_starts, max_spans=max_spans)
    if sees_starts:
        for span in sorted(spans, key=lambda s: s.start_time):
            assembler.on_start(span)
    for span in spans:  # the SDK's order: as they end
        assembler.on_end(span)
    return rows, assembler


def _summary(rows: list) -> list:
    return [
        (
            r["metadata"].get("agent_name"),
            sorted(s["tool_name"] for s in r["spans"]),
            bool(r["metadata"].get("incomplete")),
        )
        for r in rows
    ]


@pytest.mark.parametrize("sees_starts", [False, True])
def test_sibling_runs_under_a_remote_parent(spans, sees_starts: bool) -> None:
    remote = trace.set_span_in_context(
        NonRecordingSpan(SpanContext(0x1234, 0x99, is_remote=True, trace_flags=TraceFlags(1)))
    )
    token = context.attach(remote)
    try:
        first = agenttrace.agent_run("A")
        first.attach()
        with agenttrace.tool_call("a_tool"):
            pass
        first.detach()
        second = agenttrace.agent_run("B")
        second.attach()
        for name in ("b_tool1", "b_tool2"):
            with agenttrace.tool_call(name):
                pass
        second.detach()
        first.finish()  # A ends while B still runs
        second.finish()
    finally:
        context.detach(token)
    rows, assembler = _feed(spans.all(), sees_starts)
    assert _summary(rows) == [("A", ["a_tool"], False), ("B", ["b_tool1", "b_tool2"], False)]
    assert assembler.buffered_spans == 0


@pytest.mark.parametrize("sees_starts", [False, True])
def test_foreign_agent_span_inside_a_run_stays_in_it(spans, sees_starts: bool) -> None:
    foreign = trace.get_tracer("openinference.instrumentation.langchain")
    with agenttrace.agent_run("outer"):
        with (
            foreign.start_as_current_span(
                "AgentExecutor", attributes={"openinference.span.kind": "AGENT"}
            ),
            agenttrace.tool_call("inner_tool"),
        ):
            pass
        with agenttrace.tool_call("outer_tool"):
            pass
    rows, assembler = _feed(spans.all(), sees_starts)
    assert _summary(rows) == [("outer", ["inner_tool", "outer_tool"], False)]
    assert assembler.buffered_spans == 0


@pytest.mark.parametrize("sees_starts", [False, True])
def test_memory_pressure_writes_early_and_loses_nothing(spans, sees_starts: bool) -> None:
    with agenttrace.agent_run("A"):
        with agenttrace.tool_call("a1"):
            pass
        with agenttrace.agent_run(
            "B",
        ):  # nested: part of A's row
            pass
        for i in range(7):
            with agenttrace.tool_call(f"a{i + 2}"):
                pass
    rows, assembler = _feed(spans.all(), sees_starts, max_spans=4)
    written = sorted(name for r in rows for name in [s["tool_name"] for s in r["spans"]])
    assert written == sorted(f"a{i}" for i in range(1, 9))  # every tool call, once
    assert all(r["metadata"]["incomplete"] for r in rows)  # split runs say so
    assert assembler.buffered_spans == 0
    assert assembler.stats.dropped_spans == 0


def test_foreign_spans_below_a_run_do_not_stand_in_for_its_own(spans) -> None:
    """A run's root says how many of our spans it started; a foreign span below it (an HTTP
    client's) must not make up for one of ours still open when the root ends."""
    foreign = trace.get_tracer("opentelemetry.instrumentation.httpx")
    with agenttrace.agent_run("A"):
        with foreign.start_as_current_span("GET"):
            pass
        still_open = agenttrace.tool_call("slow")  # started, so counted by the run; not ended
    rows, _ = _feed(spans.all(), sees_starts=True)
    still_open.finish()
    assert _summary(rows) == [("A", [], True)]
