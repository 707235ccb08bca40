"""Deprecated: moved to `agenttrace.collection.tasks` (for one release more)."""

import sys
import warnings

import agenttrace.collection.tasks as _moved

warnings.warn(
    f"agenttrace.tasks moved to {_moved.__name__}; the old name goes in the next release",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _moved
