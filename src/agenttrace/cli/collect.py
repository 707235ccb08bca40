"""`agenttrace collect` and `agenttrace replay`: runs of the reference agent, written as rows.

Both run tasks through `collect()` with a progress bar; what a server cut short is written,
marked, and makes the command exit 1 (after every other run is written).
"""

from __future__ import annotations

import dataclasses
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import click

from agenttrace.cli._app import (
    FILE,
    RELEASE,
    fixture_option,
    force_option,
    main,
    make_dir,
    progress,
    protect,
    rows_output,
)
from agenttrace.cli._render import count, summary_table
from agenttrace.cli.fixture import fixture_for


def run_collection(
    agent: Any,
    tasks: list[Any],
    output: Path,
    *,
    resume: bool,
    run_id: str | None,
    label: str,
    concurrency: int = 1,
) -> Any:
    """Run tasks with a progress bar (rate and ETA); Ctrl-C keeps every finished row, exits 130."""
    from agenttrace.collection.collect import collect

    try:
        with progress(label, len(tasks), unit="runs") as advance:
            return collect(
                agent,
                tasks,
                output=output,
                run_id=run_id,
                resume=resume,
                on_task=lambda task, result: advance(1),
                concurrency=concurrency,
            )
    except KeyboardInterrupt:
        import agenttrace

        agenttrace.shutdown()
        click.echo(
            f"\ninterrupted: every finished run is in {output}; run the same command "
            "again to resume",
            err=True,
        )
        sys.exit(130)


def check_failures(summary: Any, retry_hint: str) -> None:
    """Exit 1 when the model server cut runs short: their rows are there, marked."""
    if not summary.failures:
        return
    kinds = Counter(type(error).__name__ for _, error in summary.failures)
    first = summary.failures[0][1]
    raise click.ClickException(
        f"{count(len(summary.failures), 'run')} failed on the model server "
        f"({', '.join(f'{number} {name}' for name, number in kinds.items())}; first: {first}); "
        f"their rows are marked with error_type; {retry_hint}"
    )


