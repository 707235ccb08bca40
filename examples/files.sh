#!/usr/bin/env bash
# Validate and convert AgentTrace files (the README's commands).
set -euo pipefail
uv run agenttrace validate runs/*.jsonl runs/*.parquet      # FILE:LINE: FIELD: PROBLEM; exit 1 if invalid
uv run agenttrace convert runs/nl2bash.jsonl -o nl2bash.parquet   # and back; nothing left behind on failure
