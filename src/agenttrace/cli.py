"""The `agenttrace` command line."""

from __future__ import annotations

from pathlib import Path

import click

from agenttrace.version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="agenttrace")
def main() -> None:
    """Trace tool-using LLM agents with OpenTelemetry and write AgentTrace files."""


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
    """Run a small scripted agent, fully instrumented, and say where its spans went."""
    from agenttrace._demo import run_demo, summarise

    spans_path = run_demo(output_dir)
    summarise(spans_path)
    click.echo(f"\nspans written to {spans_path.resolve()}")


if __name__ == "__main__":  # pragma: no cover
    main()
