"""Validating AgentTrace files: every row, located by file and line (or row)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from opentelemetry.exporter.agenttrace.readers import (
    JSONL_SUFFIXES,
    PARQUET_SUFFIXES,
    AgentTraceFileError,
    _parse_line,
    iter_parquet,
)
from opentelemetry.exporter.agenttrace.schema import (
    PROFILE_DEFAULT,
    PROFILES,
    Violation,
    validate_row,
)

_logger = logging.getLogger(__name__)


def validate_file(
    path: str | os.PathLike[str],
    *,
    strict: bool = False,
    profile: str = PROFILE_DEFAULT,
    progress: Callable[[int], None] | None = None,
) -> Iterator[Violation]:
    """Every schema violation in a JSONL or Parquet file, each naming the file and line or row.

    Unlike the readers, it goes on past a malformed line, so one pass reports all of them.
    `strict` and `profile` are `validate_row`'s.
    """
    if profile not in PROFILES:  # before reading anything: a typo is not a file problem
        raise ValueError(f"unknown validation profile {profile!r}: use one of {PROFILES}")
    source = os.fspath(path)
    suffix = Path(path).suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        rows: Iterator[tuple[int, dict[str, Any] | AgentTraceFileError]] = _parquet_or_error(
            path, progress
        )
    elif suffix in JSONL_SUFFIXES:
        rows = _lines_or_errors(path, progress)
    else:
        yield Violation("file", "unknown file type: use .jsonl or .parquet", source)
        return
    for number, row in rows:
        if isinstance(row, AgentTraceFileError):
            yield Violation(row.where, row.message, source, number or None)
            continue
        for violation in validate_row(row, strict=strict, profile=profile):
            yield Violation(violation.field, violation.message, source, number)


def _lines_or_errors(
    path: str | os.PathLike[str], progress: Callable[[int], None] | None
) -> Iterator[tuple[int, dict[str, Any] | AgentTraceFileError]]:
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if progress is not None:
                progress(len(raw))
            if not raw.strip():
                continue
            try:
                row = _parse_line(path, number, raw)[1]
            except AgentTraceFileError as error:
                message = (
                    error.message if raw.endswith(b"\n") else "torn last line (interrupted write)"
                )
                yield number, AgentTraceFileError(path, "line", message)
                continue
            yield number, row


def _parquet_or_error(
    path: str | os.PathLike[str], progress: Callable[[int], None] | None
) -> Iterator[tuple[int, dict[str, Any] | AgentTraceFileError]]:
    try:
        yield from iter_parquet(path, progress=progress)
    except AgentTraceFileError as error:
        yield 0, error
