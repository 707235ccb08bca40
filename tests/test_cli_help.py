"""The command line's consistency: help for every option, one output convention, plurals."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from agenttrace.cli import main
from agenttrace.cli._render import count

COMMANDS = sorted(main.commands)


def _invoke(*args: str) -> click.testing.Result:
    return CliRunner().invoke(main, list(args), prog_name="agenttrace")


def test_every_command_is_registered() -> None:
    assert COMMANDS == [
        "analyze",
        "collect",
        "convert",
        "demo",
        "fixture",
        "ingest",
        "merge",
        "plots",
        "replay",
        "send",
        "validate",
        "view",
    ]


@pytest.mark.parametrize("name", COMMANDS)
def test_every_visible_option_has_help_text_shown_by_help(name: str) -> None:
    command = main.commands[name]
    result = _invoke(name, "--help")
    assert result.exit_code == 0 and result.output.startswith("Usage: agenttrace " + name)
    help_text = " ".join(result.output.split())
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert param.help, f"{name} {param.opts} has no help text"
            assert " ".join(param.help.split()) in help_text


def test_collect_help_states_sampling_options_and_the_default_of_n() -> None:
    help_text = " ".join(_invoke("collect", "--help").output.split())
    for option in ("--temperature", "--top-p", "--max-tokens", "--seed"):
        assert f"{option} " in help_text
    assert "Run the first N tasks (default: every task of --tasks)" in help_text


@pytest.mark.parametrize("args", [[], *([name] for name in ("analyze", "collect", "validate"))])
def test_the_release_is_defined_where_the_help_names_it(args: list[str]) -> None:
    help_text = " ".join(_invoke(*args, "--help").output.split())
    assert "the release" in help_text.lower()
    assert (
        '"The release" is the public AgentTrace dataset: 1,400 traces of Qwen3 agents on the '
        "MBPP and NL2Bash tasks, in schema 0.3.0" in help_text
    )


@pytest.mark.parametrize("name", COMMANDS)
def test_an_unknown_option_is_a_usage_error(name: str) -> None:
    result = _invoke(name, "--no-such-option")
    assert result.exit_code == 2 and "Error: No such option" in result.output


def test_outputs_follow_one_convention() -> None:
    """Files are written to --output/-o, directories to --output-dir/-o."""
    for name in COMMANDS:
        for param in main.commands[name].params:
            if not isinstance(param, click.Option) or param.hidden:
                continue
            if "--output" in param.opts or "--output-dir" in param.opts:
                assert "-o" in param.opts, name
            assert not {"--outdir", "--out", "--target"} & set(param.opts), name
    assert "--output-dir" in main.commands["plots"].params[1].opts
    assert "--output" in main.commands["convert"].params[2].opts


def test_count_agrees_in_number() -> None:
    assert count(1, "violation") == "1 violation"
    assert count(2, "violation") == "2 violations"
    assert count(0, "row") == "0 rows"
    assert count(1_400, "run") == "1,400 runs"
    assert count(1, "more violation") == "1 more violation"


def _release_file(path: Path, rows: int) -> Path:
    from test_roundtrip import RELEASE_ROW

    lines = []
    for task_id in range(rows):
        row = json.loads(json.dumps(RELEASE_ROW))
        row["metadata"]["task_id"] = task_id
        lines.append(json.dumps(row))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_one_violation_and_one_row_are_singular(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"a": 1}) + "\n")
    result = CliRunner().invoke(main, ["validate", "--max-errors", "0", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}: ... " in result.output and " more violation" in result.output
    one = tmp_path / "one.jsonl"
    _release_file(one, 1)
    converted = _invoke("convert", str(one), "-o", str(tmp_path / "one.parquet"))
    assert converted.exit_code == 0, converted.output
    assert f"1 row written to {tmp_path / 'one.parquet'}" in converted.output


def test_validate_says_1_violation_not_1_violations(tmp_path: Path) -> None:
    from opentelemetry.exporter.agenttrace.files import validate_file

    one = _release_file(tmp_path / "one.jsonl", 1)
    row = json.loads(one.read_text())
    del row["model"]
    one.write_text(json.dumps(row) + "\n")
    assert len(list(validate_file(one))) == 1
    result = _invoke("validate", str(one))
    assert result.exit_code == 1
    assert f"{one}: 1 violation\n" in result.output


def test_old_output_spellings_still_work_with_a_warning(tmp_path: Path) -> None:
    source = _release_file(tmp_path / "runs.jsonl", 2)
    target = tmp_path / "runs.parquet"
    old = _invoke("convert", str(source), str(target))
    assert old.exit_code == 0, old.output
    assert "Warning: the positional TARGET is deprecated; use --output" in old.output
    assert target.exists()
    both = _invoke("convert", str(source), str(target), "-o", str(tmp_path / "x.parquet"))
    assert both.exit_code == 2 and "not both" in both.output
    neither = _invoke("convert", str(source))
    assert neither.exit_code == 2 and "Missing option '--output'" in neither.output


@pytest.mark.slow
def test_plots_old_outdir_works_and_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    source = _release_file(tmp_path / "runs.jsonl", 2)
    out = tmp_path / "plots"
    old = _invoke("plots", str(source), "--outdir", str(out))
    assert old.exit_code == 0, old.output
    assert "Warning: --outdir is deprecated; use --output-dir" in old.output
    written = sorted(out.iterdir())
    assert written
    before = {path: path.stat().st_mtime_ns for path in written}
    again = _invoke("plots", str(source), "-o", str(out))
    assert again.exit_code == 2 and "use --force to overwrite it" in again.output
    assert {path: path.stat().st_mtime_ns for path in written} == before
    forced = _invoke("plots", str(source), "-o", str(out), "--force")
    assert forced.exit_code == 0, forced.output


def test_fixture_refuses_to_replace_other_files_without_force(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "testbed").mkdir(parents=True)
    (root / "testbed" / "mine.txt").write_text("keep me\n")
    refused = _invoke("fixture", str(root))
    assert refused.exit_code == 2 and "use --force" in refused.output
    assert (root / "testbed" / "mine.txt").read_text() == "keep me\n"
    built = _invoke("fixture", str(root), "--force")
    assert built.exit_code == 0, built.output
    again = _invoke("fixture", str(root))  # a fixture that checks out is rebuilt without --force
    assert again.exit_code == 0, again.output
    assert _invoke("fixture", str(root), "--check").exit_code == 0


def test_collect_fixture_option_never_replaces_other_files(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    (root / "workspace").mkdir(parents=True)
    (root / "workspace" / "notes.txt").write_text("keep me\n")
    result = _invoke(
        "collect",
        "--dataset",
        "nl2bash",
        "--model",
        "m",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "-o",
        str(tmp_path / "runs.jsonl"),
        "--fixture",
        str(root),
    )
    assert result.exit_code == 2 and f"agenttrace fixture {root} --force" in result.output
    assert (root / "workspace" / "notes.txt").read_text() == "keep me\n"
