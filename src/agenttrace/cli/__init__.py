"""The `agenttrace` command line: one module per command group, `main` the console script.

- `_app`: the group, the options and guards every command shares, the error format.
- `_render`: what the commands print (counts in words, tables).
- `demo`, `collect` (collect, replay), `files` (validate, convert), `analysis` (analyze, plots),
  `send`, `fixture`: the commands, each registered on `main` when its module is imported.
"""

from __future__ import annotations

from agenttrace.cli import analysis, collect, demo, files, fixture, send
from agenttrace.cli._app import main

__all__ = ["main"]

# Imported for what they register on `main` (`--help` lists the commands by name).
_COMMAND_MODULES = (analysis, collect, demo, files, fixture, send)

if __name__ == "__main__":  # pragma: no cover
    main()
