"""`agenttrace ingest`: OTLP JSON trace files (a fleet's collector output) to AgentTrace rows."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from agenttrace.cli._app import force_option, main, make_dir, progress, protect, rows_output
from agenttrace.cli._render import count

if TYPE_CHECKING:
    from opentelemetry.exporter.agenttrace import AssemblerStats
    from opentelemetry.exporter.agenttrace.otlp_json import IngestStats

#: Located warnings shown for skipped records; the rest are only counted.
_SHOWN_PROBLEMS = 20


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="AgentTrace JSONL file to write (its Parquet twin is written beside it).",
)
@force_option("Overwrite OUTPUT (and its Parquet twin) if it exists.")
@click.option(
    "--append",
    "-a",
    is_flag=True,
    help="Add to OUTPUT if it exists, skipping the runs (trace ids) it already holds.",
)
@click.option(
    "--parquet/--no-parquet",
    default=True,
    show_default=True,
    help="Write the Parquet twin beside OUTPUT (needs pyarrow; skipped with a warning without).",
)
@click.option(
    "--max-spans",
    type=click.IntRange(min=1_000),
    default=200_000,
    show_default=True,
    help="Spans held for runs not yet whole; past it the biggest trace is written incomplete.",
)
@click.option("--strict", is_flag=True, help="Write pure schema 0.3.0 rows (no extensions).")
def ingest(
    files: tuple[Path, ...],
    output: Path,
    force: bool,
    append: bool,
    parquet: bool,
    max_spans: int,
    strict: bool,
) -> None:
    """Turn OTLP JSON trace files into AgentTrace rows, as the in-process exporter writes them.

    FILES are what a collector's `file` exporter (format: json) or the OTLP JSON file exporter
    of opentelemetry-python writes, plain, gzip or zstd compressed; a directory stands for the
    files in it. Rotated backups are read oldest first, before their live file. A run's spans
    may be spread over several files: it is written once all have been read, and runs still
    missing spans at the end are written marked incomplete.

    A trace is written once: with --append, runs OUTPUT already holds are skipped, and a span
    seen twice (a retried export, a file given twice) counts once. Malformed records (a line
    that is not JSON, a torn last line, a corrupt compressed tail) are skipped, each reported
    as FILE:LINE on stderr and counted in the summary; a file that is not OTLP JSON traces at
    all is an error before anything is written.
    """
    from opentelemetry.exporter.agenttrace import RowFiles
    from opentelemetry.exporter.agenttrace.files import iter_rows
    from opentelemetry.exporter.agenttrace.otlp_json import (
        OtlpJsonIngest,
        check_file,
        order_files,
    )

    if append and force:
        raise click.UsageError("give --append or --force, not both")
    outputs = rows_output(output, "--output")
    inputs = order_files(_expand(files))
    protect(outputs, inputs, force=force or append)
    for path in inputs:
        check_file(path)  # a wrong file is refused before anything is written
    known: list[str] = []
    if output.exists():
        if force:
            for path in outputs:
                path.unlink(missing_ok=True)
        else:
            known = [str(row["trace_id"]) for _, row in iter_rows(output) if "trace_id" in row]
    make_dir(output.parent, "the output directory")

    shown = 0

    def report(message: str) -> None:
        nonlocal shown
        shown += 1
        if shown <= _SHOWN_PROBLEMS:
            click.echo(f"Warning: {message}; skipped", err=True)

    # --parquet: the exporter's own rule (the twin when pyarrow is there, else said once).
    files_out = RowFiles(output, parquet=None if parquet else False)
    engine = OtlpJsonIngest(
        files_out.write,
        known_trace_ids=known,
        strict=strict,
        max_spans=max_spans,
        on_problem=report,
    )
    try:
        total = sum(path.stat().st_size for path in inputs)
        with progress("ingesting", total, unit="B") as advance:
            for path in inputs:
                engine.feed_file(path, progress=advance)
        engine.finish()
    finally:
        files_out.close()
    _summary(engine.stats, engine.assembler.stats, output, len(inputs))


def _expand(paths: tuple[Path, ...]) -> list[Path]:
    """Files as given; a directory's (non-hidden) files in name order."""
    expanded: list[Path] = []
    for path in paths:
        if path.is_dir():
            expanded.extend(
                sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            )
        else:
            expanded.append(path)
    return expanded


def _summary(stats: IngestStats, assembler: AssemblerStats, output: Path, files: int) -> None:
    """One line: runs written, from what, and every span or record not in a row, counted."""
    line = (
        f"{count(stats.rows, 'run')} written to {output} from {count(stats.spans, 'span')} "
        f"in {count(files, 'file')}"
    )
    extras = []
    if assembler.incomplete_rows:
        extras.append(f"{count(assembler.incomplete_rows, 'run')} incomplete")
    if stats.duplicate_spans:
        extras.append(f"{count(stats.duplicate_spans, 'repeated span')} skipped")
    if stats.duplicate_rows:
        extras.append(f"{count(stats.duplicate_rows, 'run')} already in {output.name} skipped")
    if assembler.late_spans:
        extras.append(f"{count(assembler.late_spans, 'late span')}")
    if assembler.dropped_rows:
        extras.append(f"{count(assembler.dropped_rows, 'run')} lost (see the log)")
    if stats.malformed:
        extras.append(f"{count(stats.malformed, 'malformed record')} skipped")
    click.echo(line + ("; " + "; ".join(extras) if extras else ""))
