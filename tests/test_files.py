"""AgentTrace files: torn lines, malformed input located by line, release files, the validator."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from opentelemetry.exporter.agenttrace import (
    AgentTraceFileError,
    JsonlWriter,
    ParquetWriter,
    iter_rows,
    read_rows,
    validate_row,
)
from opentelemetry.exporter.agenttrace.files import encode_row, partial_path
from test_roundtrip import RELEASE_ROW


def test_a_torn_last_line_is_cut_when_the_file_is_reopened(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    writer = JsonlWriter(path)
    writer.write_row(RELEASE_ROW)
    writer.close()
    with open(path, "ab") as handle:  # a process killed in the middle of a write
        handle.write(encode_row(RELEASE_ROW)[:100])
    assert len(list(read_rows(path))) == 1  # readers skip the torn tail
    writer = JsonlWriter(path)  # reopening for append repairs the file first
    writer.write_row(RELEASE_ROW)
    writer.close()
    lines = path.read_bytes().splitlines()
    assert len(lines) == 2 and all(json.loads(line) == RELEASE_ROW for line in lines)


def test_malformed_lines_are_located(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(RELEASE_ROW) + "\n{not json\n" + json.dumps(RELEASE_ROW) + "\n")
    with pytest.raises(AgentTraceFileError) as caught:
        list(read_rows(path))
    assert caught.value.where == "line 2" and str(path) in str(caught.value)
    path.write_text("[1, 2]\n")
    with pytest.raises(AgentTraceFileError, match="line 1: a row must be a JSON object"):
        list(read_rows(path))


def test_unknown_suffix_and_unreadable_parquet(tmp_path: Path) -> None:
    with pytest.raises(AgentTraceFileError, match="unknown file type"):
        list(read_rows(tmp_path / "rows.csv"))
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 nonsense")
    with pytest.raises(AgentTraceFileError, match="not a readable Parquet file"):
        list(read_rows(broken))
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"x": [1]}), other)
    with pytest.raises(AgentTraceFileError, match="missing AgentTrace columns"):
        list(read_rows(other))


def test_surrogates_still_give_a_valid_line(tmp_path: Path) -> None:
    row = copy.deepcopy(RELEASE_ROW)
    row["spans"][0]["tool_output"] = "bad byte: \udcff"
    path = tmp_path / "s.jsonl"
    writer = JsonlWriter(path)
    writer.write_row(row)
    writer.close()
    (back,) = read_rows(path)
    # Written as the text of its escape (as the instrumentation renders it): strict UTF-8 JSON
    # that pandas and Hugging Face `datasets` load, which a `\udcff` JSON escape is not.
    assert back["spans"][0]["tool_output"] == "bad byte: \\udcff"


def test_release_files_read_from_jsonl_and_parquet_streaming(tmp_path: Path) -> None:
    jsonl = tmp_path / "nl2bash_0_6B_20260328T133144Z.jsonl"
    rows = []
    for task_id in range(1200):
        row = copy.deepcopy(RELEASE_ROW)
        row["metadata"]["task_id"] = task_id
        rows.append(row)
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))  # the release's own formatting
    assert list(read_rows(jsonl)) == rows
    parquet = tmp_path / "train.parquet"
    writer = ParquetWriter(parquet, raw_file=jsonl.name, row_group_size=500)
    for row in read_rows(jsonl):
        writer.write_row(row)
        assert not parquet.exists()
    writer.close()
    assert not partial_path(parquet).exists()
    assert pq.ParquetFile(parquet).num_row_groups == 3
    numbers = [n for n, _ in iter_rows(parquet)]
    assert numbers == list(range(1, 1201))
    assert list(read_rows(parquet)) == rows


def test_validator_accepts_release_and_names_every_violation() -> None:
    assert validate_row(RELEASE_ROW) == []
    row = copy.deepcopy(RELEASE_ROW)
    del row["metadata"]["run_id"]
    row["metadata"]["task_id"] = "17"
    row["spans"][0]["telemetry"]["max_rss_bytes"] = -1
    row["spans"][1]["span_id"] = row["spans"][0]["span_id"]
    row["llm_steps"][0]["step_number"] = 0
    row["llm_steps"][1]["tool_calls"] = [{"name": "x", "arguments": "not a dict"}]
    row["trace_id"] = "has spaces"
    row["metadata"]["fixture_version"] = "short"
    fields = {v.field for v in validate_row(row)}
    assert fields == {
        "metadata.run_id",
        "metadata.task_id",
        "spans[0].telemetry.max_rss_bytes",
        "spans[1].span_id",
        "llm_steps[0].step_number",
        "llm_steps[1].tool_calls[0].arguments",
        "trace_id",
        "metadata.fixture_version",
    }


def test_validator_key_order_and_strict_extensions() -> None:
    reordered = {key: RELEASE_ROW[key] for key in reversed(list(RELEASE_ROW))}
    assert any("out of order" in v.message for v in validate_row(reordered))
    extended = copy.deepcopy(RELEASE_ROW)
    extended["spans"][0]["tool_call_id"] = "call_1"
    assert validate_row(extended) == []
    assert [v.field for v in validate_row(extended, strict=True)] == ["spans[0].tool_call_id"]
    assert validate_row([1]) and validate_row({})[0].message == "missing"
