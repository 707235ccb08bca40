"""Deprecated: moved to `agenttrace.collection.send` (for one release more)."""

import sys
import warnings

import agenttrace.collection.send as _moved

warnings.warn(
    f"agenttrace.send moved to {_moved.__name__}; the old name goes in the next release",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _moved
