"""OTLP JSON trace files back into AgentTrace rows: the fleet path's last step.

On a fleet, spans leave each host over OTLP and reach a gateway collector whose `file` exporter
writes them as OTLP JSON; `ingest` turns those files into the rows `AgentTraceSpanExporter`
would have written in-process, by rebuilding each span as a `ReadableSpan` and feeding the
same assembler.

What is read, one ExportTraceServiceRequest (`{"resourceSpans": [...]}`) per record:

* the collector's `file` exporter with `format: json`: one request per line (ids as hex text,
  times as decimal text of unix nanoseconds, attributes as `[{key, value: {stringValue|...}}]`),
  and the official `opentelemetry-exporter-otlp-json-file` package, which writes the very same
  lines (`json.dumps(request.to_dict())` plus a newline);
* compressed: a gzip file (`.gz`, e.g. a rotated backup compressed afterwards), a zstd file
  (`zstd` on the command line, or the collector's native zstd compression: NDJSON inside), and
  the collector's legacy `compression: zstd` framing (each request a zstd frame preceded by its
  length as 4 big-endian bytes). Files are recognised by their first bytes, not their names;
* the names rotation gives: `traces.jsonl` is the file being written and
  `traces-2026-01-02T03-04-05.678.jsonl` (`-size`/`-time` after the time with newer collectors)
  its backups; `order_files` puts backups oldest first and the live file last.

Memory is bounded by the runs in flight, as in-process: the assembler holds a trace's spans only
until its run is whole (however many files and rotations they are spread over) and past
`max_spans` writes the biggest trace out as incomplete rows; at the end what is left is written
as the assembler does at shutdown. Resources and scopes, the same for every span of a process,
are built once and shared. What grows with the input is one integer per finished trace, kept
to drop duplicates: a trace already in the output, or finished earlier in this ingest, is
skipped (an at-least-once retry, or the same file given twice), and a span seen twice while
its trace is open counts once.

Malformed input is skipped and counted, never raised mid-stream: a line that is not JSON, a
record that is not a trace request, a span without valid ids, a torn or corrupt compressed
tail. Each is reported (`FILE:LINE: what is wrong`) through `on_problem`. A file whose first
record is not OTLP JSON traces at all is an `AgentTraceFileError` from `check_file`, so a
wrong file is refused before anything is written.
"""

from __future__ import annotations

import base64
import gzip
import io
import logging
import os
import re
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

from opentelemetry.exporter.agenttrace import _json
from opentelemetry.exporter.agenttrace._assembler import TraceAssembler
from opentelemetry.exporter.agenttrace.readers import AgentTraceFileError
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags, TraceState
from opentelemetry.trace.status import Status, StatusCode

_logger = logging.getLogger(__name__)

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_ZSTD_HINT = "reading zstd files needs the zstandard package: pip install zstandard"
# OTLP's SpanKind counts from UNSPECIFIED = 0; the SDK's from INTERNAL = 0.
_KINDS = {
    0: SpanKind.INTERNAL,
    1: SpanKind.INTERNAL,
    2: SpanKind.SERVER,
    3: SpanKind.CLIENT,
    4: SpanKind.PRODUCER,
    5: SpanKind.CONSUMER,
}
_KIND_NAMES = {f"SPAN_KIND_{kind.name}": kind for kind in SpanKind}
_STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
_CONTEXT_HAS_IS_REMOTE = 0x100
_CONTEXT_IS_REMOTE = 0x200
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_UNSET = Status(StatusCode.UNSET)
_OK = Status(StatusCode.OK)
_CACHE_LIMIT = 4096
_ROTATED = re.compile(
    r"^(?P<stem>.+)-(?P<time>\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d(?:\.\d+)?)(?:-(?:size|time|manual))?"
    r"(?P<suffix>(?:\.[^.\-]+)*)$"
)


class MalformedRecord(ValueError):
    """One record (a line or a frame) that cannot be read as spans; skipped and counted."""


