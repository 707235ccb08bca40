"""The `agenttrace` command line: one module per command group, `main` the console script.

- `_app`: the group, the options and guards every command shares, the error format.
- `_render`: what the commands print (counts in words, tables).
- `demo`, `collect` (collect, replay), `files` (validate, convert), `analysis` (analyze, plots),
  `ingest`, `merge`, `send`, `view`, `fixture`: the commands, each registered on `main` when its
  module is imported.
"""

from __future__ import annotations

import importlib.util

if importlib.util.find_spec("click") is None:  # the command is the `cli` extra, not the library
    raise SystemExit("agenttrace: the command needs the cli extra: pip install 'agenttrace[cli]'")

from agenttrace.cli import (  # noqa: E402
    analysis,
    collect,
    demo,
    files,
    fixture,
    ingest,
    merge,
    send,
    view,
)
from agenttrace.cli._app import main  # noqa: E402

__all__ = ["main"]

# Imported for what they register on `main` (`--help` lists the commands by name).
_COMMAND_MODULES = (analysis, collect, demo, files, fixture, ingest, merge, send, view)

if __name__ == "__main__":  # pragma: no cover
    main()
