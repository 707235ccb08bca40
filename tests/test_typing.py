"""Both distributions are typed packages (PEP 561): they ship `py.typed`, so a user's type checker
reads our annotations instead of treating `agenttrace` as untyped (`Any` everywhere, or an
"installed, but missing library stubs or py.typed marker" error).

The project's own check (`uv run mypy`, configured in pyproject.toml) runs in `.ci/run`; these
tests cover what a user gets: the marker inside the built wheels, and mypy in a user's project
seeing the real signatures.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MARKERS = {
    "agenttrace": "agenttrace/py.typed",
    "opentelemetry-exporter-agenttrace": "opentelemetry/exporter/agenttrace/py.typed",
}


@pytest.mark.parametrize("package", sorted(MARKERS))
def test_the_wheel_ships_py_typed(package: str, tmp_path: Path) -> None:
    """The marker must be in the wheel, not only in the source tree (the build decides that)."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    subprocess.run(
        [uv, "build", "--wheel", "--package", package, "--out-dir", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert MARKERS[package] in archive.namelist()


USER_CODE = textwrap.dedent(
    """
    import agenttrace
    from opentelemetry.exporter.agenttrace import validate_row

    reveal_type(agenttrace.load)
    reveal_type(validate_row)
    agenttrace.configure(output=3)
    """
)


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed")
def test_a_users_type_checker_reads_our_annotations(tmp_path: Path) -> None:
    """mypy, run in a user's project (no config of ours), sees the signatures of both packages."""
    (tmp_path / "user.py").write_text(USER_CODE)
    env = {key: value for key, value in os.environ.items() if key != "MYPYPATH"}
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"), "user.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert "py.typed" not in output, output  # "installed, but missing ... py.typed marker"
    assert "-> agenttrace.analysis.dataset.Dataset" in output, output
    assert "opentelemetry.exporter.agenttrace.schema.Violation]" in output, output
    assert 'Argument "output" to "configure" has incompatible type "int"' in output, output
