"""The Parquet twin's Arrow tables, laid out from buffers: the same tables pyarrow's own
conversion makes, refusing what it refuses, and without importing pandas."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

pa = pytest.importorskip("pyarrow")

from opentelemetry.exporter.agenttrace._records import arrow_table, parquet_schema  # noqa: E402

SCHEMA = parquet_schema()
TEXT = st.none() | st.text(max_size=40)
INTEGER = st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
REAL = st.none() | st.floats(allow_nan=False) | st.integers(min_value=-(2**53), max_value=2**53)


def _record_strategy() -> Any:
    columns: dict[str, Any] = {}
    for field in SCHEMA:
        if field.type == pa.string():
            columns[field.name] = TEXT
        elif field.type == pa.int64():
            columns[field.name] = INTEGER
        else:
            columns[field.name] = REAL
    return st.fixed_dictionaries(columns)


@hypothesis_settings(max_examples=200, deadline=None)
@given(records=st.lists(_record_strategy(), max_size=6))
def test_the_same_table_as_pyarrows_own_conversion(records: list[dict[str, Any]]) -> None:
    ours = arrow_table(records, SCHEMA)
    theirs = pa.Table.from_pydict(
        {name: [record[name] for record in records] for name in SCHEMA.names}, schema=SCHEMA
    )
    assert ours.equals(theirs)
    ours.validate(full=True)


@pytest.mark.parametrize(
    ("column", "value"),
    [("prompt", b"\\udce9".decode("unicode_escape")), ("prompt", 3), ("task_id", "7"),
     ("task_id", 2**64), ("total_duration_ms", "fast")],
)  # fmt: skip
def test_values_pyarrow_refuses_are_refused(column: str, value: Any) -> None:
    record = dict.fromkeys(SCHEMA.names)
    record[column] = value
    with pytest.raises((TypeError, ValueError, OverflowError)):
        arrow_table([record], SCHEMA)


def test_writing_a_parquet_twin_never_imports_pandas(tmp_path: Any) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        import agenttrace
        agenttrace.configure(output={str(tmp_path / "runs.jsonl")!r})

        @agenttrace.agent(name="a")
        def run(prompt: str) -> str:
            return prompt

        for _ in range(3):
            run("hello")
        agenttrace.shutdown()
        print("pandas" in sys.modules)
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTTRACE_"))}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"  # 0.9 s saved at exit
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "runs.parquet").num_rows == 3
