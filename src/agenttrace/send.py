"""Sending AgentTrace files to an OTLP backend (Jaeger through a collector, Phoenix, ...).

Each row becomes the spans it was made from (`rows_to_spans`: same ids, times, attributes), and
the spans go out over OTLP (HTTP/protobuf or gRPC) in batches. A backend that cannot be reached is
reported at once, and a backend that stops answering fails the send after the export timeout; no
call waits forever.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from opentelemetry.exporter.agenttrace import read_rows
from opentelemetry.exporter.agenttrace.rows_to_spans import row_to_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SpanExportResult

from agenttrace._configure import _env, _otlp_exporter

DEFAULT_ENDPOINTS = {"http/protobuf": "http://localhost:4318", "grpc": "http://localhost:4317"}


class SendError(RuntimeError):
    """The backend could not be reached or refused the spans."""


def resolve_endpoint(endpoint: str | None, protocol: str) -> str:
    """The endpoint to use: the argument, else the OTEL_* variables, else the local default."""
    return (
        endpoint
        or _env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
        or DEFAULT_ENDPOINTS[protocol]
    )


def check_reachable(endpoint: str, timeout: float = 3.0) -> None:
    """Fail fast, with a clear message, when nothing listens at the endpoint."""
    parsed = urlparse(endpoint if "://" in endpoint else f"http://{endpoint}")
    host = parsed.hostname or "localhost"
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as error:
        raise SendError(f"cannot connect to {endpoint} ({host}:{port}): {error}") from None


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
) -> tuple[int, int]:
    """Export the spans of `rows`; returns (rows, spans) sent. Raises SendError."""
    check_reachable(endpoint)
    exporter = _otlp_exporter(endpoint, protocol, headers, timeout)
    batch: list[Any] = []
    sent_rows = sent_spans = 0

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
            batch.extend(row_to_spans(row, resource=_resource(row, resource_attributes or {})))
            sent_rows += 1
            if progress is not None:
                progress(1)
            if len(batch) >= batch_size:
                flush()
        flush()
    finally:
        exporter.shutdown()
    return sent_rows, sent_spans


def send_files(paths: Iterable[str | os.PathLike[str]], **options: Any) -> tuple[int, int]:
    """`send_rows` over the rows of AgentTrace JSONL or Parquet files, streaming."""

    def rows() -> Iterable[Mapping[str, Any]]:
        for path in paths:
            yield from read_rows(Path(path))

    return send_rows(rows(), **options)
