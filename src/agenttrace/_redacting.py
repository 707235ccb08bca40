"""A safety net: spans from other instrumentations reach configure()'s exporters redacted.

agenttrace redacts its own values where it makes them (the invocation objects), before any
processor sees them. Spans from other instrumentations in the same process (the OpenAI
instrumentation, HTTP clients, the user's own tracer) carry whatever their authors put there. The
processors configure() installs sit behind `RedactingSpanProcessor`, which hands them a redacted
copy of each such span (name, attributes, status description, events, links) built with the
public `ReadableSpan` constructor. Spans of the `agenttrace` scope pass through untouched: they are
already redacted, and copying them would add to the per-call cost.

Not covered: the Resource (set once, by whoever built the provider), values a user sets through
the OpenTelemetry API on agenttrace's own spans, and what other processors on the same provider
(ones configure() did not install) see.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.exporter.agenttrace import semconv
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import Link, Status

from agenttrace import _settings
from agenttrace._redaction import Redactor

_logger = logging.getLogger(__name__)


def _redact_value(redactor: Redactor, key: str, value: Any) -> Any:
    if isinstance(value, str):
        return redactor(key, value)
    if isinstance(value, (tuple, list)) and any(isinstance(item, str) for item in value):
        return tuple(redactor(key, item) if isinstance(item, str) else item for item in value)
    return value


def _redact_attributes(
    redactor: Redactor, attributes: Mapping[str, Any] | None
) -> Mapping[str, Any] | None:
    """A redacted copy of `attributes` (the same object when nothing changes)."""
    if not attributes:
        return attributes
    redacted = {key: _redact_value(redactor, key, value) for key, value in attributes.items()}
    if all(redacted[key] is value for key, value in attributes.items()):
        return attributes
    bounded = BoundedAttributes(attributes=redacted, immutable=True)
    bounded.dropped = getattr(attributes, "dropped", 0)  # keep the count the SDK reported
    return bounded


def _bounded_like(original: Sequence[Any], items: list[Any]) -> Sequence[Any]:
    """`items` as a list that reports the dropped count `original` reported."""
    bounded = BoundedList.from_seq(None, items)
    bounded.dropped = getattr(original, "dropped", 0)
    return bounded


def redacted_span(span: ReadableSpan, redactor: Redactor) -> ReadableSpan:
    """A copy of `span` with every string redacted (`span` itself when nothing changes)."""
    name = redactor(semconv.SPAN_NAME, span.name)
    attributes = _redact_attributes(redactor, span.attributes)
    events = [
        Event(event.name, _redact_attributes(redactor, event.attributes), event.timestamp)
        for event in span.events
    ]
    links = [
        Link(link.context, _redact_attributes(redactor, link.attributes)) for link in span.links
    ]
    status = span.status
    if status.description:
        description = redactor(semconv.STATUS_DESCRIPTION, status.description)
        if description != status.description:
            status = Status(status.status_code, description)
    unchanged = (
        name == span.name
        and attributes is span.attributes
        and status is span.status
        and all(
            new.attributes is old.attributes for new, old in zip(events, span.events, strict=True)
        )
        and all(
            new.attributes is old.attributes for new, old in zip(links, span.links, strict=True)
        )
    )
    if unchanged:
        return span
    return ReadableSpan(
        name=name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes,
        events=_bounded_like(span.events, events),
        links=_bounded_like(span.links, links),
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class RedactingSpanProcessor(SpanProcessor):
    """Wraps a processor so that spans of other instrumentations reach it redacted.

    The redaction settings are read when each span ends, so a later configure() applies at once.
    """

    def __init__(self, processor: SpanProcessor) -> None:
        self._processor = processor

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self._processor.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        scope = span.instrumentation_scope
        if scope is None or scope.name != semconv.INSTRUMENTATION_SCOPE:
            redactor = _settings.current().redactor
            if redactor is not None:
                try:
                    span = redacted_span(span, redactor)
                except Exception:  # never pass on what could not be redacted
                    _logger.warning("agenttrace: dropped span %r: redacting it failed", span.name)
                    return
        self._processor.on_end(span)

    def shutdown(self) -> None:
        self._processor.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._processor.force_flush(timeout_millis)
