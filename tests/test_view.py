"""`agenttrace view`: a real Phoenix started, a file's runs sent to it, found through its API,
and the UI stopped by Ctrl-C, as the README's command does it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from opentelemetry.exporter.agenttrace import read_rows
from test_readme import EXAMPLES, _shims

from agenttrace.analysis.viewer import PhoenixServer, ViewerError, find_phoenix

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def phoenix_binary() -> Path:
    try:
        return find_phoenix(install=True)
    except ViewerError as error:
        if os.environ.get("CI"):  # CI promises a real backend: a missing one is a failure
            pytest.fail(str(error))
        pytest.skip(str(error))


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def test_view_shows_a_files_runs_in_phoenix_until_ctrl_c(
    phoenix_binary: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    (work / "runs").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTTRACE_"))}
    # Rows to look at: the write_files example's three runs.
    written = subprocess.run(
        [sys.executable, str(EXAMPLES / "write_files.py")],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert written.returncode == 0, written.stderr
    rows = list(read_rows(work / "runs" / "nl2bash.jsonl"))
    _shims(tmp_path / "shims")
    path = [str(tmp_path / "shims"), str(Path(sys.executable).parent), env.get("PATH", "")]
    env["PATH"] = os.pathsep.join(path)
    env["AGENTTRACE_PHOENIX_VENV"] = str(phoenix_binary.parent.parent)
    view = subprocess.Popen(
        ["bash", str(EXAMPLES / "view.sh")],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # Ctrl-C goes to the whole group, as from a terminal
    )
    try:
        assert view.stdout is not None and view.stderr is not None
        line = view.stdout.readline()  # printed once the runs are in
        assert "3 runs" in line and "project 'agenttrace'" in line, line + view.stderr.read()
        url = line.rsplit(": ", 1)[1].strip().removesuffix("/projects")
        ui = PhoenixServer(phoenix_binary, tmp_path, port=int(url.rsplit(":", 1)[1]))
        for row in rows:
            spans = ui.spans("agenttrace", row["trace_id"], expected=2)
            assert sorted(span["name"] for span in spans) == [
                "execute_tool bash",
                "invoke_agent nl2bash",
            ]
        assert _answers(f"{url}/healthz")
    finally:
        os.killpg(view.pid, signal.SIGINT)
        try:
            view.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(view.pid, signal.SIGKILL)
            raise
    assert view.returncode == 0, view.stderr.read() if view.stderr else ""
    deadline = time.monotonic() + 10
    while _answers(f"{url}/healthz") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _answers(f"{url}/healthz")  # the UI it started is gone


def test_view_without_phoenix_and_without_installing_says_so(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTTRACE_"))}
    env["AGENTTRACE_PHOENIX_VENV"] = str(tmp_path / "nowhere")
    env["PATH"] = str(Path(sys.executable).parent)  # no phoenix on it
    rows = tmp_path / "rows.jsonl"
    rows.write_text("")
    out = subprocess.run(
        [sys.executable, "-m", "agenttrace.cli", "view", str(rows), "--no-install"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert out.stderr.startswith("Error: Phoenix is not installed"), out.stderr
