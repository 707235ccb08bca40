"""`agenttrace demo`: the reference agent on the bundled tasks against a scripted model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from agenttrace.cli._app import force_option, main, make_dir, protect, rows_output
from agenttrace.cli._render import count, summary_table
from agenttrace.cli.collect import run_collection
from agenttrace.cli.fixture import build_fixture


@main.command()
@click.option(
    "--output-dir",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("agenttrace-output"),
    show_default=True,
    help="Directory the run's files are written to.",
)
@click.option(
    "--stream/--no-stream", default=False, show_default=True, help="Stream the model's replies."
)
@force_option("Overwrite the files of an earlier demo.")
def demo(output_dir: Path, stream: bool, force: bool) -> None:
    """Run the bundled NL2Bash and MBPP tasks against a scripted model, fully traced.

    The reference agent talks to an OpenAI-compatible server of our own over real HTTP (the real
    `openai` client), runs real tools on the NL2Bash fixture, and writes AgentTrace JSONL and
    Parquet. With OTEL_EXPORTER_OTLP_ENDPOINT set, the spans also go out over OTLP.
    """
    rows_path = output_dir / "demo.jsonl"
    outputs = rows_output(rows_path, "--output-dir")
    protect(outputs, [], force)  # before the slow imports: a refusal is immediate
    make_dir(output_dir, "the output directory")

    import openai

    import agenttrace
    from agenttrace.collection.reference_agent import AgentConfig, ReferenceAgent
    from agenttrace.collection.scripted_server import ScriptedModelServer, ScriptResponder
    from agenttrace.collection.tasks import DATASETS, load_tasks, scripted_steps

    for path in outputs:
        path.unlink(missing_ok=True)  # with --force: each demo starts its files afresh
    scripts: dict[str, Any] = {}
    for dataset in DATASETS:
        scripts.update(scripted_steps(dataset))
    fixture_root = build_fixture(output_dir / "fixture", force=force)
    agenttrace.configure(service_name="agenttrace-demo", output=rows_path)
    model = "qwen3-1.7b-scripted"
    with ScriptedModelServer(ScriptResponder(scripts), model=model) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="scripted", max_retries=0)
        agent = ReferenceAgent(
            client,
            AgentConfig(model=model, temperature=0.6, top_p=0.95, stream=stream),
            fixture_root=fixture_root,
        )
        results = []
        for dataset in DATASETS:
            tasks = load_tasks(dataset)
            summary = run_collection(
                agent, tasks, rows_path, resume=False, run_id="demo", label=f"demo {dataset}"
            )
            results.extend(summary.results)
    agenttrace.shutdown()  # completes the Parquet twin
    summary.results = results
    summary_table(summary)
    click.echo(f"\n{count(len(results), 'run')} written to {rows_path.resolve()}")
    click.echo(f"Parquet (Hugging Face view): {rows_path.with_suffix('.parquet').resolve()}")
    # Final once shutdown() has returned; only what the backend accepted counts as sent.
    delivery = agenttrace._configure.otlp_counts()
    if delivery is not None:
        click.echo(delivery.describe(), err=delivery.delivered < delivery.offered)
