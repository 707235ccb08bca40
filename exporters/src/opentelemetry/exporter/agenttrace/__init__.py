"""AgentTrace: an OpenTelemetry exporter that writes finished agent runs as AgentTrace rows.

This distribution never imports `agenttrace` (the instrumentation): any OpenTelemetry application
that emits GenAI-convention spans can use it on its own.
"""

from opentelemetry.exporter.agenttrace import semconv
from opentelemetry.exporter.agenttrace.version import __version__

__all__ = ["semconv", "__version__"]
