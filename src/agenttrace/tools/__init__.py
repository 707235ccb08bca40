"""Instrumented subprocess helpers: children whose own rusage is charged to the tool call.

`Popen` and `run` mirror `subprocess.Popen` and `subprocess.run` (`agenttrace.tools.run` is a
subprocess call, not an agent run); `_spawner` starts children from a small helper process so
their peak RSS is their own.
"""

from agenttrace.tools.subprocess import Popen, run

__all__ = ["Popen", "run"]
