"""The `agenttrace` command line.

Exit codes follow click's habits: 0 success, 1 invalid data (or a failed run), 2 usage error.
What goes wrong outside the program (a file that cannot be read or written, a server that cannot
be reached, malformed data) is one `Error: ...` line on stderr and exit 1, never a traceback. No
command writes over one of its inputs, and none overwrites an existing output without `--force`.
Long work shows a progress bar on stderr when stderr is a terminal.
"""

from __future__ import annotations

import errno
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from agenttrace.version import __version__

_JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
_PARQUET_SUFFIXES = (".parquet", ".pq")

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_fixture_option = click.option(
    "--fixture",
    "fixture_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="NL2Bash fixture directory (built there if missing).",
)


class _Commands(click.Group):
    """The command group: every error a command does not handle itself becomes one line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Abort, click.exceptions.Exit):
            raise
        except OSError as error:
            if error.errno == errno.EPIPE:
                raise  # stdout closed early (`| head`): click ends quietly
            raise click.ClickException(_os_error_message(error)) from None
        except Exception as error:
            raise click.ClickException(_error_message(error)) from None


def _os_error_message(error: OSError) -> str:
    """`PATH: reason` for a file-system error (what the user can act on), else its message."""
    reason = error.strerror or str(error)
    if error.filename is None:
        return reason
    message = f"{os.fsdecode(error.filename)}: {reason}"
    if error.filename2 is not None:
        message += f" ({os.fsdecode(error.filename2)})"
    return message


def _error_message(error: Exception) -> str:
    from opentelemetry.exporter.agenttrace import AgentTraceFileError

    if isinstance(error, AgentTraceFileError):
        return str(error)  # FILE:LINE: problem
    return f"unexpected {type(error).__name__}: {error}"


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="agenttrace")
def main() -> None:
    """Trace tool-using LLM agents with OpenTelemetry and write AgentTrace files."""


def _make_dir(path: Path, what: str) -> None:
    """Create directory `path` (and its parents), or exit 1 saying why it cannot be one."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError as error:
        blocker = os.fsdecode(error.filename) if error.filename is not None else str(path)
        raise click.ClickException(
            f"cannot create {what} {path}: {blocker} is a file, not a directory"
        ) from None
    except OSError as error:
        raise click.ClickException(
            f"cannot create {what} {path}: {error.strerror or error}"
        ) from None


def _same_file(first: Path, second: Path) -> bool:
    return first.exists() and second.exists() and os.path.samefile(first, second)


def _rows_output(output: Path, option: str) -> tuple[Path, Path]:
    """The JSONL file runs are written to and its Parquet twin; usage error for another suffix."""
    if output.suffix.lower() not in _JSONL_SUFFIXES:
        raise click.BadParameter(
            f"{output}: must be a .jsonl file (its Parquet twin is written beside it)",
            param_hint=option,
        )
    return output, output.with_suffix(".parquet")


class _Refused(click.ClickException):
    """A command line that would destroy data: one line, exit 2 like any usage error."""

    exit_code = 2


def _protect(outputs: Iterable[Path], inputs: Iterable[Path], force: bool) -> None:
    """Never write over an input; overwrite an existing output only with --force."""
    outputs, inputs = list(outputs), list(inputs)
    for output in outputs:
        for source in inputs:
            if _same_file(output, source):
                raise _Refused(f"{output} is an input of this command; write elsewhere")
    for output in outputs:
        if output.exists() and not force:
            raise _Refused(f"{output} exists; use --force to overwrite it")


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


def _build_fixture(root: Path) -> Path:
    """The NL2Bash fixture under `root`, built there unless it is there already."""
    from agenttrace.collection import fixture

    if fixture.check(root)[0]:
        return root
    digest = _fixture_build(root)
    if digest != fixture.FIXTURE_VERSION:
        raise click.ClickException(
            f"the fixture built under {root} has digest {digest}, "
            f"expected {fixture.FIXTURE_VERSION}"
        )
    return root


def _fixture_build(root: Path) -> str:
    """`fixture.build(root)`, or exit 1 saying why the fixture cannot be built there."""
    from agenttrace.collection import fixture

    try:
        return fixture.build(root)
    except OSError as error:
        raise click.ClickException(
            f"cannot build the NL2Bash fixture under {root}: {_os_error_message(error)}"
        ) from None


