#!/usr/bin/env bash
# AgentTrace files in a local trace UI, no Docker needed (the README's command).
set -euo pipefail
uv run agenttrace view runs/nl2bash.jsonl      # a local Phoenix with these runs; Ctrl-C stops it
