"""Sending AgentTrace files to an OTLP backend (Jaeger through a collector, Phoenix, ...).

Each row becomes the spans it was made from (`rows_to_spans`: same ids, times, attributes), and
the spans go out over OTLP (HTTP/protobuf or gRPC) in batches. A backend that cannot be reached is
reported at once, and a backend that stops answering fails the send after the export timeout; no
call waits forever. A run is sent once, however many of the files hold it (rows are keyed by
`trace_id`: the JSONL and Parquet twins of one collection hold the same runs).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlparse

from opentelemetry.exporter.agenttrace import read_rows
from opentelemetry.exporter.agenttrace.rows_to_spans import row_to_spans
from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SpanExportResult

from agenttrace._configure import _env, _otlp_exporter

DEFAULT_ENDPOINTS = {"http/protobuf": "http://localhost:4318", "grpc": "http://localhost:4317"}


class SendError(RuntimeError):
    """The backend could not be reached or refused the spans, or the endpoint is not a URL."""


class Sent(NamedTuple):
    """What a send did: runs and spans exported, and rows skipped as repeats of a sent run."""

    rows: int
    spans: int
    duplicates: int = 0


def resolve_endpoint(endpoint: str | None, protocol: str) -> str:
    """The endpoint to use: the argument, else the OTEL_* variables, else the local default."""
    return (
        endpoint
        or _env(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT)
        or DEFAULT_ENDPOINTS[protocol]
    )


def check_reachable(endpoint: str, timeout: float = 3.0) -> None:
    """Fail fast, with a clear message, when nothing listens at the endpoint."""
    host, port = _host_port(endpoint)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as error:
        raise SendError(f"cannot connect to {endpoint} ({host}:{port}): {error}") from None


def _host_port(endpoint: str) -> tuple[str, int]:
    """The host and port an endpoint URL names; SendError when it names none."""
    try:
        parsed = urlparse(endpoint if "://" in endpoint else f"http://{endpoint}")
        port = parsed.port  # raises for a port out of range or not a number
    except ValueError as error:
        raise SendError(f"{endpoint} is not a valid endpoint URL: {error}") from None
    return parsed.hostname or "localhost", port or (443 if parsed.scheme == "https" else 80)


def _resource(row: Mapping[str, Any], overrides: Mapping[str, Any]) -> Resource | None:
    if not overrides:
        return None  # row_to_spans builds one from the row's metadata
    base = row_to_spans({"metadata": row.get("metadata") or {}, "trace_id": "0" * 31 + "1"})
    return base[0].resource.merge(Resource(dict(overrides)))


def send_rows(
    rows: Iterable[Mapping[str, Any]],
    *,
    endpoint: str,
    protocol: str = "http/protobuf",
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
    batch_size: int = 512,
    resource_attributes: Mapping[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Sent:
    """Export the spans of `rows`, each run once (by `trace_id`). Raises SendError."""
    check_reachable(endpoint)
    exporter = _otlp_exporter(endpoint, protocol, headers, timeout)
    batch: list[Any] = []
    sent_rows = sent_spans = duplicates = 0
    seen: set[str] = set()

    def flush() -> None:
        nonlocal sent_spans
        if not batch:
            return
        if exporter.export(batch) is not SpanExportResult.SUCCESS:
            raise SendError(f"{endpoint} did not accept the spans (see the log above)")
        sent_spans += len(batch)
        batch.clear()

    try:
        for row in rows:
            if progress is not None:
                progress(1)
            trace_id = row.get("trace_id")
            if isinstance(trace_id, str):
                if trace_id in seen:
                    duplicates += 1
                    continue
                seen.add(trace_id)
            batch.extend(row_to_spans(row, resource=_resource(row, resource_attributes or {})))
            sent_rows += 1
            if len(batch) >= batch_size:
                flush()
        flush()
    finally:
        exporter.shutdown()
    return Sent(sent_rows, sent_spans, duplicates)


def send_files(paths: Iterable[str | os.PathLike[str]], **options: Any) -> Sent:
    """`send_rows` over the rows of AgentTrace JSONL or Parquet files, streaming."""

    def rows() -> Iterable[Mapping[str, Any]]:
        for path in paths:
            yield from read_rows(Path(path))

    return send_rows(rows(), **options)
