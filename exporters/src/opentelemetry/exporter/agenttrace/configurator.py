"""Zero-code set-up that gives our exporter our synchronous processor, and touches nothing else.

`OTEL_TRACES_EXPORTER=agenttrace opentelemetry-instrument python app.py` lets the SDK build the
pipeline, and the SDK puts a BatchSpanProcessor in front of every exporter it names. In front of
ours that is the wrong processor: its queue (2,048 spans unless `OTEL_BSP_MAX_QUEUE_SIZE` says
otherwise) drops spans in a burst, and rows reach the file only after its delay. Raising that
variable would change every other BatchSpanProcessor of the process too.

`opentelemetry-instrument` runs one configurator (entry point group `opentelemetry_configurator`).
This one is the SDK's own, except that the AgentTrace exporter goes behind an
`AgentTraceSpanProcessor` sharing its files: each run's row is written the moment the run ends
and nothing is queued. Every other exporter keeps its BatchSpanProcessor, configured by the
environment as usual, and `os.environ` is left alone.

Only one configurator runs: if another package installs one too (opentelemetry-distro does), set
`OTEL_PYTHON_CONFIGURATOR=agenttrace` to choose this one. With the other configurator, or with an
SDK older than 1.39 (no `export_span_processor` hook), the exporter still works behind the SDK's
BatchSpanProcessor, with that processor's limits.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

from opentelemetry.exporter.agenttrace.exporter import (
    AgentTraceSpanExporter,
    AgentTraceSpanProcessor,
)
from opentelemetry.sdk import _configuration
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter


def export_span_processor(exporter: SpanExporter) -> SpanProcessor:
    """The processor for one exporter the SDK built: ours for ours, the SDK's default else."""
    if isinstance(exporter, AgentTraceSpanExporter):
        return AgentTraceSpanProcessor.for_exporter(exporter)
    return BatchSpanProcessor(exporter)


def _sdk_takes_export_processor() -> bool:
    try:
        parameters = inspect.signature(_configuration._initialize_components).parameters
    except (AttributeError, TypeError, ValueError):
        return False
    return "export_span_processor" in parameters


class AgentTraceConfigurator(_configuration._OTelSDKConfigurator):
    """The SDK's configurator, with our processor in front of our exporter (see the module)."""

    def _configure(self, **kwargs: Any) -> None:
        if (
            "export_span_processor" not in kwargs
            and not os.environ.get("OTEL_CONFIG_FILE")  # declarative: its own rules
            and _sdk_takes_export_processor()
        ):
            kwargs["export_span_processor"] = export_span_processor
        super()._configure(**kwargs)
