"""Deprecated: moved to `agenttrace.collection.reference_agent` (for one release more)."""

import sys
import warnings

import agenttrace.collection.reference_agent as _moved

warnings.warn(
    f"agenttrace.reference_agent moved to {_moved.__name__}; the old name goes in the next release",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _moved
