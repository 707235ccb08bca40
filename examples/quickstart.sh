#!/usr/bin/env bash
# The README's two set-up commands: the demo, then the tests.
set -euo pipefail
uv run agenttrace demo
uv run pytest