# -- files ----------------------------------------------------------------------------------------
def order_files(paths: Iterable[Path]) -> list[Path]:
    """The files in the order they were written: per live file, its rotated backups oldest
    first (by the time in their names), then the live file; other files keep their order.

    Order is not needed for correct rows (a run waits for all its spans), but spans of one run
    sit in neighbouring files, so reading in order keeps fewer runs in flight.
    """
    indexed = list(enumerate(paths))

    def key(item: tuple[int, Path]) -> tuple[str, int, str, int]:
        position, path = item
        match = _ROTATED.match(path.name)
        if match is None:
            base = _without_compression(path.name)
            return (str(path.parent / base), 1, "", position)
        base = _without_compression(match["stem"] + match["suffix"])
        return (str(path.parent / base), 0, match["time"], position)

    groups: dict[str, int] = {}
    for item in indexed:
        groups.setdefault(key(item)[0], item[0])
    return [
        path for _, path in sorted(indexed, key=lambda item: (groups[key(item)[0]], *key(item)[1:]))
    ]


def _without_compression(name: str) -> str:
    for suffix in (".gz", ".zst", ".zstd"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def iter_records(
    path: str | os.PathLike[str], progress: Callable[[int], None] | None = None
) -> Iterator[tuple[int, bytes]]:
    """(line or frame number, raw record) for each record of an OTLP JSON file, streaming.

    `progress` is called with the file's bytes as they are read (compressed bytes for a
    compressed file). A torn or corrupt compressed tail raises `MalformedRecord` after the
    records before it were yielded.
    """
    with open(path, "rb") as raw:
        head = raw.read(8)
        raw.seek(0)
        compressed = head.startswith((_GZIP_MAGIC, _ZSTD_MAGIC)) or head[4:8] == _ZSTD_MAGIC
        source: IO[bytes] = raw
        if compressed and progress is not None:
            source = io.BufferedReader(_Counting(raw, progress), 1 << 16)
        if head.startswith(_GZIP_MAGIC):
            yield from _lines(gzip.GzipFile(fileobj=source, mode="rb"), compressed=True)
        elif head.startswith(_ZSTD_MAGIC):
            yield from _split_lines(_zstd_chunks(source))
        elif compressed:
            yield from _length_prefixed(source)
        elif progress is None:
            yield from _lines(raw, compressed=False)
        else:
            for number, line in _lines(raw, compressed=False):
                progress(len(line))
                yield number, line


class _Counting(io.RawIOBase):
    """A file read through, reporting the bytes read (progress through a compressed file)."""

    def __init__(self, raw: IO[bytes], progress: Callable[[int], None]) -> None:
        self._raw = raw
        self._progress = progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        buffer[: len(data)] = data
        self._progress(len(data))
        return len(data)


def _lines(
    handle: IO[bytes] | BinaryIO | gzip.GzipFile, *, compressed: bool
) -> Iterator[tuple[int, bytes]]:
    number = 0
    try:
        for number, line in enumerate(handle, start=1):  # noqa: B007 - used after the loop
            yield number, line
    except (OSError, EOFError, zlib.error, ValueError) as error:
        if not compressed:
            raise
        raise MalformedRecord(
            f"line {number + 1}: compressed data ends early or is corrupt ({error})"
        ) from None


def _zstd_chunks(raw: IO[bytes]) -> Iterator[bytes]:
    """The decompressed data of a zstd file of one or more frames; a frame cut short (a file
    copied while written, a crash) raises MalformedRecord once the data before it is out.

    The zstandard package's stream reader ends quietly at a cut frame, so frames are followed
    here: a new one starts where the last one's data ends.
    """
    context = _zstd().ZstdDecompressor()
    frame: Any = None
    while chunk := raw.read(1 << 20):
        while chunk:
            if frame is None:
                frame = context.decompressobj()
            try:
                data = frame.decompress(chunk)
            except Exception as error:  # zstd.ZstdError
                raise MalformedRecord(f"corrupt zstd data ({error})") from None
            if data:
                yield data
            chunk = b""
            if frame.eof:
                chunk, frame = frame.unused_data, None
    if frame is not None:
        raise MalformedRecord("compressed data ends early: the last zstd frame is cut short")


def _split_lines(chunks: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
    number, rest = 0, b""
    try:
        for chunk in chunks:
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            for line in lines:
                number += 1
                yield number, line + b"\n"
    except MalformedRecord as error:
        if rest:
            yield number + 1, rest
        raise MalformedRecord(f"line {number + 2 if rest else number + 1}: {error}") from None
    if rest:
        yield number + 1, rest


def _length_prefixed(raw: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """The collector's legacy `compression: zstd`: [4-byte big-endian size][zstd frame]..."""
    decompressor = _zstd().ZstdDecompressor()
    number = 0
    while True:
        size_bytes = raw.read(4)
        if not size_bytes:
            return
        number += 1
        if len(size_bytes) < 4:
            raise MalformedRecord(f"frame {number}: the file ends inside a frame's size")
        (size,) = struct.unpack(">I", size_bytes)
        frame = raw.read(size)
        if len(frame) < size:
            raise MalformedRecord(f"frame {number}: the file ends inside the frame")
        try:
            reader = decompressor.stream_reader(io.BytesIO(frame), read_across_frames=True)
            data = reader.read()
        except Exception as error:  # zstd.ZstdError: the frame is corrupt
            raise MalformedRecord(f"frame {number}: not a zstd frame ({error})") from None
        for line in data.splitlines():
            yield number, line


def _zstd() -> Any:
    try:
        import zstandard
    except ImportError:  # pragma: no cover - the `zstd` extra
        raise ImportError(_ZSTD_HINT) from None
    return zstandard


def check_file(path: str | os.PathLike[str]) -> None:
    """Raise AgentTraceFileError unless the file's first record is OTLP JSON traces: an
    AgentTrace row file or a metrics file given by mistake is refused up front.

    An empty file passes (a live file just rotated), and so does one whose first record is torn
    (cut short, no newline, or in a cut compressed frame): the ingest reports and skips it.
    """
    try:
        for number, raw in iter_records(path):
            if not raw.strip():
                continue
            try:
                request = _parse(raw)
            except MalformedRecord as error:
                if not raw.endswith(b"\n"):
                    return
                raise AgentTraceFileError(path, f"line {number}", str(error)) from None
            if "resourceSpans" not in request and "resource_spans" not in request:
                keys = ", ".join(sorted(request)[:4]) or "nothing"
                raise AgentTraceFileError(
                    path,
                    f"line {number}",
                    f'not OTLP JSON traces: no "resourceSpans" (the object holds {keys})',
                )
            return
    except MalformedRecord:
        return
    except OSError as error:
        raise AgentTraceFileError(path, "file", f"cannot read: {error.strerror or error}") from None


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        value = _json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise MalformedRecord(f"not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise MalformedRecord(f"a record must be a JSON object, got {type(value).__name__}")
    return value


# -- spans ----------------------------------------------------------------------------------------
class SpanDecoder:
    """OTLP JSON requests to ReadableSpans, sharing one Resource / scope object per distinct one."""

    def __init__(self) -> None:
        self._resources: dict[bytes, Resource] = {}
        self._scopes: dict[bytes, InstrumentationScope | None] = {}

    def spans(self, request: dict[str, Any]) -> Iterator[ReadableSpan | MalformedRecord]:
        """The request's spans; a span that cannot be read comes as its MalformedRecord."""
        resource_spans = request.get("resourceSpans", request.get("resource_spans"))
        if not isinstance(resource_spans, list):
            yield MalformedRecord('not a trace request: no "resourceSpans" list')
            return
        for group in resource_spans:
            if not isinstance(group, dict):
                yield MalformedRecord("a resourceSpans entry is not an object")
                continue
            resource = self._resource(group.get("resource"), group.get("schemaUrl"))
            for scope_group in (
                group.get("scopeSpans") or group.get("instrumentationLibrarySpans") or ()
            ):
                if not isinstance(scope_group, dict):
                    yield MalformedRecord("a scopeSpans entry is not an object")
                    continue
                scope = self._scope(
                    scope_group.get("scope") or scope_group.get("instrumentationLibrary"),
                    scope_group.get("schemaUrl"),
                )
                for span in scope_group.get("spans") or ():
                    try:
                        yield _span(span, resource, scope)
                    except MalformedRecord as error:
                        yield error
                    except (TypeError, ValueError, KeyError, AttributeError) as error:
                        yield MalformedRecord(f"a span cannot be read: {error!r}")

    def _resource(self, data: Any, schema_url: Any) -> Resource:
        key = _json.dumps_bytes([data, schema_url])
        resource = self._resources.get(key)
        if resource is None:
            attributes = _attributes(data.get("attributes") if isinstance(data, dict) else None)
            resource = Resource(attributes, schema_url if isinstance(schema_url, str) else None)
            if len(self._resources) >= _CACHE_LIMIT:
                self._resources.clear()
            self._resources[key] = resource
        return resource

    def _scope(self, data: Any, schema_url: Any) -> InstrumentationScope | None:
        key = _json.dumps_bytes([data, schema_url])
        if key in self._scopes:
            return self._scopes[key]
        scope: InstrumentationScope | None = None
        if isinstance(data, dict) and data.get("name") is not None:
            scope = InstrumentationScope(
                str(data["name"]),
                data.get("version") or None,
                schema_url if isinstance(schema_url, str) and schema_url else None,
                _attributes(data.get("attributes")) or None,
            )
        if len(self._scopes) >= _CACHE_LIMIT:
            self._scopes.clear()
        self._scopes[key] = scope
        return scope


def _span(
    data: dict[str, Any], resource: Resource, scope: InstrumentationScope | None
) -> ReadableSpan:
    trace_id = _hex_id(data.get("traceId"), 32, "traceId")
    span_id = _hex_id(data.get("spanId"), 16, "spanId")
    flags = int(data.get("flags") or 0)
    parent_hex = data.get("parentSpanId")
    parent = None
    if parent_hex:
        parent = SpanContext(
            trace_id,
            _hex_id(parent_hex, 16, "parentSpanId"),
            is_remote=bool(flags & _CONTEXT_HAS_IS_REMOTE and flags & _CONTEXT_IS_REMOTE),
            trace_flags=_SAMPLED,
        )
    trace_state = data.get("traceState")
    context = SpanContext(
        trace_id,
        span_id,
        is_remote=False,
        trace_flags=_SAMPLED,
        trace_state=TraceState.from_header([trace_state]) if trace_state else None,
    )
    return ReadableSpan(
        name=str(data.get("name") or ""),
        context=context,
        parent=parent,
        resource=resource,
        attributes=_attributes(data.get("attributes")),
        events=[_event(event) for event in data.get("events") or ()],
        links=[_link(link) for link in data.get("links") or ()],
        kind=_kind(data.get("kind")),
        status=_status(data.get("status")),
        start_time=_nanos(data.get("startTimeUnixNano")),
        end_time=_nanos(data.get("endTimeUnixNano")),
        instrumentation_scope=scope,
    )


def _hex_id(value: Any, digits: int, what: str) -> int:
    if not isinstance(value, str) or len(value) != digits:
        raise MalformedRecord(f"{what} must be {digits} hex digits, got {value!r}")
    try:
        number = int(value, 16)
    except ValueError:
        raise MalformedRecord(f"{what} must be {digits} hex digits, got {value!r}") from None
    if number == 0:
        raise MalformedRecord(f"{what} is all zeros")
    return number


def _nanos(value: Any) -> int | None:
    return None if value is None else int(value)


def _kind(value: Any) -> SpanKind:
    if isinstance(value, str):
        return _KIND_NAMES.get(value, SpanKind.INTERNAL)
    return _KINDS.get(int(value or 0), SpanKind.INTERNAL)


def _status(data: Any) -> Status:
    if not data:
        return _UNSET
    code = data.get("code", 0)
    code = _STATUS_NAMES.get(code, 0) if isinstance(code, str) else int(code or 0)
    if code == 2:
        return Status(StatusCode.ERROR, data.get("message") or None)
    return _OK if code == 1 else _UNSET


def _event(data: dict[str, Any]) -> Event:
    return Event(
        str(data.get("name") or ""),
        _attributes(data.get("attributes")),
        _nanos(data.get("timeUnixNano")),
        limit=None,
    )


def _link(data: dict[str, Any]) -> Link:
    flags = int(data.get("flags") or 0)
    context = SpanContext(
        _hex_id(data.get("traceId"), 32, "links.traceId"),
        _hex_id(data.get("spanId"), 16, "links.spanId"),
        is_remote=bool(flags & _CONTEXT_HAS_IS_REMOTE and flags & _CONTEXT_IS_REMOTE),
        trace_flags=_SAMPLED,
    )
    return Link(context, _attributes(data.get("attributes")) or None)


def _attributes(items: Any) -> dict[str, Any]:
    if not items:
        return {}
    return {item["key"]: _value(item.get("value")) for item in items}


def _value(value: Any) -> Any:
    """An AnyValue as the SDK holds it: arrays as tuples (what BoundedAttributes makes of lists)."""
    if not value:
        return None
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return int(value["intValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])  # "NaN" / "Infinity" arrive as text
    if "arrayValue" in value:
        return tuple(_value(item) for item in (value["arrayValue"] or {}).get("values") or ())
    if "kvlistValue" in value:
        return _attributes((value["kvlistValue"] or {}).get("values"))
    if "bytesValue" in value:
        return base64.b64decode(value["bytesValue"])
    return None


# -- ingest ---------------------------------------------------------------------------------------
@dataclass
class IngestStats:
    """What an ingest read and wrote; the assembler's own counts are in `assembler`."""

    files: int = 0
    records: int = 0
    spans: int = 0
    duplicate_spans: int = 0  # seen before: a retry, a file given twice, a run already written
    rows: int = 0
    duplicate_rows: int = 0  # rows of a trace already in the output
    malformed: int = 0  # lines, frames or spans skipped as unreadable


Problem = Callable[[str], None]


class OtlpJsonIngest:
    """Spans from OTLP JSON files through the exporter's assembler, rows out to `sink`.

    `known_trace_ids` are traces whose rows the output already holds: their spans are skipped.
    """

    def __init__(
        self,
        sink: Callable[[dict[str, Any]], None],
        *,
        known_trace_ids: Iterable[str] = (),
        strict: bool = False,
        max_spans: int = 200_000,
        on_problem: Problem | None = None,
    ) -> None:
        self.stats = IngestStats()
        self._sink = sink
        self._known: set[int] = {int(trace_id, 16) for trace_id in known_trace_ids}
        self._prior = frozenset(self._known)
        self._open: dict[int, set[int]] = {}  # span ids seen per trace still in the assembler
        self._decoder = SpanDecoder()
        self._on_problem = on_problem or (
            lambda message: _logger.warning("agenttrace: %s", message)
        )
        # Fed like AgentTraceSpanExporter: finished spans only, whole runs written.
        self.assembler = TraceAssembler(self._write, strict=strict, max_spans=max_spans)

    def _write(self, row: dict[str, Any]) -> None:
        trace_id = row.get("trace_id")
        if isinstance(trace_id, str) and int(trace_id, 16) in self._prior:
            self.stats.duplicate_rows += 1
            return
        self._sink(row)
        self.stats.rows += 1

    def feed_file(
        self, path: str | os.PathLike[str], progress: Callable[[int], None] | None = None
    ) -> None:
        """Every record of one file; malformed ones are reported and skipped."""
        self.stats.files += 1
        where = os.fspath(path)
        last: tuple[int, bytes] | None = None
        try:
            for number, raw in iter_records(path, progress):
                if last is not None:
                    self._feed_record(where, *last, torn=False)
                last = (number, raw)
            if last is not None:
                self._feed_record(where, *last, torn=not last[1].endswith(b"\n"))
        except MalformedRecord as error:
            if last is not None:
                self._feed_record(where, *last, torn=not last[1].endswith(b"\n"))
            self._problem(f"{where}:{error}")

    def _feed_record(self, where: str, number: int, raw: bytes, *, torn: bool) -> None:
        if not raw.strip():
            return
        try:
            request = _parse(raw)
        except MalformedRecord as error:
            what = "a torn last line (the file was cut or is still being written)"
            self._problem(f"{where}:line {number}: {what if torn else error}")
            return
        self.stats.records += 1
        for span in self._decoder.spans(request):
            if isinstance(span, MalformedRecord):
                self._problem(f"{where}:line {number}: {span}")
            else:
                self.feed_span(span)

    def _problem(self, message: str) -> None:
        self.stats.malformed += 1
        self._on_problem(message)

    def feed_span(self, span: ReadableSpan) -> None:
        """One finished span: skipped if seen before, else to the assembler (never raises)."""
        context = span.context
        assert context is not None  # built by SpanDecoder
        trace_id, span_id = context.trace_id, context.span_id
        self.stats.spans += 1
        if trace_id in self._known:
            self.stats.duplicate_spans += 1
            return
        seen = self._open.get(trace_id)
        if seen is None:
            seen = self._open[trace_id] = set()
        elif span_id in seen:
            self.stats.duplicate_spans += 1
            return
        seen.add(span_id)
        try:
            self.assembler.on_end(span)
        except Exception:  # as the exporter: counted by the assembler, logged, never raised
            _logger.exception("agenttrace: assembling a span failed")
        traces = self.assembler._traces
        if trace_id not in traces:
            # Finished: its runs are written. What comes for it later is a repeat.
            del self._open[trace_id]
            self._known.add(trace_id)
        if len(self._open) > 2 * len(traces) + 1024:
            # Traces the assembler wrote out under memory pressure: later spans of theirs make
            # further (incomplete) rows, as in-process, so they are forgotten, not known.
            for gone in [tid for tid in self._open if tid not in traces]:
                del self._open[gone]

    def finish(self) -> None:
        """Write what is still held as incomplete rows, as the exporter does at shutdown."""
        self.assembler.finish_all()
        self._open.clear()
