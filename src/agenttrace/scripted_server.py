"""Deprecated: moved to `agenttrace.collection.scripted_server` (for one release more)."""

import sys
import warnings

import agenttrace.collection.scripted_server as _moved

warnings.warn(
    f"agenttrace.scripted_server moved to {_moved.__name__}; the old name goes in the next release",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _moved
