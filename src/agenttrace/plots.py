"""Deprecated: moved to `agenttrace.analysis.plots` (for one release more)."""

import sys
import warnings

import agenttrace.analysis.plots as _moved

warnings.warn(
    f"agenttrace.plots moved to {_moved.__name__}; the old name goes in the next release",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _moved
