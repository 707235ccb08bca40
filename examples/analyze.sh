#!/usr/bin/env bash
# Tables and plots over AgentTrace files (the README's commands).
set -euo pipefail
uv run agenttrace analyze runs/*.jsonl            # tables per file and combined; --json for programs
uv run agenttrace plots runs/*.jsonl --output-dir plots/
