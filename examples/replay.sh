#!/usr/bin/env bash
# Re-drive recorded runs here, and build the NL2Bash fixture (the README's commands).
set -euo pipefail
uv run agenttrace replay runs/nl2bash_1_7B.jsonl     # re-drive recorded runs, re-execute their tools
uv run agenttrace fixture nl2bash-fixture           # build the NL2Bash fixture (or fixtures/nl2bash_fixture.py)
uv run agenttrace fixture nl2bash-fixture --check   # verify one
