#!/usr/bin/env bash
# Live spans and existing files to Jaeger through the OpenTelemetry Collector (the README's commands).
set -euo pipefail
docker compose up -d
export OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318   # OTEL_EXPORTER_OTLP_PROTOCOL=grpc for 4317
uv run agenttrace demo --force                              # live: spans go out as the agent runs
uv run agenttrace send runs/*.jsonl runs/*.parquet          # or existing AgentTrace files
