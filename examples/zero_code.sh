#!/usr/bin/env bash
# AgentTrace rows from an app with no tracing code (app.py), through opentelemetry-instrument.
set -euo pipefail
OTEL_TRACES_EXPORTER=agenttrace AGENTTRACE_OUTPUT=runs.jsonl opentelemetry-instrument python app.py
