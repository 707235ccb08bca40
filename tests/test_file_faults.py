"""Files stay readable whatever happens to the disk or to other writers of the same output.

A full disk mid-row, a last line torn by a kill or merely missing its newline, several processes
(or a forked child) sharing one output, partial files left by dead processes, and values no JSON
encoder takes as they are: the JSONL stays strict JSON that every reader loads, and the Parquet
twin is produced, valid, with every row.
"""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.json as pa_json
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.agenttrace import JsonlWriter, RowFiles, read_rows
from opentelemetry.exporter.agenttrace.files import (
    encode_row,
    partial_path,
    validate_file,
)
from opentelemetry.exporter.agenttrace.writers import ParquetWriter
from test_roundtrip import RELEASE_ROW

import agenttrace

CHILD_TIMEOUT = 60
Spawn = Callable[..., "subprocess.Popen[str]"]


def _row(task_id: int, **metadata: Any) -> dict[str, Any]:
    row = copy.deepcopy(RELEASE_ROW)
    row["trace_id"] = f"{task_id + 1:032x}"
    row["metadata"]["task_id"] = task_id
    row["metadata"].update(metadata)
    return row


def _strict_json(line: bytes) -> Any:
    """Parse as strict JSON: UTF-8, no NaN/Infinity."""

    def refuse(constant: str) -> None:
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(line.decode("utf-8"), parse_constant=refuse)


def _assert_readable_everywhere(path: Path, rows: int) -> None:
    """The JSONL loads with our readers, the validator, pandas and Arrow (what `datasets` uses)."""
    assert len(list(read_rows(path))) == rows
    assert list(validate_file(path)) == []
    assert len(pd.read_json(path, lines=True)) == rows
    assert pa_json.read_json(path).num_rows == rows
    for line in path.read_bytes().splitlines():
        _strict_json(line)


