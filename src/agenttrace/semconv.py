"""Every span and resource attribute key AgentTrace reads or writes: `import agenttrace.semconv`.

The keys are defined once, in the exporter distribution's
`opentelemetry.exporter.agenttrace.semconv` (which never imports `agenttrace`), and re-exported
here so that the instrumentation's users need not know the exporter's module path. Both names give
the same values: writer and reader cannot drift.
"""

from opentelemetry.exporter.agenttrace.semconv import *  # noqa: F403
