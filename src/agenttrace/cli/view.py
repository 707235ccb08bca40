"""`agenttrace view`: AgentTrace files in a local trace UI (Phoenix), no Docker needed."""

from __future__ import annotations

import contextlib
import signal
import tempfile
import threading
from pathlib import Path

import click

from agenttrace.cli._app import FILE, main, progress
from agenttrace.cli._render import count
from agenttrace.cli.send import _rows_in


@main.command()
@click.argument("files", nargs=-1, required=True, type=FILE)
@click.option(
    "--port",
    type=click.IntRange(min=1, max=65535),
    default=None,
    help="Port of the UI on 127.0.0.1 (default: a free one).",
)
@click.option(
    "--project",
    default="agenttrace",
    show_default=True,
    help="Phoenix project the runs go to.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep Phoenix's database here (default: a temporary one, removed on exit).",
)
@click.option(
    "--no-install",
    is_flag=True,
    help="Fail instead of installing Phoenix when it is not there yet.",
)
def view(
    files: tuple[Path, ...], port: int | None, project: str, data_dir: Path | None, no_install: bool
) -> None:
    """Show AgentTrace files (JSONL or Parquet) in a local Phoenix trace UI until Ctrl-C.

    Phoenix (Arize's open-source trace UI) is the `phoenix` on PATH, else a pinned release
    installed on first use into its own environment under the user cache, never into this one.
    With Docker, `docker compose up` and `agenttrace send` show the same runs in Jaeger.
    """
    from agenttrace.analysis.viewer import PhoenixServer, ViewerError, find_phoenix
    from agenttrace.collection.send import SendError, send_files

    try:
        binary = find_phoenix(install=not no_install, say=lambda text: click.echo(text, err=True))
    except ViewerError as error:
        raise click.ClickException(str(error)) from None
    with tempfile.TemporaryDirectory(prefix="agenttrace-view-") as scratch:
        server = PhoenixServer(binary, data_dir or Path(scratch), port=port)
        stop = threading.Event()
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            click.echo(f"starting Phoenix on {server.url} ...", err=True)
            server.start()
            total = sum(_rows_in(path) for path in files)
            with progress("sending", total) as advance:
                sent = send_files(
                    files,
                    endpoint=server.otlp_endpoint,
                    protocol="http/protobuf",
                    resource_attributes={"openinference.project.name": project},
                    progress=advance,
                )
            click.echo(
                f"{count(sent.rows, 'run')} ({count(sent.spans, 'span')}) in project "
                f"{project!r}: {server.url}/projects"
            )
            click.echo("Ctrl-C stops the UI.", err=True)
            with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: stop the UI, exit 0
                stop.wait()
        except (ViewerError, SendError) as error:
            raise click.ClickException(str(error)) from None
        finally:
            signal.signal(signal.SIGTERM, previous)
            server.stop()
