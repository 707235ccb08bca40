"""Every README snippet is a file in examples/ (or a benchmark), and the tests run those files.

Each code block in the README is preceded by a marker naming the file it comes from
(`<!-- examples/collect.sh -->`); the block's lines must be a contiguous run of that file's lines,
so the README cannot drift from code that runs. The examples then run here as a user runs them,
in a fresh directory, with three stand-ins on PATH for what this machine lacks, each the closest
real thing:

* `llama-server`: our scripted OpenAI-compatible server process, on the port the command names;
* `docker compose up -d`: the compose file checked by the real Compose binary, and the OTLP
  receiver of these tests listening where the collector would (4318);
* `uv run X`: X from the environment running these tests (what `uv run` resolves to).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.agenttrace import read_rows
from opentelemetry.exporter.agenttrace.schema import claims_release
from opentelemetry.exporter.agenttrace.validation import validate_file
from otlp_receiver import OTLPReceiver

from agenttrace.collection.scripted_server import ScriptedModelServer, ScriptResponder
from agenttrace.collection.tasks import DATASETS, load_tasks, scripted_steps

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
MARKER = re.compile(r"<!-- ((?:examples|benchmarks)/[\w.]+)(?: [^>]*)? -->")
BLOCK = re.compile(r"(?:^(<!--[^\n]*-->)\n)?^```(\w+)\n(.*?)^```$", re.M | re.S)


def _blocks() -> list[tuple[str | None, str, str]]:
    """(marker, language, code) of every fenced block with a language."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return [(m.group(1), m.group(2), m.group(3)) for m in BLOCK.finditer(readme)]


def _contains_lines(text: str, block: str) -> bool:
    lines, wanted = text.splitlines(), block.rstrip("\n").splitlines()
    return any(lines[i : i + len(wanted)] == wanted for i in range(len(lines) - len(wanted) + 1))


def test_every_readme_code_block_comes_from_a_file_that_a_test_runs() -> None:
    blocks = _blocks()
    assert len(blocks) >= 15
    for marker, language, code in blocks:
        if language == "text":  # a diagram, not something to run
            continue
        assert marker is not None, f"a {language} block has no <!-- file --> marker:\n{code}"
        match = MARKER.fullmatch(marker)
        assert match, f"unreadable marker {marker!r}"
        path = REPO / match.group(1)
        assert path.is_file(), f"{marker} names a file that does not exist"
        if path.parent == EXAMPLES:
            text = path.read_text(encoding="utf-8")
            assert _contains_lines(text, code), f"the README block is not in {path.name}:\n{code}"
        else:  # a benchmark: the block runs it, and tests/test_benchmarks.py runs it too
            assert code.startswith(f"uv run python benchmarks/{path.name}"), code
            assert path.name in (REPO / "tests" / "test_benchmarks.py").read_text()


def test_every_example_is_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for path in sorted(EXAMPLES.iterdir()):
        assert f"examples/{path.name}" in readme, f"{path.name} is not shown in the README"


def test_a_block_that_drifts_from_its_file_is_caught() -> None:
    text = (EXAMPLES / "files.sh").read_text()
    block = "uv run agenttrace validate runs/*.jsonl\n"
    assert not _contains_lines(text, block)
    assert _contains_lines(text, text.splitlines()[-1] + "\n")


# --- the Python examples that talk to a model -----------------------------------------------
@pytest.fixture(scope="module")
def model_server() -> Iterator[ScriptedModelServer]:
    scripts: dict[str, Any] = {}
    for dataset in DATASETS:
        scripts.update(scripted_steps(dataset))
    with ScriptedModelServer(ScriptResponder(scripts), model="qwen3-8b") as server:
        yield server


def _example_env(tmp_path: Path, server: ScriptedModelServer, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTTRACE_"))}
    env.update(
        OPENAI_BASE_URL=server.base_url,
        OPENAI_API_KEY="none",
        AGENTTRACE_OUTPUT=str(tmp_path / "runs" / "example.jsonl"),
        **extra,
    )
    return env


NL2BASH_TASK = load_tasks("nl2bash")[0]
# Examples that name their output themselves (the others follow AGENTTRACE_OUTPUT).
OUTPUTS = {"instrument_agent.py": "runs/my_agent.jsonl"}


def _scripted_commands(prompt: str) -> list[str]:
    steps = scripted_steps("nl2bash")[prompt]
    return [
        call["arguments"]["command"]
        for step in steps
        for call in step.get("tool_calls") or []
        if call["name"] == "bash"
    ]


@pytest.mark.parametrize(
    ("example", "steps", "ours"),
    [
        ("instrument_agent.py", 2, True),
        ("invocation_objects.py", 1, True),
        ("smolagents_agent.py", 2, True),
        ("openai_agents_agent.py", 2, True),
        # Another project's spans: no call ids on its tool spans, no OS telemetry.
        ("openinference_agent.py", 2, False),
    ],
)
def test_an_example_agent_makes_valid_rows_with_the_commands_the_model_asked_for(
    tmp_path: Path, model_server: ScriptedModelServer, example: str, steps: int, ours: bool
) -> None:
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / example), NL2BASH_TASK.prompt],
        env=_example_env(tmp_path, model_server),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    written = OUTPUTS.get(example, "runs/example.jsonl")
    rows = list(read_rows(tmp_path / written))
    assert len(rows) == 1
    (row,) = rows
    assert row["prompt"] == NL2BASH_TASK.prompt
    assert len(row["llm_steps"]) == steps
    commands = [span["tool_input"] for span in row["spans"] if span["tool_name"] == "bash"]
    assert commands == [f"kwargs={{'command': {c!r}}}" for c in _scripted_commands(row["prompt"])]
    if ours:
        assert all(span["telemetry"]["max_rss_bytes"] > 0 for span in row["spans"])
        assert row["llm_steps"][0]["tool_calls"][0]["id"] == row["spans"][0]["tool_call_id"]
    assert list(validate_file(tmp_path / written)) == []
    assert list(validate_file((tmp_path / written).with_suffix(".parquet"))) == []
    assert not claims_release(row)  # the project's own label, not the release's
    # The release's rules are there when asked for: this row is no release row.
    release = {v.field for v in validate_file(tmp_path / written, profile="release")}
    assert "metadata.collector_version" in release


