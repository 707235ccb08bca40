"""SIGTERM: open runs become incomplete rows within 2 s, even in ContextThreadPoolExecutor workers,
and the process still dies of SIGTERM; an application's own handler is chained to; opting out."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from opentelemetry.exporter.agenttrace import read_rows, validate_row

ROWS_WITHIN_S = 2.0
EXIT_BOUND_S = 5.0  # configure()'s default otlp_timeout: the whole exit's bound

POOL_SCRIPT = textwrap.dedent(
    """
    import signal, sys, threading, time, agenttrace
    agenttrace.configure(output=sys.argv[1])
    main_runs = sys.argv[2] == "main-thread-run"
    started = threading.Barrier(4)
    META = {"dataset_name": "mbpp", "source": "t", "dataset_split": "t"}

    @agenttrace.tool
    def quick(i):
        return i

    @agenttrace.tool
    def slow(i):
        started.wait()
        time.sleep(60)

    @agenttrace.agent(metadata=META)
    def run(i):
        agenttrace.set_run_metadata(task_id=i, run_id=f"r{i}")
        quick(i)
        slow(i)

    pool = agenttrace.ContextThreadPoolExecutor(3)
    for i in (1, 2, 3):
        pool.submit(run, i)

    if main_runs:
        @agenttrace.agent(metadata=META)
        def main_run():
            agenttrace.set_run_metadata(task_id=0, run_id="r0")
            quick(0)
            started.wait()
            print("ready", flush=True)
            time.sleep(60)

        main_run()
    else:  # the script ends: the interpreter waits for the workers before any atexit hook
        started.wait()
        if sys.argv[2] == "main-masked":
            # SIGTERM now reaches another thread: the main thread's wait is not interrupted and
            # it never runs a Python handler, as when the signal lands just before it blocks.
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        print("ready", flush=True)
    """
)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTTRACE_"))}
    env.update(extra)
    return env


def _whole_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    text = path.read_text()
    return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]


def _rows_within(path: Path, count: int, seconds: float) -> list[dict]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rows = _whole_lines(path)
        if len(rows) >= count:
            return rows
        time.sleep(0.02)
    return _whole_lines(path)


@pytest.mark.parametrize("main", ["main-thread-run", "script-ended", "main-masked"])
def test_sigterm_writes_runs_busy_in_pool_workers(tmp_path: Path, main: str) -> None:
    """In "main-masked" the main thread cannot run our handler once it blocks: the wakeup fd's
    reader writes the rows, and the process exits with 128 + SIGTERM if it cannot die of it."""
    out = tmp_path / "runs.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-c", POOL_SCRIPT, str(out), main],
        env=_clean_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    expected = {0, 1, 2, 3} if main == "main-thread-run" else {1, 2, 3}
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        rows = _rows_within(out, len(expected), ROWS_WITHIN_S)
        assert len(rows) == len(expected), f"{len(rows)} rows {ROWS_WITHIN_S} s after SIGTERM"
        # A masked main thread that has not yet blocked still runs our handler and dies of it.
        died_of = (
            {-signal.SIGTERM, 128 + signal.SIGTERM} if main == "main-masked" else {-signal.SIGTERM}
        )
        assert process.wait(timeout=EXIT_BOUND_S + 5) in died_of
        assert time.monotonic() - signalled < EXIT_BOUND_S
    finally:
        if process.poll() is None:
            process.kill()
    rows = _whole_lines(out)
    assert {r["metadata"]["task_id"] for r in rows} == expected
    for row in rows:
        assert row["metadata"]["incomplete"] is True
        assert [s["tool_name"] for s in row["spans"]] == ["quick"]  # what had ended
        assert validate_row(row) == []
    assert list(read_rows(out.with_suffix(".parquet"))) == rows


CHAIN_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time, agenttrace
    out = sys.argv[1]

    def app_handler(signum, frame):
        with open(out) as f:
            print(f"app handler saw {f.read().count(chr(10))} rows", flush=True)
        os._exit(7)

    signal.signal(signal.SIGTERM, app_handler)  # the application's, installed first
    agenttrace.configure(output=out)

    @agenttrace.agent(metadata={"dataset_name": "mbpp", "source": "t", "dataset_split": "t",
                                "task_id": 0, "run_id": "r0"})
    def run():
        print("ready", flush=True)
        time.sleep(60)

    run()
    """
)