def _spawn(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """`_spawn` for a test: whatever it started and is still running at the end is killed."""
    started: list[subprocess.Popen[str]] = []

    def start(script: str, *args: str) -> subprocess.Popen[str]:
        started.append(_spawn(script, *args))
        return started[-1]

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def _finish(process: subprocess.Popen[str]) -> str:
    try:
        out, _ = process.communicate(timeout=CHILD_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    return out


# --- A full disk mid-row ------------------------------------------------------------------------

DISK_FULL_CHILD = """
    import json, os, resource, sys
    import agenttrace
    from opentelemetry.exporter.agenttrace import AgentTraceSpanProcessor

    out = sys.argv[1]
    processor = AgentTraceSpanProcessor(out, parquet=False)
    agenttrace.configure(span_processors=[processor])

    @agenttrace.tool
    def echo(text: str) -> str:
        return text

    @agenttrace.agent(metadata={"dataset_name": "t", "source": "t", "dataset_split": "t",
                                "task_id": 0, "run_id": "r"})
    def run(prompt: str) -> str:
        return echo(prompt)

    run("small")
    first = os.path.getsize(out)
    # Room for about one more small row: the big one below is cut after a partial write.
    resource.setrlimit(resource.RLIMIT_FSIZE, (2 * first + 200, resource.RLIM_INFINITY))
    run("x" * 50_000)
    run("small")
    # Now the file is at the limit: a write of nothing at all fails too (EFBIG).
    resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(out), resource.RLIM_INFINITY))
    run("small")
    stats = processor.stats.as_dict()
    dropped = getattr(processor.files, "dropped_rows", None)
    print(json.dumps({"stats": stats, "dropped_rows": dropped}))
"""


def test_a_row_that_does_not_fit_is_rolled_back_and_later_rows_land(
    tmp_path: Path, spawn: Spawn
) -> None:
    out = tmp_path / "runs.jsonl"
    report = json.loads(_finish(spawn(DISK_FULL_CHILD, str(out))).splitlines()[-1])
    assert out.read_bytes().endswith(b"\n")
    _assert_readable_everywhere(out, rows=2)
    assert report["dropped_rows"] == 2  # the big row (short write) and the last (EFBIG)
    assert report["stats"]["rows"] == 2 and report["stats"]["dropped_spans"] == 4
    assert report["stats"]["dropped_rows"] == 2
    assert [row["prompt"] for row in read_rows(out)] == ["small", "small"]
    assert len(agenttrace.load([out]).traces) == 2


# --- The torn-tail repair --------------------------------------------------------------------


def test_a_whole_last_row_without_its_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    path.write_bytes(encode_row(_row(0)) + encode_row(_row(1)).rstrip(b"\n"))
    writer = JsonlWriter(path)
    writer.write_row(_row(2))
    writer.close()
    assert [row["metadata"]["task_id"] for row in read_rows(path)] == [0, 1, 2]
    _assert_readable_everywhere(path, rows=3)


MID_LINE_CHILD = """
    import fcntl, os, sys
    line = sys.stdin.buffer.readline()
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a writer in the middle of its write
    os.write(fd, line[:100])
    print("half", flush=True)
    sys.stdin.readline()
    os.write(fd, line[100:])
    fcntl.flock(fd, fcntl.LOCK_UN)
"""


def test_the_repair_never_cuts_a_line_another_process_is_writing(
    tmp_path: Path, spawn: Spawn
) -> None:
    path = tmp_path / "runs.jsonl"
    path.write_bytes(encode_row(_row(0)))
    child = spawn(MID_LINE_CHILD, str(path))
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(encode_row(_row(1)).decode())
    child.stdin.flush()
    assert child.stdout.readline().strip() == "half"
    opened: list[JsonlWriter] = []
    opener = threading.Thread(target=lambda: opened.append(JsonlWriter(path)))
    opener.start()
    time.sleep(0.3)  # long enough for an opener that does not wait to cut the half line
    child.stdin.write("go\n")
    child.stdin.flush()
    _finish(child)
    opener.join(timeout=CHILD_TIMEOUT)
    (writer,) = opened
    writer.write_row(_row(2))
    writer.close()
    assert [row["metadata"]["task_id"] for row in read_rows(path)] == [0, 1, 2]


REOPEN_CHILD = """
    import json, sys
    from opentelemetry.exporter.agenttrace import JsonlWriter
    path, worker, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    row = json.loads(sys.stdin.readline())
    for i in range(count):  # open (and so repair) the file again for every row
        row["metadata"]["task_id"] = worker * 1000 + i
        writer = JsonlWriter(path)
        writer.write_row(row)
        writer.close()
"""


def test_processes_opening_one_file_over_and_over_lose_no_row(tmp_path: Path, spawn: Spawn) -> None:
    path = tmp_path / "runs.jsonl"
    children = [spawn(REOPEN_CHILD, str(path), str(worker), "60") for worker in range(3)]
    row = _row(0)
    row["prompt"] = "p" * 300_000  # a write that spans many pages is seen growing by others
    for child in children:
        assert child.stdin is not None
        child.stdin.write(json.dumps(row) + "\n")
        child.stdin.flush()
    for child in children:
        _finish(child)
    task_ids = sorted(row["metadata"]["task_id"] for row in read_rows(path))
    assert task_ids == [w * 1000 + i for w in range(3) for i in range(60)]


# --- Sharing an output: the Parquet twin ---------------------------------------------------


SHARING_CHILD = """
    import json, sys, time
    from opentelemetry.exporter.agenttrace import RowFiles
    path, worker, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    row = json.loads(sys.stdin.readline())
    files = RowFiles(path, parquet=True)
    print("open", flush=True)
    sys.stdin.readline()  # every process has the output open before anyone writes
    for i in range(count):
        row["trace_id"] = f"{worker * 1000 + i + 1:032x}"
        files.write(row)
        if i % 40 == 0:
            files.flush()  # row groups go to the partial file as they fill
        time.sleep(0.0005)  # the processes' rows interleave
    files.close()
    print(json.dumps({"errors": files.errors}), flush=True)
"""


@pytest.mark.slow  # each process's first Arrow table imports pandas: about a second apiece
def test_processes_sharing_an_output_get_every_row_in_a_valid_parquet(
    tmp_path: Path, spawn: Spawn
) -> None:
    out = tmp_path / "runs.jsonl"
    children = [spawn(SHARING_CHILD, str(out), str(worker), "100") for worker in range(3)]
    for child in children:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(json.dumps(_row(0)) + "\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "open"
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    for child in children:
        assert json.loads(_finish(child).splitlines()[-1]) == {"errors": 0}
    expected = sorted(f"{w * 1000 + i + 1:032x}" for w in range(3) for i in range(100))
    assert sorted(row["trace_id"] for row in read_rows(out)) == expected
    parquet = out.with_suffix(".parquet")
    assert sorted(pq.read_table(parquet).column("trace_id").to_pylist()) == expected
    assert list(validate_file(parquet)) == []
    assert not list(tmp_path.glob(".*.partial"))


def test_a_forked_child_never_writes_into_the_parents_parquet(tmp_path: Path) -> None:
    out = tmp_path / "runs.jsonl"
    files = RowFiles(out, parquet=True)
    for task_id in range(3):
        files.write(_row(task_id))
    pid = os.fork()
    if pid == 0:  # the child: write through the inherited files, close them, exit
        code = 1
        try:
            for task_id in range(10, 15):
                files.write(_row(task_id))
            files.close()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    files.write(_row(3))
    files.close()
    assert files.errors == 0
    expected = [0, 1, 2, 10, 11, 12, 13, 14, 3]
    assert [row["metadata"]["task_id"] for row in read_rows(out)] == expected
    parquet = out.with_suffix(".parquet")
    assert sorted(pq.read_table(parquet).column("task_id").to_pylist()) == sorted(expected)


LOCKED_PARTIAL_CHILD = """
    import fcntl, os, sys
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a live writer's partial file
    print("locked", flush=True)
    sys.stdin.readline()
"""


def test_partial_files_of_dead_processes_are_removed_and_live_ones_kept(
    tmp_path: Path, spawn: Spawn
) -> None:
    out = tmp_path / "runs.jsonl"
    parquet = out.with_suffix(".parquet")
    dead = parquet.with_name(f".{parquet.name}.999999999.partial")
    dead.write_bytes(b"PAR1 half a file")
    live = parquet.with_name(f".{parquet.name}.999999998-1.partial")
    child = spawn(LOCKED_PARTIAL_CHILD, str(live))
    assert child.stdout is not None and child.stdout.readline().strip() == "locked"
    try:
        files = RowFiles(out, parquet=True)
        assert not dead.exists() and live.exists()
        files.write(_row(0))
        assert partial_path(parquet).exists()  # this process's own, from its first row
    finally:
        assert child.stdin is not None
        child.stdin.write("done\n")
        child.stdin.flush()
        _finish(child)
    files.close()
    assert [r["trace_id"] for r in read_rows(parquet)] == [_row(0)["trace_id"]]


# --- Values no encoder takes as they are ------------------------------------------------------


def test_a_lone_surrogate_in_a_run_id_does_not_cost_the_parquet_twin(tmp_path: Path) -> None:
    out = tmp_path / "runs.jsonl"
    files = RowFiles(out, parquet=True)
    files.write(_row(0))
    files.write(_row(1, run_id="run-\udcff"))
    files.write(_row(2))
    files.close()
    assert files.errors == 0
    _assert_readable_everywhere(out, rows=3)
    table = pq.read_table(out.with_suffix(".parquet"))
    run_id = RELEASE_ROW["metadata"]["run_id"]
    assert table.column("run_id").to_pylist() == [run_id, "run-\\udcff", run_id]


def test_nan_surrogates_and_foreign_values_never_drop_a_row(tmp_path: Path) -> None:
    out = tmp_path / "runs.jsonl"
    files = RowFiles(out, parquet=True)
    cycle: list[Any] = []
    cycle.append(cycle)
    odd = _row(
        0,
        score=math.nan,
        note="caf\udce9",
        big=2**70,
        raw=b"\xff",
        tags=frozenset(["a"]),
        cycle=cycle,
        worst=-math.inf,
    )
    odd["metadata"][(1, 2)] = "tuple key"
    odd["prompt"] = 42  # a foreign span's prompt need not be text
    files.write(odd)
    files.write(_row(1))
    files.close()
    assert files.errors == 0 and files.dropped_rows == 0
    (line, _) = out.read_bytes().splitlines()
    metadata = _strict_json(line)["metadata"]
    assert metadata["score"] is None and metadata["worst"] is None
    assert metadata["note"] == "caf\\udce9" and metadata["big"] == str(2**70)
    assert metadata["raw"] == "b'\\xff'" and metadata["tags"] == ["a"]
    assert metadata["cycle"] == ["<cycle>"] and metadata["(1, 2)"] == "tuple key"
    assert len(pd.read_json(out, lines=True)) == 2
    table = pq.read_table(out.with_suffix(".parquet"))
    assert table.column("prompt").to_pylist()[0] == "42"
    assert json.loads(table.column("metadata_json").to_pylist()[0])["note"] == "caf\\udce9"


surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
awkward_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(),  # NaN and the infinities too
    st.text(alphabet=st.one_of(st.characters(), surrogates), max_size=12),
    st.binary(max_size=6),
)
awkward_values = st.recursive(
    awkward_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(
            st.one_of(st.text(max_size=6), st.integers(), st.none()), inner, max_size=4
        ),
    ),
    max_leaves=16,
)


@settings(max_examples=200, deadline=None)
@given(awkward_values)
def test_encoding_any_value_gives_one_line_of_strict_json(value: Any) -> None:
    row = _row(0, extra=value)
    line = encode_row(row)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    back = _strict_json(line)
    assert back["trace_id"] == row["trace_id"] and "extra" in back["metadata"]


def test_a_foreign_span_with_nan_and_surrogates_becomes_a_row(tmp_path: Path) -> None:
    from opentelemetry.exporter.agenttrace import AgentTraceSpanProcessor, semconv
    from opentelemetry.sdk.trace import TracerProvider

    out = tmp_path / "runs.jsonl"
    processor = AgentTraceSpanProcessor(out, parquet=True)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("not-agenttrace")
    with tracer.start_as_current_span("invoke_agent other") as root:
        root.set_attribute(semconv.GEN_AI_OPERATION_NAME, "invoke_agent")
        root.set_attribute(semconv.METADATA_PREFIX + "run_id", "run-\udcff")
        root.set_attribute(semconv.METADATA_PREFIX + "score", math.nan)
        with tracer.start_as_current_span("execute_tool t") as tool:
            tool.set_attribute(semconv.GEN_AI_OPERATION_NAME, "execute_tool")
    processor.shutdown()
    assert processor.stats.rows == 1 and processor.stats.dropped_spans == 0
    (line,) = out.read_bytes().splitlines()
    metadata = _strict_json(line)["metadata"]
    assert metadata["run_id"] == "run-\\udcff" and metadata["score"] is None
    assert pa_json.read_json(out).num_rows == 1
    table = pq.read_table(out.with_suffix(".parquet"))
    assert table.column("run_id").to_pylist() == ["run-\\udcff"]


def _blocking_groups(writer: Any, fail: bool = False) -> tuple[threading.Event, threading.Event]:
    """Make `writer`'s next row group wait (in whichever thread builds it) until released, and
    with `fail`, its write fail as on a full disk."""
    entered, release = threading.Event(), threading.Event()
    build = writer._table_of

    def held(records: list) -> Any:
        entered.set()
        release.wait(10)
        return build(records)

    def full(table: Any) -> None:
        raise OSError("no space left on device")

    writer._table_of = held
    if fail:
        writer._writer.write_table = full
    return entered, release


def test_the_thread_that_fills_a_row_group_does_not_wait_for_it(tmp_path: Path) -> None:
    out = tmp_path / "runs.parquet"
    writer = ParquetWriter(out, row_group_size=2)
    entered, release = _blocking_groups(writer)
    writer.write_row(_row(0))
    started = time.monotonic()
    writer.write_row(_row(1))  # fills the group: it is built and written elsewhere
    assert entered.wait(10)
    assert time.monotonic() - started < 5, "the row group was written in the caller's thread"
    writer.write_row(_row(2))
    release.set()
    writer.close()
    assert [row["metadata"]["task_id"] for row in read_rows(out)] == [0, 1, 2]


def test_a_row_group_that_fails_in_the_background_is_reported_and_counted(tmp_path: Path) -> None:
    writer = ParquetWriter(tmp_path / "runs.parquet", row_group_size=2)
    entered, release = _blocking_groups(writer, fail=True)
    writer.write_row(_row(0))
    writer.write_row(_row(1))
    assert entered.wait(10)
    release.set()
    writer.stop_taking_rows()  # waits for the group: the count is final, nothing raised yet
    assert writer.lost_rows == 2
    with pytest.raises(OSError, match="no space left"):
        writer.flush()  # the next caller hears of it (RowFiles then rebuilds from the JSONL)
    writer.abort()
    assert not (tmp_path / "runs.parquet").exists()


def test_the_twin_is_rebuilt_when_a_background_row_group_failed(tmp_path: Path) -> None:
    out = tmp_path / "runs.jsonl"
    files = RowFiles(out, parquet=True)
    files.write(_row(0))  # the twin opens with the first row
    twin = files._parquet
    assert twin is not None
    twin._row_group_size = 2
    entered, release = _blocking_groups(twin, fail=True)
    files.write(_row(1))
    assert entered.wait(10)
    release.set()
    files.write(_row(2))
    files.close()
    assert [row["metadata"]["task_id"] for row in read_rows(out.with_suffix(".parquet"))] == [
        0,
        1,
        2,
    ]
