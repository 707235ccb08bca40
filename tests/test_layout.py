"""The package layout: library, integrations, tools, the collection application, analysis, CLI."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

MOVED = {
    "agenttrace.reference_agent": "agenttrace.collection.reference_agent",
    "agenttrace.tasks": "agenttrace.collection.tasks",
    "agenttrace.fixture": "agenttrace.collection.fixture",
    "agenttrace.scripted_server": "agenttrace.collection.scripted_server",
    "agenttrace.collect": "agenttrace.collection.collect",
    "agenttrace.send": "agenttrace.collection.send",
    "agenttrace.plots": "agenttrace.analysis.plots",
}


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_module_names_warn_and_are_the_new_modules(old: str) -> None:
    """Old import paths keep working for one release, with a DeprecationWarning naming the new one."""
    code = (
        "import importlib, warnings\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        f"    old = importlib.import_module({old!r})\n"
        f"new = importlib.import_module({MOVED[old]!r})\n"
        "assert old is new, (old, new)\n"
        "messages = [str(w.message) for w in caught if w.category is DeprecationWarning]\n"
        f"assert any({MOVED[old]!r} in m for m in messages), messages\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_the_library_does_not_import_the_application() -> None:
    """`import agenttrace` (decorators, configure) loads neither collection, analysis nor the CLI."""
    code = (
        "import sys, agenttrace\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('agenttrace.collection',"
        " 'agenttrace.analysis', 'agenttrace.cli', 'pandas', 'matplotlib', 'openai', 'rich')))\n"
        "print(loaded)\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_each_part_imports() -> None:
    for name in (
        "agenttrace.integrations.openai",
        "agenttrace.tools",
        "agenttrace.collection.reference_agent",
        "agenttrace.analysis",
        "agenttrace.cli",
    ):
        importlib.import_module(name)


def test_the_file_jobs_live_in_their_own_modules_and_files_gathers_them() -> None:
    """Writers, readers, conversion and validation are separate modules; `files` re-exports them."""
    from opentelemetry.exporter.agenttrace import convert, files, readers, validation, writers

    homes = {
        "JsonlWriter": writers,
        "ParquetWriter": writers,
        "iter_rows": readers,
        "read_rows": readers,
        "convert": convert,
        "validate_file": validation,
    }
    for name, module in homes.items():
        assert getattr(files, name) is getattr(module, name), name
        assert getattr(module, name).__module__ == module.__name__, name
    assert sorted(files.__all__) == sorted(set(files.__all__))