def test_the_openai_client_example_records_both_steps_alike(
    tmp_path: Path, model_server: ScriptedModelServer
) -> None:
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "openai_client.py"), NL2BASH_TASK.prompt],
        env=_example_env(tmp_path, model_server),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    (row,) = read_rows(tmp_path / "runs" / "example.jsonl")
    plain, streamed = row["llm_steps"]
    for key in ("model_output", "reasoning_content", "tool_calls", "input_tokens", "output_tokens"):
        assert plain[key] == streamed[key], key
    assert plain["tool_calls"][0]["name"] == "bash" and plain["output_tokens"] > 0


# --- the shell examples, in the README's order, in one working directory ----------------------
def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        # As the servers bind: connections of an earlier run in TIME_WAIT do not block the port.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _shims(directory: Path) -> None:
    """`uv`, `llama-server` and `docker` for this machine (see the module docstring)."""
    directory.mkdir()
    python = sys.executable
    scripts = {
        "uv": """
            import os, sys
            if sys.argv[1:2] != ["run"] or len(sys.argv) < 3:
                sys.exit("this uv stand-in only runs `uv run COMMAND`")
            os.execvp(sys.argv[2], sys.argv[2:])
            """,
        "llama-server": f"""
            import os, sys
            port = sys.argv[sys.argv.index("--port") + 1]
            with open(os.environ["SHIM_PIDS"], "a") as pids:
                print(os.getpid(), file=pids)
            # A server started with `&` must not hold the script's output open (as a daemon would).
            log = os.open(os.environ["SHIM_PIDS"] + ".log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            os.dup2(log, 1)
            os.dup2(log, 2)
            os.execv({python!r}, [{python!r}, "-m", "agenttrace.collection.scripted_server",
                                  "--port", port, "--model", "qwen3-1.7b"])
            """,
        "docker": f"""
            import os, pathlib, socket, subprocess, sys, time
            args = sys.argv[1:]
            fleet = args[:5] == ["compose", "--profile", "fleet", "up", "-d"]
            if args != ["compose", "up", "-d"] and not fleet:
                sys.exit("this docker stand-in only runs `docker compose [--profile fleet] up -d`")
            import compose
            binary = pathlib.Path(compose.__file__).parent / "docker-compose"
            compose_file = {str(REPO / "docker-compose.yml")!r}
            profile = ["--profile", "fleet"] if fleet else []
            checked = subprocess.run([str(binary), "-f", compose_file, *profile, "config", "-q"])
            if checked.returncode or not fleet:
                sys.exit(checked.returncode)
            # The fleet's collectors: the stand-in, where the agent collector listens.
            standin = subprocess.Popen(
                [{python!r}, {str(REPO / "tests" / "fleet_standin.py")!r}, "--port", "5318",
                 "--out", "collector-output/fleet"],
                stdout=subprocess.DEVNULL, stderr=open("fleet-standin.log", "w"),
            )
            with open(os.environ["SHIM_PIDS"], "a") as pids:
                print(standin.pid, file=pids)
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", 5318), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.1)
            """,
    }
    for name, body in scripts.items():
        path = directory / name
        path.write_text(f"#!{python}\n" + textwrap.dedent(body))
        path.chmod(0o755)


