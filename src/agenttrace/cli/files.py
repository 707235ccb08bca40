"""`agenttrace validate` and `agenttrace convert`: checking and converting AgentTrace files."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from agenttrace.cli._app import (
    FILE,
    JSONL_SUFFIXES,
    PARQUET_SUFFIXES,
    RELEASE,
    deprecated_alias,
    force_option,
    main,
    make_dir,
    progress,
    protect,
    total_for,
)
from agenttrace.cli._render import count

_VALIDATE_HELP = f"""Check AgentTrace JSONL or Parquet files against schema 0.3.0.

    The default profile checks what every row from any agent must hold: key order, types, ids
    and the required metadata keys (task_id may be an integer, a string or null; dataset,
    source and split may be empty). Rows that claim to be rows of the release
    (collector_version "0.3.0" with dataset_name nl2bash or mbpp) are also held to the
    release's rules: source == dataset_name, split train (nl2bash) or test (mbpp), an integer
    task_id, fixture_version (the fixture's sha256) for nl2bash, tools bash /
    python_interpreter / final_answer with literal kwargs={{...}} inputs of exactly command /
    code / answer. --profile release applies those rules to every row.

    {RELEASE}

    Every violation is printed as FILE:LINE: FIELD: PROBLEM. Exits 1 if any file is invalid.
    """


@main.command(help=_VALIDATE_HELP)
@click.argument("files", nargs=-1, required=True, type=FILE)
@click.option(
    "--profile",
    type=click.Choice(["default", "release"]),
    default="default",
    show_default=True,
    help="release: hold every row to the release's rules, not only rows that claim to be "
    "the release's.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Also reject keys schema 0.3.0 does not name (AgentTrace's extensions), "
    "with either profile.",
)
@click.option(
    "--max-errors",
    type=click.IntRange(min=0),
    default=50,
    show_default=True,
    help="Violations shown per file (the rest are counted).",
)
def validate(files: tuple[Path, ...], profile: str, strict: bool, max_errors: int) -> None:
    """Print each file's violations (at most --max-errors) and exit 1 if any file has one."""
    from opentelemetry.exporter.agenttrace.files import validate_file

    invalid = False
    for path in files:
        found = 0
        with progress(f"validating {path.name}", total_for(path)) as advance:
            for violation in validate_file(path, strict=strict, profile=profile, progress=advance):
                found += 1
                if found <= max_errors:
                    click.echo(str(violation))
        if found > max_errors:
            click.echo(f"{path}: ... {count(found - max_errors, 'more violation')}")
        click.echo(f"{path}: {'ok' if found == 0 else count(found, 'violation')}", err=True)
        invalid |= found > 0
    sys.exit(1 if invalid else 0)


_TARGET = click.Path(dir_okay=False, path_type=Path)


@main.command()
@click.argument("source", type=FILE)
@click.argument("old_target", metavar="", type=_TARGET, required=False)
@click.option(
    "--output",
    "-o",
    "target",
    type=_TARGET,
    default=None,
    help="The file to write (required): .parquet or .jsonl, the other format than SOURCE's.",
)
@force_option("Overwrite OUTPUT if it exists.")
def convert(source: Path, old_target: Path | None, target: Path | None, force: bool) -> None:
    """Convert an AgentTrace file between JSONL and Parquet (by the files' suffixes), streaming.

    Every row must pass `agenttrace validate` (default profile): the first that does not stops
    the conversion (exit 1). OUTPUT appears only when the whole conversion succeeded. The
    older form `convert SOURCE TARGET` still works until the next version.
    """
    from opentelemetry.exporter.agenttrace.files import convert as convert_file

    output: Path = deprecated_alias(target, old_target, "--output", "the positional TARGET")
    for path in (source, output):
        if path.suffix.lower() not in JSONL_SUFFIXES + PARQUET_SUFFIXES:
            raise click.BadParameter(
                f"{path}: unknown file type (use .jsonl or .parquet)", param_hint="SOURCE/--output"
            )
    protect([output], [source], force)
    make_dir(output.parent, "the output directory")
    with progress(f"converting {source.name}", total_for(source)) as advance:
        rows = convert_file(source, output, progress=advance, check=_row_check(source))
    click.echo(f"{count(rows, 'row')} written to {output}")


def _row_check(source: Path) -> Callable[[int, dict[str, Any]], None]:
    """A `check` for `files.convert`: a row that fails validation stops it, located."""
    from opentelemetry.exporter.agenttrace import AgentTraceFileError, validate_row

    unit = "row" if source.suffix.lower() in PARQUET_SUFFIXES else "line"

    def check(number: int, row: dict[str, Any]) -> None:
        violations = validate_row(row)
        if violations:
            first = violations[0]
            more = f" (and {len(violations) - 1} more: see `agenttrace validate`)"
            raise AgentTraceFileError(
                source,
                f"{unit} {number}",
                f"{first.field}: {first.message}" + (more if len(violations) > 1 else ""),
            )

    return check
