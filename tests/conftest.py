"""Shared fixtures: one global TracerProvider per test process, a fresh in-memory exporter per test."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import agenttrace
from agenttrace import _settings

sys.path.insert(0, os.path.dirname(__file__))


class Spans:
    """Finished spans of the current test, with small lookup helpers."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self.exporter = exporter

    def all(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.all() if span.name == name]

    def one(self, name: str) -> ReadableSpan:
        found = self.named(name)
        assert len(found) == 1, f"expected one {name!r} span, got {[s.name for s in self.all()]}"
        return found[0]


@pytest.fixture
def configure_spans() -> Iterator[object]:
    """Call with configure() keyword arguments; returns a Spans collector for the test."""

    def _configure(**kwargs: Any) -> Spans:
        exporter = InMemorySpanExporter()
        extra = list(kwargs.pop("span_processors", []))
        agenttrace.configure(span_processors=[SimpleSpanProcessor(exporter), *extra], **kwargs)
        return Spans(exporter)

    yield _configure
    _settings.replace(None)


@pytest.fixture
def spans(configure_spans) -> Spans:
    """Spans recorded with the default settings (content on, precise telemetry)."""
    return configure_spans()
