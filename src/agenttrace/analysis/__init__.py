"""Analysis of AgentTrace files: `load` them as pandas DataFrames, `analyze`, and plot.

Needs the `analysis` extra (pandas, matplotlib). `agenttrace.load` is the short way in.
"""

from agenttrace.analysis.dataset import Dataset, analyze, combine, load, load_file, percentiles

__all__ = ["Dataset", "analyze", "combine", "load", "load_file", "percentiles"]
