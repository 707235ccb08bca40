"""What `pip install ./exporters .` gives an agent that only wants the decorators and a file.

The core pulls the OpenTelemetry API and SDK, OTLP over HTTP and the exporter; pandas,
matplotlib, gRPC, pyarrow, openai and rich are extras, and nothing in the core imports them
until asked. The slow test proves it in a fresh virtual environment (uv's cache makes it quick
and lets it run offline); the fast ones check the errors that name the missing extra.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OPTIONAL = ("pandas", "matplotlib", "grpc", "pyarrow", "openai", "rich", "click", "orjson")

CORE_AGENT = textwrap.dedent(
    """
    import importlib.util, json, sys

    import agenttrace
    from opentelemetry.exporter.agenttrace import validate_row

    @agenttrace.tool(name="add")
    def add(a, b):
        return a + b

    @agenttrace.agent(name="core", metadata={"dataset_name": "nl2bash", "source": "t",
                                              "dataset_split": "train", "fixture_version": "0" * 64})
    def run(i):
        agenttrace.set_run_metadata(task_id=i, run_id="core")
        return add(i, 1)

    agenttrace.configure(output=sys.argv[1])
    assert run(1) == 2
    with open(sys.argv[1]) as file:
        rows = [json.loads(line) for line in file]
    assert len(rows) == 1, rows
    assert validate_row(rows[0]) == [], validate_row(rows[0])
    assert rows[0]["spans"][0]["tool_name"] == "add"
    try:
        agenttrace.configure(otlp_endpoint="http://127.0.0.1:1", otlp_protocol="grpc")
        grpc_error = ""
    except ImportError as exc:
        grpc_error = str(exc)
    agenttrace.configure(output=sys.argv[1])  # back to the file alone, for a quiet exit
    print(json.dumps({
        "imported": [name for name in %(optional)r if name in sys.modules],
        "installed": [name for name in %(optional)r if importlib.util.find_spec(name)],
        "grpc_error": grpc_error,
    }))
    """
) % {"optional": OPTIONAL}


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")  # `uv run` tells its children where it is
    if not uv:
        pytest.skip("uv is not available")
    return uv


@pytest.mark.slow
def test_the_core_installs_without_extras_and_writes_rows(tmp_path: Path) -> None:
    uv = _uv()
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTTRACE_"))}
    env.pop("VIRTUAL_ENV", None)
    subprocess.run(
        [uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
        check=True,
        env=env,
        timeout=60,
    )
    python = venv / "bin" / "python"
    # Rebuilt from this checkout: uv's cache keys local projects on pyproject.toml alone.
    install = [uv, "pip", "install", "--quiet", "--python", str(python)]
    install += ["--reinstall-package", "agenttrace"]
    install += ["--reinstall-package", "opentelemetry-exporter-agenttrace"]
    sources = [str(ROOT / "exporters"), str(ROOT)]
    result = subprocess.run(
        [*install, "--offline", *sources], env=env, capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:  # a cold cache: the index, once
        result = subprocess.run(
            [*install, *sources], env=env, capture_output=True, text=True, timeout=300
        )
    assert result.returncode == 0, result.stderr

    out = tmp_path / "core.jsonl"
    run = subprocess.run(
        [str(python), "-c", CORE_AGENT, str(out)],
        env=env,
        cwd=tmp_path,  # not the checkout: the installed package is what is imported
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["installed"] == [], report  # none of the extras came with the core
    assert report["imported"] == [], report
    assert "agenttrace[grpc]" in report["grpc_error"], report
    # The Parquet twin needs pyarrow: JSONL only, said once.
    assert not out.with_suffix(".parquet").exists()
    assert run.stderr.count("the Parquet twin needs pyarrow") == 1, run.stderr
    # The command is the `cli` extra: without it, one line that names the extra.
    command = subprocess.run(
        [str(venv / "bin" / "agenttrace"), "--help"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert command.returncode == 1, command.stderr
    assert command.stderr.strip() == (
        "agenttrace: the command needs the cli extra: pip install 'agenttrace[cli]'"
    )


def test_otlp_over_grpc_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from agenttrace import _configure

    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.grpc.trace_exporter", None)
    with pytest.raises(ImportError, match=r"pip install 'agenttrace\[grpc\]'"):
        _configure._otlp_exporter("http://127.0.0.1:1", "grpc", None, 1.0)


def test_importing_the_core_imports_no_extra(tmp_path: Path) -> None:
    """`import agenttrace` and configure(output=...) in this process load none of the extras."""
    code = textwrap.dedent(
        f"""
        import sys, agenttrace
        agenttrace.configure(output=sys.argv[1], parquet=False)
        print([name for name in {OPTIONAL[:-2]!r} if name in sys.modules])
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTTRACE_"))}
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "rows.jsonl")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout
