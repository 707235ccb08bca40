"""`agenttrace send`: AgentTrace files to an OTLP backend, as the spans they were made from."""

from __future__ import annotations

import os
from pathlib import Path

import click

from agenttrace.cli._app import FILE, PARQUET_SUFFIXES, main, progress, total_for
from agenttrace.cli._render import count


@main.command()
@click.argument("files", nargs=-1, required=True, type=FILE)
@click.option(
    "--endpoint",
    default=None,
    help="OTLP endpoint (default: $OTEL_EXPORTER_OTLP_ENDPOINT, else localhost 4318/4317).",
)
@click.option(
    "--protocol",
    type=click.Choice(["http/protobuf", "grpc"]),
    default=None,
    help="OTLP protocol (default: $OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf).",
)
@click.option(
    "--header",
    "headers",
    multiple=True,
    metavar="KEY=VALUE",
    help="Header sent with every export (repeatable).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds an export may take before the send fails.",
)
@click.option("--service-name", default=None, help="Override the service.name of the spans.")
@click.option("--project", default=None, help="Phoenix project (openinference.project.name).")
def send(
    files: tuple[Path, ...],
    endpoint: str | None,
    protocol: str | None,
    headers: tuple[str, ...],
    timeout: float,
    service_name: str | None,
    project: str | None,
) -> None:
    """Send AgentTrace files (JSONL or Parquet) to an OTLP backend as spans, e.g. to Jaeger.

    A run held by more than one file (a JSONL file and its Parquet twin) is sent once.
    """
    from agenttrace.collection.send import SendError, resolve_endpoint, send_files

    protocol = protocol or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"
    if protocol not in ("http/protobuf", "grpc"):
        raise click.BadParameter(f"unsupported protocol {protocol!r}", param_hint="--protocol")
    parsed_headers = {}
    for header in headers:
        if "=" not in header:
            raise click.BadParameter(f"{header!r} is not KEY=VALUE", param_hint="--header")
        key, value = header.split("=", 1)
        parsed_headers[key.strip()] = value.strip()
    resource: dict[str, str] = {}
    if service_name:
        resource["service.name"] = service_name
    if project:
        resource["openinference.project.name"] = project
    target = resolve_endpoint(endpoint, protocol)
    total = sum(_rows_in(path) for path in files)
    try:
        with progress("sending", total) as advance:
            sent = send_files(
                files,
                endpoint=target,
                protocol=protocol,
                headers=parsed_headers,
                timeout=timeout,
                resource_attributes=resource,
                progress=advance,
            )
    except SendError as error:
        raise click.ClickException(str(error)) from None
    line = f"sent {count(sent.spans, 'span')} of {count(sent.rows, 'run')} to {target} ({protocol})"
    if sent.duplicates:
        line += (
            f"; {count(sent.duplicates, 'row')} repeated a run already sent (same trace_id), "
            "skipped"
        )
    click.echo(line)


def _rows_in(path: Path) -> int:
    """Rows in a file, for the progress bar (lines for JSONL; cheap)."""
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return total_for(path)
    with open(path, "rb") as handle:
        return sum(1 for line in handle if line.strip())
