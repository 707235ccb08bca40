"""The `agenttrace` command line.

Exit codes follow click's habits: 0 success, 1 invalid data (or a failed run), 2 usage error.
Long work shows a progress bar on stderr when stderr is a terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from agenttrace.version import __version__

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="agenttrace")
def main() -> None:
    """Trace tool-using LLM agents with OpenTelemetry and write AgentTrace files."""


@contextmanager
def _progress(label: str, total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr (none when stderr is not a terminal)."""
    if not sys.stderr.isatty():
        yield lambda _: None
        return
    with click.progressbar(
        length=total, label=label, file=sys.stderr, show_eta=True, show_percent=True
    ) as bar:
        yield bar.update


def _total_for(path: Path) -> int:
    """What progress is counted in: bytes for JSONL, rows for Parquet."""
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(path).metadata.num_rows
        except Exception:
            return 0
    return path.stat().st_size


@main.command()
@click.option(
    "--output-dir",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("agenttrace-output"),
    show_default=True,
    help="Directory the run's files are written to.",
)
def demo(output_dir: Path) -> None:
    """Run a small scripted agent, fully instrumented, and say where its output went."""
    from agenttrace._demo import run_demo, summarise

    rows_path = run_demo(output_dir)
    summarise(rows_path)
    click.echo(f"\nAgentTrace rows written to {rows_path.resolve()}")
    click.echo(f"Parquet (Hugging Face view) at {rows_path.with_suffix('.parquet').resolve()}")


@main.command()
@click.argument("files", nargs=-1, required=True, type=_FILE)
@click.option("--strict", is_flag=True, help="Also reject keys schema 0.3.0 does not name.")
@click.option("--max-errors", default=50, show_default=True, help="Violations shown per file.")
def validate(files: tuple[Path, ...], strict: bool, max_errors: int) -> None:
    """Check AgentTrace JSONL or Parquet files against schema 0.3.0.

    Every violation is printed as FILE:LINE: FIELD: PROBLEM. Exits 1 if any file is invalid.
    """
    from opentelemetry.exporter.agenttrace.files import validate_file

    invalid = False
    for path in files:
        count = 0
        with _progress(f"validating {path.name}", _total_for(path)) as advance:
            for violation in validate_file(path, strict=strict, progress=advance):
                count += 1
                if count <= max_errors:
                    click.echo(str(violation))
        if count > max_errors:
            click.echo(f"{path}: ... {count - max_errors} more violations")
        click.echo(f"{path}: {'ok' if count == 0 else f'{count} violations'}", err=True)
        invalid |= count > 0
    sys.exit(1 if invalid else 0)


@main.command()
@click.argument("source", type=_FILE)
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", "-f", is_flag=True, help="Overwrite TARGET if it exists.")
def convert(source: Path, target: Path, force: bool) -> None:
    """Convert an AgentTrace file between JSONL and Parquet (by the files' suffixes), streaming.

    TARGET appears only when the whole conversion succeeded.
    """
    from opentelemetry.exporter.agenttrace.files import AgentTraceFileError
    from opentelemetry.exporter.agenttrace.files import convert as convert_file

    suffixes = (".jsonl", ".ndjson", ".json", ".parquet", ".pq")
    for path in (source, target):
        if path.suffix.lower() not in suffixes:
            raise click.BadParameter(
                f"{path}: unknown file type (use .jsonl or .parquet)", param_hint="SOURCE/TARGET"
            )
    if target.exists() and not force:
        raise click.UsageError(f"{target} exists; use --force to overwrite it")
    if target.resolve() == source.resolve():
        raise click.UsageError("SOURCE and TARGET are the same file")
    try:
        with _progress(f"converting {source.name}", _total_for(source)) as advance:
            rows = convert_file(source, target, progress=advance)
    except AgentTraceFileError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    click.echo(f"{rows} rows written to {target}")


if __name__ == "__main__":  # pragma: no cover
    main()
