#!/usr/bin/env bash
# Collecting at scale on one machine: 8 runs at once over two servers, labelled as the release
# labels its rows, then one Hugging Face-ready dataset (the README's commands).
set -euo pipefail
llama-server -m Qwen3-1.7B-Q4_K_M.gguf --jinja --port 8081 --parallel 8 &   # a second server
until curl -sf http://127.0.0.1:8081/health >/dev/null; do sleep 1; done
uv run agenttrace collect --dataset nl2bash --release --concurrency 8 --model qwen3-1.7b \
    --base-url http://127.0.0.1:8080/v1 --base-url http://127.0.0.1:8081/v1 \
    --output runs/release/nl2bash.jsonl
uv run agenttrace validate --profile release runs/release/nl2bash.jsonl
uv run agenttrace merge runs/release/*.jsonl -o dataset/   # data/*.parquet and a dataset card