def _run_example(name: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    path = EXAMPLES / name
    command = ["bash", str(path)] if name.endswith(".sh") else [sys.executable, str(path)]
    out = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"{name} failed:\n{out.stdout}\n{out.stderr}"
    return out


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_readme_commands_run_word_for_word(tmp_path: Path) -> None:
    for port in (8080, 8081, 4318, 5318):
        if not _port_free(port):
            pytest.skip(f"port {port} is taken here, and the README's commands name it")
    work, pids = tmp_path / "work", tmp_path / "pids"
    work.mkdir()
    for app in ("app.py",):  # `python app.py` runs the app in the current directory
        (work / app).write_text((EXAMPLES / app).read_text())
    _shims(tmp_path / "shims")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTTRACE_"))}
    path = [str(tmp_path / "shims"), str(Path(sys.executable).parent), env.get("PATH", "")]
    env.update(PATH=os.pathsep.join(path), SHIM_PIDS=str(pids))
    receiver = OTLPReceiver(http_port=4318).start()
    try:
        _run_example("collect.sh", work, env)
        collected = _rows(work / "runs" / "nl2bash_1_7B.jsonl")
        assert len(collected) == len(load_tasks("nl2bash"))  # -n 200: every bundled task
        for row in collected:
            commands = [s["tool_input"] for s in row["spans"] if s["tool_name"] == "bash"]
            expected = _scripted_commands(row["prompt"])
            assert commands == [f"kwargs={{'command': {c!r}}}" for c in expected]
            assert row["metadata"]["serving"]["temperature"] == 0.6

        (work / "examples").mkdir()
        shutil.copy(EXAMPLES / "instrument_agent.py", work / "examples")
        out = _run_example("own_agent.sh", work, env)
        (own,) = _rows(work / "runs" / "my_agent.jsonl")
        assert own["prompt"] == "Count the .txt files anywhere under /testbed."
        assert "1 trace" in out.stdout or "1 run" in out.stdout  # analyze's report

        _run_example("scale.sh", work, env)
        released = _rows(work / "runs" / "release" / "nl2bash.jsonl")
        assert len(released) == len(load_tasks("nl2bash"))
        assert {row["metadata"]["collector_version"] for row in released} == {"0.3.0"}
        used = {row["metadata"]["serving"]["base_url"].rstrip("/") for row in released}
        assert used == {"http://127.0.0.1:8080/v1", "http://127.0.0.1:8081/v1"}
        assert (work / "dataset" / "README.md").is_file()
        assert list((work / "dataset" / "data").glob("train-*.parquet"))

        _run_example("replay.sh", work, env)
        replayed = _rows(work / "runs" / "nl2bash_1_7B.replay.jsonl")
        assert [r["prompt"] for r in replayed] == [r["prompt"] for r in collected]
        assert (work / "nl2bash-fixture" / "testbed").is_dir()

        _run_example("write_files.py", work, env)
        out = _run_example("read_files.py", work, env)
        assert "3 rows (pandas, JSONL); 3 (pandas, Parquet); 3 (datasets)" in out.stdout
        assert "3 runs; 3 tool calls" in out.stdout

        _run_example("files.sh", work, env)
        assert (work / "nl2bash.parquet").is_file()

        _run_example("zero_code.sh", work, env)
        (zero_code_row,) = _rows(work / "runs.jsonl")
        assert zero_code_row["spans"][0]["tool_output"] == "hello\n"

        out = _run_example("analyze.sh", work, env)
        assert "nl2bash_1_7B.jsonl" in out.stdout
        assert sorted(p.suffix for p in (work / "plots").iterdir())[0] == ".png"

        _run_example("jaeger.sh", work, env)
        deadline = time.monotonic() + 10
        sent_files = 6  # the runs/ files: collected, replayed, written (JSONL and Parquet each)
        while time.monotonic() < deadline and len(receiver.spans) < sent_files:
            time.sleep(0.2)
        demo_rows = _rows(work / "agenttrace-output" / "demo.jsonl")
        traces = {span.trace_id for span in receiver.spans}
        assert {row["trace_id"] for row in demo_rows} <= traces  # live, as the demo ran
        assert {row["trace_id"] for row in collected} <= traces  # sent from the files

        out = _run_example("fleet.sh", work, env)
        fleet = {row["trace_id"]: row for row in _rows(work / "runs" / "fleet.jsonl")}
        demo = {row["trace_id"]: row for row in _rows(work / "agenttrace-output" / "demo.jsonl")}
        assert fleet.keys() == demo.keys()  # every run, through the gateways' files, once
        for trace_id, row in demo.items():  # the rows the in-process exporter wrote
            assert fleet[trace_id]["spans"] == row["spans"]
            assert fleet[trace_id]["llm_steps"] == row["llm_steps"]
        gateways = [work / "collector-output" / "fleet" / f"gateway-{n}" for n in (1, 2)]
        assert all((gateway / "traces.jsonl").stat().st_size > 0 for gateway in gateways)

        # The set-up commands: the demo (above, with --force) and `uv run pytest`, which is what
        # .ci/run runs on every Python: running it here would run this test again.
        quickstart = (EXAMPLES / "quickstart.sh").read_text().splitlines()
        assert quickstart[-2:] == ["uv run agenttrace demo", "uv run pytest"]
        assert "uv run pytest" in (REPO / ".ci" / "run").read_text()
    finally:
        receiver.stop()
        for pid in pids.read_text().split() if pids.exists() else []:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGTERM)
