"""Gathering finished spans per trace until a run is whole, then handing out its row.

A run is whole when its root (a top-level agent span) has ended and so has every span below it.
AgentTrace's own roots say how many spans their run started (`agenttrace.run.span_count`, counted
as the spans start, from any thread), so a run is whole once that many have ended, whichever
order they arrive in and however they are batched; a root from another instrumentation, whose
children end before it, is whole when it arrives. Fed by a SpanProcessor, the assembler also
sees run roots start, so a run still open at shutdown is written too.

Fed by a SpanProcessor, spans arrive in the thread that ends them, so when a root ends every span
of its run that has ended is already here: one still missing is still open (a generator tool
kept alive, a tool left running in a thread). The row is written then all the same, marked
incomplete, because the durability promise holds at the agent call's return; the stragglers are
counted as late when they end.

A trace with model or tool spans but no agent span above them (an instrumented client called in
a plain loop) is a run all the same: when the trace's top span in this process ends, its spans
make one row under a stand-in root, marked `synthetic_root` in its metadata. Spans of every
convention are read through `conventions.normalized` first, so OpenInference and OpenLLMetry
agents, model calls and tools count as ours do.

Memory is bounded by the runs in flight: spans are held only until their run's row is written, a
trace with nothing GenAI in it is dropped when its own root ends, and past `max_spans` the oldest
trace is written out as an incomplete row. Nothing is dropped silently: every loss is counted in
`stats`, and at shutdown every run still open becomes a row marked incomplete.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from opentelemetry.exporter.agenttrace import semconv
from opentelemetry.exporter.agenttrace._rows import (
    AGENT_OPERATIONS,
    STEP_OPERATIONS,
    TOOL_OPERATION,
    TRACELOOP_ROOT_KINDS,
    attributes_of,
    build_row,
    is_run_root,
)
from opentelemetry.exporter.agenttrace.conventions import normalized
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, TraceFlags

_logger = logging.getLogger(__name__)

RowSink = Callable[[dict[str, Any]], None]

# Recently written roots remembered, to count late spans instead of buffering them.
_EMITTED_MEMORY = 4096
_AGENT_NAME_PREFIXES = tuple(f"{operation} " for operation in AGENT_OPERATIONS)


@dataclass
class AssemblerStats:
    """What happened to the spans the assembler was given."""

    rows: int = 0
    incomplete_rows: int = 0
    ignored_spans: int = 0  # spans of traces that had no agent run (HTTP servers, ...)
    late_spans: int = 0  # spans that arrived after their run's row was written
    dropped_spans: int = 0  # spans lost: rows that could not be built or written
    dropped_rows: int = 0  # runs lost: their rows could not be built or written (a full disk)

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class _Trace:
    ended: dict[int, ReadableSpan] = field(default_factory=dict)
    attributes: dict[int, dict[str, Any]] = field(default_factory=dict)
    parent_of: dict[int, int | None] = field(default_factory=dict)
    live_roots: dict[int, ReadableSpan] = field(default_factory=dict)
    pending_roots: list[ReadableSpan] = field(default_factory=list)
    evicted: dict[int, int] = field(default_factory=dict)  # root id -> our spans written early
    local_root_ended: bool = False  # the trace's top span in this process has ended
    all_ours: bool = True  # every span that ended here so far was made by our decorators
    had_run: bool = False  # a row was written for a run of this trace
    # Roots written while spans below them were still open, and those spans once they ended:
    # whatever ends below one of these is late.
    late_parents: set[int] = field(default_factory=set)


_ASSEMBLERS: weakref.WeakSet[TraceAssembler] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for assembler in list(_ASSEMBLERS):
        assembler._after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _is_ours(span: ReadableSpan) -> bool:
    """Whether agenttrace's decorators made the span: then every run root is named
    `invoke_agent ...`, so most spans are settled by their name, without their attributes."""
    scope = span.instrumentation_scope
    return scope is not None and scope.name == semconv.INSTRUMENTATION_SCOPE


class _RowJob(NamedTuple):
    """One run taken out of its trace: what its row is built from."""

    root: ReadableSpan
    members: list[ReadableSpan]
    attributes: dict[int, dict[str, Any]]
    incomplete: bool
    end_time: int | None


def _parent_id(span: ReadableSpan) -> int | None:
    parent = span.parent
    if parent is None or parent.is_remote:
        return None
    return parent.span_id


class TraceAssembler:
    """Turns a stream of spans into AgentTrace rows, one per agent run."""

    def __init__(
        self,
        sink: RowSink,
        *,
        strict: bool = False,
        sees_starts: bool = False,
        max_spans: int = 500_000,
    ) -> None:
        self._sink = sink
        self._strict = strict
        self._sees_starts = sees_starts
        self._max_spans = max_spans
        self._traces: OrderedDict[int, _Trace] = OrderedDict()
        # Traces whose runs were written, with the late parents of the trace (shared, not copied).
        self._emitted: OrderedDict[int, set[int]] = OrderedDict()
        self._buffered = 0
        self._lock = threading.Lock()
        # Runs taken out of their traces under the lock, to be built, encoded and written after
        # it (by the thread that took them): other threads' spans do not wait for a row.
        self._ready: list[_RowJob] = []
        self._writing = 0  # threads building and writing rows taken from `_ready`
        self._idle = threading.Condition(self._lock)
        self.stats = AssemblerStats()
        _ASSEMBLERS.add(self)

    def _after_fork_in_child(self) -> None:
        """Threads that held the lock or were writing rows at the fork do not exist here."""
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._ready = []  # the parent writes those
        self._writing = 0

    # -- feeding ------------------------------------------------------------------------------
    def on_start(self, span: ReadableSpan) -> None:
        """A span started (processor mode): remember run roots, to finish them at shutdown.

        Most spans are not agent spans; a lookup or two tells, without a lock or a copy. A span
        with a GenAI operation is settled by it; only one without (a foreign span) is looked at
        for the OpenInference and Traceloop markers of an agent.
        """
        if not span.name.startswith(_AGENT_NAME_PREFIXES):
            if _is_ours(span):
                return
            attributes = span.attributes
            operation = attributes.get(semconv.GEN_AI_OPERATION_NAME) if attributes else None
            if operation is not None:
                if operation not in AGENT_OPERATIONS:
                    return
            elif not attributes or not (
                attributes.get(semconv.OPENINFERENCE_SPAN_KIND) == semconv.OPENINFERENCE_KIND_AGENT
                or attributes.get(semconv.TRACELOOP_SPAN_KIND) in TRACELOOP_ROOT_KINDS
            ):
                self._note_foreign_start(span)
                return
        context = span.context
        with self._lock:
            trace = self._traces.get(context.trace_id)
            if trace is None:
                trace = self._traces[context.trace_id] = _Trace()
                # A sibling run of a trace written before: its stragglers are still late.
                trace.late_parents = self._emitted.get(context.trace_id, trace.late_parents)
            trace.parent_of[context.span_id] = _parent_id(span)
            if self._is_top_root(trace, span):
                trace.live_roots[context.span_id] = span

    def _note_foreign_start(self, span: ReadableSpan) -> None:
        """Remember where a foreign span started inside a run still open.

        A foreign agent span (an OpenInference managed agent) may start below spans still open
        (its manager's step), which the assembler has not seen end: without their parents, it
        would look like a run of its own. Our own spans need none of this (nested runs say so in
        `agenttrace.run.nested`), nor do spans of traces with no run open: no lock for them.
        """
        if _is_ours(span):
            return
        context = span.context
        trace = self._traces.get(context.trace_id)
        if trace is None or not trace.live_roots:
            return
        with self._lock:
            trace.parent_of.setdefault(context.span_id, _parent_id(span))

    def on_end(self, span: ReadableSpan) -> None:
        """A span finished."""
        context = span.context
        trace_id = context.trace_id
        span_id = context.span_id
        ours = _is_ours(span)
        with self._lock:
            trace = self._traces.get(trace_id)
            if trace is None:
                if self._sees_starts and trace_id in self._emitted:
                    self.stats.late_spans += 1
                    return
                trace = self._traces[trace_id] = _Trace()
            parent_id = trace.parent_of[span_id] = _parent_id(span)
            if trace.late_parents and self._is_late(trace, span_id):
                self._drop_late(trace, span_id)
                return
            trace.ended[span_id] = span
            attributes = attributes_of(span)
            if ours:
                trace.attributes[span_id] = attributes
            else:
                trace.attributes[span_id] = normalized(span, attributes)
                trace.all_ours = False
            self._buffered += 1
            if parent_id is None:
                trace.local_root_ended = True
            if span_id in trace.live_roots or (
                # Every run root of ours is named `invoke_agent ...`: most spans stop here.
                (not ours or span.name.startswith(_AGENT_NAME_PREFIXES))
                and self._is_top_root(trace, span, attributes)
            ):
                trace.live_roots.pop(span_id, None)
                trace.pending_roots.append(span)
            if trace.pending_roots:
                self._emit_whole_runs(trace_id, trace)
            if parent_id is None and trace_id in self._traces:
                self._emit_synthetic_run(trace_id, trace, span)
            if (
                not trace.live_roots  # a run still open: nothing is finished (the common case)
                and trace_id in self._traces
                and self._trace_finished(trace, span)
            ):
                self._discard(trace_id, trace)
            while self._buffered > self._max_spans and self._evict():
                pass
        if self._ready:
            self._write_ready()

    # -- decisions ------------------------------------------------------------------------------
    def _is_top_root(
        self, trace: _Trace, span: ReadableSpan, attributes: dict[str, Any] | None = None
    ) -> bool:
        if attributes is None:
            attributes = attributes_of(span)
        return is_run_root(span, attributes) and not self._is_nested(trace, span, attributes)

    def _is_nested(
        self, trace: _Trace, span: ReadableSpan, attributes: dict[str, Any] | None = None
    ) -> bool:
        if (attributes if attributes is not None else attributes_of(span)).get(semconv.RUN_NESTED):
            return True
        parent = _parent_id(span)
        hops = 0
        while parent is not None and hops < 10_000:
            if parent in trace.live_roots:
                return True
            ancestor = trace.ended.get(parent)
            if ancestor is not None and is_run_root(ancestor, trace.attributes.get(parent)):
                return True
            parent = trace.parent_of.get(parent)
            hops += 1
        return False

    def _descends_from(self, trace: _Trace, span_id: int, root_id: int) -> bool:
        return span_id == root_id or _below(trace, span_id, root_id)

    def _is_whole(self, trace: _Trace, root: ReadableSpan) -> bool:
        root_id = root.context.span_id
        expected = trace.attributes.get(root.context.span_id, {}).get(semconv.RUN_SPAN_COUNT)
        if not isinstance(expected, int):
            # A foreign root: its children end before it. Seen only as finished spans, one with
            # a parent in this process may still turn out to sit inside another run, which is
            # known once the trace's top span has ended.
            if self._sees_starts or root.parent is None or root.parent.is_remote:
                return True
            return trace.local_root_ended
        # The trace's own root, the only run: everything ended in the trace is below it.
        alone = root.parent is None and trace.pending_roots == [root] and not trace.live_roots
        have = trace.evicted.get(root_id, 0) + self._ours_below(trace, root_id, alone=alone)
        return have >= expected

    def _ours_below(self, trace: _Trace, root_id: int, *, alone: bool = False) -> int:
        """How many of our own spans ended below `root_id` (`alone`: the trace holds no other
        run, so every ended span is)."""
        if alone and trace.all_ours:  # then just count them
            return len(trace.ended) - (root_id in trace.ended)
        return sum(
            1
            for span_id, span in trace.ended.items()
            if span_id != root_id and _is_ours(span) and (alone or _below(trace, span_id, root_id))
        )

    def _is_late(self, trace: _Trace, span_id: int) -> bool:
        """Whether the span sits below a run already written while it was open."""
        current = trace.parent_of.get(span_id)
        hops = 0
        while current is not None and hops < 10_000:
            if current in trace.late_parents:
                return True
            current = trace.parent_of.get(current)
            hops += 1
        return False

    def _drop_late(self, trace: _Trace, span_id: int) -> None:
        """Count a straggler as late, with the spans below it that ended before it did."""
        trace.late_parents.add(span_id)
        below = [other for other in trace.ended if self._is_late(trace, other)]
        for other in below:
            del trace.ended[other]
            trace.attributes.pop(other, None)
        self._buffered -= len(below)
        self.stats.late_spans += 1 + len(below)

    def _trace_finished(self, trace: _Trace, span: ReadableSpan) -> bool:
        """Nothing more can come for this trace's runs: drop what is left (not agent spans)."""
        if trace.pending_roots or trace.live_roots:
            return False
        if not trace.ended:
            return True
        if span.parent is None:
            return True  # the trace's own root has ended
        if span.parent.is_remote:
            # A top span under a remote parent: sibling runs may still come, unless there is
            # nothing GenAI left that one could claim.
            return not any(semconv.GEN_AI_OPERATION_NAME in a for a in trace.attributes.values())
        return False

    def _emit_synthetic_run(self, trace_id: int, trace: _Trace, top: ReadableSpan) -> None:
        """The trace's top span here ended with no agent run in the trace: if model or tool
        spans ended below it, they are one run, written under a stand-in root.

        Below a remote parent only the top's own spans count: a sibling top may still come.
        """
        if trace.had_run or trace.pending_roots or trace.live_roots:
            return
        top_id = top.context.span_id
        below = [
            span_id
            for span_id in trace.ended
            if top.parent is None or self._descends_from(trace, span_id, top_id)
        ]
        if any(_is_genai(trace.attributes[span_id]) for span_id in below):
            self._emit(trace, _stand_in_root(trace_id, trace, top), incomplete=False)

    def _emit_whole_runs(self, trace_id: int, trace: _Trace) -> None:
        """Write the ended runs that are whole; seen as a processor, every ended run at once.

        A processor's root arrives after every span of its run that has ended, so one still
        missing is still open: the row is written now (marked incomplete), not when it ends.
        """
        for root in list(trace.pending_roots):
            whole = self._is_whole(trace, root)
            if not (whole or self._sees_starts):
                continue  # finished spans only: the rest of the run may be in a later batch
            trace.pending_roots.remove(root)
            if self._is_nested(trace, root):
                continue  # part of an enclosing run after all: its spans stay for that row
            root_id = root.context.span_id
            split = root_id in trace.evicted  # part was written under pressure
            if not whole:
                trace.late_parents.add(root_id)
            self._emit(trace, root, incomplete=split or not whole, final=self._sees_starts)

    def _emit(
        self,
        trace: _Trace,
        root: ReadableSpan,
        *,
        incomplete: bool,
        end_time: int | None = None,
        final: bool = False,
    ) -> None:
        """Write one run's row. Unless `final`, an incomplete run's later spans make another row;
        after a `final` one they are counted as late."""
        root_id = root.context.span_id
        if root.parent is None and not trace.pending_roots and not trace.live_roots:
            # The trace's own root, alone: everything ended in the trace is below it, so the
            # run takes the trace's spans whole.
            known = trace.attributes
            if trace.ended.pop(root_id, None) is not None:
                known.pop(root_id, None)
                self._buffered -= 1
            members = list(trace.ended.values())
            trace.ended, trace.attributes = {}, {}
        else:
            members = [
                span
                for span_id, span in trace.ended.items()
                if span_id != root_id and self._descends_from(trace, span_id, root_id)
            ]
            known = {}
            for span in members:
                span_id = span.context.span_id
                del trace.ended[span_id]
                known[span_id] = trace.attributes.pop(span_id)
            if root_id in trace.ended:
                del trace.ended[root_id]
                trace.attributes.pop(root_id, None)
                self._buffered -= 1
        self._buffered -= len(members)
        self._ready.append(_RowJob(root, members, known, incomplete, end_time))
        trace.had_run = True
        if incomplete and not final:
            return  # the rest of the run may still come, as another (incomplete) row
        self._emitted[root.context.trace_id] = trace.late_parents
        while len(self._emitted) > _EMITTED_MEMORY:
            self._emitted.popitem(last=False)

    def _write_ready(self) -> None:
        """Build, encode and write the rows taken out so far, outside the lock."""
        with self._lock:
            jobs, self._ready = self._ready, []
            if not jobs:
                return
            self._writing += 1
        try:
            for job in jobs:
                self._write(job)
        finally:
            with self._lock:
                self._writing -= 1
                self._idle.notify_all()

    def _write(self, job: _RowJob) -> None:
        try:
            row = build_row(
                job.root,
                job.members,
                strict=self._strict,
                incomplete=job.incomplete,
                end_time=job.end_time,
                attributes_by_id=job.attributes,
            )
            self._sink(row)
        except Exception:  # a row that cannot be built or written is counted, never raised
            _logger.exception(
                "agenttrace: could not write the row of trace %032x", job.root.context.trace_id
            )
            with self._lock:
                self.stats.dropped_spans += len(job.members) + 1
                self.stats.dropped_rows += 1
            return
        with self._lock:
            self.stats.rows += 1
            if job.incomplete:
                self.stats.incomplete_rows += 1

    def _discard(self, trace_id: int, trace: _Trace) -> None:
        self.stats.ignored_spans += len(trace.ended)
        self._buffered -= len(trace.ended)
        del self._traces[trace_id]

    def _evict(self) -> bool:
        """Over the bound: write the spans of the trace holding the most, as incomplete rows.

        Runs still open stay open (their later spans make another row); returns False when no
        trace holds a span to write.
        """
        candidates = [(len(t.ended), tid) for tid, t in self._traces.items() if t.ended]
        if not candidates:
            return False
        _, trace_id = max(candidates)
        trace = self._traces[trace_id]
        _logger.warning(
            "agenttrace: more than %d spans buffered; writing part of trace %032x early",
            self._max_spans,
            trace_id,
        )
        for root in list(trace.pending_roots):
            self._emit(trace, root, incomplete=True)
        trace.pending_roots.clear()
        now = time.time_ns()
        for root_id, root in trace.live_roots.items():
            before = len(trace.ended)
            ours = self._ours_below(trace, root_id)
            self._emit(trace, root, incomplete=True, end_time=now)
            if len(trace.ended) < before:
                trace.evicted[root_id] = trace.evicted.get(root_id, 0) + ours
        if any(semconv.GEN_AI_OPERATION_NAME in a for a in trace.attributes.values()):
            self._emit(trace, _stand_in_root(trace_id, trace), incomplete=True)
        self.stats.ignored_spans += len(trace.ended)
        self._buffered -= len(trace.ended)
        trace.ended.clear()
        trace.attributes.clear()
        if not trace.live_roots:
            del self._traces[trace_id]
        return True

    # -- shutdown -------------------------------------------------------------------------------
    def _finish_trace(self, trace_id: int, trace: _Trace) -> None:
        now = time.time_ns()
        for root in list(trace.pending_roots):
            self._emit(trace, root, incomplete=True)
        trace.pending_roots.clear()
        for root in list(trace.live_roots.values()):
            self._emit(trace, root, incomplete=True, end_time=now)
        trace.live_roots.clear()
        if any(semconv.GEN_AI_OPERATION_NAME in a for a in trace.attributes.values()):
            # GenAI spans whose agent root never showed up: a row all the same, under a stand-in.
            self._emit(trace, _stand_in_root(trace_id, trace), incomplete=True)
        self._discard(trace_id, trace)

    def finish_all(self) -> None:
        """Write every run still in flight as an incomplete row (at shutdown), and wait for the
        rows other threads are writing: the files close after this."""
        with self._lock:
            for trace_id, trace in list(self._traces.items()):
                self._finish_trace(trace_id, trace)
        self._write_ready()
        with self._lock:
            while self._writing:
                self._idle.wait()

    def count_dropped(self, spans: int = 1) -> None:
        """Count spans that reached the assembler's owner after it shut down: they are lost."""
        with self._lock:
            self.stats.dropped_spans += spans

    @property
    def buffered_spans(self) -> int:
        return self._buffered


def _is_genai(attributes: dict[str, Any]) -> bool:
    """Whether a span is a model step or a tool call (of any convention, once normalized)."""
    operation = attributes.get(semconv.GEN_AI_OPERATION_NAME)
    return operation == TOOL_OPERATION or operation in STEP_OPERATIONS


def _stand_in_root(trace_id: int, trace: _Trace, top: ReadableSpan | None = None) -> ReadableSpan:
    """A root for spans whose real root was never seen, spanning them all (or, given the top
    span they ended under, that span and its own), marked `synthetic_root` in the row."""
    if top is None or top.parent is None:
        spans = list(trace.ended.values())
        top_ids = {
            s.context.span_id
            for s in spans
            if trace.parent_of.get(s.context.span_id) not in trace.ended
        }
    else:
        top_id = top.context.span_id
        spans = [
            s
            for span_id, s in trace.ended.items()
            if span_id == top_id or _below(trace, span_id, top_id)
        ]
        top_ids = {top_id}
    stand_in_id = next(iter(top_ids)) ^ 0x5A5A5A5A5A5A5A5A or 1
    start = min(s.start_time or 0 for s in spans)
    end = max(s.end_time or s.start_time or 0 for s in spans)
    for span_id in top_ids:
        trace.parent_of[span_id] = stand_in_id
    context = SpanContext(trace_id, stand_in_id, is_remote=False, trace_flags=TraceFlags(1))
    return ReadableSpan(
        name="invoke_agent",
        context=context,
        # Under a remote parent, the stand-in keeps it: the row takes only its own spans.
        parent=top.parent if top is not None else None,
        attributes={
            semconv.GEN_AI_OPERATION_NAME: semconv.OPERATION_INVOKE_AGENT,
            semconv.METADATA_PREFIX + semconv.SYNTHETIC_ROOT: True,
        },
        resource=spans[0].resource,
        start_time=start,
        end_time=end,
    )


def _below(trace: _Trace, span_id: int, top_id: int) -> bool:
    current = trace.parent_of.get(span_id)
    hops = 0
    while current is not None and hops < 10_000:
        if current == top_id:
            return True
        current = trace.parent_of.get(current)
        hops += 1
    return False
