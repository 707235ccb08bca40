#!/usr/bin/env bash
# Collect NL2Bash runs against a local OpenAI-compatible server (the README's commands).
set -euo pipefail
llama-server -m Qwen3-1.7B-Q4_K_M.gguf --jinja --port 8080 &        # or vLLM, Ollama, OpenAI
until curl -sf http://127.0.0.1:8080/health >/dev/null; do sleep 1; done   # the model is loaded
uv run agenttrace collect --dataset nl2bash -n 200 \
    --model qwen3-1.7b --base-url http://127.0.0.1:8080/v1 --temperature 0.6 \
    --output runs/nl2bash_1_7B.jsonl
