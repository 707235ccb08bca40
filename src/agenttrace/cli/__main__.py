"""`python -m agenttrace.cli`: the `agenttrace` command, for environments without its script."""

from agenttrace.cli import main

main()