@main.command(
    help=f"""Collect AgentTrace runs of NL2Bash or MBPP tasks against an OpenAI-compatible server.

    Runs the model server cut short (unreachable, timed out, an error status) are written, marked
    with their error_type, and run again by the next collection into the same OUTPUT.

    {RELEASE}
    """
)
@click.option(
    "--dataset",
    type=click.Choice(["nl2bash", "mbpp"]),
    required=True,
    help="Which tasks to run: NL2Bash (shell commands) or MBPP (Python functions).",
)
@click.option(
    "-n",
    "limit",
    type=click.IntRange(min=1),
    default=None,
    help="Run the first N tasks (default: every task of --tasks).",
)
@click.option("--model", required=True, help="Model name the server serves.")
@click.option(
    "--agent",
    "agent_kind",
    type=click.Choice(["reference", "smolagents"]),
    default="reference",
    show_default=True,
    help="The agent loop: the reference agent, or a smolagents ToolCallingAgent (the release's "
    "agent; needs the smolagents extra). Both use the same tools, fixture and server.",
)
@click.option(
    "--base-url",
    "base_urls",
    required=True,
    multiple=True,
    help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8080/v1 (repeatable: the tasks are "
    "spread over the servers in turn).",
)
@click.option(
    "--concurrency",
    "-j",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Tasks run at once, each with its own fixture copy (a server serves several requests "
    "at once; the work is waiting, not CPU).",
)
@click.option(
    "--api-key",
    envvar="OPENAI_API_KEY",
    default="none",
    show_default=False,
    help="API key (default: $OPENAI_API_KEY, else 'none').",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="AgentTrace JSONL file to append to (its Parquet twin is written beside it).",
)
@click.option(
    "--tasks",
    "source",
    default="bundled",
    show_default=True,
    help="'bundled' (a small set written for this project), 'hub' (the release's tasks, from "
    "Hugging Face datasets) or a JSONL/Parquet task file.",
)
@click.option(
    "--source",
    "source_label",
    default=None,
    help="metadata.source of the rows (default: where the tasks came from; a task file by its "
    "name, never its path).",
)
@click.option(
    "--split",
    "split_label",
    default=None,
    help="metadata.dataset_split of the rows (default: the tasks' split; 'local' for a file).",
)
@click.option(
    "--release",
    is_flag=True,
    help="Label the rows as the release labels its own: collector_version 0.3.0, source = the "
    "dataset, split train (NL2Bash) or test (MBPP). They are then held to the release's rules "
    "(agenttrace validate --profile release); this project's version stays in "
    "metadata.agenttrace_version.",
)
@click.option(
    "--temperature",
    type=float,
    default=None,
    help="Sampling temperature sent with every request (default: the server's).",
)
@click.option(
    "--top-p",
    type=float,
    default=None,
    help="Nucleus sampling top_p sent with every request (default: the server's).",
)
@click.option(
    "--max-tokens",
    type=int,
    default=None,
    help="Most tokens the model may generate per step (default: the server's limit).",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Sampling seed sent with every request, for servers that honour it (default: none).",
)
@click.option(
    "--max-steps",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Most model steps a run may take (then it stops, stop reason max_steps).",
)
@click.option(
    "--stream/--no-stream",
    default=False,
    show_default=True,
    help="Stream the model's replies.",
)
@fixture_option
@click.option(
    "--resume/--no-resume",
    default=True,
    show_default=True,
    help="Skip tasks whose rows are already in OUTPUT.",
)
@click.option("--run-id", default=None, help="Run id recorded in every row (default: UTC time).")
@click.option(
    "--pass-env",
    "pass_env",
    multiple=True,
    metavar="NAME",
    help="Also pass this environment variable to the bash and python_interpreter tools "
    "(repeatable; NAME* for every name starting with NAME). By default bash gets only PATH, HOME, "
    "USER, LOGNAME, SHELL, LANG, LANGUAGE, LC_*, TZ, TERM and TMPDIR, and python_interpreter only "
    "PATH and LANG, so the agent's secrets reach neither the tools nor the model.",
)
def collect(
    dataset: str,
    limit: int | None,
    model: str,
    agent_kind: str,
    base_urls: tuple[str, ...],
    concurrency: int,
    api_key: str,
    output: Path,
    source: str,
    source_label: str | None,
    split_label: str | None,
    release: bool,
    temperature: float | None,
    top_p: float | None,
    max_tokens: int | None,
    seed: int | None,
    max_steps: int,
    stream: bool,
    fixture_dir: Path | None,
    resume: bool,
    run_id: str | None,
    pass_env: tuple[str, ...],
) -> None:
    """Run the tasks, append their rows to OUTPUT, and exit 1 if the server cut any short."""
    outputs = rows_output(output, "--output")
    if source not in ("bundled", "hub"):  # appending is the point; the task file is an input
        protect(outputs, [Path(source)], force=True)
    make_dir(output.parent, "the output directory")

    import openai
    from opentelemetry.exporter.agenttrace.schema import RELEASE_COLLECTOR_VERSION, RELEASE_SPLITS

    import agenttrace
    from agenttrace.collection.collect import CollectAborted
    from agenttrace.collection.reference_agent import AgentConfig, ReferenceAgent
    from agenttrace.collection.tasks import TaskError, load_tasks

    try:
        tasks = load_tasks(dataset, source, limit=limit)
    except TaskError as error:
        raise click.ClickException(str(error)) from None
    if release:
        for given, wanted, option in (
            (source_label, dataset, "--source"),
            (split_label, RELEASE_SPLITS[dataset], "--split"),
        ):
            if given is not None and given != wanted:
                raise click.UsageError(f"--release labels {option} {wanted!r}, not {given!r}")
        source_label, split_label = dataset, RELEASE_SPLITS[dataset]
    if source_label is not None or split_label is not None:
        tasks = [
            dataclasses.replace(
                task,
                source=task.source if source_label is None else source_label,
                split=task.split if split_label is None else split_label,
            )
            for task in tasks
        ]
    config = AgentConfig(
        model=model,
        max_steps=max_steps,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        seed=seed,
        stream=stream,
        pass_env=pass_env,
        collector_version=RELEASE_COLLECTOR_VERSION if release else None,
    )
    with fixture_for(fixture_dir, needed=dataset == "nl2bash") as fixture_root:
        agenttrace.configure(service_name="agenttrace-collect", output=output)
        agent_class = ReferenceAgent
        if agent_kind == "smolagents":
            try:
                from agenttrace.collection.smolagents_agent import SmolagentsAgent
            except ImportError as error:
                raise click.ClickException(str(error)) from None
            agent_class = SmolagentsAgent
        clients = [openai.OpenAI(base_url=url, api_key=api_key) for url in base_urls]
        agents = [agent_class(client, config, fixture_root=fixture_root) for client in clients]
        try:
            summary = run_collection(
                agents,
                tasks,
                output,
                resume=resume,
                run_id=run_id,
                label=f"collect {dataset}",
                concurrency=concurrency,
            )
        except CollectAborted as aborted:
            if len(aborted.summary.results) > 1:  # more than the failed run
                summary_table(aborted.summary)
            base_url = str(getattr(aborted.agent, "client", clients[0]).base_url)
            raise click.ClickException(_aborted_message(aborted, base_url, output)) from None
        finally:
            agenttrace.shutdown()
    summary_table(summary)
    line = (
        f"{count(len(summary.results), 'run')} added to {output} ({summary.skipped} already there)"
    )
    if summary.retried:
        line += f", {summary.retried} of them retried (their earlier runs were cut short)"
    click.echo(line)
    check_failures(summary, "run the same command again to retry them")


def _aborted_message(aborted: Any, base_url: str, output: Path) -> str:
    """Why a collection stopped early, and that running it again resumes it."""
    error = aborted.error
    name = type(error).__name__
    reason = (
        f"cannot reach {base_url} ({error})"
        if name == "APIConnectionError"
        else f"{base_url} refused the request ({name}: {error})"
    )
    return (
        f"{reason}; stopped at {aborted.task.dataset} task {aborted.task.task_id}, whose row in "
        f"{output} is marked with error_type: run the same command again to resume"
    )


@main.command()
@click.argument("source", type=FILE)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where the replayed runs go (default: SOURCE with .replay.jsonl).",
)
@fixture_option
@force_option("Overwrite OUTPUT (and its Parquet twin) if it exists.")
def replay(source: Path, output: Path | None, fixture_dir: Path | None, force: bool) -> None:
    """Re-run the tool calls of recorded runs, for fresh telemetry.

    A scripted server replays each row's recorded model steps, in order, to the reference agent,
    which executes the tool calls here again; the new runs are written as AgentTrace rows.
    """
    output = output or source.with_name(source.stem + ".replay.jsonl")
    outputs = rows_output(output, "--output")
    protect(outputs, [source], force)  # before the slow imports: a refusal is immediate
    make_dir(output.parent, "the output directory")

    import openai
    from opentelemetry.exporter.agenttrace import read_rows

    import agenttrace
    from agenttrace.collection.collect import CollectAborted
    from agenttrace.collection.reference_agent import AgentConfig, ReferenceAgent
    from agenttrace.collection.scripted_server import ScriptedModelServer, replay_responder
    from agenttrace.collection.tasks import NL2BASH, Task

    rows = list(read_rows(source))
    if not rows:
        raise click.ClickException(f"{source} holds no rows")
    for path in outputs:
        path.unlink(missing_ok=True)  # with --force: the replay starts its files afresh
    tasks: list[Task] = []
    for row in rows:
        metadata = row.get("metadata") or {}
        dataset = str(metadata.get("dataset_name") or NL2BASH)
        task_id = metadata.get("task_id")
        tasks.append(
            Task(
                dataset,
                task_id if isinstance(task_id, int) else len(tasks),
                row.get("prompt") or "",
                str(metadata.get("source") or source.name),
                str(metadata.get("dataset_split") or "replay"),
            )
        )
    needs_fixture = any(task.dataset == NL2BASH for task in tasks)
    model = str(rows[0].get("model") or "replay")
    with (
        fixture_for(fixture_dir, needed=needs_fixture) as fixture_root,
        ScriptedModelServer(replay_responder(rows), model=model) as server,
    ):
        agenttrace.configure(service_name="agenttrace-replay", output=output)
        client = openai.OpenAI(base_url=server.base_url, api_key="replay", max_retries=0)
        agent = ReferenceAgent(
            client, AgentConfig(model=model, max_steps=50), fixture_root=fixture_root
        )
        try:
            summary = run_collection(
                agent,
                tasks,
                output,
                resume=False,
                run_id=f"replay-{source.stem}",
                label=f"replay {source.name}",
            )
        except CollectAborted as aborted:
            raise click.ClickException(f"the replay server failed: {aborted}") from None
        finally:
            agenttrace.shutdown()
    summary_table(summary)
    click.echo(f"{count(len(summary.results), 'run')} replayed into {output}")
    check_failures(summary, "replay them again with --force")
