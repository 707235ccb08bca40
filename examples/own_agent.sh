#!/usr/bin/env bash
# Trace your own agent: run it, then check and analyse its rows (the README's commands).
set -euo pipefail
export OPENAI_BASE_URL=http://127.0.0.1:8080/v1 OPENAI_API_KEY=none   # any OpenAI-compatible server
uv run python examples/instrument_agent.py "Count the .txt files anywhere under /testbed."
uv run agenttrace validate runs/my_agent.jsonl   # every row passes the schema check
uv run agenttrace analyze runs/my_agent.jsonl    # runs, steps, tools, time, telemetry
