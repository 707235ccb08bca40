"""Reading AgentTrace files as the published ones are read: pandas, Hugging Face `datasets`, the
exporter's own readers, and `agenttrace.load`. Reads what write_files.py wrote.
"""

import pandas as pd

rows = pd.read_json("runs/nl2bash.jsonl", lines=True)
flat = pd.read_parquet("runs/nl2bash.parquet")
from datasets import load_dataset  # Hugging Face

ds = load_dataset("parquet", data_files="runs/nl2bash.parquet")["train"]
print(len(rows), "rows (pandas, JSONL);", len(flat), "(pandas, Parquet);", len(ds), "(datasets)")

from opentelemetry.exporter.agenttrace import read_rows, validate_row
from opentelemetry.exporter.agenttrace.rows_to_spans import row_to_spans

for row in read_rows("runs/nl2bash.parquet"):  # JSONL or Parquet, streaming
    assert validate_row(row) == []  # every way the row breaks schema 0.3.0: none
    spans = row_to_spans(row)  # the run as OTel spans again: same ids, times, attributes
    print(row["trace_id"], [span.name for span in spans])

import agenttrace

data = agenttrace.load(["runs/nl2bash.jsonl", "runs/nl2bash.parquet"])  # ours or the release's
runs = data.traces  # one row per run: durations, tool time, estimated LLM time, tokens, counts
calls = data.spans  # one row per tool call: duration, exit code, CPU, peak RSS, disk I/O
steps = data.steps  # one row per model step: tokens, reasoning length, tool calls
print(len(runs), "runs;", len(calls), "tool calls")  # each run once, though in both files