def test_sigterm_chains_to_the_applications_handler_after_writing(tmp_path: Path) -> None:
    out = tmp_path / "runs.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-c", CHAIN_SCRIPT, str(out)],
        env=_clean_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 7  # the application decided how to exit
        assert process.stdout.read().strip() == "app handler saw 1 rows"
    finally:
        if process.poll() is None:
            process.kill()
    (row,) = _whole_lines(out)
    assert row["metadata"]["incomplete"] is True


OPT_OUT_SCRIPT = textwrap.dedent(
    """
    import os, signal, agenttrace

    def state():
        handler = signal.getsignal(signal.SIGTERM)
        wakeup = signal.set_wakeup_fd(-1)  # there is no getter: take it and put it back
        if wakeup != -1:
            signal.set_wakeup_fd(wakeup)
        return ("default" if handler is signal.SIG_DFL else (
            "ignored" if handler is signal.SIG_IGN else "handled")) + (
            "+wakeup" if wakeup != -1 else "")

    seen = []
    agenttrace.configure(handle_signals=False)
    seen.append(state())
    agenttrace.configure()
    seen.append(state())
    agenttrace.configure(handle_signals=False)  # opting out later puts the old handler back
    seen.append(state())
    os.environ["AGENTTRACE_HANDLE_SIGNALS"] = "0"
    agenttrace.configure()
    seen.append(state())
    del os.environ["AGENTTRACE_HANDLE_SIGNALS"]
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    agenttrace.configure()  # an application that ignores SIGTERM keeps ignoring it
    seen.append(state())
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    reader, writer = os.pipe()
    os.set_blocking(writer, False)
    signal.set_wakeup_fd(writer)  # the application's (asyncio's) wakeup fd is left in place
    agenttrace.configure()
    seen.append(state())
    seen.append(str(signal.set_wakeup_fd(-1) == writer))
    print(" ".join(seen))
    """
)


def test_signal_handling_can_be_turned_off() -> None:
    result = subprocess.run(
        [sys.executable, "-c", OPT_OUT_SCRIPT],
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "default",
        "handled+wakeup",
        "default",
        "default",
        "ignored",
        "handled+wakeup",
        "True",
    ]


FORK_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time

    def terminated_in_the_window():
        # Runs before agenttrace's own fork hook: the child still shares the parent's wakeup fd.
        os.kill(os.getpid(), signal.SIGTERM)

    os.register_at_fork(after_in_child=terminated_in_the_window)
    import agenttrace
    agenttrace.configure(output=sys.argv[1])

    child = os.fork()
    if child == 0:
        time.sleep(30)
        os._exit(0)
    _, status = os.waitpid(child, 0)
    time.sleep(0.5)  # time for a stray wakeup byte to reach this process's reader

    @agenttrace.agent(metadata={"dataset_name": "mbpp", "source": "t", "dataset_split": "t",
                                "task_id": 0, "run_id": "r0"})
    def run():
        print("child", os.waitstatus_to_exitcode(status), flush=True)

    run()
    """
)


def test_sigterm_in_a_forked_childs_first_moments(tmp_path: Path) -> None:
    """The child dies of it (its handler ran before its fork hook), and the parent, whose
    wakeup fd the child still shared, goes on: its reader ignores what another process sent."""
    out = tmp_path / "runs.jsonl"
    result = subprocess.run(
        [sys.executable, "-c", FORK_SCRIPT, str(out)],
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["child", str(-signal.SIGTERM)]
    (row,) = _whole_lines(out)
    assert row["metadata"].get("incomplete") is not True
