#!/usr/bin/env bash
# Many hosts, one dataset: spans through the OpenTelemetry Collector fleet, then ingest
# (the README's commands).
set -euo pipefail
docker compose --profile fleet up -d fleet-agent fleet-gateway-1 fleet-gateway-2
export OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:5318   # on each host: its agent collector
uv run agenttrace demo --force                             # or your agents, configure()d as usual
uv run agenttrace ingest collector-output/fleet/gateway-1 collector-output/fleet/gateway-2 \
    -o runs/fleet.jsonl
uv run agenttrace validate runs/fleet.jsonl
