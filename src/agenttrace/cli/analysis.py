"""`agenttrace analyze` and `agenttrace plots`: statistics and figures of AgentTrace files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from agenttrace.cli._app import (
    FILE,
    RELEASE,
    deprecated_alias,
    force_option,
    main,
    make_dir,
    progress,
    protect,
    total_for,
)
from agenttrace.cli._render import print_analysis


def _load_each(files: tuple[Path, ...]) -> list[Any]:
    """Each file as a Dataset, with a progress bar (malformed data: one-line error, exit 1)."""
    from agenttrace.analysis.dataset import load_file

    total = sum(total_for(path) for path in files)
    with progress("reading", total) as advance:
        return [load_file(path, progress=advance) for path in files]


@main.command(
    help=f"""Statistics of AgentTrace files, per file and combined: ours or the release's.

    {RELEASE}

    Combined, a run held by several files (a JSONL file and its Parquet twin) counts once.
    """
)
@click.argument("files", nargs=-1, required=True, type=FILE)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def analyze(files: tuple[Path, ...], as_json: bool) -> None:
    """Print (or --json) the statistics of FILES, per file and combined."""
    import json

    from agenttrace.analysis.dataset import analyze as analyze_data
    from agenttrace.analysis.dataset import combine

    datasets = _load_each(files)
    results: dict[str, Any] = {
        "files": {str(path): analyze_data(data) for path, data in zip(files, datasets, strict=True)}
    }
    if len(files) > 1:
        results["combined"] = analyze_data(combine(datasets))
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    for path, result in results["files"].items():
        print_analysis(path, result)
    if "combined" in results:
        print_analysis(f"all {len(files)} files", results["combined"])


_DIRECTORY = click.Path(file_okay=False, path_type=Path)


@main.command()
@click.argument("files", nargs=-1, required=True, type=FILE)
@click.option(
    "--output-dir",
    "-o",
    type=_DIRECTORY,
    default=None,
    help="Directory the PNG files are written to (required).",
)
@click.option("--outdir", "outdir", type=_DIRECTORY, default=None, hidden=True)
@force_option("Overwrite the PNG files of earlier plots.")
def plots(
    files: tuple[Path, ...], output_dir: Path | None, outdir: Path | None, force: bool
) -> None:
    """Render plots of AgentTrace files as PNGs (headless), one file per plot."""
    directory: Path = deprecated_alias(output_dir, outdir, "--output-dir", "--outdir")
    from agenttrace.analysis.plots import PLOTS

    protect([directory / f"{name}.png" for name in PLOTS], files, force)
    make_dir(directory, "the plot directory")  # before the slow reading: a failure is immediate
    from agenttrace.analysis.dataset import combine
    from agenttrace.analysis.plots import render_all

    data = combine(_load_each(files))
    for path in render_all(data, directory):
        click.echo(str(path))