@contextmanager
def _fixture(root: Path | None, needed: bool = True) -> Iterator[Path | None]:
    """The fixture tasks run on: `root` (kept), else a temporary one, removed afterwards."""
    if not needed:
        yield None
    elif root is not None:
        yield _build_fixture(root)
    else:
        with tempfile.TemporaryDirectory(
            prefix="agenttrace-fixture-", ignore_cleanup_errors=True
        ) as scratch:
            yield _build_fixture(Path(scratch))


def _run_collection(
    agent: Any, tasks: list[Any], output: Path, *, resume: bool, run_id: str | None, label: str
) -> Any:
    """Run tasks with a progress bar; Ctrl-C keeps every finished row and exits 130."""
    from agenttrace.collection.collect import collect

    try:
        with _progress(label, len(tasks)) as advance:
            return collect(
                agent,
                tasks,
                output=output,
                run_id=run_id,
                resume=resume,
                on_task=lambda task, result: advance(1),
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


def _check_failures(summary: Any, retry_hint: str) -> None:
    """Exit 1 when the model server cut runs short: their rows are there, marked."""
    if not summary.failures:
        return
    kinds = Counter(type(error).__name__ for _, error in summary.failures)
    first = summary.failures[0][1]
    raise click.ClickException(
        f"{len(summary.failures)} runs failed on the model server "
        f"({', '.join(f'{count} {name}' for name, count in kinds.items())}; first: {first}); "
        f"their rows are marked with error_type; {retry_hint}"
    )


def _summary_table(summary: Any) -> None:
    click.echo(f"{'dataset':8} {'task':>5} {'steps':>5}  {'stop reason':14} answer")
    for task, result in summary.results:
        answer = (result.answer or "").replace("\n", " ")
        answer = answer if len(answer) <= 40 else answer[:37] + "..."
        click.echo(
            f"{task.dataset:8} {task.task_id:>5} {result.steps:>5}  "
            f"{result.stop_reason:14} {answer}"
        )


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
@click.option("--force", "-f", is_flag=True, help="Overwrite the files of an earlier demo.")
def demo(output_dir: Path, stream: bool, force: bool) -> None:
    """Run the bundled NL2Bash and MBPP tasks against a scripted model, fully traced.

    The reference agent talks to an OpenAI-compatible server of our own over real HTTP (the real
    `openai` client), runs real tools on the NL2Bash fixture, and writes AgentTrace JSONL and
    Parquet. With OTEL_EXPORTER_OTLP_ENDPOINT set, the spans also go out over OTLP.
    """
    rows_path = output_dir / "demo.jsonl"
    outputs = _rows_output(rows_path, "--output-dir")
    _protect(outputs, [], force)  # before the slow imports: a refusal is immediate
    _make_dir(output_dir, "the output directory")

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
    fixture_root = _build_fixture(output_dir / "fixture")
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
            summary = _run_collection(
                agent, tasks, rows_path, resume=False, run_id="demo", label=f"demo {dataset}"
            )
            results.extend(summary.results)
    agenttrace.shutdown()  # completes the Parquet twin
    summary.results = results
    _summary_table(summary)
    click.echo(f"\n{len(results)} runs written to {rows_path.resolve()}")
    click.echo(f"Parquet (Hugging Face view): {rows_path.with_suffix('.parquet').resolve()}")
    # Final once shutdown() has returned; only what the backend accepted counts as sent.
    delivery = agenttrace._configure.otlp_counts()
    if delivery is not None:
        click.echo(delivery.describe(), err=delivery.delivered < delivery.offered)


@main.command()
@click.option("--dataset", type=click.Choice(["nl2bash", "mbpp"]), required=True)
@click.option(
    "-n", "limit", type=click.IntRange(min=1), default=None, help="Run the first N tasks."
)
@click.option("--model", required=True, help="Model name the server serves.")
@click.option(
    "--base-url", required=True, help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8080/v1"
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
    help="'bundled', 'hub' (Hugging Face datasets) or a JSONL/Parquet task file.",
)
@click.option("--temperature", type=float, default=None)
@click.option("--top-p", type=float, default=None)
@click.option("--max-tokens", type=int, default=None)
@click.option("--seed", type=int, default=None)
@click.option("--max-steps", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--stream/--no-stream", default=False, show_default=True)
@_fixture_option
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
    base_url: str,
    api_key: str,
    output: Path,
    source: str,
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
    """Collect AgentTrace runs of NL2Bash or MBPP tasks against an OpenAI-compatible server.

    Runs the model server cut short (unreachable, timed out, an error status) are written, marked
    with their error_type, and run again by the next collection into the same OUTPUT.
    """
    outputs = _rows_output(output, "--output")
    if source not in ("bundled", "hub"):  # appending is the point; the task file is an input
        _protect(outputs, [Path(source)], force=True)
    _make_dir(output.parent, "the output directory")

    import openai

    import agenttrace
    from agenttrace.collection.collect import CollectAborted
    from agenttrace.collection.reference_agent import AgentConfig, ReferenceAgent
    from agenttrace.collection.tasks import TaskError, load_tasks

    try:
        tasks = load_tasks(dataset, source, limit=limit)
    except TaskError as error:
        raise click.ClickException(str(error)) from None
    config = AgentConfig(
        model=model,
        max_steps=max_steps,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        seed=seed,
        stream=stream,
        pass_env=pass_env,
    )
    with _fixture(fixture_dir, needed=dataset == "nl2bash") as fixture_root:
        agenttrace.configure(service_name="agenttrace-collect", output=output)
        client = openai.OpenAI(base_url=base_url, api_key=api_key)
        agent = ReferenceAgent(client, config, fixture_root=fixture_root)
        try:
            summary = _run_collection(
                agent, tasks, output, resume=resume, run_id=run_id, label=f"collect {dataset}"
            )
        except CollectAborted as aborted:
            if len(aborted.summary.results) > 1:  # more than the failed run
                _summary_table(aborted.summary)
            raise click.ClickException(_aborted_message(aborted, base_url, output)) from None
        finally:
            agenttrace.shutdown()
    _summary_table(summary)
    line = f"{len(summary.results)} runs added to {output} ({summary.skipped} already there)"
    if summary.retried:
        line += f", {summary.retried} of them retried (their earlier runs were cut short)"
    click.echo(line)
    _check_failures(summary, "run the same command again to retry them")


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
@click.argument("source", type=_FILE)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where the replayed runs go (default: SOURCE with .replay.jsonl).",
)
@_fixture_option
@click.option("--force", "-f", is_flag=True, help="Overwrite OUTPUT if it exists.")
def replay(source: Path, output: Path | None, fixture_dir: Path | None, force: bool) -> None:
    """Re-run the tool calls of recorded runs, for fresh telemetry.

    A scripted server replays each row's recorded model steps, in order, to the reference agent,
    which executes the tool calls here again; the new runs are written as AgentTrace rows.
    """
    output = output or source.with_name(source.stem + ".replay.jsonl")
    outputs = _rows_output(output, "--output")
    _protect(outputs, [source], force)  # before the slow imports: a refusal is immediate
    _make_dir(output.parent, "the output directory")

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
    tasks = []
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
        _fixture(fixture_dir, needed=needs_fixture) as fixture_root,
        ScriptedModelServer(replay_responder(rows), model=model) as server,
    ):
        agenttrace.configure(service_name="agenttrace-replay", output=output)
        client = openai.OpenAI(base_url=server.base_url, api_key="replay", max_retries=0)
        agent = ReferenceAgent(
            client, AgentConfig(model=model, max_steps=50), fixture_root=fixture_root
        )
        try:
            summary = _run_collection(
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
    _summary_table(summary)
    click.echo(f"{len(summary.results)} runs replayed into {output}")
    _check_failures(summary, "replay them again with --force")


@main.command()
@click.argument("files", nargs=-1, required=True, type=_FILE)
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
        with _progress("sending", total) as advance:
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
    line = f"sent {sent.spans} spans of {sent.rows} runs to {target} ({protocol})"
    if sent.duplicates:
        line += f"; {sent.duplicates} rows repeated a run already sent (same trace_id), skipped"
    click.echo(line)


def _rows_in(path: Path) -> int:
    """Rows in a file, for the progress bar (lines for JSONL; cheap)."""
    if path.suffix.lower() in (".parquet", ".pq"):
        return _total_for(path)
    with open(path, "rb") as handle:
        return sum(1 for line in handle if line.strip())


def _load_each(files: tuple[Path, ...]) -> list[Any]:
    """Each file as a Dataset, with a progress bar (malformed data: one-line error, exit 1)."""
    from agenttrace.analysis.dataset import load_file

    total = sum(_total_for(path) for path in files)
    with _progress("reading", total) as advance:
        return [load_file(path, progress=advance) for path in files]


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _print_analysis(title: str, result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console() if sys.stdout.isatty() else Console(width=160)  # pipes: don't squeeze
    counts = result["counts"]
    console.rule(f"[bold]{title}")
    console.print(
        f"{counts['traces']} runs, {counts['llm_steps']} model steps, "
        f"{counts['tool_spans']} tool calls ({counts['incomplete_traces']} incomplete runs)"
    )
    left_out = result["left_out"]
    if left_out["duplicate_rows"] or left_out["infrastructure_failures"]:
        console.print(
            f"left out: {left_out['duplicate_rows']} rows repeating a run already read (same "
            f"trace_id), {left_out['infrastructure_failures']} runs cut short by the model "
            "server or by stopping the collector (collect runs those tasks again)"
        )
    breakdown = result["time_breakdown"]
    table = Table(title="Time: LLM generation (estimated as run time minus tool time) vs tools")
    for column in ("", "seconds", "%"):
        table.add_column(column, justify="right" if column else "left")
    table.add_row("total", _fmt(breakdown["total_s"], 1), "100.0")
    table.add_row(
        "LLM generation", _fmt(breakdown["llm_s_estimated"], 1), _fmt(breakdown["llm_pct"], 1)
    )
    table.add_row("tool execution", _fmt(breakdown["tool_s"], 1), _fmt(breakdown["tool_pct"], 1))
    console.print(table)
    share = result["tool_share_per_trace_pct"]
    console.print(
        "Tool time as % of each run: "
        + ", ".join(f"{key} {_fmt(share[key])}" for key in ("min", "median", "p95", "max"))
    )
    table = Table(title="Tools")
    for column in (
        "tool",
        "calls",
        "total s",
        "failed",
        "median ms",
        "p95 ms",
        "median CPU s",
        "median peak MiB",
        "p95 peak MiB",
        "median read MiB",
        "median write MiB",
    ):
        table.add_column(column, justify="left" if column == "tool" else "right")
    for name, _ in result["tools_by_time_s"]:
        tool = result["tools"][name]
        table.add_row(
            name,
            _fmt(tool["count"]),
            _fmt(tool["total_s"], 3),
            f"{tool['failures']} ({100 * tool['failure_rate']:.0f}%)",
            _fmt(tool["duration_ms"]["median"], 1),
            _fmt(tool["duration_ms"]["p95"], 1),
            _fmt(tool["cpu_time_s"]["median"], 3),
            _fmt(tool["max_rss_mib"]["median"], 1),
            _fmt(tool["max_rss_mib"]["p95"], 1),
            _fmt(tool["read_mib"]["median"], 2),
            _fmt(tool["write_mib"]["median"], 2),
        )
    console.print(table)
    tokens = result["tokens"]
    table = Table(title="Model steps")
    for column in ("", "min", "median", "mean", "p95", "max"):
        table.add_column(column, justify="left" if not column else "right")
    for label, stats in (
        ("steps per run", result["steps_per_trace"]),
        ("input tokens per step", tokens["input_per_step"]),
        ("output tokens per step", tokens["output_per_step"]),
        ("reasoning chars per step", tokens["reasoning_chars_per_step"]),
    ):
        table.add_row(label, *(_fmt(stats[k], 1) for k in ("min", "median", "mean", "p95", "max")))
    console.print(table)
    console.print(
        f"tokens: {_fmt(tokens['input_total'], 0)} in, {_fmt(tokens['output_total'], 0)} out; "
        f"reasoning length vs output tokens, Pearson r = "
        f"{_fmt(tokens['reasoning_chars_vs_output_tokens_pearson'], 3)}"
    )
    failures = result["failures"]
    console.print(
        f"tool failures: {failures['tool_calls_failed']} "
        f"(rate {_fmt(failures['rate'], 3)}), by exit code {failures['by_exit_code']}"
    )


@main.command()
@click.argument("files", nargs=-1, required=True, type=_FILE)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def analyze(files: tuple[Path, ...], as_json: bool) -> None:
    """Statistics of AgentTrace files, per file and combined (ours and the release's).

    Combined, a run held by several files (a JSONL file and its Parquet twin) counts once.
    """
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
        _print_analysis(path, result)
    if "combined" in results:
        _print_analysis(f"all {len(files)} files", results["combined"])


@main.command()
@click.argument("files", nargs=-1, required=True, type=_FILE)
@click.option(
    "--outdir",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory the PNG files are written to.",
)
def plots(files: tuple[Path, ...], outdir: Path) -> None:
    """Render plots of AgentTrace files as PNGs (headless)."""
    _make_dir(outdir, "the plot directory")  # before the slow reading: a failure is immediate
    from agenttrace.analysis.dataset import combine
    from agenttrace.analysis.plots import render_all

    data = combine(_load_each(files))
    for path in render_all(data, outdir):
        click.echo(str(path))


@main.command("fixture")
@click.argument("root", type=click.Path(file_okay=False, path_type=Path))
@click.option("--check", is_flag=True, help="Verify ROOT instead of building it.")
def fixture_command(root: Path, check: bool) -> None:
    """Build (or --check) the deterministic NL2Bash file-system fixture under ROOT."""
    from agenttrace.collection import fixture

    if check:
        ok, digest = fixture.check(root)
        click.echo(f"{digest} {'ok' if ok else 'MISMATCH, expected ' + fixture.FIXTURE_VERSION}")
        sys.exit(0 if ok else 1)
    click.echo(f"{_fixture_build(root)} built under {root}")


@main.command()
@click.argument("files", nargs=-1, required=True, type=_FILE)
@click.option(
    "--profile",
    type=click.Choice(["default", "release"]),
    default="default",
    show_default=True,
    help="release: hold every row to the NL2Bash/MBPP release's rules.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Also reject keys schema 0.3.0 does not name (AgentTrace's extensions), "
    "with either profile.",
)
@click.option("--max-errors", default=50, show_default=True, help="Violations shown per file.")
def validate(files: tuple[Path, ...], profile: str, strict: bool, max_errors: int) -> None:
    """Check AgentTrace JSONL or Parquet files against schema 0.3.0.

    The default profile checks what every row from any agent must hold: key order, types, ids
    and the required metadata keys (task_id may be an integer, a string or null; dataset,
    source and split may be empty). Rows that claim to be rows of the NL2Bash/MBPP release
    (collector_version "0.3.0" with dataset_name nl2bash or mbpp) are also held to the
    release's rules: source == dataset_name, split train (nl2bash) or test (mbpp), an integer
    task_id, fixture_version (the fixture's sha256) for nl2bash, tools bash /
    python_interpreter / final_answer with literal kwargs={...} inputs of exactly command /
    code / answer. --profile release applies those rules to every row.

    Every violation is printed as FILE:LINE: FIELD: PROBLEM. Exits 1 if any file is invalid.
    """
    from opentelemetry.exporter.agenttrace.files import validate_file

    invalid = False
    for path in files:
        count = 0
        with _progress(f"validating {path.name}", _total_for(path)) as advance:
            for violation in validate_file(path, strict=strict, profile=profile, progress=advance):
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

    Every row must pass `agenttrace validate` (default profile): the first that does not stops
    the conversion (exit 1). TARGET appears only when the whole conversion succeeded.
    """
    from opentelemetry.exporter.agenttrace.files import convert as convert_file

    for path in (source, target):
        if path.suffix.lower() not in _JSONL_SUFFIXES + _PARQUET_SUFFIXES:
            raise click.BadParameter(
                f"{path}: unknown file type (use .jsonl or .parquet)", param_hint="SOURCE/TARGET"
            )
    _protect([target], [source], force)
    _make_dir(target.parent, "the target directory")
    with _progress(f"converting {source.name}", _total_for(source)) as advance:
        rows = convert_file(source, target, progress=advance, check=_row_check(source))
    click.echo(f"{rows} rows written to {target}")


def _row_check(source: Path) -> Callable[[int, dict[str, Any]], None]:
    """A `check` for `files.convert`: a row that fails validation stops it, located."""
    from opentelemetry.exporter.agenttrace import AgentTraceFileError, validate_row

    unit = "row" if source.suffix.lower() in _PARQUET_SUFFIXES else "line"

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


if __name__ == "__main__":  # pragma: no cover
    main()
