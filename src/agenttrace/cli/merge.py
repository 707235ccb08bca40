"""`agenttrace merge`: shards from many workers or hosts into one dataset file or folder."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import click

from agenttrace.cli._app import FILE, Refused, force_option, main, make_dir, progress, protect
from agenttrace.cli._render import count


@main.command()
@click.argument("shards", nargs=-1, required=True, type=FILE)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    required=True,
    help="One merged file (.jsonl or .parquet), or, by any other name, a Hugging Face-ready "
    "folder: data/train-*.parquet shards and a dataset card README.md, which "
    "`datasets.load_dataset(FOLDER)` loads as it is.",
)
@click.option(
    "--shard-mb",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="Most row data per Parquet shard of a folder (the files are smaller: compressed).",
)
@click.option(
    "--title", default="AgentTrace runs", show_default=True, help="Title of the dataset card."
)
@force_option("Overwrite the output (a folder only if it is a dataset folder merge wrote).")
def merge(
    shards: tuple[Path, ...],
    output: Path,
    shard_mb: int,
    title: str,
    force: bool,
) -> None:
    """Merge AgentTrace files (JSONL or Parquet) into one dataset, each run once.

    Runs held by several shards (a JSONL file and its Parquet twin, a shard given twice) are kept
    once, by trace_id. Shards must agree on the schema version and, per dataset, on the fixture
    (fixture_version), and every row must pass `agenttrace validate`; otherwise nothing is
    written (exit 1).
    """
    from opentelemetry.exporter.agenttrace import AgentTraceFileError, validate_row
    from opentelemetry.exporter.agenttrace.merge import merge as merge_files
    from opentelemetry.exporter.agenttrace.merge import write_dataset_folder

    as_folder = output.suffix.lower() not in (".jsonl", ".parquet")
    target = output
    protect([target], shards, force=True)  # never over an input, whatever --force says
    if target.exists():
        if not force:
            raise Refused(f"{target} exists; use --force to overwrite it")
        if as_folder:
            if not ((target / "data").is_dir() and (target / "README.md").is_file()):
                raise Refused(f"{target} is not a dataset folder merge wrote; not removing it")
            shutil.rmtree(target)
    make_dir(target.parent, "the output directory")

    def check(path: Path, number: int, row: dict[str, Any]) -> None:
        violations = validate_row(row)
        if violations:
            first = violations[0]
            raise AgentTraceFileError(path, str(number), f"{first.field}: {first.message}")

    total = sum(path.stat().st_size for path in shards)
    with progress("merging", total) as advance:
        if not as_folder:
            stats = merge_files(shards, output, progress=advance, check=check)
        else:
            stats = write_dataset_folder(
                shards,
                target,
                shard_bytes=shard_mb << 20,
                title=title,
                progress=advance,
                check=check,
            )
    line = f"{count(stats.rows, 'run')} from {count(len(shards), 'shard')} written to {target}"
    if as_folder:
        line += f" ({count(len(stats.shards), 'Parquet file')} and the dataset card)"
    if stats.duplicates:
        line += f"; {count(stats.duplicates, 'row')} repeated a run already kept, left out"
    click.echo(line)
